"""The IDX files refgen knows: names, hashes, download URLs, and where to look for them.

Search path (first hit wins), for a file ``F`` of data set ``NAME`` (``mnist`` or
``fashion-mnist``): for each directory D in [the ``data_dir`` argument, ``$REFGEN_DATA``,
the user cache dir (``$XDG_CACHE_HOME/refgen``, default ``~/.cache/refgen``)], try
``D/NAME/F.gz``, ``D/NAME/F``, ``D/F.gz``, ``D/F``. A miss raises FileNotFoundError naming
every place searched and the command ``refgen data download NAME``.

Hashes are of the DECOMPRESSED bytes (gzip headers differ between mirrors; the content
does not). sha256 where known; Fashion-MNIST's training files only have their canonical
raw md5 published here, which is checked instead.
"""
import os
from pathlib import Path

__all__ = ["IDX_SETS", "search_dirs", "find_file", "cache_dir"]

_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

# per file: (magic, count, sha256 or None, md5 or None) of the decompressed bytes
IDX_SETS = {
    "mnist": {
        "urls": _MNIST_URLS,
        "files": {
            "train-images-idx3-ubyte": (2051, 60000, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", None),
            "train-labels-idx1-ubyte": (2049, 60000, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", None),
            "t10k-images-idx3-ubyte": (2051, 10000, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", None),
            "t10k-labels-idx1-ubyte": (2049, 10000, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", None),
        },
        "classes": [str(i) for i in range(10)],
        "source": "MNIST: Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten "
                  "digits (from NIST data); no formal licence, CC BY-SA 3.0 most often cited",
    },
    "fashion-mnist": {
        "urls": _FASHION_URLS,
        "files": {
            "train-images-idx3-ubyte": (2051, 60000, None, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            "train-labels-idx1-ubyte": (2049, 60000, None, "9018921c3c673c538a1fc5bad174d6f9"),
            "t10k-images-idx3-ubyte": (2051, 10000, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", None),
            "t10k-labels-idx1-ubyte": (2049, 10000, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", None),
        },
        "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                    "Sneaker", "Bag", "Ankle boot"],
        "source": "Fashion-MNIST: H. Xiao, K. Rasul, R. Vollgraf (2017), arXiv:1708.07747; "
                  "MIT licence, (c) 2017 Zalando SE",
    },
}


def cache_dir():
    """The user cache dir for downloads: ``$XDG_CACHE_HOME/refgen`` or ``~/.cache/refgen``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "refgen"


def search_dirs(data_dir=None):
    """The directories searched, in order: argument, ``$REFGEN_DATA``, the cache dir."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    env = os.environ.get("REFGEN_DATA")
    if env:
        dirs.append(Path(env))
    dirs.append(cache_dir())
    return dirs


def candidates(name, filename, data_dir=None):
    out = []
    for d in search_dirs(data_dir):
        for sub in (d / name, d):
            out += [sub / (filename + ".gz"), sub / filename]
    return out


def find_file(name, filename, data_dir=None):
    """The first existing candidate path for ``filename`` of data set ``name``."""
    tried = candidates(name, filename, data_dir)
    for path in tried:
        if path.is_file():
            return path
    places = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"{name} file {filename} not found; searched:\n  {places}\n"
        f"get it with `refgen data download {name}` (needs internet), or put the files in "
        f"a folder and pass data_dir= (command line: --data-dir DIR) or set REFGEN_DATA")
