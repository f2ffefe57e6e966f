"""Weights files are read in bounded memory: safetensors entries may not overlap (so a
small file cannot expand into many copies of one region), a plain ``.npz`` goes through the
same bounded reader as checkpoints, and ``refgen eval --samples`` refuses a ``.npy`` whose
header claims more data than the file holds, by size, without allocating it."""
import io
import json
import tracemalloc
import zipfile

import numpy as np  # host-side: crafted file bytes
import pytest

from refgen.backbones.convert import convert_state_dict, read_safetensors


def _safetensors(path, header, data):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def test_overlapping_safetensors_entries_are_refused(tmp_path):
    data = np.arange(4, dtype="<f4").tobytes()
    entries = {f"w{i}": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]} for i in range(3)}
    path = _safetensors(tmp_path / "overlap.safetensors", entries, data)
    with pytest.raises(ValueError, match=r"overlap\.safetensors.*'w1' overlaps"):
        read_safetensors(path)
    ok = _safetensors(tmp_path / "ok.safetensors",
                      {"w0": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, data)
    np.testing.assert_array_equal(read_safetensors(ok)["w0"], np.arange(4.0).reshape(2, 2))


def test_negative_safetensors_shape_is_refused(tmp_path):
    path = _safetensors(tmp_path / "neg.safetensors",
                        {"w": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}},
                        bytes(16))
    with pytest.raises(ValueError, match=r"negative size in shape \(-2, -2\)"):
        read_safetensors(path)


def test_plain_npz_zip_bomb_is_refused_by_convert(tmp_path):
    n = 2**24  # float64 elements: 128 MiB of zeros, about 128 KB deflated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            for _ in range(n * 8 // 2**22):
                f.write(bytes(2**22))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb\.npz.*zip bomb"):
            convert_state_dict(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_samples_npy_with_a_lying_header_is_one_line(tmp_path, capsys):
    from refgen.cli import main
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**40, 64)})
    path = tmp_path / "lie.npy"
    path.write_bytes(header.getvalue() + bytes(64))
    assert main(["eval", "--samples", str(path), "--data", "digits", "--metrics", "fid"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lie.npy" in err and "not a readable .npy" in err
