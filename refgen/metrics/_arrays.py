"""Array conversions the metrics share: whatever a caller passes (an autodiff Tensor, a NumPy
or CuPy array) as a backend array, or as a float64 host array for SciPy and reports."""
import numpy as np  # host-side: SciPy and the reports work on host float64 arrays

import autodiff
from autodiff import backend as B

__all__ = ["backend_array", "backend_float64", "host_float64"]


def backend_array(x):
    """``x`` (Tensor, NumPy or backend array) as an array of the active backend."""
    if isinstance(x, autodiff.Tensor):
        return x.data
    return B.to_backend(x)


def backend_float64(x):
    """``x`` (Tensor, NumPy or backend array, nested lists) as a float64 backend array."""
    if isinstance(x, autodiff.Tensor):
        x = x.data
    return B.xp.asarray(x, dtype=B.xp.float64)


def host_float64(x):
    """``x`` (Tensor, NumPy or backend array, number) as a host NumPy float64 array."""
    if isinstance(x, autodiff.Tensor):
        x = x.data
    return np.asarray(B.to_numpy(x), dtype=np.float64)
