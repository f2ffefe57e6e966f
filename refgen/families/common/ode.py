"""ODE solvers and the instantaneous change of variables, shared by the continuous flow
(FFJORD) and the score models' probability-flow likelihood.

Solvers (``odeint``) integrate  dy/dt = f(t, y)  from t0 to t1 (either direction) for a state
``y`` that is one Tensor/array or a tuple of them (the likelihood integrates the pair
(x, log-det)):

* ``rk4``: the classical fixed-step fourth-order Runge-Kutta method (Hairer, Norsett & Wanner
  1993, "Solving Ordinary Differential Equations I", Table II.1.2, "the" Runge-Kutta method),
  4 evaluations of f per step, global error O(h^4). Every operation is a recorded Tensor
  operation, so gradients flow through the solve (discretise-then-optimise).
* ``rk45``: the adaptive Dormand & Prince (1980) 5(4) pair with the first-same-as-last
  property (Hairer et al. 1993, Table II.5.2), 6 new evaluations per accepted step. The step
  is accepted when the error estimate err <= 1, with Hairer's scaled RMS norm (Eq. II.4.11)

      err = sqrt( (1/n) sum_i ( e_i / (atol + rtol * max(|y0_i|, |y1_i|)) )^2 )

  over every component of every state entry (the whole batch shares one step size), and the
  next step is  h_new = h * min(5, max(0.2, 0.9 * err^(-1/5)))  (Eq. II.4.13, safety factor 0.9,
  facmax 5, facmin 0.2). The first step comes from Hairer's starting-step algorithm (Sec.
  II.4, "Starting step size"). Default tolerances: rtol = atol = 1e-5 (FFJORD's and
  score_sde's choice for likelihoods).

The instantaneous change of variables (Chen et al. 2018, "Neural Ordinary Differential
Equations", Theorem 1): if dx/dt = v(x(t), t) then

    d log p_t(x(t)) / dt = - tr( dv/dx (x(t), t) ),

so, integrating the state from the data at t0 to the prior at t1,

    log p_t0(x(t0)) = log p_t1(x(t1)) + int_{t0}^{t1} tr( dv/dx (x(t), t) ) dt.   (*)

``ode_log_likelihood`` integrates the pair (x, delta), d delta/dt = tr(dv/dx), delta(t0) = 0,
and returns log p_t1(x(t1)) + delta(t1). The trace is either exact (one backward pass per
dimension: for small D) or Hutchinson's (1990) unbiased estimator tr(A) = E[eps^T A eps] with
E[eps eps^T] = I, one vector-Jacobian product per evaluation, with ONE eps per example held
fixed over the whole solve (Grathwohl et al. 2019, "FFJORD", Sec. 3.1, Eq. 7).
"""
import math

import autodiff
from autodiff import backend as B

__all__ = ["odeint", "rk4", "rk45", "divergence_exact", "divergence_hutchinson",
           "ode_log_likelihood", "SOLVERS"]

SOLVERS = ("rk45", "rk4")

# ----------------------------------------------------------------- state arithmetic
# A state is a Tensor, an array, or a tuple of them; these helpers treat all three alike.


def _as_tuple(y):
    return (tuple(y), True) if isinstance(y, (tuple, list)) else ((y,), False)


def _combine(y, h, ks, coeffs):
    """y + h * sum_j coeffs[j] * ks[j], entry by entry; zero coefficients are skipped."""
    out = []
    for i, yi in enumerate(y):
        acc = None
        for k, c in zip(ks, coeffs):
            if c == 0:
                continue
            term = k[i] * c
            acc = term if acc is None else acc + term
        out.append(yi if acc is None else yi + acc * h)
    return tuple(out)


def _raw(v):
    return v.data if isinstance(v, autodiff.Tensor) else v


def _check_f_output(k, y, t):
    if len(k) != len(y):
        raise ValueError(f"odeint: f(t={t:g}, y) returned {len(k)} entries for a state of "
                         f"{len(y)}")
    for i, (ki, yi) in enumerate(zip(k, y)):
        if tuple(ki.shape) != tuple(yi.shape):
            raise ValueError(f"odeint: f(t={t:g}, y) entry {i} has shape {tuple(ki.shape)}, "
                             f"the state's has {tuple(yi.shape)}")


def _call(f, t, y, packed):
    """f at (t, y) with y packed as the caller gave it; the result as a tuple."""
    k = f(t, y if packed else y[0])
    k, _ = _as_tuple(k)
    _check_f_output(k, y, t)
    return k


def _check_times(t0, t1):
    for name, v in (("t0", t0), ("t1", t1)):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"odeint: {name} must be a finite number, got {v!r}")
    return float(t0), float(t1)


# ----------------------------------------------------------------- fixed step: RK4
def rk4(f, y0, t0, t1, steps):
    """Classical Runge-Kutta on ``steps`` equal steps h = (t1 - t0) / steps:

        k1 = f(t, y), k2 = f(t + h/2, y + h k1/2), k3 = f(t + h/2, y + h k2/2),
        k4 = f(t + h, y + h k3),   y <- y + h (k1 + 2 k2 + 2 k3 + k4) / 6.

    :return: (y1, info) with info = {"nfe": 4 * steps, "steps": steps}.
    """
    t0, t1 = _check_times(t0, t1)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"rk4: steps must be a positive int, got {steps!r}")
    y, packed = _as_tuple(y0)
    h = (t1 - t0) / steps
    for n in range(steps):
        t = t0 + n * h
        k1 = _call(f, t, y, packed)
        k2 = _call(f, t + h / 2, _combine(y, h, [k1], [0.5]), packed)
        k3 = _call(f, t + h / 2, _combine(y, h, [k2], [0.5]), packed)
        k4 = _call(f, t + h, _combine(y, h, [k3], [1.0]), packed)
        y = _combine(y, h, [k1, k2, k3, k4], [1 / 6, 1 / 3, 1 / 3, 1 / 6])
    return (y if packed else y[0]), {"nfe": 4 * steps, "steps": steps}


# ----------------------------------------------------------------- adaptive: Dormand-Prince
# Butcher tableau of DOPRI5 (Dormand & Prince 1980; Hairer et al. 1993, Table II.5.2).
_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
# The 5th-order weights are the last row of A (first same as last: k7 = f(t + h, y1)).
_DP_B = _DP_A[6] + (0.0,)
# b - b_hat: the difference to the embedded 4th-order solution, the local error estimate.
_DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
_SAFETY, _FACMIN, _FACMAX = 0.9, 0.2, 5.0


def _rms_norm(y0, y1, e, rtol, atol):
    """Hairer's scaled RMS norm of the error e (Eq. II.4.11) over every entry of the state."""
    xp = B.xp
    total, count = 0.0, 0
    for a, b, ei in zip(y0, y1, e):
        a, b, ei = _raw(a), _raw(b), _raw(ei)
        scale = atol + rtol * xp.maximum(xp.abs(a), xp.abs(b))
        total += float(((ei / scale) ** 2).sum())
        count += ei.size
    return math.sqrt(total / max(count, 1))


def _initial_step(f, t0, y0, k0, direction, rtol, atol, packed):
    """Hairer et al. 1993, Sec. II.4, "Starting step size" (order p = 5): h0 = 0.01 d0/d1,
    one explicit Euler step to estimate the second derivative, then
    h1 = (0.01 / max(d1, d2))^(1/5); the start is min(100 h0, h1). Costs one evaluation."""
    zeros = tuple(B.xp.zeros_like(_raw(v)) for v in y0)
    d0 = _rms_norm(y0, zeros, y0, rtol, atol)
    d1 = _rms_norm(y0, zeros, k0, rtol, atol)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    y1 = _combine(y0, direction * h0, [k0], [1.0])
    k1 = _call(f, t0 + direction * h0, y1, packed)
    diff = tuple(_raw(b) - _raw(a) for a, b in zip(k0, k1))
    d2 = _rms_norm(y0, zeros, diff, rtol, atol) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1 / 5)
    return min(100 * h0, h1)


def rk45(f, y0, t0, t1, rtol=1e-5, atol=1e-5, first_step=None, max_steps=10_000):
    """Adaptive Dormand-Prince 5(4) from t0 to t1 (module docstring: error norm, control).

    The solution is advanced with the 5th-order weights (local extrapolation), as in DOPRI5.
    The accepted states are recorded Tensor operations (gradients flow through them); the
    step-size control reads raw arrays only.

    :param rtol, atol: relative and absolute tolerances of the local error (> 0).
    :param first_step: |h| of the first step; None chooses it (one extra evaluation).
    :param max_steps: attempted steps (accepted + rejected) before giving up.
    :return: (y1, info) with info = {"nfe", "steps" (accepted), "rejected"}.
    """
    t0, t1 = _check_times(t0, t1)
    for name, v in (("rtol", rtol), ("atol", atol)):
        if not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"rk45: {name} must be a positive number, got {v!r}")
    y, packed = _as_tuple(y0)
    info = {"nfe": 0, "steps": 0, "rejected": 0}
    if t0 == t1:
        return (y if packed else y[0]), info
    direction = 1.0 if t1 > t0 else -1.0
    span = abs(t1 - t0)
    k1 = _call(f, t0, y, packed)
    info["nfe"] += 1
    if first_step is None:
        h = _initial_step(f, t0, y, k1, direction, rtol, atol, packed)
        info["nfe"] += 1
    else:
        if not first_step > 0:
            raise ValueError(f"rk45: first_step must be positive, got {first_step!r}")
        h = float(first_step)
    t = t0
    attempts = 0
    while direction * (t1 - t) > 1e-12 * span:
        if attempts >= max_steps:
            raise RuntimeError(f"rk45: no convergence within max_steps={max_steps} attempted "
                               f"steps (t={t:g} of [{t0:g}, {t1:g}], last |h|={h:.3g}); "
                               "loosen rtol/atol or raise max_steps")
        attempts += 1
        h = min(h, abs(t1 - t))
        hs = direction * h
        ks = [k1]
        for stage in range(1, 7):
            y_stage = _combine(y, hs, ks, _DP_A[stage])
            ks.append(_call(f, t + _DP_C[stage] * hs, y_stage, packed))
            if stage == 6:
                y_new = y_stage  # row 7 of A equals the 5th-order weights (FSAL)
        info["nfe"] += 6
        err_vec = tuple(sum(_raw(k[i]) * (c * hs) for k, c in zip(ks, _DP_E) if c != 0)
                        for i in range(len(y)))
        err = _rms_norm(y, y_new, err_vec, rtol, atol)
        if not math.isfinite(err):
            raise FloatingPointError(f"rk45: the error estimate is {err} at t={t:g}: the "
                                     "velocity returned non-finite values")
        factor = _SAFETY * err ** (-1 / 5) if err > 0 else _FACMAX
        if err <= 1.0:
            t = t1 if h == abs(t1 - t) else t + hs
            y, k1 = y_new, ks[6]
            info["steps"] += 1
            h = h * min(_FACMAX, max(_FACMIN, factor))
        else:
            info["rejected"] += 1
            h = h * min(1.0, max(_FACMIN, factor))
    return (y if packed else y[0]), info


def odeint(f, y0, t0, t1, method="rk45", steps=None, rtol=1e-5, atol=1e-5, **options):
    """Solve dy/dt = f(t, y) from t0 to t1; ``f(t: float, y) -> dy/dt`` with y's structure.

    :param method: 'rk45' (adaptive, ``rtol``/``atol``) or 'rk4' (``steps`` fixed steps).
    :return: (y1, info): the state at t1 and {"nfe", "steps", ...}.
    """
    if method == "rk4":
        if steps is None:
            raise ValueError("odeint: method 'rk4' needs steps (a positive int)")
        return rk4(f, y0, t0, t1, steps)
    if method == "rk45":
        return rk45(f, y0, t0, t1, rtol=rtol, atol=atol, **options)
    raise ValueError(f"odeint: method must be one of {', '.join(SOLVERS)}, got {method!r}")


# ----------------------------------------------------------------- divergence
def _flat_dims(x):
    return math.prod(x.shape[1:]) if x.ndim > 1 else 1


def divergence_exact(v, x, create_graph=False):
    """tr(dv/dx) per example, (N,), by D backward passes (row i of the Jacobian each).

    v and x are Tensors of the same shape (N, *dims); examples must not interact in v
    (then the gradient of sum_n v_n[i] w.r.t. x_n is row i of example n's Jacobian).
    """
    n = x.shape[0]
    d = _flat_dims(x)
    v_flat = v.reshape(n, d)
    total = None
    for i in range(d):
        (g,) = autodiff.grad(v_flat[:, i].sum(), [x], create_graph=create_graph)
        gi = g.reshape(n, d)[:, i]
        total = gi if total is None else total + gi
    return total


def divergence_hutchinson(v, x, eps, create_graph=False):
    """Hutchinson's estimate eps^T (dv/dx) eps per example, (N,): one vector-Jacobian
    product, E_eps[.] = tr(dv/dx) when E[eps eps^T] = I."""
    n = x.shape[0]
    (g,) = autodiff.grad((v * eps).sum(), [x], create_graph=create_graph)
    return (g * eps).reshape(n, _flat_dims(x)).sum(dim=1)


def _draw_noise(shape, noise, generator, dtype):
    if noise == "gaussian":
        return autodiff.randn(*shape, generator=generator, dtype=dtype)
    # Rademacher: +-1 with probability 1/2 each (lower variance than Gaussian: Hutchinson
    # 1990; the variance is sum_{i != j} of the symmetrised Jacobian's squares).
    u = autodiff.rand(*shape, generator=generator, dtype=dtype)
    return autodiff.Tensor(B.xp.where(u.data < 0.5, -1.0, 1.0).astype(u.data.dtype))


# ----------------------------------------------------------------- the likelihood
def ode_log_likelihood(velocity, x, t0, t1, prior_log_prob, divergence="exact",
                       noise="rademacher", generator=None, solver="rk45", steps=None,
                       rtol=1e-5, atol=1e-5, create_graph=False, return_z=False):
    """log p_t0(x) by the instantaneous change of variables (*) (module docstring).

    :param velocity: ``velocity(x: Tensor (N, *dims), t: float) -> Tensor (N, *dims)``, the
        ODE's right-hand side dx/dt; examples must not interact (no batch statistics).
    :param x: Tensor (N, *dims), the points at t0 (data).
    :param t0, t1: the data time and the prior time (t1 < t0 is fine: it integrates
        backwards, e.g. a score model's t from eps to 1 or a flow's t from 1 to 0).
    :param prior_log_prob: ``prior_log_prob(z: Tensor (N, *dims)) -> Tensor (N,)``, log p_t1.
    :param divergence: 'exact' (D backward passes per evaluation; for small D) or
        'hutchinson' (one vector-Jacobian product; an unbiased estimate of log p).
    :param noise: Hutchinson's eps: 'rademacher' or 'gaussian'; drawn once per call from
        ``generator`` (an ``autodiff.Generator``; None: the global one).
    :param solver: 'rk45' (``rtol``, ``atol``) or 'rk4' (``steps``).
    :param create_graph: keep the whole solve differentiable (training a continuous flow
        through the solver); otherwise the result is detached from the graph.
    :return: (log_p Tensor (N,), nfe: velocity evaluations), and z = x(t1) as a third entry
        when ``return_z``.
    """
    if not isinstance(x, autodiff.Tensor):
        raise TypeError(f"ode_log_likelihood: x must be a Tensor, got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"ode_log_likelihood: x must have shape (N, *dims) with N >= 1, got "
                         f"{tuple(x.shape)}")
    if divergence not in ("exact", "hutchinson"):
        raise ValueError(f"ode_log_likelihood: divergence must be 'exact' or 'hutchinson', "
                         f"got {divergence!r}")
    if noise not in ("rademacher", "gaussian"):
        raise ValueError(f"ode_log_likelihood: noise must be 'rademacher' or 'gaussian', got "
                         f"{noise!r}")
    if solver not in SOLVERS:
        raise ValueError(f"ode_log_likelihood: solver must be one of {', '.join(SOLVERS)}, "
                         f"got {solver!r}")
    eps = None
    if divergence == "hutchinson":
        eps = _draw_noise(tuple(x.shape), noise, generator, x.dtype)

    def augmented(t, state):
        xt, _ = state
        with autodiff.enable_grad():
            if create_graph and xt.requires_grad:
                x_in = xt          # keep the path back to the parameters and earlier steps
            else:
                x_in = xt.detach().requires_grad_()
            v = velocity(x_in, t)
            if not isinstance(v, autodiff.Tensor) or tuple(v.shape) != tuple(x_in.shape):
                raise ValueError(f"ode_log_likelihood: velocity(x, t={t:g}) must return a "
                                 f"Tensor of the shape of x {tuple(x_in.shape)}, got "
                                 f"{getattr(v, 'shape', type(v).__name__)}")
            if divergence == "exact":
                div = divergence_exact(v, x_in, create_graph=create_graph)
            else:
                div = divergence_hutchinson(v, x_in, eps, create_graph=create_graph)
        if not create_graph:
            v, div = v.detach(), div.detach()
        return (v, div)

    x0 = x if create_graph else x.detach()
    delta0 = autodiff.zeros(x.shape[0], dtype=x.dtype)
    with autodiff.set_grad_enabled(create_graph and autodiff.is_grad_enabled()):
        (z, delta), info = odeint(augmented, (x0, delta0), t0, t1, method=solver, steps=steps,
                                  rtol=rtol, atol=atol)
    with autodiff.set_grad_enabled(create_graph and autodiff.is_grad_enabled()):
        log_p = prior_log_prob(z) + delta
    if tuple(log_p.shape) != (x.shape[0],):
        raise ValueError(f"ode_log_likelihood: prior_log_prob must return shape (N,) = "
                         f"({x.shape[0]},), got {tuple(log_p.shape)}")
    if not create_graph:
        log_p = log_p.detach()
    if return_z:
        return log_p, info["nfe"], z
    return log_p, info["nfe"]
