"""Metric reports on digits: another split is close, identical sets are identical, true digits
score an IS near the number of classes, every report says which extractor and how many
samples; bits per dimension from a model's likelihood with the dequantization offset."""
import math

import pytest

import autodiff
from autodiff import backend as B
from refgen.backbones.classifier import DigitClassifier
from refgen.metrics.pretrained import save_weights
from refgen.data import load_dataset
from refgen.metrics import SAMPLE_METRICS, evaluate_samples, format_report
from refgen.metrics.extractors import MNIST_CLASSIFIER_FILE
from refgen.families.likelihood import model_bits_per_dim
from refgen.metrics.report import choose_extractor, parse_metric_names

KEYS = {"fid": ["fid"], "kid": ["kid_mean", "kid_std"], "is": ["is_mean", "is_std"],
        "pr": ["precision", "recall"], "dc": ["density", "coverage"]}


@pytest.fixture(scope="module")
def val():
    autodiff.set_default_dtype("float64")
    return load_dataset("digits", split="val").x          # (300, 1, 8, 8)


def _noisy(x, std, seed=1):
    g = autodiff.Generator(seed)
    return B.xp.clip(x + std * g.normal(x.shape, "float64"), 0.0, 1.0)


def test_another_split_is_close_and_the_report_says_how(val):
    r = evaluate_samples(val, "digits")                       # vs the test split
    assert r["extractor"] == "digits-classifier"
    assert "8x8" in r["extractor_choice"] and "digits classifier" in r["extractor_description"]
    assert (r["n_fake"], r["n_real"], r["feature_dim"]) == (300, 300, 128)
    assert r["real"] == "digits (test split)" and r["metrics"] == list(SAMPLE_METRICS)
    for name in SAMPLE_METRICS:
        for key in KEYS[name]:
            if key == "kid_std":   # 300 vs 300 rows: each subset is the whole set
                assert r[key] is None, "KID's spread is undefined here, not a number"
                continue
            assert math.isfinite(r[key]), key
    assert r["conventions"]["fid"]["method"] == "pytorch-fid"
    assert r["conventions"]["kid"]["subset_size"] == 300      # clipped from 1000 and said so
    assert r["conventions"]["kid"]["num_subsets"] == 100
    assert r["conventions"]["pr"]["k"] == 3 and r["conventions"]["dc"]["k"] == 5
    assert r["conventions"]["is"]["classifier"] == "digits-classifier"
    # another split of the same data is much closer than corrupted or lopsided digits
    assert r["fid"] >= 0
    noisy = evaluate_samples(_noisy(val, 0.3), "digits", metrics="fid")
    y = load_dataset("digits", split="val").y
    ones = evaluate_samples(val[B.xp.asarray(y) < 3], "digits", metrics="fid")
    assert r["fid"] < noisy["fid"] / 3 and r["fid"] < ones["fid"] / 3
    assert r["precision"] > 0.85 and r["recall"] > 0.85
    assert noisy["conventions"].keys() == {"fid"}


def test_identical_sets(val):
    r = evaluate_samples(val, val, metrics=["fid", "pr", "dc"])
    assert r["real"] == "given array"
    assert 0.0 <= r["fid"] < 1e-6
    assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["coverage"] == 1.0


def test_inception_score_of_true_digits_near_ten():
    x = load_dataset("digits", split="all").x                  # 1797 images, splits of ~180
    r = evaluate_samples(x, "digits", metrics="is")
    assert 8.0 <= r["is_mean"] <= 10.0
    assert r["conventions"]["is"] == {**r["conventions"]["is"], "splits": 10, "num_classes": 10}
    # collapsed onto one class: IS near 1
    zeros = x[B.xp.asarray(load_dataset("digits", split="all").y) == 0]
    assert evaluate_samples(zeros, "digits", metrics="is")["is_mean"] < 1.5


def test_n_takes_the_first_samples_and_a_seeded_real_subset(val):
    a = evaluate_samples(val, "digits", metrics="fid,pr", n=100, seed=3)
    b = evaluate_samples(val[:100], "digits", metrics="fid,pr", n=100, seed=3)
    c = evaluate_samples(val, "digits", metrics="fid,pr", n=100, seed=4)
    assert a["n_fake"] == a["n_real"] == 100
    assert a["fid"] == b["fid"] and a["fid"] != c["fid"]
    with pytest.raises(ValueError, match="only 300 samples"):
        evaluate_samples(val, "digits", n=301)


def test_auto_extractor_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("REFGEN_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert choose_extractor((1, 8, 8))[0].name == "digits-classifier"
    ext, why = choose_extractor((2,))
    assert ext.name == "pixels" and "(2,)" in why
    ext, why = choose_extractor((1, 28, 28))
    assert ext.name == "pixels" and "no MNIST classifier" in why
    ext, why = choose_extractor((3, 32, 32))
    assert ext.name == "pixels" and "Inception" in why
    save_weights(DigitClassifier(image_size=28, channels=[4, 4, 8], hidden=16),
                 str(tmp_path / MNIST_CLASSIFIER_FILE))
    assert choose_extractor((1, 28, 28))[0].name == "mnist-classifier"
    assert choose_extractor((1, 8, 8), "pixels")[1] == "chosen by the caller"
    with pytest.raises(ValueError, match="'vgg'.*auto, digits-classifier"):
        choose_extractor((1, 8, 8), "vgg")


def test_points_default_metrics_skip_is_and_say_why():
    real, fake = autodiff.randn(200, 2), autodiff.randn(150, 2) + 0.5
    r = evaluate_samples(fake, real)
    assert r["extractor"] == "pixels" and "is" not in r["metrics"]
    assert "probabilities" in r["skipped"]["is"]
    assert r["fid"] > 0 and (r["n_fake"], r["n_real"]) == (150, 200)
    with pytest.raises(ValueError, match="Inception Score needs class probabilities"):
        evaluate_samples(fake, real, metrics="is")


def test_bad_input_errors(val):
    with pytest.raises(ValueError, match=r"'fdi'.*fid, kid, is, pr, dc"):
        evaluate_samples(val, "digits", metrics="fid,fdi")
    with pytest.raises(ValueError, match=r"\(1, 28, 28\).*\(1, 8, 8\)"):
        evaluate_samples(autodiff.rand(10, 1, 28, 28), "digits")
    bad = val.copy()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite"):
        evaluate_samples(bad, "digits")
    with pytest.raises(ValueError, match="fid_method"):
        evaluate_samples(val, "digits", fid_method="sqrt")
    assert parse_metric_names(["fid,kid", "is"], SAMPLE_METRICS) == ["fid", "kid", "is"]


def test_format_report_names_extractor_counts_and_conventions(val):
    text = format_report(evaluate_samples(val[:120], "digits", metrics="fid,kid,pr"))
    assert "120 samples vs 300 real examples of digits (test split)" in text
    assert "digits-classifier (128-d)" in text
    assert "fid" in text and "kid" in text and "precision" in text and "recall" in text
    assert "100 subsets of 120" in text and "k = 3" in text


# --------------------------------------------------------------------------- bits per dim
class _Uniform:
    """p_X(x) = 1 on [0, 1]^D: on dequantized L-level data exactly log2(L) bits per dim."""
    family = "uniform"

    def log_prob(self, x):
        return autodiff.zeros(x.shape[0])


class _StdNormal:
    family = "normal"

    def log_prob(self, x):
        return -0.5 * (x ** 2).sum(dim=1) - x.shape[1] * 0.5 * math.log(2 * math.pi)


def test_bpd_uniform_density_is_log2_levels():
    # the +log2(L) offset of the change of variables (dropping it gives 0)
    data = load_dataset("digits", split="val")
    bpd, text = model_bits_per_dim(_Uniform(), data, batch_size=77)
    assert bpd == pytest.approx(math.log2(17), rel=1e-12)
    assert "dequantization" in text and "17" in text


def test_bpd_of_points_is_the_continuous_density():
    data = load_dataset("ring8", split="val", n=500)
    bpd, text = model_bits_per_dim(_StdNormal(), data, batch_size=128)
    x = data.x
    want = float((0.5 * (x ** 2).sum(axis=1) + math.log(2 * math.pi)).mean()) / (2 * math.log(2))
    assert bpd == pytest.approx(want, rel=1e-12) and "no dequantization" in text


def test_bpd_from_a_family_method_or_its_evaluate():
    data = load_dataset("digits", split="val")

    class PerBatchMean:
        bpd_convention = "discrete, exact"

        def bits_per_dim(self, x):
            return autodiff.tensor(float(x.shape[0]))   # a per-batch mean: weighted by size
    bpd, text = model_bits_per_dim(PerBatchMean(), data, batch_size=200)
    assert bpd == pytest.approx((200 * 200 + 100 * 100) / 300) and text == "discrete, exact"
    assert model_bits_per_dim(object(), data, family_results={"bpd": 1.5})[0] == 1.5
    with pytest.raises(ValueError, match="bits_per_dim.*log_prob"):
        model_bits_per_dim(object(), data)
