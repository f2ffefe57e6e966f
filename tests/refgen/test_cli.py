"""The ``refgen`` command: help with examples everywhere, one-line errors without a
traceback, and train -> eval -> sample on digits end to end."""
import json
import os
import subprocess
import sys

import pytest

from refgen.cli import build_parser, main

COMMANDS = [[], ["train"], ["sample"], ["eval"], ["data"], ["data", "list"],
            ["data", "download"], ["data", "show"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "refgen")
def test_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(command + ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out
    # the example is a runnable command line of this very command
    assert "  refgen " + " ".join(command) in out


def test_every_subcommand_has_help():
    parser = build_parser()
    top = next(a for a in parser._actions if getattr(a, "choices", None))
    assert set(top.choices) == {"train", "sample", "eval", "data", "zoo", "experiment"}


def _error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_unknown_family_lists_known(capsys):
    assert main(["train", "vea", "--data", "digits"]) == 1
    line = _error_line(capsys)
    assert "'vea'" in line and "classifier" in line


def test_unknown_data_set_lists_known(capsys, tmp_path):
    assert main(["train", "classifier", "--data", "mnits", "--out", str(tmp_path)]) == 1
    line = _error_line(capsys)
    assert "'mnits'" in line and "digits" in line and "mnist" in line
    assert main(["data", "show", "mnits"]) == 1
    assert "digits" in _error_line(capsys)


def test_missing_and_corrupt_checkpoint_named(capsys, tmp_path):
    missing = tmp_path / "missing.npz"
    assert main(["eval", "--checkpoint", str(missing)]) == 1
    assert "missing.npz" in _error_line(capsys)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    assert main(["sample", "--checkpoint", str(corrupt), "--n", "4",
                 "--out", str(tmp_path / "s.png")]) == 1
    assert "corrupt.npz" in _error_line(capsys)


def test_gpu_without_cupy_is_one_line(capsys, tmp_path):
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed: the missing-CuPy error cannot be shown")
    except ImportError:
        pass
    assert main(["train", "classifier", "--data", "digits", "--device", "gpu",
                 "--out", str(tmp_path)]) == 1
    assert "CuPy" in _error_line(capsys)


def _env_with_checkout_on_path(**extra):
    """The environment for a ``python -m refgen`` subprocess: the checkout this test
    imported refgen from goes first on PYTHONPATH, so the test passes from a plain
    checkout (no ``pip install``) and runs this tree's code, not an installed copy."""
    import refgen
    root = os.path.dirname(os.path.dirname(os.path.abspath(refgen.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def test_python_dash_m_exits_nonzero_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "refgen", "train", "nope", "--data", "digits"],
                          capture_output=True, text=True, cwd=tmp_path,
                          env=_env_with_checkout_on_path(REFGEN_DEBUG=""))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "known: classifier" in proc.stderr


def test_data_list_and_show(capsys, tmp_path):
    assert main(["data", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert "digits" in names and "mnist" in names
    out = tmp_path / "digits.png"
    assert main(["data", "show", "digits", "--out", str(out), "--n", "16"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "digits" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_eval_sample_on_digits(capsys, tmp_path, dtype):
    run = tmp_path / "run"
    args = ["train", "classifier", "--data", "digits", "--steps", "40", "--out", str(run),
            "--quiet", "--dtype", dtype, "--seed", "3", "--log-every", "10"]
    assert main(args) == 0, capsys.readouterr().err
    for name in ("checkpoint.npz", "log.jsonl", "config.json", "loss.png"):
        assert (run / name).exists(), name
    assert "checkpoint" in capsys.readouterr().out
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and losses[-1] < losses[0]   # it learns

    ckpt = str(run / "checkpoint.npz")
    assert main(["eval", "--checkpoint", ckpt, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 40 and result["data"] == "digits" and result["split"] == "test"
    assert 0.0 <= result["accuracy"] <= 1.0 and result["nll"] > 0

    assert main(["eval", "--checkpoint", ckpt, "--metrics", "accuracy", "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "nll" not in out

    assert main(["eval", "--checkpoint", ckpt, "--metrics", "fid"]) == 1
    line = _error_line(capsys)
    assert "fid" in line and "accuracy" in line and "nll" in line

    assert main(["sample", "--checkpoint", ckpt, "--n", "4",
                 "--out", str(tmp_path / "s.png")]) == 1
    assert "cannot sample" in _error_line(capsys)

    # --resume of a finished run is a no-op; a fresh run never overwrites a checkpoint: it
    # moves the earlier run aside (test_cli_rerun.py has the details)
    first = (run / "checkpoint.npz").read_bytes()
    assert main(args + ["--resume"]) == 0
    assert (run / "checkpoint.npz").read_bytes() == first
    assert main(args) == 0
    assert "moved it to" in capsys.readouterr().err
    assert (tmp_path / "run.1" / "checkpoint.npz").read_bytes() == first


@pytest.mark.slow
def test_digits_classifier_trains_from_scratch_to_97_percent(capsys, tmp_path):
    """The shipped weights' recipe (refgen/weights/README.md), default options."""
    run = tmp_path / "clf-digits"
    assert main(["train", "classifier", "--data", "digits", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "checkpoint.npz"), "--json"]) == 0
    accuracy = json.loads(capsys.readouterr().out)["accuracy"]
    assert accuracy >= 0.97, f"digits test accuracy {accuracy:.4f} < 0.97"


@pytest.mark.parametrize("n", ["0", "-3"])
def test_data_show_rejects_a_count_below_one(capsys, tmp_path, n):
    out = tmp_path / "moons.png"
    assert main(["data", "show", "moons", "--out", str(out), "--n", n]) == 1
    assert _error_line(capsys) == f"refgen data: error: --n must be a positive integer, got {n}"
    assert not out.exists()


def test_data_show_points_draws_over_the_density(capsys, tmp_path):
    out = tmp_path / "ring8.png"
    assert main(["data", "show", "ring8", "--out", str(out), "--n", "200"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_write_samples_formats(tmp_path):
    import numpy as np  # host-side: reading back the saved samples

    import autodiff
    from refgen.cli import CLIError, _write_samples
    x = autodiff.rand(5, 1, 8, 8)
    _write_samples(x, str(tmp_path / "s.npy"), {}, "digits", "t")
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), x.numpy())
    assert _write_samples(x, str(tmp_path / "s.png"), {}, "digits", "t")
    assert _write_samples(autodiff.randn(50, 2), str(tmp_path / "p.png"), {}, "ring8", "t")
    with pytest.raises(CLIError, match=r"\.txt"):
        _write_samples(x, str(tmp_path / "s.txt"), {}, "digits", "t")
    with pytest.raises(CLIError, match=r"\(5, 3\)"):
        _write_samples(autodiff.randn(5, 3), str(tmp_path / "q.png"), {}, "x", "t")


class _MeanFamily:
    """A toy generative family registered only in the test: p_theta(x) = N(x; mu, I)."""

    @staticmethod
    def default_config(info):
        return {"dim": int(info["shape"][0])}

    @staticmethod
    def build(config, info=None):
        import autodiff
        from autodiff import nn

        class Model:
            family = "mean"

            def __init__(self):
                self.config = dict(config)
                self.net = nn.Linear(1, config["dim"])   # mu = its bias (weight unused)

            def modules(self):
                return {"model": self.net}

            def parameter_groups(self):
                return {"model": list(self.net.parameters())}

            def training_step(self, batch, step, ctx):
                x, _ = batch
                loss = ((x - self.net.bias) ** 2).sum(dim=1).mean()
                ctx.optimize("model", loss)
                return {"loss": loss.item()}

            def sample(self, n, generator):
                eps = autodiff.randn(n, self.config["dim"], generator=generator)
                return self.net.bias.detach() + eps

        return Model()


def test_a_new_family_plugs_into_train_and_sample(capsys, tmp_path, monkeypatch):
    import numpy as np  # host-side: reading back the samples

    from refgen import families
    monkeypatch.setitem(families.FAMILIES, "mean", _MeanFamily)
    run = tmp_path / "run"
    assert main(["train", "mean", "--data", "ring8", "--steps", "5", "--out", str(run),
                 "--quiet", "--eval-split", "none"]) == 0, capsys.readouterr().err
    ckpt = str(run / "checkpoint.npz")
    assert main(["sample", "--checkpoint", ckpt, "--n", "7", "--out",
                 str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (7, 2)
    assert main(["sample", "--checkpoint", ckpt, "--n", "50", "--out",
                 str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", "--checkpoint", ckpt]) == 1
    assert "no evaluation" in _error_line(capsys)
