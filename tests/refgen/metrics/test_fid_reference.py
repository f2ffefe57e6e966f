"""FID against pytorch-fid's calculate_frechet_distance, re-written here from its published
description with NumPy/SciPy (no torch needed): np.cov with ddof 1, sqrtm(S1 @ S2), the 1e-6
diagonal retry for a non-finite result, the 1e-3 imaginary-diagonal check, the real part's
trace. The issue asks for agreement to 1e-6 relative on the same features."""
import warnings

import numpy as np  # host-side: the reference formula is host NumPy/SciPy
import pytest
import scipy.linalg

from refgen.metrics import RunningStatistics, fid_from_features, frechet_distance


def reference_fid(x, y, eps=1e-6):
    mu1, mu2 = np.mean(x, axis=0), np.mean(y, axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


CASES = [  # (n_real, n_fake, d, shift, spread): well and badly conditioned, 2048-d like features
    (400, 300, 16, 0.3, 1.0),
    (1000, 800, 64, 0.05, 1.2),
    (300, 300, 256, 0.1, 1.0),      # N ~ d: ill-conditioned covariances
    (100, 120, 128, 0.5, 2.0),      # N < d: singular covariances
]


@pytest.mark.parametrize("n1,n2,d,shift,spread", CASES)
def test_fid_matches_pytorch_fid_formula(n1, n2, d, shift, spread):
    rng = np.random.default_rng(d)
    # ReLU-like non-negative features with correlated coordinates, as Inception's pool3
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    x = np.maximum(rng.standard_normal((n1, d)) @ mix, 0)
    y = np.maximum((rng.standard_normal((n2, d)) * spread + shift) @ mix, 0)
    want = reference_fid(x, y)
    assert fid_from_features(x, y) == pytest.approx(want, rel=1e-6)
    # the statistics streamed in batches give the same number
    sx, sy = RunningStatistics(), RunningStatistics()
    for i in range(0, n1, 97):
        sx.update(x[i:i + 97])
    for i in range(0, n2, 61):
        sy.update(y[i:i + 61])
    assert sx.frechet_distance(sy) == pytest.approx(want, rel=1e-6)


def test_singular_retry_path_matches():
    # exactly singular product with a non-finite first sqrtm is rare in SciPy >= 1.16; check
    # that when the offset path runs, ours is the same arithmetic as the reference's
    s = np.zeros((3, 3))
    s[0, 0] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = scipy.linalg.sqrtm(s @ s)
    got = frechet_distance(np.zeros(3), s, np.ones(3), s)
    if np.isfinite(first).all():
        want = 3.0 + 1 + 1 - 2 * np.trace(np.real(first))
    else:
        off = np.eye(3) * 1e-6
        want = 3.0 + 2 - 2 * np.trace(np.real(scipy.linalg.sqrtm((s + off) @ (s + off))))
    assert got == pytest.approx(want, rel=1e-6)
