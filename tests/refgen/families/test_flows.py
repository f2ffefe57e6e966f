"""Normalizing flows: every bijection is inverted exactly with log-determinants that cancel and
equal log|det J| of the engine's full Jacobian; the flow's density integrates to one; the LU
1x1 convolution equals the plain one; sampling and likelihood agree (float64, the conftest
fixture)."""
import math

import numpy as np  # host-side: reference computations
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
from autodiff import backend as B
from refgen.families.flows import autoregressive as ar
from refgen.families.flows import bijections as bj
from refgen.families.flows import splines
from refgen.families.flows.models import Flow, standard_normal_log_prob

VEC = (3,)
IMG = (2, 4, 4)


def _randomize(module, seed, scale=0.3):
    """Random parameters (and running statistics) so that no layer is the identity."""
    rng = np.random.default_rng(seed)
    for name, p in module.named_parameters():
        p.data[...] = B.xp.asarray(rng.normal(size=p.shape) * scale)
    for name, buf in module.named_buffers():
        if name.endswith("running_mean"):
            buf.data[...] = B.xp.asarray(rng.normal(size=buf.shape))
        elif name.endswith("running_var"):
            buf.data[...] = B.xp.asarray(np.exp(rng.normal(size=buf.shape)))
        elif name.endswith("initialized"):
            buf.data[...] = 1
    module.eval()   # batch norm: running statistics, a per-example bijection
    return module


def _input(name, shape, n, seed):
    rng = np.random.default_rng(seed + 1)
    if "logit" in name:
        x = rng.uniform(0.02, 0.98, size=(n,) + shape)
    else:
        x = rng.normal(size=(n,) + shape) * 1.5   # reaches the spline's linear tails
    return autodiff.Tensor(x)


def _cond(n, seed, k=2):
    return autodiff.Tensor(np.random.default_rng(seed + 2).normal(size=(n, k)))


def _ms(shape):
    """A two-level multi-scale bijection on (2, 4, 4): couplings, squeeze, split, ..."""
    sq = bj.Squeeze().output_shape(shape)               # (8, 2, 2)
    level = bj.Compose([bj.AffineCoupling(shape, bj.checkerboard_mask(shape, 0), hidden=8,
                                          blocks=1),
                        bj.Squeeze(),
                        bj.AffineCoupling(sq, bj.channel_mask(sq, 1), hidden=8, blocks=1)])
    kept = (4, 2, 2)
    final = bj.Compose([bj.ActNorm(kept), bj.InvConv1x1(kept, lu=True),
                        splines.SplineCoupling(kept, bj.channel_mask(kept, 0), num_bins=4,
                                               tail_bound=2.0, hidden=8, blocks=1)])
    return bj.MultiScale(shape, [level], final)


# name -> (shape, builder, conditional)
FACTORIES = {
    "affine_vec": (VEC, lambda s: bj.AffineCoupling(s, bj.checkerboard_mask(s, 1), hidden=8), 0),
    "affine_vec_cond": (VEC, lambda s: bj.AffineCoupling(s, bj.checkerboard_mask(s, 0),
                                                         hidden=8, cond_features=2), 2),
    "additive_vec": (VEC, lambda s: bj.AdditiveCoupling(s, bj.channel_mask(s, 0), hidden=8), 0),
    "spline_vec": (VEC, lambda s: splines.SplineCoupling(s, bj.checkerboard_mask(s, 0),
                                                         num_bins=5, tail_bound=2.0,
                                                         hidden=8), 0),
    "spline_vec_cond": (VEC, lambda s: splines.SplineCoupling(s, bj.channel_mask(s, 1),
                                                              num_bins=4, tail_bound=2.0,
                                                              hidden=8, cond_features=2), 2),
    "actnorm_vec": (VEC, lambda s: bj.ActNorm(s), 0),
    "invconv_vec": (VEC, lambda s: bj.InvConv1x1(s, lu=False), 0),
    "invconv_lu_vec": (VEC, lambda s: bj.InvConv1x1(s, lu=True), 0),
    "permutation_vec": (VEC, lambda s: bj.Permutation.random(s[0], seed=3), 0),
    "batchnorm_vec": (VEC, lambda s: bj.BatchNormFlow(s), 0),
    "logit_vec": (VEC, lambda s: bj.LogitPreprocess(s, alpha=0.05, value_range=(0.0, 1.0)), 0),
    "compose_vec": (VEC, lambda s: bj.Compose([
        bj.ActNorm(s), bj.AffineCoupling(s, bj.checkerboard_mask(s, 0), hidden=8),
        bj.Permutation.reverse(s[0]), bj.InvConv1x1(s, lu=True),
        splines.SplineCoupling(s, bj.checkerboard_mask(s, 1), num_bins=4, hidden=8),
        bj.BatchNormFlow(s)]), 0),
    "inverse_vec": (VEC, lambda s: bj.Inverse(bj.AffineCoupling(s, bj.checkerboard_mask(s, 0),
                                                                 hidden=8)), 0),
    "maf_vec": (VEC, lambda s: ar.MAFLayer(s[0], [8, 8]), 0),
    "maf_vec_cond": (VEC, lambda s: ar.MAFLayer(s[0], [8], cond_features=2,
                                                ordering="reversed"), 2),
    "iaf_vec": (VEC, lambda s: bj.Inverse(ar.MAFLayer(s[0], [8, 8])), 0),
    "maf_img": (IMG, lambda s: bj.Compose([ar.Flatten(s), ar.MAFLayer(32, [16])]), 0),
    "affine_img_checker": (IMG, lambda s: bj.AffineCoupling(s, bj.checkerboard_mask(s, 0),
                                                            hidden=8, blocks=1), 0),
    "affine_img_channel_cond": (IMG, lambda s: bj.AffineCoupling(s, bj.channel_mask(s, 1),
                                                                 hidden=8, blocks=1,
                                                                 cond_features=2), 2),
    "additive_img": (IMG, lambda s: bj.AdditiveCoupling(s, bj.checkerboard_mask(s, 1),
                                                        hidden=8, blocks=1), 0),
    "spline_img": (IMG, lambda s: splines.SplineCoupling(s, bj.channel_mask(s, 0), num_bins=4,
                                                         tail_bound=2.0, hidden=8,
                                                         blocks=1), 0),
    "actnorm_img": (IMG, lambda s: bj.ActNorm(s), 0),
    "invconv_img": (IMG, lambda s: bj.InvConv1x1(s, lu=False), 0),
    "invconv_lu_img": (IMG, lambda s: bj.InvConv1x1(s, lu=True), 0),
    "batchnorm_img": (IMG, lambda s: bj.BatchNormFlow(s), 0),
    "logit_img": (IMG, lambda s: bj.LogitPreprocess(s, alpha=0.01, value_range=(0.0, 1.0)), 0),
    "squeeze_img": (IMG, lambda s: bj.Squeeze(), 0),
    "multiscale_img": (IMG, _ms, 0),
}


def _build(name, seed):
    shape, make, k = FACTORIES[name]
    return _randomize(make(shape), seed), shape, k


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=6)
@given(seed=st.integers(0, 2 ** 16), n=st.integers(1, 4))
def test_inverse_of_forward_is_identity_and_logdets_cancel(name, seed, n):
    f, shape, k = _build(name, seed)
    x = _input(name, shape, n, seed)
    c = _cond(n, seed, k) if k else None
    z, ld = f(x, c)
    assert tuple(z.shape[1:]) == tuple(f.output_shape(shape))
    assert ld.shape == (n,)
    x_back, ld_inv = f.inverse(z, c)
    np.testing.assert_allclose(x_back.numpy(), x.numpy(), rtol=0, atol=1e-10)
    # rounding of a few float64 operations on log-dets of size ~10
    np.testing.assert_allclose(ld.numpy() + ld_inv.numpy(), 0.0, atol=1e-10)


def _jacobian_logdet(f, x, c):
    """log|det dz/dx| per example from the engine's full Jacobian (one backward per row)."""
    n = x.shape[0]
    d = math.prod(x.shape[1:])
    x = x.detach().requires_grad_()
    z, _ = f(x, c)
    z = z.reshape(n, -1)
    assert z.shape[1] == d
    rows = []
    for i in range(d):
        (g,) = autodiff.grad(z[:, i].sum(), [x])
        rows.append(g.numpy().reshape(n, d))
    jac = np.stack(rows, axis=1)                          # (N, D_out, D_in)
    return np.linalg.slogdet(jac)[1]


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=3)
@given(seed=st.integers(0, 2 ** 16))
def test_logabsdet_equals_log_det_of_the_full_jacobian(name, seed):
    f, shape, k = _build(name, seed)
    n = 2
    x = _input(name, shape, n, seed)
    c = _cond(n, seed, k) if k else None
    _, ld = f(x, c)
    np.testing.assert_allclose(ld.numpy(), _jacobian_logdet(f, x, c), rtol=0, atol=1e-9)
    # and the inverse's log-det is that of the inverse map's Jacobian, at z
    z, _ = f(x, c)
    inv = bj.Inverse(f)
    _, ld_inv = inv(z, c)
    np.testing.assert_allclose(ld_inv.numpy(), _jacobian_logdet(inv, z, c), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(n for n in FACTORIES if FACTORIES[n][2]))
def test_conditional_layers_depend_on_the_condition(name):
    f, shape, _ = _build(name, 1)
    x = _input(name, shape, 3, 1)
    c1, c2 = _cond(3, 1), _cond(3, 2)
    assert np.abs(f(x, c1)[0].numpy() - f(x, c2)[0].numpy()).max() > 1e-3
    assert np.abs(f(x, c1)[1].numpy() - f(x, c2)[1].numpy()).max() > 1e-3
    with pytest.raises(ValueError, match="cond"):
        f(x)


# --------------------------------------------------------------------------- specific layers
def test_couplings_leave_the_masked_half_unchanged_and_start_as_identity():
    shape = IMG
    mask = bj.checkerboard_mask(shape, 0)
    fresh = bj.AffineCoupling(shape, mask, hidden=8, blocks=1)
    x = _input("a", shape, 2, 0)
    z, ld = fresh(x)
    np.testing.assert_array_equal(z.numpy(), x.numpy())   # zero last layer: identity
    np.testing.assert_array_equal(ld.numpy(), 0.0)
    f = _randomize(bj.AffineCoupling(shape, mask, hidden=8, blocks=1), 0)
    z, _ = f(x)
    keep = B.to_numpy(mask).astype(bool)
    np.testing.assert_array_equal(z.numpy()[:, keep], x.numpy()[:, keep])
    assert np.abs(z.numpy()[:, ~keep] - x.numpy()[:, ~keep]).min() > 0


def test_affine_scale_is_bounded():
    """|s| <= scale_bound however large the conditioner's output (tanh saturates to it)."""
    f = _randomize(bj.AffineCoupling(VEC, bj.checkerboard_mask(VEC, 0), hidden=8,
                                     scale_bound=2.0), 0, scale=30.0)
    x = _input("a", VEC, 50, 0)
    _, ld = f(x)
    # one transformed entry per example (mask (1, 0, 1) leaves entry 1 to transform)
    assert np.all(np.abs(ld.numpy()) <= 2.0) and np.abs(ld.numpy()).max() > 1.0


def test_masks():
    cb = B.to_numpy(bj.checkerboard_mask((2, 3, 3), 0))
    assert cb[0, 0, 0] == 1 and cb[0, 0, 1] == 0 and cb[1, 1, 1] == 1
    np.testing.assert_array_equal(B.to_numpy(bj.checkerboard_mask((2, 3, 3), 1)), 1 - cb)
    ch = B.to_numpy(bj.channel_mask((4, 2, 2), 0))
    assert ch[:2].all() and not ch[2:].any()
    np.testing.assert_array_equal(B.to_numpy(bj.checkerboard_mask((4,), 0)), [1, 0, 1, 0])


def test_actnorm_data_dependent_initialisation():
    layer = bj.ActNorm(IMG)
    x = autodiff.Tensor(np.random.default_rng(0).normal(3.0, 2.5, size=(16,) + IMG))
    z, _ = layer(x)                          # training mode: initialises from this batch
    zz = z.numpy()
    np.testing.assert_allclose(zz.mean(axis=(0, 2, 3)), 0.0, atol=1e-10)
    np.testing.assert_allclose(zz.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    before = layer.bias.numpy().copy()
    layer(x * 2.0)                          # initialised once only
    np.testing.assert_array_equal(layer.bias.numpy(), before)


@settings(max_examples=10)
@given(seed=st.integers(0, 2 ** 16), c=st.integers(1, 5))
def test_lu_invconv_equals_plain_with_the_same_weight(seed, c):
    shape = (c, 3, 2)
    w = np.random.default_rng(seed).normal(size=(c, c))
    plain = bj.InvConv1x1.from_weight(shape, w, lu=False)
    lu = bj.InvConv1x1.from_weight(shape, w, lu=True)
    np.testing.assert_allclose(lu.matrix().numpy(), w, atol=1e-12)
    x = _input("a", shape, 3, seed)
    (zp, lp), (zl, ll) = plain(x), lu(x)
    np.testing.assert_allclose(zl.numpy(), zp.numpy(), atol=1e-12)
    np.testing.assert_allclose(ll.numpy(), lp.numpy(), atol=1e-10)
    np.testing.assert_allclose(lp.numpy(), 6 * np.linalg.slogdet(w)[1], atol=1e-10)


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    layer = bj.BatchNormFlow(VEC, momentum=0.5)
    x = autodiff.Tensor(np.random.default_rng(0).normal(2.0, 3.0, size=(64,) + VEC))
    z, ld = layer(x)
    np.testing.assert_allclose(z.numpy().mean(0), 0.0, atol=1e-10)
    np.testing.assert_allclose(z.numpy().var(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(ld.numpy(), -0.5 * np.log(x.numpy().var(0) + 1e-5).sum(),
                               atol=1e-10)
    np.testing.assert_allclose(layer.running_mean.numpy()[0], 0.5 * x.numpy().mean(0))


def test_logit_preprocess_matches_the_data_module():
    from refgen.data import preprocessing
    x = _input("logit", IMG, 3, 0)
    y, ld = bj.LogitPreprocess(IMG, alpha=0.05)(x)
    y_ref, ld_ref = preprocessing.logit_transform(x, alpha=0.05)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(ld.numpy(), ld_ref.numpy(), atol=1e-10)
    # a data range [lo, hi] adds -D log(hi - lo)
    _, ld2 = bj.LogitPreprocess(IMG, alpha=0.05, value_range=(-1.0, 1.0))(2 * x - 1)
    np.testing.assert_allclose(ld2.numpy(), ld.numpy() - 32 * math.log(2), atol=1e-10)


def test_squeeze_is_a_permutation_of_entries():
    x = autodiff.Tensor(np.arange(32.0).reshape(1, 2, 4, 4))
    z, _ = bj.Squeeze()(x)
    assert z.shape == (1, 8, 2, 2)
    assert sorted(z.numpy().ravel()) == list(range(32))


# --------------------------------------------------------------------------- splines
def _spline_params(seed, shape, k, scale=2.0):
    rng = np.random.default_rng(seed)
    t = lambda s: autodiff.Tensor(rng.normal(size=shape + s) * scale)  # noqa: E731
    return t((k,)), t((k,)), t((k - 1,))


@settings(max_examples=20)
@given(seed=st.integers(0, 2 ** 16), k=st.integers(2, 10))
def test_spline_is_monotone_continuous_and_the_identity_in_the_tails(seed, k):
    B_ = 2.0
    x = np.linspace(-3.0, 3.0, 2001)
    w, h, d = _spline_params(seed, (1,), k)
    w, h, d = (autodiff.Tensor(np.broadcast_to(t.numpy(), x.shape + t.shape[1:]).copy())
               for t in (w, h, d))
    y, ld = splines.rational_quadratic_spline(autodiff.Tensor(x), w, h, d, tail_bound=B_)
    y, ld = y.numpy(), ld.numpy()
    assert np.all(np.diff(y) > 0)
    out = np.abs(x) > B_
    np.testing.assert_array_equal(y[out], x[out])
    np.testing.assert_array_equal(ld[out], 0.0)
    # the spline maps [-B, B] onto [-B, B]
    inside = ~out
    assert y[inside].min() >= -B_ - 1e-12 and y[inside].max() <= B_ + 1e-12
    # continuity of the map at every knot (bins meet) and of its derivative at the tail
    # bounds (linear tails: the end derivatives are 1): evaluate at knot -+ 1e-12
    knots, _ = splines._knots(w[:1], B_, 1e-3)
    knots = knots.numpy()[0]
    delta = 1e-12  # the derivative moves by |f"| delta there: up to ~1e5 delta in a thin bin
    pts = np.concatenate([knots - delta, knots + delta])
    one = lambda t: autodiff.Tensor(np.broadcast_to(t.numpy()[:1], (pts.size,) + t.shape[1:]))  # noqa: E731
    yk, ldk = splines.rational_quadratic_spline(autodiff.Tensor(pts), one(w), one(h), one(d),
                                                tail_bound=B_)
    yk, ldk = yk.numpy(), ldk.numpy()
    m = knots.size
    slope = np.exp(ldk).max()
    np.testing.assert_allclose(yk[:m], yk[m:], atol=2 * delta * slope + 1e-13)
    np.testing.assert_allclose(np.exp(ldk[[0, m, m - 1, 2 * m - 1]]), 1.0, atol=1e-6)


@settings(max_examples=20)
@given(seed=st.integers(0, 2 ** 16), k=st.integers(2, 10))
def test_spline_inverse_and_derivative(seed, k):
    n = 200
    x = autodiff.Tensor(np.random.default_rng(seed).uniform(-3.5, 3.5, size=n))
    w, h, d = _spline_params(seed, (n,), k)
    y, ld = splines.rational_quadratic_spline(x, w, h, d, tail_bound=3.0)
    xb, ld_inv = splines.rational_quadratic_spline(y, w, h, d, tail_bound=3.0, inverse=True)
    np.testing.assert_allclose(xb.numpy(), x.numpy(), atol=1e-10)
    np.testing.assert_allclose(ld.numpy() + ld_inv.numpy(), 0.0, atol=1e-9)
    # the log-derivative against central differences of the map (step 1e-6, error ~1e-9)
    e = 1e-6
    yp, _ = splines.rational_quadratic_spline(x + e, w, h, d, tail_bound=3.0)
    ym, _ = splines.rational_quadratic_spline(x - e, w, h, d, tail_bound=3.0)
    fd = (yp.numpy() - ym.numpy()) / (2 * e)
    # (the spline is C^1, so a knot or a tail bound inside [x - e, x + e] costs O(e) only;
    # rounding of y ~ 3 costs ~ 3 * 2.2e-16 / e = 7e-10 absolute)
    np.testing.assert_allclose(np.exp(ld.numpy()), fd, rtol=1e-5, atol=1e-8)


def test_spline_coupling_starts_as_the_identity():
    f = splines.SplineCoupling(VEC, bj.checkerboard_mask(VEC, 0), num_bins=6, hidden=8)
    x = _input("a", VEC, 5, 0)
    z, ld = f(x)
    np.testing.assert_allclose(z.numpy(), x.numpy(), atol=1e-12)
    np.testing.assert_allclose(ld.numpy(), 0.0, atol=1e-12)


def test_spline_rejects_bad_parameter_shapes():
    x = autodiff.zeros(4)
    w = autodiff.zeros(4, 5)
    with pytest.raises(ValueError, match="unnormalized_derivatives"):
        splines.rational_quadratic_spline(x, w, w, autodiff.zeros(4, 5))


# --------------------------------------------------------------------------- the flow
def _two_d_flow(kind, seed, scale=0.4):
    s = (2,)
    layers = []
    for i in range(4):
        m = bj.checkerboard_mask(s, i % 2)
        if kind == "realnvp":
            layers.append(bj.AffineCoupling(s, m, hidden=16))
        else:
            layers += [bj.InvConv1x1(s, lu=True, seed=i),
                       splines.SplineCoupling(s, m, num_bins=6, tail_bound=3.0, hidden=16)]
    return _randomize(Flow(bj.Compose(layers), s), seed, scale=scale)


@pytest.mark.parametrize("kind", ["realnvp", "nsf"])
def test_density_integrates_to_one_on_a_grid(kind):
    """The midpoint rule on [-L, L]^2 plus the tail mass outside the box, estimated from
    10,000 samples of the flow, is 1. The error allowed: 5 binomial standard errors of the tail
    estimate plus the quadrature error, bounded by the change from grid h to h/2 (the midpoint
    rule's error is O(h^2), so that change is 3/4 of the coarse grid's error)."""
    # random parameters of a size that keeps the density resolvable on a 240^2 grid
    flow = _two_d_flow(kind, 7, scale=0.4 if kind == "realnvp" else 0.2)
    L = 6.0

    def integral(m):
        h = 2 * L / m
        g = -L + h * (np.arange(m) + 0.5)
        xx, yy = np.meshgrid(g, g, indexing="ij")
        pts = autodiff.Tensor(np.stack([xx.ravel(), yy.ravel()], 1))
        with autodiff.no_grad():
            return float(np.exp(flow.log_prob(pts).numpy()).sum() * h * h)

    coarse, fine = integral(120), integral(240)
    quad_err = abs(fine - coarse) * 4 / 3 + 1e-12
    with autodiff.no_grad():
        xs = flow.sample(10000, autodiff.Generator(0)).numpy()
    tail = float(np.mean(np.abs(xs).max(1) > L))
    tail_se = math.sqrt(max(tail * (1 - tail), 1e-4) / len(xs))
    assert abs(fine + tail - 1.0) < quad_err + 5 * tail_se, (fine, tail, quad_err)
    assert quad_err < 0.01  # the grid resolves the density


def test_sample_and_log_prob_agree_with_sample_then_log_prob():
    flow = _two_d_flow("nsf", 3)
    with autodiff.no_grad():
        x1, lp1 = flow.sample_and_log_prob(50, autodiff.Generator(4))
        x2 = flow.sample(50, autodiff.Generator(4))
        lp2 = flow.log_prob(x2)
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())
    np.testing.assert_allclose(lp1.numpy(), lp2.numpy(), atol=1e-10)


def test_temperature_scales_the_base_sample_and_encode_inverts_sample():
    flow = _two_d_flow("realnvp", 5)
    with autodiff.no_grad():
        x = flow.sample(20, autodiff.Generator(9), temperature=0.7)
        z = flow.encode(x)
    eps = autodiff.randn(20, 2, generator=autodiff.Generator(9))
    np.testing.assert_allclose(z.numpy(), 0.7 * eps.numpy(), atol=1e-10)


def test_standard_normal_log_prob():
    z = np.random.default_rng(0).normal(size=(4, 3))
    from scipy.stats import multivariate_normal
    np.testing.assert_allclose(standard_normal_log_prob(autodiff.Tensor(z)).numpy(),
                               multivariate_normal(np.zeros(3)).logpdf(z), atol=1e-12)


def test_flow_rejects_wrong_shapes():
    flow = _two_d_flow("realnvp", 0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        flow.log_prob(autodiff.zeros(3, 3))


# --------------------------------------------------------------------------- the model
def _model(arch, info, **cfg):
    from refgen.families import flows
    from refgen.families.base import data_info_for_config
    family = {"realnvp": flows.realnvp, "glow": flows.glow, "nsf": flows.nsf,
              "maf": flows.maf}[arch]
    config = family.smoke_config(info)
    config.update(cfg)
    config["data_info"] = data_info_for_config(info)
    return family.build(config)


DIGITS = {"kind": "image", "shape": (1, 8, 8), "levels": 17, "value_range": (0.0, 1.0),
          "num_classes": 10}
POINTS = {"kind": "points", "shape": (2,), "num_classes": 3}


@pytest.mark.parametrize("arch", ["realnvp", "glow", "nsf", "maf"])
def test_image_models_invert_and_keep_samples_in_the_data_range(arch):
    model = _model(arch, DIGITS)
    _randomize(model.flow, 0, scale=0.05)
    x = autodiff.Tensor(np.random.default_rng(0).uniform(0.01, 0.99, size=(3, 1, 8, 8)))
    z = model.encode(x)
    assert z.shape == (3, 64)
    np.testing.assert_allclose(model.flow.decode(z).numpy(), x.numpy(), atol=1e-9)
    with autodiff.no_grad():
        s = model.sample(4, autodiff.Generator(0), temperature=0.7).numpy()
    assert s.shape == (4, 1, 8, 8) and s.min() > 0.0 and s.max() < 1.0


def test_bits_per_dim_adds_the_dequantization_offset():
    model = _model("glow", DIGITS)
    _randomize(model.flow, 1, scale=0.05)
    k = np.random.default_rng(1).integers(0, 17, size=(3, 1, 8, 8))
    x = B.to_backend(k / 16.0)
    bpd = B.to_numpy(model.bits_per_dim(x, generator=autodiff.Generator(2)))
    xd = model.dequantize(x, generator=autodiff.Generator(2))
    lp = model.log_prob(autodiff.Tensor(xd)).numpy()
    np.testing.assert_allclose(bpd, -(lp + 64 * math.log(1 / 17)) / (64 * math.log(2)),
                               atol=1e-10)
    assert "log2(17)" in model.bpd_convention


def test_conditional_flow_uses_the_label():
    model = _model("realnvp", POINTS, conditional=True)
    _randomize(model.flow, 2)
    x = autodiff.Tensor(np.random.default_rng(2).normal(size=(4, 2)))
    lp0 = model.log_prob(x, cond=autodiff.Tensor(np.array([0, 0, 0, 0])))
    lp1 = model.log_prob(x, cond=autodiff.Tensor(np.array([1, 1, 1, 1])))
    assert np.abs(lp0.numpy() - lp1.numpy()).max() > 1e-3
    with autodiff.no_grad():
        s = model.sample(4, autodiff.Generator(0), cond=autodiff.Tensor(np.array([2, 2, 2, 2])))
        z = model.encode(s, cond=autodiff.Tensor(np.array([2, 2, 2, 2])))
    np.testing.assert_allclose(z.numpy(), autodiff.randn(4, 2, generator=autodiff.Generator(0))
                               .numpy(), atol=1e-10)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        model.log_prob(x, cond=autodiff.Tensor(np.array([0, 1, 2, 3])))
    with pytest.raises(ValueError, match="class-conditional"):
        model.log_prob(x)


def test_model_refuses_bad_options():
    model = _model("nsf", POINTS)
    with pytest.raises(ValueError, match="steps"):
        model.sample(2, steps=10)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=0.0)
    with pytest.raises(ValueError, match="architecture"):
        from refgen.families.flows.models import build_bijection
        build_bijection({"architecture": "nice"}, (2,))
    assert _model("maf", DIGITS).nfe_per_sample == 64 and model.nfe_per_sample == 1


def test_nsf_without_linear_layers_alternates_its_couplings_on_the_data_axes():
    """``linear=false``: the 2-D spline flow is its couplings alone, masks alternating, no
    invertible linear map between them (so it keeps the data's axes); it still inverts.
    Glow, whose vector steps all transform the same half, refuses the option."""
    from refgen.families.flows.models import build_bijection
    config = {"architecture": "nsf", "num_layers": 4, "num_bins": 4, "tail_bound": 3.0,
              "hidden": 8, "depth": 1, "linear": False}
    layers = build_bijection(config, (2,)).layers
    assert [type(l).__name__ for l in layers] == ["SplineCoupling"] * 4
    masks = [tuple(B.to_numpy(l.mask.data if hasattr(l.mask, "data") else l.mask).tolist())
             for l in layers]
    assert masks[0] != masks[1] and masks[0] == masks[2] and masks[1] == masks[3]
    with_linear = build_bijection(dict(config, linear=True), (2,)).layers
    assert sum(isinstance(l, bj.InvConv1x1) for l in with_linear) == 4
    model = _model("nsf", POINTS, linear=False)
    _randomize(model.flow, 0, scale=0.2)
    x = autodiff.Tensor(np.random.default_rng(0).standard_normal((5, 2)))
    np.testing.assert_allclose(B.to_numpy(model.flow.bijection.inverse(
        model.flow.bijection.forward(x)[0])[0].data), B.to_numpy(x.data), atol=1e-9)
    with pytest.raises(ValueError, match="linear=false"):
        build_bijection({"architecture": "glow", "num_layers": 2, "hidden": 8, "depth": 1,
                         "linear": False}, (2,))
