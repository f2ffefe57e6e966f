"""Shape and indexing primitives, in pairs whose backward is the other member:

    reshape <-> reshape          permute <-> inverse permute
    getitem <-> index_add        gather <-> scatter_add (along a dim)
    cat     <-> getitem slices   pad     <-> getitem slices
    flip    <-> flip             roll    <-> roll back

Everything else here (squeeze, stack, split, masked_fill, tril, diagonal, ...) is composed
from these. ``index_add`` accumulates repeated indices, so ``x[[0, 0]]`` sends both
gradients to ``x[0]``.
"""
from .. import backend as B
from ..tensor import Function, Tensor
from ._util import normalize_dim
from . import elementwise as ew

__all__ = [
    "reshape", "permute", "transpose", "movedim", "squeeze", "unsqueeze", "flatten", "expand",
    "getitem", "index_add", "index_select", "gather", "scatter_add", "cat", "stack", "split",
    "chunk", "flip", "roll", "pad", "masked_fill", "tril", "triu", "diagonal", "unbind",
]


# --------------------------------------------------------------------------- reshape, permute
class Reshape(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: shape {tuple(a.shape)} ({a.size} elements) cannot be viewed as "
                f"{tuple(shape)}") from None

    def backward(self, g):
        return Reshape.apply(g, shape=self.in_shape)


def reshape(a, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if a.shape == shape:
        return a
    return Reshape.apply(a, shape=shape)


class Permute(Function):
    def forward(self, a, dims):
        self.dims = dims
        return B.xp.transpose(a, dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return Permute.apply(g, dims=tuple(inverse))


def permute(a, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != a.ndim:
        raise ValueError(
            f"permute: got {len(dims)} dims {dims} for a tensor of shape {tuple(a.shape)}")
    dims = tuple(normalize_dim(d, a.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(a.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of range({a.ndim})")
    return Permute.apply(a, dims=dims)


def transpose(a, dim0, dim1):
    dims = list(range(a.ndim))
    d0, d1 = normalize_dim(dim0, a.ndim, "transpose"), normalize_dim(dim1, a.ndim, "transpose")
    if d0 == d1:
        return a
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(a, dims=tuple(dims))


def movedim(a, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [normalize_dim(d, a.ndim, "movedim") for d in src]
    dst = [normalize_dim(d, a.ndim, "movedim") for d in dst]
    order = [d for d in range(a.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    if order == list(range(a.ndim)):
        return a
    return Permute.apply(a, dims=tuple(order))


def squeeze(a, dim=None):
    if dim is None:
        shape = tuple(n for n in a.shape if n != 1)
    else:
        dims = {normalize_dim(d, a.ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
        shape = tuple(n for i, n in enumerate(a.shape) if not (i in dims and n == 1))
    return reshape(a, shape)


def unsqueeze(a, dim):
    dim = normalize_dim(dim, a.ndim + 1, "unsqueeze")
    return reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def flatten(a, start_dim=0, end_dim=-1):
    if a.ndim == 0:
        return reshape(a, (1,))
    s = normalize_dim(start_dim, a.ndim, "flatten")
    e = normalize_dim(end_dim, a.ndim, "flatten")
    n = 1
    for k in a.shape[s:e + 1]:
        n *= k
    return reshape(a, a.shape[:s] + (n,) + a.shape[e + 1:])


def expand(a, *sizes):
    """Broadcast to ``sizes``; -1 keeps a dimension (``Tensor.expand``)."""
    from .reduce import broadcast_to
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: {sizes} has fewer dimensions than shape {tuple(a.shape)}")
    if any(n == -1 for n in sizes[:lead]):
        raise ValueError(
            f"expand: -1 is not allowed in a new leading dimension: {sizes} for shape "
            f"{tuple(a.shape)}")
    shape = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    return broadcast_to(a, shape)


# --------------------------------------------------------------------------- indexing
def _normalize_index(index):
    """An index with Tensors and lists replaced by backend arrays, as a tuple."""
    xp = B.xp
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if isinstance(i, Tensor):
            i = i.data
        elif isinstance(i, list) or isinstance(i, B.numpy.ndarray):
            i = xp.asarray(i)
        if isinstance(i, xp.ndarray) and i.dtype.kind not in "iub":
            raise IndexError(f"tensors used as indices must be integer or bool, got {i.dtype}")
        out.append(i)
    return tuple(out)


def _is_basic(index):
    return all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in index)


class GetItem(Function):
    def forward(self, a, index):
        self.index, self.in_shape = index, a.shape
        return a[index]

    def backward(self, g):
        return IndexAdd.apply(g, index=self.index, shape=self.in_shape)


class IndexAdd(Function):
    """A zero array of ``shape`` with ``values`` added at ``index`` (repeats accumulate)."""

    def forward(self, values, index, shape):
        self.index = index
        out = B.xp.zeros(shape, dtype=values.dtype)
        if _is_basic(index):
            out[index] = values
        else:
            B.scatter_add(out, index, values)
        return out

    def backward(self, g):
        return GetItem.apply(g, index=self.index)


def getitem(a, index):
    index = _normalize_index(index)
    try:
        return GetItem.apply(a, index=index)
    except IndexError as exc:
        raise IndexError(f"indexing a tensor of shape {tuple(a.shape)}: {exc}") from None


def index_add(values, index, shape):
    """zeros(shape) with ``values`` added at ``index``: the adjoint of ``getitem``."""
    return IndexAdd.apply(values, index=_normalize_index(index), shape=tuple(shape))


def index_select(a, dim, index):
    dim = normalize_dim(dim, a.ndim, "index_select")
    return getitem(a, (slice(None),) * dim + (index,))


def _along_index(index, dim):
    """Full advanced index tuple that reads ``index`` along ``dim`` and the rest in place."""
    xp = B.xp
    parts = []
    for d, n in enumerate(index.shape):
        if d == dim:
            parts.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = n
            parts.append(xp.arange(n).reshape(shape))
    return tuple(parts)


class Gather(Function):
    """out[i][j][k] = a[i][index[i][j][k]][k] for dim = 1 (``torch.gather``)."""

    def forward(self, a, dim, index):
        self.dim, self.index, self.in_shape = dim, index, a.shape
        # Explicit index arrays rather than take_along_axis: PyTorch lets ``index`` be
        # smaller than ``a`` in the other dims, which take_along_axis would broadcast.
        return a[_along_index(index, dim)]

    def backward(self, g):
        return ScatterAddAlong.apply(g, dim=self.dim, index=self.index, shape=self.in_shape)


class ScatterAddAlong(Function):
    """zeros(shape) with src[i][j][k] added at [i][index[i][j][k]][k] (dim = 1)."""

    def forward(self, src, dim, index, shape):
        self.dim, self.index = dim, index
        out = B.xp.zeros(shape, dtype=src.dtype)
        B.scatter_add(out, _along_index(index, dim), src)
        return out

    def backward(self, g):
        return Gather.apply(g, dim=self.dim, index=self.index)


def _index_array(index, op):
    data = index.data if isinstance(index, Tensor) else B.xp.asarray(index)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {data.dtype}")
    return data


def _check_along(op, a, dim, idx, src=None):
    """PyTorch's rule: index.size(d) <= a.size(d) for d != dim (and <= src.size(d) for all d)."""
    if idx.ndim != a.ndim:
        raise ValueError(
            f"{op}: index has {idx.ndim} dims but input has {a.ndim} "
            f"(shapes {tuple(idx.shape)} and {tuple(a.shape)})")
    for d, n in enumerate(idx.shape):
        if (d != dim and n > a.shape[d]) or (src is not None and n > src.shape[d]):
            raise ValueError(
                f"{op}: index of shape {tuple(idx.shape)} is larger than input "
                f"{tuple(a.shape)}" + ("" if src is None else f" or src {tuple(src.shape)}")
                + f" in dim {d} (dim={dim})")


def gather(a, dim, index):
    """out[i][j][k] = a[i][index[i][j][k]][k] for dim = 1; out has index's shape.

    ``index`` may be smaller than ``a`` in the dims other than ``dim``.
    """
    dim = normalize_dim(dim, a.ndim, "gather")
    idx = _index_array(index, "gather")
    _check_along("gather", a, dim, idx)
    try:
        return Gather.apply(a, dim=dim, index=idx)
    except IndexError as exc:  # NumPy checks bounds (CuPy wraps around, as its indexing does)
        raise IndexError(f"gather along dim {dim} of shape {tuple(a.shape)}: {exc}") from None


def scatter_add(a, dim, index, src):
    """``a`` plus ``src`` scattered along ``dim`` at ``index`` (``torch.scatter_add``).

    out[i][index[i][j][k]][k] += src[i][j][k] for dim = 1; only the leading
    ``index.shape`` block of ``src`` is used, as in PyTorch. Repeated indices accumulate.
    """
    dim = normalize_dim(dim, a.ndim, "scatter_add")
    idx = _index_array(index, "scatter_add")
    if src.ndim != a.ndim:
        raise ValueError(
            f"scatter_add: src has shape {tuple(src.shape)}, input {tuple(a.shape)}; "
            f"they need the same number of dims")
    _check_along("scatter_add", a, dim, idx, src)
    if src.shape != idx.shape:
        src = getitem(src, tuple(slice(0, n) for n in idx.shape))
    try:
        return a + ScatterAddAlong.apply(src, dim=dim, index=idx, shape=a.shape)
    except IndexError as exc:
        raise IndexError(
            f"scatter_add along dim {dim} of shape {tuple(a.shape)}: {exc}") from None


# --------------------------------------------------------------------------- concatenate
class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        self.sizes = [x.shape[dim] for x in arrays]
        return B.xp.concatenate(arrays, axis=dim)

    def backward(self, g):
        grads, start = [], 0
        lead = (slice(None),) * self.dim
        for n in self.sizes:
            grads.append(GetItem.apply(g, index=lead + (slice(start, start + n),)))
            start += n
        return tuple(grads)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    dim = normalize_dim(dim, first.ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or any(
                a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != dim):
            raise ValueError(
                f"cat along dim {dim}: tensor {i} has shape {tuple(t.shape)}, tensor 0 has "
                f"shape {tuple(first.shape)}; all dims but {dim} must match")
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"stack: tensor {i} has shape {tuple(t.shape)}, tensor 0 has "
                f"{tuple(tensors[0].shape)}; all must match")
    dim = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim)


def split(a, split_size_or_sections, dim=0):
    """Pieces of size ``split_size`` (last may be smaller) or of the listed sizes."""
    dim = normalize_dim(dim, a.ndim, "split")
    n = a.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, n - s) for s in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(
                f"split: sizes {sizes} sum to {sum(sizes)}, but dim {dim} has size {n}")
    out, start, lead = [], 0, (slice(None),) * dim
    for k in sizes:
        out.append(getitem(a, lead + (slice(start, start + k),)))
        start += k
    return tuple(out)


def chunk(a, chunks, dim=0):
    """At most ``chunks`` pieces of size ceil(n / chunks) along ``dim`` (``torch.chunk``)."""
    if chunks <= 0:
        raise ValueError(f"chunk: the number of chunks must be positive, got {chunks}")
    dim = normalize_dim(dim, a.ndim, "chunk")
    n = a.shape[dim]
    if n == 0:  # PyTorch: `chunks` empty pieces
        return tuple(a for _ in range(chunks))
    return split(a, -(-n // chunks), dim)


def unbind(a, dim=0):
    dim = normalize_dim(dim, a.ndim, "unbind")
    lead = (slice(None),) * dim
    return tuple(getitem(a, lead + (i,)) for i in range(a.shape[dim]))


# --------------------------------------------------------------------------- flip, roll, pad
class Flip(Function):
    def forward(self, a, dims):
        self.dims = dims
        return B.xp.flip(a, axis=dims)

    def backward(self, g):
        return Flip.apply(g, dims=self.dims)


def flip(a, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    dims = tuple(normalize_dim(d, a.ndim, "flip") for d in dims)
    return Flip.apply(a, dims=dims)


class Roll(Function):
    def forward(self, a, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return B.xp.roll(a, shifts, axis=dims)

    def backward(self, g):
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return Roll.apply(g, shifts=back, dims=self.dims)


def roll(a, shifts, dims=None):
    if dims is None:
        if not isinstance(shifts, int):
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts!r}")
        return reshape(roll(flatten(a), shifts, 0), a.shape)
    if isinstance(dims, int):
        dims, shifts = (dims,), (shifts,)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if len(shifts) != len(dims):  # NumPy would broadcast them; PyTorch refuses
        raise ValueError(f"roll: {len(shifts)} shifts {shifts} for {len(tuple(dims))} dims "
                         f"{tuple(dims)}; give one shift per dim")
    dims = tuple(normalize_dim(d, a.ndim, "roll") for d in dims)
    return Roll.apply(a, shifts=tuple(shifts), dims=dims)


class PadConstant(Function):
    def forward(self, a, widths, value):
        self.widths = widths
        return B.xp.pad(a, widths, mode="constant", constant_values=value)

    def backward(self, g):
        index = tuple(slice(lo, n - hi) for (lo, hi), n in zip(self.widths, g.shape))
        return GetItem.apply(g, index=index)


def _pad_indices(n, lo, hi, mode):
    """Source index for each output position along one axis of length n."""
    xp = B.xp
    i = xp.arange(-lo, n + hi)
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    if mode == "reflect":
        if lo >= n or hi >= n:
            raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the size {n}")
        period = 2 * (n - 1) if n > 1 else 1
        i = xp.abs(i) % period
        return xp.where(i >= n, period - i, i)
    raise ValueError(f"pad: unknown mode {mode!r}; use constant, reflect, replicate or circular")


def pad(a, pad, mode="constant", value=0.0):
    """Pad the last dims; ``pad`` = (left, right, top, bottom, ...) as in ``F.pad``.

    Modes: constant (value), reflect, replicate, circular. Negative widths are not supported.
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(
            f"pad: {pad} must hold a (before, after) pair for each of at most {a.ndim} dims")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {pad} is not supported")
    k = len(pad) // 2
    widths = [(0, 0)] * (a.ndim - k) + [(pad[2 * j], pad[2 * j + 1]) for j in reversed(range(k))]
    if mode == "constant":
        return PadConstant.apply(a, widths=tuple(widths), value=value)
    out = a
    for d, (lo, hi) in enumerate(widths):
        if lo or hi:
            out = index_select(out, d, _pad_indices(out.shape[d], lo, hi, mode))
    return out


# --------------------------------------------------------------------------- masks, diagonals
def masked_fill(a, mask, value):
    """``value`` where ``mask`` is True, ``a`` elsewhere (mask broadcasts)."""
    return ew.where(mask, value, a)


def _tri_mask(a, k, lower):
    xp = B.xp
    if a.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'}: needs at least 2 dims, got shape "
                         f"{tuple(a.shape)}")
    n, m = a.shape[-2], a.shape[-1]
    return (xp.tri(n, m, k, dtype=bool) if lower else ~xp.tri(n, m, k - 1, dtype=bool))


def tril(a, diagonal=0):
    """Lower triangle (j <= i + diagonal) of the last two dims; zeros elsewhere."""
    return ew.where(_tri_mask(a, diagonal, True), a, 0.0)


def triu(a, diagonal=0):
    """Upper triangle (j >= i + diagonal) of the last two dims; zeros elsewhere."""
    return ew.where(_tri_mask(a, diagonal, False), a, 0.0)


def diagonal(a, offset=0, dim1=0, dim2=1):
    """The diagonal of dims (dim1, dim2), placed last, as ``torch.diagonal``."""
    xp = B.xp
    d1, d2 = normalize_dim(dim1, a.ndim, "diagonal"), normalize_dim(dim2, a.ndim, "diagonal")
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2} "
                         f"for shape {tuple(a.shape)}")
    moved = movedim(a, (d1, d2), (-2, -1))
    n, m = moved.shape[-2], moved.shape[-1]
    if offset >= 0:
        length = max(min(n, m - offset), 0)
        rows, cols = xp.arange(length), xp.arange(length) + offset
    else:
        length = max(min(n + offset, m), 0)
        rows, cols = xp.arange(length) - offset, xp.arange(length)
    return getitem(moved, (Ellipsis, rows, cols))


