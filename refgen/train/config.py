"""``TrainConfig``: every option of the training loop, as one JSON-able dataclass.

The config is written to ``out_dir/config.json`` and into every checkpoint; a resumed run
must use the same values (``refgen.train.checkpoint.config_differences`` names any that
differ), except the bookkeeping options in ``RESUMABLE_CHANGES``.

Per-player overrides: a family with several players (a GAN's generator and critic) gets one
optimiser per player, each built from the global options unless ``players`` overrides them::

    TrainConfig(lr=2e-4, players={"critic": {"lr": 1e-4, "betas": (0.5, 0.9)}})
"""
import dataclasses
import json
import math
from dataclasses import dataclass, field

__all__ = ["TrainConfig", "OPTIMIZERS", "LR_SCHEDULES", "PLAYER_OPTIONS", "RESUMABLE_CHANGES"]

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine", "cosine_time")
# The options a player may override; everything else is shared by the whole run.
PLAYER_OPTIONS = ("optimizer", "lr", "betas", "eps", "momentum", "weight_decay", "grad_clip",
                  "lr_schedule", "warmup_steps")
# Options that may change between a run and its resumption without changing the trajectory
# (``steps`` only with the constant and time-based schedules: the step-indexed cosine
# schedules are functions of it).
RESUMABLE_CHANGES = ("out_dir", "log_every", "eval_every", "checkpoint_every", "minutes")


@dataclass
class TrainConfig:
    """Options of ``refgen.train.fit``.

    :param steps: number of optimisation steps (calls of ``training_step``).
    :param minutes: a budget of training time: stop (checkpoint and evaluate) at the first
        step after which the run's training time reaches ``minutes`` (None: no budget). The
        time counted is that of the training steps only (not evaluation, logging or
        checkpoints), and it is kept in the checkpoint, so a resumed run keeps counting.
        Quality comparisons at equal time use it. ``steps`` still bounds the run, and the
        step-indexed cosine schedules still run over ``steps`` (``"cosine_time"`` runs over
        ``minutes``).
    :param batch_size: examples per batch (used when ``fit`` builds the loader itself).
    :param lr: learning rate. :param optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
    :param betas: Adam's (beta1, beta2). :param eps: Adam's epsilon.
    :param momentum: SGD's momentum. :param weight_decay: L2 (Adam/SGD) or decoupled (AdamW).
    :param grad_clip: clip the joint gradient norm of each player to this value (None: off).
    :param ema_decay: keep an exponential moving average of all parameters with this decay
        (None: off); evaluation and the CLI's sampling then use the averaged weights.
    :param lr_schedule: ``"constant"`` (after an optional linear warmup), ``"cosine"``
        (from lr to 0 over ``steps``) or ``"warmup_cosine"`` (linear warmup over
        ``warmup_steps`` then cosine to 0 at ``steps``) or ``"cosine_time"``: cosine from lr to
        0 over the time budget, ``lr * (1 + cos(pi * min(1, elapsed / (60 * minutes)))) / 2``
        with ``elapsed`` the training time before the step. It needs ``minutes``; the decay
        then ends when the budget does, whatever the machine's speed, at the price of a
        trajectory that depends on the measured times (a resumed run continues from the
        checkpointed time, but is not bit-identical to an uninterrupted one, and resuming
        with another ``minutes`` stretches the remaining decay).
    :param warmup_steps: length of the linear warmup (0: none).
    :param log_every: write a log line (means over the steps since the last line) every so
        many steps, and at the last step.
    :param eval_every: call ``trainable.evaluate`` every so many steps (None: only at the end).
    :param checkpoint_every: write ``checkpoint.npz`` every so many steps, and at the end.
    :param seed: seeds the global generator, the loader's shuffle and the loop's generator.
    :param out_dir: where ``config.json``, ``log.jsonl`` and ``checkpoint.npz`` go.
    :param players: per-player overrides, ``{player: {option: value}}`` with options from
        ``PLAYER_OPTIONS``.
    """

    steps: int = 1000
    minutes: float = None
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = None
    ema_decay: float = None
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    log_every: int = 50
    eval_every: int = None
    checkpoint_every: int = 1000
    seed: int = 0
    out_dir: str = "runs/default"
    players: dict = field(default_factory=dict)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        self.players = {str(k): dict(v) for k, v in dict(self.players or {}).items()}
        self.out_dir = str(self.out_dir)
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("warmup_steps", self.warmup_steps, minimum=0)
        _check_int("seed", self.seed, minimum=0)
        if self.minutes is not None:
            _check_float("minutes", self.minutes)
            if not self.minutes > 0:
                raise ValueError(f"TrainConfig: minutes must be > 0 or None, got {self.minutes!r}")
        if self.eval_every is not None:
            _check_int("eval_every", self.eval_every, minimum=1)
        if self.ema_decay is not None:
            _check_float("ema_decay", self.ema_decay)
            if not 0.0 <= self.ema_decay < 1.0:
                raise ValueError(f"TrainConfig: ema_decay must be in [0, 1) or None, "
                                 f"got {self.ema_decay!r}")
        self._check_player_options("TrainConfig", self.options_dict())
        for player, overrides in self.players.items():
            unknown = sorted(set(overrides) - set(PLAYER_OPTIONS))
            if unknown:
                raise ValueError(
                    f"TrainConfig: unknown option(s) {', '.join(map(repr, unknown))} for "
                    f"player {player!r}; a player may override: {', '.join(PLAYER_OPTIONS)}")
            if "betas" in overrides:
                overrides["betas"] = tuple(overrides["betas"])
            self._check_player_options(f"TrainConfig (player {player!r})",
                                       self.options_for(player))

    def _check_player_options(self, where, o):
        if o["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"{where}: unknown optimizer {o['optimizer']!r}; known: "
                             f"{', '.join(OPTIMIZERS)}")
        if o["lr_schedule"] not in LR_SCHEDULES:
            raise ValueError(f"{where}: unknown lr_schedule {o['lr_schedule']!r}; known: "
                             f"{', '.join(LR_SCHEDULES)}")
        for name in ("lr", "eps", "momentum", "weight_decay"):
            _check_float(name, o[name], where)
            if o[name] < 0:
                raise ValueError(f"{where}: {name} must be >= 0, got {o[name]!r}")
        if len(o["betas"]) != 2 or not all(0.0 <= float(b) < 1.0 for b in o["betas"]):
            raise ValueError(f"{where}: betas must be two numbers in [0, 1), got {o['betas']!r}")
        if o["grad_clip"] is not None:
            _check_float("grad_clip", o["grad_clip"], where)
            if not o["grad_clip"] > 0:
                raise ValueError(f"{where}: grad_clip must be > 0 or None, got {o['grad_clip']!r}")
        _check_int("warmup_steps", o["warmup_steps"], minimum=0, where=where)
        if o["lr_schedule"] == "warmup_cosine" and not 0 < o["warmup_steps"] < self.steps:
            raise ValueError(
                f"{where}: lr_schedule 'warmup_cosine' needs 0 < warmup_steps < steps, got "
                f"warmup_steps={o['warmup_steps']}, steps={self.steps}")
        if o["lr_schedule"] == "cosine_time" and self.minutes is None:
            raise ValueError(f"{where}: lr_schedule 'cosine_time' decays over the time budget; "
                             "it needs minutes (refgen train --minutes)")
        if o["lr_schedule"] in ("cosine", "cosine_time") and o["warmup_steps"] > 0:
            # CosineAnnealingLR has no warmup: it would be dropped without a word
            raise ValueError(f"{where}: lr_schedule {o['lr_schedule']!r} has no warmup, got "
                             f"warmup_steps={o['warmup_steps']}; use lr_schedule "
                             "'warmup_cosine'")
        if o["warmup_steps"] > self.steps:
            raise ValueError(f"{where}: warmup_steps ({o['warmup_steps']}) exceeds steps "
                             f"({self.steps})")

    def options_dict(self):
        """The global values of the per-player options."""
        return {name: getattr(self, name) for name in PLAYER_OPTIONS}

    def options_for(self, player):
        """The optimiser options of ``player``: the global ones with its overrides applied."""
        options = self.options_dict()
        options.update(self.players.get(player, {}))
        return options

    def to_dict(self):
        """A JSON-able dict (tuples become lists) that ``from_dict`` turns back into this."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d):
        """Build from a dict as ``to_dict`` writes it; unknown keys are an error naming them."""
        if not isinstance(d, dict):
            raise TypeError(f"TrainConfig.from_dict expects a dict, got {type(d).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"TrainConfig: unknown option(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(known)}")
        return cls(**d)

    def replace(self, **changes):
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_int(name, value, minimum, where="TrainConfig"):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name, value, where="TrainConfig"):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")
