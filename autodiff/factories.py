"""Tensor constructors with PyTorch's names: zeros, ones, full, arange, randn, ...

Floating results take the default dtype (``set_default_dtype``) unless ``dtype`` is given.
Random constructors draw from ``generator`` or, when it is None, the global one that
``manual_seed`` seeds.
"""
from . import backend as B
from .tensor import Tensor

__all__ = [
    "zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "arange",
    "linspace", "eye", "rand", "randn", "randint", "randperm", "rand_like", "randn_like",
    "from_numpy", "as_tensor",
]


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(int(s) for s in size)


def _float(dtype):
    return B.numpy.dtype(dtype) if dtype is not None else B.get_default_dtype()


def _gen(generator):
    return generator if generator is not None else B.default_generator()


def zeros(*size, dtype=None, requires_grad=False):
    return Tensor(B.xp.zeros(_shape(size), dtype=_float(dtype)), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return Tensor(B.xp.ones(_shape(size), dtype=_float(dtype)), requires_grad=requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    return Tensor(B.xp.full(tuple(size), fill_value, dtype=_float(dtype)),
                  requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(B.xp.zeros(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(B.xp.ones(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    return Tensor(B.xp.full(t.shape, fill_value, dtype=dtype or t.dtype),
                  requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None):
    """Like ``torch.arange``: integer arguments give int64, float arguments the default dtype."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = B.numpy.int64 if ints else B.get_default_dtype()
    return Tensor(B.xp.arange(start, end, step, dtype=dtype))


def linspace(start, end, steps, dtype=None):
    return Tensor(B.xp.linspace(start, end, steps, dtype=_float(dtype)))


def eye(n, m=None, dtype=None):
    return Tensor(B.xp.eye(n, m, dtype=_float(dtype)))


def rand(*size, generator=None, dtype=None, requires_grad=False):
    """Uniform on [0, 1)."""
    return Tensor(_gen(generator).random(_shape(size), _float(dtype)), requires_grad=requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False):
    """Standard normal."""
    return Tensor(_gen(generator).normal(_shape(size), _float(dtype)), requires_grad=requires_grad)


def randint(low, high=None, size=(), generator=None):
    """Uniform integers in [low, high) (``randint(high, size)`` also accepted), int64."""
    if isinstance(high, (tuple, list)):  # randint(high, size), as torch.randint
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if low >= high:
        raise ValueError(f"randint: empty range [{low}, {high}); need low < high")
    return Tensor(_gen(generator).integers(low, high, tuple(size)))


def randperm(n, generator=None):
    return Tensor(_gen(generator).permutation(n))


def rand_like(t, generator=None):
    return rand(t.shape, generator=generator, dtype=t.dtype)


def randn_like(t, generator=None):
    return randn(t.shape, generator=generator, dtype=t.dtype)


def from_numpy(array):
    """A tensor holding ``array`` (moved to the GPU when the backend is CuPy), dtype kept."""
    return Tensor(B.xp.asarray(array))


def as_tensor(data, dtype=None):
    return data if isinstance(data, Tensor) and dtype is None else Tensor(data, dtype=dtype)
