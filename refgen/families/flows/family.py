"""The registry side of the flows: one family object per model name (``realnvp``, ``glow``,
``nsf``, ``maf``), each with what ``refgen.families`` asks of a family module: ``kind``,
``default_config``, ``build``, ``train_defaults``, ``smoke_config``, ``SMOKE_DATA``.

``refgen train realnvp --data ring8:std=0.1 --minutes 1`` trains one; ``--set`` changes the
config (``num_layers``, ``hidden``, ``num_bins``, ``conditional=true``, ...).
"""
from ..base import with_data_info
from .models import FlowModel

__all__ = ["FlowFamily", "realnvp", "glow", "nsf", "maf"]


def _is_image(info):
    return dict(info or {}).get("kind") == "image"


def _large(info):
    shape = tuple(dict(info or {}).get("shape", ()))
    return len(shape) == 3 and shape[1] * shape[2] >= 28 * 28


class FlowFamily:
    """The family interface for one flow architecture (duck-types a family module)."""

    kind = "flow"
    SMOKE_DATA = ["ring8:std=0.1", "digits"]

    def __init__(self, architecture):
        self.architecture = architecture
        self.__name__ = f"refgen.families.flows.{architecture}"

    def __repr__(self):
        return f"<flow family {self.architecture!r}>"

    def default_config(self, data_info):
        """Sizes for the data set (see ``models`` for the architectures)."""
        info = dict(data_info or {})
        cfg = {"architecture": self.architecture, "conditional": False,
               "num_classes": int(info.get("num_classes") or 0), "activation": "relu"}
        arch = self.architecture
        if not _is_image(info):
            # RealNVP with 8 couplings and MLP 2x128 conditioners (issue 12's comparison)
            cfg.update(hidden=128, depth=2, num_layers={"realnvp": 8, "glow": 8, "nsf": 4,
                                                         "maf": 5}[arch])
            if arch == "realnvp":
                cfg.update(coupling="affine", scale_bound=3.0, batch_norm=False)
            if arch == "nsf":
                cfg.update(num_bins=8, tail_bound=5.0, lu=True, linear=True)
            if arch == "glow":
                cfg.update(scale_bound=3.0, lu=True)
            if arch == "maf":
                cfg.update(batch_norm=False, hidden=[128, 128])
            return cfg
        big = _large(info)
        cfg.update(alpha=0.05 if arch != "maf" else 1e-6)
        if arch == "maf":
            cfg.update(num_layers=5, hidden=[1024] if big else [256], batch_norm=True)
            return cfg
        cfg.update(hidden=64 if big else 32, blocks=2 if big else 1, num_scales=2,
                   steps_per_scale=3 if arch == "realnvp" else 4, scale_bound=3.0, lu=True)
        if arch == "realnvp":
            cfg.update(coupling="affine", batch_norm=False)
        if arch == "nsf":
            cfg.update(num_bins=8, tail_bound=5.0)
        return cfg

    def train_defaults(self, data_info):
        """Adam 1e-3 (RealNVP/Glow/NSF used Adam at 1e-3 or 5e-4), gradient clipping at 100
        against the rare exploding step of a deep flow."""
        if _is_image(data_info):
            return {"steps": 20000, "batch_size": 64, "lr": 1e-3, "grad_clip": 100.0,
                    "log_every": 100, "eval_every": 2000, "checkpoint_every": 1000}
        return {"steps": 10000, "batch_size": 256, "lr": 1e-3, "grad_clip": 100.0,
                "log_every": 100, "eval_every": 2000, "checkpoint_every": 1000}

    def smoke_config(self, data_info):
        """A tiny flow: two layers, width 8."""
        cfg = self.default_config(data_info)
        if _is_image(data_info):
            if self.architecture == "maf":
                cfg.update(num_layers=2, hidden=[16])
            else:
                cfg.update(hidden=8, blocks=1, steps_per_scale=1)
        else:
            cfg.update(num_layers=2, hidden=8 if self.architecture != "maf" else [8])
        return cfg

    def build(self, config, data_info=None):
        """A ``FlowModel`` from its config (``data_info`` fills ``config["data_info"]``)."""
        config = dict(config)
        config.setdefault("architecture", self.architecture)
        if config["architecture"] != self.architecture:
            raise ValueError(f"family {self.architecture!r} got a config for architecture "
                             f"{config['architecture']!r}")
        config = with_data_info(config, data_info)
        model = FlowModel(config)
        model.family = self.architecture
        return model


realnvp = FlowFamily("realnvp")
glow = FlowFamily("glow")
nsf = FlowFamily("nsf")
maf = FlowFamily("maf")
