"""Preprocessing: scaling and dequantization round trips, binarization, logit transform."""
import math

import numpy as np  # host-side: reference values
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff import backend as B
from autodiff.checks import gradcheck
from refgen.data import preprocessing as P


@given(levels=st.sampled_from([2, 17, 256]), seed=st.integers(0, 2 ** 16))
def test_dequantize_stays_in_its_bin_and_rounds_back(levels, seed):
    k = np.random.default_rng(seed).integers(0, levels, size=(64,))
    x = B.to_backend(k / (levels - 1))
    z = B.to_numpy(P.dequantize(x, levels, autodiff.Generator(seed)))
    assert ((z >= k / levels) & (z < (k + 1) / levels)).all()
    assert np.array_equal(np.floor(z * levels), k)


def test_dequantize_noise_is_uniform_within_bins():
    x = B.xp.zeros(200_000)
    z = B.to_numpy(P.dequantize(x, 256, autodiff.Generator(0))) * 256
    # U[0,1): mean 1/2 with standard error sqrt(1/12 / n)
    assert abs(z.mean() - 0.5) < 5 * math.sqrt(1 / 12 / z.size)


def test_scale_round_trip_and_range():
    x = autodiff.tensor(np.linspace(0, 1, 11))
    s = P.scale(x, "symmetric")
    assert float(s.data.min()) == -1.0 and float(s.data.max()) == 1.0
    # (2x - 1 + 1) / 2 is exact up to one rounding of 2x - 1
    np.testing.assert_allclose(B.to_numpy(P.unscale(s, "symmetric").data), B.to_numpy(x.data),
                               rtol=0, atol=2.0 ** -52)
    with pytest.raises(ValueError, match="unknown scale 'pm1'; known: unit, symmetric"):
        P.scale(x, "pm1")


def test_binarization_dynamic_and_fixed():
    x = B.xp.full((100_000,), 0.3)
    a = B.to_numpy(P.binarize_dynamic(x, autodiff.Generator(1)))
    b = B.to_numpy(P.binarize_dynamic(x, autodiff.Generator(2)))
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 5 * math.sqrt(0.21 / a.size)
    assert not np.array_equal(a, b)
    assert np.array_equal(B.to_numpy(P.binarize_fixed(x, 5)), B.to_numpy(P.binarize_fixed(x, 5)))


@pytest.mark.parametrize("alpha", [0.0, 1e-6, 0.05])
def test_logit_round_trip(alpha):
    x = B.to_backend(np.random.default_rng(0).uniform(0.01, 0.99, size=(4, 3, 2)))
    y, logdet = P.logit_transform(x, alpha)
    assert logdet.shape == (4,)
    np.testing.assert_allclose(B.to_numpy(P.logit_inverse(y, alpha)), B.to_numpy(x), atol=1e-12)


@pytest.mark.parametrize("alpha", [1e-6, 0.05])
def test_logit_logdet_matches_finite_differences(alpha):
    # elementwise map: log|det J| = sum of log|dy_i/dx_i|, checked by central differences
    x = np.random.default_rng(1).uniform(0.05, 0.95, size=(3, 5))
    h = 1e-6
    yp, _ = P.logit_transform(B.to_backend(x + h), alpha)
    ym, _ = P.logit_transform(B.to_backend(x - h), alpha)
    fd = np.log(np.abs(B.to_numpy(yp - ym) / (2 * h))).sum(1)
    _, logdet = P.logit_transform(B.to_backend(x), alpha)
    np.testing.assert_allclose(B.to_numpy(logdet), fd, rtol=1e-8)


def test_logit_tensor_path_agrees_and_has_gradcheck_gradients():
    x = autodiff.tensor(np.random.default_rng(2).uniform(0.1, 0.9, size=(2, 3)), requires_grad=True)
    y, logdet = P.logit_transform(x, 0.05)
    ya, la = P.logit_transform(x.data, 0.05)
    np.testing.assert_allclose(B.to_numpy(y.data), B.to_numpy(ya), rtol=1e-14)
    np.testing.assert_allclose(B.to_numpy(logdet.data), B.to_numpy(la), rtol=1e-14)
    gradcheck(lambda t: P.logit_transform(t, 0.05)[1], [x])
    gradcheck(lambda t: P.logit_transform(t, 0.05)[0], [x])


def test_logit_alpha_checked():
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 0.5\), got 0.5"):
        P.logit_transform(B.xp.zeros((1, 1)), 0.5)


def test_logit_needs_an_example_axis():
    for x in (B.xp.asarray(0.5), autodiff.tensor(0.5)):
        with pytest.raises(ValueError, match=r"leading example axis \(N, ...\)"):
            P.logit_transform(x)
