"""Conditioning modules against PyTorch references written here: same weights (through
convert_state_dict), same outputs, parameter gradients and input gradients in float64
(rtol 1e-10)."""
import numpy as np  # host-side: random inputs and comparisons in tests
import pytest

import autodiff
from refgen.backbones.convert import convert_state_dict
from refgen.conditioning import AdaIN, ClassEmbedding, CrossAttention, FiLM, adain
from tests.crosscheck_utils import torch_or_skip, to_torch, assert_close

pytestmark = pytest.mark.crosscheck


def _run_both(ours, theirs, inputs, kwargs_ours=None, kwargs_theirs=None):
    """Load theirs' weights into ours, run both on ``inputs`` (NumPy arrays, all
    differentiated), backpropagate sum(out * R), compare outputs and every gradient."""
    torch = torch_or_skip()
    ours.load_state_dict(convert_state_dict(theirs.state_dict(), ours))
    xs = [autodiff.tensor(a, requires_grad=True) for a in inputs]
    ts = [to_torch(a, requires_grad=True) for a in inputs]
    out = ours(*xs, **(kwargs_ours or {}))
    t_out = theirs(*ts, **(kwargs_theirs or {}))
    r = np.random.default_rng(9).standard_normal(tuple(out.shape))
    (out * autodiff.tensor(r)).sum().backward()
    (t_out * torch.from_numpy(r)).sum().backward()
    name = type(ours).__name__
    assert_close(out, t_out, what=f"{name} output")
    for i, (x, t) in enumerate(zip(xs, ts)):
        assert_close(x.grad, t.grad, what=f"{name} input {i} gradient")
    theirs_named = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        assert_close(p.grad, theirs_named[pname].grad, what=f"{name} grad of {pname}")


@pytest.mark.parametrize("one_plus,shape", [(False, (2, 3)), (True, (2, 3, 4, 5))])
def test_film_matches_torch(one_plus, shape):
    torch = torch_or_skip()

    class TorchFiLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(6, 6)

        def forward(self, x, c):
            gamma, beta = self.linear(c).chunk(2, dim=1)
            view = (x.shape[0], 3) + (1,) * (x.ndim - 2)
            return (gamma.view(view) + (1.0 if one_plus else 0.0)) * x + beta.view(view)

    rng = np.random.default_rng(0)
    _run_both(FiLM(3, 6, one_plus=one_plus), TorchFiLM(),
              [rng.standard_normal(shape), rng.standard_normal((2, 6))])


def test_adain_module_matches_torch_instance_norm():
    torch = torch_or_skip()

    class TorchAdaIN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(5, 6)

        def forward(self, x, s):
            gamma, beta = self.linear(s).chunk(2, dim=1)
            n = torch.nn.functional.instance_norm(x, eps=1e-5)
            return gamma[:, :, None, None] * n + beta[:, :, None, None]

    rng = np.random.default_rng(1)
    _run_both(AdaIN(3, 5), TorchAdaIN(),
              [rng.standard_normal((2, 3, 4, 4)) * 2 + 1, rng.standard_normal((2, 5))])


def test_adain_function_matches_torch():
    torch = torch_or_skip()

    class TorchAdaINFn(torch.nn.Module):
        def forward(self, x, y):
            mx, vx = x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)
            my, vy = y.mean((2, 3), keepdim=True), y.var((2, 3), unbiased=False, keepdim=True)
            return torch.sqrt(vy + 1e-5) * (x - mx) / torch.sqrt(vx + 1e-5) + my

    class OursFn(autodiff.nn.Module):
        def forward(self, x, y):
            return adain(x, y)

    rng = np.random.default_rng(2)
    _run_both(OursFn(), TorchAdaINFn(),
              [rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 3, 6)) + 2])


@pytest.mark.parametrize("query_dim,context_dim,heads,fmap", [(4, 4, 2, False), (4, 6, 2, False),
                                                              (3, 5, 1, True)])
def test_cross_attention_matches_torch(query_dim, context_dim, heads, fmap):
    torch = torch_or_skip()

    class TorchCrossAttention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.LayerNorm(query_dim)
            self.attn = torch.nn.MultiheadAttention(query_dim, heads, kdim=context_dim,
                                                    vdim=context_dim, batch_first=True)

        def forward(self, x, ctx, mask=None):
            shape = x.shape
            tokens = x.flatten(2).transpose(1, 2) if x.ndim == 4 else x
            a, _ = self.attn(self.norm(tokens), ctx, ctx, key_padding_mask=mask,
                             need_weights=False)
            y = tokens + a
            return y.transpose(1, 2).reshape(shape) if x.ndim == 4 else y

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, query_dim, 3, 4) if fmap else (2, 5, query_dim))
    ctx = rng.standard_normal((2, 4, context_dim))
    mask = np.array([[False, False, False, True], [False] * 4])
    ours = CrossAttention(query_dim, context_dim, heads)
    theirs = TorchCrossAttention()
    # torch's MultiheadAttention starts with zero in_proj biases: randomise them so they count
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    _run_both(ours, theirs, [x, ctx], {"context_padding_mask": mask},
              {"mask": torch.from_numpy(mask)})


def test_class_embedding_loads_torch_weights():
    torch = torch_or_skip()

    class TorchClassEmbedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(11, 4)

        def forward(self, y):
            return self.embedding(y)

    ours, theirs = ClassEmbedding(10, 4), TorchClassEmbedding()
    ours.load_state_dict(convert_state_dict(theirs.state_dict(), ours))
    y = np.array([0, 3, 10, 9])
    out, t_out = ours(y), theirs(torch.from_numpy(y))
    (out * 2.0).sum().backward()
    (t_out * 2.0).sum().backward()
    assert_close(out, t_out, what="ClassEmbedding output")
    assert_close(ours.embedding.weight.grad, theirs.embedding.weight.grad, what="grad")
