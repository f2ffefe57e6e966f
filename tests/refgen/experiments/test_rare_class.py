"""``refgen experiment rare-class`` on its tiny budget: the DDPM and the classifiers are
trained on the imbalanced set and never on the removed images; the bookkeeping of the rare
subset, the oversampling control, the synthetic additions and the per-class accuracy."""
import json
import os

import numpy as np  # host-side: index sets and reading back results
import pytest

import autodiff
from autodiff import backend as B
from refgen.data import load_dataset
from refgen.experiments import get_experiment
from refgen.experiments.common import ExperimentContext
from refgen.experiments.rare_class import (make_rare, oversample, per_class_accuracy,
                                           quantize, with_synthetic)


def _rows(ds):
    return {B.to_numpy(r).tobytes() for r in ds.x.reshape(len(ds), -1)}


class RecordingContext(ExperimentContext):
    """Remembers what every ``train`` call trained on."""

    def train(self, model, data, **kwargs):
        self.calls = getattr(self, "calls", [])
        self.calls.append((model, kwargs.get("tag"), kwargs.get("train_data")))
        return super().train(model, data, **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    module = get_experiment("rare-class")
    out = tmp_path_factory.mktemp("rare")
    previous = autodiff.get_default_dtype()
    autodiff.set_default_dtype("float32")
    try:
        ctx = RecordingContext(name="rare-class", out=str(out), budget="tiny",
                               settings=dict(module.BUDGETS["tiny"]), seed=0,
                               figures=str(out / "figures"), progress=None)
        record = ctx.write_result(module.run(ctx))
    finally:
        autodiff.set_default_dtype(previous)
    return out, record, ctx


def test_tiny_run_trains_only_on_the_imbalanced_set(tiny):
    out, r, ctx = tiny
    st = get_experiment("rare-class").BUDGETS["tiny"]
    full = load_dataset("digits", split="train")
    rare = int(st["rare_class"])
    n_rare = int((B.to_numpy(full.y) == rare).sum())
    _, kept, removed = make_rare(full, rare, st["rare_fraction"], 0)
    removed_rows = {B.to_numpy(full.x[i]).tobytes() for i in removed}
    assert r["rare_kept"] == max(1, round(0.01 * n_rare)) and r["rare_removed"] == \
        n_rare - r["rare_kept"]
    assert r["train_examples"] == len(full) - r["rare_removed"]

    ddpm_calls = [c for c in ctx.calls if c[0] == "ddpm"]
    assert len(ddpm_calls) == 1
    ddpm_data = ddpm_calls[0][2]
    assert len(ddpm_data) == r["train_examples"]
    # no removed image reaches the generative model (digits has no duplicate images of 8)
    assert not (_rows(ddpm_data) & removed_rows)
    assert int((B.to_numpy(ddpm_data.y) == rare).sum()) == r["rare_kept"]

    clf = {tag: data for model, tag, data in ctx.calls if model == "classifier"}
    names = ["baseline", "oversampled"] + [f"synthetic_w{w:g}" for w in st["guidance"]]
    assert sorted(clf) == sorted(f"classifier-{n}-seed{s}" for n in names
                                 for s in st["classifier_seeds"])
    s = r["rare_class_size_with_additions"]
    assert r["synthetic_per_w"] == s - r["rare_kept"]
    for tag, data in clf.items():
        assert not (_rows(data) & removed_rows)
        counts = np.bincount(B.to_numpy(data.y), minlength=10)
        if "baseline" in tag:
            assert counts[rare] == r["rare_kept"]
        else:   # oversampled and synthetic: the rare class brought to S examples
            assert counts[rare] == s
        assert len(data) == r["train_examples"] + (0 if "baseline" in tag else
                                                    s - r["rare_kept"])

    held = r["held_out"]
    assert held["examples"] == 600 and held["rare_examples"] > 0
    for name, row in r["accuracy"].items():
        for key in ("rare_accuracy", "overall_accuracy"):
            assert all(0.0 <= a <= 1.0 for a in row[key]["runs"])
            # accuracy is a count over the held-out images
            denominator = held["rare_examples"] if key == "rare_accuracy" else held["examples"]
            assert all(abs(a * denominator - round(a * denominator)) < 1e-9
                       for a in row[key]["runs"])
    assert json.load(open(out / "result.json"))["accuracy"] == r["accuracy"]
    for name in ("rare_class_accuracy_tiny.png", "rare_class_samples_tiny.png"):
        assert os.path.getsize(out / "figures" / name) > 0


def test_make_rare_keeps_the_rest_and_a_fixed_choice():
    full = load_dataset("digits", split="train")
    y = B.to_numpy(full.y)
    ds, kept, removed = make_rare(full, 3, 0.1, seed=4)
    rare = np.flatnonzero(y == 3)
    assert len(kept) == round(0.1 * len(rare))
    assert set(kept) | set(removed) == set(rare) and not set(kept) & set(removed)
    assert np.array_equal(np.bincount(B.to_numpy(ds.y), minlength=10)[np.arange(10) != 3],
                          np.bincount(y, minlength=10)[np.arange(10) != 3])
    keep = np.sort(np.concatenate([np.flatnonzero(y != 3), kept]))
    np.testing.assert_array_equal(B.to_numpy(ds.x), B.to_numpy(full.x)[keep])
    again = make_rare(full, 3, 0.1, seed=4)[1]
    assert np.array_equal(again, kept)
    assert not np.array_equal(make_rare(full, 3, 0.1, seed=5)[1], kept)
    assert len(make_rare(full, 3, 1e-6, seed=0)[1]) == 1          # never the empty class
    with pytest.raises(ValueError, match="rare_class"):
        make_rare(full, 10, 0.1, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        make_rare(full, 3, 0.0, seed=0)


def test_oversample_and_with_synthetic_fill_only_the_rare_class():
    full = load_dataset("digits", split="train")
    ds, kept, _ = make_rare(full, 8, 0.05, seed=0)
    before = np.bincount(B.to_numpy(ds.y), minlength=10)
    over = oversample(ds, 8, 100)
    after = np.bincount(B.to_numpy(over.y), minlength=10)
    assert after[8] == 100 and np.array_equal(np.delete(after, 8), np.delete(before, 8))
    assert _rows(over) == _rows(ds)                       # no new image, only repeats
    x_syn = B.xp.zeros((7, 1, 8, 8), dtype=ds.x.dtype) + 0.5
    plus = with_synthetic(ds, x_syn, 8)
    assert len(plus) == len(ds) + 7
    assert np.bincount(B.to_numpy(plus.y), minlength=10)[8] == before[8] + 7
    with pytest.raises(ValueError, match="shape"):
        with_synthetic(ds, B.xp.zeros((2, 1, 4, 4)), 8)


def test_quantize_snaps_to_the_grey_levels():
    x = B.xp.asarray([[-0.2, 0.0, 0.03, 0.5, 0.97, 1.3]])
    q = B.to_numpy(quantize(x, 17, (0.0, 1.0)))
    np.testing.assert_allclose(q * 16, np.round(q * 16), atol=1e-12)
    np.testing.assert_allclose(q, [[0.0, 0.0, 0.0625 * 0, 0.5, 1.0, 1.0]], atol=1e-12)
    np.testing.assert_array_equal(B.to_numpy(quantize(B.xp.asarray(q), 17, (0.0, 1.0))), q)


def test_per_class_accuracy_is_each_class_recall():
    y = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0, 0])
    acc = per_class_accuracy(pred, y, 4)
    np.testing.assert_allclose(acc[:3], [0.5, 2 / 3, 0.0])
    assert np.isnan(acc[3])
    # backend (device) arrays give the same answer: they are copied to the host explicitly
    on_backend = per_class_accuracy(B.to_backend(pred), B.to_backend(y), 4)
    np.testing.assert_array_equal(on_backend, acc)
    with pytest.raises(ValueError, match="differ"):
        per_class_accuracy(pred[:2], y, 4)
