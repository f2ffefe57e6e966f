"""NCSN (Song & Ermon 2019): the geometric noise levels, the NCSNv2 step rule, and annealed
Langevin dynamics driven by the ANALYTIC noise-conditional score reproducing the target
(two-sample tests at level 1e-3; float64). Training to a quality is under ``slow``."""
import math

import numpy as np
import pytest

import autodiff
from refgen.families.base import data_info_for_config
from refgen.families.score import analytic, ncsn

from .test_score import box_m_p, hotelling_p

POINTS = {"name": "gauss2", "kind": "points", "shape": (2,)}


def _np(t):
    return np.asarray(t.numpy() if isinstance(t, autodiff.Tensor) else t)


def _model(**changes):
    config = ncsn.default_config(POINTS)
    config.update(changes)
    config["data_info"] = data_info_for_config(POINTS)
    return ncsn.build(config)


def test_geometric_sigmas():
    s = ncsn.geometric_sigmas(10.0, 0.01, 7)
    assert s[0] == pytest.approx(10.0, rel=1e-15) and s[-1] == pytest.approx(0.01, rel=1e-14)
    ratios = np.array(s[:-1]) / np.array(s[1:])
    np.testing.assert_allclose(ratios, 1000 ** (1 / 6), rtol=1e-13)
    with pytest.raises(ValueError, match="num_scales"):
        ncsn.geometric_sigmas(10.0, 0.01, 1)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        ncsn.geometric_sigmas(0.01, 10.0, 5)


def test_ncsnv2_step_size_balances_the_variance():
    # Song & Ermon 2020, technique 4: the chain's variance ratio after T steps at a level,
    # r(eps) = (1 - a)^(2T) (gamma^2 - 2/(2 - a)) + 2/(2 - a), a = eps / sigma_L^2, written out
    # here independently; eps minimises it (r > 1 always), and r is close to 1 for the
    # 2-D defaults (50 levels, T = 20: 1.053 by a direct scan).
    sigmas = ncsn.geometric_sigmas(16.0, 0.01, 50)
    T = 20
    eps, r = ncsn.ncsnv2_step_size(sigmas, T)
    gamma, sl2 = sigmas[0] / sigmas[1], sigmas[-1] ** 2

    def ratio(e):
        a = e / sl2
        return (1 - a) ** (2 * T) * (gamma ** 2 - 2 / (2 - a)) + 2 / (2 - a)

    assert r == pytest.approx(ratio(eps), rel=1e-12)
    assert 1.0 < r < 1.06
    assert ratio(1.05 * eps) > r and ratio(eps / 1.05) > r


def test_c_noise_spans_the_levels():
    model = _model(num_scales=5)
    c = _np(model.c_noise(autodiff.tensor(model.sigmas)))
    np.testing.assert_allclose(c[[0, -1]], [0.0, 999.0], atol=1e-10)
    assert np.all(np.diff(c) > 0)


def test_score_is_minus_eps_over_sigma():
    model = _model(num_scales=5)
    x = autodiff.randn(4, 2, generator=autodiff.Generator(0))
    sigma = autodiff.tensor(model.sigmas[:4])
    want = -_np(model.net(x, model.c_noise(sigma))) / _np(sigma)[:, None]
    np.testing.assert_allclose(_np(model.score(x, sigma)), want, rtol=1e-13)


def test_annealed_langevin_with_the_analytic_score_reproduces_the_target():
    # the model's own sampler (levels, step rule, init, denoising step) with s_theta replaced
    # by the exact score of the sigma-perturbed mixture.
    gm = analytic.GaussianMixture([0.3, 0.7], [[1.0, 0.0], [-1.0, 2.0]],
                                  [[[0.2, 0.0], [0.0, 0.2]], [[0.5, 0.2], [0.2, 0.3]]])
    model = _model(sigma_max=10.0, num_scales=50, steps_each=20)
    model.score = lambda x, sigma, y=None: gm.score(x, 1.0, sigma)
    y = _np(model.sample(2000, autodiff.Generator(1)))
    ref = _np(gm.sample(2000, autodiff.Generator(2)))
    assert hotelling_p(y, ref) > 1e-3 and box_m_p(y, ref) > 1e-3
    assert model.nfe_per_sample == 50 * 20 + 1
    # the test's power: too few steps per level (the chain cannot follow the annealing)
    y_bad = _np(model.sample(2000, autodiff.Generator(1), steps=1))
    assert min(hotelling_p(y_bad, ref), box_m_p(y_bad, ref)) < 1e-3


def test_training_loss_is_the_eps_regression():
    # a network that predicts 0 has loss E||eps||^2 / D = 1 (per dimension), for any data.
    model = _model(num_scales=5)
    for p in model.net.mlp.out.parameters():
        p.data[...] = 0.0

    class Ctx:
        def optimize(self, player, loss):
            self.loss = float(loss.item())

    ctx = Ctx()
    model.training_step((autodiff.randn(20000, 2) * 3.0, None), 0, ctx)
    assert ctx.loss == pytest.approx(1.0, abs=4 * math.sqrt(2 / 40000))


def test_bad_options_are_named():
    model = _model(num_scales=3, steps_each=1)
    with pytest.raises(ValueError, match="unknown option.*sampler"):
        model.sample(2, sampler="pc")
    assert model.likelihood_kind == "none" and model.kind == "score"


@pytest.mark.slow
def test_ncsn_learns_ring8_modes(tmp_path):
    from refgen.data import load_dataset
    from refgen.metrics.modes import mode_coverage
    from refgen.train import TrainConfig, fit
    train = load_dataset("ring8", split="train")
    config = ncsn.default_config(train.info)
    config.update(data="ring8", data_info=data_info_for_config(train.info))
    model = ncsn.build(config)
    options = dict(ncsn.train_defaults(train.info), steps=3000, out_dir=str(tmp_path))
    fit(model, train, TrainConfig(**options), progress=False)
    with autodiff.no_grad():
        x = model.sample(2500, autodiff.Generator(0))
    assert mode_coverage(_np(x), "ring8")["modes_captured"] == 8
