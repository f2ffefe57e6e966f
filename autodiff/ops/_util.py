"""Small helpers shared by the primitive modules: turning operands into Tensors."""
from .. import backend as B
from ..tensor import Tensor, _make

_PY_SCALARS = (int, float, bool)


def as_tensor_like(value, like):
    """Wrap a Python/NumPy scalar or array as a constant Tensor next to ``like``.

    A Python scalar takes ``like``'s dtype when ``like`` is floating (so float32 graphs stay
    float32, as NumPy's weak scalars do); a float scalar next to an integer tensor takes
    the default float dtype.
    """
    if isinstance(value, Tensor):
        return value
    xp = B.xp
    if isinstance(value, _PY_SCALARS) or isinstance(value, B.numpy.generic):
        kind = like.data.dtype.kind
        if kind in "fc":
            dtype = like.data.dtype
        elif isinstance(value, (bool, B.numpy.bool_)):
            dtype = like.data.dtype
        elif isinstance(value, (int, B.numpy.integer)):
            dtype = like.data.dtype if kind in "iu" else B.numpy.int64
        else:
            dtype = B.get_default_dtype()
        return _make(xp.asarray(value, dtype=dtype), False, None)
    arr = xp.asarray(value)
    if arr.dtype.kind == "f" and like.data.dtype.kind == "f":
        arr = arr.astype(like.data.dtype, copy=False)
    return _make(arr, False, None)


def const(array):
    """A constant (non-recording) Tensor around a backend array."""
    return _make(array, False, None)


def normalize_dim(dim, ndim, op):
    """A dimension index in range(ndim), with a clear error naming the op."""
    if not -max(ndim, 1) <= dim < max(ndim, 1):  # a 0-d tensor takes 0 and -1, as in PyTorch
        raise IndexError(
            f"{op}: dimension {dim} out of range for a tensor with {ndim} dimensions")
    return dim % ndim if ndim else 0


def normalize_dims(dim, ndim, op):
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    axes = tuple(sorted({normalize_dim(d, ndim, op) for d in dim}))
    # A 0-d tensor accepts dim 0 / -1 (as PyTorch does) and has no axis to reduce.
    return axes if ndim else ()
