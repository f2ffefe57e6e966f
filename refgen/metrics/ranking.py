"""Ranking metrics for a score that should separate two sets: the area under the ROC curve.

An anomaly detector gives every example a score s (here: bits/dim, larger = more anomalous).
Its ROC curve plots, over all thresholds, the share of anomalies (positives) flagged against
the share of normal examples (negatives) flagged; the area under it is the probability that a
random positive scores above a random negative, ties counted as one half (Hanley & McNeil
1982; the Mann-Whitney U statistic, Mann & Whitney 1947, divided by n_0 n_1):

    AUROC = 1/(n_0 n_1) sum_{i=1}^{n_0} sum_{j=1}^{n_1} [ 1(s1_j > s0_i) + 1/2 1(s1_j = s0_i) ]

with s0 the negatives' scores (n_0 of them) and s1 the positives' (n_1). 1 separates
perfectly, 0.5 is chance, and below 0.5 the score ranks the wrong way round: a likelihood
model that gives the out-of-distribution set HIGHER likelihood (lower bits/dim) than its own
test set scores AUROC < 0.5 with bits/dim as the anomaly score (Nalisnick et al. 2019).

The double sum costs O(n_0 n_1); the same number comes from ranks in O(n log n): rank all
n_0 + n_1 scores together, tied scores sharing the mean of the ranks they occupy (the
"midrank"), and with R_1 the sum of the positives' ranks,

    U = R_1 - n_1 (n_1 + 1) / 2,        AUROC = U / (n_0 n_1).

(U counts, for each positive, the negatives below it: a positive of rank r has r - 1 scores
below it, of which the positives below it are subtracted by the n_1(n_1+1)/2 term; a tie
with a negative adds 1/2 through the midrank.)

Its standard error (DeLong, DeLong & Clarke-Pearson 1988, Sec. 2) comes from the
"structural components" of the U-statistic, each example's own share of the pair count,

    V1_j = 1/n_0 sum_i psi(s0_i, s1_j)      (positive j),
    V0_i = 1/n_1 sum_j psi(s0_i, s1_j)      (negative i),     psi = 1(s1 > s0) + 1/2 1(=),

    Var(AUROC) ~= S1 / n_1 + S0 / n_0,      S1, S0 the sample variances (ddof 1) of V1, V0.

With midranks again: n_0 V1_j = (rank of s1_j among all) - (its rank among the positives),
and n_1 (1 - V0_i) = (rank of s0_i among all) - (its rank among the negatives) (Sun & Xu
2014, "Fast implementation of DeLong's algorithm").
"""
from autodiff import backend as B

from ._arrays import backend_float64

__all__ = ["auroc", "auroc_standard_error", "auroc_from_labels", "midranks"]


def _scores(name, s):
    s = backend_float64(s)
    if s.ndim != 1:
        raise ValueError(f"auroc: {name} must be a 1-D array of scores, got shape "
                         f"{tuple(s.shape)}")
    if s.shape[0] == 0:
        raise ValueError(f"auroc: {name} is empty; both sets need at least one score")
    if not bool(B.xp.isfinite(s).all()):
        bad = int((~B.xp.isfinite(s)).sum())
        raise ValueError(f"auroc: {name} holds {bad} non-finite score(s) (NaN or inf)")
    return s


def midranks(s):
    """Ranks 1..n of the scores ``s`` (n,), ties given the mean of the ranks they occupy.

    :param s: (n,) float64 backend array.
    :return: (n,) float64 ranks, sum n(n+1)/2 whatever the ties.
    """
    xp = B.xp
    values, inverse, counts = xp.unique(s, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)          # NumPy 2 keeps the input's shape; 1-D anyway
    below = xp.cumsum(counts) - counts     # how many scores lie strictly below each value
    group_rank = below + (counts + 1) / 2.0  # the mean of ranks below+1 .. below+count
    return group_rank.astype(xp.float64)[inverse]


def auroc(negative, positive):
    """The area under the ROC curve of a score: P(s1 > s0) + P(s1 = s0) / 2.

    :param negative: (n_0,) scores of the negatives (in-distribution examples).
    :param positive: (n_1,) scores of the positives (anomalies); a higher score should mean
        "more anomalous".
    :return: a Python float in [0, 1] (Mann-Whitney form, see the module docstring).
    """
    s0 = _scores("negative", negative)
    s1 = _scores("positive", positive)
    n0, n1 = int(s0.shape[0]), int(s1.shape[0])
    ranks = midranks(B.xp.concatenate([s0, s1]))
    r1 = float(ranks[n0:].sum())
    u = r1 - n1 * (n1 + 1) / 2.0
    return u / (n0 * n1)


def auroc_standard_error(negative, positive):
    """DeLong et al. (1988) standard error of ``auroc(negative, positive)`` (see the module
    docstring): sqrt(S1 / n_1 + S0 / n_0).

    :param negative: (n_0,) scores, n_0 >= 2. :param positive: (n_1,) scores, n_1 >= 2.
    :return: a Python float >= 0.
    """
    s0 = _scores("negative", negative)
    s1 = _scores("positive", positive)
    n0, n1 = int(s0.shape[0]), int(s1.shape[0])
    if n0 < 2 or n1 < 2:
        raise ValueError(f"auroc_standard_error: needs at least 2 scores per set, got "
                         f"negative {n0}, positive {n1}")
    ranks = midranks(B.xp.concatenate([s0, s1]))
    v1 = (ranks[n0:] - midranks(s1)) / n0            # (n_1,) share of negatives below
    v0 = 1.0 - (ranks[:n0] - midranks(s0)) / n1      # (n_0,) share of positives above
    return float(B.xp.sqrt(v1.var(ddof=1) / n1 + v0.var(ddof=1) / n0))


def auroc_from_labels(labels, scores):
    """``auroc`` in scikit-learn's argument order: ``labels`` (n,) in {0, 1} (1 = positive)
    and ``scores`` (n,)."""
    y = backend_float64(labels)
    s = backend_float64(scores)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"auroc_from_labels: labels {tuple(y.shape)} and scores "
                         f"{tuple(s.shape)} must be 1-D of the same length")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("auroc_from_labels: labels must be 0 or 1")
    return auroc(s[y == 0], s[y == 1])
