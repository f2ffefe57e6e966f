"""refgen.families.common.ode: solvers against closed forms, and the instantaneous change of
variables against the Gaussian change of variables of a linear flow, exactly."""
import math

import numpy as np
import pytest
import scipy.linalg

import autodiff
from autodiff import backend as B
from refgen.families.common import ode

# A stable, non-normal, non-diagonal matrix: dy/dt = A y has the solution y(t) = e^{A t} y(0).
A = np.array([[-0.5, 1.0, 0.0], [-1.0, -0.3, 0.4], [0.2, 0.0, -0.8]])


def _linear_f(t, y):
    return y @ autodiff.Tensor(A.T)


def _y0():
    return autodiff.Tensor(np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.2]]))


def _exact(y0, t0, t1):
    return y0 @ scipy.linalg.expm(A * (t1 - t0)).T


def test_rk4_converges_at_fourth_order_to_the_linear_solution():
    y0 = _y0()
    errors = []
    for steps in (10, 20, 40):
        y1, info = ode.rk4(_linear_f, y0, 0.0, 2.0, steps)
        assert info["nfe"] == 4 * steps
        errors.append(np.abs(y1.numpy() - _exact(y0.numpy(), 0.0, 2.0)).max())
    # halving h divides the global error by 2^4 = 16 (asymptotically); allow 13..19
    for coarse, fine in zip(errors, errors[1:]):
        assert 13 < coarse / fine < 19, errors


@pytest.mark.parametrize("t0,t1", [(0.0, 2.0), (1.5, -0.5)])
@pytest.mark.parametrize("tol", [1e-4, 1e-7, 1e-10])
def test_rk45_meets_its_tolerance_forwards_and_backwards(t0, t1, tol):
    y0 = _y0()
    y1, info = ode.rk45(_linear_f, y0, t0, t1, rtol=tol, atol=tol)
    err = np.abs(y1.numpy() - _exact(y0.numpy(), t0, t1)).max()
    # the local error is held at ~tol per step; the global error stays within a small
    # multiple of tol for this contracting/mildly growing linear system
    assert err < 20 * tol, (err, info)
    assert info["nfe"] == 2 + 6 * (info["steps"] + info["rejected"])
    # the controller h_new = h * 0.9 err^(-1/5) aims just inside the tolerance, so on this
    # smooth problem a step is (almost) never rejected
    assert info["rejected"] <= 1, info


def test_rk45_uses_fewer_steps_at_looser_tolerance_and_rejects_a_too_large_first_step():
    y0 = _y0()
    _, loose = ode.rk45(_linear_f, y0, 0.0, 2.0, rtol=1e-3, atol=1e-3)
    _, tight = ode.rk45(_linear_f, y0, 0.0, 2.0, rtol=1e-9, atol=1e-9)
    _, mid = ode.rk45(_linear_f, y0, 0.0, 2.0, rtol=1e-6, atol=1e-6)
    # local error ~ h^5: steps grow like tol^(-1/5), x 10^(3/5) = 3.98 from 1e-6 to 1e-9
    assert loose["steps"] < mid["steps"] and 2.5 < tight["steps"] / mid["steps"] < 5.5
    y1, big = ode.rk45(_linear_f, y0, 0.0, 2.0, rtol=1e-8, atol=1e-8, first_step=2.0)
    assert big["rejected"] >= 1
    assert np.abs(y1.numpy() - _exact(y0.numpy(), 0.0, 2.0)).max() < 20 * 1e-8


def test_tuple_state_and_raw_arrays():
    """A tuple state (y, integral of |y|^2) against the closed form of a scalar decay."""
    lam = 0.7

    def f(t, state):
        y, _ = state
        return (-lam * y, (y * y).sum(axis=1))

    y0 = B.xp.asarray([[1.0, 2.0]])
    q0 = B.xp.zeros(1)
    for method, kw in (("rk45", {"rtol": 1e-10, "atol": 1e-10}), ("rk4", {"steps": 200})):
        (y1, q1), _ = ode.odeint(f, (y0, q0), 0.0, 1.0, method=method, **kw)
        assert np.allclose(B.to_numpy(y1), [[math.exp(-lam), 2 * math.exp(-lam)]], atol=1e-8)
        # int_0^1 |y0|^2 e^{-2 lam t} dt = 5 (1 - e^{-2 lam}) / (2 lam)
        assert abs(float(q1[0]) - 5 * (1 - math.exp(-2 * lam)) / (2 * lam)) < 1e-8


def test_gradients_flow_through_rk4():
    """d y(1) / d lam of dy/dt = -lam y is -y0 e^{-lam}; RK4 with 100 steps is within 1e-8."""
    lam = autodiff.Tensor(np.array(0.7), requires_grad=True)
    y1, _ = ode.rk4(lambda t, y: -lam * y, autodiff.Tensor(np.array([2.0])), 0.0, 1.0, 100)
    (g,) = autodiff.grad(y1.sum(), [lam])
    assert abs(float(g.item()) - (-2.0 * math.exp(-0.7))) < 1e-8


def test_bad_arguments_are_named():
    y0 = _y0()
    with pytest.raises(ValueError, match="steps"):
        ode.rk4(_linear_f, y0, 0.0, 1.0, 0)
    with pytest.raises(ValueError, match="rtol"):
        ode.rk45(_linear_f, y0, 0.0, 1.0, rtol=-1.0)
    with pytest.raises(ValueError, match="method"):
        ode.odeint(_linear_f, y0, 0.0, 1.0, method="euler")
    with pytest.raises(ValueError, match="t1"):
        ode.odeint(_linear_f, y0, 0.0, float("nan"))
    with pytest.raises(ValueError, match="shape"):
        ode.rk4(lambda t, y: y[:, :2], y0, 0.0, 1.0, 2)
    with pytest.raises(ValueError, match="divergence"):
        ode.ode_log_likelihood(lambda x, t: x, y0, 0.0, 1.0, lambda z: z.sum(dim=1),
                               divergence="trace")


# --------------------------------------------------------------------------- likelihood
def _std_normal_log_prob(z):
    d = z.shape[1]
    return -0.5 * (z * z).sum(dim=1) - 0.5 * d * math.log(2 * math.pi)


def _linear_flow_log_p(x, M, b, t0, t1):
    """v(x) = M x + b moves x(t0) to z = e^{M T} x + M^{-1}(e^{M T} - I) b, T = t1 - t0, with
    log|det dz/dx| = tr(M) T: log p(x) = log N(z; 0, I) + tr(M) T (Gaussian change of variables)."""
    T = t1 - t0
    E = scipy.linalg.expm(M * T)
    z = x @ E.T + np.linalg.solve(M, (E - np.eye(len(b))) @ b)
    d = x.shape[1]
    return -0.5 * (z ** 2).sum(axis=1) - 0.5 * d * math.log(2 * math.pi) + np.trace(M) * T


M = np.array([[-0.4, 0.9, 0.1], [-0.6, 0.2, 0.3], [0.05, -0.2, 0.6]])
b = np.array([0.3, -0.1, 0.2])


def _velocity(x, t):
    return x @ autodiff.Tensor(M.T) + autodiff.Tensor(b)


@pytest.mark.parametrize("t0,t1", [(0.0, 1.0), (1.0, 0.2)])
@pytest.mark.parametrize("solver,kw", [("rk45", {"rtol": 1e-10, "atol": 1e-10}),
                                       ("rk4", {"steps": 200})])
def test_exact_divergence_log_likelihood_equals_gaussian_change_of_variables(t0, t1, solver,
                                                                              kw):
    x = np.random.default_rng(1).normal(size=(5, 3))
    log_p, nfe = ode.ode_log_likelihood(_velocity, autodiff.Tensor(x), t0, t1,
                                        _std_normal_log_prob, solver=solver, **kw)
    assert log_p.shape == (5,) and nfe > 0
    assert np.allclose(log_p.numpy(), _linear_flow_log_p(x, M, b, t0, t1), rtol=0, atol=1e-8)


def test_hutchinson_is_exact_for_a_diagonal_jacobian_with_rademacher_noise():
    """eps^T D eps = tr D when eps_i = +-1: Rademacher Hutchinson has zero variance here."""
    Md = np.diag([-0.3, 0.5, 0.2])
    x = np.random.default_rng(2).normal(size=(4, 3))

    def vel(x, t):
        return x @ autodiff.Tensor(Md.T) + autodiff.Tensor(b)

    log_p, _ = ode.ode_log_likelihood(vel, autodiff.Tensor(x), 0.0, 1.0, _std_normal_log_prob,
                                      divergence="hutchinson", generator=autodiff.Generator(0),
                                      rtol=1e-10, atol=1e-10)
    assert np.allclose(log_p.numpy(), _linear_flow_log_p(x, Md, b, 0.0, 1.0), atol=1e-8)


@pytest.mark.parametrize("noise", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_within_its_monte_carlo_error(noise):
    """For v = M x + b the estimate is exact + (eps^T M eps - tr M) T with one eps per example,
    so over K copies of one point the mean error is within 5 standard errors of 0:
    Var = sum_{i<j} (M_ij + M_ji)^2 (Rademacher), 2 ||(M + M^T)/2||_F^2 (Gaussian)."""
    K = 2000
    x = np.tile(np.array([[0.4, -0.2, 1.0]]), (K, 1))
    log_p, _ = ode.ode_log_likelihood(_velocity, autodiff.Tensor(x), 0.0, 1.0,
                                      _std_normal_log_prob, divergence="hutchinson", noise=noise,
                                      generator=autodiff.Generator(3), solver="rk4", steps=20)
    err = log_p.numpy() - _linear_flow_log_p(x[:1], M, b, 0.0, 1.0)[0]
    S = (M + M.T) / 2
    var = ((2 * np.triu(S, 1)) ** 2).sum() if noise == "rademacher" else 2 * (S ** 2).sum()
    assert np.isclose(err.var(), var, rtol=0.15)  # the estimator's variance is the stated one
    assert abs(err.mean()) < 5 * math.sqrt(var / K)
    assert err.std() > 0.1  # not secretly the exact trace


def test_create_graph_gives_parameter_gradients_of_the_log_likelihood():
    """d log p / d s for v = s x (1-D, t in [0, 1]): z = e^s x, log p = log N(e^s x) + s,
    so d/ds = -(e^s x)^2 + 1."""
    s = autodiff.Tensor(np.array(0.3), requires_grad=True)
    x = np.array([[0.8], [-1.5]])
    log_p, _ = ode.ode_log_likelihood(lambda x, t: x * s, autodiff.Tensor(x), 0.0, 1.0,
                                      _std_normal_log_prob, solver="rk4", steps=50,
                                      create_graph=True)
    (g,) = autodiff.grad(log_p.sum(), [s])
    expected = (-(math.exp(0.3) * x[:, 0]) ** 2 + 1).sum()
    assert abs(float(g.item()) - expected) < 1e-7
