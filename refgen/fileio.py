"""Atomic file writes: nothing a user saved is lost when a run is killed mid-write.

``atomic_open(path)`` hands out a temporary file in the target's directory; only when the
``with`` block finishes is the file flushed, fsync'ed, given ordinary permissions (0666 less
the umask; ``mkstemp`` would leave 0600) and renamed over ``path`` (``os.replace`` is atomic
on POSIX and Windows). An exception or a kill before that leaves the old file untouched.
"""
import contextlib
import os
import tempfile

__all__ = ["atomic_open", "atomic_write_bytes"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="wb", encoding=None):
    """Open a temporary file that replaces ``path`` when the block exits without error."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return path
