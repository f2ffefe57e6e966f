"""A metric report: FID, KID, IS, precision/recall, density/coverage of samples against data.

``evaluate_samples(samples, "digits")`` picks a feature extractor, computes the requested
metrics in the extractor's feature space and returns one dict holding every number together
with what is needed to read it: the extractor's name, how many real and generated samples
went in, and each metric's conventions (FID's square-root method, KID's kernel, subset size
and count, the k of precision/recall and density/coverage, IS's splits and classifier).
Numbers from different extractors or sample counts are not comparable (FID falls with N;
Chong & Forsyth 2020, ``refgen.metrics.bias``), which is why the report carries both.

Metric names (``SAMPLE_METRICS``) and the keys they add:

* ``fid``: ``fid``, the Frechet distance of Gaussians fitted to the features
  (``refgen.metrics.fid``; Heusel et al. 2017, eq. 6);
* ``kid``: ``kid_mean``, ``kid_std``, unbiased MMD^2 with the kernel (x.y/d + 1)^3 over
  random subsets (Binkowski et al. 2018);
* ``is``: ``is_mean``, ``is_std``, exp(E_x KL(p(y|x) || p(y))) of the GENERATED samples
  (Salimans et al. 2016) with the extractor's class probabilities;
* ``pr``: ``precision``, ``recall`` (Kynkaanniemi et al. 2019, k-NN balls, self excluded);
* ``dc``: ``density``, ``coverage`` (Naeem et al. 2020).

``extractor="auto"`` chooses by the shape of one example, and the report records the choice
and why: (1, 8, 8) -> "digits-classifier"; (1, 28, 28) -> "mnist-classifier" when its
weights are found, else "pixels"; other images (N, 1|3, H, W) -> "inception" when the FID
weights are found, else "pixels"; anything else (2-D points) -> "pixels".
"""
import math

import autodiff
from autodiff import backend as B

from ._arrays import backend_array
from .extractors import EXTRACTORS, MNISTClassifierNotFoundError, get_extractor
from .fid import METHODS, fid_from_features
from ._inception_score import inception_score
from ._kid import kid
from ._precision_recall import density_coverage, precision_recall

__all__ = ["SAMPLE_METRICS", "evaluate_samples", "format_report", "choose_extractor",
           "parse_metric_names"]

SAMPLE_METRICS = ("fid", "kid", "is", "pr", "dc")


def parse_metric_names(names, known):
    """A list of metric names from ``"fid,kid"``, ``["fid", "kid"]`` or ``["fid kid"]``.

    :raises ValueError: a name not in ``known``; the message lists the known ones.
    """
    if isinstance(names, str):
        names = [names]
    out = []
    for part in names:
        for name in str(part).replace(",", " ").split():
            if name not in out:
                out.append(name)
    unknown = [m for m in out if m not in known]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(known)}")
    if not out:
        raise ValueError(f"no metric named; known: {', '.join(known)}")
    return out


def _as_array(x, what):
    a = backend_array(x)
    if a.ndim < 2 or a.shape[0] == 0:
        raise ValueError(f"{what} must be a batch of examples (N, ...) with N >= 1, got shape "
                         f"{tuple(a.shape)}")
    bad = int((~B.xp.isfinite(a)).sum())
    if bad:
        raise ValueError(f"{what} contain {bad} non-finite values (NaN or inf)")
    return a


def choose_extractor(example_shape, extractor="auto", weights=None, batch_size=None):
    """(Extractor, why it was chosen) for examples of shape ``example_shape`` (no N).

    :param extractor: "auto" or one of :data:`refgen.metrics.extractors.EXTRACTORS`.
    """
    shape = tuple(int(s) for s in example_shape)
    if extractor != "auto":
        if extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {extractor!r}; known: auto, "
                             f"{', '.join(EXTRACTORS)}")
        return get_extractor(extractor, weights, batch_size), "chosen by the caller"
    if shape == (1, 8, 8):
        return (get_extractor("digits-classifier", weights, batch_size),
                "auto: 8x8 single-channel images")
    if shape == (1, 28, 28):
        try:
            return (get_extractor("mnist-classifier", weights, batch_size),
                    "auto: 28x28 single-channel images")
        except MNISTClassifierNotFoundError:
            return (get_extractor("pixels", None, batch_size),
                    "auto: 28x28 images, but no MNIST classifier weights were found (make "
                    "them with `refgen train classifier --data mnist`), so raw pixels")
    if len(shape) == 3 and shape[0] in (1, 3):
        try:
            return (get_extractor("inception", weights, batch_size),
                    f"auto: {shape[1]}x{shape[2]} images")
        except FileNotFoundError:
            return (get_extractor("pixels", None, batch_size),
                    f"auto: {shape[1]}x{shape[2]} images, but no FID Inception weights were "
                    "found (`refgen data download inception`), so raw pixels")
    return get_extractor("pixels", None, batch_size), f"auto: non-image examples of shape {shape}"


def _reference(real, split, data_dir):
    """(backend array of real examples, a description) from a name, a data set or an array."""
    if isinstance(real, str):
        from ..data import load_dataset
        dataset = load_dataset(real, split=split, data_dir=data_dir)
        return dataset.x, f"{real} ({split} split)"
    if hasattr(real, "x") and hasattr(real, "info"):   # an ArrayDataset
        name = getattr(real, "name", "") or "data set"
        return real.x, f"{name} ({real.info.get('split_name', 'given')} split)"
    return real, "given array"


def evaluate_samples(samples, real, metrics=None, extractor="auto", n=None, seed=0, *,
                     split="test", data_dir=None, extractor_weights=None, batch_size=None,
                     fid_method="pytorch-fid", kid_subsets=100, kid_subset_size=1000,
                     pr_k=3, dc_k=5, is_splits=10):
    """Sample-quality metrics of ``samples`` against real data, as one dict.

    :param samples: generated examples (N, ...) (images (N, C, H, W) in [0, 1], or points);
        NumPy or backend array or Tensor.
    :param real: a data set name (loaded with ``split``, default the held-out "test" split,
        so a model that copies its training set is not rewarded; and ``data_dir``), an
        ``ArrayDataset``, or an array of real examples of the same per-example shape.
    :param metrics: names from :data:`SAMPLE_METRICS`, or a "fid,kid" string; None: all
        of them, except ``is`` when the extractor has no class probabilities (recorded
        under ``"skipped"``).
    :param extractor: "auto" (see the module docstring) or an extractor name.
    :param n: use the first ``n`` samples and a random subset of ``n`` real examples
        (seeded by ``seed``); None: all of both.
    :param seed: seeds the real subset and KID's subsets (``autodiff.Generator(seed)``).
    :param fid_method: "pytorch-fid" (scipy sqrtm, the published numbers) or "eigh".
    :return: dict with ``extractor``, ``extractor_description``, ``extractor_choice``,
        ``feature_dim``, ``n_real``, ``n_fake``, ``real``, ``metrics``, the numbers
        (``fid``, ``kid_mean``, ``kid_std``, ``is_mean``, ``is_std``, ``precision``,
        ``recall``, ``density``, ``coverage``) and ``conventions`` (per metric).
    """
    wanted = None if metrics is None else parse_metric_names(metrics, SAMPLE_METRICS)
    if fid_method not in METHODS:
        raise ValueError(f"unknown fid_method {fid_method!r}; known: {', '.join(METHODS)}")
    fake = _as_array(samples, "samples")
    real_x, real_text = _reference(real, split, data_dir)
    real_x = _as_array(real_x, f"the real examples of {real_text}")
    if tuple(fake.shape[1:]) != tuple(real_x.shape[1:]):
        raise ValueError(f"samples have examples of shape {tuple(fake.shape[1:])}, but "
                         f"{real_text} has {tuple(real_x.shape[1:])}")
    gen = autodiff.Generator(seed)
    if n is not None:
        n = int(n)
        if n < 2:
            raise ValueError(f"n must be at least 2, got {n}")
        if n > int(fake.shape[0]):
            raise ValueError(f"n = {n} but only {int(fake.shape[0])} samples were given")
        fake = fake[:n]
        if n < int(real_x.shape[0]):
            idx = B.to_backend(gen.permutation(int(real_x.shape[0]))[:n])
            real_x = real_x[B.xp.sort(idx)]

    ext, why = choose_extractor(fake.shape[1:], extractor, extractor_weights, batch_size)
    has_probs = ext.num_classes is not None
    skipped = {}
    if wanted is None:
        wanted = list(SAMPLE_METRICS)
        if not has_probs:
            wanted.remove("is")
            skipped["is"] = f"extractor {ext.name!r} gives no class probabilities"
    elif "is" in wanted and not has_probs:
        raise ValueError(f"the Inception Score needs class probabilities, which extractor "
                         f"{ext.name!r} does not give; use --extractor digits-classifier, "
                         "mnist-classifier or inception")

    f_fake = ext.features(fake)                     # (N_fake, D) host float64
    f_real = ext.features(real_x)                   # (N_real, D)
    report = {
        "extractor": ext.name, "extractor_description": ext.description,
        "extractor_choice": why, "feature_dim": int(f_fake.shape[1]),
        "n_real": int(f_real.shape[0]), "n_fake": int(f_fake.shape[0]), "real": real_text,
        "metrics": list(wanted), "seed": int(seed), "conventions": {},
    }
    if skipped:
        report["skipped"] = skipped
    conv = report["conventions"]
    if "fid" in wanted:
        report["fid"] = float(fid_from_features(f_real, f_fake, method=fid_method))
        conv["fid"] = {"method": fid_method, "covariance_ddof": 1, "clamped_at": 0.0,
                       "text": (f"{fid_method} matrix square root, covariance ddof=1, "
                                "clamped at 0; biased upward at small N")}
    if "kid" in wanted:
        k = kid(f_real, f_fake, num_subsets=kid_subsets, subset_size=kid_subset_size,
                generator=gen)
        report["kid_mean"] = float(k.mean)
        # None (JSON null) when undefined: subsets that are the whole sets have no spread
        report["kid_std"] = None if math.isnan(float(k.std)) else float(k.std)
        conv["kid"] = {"kernel": "(x.y/d + 1)^3", "num_subsets": int(kid_subsets),
                       "subset_size": int(k.subset_size),
                       "text": (f"unbiased MMD^2, kernel (x.y/d + 1)^3, {kid_subsets} subsets "
                                f"of {k.subset_size}; mean +- std over subsets")}
    if "is" in wanted:
        s = inception_score(ext.probs(fake), splits=is_splits)
        report["is_mean"], report["is_std"] = float(s.mean), float(s.std)
        conv["is"] = {"splits": int(is_splits), "classifier": ext.name,
                      "num_classes": int(ext.num_classes),
                      "text": (f"{is_splits} splits in order, mean +- std; p(y|x) of "
                               f"{ext.name} over {ext.num_classes} classes (at most "
                               f"{ext.num_classes})")}
    if "pr" in wanted:
        p = precision_recall(f_real, f_fake, k=pr_k)
        report["precision"], report["recall"] = float(p.precision), float(p.recall)
        conv["pr"] = {"k": int(pr_k), "self_excluded": True,
                      "text": f"Kynkaanniemi et al. 2019, k = {pr_k}, self excluded"}
    if "dc" in wanted:
        d = density_coverage(f_real, f_fake, k=dc_k)
        report["density"], report["coverage"] = float(d.density), float(d.coverage)
        conv["dc"] = {"k": int(dc_k), "text": f"Naeem et al. 2020, k = {dc_k}"}
    return report


def _fmt(v):
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def format_report(report):
    """The report as lines of text for the terminal (numbers with their conventions)."""
    lines = [f"{report['n_fake']} samples vs {report['n_real']} real examples of "
             f"{report['real']}",
             f"features: {report['extractor']} ({report['feature_dim']}-d): "
             f"{report['extractor_description']} [{report['extractor_choice']}]"]
    conv = report.get("conventions", {})
    rows = {"fid": [("fid", _fmt(report.get("fid")))],
            "kid": [("kid", f"{_fmt(report.get('kid_mean'))} +- "
                            + (_fmt(report["kid_std"]) if report.get("kid_std") is not None
                               else "undefined (each subset is the whole set)"))],
            "is": [("is", f"{_fmt(report.get('is_mean'))} +- {_fmt(report.get('is_std'))}")],
            "pr": [("precision", _fmt(report.get("precision"))),
                   ("recall", _fmt(report.get("recall")))],
            "dc": [("density", _fmt(report.get("density"))),
                   ("coverage", _fmt(report.get("coverage")))]}
    for name in report.get("metrics", []):
        for i, (label, value) in enumerate(rows[name]):
            note = conv.get(name, {}).get("text", "") if i == 0 else ""
            lines.append(f"  {label:<12} {value:<22} {note}".rstrip())
    for name, why in report.get("skipped", {}).items():
        lines.append(f"  {name:<12} skipped: {why}")
    return "\n".join(lines)
