"""matmul, einsum and autodiff.linalg: gradients (first and second order) against central
differences, algebraic identities, and the errors for bad input.

Matrices are drawn well-conditioned (n I + a standard normal matrix scaled by 0.5, SPD as
M M^T + n I), so finite differences and the identities hold to float64 rounding times a
small condition number. Identity tolerances: 1e-10 absolute on O(1) entries, which is
~1e6 float64 ulps, ample for n <= 5 with condition numbers below ~10.
"""
import numpy as np  # host-side test data and reference values
import pytest
from hypothesis import given, settings, strategies as st

import autodiff
from autodiff import linalg
from autodiff.checks import gradcheck
from autodiff.ops.linalg import LinAlgError, matmul

RNG = np.random.default_rng(1234)


def leaf(a):
    return autodiff.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def well_conditioned(*shape, rng=RNG):
    n = shape[-1]
    return n * np.eye(n) + 0.5 * rng.standard_normal(shape)


def spd(*shape, rng=RNG):
    n = shape[-1]
    m = rng.standard_normal(shape)
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


def triangular(*shape, upper=False, rng=RNG):
    a = well_conditioned(*shape, rng=rng)
    return np.triu(a) if upper else np.tril(a)


def sym(M):
    return (M + M.mT) * 0.5


# --------------------------------------------------------------------------- matmul
batch_dims = st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=2)


@settings(max_examples=15)
@given(ba=batch_dims, bb=batch_dims, m=st.integers(1, 3), k=st.integers(1, 3),
       n=st.integers(1, 3), vec_a=st.booleans(), vec_b=st.booleans(), data=st.data())
def test_matmul_gradients_broadcast_and_vectors(ba, bb, m, k, n, vec_a, vec_b, data):
    # Make the two batch shapes broadcastable: where both have a dim, one of them may be 1.
    r = min(len(ba), len(bb))
    for i in range(1, r + 1):
        if ba[-i] != bb[-i] and 1 not in (ba[-i], bb[-i]):
            bb[-i] = data.draw(st.sampled_from([1, ba[-i]]))
    a_shape = (k,) if vec_a else tuple(ba) + (m, k)
    b_shape = (k,) if vec_b else tuple(bb) + (k, n)
    a, b = leaf(RNG.standard_normal(a_shape)), leaf(RNG.standard_normal(b_shape))
    expected = np.matmul(a.numpy(), b.numpy())
    out = matmul(a, b)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    gradcheck(matmul, [a, b])


@pytest.mark.parametrize("n, d_in, d_out, bias", [(4, 3, 2, True), (1, 5, 3, False),
                                                   (3, 1, 4, True)])
def test_linear_primitive_gradients_and_composite(n, d_in, d_out, bias):
    # The fused Linear node: first and second derivatives against central differences in x,
    # W and b, and its value equal to the composite x W^T + b.
    from autodiff.ops.linalg import Linear, linear
    x, w = leaf(RNG.standard_normal((n, d_in))), leaf(RNG.standard_normal((d_out, d_in)))
    args = [x, w] + ([leaf(RNG.standard_normal(d_out))] if bias else [])
    out = linear(*args)
    assert type(out.grad_fn) is Linear
    expected = x.numpy() @ w.numpy().T + (args[2].numpy() if bias else 0.0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-14, atol=1e-14)
    gradcheck(lambda *a: linear(*a) ** 2, args)   # squared: the second order is not zero


def test_matmul_with_array_operand():
    a = leaf(RNG.standard_normal((2, 3)))
    m = RNG.standard_normal((3, 2))
    np.testing.assert_allclose((a @ m).numpy(), a.numpy() @ m, rtol=1e-14)
    np.testing.assert_allclose((m @ a).numpy(), m @ a.numpy(), rtol=1e-14)
    (g,) = autodiff.grad((m @ a).sum(), [a])
    np.testing.assert_allclose(g.numpy(), m.T @ np.ones((3, 3)), rtol=1e-14)


def test_matmul_shape_error_names_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(3, 4\).*\(5, 2\)"):
        matmul(leaf(np.ones((3, 4))), leaf(np.ones((5, 2))))
    with pytest.raises(ValueError, match="matmul.*batch"):
        matmul(leaf(np.ones((2, 3, 4))), leaf(np.ones((3, 4, 2))))


# --------------------------------------------------------------------------- einsum
EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),             # matmul
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),    # batched matmul
    ("ij,kj->ik", [(3, 4), (2, 4)]),             # contraction with a transpose
    ("i,j->ij", [(3,), (4,)]),                   # outer product
    ("i,i->", [(4,), (4,)]),                     # dot product
    ("ij->i", [(3, 4)]),                         # a sum: the gradient broadcasts along j
    ("ij->ji", [(3, 4)]),                        # a permutation
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),  # ellipsis with broadcasting
    ("...i,...i", [(2, 3), (3,)]),               # implicit output: '...'
    ("ij,jk", [(3, 4), (4, 2)]),                 # implicit output: 'ik'
    ("ba,ac", [(3, 4), (4, 2)]),                 # implicit output is alphabetical: 'bc'
    ("ii->i", [(3, 3)]),                         # a diagonal
    ("ii", [(3, 3)]),                            # a trace
    ("iij,j->i", [(3, 3, 2), (2,)]),             # diagonal inside a contraction
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),  # attention scores
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),  # a chain of three
    ("ij,j->ij", [(3, 1), (4,)]),                # size-1 dim broadcast against 4
]


@pytest.mark.parametrize("equation,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_value_and_gradients(equation, shapes):
    ops = [leaf(RNG.standard_normal(s)) for s in shapes]
    out = autodiff.einsum(equation, *ops)
    expected = np.einsum(equation, *[o.numpy() for o in ops])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    gradcheck(lambda *xs: autodiff.einsum(equation, *xs), ops)


def test_einsum_list_operands_and_same_tensor_twice():
    x = leaf(RNG.standard_normal((3, 4)))
    out = autodiff.einsum("ij,ij->", [x, x])          # sum of squares: gradient 2x
    (g,) = autodiff.grad(out, [x])
    np.testing.assert_allclose(g.numpy(), 2 * x.numpy(), rtol=1e-14)


@settings(max_examples=15)
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), m=st.integers(1, 3),
       k=st.integers(1, 3), n=st.integers(1, 3))
def test_einsum_ellipsis_matches_matmul(batch, m, k, n):
    a = leaf(RNG.standard_normal(tuple(batch) + (m, k)))
    b = leaf(RNG.standard_normal((k, n)))
    ours = autodiff.einsum("...ij,jk->...ik", a, b)
    np.testing.assert_allclose(ours.numpy(), (a @ b).numpy(), rtol=1e-12, atol=1e-14)
    ga, gb = autodiff.grad(ours.sum(), [a, b])
    ha, hb = autodiff.grad((a @ b).sum(), [a, b])
    np.testing.assert_allclose(ga.numpy(), ha.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb.numpy(), hb.numpy(), rtol=1e-12)


@pytest.mark.parametrize("equation,shapes,match", [
    ("ij,jk->ik", [(3, 4)], "names 2 operands but 1"),
    ("ij->ik", [(3, 4)], "output subscript 'k'"),
    ("ij->ii", [(3, 4)], "appears more than once"),
    ("ijk->i", [(3, 4)], r"operand 0 has shape \(3, 4\)"),
    ("ij,jk->ik", [(3, 4), (5, 2)], "sizes must match or be 1"),
    ("i1->i", [(3, 4)], "invalid subscript '1'"),
    ("ii->i", [(3, 4)], "repeated"),
    ("...i...->i", [(3, 4)], "more than one ellipsis"),
])
def test_einsum_errors(equation, shapes, match):
    ops = [leaf(np.ones(s)) for s in shapes]
    with pytest.raises(ValueError, match=match):
        autodiff.einsum(equation, *ops)


# --------------------------------------------------------------------------- det, slogdet, inv
@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 3, 3), (2, 1, 2, 2)])
def test_det_slogdet_inv_gradients(shape):
    A = leaf(well_conditioned(*shape))
    gradcheck(linalg.det, [A])
    gradcheck(lambda a: linalg.slogdet(a)[1], [A])
    gradcheck(linalg.inv, [A])


def test_det_and_slogdet_of_negative_determinant():
    A = leaf(well_conditioned(3, 3) @ np.diag([1.0, 1.0, -1.0]))
    sign, logabsdet = linalg.slogdet(A)
    d = float(np.linalg.det(A.numpy()))
    assert d < 0 and sign.item() == -1.0
    np.testing.assert_allclose(logabsdet.item(), np.log(abs(d)), rtol=1e-13)
    np.testing.assert_allclose(linalg.det(A).item(), d, rtol=1e-13)
    assert np.isnan(autodiff.logdet(A).item())
    gradcheck(lambda a: linalg.slogdet(a)[1], [A])
    gradcheck(linalg.det, [A])


@settings(max_examples=10)
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), n=st.integers(1, 4))
def test_identities_slogdet_and_inverse(batch, n):
    A = autodiff.tensor(well_conditioned(*batch, n, n))
    sign, logabsdet = linalg.slogdet(A)
    d = linalg.det(A)
    # log|det A| from slogdet equals log|det A| computed from det.
    np.testing.assert_allclose(logabsdet.numpy(), np.log(np.abs(d.numpy())), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(sign.numpy(), np.sign(d.numpy()))
    eye = np.broadcast_to(np.eye(n), A.shape)
    np.testing.assert_allclose((linalg.inv(A) @ A).numpy(), eye, atol=1e-12)
    np.testing.assert_allclose((A @ linalg.inv(A)).numpy(), eye, atol=1e-12)


def test_logabsdet_gradient_is_inverse_transpose():
    A = leaf(well_conditioned(2, 4, 4))
    (g,) = autodiff.grad(linalg.slogdet(A)[1].sum(), [A])
    np.testing.assert_allclose(g.numpy(), np.swapaxes(np.linalg.inv(A.numpy()), -1, -2),
                               rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- solve
@pytest.mark.parametrize("a_shape,b_shape,left", [
    ((3, 3), (3,), True),            # vector
    ((3, 3), (3, 2), True),          # matrix
    ((2, 3, 3), (2, 3), True),       # batch of vectors (B.shape == A.shape[:-1])
    ((2, 3, 3), (3,), True),         # one vector for every matrix
    ((2, 3, 3), (4, 1, 3, 2), True),  # broadcasting batch dims
    ((3, 3), (4, 3, 2), True),       # one matrix, a batch of right-hand sides
    ((2, 3, 3), (2, 4, 3), False),   # X A = B
])
def test_solve_gradients_and_identity(a_shape, b_shape, left):
    A, Bm = leaf(well_conditioned(*a_shape)), leaf(RNG.standard_normal(b_shape))
    X = linalg.solve(A, Bm, left=left)
    a, b = A.numpy(), Bm.numpy()
    if left:
        vector = len(b_shape) == 1 or b_shape == a_shape[:-1]
        expected = np.linalg.solve(a, b[..., None])[..., 0] if vector else np.linalg.solve(a, b)
    else:
        expected = np.swapaxes(np.linalg.solve(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)),
                               -1, -2)
    np.testing.assert_allclose(X.numpy(), expected, rtol=1e-12, atol=1e-13)
    gradcheck(lambda a_, b_: linalg.solve(a_, b_, left=left), [A, Bm])


@settings(max_examples=10)
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), n=st.integers(1, 4),
       k=st.integers(1, 3))
def test_solve_of_product_recovers_x(batch, n, k):
    A = autodiff.tensor(well_conditioned(*batch, n, n))
    x = autodiff.tensor(RNG.standard_normal(tuple(batch) + (n, k)))
    np.testing.assert_allclose(linalg.solve(A, A @ x).numpy(), x.numpy(), atol=1e-12)


# --------------------------------------------------------------------------- solve_triangular
@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unitriangular", [False, True])
@pytest.mark.parametrize("a_shape,b_shape", [((3, 3), (3, 2)), ((2, 3, 3), (3, 3)),
                                             ((3, 3), (2, 3, 3))])
def test_solve_triangular_gradients(upper, left, unitriangular, a_shape, b_shape):
    # A is a full matrix: the op must read only the triangle (and not the diagonal when
    # unitriangular), so the gradient outside it must be zero, as the differences are.
    if not left:  # B is (*, k, n): X A = B
        b_shape = b_shape[:-2] + b_shape[:-3:-1]
    A = leaf(well_conditioned(*a_shape))
    Bm = leaf(RNG.standard_normal(b_shape))
    X = linalg.solve_triangular(A, Bm, upper=upper, left=left, unitriangular=unitriangular)
    T = np.triu(A.numpy()) if upper else np.tril(A.numpy())
    if unitriangular:
        T = T - np.eye(3) * np.diagonal(T, axis1=-2, axis2=-1)[..., None, :] + np.eye(3)
    expected = np.linalg.solve(T, Bm.numpy()) if left else \
        np.swapaxes(np.linalg.solve(np.swapaxes(T, -1, -2), np.swapaxes(Bm.numpy(), -1, -2)),
                    -1, -2)
    np.testing.assert_allclose(X.numpy(), expected, rtol=1e-12, atol=1e-13)
    gradcheck(lambda a, b: linalg.solve_triangular(a, b, upper=upper, left=left,
                                                   unitriangular=unitriangular), [A, Bm])


def test_solve_triangular_gradient_ignores_other_triangle():
    A = leaf(triangular(4, 4) + np.triu(np.ones((4, 4)), 1))
    Bm = leaf(RNG.standard_normal((4, 2)))
    (g,) = autodiff.grad(linalg.solve_triangular(A, Bm, upper=False).sum(), [A])
    assert np.all(np.triu(g.numpy(), 1) == 0)


# --------------------------------------------------------------------------- cholesky
def chol_sym(M, upper=False):
    """cholesky reads one triangle; symmetrising makes the function of M well defined
    and its gradient the symmetric one that torch.linalg.cholesky returns."""
    return linalg.cholesky(sym(M), upper=upper)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 4, 4)])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_gradients(shape, upper):
    gradcheck(lambda m: chol_sym(m, upper), [leaf(spd(*shape))])


@settings(max_examples=10)
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), n=st.integers(1, 5))
def test_cholesky_reconstructs(batch, n):
    A = autodiff.tensor(spd(*batch, n, n))
    L = linalg.cholesky(A)
    np.testing.assert_array_equal(np.triu(L.numpy(), 1), 0)
    np.testing.assert_allclose((L @ L.mT).numpy(), A.numpy(), rtol=1e-13, atol=1e-12)
    U = linalg.cholesky(A, upper=True)
    np.testing.assert_allclose((U.mT @ U).numpy(), A.numpy(), rtol=1e-13, atol=1e-12)


def test_cholesky_gradient_is_symmetric_and_matches_logdet():
    # log det A = 2 sum log diag(L): its gradient must be A^-1 (symmetric A).
    A = leaf(spd(4, 4))
    L = linalg.cholesky(A)
    (g,) = autodiff.grad(2.0 * autodiff.log(linalg.diagonal(L)).sum(), [A])
    np.testing.assert_allclose(g.numpy(), np.linalg.inv(A.numpy()), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.numpy(), g.numpy().T, rtol=0, atol=1e-15)


def test_score_matching_style_second_derivative():
    # d/dA of ||grad_x log N(x; 0, A)||^2, through cholesky and solve_triangular.
    A = leaf(spd(3, 3))
    x = leaf(RNG.standard_normal((3, 1)))

    def penalty(a, x_):
        L = linalg.cholesky(sym(a))
        z = linalg.solve_triangular(L, x_, upper=False)
        logp = -0.5 * (z * z).sum() - autodiff.log(linalg.diagonal(L)).sum()
        (gx,) = autodiff.grad(logp, [x_], create_graph=True)
        return (gx * gx).sum()

    gradcheck(penalty, [A, x], second_order=False)


# --------------------------------------------------------------------------- empty dims
@pytest.mark.parametrize("a_shape,b_shape", [((0, 0), (0, 2)), ((3, 3), (3, 0)),
                                             ((0, 3, 3), (0, 3, 1)), ((2, 2), (0, 2, 1))])
def test_empty_dimensions(a_shape, b_shape):
    eye = np.eye(a_shape[-1])
    A, Bm = leaf(np.zeros(a_shape) + eye), leaf(np.ones(b_shape))
    S = leaf(np.zeros(a_shape) + eye)
    outs = [linalg.solve(A, Bm), linalg.solve_triangular(A, Bm, upper=True), linalg.inv(A),
            linalg.cholesky(S), linalg.det(A), linalg.slogdet(A)[1]]
    for out in outs:
        for x, g in zip([A, Bm, S], autodiff.grad(out.sum(), [A, Bm, S])):
            assert g is None or g.shape == x.shape
    # det of a 0x0 matrix is 1 (the empty product), as in NumPy and PyTorch
    np.testing.assert_array_equal(linalg.det(leaf(np.zeros((2, 0, 0)))).numpy(), [1.0, 1.0])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("fn", [linalg.det, linalg.inv, linalg.cholesky,
                                lambda a: linalg.slogdet(a)[1]])
def test_non_square_names_shape(fn):
    with pytest.raises(ValueError, match=r"square matrix.*\(2, 3\)"):
        fn(leaf(np.ones((2, 3))))


def test_singular_and_not_positive_definite_errors():
    singular = leaf(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(LinAlgError, match="inv: the matrix is singular"):
        linalg.inv(singular)
    with pytest.raises(LinAlgError, match="solve: the matrix A is singular"):
        linalg.solve(singular, leaf(np.ones(2)))
    with pytest.raises(LinAlgError, match="cholesky: the matrix is not positive-definite"):
        linalg.cholesky(leaf(np.array([[1.0, 0.0], [0.0, -1.0]])))
    with pytest.raises(LinAlgError, match="solve_triangular: .*singular"):
        linalg.solve_triangular(leaf(np.diag([1.0, 0.0])), leaf(np.ones((2, 1))), upper=True)
    with pytest.raises(LinAlgError, match="solve_triangular: .*singular"):
        linalg.solve_triangular(leaf(np.zeros((2, 2, 2))), leaf(np.ones((2, 2, 1))), upper=True)


def test_solve_shape_errors():
    with pytest.raises(ValueError, match=r"solve: A has shape \(3, 3\) but B has shape \(4, 2\)"):
        linalg.solve(leaf(np.eye(3)), leaf(np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"solve_triangular: B must be a matrix"):
        linalg.solve_triangular(leaf(np.eye(3)), leaf(np.ones(3)), upper=True)
    with pytest.raises(ValueError, match="vector right-hand side.*left=False"):
        linalg.solve(leaf(np.eye(3)), leaf(np.ones(3)), left=False)
    with pytest.raises(ValueError, match="solve: batch dimensions"):
        linalg.solve(leaf(np.ones((2, 3, 3))), leaf(np.ones((4, 3, 1))))


def test_float32_stays_float32():
    A32 = autodiff.tensor(well_conditioned(3, 3).astype(np.float32), requires_grad=True)
    S32 = autodiff.tensor(spd(3, 3).astype(np.float32), requires_grad=True)
    outs = [linalg.det(A32), linalg.slogdet(A32)[1].sum(), linalg.inv(A32).sum(),
            linalg.solve(A32, A32[:, 0]).sum(), linalg.cholesky(S32).sum(),
            linalg.solve_triangular(A32, A32, upper=True).sum(),
            autodiff.einsum("ij,jk->", A32, A32)]
    for out in outs:
        assert out.dtype == np.float32
        for g in autodiff.grad(out, [A32, S32]):
            assert g is None or g.dtype == np.float32
