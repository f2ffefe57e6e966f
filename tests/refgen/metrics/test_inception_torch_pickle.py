"""The torch.save reader: tensors rebuilt exactly, nothing outside the whitelist executed.

Files here are written by a small independent writer (pickle opcodes by hand, zip layout
as torch.save makes it), so the tests run without torch; test_inception_crosscheck.py
reads files written by torch itself.
"""
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np  # host-side: reference arrays and raw storage bytes in tests
import pytest
from hypothesis import given, strategies as st

from refgen.metrics.torch_pickle import (TorchFileError, UnsafePickleError, load_torch_file,
                                         read_torch_state_dict)

# ----------------------------------------------------------------- an independent writer
PROTO2, MARK, TUPLE, EMPTY_TUPLE, REDUCE = b"\x80\x02", b"(", b"t", b")", b"R"
BINPERSID, SETITEMS, STOP, NEWFALSE = b"Q", b"u", b".", b"\x89"
STORAGE_NAMES = {"<f4": "FloatStorage", "<f8": "DoubleStorage", "<i8": "LongStorage",
                 "<i4": "IntStorage", "<f2": "HalfStorage", "u1": "ByteStorage",
                 "?": "BoolStorage", "i1": "CharStorage"}


def _storage_name(dtype):
    return next(name for d, name in STORAGE_NAMES.items() if np.dtype(d) == dtype)


def _str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(n):
    return b"J" + struct.pack("<i", n)


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _tuple(items):
    return MARK + b"".join(items) + TUPLE if items else EMPTY_TUPLE


def _ordered_dict(pairs):
    body = _global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    if pairs:
        body += MARK + b"".join(k + v for k, v in pairs) + SETITEMS
    return body


def _tensor(storage_key, storage_name, numel, offset, size, stride):
    pid = _tuple([_str("storage"), _global("torch", storage_name), _str(storage_key),
                  _str("cpu"), _int(numel)]) + BINPERSID
    args = _tuple([pid, _int(offset), _tuple([_int(s) for s in size]),
                   _tuple([_int(s) for s in stride]), NEWFALSE, _ordered_dict([])])
    return _global("torch._utils", "_rebuild_tensor_v2") + args + REDUCE


def _views(base, view):
    item = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return offset if view.size else 0, tuple(s // item for s in view.strides)


def write_zip(path, entries, big_endian=False, prefix="archive"):
    """entries: name -> (base array (the storage), view of it); a nested dict nests."""
    storages = {}

    def encode(obj):
        pairs = []
        for name, value in obj.items():
            if isinstance(value, dict):
                pairs.append((_str(name), encode(value)))
                continue
            base, view = value
            key = str(len(storages))
            storages[key] = base
            offset, stride = _views(base, view)
            pairs.append((_str(name), _tensor(key, _storage_name(base.dtype), base.size,
                                              offset, view.shape, stride)))
        return _ordered_dict(pairs)

    pkl = PROTO2 + encode(entries) + STOP
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}/data.pkl", pkl)
        zf.writestr(f"{prefix}/byteorder", "big" if big_endian else "little")
        for key, base in storages.items():
            data = base.astype(base.dtype.newbyteorder(">")) if big_endian else base
            zf.writestr(f"{prefix}/data/{key}", np.ascontiguousarray(data).tobytes())
    return path


# ----------------------------------------------------------------- round trips
DTYPES = list(STORAGE_NAMES)


@st.composite
def strided_views(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    base = (rng.standard_normal(shape) * 50).astype(dtype)
    index = tuple(slice(draw(st.integers(0, n - 1)), None, draw(st.integers(1, 3)))
                  for n in shape)
    view = base[index]
    if draw(st.booleans()):
        view = view.transpose(draw(st.permutations(range(view.ndim))))
    return base, view


@given(views=st.lists(strided_views(), min_size=1, max_size=4), big=st.booleans())
def test_zip_round_trip_exact(tmp_path_factory, views, big):
    """Offsets, strides, transposes, every dtype, either byte order: the same arrays back."""
    path = tmp_path_factory.mktemp("z") / "sd.pth"
    entries = OrderedDict((f"t{i}", v) for i, v in enumerate(views))
    out = read_torch_state_dict(write_zip(path, entries, big_endian=big))
    assert list(out) == list(entries)
    for name, (base, view) in entries.items():
        assert out[name].dtype == view.dtype.newbyteorder("=")
        assert out[name].shape == view.shape
        np.testing.assert_array_equal(out[name], view)
        assert out[name].flags.c_contiguous and out[name].flags.owndata


def test_zero_dim_nested_and_shared_storage(tmp_path):
    base = np.arange(12, dtype="<f8")
    counter = np.array([7], dtype="<i8")
    entries = OrderedDict(a=(base, base[2:8].reshape(2, 3)),
                          inner=OrderedDict(step=(counter, counter.reshape(()))),
                          empty=(base, base[:0]))
    obj = load_torch_file(write_zip(tmp_path / "n.pth", entries, prefix="model"))
    np.testing.assert_array_equal(obj["a"], [[2, 3, 4], [5, 6, 7]])
    assert obj["inner"]["step"].shape == () and obj["inner"]["step"] == 7
    assert obj["empty"].shape == (0,)
    with pytest.raises(TorchFileError, match="'inner' is a OrderedDict, not a tensor"):
        read_torch_state_dict(tmp_path / "n.pth")


def test_view_past_the_storage_is_an_error(tmp_path):
    base = np.arange(6, dtype="<f4")
    entry = _tensor("0", "FloatStorage", 6, 4, (3,), (1,))
    pkl = PROTO2 + _ordered_dict([(_str("w"), entry)]) + STOP
    path = tmp_path / "bad.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/data/0", base.tobytes())
    with pytest.raises(TorchFileError, match="reads past its 6 elements"):
        read_torch_state_dict(path)


def test_missing_storage_entry_is_named(tmp_path):
    entry = _tensor("9", "FloatStorage", 2, 0, (2,), (1,))
    pkl = PROTO2 + _ordered_dict([(_str("w"), entry)]) + STOP
    path = tmp_path / "m.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
    with pytest.raises(TorchFileError, match="archive/data/9 .* missing"):
        read_torch_state_dict(path)


def test_not_a_torch_file(tmp_path):
    (tmp_path / "t.pth").write_text("hello, not a checkpoint")
    with pytest.raises(TorchFileError, match="not a torch.save file"):
        load_torch_file(tmp_path / "t.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_torch_file(tmp_path / "nope.pth")


# ----------------------------------------------------------------- nothing is executed
def _payloads(marker):
    """Pickles that create ``marker`` when unpickled: via os.system and via builtins.open."""
    touch = PROTO2 + _global("os", "system") + _tuple([_str(f"touch {marker}")]) + REDUCE + STOP
    opener = (PROTO2 + _global("builtins", "open") + _tuple([_str(str(marker)), _str("w")])
              + REDUCE + STOP)
    return {"os.system": touch, "builtins.open": opener}


@pytest.mark.parametrize("name", ["os.system", "builtins.open"])
@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_malicious_global_is_refused_without_running(tmp_path, name, layout):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[name]
    if name == "builtins.open":
        # The payload is live: real unpickling creates the file (then remove it).
        pickle.loads(payload).close()
        assert marker.exists()
        marker.unlink()
    path = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", payload)
    else:
        path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=f"refusing to load global {name}"):
        load_torch_file(path)
    assert not marker.exists()


def test_malicious_global_after_valid_header_is_refused(tmp_path):
    """Legacy layout: a genuine magic/version/sysinfo header, then the payload."""
    marker = tmp_path / "pwned"
    header = (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2)
              + pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2))
    path = tmp_path / "evil.pt"
    path.write_bytes(header + _payloads(marker)["os.system"])
    with pytest.raises(UnsafePickleError, match="os.system"):
        load_torch_file(path)
    assert not marker.exists()


def test_stack_global_protocol4_is_refused(tmp_path):
    path = tmp_path / "evil4.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"f": print}, protocol=4))
    with pytest.raises(UnsafePickleError, match="refusing to load global builtins.print"):
        load_torch_file(path)


def test_calling_a_non_function_and_unknown_opcodes_are_refused(tmp_path):
    call_storage = PROTO2 + _global("torch", "FloatStorage") + EMPTY_TUPLE + REDUCE + STOP
    newobj = PROTO2 + _global("collections", "OrderedDict") + EMPTY_TUPLE + b"\x81" + STOP
    for pkl, message in [(call_storage, "REDUCE of torch.FloatStorage"),
                         (newobj, "opcode NEWOBJ")]:
        path = tmp_path / "x.pth"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", pkl)
        with pytest.raises(UnsafePickleError, match=message):
            load_torch_file(path)
