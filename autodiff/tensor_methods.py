"""Tensor's operators and methods: ``TensorMethods``, the mixin ``Tensor`` inherits.

Every method is a one-line delegation to the op with PyTorch's name and argument order, so
an editor's jump-to-definition lands here and then, one step on, on the op itself. This
class is the one list of Tensor methods; the exports (``autodiff.exp``, ...) come from each
ops module's ``__all__`` (see the recipe in ``autodiff/ops/__init__.py``).

The ops modules import ``Tensor``, so they cannot be imported before tensor.py has built the
class: ``_link_ops()`` (called once by ``autodiff/__init__.py``) binds the module names
``ew``, ``rd``, ``sh``, ``la`` and ``fa`` that the methods use.
"""
ew = rd = sh = la = fa = None   # the ops modules, bound by _link_ops()


def _link_ops():
    global ew, rd, sh, la, fa
    from .ops import elementwise as ew, reduce as rd, shape as sh, linalg as la  # noqa: F811
    from .functional import activations as fa  # noqa: F811


class TensorMethods:
    """Operators and methods of ``autodiff.Tensor``. ``==`` and ``!=`` compare elementwise, as
    in PyTorch (``Tensor`` defines ``__hash__`` by identity itself, so it stays hashable)."""

    __slots__ = ()

    @property
    def T(self):
        """All dimensions reversed (``permute(ndim-1, ..., 0)``)."""
        return sh.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        """The last two dimensions swapped (a batch of matrices transposed)."""
        return sh.transpose(self, -1, -2)

    def __eq__(self, b):
        return ew.eq(self, b)

    def __ne__(self, b):
        return ew.ne(self, b)

    def softmax(self, dim=None, _stacklevel=3, dtype=None):
        return fa.softmax(self, dim, _stacklevel, dtype)

    def log_softmax(self, dim=None, _stacklevel=3, dtype=None):
        return fa.log_softmax(self, dim, _stacklevel, dtype)

    def __add__(self, b):
        return ew.add(self, b)

    def __radd__(self, b):
        return ew.add(self, b)

    def __sub__(self, b):
        return ew.sub(self, b)

    def __rsub__(self, b):
        return ew.sub(b, self)

    def __mul__(self, b):
        return ew.mul(self, b)

    def __rmul__(self, b):
        return ew.mul(self, b)

    def __truediv__(self, b):
        return ew.div(self, b)

    def __rtruediv__(self, b):
        return ew.div(b, self)

    def __pow__(self, b):
        return ew.pow(self, b)

    def __rpow__(self, b):
        return ew.pow(b, self)

    def __matmul__(self, b):
        return la.matmul(self, b)

    def __rmatmul__(self, b):
        return la.matmul(b, self)

    def __neg__(self):
        return ew.neg(self)

    def __abs__(self):
        return ew.abs(self)

    def __getitem__(self, index):
        return sh.getitem(self, index)

    def __lt__(self, b):
        return ew.lt(self, b)

    def __le__(self, b):
        return ew.le(self, b)

    def __gt__(self, b):
        return ew.gt(self, b)

    def __ge__(self, b):
        return ew.ge(self, b)

    def __invert__(self):
        return ew.logical_not(self)

    def add(self, b):
        return ew.add(self, b)

    def sub(self, b):
        return ew.sub(self, b)

    def mul(self, b):
        return ew.mul(self, b)

    def div(self, b):
        return ew.div(self, b)

    def neg(self):
        return ew.neg(self)

    def pow(self, b):
        return ew.pow(self, b)

    def matmul(self, b):
        return la.matmul(self, b)

    def exp(self):
        return ew.exp(self)

    def log(self):
        return ew.log(self)

    def log1p(self):
        return ew.log1p(self)

    def expm1(self):
        return ew.expm1(self)

    def sqrt(self):
        return ew.sqrt(self)

    def rsqrt(self):
        return ew.rsqrt(self)

    def sin(self):
        return ew.sin(self)

    def cos(self):
        return ew.cos(self)

    def tanh(self):
        return ew.tanh(self)

    def sigmoid(self):
        return ew.sigmoid(self)

    def relu(self):
        return ew.relu(self)

    def abs(self):
        return ew.abs(self)

    def sign(self):
        return ew.sign(self)

    def square(self):
        return ew.square(self)

    def reciprocal(self):
        return ew.reciprocal(self)

    def log2(self):
        return ew.log2(self)

    def erf(self):
        return ew.erf(self)

    def maximum(self, b):
        return ew.maximum(self, b)

    def minimum(self, b):
        return ew.minimum(self, b)

    def clamp(self, min=None, max=None):
        return ew.clamp(self, min, max)

    def clip(self, min=None, max=None):
        return ew.clamp(self, min, max)

    def floor(self):
        return ew.floor(self)

    def ceil(self):
        return ew.ceil(self)

    def round(self):
        return ew.round(self)

    def isfinite(self):
        return ew.isfinite(self)

    def isnan(self):
        return ew.isnan(self)

    def lt(self, b):
        return ew.lt(self, b)

    def le(self, b):
        return ew.le(self, b)

    def gt(self, b):
        return ew.gt(self, b)

    def ge(self, b):
        return ew.ge(self, b)

    def eq(self, b):
        return ew.eq(self, b)

    def ne(self, b):
        return ew.ne(self, b)

    def sum(self, dim=None, keepdim=False, dtype=None):
        return rd.sum(self, dim, keepdim, dtype)

    def mean(self, dim=None, keepdim=False):
        return rd.mean(self, dim, keepdim)

    def var(self, dim=None, unbiased=True, keepdim=False, correction=None):
        return rd.var(self, dim, unbiased, keepdim, correction)

    def std(self, dim=None, unbiased=True, keepdim=False, correction=None):
        return rd.std(self, dim, unbiased, keepdim, correction)

    def max(self, dim=None, keepdim=False):
        return rd.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return rd.min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return rd.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return rd.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return rd.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return rd.argmin(self, dim, keepdim)

    def prod(self, dim=None, keepdim=False):
        return rd.prod(self, dim, keepdim)

    def logsumexp(self, dim=None, keepdim=False):
        return rd.logsumexp(self, dim, keepdim)

    def cumsum(self, dim):
        return rd.cumsum(self, dim)

    def norm(self, p=2, dim=None, keepdim=False):
        return rd.norm(self, p, dim, keepdim)

    def all(self, dim=None):
        return rd.all(self, dim)

    def any(self, dim=None):
        return rd.any(self, dim)

    def sum_to_size(self, *size):
        """``x.sum_to_size(2, 3)`` or ``x.sum_to_size((2, 3))``, as PyTorch accepts both."""
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        return rd.sum_to(self, size)

    def reshape(self, *shape):
        return sh.reshape(self, *shape)

    def view(self, *shape):
        return sh.reshape(self, *shape)

    def permute(self, *dims):
        return sh.permute(self, *dims)

    def transpose(self, dim0, dim1):
        return sh.transpose(self, dim0, dim1)

    def movedim(self, source, destination):
        return sh.movedim(self, source, destination)

    def squeeze(self, dim=None):
        return sh.squeeze(self, dim)

    def unsqueeze(self, dim):
        return sh.unsqueeze(self, dim)

    def flatten(self, start_dim=0, end_dim=-1):
        return sh.flatten(self, start_dim, end_dim)

    def expand(self, *sizes):
        return sh.expand(self, *sizes)

    def expand_as(self, other):
        return sh.expand(self, other.shape)

    def gather(self, dim, index):
        return sh.gather(self, dim, index)

    def scatter_add(self, dim, index, src):
        return sh.scatter_add(self, dim, index, src)

    def index_select(self, dim, index):
        return sh.index_select(self, dim, index)

    def split(self, split_size_or_sections, dim=0):
        return sh.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return sh.chunk(self, chunks, dim)

    def unbind(self, dim=0):
        return sh.unbind(self, dim)

    def flip(self, dims):
        return sh.flip(self, dims)

    def roll(self, shifts, dims=None):
        return sh.roll(self, shifts, dims)

    def masked_fill(self, mask, value):
        return sh.masked_fill(self, mask, value)

    def tril(self, diagonal=0):
        return sh.tril(self, diagonal)

    def triu(self, diagonal=0):
        return sh.triu(self, diagonal)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return sh.diagonal(self, offset, dim1, dim2)

    def det(self):
        return la.det(self)

    def slogdet(self):
        return la.slogdet(self)

    def logdet(self):
        return la.logdet(self)

    def inverse(self):
        return la.inv(self)
