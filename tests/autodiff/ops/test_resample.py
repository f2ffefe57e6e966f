"""interpolate (nearest, nearest-exact, bilinear, area) and pixel_shuffle/unshuffle."""
import numpy as np  # host-side reference values and comparisons
import pytest
from hypothesis import given, settings, strategies as st

import autodiff
from autodiff.checks import gradcheck
from autodiff.ops.resample import interpolate, pixel_shuffle, pixel_unshuffle


def _t(rng, *shape):
    return autodiff.tensor(rng.standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("kw", [
    dict(scale_factor=2, mode="nearest"),
    dict(size=(5, 3), mode="nearest"),
    dict(size=(7, 2), mode="nearest-exact"),
    dict(scale_factor=2, mode="bilinear"),
    dict(size=(5, 7), mode="bilinear", align_corners=True),
    dict(scale_factor=(0.6, 1.7), mode="bilinear", align_corners=False),
    dict(size=(2, 2), mode="area"),
])
def test_interpolate_gradcheck(kw):
    rng = np.random.default_rng(0)
    assert gradcheck(lambda x: interpolate(x, **kw), [_t(rng, 2, 2, 4, 5)])


def test_nearest_follows_the_float32_floor_rule():
    """src = min(floor(float32(dst) * float32(in / out)), in - 1) (PyTorch's legacy 'nearest')."""
    # (2, 82), (2, 94), (3, 123), (6, 74): float32 and float64 arithmetic give different indices.
    pairs = [(i, o) for i in range(1, 12) for o in range(1, 30)] + [(2, 82), (2, 94), (3, 123),
                                                                     (6, 74)]
    for n_in, n_out in pairs:
        x = autodiff.tensor(np.arange(n_in, dtype=np.float64).reshape(1, 1, n_in, 1))
        got = interpolate(x, size=(n_out, 1)).numpy().ravel()
        if n_out == 2 * n_in:
            expect = np.arange(n_out) // 2
        else:
            scale = np.float32(n_in) / np.float32(n_out)
            expect = np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale), n_in - 1)
        np.testing.assert_array_equal(got, expect, err_msg=f"{n_in} -> {n_out}")


def test_integer_upsampling_is_a_repeat():
    rng = np.random.default_rng(1)
    x = _t(rng, 2, 3, 4, 5)
    y = interpolate(x, scale_factor=3)
    np.testing.assert_array_equal(y.numpy(), x.numpy().repeat(3, axis=2).repeat(3, axis=3))
    (g,) = autodiff.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.numpy(), np.full(x.shape, 9.0))


def test_bilinear_align_corners_keeps_corners_and_is_linear_in_between():
    x = autodiff.tensor(np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2))
    y = interpolate(x, size=(3, 3), mode="bilinear", align_corners=True).numpy()[0, 0]
    np.testing.assert_allclose(y, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]], rtol=1e-15)
    z = interpolate(x, size=(4, 4), mode="bilinear", align_corners=False).numpy()[0, 0]
    # Half-pixel centres: out pixel 1 sits at src 0.25 -> 0.75 x0 + 0.25 x1 along each axis.
    np.testing.assert_allclose(z[0], [0, 0.25, 0.75, 1], rtol=1e-15)


@settings(max_examples=25)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
       st.integers(0, 2))
def test_pixel_unshuffle_inverts_pixel_shuffle(c, h, w, r, lead):
    rng = np.random.default_rng(c * 100 + h * 10 + w)
    shape = (2,) * lead + (c * r * r, h, w)
    x = autodiff.tensor(rng.standard_normal(shape))
    y = pixel_shuffle(x, r)
    assert y.shape == (2,) * lead + (c, h * r, w * r)
    np.testing.assert_array_equal(pixel_unshuffle(y, r).numpy(), x.numpy())
    # out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w]
    xa, ya = x.numpy(), y.numpy()
    for i in range(r):
        for j in range(r):
            np.testing.assert_array_equal(ya[..., i::r, j::r], xa[..., i * r + j::r * r, :, :])


def test_pixel_shuffle_gradcheck():
    rng = np.random.default_rng(2)
    assert gradcheck(lambda x: pixel_shuffle(x, 2), [_t(rng, 2, 8, 2, 3)])
    assert gradcheck(lambda x: pixel_unshuffle(x, 2), [_t(rng, 2, 2, 4, 6)])


def test_float32_stays_float32():
    x = autodiff.tensor(np.ones((1, 1, 3, 3), dtype=np.float32), requires_grad=True)
    for mode in ("nearest", "bilinear", "area"):
        y = interpolate(x, size=(5, 4) if mode != "area" else (2, 2), mode=mode)
        (g,) = autodiff.grad(y.sum(), [x])
        assert y.dtype == np.float32 and g.dtype == np.float32, mode


@pytest.mark.parametrize("call, message", [
    (lambda: interpolate(autodiff.zeros(1, 1, 4, 4)), "exactly one of size and scale_factor"),
    (lambda: interpolate(autodiff.zeros(1, 1, 4, 4), size=2, mode="bicubic"), "not supported"),
    (lambda: interpolate(autodiff.zeros(1, 1, 4, 4), size=2, align_corners=True),
     "align_corners"),
    (lambda: interpolate(autodiff.zeros(1, 4, 4), size=2), r"4-D.*\(1, 4, 4\)"),
    (lambda: pixel_shuffle(autodiff.zeros(1, 3, 2, 2), 2), "divisible"),
    (lambda: pixel_unshuffle(autodiff.zeros(1, 3, 3, 2), 2), "divisible"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
