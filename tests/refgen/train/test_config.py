"""``TrainConfig``: validation with named errors, per-player overrides, dict round trips."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refgen.train import LR_SCHEDULES, OPTIMIZERS, PLAYER_OPTIONS, TrainConfig


def test_defaults_are_valid_and_json():
    c = TrainConfig()
    assert c.optimizer == "adam" and c.lr_schedule == "constant" and c.players == {}
    json.dumps(c.to_dict())


configs = st.builds(
    TrainConfig,
    steps=st.integers(10, 10_000), batch_size=st.integers(1, 512),
    lr=st.floats(0, 1), optimizer=st.sampled_from(OPTIMIZERS),
    betas=st.tuples(st.floats(0, 0.999), st.floats(0, 0.999)),
    grad_clip=st.none() | st.floats(1e-3, 10), ema_decay=st.none() | st.floats(0, 0.9999),
    lr_schedule=st.sampled_from(("constant", "cosine")),
    log_every=st.integers(1, 100), eval_every=st.none() | st.integers(1, 100),
    seed=st.integers(0, 2**31), out_dir=st.text(min_size=1, max_size=10),
    players=st.dictionaries(st.sampled_from(("generator", "critic")),
                            st.fixed_dictionaries({"lr": st.floats(0, 1)}), max_size=2))
# a warmup of 0..9 steps before a constant rate; "cosine" has none (warmup_cosine does)
configs = st.builds(lambda c, w: c.replace(warmup_steps=w if c.lr_schedule == "constant" else 0),
                    configs, st.integers(0, 9))


@given(configs)
def test_dict_round_trip_through_json(c):
    d = json.loads(json.dumps(c.to_dict()))
    assert TrainConfig.from_dict(d) == c


def test_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown option\(s\) 'learning_rate'; known: steps"):
        TrainConfig.from_dict({"learning_rate": 1.0})


@pytest.mark.parametrize("changes, message", [
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; known: adam, adamw, sgd"),
    ({"lr_schedule": "step"}, "unknown lr_schedule 'step'; known: " + ", ".join(LR_SCHEDULES)),
    ({"steps": 0}, "steps must be an integer >= 1, got 0"),
    ({"steps": 2.5}, "steps must be an integer >= 1, got 2.5"),
    ({"lr": -1.0}, "lr must be >= 0"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"betas": (0.9, 1.0)}, "betas must be two numbers in"),
    ({"grad_clip": 0.0}, "grad_clip must be > 0 or None"),
    ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
    ({"eval_every": 0}, "eval_every must be an integer >= 1"),
    ({"lr_schedule": "warmup_cosine", "warmup_steps": 0}, "needs 0 < warmup_steps < steps"),
    ({"warmup_steps": 2000}, r"warmup_steps \(2000\) exceeds steps \(1000\)"),
    ({"lr_schedule": "cosine", "warmup_steps": 10},
     "lr_schedule 'cosine' has no warmup, got warmup_steps=10; use lr_schedule 'warmup_cosine'"),
    ({"players": {"critic": {"momentum": -1.0}}}, r"player 'critic'\): momentum must be >= 0"),
    ({"players": {"critic": {"batch_size": 3}}},
     "unknown option.*'batch_size' for player 'critic'; a player may override: "
     + ", ".join(PLAYER_OPTIONS)),
])
def test_bad_values_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_player_overrides_apply_to_that_player_only():
    c = TrainConfig(lr=2e-4, grad_clip=1.0,
                    players={"critic": {"lr": 1e-4, "betas": [0.5, 0.9], "grad_clip": None}})
    assert c.options_for("critic")["lr"] == 1e-4
    assert c.options_for("critic")["betas"] == (0.5, 0.9)
    assert c.options_for("critic")["grad_clip"] is None
    assert c.options_for("generator")["lr"] == 2e-4
    assert c.options_for("generator")["grad_clip"] == 1.0
    assert c.replace(lr=1.0).options_for("generator")["lr"] == 1.0
