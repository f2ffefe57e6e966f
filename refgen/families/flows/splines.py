"""Monotonic rational-quadratic splines with linear tails (Durkan et al. 2019, "Neural Spline
Flows"), and the spline coupling layer.

On [-B, B] the map is a spline of K rational-quadratic bins through the knots
(x^(k), y^(k)), k = 0..K, with positive derivatives d^(k) at the knots (Gregory & Delbourgo
1982); outside it is the identity (the "linear tails": d^(0) = d^(K) = 1, so the map and its
derivative are continuous at +-B). In bin k, with width w, height h, slope s = h / w and
xi = (x - x^(k)) / w in [0, 1] (Durkan et al. 2019, Eq. 4 and 5):

    y      = y^(k) + h [s xi^2 + d^(k) xi (1 - xi)] / [s + (d^(k+1) + d^(k) - 2 s) xi (1 - xi)]
    dy/dx  = s^2 [d^(k+1) xi^2 + 2 s xi (1 - xi) + d^(k) (1 - xi)^2]
             / [s + (d^(k+1) + d^(k) - 2 s) xi (1 - xi)]^2

and the inverse solves a quadratic a xi^2 + b xi + c = 0 for xi in [0, 1] (Eq. 6-8), with
the root taken in the cancellation-free form xi = 2c / (-b - sqrt(b^2 - 4ac)):

    a = h (s - d^(k)) + (y - y^(k)) (d^(k+1) + d^(k) - 2 s)
    b = h d^(k) - (y - y^(k)) (d^(k+1) + d^(k) - 2 s)
    c = -s (y - y^(k)).

Parameterisation from unconstrained numbers (the one nflows uses, so the two agree given the
same inputs): widths = min_w + (1 - K min_w) softmax(theta_w), scaled to 2B and summed into
knots whose ends are pinned to -B and B (the same for heights); the K - 1 inner derivatives
are min_d + softplus(theta_d) and the two end derivatives are 1.
"""
import math

import autodiff
import autodiff.functional as F
from autodiff import backend as B

from .bijections import AffineCoupling, _check_input, sum_per_example

__all__ = ["rational_quadratic_spline", "SplineCoupling"]


def _knots(unnormalized, bound, min_size):
    """(..., K) unconstrained -> knot positions (..., K + 1) from -B to B, and bin sizes
    (..., K) each >= min_size * 2B."""
    k = unnormalized.shape[-1]
    sizes = F.softmax(unnormalized, dim=-1)
    sizes = min_size + (1 - min_size * k) * sizes
    inner = autodiff.cumsum(sizes, dim=-1)[..., :-1] * (2 * bound) - bound
    ends = autodiff.zeros(*(tuple(unnormalized.shape[:-1]) + (1,)), dtype=unnormalized.dtype)
    knots = autodiff.cat([ends - bound, inner, ends + bound], dim=-1)
    return knots, knots[..., 1:] - knots[..., :-1]


def _pick(t, idx):
    """t (..., M) at the bin index idx (...) -> (...)."""
    return autodiff.gather(t, -1, idx[..., None])[..., 0]


def rational_quadratic_spline(x, unnormalized_widths, unnormalized_heights,
                              unnormalized_derivatives, inverse=False, tail_bound=3.0,
                              min_bin_width=1e-3, min_bin_height=1e-3, min_derivative=1e-3):
    """The spline y = g(x) (or x = g^{-1}(y) when ``inverse``) elementwise, with log|dg|.

    :param x: Tensor (...), the inputs (y when ``inverse``).
    :param unnormalized_widths, unnormalized_heights: Tensors (..., K).
    :param unnormalized_derivatives: Tensor (..., K - 1), the inner knots' derivatives.
    :param tail_bound: B; outside [-B, B] the map is the identity (log-det 0).
    :return: (outputs (...), logabsdet (...)): log|dy/dx| forward, log|dx/dy| inverse.
    """
    k = unnormalized_widths.shape[-1]
    for name, t, size in (("unnormalized_heights", unnormalized_heights, k),
                          ("unnormalized_derivatives", unnormalized_derivatives, k - 1)):
        if tuple(t.shape) != tuple(x.shape) + (size,):
            raise ValueError(f"rational_quadratic_spline: {name} must have shape "
                             f"{tuple(x.shape) + (size,)} for inputs {tuple(x.shape)} and "
                             f"K={k} bins, got {tuple(t.shape)}")
    if min_bin_width * k > 1 or min_bin_height * k > 1:
        raise ValueError(f"rational_quadratic_spline: min_bin_width/height {min_bin_width}/"
                         f"{min_bin_height} too large for K={k} bins")
    bound = float(tail_bound)
    inside_raw = (x.data >= -bound) & (x.data <= bound)
    # evaluate the spline at a clamped copy so the unused branch of the tails stays finite
    xc = autodiff.clamp(x, -bound, bound)

    cumwidths, widths = _knots(unnormalized_widths, bound, min_bin_width)
    cumheights, heights = _knots(unnormalized_heights, bound, min_bin_height)
    ones = autodiff.ones(*(tuple(x.shape) + (1,)), dtype=x.dtype)
    derivatives = autodiff.cat(
        [ones, min_derivative + F.softplus(unnormalized_derivatives), ones], dim=-1)

    # the bin: the number of left edges at or below the input, minus one, in 0..K-1
    edges = (cumheights if inverse else cumwidths).data[..., :-1]
    idx = (xc.data[..., None] >= edges).sum(axis=-1) - 1
    idx = B.xp.clip(idx, 0, k - 1).astype(B.numpy.int64)

    x_k, w = _pick(cumwidths, idx), _pick(widths, idx)
    y_k, h = _pick(cumheights, idx), _pick(heights, idx)
    d_k, d_k1 = _pick(derivatives, idx), _pick(derivatives, idx + 1)
    s = h / w
    slack = d_k1 + d_k - 2 * s

    if not inverse:
        xi = (xc - x_k) / w
        xi1 = xi * (1 - xi)
        denom = s + slack * xi1
        out = y_k + h * (s * xi * xi + d_k * xi1) / denom
        dnum = s * s * (d_k1 * xi * xi + 2 * s * xi1 + d_k * (1 - xi) * (1 - xi))
        logdet = autodiff.log(dnum) - 2 * autodiff.log(denom)
    else:
        dy = xc - y_k
        a = h * (s - d_k) + dy * slack
        b = h * d_k - dy * slack
        c = -s * dy
        disc = autodiff.clamp(b * b - 4 * a * c, 0.0, None)   # >= 0 exactly; rounding
        xi = (2 * c) / (-b - autodiff.sqrt(disc))
        out = xi * w + x_k
        xi1 = xi * (1 - xi)
        denom = s + slack * xi1
        dnum = s * s * (d_k1 * xi * xi + 2 * s * xi1 + d_k * (1 - xi) * (1 - xi))
        logdet = 2 * autodiff.log(denom) - autodiff.log(dnum)

    inside = autodiff.Tensor(inside_raw)
    out = autodiff.where(inside, out, x)
    logdet = autodiff.where(inside, logdet, autodiff.zeros_like(logdet))
    return out, logdet


class SplineCoupling(AffineCoupling):
    """Rational-quadratic spline coupling (Durkan et al. 2019, Sec. 3.2 and 3.3): the entries
    with b = 0 go through a spline whose 3K - 1 parameters per entry come from NN(b * x [, c]):

        z = b * x + (1 - b) * g_theta(x),   theta = NN(b * x [, c]),
        log|det dz/dx| = sum over b = 0 of log g_theta'(x).

    The inner derivatives' parameters are offset by log(exp(1 - min_d) - 1) so that the
    zero-initialised conditioner gives equal bins with all derivatives 1: the identity map.
    """

    def __init__(self, shape, mask, num_bins=8, tail_bound=3.0, hidden=128, depth=2, blocks=2,
                 cond_features=0, activation="relu"):
        self.num_bins = int(num_bins)
        if self.num_bins < 2:
            raise ValueError(f"SplineCoupling: num_bins must be >= 2, got {num_bins!r}")
        self.params_per_entry = 3 * self.num_bins - 1
        super().__init__(shape, mask, hidden=hidden, depth=depth, blocks=blocks,
                         cond_features=cond_features, activation=activation)
        self.tail_bound = float(tail_bound)
        self._offset = math.log(math.expm1(1 - 1e-3))

    def _spline(self, x, cond, inverse):
        b = self.mask
        params = self.conditioner(x * b, b.data, cond)      # (N, 3K - 1, *shape)
        k = self.num_bins
        params = autodiff.movedim(params, 1, -1)             # (N, *shape, 3K - 1)
        out, ld = rational_quadratic_spline(
            x, params[..., :k], params[..., k:2 * k], params[..., 2 * k:] + self._offset,
            inverse=inverse, tail_bound=self.tail_bound)
        return b * x + (1 - b) * out, sum_per_example(ld * (1 - b))

    def forward(self, x, cond=None):
        _check_input(x, self.shape, "SplineCoupling")
        return self._spline(x, cond, inverse=False)

    def inverse(self, z, cond=None):
        _check_input(z, self.shape, "SplineCoupling")
        return self._spline(z, cond, inverse=True)
