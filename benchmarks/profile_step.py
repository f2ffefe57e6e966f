"""Where a refgen training step spends its time: cProfile over N float32 steps.

    python -m benchmarks.profile_step unet|realnvp|ddpm|... [--steps 10] [--top 25] [--sort tottime]

Prints the top functions by own time (``tottime``) and by cumulative time, per step,
so RESULTS.md can say where the time goes. Runs under the benchmark environment
(one thread unless REFGEN_BENCH_THREADS, OpenBLAS overrides removed). Only refgen is profiled; no torch is needed
except to build the same weights when it is installed.
"""
import argparse
import cProfile
import io
import pstats
import sys

from . import harness


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    p.add_argument("--forward-only", action="store_true", help="(a) only: the forward chain")
    args = p.parse_args(argv)

    from . import workloads, worker
    if args.workload == "ops" and args.forward_only:
        import numpy as np  # host-side: the batch is made on the host
        from . import frameworks
        w = workloads.WORKLOADS["ops"]
        arrays = w.make_batch(np.random.default_rng(1), np.float32, w.batch_size)
        step = workloads.make_chain_forward(frameworks.get("refgen", harness.THREADS), arrays)
    else:
        step, _ = worker.build_step(args.workload, "refgen")
    label = args.workload
    for _ in range(3):
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.steps):
        step()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt
    print(f"{label}: {args.steps} steps, {1e3 * total / args.steps:.1f} ms/step under cProfile "
          f"(profiling overhead inflates Python-heavy code)")
    stats.sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.profile_step")
    sys.exit(main())
