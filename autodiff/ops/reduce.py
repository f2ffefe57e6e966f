"""Reductions and the broadcast pair.

``sum_to`` and ``broadcast_to`` are each other's backward: summing a broadcast
gradient back to an input's shape is the one place where NumPy broadcasting is undone.

Ties in ``amax``/``amin`` (and ``max``/``min`` without ``dim``) share the gradient evenly,
as PyTorch does; ``max(dim=...)`` sends it to the returned index (the first maximum).
"""
from collections import namedtuple

from .. import backend as B
from ..tensor import Function, SaveOutputFunction, Tensor
from ._util import const, normalize_dim, normalize_dims
from . import elementwise as ew

__all__ = [
    "sum", "mean", "var", "std", "amax", "amin", "max", "min", "prod", "logsumexp",
    "cumsum", "sum_to", "broadcast_to", "argmax", "argmin", "norm", "all", "any",
]

MaxResult = namedtuple("MaxResult", ["values", "indices"])


class SumTo(Function):
    """Sum over the axes that NumPy broadcasting added or stretched, giving ``shape``."""

    def forward(self, a, shape):
        self.in_shape = a.shape
        lead = a.ndim - len(shape)
        # a list, not any()/all(): those names are this module's ops here
        if lead < 0 or [n for n, m in zip(shape, a.shape[lead:]) if n != 1 and n != m]:
            # PyTorch's rule: ``shape`` must broadcast to the input's shape
            raise ValueError(f"sum_to: cannot sum shape {a.shape} to {shape}: the target "
                             f"must broadcast to the input (each dim 1 or equal, no extra dims)")
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and a.shape[lead + i] != 1)
        out = a.sum(axis=axes, keepdims=True) if axes else a
        if lead:
            out = out.reshape(shape)
        return out

    def backward(self, g):
        return BroadcastTo.apply(g, shape=self.in_shape)


class BroadcastTo(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return B.xp.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(
                f"expand/broadcast_to: shape {tuple(a.shape)} cannot be broadcast to "
                f"{tuple(shape)}") from None

    def backward(self, g):
        return SumTo.apply(g, shape=self.in_shape)


def sum_to(a, shape):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    return SumTo.apply(a, shape=shape)


def broadcast_to(a, shape):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    return BroadcastTo.apply(a, shape=shape)


def _keep(shape, axes):
    """``shape`` with the reduced ``axes`` set to 1 (keepdim form)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, a, axes, keepdim):
        self.in_shape, self.axes, self.keepdim = a.shape, axes, keepdim
        return a.sum(axis=axes, keepdims=keepdim)

    def backward(self, g):
        if not self.keepdim:
            g = g.reshape(_keep(self.in_shape, self.axes))
        return BroadcastTo.apply(g, shape=self.in_shape)


def sum(a, dim=None, keepdim=False, dtype=None):
    """Sum over ``dim`` (int, tuple, or None for all)."""
    if dtype is not None:
        a = ew.astype(a, dtype)
    elif a.data.dtype.kind == "b":
        a = ew.astype(a, B.numpy.int64)
    axes = normalize_dims(dim, a.ndim, "sum")
    return Sum.apply(a, axes=axes, keepdim=keepdim)


def _count(a, axes):
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    return n


def mean(a, dim=None, keepdim=False):
    axes = normalize_dims(dim, a.ndim, "mean")
    if a.data.dtype.kind not in "fc":
        raise TypeError(f"mean needs a floating point tensor, got dtype {a.dtype}")
    n = _count(a, axes)
    return Sum.apply(a, axes=axes, keepdim=keepdim) * (1.0 / n if n else float("nan"))


def var(a, dim=None, unbiased=True, keepdim=False, correction=None):
    """Variance sum((x - mean)^2) / (N - correction); correction = 1 when unbiased (default)."""
    if correction is None:
        correction = 1 if unbiased else 0
    axes = normalize_dims(dim, a.ndim, "var")
    n = _count(a, axes)
    centred = a - mean(a, dim=axes, keepdim=True)
    scale = 1.0 / (n - correction) if n > correction else float("nan")
    return Sum.apply(centred * centred, axes=axes, keepdim=keepdim) * scale


def std(a, dim=None, unbiased=True, keepdim=False, correction=None):
    """sqrt(var); where the variance is exactly 0 the gradient is 0 (PyTorch's choice)
    instead of the 0 * inf = nan that sqrt'(0) would give."""
    v = var(a, dim=dim, unbiased=unbiased, keepdim=keepdim, correction=correction)
    return _sqrt_zero_subgradient(v)


def _sqrt_zero_subgradient(v):
    """sqrt(v) with derivative 0 where v == 0 (std of constant data, norm of a zero vector)."""
    zero = v.data == 0
    if bool(zero.any()):
        return ew.where(zero, 0.0, ew.sqrt(ew.where(zero, 1.0, v)))
    return ew.sqrt(v)


class _Extreme(Function):
    """amax/amin over axes; the gradient is shared evenly by the tied extremes."""

    reducer = None

    def forward(self, a, axes, keepdim):
        self.axes, self.keepdim, self.in_shape = axes, keepdim, a.shape
        out = getattr(a, self.reducer)(axis=axes, keepdims=True)
        mask = (a == out)
        # Stored once in the input's dtype (not as float64 converted on every backward).
        self.weights = (mask / mask.sum(axis=axes, keepdims=True)).astype(a.dtype, copy=False)
        return out if keepdim else out.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    def backward(self, g):
        if not self.keepdim:
            g = g.reshape(_keep(self.in_shape, self.axes))
        return g * const(self.weights.astype(g.dtype, copy=False))


class AMax(_Extreme):
    reducer = "max"


class AMin(_Extreme):
    reducer = "min"


def _check_nonempty(a, axes, op):
    for ax in axes:
        if a.shape[ax] == 0:
            raise ValueError(f"{op}: cannot reduce over empty dimension {ax} of shape {tuple(a.shape)}")


def amax(a, dim=None, keepdim=False):
    axes = normalize_dims(dim, a.ndim, "amax")
    _check_nonempty(a, axes, "amax")
    return AMax.apply(a, axes=axes, keepdim=keepdim)


def amin(a, dim=None, keepdim=False):
    axes = normalize_dims(dim, a.ndim, "amin")
    _check_nonempty(a, axes, "amin")
    return AMin.apply(a, axes=axes, keepdim=keepdim)


def argmax(a, dim=None, keepdim=False):
    if dim is None:
        return Tensor(B.xp.argmax(a.data.reshape(-1)))
    dim = normalize_dim(dim, a.ndim, "argmax")
    return Tensor(B.xp.argmax(a.data, axis=dim, keepdims=keepdim))


def argmin(a, dim=None, keepdim=False):
    if dim is None:
        return Tensor(B.xp.argmin(a.data.reshape(-1)))
    dim = normalize_dim(dim, a.ndim, "argmin")
    return Tensor(B.xp.argmin(a.data, axis=dim, keepdims=keepdim))


def _max_along(a, dim, keepdim, arg):
    from .shape import gather
    dim = normalize_dim(dim, a.ndim, "max")
    _check_nonempty(a, (dim,), "max")
    idx = arg(a.data, axis=dim, keepdims=True)
    values = gather(a, dim, const(idx))
    if not keepdim:
        values = values.squeeze(dim)
        idx = idx.squeeze(axis=dim)
    return MaxResult(values, Tensor(idx))


def max(a, dim=None, keepdim=False):
    """``max(a)``: the largest value; ``max(a, dim)``: (values, indices) along ``dim``."""
    if isinstance(dim, Tensor):
        return ew.maximum(a, dim)
    if dim is None:
        return amax(a)
    return _max_along(a, dim, keepdim, B.xp.argmax)


def min(a, dim=None, keepdim=False):
    """``min(a)``: the smallest value; ``min(a, dim)``: (values, indices) along ``dim``."""
    if isinstance(dim, Tensor):
        return ew.minimum(a, dim)
    if dim is None:
        return amin(a)
    return _max_along(a, dim, keepdim, B.xp.argmin)


def prod(a, dim=None, keepdim=False):
    """Product over ``dim``.

    Backward: d/dx_i prod_j x_j = prod_{j != i} x_j. Computed as out / x_i when no
    element is zero; otherwise as an explicit product of the others (O(n^2) along the
    axis), which stays exact at zeros and is itself differentiable.
    """
    if dim is None:
        return prod(a.reshape(-1), 0, keepdim=False).reshape((1,) * a.ndim if keepdim else ())
    dim = normalize_dim(dim, a.ndim, "prod")
    return Prod.apply(a, dim=dim, keepdim=keepdim)


class Prod(Function):
    def forward(self, a, dim, keepdim):
        self.dim, self.keepdim = dim, keepdim
        return a.prod(axis=dim, keepdims=keepdim)

    def backward(self, g):
        (a,) = self.inputs
        dim = self.dim
        if not self.keepdim:
            g = g.unsqueeze(dim)
        if bool((a.data != 0).all()):
            return g * prod(a, dim, keepdim=True) / a
        n = a.shape[dim]
        moved = a.movedim(dim, -1)                                  # (..., n)
        rows = moved.unsqueeze(-2).expand(moved.shape[:-1] + (n, n))  # (..., n, n): row i is x
        eye = B.xp.eye(n, dtype=bool)
        others = ew.where(eye, 1.0, rows).prod(-1)                  # (..., n): prod_{j!=i} x_j
        return g * others.movedim(-1, dim)


class LogSumExp(SaveOutputFunction):
    """log sum_i exp(a_i) over ``axes``, shifted by the maximum m so it never overflows:

        logsumexp(a) = m + log sum_i exp(a_i - m).

    Backward: d/da_i = exp(a_i - out), the softmax. A slice that is all -inf (or empty)
    gives -inf with a ZERO gradient. PyTorch returns NaN gradients there; zero is the
    deliberate choice here because fully masked rows (attention, log-mean-exp over
    impossible events) must not poison a whole batch with NaN.
    Shapes: (..., n, ...) -> reduced over ``axes`` (kept as size 1 when ``keepdim``).
    """

    def forward(self, a, axes, keepdim):
        xp = B.xp
        self.axes, self.keepdim, self.in_shape = axes, keepdim, a.shape
        kept = _keep(a.shape, axes)
        if a.size == 0:  # an empty reduction: log(0) = -inf, as PyTorch returns
            out = xp.full(kept, -xp.inf, dtype=a.dtype)
        else:
            m = a.max(axis=axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)  # all -inf (or +inf) slices: no shift
            s = xp.exp(a - m).sum(axis=axes, keepdims=True)
            # log(0) for all -inf slices, written out so NumPy emits no divide warning
            out = xp.where(s > 0, xp.log(xp.where(s > 0, s, 1)), -xp.inf).astype(a.dtype) + m
        return out if keepdim else out.reshape(
            [n for i, n in enumerate(a.shape) if i not in axes])

    def backward(self, g):
        (a,) = self.inputs
        out = self.saved_output()
        if not self.keepdim:
            shape = _keep(self.in_shape, self.axes)
            g, out = g.reshape(shape), out.reshape(shape)
        # where out = -inf every a_i is -inf: exp(a_i - 0) = 0 instead of exp(nan)
        safe_out = ew.where(out.data == -B.xp.inf, 0.0, out)
        return g * ew.exp(a - safe_out)


def logsumexp(a, dim=None, keepdim=False):
    axes = normalize_dims(dim, a.ndim, "logsumexp")
    return LogSumExp.apply(a, axes=axes, keepdim=keepdim)


class CumSum(Function):
    """Running sum along ``dim``; its backward is the reversed running sum."""

    def forward(self, a, dim):
        self.dim = dim
        return B.xp.cumsum(a, axis=dim)

    def backward(self, g):
        d = self.dim
        return g.flip(d).cumsum(d).flip(d)


def cumsum(a, dim):
    dim = normalize_dim(dim, a.ndim, "cumsum")
    if a.data.dtype.kind == "b":
        a = ew.astype(a, B.numpy.int64)
    return CumSum.apply(a, dim=dim)


def norm(a, p=2, dim=None, keepdim=False):
    """Vector p-norm (sum_i |a_i|^p)^(1/p) over ``dim`` (all elements by default); the
    gradient at 0 is 0. ``p='fro'`` is the 2-norm over ``dim`` (``Tensor.norm``'s name)."""
    if isinstance(p, str):
        if p != "fro":
            raise ValueError(f"norm: p={p!r} is not supported; use a number, inf or 'fro'")
        p = 2
    if p == 2:
        # sqrt'(0) is infinite; at an exact zero vector use subgradient 0, like PyTorch.
        return _sqrt_zero_subgradient(sum(a * a, dim=dim, keepdim=keepdim))
    if p == 0:  # the number of non-zero entries: piecewise constant, no gradient
        return sum(ew.astype(ew.ne(a, 0.0), a.dtype), dim=dim, keepdim=keepdim)
    if p == 1:
        return sum(ew.abs(a), dim=dim, keepdim=keepdim)
    if p == float("inf"):
        return amax(ew.abs(a), dim=dim, keepdim=keepdim)
    return ew.pow(sum(ew.pow(ew.abs(a), p), dim=dim, keepdim=keepdim), 1.0 / p)


def all(a, dim=None):
    return Tensor(B.xp.all(a.data, axis=dim))


def any(a, dim=None):
    return Tensor(B.xp.any(a.data, axis=dim))
