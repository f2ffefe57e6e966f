"""Shape ops, indexing, gather/scatter, concatenation, flip/roll/pad, masks, diagonals and
matmul: values against NumPy and gradients against central differences (first and second
order), with size-1 and empty dimensions."""
import numpy as np  # host-side: test inputs and reference values
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autodiff as ad
from autodiff.checks import gradcheck

FEW = settings(max_examples=15)


def leaf(arr):
    return ad.tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def check(fn, a, expect):
    """fn's value equals ``expect`` exactly (data movement only) and its gradients check."""
    x = leaf(a)
    out = fn(x)
    np.testing.assert_array_equal(out.numpy(), expect)
    (g,) = ad.grad(out.sum(), [x])
    assert g.shape == x.shape
    assert gradcheck(fn, [x])


# --------------------------------------------------------------------------- reshape family
@FEW
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3),
       seed=st.integers(0, 2**16), data=st.data())
def test_reshape_permute_transpose_squeeze(shape, seed, data):
    a = rand(shape, seed)
    nd = len(shape)
    check(lambda t: t.reshape(-1), a, a.reshape(-1))
    check(lambda t: t.view(*reversed(shape)) if nd else t.view(1), a,
          a.reshape(tuple(reversed(shape))) if nd else a.reshape(1))
    check(lambda t: t.flatten(), a, a.reshape(-1))
    check(lambda t: t.unsqueeze(0).unsqueeze(-1), a, a[None, ..., None])
    check(lambda t: t.squeeze(), a, np.squeeze(a))
    check(lambda t: t.T, a, a.T)
    if nd:
        perm = data.draw(st.permutations(range(nd)))
        check(lambda t: t.permute(*perm), a, np.transpose(a, perm))
        d0, d1 = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
        check(lambda t: t.transpose(d0, d1), a, np.swapaxes(a, d0, d1))
        d = data.draw(st.integers(0, nd - 1))
        check(lambda t: t.squeeze(d), a, np.squeeze(a, d) if shape[d] == 1 else a)
        src, dst = data.draw(st.integers(0, nd - 1)), data.draw(st.integers(-nd, nd - 1))
        check(lambda t: t.movedim(src, dst), a, np.moveaxis(a, src, dst))
        s, e = sorted(data.draw(st.lists(st.integers(0, nd - 1), min_size=2, max_size=2)))
        check(lambda t: t.flatten(s, e), a,
              a.reshape(shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:]))
    if nd >= 2:
        check(lambda t: t.mT, a, np.swapaxes(a, -1, -2))


def test_expand_with_minus_one_and_new_dims():
    a = rand((3, 1))
    check(lambda t: t.expand(2, -1, 4), a, np.broadcast_to(a, (2, 3, 4)))
    check(lambda t: t.expand_as(ad.zeros(3, 5)), a, np.broadcast_to(a, (3, 5)))


# --------------------------------------------------------------------------- indexing
INDICES = [
    ("int", 1), ("negative_int", -1), ("slice", slice(1, None)),
    ("negative_step", slice(None, None, -1)), ("step_2", (slice(None), slice(None, None, 2))),
    ("negative_step_2", (slice(None, None, -2), slice(3, 0, -1))),
    ("none", (None, 0)), ("ellipsis", (Ellipsis, 1)), ("ellipsis_none", (0, Ellipsis, None)),
    ("int_array_repeated", [0, 0, 2, 0]), ("int_array_negative", [-1, 1, -1]),
    ("int_array_2d", np.array([[0, 1], [1, 1]])),
    ("two_arrays_repeated", ([0, 0, 2], [1, 1, 3])),
    ("array_and_slice", (slice(None), [3, 3, 0])),
    ("slice_array_int", (slice(0, 2), [1, 1], 0)),
    ("bool_mask_rows", np.array([True, False, True])),
    ("empty_slice", slice(2, 2)), ("empty_array", np.array([], dtype=np.int64)),
    ("tensor_index", "tensor"),
]


@pytest.mark.parametrize("name,index", INDICES, ids=[n for n, _ in INDICES])
def test_getitem_values_and_gradients(name, index):
    a = rand((3, 4, 2))
    if isinstance(index, str):
        index = ad.tensor(np.array([2, 2, 1]))
        expect = a[[2, 2, 1]]
    else:
        expect = a[index if not isinstance(index, list) else np.array(index)]
    check(lambda t: t[index], a, expect)


def test_getitem_bool_mask_full_shape_and_tensor_mask():
    a = rand((3, 4))
    mask = a > 0
    check(lambda t: t[mask], a, a[mask])
    check(lambda t: t[ad.tensor(mask)], a, a[mask])
    check(lambda t: t[t.detach() > 0], a, a[mask])


def test_repeated_indices_accumulate_gradient():
    x = leaf([10.0, 20.0, 30.0])
    (g,) = ad.grad(x[[0, 0, 2, 0]].sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [3.0, 0.0, 1.0])
    w = ad.tensor([1.0, 2.0, 3.0, 4.0])
    (g,) = ad.grad((x[[0, 0, 2, 0]] * w).sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [1.0 + 2.0 + 4.0, 0.0, 3.0])
    # second order through the scatter-add: d/dx of (x[idx]^2 summed) = 2 * count * x
    (g,) = ad.grad((x[[0, 0, 2]] ** 2).sum(), [x], create_graph=True)
    np.testing.assert_array_equal(g.numpy(), [40.0, 0.0, 60.0])
    (h,) = ad.grad(g.sum(), [x])
    np.testing.assert_array_equal(h.numpy(), [4.0, 0.0, 2.0])


def test_index_select_and_unbind():
    a = rand((3, 4))
    check(lambda t: t.index_select(1, ad.tensor(np.array([3, 0, 3]))), a, a[:, [3, 0, 3]])
    parts = leaf(a).unbind(1)
    assert len(parts) == 4 and parts[2].shape == (3,)
    check(lambda t: ad.stack(t.unbind(0), 1), a, a.T)


# --------------------------------------------------------------------------- gather/scatter
@FEW
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       seed=st.integers(0, 2**16), data=st.data())
def test_gather_and_scatter_add_along_dim(shape, seed, data):
    rng = np.random.default_rng(seed)
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    # index may be smaller than the input in the other dims and longer along dim (repeats)
    ishape = tuple(data.draw(st.integers(1, 5)) if d == dim % nd else
                   data.draw(st.integers(1, n)) for d, n in enumerate(shape))
    idx = rng.integers(0, shape[dim], ishape)
    a = rng.normal(size=shape)
    ref = np.empty(ishape)
    for pos in np.ndindex(*ishape):
        src = list(pos)
        src[dim % nd] = idx[pos]
        ref[pos] = a[tuple(src)]
    check(lambda t: t.gather(dim, ad.tensor(idx)), a, ref)
    src = rng.normal(size=ishape)
    expect = a.copy()
    for pos in np.ndindex(*ishape):
        dst = list(pos)
        dst[dim % nd] = idx[pos]
        expect[tuple(dst)] += src[pos]
    base, s = leaf(a), leaf(src)
    out = base.scatter_add(dim, ad.tensor(idx), s)
    np.testing.assert_allclose(out.numpy(), expect, rtol=1e-14)
    assert gradcheck(lambda b, s: ad.scatter_add(b, dim, ad.tensor(idx), s), [base, s])


def test_scatter_add_uses_only_index_block_of_larger_src():
    a = ad.zeros(2, 3)
    src = leaf(np.arange(6.0).reshape(2, 3))
    out = a.scatter_add(1, ad.tensor(np.array([[2], [2]])), src)
    np.testing.assert_array_equal(out.numpy(), [[0, 0, 0], [0, 0, 3]])
    (g,) = ad.grad(out.sum(), [src])
    np.testing.assert_array_equal(g.numpy(), [[1, 0, 0], [1, 0, 0]])


# --------------------------------------------------------------------------- cat/stack/split
@FEW
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
       seed=st.integers(0, 2**16), data=st.data())
def test_cat_stack_split_chunk(shape, seed, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    other = list(shape)
    other[dim] = data.draw(st.integers(0, 3))
    a, b = rand(shape, seed), rand(tuple(other), seed + 1)
    ta, tb = leaf(a), leaf(b)
    out = ad.cat([ta, tb], dim)
    np.testing.assert_array_equal(out.numpy(), np.concatenate([a, b], dim))
    assert gradcheck(lambda x, y: ad.cat([x, y, x], dim), [ta, tb])
    sdim = data.draw(st.integers(-nd - 1, nd))
    np.testing.assert_array_equal(ad.stack([ta, ta], sdim).numpy(), np.stack([a, a], sdim))
    assert gradcheck(lambda x: ad.stack([x, x * 2.0], sdim), [ta])
    n = shape[dim]
    size = data.draw(st.integers(1, 4))
    pieces = ta.split(size, dim)
    ref = np.split(a, list(range(size, n, size)), axis=dim)
    assert len(pieces) == len(ref)
    for p, r in zip(pieces, ref):
        np.testing.assert_array_equal(p.numpy(), r)
    assert gradcheck(lambda x: tuple(p * float(i + 1) for i, p in enumerate(x.split(size, dim))),
                     [ta])
    chunks = data.draw(st.integers(1, 4))
    got = ta.chunk(chunks, dim)
    step = -(-n // chunks) if n else 1
    assert [p.shape[dim] for p in got] == [min(step, n - s) for s in range(0, n, step)] or n == 0


def test_split_with_sizes():
    a = rand((5, 2))
    x = leaf(a)
    p, q = ad.split(x, [2, 3])
    np.testing.assert_array_equal(q.numpy(), a[2:])
    assert gradcheck(lambda t: ad.split(t, [2, 3])[1], [x])


# --------------------------------------------------------------------------- flip/roll/pad
@FEW
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
       seed=st.integers(0, 2**16), data=st.data())
def test_flip_and_roll(shape, seed, data):
    nd = len(shape)
    a = rand(shape, seed)
    dims = tuple(data.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)))
    check(lambda t: t.flip(dims), a, np.flip(a, dims))
    shifts = tuple(data.draw(st.integers(-5, 5)) for _ in dims)
    check(lambda t: t.roll(shifts, dims), a, np.roll(a, shifts, dims))
    s = data.draw(st.integers(-5, 5))
    check(lambda t: t.roll(s), a, np.roll(a, s))


def test_roll_needs_one_shift_per_dim():
    # NumPy would broadcast (1, 2) over dim 0 into a roll by 3; PyTorch refuses, so do we
    x = ad.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"roll: 2 shifts \(1, 2\) for 1 dims"):
        x.roll((1, 2), (0,))
    with pytest.raises(ValueError, match=r"roll: 1 shifts \(1,\) for 2 dims"):
        x.roll(1, (0, 1))


NP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("mode", sorted(NP_MODE))
@FEW
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=3, max_side=4),
       seed=st.integers(0, 2**16), data=st.data())
def test_pad_all_modes(mode, shape, seed, data):
    nd = len(shape)
    k = data.draw(st.integers(1, nd))
    widths = [data.draw(st.integers(0, 2)) for _ in range(2 * k)]
    a = rand(shape, seed)
    np_widths = [(0, 0)] * (nd - k) + [(widths[2 * j], widths[2 * j + 1])
                                       for j in reversed(range(k))]
    if mode == "constant":
        expect = np.pad(a, np_widths, mode="constant", constant_values=0.5)
        fn = lambda t: ad.ops.shape.pad(t, widths, mode, value=0.5)  # noqa: E731
    else:
        expect = np.pad(a, np_widths, mode=NP_MODE[mode])
        fn = lambda t: ad.ops.shape.pad(t, widths, mode)  # noqa: E731
    check(fn, a, expect)


def test_pad_errors_name_the_problem():
    x = ad.zeros(2, 3)
    with pytest.raises(ValueError, match="reflect"):
        ad.ops.shape.pad(x, (3, 0), "reflect")
    with pytest.raises(ValueError, match="unknown mode"):
        ad.ops.shape.pad(x, (1, 1), "mirror")
    with pytest.raises(ValueError, match="negative"):
        ad.ops.shape.pad(x, (-1, 1))
    with pytest.raises(ValueError, match="pair"):
        ad.ops.shape.pad(x, (1,))


# --------------------------------------------------------------------------- masks/diagonals
def test_masked_fill_with_broadcast_mask_and_tensor_value():
    a = rand((3, 4))
    mask = np.array([True, False, False, True])
    check(lambda t: t.masked_fill(ad.tensor(mask), -1.5), a, np.where(mask, -1.5, a))
    v = leaf(2.0)
    out = leaf(a).masked_fill(ad.tensor(mask), v)
    (gv,) = ad.grad(out.sum(), [v])
    assert gv.item() == 6.0  # 3 rows x 2 masked columns


@pytest.mark.parametrize("k", [-3, -1, 0, 1, 2, 5])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 5, 3), (0, 3)])
def test_tril_triu(k, shape):
    a = rand(shape)
    check(lambda t: t.tril(k), a, np.tril(a, k))
    check(lambda t: t.triu(k), a, np.triu(a, k))


@pytest.mark.parametrize("offset", [-4, -2, -1, 0, 1, 3, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (0, 2), (2, 1), (-1, -2)])
def test_diagonal_with_offsets(offset, dims):
    a = rand((3, 4, 5))
    check(lambda t: t.diagonal(offset, *dims), a, np.diagonal(a, offset, *dims))


# --------------------------------------------------------------------------- matmul
@FEW
@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                 min_side=0, max_side=3),
       mkn=st.tuples(st.integers(1, 3), st.integers(0, 3), st.integers(1, 3)),
       seed=st.integers(0, 2**16))
def test_matmul_batch_broadcast(batch, mkn, seed):
    (ba, bb), m, k, n = batch.input_shapes, *mkn
    rng = np.random.default_rng(seed)
    a, b = leaf(rng.normal(size=ba + (m, k))), leaf(rng.normal(size=bb + (k, n)))
    out = a @ b
    np.testing.assert_allclose(out.numpy(), np.matmul(a.numpy(), b.numpy()), rtol=1e-12,
                               atol=1e-14)
    assert gradcheck(lambda x, y: x @ y, [a, b])


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)),
                                   ((4, 1, 3), (3,)), ((3,), (2, 3, 4)), ((1, 3), (2, 3, 1))])
def test_matmul_vector_promotion(sa, sb):
    rng = np.random.default_rng(1)
    a, b = leaf(rng.normal(size=sa)), leaf(rng.normal(size=sb))
    out = ad.matmul(a, b)
    np.testing.assert_allclose(out.numpy(), np.matmul(a.numpy(), b.numpy()), rtol=1e-13)
    assert gradcheck(ad.matmul, [a, b])


def test_sum_to_size_accepts_varargs_and_a_tuple():
    x = ad.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(x.sum_to_size(1, 3).numpy(), [[5.0, 7.0, 9.0]])
    np.testing.assert_array_equal(x.sum_to_size((2, 1)).numpy(), [[6.0], [15.0]])


def test_roll_without_dims_refuses_several_shifts():
    with pytest.raises(ValueError, match="roll"):
        ad.arange(6).roll((1, 2))
