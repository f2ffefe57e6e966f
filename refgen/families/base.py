"""The interface every generative family shares, as code: ``GenerativeModel``.

A generative model in refgen is a ``Trainable`` (what ``refgen.train.fit`` trains:
``config``, ``modules()``, ``parameter_groups()``, ``training_step(batch, step, ctx)``,
``evaluate(dataset, ctx)``) that also answers the questions every family answers alike, so
that ``refgen train/sample/eval``, ``refgen.load`` and the comparison tables treat the
seven families the same way:

==================  ===========================================================================
``kind``            one of ``KINDS``, the taxonomy's seven families
``family``          the registry name (``made``, ``vae``, ``realnvp``, ``ddpm``, ...)
``sample(n, generator=None, cond=None, **options)``
                    a Tensor ``(n, *example_shape)`` in the data's value range; ``options`` are
                    the family's sampler settings (``sampler``, ``steps``, ``guidance``,
                    ``temperature``, ...): an option the family does not know is an error
                    naming it (``check_sample_options``)
``log_prob(x, cond=None)``
                    per-example log-likelihood in nats, shape ``(N,)``; what it is
                    (exact, a bound, an estimate, an ODE likelihood) is ``likelihood_kind``
``likelihood_kind`` one of ``LIKELIHOOD_KINDS``; ``"none"`` for a family without one (GANs)
``discrete``        True when ``log_prob`` is a probability MASS of the stored integer data
                    (Bernoulli pixels, a 256-way softmax, a discretized logistic); False when it
                    is a DENSITY of continuous (dequantized) data
``bits_per_dim(x, cond=None, generator=None)``
                    per-example bits per dimension, with ``bpd_convention`` saying how the data
                    were made continuous (``refgen.metrics.likelihood`` has the conventions)
``nfe_per_sample``  network evaluations per sample for the sampler in use (sampling cost)
==================  ===========================================================================

A family subclasses ``GenerativeModel``, sets ``kind`` and ``likelihood_kind``, and writes
``modules``, ``parameter_groups``, ``training_step``, ``sample`` and (where it has one)
``log_prob``; ``bits_per_dim`` and ``evaluate`` come from here. The data a model was built
for is described by ``config["data_info"]`` (``data_info_for_config``): the example shape,
the number of grey levels, the value range, the kind (image or points).

Conventions of ``bits_per_dim`` (``refgen.metrics.likelihood``):

* ``discrete``: bpd = -log P(k) / (D log 2) on the stored values, exactly;
* continuous image data with ``L`` levels stored as x = k / (L - 1): the examples are
  dequantized, x' = (k + u) / L with u ~ U[0, 1) (``refgen.data.preprocessing.dequantize``;
  the data range ``[lo, hi]`` is mapped the same way), and
  bpd = -(log p(x') + D log a) / (D log 2) with a = (hi - lo) / L: an upper bound on the
  discrete bpd (Theis et al. 2016, sec. 3.1), with the log2(L) term included;
* points (2-D data): a density of continuous data, bpd = -log p(x) / (D log 2), no offset.
"""
import math

import autodiff
from autodiff import backend as B

__all__ = ["KINDS", "LIKELIHOOD_KINDS", "GenerativeModel", "data_info_for_config",
           "with_data_info", "check_sample_options", "check_kind"]

# The taxonomy's seven families (GUIDE.md, "Families").
KINDS = ("autoregressive", "vae", "gan", "flow", "diffusion", "score", "energy")

# What ``log_prob`` returns, per family.
LIKELIHOOD_KINDS = {
    "exact": "the exact log-likelihood (autoregressive models, normalizing flows)",
    "bound": "a lower bound on the log-likelihood (a VAE's ELBO or IWAE, diffusion's VLB): "
             "its bits/dim are an upper bound",
    "estimate": "a Monte Carlo estimate (importance sampling, AIS) with a standard error",
    "ode": "the probability-flow ODE likelihood by the instantaneous change of variables "
           "(exact up to the solver's tolerance, or unbiased with Hutchinson's trace)",
    "none": "no likelihood (GANs): judged by sample metrics only",
}

# How bits/dim come from each kind of likelihood (the first words of ``bpd_convention``).
_BPD_SOURCE = {
    "exact": "exact log-likelihood",
    "bound": "from a lower bound on log p(x), so an upper bound on the model's bits/dim",
    "estimate": "from a Monte Carlo estimate of log p(x)",
    "ode": "from the probability-flow ODE log-likelihood",
}

# What a family's config keeps of the data set it was built for (all JSON-able).
_DATA_INFO_KEYS = ("name", "kind", "shape", "levels", "value_range", "num_classes", "binary")


def check_kind(kind, who):
    """``kind`` must be one of ``KINDS``; the error names the family."""
    if kind not in KINDS:
        raise ValueError(f"{who}: kind must be one of {', '.join(KINDS)}, got {kind!r}")


def data_info_for_config(info):
    """The JSON-able part of ``ArrayDataset.info`` a model needs to rebuild and evaluate
    itself: name, kind ('image' or 'points'), example shape, grey levels, value range,
    class count, whether the data are binary."""
    info = dict(info or {})
    out = {}
    for key in _DATA_INFO_KEYS:
        if key in info and info[key] is not None:
            value = info[key]
            out[key] = list(value) if isinstance(value, tuple) else value
    if "shape" not in out:
        raise ValueError("the data set's info has no example 'shape'; a generative model needs "
                         "it to know what it models")
    out["shape"] = [int(s) for s in out["shape"]]
    return out


def with_data_info(config, data_info=None):
    """A copy of ``config`` that holds ``data_info`` (as ``data_info_for_config`` keeps it)
    unless it has its own: what every family's ``build(config, data_info)`` does first."""
    config = dict(config)
    if data_info is not None and "data_info" not in config:
        config["data_info"] = data_info_for_config(data_info)
    return config


def check_sample_options(who, options, known):
    """Refuse a sampler option the family does not have, naming it and the known ones."""
    unknown = sorted(k for k, v in options.items() if v is not None and k not in known)
    if unknown:
        raise ValueError(f"{who}.sample: unknown option(s) {', '.join(unknown)}; this family "
                         f"takes: {', '.join(sorted(known)) or '(none)'}")


class GenerativeModel:
    """Base class of every generative family (see the module docstring for the interface).

    :param config: the model's JSON-able config; ``config["data_info"]`` describes the data
        (``data_info_for_config``).
    """

    family = None           # registry name; the loop records it in checkpoints
    kind = None             # one of KINDS
    likelihood_kind = "none"
    discrete = False        # log_prob is a probability mass of the stored values
    sample_options = ()     # names of the options sample() accepts

    def __init__(self, config):
        self.config = dict(config)
        self.data_info = dict(self.config.get("data_info") or {})

    # ---- what the data look like
    @property
    def example_shape(self):
        """The shape of one example, e.g. (1, 28, 28) or (2,)."""
        return tuple(int(s) for s in self.data_info.get("shape", ()))

    @property
    def num_dims(self):
        """D, the number of dimensions of one example."""
        return math.prod(self.example_shape) if self.example_shape else 0

    @property
    def value_range(self):
        return tuple(float(v) for v in self.data_info.get("value_range", (0.0, 1.0)))

    @property
    def levels(self):
        """Grey levels L of image data (None for continuous data such as 2-D points)."""
        if self.data_info.get("kind") != "image":
            return None
        levels = self.data_info.get("levels")
        return int(levels) if levels else None

    # ---- the interface a family fills in
    def sample(self, n, generator=None, cond=None, **options):
        """n samples, a Tensor (n, *example_shape) in the data's value range."""
        raise NotImplementedError(f"family {self.family!r} does not sample")

    def log_prob(self, x, cond=None):
        """log p_theta(x) per example in nats, shape (N,) (see ``likelihood_kind``)."""
        raise NotImplementedError(f"family {self.family!r} has no likelihood "
                                  f"(likelihood_kind = {self.likelihood_kind!r})")

    @property
    def nfe_per_sample(self):
        """Network evaluations per sample with the default sampler."""
        raise NotImplementedError(f"family {self.family!r} does not say its nfe_per_sample")

    # ---- derived: bits per dimension and the default evaluation
    @property
    def has_likelihood(self):
        return self.likelihood_kind != "none"

    @property
    def bpd_convention(self):
        """How the data were made continuous for ``bits_per_dim`` (None without a
        likelihood)."""
        if not self.has_likelihood:
            return None
        what = _BPD_SOURCE[self.likelihood_kind]
        if self.discrete:
            return f"{what}; a probability mass of the stored values, no dequantization"
        if self.levels:
            lo, hi = self.value_range
            return (f"{what}; uniform dequantization x = lo + (hi - lo)(k + u)/{self.levels} "
                    f"on [{lo:g}, {hi:g}], + log2({self.levels}) bits/dim offset included: "
                    "an upper bound on the discrete bpd")
        return f"{what}; a density of continuous data, no dequantization"

    def dequantize(self, x, generator=None):
        """x = lo + (hi - lo) k/(L - 1) stored -> lo + (hi - lo)(k + u)/L, u ~ U[0, 1)."""
        from ..data import preprocessing
        lo, hi = self.value_range
        unit = (x - lo) / (hi - lo)
        return lo + (hi - lo) * preprocessing.dequantize(unit, self.levels, generator=generator)

    def bits_per_dim(self, x, cond=None, generator=None):
        """Per-example bits per dimension (N,) of stored examples x (see ``bpd_convention``)."""
        from ..metrics.likelihood import bits_per_dim, bits_per_dim_discrete
        if not self.has_likelihood:
            raise NotImplementedError(f"family {self.family!r} has no likelihood")
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        d = self.num_dims or math.prod(int(s) for s in x.shape[1:])
        if self.discrete:
            return bits_per_dim_discrete(_data(self.log_prob(x, cond=cond)), d)
        scale = 1.0
        if self.levels:
            x = autodiff.Tensor(self.dequantize(x.data, generator=generator))
            lo, hi = self.value_range
            scale = (hi - lo) / self.levels
        return bits_per_dim(_data(self.log_prob(x, cond=cond)), d, scale)

    def evaluate(self, dataset, ctx=None, batch_size=500, max_examples=None):
        """Mean negative log-likelihood (nats per example) and bits/dim on ``dataset``.

        The default for families with a likelihood; ``max_examples`` caps the cost (the
        first so many examples). Families add their own numbers by overriding and calling
        this. Without a likelihood, an empty dict.
        """
        if not self.has_likelihood:
            return {}
        generator = ctx.generator if ctx is not None and getattr(ctx, "generator", None) \
            else autodiff.Generator(0)
        n = len(dataset) if max_examples is None else min(len(dataset), int(max_examples))
        d = self.num_dims
        total_bpd = 0.0
        with autodiff.no_grad():
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                x = autodiff.Tensor(dataset.x[start:stop])
                cond = None
                if getattr(dataset, "y", None) is not None and self.config.get("conditional"):
                    cond = autodiff.Tensor(dataset.y[start:stop])
                bpd = B.xp.asarray(self.bits_per_dim(x, cond=cond, generator=generator))
                total_bpd += float(bpd.sum())
        mean_bpd = total_bpd / n
        # nll in nats per example in the same convention as bpd (offset included)
        total_nll = mean_bpd * d * math.log(2.0)
        name = "nll" if self.likelihood_kind in ("exact", "ode") else \
            ("neg_elbo" if self.likelihood_kind == "bound" else "nll_estimate")
        return {name: total_nll, "bpd": mean_bpd}


def _data(t):
    return t.data if isinstance(t, autodiff.Tensor) else t
