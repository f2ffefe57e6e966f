"""``save(obj, path)`` / ``load(path)``: nested containers of arrays as ONE ``.npz`` file.

What can be saved: dicts (keys ``str`` or ``int``), lists and tuples, nested to any depth,
whose leaves are Tensors, backend arrays (NumPy or CuPy), NumPy scalars, Python ``int``,
``float``, ``bool``, ``str`` and ``None``. That covers ``Module.state_dict()``,
``Optimizer.state_dict()``, scheduler and EMA state, and a training checkpoint holding
all of them. Nothing is pickled, so loading a file can never run code.

File layout (a zip archive that ``numpy.load`` reads):

* ``__refgen__.npy``: a uint8 array holding UTF-8 JSON,
  ``{"format": "refgen-archive", "version": 1, "root": <node>}``, the structure of the
  saved object. Nodes: ``{"t": "dict", "items": [[key, node], ...]}`` (key a JSON
  string or integer, so ``int`` keys such as optimiser state indices survive),
  ``{"t": "list" | "tuple", "items": [node, ...]}``, ``{"t": "tensor", "entry": name,
  "requires_grad": bool}``, ``{"t": "array" | "npscalar", "entry": name}``,
  ``{"t": "int" | "bool" | "str", "v": value}``, ``{"t": "float", "v": repr(value)}``
  (a string, so nan and inf round-trip exactly in strict JSON), ``{"t": "none"}``.
* one ``<name>.npy`` per array, where ``name`` is the flattened key path: ``"arrays"``
  followed by one ``/``-separated component per level. Escaping (RFC 6901, JSON Pointer,
  plus one rule): in a ``str`` key ``~`` becomes ``~0`` and ``/`` becomes ``~1``; an
  ``int`` dict key ``k`` becomes ``~i<k>``; a list/tuple position is its decimal index.
  So ``{"model": {"fc/w": W}, "opt": {"state": {0: {"exp_avg": M}}}}`` stores
  ``arrays/model/fc~1w`` and ``arrays/opt/state/~i0/exp_avg``; names are unique and
  readable with any zip tool. ``load`` finds arrays through the JSON, not by parsing names.

What comes back (``load``): Tensors as Tensors (leaves, ``requires_grad`` as saved, the
data on the active backend), arrays as arrays of the active backend (``backend.xp``),
NumPy scalars as NumPy scalars, tuples as tuples, dicts as dicts in their saved order.
Subclasses of Tensor (``nn.Parameter``) come back as plain Tensors.

Writing is atomic: the archive goes to a temporary file in the target's directory, is
flushed and fsync'ed, then ``os.replace``-d over ``path``; a crash mid-write leaves the
previous file untouched. The path is used exactly as given (no ``.npz`` is appended).

Reading is bounded (``load(path, max_bytes=...)``): before any entry is decompressed, the
entries' declared sizes must add up to at most ``max_bytes`` (default ``MAX_ARCHIVE_BYTES``,
4 GiB) and to at most ``MAX_EXPANSION`` (100) times the compressed bytes beyond a free
``FREE_EXPANSION_BYTES`` (64 MiB) -- refgen writes entries uncompressed, and deflate expands
float weights by about 1.1, so only a zip bomb (a few MB that decompress to GBs) trips it.
Each array entry's ``.npy`` header is read first, and its shape and dtype must account for
exactly the entry's declared size; the data are then read into an array of that size, never
more (``zipfile`` stops at the declared size and checks the CRC). ``check_zip_sizes`` and
``read_zip_entry`` do the same for the other readers of zip archives (PyTorch files).
"""
import json
import os
import tempfile
import zipfile
import zlib

# host-side: file I/O. np.savez/np.lib.format read and write host arrays only (CuPy has no
# .npz reader that checks sizes before allocating); device arrays are copied to the host
# explicitly (B.to_numpy) before saving, and loaded arrays move to the active backend
# (B.to_backend) once they are checked.
import numpy as np

from . import backend as B
from .tensor import Tensor

__all__ = ["save", "load", "read_npz", "check_zip_sizes", "read_zip_entry", "MAX_ARCHIVE_BYTES"]

MAX_ARCHIVE_BYTES = 4 * 2**30          # what one load may allocate, in bytes
MAX_EXPANSION = 100                    # declared / compressed bytes, beyond the free part
FREE_EXPANSION_BYTES = 64 * 2**20      # small archives may compress as well as they like
_CHUNK = 16 * 2**20                    # read large entries in pieces: no second full copy

FORMAT = "refgen-archive"
VERSION = 1
_STRUCTURE_KEY = "__refgen__"
_ROOT = "arrays"


def _escape(key):
    if isinstance(key, str):
        return key.replace("~", "~0").replace("/", "~1")
    return f"~i{key}"


def _key_path_text(path):
    """A readable key path for error messages: ``obj['model']['w'][3]``."""
    return "obj" + "".join(f"[{k!r}]" for k in path)


def _is_backend_array(x):
    return isinstance(x, np.ndarray) or (B.name != "numpy" and isinstance(x, B.xp.ndarray))


def _encode(obj, path, name, arrays):
    """The JSON node for ``obj``; arrays found are put into ``arrays`` under their names."""
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, bool):
        return {"t": "bool", "v": obj}
    if isinstance(obj, int):
        return {"t": "int", "v": obj}
    if isinstance(obj, float):
        return {"t": "float", "v": repr(obj)}
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    if isinstance(obj, Tensor):
        arrays[name] = _host_array(obj.data, path)
        return {"t": "tensor", "entry": name, "requires_grad": bool(obj.requires_grad)}
    if _is_backend_array(obj):
        arrays[name] = _host_array(obj, path)
        return {"t": "array", "entry": name}
    if isinstance(obj, np.generic):
        arrays[name] = _host_array(np.asarray(obj), path)
        return {"t": "npscalar", "entry": name}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(
                    f"autodiff.save: unsupported dict key {k!r} of type {type(k).__name__} at "
                    f"{_key_path_text(path)} (keys must be str or int)")
            items.append([k, _encode(v, path + (k,), f"{name}/{_escape(k)}", arrays)])
        return {"t": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        return {"t": kind, "items": [_encode(v, path + (i,), f"{name}/{i}", arrays)
                                     for i, v in enumerate(obj)]}
    hint = " (save its state_dict() instead)" if hasattr(obj, "state_dict") else ""
    raise TypeError(
        f"autodiff.save: cannot save an object of type {type(obj).__module__}."
        f"{type(obj).__qualname__} at {_key_path_text(path)}{hint}; supported: dict, list, "
        "tuple, Tensor, array, NumPy scalar, int, float, bool, str, None")


def _host_array(a, path):
    host = B.to_numpy(a)
    if host.dtype.hasobject:
        raise TypeError(
            f"autodiff.save: the array at {_key_path_text(path)} has dtype object, which "
            "cannot be saved without pickling")
    return host


def _write_archive(fileobj, arrays):
    """Write the named host arrays into ``fileobj`` as an uncompressed .npz."""
    np.savez(fileobj, **arrays)


def save(obj, path):
    """Save ``obj`` (nested dicts/lists/tuples of Tensors, arrays and scalars) to ``path``.

    One ``.npz`` archive, written atomically (temporary file in the same directory,
    flush + fsync, ``os.replace``). See the module docstring for the format.
    """
    arrays = {}
    root = _encode(obj, (), _ROOT, arrays)
    structure = json.dumps({"format": FORMAT, "version": VERSION, "root": root},
                           allow_nan=False)
    arrays[_STRUCTURE_KEY] = np.frombuffer(structure.encode("utf-8"), dtype=np.uint8)

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):   # else mkstemp names only its hidden temporary file
        raise FileNotFoundError(
            f"autodiff.save: cannot write {path!r}: the directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file with mode 0600; give it the permissions an ordinary
        # open() would (0666 less the umask) so saved files are readable as usual.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _invalid(path, why):
    return ValueError(f"autodiff.load: {path!r} is not a valid refgen archive ({why})")


def _decode(node, archive, path):
    t = node.get("t") if isinstance(node, dict) else None
    if t == "none":
        return None
    if t in ("bool", "int", "str"):
        return node["v"]
    if t == "float":
        return float(node["v"])
    if t in ("tensor", "array", "npscalar"):
        entry = node["entry"]
        if entry not in archive:
            raise _invalid(path, f"the array entry {entry!r} is missing")
        host = archive[entry]
        if t == "npscalar":
            return host[()]
        data = B.to_backend(host)
        if t == "array":
            return data
        return Tensor(data, requires_grad=bool(node.get("requires_grad", False)))
    if t == "dict":
        return {k: _decode(v, archive, path) for k, v in node["items"]}
    if t == "list":
        return [_decode(v, archive, path) for v in node["items"]]
    if t == "tuple":
        return tuple(_decode(v, archive, path) for v in node["items"])
    raise _invalid(path, f"unknown node {node!r:.80}")


def _mib(n):
    return f"{n / 2**20:.1f} MiB"


def check_zip_sizes(zf, path, max_bytes=None, who="autodiff.load"):
    """Refuse the open ``zipfile.ZipFile`` ``zf`` before anything is decompressed when its
    entries declare more than ``max_bytes`` in all, or more than ``MAX_EXPANSION`` times
    their compressed size beyond ``FREE_EXPANSION_BYTES`` (a zip bomb). ValueError naming
    ``path`` and the sizes."""
    limit = MAX_ARCHIVE_BYTES if max_bytes is None else int(max_bytes)
    infos = zf.infolist()
    declared = sum(i.file_size for i in infos)
    compressed = sum(i.compress_size for i in infos)
    if declared > limit:
        raise ValueError(
            f"{who}: {path!r} declares {_mib(declared)} of uncompressed data, more than the "
            f"limit of {_mib(limit)} (pass max_bytes= to raise it); refused before reading")
    if declared > FREE_EXPANSION_BYTES + MAX_EXPANSION * compressed:
        raise ValueError(
            f"{who}: {path!r} would expand {_mib(compressed)} of compressed data to "
            f"{_mib(declared)} (more than {MAX_EXPANSION}x): refused as a likely zip bomb")
    return declared


def read_zip_entry(zf, name, path, max_bytes=None, who="autodiff.load"):
    """The bytes of entry ``name`` of ``zf``, read in bounded memory: its declared size is
    checked against ``max_bytes`` first, and no more than that size is ever decompressed."""
    info = zf.getinfo(name)
    limit = MAX_ARCHIVE_BYTES if max_bytes is None else int(max_bytes)
    if info.file_size > limit:
        raise ValueError(f"{who}: {path!r}: entry {name!r} declares {_mib(info.file_size)}, "
                         f"more than the limit of {_mib(limit)}")
    with zf.open(info) as f:
        data = f.read(info.file_size)
        if len(data) != info.file_size or f.read(1):
            raise ValueError(f"{who}: {path!r}: entry {name!r} holds {len(data)} bytes, "
                             f"not the {info.file_size} its header declares")
    return data


class _BoundedNpz:
    """The arrays of a ``.npz`` archive by name (``archive[name]``), each read only after its
    ``.npy`` header's shape and dtype were checked against the entry's declared size."""

    def __init__(self, zf, path):
        self._zf, self._path = zf, path
        self._names = {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}
        self.files = list(self._names)

    def __contains__(self, name):
        return name in self._names

    def __getitem__(self, name):
        entry = self._names[name]
        info = self._zf.getinfo(entry)
        fmt = np.lib.format
        with self._zf.open(info) as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise _invalid(self._path, f"entry {entry!r}: .npy format {version} unsupported")
            if dtype.hasobject:
                raise _invalid(self._path, f"entry {entry!r} holds Python objects (dtype "
                                           f"{dtype}), which are never unpickled")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            header = f.tell()
            if header + nbytes != info.file_size:
                raise _invalid(self._path, f"entry {entry!r}: its header says shape {shape} of "
                                           f"{dtype} ({nbytes} bytes) but the entry declares "
                                           f"{info.file_size - header} bytes of data")
            out = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
            flat = out.reshape(-1, order="A").view(np.uint8) if nbytes else None
            done = 0
            while done < nbytes:
                piece = f.read(min(_CHUNK, nbytes - done))
                if not piece:
                    raise _invalid(self._path, f"entry {entry!r} ends after {done} of "
                                               f"{nbytes} bytes of data")
                flat[done:done + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
                done += len(piece)
        if not out.dtype.isnative:
            out = out.astype(out.dtype.newbyteorder("="))
        return out


def read_npz(path, max_bytes=None, who="read_npz"):
    """Every array of a plain NumPy ``.npz`` file, name -> host array, read with the same
    bounds as ``load`` (sizes before decompressing, headers before allocating, no pickles)."""
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{who}: {path!r} is not a zip/.npz archive")
    with zipfile.ZipFile(path) as zf:
        check_zip_sizes(zf, path, max_bytes, who=who)
        archive = _BoundedNpz(zf, path)
        return {name: archive[name] for name in archive.files}


def load(path, max_bytes=None):
    """Load what ``save`` wrote. Arrays come back on the active backend; Tensors as Tensors.

    Nothing is unpickled: a file can never execute code. Memory is bounded: an archive that
    declares more than ``max_bytes`` (default ``MAX_ARCHIVE_BYTES``) or that would expand
    like a zip bomb is refused before anything is decompressed (see the module docstring).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"autodiff.load: no such file: {path!r}")
    if not zipfile.is_zipfile(path):
        raise _invalid(path, "not a zip/.npz archive")
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # a damaged zip: say what the file is not, keep the cause
        raise _invalid(path, f"cannot open the zip archive: {exc}") from exc
    with zf:
        check_zip_sizes(zf, path, max_bytes)
        archive = _BoundedNpz(zf, path)
        if _STRUCTURE_KEY not in archive.files:
            raise _invalid(path, f"no {_STRUCTURE_KEY!r} entry; is it a plain numpy .npz?")
        try:
            header = json.loads(archive[_STRUCTURE_KEY].tobytes().decode("utf-8"))
        except Exception as exc:
            raise _invalid(path, f"the structure entry is not JSON: {exc}") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _invalid(path, "the structure entry does not describe a refgen archive")
        if header.get("version") != VERSION:
            raise _invalid(path, f"format version {header.get('version')!r}; this reader "
                                 f"knows version {VERSION}")
        try:
            return _decode(header["root"], archive, path)
        except (KeyError, TypeError, ValueError, EOFError, OSError, zipfile.BadZipFile,
                zlib.error) as exc:
            if isinstance(exc, ValueError) and "not a valid refgen archive" in str(exc):
                raise
            raise _invalid(path, f"damaged content: {exc}") from exc
