"""Langevin dynamics (refgen.families.common.langevin) on Gaussians with analytic scores.

On N(mu, Sigma) the score is s(x) = -Sigma^{-1}(x - mu). Langevin chains with a small step
must reproduce the mean and the covariance: we compare their final states with exact draws
from N(mu, Sigma) by two two-sample tests, each at level ALPHA = 1e-3 (a correct sampler
fails one of them with probability about 2e-3 over seeds; the seeds are fixed so the
outcome is reproducible):

* Hotelling's two-sample T^2 test of equal means (exact F distribution under normality);
* Box's M test of equal covariance matrices (chi^2 approximation, Box 1949).

The discretisation bias of (1) is below what the tests can see at these sample sizes: the
stationary variance along an eigen-direction of precision a is 1 / (a (1 - h a / 4)), a
relative error of h a / 4 = 0.5 % at h = 0.01, a = 2, against a sampling error of the
variance of sqrt(2 / N) = 3 % at N = 2000 chains.

Breakages tried while writing these tests (each makes a test fail): the drift h * s instead
of (h / 2) * s (variance halved), noise sqrt(2 h) instead of sqrt(h) (variance doubled), the
annealed step not scaled by sigma_i^2 / sigma_L^2 (only the schedule test sees it: the last
level alone mixes these Gaussian chains, so the end distribution cannot tell).
"""
import math

import numpy as np
import pytest
from scipy import stats

import autodiff
from refgen.families.common.langevin import (annealed_langevin_dynamics, energy_score,
                                             langevin_dynamics)

ALPHA = 1e-3
MU = np.array([1.0, -0.5])
SIGMA = np.array([[1.0, 0.5], [0.5, 1.0]])   # eigenvalues 1.5 and 0.5: precisions 2/3 and 2


def hotelling_two_sample_p(a, b):
    """p-value of Hotelling's T^2 test that a (n1, p) and b (n2, p) have equal means."""
    n1, p = a.shape
    n2 = b.shape[0]
    d = a.mean(0) - b.mean(0)
    pooled = ((n1 - 1) * np.cov(a.T) + (n2 - 1) * np.cov(b.T)) / (n1 + n2 - 2)
    t2 = n1 * n2 / (n1 + n2) * d @ np.linalg.solve(pooled, d)
    f = (n1 + n2 - p - 1) / (p * (n1 + n2 - 2)) * t2
    return stats.f.sf(f, p, n1 + n2 - p - 1)


def box_m_p(a, b):
    """p-value of Box's M test that a (n1, p) and b (n2, p) have equal covariances."""
    groups = [a, b]
    p, k = a.shape[1], len(groups)
    ns = np.array([g.shape[0] for g in groups])
    covs = [np.cov(g.T) for g in groups]
    n_total = ns.sum()
    pooled = sum((n - 1) * c for n, c in zip(ns, covs)) / (n_total - k)
    m = (n_total - k) * np.linalg.slogdet(pooled)[1] - sum(
        (n - 1) * np.linalg.slogdet(c)[1] for n, c in zip(ns, covs))
    c1 = (2 * p * p + 3 * p - 1) / (6 * (p + 1) * (k - 1)) * (
        np.sum(1.0 / (ns - 1)) - 1.0 / (n_total - k))
    df = p * (p + 1) * (k - 1) / 2
    return stats.chi2.sf(m * (1 - c1), df)


def gaussian_score(mu, cov):
    precision = autodiff.tensor(np.linalg.inv(cov))
    mu_t = autodiff.tensor(mu)

    def score(x):
        return -((x - mu_t) @ precision)      # Sigma^{-1} symmetric: row form of -P(x - mu)
    return score


def exact_draws(mu, cov, n, seed):
    return np.random.default_rng(seed).multivariate_normal(mu, cov, size=n)


def test_langevin_reproduces_gaussian_mean_and_covariance():
    n = 2000
    x0 = autodiff.zeros(n, 2)                  # far from the target mean: the chain must move
    x = langevin_dynamics(gaussian_score(MU, SIGMA), x0, step_size=0.01, n_steps=2500,
                          generator=autodiff.Generator(1)).numpy()
    ref = exact_draws(MU, SIGMA, n, seed=2)
    assert hotelling_two_sample_p(x, ref) > ALPHA
    assert box_m_p(x, ref) > ALPHA


def test_langevin_through_energy_score_matches():
    """The same chain driven by -grad E for E(x) = (x - mu)^T P (x - mu) / 2."""
    precision = autodiff.tensor(np.linalg.inv(SIGMA))
    mu_t = autodiff.tensor(MU)

    def energy(x):
        d = x - mu_t
        return 0.5 * ((d @ precision) * d).sum(1)

    x = autodiff.randn(7, 2)
    np.testing.assert_allclose(energy_score(energy)(x).numpy(),
                               gaussian_score(MU, SIGMA)(x).numpy(), rtol=1e-12, atol=1e-12)


def test_noise_scale_is_a_temperature():
    """noise_scale^2 = T: the decoupled sampler's stationary law is N(mu, T Sigma), not p.

    Documents why a small separate noise is not Langevin dynamics proper: with T = 1/4
    the covariance must match T * Sigma, and must NOT match Sigma."""
    n, temperature = 2000, 0.25
    x = langevin_dynamics(gaussian_score(MU, SIGMA), autodiff.zeros(n, 2), step_size=0.01,
                          n_steps=2500, noise_scale=math.sqrt(temperature),
                          generator=autodiff.Generator(3)).numpy()
    assert box_m_p(x, exact_draws(MU, temperature * SIGMA, n, seed=4)) > ALPHA
    assert box_m_p(x, exact_draws(MU, SIGMA, n, seed=4)) < ALPHA


def test_annealed_langevin_on_perturbed_gaussian():
    """Data N(mu, s^2 I): the sigma-perturbed score is -(x - mu) / (s^2 + sigma^2); after
    the last level the chains follow N(mu, (s^2 + sigma_L^2) I)."""
    n, s2 = 2000, 0.25
    sigmas = [1.0, 0.3, 0.1, 0.05]
    mu_t = autodiff.tensor(MU)
    seen = []

    def score(x, sigma):
        assert tuple(sigma.shape) == (x.shape[0],)
        seen.append(float(sigma.numpy()[0]))
        return -(x - mu_t) / (s2 + sigma[:, None] ** 2)

    x0 = autodiff.rand(n, 2, generator=autodiff.Generator(5)) * 8 - 4
    x = annealed_langevin_dynamics(score, x0, sigmas, step_size=0.01, n_steps_each=500,
                                   generator=autodiff.Generator(6)).numpy()
    assert sorted(set(seen), reverse=True) == sigmas and len(seen) == 4 * 500
    ref = exact_draws(MU, (s2 + sigmas[-1] ** 2) * np.eye(2), n, seed=7)
    assert hotelling_two_sample_p(x, ref) > ALPHA
    assert box_m_p(x, ref) > ALPHA


def test_annealed_step_schedule_is_algorithm_1():
    """Without noise and with a score of ones, level i moves every chain by T alpha_i / 2 with
    alpha_i = eps sigma_i^2 / sigma_L^2 (Song & Ermon 2019, Algorithm 1, line 3)."""
    moves = {}

    def score(x, sigma):
        moves[float(sigma.numpy()[0])] = x.numpy().copy()
        return autodiff.ones_like(x)

    sigmas, eps, steps = [1.0, 0.5, 0.25], 0.01, 3
    x = annealed_langevin_dynamics(score, autodiff.zeros(2, 1), sigmas, eps, steps,
                                   noise_scale=0.0).numpy()
    expected = sum(steps * eps * (s / sigmas[-1]) ** 2 / 2 for s in sigmas)
    np.testing.assert_allclose(x, expected, rtol=1e-13)
    np.testing.assert_allclose(moves[0.25], steps * eps * (16 + 4) / 2 + (steps - 1) * eps / 2,
                               rtol=1e-13)


def test_clamp_keeps_the_box_and_zero_steps_is_identity():
    x0 = autodiff.randn(50, 3)
    np.testing.assert_array_equal(
        langevin_dynamics(lambda x: x, x0, 0.1, 0).numpy(), x0.numpy())
    x = langevin_dynamics(lambda x: -x, x0, 0.5, 20, clamp=(-0.2, 0.3),
                          generator=autodiff.Generator(0)).numpy()
    assert x.min() >= -0.2 and x.max() <= 0.3


@pytest.mark.parametrize("kwargs, match", [
    (dict(step_size=0.0), "step_size"),
    (dict(step_size=-1.0), "step_size"),
    (dict(n_steps=-1), "n_steps"),
    (dict(n_steps=2.5), "n_steps"),
    (dict(noise_scale=-0.1), "noise_scale"),
    (dict(clamp=(1.0, 0.0)), "clamp"),
])
def test_bad_arguments_are_named(kwargs, match):
    args = dict(step_size=0.1, n_steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        langevin_dynamics(lambda x: -x, autodiff.zeros(4, 2), **args)


def test_bad_score_shape_and_sigmas_are_named():
    with pytest.raises(ValueError, match="score_fn"):
        langevin_dynamics(lambda x: x.sum(1), autodiff.zeros(4, 2), 0.1, 1)
    with pytest.raises(ValueError, match="decreasing"):
        annealed_langevin_dynamics(lambda x, s: -x, autodiff.zeros(4, 2), [0.1, 1.0], 0.1, 1)
    with pytest.raises(TypeError, match="x0"):
        langevin_dynamics(lambda x: -x, np.zeros((4, 2)), 0.1, 1)
