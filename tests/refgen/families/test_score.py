"""Scores on data whose scores are analytic (float64): the score family's mathematics.

The reference is ``refgen.families.score.analytic.GaussianMixture``, whose perturbed
densities, scores and posterior means are closed forms (its own checks come first). Then:

* the optimal denoiser gives the score: s = -eps*/std with eps* = E[eps | x(t)], exactly;
* the DSM loss is smallest at the true score: its gradient over affine scores vanishes there
  (the normal equations, within Monte Carlo error) and a perturbation delta raises it by
  E||std delta||^2;
* sliced score matching is Hyvarinen's objective: exact on the basis projections, and its
  expectation for a linear score is tr A + tr(A Sigma A^T) / 2;
* every sampler, driven by the analytic score, reproduces the target's mean and covariance
  by two-sample tests (Hotelling's T^2 and Box's M) against exact draws, each at level 1e-3;
* the PF-ODE log-likelihood under the analytic score equals the exact log-density within
  the solver's tolerance, and converges as the tolerance tightens.

Monte Carlo tolerances are z-scores |z| < 4 (two-sided level 6e-5 each) from the sample's
own standard error.
"""
import math

import numpy as np
import pytest
from scipy import stats

import autodiff
from autodiff import backend as B
from refgen.families.common import sde as sde_lib
from refgen.families.score import adapters, analytic, objectives, samplers
from refgen.families.score.sde_model import pf_ode_log_likelihood

LEVEL = 1e-3  # two-sample tests' level


def _np(t):
    return t.numpy() if isinstance(t, autodiff.Tensor) else B.to_numpy(t)


def _mixture():
    """Two correlated components in 2-D, unequal weights: non-Gaussian, analytic."""
    return analytic.GaussianMixture(
        [0.3, 0.7], [[1.0, 0.0], [-1.0, 2.0]],
        [[[0.2, 0.0], [0.0, 0.2]], [[0.5, 0.2], [0.2, 0.3]]])


def _gaussian():
    return analytic.GaussianMixture.gaussian([0.5, -1.0], [[1.0, 0.6], [0.6, 0.8]])


SDES = {"ve": sde_lib.VESDE(sigma_min=0.01, sigma_max=50.0), "vp": sde_lib.VPSDE(),
        "subvp": sde_lib.SubVPSDE()}


# ----------------------------------------------------------------------- the reference itself
def test_analytic_score_is_the_gradient_of_the_log_density():
    gm = _mixture()
    x = gm.sample(7, autodiff.Generator(0)).detach().requires_grad_(True)
    for m, std in [(1.0, 0.0), (0.8, 0.3), (np.linspace(0.1, 1, 7), np.linspace(0.05, 2, 7))]:
        (g,) = autodiff.grad(gm.log_prob(x, m, std).sum(), [x])
        np.testing.assert_allclose(_np(gm.score(x, m, std)), _np(g), rtol=1e-12, atol=1e-12)
    # the log-density integrates to 1: a Riemann sum on a grid covering the mass
    u = np.linspace(-5, 5, 401)
    grid = autodiff.tensor(np.stack(np.meshgrid(u, u + 1), -1).reshape(-1, 2))
    mass = np.exp(_np(gm.log_prob(grid, 0.9, 0.2))).sum() * (u[1] - u[0]) ** 2
    assert mass == pytest.approx(1.0, abs=1e-6)


def test_analytic_sample_moments():
    gm = _mixture()
    x = _np(gm.sample(40000, autodiff.Generator(1)))
    mean, cov = _np(gm.mean()), _np(gm.covariance())
    se = np.sqrt(np.diag(cov) / len(x))
    assert np.all(np.abs(x.mean(0) - mean) < 4 * se)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.03)  # ~4 standard errors


# ----------------------------------------------------------------------- the optimal denoiser
@pytest.mark.parametrize("name", list(SDES))
def test_optimal_denoiser_gives_the_score(name):
    # eps*(x, t) = E[eps | x(t) = x] = (x - m E[x0 | x]) / std; then -eps*/std = grad log p_t,
    # with E[x0 | x] from the posterior-mean formula (not from the score).
    sde, gm = SDES[name], _mixture()
    g = autodiff.Generator(2)
    t = autodiff.tensor(np.linspace(0.02, 0.9, 64))
    x = sde.perturb(gm.sample(64, g), t, autodiff.randn(64, 2, generator=g))

    def eps_star(x, t):
        m, std = sde.marginal_coefficients(t, x.shape[0], x.dtype)
        return (x - sde_lib.expand_to(m, x) * gm.denoiser(x, m, std)) / sde_lib.expand_to(std, x)

    want = _np(gm.score_fn(sde)(x, t))
    np.testing.assert_allclose(_np(adapters.score_from_eps(eps_star, sde)(x, t)), want,
                               rtol=1e-10, atol=1e-10)
    denoiser = lambda x, t: gm.denoiser(x, *sde.marginal_coefficients(t, x.shape[0]))  # noqa
    np.testing.assert_allclose(_np(adapters.score_from_denoiser(denoiser, sde)(x, t)), want,
                               rtol=1e-10, atol=1e-10)
    # round trip through eps, and a DDPM-style network that takes the step index i = t (N - 1)
    eps = adapters.eps_from_score(gm.score_fn(sde), sde)
    ddpm_net = lambda x, i: eps(x, i / 999.0)                                     # noqa: E731
    np.testing.assert_allclose(
        _np(adapters.score_from_eps(ddpm_net, sde, adapters.ddpm_time_input(1000))(x, t)),
        want, rtol=1e-12, atol=1e-12)


def test_tweedie_denoise_is_the_posterior_mean():
    sde, gm = SDES["vp"], _mixture()
    x = sde.perturb(gm.sample(9, autodiff.Generator(16)), 0.05,
                    autodiff.randn(9, 2, generator=autodiff.Generator(17)))
    got = samplers.tweedie_denoise(sde, gm.score_fn(sde), x, 0.05)
    want = gm.denoiser(x, *sde.marginal_coefficients(0.05, 9))
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------- denoising score matching
def _perturbed(sde, gm, t, n, seed):
    g = autodiff.Generator(seed)
    x0 = gm.sample(n, g)
    eps = autodiff.randn(n, 2, generator=g)
    tt = autodiff.full((n,), t)
    _, std = sde.marginal_coefficients(tt)
    return sde.perturb(x0, tt, eps), tt, eps, std


@pytest.mark.parametrize("name", list(SDES))
def test_dsm_gradient_vanishes_at_the_true_affine_score(name):
    # On Gaussian data the true score of p_t is affine, s(x) = A x + b. The DSM loss is a
    # least-squares problem in (A, b); its gradient 2 E[r (x, 1)^T std], r = std s + eps, is
    # zero at the truth: each entry's mean is within 4 standard errors of 0.
    # t where std(t) is about 1 (VE: sigma(0.6) = 1.7; VP: 0.98), so the power check has power
    sde, gm = SDES[name], _gaussian()
    x, t, eps, std = _perturbed(sde, gm, 0.6 if name == "ve" else 0.3, 50000, 3)
    s = gm.score_fn(sde)(x, t)
    r = _np(std)[:, None] * _np(s) + _np(eps)                     # (N, 2)
    feats = np.concatenate([_np(x), np.ones((len(r), 1))], axis=1)  # (N, 3)
    per_example = (r[:, :, None] * feats[:, None, :]).reshape(len(r), -1)
    z = per_example.mean(0) / (per_example.std(0, ddof=1) / math.sqrt(len(r)))
    assert np.all(np.abs(z) < 4), z
    # ... and a wrong affine score (a slightly too narrow one) has a clearly non-zero gradient
    r_bad = _np(std)[:, None] * (_np(s) * 1.1) + _np(eps)
    bad = (r_bad[:, :, None] * feats[:, None, :]).reshape(len(r), -1)
    z_bad = bad.mean(0) / (bad.std(0, ddof=1) / math.sqrt(len(r)))
    assert np.max(np.abs(z_bad)) > 10


@pytest.mark.parametrize("name", list(SDES))
def test_dsm_loss_is_smallest_at_the_true_score(name):
    # L(s + delta) - L(s) = E||std delta||^2 + 2 E[std delta . (std s + eps)]; the cross term
    # has mean 0 exactly when s is the true score (Tweedie), so the difference equals
    # E||std delta||^2 up to the cross term's Monte Carlo error.
    sde, gm = SDES[name], _mixture()
    x, t, eps, std = _perturbed(sde, gm, 0.2, 40000, 4)
    s = gm.score_fn(sde)(x, t)
    base = _np(objectives.dsm_loss(s, eps, std))
    sd = _np(std)[:, None]
    for delta in (autodiff.tensor([[0.3, -0.2]]) * autodiff.ones(len(base), 1) / sd.mean(),
                  0.2 * x / sd.mean(), 0.2 * s):
        pert = _np(objectives.dsm_loss(s + delta, eps, std))
        diff = pert - base
        want = ((sd * _np(delta)) ** 2).sum(1)
        cross = diff - want
        assert diff.mean() > 0
        assert abs(cross.mean()) < 4 * cross.std(ddof=1) / math.sqrt(len(cross))


# ----------------------------------------------------------------------- sliced score matching
def test_sliced_score_matching_on_the_basis_is_hyvarinen():
    # sum over v = e_1..e_D of v^T J v + (v^T s)^2 / 2 = tr J + ||s||^2 / 2 (Hyvarinen 2005),
    # for a non-linear score (the mixture's), exactly; tr J by divergence_exact.
    from refgen.families.common.ode import divergence_exact
    sde, gm = SDES["vp"], _mixture()
    x, t, _, _ = _perturbed(sde, gm, 0.1, 6, 5)
    score = lambda z: gm.score_fn(sde)(z, t)                        # noqa: E731
    total = 0.0
    for i in range(2):
        v = autodiff.zeros(6, 2)
        v.data[:, i] = 1.0
        total = total + _np(objectives.sliced_score_matching_loss(score, x, v))
    xr = x.detach().requires_grad_(True)
    s = score(xr)
    want = _np(divergence_exact(s, xr)) + 0.5 * (_np(s) ** 2).sum(1)
    np.testing.assert_allclose(total, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind,variance_reduced", [("rademacher", False), ("gaussian", False),
                                                   ("gaussian", True)])
def test_sliced_score_matching_expectation_for_a_linear_score(kind, variance_reduced):
    # x ~ N(0, Sigma), s(x) = A x: E[v^T A v + (v^T A x)^2 / 2] = tr A + tr(A Sigma A^T) / 2
    # (E[v v^T] = I), and the same for the variance-reduced ||A x||^2 / 2 form.
    Sigma = np.array([[1.0, 0.6], [0.6, 0.8]])
    gm = analytic.GaussianMixture.gaussian([0.0, 0.0], Sigma)
    n = 40000
    x = gm.sample(n, autodiff.Generator(6))
    A = np.array([[-1.2, 0.4], [0.3, -0.9]])
    At = autodiff.tensor(A)
    v = objectives.projections((n, 2), kind, generator=autodiff.Generator(7))
    loss = _np(objectives.sliced_score_matching_loss(lambda z: z @ At.T, x, v, variance_reduced))
    want = np.trace(A) + 0.5 * np.trace(A @ Sigma @ A.T)
    assert abs(loss.mean() - want) < 4 * loss.std(ddof=1) / math.sqrt(n)


def test_sliced_score_matching_trains_theta_to_second_order():
    # the loss's gradient w.r.t. a parameter inside J needs create_graph: d/dA of E[v^T A v]
    # = E[v v^T] = I on the diagonal; compare with the analytic gradient of one batch.
    n = 5
    x = autodiff.randn(n, 2, generator=autodiff.Generator(8))
    v = objectives.projections((n, 2), "gaussian", generator=autodiff.Generator(9))
    A = autodiff.tensor([[-1.0, 0.2], [0.1, -0.5]], requires_grad=True)
    loss = objectives.sliced_score_matching_loss(lambda z: z @ A.T, x, v).sum()
    (gA,) = autodiff.grad(loss, [A])
    xv, vv, Av = _np(x), _np(v), _np(A)
    proj = ((xv @ Av.T) * vv).sum(1)                                   # v^T A x
    want = vv.T @ vv + (proj[:, None] * vv).T @ xv                    # sum v v^T + (v^T A x) v x^T
    np.testing.assert_allclose(_np(gA), want, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------- samplers
def hotelling_p(a, b):
    """Two-sample Hotelling T^2 p-value (equal covariances), exact F reference."""
    n1, n2, p = len(a), len(b), a.shape[1]
    d = a.mean(0) - b.mean(0)
    S = ((n1 - 1) * np.cov(a.T) + (n2 - 1) * np.cov(b.T)) / (n1 + n2 - 2)
    t2 = n1 * n2 / (n1 + n2) * d @ np.linalg.solve(S, d)
    f = (n1 + n2 - p - 1) / (p * (n1 + n2 - 2)) * t2
    return stats.f.sf(f, p, n1 + n2 - p - 1)


def box_m_p(a, b):
    """Box's M test of equal covariances, chi^2 approximation (Box 1949)."""
    groups = [a, b]
    p, k = a.shape[1], 2
    ns = np.array([len(g) for g in groups])
    covs = [np.cov(g.T) for g in groups]
    pooled = sum((n - 1) * c for n, c in zip(ns, covs)) / (ns.sum() - k)
    M = (ns.sum() - k) * np.linalg.slogdet(pooled)[1] - \
        sum((n - 1) * np.linalg.slogdet(c)[1] for n, c in zip(ns, covs))
    c1 = (np.sum(1 / (ns - 1)) - 1 / (ns.sum() - k)) * (2 * p * p + 3 * p - 1) / \
        (6 * (p + 1) * (k - 1))
    return stats.chi2.sf(M * (1 - c1), p * (p + 1) * (k - 1) / 2)


CASES = [("em", "vp", 500), ("em", "ve", 500), ("reverse_diffusion", "vp", 500),
         ("reverse_diffusion", "ve", 500), ("pc", "vp", 200), ("pc", "ve", 200),
         ("pc", "subvp", 200), ("ode_rk4", "vp", 50), ("ode", "vp", 1), ("ode", "subvp", 1),
         ("ode", "ve", 1)]


@pytest.mark.parametrize("sampler,name,steps", CASES)
def test_sampler_reproduces_the_target(sampler, name, steps):
    # 2000 samples by the sampler vs 2000 exact draws: equal means (Hotelling) and equal
    # covariances (Box's M), each at level 1e-3. Discretization bias at these step counts is
    # far below what n = 2000 can detect (about 0.1 std in the mean, 10% in the covariance).
    sde, gm = SDES[name], _mixture()
    n = 2000
    xT = sde.prior_sample((n, 2), generator=autodiff.Generator(10))
    fn = samplers.SAMPLERS[sampler]
    y, nfe = fn(sde, gm.score_fn(sde), xT, samplers.time_grid(sde, steps),
                generator=autodiff.Generator(11))
    y = _np(y)
    ref = _np(gm.sample(n, autodiff.Generator(12)))
    assert hotelling_p(y, ref) > LEVEL
    assert box_m_p(y, ref) > LEVEL
    assert nfe >= steps


def test_a_wrong_reverse_drift_is_caught():
    # the test's power: the PF-ODE with the full g^2 s (the SDE's drift without its noise)
    # collapses the samples; the same test then rejects.
    sde, gm = SDES["vp"], _mixture()
    xT = sde.prior_sample((2000, 2), generator=autodiff.Generator(10))
    wrong = lambda x, t: 2.0 * gm.score_fn(sde)(x, t)                      # noqa: E731
    y, _ = samplers.pf_ode_rk4(sde, wrong, xT, samplers.time_grid(sde, 50))
    ref = _np(gm.sample(2000, autodiff.Generator(12)))
    assert box_m_p(_np(y), ref) < LEVEL


def test_samplers_name_bad_arguments():
    sde = SDES["vp"]
    x = autodiff.zeros(4, 2)
    score = lambda x, t: -x                                                 # noqa: E731
    with pytest.raises(ValueError, match="strictly decreasing"):
        samplers.euler_maruyama(sde, score, x, [0.1, 0.5])
    with pytest.raises(ValueError, match="predictor must be"):
        samplers.predictor_corrector(sde, score, x, [1.0, 0.5], predictor="heun")
    with pytest.raises(ValueError, match="snr must be"):
        samplers.predictor_corrector(sde, score, x, [1.0, 0.5], snr=-1)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        samplers.time_grid(sde, 0)
    with pytest.raises(TypeError, match="sde must be"):
        samplers.euler_maruyama("vp", score, x, [1.0, 0.5])


# ----------------------------------------------------------------------- the ODE likelihood
@pytest.mark.parametrize("name", list(SDES))
def test_pf_ode_likelihood_equals_the_exact_log_density(name):
    # log p_{t_eps}(x) by the PF-ODE with the exact p_T at the far end: the only error is the
    # solver's. RK45 at rtol = atol = 1e-6 stays within 1e-4 nats (measured: about 1e-6..1e-5);
    # at 1e-9 the error falls below 1e-6, so it is the solver's and not a bias.
    sde, gm = SDES[name], _mixture()
    t_eps = 1e-3 if name != "ve" else 1e-5
    x = gm.sample(6, autodiff.Generator(13))
    exact = _np(gm.log_prob_t(x, sde, t_eps))
    prior = lambda z: gm.log_prob_t(z, sde, sde.T)                          # noqa: E731
    errors = []
    for tol in (1e-6, 1e-9):
        lp, nfe = pf_ode_log_likelihood(sde, gm.score_fn(sde), x, t_eps=t_eps, rtol=tol,
                                        atol=tol, prior_log_prob=prior)
        errors.append(np.max(np.abs(_np(lp) - exact)))
    assert errors[0] < 1e-4, errors
    assert errors[1] < 1e-6, errors
    # RK4 on a fixed grid agrees too (error O(h^4))
    lp4, _ = pf_ode_log_likelihood(sde, gm.score_fn(sde), x, t_eps=t_eps, solver="rk4",
                                   steps=400, prior_log_prob=prior)
    assert np.max(np.abs(_np(lp4) - exact)) < 1e-3


def test_pf_ode_likelihood_hutchinson_is_unbiased():
    # Hutchinson's divergence (one Rademacher draw per example): the average over 400 copies
    # of one point agrees with the exact-divergence value within 4 standard errors.
    sde, gm = SDES["vp"], _mixture()
    x = gm.sample(1, autodiff.Generator(14)) * autodiff.ones(400, 1)
    kw = dict(t_eps=1e-3, rtol=1e-6, atol=1e-6)
    exact, _ = pf_ode_log_likelihood(sde, gm.score_fn(sde), x[:1], **kw)
    est, _ = pf_ode_log_likelihood(sde, gm.score_fn(sde), x, divergence="hutchinson",
                                   generator=autodiff.Generator(15), **kw)
    est = _np(est)
    assert abs(est.mean() - _np(exact)[0]) < 4 * est.std(ddof=1) / math.sqrt(len(est))
    assert est.std() > 0  # it is an estimate
