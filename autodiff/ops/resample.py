"""Resampling: interpolate (nearest, nearest-exact, bilinear, area), pixel_shuffle/unshuffle.

All of these are linear maps composed from existing differentiable ops (index selection,
broadcast + reshape, matmul with constant matrices, permute), so they need no backward
rule of their own and second derivatives come for free.

Source indices follow PyTorch's CPU kernels (ATen UpSample.h) exactly:

* nearest: src = min(floor(dst * scale), in - 1) in float32 arithmetic, scale =
  float32(1 / scale_factor) when a scale factor is given, else float32(in) / out; the
  special cases out == in (copy) and out == 2 in (dst >> 1) come first.
* nearest-exact: src = min(floor((dst + 0.5) * scale), in - 1).
* bilinear, align_corners=True: src = dst (in - 1) / (out - 1) (0 when out == 1).
  align_corners=False: src = max(scale (dst + 0.5) - 0.5, 0), scale as for nearest but in
  the input's precision. Then h0 = floor(src), h1 = min(h0 + 1, in - 1), l = src - h0,
  y = (1 - l) x[h0] + l x[h1], separably along H and W; an axis whose size does not
  change is copied (PyTorch does so even when a scale factor says otherwise).
"""
import math

from .. import backend as B
from ._util import const
from . import shape as sh
from .linalg import matmul
from .pool import adaptive_avg_pool2d

__all__ = ["interpolate", "pixel_shuffle", "pixel_unshuffle"]

_MODES = ("nearest", "nearest-exact", "bilinear", "area")


def _output_size(in_hw, size, scale_factor, op):
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    if size is not None:
        out = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(out) != 2:
            raise ValueError(f"{op}: size must be an int or a pair for a 4-D input, got {size}")
        return out, (None, None)
    scales = (scale_factor, scale_factor) if isinstance(scale_factor, (int, float)) \
        else tuple(float(s) for s in scale_factor)
    if len(scales) != 2:
        raise ValueError(f"{op}: scale_factor must be a number or a pair, got {scale_factor}")
    if min(scales) <= 0:
        raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor}")
    # PyTorch: floor(in * scale) in double precision.
    return tuple(int(math.floor(float(n) * float(s))) for n, s in zip(in_hw, scales)), scales


def _nearest_index(n_in, n_out, scale, exact):
    """Host int64 source indices (n_out,) by PyTorch's nearest / nearest-exact rule."""
    host = B.numpy  # index geometry only (no tensor data): host float32 arithmetic as ATen's
    f32 = host.float32
    if not exact:
        if n_out == n_in:
            return host.arange(n_out)
        if n_out == 2 * n_in:
            return host.arange(n_out) >> 1
    s = f32(1.0 / scale) if scale is not None else f32(n_in) / f32(n_out)
    dst = host.arange(n_out)
    if exact:
        # (dst + 0.5) is a double times the float scale, then floorf rounds to float first.
        src = host.floor(((dst + 0.5) * float(s)).astype(f32))
    else:
        src = host.floor(dst.astype(f32) * s)
    return host.minimum(src.astype(host.int64), n_in - 1)


def _select_axis(x, axis, idx, n_in):
    """x indexed along ``axis`` by host indices; a broadcast + reshape when it is a repeat."""
    host = B.numpy
    n_out = idx.shape[0]
    if n_out == n_in and (idx == host.arange(n_in)).all():
        return x
    if n_out % n_in == 0 and (idx == host.arange(n_out) // (n_out // n_in)).all():
        r = n_out // n_in
        shape = x.shape
        rep = x.unsqueeze(axis + 1).expand(shape[:axis + 1] + (r,) + shape[axis + 1:])
        return rep.reshape(shape[:axis] + (n_out,) + shape[axis + 1:])
    return sh.index_select(x, axis, B.xp.asarray(idx))


def _linear_matrix(n_in, n_out, scale, align_corners, dtype):
    """(n_out, n_in) bilinear weights along one axis, PyTorch's source-index rule."""
    host = B.numpy  # weight geometry only: host arithmetic in the input's precision
    dt = host.dtype(dtype)
    dst = host.arange(n_out).astype(dt)
    if align_corners:
        s = dt.type(n_in - 1) / dt.type(n_out - 1) if n_out > 1 else dt.type(0)
        src = s * dst
    else:
        s = dt.type(1.0 / scale) if scale is not None else dt.type(n_in) / dt.type(n_out)
        src = host.maximum(s * (dst + dt.type(0.5)) - dt.type(0.5), dt.type(0))
    h0 = host.minimum(host.floor(src).astype(host.int64), n_in - 1)
    lam = host.clip(src - h0.astype(dt), 0, 1)
    h1 = host.minimum(h0 + 1, n_in - 1)
    m = host.zeros((n_out, n_in), dtype=dt)
    rows = host.arange(n_out)
    host.add.at(m, (rows, h0), dt.type(1) - lam)
    host.add.at(m, (rows, h1), lam)
    return const(B.xp.asarray(m))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the last two dims of (N, C, H, W), ``torch.nn.functional.interpolate``.

    Modes: ``'nearest'`` (PyTorch's floor(dst * scale) rule), ``'nearest-exact'``,
    ``'bilinear'`` (``align_corners`` True/False, default False), ``'area'``
    (adaptive average pooling). Bilinear is y = M_h x M_w^T with constant (out, in)
    weight matrices, two non-zeros a row; an inf in the input therefore turns its whole
    row/column of the output into NaN (0 * inf), unlike PyTorch's gather.

    :return: (N, C, Ho, Wo), Ho = size or floor(H * scale_factor).
    """
    op = "interpolate"
    if input.ndim != 4:
        raise ValueError(f"{op}: only 4-D (N, C, H, W) input is supported, got shape "
                         f"{tuple(input.shape)}")
    if mode not in _MODES:
        raise ValueError(f"{op}: mode {mode!r} is not supported; use one of {', '.join(_MODES)}")
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not supported")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(f"{op}: align_corners can only be set with mode='bilinear', "
                         f"got mode={mode!r}")
    in_hw = input.shape[2:]
    out_hw, scales = _output_size(in_hw, size, scale_factor, op)
    if min(out_hw) <= 0:
        raise ValueError(f"{op}: output size {out_hw} must be positive (input {tuple(input.shape)})")
    if recompute_scale_factor:
        scales = (None, None)
    if mode == "area":
        return adaptive_avg_pool2d(input, out_hw)
    if mode in ("nearest", "nearest-exact"):
        out = input
        for axis, n_in, n_out, s in zip((2, 3), in_hw, out_hw, scales):
            idx = _nearest_index(n_in, n_out, s, mode == "nearest-exact")
            out = _select_axis(out, axis, idx, n_in)
        return out
    align = bool(align_corners)
    out = input
    # PyTorch copies an axis whose size does not change, whatever the scale factor says.
    if out_hw[1] != in_hw[1]:
        mw = _linear_matrix(in_hw[1], out_hw[1], scales[1], align, input.dtype)
        out = matmul(out, mw.transpose(0, 1))
    if out_hw[0] != in_hw[0]:
        mh = _linear_matrix(in_hw[0], out_hw[0], scales[0], align, input.dtype)
        out = matmul(mh, out)
    return out


def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r), ``torch.nn.functional.pixel_shuffle``.

    out[.., c, h r + i, w r + j] = in[.., c r^2 + i r + j, h, w] (Shi et al. 2016).
    """
    r = int(upscale_factor)
    if input.ndim < 3:
        raise ValueError(f"pixel_shuffle: expected at least 3 dims, got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    if r <= 0 or c % (r * r):
        raise ValueError(f"pixel_shuffle: channels {c} of shape {tuple(input.shape)} are not "
                         f"divisible by upscale_factor^2 = {r * r}")
    k = len(lead)
    x = input.reshape(tuple(lead) + (c // (r * r), r, r, h, w))
    x = x.permute(tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
    return x.reshape(tuple(lead) + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of ``pixel_shuffle``."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise ValueError(f"pixel_unshuffle: expected at least 3 dims, got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    if r <= 0 or h % r or w % r:
        raise ValueError(f"pixel_unshuffle: spatial size {(h, w)} of shape {tuple(input.shape)} "
                         f"is not divisible by downscale_factor {r}")
    k = len(lead)
    x = input.reshape(tuple(lead) + (c, h // r, r, w // r, r))
    x = x.permute(tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3))
    return x.reshape(tuple(lead) + (c * r * r, h // r, w // r))
