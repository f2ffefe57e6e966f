"""Layers without PyTorch: gradients (first and second order) against central differences,
train/eval behaviour of Dropout and BatchNorm, shape errors, and NumPy reference forwards
over hypothesis-drawn shapes."""
import math
from contextlib import contextmanager

import numpy as np  # host-side reference computations
import pytest
from hypothesis import given, settings, strategies as st

import autodiff
import autodiff.nn as nn
from autodiff.checks import gradcheck


@contextmanager
def swapped_parameters(module, values):
    """Temporarily use ``values`` (dotted name -> Tensor) as the module's parameters, so
    gradcheck can perturb them as ordinary inputs."""
    saved = []
    for name, t in values.items():
        owner = module.get_submodule(name.rpartition(".")[0])
        key = name.rpartition(".")[2]
        saved.append((owner, key, owner._parameters[key]))
        owner._parameters[key] = t
    try:
        yield
    finally:
        for owner, key, p in saved:
            owner._parameters[key] = p


def check_module(module, *inputs, call=None, second_order=True):
    """gradcheck over the inputs and every parameter of ``module``."""
    call = call or (lambda m, *xs: m(*xs))
    names = [n for n, _ in module.named_parameters()]
    params = [autodiff.tensor(p.numpy(), requires_grad=True) for _, p in module.named_parameters()]
    k = len(inputs)

    def fn(*args):
        with swapped_parameters(module, dict(zip(names, args[k:]))):
            return call(module, *args[:k])

    return gradcheck(fn, list(inputs) + params, second_order=second_order)


def x_(*shape, seed=0, grad=True):
    return autodiff.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=grad)


def _nontrivial(module, seed=1):
    """Random affine parameters, so ones/zeros inits do not hide errors."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        with autodiff.no_grad():
            p.copy_(rng.standard_normal(p.shape) * 0.5 + 0.3)
    return module


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name,build,shape", [
    ("Linear", lambda: nn.Linear(3, 2), (4, 3)),
    ("Conv1d", lambda: nn.Conv1d(2, 2, 3, stride=2, padding=1), (2, 2, 5)),
    ("Conv2d", lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), (2, 2, 4, 4)),
    ("Conv2d-reflect", lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
     (1, 1, 3, 3)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1,
                                                   output_padding=1), (1, 2, 2, 3)),
    ("LayerNorm", lambda: _nontrivial(nn.LayerNorm(4)), (3, 4)),
    ("GroupNorm", lambda: _nontrivial(nn.GroupNorm(2, 4)), (2, 4, 3)),
    ("BatchNorm1d-train", lambda: _nontrivial(nn.BatchNorm1d(3)), (4, 3)),
    ("BatchNorm2d-eval", lambda: _nontrivial(nn.BatchNorm2d(2)).eval(), (2, 2, 2, 2)),
    ("ELU", lambda: nn.ELU(0.7), (3, 4)),
    ("GELU-tanh", lambda: nn.GELU("tanh"), (3, 4)),
    ("Softmax", lambda: nn.Softmax(-1), (3, 4)),
])
def test_module_gradcheck(name, build, shape):
    check_module(build(), x_(*shape))


def test_multihead_attention_gradcheck():
    mha = _nontrivial(nn.MultiheadAttention(4, 2, kdim=3, vdim=2, batch_first=True))
    mask = np.zeros((2, 3), dtype=bool)
    mask[0, 2] = True

    def call(m, q, k, v):
        out, w = m(q, k, v, key_padding_mask=mask)
        return out, w

    check_module(mha, x_(2, 2, 4), x_(2, 3, 3, seed=1), x_(2, 3, 2, seed=2), call=call)


def test_embedding_gradcheck_and_padding_row():
    idx = autodiff.tensor(np.array([[0, 1, 4], [1, 4, 4]]))
    check_module(nn.Embedding(5, 3), call=lambda m: m(idx))
    # The padding row is returned but, by definition (PyTorch's), receives no gradient.
    emb = nn.Embedding(5, 3, padding_idx=1)
    emb(idx).sum().backward()
    g = emb.weight.grad.numpy()
    assert np.all(g[1] == 0) and np.all(g[4] == 3) and np.all(g[0] == 1)


def test_critic_second_order():
    critic = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                           _nontrivial(nn.GroupNorm(1, 2)), nn.Flatten(), nn.Linear(8, 1))
    x = x_(2, 1, 4, 4)

    def penalty(m, x):
        (g,) = autodiff.grad(m(x).sum(), [x], create_graph=True)
        return ((g.reshape(2, -1).norm(dim=1) - 1.0) ** 2).mean()

    check_module(critic, x, call=penalty, second_order=False)


# --------------------------------------------------------------------------- modes
def test_dropout_train_and_eval():
    drop = nn.Dropout(p=0.25, generator=autodiff.Generator(0))
    x = autodiff.ones(200, 100)
    y = drop(x).numpy()
    kept = y != 0
    # keep fraction 0.75 within 5 standard errors of a Binomial(20000, 0.75) proportion
    assert abs(kept.mean() - 0.75) < 5 * math.sqrt(0.75 * 0.25 / kept.size)
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    drop.eval()
    assert drop(x) is x
    a = nn.Dropout(0.5, generator=autodiff.Generator(3))(x).numpy()
    b = nn.Dropout(0.5, generator=autodiff.Generator(3))(x).numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_batchnorm_train_vs_eval():
    bn = nn.BatchNorm1d(3, momentum=0.1, eps=1e-5)
    x = np.random.default_rng(0).standard_normal((8, 3)) * 2 + 1
    y = bn(autodiff.tensor(x)).numpy()
    ref = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    y = bn(autodiff.tensor(x)).numpy()
    ref = (x - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 1  # eval does not count


def test_batchnorm_without_running_stats_always_uses_batch():
    bn = nn.BatchNorm2d(2, track_running_stats=False).eval()
    assert bn.running_mean is None and "running_mean" not in bn.state_dict()
    x = np.random.default_rng(1).standard_normal((3, 2, 2, 2))
    y = bn(autodiff.tensor(x)).numpy()
    assert np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("module,x,pattern", [
    (nn.Linear(4, 2), (2, 3), r"Linear\(in_features=4\): input has last dimension 3, "
                              r"shape \(2, 3\)"),
    (nn.Conv2d(3, 2, 3), (1, 2, 5, 5), r"Conv2d\(in_channels=3\).*got shape \(1, 2, 5, 5\)"),
    (nn.Conv1d(3, 2, 3), (1, 3, 5, 5), r"Conv1d\(in_channels=3\).*\(N, C, L\)"),
    (nn.LayerNorm((2, 3)), (4, 3, 2), r"LayerNorm.*\(2, 3\).*\(4, 3, 2\)"),
    (nn.GroupNorm(2, 4), (2, 3, 5), r"GroupNorm.*\(N, 4, \*\).*\(2, 3, 5\)"),
    (nn.BatchNorm2d(3), (2, 3, 4), r"BatchNorm2d\(num_features=3\).*\(2, 3, 4\)"),
    (nn.BatchNorm1d(3), (2, 4), r"BatchNorm1d\(num_features=3\).*\(2, 4\)"),
])
def test_shape_errors_name_layer_and_shape(module, x, pattern):
    with pytest.raises(ValueError, match=pattern):
        module(autodiff.zeros(*x))


def test_other_errors():
    with pytest.raises(TypeError, match="Linear: input must be a Tensor"):
        nn.Linear(2, 2)([1.0, 2.0])
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="num_channels \\(5\\) must be divisible"):
        nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match="num_groups \\(0\\), a positive integer"):
        nn.GroupNorm(0, 4)                # not a ZeroDivisionError from the modulo
    with pytest.raises(ValueError, match="embed_dim \\(6\\) must be divisible by num_heads"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(4, 2)
    with pytest.raises(ValueError, match=r"MultiheadAttention\(kdim=4\): key has last dimension 3"):
        mha(autodiff.zeros(2, 1, 4), autodiff.zeros(3, 1, 3), autodiff.zeros(3, 1, 4))
    with pytest.raises(ValueError, match=r"key_padding_mask must be \(1, 3\)"):
        mha(autodiff.zeros(2, 1, 4), autodiff.zeros(3, 1, 4), autodiff.zeros(3, 1, 4),
            key_padding_mask=np.zeros((1, 2), dtype=bool))
    with pytest.raises(TypeError, match="integer indices"):
        nn.Embedding(3, 2)(autodiff.zeros(2))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="output_size"):
        nn.ConvTranspose2d(1, 1, 3, stride=2)(autodiff.zeros(1, 1, 3, 3), output_size=(4, 4))


def test_attention_causal_and_weights():
    """is_causal without a mask builds the causal mask; weights rows sum to 1."""
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    x = x_(2, 5, 4, grad=False)
    out, w = mha(x, x, x, is_causal=True, average_attn_weights=False)
    assert out.shape == (2, 5, 4) and w.shape == (2, 2, 5, 5)
    w = w.numpy()
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
    assert np.all(np.triu(w[0, 0], 1) == 0)
    out2, none = mha(x, x, x, is_causal=True, need_weights=False)
    assert none is None
    np.testing.assert_allclose(out2.numpy(), out.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- hypothesis
@settings(max_examples=25)
@given(lead=st.lists(st.integers(0, 3), min_size=0, max_size=3),
       n_in=st.integers(1, 4), n_out=st.integers(1, 4), bias=st.booleans())
def test_linear_matches_numpy(lead, n_in, n_out, bias):
    lin = nn.Linear(n_in, n_out, bias=bias)
    x = np.random.default_rng(0).standard_normal(tuple(lead) + (n_in,))
    y = lin(autodiff.tensor(x)).numpy()
    ref = x @ lin.weight.numpy().T + (lin.bias.numpy() if bias else 0.0)
    assert y.shape == tuple(lead) + (n_out,)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=25)
@given(lead=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       norm=st.lists(st.integers(1, 3), min_size=1, max_size=2))
def test_layer_norm_matches_numpy(lead, norm):
    ln = _nontrivial(nn.LayerNorm(norm))
    x = np.random.default_rng(0).standard_normal(tuple(lead) + tuple(norm))
    axes = tuple(range(len(lead), x.ndim))
    ref = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
    ref = ref * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(ln(autodiff.tensor(x)).numpy(), ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=20)
@given(n=st.integers(1, 3), c=st.sampled_from([1, 2, 4]), hw=st.tuples(st.integers(1, 4),
                                                                        st.integers(1, 4)),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1))
def test_conv2d_output_shape(n, c, hw, k, stride, padding):
    h, w = hw
    conv = nn.Conv2d(c, 3, k, stride=stride, padding=padding)
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    x = autodiff.zeros(n, c, h, w)
    if ho <= 0 or wo <= 0:
        with pytest.raises(ValueError):
            conv(x)
    else:
        assert conv(x).shape == (n, 3, ho, wo)


@pytest.mark.parametrize("build,shape", [
    (lambda: nn.Linear(3, 2, dtype=autodiff.float32), (4, 3)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1, dtype=autodiff.float32), (2, 2, 4, 4)),
    (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, dtype=autodiff.float32), (2, 2, 3, 3)),
    (lambda: nn.LayerNorm(4, dtype=autodiff.float32), (2, 4)),
    (lambda: nn.GroupNorm(2, 4, dtype=autodiff.float32), (2, 4, 3)),
    (lambda: nn.BatchNorm2d(2, dtype=autodiff.float32), (3, 2, 2, 2)),
    (lambda: nn.Sequential(nn.Linear(4, 4, dtype=autodiff.float32), nn.GELU(), nn.SiLU(),
                           nn.Softplus(), nn.ELU(), nn.Dropout(0.1)), (2, 4)),
])
def test_float32_stays_float32(build, shape):
    """No layer upcasts: float32 parameters and input give float32 outputs and gradients."""
    m = build()
    x = autodiff.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32),
                        requires_grad=True)
    y = m(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in m.parameters())
    assert all(b.dtype in (np.float32, np.int64) for b in m.buffers())


def test_float32_attention():
    mha = nn.MultiheadAttention(4, 2, dtype=autodiff.float32)
    x = autodiff.tensor(np.ones((3, 2, 4), dtype=np.float32), requires_grad=True)
    mask = np.triu(np.ones((3, 3), dtype=bool), 1)
    out, w = mha(x, x, x, attn_mask=mask)
    assert out.dtype == np.float32 and w.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32 and mha.in_proj_weight.grad.dtype == np.float32
