"""Helpers shared by the layers: dtype defaults, tuples, input-shape errors."""
from .. import backend as B
from ..tensor import Tensor

__all__ = ["float_dtype", "empty", "ntuple", "check_input", "describe"]


def float_dtype(dtype):
    """``dtype`` as a NumPy dtype, or the default floating dtype when None."""
    return B.numpy.dtype(dtype) if dtype is not None else B.get_default_dtype()


def empty(*shape, dtype=None):
    """An uninitialised-by-contract (zero-filled) backend array for a Parameter."""
    return B.xp.zeros(shape, dtype=float_dtype(dtype))


def ntuple(value, n, what):
    """An int or a sequence of n ints as a tuple of n ints (``kernel_size=3`` -> (3, 3))."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{what} must be an int or {n} ints, got {value!r}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def describe(x):
    return f"shape {tuple(x.shape)}"


def check_input(x, layer):
    """Layers take Tensors: a clear TypeError instead of an AttributeError deep inside."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer}: input must be a Tensor, got {type(x).__name__}")
