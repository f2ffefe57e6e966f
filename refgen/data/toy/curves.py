"""Densities defined as a 1-D law along curves, blurred by an isotropic Gaussian.

Each component k has a weight w_k, a curve c_k(v) for v in [0, 1] and a density q_k(v)
of the curve parameter (uniform unless stated). The density is

    p(x) = sum_k w_k  integral_0^1 q_k(v) N(x; c_k(v), sigma^2 I) dv.

This *defines* the density (the sampler draws k, then v ~ q_k, then adds sigma * eps), so it
is exact by construction; only the v-integral is numerical. The parametrisations keep
c_k and q_k analytic on [0, 1] (no sqrt at an end point), which Gauss-Legendre needs to
converge fast. It is evaluated with composite
Gauss-Legendre quadrature (``panels`` equal panels of ``order`` = 8 nodes) in log space:

    log p(x) ~= logsumexp_{k,j}( log w_k + log omega_j + log q_k(v_j) - |x - c_k(v_j)|^2 / (2 sigma^2) )
                - log(2 pi sigma^2),

with positive weights omega_j, so nothing cancels and points far from every curve stay
finite. Terms more than 50 nats below the largest are clamped to exp(-50) (an overestimate
of the sum by < M e^-50 relative, M nodes: < 1e-17) to keep exp off its slow path.
The integrand is analytic in v; the error is set by how finely the nodes resolve the
Gaussian along the curve (panel arc length versus sigma). The panel counts below were
chosen by comparing with a rule of 4x the panels
(test_curve_quadrature_converged): largest |difference in log p| measured in float64:
moons 9e-9, swissroll 1.4e-6, spirals 1.9e-7 (at 3000 samples + a 60 x 60 grid).
The tests check these bounds at fewer points.

* ``moons``: two half circles of radius 2, c_1(t) = 2 (cos t - 1/2, sin t - 1/4) and
  c_2(t) = -c_1(t), t = pi v, sigma = 0.2; the two-moons shape of scikit-learn's
  ``make_moons`` (which adds Gaussian noise in the same way) scaled by 2 and centred.
* ``swissroll``: c(t) = (t cos t, t sin t) / 4, t = 1.5 pi (1 + 2v), sigma = 0.2 (the 2-D
  swiss roll of ``make_swiss_roll``, Marsland 2009, with t uniform as there).
* ``spirals``: two interleaved spirals c_1(t) = t (-cos t, sin t) / 3, c_2 = -c_1,
  t = 3 pi v with q(v) = 2v, drawn as v = sqrt(u) (about constant density per unit length),
  sigma = 0.1.
"""
import math

# host-side: Gauss-Legendre nodes and weights are computed once on the host, then moved
import numpy as np

from autodiff import backend as B

from .base import LOG_2PI, ToyDensity

__all__ = ["CurveDensity", "moons", "swissroll", "spirals"]

_CLAMP = -50.0


class CurveDensity(ToyDensity):
    """p(x) = sum_k w_k int_0^1 N(x; c_k(u), sigma^2 I) du (see the module docstring).

    :param curves: per component either a function v (m,) -> points (m, 2) with v uniform
        on [0, 1], or a tuple ``(point, log_q, sample_v)``: log q(v) (m,) and the inverse
        CDF v = sample_v(u) of the law of v.
    """

    chunk = 1024

    def __init__(self, name, curves, sigma, bounds, weights=None, panels=256, order=8):
        self.name = name
        self.curves = [c if isinstance(c, tuple) else (c, None, None) for c in curves]
        k = len(self.curves)
        weights = [1.0 / k] * k if weights is None else [float(w) for w in weights]
        total = sum(weights)
        self.weights = [w / total for w in weights]
        self.sigma = float(sigma)
        self.bounds = bounds
        self.panels, self.order = int(panels), int(order)
        # every curve lies >= 10 sigma inside the bounds (checked in the tests), so the mass
        # outside is below the 1-D Gaussian tail at 10 sigma times the 4 sides
        self.tail_mass = 4 * 0.5 * math.erfc(10.0 / math.sqrt(2.0))
        self._nodes = None

    def quadrature(self, dtype):
        """All nodes' curve points (M, 2) and log(w_k omega_j) (M,), cached per dtype."""
        if self._nodes is None or self._nodes[0] != (dtype, self.panels, self.order):
            x, w = np.polynomial.legendre.leggauss(self.order)
            h = 1.0 / self.panels
            u = ((h * np.arange(self.panels))[:, None] + 0.5 * h * (x[None, :] + 1.0)).ravel()
            omega = np.tile(0.5 * h * w, self.panels)
            u_b = B.xp.asarray(u, dtype=dtype)
            pts = [point(u_b) for point, _, _ in self.curves]
            logw = [B.xp.asarray(np.log(omega) + math.log(wk), dtype=dtype)
                    + (0.0 if log_q is None else log_q(u_b))
                    for wk, (_, log_q, _) in zip(self.weights, self.curves)]
            self._nodes = ((dtype, self.panels, self.order), B.xp.concatenate(pts),
                           B.xp.concatenate(logw))
        return self._nodes[1], self._nodes[2]

    def _log_prob(self, a):
        xp = B.xp
        c, logw = self.quadrature(a.dtype)
        s2 = self.sigma ** 2
        # |x - c|^2 = |x|^2 + |c|^2 - 2 x.c as one matmul (~10x faster than the (n, M, 2)
        # difference); its rounding error, ~1e-15 |x|^2 / (2 sigma^2), is < 1e-12 in log p
        e = a @ c.T                                                          # (n, M)
        e *= 1.0 / s2
        e += (logw - xp.sum(c * c, axis=1) / (2.0 * s2))[None, :]
        e -= (xp.sum(a * a, axis=1) / (2.0 * s2))[:, None]
        m = xp.max(e, axis=1, keepdims=True)
        e -= m
        xp.maximum(e, _CLAMP, out=e)
        xp.exp(e, out=e)
        return xp.log(xp.sum(e, axis=1)) + m[:, 0] - (LOG_2PI + math.log(s2))

    def _sample(self, n, gen, dtype):
        xp = B.xp
        cdf = xp.cumsum(xp.asarray(self.weights, dtype="float64"))
        k = xp.searchsorted(cdf[:-1], gen.random((n,), "float64"), side="right")
        u = gen.random((n,), dtype)
        out = xp.empty((n, 2), dtype=dtype)
        for i, (point, _, sample_v) in enumerate(self.curves):
            sel = k == i
            out[sel] = point(u[sel] if sample_v is None else sample_v(u[sel]))
        return out + self.sigma * gen.normal((n, 2), dtype)


def _moon(u):
    t = math.pi * u
    return 2.0 * B.xp.stack([B.xp.cos(t) - 0.5, B.xp.sin(t) - 0.25], axis=1)


def moons():
    # x in [-3, 3], y in [-2.5, 2.5] on the curves; 10 sigma = 2 beyond
    return CurveDensity("moons", [_moon, lambda u: -_moon(u)], sigma=0.2,
                        bounds=((-5.0, 5.0), (-4.5, 4.5)), panels=64)


def _swiss(u):
    t = 1.5 * math.pi * (1.0 + 2.0 * u)
    return B.xp.stack([t * B.xp.cos(t), t * B.xp.sin(t)], axis=1) / 4.0


def swissroll():
    # radius at most 4.5 pi / 4 = 3.53; 10 sigma = 2 beyond
    return CurveDensity("swissroll", [_swiss], sigma=0.2, bounds=((-5.6, 5.6), (-5.6, 5.6)),
                        panels=256)


def _spiral(v):
    t = 3.0 * math.pi * v
    return B.xp.stack([-t * B.xp.cos(t), t * B.xp.sin(t)], axis=1) / 3.0


def _spiral_log_q(v):
    return B.xp.log(2.0 * v)  # -inf only at v = 0, which no Gauss node hits


def spirals():
    # radius at most pi; 10 sigma = 1 beyond
    one = (_spiral, _spiral_log_q, _sqrt)
    two = (lambda v: -_spiral(v), _spiral_log_q, _sqrt)
    return CurveDensity("spirals", [one, two], sigma=0.1, bounds=((-4.2, 4.2), (-4.2, 4.2)),
                        panels=512)


def _sqrt(u):
    return B.xp.sqrt(u)
