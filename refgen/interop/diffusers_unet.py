"""diffusers' ``UNet2DModel`` <-> refgen's ``UNet``, in one call each way.

Both are the DDPM U-Net (Ho et al. 2020, Appendix B) with improved DDPM's options (Nichol &
Dhariwal 2021): a sinusoidal time embedding through Linear-SiLU-Linear, plus an optional class
embedding; ResBlocks with GroupNorm, SiLU and the embedding added (or scale-shift); attention
over H*W positions; the down path's activations concatenated into the up path, last in first
out. refgen names its parameters after ADM's code, diffusers after its own blocks; the map,
block by block (level l of L, j < layers_per_block, i <= layers_per_block, u = L-1-l):

    time_embed.0 / .2                 time_embedding.linear_1 / .linear_2
    label_emb                         class_embedding
    input_blocks.0.0                  conv_in
    input_blocks.k.0 (ResBlock)       down_blocks.l.resnets.j
    input_blocks.k.1 (attention)      down_blocks.l.attentions.j
    input_blocks.k.0.op               down_blocks.l.downsamplers.0.conv
    middle_block.0 / .1 / .2          mid_block.resnets.0 / attentions.0 / resnets.1
    output_blocks.k.0                 up_blocks.u.resnets.i
    output_blocks.k.1                 up_blocks.u.attentions.i
    output_blocks.k.-1.conv           up_blocks.u.upsamplers.0.conv
    out.0 / out.2                     conv_norm_out / conv_out
  inside a ResBlock
    in_layers.0 / in_layers.2         norm1 / conv1
    emb_layers.1                      time_emb_proj
    out_layers.0 / out_layers.3       norm2 / conv2
    skip_connection                   conv_shortcut
  inside attention
    norm                              group_norm
    qkv (Conv1d 1x1, 3C)              [to_q; to_k; to_v] (Linear, C each), qkv_order="qkv_first"
    proj_out (Conv1d 1x1)             to_out.0 (Linear)

The time embedding: diffusers' ``Timesteps(flip_sin_to_cos, downscale_freq_shift)`` is
refgen's ``timestep_embedding(flip_sin_to_cos, freq_shift)``, omega_i = 10000^(-i/(half -
freq_shift)). diffusers computes it in float32 whatever the model's dtype; refgen in the
model's dtype, so float64 models differ there by float32 rounding (about 1e-7 relative).

Supported configurations: block types ``DownBlock2D``/``AttnDownBlock2D`` and their mirror
``AttnUpBlock2D``/``UpBlock2D``, mid block ``UNetMidBlock2D``, ``block_out_channels``
multiples of the first, positional time embedding, SiLU, conv down/upsampling with padding 1,
norm_eps 1e-5, class labels through ``num_class_embeds``. Anything else is refused by name.
Attention at a level needs ``sample_size`` (refgen locates attention levels by feature-map
size, so the model then takes sample_size x sample_size inputs only).
"""
from collections import OrderedDict

import numpy as np  # host-side: concatenating and reshaping checkpoint arrays

from refgen.backbones.convert import convert_state_dict
from refgen.backbones.unet import UNet

from ._common import host_state_dict, read_config, read_weights, require

__all__ = ["from_diffusers_unet", "to_diffusers_unet_state_dict", "diffusers_unet_config"]

_WHERE_IN, _WHERE_OUT = "from_diffusers_unet", "to_diffusers_unet_state_dict"
_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "model.safetensors")
_RESNET = (("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("emb_layers.1", "time_emb_proj"),
           ("out_layers.0", "norm2"), ("out_layers.3", "conv2"), ("skip_connection", "conv_shortcut"))
_ATTN_BLOCKS = {"AttnDownBlock2D": True, "DownBlock2D": False}
_UP_OF = {"AttnDownBlock2D": "AttnUpBlock2D", "DownBlock2D": "UpBlock2D"}


# ---------------------------------------------------------------------------- configuration
def _unet_kwargs(cfg):
    where = _WHERE_IN
    for key, allowed, default in (("time_embedding_type", ("positional",), "positional"),
                                  ("act_fn", ("silu",), "silu"),
                                  ("center_input_sample", (False,), False),
                                  ("mid_block_type", ("UNetMidBlock2D",), "UNetMidBlock2D"),
                                  ("mid_block_scale_factor", (1, 1.0), 1),
                                  ("downsample_padding", (1,), 1),
                                  ("downsample_type", ("conv",), "conv"),
                                  ("upsample_type", ("conv",), "conv"),
                                  ("class_embed_type", (None,), None),
                                  ("norm_eps", (1e-5,), 1e-5),
                                  ("resnet_time_scale_shift", ("default", "scale_shift"), "default")):
        require(cfg, key, allowed, where, default)
    boc = [int(c) for c in cfg.get("block_out_channels", (224, 448, 672, 896))]
    if any(c % boc[0] for c in boc):
        raise ValueError(f"{where}: block_out_channels {tuple(boc)} must be multiples of the "
                         f"first (refgen's levels have model_channels * channel_mult[l])")
    down = list(cfg.get("down_block_types", ("DownBlock2D", "AttnDownBlock2D",
                                             "AttnDownBlock2D", "AttnDownBlock2D")))
    up = list(cfg.get("up_block_types", ("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D",
                                         "UpBlock2D")))
    unknown = [b for b in down if b not in _ATTN_BLOCKS]
    if unknown or len(down) != len(boc):
        raise ValueError(f"{where}: down_block_types {tuple(down)} must be one of "
                         f"{tuple(_ATTN_BLOCKS)} per entry of block_out_channels {tuple(boc)}")
    if up != [_UP_OF[b] for b in reversed(down)]:
        raise ValueError(f"{where}: up_block_types {tuple(up)} must mirror down_block_types "
                         f"{tuple(down)} (expected {tuple(_UP_OF[b] for b in reversed(down))})")
    groups = cfg.get("norm_num_groups", 32)
    if groups is None:
        raise ValueError(f"{where}: norm_num_groups=None is not supported (give the groups)")
    scale_shift = cfg.get("resnet_time_scale_shift", "default") == "scale_shift"
    attn_groups = cfg.get("attn_norm_num_groups")
    if attn_groups not in (None, groups) or (scale_shift and attn_groups is None
                                             and cfg.get("add_attention", True)):
        # diffusers' mid-block attention has no GroupNorm under scale_shift unless
        # attn_norm_num_groups is given; refgen's attention always normalises with num_groups.
        raise ValueError(f"{where}: attn_norm_num_groups={attn_groups!r} is not supported with "
                         f"resnet_time_scale_shift={cfg.get('resnet_time_scale_shift')!r}; "
                         f"refgen's attention uses norm_num_groups={groups}")
    attn_levels = [lvl for lvl, b in enumerate(down) if _ATTN_BLOCKS[b]]
    size = cfg.get("sample_size")
    if attn_levels and not isinstance(size, int):
        raise ValueError(f"{where}: attention blocks need an int sample_size to locate their "
                         f"levels, got sample_size={size!r}")
    head_dim = cfg.get("attention_head_dim", 8)
    return dict(
        in_channels=int(cfg.get("in_channels", 3)), out_channels=int(cfg.get("out_channels", 3)),
        model_channels=boc[0], channel_mult=tuple(c // boc[0] for c in boc),
        num_res_blocks=int(cfg.get("layers_per_block", 2)),
        attention_resolutions=tuple(size >> lvl for lvl in attn_levels),
        image_size=size if attn_levels else None,
        num_heads=1, num_head_channels=-1 if head_dim is None else int(head_dim),
        qkv_order="qkv_first", dropout=float(cfg.get("dropout", 0.0)), num_groups=int(groups),
        num_classes=cfg.get("num_class_embeds"), use_scale_shift_norm=scale_shift,
        resblock_updown=False, conv_resample=True, mid_attention=bool(cfg.get("add_attention", True)),
        time_embed_dim=cfg.get("time_embedding_dim"),
        flip_sin_to_cos=bool(cfg.get("flip_sin_to_cos", True)),
        freq_shift=cfg.get("freq_shift", 0), max_period=10000.0)


def diffusers_unet_config(model):
    """The ``UNet2DModel`` keyword arguments of an equivalent diffusers model (a dict)."""
    _check_exportable(model)
    attn = [_has_attention(model, lvl) for lvl in range(len(model.channel_mult))]
    down = ["AttnDownBlock2D" if a else "DownBlock2D" for a in attn]
    return dict(
        sample_size=model.image_size, in_channels=model.in_channels,
        out_channels=model.out_channels, freq_shift=model.freq_shift,
        flip_sin_to_cos=model.flip_sin_to_cos, down_block_types=tuple(down),
        up_block_types=tuple(_UP_OF[b] for b in reversed(down)),
        block_out_channels=tuple(model.model_channels * m for m in model.channel_mult),
        layers_per_block=model.num_res_blocks, dropout=model.dropout,
        attention_head_dim=_head_dim(model), norm_num_groups=model.num_groups,
        resnet_time_scale_shift="scale_shift" if model.use_scale_shift_norm else "default",
        add_attention=model.mid_attention, num_class_embeds=model.num_classes,
        time_embedding_dim=model.time_embed_dim)


def _check_exportable(model):
    if not isinstance(model, UNet):
        raise TypeError(f"{_WHERE_OUT}: expected a refgen UNet, got {type(model).__name__}")
    for flag, value, want in (("qkv_order", model.qkv_order, "qkv_first"),
                              ("resblock_updown", model.resblock_updown, False),
                              ("conv_resample", model.conv_resample, True),
                              ("cfg", model.cfg, False), ("max_period", model.max_period, 10000.0)):
        if value != want:
            raise ValueError(f"{_WHERE_OUT}: UNet2DModel has no equivalent of {flag}={value!r} "
                             f"(it needs {flag}={want!r})")
    if model.num_head_channels == -1 and model.num_heads != 1:
        raise ValueError(f"{_WHERE_OUT}: UNet2DModel fixes the channels per head "
                         f"(attention_head_dim); build the UNet with num_head_channels instead "
                         f"of num_heads={model.num_heads}")


def _head_dim(model):
    return None if model.num_head_channels == -1 else model.num_head_channels


def _has_attention(model, level):
    return model.image_size is not None and \
        model.image_size // 2 ** level in model.attention_resolutions


# ---------------------------------------------------------------------------- the name map
def _block_pairs(model):
    """(refgen prefix, diffusers prefix, kind) for every block; kind is 'plain' (same leaf
    names), 'resnet' or 'attention'."""
    levels, nrb = len(model.channel_mult), model.num_res_blocks
    pairs = [("time_embed.0", "time_embedding.linear_1", "plain"),
             ("time_embed.2", "time_embedding.linear_2", "plain"),
             ("input_blocks.0.0", "conv_in", "plain")]
    if model.num_classes is not None:
        pairs.append(("label_emb", "class_embedding", "plain"))
    k = 1
    for lvl in range(levels):
        for j in range(nrb):
            pairs.append((f"input_blocks.{k}.0", f"down_blocks.{lvl}.resnets.{j}", "resnet"))
            if _has_attention(model, lvl):
                pairs.append((f"input_blocks.{k}.1", f"down_blocks.{lvl}.attentions.{j}",
                              "attention"))
            k += 1
        if lvl < levels - 1:
            pairs.append((f"input_blocks.{k}.0.op", f"down_blocks.{lvl}.downsamplers.0.conv",
                          "plain"))
            k += 1
    pairs.append(("middle_block.0", "mid_block.resnets.0", "resnet"))
    if model.mid_attention:
        pairs.append(("middle_block.1", "mid_block.attentions.0", "attention"))
    pairs.append((f"middle_block.{2 if model.mid_attention else 1}", "mid_block.resnets.1",
                  "resnet"))
    k = 0
    for u, lvl in enumerate(reversed(range(levels))):
        for i in range(nrb + 1):
            attn = _has_attention(model, lvl)
            pairs.append((f"output_blocks.{k}.0", f"up_blocks.{u}.resnets.{i}", "resnet"))
            if attn:
                pairs.append((f"output_blocks.{k}.1", f"up_blocks.{u}.attentions.{i}", "attention"))
            if lvl and i == nrb:
                pairs.append((f"output_blocks.{k}.{2 if attn else 1}.conv",
                              f"up_blocks.{u}.upsamplers.0.conv", "plain"))
            k += 1
    pairs += [("out.0", "conv_norm_out", "plain"), ("out.2", "conv_out", "plain")]
    return pairs


def _leaf_names(ours, theirs, kind, names):
    """[(refgen name, diffusers name)] of the 'plain' and 'resnet' leaves present in ``names``
    (refgen's state_dict); attention is handled apart (its q, k, v are fused)."""
    if kind == "plain":
        subs = [("", "")]
    else:
        subs = [(f".{a}", f".{b}") for a, b in _RESNET]
    out = []
    for a, b in subs:
        for leaf in ("weight", "bias"):
            name = f"{ours}{a}.{leaf}"
            if name in names:
                out.append((name, f"{theirs}{b}.{leaf}"))
    return out


def _take(weights, name, used):
    if name not in weights:
        raise ValueError(f"{_WHERE_IN}: the checkpoint lacks {name!r}")
    used.add(name)
    return weights[name]


def from_diffusers_unet(state_dict_or_path, config=None):
    """Build a refgen ``UNet`` holding a diffusers ``UNet2DModel`` checkpoint's weights.

    :param state_dict_or_path: the model's state_dict (torch tensors or arrays), a
        ``.safetensors``/``.npz`` file, or a ``save_pretrained`` folder
        (``diffusion_pytorch_model.safetensors`` and ``config.json``).
    :param config: the model's ``config`` (a FrozenDict), a dict, or a path to config.json;
        None reads the folder's.
    :return: the UNet, forward(x, t, y) as UNet2DModel(x, t, class_labels=y).sample.
    """
    weights, folder = read_weights(state_dict_or_path, _WEIGHT_FILES, _WHERE_IN)
    cfg = read_config(config, _WHERE_IN, folder)
    model = UNet(**_unet_kwargs(cfg), zero_init=False, zero_init_out=False)
    names = set(model.state_dict())
    ours, used = OrderedDict(), set()
    for prefix, theirs, kind in _block_pairs(model):
        if kind == "attention":
            q, k, v = (_take(weights, f"{theirs}.to_{p}.weight", used) for p in "qkv")
            ours[f"{prefix}.qkv.weight"] = np.concatenate([q, k, v], axis=0)[:, :, None]
            ours[f"{prefix}.qkv.bias"] = np.concatenate(
                [_take(weights, f"{theirs}.to_{p}.bias", used) for p in "qkv"])
            ours[f"{prefix}.proj_out.weight"] = _take(weights, f"{theirs}.to_out.0.weight",
                                                      used)[:, :, None]
            ours[f"{prefix}.proj_out.bias"] = _take(weights, f"{theirs}.to_out.0.bias", used)
            for leaf in ("weight", "bias"):
                ours[f"{prefix}.norm.{leaf}"] = _take(weights, f"{theirs}.group_norm.{leaf}", used)
            continue
        for a, b in _leaf_names(prefix, theirs, kind, names):
            ours[a] = _take(weights, b, used)
    left = [k for k in weights if k not in used]
    if left:
        raise ValueError(f"{_WHERE_IN}: {len(left)} checkpoint entries have no place in the "
                         f"model built from the config: {', '.join(map(repr, left[:8]))}"
                         f"{' ...' if len(left) > 8 else ''}")
    model.load_state_dict(convert_state_dict(ours, target_module=model))
    return model


def to_diffusers_unet_state_dict(model):
    """The weights of a refgen ``UNet`` under ``UNet2DModel``'s names: an ordered dict
    name -> host NumPy array. With ``diffusers_unet_config(model)`` it rebuilds the model in
    diffusers (``UNet2DModel(**config).load_state_dict({k: torch.from_numpy(v) ...})``)."""
    _check_exportable(model)
    ours = host_state_dict(model)
    out = OrderedDict()
    for prefix, theirs, kind in _block_pairs(model):
        if kind == "attention":
            for p, part in zip("qkv", np.split(ours[f"{prefix}.qkv.weight"][:, :, 0], 3)):
                out[f"{theirs}.to_{p}.weight"] = part.copy()
            for p, part in zip("qkv", np.split(ours[f"{prefix}.qkv.bias"], 3)):
                out[f"{theirs}.to_{p}.bias"] = part.copy()
            out[f"{theirs}.to_out.0.weight"] = ours[f"{prefix}.proj_out.weight"][:, :, 0].copy()
            out[f"{theirs}.to_out.0.bias"] = ours[f"{prefix}.proj_out.bias"]
            for leaf in ("weight", "bias"):
                out[f"{theirs}.group_norm.{leaf}"] = ours[f"{prefix}.norm.{leaf}"]
            continue
        for a, b in _leaf_names(prefix, theirs, kind, ours):
            out[b] = ours[a]
    return out
