"""Inception Score: closed forms, the in-order splits, zeros in the probabilities, errors."""
import math

import numpy as np  # host-side: reference values in tests
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autodiff
from refgen.metrics import inception_score


def _reference(p, splits):
    """exp(mean KL) per in-order split, written with explicit 0 log 0 = 0."""
    n = p.shape[0]
    out = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        py = part.mean(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0)
        out.append(math.exp(t.sum(1).mean()))
    return np.mean(out), np.std(out)


@given(n=st.integers(10, 60), c=st.integers(1, 12), splits=st.integers(1, 10))
def test_uniform_predictions_give_one(n, c, splits):
    mean, std = inception_score(np.full((n, c), 1.0 / c), splits=splits)
    assert mean == pytest.approx(1.0, abs=1e-14) and std == pytest.approx(0.0, abs=1e-14)


@given(c=st.integers(1, 20), per_class=st.integers(1, 5), splits=st.integers(1, 4))
def test_confident_evenly_spread_predictions_give_c(c, per_class, splits):
    # each split holds every class equally often: one-hot rows cycling through the classes
    n = c * per_class * splits
    p = np.eye(c)[np.arange(n) % c]
    mean, std = inception_score(p, splits=splits)
    assert mean == pytest.approx(c, rel=1e-14) and std == pytest.approx(0.0, abs=1e-12)


def test_splits_are_in_order_not_shuffled():
    # first half one-hot on class 0, second half evenly over 2 classes: 2 splits give 1 and 2
    p = np.concatenate([np.eye(2)[[0] * 10], np.eye(2)[[0, 1] * 5]])
    mean, std = inception_score(p, splits=2)
    assert mean == pytest.approx(1.5) and std == pytest.approx(0.5)   # std with ddof = 0


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(10, 50), c=st.integers(2, 8),
       splits=st.integers(1, 5), zeros=st.booleans())
def test_matches_reference_bounds_and_class_permutation(seed, n, c, splits, zeros):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if zeros:  # exact zeros in the probabilities (a class never predicted in some rows)
        p[:, 0] = 0.0
        p /= p.sum(1, keepdims=True)
    got = inception_score(p, splits=splits)
    want = _reference(p, splits)
    assert got.mean == pytest.approx(want[0], rel=1e-12)
    assert got.std == pytest.approx(want[1], rel=1e-9, abs=1e-12)
    assert 1.0 - 1e-12 <= got.mean <= c + 1e-12
    perm = rng.permutation(c)
    assert inception_score(p[:, perm], splits=splits).mean == pytest.approx(got.mean, rel=1e-12)


def test_accepts_tensors():
    p = autodiff.tensor(np.eye(3)[np.arange(30) % 3])
    assert inception_score(p, splits=10).mean == pytest.approx(3.0)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"rows of probs must sum to 1; the worst row is off "
                                         r"by 1"):
        inception_score(np.ones((10, 2)), splits=1)
    with pytest.raises(ValueError, match="non-negative"):
        inception_score(np.array([[1.5, -0.5]] * 4), splits=1)
    with pytest.raises(ValueError, match="splits must be between 1 and the number of samples 5"):
        inception_score(np.full((5, 2), 0.5))
    with pytest.raises(ValueError, match=r"\(N samples, C classes\).*\(4,\)"):
        inception_score(np.full(4, 0.25), splits=1)
