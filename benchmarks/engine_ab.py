"""Before/after for an engine change: the same refgen workload on two versions of ``autodiff/``.

    python -m benchmarks.engine_ab REV realnvp ddpm [--rounds 4 --steps 15]

``autodiff/`` at git revision REV is extracted (``git archive``) into a temporary folder next
to links to this checkout's ``refgen/`` and ``benchmarks/``, so only the engine differs. Each
round runs one fresh ``benchmarks.worker KEY refgen`` process per version, the order
alternating between rounds; printed: the median step of each version (pooled over the
rounds), their ratio (new / old) and the range of the per-round ratios, with the 1-minute
load average. Threads as in ``benchmarks.run`` (one unless REFGEN_BENCH_THREADS).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from . import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def extract_engine(rev, where):
    """``autodiff/`` of ``rev`` under ``where``, with links to this checkout's other packages."""
    archive = subprocess.run(["git", "archive", rev, "autodiff"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
    for name in ("refgen", "benchmarks"):
        os.symlink(os.path.join(ROOT, name), os.path.join(where, name))


def worker(cwd, key, steps, warmup, env):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", key, "refgen", "--steps",
                           str(steps), "--warmup", str(warmup)], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev", help="the 'old' revision of autodiff/ (e.g. HEAD~1)")
    p.add_argument("workloads", nargs="+")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    env = harness.benchmark_env()
    env.pop("PYTHONPATH", None)
    tmp = tempfile.mkdtemp(prefix="refgen-engine-")
    try:
        extract_engine(args.rev, tmp)
        print(f"old engine: autodiff/ at {args.rev}; new: the working tree; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        for key in args.workloads:
            times, ratios, loads = {"old": [], "new": []}, [], []
            for r in range(args.rounds):
                order = [("old", tmp), ("new", ROOT)]
                med = {}
                for name, cwd in (order if r % 2 == 0 else order[::-1]):
                    out = worker(cwd, key, args.steps, args.warmup, env)
                    times[name] += out["times"]
                    med[name] = statistics.median(out["times"])
                    loads += [out["load_before"], out["load_after"]]
                ratios.append(med["new"] / med["old"])
            old, new = statistics.median(times["old"]), statistics.median(times["new"])
            print(f"{key}: old {1e3 * old:.3g} ms, new {1e3 * new:.3g} ms, new/old "
                  f"{new / old:.2f} (per round {min(ratios):.2f}-{max(ratios):.2f}), "
                  f"1-min load {min(loads):.1f}-{max(loads):.1f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.engine_ab")
    sys.exit(main())
