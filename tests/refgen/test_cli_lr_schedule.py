"""``refgen train --lr-schedule``: under a time budget (--minutes) the learning rate is
constant unless a schedule and a step count are given; with ``--lr-schedule cosine --steps N``
it decays from lr towards 0 over the N steps (CosineAnnealingLR, T_max = N)."""
import json

from refgen.cli import main


def _logged_lr(run):
    return [json.loads(line)["lr/model"] for line in (run / "log.jsonl").read_text().splitlines()]


def _train(tmp_path, name, extra):
    run = tmp_path / name
    args = ["train", "realnvp", "--data", "ring8:std=0.1", "--steps", "20", "--minutes", "5",
            "--lr", "1e-3", "--log-every", "5", "--eval-split", "none", "--quiet",
            "--out", str(run)] + extra
    assert main(args) == 0
    return _logged_lr(run)


def test_cosine_schedule_under_a_time_budget(tmp_path, capsys):
    constant = _train(tmp_path, "constant", [])
    assert len(constant) == 4 and all(abs(v - 1e-3) < 1e-15 for v in constant), constant
    cosine = _train(tmp_path, "cosine", ["--lr-schedule", "cosine"])
    assert len(cosine) == 4
    assert all(a > b for a, b in zip(cosine, cosine[1:])), cosine   # decays every window
    # the last window holds steps 15..19 of 20: lr (1 + cos(pi s / 20)) / 2 <= 1.5e-4 there
    assert cosine[0] < 1e-3 and cosine[-1] < 1.6e-4, cosine


def test_cosine_time_is_kept_under_a_budget_without_steps(tmp_path, capsys):
    """``--lr-schedule cosine_time --minutes M`` with no step count: the schedule is kept
    (not replaced by a constant rate) and decays from the given lr as training time passes."""
    run = tmp_path / "cosine_time"
    assert main(["train", "realnvp", "--data", "ring8:std=0.1", "--minutes", "0.01",
                 "--lr", "1e-3", "--lr-schedule", "cosine_time", "--log-every", "5",
                 "--eval-split", "none", "--quiet", "--out", str(run)]) == 0
    assert "constant learning rate" not in capsys.readouterr().err
    lrs = _logged_lr(run)
    assert len(lrs) >= 2 and lrs[0] <= 1e-3 and lrs[-1] < lrs[0], lrs
