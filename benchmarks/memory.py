"""Peak resident memory of a few training steps, one framework per FRESH process.

    python -m benchmarks.memory {mlp,unet,...} {refgen,torch} [--steps N]

prints one JSON line: ru_maxrss after importing the framework and building the model,
and after the steps (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, KiB on Linux).
A refgen process never imports torch, so its numbers carry no PyTorch baggage.

Caveat measured here: Linux carries ru_maxrss across fork and exec, so a child started
by a process that already holds torch (~220 MiB) reports at least that much. The runner
therefore starts these processes before it imports numpy or torch, and each child also
reports ``VmHWM`` from /proc/self/status (the peak of its own address space, reset at
exec), which must agree with ru_maxrss.
"""
import argparse
import json
import resource
import sys

from . import harness


def _maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _vmhwm_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload")
    p.add_argument("framework", choices=["refgen", "torch"])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=None)
    args = p.parse_args(argv)

    import numpy as np  # host-side: the batch is made on the host
    from . import frameworks, workloads
    w = workloads.WORKLOADS[args.workload]
    fw = frameworks.get(args.framework, harness.THREADS)
    fw.manual_seed(0)
    model = fw.build(w.make_model, "float32")  # each framework's own init: no torch in a refgen process
    arrays = w.make_batch(np.random.default_rng(1), np.float32, args.batch_size or w.batch_size)
    step = workloads.make_step(fw, w, model, arrays)
    base = _maxrss_mib()
    for _ in range(args.steps):
        step()
    print(json.dumps({"workload": w.key, "framework": fw.name, "steps": args.steps,
                      "baseline_mib": round(base, 1), "peak_mib": round(_maxrss_mib(), 1), "vmhwm_mib": round(_vmhwm_mib(), 1)}))


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.memory")
    sys.exit(main())
