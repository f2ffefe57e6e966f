"""The FID weights file: search order, the missing-weights error, hash checks, offline
download errors, atomic download through a file:// URL, and the .npz conversion.

No network: the real weights are never fetched here.
"""
import hashlib
from collections import OrderedDict

import numpy as np  # host-side: reference arrays in tests
import pytest

import autodiff
from refgen.metrics import inception_weights as iw
from refgen.metrics.inception import FIDInceptionV3, load_fid_inception
from tests.refgen.metrics.test_inception_torch_pickle import write_zip


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No REFGEN_DATA, an empty cache dir: only what a test puts in place is found."""
    monkeypatch.delenv("REFGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_missing_weights_error_says_where_and_how(isolated, monkeypatch):
    monkeypatch.setenv("REFGEN_DATA", str(isolated / "data"))
    with pytest.raises(iw.WeightsNotFoundError) as info:
        load_fid_inception()
    text = str(info.value)
    for part in [str(isolated / "data" / (iw.FID_WEIGHTS_STEM + ".pth")),
                 str(isolated / "cache" / "refgen" / (iw.FID_WEIGHTS_STEM + ".npz")),
                 str(isolated / "data" / "inception" / (iw.FID_WEIGHTS_STEM + ".pth")),
                 "refgen data download inception", iw.FID_WEIGHTS_URL, iw.FID_WEIGHTS_SHA256]:
        assert part in text


def test_nonexistent_path_named(isolated):
    with pytest.raises(iw.WeightsNotFoundError, match="nowhere.pth does not exist"):
        load_fid_inception(isolated / "nowhere.pth")


def test_published_hash_matches_the_file_name():
    # torch hub names files <stem>-<first 8 hex of sha256>.<ext>
    assert iw.FID_WEIGHTS_SHA256.startswith(iw.FID_WEIGHTS_STEM.rsplit("-", 1)[1])
    assert iw.FID_WEIGHTS_URL.endswith(iw.FID_WEIGHTS_STEM + ".pth")


def test_offline_download_is_a_clear_error(isolated):
    with pytest.raises(ConnectionError, match="(?s)could not download the FID Inception weights"
                                              ".*without internet"):
        iw.download_inception_weights(isolated / "w", url=(isolated / "absent.pth").as_uri())
    assert not (isolated / "w").exists() or not any((isolated / "w").iterdir())


def test_download_checks_hash_and_writes_atomically(isolated):
    payload = b"not really inception weights" * 1000
    source = isolated / "mirror.pth"
    source.write_bytes(payload)
    dest = isolated / "w"
    with pytest.raises(ValueError, match="sha256 .* does not match .* nothing was written"):
        iw.download_inception_weights(dest, url=source.as_uri())   # the real hash: mismatch
    assert not dest.exists() or list(dest.iterdir()) == []
    digest = hashlib.sha256(payload).hexdigest()
    lines = []
    target = iw.download_inception_weights(dest, url=source.as_uri(), sha256=digest,
                                           progress=lines.append)
    assert target == dest / (iw.FID_WEIGHTS_STEM + ".pth")
    assert target.read_bytes() == payload and list(dest.iterdir()) == [target]
    assert "downloaded" in lines[-1]
    # Present and valid: not fetched again (the mirror is gone now).
    source.unlink()
    assert iw.download_inception_weights(dest, url=source.as_uri(), sha256=digest,
                                         progress=lines.append) == target
    assert "present and verified" in lines[-1]


@pytest.fixture(scope="module")
def random_pth(tmp_path_factory):
    """A random-weight FID Inception state_dict as a torch-layout .pth (float32)."""
    model = FIDInceptionV3().float()
    gen = np.random.default_rng(0)
    state = OrderedDict()
    for name, value in model.state_dict().items():
        arr = value.numpy()
        arr = (gen.standard_normal(arr.shape).astype(arr.dtype) if arr.dtype.kind == "f"
               else np.full(arr.shape, 7, dtype=arr.dtype))
        state[name] = (arr.reshape(-1), arr)
    path = tmp_path_factory.mktemp("weights") / (iw.FID_WEIGHTS_STEM + ".pth")
    write_zip(path, state)
    return path, OrderedDict((k, v[1]) for k, v in state.items())


def test_hash_is_checked_on_load(isolated, random_pth):
    path, _ = random_pth
    with pytest.raises(ValueError, match="sha256 .* does not match the FID weights"):
        load_fid_inception(path)


def test_pth_and_converted_npz_load_the_same_weights(isolated, random_pth, monkeypatch):
    path, state = random_pth
    model = load_fid_inception(path, verify=False, dtype=autodiff.float32)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[name], err_msg=name)

    npz = iw.convert_inception_weights(path, isolated / "conv" / (iw.FID_WEIGHTS_STEM + ".npz"),
                                       verify=False)
    # Found through REFGEN_DATA, the .npz preferred; its recorded source hash is checked.
    monkeypatch.setenv("REFGEN_DATA", str(npz.parent))
    assert iw.find_fid_weights() == npz
    with pytest.raises(ValueError, match="converted from a file with sha256"):
        load_fid_inception()
    again = load_fid_inception(verify=False, dtype=autodiff.float32)
    for name, value in again.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[name], err_msg=name)
    with pytest.raises(ValueError, match="does not match the FID weights"):
        iw.convert_inception_weights(path, isolated / "x.npz")
