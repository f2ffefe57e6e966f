"""The classical density estimators the zoo measures beside the families: a histogram and a
Gaussian kernel density estimate, each with its smoothing chosen by held-out likelihood.

They show the curse of dimensionality (Bellman 1961; Scott 2015, "Multivariate Density
Estimation", ch. 7): in 2-D both fit a mixture of Gaussians well from 10,000 points, while in
64 dimensions (8x8 digits) a histogram's cells are nearly all empty and a kernel estimate
needs a bandwidth so wide that it is close to a blurred copy of the training set, measured
with the same numbers as the families.

Histogram with b bins per dimension over a box [lo, hi] (Jeffreys-style additive smoothing
alpha, so no test point has probability 0):

    P(cell) = (count(cell) + alpha) / (N + alpha b^D),
    p(x) = P(cell(x)) / vol(cell),      vol(cell) = prod_d (hi_d - lo_d) / b,

computed in log space (b^D overflows for D = 64); points outside the box are assigned to the
nearest edge cell. Kernel density estimate with an isotropic Gaussian kernel of width h
(Parzen 1962):

    p(x) = (1/N) sum_i N(x; x_i, h^2 I),
    log p(x) = logsumexp_i(-|x - x_i|^2 / (2 h^2)) - log N - (D/2) log(2 pi h^2).

``fit(train, val)`` picks b and alpha (histogram) or h (KDE) on a grid by the mean
log-likelihood of the validation split (for images: of its dequantized examples), then
keeps the training set. Both are ``GenerativeModel``s with ``likelihood_kind = "exact"``,
so their bits/dim follow the families' conventions, but no network: ``nfe_per_sample`` 0.
"""
import math

import autodiff
from autodiff import backend as B

from ..families.base import GenerativeModel, data_info_for_config

__all__ = ["HistogramDensity", "KernelDensity", "BASELINES"]


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (B.xp.log(B.xp.exp(a - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)


class _Baseline(GenerativeModel):
    """What the two estimators share: the data, the dequantized training set, the choice of
    smoothing by validation likelihood, and sampling in chunks."""

    kind = None
    family = "baseline"
    likelihood_kind = "exact"
    nfe_per_sample = 0

    def __init__(self, info):
        super().__init__({"data_info": data_info_for_config(info)})
        self.model = None
        self.choice = {}

    def _continuous(self, x, generator):
        """Examples as continuous points (N, D): dequantized when they are images."""
        a = x.data if isinstance(x, autodiff.Tensor) else B.to_backend(x)
        if self.levels:
            a = self.dequantize(a, generator=generator)
        return a.reshape(a.shape[0], -1).astype(B.xp.float64)

    def fit(self, train, val, generator=None, max_val=1000):
        """Fit on ``train``, choosing the smoothing by the mean log-likelihood of the first
        ``max_val`` examples of ``val``."""
        generator = generator or autodiff.Generator(0)
        self._fit_data(self._continuous(train.x, generator))
        v = self._continuous(val.x[:max_val], generator)
        best = None
        for choice in self.choices():
            self.choice = choice
            score = float(self._log_prob_points(v).mean())
            if best is None or score > best[0]:
                best = (score, choice)
        self.choice = best[1]
        self.validation_log_likelihood = best[0]
        return self

    def log_prob(self, x, cond=None):
        a = x.data if isinstance(x, autodiff.Tensor) else B.to_backend(x)
        return autodiff.Tensor(self._log_prob_points(a.reshape(a.shape[0], -1)
                                                     .astype(B.xp.float64)))

    def sample(self, n, generator=None, cond=None, **options):
        generator = generator or autodiff.default_generator()
        x = self._sample_points(int(n), generator)
        lo, hi = self.value_range
        if self.levels:
            x = B.xp.clip(x, lo, hi)
        return autodiff.Tensor(x.reshape((int(n),) + self.example_shape)
                               .astype(B.get_default_dtype()))

    @property
    def num_parameters(self):
        """The numbers the estimator stores (its 'parameters')."""
        raise NotImplementedError


class HistogramDensity(_Baseline):
    """A histogram on a regular grid of b^D cells with additive smoothing (module docstring)."""

    model_name = "histogram"

    def choices(self):
        bins = (4, 8, 16, 32, 64, 128) if self.num_dims <= 2 else (1, 2, 3, 4)
        return [{"bins": b, "alpha": a} for b in bins for a in (0.01, 0.1, 1.0)]

    def _fit_data(self, x):
        xp = B.xp
        self.x = x
        if self.levels:
            lo, hi = self.value_range
            self.lo = xp.full((x.shape[1],), lo)
            self.hi = xp.full((x.shape[1],), hi)
        else:   # the data's range, widened by 5 % on each side
            span = x.max(axis=0) - x.min(axis=0)
            self.lo, self.hi = x.min(axis=0) - 0.05 * span, x.max(axis=0) + 0.05 * span
        self._counts = {}

    def _cells(self, x, bins):
        u = (x - self.lo) / (self.hi - self.lo)
        return B.xp.clip(B.xp.floor(u * bins), 0, bins - 1).astype(B.xp.int64)

    def _table(self, bins):
        """{cell (tuple): count} of the training set at ``bins`` bins per dimension."""
        if bins not in self._counts:
            # host-side: a dict of occupied cells (at most N of the b^D)
            cells = B.to_numpy(self._cells(self.x, bins))
            table = {}
            for row in map(tuple, cells.tolist()):
                table[row] = table.get(row, 0) + 1
            self._counts[bins] = table
        return self._counts[bins]

    def _log_prob_points(self, x):
        xp = B.xp
        bins, alpha = self.choice["bins"], self.choice["alpha"]
        table = self._table(bins)
        n, d = self.x.shape
        # host-side: looking the test cells up in the table of counts
        cells = B.to_numpy(self._cells(x, bins))
        counts = xp.asarray([table.get(tuple(row), 0) for row in cells.tolist()],
                            dtype=xp.float64)
        log_cells = d * math.log(bins)                               # log b^D
        log_total = _logaddexp(math.log(n), math.log(alpha) + log_cells)
        log_volume = float(xp.log(self.hi - self.lo).sum()) - log_cells
        return xp.log(counts + alpha) - log_total - log_volume

    def _sample_points(self, n, generator):
        xp = B.xp
        bins, alpha = self.choice["bins"], self.choice["alpha"]
        table = self._table(bins)
        big_n, d = self.x.shape
        occupied = xp.asarray(list(table.keys()), dtype=xp.float64)   # (K, D)
        weights = xp.asarray(list(table.values()), dtype=xp.float64)
        # P(cell) = (count + alpha) / (N + alpha b^D): with probability N / (N + alpha b^D)
        # a cell drawn by its count, else a cell drawn uniformly from all b^D
        log_smooth = math.log(alpha) + d * math.log(bins)
        p_counts = math.exp(math.log(big_n) - _logaddexp(math.log(big_n), log_smooth))
        from_counts = generator.random((n,), "float64") < p_counts
        cdf = xp.cumsum(weights / weights.sum())
        pick = xp.minimum(xp.searchsorted(cdf, generator.random((n,), "float64"),
                                          side="right"), len(cdf) - 1)
        uniform_cells = xp.floor(generator.random((n, d), "float64") * bins)
        cells = xp.where(from_counts[:, None], occupied[pick], uniform_cells)
        u = (cells + generator.random((n, d), "float64")) / bins
        return self.lo + u * (self.hi - self.lo)

    @property
    def num_parameters(self):
        return len(self._table(self.choice["bins"])) + 2 * int(self.lo.shape[0])


class KernelDensity(_Baseline):
    """A Gaussian kernel density estimate with bandwidth h (module docstring)."""

    model_name = "kde"
    chunk = 256   # test points per block of the (chunk, N) distance matrix

    def choices(self):
        scale = float(B.xp.sqrt(self.x.var(axis=0).mean()))
        # a quarter-decade grid from 10^-2.5 to 10^0.5 times the data's scale
        return [{"bandwidth": scale * 10.0 ** (k / 4.0)} for k in range(-10, 3)]

    def _fit_data(self, x):
        self.x = x
        self.sq = (x * x).sum(axis=1)

    def _log_prob_points(self, x):
        xp = B.xp
        h = self.choice["bandwidth"]
        n, d = self.x.shape
        out = []
        for i in range(0, x.shape[0], self.chunk):
            q = x[i:i + self.chunk]
            d2 = (q * q).sum(axis=1)[:, None] - 2.0 * q @ self.x.T + self.sq[None, :]
            d2 = xp.maximum(d2, 0.0)   # rounding of the expansion can make it -1e-16
            out.append(_logsumexp(-d2 / (2.0 * h * h), axis=1))
        return xp.concatenate(out) - math.log(n) - 0.5 * d * math.log(2.0 * math.pi * h * h)

    def _sample_points(self, n, generator):
        xp = B.xp
        big_n, d = self.x.shape
        idx = xp.minimum(xp.floor(generator.random((n,), "float64") * big_n).astype(xp.int64),
                         big_n - 1)
        return self.x[idx] + self.choice["bandwidth"] * generator.normal((n, d), "float64")

    @property
    def num_parameters(self):
        return int(self.x.size) + 1


def _logaddexp(a, b):
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


BASELINES = {"histogram": HistogramDensity, "kde": KernelDensity}
