"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s names and arguments.

Every schedule here is written in CLOSED FORM: the learning rate after ``t`` calls of
``step()`` is a function of ``t`` and the group's initial learning rate only,

    lr_t = f(base_lr, t),

where ``base_lr`` is ``group["initial_lr"]`` (set from ``group["lr"]`` by the first
scheduler made for the optimiser). PyTorch computes most schedules recursively from the
previous value (``lr_t = lr_{t-1} * ratio``); both give the same numbers up to rounding
(the cross-check tests compare 50 steps to 1e-10 relative). The closed form cannot drift
and makes ``state_dict`` trivial, but it means two schedulers stepping the same optimiser
do not multiply as PyTorch's chainable ones do: combine schedules with ``SequentialLR``
(one after another) or ``LambdaLR`` (any product you write).

Usage, as in PyTorch::

    opt = Adam(params, lr=1e-3)
    sched = warmup_cosine(opt, warmup_steps=100, total_steps=10_000)
    for batch in data:
        ...; opt.step(); sched.step()
"""
import math
from bisect import bisect_right

__all__ = [
    "LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
    "LinearLR", "SequentialLR", "warmup_cosine",
]


class LRScheduler:
    """Base class: sets ``group["lr"]`` of every group to ``get_lr()`` after each ``step()``.

    Subclasses implement ``_lr_at(base_lr, t)`` (the closed form) or override ``get_lr``.
    ``last_epoch`` counts the ``step()`` calls (0 right after construction, when the
    schedule's initial value is applied, as in PyTorch).
    """

    def __init__(self, optimizer, last_epoch=-1):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(
                f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: param 'initial_lr' is not specified in "
                        f"param_groups[{i}] when resuming (last_epoch={last_epoch})")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def _lr_at(self, base_lr, t):  # pragma: no cover - interface
        raise NotImplementedError

    def get_lr(self):
        """The learning rate of each group at ``last_epoch`` (closed form)."""
        return [self._lr_at(base_lr, self.last_epoch) for base_lr in self.base_lrs]

    def step(self):
        """Advance one step and write the new learning rates into the optimiser."""
        self.last_epoch += 1
        self._apply()

    def _apply(self):
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates set by the last ``step()`` (one per group)."""
        return list(self._last_lr)

    # Attributes that are code, not state, and stay out of state_dict (as PyTorch does).
    _not_state = ("optimizer",)

    def state_dict(self):
        """Every attribute except the optimiser (and functions), as a dict."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
                if k not in self._not_state}

    def load_state_dict(self, state_dict):
        """Restore attributes saved by ``state_dict()``; the optimiser's lrs are not touched
        (load the optimiser's own state dict too, as in PyTorch)."""
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in self._not_state})


def _check_positive_int(name, what, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name}: {what} must be a positive integer, got {value!r}")


class LambdaLR(LRScheduler):
    """``lr_t = base_lr * lr_lambda(t)``; one function, or one per parameter group.

    The functions are not part of ``state_dict`` (they are code); pass them again when
    rebuilding the scheduler before ``load_state_dict``.
    """

    _not_state = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(
                    f"LambdaLR: expected {n} lr_lambdas (one per parameter group), "
                    f"got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * fn(self.last_epoch)
                for base_lr, fn in zip(self.base_lrs, self.lr_lambdas)]


class StepLR(LRScheduler):
    """``lr_t = base_lr * gamma ** floor(t / step_size)``: decay by gamma every step_size steps."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_positive_int("StepLR", "step_size", step_size)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr_t = base_lr * gamma ** (number of milestones <= t)``."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return base_lr * self.gamma ** bisect_right(self.milestones, t)


class ExponentialLR(LRScheduler):
    """``lr_t = base_lr * gamma ** t``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return base_lr * self.gamma ** t


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing (Loshchilov & Hutter 2017, SGDR, Eq. 5, without restarts)::

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    PyTorch's closed form (``_get_closed_form_lr``). From base_lr at t = 0 to eta_min at
    t = T_max; past T_max the cosine continues (the rate rises again), as in PyTorch.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _check_positive_int("CosineAnnealingLR", "T_max", T_max)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return self.eta_min + (base_lr - self.eta_min) * (
            1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(LRScheduler):
    r"""Linear change of the factor from start_factor to end_factor over total_iters steps::

        lr_t = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters)
                          / total_iters)

    With the defaults (1/3 -> 1 over 5 steps) it is a linear warmup.
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if not 0 < start_factor <= 1:
            raise ValueError(
                f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        _check_positive_int("LinearLR", "total_iters", total_iters)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, t):
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                          * min(self.total_iters, t) / self.total_iters)


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` between ``milestones[i-1]`` and ``milestones[i]`` (PyTorch's).

    At global step t, with m the last milestone <= t (0 if none), the rate is
    ``schedulers[i]``'s closed form at local step ``t - m``. The schedulers must belong to
    this optimiser; their own ``step()`` must not be called.
    """

    _not_state = ("optimizer", "_schedulers")

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, got none")
        for i, s in enumerate(schedulers):
            if getattr(s, "optimizer", None) is not optimizer:
                raise ValueError(
                    f"SequentialLR: scheduler {i} ({type(s).__name__}) belongs to a different "
                    "optimizer")
            if isinstance(s, SequentialLR):
                raise ValueError("SequentialLR: nested SequentialLR is not supported")
        milestones = [int(m) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR expects one milestone fewer than schedulers, got "
                f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        if milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must increase, got {milestones}")
        self._schedulers = list(schedulers)
        self._milestones = milestones
        super().__init__(optimizer, last_epoch)

    def _active(self):
        idx = bisect_right(self._milestones, self.last_epoch)
        start = self._milestones[idx - 1] if idx > 0 else 0
        return self._schedulers[idx], self.last_epoch - start

    def get_lr(self):
        sched, local = self._active()
        sched.last_epoch = local
        return sched.get_lr()

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        children = state.pop("_schedulers", None)
        super().load_state_dict(state)
        if children is not None:
            for s, sd in zip(self._schedulers, children):
                s.load_state_dict(sd)


def warmup_cosine(optimizer, warmup_steps, total_steps, start_factor=1e-3, eta_min=0.0):
    r"""Linear warmup then cosine decay, the usual transformer/diffusion schedule.

    ``SequentialLR([LinearLR(start_factor, 1, warmup_steps),
    CosineAnnealingLR(total_steps - warmup_steps, eta_min)], milestones=[warmup_steps])``::

        lr_t = base_lr * (start_factor + (1 - start_factor) t / W)          t <  W
        lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi (t - W) / (T - W))) / 2   t >= W
    """
    if not 0 < warmup_steps < total_steps:
        raise ValueError(
            f"warmup_cosine: need 0 < warmup_steps < total_steps, got warmup_steps="
            f"{warmup_steps}, total_steps={total_steps}")
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0,
                      total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])
