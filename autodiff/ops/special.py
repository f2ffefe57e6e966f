"""Special functions as primitives: log Phi, the log of the standard normal CDF.

``log_ndtr`` is its own primitive because the composite log((1 + erf(z / sqrt 2)) / 2)
rounds Phi(z) to 0 below z ~ -8.3 (log gives -inf) and loses all relative accuracy in the
upper tail; SciPy's (and cupyx's) ``log_ndtr`` is accurate in both tails.
"""
import math

from .. import backend as B
from ..tensor import Function
from . import elementwise as ew

__all__ = ["log_ndtr"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class LogNdtr(Function):
    """log Phi(z). d/dz = phi(z) / Phi(z) = exp(log phi(z) - log Phi(z)), with
    log phi(z) = -z^2 / 2 - log(2 pi) / 2, written with this op itself, so higher
    derivatives exist too."""

    def forward(self, a):
        return B.special().log_ndtr(a).astype(a.dtype, copy=False)

    def backward(self, g):
        z = self.inputs[0]
        return g * ew.exp(-0.5 * (z * z) - _HALF_LOG_2PI - LogNdtr.apply(z))


def log_ndtr(z):
    """log Phi(z) for a Tensor z, differentiable (any order). Shape unchanged."""
    return LogNdtr.apply(z)
