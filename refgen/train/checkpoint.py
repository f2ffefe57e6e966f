"""Training checkpoints: one ``.npz`` file that holds everything needed to continue a run.

Layout (a nested dict written with ``autodiff.save``, which writes a temporary file in the
same directory, fsyncs it and renames it over the target, so a crash mid-write leaves the
previous checkpoint intact)::

    {"format": "refgen-checkpoint", "version": 1,
     "family": str, "config": trainable.config, "train_config": TrainConfig.to_dict(),
     "step": int,                      # optimisation steps completed
     "elapsed": float,                 # seconds of training so far (all sessions)
     "modules": {name: state_dict},    # parameters and buffers, raw (not averaged)
     "optimizers": {player: state_dict}, "schedulers": {player: state_dict or None},
     "ema": ExponentialMovingAverage.state_dict() or None,
     "rng": {"global": state, "loop": state, "trainable": {name: state}},
     "loader": loader.state_dict(),    # epoch, position, shuffle generator: the data order
     "log_window": {"sums": {...}, "counts": {...}},   # the partial log interval
     "log_tail": [last log records], "metrics": {last logged numbers}}
"""
import json
import os

import autodiff

__all__ = ["CHECKPOINT_NAME", "FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint",
           "config_differences", "restore_modules", "family_name"]

CHECKPOINT_NAME = "checkpoint.npz"
FORMAT = "refgen-checkpoint"
VERSION = 1
_REQUIRED = ("family", "config", "train_config", "step", "modules", "optimizers", "rng",
             "loader")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (corrupt, not a checkpoint, or incompatible)."""


def family_name(trainable):
    """The family's name: ``trainable.family`` when set, else the class name."""
    return str(getattr(trainable, "family", None) or type(trainable).__name__)


def save_checkpoint(path, payload):
    """Write ``payload`` (see the module docstring) to ``path`` atomically."""
    payload = dict(payload)
    payload["format"] = FORMAT
    payload["version"] = VERSION
    autodiff.save(payload, path)


def load_checkpoint(path):
    """Read a checkpoint written by ``refgen.train.fit``; returns the nested dict.

    A missing file raises ``FileNotFoundError`` and an unreadable one ``CheckpointError``,
    each naming ``path``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        ckpt = autodiff.load(path)
    except Exception as exc:  # autodiff.load names the damage; say it is this checkpoint
        raise CheckpointError(f"checkpoint {path!r} is corrupt or unreadable: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is a refgen archive but not a training checkpoint "
                              f"(no format {FORMAT!r} entry)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path!r} has version {ckpt.get('version')!r}; this "
                              f"reader knows version {VERSION}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} lacks the entries {', '.join(missing)}")
    return ckpt


def _normalise(obj):
    """JSON form (tuples -> lists), so a config compares equal to its saved copy."""
    return json.loads(json.dumps(obj))


def _diff(a, b, prefix, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{prefix}{k}.", out)
    elif a != b:
        out.append(f"{prefix[:-1]} ({a!r} in the checkpoint, {b!r} now)")


def config_differences(ckpt, family, config, train_config):
    """The differences between a checkpoint's run and the run about to resume it.

    Returns a list of ``"key (old in the checkpoint, new now)"`` strings, empty when the
    run may continue. ``train_config`` is a dict; the keys of
    ``refgen.train.config.RESUMABLE_CHANGES`` may differ, and ``steps`` may when both use
    the constant schedule (the others are functions of ``steps``).
    """
    from .config import RESUMABLE_CHANGES

    out = []
    if ckpt["family"] != family:
        out.append(f"family ({ckpt['family']!r} in the checkpoint, {family!r} now)")
    _diff(_normalise(ckpt["config"]), _normalise(config), "config.", out)
    old = {k: v for k, v in _normalise(ckpt["train_config"]).items()
           if k not in RESUMABLE_CHANGES}
    new = {k: v for k, v in _normalise(train_config).items() if k not in RESUMABLE_CHANGES}
    schedules = {o.get("lr_schedule", c.get("lr_schedule"))
                 for c in (old, new) for o in [c] + list(c.get("players", {}).values())}
    if schedules <= {"constant", "cosine_time"}:
        old.pop("steps", None)
        new.pop("steps", None)
    _diff(old, new, "train_config.", out)
    return out


def restore_modules(trainable, ckpt, use_ema=True):
    """Load a checkpoint's weights into ``trainable``'s modules (for sampling/evaluation).

    With ``use_ema`` and an EMA in the checkpoint, the parameters of
    ``trainable.parameter_groups()`` (in their order) take the averaged values, as the loop
    does for evaluation; buffers always take the raw values.
    """
    modules = trainable.modules()
    saved = ckpt["modules"]
    missing = [k for k in modules if k not in saved]
    if missing:
        raise CheckpointError(f"the checkpoint has no state for module(s) {', '.join(missing)}; "
                              f"it holds: {', '.join(saved)}")
    for name, module in modules.items():
        module.load_state_dict(saved[name])
    ema = ckpt.get("ema")
    if use_ema and ema is not None:
        params = [p for group in trainable.parameter_groups().values() for p in group]
        shadows = ema["shadow_params"]
        if len(shadows) != len(params):
            raise CheckpointError(f"the checkpoint's EMA holds {len(shadows)} parameters, the "
                                  f"model has {len(params)}")
        with autodiff.no_grad():
            for p, s in zip(params, shadows):
                p.copy_(s)
