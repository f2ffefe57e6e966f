"""The one place that chooses the array library.

Every other module reaches arrays through ``backend.xp`` (NumPy by default, CuPy when
asked), so the same lines run on the CPU and on an NVIDIA GPU. Choose CuPy with the
environment variable ``REFGEN_BACKEND=cupy`` before import, or ``set_backend("cupy")``
before any tensor is made (tensors made on one backend keep their arrays).

This module also owns the default floating dtype (float32, or float64 for numerics
checks), the global random generator, and the host<->device moves.
"""
import os

# Host-side NumPy: the default array library, and the host form every
# ``Tensor.numpy()`` returns. The only module besides this one that may import it
# is code that must run on the host (file I/O, SciPy), and it says so.
import numpy

__all__ = [
    "xp", "name", "set_backend", "get_backend", "set_default_dtype", "get_default_dtype",
    "manual_seed", "default_generator", "Generator", "to_numpy", "to_backend", "scatter_add",
]

xp = numpy
name = "numpy"
# Special functions (expit, erf, ...) for the active library: SciPy's ufuncs on NumPy
# arrays, cupyx.scipy.special's kernels on CuPy arrays. Imported lazily (see _special()).
_special = None
_default_dtype = numpy.dtype(numpy.float32)
# "strict": NumPy with CuPy's refusals, for tests (autodiff/strict_backend.py).
_BACKENDS = ("numpy", "cupy", "strict")


def _import_cupy():
    try:
        import cupy  # noqa: F401  (the GPU array library; only imported when asked for)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "backend 'cupy' was requested but CuPy is not installed "
            "(install the 'gpu' extra: pip install 'refgen[gpu]')") from exc
    return cupy


def set_backend(backend):
    """Select the array library: ``"numpy"`` (default) or ``"cupy"``.

    Tensors created before the switch keep their old arrays; create models after it.
    """
    global xp, name, _default_generator
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(_BACKENDS)}")
    global _special
    if backend == "strict":
        from . import strict_backend
        xp = strict_backend.xp
    else:
        xp = _import_cupy() if backend == "cupy" else numpy
    name = backend
    _special = None
    _default_generator = Generator(0)


def special():
    """``scipy.special`` (NumPy backend) or ``cupyx.scipy.special`` (CuPy backend)."""
    global _special
    if _special is None:
        if name == "cupy":
            import cupyx.scipy.special as sp  # GPU kernels with SciPy's names
        elif name == "strict":
            import scipy.special
            from . import strict_backend  # ufuncs dispatch on strict arrays; functions wrap
            sp = strict_backend._StrictNamespace("strict_scipy_special", scipy.special)
        else:
            import scipy.special as sp  # ufuncs on the host arrays NumPy already uses
        _special = sp
    return _special


def scipy_linalg():
    """``scipy.linalg`` (NumPy backend) or ``cupyx.scipy.linalg`` (CuPy backend)."""
    if name == "cupy":
        import cupyx.scipy.linalg as la  # GPU kernels with SciPy's names
    elif name == "strict":
        import scipy.linalg
        from . import strict_backend  # device-side like cupyx: arrays in, arrays out
        la = strict_backend._StrictNamespace("strict_scipy_linalg", scipy.linalg)
    else:
        import scipy.linalg as la  # works on the host arrays NumPy already uses
    return la


def get_backend():
    """Name of the active array library: ``"numpy"`` or ``"cupy"``."""
    return name


def set_default_dtype(dtype):
    """Set the floating dtype of new tensors made from Python data: float32 or float64."""
    global _default_dtype
    dt = numpy.dtype(dtype)
    if dt not in (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64)):
        raise ValueError(f"default dtype must be float32 or float64, got {dt}")
    _default_dtype = dt


def get_default_dtype():
    """The floating dtype of new tensors made from Python data (a ``numpy.dtype``)."""
    return _default_dtype


def is_backend_array(a):
    """True when ``a`` is an array of the active library."""
    return isinstance(a, xp.ndarray)


def scatter_add(out, index, values):
    """``out[index] += values`` in place, accumulating repeated indices (NumPy's ``add.at``)."""
    if name == "cupy":
        import cupyx  # CuPy's accumulating scatter lives in cupyx
        cupyx.scatter_add(out, index, values)
    elif name == "strict":
        from .strict_backend import unwrap
        numpy.add.at(unwrap(out), unwrap(index), unwrap(values))
    else:
        numpy.add.at(out, index, values)
    return out


def to_numpy(a):
    """Copy an array of either library to a host NumPy array (no copy when already host)."""
    if isinstance(a, numpy.ndarray):
        return a
    if name in ("cupy", "strict") and isinstance(a, xp.ndarray):
        return xp.asnumpy(a)
    return numpy.asarray(a)


def to_backend(a, dtype=None):
    """Move host data (NumPy array, list, scalar) to an array of the active library."""
    return xp.asarray(a, dtype=dtype)


class Generator:
    """A seeded random generator whose state can be saved and restored exactly.

    The stream is NumPy's PCG64 on the host for both backends; on CuPy the draws are
    copied to the device. Why not CuPy's own generator: its state lives on the device
    and cannot be read back or set, so a checkpoint could not resume the exact stream.
    The copy costs one host-to-device transfer per draw (noise tensors of a training
    step: well under a millisecond). The same seed gives the same numbers on both
    backends.
    """

    __slots__ = ("seed", "_rng")

    def __init__(self, seed=None):
        self.seed = seed
        self._rng = numpy.random.default_rng(seed)

    def manual_seed(self, seed):
        self.seed = seed
        self._rng = numpy.random.default_rng(seed)
        return self

    @property
    def rng(self):
        """The underlying host ``numpy.random.Generator``."""
        return self._rng

    def random(self, shape, dtype):
        """Uniform on [0, 1)."""
        dtype = numpy.dtype(dtype)
        if dtype == numpy.float64 or dtype == numpy.float32:
            return xp.asarray(self._rng.random(shape, dtype=dtype))
        return xp.asarray(self._rng.random(shape).astype(dtype))

    def normal(self, shape, dtype):
        """Standard normal."""
        return xp.asarray(self._rng.standard_normal(shape, dtype=numpy.dtype(dtype)))

    def integers(self, low, high, shape):
        """Uniform integers in [low, high), int64."""
        return xp.asarray(self._rng.integers(low, high, size=shape, dtype=numpy.int64))

    def permutation(self, n):
        """A random permutation of range(n), int64."""
        return xp.asarray(self._rng.permutation(n).astype(numpy.int64, copy=False))

    def get_state(self):
        """The bit generator state as a dict of host values (for checkpoints)."""
        return self._rng.bit_generator.state

    def set_state(self, state):
        self._rng.bit_generator.state = state


_default_generator = Generator(0)


def default_generator():
    """The global generator that samplers use when none is passed."""
    return _default_generator


def manual_seed(seed):
    """Reseed the global generator; returns it."""
    return _default_generator.manual_seed(int(seed))


_requested = os.environ.get("REFGEN_BACKEND", "numpy").strip().lower() or "numpy"
if _requested != "numpy":
    try:
        set_backend(_requested)
    except (ValueError, RuntimeError) as _exc:
        # Name the variable: the user set it, perhaps long ago, and sees no set_backend call.
        raise type(_exc)(f"environment variable REFGEN_BACKEND={_requested!r}: {_exc}") from None
