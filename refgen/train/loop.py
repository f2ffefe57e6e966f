"""``fit``: the one training loop for every family.

A family supplies a *trainable* (duck-typed)::

    config: dict                                   JSON-able, enough to rebuild it
    modules() -> dict[str, nn.Module]              all state to checkpoint
    parameter_groups() -> dict[str, list[Tensor]]  one entry per player / optimiser
    training_step(batch, step, ctx) -> dict[str, float]   calls ctx.optimize(player, loss)
    evaluate(dataset, ctx) -> dict[str, float]     optional
    generators() -> dict[str, autodiff.Generator]  optional: random streams it owns
    family: str                                    optional: its name in checkpoints

and the loop supplies batching, one optimiser and learning-rate schedule per player,
gradient clipping, an exponential moving average (EMA) of the parameters, logging,
evaluation and checkpoints. One step of the loop::

    batch = next(loader)
    metrics = trainable.training_step(batch, step, ctx)   # ctx.optimize(...) inside
    every scheduler steps; ema.update()                    # once per loop step
    log / evaluate / checkpoint when due

Evaluation runs with the modules in eval mode, under ``autodiff.no_grad()`` (a family that
needs gradients there uses ``autodiff.enable_grad()``), and with the EMA weights when
``ema_decay`` is set; the raw weights are put back afterwards. The global generator's state
is saved before and restored after, and ``ctx.generator`` is a fresh generator seeded from
the config, so evaluation never changes the training trajectory and gives the same numbers
for the same weights.

Determinism: a fresh run seeds the global generator with ``config.seed``, the loader's
shuffle with ``seed + 1`` and ``ctx.generator`` with ``seed + 2``. Every random stream,
optimiser, schedule, EMA, the data order and the partial log window are checkpointed, so a
run killed at any moment and resumed from its last checkpoint ends with parameters
bit-identical to an uninterrupted run (same backend, same machine).
"""
import glob
import json
import math
import os
import time
from dataclasses import dataclass, field

import autodiff
from autodiff import optim
from autodiff.optim import lr_scheduler

from .checkpoint import (CHECKPOINT_NAME, CheckpointError, config_differences, family_name,
                         load_checkpoint, save_checkpoint)
from .config import TrainConfig
from .context import TrainContext
from .logging import JsonlLog, Progress
from ..fileio import atomic_open

__all__ = ["fit", "TrainResult", "LOG_NAME", "CONFIG_NAME"]

LOG_NAME = "log.jsonl"
CONFIG_NAME = "config.json"
_LOG_TAIL = 200  # log records kept inside each checkpoint (a backup of the log's end)


@dataclass
class TrainResult:
    """What ``fit`` returns: the final step, the last logged numbers, and the files."""

    step: int
    metrics: dict
    eval_metrics: dict
    out_dir: str
    checkpoint_path: str
    log_path: str
    config_path: str
    history: list = field(default_factory=list, repr=False)  # this session's log records
    elapsed: float = 0.0            # training time in seconds, all sessions of the run
    stopped_by_time: bool = False   # ended by TrainConfig.minutes before TrainConfig.steps


# --------------------------------------------------------------------------- building
def _check_trainable(trainable):
    missing = [name for name in ("modules", "parameter_groups", "training_step")
               if not callable(getattr(trainable, name, None))]
    if not hasattr(trainable, "config"):
        missing.append("config")
    if missing:
        raise TypeError(f"fit: {type(trainable).__name__} is not a trainable; it lacks "
                        f"{', '.join(missing)} (see refgen.train.loop's docstring)")
    modules = trainable.modules()
    if not isinstance(modules, dict) or not modules:
        raise TypeError("fit: trainable.modules() must return a non-empty dict name -> Module")
    groups = trainable.parameter_groups()
    if not isinstance(groups, dict) or not groups:
        raise TypeError("fit: trainable.parameter_groups() must return a non-empty dict "
                        "player -> list of parameters")
    groups = {str(k): list(v) for k, v in groups.items()}
    seen = {}
    for player, params in groups.items():
        if not params:
            raise ValueError(f"fit: parameter group {player!r} is empty")
        for p in params:
            if id(p) in seen:
                raise ValueError(f"fit: a parameter is in both groups {seen[id(p)]!r} and "
                                 f"{player!r}; each parameter belongs to one player")
            seen[id(p)] = player
    return modules, groups


def _make_optimizer(params, o):
    if o["optimizer"] == "sgd":
        return optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                         weight_decay=o["weight_decay"])
    cls = optim.AdamW if o["optimizer"] == "adamw" else optim.Adam
    return cls(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"],
               weight_decay=o["weight_decay"])


def _make_scheduler(opt, o, steps):
    """None for a constant rate (and for ``cosine_time``, which ``_Run.set_time_cosine_lrs``
    sets from the elapsed time); closed-form schedules otherwise (see TrainConfig)."""
    warmup = o["warmup_steps"]
    if o["lr_schedule"] == "cosine":
        return lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    if o["lr_schedule"] == "warmup_cosine":
        return lr_scheduler.warmup_cosine(opt, warmup_steps=warmup, total_steps=steps)
    if warmup > 0:  # constant after a linear warmup from lr / warmup
        return lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0,
                                     total_iters=warmup)
    return None


def _is_loader(obj):
    return all(callable(getattr(obj, n, None)) for n in ("__next__", "state_dict",
                                                         "load_state_dict"))


def _make_loader(train_data, config):
    """``train_data`` as a loader: used as is when it is one (has ``__next__``,
    ``state_dict`` and ``load_state_dict``), else wrapped in ``refgen.data.BatchLoader``."""
    if _is_loader(train_data):
        return train_data
    from refgen.data import BatchLoader

    return BatchLoader(train_data, config.batch_size, shuffle=True, drop_last=True,
                       generator=autodiff.Generator(config.seed + 1))


def _trainable_generators(trainable):
    gens = trainable.generators() if callable(getattr(trainable, "generators", None)) else {}
    for name, g in gens.items():
        if not isinstance(g, autodiff.Generator):
            raise TypeError(f"fit: trainable.generators()[{name!r}] is a {type(g).__name__}, "
                            "not an autodiff.Generator")
    return gens


def _generator_state(where, generator):
    """A generator's state as plain data, or a clear error where the backend has none."""
    state = generator.get_state()
    if not isinstance(state, dict):
        raise RuntimeError(
            f"cannot checkpoint the random generator {where} on backend "
            f"{autodiff.get_backend()!r}: its state is a {type(state).__name__}, not plain "
            "data (autodiff.Generator.get_state must return a dict for exact resume)")
    return state


def _write_json_atomic(path, obj):
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def _as_float(name, value, step):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"training_step at step {step} returned {name!r} = {value!r}; the "
                        "numbers to log must be floats") from None


# --------------------------------------------------------------------------- the run
class _Run:
    """The state of one call of ``fit``; methods are the pieces of the loop."""

    def __init__(self, trainable, train_data, config, eval_data, progress):
        self.trainable = trainable
        self.config = config
        self.eval_data = eval_data
        self.modules, self.groups = _check_trainable(trainable)
        unknown = sorted(set(config.players) - set(self.groups))
        if unknown:
            raise ValueError(f"TrainConfig.players names unknown player(s) "
                             f"{', '.join(map(repr, unknown))}; this family's players: "
                             f"{', '.join(self.groups)}")
        self.family = family_name(trainable)
        self.out_dir = config.out_dir
        self.ckpt_path = os.path.join(self.out_dir, CHECKPOINT_NAME)
        self.log_path = os.path.join(self.out_dir, LOG_NAME)
        self.config_path = os.path.join(self.out_dir, CONFIG_NAME)
        self.loader = _make_loader(train_data, config)
        self.optimizers, self.schedulers = {}, {}
        self.time_cosine_lrs = {}   # player -> its groups' base lrs, for cosine_time
        for player, params in self.groups.items():
            o = config.options_for(player)
            self.optimizers[player] = _make_optimizer(params, o)
            self.schedulers[player] = _make_scheduler(self.optimizers[player], o, config.steps)
            if o["lr_schedule"] == "cosine_time":
                self.time_cosine_lrs[player] = [g["lr"] for g in
                                                self.optimizers[player].param_groups]
        self.params = [p for ps in self.groups.values() for p in ps]
        self.ema = (optim.ExponentialMovingAverage(self.params, decay=config.ema_decay)
                    if config.ema_decay is not None else None)
        self.generators = _trainable_generators(trainable)
        self.ctx = TrainContext(config, self.groups, self.optimizers,
                                autodiff.Generator(config.seed + 2))
        self.step = 0
        self.saved_step = None  # the step of the checkpoint now in out_dir
        self.elapsed = 0.0
        self.sums, self.counts = {}, {}
        self.tail, self.history = [], []
        self.metrics, self.eval_metrics = {}, {}
        self.log = JsonlLog(self.log_path)
        self.progress = Progress(config.steps, enabled=progress)

    # ---- state in and out
    def payload(self):
        return {
            "family": self.family, "config": self.trainable.config,
            "train_config": self.config.to_dict(), "step": self.step, "elapsed": self.elapsed,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: (s.state_dict() if s is not None else None)
                           for k, s in self.schedulers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": {"global": _generator_state("global", autodiff.default_generator()),
                    "loop": _generator_state("ctx.generator", self.ctx.generator),
                    "trainable": {k: _generator_state(f"generators()[{k!r}]", g)
                                  for k, g in self.generators.items()}},
            "loader": self.loader.state_dict(),
            "log_window": {"sums": dict(self.sums), "counts": dict(self.counts)},
            "log_tail": list(self.tail), "metrics": dict(self.metrics),
            "eval_metrics": dict(self.eval_metrics),
        }

    def restore(self):
        if not os.path.exists(self.ckpt_path):
            raise FileNotFoundError(f"cannot resume: no checkpoint at {self.ckpt_path!r} "
                                    "(run without resume to start a fresh run there)")
        ckpt = load_checkpoint(self.ckpt_path)
        diffs = config_differences(ckpt, self.family, self.trainable.config,
                                   self.config.to_dict())
        if diffs:
            raise CheckpointError(
                f"cannot resume from {self.ckpt_path!r}: it belongs to a different run; "
                f"differing: {'; '.join(diffs)}")
        if ckpt["step"] > self.config.steps:
            raise CheckpointError(f"cannot resume from {self.ckpt_path!r}: it is at step "
                                  f"{ckpt['step']}, beyond steps={self.config.steps}")
        for name, module in self.modules.items():
            if name not in ckpt["modules"]:
                raise CheckpointError(f"checkpoint {self.ckpt_path!r} has no module {name!r}; "
                                      f"it holds: {', '.join(ckpt['modules'])}")
            module.load_state_dict(ckpt["modules"][name])
        for player, opt in self.optimizers.items():
            if player not in ckpt["optimizers"]:
                raise CheckpointError(f"checkpoint {self.ckpt_path!r} has no optimiser for "
                                      f"player {player!r}; it holds: "
                                      f"{', '.join(ckpt['optimizers'])}")
            opt.load_state_dict(ckpt["optimizers"][player])
            sched, saved = self.schedulers[player], (ckpt.get("schedulers") or {}).get(player)
            if sched is not None and saved is not None:
                sched.load_state_dict(saved)
        if self.ema is not None:
            if ckpt.get("ema") is None:
                raise CheckpointError(f"checkpoint {self.ckpt_path!r} has no EMA state")
            self.ema.load_state_dict(ckpt["ema"])
        rng = ckpt["rng"]
        autodiff.default_generator().set_state(rng["global"])
        self.ctx.generator.set_state(rng["loop"])
        missing = sorted(set(self.generators) - set(rng["trainable"]))
        if missing:
            raise CheckpointError(f"checkpoint {self.ckpt_path!r} has no state for the "
                                  f"trainable's generator(s) {', '.join(missing)}")
        for name, g in self.generators.items():
            g.set_state(rng["trainable"][name])
        self.loader.load_state_dict(ckpt["loader"])
        self.step = self.saved_step = int(ckpt["step"])
        self.elapsed = float(ckpt.get("elapsed", 0.0))
        window = ckpt.get("log_window") or {}
        self.sums = {k: float(v) for k, v in window.get("sums", {}).items()}
        self.counts = {k: int(v) for k, v in window.get("counts", {}).items()}
        self.tail = list(ckpt.get("log_tail", []))
        self.metrics = dict(ckpt.get("metrics", {}))
        self.eval_metrics = dict(ckpt.get("eval_metrics", {}))
        self.log.keep_until(self.step, fallback=self.tail)

    def start_fresh(self):
        if os.path.exists(self.ckpt_path):
            raise FileExistsError(
                f"{self.ckpt_path!r} already exists; pass resume=True to continue that run, "
                "or choose another out_dir (a fresh run never overwrites a checkpoint)")
        autodiff.manual_seed(self.config.seed)
        self.log.start_fresh()

    def save(self):
        save_checkpoint(self.ckpt_path, self.payload())
        self.saved_step = self.step

    # ---- one step
    def set_time_cosine_lrs(self):
        """``cosine_time``: lr = base_lr * (1 + cos(pi * min(1, elapsed / budget))) / 2, from
        the training time before this step (a function of the checkpointed ``elapsed``)."""
        if not self.time_cosine_lrs:
            return
        fraction = min(1.0, self.elapsed / (60.0 * self.config.minutes))
        factor = 0.5 * (1.0 + math.cos(math.pi * fraction))
        for player, base_lrs in self.time_cosine_lrs.items():
            for group, base in zip(self.optimizers[player].param_groups, base_lrs):
                group["lr"] = base * factor

    def train_step(self):
        self.set_time_cosine_lrs()
        lrs = {f"lr/{p}": float(o.param_groups[0]["lr"]) for p, o in self.optimizers.items()}
        batch = next(self.loader)
        self.ctx.begin_step(self.step)
        metrics = self.trainable.training_step(batch, self.step, self.ctx)
        if not isinstance(metrics, dict):
            raise TypeError(f"training_step at step {self.step} returned a "
                            f"{type(metrics).__name__}; it must return a dict of floats")
        if not any(self.ctx.updates.values()):
            raise RuntimeError(f"training_step at step {self.step} never called "
                               "ctx.optimize(player, loss); the loop only updates parameters "
                               "through it")
        numbers = {str(k): _as_float(k, v, self.step) for k, v in metrics.items()}
        bad = [k for k, v in numbers.items() if not math.isfinite(v)]
        if bad:
            last = ("no checkpoint was written" if self.saved_step is None else
                    f"the last checkpoint is {self.ckpt_path!r} at step {self.saved_step}")
            raise FloatingPointError(
                f"training diverged at step {self.step}: {', '.join(bad)} = "
                f"{', '.join(repr(numbers[k]) for k in bad)}; {last}")
        numbers.update(lrs)
        numbers.update({f"grad_norm/{p}": v for p, v in self.ctx.grad_norms.items()})
        for sched in self.schedulers.values():
            if sched is not None:
                sched.step()
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        for k, v in numbers.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        return numbers

    def evaluate(self):
        evaluate = getattr(self.trainable, "evaluate", None)
        if self.eval_data is None or not callable(evaluate):
            return {}
        global_state = autodiff.default_generator().get_state()
        train_generator = self.ctx.generator
        self.ctx.generator = autodiff.Generator(self.config.seed + 3)
        self.ctx.evaluating, self.ctx.step = True, self.step
        for m in self.modules.values():
            m.eval()
        try:
            with autodiff.no_grad():
                if self.ema is not None:
                    with self.ema.average_parameters():
                        result = evaluate(self.eval_data, self.ctx)
                else:
                    result = evaluate(self.eval_data, self.ctx)
        finally:
            for m in self.modules.values():
                m.train()
            self.ctx.evaluating = False
            self.ctx.generator = train_generator
            autodiff.default_generator().set_state(global_state)
        if not isinstance(result, dict):
            raise TypeError(f"evaluate returned a {type(result).__name__}; it must return a "
                            "dict of floats")
        return {f"eval/{k}": _as_float(k, v, self.step) for k, v in result.items()}

    def write_record(self, record):
        record = {"step": self.step, "time": round(self.elapsed, 3),
                  "wall": round(time.time(), 3), **record}
        self.log.write(record)
        self.tail = (self.tail + [record])[-_LOG_TAIL:]
        self.history.append(record)

    def run(self, resume):
        if resume:
            self.restore()
        else:
            self.start_fresh()
        _write_json_atomic(self.config_path, {"family": self.family,
                                              "config": self.trainable.config,
                                              "train_config": self.config.to_dict()})
        for m in self.modules.values():
            m.train()
        c = self.config
        budget = None if c.minutes is None else 60.0 * c.minutes
        self.stopped_by_time = False
        try:
            while self.step < c.steps and (budget is None or self.elapsed < budget):
                t0 = time.perf_counter()
                numbers = self.train_step()
                self.elapsed += time.perf_counter() - t0
                out_of_time = budget is not None and self.elapsed >= budget
                self.stopped_by_time = out_of_time and self.step < c.steps
                last = self.step == c.steps or out_of_time
                record = {}
                if self.step % c.log_every == 0 or last:
                    record = {k: self.sums[k] / self.counts[k] for k in self.sums}
                    self.sums, self.counts = {}, {}
                    self.metrics = dict(record)
                if (c.eval_every is not None and self.step % c.eval_every == 0) or last:
                    self.eval_metrics = self.evaluate()
                    record.update(self.eval_metrics)
                if record:
                    self.write_record(record)
                self.progress.update(self.step, numbers)
                if self.step % c.checkpoint_every == 0 or last:
                    self.save()
        finally:
            self.progress.close()
            self.log.close()
        return TrainResult(step=self.step, metrics=self.metrics, eval_metrics=self.eval_metrics,
                           out_dir=self.out_dir, checkpoint_path=self.ckpt_path,
                           log_path=self.log_path, config_path=self.config_path,
                           history=self.history, elapsed=self.elapsed,
                           stopped_by_time=self.stopped_by_time)


def _remove_stale_temporaries(out_dir):
    """Temporary files of checkpoint writes that a crash interrupted (never complete)."""
    for path in glob.glob(os.path.join(glob.escape(out_dir), f".{CHECKPOINT_NAME}.*.tmp")):
        try:
            os.unlink(path)
        except OSError:
            pass


def fit(trainable, train_data, config, eval_data=None, resume=False, progress=True):
    """Train ``trainable`` for ``config.steps`` steps; returns a ``TrainResult``.

    :param trainable: a family's model (see the module docstring for the protocol).
    :param train_data: an ``ArrayDataset`` (batched by ``refgen.data.BatchLoader`` with
        ``config.batch_size``, shuffled from ``config.seed + 1``) or a ready loader (anything
        with ``__next__``, ``state_dict`` and ``load_state_dict``).
    :param config: a ``TrainConfig``.
    :param eval_data: passed to ``trainable.evaluate`` every ``eval_every`` steps and at the
        end (skipped when None or when the trainable has no ``evaluate``).
    :param resume: continue from ``out_dir/checkpoint.npz``: a missing file raises
        ``FileNotFoundError``, a corrupt one or one of a different family/config
        ``CheckpointError``, each naming the path (and the differing keys). Without it, an
        existing checkpoint in ``out_dir`` is an error: a fresh run never overwrites one.
    :param progress: show a progress line on stderr (only when it is a terminal).

    Writes ``out_dir/config.json``, ``out_dir/log.jsonl`` and ``out_dir/checkpoint.npz``
    (every ``checkpoint_every`` steps and at the end, atomically).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"fit: config must be a TrainConfig, got {type(config).__name__} "
                        "(TrainConfig.from_dict turns a dict into one)")
    os.makedirs(config.out_dir, exist_ok=True)
    _remove_stale_temporaries(config.out_dir)
    return _Run(trainable, train_data, config, eval_data, progress).run(resume)
