"""Scores from other parameterisations: a DDPM eps-network or a denoiser is a score network.

Under an SDE kernel x(t) = m(t) x0 + std(t) eps (``common.sde``), Tweedie's formula
(Efron 2011; Song et al. 2021b, App. B) links the three parameterisations of one network:

    s(x, t) = -E[eps | x(t) = x] / std(t)                   (an eps-predictor)
            = (m(t) E[x0 | x(t) = x] - x) / std(t)^2          (a denoiser)

so the optimal eps-predictor gives the true score exactly, and a trained DDPM eps-network
eps_theta is the score network s_theta = -eps_theta / std(t) of the VP SDE: **DDPM is the VP
SDE discretized** (``common.sde``, VPSDE.discretize), and every SDE sampler and the ODE
likelihood of ``refgen.families.score`` accept it through ``score_from_eps``.

The contract, for the diffusion family (nothing else is shared):

* ``eps_fn(x, tau) -> Tensor`` of x's shape: x (N, *event), tau an (N,) Tensor of the
  network's own time input (DDPM: the step index i in 0..N-1, as floats);
* ``time_to_input(t) -> tau`` maps the SDE's t in [0, 1] to that input; for a DDPM with N
  steps on the linear schedule beta_min / N .. beta_max / N, ``ddpm_time_input(N)`` gives
  tau = t (N - 1) (step i sits at t_i = i / (N - 1): VPSDE.discretize's grid; score_sde's
  convention for ported DDPM checkpoints);
* the VP SDE to pair it with: ``VPSDE(beta_min=N * beta_1, beta_max=N * beta_N, N=N)``
  (DDPM's 1e-4 .. 0.02 at N = 1000 is the default VPSDE()).
"""
from ..common.sde import SDE, expand_to

__all__ = ["score_from_eps", "score_from_denoiser", "eps_from_score", "ddpm_time_input"]


def _check(sde, fn, who):
    if not isinstance(sde, SDE):
        raise TypeError(f"{who}: sde must be a common.sde.SDE, got {type(sde).__name__}")
    if not callable(fn):
        raise TypeError(f"{who}: the network must be callable, got {type(fn).__name__}")


def ddpm_time_input(num_steps):
    """t -> t (N - 1): the DDPM step index that sits at SDE time t (see module docstring)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"ddpm_time_input: num_steps must be an int >= 2, got {num_steps!r}")
    return lambda t: t * float(num_steps - 1)


def score_from_eps(eps_fn, sde, time_to_input=None):
    """s(x, t) = -eps_fn(x, time_to_input(t)) / std(t): an eps-predictor as a score function.

    :param eps_fn: ``eps_fn(x, tau) -> (N, *event)`` (module docstring).
    :param sde: the SDE whose kernel the network was trained on (its std(t)).
    :param time_to_input: t (N,) Tensor -> the network's time input; identity when None.
    :return: ``score_fn(x, t)`` for ``common.sde`` and the samplers.
    """
    _check(sde, eps_fn, "score_from_eps")

    def score(x, t):
        _, std = sde.marginal_coefficients(t, x.shape[0], x.dtype)
        tau = t if time_to_input is None else time_to_input(t)
        eps = eps_fn(x, tau)
        if tuple(eps.shape) != tuple(x.shape):
            raise ValueError(f"score_from_eps: eps_fn returned shape {tuple(eps.shape)} for x "
                             f"of shape {tuple(x.shape)}")
        return -eps / expand_to(std, x)
    return score


def eps_from_score(score_fn, sde):
    """The inverse map: eps(x, t) = -std(t) s(x, t)."""
    _check(sde, score_fn, "eps_from_score")

    def eps(x, t):
        _, std = sde.marginal_coefficients(t, x.shape[0], x.dtype)
        return -expand_to(std, x) * score_fn(x, t)
    return eps


def score_from_denoiser(denoiser_fn, sde):
    """s(x, t) = (m(t) D(x, t) - x) / std(t)^2 for a denoiser D(x, t) ~ E[x0 | x(t) = x]."""
    _check(sde, denoiser_fn, "score_from_denoiser")

    def score(x, t):
        m, std = sde.marginal_coefficients(t, x.shape[0], x.dtype)
        return (expand_to(m, x) * denoiser_fn(x, t) - x) / expand_to(std * std, x)
    return score

