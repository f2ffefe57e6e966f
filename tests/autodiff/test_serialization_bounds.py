"""``autodiff.load`` reads in bounded memory: crafted archives (zip bombs, headers that
lie about the data's size, entries larger than the limit) are refused before anything
large is decompressed or allocated. Each crafted file is made here, small."""
import io
import tracemalloc
import zipfile

import numpy as np  # host-side: the tests write raw .npy bytes and zip archives
import pytest

import autodiff
from autodiff import serialization


def _npy_header(shape, dtype="<f8"):
    """The bytes of a version 1.0 ``.npy`` header for ``shape`` and ``dtype``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _valid_archive(path, extra=None):
    """A real refgen archive holding ``{"w": zeros(3)}``; ``extra`` writes more entries."""
    autodiff.save({"w": autodiff.zeros(3)}, path)
    if extra is not None:
        with zipfile.ZipFile(path, "a") as zf:
            extra(zf)
    return path


def _peak_bytes_of(fn):
    """Peak bytes allocated (Python and NumPy, which reports to tracemalloc) while fn runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    except Exception as exc:   # the refusal itself is what the callers check
        peak = tracemalloc.get_traced_memory()[1]
        raise _Refused(peak, exc) from exc
    finally:
        tracemalloc.stop()


class _Refused(Exception):
    def __init__(self, peak, exc):
        super().__init__(str(exc))
        self.peak, self.exc = peak, exc


def test_zip_bomb_is_refused_before_decompressing(tmp_path):
    """128 MiB of zeros deflate to about 128 KB: the expansion check refuses the archive
    from the sizes in the zip directory, without allocating the array."""
    n = 2**24  # float64 elements: 128 MiB
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # The structure entry of a real archive, whose arrays/w the bomb replaces.
        with zipfile.ZipFile(_valid_archive(tmp_path / "ok.npz")) as ok:
            zf.writestr("__refgen__.npy", ok.read("__refgen__.npy"))
        with zf.open("arrays/w.npy", "w", force_zip64=True) as f:
            f.write(_npy_header((n,)))
            chunk = bytes(2**22)
            for _ in range(n * 8 // len(chunk)):
                f.write(chunk)
    assert path.stat().st_size < 2**20   # a small file ...
    with pytest.raises(_Refused) as info:
        _peak_bytes_of(lambda: autodiff.load(path))
    assert isinstance(info.value.exc, ValueError)
    assert "zip bomb" in str(info.value) and "bomb.npz" in str(info.value)
    assert info.value.peak < 8 * 2**20   # ... refused without allocating its 128 MiB


def test_header_that_lies_about_the_size_is_refused(tmp_path):
    """The zip directory says 80 bytes; the .npy header inside claims 2**40 float64s. The
    header is checked against the declared size before the array is allocated."""
    def lie(zf):
        zf.writestr("arrays/big.npy", _npy_header((2**40,)) + bytes(80))
    path = _valid_archive(tmp_path / "lie.npz", lie)
    with pytest.raises(_Refused) as info:
        _peak_bytes_of(lambda: serialization._BoundedNpz(zipfile.ZipFile(path), str(path))["arrays/big"])
    assert "shape (1099511627776,)" in str(info.value) and "lie.npz" in str(info.value)
    assert info.value.peak < 2**20


def test_declared_size_over_the_limit_is_refused(tmp_path):
    path = _valid_archive(tmp_path / "ok.npz")
    assert autodiff.load(path)["w"].shape == (3,)
    with pytest.raises(ValueError, match=r"ok\.npz.*more than the limit.*max_bytes"):
        autodiff.load(path, max_bytes=100)


def test_damaged_data_fails_the_crc_and_is_named(tmp_path):
    """Sizes that agree, then damaged bytes: zipfile's CRC check refuses them, naming the file."""
    path = tmp_path / "ok.npz"
    autodiff.save({"w": autodiff.arange(4.0)}, path)
    raw = bytearray(path.read_bytes())
    # Flip bytes inside the data of arrays/w: the stored CRC no longer matches.
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("arrays/w.npy")
    data_at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 128
    raw[data_at:data_at + 8] = b"\xff" * 8
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"ok\.npz.*not a valid refgen archive"):
        autodiff.load(path)


def test_object_arrays_are_never_unpickled(tmp_path):
    def objects(zf):
        zf.writestr("arrays/o.npy", _npy_header((1,), "|O") + b"\x80\x04N.")
    path = _valid_archive(tmp_path / "obj.npz", objects)
    with pytest.raises(ValueError, match="never unpickled"):
        serialization._BoundedNpz(zipfile.ZipFile(path), str(path))["arrays/o"]


def test_bounded_reader_round_trips_every_layout(tmp_path):
    """The bounded reader gives back exactly what NumPy's own reader does: C and Fortran
    order, big-endian data (made native), 0-d and empty arrays, integers and bools."""
    arrays = {"c": np.arange(12.0).reshape(3, 4), "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
              "be": np.arange(5, dtype=">i4"), "s": np.array(2.5), "e": np.zeros((0, 3)),
              "b": np.array([True, False])}
    path = tmp_path / "plain.npz"
    np.savez(path, **arrays)
    with zipfile.ZipFile(path) as zf:
        ours = serialization._BoundedNpz(zf, str(path))
        for name, ref in arrays.items():
            got = ours[name]
            assert got.dtype.isnative and got.dtype == ref.dtype.newbyteorder("=")
            np.testing.assert_array_equal(got, ref)
            assert got.shape == ref.shape
