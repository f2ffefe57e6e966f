"""Samplers of a score SDE: small pure functions with one signature (after k-diffusion).

Every sampler is ``sampler(sde, score_fn, x, timesteps, generator=None, **options) ->
(x, nfe)``: it starts from ``x`` ~ p_T (``sde.prior_sample``), walks the decreasing times
``timesteps`` = [t_0 = T > t_1 > ... > t_K = t_min] (``time_grid``) with the score
``score_fn(x, t) -> (N, *event)`` (t an (N,) Tensor), and returns the samples at t_min and
the number of score evaluations per sample. The stochastic samplers return the last step's
mean, without its noise (score_sde's ``noise_removal``). ``tweedie_denoise`` then removes the
noise of std(t_min) that remains in x(t_min) (a model's ``denoise`` option; measured on ring8
(std 0.02, VP, t_min = 1e-3, std(t_min) = 0.0105): 85.2% -> 92.2% high-quality samples).

* ``euler_maruyama``: the reverse SDE (Song et al. 2021b, eq. 6) by Euler-Maruyama.
* ``reverse_diffusion``: the reverse SDE through the SDE's own discretization (eq. 46;
  ancestral-like: DDPM's step for VP, SMLD's for VE).
* ``predictor_corrector``: PC sampling (Song et al. 2021b, Algorithms 2-5), a predictor
  step then ``corrector_steps`` Langevin corrector steps with the signal-to-noise step rule.
* ``pf_ode_rk4``, ``pf_ode_rk45``: the probability-flow ODE (eq. 13) by fixed-step RK4 on the
  grid, or by the adaptive Dormand-Prince 5(4) pair between its ends with tolerances
  ``rtol``, ``atol`` (1e-5, score_sde's; ``common.ode``).

The Langevin corrector (Song et al. 2021b, Algorithm 4-5, line "epsilon <- 2 alpha (r ||z||
/ ||s||)^2"): with z ~ N(0, I) and s = s_theta(x, t),

    step = 2 alpha_t (snr ||z|| / ||s||)^2,   x <- x + step s + sqrt(2 step) z,

where alpha_t = exp(-beta(t) dt) ~ 1 - beta_i for VP and sub-VP (DDPM's alpha_i) and 1 for
VE, and ||z||, ||s|| are the per-example norms averaged over the batch (score_sde's choice).
Per-example ratios, as the algorithm reads for one chain, are unstable in low dimension: near
a mode ||s|| -> 0 and the step explodes (measured here: a 2-D standard normal's covariance grew
from 1 to 12 in 20 corrector steps at snr 0.16). This is Langevin dynamics x + (h/2) s +
sqrt(h) z with h = 2 step (``common.langevin``), the step set so that the ratio of the noise to
the drift is ``snr``.
"""
import math

import autodiff

from ..common import ode
from ..common.sde import SDE, VPSDE, expand_to

__all__ = ["time_grid", "euler_maruyama", "reverse_diffusion", "langevin_corrector",
           "predictor_corrector", "pf_ode_rk4", "pf_ode_rk45", "tweedie_denoise", "SAMPLERS"]


def time_grid(sde, steps, t_min=None):
    """[T, ..., t_min], ``steps`` + 1 equally spaced times (Python floats), decreasing."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"time_grid: steps must be a positive int, got {steps!r}")
    t_min = sde.t_min if t_min is None else float(t_min)
    if not 0 < t_min < sde.T:
        raise ValueError(f"time_grid: t_min must be in (0, T = {sde.T}), got {t_min}")
    return [sde.T + (t_min - sde.T) * i / steps for i in range(steps + 1)]


def _check(sde, score_fn, x, timesteps, who):
    if not isinstance(sde, SDE):
        raise TypeError(f"{who}: sde must be a common.sde.SDE, got {type(sde).__name__}")
    if not callable(score_fn):
        raise TypeError(f"{who}: score_fn must be callable (x, t) -> score")
    if not isinstance(x, autodiff.Tensor) or x.ndim < 2:
        raise ValueError(f"{who}: x must be a Tensor (N, *event), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    ts = [float(t) for t in timesteps]
    if len(ts) < 2 or any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError(f"{who}: timesteps must be at least two strictly decreasing times, "
                         f"got {ts[:4]}{'...' if len(ts) > 4 else ''}")
    return x.detach(), ts


def _noise(x, generator):
    return autodiff.randn(*x.shape, generator=generator, dtype=x.dtype)


def euler_maruyama(sde, score_fn, x, timesteps, generator=None):
    """Euler-Maruyama on the reverse SDE (Song et al. 2021b, eq. 6; Kloeden & Platen 1992):
    x <- x - [f - g^2 s] dt + g sqrt(dt) z, dt = t_i - t_{i+1} > 0."""
    x, ts = _check(sde, score_fn, x, timesteps, "euler_maruyama")
    rev = sde.reverse(score_fn)
    mean = x
    for t, t_next in zip(ts, ts[1:]):
        dt = t - t_next
        mean = x - rev.drift(x, t) * dt
        g = rev.diffusion(t, x.shape[0], x.dtype)
        x = mean + expand_to(g, x) * math.sqrt(dt) * _noise(x, generator)
    return mean.detach(), len(ts) - 1


def _reverse_diffusion_step(rev, x, t, dt, generator):
    f, G = rev.discretize(x, t, dt)
    mean = x + f
    return mean + expand_to(G, x) * _noise(x, generator), mean


def reverse_diffusion(sde, score_fn, x, timesteps, generator=None):
    """The reverse-diffusion predictor (Song et al. 2021b, eq. 46): x <- x - f_i + G_i^2 s +
    G_i z with the forward discretization (f_i, G_i) of ``sde.discretize``."""
    x, ts = _check(sde, score_fn, x, timesteps, "reverse_diffusion")
    rev = sde.reverse(score_fn)
    mean = x
    for t, t_next in zip(ts, ts[1:]):
        x, mean = _reverse_diffusion_step(rev, x, t, t - t_next, generator)
    return mean.detach(), len(ts) - 1


def _corrector_alpha(sde, t, dt):
    """alpha_t of the step rule: exp(-beta(t) dt) for VP and sub-VP (DDPM's alpha_i = 1 -
    beta_i to first order, score_sde's choice, but positive on a coarse grid too), 1 else."""
    if isinstance(sde, VPSDE):
        return math.exp(-float(sde.beta(t)) * dt)
    return 1.0


def langevin_corrector(score_fn, x, t, snr, alpha=1.0, n_steps=1, generator=None):
    """``n_steps`` Langevin corrector steps at time t with the signal-to-noise step rule
    (Song et al. 2021b, Algorithm 4-5); norms averaged over the batch (module docstring).
    Returns (x, mean of the last step)."""
    n = x.shape[0]
    mean = x
    tt = autodiff.full((n,), float(t), dtype=x.dtype)
    for _ in range(n_steps):
        s = score_fn(x, tt)
        z = _noise(x, generator)
        s_norm = float((s * s).reshape(n, -1).sum(dim=1).sqrt().mean())
        z_norm = float((z * z).reshape(n, -1).sum(dim=1).sqrt().mean())
        if not s_norm > 0:
            raise FloatingPointError(f"langevin_corrector: the score is {s_norm} at t={t:g}; "
                                     "the step rule divides by its norm")
        step = 2.0 * alpha * (snr * z_norm / s_norm) ** 2
        mean = x + step * s
        x = mean + math.sqrt(2.0 * step) * z
    return x, mean


def predictor_corrector(sde, score_fn, x, timesteps, generator=None, predictor="reverse_diffusion",
                        snr=0.16, corrector_steps=1):
    """Predictor-corrector sampling (Song et al. 2021b, Algorithm 2-5; score_sde's order:
    corrector at t_i, then the predictor from t_i to t_{i+1}).

    :param predictor: 'reverse_diffusion' or 'euler_maruyama'.
    :param snr: r, the corrector's signal-to-noise ratio (0.16: the paper's CIFAR-10 VE
        setting; 0 corrector steps gives the predictor alone).
    :param corrector_steps: M, Langevin steps per time.
    """
    x, ts = _check(sde, score_fn, x, timesteps, "predictor_corrector")
    if predictor not in ("reverse_diffusion", "euler_maruyama"):
        raise ValueError(f"predictor_corrector: predictor must be 'reverse_diffusion' or "
                         f"'euler_maruyama', got {predictor!r}")
    if not (isinstance(snr, (int, float)) and snr > 0):
        raise ValueError(f"predictor_corrector: snr must be a positive number, got {snr!r}")
    if isinstance(corrector_steps, bool) or not isinstance(corrector_steps, int) \
            or corrector_steps < 0:
        raise ValueError(f"predictor_corrector: corrector_steps must be an int >= 0, got "
                         f"{corrector_steps!r}")
    rev = sde.reverse(score_fn)
    mean = x
    for t, t_next in zip(ts, ts[1:]):
        dt = t - t_next
        if corrector_steps:
            x, _ = langevin_corrector(score_fn, x, t, snr, _corrector_alpha(sde, t, dt),
                                      corrector_steps, generator)
        if predictor == "reverse_diffusion":
            x, mean = _reverse_diffusion_step(rev, x, t, dt, generator)
        else:
            mean = x - rev.drift(x, t) * dt
            g = rev.diffusion(t, x.shape[0], x.dtype)
            x = mean + expand_to(g, x) * math.sqrt(dt) * _noise(x, generator)
    return mean.detach(), (len(ts) - 1) * (1 + corrector_steps)


def _pf_velocity(sde, score_fn):
    rev = sde.reverse(score_fn, probability_flow=True)
    return lambda t, x: rev.drift(x, t)


def pf_ode_rk4(sde, score_fn, x, timesteps, generator=None):
    """The probability-flow ODE dx/dt = f - g^2 s / 2 (Song et al. 2021b, eq. 13) by classical
    RK4 with len(timesteps) - 1 equal steps from timesteps[0] to timesteps[-1]."""
    x, ts = _check(sde, score_fn, x, timesteps, "pf_ode_rk4")
    with autodiff.no_grad():
        y, info = ode.rk4(_pf_velocity(sde, score_fn), x, ts[0], ts[-1], len(ts) - 1)
    return y.detach(), info["nfe"]


def pf_ode_rk45(sde, score_fn, x, timesteps, generator=None, rtol=1e-5, atol=1e-5):
    """The probability-flow ODE (eq. 13) by adaptive Dormand-Prince 5(4) (``common.ode.rk45``)
    from timesteps[0] to timesteps[-1] at tolerances rtol, atol; nfe is what it took."""
    x, ts = _check(sde, score_fn, x, timesteps, "pf_ode_rk45")
    with autodiff.no_grad():
        y, info = ode.rk45(_pf_velocity(sde, score_fn), x, ts[0], ts[-1], rtol=rtol, atol=atol)
    return y.detach(), info["nfe"]


def tweedie_denoise(sde, score_fn, x, t):
    """E[x0 | x(t) = x] = (x + std(t)^2 s(x, t)) / m(t) (Tweedie's formula; Efron 2011,
    eq. 2.8; the final step of Jolicoeur-Martineau et al. 2021): removes the noise of
    std(t_min) a sampler stops at. One score evaluation."""
    m, std = sde.marginal_coefficients(t, x.shape[0], x.dtype)
    tt = autodiff.full((x.shape[0],), float(t), dtype=x.dtype)
    with autodiff.no_grad():
        return ((x + expand_to(std * std, x) * score_fn(x, tt)) / expand_to(m, x)).detach()


SAMPLERS = {
    "pc": predictor_corrector,
    "em": euler_maruyama,
    "reverse_diffusion": reverse_diffusion,
    "ode": pf_ode_rk45,
    "ode_rk4": pf_ode_rk4,
}
