"""Optimisers, schedules and clipping against torch.optim, step by step, in float64.

Tolerance 1e-10 relative: the same float64 arithmetic in a (nearly) identical order;
what differs is summation order in the loss's reductions and norms, which perturbs the
last bits, and over 100 steps of a contracting, smooth problem that stays many orders
of magnitude below 1e-10.
"""
import math

import numpy as np
import pytest

import autodiff
from autodiff import optim
from autodiff.optim import lr_scheduler as ours_sched
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck


def _problem_arrays():
    rng = np.random.default_rng(1234)
    return dict(W=rng.normal(size=(3, 4)), b=rng.normal(size=(3,)), v=rng.normal(size=(3,)),
                X=rng.normal(size=(5, 4)))


def _loss(W, b, v, X):
    """A quadratic plus a tanh layer; the same method names exist in torch and autodiff."""
    h = (X @ W.T + b).tanh()
    return ((h @ v) - 0.5).square().sum() + 0.5 * (W * W).sum() + ((b - 1.0) ** 2).sum() \
        + (v * v * v * v).sum() * 0.1


def _make_params(lib, arrays):
    """(W, b, v) leaves and the fixed input X, as torch or autodiff tensors."""
    if lib == "torch":
        import torch
        params = [torch.tensor(arrays[k], dtype=torch.float64, requires_grad=True)
                  for k in ("W", "b", "v")]
        X = torch.tensor(arrays["X"], dtype=torch.float64)
    else:
        params = [autodiff.tensor(arrays[k], requires_grad=True) for k in ("W", "b", "v")]
        X = autodiff.tensor(arrays["X"])
    return params, X


OPTIMIZERS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.02, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    # beta1 = 0.5 takes torch.lerp's other rounding branch. A small lr keeps this low-beta
    # run away from the stationary point, where Adam's m / sqrt(v) amplifies last-bit
    # differences chaotically (at lr=0.01 they grow ~3x per step from step 90 on).
    ("Adam", dict(lr=0.003, betas=(0.5, 0.9), weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.05, eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.8, 0.99))),
]


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for n, kw in OPTIMIZERS])
def test_trajectory_matches_torch(name, kwargs):
    torch = torch_or_skip()
    arrays = _problem_arrays()
    tp, tX = _make_params("torch", arrays)
    op, oX = _make_params("ours", arrays)
    # Two groups, the second with its own lr, to exercise per-group options.
    t_opt = getattr(torch.optim, name)([{"params": tp[:2]},
                                        {"params": tp[2:], "lr": kwargs["lr"] * 0.5}], **kwargs)
    o_opt = getattr(optim, name)([{"params": op[:2]},
                                  {"params": op[2:], "lr": kwargs["lr"] * 0.5}], **kwargs)
    # maximize=True ascends: give it the negated loss so the run stays bounded.
    sign = -1.0 if kwargs.get("maximize") else 1.0
    for step in range(100):
        t_opt.zero_grad()
        (sign * _loss(*tp, tX)).backward()
        t_opt.step()
        o_opt.zero_grad()
        (sign * _loss(*op, oX)).backward()
        o_opt.step()
        for k, (a, b) in enumerate(zip(op, tp)):
            assert_close(a, b, rtol=1e-10, atol=1e-13, what=f"{name} step {step} param {k}")


def test_adam_state_matches_torch():
    """The moment buffers (not only the parameters) carry PyTorch's names and values."""
    torch = torch_or_skip()
    arrays = _problem_arrays()
    tp, tX = _make_params("torch", arrays)
    op, oX = _make_params("ours", arrays)
    t_opt = torch.optim.Adam(tp, lr=0.01, amsgrad=True)
    o_opt = optim.Adam(op, lr=0.01, amsgrad=True)
    for _ in range(5):
        for opt, params, X in ((t_opt, tp, tX), (o_opt, op, oX)):
            opt.zero_grad()
            _loss(*params, X).backward()
            opt.step()
    for a, b in zip(op, tp):
        ts, os_ = t_opt.state[b], o_opt.state[a]
        assert os_["step"] == int(ts["step"])
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert_close(os_[key], ts[key], what=key)


def _torch_schedulers(torch, opt, which):
    S = torch.optim.lr_scheduler
    return {
        "step": lambda: S.StepLR(opt, step_size=7, gamma=0.5),
        "multistep": lambda: S.MultiStepLR(opt, milestones=[5, 20, 33], gamma=0.3),
        "exponential": lambda: S.ExponentialLR(opt, gamma=0.95),
        "cosine": lambda: S.CosineAnnealingLR(opt, T_max=20, eta_min=0.01),
        "cosine_eta0": lambda: S.CosineAnnealingLR(opt, T_max=50),
        "linear_warmup": lambda: S.LinearLR(opt, start_factor=0.1, end_factor=1.0,
                                            total_iters=10),
        "linear_decay": lambda: S.LinearLR(opt, start_factor=1.0, end_factor=0.2,
                                           total_iters=30),
        "lambda": lambda: S.LambdaLR(opt, lambda t: 1.0 / (1.0 + 0.3 * t)),
        "warmup_cosine": lambda: S.SequentialLR(
            opt, [S.LinearLR(opt, start_factor=1e-3, end_factor=1.0, total_iters=10),
                  S.CosineAnnealingLR(opt, T_max=30, eta_min=0.0)], milestones=[10]),
    }[which]()


def _our_schedulers(opt, which):
    S = ours_sched
    return {
        "step": lambda: S.StepLR(opt, step_size=7, gamma=0.5),
        "multistep": lambda: S.MultiStepLR(opt, milestones=[5, 20, 33], gamma=0.3),
        "exponential": lambda: S.ExponentialLR(opt, gamma=0.95),
        "cosine": lambda: S.CosineAnnealingLR(opt, T_max=20, eta_min=0.01),
        "cosine_eta0": lambda: S.CosineAnnealingLR(opt, T_max=50),
        "linear_warmup": lambda: S.LinearLR(opt, start_factor=0.1, end_factor=1.0,
                                            total_iters=10),
        "linear_decay": lambda: S.LinearLR(opt, start_factor=1.0, end_factor=0.2,
                                           total_iters=30),
        "lambda": lambda: S.LambdaLR(opt, lambda t: 1.0 / (1.0 + 0.3 * t)),
        "warmup_cosine": lambda: S.warmup_cosine(opt, warmup_steps=10, total_steps=40),
    }[which]()


SCHEDULES = ["step", "multistep", "exponential", "cosine", "cosine_eta0", "linear_warmup",
             "linear_decay", "lambda", "warmup_cosine"]


@pytest.mark.parametrize("which", SCHEDULES)
def test_scheduler_lrs_match_torch(which):
    """Learning rates over 50 steps equal torch's (its recursive forms vs our closed forms:
    they differ by rounding only; atol 1e-15 covers values that are exactly 0 in one and
    ~1e-18 in the other at the bottom of a cosine)."""
    torch = torch_or_skip()
    tparams = [torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)]
    oparams = [autodiff.zeros(2, requires_grad=True), autodiff.zeros(1, requires_grad=True)]
    t_opt = torch.optim.SGD([{"params": tparams[:1]}, {"params": tparams[1:], "lr": 0.3}], lr=0.1)
    o_opt = optim.SGD([{"params": oparams[:1]}, {"params": oparams[1:], "lr": 0.3}], lr=0.1)
    t_s = _torch_schedulers(torch, t_opt, which)
    o_s = _our_schedulers(o_opt, which)
    for step in range(50):
        np.testing.assert_allclose(o_s.get_last_lr(), t_s.get_last_lr(), rtol=1e-10, atol=1e-15,
                                   err_msg=f"{which} at step {step}")
        np.testing.assert_allclose([g["lr"] for g in o_opt.param_groups],
                                   [g["lr"] for g in t_opt.param_groups], rtol=1e-10,
                                   atol=1e-15)
        t_opt.step()
        o_opt.step()
        t_s.step()
        o_s.step()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.5])
@pytest.mark.parametrize("max_norm", [1e3, 0.5])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    grads = [rng.normal(size=s) for s in [(3, 4), (5,), (), (2, 1, 3)]]
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    oparams = [autodiff.zeros(g.shape, requires_grad=True) for g in grads]
    for tp_, op_, g in zip(tparams, oparams, grads):
        tp_.grad = torch.tensor(g)
        op_.grad = autodiff.tensor(g)
    extra = autodiff.zeros(3, requires_grad=True)  # no gradient: skipped by both
    t_total = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    o_total = optim.clip_grad_norm_(oparams + [extra], max_norm, norm_type=norm_type)
    assert_close(o_total, t_total, what="total norm")
    for k, (a, b) in enumerate(zip(oparams, tparams)):
        assert_close(a.grad, b.grad, what=f"clipped grad {k}")


def test_clip_grad_value_matches_torch():
    torch = torch_or_skip()
    g = np.random.default_rng(3).normal(size=(4, 5))
    tp_ = torch.zeros(4, 5, dtype=torch.float64, requires_grad=True)
    op_ = autodiff.zeros(4, 5, requires_grad=True)
    tp_.grad, op_.grad = torch.tensor(g), autodiff.tensor(g)
    torch.nn.utils.clip_grad_value_([tp_], 0.7)
    optim.clip_grad_value_([op_], 0.7)
    assert_close(op_.grad, tp_.grad)
    assert_close(op_.grad, to_torch(np.clip(g, -0.7, 0.7)))
