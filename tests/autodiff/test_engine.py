"""The graph engine: deep graphs, accumulation, higher-order gradients, grad modes,
dtype preservation, anomaly detection and in-place safety."""
import numpy as np  # host-side: test inputs and reference values
import pytest

import autodiff as ad
from autodiff.checks import gradcheck


def leaf(arr, dtype=np.float64):
    return ad.tensor(np.asarray(arr, dtype=dtype), requires_grad=True)


def test_deep_chain_backpropagates_without_recursion_error():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(20_000):
        y = y * 1.0001 + 0.0  # 40,000 recorded ops
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 20_000] * 2, rtol=1e-10)


def test_gradient_accumulates_across_backward_calls():
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 3.0, rtol=0)
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_same_graph_backward_twice_retains_graph():
    x = leaf([1.0, 2.0])
    y = (ad.exp(x) * x).sum()
    y.backward()
    first = x.grad.numpy().copy()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-15)


def test_grad_function_leaves_dot_grad_untouched_and_takes_grad_outputs():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    v = ad.tensor([1.0, 0.5, -1.0])
    (g,) = ad.grad(y, [x], grad_outputs=[v])
    np.testing.assert_array_equal(g.numpy(), 2 * x.numpy() * v.numpy())
    assert x.grad is None
    g2 = ad.grad(y.sum(), x)  # a single Tensor as inputs also works
    assert isinstance(g2, list) and len(g2) == 1


def test_hessian_vector_product_of_quartic():
    # f(x) = sum x^4: grad 4 x^3, Hessian diag(12 x^2), so H v = 12 x^2 v
    rng = np.random.default_rng(0)
    x0, v0 = rng.normal(size=5), rng.normal(size=5)
    x, v = leaf(x0), ad.tensor(v0)
    (g,) = ad.grad((x ** 4).sum(), [x], create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(g.numpy(), 4 * x0 ** 3, rtol=1e-14)
    (hv,) = ad.grad((g * v).sum(), [x])
    np.testing.assert_allclose(hv.numpy(), 12 * x0 ** 2 * v0, rtol=1e-13)


def test_hessian_vector_product_of_quadratic_form():
    # f(x) = x^T A x: grad (A + A^T) x, Hessian A + A^T
    rng = np.random.default_rng(1)
    A0, x0, v0 = rng.normal(size=(4, 4)), rng.normal(size=4), rng.normal(size=4)
    A, x, v = ad.tensor(A0), leaf(x0), ad.tensor(v0)
    f = x @ (A @ x)
    (g,) = ad.grad(f, [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), (A0 + A0.T) @ x0, rtol=1e-13)
    (hv,) = ad.grad(g @ v, [x])
    np.testing.assert_allclose(hv.numpy(), (A0 + A0.T) @ v0, rtol=1e-13)


def test_third_derivative():
    x = leaf(0.7)
    (g,) = ad.grad(ad.sin(x), [x], create_graph=True)
    (h,) = ad.grad(g, [x], create_graph=True)
    (t,) = ad.grad(h, [x])
    assert t.item() == pytest.approx(-np.cos(0.7), rel=1e-15)


def test_gradient_penalty_differentiated_wrt_parameters():
    # WGAN-GP style: P(w) = (||d/dx D_w(x)|| - 1)^2 with D_w(x) = sum tanh(x W) ; check dP/dW
    rng = np.random.default_rng(2)
    x0, w0 = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))

    def penalty(w):
        x = ad.tensor(x0, requires_grad=True)
        d = ad.tanh(x @ w).sum()
        (gx,) = ad.grad(d, [x], create_graph=True)
        norm = ((gx * gx).sum(1) + 1e-12).sqrt()
        return ((norm - 1.0) ** 2).mean()

    assert gradcheck(penalty, [leaf(w0)], second_order=False)


def test_grad_with_respect_to_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    y = (h * h).sum()
    gh, gx = ad.grad(y, [h, x])
    np.testing.assert_array_equal(gh.numpy(), 2 * h.numpy())
    np.testing.assert_array_equal(gx.numpy(), 18 * x.numpy())


def test_allow_unused():
    x, z = leaf([1.0]), leaf([2.0])
    y = (x * 2.0).sum()
    gx, gz = ad.grad(y, [x, z])
    assert gz is None and gx.item() == 2.0
    with pytest.raises(RuntimeError, match="allow_unused"):
        ad.grad((x * 2.0).sum(), [x, z], allow_unused=False)


def test_backward_inputs_restricts_accumulation():
    x, z = leaf([1.0]), leaf([2.0])
    (x * z).sum().backward(inputs=[x])
    assert x.grad.item() == 2.0 and z.grad is None


def test_no_grad_enable_grad_nesting_and_decorator():
    x = leaf([1.0])
    with ad.no_grad():
        assert not ad.is_grad_enabled()
        assert not (x * 2.0).requires_grad
        with ad.enable_grad():
            assert ad.is_grad_enabled() and (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad
    assert ad.is_grad_enabled() and (x * 2.0).requires_grad

    @ad.no_grad()
    def f(t):
        return t * 2.0, ad.is_grad_enabled()

    y, mode = f(x)
    assert not mode and not y.requires_grad and ad.is_grad_enabled()
    assert f.__name__ == "f"
    with ad.set_grad_enabled(False):
        assert not ad.is_grad_enabled()
    assert ad.is_grad_enabled()
    # the mode is restored even when the body raises
    with pytest.raises(KeyError):
        with ad.no_grad():
            raise KeyError
    assert ad.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_values():
    x = leaf([1.0, 2.0])
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * d).sum()
    (g,) = ad.grad(y, [x])
    np.testing.assert_array_equal(g.numpy(), d.numpy())


SCALAR_FUNCS = {
    "mul_float": lambda t: t * 2.0, "add_int": lambda t: t + 1, "pow2": lambda t: t ** 2,
    "rdiv": lambda t: 1 / t, "rsub": lambda t: 1.0 - t, "pow_float": lambda t: t ** 1.5,
    "rpow": lambda t: 2.0 ** t, "div_int": lambda t: t / 3, "mean": lambda t: t.mean(),
    "var": lambda t: t.var(), "std": lambda t: t.std(), "sigmoid": ad.sigmoid,
    "tanh": ad.tanh, "logsumexp": lambda t: t.logsumexp(0), "prod": lambda t: t.prod(),
    "norm": lambda t: t.norm(), "maximum": lambda t: ad.maximum(t, 0.5),
    "where": lambda t: ad.where(t > 1.5, t, 0.0), "clamp": lambda t: t.clamp(0.5, 2.5),
    "leaky": lambda t: ad.ops.elementwise.leaky_relu(t), "erf": ad.erf,
    "pad": lambda t: ad.ops.shape.pad(t, (1, 2), "reflect"), "tril": lambda t: t.reshape(1, 3).tril(),
    "np_scalar": lambda t: t * np.float64(2.0), "matmul": lambda t: t @ t,
}


@pytest.mark.parametrize("name", sorted(SCALAR_FUNCS))
def test_float32_graph_gives_float32_values_and_gradients(name):
    x = leaf([1.0, 2.0, 3.0], dtype=np.float32)
    y = SCALAR_FUNCS[name](x)
    assert y.dtype == np.float32, f"{name}: forward upcast to {y.dtype}"
    (g,) = ad.grad(y.sum(), [x], create_graph=True)
    assert g.dtype == np.float32, f"{name}: gradient upcast to {g.dtype}"
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_detect_anomaly_names_forward_op():
    x = leaf([-1.0, 1.0])
    with ad.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"forward of Log"):
            ad.log(x)
    ad.log(leaf([1.0]))  # off again: no check


def test_detect_anomaly_names_backward_op():
    x = leaf([0.0, 1.0])
    with ad.detect_anomaly():
        y = ad.sqrt(x)  # finite forward; d sqrt/dx at 0 is inf
        with pytest.raises(FloatingPointError, match=r"backward of Sqrt"):
            (y * 0.0 + y).sum().backward()
    # without anomaly mode the same graph runs through silently
    (ad.sqrt(x)).sum().backward()
    assert np.isinf(x.grad.numpy()[0])


def test_detect_anomaly_names_user_line():
    x = leaf([0.0])
    with ad.detect_anomaly():
        y = ad.sqrt(x)
        with pytest.raises(FloatingPointError, match=r"test_engine\.py"):
            y.sum().backward()


def test_inplace_change_of_saved_tensor_raises_on_backward():
    x = leaf([1.0, 2.0])
    y = x * x
    with ad.no_grad():
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_inplace_change_of_saved_output_raises():
    x = leaf([1.0, 2.0])
    h = x * 1.0
    y = ad.exp(h)
    z = y.sum()
    with ad.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="in place|in-place"):
        z.backward()


def test_inplace_on_leaf_requiring_grad_raises_outside_no_grad():
    x = leaf([1.0, 2.0])
    for op in (lambda: x.add_(1.0), lambda: x.mul_(2.0), lambda: x.zero_(),
               lambda: x.__setitem__(0, 5.0), lambda: x.copy_(ad.tensor([0.0, 0.0]))):
        with pytest.raises(RuntimeError, match="leaf"):
            op()
    with ad.no_grad():
        x.add_(1.0)
    np.testing.assert_array_equal(x.numpy(), [2.0, 3.0])


def test_leaf_gradients_are_writable_and_not_shared():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad.zero_()  # optimisers and clipping update .grad in place
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])


def test_inplace_on_non_leaf_in_graph_is_not_silently_wrong():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    try:
        y.mul_(3.0)
    except RuntimeError:
        return  # refusing is correct
    (g,) = ad.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [6.0, 6.0])


def test_requires_grad_flags_and_leaves():
    x = leaf([1.0])
    y = x * 2.0
    assert x.is_leaf and not y.is_leaf and y.grad_fn is not None
    assert (ad.tensor([1.0]) * 2.0).grad_fn is None
    with pytest.raises(TypeError, match="floating point"):
        ad.tensor([1, 2], requires_grad=True)


def test_gradient_dtype_matches_input_dtype_under_promotion():
    a = leaf([1.0, 2.0], dtype=np.float32)
    b = leaf([3.0, 4.0])
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
