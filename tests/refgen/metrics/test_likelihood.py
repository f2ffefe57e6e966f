"""Bits per dimension: closed forms (uniform densities), the change-of-variables offset that
makes [0, 1], [-1, 1] and [0, 256) data agree, bounds, the ODE form, errors."""
import math

import numpy as np  # host-side: reference values in tests
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autodiff
from autodiff import backend as B
from refgen.metrics import (bits_per_dim, bits_per_dim_discrete, bits_per_dim_from_elbo,
                            bits_per_dim_from_ode, data_scale)


def test_uniform_density_is_eight_bits_on_every_scale():
    # the uniform density on the dequantized cube is 1/256 per dimension on [0, 256): 8 bits
    d = 3 * 4 * 4
    assert bits_per_dim(-d * math.log(256), d, data_scale=1.0) == pytest.approx(8.0)
    # on [0, 1): density 1, log p = 0; the offset adds log2(256) = 8
    assert bits_per_dim(0.0, d, data_scale=1 / 256) == pytest.approx(8.0)
    # on [-1, 1): density 1/2 per dimension; the offset adds log2(128) = 7
    assert bits_per_dim(-d * math.log(2), (3, 4, 4), data_scale(256, (-1, 1))) == pytest.approx(8.0)
    # the uniform probability mass over 256 levels: 8 bits, no offset
    assert bits_per_dim_discrete(-d * math.log(256), d) == pytest.approx(8.0)


@given(log_py=st.floats(-1e4, 1e4), d=st.integers(1, 3072), levels=st.integers(2, 256),
       lo=st.floats(-5, 5), width=st.floats(0.01, 100))
def test_scales_agree_through_the_change_of_variables(log_py, d, levels, lo, width):
    # a density on y in [0, L) seen on x = a y + b has log p_X = log p_Y - D log a
    a = data_scale(levels, (lo, lo + width))
    log_px = log_py - d * math.log(a)
    assert bits_per_dim(log_px, d, data_scale=a) == pytest.approx(
        bits_per_dim(log_py, d), rel=1e-9, abs=1e-9 * (1 + abs(log_py) / d))
    assert bits_per_dim(log_py, d) == pytest.approx(-log_py / (d * math.log(2)))


def test_data_scale_values_and_arrays():
    assert data_scale() == 1 / 256
    assert data_scale(256, (-1, 1)) == 1 / 128
    assert data_scale(256, (0, 256)) == 1.0
    assert data_scale(17, (0, 1)) == 1 / 17          # refgen's digits, dequantized (k + u) / 17
    out = bits_per_dim(autodiff.tensor([0.0, -64 * math.log(2)]), 64, data_scale=1 / 256)
    np.testing.assert_allclose(B.to_numpy(out), [8.0, 9.0])
    assert isinstance(bits_per_dim(np.float64(0.0), 1), float)


def test_elbo_and_ode_forms():
    d = 784
    # discrete decoder: no offset; continuous decoder on [0, 1] data: +8 bits
    assert bits_per_dim_from_elbo(-d * math.log(2), d) == pytest.approx(1.0)
    assert bits_per_dim_from_elbo(-d * math.log(2), d, data_scale=1 / 256) == pytest.approx(9.0)
    # log p_0 = log p_T + int div f dt
    prior, delta = np.array([-1000.0, -900.0]), np.array([200.0, -50.0])
    got = bits_per_dim_from_ode(prior, delta, d, data_scale=1 / 256)
    np.testing.assert_allclose(B.to_numpy(got),
                               B.to_numpy(bits_per_dim(prior + delta, d, 1 / 256)))
    np.testing.assert_allclose(B.to_numpy(got), -(prior + delta) / (d * math.log(2)) + 8)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="data_scale must be > 0"):
        bits_per_dim(0.0, 4, data_scale=0.0)
    with pytest.raises(ValueError, match="num_dims must be a positive integer"):
        bits_per_dim(0.0, 0)
    with pytest.raises(ValueError, match="log_pmf must be <= 0"):
        bits_per_dim_discrete(0.5, 4)
    with pytest.raises(ValueError, match="log_px has non-finite"):
        bits_per_dim(float("nan"), 4)
    with pytest.raises(ValueError, match="hi > lo"):
        data_scale(256, (1, 0))
