"""Micro-benchmark behind a proposed conv2d change: batched matmul vs one large GEMM.

    python -m benchmarks.conv_layout

For the convolutions of workloads (c) and (d), times the forward product two ways:

* ``batched``: im2col as (N, C*kh*kw, L) and ``matmul`` of (O, K) against it, i.e. N
  small GEMMs (the layout of ``autodiff/ops/conv.py`` when this was written);
* ``one_gemm``: im2col as (C*kh*kw, N*L) (batch folded into the columns), one
  (O, K) x (K, N*L) GEMM, then an (O, N, L) -> (N, O, L) copy.

Both give the same numbers (checked). Plain NumPy on purpose (host-side benchmark of
array layouts, no autodiff involved).
"""
import sys
import time

from . import harness

LAYERS = [  # (name, N, C, H, O, k, stride, pad)
    ("(c) conv1 1->32 s1", 64, 1, 28, 32, 3, 1, 1),
    ("(c) conv2 32->64 s2", 64, 32, 28, 64, 3, 2, 1),
    ("(c) conv3 64->64 s2", 64, 64, 14, 64, 3, 2, 1),
    ("(d) 32->32 s1 @28", 64, 32, 28, 32, 3, 1, 1),
    ("(d) 128->64 s1 @14", 64, 128, 14, 64, 3, 1, 1),
]


def _windows(np, xp_, k, s, ho, batch_first):
    s0, s1, s2, s3 = xp_.strides
    n, c = xp_.shape[:2]
    if batch_first:
        return np.lib.stride_tricks.as_strided(xp_, (n, c, k, k, ho, ho), (s0, s1, s2, s3, s2 * s, s3 * s))
    return np.lib.stride_tricks.as_strided(xp_, (c, k, k, n, ho, ho), (s1, s2, s3, s0, s2 * s, s3 * s))


def main():
    import numpy as np  # host-side micro-benchmark of array layouts
    rng = np.random.default_rng(0)
    print("layer | batched ms | one_gemm ms | speed-up")
    for name, n, c, h, o, k, s, p in LAYERS:
        x = rng.standard_normal((n, c, h + 2 * p, h + 2 * p)).astype(np.float32)
        w = rng.standard_normal((o, c * k * k)).astype(np.float32)
        ho = (h + 2 * p - k) // s + 1

        def batched():
            cols = np.ascontiguousarray(_windows(np, x, k, s, ho, True)).reshape(n, -1, ho * ho)
            return np.matmul(w, cols).reshape(n, o, ho, ho)

        def one_gemm():
            cols = np.ascontiguousarray(_windows(np, x, k, s, ho, False)).reshape(-1, n * ho * ho)
            y = (w @ cols).reshape(o, n, ho, ho)
            return np.ascontiguousarray(y.transpose(1, 0, 2, 3))

        assert np.allclose(batched(), one_gemm(), rtol=1e-4, atol=1e-3)
        times = harness.time_interleaved({"b": batched, "g": one_gemm}, warmup=2, steps=15)
        tb, tg = harness.summarize(times["b"])[0], harness.summarize(times["g"])[0]
        print(f"{name} | {1e3 * tb:.2f} | {1e3 * tg:.2f} | {tb / tg:.2f}x")


if __name__ == "__main__":
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.conv_layout")
    sys.exit(main())
