"""The numbers the zoo records for one trained model: likelihood, sampling cost, sample quality.

Every model is measured by the same code through the family interface
(``refgen.families.base``), so a row of the table means the same thing for every family:

* ``nll``: the held-out likelihood of the kind the model has (``likelihood_kind``: exact,
  a bound, an estimate, an ODE likelihood; empty for "none"), in nats per example on 2-D
  points and in bits per dimension on images (with the dequantization offset, see
  ``GenerativeModel.bpd_convention``); ``kl_nats`` = nll - the true density's entropy on 2-D
  data (KL(p || p_theta), an upper bound when the nll is one);
* ``nfe_per_sample`` and ``samples_per_s``: network evaluations per sample, and samples per
  second of wall-clock time on this machine (sampling in chunks of 500);
* 2-D: ``modes_captured`` and ``hq_share`` (``refgen.metrics.mode_coverage``, 3 sigma);
  images: ``fid``, ``precision``, ``recall``, ``density``, ``coverage`` on the classifier
  features (``refgen.metrics.evaluate_samples``, extractor chosen by the image shape), of
  the samples clipped to the data's range (``outside_value_range``: the share that was not);
* ``params``: the number of trainable numbers.
"""
import math
import time

import autodiff
from autodiff import backend as B

from ..metrics import evaluate_samples, mode_coverage

__all__ = ["COLUMNS", "measure_model", "count_parameters"]

COLUMNS = ("family", "model", "data", "likelihood_kind", "nll", "nll_unit", "nfe_per_sample",
           "samples_per_s", "fid", "precision", "recall", "modes_captured", "hq_share",
           "kl_nats", "params", "train_seconds", "density", "coverage")


def count_parameters(model):
    """Trainable numbers of a family's model (the stored numbers of a baseline)."""
    if hasattr(model, "num_parameters"):
        return int(model.num_parameters)
    return int(sum(p.numel() for group in model.parameter_groups().values() for p in group))


def _draw(model, n, generator, options, chunk=500):
    parts = []
    with autodiff.no_grad():
        for start in range(0, n, chunk):
            x = model.sample(min(chunk, n - start), generator, **options)
            parts.append(x.data if isinstance(x, autodiff.Tensor) else B.to_backend(x))
    return B.xp.concatenate(parts, axis=0)


def _mean_bits_per_dim(model, x, generator, chunk=500):
    total = 0.0
    with autodiff.no_grad():
        for start in range(0, x.shape[0], chunk):
            bpd = model.bits_per_dim(x[start:start + chunk], generator=generator)
            total += float(B.xp.asarray(bpd, dtype=B.xp.float64).sum())
    return total / x.shape[0]


def measure_model(model, test, *, n_eval, n_samples, sample_options=None, seed=0,
                  entropy=None, mixture=None):
    """The zoo's numbers for ``model`` on the ``test`` split (module docstring).

    :param n_eval: test examples for the likelihood (the first so many).
    :param n_samples: samples drawn for the quality metrics and the speed.
    :param entropy: the true density's entropy in nats (2-D), for ``kl_nats``.
    :param mixture: the toy density's name when it is a Gaussian mixture (mode coverage).
    :return: a dict with the columns of ``COLUMNS`` that apply (others absent).
    """
    image = model.data_info.get("kind") == "image"
    row = {"likelihood_kind": model.likelihood_kind}
    if model.likelihood_kind != "none":
        x = test.x[:n_eval]
        bpd = _mean_bits_per_dim(model, x, autodiff.Generator(seed))
        if image:
            row.update(nll=bpd, nll_unit="bits/dim")
        else:   # 2-D points: nats per example (no dequantization offset)
            row.update(nll=bpd * model.num_dims * math.log(2.0), nll_unit="nats")
            if entropy is not None:
                row["kl_nats"] = row["nll"] - entropy
        row["n_eval"] = int(x.shape[0])
    start = time.perf_counter()
    samples = _draw(model, n_samples, autodiff.Generator(seed + 1), dict(sample_options or {}))
    row["samples_per_s"] = n_samples / max(time.perf_counter() - start, 1e-9)
    row["nfe_per_sample"] = int(model.nfe_per_sample)
    row["n_samples"] = int(n_samples)
    if not bool(B.xp.isfinite(samples).all()):
        row["note"] = "non-finite samples: no sample metrics"
        return row, samples
    if image:
        lo, hi = model.value_range
        unit = (samples - lo) / (hi - lo)
        # the extractors take [0, 1]; a model that strays outside is clipped for the
        # metrics, and the row says how much of it did
        outside = float(((unit < 0) | (unit > 1)).mean())
        if outside > 0:
            row["outside_value_range"] = outside
        report = evaluate_samples(B.xp.clip(unit, 0.0, 1.0), test,
                                  metrics=["fid", "pr", "dc"], seed=seed)
        row.update({k: report[k] for k in ("fid", "precision", "recall", "density",
                                           "coverage")})
        row["extractor"] = report["extractor"]
    elif mixture is not None:
        modes = mode_coverage(samples, mixture)
        row.update(modes_captured=modes.modes_captured, hq_share=modes.high_quality_share)
    return row, samples
