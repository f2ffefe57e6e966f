"""Densities in closed form: isotropic Gaussian mixtures and concentric Gaussian-blurred rings.

* ``ring8``: 8 Gaussians, means 2 (cos 2 pi k/8, sin 2 pi k/8), sigma = 0.02, equal weights
  (the mode-collapse test of Metz et al. 2017, "Unrolled GANs", and Srivastava et al. 2017,
  VEEGAN, Table 1); options ``std`` and ``radius`` (``ring8:std=0.1`` for density models).
* ``grid25``: 25 Gaussians, means {-4, -2, 0, 2, 4}^2, sigma = 0.05, equal weights
  (the 5x5 grid of VEEGAN, Table 1); options ``std`` and ``spacing``.
* ``rings``: three concentric rings of radii 1, 2, 3 with weights proportional to the radius
  (the same density per unit length), each a uniform angle on its circle blurred by an
  isotropic Gaussian of sigma = 0.1.

Mixture: p(x) = sum_k w_k N(x; mu_k, sigma^2 I), computed as
log p(x) = logsumexp_k(log w_k - |x - mu_k|^2 / (2 sigma^2)) - log(2 pi sigma^2).

Ring of radius r: the convolution of the uniform law on the circle with N(0, sigma^2 I) is
p(x) = exp(-(rho^2 + r^2) / (2 sigma^2)) I_0(rho r / sigma^2) / (2 pi sigma^2), rho = |x|
(integrate the Gaussian over the angle; I_0 the modified Bessel function), evaluated as
log p = -(rho - r)^2 / (2 sigma^2) + log i0e(rho r / sigma^2) - log(2 pi sigma^2) with the
exponentially scaled i0e, so nothing overflows. This is the Rice distribution of rho
(Rice 1944) divided by 2 pi rho.
"""
import math

from autodiff import backend as B

from .base import LOG_2PI, ToyDensity, logsumexp

__all__ = ["GaussianMixture2D", "ConcentricRings", "ring8", "grid25", "rings"]


class GaussianMixture2D(ToyDensity):
    """Equal-variance isotropic Gaussian mixture in 2-D with an exact log-density.

    :param means: (K, 2) component means mu_k. :param sigma: common std.
    :param weights: (K,) mixture weights w_k (default equal), normalised here.
    """

    def __init__(self, name, means, sigma, weights=None, bounds=None):
        self.name = name
        self.means = [tuple(float(v) for v in m) for m in means]
        k = len(self.means)
        weights = [1.0 / k] * k if weights is None else [float(w) for w in weights]
        total = sum(weights)
        self.weights = [w / total for w in weights]
        self.sigma = float(sigma)
        if bounds is None:
            # 10 sigma beyond the outermost mean in each axis
            pad = 10.0 * self.sigma
            xs, ys = [m[0] for m in self.means], [m[1] for m in self.means]
            bounds = ((min(xs) - pad, max(xs) + pad), (min(ys) - pad, max(ys) + pad))
        self.bounds = bounds
        # mass outside: at most 4 one-dimensional Gaussian tails at >= 10 sigma, < 4 * 7.7e-24
        self.tail_mass = 4 * 0.5 * math.erfc(10.0 / math.sqrt(2.0))

    def _sample(self, n, gen, dtype):
        xp = B.xp
        mu = xp.asarray(self.means, dtype=dtype)
        # component choice by inverse CDF of the weights on one uniform per point
        cdf = xp.cumsum(xp.asarray(self.weights, dtype="float64"))
        k = xp.searchsorted(cdf[:-1], gen.random((n,), "float64"), side="right")
        return mu[k] + self.sigma * gen.normal((n, 2), dtype)

    def _log_prob(self, a):
        xp = B.xp
        mu = xp.asarray(self.means, dtype=a.dtype)
        d2 = xp.sum((a[:, None, :] - mu[None, :, :]) ** 2, axis=2)           # (n, K)
        logw = xp.log(xp.asarray(self.weights, dtype=a.dtype))
        s2 = self.sigma ** 2
        return logsumexp(logw[None, :] - d2 / (2.0 * s2), axis=1) - (LOG_2PI + math.log(s2))


class ConcentricRings(ToyDensity):
    """Mixture of Gaussian-blurred circles (exact, closed form with Bessel I_0; see module).

    :param radii: ring radii r_k. :param sigma: blur std. :param weights: default ∝ radius.
    """

    def __init__(self, name, radii, sigma, weights=None):
        self.name = name
        self.radii = [float(r) for r in radii]
        weights = self.radii if weights is None else [float(w) for w in weights]
        total = sum(weights)
        self.weights = [w / total for w in weights]
        self.sigma = float(sigma)
        edge = max(self.radii) + 10.0 * self.sigma
        self.bounds = ((-edge, edge), (-edge, edge))
        # the box holds the disc of radius edge: outside it the radial tail is beyond
        # 10 sigma from every ring; the Rice tail there is below 1e-20
        self.tail_mass = 1e-20

    def _sample(self, n, gen, dtype):
        xp = B.xp
        cdf = xp.cumsum(xp.asarray(self.weights, dtype="float64"))
        k = xp.searchsorted(cdf[:-1], gen.random((n,), "float64"), side="right")
        r = xp.asarray(self.radii, dtype=dtype)[k]
        theta = 2.0 * math.pi * gen.random((n,), dtype)
        ring = xp.stack([r * xp.cos(theta), r * xp.sin(theta)], axis=1)
        return ring + self.sigma * gen.normal((n, 2), dtype)

    def _log_prob(self, a):
        xp = B.xp
        rho = xp.sqrt(xp.sum(a * a, axis=1))[:, None]                        # (n, 1)
        r = xp.asarray(self.radii, dtype=a.dtype)[None, :]                    # (1, K)
        s2 = self.sigma ** 2
        log_ring = (-(rho - r) ** 2 / (2.0 * s2) + xp.log(B.special().i0e(rho * r / s2))
                    - (LOG_2PI + math.log(s2)))
        logw = xp.log(xp.asarray(self.weights, dtype=a.dtype))[None, :]
        return logsumexp(logw + log_ring, axis=1)


def ring8(std=0.02, radius=2.0):
    """The ring of Metz et al. 2017 ("Unrolled GANs") and Srivastava et al. 2017 (VEEGAN,
    Table 1): 8 Gaussians of std 0.02 on a circle of radius 2; ``ring8:std=0.1`` is the
    setting the density models use (entropy 0.3113 nats)."""
    std, radius = _positive("ring8", std=std), _positive("ring8", radius=radius)
    angles = [2.0 * math.pi * k / 8 for k in range(8)]
    return GaussianMixture2D("ring8", [(radius * math.cos(t), radius * math.sin(t))
                                       for t in angles], sigma=std)


def grid25(std=0.05, spacing=2.0):
    """The 5 x 5 grid of VEEGAN (Srivastava et al. 2017, Table 1): Gaussians of std 0.05 at
    {-4, -2, 0, 2, 4}^2."""
    std, spacing = _positive("grid25", std=std), _positive("grid25", spacing=spacing)
    return GaussianMixture2D("grid25", [(spacing * i, spacing * j) for i in range(-2, 3)
                                        for j in range(-2, 3)], sigma=std)


def _positive(who, **option):
    (name, value), = option.items()
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: option {name} must be a number, got {value!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{who}: option {name} must be a positive number, got {value!r}")
    return value


def rings():
    return ConcentricRings("rings", [1.0, 2.0, 3.0], sigma=0.1)
