"""The pixel Transformer: autoregressive by gradients, normalised, and its KV-cache sampler
draws from the model's own probabilities."""
import itertools
import math

import numpy as np  # host-side: reference computations and comparisons
import pytest

import autodiff
from autodiff import backend as B
from refgen.families.autoregressive import pixel_transformer as PT
from refgen.families.base import data_info_for_config


def _info(h, w, levels=2, num_classes=None):
    info = {"name": "img", "kind": "image", "shape": [1, h, w], "levels": levels,
            "value_range": [0.0, 1.0], "binary": levels == 2}
    if num_classes:
        info["num_classes"] = num_classes
    return info


def _model(info, weight_scale=2.0, **overrides):
    config = PT.default_config(info)
    config.update(n_layer=2, n_head=2, n_embd=8)
    config.update(overrides)
    config["data_info"] = data_info_for_config(info)
    model = PT.build(config)
    for name, p in model.net.named_parameters():   # sharper conditionals than GPT-2's init
        if "ln" not in name:
            p.data *= weight_scale
    return model


def _all_images(d, levels):
    return np.array(list(itertools.product(range(levels), repeat=d)),
                    dtype=np.float64) / (levels - 1)


def test_autoregressive_property_by_gradients():
    """d logits(pixel i) / d embedding(pixel j) == 0 for every j >= i: the input at
    sequence position t is pixel t - 1 (position 0 is the start token)."""
    h, w, levels = 3, 3, 4
    model = _model(_info(h, w, levels, num_classes=2), conditional=True)
    D = h * w
    x = np.random.default_rng(0).integers(0, levels, (1, D)) / (levels - 1)
    k = model.head.to_index(autodiff.Tensor(x))
    tokens = B.xp.concatenate([model._start_tokens(1, B.xp.asarray([1])), k[:, :-1]], axis=1)
    emb = autodiff.Tensor(model.net.wte(autodiff.Tensor(tokens)).data, requires_grad=True)
    logits = model.net.forward_embeddings(emb)[:, :, :levels]          # (1, D, L)
    np.testing.assert_allclose(B.to_numpy(logits.data).transpose(0, 2, 1),
                               B.to_numpy(model.logits_flat(autodiff.Tensor(x),
                                                            B.xp.asarray([1])).data),
                               rtol=0, atol=1e-12)
    for i in range(D):
        (g,) = autodiff.grad(logits[0, i].sum(), [emb])
        g = np.abs(B.to_numpy(g.data)[0]).sum(axis=1)                   # per input position
        # position t carries pixel t - 1: pixel i may see positions 0..i (pixels < i)
        assert np.all(g[i + 1:] == 0.0), i
        assert np.all(g[:i + 1] > 0.0), i


@pytest.mark.parametrize("levels,h,w", [(2, 2, 4), (3, 2, 3)])
def test_probabilities_of_all_images_sum_to_one(levels, h, w):
    model = _model(_info(h, w, levels, num_classes=2), conditional=True)
    x = autodiff.Tensor(_all_images(h * w, levels).reshape(-1, 1, h, w))
    with autodiff.no_grad():
        for label in (0, 1):
            y = B.xp.full(x.shape[0], label, dtype=B.xp.int64)
            log_p = B.to_numpy(model.log_prob(x, cond=y).data)
            assert abs(math.fsum(np.exp(log_p)) - 1.0) < 1e-12
            assert np.ptp(log_p) > 1.0


def test_kv_cache_sampler_matches_probabilities():
    """Pearson's chi-squared test, alpha = 1e-3, 20,000 cached samples of a 2x2 binary
    model with a label against its exact probabilities (full recomputation)."""
    from scipy import stats
    h = w = 2
    n, d = 20_000, 4
    model = _model(_info(h, w, num_classes=2), weight_scale=40.0, conditional=True)
    with autodiff.no_grad():
        s = B.to_numpy(model.sample(n, autodiff.Generator(4), cond=1).data).reshape(n, d)
        p = np.exp(B.to_numpy(model.log_prob(
            autodiff.Tensor(_all_images(d, 2).reshape(-1, 1, h, w)),
            cond=B.xp.ones(16, dtype=B.xp.int64)).data))
    index = (s * (2 ** np.arange(d - 1, -1, -1))).sum(axis=1).astype(int)
    observed = np.bincount(index, minlength=2 ** d)
    chi2 = ((observed - n * p) ** 2 / (n * p)).sum()
    assert stats.chi2.sf(chi2, df=2 ** d - 1) > 1e-3, chi2
    assert p.max() > 5 * p.min()


def test_binarized_data_use_two_level_tokens_and_bad_input_is_named():
    grey = {"name": "g", "kind": "image", "shape": [1, 2, 2], "levels": 256,
            "value_range": [0.0, 1.0], "binary": False}
    model = _model(grey, binarize="dynamic")
    assert model.levels_ == 2 and model.discrete
    with pytest.raises(ValueError, match="levels"):
        model.log_prob(autodiff.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="quantised image"):
        _model({"name": "pts", "kind": "points", "shape": [2]})
    with pytest.raises(ValueError, match="unknown option"):
        model.sample(1, autodiff.Generator(0), steps=4)
