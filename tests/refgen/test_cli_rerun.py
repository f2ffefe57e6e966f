"""Re-running ``refgen train`` into the same folder works (the earlier run is moved aside,
one line says where), and ``--resume`` of a run stopped before its first checkpoint starts
from step 0 and says so."""
import json
import os

from refgen.cli import main

TRAIN = ["train", "classifier", "--data", "digits", "--steps", "3", "--quiet",
         "--eval-split", "none", "--dtype", "float64"]


def _steps_logged(run):
    with open(run / "log.jsonl") as f:
        return [json.loads(line)["step"] for line in f if line.strip()]


def test_rerunning_the_same_command_moves_the_earlier_run_aside(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(TRAIN + ["--out", str(run)]) == 0
    first = (run / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert main(TRAIN + ["--out", str(run)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"moved it to {run}.1" in err[0]
    assert (tmp_path / "run.1" / "checkpoint.npz").read_bytes() == first   # kept, untouched
    assert (run / "checkpoint.npz").exists()
    assert main(["eval", "--checkpoint", str(run / "checkpoint.npz")]) == 0
    assert main(TRAIN + ["--out", str(run)]) == 0                           # and again: .2
    assert "moved it to" in capsys.readouterr().err and (tmp_path / "run.2").is_dir()


def test_resume_before_the_first_checkpoint_starts_from_step_zero(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')  # killed
    assert main(TRAIN + ["--out", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "no checkpoint in" in err and "starting from step 0" in err
    assert (run / "checkpoint.npz").exists()
    assert _steps_logged(run)[-1] == 3
    assert not os.path.exists(f"{run}.1")   # nothing was set aside
