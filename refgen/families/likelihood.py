"""A model's bits per dimension on a data set: the families' side of the likelihood.

Metrics judge samples and features (``refgen.metrics``); evaluating a MODEL's likelihood
belongs with the family interface (``refgen.families.base``), which is why this lives here.
The conversion formulas themselves (nats to bits/dim, the dequantization offset) are
``refgen.metrics.likelihood``'s.
"""
import math

import autodiff
from autodiff import backend as B

from .base import GenerativeModel

__all__ = ["has_likelihood", "model_bits_per_dim"]


def has_likelihood(model):
    """Whether ``model`` has a likelihood: its ``likelihood_kind`` is not "none" (a
    ``GenerativeModel``), or it has a ``bits_per_dim`` or ``log_prob`` method."""
    kind = getattr(model, "likelihood_kind", None)
    if kind is not None:
        return kind != "none"
    return any(callable(getattr(model, m, None)) for m in ("bits_per_dim", "log_prob"))


def model_bits_per_dim(model, dataset, batch_size=500, seed=0, family_results=None):
    """Mean bits per dimension of a model on a data set, and the convention behind it.

    Looked for, in order:

    1. ``model.bits_per_dim(x)`` -> per-example bpd (N,) or their mean, on the data set's
       stored examples ``x``: the family applies its own dequantization; its convention is
       ``model.bpd_convention`` (a string) when it has one;
    2. ``model.log_prob(x)`` -> log p_X(x) in nats per example, (N,). For image data with
       ``info["levels"]`` = L the examples are uniformly dequantized first,
       x = (k + u) / L (``refgen.data.preprocessing.dequantize``, ``Generator(seed)``), and
       bpd = -(log p_X(x) + D log(1/L)) / (D log 2) (``refgen.metrics.bits_per_dim`` with
       data_scale 1/L): an upper bound on the discrete bpd (Theis et al. 2016). Other data
       (2-D points) are continuous: bpd = -log p_X(x) / (D log 2), no offset;
    3. ``family_results["bpd"]`` (what the family's ``evaluate`` reported).

    :raises ValueError: none of these exists (the message says what a family must provide).
    :return: (mean bpd, convention text).
    """
    from ..data import preprocessing
    from ..metrics.likelihood import bits_per_dim
    if isinstance(model, GenerativeModel) and not model.has_likelihood:
        raise ValueError(f"bits per dimension needs a likelihood: family {model.family!r} "
                         f"(kind {model.kind!r}) has likelihood_kind 'none'")
    x_all = dataset.x
    n, dims = int(x_all.shape[0]), math.prod(int(s) for s in x_all.shape[1:])
    method = getattr(model, "bits_per_dim", None)
    gen = autodiff.Generator(seed)
    total = 0.0
    if callable(method) or callable(getattr(model, "log_prob", None)):
        levels = dataset.info.get("levels") if dataset.info.get("kind") == "image" else None
        with autodiff.no_grad():
            for start in range(0, n, int(batch_size)):
                x = x_all[start:start + int(batch_size)]
                if isinstance(model, GenerativeModel):   # dequantizes with our generator
                    v = method(autodiff.Tensor(x), generator=gen)
                elif callable(method):
                    v = method(autodiff.Tensor(x))
                else:
                    if levels:
                        x = preprocessing.dequantize(x, levels, generator=gen)
                    log_px = model.log_prob(autodiff.Tensor(x))
                    log_px = log_px.data if isinstance(log_px, autodiff.Tensor) else log_px
                    v = bits_per_dim(log_px, dims, 1.0 / levels if levels else 1.0)
                v = v.data if isinstance(v, autodiff.Tensor) else v
                v = B.xp.asarray(v, dtype=B.xp.float64)
                # a per-batch mean counts once per example it stands for
                total += float(v.sum()) if v.ndim else float(v) * int(x.shape[0])
        if callable(method):
            text = getattr(model, "bpd_convention", "the family's bits_per_dim")
        elif levels:
            text = (f"uniform dequantization (k + u)/{levels}, + log2({levels}) bits/dim "
                    "offset: an upper bound on the discrete bpd")
        else:
            text = "continuous density, no dequantization"
        return total / n, text
    if family_results and "bpd" in family_results:
        return float(family_results["bpd"]), "as the family's evaluate reports it"
    raise ValueError(f"bits per dimension needs a likelihood: family "
                     f"{getattr(model, 'family', '?')!r} has no bits_per_dim(x) or log_prob(x) "
                     "method and its evaluate() reports no 'bpd'")
