"""MLP against a PyTorch module written here with the same structure and parameter names:
outputs, input gradients and parameter gradients equal in float64 (rtol 1e-10)."""
import numpy as np  # host-side: test data
import pytest

from refgen.backbones.mlp import MLP
from tests.crosscheck_utils import torch_or_skip
from tests.refgen.backbones._torch_compare import randomize_, load_from_torch, compare

pytestmark = pytest.mark.crosscheck


def torch_mlp(torch, d_in, d_out, widths, act, residual, cond, layer_norm):
    nn = torch.nn
    acts = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh,
            "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "softplus": nn.Softplus}

    class TorchMLP(nn.Module):
        def __init__(self):
            super().__init__()
            fan = d_in + cond
            self.layers = nn.ModuleList()
            for w in widths:
                self.layers.append(nn.Linear(fan, w))
                fan = w
            self.norms = nn.ModuleList([nn.LayerNorm(w) for w in widths]) if layer_norm else None
            self.act = acts[act]()
            self.out = nn.Linear(fan, d_out)

        def forward(self, x, c=None):
            h = x if c is None else torch.cat([x, c], dim=-1)
            for i, layer in enumerate(self.layers):
                a = layer(h)
                if self.norms is not None:
                    a = self.norms[i](a)
                a = self.act(a)
                h = h + a if residual and i > 0 and widths[i] == widths[i - 1] else a
            return self.out(h)

    return TorchMLP()


@pytest.mark.parametrize("act", ["relu", "silu", "gelu", "tanh", "leaky_relu", "elu",
                                 "softplus"])
@pytest.mark.parametrize("residual,cond,layer_norm", [(False, 0, False), (True, 2, True)])
def test_mlp_matches_torch(act, residual, cond, layer_norm):
    torch = torch_or_skip()
    widths = (6, 6, 5)
    theirs = randomize_(torch, torch_mlp(torch, 3, 2, widths, act, residual, cond, layer_norm))
    ours = MLP(3, 2, hidden=widths, depth=None, activation=act, residual=residual,
               cond_features=cond, layer_norm=layer_norm)
    load_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((4, 3))] + ([rng.standard_normal((4, cond))] if cond else [])
    compare(torch, ours, theirs, *inputs, what=f"MLP({act})")
