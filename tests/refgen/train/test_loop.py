"""``refgen.train.fit``: determinism, in-process resume, schedules, clipping, EMA,
evaluation, two players, logging and its errors."""
import json
import math

import numpy as np  # host-side: exact comparisons of parameter arrays in tests
import pytest

import autodiff
import autodiff.functional as F
from autodiff import nn
from autodiff.optim import lr_scheduler
from refgen.train import CheckpointError, TrainConfig, fit, load_checkpoint, read_log

from .toy_trainable import (MLPClassifier, ToyData, ToyGAN, ToyLoader, assert_identical,
                            default_config, run_mlp)


def params_of(model):
    return {k: v.numpy().copy() for k, v in model.net.state_dict().items()}


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    a, _ = run_mlp(tmp_path / "a")
    b, _ = run_mlp(tmp_path / "b")
    c, _ = run_mlp(tmp_path / "c", seed=8)
    pa, pb, pc = params_of(a), params_of(b), params_of(c)
    for k in pa:
        assert np.array_equal(pa[k], pb[k])
    assert any(not np.array_equal(pa[k], pc[k]) for k in pa)


class _Crash(Exception):
    pass


def test_crash_then_resume_in_process_is_bit_identical(tmp_path):
    _, ref = run_mlp(tmp_path / "ref", eval_every=5)
    original = MLPClassifier.training_step

    def crashing(self, batch, step, ctx):
        if step == 10:
            raise _Crash
        return original(self, batch, step, ctx)

    MLPClassifier.training_step = crashing
    try:
        with pytest.raises(_Crash):
            run_mlp(tmp_path / "run", eval_every=5)
    finally:
        MLPClassifier.training_step = original
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")["step"] == 8
    autodiff.manual_seed(12345)  # the resumed run must not depend on the state it starts in
    model, res = run_mlp(tmp_path / "run", resume=True, eval_every=5)
    assert model.eval_calls == [10, 13]  # evaluations after the checkpoint only
    a = load_checkpoint(ref.checkpoint_path)
    b = load_checkpoint(res.checkpoint_path)
    for key in ("modules", "optimizers", "schedulers", "ema", "rng", "loader", "metrics"):
        assert_identical(a[key], b[key], key)
    assert res.eval_metrics == ref.eval_metrics


def test_evaluation_does_not_change_training(tmp_path):
    a, _ = run_mlp(tmp_path / "a", eval_every=2)
    b, _ = run_mlp(tmp_path / "b", eval_every=None)
    assert a.eval_calls == [2, 4, 6, 8, 10, 12, 13] and b.eval_calls == [13]
    pa, pb = params_of(a), params_of(b)
    for k in pa:
        assert np.array_equal(pa[k], pb[k])


def test_resume_can_extend_a_constant_schedule(tmp_path):
    full, _ = run_mlp(tmp_path / "full", lr_schedule="constant", warmup_steps=0, steps=12)
    run_mlp(tmp_path / "part", lr_schedule="constant", warmup_steps=0, steps=8)
    part, _ = run_mlp(tmp_path / "part", lr_schedule="constant", warmup_steps=0, steps=12,
                      resume=True)
    pa, pb = params_of(full), params_of(part)
    for k in pa:
        assert np.array_equal(pa[k], pb[k])


def test_logged_lr_follows_the_schedule(tmp_path):
    _, res = run_mlp(tmp_path / "a", log_every=1)
    lrs = [r["lr/model"] for r in read_log(res.log_path)]
    # reference: the same schedule on a throwaway optimiser, rate used at steps 0..12
    opt = autodiff.optim.SGD([autodiff.zeros(1, requires_grad=True)], lr=3e-2)
    sched = lr_scheduler.warmup_cosine(opt, warmup_steps=3, total_steps=13)
    expected = []
    for _ in range(13):
        expected.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == expected
    assert lrs[0] < lrs[3] and lrs[-1] < lrs[3]  # warms up, then decays


def test_constant_schedule_with_warmup(tmp_path):
    _, res = run_mlp(tmp_path / "a", log_every=1, lr_schedule="constant", warmup_steps=4)
    lrs = [r["lr/model"] for r in read_log(res.log_path)]
    # LinearLR from lr / W to lr over W steps: lr (1/W + (1 - 1/W) t / W), t <= W
    assert lrs[:4] == pytest.approx([3e-2 * (0.25 + 0.75 * t / 4) for t in range(4)],
                                    rel=1e-12)
    assert lrs[4:] == pytest.approx([3e-2] * 9, rel=1e-15)


def test_gradient_clipping_bounds_the_update(tmp_path):
    """With SGD (no momentum) one step moves the parameters by lr * clipped gradient, whose
    norm is min(norm, c) (clip_grad_norm_ rescales by c / (norm + 1e-6))."""
    steps = []
    for clip in (None, 1e-3):
        model = MLPClassifier()
        before = np.concatenate([p.numpy().ravel() for p in model.net.parameters()])
        cfg = default_config(tmp_path / f"c{clip}", steps=1, optimizer="sgd", lr=1.0,
                             lr_schedule="constant", warmup_steps=0, grad_clip=clip,
                             ema_decay=None, log_every=1)
        res = fit(model, ToyLoader(ToyData(), 16, autodiff.Generator(1)), cfg, progress=False)
        after = np.concatenate([p.numpy().ravel() for p in model.net.parameters()])
        steps.append((np.linalg.norm(after - before), res.metrics))
    (free, m_free), (clipped, m_clip) = steps
    assert "grad_norm/model" not in m_free
    assert free > 1e-2  # the raw gradient is far larger than the clip
    assert m_clip["grad_norm/model"] == pytest.approx(free, rel=1e-12)
    assert clipped == pytest.approx(1e-3 * free / (free + 1e-6), rel=1e-9)


def test_ema_is_in_checkpoint_and_used_for_evaluation(tmp_path):
    """The checkpoint's EMA follows shadow <- d shadow + (1 - d) param with TF's warmed-up
    d = min(decay, (1 + n) / (10 + n)); evaluate sees the averaged weights and the raw ones
    come back afterwards."""
    seen = []
    trajectory = []

    class Spy(MLPClassifier):
        def training_step(self, batch, step, ctx):
            out = super().training_step(batch, step, ctx)
            trajectory.append([p.numpy().copy() for p in self.net.parameters()])
            return out

        def evaluate(self, data, ctx):
            seen.append([p.numpy().copy() for p in self.net.parameters()])
            return {}

    model = Spy()
    shadow = [p.numpy().copy() for p in model.net.parameters()]
    cfg = default_config(tmp_path / "e", ema_decay=0.5, eval_every=13)
    fit(model, ToyLoader(ToyData(), 16, autodiff.Generator(8)), cfg, eval_data=ToyData(),
        progress=False)
    for n, params in enumerate(trajectory):
        d = min(0.5, (1 + n) / (10 + n))
        shadow = [d * s + (1 - d) * p for s, p in zip(shadow, params)]
    ema = load_checkpoint(tmp_path / "e" / "checkpoint.npz")["ema"]
    for s, t, e in zip(shadow, ema["shadow_params"], seen[0]):
        np.testing.assert_allclose(t.numpy(), s, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(e, s, rtol=1e-13, atol=1e-15)
    raw = [p.numpy() for p in model.net.parameters()]
    for r, p in zip(raw, trajectory[-1]):
        assert np.array_equal(r, p)
    assert not np.allclose(raw[0], seen[0][0])


def test_two_players_alternate_and_only_the_updated_player_moves(tmp_path):
    gan = ToyGAN(critic_steps=2)
    g_params, d_params = gan.parameter_groups().values()
    log = []

    class Spy(ToyGAN):
        def training_step(self, batch, step, ctx):
            x, _ = batch
            before = [p.numpy().copy() for p in g_params + d_params]
            fake = self.G(autodiff.randn(x.shape[0], 1, generator=ctx.generator))
            ctx.optimize("critic", (F.softplus(-self.D(x)) + F.softplus(self.D(fake))).mean())
            mid = [p.numpy().copy() for p in g_params + d_params]
            log.append((before, mid))
            assert all(p.grad is None for p in g_params + d_params)  # no stale gradients
            fake = self.G(autodiff.randn(x.shape[0], 1, generator=ctx.generator))
            loss_g = F.softplus(-self.D(fake)).mean()
            ctx.optimize("generator", loss_g)
            return {"loss_g": loss_g.item()}

    spy = Spy.__new__(Spy)
    spy.__dict__.update(gan.__dict__)
    cfg = default_config(tmp_path / "g", steps=3, lr_schedule="constant", warmup_steps=0,
                         players={"critic": {"lr": 1e-2,
                                                                      "betas": (0.5, 0.9)}},
                         grad_clip=None, ema_decay=0.9, log_every=1)
    res = fit(spy, ToyLoader(ToyData(), 16, autodiff.Generator(2)), cfg, progress=False)
    n_g = len(g_params)
    for before, mid in log:
        # the critic's update (its loss reaches G's parameters too) changed only the critic
        assert all(np.array_equal(b, m) for b, m in zip(before[:n_g], mid[:n_g]))
        assert any(not np.array_equal(b, m) for b, m in zip(before[n_g:], mid[n_g:]))
    records = read_log(res.log_path)
    assert set(records[0]) >= {"lr/critic", "lr/generator", "loss_g"}
    ckpt = load_checkpoint(res.checkpoint_path)
    assert set(ckpt["optimizers"]) == {"generator", "critic"}
    assert ckpt["optimizers"]["critic"]["param_groups"][0]["betas"] == (0.5, 0.9)
    assert ckpt["optimizers"]["generator"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert ckpt["ema"]["num_updates"] == 3  # once per loop step, not per ctx.optimize


def test_gan_toy_resumes_bit_identically(tmp_path):
    def run(out, steps, resume=False):
        gan = ToyGAN()
        cfg = default_config(out, steps=steps, lr_schedule="constant", warmup_steps=0,
                             grad_clip=None, players={"critic": {"grad_clip": 0.1}},
                             checkpoint_every=3)
        fit(gan, ToyLoader(ToyData(), 16, autodiff.Generator(4)), cfg, resume=resume,
            progress=False)
        return load_checkpoint(out / "checkpoint.npz")

    ref = run(tmp_path / "a", 6)
    run(tmp_path / "b", 3)
    out = run(tmp_path / "b", 6, resume=True)
    for key in ("modules", "optimizers", "ema", "rng", "loader"):
        assert_identical(ref[key], out[key], key)
    assert "grad_norm/critic" in ref["metrics"] and "grad_norm/generator" not in ref["metrics"]


def test_log_means_over_the_interval_and_config_json(tmp_path):
    _, every = run_mlp(tmp_path / "a", log_every=1)
    _, third = run_mlp(tmp_path / "b", log_every=3)
    losses = [r["loss"] for r in read_log(every.log_path)]
    recs = read_log(third.log_path)
    assert [r["step"] for r in recs] == [3, 6, 9, 12, 13]
    assert recs[1]["loss"] == pytest.approx(sum(losses[3:6]) / 3, rel=1e-14)
    assert recs[-1]["loss"] == pytest.approx(losses[12], rel=1e-14)
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert saved["family"] == "toy-mlp" and saved["config"] == {"hidden": 16, "seed": 0}
    assert TrainConfig.from_dict(saved["train_config"]) == third_config(tmp_path / "b")


def third_config(out):
    return default_config(out, log_every=3)


def test_fit_builds_a_batch_loader_from_a_dataset(tmp_path):
    try:
        from refgen.data import ArrayDataset, BatchLoader  # noqa: F401
    except ImportError:
        pytest.skip("refgen.data.ArrayDataset/BatchLoader are not available yet")
    ds = ArrayDataset(ToyData().x.numpy(), ToyData().y.numpy(), name="toy")
    runs = []
    for name in ("a", "b"):
        model = MLPClassifier()
        cfg = default_config(tmp_path / name, steps=5)
        runs.append((model, fit(model, ds, cfg, progress=False)))
    for k, v in params_of(runs[0][0]).items():
        assert np.array_equal(v, params_of(runs[1][0])[k])
    assert load_checkpoint(runs[0][1].checkpoint_path)["loader"]["position"] == 5 * 16 % 96


# --------------------------------------------------------------------------- errors
def test_resume_without_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot resume: no checkpoint at .*checkpoint.npz"):
        run_mlp(tmp_path / "none", resume=True)


def test_corrupt_checkpoint_names_the_path(tmp_path):
    run_mlp(tmp_path / "a")
    path = tmp_path / "a" / "checkpoint.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        run_mlp(tmp_path / "a", resume=True)


def test_resume_refuses_a_different_run_naming_the_keys(tmp_path):
    run_mlp(tmp_path / "a", steps=8)
    with pytest.raises(CheckpointError) as err:
        run_mlp(tmp_path / "a", resume=True, lr=0.01)
    assert str(tmp_path / "a" / "checkpoint.npz") in str(err.value)
    assert "train_config.lr (0.03 in the checkpoint, 0.01 now)" in str(err.value)
    assert "train_config.steps (8 in the checkpoint, 13 now)" in str(err.value)
    with pytest.raises(CheckpointError, match="family .*'toy-mlp' in the checkpoint"):
        fit(ToyGAN(), ToyLoader(ToyData(), 16, autodiff.Generator(0)),
            default_config(tmp_path / "a", steps=8), resume=True, progress=False)


def test_fresh_run_refuses_to_overwrite_a_checkpoint(tmp_path):
    run_mlp(tmp_path / "a", steps=4)
    with pytest.raises(FileExistsError, match="resume=True"):
        run_mlp(tmp_path / "a", steps=4)


def test_unknown_player_override_lists_the_players(tmp_path):
    with pytest.raises(ValueError, match="unknown player.*'critic'.*players: model"):
        run_mlp(tmp_path / "a", players={"critic": {"lr": 1e-3}})


def test_step_without_optimize_and_nonfinite_loss_are_errors(tmp_path):
    class Lazy(MLPClassifier):
        def training_step(self, batch, step, ctx):
            return {"loss": 0.0}

    class Diverges(MLPClassifier):
        def training_step(self, batch, step, ctx):
            super().training_step(batch, step, ctx)
            return {"loss": math.nan if step == 5 else 1.0}

    loader = ToyLoader(ToyData(), 16, autodiff.Generator(0))
    with pytest.raises(RuntimeError, match="never called ctx.optimize"):
        fit(Lazy(), loader, default_config(tmp_path / "a"), progress=False)
    with pytest.raises(FloatingPointError, match="diverged at step 5: loss = nan; the last "
                                                 "checkpoint is .*checkpoint.npz' at step 4"):
        fit(Diverges(), loader, default_config(tmp_path / "b"), progress=False)
    with pytest.raises(FloatingPointError, match="no checkpoint was written"):
        fit(Diverges(), loader, default_config(tmp_path / "c", checkpoint_every=8),
            progress=False)


def test_a_generator_without_plain_state_is_a_clear_error(tmp_path):
    class Opaque(autodiff.Generator):
        __slots__ = ()

        def get_state(self):
            return object()

    class Model(MLPClassifier):
        def generators(self):
            return {"noise": Opaque(3)}

    with pytest.raises(RuntimeError, match=r"generator generators\(\)\['noise'\] on backend "
                                           f"'{autodiff.get_backend()}': its state is a object"):
        fit(Model(), ToyLoader(ToyData(), 16, autodiff.Generator(0)),
            default_config(tmp_path / "a"), progress=False)


def test_not_a_trainable(tmp_path):
    with pytest.raises(TypeError, match="lacks modules, parameter_groups, training_step, config"):
        fit(object(), None, default_config(tmp_path / "a"))
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        fit(MLPClassifier(), None, {"steps": 3})

    class Shared(MLPClassifier):
        def parameter_groups(self):
            ps = list(self.net.parameters())
            return {"a": ps, "b": ps[:1]}

    with pytest.raises(ValueError, match="in both groups 'a' and 'b'"):
        fit(Shared(), None, default_config(tmp_path / "b"))


def test_a_module_with_buffers_round_trips(tmp_path):
    """BatchNorm running statistics are state too (they are in the module's state_dict)."""
    class WithNorm(MLPClassifier):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(),
                                     nn.Linear(8, 2))

        def generators(self):
            return {}

    def run(out, steps, resume=False):
        m = WithNorm()
        fit(m, ToyLoader(ToyData(), 16, autodiff.Generator(3)),
            default_config(out, steps=steps, lr_schedule="constant", warmup_steps=0),
            resume=resume, progress=False)
        return m

    a = run(tmp_path / "a", 6)
    run(tmp_path / "b", 4)
    b = run(tmp_path / "b", 6, resume=True)
    for k, v in params_of(a).items():
        assert np.array_equal(v, params_of(b)[k]), k


def test_minutes_budget_stops_checkpoints_and_resume_keeps_counting(tmp_path):
    # a budget far below one step's time: the loop stops after its first step, as the
    # last step (evaluated and checkpointed), and says it stopped by time
    model, res = run_mlp(tmp_path / "run", eval_every=None, minutes=1e-12)
    assert res.step == 1 and res.stopped_by_time and res.elapsed > 0
    ckpt = load_checkpoint(res.checkpoint_path)
    assert ckpt["step"] == 1 and ckpt["elapsed"] == pytest.approx(res.elapsed)
    assert model.eval_calls == [1]
    # resumed with the same budget: the time already spent counts, nothing more runs
    _, again = run_mlp(tmp_path / "run", resume=True, minutes=1e-12)
    assert again.step == 1
    # a larger budget may be given on resume (minutes is a bookkeeping option): it finishes
    _, done = run_mlp(tmp_path / "run", resume=True, minutes=1e6)
    assert done.step == default_config(tmp_path).steps and not done.stopped_by_time
    assert done.elapsed >= res.elapsed


def test_minutes_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="minutes must be > 0"):
        default_config(tmp_path, minutes=0)
    with pytest.raises(ValueError, match="minutes must be a finite number"):
        default_config(tmp_path, minutes="5")


class _FakeClock:
    """Stands in for ``time.perf_counter`` in the loop: every reading advances one second,
    so every training step (timed from one reading to the next) counts exactly 1 s."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_cosine_time_decays_over_the_budget_not_the_steps(tmp_path, monkeypatch):
    """lr at the step that starts after e seconds of training = lr0 (1 + cos(pi e / T)) / 2,
    T = 60 * minutes: with 1 s per step and T = 10 s, steps 0..9 run and the lr of step s is
    that of e = s (the steps bound, 10**6, plays no part)."""
    import time
    import types
    monkeypatch.setattr("refgen.train.loop.time",
                        types.SimpleNamespace(perf_counter=_FakeClock(), time=time.time))
    _, res = run_mlp(tmp_path / "run", steps=10 ** 6, minutes=10 / 60, lr=3e-2,
                     lr_schedule="cosine_time", warmup_steps=0, log_every=1, grad_clip=None)
    assert res.step == 10 and res.stopped_by_time
    logged = [r["lr/model"] for r in read_log(res.log_path)]
    expected = [3e-2 * (1 + math.cos(math.pi * s / 10)) / 2 for s in range(10)]
    assert logged == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_time_needs_a_budget(tmp_path):
    with pytest.raises(ValueError, match="cosine_time.*needs minutes"):
        default_config(tmp_path, lr_schedule="cosine_time", warmup_steps=0)
