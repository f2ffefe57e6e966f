"""``refgen experiment text-to-image`` on its tiny budget, and the measurement it rests on:
the classifier's accuracy against the caption, which on two-digit canvases classifies each
8x8 half and must be right about which half is which."""
import json
import os

import numpy as np
import pytest

import autodiff
from autodiff import backend as B
from refgen.data import load_dataset
from refgen.experiments import get_experiment
from refgen.experiments.common import ExperimentContext
from refgen.experiments.text_to_image import (BUDGETS, caption_accuracy, eval_captions,
                                              make_canvases, run)
from refgen.experiments.captions import text as T
from refgen.metrics.pretrained import load_pretrained


def test_tiny_run(tmp_path):
    lines = []
    ctx = ExperimentContext(name="text-to-image", out=str(tmp_path / "out"), budget="tiny",
                            settings=BUDGETS["tiny"], seed=0, figures=str(tmp_path / "figs"),
                            progress=lines.append)
    result = run(ctx)
    assert any("starting from the single-digit model's weights" in line for line in lines)
    assert result["chance"] == pytest.approx({"single": 0.1, "pair": 0.01})
    steps = BUDGETS["tiny"]["sample_steps"]
    for name in ("single", "pair"):
        rows = result["models"][name]
        assert set(rows) == {"diffusion w=0", "diffusion w=1", "diffusion w=3",
                             "autoregressive"}
        for label, row in rows.items():
            assert 0.0 <= row["accuracy"] <= row["per_digit_accuracy"] <= 1.0, label
            assert row["steps"] == BUDGETS["tiny"]["diffusion" if "diffusion" in label
                                                   else "autoregressive"]["steps"]
        assert rows["diffusion w=0"]["nfe_per_sample"] == steps
        assert rows["diffusion w=3"]["nfe_per_sample"] == 2 * steps
        assert rows["autoregressive"]["nfe_per_sample"] == 64 * (1 if name == "single" else 2)
        # an untrained pixel model is close to uniform over 17 levels: log2(17) = 4.09
        assert 3.0 < rows["autoregressive"]["test_bits_per_dim"] < 5.5
    for name in ("single", "pair"):
        assert os.path.getsize(tmp_path / "figs" / f"text_to_image_{name}.png") > 1000
    json.dumps(result)                                     # JSON-able for result.json
    # a second run loads every trained model instead of retraining
    again = run(ctx)

    def numbers(r):    # all but the sampling times
        return {name: {label: {k: v for k, v in row.items() if k != "sample_seconds"}
                       for label, row in rows.items()} for name, rows in r["models"].items()}

    assert numbers(again) == numbers(result)


def test_registered():
    assert get_experiment("text-to-image").run is run


def test_caption_accuracy_reads_each_half():
    """On real test canvases the shipped digits classifier agrees with the captions' digits;
    swapping the caption's left and right digits destroys the agreement on pairs."""
    test = load_dataset("digits", "test")
    clf = load_pretrained("digits")
    x = test.x.astype(clf.head.weight.dtype)
    acc, _ = caption_accuracy(clf, x, test.y)
    assert acc > 0.9
    px, pd, _ = make_canvases(x, test.y, B.xp.zeros_like(test.y), 2, 400,
                              autodiff.Generator(0))
    assert px.shape == (400, 1, 8, 16) and pd.shape == (400, 2)
    pair_acc, per_digit = caption_accuracy(clf, px, pd)
    assert pair_acc > 0.8 and per_digit > 0.9
    differ = pd[:, 0] != pd[:, 1]
    swapped, _ = caption_accuracy(clf, px[differ], pd[differ][:, ::-1])
    assert swapped < 0.1


def test_eval_captions_cover_digits_and_templates():
    tokens, digits, styles, template = eval_captions(1, 100, autodiff.Generator(0))
    assert np.bincount(B.to_numpy(digits), minlength=10).tolist() == [10] * 10
    assert len(set(B.to_numpy(template).tolist())) == len(T.SINGLE_TEMPLATES)
    texts = T.detokenize(tokens)
    for text, d, s, j in zip(texts, B.to_numpy(digits), B.to_numpy(styles),
                             B.to_numpy(template)):
        assert text == T.single_caption(int(d), int(j), int(s))
    tokens, digits, styles, template = eval_captions(2, 20, autodiff.Generator(0))
    for text, d, s, j in zip(T.detokenize(tokens), B.to_numpy(digits), B.to_numpy(styles),
                             B.to_numpy(template)):
        assert text == T.pair_caption(int(d[0]), int(d[1]), int(j), tuple(map(int, s)))


def test_bad_canvas_arguments_are_named():
    x = B.xp.zeros((4, 1, 8, 8))
    y = B.xp.arange(4)
    with pytest.raises(ValueError, match="k \\(digits per canvas\\) must be 1 or 2, got 3"):
        make_canvases(x, y, y, 3, 10)
    with pytest.raises(ValueError, match="n must be a positive number of canvases"):
        make_canvases(x, y, y, 2, None)
