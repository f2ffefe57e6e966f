"""The JSON-lines log (truncation on resume, torn lines, non-finite numbers) and the
progress line (quiet when not a terminal)."""
import io
import json

import pytest

from refgen.train import read_log
from refgen.train.logging import JsonlLog, Progress, format_duration


def test_keep_until_drops_later_and_torn_lines(tmp_path):
    path = tmp_path / "log.jsonl"
    log = JsonlLog(path)
    log.start_fresh()
    for s in (1, 2, 3, 4):
        log.write({"step": s, "loss": float(s)})
    log.close()
    with open(path, "a") as f:
        f.write('{"step": 5, "lo')  # a crash in the middle of a line
    assert [r["step"] for r in read_log(path)] == [1, 2, 3, 4]
    log.keep_until(2)
    assert [r["step"] for r in read_log(path)] == [1, 2]
    log.write({"step": 3, "loss": 9.0})
    log.close()
    assert read_log(path)[-1] == {"step": 3, "loss": 9.0}
    assert path.read_text().count("\n") == 3


def test_keep_until_restores_the_tail_when_the_file_is_gone(tmp_path):
    path = tmp_path / "log.jsonl"
    JsonlLog(path).keep_until(2, fallback=[{"step": 1}, {"step": 2}, {"step": 3}])
    assert read_log(path) == [{"step": 1}, {"step": 2}]


def test_non_finite_numbers_stay_strict_json(tmp_path):
    path = tmp_path / "log.jsonl"
    log = JsonlLog(path)
    log.write({"step": 1, "a": float("nan"), "b": float("inf")})
    log.close()
    assert json.loads(path.read_text()) == {"step": 1, "a": "nan", "b": "inf"}


def test_read_log_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no log file at .*nope.jsonl"):
        read_log(tmp_path / "nope.jsonl")


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_quiet_off_a_terminal_or_when_disabled():
    for stream, enabled in ((io.StringIO(), True), (_Tty(), False)):
        p = Progress(10, enabled=enabled, stream=stream)
        for s in range(1, 11):
            p.update(s, {"loss": 0.5})
        p.close()
        assert stream.getvalue() == ""


def test_progress_on_a_terminal_shows_rate_loss_and_eta():
    stream = _Tty()
    p = Progress(100, stream=stream, min_interval=0.0)
    p.update(1, {"loss": 0.25, "lr/model": 1e-3})
    p.update(2, {"loss": 0.125, "lr/model": 1e-3})
    p.close()
    text = stream.getvalue()
    assert text.startswith("\rstep 1/100 | loss 0.25") and text.endswith("\n")
    last = text.strip().split("\r")[-1]
    assert last.startswith("step 2/100 | ") and "steps/s" in last
    assert "loss 0.125" in last and "ETA " in last and "lr/model" not in last


@pytest.mark.parametrize("seconds, text", [(9.4, "9s"), (75, "1m15s"), (4000, "1h06m"),
                                           (float("inf"), "?")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
