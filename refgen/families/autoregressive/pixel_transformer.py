"""Family ``pixel_transformer``: a decoder-only Transformer over the raster of pixels
(the Image Transformer / Image GPT idea: Parmar et al. 2018; Chen et al. 2020), on the
project's GPT-style backbone (``refgen.backbones.TransformerDecoder``).

Each pixel is a token, its grey level k in 0..L-1 (binarized data: L = 2). The sequence
the decoder reads is the image in raster order shifted right by one behind a start token,

    input   s  = (BOS, k_1, k_2, ..., k_{D-1})          (B, D)
    output  logits_t  ->  p_theta(k_{t+1} | BOS, k_1..k_t) = softmax(logits_t[:L])

so causal self-attention (output t sees inputs <= t) makes p_theta(x) = prod_i p(x_i | x_{<i})
exact: log p_theta(x) = sum_i log softmax(logits_{i-1})[k_i]. A class-conditional model uses
one start token per class, BOS = L + y, so the label is the context of every pixel.

Sampling draws one pixel per step with the decoder's key/value cache: each step feeds only
the newest token and attends to the cached keys and values of the earlier ones
(``nfe_per_sample = D`` single-token passes, O(D) work each instead of O(D^2)).

Shapes: x (N, C, H, W) with D = C H W tokens, raster order over (C, H, W).
"""
import autodiff
from autodiff import backend as B

from ...backbones.transformer import TransformerDecoder
from . import heads as H
from .model import AutoregressiveModel

__all__ = ["PixelTransformerModel", "default_config", "build", "train_defaults",
           "smoke_config", "SMOKE_DATA", "kind"]

kind = "autoregressive"
SMOKE_DATA = ["digits"]


def default_config(data_info):
    return {
        "n_layer": 4, "n_head": 4, "n_embd": 64,
        "positions": "learned",
        "dropout": 0.0,
        "head": "auto",          # auto | categorical (a softmax over the L levels)
        "binarize": None,        # None | "dynamic"
        "conditional": False,    # a start token per class
    }


def train_defaults(data_info):
    return {"steps": 5000, "batch_size": 64, "lr": 1e-3, "log_every": 50,
            "eval_every": 1000, "checkpoint_every": 500, "grad_clip": 1.0,
            "warmup_steps": 200}     # a linear warmup to a constant rate


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(n_layer=1, n_head=2, n_embd=8)
    return config


class PixelTransformerModel(AutoregressiveModel):
    """The pixel Transformer as a ``GenerativeModel``; see the module docstring."""

    family = "pixel_transformer"

    def __init__(self, config):
        super().__init__(config)
        if self.data_info.get("kind") != "image" or not self.data_info.get("levels"):
            raise ValueError(f"pixel_transformer: needs quantised image data (levels); data "
                             f"set {self.data_info.get('name', '?')!r} is of kind "
                             f"{self.data_info.get('kind')!r}")
        if self.head_name not in ("bernoulli", "categorical"):
            raise ValueError(f"pixel_transformer: head must be 'auto' or 'categorical' (a "
                             f"softmax over the levels), got {self.head_name!r}")
        # tokens are levels: binary data are 2-level tokens, the Bernoulli as a 2-way softmax
        levels = 2 if self.head_name == "bernoulli" else int(self.data_info["levels"])
        self.head = H.CategoricalHead(levels, self.value_range)
        self.levels_ = levels
        c = self.config
        self.num_starts = self.num_classes if self.conditional else 1
        self.net = TransformerDecoder(levels + self.num_starts, block_size=self.num_dims,
                                      n_layer=int(c.get("n_layer", 4)),
                                      n_head=int(c.get("n_head", 4)),
                                      n_embd=int(c.get("n_embd", 64)),
                                      dropout=float(c.get("dropout", 0.0)),
                                      positions=c.get("positions", "learned"))

    def _start_tokens(self, n, labels):
        """(n, 1) int64: BOS = L (+ y for a conditional model)."""
        start = B.xp.full((n, 1), self.levels_, dtype=B.xp.int64)
        return start if labels is None else start + labels.reshape(n, 1)

    def logits_flat(self, x_flat, labels):
        """(N, L, D): the logits of p(x_i | x_{<i}) for every pixel i, one pass."""
        n = x_flat.shape[0]
        k = self.head.to_index(x_flat)                                   # (N, D)
        tokens = B.xp.concatenate([self._start_tokens(n, labels), k[:, :-1]], axis=1)
        logits = self.net(autodiff.Tensor(tokens))                       # (N, D, V)
        return logits[:, :, :self.levels_].permute(0, 2, 1)              # (N, L, D)

    def log_prob_flat(self, x_flat, labels, step=None):
        return self.head.log_prob(self.logits_flat(x_flat, labels), x_flat).sum(dim=1)

    def sample(self, n, generator=None, cond=None, temperature=None, **options):
        """n samples, one pixel per step through the key/value cache (D cached passes)."""
        n, gen, labels, T = self._sample_setup(n, generator, cond, temperature, options)
        L, lo, hi = self.levels_, self.head.lo, self.head.hi
        tokens = self._start_tokens(n, labels)
        out = B.xp.empty((n, self.num_dims), dtype=B.xp.int64)
        was_training = self.net.training
        self.net.eval()
        with autodiff.no_grad():
            cache = self.net.new_cache()
            for i in range(self.num_dims):
                logits = self.net(autodiff.Tensor(tokens), cache=cache).data[:, -1, :L]
                k = H._gumbel_argmax(logits / T, gen, axis=1)           # (n,)
                out[:, i] = k
                tokens = k[:, None].astype(B.xp.int64)
        self.net.train(was_training)
        dtype = self.net.lm_head.weight.dtype
        x = (lo + (hi - lo) / (L - 1) * out).astype(dtype)
        return autodiff.Tensor(x.reshape((n,) + self.example_shape))

    @property
    def nfe_per_sample(self):
        """D passes of one new token each (the key/value cache holds the rest)."""
        return int(self.num_dims)


def build(config, data_info=None):
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    return PixelTransformerModel(config)
