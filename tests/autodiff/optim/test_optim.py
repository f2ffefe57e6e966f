"""Optimisers: update rules on hand-computed cases, groups, closures, checkpoints, EMA,
clipping and schedules (closed forms). PyTorch comparisons live in
test_optim_crosscheck.py."""
import math

import numpy as np  # host-side reference computations in tests
import pytest
from hypothesis import given, settings, strategies as st

import autodiff
from autodiff import backend as B, optim
from autodiff.optim import lr_scheduler as S


def leaf(values, dtype=None):
    return autodiff.tensor(values, dtype=dtype, requires_grad=True)


def set_grad(p, values):
    p.grad = autodiff.tensor(np.asarray(values, dtype=p.dtype))


def quad_step(opt, params):
    """zero_grad, loss = sum of p^2 over params (gradient 2p), backward, step."""
    opt.zero_grad()
    loss = None
    for p in params:
        term = (p * p).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    opt.step()
    return loss


# ----------------------------------------------------------------------------- SGD
def test_sgd_plain_momentum_nesterov_weight_decay_by_hand():
    p = leaf([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    quad_step(opt, [p])                      # buf = g = [2, 4]
    np.testing.assert_allclose(p.numpy(), [0.8, 1.6], rtol=1e-15)
    quad_step(opt, [p])                      # g = [1.6, 3.2]; buf = 0.9 [2, 4] + g
    np.testing.assert_allclose(p.numpy(), [0.8 - 0.1 * 3.4, 1.6 - 0.1 * 6.8], rtol=1e-15)

    q = leaf([1.0, 2.0])
    quad_step(optim.SGD([q], lr=0.1, momentum=0.9, nesterov=True), [q])
    # d = g + 0.9 * buf with buf = g on the first step
    np.testing.assert_allclose(q.numpy(), [1 - 0.1 * 3.8, 2 - 0.1 * 7.6], rtol=1e-15)

    r = leaf([1.0, -2.0])
    quad_step(optim.SGD([r], lr=0.1, weight_decay=0.5), [r])   # g = 2r + 0.5 r
    np.testing.assert_allclose(r.numpy(), [1 - 0.25, -2 + 0.5], rtol=1e-15)

    s = leaf([1.0])
    opt = optim.SGD([s], lr=0.1, momentum=0.5, dampening=0.5)
    quad_step(opt, [s])                      # buf = 2 -> s = 0.8
    quad_step(opt, [s])                      # buf = 0.5*2 + 0.5*1.6 = 1.8 -> s = 0.62
    np.testing.assert_allclose(s.numpy(), [0.62], rtol=1e-14)

    m = leaf([1.0])
    quad_step(optim.SGD([m], lr=0.1, maximize=True), [m])
    np.testing.assert_allclose(m.numpy(), [1.2], rtol=1e-15)


def test_sgd_argument_errors():
    p = leaf([1.0])
    with pytest.raises(ValueError, match="SGD.*learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


# ----------------------------------------------------------------------------- Adam
def reference_adam(p, grads, lr, betas, eps, weight_decay, amsgrad, decoupled):
    """Kingma & Ba's Algorithm 1 with PyTorch's eps placement, written plainly."""
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps)
        out.append(p)
    return out


@settings(max_examples=25)
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=3),
       lr=st.floats(1e-4, 0.5), b1=st.floats(0.0, 0.99), b2=st.floats(0.5, 0.9999),
       eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 0.1]),
       amsgrad=st.booleans(), decoupled=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_adam_matches_plain_reference(shape, lr, b1, b2, eps, weight_decay, amsgrad, decoupled,
                                      seed):
    """Given the same gradient sequence, Adam/AdamW follow Algorithm 1 (PyTorch's eps)."""
    rng = np.random.default_rng(seed)
    p0 = rng.normal(size=shape)
    grads = [rng.normal(size=shape) * rng.choice([1e-3, 1.0, 10.0]) for _ in range(6)]
    expected = reference_adam(p0, grads, lr, (b1, b2), eps, weight_decay, amsgrad, decoupled)
    p = leaf(p0)
    cls = optim.AdamW if decoupled else optim.Adam
    opt = cls([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
    for t, g in enumerate(grads):
        set_grad(p, g)
        opt.step()
        np.testing.assert_allclose(p.numpy(), expected[t], rtol=1e-12, atol=1e-14,
                                   err_msg=f"step {t + 1}")
    assert opt.state[p]["step"] == len(grads)


def test_adam_first_step_is_lr_times_sign():
    """Bias correction makes the first step lr * g / (|g| + eps)."""
    p = leaf([1.0, -2.0, 0.0])
    opt = optim.Adam([p], lr=0.1)
    quad_step(opt, [p])
    g = np.array([2.0, -4.0, 0.0])
    np.testing.assert_allclose(p.numpy(), [1.0, -2.0, 0.0] - 0.1 * g / (np.abs(g) + 1e-8),
                               rtol=1e-14)


def test_adamw_decay_is_decoupled_and_defaults_match_torch():
    p = leaf([3.0, -1.0])
    opt = optim.AdamW([p], lr=0.1)
    assert opt.defaults["weight_decay"] == 1e-2 and opt.defaults["betas"] == (0.9, 0.999)
    assert opt.defaults["eps"] == 1e-8 and opt.defaults["lr"] == 1e-3 * 100
    set_grad(p, [0.0, 0.0])        # zero gradient: only the decay moves p
    opt.step()
    np.testing.assert_allclose(p.numpy(), [3.0 * (1 - 0.1 * 1e-2), -1.0 * (1 - 0.1 * 1e-2)],
                               rtol=1e-15)
    adam = optim.Adam([leaf([1.0])])
    assert adam.defaults["lr"] == 1e-3 and adam.defaults["weight_decay"] == 0


def test_adam_argument_errors():
    p = leaf([1.0])
    with pytest.raises(ValueError, match="Adam: invalid beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="AdamW: invalid epsilon"):
        optim.AdamW([p], eps=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.Adam([p], weight_decay=-0.1)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.1)])
def test_float32_stays_float32(make):
    p = leaf([1.0, 2.0], dtype="float32")
    opt = make([p])
    for _ in range(3):
        quad_step(opt, [p])
    assert p.dtype == np.float32
    for value in opt.state[p].values():
        if isinstance(value, autodiff.Tensor):
            assert value.dtype == np.float32
            assert isinstance(value.data, B.xp.ndarray)


# ----------------------------------------------------------------------------- base class
def test_param_groups_options_and_add_param_group():
    a, b, c = leaf([1.0]), leaf([1.0]), leaf([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.add_param_group({"params": c, "momentum": 0.9})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5, 0.1]
    assert opt.param_groups[2]["momentum"] == 0.9 and opt.param_groups[0]["momentum"] == 0
    quad_step(opt, [a, b, c])
    np.testing.assert_allclose([a.item(), b.item(), c.item()], [0.8, 0.0, 0.8], rtol=1e-15)
    assert "momentum_buffer" in opt.state[c] and a not in opt.state
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_param_errors():
    p = leaf([1.0])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors.*list"):
        optim.SGD([p, [1.0]], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([p, p], lr=0.1)


def test_named_parameters_and_generators_are_accepted():
    a, b = leaf([1.0]), leaf([2.0])
    opt = optim.SGD(iter([("a", a), ("b", b)]), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a", "b"]
    assert opt.param_groups[0]["params"][1] is b


def test_params_without_grad_are_skipped():
    a, b = leaf([1.0]), leaf([5.0])
    opt = optim.Adam([a, b], lr=0.1)
    quad_step(opt, [a])
    assert b.item() == 5.0 and b not in opt.state and a in opt.state


def test_zero_grad_set_to_none_and_zeros():
    p = leaf([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_closure_is_evaluated_with_grad_and_its_loss_returned():
    p = leaf([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        calls.append(loss.item())
        return loss

    with autodiff.no_grad():          # closure still records (step enables grad for it)
        loss = opt.step(closure)
    assert calls == [5.0] and loss.item() == 5.0
    np.testing.assert_allclose(p.numpy(), [0.8, 1.6], rtol=1e-15)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1)])
def test_graph_recorded_before_step_raises_after_step(make):
    """A step changes parameters in place: backpropagating a stale graph must fail loudly."""
    w = leaf([1.0, 2.0])
    x = autodiff.tensor([3.0, 4.0])
    opt = make([w])
    stale = (w * x).sum()             # records w at version v
    (w * w).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        stale.backward()


# ----------------------------------------------------------------------------- checkpoints
def _trajectory(opt, params, steps):
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((params[0] * params[1]).sum() - 1.0) ** 2 + (params[0] ** 4).sum()
        loss.backward()
        opt.step()
        out.append([p.numpy().copy() for p in params])
    return out


MAKERS = [lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
          lambda ps: optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}],
                                lr=0.05, amsgrad=True),
          lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.1)]


@pytest.mark.parametrize("make", MAKERS, ids=["sgd", "adam", "adamw"])
@pytest.mark.parametrize("through_file", [False, True])
def test_state_dict_resume_gives_identical_trajectory(make, through_file, tmp_path):
    params = [leaf([0.5, -1.0, 2.0]), leaf([1.5, 0.3, -0.7])]
    opt = make(params)
    _trajectory(opt, params, 5)
    ckpt = {"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}
    if through_file:
        autodiff.save(ckpt, tmp_path / "ckpt.npz")
        ckpt = autodiff.load(tmp_path / "ckpt.npz")
    expected = _trajectory(opt, params, 5)

    fresh = [leaf(p.numpy()) for p in ckpt["params"]]
    opt2 = make(fresh)
    opt2.load_state_dict(ckpt["opt"])
    got = _trajectory(opt2, fresh, 5)
    for e, g in zip(expected, got):
        for a, b in zip(e, g):
            np.testing.assert_array_equal(a, b)


def test_state_dict_is_a_snapshot_and_load_checks_layout():
    p = leaf([1.0, 2.0])
    opt = optim.Adam([p], lr=0.1)
    quad_step(opt, [p])
    sd = opt.state_dict()
    before = sd["state"][0]["exp_avg"].numpy().copy()
    quad_step(opt, [p])
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"].numpy(), before)
    assert sd["param_groups"][0]["params"] == [0]

    with pytest.raises(ValueError, match="2 parameter groups.*has 1"):
        optim.Adam([leaf([1.0, 2.0])]).load_state_dict(
            {"state": {}, "param_groups": [sd["param_groups"][0]] * 2})
    with pytest.raises(ValueError, match="group 0 has 1 parameters in the state dict but 2"):
        optim.Adam([leaf([1.0, 2.0]), leaf([1.0])]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(3,\)"):
        optim.Adam([leaf([1.0, 2.0, 3.0])]).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optim.Adam([leaf([1.0])]).load_state_dict({"foo": 1})


def test_load_state_dict_restores_hyperparameters_and_casts_dtype():
    p = leaf([1.0, 2.0])
    opt = optim.Adam([p], lr=0.1, betas=(0.8, 0.9))
    quad_step(opt, [p])
    q = leaf([1.0, 2.0], dtype="float32")
    opt2 = optim.Adam([q], lr=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["betas"] == (0.8, 0.9)
    assert opt2.param_groups[0]["params"][0] is q
    assert opt2.state[q]["exp_avg"].dtype == np.float32


# ----------------------------------------------------------------------------- clipping
def test_clip_grad_norm_by_hand():
    a, b, c = leaf([0.0, 0.0]), leaf([0.0]), leaf([0.0])
    set_grad(a, [3.0, 0.0])
    set_grad(b, [-4.0])
    total = optim.clip_grad_norm_([a, b, c], max_norm=1.0)
    assert isinstance(total, autodiff.Tensor) and total.item() == 5.0
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3.0 * coef, 0.0], rtol=1e-15)
    np.testing.assert_allclose(b.grad.numpy(), [-4.0 * coef], rtol=1e-15)
    assert c.grad is None

    set_grad(a, [3.0, 0.0])
    set_grad(b, [-4.0])
    total = optim.clip_grad_norm_([a, b], max_norm=10.0)   # below the limit: unchanged
    assert total.item() == 5.0 and a.grad.numpy()[0] == 3.0
    total = optim.clip_grad_norm_([a, b], max_norm=2.0, norm_type=float("inf"))
    assert total.item() == 4.0
    np.testing.assert_allclose(b.grad.numpy(), [-4.0 * 2.0 / (4.0 + 1e-6)], rtol=1e-15)
    total = optim.clip_grad_norm_(a, max_norm=1.0, norm_type=1)   # a single Tensor
    np.testing.assert_allclose(total.item(), 3.0 * 2.0 / (4.0 + 1e-6), rtol=1e-15)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf * 0 = nan, as torch
def test_clip_grad_norm_nonfinite_and_empty():
    p = leaf([0.0, 0.0])
    assert optim.clip_grad_norm_([p], 1.0).item() == 0.0
    set_grad(p, [np.inf, 1.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_.*inf"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert math.isinf(optim.clip_grad_norm_([p], 1.0).item())


def test_clip_grad_norm_float32_and_value():
    p = leaf([3.0, -4.0], dtype="float32")
    set_grad(p, [3.0, -4.0])
    total = optim.clip_grad_norm_([p], 1.0)
    assert total.dtype == np.float32 and p.grad.dtype == np.float32
    set_grad(p, [3.0, -0.5])
    optim.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [1.0, -0.5])
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value_([p], -1.0)


# ----------------------------------------------------------------------------- EMA
class _Holder:
    """Stands in for an nn.Module: anything with parameters()."""

    def __init__(self, *ps):
        self.ps = ps

    def parameters(self):
        return iter(self.ps)


def test_ema_update_formula_without_and_with_warmup():
    p = leaf([1.0, 2.0])
    ema = optim.ExponentialMovingAverage([p], decay=0.9, use_num_updates=False)
    with autodiff.no_grad():
        p.copy_(autodiff.tensor([3.0, 0.0]))
    ema.update()
    np.testing.assert_allclose(ema.shadow_params[0].numpy(), [0.9 * 1 + 0.1 * 3, 0.9 * 2],
                               rtol=1e-15)

    q = leaf([1.0])
    ema = optim.ExponentialMovingAverage([q], decay=0.99)
    decays = []
    s = 1.0
    for n, value in enumerate([2.0, 5.0, -1.0]):
        with autodiff.no_grad():
            q.fill_(value)
        d = min(0.99, (1 + n) / (10 + n))
        decays.append(d)
        assert ema.current_decay() == d
        ema.update()
        s = d * s + (1 - d) * value
    np.testing.assert_allclose(ema.shadow_params[0].numpy(), [s], rtol=1e-15)
    assert decays[0] == 0.1 and ema.num_updates == 3


def test_ema_copy_to_store_restore_and_context():
    a, b = leaf([1.0, 2.0]), leaf([[3.0]])
    model = _Holder(a, b)
    ema = optim.ExponentialMovingAverage(model, decay=0.5, use_num_updates=False)
    with autodiff.no_grad():
        a.fill_(5.0)
        b.fill_(7.0)
    ema.update()                                       # shadows: [3, 3.5], [[5]]
    with ema.average_parameters():
        np.testing.assert_array_equal(a.numpy(), [3.0, 3.5])
        np.testing.assert_array_equal(b.numpy(), [[5.0]])
    np.testing.assert_array_equal(a.numpy(), [5.0, 5.0])

    other = _Holder(leaf([0.0, 0.0]), leaf([[0.0]]))    # an evaluation copy of the model
    ema.copy_to(other)
    np.testing.assert_array_equal(other.ps[0].numpy(), [3.0, 3.5])
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(2,\).*\(1, 1\)"):
        ema.copy_to([leaf([0.0, 0.0]), leaf([0.0, 0.0])])
    with pytest.raises(RuntimeError, match="store"):
        ema.restore()


def test_ema_copy_to_invalidates_recorded_graphs():
    p = leaf([1.0])
    ema = optim.ExponentialMovingAverage([p], decay=0.9)
    stale = (p * 2.0).sum()
    ema.copy_to()
    with pytest.raises(RuntimeError, match="in-place"):
        stale.backward()


def test_ema_state_dict_round_trip(tmp_path):
    p = leaf([1.0, 2.0])
    ema = optim.ExponentialMovingAverage([p], decay=0.9)
    for v in (2.0, 3.0):
        with autodiff.no_grad():
            p.fill_(v)
        ema.update()
    autodiff.save(ema.state_dict(), tmp_path / "ema.npz")
    ema2 = optim.ExponentialMovingAverage([leaf([0.0, 0.0])], decay=0.5)
    ema2.load_state_dict(autodiff.load(tmp_path / "ema.npz"))
    assert ema2.decay == 0.9 and ema2.num_updates == 2
    np.testing.assert_array_equal(ema2.shadow_params[0].numpy(), ema.shadow_params[0].numpy())
    with pytest.raises(ValueError, match="shape"):
        optim.ExponentialMovingAverage([leaf([0.0])], 0.9).load_state_dict(ema.state_dict())


# ----------------------------------------------------------------------------- schedules
def _opt(lrs=(0.1,)):
    return optim.SGD([{"params": [leaf([0.0])], "lr": lr} for lr in lrs], lr=lrs[0])


def _lrs(sched, steps):
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        sched.optimizer.step()
        sched.step()
    return out


def test_step_multistep_exponential_closed_forms():
    lrs = _lrs(S.StepLR(_opt(), step_size=3, gamma=0.5), 8)
    np.testing.assert_allclose(lrs, [0.1] * 3 + [0.05] * 3 + [0.025] * 2, rtol=1e-15)
    lrs = _lrs(S.MultiStepLR(_opt(), milestones=[4, 2], gamma=0.1), 6)
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-12)
    lrs = _lrs(S.ExponentialLR(_opt(), gamma=0.9), 4)
    np.testing.assert_allclose(lrs, [0.1 * 0.9 ** t for t in range(4)], rtol=1e-15)


def test_cosine_and_linear_closed_forms():
    lrs = _lrs(S.CosineAnnealingLR(_opt(), T_max=10, eta_min=0.02), 11)
    assert lrs[0] == 0.1
    np.testing.assert_allclose(lrs[5], (0.1 + 0.02) / 2, rtol=1e-15)
    np.testing.assert_allclose(lrs[10], 0.02, rtol=1e-15)
    lrs = _lrs(S.LinearLR(_opt(), start_factor=0.25, end_factor=1.0, total_iters=4), 7)
    np.testing.assert_allclose(lrs, [0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1, 0.1],
                               rtol=1e-14)


def test_lambda_lr_per_group_and_warmup_cosine():
    opt = _opt((0.1, 1.0))
    sched = S.LambdaLR(opt, [lambda t: 1.0 / (t + 1), lambda t: 0.5 ** t])
    sched.step()
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.1 / 3, 0.25], rtol=1e-15)

    lrs = _lrs(S.warmup_cosine(_opt(), warmup_steps=4, total_steps=12, start_factor=0.0 + 1e-3,
                               eta_min=0.0), 13)
    for t in range(4):
        np.testing.assert_allclose(lrs[t], 0.1 * (1e-3 + (1 - 1e-3) * t / 4), rtol=1e-14)
    assert lrs[4] == 0.1
    np.testing.assert_allclose(lrs[8], 0.05, rtol=1e-14)
    assert abs(lrs[12]) < 1e-17


def test_scheduler_state_dict_resumes():
    opt = _opt()
    sched = S.warmup_cosine(opt, warmup_steps=3, total_steps=20)
    _lrs(sched, 7)
    saved = sched.state_dict()
    expected = _lrs(sched, 6)

    opt2 = _opt()
    sched2 = S.warmup_cosine(opt2, warmup_steps=3, total_steps=20)
    sched2.load_state_dict(saved)
    # The optimiser's own lr comes back with its state dict (as in PyTorch).
    opt2.param_groups[0]["lr"] = saved["_last_lr"][0]
    assert _lrs(sched2, 6) == expected

    step = S.StepLR(_opt(), step_size=2)
    _lrs(step, 3)
    step2 = S.StepLR(_opt(), step_size=5, gamma=0.9)
    step2.load_state_dict(step.state_dict())
    assert step2.step_size == 2 and step2.last_epoch == 3 and "optimizer" not in step.state_dict()


def test_scheduler_argument_errors():
    with pytest.raises(ValueError, match="StepLR: step_size"):
        S.StepLR(_opt(), step_size=0)
    with pytest.raises(ValueError, match="LinearLR: start_factor"):
        S.LinearLR(_opt(), start_factor=0.0)
    with pytest.raises(ValueError, match="one milestone fewer"):
        opt = _opt()
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="different optimizer"):
        S.SequentialLR(_opt(), [S.StepLR(_opt(), 2)], milestones=[])
    with pytest.raises(ValueError, match="warmup_steps"):
        S.warmup_cosine(_opt(), warmup_steps=10, total_steps=10)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), step_size=2, last_epoch=5)
