"""The benchmark scripts import without torch, the harness's statistics, timing order and
environment are what its docstring says, and the same-loss check passes on tiny batches.

No timing measured here (speed lives in benchmarks/). Each workload's float64 check runs
refgen and PyTorch from the same weights on a batch of 2 and compares the loss before
and after one optimizer step (rtol 1e-8). Workloads whose engine modules are not
there yet are skipped with the import error as the reason.
"""
import importlib

import pytest

from tests.crosscheck_utils import torch_or_skip

pytestmark = pytest.mark.crosscheck

MODULES = ["benchmarks", "benchmarks.harness", "benchmarks.frameworks", "benchmarks.models",
           "benchmarks.workloads", "benchmarks.memory", "benchmarks.run", "benchmarks.worker",
           "benchmarks.family_workloads", "benchmarks.engine_ab", "benchmarks.interleave_probe",
           "benchmarks.gemm", "benchmarks.profile_step"]


def test_imports_without_loading_torch():
    """Every benchmark module imports in one fresh interpreter without importing torch (the
    frameworks are loaded when a benchmark runs, so the modules work without it)."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"import sys, {', '.join(MODULES)}; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", "importing the benchmarks imported torch"


def test_summarize_gives_the_median_and_the_interquartile_range():
    from benchmarks.harness import summarize
    assert summarize([5.0, 1.0, 4.0, 2.0, 3.0]) == (3.0, 2.0)   # q25 = 2, q75 = 4
    assert summarize([0.5]) == (0.5, 0.0)
    median, iqr = summarize([1.0, 1.0, 1.0, 10.0])               # robust to one outlier
    assert median == 1.0 and iqr == pytest.approx(2.25)


def test_time_interleaved_alternates_the_frameworks_after_warming_each():
    """The protocol of the module docstring: ``warmup`` untimed calls each, then r, t, r, t."""
    from benchmarks.harness import time_interleaved
    calls = []
    times = time_interleaved({"r": lambda: calls.append("r"), "t": lambda: calls.append("t")},
                             warmup=2, steps=3)
    assert calls == ["r", "r", "t", "t"] + ["r", "t"] * 3
    assert {k: len(v) for k, v in times.items()} == {"r": 3, "t": 3}
    assert all(s >= 0 for v in times.values() for s in v)


def test_benchmark_env_fixes_threads_and_drops_the_openblas_overrides(monkeypatch):
    from benchmarks import harness
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    env = harness.benchmark_env(threads=3)
    assert all(env[v] == "3" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                        "MKL_NUM_THREADS"))
    assert "OPENBLAS_CORETYPE" not in env and env["REFGEN_BENCH_ENV"] == "OPENBLAS_CORETYPE"


@pytest.mark.parametrize("key", ["ops", "mlp", "conv", "unet", "transformer"])
def test_same_loss_check_passes_on_tiny_batch(key):
    torch_or_skip()
    from benchmarks import frameworks, workloads
    w = workloads.WORKLOADS[key]
    torch_fw = frameworks.get("torch")
    refgen_fw = frameworks.get("refgen")
    try:
        err = workloads.check_same_loss(w, torch_fw, refgen_fw, batch_size=2)
    except (ImportError, AttributeError) as exc:  # engine module not written yet
        pytest.skip(f"{key}: engine piece missing: {exc}")
    assert err <= workloads.CHECK_RTOL


def test_same_loss_check_fails_loudly_on_different_weights():
    """Break the weight copy once: the check must raise, not pass silently."""
    torch_or_skip()
    nn = pytest.importorskip("autodiff.nn", reason="autodiff.nn not written yet")
    if not hasattr(nn, "Linear"):
        pytest.skip("autodiff.nn.Linear not written yet")
    from benchmarks import frameworks, workloads
    w = workloads.WORKLOADS["mlp"]
    torch_fw, refgen_fw = frameworks.get("torch"), frameworks.get("refgen")
    original = refgen_fw.load_arrays

    def perturbed(model, arrays):
        arrays = dict(arrays)
        # One logit only: a shift of all logits would leave cross-entropy unchanged.
        bias = arrays["fc3.bias"].copy()
        bias[0] += 1e-3
        arrays["fc3.bias"] = bias
        original(model, arrays)

    refgen_fw.load_arrays = perturbed
    with pytest.raises(workloads.LossMismatch, match="loss at step 0"):
        workloads.check_same_loss(w, torch_fw, refgen_fw, batch_size=2)


@pytest.mark.parametrize("key", ["realnvp", "ddpm", "vae", "made", "pixelcnn"])
def test_family_steps_give_the_same_float64_loss_as_the_pytorch_models(key):
    """The family's own model and the independent PyTorch model: same loss from the same
    parameters, batch and noise, before and after one Adam step (rtol 1e-8), on 3 examples."""
    torch_or_skip()
    from benchmarks import family_workloads
    err = family_workloads.check(family_workloads.FAMILY_WORKLOADS[key], batch_size=3)
    assert err <= 1e-8


def test_each_worker_loads_only_its_framework():
    """A refgen worker never imports torch and a torch worker never imports autodiff."""
    import json
    import os
    import subprocess
    import sys
    torch_or_skip()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for fw in ("refgen", "torch"):
        proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", "realnvp", fw,
                               "--steps", "1", "--warmup", "0"], capture_output=True, text=True,
                              cwd=root, env={**os.environ, "PYTHONPATH": root})
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert len(out["times"]) == 1
        assert not out["torch_imported" if fw == "refgen" else "autodiff_imported"]


def test_own_process_rounds_alternate_the_order_and_pool_the_medians(monkeypatch):
    """The runner's protocol: the check first, then one process per framework and round, the
    order alternating; the ratio is of the pooled medians."""
    from benchmarks import run
    calls = []

    def fake_worker(args, env):
        calls.append(tuple(args[:2]))
        if args[1] == "check":
            return {"max_rel_diff": 0.0, "torch": "x"}
        t = [2.0, 2.0, 4.0] if args[1] == "refgen" else [1.0, 1.0, 1.0]
        return {"times": t, "per": 1, "load_before": 1.0, "load_after": 1.0,
                "torch_imported": False, "autodiff_imported": False}

    monkeypatch.setattr(run, "_worker", fake_worker)
    rows = []
    run.run_own_processes("made", 3, 0, 3, rows, [], {})
    assert calls == [("made", "check"), ("made", "refgen"), ("made", "torch"),
                     ("made", "torch"), ("made", "refgen"), ("made", "refgen"), ("made", "torch")]
    assert rows[0][3] == "2.00"      # median of pooled refgen steps 2.0 / torch 1.0
