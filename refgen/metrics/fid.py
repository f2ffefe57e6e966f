"""Frechet distance between Gaussians fitted to features, and the FID built on it.

Heusel et al. (2017), "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", eq. (6): with (mu1, S1) and (mu2, S2) the mean and covariance of the features
of real and generated samples,

    d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}),

which is the squared 2-Wasserstein distance between N(mu1, S1) and N(mu2, S2) (Dowson &
Landau 1982; Olkin & Pukelsheim 1982). Conventions that change the number:

* covariance with ddof = 1 (``numpy.cov``'s default, as pytorch-fid and the TF reference);
* ``method="pytorch-fid"`` (default) takes the square root exactly as pytorch-fid does:
  ``scipy.linalg.sqrtm(S1 @ S2)``; when the result is not finite, retry with ``eps`` (1e-6)
  added to both diagonals; a complex result whose diagonal has an imaginary part above 1e-3
  (absolute) is rejected with ``ValueError`` naming the largest imaginary component,
  otherwise its real part is used;
* ``method="eigh"``: Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}, since S1 S2 and the
  symmetric positive semi-definite S1^{1/2} S2 S1^{1/2} are similar. Two symmetric
  eigendecompositions replace a Schur decomposition of the non-symmetric S1 S2. Eigenvalues
  that are rounding, below D * eps * (largest eigenvalue) (NumPy's matrix_rank tolerance),
  including negative ones, are set to 0 before each square root. Where S1 S2 is (nearly)
  singular, e.g. fewer samples than feature dimensions, the zero eigenvalues come out of any
  float64 decomposition as +-1e-16 * |S|; ``sqrtm`` takes their square roots, 1e-8 * |S|^{1/2}
  each, so its trace is off by about sqrt(machine epsilon) relative (measured: 1e-8 relative
  for 20 samples of 64-d features), while the thresholded symmetric form stays within about
  1e-15 relative (tests/refgen/metrics/test_fid.py). For well-conditioned covariances the
  two agree to rounding. pytorch-fid's numbers are those of the default method;
* the result is clamped at 0: the distance is never negative (rounding can push a distance
  that is exactly 0, e.g. identical feature sets, to -1e-12).

This is host-side float64 linear algebra with SciPy: inputs (NumPy or backend arrays or
autodiff Tensors) are copied to the host.
"""
import warnings

# host-side: scipy.linalg (sqrtm, eigh) works on host float64 arrays
import numpy as np
# host-side: see above; the matrix square root has no CuPy counterpart
import scipy.linalg

from autodiff import backend as B

from ._arrays import backend_array, host_float64

__all__ = ["frechet_distance", "fid_from_features", "feature_statistics", "RunningStatistics",
           "METHODS"]

METHODS = ("pytorch-fid", "eigh")


def as_features(x, name, xp=None):
    """``x`` as a float64 (N, D) array of ``xp`` (host NumPy when None); rows are samples.

    Accepts NumPy or backend arrays and autodiff Tensors; names ``name`` in the error
    (not 2-D, empty, or with a NaN or inf entry).
    """
    a = host_float64(x) if xp is None else xp.asarray(backend_array(x), dtype=xp.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of features (N samples, D dimensions), "
                         f"got shape {tuple(a.shape)}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(a.shape)}")
    if not bool((xp or np).isfinite(a).all()):
        # a NaN would otherwise come out as a NaN KID or a silent precision/recall of 0
        raise ValueError(f"{name} has non-finite entries (NaN or inf) in {tuple(a.shape)} "
                         f"features")
    return a


def feature_pair(real, fake, xp=None):
    """``as_features`` of both sets, which must have the same dimension D: (real, fake)."""
    x, y = as_features(real, "real", xp=xp), as_features(fake, "fake", xp=xp)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and fake features differ in dimension: real {tuple(x.shape)}, "
                         f"fake {tuple(y.shape)}")
    return x, y


def feature_statistics(features):
    """(mu, sigma) of features (N, D): mean (D,) and covariance (D, D) with ddof = 1, float64."""
    x = as_features(features, "features")
    if x.shape[0] < 2:
        raise ValueError(f"a covariance with ddof=1 needs at least 2 samples, got {x.shape[0]}")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _check_gaussian(mu, sigma, which):
    mu = np.atleast_1d(host_float64(mu))
    sigma = np.atleast_2d(host_float64(sigma))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu{which} has shape {tuple(mu.shape)} and sigma{which} has shape "
                         f"{tuple(sigma.shape)}; expected (D,) and (D, D)")
    return mu, sigma


def _sqrtm_quiet(a):
    """scipy's sqrtm without its "matrix is singular" warning: pytorch-fid passes disp=False
    (removed in SciPy 1.18), and the finiteness and imaginary-part checks that follow are
    the ones that decide."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(a)


def _trace_sqrt_pytorch_fid(sigma1, sigma2, eps):
    """Tr (S1 S2)^{1/2} the way pytorch-fid's calculate_frechet_distance takes it."""
    covmean = _sqrtm_quiet(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # singular product: pytorch-fid's fallback, an offset on both diagonals
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm_quiet((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has a significant imaginary part: max "
                             f"|imaginary component| {m:.3g} (diagonal tolerance 1e-3); the "
                             "covariances are too ill-conditioned: use more samples or "
                             "method='eigh'")
        covmean = covmean.real
    return float(np.trace(covmean))


def _clip_rounding(w):
    """Eigenvalues of a symmetric PSD matrix with rounding removed: those below
    D * eps * max|w| (NumPy's matrix_rank tolerance) are set to 0. In float64 a rank-deficient
    covariance has its zero eigenvalues computed as +-1e-16 * |sigma|; their square roots
    (1e-8 * sqrt|sigma| each) would add up to a sqrt(eps)-sized error in the trace."""
    tol = w.shape[0] * np.finfo(np.float64).eps * float(np.max(np.abs(w), initial=0.0))
    return np.where(w > tol, w, 0.0)


def _psd_sqrt(sigma):
    """Symmetric square root of a PSD matrix from its eigendecomposition (rounding clipped)."""
    w, v = scipy.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(_clip_rounding(w))) @ v.T


def _trace_sqrt_eigh(sigma1, sigma2):
    """Tr (S1^{1/2} S2 S1^{1/2})^{1/2} from two symmetric eigendecompositions."""
    r = _psd_sqrt(sigma1)
    m = r @ sigma2 @ r
    w = scipy.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(_clip_rounding(w)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, method="pytorch-fid", eps=1e-6):
    """Squared Frechet distance d^2 between N(mu1, sigma1) and N(mu2, sigma2), clamped at 0.

    d^2 = |mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr (sigma1 sigma2)^{1/2}
    (Heusel et al. 2017, eq. 6); see the module docstring for the two methods.

    :param mu1, mu2: means, shape (D,). :param sigma1, sigma2: covariances, shape (D, D).
    :param method: "pytorch-fid" (scipy sqrtm of sigma1 @ sigma2, 1e-6 retry, imaginary
        check) or "eigh" (symmetric eigenvalue form, better conditioned).
    :param eps: the diagonal offset of pytorch-fid's retry (only for "pytorch-fid").
    :return: a Python float >= 0 (FID when the statistics are Inception features').
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    mu1, sigma1 = _check_gaussian(mu1, sigma1, 1)
    mu2, sigma2 = _check_gaussian(mu2, sigma2, 2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two Gaussians have different dimensions: mu1 {tuple(mu1.shape)}, "
                         f"mu2 {tuple(mu2.shape)}")
    for name, a in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} has non-finite entries")
    diff = mu1 - mu2
    if method == "pytorch-fid":
        tr_covmean = _trace_sqrt_pytorch_fid(sigma1, sigma2, eps)
    else:
        tr_covmean = _trace_sqrt_eigh(sigma1, sigma2)
    d2 = float(diff @ diff) + float(np.trace(sigma1)) + float(np.trace(sigma2)) - 2.0 * tr_covmean
    return max(d2, 0.0)  # never negative: rounding can push an exact 0 below it


def fid_from_features(real, fake, method="pytorch-fid", eps=1e-6):
    """Frechet distance between Gaussians fitted (mean, ddof=1 covariance) to two feature sets.

    :param real, fake: features (N1, D) and (N2, D), rows are samples; NumPy or backend
        arrays or Tensors. Each set needs N >= 2. The number depends on the feature
        extractor and on N (FID is biased upward at small N: see refgen.metrics.bias).
    :return: d^2 as a float >= 0.
    """
    real = as_features(real, "real")
    fake = as_features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in dimension: real {tuple(real.shape)}, "
                         f"fake {tuple(fake.shape)}")
    mu1, s1 = feature_statistics(real)
    mu2, s2 = feature_statistics(fake)
    return frechet_distance(mu1, s1, mu2, s2, method=method, eps=eps)


class RunningStatistics:
    """Mean and covariance (ddof = 1) of features streamed in batches, in float64.

    Keeps the count n, the mean and M2 = sum_i (x_i - mean)(x_i - mean)^T, so N samples
    never need to be in memory at once. Each batch's own mean and centred outer products are
    merged with the pairwise rule of Chan, Golub & LeVeque (1979):

        n = na + nb,  delta = mean_b - mean_a,  mean = mean_a + delta nb / n,
        M2 = M2a + M2b + delta delta^T na nb / n,

    which, unlike accumulating sum(x) and sum(x x^T) raw, does not lose digits when the mean
    is large next to the spread. The arrays live on the active backend (float64), so the
    (D, D) products run on the GPU with CuPy.

    ``update(batch)`` takes (B, D) features; ``merge(other)`` adds another accumulator;
    ``mean`` (D,), ``cov`` (D, D) and ``count`` read the result; ``frechet_distance(other)``.
    """

    def __init__(self, dim=None):
        self.dim = None if dim is None else int(dim)
        self.count = 0
        self._mean = None
        self._m2 = None

    def _merge_moments(self, n, mean, m2):
        if n == 0:
            return self
        if self.count == 0:
            self.count, self._mean, self._m2 = n, mean, m2
            return self
        total = self.count + n
        delta = mean - self._mean
        self._mean = self._mean + delta * (n / total)
        self._m2 = self._m2 + m2 + B.xp.outer(delta, delta) * (self.count * n / total)
        self.count = total
        return self

    def update(self, batch):
        """Add a batch of features (B, D); returns self."""
        x = as_features(batch, "batch", xp=B.xp)
        if self.dim is None:
            self.dim = int(x.shape[1])
        elif x.shape[1] != self.dim:
            raise ValueError(f"batch has shape {tuple(x.shape)}; these statistics have "
                             f"dimension {self.dim}")
        mean = x.mean(axis=0)
        xc = x - mean
        return self._merge_moments(int(x.shape[0]), mean, xc.T @ xc)

    def merge(self, other):
        """Add the samples another ``RunningStatistics`` has seen; returns self."""
        if not isinstance(other, RunningStatistics):
            raise TypeError(f"can only merge RunningStatistics, got {type(other).__name__}")
        if other.count == 0:
            return self
        if self.dim is not None and other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {other.dim} into {self.dim}")
        self.dim = other.dim
        return self._merge_moments(other.count, other._mean.copy(), other._m2.copy())

    @property
    def mean(self):
        """Mean of the features seen, (D,) float64 backend array."""
        if self.count == 0:
            raise ValueError("RunningStatistics has seen no samples")
        return self._mean

    @property
    def cov(self):
        """Covariance with ddof = 1, (D, D) float64 backend array; needs count >= 2."""
        if self.count < 2:
            raise ValueError(f"a covariance with ddof=1 needs at least 2 samples, "
                             f"got {self.count}")
        return self._m2 / (self.count - 1)

    def frechet_distance(self, other, method="pytorch-fid", eps=1e-6):
        """d^2 between the Gaussians fitted to these samples and to ``other``'s."""
        return frechet_distance(self.mean, self.cov, other.mean, other.cov, method=method, eps=eps)

    def state_dict(self):
        """{"count", "mean", "m2"} as host arrays, for ``autodiff.save`` (caching real stats)."""
        if self.count == 0:
            raise ValueError("RunningStatistics has seen no samples")
        return {"count": np.asarray(self.count, dtype=np.int64), "mean": host_float64(self._mean),
                "m2": host_float64(self._m2)}

    @classmethod
    def from_state_dict(cls, state):
        """Inverse of ``state_dict``."""
        missing = [k for k in ("count", "mean", "m2") if k not in state]
        if missing:
            raise ValueError(f"statistics state lacks {', '.join(missing)}; "
                             "expected keys count, mean, m2")
        stats = cls(dim=np.asarray(host_float64(state["mean"])).shape[0])
        stats.count = int(host_float64(state["count"]))
        stats._mean = B.xp.asarray(host_float64(state["mean"]))
        stats._m2 = B.xp.asarray(host_float64(state["m2"]))
        return stats
