"""``refgen zoo`` end to end on the tiny budget: every family, both baselines, every metric;
and a zoo killed mid-run resumes without redoing finished work."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from refgen.zoo import BASELINES, COLUMNS, REPRESENTATIVES, jobs_for, run_zoo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    lines = []
    rows = run_zoo(str(out), budget="tiny", progress=lines.append)
    return out, rows, lines


def test_every_family_and_baseline_has_a_row_on_both_data_sets(tiny_zoo):
    out, rows, lines = tiny_zoo
    seen = {(r["data"], r["family"], r["model"]) for r in rows}
    for data in ("ring8:std=0.1", "digits"):
        for kind, model in REPRESENTATIVES:
            assert (data, kind, model) in seen
        for name in BASELINES:
            assert (data, "baseline", name) in seen
    assert len(rows) == len(jobs_for()) == 2 * (7 + 2)
    assert sum("training and measuring" in line for line in lines) == len(rows)


def test_every_metric_is_measured_where_it_applies(tiny_zoo):
    _, rows, _ = tiny_zoo
    for r in rows:
        assert r["nfe_per_sample"] >= 0 and r["samples_per_s"] > 0 and r["params"] > 0
        assert r["train_seconds"] >= 0
        if r["likelihood_kind"] == "none":
            assert r.get("nll") is None and r["family"] == "gan"
        else:
            assert r["nll_unit"] == ("nats" if r["data"].startswith("ring8") else "bits/dim")
        if r["data"].startswith("ring8"):
            assert 0 <= r["modes_captured"] <= 8 and 0 <= r["hq_share"] <= 1
            assert r.get("fid") is None
            if r["likelihood_kind"] != "none":
                assert r["kl_nats"] == pytest.approx(r["nll"] - 0.3134, abs=0.01)
        else:
            for key in ("fid", "precision", "recall", "density", "coverage"):
                assert r[key] is not None, (r["model"], key)
            assert r.get("modes_captured") is None


def test_table_and_figures_are_written(tiny_zoo):
    out, rows, _ = tiny_zoo
    with open(out / "zoo.csv", newline="") as f:
        table = list(csv.reader(f))
    assert tuple(table[0]) == COLUMNS and len(table) == len(rows) + 1
    gan = next(t for t in table[1:] if t[1] == "gan")
    assert gan[COLUMNS.index("nll")] == "" and gan[COLUMNS.index("kl_nats")] == ""
    text = (out / "zoo.md").read_text()
    assert text.count("\n| ") == len(rows) + 1
    for kind in ("samples", "training", "cost"):
        for data in ("ring8_std0.1", "digits"):
            assert (out / f"zoo_{kind}_{data}.png").stat().st_size > 1000


def test_a_measured_model_is_not_retrained(tiny_zoo):
    out, rows, _ = tiny_zoo
    lines = []
    again = run_zoo(str(out), budget="tiny", families=["made", "baseline"],
                    datasets=["ring8:std=0.1"], progress=lines.append, figures=False)
    assert [r["model"] for r in again] == ["made", "histogram", "kde"]
    assert all("measured earlier" in line for line in lines)
    assert again[0] == rows[0]


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown zoo families transformer"):
        jobs_for(families=["transformer"])
    with pytest.raises(ValueError, match="unknown zoo budget 'huge'"):
        run_zoo("unused", budget="huge")


def test_a_killed_zoo_resumes_without_redoing_finished_work(tmp_path):
    out = tmp_path / "zoo"
    cmd = [sys.executable, "-m", "refgen", "zoo", "--budget", "tiny", "--families",
           "made,vae,realnvp", "--data", "ring8:std=0.1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    first = out / "ring8_std0.1" / "made" / "result.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not first.exists() and proc.poll() is None:
            time.sleep(0.05)
        assert first.exists(), proc.stderr.read().decode() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = first.read_bytes(), first.stat().st_mtime_ns
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "made (autoregressive) on ring8:std=0.1: measured earlier" in done.stdout
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    rows = [json.loads((out / "ring8_std0.1" / m / "result.json").read_text())
            for m in ("made", "vae", "realnvp")]
    assert [r["model"] for r in rows] == ["made", "vae", "realnvp"]
    assert (out / "zoo.csv").read_text().count("\n") == 4
