"""Family ``gan``: a GAN, non-saturating by default (Goodfellow et al. 2014), with the minimax,
hinge (with spectral normalisation, Miyato et al. 2018) and Wasserstein losses, the R1
penalty, PacGAN packing against mode collapse and the conditional (projection) GAN as
options. The mathematics is in ``model.py``; the ``wgan-gp`` family in ``wgan_gp.py``.

    refgen train gan --data ring8 --minutes 2 --set pack=4
    # R1 + generator average + decaying rate: 25/25 modes, ~93 % high quality (QUALITY.md)
    refgen train gan --data grid25 --steps 20000 --minutes 10 --lr-schedule cosine
        --set r1_weight=0.1 --set g_ema=0.999
    refgen train gan --data digits --set loss=hinge --set spectral_norm=true --set d_norm=none
    refgen train gan --data digits --set conditional=true
    refgen sample --checkpoint runs/gan-digits/checkpoint.npz --label 3 --out threes.png
    refgen eval --checkpoint runs/gan-ring8/checkpoint.npz      # mode coverage (2-D)
"""
from . import wgan_gp
from .model import (GAN, LOSSES, discriminator_loss, generator_loss, gradient_penalty, pack,
                    r1_penalty)

__all__ = ["kind", "default_config", "build", "train_defaults", "smoke_config", "SMOKE_DATA",
           "GAN", "LOSSES", "discriminator_loss", "generator_loss", "gradient_penalty",
           "r1_penalty", "pack", "wgan_gp"]

kind = "gan"
SMOKE_DATA = ["ring8", "digits"]


def _is_image(data_info):
    return (data_info or {}).get("kind") == "image"


def default_config(data_info):
    """Non-saturating GAN: MLPs (z_dim 8, 3 hidden layers of 128) on points; DCGAN with
    batch norm in both networks (Radford et al. 2016) on images, z_dim 64 on 8x8, 100 above."""
    image = _is_image(data_info)
    small = image and tuple(data_info.get("shape", (0, 0, 0)))[-1] <= 8
    return {"loss": "ns", "z_dim": (64 if small else 100) if image else 8, "hidden": 128,
            "depth": 3, "base_width": 64 if small else 32, "g_norm": "batch",
            "d_norm": "batch", "n_critic": 1, "gp_weight": 0.0, "r1_weight": 0.0,
            "spectral_norm": False, "pack": 1, "conditional": False, "g_ema": 0.0}


def train_defaults(data_info):
    """Adam(2e-4, betas (0.5, 0.999)), DCGAN's settings, for images; Adam(1e-3, (0.5,
    0.999)) for the small 2-D MLPs. Batches of 64 images / 256 points."""
    if _is_image(data_info):
        return {"steps": 5000, "batch_size": 64, "lr": 2e-4, "betas": (0.5, 0.999),
                "log_every": 50, "checkpoint_every": 1000}
    return {"steps": 10000, "batch_size": 256, "lr": 1e-3, "betas": (0.5, 0.999),
            "log_every": 100, "checkpoint_every": 2000, "eval_every": 2000}


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(hidden=16, depth=2, base_width=8, z_dim=4)
    return config


def build(config, data_info=None):
    """A ``GAN`` from its config (``config['data_info']`` describes the data)."""
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    full = default_config(config.get("data_info"))
    full.update(config)
    return GAN(full)
