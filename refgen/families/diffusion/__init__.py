"""Family ``ddpm`` (kind "diffusion"): denoising diffusion probabilistic models.

* ``schedules``: the forward process q, beta schedules (linear, cosine), respacing, the
  parameterisations (eps, x_0, v) and the sigma view;
* ``samplers``: ancestral, DDIM, and Euler / Heun / DPM-Solver++(2M) on a denoiser;
* ``ddpm``: the model (training losses, classifier-free guidance, the variational bound).

The registry's side (``refgen.families``): ``kind``, ``default_config``, ``build``,
``train_defaults``, ``smoke_config`` and ``SMOKE_DATA``.

    refgen train ddpm --data ring8 --minutes 5 --out runs/ddpm-ring8
    refgen sample --checkpoint runs/ddpm-ring8/checkpoint.npz --sampler ddim --steps 50 --out s.png
    refgen train ddpm --data digits --minutes 10 --out runs/ddpm-digits
    refgen sample --checkpoint runs/ddpm-digits/checkpoint.npz --label 3 --guidance 2 --out g.png
    refgen eval --checkpoint runs/ddpm-digits/checkpoint.npz      # the bound in bits/dim
"""
from . import samplers, schedules
from .ddpm import DDPM, PointDenoiser, parse_sampler, SAMPLERS
from .schedules import NoiseSchedule

__all__ = ["DDPM", "PointDenoiser", "NoiseSchedule", "SAMPLERS", "parse_sampler", "kind",
           "default_config", "build", "train_defaults", "smoke_config", "SMOKE_DATA",
           "samplers", "schedules"]

kind = "diffusion"

# the conformance test (tests/refgen/families/test_interface.py) trains smoke_config on these
SMOKE_DATA = ["ring8:std=0.1", "digits"]


def _info(data_info):
    info = dict(data_info or {})
    shape = tuple(int(s) for s in info.get("shape", ()))
    if not shape:
        raise ValueError("ddpm needs the data set's example shape (data_info['shape'])")
    return info, shape


def default_config(data_info):
    """The model for the data set: for points (D,) an MLP 3 x 128 (SiLU) with a 128-d time
    embedding, T = 1000, the linear schedule; for images (C, H, W) a small U-Net (32 channels,
    one ResBlock per level, levels (1, 2) up to 16 pixels and (1, 2, 2) above), the cosine
    schedule (Nichol & Dhariwal 2021 find it better at low resolution), class-conditional
    with p_uncond = 0.1 when the data have labels. eps-prediction and the simple loss.
    The bound: all T terms for points; for images an unbiased estimate from 50 of the T - 1
    KL terms (``bound_timesteps``; a U-Net evaluation per term and example is what costs)."""
    info, shape = _info(data_info)
    config = {"timesteps": 1000, "prediction": "eps", "loss": "simple",
              "variance": "beta_tilde", "vlb_weight": 0.001, "sampler": "ancestral",
              "sample_steps": None, "clip_denoised": True}
    num_classes = info.get("num_classes")
    if len(shape) == 3 and info.get("kind") == "image":
        config.update({"backbone": "unet", "beta_schedule": "cosine", "model_channels": 32,
                       "channel_mult": [1, 2] if shape[1] <= 16 else [1, 2, 2],
                       "num_res_blocks": 1, "attention_resolutions": [], "num_groups": 8,
                       "dropout": 0.0, "eval_examples": 300, "bound_timesteps": 50})
    else:
        config.update({"backbone": "mlp", "beta_schedule": "linear", "hidden": 128,
                       "depth": 3, "emb_dim": 128, "eval_examples": 1000,
                       "bound_timesteps": None})
    config.update({"conditional": bool(num_classes), "num_classes": num_classes,
                   "p_uncond": 0.1})
    return config


def build(config, data_info=None):
    """A ``DDPM`` from its config (``data_info`` fills ``config['data_info']`` if missing)."""
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    return DDPM(config)


def train_defaults(data_info):
    """Adam, EMA 0.999 (the weights ``refgen sample`` uses). Points: batch 256, lr 1e-3
    with cosine decay over 20,000 steps (``--minutes`` without ``--steps`` makes it
    constant); images: batch 64, lr 5e-4 constant, gradient norm clipped at 1, 20,000 steps.
    The bound is computed once at the end (``eval_examples``, ``bound_timesteps``)."""
    _, shape = _info(data_info)
    if len(shape) == 3:
        return {"steps": 20000, "batch_size": 64, "lr": 5e-4, "ema_decay": 0.999,
                "log_every": 100, "checkpoint_every": 1000, "grad_clip": 1.0}
    return {"steps": 20000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.999,
            "lr_schedule": "cosine", "log_every": 100, "checkpoint_every": 1000}


def smoke_config(data_info):
    """A tiny model (T = 20, a 2 x 16 MLP or an 8-channel U-Net) that trains in a second."""
    config = default_config(data_info)
    config.update({"timesteps": 20, "eval_examples": 20, "bound_timesteps": None})
    if config["backbone"] == "mlp":
        config.update({"hidden": 16, "depth": 2, "emb_dim": 16})
    else:
        config.update({"model_channels": 8, "num_groups": 4})
    return config
