"""Shared helpers of the backbone cross-checks: copy torch weights into ours, run both with
the same input and output cotangent, compare outputs, input gradients and parameter gradients.
Tolerance: float64, same formulas; rounding and summation order only (1e-10 relative)."""
import numpy as np  # host-side: test data and comparisons

import autodiff
from tests.crosscheck_utils import to_torch, assert_close

RTOL = 1e-10


def randomize_(torch, module, seed=1, scale=0.5):
    """Non-default parameter values (so zero / identity inits hide nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale + 0.1)
    return module


def load_from_torch(ours, theirs):
    """Same keys in the same order, then load the arrays."""
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd), (list(ours.state_dict()), list(sd))
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})


def compare(torch, ours, theirs, *inputs, seed=0, what=""):
    """Forward both on the same inputs (numpy arrays), backward a random cotangent, compare."""
    xs = [autodiff.tensor(a, requires_grad=True) for a in inputs]
    ts = [to_torch(a, requires_grad=True) for a in inputs]
    y, ty = ours(*xs), theirs(*ts)
    assert_close(y, ty, rtol=RTOL, what=f"{what} output")
    cot = np.random.default_rng(seed).standard_normal(ty.shape)
    (y * autodiff.tensor(cot)).sum().backward()
    (ty * torch.from_numpy(cot)).sum().backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        assert_close(x.grad, t.grad, rtol=RTOL, what=f"{what} input {i} grad")
    ours_p = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert p.grad is not None, name
        assert_close(ours_p[name].grad, p.grad, rtol=RTOL, atol=1e-11, what=f"{what} grad {name}")
    return y
