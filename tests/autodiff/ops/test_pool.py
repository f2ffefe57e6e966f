"""avg_pool2d / max_pool2d / adaptive_avg_pool2d: values, tie rule, gradients (first and
second order), and error messages."""
import numpy as np  # host-side reference values and comparisons
import pytest
from hypothesis import given, settings, strategies as st

import autodiff
from autodiff.checks import gradcheck
from autodiff.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d


def _t(rng, *shape):
    return autodiff.tensor(rng.standard_normal(shape), requires_grad=True)


AVG_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
]


@pytest.mark.parametrize("kw", AVG_CASES)
def test_avg_pool2d_gradcheck(kw):
    rng = np.random.default_rng(0)
    assert gradcheck(lambda x: avg_pool2d(x, **kw), [_t(rng, 2, 2, 7, 6)])


MAX_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), ceil_mode=True),
]


@pytest.mark.parametrize("kw", MAX_CASES)
def test_max_pool2d_gradcheck(kw):
    # Distinct values (a permutation) keep every argmax away from ties, where the max is
    # not differentiable and central differences would straddle the kink.
    rng = np.random.default_rng(1)
    x = autodiff.tensor(rng.permutation(2 * 2 * 9 * 8).reshape(2, 2, 9, 8) * 0.1,
                        requires_grad=True)
    assert gradcheck(lambda x: max_pool2d(x, **kw), [x])


@settings(max_examples=25)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_max_pool2d_matches_window_max_and_routes_gradient(k, s, p, ceil, seed):
    """Each output is the max of its window; its gradient lands on that cell (flat index)."""
    p = min(p, k // 2)
    rng = np.random.default_rng(seed)
    x = autodiff.tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    y, idx = max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
    flat = x.numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(
        np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), axis=2).reshape(y.shape),
        y.numpy())
    xpad = np.pad(x.numpy(), ((0, 0), (0, 0), (p, p + s), (p, p + s)), constant_values=-np.inf)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            window = xpad[:, :, i * s:i * s + k, j * s:j * s + k]
            np.testing.assert_array_equal(window.max(axis=(2, 3)), y.numpy()[:, :, i, j])
    gy = rng.standard_normal(y.shape)
    (gx,) = autodiff.grad((y * autodiff.tensor(gy)).sum(), [x])
    expect = np.zeros(flat.shape)
    np.add.at(expect, (np.arange(2)[:, None, None], np.arange(3)[None, :, None],
                       idx.numpy().reshape(2, 3, -1)), gy.reshape(2, 3, -1))
    np.testing.assert_allclose(gx.numpy().reshape(2, 3, -1), expect, rtol=1e-13, atol=1e-13)


def test_max_pool2d_ties_go_to_the_first_maximum():
    x = autodiff.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_max_pool2d_propagates_nan():
    x = autodiff.tensor([[[[1.0, np.nan], [3.0, 2.0]]]])
    assert np.isnan(max_pool2d(x, 2).item())


@pytest.mark.parametrize("size", [(1, 1), (3, 4), (2, 3), (None, 2), 5])
def test_adaptive_avg_pool2d_gradcheck_and_window_means(size):
    rng = np.random.default_rng(2)
    x = _t(rng, 2, 2, 7, 6)
    y = adaptive_avg_pool2d(x, size)
    ho, wo = (size, size) if isinstance(size, int) else (size[0] or 7, size[1] or 6)
    for i in range(ho):
        for j in range(wo):
            hs, he = (i * 7) // ho, -(-((i + 1) * 7) // ho)
            ws, we = (j * 6) // wo, -(-((j + 1) * 6) // wo)
            np.testing.assert_allclose(y.numpy()[:, :, i, j],
                                       x.numpy()[:, :, hs:he, ws:we].mean(axis=(2, 3)), rtol=1e-13)
    assert gradcheck(lambda x: adaptive_avg_pool2d(x, size), [x])


def test_avg_pool2d_is_a_mean_of_windows_and_keeps_float32():
    x = autodiff.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), requires_grad=True)
    y = avg_pool2d(x, 2)
    np.testing.assert_array_equal(y.numpy(), [[[[2.5, 4.5], [10.5, 12.5]]]])
    (g,) = autodiff.grad(y.sum(), [x])
    assert y.dtype == np.float32 and g.dtype == np.float32
    assert max_pool2d(x, 2).dtype == np.float32
    assert adaptive_avg_pool2d(x, 3).dtype == np.float32


def test_avg_pool2d_divisor_of_windows_that_overhang_with_ceil_mode():
    """PyTorch's divisor: a window is clipped to the padded extent H + 2p (include_pad) or
    to the input (exclude_pad) before counting. On ones each output is, per axis, (input
    cells) / (counted cells), so the expected values follow by hand."""
    ones = autodiff.ones(1, 1, 5, 5)
    # k = 2, s = 2 on 5: the ceil_mode window at row/col 4 covers one cell, divisor 1
    np.testing.assert_array_equal(avg_pool2d(ones, 2, ceil_mode=True).numpy(), np.ones((1, 1, 3, 3)))
    ones = autodiff.ones(1, 1, 4, 4)
    # k = 3, s = 2, p = 1 on 4: windows [-1, 2), [1, 4), [3, 5) (clipped at H + p = 5)
    per_axis = np.array([2 / 3, 3 / 3, 1 / 2])
    np.testing.assert_allclose(avg_pool2d(ones, 3, 2, 1, ceil_mode=True).numpy()[0, 0],
                               np.outer(per_axis, per_axis), rtol=1e-15)
    np.testing.assert_allclose(
        avg_pool2d(ones, 3, 2, 1, ceil_mode=True, count_include_pad=False).numpy(),
        np.ones((1, 1, 3, 3)), rtol=1e-15)


@pytest.mark.parametrize("call, message", [
    (lambda: avg_pool2d(autodiff.zeros(1, 1, 4, 4), 2, padding=2), "at most half"),
    (lambda: max_pool2d(autodiff.zeros(1, 1, 2, 2), 3), "smaller than"),
    (lambda: max_pool2d(autodiff.zeros(4, 4), 2), r"shape \(4, 4\)"),
    (lambda: avg_pool2d(autodiff.zeros(1, 1, 4, 4), 0), "kernel_size must be positive"),
    (lambda: adaptive_avg_pool2d(autodiff.zeros(1, 1, 4, 4), 0), "positive"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
