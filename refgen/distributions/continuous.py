"""``Uniform`` and ``Logistic``: continuous, reparameterisable by a uniform draw."""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B

from ._base import (Distribution, as_param, broadcast_params, broadcast_shapes,
                    check_positive, generator_or_default, loc_scale_params)

__all__ = ["Uniform", "Logistic"]


class Uniform(Distribution):
    """U[low, high) elementwise; batch_shape = broadcast(low, high).

    log p(x) = -log(high - low) for low <= x < high, -inf outside (no error: a density
    that is 0 there, as torch with validate_args=False).
    rsample: x = low + u (high - low), u ~ U[0, 1) from ``generator.random``.
    entropy = log(high - low); mean (low + high) / 2; variance (high - low)^2 / 12.
    """

    has_rsample = True

    def __init__(self, low, high, validate_args=True):
        low = as_param(low, "low", "Uniform")
        high = as_param(high, "high", "Uniform")
        self.low, self.high = broadcast_params("Uniform", low=low, high=high)
        if validate_args:
            check_positive(self.high - self.low, "high - low", "Uniform")
        super().__init__(self.low.shape)

    @property
    def mean(self):
        return 0.5 * (self.low + self.high)

    @property
    def variance(self):
        w = self.high - self.low
        return w * w / 12.0

    def log_prob(self, value):
        value = self._value(value, self.low.dtype)
        inside = (value.data >= self.low.data) & (value.data < self.high.data)
        shape = broadcast_shapes(tuple(value.shape), self.batch_shape)
        lp = autodiff.broadcast_to(-autodiff.log(self.high - self.low), shape)
        return autodiff.where(inside, lp, -float("inf"))

    def cdf(self, value):
        value = self._value(value, self.low.dtype)
        return autodiff.clamp((value - self.low) / (self.high - self.low), 0.0, 1.0)

    def rsample(self, sample_shape=(), generator=None):
        shape = self._extended_shape(sample_shape)
        u = autodiff.Tensor(generator_or_default(generator).random(shape, self.low.dtype))
        return self.low + u * (self.high - self.low)

    def entropy(self):
        return autodiff.log(self.high - self.low)


class Logistic(Distribution):
    """Logistic(loc, scale) elementwise: CDF sigma((x - mu) / s).

    With z = (x - mu) / s:  log p(x) = log sigma(z) + log sigma(-z) - log s
    (= -z - 2 softplus(-z) - log s, finite for any z).
    rsample: x = mu + s (log u - log(1 - u)), u ~ U[0, 1) from ``generator.random``,
    clamped to [eps, 1 - eps] (eps of the dtype, as torch's clamp_probs).
    mean mu, variance s^2 pi^2 / 3, entropy log s + 2.
    """

    has_rsample = True

    def __init__(self, loc, scale, validate_args=True):
        self.loc, self.scale = loc_scale_params("Logistic", loc, scale, validate_args)
        super().__init__(self.loc.shape)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale * self.scale * (math.pi ** 2 / 3.0)

    def log_prob(self, value):
        value = self._value(value, self.loc.dtype)
        z = (value - self.loc) / self.scale
        return F.logsigmoid(z) + F.logsigmoid(-z) - autodiff.log(self.scale)

    def cdf(self, value):
        value = self._value(value, self.loc.dtype)
        return autodiff.sigmoid((value - self.loc) / self.scale)

    def rsample(self, sample_shape=(), generator=None):
        shape = self._extended_shape(sample_shape)
        xp = B.xp
        dtype = self.loc.dtype
        eps = xp.finfo(dtype).eps
        u = xp.clip(generator_or_default(generator).random(shape, dtype), eps, 1.0 - eps)
        z = autodiff.Tensor(xp.log(u) - xp.log1p(-u))
        return self.loc + self.scale * z

    def entropy(self):
        return autodiff.log(self.scale) + 2.0
