"""Convolution primitives: conv2d, its transpose, and its weight gradient, closed under differentiation.

``conv2d`` is PyTorch's (a cross-correlation, NCHW). For input x (N, C, H, W), weight
w (O, C/G, kh, kw) and G groups, output channel o of group g = o // (O/G) is

    y[n, o, i, j] = sum_{c in group g} sum_{a, b} w[o, c, a, b] x_pad[n, c, i*sh + a*dh, j*sw + b*dw]

with x_pad the zero-padded input. Output size per axis: floor((H + 2p - d(k - 1) - 1) / s) + 1.

Three primitives, each of which is bilinear in its two inputs, so each one's backward is
made of the other two (Chainer's scheme; Dumoulin & Visin 2016, "A guide to convolution
arithmetic", section 4, for the transpose):

    Conv2d(x, w) -> y                dx = ConvTranspose2d(gy, w)      dw = Conv2dWeight(x, gy)
    ConvTranspose2d(gy, w) -> x      dgy = Conv2d(gx, w)              dw = Conv2dWeight(gx, gy)
    Conv2dWeight(x, gy) -> w         dx = ConvTranspose2d(gy, gw)     dgy = Conv2d(x, gw)

so ``create_graph=True`` gives second (and higher) derivatives through convolutions, as
WGAN-GP's gradient penalty needs. All three share one geometry (kernel, stride, padding,
dilation, groups) that describes the forward convolution. Conv2d and ConvTranspose2d take
an optional per-channel bias b as a third input (y + b[None, :, None, None]; db = sum of
the output gradient over N, H, W), fused so the unbiased output is never held by the graph.

Implementation: pad, a strided window view copied into one reused scratch buffer (im2col),
then one batched matmul per call. The transpose is itself made of stride-1 convolutions:
with stride 1 it is the convolution of the padded gradient with the flipped kernel; with
a stride s it splits into s_h * s_w output phases, each a stride-1 convolution with the
sub-kernel of the taps that reach it (``_conv_transpose_polyphase``), so no column buffer
is ever scattered back (col2im) and ``add.at`` is never used.
"""
import math

from .. import backend as B
from ..tensor import Function

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


# --------------------------------------------------------------------------- geometry
class _Geom:
    """Geometry of a 2-D convolution: kernel, stride, ((top, bottom), (left, right)), dilation, groups."""

    __slots__ = ("kernel", "stride", "padding", "dilation", "groups")

    def __init__(self, kernel, stride, padding, dilation, groups):
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.dilation, self.groups = dilation, groups

    def out_size(self, hw):
        """Output (Ho, Wo) of the convolution for input spatial size ``hw``."""
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                     for n, (lo, hi), k, s, d in zip(hw, self.padding, self.kernel,
                                                     self.stride, self.dilation))


def _pad_or_crop(x, widths):
    """Zero-pad (positive) or crop (negative) the last two axes by ((top, bottom), (left, right))."""
    if not any(w for pair in widths for w in pair):
        return x
    xp = B.xp
    (t, b), (l, r) = widths
    crop = (slice(None), slice(None), slice(max(-t, 0), x.shape[2] - max(-b, 0)),
            slice(max(-l, 0), x.shape[3] - max(-r, 0)))
    x = x[crop]
    t, b, l, r = max(t, 0), max(b, 0), max(l, 0), max(r, 0)
    if not (t or b or l or r):
        return x
    out = xp.zeros(x.shape[:2] + (x.shape[2] + t + b, x.shape[3] + l + r), dtype=x.dtype)
    out[:, :, t:t + x.shape[2], l:l + x.shape[3]] = x
    return out


class _Scratch:
    """One reusable host buffer for the im2col columns (NumPy backend only).

    The columns are kh*kw times the input and are consumed at once by one matmul, so a
    fresh array per call is pure allocation cost: in the benchmark U-Net these arrays are
    tens of MiB, which glibc maps fresh (and the kernel zero-fills page by page) on every
    call. One buffer of the largest size seen, viewed as each call's shape, avoids that.
    CuPy's memory pool already reuses device memory, so the GPU path allocates normally.
    Not thread-safe (neither is the rest of the engine).
    """

    buffer = None

    @classmethod
    def empty(cls, shape, dtype):
        xp = B.xp
        if B.name != "numpy":
            return xp.empty(shape, dtype=dtype)
        n = 1
        for s in shape:
            n *= s
        nbytes = n * xp.dtype(dtype).itemsize
        if cls.buffer is None or cls.buffer.nbytes < nbytes:
            cls.buffer = None  # free the old one before allocating the larger
            cls.buffer = xp.empty(nbytes, dtype=xp.uint8)
        return cls.buffer[:nbytes].view(dtype).reshape(shape)


def _im2col(x, geom, out_hw):
    """Columns (N, C, kh, kw, Ho, Wo), contiguous: one copy from a strided window view.

    The result lives in the shared scratch buffer: use it before the next call."""
    xp = B.xp
    x = _pad_or_crop(x, geom.padding)
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    n, c = x.shape[:2]
    ho, wo = out_hw
    s0, s1, s2, s3 = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, kh, kw, ho, wo),
        strides=(s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw))
    cols = _Scratch.empty(view.shape, x.dtype)
    cols[...] = view
    return cols


def _conv_raw(x, w, geom):
    """Forward convolution on arrays: x (N, C, H, W), w (O, C/G, kh, kw) -> (N, O, Ho, Wo)."""
    xp = B.xp
    g = geom.groups
    n = x.shape[0]
    o = w.shape[0]
    ho, wo = geom.out_size(x.shape[2:])
    cols = _im2col(x, geom, (ho, wo))
    cols = cols.reshape(n, g, -1, ho * wo)            # (N, G, Cg*kh*kw, L)
    # Contiguous operands keep matmul on BLAS (a broadcast or transposed view falls back
    # to NumPy's slow loop, ~40x slower).
    y = xp.matmul(xp.ascontiguousarray(w).reshape(g, o // g, -1), cols)   # (N, G, Og, L)
    return y.reshape(n, o, ho, wo)


def _flipped_transposed_weight(w, groups):
    """(O, C/G, kh, kw) -> (C, O/G, kh, kw) with the kernel rotated by 180 degrees."""
    o, cg, kh, kw = w.shape
    wg = w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return wg[..., ::-1, ::-1].reshape(groups * cg, o // groups, kh, kw)


def _conv_transpose_raw(gy, w, geom, in_hw):
    """Adjoint of ``_conv_raw`` in x: gy (N, O, Ho, Wo), w (O, C/G, kh, kw) -> (N, C, H, W)."""
    xp = B.xp
    g = geom.groups
    n, o, ho, wo = gy.shape
    cg, kh, kw = w.shape[1:]
    if geom.stride == (1, 1):
        # x-grad[h] = sum_a gy[h + p_top - a d] w[a]: a stride-1 correlation of gy, padded by
        # d(k - 1) - p on each side (cropped where negative), with the flipped kernel.
        widths = tuple((d * (k - 1) - lo, d * (k - 1) - hi)
                       for k, d, (lo, hi) in zip(geom.kernel, geom.dilation, geom.padding))
        flipped = _flipped_transposed_weight(w, g)
        back = _Geom(geom.kernel, (1, 1), widths, geom.dilation, g)
        return _conv_raw(gy, xp.ascontiguousarray(flipped), back)
    return _conv_transpose_polyphase(gy, w, geom, in_hw)


def _phase_taps(k, s, d, r):
    """Taps of one axis that reach padded positions hp = s m + r, for the polyphase transpose.

    Tap a reads hp = i s + a d, so it serves phase r when a d = r (mod s), from
    i = m - (a d - r) / s. Returns (first tap a_0, its offset q_0 = (a_0 d - r) / s, the tap
    step S' = s / gcd(s, d), the offset step D' = d / gcd(s, d), number of taps), or None."""
    taps = [a for a in range(k) if (a * d - r) % s == 0]
    if not taps:
        return None
    step = s // math.gcd(s, d)
    return taps[0], (taps[0] * d - r) // s, step, d // math.gcd(s, d), len(taps)


def _conv_transpose_polyphase(gy, w, geom, in_hw):
    """The strided transpose, one stride-1 convolution per output phase (no col2im).

    Split the padded x-gradient by the phase (r, q) = (hp mod sh, wp mod sw) of its
    positions. On phase r of one axis only the taps a with a d = r (mod s) contribute,
    at gy index m - q_0 - k D' for the k-th of them (``_phase_taps``):

        gx_pad[s m + r] = sum_k gy[m - q_0 - k D'] w[a_0 + k S'],

    a stride-1 correlation of gy (padded by q_0 + D'(K_r - 1) before, cropped or padded
    after to give M_r = ceil((H_pad - r) / s) outputs) with the flipped sub-kernel at
    dilation D'. Each phase costs what its share of the columns cost, and its result is
    written once into gx_pad[..., r::sh, q::sw] instead of kh*kw strided slice-adds over
    the whole padded gradient (col2im), which measured 2-3x the matmul on stride-2 layers.
    """
    xp = B.xp
    g = geom.groups
    n, o, ho, wo = gy.shape
    (pt, pb), (pl, pr) = geom.padding
    hp, wp = in_hw[0] + pt + pb, in_hw[1] + pl + pr
    out = xp.zeros((n, g * w.shape[1], hp, wp), dtype=gy.dtype)
    per_axis = []
    for k, s, d, size, n_out in zip(geom.kernel, geom.stride, geom.dilation, (hp, wp), (ho, wo)):
        phases = []
        for r in range(min(s, size)):
            taps = _phase_taps(k, s, d, r)
            if taps is None:
                continue
            a0, q0, tap_step, offset_step, count = taps
            m_r = -(-(size - r) // s)
            before = q0 + offset_step * (count - 1)
            after = m_r - 1 - q0 - (n_out - 1)
            phases.append((r, slice(a0, a0 + tap_step * (count - 1) + 1, tap_step),
                           (before, after), offset_step))
        per_axis.append(phases)
    for r, taps_h, pad_h, dil_h in per_axis[0]:
        for q, taps_w, pad_w, dil_w in per_axis[1]:
            sub = xp.ascontiguousarray(_flipped_transposed_weight(w[:, :, taps_h, taps_w], g))
            phase = _Geom(sub.shape[2:], (1, 1), (pad_h, pad_w), (dil_h, dil_w), g)
            out[:, :, r::geom.stride[0], q::geom.stride[1]] = _conv_raw(gy, sub, phase)
    return _pad_or_crop(out, ((-pt, -pb), (-pl, -pr)))


def _conv_weight_raw(x, gy, geom):
    """Adjoint of ``_conv_raw`` in w: sum over n, i, j of gy x-windows -> (O, C/G, kh, kw)."""
    xp = B.xp
    g = geom.groups
    n, o, ho, wo = gy.shape
    # im2col again rather than keeping the forward's columns: they are kh*kw times the
    # input (725 MiB over the benchmark U-Net's graph); one more strided copy is cheap.
    cols = _im2col(x, geom, (ho, wo))
    c = cols.shape[1]
    cols = cols.reshape(n, g, -1, ho * wo)            # (N, G, K, L)
    gw = xp.matmul(xp.ascontiguousarray(gy).reshape(n, g, o // g, ho * wo),
                   cols.transpose(0, 1, 3, 2))
    return gw.sum(axis=0).reshape((o, c // g) + tuple(geom.kernel))


# --------------------------------------------------------------------------- primitives
def _bias_grad(g, inputs):
    """Gradient of a per-channel bias (third input, when present): g summed over N, H, W."""
    if len(inputs) < 3 or not inputs[2].requires_grad:
        return None
    return g.sum(dim=(0, 2, 3))


class Conv2d(Function):
    """y = conv2d(x, w) (+ b per output channel); see the module docstring.

    The bias is fused into the primitive (as PyTorch does) so the unbiased output is never
    a separate array held by the graph.
    """

    def forward(self, x, w, b=None, geom=None):
        self.geom = geom
        y = _conv_raw(x, w, geom)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, g):
        x, w = self.inputs[:2]
        gx = gw = None
        if x.requires_grad:
            gx = ConvTranspose2d.apply(g, w, geom=self.geom, in_hw=x.shape[2:])
        if w.requires_grad:
            gw = Conv2dWeight.apply(x, g, geom=self.geom)
        return gx, gw, _bias_grad(g, self.inputs)


class ConvTranspose2d(Function):
    """x = A_w^T gy (+ b): the adjoint in x of ``Conv2d`` with weight w, spatial size in_hw."""

    def forward(self, gy, w, b=None, geom=None, in_hw=None):
        self.geom = geom
        x = _conv_transpose_raw(gy, w, geom, tuple(in_hw))
        if b is not None:
            x += b.reshape(1, -1, 1, 1)
        return x

    def backward(self, g):
        gy, w = self.inputs[:2]
        ggy = gw = None
        if gy.requires_grad:
            ggy = Conv2d.apply(g, w, geom=self.geom)
        if w.requires_grad:
            gw = Conv2dWeight.apply(g, gy, geom=self.geom)
        return ggy, gw, _bias_grad(g, self.inputs)


class Conv2dWeight(Function):
    """w-gradient of ``Conv2d``: bilinear in (x, gy), shape (O, C/G, kh, kw)."""

    def forward(self, x, gy, geom):
        self.geom = geom
        return _conv_weight_raw(x, gy, geom)

    def backward(self, g):
        x, gy = self.inputs
        gx = ggy = None
        if x.requires_grad:
            gx = ConvTranspose2d.apply(gy, g, geom=self.geom, in_hw=x.shape[2:])
        if gy.requires_grad:
            ggy = Conv2d.apply(x, g, geom=self.geom)
        return gx, ggy


# --------------------------------------------------------------------------- argument parsing
def _pair(v, name, op):
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return v * 2
    if len(v) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair, got {v}")
    return v


def _check_positive(v, name, op):
    if any(i <= 0 for i in v):
        raise ValueError(f"{op}: {name} must be positive, got {v}")


def _check_conv_shapes(x, w, groups, op, transposed=False):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if w.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight, got shape {tuple(w.shape)}")
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    c = x.shape[1]
    if transposed:
        if w.shape[0] != c:
            raise ValueError(
                f"{op}: input of shape {tuple(x.shape)} has {c} channels, but the weight of "
                f"shape {tuple(w.shape)} expects {w.shape[0]} (weight is (C_in, C_out/groups, kh, kw))")
        if c % groups:
            raise ValueError(f"{op}: input channels {c} are not divisible by groups={groups}")
    else:
        if c != w.shape[1] * groups:
            raise ValueError(
                f"{op}: input of shape {tuple(x.shape)} has {c} channels, but the weight of "
                f"shape {tuple(w.shape)} with groups={groups} expects {w.shape[1] * groups}")
        if w.shape[0] % groups:
            raise ValueError(
                f"{op}: weight of shape {tuple(w.shape)} has {w.shape[0]} output channels, "
                f"not divisible by groups={groups}")
    if x.dtype != w.dtype:
        raise TypeError(f"{op}: input dtype {x.dtype} and weight dtype {w.dtype} differ")


def _bias_inputs(bias, channels, op):
    """``()`` or ``(bias,)``: the optional third input of the conv primitives, checked."""
    if bias is None:
        return ()
    if bias.ndim != 1 or bias.shape[0] != channels:
        raise ValueError(
            f"{op}: bias of shape {tuple(bias.shape)} does not match the {channels} output "
            f"channels (expected shape ({channels},))")
    return (bias,)


def _same_padding(kernel, dilation):
    """torch's padding='same': total d(k - 1), the odd extra one on the bottom/right."""
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                 for k, d in zip(kernel, dilation))


# --------------------------------------------------------------------------- public functions
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, ``torch.nn.functional.conv2d``.

    :param input: (N, C, H, W).
    :param weight: (O, C/groups, kh, kw).
    :param bias: (O,) or None.
    :param padding: int, pair, ``'valid'`` (0) or ``'same'`` (stride 1; output size = input
        size; for even effective kernels the extra zero goes bottom/right, as in PyTorch).
    :return: (N, O, Ho, Wo), Ho = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1.
    """
    op = "conv2d"
    _check_conv_shapes(input, weight, groups, op)
    kernel = tuple(weight.shape[2:])
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0), (0, 0))
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
            pads = _same_padding(kernel, dilation)
        else:
            raise ValueError(f"{op}: padding string must be 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = _pair(padding, "padding", op)
        if ph < 0 or pw < 0:
            raise ValueError(f"{op}: negative padding {(ph, pw)}")
        pads = ((ph, ph), (pw, pw))
    geom = _Geom(kernel, stride, pads, dilation, groups)
    ho, wo = geom.out_size(input.shape[2:])
    if ho <= 0 or wo <= 0:
        raise ValueError(
            f"{op}: input of shape {tuple(input.shape)} (padded by {pads}) is smaller than the "
            f"dilated kernel {tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))}")
    return Conv2d.apply(input, weight, *_bias_inputs(bias, weight.shape[0], op), geom=geom)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution, ``torch.nn.functional.conv_transpose2d``.

    The adjoint (in its input) of conv2d with the same weight, stride, padding and dilation:
    what conv2d's input gradient is.

    :param input: (N, C_in, H, W).
    :param weight: (C_in, C_out/groups, kh, kw).
    :return: (N, C_out, Ho, Wo), Ho = (H - 1) sh - 2 ph + dh (kh - 1) + output_padding + 1.
    """
    op = "conv_transpose2d"
    _check_conv_shapes(input, weight, groups, op, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    ph, pw = _pair(padding, "padding", op)
    oph, opw = _pair(output_padding, "output_padding", op)
    if ph < 0 or pw < 0 or oph < 0 or opw < 0:
        raise ValueError(f"{op}: negative padding {(ph, pw)} or output_padding {(oph, opw)}")
    for opad, s, d in zip((oph, opw), stride, dilation):
        if opad >= s and opad >= d:
            raise ValueError(
                f"{op}: output_padding {(oph, opw)} must be smaller than either stride "
                f"{stride} or dilation {dilation}")
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + opad + 1 for n, s, p, d, k, opad in zip(
        input.shape[2:], stride, (ph, pw), dilation, kernel, (oph, opw)))
    if min(out_hw) <= 0:
        raise ValueError(f"{op}: output size {out_hw} is not positive for input of shape "
                         f"{tuple(input.shape)} and padding {(ph, pw)}")
    # output_padding extends the bottom/right: the adjoint conv2d reads that input with
    # padding (p, p - output_padding), which keeps its output size equal to H exactly.
    geom = _Geom(kernel, stride, ((ph, ph - oph), (pw, pw - opw)), dilation, groups)
    return ConvTranspose2d.apply(input, weight, *_bias_inputs(bias, weight.shape[1] * groups, op),
                                 geom=geom, in_hw=out_hw)


def _check_3d(input, weight, op):
    if input.ndim != 3:
        raise ValueError(f"{op}: expected a 3-D input (N, C, L), got shape {tuple(input.shape)}")
    if weight.ndim != 3:
        raise ValueError(f"{op}: expected a 3-D weight, got shape {tuple(weight.shape)}")


def _single(v):
    return v if isinstance(v, (int, str)) else int(tuple(v)[0])


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, ``torch.nn.functional.conv1d``: conv2d on a height-1 view.

    :param input: (N, C, L); weight (O, C/groups, k); bias (O,) or None.
    :return: (N, O, Lo), Lo = floor((L + 2 p - d (k - 1) - 1) / s) + 1.
    """
    _check_3d(input, weight, "conv1d")
    padding = _single(padding)
    pad2 = padding if isinstance(padding, str) else (0, padding)
    y = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, _single(stride)), pad2,
               (1, _single(dilation)), groups)
    return y.squeeze(2)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution, ``torch.nn.functional.conv_transpose1d`` (height-1 conv_transpose2d).

    :param input: (N, C_in, L); weight (C_in, C_out/groups, k).
    :return: (N, C_out, (L - 1) s - 2 p + d (k - 1) + output_padding + 1).
    """
    _check_3d(input, weight, "conv_transpose1d")
    y = conv_transpose2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, _single(stride)),
                         (0, _single(padding)), (0, _single(output_padding)), groups,
                         (1, _single(dilation)))
    return y.squeeze(2)
