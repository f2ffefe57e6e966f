"""The matrix products of the small family models, NumPy's BLAS against PyTorch's, one thread.

    python -m benchmarks.gemm numpy ; python -m benchmarks.gemm torch

Each run is its own process (one framework each); per shape, the median of 7 repetitions of
50 calls after 20 warmup calls. Shows what no engine change can remove from a matmul-bound
step: NumPy's OpenBLAS against torch's MKL on the same float32 products.
"""
import sys
import time

from . import harness

SHAPES = [((512, 128), (128, 128)), ((512, 128), (128, 2)), ((128, 512), (512, 128)),
          ((100, 784), (784, 500)), ((500, 100), (100, 784))]


def main(argv=None):
    which = (argv or sys.argv[1:] or ["numpy"])[0]
    import numpy as np  # host-side: benchmark operands
    rng = np.random.default_rng(0)
    if which == "torch":
        import torch
        torch.set_num_threads(harness.THREADS)
    for sa, sb in SHAPES:
        a, b = rng.random(sa, dtype=np.float32), rng.random(sb, dtype=np.float32)
        if which == "torch":
            a, b = torch.from_numpy(a), torch.from_numpy(b)
            f = lambda: torch.mm(a, b)  # noqa: E731
        else:
            f = lambda: np.matmul(a, b)  # noqa: E731
        for _ in range(20):
            f()
        reps = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(50):
                f()
            reps.append((time.perf_counter() - t0) / 50)
        print(f"{which} {sa} @ {sb}: {1e6 * sorted(reps)[3]:.0f} us")
    return 0


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.gemm")
    sys.exit(main())
