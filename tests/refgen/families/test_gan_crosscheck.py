"""WGAN-GP's gradient penalty against PyTorch's double backward (float64, rtol 1e-10: the same
formulas on the same numbers differ only by rounding and summation order).

The critic is refgen's 2-D discriminator (MLP with leaky ReLU 0.2) and the same network
written in PyTorch with the same weights; the penalty (Gulrajani et al. 2017, Algorithm 1)
E (||grad_xhat D(xhat)||_2 - 1)^2 at xhat = u x + (1 - u) x_fake (packed inputs of PacGAN
for pack > 1: the norm is over the critic's whole input) is computed by each engine
with create_graph gradients, and its gradient with respect to every critic parameter is
compared. Breakage tried: ``create_graph=False`` in refgen (refgen then returns no
gradient for the weights; the test fails)."""
import numpy as np  # host-side: test data
import pytest

import autodiff
from refgen.families import gan
from refgen.families.gan.model import Discriminator
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck


@pytest.mark.parametrize("depth, pack", [(2, 1), (3, 2)])
def test_gradient_penalty_matches_torch_double_backward(depth, pack):
    torch = torch_or_skip()
    nn = torch.nn
    hidden = 6
    ours = Discriminator((2,), hidden=hidden, depth=depth, base_width=1, pack=pack)
    # refgen: features = [MLP(layers..., out), LeakyReLU], head; the same stack in torch
    linears = [m for m in ours.modules() if isinstance(m, autodiff.nn.Linear)]
    layers = []
    for lin in linears:
        t = nn.Linear(lin.in_features, lin.out_features)
        with torch.no_grad():
            t.weight.copy_(to_torch(lin.weight))
            t.bias.copy_(to_torch(lin.bias))
        layers += [t, nn.LeakyReLU(0.2)]
    theirs = nn.Sequential(*layers[:-1])

    rng = np.random.default_rng(3)
    n = 8
    x = rng.standard_normal((n, 2))
    xf = rng.standard_normal((n, 2)) * 0.5 + 1.0
    u = rng.random(n // pack)                # one u per packed input, as training draws it
    packed = [gan.pack(autodiff.tensor(v), pack) for v in (x, xf)]
    gp = gan.gradient_penalty(ours, packed[0], packed[1], autodiff.tensor(u))
    params = [p for lin in linears for p in (lin.weight, lin.bias)]
    grads = autodiff.grad(gp, params)

    tu = torch.from_numpy(u).reshape(-1, 1)
    tx, txf = (torch.from_numpy(v).reshape(n // pack, 2 * pack) for v in (x, xf))
    x_hat = (tu * tx + (1 - tu) * txf).requires_grad_(True)
    scores = theirs(x_hat).reshape(-1)
    (g,) = torch.autograd.grad(scores.sum(), [x_hat], create_graph=True)
    t_gp = ((g.norm(dim=1) - 1) ** 2).mean()
    t_params = [p for m in theirs if isinstance(m, nn.Linear) for p in (m.weight, m.bias)]
    t_grads = torch.autograd.grad(t_gp, t_params, allow_unused=True)

    assert_close(gp, t_gp, what="penalty")
    for i, (a, b) in enumerate(zip(grads, t_grads)):
        if b is None or not bool(b.abs().max() > 0):
            assert a is None or np.abs(a.numpy()).max() == 0, f"param {i}"
        else:
            assert a is not None, f"param {i}: torch has a gradient, refgen none"
            assert_close(a, b, what=f"d penalty / d param {i}")
