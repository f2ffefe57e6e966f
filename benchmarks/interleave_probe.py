"""Why the one-process (interleaved) protocol distorts both frameworks: a measurement.

    python -m benchmarks.interleave_probe conv [--rounds 3 --steps 10]

For each framework, fresh ``benchmarks.worker`` processes time the same float32 step
(a) alone, (b) after loading the other framework and running its step once, (c) with the
other framework's step run between every timed step (the old harness; only this framework's
steps are timed). refgen runs with ``REFGEN_MALLOC_TUNING=0`` and with its default (tuned
malloc), so the heap's part in (b) and (c) shows. Conditions alternate within each round.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from . import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    conds = [(fw, other, tuning) for fw, tunings in (("refgen", ("0", "1")), ("torch", ("1",)))
             for tuning in tunings for other in ("none", "import", "interleave")]
    times = {c: [] for c in conds}
    loads = []
    for r in range(args.rounds):
        for c in (conds if r % 2 == 0 else conds[::-1]):
            fw, other, tuning = c
            env = harness.benchmark_env()
            env["REFGEN_MALLOC_TUNING"] = tuning
            proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", args.workload, fw,
                                   "--steps", str(args.steps), "--other", other], env=env,
                                  cwd=ROOT, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(proc.stderr.strip().splitlines()[-1:])
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            times[c] += out["times"]
            loads += [out["load_before"], out["load_after"]]
    print(f"{args.workload}, threads {harness.THREADS}, {args.rounds} rounds x {args.steps} steps, "
          f"1-min load {min(loads):.1f}-{max(loads):.1f}")
    print("| framework | malloc tuning | alone | other loaded | interleaved |")
    print("|---|---|---|---|---|")
    for fw, tuning in (("refgen", "0"), ("refgen", "1"), ("torch", "1")):
        cells = [f"{1e3 * statistics.median(times[(fw, o, tuning)]):.1f} ms"
                 for o in ("none", "import", "interleave")]
        print(f"| {fw} | {'off' if tuning == '0' else 'on'}{' (n/a)' if fw == 'torch' else ''} | "
              + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.interleave_probe")
    sys.exit(main())
