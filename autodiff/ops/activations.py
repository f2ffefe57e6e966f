"""Fused primitives of the activations and the softmax family.

They are primitives, not composites, because a composite would be slower or wrong at a point:

* ``Softmax`` / ``LogSoftmax``: one fused forward each (max-shifted), backward rules written
  with the saved output so they can be differentiated again (softmax and attention are
  on every hot path).
* ``Gelu``/``GeluGrad`` and ``Silu``/``SiluGrad``: fused forwards for the activations that
  U-Nets and Transformers apply to every feature; each derivative is a primitive too, whose
  own backward is written in Tensor ops.
* ``Softplus`` (beta = 1, no threshold): ``max(z, 0) + log1p(exp(-|z|))`` never overflows;
  its backward is ``sigmoid(z)``. A composite of ``relu`` and ``abs`` would get the
  derivative wrong at exactly z = 0 (abs'(0) = 0 loses the 1/2) and the second
  derivative there too.

The user-facing functions (argument checks, ``dim`` handling, beta and threshold) are in
``autodiff.functional.activations``.
"""
import math

from .. import backend as B
from ..tensor import Function, SaveOutputFunction
from . import elementwise as ew

__all__ = []   # reached through autodiff.functional (softmax, gelu, ...), not exported here


# --------------------------------------------------------------------------- softmax family
class Softmax(SaveOutputFunction):
    """y_i = exp(x_i - m) / sum_j exp(x_j - m) with m = max_j x_j (m cancels exactly).

    Backward (vector-Jacobian product): dL/dx = y * (g - sum_j g_j y_j), in Tensor ops on
    the saved output, so it is itself differentiable.
    """

    def forward(self, a, dim):
        self.dim = dim
        if a.shape[dim] == 0:       # nothing to normalise (and no max to shift by)
            return a.copy()
        xp = B.xp
        e = xp.exp(a - a.max(axis=dim, keepdims=True))
        return e / e.sum(axis=dim, keepdims=True)

    def backward(self, g):
        y = self.saved_output()
        return y * (g - (g * y).sum(self.dim, keepdim=True))


class LogSoftmax(SaveOutputFunction):
    """y_i = x_i - logsumexp(x), max-shifted so no exp overflows.

    Backward: dL/dx = g - exp(y) * sum_j g_j (exp(y) is the softmax).
    """

    def forward(self, a, dim):
        self.dim = dim
        if a.shape[dim] == 0:
            return a.copy()
        xp = B.xp
        shifted = a - a.max(axis=dim, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))

    def backward(self, g):
        y = self.saved_output()
        return g - ew.exp(y) * g.sum(self.dim, keepdim=True)



# --------------------------------------------------------------------------- softplus
class Softplus(Function):
    """softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|); d/dz = sigmoid(z)."""

    def forward(self, a):
        xp = B.xp
        return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))

    def backward(self, g):
        return g * ew.sigmoid(self.inputs[0])



# --------------------------------------------------------------------------- smooth activations
_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


_sigmoid_array = ew._sigmoid_array   # the engine's one sigmoid kernel (see there)


def _erf_array(a):
    return ew.Erf().forward(a)   # the engine's one erf kernel (SciPy on the host, CuPy on GPU)


class Gelu(Function):
    """GELU in one pass of array code; backward g * gelu'(x) through ``GeluGrad``."""

    def forward(self, a, approximate):
        self.approximate = approximate
        if approximate == "tanh":
            self.cdf = None
            inner = (a + a * a * a * 0.044715) * _SQRT_2_OVER_PI
            return a * 0.5 * (1.0 + B.xp.tanh(inner))
        # Kept for the backward: erf is by far the most expensive part (SciPy's is scalar
        # code, ~80x the cost of exp per element), so it is evaluated once, not twice.
        self.cdf = 0.5 * (1.0 + _erf_array(a * _SQRT1_2))
        return a * self.cdf

    def backward(self, g):
        return g * GeluGrad.apply(self.inputs[0], approximate=self.approximate, cdf=self.cdf)


class GeluGrad(Function):
    """gelu'(x), fused; its backward is gelu''(x) in Tensor ops (so third order works too).

    Exact:  gelu' = Phi(x) + x phi(x),            gelu'' = phi(x) (2 - x^2)
    Tanh:   with u = k (x + c x^3), t = tanh(u), u' = k (1 + 3 c x^2), u'' = 6 k c x:
            gelu' = (1 + t) / 2 + x (1 - t^2) u' / 2
            gelu'' = (1 - t^2) (u' + x (u'' - 2 t u'^2) / 2)
    """

    def forward(self, a, approximate, cdf=None):
        self.approximate = approximate
        xp = B.xp
        if approximate == "tanh":
            t = xp.tanh((a + a * a * a * 0.044715) * _SQRT_2_OVER_PI)
            du = (1.0 + a * a * (3 * 0.044715)) * _SQRT_2_OVER_PI
            return 0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * du
        pdf = xp.exp(a * a * -0.5) * _INV_SQRT_2PI
        if cdf is None:
            cdf = 0.5 * (1.0 + _erf_array(a * _SQRT1_2))
        return cdf + a * pdf

    def backward(self, h):
        x = self.inputs[0]
        if self.approximate == "tanh":
            t = ew.tanh((x + x * x * x * 0.044715) * _SQRT_2_OVER_PI)
            du = (x * x * (3 * 0.044715) + 1.0) * _SQRT_2_OVER_PI
            ddu = x * (6 * 0.044715 * _SQRT_2_OVER_PI)
            return h * ((1.0 - t * t) * (du + x * (ddu - t * du * du * 2.0) * 0.5))
        pdf = ew.exp(x * x * -0.5) * _INV_SQRT_2PI
        return h * (pdf * (2.0 - x * x))


class Silu(Function):
    """silu(x) = x sigmoid(x), fused; backward g * silu'(x) through ``SiluGrad``."""

    def forward(self, a):
        out = _sigmoid_array(a)
        out *= a
        return out

    def backward(self, g):
        return g * SiluGrad.apply(self.inputs[0])


class SiluGrad(Function):
    """silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x); backward: silu''(x) in Tensor ops,
    s (1 - s) (2 + x (1 - 2 s))."""

    def forward(self, a):
        s = _sigmoid_array(a)
        # s (1 + a (1 - s)), in place on one fresh buffer (large activations: fewer passes
        # and allocations).
        out = 1.0 - s
        out *= a
        out += 1.0
        out *= s
        return out

    def backward(self, h):
        x = self.inputs[0]
        s = ew.sigmoid(x)
        return h * (s * (1.0 - s) * (x * (1.0 - s * 2.0) + 2.0))
