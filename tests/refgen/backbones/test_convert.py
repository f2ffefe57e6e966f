"""convert_state_dict and the safetensors reader: round trips through a safetensors writer
written here from the format description, .npz files, renaming, and the one clear error."""
import json
import struct

import numpy as np  # host-side: files and reference arrays in tests
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff import nn
from refgen.backbones.convert import (SAFETENSORS_DTYPES, StateDictMismatch, convert_state_dict,
                                      read_safetensors)

CODES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
         "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def write_safetensors(path, tensors, metadata=None, align=8):
    """Our own writer: {name: (code, array)} -> file. BF16 arrays are given as float32 whose
    low 16 bits are dropped (truncation)."""
    header, chunks, offset = {}, [], 0
    for name, (code, arr) in tensors.items():
        if code == "BF16":
            raw = (np.ascontiguousarray(arr, dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(arr, dtype=np.dtype(CODES[code]).newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % align)          # the format allows space padding
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def _bf16_representable(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return (x.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)


def test_safetensors_round_trip_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "a.f64": ("F64", rng.standard_normal((3, 4))),
        "a.f32": ("F32", rng.standard_normal((2, 2, 2)).astype(np.float32)),
        "a.f16": ("F16", rng.standard_normal(5).astype(np.float16)),
        "a.bf16": ("BF16", _bf16_representable(rng, (4, 3))),
        "b.i64": ("I64", rng.integers(-10**12, 10**12, size=(6,))),
        "b.i32": ("I32", rng.integers(-1000, 1000, size=(2, 3)).astype(np.int32)),
        "b.u8": ("U8", rng.integers(0, 256, size=(7,)).astype(np.uint8)),
        "b.bool": ("BOOL", rng.random((3, 3)) < 0.5),
        "scalar": ("F64", np.array(2.5)),
        "empty": ("F32", np.zeros((0, 3), np.float32)),
    }
    path = tmp_path / "w.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt"})
    back = read_safetensors(path)
    assert list(back) == list(tensors)
    for name, (code, arr) in tensors.items():
        want = np.float32 if code == "BF16" else CODES[code]
        assert back[name].dtype == want, name
        np.testing.assert_array_equal(back[name], arr, err_msg=name)


@given(code=st.sampled_from(sorted(CODES)), shape=st.lists(st.integers(0, 4), max_size=3),
       seed=st.integers(0, 99))
def test_safetensors_round_trip_property(tmp_path_factory, code, shape, seed):
    rng = np.random.default_rng(seed)
    arr = (rng.standard_normal(shape) * 100).astype(CODES[code])
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    write_safetensors(path, {"x": (code, arr), "y": ("BF16", _bf16_representable(rng, shape))})
    back = read_safetensors(path)
    np.testing.assert_array_equal(back["x"], arr)
    assert back["x"].shape == tuple(shape) and back["x"].dtype == CODES[code]


def test_safetensors_errors_name_the_file_and_the_problem(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="bad.safetensors.*shorter than the 8-byte"):
        read_safetensors(p)
    p.write_bytes(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(ValueError, match="header size 1000 exceeds"):
        read_safetensors(p)
    p.write_bytes(struct.pack("<Q", 5) + b"{nope")
    with pytest.raises(ValueError, match="not UTF-8 JSON"):
        read_safetensors(p)
    head = json.dumps({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}).encode()
    p.write_bytes(struct.pack("<Q", len(head)) + head + b"\x00")
    with pytest.raises(ValueError, match="'F8_E4M3'; supported: F64"):
        read_safetensors(p)
    head = json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    p.write_bytes(struct.pack("<Q", len(head)) + head + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"'w' \(F32, shape \(3,\)\).*needs 12 bytes"):
        read_safetensors(p)
    assert set(SAFETENSORS_DTYPES) >= {"F64", "F32", "F16", "BF16", "I64", "I32", "U8", "BOOL"}


# ---------------------------------------------------------------------------- convert_state_dict
def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def _arrays(model, seed=1):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(tuple(v.shape)) for k, v in model.state_dict().items()}


def _same_outputs(model, arrays):
    fresh = _model()
    fresh.load_state_dict(convert_state_dict(arrays, fresh))
    x = autodiff.randn(5, 3)
    ref = _model()
    ref.load_state_dict({k: autodiff.tensor(v) for k, v in arrays.items()})
    np.testing.assert_array_equal(fresh(x).numpy(), ref(x).numpy())


def test_convert_from_arrays_npz_refgen_archive_and_safetensors(tmp_path):
    model = _model()
    arrays = _arrays(model)
    _same_outputs(model, arrays)
    np.savez(tmp_path / "plain.npz", **arrays)
    autodiff.save({k: autodiff.tensor(v) for k, v in arrays.items()}, tmp_path / "ours.npz")
    write_safetensors(tmp_path / "w.safetensors", {k: ("F64", v) for k, v in arrays.items()})
    for name in ("plain.npz", "ours.npz", "w.safetensors"):
        got = convert_state_dict(tmp_path / name, model)
        assert list(got) == list(arrays), name
        for k in arrays:
            assert isinstance(got[k], autodiff.Tensor)
            np.testing.assert_array_equal(got[k].numpy(), arrays[k], err_msg=f"{name}: {k}")


def test_rename_by_dict_and_function():
    model = _model()
    arrays = {"net." + k: v for k, v in _arrays(model).items()}
    arrays["net.extra"] = np.zeros(1)
    got = convert_state_dict(arrays, model,
                             rename=lambda k: None if k == "net.extra" else k[len("net."):])
    assert list(got) == list(model.state_dict())
    got = convert_state_dict({"a": np.ones(2), "b": np.zeros(2)}, rename={"a": "c"})
    assert list(got) == ["c", "b"]
    with pytest.raises(ValueError, match="'a' and 'b' both map to 'b'"):
        convert_state_dict({"a": np.ones(2), "b": np.zeros(2)}, rename={"a": "b"})


def test_one_error_lists_missing_unexpected_and_misshaped_keys():
    model = _model()
    arrays = _arrays(model)
    del arrays["1.weight"]
    arrays["2.weight"] = np.zeros((3, 3))
    arrays["head.bias"] = np.zeros(2)
    with pytest.raises(StateDictMismatch) as info:
        convert_state_dict(arrays, model)
    msg = str(info.value)
    assert "missing keys (1): '1.weight'" in msg
    assert "unexpected keys (1): 'head.bias'" in msg
    assert "2.weight: source shape (3, 3), model shape (2, 4)" in msg
    assert info.value.missing == ["1.weight"] and info.value.unexpected == ["head.bias"]


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        convert_state_dict(tmp_path / "absent.npz")
    (tmp_path / "w.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown file type; known: .npz, .safetensors"):
        convert_state_dict(tmp_path / "w.pt")
    with pytest.raises(TypeError, match="source must be a state_dict"):
        convert_state_dict([1, 2])
    with pytest.raises(TypeError, match="value of 'w' is a list"):
        convert_state_dict({"w": [1.0, 2.0]})
    with pytest.raises(TypeError, match="rename must be a dict or a function"):
        convert_state_dict({"w": np.ones(1)}, rename=3)
