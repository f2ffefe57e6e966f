"""The DDPM forward process q and its closed forms (Ho et al. 2020, Sec. 2 and 3).

The forward process adds Gaussian noise in T steps with variances beta_1..beta_T:

    q(x_t | x_{t-1}) = N(x_t; sqrt(alpha_t) x_{t-1}, beta_t I),   alpha_t = 1 - beta_t   (Eq. 2)

and has the closed-form marginal, with alpha_bar_t = prod_{s <= t} alpha_s,

    q(x_t | x_0) = N(x_t; sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)                   (Eq. 4)
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,  eps ~ N(0, I).

By Bayes' rule the reverse of one step given x_0 is Gaussian (Eq. 6, 7):

    q(x_{t-1} | x_t, x_0) = N(x_{t-1}; mu_tilde_t(x_t, x_0), beta_tilde_t I)
    mu_tilde_t  = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
                + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t.

Indexing: arrays here are 0-based, so array index t holds the paper's step t + 1 (index 0 is
the first noising step, index T - 1 produces x_T); ``alpha_bar_prev[0] = 1`` stands for
x_0 itself. This is the convention of Ho et al.'s and Nichol & Dhariwal's code and of
diffusers.

What a network predicts, and the conversions between the three parameterisations (eps, x_0,
and v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0 of Salimans & Ho 2022, Sec. 4) are
here too, as is the variance-exploding view used by the Karras et al. 2022 samplers: with
x~ = x_t / sqrt(alpha_bar_t), x~ = x_0 + sigma_t eps, sigma_t = sqrt((1 - alpha_bar_t) /
alpha_bar_t).

Schedules (beta_t) are computed in float64 with the backend's ``xp`` and cast to a tensor's
dtype where they meet one.
"""
import math

import autodiff
from autodiff import backend as B

__all__ = ["linear_betas", "cosine_betas", "make_betas", "BETA_SCHEDULES", "NoiseSchedule",
           "space_timesteps", "PREDICTIONS", "x0_eps_from_prediction", "prediction_target"]

BETA_SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "x0", "v")


def linear_betas(num_timesteps, beta_start=1e-4, beta_end=0.02):
    """beta_t evenly spaced from beta_start to beta_end (Ho et al. 2020, Sec. 4: 1e-4 to 0.02
    over T = 1000). Not rescaled for other T (improved DDPM's code multiplies both ends by
    1000 / T; diffusers' ``linear`` does not). Returns (T,) float64."""
    _check_T(num_timesteps)
    if not 0.0 < beta_start <= beta_end < 1.0:
        raise ValueError(f"linear_betas: need 0 < beta_start <= beta_end < 1, got "
                         f"beta_start={beta_start}, beta_end={beta_end}")
    return B.xp.linspace(beta_start, beta_end, int(num_timesteps), dtype=B.numpy.float64)


def cosine_betas(num_timesteps, s=0.008, max_beta=0.999):
    """The cosine schedule (Nichol & Dhariwal 2021, Eq. 17):

        alpha_bar(t) = f(t) / f(0),  f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2)
        beta_t = min(1 - alpha_bar(t + 1) / alpha_bar(t), max_beta)      t = 0..T-1

    s = 0.008 keeps beta_t from being too small near t = 0; the clip at 0.999 prevents the
    singularity at t = T. (diffusers calls this ``squaredcos_cap_v2``.) Returns (T,) float64.
    """
    _check_T(num_timesteps)
    if not s >= 0.0 or not 0.0 < max_beta < 1.0:
        raise ValueError(f"cosine_betas: need s >= 0 and 0 < max_beta < 1, got s={s}, "
                         f"max_beta={max_beta}")
    xp = B.xp
    T = int(num_timesteps)
    t = xp.arange(T + 1, dtype=B.numpy.float64) / T
    f = xp.cos((t + s) / (1.0 + s) * (math.pi / 2.0)) ** 2
    return xp.minimum(1.0 - f[1:] / f[:-1], max_beta)


def make_betas(name, num_timesteps, **kwargs):
    """The beta schedule called ``name`` (one of ``BETA_SCHEDULES``)."""
    if name == "linear":
        return linear_betas(num_timesteps, **kwargs)
    if name == "cosine":
        return cosine_betas(num_timesteps, **kwargs)
    raise ValueError(f"unknown beta schedule {name!r}; known: {', '.join(BETA_SCHEDULES)}")


def x0_eps_from_prediction(prediction, out, xt, a, s):
    """(x_0, eps) from a network output ``out`` (N, ...) at x_t = a x_0 + s eps, with
    a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar) (Tensors broadcasting against x_t):

        "eps":  x_0 = (x_t - s eps) / a                         (Eq. 4 solved for x_0)
        "x0":   eps = (x_t - a x_0) / s
        "v":    x_0 = a x_t - s v,  eps = s x_t + a v           (Salimans & Ho 2022, Sec. 4:
                v = a eps - s x_0 is (x_0, eps) rotated by the angle phi with cos phi = a)
    """
    if prediction == "eps":
        return (xt - s * out) / a, out
    if prediction == "x0":
        return out, (xt - a * out) / s
    if prediction == "v":
        return a * xt - s * out, s * xt + a * out
    raise ValueError(f"unknown prediction {prediction!r}; known: {', '.join(PREDICTIONS)}")


def prediction_target(prediction, x0, eps, a, s):
    """The regression target of the simple loss for ``prediction``: eps, x_0, or
    v = a eps - s x_0 (a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar))."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return a * eps - s * x0
    raise ValueError(f"unknown prediction {prediction!r}; known: {', '.join(PREDICTIONS)}")


def _check_T(num_timesteps):
    if not isinstance(num_timesteps, int) or isinstance(num_timesteps, bool) or \
            num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive int, got {num_timesteps!r}")


def space_timesteps(num_timesteps, steps):
    """``steps`` timesteps out of 0..T-1, evenly spaced and always including the first (0)
    and the last (T - 1): round(i (T - 1) / (steps - 1)), i = 0..steps-1 (one step: [T - 1]).

    The respaced samplers (DDIM, Song et al. 2021a, Sec. 4.2; respaced ancestral sampling,
    Nichol & Dhariwal 2021, Sec. 4) visit these. Returns a sorted (steps,) int64 array.
    """
    _check_T(num_timesteps)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be an int in [1, {num_timesteps}] (the number of "
                         f"training timesteps), got {steps!r}")
    xp = B.xp
    if steps == 1:
        return xp.asarray([num_timesteps - 1], dtype=B.numpy.int64)
    t = xp.rint(xp.linspace(0.0, num_timesteps - 1, steps)).astype(B.numpy.int64)
    return t


class NoiseSchedule:
    """beta_t and every quantity derived from it, plus the closed forms of q.

    :param betas: (T,) variances of the forward steps, each in (0, 1).
    :param timesteps: (T,) the network's timestep for each index (default 0..T-1). A
        respaced schedule (``respace``) keeps the ORIGINAL timesteps here, so the network
        trained on the full chain is called with the times it knows.

    Arrays (all (T,) float64): ``betas``, ``alphas``, ``alpha_bar``, ``alpha_bar_prev``
    (alpha_bar_{t-1}, 1 at index 0), ``posterior_variance`` (beta_tilde_t, 0 at index 0),
    ``posterior_log_variance_clipped`` (log beta_tilde_t with index 0 set to index 1's
    value, as Nichol & Dhariwal's code, because beta_tilde is 0 there),
    ``posterior_mean_coef_x0`` and ``posterior_mean_coef_xt`` (Eq. 7's two coefficients),
    ``sigmas`` (the VE noise level sqrt((1 - alpha_bar) / alpha_bar)).
    """

    def __init__(self, betas, timesteps=None):
        xp = B.xp
        betas = xp.asarray(betas, dtype=B.numpy.float64)
        if betas.ndim != 1 or betas.size < 1:
            raise ValueError(f"NoiseSchedule: betas must be a non-empty 1-d array, got shape "
                             f"{tuple(betas.shape)}")
        if not bool(xp.all((betas > 0) & (betas < 1))):
            raise ValueError(f"NoiseSchedule: every beta must lie in (0, 1), got values in "
                             f"[{float(betas.min())}, {float(betas.max())}]")
        T = int(betas.size)
        self.num_timesteps = T
        self.timesteps = (xp.arange(T, dtype=B.numpy.int64) if timesteps is None
                          else xp.asarray(timesteps, dtype=B.numpy.int64))
        if self.timesteps.shape != (T,):
            raise ValueError(f"NoiseSchedule: timesteps must have shape ({T},), got "
                             f"{tuple(self.timesteps.shape)}")
        self.betas = betas
        self.alphas = 1.0 - betas
        # the product in log space: alpha_bar of a 1000-step chain is ~4e-5 at the end, and
        # log1p(-beta) keeps each factor's rounding relative
        self.log_alpha_bar = xp.cumsum(xp.log1p(-betas))
        self.alpha_bar = xp.exp(self.log_alpha_bar)
        self.alpha_bar_prev = xp.concatenate([xp.ones(1), self.alpha_bar[:-1]])
        one_minus = -xp.expm1(self.log_alpha_bar)                        # 1 - alpha_bar_t
        one_minus_prev = xp.concatenate([xp.zeros(1), one_minus[:-1]])   # 1 - alpha_bar_{t-1}
        self.one_minus_alpha_bar = one_minus
        # Eq. 7
        self.posterior_variance = betas * one_minus_prev / one_minus
        self.posterior_log_variance_clipped = xp.log(xp.concatenate(
            [self.posterior_variance[1:2] if T > 1 else betas[:1], self.posterior_variance[1:]]))
        self.posterior_mean_coef_x0 = betas * xp.sqrt(self.alpha_bar_prev) / one_minus
        self.posterior_mean_coef_xt = one_minus_prev * xp.sqrt(self.alphas) / one_minus
        self.sigmas = xp.sqrt(one_minus / self.alpha_bar)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_name(cls, name, num_timesteps, **kwargs):
        """``NoiseSchedule(make_betas(name, T, **kwargs))``."""
        return cls(make_betas(name, num_timesteps, **kwargs))

    def respace(self, keep):
        """The schedule that jumps between the kept indices ``keep`` (sorted, in 0..T-1):

            alpha_bar'_i = alpha_bar_{keep[i]},  beta'_i = 1 - alpha_bar'_i / alpha_bar'_{i-1}

        so q(x_{keep[i]} | x_0) is unchanged and each step of the new chain is the composition
        of the old steps it skips (Nichol & Dhariwal 2021, Sec. 4; the DDIM respacing of Song
        et al. 2021a, Sec. 4.2). The network's timesteps are carried along.
        """
        xp = B.xp
        keep = xp.asarray(keep, dtype=B.numpy.int64)
        if keep.ndim != 1 or keep.size < 1 or int(keep.min()) < 0 or \
                int(keep.max()) >= self.num_timesteps or \
                (keep.size > 1 and not bool(xp.all(xp.diff(keep) > 0))):
            raise ValueError(f"respace: keep must be strictly increasing indices in "
                             f"[0, {self.num_timesteps - 1}], got {keep.tolist()}")
        log_ab = self.log_alpha_bar[keep]
        log_ab_prev = xp.concatenate([xp.zeros(1), log_ab[:-1]])
        betas = -xp.expm1(log_ab - log_ab_prev)
        return NoiseSchedule(betas, timesteps=self.timesteps[keep])

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def extract(values, t, like):
        """values[t] (t (N,) integer indices) as a constant Tensor (N, 1, ..., 1) in the dtype
        of ``like`` (N, ...), ready to broadcast against it."""
        xp = B.xp
        t = t.data if isinstance(t, autodiff.Tensor) else xp.asarray(t)
        out = values[t].astype(like.dtype, copy=False)
        return autodiff.Tensor(out.reshape((-1,) + (1,) * (like.ndim - 1)))

    def _check_t(self, t, n):
        xp = B.xp
        t = t.data if isinstance(t, autodiff.Tensor) else xp.asarray(t)
        if t.ndim == 0:
            t = xp.full((n,), int(t), dtype=B.numpy.int64)
        if t.shape != (n,) or t.dtype.kind not in "iu":
            raise ValueError(f"t must be (N,) = ({n},) integer timestep indices, got shape "
                             f"{tuple(t.shape)} and dtype {t.dtype}")
        if n and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(f"t must lie in [0, {self.num_timesteps - 1}], got values in "
                             f"[{int(t.min())}, {int(t.max())}]")
        return t

    # ------------------------------------------------------------------ q
    def q_mean_variance(self, x0, t):
        """Mean sqrt(alpha_bar_t) x_0 and variance (1 - alpha_bar_t) of q(x_t | x_0) (Eq. 4);
        x0 (N, ...) -> (N, ...), (N, 1, ...)."""
        t = self._check_t(t, x0.shape[0])
        return (self.extract(B.xp.sqrt(self.alpha_bar), t, x0) * x0,
                self.extract(self.one_minus_alpha_bar, t, x0))

    def q_sample(self, x0, t, eps):
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Eq. 4, reparameterised);
        x0, eps (N, ...), t (N,) -> (N, ...)."""
        t = self._check_t(t, x0.shape[0])
        if tuple(eps.shape) != tuple(x0.shape):
            raise ValueError(f"q_sample: eps {tuple(eps.shape)} must have x0's shape "
                             f"{tuple(x0.shape)}")
        xp = B.xp
        return (self.extract(xp.sqrt(self.alpha_bar), t, x0) * x0
                + self.extract(xp.sqrt(self.one_minus_alpha_bar), t, x0) * eps)

    def q_posterior(self, x0, xt, t):
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0) (Eq. 6, 7);
        x0, xt (N, ...), t (N,) -> (N, ...), (N, 1, ...), (N, 1, ...)."""
        t = self._check_t(t, xt.shape[0])
        mean = (self.extract(self.posterior_mean_coef_x0, t, xt) * x0
                + self.extract(self.posterior_mean_coef_xt, t, xt) * xt)
        return (mean, self.extract(self.posterior_variance, t, xt),
                self.extract(self.posterior_log_variance_clipped, t, xt))

    # ------------------------------------------------------------------ parameterisations
    def coefficients(self, t, like):
        """(sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)) as constant Tensors (N, 1, ..., 1)."""
        xp = B.xp
        return (self.extract(xp.sqrt(self.alpha_bar), t, like),
                self.extract(xp.sqrt(self.one_minus_alpha_bar), t, like))

    def x0_eps_from_output(self, prediction, xt, t, out):
        """(x_0, eps) from the network's output ``out`` under ``prediction`` at indices t."""
        a, s = self.coefficients(self._check_t(t, xt.shape[0]), xt)
        return x0_eps_from_prediction(prediction, out, xt, a, s)

    def target(self, prediction, x0, t, eps):
        """What the network regresses on in the simple loss: eps, x_0 or v."""
        a, s = self.coefficients(self._check_t(t, x0.shape[0]), x0)
        return prediction_target(prediction, x0, eps, a, s)

    # ------------------------------------------------------------------ the VE view
    def sigma_to_t(self, sigma):
        """The continuous timestep whose sigma is ``sigma``, by linear interpolation of the
        network's timesteps in log sigma (log sigma_t increases with t); sigmas outside
        [sigma_0, sigma_{T-1}] are clamped to the ends. sigma (N,) array -> (N,) float64."""
        xp = B.xp
        log_sigmas = xp.log(self.sigmas)
        log_s = xp.log(xp.asarray(sigma, dtype=B.numpy.float64))
        return xp.interp(log_s, log_sigmas, self.timesteps.astype(B.numpy.float64))

    @property
    def sigma_min(self):
        return float(self.sigmas[0])

    @property
    def sigma_max(self):
        return float(self.sigmas[-1])
