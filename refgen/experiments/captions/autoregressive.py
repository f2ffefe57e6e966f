"""Caption to pixels with an encoder-decoder Transformer: p_theta(x | c) one grey level at a
time, in raster order.

The image's D = C H W grey levels k_1..k_D (x = k / (L - 1), L levels) are a sequence, and

    log p_theta(x | c) = sum_{i=1}^{D} log p_theta(k_i | k_{<i}, c)              (chain rule)
    p_theta(k_i | k_{<i}, c) = softmax(Decoder(BOS, k_1..k_{i-1}; Encoder(c))_i)

with the encoder reading the caption's words and the decoder's causal self-attention plus
cross-attention to the encoder's memory (Vaswani et al. 2017, Sec. 3.1; the image
Transformer of Parmar et al. 2018 with a text encoder in front, as the first stage of DALL-E,
Ramesh et al. 2021, writes image tokens after text tokens). The decoder's input is the pixel
sequence shifted right by one with a begin token BOS = L in front, so the logits at
position i see only k_{<i}; the softmax runs over the L grey levels (BOS is never a target).

Training maximises log p_theta(x | c) (cross-entropy, teacher forcing); sampling draws k_1,
k_2, ... in turn (D decoder passes; the encoder runs once).

Backbone: ``refgen.backbones.transformer.TransformerEncoderDecoder``.
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B

from ...backbones.transformer import TransformerEncoderDecoder, _sample_next
from .text import VOCAB, PAD, with_overrides

__all__ = ["CaptionPixelTransformer", "autoregressive_config"]


def autoregressive_config(image_shape, levels, caption_length, **overrides):
    """Defaults: d = 64, 4 heads, 2 encoder and 2 decoder layers, learned positions."""
    config = {"image_shape": [int(s) for s in image_shape], "levels": int(levels),
              "caption_length": int(caption_length), "vocab_size": len(VOCAB),
              "d_model": 64, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 2,
              "seed": 0}
    return with_overrides(config, overrides, "autoregressive_config")


class CaptionPixelTransformer:
    """The ``Trainable`` (``refgen.train.fit``) and sampler of p_theta(x | c) (module
    docstring). Batches are (x (B, C, H, W) in [0, 1], index (B,)) with ``captions`` the
    (N, J, S) token table of the training set; a template is drawn per example and step.
    """

    family = "text_to_image_autoregressive"

    def __init__(self, config, captions=None):
        self.config = dict(config)
        self.levels = int(config["levels"])
        self.bos = self.levels                         # the begin token, after the L levels
        self.num_pixels = int(math.prod(config["image_shape"]))
        gen = autodiff.Generator(int(config.get("seed", 0)))
        self.net = TransformerEncoderDecoder(
            len(VOCAB), self.levels + 1, max(self.num_pixels, int(config["caption_length"])),
            d_model=config["d_model"], nhead=config["nhead"],
            num_encoder_layers=config["num_encoder_layers"],
            num_decoder_layers=config["num_decoder_layers"], generator=gen)
        self.captions = captions

    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    # ------------------------------------------------------------------ pixels <-> tokens
    def to_levels(self, x):
        """k = round(x (L - 1)): x (N, C, H, W) in [0, 1] -> (N, D) int64 in raster order."""
        data = x.data if isinstance(x, autodiff.Tensor) else B.xp.asarray(x)
        if tuple(data.shape[1:]) != tuple(self.config["image_shape"]):
            raise ValueError(f"CaptionPixelTransformer: x must be (N, "
                             f"{', '.join(map(str, self.config['image_shape']))}), got "
                             f"{tuple(data.shape)}")
        k = B.xp.rint(data.reshape(data.shape[0], -1) * (self.levels - 1))
        return B.xp.clip(k, 0, self.levels - 1).astype(B.numpy.int64)

    def from_levels(self, k, dtype):
        """x = k / (L - 1): (N, D) -> (N, C, H, W) Tensor."""
        x = k.astype(dtype) / (self.levels - 1)
        return autodiff.Tensor(x.reshape((k.shape[0],) + tuple(self.config["image_shape"])))

    # ------------------------------------------------------------------ the model
    def encode(self, tokens):
        """memory (N, S, d) and the caption's padding mask (N, S)."""
        data = tokens.data if isinstance(tokens, autodiff.Tensor) else B.xp.asarray(tokens)
        mask = data == PAD
        return self.net.encode(data, mask), mask

    def logits_from_pixel_embeddings(self, pixel_emb, memory, mask):
        """Level logits (N, D, L) from pixel embeddings (N, D, d): the embeddings shifted right
        by one behind BOS's, so position i sees pixels < i only."""
        n = pixel_emb.shape[0]
        bos = self.net.tgt_embed(autodiff.Tensor(B.xp.full((n, 1), self.bos,
                                                           dtype=B.numpy.int64)))
        shifted = autodiff.cat([bos, pixel_emb[:, :-1]], dim=1)          # (N, D, d)
        logits = self.net.decode_embeddings(shifted, memory, mask)       # (N, D, L + 1)
        return logits[:, :, :self.levels]                                 # BOS is no target

    def logits(self, x, tokens):
        """log p_theta(k_i = . | k_<i, c) before normalisation: (N, D, L)."""
        memory, mask = self.encode(tokens)
        k = self.to_levels(x)
        return self.logits_from_pixel_embeddings(self.net.tgt_embed(autodiff.Tensor(k)),
                                                 memory, mask)

    def log_prob(self, x, tokens):
        """log p_theta(x | c) = sum_i log softmax(logits_i)[k_i], (N,) nats (exact, on the
        L-level grid)."""
        logp = F.log_softmax(self.logits(x, tokens), dim=-1)             # (N, D, L)
        k = self.to_levels(x)
        picked = logp.gather(2, autodiff.Tensor(k[:, :, None]))          # (N, D, 1)
        return picked.reshape(k.shape[0], -1).sum(dim=1)

    def training_step(self, batch, step, ctx):
        x, index = batch
        if self.captions is None:
            raise ValueError("CaptionPixelTransformer: set .captions (the (N, J, S) token "
                             "table) before training")
        n = x.shape[0]
        template = ctx.generator.integers(0, self.captions.shape[1], (n,))
        tokens = self.captions[index.data, template]
        logits = self.logits(x, tokens)                                  # (N, D, L)
        k = self.to_levels(x)
        loss = F.cross_entropy(logits.reshape(-1, self.levels), autodiff.Tensor(k.reshape(-1)))
        ctx.optimize("model", loss)
        # nats per pixel -> bits per pixel on the L-level grid
        return {"loss": float(loss.item()), "bits_per_dim": float(loss.item()) / math.log(2)}

    def sample(self, tokens, generator=None, temperature=1.0):
        """Images for captions (N, S): k_i ~ softmax(logits_i / temperature) in raster order
        (D decoder passes over the growing prefix). Returns (N, C, H, W) in [0, 1]."""
        if not temperature >= 0.0:
            raise ValueError(f"CaptionPixelTransformer.sample: temperature must be >= 0, got "
                             f"{temperature!r}")
        gen = generator if generator is not None else B.default_generator()
        was_training = self.net.training
        self.net.eval()
        try:
            with autodiff.no_grad():
                memory, mask = self.encode(tokens)
                n = memory.shape[0]
                seq = B.xp.full((n, 1), self.bos, dtype=B.numpy.int64)      # BOS, k_1, ...
                for _ in range(self.num_pixels):
                    logits = self.net.decode(seq, memory, mask).data[:, -1, :self.levels]
                    seq = B.xp.concatenate([seq, _sample_next(logits, temperature, None, gen)],
                                           axis=1)
        finally:
            self.net.train(was_training)
        return self.from_levels(seq[:, 1:], memory.dtype)
