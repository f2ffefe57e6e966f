"""Distributions over the bins of quantised data (8-bit pixels scaled to [-1, 1]).

A value x is the centre of one of ``num_bins`` equal bins on [low, high] (for 8-bit data
x = low + k (high - low) / 255, k = 0..255). Bin k has half-width h = (high - low) /
(2 (num_bins - 1)) and covers [x - h, x + h], except that the first bin extends to -inf and
the last to +inf, so the bins take all of the continuous distribution's mass:

    P(x) = F((x + h - mu) / s)                      first bin   (x = low)
         = 1 - F((x - h - mu) / s) = F(-(x - h - mu) / s)   last bin (x = high)
         = F(b) - F(a),  a = (x - h - mu) / s, b = (x + h - mu) / s   otherwise

with F the standard CDF (logistic: PixelCNN++, Salimans et al. 2017, Sec. 2.1; Gaussian:
the DDPM decoder, Ho et al. 2020, Eq. 13). Both F are symmetric, F(-z) = 1 - F(z).

The log of the difference is computed exactly in log space,

    log(F(b) - F(a)) = log F(b) + log(-expm1(log F(a) - log F(b)))      (a + b <= 0)
                     = log F(-a) + log(-expm1(log F(-b) - log F(-a)))   (a + b > 0)

i.e. always from the tail the bin lies in, where log F does not round to 0. This is finite
and accurate for any finite mu and s > 0, which is what the PixelCNN++ code approximates
with thresholds (kept as ``method="pixelcnn++"`` for comparison with published numbers:
cdf_delta = F(b) - F(a) in probability space; log(max(cdf_delta, 1e-12)) where cdf_delta >
1e-5, else the midpoint density log f(x) + log(2h)). The exact form still needs a fallback
where log F(a) - log F(b) rounds to 0 (the bin is narrower than float resolution relative to
s, i.e. s > ~1e15 h): there it uses the same midpoint density log f((x - mu) / s) - log s +
log(2h), whose relative error is O((h / s)^2).
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff.ops.special import log_ndtr

from ._base import (LOG_2PI, Distribution, as_param, broadcast_params,
                    generator_or_default, loc_scale_params)

__all__ = ["DiscretizedLogistic", "DiscretizedGaussian", "DiscretizedMixtureOfLogistics"]

_METHODS = ("exact", "pixelcnn++")


def _log1mexp_neg(d):
    """log(1 - e^d) for d < 0 (d = log F(a) - log F(b)); the caller guards d = 0."""
    return autodiff.log(-autodiff.expm1(d))


class _Discretized(Distribution):
    """Shared bin logic; subclasses give ``_log_cdf(z)`` and ``_log_pdf_std(z)`` of the
    standardised continuous distribution and ``_std_noise(shape, gen, dtype)``."""

    support_is_discrete = True

    def __init__(self, loc, scale, num_bins, low, high, validate_args, owner):
        self.loc, self.scale = loc_scale_params(owner, loc, scale, validate_args)
        num_bins = int(num_bins)
        if num_bins < 2:
            raise ValueError(f"{owner}: num_bins must be at least 2, got {num_bins}")
        if not float(low) < float(high):
            raise ValueError(f"{owner}: need low < high, got low={low}, high={high}")
        self.num_bins, self.low, self.high = num_bins, float(low), float(high)
        self.half_width = (self.high - self.low) / (2.0 * (num_bins - 1))
        super().__init__(self.loc.shape)

    def bin_centers(self):
        """The num_bins values x_k = low + 2 h k, as a Tensor (num_bins,)."""
        xp = B.xp
        k = xp.arange(self.num_bins, dtype=self.loc.dtype)
        return autodiff.Tensor(self.low + 2.0 * self.half_width * k)

    def _bin_log_mass(self, value, method="exact"):
        h = self.half_width
        centered = value - self.loc
        a = (centered - h) / self.scale                  # lower edge, standardised
        b = (centered + h) / self.scale                  # upper edge, standardised
        mid = centered / self.scale
        log_mid = self._log_pdf_std(mid) - autodiff.log(self.scale) + math.log(2.0 * h)
        first = value.data <= self.low + h
        last = value.data >= self.high - h
        if method == "pixelcnn++":
            delta = autodiff.exp(self._log_cdf(b)) - autodiff.exp(self._log_cdf(a))
            tiny_safe = autodiff.clamp(delta, min=1e-12)
            inner = autodiff.where(delta.data > 1e-5, autodiff.log(tiny_safe), log_mid)
        else:
            upper_tail = (a.data + b.data) > 0
            hi = autodiff.where(upper_tail, -a, b)        # the edge nearer the tail's end
            lo = autodiff.where(upper_tail, -b, a)
            log_hi = self._log_cdf(hi)
            d = self._log_cdf(lo) - log_hi                # <= 0
            ok = d.data < 0
            d_safe = autodiff.where(ok, d, -1.0)          # keeps the unused branch finite
            inner = autodiff.where(ok, log_hi + _log1mexp_neg(d_safe), log_mid)
        out = autodiff.where(last, self._log_cdf(-a), inner)
        return autodiff.where(first, self._log_cdf(b), out)

    def log_prob(self, value, method="exact"):
        """log P(x) for bin centres x; shape broadcast(x, batch_shape). See the module
        docstring for the formulas and ``method``."""
        if method not in _METHODS:
            raise ValueError(f"{type(self).__name__}.log_prob: unknown method {method!r}; "
                             f"known: {', '.join(_METHODS)}")
        value = self._value(value, self.loc.dtype)
        self._check_range(value)
        return self._bin_log_mass(value, method)

    def _check_range(self, value):
        data = value.data
        slack = 1e-6 * self.half_width
        if data.size and not bool(B.xp.all((data >= self.low - slack)
                                           & (data <= self.high + slack))):
            raise ValueError(f"{type(self).__name__}.log_prob: values must lie in "
                             f"[{self.low}, {self.high}] (bin centres), got min "
                             f"{float(data.min())}, max {float(data.max())}")

    def _to_bins(self, y):
        """Round continuous draws y to the nearest bin centre; the tails go to the edge
        bins, matching the masses above."""
        xp = B.xp
        k = xp.clip(xp.rint((y - self.low) / (2.0 * self.half_width)), 0, self.num_bins - 1)
        return (self.low + 2.0 * self.half_width * k).astype(y.dtype, copy=False)

    def sample(self, sample_shape=(), generator=None):
        """Bin centres, shape sample_shape + batch_shape: a continuous draw mu + s z,
        rounded to the nearest centre (the tails to the edge bins). Not differentiable."""
        shape = self._extended_shape(sample_shape)
        z = self._std_noise(shape, generator_or_default(generator), self.loc.dtype)
        y = self.loc.data + self.scale.data * z
        return autodiff.Tensor(self._to_bins(y))


class DiscretizedLogistic(_Discretized):
    """The logistic(loc, scale) distribution discretised to ``num_bins`` bins on
    [low, high] (PixelCNN++, Salimans et al. 2017, Sec. 2.1; default 256 bins on [-1, 1],
    bin width 2/255). F = sigmoid, log F(z) = log sigma(z) = -softplus(-z).

    loc, scale broadcast to batch_shape; log_prob(x) takes bin centres x.
    """

    def __init__(self, loc, scale, num_bins=256, low=-1.0, high=1.0, validate_args=True):
        super().__init__(loc, scale, num_bins, low, high, validate_args, "DiscretizedLogistic")

    @staticmethod
    def _log_cdf(z):
        return F.logsigmoid(z)

    @staticmethod
    def _log_pdf_std(z):
        return F.logsigmoid(z) + F.logsigmoid(-z)

    @staticmethod
    def _std_noise(shape, gen, dtype):
        xp = B.xp
        eps = xp.finfo(dtype).eps
        u = xp.clip(gen.random(shape, dtype), eps, 1.0 - eps)
        return xp.log(u) - xp.log1p(-u)


class DiscretizedGaussian(_Discretized):
    """N(loc, scale^2) discretised to ``num_bins`` bins on [low, high], edge bins to -inf
    and +inf: the DDPM decoder p_theta(x_0 | x_1) (Ho et al. 2020, Eq. 13; default 256
    bins on [-1, 1]).

    Phi is the exact normal CDF. Its log comes from log_ndtr (the same function as
    (1 + erf(z / sqrt 2)) / 2, evaluated in log space) because through erf, Phi rounds to 0
    below z ~ -8.3 and the DDPM code's clamp of the difference at 1e-12 then sets the
    likelihood of a pixel in the tail to a constant; here every bin's log mass is exact.
    """

    def __init__(self, loc, scale, num_bins=256, low=-1.0, high=1.0, validate_args=True):
        super().__init__(loc, scale, num_bins, low, high, validate_args, "DiscretizedGaussian")

    @staticmethod
    def _log_cdf(z):
        return log_ndtr(z)

    @staticmethod
    def _log_pdf_std(z):
        return -0.5 * (z * z) - 0.5 * LOG_2PI

    @staticmethod
    def _std_noise(shape, gen, dtype):
        return gen.normal(shape, dtype)


class DiscretizedMixtureOfLogistics(Distribution):
    """Mixture of K discretised logistics per value (PixelCNN++, Salimans et al. 2017,
    Eq. 2): P(x) = sum_k pi_k P_k(x), pi = softmax(logit_probs), P_k DiscretizedLogistic.

    logit_probs, loc, scale (*batch, K) -> batch_shape = *batch; log_prob(x (*batch)) =
    logsumexp_k(log_softmax(logit_probs)_k + log P_k(x)). PixelCNN++'s coupling of the RGB
    means (Eq. 3) belongs to the network that outputs ``loc``; its clamp of log-scales at
    -7 is the caller's choice of ``scale`` (this class accepts any scale > 0).
    """

    support_is_discrete = True

    def __init__(self, logit_probs, loc, scale, num_bins=256, low=-1.0, high=1.0,
                 validate_args=True):
        owner = "DiscretizedMixtureOfLogistics"
        logit_probs = as_param(logit_probs, "logit_probs", owner)
        loc = as_param(loc, "loc", owner)
        scale = as_param(scale, "scale", owner)
        for name, t in (("logit_probs", logit_probs), ("loc", loc), ("scale", scale)):
            if t.ndim < 1:
                raise ValueError(f"{owner}: {name} needs a last dim of K components, got "
                                 f"shape {tuple(t.shape)}")
        logit_probs, loc, scale = broadcast_params(owner, logit_probs=logit_probs, loc=loc,
                                                   scale=scale)
        self.logit_probs = F.log_softmax(logit_probs, dim=-1)
        self.components = DiscretizedLogistic(loc, scale, num_bins, low, high, validate_args)
        super().__init__(loc.shape[:-1])

    def log_prob(self, value, method="exact"):
        value = self._value(value, self.logit_probs.dtype)
        comp = self.components.log_prob(value.unsqueeze(-1), method=method)
        return autodiff.logsumexp(self.logit_probs + comp, dim=-1)

    def sample(self, sample_shape=(), generator=None):
        """Pick a component per value (Gumbel-max on the mixture logits), then draw its
        discretised logistic."""
        gen = generator_or_default(generator)
        xp = B.xp
        shape = self._extended_shape(sample_shape)
        K = self.logit_probs.shape[-1]
        dtype = self.logit_probs.dtype
        u = xp.clip(gen.random(shape + (K,), dtype), xp.finfo(dtype).tiny, 1.0)
        k = xp.argmax(self.logit_probs.data - xp.log(-xp.log(u)), axis=-1)[..., None]
        full = shape + (K,)
        loc = xp.take_along_axis(xp.broadcast_to(self.components.loc.data, full), k, -1)[..., 0]
        scale = xp.take_along_axis(xp.broadcast_to(self.components.scale.data, full), k,
                                   -1)[..., 0]
        z = DiscretizedLogistic._std_noise(shape, gen, dtype)
        return autodiff.Tensor(self.components._to_bins(loc + scale * z))


