"""autodiff.functional against torch.nn.functional in float64: values and input gradients.

Every case runs the same float64 inputs through both, compares the outputs, then the
vector-Jacobian products with one random cotangent for every differentiable input.
Tolerance 1e-10 relative (crosscheck_utils): the formulas agree up to rounding and
summation order.
"""
import numpy as np  # host-side test data
import pytest

import autodiff
import autodiff.functional as F
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck


def _rng(seed=0):
    return np.random.default_rng(seed)


def randn(*shape, seed=0, scale=1.0):
    return _rng(seed).standard_normal(shape) * scale


def probs(*shape, seed=0):
    p = _rng(seed).random(shape) + 0.05
    return p / p.sum(1, keepdims=True)


def check(ours, theirs, arrays, grad_of=None, seed=0):
    """Compare ours(*tensors) with theirs(*torch_tensors), value and gradients.

    :param arrays: NumPy inputs; floating ones get gradients unless ``grad_of`` lists the
        indices that do.
    """
    torch = torch_or_skip()
    if grad_of is None:
        grad_of = [i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f"]
    ours_in = [autodiff.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    torch_in = [to_torch(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    out, ref = ours(*ours_in), theirs(*torch_in)
    assert_close(out, ref, what="value")
    if not grad_of:
        return
    v = _rng(seed + 99).standard_normal(out.shape)
    grads = autodiff.grad((out * autodiff.tensor(v)).sum(), [ours_in[i] for i in grad_of])
    ref_grads = torch.autograd.grad((ref * torch.from_numpy(v)).sum(),
                                    [torch_in[i] for i in grad_of])
    for i, g, rg in zip(grad_of, grads, ref_grads):
        assert_close(g, rg, what=f"gradient of input {i}")


def tf():
    return torch_or_skip().nn.functional


# --------------------------------------------------------------------------- activations
X = randn(3, 4, 5, scale=3.0)
WIDE = np.concatenate([randn(20, scale=30.0), [-1e4, -20.5, 19.5, 20.0, 20.5, 1e4]])

ACTIVATIONS = {
    "softmax0": (lambda x: F.softmax(x, 0), lambda x: tf().softmax(x, 0), X),
    "softmax-1": (lambda x: F.softmax(x, -1), lambda x: tf().softmax(x, -1), X),
    "log_softmax1": (lambda x: F.log_softmax(x, 1), lambda x: tf().log_softmax(x, 1), X),
    "log_softmax_wide": (lambda x: F.log_softmax(x, 0), lambda x: tf().log_softmax(x, 0), WIDE),
    "logsumexp": (lambda x: F.logsumexp(x, (0, 2)),
                  lambda x: torch_or_skip().logsumexp(x, (0, 2)), X),
    "logsumexp_keep": (lambda x: F.logsumexp(x, 1, keepdim=True),
                       lambda x: torch_or_skip().logsumexp(x, 1, keepdim=True), X),
    "softplus": (F.softplus, lambda x: tf().softplus(x), WIDE),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=5.0),
                      lambda x: tf().softplus(x, beta=2.0, threshold=5.0), WIDE),
    "logsigmoid": (F.logsigmoid, lambda x: tf().logsigmoid(x), WIDE),
    "gelu": (F.gelu, lambda x: tf().gelu(x), WIDE),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: tf().gelu(x, approximate="tanh"), WIDE),
    "silu": (F.silu, lambda x: tf().silu(x), WIDE),
    "elu": (F.elu, lambda x: tf().elu(x), np.concatenate([WIDE, [0.0]])),
    "elu_alpha": (lambda x: F.elu(x, alpha=0.7), lambda x: tf().elu(x, alpha=0.7),
                  np.concatenate([WIDE, [0.0]])),
    "relu": (F.relu, lambda x: tf().relu(x), np.concatenate([WIDE, [0.0]])),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: tf().leaky_relu(x, 0.2),
                   np.concatenate([WIDE, [0.0]])),
    "tanh": (F.tanh, lambda x: torch_or_skip().tanh(x), WIDE),
    "sigmoid": (F.sigmoid, lambda x: torch_or_skip().sigmoid(x), WIDE),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations(name):
    ours, theirs, x = ACTIVATIONS[name]
    check(ours, theirs, [x])


# --------------------------------------------------------------------------- layers
def test_linear():
    check(F.linear, lambda x, w, b: tf().linear(x, w, b),
          [randn(2, 3, 4), randn(5, 4, seed=1), randn(5, seed=2)])
    check(F.linear, lambda x, w: tf().linear(x, w), [randn(6, 4), randn(5, 4, seed=1)])
    check(F.linear, lambda x, w: tf().linear(x, w), [randn(4), randn(5, 4, seed=1)])


def test_embedding():
    idx = np.array([[0, 2, 2, 5], [5, 1, 0, 3]])
    weight = randn(6, 3)
    check(lambda w, i: F.embedding(i, w), lambda w, i: tf().embedding(i, w), [weight, idx])
    check(lambda w, i: F.embedding(i, w, padding_idx=2),
          lambda w, i: tf().embedding(i, w, padding_idx=2), [weight, idx])
    check(lambda w, i: F.embedding(i, w, padding_idx=-1),
          lambda w, i: tf().embedding(i, w, padding_idx=-1), [weight, idx])


def test_one_hot():
    idx = np.array([[0, 3], [2, 1]])
    check(lambda i: F.one_hot(i), lambda i: tf().one_hot(i), [idx])
    check(lambda i: F.one_hot(i, 6), lambda i: tf().one_hot(i, 6), [idx])


# --------------------------------------------------------------------------- normalisation
NORMS = {
    "layer_norm_last": (lambda x, w, b: F.layer_norm(x, (5,), w, b),
                        lambda x, w, b: tf().layer_norm(x, (5,), w, b),
                        [X, randn(5, seed=1), randn(5, seed=2)]),
    "layer_norm_two": (lambda x, w, b: F.layer_norm(x, (4, 5), w, b, eps=1e-3),
                       lambda x, w, b: tf().layer_norm(x, (4, 5), w, b, eps=1e-3),
                       [X, randn(4, 5, seed=1), randn(4, 5, seed=2)]),
    "layer_norm_plain": (lambda x: F.layer_norm(x, [5]), lambda x: tf().layer_norm(x, [5]), [X]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 3, w, b),
                   lambda x, w, b: tf().group_norm(x, 3, w, b),
                   [randn(2, 6, 3, 2), randn(6, seed=1), randn(6, seed=2)]),
    "group_norm_plain": (lambda x: F.group_norm(x, 2, eps=1e-2),
                         lambda x: tf().group_norm(x, 2, eps=1e-2), [randn(3, 4, 5)]),
    "batch_norm_eval": (
        lambda x, w, b: F.batch_norm(x, autodiff.tensor(randn(4, seed=3)),
                                     autodiff.tensor(np.arange(1.0, 5.0)), w, b),
        lambda x, w, b: tf().batch_norm(x, to_torch(randn(4, seed=3)),
                                        to_torch(np.arange(1.0, 5.0)), w, b),
        [randn(3, 4, 2, 2), randn(4, seed=1), randn(4, seed=2)]),
}


@pytest.mark.parametrize("name", sorted(NORMS))
def test_normalization(name):
    ours, theirs, arrays = NORMS[name]
    check(ours, theirs, arrays)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 2, 4)])
def test_batch_norm_training_and_running_stats(shape):
    torch_or_skip()   # before to_torch below, so the test skips (not fails) without torch
    mean0, var0 = randn(3, seed=3), np.arange(1.0, 4.0)
    rm, rv = autodiff.tensor(mean0.copy()), autodiff.tensor(var0.copy())
    trm, trv = to_torch(mean0), to_torch(var0)
    for step in range(2):   # two updates, so the running average itself is compared
        x = randn(*shape, seed=step, scale=2.0) + 1.0
        check(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3),
              lambda x, w, b: tf().batch_norm(x, trm, trv, w, b, training=True, momentum=0.3),
              [x, randn(3, seed=1), randn(3, seed=2)])
        # check() ran each forward once: both sets of running statistics moved once.
        assert_close(rm, trm, what="running_mean")
        assert_close(rv, trv, what="running_var")


# --------------------------------------------------------------------------- attention
def _sdpa_case(**kw):
    def ours(q, k, v, *m):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=m[0] if m else kw.get("attn_mask"), **_kw(kw))

    def theirs(q, k, v, *m):
        mask = m[0] if m else kw.get("attn_mask")
        if mask is not None and not hasattr(mask, "requires_grad"):
            mask = to_torch(mask.numpy() if hasattr(mask, "numpy") else mask)
        return tf().scaled_dot_product_attention(q, k, v, attn_mask=mask, **_kw(kw))
    return ours, theirs


def _kw(kw):
    return {k: v for k, v in kw.items() if k != "attn_mask"}


Q, K, V = randn(2, 3, 4, 8), randn(2, 3, 6, 8, seed=1), randn(2, 3, 6, 5, seed=2)
BOOL_MASK = _rng(3).random((4, 6)) > 0.4
BOOL_MASK[:, 0] = True
ROW_DEAD = BOOL_MASK.copy()
ROW_DEAD[2] = False
SDPA = {
    "plain": ({}, [Q, K, V]),
    "scale": ({"scale": 0.37}, [Q, K, V]),
    "causal": ({"is_causal": True}, [Q, K, V]),
    "causal_square": ({"is_causal": True}, [Q, K[:, :, :4], V[:, :, :4]]),
    "bool_mask": ({"attn_mask": BOOL_MASK}, [Q, K, V]),
    "bool_mask_dead_row": ({"attn_mask": ROW_DEAD}, [Q, K, V]),
    "float_mask": ({}, [Q, K, V, randn(3, 4, 6, seed=4)]),
    "gqa": ({"enable_gqa": True}, [randn(2, 6, 4, 8), K, V]),
    "unbatched": ({}, [Q[0, 0], K[0, 0], V[0, 0]]),
}


@pytest.mark.parametrize("name", sorted(SDPA))
def test_scaled_dot_product_attention(name):
    kw, arrays = SDPA[name]
    ours, theirs = _sdpa_case(**kw)
    check(ours, theirs, arrays)


# --------------------------------------------------------------------------- losses
LOGITS = randn(6, 4, scale=2.0)
TARGET = np.array([0, 3, -100, 2, 3, 1])
SPATIAL = randn(2, 4, 3, 2, scale=2.0)
SPATIAL_T = np.array([[[0, 1], [3, -100], [2, 2]], [[1, 1], [0, 3], [-100, 2]]])
WEIGHT = np.array([1.0, 2.0, 0.5, 3.0])
HUGE = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, 3.0, -3.0]])
REDUCTIONS = ["mean", "sum", "none"]


def _ce(**kw):
    return (lambda x, t, *w: F.cross_entropy(x, t, *w, **kw),
            lambda x, t, *w: tf().cross_entropy(x, t, *w, **kw))


CE = {
    "basic": ({}, [LOGITS, TARGET]),
    "weight": ({}, [LOGITS, TARGET, WEIGHT]),
    "ignore_other": ({"ignore_index": 3}, [LOGITS, np.abs(TARGET) % 4, WEIGHT]),
    "smooth": ({"label_smoothing": 0.2}, [LOGITS, TARGET]),
    "smooth_weight": ({"label_smoothing": 0.15}, [LOGITS, TARGET, WEIGHT]),
    "spatial": ({}, [SPATIAL, SPATIAL_T]),
    "spatial_smooth_weight": ({"label_smoothing": 0.3}, [SPATIAL, SPATIAL_T, WEIGHT]),
    "unbatched": ({}, [LOGITS[0], np.array(2)]),
    "unbatched_smooth": ({"label_smoothing": 0.1}, [LOGITS[0], np.array(2), WEIGHT]),
    "probs": ({}, [LOGITS, probs(6, 4)]),
    "probs_weight_smooth": ({"label_smoothing": 0.25}, [LOGITS, probs(6, 4), WEIGHT]),
    "probs_spatial": ({}, [SPATIAL, probs(2, 4, 3, 2)]),
    "huge_logits": ({"label_smoothing": 0.1}, [HUGE, np.array([1, 0])]),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CE))
def test_cross_entropy(name, reduction):
    kw, arrays = CE[name]
    grad_of = [0, 1] if name.startswith("probs") else [0]   # probabilities are differentiable
    check(*_ce(reduction=reduction, **kw), arrays, grad_of=grad_of)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    def ours(x, t, w):
        return F.nll_loss(F.log_softmax(x, 1), t, w, reduction=reduction)

    def theirs(x, t, w):
        return tf().nll_loss(tf().log_softmax(x, 1), t, w, reduction=reduction)
    check(ours, theirs, [LOGITS, TARGET, WEIGHT], grad_of=[0])
    check(lambda x, t: F.nll_loss(x, t, reduction=reduction, ignore_index=1),
          lambda x, t: tf().nll_loss(x, t, reduction=reduction, ignore_index=1),
          [SPATIAL, np.abs(SPATIAL_T) % 4])


A, B_ = randn(3, 4), randn(3, 4, seed=1)
UNIT = _rng(5).random((3, 4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses(reduction):
    check(lambda x, y: F.mse_loss(x, y, reduction=reduction),
          lambda x, y: tf().mse_loss(x, y, reduction=reduction), [A, B_])
    check(lambda x, y, w: F.mse_loss(x, y, reduction=reduction, weight=w),
          lambda x, y, w: tf().mse_loss(x, y, reduction=reduction, weight=w), [A, B_, UNIT])
    check(lambda x, y: F.l1_loss(x, y, reduction=reduction),
          lambda x, y: tf().l1_loss(x, y, reduction=reduction), [A, B_])
    same = A.copy()
    same[0, 0] = B_[0, 0]   # subgradient at 0
    check(lambda x, y, w: F.l1_loss(x, y, reduction=reduction, weight=w),
          lambda x, y, w: tf().l1_loss(x, y, reduction=reduction, weight=w), [same, B_, UNIT])


BCE_X = np.concatenate([randn(3, 4, scale=3.0), HUGE], 0)
BCE_T = _rng(6).random((5, 4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    check(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
          lambda x, t: tf().binary_cross_entropy_with_logits(x, t, reduction=reduction),
          [BCE_X, BCE_T])
    pw, w = np.array([0.5, 1.0, 2.0, 4.0]), _rng(7).random((5, 1))
    check(lambda x, t, w, p: F.binary_cross_entropy_with_logits(
              x, t, w, reduction=reduction, pos_weight=p),
          lambda x, t, w, p: tf().binary_cross_entropy_with_logits(
              x, t, w, reduction=reduction, pos_weight=p),
          [BCE_X, BCE_T, w, pw], grad_of=[0, 1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_loss(reduction, full):
    var = _rng(8).random((3, 4)) + 0.1
    var[0, 0] = 1e-8     # clamped to eps: gradient must still pass as in PyTorch
    check(lambda x, y, v: F.gaussian_nll_loss(x, y, v, full=full, reduction=reduction),
          lambda x, y, v: tf().gaussian_nll_loss(x, y, v, full=full, reduction=reduction),
          [A, B_, var])
    check(lambda x, y, v: F.gaussian_nll_loss(x, y, v, eps=1e-3, reduction=reduction),
          lambda x, y, v: tf().gaussian_nll_loss(x, y, v, eps=1e-3, reduction=reduction),
          [A, B_, var[:, 0]])          # homoscedastic per row: var one dim short
    check(lambda x, y, v: F.gaussian_nll_loss(x, y, v, reduction=reduction),
          lambda x, y, v: tf().gaussian_nll_loss(x, y, v, reduction=reduction),
          [A, B_, var[:1]])            # one dim of size 1
    check(lambda x, y: F.gaussian_nll_loss(x, y, 0.7, reduction=reduction),
          lambda x, y: tf().gaussian_nll_loss(x, y, 0.7, reduction=reduction), [A, B_])


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    import warnings
    logq = np.log(probs(5, 4, seed=1))
    p = probs(5, 4, seed=2)
    p[0, 1] = 0.0            # xlogy: a zero target probability adds 0
    target = np.log(probs(5, 4, seed=2)) if log_target else p
    grad_of = [0, 1] if log_target else [0]   # d/dp at p = 0 is -inf in torch: skip it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # torch warns about 'mean'
        check(lambda q, t: F.kl_div(q, t, reduction=reduction, log_target=log_target),
              lambda q, t: tf().kl_div(q, t, reduction=reduction, log_target=log_target),
              [logq, target], grad_of=grad_of)


EMPTY = {
    "softmax": (lambda x: F.softmax(x, 0), lambda x: tf().softmax(x, 0), [np.zeros((0, 3))]),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda x: tf().log_softmax(x, 1),
                    [np.zeros((2, 0))]),
    "layer_norm": (lambda x: F.layer_norm(x, (3,)), lambda x: tf().layer_norm(x, (3,)),
                   [np.zeros((0, 3))]),
    "group_norm": (lambda x: F.group_norm(x, 1), lambda x: tf().group_norm(x, 1),
                   [np.zeros((0, 2, 3))]),
    "cross_entropy": (F.cross_entropy, lambda x, t: tf().cross_entropy(x, t),
                      [np.zeros((0, 3)), np.zeros(0, dtype=np.int64)]),
    "mse": (F.mse_loss, lambda x, t: tf().mse_loss(x, t), [np.zeros((0, 3)), np.zeros((0, 3))]),
    "sdpa_no_keys": (F.scaled_dot_product_attention,
                     lambda q, k, v: tf().scaled_dot_product_attention(q, k, v),
                     [np.ones((2, 3)), np.zeros((0, 3)), np.zeros((0, 4))]),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_inputs(name):
    ours, theirs, arrays = EMPTY[name]
    with np.errstate(invalid="ignore"):     # mean of nothing is NaN, as in torch
        check(ours, theirs, arrays, grad_of=[])
