"""Parameter initialisations with ``torch.nn.init``'s names, formulas and defaults.

Each function fills its Tensor in place (without recording a graph) and returns it.
Random ones draw from ``generator`` or, when it is None, the global generator that
``autodiff.manual_seed`` seeds (same seed, same numbers on one backend; the streams differ
from PyTorch's, so compare with PyTorch by distribution).

Fans (``calculate_fan_in_and_fan_out``), as PyTorch computes them for a weight of shape
(out, in, *kernel): receptive = prod(kernel), fan_in = in * receptive,
fan_out = out * receptive. A transposed convolution's weight is (in, out/groups, *kernel),
so its "fan_in" is out/groups * receptive: PyTorch does the same, and we match it.

* Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward
  neural networks": std = gain * sqrt(2 / (fan_in + fan_out)).
* He et al. (2015), "Delving deep into rectifiers": std = gain / sqrt(fan), fan_in by default.
"""
import math

from .. import backend as B
from ..tensor import no_grad

__all__ = [
    "calculate_gain", "calculate_fan_in_and_fan_out", "uniform_", "normal_", "constant_",
    "ones_", "zeros_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "trunc_normal_",
]


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    linear, conv*, sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu with slope a
    (default 0.01): sqrt(2 / (1 + a^2)); selu: 3/4.
    """
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel); needs >= 2 dimensions."""
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dimensions, got shape "
            f"{tuple(tensor.shape)}")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _gen(generator):
    return generator if generator is not None else B.default_generator()


def _fill(tensor, array):
    with no_grad():
        tensor.copy_(array)
    return tensor


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b)."""
    u = _gen(generator).random(tensor.shape, tensor.dtype)
    return _fill(tensor, a + (b - a) * u)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std^2)."""
    z = _gen(generator).normal(tensor.shape, tensor.dtype)
    return _fill(tensor, mean + std * z)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std^2) truncated to [a, b] (inverse-CDF method, as PyTorch's).

    u ~ U(Phi(alpha), Phi(beta)) with alpha, beta the standardised bounds, then
    x = mean + std * sqrt(2) * erfinv(2u - 1), clipped to [a, b] against rounding.
    """
    # Host SciPy for erfinv on host arrays (B.numpy): a one-off initialisation, not a hot path.
    from scipy.special import erfinv

    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
    u = B.to_numpy(_gen(generator).random(tensor.shape, B.numpy.float64))
    u = 2 * (lo + (hi - lo) * u) - 1
    x = B.numpy.clip(mean + std * math.sqrt(2.0) * erfinv(u), a, b)
    return _fill(tensor, B.to_backend(x, dtype=tensor.dtype))


def constant_(tensor, val):
    """Fill with the constant ``val``."""
    with no_grad():
        tensor.fill_(val)
    return tensor


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Fill with U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Fill with N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator=generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """Fill with U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan) (He et al. 2015).

    ``a`` is the leaky_relu negative slope used in the gain; Linear and Conv use
    ``a=sqrt(5)``, which gives bound = 1 / sqrt(fan_in).
    """
    if 0 in tensor.shape:
        return tensor  # nothing to fill (PyTorch warns and does the same)
    fan = _fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """Fill with N(0, std^2), std = gain / sqrt(fan) (He et al. 2015)."""
    if 0 in tensor.shape:
        return tensor
    fan = _fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator=generator)
