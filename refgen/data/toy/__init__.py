"""Toy 2-D densities: samplers and (where defined) exact log-densities.

``get_density(name)`` returns an object with ``name``, ``bounds``, ``exact``,
``sample(n, generator) -> Tensor (n, 2)`` and ``log_prob(x) -> Tensor (n,)``.

exact by construction: ring8, grid25 (Gaussian mixtures), rings (Bessel closed form),
checkerboard (piecewise uniform; -inf off its squares), moons, swissroll, spirals (Gaussian
blur of a law on curves; a 1-D integral by Gauss-Legendre quadrature, error < 2e-6 in log p).
sampler only: pinwheel (``reference_log_prob`` / ``reference_grid``: a histogram reference).
"""
from .base import ToyDensity, grid_points
from .checkerboard import checkerboard
from .curves import moons, spirals, swissroll
from .mixtures import grid25, ring8, rings
from .pinwheel import pinwheel

__all__ = ["get_density", "list_densities", "DENSITIES", "ToyDensity", "grid_points"]

DENSITIES = {
    "ring8": ring8, "grid25": grid25, "moons": moons, "checkerboard": checkerboard,
    "swissroll": swissroll, "pinwheel": pinwheel, "rings": rings, "spirals": spirals,
}
_cache = {}


def list_densities():
    return list(DENSITIES)


def get_density(name):
    """The toy density called ``name`` (one shared instance per name)."""
    if name not in DENSITIES:
        raise ValueError(f"unknown toy density {name!r}; known: {', '.join(DENSITIES)}")
    if name not in _cache:
        _cache[name] = DENSITIES[name]()
    return _cache[name]
