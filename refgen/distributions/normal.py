"""Gaussians: ``Normal`` (elementwise), ``Independent``/``DiagonalNormal`` (a vector of
independent coordinates as one event) and ``MultivariateNormal`` (full covariance via its
Cholesky factor)."""
import math

import autodiff
from autodiff import backend as B

from ._base import (LOG_2PI, Distribution, as_param, broadcast_shapes, check_positive,
                    generator_or_default, loc_scale_params)

__all__ = ["Normal", "Independent", "DiagonalNormal", "MultivariateNormal"]

_SQRT1_2 = 1.0 / math.sqrt(2.0)


class Normal(Distribution):
    """N(loc, scale^2) elementwise; batch_shape = broadcast(loc, scale), event_shape = ().

    log p(x) = -(x - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2
    rsample: x = mu + sigma * eps, eps ~ N(0, 1) drawn by ``generator.normal``.
    entropy:  1/2 + log(2 pi)/2 + log sigma.
    """

    has_rsample = True

    def __init__(self, loc, scale, validate_args=True):
        self.loc, self.scale = loc_scale_params("Normal", loc, scale, validate_args)
        super().__init__(self.loc.shape)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale * self.scale

    @property
    def stddev(self):
        return self.scale

    def log_prob(self, value):
        value = self._value(value, self.loc.dtype)
        z = (value - self.loc) / self.scale
        return -0.5 * (z * z) - autodiff.log(self.scale) - 0.5 * LOG_2PI

    def cdf(self, value):
        """Phi((x - mu) / sigma) = (1 + erf((x - mu) / (sigma sqrt 2))) / 2."""
        value = self._value(value, self.loc.dtype)
        return 0.5 * (1.0 + autodiff.erf((value - self.loc) / self.scale * _SQRT1_2))

    def rsample(self, sample_shape=(), generator=None):
        shape = self._extended_shape(sample_shape)
        eps = autodiff.Tensor(generator_or_default(generator).normal(shape, self.loc.dtype))
        return self.loc + self.scale * eps

    def entropy(self):
        return 0.5 + 0.5 * LOG_2PI + autodiff.log(self.scale)


class Independent(Distribution):
    """Reinterpret the last ``reinterpreted_batch_ndims`` batch dims of ``base`` as event
    dims (``torch.distributions.Independent``): log_prob and entropy sum over them.

    For a diagonal Gaussian over vectors, ``Independent(Normal(mu, sigma), 1)`` (or
    ``DiagonalNormal(mu, sigma)``) has log p(x) = sum_i log N(x_i; mu_i, sigma_i^2).
    """

    def __init__(self, base, reinterpreted_batch_ndims):
        n = int(reinterpreted_batch_ndims)
        if not 0 <= n <= len(base.batch_shape):
            raise ValueError(f"Independent: reinterpreted_batch_ndims={n} must be between 0 "
                             f"and the base's batch dims {len(base.batch_shape)} "
                             f"(batch_shape {base.batch_shape})")
        self.base = base
        self.reinterpreted_batch_ndims = n
        cut = len(base.batch_shape) - n
        super().__init__(base.batch_shape[:cut], base.batch_shape[cut:] + base.event_shape)
        self.has_rsample = base.has_rsample
        self.support_is_discrete = base.support_is_discrete

    def _sum_rightmost(self, t):
        n = self.reinterpreted_batch_ndims
        return t.sum(dim=tuple(range(t.ndim - n, t.ndim))) if n else t

    def log_prob(self, value):
        return self._sum_rightmost(self.base.log_prob(value))

    def entropy(self):
        return self._sum_rightmost(self.base.entropy())

    def rsample(self, sample_shape=(), generator=None):
        return self.base.rsample(sample_shape, generator)

    def sample(self, sample_shape=(), generator=None):
        return self.base.sample(sample_shape, generator)

    @property
    def mean(self):
        return self.base.mean

    @property
    def variance(self):
        return self.base.variance


class DiagonalNormal(Independent):
    """N(loc, diag(scale^2)) over the last dim: ``Independent(Normal(loc, scale), 1)``.

    loc, scale (*batch, d) -> event_shape (d,); log_prob sums the d coordinates.
    """

    def __init__(self, loc, scale, validate_args=True):
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            raise ValueError("DiagonalNormal: loc/scale need at least one dim (the event dim)")
        super().__init__(base, 1)

    @property
    def loc(self):
        return self.base.loc

    @property
    def scale(self):
        return self.base.scale


def _mT(t):
    return t.transpose(-1, -2)


def _tri_solve(L, b):
    """L^-1 b for lower-triangular L (*, d, d) and vectors b (*, d), batch dims broadcast."""
    batch = broadcast_shapes(tuple(L.shape[:-2]), tuple(b.shape[:-1]),
                             what="MultivariateNormal: batch shapes of scale_tril and value")
    d = L.shape[-1]
    if L.ndim > 2:
        L = autodiff.broadcast_to(L, batch + (d, d))
    b = autodiff.broadcast_to(b, batch + (d,))
    x = autodiff.linalg.solve_triangular(L, b.unsqueeze(-1), upper=False)
    return x.squeeze(-1)


class MultivariateNormal(Distribution):
    """N(loc, Sigma) over vectors, Sigma = L L^T with L = ``scale_tril`` (lower triangular,
    positive diagonal), or L = cholesky(``covariance_matrix``).

    loc (*, d), L or Sigma (*, d, d); batch_shape = broadcast of the * dims; event (d,).

        log p(x) = -d/2 log(2 pi) - sum_i log L_ii - ||L^-1 (x - mu)||^2 / 2

    (a triangular solve; log det Sigma = 2 sum_i log L_ii). rsample: mu + L eps.
    entropy: d/2 (1 + log 2 pi) + sum_i log L_ii.
    """

    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, scale_tril=None, validate_args=True):
        if (covariance_matrix is None) == (scale_tril is None):
            raise ValueError("MultivariateNormal: give exactly one of covariance_matrix, "
                             "scale_tril")
        loc = as_param(loc, "loc", "MultivariateNormal")
        if loc.ndim < 1:
            raise ValueError("MultivariateNormal: loc must have at least one dim (the "
                             f"event dim), got shape {tuple(loc.shape)}")
        name = "covariance_matrix" if scale_tril is None else "scale_tril"
        M = as_param(covariance_matrix if scale_tril is None else scale_tril, name,
                     "MultivariateNormal")
        d = loc.shape[-1]
        if M.ndim < 2 or M.shape[-1] != M.shape[-2] or M.shape[-1] != d:
            raise ValueError(f"MultivariateNormal: {name} of shape {tuple(M.shape)} must be "
                             f"(*, {d}, {d}) to match loc of shape {tuple(loc.shape)}")
        batch = broadcast_shapes(tuple(loc.shape[:-1]), tuple(M.shape[:-2]),
                                 what="MultivariateNormal: batch shapes of loc and " + name)
        if scale_tril is None:
            if validate_args:
                sym = B.xp.abs(M.data - B.xp.swapaxes(M.data, -1, -2))
                if sym.size and float(sym.max()) > 1e-8 * max(float(B.xp.abs(M.data).max()), 1):
                    raise ValueError("MultivariateNormal: covariance_matrix is not symmetric")
            try:
                L = autodiff.linalg.cholesky(M)
            except autodiff.linalg.LinAlgError as exc:
                raise ValueError("MultivariateNormal: covariance_matrix is not "
                                 f"positive-definite ({exc})") from None
        else:
            L = M
            if validate_args:
                if bool(B.xp.any(B.xp.triu(L.data, 1) != 0)):
                    raise ValueError("MultivariateNormal: scale_tril must be lower triangular")
                check_positive(autodiff.linalg.diagonal(L), "the diagonal of scale_tril",
                               "MultivariateNormal")
        self.loc = autodiff.broadcast_to(loc, batch + (d,))
        self._unbroadcasted_scale_tril = L
        super().__init__(batch, (d,))

    @property
    def scale_tril(self):
        d = self.event_shape[0]
        return autodiff.broadcast_to(self._unbroadcasted_scale_tril, self.batch_shape + (d, d))

    @property
    def covariance_matrix(self):
        L = self.scale_tril
        return L @ _mT(L)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        L = self.scale_tril
        return (L * L).sum(-1)

    def _half_log_det(self):
        """sum_i log L_ii = log det(Sigma) / 2, shape batch_shape."""
        diag = autodiff.linalg.diagonal(self._unbroadcasted_scale_tril)
        return autodiff.broadcast_to(autodiff.log(diag).sum(-1), self.batch_shape)

    def log_prob(self, value):
        value = self._value(value, self.loc.dtype)
        y = _tri_solve(self._unbroadcasted_scale_tril, value - self.loc)
        d = self.event_shape[0]
        return -0.5 * (d * LOG_2PI + (y * y).sum(-1)) - self._half_log_det()

    def rsample(self, sample_shape=(), generator=None):
        shape = self._extended_shape(sample_shape)
        eps = autodiff.Tensor(generator_or_default(generator).normal(shape, self.loc.dtype))
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def entropy(self):
        d = self.event_shape[0]
        return 0.5 * d * (1.0 + LOG_2PI) + self._half_log_det()
