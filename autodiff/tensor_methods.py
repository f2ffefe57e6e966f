"""Tensor's operators and methods, bound to the functions in ``autodiff.ops``.

Kept apart from ``tensor.py`` so the graph engine reads on its own; every method here
is a one-line delegation with PyTorch's name and argument order.
"""
from .tensor import Tensor
from .ops import elementwise as ew, reduce as rd, shape as sh, linalg as la
from .functional import activations as fa


def _rsub(a, b):
    return ew.sub(b, a)


def _rdiv(a, b):
    return ew.div(b, a)


def _rpow(a, b):
    return ew.pow(b, a)


def _rmatmul(a, b):
    return la.matmul(b, a)


def _view(self, *shape):
    return sh.reshape(self, *shape)


def _size_expand_as(self, other):
    return sh.expand(self, other.shape)


def _sum(self, dim=None, keepdim=False, dtype=None):
    return rd.sum(self, dim, keepdim, dtype)


def _sum_to_size(self, *size):
    """``x.sum_to_size(2, 3)`` or ``x.sum_to_size((2, 3))``, as PyTorch accepts both."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return rd.sum_to(self, size)


def _T(self):
    return sh.permute(self, tuple(reversed(range(self.ndim))))


def _mT(self):
    return sh.transpose(self, -1, -2)


_BINDINGS = {
    "softmax": fa.softmax, "log_softmax": fa.log_softmax,
    "__add__": ew.add, "__radd__": ew.add, "__sub__": ew.sub, "__rsub__": _rsub,
    "__mul__": ew.mul, "__rmul__": ew.mul, "__truediv__": ew.div, "__rtruediv__": _rdiv,
    "__pow__": ew.pow, "__rpow__": _rpow, "__matmul__": la.matmul, "__rmatmul__": _rmatmul,
    "__neg__": ew.neg, "__abs__": ew.abs, "__getitem__": sh.getitem,
    "__lt__": ew.lt, "__le__": ew.le, "__gt__": ew.gt, "__ge__": ew.ge,
    "__invert__": ew.logical_not,
    "add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "neg": ew.neg, "pow": ew.pow,
    "matmul": la.matmul, "exp": ew.exp, "log": ew.log, "log1p": ew.log1p, "expm1": ew.expm1,
    "sqrt": ew.sqrt, "rsqrt": ew.rsqrt, "sin": ew.sin, "cos": ew.cos, "tanh": ew.tanh,
    "sigmoid": ew.sigmoid, "relu": ew.relu, "abs": ew.abs, "sign": ew.sign, "square": ew.square,
    "reciprocal": ew.reciprocal, "log2": ew.log2, "erf": ew.erf, "maximum": ew.maximum,
    "minimum": ew.minimum, "clamp": ew.clamp, "clip": ew.clamp, "floor": ew.floor, "ceil": ew.ceil,
    "round": ew.round, "isfinite": ew.isfinite, "isnan": ew.isnan,
    "lt": ew.lt, "le": ew.le, "gt": ew.gt, "ge": ew.ge, "eq": ew.eq, "ne": ew.ne,
    "sum": _sum, "mean": rd.mean, "var": rd.var, "std": rd.std, "max": rd.max, "min": rd.min,
    "amax": rd.amax, "amin": rd.amin, "argmax": rd.argmax, "argmin": rd.argmin, "prod": rd.prod,
    "logsumexp": rd.logsumexp, "cumsum": rd.cumsum, "norm": rd.norm, "all": rd.all, "any": rd.any,
    "sum_to_size": _sum_to_size,
    "reshape": sh.reshape, "view": _view, "permute": sh.permute, "transpose": sh.transpose,
    "movedim": sh.movedim, "squeeze": sh.squeeze, "unsqueeze": sh.unsqueeze,
    "flatten": sh.flatten, "expand": sh.expand, "expand_as": _size_expand_as,
    "gather": sh.gather, "scatter_add": sh.scatter_add, "index_select": sh.index_select,
    "split": sh.split, "chunk": sh.chunk, "unbind": sh.unbind, "flip": sh.flip, "roll": sh.roll,
    "masked_fill": sh.masked_fill, "tril": sh.tril, "triu": sh.triu, "diagonal": sh.diagonal,
    "det": la.det, "slogdet": la.slogdet, "logdet": la.logdet, "inverse": la.inv,
}


def _install():
    for name, fn in _BINDINGS.items():
        setattr(Tensor, name, fn)
    # == and != compare elementwise like PyTorch; Tensor stays hashable by identity.
    Tensor.__eq__ = ew.eq
    Tensor.__ne__ = ew.ne
    Tensor.__hash__ = Tensor.__dict__["__hash__"]  # defining __eq__ would otherwise drop it
    Tensor.T = property(_T)
    Tensor.mT = property(_mT)


_install()
