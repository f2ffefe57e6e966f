"""autodiff.save / autodiff.load: round trips, the archive layout, atomic writes, errors."""
import math
import os
import zipfile

import numpy as np  # host-side: building expected values and inspecting the .npz directly
import pytest
from hypothesis import given, settings, strategies as st

import autodiff
from autodiff import backend as B, serialization


def assert_same(a, b, where="obj"):
    """Deep equality that also checks container and leaf types, dtypes and shapes."""
    if isinstance(a, autodiff.Tensor):
        assert isinstance(b, autodiff.Tensor), where
        assert b.requires_grad == a.requires_grad and b.dtype == a.dtype, where
        assert isinstance(b.data, B.xp.ndarray), where
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=where)
    elif isinstance(a, np.generic):
        assert type(b) is type(a), where
        assert (a == b) or (np.isnan(a) and np.isnan(b)), where
    elif isinstance(a, B.xp.ndarray):
        assert isinstance(b, B.xp.ndarray) and b.dtype == a.dtype and b.shape == a.shape, where
        np.testing.assert_array_equal(B.to_numpy(b), B.to_numpy(a), err_msg=where)
    elif isinstance(a, dict):
        assert type(b) is dict and list(b) == list(a), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(b) is type(a) and len(b) == len(a), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert type(b) is type(a) and b == a, where


def test_round_trip_of_a_training_checkpoint(tmp_path):
    obj = {
        "model": {"fc.weight": autodiff.tensor([[1.5, -2.0]], requires_grad=True),
                  "fc.bias": autodiff.tensor([0.25], dtype="float32"),
                  "bn.num_batches_tracked": autodiff.tensor(7)},
        "opt": {"state": {0: {"step": 3, "exp_avg": autodiff.tensor([0.1, 0.2])}},
                "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "amsgrad": False,
                                  "params": [0], "name": None}]},
        "mask": B.xp.asarray([True, False]),
        "empty": B.xp.zeros((0, 3)),
        "scalar": np.float32(2.5), "count": np.int64(4),
        "floats": [float("inf"), -float("inf"), float("nan"), 0.1, -0.0],
        "text": "héllo / ~world",
        "nested": ((), [], {}),
        "big": 2 ** 70,
    }
    path = tmp_path / "ckpt.npz"
    autodiff.save(obj, path)
    assert_same(obj, autodiff.load(path))
    assert autodiff.load(str(path))["model"]["fc.bias"].dtype == np.float32


def test_a_tensor_or_scalar_at_the_root(tmp_path):
    for obj in (autodiff.tensor([1.0, 2.0]), 3, "x", None, B.xp.arange(3)):
        autodiff.save(obj, tmp_path / "x.npz")
        assert_same(obj, autodiff.load(tmp_path / "x.npz"))


_keys = st.one_of(st.text(alphabet="ab/~i1", max_size=4), st.integers(-3, 3))
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
_leaves = st.one_of(
    _scalars,
    # distinct values per leaf, so two leaves written to one entry name would show
    st.builds(lambda shape, v, rg: autodiff.tensor(np.full(shape, v), requires_grad=rg),
              st.lists(st.integers(1, 2), max_size=3), st.floats(-1e3, 1e3), st.booleans()),
    st.builds(lambda n, k: B.xp.arange(k, k + n, dtype=np.int32), st.integers(1, 4),
              st.integers(-99, 99)))
_objects = st.recursive(
    _leaves,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.lists(children, max_size=3).map(tuple),
                               st.dictionaries(_keys, children, max_size=4)),
    max_leaves=12)


@settings(max_examples=40)
@given(obj=_objects)
def test_round_trip_of_random_nested_objects(obj, tmp_path_factory):
    """Any nesting of the supported types comes back equal, including keys with '/', '~'
    and int/str pairs like 1 and '1' that a naive flattening would merge."""
    path = tmp_path_factory.mktemp("rt") / "obj.npz"
    autodiff.save(obj, path)
    assert_same(obj, autodiff.load(path))


_clash_keys = st.sampled_from([1, "1", "a", "b", "a/b", "/", "~1", "~i1", "", "~"])
_arrays = st.builds(lambda v: autodiff.tensor([v]), st.floats(-1e3, 1e3))
_clashing = st.dictionaries(
    _clash_keys, st.one_of(_arrays, st.dictionaries(_clash_keys, _arrays, max_size=3)),
    min_size=2, max_size=6)


@settings(max_examples=40)
@given(obj=_clashing)
def test_round_trip_with_clash_prone_keys(obj, tmp_path_factory):
    """Dicts of arrays whose keys a naive '/'-join would map to one entry name."""
    path = tmp_path_factory.mktemp("clash") / "obj.npz"
    autodiff.save(obj, path)
    assert_same(obj, autodiff.load(path))


def test_escaping_keeps_colliding_paths_apart(tmp_path):
    obj = {"a/b": autodiff.tensor([1.0]), "a": {"b": autodiff.tensor([2.0])},
           1: autodiff.tensor([3.0]), "1": autodiff.tensor([4.0]),
           "~i1": autodiff.tensor([5.0]), "~1": autodiff.tensor([6.0])}
    path = tmp_path / "esc.npz"
    autodiff.save(obj, path)
    names = set(zipfile.ZipFile(path).namelist())
    assert names == {"__refgen__.npy", "arrays/a~1b.npy", "arrays/a/b.npy", "arrays/~i1.npy",
                     "arrays/1.npy", "arrays/~0i1.npy", "arrays/~01.npy"}
    assert_same(obj, autodiff.load(path))


def test_archive_is_a_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "ckpt.pt"            # any name: no .npz is appended
    autodiff.save({"w": [autodiff.tensor([1.0, 2.0])]}, path)
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["arrays/w/0"], [1.0, 2.0])
        header = z["__refgen__"]
        assert header.dtype == np.uint8
        assert b'"format": "refgen-archive"' in header.tobytes()


def test_crash_mid_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    autodiff.save({"step": 1, "w": autodiff.tensor([1.0])}, path)

    def crashing_writer(fileobj, arrays):
        fileobj.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(serialization, "_write_archive", crashing_writer)
    with pytest.raises(OSError, match="simulated"):
        autodiff.save({"step": 2, "w": autodiff.tensor([2.0])}, path)
    assert os.listdir(tmp_path) == ["ckpt.npz"]          # the temporary file is gone
    monkeypatch.undo()
    loaded = autodiff.load(path)
    assert loaded["step"] == 1 and loaded["w"].item() == 1.0

    autodiff.save({"step": 3}, path)                    # overwriting still works
    assert autodiff.load(path) == {"step": 3}


def test_missing_and_invalid_files_are_named(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        autodiff.load(missing)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt.*not a valid refgen archive"):
        autodiff.load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.arange(3))
    with pytest.raises(ValueError, match="plain.npz.*not a valid refgen archive.*__refgen__"):
        autodiff.load(plain)
    bad = tmp_path / "bad.npz"
    np.savez(bad, __refgen__=np.frombuffer(b'{"format": "other"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="not a valid refgen archive"):
        autodiff.load(bad)
    npy = tmp_path / "a.npy"
    np.save(npy, np.arange(3))
    with pytest.raises(ValueError, match="not a valid refgen archive"):
        autodiff.load(npy)
    nowhere = tmp_path / "no_such_dir" / "ckpt.npz"
    with pytest.raises(FileNotFoundError, match="cannot write .*ckpt.npz.*no_such_dir.* does not exist"):
        autodiff.save({"a": 1}, nowhere)


def test_unsupported_objects_name_the_key_path_and_type(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match=r"builtins.set at obj\['model'\]\['layers'\]\[1\]"):
        autodiff.save({"model": {"layers": [1, {2}]}}, path)
    with pytest.raises(TypeError, match=r"obj\['a'\].*dtype object"):
        autodiff.save({"a": np.array([None, 1], dtype=object)}, path)
    with pytest.raises(TypeError, match=r"dict key \(1, 2\) of type tuple at obj\['x'\]"):
        autodiff.save({"x": {(1, 2): 3}}, path)

    class WithState:
        def state_dict(self):
            return {}

    with pytest.raises(TypeError, match="WithState.*state_dict"):
        autodiff.save([WithState()], path)
    assert not path.exists() and os.listdir(tmp_path) == []
