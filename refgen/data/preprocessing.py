"""Preprocessing of image data, with every convention written down.

Notation: ``k`` is the raw integer grey level in {0, ..., L-1} (L = 256 for 8-bit MNIST,
L = 17 for the 8x8 digits); the stored data ``x = k / (L-1)`` lies in [0, 1].

* :func:`scale`: x in [0, 1] (``"unit"``, the default of every data set) or 2x - 1 in [-1, 1]
  (``"symmetric"``, the usual GAN/diffusion input range).
* :func:`dequantize`: uniform dequantization ``(k + u) / L`` with u ~ U[0, 1)^D (Theis, van den
  Oord & Bethge 2016; Uria et al. 2013): continuous data on [0, 1) whose density integrates
  the discrete model, so log p_cont(x~) - D log L is a lower bound on log P(k) (Jensen). For
  8-bit data this is (k + u)/256; for digits (k + u)/17. Draw fresh noise every batch.
* :func:`binarize_dynamic`: a fresh Bernoulli(x) draw at every call (dynamic binarization,
  as in Salakhutdinov & Murray 2008 / Burda et al. 2016 IWAE).
* :func:`binarize_fixed`: one Bernoulli(x) draw from a fixed seed. NOT the Larochelle & Murray
  (2011) binarized MNIST (that draw cannot be reproduced); say so next to any comparison.
* :func:`logit_transform`: y = logit(alpha + (1 - 2 alpha) x) as in RealNVP (Dinh et al. 2017,
  Sec. 4.1) and MAF (Papamakarios et al. 2017, Sec. 4.2), with its log|det Jacobian| so a
  density of y can be reported in x space: log p_x(x) = log p_y(y) + logdet.
  alpha = 1e-6 for MNIST (MAF); RealNVP used 0.05 for CIFAR-10.

All functions take and return backend arrays or Tensors (returning the same kind).
"""
import math

import autodiff
from autodiff import backend as B
from autodiff.tensor import Tensor

__all__ = ["scale", "unscale", "dequantize", "binarize_dynamic", "binarize_fixed",
           "logit_transform", "logit_inverse", "logit_logdet", "SCALES", "MNIST_LOGIT_ALPHA"]

SCALES = ("unit", "symmetric")
MNIST_LOGIT_ALPHA = 1e-6


def _data(x):
    return x.data if isinstance(x, Tensor) else B.to_backend(x)


def _like(x, arr):
    return Tensor(arr) if isinstance(x, Tensor) else arr


def _generator(generator):
    return autodiff.default_generator() if generator is None else generator


def scale(x, to="unit"):
    """Map x in [0, 1] to ``"unit"`` [0, 1] (unchanged) or ``"symmetric"`` [-1, 1] (2x - 1)."""
    if to == "unit":
        return x
    if to == "symmetric":
        return _like(x, 2.0 * _data(x) - 1.0)
    raise ValueError(f"unknown scale {to!r}; known: {', '.join(SCALES)}")


def unscale(x, frm="unit"):
    """Inverse of :func:`scale`: back to [0, 1] from ``frm``."""
    if frm == "unit":
        return x
    if frm == "symmetric":
        return _like(x, (_data(x) + 1.0) * 0.5)
    raise ValueError(f"unknown scale {frm!r}; known: {', '.join(SCALES)}")


def dequantize(x, levels, generator=None):
    """Uniform dequantization: x = k/(L-1) in [0, 1] -> (k + u)/L, u ~ U[0, 1).

    :param x: array/Tensor of any shape holding k/(L-1) for integers k in [0, L-1].
    :param levels: L, the number of grey levels (256 for 8-bit, 17 for digits).
    :return: same shape and dtype, values in [0, 1); each bin [k/L, (k+1)/L) has width 1/L.
    """
    levels = int(levels)
    if levels < 2:
        raise ValueError(f"dequantize: levels must be >= 2, got {levels}")
    a = _data(x)
    # round() recovers k exactly from k/(L-1) stored in float32 or float64
    k = B.xp.rint(a * (levels - 1))
    u = _generator(generator).random(a.shape, a.dtype)
    return _like(x, ((k + u) / levels).astype(a.dtype, copy=False))


def binarize_dynamic(x, generator=None):
    """A fresh Bernoulli draw b ~ Bernoulli(x) per entry (call it once per batch).

    :param x: intensities in [0, 1], any shape. :return: 0/1 values, same shape and dtype.
    """
    a = _data(x)
    u = _generator(generator).random(a.shape, a.dtype)
    return _like(x, (u < a).astype(a.dtype))


def binarize_fixed(x, seed=0):
    """One Bernoulli(x) draw from ``autodiff.Generator(seed)``: the same bits on every call
    (on one backend). Not the Larochelle & Murray (2011) binarized MNIST."""
    return binarize_dynamic(x, autodiff.Generator(seed))


def _check_alpha(alpha):
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"logit transform: alpha must lie in [0, 0.5), got {alpha}")


def logit_transform(x, alpha=MNIST_LOGIT_ALPHA):
    """y = logit(p), p = alpha + (1 - 2 alpha) x; returns ``(y, logdet)``.

    logdet = sum over each example's dims of log|dy/dx| = log(1 - 2 alpha) - log p - log(1 - p)
    (RealNVP, Dinh et al. 2017, Sec. 4.1; MAF, Papamakarios et al. 2017). So
    log p_x(x) = log p_y(y) + logdet, and bits/dim in x space follow from a model of y.

    :param x: (N, ...) in [0, 1] (dequantized data, so 0 and 1 are not hit when alpha = 0).
    :return: y (N, ...) and logdet (N,). Tensors in give differentiable Tensors out.
    """
    _check_alpha(alpha)
    if not isinstance(x, Tensor):
        x = _data(x)
    if x.ndim < 1:
        raise ValueError("logit_transform: x must have a leading example axis (N, ...), got a "
                         "0-d value; the logdet is per example")
    if isinstance(x, Tensor):
        p = alpha + (1.0 - 2.0 * alpha) * x
        logp, log1mp = autodiff.log(p), autodiff.log1p(-p)
        y = logp - log1mp
        per = -logp - log1mp
        logdet = per.reshape(per.shape[0], -1).sum(1) + math.log1p(-2.0 * alpha) * per[0].numel()
        return y, logdet
    return _logit_arrays(x, alpha)


def _logit_arrays(a, alpha):
    p = alpha + (1.0 - 2.0 * alpha) * a
    logp, log1mp = B.xp.log(p), B.xp.log1p(-p)
    per = -(logp + log1mp)
    n = a.shape[0]
    d = a.size // n if n else 0
    return logp - log1mp, per.reshape(n, -1).sum(1) + math.log1p(-2.0 * alpha) * d


def logit_logdet(x, alpha=MNIST_LOGIT_ALPHA):
    """Only the log|det| (N,) of :func:`logit_transform` at x (N, ...)."""
    return logit_transform(x, alpha)[1]


def logit_inverse(y, alpha=MNIST_LOGIT_ALPHA):
    """x = (sigmoid(y) - alpha) / (1 - 2 alpha): the inverse of :func:`logit_transform`."""
    _check_alpha(alpha)
    if isinstance(y, Tensor):
        return (autodiff.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)
    s = B.special().expit(_data(y))
    return (s - alpha) / (1.0 - 2.0 * alpha)
