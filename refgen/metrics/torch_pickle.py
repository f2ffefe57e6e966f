"""Read a PyTorch ``state_dict`` file (``torch.save``) into NumPy arrays WITHOUT unpickling.

``pickle.load`` runs whatever callables a file names, so a weights file from the internet
could execute code. This module never calls ``pickle.load`` or an ``Unpickler``. It walks
the opcode stream with :func:`pickletools.genops` (which only decodes, never executes) and
interprets the few opcodes a tensor ``state_dict`` pickle uses on a small stack machine.
A ``GLOBAL`` resolves only through :data:`_CALLABLES` / :data:`_STORAGE_DTYPES`, a whitelist
that maps torch's names to this module's own pure functions building NumPy arrays from raw
storage bytes; any other global (``os.system``, ``builtins.eval``, ...) raises
:class:`UnsafePickleError` naming it, before anything could be called.

Two file layouts, both written by ``torch.save``:

* zip (torch >= 1.6): ``<prefix>/data.pkl`` (the pickle), ``<prefix>/data/<key>`` (one raw
  storage per key), optional ``<prefix>/byteorder`` (``little`` / ``big``).
* legacy (``_use_new_zipfile_serialization=False`` and torch < 1.6): consecutive pickles,
  the magic number, the protocol version, system info, the object, the list of storage keys,
  then for each key an int64 element count followed by the storage's raw bytes.

A tensor is rebuilt as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
does: ``as_strided`` over the storage's elements, then a contiguous copy (so the result owns
its memory and is independent of the file). bfloat16 has no NumPy dtype and becomes float32
(exactly: bfloat16 is float32 with the low 16 mantissa bits dropped).
"""
import pickletools
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np  # host-side: file I/O; raw storage bytes become host arrays

from autodiff.serialization import MAX_ARCHIVE_BYTES, check_zip_sizes, read_zip_entry

__all__ = ["UnsafePickleError", "TorchFileError", "read_torch_state_dict", "load_torch_file"]


class UnsafePickleError(ValueError):
    """The pickle names a global or uses an opcode outside the state_dict whitelist."""


class TorchFileError(ValueError):
    """The file is not a readable torch.save file (layout, missing storage, sizes)."""


# --------------------------------------------------------------------------- whitelist
# torch's storage class names -> the element dtype of their raw bytes (little-endian here;
# byte order is fixed up from the archive's ``byteorder`` record when it says ``big``).
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
# torch.float32-style dtype markers may appear (e.g. in newer metadata); they map to the
# same element types and are plain values, never called.
_DTYPE_NAMES = {
    "float32": "<f4", "float": "<f4", "float64": "<f8", "double": "<f8", "float16": "<f2",
    "half": "<f2", "bfloat16": "bfloat16", "int64": "<i8", "long": "<i8", "int32": "<i4",
    "int": "<i4", "int16": "<i2", "short": "<i2", "int8": "i1", "uint8": "u1", "bool": "?",
}
_ITEMSIZE = {"bfloat16": 2}


class _StorageType:
    """A whitelisted ``torch.<X>Storage`` global: only carries the element type."""
    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"


class _DtypeMarker(_StorageType):
    """A whitelisted ``torch.float32``-like value (a dtype, not a storage class)."""


class _Storage:
    """One storage of the file: its element type, key and element count; bytes read lazily.

    ``budget`` is a one-element list shared by every storage of one file: the bytes that
    the tensors rebuilt from them may still allocate. A pickle may build many large tensors
    over one small storage (stride 0), so the limit is on what is built, not on what is read.
    """
    __slots__ = ("dtype", "key", "numel", "big_endian", "_reader", "_elements", "budget")

    def __init__(self, dtype, key, numel, reader, big_endian=False, budget=None):
        self.dtype, self.key, self.numel, self._reader = dtype, key, numel, reader
        self.big_endian = big_endian
        self._elements = None
        self.budget = [MAX_ARCHIVE_BYTES] if budget is None else budget

    def charge(self, nbytes, what):
        """Take ``nbytes`` from the file's budget, or refuse before allocating them."""
        if nbytes > self.budget[0]:
            raise TorchFileError(
                f"{what} would allocate {nbytes} bytes, past the limit of {MAX_ARCHIVE_BYTES} "
                "bytes for one file (autodiff.serialization.MAX_ARCHIVE_BYTES)")
        self.budget[0] -= nbytes

    def elements(self):
        """The storage as a 1-D host array of its elements (native byte order)."""
        if self._elements is None:
            raw = self._reader(self.key)
            itemsize = _ITEMSIZE.get(self.dtype) or np.dtype(self.dtype).itemsize
            if len(raw) < self.numel * itemsize:
                raise TorchFileError(f"storage {self.key!r}: {len(raw)} bytes for "
                                     f"{self.numel} elements of {itemsize} bytes")
            raw = raw[:self.numel * itemsize]
            order = ">" if self.big_endian else "<"
            if self.dtype == "bfloat16":
                # bfloat16 = the top half of a float32: shift into place, exact.
                bits = np.frombuffer(raw, dtype=order + "u2").astype(np.uint32) << 16
                arr = bits.view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=np.dtype(self.dtype).newbyteorder(order))
            self._elements = arr.astype(arr.dtype.newbyteorder("="), copy=False)
        return self._elements


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2`` for dense CPU tensors: a strided view, copied."""
    if not isinstance(storage, _Storage):
        raise TorchFileError(f"_rebuild_tensor_v2: first argument is a "
                             f"{type(storage).__name__}, not a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise TorchFileError(f"tensor over storage {storage.key!r}: size {size} and stride "
                             f"{stride} differ in length")
    if any(s < 0 for s in size):
        raise TorchFileError(f"tensor over storage {storage.key!r}: negative size {size}")
    elements = storage.elements()
    storage.charge(int(np.prod(size, dtype=object)) * elements.itemsize,
                   f"tensor of size {size} over storage {storage.key!r}")
    if any(s == 0 for s in size):
        return np.zeros(size, dtype=elements.dtype)
    last = int(storage_offset) + sum((n - 1) * st for n, st in zip(size, stride))
    if storage_offset < 0 or min(stride, default=0) < 0 or last >= storage.numel:
        raise TorchFileError(
            f"tensor over storage {storage.key!r} (offset {storage_offset}, size {size}, "
            f"stride {stride}) reads past its {storage.numel} elements")
    base = elements[int(storage_offset):]
    item = base.itemsize
    view = np.lib.stride_tricks.as_strided(base, shape=size,
                                           strides=tuple(st * item for st in stride),
                                           writeable=False)
    return np.array(view, copy=True, order="C")


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    """``torch._utils._rebuild_parameter``: a Parameter is just its array here."""
    return data


def _ordered_dict(*args):
    """``collections.OrderedDict`` called with no argument or one list of pairs."""
    return OrderedDict(*args)


class _LazyTensor:
    """A tensor of a legacy file: its storage bytes follow the pickle, so it is rebuilt later."""
    __slots__ = ("args",)

    def __init__(self, *args):
        self.args = args


# (module, name) -> this module's function. The legacy layout swaps in _LazyTensor for the
# tensor rebuild (see _read_legacy); nothing else can ever be called.
_CALLABLES = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
}


def _resolve_global(module, name, callables):
    """The whitelisted object for ``module.name``; anything else is refused, by name."""
    if (module, name) in callables:
        return callables[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
        return _StorageType(name, _STORAGE_DTYPES[name])
    if module == "torch" and name in _DTYPE_NAMES:
        return _DtypeMarker(name, _DTYPE_NAMES[name])
    allowed = sorted(f"{m}.{n}" for m, n in callables) + ["torch.<X>Storage", "torch.<dtype>"]
    raise UnsafePickleError(
        f"refusing to load global {module}.{name}: a state_dict file only needs "
        f"{', '.join(allowed)} (the file may be malicious or not a plain state_dict)")


# --------------------------------------------------------------------------- stack machine
_MARK = object()
_PUSH_ARG = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BININT", "BININT1", "BININT2",
             "LONG1", "LONG4", "BINFLOAT", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
_CONSTANTS = {"NEWTRUE": True, "NEWFALSE": False, "NONE": None}


def _pop_mark(stack, where):
    """The items above the topmost MARK (removed from the stack, MARK too)."""
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1:]
            del stack[i:]
            return items
    raise TorchFileError(f"{where}: no MARK on the stack")


def interpret_pickle(data, persistent_load, where="pickle", callables=None):
    """Interpret the pickle at the start of ``data`` (bytes); return (object, its length).

    Supported opcodes: PROTO/FRAME, containers (EMPTY_DICT/LIST/TUPLE, MARK, TUPLE,
    TUPLE1-3, SETITEM(S), APPEND(S)), scalars (ints, floats, str, bytes, True/False/None),
    the memo (BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET), GLOBAL/STACK_GLOBAL
    through the whitelist, BINPERSID (storages, via ``persistent_load``), REDUCE of
    whitelisted functions, BUILD of a dict state on a dict (torch's ``_metadata``, which
    weights do not need and which is dropped), STOP. Any other opcode is refused by name.
    Nothing in ``data`` is executed: the only functions ever called are in ``callables``.
    """
    callables = _CALLABLES if callables is None else callables
    allowed_fns = list(callables.values())
    stack, memo = [], {}
    for op, arg, pos in pickletools.genops(data):
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name in _PUSH_ARG:
            stack.append(arg)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "MARK":
            stack.append(_MARK)
        elif name == "TUPLE":
            stack.append(tuple(_pop_mark(stack, where)))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET"):
            if arg not in memo:
                raise TorchFileError(f"{where}: memo entry {arg} read before it was written")
            stack.append(memo[arg])
        elif name == "GLOBAL":
            module, _, gname = arg.partition(" ")
            stack.append(_resolve_global(module, gname, callables))
        elif name == "STACK_GLOBAL":
            gname, module = stack.pop(), stack.pop()
            stack.append(_resolve_global(str(module), str(gname), callables))
        elif name == "BINPERSID":
            stack.append(persistent_load(stack.pop()))
        elif name == "REDUCE":
            args, fn = stack.pop(), stack.pop()
            if not any(fn is f for f in allowed_fns) or not isinstance(args, tuple):
                raise UnsafePickleError(f"{where}: REDUCE of {fn!r} at byte {pos}: only "
                                        "whitelisted functions may be called")
            stack.append(fn(*args))
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        elif name == "SETITEMS":
            items = _pop_mark(stack, where)
            target = stack[-1]
            for i in range(0, len(items), 2):
                target[items[i]] = items[i + 1]
        elif name == "APPEND":
            value = stack.pop()
            stack[-1].append(value)
        elif name == "APPENDS":
            items = _pop_mark(stack, where)
            stack[-1].extend(items)
        elif name == "BUILD":
            state = stack.pop()
            if not (isinstance(stack[-1], dict) and isinstance(state, dict)):
                raise UnsafePickleError(
                    f"{where}: BUILD of a {type(stack[-1]).__name__} with a "
                    f"{type(state).__name__} state at byte {pos} is not part of a state_dict")
        elif name == "STOP":
            if len(stack) != 1:
                raise TorchFileError(f"{where}: {len(stack)} objects on the stack at STOP")
            return stack[0], pos + 1
        else:
            raise UnsafePickleError(f"{where}: opcode {name} at byte {pos} is not used by "
                                    "state_dict pickles and is refused")
    raise TorchFileError(f"{where}: pickle ends without STOP")


def _storage_loader(reader, big_endian=False):
    """persistent_load for torch's ``('storage', type, key, location, numel[, view])`` ids."""
    storages = {}
    budget = [MAX_ARCHIVE_BYTES]

    def persistent_load(pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError(f"unsupported persistent id {pid!r} (only storages)")
        stype, key, _location, numel = pid[1:5]
        if len(pid) > 5 and pid[5] is not None:
            raise TorchFileError(f"storage {key!r}: storage views (old legacy files) are "
                                 "not supported")
        if not isinstance(stype, _StorageType):
            raise TorchFileError(f"storage {key!r}: type {stype!r} is not a torch storage")
        key = str(key)
        if key not in storages:
            storages[key] = _Storage(stype.dtype, key, int(numel), reader, big_endian, budget)
        return storages[key]

    return persistent_load


# --------------------------------------------------------------------------- file layouts
def _read_zip(path, zf):
    # Sizes first: a zip bomb or an entry past the limit is refused before decompressing.
    check_zip_sizes(zf, str(path), who="torch file")
    names = zf.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise TorchFileError(f"{path}: expected one <prefix>/data.pkl in the zip archive, "
                             f"found {pickles or 'none'}")
    prefix = pickles[0][:-len("data.pkl")]
    big_endian = False
    if prefix + "byteorder" in names:
        order = read_zip_entry(zf, prefix + "byteorder", str(path), who="torch file")
        order = order.decode("ascii", "replace").strip()
        if order not in ("little", "big"):
            raise TorchFileError(f"{path}: byteorder record says {order!r}")
        big_endian = order == "big"

    def reader(key):
        entry = f"{prefix}data/{key}"
        try:
            return read_zip_entry(zf, entry, str(path), who="torch file")
        except KeyError:
            raise TorchFileError(f"{path}: storage {entry} named by the pickle is missing "
                                 "from the archive") from None

    obj, _ = interpret_pickle(read_zip_entry(zf, pickles[0], str(path), who="torch file"),
                              _storage_loader(reader, big_endian),
                              where=f"{path}:{pickles[0]}")
    return obj


_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001


def _read_legacy(path, data):
    def no_persistent(pid):
        raise TorchFileError(f"{path}: persistent id {pid!r} in a header pickle")

    try:
        magic, pos = interpret_pickle(data, no_persistent, where=f"{path}: magic number")
    except UnsafePickleError:
        raise
    except Exception as exc:  # arbitrary bytes: genops' ValueError, our TorchFileError, ...
        raise TorchFileError(f"{path}: not a torch.save file (neither a zip archive nor "
                             f"a pickle: {exc})") from None
    if magic != _LEGACY_MAGIC:
        raise TorchFileError(f"{path}: not a torch.save file (neither a zip archive nor the "
                             "legacy format's magic number)")
    version, n = interpret_pickle(data[pos:], no_persistent, where=f"{path}: version")
    pos += n
    if version != _LEGACY_PROTOCOL:
        raise TorchFileError(f"{path}: legacy protocol version {version!r}, expected "
                             f"{_LEGACY_PROTOCOL}")
    info, n = interpret_pickle(data[pos:], no_persistent, where=f"{path}: system info")
    pos += n
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise TorchFileError(f"{path}: big-endian legacy files are not supported")
    blobs = {}

    def reader(key):
        if key not in blobs:
            raise TorchFileError(f"{path}: storage {key!r} is not in the file's key list")
        return blobs[key]

    lazy = dict(_CALLABLES)
    lazy[("torch._utils", "_rebuild_tensor_v2")] = _LazyTensor
    load_storage = _storage_loader(reader)
    storages = {}

    def persistent_load(pid):
        st = load_storage(pid)
        storages[st.key] = st
        return st

    obj, n = interpret_pickle(data[pos:], persistent_load, where=f"{path}: object",
                              callables=lazy)
    pos += n
    keys, n = interpret_pickle(data[pos:], no_persistent, where=f"{path}: storage keys")
    pos += n
    # Storages follow in key order: an int64 element count, then the raw bytes.
    for key in keys:
        key = str(key)
        if key not in storages:
            raise TorchFileError(f"{path}: storage {key!r} is listed but no tensor uses it")
        if pos + 8 > len(data):
            raise TorchFileError(f"{path}: file ends before storage {key!r}")
        (count,) = struct.unpack_from("<q", data, pos)
        pos += 8
        dtype = storages[key].dtype
        nbytes = count * (_ITEMSIZE.get(dtype) or np.dtype(dtype).itemsize)
        if pos + nbytes > len(data):
            raise TorchFileError(f"{path}: file ends inside storage {key!r}")
        blobs[key] = data[pos:pos + nbytes]
        pos += nbytes
    return _materialize(obj)


def _materialize(obj):
    """Rebuild the deferred tensors of a legacy file, keeping the containers' shapes."""
    if isinstance(obj, _LazyTensor):
        return _rebuild_tensor_v2(*obj.args)
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def load_torch_file(path):
    """The object a ``torch.save`` file holds, tensors as NumPy arrays; nothing is unpickled.

    :param path: a ``.pth`` / ``.pt`` file written by ``torch.save`` (zip or legacy layout).
    :return: the saved object (dicts as ``OrderedDict``/``dict``, tensors as C-contiguous
        host ``numpy.ndarray`` with the storage's dtype; bfloat16 becomes float32).
    :raises UnsafePickleError: the pickle names a non-whitelisted global or opcode.
    :raises TorchFileError: the file is not a readable torch.save file.
    :raises FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"torch file not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return _read_zip(path, zf)
    size = path.stat().st_size
    if size > MAX_ARCHIVE_BYTES:   # the legacy layout is read whole: bound it first
        raise TorchFileError(f"{path}: {size} bytes, past the limit of {MAX_ARCHIVE_BYTES} "
                             "bytes for one file (autodiff.serialization.MAX_ARCHIVE_BYTES)")
    return _read_legacy(path, path.read_bytes())


def read_torch_state_dict(path):
    """A flat ``{name: numpy array}`` state_dict from a ``torch.save`` file, read safely.

    Accepts a saved ``state_dict`` or a dict holding one under ``"state_dict"``; every
    value must be a tensor (anything else raises, naming the key).
    """
    obj = load_torch_file(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise TorchFileError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    out = OrderedDict()
    for key, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise TorchFileError(f"{path}: state_dict entry {key!r} is a "
                                 f"{type(value).__name__}, not a tensor")
        out[str(key)] = value
    return out
