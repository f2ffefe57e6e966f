"""summary() and count_parameters(): counts by hand, tied weights once, frozen parameters."""
import pytest

from autodiff import nn
from refgen.backbones.summary import count_parameters, summary
from refgen.backbones.transformer import TransformerDecoder


def test_counts_by_hand_and_frozen_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    assert count_parameters(model) == 3 * 4 + 4 + 4 * 2
    model[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 8
    text = summary(model)
    assert "Total params: 24" in text and "Trainable params: 8" in text
    assert "Non-trainable params: 16" in text
    assert "0 (Linear)" in text and "weight (4, 3), bias (4,)" in text


def test_tied_weights_counted_once_and_named():
    V, block, d, L = 11, 8, 8, 2
    tied = TransformerDecoder(V, block, n_layer=L, n_head=2, n_embd=d)
    per_block = 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    expected = V * d + block * d + L * per_block + 2 * d          # lm_head shares wte
    assert count_parameters(tied) == expected
    text = summary(tied)
    assert f"Total params: {expected:,}" in text
    assert "(shared with wte.weight)" in text
    shallow = summary(tied, max_depth=1)
    assert "c_attn" not in shallow and "h (ModuleList)" in shallow


def test_errors():
    with pytest.raises(TypeError, match="expected an autodiff.nn.Module"):
        summary(object())
    with pytest.raises(ValueError, match="max_depth"):
        summary(nn.Linear(1, 1), max_depth=-1)
