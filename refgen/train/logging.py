"""The run's log file (JSON lines) and the progress line on the terminal.

``log.jsonl`` holds one JSON object per logged step::

    {"step": 200, "time": 12.81, "wall": 1718000000.5, "lr/model": 0.001, "loss": 0.41, ...}

``step`` counts completed optimisation steps, ``time`` the seconds of training so far (over
all sessions of a resumed run), ``wall`` the Unix time of writing; the other keys are the
numbers the family returned (means over the steps since the previous line), the learning
rate and, with clipping, the gradient norm of each player, and ``eval/<name>`` for
evaluation results. On resume the lines after the checkpoint's step are dropped, so the log
of a resumed run has no duplicates.
"""
import json
import math
import os
import sys
import time

from ..fileio import atomic_open

__all__ = ["JsonlLog", "Progress", "read_log", "format_duration"]


def _parse_lines(path):
    """The records of a log file; a torn last line (a crash mid-write) is skipped."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
    return records


def read_log(path):
    """All records of a ``log.jsonl`` as a list of dicts (``FileNotFoundError`` naming it)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no log file at {path!r}")
    return _parse_lines(path)


def _dumps(record):
    # Non-finite numbers are written as the strings "nan"/"inf"/"-inf" to keep strict JSON.
    clean = {k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in record.items()}
    return json.dumps(clean, allow_nan=False)


class JsonlLog:
    """Appends records to ``path``; ``keep_until(step, fallback)`` prepares it for a resume.

    Each line is flushed as it is written, so a killed run loses at most a torn last line.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = None

    def start_fresh(self):
        self._rewrite([])

    def keep_until(self, step, fallback=()):
        """Keep the records with ``record["step"] <= step``; when the file is gone, write
        ``fallback`` (the checkpoint's copy of the last records) instead."""
        if os.path.exists(self.path):
            records = [r for r in _parse_lines(self.path) if r["step"] <= step]
        else:
            records = [r for r in fallback if r["step"] <= step]
        self._rewrite(records)

    def _rewrite(self, records):
        with atomic_open(self.path, "w", encoding="utf-8") as f:
            for r in records:
                f.write(_dumps(r) + "\n")

    def write(self, record):
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(_dumps(record) + "\n")
        self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def format_duration(seconds):
    """``75 -> '1m15s'``, ``4000 -> '1h06m'``, ``9.5 -> '9s'``."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _format_number(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class Progress:
    """One self-overwriting line on stderr: ``step 120/1000 | 41.2 steps/s | loss 0.123 | ETA 21s``.

    Silent when ``enabled`` is false or the stream is not a terminal (logs of batch jobs
    stay clean). The rate is a moving average over recent updates of this session.
    """

    def __init__(self, total, enabled=True, stream=None, min_interval=0.2):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(enabled) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total = total
        self.min_interval = min_interval
        self._last_time = None
        self._last_step = None
        self._last_print = -math.inf
        self._rate = None
        self._printed = False

    def line(self, step, metrics):
        """The text shown for ``step`` (also used by tests)."""
        parts = [f"step {step}/{self.total}"]
        if self._rate is not None:
            parts.append(f"{self._rate:.3g} steps/s")
        shown = [k for k in ("loss",) if k in metrics]
        shown += [k for k in metrics if k not in shown and "/" not in k][: 3 - len(shown)]
        parts += [f"{k} {_format_number(metrics[k])}" for k in shown]
        if self._rate:
            parts.append(f"ETA {format_duration((self.total - step) / self._rate)}")
        return " | ".join(parts)

    def update(self, step, metrics):
        now = time.perf_counter()
        if self._last_time is not None and step > self._last_step:
            rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
            self._rate = rate if self._rate is None else 0.9 * self._rate + 0.1 * rate
        self._last_time, self._last_step = now, step
        if not self.enabled or (now - self._last_print < self.min_interval and step < self.total):
            return
        self._last_print = now
        self.stream.write("\r" + self.line(step, metrics).ljust(79))
        self.stream.flush()
        self._printed = True

    def close(self):
        if self._printed:
            self.stream.write("\n")
            self.stream.flush()
            self._printed = False
