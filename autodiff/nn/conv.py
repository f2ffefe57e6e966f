"""Convolution layers: Conv1d, Conv2d, ConvTranspose2d (PyTorch's names, shapes and inits).

Weights: convolution (out_channels, in_channels/groups, *kernel_size); transposed
convolution (in_channels, out_channels/groups, *kernel_size), as PyTorch stores them.
Default init (PyTorch's ``_ConvNd.reset_parameters``): weight ~ kaiming_uniform_(a=sqrt(5)),
i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = weight.shape[1] * prod(kernel), and
bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the same fan_in (for the transposed layer
that is out_channels/groups * prod(kernel), PyTorch's choice, matched).

Output sizes (per spatial axis, input size n, kernel k, stride s, padding p, dilation d):
convolution floor((n + 2p - d(k-1) - 1) / s) + 1; transposed (n-1)s - 2p + d(k-1) + output_padding + 1.
"""
import math

from .. import functional as F
from ..ops import shape as sh
from . import init
from ._util import empty, ntuple, check_input, size_arg
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared parameters, init, checks and repr of the convolution layers."""

    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, output_padding=0, dtype=None, generator=None):
        super().__init__()
        name, n = type(self).__name__, self._nd
        # Types first (a str or float named, not a failed comparison); ranges just below.
        in_channels = size_arg(in_channels, name, "in_channels", 1)
        out_channels = size_arg(out_channels, name, "out_channels", 1)
        groups = size_arg(groups, name, "groups", minimum=None)
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = ntuple(kernel_size, n, f"{name}: kernel_size")
        self.stride = ntuple(stride, n, f"{name}: stride")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding string must be 'same' or 'valid', got "
                                 f"{padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got {self.stride}")
            self.padding = padding
        else:
            self.padding = ntuple(padding, n, f"{name}: padding")
        self.dilation = ntuple(dilation, n, f"{name}: dilation")
        self.output_padding = ntuple(output_padding, n, f"{name}: output_padding")
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = self._transposed
        if self._transposed:
            shape = (self.in_channels, self.out_channels // groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(*shape, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(self.out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound, generator=generator)

    def _check_input(self, input):
        """Accept (N, C, *spatial) or unbatched (C, *spatial); returns (input, batched)."""
        name, n = type(self).__name__, self._nd
        check_input(input, name)
        if input.ndim not in (n + 1, n + 2) or input.shape[input.ndim - n - 1] != self.in_channels:
            layout = "(N, C, L)" if n == 1 else "(N, C, H, W)"
            raise ValueError(
                f"{name}(in_channels={self.in_channels}): input must be {layout} (or unbatched) "
                f"with C={self.in_channels}, got shape {tuple(input.shape)}")
        if input.ndim == n + 1:
            return input.unsqueeze(0), False
        return input, True

    def _explicit_padding(self):
        """(F.pad widths, last axis first) for padding_mode != 'zeros'."""
        if self.padding == "valid":
            pads = [(0, 0)] * self._nd
        elif self.padding == "same":
            pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                    for k, d in zip(self.kernel_size, self.dilation)]
        else:
            pads = [(p, p) for p in self.padding]
        widths = []
        for lo, hi in reversed(pads):
            widths += [lo, hi]
        return tuple(widths)

    def _padded(self, input):
        """(input, padding for the functional): non-zero padding modes pad here first."""
        if self.padding_mode == "zeros":
            return input, self.padding
        return sh.pad(input, self._explicit_padding(), mode=self.padding_mode), 0

    def extra_repr(self):
        n = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D cross-correlation over (N, C_in, L) -> (N, C_out, L_out) (or unbatched (C, L)).

    Parameters: ``weight`` (out_channels, in_channels/groups, k), ``bias`` (out_channels,).
    """

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype=dtype, generator=generator)

    def forward(self, input):
        x, batched = self._check_input(input)
        x, padding = self._padded(x)
        pad = padding if isinstance(padding, (str, int)) else padding[0]
        y = F.conv1d(x, self.weight, self.bias, self.stride[0], pad, self.dilation[0],
                     self.groups)
        return y if batched else y.squeeze(0)


class Conv2d(_ConvNd):
    """2-D cross-correlation over (N, C_in, H, W) -> (N, C_out, H_out, W_out) (or unbatched).

    Parameters: ``weight`` (out_channels, in_channels/groups, kh, kw), ``bias`` (out_channels,).
    """

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype=dtype, generator=generator)

    def forward(self, input):
        x, batched = self._check_input(input)
        x, padding = self._padded(x)
        y = F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                     self.groups)
        return y if batched else y.squeeze(0)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution (the adjoint of Conv2d in its input; Dumoulin & Visin 2016).

    (N, C_in, H, W) -> (N, C_out, H_out, W_out), H_out = (H-1)s - 2p + d(k-1) + output_padding + 1.
    Parameters: ``weight`` (in_channels, out_channels/groups, kh, kw), ``bias`` (out_channels,).
    ``forward(input, output_size=None)``: ``output_size`` picks the output_padding that
    gives that size, as PyTorch does.
    """

    _nd = 2
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None, generator=None):
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got "
                             f"{padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype=dtype,
                         generator=generator)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)[-2:]
        pads = []
        for d in range(2):
            n = input.shape[d + 2]
            smallest = ((n - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            if not smallest <= output_size[d] < smallest + self.stride[d]:
                raise ValueError(
                    f"ConvTranspose2d: requested output_size {output_size} is not reachable from "
                    f"input shape {tuple(input.shape)}: size {d} must be in "
                    f"[{smallest}, {smallest + self.stride[d] - 1}]")
            pads.append(output_size[d] - smallest)
        return tuple(pads)

    def forward(self, input, output_size=None):
        x, batched = self._check_input(input)
        y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                               self._output_padding(x, output_size), self.groups, self.dilation)
        return y if batched else y.squeeze(0)
