"""Matrix products, einsum and linear algebra (PyTorch's ``torch.linalg`` semantics).

Every function here works on batches: the last two dimensions are the matrix, the
leading ones are batch dimensions that broadcast as in NumPy. The primitives and their
reverse-mode rules (G = dL/d(output), all written in Tensor operations, so that
``create_graph=True`` differentiates them again):

==========================  ==============================================================
C = A B          (matmul)   dA = G B^T,  dB = A^T G
Y = einsum(eq, X_1..X_k)    dX_i = einsum(G and the other operands -> X_i's subscripts)
Y = A^-1         (inv)      dA = -Y^T G Y^T
d = det A                   dA = G d A^-T
l = log|det A|   (slogdet)  dA = G A^-T
X = A^-1 B       (solve)    dB = A^-T G,  dA = -dB X^T
X = A^-1 B       (solve_triangular, A triangular)
                            dB = A^-T G,  dA = tri(-dB X^T)  (only the triangle read)
L = cholesky(A)             dA = sym(L^-T Phi(L^T G) L^-1)   (Murray 2016)
==========================  ==============================================================

Numerical failures (a singular matrix, a matrix that is not positive-definite) raise
``LinAlgError`` naming the op on the NumPy backend. On CuPy the solvers do not report
them without a device-to-host synchronisation, which the hot path avoids: there a
failed factorisation shows up as NaN/Inf (``autodiff.detect_anomaly()`` names the op).
"""
import functools
import string

from .. import backend as B
from ..tensor import Function, SaveOutputFunction, Tensor
from ._util import as_tensor_like, const
from . import elementwise as ew
from . import reduce as rd
from . import shape as sh

__all__ = [
    "matmul", "einsum", "det", "slogdet", "inv", "solve", "cholesky", "solve_triangular",
    "LinAlgError", "vector_norm", "matrix_norm",
]


class LinAlgError(RuntimeError):
    """A numerical failure in a linear-algebra op (like ``torch.linalg.LinAlgError``)."""


def _mT(t):
    return sh.transpose(t, -1, -2)


def _shape(t):
    return tuple(t.shape)


# --------------------------------------------------------------------------- matmul
class MatMul(Function):
    """C = A B over the last two dims, batch dims broadcast (``numpy.matmul`` rules)."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least one dimension, got a 0-d tensor")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ValueError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned "
                f"({ka} != {kb})")
        try:
            return B.xp.matmul(a, b)
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of {tuple(a.shape)} and {tuple(b.shape)} do not "
                f"broadcast") from None

    def backward(self, g):
        a, b = self.inputs
        # 1-D operands were promoted to (1, k) / (k, 1) and the axis removed again; do the
        # same to the gradient so the matrix rule applies unchanged.
        a2 = sh.unsqueeze(a, 0) if a.ndim == 1 else a      # (.., m, k)
        b2 = sh.unsqueeze(b, -1) if b.ndim == 1 else b     # (.., k, n)
        g2 = g  # restore n first, then m: for vector @ vector g is 0-d
        if b.ndim == 1:
            g2 = sh.unsqueeze(g2, -1)
        if a.ndim == 1:
            g2 = sh.unsqueeze(g2, -2)
        ga = gb = None
        if a.requires_grad:
            ga = MatMul.apply(g2, _mT(b2))
            if a.ndim == 1:
                ga = sh.squeeze(ga, -2)
        if b.requires_grad:
            gb = MatMul.apply(_mT(a2), g2)
            if b.ndim == 1:
                gb = sh.squeeze(gb, -1)
        # Batch dimensions broadcast against a 1-D operand are summed by the engine.
        return ga, gb


class Linear(Function):
    """y = x W^T (+ b) as one primitive, the fused form of ``matmul(x, W.T) + b`` (PyTorch's
    ``addmm``). x (N, in), W (out, in), b (out,) -> y (N, out).

        dL/dx = g W,    dL/dW = g^T x,    dL/db = sum_n g[n]

    Faster than the composite, which records three nodes (transpose, matmul, broadcasting
    add) and allocates the product and the sum separately, and whose backward adds two
    transposes and the bias's unbroadcasting sum: here the bias is added in place into the
    product and the backward is two matmuls and a row sum. Measured on the RealNVP 2-D step
    (24 linears, batch 512; benchmarks/RESULTS.md, issue 10).
    """

    def forward(self, x, w, b=None):
        out = B.xp.matmul(x, w.T)
        if b is not None:
            out += b
        return out

    def backward(self, g):
        x, w = self.inputs[0], self.inputs[1]
        gx = MatMul.apply(g, w) if x.requires_grad else None
        gw = MatMul.apply(_mT(g), x) if w.requires_grad else None
        if len(self.inputs) == 2:
            return gx, gw
        gb = rd.sum(g, 0) if self.inputs[2].requires_grad else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """y = x W^T + b for x (N, in), weight (out, in), bias (out,) or None: one ``Linear``
    node. Arguments are checked by ``autodiff.functional.linear``, the public entry."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


def matmul(a, b):
    """Matrix product with ``torch.matmul``'s rules.

    (n,) @ (n,) -> (); (m, n) @ (n,) -> (m,); (n,) @ (*, n, p) -> (*, p);
    (*a, m, n) @ (*b, n, p) -> (broadcast(*a, *b), m, p).
    A non-Tensor operand (an array, nested lists) becomes a constant of the other's dtype.
    """
    if not isinstance(a, Tensor):
        a = as_tensor_like(a, b)
    elif not isinstance(b, Tensor):
        b = as_tensor_like(b, a)
    return MatMul.apply(a, b)


# --------------------------------------------------------------------------- einsum
_LETTERS = string.ascii_letters


class Einsum(Function):
    """``xp.einsum`` on an equation already in canonical form.

    Canonical: explicit ``->``, letters only (no ellipsis), and no broadcasting of a
    size-1 dimension against a larger one (``einsum`` below squeezes those first).

    The gradient for operand i is again an einsum: of G (subscripts ``out``) with the
    other operands, producing operand i's subscripts. Two refinements:

    * a label repeated inside operand i (a diagonal, ``'ii->i'``) gets a fresh label
      for each repeat, tied to the first by a constant identity matrix, so the
      gradient lands on the diagonal only;
    * a label found only in operand i (summed away, ``'ij->i'``) is absent from G and
      from the others: the einsum leaves it out and the result is broadcast along it.
    """

    def forward(self, *arrays, subs, out):
        self.subs, self.out = subs, out
        self.sizes = {}
        for s, a in zip(subs, arrays):
            for c, n in zip(s, a.shape):
                self.sizes[c] = n
        equation = ",".join(subs) + "->" + out
        # optimize=True lets NumPy/CuPy reorder contractions and call BLAS (tensordot,
        # matmul); planning costs ~50 us, 10x a small einsum, so small two-operand
        # products (a naive loop of < 2^14 steps) skip it.
        work = 1
        for n in self.sizes.values():
            work *= n
        optimize = len(arrays) > 2 or (len(arrays) == 2 and work >= 1 << 14)
        return B.xp.einsum(equation, *arrays, optimize=optimize)

    def backward(self, g):
        return tuple(self._grad(i, g) if x.requires_grad else None
                     for i, x in enumerate(self.inputs))

    def _grad(self, i, g):
        subs, inputs = self.subs, self.inputs
        used = set(self.out).union(*subs)
        fresh = (c for c in _LETTERS if c not in used)
        target, ties, seen = [], [], set()
        for c in subs[i]:
            if c in seen:
                f = next(fresh)
                target.append(f)
                ties.append(c + f)
            else:
                seen.add(c)
                target.append(c)
        others = [j for j in range(len(subs)) if j != i]
        available = set(self.out).union(*(subs[j] for j in others), *ties)
        kept = "".join(c for c in target if c in available)
        xp = B.xp
        eyes = [const(xp.eye(self.sizes[t[0]], dtype=g.dtype)) for t in ties]
        grad = Einsum.apply(g, *(inputs[j] for j in others), *eyes,
                            subs=(self.out, *(subs[j] for j in others), *ties), out=kept)
        if len(kept) < len(target):
            shape = _shape(inputs[i])
            grad = sh.reshape(grad, tuple(n if c in available else 1
                                          for c, n in zip(target, shape)))
            grad = rd.broadcast_to(grad, shape)
        return grad


def _parse_term(term, op_index, equation):
    """A subscript term as a list of letters with at most one ``'...'`` entry."""
    labels, k = [], 0
    while k < len(term):
        if term.startswith("...", k):
            if "..." in labels:
                raise ValueError(f"einsum: '{equation}': more than one ellipsis in term "
                                 f"{term!r}")
            labels.append("...")
            k += 3
        elif term[k] in _LETTERS:
            labels.append(term[k])
            k += 1
        else:
            where = "the output" if op_index is None else f"operand {op_index}"
            raise ValueError(f"einsum: '{equation}': invalid subscript {term[k]!r} for {where}; "
                             f"use letters a-z, A-Z and '...'")
    return labels


def _canonical_equation(equation, shapes):
    """(input subscripts, output subscripts) as letter strings, ellipses expanded.

    Ellipsis dimensions get unused letters, aligned from the right (they broadcast).
    Implicit mode (no ``->``) outputs the ellipsis dims, then the labels that appear
    exactly once, in alphabetical (ASCII) order, as NumPy and PyTorch do.
    """
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise ValueError(f"einsum: '{equation}' has more than one '->'")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: '{equation}' names {len(terms)} operands but "
                         f"{len(shapes)} were given")
    parsed = [_parse_term(t, i, equation) for i, t in enumerate(terms)]
    n_ell = []
    for i, (labels, shape) in enumerate(zip(parsed, shapes)):
        n_letters = len(labels) - ("..." in labels)
        if ("..." in labels and len(shape) < n_letters) or (
                "..." not in labels and len(shape) != n_letters):
            raise ValueError(
                f"einsum: '{equation}': operand {i} has shape {tuple(shape)} "
                f"({len(shape)} dims) but its subscripts {terms[i]!r} name {n_letters}")
        n_ell.append(len(shape) - n_letters if "..." in labels else 0)
    max_ell = max(n_ell, default=0)
    used = set(eq)
    ell = [c for c in _LETTERS if c not in used][:max_ell]

    def expand(labels, k):
        out = []
        for c in labels:
            out.extend(ell[len(ell) - k:] if c == "..." else [c])
        return "".join(out)

    subs = [expand(labels, k) for labels, k in zip(parsed, n_ell)]
    if arrow:
        out_labels = _parse_term(rhs, None, equation)
        out = expand(out_labels, max_ell)
        known = set("".join(subs))
        for c in out:
            if c not in known:
                raise ValueError(f"einsum: '{equation}': output subscript {c!r} does not "
                                 f"appear in any operand")
            if out.count(c) > 1:
                raise ValueError(f"einsum: '{equation}': output subscript {c!r} appears "
                                 f"more than once")
    else:
        letters = "".join(c for labels in parsed for c in labels if c != "...")
        once = sorted(c for c in set(letters) if letters.count(c) == 1)
        out = "".join(ell) + "".join(once)
    return subs, out


@functools.lru_cache(maxsize=1024)
def _einsum_plan(equation, shapes):
    """(canonical input subscripts, output subscripts, per operand the shape to squeeze
    it to or None), validated; cached because parsing costs more than a small einsum."""
    subs, out = _canonical_equation(equation, shapes)
    sizes = {}
    for i, (s, shape) in enumerate(zip(subs, shapes)):
        for c, n in zip(s, shape):
            if s.count(c) > 1 and len({shape[k] for k, d in enumerate(s) if d == c}) > 1:
                raise ValueError(f"einsum: '{equation}': subscript {c!r} is repeated in "
                                 f"operand {i} of shape {shape} over dimensions of "
                                 f"different sizes")
            sizes.setdefault(c, set()).add(n)
    for c, ns in sizes.items():
        if len(ns - {1}) > 1:
            detail = ", ".join(f"operand {i} {shape}" for i, shape in enumerate(shapes))
            raise ValueError(f"einsum: '{equation}': a subscript has sizes {sorted(ns)} in "
                             f"different places ({detail}); sizes must match or be 1")
    # A size-1 dimension that broadcasts against a larger one is squeezed away (a
    # reshape), so the primitive never broadcasts and its gradient needs no unbroadcast.
    squeezed = []
    for i, (s, shape) in enumerate(zip(subs, shapes)):
        drop = [k for k, c in enumerate(s) if shape[k] == 1 and sizes[c] - {1}]
        squeezed.append(tuple(n for k, n in enumerate(shape) if k not in drop) if drop else None)
        if drop:
            subs[i] = "".join(c for k, c in enumerate(s) if k not in drop)
    return tuple(subs), out, tuple(squeezed)


def einsum(equation, *operands):
    """Einstein summation, ``torch.einsum(equation, *operands)``.

    Sums the product of the operands over every label not in the output, e.g.
    ``'bij,bjk->bik'`` is a batched matmul, ``'ii->'`` a trace, ``'i,j->ij'`` an outer
    product. Supports ``'...'`` (broadcasting batch dims, aligned from the right),
    implicit output (no ``->``), repeated labels within an operand (diagonals) and
    size-1 dimensions that broadcast against the other operands' sizes.
    Operands may also be passed as one list: ``einsum(eq, [a, b])``.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError(f"einsum: '{equation}' needs at least one operand")
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operand {i} is a {type(t).__name__}, not a Tensor")
    subs, out, squeezed = _einsum_plan(equation, tuple(_shape(t) for t in operands))
    operands = [t if shape is None else sh.reshape(t, shape)
                for t, shape in zip(operands, squeezed)]
    return Einsum.apply(*operands, subs=subs, out=out)


# --------------------------------------------------------------------------- helpers
def _check_square(a, op):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: expected a square matrix or a batch of them (*, n, n), "
                         f"got shape {_shape(a)}")
    if a.dtype.kind not in "fc":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {a.dtype}")


def _batch_shape(op, *shapes):
    try:
        return tuple(B.numpy.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{op}: batch dimensions {', '.join(str(s) for s in shapes)} do not "
                         f"broadcast") from None


def _broadcast_batch(op, a, b):
    """Broadcast the batch dims of matrices a (*, n, n) and b (*, n, k) to one shape."""
    batch = _batch_shape(op, _shape(a)[:-2], _shape(b)[:-2])
    return (rd.broadcast_to(a, batch + _shape(a)[-2:]),
            rd.broadcast_to(b, batch + _shape(b)[-2:]))


def _fold(b):
    """(*, n, k) -> (n, prod(*) k): many right-hand sides for one 2-D matrix."""
    xp = B.xp
    n = b.shape[-2]
    return xp.moveaxis(b, -2, 0).reshape(n, -1)


def _unfold(x, shape):
    """Inverse of ``_fold`` for an array of the folded right-hand side's ``shape``."""
    xp = B.xp
    n = shape[-2]
    return xp.moveaxis(x.reshape((n,) + tuple(shape[:-2]) + (shape[-1],)), 0, -2)


def _linalg_call(op, fn, *arrays, failure):
    try:
        return fn(*arrays)
    except B.numpy.linalg.LinAlgError as exc:
        shapes = " and ".join(str(tuple(a.shape)) for a in arrays if hasattr(a, "shape"))
        raise LinAlgError(f"{op}: {failure} (input shape {shapes}; {exc})") from None


# --------------------------------------------------------------------------- inv, det, slogdet
class Inv(SaveOutputFunction):
    """Y = A^-1; dA = -Y^T G Y^T (from dY = -Y dA Y)."""

    def forward(self, a):
        return _linalg_call("inv", B.xp.linalg.inv, a, failure="the matrix is singular")

    def backward(self, g):
        y_t = _mT(self.saved_output())
        return -(y_t @ g @ y_t)


def inv(A):
    """Inverse of a square matrix (*, n, n) -> (*, n, n) (``torch.linalg.inv``)."""
    _check_square(A, "inv")
    return Inv.apply(A)


class Det(SaveOutputFunction):
    """d = det A (*, n, n) -> (*); dA = G d A^-T (Jacobi's formula).

    The rule uses A^-1, so the gradient at an exactly singular A is not available
    (``inv`` raises); PyTorch falls back to an SVD there.
    """

    def forward(self, a):
        return B.xp.linalg.det(a)

    def backward(self, g):
        a = self.inputs[0]
        d = self.saved_output()
        try:
            a_inv = Inv.apply(a)
        except LinAlgError:
            raise LinAlgError(f"det backward: the gradient at a singular matrix (shape "
                              f"{_shape(a)}) is not supported (it needs A^-1)") from None
        return sh.unsqueeze(sh.unsqueeze(g * d, -1), -1) * _mT(a_inv)


def det(A):
    """Determinant (*, n, n) -> (*) (``torch.linalg.det``)."""
    _check_square(A, "det")
    return Det.apply(A)


class LogAbsDet(Function):
    """l = log|det A| (*, n, n) -> (*); dl/dA = A^-T. The sign is a constant."""

    def forward(self, a, sign_out):
        # The sign leaves through ``sign_out`` (a list): one factorisation gives both.
        sign, logabsdet = B.xp.linalg.slogdet(a)
        sign_out.append(sign)
        return logabsdet

    def backward(self, g):
        a = self.inputs[0]
        return sh.unsqueeze(sh.unsqueeze(g, -1), -1) * _mT(Inv.apply(a))


def slogdet(A):
    """(sign, log|det A|) of (*, n, n), each of shape (*) (``torch.linalg.slogdet``).

    ``sign`` is -1, 0 or +1 and carries no gradient; log|det A| is differentiable with
    gradient A^-T. For a singular A, sign = 0 and logabsdet = -inf.
    """
    _check_square(A, "slogdet")
    sign_out = []
    logabsdet = LogAbsDet.apply(A, sign_out=sign_out)
    return Tensor(sign_out[0]), logabsdet


def logdet(A):
    """log det A (*, n, n) -> (*); NaN where det A < 0 (``torch.logdet``)."""
    sign, logabsdet = slogdet(A)
    return ew.where(sign.data < 0, float("nan"), logabsdet)


# --------------------------------------------------------------------------- solve
class Solve(SaveOutputFunction):
    """X = A^-1 B for A (*, n, n) and B (*, n, k) with equal batch dims, or a 2-D A and
    any batch of B (then A is factorised once for all right-hand sides).

    dB = A^-T G (a solve with A^T), dA = -dB X^T (from dX = -A^-1 dA X).
    """

    def forward(self, a, b):
        fn = B.xp.linalg.solve
        if a.ndim == 2 and b.ndim > 2:
            x = _linalg_call("solve", fn, a, _fold(b), failure="the matrix A is singular")
            return _unfold(x, b.shape)
        return _linalg_call("solve", fn, a, b, failure="the matrix A is singular")

    def backward(self, g):
        a, b = self.inputs
        gb = Solve.apply(_mT(a), g)
        ga = -(gb @ _mT(self.saved_output())) if a.requires_grad else None
        return ga, gb


def _is_vector_rhs(A, Bm):
    """torch.linalg.solve's rule: B is a (batch of) vector(s) when B is 1-D or B's shape
    is A's without the last dimension."""
    return Bm.ndim == 1 or (Bm.ndim == A.ndim - 1 and _shape(Bm) == _shape(A)[:-1])


def solve(A, B_, left=True):
    """X with A X = B (``left=True``) or X A = B, for A (*, n, n) (``torch.linalg.solve``).

    B is (*, n, k) or a (batch of) vector(s) (*, n) (see ``_is_vector_rhs``); the
    result has B's shape with the batch dims of A and B broadcast together.
    """
    _check_square(A, "solve")
    vector = _is_vector_rhs(A, B_)
    if vector and not left:
        raise ValueError(f"solve: B of shape {_shape(B_)} is a vector right-hand side, which "
                         f"left=False (X A = B) does not accept; pass B as (*, k, n)")
    Bm = sh.unsqueeze(B_, -1) if vector else B_
    if Bm.ndim < 2:
        raise ValueError(f"solve: B must have at least one dimension, got shape {_shape(B_)}")
    n = A.shape[-1]
    rows = Bm.shape[-2] if left else Bm.shape[-1]
    if rows != n:
        raise ValueError(f"solve: A has shape {_shape(A)} but B has shape {_shape(B_)}; "
                         f"B needs {n} {'rows' if left else 'columns'}")
    if not left:
        # X A = B  <=>  A^T X^T = B^T
        return _mT(solve(_mT(A), _mT(Bm)))
    if A.ndim > 2:
        A, Bm = _broadcast_batch("solve", A, Bm)
    X = Solve.apply(A, Bm)
    return sh.squeeze(X, -1) if vector else X


# --------------------------------------------------------------------------- triangular
def _triangle(a, upper, unitriangular):
    """The triangle of a that a triangular solve reads, with a unit diagonal if asked."""
    xp = B.xp
    t = xp.triu(a) if upper else xp.tril(a)
    if unitriangular:
        n = a.shape[-1]
        t = xp.where(xp.eye(n, dtype=bool), xp.ones((), dtype=a.dtype), t)
    return t


def _solve_triangular_array(a, b, upper, unitriangular):
    """Solve a x = b for triangular a (*, n, n), b (*, n, k), equal batch dims or 2-D a.

    One matrix (the common case: one triangular factor, many right-hand sides folded
    into columns): a real O(n^2 k) triangular solve, scipy's on NumPy (host arrays
    already) and cupyx.scipy's on CuPy. A batch of matrices: neither library has a
    batched triangular solver, so a batched LU solve of the triangle (O(n^3) per matrix
    but vectorised; a Python loop over the batch would cost far more for small n).
    """
    if a.ndim == 2:
        tri_solve = B.scipy_linalg().solve_triangular
        rhs = _fold(b) if b.ndim > 2 else b
        x = tri_solve(a, rhs, lower=not upper, unit_diagonal=unitriangular, check_finite=False)
        x = x.astype(a.dtype, copy=False)
        return _unfold(x, b.shape) if b.ndim > 2 else x
    return B.xp.linalg.solve(_triangle(a, upper, unitriangular), b)


class SolveTriangular(SaveOutputFunction):
    """X = A^-1 B, A triangular (only its ``upper``/lower triangle is read; with
    ``unitriangular`` the diagonal is taken as ones and not read either).

    dB = A^-T G (a triangular solve with the opposite triangle),
    dA = -dB X^T restricted to the triangle that was read.
    """

    def forward(self, a, b, upper, unitriangular):
        self.upper, self.unitriangular = upper, unitriangular
        return _linalg_call("solve_triangular", _solve_triangular_array, a, b, upper,
                            unitriangular, failure="the triangular matrix A is singular "
                            "(a zero on its diagonal)")

    def backward(self, g):
        a, b = self.inputs
        gb = SolveTriangular.apply(_mT(a), g, upper=not self.upper,
                                   unitriangular=self.unitriangular)
        ga = None
        if a.requires_grad:
            ga = -(gb @ _mT(self.saved_output()))
            k = 1 if self.unitriangular else 0
            ga = sh.triu(ga, k) if self.upper else sh.tril(ga, -k)
        return ga, gb


def solve_triangular(A, B_, *, upper, left=True, unitriangular=False):
    """X with A X = B (``left=True``) or X A = B, A (*, n, n) triangular, B (*, n, k)
    (or (*, k, n) when ``left=False``); batch dims broadcast
    (``torch.linalg.solve_triangular``; ``upper`` is keyword-only and required, as there).
    """
    _check_square(A, "solve_triangular")
    if B_.ndim < 2:
        raise ValueError(f"solve_triangular: B must be a matrix or a batch of them, got "
                         f"shape {_shape(B_)}")
    n = A.shape[-1]
    rows = B_.shape[-2] if left else B_.shape[-1]
    if rows != n:
        raise ValueError(f"solve_triangular: A has shape {_shape(A)} but B has shape "
                         f"{_shape(B_)}; B needs {n} {'rows' if left else 'columns'}")
    if not left:
        # X A = B  <=>  A^T X^T = B^T, and A^T is triangular on the other side.
        return _mT(solve_triangular(_mT(A), _mT(B_), upper=not upper,
                                    unitriangular=unitriangular))
    if A.ndim > 2:
        A, B_ = _broadcast_batch("solve_triangular", A, B_)
    return SolveTriangular.apply(A, B_, upper=bool(upper), unitriangular=bool(unitriangular))


# --------------------------------------------------------------------------- cholesky
class Cholesky(SaveOutputFunction):
    """L lower triangular with L L^T = A, A (*, n, n) symmetric positive-definite.

    Only the lower triangle of A is read. Backward (Murray 2016, "Differentiation of
    the Cholesky decomposition", eq. 10, symmetrised as PyTorch does):

        P = tril(L^T G),   S = (P + tril(P, -1)^T) / 2   (= sym of P with halved diagonal)
        dA = L^-T S L^-1   (two triangular solves; symmetric)

    A symmetric gradient is the convention of ``torch.linalg.cholesky``: it is the
    gradient of A -> cholesky((A + A^T) / 2), so a test symmetrises its input.
    """

    def forward(self, a):
        return _linalg_call("cholesky", B.xp.linalg.cholesky, a,
                            failure="the matrix is not positive-definite")

    def backward(self, g):
        L = self.saved_output()
        P = sh.tril(_mT(L) @ g)
        S = (P + _mT(sh.tril(P, -1))) * 0.5
        X = solve_triangular(_mT(L), S, upper=True)               # L^-T S
        return solve_triangular(L, X, upper=False, left=False)    # (L^-T S) L^-1


def cholesky(A, upper=False):
    """Cholesky factor of symmetric positive-definite A (*, n, n) (``torch.linalg.cholesky``):
    lower L with A = L L^T, or with ``upper=True`` U = L^T (A = U^T U)."""
    _check_square(A, "cholesky")
    L = Cholesky.apply(A)
    return _mT(L) if upper else L


# --------------------------------------------------------------------------- norms
def vector_norm(x, ord=2, dim=None, keepdim=False):
    """||x||_ord over ``dim`` (all elements by default) (``torch.linalg.vector_norm``).

    ord 2 has gradient 0 at the zero vector (PyTorch's subgradient)."""
    return rd.norm(x, p=ord, dim=dim, keepdim=keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False):
    """Frobenius norm sqrt(sum A_ij^2) over the two ``dim`` axes (``torch.linalg.matrix_norm``
    with ``ord='fro'``; the spectral and nuclear norms are not provided)."""
    if ord != "fro":
        raise NotImplementedError(f"matrix_norm: only ord='fro' is supported, got {ord!r}")
    if A.ndim < 2:
        raise ValueError(f"matrix_norm: expected a matrix (*, m, n), got shape {_shape(A)}")
    return rd.norm(A, p=2, dim=tuple(dim), keepdim=keepdim)
