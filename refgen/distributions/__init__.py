"""``refgen.distributions``: probability distributions on autodiff Tensors, with
``torch.distributions``' names, shapes (sample_shape + batch_shape + event_shape) and
methods (log_prob, sample, rsample, mean, variance, entropy, kl_divergence).

One module per theme:

* normal:       Normal, Independent, DiagonalNormal, MultivariateNormal
* discrete:     Bernoulli, Categorical (from logits, computed in log space)
* continuous:   Uniform, Logistic
* discretized:  DiscretizedLogistic, DiscretizedMixtureOfLogistics (PixelCNN++),
                DiscretizedGaussian (the DDPM decoder), log_ndtr
* mixture:      MixtureSameFamily, GaussianMixture
* kl:           kl_divergence, register_kl (closed forms: Normal, MultivariateNormal,
                Independent, Bernoulli, Categorical, Uniform pairs)

Randomness comes from an explicit ``generator=`` (an ``autodiff.Generator``; the global
one when omitted), so draws reproduce from a seed.
"""
from ._base import Distribution
from .continuous import Logistic, Uniform
from .discrete import Bernoulli, Categorical
from .discretized import (DiscretizedGaussian, DiscretizedLogistic,
                          DiscretizedMixtureOfLogistics, log_ndtr)
from .kl import kl_divergence, register_kl
from .mixture import GaussianMixture, MixtureSameFamily
from .normal import DiagonalNormal, Independent, MultivariateNormal, Normal

__all__ = [
    "Distribution", "Normal", "Independent", "DiagonalNormal", "MultivariateNormal",
    "Bernoulli", "Categorical", "Uniform", "Logistic", "DiscretizedLogistic",
    "DiscretizedMixtureOfLogistics", "DiscretizedGaussian", "log_ndtr", "MixtureSameFamily",
    "GaussianMixture", "kl_divergence", "register_kl",
]
