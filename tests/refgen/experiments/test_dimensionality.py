"""The dimensionality experiment: one metric for every method and data set, and the facts
the figure rests on (the uniform density's log2(L) bits/dim, Gibbs' inequality in 2-D);
the tiny run, with MNIST when the shared data are found."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import autodiff
from autodiff import backend as B
from refgen.cli import main
from refgen.data import load_dataset
from refgen.zoo.baselines import HistogramDensity

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def test_one_bin_histogram_is_the_uniform_density_at_log2_levels_bits_per_dim():
    """The figure's 'uniform' marker: a histogram with one cell per dimension is the uniform
    density on [0, 1]^64, whose dequantized bits/dim are log2(17) on every digit, exactly
    (the log2(L) offset of the convention is what makes it so)."""
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    h = HistogramDensity(train.info)
    h._fit_data(train.x.reshape(train.x.shape[0], -1).astype(B.xp.float64))
    h.choice = {"bins": 1, "alpha": 0.1}
    with autodiff.no_grad():
        bpd = B.to_numpy(B.xp.asarray(h.bits_per_dim(test.x[:50],
                                                     generator=autodiff.Generator(0))))
    np.testing.assert_allclose(bpd, math.log2(17), rtol=1e-12)


def _run_and_check(tmp_path, budget, with_mnist):
    out = tmp_path / "dim"
    args = ["experiment", "dimensionality", "--budget", budget, "--out", str(out), "--quiet",
            "--figures", str(tmp_path / "figures")]
    if with_mnist:
        args += ["--data-dir", str(SHARED)]
    assert main(args) == 0
    r = json.loads((out / "result.json").read_text())
    rows = r["rows"]
    expected = {("ring8:std=0.1", 2): {"histogram", "kde", "made", "realnvp", "vae"},
                ("digits", 64): {"histogram", "kde", "made", "vae"}}
    if with_mnist:
        expected[("mnist", 784)] = {"histogram", "kde", "made", "vae"}
    got = {}
    for row in rows:
        got.setdefault((row["data"], row["dims"]), set()).add(row["method"])
        assert math.isfinite(row["bpd"]) and row["bpd_stderr"] >= 0
        assert row["nats_per_dim"] == pytest.approx(row["bpd"] * math.log(2), rel=1e-12)
    assert got == expected
    for row in rows:
        if row["dims"] == 2 and row["likelihood_kind"] == "exact":
            # Gibbs: E_p[-log q] >= H(p), up to the Monte Carlo error of the test mean
            assert row["bpd"] >= row["entropy_bpd"] - 4 * row["bpd_stderr"]
        if row["dims"] > 2:
            assert row["bpd"] > 0
            if row["method"] == "histogram":   # it may choose one bin: the uniform density
                assert row["bpd"] <= row["uniform_bpd"] + 0.05
    assert (tmp_path / "figures" / "dimensionality.png").exists()
    return rows


def test_tiny_run(tmp_path):
    """Every method on 2-D and digits; 2-D: no exact method beats the truth's entropy by more
    than Monte Carlo error; images: the histogram is never much worse than the uniform
    density it can choose."""
    _run_and_check(tmp_path, "tiny", with_mnist=False)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason=f"MNIST not found at {SHARED}")
def test_tiny_run_with_mnist(tmp_path):
    """The same with MNIST: at D = 784 the classical estimators are more than a bit per
    dimension behind MADE and the VAE after three steps of training."""
    rows = _run_and_check(tmp_path, "tiny-mnist", with_mnist=True)
    by = {row["method"]: row["bpd"] for row in rows if row["dims"] == 784}
    assert min(by["histogram"], by["kde"]) > max(by["made"], by["vae"]) + 1.0
