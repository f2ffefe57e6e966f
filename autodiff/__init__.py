"""autodiff: a small reverse-mode automatic differentiation engine on NumPy or CuPy.

PyTorch's names, so the two read side by side::

    import autodiff
    import autodiff.functional as F

    x = autodiff.tensor([[1.0, 2.0]], requires_grad=True)
    y = F.softplus(x).sum()
    y.backward()                      # x.grad holds sigmoid(x)
    (g,) = autodiff.grad(y, [x], create_graph=True)   # differentiable gradient
"""
from . import backend

# dtype objects (float32, ...) are NumPy dtypes on both backends (CuPy uses them too).
_host_numpy = backend.numpy
from .backend import (set_backend, get_backend, set_default_dtype, get_default_dtype,
                      manual_seed, Generator, default_generator)
from .tensor import (Tensor, Function, tensor, no_grad, enable_grad, set_grad_enabled,
                     is_grad_enabled, grad, detect_anomaly, is_anomaly_enabled, to_device)
from .tensor_methods import _link_ops
_link_ops()   # the Tensor methods' ops import Tensor, so they are bound once it exists
del _link_ops
from .factories import *  # noqa: F401,F403
from .factories import __all__ as _factories_all
from .ops import *  # noqa: F401,F403  (every elementwise, reduction and shape op; matmul...)

float16 = _host_numpy.dtype("float16")
float32 = _host_numpy.dtype("float32")
float64 = _host_numpy.dtype("float64")
int32 = _host_numpy.dtype("int32")
int64 = _host_numpy.dtype("int64")
bool_ = _host_numpy.dtype("bool")
long = int64
float = float32
double = float64

__version__ = "0.1.0"

# Linear algebra: einsum and torch's top-level names; the rest under autodiff.linalg.
from .ops.linalg import inv as inverse  # noqa: E402
from . import linalg  # noqa: E402
from . import optim  # noqa: E402  (optimisers, schedules, clipping, EMA)
from .serialization import save, load  # noqa: E402
from . import nn  # noqa: E402  (Module, Parameter, layers)
