"""The caption encoder: a Transformer encoder over the caption's word tokens.

    h_0 = E[c] + P                                     (word and learned position embeddings)
    h_l = EncoderLayer_l(h_{l-1}, padding mask)        (pre-LN self-attention + MLP,
                                                        ``refgen.backbones.transformer``)
    context = LN(h_L)                                  (B, S, d): one vector per word

(Vaswani et al. 2017, Sec. 3.1; the text encoder of Imagen, Saharia et al. 2022, and of
GLIDE, Nichol et al. 2022, in miniature, trained from scratch with the image model.) The
context is what the U-Net's cross-attention reads; padded words are masked out of every
attention (True in the padding mask), so no output depends on them.

Shapes: tokens (B, S) int64 -> context (B, S, d), padding mask (B, S) bool.
"""
import autodiff
from autodiff import backend as B
from autodiff import nn

from ...backbones._checks import check_sequence, check_tokens
from ...backbones.transformer import TransformerEncoderLayer
from .text import PAD

__all__ = ["CaptionEncoder"]


class CaptionEncoder(nn.Module):
    """Word tokens to context vectors (module docstring).

    :param vocab_size: V; :param max_len: S_max, the longest caption
    :param d_model, nhead, num_layers, dim_feedforward: width, heads, depth, MLP width (4d)
    Parameters: ``embed`` Embedding(V, d), ``pos`` Embedding(S_max, d), ``layers.i``
    (TransformerEncoderLayer), ``norm`` LayerNorm(d).
    """

    def __init__(self, vocab_size, max_len, d_model=64, nhead=4, num_layers=2,
                 dim_feedforward=None, dropout=0.0, generator=None):
        super().__init__()
        self.vocab_size, self.max_len, self.d_model = int(vocab_size), int(max_len), int(d_model)
        self.embed = nn.Embedding(vocab_size, d_model, generator=generator)
        self.pos = nn.Embedding(max_len, d_model, generator=generator)
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(d_model, nhead, dim_feedforward or 4 * d_model, dropout,
                                    generator=generator) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        for m in (self.embed, self.pos):   # GPT-2's N(0, 0.02): small codes at the start
            nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)

    def padding_mask(self, tokens):
        """(B, S) bool, True at the padding token."""
        data = tokens.data if isinstance(tokens, autodiff.Tensor) else B.xp.asarray(tokens)
        return data == PAD

    def embed_tokens(self, tokens):
        """E[c]: (B, S) int -> (B, S, d), before positions (a leaf for input gradients)."""
        tokens = check_tokens(tokens, self.vocab_size, "CaptionEncoder")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"CaptionEncoder: caption length {tokens.shape[1]} exceeds "
                             f"max_len {self.max_len}")
        return self.embed(tokens)

    def forward_embeddings(self, emb, padding_mask):
        """context = LN(layers(emb + P)): emb (B, S, d), padding_mask (B, S) -> (B, S, d)."""
        check_sequence(emb, self.d_model, "CaptionEncoder.forward_embeddings", "emb")
        s = emb.shape[1]
        h = emb + self.pos(autodiff.Tensor(B.xp.arange(s, dtype=B.numpy.int64)))
        for layer in self.layers:
            h = layer(h, padding_mask)
        return self.norm(h)

    def forward(self, tokens):
        """tokens (B, S) -> (context (B, S, d), padding mask (B, S) bool)."""
        mask = self.padding_mask(tokens)
        return self.forward_embeddings(self.embed_tokens(tokens), mask), mask

    def extra_repr(self):
        return f"vocab_size={self.vocab_size}, max_len={self.max_len}, d_model={self.d_model}"
