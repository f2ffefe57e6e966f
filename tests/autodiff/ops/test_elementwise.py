"""Elementwise primitives: gradients against central differences (first and second order),
broadcasting, empty and size-1 dimensions, chosen subgradients, numerical stability.

Values are drawn away from kinks and domain edges (|x| >= 0.1 for relu/abs, x > 0 for log
...), because a central difference across a kink measures the average of two slopes.
"""
import numpy as np  # host-side: builds test inputs and reference values
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autodiff as ad
from autodiff.checks import gradcheck

FEW = settings(max_examples=15)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
seeds = st.integers(0, 2**16)


def leaf(arr):
    return ad.tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


def away_from_zero(rng, shape, lo=0.1, hi=2.0):
    """Values with lo <= |x| <= hi: no kink of relu/abs/sign within a difference step."""
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


def generic(rng, shape):
    return rng.uniform(-2.0, 2.0, shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


# name: (function, input sampler)
UNARY = {
    "neg": (lambda x: -x, generic),
    "exp": (ad.exp, generic),
    "log": (ad.log, positive),
    "log1p": (ad.log1p, lambda r, s: r.uniform(-0.5, 2.0, s)),
    "expm1": (ad.expm1, generic),
    "sqrt": (ad.sqrt, positive),
    "rsqrt": (ad.rsqrt, positive),
    "sin": (ad.sin, generic),
    "cos": (ad.cos, generic),
    "tanh": (ad.tanh, generic),
    "sigmoid": (ad.sigmoid, generic),
    "erf": (ad.erf, generic),
    "relu": (ad.relu, away_from_zero),
    "leaky_relu": (lambda x: ad.ops.elementwise.leaky_relu(x, 0.2), away_from_zero),
    "abs": (ad.abs, away_from_zero),
    "abs_operator": (lambda x: abs(x), away_from_zero),
    "square": (ad.square, generic),
    "reciprocal": (lambda x: x.reciprocal(), positive),
    "log2": (lambda x: x.log2(), positive),
    "clamp": (lambda x: ad.clamp(x, -0.5, 0.5),
              lambda r, s: r.choice([-1.0, 1.0], s) * r.uniform(0.6, 2.0, s)),
    "clamp_inside": (lambda x: x.clamp(min=-3.0, max=3.0), generic),
    "clamp_min_only": (lambda x: x.clamp(min=0.05), away_from_zero),
    "clone": (ad.Tensor.clone, generic),
    "pow_2": (lambda x: x ** 2, generic),
    "pow_3": (lambda x: x ** 3, generic),
    "pow_0": (lambda x: x ** 0, generic),
    "pow_1": (lambda x: x ** 1, generic),
    "pow_half": (lambda x: x ** 0.5, positive),
    "pow_neg": (lambda x: x ** -1.5, positive),
    "rpow": (lambda x: 2.0 ** x, generic),
    "radd": (lambda x: 1.5 + x, generic),
    "rsub": (lambda x: 1.5 - x, generic),
    "rmul": (lambda x: 3 * x, generic),
    "rdiv": (lambda x: 2.0 / x, positive),
    "sub_scalar": (lambda x: x - 0.25, generic),
    "div_scalar": (lambda x: x / 4.0, generic),
    "astype_roundtrip": (lambda x: x.float().double(), generic),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@FEW
@given(shape=shapes, seed=seeds)
def test_unary_gradients(name, shape, seed):
    fn, sample = UNARY[name]
    x = leaf(sample(np.random.default_rng(seed), shape))
    if name == "astype_roundtrip":
        # through float32 the values round at 1e-7 relative: only check the shape/dtype path
        out = fn(x)
        assert out.shape == x.shape and out.dtype == np.float64
        (g,) = ad.grad(out.sum(), [x])
        np.testing.assert_array_equal(g.numpy(), np.ones(shape))
        return
    out = fn(x)
    assert out.shape == x.shape
    assert gradcheck(fn, [x])


def _offset_pair(rng, sa, sb):
    """a near integers, b near half-integers: |a - b| >= 0.1 for every broadcast pair."""
    a = rng.integers(-2, 3, sa) + rng.uniform(-0.2, 0.2, sa)
    b = rng.integers(-2, 3, sb) + 0.5 + rng.uniform(-0.2, 0.2, sb)
    return a, b


BINARY = {
    "add": (lambda a, b: a + b, None),
    "sub": (lambda a, b: a - b, None),
    "mul": (lambda a, b: a * b, None),
    "div": (lambda a, b: a / b, "b_away"),
    "pow": (lambda a, b: a ** b, "a_positive"),
    "maximum": (ad.maximum, "offset"),
    "minimum": (ad.minimum, "offset"),
    "max_tensor": (lambda a, b: ad.max(a, b), "offset"),
    "add_fn": (ad.add, None),
    "mul_method": (lambda a, b: a.mul(b), None),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@FEW
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                  min_side=0, max_side=3), seed=seeds)
def test_binary_gradients_broadcast(name, shapes, seed):
    fn, kind = BINARY[name]
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    if kind == "offset":
        a, b = _offset_pair(rng, sa, sb)
    else:
        a, b = generic(rng, sa), generic(rng, sb)
        if kind == "b_away":
            b = away_from_zero(rng, sb, 0.5)
        if kind == "a_positive":
            a = positive(rng, sa)
    ta, tb = leaf(a), leaf(b)
    out = fn(ta, tb)
    assert out.shape == shapes.result_shape
    (ga, gb) = ad.grad(out.sum(), [ta, tb])
    assert ga.shape == sa and gb.shape == sb  # unbroadcast back to each input's shape
    assert gradcheck(fn, [ta, tb])


@FEW
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                  min_side=0, max_side=3), seed=seeds)
def test_where_gradients_broadcast(shapes, seed):
    rng = np.random.default_rng(seed)
    sc, sa, sb = shapes.input_shapes
    cond = ad.tensor(rng.random(sc) < 0.5)
    a, b = leaf(generic(rng, sa)), leaf(generic(rng, sb))
    out = ad.where(cond, a, b)
    expect = np.where(cond.numpy(), a.numpy(), b.numpy())
    np.testing.assert_array_equal(out.numpy(), expect)
    ga, gb = ad.grad(out.sum(), [a, b])
    # each element of the output comes from exactly one of a, b
    full = np.broadcast_to(cond.numpy(), shapes.result_shape)
    np.testing.assert_array_equal(ga.numpy(), _sum_to(full.astype(float), sa))
    np.testing.assert_array_equal(gb.numpy(), _sum_to((~full).astype(float), sb))
    assert gradcheck(lambda a, b: ad.where(cond, a, b), [a, b])


def _sum_to(arr, shape):
    lead = arr.ndim - len(shape)
    arr = arr.sum(axis=tuple(range(lead))) if lead else arr
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and arr.shape[i] != 1)
    return arr.sum(axis=axes, keepdims=True) if axes else arr


def test_where_with_scalar_branches_and_masked_constants():
    x = leaf([-1.0, 2.0, -3.0])
    out = ad.where(x > 0, x, 0.0)
    np.testing.assert_array_equal(out.numpy(), [0.0, 2.0, 0.0])
    (g,) = ad.grad(out.sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [0.0, 1.0, 0.0])
    with pytest.raises(TypeError, match="where"):
        ad.where(np.array([True]), 1.0, 2.0)
    with pytest.raises(ValueError, match=r"where: condition \(4,\), a \(3,\) and b \(\)"):
        ad.where(ad.ones(4) > 0, x, 0.0)


# --------------------------------------------------------------------------- subgradients
def _g(fn, values):
    x = leaf(values)
    (g,) = ad.grad(fn(x).sum(), [x])
    return g.numpy()


def test_subgradients_at_kinks_match_pytorch_conventions():
    np.testing.assert_array_equal(_g(ad.relu, [0.0, 1.0, -1.0]), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(_g(ad.abs, [0.0, 2.0, -2.0]), [0.0, 1.0, -1.0])
    leaky = lambda x: ad.ops.elementwise.leaky_relu(x, 0.1)  # noqa: E731
    np.testing.assert_allclose(_g(leaky, [0.0, 1.0, -1.0]), [0.1, 1.0, 0.1], rtol=0)
    # clamp passes the gradient at the bounds themselves (PyTorch: min <= x <= max)
    np.testing.assert_array_equal(
        _g(lambda x: x.clamp(-1.0, 1.0), [-1.0, 1.0, 0.0, 2.0, -2.0]), [1, 1, 1, 0, 0])


def test_maximum_minimum_split_ties_evenly():
    a, b = leaf([1.0, 2.0, 3.0]), leaf([1.0, 0.0, 5.0])
    for op, wa in ((ad.maximum, [0.5, 1.0, 0.0]), (ad.minimum, [0.5, 0.0, 1.0])):
        ga, gb = ad.grad(op(a, b).sum(), [a, b])
        np.testing.assert_array_equal(ga.numpy(), wa)
        np.testing.assert_array_equal(gb.numpy(), 1.0 - np.array(wa))


def test_pow_exponent_gradient_and_zero_base():
    # d/db a^b = a^b log a; at a = 0 the engine uses 0 (a^b = 0 there for b > 0)
    a, b = leaf([0.0, 2.0]), leaf([2.0, 3.0])
    ga, gb = ad.grad((a ** b).sum(), [a, b])
    np.testing.assert_allclose(gb.numpy(), [0.0, 8.0 * np.log(2.0)], rtol=1e-15)
    np.testing.assert_allclose(ga.numpy(), [0.0, 12.0], rtol=1e-15)
    # x ** 0 has gradient 0 everywhere, including x = 0 (no 0 * inf)
    np.testing.assert_array_equal(_g(lambda x: x ** 0, [0.0, 3.0]), [0.0, 0.0])


def test_comparisons_and_rounding_carry_no_gradient():
    x = leaf([-1.5, 0.0, 2.5])
    for out in (x < 0, x <= 0, x > 0, x >= 0, x == 0, x != 0, ad.isfinite(x), ad.isnan(x),
                x.floor(), x.ceil(), x.round(), x.sign(), ~(x > 0)):
        assert not out.requires_grad
    np.testing.assert_array_equal((x == 0).numpy(), [False, True, False])
    np.testing.assert_array_equal(x.sign().numpy(), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal((~(x > 0)).numpy(), [True, True, False])
    for method, ref in (("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                        ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)):
        out = getattr(x, method)(0.0)
        assert not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), ref(x.numpy(), 0.0))
        np.testing.assert_array_equal(getattr(x, method)(x.detach().flip(0)).numpy(),
                                      ref(x.numpy(), x.numpy()[::-1]))


# --------------------------------------------------------------------------- stability
@pytest.mark.parametrize("big", [1e4, -1e4, 750.0, -750.0, 30.0, -30.0])
def test_sigmoid_and_tanh_values_and_derivatives_at_extreme_logits(big):
    """Values and derivatives against closed forms written with exp(-|x|) (no overflow):
    sigmoid'(x) = e / (1 + e)^2 and tanh'(x) = 4 e2 / (1 + e2)^2, e = exp(-|x|),
    e2 = exp(-2|x|). The engine's rules are y (1 - y) and 1 - y^2 from the rounded output,
    so for large positive x, 1 - y carries an absolute error of one ulp of 1 (1.1e-16):
    atol states that, and nothing looser. Moderate points pin the formulas themselves."""
    from scipy.special import expit  # host-side reference
    x_host = np.array([big, 0.0, 0.5, -2.0])
    x = leaf(x_host)
    e, e2 = np.exp(-np.abs(x_host)), np.exp(-2 * np.abs(x_host))
    for fn, value, slope in ((ad.sigmoid, expit(x_host), e / (1 + e) ** 2),
                             (ad.tanh, np.tanh(x_host), 4 * e2 / (1 + e2) ** 2)):
        y = fn(x)
        np.testing.assert_allclose(y.numpy(), value, rtol=1e-15, atol=0, err_msg=fn.__name__)
        (g,) = ad.grad(y.sum(), [x])
        np.testing.assert_allclose(g.numpy(), slope, rtol=1e-14, atol=2.3e-16,
                                   err_msg=f"{fn.__name__}'")
    assert ad.sigmoid(leaf([big])).numpy()[0] == pytest.approx(expit(big), rel=1e-15)


def test_sigmoid_float32_extremes_stay_float32_and_finite():
    x = ad.tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32), requires_grad=True)
    y = ad.sigmoid(x)
    assert y.dtype == np.float32 and np.isfinite(y.numpy()).all()
    (g,) = ad.grad(y.sum(), [x])
    assert g.dtype == np.float32 and np.isfinite(g.numpy()).all()


def test_logsigmoid_values_and_derivative_are_exact_at_extremes():
    """F.logsigmoid(x) = -softplus(-x) = -log(1 + e^-x), derivative sigmoid(-x), both
    against references that never form log(0): finite and exact to rounding at +-1e4."""
    import autodiff.functional as F
    from scipy.special import expit  # host-side reference
    x_host = np.array([-1e4, -745.0, -10.0, 0.0, 10.0, 745.0, 1e4])
    x = leaf(x_host)
    y = F.logsigmoid(x)
    np.testing.assert_allclose(y.numpy(), -np.logaddexp(0.0, -x_host), rtol=1e-15, atol=0)
    assert y.numpy()[0] == -1e4 and y.numpy()[-1] == 0.0
    (g,) = ad.grad(y.sum(), [x])
    # sigmoid(-x), each branch in its accurate form. Not SciPy's expit here: expit(-745)
    # flushes to 0, while the correctly rounded value is 4.94e-324 (mpmath, 50 digits)
    e = np.exp(-np.abs(x_host))
    exact = np.where(x_host >= 0, e / (1.0 + e), 1.0 / (1.0 + e))
    np.testing.assert_allclose(expit(-x_host)[x_host != 745.0], exact[x_host != 745.0],
                               rtol=1e-15, atol=0)
    np.testing.assert_allclose(g.numpy(), exact, rtol=1e-15, atol=0)


def test_erf_values():
    from scipy.special import erf  # host-side reference values
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(ad.erf(ad.tensor(x)).numpy(), erf(x), rtol=1e-15)


def test_binary_shape_mismatch_names_op_and_shapes():
    a, b = leaf(np.ones((2, 3))), leaf(np.ones((4,)))
    for op, name in ((ad.add, "add"), (ad.sub, "sub"), (ad.mul, "mul"), (ad.div, "div"),
                     (ad.maximum, "maximum"), (ad.minimum, "minimum")):
        with pytest.raises(ValueError, match=rf"{name}.*\(2, 3\).*\(4,\)"):
            op(a, b)


@pytest.mark.parametrize("name", ["softplus", "logsigmoid", "log_softmax", "softmax",
                                  "logsumexp", "sigmoid", "bce_with_logits"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_composites_at_logits_of_1e4(name, dtype):
    F = pytest.importorskip("autodiff.functional")
    x = ad.tensor(np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4]], dtype=dtype),
                  requires_grad=True)
    fns = {
        "softplus": lambda t: F.softplus(t), "logsigmoid": lambda t: F.logsigmoid(t),
        "log_softmax": lambda t: F.log_softmax(t, dim=1), "softmax": lambda t: F.softmax(t, dim=1),
        "logsumexp": lambda t: F.logsumexp(t, 1), "sigmoid": ad.sigmoid,
        "bce_with_logits": lambda t: F.binary_cross_entropy_with_logits(
            t, ad.tensor(np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=dtype))),
    }
    y = fns[name](x)
    assert y.dtype == dtype
    assert np.isfinite(y.numpy()).all(), f"{name}: {y.numpy()}"
    (g,) = ad.grad((y * y.detach().sign()).sum() if y.ndim else y, [x])
    assert g.dtype == dtype
    assert np.isfinite(g.numpy()).all(), f"{name} gradient: {g.numpy()}"


def test_stable_composite_values_at_extremes():
    F = pytest.importorskip("autodiff.functional")
    x = ad.tensor([-1e4, 0.0, 1e4])
    np.testing.assert_allclose(F.softplus(x).numpy(), [0.0, np.log(2.0), 1e4], rtol=1e-15)
    np.testing.assert_allclose(F.logsigmoid(x).numpy(), [-1e4, -np.log(2.0), 0.0], rtol=1e-15)
    np.testing.assert_allclose(F.log_softmax(x, dim=0).numpy(), [-2e4, -1e4, 0.0], rtol=1e-15)


def test_clip_alias_and_sum_to_size():
    x = leaf([[-2.0, 0.5, 3.0]])
    np.testing.assert_array_equal(x.clip(-1.0, 1.0).numpy(), [[-1.0, 0.5, 1.0]])
    y = leaf(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(y.sum_to_size((1, 3)).numpy(), [[3.0, 5.0, 7.0]])
    assert gradcheck(lambda t: t.sum_to_size((2, 1)), [y])
    assert gradcheck(lambda t: t.clip(min=0.2), [leaf([0.1, 0.5, 3.0])])
