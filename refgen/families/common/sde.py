"""Stochastic differential equations for score-based and diffusion models (Song et al. 2021b).

Song, Sohl-Dickstein, Kingma, Kumar, Ermon and Poole (2021b), "Score-based generative modeling
through stochastic differential equations" (ICLR; "score_sde" below) view noising as an Ito SDE
on t in [0, T], T = 1,

    dx = f(x, t) dt + g(t) dw                                                  (eq. 5)

whose marginals p_t go from the data (t = 0) to a tractable prior (t = T). Given the score
s(x, t) = grad_x log p_t(x) (a trained s_theta, or an analytic one in tests), the process is
reversed in time by

    dx = [f(x, t) - g(t)^2 s(x, t)] dt + g(t) dw_bar       (reverse SDE, eq. 6; dt < 0)
    dx = [f(x, t) - g(t)^2 s(x, t) / 2] dt                 (probability-flow ODE, eq. 13)

and both share the marginals p_t of the forward SDE. Every SDE here has an affine drift
f(x, t) = -beta(t) x / 2 or 0, so the transition kernel from a clean x0 is Gaussian:

    p_0t(x(t) | x0) = N(m(t) x0, std(t)^2 I)                          (``marginal``)

The three instances (score_sde's ``sde_lib``; Song et al. 2021b, Sec. 3.4 and App. B):

=========  =============================  =====================================  ===================
SDE        f(x, t), g(t)                   m(t), std(t)                           prior p_T
=========  =============================  =====================================  ===================
VE         0, sigma(t) sqrt(2 log(        1, sigma(t) = sigma_min                N(0, sigma_max^2 I)
           sigma_max / sigma_min))          (sigma_max / sigma_min)^t
VP         -beta(t) x / 2, sqrt(beta(t))   exp(-B(t)/2), sqrt(1 - exp(-B(t)))     N(0, I)
sub-VP     -beta(t) x / 2,                 exp(-B(t)/2), 1 - exp(-B(t))           N(0, I)
           sqrt(beta(t)(1 - exp(-2B(t))))
=========  =============================  =====================================  ===================

with beta(t) = beta_min + t (beta_max - beta_min) and B(t) = int_0^t beta = beta_min t +
t^2 (beta_max - beta_min) / 2. Defaults follow the paper: VE sigma_min = 0.01, VP and sub-VP
beta_min = 0.1, beta_max = 20.

The VE convention is score_sde's: std(t) = sigma(t), not sqrt(sigma(t)^2 - sigma_min^2), that
is, x(0) is the data already perturbed by N(0, sigma_min^2 I) (as NCSN's smallest noise level),
so ``marginal`` is the law of x(t) given the clean x0 and ``prior_log_prob`` ignores the data.

Discretizations (``discretize(x, t, dt)``, one step t -> t + dt: x(t + dt) = x + f + G z,
z ~ N(0, I)):

* VP: **DDPM is the VP SDE discretized** (Song et al. 2021b, App. B eq. 27-29).  With
  N = 1/dt steps, beta_i = beta(t) dt and the DDPM update
  x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z: f = (sqrt(1 - beta_i) - 1) x,
  G = sqrt(beta_i).  On the grid t_i = i / (N - 1), beta_i = beta_min / N + i (beta_max -
  beta_min) / (N (N - 1)): for N = 1000 and the defaults this is Ho et al. (2020)'s linear
  schedule 1e-4 .. 0.02, so a DDPM eps-network with integer step i is a VP-SDE network at
  t = i / (N - 1) (see ``refgen.families.score.adapters.score_from_eps``).
* VE: SMLD / NCSN's noise levels (App. B eq. 24): f = 0, G = sqrt(sigma(t + dt)^2 - sigma(t)^2),
  exact for the VE SDE.
* sub-VP (and the base class): Euler-Maruyama, f = f(x, t) dt, G = g(t) sqrt(dt).

Shapes: x is (N, *event) (points (N, D), images (N, C, H, W)); t is a Python float or an
(N,) array / Tensor of times; a score function is ``score_fn(x, t) -> (N, *event)`` with
t an (N,) Tensor. Per-example coefficients come back as (N,) Tensors and broadcast over the
event axes. All arithmetic goes through ``autodiff`` Tensors, so ``drift`` is differentiable
in x (the ODE likelihood needs its divergence).
"""
import math

import autodiff
from autodiff import backend as B

__all__ = ["SDE", "VESDE", "VPSDE", "SubVPSDE", "ReverseSDE", "SDES", "make_sde",
           "expand_to"]


def _dtype_of(x):
    if isinstance(x, autodiff.Tensor) and x.dtype.kind == "f":
        return x.dtype
    return autodiff.get_default_dtype()


def _times(t, n, dtype):
    """t as a raw (n,) array of ``dtype``: a scalar is repeated, an (n,) array kept."""
    if isinstance(t, autodiff.Tensor):
        t = t.data
    t = B.xp.asarray(t, dtype=dtype)
    if t.ndim == 0:
        return B.xp.full((n,), t, dtype=dtype)
    if t.shape != (n,):
        raise ValueError(f"t must be a scalar or of shape ({n},) (one time per example), "
                         f"got shape {tuple(t.shape)}")
    return t


def expand_to(c, x):
    """An (N,) per-example coefficient c reshaped to (N, 1, ..., 1) to broadcast against x."""
    return c.reshape((c.shape[0],) + (1,) * (x.ndim - 1))


def _check_x(x, who):
    if not isinstance(x, autodiff.Tensor):
        raise TypeError(f"{who}: x must be an autodiff.Tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{who}: x must be (N, *event) with a batch axis, got shape "
                         f"{tuple(x.shape)}")


def _positive(name, value, who):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be a positive finite number, got {value!r}")
    return float(value)


class SDE:
    """An Ito SDE dx = f(x, t) dt + g(t) dw on [0, T] with a Gaussian kernel p_0t(x(t) | x0).

    Subclasses define ``drift``, ``_g`` (g(t) on raw arrays), ``_mean_std`` (m(t), std(t) on
    raw arrays), ``prior_sample`` and ``prior_log_prob``; ``discretize`` defaults to
    Euler-Maruyama.

    :attr T: the end time (1).
    :attr t_min: the smallest time samplers integrate down to and the ODE likelihood starts
        from (score_sde's ``sampling_eps``: 1e-5 for VE, 1e-3 for VP and sub-VP); at t = 0
        the score of the data is singular.
    :attr N: the number of steps of the SDE's own discretization (1000, DDPM's T); a
        default for samplers, not a property of the continuous SDE.
    """

    name = None
    T = 1.0
    t_min = 1e-3
    N = 1000

    # ---- the SDE
    def drift(self, x, t):
        """f(x, t), shape like x."""
        raise NotImplementedError

    def _g(self, t):
        raise NotImplementedError

    def _mean_std(self, t):
        raise NotImplementedError

    def diffusion(self, t, n=None, dtype=None):
        """g(t) as an (n,) Tensor (n defaults to len(t), 1 for a scalar t)."""
        t = self._t(t, n, dtype)
        return autodiff.Tensor(self._g(t))

    def _t(self, t, n, dtype):
        if n is None:
            shape = B.xp.shape(t.data if isinstance(t, autodiff.Tensor) else t)
            n = shape[0] if shape else 1
        return _times(t, n, dtype or autodiff.get_default_dtype())

    # ---- the Gaussian transition kernel from a clean x0
    def marginal_coefficients(self, t, n=None, dtype=None):
        """(m(t), std(t)) as (n,) Tensors: x(t) | x0 ~ N(m(t) x0, std(t)^2 I)."""
        t = self._t(t, n, dtype)
        m, s = self._mean_std(t)
        return autodiff.Tensor(m), autodiff.Tensor(s)

    def marginal(self, x0, t):
        """(mean, std) of p_0t(x(t) | x0): mean (N, *event) = m(t) x0, std (N,)."""
        _check_x(x0, f"{type(self).__name__}.marginal")
        m, s = self.marginal_coefficients(t, x0.shape[0], _dtype_of(x0))
        return expand_to(m, x0) * x0, s

    def perturb(self, x0, t, eps):
        """x(t) = m(t) x0 + std(t) eps, a draw of p_0t(. | x0) given eps ~ N(0, I)."""
        mean, s = self.marginal(x0, t)
        return mean + expand_to(s, x0) * eps

    # ---- the prior p_T
    def prior_sample(self, shape, generator=None):
        """A draw of shape ``shape`` (N, *event) from the prior p_T."""
        raise NotImplementedError

    def prior_log_prob(self, z):
        """log p_T(z) per example, (N,) nats."""
        raise NotImplementedError

    # ---- discretization
    def discretize(self, x, t, dt):
        """One step t -> t + dt (dt > 0) of the forward process: (f, G) with
        x(t + dt) = x + f + G z, z ~ N(0, I); f like x, G (N,). Euler-Maruyama here."""
        _check_x(x, f"{type(self).__name__}.discretize")
        n, dtype = x.shape[0], _dtype_of(x)
        f = self.drift(x, _times(t, n, dtype)) * dt
        G = self.diffusion(t, n, dtype) * math.sqrt(dt)
        return f, G

    # ---- time reversal
    def reverse(self, score_fn, probability_flow=False):
        """The reverse-time SDE (eq. 6) or, with ``probability_flow``, the PF-ODE (eq. 13)
        driven by ``score_fn(x, t) -> (N, *event)``; see ``ReverseSDE``."""
        return ReverseSDE(self, score_fn, probability_flow)

    # ---- plumbing
    def config(self):
        """The JSON-able constructor arguments, ``make_sde(**sde.config())`` rebuilds it."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _standard_normal_log_prob(z, scale):
    """log N(z; 0, scale^2 I) summed over the event axes, (N,)."""
    d = math.prod(z.shape[1:])
    sq = (z * z).reshape(z.shape[0], -1).sum(dim=1)
    return -0.5 * sq / scale ** 2 - d * (math.log(scale) + 0.5 * math.log(2.0 * math.pi))


class VESDE(SDE):
    """Variance exploding SDE (Song et al. 2021b, eq. 30): dx = sigma(t) sqrt(2 log(sigma_max /
    sigma_min)) dw, sigma(t) = sigma_min (sigma_max / sigma_min)^t; the continuous limit of
    NCSN's geometric noise levels (Song & Ermon 2019).

    :param sigma_min: the smallest noise level (0.01 in the paper).
    :param sigma_max: the largest; Song & Ermon (2020, technique 1) take it about the largest
        distance between two training examples (50 for CIFAR-10 in [0, 1]).
    """

    name = "ve"
    t_min = 1e-5

    def __init__(self, sigma_min=0.01, sigma_max=50.0, N=1000):
        who = "VESDE"
        self.sigma_min = _positive("sigma_min", sigma_min, who)
        self.sigma_max = _positive("sigma_max", sigma_max, who)
        if not self.sigma_max > self.sigma_min:
            raise ValueError(f"VESDE: sigma_max ({sigma_max}) must exceed sigma_min "
                             f"({sigma_min})")
        self.N = int(N)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t):
        """sigma(t) = sigma_min (sigma_max / sigma_min)^t on a raw array or float."""
        return self.sigma_min * B.xp.exp(B.xp.asarray(t) * self._log_ratio)

    def drift(self, x, t):
        return x * 0.0

    def _g(self, t):
        return self.sigma(t) * math.sqrt(2.0 * self._log_ratio)

    def _mean_std(self, t):
        return B.xp.ones_like(t), self.sigma(t)

    def discretize(self, x, t, dt):
        """SMLD's step (App. B eq. 24): f = 0, G = sqrt(sigma(t + dt)^2 - sigma(t)^2), exact."""
        _check_x(x, "VESDE.discretize")
        t = _times(t, x.shape[0], _dtype_of(x))
        s0, s1 = self.sigma(t), self.sigma(t + dt)
        return x * 0.0, autodiff.Tensor(B.xp.sqrt(s1 * s1 - s0 * s0))

    def prior_sample(self, shape, generator=None):
        return autodiff.randn(*shape, generator=generator) * self.sigma_max

    def prior_log_prob(self, z):
        return _standard_normal_log_prob(z, self.sigma_max)

    def config(self):
        return {"name": "ve", "sigma_min": self.sigma_min, "sigma_max": self.sigma_max,
                "N": self.N}


class VPSDE(SDE):
    """Variance preserving SDE (Song et al. 2021b, eq. 32): dx = -beta(t) x / 2 dt +
    sqrt(beta(t)) dw, beta(t) = beta_min + t (beta_max - beta_min); DDPM's continuous limit.

    log m(t) = -B(t) / 2 = -t beta_min / 2 - t^2 (beta_max - beta_min) / 4, std(t) =
    sqrt(1 - m(t)^2) computed as sqrt(-expm1(-B(t))) (no cancellation at small t).
    """

    name = "vp"
    t_min = 1e-3

    def __init__(self, beta_min=0.1, beta_max=20.0, N=1000):
        who = type(self).__name__
        self.beta_min = _positive("beta_min", beta_min, who)
        self.beta_max = _positive("beta_max", beta_max, who)
        if not self.beta_max >= self.beta_min:
            raise ValueError(f"{who}: beta_max ({beta_max}) must be >= beta_min ({beta_min})")
        self.N = int(N)

    def beta(self, t):
        """beta(t) = beta_min + t (beta_max - beta_min)."""
        return self.beta_min + B.xp.asarray(t) * (self.beta_max - self.beta_min)

    def integrated_beta(self, t):
        """B(t) = int_0^t beta(s) ds = beta_min t + t^2 (beta_max - beta_min) / 2."""
        t = B.xp.asarray(t)
        return self.beta_min * t + 0.5 * t * t * (self.beta_max - self.beta_min)

    def drift(self, x, t):
        beta = autodiff.Tensor(self.beta(_times(t, x.shape[0], _dtype_of(x))))
        return -0.5 * expand_to(beta, x) * x

    def _g(self, t):
        return B.xp.sqrt(self.beta(t))

    def _mean_std(self, t):
        b = self.integrated_beta(t)
        return B.xp.exp(-0.5 * b), B.xp.sqrt(-B.xp.expm1(-b))

    def discretize(self, x, t, dt):
        """DDPM's step (App. B eq. 27): beta_i = beta(t) dt, x_{i+1} = sqrt(1 - beta_i) x_i +
        sqrt(beta_i) z, so f = (sqrt(1 - beta_i) - 1) x, G = sqrt(beta_i)."""
        _check_x(x, f"{type(self).__name__}.discretize")
        beta_i = self.beta(_times(t, x.shape[0], _dtype_of(x))) * dt
        if float(B.xp.max(beta_i)) >= 1.0:
            raise ValueError(f"{type(self).__name__}.discretize: beta(t) dt = "
                             f"{float(B.xp.max(beta_i)):.3g} >= 1; take a smaller dt "
                             f"(dt = {float(dt):.4g}; a sampler that crosses [t_eps, T] in n "
                             "steps has dt = (T - t_eps) / n: give it more steps)")
        shrink = B.xp.sqrt(1.0 - beta_i) - 1.0   # sqrt(1 - b) - 1, b < 1
        return expand_to(autodiff.Tensor(shrink), x) * x, autodiff.Tensor(B.xp.sqrt(beta_i))

    def prior_sample(self, shape, generator=None):
        return autodiff.randn(*shape, generator=generator)

    def prior_log_prob(self, z):
        return _standard_normal_log_prob(z, 1.0)

    def config(self):
        return {"name": self.name, "beta_min": self.beta_min, "beta_max": self.beta_max,
                "N": self.N}


class SubVPSDE(VPSDE):
    """Sub-VP SDE (Song et al. 2021b, eq. 34): dx = -beta(t) x / 2 dt +
    sqrt(beta(t) (1 - exp(-2 B(t)))) dw; its variance (1 - exp(-B(t)))^2 stays below the VP
    SDE's 1 - exp(-B(t)) (hence "sub"). Same drift and mean as VP."""

    name = "subvp"

    def _g(self, t):
        # beta (1 - e^{-2B}) with -expm1 for small B
        return B.xp.sqrt(self.beta(t) * -B.xp.expm1(-2.0 * self.integrated_beta(t)))

    def _mean_std(self, t):
        b = self.integrated_beta(t)
        return B.xp.exp(-0.5 * b), -B.xp.expm1(-b)

    discretize = SDE.discretize   # Euler-Maruyama (score_sde has no DDPM-like step for it)


class ReverseSDE:
    """The time reversal of ``sde`` under the score ``score_fn`` (Song et al. 2021b, eq. 6 and
    13; score_sde's ``SDE.reverse``).

    ``drift(x, t)`` = f(x, t) - g(t)^2 s(x, t) (SDE) or f(x, t) - g(t)^2 s(x, t) / 2
    (``probability_flow``): the drift in forward time t, to be integrated from T down to
    t_min (dt < 0). ``diffusion(t)`` = g(t), or 0 for the ODE.

    ``discretize(x, t, dt)`` (dt > 0, a step from t down to t - dt) returns (f, G) with
    x(t - dt) = x + f + G z, built on the forward SDE's own discretization (f_F, G_F):
    f = -(f_F - G_F^2 s) and G = G_F (the "reverse diffusion" predictor, eq. 46), or
    f = -(f_F - G_F^2 s / 2) and G = 0 for the ODE. With the VP SDE this is (to first order in
    beta) DDPM's ancestral step.
    """

    def __init__(self, sde, score_fn, probability_flow=False):
        if not isinstance(sde, SDE):
            raise TypeError(f"ReverseSDE: sde must be an SDE, got {type(sde).__name__}")
        if not callable(score_fn):
            raise TypeError(f"ReverseSDE: score_fn must be callable (x, t) -> score, got "
                            f"{type(score_fn).__name__}")
        self.sde, self.score_fn = sde, score_fn
        self.probability_flow = bool(probability_flow)
        self.T, self.t_min, self.N = sde.T, sde.t_min, sde.N

    def _score(self, x, t):
        t = autodiff.Tensor(_times(t, x.shape[0], _dtype_of(x)))
        s = self.score_fn(x, t)
        if tuple(s.shape) != tuple(x.shape):
            raise ValueError(f"score_fn returned shape {tuple(s.shape)} for x of shape "
                             f"{tuple(x.shape)}; a score has the shape of x")
        return s

    def drift(self, x, t):
        """f(x, t) - c g(t)^2 s(x, t), c = 1 (SDE) or 1/2 (PF-ODE); shape like x."""
        _check_x(x, "ReverseSDE.drift")
        n, dtype = x.shape[0], _dtype_of(x)
        g = self.sde.diffusion(t, n, dtype)
        c = 0.5 if self.probability_flow else 1.0
        return self.sde.drift(x, _times(t, n, dtype)) - \
            c * expand_to(g * g, x) * self._score(x, t)

    def diffusion(self, t, n=None, dtype=None):
        """g(t) for the reverse SDE, 0 for the probability-flow ODE; (n,)."""
        g = self.sde.diffusion(t, n, dtype)
        return g * 0.0 if self.probability_flow else g

    def discretize(self, x, t, dt):
        _check_x(x, "ReverseSDE.discretize")
        f, G = self.sde.discretize(x, t, dt)
        c = 0.5 if self.probability_flow else 1.0
        rev_f = f - c * expand_to(G * G, x) * self._score(x, t)
        return -rev_f, (G * 0.0 if self.probability_flow else G)


SDES = {"ve": VESDE, "vp": VPSDE, "subvp": SubVPSDE}


def make_sde(name, **kwargs):
    """The SDE called ``name`` ('ve', 'vp' or 'subvp') with its constructor's ``kwargs``."""
    if name not in SDES:
        raise ValueError(f"unknown SDE {name!r}; known: {', '.join(SDES)}")
    return SDES[name](**kwargs)
