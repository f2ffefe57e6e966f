"""Linear, Identity and Flatten (``torch.nn.Linear``, ``torch.nn.Identity``, ``torch.nn.Flatten``)."""
import math

from .. import functional as F
from ..ops import shape as sh
from . import init
from ._util import empty, check_input, size_arg
from .module import Module, Parameter

__all__ = ["Identity", "Linear", "Flatten", "Unflatten"]


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b.

    Parameters (PyTorch's names, shapes and init): ``weight`` (out_features, in_features)
    ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); ``bias`` (out_features,)
    ~ U(-1/sqrt(in), 1/sqrt(in)).

    Shapes: input (*, in_features) -> output (*, out_features).
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 generator=None):
        super().__init__()
        self.in_features = size_arg(in_features, "Linear", "in_features")
        self.out_features = size_arg(out_features, "Linear", "out_features")
        self.weight = Parameter(empty(self.out_features, self.in_features, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input):
        shape = getattr(input, "shape", None)
        if shape is None or len(shape) == 0 or shape[-1] != self.in_features:
            check_input(input, "Linear")
            last = shape[-1] if shape else "none (0-d)"
            raise ValueError(
                f"Linear(in_features={self.in_features}): input has last dimension {last}, "
                f"shape {tuple(shape)}")
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flattens dimensions start_dim..end_dim into one.

    Shapes: (*, S_start, ..., S_end, *) -> (*, prod(S_start..S_end), *); defaults keep the
    batch dimension: (N, C, H, W) -> (N, C*H*W).
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        check_input(input, "Flatten")
        n = input.ndim
        for d in (self.start_dim, self.end_dim):
            if not -max(n, 1) <= d < max(n, 1):
                raise IndexError(
                    f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}): dimension "
                    f"{d} out of range for input of shape {tuple(input.shape)}")
        return sh.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dimension ``dim`` into ``unflattened_size``: (*, prod(size), *) -> (*, *size, *)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input):
        check_input(input, "Unflatten")
        d = self.dim % input.ndim
        size = 1
        for s in self.unflattened_size:
            size *= s
        if input.shape[d] != size and -1 not in self.unflattened_size:
            raise ValueError(
                f"Unflatten(dim={self.dim}, unflattened_size={self.unflattened_size}): "
                f"dimension {self.dim} of input shape {tuple(input.shape)} is not {size}")
        shape = tuple(input.shape[:d]) + self.unflattened_size + tuple(input.shape[d + 1:])
        return sh.reshape(input, shape)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
