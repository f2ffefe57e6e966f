"""Mode coverage (Srivastava et al. 2017, Table 1) on samples whose answer is known."""
import math

import numpy as np  # host-side: building test samples
import pytest

import autodiff
from refgen.data import toy
from refgen.metrics import mode_coverage


def test_true_samples_score_the_gaussian_mass_within_three_sigma():
    # P(|eps| <= 3) for a 2-D standard normal is 1 - exp(-9/2); with n = 20,000 the share's
    # standard error is sqrt(p (1 - p) / n) = 7.4e-4, and 5 of them bound the test
    for name in ("ring8", "grid25"):
        d = toy.get_density(name)
        n = 20_000
        r = mode_coverage(d.sample(n, autodiff.Generator(1)), name)
        p = 1 - math.exp(-4.5)
        assert abs(r.high_quality_share - p) < 5 * math.sqrt(p * (1 - p) / n)
        assert r.modes_captured == r.n_modes == len(d.means)
        assert r.modes_with_min_count == r.n_modes
        assert r.kl_modes < 0.01   # counts close to the equal weights


def test_collapse_to_one_mode_is_seen():
    d = toy.get_density("ring8")
    x = np.array(d.means[3])[None, :] + 0.01 * np.random.default_rng(0).normal(size=(2500, 2))
    r = mode_coverage(x, d)
    assert r.modes_captured == 1 and r.counts[3] == 2500
    assert r.high_quality_share == 1.0
    assert r.kl_modes == pytest.approx(math.log(8), rel=1e-12)


def test_far_samples_capture_nothing_and_stragglers_count_once():
    d = toy.get_density("grid25")
    far = np.full((100, 2), 1.0)                 # midway between modes: > 3 sigma from all
    one = np.array([d.means[0]])                 # one sample exactly on mode 0
    r = mode_coverage(np.concatenate([far, one]), "grid25")
    assert r.modes_captured == 1 and r.modes_with_min_count == 0
    assert r.high_quality_share == pytest.approx(1 / 101)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        mode_coverage(np.zeros((5, 3)), "ring8")
    with pytest.raises(ValueError, match="Gaussian mixture"):
        mode_coverage(np.zeros((5, 2)), "moons")
    with pytest.raises(ValueError, match="NaN"):
        mode_coverage(np.full((5, 2), np.nan), "ring8")
