"""Matrix products and linear algebra.

matmul follows NumPy/PyTorch: 1-D operands are promoted (and the added axis removed
again), leading batch dimensions broadcast. For C = A B,

    dL/dA = dL/dC B^T,      dL/dB = A^T dL/dC,

summed back over broadcast batch dimensions by the engine.
"""
from .. import backend as B
from ..tensor import Function

__all__ = ["matmul"]


def _mT(t):
    return t.transpose(-1, -2)


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least one dimension, got a 0-d tensor")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ValueError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned "
                f"({ka} != {kb})")
        return B.xp.matmul(a, b)

    def backward(self, g):
        a, b = self.inputs
        a2 = a.unsqueeze(0) if a.ndim == 1 else a      # (.., m, k)
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b     # (.., k, n)
        g2 = g
        if a.ndim == 1:
            g2 = g2.unsqueeze(-2)
        if b.ndim == 1:
            g2 = g2.unsqueeze(-1)
        ga = gb = None
        if a.requires_grad:
            ga = MatMul.apply(g2, _mT(b2))
            if a.ndim == 1:
                ga = ga.squeeze(-2)
                if ga.ndim > 1:
                    ga = ga.sum(tuple(range(ga.ndim - 1)))
        if b.requires_grad:
            gb = MatMul.apply(_mT(a2), g2)
            if b.ndim == 1:
                gb = gb.squeeze(-1)
                if gb.ndim > 1:
                    gb = gb.sum(tuple(range(gb.ndim - 1)))
        return ga, gb


def matmul(a, b):
    return MatMul.apply(a, b)
