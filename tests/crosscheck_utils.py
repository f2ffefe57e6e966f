"""Helpers for the PyTorch cross-check tier (tests marked ``crosscheck``).

``torch_or_skip()`` skips the calling test with a clear reason when torch is missing, so
the suite runs without the optional extra; ``.ci/run`` installs torch so CI runs them.
Tolerances: same float64 inputs through the same formulas differ only by rounding and
summation order, so 1e-10 relative is the default.
"""
import numpy as np  # host-side comparison of results: tests may use NumPy directly
import pytest

import autodiff

SKIP_REASON = "PyTorch is not installed: pip install -e '.[crosscheck]' to run the cross-checks"


def torch_or_skip():
    torch = pytest.importorskip("torch", reason=SKIP_REASON)
    torch.set_default_dtype(torch.float64)
    return torch


def to_torch(t, requires_grad=False):
    """A float64 (or integer) torch tensor with the same values as refgen Tensor/array ``t``.

    Skips the calling test when torch is missing (a test may convert before it asks for torch).
    """
    torch = pytest.importorskip("torch", reason=SKIP_REASON)
    arr = t.numpy() if isinstance(t, autodiff.Tensor) else np.asarray(t)
    out = torch.from_numpy(np.array(arr, copy=True))
    return out.requires_grad_(requires_grad)


def assert_close(ours, theirs, rtol=1e-10, atol=1e-12, what=""):
    """Compare a refgen Tensor/array with a torch tensor/array elementwise."""
    a = ours.numpy() if isinstance(ours, autodiff.Tensor) else np.asarray(ours)
    b = theirs.detach().cpu().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)
