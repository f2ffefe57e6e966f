"""Caption-conditioned DDPM: a U-Net that cross-attends to the encoded caption, trained with
caption dropout and sampled with classifier-free guidance.

The network eps_theta(x_t, t, c) is the DDPM U-Net (``refgen.backbones.unet.UNet``) with a
cross-attention block after every block of the down path, the middle and the up path
(Rombach et al. 2022, Sec. 3.3, the conditioning of latent diffusion):

    h <- h + MultiHead(Q = LN(h), K = V = context)          context = CaptionEncoder(c)

so every pixel position can read every word; and (GLIDE, Nichol et al. 2022, Sec. 2.3) the
mean of the context over the caption's words is projected and added to the time embedding,
which conditions every ResBlock. The encoder and the U-Net are trained together.

Training (Ho et al. 2020, Algorithm 1; Ho & Salimans 2022, Algorithm 1): x_0 scaled to
[-1, 1], the caption replaced by the null caption with probability p_uncond, t ~ U{0..T-1},
eps ~ N(0, I), x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, and

    L_simple = E || eps - eps_theta(x_t, t, c) ||^2                       (Ho et al. Eq. 14)

Sampling: DDIM (Song et al. 2021a, Eq. 12, eta = 0) on respaced timesteps with the guided
noise prediction (Ho & Salimans 2022, Eq. 6)

    eps_guided = (1 + w) eps_theta(x_t, t, c) - w eps_theta(x_t, t, null),

w = 0 the conditional model. The schedule, the DDIM step and the guidance formula are the
diffusion family's (``refgen.families.diffusion``, ``refgen.conditioning``), not rewritten.
"""
import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff import nn

from ...backbones.unet import UNet
from ...conditioning import CrossAttention, classifier_free_guidance
from ...families.diffusion import samplers as S
from ...families.diffusion.schedules import NoiseSchedule, space_timesteps
from .encoder import CaptionEncoder
from .text import VOCAB, drop_captions, null_tokens, with_overrides

__all__ = ["CaptionUNet", "TextToImageDenoiser", "CaptionDiffusion", "diffusion_config"]


def _out_channels(block):
    """Channels a U-Net block (an EmbedSequential) outputs: those of its last layer."""
    last = list(block)[-1]
    return getattr(last, "out_channels", None) or last.channels


def _masked_mean(context, padding_mask):
    """Mean over the non-padded words: context (B, S, d), mask (B, S) True at padding ->
    (B, d)."""
    keep = autodiff.Tensor((~padding_mask).astype(context.dtype)[:, :, None])   # (B, S, 1)
    return (context * keep).sum(dim=1) / keep.sum(dim=1)


class CaptionUNet(UNet):
    """The DDPM U-Net with cross-attention to a context sequence (module docstring).

    :param context_dim: D_c, the width of the context vectors
    :param cross_heads: heads of each cross-attention (every level's channels divisible)
    :param pooled_context: add Linear(mean of the context) to the time embedding
    :param coord_channel: append the column coordinate j / H as one more input channel
        (CoordConv, Liu et al. 2018), so that "left of" has a place to attach to; measured
        in units of the height, a two-digit canvas's left half reads as a one-digit canvas
        and the same weights serve both
    :param unet_kwargs: the ``UNet`` options (no class labels: ``num_classes`` stays None)

    Parameters beyond the UNet's: ``input_cross.i``, ``middle_cross``, ``output_cross.i``
    (``refgen.conditioning.CrossAttention``), ``context_embed`` (Linear(D_c, time_embed_dim)).

    forward(x (N, C, H, W), t (N,), context (N, S, D_c), context_padding_mask (N, S) bool or
    None) -> (N, out_channels, H, W).
    """

    def __init__(self, context_dim, cross_heads=1, pooled_context=True, coord_channel=False,
                 generator=None, **unet_kwargs):
        if unet_kwargs.get("num_classes") is not None:
            raise ValueError("CaptionUNet: the condition is a caption (context), not a class "
                             f"label; got num_classes={unet_kwargs['num_classes']}")
        self.coord_channel = bool(coord_channel)
        if self.coord_channel:
            channels = unet_kwargs.get("in_channels", 3)
            unet_kwargs = dict(unet_kwargs, in_channels=channels + 1,
                               out_channels=unet_kwargs.get("out_channels") or channels)
        super().__init__(generator=generator, **unet_kwargs)
        self.context_dim = int(context_dim)
        self.pooled_context = bool(pooled_context)

        def cross(ch):
            return CrossAttention(ch, context_dim, cross_heads, generator=generator)

        self.input_cross = nn.ModuleList([cross(_out_channels(b)) for b in self.input_blocks])
        self.middle_cross = cross(_out_channels(self.middle_block))
        self.output_cross = nn.ModuleList([cross(_out_channels(b)) for b in self.output_blocks])
        if self.pooled_context:
            self.context_embed = nn.Linear(context_dim, self.time_embed_dim, generator=generator)

    def _with_coordinates(self, x):
        """x (N, C, H, W) -> (N, C + 1, H, W), the last channel j / H at column j."""
        n, _, h, w = x.shape
        cols = B.xp.arange(w, dtype=x.dtype) / h
        coord = B.xp.broadcast_to(cols, (n, 1, h, w))
        return autodiff.cat([x, autodiff.Tensor(coord)], dim=1)

    def forward(self, x, t, context, context_padding_mask=None):
        if self.coord_channel:
            if not isinstance(x, autodiff.Tensor) or x.ndim != 4:
                raise ValueError(f"CaptionUNet: x must be a Tensor (N, "
                                 f"{self.in_channels - 1}, H, W), got "
                                 f"{getattr(x, 'shape', type(x).__name__)}")
            x = self._with_coordinates(x)
        self._check_x(x)
        n = x.shape[0]
        if not isinstance(context, autodiff.Tensor) or context.ndim != 3 or \
                context.shape[0] != n or context.shape[2] != self.context_dim:
            got = tuple(context.shape) if isinstance(context, autodiff.Tensor) \
                else type(context).__name__
            raise ValueError(f"CaptionUNet: context must be ({n}, S, {self.context_dim}), "
                             f"got {got}")
        mask = context_padding_mask
        if mask is None:
            mask = B.xp.zeros(tuple(context.shape[:2]), dtype=bool)
        elif isinstance(mask, autodiff.Tensor):
            mask = mask.data
        emb = self.embed(t, None, n=n, dtype=x.dtype)
        if self.pooled_context:
            emb = emb + self.context_embed(_masked_mean(context, mask))
        h, skips = x, []
        for block, cross in zip(self.input_blocks, self.input_cross):
            h = cross(block(h, emb), context, mask)
            skips.append(h)
        h = self.middle_cross(self.middle_block(h, emb), context, mask)
        for block, cross in zip(self.output_blocks, self.output_cross):
            h = cross(block(autodiff.cat([h, skips.pop()], dim=1), emb), context, mask)
        return self.out(h)


class TextToImageDenoiser(nn.Module):
    """eps_theta(x_t, t, c) = CaptionUNet(x_t, t, CaptionEncoder(c)): the caption encoder and
    the U-Net as one module (``encoder``, ``unet``).

    forward(x_t (N, C, H, W), t (N,), tokens (N, S) int) -> eps_hat (N, C, H, W).
    """

    def __init__(self, config, generator=None):
        super().__init__()
        c, h, w = config["image_shape"]
        self.encoder = CaptionEncoder(config["vocab_size"], config["caption_length"],
                                      config["d_model"], config["nhead"],
                                      config["encoder_layers"], generator=generator)
        self.unet = CaptionUNet(config["d_model"], config["cross_heads"],
                                config["pooled_context"], config.get("coord_channel", False),
                                generator=generator,
                                in_channels=c, model_channels=config["model_channels"],
                                channel_mult=tuple(config["channel_mult"]),
                                num_res_blocks=config["num_res_blocks"],
                                num_groups=config["num_groups"], zero_init_out=True)

    def forward(self, xt, t, tokens):
        context, mask = self.encoder(tokens)
        return self.unet(xt, t, context, mask)


def diffusion_config(image_shape, caption_length, **overrides):
    """The default configuration for canvases of ``image_shape`` (C, H, W): a 32-channel
    U-Net with levels (1, 2), one ResBlock per level (as the ``ddpm`` family's digits
    model), a 2-layer 64-wide caption encoder, the column coordinate as an input channel,
    T = 1000 with the cosine schedule (Nichol & Dhariwal 2021), p_uncond = 0.1."""
    config = {"image_shape": [int(s) for s in image_shape],
              "caption_length": int(caption_length), "vocab_size": len(VOCAB),
              "d_model": 64, "nhead": 4, "encoder_layers": 2, "model_channels": 32,
              "channel_mult": [1, 2], "num_res_blocks": 1, "num_groups": 8,
              "cross_heads": 4, "pooled_context": True, "coord_channel": True,
              "timesteps": 1000,
              "beta_schedule": "cosine", "p_uncond": 0.1, "sample_steps": 50, "seed": 0}
    return with_overrides(config, overrides, "diffusion_config")


class CaptionDiffusion:
    """The ``Trainable`` (``refgen.train.fit``) of the caption-conditioned DDPM.

    Batches are (x (B, C, H, W) in [0, 1], index (B,)): ``index`` points into ``captions``,
    the (N, J, S) token table of the training set (``text.caption_table``), and each step
    draws one of the J templates per example, so the model sees every phrasing.
    """

    family = "text_to_image_diffusion"

    def __init__(self, config, captions=None):
        self.config = dict(config)
        gen = autodiff.Generator(int(config.get("seed", 0)))
        self.model = TextToImageDenoiser(self.config, generator=gen)
        self.schedule = NoiseSchedule.from_name(config["beta_schedule"], int(config["timesteps"]))
        self.captions = captions

    def modules(self):
        return {"model": self.model}

    def parameter_groups(self):
        return {"model": list(self.model.parameters())}

    def training_step(self, batch, step, ctx):
        x, index = batch
        if self.captions is None:
            raise ValueError("CaptionDiffusion: set .captions (the (N, J, S) token table) "
                             "before training")
        x0 = x * 2.0 - 1.0                                              # [0, 1] -> [-1, 1]
        n = x0.shape[0]
        gen = ctx.generator
        idx = index.data
        template = gen.integers(0, self.captions.shape[1], (n,))
        tokens = drop_captions(self.captions[idx, template], float(self.config["p_uncond"]),
                               generator=gen)
        t = gen.integers(0, self.schedule.num_timesteps, (n,))
        eps = autodiff.randn(*x0.shape, generator=gen, dtype=x0.dtype)
        xt = self.schedule.q_sample(x0, t, eps)
        t_net = autodiff.Tensor(self.schedule.timesteps[t].astype(x0.dtype))
        loss = F.mse_loss(self.model(xt, t_net, tokens), eps)          # Eq. 14
        ctx.optimize("model", loss)
        return {"loss": float(loss.item())}

    def guided_eps(self, xt, t_net, context, mask, null_context, null_mask, guidance):
        """eps_guided = eps(x, c) + w (eps(x, c) - eps(x, null)) (Ho & Salimans 2022, Eq. 6),
        the two predictions from one batch of 2N; w = 0 is one conditional call."""
        unet = self.model.unet
        if not guidance:
            return unet(xt, t_net, context, mask)
        n = xt.shape[0]
        both = unet(autodiff.cat([xt, xt]), autodiff.cat([t_net, t_net]),
                    autodiff.cat([context, null_context]),
                    B.xp.concatenate([mask, null_mask]))
        return classifier_free_guidance(both[:n], both[n:], guidance)

    def sample(self, tokens, generator=None, guidance=0.0, steps=None, clip=True):
        """Images for the captions ``tokens`` (N, S): DDIM (eta = 0) over ``steps`` respaced
        timesteps with guidance weight w = ``guidance``; x0_hat clipped to [-1, 1] at each
        step (``clip``). Returns (N, C, H, W) in [0, 1]."""
        tokens = B.xp.asarray(tokens.data if isinstance(tokens, autodiff.Tensor) else tokens)
        if tokens.ndim != 2 or tokens.shape[1] != self.config["caption_length"]:
            raise ValueError(f"CaptionDiffusion.sample: tokens must be (N, "
                             f"{self.config['caption_length']}), got {tuple(tokens.shape)}")
        if not guidance >= 0.0:
            raise ValueError(f"CaptionDiffusion.sample: guidance must be >= 0, got {guidance!r}")
        steps = int(steps or self.config["sample_steps"])
        n = tokens.shape[0]
        sched = self.schedule.respace(space_timesteps(self.schedule.num_timesteps, steps))
        was_training = self.model.training
        self.model.eval()
        try:
            with autodiff.no_grad():
                context, mask = self.model.encoder(tokens)      # encoded once for all steps
                null_context, null_mask = self.model.encoder(null_tokens(n, tokens.shape[1]))
                dtype = self.model.unet.out[2].weight.dtype

                def chain_model(x, i):
                    idx = B.xp.full((n,), i, dtype=B.numpy.int64)
                    a, s = sched.coefficients(idx, x)
                    t_net = autodiff.Tensor(sched.timesteps[idx].astype(x.dtype))
                    eps = self.guided_eps(x, t_net, context, mask, null_context, null_mask,
                                          guidance)
                    x0 = (x - s * eps) / a
                    if clip:   # as improved DDPM's sampler: x0_hat in the data range
                        x0 = autodiff.clamp(x0, -1.0, 1.0)
                        eps = (x - a * x0) / s
                    return x0, eps, None

                x = autodiff.randn(n, *self.config["image_shape"], generator=generator,
                                   dtype=dtype)
                x = S.sample_ddim(chain_model, x, sched, generator)
        finally:
            self.model.train(was_training)
        return autodiff.clamp((x + 1.0) * 0.5, 0.0, 1.0)

    def nfe_per_sample(self, guidance=0.0, steps=None):
        """Network evaluations per image: the steps, doubled under guidance."""
        steps = int(steps or self.config["sample_steps"])
        return steps * (2 if guidance else 1)
