"""Generative adversarial networks: the losses, the penalties, the networks and the model.

A generator G maps noise z ~ N(0, I) (N, z_dim) to x = G(z); a discriminator (critic) D maps
x to a real score D(x) (N,), a logit where the loss is a classification. The two play

    min_G max_D  V(D, G) = E_{x ~ p_data} log sigmoid(D(x)) + E_z log(1 - sigmoid(D(G(z))))

(Goodfellow et al. 2014, Eq. 1), one update of each per step (Algorithm 1; ``n_critic``
discriminator updates per generator update in general). All losses are written on logits
with softplus, log sigmoid(d) = -softplus(-d) and log(1 - sigmoid(d)) = -softplus(d), so
no probability is ever rounded to 0 or 1.

Losses (``loss=``):

* ``"minimax"``: D minimises softplus(-D(x)) + softplus(D(G(z))) (the negative of V);
  G minimises E log(1 - sigmoid(D(G(z)))) = -E softplus(D(G(z))). Its gradient in the
  logit, -sigmoid(d), vanishes where D rejects the fakes confidently (d -> -inf): early in
  training G learns nothing (Goodfellow et al. 2014, Sec. 3).
* ``"ns"``, non-saturating (the same paper's remedy): G minimises -E log sigmoid(D(G(z)))
  = E softplus(-D(G(z))), whose gradient 1 - sigmoid(d) -> 1 there. D as for minimax.
* ``"hinge"`` (Lim & Ye 2017; Miyato et al. 2018, Eq. 16-17 with spectral normalisation):
  D minimises E relu(1 - D(x)) + E relu(1 + D(G(z))); G minimises -E D(G(z)).
* ``"wasserstein"`` (Arjovsky et al. 2017): the critic minimises E D(G(z)) - E D(x), G
  minimises -E D(G(z)); with the gradient penalty of WGAN-GP (Gulrajani et al. 2017,
  Algorithm 1) lambda E_xhat (||grad_xhat D(xhat)||_2 - 1)^2 at xhat = u x + (1 - u) G(z),
  u ~ U[0, 1] per example: the ``wgan-gp`` family.

Options: ``r1_weight`` gamma adds the R1 penalty (gamma / 2) E_x ||grad_x D(x)||^2 on real
data (Mescheder et al. 2018, Eq. 9); ``spectral_norm`` divides every discriminator weight by
its largest singular value (Miyato et al. 2018); ``pack`` m > 1 is PacGAN (Lin et al. 2018):
D judges m samples at once, concatenated along the feature (channel) axis, all real or all
fake, which penalises a generator whose samples lack diversity (a remedy for mode
collapse); ``conditional`` makes the generator class-conditional (z concatenated with the
one-hot label c, Mirza & Osindero 2014) and the discriminator a projection discriminator
(Miyato & Koyama 2018, Eq. 3): D(x, c) = psi(phi(x)) + embed(c)^T phi(x). An EMA of the
generator is the training loop's ``ema_decay`` (the loop averages every parameter; sampling
uses only the generator's average); or, chosen in the model's config, ``g_ema`` = beta > 0
keeps an average of the generator alone, G_ema <- beta G_ema + (1 - beta) G after every
generator update (Karras et al. 2018, Sec. 5.2; Yazici et al. 2019), with which ``sample``
draws (batch-norm statistics are copied, not averaged).

Architectures: MLPs on 2-D points; the DCGAN generator and discriminator (Radford et al.
2016; ``refgen.backbones.DCGANGenerator/DCGANDiscriminator``) on images, whose tanh output in
(-1, 1) is mapped to the data's value range.

The players are ``"generator"`` and ``"discriminator"`` (the critic of WGAN-GP); each has
its own optimiser (per-player options through TrainConfig ``players``).
"""
import copy
import math

import autodiff
import autodiff.functional as F
from autodiff import nn

from ...backbones import MLP, DCGANDiscriminator, DCGANGenerator
from ...backbones.spectral_norm import spectral_norm as _spectral_norm
from ..base import GenerativeModel, check_sample_options

__all__ = ["LOSSES", "discriminator_loss", "generator_loss", "gradient_penalty", "r1_penalty",
           "pack", "Generator", "Discriminator", "GAN"]

LOSSES = ("ns", "minimax", "hinge", "wasserstein")


# --------------------------------------------------------------------------- the losses
def _check_loss(loss):
    if loss not in LOSSES:
        raise ValueError(f"GAN: unknown loss {loss!r}; known: {', '.join(LOSSES)}")


def discriminator_loss(loss, d_real, d_fake):
    """The discriminator's (critic's) loss, a 0-d Tensor, from scores d_real (N,) on data and
    d_fake (M,) on generated samples (see the module docstring for each ``loss``)."""
    _check_loss(loss)
    if loss in ("ns", "minimax"):      # -E log sigmoid(D(x)) - E log(1 - sigmoid(D(G(z))))
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if loss == "hinge":
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
    return d_fake.mean() - d_real.mean()  # wasserstein


def generator_loss(loss, d_fake):
    """The generator's loss, a 0-d Tensor, from the discriminator's scores d_fake (M,)."""
    _check_loss(loss)
    if loss == "minimax":              # E log(1 - sigmoid(d)) = -E softplus(d)
        return -F.softplus(d_fake).mean()
    if loss == "ns":                   # -E log sigmoid(d) = E softplus(-d)
        return F.softplus(-d_fake).mean()
    return -d_fake.mean()              # hinge and wasserstein


def _input_gradient_norms(critic, x):
    """||grad_x critic(x)_n||_2 per example (N,), differentiable (create_graph=True) so a
    penalty on it can be minimised: the double backward of WGAN-GP and R1."""
    with autodiff.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        scores = critic(x)
        # the examples do not interact (no batch norm in a penalised critic), so the
        # gradient of the sum holds each example's own gradient
        (g,) = autodiff.grad(scores.sum(), [x], create_graph=True)
    return g.reshape(g.shape[0], -1), x


def gradient_penalty(critic, x_real, x_fake, u):
    """WGAN-GP's penalty E (||grad_xhat D(xhat)||_2 - 1)^2 at xhat = u x + (1 - u) x_fake
    (Gulrajani et al. 2017, Algorithm 1, lines 6-7), without the weight lambda.

    :param critic: x (N, ...) -> scores (N,).
    :param x_real, x_fake: (N, ...) data and generated samples (x_fake detached).
    :param u: (N,) interpolation weights, U[0, 1] in training.
    :return: a 0-d Tensor, differentiable in the critic's parameters.
    """
    if tuple(x_real.shape) != tuple(x_fake.shape):
        raise ValueError(f"gradient_penalty: x_real {tuple(x_real.shape)} and x_fake "
                         f"{tuple(x_fake.shape)} must have the same shape")
    if tuple(u.shape) != (x_real.shape[0],):
        raise ValueError(f"gradient_penalty: u must be ({x_real.shape[0]},), got "
                         f"{tuple(u.shape)}")
    u = u.reshape(-1, *([1] * (x_real.ndim - 1)))
    x_hat = (u * x_real.detach() + (1.0 - u) * x_fake.detach()).detach()
    g, _ = _input_gradient_norms(critic, x_hat)
    return ((g.norm(dim=1) - 1.0) ** 2).mean()


def r1_penalty(critic, x_real):
    """R1 (Mescheder et al. 2018, Eq. 9) without gamma / 2: E_x ||grad_x D(x)||^2 on data."""
    g, _ = _input_gradient_norms(critic, x_real.detach())
    return (g * g).sum(1).mean()


def pack(x, m):
    """PacGAN's packing (Lin et al. 2018): x (N, C, ...) -> (N / m, m C, ...), m consecutive
    examples concatenated along axis 1 (features for points, channels for images)."""
    if x.shape[0] % m:
        raise ValueError(f"pack: the batch size {x.shape[0]} is not a multiple of pack={m}")
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


# --------------------------------------------------------------------------- the networks
def _is_image(shape):
    return len(shape) == 3


class Generator(nn.Module):
    """G: z (N, z_dim) [, c (N,) labels] -> x (N, *example_shape), in the model's space
    ((-1, 1) for images through the DCGAN tanh; unbounded for points)."""

    def __init__(self, example_shape, z_dim, hidden, depth, base_width, num_classes=0,
                 norm="batch"):
        super().__init__()
        self.example_shape, self.z_dim, self.num_classes = tuple(example_shape), z_dim, \
            num_classes
        if _is_image(self.example_shape):
            c, h, w = self.example_shape
            if h != w:
                raise ValueError(f"GAN: DCGAN needs square images, got {self.example_shape}")
            self.net = DCGANGenerator(z_dim=z_dim + num_classes, channels=c,
                                      base_width=base_width, image_size=h, norm=norm)
        else:
            d = math.prod(self.example_shape)
            self.net = MLP(z_dim, d, hidden=hidden, depth=depth, activation="relu",
                           cond_features=num_classes)

    def forward(self, z, c=None):
        onehot = None
        if self.num_classes:
            if c is None:
                raise ValueError("GAN generator: conditional, the labels c (N,) are required")
            onehot = F.one_hot(c, self.num_classes).to(z.dtype)
        if _is_image(self.example_shape):
            h = z if onehot is None else autodiff.cat([z, onehot], dim=1)
            return self.net(h)
        return self.net(z, onehot).reshape(z.shape[0], *self.example_shape)


class Discriminator(nn.Module):
    """D: x (N, *example_shape) [, c (N,)] -> scores (N,), as features phi, a linear head psi
    and, when conditional, the projection embed(c)^T phi(x) (Miyato & Koyama 2018, Eq. 3).

    Points: phi = leaky_relu(MLP(x)) (N, hidden). Images: phi = the DCGAN discriminator
    without its last convolution (N, C, s0, s0); psi = that convolution, and the projection
    uses phi summed over space. ``pack`` m multiplies the input features / channels.
    """

    def __init__(self, example_shape, hidden, depth, base_width, pack=1, num_classes=0,
                 spectral_norm=False, norm="batch"):
        super().__init__()
        self.example_shape = tuple(example_shape)
        if _is_image(self.example_shape):
            c, h, _ = self.example_shape
            dcgan = DCGANDiscriminator(channels=c * pack, base_width=base_width, image_size=h,
                                       norm=norm, spectral_norm=spectral_norm)
            self.features = dcgan.main[:-1]
            self.head = dcgan.main[-1]
            width = self.head.in_channels
        else:
            d = math.prod(self.example_shape) * pack
            self.features = nn.Sequential(
                MLP(d, hidden, hidden=hidden, depth=max(depth - 1, 0), activation="leaky_relu",
                    negative_slope=0.2), nn.LeakyReLU(0.2))
            self.head = nn.Linear(hidden, 1)
            width = hidden
            if spectral_norm:
                for m in list(self.features.modules()) + [self.head]:
                    if isinstance(m, nn.Linear):
                        _spectral_norm(m)
        self.embed = nn.Embedding(num_classes, width) if num_classes else None

    def forward(self, x, c=None):
        h = self.features(x)
        out = self.head(h).reshape(x.shape[0])
        if self.embed is not None:
            if c is None:
                raise ValueError("GAN discriminator: conditional, the labels c (N,) are "
                                 "required")
            pooled = h.sum(dim=(2, 3)) if h.ndim == 4 else h
            out = out + (self.embed(c) * pooled).sum(1)
        return out


# --------------------------------------------------------------------------- the model
class GAN(GenerativeModel):
    """A GAN as a family model (``gan`` and ``wgan-gp``); see the module docstring.

    Config keys: ``loss`` (one of ``LOSSES``), ``z_dim``, ``hidden``/``depth`` (MLPs on
    points), ``base_width``/``g_norm``/``d_norm`` (DCGAN on images), ``n_critic``,
    ``gp_weight`` (lambda of WGAN-GP; 0 off), ``r1_weight`` (gamma; 0 off),
    ``spectral_norm``, ``pack`` (PacGAN's m; 1 off), ``conditional``, ``g_ema`` (the
    generator's average's decay; 0 off).
    """

    kind = "gan"
    likelihood_kind = "none"
    sample_options = ("temperature",)

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        _check_loss(c["loss"])
        for key in ("z_dim", "n_critic", "pack", "hidden", "depth", "base_width"):
            if isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] < 1:
                raise ValueError(f"GAN: {key} must be a positive integer, got {c[key]!r}")
        for key in ("gp_weight", "r1_weight"):
            if isinstance(c[key], bool) or not isinstance(c[key], (int, float)) or c[key] < 0:
                raise ValueError(f"GAN: {key} must be a number >= 0, got {c[key]!r}")
        if not self.example_shape:
            raise ValueError("GAN: config['data_info'] has no example shape")
        self.num_classes = 0
        if c.get("conditional"):
            self.num_classes = int(self.data_info.get("num_classes") or 0)
            if not self.num_classes:
                raise ValueError(f"GAN: conditional=True needs labelled data; "
                                 f"{self.data_info.get('name', '?')!r} has no num_classes")
            if c["pack"] > 1:
                raise ValueError("GAN: conditional=True with pack > 1 is not supported (a "
                                 "projection discriminator judges one labelled example)")
        if (c["gp_weight"] > 0 or c["r1_weight"] > 0) and c["d_norm"] == "batch" \
                and _is_image(self.example_shape):
            raise ValueError("GAN: a gradient penalty needs a discriminator without batch "
                             "norm (the penalty is per example); set d_norm='none'")
        self.generator = Generator(self.example_shape, c["z_dim"], c["hidden"], c["depth"],
                                   c["base_width"], self.num_classes, norm=c["g_norm"])
        self.generator_ema = None
        if c.get("g_ema", 0.0):
            if not 0.0 < float(c["g_ema"]) < 1.0:
                raise ValueError(f"GAN: g_ema must be in (0, 1) or 0 (off), got {c['g_ema']!r}")
            self.generator_ema = copy.deepcopy(self.generator)
            for p in self.generator_ema.parameters():
                p.requires_grad_(False)
        self.discriminator = Discriminator(self.example_shape, c["hidden"], c["depth"],
                                           c["base_width"], c["pack"], self.num_classes,
                                           c["spectral_norm"], norm=c["d_norm"])

    # ---- data space <-> model space (DCGAN's tanh range)
    def _to_model(self, x):
        if not _is_image(self.example_shape):
            return x
        lo, hi = self.value_range
        return (x - lo) * (2.0 / (hi - lo)) - 1.0

    def _to_data(self, x):
        if not _is_image(self.example_shape):
            return x
        lo, hi = self.value_range
        return lo + (x + 1.0) * ((hi - lo) / 2.0)

    # ---- the Trainable
    def modules(self):
        modules = {"generator": self.generator, "discriminator": self.discriminator}
        if self.generator_ema is not None:
            modules["generator_ema"] = self.generator_ema
        return modules

    def _update_generator_ema(self):
        beta = float(self.config["g_ema"])
        with autodiff.no_grad():
            for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
                p_ema.data[...] = beta * p_ema.data + (1.0 - beta) * p.data
            for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
                b_ema.data[...] = b.data

    def parameter_groups(self):
        return {"generator": list(self.generator.parameters()),
                "discriminator": list(self.discriminator.parameters())}

    def _critic(self, c):
        """x -> D(pack(x), c) (N / m,)."""
        return lambda x: self.discriminator(self._pack(x), c)

    def _pack(self, x):
        m = self.config["pack"]
        return pack(x, m) if m > 1 else x

    def training_step(self, batch, step, ctx):
        """``n_critic`` discriminator updates, each on its own slice of the batch and fresh
        z, then one generator update (Goodfellow et al. 2014, Algorithm 1; Gulrajani et al.
        2017, Algorithm 1). The batch holds n_critic slices of ``chunk`` examples."""
        x, y = batch
        c = self.config
        if self.num_classes and y is None:
            raise ValueError("GAN: conditional=True but the batch has no labels")
        x = self._to_model(x)
        m = c["pack"]
        chunk = (x.shape[0] // c["n_critic"]) // m * m
        if chunk < 1:
            raise ValueError(f"GAN: a batch of {x.shape[0]} cannot feed n_critic="
                             f"{c['n_critic']} updates of at least pack={m} examples; "
                             f"use batch_size >= {c['n_critic'] * m}")
        dtype = x.dtype
        metrics = {}
        for k in range(c["n_critic"]):
            x_real = x[k * chunk:(k + 1) * chunk]
            labels = y[k * chunk:(k + 1) * chunk] if self.num_classes else None
            z = autodiff.randn(chunk, c["z_dim"], generator=ctx.generator, dtype=dtype)
            with autodiff.no_grad():
                x_fake = self.generator(z, labels)
            # the penalties constrain D on its own (packed) inputs
            x_real, x_fake = self._pack(x_real), self._pack(x_fake)
            critic = lambda v: self.discriminator(v, labels)  # noqa: E731
            d_real, d_fake = critic(x_real), critic(x_fake)
            loss_d = discriminator_loss(c["loss"], d_real, d_fake)
            total = loss_d
            if c["gp_weight"] > 0:
                u = autodiff.rand(chunk // m, generator=ctx.generator, dtype=dtype)
                gp = gradient_penalty(critic, x_real, x_fake, u)
                total = total + c["gp_weight"] * gp
                metrics["gradient_penalty"] = float(gp.item())
            if c["r1_weight"] > 0:
                r1 = r1_penalty(critic, x_real)
                total = total + 0.5 * c["r1_weight"] * r1
                metrics["r1"] = float(r1.item())
            ctx.optimize("discriminator", total)
        labels = y[:chunk] if self.num_classes else None
        z = autodiff.randn(chunk, c["z_dim"], generator=ctx.generator, dtype=dtype)
        d_fake_g = self._critic(labels)(self.generator(z, labels))
        loss_g = generator_loss(c["loss"], d_fake_g)
        ctx.optimize("generator", loss_g)
        if self.generator_ema is not None:
            self._update_generator_ema()
        metrics.update({"loss_d": float(loss_d.item()), "loss_g": float(loss_g.item()),
                        "d_real": float(d_real.mean().item()),
                        "d_fake": float(d_fake.mean().item())})
        metrics["loss"] = metrics["loss_d"] + metrics["loss_g"]
        return metrics

    # ---- the generative model
    def sample(self, n, generator=None, cond=None, **options):
        """x = G(z), z ~ N(0, temperature^2 I) (N, z_dim), in the data's value range.

        :param cond: labels (n,) for a conditional GAN; uniform random labels when None.
        :param temperature: scales z (1 by default; < 1 trades diversity for quality).
        """
        check_sample_options("gan", options, self.sample_options)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"GAN.sample: n must be a positive int, got {n!r}")
        temperature = options.get("temperature")
        temperature = 1.0 if temperature is None else float(temperature)
        if not temperature >= 0:
            raise ValueError(f"GAN.sample: temperature must be >= 0, got {temperature}")
        labels = None
        if self.num_classes:
            labels = cond if cond is not None else autodiff.randint(
                0, self.num_classes, (n,), generator=generator)
            if not isinstance(labels, autodiff.Tensor):
                labels = autodiff.tensor(labels, dtype="int64")
            if tuple(labels.shape) != (n,):
                raise ValueError(f"GAN.sample: cond must be labels of shape ({n},), got "
                                 f"{tuple(labels.shape)}")
            if int(labels.min().item()) < 0 or int(labels.max().item()) >= self.num_classes:
                raise ValueError(f"GAN.sample: labels must be in [0, {self.num_classes}), got "
                                 f"range [{int(labels.min().item())}, "
                                 f"{int(labels.max().item())}]")
        elif cond is not None:
            raise ValueError("GAN.sample: got cond, but this GAN is not conditional")
        dtype = next(iter(self.generator.parameters())).dtype
        z = autodiff.randn(n, self.config["z_dim"], generator=generator, dtype=dtype)
        net = self.generator_ema if self.generator_ema is not None else self.generator
        with autodiff.no_grad():
            x = net(z * temperature, labels)
        return self._to_data(x).detach()

    @property
    def nfe_per_sample(self):
        return 1

    def class_accuracy(self, classifier, per_class=100, generator=None):
        """A conditional GAN's samples judged by a classifier: for every class k, the share of
        ``per_class`` samples G(z, k) that ``classifier`` (images -> logits) assigns to k.
        :return: dict(class_accuracy (mean over classes), class_accuracy_min, per_class list)."""
        if not self.num_classes:
            raise ValueError("GAN.class_accuracy: this GAN is not conditional")
        generator = generator or autodiff.Generator(0)
        accs = []
        with autodiff.no_grad():
            for k in range(self.num_classes):
                labels = autodiff.full((per_class,), k, dtype="int64")
                x = self.sample(per_class, generator, cond=labels)
                pred = classifier(x).data.argmax(axis=1)
                accs.append(float((pred == k).mean()))
        return {"class_accuracy": sum(accs) / len(accs), "class_accuracy_min": min(accs),
                "per_class": accs}

    def evaluate(self, dataset, ctx=None, n_samples=2500):
        """On ring8/grid25-style mixtures: mode coverage of 2500 samples (Srivastava et al.
        2017, Table 1; ``refgen.metrics.modes``). A conditional GAN on 8x8 digits: the
        shipped digits classifier's accuracy on 100 samples per class (``class_accuracy``).
        Otherwise nothing: images are judged by ``refgen eval --metrics fid,...``."""
        if self.num_classes and self.example_shape == (1, 8, 8):
            from ...metrics.pretrained import load_pretrained
            net = load_pretrained("digits").to(next(iter(self.generator.parameters())).dtype)
            r = self.class_accuracy(net, generator=ctx.generator if ctx is not None else None)
            return {"class_accuracy": r["class_accuracy"],
                    "class_accuracy_min": r["class_accuracy_min"]}
        name = self.data_info.get("name") or getattr(dataset, "name", None)
        from ...data import toy
        try:
            density = toy.get_density(name)
        except (ValueError, TypeError):
            return {}
        if getattr(density, "means", None) is None:
            return {}
        from ...metrics.modes import mode_coverage
        generator = ctx.generator if ctx is not None else autodiff.Generator(0)
        x = self.sample(n_samples, generator)
        r = mode_coverage(x, density)
        return {"modes_captured": float(r["modes_captured"]),
                "modes_with_20": float(r["modes_with_min_count"]),
                "high_quality": float(r["high_quality_share"])}
