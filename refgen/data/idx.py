"""Reader for the IDX files of MNIST and Fashion-MNIST (LeCun et al.), gzip or not.

Format (big-endian): a 4-byte magic number 0x00 0x00 <type> <ndim> (type 0x08 = uint8), then
ndim 4-byte sizes, then the data row-major. Images: magic 2051 (0x00000803), sizes
(N, 28, 28); labels: magic 2049 (0x00000801), size (N,). Every check failure raises
:class:`IDXError` naming the file and what is wrong: magic, count, shape, length (truncated
or trailing bytes), gzip stream, hash of the DECOMPRESSED bytes.
"""
import gzip
import hashlib
import struct
import zlib
from pathlib import Path

# host-side: file bytes are parsed on the host; callers move the result to the backend
import numpy as np

__all__ = ["IDXError", "read_idx", "read_bytes", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


class IDXError(ValueError):
    """A missing, corrupt or unexpected IDX file (the message names the file)."""


def read_bytes(path):
    """The decompressed bytes of ``path`` (gzip detected by its magic bytes 1f 8b)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IDXError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    return raw


def check_hash(data, path, sha256=None, md5=None):
    """Compare the hash of the decompressed ``data`` with the expected one (if any)."""
    if sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise IDXError(f"{path}: sha256 of the decompressed bytes is {got}, expected "
                           f"{sha256} (corrupt or a different file; delete it and run "
                           f"`refgen data download`)")
    elif md5 is not None:
        got = hashlib.md5(data).hexdigest()
        if got != md5:
            raise IDXError(f"{path}: md5 of the decompressed bytes is {got}, expected {md5} "
                           f"(corrupt or a different file)")


def read_idx(path, magic, count=None, shape=None, sha256=None, md5=None):
    """Parse one uint8 IDX file into a host array (N, *shape).

    :param magic: expected magic number (2051 images, 2049 labels).
    :param count: expected N (None: any). :param shape: expected per-item shape, e.g. (28, 28).
    :param sha256: expected sha256 of the decompressed bytes (or ``md5`` when only that is
        known); checked after the structure so a truncated file says "truncated".
    """
    path = Path(path)
    data = read_bytes(path)
    if len(data) < 4:
        raise IDXError(f"{path}: {len(data)} bytes is too short for an IDX header")
    (got_magic,) = struct.unpack(">i", data[:4])
    if got_magic != magic:
        kind = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(magic, "IDX")
        raise IDXError(f"{path}: magic number {got_magic}, expected {magic} ({kind} file)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header ({len(data)} bytes, need {header})")
    dims = struct.unpack(">" + "i" * ndim, data[4:header])
    if count is not None and dims[0] != count:
        raise IDXError(f"{path}: header says {dims[0]} items, expected {count}")
    if shape is not None and tuple(dims[1:]) != tuple(shape):
        raise IDXError(f"{path}: item shape {tuple(dims[1:])}, expected {tuple(shape)}")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IDXError(f"{path}: {what}: {len(data)} bytes, the header {dims} needs {expected}")
    check_hash(data, path, sha256, md5)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
