"""``download(name)``: fetch MNIST / Fashion-MNIST IDX files, verify, write atomically.

Each file ``F.gz`` is fetched from the first mirror that answers, decompressed in memory,
checked (magic, count, shape, and the hash of the decompressed bytes from
:data:`refgen.data.sources.IDX_SETS`), and only then written: to a temporary file in the
target folder, flushed, fsync'ed and renamed over ``<dir>/<name>/F.gz``. An interrupted or
failed download never leaves a partial file under the final name. Files already present
and valid are not fetched again.
"""
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .idx import IDXError, read_idx
from ..fileio import atomic_write_bytes
from .sources import IDX_SETS, cache_dir

__all__ = ["download"]


def _fetch(urls, filename, timeout):
    errors = []
    for base in urls:
        url = base + filename
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read(), url
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise ConnectionError(
        f"could not download {filename} (no internet access?):\n  " + "\n  ".join(errors)
        + "\nwithout internet, copy the files into a folder and pass data_dir= "
        "(command line: --data-dir DIR) or set REFGEN_DATA")


def download(name, data_dir=None, urls=None, timeout=60, progress=None):
    """Download the four IDX files of ``name`` into ``<data_dir or cache>/<name>/``.

    :param name: ``"mnist"`` or ``"fashion-mnist"``.
    :param urls: mirror base URLs to try in order (default: the standard mirrors).
    :param progress: optional callable taking one line of text per file.
    :return: the folder holding the files (a ``Path``).
    :raises ConnectionError: no mirror answered (names each URL and why).
    :raises IDXError: a downloaded file failed a check (nothing is written then).
    """
    if name not in IDX_SETS:
        known = ", ".join(IDX_SETS)
        raise ValueError(f"cannot download {name!r}: downloadable data sets are {known} "
                         "(digits, faithful and the toy densities ship with refgen; "
                         "'refgen data download inception' fetches the FID Inception weights)")
    spec = IDX_SETS[name]
    folder = Path(data_dir if data_dir is not None else cache_dir()) / name
    say = progress or (lambda line: None)
    for stem, (magic, count, sha, md5) in spec["files"].items():
        target = folder / (stem + ".gz")
        shape = (28, 28) if magic == 2051 else ()
        if target.is_file():
            try:
                read_idx(target, magic, count, shape, sha, md5)
                say(f"{target}: present and verified")
                continue
            except IDXError:
                say(f"{target}: present but fails its checks; downloading again")
        data, url = _fetch(urls or spec["urls"], stem + ".gz", timeout)
        # verify from a temporary copy before the final name exists
        fd, tmp = tempfile.mkstemp(suffix=".gz", dir=_existing(folder))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                read_idx(tmp, magic, count, shape, sha, md5)
            except IDXError as exc:
                raise IDXError(f"downloaded {url} failed its check: {exc}") from exc
        finally:
            os.unlink(tmp)
        atomic_write_bytes(target, data)
        say(f"{target}: downloaded from {url} and verified")
    return folder


def _existing(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return folder
