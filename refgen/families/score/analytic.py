"""Gaussian mixtures whose perturbed densities, scores and optimal denoisers are analytic.

The reference the score models are tested against (and a teaching aid): for data

    p_0(x0) = sum_k w_k N(x0; mu_k, Sigma_k)

and a Gaussian perturbation x = m x0 + std eps (an SDE's kernel, ``common.sde``; NCSN's
x0 + sigma eps is m = 1, std = sigma), the perturbed density is again a mixture,

    p(x) = sum_k w_k N(x; m mu_k, C_k),       C_k = m^2 Sigma_k + std^2 I,

with the score  grad_x log p(x) = -sum_k r_k(x) C_k^{-1} (x - m mu_k),  responsibilities
r_k(x) = w_k N(x; m mu_k, C_k) / p(x) (a softmax of the log-joint, no overflow), and the
optimal denoiser (the posterior mean; Tweedie's formula, Efron 2011, eq. 2.8)

    E[x0 | x] = sum_k r_k(x) (mu_k + m Sigma_k C_k^{-1} (x - m mu_k)) = (x + std^2 s(x)) / m.

With Sigma_k = U_k diag(lambda_k) U_k^T, C_k^{-1} = U_k diag(1 / (m^2 lambda_k + std^2)) U_k^T,
so per-example m and std cost no matrix inverse. Everything is a differentiable Tensor
operation in x (the ODE likelihood takes the divergence of the score).

Shapes: x (N, D); m and std scalars or (N,); K components.
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B

__all__ = ["GaussianMixture"]


class GaussianMixture:
    """sum_k w_k N(mu_k, Sigma_k) in D dimensions, and its Gaussian perturbations.

    :param weights: (K,) positive, normalised here.
    :param means: (K, D).
    :param covs: (K, D, D) symmetric positive definite.
    """

    def __init__(self, weights, means, covs):
        xp = B.xp
        dtype = autodiff.get_default_dtype()
        w = xp.asarray(weights, dtype=dtype).reshape(-1)
        mu = xp.asarray(means, dtype=dtype)
        cov = xp.asarray(covs, dtype=dtype)
        k = w.shape[0]
        if mu.ndim != 2 or mu.shape[0] != k:
            raise ValueError(f"GaussianMixture: means must be (K, D) = ({k}, D), got shape "
                             f"{tuple(mu.shape)}")
        d = mu.shape[1]
        if cov.shape != (k, d, d):
            raise ValueError(f"GaussianMixture: covs must be (K, D, D) = ({k}, {d}, {d}), got "
                             f"shape {tuple(cov.shape)}")
        if not bool(xp.all(w > 0)):
            raise ValueError(f"GaussianMixture: weights must be positive, got {weights!r}")
        lam, U = xp.linalg.eigh(cov)                       # (K, D), (K, D, D)
        if not bool(xp.all(lam > 0)):
            raise ValueError("GaussianMixture: every covariance must be positive definite")
        self.K, self.D = k, d
        self.w = w / w.sum()
        self.mu, self.cov, self.lam, self.U = mu, cov, lam, U

    @classmethod
    def gaussian(cls, mean, cov):
        """One Gaussian N(mean, cov)."""
        mean = B.xp.asarray(mean)
        return cls([1.0], mean[None], B.xp.asarray(cov)[None])

    # ---- moments and draws of p_0
    def mean(self):
        """E[x0], (D,)."""
        return (self.w[:, None] * self.mu).sum(axis=0)

    def covariance(self):
        """Cov[x0] = sum_k w_k (Sigma_k + mu_k mu_k^T) - E[x0] E[x0]^T, (D, D)."""
        second = (self.w[:, None, None] * (self.cov + self.mu[:, :, None] * self.mu[:, None, :]))
        m = self.mean()
        return second.sum(axis=0) - m[:, None] * m[None, :]

    def sample(self, n, generator=None):
        """n draws of p_0, a Tensor (n, D)."""
        g = generator or autodiff.default_generator()
        u = g.random((n,), self.w.dtype)                 # component k by inverting the cdf
        k = B.xp.minimum(B.xp.searchsorted(B.xp.cumsum(self.w), u, side="right"), self.K - 1)
        z = g.normal((n, self.D), self.mu.dtype)
        # x0 = mu_k + U_k diag(sqrt(lambda_k)) z
        x = self.mu[k] + B.xp.einsum("nde,ne->nd", self.U[k], B.xp.sqrt(self.lam[k]) * z)
        return autodiff.Tensor(x)

    # ---- the perturbed density
    def _parts(self, x, m, std):
        """log w_k N(x; m mu_k, C_k) (N, K) and C_k^{-1}(x - m mu_k) (N, K, D)."""
        if not isinstance(x, autodiff.Tensor) or x.ndim != 2 or x.shape[1] != self.D:
            raise ValueError(f"GaussianMixture: x must be a Tensor (N, {self.D}), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        n = x.shape[0]
        m = _per_example(m, n, x.dtype)                        # (N, 1, 1)
        std = _per_example(std, n, x.dtype)
        mu, U, lam = (autodiff.Tensor(a.astype(x.dtype)) for a in (self.mu, self.U, self.lam))
        diff = x.unsqueeze(1) - m * mu.unsqueeze(0)           # (N, K, D)
        y = autodiff.einsum("nkd,kde->nke", diff, U)          # eigen-coordinates
        var = m * m * lam.unsqueeze(0) + std * std            # (N, K, D) eigenvalues of C_k
        quad = (y * y / var).sum(dim=2)
        log_norm = -0.5 * quad - 0.5 * var.log().sum(dim=2) - 0.5 * self.D * math.log(2 * math.pi)
        log_joint = log_norm + autodiff.Tensor(B.xp.log(self.w).astype(x.dtype))
        prec_diff = autodiff.einsum("nke,kde->nkd", y / var, U)
        return log_joint, prec_diff, (m, var, U, y)

    def log_prob(self, x, m=1.0, std=0.0):
        """log p(x) of the perturbed mixture, (N,) nats (m = 1, std = 0: the data's)."""
        log_joint, _, _ = self._parts(x, m, std)
        return autodiff.logsumexp(log_joint, dim=1)

    def score(self, x, m=1.0, std=0.0):
        """grad_x log p(x) = -sum_k r_k C_k^{-1} (x - m mu_k), (N, D)."""
        log_joint, prec_diff, _ = self._parts(x, m, std)
        r = F.softmax(log_joint, dim=1)                      # (N, K)
        return -(r.unsqueeze(2) * prec_diff).sum(dim=1)

    def denoiser(self, x, m=1.0, std=0.0):
        """E[x0 | x] = sum_k r_k (mu_k + m Sigma_k C_k^{-1} (x - m mu_k)), (N, D)."""
        log_joint, _, (mm, var, U, y) = self._parts(x, m, std)
        r = F.softmax(log_joint, dim=1)
        lam = autodiff.Tensor(self.lam.astype(x.dtype)).unsqueeze(0)
        post = autodiff.Tensor(self.mu.astype(x.dtype)).unsqueeze(0) + \
            autodiff.einsum("nke,kde->nkd", mm * lam * y / var, U)
        return (r.unsqueeze(2) * post).sum(dim=1)

    # ---- as functions of an SDE's time
    def score_fn(self, sde):
        """s(x, t) = grad_x log p_t(x) under ``sde``'s kernel (common.sde)."""
        def score(x, t):
            m, std = sde.marginal_coefficients(t, x.shape[0], x.dtype)
            return self.score(x, m, std)
        return score

    def sigma_score_fn(self):
        """s(x, sigma) of x0 + sigma eps (NCSN's perturbation), sigma an (N,) Tensor."""
        return lambda x, sigma: self.score(x, 1.0, sigma)

    def log_prob_t(self, x, sde, t):
        """log p_t(x) under ``sde``'s kernel, (N,)."""
        m, std = sde.marginal_coefficients(t, x.shape[0], x.dtype)
        return self.log_prob(x, m, std)


def _per_example(v, n, dtype):
    """A scalar or (N,) coefficient as an (N, 1, 1) Tensor."""
    if isinstance(v, autodiff.Tensor):
        v = v.data
    v = B.xp.asarray(v, dtype=dtype)
    if v.ndim == 0:
        v = B.xp.full((n,), v, dtype=dtype)
    if v.shape != (n,):
        raise ValueError(f"GaussianMixture: a coefficient must be a scalar or ({n},), got "
                         f"shape {tuple(v.shape)}")
    return autodiff.Tensor(v.reshape(n, 1, 1))
