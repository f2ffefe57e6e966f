"""Masked autoregressive flow (MAF, Papamakarios et al. 2017) and inverse autoregressive flow
(IAF, Kingma et al. 2016) on the shared MADE (``refgen.families.common.made``).

MAF layer, data x -> base u (Papamakarios et al. 2017, Eq. 2 and 4, written in the normalizing
direction), with (mu, alpha) = MADE(x [, c]) so that mu_i and alpha_i depend on x_{<i} only:

    u_i = (x_i - mu_i(x_{<i})) * exp(-alpha_i(x_{<i})),      log|det du/dx| = -sum_i alpha_i.

The Jacobian is triangular in the MADE's ordering, so its log-determinant is the sum of the
diagonal; the density pass is ONE network evaluation. The inverse (sampling) must run one
dimension at a time: x_i = u_i exp(alpha_i) + mu_i needs x_{<i} first, so D passes, each
fixing the next dimension in the ordering (Sec. 3.1). IAF is the same layer used the other
way round (``bijections.Inverse``): sampling in one pass, density in D passes.

alpha is soft-clamped to (-bound, bound) as the coupling layers' scale is; the MADE's last
layer starts at zero so each layer starts as the identity. Between layers the ordering is
reversed (MAF Sec. 3.1: "use different orderings in each layer"), and MAF's batch norm
(Sec. 3.4, ``BatchNormFlow``) may sit between them.
"""
import math

import autodiff
from autodiff import nn

from ..common.made import MADE
from .bijections import (BatchNormFlow, Bijection, Compose, Inverse, LogitPreprocess,
                         Permutation, _check_input)

__all__ = ["MAFLayer", "Flatten", "autoregressive_bijection"]


class MAFLayer(Bijection):
    """One MADE-based affine autoregressive layer on vectors (D,) (module docstring).

    :param num_inputs: D.  :param hidden_sizes: the MADE's hidden widths.
    :param cond_features: size of the context c, fed to every MADE layer unmasked.
    :param ordering: the MADE's input ordering ('natural', 'reversed' or a permutation).
    """

    def __init__(self, num_inputs, hidden_sizes=(128, 128), cond_features=0,
                 ordering="natural", scale_bound=3.0, activation="relu", seed=0):
        super().__init__()
        self.shape = (int(num_inputs),)
        self.scale_bound = float(scale_bound)
        self.made = MADE(num_inputs, tuple(hidden_sizes), outputs_per_dim=2,
                         cond_dim=cond_features, ordering=ordering, activation=activation,
                         seed=seed)
        last = self.made.layers[len(self.made.layers) - 1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if self.made.cond_layers is not None:
            nn.init.zeros_(self.made.cond_layers[len(self.made.cond_layers) - 1].weight)

    def _mu_alpha(self, x, cond):
        out = self.made(x, cond)                                   # (N, 2, D)
        alpha = autodiff.tanh(out[:, 1] / self.scale_bound) * self.scale_bound
        return out[:, 0], alpha

    def forward(self, x, cond=None):
        _check_input(x, self.shape, "MAFLayer")
        mu, alpha = self._mu_alpha(x, cond)
        return (x - mu) * autodiff.exp(-alpha), -alpha.sum(dim=1)

    def inverse(self, u, cond=None):
        """D passes: pass k fixes the k-th dimension of the ordering (and keeps the others
        it has fixed, since their mu, alpha depend only on dimensions fixed before them)."""
        _check_input(u, self.shape, "MAFLayer")
        x = autodiff.zeros_like(u)
        for _ in range(self.shape[0]):
            mu, alpha = self._mu_alpha(x, cond)
            x = u * autodiff.exp(alpha) + mu
        return x, alpha.sum(dim=1)


class Flatten(Bijection):
    """(C, H, W) -> (C * H * W,): a reshape, log-det 0 (so a MADE can model images)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x, cond=None):
        _check_input(x, self.shape, "Flatten")
        return x.reshape(x.shape[0], -1), autodiff.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z, cond=None):
        return z.reshape((z.shape[0],) + self.shape), autodiff.zeros(z.shape[0], dtype=z.dtype)

    def output_shape(self, shape):
        return (math.prod(shape),)


def autoregressive_bijection(config, shape, cond_features=0):
    """MAF (or IAF, ``architecture="iaf"``): ``num_layers`` MADE layers, the ordering reversed
    between them, optional batch norm; images are logit-preprocessed and flattened first."""
    arch = config.get("architecture", "maf")
    layers = []
    if len(shape) == 3:
        layers += [LogitPreprocess(shape, alpha=config.get("alpha", 1e-6),
                                   value_range=tuple(config.get("value_range", (0.0, 1.0)))),
                   Flatten(shape)]
    elif len(shape) != 1:
        raise ValueError(f"maf: examples must be vectors (D,) or images (C, H, W), got {shape}")
    d = math.prod(shape)
    k = int(config["num_layers"])
    hidden = config.get("hidden", [128, 128])
    hidden = [hidden] * 2 if isinstance(hidden, int) else list(hidden)
    for i in range(k):
        layer = MAFLayer(d, hidden, cond_features=cond_features,
                         scale_bound=config.get("scale_bound", 3.0),
                         activation=config.get("activation", "relu"), seed=i)
        layers.append(Inverse(layer) if arch == "iaf" else layer)
        if i < k - 1:
            if config.get("batch_norm"):
                layers.append(BatchNormFlow((d,)))
            layers.append(Permutation.reverse(d))
    return Compose(layers)
