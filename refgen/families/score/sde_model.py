"""Family ``sde``: a score model s_theta(x, t) under a VE, VP or sub-VP SDE (Song et al. 2021b).

Training (``objective``):

* ``"dsm"`` (default): denoising score matching with lambda(t) = std(t)^2, t ~ U(t_eps, 1)
  (Song et al. 2021b, eq. 7; ``objectives.dsm_loss``); with s_theta = -eps_theta / std this is
  E || eps_theta(m x0 + std eps, t) - eps ||^2, reported per dimension;
* ``"ssm"``: sliced score matching on x(t) ~ p_t (Song et al. 2019, eq. 8, or its variance
  reduced form eq. 9 with ``ssm_variance_reduced``), the same weighting; second order in x.

Sampling (``sample(n, sampler=..., steps=...)``; ``samplers``): ``"pc"`` (predictor-corrector,
reverse-diffusion predictor + Langevin corrector at ``snr``; the default), ``"em"``
(Euler-Maruyama), ``"reverse_diffusion"``, ``"ode"`` (the PF-ODE by adaptive RK45 at
``rtol`` = ``atol`` = 1e-5) and ``"ode_rk4"`` (fixed-step RK4); then, with ``denoise`` (the
default), Tweedie's E[x0 | x(t_min)] (``samplers.tweedie_denoise``).

Likelihood (``likelihood_kind = "ode"``): log p_theta(x) by the probability-flow ODE and the
instantaneous change of variables (Song et al. 2021b, App. D.2, eq. 39-40; ``common.ode``),

    log p_0(x) = log p_T(x(T)) + int_{t_eps}^{T} div_x [f - g^2 s_theta / 2](x(t), t) dt,

integrated from t_eps = 1e-5 (the data) to T = 1 (the prior) by RK45 at rtol = atol = 1e-5,
with the exact divergence for D <= ``exact_divergence_max_dims`` (16) and Hutchinson's
Rademacher estimator otherwise (one draw per example, unbiased for the density, so a lower
bound of log p in expectation by Jensen only after exponentiation: the bits/dim it gives are
an unbiased estimate). It is the density of x(t_eps), not of x(0): for VE that is the data
blurred by N(0, sigma_min^2) (``common.sde``). Images: the density of the dequantized data
(``bpd_convention``), computed on [-1, 1] and moved back by D log(2 / (hi - lo)).
"""
import math

import autodiff
from autodiff import backend as B

from ..base import check_sample_options
from ..common import ode
from ..common.sde import SDE, expand_to, make_sde
from . import objectives, samplers
from .networks import ScoreModelBase, network_config, train_defaults

__all__ = ["ScoreSDEModel", "default_config", "build", "train_defaults", "smoke_config",
           "SMOKE_DATA", "pf_ode_log_likelihood"]

kind = "score"
SMOKE_DATA = ["ring8:std=0.1", "digits"]


def pf_ode_log_likelihood(sde, score_fn, x, t_eps=1e-5, divergence="exact", noise="rademacher",
                          generator=None, solver="rk45", steps=None, rtol=1e-5, atol=1e-5,
                          prior_log_prob=None):
    """log p_{t_eps}(x) (N,) through the probability-flow ODE of ``sde`` under ``score_fn``
    (Song et al. 2021b, eq. 39-40), and the number of score evaluations.

    :param prior_log_prob: log p_T; the SDE's prior when None (a test passes the exact p_T).
    """
    if not isinstance(sde, SDE):
        raise TypeError(f"pf_ode_log_likelihood: sde must be an SDE, got {type(sde).__name__}")
    rev = sde.reverse(score_fn, probability_flow=True)
    return ode.ode_log_likelihood(lambda x, t: rev.drift(x, t), x, t_eps, sde.T,
                                  prior_log_prob or sde.prior_log_prob, divergence=divergence,
                                  noise=noise, generator=generator, solver=solver, steps=steps,
                                  rtol=rtol, atol=atol)


class ScoreSDEModel(ScoreModelBase):
    """s_theta(x, t) = -eps_theta(x, c_noise(t)) / std(t) under ``config["sde"]``."""

    family = "sde"
    likelihood_kind = "ode"
    sample_options = ("sampler", "steps", "snr", "corrector_steps", "rtol", "atol", "denoise")

    def __init__(self, config):
        super().__init__(config)
        self.sde = make_sde(**self.config["sde"])
        self._last_nfe = None

    # ---- the score
    def c_noise(self, t, std):
        """The network's noise input on [0, 999]: ``time_input`` "t" (the default) is 999 t
        (score_sde's VP labels); "log_std" is log std(t) mapped linearly from
        [log std(t_eps), log std(T)] to [0, 999], NCSN's c(sigma), which spreads the small
        noise levels (999 t puts all of std < 0.1 of the VP SDE on [0, 27]). Measured on
        ring8 (VP, 2 minutes, PC sampler, 2500 samples): "t" 70.8% high quality and
        NLL -2.53 nats, "log_std" 63.4% and -2.38; hence the default."""
        if self.config.get("time_input", "t") == "t":
            return t * 999.0
        lo, hi = self._log_std_range
        return (std.log() - lo) * (999.0 / (hi - lo))

    @property
    def _log_std_range(self):
        _, s = self.sde.marginal_coefficients([float(self.config["t_eps"]), self.sde.T])
        s = B.to_numpy(s.data)  # host-side: two numbers
        return math.log(float(s[0])), math.log(float(s[1]))

    def score(self, x, t, y=None):
        """s_theta(x, t) = -eps_theta(x, c_noise(t)) / std(t), (N, *event) in model space;
        t a float or an (N,) Tensor."""
        n = x.shape[0]
        _, std = self.sde.marginal_coefficients(t, n, x.dtype)
        t_arr = autodiff.Tensor(B.xp.full((n,), t, dtype=x.dtype)) \
            if isinstance(t, (int, float)) else t
        eps = self.net(x, self.c_noise(t_arr, std), y)
        return -eps / expand_to(std, x)

    def score_fn(self, y=None):
        return lambda x, t: self.score(x, t, y)

    # ---- training
    def training_step(self, batch, step, ctx):
        x0, y = self._batch(batch)
        n = x0.shape[0]
        t_eps = float(self.config["t_eps"])
        t = autodiff.rand(n, dtype=x0.dtype) * (self.sde.T - t_eps) + t_eps
        eps = autodiff.randn(*x0.shape, dtype=x0.dtype)
        xt = self.sde.perturb(x0, t, eps)
        _, std = self.sde.marginal_coefficients(t, n, x0.dtype)
        if self.config["objective"] == "dsm":
            per_example = objectives.dsm_loss(self.score(xt, t, y), eps, std)
        else:
            v = objectives.projections(tuple(xt.shape), self.config["ssm_projection"],
                                       dtype=x0.dtype)
            sm = objectives.sliced_score_matching_loss(
                lambda z: self.score(z, t, y), xt, v,
                variance_reduced=bool(self.config["ssm_variance_reduced"]))
            per_example = sm * (std * std)
        loss = per_example.mean() / self.num_dims
        ctx.optimize("model", loss)
        return {"loss": float(loss.item())}

    # ---- sampling
    def sample(self, n, generator=None, cond=None, **options):
        check_sample_options(self.family, options, self.sample_options)
        sampler = options.get("sampler") or self.config["sampler"]
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"sde.sample: sampler must be one of "
                             f"{', '.join(samplers.SAMPLERS)}, got {sampler!r}")
        steps = int(options.get("steps") or self.config["steps"])
        y = self._labels(cond, n) if (cond is not None or self.num_classes) else None
        x = self.sde.prior_sample((n,) + self.example_shape, generator=generator)
        grid = samplers.time_grid(self.sde, steps)
        kwargs = {}
        if sampler == "pc":
            kwargs = {"snr": float(options.get("snr") or self.config["snr"]),
                      "corrector_steps": int(self.config["corrector_steps"]
                                             if options.get("corrector_steps") is None
                                             else options["corrector_steps"])}
        elif sampler == "ode":
            kwargs = {"rtol": float(options.get("rtol") or 1e-5),
                      "atol": float(options.get("atol") or 1e-5)}
        with autodiff.no_grad():
            x, nfe = samplers.SAMPLERS[sampler](self.sde, self.score_fn(y), x, grid,
                                                generator=generator, **kwargs)
            denoise = self.config.get("denoise", False) if options.get("denoise") is None \
                else bool(options["denoise"])
            if denoise:
                x = samplers.tweedie_denoise(self.sde, self.score_fn(y), x, grid[-1])
                nfe += 1
        self._last_nfe = int(nfe)
        return self.from_model(x).detach()

    @property
    def nfe_per_sample(self):
        """Score evaluations per sample: the last sample() call's, else the default sampler's
        (pc: steps (1 + corrector_steps); em: steps; ode_rk4: 4 steps; ode: adaptive, about
        80-100 on 2-D data, known after a call)."""
        if self._last_nfe is not None:
            return self._last_nfe
        steps, sampler = int(self.config["steps"]), self.config["sampler"]
        nfe = {"pc": steps * (1 + int(self.config["corrector_steps"])), "em": steps,
               "reverse_diffusion": steps, "ode_rk4": 4 * steps}.get(sampler, steps)
        return nfe + int(bool(self.config.get("denoise", False)))

    # ---- likelihood
    def log_prob(self, x, cond=None, generator=None):
        """log p_theta(x) (N,) nats by the PF-ODE (module docstring)."""
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        if tuple(x.shape[1:]) != self.example_shape:
            shape = ", ".join(map(str, self.example_shape))
            raise ValueError(f"sde.log_prob: x must be (N, {shape}), got {tuple(x.shape)}")
        y = self._labels(cond, x.shape[0]) if (cond is not None or self.num_classes) else None
        exact = self.num_dims <= int(self.config["exact_divergence_max_dims"])
        log_p, nfe = pf_ode_log_likelihood(
            self.sde, self.score_fn(y), self.to_model(x), t_eps=float(self.config["t_eps"]),
            divergence="exact" if exact else "hutchinson", generator=generator,
            rtol=float(self.config["ode_rtol"]), atol=float(self.config["ode_atol"]))
        return log_p + self.log_det_to_model()


    def evaluate(self, dataset, ctx=None, batch_size=250, max_examples=None):
        """NLL and bits/dim by the PF-ODE on the first ``eval_examples`` examples (1000 for
        points, 100 for images: each costs an adaptive ODE solve with a divergence)."""
        cap = int(self.config.get("eval_examples") or (100 if self.is_image else 1000))
        cap = cap if max_examples is None else min(cap, int(max_examples))
        out = super().evaluate(dataset, ctx, batch_size=batch_size, max_examples=cap)
        out["eval_examples"] = min(cap, len(dataset))
        return out


def _sde_defaults(name, data_info):
    info = dict(data_info or {})
    if name == "ve":
        if info.get("kind") == "image":
            # the largest distance between two images on [-1, 1]^D is at most 2 sqrt(D)
            sigma_max = 2.0 * math.sqrt(math.prod(info["shape"]))
        else:
            # Song & Ermon 2020, technique 1: about the largest pairwise distance (ring8: 4,
            # grid25: 11.3); 16 covers the toy densities, the prior also absorbing the mean
            sigma_max = 16.0
        return {"name": "ve", "sigma_min": 0.01, "sigma_max": sigma_max}
    if name in ("vp", "subvp"):
        return {"name": name, "beta_min": 0.1, "beta_max": 20.0}
    raise ValueError(f"sde: the option sde must be 've', 'vp' or 'subvp', got {name!r}")


def default_config(data_info, sde="vp"):
    """Config for the data: the SDE (VP by default), the network, the sampler."""
    return {"sde": _sde_defaults(sde, data_info), "net": network_config(data_info),
            "objective": "dsm", "ssm_projection": "rademacher", "ssm_variance_reduced": False,
            "t_eps": 1e-5, "time_input": "t", "sampler": "pc", "denoise": True, "steps": 500,
            "snr": 0.16, "corrector_steps": 1,
            "exact_divergence_max_dims": 16, "ode_rtol": 1e-5, "ode_atol": 1e-5,
            "conditional": False}


def smoke_config(data_info):
    config = default_config(data_info)
    # 25 steps: the VP reverse-diffusion step needs beta(t) dt < 1 (beta_max = 20)
    config.update(net=network_config(data_info, small=True), steps=25)
    if dict(data_info).get("kind") == "image":
        config["ode_rtol"] = config["ode_atol"] = 1e-2  # a few-step smoke solve
    return config


def build(config, data_info=None):
    """A ``ScoreSDEModel``; ``config["sde"]`` may be a name ('ve', 'vp', 'subvp') given with
    ``--set sde=ve``, expanded to that SDE's defaults here."""
    config = dict(config)
    if isinstance(config.get("sde"), str):
        config["sde"] = _sde_defaults(config["sde"], config.get("data_info") or data_info)
    if config.get("objective") not in ("dsm", "ssm"):
        raise ValueError(f"sde: objective must be 'dsm' or 'ssm', got {config.get('objective')!r}")
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    return ScoreSDEModel(config)
