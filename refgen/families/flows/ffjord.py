"""A continuous normalizing flow (FFJORD, Grathwohl et al. 2019) on the shared ODE solvers.

The flow is the solution map of dx/dt = v_theta(x(t), t) from the data at t = 0 to the base
N(0, I) at t = 1. By the instantaneous change of variables (Chen et al. 2018, Thm. 1;
``families.common.ode``)

    log p_theta(x) = log N(x(1); 0, I) + int_0^1 tr( dv_theta/dx (x(t), t) ) dt,   x(0) = x,

with the trace exact (one backward pass per dimension: 2-D data) or Hutchinson's unbiased
estimate (Grathwohl et al. 2019, Eq. 7: images). Sampling integrates backwards from
z ~ N(0, T^2 I) at t = 1 to t = 0.

Training maximises log p_theta on batches through a fixed-step RK4 solve (``train_steps``
steps; gradients by backpropagation through the solver's operations, "discretise then
optimise", instead of the adjoint method of Chen et al.); evaluation and sampling use the
adaptive Dormand-Prince solver at rtol = atol = 1e-5 (FFJORD's tolerances), or RK4 on request
(``--sampler rk4 --steps N``).

The velocity network: an MLP on [x, t] with smooth (tanh) activations, since the trace of its
Jacobian is integrated and differentiated.
"""
import math

import autodiff
from autodiff import backend as B

from ...backbones.mlp import MLP
from ..base import GenerativeModel, check_sample_options, with_data_info
from ..common.ode import SOLVERS, ode_log_likelihood, odeint
from .models import standard_normal_log_prob

__all__ = ["FFJORD", "ffjord"]


class FFJORD(GenerativeModel):
    """Continuous normalizing flow on vectors (D,) (module docstring for the equations).

    ``config``: ``hidden``, ``depth``, ``activation`` (the velocity MLP), ``divergence``
    ('exact' | 'hutchinson'), ``train_steps`` (RK4 steps per training solve), ``rtol``,
    ``atol`` (the adaptive solver of evaluation and sampling).
    """

    kind = "flow"
    likelihood_kind = "ode"
    discrete = False
    sample_options = ("sampler", "steps", "temperature")
    family = "ffjord"

    def __init__(self, config):
        super().__init__(config)
        shape = self.example_shape
        if len(shape) != 1:
            raise ValueError(f"ffjord: this continuous flow models vectors (D,); got examples of "
                             f"shape {shape} (image FFJORD is not built here)")
        if config.get("conditional"):
            raise ValueError("ffjord: no class-conditional variant; set conditional=false")
        self.divergence = config.get("divergence", "exact")
        if self.divergence not in ("exact", "hutchinson"):
            raise ValueError(f"ffjord: divergence must be 'exact' or 'hutchinson', got "
                             f"{self.divergence!r}")
        d = shape[0]
        self.net = MLP(d, d, hidden=int(config.get("hidden", 64)),
                       depth=int(config.get("depth", 3)),
                       activation=config.get("activation", "tanh"), cond_features=1)
        self.train_steps = int(config.get("train_steps", 8))
        self.rtol = float(config.get("rtol", 1e-5))
        self.atol = float(config.get("atol", 1e-5))
        self._last_nfe = None

    # ---- the ODE
    def velocity(self, x, t):
        """v_theta(x, t): x (N, D), t a float -> (N, D)."""
        tt = autodiff.full((x.shape[0], 1), float(t), dtype=x.dtype)
        return self.net(x, tt)

    def _solver_args(self, sampler, steps):
        sampler = sampler or "rk45"
        if sampler not in SOLVERS:
            raise ValueError(f"ffjord: sampler must be one of {', '.join(SOLVERS)}, got "
                             f"{sampler!r}")
        if sampler == "rk4":
            steps = int(steps or self.train_steps)
            if steps < 1:
                raise ValueError(f"ffjord: steps must be positive, got {steps}")
            return {"solver": "rk4", "steps": steps}
        return {"solver": "rk45", "rtol": self.rtol, "atol": self.atol}

    def _dtype(self):
        return self.net.out.weight.dtype

    def _as_input(self, x):
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        if x.dtype != self._dtype():
            x = autodiff.Tensor(x.data.astype(self._dtype()))
        if tuple(x.shape[1:]) != self.example_shape:
            raise ValueError(f"ffjord: x must have shape (N, {self.example_shape[0]}), got "
                             f"{tuple(x.shape)}")
        return x

    # ---- Trainable
    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    def training_step(self, batch, step, ctx):
        x, _ = batch
        x = self._as_input(x)
        log_p, _ = ode_log_likelihood(self.velocity, x, 0.0, 1.0, standard_normal_log_prob,
                                      divergence=self.divergence, generator=ctx.generator,
                                      solver="rk4", steps=self.train_steps, create_graph=True)
        nll = -log_p.mean()
        d = self.num_dims
        ctx.optimize("model", nll / d)
        return {"loss": float(nll.item()) / d, "nll": float(nll.item())}

    # ---- GenerativeModel
    def log_prob(self, x, cond=None, sampler=None, steps=None, generator=None):
        """log p_theta(x) (N,) by the adaptive solver (or RK4 with ``sampler="rk4"``)."""
        if cond is not None:
            raise ValueError("ffjord: unconditional model; cond must be None")
        x = self._as_input(x)
        log_p, nfe = ode_log_likelihood(self.velocity, x, 0.0, 1.0, standard_normal_log_prob,
                                        divergence=self.divergence, generator=generator,
                                        **self._solver_args(sampler, steps))
        return log_p

    def sample(self, n, generator=None, cond=None, sampler=None, steps=None, temperature=None,
               **options):
        """x(0) from z ~ N(0, T^2 I) at t = 1, integrating dx/dt = v_theta backwards."""
        check_sample_options("ffjord", options, self.sample_options)
        if cond is not None:
            raise ValueError("ffjord: unconditional model; cond must be None")
        t = 1.0 if temperature is None else float(temperature)
        if not t > 0:
            raise ValueError(f"ffjord: temperature must be positive, got {temperature!r}")
        z = autodiff.randn(n, *self.example_shape, generator=generator, dtype=self._dtype()) * t
        args = self._solver_args(sampler, steps)
        with autodiff.no_grad():
            x, info = odeint(lambda tt, x: self.velocity(x, tt), z, 1.0, 0.0,
                             method=args["solver"], steps=args.get("steps"),
                             rtol=self.rtol, atol=self.atol)
        self._last_nfe = int(info["nfe"])
        return x

    @property
    def nfe_per_sample(self):
        """Velocity evaluations of the last ``sample`` call (adaptive: it varies), else the
        RK4 count of the training solver."""
        return self._last_nfe or 4 * self.train_steps


class _FFJORDFamily:
    """Registry entry ``ffjord``."""

    kind = "flow"
    SMOKE_DATA = ["ring8:std=0.1"]
    __name__ = "refgen.families.flows.ffjord"

    def default_config(self, data_info):
        return {"hidden": 64, "depth": 3, "activation": "tanh", "divergence": "exact",
                "train_steps": 8, "rtol": 1e-5, "atol": 1e-5, "conditional": False}

    def train_defaults(self, data_info):
        return {"steps": 5000, "batch_size": 256, "lr": 1e-3, "grad_clip": 100.0,
                "log_every": 50, "eval_every": 1000, "checkpoint_every": 500}

    def smoke_config(self, data_info):
        cfg = self.default_config(data_info)
        cfg.update(hidden=8, depth=1, train_steps=2, rtol=1e-3, atol=1e-3)
        return cfg

    def build(self, config, data_info=None):
        config = with_data_info(config, data_info)
        return FFJORD(config)


ffjord = _FFJORDFamily()
