"""Langevin dynamics, written once for the energy model (``ebm``) and the score model (NCSN).

Langevin dynamics samples a density p(x) from its score s(x) = grad_x log p(x) alone. The
overdamped Langevin diffusion dx = (1/2) s(x) dt + dW has p as its stationary law; its
Euler-Maruyama discretisation with step size ``step_size`` = h (the unadjusted Langevin
algorithm, ULA; Welling & Teh 2011 Eq. 4; Song & Ermon 2019 Eq. 4) is

    x_{k+1} = x_k + (h / 2) s(x_k) + noise_scale * sqrt(h) * eps_k,   eps_k ~ N(0, I)   (1)

* ``noise_scale = 1`` is Langevin dynamics proper: as h -> 0 and k h -> infinity the law of
  x_k tends to p. With h > 0 the chain is biased (no Metropolis correction): on a Gaussian
  with precision a the stationary variance is 1 / (a (1 - h a / 4)) instead of 1 / a.
* ``noise_scale != 1`` is NOT Langevin dynamics in the strict sense. The decoupled "SGLD"
  common in EBM training (Du & Mordatch 2019; Nijkamp et al. 2019) takes a gradient step
  ``lambda * s(x)`` with a noise of standard deviation ``delta`` chosen separately (e.g.
  lambda = 10 on -grad E with delta = 0.005); in the form (1) that is h = 2 lambda and
  noise_scale = delta / sqrt(2 lambda) << 1. Its stationary law is p^(1/T) with temperature
  T = noise_scale^2 (for a Gaussian: the variance shrinks by T), a sharpened p, and a short
  run of it is a learned "flow" towards the modes rather than a sampler of p.

The score is any function ``score_fn(x) -> Tensor`` of the shape of x: the EBM passes
s(x) = -grad_x E_theta(x) (``energy_score``), NCSN passes s_theta(x, sigma).

Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) runs (1) at a decreasing
sequence of noise levels sigma_1 > ... > sigma_L with the score of the sigma-perturbed
density, s(x, sigma_i), and step size alpha_i = eps * sigma_i^2 / sigma_L^2, T steps each.

The Metropolis-adjusted Langevin algorithm (MALA; Roberts & Tweedie 1996) accepts the
proposal (1) with noise_scale = 1 with probability
min(1, p(y) q(x | y) / (p(x) q(y | x))), q(y | x) = N(y; x + (h/2) s(x), h I), which makes
p exactly invariant for any h (``mala_step``; used where exactness matters, as in AIS).

Shapes: x is (N, *example_shape) throughout; the chains are independent.
"""
import math

import autodiff
from autodiff import backend as B

__all__ = ["langevin_dynamics", "annealed_langevin_dynamics", "energy_score",
           "energy_and_score", "mala_step"]


def _check_positive(who, name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{who}: {name} must be a finite number {bound}, got {value!r}")


def _check_steps(who, n_steps):
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"{who}: n_steps must be an integer >= 0, got {n_steps!r}")


def _check_clamp(who, clamp):
    if clamp is None:
        return None
    try:
        lo, hi = (float(v) for v in clamp)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: clamp must be None or a pair (lo, hi), got {clamp!r}") from None
    if not lo < hi:
        raise ValueError(f"{who}: clamp must have lo < hi, got {clamp!r}")
    return lo, hi


def _as_chain_state(who, x0):
    if not isinstance(x0, autodiff.Tensor):
        raise TypeError(f"{who}: x0 must be an autodiff.Tensor of shape (N, ...), got "
                        f"{type(x0).__name__}")
    if x0.ndim < 1:
        raise ValueError(f"{who}: x0 must have a batch dimension, got shape {tuple(x0.shape)}")
    return x0.detach()


def _score(who, score_fn, x, *args):
    s = score_fn(x, *args)
    if not isinstance(s, autodiff.Tensor) or tuple(s.shape) != tuple(x.shape):
        shape = tuple(s.shape) if isinstance(s, autodiff.Tensor) else type(s).__name__
        raise ValueError(f"{who}: score_fn must return a Tensor of the shape of x "
                         f"{tuple(x.shape)}, got {shape}")
    return s.detach()


def _langevin_step(x, s, step_size, noise_scale, generator, clamp):
    """One step of (1) on detached tensors; the chain carries no graph."""
    x = x + (0.5 * step_size) * s
    if noise_scale > 0:
        eps = autodiff.randn(*x.shape, generator=generator, dtype=x.dtype)
        x = x + (noise_scale * math.sqrt(step_size)) * eps
    if clamp is not None:
        x = x.clamp(clamp[0], clamp[1])
    return x


def langevin_dynamics(score_fn, x0, step_size, n_steps, noise_scale=1.0, generator=None,
                      clamp=None):
    """Run (1) for ``n_steps`` steps from ``x0``: the unadjusted Langevin algorithm.

    :param score_fn: ``score_fn(x) -> Tensor`` of x's shape, the score grad_x log p(x)
        (for an energy model ``energy_score(E_theta)``, i.e. -grad_x E_theta(x)).
    :param x0: the initial states, a Tensor (N, *example_shape) (detached; not changed).
    :param step_size: h > 0 in (1); the drift is (h / 2) s(x).
    :param n_steps: number of steps (0 returns x0 detached).
    :param noise_scale: multiplies the sqrt(h) eps noise; 1 is Langevin dynamics proper,
        anything else samples p^(1 / noise_scale^2) at best (see the module docstring).
    :param generator: an ``autodiff.Generator`` for the noise (the global one when None).
    :param clamp: None or (lo, hi): clip the state to a box after each step (images in their
        value range, as Du & Mordatch 2019 do). A clipped chain is no longer (1): it is
        Langevin dynamics projected onto the box, used for its stability.
    :return: the final states, a detached Tensor (N, *example_shape).
    """
    who = "langevin_dynamics"
    _check_positive(who, "step_size", step_size)
    _check_positive(who, "noise_scale", noise_scale, allow_zero=True)
    _check_steps(who, n_steps)
    clamp = _check_clamp(who, clamp)
    x = _as_chain_state(who, x0)
    for _ in range(n_steps):
        x = _langevin_step(x, _score(who, score_fn, x), float(step_size), float(noise_scale),
                           generator, clamp)
    return x


def annealed_langevin_dynamics(score_fn, x0, sigmas, step_size, n_steps_each, noise_scale=1.0,
                               generator=None, clamp=None, denoise=False):
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For i = 1..L (``sigmas`` decreasing), alpha_i = step_size * sigma_i^2 / sigma_L^2, and
    ``n_steps_each`` steps of (1) with h = alpha_i and the score s(x, sigma_i)::

        x <- x + (alpha_i / 2) s(x, sigma_i) + noise_scale sqrt(alpha_i) eps

    With ``denoise`` a last step x <- x + sigma_L^2 s(x, sigma_L) (Tweedie's formula, the
    posterior mean E[x_clean | x]; Jolicoeur-Martineau et al. 2021) removes the remaining
    sigma_L noise.

    :param score_fn: ``score_fn(x, sigma) -> Tensor`` of x's shape, where ``sigma`` is a
        Tensor (N,) holding the current noise level for every chain (what a noise-conditional
        network s_theta(x, sigma) takes).
    :param x0: initial states (N, *example_shape), e.g. uniform noise or N(0, sigma_1^2 I).
    :param sigmas: the noise levels sigma_1 > sigma_2 > ... > sigma_L > 0 (a sequence).
    :param step_size: eps in Algorithm 1, the step size at the smallest level sigma_L.
    :param n_steps_each: T, steps per noise level.
    :param noise_scale, generator, clamp: as in ``langevin_dynamics``.
    :return: the final states, a detached Tensor (N, *example_shape); the network is
        evaluated len(sigmas) * n_steps_each (+1 with ``denoise``) times.
    """
    who = "annealed_langevin_dynamics"
    try:
        sigmas = [float(s) for s in sigmas]
    except (TypeError, ValueError):
        raise ValueError(f"{who}: sigmas must be a sequence of numbers, got {sigmas!r}") from None
    if not sigmas or any(not (math.isfinite(s) and s > 0) for s in sigmas):
        raise ValueError(f"{who}: sigmas must be a non-empty sequence of positive numbers, "
                         f"got {sigmas!r}")
    if any(a <= b for a, b in zip(sigmas, sigmas[1:])):
        raise ValueError(f"{who}: sigmas must be strictly decreasing, got {sigmas!r}")
    _check_positive(who, "step_size", step_size)
    _check_positive(who, "noise_scale", noise_scale, allow_zero=True)
    _check_steps(who, n_steps_each)
    clamp = _check_clamp(who, clamp)
    x = _as_chain_state(who, x0)
    n = x.shape[0]
    sigma_last = sigmas[-1]
    for sigma in sigmas:
        alpha = float(step_size) * (sigma / sigma_last) ** 2
        level = autodiff.full((n,), sigma, dtype=x.dtype)
        for _ in range(n_steps_each):
            x = _langevin_step(x, _score(who, score_fn, x, level), alpha, float(noise_scale),
                               generator, clamp)
    if denoise:
        level = autodiff.full((n,), sigma_last, dtype=x.dtype)
        x = x + sigma_last ** 2 * _score(who, score_fn, x, level)
        if clamp is not None:
            x = x.clamp(clamp[0], clamp[1])
    return x


def energy_score(energy_fn):
    """The score of p(x) proportional to exp(-E(x)): s(x) = -grad_x E(x), as a function.

    ``energy_fn(x)`` returns the energies (N,) of a batch (N, ...); the gradient of their sum
    is the per-example gradient since the examples do not interact. Gradients are taken even
    inside ``no_grad`` (sampling at evaluation time) and no graph is kept.
    """
    def score(x):
        with autodiff.enable_grad():
            x = x.detach().requires_grad_(True)
            energy = energy_fn(x)
            if energy.ndim != 1 or energy.shape[0] != x.shape[0]:
                raise ValueError(f"energy_score: energy_fn must return energies of shape "
                                 f"({x.shape[0]},), got {tuple(energy.shape)}")
            (g,) = autodiff.grad(energy.sum(), [x])
        return -g
    return score


def energy_and_score(energy_fn, x):
    """(E(x) (N,), -grad_x E(x) (N, ...)), detached, from one forward and one backward."""
    with autodiff.enable_grad():
        x = x.detach().requires_grad_(True)
        energy = energy_fn(x)
        if energy.ndim != 1 or energy.shape[0] != x.shape[0]:
            raise ValueError(f"energy_fn must return energies of shape ({x.shape[0]},), got "
                             f"{tuple(energy.shape)}")
        (g,) = autodiff.grad(energy.sum(), [x])
    return energy.detach(), -g


def mala_step(energy_fn, x, step_size, generator=None, box=None, state=None):
    """One step of MALA on p(x) proportional to exp(-E(x)) (restricted to ``box``).

    Proposal y = x + (h/2) s(x) + sqrt(h) eps, s = -grad E; accept with probability
    min(1, exp(log p(y) - log p(x) + log q(x | y) - log q(y | x))), where
    log q(y | x) = -|y - x - (h/2) s(x)|^2 / (2h) + const; a proposal outside ``box``
    ((lo, hi), the support) is rejected.

    :param state: (E(x), s(x)) of the current x, to save a network evaluation (or None).
    :return: (x', (E(x'), s(x')), accepted (N,) bool array).
    """
    who = "mala_step"
    _check_positive(who, "step_size", step_size)
    box = _check_clamp(who, box)
    h = float(step_size)
    energy_x, score_x = state if state is not None else energy_and_score(energy_fn, x)
    x = x.detach()
    eps = autodiff.randn(*x.shape, generator=generator, dtype=x.dtype)
    y = x + (0.5 * h) * score_x + math.sqrt(h) * eps
    energy_y, score_y = energy_and_score(energy_fn, y)
    n = x.shape[0]

    def sq(t):
        return (t * t).reshape(n, -1).sum(1)
    log_q_yx = -sq(y - x - (0.5 * h) * score_x) / (2 * h)     # = -|eps|^2 / 2
    log_q_xy = -sq(x - y - (0.5 * h) * score_y) / (2 * h)
    log_ratio = (energy_x - energy_y + log_q_xy - log_q_yx).data
    xp = B.xp
    log_u = xp.log(autodiff.rand(n, generator=generator, dtype=x.dtype).data)
    accept = log_u < xp.minimum(log_ratio, 0.0)
    accept &= xp.isfinite(log_ratio)
    if box is not None:
        inside = ((y.data >= box[0]) & (y.data <= box[1])).reshape(n, -1).all(axis=1)
        accept &= inside
    shape = (n,) + (1,) * (x.ndim - 1)
    a = autodiff.Tensor(accept.reshape(shape))
    x_new = autodiff.where(a, y, x)
    a1 = autodiff.Tensor(accept)
    state = (autodiff.where(a1, energy_y, energy_x), autodiff.where(a, score_y, score_x))
    return x_new, state, accept
