"""Helpers shared by the layers: dtype defaults, tuples, size arguments, input-shape errors."""
import numbers

from .. import backend as B
from ..tensor import Tensor

__all__ = ["float_dtype", "empty", "ntuple", "size_arg", "check_input", "describe"]


def float_dtype(dtype):
    """``dtype`` as a NumPy dtype, or the default floating dtype when None."""
    return B.numpy.dtype(dtype) if dtype is not None else B.get_default_dtype()


def empty(*shape, dtype=None):
    """An uninitialised-by-contract (zero-filled) backend array for a Parameter."""
    return B.xp.zeros(shape, dtype=float_dtype(dtype))


def size_arg(value, owner, name, minimum=0):
    """``value`` as an int for a size/count argument of ``owner``, refusing what PyTorch
    refuses (a str such as ``'2'``, a float, a bool) by name instead of converting it;
    a value below ``minimum`` is a ValueError (``minimum=None``: the caller checks the range)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r} "
                        f"({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value}")
    return value


def ntuple(value, n, what):
    """An int or a sequence of n ints as a tuple of n ints (``kernel_size=3`` -> (3, 3))."""
    owner, _, name = what.rpartition(": ")
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{what} must be an int or {n} ints, got {value!r}")
        return tuple(size_arg(v, owner or what, name or what) for v in value)
    return (size_arg(value, owner or what, name or what),) * n


def describe(x):
    return f"shape {tuple(x.shape)}"


def check_input(x, layer):
    """Layers take Tensors: a clear TypeError instead of an AttributeError deep inside."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer}: input must be a Tensor, got {type(x).__name__}")
