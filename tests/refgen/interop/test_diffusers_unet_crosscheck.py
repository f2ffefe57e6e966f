"""refgen's UNet against diffusers' UNet2DModel, both ways, in float64.

from_diffusers_unet: a small random UNet2DModel (every parameter redrawn, so zero inits and
GroupNorm's ones hide nothing) -> refgen; to_diffusers_unet_state_dict: a random refgen UNet
-> a new UNet2DModel. Outputs, the input gradient and every parameter gradient agree to
rtol 1e-10. Parameter gradients are compared through the converter itself (the map of
weights is linear: renames, reshapes, q/k/v concatenation), so converting diffusers'
gradients must give ours.

diffusers computes the sinusoidal time embedding in float32 whatever the model's dtype (its
``get_timestep_embedding`` casts to float32), so for the float64 comparison that one function
is replaced by the same formula in float64 (``_float64_timestep_embedding``);
``test_time_embedding_conventions`` checks refgen's embedding against diffusers' own
function, at float32 precision, for each flip / freq_shift convention.
"""
import math

import numpy as np  # host-side: test data and comparisons
import pytest

import autodiff
from refgen.backbones import UNet
from refgen.backbones.embeddings import timestep_embedding
from refgen.interop import diffusers_unet_config, from_diffusers_unet, to_diffusers_unet_state_dict
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck

BASE = dict(in_channels=2, out_channels=3, norm_num_groups=2)
CONFIGS = {
    "attention_classes": dict(BASE, sample_size=8, block_out_channels=(4, 8), layers_per_block=1,
                              down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                              up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                              attention_head_dim=2, num_class_embeds=3),
    "scale_shift_freq_shift": dict(BASE, sample_size=8, block_out_channels=(4, 8),
                                   layers_per_block=2,
                                   down_block_types=("AttnDownBlock2D", "DownBlock2D"),
                                   up_block_types=("UpBlock2D", "AttnUpBlock2D"),
                                   attention_head_dim=None, resnet_time_scale_shift="scale_shift",
                                   attn_norm_num_groups=2, freq_shift=1, flip_sin_to_cos=False,
                                   time_embedding_dim=12),
    "three_levels_no_attention": dict(BASE, sample_size=None, block_out_channels=(4, 4, 8),
                                      layers_per_block=1,
                                      down_block_types=("DownBlock2D",) * 3,
                                      up_block_types=("UpBlock2D",) * 3, add_attention=False),
}


def _float64_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False,
                                downscale_freq_shift=1, scale=1, max_period=10000):
    """diffusers' get_timestep_embedding, the same formula kept in float64."""
    import torch
    half = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float64)
    freqs = torch.exp(exponent / (half - downscale_freq_shift))
    args = scale * timesteps[:, None].to(torch.float64) * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if embedding_dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1, 0, 0))
    return emb


@pytest.fixture
def diffusers_float64(monkeypatch):
    torch = torch_or_skip()
    diffusers = pytest.importorskip("diffusers")
    import diffusers.models.embeddings as embeddings
    monkeypatch.setattr(embeddings, "get_timestep_embedding", _float64_timestep_embedding)
    return torch, diffusers


def _randomize(torch, model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype) + 0.05)
    return model


def _compare(torch, ours, theirs, what, size=8):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, ours.in_channels, size, size))
    t = np.array([3, 740])
    y = np.array([0, 2]) if ours.num_classes else None
    xa, xt = autodiff.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
    out = ours(xa, t, y)
    out_t = theirs(xt, torch.from_numpy(t), None if y is None else torch.from_numpy(y)).sample
    assert_close(out, out_t, what=f"{what}: output")
    cot = rng.standard_normal(out.shape)
    (out * autodiff.tensor(cot)).sum().backward()
    (out_t * torch.from_numpy(cot)).sum().backward()
    assert_close(xa.grad, xt.grad, what=f"{what}: d/dx")
    grads = from_diffusers_unet({k: p.grad for k, p in theirs.named_parameters()},
                                theirs.config).state_dict()
    for name, p in ours.named_parameters():
        assert_close(p.grad, grads[name], what=f"{what}: grad of {name}")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_from_diffusers_unet_matches(diffusers_float64, name):
    torch, diffusers = diffusers_float64
    theirs = _randomize(torch, diffusers.UNet2DModel(**CONFIGS[name]).double().eval(), 0)
    ours = from_diffusers_unet(theirs.state_dict(), theirs.config).eval()
    _compare(torch, ours, theirs, f"from_diffusers_unet[{name}]")


@pytest.mark.parametrize("kw", [
    dict(attention_resolutions=(4,), image_size=8, num_head_channels=4, num_classes=3),
    dict(attention_resolutions=(8,), image_size=8, use_scale_shift_norm=True, freq_shift=1,
         flip_sin_to_cos=False, num_res_blocks=2),
])
def test_to_diffusers_unet_matches(diffusers_float64, kw):
    torch, diffusers = diffusers_float64
    ours = UNet(**{**dict(in_channels=2, out_channels=3, model_channels=4, channel_mult=(1, 2),
                          num_res_blocks=1, num_groups=2, qkv_order="qkv_first"), **kw},
                zero_init=False, zero_init_out=False, generator=autodiff.Generator(1))
    rng = np.random.default_rng(3)
    for p in ours.parameters():
        p.data[...] = 0.3 * rng.standard_normal(p.shape) + 0.05
    config = diffusers_unet_config(ours)
    if ours.use_scale_shift_norm:          # diffusers' mid attention drops its GroupNorm else
        config["attn_norm_num_groups"] = ours.num_groups
    theirs = diffusers.UNet2DModel(**config).double().eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in
                            to_diffusers_unet_state_dict(ours).items()}, strict=True)
    _compare(torch, ours.eval(), theirs, f"to_diffusers_unet[{sorted(kw)}]")


def test_save_pretrained_folder_loads(diffusers_float64, tmp_path):
    torch, diffusers = diffusers_float64
    theirs = _randomize(torch, diffusers.UNet2DModel(**CONFIGS["attention_classes"]).double(), 7)
    theirs.save_pretrained(tmp_path)
    ours = from_diffusers_unet(tmp_path)
    x = np.random.default_rng(8).standard_normal((1, 2, 8, 8))
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x), torch.tensor([10]), torch.tensor([1])).sample
    assert_close(ours(autodiff.tensor(x), [10], [1]), ref, what="from a save_pretrained folder")


@pytest.mark.parametrize("flip,shift", [(True, 0), (False, 1), (True, 1)])
def test_time_embedding_conventions(flip, shift):
    """refgen's timestep_embedding against diffusers' own get_timestep_embedding (which works
    in float32: tolerance 1e-6 absolute on values in [-1, 1] for t <= 10)."""
    torch = torch_or_skip()
    embeddings = pytest.importorskip("diffusers.models.embeddings")
    t = np.array([0.0, 1.0, 2.5, 10.0])
    ref = embeddings.get_timestep_embedding(torch.from_numpy(t), 11, flip_sin_to_cos=flip,
                                            downscale_freq_shift=shift)
    ours = timestep_embedding(t, 11, flip_sin_to_cos=flip, freq_shift=shift)
    assert_close(ours, ref.double(), rtol=0, atol=1e-6, what="timestep embedding")
