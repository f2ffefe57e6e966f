"""refgen.conditioning: the defining identities of each conditioning mechanism."""
import numpy as np  # host-side: random inputs and comparisons in tests
import pytest
from hypothesis import given, strategies as st

import autodiff
from refgen.conditioning import (AdaIN, ClassEmbedding, CrossAttention, FiLM, adain,
                                 classifier_free_guidance, concat_condition, drop_labels,
                                 guidance_scale_to_w, instance_norm)


def _t(shape, seed, requires_grad=False):
    return autodiff.tensor(np.random.default_rng(seed).standard_normal(shape),
                           requires_grad=requires_grad)


# ---------------------------------------------------------------------------- concatenation
def test_concat_to_vectors_and_feature_maps():
    x, c = _t((2, 3), 0), _t((2, 4), 1)
    np.testing.assert_array_equal(concat_condition(x, c).numpy(),
                                  np.concatenate([x.numpy(), c.numpy()], 1))
    fmap = _t((2, 3, 5, 6), 2)
    out = concat_condition(fmap, c).numpy()
    assert out.shape == (2, 7, 5, 6)
    np.testing.assert_array_equal(out[:, :3], fmap.numpy())
    np.testing.assert_array_equal(out[:, 3:], np.broadcast_to(c.numpy()[:, :, None, None],
                                                              (2, 4, 5, 6)))
    cmap = _t((2, 2, 5, 6), 3)
    assert concat_condition(fmap, cmap).shape == (2, 5, 5, 6)
    with pytest.raises(ValueError, match="c must be"):
        concat_condition(fmap, _t((2, 2, 4, 6), 4))


def test_concat_gradient_of_broadcast_condition_sums_over_positions():
    fmap, c = _t((1, 2, 3, 4), 0), _t((1, 5), 1, requires_grad=True)
    concat_condition(fmap, c).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), np.full((1, 5), 12.0))


# ---------------------------------------------------------------------------- FiLM
@pytest.mark.parametrize("one_plus", [False, True])
def test_film_formula(one_plus):
    film = FiLM(3, 4, one_plus=one_plus)
    x, c = _t((2, 3, 5, 5), 0), _t((2, 4), 1)
    gb = c.numpy() @ film.linear.weight.numpy().T + film.linear.bias.numpy()
    gamma, beta = gb[:, :3, None, None] + (1.0 if one_plus else 0.0), gb[:, 3:, None, None]
    np.testing.assert_allclose(film(x, c).numpy(), gamma * x.numpy() + beta, rtol=1e-12)


def test_zero_initialised_one_plus_film_is_the_identity():
    film = FiLM(3, 4, one_plus=True, zero_init=True)
    x = _t((2, 3), 0)
    np.testing.assert_array_equal(film(x, _t((2, 4), 1)).numpy(), x.numpy())


def test_film_checks_shapes():
    film = FiLM(3, 4)
    with pytest.raises(ValueError, match=r"x must be \(B, 3, \*spatial\)"):
        film(_t((2, 5), 0), _t((2, 4), 1))
    with pytest.raises(ValueError, match=r"c must have shape \(2, 4\)"):
        film(_t((2, 3), 0), _t((2, 5), 1))


# ---------------------------------------------------------------------------- AdaIN
@given(seed=st.integers(0, 1000), h=st.integers(2, 5), w=st.integers(1, 5))
def test_adain_output_has_the_style_statistics(seed, h, w):
    content = _t((2, 3, h, w), seed) * 3.0 + 1.0
    style = _t((2, 3, 4, 3), seed + 1) * 0.5 - 2.0
    out = adain(content, style, eps=0.0).numpy()
    s = style.numpy()
    np.testing.assert_allclose(out.mean(axis=(2, 3)), s.mean(axis=(2, 3)), atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(2, 3)), s.std(axis=(2, 3)), rtol=1e-10)


def test_instance_norm_statistics_and_adain_module():
    x = _t((2, 3, 4, 4), 0) * 2.0 + 5.0
    n = instance_norm(x, eps=0.0).numpy()
    np.testing.assert_allclose(n.mean(axis=(2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(n.var(axis=(2, 3)), 1.0, rtol=1e-12)
    layer = AdaIN(3, 6)
    s = _t((2, 6), 1)
    gb = s.numpy() @ layer.linear.weight.numpy().T + layer.linear.bias.numpy()
    expect = gb[:, :3, None, None] * instance_norm(x).numpy() + gb[:, 3:, None, None]
    np.testing.assert_allclose(layer(x, s).numpy(), expect, rtol=1e-12)
    with pytest.raises(ValueError, match="at least one spatial"):
        instance_norm(_t((2, 3), 0))
    # B = C = H = 3: a 1-d style's (3, 3, 1) statistics used to broadcast silently
    with pytest.raises(ValueError, match=r"number of spatial dims"):
        adain(_t((3, 3, 3, 3), 0), _t((3, 3, 5), 1))
    with pytest.raises(ValueError, match=r"agree in batch"):
        adain(_t((2, 3, 4, 4), 0), _t((2, 4, 4, 4), 1))


# ---------------------------------------------------------------------------- cross-attention
def test_cross_attention_ignores_padded_context_tokens():
    block = CrossAttention(4, 6, num_heads=2)
    x = _t((2, 3, 4), 0)
    ctx = _t((2, 5, 6), 1, requires_grad=True)
    mask = np.array([[False, False, True, True, True], [False] * 5])
    out = block(x, ctx, mask)
    out.sum().backward()
    g = np.abs(ctx.grad.numpy()).sum(-1)
    assert np.all(g[mask] == 0) and np.all(g[~mask] > 0)
    # the same result with the padded tokens removed
    short = block(x[:1], autodiff.tensor(ctx.numpy()[:1, :2])).numpy()
    np.testing.assert_allclose(out.numpy()[:1], short, rtol=1e-12)


def test_cross_attention_on_feature_maps_equals_the_token_form():
    block = CrossAttention(3, 3, num_heads=1)
    fmap, ctx = _t((2, 3, 4, 5), 0), _t((2, 6, 3), 1)
    out = block(fmap, ctx).numpy()
    tokens = autodiff.tensor(fmap.numpy().reshape(2, 3, 20).transpose(0, 2, 1))
    ref = block(tokens, ctx).numpy().transpose(0, 2, 1).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    with pytest.raises(ValueError, match=r"context must be \(2, S, 3\)"):
        block(fmap, _t((2, 6, 4), 2))
    with pytest.raises(ValueError, match="context_padding_mask must be boolean"):
        block(fmap, ctx, np.zeros((2, 5), dtype=bool))


# ---------------------------------------------------------------------------- CFG
def test_class_embedding_null_token_and_label_dropout():
    emb = ClassEmbedding(10, 4)
    assert emb.null_index == 10 and emb.embedding.weight.shape == (11, 4)
    y = np.arange(10)
    np.testing.assert_array_equal(emb.drop_labels(y, 0.0).numpy(), y)
    np.testing.assert_array_equal(emb.drop_labels(y, 1.0).numpy(), np.full(10, 10))
    np.testing.assert_array_equal(emb(emb.null_labels(2)).numpy(),
                                  np.repeat(emb.embedding.weight.numpy()[10:], 2, 0))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\]"):
        emb(np.array([11]))


def test_label_dropout_rate():
    n, p = 20000, 0.3
    dropped = drop_labels(np.zeros(n, dtype=np.int64), p, 5, autodiff.Generator(0)).numpy() == 5
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)     # 5 binomial sigmas
    a = drop_labels(np.zeros(50, dtype=np.int64), p, 5, autodiff.Generator(1)).numpy()
    b = drop_labels(np.zeros(50, dtype=np.int64), p, 5, autodiff.Generator(1)).numpy()
    np.testing.assert_array_equal(a, b)


@given(w=st.floats(-2, 10), seed=st.integers(0, 100))
def test_guidance_combination_and_the_scale_convention(w, seed):
    cond, uncond = _t((3, 4), seed), _t((3, 4), seed + 1)
    out = classifier_free_guidance(cond, uncond, w).numpy()
    np.testing.assert_allclose(out, (1 + w) * cond.numpy() - w * uncond.numpy(),
                               rtol=1e-10, atol=1e-10 * (1 + abs(w)))
    s = 1 + w                                                 # the guidance_scale convention
    np.testing.assert_allclose(
        classifier_free_guidance(cond, uncond, guidance_scale_to_w(s)).numpy(),
        s * cond.numpy() + (1 - s) * uncond.numpy(), rtol=1e-10, atol=1e-10 * (1 + abs(w)))


def test_guidance_endpoints_and_errors():
    cond, uncond = _t((2, 3), 0), _t((2, 3), 1)
    np.testing.assert_array_equal(classifier_free_guidance(cond, uncond, 0.0).numpy(), cond.numpy())
    np.testing.assert_allclose(classifier_free_guidance(cond, uncond, -1.0).numpy(), uncond.numpy(),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        classifier_free_guidance(cond, _t((2, 4), 2), 1.0)
