"""Data files shipped inside the package (``refgen/data/files``): digits and Old Faithful.

See ``refgen/data/files/ATTRIBUTION.md`` for the sources and how to cite them.
"""
import gzip
import hashlib
from pathlib import Path

# host-side: CSV parsing on the host; callers move the arrays to the backend
import numpy as np

from .idx import IDXError

__all__ = ["load_digits_arrays", "load_faithful_arrays", "FILES", "DIGITS_SHA256",
           "FAITHFUL_SHA256"]

FILES = Path(__file__).resolve().parent / "files"
DIGITS_SHA256 = "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"
FAITHFUL_SHA256 = "2da9ef67231ab7542d2ec3e5a741a8d53ada92a24103195ce7d1f9b8e36a986d"


def _read_checked(path, sha256, gz):
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if gz else raw
    except (OSError, EOFError) as exc:
        raise IDXError(f"cannot read the embedded data file {path}: {exc} "
                       "(is the package installed with its data files?)") from exc
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise IDXError(f"{path}: sha256 of the decompressed bytes is {got}, expected {sha256} "
                       "(the package's data file is damaged; reinstall refgen)")
    return data


def load_digits_arrays(path=None):
    """The 1797 UCI optdigits images: (1797, 8, 8) uint8 counts 0..16 and (1797,) labels."""
    path = FILES / "digits.csv.gz" if path is None else Path(path)
    text = _read_checked(path, DIGITS_SHA256, gz=True).decode("ascii")
    table = np.array([row.split(",") for row in text.split()], dtype=np.float64)
    if table.shape != (1797, 65):
        raise IDXError(f"{path}: table of shape {table.shape}, expected (1797, 65)")
    return table[:, :64].astype(np.uint8).reshape(1797, 8, 8), table[:, 64].astype(np.int64)


def load_faithful_arrays(path=None):
    """Old Faithful: (272, 2) float64 host array, columns (eruptions, waiting) in minutes."""
    path = FILES / "faithful.csv" if path is None else Path(path)
    text = _read_checked(path, FAITHFUL_SHA256, gz=False).decode("ascii")
    lines = text.strip().splitlines()
    table = np.array([line.split(",") for line in lines[1:]], dtype=np.float64)
    if table.shape != (272, 2):
        raise IDXError(f"{path}: table of shape {table.shape}, expected (272, 2)")
    return table
