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

Condition: with ``conditional = True`` a class label y enters as a one-hot vector connected
to every layer without a mask (``MADE(cond_dim=num_classes)``).
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B

from ..base import GenerativeModel, check_sample_options
from ..common.made import MADE
from . import heads as H

__all__ = ["MADEModel", "default_config", "build", "train_defaults", "smoke_config",
           "SMOKE_DATA", "kind"]

kind = "autoregressive"
SMOKE_DATA = ["ring8:std=0.1", "digits"]


def _auto_head(data_info, binarize):
    """The head that fits the data: Bernoulli for binary (or binarized) pixels, a softmax
    over up to 64 levels, a discretized logistic mixture beyond (a 256-way softmax on 784
    pixels is 200k outputs), a Gaussian mixture for points."""
    info = dict(data_info or {})
    if binarize == "dynamic" or info.get("binary"):
        return "bernoulli"
    if info.get("kind") != "image" or not info.get("levels"):
        return "gmm"
    return "categorical" if int(info["levels"]) <= 64 else "dmol"


def default_config(data_info):
    """784-500-784 style: one hidden layer of 500 for images, two of 128 for 2-D points."""
    info = dict(data_info or {})
    points = info.get("kind") != "image"
    return {
        "hidden_sizes": [128, 128] if points else [500],
        "head": "auto",             # bernoulli | categorical | dmol | gmm | auto (_auto_head)
        "num_components": 10 if points else 5,
        "ordering": "natural",      # natural | reversed | random (order-agnostic)
        "hidden_degrees": "random",  # random (Germain et al.) | sequential
        "num_masks": 1,             # mask sets trained in turn (connectivity-agnostic)
        "eval_masks": None,         # masks in the test-time ensemble (None: all)
        "mask_seed": 0,
        "activation": "relu",
        "binarize": None,           # None | "dynamic" (fresh Bernoulli(x) per batch)
        "conditional": False,       # class-conditional through a one-hot label
    }


def train_defaults(data_info):
    info = dict(data_info or {})
    if info.get("kind") != "image":
        return {"steps": 3000, "batch_size": 256, "lr": 3e-3, "log_every": 100,
                "eval_every": 1000, "checkpoint_every": 1000}
    return {"steps": 5000, "batch_size": 100, "lr": 1e-3, "log_every": 100,
            "eval_every": 1000, "checkpoint_every": 1000}


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(hidden_sizes=[16], num_components=2, num_masks=2)
    return config


class MADEModel(GenerativeModel):
    """MADE as a ``GenerativeModel`` (player ``"model"``); see the module docstring."""

    family = "made"
    kind = "autoregressive"
    likelihood_kind = "exact"
    sample_options = ("temperature",)

    def __init__(self, config):
        super().__init__(config)
        if not self.example_shape:
            raise ValueError("made: config['data_info'] must give the example 'shape'")
        c = self.config
        self.binarize = c.get("binarize")
        if self.binarize not in (None, "dynamic"):
            raise ValueError(f"made: binarize must be None or 'dynamic', got {self.binarize!r}")
        head = c.get("head", "auto")
        self.head_name = _auto_head(self.data_info, self.binarize) if head == "auto" else head
        if self.binarize == "dynamic" and self.head_name != "bernoulli":
            raise ValueError(f"made: binarize='dynamic' needs head 'bernoulli', got "
                             f"{self.head_name!r}")
        self.head = H.make_head(self.head_name, self.data_info, int(c.get("num_components", 5)))
        self.discrete = self.head.discrete
        self.conditional = bool(c.get("conditional", False))
        self.num_classes = int(self.data_info.get("num_classes") or 0)
        if self.conditional and not self.num_classes:
            raise ValueError("made: conditional=True needs labelled data (data_info "
                             "'num_classes')")
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
                        activation=c.get("activation", "relu"))

    # ---- the Trainable side
    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    def training_step(self, batch, step, ctx):
        x, y = batch
        if self.binarize == "dynamic":
            from ...data.preprocessing import binarize_dynamic
            x = binarize_dynamic(x, ctx.generator)
        # connectivity-agnostic training: the mask set follows the step, so a resumed run
        # sees the same sequence of masks
        log_px = self._log_prob_mask(self._flat(x), self._cond(y), step % self.num_masks)
        loss = -log_px.mean()                      # nats per example
        ctx.optimize("model", loss)
        value = float(loss.item())
        return {"loss": value, "bpd": value / (self.num_dims * math.log(2.0))}

    # ---- helpers
    def _flat(self, x):
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        if tuple(x.shape[1:]) != self.example_shape:
            raise ValueError(f"made: x must have shape (N, {', '.join(map(str, self.example_shape))})"
                             f", got {tuple(x.shape)}")
        return x.reshape(x.shape[0], self.num_dims)

    def _inputs(self, x_flat):
        """What the network sees: pixels mapped to [-1, 1]; points as they are."""
        if self.data_info.get("kind") == "image":
            lo, hi = self.value_range
            return (x_flat - lo) * (2.0 / (hi - lo)) - 1.0
        return x_flat

    def _cond(self, y, n=None):
        """One-hot labels (N, num_classes) for a conditional model, else None."""
        if not self.conditional:
            return None
        if y is None:
            raise ValueError("made: this model is class-conditional; give labels (cond)")
        labels = y.data if isinstance(y, autodiff.Tensor) else B.xp.asarray(y)
        labels = labels.reshape(-1).astype(B.xp.int64)
        if (n is not None and labels.shape[0] != n) or labels.size and (
                int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"made: cond must be {n if n is not None else 'N'} labels in "
                             f"0..{self.num_classes - 1}, got shape {tuple(labels.shape)}")
        dtype = self.net.layers[0].weight.dtype
        return autodiff.Tensor(B.xp.eye(self.num_classes, dtype=dtype)[labels])

    def _log_prob_mask(self, x_flat, cond, k):
        """log p_k(x) (N,) under mask set k: one network pass, summed over dimensions."""
        self.net.set_mask(k)
        params = self.net(self._inputs(x_flat), cond)          # (N, P, D)
        return self.head.log_prob(params, x_flat).sum(dim=1)

    # ---- the generative interface
    def log_prob(self, x, cond=None):
        """log p_ens(x) (N,) nats: the log-mean-exp over ``eval_masks`` mask sets."""
        x_flat = self._flat(x)
        c = self._cond(cond, x_flat.shape[0])
        previous = self.net.mask_index
        per_mask = [self._log_prob_mask(x_flat, c, k) for k in range(self.eval_masks)]
        self.net.set_mask(previous)
        if len(per_mask) == 1:
            return per_mask[0]
        stacked = autodiff.stack(per_mask, dim=0)              # (K, N)
        return autodiff.logsumexp(stacked, dim=0) - math.log(len(per_mask))

    def bits_per_dim(self, x, cond=None, generator=None):
        """As ``GenerativeModel.bits_per_dim``; a model of binarized data binarizes grey
        values first with one Bernoulli(x) draw from ``generator`` (default Generator(0))."""
        if self.binarize == "dynamic":
            x = self._binarized(x, generator)
        return super().bits_per_dim(x, cond=cond, generator=generator)

    def _binarized(self, x, generator=None):
        from ...data.preprocessing import binarize_dynamic
        data = x.data if isinstance(x, autodiff.Tensor) else B.xp.asarray(x)
        if data.size and bool(B.xp.all((data == 0) | (data == 1))):
            return x
        return binarize_dynamic(autodiff.Tensor(data), generator or autodiff.Generator(0))

    def evaluate(self, dataset, ctx=None, batch_size=500, max_examples=None):
        """Exact NLL (nats per example) and bits/dim. With ``binarize="dynamic"`` the
        examples are binarized once, ``binarize_fixed(x, seed=0)`` over the whole split."""
        if self.binarize == "dynamic":
            from ...data.preprocessing import binarize_fixed
            data = B.xp.asarray(dataset.x)
            if not bool(B.xp.all((data == 0) | (data == 1))):
                dataset = _Fixed(binarize_fixed(data, seed=0), getattr(dataset, "y", None))
        out = super().evaluate(dataset, ctx, batch_size=batch_size, max_examples=max_examples)
        out["masks_in_ensemble"] = float(self.eval_masks)
        return out

    def sample(self, n, generator=None, cond=None, temperature=None, **options):
        """n samples (n, *example_shape), one dimension at a time in the mask set's
        ordering: x_d ~ p(x_d | x_{<d}) from the d-th output of a full pass (D passes)."""
        check_sample_options("made", options, self.sample_options)
        n = int(n)
        if n < 1:
            raise ValueError(f"made.sample: n must be >= 1, got {n!r}")
        T = 1.0 if temperature is None else float(temperature)
        if not T > 0:
            raise ValueError(f"made.sample: temperature must be > 0, got {temperature!r}")
        gen = generator if generator is not None else autodiff.default_generator()
        if self.conditional and cond is None:     # no label: a uniform class per sample
            cond = gen.integers(0, self.num_classes, (n,))
        elif cond is not None:
            cond = B.xp.broadcast_to(B.xp.asarray(cond.data if isinstance(
                cond, autodiff.Tensor) else cond).reshape(-1), (n,))
        c_all = self._cond(cond, n)
        dtype = self.net.layers[0].weight.dtype
        D = self.num_dims
        x = B.xp.zeros((n, D), dtype=dtype)
        # the ensemble is a mixture: each sample draws its mask set uniformly
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
                    params = self.net(self._inputs(autodiff.Tensor(xk)), ck)   # (n_k, P, D)
                    xk[:, d] = self.head.sample(params[:, :, d:d + 1], gen, T)[:, 0]
                x[rows] = xk
        self.net.set_mask(previous)
        return autodiff.Tensor(x.reshape((n,) + self.example_shape))

    @property
    def nfe_per_sample(self):
        """D network passes per sample (one per dimension; the ensemble picks one mask set
        per sample)."""
        return int(self.num_dims)


class _Fixed:
    """A data set's stand-in holding its binarized examples (for ``evaluate``)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return int(self.x.shape[0])


def build(config, data_info=None):
    config = dict(config)
    if data_info is not None and "data_info" not in config:
        from ..base import data_info_for_config
        config["data_info"] = data_info_for_config(data_info)
    return MADEModel(config)
