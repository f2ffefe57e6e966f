"""Frechet distance: closed forms (2-Wasserstein between Gaussians), the clamp, the two
square-root methods and where they differ, errors, and the running float64 statistics."""
import numpy as np  # host-side: reference linear algebra in tests
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import autodiff
from autodiff import backend as B
from refgen.metrics import RunningStatistics, feature_statistics, fid_from_features, frechet_distance

METHODS = ["pytorch-fid", "eigh"]


def _spd(rng, d, floor=0.1):
    a = rng.standard_normal((d, d))
    return a @ a.T + floor * np.eye(d)


def _w2_squared(mu1, s1, mu2, s2):
    """Squared 2-Wasserstein between Gaussians, written independently of the code under test:
    |mu1 - mu2|^2 + Tr S1 + Tr S2 - 2 Tr (S2^{1/2} S1 S2^{1/2})^{1/2} (Givens & Shortt 1984),
    with the SYMMETRIC square roots taken by scipy.linalg.sqrtm on symmetric matrices."""
    r2 = np.real(scipy.linalg.sqrtm(s2))
    inner = np.real(scipy.linalg.sqrtm(r2 @ s1 @ r2))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(inner))


@pytest.mark.parametrize("method", METHODS)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 6))
def test_equals_w2_closed_form_non_commuting(method, seed, d):
    rng = np.random.default_rng(seed)
    s1, s2 = _spd(rng, d), _spd(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    got = frechet_distance(mu1, s1, mu2, s2, method=method)
    want = _w2_squared(mu1, s1, mu2, s2)
    # rounding of O(d) eigenvalues of size |S| each; the condition number is bounded by floor
    scale = np.trace(s1) + np.trace(s2) + np.sum((mu1 - mu2) ** 2)
    assert abs(got - want) <= 1e-9 * scale


@pytest.mark.parametrize("method", METHODS)
def test_commuting_diagonal_by_hand(method):
    # diagonal covariances: Tr (S1 S2)^{1/2} = sum sqrt(a_i b_i); d^2 = |dmu|^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = 1.0 + 4.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method) == pytest.approx(
        want, rel=1e-14)


def test_non_commuting_case_is_really_non_commuting():
    rng = np.random.default_rng(0)
    s1, s2 = _spd(rng, 4), _spd(rng, 4)
    assert np.abs(s1 @ s2 - s2 @ s1).max() > 1.0      # else the closed-form test proves less
    naive = np.sum(np.diag(s1) + np.diag(s2) - 2 * np.sqrt(np.diag(s1) * np.diag(s2)))
    assert abs(frechet_distance(np.zeros(4), s1, np.zeros(4), s2) - naive) > 0.1


@pytest.mark.parametrize("method", METHODS)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 40), d=st.integers(1, 12))
def test_identical_features_give_zero_never_negative(method, seed, n, d):
    x = np.random.default_rng(seed).standard_normal((n, d)) * 3 + 5
    got = fid_from_features(x, x, method=method)
    assert got >= 0.0
    # exact 0 up to rounding of Tr S and the square roots (sqrt(eps) for singular S with sqrtm)
    tr = np.trace(np.cov(x, rowvar=False).reshape(d, d))
    assert got <= (1e-6 if method == "pytorch-fid" else 1e-12) * max(tr, 1.0)


def test_clamp_at_zero():
    # S and (1 + 1e-16) S: exact distance ~ 0, rounding can make the unclamped value negative
    rng = np.random.default_rng(1)
    s = _spd(rng, 30)
    vals = [frechet_distance(np.zeros(30), s, np.zeros(30), s * (1 + k * 1e-16), method=m)
            for k in range(5) for m in METHODS]
    assert min(vals) >= 0.0


def test_eigh_is_accurate_where_sqrtm_is_not():
    # fewer samples than dimensions: S is singular (rank 19 of 64); S2 = c S commutes with S,
    # so Tr (S1 S2)^{1/2} = sqrt(c) Tr S exactly and d^2 = (1 - sqrt c)^2 Tr S.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 64)) * rng.uniform(0.1, 10, size=64)
    s = np.cov(x, rowvar=False)
    c = 4.0
    want = (1 - np.sqrt(c)) ** 2 * np.trace(s)
    err_eigh = abs(frechet_distance(np.zeros(64), s, np.zeros(64), c * s, method="eigh") - want)
    err_sqrtm = abs(frechet_distance(np.zeros(64), s, np.zeros(64), c * s) - want)
    assert err_eigh <= 1e-13 * np.trace(s)          # rounding only
    assert err_sqrtm > 1e-10 * np.trace(s)          # sqrt(eps)-sized: measured ~2e-8 relative
    assert err_sqrtm > 100 * err_eigh


def test_methods_agree_when_well_conditioned():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((500, 16)), rng.standard_normal((400, 16)) * 1.5 + 0.2
    a = fid_from_features(x, y)
    b = fid_from_features(x, y, method="eigh")
    assert a == pytest.approx(b, rel=1e-10)


def test_accepts_tensors_and_backend_arrays():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((60, 3))
    want = fid_from_features(x, y)
    assert fid_from_features(autodiff.tensor(x), B.to_backend(y)) == pytest.approx(want, rel=1e-14)


def test_feature_statistics_ddof_1():
    x = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    mu, s = feature_statistics(x)
    np.testing.assert_allclose(mu, [2.0, 2.0])
    np.testing.assert_allclose(s, [[4.0, 3.0], [3.0, 3.0]])  # sum of squares / (N - 1)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown method 'sqrt'.*pytorch-fid, eigh"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="sqrt")
    with pytest.raises(ValueError, match=r"mu2 has shape \(3,\) and sigma2 has shape \(2, 2\)"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="sigma1 has non-finite"):
        frechet_distance(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match=r"real must be a 2-D array.*\(5,\)"):
        fid_from_features(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(ValueError, match=r"differ in dimension.*\(4, 2\).*\(4, 3\)"):
        fid_from_features(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid_from_features(np.zeros((1, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="real has non-finite entries"):
        fid_from_features(np.full((4, 2), np.nan), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="batch has non-finite entries"):
        RunningStatistics().update(np.array([[0.0, np.inf], [1.0, 1.0]]))


def test_significant_imaginary_part_is_rejected():
    # S1 S2 with a negative eigenvalue (S2 indefinite): sqrtm is genuinely complex
    s1 = np.eye(2)
    s2 = np.diag([1.0, -4.0])
    with pytest.raises(ValueError, match=r"imaginary component\| 2 "):
        frechet_distance(np.zeros(2), s1, np.zeros(2), s2)


# ---- running statistics -------------------------------------------------------------------

@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 60), d=st.integers(1, 5),
       cuts=st.lists(st.integers(0, 60), max_size=6))
def test_running_statistics_equal_one_shot(seed, n, d, cuts):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * rng.uniform(0.1, 3, size=d) + rng.standard_normal(d)
    edges = sorted({0, n, *[c for c in cuts if c < n]})
    stats = RunningStatistics()
    for a, b in zip(edges[:-1], edges[1:]):
        stats.update(x[a:b])
    assert stats.count == n
    np.testing.assert_allclose(B.to_numpy(stats.mean), x.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(B.to_numpy(stats.cov), np.cov(x, rowvar=False).reshape(d, d),
                               rtol=1e-11, atol=1e-12)


def test_merge_equals_one_shot_and_fid():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 4))
    y = rng.standard_normal((200, 4)) + 1
    a = RunningStatistics().update(x[:120]).update(x[120:170])
    b = RunningStatistics().update(x[170:])
    a.merge(b).merge(RunningStatistics())
    np.testing.assert_allclose(B.to_numpy(a.cov), np.cov(x, rowvar=False), rtol=1e-12)
    fy = RunningStatistics().update(y)
    assert a.frechet_distance(fy) == pytest.approx(fid_from_features(x, y), rel=1e-12)


def test_running_statistics_keep_digits_with_a_large_mean():
    # features offset by 1e8 with unit spread: raw sum(x x^T) - n mu mu^T would lose all digits
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1000, 3))
    stats = RunningStatistics()
    for i in range(0, 1000, 100):
        stats.update(x[i:i + 100] + 1e8)
    np.testing.assert_allclose(B.to_numpy(stats.cov), np.cov(x, rowvar=False), rtol=1e-7,
                               atol=1e-7)


def test_running_statistics_state_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(7)
    s = RunningStatistics().update(rng.standard_normal((10, 3)))
    autodiff.save(s.state_dict(), tmp_path / "stats.npz")
    t = RunningStatistics.from_state_dict(autodiff.load(tmp_path / "stats.npz"))
    assert t.count == 10
    np.testing.assert_array_equal(B.to_numpy(t.cov), B.to_numpy(s.cov))
    with pytest.raises(ValueError, match=r"batch has shape \(2, 4\); these statistics have "
                                         r"dimension 3"):
        s.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="seen no samples"):
        RunningStatistics().mean
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        RunningStatistics().update(np.zeros((1, 3))).cov
    with pytest.raises(ValueError, match="lacks m2"):
        RunningStatistics.from_state_dict({"count": 1, "mean": np.zeros(2)})
