"""Run the benchmarks side by side with PyTorch, each framework in its OWN process, and print one table.

    python -m benchmarks.run                          # every workload, memory included
    python -m benchmarks.run realnvp made --rounds 4  # a selection
    python -m benchmarks.run --write --note "..."     # also append a section to benchmarks/RESULTS.md
    python -m benchmarks.run conv --interleaved       # the old one-process protocol (information only)

Protocol (issue 10). For every workload:

1. the float64 same-loss check, in a process of its own that loads both frameworks: same
   weights, same batch (and noise), the same loss to rtol 1e-8 before and after one optimizer
   step; a mismatch fails loudly (exit status 1) and that workload is not timed;
2. ``--rounds`` rounds; each round starts one fresh process per framework
   (``benchmarks.worker``: the refgen process never imports torch and the torch process never
   imports autodiff), which runs ``--warmup`` untimed and ``--steps`` timed steps; the order
   of the two processes alternates from round to round, so a slow phase of the shared
   machine falls on both;
3. the ratio of medians: the median of all timed steps of refgen over that of PyTorch, pooled
   over the rounds; the smallest and largest per-round ratios are shown beside it.

Threads: one (``OMP/OPENBLAS/MKL_NUM_THREADS=1`` and ``torch.set_num_threads(1)``) unless
``REFGEN_BENCH_THREADS`` says otherwise; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (see
``harness.benchmark_env``).
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import traceback

from . import harness

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def _worker(args, env):
    """Run ``python -m benchmarks.worker *args`` in a fresh process; its JSON line, or raise."""
    cmd = [sys.executable, "-m", "benchmarks.worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(args)} failed: {' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _label_target(key):
    from . import family_workloads, workloads
    if key in family_workloads.FAMILY_WORKLOADS:
        w = family_workloads.FAMILY_WORKLOADS[key]
        return w.label, w.target, w.unit, True
    w = workloads.WORKLOADS[key]
    return w.label, w.target, w.unit, False


def run_own_processes(key, rounds, warmup, steps, rows, failures, info):
    """The own-process protocol (module docstring) for one workload; appends a table row."""
    label, target, unit, family = _label_target(key)
    env = harness.benchmark_env()
    try:
        chk = _worker([key, "check"], env)
    except RuntimeError as exc:
        mismatch = "AssertionError" in str(exc) or "LossMismatch" in str(exc)
        print(f"\n!!! {label}: {'SAME-LOSS CHECK FAILED' if mismatch else 'check failed'}: {exc}\n",
              file=sys.stderr)
        failures.append(f"{key}: {'loss mismatch: ' if mismatch else ''}{exc}")
        rows.append([label, "-", "-", "-", "-", "-", f"<= {target:.2g}", "FAIL (check)"])
        return
    info.setdefault("torch", chk.get("torch"))
    print(f"{label}: same loss in float64 (max rel diff {chk['max_rel_diff']:.2g})", flush=True)
    times = {"refgen": [], "torch": []}
    per_round, loads = [], []
    per = 1
    for r in range(rounds):
        order = ("refgen", "torch") if r % 2 == 0 else ("torch", "refgen")
        med = {}
        for fw in order:
            out = _worker([key, fw, "--steps", str(steps), "--warmup", str(warmup)], env)
            if fw == "refgen" and out["torch_imported"] or fw == "torch" and out["autodiff_imported"]:
                raise RuntimeError(f"{key}: the {fw} worker imported the other framework")
            per = out["per"]
            times[fw] += out["times"]
            med[fw] = statistics.median(out["times"])
            loads += [out["load_before"], out["load_after"]]
        per_round.append(med["refgen"] / med["torch"])
    rm, tm = statistics.median(times["refgen"]), statistics.median(times["torch"])
    ratio = rm / tm
    scale = 1e6 if unit == "us/op" else 1e3
    if family:
        # issue 10's family targets are in steps/s: refgen at least PyTorch's (1.5x on 2-D)
        cells = [f"{scale * rm / per:.3g} ms ({1 / rm:.3g}/s)", f"{scale * tm / per:.3g} ms ({1 / tm:.3g}/s)"]
    else:
        cells = [f"{scale * rm / per:.3g} {unit}", f"{scale * tm / per:.3g} {unit}"]
    rows.append([label, *cells, f"{ratio:.2f}", f"{min(per_round):.2f}-{max(per_round):.2f}",
                 f"{min(loads):.1f}-{max(loads):.1f}", f"<= {target:.2g}",
                 "pass" if ratio <= target else "MISS"])
    print(" | ".join(rows[-1]), flush=True)


def table(rows, head=None):
    head = head or ["workload", "refgen median", "torch median", "ratio of medians",
                    "per-round ratios", "1-min load", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


INTERLEAVED_HEAD = ["workload", "refgen (median ± IQR)", "torch (median ± IQR)", "ratio",
                    "ratio of minima", "target", "result"]
MEMORY_HEAD = ["workload", "refgen", "torch", "ratio", "-", "target", "result"]


def main(argv=None):
    from . import family_workloads, workloads
    all_keys = [*workloads.WORKLOADS, *family_workloads.FAMILY_WORKLOADS]
    p = argparse.ArgumentParser(description="refgen vs PyTorch benchmarks (issues 2 and 10)")
    p.add_argument("workloads", nargs="*", help=f"subset of {all_keys} and 'memory'")
    p.add_argument("--rounds", type=int, default=3, help="own-process rounds per framework")
    p.add_argument("--steps", type=int, default=20, help="timed steps per process (per round)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--chain-steps", type=int, default=300, help="timed repetitions of (a)")
    p.add_argument("--memory-steps", type=int, default=5)
    p.add_argument("--interleaved", action="store_true",
                   help="the old one-process alternating protocol (information only: it "
                        "distorts both frameworks' times, see RESULTS.md)")
    p.add_argument("--write", action="store_true", help="append a section to benchmarks/RESULTS.md")
    p.add_argument("--note", default="", help="a line to record with the section")
    args = p.parse_args(argv)
    keys = args.workloads or [*all_keys, "memory"]
    unknown = [k for k in keys if k not in all_keys and k != "memory"]
    if unknown:
        p.error(f"unknown workload(s) {unknown}; known: {all_keys} and 'memory'")

    # Memory first: its fresh processes must be started before this one loads numpy and
    # torch, or they inherit this process's ru_maxrss (see benchmarks/memory.py).
    mem_rows, failures = [], []
    if "memory" in keys:
        for mk in MEMORY_WORKLOADS:
            run_memory(mk, args.memory_steps, mem_rows, failures)
    info = harness.machine_info(None)
    info.pop("torch")
    rows = []
    if args.interleaved:
        from . import frameworks
        torch_fw = frameworks.get("torch", harness.THREADS)
        refgen_fw = frameworks.get("refgen", harness.THREADS)
        info["torch"] = torch_fw.version()
    for k, v in info.items():
        print(f"{k}: {v}")
    for key in keys:
        if key == "memory":
            continue
        steps = args.chain_steps if key == "ops" else args.steps
        warmup = 20 if key == "ops" else args.warmup
        if args.interleaved:
            if key in family_workloads.FAMILY_WORKLOADS:
                print(f"{key}: no interleaved version (family workloads run in own processes only)")
                continue
            run_speed(key, torch_fw, refgen_fw, warmup, steps, rows, failures)
        else:
            try:
                run_own_processes(key, args.rounds, warmup, steps, rows, failures, info)
            except RuntimeError as exc:
                failures.append(f"{key}: {exc}")
                print(f"!!! {key}: {exc}", file=sys.stderr)
    text = table(rows, INTERLEAVED_HEAD if args.interleaved else None)
    if mem_rows:
        text += "\n\n" + table(mem_rows, MEMORY_HEAD)
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
        if args.interleaved:
            how = (f"INTERLEAVED (information only): {args.steps} steps per framework, warmup "
                   f"{args.warmup}, alternating refgen/torch in one process.")
        else:
            how = (f"Own processes: {args.rounds} rounds x {args.steps} timed steps "
                   f"({args.chain_steps} for (a)) per framework, warmup {args.warmup}, a fresh "
                   "process per framework and round, order alternating per round; ratio of "
                   "the medians of the pooled steps; 1-min load read in the workers.")
        section += ["", how + " (f): ru_maxrss in a fresh process per framework; in brackets, "
                    "after import and model build.", "", text, ""]
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
