"""A test backend with CuPy's refusals, on NumPy: the GPU path checked without a GPU.

``REFGEN_BACKEND=strict`` (or ``autodiff.set_backend("strict")``) makes ``backend.xp`` a
namespace with NumPy's functions whose arrays are ``StrictArray``: a distinct type (not a
``numpy.ndarray`` subclass) that behaves like a CuPy array where it matters:

* implicit conversion to a host array raises ``TypeError``, as CuPy does:
  ``numpy.asarray(a)``, ``numpy.array(a)``, passing it to SciPy or matplotlib, or mixing
  it with a host ``numpy.ndarray`` in a ufunc (``a + host``);
* NumPy functions called on it (``numpy.exp(a)``, ``numpy.sum(a)``) work and return
  ``StrictArray`` (NEP 13/18 dispatch, as CuPy supports), reductions give 0-d arrays,
  not Python or NumPy scalars, as CuPy's do;
* every transfer to the host is counted in ``TRANSFERS``: ``explicit`` (``to_numpy``,
  ``.get()``, ``asnumpy``), ``scalar`` (``float(a)``, ``int(a)``, ``bool(a)``, ``.item()``,
  ``.tolist()``: each a device synchronisation on a GPU). ``host_transfers()`` counts what
  a block of code does; ``TRANSFERS["to_device"]`` counts host-to-device copies
  (``xp.asarray(host)``).

What it cannot show: CuPy's own numerical differences, kernels CuPy lacks, and speed. It is a
checking tool: slower than NumPy (one Python wrapper per operation) and never a default.
"""
import contextlib
import types
from collections import Counter

# host-side: this module IS the host implementation behind the strict arrays
import numpy

__all__ = ["StrictArray", "xp", "TRANSFERS", "host_transfers", "asnumpy", "unwrap", "wrap"]

TRANSFERS = Counter()

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed (strict backend, which "
             "refuses what CuPy refuses): use autodiff.backend.to_numpy(a) for an explicit "
             "copy to the host")


def _count(kind):
    TRANSFERS[kind] += 1


def unwrap(obj):
    """The host arrays inside ``obj`` (StrictArray -> ndarray, through tuples/lists/dicts)."""
    if isinstance(obj, StrictArray):
        return obj._a
    if isinstance(obj, tuple):
        return tuple(unwrap(o) for o in obj)
    if isinstance(obj, list):
        return [unwrap(o) for o in obj]
    if isinstance(obj, dict):
        return {k: unwrap(v) for k, v in obj.items()}
    return obj


def wrap(obj):
    """Results back as StrictArray: ndarrays and NumPy scalars (CuPy returns 0-d arrays)."""
    if isinstance(obj, numpy.ndarray):
        return StrictArray(obj)
    if isinstance(obj, numpy.generic):
        return StrictArray(numpy.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(wrap(o) for o in obj)
    if isinstance(obj, list):
        return [wrap(o) for o in obj]
    return obj


def _refuse_host_arrays(args, what):
    """CuPy refuses host arrays mixed with device arrays; so does this backend."""
    for a in args:
        if isinstance(a, numpy.ndarray):
            raise TypeError(f"{what}: a host numpy.ndarray (shape {a.shape}) mixed with "
                            "strict (device) arrays; move it with autodiff.backend.to_backend")
        if isinstance(a, (tuple, list)):
            _refuse_host_arrays(a, what)


def asnumpy(a):
    """Explicit device-to-host copy (CuPy's ``cupy.asnumpy``); counted."""
    if isinstance(a, StrictArray):
        _count("explicit")
        return a._a.copy()
    return numpy.asarray(a)


class StrictArray:
    """A device array stand-in: NumPy storage, CuPy's refusals (see the module docstring)."""

    __slots__ = ("_a",)
    __array_priority__ = 1000
    __hash__ = None

    def __init__(self, a):
        self._a = a

    # ---------------------------------------------------------------- host conversions
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def get(self):
        return asnumpy(self)

    def item(self, *args):
        _count("scalar")
        return self._a.item(*args)

    def tolist(self):
        _count("scalar")
        return self._a.tolist()

    def __float__(self):
        _count("scalar")
        return float(self._a)

    def __int__(self):
        _count("scalar")
        return int(self._a)

    def __index__(self):
        _count("scalar")
        return self._a.__index__()

    def __bool__(self):
        _count("scalar")
        return bool(self._a)

    def __complex__(self):
        _count("scalar")
        return complex(self._a)

    def __repr__(self):
        return "strict_" + repr(self._a)

    def __format__(self, spec):
        _count("scalar")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    # ---------------------------------------------------------------- NumPy protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host_arrays(inputs, f"numpy.{ufunc.__name__}")
        out = kwargs.get("out")
        if out is not None:
            _refuse_host_arrays(out, f"numpy.{ufunc.__name__}(out=...)")
            kwargs["out"] = unwrap(out)
        kwargs = {k: unwrap(v) for k, v in kwargs.items()}
        result = getattr(ufunc, method)(*unwrap(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_host_arrays(args, f"numpy.{func.__name__}")
        return wrap(func(*unwrap(args), **unwrap(kwargs)))

    # ---------------------------------------------------------------- the array
    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def itemsize(self):
        return self._a.itemsize

    @property
    def nbytes(self):
        return self._a.nbytes

    @property
    def strides(self):
        return self._a.strides

    @property
    def T(self):
        return StrictArray(self._a.T)

    @property
    def flags(self):
        return self._a.flags

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (wrap(v) for v in self._a)

    def __getitem__(self, index):
        return wrap(self._a[unwrap(index)])

    def __setitem__(self, index, value):
        if isinstance(value, numpy.ndarray):   # CuPy copies a host value to the device here
            _count("to_device")
        self._a[unwrap(index)] = unwrap(value)

    def __getattr__(self, name):
        if name.startswith("__"):   # __array_interface__ & co. would convert implicitly
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            def method(*args, **kwargs):
                _refuse_host_arrays(args, f"ndarray.{name}")
                return wrap(attr(*unwrap(args), **unwrap(kwargs)))
            return method
        return wrap(attr)

    def __copy__(self):
        return StrictArray(self._a.copy())

    def __deepcopy__(self, memo):
        return StrictArray(self._a.copy())

    def __reduce__(self):
        raise TypeError("strict arrays are not pickled (device memory); save with "
                        "autodiff.save, which copies to the host explicitly")


def _binary(ufunc, reflected=False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


def _inplace(ufunc):
    def op(self, other):
        ufunc(self, other, out=(self,))
        return self
    return op


for _name, _uf in (("add", numpy.add), ("sub", numpy.subtract), ("mul", numpy.multiply),
                   ("truediv", numpy.true_divide), ("floordiv", numpy.floor_divide),
                   ("mod", numpy.remainder), ("pow", numpy.power), ("matmul", numpy.matmul),
                   ("and", numpy.bitwise_and), ("or", numpy.bitwise_or),
                   ("xor", numpy.bitwise_xor), ("lshift", numpy.left_shift),
                   ("rshift", numpy.right_shift)):
    setattr(StrictArray, f"__{_name}__", _binary(_uf))
    setattr(StrictArray, f"__r{_name}__", _binary(_uf, reflected=True))
    setattr(StrictArray, f"__i{_name}__", _inplace(_uf))
for _name, _uf in (("lt", numpy.less), ("le", numpy.less_equal), ("gt", numpy.greater),
                   ("ge", numpy.greater_equal), ("eq", numpy.equal), ("ne", numpy.not_equal)):
    setattr(StrictArray, f"__{_name}__", _binary(_uf))
StrictArray.__neg__ = lambda self: numpy.negative(self)
StrictArray.__pos__ = lambda self: numpy.positive(self)
StrictArray.__abs__ = lambda self: numpy.absolute(self)
StrictArray.__invert__ = lambda self: numpy.invert(self)


class _StrictNamespace(types.ModuleType):
    """``xp``: NumPy's names; functions take and return StrictArray (host arrays given to
    them are copies to the device, counted as ``to_device``, as ``cupy.asarray`` would)."""

    def __init__(self, name, host):
        super().__init__(name)
        self._host = host
        self._cache = {}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cache = self.__dict__.setdefault("_cache", {})
        if name in cache:
            return cache[name]
        obj = getattr(self._host, name)
        if isinstance(obj, types.ModuleType):
            obj = _StrictNamespace(f"{self.__name__}.{name}", obj)
        elif callable(obj) and not isinstance(obj, type) and not isinstance(obj, numpy.ufunc):
            obj = self._function(name, obj)
        cache[name] = obj
        return obj

    @staticmethod
    def _function(name, fn):
        def call(*args, **kwargs):
            return wrap(fn(*unwrap(args), **unwrap(kwargs)))
        call.__name__ = name
        call.__doc__ = fn.__doc__
        return call


xp = _StrictNamespace("strict_numpy", numpy)
xp.ndarray = StrictArray


def _asarray(a, dtype=None, order=None, **kwargs):
    if isinstance(a, StrictArray):
        return a if dtype is None else StrictArray(a._a.astype(dtype, copy=False))
    if isinstance(a, numpy.ndarray):
        _count("to_device")
    return StrictArray(numpy.asarray(unwrap(a), dtype=dtype, order=order, **kwargs))


def _array(a, dtype=None, copy=True, **kwargs):
    if isinstance(a, numpy.ndarray):
        _count("to_device")
    return StrictArray(numpy.array(unwrap(a), dtype=dtype, copy=copy, **kwargs))


xp.asarray = _asarray
xp.array = _array
xp.asnumpy = asnumpy


@contextlib.contextmanager
def host_transfers():
    """Count the device-to-host transfers of a block: ``with host_transfers() as c: ...``,
    then ``c["explicit"]``, ``c["scalar"]`` (and ``c["to_device"]`` the other way)."""
    before = Counter(TRANSFERS)
    counts = Counter()
    try:
        yield counts
    finally:
        for key in set(TRANSFERS) | set(before):
            counts[key] = TRANSFERS[key] - before[key]
