"""Mixtures: ``MixtureSameFamily`` (torch's name) and the ``GaussianMixture`` density."""
import autodiff
from autodiff import backend as B

from ._base import Distribution, as_param, generator_or_default
from .discrete import Categorical
from .normal import DiagonalNormal, MultivariateNormal

__all__ = ["MixtureSameFamily", "GaussianMixture"]


class MixtureSameFamily(Distribution):
    """p(x) = sum_k pi_k p_k(x): ``mixture_distribution`` a Categorical over K with
    batch_shape B, ``component_distribution`` with batch_shape B + (K,)
    (``torch.distributions.MixtureSameFamily``).

    log p(x) = logsumexp_k(log pi_k + log p_k(x)) (max-shifted, so no underflow);
    x (*sample, *B, *event) -> (*sample, *B). Sampling draws k ~ pi, then x ~ p_k; no
    rsample (the choice of k is discrete).
    """

    def __init__(self, mixture_distribution, component_distribution):
        if not isinstance(mixture_distribution, Categorical):
            raise TypeError("MixtureSameFamily: mixture_distribution must be a Categorical, "
                            f"got {type(mixture_distribution).__name__}")
        mb, cb = mixture_distribution.batch_shape, component_distribution.batch_shape
        K = mixture_distribution.num_classes
        if cb != mb + (K,):
            raise ValueError(f"MixtureSameFamily: component batch_shape {cb} must be the "
                             f"mixture's batch_shape {mb} plus ({K},) (its number of "
                             f"components)")
        self.mixture_distribution = mixture_distribution
        self.component_distribution = component_distribution
        super().__init__(mb, component_distribution.event_shape)

    @property
    def mean(self):
        w = self.mixture_distribution.probs
        n_event = len(self.event_shape)
        w = w.reshape(tuple(w.shape) + (1,) * n_event)
        return (w * self.component_distribution.mean).sum(-1 - n_event)

    @property
    def variance(self):
        """Law of total variance: E[var_k] + Var[mean_k] (elementwise over the event)."""
        w = self.mixture_distribution.probs
        n_event = len(self.event_shape)
        w = w.reshape(tuple(w.shape) + (1,) * n_event)
        dim = -1 - n_event
        m_k = self.component_distribution.mean
        m = (w * m_k).sum(dim)
        dev = m_k - m.unsqueeze(dim)
        return (w * self.component_distribution.variance).sum(dim) + (w * dev * dev).sum(dim)

    def log_prob(self, value):
        value = self._value(value, self.component_distribution.mean.dtype)
        x = value.unsqueeze(value.ndim - len(self.event_shape))    # a K dim before the event
        comp = self.component_distribution.log_prob(x)              # (*, *B, K)
        return autodiff.logsumexp(self.mixture_distribution.logits + comp, dim=-1)

    def sample(self, sample_shape=(), generator=None):
        gen = generator_or_default(generator)
        with autodiff.no_grad():
            k = self.mixture_distribution.sample(sample_shape, gen).data     # (*S, *B)
            xs = self.component_distribution.sample(sample_shape, gen).data  # (*S, *B, K, *E)
        n_event = len(self.event_shape)
        idx = k.reshape(k.shape + (1,) + (1,) * n_event)
        idx = B.xp.broadcast_to(idx, k.shape + (1,) + tuple(self.event_shape))
        picked = B.xp.take_along_axis(xs, idx, axis=k.ndim)
        return autodiff.Tensor(picked.reshape(k.shape + tuple(self.event_shape)))


class GaussianMixture(MixtureSameFamily):
    """A mixture of K Gaussians in d dims: p(x) = sum_k softmax(logits)_k N(x; mu_k, Sigma_k).

    logits (*B, K), loc (*B, K, d), and one of: ``scale`` (*B, K, d) for diagonal
    covariances diag(scale^2), ``scale_tril`` or ``covariance_matrix`` (*B, K, d, d) for
    full ones. event_shape (d,); log_prob(x (*, *B, d)) -> (*, *B) by logsumexp.
    """

    def __init__(self, logits, loc, scale=None, scale_tril=None, covariance_matrix=None,
                 validate_args=True):
        given = [n for n, v in (("scale", scale), ("scale_tril", scale_tril),
                                ("covariance_matrix", covariance_matrix)) if v is not None]
        if len(given) != 1:
            raise ValueError("GaussianMixture: give exactly one of scale (diagonal), "
                             f"scale_tril, covariance_matrix; got {given or 'none'}")
        logits = as_param(logits, "logits", "GaussianMixture")
        loc = as_param(loc, "loc", "GaussianMixture")
        if loc.ndim < 2 or logits.ndim < 1 or loc.shape[-2] != logits.shape[-1]:
            raise ValueError(f"GaussianMixture: loc of shape {tuple(loc.shape)} must be "
                             f"(*, K, d) with K = logits.shape[-1] (logits shape "
                             f"{tuple(logits.shape)})")
        if scale is not None:
            comp = DiagonalNormal(loc, scale, validate_args=validate_args)
        else:
            comp = MultivariateNormal(loc, covariance_matrix=covariance_matrix,
                                      scale_tril=scale_tril, validate_args=validate_args)
        mix_batch = comp.batch_shape[:-1]
        logits = autodiff.broadcast_to(logits, mix_batch + (logits.shape[-1],))
        super().__init__(Categorical(logits=logits), comp)
