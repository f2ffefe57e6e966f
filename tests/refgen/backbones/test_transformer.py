"""TransformerDecoder and TransformerEncoderDecoder: the key/value cache equals the full
recomputation, causality and padding by gradients, sampling, and the input checks."""
import numpy as np  # host-side: random inputs and comparisons in tests
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff import backend as B
from refgen.backbones.transformer import (KVCache, TransformerDecoder, TransformerEncoderDecoder,
                                          _sample_next)

V, BLOCK, D = 11, 10, 8


def _decoder(positions="learned", **kw):
    return TransformerDecoder(V, BLOCK, n_layer=2, n_head=2, n_embd=D, positions=positions,
                              generator=autodiff.Generator(3), **kw)


def _seq2seq(positions="learned"):
    return TransformerEncoderDecoder(9, 7, 8, d_model=D, nhead=2, num_encoder_layers=2,
                                     num_decoder_layers=2, positions=positions,
                                     generator=autodiff.Generator(4))


# ---------------------------------------------------------------------------- the KV cache
@given(cuts=st.lists(st.integers(1, 4), min_size=1, max_size=6),
       positions=st.sampled_from(["learned", "sinusoidal"]))
def test_cached_logits_equal_full_recomputation(cuts, positions):
    model = _decoder(positions)
    total = min(sum(cuts), BLOCK)
    tokens = np.random.default_rng(sum(cuts)).integers(0, V, size=(2, total))
    full = model(tokens).numpy()
    cache, pieces, start = model.new_cache(), [], 0
    for n in cuts:
        if start >= total:
            break
        pieces.append(model(tokens[:, start:start + n], cache=cache).numpy())
        start += n
    assert cache.length == total
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-10, atol=1e-12)


def test_cache_is_differentiable_like_the_full_pass():
    model = _decoder()
    tokens = np.random.default_rng(0).integers(0, V, size=(1, 6))
    w = model.h[0].attn.c_attn.weight
    (g_full,) = autodiff.grad(model(tokens).sum(), [w])
    cache = model.new_cache()
    total = model(tokens[:, :4], cache=cache).sum() + model(tokens[:, 4:], cache=cache).sum()
    (g_inc,) = autodiff.grad(total, [w])
    np.testing.assert_allclose(g_inc.numpy(), g_full.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------- causality
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_decoder_output_t_has_zero_gradient_wrt_inputs_after_t(positions):
    model = _decoder(positions)
    T = 6
    x = autodiff.randn(2, T, D, requires_grad=True)
    logits = model.forward_embeddings(x)
    r = autodiff.randn(2, T, V)
    for t in range(T):
        (g,) = autodiff.grad((logits[:, t] * r[:, t]).sum(), [x], retain_graph=True)
        per_position = np.abs(g.numpy()).sum(axis=(0, 2))          # (T,)
        assert np.all(per_position[t + 1:] == 0), (t, per_position)
        assert np.all(per_position[:t + 1] > 0), (t, per_position)


def test_encoder_decoder_causality_and_source_padding_by_gradients():
    model = _seq2seq()
    S, T = 6, 5
    src = autodiff.randn(2, S, D, requires_grad=True)
    tgt = autodiff.randn(2, T, D, requires_grad=True)
    smask = np.array([[False] * 4 + [True] * 2, [False] * S])
    logits = model.forward_embeddings(src, tgt, src_padding_mask=smask)
    r = autodiff.randn(2, T, 7)
    for t in range(T):
        g_src, g_tgt = autodiff.grad((logits[:, t] * r[:, t]).sum(), [src, tgt], retain_graph=True)
        tgt_mag = np.abs(g_tgt.numpy()).sum(axis=2)                  # (B, T)
        src_mag = np.abs(g_src.numpy()).sum(axis=2)                  # (B, S)
        assert np.all(tgt_mag[:, t + 1:] == 0) and np.all(tgt_mag[:, :t + 1] > 0), (t, tgt_mag)
        assert np.all(src_mag[smask] == 0), (t, src_mag)            # padded source: no effect
        assert np.all(src_mag[~smask] > 0), (t, src_mag)            # every real source token


def test_target_padding_does_not_affect_real_positions():
    model = _seq2seq()
    rng = np.random.default_rng(5)
    src, tgt = rng.integers(0, 9, (1, 6)), rng.integers(0, 7, (1, 5))
    tmask = np.array([[False] * 3 + [True] * 2])
    a = model(src, tgt, tgt_padding_mask=tmask).numpy()
    tgt2 = tgt.copy()
    tgt2[0, 3:] = (tgt2[0, 3:] + 1) % 7                              # change the padding only
    b = model(src, tgt2, tgt_padding_mask=tmask).numpy()
    np.testing.assert_array_equal(a[:, :3], b[:, :3])


def test_changing_padded_source_tokens_changes_nothing():
    model = _seq2seq("sinusoidal")
    rng = np.random.default_rng(6)
    src, tgt = rng.integers(0, 9, (2, 6)), rng.integers(0, 7, (2, 4))
    smask = np.array([[False] * 3 + [True] * 3, [False] * 5 + [True]])
    a = model(src, tgt, src_padding_mask=smask).numpy()
    src2 = np.where(smask, (src + 1) % 9, src)
    b = model(src2, tgt, src_padding_mask=smask).numpy()
    np.testing.assert_array_equal(a, b)
    c = model(src2, tgt).numpy()                                     # unmasked: it matters
    assert not np.allclose(a, c)


# ---------------------------------------------------------------------------- generation
def test_generate_greedy_matches_argmax_of_full_recomputation_past_block_size():
    # GPT-2's N(0, 0.02) init makes the logits almost independent of the context (greedy
    # decoding then repeats one token whatever the window); larger weights make the argmax
    # depend on it, so a window one token short is caught (checked below).
    model = TransformerDecoder(V, BLOCK, n_layer=2, n_head=2, n_embd=D,
                               generator=autodiff.Generator(5))
    with autodiff.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.data[...] *= 50
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    out = model.generate(prompt, max_new_tokens=12, temperature=0).numpy()   # 15 > BLOCK
    assert out.shape == (2, 15) and np.array_equal(out[:, :3], prompt)
    shorter_differs = False
    for t in range(3, 15):
        context = out[:, max(0, t - BLOCK):t]             # the last block_size tokens
        expected = model(context).numpy()[:, -1].argmax(axis=-1)
        np.testing.assert_array_equal(out[:, t], expected, err_msg=f"position {t}")
        if t > BLOCK:
            shorter = model(out[:, t - BLOCK + 1:t]).numpy()[:, -1].argmax(axis=-1)
            shorter_differs |= bool((shorter != expected).any())
    assert shorter_differs, "the test cannot tell a block_size window from a shorter one"


def test_generate_is_reproducible_and_top1_is_greedy():
    model = _decoder()
    prompt = np.array([[7]])
    a = model.generate(prompt, 8, generator=autodiff.Generator(11)).numpy()
    b = model.generate(prompt, 8, generator=autodiff.Generator(11)).numpy()
    np.testing.assert_array_equal(a, b)
    g = model.generate(prompt, 8, temperature=0).numpy()
    k1 = model.generate(prompt, 8, top_k=1, generator=autodiff.Generator(0)).numpy()
    np.testing.assert_array_equal(g, k1)
    assert model.training                               # the mode is restored after sampling


def test_sampling_follows_softmax_and_top_k():
    xp = B.xp
    logits = xp.asarray([[0.5, -1.0, 2.0, 0.0]] * 40000)
    gen = autodiff.Generator(0)
    draws = B.to_numpy(_sample_next(logits, 1.0, None, gen))[:, 0]
    p = np.exp([0.5, -1.0, 2.0, 0.0])
    p /= p.sum()
    freq = np.bincount(draws, minlength=4) / draws.size
    sigma = np.sqrt(p * (1 - p) / draws.size)
    assert np.all(np.abs(freq - p) < 5 * sigma), (freq, p)
    top2 = B.to_numpy(_sample_next(logits[:2000], 1.0, 2, gen))[:, 0]
    assert set(np.unique(top2)) <= {0, 2}


# ---------------------------------------------------------------------------- structure, errors
def test_weight_tying_shares_one_parameter():
    tied, untied = _decoder(), _decoder(tie_weights=False)
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.num_parameters() - tied.num_parameters() == V * D
    assert "lm_head.weight" in tied.state_dict()        # both names, as torch's state_dict


def test_float32_end_to_end():
    autodiff.set_default_dtype("float32")
    model = _decoder()
    out = model(np.array([[1, 2, 3]]))
    assert out.dtype == np.float32
    out.sum().backward()
    assert model.wte.weight.grad.dtype == np.float32


def test_clear_errors():
    model = _decoder()
    with pytest.raises(ValueError, match="integer"):
        model(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        model(np.array([[0, 11]]))
    with pytest.raises(ValueError, match="block_size 10"):
        model(np.zeros((1, 11), dtype=np.int64))
    cache = model.new_cache()
    model(np.zeros((1, 8), dtype=np.int64), cache=cache)
    with pytest.raises(ValueError, match="exceed block_size"):
        model(np.zeros((1, 3), dtype=np.int64), cache=cache)
    with pytest.raises(ValueError, match="cache has 3 layers"):
        model(np.zeros((1, 1), dtype=np.int64), cache=KVCache(3))
    with pytest.raises(ValueError, match="known: learned, sinusoidal"):
        TransformerDecoder(5, 4, positions="rotary")
    with pytest.raises(ValueError, match="max_new_tokens must be a non-negative int, got -1"):
        model.generate(np.array([[1]]), -1)
    with pytest.raises(ValueError, match="divisible"):
        TransformerDecoder(5, 4, n_head=3, n_embd=8)
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        model.forward_embeddings(autodiff.randn(2, 3, 5))
    s2s = _seq2seq()
    with pytest.raises(ValueError, match=r"src_padding_mask must be a boolean array of shape \(1, 4\)"):
        s2s(np.zeros((1, 4), dtype=np.int64), np.zeros((1, 2), dtype=np.int64),
            src_padding_mask=np.zeros((1, 3), dtype=bool))
    with pytest.raises(ValueError, match="max_len 8"):
        s2s(np.zeros((1, 9), dtype=np.int64), np.zeros((1, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="known: gelu, relu"):
        TransformerEncoderDecoder(3, 3, 4, d_model=4, nhead=1, activation="swish")
