"""BatchLoader: seeded, endless, every example once per epoch, exact resume."""
import numpy as np  # host-side: comparisons
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff import backend as B
from refgen.data import ArrayDataset, BatchLoader


def _dataset(n=23, labelled=True):
    x = B.xp.arange(n * 2, dtype="float64").reshape(n, 2)
    y = B.xp.arange(n) % 5 if labelled else None
    return ArrayDataset(x, y, name="toy")


def _take(loader, k):
    out = []
    for _ in range(k):
        x, y = next(loader)
        out.append((B.to_numpy(x.data).copy(), None if y is None else B.to_numpy(y.data).copy()))
    return out


def test_batches_are_tensors_and_cover_each_epoch_once():
    ds = _dataset(23)
    loader = BatchLoader(ds, 5, generator=autodiff.Generator(1))
    assert len(loader) == 4  # drop_last: 23 // 5
    batches = _take(loader, 8)
    x, y = next(BatchLoader(ds, 5))
    assert isinstance(x, autodiff.Tensor) and isinstance(y, autodiff.Tensor)
    assert x.shape == (5, 2) and y.dtype == np.int64
    for epoch in (batches[:4], batches[4:]):
        rows = np.concatenate([b[0][:, 0] for b in epoch]) / 2
        assert len(set(rows)) == 20  # 20 distinct examples, 3 dropped
    first = np.concatenate([b[0][:, 0] for b in batches[:4]])
    second = np.concatenate([b[0][:, 0] for b in batches[4:]])
    assert not np.array_equal(first, second)  # a fresh permutation per epoch
    # labels travel with their inputs
    for xb, yb in batches:
        assert np.array_equal((xb[:, 0] / 2).astype(int) % 5, yb)


def test_no_shuffle_keep_last_and_unlabelled():
    loader = BatchLoader(_dataset(7, labelled=False), 3, shuffle=False, drop_last=False)
    got = _take(loader, 4)
    assert [b[0].shape[0] for b in got] == [3, 3, 1, 3]
    assert got[0][1] is None
    assert np.array_equal(got[3][0], got[0][0])


def test_same_seed_same_batches_different_seed_different():
    a = _take(BatchLoader(_dataset(), 4, generator=autodiff.Generator(7)), 10)
    b = _take(BatchLoader(_dataset(), 4, generator=autodiff.Generator(7)), 10)
    c = _take(BatchLoader(_dataset(), 4, generator=autodiff.Generator(8)), 10)
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b))
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a, c))


@given(n=st.integers(1, 40), batch=st.integers(1, 12), stop=st.integers(0, 30),
       drop_last=st.booleans(), through_file=st.booleans())
def test_resume_reproduces_exactly(tmp_path_factory, n, batch, stop, drop_last, through_file):
    if drop_last and batch > n:
        batch = n
    ds = _dataset(n)
    reference = _take(BatchLoader(ds, batch, drop_last=drop_last,
                                  generator=autodiff.Generator(3)), stop + 12)
    gen = autodiff.Generator(3)
    first = BatchLoader(ds, batch, drop_last=drop_last, generator=gen)
    _take(first, stop)
    state = first.state_dict()
    _take(first, 5)  # the generator moves on after the snapshot; the state must not alias it
    if through_file:
        path = tmp_path_factory.mktemp("ck") / "loader.npz"
        autodiff.save({"loader": state}, path)
        state = autodiff.load(path)["loader"]
    resumed = BatchLoader(ds, batch, drop_last=drop_last, generator=autodiff.Generator(99))
    resumed.load_state_dict(state)
    got = _take(resumed, 12)
    for (xa, ya), (xb, yb) in zip(reference[stop:], got):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


def test_shared_generator_is_left_where_it_was():
    gen = autodiff.Generator(4)
    loader = BatchLoader(_dataset(), 4, generator=gen)
    _take(loader, 9)
    state = loader.state_dict()
    after = gen.random((3,), "float64")
    other = autodiff.Generator(0)
    resumed = BatchLoader(_dataset(), 4, generator=other)
    resumed.load_state_dict(state)
    assert np.array_equal(B.to_numpy(other.random((3,), "float64")), B.to_numpy(after))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="batch_size 30 exceeds the 23 examples"):
        BatchLoader(_dataset(), 30)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BatchLoader(_dataset(), 0)
    state = BatchLoader(_dataset(), 4).state_dict()
    with pytest.raises(ValueError, match="saved batch_size=4 but this loader has batch_size=5"):
        BatchLoader(_dataset(), 5).load_state_dict(state)
