"""The ``sde`` family's model: its parameterisation, training objectives, sampler options and
the ODE likelihood with the image scaling, checked by putting the ANALYTIC score in place
of the network (float64). Training to a quality is under ``slow``."""
import math

import numpy as np
import pytest

import autodiff
from refgen.families.base import data_info_for_config
from refgen.families.score import analytic, sde_model
from refgen.families.score.networks import ScoreModelBase

from .test_score import box_m_p, hotelling_p

POINTS = {"name": "gauss2", "kind": "points", "shape": (2,)}
IMAGES = {"name": "tiny", "kind": "image", "shape": (1, 2, 2), "levels": 17,
          "value_range": (0.0, 1.0), "num_classes": 3}


def _model(info, **changes):
    config = sde_model.smoke_config(info)
    config.update(changes)
    config["data_info"] = data_info_for_config(info)
    return sde_model.build(config)


def _np(t):
    return np.asarray(t.numpy() if isinstance(t, autodiff.Tensor) else t)


class _Ctx:
    def __init__(self):
        self.losses = []

    def optimize(self, player, loss):
        self.losses.append(loss)


def test_score_is_minus_eps_over_std():
    model = _model(POINTS)
    x = autodiff.randn(5, 2, generator=autodiff.Generator(0))
    t = autodiff.tensor(np.linspace(0.1, 0.9, 5))
    _, std = model.sde.marginal_coefficients(t)
    want = -_np(model.net(x, t * 999.0)) / _np(std)[:, None]
    model.config["time_input"] = "t"
    np.testing.assert_allclose(_np(model.score(x, t)), want, rtol=1e-13)
    # the default input: log std(t) on [0, 999] between t_eps and T
    model.config["time_input"] = "log_std"
    c = _np(model.c_noise(autodiff.tensor([1e-5, 1.0]),
                          model.sde.marginal_coefficients([1e-5, 1.0])[1]))
    np.testing.assert_allclose(c, [0.0, 999.0], atol=1e-9)
    want = -_np(model.net(x, model.c_noise(t, std))) / _np(std)[:, None]
    np.testing.assert_allclose(_np(model.score(x, t)), want, rtol=1e-13)


@pytest.mark.parametrize("objective", ["dsm", "ssm"])
def test_training_step_gives_finite_gradients_to_every_parameter(objective):
    model = _model(POINTS, objective=objective)
    batch = (autodiff.randn(8, 2, generator=autodiff.Generator(1)), None)
    ctx = _Ctx()
    model.training_step(batch, 0, ctx)
    (loss,) = ctx.losses
    params = list(model.net.parameters())
    grads = autodiff.grad(loss, params)
    assert all(np.isfinite(_np(g)).all() for g in grads)
    # the sliced objective's gradient reaches the first layer through the Jacobian term too
    assert any(np.abs(_np(g)).max() > 0 for g in grads)


def test_dsm_loss_at_the_analytic_score_is_the_noise_floor():
    # with the true score put in place of the network, the DSM loss per dimension equals
    # E||std s + eps||^2 / D = 1 - E||std s||^2 / D (Tweedie), smaller than at score 0 (= 1).
    gm = analytic.GaussianMixture.gaussian([0.5, -1.0], [[1.0, 0.6], [0.6, 0.8]])
    model = _model(POINTS)
    model.score = lambda x, t, y=None: gm.score_fn(model.sde)(x, t)
    ctx = _Ctx()
    autodiff.manual_seed(3)
    model.training_step((gm.sample(20000, autodiff.Generator(2)), None), 0, ctx)
    model.score = lambda x, t, y=None: x * 0.0
    autodiff.manual_seed(3)
    model.training_step((gm.sample(20000, autodiff.Generator(2)), None), 0, ctx)
    at_truth, at_zero = (float(loss.item()) for loss in ctx.losses)
    assert at_zero == pytest.approx(1.0, abs=0.02)    # E||eps||^2 / D, MC error ~0.01
    assert at_truth < at_zero - 0.05


@pytest.mark.parametrize("sampler,steps", [("pc", 200), ("ode", None), ("em", 300)])
def test_model_samples_with_the_analytic_score(sampler, steps):
    gm = analytic.GaussianMixture([0.3, 0.7], [[1.0, 0.0], [-1.0, 2.0]],
                                  [[[0.2, 0.0], [0.0, 0.2]], [[0.5, 0.2], [0.2, 0.3]]])
    model = _model(POINTS)
    model.score = lambda x, t, y=None: gm.score_fn(model.sde)(x, t)
    y = _np(model.sample(2000, autodiff.Generator(4), sampler=sampler, steps=steps))
    ref = _np(gm.sample(2000, autodiff.Generator(5)))
    assert hotelling_p(y, ref) > 1e-3 and box_m_p(y, ref) > 1e-3
    assert model.nfe_per_sample >= (steps or 1)


def test_image_log_prob_includes_the_scaling_to_minus_one_one():
    # the model works on x_m = 2x - 1 (value range [0, 1]); with the analytic score of a
    # centred Gaussian in model space, log p(x) = log p_m(2x - 1) + D log 2, within the
    # solver's tolerance (measured 5e-7 at 1e-7) plus the mismatch of p_T and the prior
    # N(0, I): their variances differ by e^{-B(1)} (1 - lambda) < 4.3e-5, so the log-densities
    # by < 4.3e-5 (|z|^2 + D) / 2 < 5e-4 for |z|^2 < 16. (A mean of 0.3 would add
    # m(1) mu . z ~ 3e-3: measured.)
    d = 4
    cov = 0.05 * np.eye(d) + 0.02
    gm = analytic.GaussianMixture.gaussian(np.zeros(d), cov)
    model = _model(IMAGES, ode_rtol=1e-7, ode_atol=1e-7, conditional=True)
    model.score = lambda x, t, y=None: gm.score_fn(model.sde)(x.reshape(x.shape[0], d), t) \
        .reshape(*x.shape)
    xm = gm.sample(3, autodiff.Generator(6))
    x = ((xm + 1.0) * 0.5).reshape(3, 1, 2, 2)
    lp = _np(model.log_prob(x, cond=autodiff.tensor([0, 1, 2])))
    want = _np(gm.log_prob_t(xm, model.sde, model.config["t_eps"])) + d * math.log(2.0)
    np.testing.assert_allclose(lp, want, atol=5e-4, rtol=0)
    assert np.max(np.abs(lp - want)) > 0  # not an identity: it went through the ODE


def test_bad_options_are_named():
    model = _model(POINTS)
    with pytest.raises(ValueError, match="unknown option.*guidance"):
        model.sample(2, guidance=1.0)
    with pytest.raises(ValueError, match="sampler must be one of"):
        model.sample(2, sampler="heun")
    with pytest.raises(ValueError, match="objective must be"):
        _model(POINTS, objective="mle")
    with pytest.raises(ValueError, match="the option sde must be"):
        _model(POINTS, sde="vpp")
    with pytest.raises(ValueError, match=r"log_prob: x must be \(N, 2\)"):
        model.log_prob(autodiff.zeros(3, 3))
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, cond=autodiff.tensor([0, 1]))
    assert isinstance(model, ScoreModelBase) and model.sde.name == "vp"
    assert _model(POINTS, sde="ve").sde.sigma_max == 16.0


# ----------------------------------------------------------------------- quality (slow)
@pytest.mark.slow
def test_sde_learns_ring8_modes(tmp_path):
    from refgen.data import load_dataset
    from refgen.metrics.modes import mode_coverage
    from refgen.train import TrainConfig, fit
    train = load_dataset("ring8", split="train")
    config = sde_model.default_config(train.info)
    config.update(data="ring8", data_info=data_info_for_config(train.info))
    model = sde_model.build(config)
    options = dict(sde_model.train_defaults(train.info), steps=3000, out_dir=str(tmp_path))
    fit(model, train, TrainConfig(**options), progress=False)
    with autodiff.no_grad():
        x = model.sample(2500, autodiff.Generator(0))
    cov = mode_coverage(_np(x), "ring8")
    assert cov["modes_captured"] == 8
