"""``pinwheel``: five curved arms, defined by the sampler of Johnson et al. (2016, SVAE).

Draw the arm k uniformly from K = 5, f = (1 + 0.3 eps_1, 0.05 eps_2) (radial std 0.3,
tangential std 0.05), then rotate f by the angle 2 pi k / K + 0.25 exp(f_1), and scale by 2:
x = 2 R(2 pi k / K + 0.25 exp(f_1)) f.

Its density has no closed form: the map f -> x is not one-to-one everywhere (its Jacobian
1 - 0.25 f_2 exp(f_1) can vanish far in the tails), so the density is only defined by the
sampler. ``log_prob`` raises NotImplementedError; :meth:`Pinwheel.reference_grid` and
:meth:`Pinwheel.reference_log_prob` give a numerically integrated reference: a histogram of
many samples (see :mod:`refgen.data.toy.reference` for its error).
The bounds [-5, 5]^2 hold |x| <= 5, i.e. f_1 <= 2.5 (5 radial std): tail mass < 3e-7.
"""
import math

from autodiff import backend as B

from .base import ToyDensity
from .reference import histogram_reference, lookup_reference

__all__ = ["Pinwheel", "pinwheel"]


class Pinwheel(ToyDensity):
    exact = False

    def __init__(self, name="pinwheel", arms=5, radial_std=0.3, tangential_std=0.05, rate=0.25,
                 scale=2.0):
        self.name = name
        self.arms, self.rate, self.scale = int(arms), float(rate), float(scale)
        self.radial_std, self.tangential_std = float(radial_std), float(tangential_std)
        self.bounds = ((-5.0, 5.0), (-5.0, 5.0))
        self.tail_mass = 3e-7
        self._reference = None

    def _sample(self, n, gen, dtype):
        xp = B.xp
        eps = gen.normal((n, 2), dtype)
        f1 = 1.0 + self.radial_std * eps[:, 0]
        f2 = self.tangential_std * eps[:, 1]
        k = gen.integers(0, self.arms, (n,)).astype(dtype)
        angle = 2.0 * math.pi * k / self.arms + self.rate * xp.exp(f1)
        c, s = xp.cos(angle), xp.sin(angle)
        return self.scale * xp.stack([c * f1 - s * f2, s * f1 + c * f2], axis=1)

    def log_prob(self, x):
        raise NotImplementedError(
            "pinwheel is defined by its sampler (Johnson et al. 2016) and has no exact "
            "log-density; use reference_log_prob(x) / reference_grid(...) for a numerically "
            "integrated reference")

    def reference_grid(self, bins=128, num_samples=4_000_000, seed=0):
        """Histogram reference over ``bounds`` (see :func:`histogram_reference`); cached."""
        key = (bins, num_samples, seed)
        if self._reference is None or self._reference["key"] != key:
            self._reference = histogram_reference(self, bins, num_samples, seed)
            self._reference["key"] = key
        return self._reference

    def reference_log_prob(self, x, bins=128, num_samples=4_000_000, seed=0):
        """log of the histogram reference density at points x (n, 2): a Tensor (n,);
        -inf in empty cells and outside the bounds."""
        return lookup_reference(self.reference_grid(bins, num_samples, seed), x, self.name)


def pinwheel():
    return Pinwheel()
