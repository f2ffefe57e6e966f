"""Test configuration shared by every test module.

* float64 by default: tests that compare numbers compare them in float64.
* A hypothesis profile without deadlines (shared CI machines are noisy) and with
  derandomised, fixed-seed generation so a failure reproduces.
* ``REFGEN_BACKEND=cupy`` runs the whole suite on the GPU backend; ``REFGEN_BACKEND=strict``
  on the strict test backend (NumPy with CuPy's refusals, ``autodiff/strict_backend.py``).
* One BLAS thread unless the environment says otherwise, chosen here before NumPy loads
  (``refgen.cli.use_one_blas_thread``; the measured reason is in benchmarks/RESULTS.md).
"""
import os

from refgen.cli import use_one_blas_thread  # imports no NumPy: must run before it loads

use_one_blas_thread()

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import autodiff  # noqa: E402

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=40,
                          print_blob=True)
settings.register_profile("thorough", deadline=None, max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _float64_and_seed():
    """Every test starts in float64 with the global generator seeded, grad mode on."""
    previous = autodiff.get_default_dtype()
    autodiff.set_default_dtype("float64")
    autodiff.manual_seed(0)
    yield
    autodiff.set_default_dtype(previous)
