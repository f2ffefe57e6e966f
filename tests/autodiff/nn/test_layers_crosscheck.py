"""Every nn layer against PyTorch in float64: the same state_dict (PyTorch's, converted to
NumPy arrays and loaded with ``load_state_dict``), the same input, the same output cotangent;
outputs, input gradients and parameter gradients must agree to 1e-10 relative (same
formulas, float64 rounding and summation order only). Parameter names and shapes must be
PyTorch's state_dict keys exactly. Also: default initialisations compared by distribution,
BatchNorm running statistics, MultiheadAttention with masks, and a WGAN-GP penalty's
gradient with respect to a critic's parameters (second-order through conv and norms).
"""
import math

import numpy as np  # host-side: test data and comparisons
import pytest

import autodiff
import autodiff.nn as nn
from tests.crosscheck_utils import torch_or_skip, to_torch, assert_close

pytestmark = pytest.mark.crosscheck

RTOL = 1e-10  # float64, same formulas: rounding and summation order only


@pytest.fixture
def torch():
    return torch_or_skip()


def names_and_shapes(sd):
    return [(k, tuple(v.shape)) for k, v in sd.items()]


def copy_from_torch(ours, theirs, randomize, torch):
    """Randomise torch's floating parameters (so identity inits do not hide bugs), then load
    its state_dict, as NumPy arrays, into ours."""
    if randomize:
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in theirs.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5 + 0.2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def compare(ours, theirs, inputs, torch, call=None, randomize=True, train=True, what=""):
    """Run both modules on the same inputs (NumPy arrays) and compare everything."""
    assert names_and_shapes(ours.state_dict()) == names_and_shapes(theirs.state_dict()), what
    theirs.double()
    copy_from_torch(ours, theirs, randomize, torch)
    ours.train(train)
    theirs.train(train)
    call = call or (lambda m, *xs: m(*xs))
    ours_in = [autodiff.tensor(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray)
               else a for a in inputs]
    torch_in = [to_torch(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray)
                else a for a in inputs]
    out_o, out_t = call(ours, *ours_in), call(theirs, *torch_in)
    out_o = out_o if isinstance(out_o, tuple) else (out_o,)
    out_t = out_t if isinstance(out_t, tuple) else (out_t,)
    rng = np.random.default_rng(0)
    loss_o = loss_t = 0.0
    for i, (o, t) in enumerate(zip(out_o, out_t)):
        assert (o is None) == (t is None), f"{what}: output {i} None in one only"
        if o is None:
            continue
        assert_close(o, t, rtol=RTOL, what=f"{what}: output {i}")
        v = rng.standard_normal(tuple(t.shape))
        loss_o = loss_o + (o * autodiff.tensor(v)).sum()
        loss_t = loss_t + (t * to_torch(v)).sum()
    loss_o.backward()
    loss_t.backward()
    for i, (a, b) in enumerate(zip(ours_in, torch_in)):
        if isinstance(a, autodiff.Tensor) and a.requires_grad:
            assert_close(a.grad, b.grad, rtol=RTOL, what=f"{what}: input {i} gradient")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        tp = theirs_params[name]
        if tp.grad is None:
            assert p.grad is None or not np.any(p.grad.numpy()), f"{what}: {name}"
        else:
            assert_close(p.grad, tp.grad, rtol=RTOL, what=f"{what}: gradient of {name}")
    for (name, b) in theirs.named_buffers():
        assert_close(dict(ours.named_buffers())[name], b, rtol=RTOL, what=f"{what}: buffer {name}")
    return out_o, out_t


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- layers
LAYERS = [
    ("Linear", lambda m: m.Linear(4, 3), [(2, 5, 4)]),
    ("Linear-nobias", lambda m: m.Linear(4, 3, bias=False), [(6, 4)]),
    ("Linear-1d", lambda m: m.Linear(4, 2), [(4,)]),
    ("Conv1d", lambda m: m.Conv1d(3, 4, 3, stride=2, padding=1), [(2, 3, 9)]),
    ("Conv1d-groups-dil", lambda m: m.Conv1d(4, 6, 2, dilation=2, groups=2, bias=False),
     [(2, 4, 7)]),
    ("Conv1d-same-reflect", lambda m: m.Conv1d(2, 3, 4, padding="same", padding_mode="reflect"),
     [(2, 2, 8)]),
    ("Conv2d", lambda m: m.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), [(2, 4, 7, 7)]),
    ("Conv2d-rect", lambda m: m.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=(1, 0)),
     [(1, 2, 5, 6)]),
    ("Conv2d-same-dil", lambda m: m.Conv2d(2, 3, (2, 3), padding="same", dilation=2),
     [(2, 2, 6, 6)]),
    ("Conv2d-valid", lambda m: m.Conv2d(2, 3, 3, padding="valid"), [(2, 2, 5, 5)]),
    ("Conv2d-circular", lambda m: m.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
     [(2, 2, 5, 5)]),
    ("Conv2d-replicate", lambda m: m.Conv2d(2, 3, 3, padding=2, padding_mode="replicate"),
     [(2, 2, 4, 4)]),
    ("Conv2d-reflect", lambda m: m.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"),
     [(2, 2, 4, 5)]),
    ("Conv2d-unbatched", lambda m: m.Conv2d(2, 3, 3), [(2, 5, 5)]),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                    output_padding=1, groups=2),
     [(2, 4, 4, 4)]),
    ("ConvTranspose2d-dil", lambda m: m.ConvTranspose2d(2, 3, (2, 3), stride=(2, 1),
                                                        dilation=2, bias=False),
     [(2, 2, 3, 4)]),
    ("LayerNorm", lambda m: m.LayerNorm((3, 4)), [(2, 5, 3, 4)]),
    ("LayerNorm-nobias", lambda m: m.LayerNorm(4, eps=1e-3, bias=False), [(3, 4)]),
    ("LayerNorm-noaffine", lambda m: m.LayerNorm(5, elementwise_affine=False), [(2, 5)]),
    ("GroupNorm", lambda m: m.GroupNorm(2, 4), [(2, 4, 3, 3)]),
    ("GroupNorm-noaffine-1d", lambda m: m.GroupNorm(3, 6, eps=1e-3, affine=False), [(2, 6, 5)]),
    ("GroupNorm-nobias", lambda m: m.GroupNorm(1, 3, bias=False), [(2, 3, 2, 2)]),
    ("BatchNorm1d", lambda m: m.BatchNorm1d(3), [(4, 3)]),
    ("BatchNorm1d-3d", lambda m: m.BatchNorm1d(3, momentum=0.3), [(4, 3, 5)]),
    ("BatchNorm1d-cma", lambda m: m.BatchNorm1d(3, momentum=None), [(4, 3)]),
    ("BatchNorm2d", lambda m: m.BatchNorm2d(3), [(4, 3, 2, 2)]),
    ("BatchNorm2d-noaffine", lambda m: m.BatchNorm2d(3, affine=False), [(2, 3, 2, 3)]),
    ("BatchNorm2d-nobias", lambda m: m.BatchNorm2d(3, bias=False), [(2, 3, 2, 3)]),
    ("BatchNorm2d-notrack", lambda m: m.BatchNorm2d(3, track_running_stats=False),
     [(2, 3, 2, 3)]),
    ("Identity", lambda m: m.Identity(), [(2, 3)]),
    ("Flatten", lambda m: m.Flatten(), [(2, 3, 4)]),
    ("Flatten-0-1", lambda m: m.Flatten(0, 1), [(2, 3, 4)]),
    ("Unflatten", lambda m: m.Unflatten(1, (2, 3)), [(2, 6, 4)]),
    ("ReLU", lambda m: m.ReLU(), [(3, 4)]),
    ("LeakyReLU", lambda m: m.LeakyReLU(0.2), [(3, 4)]),
    ("SiLU", lambda m: m.SiLU(), [(3, 4)]),
    ("Mish", lambda m: m.Mish(), [(3, 4)]),
    ("GELU", lambda m: m.GELU(), [(3, 4)]),
    ("GELU-tanh", lambda m: m.GELU(approximate="tanh"), [(3, 4)]),
    ("Tanh", lambda m: m.Tanh(), [(3, 4)]),
    ("Sigmoid", lambda m: m.Sigmoid(), [(3, 4)]),
    ("ELU", lambda m: m.ELU(alpha=0.5), [(3, 4)]),
    ("Softplus", lambda m: m.Softplus(beta=2.0, threshold=1.0), [(3, 4)]),
    ("Softmax", lambda m: m.Softmax(dim=1), [(2, 3, 4)]),
    ("LogSoftmax", lambda m: m.LogSoftmax(dim=-1), [(2, 3, 4)]),
    ("Sequential", lambda m: m.Sequential(m.Linear(3, 5), m.SiLU(), m.LayerNorm(5),
                                          m.Linear(5, 2)), [(4, 3)]),
]


@pytest.mark.parametrize("name,build,shapes", LAYERS, ids=[c[0] for c in LAYERS])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_layer_matches_torch(torch, name, build, shapes, train):
    ours, theirs = build(nn), build(torch.nn)
    inputs = [randn(*s, seed=i) for i, s in enumerate(shapes)]
    if theirs.__class__.__name__.startswith("BatchNorm") and not train:
        # Non-trivial running statistics first (one training step in each).
        x = randn(*shapes[0], seed=7)
        theirs.double()
        copy_from_torch(ours, theirs, True, torch)
        ours(autodiff.tensor(x)), theirs(to_torch(x))
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    compare(ours, theirs, inputs, torch, train=train, what=name,
            randomize=not (name.startswith("BatchNorm") and not train))


def test_batchnorm_running_stats_over_steps(torch):
    ours, theirs = nn.BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2).double()
    for step in range(3):
        x = randn(4, 3, 2, 2, seed=step) * (step + 1) + step
        ours(autodiff.tensor(x)), theirs(to_torch(x))
    for name, b in theirs.named_buffers():
        assert_close(getattr(ours, name), b, rtol=RTOL, what=name)
    assert int(ours.num_batches_tracked.item()) == 3


def test_embedding_matches_torch(torch):
    for padding_idx in (None, 2, -1):
        ours = nn.Embedding(10, 3, padding_idx=padding_idx)
        theirs = torch.nn.Embedding(10, 3, padding_idx=padding_idx)
        assert names_and_shapes(ours.state_dict()) == names_and_shapes(theirs.state_dict())
        idx = np.array([[1, 2, 9], [2, 2, 0]])
        compare(ours, theirs, [], torch, call=lambda m: m(
            autodiff.tensor(idx) if isinstance(m, nn.Module) else torch.from_numpy(idx)),
            what=f"Embedding(padding_idx={padding_idx})")


def test_convtranspose_output_size_matches_torch(torch):
    ours, theirs = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), \
        torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = randn(1, 2, 4, 4)
    out_o, _ = compare(ours, theirs, [x], torch, call=lambda m, a: m(a, output_size=(8, 8)),
                       what="ConvTranspose2d(output_size)")
    assert out_o[0].shape == (1, 3, 8, 8)


# --------------------------------------------------------------------------- attention
MHA_CASES = [
    ("basic", dict(), dict()),
    ("batch_first", dict(batch_first=True), dict()),
    ("kdim-vdim", dict(kdim=3, vdim=5), dict()),
    ("no-bias", dict(bias=False), dict()),
    ("per-head-weights", dict(), dict(average_attn_weights=False)),
    ("no-weights", dict(), dict(need_weights=False)),
    ("masks-bool", dict(batch_first=True), dict(key_padding_mask="bool", attn_mask="bool2d")),
    ("masks-float", dict(), dict(key_padding_mask="float", attn_mask="float3d")),
    ("masks-no-weights", dict(batch_first=True),
     dict(key_padding_mask="bool", attn_mask="bool2d", need_weights=False)),
    ("causal", dict(batch_first=True), dict(is_causal=True, attn_mask="causal")),
    ("unbatched", dict(), dict(unbatched=True)),
]


def _mha_masks(kw, n, heads, L, S, torch):
    """The same masks for both libraries: (ours_kwargs, torch_kwargs)."""
    rng = np.random.default_rng(3)
    ours, theirs = {}, {}
    kpm = kw.pop("key_padding_mask", None)
    if kpm is not None:
        m = np.zeros((n, S), dtype=bool)
        m[0, -2:] = True  # padding at the end of the first sequence
        m[1, 0] = True
        if kpm == "float":
            m = np.where(m, -1e9, 0.0) + rng.standard_normal((n, S)) * 0.1
        ours["key_padding_mask"], theirs["key_padding_mask"] = autodiff.tensor(m), \
            torch.from_numpy(m)
    am = kw.pop("attn_mask", None)
    if am is not None:
        if am == "bool2d":
            m = np.zeros((L, S), dtype=bool)
            m[1, 1] = m[2, 0] = True
        elif am == "float3d":
            m = rng.standard_normal((n * heads, L, S))
        else:  # causal: torch needs the mask with the hint; ours builds it itself
            m = np.triu(np.ones((L, S), dtype=bool), 1)
        theirs["attn_mask"] = torch.from_numpy(m)
        if am != "causal":
            ours["attn_mask"] = autodiff.tensor(m)
    for key, value in kw.items():
        ours[key] = theirs[key] = value
    return ours, theirs


@pytest.mark.parametrize("name,ctor,kw", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_multihead_attention_matches_torch(torch, name, ctor, kw):
    E, H, L, S, n = 6, 2, 4, 5, 2
    kw = dict(kw)
    unbatched = kw.pop("unbatched", False)
    ours = nn.MultiheadAttention(E, H, **ctor)
    theirs = torch.nn.MultiheadAttention(E, H, **ctor)
    kdim, vdim = ctor.get("kdim", E), ctor.get("vdim", E)

    def shape(T, d):
        if unbatched:
            return (T, d)
        return (n, T, d) if ctor.get("batch_first") else (T, n, d)

    q, k, v = randn(*shape(L, E), seed=0), randn(*shape(S, kdim), seed=1), \
        randn(*shape(S, vdim), seed=2)
    ours_kw, theirs_kw = _mha_masks(kw, n, H, L, S, torch)

    def call(m, *xs):
        return m(*xs, **(ours_kw if isinstance(m, nn.Module) else theirs_kw))

    compare(ours, theirs, [q, k, v], torch, call=call, what=f"MultiheadAttention {name}")


def test_self_attention_shared_input(torch):
    ours, theirs = nn.MultiheadAttention(4, 2, batch_first=True), \
        torch.nn.MultiheadAttention(4, 2, batch_first=True)
    x = randn(2, 3, 4)
    compare(ours, theirs, [x], torch, call=lambda m, a: m(a, a, a), what="self-attention")


# --------------------------------------------------------------------------- init
INIT_CASES = [
    ("Linear", lambda m: m.Linear(64, 128)),
    ("Conv1d", lambda m: m.Conv1d(8, 64, 5)),
    ("Conv2d", lambda m: m.Conv2d(8, 32, 3, groups=2)),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(8, 32, 3, groups=4)),
    ("Embedding", lambda m: m.Embedding(100, 20)),
    ("MultiheadAttention", lambda m: m.MultiheadAttention(32, 4)),
    ("MultiheadAttention-kdim", lambda m: m.MultiheadAttention(32, 4, kdim=16, vdim=8)),
]


@pytest.mark.parametrize("name,build", INIT_CASES, ids=[c[0] for c in INIT_CASES])
def test_default_init_distribution_matches_torch(torch, name, build):
    """Each parameter's values come from the same distribution as PyTorch's (two-sample
    Kolmogorov-Smirnov; fixed seeds, so deterministic) with the same support."""
    from scipy.stats import ks_2samp
    torch.manual_seed(0)
    ours, theirs = build(nn), build(torch.nn)
    theirs_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        a, b = p.numpy().ravel(), theirs_params[pname].detach().numpy().ravel()
        if np.all(b == 0):
            assert np.all(a == 0), f"{name}.{pname} should be zeros"
            continue
        assert ks_2samp(a, b).pvalue > 1e-4, f"{name}.{pname}: distributions differ"
        if not name.startswith("Embedding") and a.size >= 1000:
            # Uniform inits, same support: with >= 1000 draws each sample's max |value| is
            # within 1% of the bound (P(not) = 0.99^1000 < 1e-4).
            bound = np.abs(b).max()
            assert bound * 0.98 <= np.abs(a).max() <= bound * 1.02, f"{name}.{pname}"


# --------------------------------------------------------------------------- WGAN-GP
def _critic(m, norm):
    layers = [m.Conv2d(1, 4, 3, stride=2, padding=1), m.LeakyReLU(0.2)]
    layers.append(m.GroupNorm(2, 4) if norm == "group" else m.LayerNorm([4, 4, 4]))
    layers += [m.Flatten(), m.Linear(4 * 4 * 4, 1)]
    return m.Sequential(*layers)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_wgan_gp_penalty_gradient_matches_torch(torch, norm):
    """d/dtheta of (||grad_x D(x)|| - 1)^2 (Gulrajani et al. 2017, eq. 3), create_graph=True."""
    ours, theirs = _critic(nn, norm), _critic(torch.nn, norm).double()
    copy_from_torch(ours, theirs, True, torch)
    x = randn(3, 1, 8, 8)
    xo, xt = autodiff.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
    (go,) = autodiff.grad(ours(xo).sum(), [xo], create_graph=True)
    (gt,) = torch.autograd.grad(theirs(xt).sum(), [xt], create_graph=True)
    assert_close(go, gt, rtol=RTOL, what="grad_x D")
    gp_o = ((go.reshape(3, -1).norm(dim=1) - 1.0) ** 2).mean()
    gp_t = ((gt.reshape(3, -1).norm(dim=1) - 1.0) ** 2).mean()
    assert_close(gp_o, gp_t, rtol=RTOL, what="penalty")
    gp_o.backward()
    gp_t.backward()
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if tp[name].grad is None:  # the last bias does not enter grad_x D
            assert p.grad is None or not np.any(p.grad.numpy()), name
            continue
        assert_close(p.grad, tp[name].grad, rtol=RTOL, what=f"d penalty / d {name}")


def test_dropout_matches_torch_where_deterministic(torch):
    """Masks are random (different streams); eval and p=0 are exactly the identity in both."""
    x = randn(3, 4)
    compare(nn.Dropout(0.5), torch.nn.Dropout(0.5), [x], torch, train=False, what="Dropout eval")
    compare(nn.Dropout(0.0), torch.nn.Dropout(0.0), [x], torch, train=True, what="Dropout p=0")
    assert repr(nn.Dropout(0.3)) == repr(torch.nn.Dropout(0.3))


def _nested(m):
    return m.Sequential(
        m.ModuleDict({"enc": m.ModuleList([m.Linear(2, 3), m.BatchNorm1d(3), m.ReLU()]),
                      "attn": m.MultiheadAttention(4, 2, kdim=3, vdim=5, bias=False)}),
        m.Conv2d(1, 2, 3), m.ConvTranspose2d(2, 1, 2, bias=False), m.Embedding(4, 2),
        m.LayerNorm([2, 3], bias=False), m.GroupNorm(1, 2, affine=False),
        m.BatchNorm2d(2, track_running_stats=False))


def test_nested_state_dict_keys_and_load_from_torch(torch):
    ours, theirs = _nested(nn), _nested(torch.nn)
    assert names_and_shapes(ours.state_dict()) == names_and_shapes(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert nn.num_parameters(ours) == sum(p.numel() for p in theirs.parameters())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for k, v in theirs.state_dict().items():
        assert_close(ours.state_dict()[k], v, rtol=0, atol=0, what=k)
    # and the other way: our state_dict, as arrays, loads into torch
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})


@pytest.mark.parametrize("build", [
    lambda m: m.Linear(3, 4, bias=False), lambda m: m.Conv2d(1, 2, 3, stride=2, padding=1),
    lambda m: m.Conv1d(2, 2, 3, dilation=2, groups=2), lambda m: m.LayerNorm(4),
    lambda m: m.GroupNorm(2, 4), lambda m: m.BatchNorm1d(3, momentum=None),
    lambda m: m.GroupNorm(2, 4, bias=False), lambda m: m.BatchNorm2d(3, affine=False),
    lambda m: m.LayerNorm(3, elementwise_affine=False),
    lambda m: m.Embedding(5, 2, padding_idx=0), lambda m: m.LeakyReLU(0.2),
    lambda m: m.GELU(approximate="tanh"), lambda m: m.Softmax(dim=1), lambda m: m.Flatten(),
    lambda m: m.Sequential(m.Linear(1, 2), m.ReLU()),
    lambda m: m.Conv2d(2, 4, (3, 2), padding="same", dilation=2, padding_mode="reflect"),
    lambda m: m.Conv1d(2, 4, 3, padding="valid", bias=False),
    lambda m: m.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, groups=2),
    lambda m: m.MultiheadAttention(4, 2, kdim=3), lambda m: m.Dropout(0.2),
    lambda m: m.ELU(alpha=0.5), lambda m: m.Softplus(beta=2.0), lambda m: m.Identity(),
    lambda m: m.ModuleDict({"a": m.ModuleList([m.Tanh(), m.SiLU()])}),
])
def test_repr_matches_torch(torch, build):
    assert repr(build(nn)) == repr(build(torch.nn))
