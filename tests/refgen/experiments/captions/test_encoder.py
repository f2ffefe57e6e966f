"""The caption encoder: padding is invisible (more padding leaves the words' vectors
unchanged), word order matters (positions), and bad captions are named."""
import numpy as np
import pytest

import autodiff
from autodiff import backend as B
from refgen.experiments.captions import CaptionEncoder
from refgen.experiments.captions import text as T


def encoder():
    return CaptionEncoder(len(T.VOCAB), 12, d_model=8, nhead=2, num_layers=2,
                          generator=autodiff.Generator(0))


def test_padding_is_invisible():
    enc = encoder()
    short = T.tokenize(["a 3 left of a 7", "an eight"], 6)
    long = T.tokenize(["a 3 left of a 7", "an eight"], 10)
    with autodiff.no_grad():
        a, mask_a = enc(short)
        b, mask_b = enc(long)
    assert B.to_numpy(mask_b)[1].tolist() == [False] * 2 + [True] * 8
    a, b = a.numpy(), b.numpy()
    np.testing.assert_allclose(b[0, :6], a[0, :6], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b[1, :2], a[1, :2], rtol=0, atol=1e-12)


def test_word_order_matters():
    """'a 3 left of a 7' and 'a 7 left of a 3' hold the same words: only the positions
    tell them apart, and the encoder's pooled output differs."""
    enc = encoder()
    with autodiff.no_grad():
        c, _ = enc(T.tokenize(["a 3 left of a 7", "a 7 left of a 3"], 6))
    pooled = c.numpy().mean(axis=1)
    assert np.abs(pooled[0] - pooled[1]).max() > 1e-4


def test_bad_captions_are_named():
    enc = encoder()
    with pytest.raises(ValueError, match="caption length 13 exceeds max_len 12"):
        enc(B.xp.ones((1, 13), dtype=np.int64))
    with pytest.raises(ValueError, match=rf"tokens must lie in \[0, {len(T.VOCAB)}\)"):
        enc(B.xp.full((1, 3), 99, dtype=np.int64))
