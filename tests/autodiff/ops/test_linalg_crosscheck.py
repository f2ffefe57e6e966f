"""Cross-check against PyTorch: matmul (every 1-D and batch-broadcast case), einsum and
torch.linalg give the same values, gradients and Hessian-vector products in float64.

Tolerance 1e-10 relative (crosscheck_utils): the same formulas on the same float64
inputs, differing only by rounding and LAPACK/BLAS summation order, on matrices with
condition numbers below ~10.
"""
import numpy as np  # host-side test data
import pytest

import autodiff
from autodiff import linalg
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck

RNG = np.random.default_rng(99)


def well_conditioned(*shape):
    n = shape[-1]
    return n * np.eye(n) + 0.5 * RNG.standard_normal(shape)


def spd(*shape):
    n = shape[-1]
    m = RNG.standard_normal(shape)
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


def compare(ours_fn, torch_fn, arrays, second_order=True):
    """Values, gradients along a random cotangent and, optionally, Hessian-vector
    products (the gradient of <gradient, w>) of ours_fn and torch_fn, which map
    tensors to one tensor or a tuple of tensors (only floating outputs are compared)."""
    torch = torch_or_skip()
    xs = [autodiff.tensor(a, requires_grad=True) for a in arrays]
    ts = [to_torch(a, requires_grad=True) for a in arrays]
    outs, touts = ours_fn(*xs), torch_fn(*ts)
    outs = outs if isinstance(outs, tuple) else (outs,)
    touts = touts if isinstance(touts, tuple) else (touts,)
    total, ttotal = 0.0, 0.0
    for i, (o, t) in enumerate(zip(outs, touts)):
        assert_close(o, t, what=f"output {i}")
        if o.requires_grad:
            v = RNG.standard_normal(o.shape)
            total = total + (o * autodiff.tensor(v)).sum()
            ttotal = ttotal + (t * to_torch(v)).sum()
    grads = autodiff.grad(total, xs, create_graph=second_order)
    tgrads = torch.autograd.grad(ttotal, ts, create_graph=second_order)
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        assert_close(g, tg, what=f"gradient of input {i}")
    if not second_order:
        return
    ws = [RNG.standard_normal(a.shape) for a in arrays]
    s = sum((g * autodiff.tensor(w)).sum() for g, w in zip(grads, ws))
    ts_ = sum((tg * to_torch(w)).sum() for tg, w in zip(tgrads, ws))
    if not s.requires_grad:  # linear in the inputs: the gradient is constant, as in torch
        assert not ts_.requires_grad
        return
    hv = autodiff.grad(s, xs)
    thv = torch.autograd.grad(ts_, ts)
    for i, (h, th) in enumerate(zip(hv, thv)):
        assert_close(h, th, what=f"Hessian-vector product, input {i}")


MATMUL_SHAPES = [
    ((3,), (3,)), ((3, 4), (4,)), ((4,), (4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 5)), ((5, 3, 4), (4, 2)),
    ((3, 4), (2, 4, 2)), ((1, 1), (1, 1)), ((2, 1, 1, 3), (1, 4, 3, 2)),
]


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES, ids=str)
def test_matmul_matches_torch(a_shape, b_shape):
    torch = torch_or_skip()
    a, b = RNG.standard_normal(a_shape), RNG.standard_normal(b_shape)
    compare(lambda x, y: x @ y, torch.matmul, [a, b])


EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("ij,kj->ik", [(3, 4), (2, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(4,), (4,)]),
    ("ij->i", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...i,...i", [(2, 3), (3,)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("ba,ac", [(3, 4), (4, 2)]),
    ("Zb,ba", [(3, 4), (4, 2)]),  # implicit output sorts by ASCII: "Za"
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij,j->i", [(3, 3, 2), (2,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("b...,b...->b", [(3, 2, 2), (3, 2, 2)]),
    ("...", [(2, 3)]),
    ("ij,j->ij", [(3, 1), (4,)]),   # a size-1 dim broadcasts against 4
    ("ij,jk->ik", [(0, 3), (3, 2)]),  # an empty dim
]


@pytest.mark.parametrize("equation,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_matches_torch(equation, shapes):
    torch = torch_or_skip()
    arrays = [RNG.standard_normal(s) for s in shapes]
    compare(lambda *xs: autodiff.einsum(equation, *xs),
            lambda *ts: torch.einsum(equation, *ts), arrays)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 1, 2, 2)])
def test_det_slogdet_inv_match_torch(shape):
    torch = torch_or_skip()
    A = well_conditioned(*shape)
    A[..., 0, :] *= -1.0  # a negative determinant somewhere
    compare(linalg.det, torch.linalg.det, [A])
    compare(linalg.slogdet, lambda t: tuple(torch.linalg.slogdet(t)), [A])
    compare(linalg.inv, torch.linalg.inv, [A])


@pytest.mark.parametrize("a_shape,b_shape,left", [
    ((3, 3), (3,), True), ((3, 3), (3, 2), True), ((2, 3, 3), (2, 3), True),
    ((2, 3, 3), (3,), True), ((2, 3, 3), (4, 1, 3, 2), True), ((3, 3), (4, 3, 2), True),
    ((2, 3, 3), (2, 4, 3), False), ((3, 3), (3, 3), False),
])
def test_solve_matches_torch(a_shape, b_shape, left):
    torch = torch_or_skip()
    compare(lambda a, b: linalg.solve(a, b, left=left),
            lambda a, b: torch.linalg.solve(a, b, left=left),
            [well_conditioned(*a_shape), RNG.standard_normal(b_shape)])


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unitriangular", [False, True])
@pytest.mark.parametrize("a_shape,b_shape", [((3, 3), (3, 3)), ((2, 3, 3), (3, 2)),
                                             ((3, 3), (2, 3, 3)), ((2, 1, 3, 3), (4, 3, 3))])
def test_solve_triangular_matches_torch(upper, left, unitriangular, a_shape, b_shape):
    torch = torch_or_skip()
    if not left:
        b_shape = b_shape[:-2] + b_shape[:-3:-1]
    # A full matrix: both libraries must read only the triangle.
    kw = dict(upper=upper, left=left, unitriangular=unitriangular)
    compare(lambda a, b: linalg.solve_triangular(a, b, **kw),
            lambda a, b: torch.linalg.solve_triangular(a, b, **kw),
            [well_conditioned(*a_shape), RNG.standard_normal(b_shape)])


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 4, 4)])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_matches_torch(shape, upper):
    torch = torch_or_skip()
    # Both sides symmetrise first, so the function of M is the same on both sides.
    compare(lambda m: linalg.cholesky((m + m.mT) * 0.5, upper=upper),
            lambda m: torch.linalg.cholesky((m + m.mT) * 0.5, upper=upper), [spd(*shape)])


def test_cholesky_unsymmetrised_gradient_matches_torch():
    # Without symmetrising, torch's gradient is the symmetric one (Murray 2016 sym.); ours too.
    torch = torch_or_skip()
    compare(linalg.cholesky, torch.linalg.cholesky, [spd(2, 3, 3)])


def test_logdet_and_norms_match_torch():
    torch = torch_or_skip()
    compare(autodiff.logdet, torch.logdet, [spd(2, 3, 3)])
    compare(lambda x: linalg.vector_norm(x, dim=-1), lambda t: torch.linalg.vector_norm(t, dim=-1),
            [RNG.standard_normal((3, 4))])
    compare(linalg.matrix_norm, torch.linalg.matrix_norm, [RNG.standard_normal((2, 3, 4))])
