"""Family ``ncsn``: the noise-conditional score network (Song & Ermon 2019).

Noise levels: a geometric sequence sigma_1 > sigma_2 > ... > sigma_L (``sigma_max`` to
``sigma_min`` in ``num_scales`` levels; Song & Ermon 2019, Sec. 4.2: sigma_1 about the largest
distance between training examples, sigma_L below the data's finest scale).

Training: denoising score matching at every level (Song & Ermon 2019, eq. 5-6),

    L(theta) = E_i E_x E_eps [ sigma_i^2 || s_theta(x + sigma_i eps, sigma_i) + eps / sigma_i ||^2 ]
               / 2,

i uniform, lambda(sigma) = sigma^2 so every level weighs alike. With s_theta(x, sigma) =
-eps_theta(x, c(sigma)) / sigma (``networks``; Song & Ermon 2020, technique 3) the term is
|| eps_theta - eps ||^2 / 2; the logged loss is its mean per dimension (without the 1/2).
c(sigma) = 999 log(sigma_1 / sigma) / log(sigma_1 / sigma_L) places the levels on [0, 999].

Sampling: annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1;
``common.langevin.annealed_langevin_dynamics``), T = ``steps_each`` steps per level with step
alpha_i = eps sigma_i^2 / sigma_L^2, from x ~ N(0, sigma_1^2 I), and a final denoising step
x + sigma_L^2 s_theta(x, sigma_L) (Tweedie; Jolicoeur-Martineau et al. 2021) unless
``denoise`` is off. eps (``step_size``) defaults to Song & Ermon (2019)'s 2e-5 (Sec. 5, with
sigma_L = 0.01; scaled by (sigma_L / 0.01)^2 for another sigma_L); ``step_size="ncsnv2"``
takes Song & Ermon (2020)'s technique 4 instead: the eps for which, after T steps at one
level, the variance of a chain started at the previous level's scale comes closest to the
current level's (their eq. 4; ``ncsnv2_step_size``). That rule assumes the data's own spread
is negligible at every level; on 2-D data it is not, and with the analytic score of a
two-component mixture (30 levels from 10, T = 20) it gave eps = 9e-6 and a covariance 17%
too large, where 2e-5 gives one within the two-sample test's resolution (measured).

NCSN has no likelihood (``likelihood_kind = "none"``): the VE SDE (``sde`` family with
``sde=ve``) is its continuous limit and has the ODE likelihood.
"""
import math

import autodiff
from autodiff import backend as B

from ..base import check_sample_options
from ..common.langevin import annealed_langevin_dynamics
from .networks import ScoreModelBase, network_config, train_defaults

__all__ = ["NCSNModel", "geometric_sigmas", "ncsnv2_step_size", "default_config", "build",
           "train_defaults", "smoke_config", "SMOKE_DATA"]

kind = "score"
SMOKE_DATA = ["ring8:std=0.1", "digits"]


def geometric_sigmas(sigma_max, sigma_min, num_scales):
    """sigma_i = sigma_max (sigma_min / sigma_max)^((i - 1) / (L - 1)), i = 1..L (a list)."""
    if not (isinstance(num_scales, int) and num_scales >= 2):
        raise ValueError(f"ncsn: num_scales must be an int >= 2, got {num_scales!r}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"ncsn: need 0 < sigma_min < sigma_max, got sigma_min={sigma_min!r}, "
                         f"sigma_max={sigma_max!r}")
    r = math.log(sigma_min / sigma_max) / (num_scales - 1)
    return [sigma_max * math.exp(r * i) for i in range(num_scales)]


def ncsnv2_step_size(sigmas, steps_each):
    """eps of Song & Ermon (2020), technique 4 (their Prop. 3 / eq. 4): for Gaussian data, T
    Langevin steps at level i started from sigma_{i-1}'s variance end with variance ratio

        r(eps) = (1 - a)^(2T) (gamma^2 - 2 / (2 - a)) + 2 / (2 - a),   a = eps / sigma_L^2,

    gamma = sigma_{i-1} / sigma_i (the same at every level of a geometric sequence). r > 1 for
    every eps (2 / (2 - a) is the unadjusted chain's stationary inflation), so eps is the one
    that brings r closest to 1: the minimiser of r, found on a grid of 4000 values of log a in
    [1e-12, 0.999]. Returns (eps, r(eps))."""
    gamma, sl2, T = sigmas[0] / sigmas[1], sigmas[-1] ** 2, int(steps_each)

    def ratio(a):
        c = 2.0 / (2.0 - a)
        return (1.0 - a) ** (2 * T) * (gamma ** 2 - c) + c

    lo, hi, k = math.log(1e-12), math.log(0.999), 4000
    a = min((math.exp(lo + (hi - lo) * i / (k - 1)) for i in range(k)), key=ratio)
    return a * sl2, ratio(a)


class NCSNModel(ScoreModelBase):
    """s_theta(x, sigma) = -eps_theta(x, c(sigma)) / sigma at the levels ``sigmas``."""

    family = "ncsn"
    likelihood_kind = "none"
    sample_options = ("steps", "step_size", "denoise")

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.sigmas = geometric_sigmas(float(c["sigma_max"]), float(c["sigma_min"]),
                                       int(c["num_scales"]))

    def c_noise(self, sigma):
        """c(sigma) = 999 log(sigma_1 / sigma) / log(sigma_1 / sigma_L) (an (N,) Tensor)."""
        s1, sl = self.sigmas[0], self.sigmas[-1]
        return (math.log(s1) - sigma.log()) * (999.0 / math.log(s1 / sl))

    def score(self, x, sigma, y=None):
        """s_theta(x, sigma) (N, *event) in model space; sigma an (N,) Tensor."""
        eps = self.net(x, self.c_noise(sigma), y)
        return -eps / sigma.reshape((x.shape[0],) + (1,) * (x.ndim - 1))

    def training_step(self, batch, step, ctx):
        x, y = self._batch(batch)
        n = x.shape[0]
        idx = autodiff.randint(0, len(self.sigmas), (n,))
        sigma = autodiff.Tensor(B.xp.asarray(self.sigmas, dtype=x.dtype)[idx.data])
        eps = autodiff.randn(*x.shape, dtype=x.dtype)
        x_noisy = x + sigma.reshape((n,) + (1,) * (x.ndim - 1)) * eps
        r = self.net(x_noisy, self.c_noise(sigma), y) - eps   # = -(sigma s_theta + eps)
        loss = (r * r).mean()
        ctx.optimize("model", loss)
        return {"loss": float(loss.item())}

    def sample(self, n, generator=None, cond=None, **options):
        check_sample_options(self.family, options, self.sample_options)
        steps_each = int(options.get("steps") or self.config["steps_each"])
        step_size = options.get("step_size") or self.config["step_size"]
        if step_size == "ncsnv2":
            step_size = ncsnv2_step_size(self.sigmas, steps_each)[0]
        elif step_size is None:
            step_size = 2e-5 * (self.sigmas[-1] / 0.01) ** 2
        denoise = self.config["denoise"] if options.get("denoise") is None \
            else bool(options["denoise"])
        y = self._labels(cond, n) if (cond is not None or self.num_classes) else None
        x0 = autodiff.randn(n, *self.example_shape, generator=generator) * self.sigmas[0]
        with autodiff.no_grad():
            x = annealed_langevin_dynamics(lambda x, sigma: self.score(x, sigma, y), x0,
                                           self.sigmas, float(step_size), steps_each,
                                           generator=generator, denoise=denoise)
        self._last_steps = (steps_each, denoise)
        return self.from_model(x).detach()

    @property
    def nfe_per_sample(self):
        """L T network evaluations, + 1 for the denoising step."""
        steps_each, denoise = getattr(self, "_last_steps",
                                      (int(self.config["steps_each"]), self.config["denoise"]))
        return len(self.sigmas) * steps_each + int(bool(denoise))


def default_config(data_info):
    """Levels from sigma_max to 0.01: 16 (2-D toy data, after technique 1) or 2 sqrt(D)
    (images on [-1, 1]); 50 levels (2-D) or 20 (images); T = 20 (2-D) or 10 (images)."""
    info = dict(data_info or {})
    image = info.get("kind") == "image"
    sigma_max = 2.0 * math.sqrt(math.prod(info.get("shape", (1,)))) if image else 16.0
    return {"net": network_config(info), "sigma_max": sigma_max, "sigma_min": 0.01,
            "num_scales": 20 if image else 50, "steps_each": 10 if image else 20,
            "step_size": None, "denoise": True, "conditional": False}


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(net=network_config(data_info, small=True), num_scales=3, steps_each=2)
    return config


def build(config, data_info=None):
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    return NCSNModel(config)
