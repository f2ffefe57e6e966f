"""Captions of digits: every template names the right digit(s), two-digit captions compose
(the relation, not the word order, says which digit is left), the style words split each
class at its median ink mass, and tokens round-trip."""
import math

import numpy as np
import pytest

import autodiff
from autodiff import backend as B
from refgen.data import load_dataset
from refgen.experiments.captions import text as T

# an independent reading of the captions: a digit is named by its word or its numeral
NAMES = {**{w: d for d, w in enumerate(("zero", "one", "two", "three", "four", "five", "six",
                                        "seven", "eight", "nine"))},
         **{str(d): d for d in range(10)}}


def named_digits(caption):
    return [NAMES[w] for w in caption.replace(",", " ").split() if w in NAMES]


def read_pair(caption):
    """(left, right) as a reader understands the caption: 'X right of Y' puts Y left."""
    first, second = named_digits(caption)
    return (second, first) if "right of" in caption else (first, second)


def named_styles(caption):
    return [w for w in caption.replace(",", " ").split() if w in ("thin", "thick")]


@pytest.mark.parametrize("template", range(len(T.SINGLE_TEMPLATES)))
def test_every_single_template_names_the_right_digit(template):
    for d in range(10):
        for s in (0, 1):
            caption = T.single_caption(d, template, s)
            assert named_digits(caption) == [d], caption
            assert named_styles(caption) in ([], [T.STYLES[s]]), caption


def test_some_single_template_names_the_style():
    assert any(named_styles(T.single_caption(7, j, 0)) == ["thin"]
               for j in range(len(T.SINGLE_TEMPLATES)))
    assert T.single_caption(7, 2, 0) == "seven, written thin"


@pytest.mark.parametrize("template", range(len(T.PAIR_TEMPLATES)))
def test_pair_captions_compose(template):
    """Every ordered pair, every template: read back as (left, right), styles in order."""
    for left in range(10):
        for right in range(10):
            caption = T.pair_caption(left, right, template, (0, 1))
            assert read_pair(caption) == (left, right), caption
            assert named_styles(caption) in ([], ["thin", "thick"]), caption


def test_pair_templates_use_both_relations_and_articles():
    assert T.pair_caption(3, 7, 0) == "a 3 left of a 7"
    assert T.pair_caption(3, 8, 1) == "an eight right of a three"   # right digit named first
    assert T.single_caption(8, 0) == "an eight"


def test_tokens_round_trip_and_table_matches_the_templates():
    digits = B.xp.asarray([[3, 7], [8, 0]])
    styles = B.xp.asarray([[0, 1], [1, 0]])
    table = T.caption_table(digits, styles)                  # (2, J, S)
    assert table.shape == (2, len(T.PAIR_TEMPLATES), T.caption_length(2))
    for i in range(2):
        texts = T.detokenize(table[i])
        assert texts == [T.pair_caption(int(digits[i, 0]), int(digits[i, 1]), j,
                                        tuple(int(s) for s in styles[i]))
                         for j in range(len(T.PAIR_TEMPLATES))]
    single = T.caption_table(B.xp.asarray([4]), B.xp.asarray([1]))
    assert T.detokenize(single[0]) == [T.single_caption(4, j, 1)
                                       for j in range(len(T.SINGLE_TEMPLATES))]
    # padding is on the right and only after the words
    row = B.to_numpy(single[0, 0])
    assert row[0] != T.PAD and (row[np.argmax(row == T.PAD):] == T.PAD).all()


def test_bad_captions_are_named():
    with pytest.raises(ValueError, match="unknown word.*'purple'"):
        T.tokenize(["a purple seven"], 8)
    with pytest.raises(ValueError, match="more than length=2"):
        T.tokenize(["the digit 7"], 2)
    with pytest.raises(ValueError, match="digit must be a digit 0..9, got 12"):
        T.single_caption(12)
    with pytest.raises(ValueError, match="template must be a template index"):
        T.pair_caption(1, 2, template=9)
    with pytest.raises(ValueError, match=r"digits and styles must both be \(N,\) or \(N, 2\)"):
        T.caption_table(B.xp.zeros((3, 3), dtype=np.int64), B.xp.zeros((3, 3), dtype=np.int64))


def test_drop_captions_rate_and_null_rows():
    tokens = T.caption_table(B.xp.arange(10000) % 10, B.xp.zeros(10000, dtype=np.int64))[:, 0]
    null = T.null_tokens(1, tokens.shape[1])[0]
    assert (T.drop_captions(tokens, 1.0, autodiff.Generator(0)) == null).all()
    assert (T.drop_captions(tokens, 0.0, autodiff.Generator(0)) == tokens).all()
    dropped = T.drop_captions(tokens, 0.3, autodiff.Generator(1))
    is_null = (dropped == null).all(axis=1)
    kept = ~is_null
    assert (dropped[kept] == tokens[kept]).all()            # a row is dropped whole or kept
    # the dropped share is Binomial(10000, 0.3) / 10000: sd 0.0046, 5 sd
    assert abs(float(is_null.mean()) - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 10000)
    with pytest.raises(ValueError, match="p must be in"):
        T.drop_captions(tokens, 1.5)


def test_styles_split_each_class_at_its_median():
    data = load_dataset("digits", "train")
    medians = T.class_ink_medians(data.x, data.y)
    styles = T.ink_styles(data.x, data.y, medians)
    for d in range(10):
        members = styles[data.y == d]
        # below the median: at most half of the class; at or above: at least half
        assert 0.35 < float(members.mean()) < 0.65, d
    # more ink makes a thin image thick, less ink a thick one thin
    thin = styles == 0
    assert (T.ink_styles(data.x[thin] * 2.0, data.y[thin], medians) == 1).mean() > 0.95
    assert (T.ink_styles(data.x[~thin] * 0.5, data.y[~thin], medians) == 0).mean() > 0.95


def test_with_overrides_refuses_unknown_options_and_keeps_the_defaults():
    import pytest
    from refgen.experiments.captions import autoregressive_config, diffusion_config
    from refgen.experiments.captions.text import with_overrides
    defaults = {"a": 1, "b": 2}
    assert with_overrides(defaults, {"b": 3}, "f") == {"a": 1, "b": 3}
    assert defaults == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match=r"f: unknown option\(s\) \['c'\]; known: a, b"):
        with_overrides(defaults, {"c": 0}, "f")
    with pytest.raises(ValueError, match="diffusion_config: unknown option"):
        diffusion_config((1, 8, 8), 6, nope=1)
    with pytest.raises(ValueError, match="autoregressive_config: unknown option"):
        autoregressive_config((1, 8, 8), 17, 6, nope=1)
    assert diffusion_config((1, 8, 8), 6, seed=5)["seed"] == 5
