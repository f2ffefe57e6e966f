"""The converters without torch: export then import is the identity (same state_dict, same
outputs), the exported names and shapes are the other library's, and a checkpoint that does not
fit says what is wrong. The numerical match with the real libraries is in the cross-checks."""
import numpy as np  # host-side: test data and comparisons
import pytest

import autodiff
from autodiff import nn
from refgen.backbones import TransformerDecoder, UNet, spectral_norm
from refgen.interop import (diffusers_unet_config, from_diffusers_unet,
                            from_parametrized_spectral_norm, from_hf_gpt2, hf_gpt2_config,
                            to_diffusers_unet_state_dict, to_hf_gpt2_state_dict,
                            to_parametrized_spectral_norm)


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] = 0.3 * rng.standard_normal(p.shape) + 0.05
    return model


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(sa[k].numpy(), sb[k].numpy(), err_msg=k)


@pytest.mark.parametrize("tie", [True, False])
def test_gpt2_round_trip(tie):
    ours = _randomize(TransformerDecoder(9, 5, n_layer=2, n_head=2, n_embd=4, tie_weights=tie,
                                         gelu_approximate="tanh", layer_norm_eps=1e-4), 0)
    sd, cfg = to_hf_gpt2_state_dict(ours), hf_gpt2_config(ours)
    # GPT2LMHeadModel's names and Conv1D's (in, out) layout
    assert sd["transformer.h.0.attn.c_attn.weight"].shape == (4, 12)
    assert sd["transformer.h.1.mlp.c_proj.weight"].shape == (16, 4)
    np.testing.assert_array_equal(sd["transformer.h.0.mlp.c_fc.weight"],
                                  ours.h[0].mlp.c_fc.weight.numpy().T)
    assert cfg["activation_function"] == "gelu_new" and cfg["tie_word_embeddings"] is tie
    back = from_hf_gpt2(sd, cfg)
    _same_state(ours, back)
    assert back.layer_norm_eps == 1e-4 and back.tie_weights is tie
    tokens = np.array([[1, 2, 3, 4], [8, 0, 5, 5]])
    np.testing.assert_array_equal(ours(tokens).numpy(), back(tokens).numpy())


def test_gpt2_reads_original_checkpoint_layout(tmp_path):
    """No ``transformer.`` prefix, causal-mask buffers present, lm_head omitted (tied): the
    layout of the original OpenAI GPT-2 checkpoints; and read from an .npz file."""
    ours = _randomize(TransformerDecoder(7, 4, n_layer=1, n_head=1, n_embd=4), 1)
    sd = {k[len("transformer."):]: v for k, v in to_hf_gpt2_state_dict(ours).items()
          if k != "lm_head.weight"}
    sd["h.0.attn.bias"] = np.tril(np.ones((1, 1, 4, 4)))
    sd["h.0.attn.masked_bias"] = np.array(-1e4)
    np.savez(tmp_path / "gpt2.npz", **sd)
    back = from_hf_gpt2(tmp_path / "gpt2.npz", hf_gpt2_config(ours))
    _same_state(ours, back)


def test_gpt2_refuses_what_it_cannot_represent():
    ours = TransformerDecoder(7, 4, n_layer=1, n_head=1, n_embd=4)
    cfg = hf_gpt2_config(ours)
    sd = to_hf_gpt2_state_dict(ours)
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx=True"):
        from_hf_gpt2(sd, {**cfg, "scale_attn_by_inverse_layer_idx": True})
    with pytest.raises(ValueError, match="activation_function='relu'"):
        from_hf_gpt2(sd, {**cfg, "activation_function": "relu"})
    with pytest.raises(ValueError, match="one dropout rate"):
        from_hf_gpt2(sd, {**cfg, "attn_pdrop": 0.2})
    with pytest.raises(ValueError, match="config is required"):
        from_hf_gpt2(sd)
    with pytest.raises(ValueError, match=r"mis-shaped keys.*wpe\.weight"):
        from_hf_gpt2(sd, {**cfg, "n_positions": 5})
    untied = dict(sd, **{"lm_head.weight": sd["lm_head.weight"] + 1})
    with pytest.raises(ValueError, match="lm_head.weight differs from wte.weight"):
        from_hf_gpt2(untied, cfg)
    with pytest.raises(ValueError, match="positions='sinusoidal'"):
        to_hf_gpt2_state_dict(TransformerDecoder(7, 4, positions="sinusoidal"))


UNETS = {
    "attention_classes": dict(attention_resolutions=(4,), image_size=8, num_head_channels=2,
                              num_classes=3),
    "scale_shift_shift1_2blocks": dict(attention_resolutions=(8,), image_size=8,
                                       use_scale_shift_norm=True, freq_shift=1,
                                       flip_sin_to_cos=False, num_res_blocks=2),
    "three_levels_no_mid_attention": dict(channel_mult=(1, 1, 2), mid_attention=False),
}


def _unet(**kw):
    cfg = dict(in_channels=2, out_channels=3, model_channels=4, channel_mult=(1, 2),
               num_res_blocks=1, num_groups=2, qkv_order="qkv_first")
    return UNet(**{**cfg, **kw}, zero_init=False, zero_init_out=False)


@pytest.mark.parametrize("name", sorted(UNETS))
def test_unet_round_trip(name):
    ours = _randomize(_unet(**UNETS[name]), 2)
    sd, cfg = to_diffusers_unet_state_dict(ours), diffusers_unet_config(ours)
    # every refgen entry went somewhere (q, k, v are three entries for one qkv)
    n_ours = sum(p.numel() for p in ours.state_dict().values())
    assert sum(v.size for v in sd.values()) == n_ours
    assert "conv_in.weight" in sd and "time_embedding.linear_2.bias" in sd
    if cfg["attention_head_dim"] or "AttnDownBlock2D" in cfg["down_block_types"]:
        level = cfg["down_block_types"].index("AttnDownBlock2D")
        c = cfg["block_out_channels"][level]
        assert sd[f"down_blocks.{level}.attentions.0.to_q.weight"].shape == (c, c)
    if ours.use_scale_shift_norm:
        cfg["attn_norm_num_groups"] = ours.num_groups
    back = from_diffusers_unet(sd, cfg)
    _same_state(ours, back)
    x = np.random.default_rng(3).standard_normal((2, 2, 8, 8))
    y = [0, 2] if ours.num_classes else None
    np.testing.assert_array_equal(ours(autodiff.tensor(x), [1, 500], y).numpy(),
                                  back(autodiff.tensor(x), [1, 500], y).numpy())


def test_unet_refuses_what_it_cannot_represent():
    ours = _unet(attention_resolutions=(4,), image_size=8, num_head_channels=2)
    sd, cfg = to_diffusers_unet_state_dict(ours), diffusers_unet_config(ours)
    with pytest.raises(ValueError, match="up_block_types .* must mirror"):
        from_diffusers_unet(sd, {**cfg, "up_block_types": ("UpBlock2D", "AttnUpBlock2D")})
    with pytest.raises(ValueError, match="block_out_channels \\(4, 6\\) must be multiples"):
        from_diffusers_unet(sd, {**cfg, "block_out_channels": (4, 6)})
    with pytest.raises(ValueError, match="downsample_type='resnet'"):
        from_diffusers_unet(sd, {**cfg, "downsample_type": "resnet"})
    with pytest.raises(ValueError, match="attn_norm_num_groups"):
        from_diffusers_unet(sd, {**cfg, "resnet_time_scale_shift": "scale_shift"})
    with pytest.raises(ValueError, match="lacks 'conv_in.weight'"):
        from_diffusers_unet({k: v for k, v in sd.items() if k != "conv_in.weight"}, cfg)
    with pytest.raises(ValueError, match="no place in the model.*'extra.weight'"):
        from_diffusers_unet(dict(sd, **{"extra.weight": np.zeros(2)}), cfg)
    with pytest.raises(ValueError, match="qkv_order='heads_first'"):
        to_diffusers_unet_state_dict(_unet(qkv_order="heads_first"))


def test_parametrized_spectral_norm_names_round_trip():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    spectral_norm(model[1])
    ours = {k: v.numpy() for k, v in model.state_dict().items()}
    theirs = to_parametrized_spectral_norm(ours)
    assert set(theirs) == {"0.weight", "0.bias", "1.bias", "1.parametrizations.weight.original",
                           "1.parametrizations.weight.0._u", "1.parametrizations.weight.0._v"}
    assert list(from_parametrized_spectral_norm(theirs)) == list(ours)
