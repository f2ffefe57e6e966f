"""MultiheadAttention (Vaswani et al. 2017, section 3.2.2), with PyTorch's parameters and API.

    MultiHead(Q, K, V) = concat(head_1, ..., head_h) W_O + b_O,
    head_i = softmax(Q W_Q^i (K W_K^i)^T / sqrt(d_head) + mask) V W_V^i

Parameters (PyTorch's names): ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) stacking
the q, k, v projections when kdim = vdim = E; otherwise ``q_proj_weight`` (E, E),
``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim). ``out_proj`` is a Linear(E, E).
Init as PyTorch: xavier_uniform_ on the input projections, zero biases, out_proj.weight keeps
Linear's init.

Masks: ``attn_mask`` (L, S) or (N*num_heads, L, S) and ``key_padding_mask`` (N, S), boolean
(True = not allowed to attend) or floating (added to the scores). A query whose every key is
masked gives NaN with ``need_weights=True`` (softmax of all -inf) and a zero output with
``need_weights=False`` (``F.scaled_dot_product_attention``'s rule); PyTorch's two paths do
the same in training mode.
"""
import math

from .. import backend as B
from .. import functional as F
from ..tensor import Tensor
from . import init
from ._util import empty, check_input, size_arg
from .linear import Linear
from .module import Module, Parameter

__all__ = ["MultiheadAttention"]


def _additive_mask(mask, like, name):
    """A floating mask to add to the scores: bool True -> -inf, float as is."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = Tensor(B.xp.asarray(mask))
    if mask.dtype == B.numpy.bool_:
        zeros = B.xp.zeros(mask.shape, dtype=like.dtype)
        return Tensor(B.xp.where(mask.data, B.xp.asarray(-math.inf, dtype=like.dtype), zeros))
    if mask.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: {name} must be bool or floating, got {mask.dtype}")
    return mask.to(like.dtype)


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under PyTorch's name for MultiheadAttention.out_proj (so reprs read the same)."""


class MultiheadAttention(Module):
    """Multi-head attention, ``torch.nn.MultiheadAttention``'s constructor and forward.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights)

    Shapes (batch_first=False): query (L, N, E), key (S, N, kdim), value (S, N, vdim) ->
    output (L, N, E); with batch_first=True the batch comes first; unbatched (L, E) works too.
    weights: (N, L, S) averaged over heads, (N, num_heads, L, S) when not averaged, None
    when ``need_weights=False``.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None, generator=None):
        super().__init__()
        # Types first; the ranges just below, with PyTorch's message.
        embed_dim = size_arg(embed_dim, "MultiheadAttention", "embed_dim", minimum=None)
        num_heads = size_arg(num_heads, "MultiheadAttention", "num_heads", minimum=None)
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) and num_heads "
                             f"({num_heads}) must be positive")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not supported")
        self.embed_dim = size_arg(embed_dim, "MultiheadAttention", "embed_dim", 1)
        self.kdim = (size_arg(kdim, "MultiheadAttention", "kdim", 1) if kdim is not None
                     else self.embed_dim)
        self.vdim = (size_arg(vdim, "MultiheadAttention", "vdim", 1) if vdim is not None
                     else self.embed_dim)
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.num_heads = size_arg(num_heads, "MultiheadAttention", "num_heads", 1)
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = self.embed_dim // self.num_heads
        self.generator = generator
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * E, E, dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty(E, E, dtype=dtype))
            self.k_proj_weight = Parameter(empty(E, self.kdim, dtype=dtype))
            self.v_proj_weight = Parameter(empty(E, self.vdim, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * E, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, dtype=dtype, generator=generator)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters(generator)

    def _reset_parameters(self, generator=None):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=generator)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w, generator=generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _projection_weights(self):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b = self.in_proj_bias
        if b is None:
            return (wq, None), (wk, None), (wv, None)
        return (wq, b[:E]), (wk, b[E:2 * E]), (wv, b[2 * E:])

    def _check_shapes(self, query, key, value):
        for t, name in ((query, "query"), (key, "key"), (value, "value")):
            check_input(t, f"MultiheadAttention: {name}")
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(
                f"MultiheadAttention: query, key and value must all be 3-d (batched) or 2-d "
                f"(unbatched), got shapes {tuple(query.shape)}, {tuple(key.shape)}, "
                f"{tuple(value.shape)}")
        dims = ((query, self.embed_dim, "query", "embed_dim"), (key, self.kdim, "key", "kdim"),
                (value, self.vdim, "value", "vdim"))
        for t, want, name, what in dims:
            if t.shape[-1] != want:
                raise ValueError(f"MultiheadAttention({what}={want}): {name} has last "
                                 f"dimension {t.shape[-1]}, shape {tuple(t.shape)}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: key shape {tuple(key.shape)} and value "
                             f"shape {tuple(value.shape)} differ in sequence or batch size")
        if query.ndim == 3:
            b = 0 if self.batch_first else 1
            if query.shape[b] != key.shape[b]:
                raise ValueError(f"MultiheadAttention: query shape {tuple(query.shape)} and key "
                                 f"shape {tuple(key.shape)} have different batch sizes")

    def _heads(self, x, w, b):
        """(N, T, d_in) -> projected and split (N, H, T, head_dim)."""
        y = F.linear(x, w, b)
        n, t, _ = y.shape
        return y.reshape(n, t, self.num_heads, self.head_dim).transpose(1, 2)

    def _combined_mask(self, attn_mask, key_padding_mask, q, n, L, S, is_causal):
        """One additive mask broadcastable to (N, H, L, S), or None."""
        H = self.num_heads
        mask = _additive_mask(attn_mask, q, "attn_mask")
        if mask is not None:
            if mask.ndim == 2:
                if tuple(mask.shape) != (L, S):
                    raise ValueError(f"MultiheadAttention: 2-d attn_mask must be ({L}, {S}), "
                                     f"got {tuple(mask.shape)}")
            elif mask.ndim == 3:
                if tuple(mask.shape) != (n * H, L, S):
                    raise ValueError(f"MultiheadAttention: 3-d attn_mask must be "
                                     f"({n * H}, {L}, {S}), got {tuple(mask.shape)}")
                mask = mask.reshape(n, H, L, S)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must be 2-d or 3-d, got shape "
                                 f"{tuple(mask.shape)}")
        elif is_causal:
            # PyTorch requires attn_mask alongside the is_causal hint; we build the causal
            # mask (key j > query i masked) when it is absent.
            causal = B.xp.triu(B.xp.ones((L, S), dtype=bool), k=1)
            mask = _additive_mask(Tensor(causal), q, "attn_mask")
        kpm = _additive_mask(key_padding_mask, q, "key_padding_mask")
        if kpm is not None:
            if tuple(kpm.shape) != (n, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be ({n}, {S}), "
                                 f"got {tuple(kpm.shape)}")
            kpm = kpm.reshape(n, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        return mask

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        self._check_shapes(query, key, value)
        batched = query.ndim == 3
        if not batched:  # (L, E) -> (1, L, E)
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = (key_padding_mask.unsqueeze(0)
                                    if isinstance(key_padding_mask, Tensor)
                                    else B.xp.asarray(key_padding_mask)[None])
        elif not self.batch_first:  # (T, N, E) -> (N, T, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, L, _ = query.shape
        S = key.shape[1]
        (wq, bq), (wk, bk), (wv, bv) = self._projection_weights()
        q, k, v = self._heads(query, wq, bq), self._heads(key, wk, bk), self._heads(value, wv, bv)
        mask = self._combined_mask(attn_mask, key_padding_mask, q, n, L, S, is_causal)
        p = self.dropout if self.training else 0.0
        if need_weights:
            # The weights are wanted, so compute them explicitly (as PyTorch does on this path).
            scores = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, -1)
            attn = F.dropout(weights, p, True, generator=self.generator) if p > 0 else weights
            out = attn @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                                 generator=self.generator)
            weights = None
        out = out.transpose(1, 2).reshape(n, L, self.embed_dim)  # merge heads
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if weights is not None:
            if average_attn_weights:
                weights = weights.mean(1)
            if not batched:
                weights = weights.squeeze(0)
        return out, weights

    def extra_repr(self):
        return ""
