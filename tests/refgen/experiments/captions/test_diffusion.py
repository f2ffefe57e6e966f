"""The caption-conditioned U-Net: the caption reaches the output through cross-attention
(nonzero gradient with respect to the caption's vectors, none through padding), a dropped
caption is exactly the null caption, guidance is Eq. 6 of Ho & Salimans 2022, and the
caption encoder learns from the denoising loss."""
import numpy as np
import pytest

import autodiff
from autodiff import backend as B
from refgen.experiments.captions import (CaptionDiffusion, CaptionUNet, TextToImageDenoiser,
                                         diffusion_config)
from refgen.experiments.captions import text as T

SHAPE = (1, 8, 8)


def small_unet(pooled):
    """Without zero initialisation, so that no path starts at exactly zero."""
    return CaptionUNet(context_dim=6, cross_heads=2, pooled_context=pooled,
                       generator=autodiff.Generator(0), in_channels=1, model_channels=8,
                       channel_mult=(1, 2), num_res_blocks=1, num_groups=4, zero_init=False,
                       zero_init_out=False)


def inputs(n=3, s=4):
    g = autodiff.Generator(1)
    x = autodiff.randn(n, *SHAPE, generator=g)
    t = autodiff.Tensor(B.xp.asarray([3.0, 400.0, 999.0][:n]))
    context = autodiff.randn(n, s, 6, generator=g, requires_grad=True)
    mask = B.xp.zeros((n, s), dtype=bool)
    mask[:, 3] = True          # the last word of every caption is padding
    return x, t, context, mask


def small_config():
    return diffusion_config(SHAPE, T.caption_length(1), model_channels=8, num_groups=4,
                            d_model=8, nhead=2, cross_heads=2, encoder_layers=1, timesteps=50,
                            sample_steps=4)


def test_output_depends_on_every_word_through_cross_attention_alone():
    """With the pooled path off, the context reaches the output only by cross-attention:
    the gradient with respect to each real word's vector is nonzero, and exactly zero for
    the padded word (masked out of every attention)."""
    unet = small_unet(pooled=False)
    x, t, context, mask = inputs()
    out = unet(x, t, context, mask)
    r = autodiff.randn(*out.shape, generator=autodiff.Generator(2))
    (g,) = autodiff.grad((out * r).sum(), [context])
    per_word = np.abs(B.to_numpy(g.data)).sum(axis=2)           # (N, S)
    assert (per_word[:, :3] > 1e-8).all()
    assert (per_word[:, 3] == 0).all()


def test_every_cross_attention_block_is_on_the_path():
    """Each cross-attention block (down path, middle, up path) gets gradient: none is
    bypassed."""
    unet = small_unet(pooled=False)
    x, t, context, mask = inputs()
    out = unet(x, t, context, mask)
    (out * autodiff.randn(*out.shape, generator=autodiff.Generator(2))).sum().backward()
    blocks = list(unet.input_cross) + [unet.middle_cross] + list(unet.output_cross)
    assert len(blocks) == len(unet.input_blocks) + 1 + len(unet.output_blocks)
    for i, block in enumerate(blocks):
        grads = [p.grad for p in block.parameters()]
        assert all(g is not None for g in grads), i
        assert sum(float(np.abs(B.to_numpy(g.data)).sum()) for g in grads) > 0, i


def test_changing_the_caption_changes_the_output_and_padding_does_not():
    unet = small_unet(pooled=True)
    x, t, context, mask = inputs()
    with autodiff.no_grad():
        base = unet(x, t, context, mask).numpy()
        other = context.data.copy()
        other[:, 0] += 1.0
        changed = unet(x, t, autodiff.Tensor(other), mask).numpy()
        padded = context.data.copy()
        padded[:, 3] += 100.0                                   # the padded word
        same = unet(x, t, autodiff.Tensor(padded), mask).numpy()
    assert np.abs(changed - base).max() > 1e-3
    np.testing.assert_allclose(same, base, rtol=0, atol=1e-12)


def test_dropped_caption_equals_the_null_caption():
    cfg = small_config()
    net = TextToImageDenoiser(cfg, generator=autodiff.Generator(0))
    tokens = T.caption_table(B.xp.asarray([1, 7, 8]), B.xp.asarray([0, 1, 0]))[:, 2]
    null = T.null_tokens(3, tokens.shape[1])
    x, t, _, _ = inputs()
    dropped = T.drop_captions(tokens, 1.0, autodiff.Generator(5))
    with autodiff.no_grad():
        # the U-Net's output layer starts at zero (zero_init_out): compare a layer that
        # sees the caption, the U-Net before its output convolution
        net.unet.out[2].weight.data[...] = 0.1
        out_null = net(x, t, null).numpy()
        out_dropped = net(x, t, dropped).numpy()
        out_caption = net(x, t, tokens).numpy()
    np.testing.assert_array_equal(out_dropped, out_null)
    assert np.abs(out_caption - out_null).max() > 1e-4       # the caption does something


def test_guidance_is_eq_6():
    cfg = small_config()
    model = CaptionDiffusion(cfg)
    with autodiff.no_grad():
        model.model.unet.out[2].weight.data[...] = 0.1
    tokens = T.caption_table(B.xp.asarray([2, 5, 9]), B.xp.asarray([0, 0, 1]))[:, 0]
    x, t, _, _ = inputs()
    with autodiff.no_grad():
        ctx, mask = model.model.encoder(tokens)
        nctx, nmask = model.model.encoder(T.null_tokens(3, tokens.shape[1]))
        cond = model.model.unet(x, t, ctx, mask).numpy()
        uncond = model.model.unet(x, t, nctx, nmask).numpy()
        for w in (0.0, 1.0, 3.0):
            guided = model.guided_eps(x, t, ctx, mask, nctx, nmask, w).numpy()
            np.testing.assert_allclose(guided, (1 + w) * cond - w * uncond, rtol=0,
                                       atol=1e-10)


def test_training_step_reaches_the_caption_encoder():
    """One denoising step sends gradient into the word embeddings of the words used."""
    cfg = small_config()
    # one template (J = 1), so the words each step uses are known
    table = T.caption_table(B.xp.arange(6) % 10, B.xp.zeros(6, dtype=np.int64))[:, 2:3]
    model = CaptionDiffusion(dict(cfg, p_uncond=0.0), table)
    with autodiff.no_grad():
        model.model.unet.out[2].weight.data[...] = 0.1

    class Ctx:
        generator = autodiff.Generator(3)
        loss = None

        def optimize(self, player, loss):
            self.loss = loss
            loss.backward()

    ctx = Ctx()
    x = autodiff.rand(6, *SHAPE, generator=autodiff.Generator(4))
    model.training_step((x, autodiff.Tensor(B.xp.arange(6))), 0, ctx)
    assert np.isfinite(float(ctx.loss.item()))
    grad = B.to_numpy(model.model.encoder.embed.weight.grad.data)
    used = np.unique(B.to_numpy(table))
    unused = np.setdiff1d(np.arange(len(T.VOCAB)), np.append(used, T.NULL))
    assert (np.abs(grad[[u for u in used if u != T.PAD]]).sum(axis=1) > 0).all()
    assert (grad[unused] == 0).all()


def test_sample_shape_range_and_reproducibility():
    model = CaptionDiffusion(small_config())
    tokens = T.caption_table(B.xp.asarray([0, 3]), B.xp.asarray([0, 1]))[:, 1]
    a = model.sample(tokens, autodiff.Generator(7), guidance=1.0)
    b = model.sample(tokens, autodiff.Generator(7), guidance=1.0)
    assert a.shape == (2,) + SHAPE
    assert float(a.data.min()) >= 0.0 and float(a.data.max()) <= 1.0
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.nfe_per_sample(0.0) == 4 and model.nfe_per_sample(3.0) == 8
    with pytest.raises(ValueError, match=r"tokens must be \(N, 4\), got \(2, 9\)"):
        model.sample(B.xp.zeros((2, 9), dtype=np.int64))
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        model.sample(tokens, guidance=-1.0)


def test_bad_context_is_named():
    unet = small_unet(pooled=True)
    x, t, context, mask = inputs()
    with pytest.raises(ValueError, match=r"context must be \(3, S, 6\), got \(3, 4, 5\)"):
        unet(x, t, autodiff.randn(3, 4, 5), mask)
    with pytest.raises(ValueError, match="not a class label"):
        CaptionUNet(6, num_classes=10, in_channels=1, model_channels=8, num_groups=4)


def test_coordinate_channel_is_the_column_in_units_of_the_height():
    """j / H at column j: the left half of a two-digit canvas carries the coordinates of a
    one-digit canvas, so one set of weights reads both."""
    unet = CaptionUNet(6, 2, coord_channel=True, in_channels=1, model_channels=8,
                       num_groups=4, generator=autodiff.Generator(0))
    assert unet.input_blocks[0][0].in_channels == 2 and unet.out_channels == 1
    pair = unet._with_coordinates(autodiff.zeros(2, 1, 8, 16)).numpy()
    single = unet._with_coordinates(autodiff.zeros(2, 1, 8, 8)).numpy()
    np.testing.assert_array_equal(pair[:, 1, :, :8], single[:, 1])
    np.testing.assert_array_equal(pair[0, 1, 3], np.arange(16) / 8)
    x, t, context, mask = inputs()
    assert unet(x, t, context, mask).shape == x.shape
    with pytest.raises(ValueError, match=r"x must be a Tensor \(N, 1, H, W\)"):
        unet(autodiff.zeros(8, 8), t, context, mask)
