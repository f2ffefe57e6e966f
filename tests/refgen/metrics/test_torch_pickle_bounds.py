"""The torch-file reader works in bounded memory: a zip bomb among the storages, and a
pickle that builds huge tensors over a one-element storage (stride 0), are refused before
the memory is allocated. The crafted files are made here, small."""
import tracemalloc
import zipfile

import numpy as np  # host-side: raw storage bytes
import pytest

from refgen.metrics import torch_pickle
from refgen.metrics.torch_pickle import TorchFileError, read_torch_state_dict
from tests.refgen.metrics.test_inception_torch_pickle import (PROTO2, STOP, _ordered_dict,
                                                               _str, _tensor)


def _peak_while_refused(fn, error):
    """(exception, peak traced bytes) of ``fn``, which must raise ``error``."""
    tracemalloc.start()
    try:
        with pytest.raises(error) as info:
            fn()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_bomb_storage_is_refused_before_decompressing(tmp_path):
    n = 2**25  # float32 elements: 128 MiB of zeros, about 128 KB deflated
    pkl = PROTO2 + _ordered_dict([(_str("w"), _tensor("0", "FloatStorage", n, 0, (n,), (1,)))]) + STOP
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        with zf.open("archive/data/0", "w", force_zip64=True) as f:
            chunk = bytes(2**22)
            for _ in range(n * 4 // len(chunk)):
                f.write(chunk)
    assert path.stat().st_size < 2**20
    exc, peak = _peak_while_refused(lambda: read_torch_state_dict(path), ValueError)
    assert "zip bomb" in str(exc) and "bomb.pth" in str(exc)
    assert peak < 8 * 2**20


def test_stride_zero_tensors_cannot_build_past_the_limit(tmp_path, monkeypatch):
    """Two tensors of 2**20 float32 each over ONE stored element (stride 0): 8 MiB built
    from 4 bytes read. With the per-file limit set to 6 MiB the second one is refused."""
    monkeypatch.setattr(torch_pickle, "MAX_ARCHIVE_BYTES", 6 * 2**20)
    n = 2**20
    pairs = [(_str(name), _tensor("0", "FloatStorage", 1, 0, (n,), (0,))) for name in "ab"]
    path = tmp_path / "expand.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", PROTO2 + _ordered_dict(pairs) + STOP)
        zf.writestr("archive/data/0", np.ones(1, "<f4").tobytes())
    exc, peak = _peak_while_refused(lambda: read_torch_state_dict(path), TorchFileError)
    assert "past the limit" in str(exc) and "storage '0'" in str(exc)
    assert peak < 6 * 2**20


def test_stride_zero_tensor_within_the_limit_is_read(tmp_path):
    """The limit does not refuse a legitimate expanded tensor: 1 element seen 5 times."""
    path = tmp_path / "ok.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", PROTO2 + _ordered_dict(
            [(_str("w"), _tensor("0", "FloatStorage", 1, 0, (5,), (0,)))]) + STOP)
        zf.writestr("archive/data/0", np.full(1, 2.5, "<f4").tobytes())
    np.testing.assert_array_equal(read_torch_state_dict(path)["w"], np.full(5, 2.5, "f4"))
