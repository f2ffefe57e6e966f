"""The abstract SDE and its VE, VP and sub-VP instances (refgen.families.common.sde).

Facts checked (float64):

* the marginal p_0t(x(t) | x0) = N(m(t) x0, std(t)^2 I) solves the SDE's moment equations
  dm/dt = -beta/2 m (or 0) and d(std^2)/dt = 2 a(t) std^2 + g(t)^2, a(t) the drift
  coefficient, by central differences (an exact identity up to the difference's O(h^2) error);
* the marginal matches an Euler-Maruyama simulation of the forward SDE by a two-sample
  z-test at |z| < 4 per statistic (two-sided level 6e-5 each);
* DDPM's linear schedule is the VP SDE discretized; SMLD's steps telescope to the VE marginal;
* the reverse drift and the PF-ODE drift are f - g^2 s and f - g^2 s / 2;
* the prior's log-density is the Gaussian's; bad arguments are named.
"""
import math

import numpy as np
import pytest

import autodiff
from refgen.families.common import sde as sde_lib

SDES = [sde_lib.VESDE(sigma_min=0.01, sigma_max=5.0), sde_lib.VPSDE(), sde_lib.SubVPSDE()]
IDS = ["ve", "vp", "subvp"]


def _np(t):
    return np.asarray(t.numpy() if isinstance(t, autodiff.Tensor) else t)


def _drift_coefficient(sde, t):
    """a(t) with f(x, t) = a(t) x, read off the drift at x = 1."""
    one = autodiff.ones(1, 1)
    return float(_np(sde.drift(one, t))[0, 0])


@pytest.mark.parametrize("sde", SDES, ids=IDS)
@pytest.mark.parametrize("t", [0.05, 0.3, 0.8])
def test_marginal_solves_the_moment_equations(sde, t):
    # x(t) = m(t) x0 + std(t) eps solves dx = a x dt + g dw iff m' = a m and
    # (std^2)' = 2 a std^2 + g^2 (Sarkka & Solin 2019, eq. 5.51 for linear SDEs).
    h = 1e-5
    m = lambda s: float(_np(sde.marginal_coefficients(s)[0])[0])        # noqa: E731
    v = lambda s: float(_np(sde.marginal_coefficients(s)[1])[0]) ** 2   # noqa: E731
    a = _drift_coefficient(sde, t)
    g2 = float(_np(sde.diffusion(t))[0]) ** 2
    dm = (m(t + h) - m(t - h)) / (2 * h)
    dv = (v(t + h) - v(t - h)) / (2 * h)
    # central differences: error ~ h^2 |f'''| / 6; with the derivatives' scale here
    # (beta <= 20, sigma_max = 5) that is below 1e-6 relative
    assert dm == pytest.approx(a * m(t), rel=1e-6, abs=1e-9)
    assert dv == pytest.approx(2 * a * v(t) + g2, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_marginal_matches_a_simulation_of_the_forward_sde(sde):
    # Euler-Maruyama with drift() and diffusion() (not the SDE's own discretize), from a fixed
    # x0 to t1; for VE, x(0) = x0 + sigma_min eps (score_sde's convention, module docstring).
    g = autodiff.Generator(1)
    M, D, t1, steps = 20000, 2, 0.5, 1000
    x0 = autodiff.tensor([[1.5, -0.7]]) * autodiff.ones(M, 1)
    x = x0
    if isinstance(sde, sde_lib.VESDE):
        x = x + sde.sigma_min * autodiff.randn(M, D, generator=g)
    dt = t1 / steps
    for i in range(steps):
        t = i * dt
        x = x + sde.drift(x, t) * dt + \
            sde_lib.expand_to(sde.diffusion(t, M), x) * math.sqrt(dt) * \
            autodiff.randn(M, D, generator=g)
    mean, std = sde.marginal(x0[:1], t1)
    mean, var = _np(mean)[0], float(_np(std)[0]) ** 2
    xs = _np(x)
    # z-tests: the sample mean has standard error sqrt(var / M); the sample variance of a
    # Gaussian sqrt(2 / (M - 1)) var. EM's bias is O(dt) = 5e-4 relative: far below these.
    z_mean = (xs.mean(axis=0) - mean) / math.sqrt(var / M)
    z_var = (xs.var(axis=0, ddof=1) - var) / (var * math.sqrt(2.0 / (M - 1)))
    assert np.all(np.abs(z_mean) < 4), z_mean
    assert np.all(np.abs(z_var) < 4), z_var


def test_ddpm_is_the_vp_sde_discretized():
    # beta_i = beta(t_i) / N on t_i = i / (N - 1): Ho et al.'s linear 1e-4..0.02 for N = 1000.
    sde, N = sde_lib.VPSDE(), 1000
    x = autodiff.ones(N, 1)
    t = np.arange(N) / (N - 1)
    f, G = sde.discretize(x, t, 1.0 / N)
    betas = _np(G) ** 2
    np.testing.assert_allclose(betas, np.linspace(1e-4, 0.02, N), rtol=1e-12, atol=1e-15)
    # the DDPM step x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z, so f = (sqrt(1-b) - 1) x
    np.testing.assert_allclose(_np(f)[:, 0], np.sqrt(1 - betas) - 1, rtol=1e-12)
    # sum beta_i = mean of beta on the uniform grid = (beta_min + beta_max) / 2 = B(1), exactly,
    # so alpha_bar = prod(1 - beta_i) = m(1)^2 exp(-r), 0 <= r = sum(-log(1 - b) - b) <= sum b^2
    B1 = float(sde.integrated_beta(1.0))
    assert betas.sum() == pytest.approx(B1, rel=1e-12)
    r = -np.log(np.prod(1 - betas)) - B1
    assert 0 <= r <= np.sum(betas ** 2)


def test_ve_steps_telescope_to_the_marginal():
    # sum of G_i^2 over SMLD steps from t0 to t1 = sigma(t1)^2 - sigma(t0)^2, exactly.
    sde = sde_lib.VESDE(sigma_min=0.01, sigma_max=50.0)
    x = autodiff.zeros(1, 3)
    ts = np.linspace(0.1, 0.9, 41)
    total = sum(float(_np(sde.discretize(x, ts[i], ts[i + 1] - ts[i])[1])[0]) ** 2
                for i in range(len(ts) - 1))
    s0, s1 = (float(_np(sde.marginal_coefficients(t)[1])[0]) for t in (0.1, 0.9))
    assert total == pytest.approx(s1 ** 2 - s0 ** 2, rel=1e-12)


@pytest.mark.parametrize("sde", SDES, ids=IDS)
@pytest.mark.parametrize("probability_flow", [False, True])
def test_reverse_drift(sde, probability_flow):
    g = autodiff.Generator(2)
    x = autodiff.randn(5, 3, generator=g)
    score = lambda x, t: -2.0 * x + 1.0                                   # noqa: E731
    rev = sde.reverse(score, probability_flow=probability_flow)
    t = 0.4
    g2 = float(_np(sde.diffusion(t))[0]) ** 2
    c = 0.5 if probability_flow else 1.0
    want = _np(sde.drift(x, t)) - c * g2 * _np(score(x, t))
    np.testing.assert_allclose(_np(rev.drift(x, t)), want, rtol=1e-13, atol=1e-13)
    assert np.all(_np(rev.diffusion(t, 5)) == (0.0 if probability_flow else math.sqrt(g2)))
    # the discretized reverse step: x(t - dt) = x - (f_F - c G_F^2 s) + G z
    dt = 1e-3
    fF, GF = sde.discretize(x, t, dt)
    f, G = rev.discretize(x, t, dt)
    want = -(_np(fF) - c * _np(GF)[:, None] ** 2 * _np(score(x, t)))
    np.testing.assert_allclose(_np(f), want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_prior_log_prob_is_the_gaussian(sde):
    scipy_stats = pytest.importorskip("scipy.stats")
    z = sde.prior_sample((4, 3), generator=autodiff.Generator(3))
    scale = sde.sigma_max if isinstance(sde, sde_lib.VESDE) else 1.0
    want = scipy_stats.norm(0, scale).logpdf(_np(z)).sum(axis=1)
    np.testing.assert_allclose(_np(sde.prior_log_prob(z)), want, rtol=1e-13)
    # the prior is the marginal at T when the data sit at 0 (VP: m(T) ~ 4e-5, std ~ 1)
    m, s = sde.marginal_coefficients(sde.T)
    assert float(_np(s)[0]) == pytest.approx(scale, rel=1e-2)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="sigma_max"):
        sde_lib.VESDE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="beta_min"):
        sde_lib.VPSDE(beta_min=-1.0)
    with pytest.raises(ValueError, match="unknown SDE 'foo'"):
        sde_lib.make_sde("foo")
    with pytest.raises(ValueError, match=r"t must be a scalar or of shape \(4,\)"):
        sde_lib.VPSDE().marginal(autodiff.zeros(4, 2), np.zeros(3))
    with pytest.raises(TypeError, match="x must be an autodiff.Tensor"):
        sde_lib.VPSDE().marginal(np.zeros((4, 2)), 0.5)
    with pytest.raises(ValueError, match="score_fn returned shape"):
        sde_lib.VPSDE().reverse(lambda x, t: x[:, :1]).drift(autodiff.zeros(4, 2), 0.5)
    with pytest.raises(ValueError, match="take a smaller dt"):
        sde_lib.VPSDE().discretize(autodiff.zeros(4, 2), 0.9, 0.1)
    assert sde_lib.make_sde(**sde_lib.SubVPSDE(beta_max=10.0).config()).beta_max == 10.0
