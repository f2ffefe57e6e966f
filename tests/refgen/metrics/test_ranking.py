"""AUROC in the Mann-Whitney form (refgen.metrics.ranking) against the definition itself: the
share of (negative, positive) pairs ranked the right way round, ties counted as 1/2."""
import numpy as np  # host-side: brute-force reference and test data
import pytest
from hypothesis import given, strategies as st

from autodiff import backend as B
from refgen.metrics.ranking import auroc, auroc_from_labels, auroc_standard_error, midranks


def brute_force_auroc(s0, s1):
    """The double sum of the definition, over all n_0 n_1 pairs (host NumPy)."""
    s0, s1 = np.asarray(s0, float)[:, None], np.asarray(s1, float)[None, :]
    return float(((s1 > s0) + 0.5 * (s1 == s0)).mean())


# integer-valued scores from a small range, so that ties (within and across the sets) are
# frequent and every tie-breaking mistake shows
_ints = st.lists(st.integers(-4, 4), min_size=1, max_size=30)


@given(_ints, _ints)
def test_equals_the_pair_count_with_ties(s0, s1):
    # the pair count and the rank form are both exact multiples of 1/(2 n_0 n_1) in float64
    assert auroc(s0, s1) == pytest.approx(brute_force_auroc(s0, s1), abs=1e-12)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40),
       st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40))
def test_equals_the_pair_count_on_real_scores(s0, s1):
    assert auroc(s0, s1) == pytest.approx(brute_force_auroc(s0, s1), abs=1e-12)


@given(_ints, _ints)
def test_swapping_the_sets_gives_one_minus(s0, s1):
    # each pair counts 1, 0 or 1/2 one way and 0, 1 or 1/2 the other
    assert auroc(s0, s1) + auroc(s1, s0) == pytest.approx(1.0, abs=1e-12)


@given(_ints, _ints)
def test_a_monotone_map_of_the_score_changes_nothing(s0, s1):
    # AUROC depends on the order only: exp is strictly increasing
    assert auroc(np.exp(s0), np.exp(s1)) == pytest.approx(auroc(s0, s1), abs=1e-12)


def test_known_values():
    assert auroc([0, 1, 2], [3, 4]) == 1.0
    assert auroc([3, 4], [0, 1, 2]) == 0.0
    assert auroc([1, 1, 1], [1, 1]) == 0.5
    # pairs (0,1) (0,2) (2,1) (2,2): 1 + 1 + 0 + 1/2 over 4
    assert auroc([0, 2], [1, 2]) == 0.625


def test_midranks_share_tied_ranks():
    r = B.to_numpy(midranks(B.xp.asarray([10.0, 20.0, 10.0, 30.0, 20.0, 20.0])))
    np.testing.assert_array_equal(r, [1.5, 4.0, 1.5, 6.0, 4.0, 4.0])


def test_two_shifted_normals_give_phi_of_delta_over_root_two():
    # s1 - s0 ~ N(delta, 2), so AUROC = Phi(delta / sqrt(2)); the standard error of the
    # Mann-Whitney estimate is at most sqrt((2n + 1) / (12 n^2)) (its null value) for n per set
    from math import erf, sqrt
    rng = np.random.default_rng(0)
    n, delta = 4000, 1.0
    s0, s1 = rng.normal(size=n), rng.normal(size=n) + delta
    truth = 0.5 * (1 + erf(delta / sqrt(2) / sqrt(2)))
    assert abs(auroc(s0, s1) - truth) < 5 * sqrt(2.0 / (12 * n))


def test_labels_form():
    labels = [0, 1, 0, 1, 1]
    scores = [0.1, 0.9, 0.5, 0.5, 0.2]
    assert auroc_from_labels(labels, scores) == pytest.approx(
        brute_force_auroc([0.1, 0.5], [0.9, 0.5, 0.2]))


@pytest.mark.parametrize("negative, positive, message", [
    ([], [1.0], "negative is empty"),
    ([1.0], [[1.0, 2.0]], r"positive must be a 1-D array of scores, got shape \(1, 2\)"),
    ([1.0, float("nan")], [1.0], "negative holds 1 non-finite"),
    ([1.0], [float("inf")], "positive holds 1 non-finite"),
])
def test_bad_input_is_named(negative, positive, message):
    with pytest.raises(ValueError, match=message):
        auroc(negative, positive)


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        auroc_from_labels([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="same length"):
        auroc_from_labels([0, 1], [0.1, 0.2, 0.3])


@pytest.mark.crosscheck
def test_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.integers(0, 2, size=300)
        y[:2] = [0, 1]
        s = rng.integers(0, 20, size=300).astype(float)   # ties
        assert auroc_from_labels(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)


def brute_force_delong_se(s0, s1):
    """DeLong et al. (1988) from the n_0 x n_1 pair matrix (host NumPy)."""
    s0, s1 = np.asarray(s0, float)[:, None], np.asarray(s1, float)[None, :]
    psi = (s1 > s0) + 0.5 * (s1 == s0)           # (n_0, n_1)
    v1, v0 = psi.mean(axis=0), psi.mean(axis=1)
    return float(np.sqrt(v1.var(ddof=1) / s1.size + v0.var(ddof=1) / s0.size))


_ints2 = st.lists(st.integers(-4, 4), min_size=2, max_size=30)


@given(_ints2, _ints2)
def test_standard_error_equals_delong_from_the_pair_matrix(s0, s1):
    assert auroc_standard_error(s0, s1) == pytest.approx(brute_force_delong_se(s0, s1),
                                                         rel=1e-9, abs=1e-12)


def test_standard_error_matches_the_spread_over_repeated_draws():
    # 400 independent pairs of sets: the spread of AUROC across them against the mean DeLong
    # estimate. The relative standard error of a standard deviation from R = 400 draws is
    # 1/sqrt(2 (R - 1)) = 3.5 %; DeLong's estimate is consistent with an O(1/n) bias (n = 60):
    # 4 standard errors, 14 %, bound the comparison
    rng = np.random.default_rng(2)
    aucs, ses = [], []
    for _ in range(400):
        s0, s1 = rng.normal(size=60), rng.normal(size=60) + 0.8
        aucs.append(auroc(s0, s1))
        ses.append(auroc_standard_error(s0, s1))
    assert np.std(aucs, ddof=1) == pytest.approx(np.mean(ses), rel=0.14)


def test_standard_error_needs_two_per_set():
    with pytest.raises(ValueError, match="at least 2 scores per set, got negative 1, positive 3"):
        auroc_standard_error([1.0], [1.0, 2.0, 3.0])


def test_mann_whitney_u_matches_scipy():
    # scipy is a run-time dependency (so this runs in the default tier), and its U is an
    # independent implementation
    from scipy import stats
    rng = np.random.default_rng(3)
    s0, s1 = rng.integers(0, 15, 200).astype(float), rng.integers(2, 17, 150).astype(float)
    u = stats.mannwhitneyu(s1, s0, alternative="two-sided").statistic
    assert auroc(s0, s1) == pytest.approx(u / (200 * 150), abs=1e-12)
