"""Kernel Inception Distance: an unbiased MMD^2 with a cubic polynomial kernel.

Binkowski et al. (2018), "Demystifying MMD GANs", section 4 and appendix: with features of
dimension d and the kernel

    k(x, y) = (x.y / d + 1)^3,

the unbiased estimator of MMD^2 between m real rows X and m generated rows Y (Gretton et al.
2012, Lemma 6, eq. 3) is

    MMD_u^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
              - 2/m^2 sum_{i, j} k(x_i, y_j),

the diagonals of K_XX and K_YY left out (that is what makes it unbiased; the cross term has
no diagonal to leave out since X and Y are independent). KID is the mean of MMD_u^2 over
``num_subsets`` (default 100) pairs of random subsets of ``subset_size`` (default 1000) rows,
each subset drawn without replacement, independently per subset and per side, as the
reference code does; the std over subsets (ddof = 0) is reported with it. MMD_u^2 can be
negative (it is unbiased for a population value of 0). Its expectation does not depend on
the sample size, unlike FID's.

Randomness: subsets come from ``generator`` (``autodiff.Generator``; default
``autodiff.Generator(0)``, so the same features give the same KID). If ``subset_size`` is
larger than either set it is clipped to min(n_real, n_fake) (all rows of the smaller set
per subset); the size actually used is returned in the result (``KIDResult.subset_size``),
so a report can say it. When the subsets are both whole sets (subset_size >= n_real ==
n_fake) every subset gives the same MMD^2 and the spread is undefined, not 0 (it would
print as rounding noise, 1e-13): ``std`` is then NaN.
Kernel matrices are computed on the active backend (``B.xp``, the GPU with CuPy) in float64.
"""
from typing import NamedTuple

import autodiff
from autodiff import backend as B

from .fid import feature_pair

__all__ = ["kid", "polynomial_kernel", "mmd2_unbiased", "KIDResult"]


class KIDResult(NamedTuple):
    """KID as mean and std of MMD_u^2 over subsets, and the subset size actually used."""
    mean: float
    std: float
    subset_size: int


def polynomial_kernel(x, y, degree=3, gamma=None, coef0=1.0):
    """K = (gamma x y^T + coef0)^degree, (n, d) x (m, d) -> (n, m); gamma defaults to 1/d."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx, k_yy, k_xy):
    """MMD_u^2 from kernel matrices (m, m), (n, n), (m, n) (Gretton et al. 2012, eq. 3)."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD^2 needs at least 2 rows per set, got {m} and {n}")
    return float(_mmd2_device(k_xx, k_yy, k_xy))   # host-side: one scalar


def _mmd2_device(k_xx, k_yy, k_xy):
    """``mmd2_unbiased`` as a 0-d backend array: KID reads its subsets back once, not one
    device synchronisation per subset."""
    xp = B.xp
    m, n = k_xx.shape[0], k_yy.shape[0]
    t_xx = (k_xx.sum() - xp.trace(k_xx)) / (m * (m - 1))
    t_yy = (k_yy.sum() - xp.trace(k_yy)) / (n * (n - 1))
    t_xy = k_xy.sum() / (m * n)
    return t_xx + t_yy - 2.0 * t_xy


def kid(real, fake, num_subsets=100, subset_size=1000, degree=3, gamma=None, coef0=1.0,
        generator=None):
    """Kernel Inception Distance: mean and std of MMD_u^2 over random subsets.

    :param real, fake: features (N1, d) and (N2, d), rows are samples; NumPy or backend
        arrays or Tensors.
    :param num_subsets: number of subset pairs (default 100).
    :param subset_size: rows per subset (default 1000), clipped to min(N1, N2).
    :param degree, gamma, coef0: kernel (gamma x.y + coef0)^degree; defaults 3, 1/d, 1.
    :param generator: ``autodiff.Generator`` for the subsets (default Generator(0)).
    :return: ``KIDResult(mean, std, subset_size)``.
    """
    xp = B.xp
    x, y = feature_pair(real, fake, xp=xp)
    if int(num_subsets) < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m = min(int(subset_size), int(x.shape[0]), int(y.shape[0]))
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 rows; subset_size {subset_size}, "
                         f"real has {x.shape[0]} rows, fake {y.shape[0]}")
    gen = autodiff.Generator(0) if generator is None else generator
    values = []
    for _ in range(int(num_subsets)):
        xs = x[gen.permutation(int(x.shape[0]))[:m]]
        ys = y[gen.permutation(int(y.shape[0]))[:m]]
        values.append(_mmd2_device(polynomial_kernel(xs, xs, degree, gamma, coef0),
                                   polynomial_kernel(ys, ys, degree, gamma, coef0),
                                   polynomial_kernel(xs, ys, degree, gamma, coef0)))
    values = B.xp.stack(values)                 # (num_subsets,) on the device
    mean = float(values.mean())                 # host-side: the two numbers reported
    if m == int(x.shape[0]) == int(y.shape[0]):   # every subset is the whole set: no spread
        return KIDResult(mean, float("nan"), m)
    return KIDResult(mean, float(values.std()), m)   # ddof = 0
