"""GAN family (refgen.families.gan): the losses, the penalties, packing, projection and the
training step, each tested against a mathematical fact in float64.

Breakages tried while writing these tests (each makes at least one test fail):
* ``create_graph=False`` in ``_input_gradient_norms`` (the penalty loses its dependence on
  the critic's parameters: the finite-difference test fails);
* the interpolate xhat = u x_fake + (1 - u) x (u on the wrong side) and the norm squared
  instead of (norm - 1)^2 (the closed-form penalty tests fail);
* the minimax and non-saturating generator losses swapped (the vanishing-gradient test);
* softplus replaced by log(1 - sigmoid) (non-finite loss at a logit of -800);
* packing along the batch axis in the wrong order (pack test); the projection term dropped
  (projection test); one critic update instead of n_critic (update-count test).
"""
import math

import numpy as np
import pytest

import autodiff
import autodiff.functional as F
from refgen.families import gan
from refgen.families.base import data_info_for_config
from refgen.families.gan.model import Discriminator
from refgen.data import load_dataset
from refgen.train import TrainConfig
from refgen.train.context import TrainContext


def _info(name):
    d = load_dataset(name, split="train", **({"n": 64} if name.startswith("ring") else {}))
    info = dict(d.info)
    info.setdefault("name", name)
    return d, info


def _build(family, name, **overrides):
    d, info = _info(name)
    config = family.smoke_config(info)
    config.update(overrides, data_info=data_info_for_config(info))
    return family.build(config, info), d


def _params(module):
    return list(module.parameters())


# --------------------------------------------------------------------------- WGAN-GP penalty
def test_gradient_penalty_gradient_matches_finite_differences():
    """d GP / d theta by the double backward equals central differences, parameter by
    parameter, for a 2-layer leaky-ReLU critic (float64; h = 1e-6: truncation O(h^2) and
    rounding O(1e-16 / h) are both below 1e-9 of the gradient's scale)."""
    critic = Discriminator((2,), hidden=5, depth=2, base_width=1)
    gen = autodiff.Generator(0)
    x_real = autodiff.randn(6, 2, generator=gen)
    x_fake = autodiff.randn(6, 2, generator=gen) + 1.0
    u = autodiff.rand(6, generator=gen)
    params = _params(critic)
    gp = gan.gradient_penalty(critic, x_real, x_fake, u)
    grads = autodiff.grad(gp, params)
    # a leaky-ReLU network's input gradient is a product of weights and activation
    # slopes: piecewise constant in the biases (no gradient), differentiable in the weights
    names = [name for name, _ in critic.named_parameters()]
    assert all(g is not None for n, g in zip(names, grads) if n.endswith("weight")), names
    h = 1e-6
    for p, g in zip(params, grads):
        g = np.zeros(p.shape) if g is None else g.numpy()
        flat = p.data.reshape(-1)
        numeric = np.empty(flat.shape)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            up = gan.gradient_penalty(critic, x_real, x_fake, u).item()
            flat[i] = old - h
            down = gan.gradient_penalty(critic, x_real, x_fake, u).item()
            flat[i] = old
            numeric[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(g.reshape(-1), numeric, rtol=1e-6, atol=1e-9)


def test_gradient_penalty_closed_forms():
    """Linear critic D(x) = w.x: grad = w everywhere, GP = (|w| - 1)^2.
    Quadratic critic D(x) = |x|^2 / 2: grad = xhat, GP = mean (|u x + (1 - u) x'| - 1)^2."""
    w = autodiff.tensor([[0.3], [-2.0]], requires_grad=True)
    x, xf = autodiff.randn(5, 2), autodiff.randn(5, 2)
    u = autodiff.rand(5)
    gp = gan.gradient_penalty(lambda v: (v @ w).reshape(-1), x, xf, u)
    norm = math.hypot(0.3, 2.0)
    np.testing.assert_allclose(gp.item(), (norm - 1.0) ** 2, rtol=1e-13)
    (g,) = autodiff.grad(gp, [w])      # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    np.testing.assert_allclose(g.numpy(), 2 * (norm - 1) * w.numpy() / norm, rtol=1e-12)

    gp = gan.gradient_penalty(lambda v: 0.5 * (v * v).sum(1), x, xf, u)
    uu = u.numpy()[:, None]
    xhat = uu * x.numpy() + (1 - uu) * xf.numpy()
    np.testing.assert_allclose(gp.item(), np.mean((np.linalg.norm(xhat, axis=1) - 1) ** 2),
                               rtol=1e-13)


def test_r1_penalty_closed_form():
    w = autodiff.tensor([[0.5], [1.5]], requires_grad=True)
    r1 = gan.r1_penalty(lambda v: (v @ w).reshape(-1), autodiff.randn(4, 2))
    np.testing.assert_allclose(r1.item(), 0.25 + 2.25, rtol=1e-13)
    (g,) = autodiff.grad(r1, [w])
    np.testing.assert_allclose(g.numpy(), 2 * w.numpy(), rtol=1e-13)


# --------------------------------------------------------------------------- the losses
def test_minimax_generator_gradient_vanishes_where_d_rejects_fakes_and_ns_does_not():
    """Goodfellow et al. 2014, Sec. 3: where D(G(z)) = sigmoid(d) -> 0, dL/dd of the minimax
    loss is -sigmoid(d)/M -> 0 while the non-saturating one is -sigmoid(-d)/M -> -1/M. With
    logits near -30 the minimax gradient on G's parameters is e^{-30}-small relative to the
    non-saturating one (per example ratio e^{d_i} <= e^{-25})."""
    model, _ = _build(gan, "ring8", hidden=8)
    with autodiff.no_grad():
        model.discriminator.head.bias.data[...] = -30.0
    z = autodiff.randn(32, model.config["z_dim"], generator=autodiff.Generator(1))
    g_params = _params(model.generator)
    d = model.discriminator(model.generator(z))
    assert float(d.numpy().max()) < -25.0
    norms = {}
    for loss in ("minimax", "ns"):
        d = model.discriminator(model.generator(z))
        grads = autodiff.grad(gan.generator_loss(loss, d), g_params)
        norms[loss] = math.sqrt(sum(float((g.numpy() ** 2).sum()) for g in grads))
    assert norms["ns"] > 1e-3
    assert norms["minimax"] < math.exp(-25.0) * norms["ns"] * 10   # per-example ratio bound
    # and at the logit itself
    d = autodiff.tensor([-30.0, -35.0], requires_grad=True)
    (g_mm,) = autodiff.grad(gan.generator_loss("minimax", d), [d])
    (g_ns,) = autodiff.grad(gan.generator_loss("ns", d), [d])
    np.testing.assert_allclose(g_mm.numpy(), -0.5 / (1 + np.exp(-d.numpy())), rtol=1e-12)
    np.testing.assert_allclose(g_ns.numpy(), -0.5 / (1 + np.exp(d.numpy())), rtol=1e-12)


def test_losses_equal_their_definitions_and_stay_finite():
    d_real = autodiff.tensor([2.0, -1.0, 0.3])
    d_fake = autodiff.tensor([-0.5, 1.5])
    sig = lambda v: 1 / (1 + np.exp(-v))   # noqa: E731
    r, f = d_real.numpy(), d_fake.numpy()
    expected = -np.mean(np.log(sig(r))) - np.mean(np.log(1 - sig(f)))
    for loss in ("ns", "minimax"):
        np.testing.assert_allclose(gan.discriminator_loss(loss, d_real, d_fake).item(),
                                   expected, rtol=1e-13)
    np.testing.assert_allclose(gan.generator_loss("minimax", d_fake).item(),
                               np.mean(np.log(1 - sig(f))), rtol=1e-13)
    np.testing.assert_allclose(gan.generator_loss("ns", d_fake).item(),
                               -np.mean(np.log(sig(f))), rtol=1e-13)
    np.testing.assert_allclose(gan.discriminator_loss("hinge", d_real, d_fake).item(),
                               np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
                               rtol=1e-13)
    np.testing.assert_allclose(gan.discriminator_loss("wasserstein", d_real, d_fake).item(),
                               f.mean() - r.mean(), rtol=1e-13)
    # logits far in the tails: log sigmoid(-800) = -800 exactly in the softplus form
    far = autodiff.tensor([-800.0])
    assert gan.generator_loss("ns", far).item() == pytest.approx(800.0, rel=1e-15)
    assert gan.discriminator_loss("ns", far, -far).item() == pytest.approx(1600.0, rel=1e-15)
    with pytest.raises(ValueError, match="unknown loss 'lsgan'"):
        gan.generator_loss("lsgan", far)


# --------------------------------------------------------------------------- packing, projection
def test_pack_concatenates_consecutive_examples_along_features():
    x = autodiff.randn(6, 2, 3, 3)
    p = gan.pack(x, 3).numpy()
    assert p.shape == (2, 6, 3, 3)
    np.testing.assert_array_equal(p[1, 2:4], x.numpy()[4])
    np.testing.assert_array_equal(gan.pack(autodiff.randn(4, 2), 2).numpy().shape, (2, 4))
    with pytest.raises(ValueError, match="pack=4"):
        gan.pack(x, 4)


def test_pacgan_discriminator_sees_packs():
    model, _ = _build(gan, "ring8", pack=4)
    assert model.discriminator.features[0].layers[0].in_features == 8
    x = autodiff.randn(12, 2)
    assert tuple(model._critic(None)(x).shape) == (3,)


def test_projection_discriminator_adds_embed_c_dot_phi():
    """Miyato & Koyama 2018, Eq. 3: D(x, c) - D(x, c') = (embed(c) - embed(c'))^T phi(x)."""
    model, _ = _build(gan, "digits", conditional=True, d_norm="none")
    D = model.discriminator
    D.eval()
    x = autodiff.rand(3, 1, 8, 8)
    c1, c2 = autodiff.tensor([0, 4, 9]), autodiff.tensor([1, 4, 2])
    phi = D.features(x).sum(dim=(2, 3)).numpy()
    emb = D.embed.weight.numpy()
    diff = (D(x, c1) - D(x, c2)).numpy()
    np.testing.assert_allclose(diff, ((emb[[0, 4, 9]] - emb[[1, 4, 2]]) * phi).sum(1),
                               rtol=1e-10, atol=1e-12)
    assert diff[1] == 0.0


def test_conditional_generator_follows_its_label():
    model, _ = _build(gan, "digits", conditional=True)
    for m in model.modules().values():
        m.eval()
    a = model.sample(4, autodiff.Generator(0), cond=autodiff.tensor([1, 1, 1, 1])).numpy()
    b = model.sample(4, autodiff.Generator(0), cond=autodiff.tensor([7, 7, 7, 7])).numpy()
    assert a.shape == (4, 1, 8, 8) and not np.allclose(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0    # tanh mapped to the data's [0, 1]
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        model.sample(2, autodiff.Generator(0), cond=autodiff.tensor([3, 10]))
    with pytest.raises(ValueError, match="shape"):
        model.sample(2, autodiff.Generator(0), cond=autodiff.tensor([3]))


# --------------------------------------------------------------------------- training step
@pytest.mark.parametrize("family, n_critic", [(gan, 1), (gan.wgan_gp, 5)])
def test_training_step_updates_each_player_as_the_algorithm_says(family, n_critic):
    model, d = _build(family, "ring8")
    assert model.config["n_critic"] == n_critic
    groups = model.parameter_groups()
    config = TrainConfig(**{k: v for k, v in family.train_defaults({"kind": "points"}).items()
                            if k in ("lr", "betas")})
    from autodiff import optim
    optimizers = {k: optim.Adam(v, lr=config.lr) for k, v in groups.items()}
    ctx = TrainContext(config, groups, optimizers, autodiff.Generator(0))
    ctx.begin_step(0)
    g_before = [p.numpy().copy() for p in groups["generator"]]
    x = autodiff.tensor(d.x[:5 * 8].astype("float64"))
    metrics = model.training_step((x, None), 0, ctx)
    assert ctx.updates == {"discriminator": n_critic, "generator": 1}
    assert all(math.isfinite(v) for v in metrics.values())
    assert any(not np.array_equal(a, p.numpy()) for a, p in zip(g_before, groups["generator"]))
    if family is gan.wgan_gp:
        assert "gradient_penalty" in metrics


def test_wgan_gp_has_the_papers_settings():
    _, info = _info("ring8")
    config = gan.wgan_gp.default_config(info)
    assert (config["loss"], config["gp_weight"], config["n_critic"], config["d_norm"]) == \
        ("wasserstein", 10.0, 5, "none")
    options = gan.wgan_gp.train_defaults(info)
    assert options["lr"] == 1e-4 and tuple(options["betas"]) == (0.5, 0.9)


def test_mode_coverage_in_evaluate():
    model, d = _build(gan, "ring8")
    numbers = model.evaluate(d)
    assert set(numbers) == {"modes_captured", "modes_with_20", "high_quality"}
    assert 0 <= numbers["modes_captured"] <= 8


@pytest.mark.parametrize("overrides, match", [
    (dict(loss="lsgan"), "unknown loss"),
    (dict(pack=0), "pack"),
    (dict(z_dim=2.5), "z_dim"),
    (dict(gp_weight=-1.0), "gp_weight"),
])
def test_bad_config_is_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        _build(gan, "ring8", **overrides)


def test_bad_combinations_are_named():
    with pytest.raises(ValueError, match="num_classes"):
        _build(gan, "ring8", conditional=True)
    with pytest.raises(ValueError, match="pack > 1"):
        _build(gan, "digits", conditional=True, pack=2)
    with pytest.raises(ValueError, match="d_norm='none'"):
        _build(gan, "digits", r1_weight=1.0)
    model, _ = _build(gan, "ring8")
    with pytest.raises(ValueError, match="unknown option"):
        model.sample(2, autodiff.Generator(0), steps=3)
    with pytest.raises(ValueError, match="not conditional"):
        model.sample(2, autodiff.Generator(0), cond=autodiff.tensor([0, 1]))


def test_generator_ema_averages_after_each_generator_update():
    """G_ema <- beta G_ema + (1 - beta) G after the update; sample() draws with G_ema."""
    model, d = _build(gan, "ring8", g_ema=0.9)
    before = [p.numpy().copy() for p in model.generator.parameters()]
    groups = model.parameter_groups()
    from autodiff import optim
    ctx = TrainContext(TrainConfig(), groups,
                       {k: optim.Adam(v, lr=1e-2) for k, v in groups.items()},
                       autodiff.Generator(0))
    ctx.begin_step(0)
    model.training_step((autodiff.tensor(d.x[:16].astype("float64")), None), 0, ctx)
    for b, p, e in zip(before, model.generator.parameters(), model.generator_ema.parameters()):
        np.testing.assert_allclose(e.numpy(), 0.9 * b + 0.1 * p.numpy(), rtol=1e-13)
    z = autodiff.randn(3, model.config["z_dim"], generator=autodiff.Generator(2))
    np.testing.assert_allclose(model.sample(3, autodiff.Generator(2)).numpy(),
                               model.generator_ema(z).numpy(), rtol=1e-13)
    assert "generator_ema" in model.modules()


def test_class_accuracy_counts_the_classifiers_agreement_per_class():
    """With a 'classifier' that reads the label back from the generator's input (a fake
    that knows the answer), every class scores 1; one that always says 0 scores 1/K."""
    model, _ = _build(gan, "digits", conditional=True)
    model.generator.eval()
    seen = []
    real_forward = model.generator.forward

    def forward(z, c=None):
        seen.append(c.numpy().copy())
        return real_forward(z, c)
    model.generator.forward = forward
    oracle = iter(seen)

    def knows(x):
        labels = next(oracle)
        return autodiff.tensor(np.eye(10)[labels])
    r = model.class_accuracy(knows, per_class=5)
    assert r["class_accuracy"] == 1.0 and r["per_class"] == [1.0] * 10
    r = model.class_accuracy(lambda x: autodiff.tensor(np.eye(10)[[0] * x.shape[0]]),
                             per_class=5)
    assert r["per_class"] == [1.0] + [0.0] * 9 and r["class_accuracy"] == 0.1
    numbers = model.evaluate(None)
    assert set(numbers) == {"class_accuracy", "class_accuracy_min"}


@pytest.mark.slow
def test_pacgan_covers_every_ring_mode(tmp_path):
    """Quality (slow tier): PacGAN (pack=4) with a generator average, 12,000 steps on ring8
    (the settings of benchmarks/QUALITY.md, where 3 of 3 seeds and the run over training put
    >= 20 high-quality samples on all 8 modes): every mode gets >= 20 of 2500 samples within
    3 std (Srivastava et al. 2017 protocol)."""
    from refgen.metrics.modes import mode_coverage
    from refgen.train import fit
    _, info = _info("ring8")
    train = load_dataset("ring8", split="train")
    config = gan.default_config(info)
    config.update(pack=4, g_ema=0.999, data_info=data_info_for_config(info))
    model = gan.build(config, info)
    options = dict(gan.train_defaults(info))
    options.update(steps=12000, seed=1, eval_every=None, out_dir=str(tmp_path))
    fit(model, train, TrainConfig(**options), progress=False)
    r = mode_coverage(model.sample(2500, autodiff.Generator(0)), "ring8")
    assert r["modes_with_min_count"] == 8, r
