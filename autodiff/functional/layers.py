"""The functional forms of the simple layers: linear, embedding, one_hot, dropout."""
from .. import backend as B
from ..tensor import Tensor
from ..ops import elementwise as ew
from ..ops import linalg as la
from ..ops import shape as sh
from ..ops._util import const
from .activations import _check_tensor

__all__ = ["linear", "embedding", "one_hot", "dropout"]


def _index_data(indices, op):
    """The integer backend array inside ``indices`` (a Tensor or array-like)."""
    data = indices.data if isinstance(indices, Tensor) else B.xp.asarray(indices)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor, got dtype {data.dtype}")
    return data


def _check_range(data, n, op, what):
    # A bounds check reads the extremes back to the host; on CuPy that is a device sync on
    # a hot path, so only the NumPy backend checks (NumPy would otherwise wrap negatives).
    if B.name == "numpy" and data.size:
        lo, hi = int(data.min()), int(data.max())
        if lo < 0 or hi >= n:
            raise IndexError(f"{op}: {what} must lie in [0, {n}), got values in [{lo}, {hi}]")


def _check_same_dtype(op, input, **params):
    """Refuse parameters of another dtype than ``input``, as PyTorch does (a float64 weight
    would silently promote a float32 network's activations to float64)."""
    for name, p in params.items():
        if p is not None and getattr(p, "dtype", input.dtype) != input.dtype:
            raise TypeError(f"{op}: {name} has dtype {p.dtype} but input has dtype "
                            f"{input.dtype}; convert one of them (e.g. module.to(dtype))")


def linear(input, weight, bias=None):
    """y = x W^T + b.

    :param input: (*, in_features)
    :param weight: (out_features, in_features), PyTorch's layout (or (in_features,) for a
        vector, giving (*,)).
    :param bias: (out_features,) or None.
    :return: (*, out_features)
    """
    _check_tensor(input, "linear")
    _check_tensor(weight, "linear", "weight")
    _check_same_dtype("linear", input, weight=weight, bias=bias)
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input of shape {tuple(input.shape)} does not match weight of shape "
            f"{tuple(weight.shape)} (need input.shape[-1] == weight.shape[-1])")
    if weight.ndim == 2 and input.ndim >= 2 and (bias is None or (
            isinstance(bias, Tensor) and tuple(bias.shape) == (weight.shape[0],))):
        # The fused primitive (la.Linear: product and bias in one node). For input of more
        # than two dimensions, one 2-D product instead of a batched one: the weight gradient
        # is then a single (in, out) matmul rather than a stack of them summed afterwards.
        if input.ndim == 2:
            return la.linear(input, weight, bias)
        lead = input.shape[:-1]
        out = la.linear(input.reshape(-1, input.shape[-1]), weight, bias)
        return out.reshape(lead + (weight.shape[0],))
    if weight.ndim == 1:
        out = la.matmul(input, weight)
    else:
        out = la.matmul(input, weight.T)
    if bias is not None:
        out = out + bias
    return out


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by integer ``input``: out[...] = weight[input[...]].

    :param input: integer indices of any shape (*), values in [0, num_embeddings).
    :param weight: (num_embeddings, embedding_dim).
    :param padding_idx: rows at this index get no gradient (their value is returned as is).
    :return: (*, embedding_dim). Repeated indices accumulate their gradients.
    """
    _check_tensor(weight, "embedding", "weight")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    if weight.ndim != 2:
        raise ValueError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
            f"{tuple(weight.shape)}")
    idx = _index_data(input, "embedding")
    n = weight.shape[0]
    _check_range(idx, n, "embedding", "indices")
    out = sh.getitem(weight, idx)
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} out of range for {n} rows")
        pad = (idx == padding_idx % n)[..., None]
        out = ew.where(pad, out.detach(), out)
    return out


def one_hot(tensor, num_classes=-1):
    """out[..., c] = 1 if tensor[...] == c else 0, as int64.

    :param tensor: integer class indices of shape (*).
    :param num_classes: C, or -1 for max(tensor) + 1.
    :return: (*, C) int64, no gradient.
    """
    idx = _index_data(tensor, "one_hot")
    xp = B.xp
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor")
        num_classes = int(idx.max()) + 1
    _check_range(idx, num_classes, "one_hot", "class values")
    classes = xp.arange(num_classes, dtype=idx.dtype)
    return Tensor((idx[..., None] == classes).astype(B.numpy.int64))


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Inverted dropout: each element is zeroed with probability p, survivors scaled by 1/(1-p),
    so E[output] = input (Srivastava et al. 2014; scaling at train time as PyTorch does).

    The mask is drawn from ``generator`` (default: the global one). Identity when
    ``training`` is False or p == 0; all zeros when p == 1. Shape unchanged.
    """
    _check_tensor(input, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    gen = generator if generator is not None else B.default_generator()
    dtype = input.dtype if input.dtype.kind == "f" else B.get_default_dtype()
    keep = gen.random(input.shape, dtype) >= p      # P(keep) = 1 - p
    scale = keep.astype(dtype) * (1.0 / (1.0 - p))  # Python float: no upcast of float32
    return input * const(scale)
