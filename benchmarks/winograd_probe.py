"""Winograd's minimal filtering F(2x2, 3x3): a stride-1 3x3 convolution in 2.25x fewer
multiplications than im2col (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks", section 4).

For one 4x4 input tile d and one 3x3 kernel g, the 2x2 output tile of the correlation is

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise)

with

    B^T = [[1,  0, -1,  0],     G = [[1,    0,   0],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2, 1/2],          [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]          [0,    0,   1]]

Summed over input channels, the elementwise product becomes 16 matrix products, one per
position (u, v) of the 4x4 transformed tile:

    M[u, v] (O, T) = U[u, v] (O, C) @ V[u, v] (C, T),   U = G g G^T,  V = B^T d B

over all T = N * ceil(Ho/2) * ceil(Wo/2) tiles at once. im2col multiplies O*C*9 per output
pixel; this 16/4 = 4 per pixel: 2.25x fewer, for transforms that are additions only (the
1/2 of G is folded into U once per call). The columns it builds are 4x the input, not 9x.

A probe, not part of the engine: written to decide whether ``autodiff/ops/conv.py`` should
take this path for the U-Net's and PixelCNN's stride-1 3x3 convolutions (issue 10), it
measures that in NumPy it should not. The numbers agree with the direct convolution
(float64: 1e-14; float32: 3e-6 relative), but each transform is a handful of
elementwise passes over arrays 4x the input or output, memory-bound in NumPy, and together
they cost more than the 2.25x fewer multiplications save: 0.6-1.0x of im2col's speed on
the U-Net's layers (RESULTS.md, 2026-12-05). A fused (compiled) transform is what makes
Winograd pay in cuDNN and oneDNN; NumPy has no such fusion.

    python -m benchmarks.winograd_probe
"""
import time

import numpy as np  # host-side: a benchmark of array layouts, no autodiff involved


class B:   # the probe runs on NumPy only
    xp = np


def _weight_transform(w):
    """U = G g G^T for every (o, c): (O, C, 3, 3) -> (4, 4, O, C)."""
    xp = B.xp
    g0, g1, g2 = w[:, :, 0, :], w[:, :, 1, :], w[:, :, 2, :]       # rows of g, (O, C, 3)
    half_sum, half_diff = (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5
    rows = (g0, half_sum, half_diff, g2)                            # G g: (4,) x (O, C, 3)
    u = xp.empty((4, 4) + w.shape[:2], dtype=w.dtype)
    for i, r in enumerate(rows):                                    # (G g) G^T by columns
        c0, c1, c2 = r[..., 0], r[..., 1], r[..., 2]
        u[i, 0] = c0
        u[i, 1] = (c0 + c1 + c2) * 0.5
        u[i, 2] = (c0 - c1 + c2) * 0.5
        u[i, 3] = c2
    return u


def _input_transform(x, tiles_hw):
    """V = B^T d B for every 4x4 tile (stride 2) of the padded input x (N, C, Hp, Wp):
    -> (4, 4, C, th, tw, N), so that each (u, v) is a (C, T) matrix, T = th * tw * N.

    Tile (i, j) reads x[2i + u, 2j + v], u, v = 0..3. Split x into its four phase planes
    P[a][b] = x[a::2, b::2], copied once with the batch axis last: then element (u, v) of
    every tile is a shifted slice of plane (u % 2, v % 2) whose inner loop runs over the
    batch. (Strided views with the small tile axes innermost were 3x slower.)
    """
    xp = B.xp
    th, tw = tiles_hw
    xt = x.transpose(1, 2, 3, 0)                                    # (C, Hp, Wp, N) view
    planes = [[xp.ascontiguousarray(xt[:, a::2, b::2]) for b in range(2)]
              for a in range(2)]                                    # (C, th + 1, tw + 1, N)

    def rows(u, b):   # row u of every tile, column phase b: (C, th, tw + 1, N)
        return planes[u % 2][b][:, u // 2:u // 2 + th]

    by_phase = []
    for b in range(2):                                              # B^T d, per column phase
        by_phase.append((rows(0, b) - rows(2, b), rows(1, b) + rows(2, b),
                         rows(2, b) - rows(1, b), rows(1, b) - rows(3, b)))
    even, odd = by_phase
    c, n = x.shape[1], x.shape[0]
    v = xp.empty((4, 4, c, th, tw, n), dtype=x.dtype)
    for u in range(4):                                              # (B^T d) B by columns
        e0, e2 = even[u][:, :, :tw], even[u][:, :, 1:]              # columns 0 and 2
        e1, e3 = odd[u][:, :, :tw], odd[u][:, :, 1:]                # columns 1 and 3
        xp.subtract(e0, e2, out=v[u, 0])
        xp.add(e1, e2, out=v[u, 1])
        xp.subtract(e2, e1, out=v[u, 2])
        xp.subtract(e1, e3, out=v[u, 3])
    return v


def _output_transform(m, out_hw):
    """Y = A^T M A for every tile: M (4, 4, O, th, tw, N) -> y (N, O, Ho, Wo)."""
    xp = B.xp
    _, _, o, th, tw, n = m.shape
    s0 = m[0] + m[1] + m[2]                                         # A^T M: (4, O, th, tw, N)
    s1 = m[1] - m[2] - m[3]
    y = xp.empty((n, o, th, 2, tw, 2), dtype=m.dtype)               # row 2i + a, column 2j + b
    for a, s in enumerate((s0, s1)):                                # (A^T M) A
        xp.add(s[0] + s[1], s[2], out=y[:, :, :, a, :, 0].transpose(1, 2, 3, 0))
        xp.subtract(s[1] - s[2], s[3], out=y[:, :, :, a, :, 1].transpose(1, 2, 3, 0))
    ho, wo = out_hw
    return y.reshape(n, o, 2 * th, 2 * tw)[:, :, :ho, :wo]


def conv3x3_winograd(x, w, padding):
    """Stride-1 3x3 cross-correlation by F(2x2, 3x3): x (N, C, H, W), w (O, C, 3, 3),
    padding ((top, bottom), (left, right)) (negative crops) -> (N, O, Ho, Wo), the same
    numbers as ``conv2d`` up to rounding."""
    xp = B.xp
    (pt, pb), (pl, pr) = padding
    ho, wo = x.shape[2] + pt + pb - 2, x.shape[3] + pl + pr - 2
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    # tiles cover 2*th + 2 rows: pad the bottom/right further with zeros where Ho is odd
    x = xp.pad(x, ((0, 0), (0, 0), (pt, pb + 2 * th - ho), (pl, pr + 2 * tw - wo)))
    n, c = x.shape[:2]
    o = w.shape[0]
    v = _input_transform(x, (th, tw)).reshape(16, c, n * th * tw)
    u = _weight_transform(w).reshape(16, o, c)
    m = xp.matmul(u, v)                                             # (16, O, T): 16 GEMMs
    y = _output_transform(m.reshape(4, 4, o, th, tw, n), (ho, wo))
    return xp.ascontiguousarray(y)


def _direct(x, w, pad):
    """The im2col convolution of the engine (``autodiff.ops.conv``), stride 1."""
    from autodiff.ops.conv import _conv_raw, _Geom
    return _conv_raw(x, w, _Geom((3, 3), (1, 1), ((pad, pad), (pad, pad)), (1, 1), 1))


def _median_ms(f, repeats=7):
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1e3 * sorted(times)[len(times) // 2]


LAYERS = [(64, 32, 28, 32), (64, 128, 14, 64), (64, 64, 14, 64), (64, 64, 7, 64)]  # N, C, H, O


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 7, 6))
    w = rng.standard_normal((5, 9, 3, 3))
    error = np.abs(_direct(x, w, 1) - conv3x3_winograd(x, w, ((1, 1), (1, 1)))).max()
    print(f"float64 max |winograd - direct|: {error:.1e}")
    print("layer (N, C, H, O) | im2col ms | winograd ms | speed-up")
    for n, c, h, o in LAYERS:
        x = rng.standard_normal((n, c, h, h)).astype(np.float32)
        w = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
        direct = _median_ms(lambda: _direct(x, w, 1))
        wino = _median_ms(lambda: conv3x3_winograd(x, w, ((1, 1), (1, 1))))
        print(f"{(n, c, h, o)} | {direct:.1f} | {wino:.1f} | {direct / wino:.2f}x")


if __name__ == "__main__":
    main()
