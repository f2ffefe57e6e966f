"""Normalisation layers: LayerNorm, GroupNorm, BatchNorm1d/2d (PyTorch's names and defaults).

Each standardises with a biased variance, y = (x - mean) / sqrt(var + eps) * weight + bias,
over different axes:

* LayerNorm (Ba et al. 2016): the trailing ``normalized_shape`` dimensions of each sample;
* GroupNorm (Wu & He 2018): each group of C / num_groups channels (with H, W) per sample;
* BatchNorm (Ioffe & Szegedy 2015): each channel over the batch (and L or H, W). In
  training, running_mean/running_var are updated as
  running = (1 - momentum) * running + momentum * batch_stat, with the UNBIASED batch
  variance (PyTorch's convention); momentum=None gives the cumulative average.
"""
from .. import backend as B
from .. import functional as F
from ..tensor import Tensor
from . import init
from ._util import empty, float_dtype, check_input, size_arg
from .module import Module, Parameter

__all__ = ["LayerNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d"]


def _affine_parameters(module, n, affine, bias, dtype):
    """Register ``weight`` (and ``bias`` unless bias=False) of shape (n,), or None when not affine."""
    module.register_parameter("weight", Parameter(empty(n, dtype=dtype)) if affine else None)
    module.register_parameter("bias",
                              Parameter(empty(n, dtype=dtype)) if affine and bias else None)


def _reset_affine(module):
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class LayerNorm(Module):
    """Normalise over the last len(normalized_shape) dimensions.

    Parameters: ``weight`` ones and ``bias`` zeros of shape ``normalized_shape`` (when
    ``elementwise_affine``; ``bias=False`` drops the bias). Shapes: (*, *normalized_shape)
    -> same.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        if not isinstance(normalized_shape, (tuple, list)):   # one size; checked just below
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(size_arg(s, "LayerNorm", "normalized_shape")
                                      for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(empty(*self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(empty(*self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        check_input(input, "LayerNorm")
        k = len(self.normalized_shape)
        if tuple(input.shape[input.ndim - k:]) != self.normalized_shape or input.ndim < k:
            raise ValueError(
                f"LayerNorm(normalized_shape={self.normalized_shape}): input's trailing "
                f"dimensions must be {self.normalized_shape}, got shape {tuple(input.shape)}")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalise each of ``num_groups`` channel groups per sample.

    Parameters: ``weight`` ones, ``bias`` zeros, shape (num_channels,) when ``affine``
    (``bias=False``, keyword-only as in PyTorch >= 2.6, drops the bias).
    Shapes: (N, C, *) -> (N, C, *).
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        num_groups = size_arg(num_groups, "GroupNorm", "num_groups", minimum=None)  # range below
        num_channels = size_arg(num_channels, "GroupNorm", "num_channels")
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups}), a positive integer")
        self.num_groups = size_arg(num_groups, "GroupNorm", "num_groups", 1)
        self.num_channels = size_arg(num_channels, "GroupNorm", "num_channels")
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, self.num_channels, affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        check_input(input, "GroupNorm")
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(
                f"GroupNorm(num_groups={self.num_groups}, num_channels={self.num_channels}): "
                f"input must be (N, {self.num_channels}, *), got shape {tuple(input.shape)}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _BatchNorm(Module):
    """Shared BatchNorm logic; subclasses fix the accepted input ranks."""

    _ranks = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features = size_arg(num_features, type(self).__name__, "num_features")
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, self.num_features, affine, bias, dtype)
        if track_running_stats:
            dt = float_dtype(dtype)
            self.register_buffer("running_mean", Tensor(B.xp.zeros(self.num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor(B.xp.ones(self.num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked",
                                 Tensor(B.xp.zeros((), dtype=B.numpy.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input(self, input):
        check_input(input, type(self).__name__)
        if input.ndim not in self._ranks or input.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}(num_features={self.num_features}): input must be "
                f"{self._layout} with C={self.num_features}, got shape {tuple(input.shape)}")

    def forward(self, input):
        """Batch statistics in training (or when no running stats are kept), else running ones."""
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1  # a counter, outside the graph
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input,
                            self.running_mean if track else None,
                            self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs, per channel. Shape in = shape out.

    Parameters ``weight`` ones, ``bias`` zeros (C,) (``bias=False``, keyword-only,
    drops the bias); buffers ``running_mean`` zeros,
    ``running_var`` ones (C,), ``num_batches_tracked`` (int64 scalar).
    """

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs, per channel. Shape in = shape out.

    Parameters and buffers as BatchNorm1d.
    """

    _ranks = (4,)
    _layout = "(N, C, H, W)"
