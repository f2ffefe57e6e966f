"""DDPM's process, parameterisations, variational bound, DDIM and classifier-free guidance
(float64; the conftest fixture sets the default dtype).

Each test states a mathematical fact about Ho et al. 2020 / Song et al. 2021a / Ho & Salimans
2022 and its tolerance says where it comes from: float64 rounding for identities, a computed
Monte Carlo standard error for simulations.
"""
import math

import numpy as np  # host-side: test arithmetic and reference values
import pytest

import autodiff
from autodiff import backend as B
from autodiff import nn
from refgen.distributions import Normal
from refgen.families import diffusion
from refgen.families.diffusion import samplers as S
from refgen.families.diffusion.schedules import (NoiseSchedule, cosine_betas, linear_betas,
                                                 prediction_target, space_timesteps,
                                                 x0_eps_from_prediction)


def _np(t):
    return B.to_numpy(t.data if isinstance(t, autodiff.Tensor) else t)


def _t(a):
    return autodiff.Tensor(B.to_backend(np.asarray(a, dtype=np.float64)))


# --------------------------------------------------------------------------- schedules
def test_linear_betas_endpoints_and_cosine_alpha_bar_is_the_cosine():
    betas = _np(linear_betas(1000))
    assert betas[0] == pytest.approx(1e-4, rel=1e-12) and betas[-1] == pytest.approx(0.02, rel=1e-12)
    # cosine: prod_{s<=t}(1 - beta_s) telescopes to f(t + 1) / f(0) wherever beta is not clipped
    T, s = 1000, 0.008
    sched = NoiseSchedule(cosine_betas(T, s=s))
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
    unclipped = _np(sched.betas) < 0.999
    np.testing.assert_allclose(_np(sched.alpha_bar)[unclipped], (f[1:] / f[0])[unclipped],
                               rtol=1e-10)   # float64 rounding over up to 1000 factors
    assert not unclipped[-1]                 # the last beta is the clipped one


def test_q_marginal_is_the_composition_of_the_steps():
    """q(x_t | x_0) = N(m_t x_0, v_t) obeys m_t = sqrt(alpha_t) m_{t-1},
    v_t = alpha_t v_{t-1} + beta_t (one more step of Eq. 2), m_{-1} = 1, v_{-1} = 0: catches
    an off-by-one in alpha_bar that a simulation is too noisy to see."""
    for name in ("linear", "cosine"):
        sched = NoiseSchedule.from_name(name, 1000)
        x0 = _t(np.ones((1000, 1)))
        t = np.arange(1000)
        mean, var = sched.q_mean_variance(x0, t)
        m, v = _np(mean)[:, 0], _np(var)[:, 0]
        alphas, betas = _np(sched.alphas), _np(sched.betas)
        m_prev = np.concatenate([[1.0], m[:-1]])
        v_prev = np.concatenate([[0.0], v[:-1]])
        np.testing.assert_allclose(m, np.sqrt(alphas) * m_prev, rtol=1e-12)
        np.testing.assert_allclose(v, alphas * v_prev + betas, rtol=1e-12, atol=1e-300)


def test_q_sample_matches_a_simulation_of_the_chain():
    """Run x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z for 20,000 chains; at several t the
    sample mean and variance agree with q(x_t | x_0) (Eq. 4) within 4.5 standard errors
    (SE of a mean sqrt(v/N); of a variance v sqrt(2/(N-1)); 4.5 keeps 24 comparisons below
    a 1e-4 false-alarm rate), and q_sample's own draws agree too."""
    gen = np.random.default_rng(1)
    sched = NoiseSchedule.from_name("linear", 1000)
    n, x0 = 20000, np.array([3.0, -1.0, 0.0])
    x = np.tile(x0, (n, 1))
    alphas, betas = _np(sched.alphas), _np(sched.betas)
    checks = {0, 9, 99, 499, 999}
    x0_t = _t(np.tile(x0, (n, 1)))
    for t in range(1000):
        x = np.sqrt(alphas[t]) * x + np.sqrt(betas[t]) * gen.standard_normal(x.shape)
        if t in checks:
            idx = np.full(n, t)
            mean, var = (_np(a) for a in sched.q_mean_variance(x0_t, idx))
            mean, var = mean[0], var[0, 0]
            direct = _np(sched.q_sample(x0_t, idx, _t(gen.standard_normal((n, 3)))))
            for sample in (x, direct):
                z_mean = (sample.mean(0) - mean) / np.sqrt(var / n)
                z_var = (sample.var(0, ddof=1) - var) / (var * np.sqrt(2.0 / (n - 1)))
                assert np.all(np.abs(z_mean) < 4.5), (t, z_mean)
                assert np.all(np.abs(z_var) < 4.5), (t, z_var)


@pytest.mark.parametrize("respaced", [False, True])
def test_posterior_is_bayes_rule(respaced):
    """q(x_{t-1} | x_t, x_0) q(x_t | x_0) = q(x_t | x_{t-1}) q(x_{t-1} | x_0) at random points,
    for every t >= 1 (Eq. 6, 7): the posterior mean and variance are the ones Bayes' rule
    gives. Also for a respaced chain, whose steps compose the skipped ones. Float64
    rounding of log-densities of size ~10: 1e-8 absolute."""
    sched = NoiseSchedule.from_name("cosine", 1000)
    if respaced:
        sched = sched.respace(space_timesteps(1000, 37))
    T = sched.num_timesteps
    gen = np.random.default_rng(2)
    t = np.arange(1, T)
    x0 = _t(gen.standard_normal((T - 1, 2)))
    xt = _t(gen.standard_normal((T - 1, 2)))
    x_prev = _t(gen.standard_normal((T - 1, 2)))
    mean, var, log_var = sched.q_posterior(x0, xt, t)
    np.testing.assert_allclose(np.exp(_np(log_var)), _np(var), rtol=1e-12)
    post = Normal(mean, autodiff.sqrt(var)).log_prob(x_prev)
    alphas = _t(_np(sched.alphas)[t][:, None])
    betas = _t(_np(sched.betas)[t][:, None])
    step = Normal(autodiff.sqrt(alphas) * x_prev, autodiff.sqrt(betas)).log_prob(xt)
    m_prev, v_prev = sched.q_mean_variance(x0, t - 1)
    prior = Normal(m_prev, autodiff.sqrt(v_prev)).log_prob(x_prev)
    m_t, v_t = sched.q_mean_variance(x0, t)
    evidence = Normal(m_t, autodiff.sqrt(v_t)).log_prob(xt)
    np.testing.assert_allclose(_np(post), _np(step + prior - evidence), rtol=0, atol=1e-8)


def test_respacing_keeps_the_marginals():
    sched = NoiseSchedule.from_name("linear", 1000)
    keep = space_timesteps(1000, 10)
    assert list(_np(keep)) == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    short = sched.respace(keep)
    np.testing.assert_allclose(_np(short.alpha_bar), _np(sched.alpha_bar)[_np(keep)], rtol=1e-12)
    assert list(_np(short.timesteps)) == list(_np(keep))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_parameterisations_recover_x0_and_eps(prediction):
    """Feeding the exact target of each parameterisation gives back (x_0, eps) exactly,
    and v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0 (Salimans & Ho 2022)."""
    sched = NoiseSchedule.from_name("cosine", 1000)
    gen = np.random.default_rng(3)
    t = gen.integers(0, 1000, size=64)
    x0, eps = _t(gen.standard_normal((64, 3))), _t(gen.standard_normal((64, 3)))
    xt = sched.q_sample(x0, t, eps)
    a, s = sched.coefficients(t, x0)
    target = prediction_target(prediction, x0, eps, a, s)
    x0_hat, eps_hat = x0_eps_from_prediction(prediction, target, xt, a, s)
    # the x0 and eps parameterisations divide by sqrt(alpha_bar) or sqrt(1 - alpha_bar),
    # which reach ~1e-2 at the ends of the cosine schedule: relative rounding ~1e-13
    np.testing.assert_allclose(_np(x0_hat), _np(x0), atol=1e-9)
    np.testing.assert_allclose(_np(eps_hat), _np(eps), atol=1e-9)
    if prediction == "v":
        ab = _np(sched.alpha_bar)[t][:, None]
        np.testing.assert_allclose(_np(target), np.sqrt(ab) * _np(eps) - np.sqrt(1 - ab) * _np(x0),
                                   atol=1e-12)


# --------------------------------------------------------------------------- DDIM
@pytest.mark.parametrize("steps", [1000, 25])
def test_ddim_with_eta_one_is_the_ddpm_posterior(steps):
    """With eta = 1 DDIM's step has DDPM's posterior variance beta_tilde_t and, given the
    x_0 and eps of the same x_t, its posterior mean (Song et al. 2021a, Eq. 16 and Sec. 4.1),
    on the full and on a respaced schedule; eta = 0 adds no noise."""
    sched = NoiseSchedule.from_name("linear", 1000)
    if steps != 1000:
        sched = sched.respace(space_timesteps(1000, steps))
    gen = np.random.default_rng(4)
    for i in range(1, sched.num_timesteps):
        ab, ab_prev = float(sched.alpha_bar[i]), float(sched.alpha_bar_prev[i])
        assert S.ddim_sigma(ab, ab_prev, 1.0) ** 2 == pytest.approx(
            float(sched.posterior_variance[i]), rel=1e-10)
        assert S.ddim_sigma(ab, ab_prev, 0.0) == 0.0
    i = np.array([1, sched.num_timesteps // 2, sched.num_timesteps - 1])
    x0, eps = _t(gen.standard_normal((3, 2))), _t(gen.standard_normal((3, 2)))
    xt = sched.q_sample(x0, i, eps)
    mean, _, _ = sched.q_posterior(x0, xt, i)
    for row, idx in enumerate(i):
        step = S.ddim_step(x0[row:row + 1], eps[row:row + 1], float(sched.alpha_bar[idx]),
                           float(sched.alpha_bar_prev[idx]), eta=1.0,
                           noise=autodiff.zeros(1, 2))
        np.testing.assert_allclose(_np(step)[0], _np(mean)[row], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- the bound
class _GaussianEps(nn.Module):
    """The exact eps(x_t, t) = E[eps | x_t] for data x_0 ~ N(m, s^2 I):
    sqrt(1 - ab) (x_t - sqrt(ab) m) / (ab s^2 + 1 - ab)."""

    def __init__(self, schedule, m, s):
        super().__init__()
        self.schedule, self.m, self.s = schedule, m, s
        self.dummy = nn.Parameter(autodiff.zeros(1))   # gives the model its dtype

    def forward(self, x, t, y=None):
        idx = np.rint(_np(t)).astype(np.int64)
        ab = _t(_np(self.schedule.alpha_bar)[idx][:, None])
        return autodiff.sqrt(1.0 - ab) * (x - autodiff.sqrt(ab) * self.m) \
            / (ab * self.s ** 2 + 1.0 - ab)


def _gaussian_ddpm(T, beta_end, m, s, dim=2):
    info = {"kind": "points", "shape": [dim], "name": "gaussian"}
    config = diffusion.default_config(info)
    config.update({"timesteps": T, "data_info": info})
    model = diffusion.build(config)
    model.schedule = NoiseSchedule(linear_betas(T, 1e-3, beta_end))
    model.net = _GaussianEps(model.schedule, m, s)
    return model


def _expected_bound(model, x0, m, s):
    """E_q[log p(x_0:T) - log q(x_1:T | x_0)] in closed form per example when the network is
    the exact eps of N(m, s^2 I) data (``_GaussianEps``; x0 may come from other data): every
    p_theta mean is affine in x_t, x0_hat = alpha x_t + b, so each KL is a Gaussian
    expectation (derived independently of the code's formulas)."""
    sched = model.schedule
    T = sched.num_timesteps
    ab, post_var = _np(sched.alpha_bar), _np(sched.posterior_variance)
    coef_x0 = _np(sched.posterior_mean_coef_x0)
    total = np.zeros(x0.shape[0])
    for t in range(T):
        a, sd = np.sqrt(ab[t]), np.sqrt(1.0 - ab[t])
        k = 1.0 / (ab[t] * s ** 2 + 1.0 - ab[t])
        alpha, b = (1.0 - sd ** 2 * k) / a, sd ** 2 * k * m
        # E_{x_t ~ q(x_t|x_0)} (x_0 - x0_hat)^2, per dimension
        err2 = (x0 - alpha * a * x0 - b) ** 2 + alpha ** 2 * sd ** 2
        var_p = post_var[1] if t == 0 else post_var[t]     # beta_tilde, index 0 clipped
        if t == 0:   # decoder: -log N(x_0; x0_hat, var_p)
            total += (0.5 * np.log(2 * np.pi * var_p) + err2 / (2 * var_p)).sum(1)
        else:        # KL of two Gaussians with equal variance: squared mean gap / 2 var
            total += (coef_x0[t] ** 2 * err2 / (2 * var_p)).sum(1)
    a2, v = ab[-1], 1.0 - ab[-1]
    total += (0.5 * (v + a2 * x0 ** 2 - 1.0 - np.log(v))).sum(1)     # prior KL
    return -total


def test_bound_with_the_exact_eps_is_below_the_true_log_likelihood():
    """Gaussian data N(m, s^2 I), the exact eps: (1) the Monte Carlo bound the model computes
    (log_prob) agrees with the bound's closed form, within 4.5 standard errors of the
    per-example differences; (2) the bound is below the true log-density on average
    (E_data[ELBO] <= E_data[log p_theta] <= E_data[log p_data], Gibbs), by more than 4.5
    standard errors' worth of doubt. A short chain (T = 40, betas 1e-3..0.3) so the prior
    term (~1.2 nats) and every KL matter."""
    m, s, n = 3.0, 0.5, 2000
    model = _gaussian_ddpm(40, 0.1, m, s)
    gen = np.random.default_rng(5)
    x0 = m + s * gen.standard_normal((n, 2))
    bound_mc = _np(model.log_prob(x0, generator=autodiff.Generator(6)))
    bound_exact = _expected_bound(model, x0, m, s)
    diff = bound_mc - bound_exact
    assert abs(diff.mean()) < 4.5 * diff.std(ddof=1) / math.sqrt(n), \
        (diff.mean(), diff.std(ddof=1) / math.sqrt(n))
    log_p = (-0.5 * ((x0 - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)).sum(1)
    gap = log_p - bound_exact
    assert gap.mean() > 4.5 * gap.std(ddof=1) / math.sqrt(n)
    # and the terms: the prior KL is its closed form
    prior = _np(model.prior_kl(_t(x0)))
    np.testing.assert_allclose(prior, 0.5 * (1 - float(model.schedule.alpha_bar[-1])
                                             + float(model.schedule.alpha_bar[-1]) * x0 ** 2 - 1
                                             - math.log(1 - float(model.schedule.alpha_bar[-1]))
                                             ).sum(1), rtol=1e-10)


def test_stratified_bound_is_unbiased():
    """With K of the T - 1 KL terms (stratified, each weighted by its stratum's length) the
    bound's expectation is unchanged: the mean over examples agrees with the closed form
    within 4.5 standard errors. The network is the exact eps of N(m + 0.5, s^2) while the
    data are N(m, s^2), so that the KL terms are large (~20 nats) and a wrong weight shows."""
    m, s, n = 3.0, 0.5, 2000
    model = _gaussian_ddpm(40, 0.1, m + 0.5, s)
    x0 = m + s * np.random.default_rng(7).standard_normal((n, 2))
    parts = model.vlb_terms(x0, generator=autodiff.Generator(8), num_terms=5)
    # strata edges round(40^(j/5)) = 1, 2, 4, 9, 19, 40: five strata, one term each
    assert parts["terms"].shape == (n, 6)
    bound = -_np(parts["prior"] + parts["terms"].sum(dim=1))
    # one stratum draw is shared by the batch: repeat over draws to see its variance
    means = [bound.mean()]
    for seed in range(9, 29):
        p = model.vlb_terms(x0, generator=autodiff.Generator(seed), num_terms=5)
        means.append(-_np(p["prior"] + p["terms"].sum(dim=1)).mean())
    means = np.array(means)
    exact = _expected_bound(model, x0, m + 0.5, s).mean()
    assert abs(means.mean() - exact) < 4.5 * means.std(ddof=1) / math.sqrt(len(means))


def test_image_bound_is_a_probability_mass():
    """For image data the decoder is the discretized Gaussian over the L levels: the bound's
    per-example log-mass is <= 0 (a probability), and bits/dim need no dequantization."""
    info = {"kind": "image", "shape": [1, 8, 8], "levels": 17, "value_range": [0.0, 1.0],
            "num_classes": 10, "name": "digits"}
    config = diffusion.smoke_config(info)
    config["data_info"] = info
    model = diffusion.build(config)
    assert model.discrete and model.likelihood_kind == "bound"
    x = np.random.default_rng(0).integers(0, 17, size=(4, 1, 8, 8)) / 16.0
    log_p = _np(model.log_prob(x, generator=autodiff.Generator(0)))
    assert log_p.shape == (4,) and np.all(np.isfinite(log_p)) and np.all(log_p < 0)
    assert "no dequantization" in model.bpd_convention


# --------------------------------------------------------------------------- learned variance
def test_learned_variance_interpolates_between_beta_and_beta_tilde():
    """log sigma^2 = frac log beta + (1 - frac) log beta_tilde, frac = (v + 1) / 2
    (Nichol & Dhariwal 2021, Eq. 15): v = 1 gives beta, v = -1 beta_tilde."""
    info = {"kind": "points", "shape": [2], "name": "p"}
    config = diffusion.default_config(info)
    config.update({"loss": "hybrid", "data_info": info})
    model = diffusion.build(config)
    assert model.variance == "learned"
    sched = model.schedule
    like = autodiff.zeros(3, 2)
    idx = np.array([5, 100, 999])
    for v, want in ((1.0, np.log(_np(sched.betas)[idx])),
                    (-1.0, _np(sched.posterior_log_variance_clipped)[idx]),
                    (0.0, 0.5 * (np.log(_np(sched.betas)[idx])
                                 + _np(sched.posterior_log_variance_clipped)[idx]))):
        got = _np(model._log_variance(sched, idx, autodiff.full((3, 2), v), like))
        np.testing.assert_allclose(got, np.repeat(want[:, None], 2, 1), rtol=1e-12)


def test_hybrid_loss_trains_and_samples_with_learned_variance(tmp_path):
    from refgen.data import load_dataset
    from refgen.train import TrainConfig, fit
    ds = load_dataset("ring8:std=0.1", split="train", n=256)
    config = diffusion.smoke_config(ds.info)
    config.update({"loss": "hybrid", "data_info": {"kind": "points", "shape": [2]}})
    model = diffusion.build(config)
    result = fit(model, ds, TrainConfig(steps=5, batch_size=32, out_dir=str(tmp_path)),
                 progress=False)
    assert np.isfinite(result.metrics["vb_bpd"]) and np.isfinite(result.metrics["mse"])
    x = model.sample(8, autodiff.Generator(0), sampler="ancestral:variance=learned")
    assert x.shape == (8, 2) and np.all(np.isfinite(_np(x)))


# --------------------------------------------------------------------------- guidance
def _conditional_points_model():
    info = {"kind": "points", "shape": [2], "name": "p", "num_classes": 3}
    config = diffusion.smoke_config(info)
    config["data_info"] = info
    model = diffusion.build(config)
    assert model.conditional
    # a random, non-zero network: every output depends on the label
    for p in model.net.parameters():
        p.data[...] = B.to_backend(np.random.default_rng(p.data.size).normal(
            0, 0.5, p.data.shape))
    return model


@pytest.mark.parametrize("sampler", ["ancestral", "ddim:eta=0.5", "heun"])
def test_guidance_zero_is_conditional_sampling(sampler):
    """CFG with w = 0 equals sampling from eps(x, c) alone (Ho & Salimans 2022, Eq. 6)."""
    model = _conditional_points_model()
    y = autodiff.Tensor(B.to_backend(np.array([0, 1, 2, 1])))
    plain = model.sample(4, autodiff.Generator(3), cond=y, sampler=sampler, steps=7)
    guided = model.sample(4, autodiff.Generator(3), cond=y, sampler=sampler, steps=7,
                          guidance=0.0)
    np.testing.assert_array_equal(_np(plain), _np(guided))
    other = model.sample(4, autodiff.Generator(3), cond=y, sampler=sampler, steps=7,
                         guidance=2.0)
    assert not np.allclose(_np(other), _np(plain))
    assert model.nfe_per_sample == 2 * (13 if sampler == "heun" else 7)


def test_guided_eps_is_one_plus_w_cond_minus_w_null():
    model = _conditional_points_model()
    sched = model.schedule
    gen = np.random.default_rng(9)
    xt = _t(gen.standard_normal((5, 2)))
    idx = np.array([0, 3, 7, 12, 19])
    t_net = _np(sched.timesteps)[idx].astype(np.float64)
    a, s = sched.coefficients(idx, xt)
    y = autodiff.Tensor(B.to_backend(np.array([0, 1, 2, 0, 1])))
    null = autodiff.Tensor(B.to_backend(np.full(5, 3)))
    _, eps_c, _ = model.predict(xt, t_net, a, s, y)
    _, eps_u, _ = model.predict(xt, t_net, a, s, null)
    x0_g, eps_g, _ = model.predict(xt, t_net, a, s, y, guidance=2.5)
    np.testing.assert_allclose(_np(eps_g), 3.5 * _np(eps_c) - 2.5 * _np(eps_u), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(_np(x0_g), (_np(xt) - _np(s) * _np(eps_g)) / _np(a), rtol=1e-12)


# --------------------------------------------------------------------------- samplers / interface
def test_ddim_is_euler_in_the_sigma_view():
    """DDIM (eta = 0) on respaced timesteps is Euler's method on the probability-flow ODE in
    x~ = x_t / sqrt(alpha_bar), sigma = sqrt((1 - alpha_bar) / alpha_bar), on the same
    sigmas (Song et al. 2021a, Eq. 14; Karras et al. 2022, Sec. 3): the same samples up to
    float64 rounding. Checks the wiring of the denoiser view (scaling, t(sigma))."""
    model = _conditional_points_model()
    y = autodiff.Tensor(B.to_backend(np.array([0, 2, 1])))
    sched = model.schedule.respace(space_timesteps(model.schedule.num_timesteps, 6))
    x_T = _t(np.random.default_rng(10).standard_normal((3, 2)))
    ddim = S.sample_ddim(model.chain_model(sched, y), x_T, sched)
    sigmas = list(_np(sched.sigmas)[::-1]) + [0.0]
    euler = S.sample_euler(model.karras_denoiser(y), x_T * (1.0 / math.sqrt(
        float(sched.alpha_bar[-1]))), sigmas)
    np.testing.assert_allclose(_np(euler), _np(ddim), rtol=1e-10, atol=1e-10)


def test_sampler_options_and_their_errors():
    model = _conditional_points_model()
    g = autodiff.Generator(0)
    for sampler in diffusion.SAMPLERS:
        x = model.sample(3, g, sampler=sampler, steps=4)
        assert x.shape == (3, 2) and np.all(np.isfinite(_np(x)))
    assert model.sample(2, g, sampler="heun", steps=4) is not None and model.nfe_per_sample == 7
    model.sample(2, g)
    assert model.nfe_per_sample == model.schedule.num_timesteps      # ancestral, full chain
    with pytest.raises(ValueError, match="unknown sampler 'rk4'"):
        model.sample(2, g, sampler="rk4")
    with pytest.raises(ValueError, match="eta applies to the ddim"):
        model.sample(2, g, sampler="heun", eta=1.0)
    with pytest.raises(ValueError, match="bad setting"):
        model.sample(2, g, sampler="ddim:eta")
    with pytest.raises(ValueError, match=r"steps for ddim must be an int in \[1, 20\]"):
        model.sample(2, g, sampler="ddim", steps=21)
    assert model.sample(2, g, sampler="heun", steps=30).shape == (2, 2)   # any number of sigmas
    model.sample(2, g, sampler="dpmpp_2m")
    assert model.nfe_per_sample == 50                                     # its default
    with pytest.raises(ValueError, match="needs cond"):
        model.sample(2, g, guidance=1.0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        model.sample(2, g, cond=autodiff.Tensor(B.to_backend(np.array([0, 3]))))
    with pytest.raises(ValueError, match="unknown option"):
        model.sample(2, g, temperature=0.5)
    with pytest.raises(ValueError, match=r"x must be \(N, 2\)"):
        model.log_prob(np.zeros((2, 3)))
    info = {"kind": "points", "shape": [2]}
    with pytest.raises(ValueError, match="prediction must be one of"):
        diffusion.build({**diffusion.default_config(info), "prediction": "score",
                         "data_info": info})
    uncond = diffusion.build({**diffusion.smoke_config(info), "data_info": info})
    with pytest.raises(ValueError, match="this model is unconditional"):
        uncond.sample(2, g, cond=autodiff.Tensor(B.to_backend(np.array([0, 1]))))


def _fixed_losses(model, x0, seed):
    """Per-example simple-loss values on fixed draws of (t, eps): (N,)."""
    from refgen.families.diffusion.schedules import prediction_target
    gen = autodiff.Generator(seed)
    x0 = model.to_model_space(x0)
    t = gen.integers(0, model.schedule.num_timesteps, (x0.shape[0],))
    eps = autodiff.randn(*x0.shape, generator=gen)
    xt = model.schedule.q_sample(x0, t, eps)
    a, s = model.schedule.coefficients(t, x0)
    with autodiff.no_grad():
        out, _ = model._net(xt, model.schedule.timesteps[t].astype(B.xp.float64), None)
    target = prediction_target(model.config["prediction"], x0, eps, a, s)
    return _np(((out - target) ** 2).mean(dim=1))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_training_lowers_the_loss(prediction, tmp_path):
    """300 steps on ring8 (std 0.1) lower the simple loss of each parameterisation on 4096
    fixed held-out draws of (x_0, t, eps): the mean paired decrease exceeds 4.5 standard
    errors (a smoke test of the whole gradient path: target, network, optimiser)."""
    from refgen.data import load_dataset
    from refgen.train import TrainConfig, fit
    ds = load_dataset("ring8:std=0.1", split="train", n=512)
    held_out = load_dataset("ring8:std=0.1", split="test", n=4096).x
    config = diffusion.smoke_config(ds.info)
    config.update({"prediction": prediction, "data_info": {"kind": "points", "shape": [2]}})
    model = diffusion.build(config)
    before = _fixed_losses(model, held_out, 11)
    fit(model, ds, TrainConfig(steps=300, batch_size=128, lr=3e-3, log_every=50,
                               out_dir=str(tmp_path)), progress=False)
    d = before - _fixed_losses(model, held_out, 11)
    assert d.mean() > 4.5 * d.std(ddof=1) / math.sqrt(d.size), (d.mean(), d.std(ddof=1))


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_eps_fn_for_the_score_models(prediction):
    """``eps_fn(x, tau)`` (the contract of refgen.families.score.adapters.score_from_eps)
    returns the network's eps at step tau whatever the parameterisation: with the exact
    network of Gaussian data (as eps, or converted to x_0) it is the exact eps at integer
    tau; between steps it is continuous (alpha_bar interpolated)."""
    m, s = 1.0, 0.5
    model = _gaussian_ddpm(40, 0.1, m, s)
    exact = model.net
    if prediction == "x0":
        class _AsX0(nn.Module):
            def __init__(self):
                super().__init__()
                self.dummy = nn.Parameter(autodiff.zeros(1))

            def forward(self, x, t, y=None):
                idx = np.rint(_np(t)).astype(np.int64)
                ab = _t(_np(model.schedule.alpha_bar)[idx][:, None])
                return (x - autodiff.sqrt(1.0 - ab) * exact(x, t)) / autodiff.sqrt(ab)
        model.config["prediction"] = "x0"
        model.net = _AsX0()
    x = _t(np.random.default_rng(12).standard_normal((4, 2)))
    tau = np.array([0.0, 5.0, 17.0, 39.0])
    np.testing.assert_allclose(_np(model.eps_fn()(x, _t(tau))), _np(exact(x, _t(tau))),
                               rtol=1e-10, atol=1e-12)
    near = _np(model.eps_fn()(x, _t(tau + 1e-7)))
    np.testing.assert_allclose(near, _np(exact(x, _t(tau))), atol=1e-5)


def test_hybrid_loss_bound_term_trains_only_the_variance():
    """L_hybrid = L_simple + lambda L_vlb with the mean held fixed in L_vlb (Nichol & Dhariwal
    2021, Sec. 3.1): the gradient reaching the mean half of the network's output is exactly
    the simple loss's, 2 (out - target) / numel, and the variance half gets one too."""
    info = {"kind": "points", "shape": [2], "name": "p"}
    config = diffusion.smoke_config(info)
    config.update({"loss": "hybrid", "data_info": info})
    model = diffusion.build(config)
    n = 16
    out = nn.Parameter(_t(np.random.default_rng(13).normal(0, 0.5, (n, 4))))

    class _Leaf(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = out

        def forward(self, x, t, y=None):
            return self.out
    model.net = _Leaf()

    class _Ctx:
        generator = autodiff.Generator(14)

        def optimize(self, player, loss):
            loss.backward()
    x = _t(np.random.default_rng(15).standard_normal((n, 2)))
    model.training_step((x, None), 0, _Ctx())
    # the same draws as the step: t, then eps, from a generator seeded alike
    gen = autodiff.Generator(14)
    t = gen.integers(0, model.schedule.num_timesteps, (n,))
    eps = autodiff.randn(n, 2, generator=gen)
    grad = _np(out.grad)
    np.testing.assert_allclose(grad[:, :2], 2.0 * (_np(out)[:, :2] - _np(eps)) / (n * 2),
                               rtol=1e-10, atol=1e-14)
    assert np.abs(grad[:, 2:]).max() > 0


@pytest.mark.parametrize("sampler", ["ancestral", "ddim", "heun", "dpmpp_2m"])
def test_samplers_read_nothing_back_per_step(sampler):
    """On the strict backend (NumPy with CuPy's refusals, counting every device-to-host
    transfer), a sampler's transfers do not grow with its number of steps: the schedule's
    scalars are copied to the host once, not read back (a GPU synchronisation) at every step.
    Both step counts respace the T = 20 schedule, so the one-time costs are the same."""
    from autodiff.strict_backend import host_transfers
    from refgen.data import load_dataset
    from refgen.families.base import data_info_for_config
    previous, previous_dtype = B.get_backend(), autodiff.get_default_dtype()
    autodiff.set_backend("strict")
    autodiff.set_default_dtype("float64")
    try:
        info = dict(load_dataset("ring8", split="train").info)
        info.setdefault("name", "ring8")
        config = diffusion.smoke_config(info)
        config["data_info"] = data_info_for_config(info)
        model = diffusion.build(config, info)
        counts = []
        for steps in (5, 10):
            with host_transfers() as c:
                model.sample(3, autodiff.Generator(0), sampler=sampler, steps=steps)
            counts.append((c["explicit"], c["scalar"]))
        assert counts[0] == counts[1], counts
    finally:
        autodiff.set_backend(previous)
        autodiff.set_default_dtype(previous_dtype)
