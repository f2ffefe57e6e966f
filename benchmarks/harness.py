"""Shared benchmark machinery: thread settings, timing statistics, machine description.

Timing protocols. Issue 10's (``benchmarks.run``, the default): each framework in its own
process (``benchmarks.worker``), processes alternating over rounds; ``time_interleaved``
below is issue 2's one-process protocol, kept for information (``run --interleaved``): after
``warmup`` untimed steps each, ``steps`` timed steps of refgen and of PyTorch alternate
(r, t, r, t, ...) in one process. A step is timed with
``time.perf_counter`` around one call; the summary is the median and the
interquartile range (IQR = q75 - q25). Ratios are refgen median / PyTorch median.
"""
import datetime
import os
import platform
import statistics
import sys
import time

# One BLAS/OpenMP thread for both frameworks (issue 10; refgen's and the test suite's default
# too): REFGEN_BENCH_THREADS=2 for the two-thread runs of issue 2.
THREADS = int(os.environ.get("REFGEN_BENCH_THREADS", "1"))

# On some processors this workplace sets these so that old OpenBLAS builds pick a safe
# (slow) kernel; the benchmark process unsets both so NumPy runs its native kernel.
_OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def benchmark_env(threads=THREADS):
    """The environment a benchmark process needs: fixed threads, no OpenBLAS overrides."""
    env = dict(os.environ)
    for var in _THREAD_VARS:
        env[var] = str(threads)
    removed = [v for v in _OPENBLAS_OVERRIDES if v in env]
    for var in _OPENBLAS_OVERRIDES:
        env.pop(var, None)
    env["REFGEN_BENCH_ENV"] = ",".join(removed) or "-"
    return env


def env_is_ready(threads=THREADS):
    """True when this process already runs with ``benchmark_env`` (thread vars are read at import)."""
    return (os.environ.get("REFGEN_BENCH_ENV") is not None
            and all(os.environ.get(v) == str(threads) for v in _THREAD_VARS)
            and not any(v in os.environ for v in _OPENBLAS_OVERRIDES))


def reexec_with_benchmark_env(module):
    """Replace this process by ``python -m module argv...`` under ``benchmark_env``.

    NumPy's OpenBLAS reads its thread count when it loads, so the variables must be
    set before the first ``import numpy``; re-executing is the one reliable way.
    """
    os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], benchmark_env())


def summarize(samples):
    """(median, IQR) of a list of seconds."""
    q = statistics.quantiles(samples, n=4, method="inclusive") if len(samples) > 1 else [samples[0]] * 3
    return statistics.median(samples), q[2] - q[0]


def time_interleaved(fns, warmup, steps):
    """Time each callable in ``fns`` (a dict name -> fn) ``steps`` times, alternating.

    Returns {name: [seconds, ...]}.
    """
    import gc
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    gc.collect()
    times = {name: [] for name in fns}
    clock = time.perf_counter
    for _ in range(steps):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return times


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info():
    """Which BLAS NumPy (and torch) loaded, with kernel and threads, via threadpoolctl."""
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl to record the BLAS kernel)"
    parts = []
    for info in threadpoolctl.threadpool_info():
        desc = f"{info.get('internal_api')} {info.get('version') or ''}".strip()
        if info.get("architecture"):
            desc += f" kernel={info['architecture']}"
        desc += f" threads={info.get('num_threads')} ({os.path.basename(info.get('filepath', ''))})"
        parts.append(desc)
    return "; ".join(parts)


def machine_info(torch_version=None):
    import numpy
    removed = os.environ.get("REFGEN_BENCH_ENV", "")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch_version or "not installed",
        "threads": f"{THREADS} (torch.set_num_threads, OMP/OPENBLAS/MKL_NUM_THREADS)",
        "openblas overrides unset": removed if removed not in ("", "-") else "none were set",
        "blas": blas_info(),
        "load average at start (1/5/15 min)": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
