"""Gradient checking against central differences (first and second order).

For f: R^n -> R^m, a random cotangent v turns the output into the scalar
L(x) = <v, f(x)>, whose gradient the engine computes by one reverse pass. Along a random
direction u the central difference

    (L(x + eps u) - L(x - eps u)) / (2 eps) = <grad L(x), u> + O(eps^2)

must agree with the analytic value. In float64 with eps = 1e-6 the truncation error is
~eps^2 |L'''| and the rounding error ~1e-16 |L| / eps, both far below the tolerances.

Second order (as HIPS autograd's ``check_grads``): the same check applied to
x -> <w, grad L(x)>, differentiated through the recorded backward pass
(``create_graph=True``). That tests every backward rule's own backward.

On failure the check localises the error: it differences each element of the failing
input and names the input and the worst element.
"""
from . import backend as B
from .tensor import Tensor, grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Analytic and numerical derivatives disagree."""


def _scalarize(fn, cotangents):
    def scalar(*xs):
        out = fn(*xs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        total = None
        for o, v in zip(outs, cotangents):
            if o is None or not isinstance(o, Tensor) or o.dtype.kind != "f":
                continue
            term = (o * v).sum()
            total = term if total is None else total + term
        return total
    return scalar


def _random_like(t, gen):
    return Tensor(gen.normal(t.shape, t.dtype))


def _eval(scalar, xs):
    # Recording stays on: the second-order check's function calls grad() inside.
    out = scalar(*xs)
    return 0.0 if out is None else float(out.item())


def _shifted(xs, i, delta):
    ys = list(xs)
    ys[i] = Tensor(xs[i].data + delta, requires_grad=True)
    return ys


def _worst_element(scalar, xs, i, analytic, eps):
    """(flat index, analytic, numeric) of the element of input i that disagrees most."""
    xp = B.xp
    x = xs[i]
    flat = x.data.reshape(-1)
    worst = (None, 0.0, 0.0, -1.0)
    for k in range(flat.size):
        e = xp.zeros(flat.size, dtype=x.dtype)
        e[k] = eps
        e = e.reshape(x.shape)
        num = (_eval(scalar, _shifted(xs, i, e)) - _eval(scalar, _shifted(xs, i, -e))) / (2 * eps)
        ana = float(analytic.data.reshape(-1)[k]) if analytic is not None else 0.0
        err = abs(num - ana)
        if err > worst[3]:
            worst = (k, ana, num, err)
    return worst


def _check_first_order(scalar, xs, eps, atol, rtol, n_directions, gen, what):
    targets = [i for i, x in enumerate(xs) if x.requires_grad]
    out = scalar(*xs)
    if out is None or not out.requires_grad:
        analytic = [None] * len(xs)
    else:
        got = grad(out, [xs[i] for i in targets], allow_unused=True)
        analytic = [None] * len(xs)
        for i, g in zip(targets, got):
            analytic[i] = g
    for i in targets:
        if analytic[i] is not None and analytic[i].shape != xs[i].shape:
            raise GradcheckError(
                f"{what}: gradient of input {i} has shape {tuple(analytic[i].shape)}, "
                f"input has {tuple(xs[i].shape)}")
        for _ in range(n_directions):
            u = gen.normal(xs[i].shape, xs[i].dtype)
            num = (_eval(scalar, _shifted(xs, i, eps * u))
                   - _eval(scalar, _shifted(xs, i, -eps * u))) / (2 * eps)
            ana = 0.0 if analytic[i] is None else float((analytic[i].data * u).sum())
            if abs(num - ana) > atol + rtol * abs(num):
                k, a_el, n_el, _ = _worst_element(scalar, xs, i, analytic[i], eps)
                index = tuple(int(v) for v in B.numpy.unravel_index(k, xs[i].shape)) if k is not None else ()
                raise GradcheckError(
                    f"{what}: input {i} (shape {tuple(xs[i].shape)}): directional derivative "
                    f"analytic {ana:.10g} vs numerical {num:.10g}; worst element {index}: "
                    f"analytic {a_el:.10g} vs numerical {n_el:.10g}")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, n_directions=3,
              second_order=True, seed=0):
    """Check ``fn``'s gradients (and, by default, second derivatives) numerically.

    :param fn: function of Tensors returning a Tensor or a tuple of Tensors.
    :param inputs: Tensors; those with ``requires_grad=True`` are checked. Floating inputs
        must be float64 (float32 differences are too coarse to mean anything).
    :param second_order: also check the derivative of the (recorded) gradient.
    :returns: True; raises ``GradcheckError`` naming the input and worst element otherwise.
    """
    xs = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    for i, x in enumerate(xs):
        if x.requires_grad and x.dtype != B.numpy.float64:
            raise TypeError(f"gradcheck: input {i} is {x.dtype}; use float64 inputs")
    if not any(x.requires_grad for x in xs):
        raise ValueError("gradcheck: no input has requires_grad=True")
    gen = B.Generator(seed)
    out = fn(*xs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    # Integer outputs (indices from max(dim), argmax, ...) carry no gradient: no cotangent.
    cotangents = [_random_like(o, gen) if isinstance(o, Tensor) and o.dtype.kind == "f" else None
                  for o in outs]
    scalar = _scalarize(fn, cotangents)
    _check_first_order(scalar, xs, eps, atol, rtol, n_directions, gen, "first order")
    if not second_order:
        return True
    targets = [i for i, x in enumerate(xs) if x.requires_grad]
    weights = [_random_like(xs[i], gen) for i in targets]

    def grad_dot_w(*ys):
        s = scalar(*ys)
        if s is None or not s.requires_grad:
            return None
        gs = grad(s, [ys[i] for i in targets], create_graph=True, allow_unused=True)
        total = None
        for g, w in zip(gs, weights):
            if g is None:
                continue
            term = (g * w).sum()
            total = term if total is None else total + term
        return total

    # The function differenced here is itself a computed gradient: its rounding error
    # (~1e-16 |g| per evaluation) is divided by 2 eps = 2e-6, so the numerical second
    # derivative carries ~1e-10 |g| more error than the first-order one, and the truncation
    # term involves the fourth derivative of f instead of the third. Hence one decade more.
    _check_first_order(grad_dot_w, xs, eps, atol * 10, rtol * 10, n_directions, gen,
                       "second order")
    return True
