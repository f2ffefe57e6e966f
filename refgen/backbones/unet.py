"""The diffusion U-Net of DDPM (Ho et al. 2020) and improved DDPM (Nichol & Dhariwal 2021).

A U-Net (Ronneberger et al. 2015) maps a noisy image x_t and its timestep t (and optionally
a class label y) to an image of the same size: the noise prediction eps_theta(x_t, t), a
score s_theta, or x_0. The layout is DDPM's (Ho et al. 2020, Appendix B), with improved
DDPM's options (Nichol & Dhariwal 2021, Sections 3 and 4; their "ADM" code):

    emb = MLP(sinusoidal(t)) [+ label_emb(y)]        MLP: Linear - SiLU - Linear, 4 * model_channels
    down:   conv_in, then per level l: num_res_blocks x [ResBlock, (Attention)], Downsample (l < L-1)
    middle: ResBlock, Attention, ResBlock
    up:     per level, deepest first: (num_res_blocks + 1) x [concat skip, ResBlock, (Attention)],
            Upsample (l > 0)
    out:    GroupNorm, SiLU, conv_out (3x3)

Every activation that the down path produces (after conv_in, each block, each downsample) is
concatenated on the channel axis to the input of one up-path ResBlock, last in first out.

Parameter names follow ADM's UNetModel (``input_blocks``, ``middle_block``, ``output_blocks``,
``out``, ``time_embed``, ``label_emb``; inside a ResBlock ``in_layers``, ``emb_layers``,
``out_layers``, ``skip_connection``; inside attention ``norm``, ``qkv``, ``proj_out``), so
that a PyTorch model written the same way (tests/refgen/backbones/test_unet_crosscheck.py)
loads 1:1 through ``load_state_dict``.

Zero initialisation (improved DDPM, following Goyal et al. 2017's zero-gamma trick): the last
convolution of each ResBlock and each attention block's ``proj_out`` start at zero, so every
residual branch is the identity at initialisation (``zero_init=True``), and the output
convolution starts at zero so a fresh model predicts 0 (``zero_init_out=True``). Turn them off
for gradient checks, where zero weights would hide most of the derivatives.
"""
import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff import nn

from ._checks import check_embedding, check_even, check_image, check_known
from .embeddings import timestep_embedding
from .init import zero_module_

__all__ = ["UNet", "ResBlock", "AttentionBlock", "Downsample", "Upsample", "EmbedSequential"]

_QKV_ORDERS = ("heads_first", "qkv_first")


class Downsample(nn.Module):
    """Halve H and W: a 3x3 convolution with stride 2 (``use_conv``) or 2x2 average pooling.

    ``op`` is the convolution (absent when pooling). Shapes: (N, C, H, W) -> (N, C_out, H/2, W/2)
    with H, W even.
    """

    def __init__(self, channels, use_conv, out_channels=None, dtype=None, generator=None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        if use_conv:
            self.op = nn.Conv2d(channels, self.out_channels, 3, stride=2, padding=1, dtype=dtype,
                                generator=generator)
        elif self.out_channels != channels:
            raise ValueError(f"Downsample: pooling keeps the channels ({channels}); "
                             f"out_channels={out_channels} needs use_conv=True")

    def forward(self, x):
        check_image(x, "Downsample", self.channels)
        check_even(x, "Downsample")
        return self.op(x) if self.use_conv else F.avg_pool2d(x, 2, 2)

    def extra_repr(self):
        return "" if self.use_conv else f"{self.channels}, avg_pool2d(2)"


class Upsample(nn.Module):
    """Double H and W by nearest-neighbour interpolation, then a 3x3 convolution (``use_conv``).

    Shapes: (N, C, H, W) -> (N, C_out, 2H, 2W).
    """

    def __init__(self, channels, use_conv, out_channels=None, dtype=None, generator=None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, self.out_channels, 3, padding=1, dtype=dtype,
                                  generator=generator)
        elif self.out_channels != channels:
            raise ValueError(f"Upsample: nearest interpolation keeps the channels ({channels}); "
                             f"out_channels={out_channels} needs use_conv=True")

    def forward(self, x):
        check_image(x, "Upsample", self.channels)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x

    def extra_repr(self):
        return "" if self.use_conv else f"{self.channels}, nearest x2"


class ResBlock(nn.Module):
    """Residual block conditioned on an embedding (DDPM; improved DDPM's scale-shift norm).

        h = Conv3x3(SiLU(GroupNorm(x)))                                  in_layers
        e = Linear(SiLU(emb))                                            emb_layers
        plain:        h = Conv3x3(Dropout(SiLU(GroupNorm(h + e))))       out_layers
        scale-shift:  (scale, shift) = split(e);                         Nichol & Dhariwal 2021
                      h = Conv3x3(Dropout(SiLU(GroupNorm(h) * (1 + scale) + shift)))
        out = skip(x) + h        skip = identity, or a 1x1 convolution when channels change

    With ``up``/``down`` (improved DDPM's ``resblock_updown``) both x and the branch are
    resampled (nearest x2 / 2x2 average pooling, no parameters) between the first
    normalisation and the first convolution.

    Shapes: x (N, channels, H, W), emb (N, emb_channels) -> (N, out_channels, H', W'),
    H' = 2H (up), H/2 (down) or H.
    """

    def __init__(self, channels, emb_channels, dropout=0.0, out_channels=None,
                 use_scale_shift_norm=False, num_groups=32, up=False, down=False,
                 zero_init=True, dtype=None, generator=None):
        super().__init__()
        if up and down:
            raise ValueError("ResBlock: up and down cannot both be True")
        self.channels = channels
        self.emb_channels = emb_channels
        self.out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.up, self.down = up, down
        kw = dict(dtype=dtype, generator=generator)
        self.in_layers = nn.Sequential(
            nn.GroupNorm(num_groups, channels, dtype=dtype),
            nn.SiLU(),
            nn.Conv2d(channels, self.out_channels, 3, padding=1, **kw),
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, (2 if use_scale_shift_norm else 1) * self.out_channels, **kw),
        )
        self.out_layers = nn.Sequential(
            nn.GroupNorm(num_groups, self.out_channels, dtype=dtype),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1, **kw),
        )
        if zero_init:
            zero_module_(self.out_layers[3])
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, self.out_channels, 1, **kw)

    def _resample(self, x):
        if self.up:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.down:
            return F.avg_pool2d(x, 2, 2)
        return x

    def forward(self, x, emb):
        check_image(x, "ResBlock", self.channels)
        check_embedding(emb, "ResBlock", x.shape[0], self.emb_channels)
        if self.down:
            check_even(x, "ResBlock(down=True)")
        norm, act, conv = self.in_layers
        h = act(norm(x))
        h = conv(self._resample(h))     # resample before the conv: the conv runs at the new size
        x = self._resample(x)
        e = self.emb_layers(emb)[:, :, None, None]                       # (N, C' or 2C', 1, 1)
        out_norm, out_rest = self.out_layers[0], self.out_layers[1:]
        if self.use_scale_shift_norm:
            scale, shift = e.chunk(2, dim=1)
            h = out_rest(out_norm(h) * (1 + scale) + shift)
        else:
            h = out_rest(out_norm(h + e))
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map, residual.

        q, k, v = split(qkv(GroupNorm(x)))        qkv: 1x1 Conv1d, C -> 3C
        out = x + proj_out(concat_heads(softmax(q^T k / sqrt(d)) v))   d = C / num_heads

    (Vaswani et al. 2017, Eq. 1; as used at 16x16 in DDPM and at several resolutions in
    improved DDPM.) ``qkv_order`` says how the 3C channels of ``qkv`` are laid out:
    ``"heads_first"`` = [head 0: q, k, v | head 1: q, k, v | ...] (ADM's default, "legacy"
    order, which its released checkpoints use); ``"qkv_first"`` = [q: all heads | k | v]
    (ADM's ``use_new_attention_order``). ``proj_out`` starts at zero when ``zero_init``, so
    the block is the identity at initialisation.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels, num_heads=1, num_head_channels=-1, num_groups=32,
                 qkv_order="heads_first", zero_init=True, dtype=None, generator=None):
        super().__init__()
        if num_head_channels != -1:
            if num_head_channels <= 0 or channels % num_head_channels:
                raise ValueError(f"AttentionBlock: channels ({channels}) must be divisible by "
                                 f"num_head_channels ({num_head_channels})")
            num_heads = channels // num_head_channels
        if num_heads <= 0 or channels % num_heads:
            raise ValueError(f"AttentionBlock: channels ({channels}) must be divisible by "
                             f"num_heads ({num_heads})")
        check_known(qkv_order, "AttentionBlock", "qkv_order", _QKV_ORDERS)
        self.channels = channels
        self.num_heads = num_heads
        self.qkv_order = qkv_order
        kw = dict(dtype=dtype, generator=generator)
        self.norm = nn.GroupNorm(num_groups, channels, dtype=dtype)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1, **kw)
        self.proj_out = nn.Conv1d(channels, channels, 1, **kw)
        if zero_init:
            zero_module_(self.proj_out)

    def forward(self, x):
        check_image(x, "AttentionBlock", self.channels)
        n, c, hgt, wid = x.shape
        heads, d = self.num_heads, c // self.num_heads
        flat = x.reshape(n, c, hgt * wid)                                 # (N, C, T)
        qkv = self.qkv(self.norm(flat))                                   # (N, 3C, T)
        if self.qkv_order == "heads_first":
            q, k, v = qkv.reshape(n, heads, 3 * d, hgt * wid).chunk(3, dim=2)
        else:
            q, k, v = (part.reshape(n, heads, d, hgt * wid) for part in qkv.chunk(3, dim=1))
        # (N, heads, d, T) -> (N, heads, T, d): positions are the attention's sequence axis.
        a = F.scaled_dot_product_attention(q.transpose(2, 3), k.transpose(2, 3),
                                           v.transpose(2, 3))
        a = a.transpose(2, 3).reshape(n, c, hgt * wid)                    # heads concatenated
        return (flat + self.proj_out(a)).reshape(n, c, hgt, wid)

    def extra_repr(self):
        return f"num_heads={self.num_heads}, qkv_order={self.qkv_order!r}"


class EmbedSequential(nn.Sequential):
    """A Sequential whose ResBlocks also receive the embedding: forward(x, emb)."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


def _as_int_tuple(value, what):
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"UNet: {what} must be a sequence of ints, got {value!r}") from None
    return out


class UNet(nn.Module):
    """DDPM / improved-DDPM U-Net: (x, t[, y]) -> a tensor shaped like x (out_channels).

    :param in_channels, out_channels: image channels in and out (out: 2 * in when a model also
        predicts variances, as improved DDPM's learned Sigma).
    :param model_channels: channels at the first level; level l has
        ``model_channels * channel_mult[l]``.
    :param channel_mult: one multiplier per resolution level, e.g. (1, 2) or (1, 2, 2);
        H and W must be divisible by 2^(len(channel_mult) - 1).
    :param num_res_blocks: ResBlocks per level on the way down (num_res_blocks + 1 up).
    :param attention_resolutions: feature-map sizes (e.g. (16,) as DDPM at 32x32, or (16, 8))
        at which self-attention follows each ResBlock; needs ``image_size``.
    :param image_size: the input's H = W; required when attention_resolutions is not empty
        (the sizes locate levels), otherwise None allows any divisible H, W.
    :param num_heads, num_head_channels: attention heads (num_head_channels, if not -1,
        fixes the channels per head instead); ``qkv_order`` as in :class:`AttentionBlock`.
    :param dropout: dropout in every ResBlock (DDPM: 0.1 on CIFAR-10).
    :param num_groups: GroupNorm groups (32 in the papers); every level's channels must be
        divisible by it.
    :param num_classes: None, or the number of classes: ``label_emb(y)`` is added to the time
        embedding. With ``cfg=True`` the table has one more row, index ``num_classes``
        (``self.null_class``), the learned "no label" token of classifier-free guidance
        (Ho & Salimans 2022); ``y=None`` then means "all null".
    :param use_scale_shift_norm: FiLM-style conditioning, GroupNorm(h) * (1 + scale) + shift
        (improved DDPM) instead of adding the embedding before the norm (DDPM).
    :param resblock_updown: down/upsample inside ResBlocks (improved DDPM) instead of with
        ``Downsample``/``Upsample`` layers; ``conv_resample`` says whether those use a conv.
    :param mid_attention: the attention block in the middle (DDPM and ADM always have it).
    :param flip_sin_to_cos, max_period, freq_shift: the sinusoidal time embedding's convention
        (see refgen.backbones.embeddings): True = ADM's [cos | sin]; omega_i =
        max_period^(-i / (half - freq_shift)), freq_shift 0 as ADM and diffusers' UNet2DModel
        default, 1 as the DDPM TensorFlow code.
    :param zero_init, zero_init_out: zero the residual branches' last layers / conv_out at
        initialisation (module docstring).

    forward(x (N, in_channels, H, W), t (N,) or scalar (int or float timesteps), y (N,) int64
    or None) -> (N, out_channels, H, W).
    """

    def __init__(self, in_channels=3, out_channels=None, model_channels=64, channel_mult=(1, 2),
                 num_res_blocks=2, attention_resolutions=(), image_size=None, num_heads=1,
                 num_head_channels=-1, qkv_order="heads_first", dropout=0.0, num_groups=32,
                 num_classes=None, cfg=False, use_scale_shift_norm=False, resblock_updown=False,
                 conv_resample=True, mid_attention=True, time_embed_dim=None,
                 flip_sin_to_cos=True, max_period=10000.0, freq_shift=0, zero_init=True,
                 zero_init_out=True, dtype=None, generator=None):
        super().__init__()
        channel_mult = _as_int_tuple(channel_mult, "channel_mult")
        attention_resolutions = _as_int_tuple(attention_resolutions, "attention_resolutions")
        if not channel_mult or min(channel_mult) < 1:
            raise ValueError(f"UNet: channel_mult must be non-empty positive ints, got {channel_mult}")
        if num_res_blocks < 1:
            raise ValueError(f"UNet: num_res_blocks must be >= 1, got {num_res_blocks}")
        if model_channels < 1 or in_channels < 1:
            raise ValueError(f"UNet: in_channels ({in_channels}) and model_channels "
                             f"({model_channels}) must be positive")
        if cfg and num_classes is None:
            raise ValueError("UNet: cfg=True needs num_classes (the null token is one more class)")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"UNet: num_classes must be None or >= 1, got {num_classes}")
        levels = len(channel_mult)
        factor = 2 ** (levels - 1)
        if image_size is not None and image_size % factor:
            raise ValueError(f"UNet: image_size {image_size} is not divisible by "
                             f"2^(len(channel_mult)-1) = {factor}")
        if attention_resolutions:
            if image_size is None:
                raise ValueError("UNet: attention_resolutions are feature-map sizes; give "
                                 "image_size so they can be located")
            sizes = [image_size // 2 ** lvl for lvl in range(levels)]
            unknown = [r for r in attention_resolutions if r not in sizes]
            if unknown:
                raise ValueError(f"UNet: attention_resolutions {unknown} match no level; the "
                                 f"feature-map sizes of image_size {image_size} are {sizes}")
        for mult in set(channel_mult):
            if (model_channels * mult) % num_groups:
                raise ValueError(f"UNet: num_groups ({num_groups}) must divide every level's "
                                 f"channels; model_channels * {mult} = {model_channels * mult}")

        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.model_channels = model_channels
        self.channel_mult = channel_mult
        self.num_res_blocks = num_res_blocks
        self.attention_resolutions = attention_resolutions
        self.image_size = image_size
        self.num_classes = num_classes
        self.cfg = cfg
        self.flip_sin_to_cos = flip_sin_to_cos
        self.max_period = max_period
        self.freq_shift = freq_shift
        self.num_heads, self.num_head_channels, self.qkv_order = num_heads, num_head_channels, qkv_order
        self.dropout, self.num_groups = dropout, num_groups
        self.use_scale_shift_norm, self.resblock_updown = use_scale_shift_norm, resblock_updown
        self.conv_resample, self.mid_attention = conv_resample, mid_attention
        self.time_embed_dim = time_embed_dim or 4 * model_channels
        emb = self.time_embed_dim
        kw = dict(dtype=dtype, generator=generator)

        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb, **kw), nn.SiLU(),
                                        nn.Linear(emb, emb, **kw))
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes + (1 if cfg else 0), emb, **kw)

        def res(ch_in, ch_out, **extra):
            return ResBlock(ch_in, emb, dropout, ch_out, use_scale_shift_norm, num_groups,
                            zero_init=zero_init, **extra, **kw)

        def attn(ch):
            return AttentionBlock(ch, num_heads, num_head_channels, num_groups, qkv_order,
                                  zero_init, **kw)

        def has_attention(level):
            return image_size is not None and image_size // 2 ** level in attention_resolutions

        ch = model_channels
        skip_channels = [ch]     # channels of each activation kept for the up path
        self.input_blocks = nn.ModuleList(
            [EmbedSequential(nn.Conv2d(in_channels, ch, 3, padding=1, **kw))])
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [res(ch, model_channels * mult)]
                ch = model_channels * mult
                if has_attention(level):
                    layers.append(attn(ch))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_channels.append(ch)
            if level != levels - 1:
                down = res(ch, ch, down=True) if resblock_updown \
                    else Downsample(ch, conv_resample, **kw)
                self.input_blocks.append(EmbedSequential(down))
                skip_channels.append(ch)

        middle = [res(ch, ch)] + ([attn(ch)] if mid_attention else []) + [res(ch, ch)]
        self.middle_block = EmbedSequential(*middle)

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), model_channels * mult)]
                ch = model_channels * mult
                if has_attention(level):
                    layers.append(attn(ch))
                if level and i == num_res_blocks:
                    layers.append(res(ch, ch, up=True) if resblock_updown
                                  else Upsample(ch, conv_resample, **kw))
                self.output_blocks.append(EmbedSequential(*layers))

        self.out = nn.Sequential(nn.GroupNorm(num_groups, ch, dtype=dtype), nn.SiLU(),
                                 nn.Conv2d(ch, self.out_channels, 3, padding=1, **kw))
        if zero_init_out:
            zero_module_(self.out[2])

    @property
    def null_class(self):
        """The label index of the learned null token (classifier-free guidance), or None."""
        return self.num_classes if self.cfg else None

    # ------------------------------------------------------------------ input checks
    def _check_x(self, x):
        check_image(x, "UNet", self.in_channels)
        hgt, wid = x.shape[2], x.shape[3]
        factor = 2 ** (len(self.channel_mult) - 1)
        if hgt % factor or wid % factor:
            raise ValueError(f"UNet: H and W must be divisible by 2^(len(channel_mult)-1) = "
                             f"{factor} (channel_mult={self.channel_mult}), got shape "
                             f"{tuple(x.shape)}")
        if self.image_size is not None and (hgt, wid) != (self.image_size, self.image_size):
            raise ValueError(f"UNet(image_size={self.image_size}): input must be "
                             f"{self.image_size}x{self.image_size}, got shape {tuple(x.shape)}")

    def _timesteps(self, t, n):
        if not isinstance(t, autodiff.Tensor):
            t = autodiff.as_tensor(B.xp.asarray(t))
        if t.ndim == 0:
            t = t.reshape(1).expand(n)
        if t.shape != (n,):
            raise ValueError(f"UNet: t must have shape (N,) = ({n},) or be a scalar, got "
                             f"{tuple(t.shape)}")
        if t.dtype.kind not in "iuf":
            raise TypeError(f"UNet: t must hold integer or float timesteps, got {t.dtype}")
        return t

    def _labels(self, y, n):
        if self.num_classes is None:
            if y is not None:
                raise ValueError("UNet: y given but the model was built with num_classes=None")
            return None
        if y is None:
            if not self.cfg:
                raise ValueError(f"UNet: y (N,) class labels are required (num_classes="
                                 f"{self.num_classes}, cfg=False)")
            return autodiff.full((n,), self.null_class, dtype=autodiff.int64)
        if not isinstance(y, autodiff.Tensor):
            y = autodiff.as_tensor(B.xp.asarray(y))
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise ValueError(f"UNet: y must be (N,) = ({n},) integer labels, got shape "
                             f"{tuple(y.shape)} dtype {y.dtype}")
        high = self.num_classes + (1 if self.cfg else 0)
        if n and (int(y.data.min()) < 0 or int(y.data.max()) >= high):
            allowed = f"0..{self.num_classes - 1}" + (f" or the null class {self.null_class}"
                                                      if self.cfg else "")
            raise ValueError(f"UNet: labels must be in {allowed}; got values in "
                             f"[{int(y.data.min())}, {int(y.data.max())}]")
        return y

    # ------------------------------------------------------------------ forward
    def embed(self, t, y=None, n=None, dtype=None):
        """The conditioning vector emb = MLP(sinusoidal(t)) [+ label_emb(y)], (N, time_embed_dim)."""
        n = n if n is not None else (1 if getattr(t, "ndim", 1) == 0 else len(t))
        t = self._timesteps(t, n)
        y = self._labels(y, n)
        dtype = dtype or self.time_embed[0].weight.dtype
        emb = self.time_embed(timestep_embedding(t, self.model_channels, self.max_period,
                                                 self.flip_sin_to_cos, self.freq_shift,
                                                 dtype=dtype))
        if y is not None:
            emb = emb + self.label_emb(y)
        return emb

    def forward(self, x, t, y=None):
        self._check_x(x)
        emb = self.embed(t, y, n=x.shape[0], dtype=x.dtype)
        h, skips = x, []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(autodiff.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
