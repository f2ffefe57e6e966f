"""Activations and the softmax family, in their numerically stable forms.

The fused primitives (Softmax, LogSoftmax, Softplus, Gelu, Silu and their derivatives) are in
``autodiff.ops.activations``; this module holds the user-facing functions (argument checks,
``dim``, beta and threshold). Everything else is composed from the engine's differentiable
ops, so higher derivatives come for free.
"""
from ..tensor import Tensor
from ..ops import elementwise as ew
from ..ops import reduce as rd
from ..ops._util import normalize_dim
from ..ops.activations import Gelu, LogSoftmax, Silu, Softmax, Softplus

__all__ = [
    "softmax", "log_softmax", "logsumexp", "softplus", "logsigmoid", "gelu", "silu", "elu",
    "relu", "leaky_relu", "tanh", "sigmoid",
]


def _check_tensor(x, op, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be an autodiff Tensor, got {type(x).__name__}")


def _softmax_dim(x, dim, op):
    if dim is None:
        # PyTorch guesses a dim here with a deprecation warning; a silent guess hides bugs.
        raise ValueError(
            f"{op}: pass dim explicitly (input has shape {tuple(x.shape)}); the implicit-dim "
            f"choice is deprecated in PyTorch and not supported here")
    return normalize_dim(dim, x.ndim, op)


# --------------------------------------------------------------------------- softmax family
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(x)_i = exp(x_i) / sum_j exp(x_j) along ``dim``; shape unchanged.

    A slice that is all -inf gives NaN, as in PyTorch. ``dtype`` casts the input first.
    """
    _check_tensor(input, "softmax")
    if dtype is not None:
        input = ew.astype(input, dtype)
    return Softmax.apply(input, dim=_softmax_dim(input, dim, "softmax"))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log softmax(x)_i = x_i - log sum_j exp(x_j) along ``dim``; shape unchanged.

    Finite for logits of any finite size (the max is subtracted before exponentiating).
    """
    _check_tensor(input, "log_softmax")
    if dtype is not None:
        input = ew.astype(input, dtype)
    return LogSoftmax.apply(input, dim=_softmax_dim(input, dim, "log_softmax"))


def logsumexp(input, dim, keepdim=False):
    """log sum_i exp(x_i) over ``dim`` (int or tuple), max-shifted (``torch.logsumexp``)."""
    _check_tensor(input, "logsumexp")
    return rd.logsumexp(input, dim=dim, keepdim=keepdim)


# --------------------------------------------------------------------------- softplus family
def softplus(input, beta=1.0, threshold=20.0):
    """softplus(x) = (1/beta) log(1 + exp(beta x)), and x itself where beta x > threshold.

    The threshold reproduces PyTorch exactly (its linear branch has derivative exactly 1);
    below it the stable form max(z, 0) + log1p(exp(-|z|)) is used, so no value overflows.
    Shape unchanged.
    """
    _check_tensor(input, "softplus")
    z = input if beta == 1 else input * float(beta)
    soft = Softplus.apply(z)
    if beta != 1:
        soft = soft / float(beta)
    return ew.where(z.data > threshold, input, soft)


def logsigmoid(input):
    """log sigmoid(x) = -softplus(-x): finite for any finite x (no log(0)). Shape unchanged."""
    _check_tensor(input, "logsigmoid")
    return -Softplus.apply(-input)


# --------------------------------------------------------------------------- smooth activations
def gelu(input, approximate="none"):
    """Gaussian error linear unit (Hendrycks & Gimpel 2016).

    'none':  x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
    'tanh':  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   (their approximation)
    Shape unchanged.
    """
    _check_tensor(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(input, approximate=approximate)


def silu(input, inplace=False):
    """SiLU / swish: x * sigmoid(x) (Elfwing et al. 2018). ``inplace`` is accepted and ignored
    (the result is always a new tensor, which is what the graph needs)."""
    _check_tensor(input, "silu")
    return Silu.apply(input)


def elu(input, alpha=1.0, inplace=False):
    """ELU (Clevert et al. 2016): x for x > 0, alpha (exp(x) - 1) otherwise.

    The exponential only ever sees min(x, 0) (via ``where``), so large positive x cannot make
    exp overflow and poison the gradient with inf * 0. Derivative at 0 is alpha (PyTorch's).
    """
    _check_tensor(input, "elu")
    positive = input.data > 0
    negative_part = ew.where(positive, 0.0, input)
    return ew.where(positive, input, ew.expm1(negative_part) * float(alpha))


def relu(input, inplace=False):
    """max(x, 0); derivative 0 at x = 0 (PyTorch's choice). ``inplace`` is ignored."""
    _check_tensor(input, "relu")
    return ew.relu(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x for x > 0, negative_slope * x otherwise; derivative negative_slope at 0."""
    _check_tensor(input, "leaky_relu")
    return ew.leaky_relu(input, negative_slope)


def tanh(input):
    """Hyperbolic tangent (the engine primitive)."""
    _check_tensor(input, "tanh")
    return ew.tanh(input)


def sigmoid(input):
    """1 / (1 + exp(-x)), computed from exp(-|x|) so it never overflows."""
    _check_tensor(input, "sigmoid")
    return ew.sigmoid(input)
