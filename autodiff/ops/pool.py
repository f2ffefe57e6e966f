"""Pooling over 2-D windows (NCHW), with PyTorch's output sizes, divisors and tie rules.

Window geometry per axis (kernel k, stride s, padding p, dilation d), as ``torch.nn.MaxPool2d``:

    Ho = floor((H + 2p - d(k - 1) - 1 [+ s - 1 if ceil_mode]) / s) + 1,
    and with ceil_mode the last window is dropped when it would start in the right padding.

Primitives come in pairs whose backward is the other member, so every gradient can be
differentiated again:

    AvgPool2d (window sum / divisor)  <->  AvgPool2dAdjoint (spread g / divisor back)
    MaxPoolGather (read each window at its argmax) <-> MaxPoolScatter (g to the argmax cell)

Max pooling finds the argmax on the raw array, then is MaxPoolGather at that argmax.

Windows are read as kh*kw strided slices of the padded input, and gradients are written
back with kh*kw slice-adds (no ``add.at``).
"""
from .. import backend as B
from ..tensor import Function
from . import reduce as rd
from .linalg import matmul
from ._util import const
from .conv import _pair  # the same int-or-pair argument rule as the convolutions

__all__ = ["avg_pool2d", "max_pool2d", "adaptive_avg_pool2d", "max_pool2d_with_indices"]


class _PoolGeom:
    """kernel, stride, padding (top, left), dilation, output (Ho, Wo), padded input extent."""

    __slots__ = ("kernel", "stride", "padding", "dilation", "out_hw", "in_hw", "padded_hw")

    def __init__(self, in_hw, kernel, stride, padding, dilation, ceil_mode, op):
        self.in_hw, self.kernel, self.stride = tuple(in_hw), kernel, stride
        self.padding, self.dilation = padding, dilation
        out = []
        for n, k, s, p, d in zip(in_hw, kernel, stride, padding, dilation):
            if p > k // 2:
                raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
            span = n + 2 * p - d * (k - 1) - 1
            o = (span + (s - 1 if ceil_mode else 0)) // s + 1
            if ceil_mode and (o - 1) * s >= n + p:
                o -= 1  # PyTorch: the last window must start inside the input or the left padding
            if o <= 0 or span < 0:
                raise ValueError(
                    f"{op}: input spatial size {tuple(in_hw)} with padding {padding} is smaller "
                    f"than the (dilated) kernel {kernel} (dilation {dilation})")
            out.append(o)
        self.out_hw = tuple(out)
        # Extent of the padded buffer that the windows read (may pass H + 2p with ceil_mode).
        self.padded_hw = tuple((o - 1) * s + d * (k - 1) + 1
                               for o, s, d, k in zip(self.out_hw, stride, dilation, kernel))

    def window_slices(self):
        """(a, b, index) for every kernel offset: the strided slice of the padded buffer."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        ho, wo = self.out_hw
        for a in range(kh):
            rows = slice(a * dh, a * dh + sh * (ho - 1) + 1, sh)
            for b in range(kw):
                yield a, b, (Ellipsis, rows, slice(b * dw, b * dw + sw * (wo - 1) + 1, sw))

    def pad(self, x, value):
        """x placed at (top, left) in a buffer of the padded extent filled with ``value``."""
        xp = B.xp
        (pt, pl), (h, w) = self.padding, self.in_hw
        out = xp.full(x.shape[:-2] + self.padded_hw, value, dtype=x.dtype)
        hh, ww = min(h, self.padded_hw[0] - pt), min(w, self.padded_hw[1] - pl)
        out[..., pt:pt + hh, pl:pl + ww] = x[..., :hh, :ww]
        return out

    def unpad(self, buf):
        """The (H, W) input region of a padded buffer (zeros where the buffer ends early)."""
        xp = B.xp
        (pt, pl), (h, w) = self.padding, self.in_hw
        region = buf[..., pt:pt + h, pl:pl + w]
        if region.shape[-2:] == (h, w):
            return region
        out = xp.zeros(buf.shape[:-2] + (h, w), dtype=buf.dtype)
        out[..., :region.shape[-2], :region.shape[-1]] = region
        return out


# --------------------------------------------------------------------------- average pooling
def _avg_divisor(geom, count_include_pad, divisor_override, dtype):
    """(Ho, Wo) divisors, PyTorch's rule: windows clipped to the padded input (include_pad)
    or to the input itself (exclude_pad); computed on the host from geometry alone."""
    host = B.numpy  # geometry only (no tensor data): host arithmetic, then one transfer
    counts = []
    for n, o, k, s, p in zip(geom.in_hw, geom.out_hw, geom.kernel, geom.stride, geom.padding):
        start = host.arange(o) * s - p
        end = host.minimum(start + k, n + p)
        if count_include_pad:
            counts.append(end - start)
        else:
            counts.append(host.minimum(end, n) - host.maximum(start, 0))
    if divisor_override is not None:
        div = host.full(geom.out_hw, float(divisor_override))
    else:
        div = host.outer(counts[0], counts[1]).astype(host.float64)
    return B.xp.asarray(div.astype(dtype))


class AvgPool2d(Function):
    """y[.., i, j] = (sum of the window at (i, j) of the zero-padded x) / divisor[i, j]."""

    def forward(self, x, geom, divisor):
        self.geom, self.divisor = geom, divisor
        xpad = geom.pad(x, 0)
        total = None
        for _, _, idx in geom.window_slices():
            total = xpad[idx].copy() if total is None else total.__iadd__(xpad[idx])
        return total / divisor

    def backward(self, g):
        return AvgPool2dAdjoint.apply(g, geom=self.geom, divisor=self.divisor)


class AvgPool2dAdjoint(Function):
    """Transpose of ``AvgPool2d``: each window's g / divisor added to every cell it covers."""

    def forward(self, g, geom, divisor):
        self.geom, self.divisor = geom, divisor
        share = g / divisor
        buf = B.xp.zeros(g.shape[:-2] + geom.padded_hw, dtype=g.dtype)
        for _, _, idx in geom.window_slices():
            buf[idx] += share
        return geom.unpad(buf)

    def backward(self, gg):
        return AvgPool2d.apply(gg, geom=self.geom, divisor=self.divisor)


# --------------------------------------------------------------------------- max pooling
def _window_argmax(x, geom):
    """(argmax offset a*kw + b, max value) of every window of the -inf padded x.

    Ties: the first maximum in row-major window order wins (PyTorch's CPU rule); a NaN is
    a window's maximum (the first NaN), as in PyTorch.
    """
    xp = B.xp
    xpad = geom.pad(x, -xp.inf)
    windows = xp.stack([xpad[idx] for _, _, idx in geom.window_slices()], axis=-1)
    arg = xp.argmax(windows, axis=-1)
    return arg, xp.take_along_axis(windows, arg[..., None], axis=-1)[..., 0]


class MaxPoolScatter(Function):
    """zeros(input) with g[i, j] added at the argmax cell of window (i, j)."""

    def forward(self, g, arg, geom):
        xp = B.xp
        self.arg, self.geom = arg, geom
        kw = geom.kernel[1]
        buf = xp.zeros(g.shape[:-2] + geom.padded_hw, dtype=g.dtype)
        zero = xp.zeros((), dtype=g.dtype)
        for a, b, idx in geom.window_slices():
            buf[idx] += xp.where(arg == a * kw + b, g, zero)
        return geom.unpad(buf)

    def backward(self, gg):
        return MaxPoolGather.apply(gg, arg=self.arg, geom=self.geom)


class MaxPoolGather(Function):
    """Read each window's argmax cell of x: max pooling once the argmax is known, and the
    adjoint of ``MaxPoolScatter``. ``values`` lets max_pool2d pass the maxima it already
    computed from this same x (saves a second pass)."""

    def forward(self, x, arg, geom, values=None):
        xp = B.xp
        self.arg, self.geom = arg, geom
        if values is not None:
            return values
        kw = geom.kernel[1]
        xpad = geom.pad(x, 0)
        out = xp.zeros(x.shape[:-2] + geom.out_hw, dtype=x.dtype)
        for a, b, idx in geom.window_slices():
            out = xp.where(arg == a * kw + b, xpad[idx], out)
        return out

    def backward(self, g):
        return MaxPoolScatter.apply(g, arg=self.arg, geom=self.geom)


# --------------------------------------------------------------------------- public functions
def _geometry(input, kernel_size, stride, padding, dilation, ceil_mode, op):
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, "
                         f"got shape {tuple(input.shape)}")
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride, "stride", op)
    padding, dilation = _pair(padding, "padding", op), _pair(dilation, "dilation", op)
    for name, v in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(v) <= 0:
            raise ValueError(f"{op}: {name} must be positive, got {v}")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    return _PoolGeom(input.shape[-2:], kernel, stride, padding, dilation, ceil_mode, op)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each window, ``torch.nn.functional.avg_pool2d``.

    divisor = window size clipped to the padded input (``count_include_pad=True``) or to
    the input (``False``), or ``divisor_override``.

    :param input: (N, C, H, W) or (C, H, W).
    :return: (N, C, Ho, Wo) or (C, Ho, Wo).
    """
    geom = _geometry(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("avg_pool2d: divisor_override must be non-zero")
    divisor = _avg_divisor(geom, count_include_pad, divisor_override, input.dtype)
    return AvgPool2d.apply(input, geom=geom, divisor=divisor)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over each window, ``torch.nn.functional.max_pool2d``.

    Padding cells count as -inf. The gradient goes to the first maximum of each window
    (row-major order), as PyTorch's CPU kernel does.

    :param input: (N, C, H, W) or (C, H, W).
    :return: (N, C, Ho, Wo); with ``return_indices`` also the int64 flat index h * W + w of
        each maximum in its input plane (PyTorch's convention, usable by max_unpool2d).
    """
    geom = _geometry(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    if input.dtype.kind != "f":
        raise TypeError(f"max_pool2d: expected a floating input, got dtype {input.dtype}")
    arg, values = _window_argmax(input.data, geom)
    out = MaxPoolGather.apply(input, arg=arg, geom=geom, values=values)
    if not return_indices:
        return out
    return out, const(_flat_indices(arg, geom))


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False):
    """``max_pool2d(..., return_indices=True)``."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _flat_indices(arg, geom):
    """Flat input-plane index h * W + w of each window's argmax (int64)."""
    xp = B.xp
    (kw,), (sh, sw), (dh, dw), (ph, pw) = (geom.kernel[1],), geom.stride, geom.dilation, geom.padding
    ho, wo = geom.out_hw
    rows = xp.arange(ho).reshape(-1, 1) * sh - ph + (arg // kw) * dh
    cols = xp.arange(wo) * sw - pw + (arg % kw) * dw
    return (rows * geom.in_hw[1] + cols).astype(xp.int64)


def _adaptive_matrix(n, o, dtype):
    """(o, n) averaging matrix of PyTorch's adaptive windows [floor(i n / o), ceil((i + 1) n / o))."""
    host = B.numpy  # geometry only: built on the host, then one transfer
    m = host.zeros((o, n))
    for i in range(o):
        start, end = (i * n) // o, -(-((i + 1) * n) // o)
        m[i, start:end] = 1.0 / (end - start)
    return const(B.xp.asarray(m.astype(dtype)))


def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive windows, ``torch.nn.functional.adaptive_avg_pool2d``.

    Window i along an axis of size n covers [floor(i n / o), ceil((i + 1) n / o)). The map
    is separable and linear: y = P_h x P_w^T with averaging matrices P (o, n), so it is
    composed from matmul (or a reshape-mean when o divides n) and needs no backward rule.

    :param input: (N, C, H, W) or (C, H, W); output_size: int or pair (None keeps a size).
    :return: (N, C, Ho, Wo) or (C, Ho, Wo).
    """
    if input.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: expected a 3-D or 4-D input, got shape "
                         f"{tuple(input.shape)}")
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size, output_size)
    h, w = input.shape[-2:]
    ho, wo = (h if output_size[0] is None else int(output_size[0]),
              w if output_size[1] is None else int(output_size[1]))
    if ho <= 0 or wo <= 0:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {(ho, wo)}")
    if h % ho == 0 and w % wo == 0:
        # Equal windows: a reshape and a mean (cheaper than the matrices).
        lead = input.shape[:-2]
        return rd.mean(input.reshape(lead + (ho, h // ho, wo, w // wo)),
                       dim=(input.ndim - 1, input.ndim + 1))
    ph, pw = _adaptive_matrix(h, ho, input.dtype), _adaptive_matrix(w, wo, input.dtype)
    return matmul(ph, matmul(input, pw.transpose(0, 1)))
