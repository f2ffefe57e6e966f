"""One training loop for every family: ``fit``, its ``TrainConfig``, checkpoints and logs.

::

    from refgen.train import TrainConfig, fit
    result = fit(trainable, train_data, TrainConfig(steps=2000, lr=1e-3, out_dir="runs/x"),
                 eval_data=test_data)
    fit(trainable, train_data, config, resume=True)   # continue from runs/x/checkpoint.npz

The family supplies the losses (``training_step`` calls ``ctx.optimize(player, loss)``);
the loop supplies batching, optimisers, schedules, clipping, EMA, logging, evaluation and
checkpoints. See ``refgen.train.loop`` for the protocol and the guarantees.
"""
from .checkpoint import (CHECKPOINT_NAME, CheckpointError, config_differences, load_checkpoint,
                         restore_modules, save_checkpoint)
from .config import LR_SCHEDULES, OPTIMIZERS, PLAYER_OPTIONS, TrainConfig
from .context import TrainContext
from .logging import read_log
from .loop import CONFIG_NAME, LOG_NAME, TrainResult, fit

__all__ = ["fit", "TrainConfig", "TrainResult", "TrainContext", "load_checkpoint",
           "save_checkpoint", "restore_modules", "config_differences", "read_log",
           "CheckpointError", "CHECKPOINT_NAME", "LOG_NAME", "CONFIG_NAME", "OPTIMIZERS",
           "LR_SCHEDULES", "PLAYER_OPTIONS"]
