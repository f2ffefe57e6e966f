"""Convolutional backbones: pre-activation residual blocks, a small ResNet, ResNet generator and
critic, and the DCGAN generator and discriminator.

Pre-activation residual block (He et al. 2016, "Identity mappings in deep residual networks",
Fig. 1(b) / 4(e), Eq. 3: x_{l+1} = x_l + F(x_l), with F = conv(act(norm(conv(act(norm(x)))))),
norm-act-conv order, so the shortcut path carries x unchanged)::

    h = conv1(resample_in(act(norm1(x))))      3x3; stride 2 when resample='down', downsample='stride'
    h = resample_out(conv2(act(norm2(h))))     3x3
    y = h + shortcut(x)

Resampling, as in the ResNets of Gulrajani et al. (2017, WGAN-GP, appendix F) and Miyato et al.
(2018, SN-GAN):

* ``'up'``: nearest-neighbour 2x upsampling before conv1 (resample_in); the shortcut upsamples
  x the same way.
* ``'down'`` with ``downsample='avg'``: 2x2 average pooling after conv2 (resample_out); the
  shortcut average-pools x.
* ``'down'`` with ``downsample='stride'``: conv1 has stride 2 (He et al. 2016's projection
  style); the shortcut is a 1x1 convolution with stride 2.

The shortcut gets a 1x1 convolution (``shortcut``) whenever the channel count changes or the
block downsamples by stride; otherwise it is the identity (after resampling). The shortcut takes
the raw x, not act(norm(x)): the identity path stays clean, which is the paper's argument.
Resampling and a 1x1 convolution commute (both are linear per channel / per pixel), so the
shortcut resamples first, where the convolution is cheaper for 'down'.

DCGAN (Radford et al. 2016, "Unsupervised representation learning with deep convolutional
generative adversarial networks", Section 3 and Fig. 1): the generator is a stack of
ConvTranspose2d (kernel 4, stride 2, padding 1) + BatchNorm + ReLU, doubling the resolution
and halving the channels, with a Tanh output; the discriminator mirrors it with strided
Conv2d + BatchNorm + LeakyReLU(0.2), no batch norm on its first layer, and one output logit
(no sigmoid: use a loss on logits, which is numerically stable). Weights are initialised from
N(0, 0.02) and batch-norm scales from N(1, 0.02) (Section 4, ``dcgan_init_``). A bias is used
only where no batch norm follows (batch norm's mean subtraction cancels it).

Image sizes: ``image_size = s0 * 2**k`` with 3 <= s0 <= 7 and k >= 1 (28 = 7 * 4, 32 = 4 * 8,
64 = 4 * 16, ...); the networks work at the base resolution s0 and up/downsample k times.
"""
from autodiff import nn, Tensor
from autodiff import functional as F

from ._checks import check_image, check_positive_ints
from .mlp import make_activation
from .spectral_norm import spectral_norm as _spectral_norm

__all__ = ["NORMS", "make_norm", "base_size", "PreActResBlock", "ResNet", "ResNetGenerator",
           "ResNetCritic", "DCGANGenerator", "DCGANDiscriminator", "dcgan_init_"]

NORMS = ("batch", "group", "none")


def make_norm(norm, channels, num_groups=32):
    """BatchNorm2d, GroupNorm (min(num_groups, channels) groups) or Identity for ``norm``."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        groups = min(num_groups, channels)
        if channels % groups:
            raise ValueError(f"GroupNorm: {channels} channels are not divisible into {groups} "
                             f"groups; choose num_groups dividing the channel count")
        return nn.GroupNorm(groups, channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; known: {', '.join(NORMS)}")


def base_size(image_size):
    """(s0, k) with image_size = s0 * 2**k, 3 <= s0 <= 7, k >= 1 (28 -> (7, 2), 32 -> (4, 3))."""
    if not isinstance(image_size, int) or image_size < 6:
        raise ValueError(f"image_size must be an int s0 * 2**k with 3 <= s0 <= 7 and k >= 1 "
                         f"(e.g. 28, 32, 64), got {image_size!r}")
    s, k = image_size, 0
    while s % 2 == 0 and s > 7:
        s, k = s // 2, k + 1
    if not 3 <= s <= 7 or k < 1:
        raise ValueError(f"image_size must be s0 * 2**k with 3 <= s0 <= 7 and k >= 1 "
                         f"(e.g. 28, 32, 64), got {image_size}")
    return s, k


def _sn(module, enabled):
    return _spectral_norm(module) if enabled else module


class PreActResBlock(nn.Module):
    """Pre-activation residual block: (N, in_channels, H, W) -> (N, out_channels, H', W').

    H' = H for resample=None, 2H for 'up', floor(H/2) ('avg') or ceil(H/2) ('stride') for 'down'.

    :param resample: None, 'up' or 'down' (see the module docstring).
    :param norm: 'batch', 'group' (min(num_groups, channels) groups) or 'none'.
    :param activation: a name from ``refgen.backbones.mlp.ACTIVATIONS``.
    :param downsample: 'avg' (average pooling after conv2) or 'stride' (stride-2 conv1).
    :param spectral_norm: wrap every convolution in spectral normalisation (critics, EBMs).
    Children: norm1, conv1, norm2, conv2, shortcut (1x1 Conv2d or None), act.
    """

    def __init__(self, in_channels, out_channels, resample=None, norm="batch",
                 activation="relu", downsample="avg", num_groups=32, negative_slope=None,
                 spectral_norm=False, generator=None):
        super().__init__()
        check_positive_ints("PreActResBlock", in_channels=in_channels, out_channels=out_channels)
        if resample not in (None, "up", "down"):
            raise ValueError(f"PreActResBlock: unknown resample {resample!r}; known: None, "
                             f"'up', 'down'")
        if downsample not in ("avg", "stride"):
            raise ValueError(f"PreActResBlock: unknown downsample {downsample!r}; known: "
                             f"'avg', 'stride'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resample, self.downsample = resample, downsample
        strided = resample == "down" and downsample == "stride"
        self.norm1 = make_norm(norm, in_channels, num_groups)
        self.conv1 = _sn(nn.Conv2d(in_channels, out_channels, 3, stride=2 if strided else 1,
                                   padding=1, generator=generator), spectral_norm)
        self.norm2 = make_norm(norm, out_channels, num_groups)
        self.conv2 = _sn(nn.Conv2d(out_channels, out_channels, 3, padding=1,
                                   generator=generator), spectral_norm)
        if in_channels != out_channels or strided:
            self.shortcut = _sn(nn.Conv2d(in_channels, out_channels, 1, stride=2 if strided else 1,
                                          generator=generator), spectral_norm)
        else:
            self.shortcut = None
        self.act = make_activation(activation, negative_slope)

    def _up(self, h):
        return F.interpolate(h, scale_factor=2, mode="nearest")

    def forward(self, x):
        """x (N, in_channels, H, W) -> (N, out_channels, H', W')."""
        check_image(x, f"PreActResBlock(in_channels={self.in_channels})", self.in_channels)
        avg_down = self.resample == "down" and self.downsample == "avg"
        h = self.act(self.norm1(x))
        if self.resample == "up":
            h = self._up(h)
        h = self.conv1(h)
        h = self.conv2(self.act(self.norm2(h)))
        if avg_down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.resample == "up":
            s = self._up(s)
        elif avg_down:
            s = F.avg_pool2d(s, 2)
        if self.shortcut is not None:
            s = self.shortcut(s)
        return h + s

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, resample={self.resample!r}, "
                f"downsample={self.downsample!r}")


class ResNet(nn.Module):
    """A small pre-activation ResNet classifier / feature network.

    (N, in_channels, H, W) -> (N, num_classes) logits, or (N, widths[-1]) features when
    num_classes is None. Stem 3x3 conv to widths[0]; stage i has ``blocks_per_stage``
    PreActResBlocks of width widths[i], the first of stages i >= 1 downsampling by 2; then the
    final norm-act that pre-activation networks need (He et al. 2016, Sec. 4.1), global average
    pooling and a Linear layer ``fc``.
    """

    def __init__(self, in_channels=1, num_classes=10, widths=(32, 64, 128), blocks_per_stage=1,
                 norm="batch", activation="relu", downsample="avg", num_groups=32,
                 spectral_norm=False, generator=None):
        super().__init__()
        widths = tuple(widths)
        check_positive_ints("ResNet", in_channels=in_channels, blocks_per_stage=blocks_per_stage,
                        **{f"widths[{i}]": w for i, w in enumerate(widths)})
        if not widths:
            raise ValueError("ResNet: widths must hold at least one stage width")
        self.in_channels, self.num_classes, self.widths = in_channels, num_classes, widths
        self.stem = _sn(nn.Conv2d(in_channels, widths[0], 3, padding=1, generator=generator),
                        spectral_norm)
        blocks, prev = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks_per_stage):
                blocks.append(PreActResBlock(
                    prev, w, resample="down" if i > 0 and j == 0 else None, norm=norm,
                    activation=activation, downsample=downsample, num_groups=num_groups,
                    spectral_norm=spectral_norm, generator=generator))
                prev = w
        self.blocks = nn.Sequential(*blocks)
        self.norm = make_norm(norm, prev, num_groups)
        self.act = make_activation(activation)
        self.fc = None if num_classes is None else _sn(
            nn.Linear(prev, num_classes, generator=generator), spectral_norm)

    def forward(self, x):
        """x (N, in_channels, H, W) -> (N, num_classes) or (N, widths[-1])."""
        check_image(x, f"ResNet(in_channels={self.in_channels})", self.in_channels)
        h = self.act(self.norm(self.blocks(self.stem(x))))
        h = h.mean(dim=(2, 3))
        return h if self.fc is None else self.fc(h)


class ResNetGenerator(nn.Module):
    """ResNet generator (Gulrajani et al. 2017, appendix F; Miyato et al. 2018, Table 4).

    z (N, z_dim) -> x (N, out_channels, image_size, image_size) in (-1, 1): Linear to
    (width, s0, s0), k upsampling PreActResBlocks, norm-act, 3x3 conv, tanh.
    """

    def __init__(self, z_dim=128, out_channels=3, image_size=32, width=128, norm="batch",
                 activation="relu", num_groups=32, generator=None):
        super().__init__()
        check_positive_ints("ResNetGenerator", z_dim=z_dim, out_channels=out_channels, width=width)
        self.s0, k = base_size(image_size)
        self.z_dim, self.image_size, self.width = z_dim, image_size, width
        self.fc = nn.Linear(z_dim, width * self.s0 * self.s0, generator=generator)
        self.blocks = nn.Sequential(*[
            PreActResBlock(width, width, resample="up", norm=norm, activation=activation,
                           num_groups=num_groups, generator=generator) for _ in range(k)])
        self.norm = make_norm(norm, width, num_groups)
        self.act = make_activation(activation)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1, generator=generator)

    def forward(self, z):
        """z (N, z_dim) -> (N, out_channels, image_size, image_size)."""
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"ResNetGenerator(z_dim={self.z_dim}): z must be (N, {self.z_dim}), "
                             f"got {tuple(getattr(z, 'shape', ()))}")
        h = self.fc(z).reshape(z.shape[0], self.width, self.s0, self.s0)
        h = self.act(self.norm(self.blocks(h)))
        return self.conv_out(h).tanh()


class ResNetCritic(nn.Module):
    """ResNet critic / discriminator / energy network (Gulrajani et al. 2017; Miyato et al. 2018).

    x (N, in_channels, image_size, image_size) -> (N,) scores: 3x3 stem conv, k downsampling
    PreActResBlocks and one at the base resolution, act, global average pooling, Linear to 1.
    ``norm='none'`` by default (WGAN-GP: no batch norm in the critic, the gradient penalty
    is per sample); ``spectral_norm=True`` normalises every conv and the Linear.
    """

    def __init__(self, in_channels=3, image_size=32, width=128, norm="none", activation="relu",
                 downsample="avg", num_groups=32, spectral_norm=False, generator=None):
        super().__init__()
        check_positive_ints("ResNetCritic", in_channels=in_channels, width=width)
        _, k = base_size(image_size)
        self.in_channels, self.image_size = in_channels, image_size
        self.stem = _sn(nn.Conv2d(in_channels, width, 3, padding=1, generator=generator),
                        spectral_norm)
        self.blocks = nn.Sequential(*[
            PreActResBlock(width, width, resample="down" if i < k else None, norm=norm,
                           activation=activation, downsample=downsample, num_groups=num_groups,
                           spectral_norm=spectral_norm, generator=generator)
            for i in range(k + 1)])
        self.act = make_activation(activation)
        self.fc = _sn(nn.Linear(width, 1, generator=generator), spectral_norm)

    def forward(self, x):
        """x (N, in_channels, image_size, image_size) -> (N,)."""
        check_image(x, f"ResNetCritic(in_channels={self.in_channels}, "
                        f"image_size={self.image_size})", self.in_channels, self.image_size)
        h = self.act(self.blocks(self.stem(x))).mean(dim=(2, 3))
        return self.fc(h).reshape(x.shape[0])


def dcgan_init_(module, generator=None):
    """DCGAN initialisation in place (Radford et al. 2016, Sec. 4): every Conv2d /
    ConvTranspose2d weight ~ N(0, 0.02^2) (``weight_orig`` under spectral norm) and bias 0;
    BatchNorm2d weight ~ N(1, 0.02^2), bias 0. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            w = m._parameters.get("weight_orig", m._parameters.get("weight"))
            nn.init.normal_(w, 0.0, 0.02, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(m.bias)
    return module


def _dcgan_norm(norm, who):
    if norm not in ("batch", "none"):
        raise ValueError(f"{who}: unknown norm {norm!r}; known: 'batch', 'none'")
    return norm == "batch"


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016, Fig. 1): z (N, z_dim) or (N, z_dim, 1, 1) ->
    x (N, channels, image_size, image_size) in (-1, 1).

    ``main``: ConvTranspose2d(z_dim, C0, s0) [BN] ReLU, then k-1 times ConvTranspose2d(C, C/2,
    4, 2, 1) [BN] ReLU, then ConvTranspose2d(C, channels, 4, 2, 1) Tanh; C0 = base_width *
    2**(k-1). ``norm='none'`` drops the batch norms (and gives those layers biases).
    ``init=True`` applies ``dcgan_init_``; ``init=False`` keeps PyTorch's default init.
    """

    def __init__(self, z_dim=100, channels=3, base_width=64, image_size=64, norm="batch",
                 init=True, generator=None):
        super().__init__()
        check_positive_ints("DCGANGenerator", z_dim=z_dim, channels=channels, base_width=base_width)
        bn = _dcgan_norm(norm, "DCGANGenerator")
        s0, k = base_size(image_size)
        self.z_dim, self.channels, self.image_size = z_dim, channels, image_size
        w = base_width * 2 ** (k - 1)
        layers = [nn.ConvTranspose2d(z_dim, w, s0, 1, 0, bias=not bn, generator=generator)]
        layers += [nn.BatchNorm2d(w)] if bn else []
        layers += [nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=not bn, generator=generator)]
            layers += [nn.BatchNorm2d(w // 2)] if bn else []
            layers += [nn.ReLU(True)]
            w //= 2
        layers += [nn.ConvTranspose2d(w, channels, 4, 2, 1, generator=generator), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        if init:
            dcgan_init_(self, generator)

    def forward(self, z):
        """z (N, z_dim) or (N, z_dim, 1, 1) -> (N, channels, image_size, image_size)."""
        if not isinstance(z, Tensor):
            raise TypeError(f"DCGANGenerator: z must be a Tensor, got {type(z).__name__}")
        if z.ndim == 2 and z.shape[1] == self.z_dim:
            z = z.reshape(z.shape[0], self.z_dim, 1, 1)
        elif not (z.ndim == 4 and tuple(z.shape[1:]) == (self.z_dim, 1, 1)):
            raise ValueError(f"DCGANGenerator(z_dim={self.z_dim}): z must be (N, {self.z_dim}) "
                             f"or (N, {self.z_dim}, 1, 1), got shape {tuple(z.shape)}")
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2016): x (N, channels, image_size, image_size) ->
    (N,) logits.

    ``main``: Conv2d(channels, B, 4, 2, 1) LeakyReLU(0.2) (no batch norm on the first layer),
    then k-1 times Conv2d(C, 2C, 4, 2, 1) [BN] LeakyReLU(0.2), then Conv2d(C, 1, s0) to one
    logit. ``norm='none'`` for WGAN-GP critics (no batch norm in the critic);
    ``spectral_norm=True`` normalises every convolution (Miyato et al. 2018).
    """

    def __init__(self, channels=3, base_width=64, image_size=64, norm="batch",
                 spectral_norm=False, negative_slope=0.2, init=True, generator=None):
        super().__init__()
        check_positive_ints("DCGANDiscriminator", channels=channels, base_width=base_width)
        bn = _dcgan_norm(norm, "DCGANDiscriminator")
        s0, k = base_size(image_size)
        self.channels, self.image_size = channels, image_size
        w = base_width
        layers = [nn.Conv2d(channels, w, 4, 2, 1, generator=generator),
                  nn.LeakyReLU(negative_slope, True)]
        for _ in range(k - 1):
            layers += [nn.Conv2d(w, 2 * w, 4, 2, 1, bias=not bn, generator=generator)]
            layers += [nn.BatchNorm2d(2 * w)] if bn else []
            layers += [nn.LeakyReLU(negative_slope, True)]
            w *= 2
        layers += [nn.Conv2d(w, 1, s0, 1, 0, generator=generator)]
        self.main = nn.Sequential(*layers)
        if init:
            dcgan_init_(self, generator)
        if spectral_norm:  # after the init, so that it draws weight_orig
            for m in self.main:
                if isinstance(m, nn.Conv2d):
                    _spectral_norm(m, generator=generator)

    def forward(self, x):
        """x (N, channels, image_size, image_size) -> (N,) logits."""
        check_image(x, f"DCGANDiscriminator(channels={self.channels}, "
                        f"image_size={self.image_size})", self.channels, self.image_size)
        return self.main(x).reshape(x.shape[0])
