"""FFJORD on the shared ODE solvers: its density integrates to one, sampling and the
likelihood solve are inverse maps, and the training gradient through the RK4 solve is the
derivative of the RK4 log-likelihood (float64)."""
import math

import numpy as np  # host-side: reference computations
import pytest

import autodiff
from refgen.families.flows.ffjord import FFJORD, ffjord


def _model(seed=0, scale=0.5, **cfg):
    config = ffjord.default_config({"kind": "points", "shape": [2]})
    config.update(hidden=16, depth=2, rtol=1e-7, atol=1e-7, **cfg)
    config["data_info"] = {"kind": "points", "shape": [2]}
    model = ffjord.build(config)
    rng = np.random.default_rng(seed)
    for p in model.net.parameters():
        p.data[...] = rng.normal(size=p.shape) * scale
    return model


def test_density_integrates_to_one():
    """Midpoint rule on [-L, L]^2 plus the tail mass estimated from 4,000 samples: 1 within 5
    binomial standard errors of the tail plus the grid's error (h vs h/2 change x 4/3)."""
    model = _model(1)
    L = 5.0

    def integral(m):
        h = 2 * L / m
        g = -L + h * (np.arange(m) + 0.5)
        xx, yy = np.meshgrid(g, g, indexing="ij")
        pts = autodiff.Tensor(np.stack([xx.ravel(), yy.ravel()], 1))
        with autodiff.no_grad():
            lp = model.log_prob(pts, sampler="rk4", steps=20)
        return float(np.exp(lp.numpy()).sum() * h * h)

    coarse, fine = integral(50), integral(100)
    quad_err = abs(fine - coarse) * 4 / 3
    with autodiff.no_grad():
        xs = model.sample(4000, autodiff.Generator(0), sampler="rk4", steps=20).numpy()
    tail = float(np.mean(np.abs(xs).max(1) > L))
    tail_se = math.sqrt(max(tail * (1 - tail), 1e-3) / len(xs))
    assert abs(fine + tail - 1.0) < quad_err + 5 * tail_se, (coarse, fine, tail)
    assert quad_err < 0.02


def test_sampling_inverts_the_likelihood_solve():
    """z -> x by the backward solve, then x -> z by the forward solve, with rk45 at 1e-7."""
    from refgen.families.common.ode import ode_log_likelihood
    from refgen.families.flows.models import standard_normal_log_prob
    model = _model(2)
    with autodiff.no_grad():
        x = model.sample(20, autodiff.Generator(3))
        _, _, z = ode_log_likelihood(model.velocity, x, 0.0, 1.0, standard_normal_log_prob,
                                     rtol=1e-7, atol=1e-7, return_z=True)
    z_ref = autodiff.randn(20, 2, generator=autodiff.Generator(3)).numpy()
    np.testing.assert_allclose(z.numpy(), z_ref, atol=1e-5)
    assert model.nfe_per_sample > 6


def test_training_gradient_is_the_derivative_of_the_rk4_likelihood():
    model = _model(4, scale=0.3, train_steps=3)
    x = autodiff.Tensor(np.random.default_rng(0).normal(size=(5, 2)))
    from refgen.families.common.ode import ode_log_likelihood
    from refgen.families.flows.models import standard_normal_log_prob

    def objective(create_graph):
        lp, _ = ode_log_likelihood(model.velocity, x, 0.0, 1.0, standard_normal_log_prob,
                                   solver="rk4", steps=3, create_graph=create_graph)
        return lp.sum()

    w = model.net.out.bias
    (g,) = autodiff.grad(objective(True), [w])
    e = 1e-6
    for i in range(2):
        old = float(w.data[i])
        w.data[i] = old + e
        up = float(objective(False).item())
        w.data[i] = old - e
        down = float(objective(False).item())
        w.data[i] = old
        assert abs(g.numpy()[i] - (up - down) / (2 * e)) < 1e-6 * (1 + abs(g.numpy()[i]))


def test_ffjord_refuses_images_and_conditions():
    with pytest.raises(ValueError, match="vectors"):
        FFJORD({"data_info": {"kind": "image", "shape": [1, 8, 8]}})
    with pytest.raises(ValueError, match="sampler"):
        _model().sample(2, sampler="euler")
