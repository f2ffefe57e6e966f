"""The toy-density interface and helpers shared by the 2-D densities.

A toy density has ``name``, ``bounds`` ((xmin, xmax), (ymin, ymax)), ``exact`` (whether
``log_prob`` is the exact log-density), ``sample(n, generator) -> Tensor (n, 2)`` and
``log_prob(x: Tensor (n, 2)) -> Tensor (n,)``. The bounds hold all but ``tail_mass`` of the
probability (a bound stated per density), so a grid over them integrates to 1 - tail_mass.

log_prob is evaluated on raw backend arrays and returned as a constant Tensor (no gradient):
it is the ground truth a model is measured against, not a training objective. Use float64
for KL estimates: in float32 log p differs from float64 by up to ~5e-5 nats where
log p > -50 (measured on a 50 x 50 grid for moons, swissroll, rings, ring8).
"""
import math

import autodiff
from autodiff import backend as B
from autodiff.tensor import Tensor

__all__ = ["ToyDensity", "logsumexp", "as_points", "grid_points"]


def logsumexp(a, axis):
    """log sum exp(a) along ``axis``, shifted by the max so nothing overflows; rows that are
    all -inf give -inf (not NaN)."""
    m = B.xp.max(a, axis=axis, keepdims=True)
    m = B.xp.where(B.xp.isfinite(m), m, 0.0)
    out = B.xp.log(B.xp.sum(B.xp.exp(a - m), axis=axis)) + B.xp.squeeze(m, axis=axis)
    return out


def as_points(x, who):
    """The raw (n, 2) float array of a Tensor/array, or a clear error naming the shape."""
    a = x.data if isinstance(x, Tensor) else B.to_backend(x)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{who}.log_prob expects points of shape (n, 2), got {tuple(a.shape)}")
    if a.dtype.kind != "f":
        a = a.astype(B.get_default_dtype())
    return a


def grid_points(bounds, num):
    """A midpoint grid over ``bounds``: points (num*num, 2), cell area, and the two axes.

    Cell centres at xmin + (i + 1/2) h; the midpoint rule's error for a smooth density is
    O(h^2) (and spectrally small for Gaussians with h well below sigma).
    """
    (x0, x1), (y0, y1) = bounds
    hx, hy = (x1 - x0) / num, (y1 - y0) / num
    gx = x0 + hx * (B.xp.arange(num) + 0.5)
    gy = y0 + hy * (B.xp.arange(num) + 0.5)
    xx, yy = B.xp.meshgrid(gx, gy, indexing="xy")
    pts = B.xp.stack([xx.ravel(), yy.ravel()], axis=1).astype(B.get_default_dtype())
    return pts, hx * hy, gx, gy


class ToyDensity:
    """Base class: subclasses set ``name``, ``bounds``, ``tail_mass`` and implement
    ``_sample(n, generator, dtype)`` and (when ``exact``) ``_log_prob(points)``."""

    name = ""
    bounds = ((-4.0, 4.0), (-4.0, 4.0))
    exact = True
    tail_mass = 0.0
    # rows processed at once by log_prob: bounds the (rows x components) work array
    chunk = 4096

    def sample(self, n, generator=None):
        """``n`` independent draws, a Tensor (n, 2) of the default dtype."""
        n = int(n)
        if n < 0:
            raise ValueError(f"{self.name}.sample: n must be >= 0, got {n}")
        gen = autodiff.default_generator() if generator is None else generator
        return Tensor(self._sample(n, gen, B.get_default_dtype()))

    def log_prob(self, x):
        """log p(x) for points x (n, 2): a Tensor (n,) (constant; no gradient)."""
        a = as_points(x, self.name)
        if a.shape[0] == 0:
            return Tensor(B.xp.zeros((0,), dtype=a.dtype))
        parts = [self._log_prob(a[i:i + self.chunk]) for i in range(0, a.shape[0], self.chunk)]
        return Tensor(B.xp.concatenate(parts).astype(a.dtype, copy=False))

    def _log_prob(self, a):  # pragma: no cover - overridden
        raise NotImplementedError

    def entropy(self, n=1_000_000, seed=0):
        """(H, standard error) in nats: H = -E_p[log p(x)], by Monte Carlo over ``n`` draws
        (a closed form, with error 0, where a density overrides this).

        The KL of a model to the truth is KL(p || p_theta) = E_p[-log p_theta] - H, so a
        model's test NLL minus this number; the error of that difference is dominated by the
        test set's, not by this one's (1e-3 nats at the default n for ring8:std=0.1).
        """
        if not self.exact:
            raise ValueError(f"{self.name}: no exact log-density, so no entropy")
        key = (int(n), int(seed))
        cache = self.__dict__.setdefault("_entropy_cache", {})
        if key not in cache:
            x = self._sample(int(n), autodiff.Generator(seed), "float64")
            lp = B.xp.concatenate([self._log_prob(x[i:i + self.chunk])
                                   for i in range(0, x.shape[0], self.chunk)])
            h = -float(lp.mean())
            se = float(lp.std(ddof=1)) / math.sqrt(int(n))
            cache[key] = (h, se)
        return cache[key]

    def __repr__(self):
        return f"<toy density {self.name!r} bounds={self.bounds} exact={self.exact}>"


LOG_2PI = math.log(2.0 * math.pi)
