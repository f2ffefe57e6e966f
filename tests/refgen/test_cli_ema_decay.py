"""``refgen train --ema-decay D``: the training run keeps a parameter average with decay D
(written to config.json's train_config and used by ``refgen.load``); without the option the
family's default stands."""
import json

import numpy as np  # host-side: comparing parameter arrays

import autodiff
import refgen
from refgen.cli import main


def _train(tmp_path, name, extra):
    run = tmp_path / name
    args = ["train", "realnvp", "--data", "ring8:std=0.1", "--steps", "3", "--lr", "1e-2",
            "--eval-split", "none", "--quiet", "--out", str(run)] + extra
    assert main(args) == 0
    return run, json.loads((run / "config.json").read_text())["train_config"]


def test_ema_decay_reaches_the_training_config(tmp_path):
    run, config = _train(tmp_path, "ema", ["--ema-decay", "0.5"])
    assert config["ema_decay"] == 0.5
    # the average differs from the raw weights after 3 steps of a large learning rate
    dtype = autodiff.get_default_dtype()
    try:    # load sets the default dtype to the run's
        averaged, raw = ([p.numpy() for m in refgen.load(run / "checkpoint.npz", ema=ema)
                          .modules().values() for p in m.parameters()] for ema in (True, False))
    finally:
        autodiff.set_default_dtype(dtype)
    assert len(averaged) == len(raw) > 0
    assert any(not np.allclose(a, r) for a, r in zip(averaged, raw))


def test_without_the_option_the_family_default_stands(tmp_path):
    from refgen.families import get_family
    from refgen.data import load_dataset
    info = dict(load_dataset("ring8:std=0.1", split="train").info)
    default = get_family("realnvp").train_defaults(info).get("ema_decay")
    _, config = _train(tmp_path, "default", [])
    assert config.get("ema_decay") == default
