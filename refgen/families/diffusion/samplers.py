"""Samplers for a trained denoiser, as small pure functions (after k-diffusion's
``sampling.py``: one shared signature per group, one line naming the algorithm each).

Two groups, on two views of the same model.

**The discrete chain** (variance preserving, x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 -
alpha_bar_t) eps) on a ``NoiseSchedule`` (the full one, or a respaced one):

    sampler(model, x, schedule, generator=None, callback=None, **settings) -> x_0

``model(x, i)`` returns ``(x0_hat, eps_hat, log_variance)`` at schedule index i (the
caller has already applied classifier-free guidance and any clipping of x0_hat;
``log_variance`` is None unless the network learns its variances); ``x`` is x_T ~ N(0, I).

**The sigma view** of Karras et al. 2022 (variance exploding, x~ = x_0 + sigma eps, with
x~ = x_t / sqrt(alpha_bar_t) and sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t)):

    sampler(denoiser, x, sigmas, generator=None, callback=None) -> x_0

``denoiser(x, sigma)`` is D(x; sigma), the estimate of x_0 (Karras et al. 2022, Eq. 1-3;
the probability-flow ODE is dx/dsigma = (x - D(x; sigma)) / sigma); ``sigmas`` is a
decreasing sequence ending at 0 (``get_sigmas_karras``); ``x`` starts at sigmas[0] noise.

``callback``, when given, is called after every step with a dict (``i``, ``x``,
``denoised``, and ``sigma`` or ``t``), e.g. to record a trajectory.
"""
import math

import autodiff
from autodiff import backend as B

__all__ = ["sample_ancestral", "sample_ddim", "ddim_step", "ddim_sigma", "VARIANCES",
           "get_sigmas_karras", "sample_euler", "sample_heun", "sample_dpmpp_2m",
           "nfe_karras", "K_SAMPLERS"]

# sigma^2 of ancestral sampling: beta_t ("beta", Ho et al.'s upper bound on the reverse
# variance), beta_tilde_t ("beta_tilde", the lower bound; Ho et al. 2020, Sec. 3.2), or the
# network's interpolation between them ("learned"; Nichol & Dhariwal 2021, Eq. 15)
VARIANCES = ("beta", "beta_tilde", "learned")


def _noise(x, generator):
    return autodiff.randn(*x.shape, generator=generator, dtype=x.dtype)


def _const(value, like):
    """A float as a 0-d constant Tensor in ``like``'s dtype."""
    return autodiff.Tensor(B.xp.asarray(value, dtype=like.dtype))


# =========================================================================== discrete chain
def sample_ancestral(model, x, schedule, generator=None, callback=None, variance="beta_tilde"):
    """Ancestral sampling of the reverse chain (Ho et al. 2020, Algorithm 2; on a respaced
    schedule, Nichol & Dhariwal 2021, Sec. 4): x_{t-1} = mu_tilde_t(x_t, x0_hat) + sigma_t z,
    sigma_t^2 = beta_t, beta_tilde_t or learned, and no noise at the last step."""
    if variance not in VARIANCES:
        raise ValueError(f"sample_ancestral: variance must be one of {', '.join(VARIANCES)}, "
                         f"got {variance!r}")
    xp = B.xp
    # sigma^2 = beta at index 0 would add noise to x_0 itself; improved DDPM's code uses
    # beta_tilde_1 there (no noise is added at index 0 anyway)
    log_beta = xp.log(xp.concatenate([schedule.posterior_variance[1:2], schedule.betas[1:]])) \
        if schedule.num_timesteps > 1 else xp.log(schedule.betas)
    # the per-step scalars, copied to the host once: float() of a device element in the
    # loop would synchronise the GPU at every step
    coef_x0, coef_xt, log_beta, log_beta_tilde, timesteps = (
        B.to_numpy(a) for a in (schedule.posterior_mean_coef_x0,
                                schedule.posterior_mean_coef_xt, log_beta,
                                schedule.posterior_log_variance_clipped, schedule.timesteps))
    for i in reversed(range(schedule.num_timesteps)):
        x0, eps, log_var = model(x, i)
        mean = _const(float(coef_x0[i]), x) * x0 + _const(float(coef_xt[i]), x) * x  # Eq. 7
        if i > 0:
            if variance == "learned":
                if log_var is None:
                    raise ValueError("sample_ancestral: variance='learned' but the model "
                                     "returns no log-variance (it was trained with fixed "
                                     "variances)")
                std = autodiff.exp(0.5 * log_var)
            elif variance == "beta":
                std = _const(math.exp(0.5 * float(log_beta[i])), x)
            else:
                std = _const(math.exp(0.5 * float(log_beta_tilde[i])), x)
            x = mean + std * _noise(x, generator)
        else:
            x = mean
        if callback is not None:
            callback({"i": i, "t": int(timesteps[i]), "x": x, "denoised": x0})
    return x


def ddim_sigma(alpha_bar, alpha_bar_prev, eta):
    """sigma_t(eta) = eta sqrt((1 - alpha_bar_{t-1}) / (1 - alpha_bar_t))
    sqrt(1 - alpha_bar_t / alpha_bar_{t-1}) (Song et al. 2021a, Eq. 16): eta = 1 is DDPM's
    posterior standard deviation sqrt(beta_tilde_t), eta = 0 the deterministic DDIM."""
    return eta * math.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar)) \
        * math.sqrt(1.0 - alpha_bar / alpha_bar_prev)


def ddim_step(x0, eps, alpha_bar, alpha_bar_prev, eta=0.0, noise=None):
    """One DDIM update (Song et al. 2021a, Eq. 12):

        x_{t-1} = sqrt(alpha_bar_{t-1}) x0_hat + sqrt(1 - alpha_bar_{t-1} - sigma_t^2) eps_hat
                  + sigma_t z,     sigma_t = ddim_sigma(alpha_bar_t, alpha_bar_{t-1}, eta)

    x0, eps (N, ...) Tensors; alpha_bar, alpha_bar_prev floats; noise z (N, ...) or None
    (required when eta > 0). Returns (N, ...)."""
    sigma = ddim_sigma(alpha_bar, alpha_bar_prev, eta)
    direction = math.sqrt(max(1.0 - alpha_bar_prev - sigma * sigma, 0.0))
    out = _const(math.sqrt(alpha_bar_prev), x0) * x0 + _const(direction, eps) * eps
    if sigma > 0.0:
        if noise is None:
            raise ValueError(f"ddim_step: eta = {eta} > 0 needs noise")
        out = out + _const(sigma, x0) * noise
    return out


def sample_ddim(model, x, schedule, generator=None, callback=None, eta=0.0):
    """DDIM (Song et al. 2021a, Eq. 12) on a (respaced) schedule, eta = 0 deterministic."""
    if not eta >= 0.0:
        raise ValueError(f"sample_ddim: eta must be >= 0, got {eta!r}")
    # host copies made once (a float() of a device element per step synchronises the GPU)
    alpha_bar, alpha_bar_prev, timesteps = (
        B.to_numpy(a) for a in (schedule.alpha_bar, schedule.alpha_bar_prev, schedule.timesteps))
    for i in reversed(range(schedule.num_timesteps)):
        x0, eps, _ = model(x, i)
        ab, ab_prev = float(alpha_bar[i]), float(alpha_bar_prev[i])
        noise = _noise(x, generator) if eta > 0 and i > 0 else None
        x = ddim_step(x0, eps, ab, ab_prev, eta, noise)
        if callback is not None:
            callback({"i": i, "t": int(timesteps[i]), "x": x, "denoised": x0})
    return x


# =========================================================================== sigma view
def get_sigmas_karras(n, sigma_min, sigma_max, rho=7.0):
    """The Karras et al. 2022 noise levels (Eq. 5), with 0 appended:
    sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
    i = 0..n-1. Returns a host list of n + 1 floats, decreasing."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"get_sigmas_karras: n must be a positive int, got {n!r}")
    if not 0.0 < sigma_min <= sigma_max:
        raise ValueError(f"get_sigmas_karras: need 0 < sigma_min <= sigma_max, got "
                         f"sigma_min={sigma_min}, sigma_max={sigma_max}")
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    ramp = [i / (n - 1) for i in range(n)] if n > 1 else [0.0]
    return [(hi + r * (lo - hi)) ** rho for r in ramp] + [0.0]


def _check_sigmas(sigmas, who):
    sigmas = [float(s) for s in sigmas]
    if len(sigmas) < 2 or any(b >= a for a, b in zip(sigmas, sigmas[1:])) or sigmas[-1] < 0:
        raise ValueError(f"{who}: sigmas must be a strictly decreasing sequence of >= 2 "
                         f"non-negative noise levels, got {sigmas[:4]}{'...' if len(sigmas) > 4 else ''}")
    return sigmas


def _to_d(x, sigma, denoised):
    """dx/dsigma of the probability-flow ODE, (x - D(x; sigma)) / sigma (Karras et al. 2022,
    Eq. 3 with s(t) = 1, sigma(t) = t)."""
    return (x - denoised) / _const(sigma, x)


def sample_euler(denoiser, x, sigmas, generator=None, callback=None):
    """Euler's method on the probability-flow ODE in sigma (Karras et al. 2022, Algorithm 1
    without the second-order correction)."""
    sigmas = _check_sigmas(sigmas, "sample_euler")
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        denoised = denoiser(x, sigma)
        x = x + _const(sigma_next - sigma, x) * _to_d(x, sigma, denoised)
        if callback is not None:
            callback({"i": i, "sigma": sigma, "x": x, "denoised": denoised})
    return x


def sample_heun(denoiser, x, sigmas, generator=None, callback=None):
    """Heun's second-order method on the probability-flow ODE (Karras et al. 2022,
    Algorithm 1, deterministic); an Euler step when the next sigma is 0."""
    sigmas = _check_sigmas(sigmas, "sample_heun")
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        denoised = denoiser(x, sigma)
        d = _to_d(x, sigma, denoised)
        step = _const(sigma_next - sigma, x)
        x_euler = x + step * d
        if sigma_next == 0.0:
            x = x_euler
        else:
            d_next = _to_d(x_euler, sigma_next, denoiser(x_euler, sigma_next))
            x = x + step * (d + d_next) * 0.5                        # the trapezoidal rule
        if callback is not None:
            callback({"i": i, "sigma": sigma, "x": x, "denoised": denoised})
    return x


def sample_dpmpp_2m(denoiser, x, sigmas, generator=None, callback=None):
    """DPM-Solver++(2M), the multistep second-order solver in the data prediction (Lu et al.
    2022b, Algorithm 2), in lambda = -log sigma."""
    sigmas = _check_sigmas(sigmas, "sample_dpmpp_2m")
    old_denoised, h_last = None, None
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        denoised = denoiser(x, sigma)
        if sigma_next == 0.0:
            x = denoised                          # the exact ODE step to sigma = 0 given D
        else:
            h = math.log(sigma) - math.log(sigma_next)               # lambda_next - lambda
            # the first step is DPM-Solver++(1) (= DDIM); later ones extrapolate D linearly
            # in lambda from the last two evaluations (r = h_last / h)
            if old_denoised is None:
                d = denoised
            else:
                r = h_last / h
                d = _const(1.0 + 1.0 / (2.0 * r), x) * denoised \
                    - _const(1.0 / (2.0 * r), x) * old_denoised
            x = _const(sigma_next / sigma, x) * x - _const(math.expm1(-h), x) * d
            h_last = h
        old_denoised = denoised
        if callback is not None:
            callback({"i": i, "sigma": sigma, "x": x, "denoised": denoised})
    return x


K_SAMPLERS = {"euler": sample_euler, "heun": sample_heun, "dpmpp_2m": sample_dpmpp_2m}


def nfe_karras(name, steps):
    """Denoiser evaluations of ``K_SAMPLERS[name]`` with ``steps`` noise levels (plus the
    final 0): Heun evaluates twice per step except on the last (Euler) step."""
    if name == "heun":
        return 2 * steps - 1
    if name in K_SAMPLERS:
        return steps
    raise ValueError(f"unknown sampler {name!r}; known: {', '.join(K_SAMPLERS)}")
