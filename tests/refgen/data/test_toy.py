"""Toy 2-D densities: normalisation, sampler/density agreement, finiteness, quadrature.

Tolerances: the grid integral's error is estimated from the same rule at half the
resolution (midpoint rule, O(h^2)); the chi-square threshold is the chi2 quantile at
p = 1e-6 for the number of cells (a false alarm once in a million runs).
"""
import math

import numpy as np  # host-side: test statistics
import pytest
from scipy import stats

import autodiff
from autodiff import backend as B
from refgen.data import toy
from refgen.data.toy import curves, grid_points

EXACT = [n for n in toy.list_densities() if toy.get_density(n).exact]
# the standard settings (ring8 std 0.02, grid25 std 0.05 at spacing 2) and the wider ones
# density models use: the grids below adapt to each sigma
EXACT_WITH_OPTIONS = EXACT + ["ring8:std=0.1", "grid25:std=0.1,spacing=1"]
# coarse resolution that still puts >= 2 grid points per sigma
GRID = {"moons": 100, "checkerboard": 64, "swissroll": 112, "rings": 160, "spirals": 168}


def _grid(d):
    """Points per side: >= 2 per sigma over the bounds (the mixtures' sigma is an option)."""
    if d.name in GRID:
        return GRID[d.name]
    width = max(hi - lo for lo, hi in d.bounds)
    return 2 * math.ceil(width / d.sigma)


def _mass(density, num):
    pts, area, _, _ = grid_points(density.bounds, num)
    lp = B.to_numpy(density.log_prob(autodiff.tensor(pts)).data)
    return float(np.exp(lp).sum() * area), lp


def test_every_density_is_registered_and_exact_ones_listed():
    assert set(toy.list_densities()) == {"ring8", "grid25", "moons", "checkerboard", "swissroll",
                                         "pinwheel", "rings", "spirals"}
    assert "pinwheel" not in EXACT and len(EXACT) == 7


@pytest.mark.parametrize("name", EXACT_WITH_OPTIONS)
def test_exact_density_integrates_to_one(name):
    d = toy.get_density(name)
    num = _grid(d)
    mass, lp = _mass(d, num)
    coarse, _ = _mass(d, num // 2)
    # midpoint rule O(h^2): the error at num is about |m(num) - m(num/2)| / 3; allow that
    # (no less than float64 summation rounding) plus the documented tail mass
    tol = d.tail_mass + max(abs(mass - coarse), 1e-12)
    assert abs(mass - 1.0) <= tol, (name, mass, coarse)
    if name == "checkerboard":
        # truly zero off the dark squares: exactly half the aligned grid cells are -inf
        assert np.isneginf(lp).mean() == 0.5 and np.isfinite(lp[~np.isneginf(lp)]).all()
    else:
        assert np.isfinite(lp).all()


def _cell_expectations(d, cells, sub):
    """Probability of each of cells x cells bins over the bounds (composite midpoint rule)."""
    pts, area, _, _ = grid_points(d.bounds, cells * sub)
    p = np.exp(B.to_numpy(d.log_prob(autodiff.tensor(pts)).data)) * area
    # grid_points orders points by (y, x): reshape to [iy, sy, ix, sx]
    p = p.reshape(cells, sub, cells, sub).sum(axis=(1, 3))
    return p.T  # [ix, iy]


@pytest.mark.parametrize("name", EXACT_WITH_OPTIONS)
def test_samples_follow_the_density_chi_square(name):
    d = toy.get_density(name)
    cells, n = 16, 20_000
    sub = 1 if name == "checkerboard" else max(8, math.ceil(_grid(d) / cells))
    probs = _cell_expectations(d, cells, sub=sub)
    x = B.to_numpy(d.sample(n, autodiff.Generator(123)).data)
    (x0, x1), (y0, y1) = d.bounds
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=cells, range=[[x0, x1], [y0, y1]])
    expected = (n * probs).ravel()
    observed = counts.ravel()
    big = expected >= 5
    # cells with small expectations are pooled with everything outside the grid
    e = np.append(expected[big], n - expected[big].sum())
    o = np.append(observed[big], n - observed[big].sum())
    keep = e > 0
    stat = float(((o[keep] - e[keep]) ** 2 / e[keep]).sum())
    limit = stats.chi2.ppf(1 - 1e-6, keep.sum() - 1)
    assert stat < limit, (name, stat, limit)


@pytest.mark.parametrize("factory", [curves.moons, curves.swissroll, curves.spirals])
def test_curve_quadrature_converged(factory):
    d, fine = factory(), factory()
    fine.panels = 4 * d.panels
    pts = d.sample(300, autodiff.Generator(5))
    documented = {"moons": 1e-8, "swissroll": 2e-6, "spirals": 3e-7}[d.name]
    err = float(np.abs(B.to_numpy(d.log_prob(pts).data - fine.log_prob(pts).data)).max())
    assert err < documented


@pytest.mark.parametrize("factory", [curves.moons, curves.swissroll, curves.spirals])
def test_curves_lie_ten_sigma_inside_the_bounds(factory):
    d = factory()
    c, _ = d.quadrature(np.dtype("float64"))
    c = B.to_numpy(c)
    (x0, x1), (y0, y1) = d.bounds
    margin = 10 * d.sigma
    assert c[:, 0].min() >= x0 + margin - 1e-9 and c[:, 0].max() <= x1 - margin + 1e-9
    assert c[:, 1].min() >= y0 + margin - 1e-9 and c[:, 1].max() <= y1 - margin + 1e-9


def test_mixture_matches_direct_formula():
    d = toy.get_density("ring8:std=0.2")   # wide enough that the direct formula is finite
    x = np.array([[0.3, -1.2], [2.0, 0.0], [10.0, 10.0]])
    mu = np.array(d.means)
    near = x[:2]
    s2 = d.sigma ** 2
    direct = np.log(np.mean(np.exp(-((near[:, None] - mu[None]) ** 2).sum(-1) / (2 * s2)), 1)
                    / (2 * math.pi * s2))
    got = B.to_numpy(d.log_prob(autodiff.tensor(x)).data)
    np.testing.assert_allclose(got[:2], direct, rtol=1e-13)
    assert np.isfinite(got[2]) and got[2] < -1000  # far away: tiny but finite (no -inf)


def test_rings_match_angular_integral():
    # the Bessel closed form against a direct trapezoid over the angle (periodic: spectral)
    d = toy.get_density("rings")
    x = np.array([[0.5, 0.7], [2.05, -0.1], [0.0, 3.1]])
    phi = np.linspace(0, 2 * math.pi, 2001)[:-1]
    total = 0.0
    for w, r in zip(d.weights, d.radii):
        c = r * np.stack([np.cos(phi), np.sin(phi)], 1)
        g = np.exp(-((x[:, None] - c[None]) ** 2).sum(-1) / (2 * d.sigma ** 2))
        total = total + w * g.mean(1) / (2 * math.pi * d.sigma ** 2)
    got = B.to_numpy(d.log_prob(autodiff.tensor(x)).data)
    np.testing.assert_allclose(got, np.log(total), rtol=1e-10)


def test_pinwheel_is_sampler_only_with_a_reference():
    d = toy.get_density("pinwheel")
    with pytest.raises(NotImplementedError, match="reference_log_prob"):
        d.log_prob(autodiff.zeros(3, 2))
    ref = d.reference_grid(bins=32, num_samples=200_000, seed=1)
    assert abs(float(ref["density"].sum() * ref["cell_area"]) - 1.0) < 1e-6  # tail < 3e-7
    # a held-out sample is more likely under the reference than a uniform over the box
    x = d.sample(5000, autodiff.Generator(9))
    lp = B.to_numpy(d.reference_log_prob(x, bins=32, num_samples=200_000, seed=1).data)
    assert np.isfinite(lp).mean() > 0.999
    assert lp[np.isfinite(lp)].mean() > -math.log(100.0) + 1.0


def test_samples_are_reproducible_and_shaped():
    for name in toy.list_densities():
        d = toy.get_density(name)
        a = d.sample(50, autodiff.Generator(3))
        b = d.sample(50, autodiff.Generator(3))
        assert a.shape == (50, 2) and a.dtype == np.float64
        assert np.array_equal(B.to_numpy(a.data), B.to_numpy(b.data))
        assert d.sample(0).shape == (0, 2)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown toy density 'moon'.*moons"):
        toy.get_density("moon")
    with pytest.raises(ValueError, match=r"moons.log_prob expects points of shape \(n, 2\), got \(3, 3\)"):
        toy.get_density("moons").log_prob(autodiff.zeros(3, 3))


def test_standard_settings_are_the_literatures():
    # Srivastava et al. 2017 (VEEGAN), Table 1: ring of radius 2, std 0.02; grid at
    # {-4, -2, 0, 2, 4}^2, std 0.05
    ring, grid = toy.get_density("ring8"), toy.get_density("grid25")
    assert ring.sigma == 0.02 and len(ring.means) == 8
    np.testing.assert_allclose(np.hypot(*np.array(ring.means).T), 2.0, rtol=1e-15)
    assert grid.sigma == 0.05
    assert sorted({m[0] for m in grid.means}) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    wide = toy.get_density("ring8:std=0.1")
    assert wide.sigma == 0.1 and wide.name == "ring8:std=0.1"
    assert toy.get_density("ring8:std=0.1") is wide          # one instance per spelling


def test_entropy_of_the_standard_density_settings():
    # 8 well-separated Gaussians: H = log 8 + log(2 pi e sigma^2) up to the overlap
    # (< 1e-30 at 14 sigma apart); the Monte Carlo value must agree within 4 standard errors
    h, se = toy.get_density("ring8:std=0.1").entropy()
    exact = math.log(8) + math.log(2 * math.pi * math.e * 0.1 ** 2)
    assert abs(h - exact) < 4 * se and se < 5e-3
    assert toy.get_density("checkerboard").entropy() == (math.log(32), 0.0)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="option std must be a positive number"):
        toy.get_density("ring8:std=-1")
    with pytest.raises(ValueError, match="key=value"):
        toy.get_density("ring8:std")
    with pytest.raises(ValueError, match="takes the option"):
        toy.get_density("moons:std=1")
    from refgen.data import load_dataset
    with pytest.raises(ValueError, match="takes no options"):
        load_dataset("digits:std=1")
    x = load_dataset("ring8:std=0.1", split="val", n=100)
    assert x.name == "ring8:std=0.1" and x.x.shape == (100, 2)
