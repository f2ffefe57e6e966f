"""FID's dependence on the number of samples N, and its 1/N extrapolation to N = infinity.

FID computed from N samples is biased upward: the plug-in estimate of Tr (S1 S2)^{1/2}
from a finite sample is biased, and to first order the expected FID_N is linear in 1/N.
Chong & Forsyth (2020), "Effectively Unbiased FID and Inception Score and where to find
them", section 3: compute FID_N for several N, fit

    FID_N = FID_inf + slope / N

by least squares in 1/N, and report the intercept FID_inf as the "effectively unbiased"
FID (they use 15 values of N evenly spaced from 5,000 to 50,000 generated images against the
statistics of the full real set). Here the real statistics are likewise fixed (all real
rows; their own finite-sample bias is not removed), the generated rows are drawn without
replacement for each N from ``generator``, ``repeats`` draws per N averaged.

``python -m refgen.metrics.bias`` makes figures/fid_vs_n_digits.png (digit classifier
features); ``python -m refgen.metrics.bias --extractor pixels --out
figures/fid_vs_n_digits_pixels.png`` the raw-pixel version (see ``main``).
"""
import argparse
import os
import sys
from typing import NamedTuple

# host-side: least squares and plotting on the few (N, FID) points
import numpy as np

import autodiff
from autodiff import backend as B

from .fid import RunningStatistics, as_features, frechet_distance

__all__ = ["fid_vs_n", "FIDvsN", "fit_inverse_n", "plot_fid_vs_n", "digits_fid_vs_n",
           "make_digits_figure", "main"]


class FIDvsN(NamedTuple):
    """FID at each N (mean and std over repeats), the 1/N fit and its intercept FID_inf."""
    ns: tuple
    fids: tuple
    fid_stds: tuple
    slope: float
    fid_inf: float


def fit_inverse_n(ns, fids):
    """Least-squares fit FID_N = FID_inf + slope / N; returns (FID_inf, slope)."""
    ns = np.asarray(ns, dtype=np.float64)
    fids = np.asarray(fids, dtype=np.float64)
    if ns.ndim != 1 or ns.shape != fids.shape or ns.size < 2 or len(set(ns.tolist())) < 2:
        raise ValueError(f"need at least 2 distinct N with one FID each; got ns "
                         f"{ns.tolist()} and {fids.size} FIDs")
    design = np.stack([np.ones_like(ns), 1.0 / ns], axis=1)
    (fid_inf, slope), *_ = np.linalg.lstsq(design, fids, rcond=None)
    return float(fid_inf), float(slope)


def default_ns(n_fake, dim, num_points=15):
    """``num_points`` N evenly spaced from max(n_fake // 10, 2 dim) to n_fake (as integers).

    The lower end keeps N above the feature dimension, where the covariance is full rank;
    the 10x range matches Chong & Forsyth's 5,000..50,000.
    """
    lo = min(max(n_fake // 10, 2 * dim), n_fake)
    return sorted(set(int(round(v)) for v in np.linspace(lo, n_fake, num_points)))


def fid_vs_n(real, fake, ns=None, repeats=1, generator=None, method="pytorch-fid"):
    """FID of N generated rows against all real rows for each N, and the 1/N extrapolation.

    :param real: real features (N_real, d), or a ``RunningStatistics`` of them.
    :param fake: generated features (N_fake, d); subsets of N rows without replacement.
    :param ns: the N values (default ``default_ns``: 15 from max(N_fake/10, 2d) to N_fake).
    :param repeats: draws per N, averaged (their std is returned as well).
    :param generator: ``autodiff.Generator`` for the draws (default Generator(0)).
    :param method: Frechet distance method ("pytorch-fid" or "eigh").
    :return: ``FIDvsN(ns, fids, fid_stds, slope, fid_inf)``.
    """
    if isinstance(real, RunningStatistics):
        real_stats = real
    else:
        real_stats = RunningStatistics().update(as_features(real, "real", xp=B.xp))
    y = as_features(fake, "fake", xp=B.xp)
    n_fake, dim = int(y.shape[0]), int(y.shape[1])
    if dim != real_stats.dim:
        raise ValueError(f"fake features have dimension {dim}, real ones {real_stats.dim}")
    ns = default_ns(n_fake, dim) if ns is None else [int(n) for n in ns]
    bad = [n for n in ns if not 2 <= n <= n_fake]
    if bad:
        raise ValueError(f"every N must be between 2 and the {n_fake} fake rows; got {bad}")
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    gen = autodiff.Generator(0) if generator is None else generator
    mu_r, cov_r = real_stats.mean, real_stats.cov
    means, stds = [], []
    for n in ns:
        vals = []
        for _ in range(int(repeats)):
            sub = y[gen.permutation(n_fake)[:n]]
            s = RunningStatistics().update(sub)
            vals.append(frechet_distance(mu_r, cov_r, s.mean, s.cov, method=method))
        means.append(float(np.mean(vals)))
        stds.append(float(np.std(vals)))
    fid_inf, slope = fit_inverse_n(ns, means)
    return FIDvsN(tuple(ns), tuple(means), tuple(stds), slope, fid_inf)


def plot_fid_vs_n(result, path, title=None):
    """Two panels: FID against N with the fitted FID_inf + slope / N, and against 1/N (a
    line whose intercept is FID_inf). Written atomically (refgen.plotting.save_figure)."""
    from refgen.plotting import plt, save_figure  # matplotlib Agg, atomic write

    ns = np.asarray(result.ns, dtype=np.float64)
    fids = np.asarray(result.fids)
    errs = np.asarray(result.fid_stds)
    grid = np.linspace(ns.min(), ns.max(), 200)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.errorbar(ns, fids, yerr=errs, fmt="o", ms=4, capsize=2, label="FID_N (mean, std)")
    ax1.plot(grid, result.fid_inf + result.slope / grid, "-",
             label=f"fit {result.fid_inf:.4g} + {result.slope:.4g} / N")
    ax1.axhline(result.fid_inf, ls="--", color="gray", label=f"FID_inf = {result.fid_inf:.4g}")
    ax1.set_xlabel("N (generated samples)")
    ax1.set_ylabel("FID")
    ax1.legend(fontsize=8)
    inv = np.linspace(0.0, 1.0 / ns.min(), 200)
    ax2.errorbar(1.0 / ns, fids, yerr=errs, fmt="o", ms=4, capsize=2)
    ax2.plot(inv, result.fid_inf + result.slope * inv, "-")
    ax2.plot([0.0], [result.fid_inf], "s", color="gray", label="extrapolation to N = inf")
    ax2.set_xlabel("1 / N")
    ax2.set_ylabel("FID")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _digits_features(extractor, x):
    if extractor == "pixels":
        return x.reshape(x.shape[0], -1), "raw pixels (64-d)"
    from refgen.metrics.pretrained import load_pretrained  # the shipped digit classifier

    net = load_pretrained("digits")
    dtype = next(iter(net.parameters())).dtype      # the weights' dtype (float32 by default)
    with autodiff.no_grad():
        f = net.features(autodiff.tensor(x.astype(dtype))).data.astype("float64")
    return f, f"digit classifier penultimate features ({int(f.shape[1])}-d)"


def digits_fid_vs_n(extractor="classifier", noise=0.1, repeats=20, seed=0, method="eigh"):
    """FID vs N on the digits data: real = one half of the 1797 digits, "fake" = the other
    half with Gaussian pixel noise of std ``noise`` added and clipped to [0, 1].

    :param extractor: "classifier" (refgen.metrics.pretrained.load_pretrained("digits").features)
        or "pixels" (the 64 raw pixel values).
    :param method: Frechet distance method; "eigh" by default because both feature maps
        have constant coordinates (blank corner pixels, dead ReLU units), so the
        covariances are singular and ``sqrtm`` is only sqrt(eps)-accurate there.
    :return: (FIDvsN, description of the setup for a title).
    """
    from refgen.data import load_dataset  # digits are embedded: no download

    if extractor not in ("classifier", "pixels"):
        raise ValueError(f"unknown extractor {extractor!r}; known: classifier, pixels")
    x = load_dataset("digits", split="all", dtype="float64").x     # (1797, 1, 8, 8) in [0, 1]
    gen = autodiff.Generator(seed)
    perm = gen.permutation(int(x.shape[0]))
    half = int(x.shape[0]) // 2
    real, fake = x[perm[:half]], x[perm[half:]]
    fake = B.xp.clip(fake + noise * gen.normal(fake.shape, "float64"), 0.0, 1.0)
    f_real, name = _digits_features(extractor, real)
    f_fake, _ = _digits_features(extractor, fake)
    result = fid_vs_n(f_real, f_fake, repeats=repeats, generator=gen, method=method)
    what = (f"digits: {half} real vs {int(fake.shape[0])} real + N(0, {noise}^2) pixel noise; "
            f"features: {name}; {repeats} draws per N; method {method}")
    return result, what


def make_digits_figure(path=None, extractor="classifier", noise=0.1, repeats=20, seed=0,
                       method="eigh"):
    """Write figures/fid_vs_n_digits.png (or ``path``); returns (path, FIDvsN)."""
    if path is None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.path.join(root, "figures", "fid_vs_n_digits.png")
    result, what = digits_fid_vs_n(extractor, noise, repeats, seed, method)
    title = (f"FID vs number of samples (Chong & Forsyth 2020 1/N extrapolation)\n{what}")
    return plot_fid_vs_n(result, path, title=title), result


def main(argv=None):
    """``python -m refgen.metrics.bias [--out PATH] [--extractor classifier|pixels]``."""
    p = argparse.ArgumentParser(prog="python -m refgen.metrics.bias",
                                description="Plot FID against N on digits, with the 1/N fit.")
    p.add_argument("--out", default=None, help="PNG path (default figures/fid_vs_n_digits.png)")
    p.add_argument("--extractor", default="classifier", choices=("classifier", "pixels"))
    p.add_argument("--noise", type=float, default=0.1, help="pixel noise std of the fake set")
    p.add_argument("--repeats", type=int, default=20, help="draws per N")
    p.add_argument("--method", default="eigh", choices=("eigh", "pytorch-fid"))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    path, r = make_digits_figure(a.out, a.extractor, a.noise, a.repeats, a.seed,
                                 a.method)
    print(f"wrote {path}")
    for n, f, s in zip(r.ns, r.fids, r.fid_stds):
        print(f"N={n:5d}  FID={f:.5g} +- {s:.2g}")
    print(f"fit: FID_N = {r.fid_inf:.5g} + {r.slope:.5g} / N   ->  FID_inf = {r.fid_inf:.5g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
