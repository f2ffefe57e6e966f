"""Optimisers, learning-rate schedules, gradient clipping and parameter averaging.

PyTorch's names and exact update rules (``torch.optim``, ``torch.optim.lr_scheduler``,
``torch.nn.utils.clip_grad_norm_``), so a training loop reads the same::

    from autodiff import optim
    opt = optim.AdamW(params, lr=3e-4)
    sched = optim.lr_scheduler.warmup_cosine(opt, warmup_steps=500, total_steps=50_000)
    loss.backward(); optim.clip_grad_norm_(params, 1.0); opt.step(); opt.zero_grad(); sched.step()

Optimisers take any iterable of Tensors (or parameter-group dicts); they do not depend
on ``autodiff.nn``.
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_, get_total_norm
from .ema import ExponentialMovingAverage
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "clip_grad_norm_",
           "clip_grad_value_", "get_total_norm", "ExponentialMovingAverage"]
