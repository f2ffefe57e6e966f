"""Scaled dot-product attention (Vaswani et al. 2017, Eq. 1), PyTorch's semantics."""
import math

from .. import backend as B
from ..tensor import Tensor
from ..ops import elementwise as ew
from ..ops import linalg as la
from ..ops.activations import Softmax
from .activations import _check_tensor
from .layers import dropout

__all__ = ["scaled_dot_product_attention"]


def _repeat_heads(t, repeats):
    """(..., H, S, E) -> (..., H * repeats, S, E), each head repeated in place
    (``repeat_interleave`` along dim -3)."""
    if repeats == 1:
        return t
    lead, (h, s, e) = t.shape[:-3], t.shape[-3:]
    expanded = t.unsqueeze(-3).expand(lead + (h, repeats, s, e))
    return expanded.reshape(lead + (h * repeats, s, e))


def _check_shapes(query, key, value, enable_gqa):
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_tensor(t, op, name)
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} needs shape (..., seq, features), got {tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"{op}: query of shape {tuple(query.shape)} and key of shape {tuple(key.shape)} "
            f"must have the same feature size (last dim)")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"{op}: key of shape {tuple(key.shape)} and value of shape {tuple(value.shape)} "
            f"must have the same sequence length (dim -2)")
    if enable_gqa:
        if query.ndim < 3 or key.ndim < 3 or query.shape[-3] % key.shape[-3]:
            raise ValueError(
                f"{op}: with enable_gqa the query heads (dim -3 of {tuple(query.shape)}) must be "
                f"a multiple of the key heads (dim -3 of {tuple(key.shape)})")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, generator=None):
    """softmax(Q K^T * scale + bias) V, with scale = 1/sqrt(E) by default.

    :param query: (..., L, E)
    :param key: (..., S, E)
    :param value: (..., S, Ev)
    :param attn_mask: broadcastable to (..., L, S). Boolean: True marks the keys that take
        part (as PyTorch; the inverse of MultiheadAttention's key_padding_mask). Floating:
        added to the scores (and differentiated, like PyTorch).
    :param is_causal: query i attends to keys j <= i (top-left aligned, ``tril``);
        cannot be combined with attn_mask.
    :param dropout_p: dropout on the attention weights, always applied when > 0 (PyTorch's
        rule: pass 0.0 in eval); the mask comes from ``generator``.
    :param enable_gqa: grouped-query attention: key/value heads (dim -3) are repeated to
        match the query heads.
    :return: (..., L, Ev)

    A query whose keys are all masked out gets zero weights and a zero output (PyTorch >= 2.5
    does the same), not NaN.
    """
    op = "scaled_dot_product_attention"
    _check_shapes(query, key, value, enable_gqa)
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: is_causal=True cannot be combined with an explicit attn_mask")
    if enable_gqa:
        key = _repeat_heads(key, query.shape[-3] // key.shape[-3])
        value = _repeat_heads(value, query.shape[-3] // value.shape[-3])
    xp = B.xp
    L, S = query.shape[-2], key.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = la.matmul(query, key.transpose(-2, -1)) * float(scale)   # (..., L, S)

    allowed = None                                                    # bool (..., L, S)
    if is_causal:
        allowed = xp.tri(L, S, 0, dtype=bool)
    if attn_mask is not None:
        mask_data = attn_mask.data if isinstance(attn_mask, Tensor) else xp.asarray(attn_mask)
        try:
            B.numpy.broadcast_shapes(mask_data.shape, scores.shape)  # shape arithmetic only
        except ValueError:
            raise ValueError(
                f"{op}: attn_mask of shape {tuple(mask_data.shape)} does not broadcast to the "
                f"scores' shape {tuple(scores.shape)} (..., L, S)") from None
        if mask_data.dtype.kind == "b":
            allowed = mask_data
        elif mask_data.dtype.kind == "f":
            bias = attn_mask if isinstance(attn_mask, Tensor) else Tensor(mask_data)
            if bias.dtype != scores.dtype:   # a float64 mask must not upcast float32 scores
                bias = ew.astype(bias, scores.dtype)
            scores = scores + bias
        else:
            raise TypeError(
                f"{op}: attn_mask must be boolean (True = attend) or floating (added to the "
                f"scores), got dtype {mask_data.dtype}")
    if allowed is not None:
        scores = ew.where(allowed, scores, float("-inf"))
    if S == 0:
        weights = scores            # (..., L, 0): no keys, so the output is all zeros
    elif allowed is not None or attn_mask is not None:
        # Rows with every key masked: softmax would give 0/0. Give them zero weights instead
        # (the shift inside the softmax needs one finite score per row, hence the 0.0).
        dead = xp.isneginf(scores.data.max(axis=-1, keepdims=True))
        weights = ew.where(dead, 0.0, Softmax.apply(ew.where(dead, 0.0, scores), dim=scores.ndim - 1))
    else:
        weights = Softmax.apply(scores, dim=scores.ndim - 1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True, generator=generator)
    return la.matmul(weights, value)
