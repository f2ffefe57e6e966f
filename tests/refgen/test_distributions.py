"""Property tests of refgen.distributions (float64; see tests/conftest.py).

Tolerances say where they come from:
* exact identities (probabilities summing to 1): float64 rounding, a few ulp per term;
* quadrature: the trapezoid rule's error bound (b - a) h^2 max|f''| / 12 per axis plus the
  mass outside the grid, computed for each density;
* Monte Carlo: 5 standard errors estimated from the same draws (fixed seeds).
"""
import math

import numpy as np  # host-side: reference arithmetic and comparisons in tests
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff.checks import gradcheck
from refgen import distributions as D

EPS = np.finfo(np.float64).eps
N_MC = 20000


def T(x, requires_grad=False):
    return autodiff.tensor(np.asarray(x, dtype=np.float64), requires_grad=requires_grad)


def np_(t):
    return t.numpy() if isinstance(t, autodiff.Tensor) else np.asarray(t)


def assert_mc(samples, expected, what, n_se=5.0, se=None):
    """mean(samples) == expected within n_se standard errors of the mean (per element);
    the SE is estimated from the samples unless given (rare events: give the exact one)."""
    s = np_(samples)
    m = s.mean(0)
    if se is None:
        se = s.std(0, ddof=1) / math.sqrt(s.shape[0])
    err = np.abs(m - np_(expected))
    assert np.all(err <= n_se * se + 1e-12), f"{what}: MC {m} vs {np_(expected)} (se {se})"


def trapezoid_weights(n):
    w = np.ones(n)
    w[0] = w[-1] = 0.5
    return w


# =========================================================================== sums to one
@given(st.floats(-60, 60) | st.sampled_from([-1e4, 1e4]))
def test_bernoulli_sums_to_one(logit):
    d = D.Bernoulli(logits=T([logit]))
    total = np.exp(np_(d.log_prob(T([0.0])))) + np.exp(np_(d.log_prob(T([1.0]))))
    assert abs(total[0] - 1.0) <= 4 * EPS
    assert np.all(np.isfinite(np_(d.log_prob(T([0.0])))))


@given(st.integers(1, 6), st.lists(st.floats(-30, 30), min_size=6, max_size=6))
def test_categorical_sums_to_one(k, logits):
    d = D.Categorical(logits=T([logits[:k], logits[-k:]]))
    values = np.arange(k)[:, None] * np.ones((1, 2), dtype=np.int64)      # (k, 2)
    p = np.exp(np_(d.log_prob(values.astype(np.int64))))
    np.testing.assert_allclose(p.sum(0), 1.0, rtol=0, atol=4 * k * EPS)


# 256 bin masses, each exact to a few ulp in log space: the sum is 1 within 256 * 4 ulp.
BINS_TOL = 256 * 4 * EPS

locs = st.floats(-1.5, 1.5)
log_scales = st.floats(-9.0, 2.0)


@given(locs, log_scales)
def test_discretized_logistic_sums_to_one(loc, log_scale):
    d = D.DiscretizedLogistic(T([loc]), T([math.exp(log_scale)]))
    p = np.exp(np_(d.log_prob(d.bin_centers().unsqueeze(-1))))
    assert abs(p.sum() - 1.0) <= BINS_TOL, p.sum()


@given(st.sampled_from([2, 3, 17, 1024]), locs, log_scales)
def test_discretized_sums_to_one_any_bins(num_bins, loc, log_scale):
    for cls in (D.DiscretizedLogistic, D.DiscretizedGaussian):
        d = cls(T([loc]), T([math.exp(log_scale)]), num_bins=num_bins, low=0.0, high=1.0)
        p = np.exp(np_(d.log_prob(d.bin_centers().unsqueeze(-1))))
        assert abs(p.sum() - 1.0) <= num_bins * 4 * EPS, (cls.__name__, p.sum())


@given(locs, log_scales)
def test_discretized_gaussian_sums_to_one(loc, log_scale):
    d = D.DiscretizedGaussian(T([loc]), T([math.exp(log_scale)]))
    p = np.exp(np_(d.log_prob(d.bin_centers().unsqueeze(-1))))
    assert abs(p.sum() - 1.0) <= BINS_TOL, p.sum()


@given(st.lists(st.floats(-5, 5), min_size=3, max_size=3),
       st.lists(locs, min_size=3, max_size=3), st.lists(log_scales, min_size=3, max_size=3))
def test_discretized_mixture_sums_to_one(logit_probs, loc, log_scale):
    d = D.DiscretizedMixtureOfLogistics(T(logit_probs), T(loc), T(np.exp(log_scale)))
    x = d.components.bin_centers()
    p = np.exp(np_(d.log_prob(x)))
    assert abs(p.sum() - 1.0) <= BINS_TOL, p.sum()


# =========================================================================== integrates to one
def test_normal_integrates_to_one():
    mu, s = 0.3, 0.7
    R, n = 10.0, 2001
    x = np.linspace(mu - R * s, mu + R * s, n)
    h = x[1] - x[0]
    f = np.exp(np_(D.Normal(mu, s).log_prob(T(x))))
    total = h * (trapezoid_weights(n) * f).sum()
    fpp = 1.0 / (math.sqrt(2 * math.pi) * s ** 3)           # max |f''| at x = mu
    bound = (2 * R * s) * h * h * fpp / 12 + math.erfc(R / math.sqrt(2))
    assert abs(total - 1.0) <= bound, (total, bound)


def test_logistic_integrates_to_one():
    mu, s = -0.2, 0.4
    R, n = 40.0, 8001
    x = np.linspace(mu - R * s, mu + R * s, n)
    h = x[1] - x[0]
    f = np.exp(np_(D.Logistic(mu, s).log_prob(T(x))))
    total = h * (trapezoid_weights(n) * f).sum()
    # f = sig(z)(1 - sig(z)) / s: |d^2/dz^2 sig(1 - sig)| <= 1/8 (at z = 0)
    bound = (2 * R * s) * h * h * (0.125 / s ** 3) / 12 + 2.0 / (1.0 + math.exp(R))
    assert abs(total - 1.0) <= bound, (total, bound)


def test_uniform_integrates_to_one_and_is_zero_outside():
    low, high, h = -0.5, 1.5, 1.0 / 64                     # edges fall on cell boundaries
    mids = np.arange(low - 1.0 + h / 2, high + 1.0, h)
    lp = np_(D.Uniform(low, high).log_prob(T(mids)))
    inside = (mids > low) & (mids < high)
    assert np.all(np.isneginf(lp[~inside]))
    assert abs(h * np.exp(lp[inside]).sum() - 1.0) <= 256 * EPS  # a constant: exact sum


def _gauss2d_bound(mu, cov, lo, hi, n):
    """Trapezoid error bound on [lo, hi]^2 with n points per axis, plus the mass outside.

    For f = N(mu, S), P = S^-1: |f_xx| <= max f * P_xx * max_q e^{-q/2}|q - 1| = max f * P_xx
    (Cauchy-Schwarz in the P inner product); the outside mass is bounded by the two
    marginal tails (union bound)."""
    P = np.linalg.inv(cov)
    fmax = 1.0 / (2 * math.pi * math.sqrt(np.linalg.det(cov)))
    hx = (hi - lo) / (n - 1)
    quad = (hi - lo) ** 2 / 12 * hx * hx * fmax * (P[0, 0] + P[1, 1])
    tail = 0.0
    for i in range(2):
        sd = math.sqrt(cov[i, i])
        tail += 0.5 * (math.erfc((mu[i] - lo) / (sd * math.sqrt(2)))
                       + math.erfc((hi - mu[i]) / (sd * math.sqrt(2))))
    return quad + tail


def _grid2d(lo, hi, n):
    g = np.linspace(lo, hi, n)
    X, Y = np.meshgrid(g, g, indexing="ij")
    w = np.outer(trapezoid_weights(n), trapezoid_weights(n)) * (g[1] - g[0]) ** 2
    return np.stack([X, Y], -1).reshape(-1, 2), w.ravel()


def test_mvn_integrates_to_one_2d():
    mu = np.array([0.2, -0.1])
    cov = np.array([[0.5, 0.3], [0.3, 0.4]])
    lo, hi, n = -6.0, 6.0, 401
    pts, w = _grid2d(lo, hi, n)
    f = np.exp(np_(D.MultivariateNormal(T(mu), covariance_matrix=T(cov)).log_prob(T(pts))))
    total = (w * f).sum()
    bound = _gauss2d_bound(mu, cov, lo, hi, n)
    assert abs(total - 1.0) <= bound, (total, bound)


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_gaussian_mixture_integrates_to_one_2d(kind):
    logits = np.array([0.3, -0.5, 1.0])
    mus = np.array([[-1.0, 0.5], [1.0, 1.0], [0.0, -1.0]])
    scales = np.array([[0.5, 0.4], [0.3, 0.6], [0.7, 0.5]])
    if kind == "diag":
        covs = np.stack([np.diag(s ** 2) for s in scales])
        d = D.GaussianMixture(T(logits), T(mus), scale=T(scales))
    else:
        covs = np.stack([np.diag(s ** 2) + 0.1 * np.array([[0, 1], [1, 0]]) for s in scales])
        d = D.GaussianMixture(T(logits), T(mus), covariance_matrix=T(covs))
    lo, hi, n = -6.0, 6.0, 401
    pts, w = _grid2d(lo, hi, n)
    total = (w * np.exp(np_(d.log_prob(T(pts))))).sum()
    pis = np.exp(logits) / np.exp(logits).sum()
    bound = sum(p * _gauss2d_bound(m, c, lo, hi, n) for p, m, c in zip(pis, mus, covs))
    assert abs(total - 1.0) <= bound, (total, bound)


def test_gaussian_mixture_log_prob_is_the_weighted_sum():
    """log p(x) = log sum_k softmax(logits)_k N(x; mu_k, Sigma_k), against the formula in
    NumPy (float64 rounding). Integrating to one cannot see the weights: any convex
    combination integrates to one, so this pins pi_k (unequal on purpose) and Sigma_k."""
    logits = np.array([0.3, -0.5, 1.0])
    mus = np.array([[-1.0, 0.5], [1.0, 1.0], [0.0, -1.0]])
    covs = np.array([[[0.25, 0.1], [0.1, 0.16]], [[0.09, -0.05], [-0.05, 0.36]],
                     [[0.49, 0.0], [0.0, 0.25]]])
    x = np.array([[0.0, 0.0], [-1.2, 0.4], [1.1, 0.9], [3.0, -2.0]])
    pis = np.exp(logits) / np.exp(logits).sum()
    dens = np.zeros(len(x))
    for p, m, c in zip(pis, mus, covs):
        r = x - m
        quad = np.einsum("ni,ij,nj->n", r, np.linalg.inv(c), r)
        dens += p * np.exp(-0.5 * quad) / (2 * np.pi * np.sqrt(np.linalg.det(c)))
    d = D.GaussianMixture(T(logits), T(mus), covariance_matrix=T(covs))
    np.testing.assert_allclose(np_(d.log_prob(T(x))), np.log(dens), rtol=1e-12)
    diag = D.GaussianMixture(T(logits), T(mus), scale=T(np.sqrt(np.diagonal(covs, 0, 1, 2))))
    dens_diag = sum(p * np.exp(-0.5 * (((x - m) ** 2) / np.diag(c)).sum(1))
                    / (2 * np.pi * np.sqrt(np.prod(np.diag(c)))) for p, m, c in zip(pis, mus, covs))
    np.testing.assert_allclose(np_(diag.log_prob(T(x))), np.log(dens_diag), rtol=1e-12)


# =========================================================================== moments
def _assert_moments(d, x, mean, var, what):
    """Sample mean and variance (elementwise over the batch) within 5 standard errors.

    SE of the sample variance: sqrt(Var[(x - m)^2] / N), estimated from the draws."""
    x = np_(x)
    assert_mc(x, mean, what + " mean")
    assert_mc((x - np_(mean)) ** 2, var, what + " variance")


def test_sample_moments_continuous():
    g = autodiff.Generator(1)
    cases = [
        ("Normal", D.Normal(T([0.5, -2.0]), T([0.3, 2.0]))),
        ("Logistic", D.Logistic(T([0.5, -2.0]), T([0.3, 2.0]))),
        ("Uniform", D.Uniform(T([0.0, -3.0]), T([1.0, 5.0]))),
        ("Bernoulli", D.Bernoulli(logits=T([-2.0, 0.0, 3.0]))),
    ]
    for name, d in cases:
        x = d.sample((N_MC,), generator=g)
        assert tuple(x.shape) == (N_MC,) + d.batch_shape
        _assert_moments(d, x, d.mean, d.variance, name)


def test_sample_moments_mvn_and_mixture():
    g = autodiff.Generator(2)
    mu = np.array([1.0, -1.0, 0.5])
    A = np.array([[1.0, 0, 0], [0.5, 0.8, 0], [-0.3, 0.2, 0.5]])
    d = D.MultivariateNormal(T(mu), scale_tril=T(A))
    x = np_(d.sample((N_MC,), generator=g))
    cov = A @ A.T
    assert_mc(x, mu, "MVN mean")
    outer = (x - mu)[:, :, None] * (x - mu)[:, None, :]
    assert_mc(outer.reshape(N_MC, -1), cov.ravel(), "MVN covariance")
    gm = D.GaussianMixture(T([0.0, 1.0]), T([[-2.0, 0.0], [1.0, 1.0]]),
                           scale=T([[0.5, 1.0], [0.3, 0.2]]))
    y = gm.sample((N_MC,), generator=g)
    assert tuple(y.shape) == (N_MC, 2)
    _assert_moments(gm, y, gm.mean, gm.variance, "GaussianMixture")


def test_categorical_frequencies():
    g = autodiff.Generator(3)
    logits = np.array([[0.0, 1.0, -1.0, 2.0], [3.0, -np.inf, 0.0, 0.0]])
    d = D.Categorical(logits=T(logits))
    k = np_(d.sample((N_MC,), generator=g))
    assert k.dtype == np.int64 and k.shape == (N_MC, 2)
    assert not np.any(k[:, 1] == 1)                           # probability 0 never drawn
    onehot = (k[..., None] == np.arange(4)).astype(float)
    assert_mc(onehot, np_(d.probs), "Categorical frequencies")


@pytest.mark.parametrize("cls", [D.DiscretizedLogistic, D.DiscretizedGaussian])
def test_discretized_sample_matches_log_prob(cls):
    """Mean of the sampled bin centres equals sum_k x_k P(x_k) (incl. the edge bins)."""
    g = autodiff.Generator(4)
    d = cls(T([0.9, -0.3]), T([0.2, 0.05]))
    x = d.sample((N_MC,), generator=g)
    centers = np_(d.bin_centers())
    assert np.all(np.isin(np_(x), centers))
    p = np.exp(np_(d.log_prob(d.bin_centers().unsqueeze(-1))))      # (256, 2)
    assert_mc(x, (centers[:, None] * p).sum(0), cls.__name__)
    top = p[-1]
    assert_mc(np_(x) == 1.0, top, cls.__name__ + " top bin",
              se=np.sqrt(top * (1 - top) / N_MC))


def test_discretized_mixture_sample_matches_log_prob():
    g = autodiff.Generator(5)
    d = D.DiscretizedMixtureOfLogistics(T([0.0, 1.0, -1.0]), T([-0.5, 0.2, 0.95]),
                                        T([0.1, 0.05, 0.3]))
    x = d.sample((N_MC,), generator=g)
    centers = d.components.bin_centers()
    p = np.exp(np_(d.log_prob(centers)))
    assert_mc(x, (np_(centers) * p).sum(), "DiscretizedMixtureOfLogistics")


# =========================================================================== KL and entropy
def _mc_kl(p, q, g):
    x = p.sample((N_MC,), generator=g)
    return np_(p.log_prob(x)) - np_(q.log_prob(x))


def _tril(n, seed):
    rng = np.random.default_rng(seed)
    A = np.tril(rng.normal(size=(n, n)) * 0.4)
    A[np.diag_indices(n)] = np.abs(A[np.diag_indices(n)]) + 0.5
    return A


KL_PAIRS = [
    ("Normal", lambda: (D.Normal(T([0.0, 1.0]), T([1.0, 0.5])),
                        D.Normal(T([0.5, -1.0]), T([2.0, 0.8])))),
    ("DiagonalNormal", lambda: (D.DiagonalNormal(T([0.0, 1.0]), T([1.0, 0.5])),
                                D.DiagonalNormal(T([0.5, -1.0]), T([2.0, 0.8])))),
    ("MVN", lambda: (D.MultivariateNormal(T([0.0, 1.0, 0.0]), scale_tril=T(_tril(3, 0))),
                     D.MultivariateNormal(T([0.5, 0.0, -0.5]), scale_tril=T(_tril(3, 1))))),
    ("Bernoulli", lambda: (D.Bernoulli(logits=T([-1.0, 2.0])),
                           D.Bernoulli(logits=T([0.5, -0.5])))),
    ("Categorical", lambda: (D.Categorical(logits=T([0.0, 1.0, -1.0])),
                             D.Categorical(logits=T([1.0, 0.0, 0.5])))),
    ("Uniform", lambda: (D.Uniform(T([0.0]), T([1.0])), D.Uniform(T([-1.0]), T([3.0])))),
]


@pytest.mark.parametrize("name,make", KL_PAIRS, ids=[n for n, _ in KL_PAIRS])
def test_kl_matches_monte_carlo(name, make):
    p, q = make()
    kl = D.kl_divergence(p, q)
    assert_mc(_mc_kl(p, q, autodiff.Generator(6)), kl, f"KL {name}")
    assert np.all(np_(D.kl_divergence(p, p)) == pytest.approx(0.0, abs=1e-12))


def test_kl_uniform_not_contained_is_inf():
    kl = D.kl_divergence(D.Uniform(T([0.0]), T([2.0])), D.Uniform(T([0.5]), T([3.0])))
    assert np.isposinf(np_(kl)).all()


ENTROPY = [
    ("Normal", lambda: D.Normal(T([0.0, 1.0]), T([1.0, 0.01]))),
    ("MVN", lambda: D.MultivariateNormal(T([0.0, 1.0, 0.0]), scale_tril=T(_tril(3, 2)))),
    ("Logistic", lambda: D.Logistic(T([0.0, 1.0]), T([1.0, 3.0]))),
    ("Uniform", lambda: D.Uniform(T([0.0, 1.0]), T([0.1, 4.0]))),
    ("Bernoulli", lambda: D.Bernoulli(logits=T([-1.0, 2.0]))),
    ("Categorical", lambda: D.Categorical(logits=T([[0.0, 1.0, -1.0], [5.0, 0.0, 0.0]]))),
]


@pytest.mark.parametrize("name,make", ENTROPY, ids=[n for n, _ in ENTROPY])
def test_entropy_matches_monte_carlo(name, make):
    d = make()
    x = d.sample((N_MC,), generator=autodiff.Generator(7))
    assert_mc(-np_(d.log_prob(x)), d.entropy(), f"entropy {name}")


def test_kl_unknown_pair_names_both_types():
    pattern = r"KL\(Logistic \|\| Normal\).*\(Normal, Normal\)"
    with pytest.raises(NotImplementedError, match=pattern):
        D.kl_divergence(D.Logistic(0.0, 1.0), D.Normal(0.0, 1.0))


# =========================================================================== edges and stability
def test_discretized_logistic_tails_finite():
    x = T([-1.0, 1.0, -1.0, 1.0, 0.0])
    loc = T([5.0, -5.0, 1.0, -1.0, 0.5], requires_grad=True)
    scale = T([1e-8, 1e-8, 1e-4, 1e-4, 1e-8], requires_grad=True)
    for cls in (D.DiscretizedLogistic, D.DiscretizedGaussian):
        lp = cls(loc, scale).log_prob(x)
        v = np_(lp)
        assert np.all(np.isfinite(v)) and np.all(v <= 0), (cls.__name__, v)
        gl, gs = autodiff.grad(lp.sum(), [loc, scale])
        assert np.all(np.isfinite(np_(gl))) and np.all(np.isfinite(np_(gs)))
        # edge bins containing the mean (x = -1 with loc = -1.5) carry almost all mass
        edge = cls(T([-1.5, 1.5]), T([1e-4, 1e-4])).log_prob(T([-1.0, 1.0]))
        np.testing.assert_allclose(np_(edge), 0.0, atol=1e-12)


def test_discretized_logistic_far_tail_values():
    """The exact form gives the analytic tail: log P(x = 1 | mu, s) = log sigma(-(1-h-mu)/s)
    ~ -(1 - h - mu)/s for mu far below; a clamp at 1e-12 would give -27.6."""
    h = 1.0 / 255
    mu, s = -1.0, 1e-3
    lp = float(np_(D.DiscretizedLogistic(mu, s).log_prob(T(1.0))))
    z = (1.0 - h - mu) / s
    assert lp == pytest.approx(-z - math.log1p(math.exp(-z)), rel=1e-12)
    lpg = float(np_(D.DiscretizedGaussian(mu, s).log_prob(T(0.0))))
    a = (0.0 - h - mu) / s
    assert np.isfinite(lpg) and lpg < -0.5 * a * a     # log Phi(-a) < log phi(a) for large a


TAIL_CASES = [(-1.0, 0.01, 0.0), (1.0, 0.01, -0.5), (0.9, 0.003, -1.0 + 2 / 255),
              (-0.9, 0.05, 1.0 - 2 / 255), (0.3, 1e-4, 0.3 + 6 / 255), (0.0, 0.5, 0.2),
              (0.5, 0.02, 1.0), (-0.5, 0.02, -1.0)]


@pytest.mark.parametrize("cls", [D.DiscretizedLogistic, D.DiscretizedGaussian])
def test_discretized_tail_bins_match_high_precision(cls):
    """Interior and edge bins deep in either tail against 50-digit arithmetic (mpmath):
    the log-space difference, taken from the tail the bin lies in, keeps ~1e-13 relative
    accuracy where F(b) - F(a) itself would round to 0."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    if cls is D.DiscretizedLogistic:
        cdf = lambda z: 1 / (1 + mp.exp(-z))   # noqa: E731
    else:
        cdf = lambda z: mp.ncdf(z)              # noqa: E731
    h = mp.mpf(1) / 255
    for mu, s, x in TAIL_CASES:
        mu_, s_, x_ = mp.mpf(mu), mp.mpf(s), mp.mpf(x)
        # mass = F(b) - F(a) = F(-a) - F(-b) (symmetry); the second form in the upper tail,
        # where 1 - F is tiny and even 50 digits would cancel (mpf exponents do not underflow)
        a = -mp.inf if x <= -1 + 1e-9 else (x_ - h - mu_) / s_
        b = mp.inf if x >= 1 - 1e-9 else (x_ + h - mu_) / s_
        mass = cdf(-a) - cdf(-b) if x > mu else cdf(b) - cdf(a)
        ref = float(mp.log(mass))
        got = float(np_(cls(T(mu), T(s)).log_prob(T(x))))
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-13), (cls.__name__, mu, s, x)


def test_discretized_pixelcnn_method_agrees_where_not_clamped():
    d = D.DiscretizedLogistic(T([0.1]), T([0.05]))
    x = d.bin_centers().unsqueeze(-1)
    exact, pcnn = np_(d.log_prob(x)), np_(d.log_prob(x, method="pixelcnn++"))
    big = np.exp(exact) > 1e-4                          # above the 1e-5 threshold
    np.testing.assert_allclose(pcnn[big], exact[big], rtol=1e-9)


def test_discretized_midpoint_fallback_for_huge_scale():
    s = 1e20
    loc, scale = T([0.0], requires_grad=True), T([s], requires_grad=True)
    lp = D.DiscretizedLogistic(loc, scale).log_prob(T([0.2]))
    expected = math.log(0.25) - math.log(s) + math.log(2.0 / 255)   # f(0) 2h
    np.testing.assert_allclose(np_(lp), expected, rtol=1e-12)
    # the unused exact branch must not leak nan/inf into the gradient: d/ds = -1/s
    g_loc, g_scale = autodiff.grad(lp.sum(), [loc, scale])
    np.testing.assert_allclose(np_(g_scale), -1.0 / s, rtol=1e-6)
    assert np.all(np.isfinite(np_(g_loc)))


def test_far_out_logits_finite():
    b = D.Bernoulli(logits=T([1e4, -1e4]))
    np.testing.assert_allclose(np_(b.log_prob(T([1.0, 1.0]))), [0.0, -1e4])
    np.testing.assert_allclose(np_(b.log_prob(T([0.0, 0.0]))), [-1e4, 0.0])
    c = D.Categorical(logits=T([1e4, -1e4, 0.0]))
    np.testing.assert_allclose(np_(c.log_prob(np.array([0, 1, 2]))), [0.0, -2e4, -1e4])
    assert np.isfinite(np_(c.entropy())) and np.isfinite(np_(b.entropy())).all()


# =========================================================================== gradients
def _r(*shape, seed=0, scale=1.0, shift=0.0):
    return T(np.random.default_rng(seed).normal(size=shape) * scale + shift,
             requires_grad=True)


def _pos(*shape, seed=0):
    return T(np.exp(np.random.default_rng(seed).normal(size=shape) * 0.3),
             requires_grad=True)


def test_gradcheck_normal_second_order():
    x = _r(4, 3, seed=1)
    gradcheck(lambda m, s, x: D.Normal(m, s).log_prob(x), [_r(3), _pos(3), x])
    gradcheck(lambda m, s: D.Normal(m, s).entropy(), [_r(3), _pos(3)])
    gradcheck(lambda m1, s1, m2, s2: D.kl_divergence(D.Normal(m1, s1), D.Normal(m2, s2)),
              [_r(3, seed=2), _pos(3, seed=3), _r(3, seed=4), _pos(3, seed=5)])


def test_gradcheck_mvn_second_order():
    x = _r(5, 3, seed=6)

    def tril_param(L):   # lower triangle with a positive diagonal, from any matrix
        return autodiff.tril(L, -1) + autodiff.linalg.diagonal(L).exp().unsqueeze(-1) \
            * autodiff.eye(L.shape[-1])

    gradcheck(lambda m, L, x: D.MultivariateNormal(m, scale_tril=tril_param(L)).log_prob(x),
              [_r(3), _r(3, 3, seed=7, scale=0.3), x])

    def via_cov(m, A, x):
        S = A @ A.transpose(-1, -2) + autodiff.eye(3)
        return D.MultivariateNormal(m, covariance_matrix=S).log_prob(x)
    gradcheck(via_cov, [_r(3), _r(3, 3, seed=8, scale=0.5), x])
    gradcheck(lambda m1, L1, m2, L2: D.kl_divergence(
        D.MultivariateNormal(m1, scale_tril=tril_param(L1)),
        D.MultivariateNormal(m2, scale_tril=tril_param(L2))),
        [_r(2, 3, seed=9), _r(3, 3, seed=10, scale=0.3), _r(3, seed=11),
         _r(2, 3, 3, seed=12, scale=0.3)])


def test_gradcheck_first_order_others():
    x01 = T([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    gradcheck(lambda l: D.Bernoulli(logits=l).log_prob(x01), [_r(3, scale=3)],
              second_order=False)
    gradcheck(lambda l: D.Bernoulli(logits=l).entropy(), [_r(3, scale=3)], second_order=False)
    gradcheck(lambda l: D.Categorical(logits=l).log_prob(np.array([[0, 2], [1, 1]])),
              [_r(2, 3)], second_order=False)
    gradcheck(lambda l, k: D.kl_divergence(D.Categorical(logits=l), D.Categorical(logits=k)),
              [_r(2, 3), _r(2, 3, seed=1)], second_order=False)
    gradcheck(lambda m, s: D.Logistic(m, s).log_prob(T([0.3, -2.0, 5.0])), [_r(3), _pos(3)],
              second_order=False)
    gradcheck(lambda lo, hi: D.Uniform(lo, hi).log_prob(T([0.1, 0.2])),
              [T([-1.0, 0.0], True), T([1.0, 0.5], True)], second_order=False)
    xb = T([-1.0, -0.2, 0.5, 1.0])
    for cls in (D.DiscretizedLogistic, D.DiscretizedGaussian):
        gradcheck(lambda m, s: cls(m, s).log_prob(xb),
                  [_r(4, scale=0.5), _pos(4, seed=1) * 0.2], second_order=False)
    gradcheck(lambda w, m, s: D.DiscretizedMixtureOfLogistics(w, m, s).log_prob(xb.unsqueeze(-1)),
              [_r(4, 3), _r(4, 3, seed=1, scale=0.5), _pos(4, 3, seed=2) * 0.2],
              second_order=False)
    gradcheck(lambda w, m, s: D.GaussianMixture(w, m, scale=s).log_prob(T([[0.1, 0.2], [1, -1]])),
              [_r(3), _r(3, 2, seed=1), _pos(3, 2, seed=2)], second_order=False)


def test_log_ndtr_second_order():
    gradcheck(D.log_ndtr, [T([-40.0, -5.0, 0.0, 3.0, 10.0], requires_grad=True)])


# =========================================================================== shapes and errors
def test_shapes_and_broadcasting():
    d = D.Normal(T([[0.0], [1.0]]), T([1.0, 2.0, 3.0]))
    assert d.batch_shape == (2, 3) and d.event_shape == ()
    assert tuple(d.sample((4, 5)).shape) == (4, 5, 2, 3)
    assert tuple(d.log_prob(T(0.5)).shape) == (2, 3)
    m = D.MultivariateNormal(autodiff.zeros(4, 1, 2), scale_tril=autodiff.eye(2))
    assert m.batch_shape == (4, 1) and m.event_shape == (2,)
    assert tuple(m.log_prob(autodiff.zeros(7, 1, 3, 2)).shape) == (7, 4, 3)
    assert tuple(m.rsample(6).shape) == (6, 4, 1, 2)
    gm = D.GaussianMixture(autodiff.zeros(5, 3), autodiff.zeros(5, 3, 2), scale=T(1.0))
    assert gm.batch_shape == (5,) and tuple(gm.log_prob(autodiff.zeros(8, 5, 2)).shape) == (8, 5)
    assert tuple(gm.sample((8,)).shape) == (8, 5, 2)


def test_rsample_is_differentiable_and_reproducible():
    m, s = T([0.5], requires_grad=True), T([2.0], requires_grad=True)
    for cls in (D.Normal, D.Logistic):
        x = cls(m, s).rsample((3,), generator=autodiff.Generator(9))
        y = cls(m, s).rsample((3,), generator=autodiff.Generator(9))
        np.testing.assert_array_equal(np_(x), np_(y))
        gm, gs = autodiff.grad(x.sum(), [m, s])
        np.testing.assert_allclose(np_(gm), [3.0])
        np.testing.assert_allclose(np_(gs), [np_((x - 0.5) / 2.0).sum()])


@pytest.mark.parametrize("make,match", [
    (lambda: D.Normal(0.0, -1.0), "Normal: scale must be positive"),
    (lambda: D.Normal(T([0.0, 1.0]), T([1.0, 1.0, 1.0])), r"do not broadcast: \(2,\), \(3,\)"),
    (lambda: D.Logistic(0.0, 0.0), "Logistic: scale must be positive"),
    (lambda: D.Uniform(1.0, 1.0), "Uniform: high - low must be positive"),
    (lambda: D.Bernoulli(probs=0.5, logits=0.0), "exactly one of probs, logits"),
    (lambda: D.Bernoulli(probs=1.5), r"probs must lie in \[0, 1\]"),
    (lambda: D.MultivariateNormal(autodiff.zeros(2), scale_tril=autodiff.eye(3)),
     r"\(\*, 2, 2\)"),
    (lambda: D.MultivariateNormal(autodiff.zeros(2), covariance_matrix=T([[1.0, 2], [2, 1]])),
     "not positive-definite"),
    (lambda: D.MultivariateNormal(autodiff.zeros(2), scale_tril=T([[1.0, 1], [0, 1]])),
     "lower triangular"),
    (lambda: D.DiscretizedLogistic(0.0, 1.0, num_bins=1), "num_bins must be at least 2"),
    (lambda: D.DiscretizedLogistic(0.0, 1.0).log_prob(T(1.5)), r"values must lie in \[-1.0"),
    (lambda: D.DiscretizedGaussian(0.0, 1.0).log_prob(T(0.0), method="x"),
     "unknown method 'x'; known: exact, pixelcnn\\+\\+"),
    (lambda: D.Categorical(logits=T([0.0, 1.0])).log_prob(np.array([2])),
     r"values must lie in \[0, 2\)"),
    (lambda: D.Normal(T([0.0, 1.0]), 1.0).log_prob(T([1.0, 2.0, 3.0])), "do not broadcast"),
    (lambda: D.GaussianMixture(autodiff.zeros(2), autodiff.zeros(3, 2), scale=T(1.0)),
     "K = logits.shape"),
    (lambda: D.Normal(0.0, 1.0).sample(-1), r"sample_shape must not be negative, got \(-1,\)"),
    (lambda: D.Normal(0.0, 1.0).sample((2, -3)), "sample_shape must not be negative"),
    (lambda: D.Normal(0.0, 1.0).sample("ab"), "sample_shape must be an int or a tuple"),
    (lambda: D.Normal(0.0, 1.0).sample((2.5,)), "sample_shape must be an int or a tuple"),
    (lambda: D.kl_divergence(D.Normal(T([0.0] * 3), 1.0), D.Normal(T([0.0] * 4), 1.0)),
     r"kl_divergence\(Normal \|\| Normal\): batch shapes do not broadcast: \(3,\), \(4,\)"),
    (lambda: D.kl_divergence(D.Bernoulli(logits=T([0.0] * 3)), D.Bernoulli(logits=T([0.0] * 2))),
     "batch shapes do not broadcast"),
    (lambda: D.kl_divergence(D.DiagonalNormal(T([0.0] * 2), 1.0),
                             D.DiagonalNormal(T([0.0] * 3), 1.0)),
     r"event shapes differ: \(2,\) and \(3,\)"),
])
def test_bad_input_gets_one_clear_error(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
