"""The caveat experiment (Theis et al. 2016): the noise mixture q = w p + (1 - w) u is a
normalised model whose log-likelihood is never below log p + log w, whose samples come from
p a share w of the time; and the experiment's tiny run."""
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autodiff
from autodiff import backend as B
from refgen.cli import main
from refgen.experiments.caveat import NoiseMixture
from refgen.families import get_family
from refgen.families.base import GenerativeModel


class StandardNormal2D(GenerativeModel):
    """A p_theta with a known density: N(0, I) on 2-D points."""

    kind = "flow"
    family = "test-normal"
    likelihood_kind = "exact"
    nfe_per_sample = 1

    def __init__(self):
        super().__init__({"data_info": {"kind": "points", "shape": [2]}})

    def log_prob(self, x, cond=None):
        a = x.data if isinstance(x, autodiff.Tensor) else B.to_backend(x)
        return autodiff.Tensor(-0.5 * (a * a).sum(axis=1) - math.log(2 * math.pi))

    def sample(self, n, generator=None, cond=None, **options):
        return autodiff.Tensor(generator.normal((n, 2), "float64"))


def _tiny_made():
    """An untrained MADE on the digits' format: an exact, discrete p_theta (17 levels)."""
    from refgen.data import load_dataset
    info = load_dataset("digits", "test").info
    family = get_family("made")
    return family.build(family.smoke_config(info), info), load_dataset("digits", "test")


def _np(t):
    return B.to_numpy(t.data if isinstance(t, autodiff.Tensor) else t)


@given(weight=st.floats(1e-12, 1.0), shift=st.floats(-60.0, 60.0),
       spread=st.floats(0.0, 40.0))
def test_log_q_is_never_below_log_p_plus_log_w(weight, shift, spread):
    """log q(x) >= log w + log p(x) for every x, exactly, even where p(x) ~ exp(-800) or x
    lies outside the noise's box (u(x) = 0); and log q >= log(1 - w) + log u(x)."""
    p = StandardNormal2D()
    q = NoiseMixture(p, weight, box=(-5.0, 5.0))
    g = np.random.default_rng(0)
    x = B.to_backend(shift + spread * g.standard_normal((64, 2)))
    log_p, log_q = _np(p.log_prob(autodiff.Tensor(x))), _np(q.log_prob(autodiff.Tensor(x)))
    log_u = _np(q.log_noise(x))
    assert np.all(np.isfinite(log_q))
    assert np.all(log_q >= log_p + math.log(weight))
    if weight < 1.0:
        assert np.all(log_q >= log_u + math.log1p(-weight))
    # and at most log 2 above the larger of the two terms (a sum of two is <= twice the max)
    top = np.maximum(log_p + math.log(weight),
                     log_u + (math.log1p(-weight) if weight < 1 else -np.inf))
    assert np.all(log_q <= top + math.log(2.0) + 1e-12 * np.abs(top))


def test_log_q_equals_the_mixture_where_nothing_underflows():
    """Near the origin both densities are of order 1: log q against w p + (1 - w) u formed
    directly, to float64 rounding."""
    p = StandardNormal2D()
    q = NoiseMixture(p, 0.3, box=(-2.0, 3.0))
    x = B.to_backend(np.random.default_rng(1).uniform(-2.0, 2.0, size=(100, 2)))
    direct = 0.3 * np.exp(_np(p.log_prob(autodiff.Tensor(x)))) + 0.7 / 25.0
    np.testing.assert_allclose(np.exp(_np(q.log_prob(autodiff.Tensor(x)))), direct,
                               rtol=1e-13)


def test_q_is_normalised():
    """The integral of q over the plane is w P_p(box) + (1 - w); with a box of +-7 around
    N(0, I), P_p(box) = erf(7/sqrt 2)^2 = 1 - 2.6e-12. The midpoint rule on a 700^2 grid
    integrates these smooth Gaussians to far better than the 1e-6 asked."""
    p = StandardNormal2D()
    q = NoiseMixture(p, 0.01, box=(-7.0, 7.0))
    h = 14.0 / 700
    c = -7.0 + h * (np.arange(700) + 0.5)
    xx, yy = np.meshgrid(c, c)
    grid = B.to_backend(np.stack([xx.ravel(), yy.ravel()], axis=1))
    total = float(np.exp(_np(q.log_prob(autodiff.Tensor(grid)))).sum() * h * h)
    assert abs(total - 1.0) < 1e-6


def test_samples_come_from_the_model_a_share_w_of_the_time():
    """The model's share is Binomial(n, w): within 4 standard errors of w; the noise is
    uniform on the box (its mean within 4 standard errors of the box's centre)."""
    p = StandardNormal2D()
    w, n = 0.2, 20000
    q = NoiseMixture(p, w, box=(1.0, 3.0))
    x, from_model = q.sample_with_source(n, autodiff.Generator(0))
    x, from_model = _np(x), B.to_numpy(from_model)
    assert abs(from_model.mean() - w) < 4 * math.sqrt(w * (1 - w) / n)
    noise = x[~from_model]
    assert noise.min() >= 1.0 and noise.max() <= 3.0
    assert np.all(np.abs(noise.mean(axis=0) - 2.0) < 4 * (2.0 / math.sqrt(12)) /
                  math.sqrt(len(noise)))
    # the model's samples are N(0, I): most of them lie outside the box
    assert (np.abs(x[from_model]) < 1.0).mean() > 0.3
    assert q.sample(5, autodiff.Generator(1)).shape == (5, 2)


def test_discrete_model_noise_is_the_uniform_mass_on_the_stored_levels():
    """For a probability mass over 17 levels the noise is 17^-D, its samples are stored
    values k/16, and bits/dim lose at most log2(1/w)/D per example."""
    p, test = _tiny_made()
    q = NoiseMixture(p, 0.01)
    assert q.discrete and q.likelihood_kind == "exact"
    x = test.x[:20]
    log_u = _np(q.log_noise(x))
    np.testing.assert_allclose(log_u, -64 * math.log(17), rtol=1e-15)
    with autodiff.no_grad():
        bpd_p = _np(p.bits_per_dim(x))
        bpd_q = _np(q.bits_per_dim(x))
        samples = _np(q.sample(50, autodiff.Generator(0)))
    lost = bpd_q - bpd_p
    assert np.all(lost <= math.log2(100) / 64 + 1e-12)
    # exactly: log q - log p = log(w + (1 - w) u/p); this untrained p is worse than the
    # uniform mass on some images, where mixing in noise gains (lost < 0)
    ratio = np.exp(log_u - bpd_p * (-64 * math.log(2.0)))
    np.testing.assert_allclose(lost, -np.log2(0.01 + 0.99 * ratio) / 64, rtol=1e-9)
    k = samples * 16
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    assert samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("weight", [0.0, -0.1, 1.5, float("nan")])
def test_bad_weight_is_named(weight):
    with pytest.raises(ValueError, match="weight must be in"):
        NoiseMixture(StandardNormal2D(), weight, box=(-1, 1))


def test_points_need_a_box_and_a_model_needs_a_likelihood():
    with pytest.raises(ValueError, match="box"):
        NoiseMixture(StandardNormal2D(), 0.5)
    with pytest.raises(ValueError, match="box must have low < high"):
        NoiseMixture(StandardNormal2D(), 0.5, box=(1.0, 1.0))
    with pytest.raises(TypeError, match="GenerativeModel"):
        NoiseMixture(object(), 0.5)
    gan = StandardNormal2D()
    gan.likelihood_kind = "none"
    with pytest.raises(ValueError, match="no likelihood"):
        NoiseMixture(gan, 0.5, box=(-1, 1))


def test_tiny_run(tmp_path):
    """The command on the tiny budget: the bound holds on every test image, the loss is
    within it, and the GAN half's numbers are what they mean."""
    out = tmp_path / "caveat"
    assert main(["experiment", "caveat", "--budget", "tiny", "--out", str(out), "--quiet",
                 "--figures", str(tmp_path / "figures")]) == 0
    r = json.loads((out / "result.json").read_text())
    a, (b,) = r["diluted"], r["gans"]
    assert a["bound_holds_every_example"] and a["bound_margin_min_nats"] >= 0
    assert 0 < a["bpd_lost_max"] <= a["bpd_lost_bound"] + 1e-12
    assert a["bpd_lost_bound"] == pytest.approx(math.log2(100) / 64, rel=1e-12)
    assert a["bpd_q"] - a["bpd_p"] == pytest.approx(a["bpd_lost_mean"], rel=1e-9)
    assert 0.0 <= a["q_share_from_model"] <= 0.2
    assert 0.0 <= b["high_quality_share"] <= 1.0 and b["modes"] == 8
    assert 0 <= b["modes_with_20"] <= b["modes_captured"] <= 8
    assert 0.0 <= b["precision"] <= 1.0 and 0.0 <= b["recall"] <= 1.0
    # Gibbs: a KDE's cross-entropy on real test points is at least the truth's entropy, up
    # to the Monte Carlo error of the test mean; and a KDE fitted on real points is close
    assert b["kde_on_real_nll"] >= b["entropy"] - 4 * b["kde_on_real_nll_stderr"]
    assert b["kde_on_real_nll"] < b["entropy"] + 1.0
    assert math.isfinite(b["kde_on_gan_samples_nll"])
    assert (tmp_path / "figures" / "caveat.png").exists()
