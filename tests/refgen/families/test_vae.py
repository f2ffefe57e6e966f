"""The VAE family's mathematics, checked on a linear-Gaussian model where everything is known.

The model  z ~ N(0, I_d),  x | z ~ N(W z + b, s^2 I_D)  has, in closed form,

    log p(x) = log N(x; b, W W^T + s^2 I)
    p(z | x) = N(mu*, Sigma*),  Sigma* = (I + W^T W / s^2)^-1,  mu* = Sigma* W^T (x - b) / s^2.

It is built from the family's own pieces (``GaussianEncoder`` and ``GaussianDecoder`` around a
``Linear``, plugged into ``VAE``), so the tests check the family's code, not a copy of it.
With W = Q diag(lambda) (orthonormal columns) the posterior is diagonal, so the Gaussian
encoder can represent it exactly; a general W (or a scaled variance) gives an approximate q.

Tolerances: identities hold to float64 rounding (a few ulps of the numbers involved, written
as 1e-10 relative to their size); stochastic statements use a Monte Carlo standard error the
test computes from its own replicates, with a margin of 5 standard errors (a false alarm
probability below 1e-6 per comparison under a normal approximation).
"""
import math

import numpy as np  # host-side: closed-form references and statistics in tests
import pytest
from scipy.stats import multivariate_normal  # host-side: the exact log p(x)

import autodiff
from autodiff import backend as B
from autodiff import nn
from refgen.families import vae as V

Z = 5.0   # standard errors allowed for a stochastic comparison


# ------------------------------------------------------------------ the linear-Gaussian model
def _model(dx=5, dz=3, s=0.5, orthogonal=True, var_scale=1.0, mean_shift=0.0, seed=0):
    """(VAE, W, b, s) with q = N(mu* + mean_shift, var_scale * diag Sigma*) when W has
    orthogonal columns (then q = p(z|x) exactly for var_scale=1, mean_shift=0)."""
    rng = np.random.default_rng(seed)
    if orthogonal:
        Q, _ = np.linalg.qr(rng.normal(size=(dx, dz)))
        W = Q * np.linspace(2.0, 0.7, dz)
    else:
        W = rng.normal(size=(dx, dz))
    b = rng.normal(size=dx)
    sigma_post = np.linalg.inv(np.eye(dz) + W.T @ W / s ** 2)
    A = sigma_post @ W.T / s ** 2                                    # mu* = A (x - b)
    enc_w = np.concatenate([A, np.zeros((dz, dx))])                  # (2 dz, dx)
    enc_b = np.concatenate([-A @ b + mean_shift,
                            np.log(var_scale * np.diag(sigma_post))])
    enc = nn.Linear(dx, 2 * dz)
    enc.load_state_dict({"weight": autodiff.tensor(enc_w), "bias": autodiff.tensor(enc_b)})
    dec = nn.Linear(dz, dx)
    dec.load_state_dict({"weight": autodiff.tensor(W), "bias": autodiff.tensor(b)})
    config = {"latent_dim": dz, "decoder": "gaussian", "variance": "fixed", "sigma": s,
              "data_info": {"kind": "points", "shape": [dx]}}
    model = V.VAE(config, encoder=V.GaussianEncoder(enc, dz),
                  decoder=V.GaussianDecoder(dec, variance="fixed", sigma=s))
    return model, W, b, s


def _log_px(x, W, b, s):
    cov = W @ W.T + s ** 2 * np.eye(W.shape[0])
    return np.array([multivariate_normal.logpdf(xi, mean=b, cov=cov) for xi in x])


def _data(W, b, s, n=4, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, W.shape[1]))
    return z @ W.T + b + s * rng.normal(size=(n, W.shape[0]))


def _replicates(fn, x, reps):
    """fn on x repeated ``reps`` times: independent draws per row -> (mean, se) per example."""
    n = x.shape[0]
    vals = B.to_numpy(fn(autodiff.tensor(np.tile(x, (reps, 1)))).data).reshape(reps, n)
    return vals.mean(0), vals.std(0, ddof=1) / math.sqrt(reps)


# ------------------------------------------------------------------ the log-mean-exp
def test_log_mean_exp_is_stable_and_exact():
    a = np.array([[1000.0, -1000.0], [1000.0 + math.log(3.0), -1001.0], [-np.inf, -1002.0]])
    out = B.to_numpy(V.log_mean_exp(autodiff.tensor(a), dim=0).data)
    expected0 = 1000.0 + math.log((1.0 + 3.0) / 3.0)
    expected1 = -1000.0 + math.log((1.0 + math.exp(-1) + math.exp(-2)) / 3.0)
    np.testing.assert_allclose(out, [expected0, expected1], rtol=1e-14)
    # moderate values: the naive formula; k = 1: the identity
    r = np.random.default_rng(0).normal(size=(7, 3))
    np.testing.assert_allclose(B.to_numpy(V.log_mean_exp(autodiff.tensor(r), 0).data),
                               np.log(np.exp(r).mean(0)), rtol=1e-13)
    np.testing.assert_array_equal(B.to_numpy(V.log_mean_exp(autodiff.tensor(r[:1]), 0).data),
                                  r[0])


def test_log_mean_exp_gradient_is_softmax():
    a = autodiff.tensor(np.array([[3.0, 800.0], [1.0, 801.0], [-2.0, 799.0]]),
                        requires_grad=True)
    V.log_mean_exp(a, dim=0).sum().backward()
    x = B.to_numpy(a.data)
    w = np.exp(x - x.max(0))
    np.testing.assert_allclose(B.to_numpy(a.grad.data), w / w.sum(0), rtol=1e-13)


# ------------------------------------------------------------------ the importance weights
def test_log_weights_match_the_closed_form_densities_for_the_same_draws():
    model, W, b, s = _model(orthogonal=False, var_scale=1.7, mean_shift=0.3)
    x = _data(W, b, s)
    k, n, dz = 6, x.shape[0], W.shape[1]
    log_w = B.to_numpy(model.log_weights(autodiff.tensor(x), k,
                                         generator=autodiff.Generator(3)).data)
    # the same draws: q.rsample((k,)) takes eps = generator.normal((k, N, d))
    eps = B.to_numpy(autodiff.Generator(3).normal((k, n, dz), "float64"))
    q = model.encode(autodiff.tensor(x))
    mu, sd = B.to_numpy(q.loc.data), B.to_numpy(q.scale.data)
    z = mu + sd * eps
    log_lik = (-0.5 * (((x - (z @ W.T + b)) / s) ** 2).sum(-1)
               - x.shape[1] * (math.log(s) + 0.5 * math.log(2 * math.pi)))
    log_prior = -0.5 * (z ** 2).sum(-1) - 0.5 * dz * math.log(2 * math.pi)
    log_q = (-0.5 * (eps ** 2).sum(-1) - np.log(sd).sum(-1) - 0.5 * dz * math.log(2 * math.pi))
    expected = log_lik + log_prior - log_q
    np.testing.assert_allclose(log_w, expected, rtol=1e-12, atol=1e-12)
    assert log_w.shape == (k, n)


def test_exact_posterior_makes_every_bound_equal_log_px():
    """q = p(z|x): every weight p(x, z)/q(z|x) equals p(x), so IWAE_k and the estimate are
    log p(x) to rounding for every k and every draw, and the estimate's error is 0."""
    model, W, b, s = _model(orthogonal=True)
    x = _data(W, b, s)
    log_px = _log_px(x, W, b, s)
    xt = autodiff.tensor(x)
    for k in (1, 2, 17, 300):
        got = B.to_numpy(model.iwae(xt, k, generator=autodiff.Generator(k)).data)
        np.testing.assert_allclose(got, log_px, rtol=1e-12, atol=1e-12)
    est, se = model.log_likelihood_estimate(xt, k=500, generator=autodiff.Generator(0))
    np.testing.assert_allclose(B.to_numpy(est), log_px, rtol=1e-12, atol=1e-12)
    assert np.all(B.to_numpy(se) < 1e-10)
    # the ELBO's one-draw estimate is noisy, but its mean is log p(x) (KL(q || p(z|x)) = 0)
    mean, se = _replicates(lambda t: model.elbo(t, generator=autodiff.Generator(5)), x, 4000)
    assert np.all(np.abs(mean - log_px) <= Z * se), (mean, log_px, se)


def test_elbo_below_iwae_k_below_iwae_k2_below_log_px():
    """E[ELBO] <= E[IWAE_5] <= E[IWAE_50] <= log p(x) (Burda et al. 2016, Theorem 1), strict
    for an inexact q, each mean from 3000 independent replicates with its standard error."""
    model, W, b, s = _model(orthogonal=False, var_scale=2.0, mean_shift=0.2)
    x = _data(W, b, s, n=3)
    log_px = _log_px(x, W, b, s)
    g = autodiff.Generator(11)
    elbo, se_e = _replicates(lambda t: model.elbo(t, generator=g), x, 3000)
    iw1, se_1 = _replicates(lambda t: model.iwae(t, 1, generator=g), x, 3000)
    iw5, se_5 = _replicates(lambda t: model.iwae(t, 5, generator=g), x, 3000)
    iw50, se_50 = _replicates(lambda t: model.iwae(t, 50, generator=g), x, 3000)
    # IWAE_1 is the ELBO with a Monte Carlo KL: the same expectation
    assert np.all(np.abs(iw1 - elbo) <= Z * np.hypot(se_1, se_e))
    # the chain, and that each step is a real improvement (q is not the posterior)
    assert np.all(iw5 - elbo > Z * np.hypot(se_5, se_e)), (elbo, iw5)
    assert np.all(iw50 - iw5 > Z * np.hypot(se_50, se_5)), (iw5, iw50)
    assert np.all(iw50 <= log_px + Z * se_50), (iw50, log_px)
    assert np.all(log_px - iw50 < log_px - elbo)


def test_analytic_kl_equals_monte_carlo_kl():
    model, W, b, s = _model(orthogonal=False, var_scale=0.3, mean_shift=0.8)
    x = autodiff.tensor(_data(W, b, s))
    _, kl = model.elbo_terms(x, generator=autodiff.Generator(0))
    q = model.encode(x)
    z = q.rsample((200_000,), generator=autodiff.Generator(1))
    mc = B.to_numpy((q.log_prob(z) - model.prior().log_prob(z)).data)   # (S, N)
    mean, se = mc.mean(0), mc.std(0, ddof=1) / math.sqrt(mc.shape[0])
    kl = B.to_numpy(kl.data)
    assert kl.shape == (x.shape[0],) and np.all(kl > 0)
    assert np.all(np.abs(kl - mean) <= Z * se), (kl, mean, se)


def _analytic_elbo_gradients(model, x, W, b, s):
    """d ELBO / d (encoder weight, encoder bias, decoder weight, decoder bias), summed over
    the examples, for the linear-Gaussian model with q = N(mu, diag sigma^2):
    ELBO = -(||x - W mu - b||^2 + sum_j sigma_j^2 ||W_j||^2) / (2 s^2) + const - KL."""
    q = model.encode(autodiff.tensor(x))
    mu, var = B.to_numpy(q.loc.data), B.to_numpy(q.scale.data) ** 2
    r = x - mu @ W.T - b                                        # (N, D)
    d_mu = r @ W / s ** 2 - mu                                  # (N, d)
    d_logvar = -var * (W ** 2).sum(0) / (2 * s ** 2) - 0.5 * (var - 1.0)
    d_h = np.concatenate([d_mu, d_logvar], axis=1)              # (N, 2d)
    enc_w, enc_b = d_h.T @ x, d_h.sum(0)
    dec_w = (r.T @ mu - W * var.sum(0)) / s ** 2
    dec_b = r.sum(0) / s ** 2
    return [enc_w, enc_b, dec_w, dec_b]


def test_reparameterised_elbo_gradient_equals_the_analytic_gradient():
    model, W, b, s = _model(orthogonal=False, var_scale=0.5, mean_shift=0.4)
    x = _data(W, b, s, n=3)
    params = [model.encoder.net.weight, model.encoder.net.bias,
              model.decoder.net.weight, model.decoder.net.bias]
    expected = _analytic_elbo_gradients(model, x, W, b, s)
    g = autodiff.Generator(7)
    draws = []
    for _ in range(40):
        for p in params:
            p.grad = None
        model.elbo(autodiff.tensor(x), generator=g, num_samples=50).sum().backward()
        draws.append([B.to_numpy(p.grad.data).copy() for p in params])
    for i, name in enumerate(("encoder weight", "encoder bias", "decoder weight",
                              "decoder bias")):
        est = np.stack([d[i] for d in draws])
        mean, se = est.mean(0), est.std(0, ddof=1) / math.sqrt(len(draws))
        # where a gradient has no Monte Carlo noise it must be exact to rounding
        tol = Z * se + 1e-10 * (1.0 + np.abs(expected[i]))
        assert np.all(np.abs(mean - expected[i]) <= tol), \
            f"{name}: estimate {mean} vs analytic {expected[i]} (se {se})"


def test_likelihood_estimate_and_its_standard_error():
    """With an inexact q the k-sample estimate is within its standard error of log p(x)
    (k = 5000: bias ~ Var(w)/(2 k) is far below it), and the reported standard error is the
    spread of independent estimates."""
    model, W, b, s = _model(orthogonal=False, var_scale=2.0, mean_shift=0.2)
    x = autodiff.tensor(_data(W, b, s, n=3))
    log_px = _log_px(B.to_numpy(x.data), W, b, s)
    est, se = model.log_likelihood_estimate(x, k=5000, generator=autodiff.Generator(0),
                                            chunk=3000)
    est, se = B.to_numpy(est), B.to_numpy(se)
    assert np.all(se > 0) and np.all(np.abs(est - log_px) <= Z * se), (est, log_px, se)
    runs = [model.log_likelihood_estimate(x, k=200, generator=autodiff.Generator(100 + i))
            for i in range(60)]
    ests = np.stack([B.to_numpy(r[0]) for r in runs])
    ses = np.stack([B.to_numpy(r[1]) for r in runs])
    ratio = ests.std(0, ddof=1) / ses.mean(0)
    # 60 runs: the sample sd is within ~10 % of the truth (1 sd); allow 4 sd either way
    assert np.all((ratio > 0.6) & (ratio < 1.4)), ratio


# ------------------------------------------------------------------ the family on data
def _digits_model(**overrides):
    from refgen.data import load_dataset
    from refgen.families.base import data_info_for_config
    data = load_dataset("digits", split="val")
    config = V.default_config(data.info)
    config.update({"latent_dim": 2, "hidden": [16], **overrides})
    config["data_info"] = data_info_for_config(data.info)
    return V.build(config), data


def test_bernoulli_decoder_is_a_mass_on_binary_data_and_binarizes_grey_data():
    model, data = _digits_model()
    assert model.discrete and model.likelihood_kind == "bound"
    x = autodiff.tensor(data.x[:8])
    with pytest.raises(ValueError, match="binarize"):
        model.log_prob(x)
    # bits_per_dim binarizes by one draw of the generator it is given; the ELBO's eps come
    # from the global generator (log_prob takes none from the base class)
    from refgen.data import preprocessing
    bits = preprocessing.binarize_dynamic(x, autodiff.Generator(4))
    autodiff.manual_seed(3)
    bpd = model.bits_per_dim(x, generator=autodiff.Generator(4))
    autodiff.manual_seed(3)
    lp = model.log_prob(bits)
    np.testing.assert_allclose(B.to_numpy(bpd), -B.to_numpy(lp.data) / (64 * math.log(2)),
                               rtol=1e-12)
    assert np.all(np.isfinite(B.to_numpy(lp.data)))
    numbers = model.evaluate(data)
    assert set(numbers) == {"neg_elbo", "bpd"} and numbers["neg_elbo"] > 0


def test_the_three_decoders_give_bounds_of_the_right_kind():
    for decoder, discrete in (("bernoulli", True), ("logistic", True), ("gaussian", False)):
        model, data = _digits_model(decoder=decoder)
        assert model.discrete is discrete
        numbers = model.evaluate(data, max_examples=20)
        assert math.isfinite(numbers["bpd"]) and numbers["bpd"] > 0, (decoder, numbers)
        x = model.sample(5, autodiff.Generator(0))
        lo, hi = model.value_range
        xs = B.to_numpy(x.data)
        assert xs.shape == (5, 1, 8, 8) and xs.min() >= lo and xs.max() <= hi


def test_iwae_bound_beats_the_elbo_on_a_trained_scale_model_and_eval_k_reports_it():
    model, data = _digits_model(decoder="logistic", eval_k=20)
    numbers = model.evaluate(data, max_examples=60)
    # a lower bound's negative: IWAE_20 is tighter than the ELBO on average
    assert numbers["neg_iwae20"] < numbers["neg_elbo"]


def test_encode_decode_reconstruct_interpolate_shapes_and_endpoints():
    model, data = _digits_model(decoder="logistic")
    x = autodiff.tensor(data.x[:3])
    q = model.encode(x)
    assert tuple(q.loc.shape) == (3, 2) and tuple(q.event_shape) == (2,)
    assert tuple(model.decode(q.loc).shape) == (3, 1, 8, 8)
    rec = B.to_numpy(model.reconstruct(x).data)
    path = B.to_numpy(model.interpolate(x, autodiff.tensor(data.x[3:6]), steps=5).data)
    assert path.shape == (3, 5, 1, 8, 8)
    np.testing.assert_allclose(path[:, 0], rec, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(path[:, -1], B.to_numpy(
        model.reconstruct(autodiff.tensor(data.x[3:6])).data), rtol=1e-12, atol=1e-12)
    single = model.interpolate(data.x[0], data.x[1], steps=3)
    assert tuple(single.shape) == (1, 3, 1, 8, 8)


def test_conditional_vae_uses_the_label_and_bounds_the_marginal_without_it():
    model, data = _digits_model(decoder="logistic", conditional=True)
    x = autodiff.tensor(data.x[:4])
    y = autodiff.tensor(data.y[:4])
    other = autodiff.tensor((data.y[:4] + 1) % 10)
    a = B.to_numpy(model.elbo(x, y, generator=autodiff.Generator(0)).data)
    b = B.to_numpy(model.elbo(x, other, generator=autodiff.Generator(0)).data)
    assert not np.allclose(a, b)                         # the label reaches the networks
    # without labels: log (1/K) sum_c exp(ELBO(x | c)), the labels in turn on one generator
    g = autodiff.Generator(0)
    per_label = np.stack([B.to_numpy(model.elbo(
        x, autodiff.full((4,), c, dtype="int64"), generator=g).data) for c in range(10)])
    marginal = B.to_numpy(model.log_prob(x, generator=autodiff.Generator(0)).data)
    m = per_label.max(0)
    np.testing.assert_allclose(marginal, m + np.log(np.exp(per_label - m).mean(0)),
                               rtol=1e-12)
    s = model.sample(3, autodiff.Generator(1), cond=autodiff.full((3,), 7, dtype="int64"))
    assert tuple(s.shape) == (3, 1, 8, 8)
    with pytest.raises(ValueError, match=r"cond must be integer labels of shape \(4,\)"):
        model.elbo(x, autodiff.tensor(np.zeros(3, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        model.elbo(x, autodiff.full((4,), 10, dtype="int64"))


def test_sampler_options_and_temperature():
    model, _ = _digits_model(decoder="logistic")
    mean = model.sample(4, autodiff.Generator(2), sampler="mean")
    again = model.sample(4, autodiff.Generator(2), sampler="mean")
    np.testing.assert_array_equal(B.to_numpy(mean.data), B.to_numpy(again.data))
    # temperature -> 0 puts every z at the origin: all means equal decode(0)
    cold = B.to_numpy(model.sample(3, autodiff.Generator(2), sampler="mean",
                                   temperature=1e-12).data)
    zero = B.to_numpy(model.decode(autodiff.zeros(1, 2)).data)
    np.testing.assert_allclose(cold, np.repeat(zero, 3, 0), atol=1e-9)
    assert model.nfe_per_sample == 1
    with pytest.raises(ValueError, match="unknown option.*guidance"):
        model.sample(2, guidance=2.0)
    with pytest.raises(ValueError, match="sampler must be one of draw, mean, got 'ddim'"):
        model.sample(2, sampler="ddim")
    with pytest.raises(ValueError, match="got cond, but this VAE is unconditional"):
        model.sample(2, cond=autodiff.full((2,), 1, dtype="int64"))


@pytest.mark.parametrize("overrides,message", [
    ({"decoder": "poisson"}, "decoder must be one of bernoulli, gaussian, logistic"),
    ({"objective": "vlb"}, "objective must be one of elbo, iwae"),
    ({"objective": "iwae", "beta": 2.0}, "beta=2.0 applies to the ELBO objective only"),
    ({"k": 0}, "k must be a positive integer, got 0"),
    ({"beta": -1.0}, "beta must be >= 0"),
    ({"variance": "diagonal", "decoder": "gaussian"}, "variance must be one of"),
])
def test_bad_configs_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        _digits_model(**overrides)


def test_bad_inputs_are_named():
    model, data = _digits_model(decoder="logistic")
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 8, 8\).*\(3, 64\)"):
        model.elbo(autodiff.zeros(3, 64))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 2\), got \(3, 5\)"):
        model.decode(autodiff.zeros(3, 5))
    with pytest.raises(ValueError, match="steps must be >= 2"):
        model.interpolate(data.x[:1], data.x[1:2], steps=1)


def test_iwae_objective_trains_through_the_loop(tmp_path):
    """Two steps of IWAE_5 training through refgen.train.fit move the parameters and log the
    bound; beta weighs the KL in the ELBO loss (beta = 0: the loss is -recon)."""
    from refgen.train import TrainConfig, fit
    model, data = _digits_model(decoder="logistic", objective="iwae", k=5)
    before = B.to_numpy(model.decoder.net.out.weight.data).copy()
    result = fit(model, data, TrainConfig(steps=2, batch_size=16, log_every=1,
                                          checkpoint_every=2, out_dir=str(tmp_path)),
                 progress=False)
    assert "iwae5" in result.metrics and math.isfinite(result.metrics["iwae5"])
    assert not np.array_equal(before, B.to_numpy(model.decoder.net.out.weight.data))

    class Ctx:
        generator = autodiff.Generator(0)

        def optimize(self, player, loss):
            self.loss = float(loss.item())
    m0, _ = _digits_model(decoder="logistic", beta=0.0)
    ctx = Ctx()
    out = m0.training_step((autodiff.tensor(data.x[:8]), None), 0, ctx)
    assert ctx.loss == pytest.approx(-out["recon"], rel=1e-12)


def test_conditional_log_weights_pair_each_draw_with_its_own_label():
    """log w[i, n] = log p(x_n | z_in, c_n) + log p(z_in) - log q(z_in | x_n, c_n) with the
    k draws of all N examples flattened into one decoder batch: label n must go with
    example n in every one of the k blocks."""
    model, data = _digits_model(decoder="logistic", conditional=True)
    x, y = autodiff.tensor(data.x[:3]), autodiff.tensor(data.y[:3])
    k = 4
    log_w = B.to_numpy(model.log_weights(x, k, cond=y, generator=autodiff.Generator(2)).data)
    q = model.encode(x, y)
    eps = B.to_numpy(autodiff.Generator(2).normal((k, 3, 2), "float64"))
    z = B.to_numpy(q.loc.data) + B.to_numpy(q.scale.data) * eps
    x_flat = autodiff.tensor(data.x[:3].reshape(3, 64))
    for i in range(k):
        zi = autodiff.tensor(z[i])
        expected = (model.decoder_distribution(zi, y).log_prob(x_flat)
                    + model.prior().log_prob(zi) - q.log_prob(zi))
        np.testing.assert_allclose(log_w[i], B.to_numpy(expected.data), rtol=1e-12)


@pytest.mark.slow
def test_a_linear_vae_learns_probabilistic_pca(tmp_path):
    """Trained by the loop on 4000 draws of a linear-Gaussian model (D = 5, d = 2, s = 0.3
    known), a VAE with linear encoder and decoder reaches the true model's held-out
    log-likelihood: the optimum of the ELBO of a linear VAE with a diagonal Gaussian q is
    the probabilistic PCA maximum-likelihood solution (Lucas et al. 2019, "Don't blame the
    ELBO!", Sec. 4), up to a rotation of z that leaves p(x) unchanged.

    Held-out targets (2000 examples, paired with the true model's values): the k = 500
    estimate within 0.05 nats per example of the true log p(x) (the fitted model's excess
    risk is about (#parameters)/(2 N) = 0.002 nats; the rest is left to the optimiser: 8000
    Adam steps reach 0.002 here), and
    the ELBO's gap to the estimate below 0.05 nats (zero at the optimum, whose posterior is
    diagonal)."""
    from refgen.data import ArrayDataset
    from refgen.train import TrainConfig, fit
    truth, W, b, s = _model(dx=5, dz=2, s=0.3, orthogonal=False, seed=3)
    train_x, test_x = _data(W, b, s, n=4000, seed=4), _data(W, b, s, n=2000, seed=5)
    info = {"kind": "points", "shape": [5], "name": "linear-gaussian"}
    config = {"latent_dim": 2, "decoder": "gaussian", "variance": "fixed", "sigma": s,
              "data_info": info}
    model = V.VAE(config, encoder=V.GaussianEncoder(nn.Linear(5, 4), 2),
                  decoder=V.GaussianDecoder(nn.Linear(2, 5), variance="fixed", sigma=s))
    fit(model, ArrayDataset(train_x, name="linear-gaussian", info=info),
        TrainConfig(steps=8000, batch_size=100, lr=3e-2, lr_schedule="cosine",
                    out_dir=str(tmp_path), log_every=500, checkpoint_every=8000),
        progress=False)
    true_lp = _log_px(test_x, W, b, s)
    with autodiff.no_grad():
        est, _ = model.log_likelihood_estimate(autodiff.tensor(test_x), k=500,
                                               generator=autodiff.Generator(0))
        elbo = model.elbo(autodiff.tensor(test_x), generator=autodiff.Generator(1),
                          num_samples=20)
    gap = B.to_numpy(est) - B.to_numpy(elbo.data)            # per example, paired
    assert abs(B.to_numpy(est).mean() - true_lp.mean()) < 0.05, (est.mean(), true_lp.mean())
    # E[gap] >= 0 (the ELBO is a bound); both sides are Monte Carlo estimates, hence -Z se
    se = gap.std(ddof=1) / math.sqrt(gap.size)
    assert -Z * se <= gap.mean() < 0.05, (gap.mean(), se)


def test_figures_and_the_estimate_command_from_a_checkpoint(tmp_path, capsys):
    """A few steps of training, then ``python -m refgen.families.vae estimate|figures`` on
    the checkpoint: the estimate is a finite JSON number with its standard error, and the
    three figures are written (the latent space because latent_dim = 2)."""
    import json

    from refgen.families.vae import __main__ as cli
    from refgen.families.vae.figures import plot_latent_space
    from refgen.train import TrainConfig, fit
    model, data = _digits_model(decoder="bernoulli")
    model.config["data"] = "digits"
    model.family = "vae"
    result = fit(model, data, TrainConfig(steps=2, batch_size=16, log_every=1,
                                          checkpoint_every=2, out_dir=str(tmp_path)),
                 progress=False)
    assert cli.main(["estimate", "--checkpoint", result.checkpoint_path, "--k", "20",
                     "--n", "4", "--split", "val"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["examples"] == 4 and out["k"] == 20
    assert math.isfinite(out["nll_estimate"]) and out["nll_estimate_se"] > 0
    # in chunks (3 + 1 examples) with the same seed: the same draws, so the same numbers
    assert cli.main(["estimate", "--checkpoint", result.checkpoint_path, "--k", "20",
                     "--n", "4", "--split", "val", "--chunk", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("examples_so_far") for line in lines[:2]] == [3, 4]
    for key in ("nll_estimate", "nll_estimate_se"):
        assert lines[-1][key] == pytest.approx(out[key], rel=1e-12), key
    with pytest.raises(ValueError, match="start must be an int in 0..3"):
        model.estimate_dataset(data, k=2, max_examples=4, start=4)
    prefix = str(tmp_path / "fig")
    assert cli.main(["figures", "--checkpoint", result.checkpoint_path, "--split", "val",
                     "--out", prefix]) == 0
    for name in ("reconstructions", "interpolations", "latent"):
        assert (tmp_path / f"fig_{name}.png").stat().st_size > 0
    wide, _ = _digits_model(decoder="bernoulli", latent_dim=3)
    with pytest.raises(ValueError, match="latent has 3 dims; the figure needs 2"):
        plot_latent_space(wide, data, str(tmp_path / "no.png"))


def test_dataset_estimate_uses_the_evaluation_convention_of_each_decoder():
    """The k-sample estimate is tighter than the ELBO in the same convention: for the
    Gaussian decoder on images both include the dequantization's D log(1/L) term (without
    it the two would differ by D log 17 = 181 nats on 8x8 digits)."""
    for decoder in ("gaussian", "bernoulli", "logistic"):
        model, data = _digits_model(decoder=decoder)
        est = model.estimate_dataset(data, k=200, max_examples=30)
        neg_elbo = model.evaluate(data, max_examples=30)["neg_elbo"]
        assert est["nll_estimate"] < neg_elbo < est["nll_estimate"] + 30, \
            (decoder, est, neg_elbo)


def test_conv_encoder_on_images_trains_and_takes_labels(tmp_path):
    from refgen.train import TrainConfig, fit
    model, data = _digits_model(decoder="logistic", encoder="conv", conv_channels=[4, 8],
                                conditional=True)
    assert isinstance(model.encoder.net, V.ConvEncoderNet)
    q = model.encode(autodiff.tensor(data.x[:3]), autodiff.tensor(data.y[:3]))
    assert tuple(q.loc.shape) == (3, 2)
    # the label reaches the conv encoder's Linear
    q_other = model.encode(autodiff.tensor(data.x[:3]), autodiff.tensor((data.y[:3] + 1) % 10))
    assert not np.allclose(B.to_numpy(q.loc.data), B.to_numpy(q_other.loc.data))
    before = B.to_numpy(model.encoder.net.conv1.weight.data).copy()
    fit(model, data, TrainConfig(steps=2, batch_size=16, log_every=1, checkpoint_every=2,
                                 out_dir=str(tmp_path)), progress=False)
    assert not np.array_equal(before, B.to_numpy(model.encoder.net.conv1.weight.data))
    with pytest.raises(ValueError, match="encoder must be 'mlp' or 'conv', got 'resnet'"):
        _digits_model(encoder="resnet")


def test_samples_follow_the_marginal_of_the_linear_gaussian_model():
    """x = W z + b + s eps with z ~ N(0, T^2 I): mean b and covariance T^2 W W^T + s^2 I.
    Each coordinate's mean within Z standard errors (sd / sqrt(n)); each variance within Z
    standard errors of a sample variance (sd^2 sqrt(2 / (n - 1)), Gaussian data)."""
    model, W, b, s = _model(orthogonal=False)
    n = 40_000
    for temperature in (1.0, 0.5):
        x = B.to_numpy(model.sample(n, autodiff.Generator(3), temperature=temperature).data)
        cov = temperature ** 2 * W @ W.T + s ** 2 * np.eye(W.shape[0])
        sd = np.sqrt(np.diag(cov))
        assert np.all(np.abs(x.mean(0) - b) <= Z * sd / math.sqrt(n))
        assert np.all(np.abs(x.var(0, ddof=1) - sd ** 2) <= Z * sd ** 2 * math.sqrt(2 / (n - 1)))
        # the decoder mean drops the s eps term: covariance T^2 W W^T
        m = B.to_numpy(model.sample(n, autodiff.Generator(4), sampler="mean",
                                    temperature=temperature).data)
        var_m = temperature ** 2 * (W ** 2).sum(1)
        assert np.all(np.abs(m.var(0, ddof=1) - var_m) <= Z * var_m * math.sqrt(2 / (n - 1)))
