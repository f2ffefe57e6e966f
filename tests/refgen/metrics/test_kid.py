"""KID: the unbiased MMD^2 against exact population values (Gaussian moments), a hand-made
kernel example, subsets, seeding and errors."""
import numpy as np  # host-side: reference values in tests
import pytest

import autodiff
from autodiff import backend as B
from refgen.metrics import kid, mmd2_unbiased, polynomial_kernel


def _expected_kernel(m1, s1, m2, s2):
    """E (x.y / d + 1)^3 for independent x ~ N(m1, s1), y ~ N(m2, s2), from moments:
    E[x.y] = m1.m2, E[(x.y)^2] = Tr(M1 M2) with M = S + m m^T, E[(x.y)^3] = <T1, T2> with
    T_ijk = E[x_i x_j x_k] = m_i m_j m_k + m_i S_jk + m_j S_ik + m_k S_ij (Isserlis)."""
    d = m1.shape[0]

    def third(m, s):
        return (np.einsum("i,j,k->ijk", m, m, m) + np.einsum("i,jk->ijk", m, s)
                + np.einsum("j,ik->ijk", m, s) + np.einsum("k,ij->ijk", m, s))

    e1 = m1 @ m2
    e2 = np.trace((s1 + np.outer(m1, m1)) @ (s2 + np.outer(m2, m2)))
    e3 = np.sum(third(m1, s1) * third(m2, s2))
    return e3 / d**3 + 3 * e2 / d**2 + 3 * e1 / d + 1


def _population_mmd2(m1, s1, m2, s2):
    return (_expected_kernel(m1, s1, m1, s1) + _expected_kernel(m2, s2, m2, s2)
            - 2 * _expected_kernel(m1, s1, m2, s2))


def _moments_check(m1, s1, rng):
    # the moment formula itself against Monte Carlo (so the exact value below is trusted)
    x = rng.multivariate_normal(m1, s1, size=200_000)
    y = rng.multivariate_normal(m1, s1, size=200_000)
    k = (np.sum(x * y, 1) / m1.shape[0] + 1) ** 3
    return k.mean(), k.std() / np.sqrt(k.size)


def test_expected_kernel_formula_against_monte_carlo():
    rng = np.random.default_rng(0)
    m, s = np.array([0.5, -0.2, 0.1]), np.diag([1.0, 0.5, 2.0]) + 0.2
    mc, se = _moments_check(m, s, rng)
    assert abs(_expected_kernel(m, s, m, s) - mc) < 5 * se


@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_unbiased_over_independent_draws(shift):
    """Mean of KID over R independent pairs of samples (m = 8 rows each, one subset = all
    rows) is within 4 Monte Carlo standard errors of the exact population MMD^2 (0 for
    identical distributions). The V-statistic (diagonals kept) is off by ~ (E k(x,x) -
    E k(x,x'))/m per term, many standard errors here: see the test below."""
    rng = np.random.default_rng(1)
    d, m, reps = 3, 8, 3000
    m1, s1 = np.zeros(d), np.eye(d)
    m2 = np.full(d, shift)
    s2 = np.diag([1.0, 1.5, 0.7]) if shift else np.eye(d)
    exact = _population_mmd2(m1, s1, m2, s2)
    vals = np.array([kid(rng.multivariate_normal(m1, s1, size=m),
                         rng.multivariate_normal(m2, s2, size=m),
                         num_subsets=1, subset_size=m).mean for _ in range(reps)])
    se = vals.std(ddof=1) / np.sqrt(reps)
    assert abs(vals.mean() - exact) < 4 * se, (vals.mean(), exact, se)
    if shift == 0.0:
        assert exact == 0.0


def test_biased_estimator_would_fail_the_unbiasedness_check():
    # the check above can fail: keep the diagonals (V-statistic) and it is many SEs off
    rng = np.random.default_rng(1)
    d, m, reps = 3, 8, 3000
    vals = []
    for _ in range(reps):
        x = rng.standard_normal((m, d))
        y = rng.standard_normal((m, d))
        kxx, kyy, kxy = (polynomial_kernel(a, b) for a, b in ((x, x), (y, y), (x, y)))
        vals.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    vals = np.array(vals)
    assert vals.mean() > 10 * vals.std(ddof=1) / np.sqrt(reps)


def test_mmd2_unbiased_by_hand():
    # 1-D features, d = 1: k(x, y) = (x y + 1)^3
    x = np.array([[0.0], [1.0]])
    y = np.array([[1.0], [2.0]])
    kxx = polynomial_kernel(x, x)      # off-diagonal k(0, 1) = 1
    kyy = polynomial_kernel(y, y)      # off-diagonal k(1, 2) = 27
    kxy = polynomial_kernel(x, y)      # [[1, 1], [8, 27]]
    want = 1.0 + 27.0 - 2 * (1 + 1 + 8 + 27) / 4
    assert mmd2_unbiased(kxx, kyy, kxy) == pytest.approx(want)
    assert kid(x, y, num_subsets=3).mean == pytest.approx(want)   # all rows every subset


def test_same_distribution_kid_is_near_zero_over_subsets():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    res = kid(x, y, num_subsets=30, subset_size=100)
    assert abs(res.mean) < 4 * res.std     # one subset's spread bounds the mean's distance
    far = kid(x, y + 1.0, num_subsets=30, subset_size=100)
    assert far.mean > 10 * far.std


def test_subset_size_clipped_seeded_and_generator():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((30, 4)) + 0.5
    a = kid(x, y, num_subsets=5)
    assert a.subset_size == 30
    assert kid(x, y, num_subsets=5) == a      # default generator is Generator(0): same result
    b = kid(autodiff.tensor(x), B.to_backend(y), num_subsets=5, generator=autodiff.Generator(0))
    assert b == a
    c = kid(x, y, num_subsets=5, generator=autodiff.Generator(1))
    assert c.mean != a.mean


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"differ in dimension.*\(3, 2\).*\(3, 4\)"):
        kid(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="subsets of at least 2 rows.*fake 1"):
        kid(np.zeros((3, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="num_subsets must be >= 1"):
        kid(np.zeros((3, 2)), np.zeros((3, 2)), num_subsets=0)
    with pytest.raises(ValueError, match=r"fake has non-finite entries.*\(3, 2\)"):
        kid(np.zeros((3, 2)), np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]))
