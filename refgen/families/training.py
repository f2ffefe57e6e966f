"""Train a registered model on a named data set: the recipe ``refgen train`` and ``refgen zoo``
share, so a model trained by either is the same model.

    result = train_registered("ddpm", "ring8:std=0.1", "runs/ddpm", minutes=5)

The steps, in order: the family's ``default_config`` for the data, the caller's settings on
top (``--set``), what the model is built for (``data``, ``dtype`` and, for a generative model,
``data_info``); the family's ``train_defaults`` with the caller's options on top; a time
budget without a step count means an unbounded run at a constant learning rate (a schedule
could not know its end); intervals are clipped to the run's length. Then ``fit``.
"""
import sys

import autodiff

from ..data import load_dataset
from ..train import TrainConfig, fit
from . import get_family
from .base import data_info_for_config

__all__ = ["prepare_run", "train_registered"]


def prepare_run(name, data, out_dir, *, settings=None, options=None, minutes=None,
                dtype="float32", data_dir=None, train_split="train", eval_split="val",
                note=None):
    """(family module, trainable, TrainConfig, train data, eval data or None).

    :param settings: entries of the model's config to override (``--set``).
    :param options: ``TrainConfig`` options to override (steps, lr, batch_size, seed, ...);
        None values are ignored.
    :param minutes: the training-time budget (``TrainConfig.minutes``).
    :param note: called with one line of text when the recipe changes what was asked
        (the schedule under a time budget); default: printed to stderr.
    """
    note = note or (lambda text: print(f"refgen: note: {text}", file=sys.stderr))
    family = get_family(name)   # unknown family: lists the known ones
    train_data = load_dataset(data, split=train_split, data_dir=data_dir)
    eval_data = None if eval_split in (None, "none") else \
        load_dataset(data, split=eval_split, data_dir=data_dir)
    info = dict(train_data.info)
    info.setdefault("name", data)
    config = family.default_config(info)
    config.update(settings or {})
    config["data"] = data
    config["dtype"] = dtype
    if getattr(family, "kind", None) is not None:   # a generative model: what it models
        config["data_info"] = data_info_for_config(info)

    train_options = dict(getattr(family, "train_defaults", lambda info: {})(info))
    given = {k: v for k, v in (options or {}).items() if v is not None}
    train_options.update(given)
    if minutes is not None:
        train_options["minutes"] = minutes
        if given.get("steps") is None:
            train_options["steps"] = 10 ** 9
            if train_options.get("lr_schedule", "constant") not in ("constant", "cosine_time"):
                note(f"a time budget without a step count: constant learning rate instead of "
                     f"the family's {train_options['lr_schedule']!r} schedule (give a step "
                     "count to keep it, or --lr-schedule cosine_time to decay over the "
                     "budget)")
                train_options["lr_schedule"] = "constant"
                train_options.pop("warmup_steps", None)
    train_options["out_dir"] = str(out_dir)
    # a short run still logs, evaluates and checkpoints: intervals <= steps, and a family's
    # warmup that would not fit is dropped
    for key in ("checkpoint_every", "log_every", "eval_every"):
        if train_options.get(key) is not None and train_options.get("steps") is not None:
            train_options[key] = min(train_options[key], train_options["steps"])
    if train_options.get("warmup_steps", 0) >= train_options.get("steps", 1):
        train_options["warmup_steps"] = 0
        if train_options.get("lr_schedule") == "warmup_cosine":   # needs 0 < warmup < steps
            train_options["lr_schedule"] = "cosine"
    train_config = TrainConfig(**train_options)

    # The initial weights come from the global generator: seed it with the run's seed, so
    # that a run's model does not depend on what ran before it in the same process (the zoo
    # and the experiments train several models in one process).
    autodiff.manual_seed(train_config.seed)
    trainable = family.build(config, info)
    if not getattr(trainable, "family", None):
        trainable.family = name
    return family, trainable, train_config, train_data, eval_data


def train_registered(name, data, out_dir, *, resume=False, progress=False, **kwargs):
    """Build model ``name`` for data set ``data`` and train it into ``out_dir``
    (``prepare_run``'s keyword arguments); returns (trainable, ``TrainResult``)."""
    _, trainable, train_config, train_data, eval_data = prepare_run(name, data, out_dir,
                                                                    **kwargs)
    result = fit(trainable, train_data, train_config, eval_data=eval_data, resume=resume,
                 progress=progress)
    return trainable, result
