"""Primitive operations: forward on raw arrays, backward in Tensor operations."""
from . import elementwise, reduce, shape, linalg  # noqa: F401
