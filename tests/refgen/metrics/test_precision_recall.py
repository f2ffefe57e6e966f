"""k-NN precision/recall and density/coverage: identical sets, brute-force references,
chunked == unchunked, a hand-made example, the boundary convention, errors."""
import numpy as np  # host-side: brute-force references in tests
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autodiff
from autodiff import backend as B
from refgen.metrics import density_coverage, knn_radii, pairwise_sq_distances, precision_recall


def _brute(real, fake, k_pr=3, k_dc=5):
    """The definitions with full distance matrices and a sort, self removed by index."""
    def radii(a, k):
        d = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    d_rf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))       # (N, M)
    rr, rf = radii(real, k_pr), radii(fake, k_pr)
    precision = np.mean((d_rf <= rr[:, None]).any(0))
    recall = np.mean((d_rf <= rf[None, :]).any(1))
    r5 = radii(real, k_dc)
    inside = d_rf <= r5[:, None]
    return precision, recall, inside.sum() / (k_dc * fake.shape[0]), inside.any(1).mean()


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(6, 40), m=st.integers(6, 40),
       d=st.integers(1, 5), batch=st.integers(1, 50))
def test_matches_brute_force_for_any_batch_size(seed, n, m, d, batch):
    rng = np.random.default_rng(seed)
    # integer grid points: ties on the boundary and duplicates happen, exercising <=
    real = rng.integers(0, 4, size=(n, d)).astype(float)
    fake = rng.integers(0, 4, size=(m, d)).astype(float) + rng.integers(0, 2) * 0.5
    p, r, dens, cov = _brute(real, fake)
    got_pr = precision_recall(real, fake, k=3, batch_size=batch)
    got_dc = density_coverage(real, fake, k=5, batch_size=batch)
    assert got_pr == (pytest.approx(p), pytest.approx(r))
    assert got_dc == (pytest.approx(dens), pytest.approx(cov))


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(4, 60), d=st.integers(1, 6),
       dup=st.booleans())
def test_identical_sets_give_one(seed, n, d, dup):
    x = np.random.default_rng(seed).standard_normal((n, d))
    if dup:
        # every point four times: all k = 3 radii are 0, and points count as inside with <=
        x = np.repeat(x[: n // 4 + 1], 4, axis=0)
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    assert density_coverage(x, x, k=3).coverage == 1.0


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(5, 50), k=st.integers(1, 4),
       batch=st.integers(1, 60))
def test_knn_radii_exclude_self(seed, n, k, batch):
    x = np.random.default_rng(seed).standard_normal((n, 3))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    want = np.sort(d, axis=1)[:, k]        # column 0 is the point itself (distance 0)
    np.testing.assert_allclose(B.to_numpy(knn_radii(x, k, batch_size=batch)), want,
                               rtol=1e-9, atol=1e-9)


def test_large_k_uses_partition_path():
    x = np.random.default_rng(0).standard_normal((40, 2))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.testing.assert_allclose(B.to_numpy(knn_radii(x, 12)), np.sort(d, 1)[:, 12], rtol=1e-9)


def test_density_coverage_hand_made():
    # real points on a line at 0, 1, 2, 3, 10 with k = 1: radii 1, 1, 1, 1, 7
    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    # fake at 0.5: inside the balls of 0 and 1 (|0.5-0|, |0.5-1| <= 1) -> 2 balls
    #      at 5.0: inside the ball of 10 only (5 <= 7) -> 1 ball
    #      at 20 : inside none
    fake = np.array([[0.5], [5.0], [20.0]])
    dens, cov = density_coverage(real, fake, k=1)
    assert dens == pytest.approx((2 + 1 + 0) / (1 * 3))
    assert cov == pytest.approx(3 / 5)      # balls of 0, 1 and 10 hold a fake point
    # k = 2: radii 2, 1, 1, 2, 8. Fake 0.5 is in the balls of 0 and 1; fake 5.0 in those of
    # 3 (2 <= 2, on the boundary) and 10 (5 <= 8); fake 20 in none
    assert density_coverage(real, fake, k=2) == (pytest.approx(4 / (2 * 3)), pytest.approx(4 / 5))
    p, r = precision_recall(real, fake, k=1)
    assert p == pytest.approx(2 / 3)
    # fake radii (k = 1): 4.5, 4.5, 15. Real 0, 1, 2, 3 lie within 4.5 of the fake 0.5;
    # real 10 is 5 > 4.5 from the fake 5.0 but 10 <= 15 from the fake 20: recall 1
    assert r == pytest.approx(5 / 5)


def test_boundary_convention():
    real = np.array([[0.0], [1.0]])       # k = 1 radii: 1, 1
    fake = np.array([[2.0], [5.0]])       # 2.0 is exactly on the boundary of the ball of 1
    assert precision_recall(real, fake, k=1).precision == 0.5
    assert precision_recall(real, fake, k=1, inclusive=False).precision == 0.0
    assert density_coverage(real, fake, k=1, inclusive=False) == (0.0, 0.0)
    assert density_coverage(real, fake, k=1) == (0.5, 0.5)     # 1 / (k M) = 1 / 2


def test_pairwise_sq_distances_clamped_and_backend_inputs():
    x = np.array([[1e8, 1.0], [1e8 + 1e-9, 1.0]])
    assert (B.to_numpy(pairwise_sq_distances(x, x)) >= 0).all()
    a = np.random.default_rng(1).standard_normal((30, 4))
    b = np.random.default_rng(2).standard_normal((25, 4))
    want = precision_recall(a, b)
    assert precision_recall(autodiff.tensor(a), B.to_backend(b)) == want


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="real has 3 rows; the k-th nearest other point needs "
                                         "more than k = 3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="fake has 2 rows"):
        precision_recall(np.random.rand(10, 2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"differ in dimension.*\(10, 2\).*\(10, 3\)"):
        density_coverage(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        density_coverage(np.random.rand(10, 2), np.zeros((10, 2)), batch_size=0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_radii(np.zeros((10, 2)), 0)
    bad = np.random.rand(10, 2)
    bad[4, 1] = np.nan                      # was a silent precision = recall = 0
    with pytest.raises(ValueError, match="real has non-finite entries"):
        precision_recall(bad, np.random.rand(10, 2))
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="fake has non-finite entries"):
        density_coverage(np.random.rand(10, 2), bad)


@pytest.mark.slow
def test_ten_thousand_points_per_set():
    # the size: 10^4 x 10^4 in 64-d, chunked; same distribution so the numbers are
    # those of the k-NN estimate in 64-d (precision/recall well below 1, density ~ 1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10_000, 64)), rng.standard_normal((10_000, 64))
    p, r = precision_recall(x, y)
    dens, cov = density_coverage(x, y)
    assert 0.3 < p < 0.9 and 0.3 < r < 0.9 and abs(p - r) < 0.05
    assert 0.9 < dens < 1.1 and cov > 0.9
