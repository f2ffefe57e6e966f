"""Convert weights from PyTorch and common array files into a refgen ``state_dict``.

``convert_state_dict(source, target_module=None, rename=None)`` accepts

* a PyTorch ``state_dict`` (torch tensors are read with ``.detach().cpu().numpy()``; torch
  itself is never imported here), or any mapping of names to NumPy/CuPy arrays, autodiff
  Tensors or scalars;
* a path to a ``.npz`` file (read with ``allow_pickle=False``; a file written by
  ``autodiff.save`` is read through ``autodiff.load``);
* a path to a ``.safetensors`` file, parsed here (``read_safetensors``).

It returns an ordered dict of name -> autodiff Tensor (on the active backend) that
``module.load_state_dict`` takes. With ``target_module`` every name and shape is checked
against ``target_module.state_dict()`` and ONE ``StateDictMismatch`` error lists every
missing, unexpected and mis-shaped key. ``rename`` maps source names to refgen names: a dict
(exact names; names not in it are kept) or a function name -> new name (return None to drop).

safetensors format (https://github.com/huggingface/safetensors, "Format"): 8 bytes, an
unsigned little-endian 64-bit header size N; N bytes of UTF-8 JSON mapping each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte buffer after the
header), plus an optional "__metadata__" string map; then the raw little-endian, row-major
tensor bytes. BF16 (the top 16 bits of a float32) is widened to float32 exactly.
"""
import json
import math
import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np  # host-side: file parsing and the host copies of checkpoint arrays

import autodiff
from autodiff import backend as B
from autodiff.serialization import MAX_ARCHIVE_BYTES, read_npz

__all__ = ["convert_state_dict", "read_safetensors", "StateDictMismatch", "SAFETENSORS_DTYPES"]

# safetensors dtype -> little-endian NumPy dtype of the stored bytes (BF16 handled apart).
SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}


class StateDictMismatch(ValueError):
    """The converted names or shapes do not match the target module's state_dict."""

    def __init__(self, message, missing=(), unexpected=(), mis_shaped=()):
        super().__init__(message)
        self.missing, self.unexpected, self.mis_shaped = list(missing), list(unexpected), list(mis_shaped)


def _bad_file(path, why):
    return ValueError(f"{os.fspath(path)}: not a valid safetensors file: {why}")


def read_safetensors(path):
    """Read every tensor of a ``.safetensors`` file: name -> host NumPy array (native byte
    order; BF16 as float32), in the header's order."""
    size = os.path.getsize(path)
    if size > MAX_ARCHIVE_BYTES:   # read whole below: bound it first
        raise _bad_file(path, f"{size} bytes, past the limit of {MAX_ARCHIVE_BYTES} bytes for "
                              "one file (autodiff.serialization.MAX_ARCHIVE_BYTES)")
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 8:
        raise _bad_file(path, f"{len(raw)} bytes, shorter than the 8-byte header size")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise _bad_file(path, f"header size {n} exceeds the {len(raw) - 8} bytes after it")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad_file(path, f"header is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad_file(path, "header JSON is not an object")
    buffer = memoryview(raw)[8 + n:]
    out = OrderedDict()
    claimed = 0   # the format forbids overlapping entries: together they fit in the buffer
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise _bad_file(path, f"entry {name!r} lacks dtype/shape/data_offsets")
        dtype = info["dtype"]
        if dtype not in SAFETENSORS_DTYPES:
            raise _bad_file(path, f"entry {name!r} has dtype {dtype!r}; supported: "
                                  f"{', '.join(SAFETENSORS_DTYPES)}")
        shape = tuple(int(s) for s in info["shape"])
        if any(s < 0 for s in shape):
            raise _bad_file(path, f"entry {name!r} has a negative size in shape {shape}")
        begin, end = (int(o) for o in info["data_offsets"])
        stored = np.dtype(SAFETENSORS_DTYPES[dtype])
        want = math.prod(shape) * stored.itemsize
        if not 0 <= begin <= end <= len(buffer) or end - begin != want:
            raise _bad_file(path, f"entry {name!r} ({dtype}, shape {shape}) has data_offsets "
                                  f"[{begin}, {end}] but needs {want} bytes within a "
                                  f"{len(buffer)}-byte buffer")
        claimed += want
        if claimed > len(buffer):
            raise _bad_file(path, f"entry {name!r} overlaps others: the entries claim more "
                                  f"than the {len(buffer)}-byte buffer")
        arr = np.frombuffer(buffer[begin:end], dtype=stored).reshape(shape)
        if dtype == "BF16":
            # bfloat16 is the upper half of a float32: shift into place, reinterpret.
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    return out


def _read_npz(path):
    arrays = read_npz(path, who="convert_state_dict")   # bounded; never unpickles
    if "__refgen__" not in arrays:
        return OrderedDict(arrays)
    obj = autodiff.load(path)          # written by autodiff.save: nested structure in JSON
    if not isinstance(obj, Mapping):
        raise ValueError(f"{os.fspath(path)}: holds a {type(obj).__name__}, not a dict of arrays")
    return OrderedDict(obj)


def _load_source(source):
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"convert_state_dict: no such file {path!r}")
        if path.endswith(".safetensors"):
            return read_safetensors(path)
        if path.endswith(".npz"):
            return _read_npz(path)
        raise ValueError(f"convert_state_dict: {path!r}: unknown file type; known: .npz, "
                         f".safetensors")
    if isinstance(source, Mapping):
        return source
    raise TypeError(f"convert_state_dict: source must be a state_dict (mapping), or a path to "
                    f"a .npz or .safetensors file, got {type(source).__name__}")


def _host_array(value, name):
    """A host NumPy array from a torch tensor, autodiff Tensor, NumPy/CuPy array or scalar."""
    if isinstance(value, autodiff.Tensor):
        return B.to_numpy(value.data)
    if hasattr(value, "detach") and hasattr(value, "cpu"):          # torch, by duck typing
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":   # NumPy has no bfloat16
            value = value.float()
        return np.asarray(value.numpy())
    if B.is_backend_array(value) or isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return np.asarray(B.to_numpy(value))
    raise TypeError(f"convert_state_dict: value of {name!r} is a {type(value).__name__}, not a "
                    f"tensor or an array")


def _renamer(rename):
    if rename is None:
        return lambda k: k
    if isinstance(rename, Mapping):
        return lambda k: rename.get(k, k)
    if callable(rename):
        return rename
    raise TypeError(f"convert_state_dict: rename must be a dict or a function, got "
                    f"{type(rename).__name__}")


def _check_against(converted, target_module):
    expected = OrderedDict((k, tuple(v.shape)) for k, v in target_module.state_dict().items())
    missing = [k for k in expected if k not in converted]
    unexpected = [k for k in converted if k not in expected]
    mis_shaped = [f"{k}: source shape {tuple(converted[k].shape)}, model shape {expected[k]}"
                  for k in expected if k in converted and tuple(converted[k].shape) != expected[k]]
    if missing or unexpected or mis_shaped:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): " + ", ".join(map(repr, missing)))
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(map(repr, unexpected)))
        if mis_shaped:
            parts.append(f"mis-shaped keys ({len(mis_shaped)}): " + "; ".join(mis_shaped))
        raise StateDictMismatch(
            f"convert_state_dict: the source does not match {type(target_module).__name__}:\n  "
            + "\n  ".join(parts), missing, unexpected, mis_shaped)


def convert_state_dict(source, target_module=None, rename=None):
    """Convert ``source`` (a PyTorch/array state_dict, or a .npz/.safetensors path) into a
    refgen state_dict: an OrderedDict of name -> autodiff Tensor, names mapped by ``rename``.

    With ``target_module`` the names and shapes are checked against its ``state_dict()``
    (raising one ``StateDictMismatch`` that lists every problem); dtypes are left as stored
    (``load_state_dict`` casts to each parameter's dtype).
    """
    entries = _load_source(source)
    new_name = _renamer(rename)
    converted, origin = OrderedDict(), {}
    for name, value in entries.items():
        if not isinstance(name, str):
            raise TypeError(f"convert_state_dict: names must be strings, got {name!r}")
        target = new_name(name)
        if target is None:
            continue
        if target in converted:
            raise ValueError(f"convert_state_dict: {origin[target]!r} and {name!r} both map to "
                             f"{target!r}")
        origin[target] = name
        converted[target] = autodiff.Tensor(B.to_backend(_host_array(value, name)))
    if target_module is not None:
        _check_against(converted, target_module)
    return converted
