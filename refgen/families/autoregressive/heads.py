"""Per-dimension output distributions of the autoregressive models (MADE, PixelCNN, ...).

An autoregressive model factorises p_theta(x) = prod_d p_theta(x_d | x_{<d}); the network
gives, for every dimension d, P numbers ``params[:, :, d]`` that parameterise the
conditional p(x_d | x_{<d}). A head turns them into a log-probability and draws from it:

====================  ===  =================================================================
head                   P   p(x_d | x_{<d})
====================  ===  =================================================================
``bernoulli``          1   Bernoulli(sigmoid(l)) on {0, 1}: log p = x log s(l) + (1-x) log s(-l)
``categorical``        L   softmax over the L grey levels x = lo + (hi - lo) k / (L - 1)
``dmol``              3K   a mixture of K discretized logistics (Salimans et al. 2017, eq. 2)
                           on the same L levels, tails folded into the edge bins
``gmm``               3K   a mixture of K Gaussians, a DENSITY of continuous data (2-D points)
====================  ===  =================================================================

Shapes: ``params`` (N, P, D), values ``x`` (N, D) in the data's units;
``log_prob(params, x)`` -> (N, D) per-dimension log-probabilities (nats; sum over d for the
example's log-likelihood); ``sample(params, generator, temperature)`` -> (N, D) values.
Temperature T divides the logits (T < 1 sharpens) and multiplies continuous scales.
Everything is computed from logits in log space (log-sigmoid, log-softmax, log-sum-exp).
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B

from ...distributions import DiscretizedMixtureOfLogistics

__all__ = ["HEADS", "make_head", "BernoulliHead", "CategoricalHead", "DMoLHead", "GMMHead"]

HEADS = ("bernoulli", "categorical", "dmol", "gmm")

# PixelCNN++ clamps log-scales at -7 (Salimans et al. 2017, code): a logistic narrower than
# e^-7 = 0.0009 is far inside one bin of 8-bit data anyway, and the clamp keeps exp() tame.
LOG_SCALE_MIN = -7.0
# The Gaussian mixture's log-scales for continuous data get a lower clamp too: a component
# collapsing on a single training point would otherwise drive the likelihood to +inf.
GMM_LOG_SCALE_MIN = -9.0


def _check(params, x, P, who):
    if params.ndim != 3 or params.shape[1] != P:
        raise ValueError(f"{who}: params must have shape (N, {P}, D), got {tuple(params.shape)}")
    if x is not None and (x.ndim != 2 or (x.shape[0], x.shape[1]) != (params.shape[0],
                                                                       params.shape[2])):
        raise ValueError(f"{who}: x must have shape (N, D) = ({params.shape[0]}, "
                         f"{params.shape[2]}), got {tuple(x.shape)}")


def _gumbel_argmax(logits, generator, axis):
    """k ~ Categorical(softmax(logits)) along ``axis`` by the Gumbel-max trick (raw arrays)."""
    xp = B.xp
    u = generator.random(logits.shape, logits.dtype)
    u = xp.clip(u, xp.finfo(logits.dtype).tiny, 1.0)
    return xp.argmax(logits - xp.log(-xp.log(u)), axis=axis)


class BernoulliHead:
    """p(x_d = 1 | x_{<d}) = sigmoid(l_d); P = 1. A probability mass on {0, 1}."""

    name, discrete = "bernoulli", True
    outputs_per_dim = 1

    def log_prob(self, params, x):
        _check(params, x, 1, "BernoulliHead.log_prob")
        data = x.data
        if data.size and not bool(B.xp.all((data == 0) | (data == 1))):
            raise ValueError("BernoulliHead.log_prob: x must be binary (0 or 1); got values "
                             f"in [{float(data.min())}, {float(data.max())}] (binarize the data "
                             "first)")
        logits = params[:, 0, :]
        # x log sigmoid(l) + (1 - x) log sigmoid(-l), both terms finite for any l
        return x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits)

    def sample(self, params, generator, temperature=1.0):
        _check(params, None, 1, "BernoulliHead.sample")
        logits = params.data[:, 0, :] / temperature
        u = generator.random(logits.shape, logits.dtype)
        # u < sigmoid(l)  <=>  log u - log(1 - u) < l  (no overflow in exp for large |l|)
        xp = B.xp
        u = xp.clip(u, xp.finfo(logits.dtype).tiny, 1.0)
        return (xp.log(u) - xp.log1p(-u) < logits).astype(logits.dtype)


class CategoricalHead:
    """A softmax over L levels x = lo + (hi - lo) k / (L - 1); P = L (the 256-way softmax of
    PixelRNN/PixelCNN, van den Oord et al. 2016a, sec. 2.2)."""

    name, discrete = "categorical", True

    def __init__(self, levels, value_range=(0.0, 1.0)):
        self.levels = int(levels)
        if self.levels < 2:
            raise ValueError(f"CategoricalHead: levels must be >= 2, got {levels!r}")
        self.lo, self.hi = (float(v) for v in value_range)
        self.outputs_per_dim = self.levels

    def to_index(self, x):
        """The level k (int64 array, (N, D)) of stored values x; off-grid values are an error."""
        xp = B.xp
        t = (x.data - self.lo) / (self.hi - self.lo) * (self.levels - 1)
        k = xp.rint(t)
        if t.size and (float(xp.abs(t - k).max()) > 1e-3 or float(k.min()) < 0
                       or float(k.max()) > self.levels - 1):
            raise ValueError(f"CategoricalHead: x must lie on the {self.levels} levels of "
                             f"[{self.lo:g}, {self.hi:g}]; got values in "
                             f"[{float(x.data.min())}, {float(x.data.max())}] off the grid")
        return k.astype(xp.int64)

    def log_prob(self, params, x):
        _check(params, x, self.levels, "CategoricalHead.log_prob")
        k = autodiff.Tensor(self.to_index(x)[:, None, :])            # (N, 1, D)
        return autodiff.gather(F.log_softmax(params, dim=1), 1, k)[:, 0, :]

    def sample(self, params, generator, temperature=1.0):
        _check(params, None, self.levels, "CategoricalHead.sample")
        k = _gumbel_argmax(params.data / temperature, generator, axis=1)   # (N, D)
        step = (self.hi - self.lo) / (self.levels - 1)
        return (self.lo + step * k).astype(params.dtype)


class DMoLHead:
    """A mixture of K discretized logistics per dimension (Salimans et al. 2017, eq. 2) on L
    levels of [lo, hi]; P = 3K: mixture logits, locations, log-scales (clamped at -7)."""

    name, discrete = "dmol", True

    def __init__(self, num_components, levels, value_range=(0.0, 1.0)):
        self.K = int(num_components)
        if self.K < 1:
            raise ValueError(f"DMoLHead: num_components must be >= 1, got {num_components!r}")
        self.levels = int(levels)
        self.lo, self.hi = (float(v) for v in value_range)
        self.outputs_per_dim = 3 * self.K

    def distribution(self, params):
        """The (N, D) batch of mixtures; components on the last axis as the class wants."""
        K = self.K
        p = params.permute(0, 2, 1)                                    # (N, D, 3K)
        log_scale = autodiff.clamp(p[:, :, 2 * K:], min=LOG_SCALE_MIN)
        return DiscretizedMixtureOfLogistics(p[:, :, :K], p[:, :, K:2 * K], log_scale.exp(),
                                             num_bins=self.levels, low=self.lo, high=self.hi)

    def log_prob(self, params, x):
        _check(params, x, self.outputs_per_dim, "DMoLHead.log_prob")
        return self.distribution(params).log_prob(x)

    def sample(self, params, generator, temperature=1.0):
        _check(params, None, self.outputs_per_dim, "DMoLHead.sample")
        K = self.K
        scaled = autodiff.cat([params[:, :K] / temperature, params[:, K:2 * K],
                               params[:, 2 * K:] + math.log(temperature)], dim=1)
        return self.distribution(scaled).sample(generator=generator).data


class GMMHead:
    """A mixture of K Gaussians per dimension, a density of continuous data; P = 3K:
    mixture logits a, means mu, log-scales (clamped below at -9)::

        log p(x_d | x_{<d}) = logsumexp_k [ log_softmax(a)_k - (x_d - mu_k)^2 / (2 sigma_k^2)
                                            - log sigma_k - log(2 pi) / 2 ]
    """

    name, discrete = "gmm", False

    def __init__(self, num_components):
        self.K = int(num_components)
        if self.K < 1:
            raise ValueError(f"GMMHead: num_components must be >= 1, got {num_components!r}")
        self.outputs_per_dim = 3 * self.K

    def _split(self, params):
        K = self.K
        log_scale = autodiff.clamp(params[:, 2 * K:], min=GMM_LOG_SCALE_MIN)
        return params[:, :K], params[:, K:2 * K], log_scale            # each (N, K, D)

    def log_prob(self, params, x):
        _check(params, x, self.outputs_per_dim, "GMMHead.log_prob")
        logits, mu, log_scale = self._split(params)
        z = (x.unsqueeze(1) - mu) * (-log_scale).exp()
        log_normal = -0.5 * z * z - log_scale - 0.5 * math.log(2 * math.pi)
        return autodiff.logsumexp(F.log_softmax(logits, dim=1) + log_normal, dim=1)

    def sample(self, params, generator, temperature=1.0):
        _check(params, None, self.outputs_per_dim, "GMMHead.sample")
        xp = B.xp
        logits, mu, log_scale = (t.data for t in self._split(params))
        k = _gumbel_argmax(logits / temperature, generator, axis=1)[:, None, :]   # (N, 1, D)
        mu_k = xp.take_along_axis(mu, k, 1)[:, 0, :]
        sigma_k = xp.exp(xp.take_along_axis(log_scale, k, 1)[:, 0, :]) * temperature
        return mu_k + sigma_k * generator.normal(mu_k.shape, mu_k.dtype)


def make_head(name, data_info, num_components=5):
    """The head called ``name`` for data described by ``data_info`` (levels, value range)."""
    info = dict(data_info or {})
    value_range = tuple(info.get("value_range", (0.0, 1.0)))
    if name == "bernoulli":
        return BernoulliHead()
    if name == "gmm":
        return GMMHead(num_components)
    if name in ("categorical", "dmol"):
        levels = info.get("levels")
        if not levels:
            raise ValueError(f"head {name!r} needs quantised image data (data_info 'levels'); "
                             f"data set {info.get('name', '?')!r} has none: use head 'gmm' "
                             "for continuous data")
        if name == "categorical":
            return CategoricalHead(levels, value_range)
        return DMoLHead(num_components, levels, value_range)
    raise ValueError(f"unknown head {name!r}; known: {', '.join(HEADS)}")
