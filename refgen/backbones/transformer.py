"""Transformers: a GPT-style decoder with a key/value cache, and an encoder-decoder.

Decoder (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", section
2.3: GPT-2's pre-LayerNorm variant of Vaswani et al. 2017's decoder). With h_0 = E[x] + P,

    a_l   = h_{l-1} + Attn_causal(LN_1(h_{l-1}))
    h_l   = a_l + W_2 GELU(W_1 LN_2(a_l))              (MLP of width mlp_ratio * d, 4 by default)
    logits = LN_f(h_L) W_head^T                         (W_head = E when tied)

Attn(Q, K, V) = softmax(Q K^T / sqrt(d_head) + M) V per head (Vaswani et al. 2017, Eq. 1),
with M = -inf where key j > query i (the causal mask), so output t depends only on tokens
<= t. Parameter names follow GPT-2's checkpoints (``wte``, ``wpe``, ``h.{i}.ln_1``,
``h.{i}.attn.c_attn``, ``h.{i}.attn.c_proj``, ``h.{i}.ln_2``, ``h.{i}.mlp.c_fc``,
``h.{i}.mlp.c_proj``, ``ln_f``, ``lm_head``; ``refgen.interop.from_hf_gpt2`` loads a Hugging
Face GPT-2 checkpoint, whose Conv1D weights are stored transposed).

Key/value cache: attention at a new position needs the keys and values of every earlier
position, which do not change once computed (causality). ``KVCache`` stores them per layer, so
``forward(new_tokens, cache=cache)`` costs O(T_new * T_total) instead of recomputing all
positions; its logits equal the full recomputation's (tested to 1e-10 in float64).

Encoder-decoder (Vaswani et al. 2017, section 3.1, in the pre-LayerNorm arrangement of
``torch.nn.Transformer(norm_first=True, batch_first=True)``, whose parameter names it uses):

    encoder:  h = h + SelfAttn(LN_1(h), src_padding_mask);  h = h + MLP(LN_2(h));  memory = LN(h)
    decoder:  g = g + SelfAttn_causal(LN_1(g), tgt_padding_mask)
              g = g + CrossAttn(LN_2(g), memory, src_padding_mask)
              g = g + MLP(LN_3(g));  logits = LN(g) W_head^T

Padding masks are boolean (B, T) with True at padding (PyTorch's ``key_padding_mask``
convention); padded keys get zero attention weight, so no output depends on a padded source
token. Pad on the right: a query whose every key is masked (e.g. a left-padded first target
position) has no defined attention and gets a zero attention output.

Shapes: tokens (B, T) int64 -> logits (B, T, V).
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff import nn

from ._checks import (check_divisible, check_known, check_padding_mask, check_positive_ints,
                      check_sampling_options, check_sequence, check_tokens)
from .embeddings import sinusoidal_positions   # Vaswani et al. 2017 sec. 3.5, interleaved

__all__ = ["KVCache", "CausalSelfAttention", "MLP", "Block",
           "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer",
           "TransformerEncoderDecoder"]

POSITION_KINDS = ("learned", "sinusoidal")


def _gpt2_init(module, n_layer, generator):
    """GPT-2's initialisation (Radford et al. 2019, section 2.3): N(0, 0.02) weights, zero
    biases, and residual projections scaled by 1/sqrt(2 n_layer) because each block adds two
    residual branches to the stream."""
    for name, m in module.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj") else 0.02
            nn.init.normal_(m.weight, 0.0, std, generator=generator)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------- decoder (GPT)
class KVCache:
    """Per-layer keys and values of the positions processed so far.

    ``layers[l]`` is None or a pair (k, v), each (B, n_head, T_past, d_head). ``length`` is
    T_past, the position index of the next token. Create one per generation with
    ``KVCache(n_layer)`` (or ``model.new_cache()``) and pass it to every forward call.
    """

    def __init__(self, n_layer):
        self.layers = [None] * int(n_layer)

    @property
    def length(self):
        first = self.layers[0] if self.layers else None
        return 0 if first is None else first[0].shape[2]

    def __len__(self):
        return self.length

    def __repr__(self):
        return f"KVCache(n_layer={len(self.layers)}, length={self.length})"


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused q, k, v projection.

    ``c_attn``: Linear(d, 3d) giving [q | k | v]; ``c_proj``: Linear(d, d).
    forward(x (B, T, d), past=None or (k, v) each (B, H, P, d_head)) ->
    (y (B, T, d), (k, v) each (B, H, P + T, d_head)). Query i (absolute position P + i)
    attends to keys j <= P + i.
    """

    def __init__(self, n_embd, n_head, dropout=0.0, bias=True, generator=None):
        super().__init__()
        check_divisible("CausalSelfAttention", n_embd, "n_embd", n_head, "n_head")
        self.n_embd, self.n_head, self.head_dim = n_embd, n_head, n_embd // n_head
        self.dropout = dropout
        self.generator = generator
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias, generator=generator)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias, generator=generator)
        self.resid_dropout = nn.Dropout(dropout, generator=generator)

    def forward(self, x, past=None):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        # (B, T, d) -> (B, H, T, d_head)
        q, k, v = (z.reshape(b, t, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))
        if past is not None:
            k = autodiff.cat([past[0], k], dim=2)
            v = autodiff.cat([past[1], v], dim=2)
        p = k.shape[2] - t
        allowed = B.xp.tri(t, p + t, p, dtype=bool)          # key j <= p + i
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=drop,
                                           generator=self.generator)
        y = y.transpose(1, 2).reshape(b, t, d)                 # merge heads
        return self.resid_dropout(self.c_proj(y)), (k, v)

    def extra_repr(self):
        return f"n_head={self.n_head}"


class MLP(nn.Module):
    """c_proj(GELU(c_fc(x))): Linear(d, r d) -> GELU -> Linear(r d, d). (*, d) -> (*, d)."""

    def __init__(self, n_embd, mlp_ratio=4, dropout=0.0, bias=True, approximate="none",
                 generator=None):
        super().__init__()
        hidden = int(mlp_ratio * n_embd)
        self.c_fc = nn.Linear(n_embd, hidden, bias=bias, generator=generator)
        self.gelu = nn.GELU(approximate=approximate)
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias, generator=generator)
        self.dropout = nn.Dropout(dropout, generator=generator)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One pre-LayerNorm decoder block: x + attn(ln_1(x)), then + mlp(ln_2(.)).
    forward(x (B, T, d), past) -> (y (B, T, d), present (k, v))."""

    def __init__(self, n_embd, n_head, mlp_ratio=4, dropout=0.0, bias=True,
                 approximate="none", generator=None, layer_norm_eps=1e-5):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, generator)
        self.ln_2 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.mlp = MLP(n_embd, mlp_ratio, dropout, bias, approximate, generator)

    def forward(self, x, past=None):
        a, present = self.attn(self.ln_1(x), past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present


class TransformerDecoder(nn.Module):
    """GPT-style decoder-only Transformer (see the module docstring for the equations).

    :param vocab_size: V; :param block_size: the longest context (positions 0..block_size-1)
    :param n_layer, n_head, n_embd: depth, heads, width d (d divisible by n_head)
    :param positions: 'learned' (``wpe``, an Embedding(block_size, d)) or 'sinusoidal'
        (fixed, Vaswani et al. 2017 section 3.5; no parameters)
    :param tie_weights: lm_head.weight is wte.weight (Press & Wolf 2017), as GPT-2
    :param mlp_ratio, dropout, bias, gelu_approximate: MLP width factor, dropout probability
        (embeddings, attention weights, residual branches), biases in Linear/LayerNorm,
        GELU variant ('none' exact, 'tanh' as GPT-2)
    :param layer_norm_eps: the LayerNorms' epsilon (1e-5, as GPT-2's ``layer_norm_epsilon``)

    forward(tokens (B, T) int, cache=None) -> logits (B, T, V). With a ``KVCache``, tokens
    are the NEW tokens at positions cache.length.. and the cache is extended in place.
    forward_embeddings(x (B, T, d), cache=None) -> logits: the same from token embeddings
    (before positions are added), so gradients with respect to the inputs can be taken.
    """

    def __init__(self, vocab_size, block_size, n_layer=2, n_head=2, n_embd=32, mlp_ratio=4,
                 dropout=0.0, bias=True, positions="learned", tie_weights=True,
                 gelu_approximate="none", layer_norm_eps=1e-5, generator=None):
        super().__init__()
        check_known(positions, "TransformerDecoder", "positions", POSITION_KINDS)
        check_positive_ints("TransformerDecoder", vocab_size=vocab_size, block_size=block_size,
                            n_layer=n_layer, n_head=n_head, n_embd=n_embd)
        self.vocab_size, self.block_size = int(vocab_size), int(block_size)
        self.n_layer, self.n_head, self.n_embd = int(n_layer), int(n_head), int(n_embd)
        self.positions, self.tie_weights = positions, tie_weights
        self.mlp_ratio, self.bias, self.gelu_approximate = mlp_ratio, bias, gelu_approximate
        self.layer_norm_eps = layer_norm_eps
        self.wte = nn.Embedding(vocab_size, n_embd, generator=generator)
        if positions == "learned":
            self.wpe = nn.Embedding(block_size, n_embd, generator=generator)
        self.drop = nn.Dropout(dropout, generator=generator)
        self.h = nn.ModuleList([Block(n_embd, n_head, mlp_ratio, dropout, bias, gelu_approximate,
                                      generator, layer_norm_eps) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False, generator=generator)
        _gpt2_init(self, self.n_layer, generator)
        if tie_weights:
            self.lm_head.weight = self.wte.weight

    def new_cache(self):
        return KVCache(self.n_layer)

    def _check_cache(self, cache):
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"TransformerDecoder: cache must be a KVCache, got {type(cache).__name__}")
        if cache is not None and len(cache.layers) != self.n_layer:
            raise ValueError(f"TransformerDecoder: cache has {len(cache.layers)} layers, the "
                             f"model {self.n_layer}")

    def _position_codes(self, start, length, like):
        if start + length > self.block_size:
            raise ValueError(f"TransformerDecoder: positions {start}..{start + length - 1} exceed "
                             f"block_size {self.block_size}")
        if self.positions == "learned":
            return self.wpe(autodiff.Tensor(B.xp.arange(start, start + length, dtype=B.numpy.int64)))
        return sinusoidal_positions(start + length, self.n_embd, dtype=like.dtype)[start:]

    def forward_embeddings(self, x, cache=None):
        check_sequence(x, self.n_embd, "TransformerDecoder.forward_embeddings", "x")
        self._check_cache(cache)
        start = cache.length if cache is not None else 0
        h = self.drop(x + self._position_codes(start, x.shape[1], x))    # (B, T, d)
        for i, block in enumerate(self.h):
            h, present = block(h, cache.layers[i] if cache is not None else None)
            if cache is not None:
                cache.layers[i] = present
        return self.lm_head(self.ln_f(h))                                 # (B, T, V)

    def forward(self, tokens, cache=None):
        tokens = check_tokens(tokens, self.vocab_size, "TransformerDecoder")
        return self.forward_embeddings(self.wte(tokens), cache)

    def generate(self, prompt, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Sample continuations autoregressively with the key/value cache.

        x_{t+1} ~ softmax(logits_t / temperature) restricted to the top_k logits;
        temperature=0 takes the argmax. Once the context would exceed block_size, every
        step re-encodes the last block_size tokens (a sliding window, positions 0..block_size-1)
        in a fresh cache, so each token is predicted from min(T, block_size) preceding tokens,
        exactly as the full recomputation on that window.
        Runs in eval mode (no dropout) and without recording gradients.

        :param prompt: (B, T0) int64, T0 >= 1
        :return: (B, T0 + max_new_tokens) int64 Tensor
        """
        tokens = check_tokens(prompt, self.vocab_size, "TransformerDecoder.generate", "prompt")
        if tokens.shape[1] == 0:
            raise ValueError("TransformerDecoder.generate: prompt must hold at least one token")
        check_sampling_options("TransformerDecoder.generate", max_new_tokens, temperature, top_k)
        xp = B.xp
        gen = generator if generator is not None else B.default_generator()
        out = tokens.data
        was_training = self.training
        self.eval()
        try:
            with autodiff.no_grad():
                cache = self.new_cache()
                pending = out[:, -self.block_size:]
                for _ in range(int(max_new_tokens)):
                    if cache.length + pending.shape[1] > self.block_size:
                        # positions shift with the window, so the cache cannot be reused:
                        # recompute from the last block_size tokens (nanoGPT's crop)
                        cache = self.new_cache()
                        pending = out[:, -self.block_size:]
                    logits = self.forward(autodiff.Tensor(pending), cache=cache).data[:, -1, :]
                    nxt = _sample_next(logits, temperature, top_k, gen)   # (B, 1)
                    out = xp.concatenate([out, nxt], axis=1)
                    pending = nxt
        finally:
            self.train(was_training)
        return autodiff.Tensor(out)

    def extra_repr(self):
        return (f"vocab_size={self.vocab_size}, block_size={self.block_size}, "
                f"positions={self.positions!r}, tie_weights={self.tie_weights}")


def _sample_next(logits, temperature, top_k, gen):
    """One token per row from logits (B, V) (raw backend arrays); returns (B, 1) int64."""
    xp = B.xp
    if temperature == 0:
        return logits.argmax(axis=-1)[:, None].astype(B.numpy.int64)
    z = logits / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = xp.sort(z, axis=-1)[:, -top_k][:, None]
        z = xp.where(z < kth, -xp.inf, z)
    z = z - z.max(axis=-1, keepdims=True)                     # stable softmax
    p = xp.exp(z)
    cdf = xp.cumsum(p, axis=-1)
    u = gen.random((z.shape[0], 1), z.dtype) * cdf[:, -1:]     # inverse-CDF sampling
    idx = (cdf <= u).sum(axis=-1)
    return xp.minimum(idx, z.shape[-1] - 1)[:, None].astype(B.numpy.int64)


# ---------------------------------------------------------------------------- encoder-decoder
_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def _activation(name, where):
    check_known(name, where, "activation", tuple(_ACTIVATIONS))
    return _ACTIVATIONS[name]()


class TransformerEncoderLayer(nn.Module):
    """Pre-LN encoder layer, ``torch.nn.TransformerEncoderLayer(norm_first=True,
    batch_first=True)``'s structure and names:

        x = x + SelfAttn(norm1(x), key_padding_mask);  x = x + linear2(act(linear1(norm2(x))))

    forward(x (B, S, d), src_padding_mask (B, S) bool or None) -> (B, S, d).
    """

    def __init__(self, d_model, nhead, dim_feedforward, dropout=0.0, activation="gelu",
                 layer_norm_eps=1e-5, bias=True, generator=None):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                               batch_first=True, generator=generator)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, generator=generator)
        self.dropout = nn.Dropout(dropout, generator=generator)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, generator=generator)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout, generator=generator)
        self.dropout2 = nn.Dropout(dropout, generator=generator)
        self.activation = _activation(activation, "TransformerEncoderLayer")

    def forward(self, x, src_padding_mask=None):
        h = self.norm1(x)
        a, _ = self.self_attn(h, h, h, key_padding_mask=src_padding_mask, need_weights=False)
        x = x + self.dropout1(a)
        f = self.linear2(self.dropout(self.activation(self.linear1(self.norm2(x)))))
        return x + self.dropout2(f)


class TransformerDecoderLayer(nn.Module):
    """Pre-LN decoder layer, ``torch.nn.TransformerDecoderLayer(norm_first=True,
    batch_first=True)``'s structure and names:

        x = x + SelfAttn(norm1(x), causal, tgt_padding_mask)
        x = x + CrossAttn(norm2(x), memory, memory_padding_mask)
        x = x + linear2(act(linear1(norm3(x))))

    forward(x (B, T, d), memory (B, S, d), tgt_padding_mask (B, T), memory_padding_mask
    (B, S)) -> (B, T, d).
    """

    def __init__(self, d_model, nhead, dim_feedforward, dropout=0.0, activation="gelu",
                 layer_norm_eps=1e-5, bias=True, generator=None):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                               batch_first=True, generator=generator)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                    batch_first=True, generator=generator)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, generator=generator)
        self.dropout = nn.Dropout(dropout, generator=generator)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, generator=generator)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout, generator=generator)
        self.dropout2 = nn.Dropout(dropout, generator=generator)
        self.dropout3 = nn.Dropout(dropout, generator=generator)
        self.activation = _activation(activation, "TransformerDecoderLayer")

    def forward(self, x, memory, tgt_padding_mask=None, memory_padding_mask=None):
        t = x.shape[1]
        causal = B.xp.triu(B.xp.ones((t, t), dtype=bool), k=1)   # True = key after query
        h = self.norm1(x)
        a, _ = self.self_attn(h, h, h, attn_mask=causal, key_padding_mask=tgt_padding_mask,
                              need_weights=False)
        x = x + self.dropout1(a)
        c, _ = self.multihead_attn(self.norm2(x), memory, memory,
                                   key_padding_mask=memory_padding_mask, need_weights=False)
        x = x + self.dropout2(c)
        f = self.linear2(self.dropout(self.activation(self.linear1(self.norm3(x)))))
        return x + self.dropout3(f)


class _Stack(nn.Module):
    """``layers`` (a ModuleList) followed by a final LayerNorm ``norm`` (PyTorch's
    TransformerEncoder/TransformerDecoder with ``norm=``), so parameter names match."""

    def __init__(self, layers, norm, name):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm
        self._name = name

    def _get_name(self):
        return self._name

    def forward(self, x, *args):
        for layer in self.layers:
            x = layer(x, *args)
        return self.norm(x)


class TransformerEncoderDecoder(nn.Module):
    """Encoder-decoder Transformer for sequence-to-sequence models (Vaswani et al. 2017).

    :param src_vocab_size, tgt_vocab_size: vocabularies; :param max_len: longest sequence
    :param d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward: sizes
    :param positions: 'learned' (``src_pos``, ``tgt_pos`` Embeddings) or 'sinusoidal'
    :param scale_embedding: multiply token embeddings by sqrt(d_model) (section 3.4)
    :param tie_weights: lm_head.weight is tgt_embed.weight
    :param activation: 'gelu' or 'relu' in the feed-forward layers

    Parameters: ``src_embed``, ``tgt_embed``, [``src_pos``, ``tgt_pos``], ``encoder.layers.i``
    and ``encoder.norm``, ``decoder.layers.i`` and ``decoder.norm`` (as torch.nn.Transformer),
    ``lm_head``.

    forward(src (B, S) int, tgt (B, T) int, src_padding_mask (B, S) bool, tgt_padding_mask
    (B, T) bool) -> logits (B, T, V_tgt). Masks: True at padding. ``encode`` and ``decode``
    split the two halves; ``forward_embeddings(src_emb (B, S, d), tgt_emb (B, T, d), ...)``
    starts from token embeddings so gradients with respect to the inputs can be taken.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, max_len, d_model=32, nhead=2,
                 num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=None, dropout=0.0,
                 activation="gelu", layer_norm_eps=1e-5, bias=True, positions="learned",
                 scale_embedding=False, tie_weights=False, generator=None):
        super().__init__()
        check_known(positions, "TransformerEncoderDecoder", "positions", POSITION_KINDS)
        check_divisible("TransformerEncoderDecoder", d_model, "d_model", nhead, "nhead")
        dim_feedforward = dim_feedforward or 4 * d_model
        self.src_vocab_size, self.tgt_vocab_size = int(src_vocab_size), int(tgt_vocab_size)
        self.max_len, self.d_model = int(max_len), int(d_model)
        self.positions, self.scale_embedding = positions, scale_embedding
        self.tie_weights = tie_weights
        self.src_embed = nn.Embedding(src_vocab_size, d_model, generator=generator)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, generator=generator)
        if positions == "learned":
            self.src_pos = nn.Embedding(max_len, d_model, generator=generator)
            self.tgt_pos = nn.Embedding(max_len, d_model, generator=generator)
        self.drop = nn.Dropout(dropout, generator=generator)
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, bias,
                generator)
        self.encoder = _Stack([TransformerEncoderLayer(*args) for _ in range(num_encoder_layers)],
                              nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias),
                              "TransformerEncoder")
        self.decoder = _Stack([TransformerDecoderLayer(*args) for _ in range(num_decoder_layers)],
                              nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias),
                              "TransformerDecoderStack")
        self.lm_head = nn.Linear(d_model, tgt_vocab_size, bias=False, generator=generator)
        if tie_weights:
            self.lm_head.weight = self.tgt_embed.weight

    def _embed_positions(self, x, which):
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"TransformerEncoderDecoder: {which} length {t} exceeds max_len "
                             f"{self.max_len}")
        if self.scale_embedding:
            x = x * math.sqrt(self.d_model)
        if self.positions == "learned":
            pe = getattr(self, f"{which}_pos")(autodiff.Tensor(B.xp.arange(t, dtype=B.numpy.int64)))
        else:
            pe = sinusoidal_positions(t, self.d_model, dtype=x.dtype)
        return self.drop(x + pe)

    def encode_embeddings(self, src_emb, src_padding_mask=None):
        """src_emb (B, S, d) token embeddings -> memory (B, S, d)."""
        where = "TransformerEncoderDecoder.encode"
        check_sequence(src_emb, self.d_model, where, "src embeddings")
        mask = check_padding_mask(src_padding_mask, src_emb.shape[0], src_emb.shape[1], where,
                                   "src_padding_mask")
        return self.encoder(self._embed_positions(src_emb, "src"), mask)

    def decode_embeddings(self, tgt_emb, memory, src_padding_mask=None, tgt_padding_mask=None):
        """tgt_emb (B, T, d), memory (B, S, d) -> logits (B, T, V_tgt)."""
        where = "TransformerEncoderDecoder.decode"
        check_sequence(tgt_emb, self.d_model, where, "tgt embeddings")
        check_sequence(memory, self.d_model, where, "memory")
        if memory.shape[0] != tgt_emb.shape[0]:
            raise ValueError(f"{where}: memory batch {memory.shape[0]} differs from target batch "
                             f"{tgt_emb.shape[0]}")
        smask = check_padding_mask(src_padding_mask, memory.shape[0], memory.shape[1], where,
                                    "src_padding_mask")
        tmask = check_padding_mask(tgt_padding_mask, tgt_emb.shape[0], tgt_emb.shape[1], where,
                                    "tgt_padding_mask")
        h = self.decoder(self._embed_positions(tgt_emb, "tgt"), memory, tmask, smask)
        return self.lm_head(h)

    def encode(self, src, src_padding_mask=None):
        src = check_tokens(src, self.src_vocab_size, "TransformerEncoderDecoder", "src")
        return self.encode_embeddings(self.src_embed(src), src_padding_mask)

    def decode(self, tgt, memory, src_padding_mask=None, tgt_padding_mask=None):
        tgt = check_tokens(tgt, self.tgt_vocab_size, "TransformerEncoderDecoder", "tgt")
        return self.decode_embeddings(self.tgt_embed(tgt), memory, src_padding_mask,
                                      tgt_padding_mask)

    def forward_embeddings(self, src_emb, tgt_emb, src_padding_mask=None, tgt_padding_mask=None):
        memory = self.encode_embeddings(src_emb, src_padding_mask)
        return self.decode_embeddings(tgt_emb, memory, src_padding_mask, tgt_padding_mask)

    def forward(self, src, tgt, src_padding_mask=None, tgt_padding_mask=None):
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt, memory, src_padding_mask, tgt_padding_mask)

    def extra_repr(self):
        return (f"src_vocab_size={self.src_vocab_size}, tgt_vocab_size={self.tgt_vocab_size}, "
                f"max_len={self.max_len}, positions={self.positions!r}")
