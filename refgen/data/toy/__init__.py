"""Toy 2-D densities: samplers and (where defined) exact log-densities.

``get_density(name)`` returns an object with ``name``, ``bounds``, ``exact``,
``sample(n, generator) -> Tensor (n, 2)``, ``log_prob(x) -> Tensor (n,)`` and
``entropy()`` (nats; the KL of a model to the truth is its test NLL minus this). Options
follow a colon: ``ring8:std=0.1``, ``grid25:std=0.1,spacing=1``. Two option names belong to
the data set, not the density (:data:`SAMPLE_OPTIONS`): ``n``, the number of points drawn per
split, and ``seed``; ``checkerboard:n=1000000`` is the checkerboard density with a training
set of a million points, and ``get_density`` ignores them.

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

__all__ = ["get_density", "list_densities", "parse_name", "split_sample_options", "DENSITIES",
           "SAMPLE_OPTIONS", "ToyDensity", "grid_points"]

DENSITIES = {
    "ring8": ring8, "grid25": grid25, "moons": moons, "checkerboard": checkerboard,
    "swissroll": swissroll, "pinwheel": pinwheel, "rings": rings, "spirals": spirals,
}
# options of the sample drawn from a density (how many points, which seed), not of the
# density itself: the same density whatever the size of the data set drawn from it
SAMPLE_OPTIONS = ("n", "seed")
_cache = {}


def list_densities():
    return list(DENSITIES)


def parse_name(name):
    """``"ring8:std=0.1,radius=3"`` -> ``("ring8", {"std": 0.1, "radius": 3.0})``.

    Options follow a colon as comma-separated ``key=value`` pairs with numeric values; the
    same spelling works wherever a data name is taken (the command, ``load_dataset``,
    checkpoints, the zoo's tables).
    """
    if not isinstance(name, str):
        raise TypeError(f"a data-set name must be a string, got {type(name).__name__}")
    base, sep, text = name.partition(":")
    options = {}
    if sep:
        for pair in text.split(","):
            key, eq, value = pair.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"data set {name!r}: options go after the colon as "
                                 f"key=value pairs separated by commas, e.g. ring8:std=0.1; "
                                 f"got {pair!r}")
            try:
                options[key.strip()] = float(value)
            except ValueError:
                raise ValueError(f"data set {name!r}: option {key.strip()} must be a number, "
                                 f"got {value!r}") from None
    return base, options


def split_sample_options(name):
    """``"ring8:std=0.1,n=1000000"`` -> ``("ring8:std=0.1", {"n": 1000000.0})``: the density's
    name and the sample options (:data:`SAMPLE_OPTIONS`) that were spelled in it."""
    base, options = parse_name(name)          # checks the spelling
    sample = {k: v for k, v in options.items() if k in SAMPLE_OPTIONS}
    if not sample:
        return name, {}
    # keep the density's options as spelled: reformatting a number could round it
    rest = [pair for pair in name.partition(":")[2].split(",")
            if pair.partition("=")[0].strip() not in SAMPLE_OPTIONS]
    return (f"{base}:{','.join(rest)}" if rest else base), sample


def get_density(name):
    """The toy density called ``name``, options included (``"ring8:std=0.1"``; the sample
    options ``n`` and ``seed`` are ignored); one shared instance per spelling."""
    name = split_sample_options(name)[0]
    base, options = parse_name(name)
    if base not in DENSITIES:
        raise ValueError(f"unknown toy density {base!r}; known: {', '.join(DENSITIES)}")
    key = (base, tuple(sorted(options.items())))
    if key not in _cache:
        try:
            density = DENSITIES[base](**options)
        except TypeError:
            import inspect
            accepted = list(inspect.signature(DENSITIES[base]).parameters)
            raise ValueError(f"toy density {base!r} takes the option(s) "
                             f"{', '.join(accepted) or '(none)'}; got "
                             f"{', '.join(options)}") from None
        density.name = name if options else base
        _cache[key] = density
    return _cache[key]
