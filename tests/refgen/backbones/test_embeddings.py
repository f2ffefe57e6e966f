"""Sinusoidal embeddings: the formula against a direct loop, both conventions, odd sizes,
gradients with respect to continuous t, and the errors."""
import math

import numpy as np  # host-side: reference loops and comparisons in the tests
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff.checks import gradcheck
from refgen.backbones.embeddings import (SinusoidalEmbedding, sinusoidal_positions,
                                         timestep_embedding)


def loop_embedding(ts, dim, max_period, flip, shift):
    """emb[n, i] = sin(t_n w_i), emb[n, half + i] = cos(t_n w_i), w_i = P^(-i/(half-shift)),
    written element by element."""
    half = dim // 2
    out = np.zeros((len(ts), dim))
    for n, t in enumerate(ts):
        for i in range(half):
            w = max_period ** (-i / (half - shift))
            first, second = (math.cos(t * w), math.sin(t * w)) if flip else \
                (math.sin(t * w), math.cos(t * w))
            out[n, i] = first
            out[n, half + i] = second
    return out


@given(ts=st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=5),
       dim=st.integers(1, 17), flip=st.booleans(), shift=st.sampled_from([0, 1]),
       max_period=st.sampled_from([10000.0, 100.0, 2.0]))
def test_timestep_embedding_matches_loop(ts, dim, flip, shift, max_period):
    if 0 < dim // 2 <= shift:     # dim 1 has no frequencies at all: just the zero column
        with pytest.raises(ValueError, match="freq_shift"):
            timestep_embedding(ts, dim, max_period, flip, shift)
        return
    got = timestep_embedding(autodiff.tensor(ts), dim, max_period, flip, shift).numpy()
    np.testing.assert_allclose(got, loop_embedding(ts, dim, max_period, flip, shift),
                               rtol=0, atol=1e-12)


def test_integer_timesteps_give_default_dtype_and_ranges():
    t = autodiff.tensor([0, 1, 999])
    emb = timestep_embedding(t, 8)
    assert emb.dtype == autodiff.float64 and emb.shape == (3, 8)
    # t = 0: sin 0 = 0, cos 0 = 1 in both conventions' halves.
    np.testing.assert_array_equal(emb.numpy()[0], [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(timestep_embedding(t, 8, flip_sin_to_cos=True).numpy()[0],
                                  [1, 1, 1, 1, 0, 0, 0, 0])
    # Highest frequency is 1 (i = 0): column 0 is sin(t).
    np.testing.assert_allclose(emb.numpy()[:, 0], np.sin([0, 1, 999]), atol=1e-15)
    assert timestep_embedding(t, 8, dtype=autodiff.float32).dtype == autodiff.float32


def test_odd_dim_pads_one_zero_column():
    emb = timestep_embedding([3.0, 7.0], 5).numpy()
    assert emb.shape == (2, 5)
    np.testing.assert_array_equal(emb[:, -1], 0.0)
    np.testing.assert_allclose(emb[:, :4], timestep_embedding([3.0, 7.0], 4).numpy(), atol=0)


def test_gradient_with_respect_to_continuous_time():
    t = autodiff.tensor([0.3, 2.5, 40.0], requires_grad=True)
    gradcheck(lambda s: timestep_embedding(s, 7, flip_sin_to_cos=True), [t])
    # d/dt sin(t w) = w cos(t w): column 0 (w = 1) of the sine half.
    (g,) = autodiff.grad(timestep_embedding(t, 6)[:, 0].sum(), [t])
    np.testing.assert_allclose(g.numpy(), np.cos([0.3, 2.5, 40.0]), atol=1e-15)


def loop_positions(length, dim, max_period=10000.0):
    pe = np.zeros((length, dim))
    for p in range(length):
        for j in range(dim):
            w = max_period ** (-(j - j % 2) / dim)
            pe[p, j] = math.sin(p * w) if j % 2 == 0 else math.cos(p * w)
    return pe


@given(length=st.integers(0, 12), dim=st.integers(1, 13))
def test_sinusoidal_positions_matches_vaswani_table(length, dim):
    np.testing.assert_allclose(sinusoidal_positions(length, dim).numpy(),
                               loop_positions(length, dim), rtol=0, atol=1e-12)


def test_module_form_and_repr():
    m = SinusoidalEmbedding(6, flip_sin_to_cos=True)
    np.testing.assert_array_equal(m(autodiff.tensor([1.0, 2.0])).numpy(),
                                  timestep_embedding([1.0, 2.0], 6, flip_sin_to_cos=True).numpy())
    assert m.num_parameters() == 0
    assert repr(m) == ("SinusoidalEmbedding(dim=6, max_period=10000.0, flip_sin_to_cos=True, "
                       "freq_shift=0)")


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"t must have shape \(N,\), got \(2, 1\)"):
        timestep_embedding(autodiff.zeros(2, 1), 4)
    with pytest.raises(ValueError, match="dim must be a positive int"):
        timestep_embedding([1.0], 0)
    with pytest.raises(ValueError, match="max_period must be > 1"):
        timestep_embedding([1.0], 4, max_period=1.0)
    with pytest.raises(ValueError, match="length must be a non-negative int"):
        sinusoidal_positions(-1, 4)
