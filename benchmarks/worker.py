"""One framework, one workload, one fresh process: the unit of the own-process protocol.

    python -m benchmarks.worker KEY {refgen,torch} [--steps N] [--warmup W]
    python -m benchmarks.worker KEY check          # the float64 same-loss check (both frameworks)

Prints one JSON line. A ``refgen`` worker never imports torch and a ``torch`` worker never
imports refgen or autodiff, so neither framework's OpenMP runtime, allocator state or
caches touch the other's timings (what a user who runs one of them sees). The model gets its
own framework's initialisation (weights do not change the cost of these dense steps; the
float64 check is where the two are given the same weights).

Threads: the process runs under ``harness.benchmark_env`` (OMP/OPENBLAS/MKL_NUM_THREADS =
``REFGEN_BENCH_THREADS``, default 1) and a torch worker calls ``torch.set_num_threads``.
"""
import argparse
import gc
import json
import os
import sys
import time

from . import harness


def _is_family(key):
    from . import family_workloads
    return key in family_workloads.FAMILY_WORKLOADS


def build_step(key, framework, seed=0):
    """The float32 step of workload ``key`` in ``framework`` alone; returns (step, per)."""
    import numpy as np  # host-side: the batch is made on the host
    if _is_family(key):
        from . import family_workloads
        w = family_workloads.FAMILY_WORKLOADS[key]
        x = w.make_batch(np.random.default_rng(seed + 1), w.batch_size, np.float32)
        if framework == "refgen":
            return w.refgen_step(w.refgen_model("float32"), x, seed), 1
        import torch
        torch.set_num_threads(harness.THREADS)
        torch.manual_seed(seed)
        return w.torch_step(torch, w.torch_model(torch), x, seed), 1
    from . import frameworks, workloads
    w = workloads.WORKLOADS[key]
    fw = frameworks.get(framework, harness.THREADS)
    arrays = w.make_batch(np.random.default_rng(seed + 1), np.float32, w.batch_size)
    if key == "ops":
        return workloads.make_chain_step(fw, arrays)[0], w.per
    fw.manual_seed(seed)
    return workloads.make_step(fw, w, fw.build(w.make_model, "float32"), arrays), 1


def run_check(key):
    """The float64 same-loss check; returns the largest relative difference."""
    if _is_family(key):
        from . import family_workloads
        return family_workloads.check(family_workloads.FAMILY_WORKLOADS[key])
    from . import frameworks, workloads
    return workloads.check_same_loss(workloads.WORKLOADS[key], frameworks.get("torch", harness.THREADS),
                                     frameworks.get("refgen", harness.THREADS))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("key")
    p.add_argument("framework", choices=["refgen", "torch", "check"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--other", choices=["none", "import", "interleave"], default="none",
                   help="diagnosis of the one-process protocol (RESULTS.md): load the other "
                        "framework and run its step once ('import') or between every timed "
                        "step ('interleave'); only this framework's steps are timed")
    args = p.parse_args(argv)
    load = os.getloadavg()[0]
    if args.framework == "check":
        import torch
        err = run_check(args.key)
        print(json.dumps({"key": args.key, "max_rel_diff": err, "torch": torch.__version__}))
        return 0
    step, per = build_step(args.key, args.framework)
    other = None
    if args.other != "none":
        other, _ = build_step(args.key, "torch" if args.framework == "refgen" else "refgen")
        other()
    for _ in range(args.warmup):
        step()
    gc.collect()
    times = []
    clock = time.perf_counter
    for _ in range(args.steps):
        if args.other == "interleave":
            other()
        t0 = clock()
        step()
        times.append(clock() - t0)
    print(json.dumps({"key": args.key, "framework": args.framework, "per": per, "times": times,
                      "load_before": load, "load_after": os.getloadavg()[0],
                      "torch_imported": "torch" in sys.modules,
                      "autodiff_imported": "autodiff" in sys.modules}))
    return 0


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.worker")
    sys.exit(main())
