"""DDPM: the denoising diffusion probabilistic model (Ho et al. 2020), with improved DDPM's
cosine schedule and learned variances (Nichol & Dhariwal 2021), the v-parameterisation
(Salimans & Ho 2022) and classifier-free guidance (Ho & Salimans 2022).

The model is a reverse chain p_theta(x_{0:T}) = p(x_T) prod_t p_theta(x_{t-1} | x_t) with
p(x_T) = N(0, I) and Gaussian steps

    p_theta(x_{t-1} | x_t) = N(mu_tilde_t(x_t, x0_hat(x_t, t)), sigma_t^2 I)

whose mean is the forward posterior's (``schedules``, Eq. 7) evaluated at the network's
estimate x0_hat of x_0. The network f_theta(x_t, t[, c]) predicts eps, x_0 or v (the
``prediction`` option); each determines x0_hat and eps_hat (``schedules.x0_eps_from_prediction``).

Training (Ho et al. 2020, Algorithm 1): t ~ U{1..T}, eps ~ N(0, I),
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, and the "simple" loss

    L_simple = E || target - f_theta(x_t, t) ||^2,   target = eps, x_0 or v        (Eq. 14)

(a mean over dimensions). With ``loss="hybrid"`` the network also outputs v_var in [-1, 1]
per dimension and the variance is learned (Nichol & Dhariwal 2021, Eq. 15, 16):

    log sigma_t^2 = frac log beta_t + (1 - frac) log beta_tilde_t,   frac = (v_var + 1) / 2
    L_hybrid = L_simple + lambda L_vlb,  lambda = 0.001, L_vlb = T E_t[L_t] with the mean
    held fixed (stop-gradient) in L_vlb, so the variance alone learns from the bound.

The variational bound (Ho et al. 2020, Eq. 5, Sec. 3.3), in nats per example:

    -log p_theta(x_0) <= L_T + sum_{t=2}^{T} L_{t-1} + L_0
    L_T     = KL(q(x_T | x_0) || N(0, I))                          the prior term
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))   x_t ~ q(x_t | x_0)
    L_0     = -log p_theta(x_0 | x_1)                               the decoder

For image data with L grey levels the data are scaled to [-1, 1] and the decoder is the
discretized Gaussian of Eq. 13 over the L bins (``refgen.distributions.DiscretizedGaussian``,
the edge bins extending to +-inf), so the bound is on the probability MASS of the stored
values (``discrete = True``; bits/dim need no dequantization). For 2-D points the decoder is
the Gaussian density N(x_0; mu_theta(x_1, 1), sigma_1^2) and the bound is on a density.

Classifier-free guidance: during training the label is replaced by the null label with
probability ``p_uncond`` (Ho & Salimans 2022, Algorithm 1), so one network gives both
eps(x, c) and eps(x, null); sampling with weight w uses (Eq. 6)

    eps_guided = (1 + w) eps(x, c) - w eps(x, null).

Samplers (``samplers``): ancestral with sigma^2 = beta, beta_tilde or learned; DDIM with eta
on respaced timesteps; Euler, Heun and DPM-Solver++(2M) on the denoiser
D(x~; sigma) = x~ - sigma eps_hat in the sigma view of Karras et al. 2022.
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff import nn

from ...backbones.embeddings import timestep_embedding
from ...backbones.mlp import MLP
from ...backbones.unet import UNet
from ...conditioning import ClassEmbedding, classifier_free_guidance, drop_labels
from ...distributions import DiscretizedGaussian, Normal, kl_divergence
from ..base import GenerativeModel, check_sample_options
from . import samplers as S
from .schedules import (BETA_SCHEDULES, PREDICTIONS, NoiseSchedule, prediction_target,
                        space_timesteps, x0_eps_from_prediction)

__all__ = ["DDPM", "PointDenoiser", "SAMPLERS", "parse_sampler", "LOSSES"]

LOSSES = ("simple", "hybrid")
SAMPLERS = ("ancestral", "ddim") + tuple(S.K_SAMPLERS)
# default number of steps when ``steps`` is not given (None: the full chain, T)
_DEFAULT_STEPS = {"ancestral": None, "ddim": 100, "euler": 100, "heun": 50, "dpmpp_2m": 50}
_SAMPLER_SETTINGS = {"ancestral": {"variance": str}, "ddim": {"eta": float}}
_LOG2 = math.log(2.0)


def parse_sampler(text):
    """``"name"`` or ``"name:key=value,..."`` (e.g. ``"ddim:eta=1"``,
    ``"ancestral:variance=beta"``) -> (name, settings dict). Names: ``SAMPLERS``."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"sampler must be a non-empty string, got {text!r}")
    name, _, rest = text.partition(":")
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)} (settings "
                         "after a colon: ddim:eta=0.5, ancestral:variance=beta)")
    settings = {}
    allowed = _SAMPLER_SETTINGS.get(name, {})
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in allowed:
            raise ValueError(f"sampler {text!r}: bad setting {part!r}; {name} takes "
                             f"{', '.join(k + '=...' for k in allowed) or 'no settings'}")
        try:
            settings[key] = allowed[key](value)
        except ValueError:
            raise ValueError(f"sampler {text!r}: {key} must be a {allowed[key].__name__}, got "
                             f"{value!r}") from None
    return name, settings


class PointDenoiser(nn.Module):
    """f_theta(x_t, t[, c]) for vector data (2-D points): an MLP whose input is x_t
    concatenated with a time embedding (and a class embedding added to it).

        emb = Linear(SiLU(Linear(sinusoidal(t))))  [+ ClassEmbedding(y)]     (emb_dim,)
        f   = MLP([x_t, emb])                                                  (out_features,)

    Shapes: x (N, D), t (N,) float or int timesteps, y (N,) int64 or None (the null label
    when the model is conditional) -> (N, out_features).
    """

    def __init__(self, in_features, out_features, hidden=128, depth=3, emb_dim=128,
                 num_classes=None, activation="silu"):
        super().__init__()
        self.emb_dim = int(emb_dim)
        self.time_embed = nn.Sequential(nn.Linear(self.emb_dim, self.emb_dim), nn.SiLU(),
                                        nn.Linear(self.emb_dim, self.emb_dim))
        self.num_classes = num_classes
        if num_classes:
            self.label_emb = ClassEmbedding(num_classes, self.emb_dim)
        self.mlp = MLP(in_features, out_features, hidden=hidden, depth=depth,
                       cond_features=self.emb_dim, activation=activation)

    def forward(self, x, t, y=None):
        if not isinstance(t, autodiff.Tensor):
            t = autodiff.Tensor(B.xp.asarray(t))
        emb = self.time_embed(timestep_embedding(t, self.emb_dim, dtype=x.dtype))
        if self.num_classes:
            emb = emb + self.label_emb(y if y is not None
                                       else self.label_emb.null_labels(x.shape[0]))
        elif y is not None:
            raise ValueError("PointDenoiser: got labels y, but it was built without classes")
        return self.mlp(x, emb)


class DDPM(GenerativeModel):
    """The ``ddpm`` family (see the module docstring).

    Config keys: ``timesteps`` T, ``beta_schedule`` ("linear" 1e-4..0.02 or "cosine"
    s = 0.008), ``prediction`` ("eps", "x0", "v"), ``loss`` ("simple", "hybrid"),
    ``variance`` of the reverse steps ("beta", "beta_tilde"; "learned" with the hybrid loss),
    ``vlb_weight`` (lambda, 0.001), ``conditional`` and ``p_uncond`` (CFG label dropout),
    ``num_classes``, ``backbone`` ("mlp" with ``hidden``, ``depth``, ``emb_dim``; "unet"
    with ``model_channels``, ``channel_mult``, ``num_res_blocks``, ``attention_resolutions``,
    ``num_groups``, ``dropout``), ``clip_denoised`` (clip x0_hat to [-1, 1] while sampling,
    for images), ``sampler``/``sample_steps`` (the defaults of ``sample``), ``eval_examples`` (how
    many examples ``evaluate`` computes the bound on), ``bound_timesteps`` (None: all T
    terms of the bound; K: an unbiased estimate from K of them, see ``vlb_terms``), and
    ``data_info``.
    """

    family = "ddpm"
    kind = "diffusion"
    likelihood_kind = "bound"
    sample_options = ("sampler", "steps", "guidance", "eta", "variance")

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        if not self.example_shape:
            raise ValueError("ddpm: config['data_info'] must give the example shape")
        for key, allowed in (("beta_schedule", BETA_SCHEDULES), ("prediction", PREDICTIONS),
                             ("loss", LOSSES)):
            if c[key] not in allowed:
                raise ValueError(f"ddpm: {key} must be one of {', '.join(allowed)}, got "
                                 f"{c[key]!r}")
        self.learned_variance = c["loss"] == "hybrid"
        variance = c.get("variance", "beta_tilde")
        if self.learned_variance:
            variance = "learned"
        elif variance not in ("beta", "beta_tilde"):
            raise ValueError(f"ddpm: variance must be 'beta' or 'beta_tilde' with the simple "
                             f"loss ('learned' comes with loss='hybrid'), got {variance!r}")
        self.variance = variance
        self.schedule = NoiseSchedule.from_name(c["beta_schedule"], int(c["timesteps"]))
        self.conditional = bool(c.get("conditional"))
        self.num_classes = int(c["num_classes"]) if self.conditional else None
        if self.conditional and not self.num_classes:
            raise ValueError("ddpm: conditional=True needs num_classes (labelled data)")
        if not 0.0 <= float(c.get("p_uncond", 0.0)) <= 1.0:
            raise ValueError(f"ddpm: p_uncond must be in [0, 1], got {c.get('p_uncond')}")
        self.is_image = self.data_info.get("kind") == "image"
        # the discretized decoder needs the grey levels; points have a continuous decoder
        self.discrete = bool(self.is_image and self.levels)
        self.net = self._build_net()
        self._sampling = None   # (name, settings, steps, guided) of the last sample() call

    def _build_net(self):
        c = self.config
        shape = self.example_shape
        out_mult = 2 if self.learned_variance else 1
        if c["backbone"] == "mlp":
            if len(shape) != 1:
                raise ValueError(f"ddpm: backbone 'mlp' needs vector data (D,), got examples "
                                 f"of shape {shape}")
            return PointDenoiser(shape[0], out_mult * shape[0], hidden=c["hidden"],
                                 depth=c["depth"], emb_dim=c["emb_dim"],
                                 num_classes=self.num_classes)
        if c["backbone"] == "unet":
            if len(shape) != 3:
                raise ValueError(f"ddpm: backbone 'unet' needs images (C, H, W), got examples "
                                 f"of shape {shape}")
            return UNet(in_channels=shape[0], out_channels=out_mult * shape[0],
                        model_channels=c["model_channels"], channel_mult=c["channel_mult"],
                        num_res_blocks=c["num_res_blocks"],
                        attention_resolutions=c.get("attention_resolutions", ()),
                        image_size=shape[1] if c.get("attention_resolutions") else None,
                        num_groups=c["num_groups"], dropout=c.get("dropout", 0.0),
                        num_classes=self.num_classes, cfg=self.conditional)
        raise ValueError(f"ddpm: backbone must be 'mlp' or 'unet', got {c['backbone']!r}")

    # ------------------------------------------------------------------ Trainable
    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    @property
    def _dtype(self):
        return next(iter(self.net.parameters())).dtype

    # ------------------------------------------------------------------ data <-> model space
    def to_model_space(self, x):
        """Images: [lo, hi] -> [-1, 1] (the decoder's bins and the clipping live there);
        points: unchanged. Also casts to the network's dtype."""
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        if tuple(x.shape[1:]) != self.example_shape:
            raise ValueError(f"ddpm: x must be (N, {', '.join(map(str, self.example_shape))}), "
                             f"got shape {tuple(x.shape)}")
        x = x.to(self._dtype) if x.dtype != self._dtype else x
        if not self.is_image:
            return x
        lo, hi = self.value_range
        return (x - lo) * (2.0 / (hi - lo)) - 1.0

    def to_data_space(self, x):
        if not self.is_image:
            return x
        lo, hi = self.value_range
        return (autodiff.clamp(x, -1.0, 1.0) + 1.0) * ((hi - lo) / 2.0) + lo

    def _labels(self, cond, n):
        """cond (N,) int labels or None -> labels for the network (None: unconditional)."""
        if cond is None:
            return None
        if not self.conditional:
            raise ValueError("ddpm: got a condition, but this model is unconditional (train "
                             "it with --set conditional=true on labelled data)")
        y = cond if isinstance(cond, autodiff.Tensor) else autodiff.Tensor(B.xp.asarray(cond))
        n = y.shape[0] if n is None and y.ndim == 1 else n
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise ValueError(f"ddpm: cond must be ({n},) integer class labels, got shape "
                             f"{tuple(y.shape)} and dtype {y.dtype}")
        if n and (int(y.data.min()) < 0 or int(y.data.max()) >= self.num_classes):
            raise ValueError(f"ddpm: class labels must lie in [0, {self.num_classes - 1}], "
                             f"got values in [{int(y.data.min())}, {int(y.data.max())}]")
        return y

    # ------------------------------------------------------------------ the network
    def _net(self, xt, t_net, y):
        """Network output (N, ...) split into (prediction, variance output or None)."""
        t = autodiff.Tensor(B.xp.asarray(t_net, dtype=xt.dtype))
        out = self.net(xt, t, y)
        if self.learned_variance:
            return out.chunk(2, dim=1)
        return out, None

    def predict(self, xt, t_net, a, s, y=None, guidance=0.0, clip=False):
        """(x0_hat, eps_hat, v_var or None) at x_t = a x_0 + s eps, network time ``t_net``
        ((N,) floats), with classifier-free guidance on eps (Ho & Salimans 2022, Eq. 6)
        and, with ``clip``, x0_hat clipped to [-1, 1] and eps_hat recomputed from it (as
        improved DDPM's sampler does).

        Guidance needs labels y; with w != 0 the network runs on the labels and on the null
        label (one batch of 2N), the variance output is the conditional one.
        """
        n = xt.shape[0]
        if guidance and y is None:
            raise ValueError(f"ddpm: guidance w = {guidance} needs a class label (cond); "
                             "without one the model samples unconditionally")
        if guidance:
            null = autodiff.full((n,), self.num_classes, dtype=autodiff.int64)
            both, var_both = self._net(autodiff.cat([xt, xt]), B.xp.concatenate([t_net, t_net]),
                                       autodiff.cat([y, null]))
            cond_out, null_out = both[:n], both[n:]
            _, eps_c = x0_eps_from_prediction(self.config["prediction"], cond_out, xt, a, s)
            _, eps_u = x0_eps_from_prediction(self.config["prediction"], null_out, xt, a, s)
            eps = classifier_free_guidance(eps_c, eps_u, guidance)
            x0 = (xt - s * eps) / a
            var_out = None if var_both is None else var_both[:n]
        else:
            out, var_out = self._net(xt, t_net, y)
            x0, eps = x0_eps_from_prediction(self.config["prediction"], out, xt, a, s)
        if clip:
            x0 = autodiff.clamp(x0, -1.0, 1.0)
            eps = (xt - a * x0) / s
        return x0, eps, var_out

    def _log_variance(self, schedule, i, var_out, like):
        """log sigma_t^2 of p_theta(x_{t-1} | x_t) at schedule index i ((N,) array or int):
        fixed (beta or beta_tilde) or learned (Nichol & Dhariwal 2021, Eq. 15)."""
        xp = B.xp
        idx = xp.full((like.shape[0],), int(i), dtype=B.numpy.int64) if isinstance(i, int) \
            else i
        log_tilde = schedule.extract(schedule.posterior_log_variance_clipped, idx, like)
        # log beta with index 0 replaced by beta_tilde_1, as improved DDPM's code (beta_0
        # would make the decoder's variance the smallest, a poor choice for sigma^2 = beta)
        log_beta_arr = xp.log(xp.concatenate([schedule.posterior_variance[1:2],
                                              schedule.betas[1:]])) \
            if schedule.num_timesteps > 1 else xp.log(schedule.betas)
        log_beta = schedule.extract(log_beta_arr, idx, like)
        if self.variance == "learned":
            frac = (var_out + 1.0) * 0.5
            return frac * log_beta + (1.0 - frac) * log_tilde
        return (log_beta if self.variance == "beta" else log_tilde) * autodiff.ones_like(like)

    # ------------------------------------------------------------------ training
    def training_step(self, batch, step, ctx):
        x, y = batch
        x0 = self.to_model_space(x)
        n = x0.shape[0]
        gen = ctx.generator
        labels = None
        if self.conditional:
            if y is None:
                raise ValueError("ddpm: conditional=True but the data set has no labels")
            labels = drop_labels(self._labels(y, n), float(self.config["p_uncond"]),
                                 self.num_classes, generator=gen)
        t = gen.integers(0, self.schedule.num_timesteps, (n,))            # t ~ U{1..T}
        eps = autodiff.randn(*x0.shape, generator=gen, dtype=x0.dtype)
        xt = self.schedule.q_sample(x0, t, eps)
        a, s = self.schedule.coefficients(t, x0)
        out, var_out = self._net(xt, self.schedule.timesteps[t].astype(B.numpy.float64),
                                 labels)
        target = prediction_target(self.config["prediction"], x0, eps, a, s)
        mse = F.mse_loss(out, target)                                     # Eq. 14
        metrics = {"mse": float(mse.item())}
        loss = mse
        if self.learned_variance:
            # L_vlb with the mean's gradient stopped (Nichol & Dhariwal 2021, Sec. 3.1)
            x0_hat, _ = x0_eps_from_prediction(self.config["prediction"], out.detach(), xt,
                                               a, s)
            vb = self._vlb_term(x0, xt, t, x0_hat, var_out)              # (N,) nats
            vb_bits_per_dim = vb / (self.num_dims * _LOG2)
            loss = mse + float(self.config["vlb_weight"]) * self.schedule.num_timesteps * \
                vb_bits_per_dim.mean()
            metrics["vb_bpd"] = float(vb_bits_per_dim.mean().item())
        ctx.optimize("model", loss)
        metrics["loss"] = float(loss.item())
        return metrics

    # ------------------------------------------------------------------ the bound
    def _sum_dims(self, v):
        return v.reshape(v.shape[0], -1).sum(dim=1)

    def _vlb_term(self, x0, xt, t, x0_hat, var_out):
        """L_{t-1} per example (N,) in nats at indices t (N,): the KL
        KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) where t > 0, and the decoder's
        -log p_theta(x_0 | x_1) where t = 0 (Ho et al. 2020, Eq. 5 and 13)."""
        sched = self.schedule
        mean_q, _, log_var_q = sched.q_posterior(x0, xt, t)
        mean_p, _, _ = sched.q_posterior(x0_hat, xt, t)
        log_var_p = self._log_variance(sched, t, var_out, xt)
        kl = self._sum_dims(kl_divergence(Normal(mean_q, autodiff.exp(0.5 * log_var_q)),
                                          Normal(mean_p, autodiff.exp(0.5 * log_var_p))))
        nll = -self._sum_dims(self._decoder_log_prob(x0, mean_p, log_var_p))
        first = autodiff.Tensor(B.xp.asarray(t) == 0)
        return autodiff.where(first, nll, kl)

    def _decoder_log_prob(self, x0, mean, log_var):
        """log p_theta(x_0 | x_1) per dimension: the discretized Gaussian over the L bins of
        [-1, 1] for image data (Ho et al. 2020, Eq. 13), the Gaussian density otherwise."""
        scale = autodiff.exp(0.5 * log_var)
        if self.discrete:
            return DiscretizedGaussian(mean, scale, num_bins=self.levels, low=-1.0,
                                       high=1.0).log_prob(x0)
        return Normal(mean, scale).log_prob(x0)

    def prior_kl(self, x0):
        """L_T = KL(q(x_T | x_0) || N(0, I)) per example (N,), nats (model space x0)."""
        T = self.schedule.num_timesteps
        mean, var = self.schedule.q_mean_variance(x0, B.xp.full((x0.shape[0],), T - 1))
        zero = autodiff.zeros_like(mean)
        return self._sum_dims(kl_divergence(Normal(mean, autodiff.sqrt(var) * autodiff.ones_like(mean)),
                                            Normal(zero, autodiff.ones_like(mean))))

    def vlb_terms(self, x, cond=None, generator=None, num_terms=None):
        """The bound's terms per example, in nats: ``{"prior": (N,), "terms": (N, K + 1),
        "timesteps": (K + 1,)}``, terms[:, 0] = L_0 (the decoder) and the others L_t at the
        listed indices t, each at a fresh x_t ~ q(x_t | x_0) (one Monte Carlo draw: an
        unbiased estimate of the bound). x (N, *example_shape) in the data's space.

        ``num_terms`` K (default: the config's ``bound_timesteps``, None = all T - 1): with
        K < T - 1 the KL terms are a stratified sample, one t drawn uniformly from each of
        at most K runs of t = 1..T-1 (edges round(T^(j/K)), so single steps at small t and
        long runs at large t) and weighted by the run's length, so the sum is still an
        unbiased estimate of the bound at <= K + 1 instead of T network evaluations per
        example (more variance, same expectation)."""
        x0 = self.to_model_space(x)
        n = x0.shape[0]
        y = self._labels(cond, n)
        if y is None and self.conditional:
            y = autodiff.full((n,), self.num_classes, dtype=autodiff.int64)   # the null label
        sched, xp = self.schedule, B.xp
        T = sched.num_timesteps
        k = num_terms if num_terms is not None else self.config.get("bound_timesteps")
        if k is None or int(k) >= T - 1:
            steps, weights = list(range(T)), [1.0] * T
        else:
            if not int(k) >= 1:
                raise ValueError(f"ddpm: num_terms / bound_timesteps must be >= 1, got {k!r}")
            # stratified: t = 1..T-1 cut into K runs of geometrically growing length, one t
            # drawn uniformly in each and weighted by its run's length. L_t is largest and
            # changes fastest at small t, where the runs are single steps (exact); the long
            # runs lie where L_t is small and smooth: far less variance than equal runs.
            gen = generator if generator is not None else B.default_generator()
            grid = [round(T ** (j / int(k))) for j in range(int(k) + 1)]       # 1 .. T
            edges = sorted(set(grid))
            steps, weights = [0], [1.0]
            for lo, hi in zip(edges[:-1], edges[1:]):
                steps.append(int(gen.integers(lo, hi, ())))
                weights.append(float(hi - lo))
        terms = []
        with autodiff.no_grad():
            for i, weight in zip(steps, weights):
                t = xp.full((n,), i, dtype=B.numpy.int64)
                eps = autodiff.randn(*x0.shape, generator=generator, dtype=x0.dtype)
                xt = sched.q_sample(x0, t, eps)
                a, s = sched.coefficients(t, x0)
                x0_hat, _, var_out = self.predict(xt, sched.timesteps[t].astype(B.numpy.float64),
                                                  a, s, y, clip=self.is_image)
                term = self._vlb_term(x0, xt, t, x0_hat, var_out)
                terms.append(term if weight == 1.0 else term * weight)
            prior = self.prior_kl(x0)
        return {"prior": prior, "terms": autodiff.stack(terms, dim=1),
                "timesteps": xp.asarray(steps, dtype=B.numpy.int64)}

    def log_prob(self, x, cond=None, generator=None):
        """The variational lower bound on log p_theta(x) per example (N,), nats:
        -(L_T + sum_t L_{t-1} + L_0) (Ho et al. 2020, Eq. 5), one Monte Carlo draw of each
        x_t (see ``vlb_terms`` for ``bound_timesteps``). For image data a bound on the
        probability mass of the stored values (``discrete``), for points on a density."""
        parts = self.vlb_terms(x, cond=cond, generator=generator)
        return -(parts["prior"] + parts["terms"].sum(dim=1))

    def evaluate(self, dataset, ctx=None, batch_size=500):
        """The unconditional bound on the first ``eval_examples`` examples of ``dataset``:
        ``neg_elbo`` (nats per example) and ``bpd`` (``bpd_convention``), and the simple
        loss there."""
        gen = ctx.generator if ctx is not None and getattr(ctx, "generator", None) \
            else autodiff.Generator(0)
        n = min(len(dataset), int(self.config.get("eval_examples", 500)))
        d = self.num_dims
        total = 0.0
        for start in range(0, n, batch_size):
            x = dataset.x[start:min(n, start + batch_size)]
            total += float(B.xp.asarray(self.log_prob(x, generator=gen).data).sum())
        neg_elbo = -total / n
        T = self.schedule.num_timesteps
        k = self.config.get("bound_timesteps")
        return {"neg_elbo": neg_elbo, "bpd": neg_elbo / (d * _LOG2), "bound_examples": n,
                "bound_terms": min(T - 1, int(k)) if k is not None else T - 1}

    # ------------------------------------------------------------------ sampling
    def _resolve(self, sampler, steps, eta, variance):
        name, settings = parse_sampler(sampler or self.config.get("sampler", "ancestral"))
        if eta is not None:
            if name != "ddim":
                raise ValueError(f"ddpm.sample: eta applies to the ddim sampler, not {name!r}")
            settings["eta"] = float(eta)
        if variance is not None:
            if name != "ancestral":
                raise ValueError(f"ddpm.sample: variance applies to the ancestral sampler, "
                                 f"not {name!r}")
            settings["variance"] = variance
        if name == "ancestral":
            settings.setdefault("variance", self.variance)
        T = self.schedule.num_timesteps
        if steps is None:
            steps = self.config.get("sample_steps") or _DEFAULT_STEPS[name] or T
            if name not in S.K_SAMPLERS:
                steps = min(steps, T)
        # the chain samplers visit a subset of the T timesteps; the sigma-view solvers take
        # any number of noise levels between sigma_min and sigma_max
        high = T if name not in S.K_SAMPLERS else None
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1 or \
                (high is not None and steps > high):
            raise ValueError(f"ddpm.sample: steps for {name} must be an int in "
                             f"[1, {high if high else 'inf'}], got {steps!r}")
        return name, settings, steps

    def sample(self, n, generator=None, cond=None, sampler=None, steps=None, guidance=None,
               eta=None, variance=None, **options):
        """n samples (n, *example_shape) in the data's value range.

        :param sampler: "ancestral" (``:variance=beta|beta_tilde|learned``), "ddim"
            (``:eta=...``, default 0), "euler", "heun" or "dpmpp_2m" (default: the config's,
            "ancestral").
        :param steps: number of steps (respaced timesteps; noise levels for the Karras
            samplers); default T for ancestral, 100 for ddim and euler, 50 for heun and
            dpmpp_2m.
        :param guidance: classifier-free guidance weight w (needs ``cond``).
        :param cond: (n,) class labels; None samples unconditionally (the null label).
        """
        check_sample_options("ddpm", options, self.sample_options)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"ddpm.sample: n must be a positive int, got {n!r}")
        name, settings, steps = self._resolve(sampler, steps, eta, variance)
        w = float(guidance or 0.0)
        y = self._labels(cond, n)
        if y is None and self.conditional:
            y = autodiff.full((n,), self.num_classes, dtype=autodiff.int64)
            if w:
                raise ValueError(f"ddpm.sample: guidance w = {w} needs cond (class labels)")
        self._sampling = (name, steps, bool(w))
        clip = self.is_image and self.config.get("clip_denoised", True)
        dtype = self._dtype
        with autodiff.no_grad():
            if name in S.K_SAMPLERS:
                x = self._sample_karras(name, n, steps, y, w, clip, generator, dtype)
            else:
                x = self._sample_chain(name, settings, n, steps, y, w, clip, generator, dtype)
        return self.to_data_space(x)

    def chain_model(self, schedule, y=None, guidance=0.0, clip=False):
        """The reverse chain's ``model(x, i) -> (x0_hat, eps_hat, log_variance or None)`` at
        index i of ``schedule`` (the full or a respaced one; the network sees the original
        timesteps), as ``samplers.sample_ancestral`` and ``sample_ddim`` call it."""
        def model(x, i):
            n = x.shape[0]
            idx = B.xp.full((n,), i, dtype=B.numpy.int64)
            a, s = schedule.coefficients(idx, x)
            t_net = schedule.timesteps[idx].astype(B.numpy.float64)
            x0, eps, var_out = self.predict(x, t_net, a, s, y, guidance, clip)
            log_var = self._log_variance(schedule, i, var_out, x) if var_out is not None \
                else None
            return x0, eps, log_var
        return model

    def _sample_chain(self, name, settings, n, steps, y, w, clip, generator, dtype):
        sched = self.schedule
        if steps != sched.num_timesteps:
            sched = sched.respace(space_timesteps(sched.num_timesteps, steps))
        model = self.chain_model(sched, y, w, clip)
        x = autodiff.randn(n, *self.example_shape, generator=generator, dtype=dtype)
        if name == "ddim":
            return S.sample_ddim(model, x, sched, generator, eta=settings.get("eta", 0.0))
        return S.sample_ancestral(model, x, sched, generator, variance=settings["variance"])

    def karras_denoiser(self, y=None, guidance=0.0, clip=False):
        """D(x~; sigma) = x~ - sigma eps_hat(x~ / sqrt(1 + sigma^2), t(sigma)): the trained
        network as a denoiser in the sigma view (Karras et al. 2022, Sec. 2 and App. C.3.2
        on wrapping a DDPM): alpha_bar = 1 / (1 + sigma^2), and the network time t(sigma)
        interpolated in log sigma (``NoiseSchedule.sigma_to_t``)."""
        sched = self.schedule

        def denoiser(x, sigma):
            n = x.shape[0]
            # stays on the device: float() of it would synchronise the GPU at every step
            t_net = B.xp.repeat(sched.sigma_to_t([sigma]), n)
            scale = 1.0 / math.sqrt(1.0 + sigma * sigma)
            a = autodiff.Tensor(B.xp.asarray(scale, dtype=x.dtype))            # sqrt(alpha_bar)
            s = autodiff.Tensor(B.xp.asarray(sigma * scale, dtype=x.dtype))    # sqrt(1 - alpha_bar)
            x0, _, _ = self.predict(x * a, t_net, a, s, y, guidance, clip)
            return x0
        return denoiser

    def eps_fn(self, cond=None, guidance=0.0):
        """eps_hat(x, tau) for the score models: x (N, *example_shape) in the MODEL's space
        (images in [-1, 1]), tau (N,) the network's time input (the step index, float: it may
        lie between steps, where alpha_bar is interpolated in log space). This is the
        contract of ``refgen.families.score.adapters.score_from_eps``, which makes the DDPM
        a VP-SDE score network s = -eps_hat / std(t) (Song et al. 2021b, App. B)."""
        y = self._labels(cond, None) if cond is not None else None
        sched, xp = self.schedule, B.xp

        def eps(x, tau):
            tau = xp.asarray(tau.data if isinstance(tau, autodiff.Tensor) else tau,
                             dtype=B.numpy.float64).reshape(-1)
            if tau.shape != (x.shape[0],):
                raise ValueError(f"ddpm.eps_fn: tau must be ({x.shape[0]},), got "
                                 f"{tuple(tau.shape)}")
            log_ab = xp.interp(tau, sched.timesteps.astype(B.numpy.float64),
                               sched.log_alpha_bar)
            shape = (-1,) + (1,) * (x.ndim - 1)
            a = autodiff.Tensor(xp.exp(0.5 * log_ab).astype(x.dtype).reshape(shape))
            s = autodiff.Tensor(xp.sqrt(-xp.expm1(log_ab)).astype(x.dtype).reshape(shape))
            return self.predict(x, tau, a, s, y, guidance)[1]
        return eps

    def _sample_karras(self, name, n, steps, y, w, clip, generator, dtype):
        sched = self.schedule
        sigmas = S.get_sigmas_karras(steps, sched.sigma_min, sched.sigma_max)
        # x~_T = x_T / sqrt(alpha_bar_T) with x_T ~ N(0, I): standard deviation
        # sqrt(1 + sigma_max^2) (k-diffusion uses sigma_max; the difference is O(1/sigma_max^2))
        x = autodiff.randn(n, *self.example_shape, generator=generator, dtype=dtype) \
            * math.sqrt(1.0 + sigmas[0] ** 2)
        return S.K_SAMPLERS[name](self.karras_denoiser(y, w, clip), x, sigmas, generator)

    @property
    def nfe_per_sample(self):
        """Network evaluations per sample for the sampler last used (or the default one):
        steps for ancestral, DDIM, Euler and DPM-Solver++(2M), 2 steps - 1 for Heun, twice
        that with classifier-free guidance (conditional and null)."""
        if self._sampling is None:
            name, _, steps = self._resolve(None, None, None, None)
            guided = False
        else:
            name, steps, guided = self._sampling
        nfe = S.nfe_karras(name, steps) if name in S.K_SAMPLERS else steps
        return nfe * (2 if guided else 1)
