"""Checkpoint files: named errors for missing/corrupt/foreign files, config differences,
and ``restore_modules`` (raw or EMA weights into a fresh model)."""
import numpy as np  # host-side: writing a plain .npz and comparing arrays in tests
import pytest

import autodiff
from refgen.train import (CheckpointError, config_differences, load_checkpoint, restore_modules,
                          save_checkpoint)

from .toy_trainable import MLPClassifier, run_mlp


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    autodiff.set_default_dtype("float64")
    out = tmp_path_factory.mktemp("run")
    model, result = run_mlp(out)
    return model, result.checkpoint_path


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=f"no checkpoint at '{path}'"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_file_names_the_path(tmp_path, trained, damage):
    data = bytearray(open(trained[1], "rb").read())
    if damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "garbage":
        data = bytearray(b"not a zip file at all" * 10)
    else:  # damage the middle of the archive (array bytes / JSON structure)
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0xFF
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"'{path}'"):
        load_checkpoint(path)


def test_plain_npz_and_foreign_archive_are_refused(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(CheckpointError, match=f"'{plain}'.*corrupt or unreadable"):
        load_checkpoint(plain)
    foreign = tmp_path / "weights.npz"
    autodiff.save({"w": autodiff.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match=f"'{foreign}' is a refgen archive but not a "
                                              "training checkpoint"):
        load_checkpoint(foreign)
    partial = tmp_path / "partial.npz"
    save_checkpoint(partial, {"family": "x", "config": {}, "step": 0})
    with pytest.raises(CheckpointError, match="lacks the entries train_config, modules"):
        load_checkpoint(partial)


def test_checkpoint_contents(trained):
    ckpt = load_checkpoint(trained[1])
    assert ckpt["family"] == "toy-mlp" and ckpt["step"] == 13
    assert set(ckpt["rng"]) == {"global", "loop", "trainable"}
    assert set(ckpt["rng"]["trainable"]) == {"dropout"}
    assert ckpt["ema"]["num_updates"] == 13
    assert ckpt["optimizers"]["model"]["state"][0]["step"] == 13
    assert ckpt["schedulers"]["model"]["last_epoch"] == 13
    assert ckpt["log_tail"][-1]["step"] == 13


def test_config_differences():
    ckpt = {"family": "vae", "config": {"z": 8, "beta": [1, 2]},
            "train_config": {"lr": 1e-3, "steps": 10, "out_dir": "a", "lr_schedule": "cosine",
                             "players": {}}}
    same = dict(ckpt["train_config"], out_dir="b")
    assert config_differences(ckpt, "vae", {"z": 8, "beta": (1, 2)}, same) == []
    diffs = config_differences(ckpt, "gan", {"z": 4, "beta": [1, 2]},
                               dict(same, lr=1e-2, steps=20))
    assert diffs == ["family ('vae' in the checkpoint, 'gan' now)",
                     "config.z (8 in the checkpoint, 4 now)",
                     "train_config.lr (0.001 in the checkpoint, 0.01 now)",
                     "train_config.steps (10 in the checkpoint, 20 now)"]
    constant = dict(ckpt, train_config=dict(ckpt["train_config"], lr_schedule="constant"))
    assert config_differences(constant, "vae", ckpt["config"],
                              dict(constant["train_config"], steps=99)) == []
    added = config_differences(ckpt, "vae", {"z": 8, "beta": [1, 2], "new": 1}, same)
    assert added == ["config.new ('<absent>' in the checkpoint, 1 now)"]


def test_restore_modules_raw_and_ema(trained):
    model, path = trained
    ckpt = load_checkpoint(path)
    fresh = MLPClassifier(seed=5)
    restore_modules(fresh, ckpt, use_ema=False)
    for a, b in zip(fresh.net.parameters(), model.net.parameters()):
        assert np.array_equal(a.numpy(), b.numpy())
    restore_modules(fresh, ckpt, use_ema=True)
    for a, s in zip(fresh.net.parameters(), ckpt["ema"]["shadow_params"]):
        assert np.array_equal(a.numpy(), s.numpy())
    with pytest.raises(CheckpointError, match="no state for module.*other.*it holds: net"):
        class Other(MLPClassifier):
            def modules(self):
                return {"other": self.net}
        restore_modules(Other(), ckpt)
