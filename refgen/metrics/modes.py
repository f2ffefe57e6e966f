"""Mode coverage of 2-D samples from a Gaussian mixture (Srivastava et al. 2017, Table 1).

The protocol of VEEGAN's Table 1 (after Metz et al. 2017): draw 2500 samples; a sample is
of HIGH QUALITY when it lies within 3 standard deviations of its nearest mode,
|x - mu_k| <= 3 sigma; a mode is CAPTURED when at least one high-quality sample is nearest
to it. VEEGAN reports "modes" (captured) and "% high quality"; the stricter count of modes
with at least 20 high-quality samples is reported beside it, since one stray sample
"captures" a mode. ``kl_modes`` is the KL divergence, in nats, of the histogram of the
high-quality samples over the modes from the mixture's weights,
KL(q || w) = sum_k q_k log(q_k / w_k), which is 0 for samples spread as the data are and
log(K) for samples all on one of K equal modes: it shows an imbalance the counts hide.

Standard settings: ``ring8`` (8 modes on a circle of radius 2, sigma 0.02) and ``grid25``
(25 modes at {-4, -2, 0, 2, 4}^2, sigma 0.05); true samples score about 98.9 % high quality
(the mass of a 2-D Gaussian within 3 sigma is 1 - exp(-9/2) = 0.98889).
"""
import math

from autodiff import backend as B

from ._arrays import backend_array

__all__ = ["mode_coverage", "ModeCoverage"]


class ModeCoverage(dict):
    """The numbers of ``mode_coverage`` as a dict, with attribute access."""

    __getattr__ = dict.__getitem__


def _mixture(density):
    if isinstance(density, str):
        from ..data import toy
        density = toy.get_density(density)
    means = getattr(density, "means", None)
    sigma = getattr(density, "sigma", None)
    if means is None or sigma is None:
        raise ValueError(f"mode_coverage needs a Gaussian mixture with modes and a common "
                         f"sigma (ring8, grid25); {getattr(density, 'name', density)!r} has "
                         "none")
    return density, means, float(sigma)


def mode_coverage(samples, density, threshold=3.0, min_count=20):
    """Mode coverage of ``samples`` (N, 2) under the mixture ``density`` (a name such as
    ``"ring8"`` or a ``GaussianMixture2D``).

    :param threshold: a sample is high quality within ``threshold`` sigma of its nearest mode.
    :param min_count: the stricter count: modes with at least this many high-quality samples.
    :return: ``ModeCoverage`` with ``n_samples``, ``n_modes``, ``modes_captured``,
        ``modes_with_min_count`` (and ``min_count``), ``high_quality_share`` (in [0, 1]),
        ``kl_modes`` (nats; nan when no sample is of high quality) and ``counts`` (per mode).
    """
    density, means, sigma = _mixture(density)
    x = backend_array(samples)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        raise ValueError(f"mode_coverage expects samples of shape (N, 2) with N >= 1, got "
                         f"{tuple(x.shape)}")
    if not bool(B.xp.isfinite(x).all()):
        raise ValueError("mode_coverage: the samples contain NaN or inf")
    xp = B.xp
    x = x.astype(xp.float64)
    mu = xp.asarray(means, dtype=xp.float64)                          # (K, 2)
    d2 = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(axis=2)           # (N, K)
    nearest = d2.argmin(axis=1)                                        # (N,)
    good = xp.sqrt(d2.min(axis=1)) <= threshold * sigma                # (N,)
    k = len(means)
    counts = xp.bincount(nearest[good], minlength=k)                   # (K,)
    counts = [int(c) for c in B.to_numpy(counts)]
    n_good = sum(counts)
    weights = list(getattr(density, "weights", [1.0 / k] * k))
    if n_good:
        kl = sum((c / n_good) * math.log((c / n_good) / w) for c, w in zip(counts, weights)
                 if c)
    else:
        kl = float("nan")
    return ModeCoverage(
        n_samples=int(x.shape[0]), n_modes=k,
        modes_captured=sum(1 for c in counts if c >= 1),
        modes_with_min_count=sum(1 for c in counts if c >= min_count), min_count=int(min_count),
        high_quality_share=n_good / int(x.shape[0]), kl_modes=kl, counts=counts,
        threshold=float(threshold), sigma=sigma)
