"""``AutoregressiveModel``: what MADE and PixelCNN share as generative models.

Both compute, in ONE network pass, the parameters ``(N, P, D)`` of every conditional
p_theta(x_d | x_{<d}) and turn them into

    log p_theta(x) = sum_d log p_theta(x_d | x_{<d})          (the exact likelihood)

through a head (``heads.py``); both sample one dimension at a time, one pass per dimension.
This class holds the rest, written once:

* the choice of head for the data (``auto_head``);
* dynamic binarization of training batches (``binarize="dynamic"``) and the ONE fixed
  binarization of the evaluation data, ``binarize_fixed(x, seed=0)``;
* class labels (``conditional=True``): int64 labels (N,) checked against ``num_classes``;
* the training step (mean negative log-likelihood, nats per example) and evaluation.

A subclass sets ``family``, builds ``self.net`` and writes ``log_prob_flat(x_flat, labels,
step=None)`` -> (N,) and ``sample``.
"""
import math

import autodiff
from autodiff import backend as B

from ..base import GenerativeModel, check_sample_options
from . import heads as H

__all__ = ["AutoregressiveModel", "auto_head"]


def auto_head(data_info, binarize=None):
    """The head that fits the data: Bernoulli for binary (or binarized) pixels, a softmax
    over up to 64 levels, a discretized logistic mixture beyond (a 256-way softmax on 784
    pixels is 200k outputs for MADE), a Gaussian mixture for points."""
    info = dict(data_info or {})
    if binarize == "dynamic" or info.get("binary"):
        return "bernoulli"
    if info.get("kind") != "image" or not info.get("levels"):
        return "gmm"
    return "categorical" if int(info["levels"]) <= 64 else "dmol"


def _is_binary(data):
    return not data.size or bool(B.xp.all((data == 0) | (data == 1)))


class AutoregressiveModel(GenerativeModel):
    """The shared part of the autoregressive families (see the module docstring)."""

    kind = "autoregressive"
    likelihood_kind = "exact"
    sample_options = ("temperature",)

    def __init__(self, config):
        super().__init__(config)
        who = self.family or "autoregressive"
        if not self.example_shape:
            raise ValueError(f"{who}: config['data_info'] must give the example 'shape'")
        c = self.config
        self.binarize = c.get("binarize")
        if self.binarize not in (None, "dynamic"):
            raise ValueError(f"{who}: binarize must be None or 'dynamic', got "
                             f"{self.binarize!r}")
        head = c.get("head", "auto")
        self.head_name = auto_head(self.data_info, self.binarize) if head == "auto" else head
        if self.binarize == "dynamic" and self.head_name != "bernoulli":
            raise ValueError(f"{who}: binarize='dynamic' needs head 'bernoulli', got "
                             f"{self.head_name!r}")
        self.head = H.make_head(self.head_name, self.data_info, int(c.get("num_components", 5)))
        self.discrete = self.head.discrete
        self.conditional = bool(c.get("conditional", False))
        self.num_classes = int(self.data_info.get("num_classes") or 0)
        if self.conditional and not self.num_classes:
            raise ValueError(f"{who}: conditional=True needs labelled data (data_info "
                             "'num_classes')")

    # ---- the Trainable side
    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    def training_step(self, batch, step, ctx):
        x, y = batch
        if self.binarize == "dynamic":
            from ...data.preprocessing import binarize_dynamic
            x = binarize_dynamic(x, ctx.generator)   # a fresh draw per batch
        log_px = self.log_prob_flat(self._flat(x), self._labels(y), step=step)
        loss = -log_px.mean()                         # nats per example
        ctx.optimize("model", loss)
        value = float(loss.item())
        return {"loss": value, "bpd": value / (self.num_dims * math.log(2.0))}

    # ---- inputs
    def _flat(self, x):
        """x (N, *example_shape) -> (N, D), refusing any other shape by name."""
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        if tuple(x.shape[1:]) != self.example_shape:
            raise ValueError(f"{self.family}: x must have shape (N, "
                             f"{', '.join(map(str, self.example_shape))}), got "
                             f"{tuple(x.shape)}")
        return x.reshape(x.shape[0], self.num_dims)

    def _scaled(self, x):
        """What the network sees: pixels mapped to [-1, 1]; points as they are."""
        if self.data_info.get("kind") == "image":
            lo, hi = self.value_range
            return (x - lo) * (2.0 / (hi - lo)) - 1.0
        return x

    def _labels(self, y, n=None):
        """int64 labels (N,) for a conditional model (checked), None otherwise."""
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"{self.family}: this model is class-conditional; give labels "
                             "(cond)")
        labels = y.data if isinstance(y, autodiff.Tensor) else B.xp.asarray(y)
        labels = labels.reshape(-1)
        bad = (n is not None and labels.shape[0] != n) or (labels.size and (
            float(labels.min()) < 0 or float(labels.max()) >= self.num_classes
            or bool(B.xp.any(labels != B.xp.rint(labels)))))
        if bad:
            raise ValueError(f"{self.family}: cond must be {n if n is not None else 'N'} "
                             f"labels in 0..{self.num_classes - 1}, got shape "
                             f"{tuple(labels.shape)} with values "
                             f"{B.to_numpy(labels)[:8].tolist()}")
        return labels.astype(B.xp.int64)

    # ---- the generative interface
    def log_prob(self, x, cond=None):
        """log p_theta(x) (N,) in nats, exact."""
        x_flat = self._flat(x)
        return self.log_prob_flat(x_flat, self._labels(cond, x_flat.shape[0]))

    def log_prob_flat(self, x_flat, labels, step=None):
        raise NotImplementedError

    def bits_per_dim(self, x, cond=None, generator=None):
        """As ``GenerativeModel.bits_per_dim``; a model of binarized data binarizes grey
        values first with one Bernoulli(x) draw from ``generator`` (default Generator(0))."""
        if self.binarize == "dynamic":
            from ...data.preprocessing import binarize_dynamic
            data = x.data if isinstance(x, autodiff.Tensor) else B.xp.asarray(x)
            if not _is_binary(data):
                x = binarize_dynamic(autodiff.Tensor(data), generator or autodiff.Generator(0))
        return super().bits_per_dim(x, cond=cond, generator=generator)

    def evaluate(self, dataset, ctx=None, batch_size=500, max_examples=None):
        """Exact NLL (nats per example) and bits/dim. With ``binarize="dynamic"`` the
        examples are binarized once, ``binarize_fixed(x, seed=0)`` over the whole split."""
        if self.binarize == "dynamic":
            from ...data.preprocessing import binarize_fixed
            data = B.xp.asarray(dataset.x)
            if not _is_binary(data):
                dataset = _Binarized(binarize_fixed(data, seed=0), getattr(dataset, "y", None))
        return super().evaluate(dataset, ctx, batch_size=batch_size, max_examples=max_examples)

    def _sample_setup(self, n, generator, cond, temperature, options):
        """Checks of ``sample``'s arguments -> (n, generator, labels or None, T). Without a
        label a conditional model draws a uniform class per sample."""
        check_sample_options(self.family, options, self.sample_options)
        if int(n) != n or int(n) < 1:
            raise ValueError(f"{self.family}.sample: n must be a positive int, got {n!r}")
        n = int(n)
        T = 1.0 if temperature is None else float(temperature)
        if not T > 0:
            raise ValueError(f"{self.family}.sample: temperature must be > 0, got "
                             f"{temperature!r}")
        gen = generator if generator is not None else autodiff.default_generator()
        labels = None
        if cond is not None and not self.conditional:
            raise ValueError(f"{self.family}.sample: a label (cond) was given, but this model "
                             "is not class-conditional (train it with --set conditional=true)")
        if self.conditional:
            if cond is None:
                labels = gen.integers(0, self.num_classes, (n,))
            else:
                c = cond.data if isinstance(cond, autodiff.Tensor) else B.xp.asarray(cond)
                labels = self._labels(B.xp.broadcast_to(c.reshape(-1), (n,)), n)
        return n, gen, labels, T


class _Binarized:
    """A data set's stand-in holding its binarized examples (for ``evaluate``)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return int(self.x.shape[0])
