"""The FID Inception weights file: where it is looked for, its hash, download and conversion.

The standard weights are pytorch-fid's release asset ``pt_inception-2015-12-05-6726825d.pth``
(the 2015 TensorFlow Inception graph's weights converted to torchvision's names; 566 entries,
95,628,359 bytes). As torch hub names files, ``6726825d`` is the start of the file's sha256,
whose full value :data:`FID_WEIGHTS_SHA256` is checked on every download and ``.pth`` load.

Search order (first hit wins), for each folder D in [the ``path`` argument if a folder,
``$REFGEN_DATA``, the user cache dir ``$XDG_CACHE_HOME/refgen`` or ``~/.cache/refgen``]:
``D/<stem>.npz`` (converted), ``D/<stem>.pth``, then the same inside ``D/inception/``.

The ``.pth`` is read with :mod:`refgen.metrics.torch_pickle` (no unpickling). The converted
``.npz`` (``autodiff.save``) holds ``{"source_sha256": <hash of the .pth>, "state_dict":
{name: array}}`` so a later load can tell which weights it came from.
"""
import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import autodiff

from ..data.sources import search_dirs
from .torch_pickle import read_torch_state_dict
from ..fileio import atomic_write_bytes

__all__ = ["FID_WEIGHTS_URL", "FID_WEIGHTS_SHA256", "FID_WEIGHTS_STEM", "WeightsNotFoundError",
           "find_fid_weights", "read_fid_weights", "download_inception_weights",
           "convert_inception_weights", "sha256_of"]

FID_WEIGHTS_STEM = "pt_inception-2015-12-05-6726825d"
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + FID_WEIGHTS_STEM + ".pth")
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"


class WeightsNotFoundError(FileNotFoundError):
    """No FID Inception weights in any searched place; the message says how to get them."""


def sha256_of(path, chunk=1 << 20):
    """The hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _candidates(path):
    folders = []
    if path is not None:
        p = Path(path)
        if p.is_file():
            return [p]
        if not p.is_dir():
            raise WeightsNotFoundError(f"FID Inception weights: {p} does not exist")
        folders.append(p)
    folders += [d for d in search_dirs() if d not in folders]
    out = []
    for d in folders:
        for sub in (d, d / "inception"):
            out += [sub / (FID_WEIGHTS_STEM + ".npz"), sub / (FID_WEIGHTS_STEM + ".pth")]
    return out


def find_fid_weights(path=None):
    """The first weights file found (see the module docstring for the order).

    :raises WeightsNotFoundError: nothing found; lists every place looked and how to get it.
    """
    looked = _candidates(path)
    for c in looked:
        if c.is_file():
            return c
    raise WeightsNotFoundError(
        "FID Inception weights not found; looked in:\n  " + "\n  ".join(map(str, looked))
        + "\nTo get them: run `refgen data download inception` (needs internet; writes to "
        f"the cache dir), or download {FID_WEIGHTS_URL}\n(sha256 {FID_WEIGHTS_SHA256}) "
        "yourself and put it in one of those folders, pass its path, or set REFGEN_DATA.")


def read_fid_weights(path=None, verify=True):
    """The FID Inception state_dict ``{name: numpy array}`` from a found or given file.

    :param path: a ``.pth``/``.npz`` file or a folder to search first; None searches only
        ``$REFGEN_DATA`` and the cache dir.
    :param verify: check the ``.pth``'s sha256 (or the ``.npz``'s recorded source hash)
        against :data:`FID_WEIGHTS_SHA256`. Turn off only for other weights (tests).
    :return: (state_dict, the file read).
    """
    file = find_fid_weights(path)
    if file.suffix == ".npz":
        saved = autodiff.load(file)
        if not (isinstance(saved, dict) and "state_dict" in saved):
            raise ValueError(f"{file}: not a converted FID weights file (no 'state_dict'; "
                             "make it with convert_inception_weights)")
        if verify and saved.get("source_sha256") != FID_WEIGHTS_SHA256:
            raise ValueError(f"{file}: converted from a file with sha256 "
                             f"{saved.get('source_sha256')}, not the FID weights "
                             f"({FID_WEIGHTS_SHA256}); pass verify=False to use it anyway")
        return saved["state_dict"], file
    if verify:
        _check_hash(file, FID_WEIGHTS_SHA256)
    return read_torch_state_dict(file), file


def _check_hash(file, expected):
    got = sha256_of(file)
    if got != expected:
        raise ValueError(f"{file}: sha256 {got} does not match the FID weights' {expected} "
                         "(a different or damaged file); download it again")


def convert_inception_weights(pth_path, npz_path=None, verify=True):
    """Convert the ``.pth`` to the ``.npz`` form (``autodiff.save``, atomic) for later loads.

    :param npz_path: target; default: next to the ``.pth`` with the suffix ``.npz``.
    :return: the ``.npz`` path.
    """
    pth_path = Path(pth_path)
    digest = sha256_of(pth_path)
    if verify and digest != FID_WEIGHTS_SHA256:
        raise ValueError(f"{pth_path}: sha256 {digest} does not match the FID weights' "
                         f"{FID_WEIGHTS_SHA256}; pass verify=False to convert other weights")
    npz_path = Path(npz_path) if npz_path is not None else pth_path.with_suffix(".npz")
    state = read_torch_state_dict(pth_path)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    autodiff.save({"source_sha256": digest, "state_dict": dict(state)}, npz_path)
    return npz_path


def download_inception_weights(dest=None, url=FID_WEIGHTS_URL, sha256=FID_WEIGHTS_SHA256,
                               timeout=120, progress=None):
    """Fetch the FID weights, check the sha256, write them atomically; return the path.

    The whole file (95.6 MB) is fetched into memory and hashed before anything is written,
    so a failed or corrupted download never leaves a file under the final name. A file
    already present with the right hash is not fetched again.

    :param dest: a folder (default: the cache dir) or a full file path ending in ``.pth``.
    :param progress: optional callable taking one line of text.
    :raises ConnectionError: the URL could not be fetched (offline: says what to do).
    :raises ValueError: the download's sha256 is wrong (nothing is written).
    """
    say = progress or (lambda line: None)
    if dest is None:
        dest = search_dirs()[-1]
    dest = Path(dest)
    target = dest if dest.suffix == ".pth" else dest / (FID_WEIGHTS_STEM + ".pth")
    if target.is_file() and sha256_of(target) == sha256:
        say(f"{target}: present and verified")
        return target
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConnectionError(
            f"could not download the FID Inception weights from {url}: "
            f"{getattr(exc, 'reason', exc)}\nwithout internet, download that file on another "
            f"machine (sha256 {sha256}) and copy it to {target} or a folder in REFGEN_DATA"
        ) from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ValueError(f"downloaded {url}: sha256 {got} does not match {sha256}; "
                         "nothing was written")
    atomic_write_bytes(target, data)
    say(f"{target}: downloaded from {url} and verified")
    return target
