"""IDX reader, search path and download: good files, and each kind of bad file named."""
import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np  # host-side: building test files
import pytest

from refgen.data import IDXError, read_idx, sources
from refgen.data.download import download
from refgen.data.sources import find_file

SHARED = Path(os.environ.get("REFGEN_DATA") or
              Path(__file__).resolve().parents[3] / ".." / "shared" / "data")


def _images_bytes(n=3, rows=28, cols=28, magic=2051, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    return struct.pack(">iiii", magic, n, rows, cols) + pixels.tobytes(), pixels


def _write(tmp_path, name, data, gz):
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [True, False])
def test_reads_a_good_file_gzip_or_not(tmp_path, gz):
    data, pixels = _images_bytes()
    path = _write(tmp_path, "img", data, gz)
    got = read_idx(path, 2051, 3, (28, 28), sha256=hashlib.sha256(data).hexdigest())
    assert got.dtype == np.uint8 and np.array_equal(got, pixels)
    labels = struct.pack(">ii", 2049, 4) + bytes([1, 2, 3, 9])
    got = read_idx(_write(tmp_path, "lab", labels, gz), 2049, 4, (), md5=hashlib.md5(labels).hexdigest())
    assert got.tolist() == [1, 2, 3, 9]


def test_each_corruption_is_a_clear_error_naming_the_file(tmp_path):
    data, _ = _images_bytes()
    sha = hashlib.sha256(data).hexdigest()
    bad_magic = _write(tmp_path, "magic", _images_bytes(magic=2049)[0], True)
    with pytest.raises(IDXError, match=f"{bad_magic}: magic number 2049, expected 2051"):
        read_idx(bad_magic, 2051, 3, (28, 28))
    path = _write(tmp_path, "count", data, True)
    with pytest.raises(IDXError, match=f"{path}: header says 3 items, expected 60000"):
        read_idx(path, 2051, 60000, (28, 28))
    path = _write(tmp_path, "shape", _images_bytes(rows=27)[0], False)
    with pytest.raises(IDXError, match=r"item shape \(27, 28\), expected \(28, 28\)"):
        read_idx(path, 2051, 3, (28, 28))
    path = _write(tmp_path, "trunc", data[:-10], True)
    with pytest.raises(IDXError, match=f"{path}: truncated"):
        read_idx(path, 2051, 3, (28, 28), sha256=sha)
    path = _write(tmp_path, "tail", data + b"\0", False)
    with pytest.raises(IDXError, match="trailing bytes"):
        read_idx(path, 2051, 3, (28, 28))
    flipped = bytearray(data)
    flipped[100] ^= 1
    path = _write(tmp_path, "hash", bytes(flipped), True)
    with pytest.raises(IDXError, match=f"{path}: sha256 of the decompressed bytes is"):
        read_idx(path, 2051, 3, (28, 28), sha256=sha)
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(data)[:-20])
    with pytest.raises(IDXError, match=f"{path}: corrupt or truncated gzip stream"):
        read_idx(path, 2051, 3, (28, 28))
    with pytest.raises(IDXError, match="cannot read .*missing"):
        read_idx(tmp_path / "missing", 2051)


def test_search_path_order_and_missing_file_message(tmp_path, monkeypatch):
    a, b, cache = tmp_path / "a", tmp_path / "b", tmp_path / "cache"
    for d in (a / "mnist", b, cache / "refgen"):
        d.mkdir(parents=True)
    (b / "t10k-labels-idx1-ubyte").write_bytes(b"x")
    monkeypatch.setenv("REFGEN_DATA", str(b))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert find_file("mnist", "t10k-labels-idx1-ubyte", a) == b / "t10k-labels-idx1-ubyte"
    (a / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"x")
    assert find_file("mnist", "t10k-labels-idx1-ubyte", a) == a / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError) as info:
        find_file("mnist", "train-images-idx3-ubyte", a)
    text = str(info.value)
    for place in (a, b, cache / "refgen"):
        assert str(place / "mnist" / "train-images-idx3-ubyte.gz") in text
    assert "refgen data download mnist" in text


def _tiny_set(monkeypatch, tmp_path, corrupt=False):
    """Register a 'tiny' IDX data set served from a file:// mirror in tmp_path."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = {}
    for stem, magic in (("train-images-idx3-ubyte", 2051), ("train-labels-idx1-ubyte", 2049)):
        data = (_images_bytes(2)[0] if magic == 2051 else struct.pack(">ii", 2049, 2) + b"\1\2")
        files[stem] = (magic, 2, hashlib.sha256(data).hexdigest(), None)
        served = data[:-1] + b"\7" if corrupt else data
        (mirror / (stem + ".gz")).write_bytes(gzip.compress(served))
    monkeypatch.setitem(sources.IDX_SETS, "tiny", {"urls": (mirror.as_uri() + "/",),
                                                   "files": files, "classes": [], "source": ""})
    return mirror


def test_download_verifies_and_writes_atomically(tmp_path, monkeypatch):
    _tiny_set(monkeypatch, tmp_path)
    lines = []
    folder = download("tiny", data_dir=tmp_path / "data", progress=lines.append)
    assert sorted(p.name for p in folder.iterdir()) == ["train-images-idx3-ubyte.gz",
                                                        "train-labels-idx1-ubyte.gz"]
    assert all("verified" in line for line in lines)
    download("tiny", data_dir=tmp_path / "data", progress=lines.append)
    assert lines[-1].endswith("present and verified")


def test_download_with_a_bad_file_writes_nothing(tmp_path, monkeypatch):
    _tiny_set(monkeypatch, tmp_path, corrupt=True)
    with pytest.raises(IDXError, match="failed its check.*sha256"):
        download("tiny", data_dir=tmp_path / "data")
    assert list((tmp_path / "data" / "tiny").iterdir()) == []


def test_download_offline_is_a_clear_error(tmp_path):
    # port 9 on localhost: connection refused, as without network
    with pytest.raises(ConnectionError, match="could not download train-images-idx3-ubyte.gz"):
        download("mnist", data_dir=tmp_path, urls=("http://127.0.0.1:9/",), timeout=5)
    with pytest.raises(ValueError, match="downloadable data sets are mnist, fashion-mnist"):
        download("digits")


needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                  reason=f"shared data not found at {SHARED}")


@needs_shared
def test_shared_mnist_test_files_and_facts():
    from refgen.data.images import load_idx_split
    images, labels = load_idx_split("mnist", "test", SHARED)
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(images.mean() - 33.7912) < 1e-4


@needs_shared
def test_shared_mnist_train_facts_and_split():
    from refgen.data.images import load_idx_split
    images, labels = load_idx_split("mnist", "train+val", SHARED)
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                            5851, 5949]
    assert labels[:6].tolist() == [5, 0, 4, 1, 9, 2]
    assert abs(images.mean() - 33.3184) < 1e-4
    train, ytrain = load_idx_split("mnist", "train", SHARED)
    val, yval = load_idx_split("mnist", "val", SHARED)
    assert len(train) == 50000 and len(val) == 10000
    assert np.array_equal(val, images[50000:]) and np.array_equal(yval, labels[50000:])


@needs_shared
def test_shared_fashion_mnist_test_facts():
    from refgen.data.images import load_idx_split
    images, labels = load_idx_split("fashion-mnist", "test", SHARED)
    assert np.bincount(labels).tolist() == [1000] * 10
    assert abs(images.mean() - 73.1466) < 1e-4
