"""The data-set registry: digits and faithful (embedded), toy splits, images, errors."""
import os
from pathlib import Path

import numpy as np  # host-side: comparisons
import pytest

import autodiff
from autodiff import backend as B
from refgen import data
from refgen.data import embedded, toy

SHARED = Path(os.environ.get("REFGEN_DATA") or
              Path(__file__).resolve().parents[3] / ".." / "shared" / "data")


def test_list_and_unknown_names():
    names = data.list_datasets()
    assert {"digits", "mnist", "fashion-mnist", "faithful", "moons", "pinwheel"} <= set(names)
    with pytest.raises(ValueError, match="unknown data set 'cifar'; known: digits, mnist, "):
        data.load_dataset("cifar")
    with pytest.raises(ValueError, match="unknown data set 'cifar'; known: digits"):
        data.describe("cifar")
    with pytest.raises(ValueError, match="unknown split 'dev' for data set 'digits'; known: train"):
        data.load_dataset("digits", "dev")
    with pytest.raises(TypeError, match="unknown option.* n; accepted: scale"):
        data.load_dataset("digits", n=5)
    with pytest.raises(ValueError, match=r"load_dataset\('digits'\): dtype must be one of "
                                         "float32, float64, got 'foo'"):
        data.load_dataset("digits", dtype="foo")
    with pytest.raises(ValueError, match="dtype must be one of float32, float64, got 'int64'"):
        data.load_dataset("moons", dtype="int64")
    assert data.load_dataset("faithful", dtype=np.float32).x.dtype == np.float32


def test_options_are_checked_before_files_are_looked_for(tmp_path):
    # an empty data_dir: a misspelt option must be named, not the missing MNIST files
    with pytest.raises(TypeError, match=r"load_dataset\('mnist'\): unknown option\(s\) scal"):
        data.load_dataset("mnist", "test", data_dir=tmp_path, scal="symmetric")


def test_digits_embedded_with_verified_hash_and_counts():
    images, labels = embedded.load_digits_arrays()
    assert images.shape == (1797, 8, 8) and images.max() == 16 and images.min() == 0
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert (embedded.FILES / "ATTRIBUTION.md").is_file()


def test_digits_damaged_file_is_named(tmp_path):
    import gzip
    bad = tmp_path / "digits.csv.gz"
    bad.write_bytes(gzip.compress(b"1,2,3\n"))
    with pytest.raises(data.IDXError, match=f"{bad}: sha256 of the decompressed bytes"):
        embedded.load_digits_arrays(bad)


def test_digits_splits_are_fixed_disjoint_and_complete():
    parts = {s: data.load_dataset("digits", s) for s in ("train", "val", "test", "all")}
    assert [len(parts[s]) for s in ("train", "val", "test", "all")] == [1197, 300, 300, 1797]
    ds = parts["train"]
    assert ds.x.shape == (1197, 1, 8, 8) and ds.x.dtype == np.float64 and ds.y.dtype == np.int64
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert ds.info["kind"] == "image" and ds.info["levels"] == 17 and ds.info["num_classes"] == 10
    rows = {s: {r.tobytes() + bytes([int(y)]) for r, y in zip(B.to_numpy(parts[s].x),
                                                              B.to_numpy(parts[s].y))}
            for s in parts}
    # the three splits are a partition of the 1797 images (duplicates aside: compare counts)
    assert sum(len(parts[s]) for s in ("train", "val", "test")) == 1797
    assert rows["train"] | rows["val"] | rows["test"] == rows["all"]
    again = data.load_dataset("digits", "test")
    assert np.array_equal(B.to_numpy(again.x), B.to_numpy(parts["test"].x))
    assert len(data.load_dataset("digits", "train+val")) == 1497


def test_image_preprocessing_options():
    ds = data.load_dataset("digits", "val", scale="symmetric")
    assert ds.info["value_range"] == (-1.0, 1.0) and float(ds.x.min()) == -1.0
    b = data.load_dataset("digits", "val", binarize="fixed", binarize_seed=3)
    assert set(np.unique(B.to_numpy(b.x))) <= {0.0, 1.0} and b.info["binary"]
    f32 = data.load_dataset("digits", "val", dtype="float32")
    assert f32.x.dtype == np.float32
    with pytest.raises(ValueError, match="unknown binarize 'dynamic'"):
        data.load_dataset("digits", binarize="dynamic")


def test_faithful_standardised_and_raw():
    raw = data.load_dataset("faithful", "all", standardize=False)
    x = B.to_numpy(raw.x)
    assert x.shape == (272, 2)
    np.testing.assert_allclose(x.mean(0), [3.48778, 70.89706], atol=1e-5)
    np.testing.assert_allclose(x.std(0, ddof=1), [1.14137, 13.59497], atol=1e-5)
    z = data.load_dataset("faithful", "all")
    zx = B.to_numpy(z.x)
    np.testing.assert_allclose(zx.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(zx.std(0, ddof=1), 1, atol=1e-12)
    assert z.info["log_det"] == pytest.approx(-np.log(x.std(0, ddof=1)).sum())
    assert [len(data.load_dataset("faithful", s)) for s in ("train", "val", "test")] == [192, 40, 40]


def test_toy_dataset_splits_differ_and_repeat():
    a = data.load_dataset("moons", "train", n=500, seed=1)
    b = data.load_dataset("moons", "train", n=500, seed=1)
    v = data.load_dataset("moons", "val", n=500, seed=1)
    t0 = data.load_dataset("moons", "train", n=500, seed=0)
    assert a.x.shape == (500, 2) and a.y is None and a.info["kind"] == "points"
    assert np.array_equal(B.to_numpy(a.x), B.to_numpy(b.x))
    assert not np.array_equal(B.to_numpy(a.x), B.to_numpy(v.x))
    assert not np.array_equal(B.to_numpy(a.x), B.to_numpy(t0.x))


def test_sample_options_spelled_in_the_name_reach_the_loader_not_the_density():
    """``ring8:std=0.1,n=500,seed=1`` is ``load_dataset("ring8:std=0.1", n=500, seed=1)``:
    the same points; the density (std 0.1) is the one without the sample options."""
    named = data.load_dataset("ring8:std=0.1,n=500,seed=1", "train")
    keyword = data.load_dataset("ring8:std=0.1", "train", n=500, seed=1)
    assert named.x.shape == (500, 2)
    assert np.array_equal(B.to_numpy(named.x), B.to_numpy(keyword.x))
    density = toy.get_density("ring8:std=0.1,n=500,seed=1")
    assert density is toy.get_density("ring8:std=0.1") and density.sigma == 0.1
    assert toy.split_sample_options("checkerboard:n=1000000") == ("checkerboard", {"n": 1e6})
    # the density's options keep their spelling, every digit of it
    assert toy.get_density("ring8:std=0.123456789,n=5").sigma == 0.123456789
    for bad, words in [("ring8:n=2.5", "positive whole number"), ("ring8:n=0", "positive"),
                       ("ring8:seed=1.5", "seed must be a whole number"),
                       ("ring8:n=inf", "positive whole number"),
                       ("ring8:seed=nan", "seed must be a whole number"),
                       ("checkerboard:cells=3", "takes the option")]:
        with pytest.raises(ValueError, match=words):
            data.load_dataset(bad, "train")
    with pytest.raises(ValueError, match="given twice"):
        data.load_dataset("moons:n=5", "train", n=6)
    # a huge n is refused by name before anything is allocated, spelled either way
    with pytest.raises(ValueError, match=r"n=1,000,000,000,000 points is more than"):
        data.load_dataset("checkerboard:n=1e12", "train")
    with pytest.raises(ValueError, match=r"n=100,000,001 points"):
        data.load_dataset("moons", "train", n=10 ** 8 + 1)


def test_describe_every_data_set():
    for name in data.list_datasets():
        text = data.describe(name)
        assert text.startswith(name) and len(text.splitlines()) >= 3


def test_loader_over_a_registered_data_set():
    ds = data.load_dataset("digits", "train")
    x, y = next(data.BatchLoader(ds, 32, generator=autodiff.Generator(0)))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,)


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason=f"shared data not found at {SHARED}")
def test_mnist_through_the_registry_and_env_var(monkeypatch):
    monkeypatch.setenv("REFGEN_DATA", str(SHARED))
    ds = data.load_dataset("mnist", "test")
    assert ds.x.shape == (10000, 1, 28, 28) and ds.info["levels"] == 256
    assert abs(float(ds.x.mean()) * 255 - 33.7912) < 1e-3
    assert B.to_numpy(ds.y)[:3].tolist() == [7, 2, 1]
