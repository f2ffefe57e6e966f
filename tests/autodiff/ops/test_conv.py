"""conv1d / conv2d / conv_transpose1d / conv_transpose2d: values, adjoint pairing, gradients
(first and second order), dtype, and error messages."""
import numpy as np  # host-side reference implementation and comparisons
import pytest
from hypothesis import given, settings, strategies as st

import autodiff
from autodiff.checks import gradcheck
from autodiff.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d


def _t(rng, *shape, grad=True):
    return autodiff.tensor(rng.standard_normal(shape), requires_grad=grad)


def _naive_conv2d(x, w, stride, padding, dilation, groups):
    """Direct definition, one output pixel at a time (independent of the im2col code)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    y = np.zeros((n, o, ho, wo))
    for oc in range(o):
        g = oc // og
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                           j * sw:j * sw + dw * (kw - 1) + 1:dw]
                y[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    return y


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 2))
    og = draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    eff = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    h = draw(st.integers(max(1, eff[0] - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, eff[1] - 2 * padding[1]), 7))
    n = draw(st.integers(1, 2))
    return dict(x=(n, groups * cg, h, w), w=(groups * og, cg, kh, kw), stride=stride,
                padding=padding, dilation=dilation, groups=groups)


@settings(max_examples=25)
@given(conv_configs(), st.integers(0, 2**31 - 1))
def test_conv2d_matches_direct_definition_and_is_adjoint_paired(cfg, seed):
    """y equals the direct sum; <conv(x, w), gy> = <x, conv^T(gy, w)> = <w, dW(x, gy)>."""
    rng = np.random.default_rng(seed)
    x, w = _t(rng, *cfg["x"]), _t(rng, *cfg["w"])
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
              groups=cfg["groups"])
    y = conv2d(x, w, **kw)
    ref = _naive_conv2d(x.numpy(), w.numpy(), cfg["stride"], cfg["padding"], cfg["dilation"],
                        cfg["groups"])
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)
    gy = autodiff.tensor(rng.standard_normal(y.shape))
    gx, gw = autodiff.grad((y * gy).sum(), [x, w])
    lhs = float((y * gy).sum().item())
    # Bilinearity: <y, gy> = <x, dL/dx> = <w, dL/dw> (Euler's identity for degree-1 maps).
    assert np.isclose(lhs, float((x * gx).sum().item()), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, float((w * gw).sum().item()), rtol=1e-10, atol=1e-10)


CONV2D_CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
    dict(padding="same", dilation=2),
    dict(groups=2, padding=1),
    dict(padding="valid", stride=3),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kw", CONV2D_CASES)
def test_conv2d_gradcheck_first_and_second_order(kw, bias):
    rng = np.random.default_rng(1)
    x, w = _t(rng, 2, 4, 6, 5), _t(rng, 4, 4 // kw.get("groups", 1), 3, 2)
    inputs = [x, w] + ([_t(rng, 4)] if bias else [])
    assert gradcheck(lambda x, w, *b: conv2d(x, w, b[0] if b else None, **kw), inputs)


CONVT_CASES = [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2)),
    dict(stride=1, dilation=2, padding=1, output_padding=1),   # output_padding < dilation
    dict(groups=2, stride=2),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kw", CONVT_CASES)
def test_conv_transpose2d_gradcheck_first_and_second_order(kw, bias):
    rng = np.random.default_rng(2)
    x, w = _t(rng, 2, 4, 3, 4), _t(rng, 4, 3 if kw.get("groups", 1) == 1 else 1, 3, 3)
    inputs = [x, w] + ([_t(rng, w.shape[1] * kw.get("groups", 1))] if bias else [])
    assert gradcheck(lambda x, w, *b: conv_transpose2d(x, w, b[0] if b else None, **kw), inputs)


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    """conv_transpose2d(gy, w) = d<conv2d(x, w), gy>/dx for the same stride/padding/dilation."""
    rng = np.random.default_rng(3)
    x, w = _t(rng, 2, 3, 9, 8), _t(rng, 5, 3, 3, 3)
    y = conv2d(x, w, stride=2, padding=1, dilation=1)
    gy = autodiff.tensor(rng.standard_normal(y.shape))
    (gx,) = autodiff.grad((y * gy).sum(), [x])
    out = conv_transpose2d(gy, w, stride=2, padding=1, output_padding=(0, 1))
    np.testing.assert_allclose(out.numpy(), gx.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=2, groups=2),
                                dict(padding="same")])
def test_conv1d_gradcheck(kw):
    rng = np.random.default_rng(4)
    x, w, b = _t(rng, 2, 4, 9), _t(rng, 6, 4 // kw.get("groups", 1), 3), _t(rng, 6)
    assert gradcheck(lambda x, w, b: conv1d(x, w, b, **kw), [x, w, b])


def test_conv1d_equals_conv2d_on_height_one():
    rng = np.random.default_rng(5)
    x, w = _t(rng, 2, 3, 10), _t(rng, 4, 3, 3)
    y1 = conv1d(x, w, stride=2, padding=1)
    y2 = conv2d(x.unsqueeze(2), w.unsqueeze(2), stride=(1, 2), padding=(0, 1)).squeeze(2)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())


def test_conv_transpose1d_gradcheck():
    rng = np.random.default_rng(6)
    x, w, b = _t(rng, 2, 4, 5), _t(rng, 4, 3, 3), _t(rng, 3)
    assert gradcheck(lambda x, w, b: conv_transpose1d(x, w, b, stride=2, padding=1,
                                                      output_padding=1), [x, w, b])


def test_wgan_gp_style_penalty_differentiates_through_conv():
    """d/dw of (||d conv-critic/dx|| - 1)^2: a second derivative through conv2d (checked numerically)."""
    rng = np.random.default_rng(7)
    x = autodiff.tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    w1, w2 = _t(rng, 3, 2, 3, 3), _t(rng, 1, 3, 3, 3)

    def penalty(w1, w2):
        h = conv2d(x, w1, stride=1, padding=1).tanh()
        d = conv2d(h, w2, stride=2).sum()
        (gx,) = autodiff.grad(d, [x], create_graph=True)
        return ((gx * gx).sum().sqrt() - 1.0) ** 2

    assert gradcheck(penalty, [w1, w2], second_order=False)


def test_float32_stays_float32():
    rng = np.random.default_rng(8)
    x = autodiff.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = autodiff.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = autodiff.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    y = conv2d(x, w, b, stride=2, padding=1)
    assert y.dtype == np.float32
    gx, gw, gb = autodiff.grad(y.sum(), [x, w, b], create_graph=True)
    assert gx.dtype == gw.dtype == gb.dtype == np.float32
    z = conv_transpose2d(y, w, stride=2, padding=1, output_padding=1)
    assert z.dtype == np.float32 and z.shape == x.shape


def test_channel_mismatch_names_both_shapes():
    x, w = autodiff.zeros(1, 3, 5, 5), autodiff.zeros(4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d.*\(1, 3, 5, 5\).*\(4, 2, 3, 3\)"):
        conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv_transpose2d.*\(1, 3, 5, 5\).*\(4, 2, 3, 3\)"):
        conv_transpose2d(x, w)


@pytest.mark.parametrize("call, message", [
    (lambda: conv2d(autodiff.zeros(1, 2, 2, 2), autodiff.zeros(3, 2, 3, 3)), "smaller than"),
    (lambda: conv2d(autodiff.zeros(1, 2, 5, 5), autodiff.zeros(3, 2, 3, 3), autodiff.zeros(2)),
     r"bias of shape \(2,\)"),
    (lambda: conv2d(autodiff.zeros(1, 4, 5, 5), autodiff.zeros(3, 2, 3, 3), groups=2),
     "not divisible by groups"),
    (lambda: conv2d(autodiff.zeros(4, 5, 5), autodiff.zeros(3, 4, 3, 3)), "4-D input"),
    (lambda: conv2d(autodiff.zeros(1, 2, 5, 5), autodiff.zeros(3, 2, 3, 3), stride=2,
                    padding="same"), "same"),
    (lambda: conv2d(autodiff.zeros(1, 2, 5, 5), autodiff.zeros(3, 2, 3, 3), stride=0),
     "stride must be positive"),
    (lambda: conv_transpose2d(autodiff.zeros(1, 2, 5, 5), autodiff.zeros(2, 3, 3, 3), stride=2,
                              output_padding=2), "output_padding"),
    (lambda: conv1d(autodiff.zeros(1, 2, 5, 5), autodiff.zeros(3, 2, 3)), "3-D input"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
