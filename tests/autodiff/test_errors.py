"""Bad input gives a clear error that names the operation and the offending shapes or
values, never a bare NumPy traceback."""
import numpy as np  # host-side: index arrays for the bad inputs
import pytest

import autodiff as ad


@pytest.fixture
def x():
    return ad.ones(2, 3, requires_grad=True)


CASES = [
    ("add", lambda x: x + ad.ones(4), ValueError, r"add: shapes \(2, 3\) and \(4,\)"),
    ("mul", lambda x: x * ad.ones(3, 2), ValueError, r"mul: shapes \(2, 3\) and \(3, 2\)"),
    ("pow", lambda x: x ** ad.ones(5), ValueError, r"pow: shapes \(2, 3\) and \(5,\)"),
    ("reshape", lambda x: x.reshape(4, 2), ValueError, r"reshape: shape \(2, 3\).*\(4, 2\)"),
    ("view_two_minus_one", lambda x: x.view(-1, -1), ValueError, r"reshape"),
    ("permute_count", lambda x: x.permute(0), ValueError, r"permute.*\(2, 3\)"),
    ("permute_repeat", lambda x: x.permute(0, 0), ValueError, r"permute.*not a permutation"),
    ("sum_dim", lambda x: x.sum(5), IndexError, r"sum: dimension 5 out of range"),
    ("getitem_int", lambda x: x[5], IndexError, r"shape \(2, 3\).*index 5"),
    ("getitem_float", lambda x: x[np.array([0.5])], IndexError, r"integer or bool"),
    ("cat", lambda x: ad.cat([x, ad.ones(3, 3)], 1), ValueError,
     r"cat along dim 1: tensor 1 has shape \(3, 3\), tensor 0 has shape \(2, 3\)"),
    ("cat_empty", lambda x: ad.cat([]), ValueError, r"cat: expected a non-empty"),
    ("stack", lambda x: ad.stack([x, ad.ones(3, 3)]), ValueError, r"stack: tensor 1.*\(3, 3\)"),
    ("expand", lambda x: x.expand(4, 3), ValueError, r"expand.*\(2, 3\).*\(4, 3\)"),
    ("gather_ndim", lambda x: x.gather(1, ad.tensor(np.zeros(2, dtype=np.int64))), ValueError,
     r"gather: index has 1 dims but input has 2"),
    ("gather_dtype", lambda x: x.gather(1, ad.tensor(np.zeros((2, 3)))), TypeError,
     r"gather: index must be an integer"),
    ("gather_size", lambda x: x.gather(1, ad.tensor(np.zeros((3, 1), dtype=np.int64))),
     ValueError, r"gather: index of shape \(3, 1\) is larger than input \(2, 3\) in dim 0"),
    ("gather_bounds", lambda x: x.gather(1, ad.tensor(np.full((2, 3), 5))), IndexError,
     r"gather along dim 1 of shape \(2, 3\)"),
    ("scatter_add_src", lambda x: x.scatter_add(1, ad.tensor(np.zeros((2, 3), dtype=np.int64)),
                                                ad.ones(2, 2)), ValueError,
     r"scatter_add: index of shape \(2, 3\) is larger"),
    ("matmul", lambda x: x @ x, ValueError, r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    ("matmul_0d", lambda x: x @ ad.tensor(1.0), ValueError, r"matmul.*0-d"),
    ("split", lambda x: x.split([1, 3], 0), ValueError, r"split: sizes \[1, 3\] sum to 4.*2"),
    ("split_size", lambda x: x.split(0), ValueError, r"split: split_size must be positive"),
    ("chunk", lambda x: x.chunk(0), ValueError, r"chunk: the number of chunks"),
    ("flip", lambda x: x.flip(3), IndexError, r"flip: dimension 3"),
    ("roll", lambda x: x.roll(1, 5), IndexError, r"roll: dimension 5"),
    ("transpose", lambda x: x.transpose(0, 2), IndexError, r"transpose: dimension 2"),
    ("max_dim", lambda x: x.max(2), IndexError, r"max: dimension 2"),
    ("max_empty", lambda x: ad.zeros(0).max(0), ValueError, r"max: cannot reduce over empty"),
    ("amax_empty", lambda x: ad.zeros(0, 2).amax(), ValueError, r"amax: .*empty.*\(0, 2\)"),
    ("diagonal_same_dims", lambda x: x.diagonal(0, 0, 0), ValueError,
     r"diagonal: dim1 and dim2 must differ"),
    ("clamp", lambda x: ad.clamp(x), ValueError, r"clamp needs at least one of min, max"),
    ("item", lambda x: x.item(), ValueError, r"item\(\) needs a tensor with one element.*\(2, 3\)"),
    ("mean_int", lambda x: ad.tensor([1, 2]).mean(), TypeError, r"mean needs a floating"),
    ("bool", lambda x: bool(x), RuntimeError, r"ambiguous"),
    ("pad_reflect", lambda x: ad.ops.shape.pad(x, (3, 3), "reflect"), ValueError,
     r"pad: reflect padding \(3, 3\) must be smaller than the size 3"),
]


@pytest.mark.parametrize("name,fn,exc,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_op_and_shapes(x, name, fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn(x)


def test_backward_on_non_scalar_without_gradient(x):
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*shape \(2, 3\)"):
        (x * 2.0).backward()
    with pytest.raises(RuntimeError, match=r"only for scalar outputs"):
        ad.grad(x * 2.0, [x])


def test_gradient_shape_mismatch(x):
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\).*output has shape \(2, 3\)"):
        (x * 2.0).backward(ad.ones(3))


def test_backward_of_constant_and_grad_of_non_requiring_input(x):
    with pytest.raises(RuntimeError, match="does not require grad"):
        ad.ones(2).sum().backward()
    with pytest.raises(RuntimeError, match=r"inputs\[0\] does not require grad"):
        ad.grad(x.sum(), [ad.ones(2)])
    with pytest.raises(ValueError, match="1 grad_outputs for 2 outputs"):
        ad.grad([x.sum(), x.sum()], [x], grad_outputs=[ad.tensor(1.0)])


def test_requires_grad_on_integer_tensor():
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        ad.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="only floating point"):
        ad.tensor([1, 2]).requires_grad_()


def test_expand_minus_one_in_new_dimension():
    with pytest.raises(ValueError, match=r"expand: -1 is not allowed in a new leading"):
        ad.ones(3).expand(-1, 3)


def test_tril_triu_need_two_dims():
    with pytest.raises(ValueError, match=r"tril: needs at least 2 dims, got shape \(3,\)"):
        ad.ones(3).tril()
    with pytest.raises(ValueError, match=r"triu: needs at least 2 dims"):
        ad.ones(3).triu()


def test_integer_conversion_is_not_differentiable():
    x = ad.tensor([1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad and x.long().dtype == ad.int64
    assert not x.bool().requires_grad
    assert x.float().requires_grad  # float conversions stay differentiable
