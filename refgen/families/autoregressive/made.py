"""Family ``made``: the masked autoencoder for distribution estimation (Germain et al. 2015).

An autoregressive model in one network pass: with the masks of
``refgen.families.common.made`` the MLP's output for dimension d sees only the inputs that
come before d in the ordering, so

    log p_theta(x) = sum_d log p_theta(x_d | x_{<d})                    (Germain et al., eq. 1)

is exact and costs ONE forward pass; sampling costs D passes (``nfe_per_sample = D``), one
dimension at a time in the ordering. The conditionals are a head of
``refgen.families.autoregressive.heads``: Bernoulli logits for binary pixels, a 256-way (or
L-way) softmax or a discretized logistic mixture for quantised pixels, a Gaussian mixture for
continuous 2-D points.

Connectivity-agnostic training (sec. 4): with ``num_masks = K > 1`` step s trains mask set
s mod K; at test time the masks form an ensemble, a MIXTURE of the K autoregressive models

    p_ens(x) = (1/K) sum_k p_k(x),   log p_ens(x) = logsumexp_k log p_k(x) - log K

(an average of probabilities, not of logits; ``eval_masks`` of them). Sampling the mixture
draws a mask set uniformly per example, then samples that model.

Binarized MNIST (``binarize="dynamic"``): training batches are fresh Bernoulli(x) draws
(``refgen.data.preprocessing.binarize_dynamic``, with the loop's checkpointed generator);
evaluation uses ONE fixed draw of the test set, ``binarize_fixed(x, seed=0)`` (not the
Larochelle & Murray 2011 file).

Direct connections (``direct``; by default on for binary pixels, the Bernoulli head): the
network adds a masked linear map from x_{<d} straight to output d
(``refgen.families.common.made``), a fully visible sigmoid belief net beside the hidden
layer, as in Germain et al.'s binarized-MNIST experiments.

Condition: with ``conditional = True`` a class label y enters as a one-hot vector connected
to every layer without a mask (``MADE(cond_dim=num_classes)``).
"""
import math

import autodiff
from autodiff import backend as B

from ..common.made import MADE
from .model import AutoregressiveModel

__all__ = ["MADEModel", "default_config", "build", "train_defaults", "smoke_config",
           "SMOKE_DATA", "kind"]

kind = "autoregressive"
SMOKE_DATA = ["ring8:std=0.1", "digits"]


def default_config(data_info):
    """784-500-784 style (with direct connections for binary pixels); two layers of 128 for
    2-D points. A checkpoint whose config predates the ``direct`` key builds without it (the
    default then)."""
    info = dict(data_info or {})
    points = info.get("kind") != "image"
    return {
        "hidden_sizes": [128, 128] if points else [500],
        "head": "auto",             # bernoulli | categorical | dmol | gmm | auto (model.auto_head)
        "num_components": 10 if points else 5,
        "ordering": "natural",      # natural | reversed | random (order-agnostic)
        "hidden_degrees": "random",  # random (Germain et al.) | sequential
        "num_masks": 1,             # mask sets trained in turn (connectivity-agnostic)
        "eval_masks": None,         # masks in the test-time ensemble (None: all)
        "mask_seed": 0,
        "activation": "relu",
        # the masked direct input-to-output map (Germain et al.'s code, direct_input_connect=
        # "Output"): None = on for binary pixels (the Bernoulli head; binarized MNIST 91.5
        # against 105.4 nats after 3 minutes, QUALITY.md), off otherwise (with a softmax or
        # mixture head it costs P x D^2 weights: 9.2M for the mixture on 8-bit MNIST)
        "direct": None,
        "binarize": None,           # None | "dynamic" (fresh Bernoulli(x) per batch)
        "conditional": False,       # class-conditional through a one-hot label
    }


def train_defaults(data_info):
    info = dict(data_info or {})
    if info.get("kind") != "image":
        return {"steps": 10000, "batch_size": 256, "lr": 3e-3, "lr_schedule": "cosine",
                "log_every": 100, "eval_every": 2000, "checkpoint_every": 2000}
    return {"steps": 5000, "batch_size": 100, "lr": 1e-3, "log_every": 100,
            "eval_every": 1000, "checkpoint_every": 1000}


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(hidden_sizes=[16], num_components=2, num_masks=2)
    return config


class MADEModel(AutoregressiveModel):
    """MADE as a ``GenerativeModel`` (player ``"model"``); see the module docstring."""

    family = "made"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.num_masks = int(c.get("num_masks", 1))
        eval_masks = c.get("eval_masks")
        self.eval_masks = self.num_masks if eval_masks is None else int(eval_masks)
        if not 1 <= self.eval_masks <= self.num_masks:
            raise ValueError(f"made: eval_masks must be in 1..num_masks={self.num_masks}, "
                             f"got {eval_masks!r}")
        self.net = MADE(self.num_dims, c.get("hidden_sizes", [500]),
                        outputs_per_dim=self.head.outputs_per_dim,
                        cond_dim=self.num_classes if self.conditional else 0,
                        ordering=c.get("ordering", "natural"),
                        hidden_degrees=c.get("hidden_degrees", "random"),
                        num_masks=self.num_masks, seed=int(c.get("mask_seed", 0)),
                        activation=c.get("activation", "relu"),
                        direct=self._direct(c.get("direct", False)))
        if self.head_name == "gmm":
            self._spread_initial_means()

    def _direct(self, direct):
        """The ``direct`` setting: True/False as given; None (the default) is on exactly for
        the Bernoulli head. A config without the key (an older checkpoint) means False."""
        if direct is None:
            return self.head_name == "bernoulli"
        if not isinstance(direct, bool):
            raise ValueError(f"made: direct must be true, false or null (auto), got {direct!r}")
        return direct

    def _spread_initial_means(self):
        """Start the K Gaussian means of every dimension at K points evenly spread over
        [-2, 2] (the output biases), instead of all near 0: the components then start apart
        and do not have to break their symmetry by gradient noise (with all means at 0 a
        mixture fit of the ring's first coordinate stalls in a wide-component optimum)."""
        K, D = self.head.K, self.num_dims
        out = self.net.layers[-1]
        bias = out.bias.data.reshape(3 * K, D)          # rows: logits, means, log-scales
        bias[K:2 * K, :] = B.xp.linspace(-2.0, 2.0, K, dtype=bias.dtype)[:, None]
        out.bias.data = bias.reshape(-1)

    def _one_hot(self, labels):
        """The condition c (N, num_classes) MADE sees: one-hot labels, or None."""
        if labels is None:
            return None
        dtype = self.net.layers[0].weight.dtype
        return autodiff.Tensor(B.xp.eye(self.num_classes, dtype=dtype)[labels])

    def _use_mask(self, k):
        """Install mask set k unless it is installed already: with one mask set, rebuilding
        the degrees and masks every step cost about 5 % of a binarized-MNIST step."""
        if self.net.mask_index != int(k):
            self.net.set_mask(k)

    def _log_prob_mask(self, x_flat, c, k):
        """log p_k(x) (N,) under mask set k: one network pass, summed over dimensions."""
        self._use_mask(k)
        params = self.net(self._scaled(x_flat), c)             # (N, P, D)
        return self.head.log_prob(params, x_flat).sum(dim=1)

    def log_prob_flat(self, x_flat, labels, step=None):
        """Training (``step`` given): mask set step mod num_masks, so a resumed run sees the
        same masks (connectivity-agnostic training). Otherwise the ensemble:
        log p_ens(x) = logsumexp_k log p_k(x) - log K over ``eval_masks`` mask sets."""
        c = self._one_hot(labels)
        if step is not None:
            return self._log_prob_mask(x_flat, c, step % self.num_masks)
        previous = self.net.mask_index
        per_mask = [self._log_prob_mask(x_flat, c, k) for k in range(self.eval_masks)]
        self._use_mask(previous)
        if len(per_mask) == 1:
            return per_mask[0]
        stacked = autodiff.stack(per_mask, dim=0)              # (K, N)
        return autodiff.logsumexp(stacked, dim=0) - math.log(len(per_mask))

    def evaluate(self, dataset, ctx=None, batch_size=500, max_examples=None):
        out = super().evaluate(dataset, ctx, batch_size=batch_size, max_examples=max_examples)
        out["masks_in_ensemble"] = float(self.eval_masks)
        return out

    def sample(self, n, generator=None, cond=None, temperature=None, **options):
        """n samples (n, *example_shape), one dimension at a time in the mask set's
        ordering: x_d ~ p(x_d | x_{<d}) from the d-th output of a full pass (D passes).
        The ensemble is a mixture: each sample draws its mask set uniformly."""
        n, gen, labels, T = self._sample_setup(n, generator, cond, temperature, options)
        c_all = self._one_hot(labels)
        x = B.xp.zeros((n, self.num_dims), dtype=self.net.layers[0].weight.dtype)
        which = gen.integers(0, self.eval_masks, (n,)) if self.eval_masks > 1 else \
            B.xp.zeros(n, dtype=B.xp.int64)
        previous = self.net.mask_index
        with autodiff.no_grad():
            for k in range(self.eval_masks):
                rows = B.xp.nonzero(which == k)[0]
                if rows.size == 0:
                    continue
                self.net.set_mask(k)
                xk = x[rows]
                ck = None if c_all is None else autodiff.Tensor(c_all.data[rows])
                for d in B.to_numpy(self.net.order).tolist():
                    params = self.net(self._scaled(autodiff.Tensor(xk)), ck)   # (n_k, P, D)
                    xk[:, d] = self.head.sample(params[:, :, d:d + 1], gen, T)[:, 0]
                x[rows] = xk
        self.net.set_mask(previous)
        return autodiff.Tensor(x.reshape((n,) + self.example_shape))

    @property
    def nfe_per_sample(self):
        """D network passes per sample (one per dimension; the ensemble picks one mask set
        per sample)."""
        return int(self.num_dims)


def build(config, data_info=None):
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    return MADEModel(config)
