"""``TrainContext.optimize``: one update of one player, with named errors."""
import numpy as np  # host-side: comparing parameter arrays in tests
import pytest

import autodiff
from autodiff import nn, optim
from refgen.train import TrainConfig, TrainContext


def _ctx(grad_clip=None):
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    groups = {"a": list(a.parameters()), "b": list(b.parameters())}
    opts = {k: optim.SGD(v, lr=0.1) for k, v in groups.items()}
    ctx = TrainContext(TrainConfig(grad_clip=grad_clip), groups, opts, autodiff.Generator(0))
    ctx.begin_step(0)
    return ctx, a, b


def test_optimize_updates_only_the_player_and_clears_gradients():
    ctx, a, b = _ctx()
    x = autodiff.randn(4, 3)
    wa, wb = a.weight.numpy().copy(), b.weight.numpy().copy()
    loss = (a(x) * b(x)).mean()
    (ga,) = autodiff.grad(loss, [a.weight])
    value = ctx.optimize("a", loss)
    assert value == pytest.approx(loss.item())
    np.testing.assert_allclose(a.weight.numpy(), wa - 0.1 * ga.numpy(), rtol=1e-14)
    assert np.array_equal(b.weight.numpy(), wb)
    assert all(p.grad is None for p in list(a.parameters()) + list(b.parameters()))
    assert ctx.updates == {"a": 1, "b": 0}


def test_optimize_records_the_largest_norm_when_clipping():
    ctx, a, b = _ctx(grad_clip=1e-3)
    x = autodiff.randn(4, 3)
    norms = []
    for scale in (1.0, 3.0):
        loss = scale * a(x).sum()
        norms.append(autodiff.optim.get_total_norm(
            autodiff.grad(loss, list(a.parameters()))).item())
        ctx.optimize("a", loss)
    assert ctx.grad_norms == {"a": pytest.approx(max(norms), rel=1e-12)}


def test_optimize_errors_are_named():
    ctx, a, b = _ctx()
    x = autodiff.randn(4, 3)
    with pytest.raises(ValueError, match="unknown player 'critic'; this run's players .*: a, b"):
        ctx.optimize("critic", a(x).sum())
    with pytest.raises(ValueError, match=r"0-d Tensor, got a Tensor of shape \(4, 1\)"):
        ctx.optimize("a", a(x))
    with pytest.raises(ValueError, match="0-d Tensor, got a float"):
        ctx.optimize("a", 1.0)
    with pytest.raises(ValueError, match="does not require grad"):
        with autodiff.no_grad():
            loss = a(x).sum()
        ctx.optimize("a", loss)
    with pytest.raises(ValueError, match="does not depend on any parameter of player 'b'"):
        ctx.optimize("b", a(x).sum())
    assert all(p.grad is None for p in a.parameters())
    ctx.evaluating = True
    with pytest.raises(RuntimeError, match="inside evaluate"):
        ctx.optimize("a", a(x).sum())
