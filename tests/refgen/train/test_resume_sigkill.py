"""A run killed with SIGKILL and resumed from its last checkpoint ends bit-identical to a run
that was never interrupted (issue 3, Training).

The run is the toy MLP with dropout (its own generator), input noise from the loop's
generator and from the global generator, Adam with a warmup-cosine schedule, gradient
clipping and an EMA: every piece of state a checkpoint must carry changes the result.
Training happens in a subprocess; the parent SIGKILLs it (1) in the middle of a step right
after a checkpoint has landed and (2) in the middle of writing a checkpoint, then resumes
in a second subprocess and compares the final checkpoint with an uninterrupted run's.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refgen.train import load_checkpoint, read_log

from .toy_trainable import assert_identical, run_mlp

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

REPO = Path(__file__).resolve().parents[3]
STEPS, EVERY = 13, 4
# Keys of a checkpoint that must match bit for bit ("elapsed" and the log's times differ).
STATE_KEYS = ("step", "modules", "optimizers", "schedulers", "ema", "rng", "loader",
              "log_window", "metrics", "eval_metrics")


def _child(out_dir, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.refgen.train.toy_trainable", str(out_dir),
         "--steps", str(STEPS), "--checkpoint-every", str(EVERY), *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when_marked(proc, marker):
    """Wait (no time limit) until the child writes ``marker``, then SIGKILL it."""
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the child exited ({proc.returncode}) before the marker:\n"
                        f"{err.decode()[-3000:]}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def _finish(out_dir):
    proc = _child(out_dir, "--resume")
    out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]


def _without_times(records):
    return [{k: v for k, v in r.items() if k not in ("time", "wall")} for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (in this process), its final checkpoint and log."""
    import autodiff
    autodiff.set_default_dtype("float64")
    autodiff.manual_seed(0)
    out = tmp_path_factory.mktemp("uninterrupted")
    run_mlp(out, steps=STEPS, checkpoint_every=EVERY)
    return load_checkpoint(out / "checkpoint.npz"), read_log(out / "log.jsonl")


def test_sigkill_after_checkpoint_then_resume_is_bit_identical(tmp_path, reference):
    marker = tmp_path / "marker"
    out = tmp_path / "run"
    # Step index 6 runs after the checkpoint at step 4 and after the log line of step 6
    # (log_every=3), so the kill leaves a log that runs past the checkpoint.
    _kill_when_marked(_child(out, "--block-at-step", "6", "--marker", str(marker)), marker)
    killed = load_checkpoint(out / "checkpoint.npz")
    assert killed["step"] == EVERY
    assert max(r["step"] for r in read_log(out / "log.jsonl")) == 6

    _finish(out)
    final = load_checkpoint(out / "checkpoint.npz")
    ref_ckpt, ref_log = reference
    assert final["step"] == STEPS
    for key in STATE_KEYS:
        assert_identical(ref_ckpt[key], final[key], key)
    # the log was cut back to the checkpoint and continued: no duplicates, same numbers
    assert _without_times(read_log(out / "log.jsonl")) == _without_times(ref_log)


def test_sigkill_during_checkpoint_write_keeps_previous_and_resumes(tmp_path, reference):
    marker = tmp_path / "marker"
    out = tmp_path / "run"
    # Half of the second checkpoint (step 8) is written to the temporary file, then the kill.
    _kill_when_marked(_child(out, "--block-in-save", "2", "--marker", str(marker)), marker)
    stale = list(out.glob(".checkpoint.npz.*.tmp"))
    assert len(stale) == 1 and stale[0].stat().st_size > 0
    assert load_checkpoint(out / "checkpoint.npz")["step"] == EVERY  # the previous one loads

    _finish(out)
    assert not list(out.glob(".checkpoint.npz.*.tmp"))  # the torn temporary is cleaned up
    final = load_checkpoint(out / "checkpoint.npz")
    for key in STATE_KEYS:
        assert_identical(reference[0][key], final[key], key)
