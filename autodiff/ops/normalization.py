"""The fused normalisation primitive behind layer_norm, group_norm and batch_norm.

The layers themselves (affine weight and bias, running statistics, argument checks) are in
``autodiff.functional.normalization``.
"""
from .. import backend as B
from ..tensor import SaveOutputFunction, is_grad_enabled
from . import elementwise as ew
from ._util import const

__all__ = []   # reached through autodiff.functional (layer_norm, group_norm, batch_norm)


def _rstd(x, axes, eps):
    """1 / sqrt(var + eps) over ``axes`` (biased variance), in differentiable Tensor ops."""
    centred = x - x.mean(axes, keepdim=True)
    return ew.rsqrt((centred * centred).mean(axes, keepdim=True) + float(eps))


class Normalize(SaveOutputFunction):
    """y = (x - mean(x)) / sqrt(var(x) + eps) over ``axes`` (biased variance), fused.

    The composite of ~10 elementwise ops made every norm layer an order of magnitude
    slower than PyTorch's fused kernels; this primitive does the forward in one pass of
    array code and keeps the backward short. With r = 1/sqrt(var + eps) and n the number
    of values normalised together, the vector-Jacobian product is

        dL/dx = r * (g - mean(g) - y * mean(g * y))

    written in Tensor ops on the saved output y. For first-order gradients r is the
    constant saved by the forward; when the backward is itself recorded
    (create_graph=True), r is recomputed from x in Tensor ops so that its dependence on x
    is differentiated too (y's dependence goes through this rule again).
    """

    def forward(self, a, axes, eps):
        self.axes, self.eps = axes, eps
        n = 1
        for ax in axes:
            n *= a.shape[ax]
        inv_n = 1.0 / n if n else 0.0      # n = 0: empty groups, nothing to normalise
        centred = a - a.sum(axis=axes, keepdims=True) * inv_n
        var = (centred * centred).sum(axis=axes, keepdims=True) * inv_n
        self.rstd = 1.0 / B.xp.sqrt(var + eps)
        return centred * self.rstd

    def backward(self, g):
        axes = self.axes
        y = self.saved_output()
        if is_grad_enabled():
            rstd = _rstd(self.inputs[0], axes, self.eps)
        else:
            rstd = const(self.rstd)
        return rstd * (g - g.mean(axes, keepdim=True) - y * (g * y).mean(axes, keepdim=True))
