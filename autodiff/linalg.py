"""``autodiff.linalg``: the linear-algebra namespace, as ``torch.linalg``.

All functions work on batches (*, n, n) with broadcasting batch dims and are
differentiable to any order; see ``autodiff/ops/linalg.py`` for the formulas.
"""
from .ops.linalg import (LinAlgError, cholesky, det, einsum, inv, logdet, matmul,  # noqa: F401
                         matrix_norm, slogdet, solve, solve_triangular, vector_norm)
from .ops.shape import diagonal as _diagonal

__all__ = ["det", "slogdet", "inv", "solve", "cholesky", "solve_triangular", "matmul",
           "vector_norm", "matrix_norm", "diagonal", "LinAlgError"]


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """Diagonal of the matrices in dims (dim1, dim2), placed last (``torch.linalg.diagonal``)."""
    return _diagonal(A, offset=offset, dim1=dim1, dim2=dim2)
