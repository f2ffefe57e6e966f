"""Run the benchmarks of issue 2 side by side with PyTorch and print one table.

    python -m benchmarks.run                      # every workload, memory included
    python -m benchmarks.run mlp unet --steps 20  # a selection
    python -m benchmarks.run --write              # also append a section to benchmarks/RESULTS.md

Before any timing, every workload checks in float64 that refgen and PyTorch compute the
same loss from the same weights and batch (rtol 1e-8), before and after one optimizer
step; a mismatch fails loudly (exit status 1) and that workload is not timed.
The process re-executes itself once with 2 threads for NumPy's BLAS and PyTorch and
with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (see ``harness.benchmark_env``).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import traceback

from . import harness

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
MEMORY_WORKLOADS = ("mlp", "unet")
MEMORY_TARGET = 0.6


def _fmt(seconds, unit, per):
    scale = 1e6 if unit == "us/op" else 1e3
    return seconds * scale / per


def run_speed(key, torch_fw, refgen_fw, warmup, steps, rows, failures):
    from . import workloads
    w = workloads.WORKLOADS[key]
    try:
        err = workloads.check_same_loss(w, torch_fw, refgen_fw)
    except workloads.LossMismatch as exc:
        print(f"\n!!! {w.label}: SAME-LOSS CHECK FAILED: {exc}\n", file=sys.stderr)
        failures.append(f"{key}: {exc}")
        rows.append([w.label, "-", "-", "-", "-", f"<= {w.target}", "FAIL (loss mismatch)"])
        return
    except Exception as exc:  # a module of the engine missing or broken: record, go on
        traceback.print_exc()
        failures.append(f"{key}: {type(exc).__name__}: {exc}")
        rows.append([w.label, "-", "-", "-", "-", f"<= {w.target}",
                     f"not run ({type(exc).__name__}: {str(exc)[:60]})"])
        return
    print(f"{w.label}: same loss in float64 (max rel diff {err:.2g})", flush=True)
    variants = [(w.label, False)]
    if key == "ops":
        variants.append(("(a') same chain, forward only (graph recorded)", True))
    for label, fwd in variants:
        r_step, t_step = workloads.make_timed_pair(w, torch_fw, refgen_fw, forward_only=fwd)
        times = harness.time_interleaved({"refgen": r_step, "torch": t_step}, warmup, steps)
        (rm, riqr), (tm, tiqr) = harness.summarize(times["refgen"]), harness.summarize(times["torch"])
        ratio = rm / tm
        # The minimum is less sensitive to other processes on a shared machine; shown for
        # information next to the ratio of medians, which is what the targets are about.
        min_ratio = min(times["refgen"]) / min(times["torch"])
        target = w.target if not fwd else None
        verdict = "-" if target is None else ("pass" if ratio <= target else "MISS")
        rows.append([label,
                     f"{_fmt(rm, w.unit, w.per):.3g} ± {_fmt(riqr, w.unit, w.per):.2g} {w.unit}",
                     f"{_fmt(tm, w.unit, w.per):.3g} ± {_fmt(tiqr, w.unit, w.per):.2g} {w.unit}",
                     f"{ratio:.2f}", f"{min_ratio:.2f}", f"<= {target}" if target else "(info)",
                     verdict])
        print(" | ".join(rows[-1]), flush=True)


def run_memory(key, steps, rows, failures):
    res = {}
    for fw in ("refgen", "torch"):
        cmd = [sys.executable, "-m", "benchmarks.memory", key, fw, "--steps", str(steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=harness.benchmark_env(),
                              cwd=os.path.dirname(os.path.dirname(RESULTS)))
        if proc.returncode != 0:
            failures.append(f"memory {key} {fw}: {proc.stderr.strip().splitlines()[-1:]}")
            rows.append([f"(f) peak RSS, {key}", "-", "-", "-", "-", f"<= {MEMORY_TARGET}",
                         f"not run ({fw} failed)"])
            return
        res[fw] = json.loads(proc.stdout.strip().splitlines()[-1])
    for fw, r in res.items():
        if abs(r["peak_mib"] - r["vmhwm_mib"]) > 0.05 * r["vmhwm_mib"]:
            failures.append(f"memory {key} {fw}: ru_maxrss {r['peak_mib']} MiB disagrees with "
                            f"VmHWM {r['vmhwm_mib']} MiB (inherited maxrss?)")
    ratio = res["refgen"]["peak_mib"] / res["torch"]["peak_mib"]
    rows.append([f"(f) peak RSS, {key}, {steps} steps (fresh process; after build)",
                 f"{res['refgen']['peak_mib']:.0f} MiB ({res['refgen']['baseline_mib']:.0f})",
                 f"{res['torch']['peak_mib']:.0f} MiB ({res['torch']['baseline_mib']:.0f})",
                 f"{ratio:.2f}", "-", f"<= {MEMORY_TARGET}",
                 "pass" if ratio <= MEMORY_TARGET else "MISS"])
    print(" | ".join(rows[-1]), flush=True)


def table(rows):
    head = ["workload", "refgen (median ± IQR)", "torch (median ± IQR)", "ratio", "ratio of minima", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    from . import workloads
    p = argparse.ArgumentParser(description="refgen vs PyTorch benchmarks (issue 2)")
    p.add_argument("workloads", nargs="*", help=f"subset of {list(workloads.WORKLOADS)} and 'memory'")
    p.add_argument("--steps", type=int, default=30, help="timed steps per framework")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--chain-steps", type=int, default=300, help="timed repetitions of (a)")
    p.add_argument("--memory-steps", type=int, default=5)
    p.add_argument("--write", action="store_true", help="append a section to benchmarks/RESULTS.md")
    p.add_argument("--note", default="", help="a line to record with the section")
    args = p.parse_args(argv)
    keys = args.workloads or [*workloads.WORKLOADS, "memory"]

    # Memory first: its fresh processes must be started before this one loads numpy and
    # torch, or they inherit this process's ru_maxrss (see benchmarks/memory.py).
    mem_rows, failures = [], []
    if "memory" in keys:
        for mk in MEMORY_WORKLOADS:
            run_memory(mk, args.memory_steps, mem_rows, failures)
    from . import frameworks
    torch_fw = frameworks.get("torch", harness.THREADS)
    refgen_fw = frameworks.get("refgen", harness.THREADS)
    info = harness.machine_info(torch_fw.version())
    for k, v in info.items():
        print(f"{k}: {v}")
    rows = []
    for key in keys:
        if key == "memory":
            continue
        steps = args.chain_steps if key == "ops" else args.steps
        warmup = 20 if key == "ops" else args.warmup
        run_speed(key, torch_fw, refgen_fw, warmup, steps, rows, failures)
    text = table(rows + mem_rows)
    info["load average at end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print("\n" + text)
    if failures:
        print("\nFAILURES:\n  " + "\n  ".join(failures), file=sys.stderr)
    if args.write:
        cmd = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
        section = [f"\n## Run of {info['date']}\n", f"Command: `{cmd.strip()}`  "]
        if args.note:
            section.append(f"Note: {args.note}  ")
        section += [f"{k}: {v}  " for k, v in info.items() if k != "date"]
        section += ["", f"Timed steps: {args.steps} per framework ({args.chain_steps} for (a)), "
                    f"warmup {args.warmup}, alternating refgen/torch. "
                    "(f): ru_maxrss in a fresh process per framework; in brackets, after import "
                    "and model build.", "", text, ""]
        if failures:
            section += ["Failures:", ""] + [f"- {f}" for f in failures] + [""]
        with open(RESULTS, "a") as f:
            f.write("\n".join(section))
        print(f"appended to {RESULTS}")
    return 1 if any("loss" in f or "Mismatch" in f for f in failures) else 0


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.run")
    sys.exit(main())
