"""The linear probe (refgen.metrics.probe): the objective's gradient, the optimum's
stationarity, the limits lambda -> infinity and separable data, and bad input."""
import math

import numpy as np  # host-side: the probe is host-side SciPy code; test data
import pytest

from refgen.metrics.probe import (fit_logistic_regression, logistic_objective, select_l2,
                                  standardize)


def _blobs(n_per_class=30, k=3, d=4, spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3.0
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, d)) for c in centres])
    y = np.repeat(np.arange(k), n_per_class)
    return x, y


def test_gradient_matches_central_differences():
    x, y = _blobs(n_per_class=7, k=3, d=4)
    rng = np.random.default_rng(1)
    p = rng.normal(size=4 * 3 + 3)
    _, g = logistic_objective(p, x, y, 3, 0.3)
    h = 1e-6
    fd = np.array([(logistic_objective(p + h * e, x, y, 3, 0.3)[0]
                    - logistic_objective(p - h * e, x, y, 3, 0.3)[0]) / (2 * h)
                   for e in np.eye(p.size)])
    # central differences in float64: truncation O(h^2 f''') + rounding O(eps |f| / h)
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)


def test_objective_is_mean_cross_entropy_plus_half_l2_norm():
    x, y = _blobs(n_per_class=5, k=3, d=2)
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    logits = x @ w + b
    nll = np.mean([-math.log(math.exp(l[t]) / sum(math.exp(v) for v in l))
                   for l, t in zip(logits, y)])
    value, _ = logistic_objective(np.concatenate([w.ravel(), b]), x, y, 3, 0.5)
    assert value == pytest.approx(nll + 0.25 * np.sum(w * w), rel=1e-12)


def test_objective_is_stable_for_huge_logits():
    x, y = _blobs(n_per_class=5, k=3, d=2)
    p = np.concatenate([np.full(6, 1e3), np.zeros(3)])
    value, grad = logistic_objective(p, x * 1e3, y, 3, 0.0)
    assert math.isfinite(value) and np.all(np.isfinite(grad))


def test_optimum_is_stationary():
    """At the minimiser, l2 W = -(1/N) Phi^T (P - Y) and sum_n (P - Y)_n = 0."""
    x, y = _blobs(n_per_class=20, k=3, d=5, spread=2.0)
    x = standardize(x)[0]
    probe = fit_logistic_regression(x, y, 3, 0.05)
    assert probe.converged
    logits = x @ probe.weight + probe.bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    np.testing.assert_allclose(0.05 * probe.weight, -x.T @ p / len(y), atol=1e-5)
    np.testing.assert_allclose(p.mean(axis=0), 0.0, atol=1e-5)


def test_strong_penalty_leaves_the_class_frequencies():
    """lambda -> infinity: W -> 0, and the unpenalised bias then fits softmax(b) = the
    empirical class frequencies (the maximum-likelihood categorical)."""
    x, y = _blobs(n_per_class=10, k=3, d=3)
    y = np.concatenate([y, np.zeros(10, dtype=int)])   # frequencies 20/40, 10/40, 10/40
    x = np.concatenate([x, x[:10]])
    probe = fit_logistic_regression(standardize(x)[0], y, 3, 1e8)
    sm = np.exp(probe.bias - probe.bias.max())
    sm /= sm.sum()
    np.testing.assert_allclose(sm, [0.5, 0.25, 0.25], atol=1e-6)
    assert np.abs(probe.weight).max() < 1e-6


def test_separable_data_is_fitted_and_generalises():
    x, y = _blobs(n_per_class=30, k=4, d=6, spread=0.3)
    xt, yt = _blobs(n_per_class=30, k=4, d=6, spread=0.3, seed=0)
    probe = fit_logistic_regression(x, y, 4, 1e-4)
    assert probe.accuracy(x, y) == 1.0
    assert probe.accuracy(xt, yt) == 1.0


def test_select_l2_keeps_the_best_validation_accuracy():
    x, y = _blobs(n_per_class=15, k=3, d=8, spread=3.0, seed=3)
    xv, yv = _blobs(n_per_class=40, k=3, d=8, spread=3.0, seed=3)
    out = select_l2(x, y, xv[::2], yv[::2], 3, [1e-4, 10.0, 1e-2, 1.0], test_x=xv[1::2],
                    test_y=yv[1::2])
    grid = [l2 for l2, _ in out["path"]]
    assert grid == sorted(grid, reverse=True)            # strongest first, warm-started
    best = max(acc for _, acc in out["path"])
    assert out["val_accuracy"] == best
    # on a tie the stronger penalty is kept: the first l2 on the path reaching the best
    assert out["l2"] == next(l2 for l2, acc in out["path"] if acc == best)
    assert 0.0 <= out["test_accuracy"] <= 1.0 and out["converged"]


def test_standardize_uses_training_statistics_and_spares_constant_features():
    tr = np.array([[1.0, 5.0], [3.0, 5.0]])
    te = np.array([[2.0, 7.0]])
    a, b = standardize(tr, te)
    np.testing.assert_allclose(a, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(b, [[0.0, 2.0]])


@pytest.mark.parametrize("bad, match", [
    (dict(labels=np.array([0, 1, 3])), "labels must be integers in 0..2"),
    (dict(labels=np.array([0, 1])), "labels must have shape"),
    (dict(features=np.array([[0.0], [np.nan], [1.0]])), "NaN"),
    (dict(features=np.zeros(3)), "2-D"),
    (dict(l2=-1.0), "l2 must be"),
    (dict(num_classes=1), "num_classes"),
])
def test_bad_input_is_named(bad, match):
    args = dict(features=np.zeros((3, 1)), labels=np.array([0, 1, 2]), num_classes=3, l2=1.0)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        fit_logistic_regression(**args)


@pytest.mark.crosscheck
def test_objective_and_gradient_match_torch():
    torch = pytest.importorskip("torch")
    x, y = _blobs(n_per_class=6, k=3, d=4)
    rng = np.random.default_rng(4)
    w, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    value, grad = logistic_objective(np.concatenate([w.ravel(), b]), x, y, 3, 0.7)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(torch.tensor(x) @ tw + tb, torch.tensor(y)) \
        + 0.35 * (tw ** 2).sum()
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(grad, np.concatenate([tw.grad.numpy().ravel(),
                                                     tb.grad.numpy()]), rtol=1e-10, atol=1e-12)


def test_a_warm_start_from_backend_parameters_reaches_the_same_optimum():
    """``init`` may be a backend array (copied to the host explicitly): started at the
    optimum, L-BFGS stays there."""
    from autodiff import backend as B
    x, y = _blobs(n_per_class=20, k=3, d=5, spread=2.0)
    x = standardize(x)[0]
    probe = fit_logistic_regression(x, y, 3, 0.05)
    again = fit_logistic_regression(x, y, 3, 0.05, init=B.to_backend(probe.params))
    np.testing.assert_allclose(again.params, probe.params, atol=1e-5)
