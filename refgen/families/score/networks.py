"""The noise-conditional network of the score models, and what ``ncsn`` and ``sde`` share.

``ScoreNet`` predicts the noise: eps_theta(x, c_noise) of x's shape, read as the score

    s_theta(x, t) = -eps_theta(x, c_noise(t)) / std(t)

(the output scaled by 1 / sigma: Song & Ermon 2020, "Improved techniques", technique 3;
score_sde's ``scale_by_sigma``; DDPM's eps-parameterisation, Ho et al. 2020, eq. 11), so the
DSM loss with lambda = std^2 is || eps_theta - eps ||^2 per example. ``c_noise`` is a number in
[0, 999] that says the noise level (t * 999 for an SDE, score_sde's "labels"; a log-sigma
scale for NCSN), fed through a sinusoidal embedding (``refgen.backbones.embeddings``).

Backbones: 2-D points use an MLP on [x, emb(c_noise)] (``refgen.backbones.MLP``, SiLU);
images the DDPM U-Net (``refgen.backbones.unet.UNet``) with its own time embedding and, for
class-conditional models, its label embedding.

Images are modelled on [-1, 1] (x_model = 2 (x - lo) / (hi - lo) - 1, score_sde's centred
data), so the VP prior N(0, I) fits; the log-density picks up D log(2 / (hi - lo)).
"""
import math

import autodiff
from autodiff import nn

from ...backbones.embeddings import timestep_embedding
from ...backbones.mlp import MLP
from ...backbones.unet import UNet
from ..base import GenerativeModel

__all__ = ["ScoreNet", "ScoreModelBase", "network_config", "train_defaults"]


def network_config(data_info, small=False):
    """Backbone options for the data: an MLP for points, a U-Net for images."""
    info = dict(data_info or {})
    shape = tuple(info.get("shape", ()))
    if info.get("kind") == "image":
        if len(shape) != 3:
            raise ValueError(f"score models: image data need examples (C, H, W), got {shape}")
        return {"arch": "unet", "model_channels": 8 if small else 32,
                "channel_mult": [1, 2], "num_res_blocks": 1, "num_groups": 8 if small else 16,
                "dropout": 0.0}
    if len(shape) != 1:
        raise ValueError(f"score models: point data need examples (D,), got {shape}")
    return {"arch": "mlp", "hidden": 16 if small else 128, "depth": 2 if small else 3,
            "emb_dim": 8 if small else 32, "activation": "silu"}


class ScoreNet(nn.Module):
    """eps_theta(x, c_noise[, y]) -> (N, *event): an MLP for (N, D), a U-Net for (N, C, H, W).

    :param shape: the example shape, (D,) or (C, H, W).
    :param net: ``network_config``'s dict.
    :param num_classes: class-conditional U-Net (labels y (N,) int64) when not None.
    """

    def __init__(self, shape, net, num_classes=None):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.arch = net["arch"]
        if self.arch == "mlp":
            if num_classes:
                raise ValueError("score models: class conditioning needs the U-Net (images)")
            self.emb_dim = int(net["emb_dim"])
            self.mlp = MLP(self.shape[0], self.shape[0], hidden=int(net["hidden"]),
                           depth=int(net["depth"]), activation=net.get("activation", "silu"),
                           cond_features=self.emb_dim)
        elif self.arch == "unet":
            self.unet = UNet(in_channels=self.shape[0], model_channels=int(net["model_channels"]),
                             channel_mult=tuple(net["channel_mult"]),
                             num_res_blocks=int(net["num_res_blocks"]),
                             num_groups=int(net["num_groups"]), dropout=float(net["dropout"]),
                             num_classes=num_classes)
        else:
            raise ValueError(f"score models: arch must be 'mlp' or 'unet', got {self.arch!r}")

    def forward(self, x, c_noise, y=None):
        if self.arch == "mlp":
            emb = timestep_embedding(c_noise, self.emb_dim, dtype=x.dtype)   # (N, emb_dim)
            return self.mlp(x, emb)
        return self.unet(x, c_noise, y)


class ScoreModelBase(GenerativeModel):
    """What ``ncsn`` and ``sde`` share: the network, the data scaling, labels, the player."""

    kind = "score"

    def __init__(self, config):
        super().__init__(config)
        if not self.example_shape:
            raise ValueError(f"{self.family}: config['data_info'] must give the example shape")
        self.num_classes = int(self.data_info["num_classes"]) \
            if self.config.get("conditional") and self.data_info.get("num_classes") else None
        self.net = ScoreNet(self.example_shape, self.config["net"], self.num_classes)
        self.is_image = self.data_info.get("kind") == "image"

    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    # ---- data <-> model space (images on [-1, 1])
    def to_model(self, x):
        if not self.is_image:
            return x
        lo, hi = self.value_range
        return (x - lo) * (2.0 / (hi - lo)) - 1.0

    def from_model(self, x):
        if not self.is_image:
            return x
        lo, hi = self.value_range
        return (x + 1.0) * ((hi - lo) / 2.0) + lo

    def log_det_to_model(self):
        """log |d x_model / d x| = D log(2 / (hi - lo)) for images, 0 for points."""
        if not self.is_image:
            return 0.0
        lo, hi = self.value_range
        return self.num_dims * math.log(2.0 / (hi - lo))

    def _labels(self, y, n):
        if self.num_classes is None:
            if y is not None:
                raise ValueError(f"{self.family}: got a condition, but the model is "
                                 "unconditional (train with --set conditional=true)")
            return None
        if y is None:
            raise ValueError(f"{self.family}: a class-conditional model needs cond (labels "
                             f"(N,) in 0..{self.num_classes - 1})")
        y = y if isinstance(y, autodiff.Tensor) else autodiff.tensor(y)
        if tuple(y.shape) == ():
            y = autodiff.full((n,), int(y.item()), dtype="int64")
        if tuple(y.shape) != (n,):
            raise ValueError(f"{self.family}: cond must have shape ({n},), got {tuple(y.shape)}")
        return y.long()

    def _batch(self, batch):
        x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
        if self.is_image and self.levels:
            # uniform dequantization: the model is a density of (k + u) / L (base.py)
            x = autodiff.Tensor(self.dequantize(x.data))
        return self.to_model(x), (self._labels(y, x.shape[0]) if self.num_classes else None)


def train_defaults(data_info):
    """The training options both score families use: Adam 1e-3, batches of 256 on 2-D data;
    2e-4, batches of 64 and gradient clipping at 1 on images; EMA 0.999 of the weights."""
    if dict(data_info or {}).get("kind") == "image":
        return {"steps": 20000, "batch_size": 64, "lr": 2e-4, "ema_decay": 0.999,
                "grad_clip": 1.0, "log_every": 100, "eval_every": None,
                "checkpoint_every": 1000}
    return {"steps": 20000, "batch_size": 256, "lr": 1e-3, "ema_decay": 0.999,
            "log_every": 100, "eval_every": None, "checkpoint_every": 1000}
