"""The zoo's baselines are proper densities: the histogram's mass is exactly one, the
kernel estimate integrates to one, and the histogram's sampler draws its own cells."""
import math

import numpy as np  # host-side: quadrature and frequencies
import pytest
from scipy import stats

import autodiff
from autodiff import backend as B
from refgen.data import load_dataset
from refgen.data.toy import grid_points
from refgen.zoo.baselines import HistogramDensity, KernelDensity


@pytest.fixture(scope="module")
def ring():
    train = load_dataset("ring8:std=0.1", split="train", n=2000)
    val = load_dataset("ring8:std=0.1", split="val", n=500)
    return train, val


def _grid_mass(model, bounds, num):
    pts, area, _, _ = grid_points(bounds, num)
    lp = B.to_numpy(model.log_prob(autodiff.Tensor(pts)).data)
    return float(np.exp(lp).sum() * area)


def test_histogram_mass_is_one_over_its_box(ring):
    model = HistogramDensity(ring[0].info).fit(*ring)
    b = model.choice["bins"]
    lo, hi = B.to_numpy(model.lo), B.to_numpy(model.hi)
    # one point per cell (the cell centres) times the cell area is the sum of P(cell)
    mass = _grid_mass(model, ((lo[0], hi[0]), (lo[1], hi[1])), b)
    assert mass == pytest.approx(1.0, abs=1e-12)


def test_kde_integrates_to_one(ring):
    small = load_dataset("ring8:std=0.1", split="train", n=300)
    model = KernelDensity(small.info).fit(small, ring[1])
    h = model.choice["bandwidth"]
    # the kernels' centres lie within |x| < 3; 8 bandwidths beyond, the lost mass is < 1e-14;
    # for a Gaussian of std h the midpoint rule with cells of h/2 errs by about
    # 2 exp(-2 pi^2 (h / (h/2))^2) = 2 exp(-8 pi^2), far below 1e-6
    edge = 3.0 + 8 * h
    num = int(math.ceil(2 * edge / (h / 2)))
    assert _grid_mass(model, ((-edge, edge), (-edge, edge)), num) == pytest.approx(1, abs=1e-6)


def test_held_out_smoothing_beats_the_extremes(ring):
    train, val = ring
    model = KernelDensity(train.info).fit(train, val)
    choices = model.choices()
    assert choices[0]["bandwidth"] < model.choice["bandwidth"] < choices[-1]["bandwidth"]
    # on ring8 with std 0.1 the chosen width is of the order of the mixture's std
    assert 0.01 < model.choice["bandwidth"] < 0.3


def test_histogram_samples_follow_its_cells(ring):
    model = HistogramDensity(ring[0].info).fit(*ring)
    n = 20_000
    x = B.to_numpy(model.sample(n, autodiff.Generator(4)).data)
    b = model.choice["bins"]
    lo, hi = B.to_numpy(model.lo), B.to_numpy(model.hi)
    pts, area, _, _ = grid_points(((lo[0], hi[0]), (lo[1], hi[1])), b)
    p = np.exp(B.to_numpy(model.log_prob(autodiff.Tensor(pts)).data)) * area   # P(cell)
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=b, range=[[lo[0], hi[0]],
                                                                  [lo[1], hi[1]]])
    expected, observed = n * p.reshape(b, b).T.ravel(), counts.ravel()
    big = expected >= 5   # pool the sparse cells
    e = np.append(expected[big], n - expected[big].sum())
    o = np.append(observed[big], n - observed[big].sum())
    stat = float(((o - e) ** 2 / e).sum())
    assert stat < stats.chi2.ppf(1 - 1e-6, len(e) - 1)   # a false alarm once in 10^6 runs


def test_images_pay_the_curse_of_dimensionality():
    train = load_dataset("digits", split="train")
    val, test = load_dataset("digits", split="val"), load_dataset("digits", split="test")
    hist = HistogramDensity(train.info).fit(train, val)
    bpd = float(np.mean(B.to_numpy(hist.bits_per_dim(test.x, generator=autodiff.Generator(0)))))
    # in 64 dimensions nearly every test cell is empty: no better than the uniform density
    # on the dequantized cube, log2(17) bits/dim, to within a few percent
    assert bpd > 0.95 * math.log2(17)
    samples = hist.sample(5, autodiff.Generator(1))
    assert tuple(samples.shape) == (5, 1, 8, 8)
