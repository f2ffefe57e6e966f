"""Family ``wgan-gp``: the Wasserstein GAN with a gradient penalty (Gulrajani et al. 2017).

The critic D minimises E D(G(z)) - E D(x) + lambda E (||grad_xhat D(xhat)||_2 - 1)^2 at
random interpolates xhat (Algorithm 1; ``model.gradient_penalty``, a double backward), with
the paper's settings: lambda = 10, n_critic = 5 critic updates per generator update,
Adam(lr 1e-4, betas (0.5, 0.9)), no batch norm in the critic (the penalty is per example).
Each loop step takes a batch of n_critic x 64 examples and gives each critic update its own
slice of 64, as Algorithm 1 draws a fresh real batch per critic iteration.

    refgen train wgan-gp --data grid25 --minutes 5
"""
from . import model

__all__ = ["kind", "default_config", "build", "train_defaults", "smoke_config", "SMOKE_DATA"]

kind = "gan"
SMOKE_DATA = ["ring8", "digits"]


def default_config(data_info):
    from . import default_config as gan_default_config
    config = gan_default_config(data_info)
    config.update(loss="wasserstein", gp_weight=10.0, n_critic=5, d_norm="none")
    return config


def train_defaults(data_info):
    """Gulrajani et al. 2017, Algorithm 1: Adam(1e-4, (0.5, 0.9)), 5 x 64 examples a step."""
    from . import train_defaults as gan_train_defaults
    options = gan_train_defaults(data_info)
    options.update(lr=1e-4, betas=(0.5, 0.9), batch_size=5 * 64)
    return options


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(hidden=16, depth=2, base_width=8, z_dim=4)
    return config


def build(config, data_info=None):
    from . import build as gan_build
    full = default_config(config.get("data_info") or data_info)
    full.update(config)
    return gan_build(full, data_info)
