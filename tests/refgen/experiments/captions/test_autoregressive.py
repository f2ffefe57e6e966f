"""The encoder-decoder pixel model: autoregressive in the pixels (output i does not depend on
pixels >= i, by gradients), normalised over all images, sampled from the distribution its
log_prob states, and conditioned on the caption."""
import itertools

import numpy as np
import pytest

import autodiff
from autodiff import backend as B
from refgen.experiments.captions import CaptionPixelTransformer, autoregressive_config
from refgen.experiments.captions import text as T


def model(shape, levels, seed=0):
    cfg = autoregressive_config(shape, levels, T.caption_length(1), d_model=8, nhead=2,
                                num_encoder_layers=1, num_decoder_layers=2, seed=seed)
    m = CaptionPixelTransformer(cfg)
    # break the symmetry of the fresh output layer a little more (N(0, 0.02) logits are
    # nearly uniform; the properties hold for any weights)
    with autodiff.no_grad():
        for p in m.net.parameters():
            p.data[...] = p.data * 20.0 if p.ndim == 2 else p.data
    return m


def captions(digits):
    return T.caption_table(B.xp.asarray(digits), B.xp.zeros(len(digits), dtype=np.int64))[:, 0]


def test_output_i_depends_only_on_pixels_before_i():
    """d logits_i / d pixel_embedding_j = 0 for j >= i and != 0 for j < i."""
    m = model((1, 4, 4), 5)
    tokens = captions([3, 8])
    memory, mask = m.encode(tokens)
    emb = autodiff.randn(2, 16, 8, generator=autodiff.Generator(1), requires_grad=True)
    logits = m.logits_from_pixel_embeddings(emb, memory, mask)          # (2, 16, 5)
    assert logits.shape == (2, 16, 5)
    for i in range(16):
        (g,) = autodiff.grad(logits[:, i].sum(), [emb])
        per_pixel = np.abs(B.to_numpy(g.data)).sum(axis=(0, 2))          # (16,)
        assert (per_pixel[i:] == 0).all(), i
        assert (per_pixel[:i] > 0).all(), i


def test_log_prob_is_normalised_over_all_images():
    """sum over all L^D images of p_theta(x | c) = 1 for each caption (exact: 3^4 images)."""
    m = model((1, 2, 2), 3)
    images = np.array(list(itertools.product(range(3), repeat=4)), dtype=np.float64) / 2.0
    x = autodiff.Tensor(B.xp.asarray(images.reshape(-1, 1, 2, 2)))
    for digit in (0, 7):
        tokens = B.xp.repeat(captions([digit]), x.shape[0], axis=0)
        with autodiff.no_grad():
            total = float(autodiff.exp(m.log_prob(x, tokens)).sum().item())
        assert abs(total - 1.0) < 1e-12


def test_samples_follow_log_prob():
    """The sampler draws from the distribution log_prob states: on 1 x 2 images with 3
    levels (9 images), empirical frequencies of 4000 samples against p_theta, within 5
    binomial standard deviations each."""
    m = model((1, 1, 2), 3, seed=3)
    n = 4000
    tokens = B.xp.repeat(captions([5]), n, axis=0)
    x = m.sample(tokens, autodiff.Generator(11))
    k = B.to_numpy(m.to_levels(x))
    freq = np.bincount(k[:, 0] * 3 + k[:, 1], minlength=9) / n
    grid = np.array(list(itertools.product(range(3), repeat=2)), dtype=np.float64) / 2.0
    with autodiff.no_grad():
        p = np.exp(B.to_numpy(m.log_prob(autodiff.Tensor(B.xp.asarray(grid.reshape(9, 1, 1, 2))),
                                         B.xp.repeat(captions([5]), 9, axis=0)).data))
    assert abs(p.sum() - 1) < 1e-12
    assert p.max() - p.min() > 0.02          # a non-uniform distribution is being tested
    np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / n) + 1e-12)


def test_the_caption_conditions_the_pixels():
    m = model((1, 2, 2), 3)
    x = autodiff.Tensor(B.xp.full((2, 1, 2, 2), 0.5))
    with autodiff.no_grad():
        lp = B.to_numpy(m.log_prob(x, captions([1, 9])).data)
    assert abs(lp[0] - lp[1]) > 1e-6


def test_levels_round_trip_and_bad_input():
    m = model((1, 2, 2), 17)
    k = B.xp.arange(8).reshape(2, 4)
    x = m.from_levels(k, B.numpy.float64)
    np.testing.assert_array_equal(B.to_numpy(m.to_levels(x)), B.to_numpy(k))
    with pytest.raises(ValueError, match=r"x must be \(N, 1, 2, 2\), got \(2, 1, 3, 3\)"):
        m.to_levels(B.xp.zeros((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        m.sample(captions([1]), temperature=-1.0)
