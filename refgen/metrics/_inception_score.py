"""Inception Score from any classifier's class probabilities.

Salimans et al. (2016), "Improved Techniques for Training GANs", section 4:

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x),

with KL(p || q) = sum_y p_y (log p_y - log q_y). Conventions that change the number, as in
the reference implementation (and pytorch-fid's / torch-fidelity's ports):

* the N rows are cut IN ORDER, without shuffling, into ``splits`` (default 10) consecutive
  parts, rows [i N // splits, (i + 1) N // splits); p(y) is the mean over each part, and the
  score is computed per part;
* the result is the mean and the standard deviation (ddof = 0, ``numpy.std``'s default) of
  the ``splits`` scores;
* the probabilities are those of the 1008-way logits for the FID Inception network; with
  another classifier (e.g. refgen's digit classifier) the number is on another scale: say
  which classifier.

Stability: p log p is taken as 0 where p = 0 (``xlogy``), so one-hot rows are exact; a class
with p(y) = 0 in a part has p(y|x) = 0 for every row of that part and contributes 0.
"""
from typing import NamedTuple

from autodiff import backend as B

from ._arrays import backend_float64

__all__ = ["inception_score", "MeanStd"]


class MeanStd(NamedTuple):
    """A score's mean and standard deviation over splits or subsets."""
    mean: float
    std: float


def inception_score(probs, splits=10, atol=1e-6):
    """exp(E_x KL(p(y|x) || p(y))) per split, mean and std over the splits.

    :param probs: p(y|x), shape (N, C), rows non-negative and summing to 1 (within ``atol``);
        NumPy or backend array or Tensor. Pass softmax(logits), not logits.
    :param splits: number of consecutive parts (default 10); needs N >= splits.
    :return: ``MeanStd(mean, std)`` of floats; 1 <= IS <= C.
    """
    xp = B.xp
    p = backend_float64(probs)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probs must be (N samples, C classes) probabilities, got shape "
                         f"{tuple(p.shape)}")
    splits = int(splits)
    n = int(p.shape[0])
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be between 1 and the number of samples {n}, got {splits}")
    if not bool(xp.isfinite(p).all()) or float(p.min()) < 0:
        raise ValueError("probs must be finite and non-negative (pass probabilities, not logits)")
    worst = float(xp.abs(p.sum(axis=1) - 1.0).max())
    if worst > atol:
        raise ValueError(f"rows of probs must sum to 1; the worst row is off by {worst:.3g} "
                         f"(atol {atol:g}); pass softmax(logits)")
    xlogy = B.special().xlogy
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        py = part.mean(axis=0, keepdims=True)                    # p(y) of this part, (1, C)
        kl = (xlogy(part, part) - xlogy(part, py)).sum(axis=1)   # KL per row, (n_i,)
        scores.append(float(xp.exp(kl.mean())))
    mean = sum(scores) / splits
    std = (sum((s - mean) ** 2 for s in scores) / splits) ** 0.5
    return MeanStd(mean, std)
