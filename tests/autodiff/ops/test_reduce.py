"""Reductions: values against NumPy, gradients against central differences (first and
second order) over hypothesis-drawn shapes and dims, and the chosen conventions: ties,
zeros in prod, the variance correction, -inf slices in logsumexp, empty dimensions."""
import numpy as np  # host-side: test inputs and reference values
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autodiff as ad
from autodiff.checks import gradcheck

FEW = settings(max_examples=15)


def leaf(arr):
    return ad.tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


@st.composite
def shape_and_dims(draw, min_side=1, max_dims=3):
    """A shape and a reduction ``dim``: None, an int (possibly negative) or a tuple."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=min_side, max_side=3))
    nd = len(shape)
    if nd == 0:
        dim = draw(st.sampled_from([None, 0, -1]))
    else:
        dim = draw(st.one_of(
            st.none(), st.integers(-nd, nd - 1),
            st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))
    return shape, dim, draw(st.booleans())


def np_axes(dim, nd):
    if dim is None or nd == 0:
        return None if nd else ()
    return dim if isinstance(dim, tuple) else (dim % nd,)


REDUCTIONS = {
    "sum": (lambda x, d, k: x.sum(d, keepdim=k), lambda a, ax, k: a.sum(axis=ax, keepdims=k)),
    "mean": (lambda x, d, k: x.mean(d, keepdim=k), lambda a, ax, k: a.mean(axis=ax, keepdims=k)),
    "logsumexp": (lambda x, d, k: x.logsumexp(d, keepdim=k),
                  lambda a, ax, k: np.log(np.exp(a).sum(axis=ax, keepdims=k))),
    "amax": (lambda x, d, k: x.amax(d, keepdim=k), lambda a, ax, k: a.max(axis=ax, keepdims=k)),
    "amin": (lambda x, d, k: x.amin(d, keepdim=k), lambda a, ax, k: a.min(axis=ax, keepdims=k)),
    "norm": (lambda x, d, k: x.norm(dim=d, keepdim=k),
             lambda a, ax, k: np.sqrt((a * a).sum(axis=ax, keepdims=k))),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@FEW
@given(sdk=shape_and_dims(), seed=st.integers(0, 2**16))
def test_reduction_values_and_gradients(name, sdk, seed):
    shape, dim, keepdim = sdk
    ours, ref = REDUCTIONS[name]
    # distinct values (no ties, no zero vector): amax/amin/norm are smooth there
    a = np.random.default_rng(seed).permutation(np.arange(int(np.prod(shape)))).reshape(shape)
    a = (a - a.size / 2.0 + 0.5) / 3.0 + 0.01
    x = leaf(a)
    out = ours(x, dim, keepdim)
    expect = np.asarray(ref(a, np_axes(dim, len(shape)), keepdim))
    assert out.shape == expect.shape
    np.testing.assert_allclose(out.numpy(), expect, rtol=1e-13)
    assert gradcheck(lambda t: ours(t, dim, keepdim), [x])


@pytest.mark.parametrize("correction", [0, 1, 2])
@FEW
@given(sdk=shape_and_dims(min_side=1), seed=st.integers(0, 2**16))
def test_var_std_with_correction(correction, sdk, seed):
    shape, dim, keepdim = sdk
    a = np.random.default_rng(seed).normal(size=shape)
    x = leaf(a)
    ax = np_axes(dim, len(shape))
    n = a.size if ax is None else int(np.prod([shape[i] for i in ax]))
    v = x.var(dim, keepdim=keepdim, correction=correction)
    if n - correction <= 0:
        assert np.isnan(v.numpy()).all()  # PyTorch too: 0/0 or x/negative count -> nan here
        return
    np.testing.assert_allclose(v.numpy(), np.var(a, axis=ax, ddof=correction, keepdims=keepdim),
                               rtol=1e-12, atol=1e-15)
    s = x.std(dim, keepdim=keepdim, correction=correction)
    np.testing.assert_allclose(s.numpy(), np.std(a, axis=ax, ddof=correction, keepdims=keepdim),
                               rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda t: t.var(dim, keepdim=keepdim, correction=correction), [x])
    if n > 1:  # std of one element is sqrt(0): not differentiable
        assert gradcheck(lambda t: t.std(dim, keepdim=keepdim, correction=correction), [x])


def test_var_unbiased_flag():
    x = leaf([1.0, 2.0, 4.0])
    assert x.var().item() == pytest.approx(np.var([1, 2, 4], ddof=1), rel=1e-15)
    assert x.var(unbiased=False).item() == pytest.approx(np.var([1, 2, 4]), rel=1e-15)


@FEW
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       seed=st.integers(0, 2**16), data=st.data())
def test_prod_gradient_with_and_without_zeros(shape, seed, data):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    zeros = data.draw(st.integers(0, 2))
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, size=min(zeros, flat.size), replace=False)] = 0.0
    dim = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    x = leaf(a)
    out = x.prod(dim)
    np.testing.assert_allclose(out.numpy(), a.prod(axis=dim), rtol=1e-14)
    # prod is a polynomial: central differences are exact up to rounding even at zeros
    assert gradcheck(lambda t: t.prod(dim), [x])


def test_prod_gradient_at_zeros_exact():
    x = leaf([2.0, 0.0, 3.0])
    (g,) = ad.grad(x.prod(), [x])
    np.testing.assert_array_equal(g.numpy(), [0.0, 6.0, 0.0])
    x = leaf([2.0, 0.0, 0.0])
    (g,) = ad.grad(x.prod(), [x])
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0, 0.0])
    # the Hessian of x0 x1 x2 at (2, 0, 3): d2/dx0dx1 = x2 = 3 etc.
    x = leaf([2.0, 0.0, 3.0])
    (g,) = ad.grad(x.prod(), [x], create_graph=True)
    (h0,) = ad.grad(g[0], [x])
    np.testing.assert_array_equal(h0.numpy(), [0.0, 3.0, 0.0])


def test_max_min_without_dim_share_ties_evenly():
    x = leaf([1.0, 3.0, 3.0, -2.0])
    (g,) = ad.grad(x.max(), [x])
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.5, 0.5, 0.0])
    y = leaf([[-2.0, 5.0], [-2.0, -2.0]])
    (g,) = ad.grad(y.min(), [y])
    np.testing.assert_allclose(g.numpy(), [[1 / 3, 0.0], [1 / 3, 1 / 3]], rtol=1e-15)
    (g,) = ad.grad(y.amax(1).sum(), [y])
    np.testing.assert_array_equal(g.numpy(), [[0.0, 1.0], [0.5, 0.5]])


def test_max_with_dim_returns_first_index_and_routes_gradient_there():
    x = leaf([[3.0, 3.0, 1.0], [0.0, 2.0, 2.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [3.0, 2.0])
    np.testing.assert_array_equal(indices.numpy(), [0, 1])
    assert indices.dtype == np.int64 and not indices.requires_grad
    (g,) = ad.grad(values.sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    vals, idx = x.min(0, keepdim=True)
    np.testing.assert_array_equal(vals.numpy(), [[0.0, 2.0, 1.0]])
    np.testing.assert_array_equal(idx.numpy(), [[1, 1, 0]])
    r = x.max(dim=-1)
    assert r.values is r[0] and r.indices is r[1]


@FEW
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       seed=st.integers(0, 2**16), data=st.data())
def test_max_min_with_dim_gradcheck(shape, seed, data):
    a = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 2.0
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    x = leaf(a)
    for op, ref in ((ad.max, np.max), (ad.min, np.min)):
        v, i = op(x, dim, keepdim)
        np.testing.assert_array_equal(v.numpy(), ref(a, axis=dim, keepdims=keepdim))
        assert gradcheck(lambda t: op(t, dim, keepdim), [x])


def test_logsumexp_minus_inf_rows_and_extremes():
    x = leaf([[-np.inf, -np.inf], [0.0, -np.inf], [1e4, 1e4], [-1e4, -1e4 - 1.0]])
    out = x.logsumexp(1)
    np.testing.assert_allclose(
        out.numpy(), [-np.inf, 0.0, 1e4 + np.log(2.0), np.logaddexp(-1e4, -1e4 - 1.0)],
        rtol=1e-15)
    (g,) = ad.grad(out[1:].sum(), [x])
    assert np.isfinite(g.numpy()).all()
    # an all -inf row: value -inf and gradient 0 (a deliberate choice; PyTorch gives nan)
    (g,) = ad.grad(out.sum(), [x])
    np.testing.assert_array_equal(g.numpy()[0], [0.0, 0.0])
    np.testing.assert_array_equal(g.numpy()[1], [1.0, 0.0])
    # out = 1e4 + log 2 is stored to 1e4 * 2^-52 ~ 2e-12 absolute, so exp(a - out) carries
    # that relative error
    np.testing.assert_allclose(g.numpy()[2], [0.5, 0.5], rtol=1e-11)


def test_logsumexp_empty_dim_is_minus_inf():
    x = leaf(np.zeros((0, 3)))
    np.testing.assert_array_equal(x.logsumexp(0).numpy(), [-np.inf] * 3)
    assert x.logsumexp(1).shape == (0,)
    (g,) = ad.grad(x.logsumexp(0).sum(), [x])
    assert g.shape == (0, 3)


@FEW
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
       seed=st.integers(0, 2**16), data=st.data())
def test_cumsum(shape, seed, data):
    a = np.random.default_rng(seed).normal(size=shape)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = leaf(a)
    np.testing.assert_allclose(x.cumsum(dim).numpy(), np.cumsum(a, axis=dim), rtol=1e-13,
                               atol=1e-15)
    assert gradcheck(lambda t: t.cumsum(dim), [x])


@FEW
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3), data=st.data())
def test_sum_mean_on_empty_and_size_one_dims(shape, data):
    x = leaf(np.ones(shape))
    dim = None if not shape else data.draw(st.integers(0, len(shape) - 1))
    s = x.sum(dim)
    (g,) = ad.grad(s.sum(), [x])
    assert g.shape == shape
    np.testing.assert_array_equal(g.numpy(), np.ones(shape))
    if x.numel() == 0 and dim is None:
        assert np.isnan(x.mean().item())


def test_reductions_of_zero_dim_tensor_accept_dim_zero():
    x = leaf(3.0)
    assert x.sum(0).item() == 3.0 and x.mean(-1).item() == 3.0
    assert x.amax(0).item() == 3.0 and x.logsumexp(0).item() == pytest.approx(3.0)


@FEW
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=1, min_dims=0, max_dims=3,
                                                  min_side=0, max_side=3),
       seed=st.integers(0, 2**16))
def test_broadcast_to_and_sum_to_are_adjoint(shapes, seed):
    (small,), big = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    x = leaf(rng.normal(size=small))
    y = leaf(rng.normal(size=big))
    # <broadcast(x), y> = <x, sum_to(y)>
    lhs = (ad.broadcast_to(x, big) * y.detach()).sum().item()
    rhs = (x.detach() * ad.sum_to(y, small)).sum().item()
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)
    assert gradcheck(lambda t: ad.broadcast_to(t, big), [x])
    assert gradcheck(lambda t: ad.sum_to(t, small), [y])
    assert gradcheck(lambda t: t.expand(*big), [x])


def test_norm_at_zero_has_zero_gradient_and_other_orders():
    x = leaf([0.0, 0.0])
    (g,) = ad.grad(x.norm(), [x])
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0])
    y = leaf([3.0, -4.0])
    assert y.norm().item() == 5.0
    assert y.norm(p=1).item() == 7.0
    assert y.norm(p=float("inf")).item() == 4.0
    assert y.norm(p=3).item() == pytest.approx((27 + 64) ** (1 / 3), rel=1e-15)
    for p in (1, 3, float("inf")):
        assert gradcheck(lambda t: t.norm(p=p), [y])
    # 'fro' is Tensor.norm's name for the 2-norm; other strings are refused by name
    m = leaf([[1.0, 2.0], [2.0, 4.0]])
    assert m.norm("fro").item() == 5.0
    np.testing.assert_array_equal(m.norm(p="fro", dim=1).numpy(), [np.sqrt(5.0), np.sqrt(20.0)])
    with pytest.raises(ValueError, match="p='nuc' is not supported"):
        m.norm("nuc")


def test_argmax_argmin_all_any():
    x = ad.tensor([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]])
    assert x.argmax().item() == 3
    np.testing.assert_array_equal(x.argmax(1).numpy(), [1, 0])
    np.testing.assert_array_equal(x.argmin(0, keepdim=True).numpy(), [[0, 1, 0]])
    assert bool((x > 0).any()) and not bool((x > 0).all())
    np.testing.assert_array_equal((x > 0).all(1).numpy(), [True, False])


@pytest.mark.parametrize("target", [(2, 2), (3, 3), (4,), (2, 1, 3), (1, 2, 3, 4)])
def test_sum_to_rejects_a_shape_that_does_not_broadcast_to_the_input(target):
    # (2, 2) and (3, 3) used to come back silently as (2, 3); (4,) as a NumPy reshape error
    x = ad.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"sum_to: cannot sum shape \(2, 3\) to"):
        ad.sum_to(x, target)
