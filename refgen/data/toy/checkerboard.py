"""``checkerboard``: the uniform density on the dark squares of a 4 x 4 board on [-4, 4]^2.

Squares have side 2; square (i, j) (i, j = 0..3 from the lower-left corner) is occupied when
i + j is even, so 8 squares of area 4 carry density 1/32 each and the other 8 carry 0.
log p(x) = -log 32 on the occupied squares (closed at the lower/left edges) and -inf
elsewhere: the density truly is 0 there, and outside [-4, 4)^2. (The checkerboard of
Grathwohl et al. 2019, FFJORD, is the same shape.)
"""
import math

from autodiff import backend as B

from .base import ToyDensity

__all__ = ["Checkerboard", "checkerboard"]


class Checkerboard(ToyDensity):
    """Piecewise-uniform density, exact; ``log_prob`` is -inf off the support."""

    def __init__(self, name="checkerboard", half_width=4.0, cells=4):
        self.name = name
        self.half = float(half_width)
        self.cells = int(cells)
        self.side = 2.0 * self.half / self.cells
        self.bounds = ((-self.half, self.half), (-self.half, self.half))
        self.tail_mass = 0.0
        occupied = (self.cells * self.cells + 1) // 2
        self.log_density = -math.log(occupied * self.side ** 2)

    def entropy(self, n=None, seed=None):
        """(log 32, 0): a uniform density on 8 squares of area 4 has entropy log(total area)."""
        return -self.log_density, 0.0

    def _cell(self, a):
        return B.xp.floor((a + self.half) / self.side)

    def _log_prob(self, a):
        xp = B.xp
        ij = self._cell(a)
        inside = xp.all((ij >= 0) & (ij < self.cells), axis=1)
        dark = (ij.sum(axis=1) % 2) == 0
        return xp.where(inside & dark, self.log_density, -xp.inf).astype(a.dtype)

    def _sample(self, n, gen, dtype):
        xp = B.xp
        # pick one of the occupied cells uniformly, then a uniform point inside it
        occupied = [(i, j) for i in range(self.cells) for j in range(self.cells) if (i + j) % 2 == 0]
        cells = xp.asarray(occupied, dtype=dtype)
        k = gen.integers(0, len(occupied), (n,))
        corner = cells[k] * self.side - self.half
        return corner + self.side * gen.random((n, 2), dtype)


def checkerboard():
    return Checkerboard()
