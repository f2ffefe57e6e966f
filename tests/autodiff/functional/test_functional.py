"""autodiff.functional: gradients (first and second order), stability, reductions, errors.

Comparisons with torch.nn.functional live in test_functional_crosscheck.py.
"""
import math

import numpy as np  # host-side test data and comparisons
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autodiff
import autodiff.functional as F
from autodiff.checks import gradcheck


def T(a, requires_grad=True):
    return autodiff.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def randn(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def away_from_zero(*shape, seed=0):
    """Values with |x| in [0.2, 2]: safe for finite differences at kinks at 0."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


# --------------------------------------------------------------------------- gradchecks
SMOOTH_ACTIVATIONS = {
    "softplus": F.softplus,
    "softplus_beta": lambda x: F.softplus(x, beta=2.0, threshold=50.0),
    "logsigmoid": F.logsigmoid,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
}


@pytest.mark.parametrize("name", sorted(SMOOTH_ACTIVATIONS))
@settings(max_examples=8)
@given(shape=small_shapes, seed=st.integers(0, 2**16))
def test_smooth_activation_gradients(name, shape, seed):
    x = T(randn(*shape, seed=seed, scale=2.0))
    gradcheck(SMOOTH_ACTIVATIONS[name], [x])


@pytest.mark.parametrize("fn", [F.relu, lambda x: F.leaky_relu(x, 0.2), F.elu,
                                lambda x: F.elu(x, alpha=0.5)],
                         ids=["relu", "leaky_relu", "elu", "elu_alpha"])
def test_piecewise_activation_gradients(fn):
    gradcheck(fn, [T(away_from_zero(3, 4))])


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "softplus", "logsigmoid"])
def test_third_order(name):
    # The fused primitives' derivative primitives have backward rules of their own:
    # gradcheck (first and second order) of x -> f'(x) reaches the 2nd and 3rd derivatives.
    fn = SMOOTH_ACTIVATIONS[name]

    def derivative(x):
        (g,) = autodiff.grad(fn(x).sum(), [x], create_graph=True)
        return g
    gradcheck(derivative, [T(randn(2, 3, scale=2.0))])


def test_norm_and_softmax_third_order():
    x = T(randn(2, 4))

    def d_layer_norm(x):
        y = F.layer_norm(x, (4,))
        return autodiff.grad((y * y * y).sum(), [x], create_graph=True)[0]

    def d_softmax(x):
        return autodiff.grad((F.softmax(x, 1) ** 3).sum(), [x], create_graph=True)[0]
    gradcheck(d_layer_norm, [x])
    gradcheck(d_softmax, [x])


def test_softplus_gradient_at_zero_is_one_half():
    # abs'(0) = 0 would lose this in a relu/abs composite; the primitive keeps it.
    x = T([0.0])
    (g,) = autodiff.grad(F.softplus(x).sum(), [x], create_graph=True)
    assert g.item() == 0.5
    (h,) = autodiff.grad(g.sum(), [x])
    assert h.item() == 0.25


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
@settings(max_examples=10)
@given(shape=small_shapes, data=st.data())
def test_softmax_family_gradients(op, shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = T(randn(*shape, seed=data.draw(st.integers(0, 999)), scale=3.0))
    fn = {"softmax": lambda x: F.softmax(x, dim), "log_softmax": lambda x: F.log_softmax(x, dim),
          "logsumexp": lambda x: F.logsumexp(x, dim, keepdim=True)}[op]
    gradcheck(fn, [x])


@settings(max_examples=10)
@given(shape=small_shapes, seed=st.integers(0, 999))
def test_softmax_properties(shape, seed):
    x = randn(*shape, seed=seed, scale=5.0)
    p = F.softmax(T(x, False), -1).numpy()
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-14)
    shifted = F.softmax(T(x + 123.0, False), -1).numpy()
    np.testing.assert_allclose(shifted, p, rtol=1e-12, atol=1e-15)
    logp = F.log_softmax(T(x, False), -1).numpy()
    np.testing.assert_allclose(np.exp(logp), p, rtol=1e-13, atol=1e-15)


def test_linear_embedding_gradients():
    x, w, b = T(randn(2, 3, 4)), T(randn(5, 4, seed=1)), T(randn(5, seed=2))
    gradcheck(F.linear, [x, w, b])
    gradcheck(lambda x, w: F.linear(x, w), [T(randn(4)), w])
    weight = T(randn(6, 3))
    idx = autodiff.tensor([[0, 2, 2], [5, 1, 0]])
    # Without padding_idx: with it, the padding row's gradient is zero by definition (not
    # the true derivative), which embedding_padding_and_repeats checks instead.
    gradcheck(lambda w: F.embedding(idx, w), [weight])


def test_embedding_padding_and_repeats():
    weight = T(randn(4, 2))
    idx = autodiff.tensor([1, 1, 3, 0])
    out = F.embedding(idx, weight, padding_idx=3)
    np.testing.assert_array_equal(out.numpy(), weight.numpy()[[1, 1, 3, 0]])
    out.sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy()[:, 0], [1.0, 2.0, 0.0, 0.0])


@pytest.mark.parametrize("shape,normalized", [((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((5,), (5,))])
def test_layer_norm_gradients(shape, normalized):
    x = T(randn(*shape))
    w, b = T(randn(*normalized, seed=1)), T(randn(*normalized, seed=2))
    gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b), [x, w, b])
    gradcheck(lambda x: F.layer_norm(x, normalized, eps=1e-3), [x])


@settings(max_examples=10)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=5),
       seed=st.integers(0, 999))
def test_layer_norm_normalises(shape, seed):
    y = F.layer_norm(T(randn(*shape, seed=seed, scale=3.0) + 7.0, False), shape[-1:],
                     eps=0.0).numpy()
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-12)


def test_group_norm_gradients():
    x = T(randn(2, 6, 2, 3))
    w, b = T(randn(6, seed=1)), T(randn(6, seed=2))
    gradcheck(lambda x, w, b: F.group_norm(x, 3, w, b), [x, w, b])
    gradcheck(lambda x: F.group_norm(x, 1), [T(randn(3, 4))])


def test_group_norm_statistics():
    x = randn(2, 6, 5, seed=3) * 4 + 2
    y = F.group_norm(T(x, False), 2, eps=0.0).numpy().reshape(2, 2, -1)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-12)


def test_batch_norm_gradients_and_running_stats():
    x = T(randn(4, 3, 2))
    w, b = T(randn(3, seed=1)), T(randn(3, seed=2))
    gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b])
    rm, rv = autodiff.zeros(3), autodiff.ones(3)
    gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), [x, w, b])
    # Running statistics: biased variance normalises, unbiased variance is tracked.
    data = x.numpy()
    F.batch_norm(T(data, False), rm, rv, training=True, momentum=0.25)
    mean = data.mean((0, 2))
    np.testing.assert_allclose(rm.numpy(), 0.25 * mean, rtol=1e-14)
    np.testing.assert_allclose(rv.numpy(), 0.75 + 0.25 * data.var((0, 2), ddof=1), rtol=1e-14)


def test_attention_gradients():
    q, k, v = T(randn(2, 3, 4)), T(randn(2, 5, 4, seed=1)), T(randn(2, 5, 2, seed=2))
    gradcheck(F.scaled_dot_product_attention, [q, k, v])
    bool_mask = autodiff.tensor(np.random.default_rng(3).random((3, 5)) > 0.3)
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask),
              [q, k, v])
    float_mask = T(randn(3, 5, seed=4))
    gradcheck(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3),
              [q, k, v, float_mask])
    kc, vc = T(randn(2, 3, 4, seed=5)), T(randn(2, 3, 2, seed=6))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, kc, vc])


def test_causal_attention_is_autoregressive():
    # Output i may depend on keys/values j <= i only: gradients w.r.t. later ones vanish.
    q, k, v = T(randn(1, 4, 3)), T(randn(1, 4, 3, seed=1)), T(randn(1, 4, 3, seed=2))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    for i in range(4):
        gk, gv = autodiff.grad(out[0, i].sum(), [k, v])
        assert np.all(gk.numpy()[0, i + 1:] == 0) and np.all(gv.numpy()[0, i + 1:] == 0)
        assert np.any(gv.numpy()[0, :i + 1] != 0)


def test_attention_float_mask_keeps_the_query_dtype_and_int_mask_is_refused():
    q = autodiff.tensor(randn(2, 3, 4), dtype="float32")
    bias = np.triu(np.full((3, 3), -1e9), 1)                       # float64, causal
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=bias)
    assert out.dtype == np.float32
    causal = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    np.testing.assert_allclose(out.numpy(), causal.numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="attn_mask must be boolean .* or floating.*int64"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 3), dtype=np.int64))


def test_attention_fully_masked_row_is_zero():
    q, k, v = T(randn(3, 2)), T(randn(4, 2, seed=1)), T(randn(4, 2, seed=2))
    mask = np.ones((3, 4), dtype=bool)
    mask[1] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=autodiff.tensor(mask))
    assert np.all(out.numpy()[1] == 0) and np.all(np.isfinite(out.numpy()))
    gq, = autodiff.grad(out.sum(), [q])
    assert np.all(np.isfinite(gq.numpy())) and np.all(gq.numpy()[1] == 0)


# --------------------------------------------------------------------------- loss gradchecks
def _ce_inputs():
    logits = T(randn(5, 4))
    target = autodiff.tensor([0, 3, -100, 2, 3])
    weight = autodiff.tensor([1.0, 2.0, 0.5, 3.0])
    return logits, target, weight


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_gradients(reduction):
    logits, target, weight = _ce_inputs()
    gradcheck(lambda x: F.cross_entropy(x, target, weight, reduction=reduction,
                                        label_smoothing=0.2), [logits])
    gradcheck(lambda x: F.nll_loss(F.log_softmax(x, 1), target, reduction=reduction), [logits])
    probs = T(np.random.default_rng(1).dirichlet(np.ones(4), 5))
    gradcheck(lambda x, p: F.cross_entropy(x, p, reduction=reduction, label_smoothing=0.1),
              [logits, probs])
    x, y = T(randn(3, 4)), T(randn(3, 4, seed=1))
    gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [x, y])
    y_far = T(x.numpy() + away_from_zero(3, 4), False)   # no kink within eps of x
    gradcheck(lambda x: F.l1_loss(x, y_far, reduction=reduction), [x])
    t01 = T(np.random.default_rng(2).random((3, 4)))
    pw, w = T(np.array([0.5, 1.0, 2.0, 3.0])), T(np.random.default_rng(3).random((3, 4)))
    gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, w, pos_weight=pw, reduction=reduction), [x, t01])
    var = T(np.random.default_rng(4).random((3, 4)) + 0.1)
    gradcheck(lambda x, y, v: F.gaussian_nll_loss(x, y, v, full=True, reduction=reduction),
              [x, y, var])
    logq = F.log_softmax(T(randn(3, 4, seed=5), False), 1)
    p = T(np.random.default_rng(6).dirichlet(np.ones(4), 3))
    red = "batchmean" if reduction == "mean" else reduction
    gradcheck(lambda q, p: F.kl_div(q, p, reduction=red), [T(logq.numpy()), p])
    gradcheck(lambda q, t: F.kl_div(q, t, reduction=red, log_target=True),
              [T(logq.numpy()), T(np.log(p.numpy()))])


def test_cross_entropy_spatial_gradients():
    logits = T(randn(2, 3, 2, 2))
    target = autodiff.tensor(np.array([[[0, 1], [2, -100]], [[1, 1], [0, 2]]]))
    gradcheck(lambda x: F.cross_entropy(x, target, label_smoothing=0.3), [logits])


@settings(max_examples=10)
@given(n=st.integers(1, 4), c=st.integers(1, 5), seed=st.integers(0, 999),
       smoothing=st.sampled_from([0.0, 0.25]))
def test_cross_entropy_index_equals_one_hot_probabilities(n, c, seed, smoothing):
    rng = np.random.default_rng(seed)
    logits = T(rng.standard_normal((n, c)) * 3, False)
    idx = rng.integers(0, c, n)
    by_index = F.cross_entropy(logits, autodiff.tensor(idx), label_smoothing=smoothing)
    by_probs = F.cross_entropy(logits, T(np.eye(c)[idx], False), label_smoothing=smoothing)
    np.testing.assert_allclose(by_index.item(), by_probs.item(), rtol=1e-12)
    # And the definition: mean of -log softmax at the target (no smoothing).
    if smoothing == 0.0:
        x = logits.numpy()
        lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
        np.testing.assert_allclose(by_index.item(), np.mean(lse - x[np.arange(n), idx]),
                                   rtol=1e-12)


def test_cross_entropy_ignore_index_weighted_mean():
    logits, target, weight = _ce_inputs()
    x = logits.numpy()
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    keep = target.numpy() != -100
    t = target.numpy()[keep]
    w = weight.numpy()[t]
    expected = -(w * logp[keep][np.arange(len(t)), t]).sum() / w.sum()
    got = F.cross_entropy(logits, target, weight).item()
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    with np.errstate(invalid="ignore"):      # 0/0: every target ignored gives NaN, as torch
        all_ignored = F.cross_entropy(logits, autodiff.tensor([-100] * 5))
    assert math.isnan(all_ignored.item())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_weighted_label_smoothing_by_hand(reduction):
    # PyTorch's rule: (1 - eps) w[t] (-log p_t) + (eps / C) sum_c w_c (-log p_c) per kept
    # target; 'mean' divides both parts by the sum of w[t] over the kept targets.
    logits, target, weight = _ce_inputs()
    eps, x, t, w = 0.2, logits.numpy(), target.numpy(), weight.numpy()
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    keep = t != -100
    safe = np.where(keep, t, 0)
    w_t = w[safe] * keep
    per = ((1 - eps) * w_t * -logp[np.arange(len(t)), safe]
           + (eps / x.shape[1]) * (w * -logp).sum(1) * keep)
    expected = {"none": per, "sum": per.sum(), "mean": per.sum() / w_t.sum()}[reduction]
    got = F.cross_entropy(logits, target, weight, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_pos_weight_and_weight_by_hand(reduction):
    # The definition: -w [p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], p per class.
    rng = np.random.default_rng(7)
    x, y = randn(3, 4, scale=2.0), rng.random((3, 4))
    pw, w = np.array([0.5, 1.0, 2.0, 3.0]), rng.random((3, 4))
    sig = 1.0 / (1.0 + np.exp(-x))
    per = -w * (pw * y * np.log(sig) + (1 - y) * np.log(1 - sig))
    expected = {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]
    got = F.binary_cross_entropy_with_logits(T(x), T(y), T(w), pos_weight=T(pw),
                                             reduction=reduction)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13)


def test_gaussian_nll_clamped_variance_passes_gradient():
    # PyTorch clamps var under no_grad: the gradient reaches var unchanged at the clamp.
    x, y = T([1.0]), T([0.0], False)
    var = T([1e-9])
    loss = F.gaussian_nll_loss(x, y, var, eps=1e-3)
    (gv,) = autodiff.grad(loss, [var])
    c = 1e-3
    np.testing.assert_allclose(loss.item(), 0.5 * (math.log(c) + 1.0 / c), rtol=1e-14)
    np.testing.assert_allclose(gv.item(), 0.5 * (1 / c - 1 / c**2), rtol=1e-14)


# --------------------------------------------------------------------------- stability
EXTREME = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])

STABLE = {
    "softplus": F.softplus,
    "softplus_beta": lambda x: F.softplus(x, beta=0.5, threshold=1e6),
    "logsigmoid": F.logsigmoid,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "elu": F.elu,
    "sigmoid": F.sigmoid,
    "softmax": lambda x: F.softmax(x, 0),
    "log_softmax": lambda x: F.log_softmax(x, 0),
    "logsumexp": lambda x: F.logsumexp(x, 0),
    "cross_entropy": lambda x: F.cross_entropy(x.reshape(1, -1), autodiff.tensor([0])),
    "cross_entropy_smooth": lambda x: F.cross_entropy(x.reshape(1, -1), autodiff.tensor([6]),
                                                      label_smoothing=0.1),
    "bce_logits": lambda x: F.binary_cross_entropy_with_logits(
        x, autodiff.tensor((EXTREME > 0).astype(np.float64)), pos_weight=autodiff.tensor(3.0)),
    "bce_logits_wrong": lambda x: F.binary_cross_entropy_with_logits(
        x, autodiff.tensor((EXTREME < 0).astype(np.float64))),
    "kl_div_log_target": lambda x: F.kl_div(F.log_softmax(x, 0), F.log_softmax(-x, 0),
                                            log_target=True, reduction="sum"),
    "attention": lambda x: F.scaled_dot_product_attention(
        x.reshape(7, 1), x.reshape(7, 1), x.reshape(7, 1)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(STABLE))
def test_finite_values_and_gradients_at_extreme_logits(name, dtype):
    x = autodiff.tensor(EXTREME, dtype=dtype, requires_grad=True)
    out = STABLE[name](x)
    assert out.dtype == np.dtype(dtype), f"{name} changed dtype to {out.dtype}"
    assert np.all(np.isfinite(out.numpy())), f"{name}: {out.numpy()}"
    (g,) = autodiff.grad(out.sum(), [x], create_graph=True)
    assert g.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(g.numpy())), f"{name} gradient: {g.numpy()}"
    (h,) = autodiff.grad((g * g).sum(), [x])
    assert np.all(np.isfinite(h.numpy())), f"{name} second derivative: {h.numpy()}"


def test_extreme_values_are_exact():
    x = T([-1e4, 1e4], False)
    np.testing.assert_array_equal(F.softplus(x).numpy(), [0.0, 1e4])
    np.testing.assert_array_equal(F.logsigmoid(x).numpy(), [-1e4, 0.0])
    np.testing.assert_array_equal(F.log_softmax(x, 0).numpy(), [-2e4, 0.0])
    ce = F.cross_entropy(x.reshape(1, 2), autodiff.tensor([0]))
    assert ce.item() == 2e4
    bce = F.binary_cross_entropy_with_logits(x, T([1.0, 0.0], False), reduction="none")
    np.testing.assert_array_equal(bce.numpy(), [1e4, 1e4])


@pytest.mark.parametrize("name", sorted(STABLE))
def test_float32_stays_float32(name):
    x = autodiff.tensor(randn(7), dtype="float32", requires_grad=True)
    out = STABLE[name](x)
    (g,) = autodiff.grad(out.sum(), [x])
    assert out.dtype == np.float32 and g.dtype == np.float32


def test_float64_weights_do_not_upcast_float32_losses():
    x = autodiff.tensor(randn(4, 3), dtype="float32")
    w64 = autodiff.tensor(np.random.default_rng(1).random((4, 3)))
    probs = autodiff.tensor(np.full((4, 3), 1 / 3), dtype="float32")
    for out in (F.mse_loss(x, x * 2.0, weight=w64), F.l1_loss(x, x * 2.0, weight=w64),
                F.cross_entropy(x, probs, weight=autodiff.tensor(np.ones(3)))):
        assert out.dtype == np.float32
    # rtol: float32 rounding (eps 6e-8) accumulated over the 12-term sums, against float64.
    np.testing.assert_allclose(F.mse_loss(x, x * 2.0, weight=w64).item(),
                               (w64.numpy() * x.numpy() ** 2).sum() / w64.numpy().sum(),
                               rtol=1e-6)


# --------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("loss", ["mse", "l1", "bce", "gauss", "nll", "ce"])
def test_reductions_agree(loss):
    x = T(randn(4, 3), False)
    y = T(np.random.default_rng(1).random((4, 3)), False)
    t = autodiff.tensor([0, 2, 1, 1])
    fn = {
        "mse": lambda r: F.mse_loss(x, y, reduction=r),
        "l1": lambda r: F.l1_loss(x, y, reduction=r),
        "bce": lambda r: F.binary_cross_entropy_with_logits(x, y, reduction=r),
        "gauss": lambda r: F.gaussian_nll_loss(x, y, y + 0.5, reduction=r),
        "nll": lambda r: F.nll_loss(x, t, reduction=r),
        "ce": lambda r: F.cross_entropy(x, t, reduction=r),
    }[loss]
    none = fn("none").numpy()
    np.testing.assert_allclose(fn("sum").item(), none.sum(), rtol=1e-14)
    np.testing.assert_allclose(fn("mean").item(), none.mean(), rtol=1e-14)
    # The deprecated pair maps to the same reductions.
    if loss in ("mse", "l1"):
        f = F.mse_loss if loss == "mse" else F.l1_loss
        assert f(x, y, reduce=False).shape == none.shape
        np.testing.assert_allclose(f(x, y, size_average=False).item(), none.sum(), rtol=1e-14)


def test_kl_div_reductions():
    logq = F.log_softmax(T(randn(4, 3), False), 1)
    p = T(np.array([[0.5, 0.5, 0.0]] * 4), False)
    none = F.kl_div(logq, p, reduction="none").numpy()
    assert np.all(none[:, 2] == 0)
    np.testing.assert_allclose(F.kl_div(logq, p, reduction="batchmean").item(),
                               none.sum() / 4, rtol=1e-14)
    np.testing.assert_allclose(F.kl_div(logq, p).item(), none.mean(), rtol=1e-14)
    same = F.kl_div(F.log_softmax(T(randn(4, 3), False), 1),
                    F.softmax(T(randn(4, 3), False), 1), reduction="sum")
    assert abs(same.item()) < 1e-14


# --------------------------------------------------------------------------- dropout, one_hot
def test_dropout_statistics_and_reproducibility():
    p, n = 0.3, 200_000
    x = autodiff.ones(n)
    out = F.dropout(x, p, generator=autodiff.Generator(5)).numpy()
    kept = out != 0
    # Binomial(n, 1 - p): 5 standard deviations.
    assert abs(kept.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-15)
    again = F.dropout(x, p, generator=autodiff.Generator(5)).numpy()
    np.testing.assert_array_equal(out, again)
    assert F.dropout(x, p, training=False) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    xf = autodiff.ones(10, dtype="float32")
    assert F.dropout(xf, 0.5).dtype == np.float32


def test_dropout_gradient_uses_the_mask():
    x = T(randn(50))
    out = F.dropout(x, 0.5, generator=autodiff.Generator(1))
    (g,) = autodiff.grad(out.sum(), [x])
    np.testing.assert_array_equal(g.numpy(), (out.numpy() != 0) * 2.0)


def test_one_hot():
    out = F.one_hot(autodiff.tensor([[0, 2], [1, 0]]))
    assert out.dtype == np.int64 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy()[0], [[1, 0, 0], [0, 0, 1]])
    assert F.one_hot(autodiff.tensor([1]), num_classes=5).shape == (1, 5)


# --------------------------------------------------------------------------- errors
def test_cross_entropy_wrong_target_shape_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(5, 4\)"):
        F.cross_entropy(T(randn(5, 4)), autodiff.tensor(np.zeros((5, 2), dtype=np.int64)))
    with pytest.raises(TypeError, match="floating point"):
        F.cross_entropy(T(randn(5, 4)), autodiff.tensor(np.zeros((5, 4), dtype=np.int64)))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        F.cross_entropy(T(randn(2, 4)), autodiff.tensor([1, 4]))


@pytest.mark.parametrize("fn", [
    lambda r: F.mse_loss(T([1.0]), T([0.0]), reduction=r),
    lambda r: F.cross_entropy(T([[1.0, 2.0]]), autodiff.tensor([1]), reduction=r),
    lambda r: F.binary_cross_entropy_with_logits(T([1.0]), T([0.0]), reduction=r),
    lambda r: F.gaussian_nll_loss(T([1.0]), T([0.0]), T([1.0]), reduction=r),
])
def test_unknown_reduction_names_the_allowed_ones(fn):
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'"):
        fn("avg")


def test_kl_div_reduction_error_lists_batchmean():
    with pytest.raises(ValueError, match="'batchmean'"):
        F.kl_div(T([0.0]), T([1.0]), reduction="avg")


@pytest.mark.parametrize("call,pattern", [
    (lambda: F.linear(T(randn(2, 3)), T(randn(4, 5))), r"linear.*\(2, 3\).*\(4, 5\)"),
    (lambda: F.layer_norm(T(randn(2, 3)), (4,)), r"layer_norm.*\(4,\).*\(2, 3\)"),
    (lambda: F.group_norm(T(randn(2, 6, 3)), 4), r"group_norm.*6 channels.*4 groups"),
    (lambda: F.batch_norm(T(randn(1, 3)), None, None, training=True), "more than 1 value"),
    (lambda: F.batch_norm(T(randn(2, 3)), autodiff.zeros(4), autodiff.ones(4)), r"\(4,\).*3"),
    (lambda: F.scaled_dot_product_attention(T(randn(2, 3)), T(randn(4, 5)), T(randn(4, 5))),
     r"query of shape \(2, 3\) and key of shape \(4, 5\)"),
    (lambda: F.scaled_dot_product_attention(T(randn(2, 3)), T(randn(4, 3)), T(randn(4, 3)),
                                            attn_mask=autodiff.tensor(np.ones((3, 4), bool))),
     r"attn_mask of shape \(3, 4\)"),
    (lambda: F.scaled_dot_product_attention(T(randn(2, 3)), T(randn(2, 3)), T(randn(2, 3)),
                                            attn_mask=T(randn(2, 2)), is_causal=True),
     "is_causal"),
    (lambda: F.binary_cross_entropy_with_logits(T(randn(3)), T(randn(4))), r"\(4,\).*\(3,\)"),
    (lambda: F.mse_loss(T(randn(3)), T(randn(4))), r"mse_loss.*\(3,\).*\(4,\)"),
    (lambda: F.embedding(autodiff.tensor([0, 7]), T(randn(5, 2))), r"embedding.*\[0, 5\)"),
    (lambda: F.dropout(T(randn(3)), 1.5), "between 0 and 1"),
    (lambda: F.softmax(T(randn(3)), None), "pass dim"),
    (lambda: F.gelu(T(randn(3)), approximate="fast"), "'none' or 'tanh'"),
    (lambda: F.gaussian_nll_loss(T(randn(2, 3)), T(randn(2, 3)), T(randn(3, 2) ** 2)),
     "incorrect size"),
    (lambda: F.gaussian_nll_loss(T(randn(3)), T(randn(3)), T([1.0, -1.0, 1.0])), "negative"),
    (lambda: F.nll_loss(T(randn(3, 4)), autodiff.tensor([0, 1, 2]), weight=T(randn(3))),
     r"weight of shape \(3,\)"),
    (lambda: F.one_hot(autodiff.tensor([0, 3]), num_classes=3), r"\[0, 3\)"),
    (lambda: F.tanh(np.zeros(3)), "tanh: input must be an autodiff Tensor, got ndarray"),
    (lambda: F.sigmoid([0.0]), "sigmoid: input must be an autodiff Tensor, got list"),
])
def test_errors_name_the_op_and_shapes(call, pattern):
    with pytest.raises((ValueError, IndexError, TypeError), match=pattern):
        call()


def test_tensor_softmax_methods():
    x = T(randn(2, 3), False)
    np.testing.assert_array_equal(x.softmax(-1).numpy(), F.softmax(x, -1).numpy())
    np.testing.assert_array_equal(x.log_softmax(0).numpy(), F.log_softmax(x, 0).numpy())


def test_issue_names_are_exported():
    names = """softmax log_softmax logsumexp softplus logsigmoid gelu silu elu relu leaky_relu tanh
    sigmoid dropout linear embedding one_hot conv1d conv2d conv_transpose2d avg_pool2d max_pool2d
    adaptive_avg_pool2d interpolate pixel_shuffle pixel_unshuffle layer_norm group_norm batch_norm
    scaled_dot_product_attention cross_entropy nll_loss mse_loss l1_loss
    binary_cross_entropy_with_logits gaussian_nll_loss kl_div""".split()
    missing = [n for n in names if not callable(getattr(F, n, None))]
    assert not missing and set(names) <= set(F.__all__), missing
