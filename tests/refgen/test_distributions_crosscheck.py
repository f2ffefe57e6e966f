"""refgen.distributions against torch.distributions in float64: log_prob, entropy, KL,
moments, gradients, and rsample from the same noise (the noise our sampler draws is
re-drawn from a generator with the same seed and pushed through torch's formula).

Same inputs through the same formulas: differences are rounding only (rtol 1e-10)."""
import numpy as np  # host-side: test inputs and comparisons
import pytest

import autodiff
from refgen import distributions as D
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck

rng = np.random.default_rng(0)


def T(x, requires_grad=False):
    return autodiff.tensor(np.asarray(x, dtype=np.float64), requires_grad=requires_grad)


def _tril(n, seed, batch=()):
    r = np.random.default_rng(seed)
    A = np.tril(r.normal(size=batch + (n, n)) * 0.5)
    idx = np.arange(n)
    A[..., idx, idx] = np.abs(A[..., idx, idx]) + 0.5
    return A


def test_normal():
    torch = torch_or_skip()
    td = torch.distributions
    loc, scale = rng.normal(size=(2, 3)), np.exp(rng.normal(size=3))
    x = rng.normal(size=(4, 2, 3)) * 2
    ours, theirs = D.Normal(T(loc), T(scale)), td.Normal(to_torch(loc), to_torch(scale))
    assert_close(ours.log_prob(T(x)), theirs.log_prob(to_torch(x)), what="log_prob")
    assert_close(ours.cdf(T(x)), theirs.cdf(to_torch(x)), what="cdf")
    assert_close(ours.entropy(), theirs.entropy(), what="entropy")
    assert_close(ours.stddev, theirs.stddev, what="stddev")
    q = (D.Normal(T(loc * 0.5), T(scale * 2)), td.Normal(to_torch(loc * 0.5), to_torch(scale * 2)))
    assert_close(D.kl_divergence(ours, q[0]), td.kl_divergence(theirs, q[1]), what="kl")
    x_ours = ours.rsample((5,), generator=autodiff.Generator(3))
    eps = autodiff.Generator(3).normal((5, 2, 3), np.float64)
    assert_close(x_ours, to_torch(loc) + to_torch(eps) * to_torch(scale), what="rsample")


def test_normal_gradients():
    torch = torch_or_skip()
    loc, scale, x = rng.normal(size=3), np.exp(rng.normal(size=3)), rng.normal(size=(4, 3))
    m, s = T(loc, True), T(scale, True)
    gm, gs = autodiff.grad(D.Normal(m, s).log_prob(T(x)).sum(), [m, s])
    tm, ts = to_torch(loc, True), to_torch(scale, True)
    torch.distributions.Normal(tm, ts).log_prob(to_torch(x)).sum().backward()
    assert_close(gm, tm.grad, what="d loc")
    assert_close(gs, ts.grad, what="d scale")


@pytest.mark.parametrize("param", ["scale_tril", "covariance_matrix"])
def test_multivariate_normal(param):
    torch = torch_or_skip()
    td = torch.distributions
    d = 3
    loc = rng.normal(size=(2, d))
    L = _tril(d, 1, (2,))
    M = L if param == "scale_tril" else L @ np.swapaxes(L, -1, -2)
    ours = D.MultivariateNormal(T(loc), **{param: T(M)})
    theirs = td.MultivariateNormal(to_torch(loc), **{param: to_torch(M)})
    x = rng.normal(size=(5, 2, d))
    assert_close(ours.log_prob(T(x)), theirs.log_prob(to_torch(x)), what="log_prob")
    assert_close(ours.entropy(), theirs.entropy(), what="entropy")
    assert_close(ours.covariance_matrix, theirs.covariance_matrix, what="covariance")
    assert_close(ours.variance, theirs.variance, what="variance")
    Lq = _tril(d, 2)
    q = D.MultivariateNormal(T(loc[0] + 1), scale_tril=T(Lq))
    tq = td.MultivariateNormal(to_torch(loc[0] + 1), scale_tril=to_torch(Lq))
    assert_close(D.kl_divergence(ours, q), td.kl_divergence(theirs, tq), what="kl p||q")
    assert_close(D.kl_divergence(q, ours), td.kl_divergence(tq, theirs), what="kl q||p")
    x_ours = ours.rsample((4,), generator=autodiff.Generator(5))
    eps = to_torch(autodiff.Generator(5).normal((4, 2, d), np.float64))
    expected = to_torch(loc) + (theirs.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
    assert_close(x_ours, expected, what="rsample")


def test_multivariate_normal_gradients():
    torch = torch_or_skip()
    d = 3
    loc, L, x = rng.normal(size=d), _tril(d, 3), rng.normal(size=(4, d))
    m, l_ = T(loc, True), T(L, True)
    gm, gl = autodiff.grad(D.MultivariateNormal(m, scale_tril=l_).log_prob(T(x)).sum(), [m, l_])
    tm, tl = to_torch(loc, True), to_torch(L, True)
    torch.distributions.MultivariateNormal(tm, scale_tril=tl).log_prob(to_torch(x)).sum().backward()
    assert_close(gm, tm.grad, what="d loc")
    assert_close(gl, tl.grad, what="d scale_tril")


def test_bernoulli():
    torch = torch_or_skip()
    td = torch.distributions
    logits = rng.normal(size=(2, 3)) * 4
    x = (rng.random(size=(4, 2, 3)) < 0.5).astype(np.float64)
    ours, theirs = D.Bernoulli(logits=T(logits)), td.Bernoulli(logits=to_torch(logits))
    assert_close(ours.log_prob(T(x)), theirs.log_prob(to_torch(x)), what="log_prob")
    assert_close(ours.entropy(), theirs.entropy(), what="entropy")
    assert_close(ours.mean, theirs.mean, what="mean")
    assert_close(ours.variance, theirs.variance, what="variance")
    other = rng.normal(size=(2, 3))
    assert_close(D.kl_divergence(ours, D.Bernoulli(logits=T(other))),
                 td.kl_divergence(theirs, td.Bernoulli(logits=to_torch(other))), what="kl")
    p = rng.random(3)
    assert_close(D.Bernoulli(probs=T(p)).log_prob(T([1.0, 0.0, 1.0])),
                 td.Bernoulli(probs=to_torch(p)).log_prob(to_torch([1.0, 0.0, 1.0])),
                 rtol=1e-9, what="from probs")


def test_categorical():
    torch = torch_or_skip()
    td = torch.distributions
    logits = rng.normal(size=(2, 5)) * 3
    k = rng.integers(0, 5, size=(4, 2))
    ours, theirs = D.Categorical(logits=T(logits)), td.Categorical(logits=to_torch(logits))
    assert_close(ours.log_prob(k), theirs.log_prob(torch.from_numpy(k)), what="log_prob")
    assert_close(ours.entropy(), theirs.entropy(), what="entropy")
    assert_close(ours.probs, theirs.probs, what="probs")
    other = rng.normal(size=(2, 5))
    assert_close(D.kl_divergence(ours, D.Categorical(logits=T(other))),
                 td.kl_divergence(theirs, td.Categorical(logits=to_torch(other))), what="kl")


def test_uniform():
    torch = torch_or_skip()
    td = torch.distributions
    low, high = rng.normal(size=3), None
    high = low + np.exp(rng.normal(size=3))
    x = low + (high - low) * rng.random(size=(4, 3))
    ours, theirs = D.Uniform(T(low), T(high)), td.Uniform(to_torch(low), to_torch(high))
    assert_close(ours.log_prob(T(x)), theirs.log_prob(to_torch(x)), what="log_prob")
    assert_close(ours.entropy(), theirs.entropy(), what="entropy")
    assert_close(ours.mean, theirs.mean, what="mean")
    assert_close(ours.variance, theirs.variance, what="variance")
    q_low, q_high = low - 1.0, high + np.array([0.5, -0.5, 2.0])   # middle one not containing
    assert_close(D.kl_divergence(ours, D.Uniform(T(q_low), T(q_high))),
                 td.kl_divergence(theirs, td.Uniform(to_torch(q_low), to_torch(q_high))),
                 what="kl")
    x_ours = ours.rsample((5,), generator=autodiff.Generator(7))
    u = to_torch(autodiff.Generator(7).random((5, 3), np.float64))
    assert_close(x_ours, to_torch(low) + u * (to_torch(high) - to_torch(low)), what="rsample")


def test_logistic_as_transformed_uniform():
    torch = torch_or_skip()
    td = torch.distributions
    loc, scale = rng.normal(size=3), np.exp(rng.normal(size=3))
    theirs = td.TransformedDistribution(
        td.Uniform(torch.zeros(3), torch.ones(3)),
        [td.transforms.SigmoidTransform().inv,
         td.transforms.AffineTransform(to_torch(loc), to_torch(scale))])
    ours = D.Logistic(T(loc), T(scale))
    x = loc + scale * rng.normal(size=(4, 3)) * 3
    assert_close(ours.log_prob(T(x)), theirs.log_prob(to_torch(x)), rtol=1e-9, what="log_prob")
    x_ours = ours.rsample((5,), generator=autodiff.Generator(8))
    u = autodiff.Generator(8).random((5, 3), np.float64)
    eps = np.finfo(np.float64).eps
    u = to_torch(np.clip(u, eps, 1 - eps))
    assert_close(x_ours, to_torch(loc) + to_torch(scale) * torch.logit(u), what="rsample")


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_gaussian_mixture_as_mixture_same_family(kind):
    torch = torch_or_skip()
    td = torch.distributions
    K, d = 4, 2
    logits, loc = rng.normal(size=(3, K)), rng.normal(size=(3, K, d))
    if kind == "diag":
        scale = np.exp(rng.normal(size=(3, K, d)) * 0.3)
        ours = D.GaussianMixture(T(logits), T(loc), scale=T(scale))
        comp = td.Independent(td.Normal(to_torch(loc), to_torch(scale)), 1)
    else:
        L = _tril(d, 9, (3, K))
        ours = D.GaussianMixture(T(logits), T(loc), scale_tril=T(L))
        comp = td.MultivariateNormal(to_torch(loc), scale_tril=to_torch(L))
    theirs = td.MixtureSameFamily(td.Categorical(logits=to_torch(logits)), comp)
    x = rng.normal(size=(5, 3, d)) * 2
    assert_close(ours.log_prob(T(x)), theirs.log_prob(to_torch(x)), what="log_prob")
    assert_close(ours.mean, theirs.mean, what="mean")
    assert_close(ours.variance, theirs.variance, what="variance")


def _torch_pixelcnn_log_prob(torch, x, mu, s, h):
    """The PixelCNN++ per-pixel formula (Salimans et al. 2017) written out in torch."""
    F = torch.nn.functional
    centered = x - mu
    plus, minus = (centered + h) / s, (centered - h) / s
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = centered / s
    log_pdf_mid = mid - torch.log(s) - 2 * F.softplus(mid)
    inner = torch.where(cdf_delta > 1e-5, torch.log(torch.clamp(cdf_delta, min=1e-12)),
                        log_pdf_mid + np.log(2 * h))
    out = torch.where(x > 0.999, -F.softplus(minus), inner)
    return torch.where(x < -0.999, plus - F.softplus(plus), out)


def test_discretized_logistic_against_pixelcnn_formula():
    torch = torch_or_skip()
    mu, s = rng.uniform(-1, 1, size=(1, 6)), np.exp(rng.uniform(-6, 0, size=(1, 6)))
    d = D.DiscretizedLogistic(T(mu), T(s))
    x = d.bin_centers().unsqueeze(-1)
    ref = _torch_pixelcnn_log_prob(torch, to_torch(x), to_torch(mu), to_torch(s), 1 / 255)
    assert_close(d.log_prob(x, method="pixelcnn++"), ref, rtol=1e-9, what="pixelcnn++")
    # where PixelCNN++'s clamps do not act, the exact form agrees with it
    exact = d.log_prob(x).numpy()
    mask = np.exp(exact) > 1e-4
    np.testing.assert_allclose(exact[mask], ref.numpy()[mask], rtol=1e-9)


def test_discretized_gaussian_against_ndtr_formula():
    torch = torch_or_skip()
    mu, s = rng.uniform(-1, 1, size=(1, 6)), np.exp(rng.uniform(-5, 0, size=(1, 6)))
    d = D.DiscretizedGaussian(T(mu), T(s))
    x = d.bin_centers().unsqueeze(-1).numpy()
    h = 1 / 255
    tx, tm, ts = to_torch(x), to_torch(mu), to_torch(s)
    cdf_plus = torch.special.ndtr((tx + h - tm) / ts)
    cdf_min = torch.special.ndtr((tx - h - tm) / ts)
    ref = torch.log(torch.where(tx < -0.999, cdf_plus,
                                torch.where(tx > 0.999, 1 - cdf_min, cdf_plus - cdf_min)))
    ours = d.log_prob(T(x)).numpy()
    mask = ref.numpy() > np.log(1e-6)        # no cancellation in 1 - cdf or the difference
    np.testing.assert_allclose(ours[mask], ref.numpy()[mask], rtol=1e-8)
    assert_close(D.log_ndtr(T(x * 30)), torch.special.log_ndtr(to_torch(x * 30)),
                 what="log_ndtr")
