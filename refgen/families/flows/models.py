"""Normalizing flows as generative models: a base distribution pushed through bijections.

A flow is an invertible map z = f_theta(x) with a standard normal base p_Z = N(0, I), so by
the change of variables (Rezende & Mohamed 2015; Dinh et al. 2017, Eq. 3)

    log p_theta(x | c) = log N(f_theta(x; c); 0, I) + log|det df_theta/dx (x; c)|,

trained by maximum likelihood (minimising the negative log-likelihood per dimension) and
sampled by x = f_theta^{-1}(z; c), z ~ N(0, T^2 I) (T = 1; T < 1 is Glow's reduced-temperature
sampling, Sec. 5: it trades diversity for typicality).

Images of L grey levels are dequantized per batch, x' = lo + (hi - lo)(k + u)/L with
u ~ U[0, 1) (Theis et al. 2016; ``GenerativeModel.dequantize``), and the flow begins with
``LogitPreprocess``: its log-determinant keeps log p_theta a density of x' on [lo, hi].
The dequantization itself is a map from the stored k to a bin of width a = (hi - lo)/L,
whose "log-determinant" is the D log a that ``bits_per_dim`` adds:
log P(k) >= E_u[log p_theta(x')] + D log a (Jensen).

Architectures (``build_bijection``; ``config["architecture"]``):

* ``realnvp`` (Dinh et al. 2017): vectors: alternating-mask affine couplings with MLP
  conditioners; images: the multi-scale architecture: per scale three checkerboard couplings,
  a squeeze, three channel couplings, half the channels factored out; four checkerboard
  couplings at the end.
* ``glow`` (Kingma & Dhariwal 2018): steps of ActNorm, invertible 1x1 convolution (LU) and an
  affine coupling on a channel split; images: squeeze, K steps, split, per scale.
* ``nsf`` (Durkan et al. 2019): as ``glow`` with rational-quadratic spline couplings
  (vectors: LU linear layers between alternating-mask spline couplings, RQ-NSF (C);
  ``linear=false`` drops the linear layers, leaving the alternating couplings, which keep
  the data's own axes: what a density with axis-aligned edges, the checkerboard, needs).
* ``maf`` (Papamakarios et al. 2017): MADE-based autoregressive layers, ``autoregressive``.
"""
import math

import autodiff
from autodiff import backend as B
from autodiff import nn

from ..base import GenerativeModel, check_sample_options
from .bijections import (ActNorm, AdditiveCoupling, AffineCoupling, BatchNormFlow, Compose,
                         InvConv1x1, LogitPreprocess, MultiScale, Permutation, Squeeze,
                         channel_mask, checkerboard_mask)
from .splines import SplineCoupling

__all__ = ["Flow", "FlowModel", "build_bijection", "ARCHITECTURES", "standard_normal_log_prob"]

ARCHITECTURES = ("realnvp", "glow", "nsf", "maf", "iaf")


def standard_normal_log_prob(z):
    """log N(z; 0, I) per example: -|z|^2 / 2 - (D / 2) log(2 pi); z (N, ...) -> (N,)."""
    flat = z.reshape(z.shape[0], -1)
    d = flat.shape[1]
    return -0.5 * (flat * flat).sum(dim=1) - 0.5 * d * math.log(2 * math.pi)


class Flow(nn.Module):
    """A base N(0, I) and a bijection x -> z (``bijections.Bijection``).

    :param bijection: the map from data to base space.
    :param event_shape: the shape of one example x.
    Methods take ``cond`` (N, cond_features), a context vector, or None.
    """

    def __init__(self, bijection, event_shape):
        super().__init__()
        self.bijection = bijection
        self.event_shape = tuple(int(s) for s in event_shape)
        self.base_shape = tuple(bijection.output_shape(self.event_shape))

    def _check(self, x):
        if not isinstance(x, autodiff.Tensor):
            raise TypeError(f"Flow: x must be a Tensor, got {type(x).__name__}")
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"Flow: x must have shape (N, {', '.join(map(str, self.event_shape))})"
                             f", got {tuple(x.shape)}")

    def log_prob(self, x, cond=None):
        """log p(x) = log N(f(x); 0, I) + log|det df/dx|, (N,) nats."""
        self._check(x)
        z, logdet = self.bijection(x, cond)
        return standard_normal_log_prob(z) + logdet

    def encode(self, x, cond=None):
        """z = f(x), the point in base space, (N, *base_shape)."""
        self._check(x)
        return self.bijection(x, cond)[0]

    def decode(self, z, cond=None):
        """x = f^{-1}(z)."""
        return self.bijection.inverse(z, cond)[0]

    def _base_sample(self, n, generator, dtype, temperature):
        eps = autodiff.randn(*((n,) + self.base_shape), generator=generator, dtype=dtype)
        return eps * float(temperature) if temperature != 1.0 else eps

    def sample(self, n, generator=None, cond=None, temperature=1.0, dtype=None):
        """x = f^{-1}(z), z ~ N(0, T^2 I): (n, *event_shape)."""
        z = self._base_sample(n, generator, dtype or autodiff.get_default_dtype(), temperature)
        return self.decode(z, cond)

    def sample_and_log_prob(self, n, generator=None, cond=None, dtype=None):
        """Samples and their log p(x) from one inverse pass (T = 1):
        log p(x) = log N(z; 0, I) - log|det df^{-1}/dz (z)|."""
        z = self._base_sample(n, generator, dtype or autodiff.get_default_dtype(), 1.0)
        x, logdet_inv = self.bijection.inverse(z, cond)
        return x, standard_normal_log_prob(z) - logdet_inv


# --------------------------------------------------------------------------- architectures
def _coupling(kind, shape, mask, config, cond_features):
    common = dict(hidden=config["hidden"], depth=config.get("depth", 2),
                  blocks=config.get("blocks", 2), cond_features=cond_features,
                  activation=config.get("activation", "relu"))
    if kind == "affine":
        return AffineCoupling(shape, mask, scale_bound=config.get("scale_bound", 3.0), **common)
    if kind == "additive":
        return AdditiveCoupling(shape, mask, **common)
    if kind == "spline":
        return SplineCoupling(shape, mask, num_bins=config.get("num_bins", 8),
                              tail_bound=config.get("tail_bound", 5.0), **common)
    raise ValueError(f"unknown coupling {kind!r}; known: affine, additive, spline")


def _vector_bijection(arch, shape, config, cond):
    layers = []
    k = int(config["num_layers"])
    d = shape[0]
    if arch == "realnvp":
        coupling = config.get("coupling", "affine")
        for i in range(k):
            layers.append(_coupling(coupling, shape, checkerboard_mask(shape, i % 2), config,
                                    cond))
            if config.get("batch_norm") and i < k - 1:
                layers.append(BatchNormFlow(shape))
        return layers
    if arch in ("glow", "nsf"):
        if arch == "glow" and not config.get("linear", True):
            raise ValueError("glow: linear=false is not supported: Glow's steps on vectors "
                             "transform one fixed half and rely on the 1x1 mixing between "
                             "them (nsf alternates its masks and accepts it)")
        coupling = "spline" if arch == "nsf" else config.get("coupling", "affine")
        for i in range(k):
            if arch == "glow":
                layers.append(ActNorm(shape))
            if d > 1 and config.get("linear", True):
                layers.append(InvConv1x1(shape, lu=config.get("lu", True), seed=i))
            # the 1x1 convolution mixes the features, so one mask parity suffices for Glow;
            # the spline flow alternates as RQ-NSF (C) does
            mask = channel_mask(shape, 0) if arch == "glow" else checkerboard_mask(shape, i % 2)
            layers.append(_coupling(coupling, shape, mask, config, cond))
        return layers
    raise ValueError(f"architecture {arch!r} is not a coupling flow")


def _image_bijection(arch, shape, config, cond):
    c, h, w = shape
    scales = int(config.get("num_scales", 2))
    steps = int(config.get("steps_per_scale", 3 if arch == "realnvp" else 4))
    pre = LogitPreprocess(shape, alpha=config.get("alpha", 0.05),
                          value_range=tuple(config.get("value_range", (0.0, 1.0))))
    levels, cur = [], tuple(shape)
    if arch == "realnvp":
        coupling = config.get("coupling", "affine")
        for _ in range(scales - 1):
            block = [_coupling(coupling, cur, checkerboard_mask(cur, i % 2), config, cond)
                     for i in range(steps)]
            if config.get("batch_norm"):
                block.append(BatchNormFlow(cur))
            block.append(Squeeze())
            sq = Squeeze().output_shape(cur)
            block += [_coupling(coupling, sq, channel_mask(sq, i % 2), config, cond)
                      for i in range(steps)]
            levels.append(Compose(block))
            cur = (sq[0] // 2,) + sq[1:]
        final = Compose([_coupling(coupling, cur, checkerboard_mask(cur, i % 2), config, cond)
                         for i in range(steps + 1)])
    elif arch in ("glow", "nsf"):
        coupling = "spline" if arch == "nsf" else config.get("coupling", "affine")

        def flow_steps(s):
            out = []
            for i in range(steps):
                out += [ActNorm(s), InvConv1x1(s, lu=config.get("lu", True), seed=i)]
                out.append(_coupling(coupling, s, channel_mask(s, i % 2), config, cond))
            return out

        for _ in range(scales - 1):
            sq = Squeeze().output_shape(cur)
            levels.append(Compose([Squeeze()] + flow_steps(sq)))
            cur = (sq[0] // 2,) + sq[1:]
        if cur[1] % 2 == 0 and cur[2] % 2 == 0:
            sq = Squeeze().output_shape(cur)
            final = Compose([Squeeze()] + flow_steps(sq))
        else:
            final = Compose(flow_steps(cur))
    else:
        raise ValueError(f"architecture {arch!r} has no image version")
    return [pre, MultiScale(shape, levels, final) if levels else final]


def build_bijection(config, shape, cond_features=0):
    """The bijection x -> z that ``config["architecture"]`` names, for examples of ``shape``."""
    arch = config.get("architecture")
    if arch not in ARCHITECTURES:
        raise ValueError(f"flows: architecture must be one of {', '.join(ARCHITECTURES)}, got "
                         f"{arch!r}")
    if arch in ("maf", "iaf"):
        from .autoregressive import autoregressive_bijection
        return autoregressive_bijection(config, shape, cond_features)
    if len(shape) == 1:
        return Compose(_vector_bijection(arch, shape, config, cond_features))
    if len(shape) == 3:
        return Compose(_image_bijection(arch, shape, config, cond_features))
    raise ValueError(f"flows: examples must be vectors (D,) or images (C, H, W), got {shape}")


# --------------------------------------------------------------------------- the model
class FlowModel(GenerativeModel):
    """A normalizing flow as a ``GenerativeModel`` (kind "flow", exact likelihood).

    ``config``: ``architecture`` and its sizes (``models`` docstring), ``conditional`` and
    ``num_classes`` (a class-conditional flow: the one-hot label is every conditioner's
    extra input), ``data_info``.
    """

    kind = "flow"
    likelihood_kind = "exact"
    discrete = False
    sample_options = ("temperature",)

    def __init__(self, config):
        super().__init__(config)
        shape = self.example_shape
        if not shape:
            raise ValueError("flows: config['data_info'] must give the example 'shape'")
        self.family = config.get("architecture")
        self.num_classes = int(config.get("num_classes") or 0)
        self.conditional = bool(config.get("conditional"))
        if self.conditional and self.num_classes < 2:
            raise ValueError(f"flows: conditional=True needs num_classes >= 2, got "
                             f"{self.num_classes}")
        cfg = dict(config)
        if self.levels:
            cfg.setdefault("value_range", list(self.value_range))
        cond_features = self.num_classes if self.conditional else 0
        self.flow = Flow(build_bijection(cfg, shape, cond_features), shape)

    # ---- the Trainable side
    def modules(self):
        return {"model": self.flow}

    def parameter_groups(self):
        return {"model": list(self.flow.parameters())}

    def _context(self, cond, n):
        """Labels (N,) -> one-hot (N, K); None for an unconditional flow."""
        if not self.conditional:
            if cond is not None:
                raise ValueError("flows: a condition was given to an unconditional flow (train "
                                 "with --set conditional=true)")
            return None
        if cond is None:
            raise ValueError(f"flows: this flow is class-conditional ({self.num_classes} "
                             "classes): pass cond, labels of shape (N,)")
        labels = cond.data if isinstance(cond, autodiff.Tensor) else B.xp.asarray(cond)
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"flows: cond must be integer labels of shape ({n},), got shape "
                             f"{tuple(labels.shape)} and dtype {labels.dtype}")
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"flows: labels must be in 0..{self.num_classes - 1}, got "
                             f"{int(labels.min())}..{int(labels.max())}")
        eye = B.xp.eye(self.num_classes, dtype=autodiff.get_default_dtype())
        return autodiff.Tensor(eye[labels.astype(B.numpy.int64)])

    def _dtype(self):
        for p in self.flow.parameters():
            return p.dtype
        return autodiff.get_default_dtype()

    def _as_input(self, x):
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        if x.dtype != self._dtype():
            x = autodiff.Tensor(x.data.astype(self._dtype()))
        return x

    def training_step(self, batch, step, ctx):
        """Minimise -log p_theta(x') / D on a dequantized batch (nats per dimension)."""
        x, y = batch
        x = self._as_input(x)
        if self.levels:
            x = autodiff.Tensor(self.dequantize(x.data, generator=ctx.generator))
        log_p = self.log_prob(x, cond=y if self.conditional else None)
        d = self.num_dims
        nll = -log_p.mean()
        ctx.optimize("model", nll / d)
        out = {"loss": float(nll.item()) / d, "nll": float(nll.item())}
        if self.levels:
            lo, hi = self.value_range
            out["bpd"] = (float(nll.item()) / d - math.log((hi - lo) / self.levels)) \
                / math.log(2)
        return out

    # ---- the GenerativeModel side
    def log_prob(self, x, cond=None):
        """log p_theta(x | c) in nats per example (N,); x continuous (dequantized images)."""
        x = self._as_input(x)
        return self.flow.log_prob(x, self._context(cond, x.shape[0]))

    def encode(self, x, cond=None):
        """z = f_theta(x): the base-space point of x, (N, *base_shape)."""
        x = self._as_input(x)
        return self.flow.encode(x, self._context(cond, x.shape[0]))

    def _sample_cond(self, n, cond):
        if self.conditional and cond is None:
            # an even spread over the classes (labels 0, 1, ..., K-1, 0, ...)
            cond = autodiff.Tensor(B.xp.arange(n, dtype=B.numpy.int64) % self.num_classes)
        return self._context(cond, n)

    def sample(self, n, generator=None, cond=None, temperature=None, **options):
        """x = f^{-1}(z), z ~ N(0, T^2 I), (n, *example_shape); images lie in (lo, hi)."""
        check_sample_options(f"flows[{self.family}]", options, self.sample_options)
        t = 1.0 if temperature is None else float(temperature)
        if not t > 0:
            raise ValueError(f"flows: temperature must be positive, got {temperature!r}")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"flows: n must be a positive int, got {n!r}")
        return self.flow.sample(n, generator, self._sample_cond(n, cond), temperature=t,
                                dtype=self._dtype())

    def sample_and_log_prob(self, n, generator=None, cond=None):
        """(x (n, *example_shape), log p_theta(x) (n,)) from one inverse pass."""
        return self.flow.sample_and_log_prob(n, generator, self._sample_cond(n, cond),
                                             dtype=self._dtype())

    @property
    def nfe_per_sample(self):
        """One inverse pass (a MAF inverts one dimension per pass: D)."""
        if self.config.get("architecture") == "maf":
            return int(self.num_dims)
        return 1
