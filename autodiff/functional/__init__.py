"""``autodiff.functional`` (import as ``F``): stable composites with torch.nn.functional's names.

One module per theme:

* activations:   softmax, log_softmax, logsumexp, softplus, logsigmoid, gelu, silu, elu,
                 relu, leaky_relu, tanh, sigmoid
* layers:        linear, embedding, one_hot, dropout
* normalization: layer_norm, group_norm, batch_norm
* attention:     scaled_dot_product_attention
* losses:        cross_entropy, nll_loss, mse_loss, l1_loss,
                 binary_cross_entropy_with_logits, gaussian_nll_loss, kl_div
* convolution, pooling and resampling live in ``autodiff.ops.conv``/``pool``/``resample``
  and are re-exported here.

Each function is built from the engine's differentiable ops (or a small primitive whose
backward is itself written in those ops), so every one of them has second derivatives.
"""
from .activations import (softmax, log_softmax, logsumexp, softplus, logsigmoid, gelu, silu,
                          elu, relu, leaky_relu, tanh, sigmoid)
from .layers import linear, embedding, one_hot, dropout
from .normalization import layer_norm, group_norm, batch_norm
from .attention import scaled_dot_product_attention
from .losses import (cross_entropy, nll_loss, mse_loss, l1_loss,
                     binary_cross_entropy_with_logits, gaussian_nll_loss, kl_div)
from ..ops.shape import pad
from ..ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from ..ops.pool import avg_pool2d, max_pool2d, max_pool2d_with_indices, adaptive_avg_pool2d
from ..ops.resample import interpolate, pixel_shuffle, pixel_unshuffle

__all__ = [
    "softmax", "log_softmax", "logsumexp", "softplus", "logsigmoid", "gelu", "silu", "elu",
    "relu", "leaky_relu", "tanh", "sigmoid", "linear", "embedding", "one_hot", "dropout",
    "layer_norm", "group_norm", "batch_norm", "scaled_dot_product_attention",
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
    "gaussian_nll_loss", "kl_div", "pad",
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "avg_pool2d", "max_pool2d",
    "max_pool2d_with_indices", "adaptive_avg_pool2d", "interpolate", "pixel_shuffle",
    "pixel_unshuffle",
]
