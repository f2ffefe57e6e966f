"""``refgen eval`` with sample metrics: saved arrays, PNG folders, a generative checkpoint,
bits per dimension; ``refgen data download inception`` offline; one-line errors."""
import json
import urllib.error

# host-side: the tests write sample files and read them back
import numpy as np
import pytest

import autodiff
from refgen.cli import main
from refgen.data import load_dataset


def _error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def digits_npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, autodiff.backend.to_numpy(load_dataset("digits", split="val").x))
    return path


def test_samples_npy_prints_numbers_and_extractor(capsys, digits_npy):
    assert main(["eval", "--samples", str(digits_npy), "--data", "digits",
                 "--metrics", "fid,is,pr"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "digits-classifier" in out and "300 samples vs 300 real" in out
    for name in ("fid", "is", "precision", "recall"):
        assert f"  {name} " in out
    assert "kid" not in out and "density" not in out


def test_samples_json_carries_the_report(capsys, digits_npy):
    assert main(["eval", "--samples", str(digits_npy), "--data", "digits", "--split", "val",
                 "--metrics", "fid", "pr", "--json", "--n", "200"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["extractor"] == "digits-classifier" and r["n_fake"] == r["n_real"] == 200
    assert r["data"] == "digits" and r["split"] == "val" and r["metrics"] == ["fid", "pr"]
    assert r["fid"] >= 0   # 200 of the split against a seeded 200 of it: close, not equal
    assert r["conventions"]["pr"]["k"] == 3


def test_samples_of_8x8_arrays_without_channel_axis(capsys, tmp_path):
    x = autodiff.backend.to_numpy(load_dataset("digits", split="val").x)[:, 0]   # (300, 8, 8)
    np.save(tmp_path / "x.npy", x)
    assert main(["eval", "--samples", str(tmp_path / "x.npy"), "--data", "digits",
                 "--metrics", "fid", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_fake"] == 300


def test_png_folder(capsys, tmp_path):
    import matplotlib.image as mpimg  # host-side: writing PNG files
    x = autodiff.backend.to_numpy(load_dataset("digits", split="val").x)[:40]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(x):
        mpimg.imsave(folder / f"{i:03d}.png", img[0], cmap="gray", vmin=0.0, vmax=1.0)
    (folder / "notes.txt").write_text("not an image")
    assert main(["eval", "--samples", str(folder), "--data", "digits", "--metrics", "fid,pr",
                 "--extractor", "pixels", "--json"]) == 0, capsys.readouterr().err
    r = json.loads(capsys.readouterr().out)
    assert r["n_fake"] == 40 and r["extractor"] == "pixels" and r["fid"] > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--samples", str(empty), "--data", "digits"]) == 1
    assert "no .png" in _error_line(capsys)


def test_sample_errors_are_one_line(capsys, digits_npy, tmp_path):
    assert main(["eval", "--samples", str(digits_npy), "--data", "digits",
                 "--metrics", "fid,fdi"]) == 1
    line = _error_line(capsys)
    assert "'fdi'" in line and "fid, kid, is, pr, dc" in line
    assert main(["eval", "--samples", str(digits_npy)]) == 1
    assert "--data" in _error_line(capsys)
    assert main(["eval", "--data", "digits"]) == 1
    assert "--checkpoint" in _error_line(capsys)
    assert main(["eval", "--samples", str(digits_npy), "--data", "ring8"]) == 1
    assert "(1, 8, 8)" in _error_line(capsys)
    np.save(tmp_path / "u8.npy", np.zeros((4, 1, 8, 8), dtype=np.uint8))
    assert main(["eval", "--samples", str(tmp_path / "u8.npy"), "--data", "digits"]) == 1
    assert "uint8" in _error_line(capsys)
    assert main(["eval", "--samples", str(tmp_path / "missing.npy"), "--data", "digits"]) == 1
    assert "missing.npy" in _error_line(capsys)


def test_missing_mnist_names_the_data_dir_option(capsys, digits_npy, tmp_path, monkeypatch):
    monkeypatch.delenv("REFGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["eval", "--samples", str(digits_npy), "--data", "mnist"]) == 1
    line = _error_line(capsys)
    assert "--data-dir DIR" in line and "REFGEN_DATA" in line


def test_download_inception_offline_is_one_line(capsys, tmp_path, monkeypatch):
    from refgen.metrics import inception_weights

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")
    monkeypatch.setattr(inception_weights.urllib.request, "urlopen", offline)
    assert main(["data", "download", "inception", "--data-dir", str(tmp_path)]) == 1
    line = _error_line(capsys)
    assert "could not download the FID Inception weights" in line and str(tmp_path) in line
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- a checkpoint
class _BlurFamily:
    """A toy generative family on 8x8 images, registered only in the test:
    p_theta(x) = N(x; mu, 0.2^2 I) with mu the learned mean image, samples clipped to [0, 1]."""

    @staticmethod
    def default_config(info):
        return {"shape": list(info["shape"])}

    @staticmethod
    def build(config, info=None):
        import math

        from autodiff import nn

        class Model:
            family = "blur"

            def __init__(self):
                self.config = dict(config)
                self.dim = math.prod(config["shape"])
                self.net = nn.Linear(1, self.dim)     # mu = its bias (weight unused)

            def modules(self):
                return {"model": self.net}

            def parameter_groups(self):
                return {"model": list(self.net.parameters())}

            def training_step(self, batch, step, ctx):
                x, _ = batch
                loss = ((x.reshape(x.shape[0], -1) - self.net.bias) ** 2).sum(dim=1).mean()
                ctx.optimize("model", loss)
                return {"loss": loss.item()}

            def sample(self, n, generator):
                eps = autodiff.randn(n, self.dim, generator=generator)
                x = (self.net.bias.detach() + 0.2 * eps).clamp(0.0, 1.0)
                return x.reshape(n, *self.config["shape"])

            def log_prob(self, x):
                d = x.reshape(x.shape[0], -1) - self.net.bias
                return (-0.5 * (d / 0.2) ** 2).sum(dim=1) - self.dim * math.log(
                    0.2 * math.sqrt(2 * math.pi))

        return Model()


@pytest.fixture
def blur_checkpoint(tmp_path, monkeypatch, capsys):
    from refgen import families
    monkeypatch.setitem(families.FAMILIES, "blur", _BlurFamily)
    run = tmp_path / "run"
    assert main(["train", "blur", "--data", "digits", "--steps", "20", "--lr", "0.1",
                 "--out", str(run), "--quiet", "--eval-split", "none",
                 "--dtype", "float64"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return str(run / "checkpoint.npz")


def test_checkpoint_fid_and_bpd(capsys, blur_checkpoint):
    assert main(["eval", "--checkpoint", blur_checkpoint, "--metrics", "fid,bpd", "--n", "200",
                 "--json"]) == 0, capsys.readouterr().err
    r = json.loads(capsys.readouterr().out)
    assert r["family"] == "blur" and r["data"] == "digits" and r["split"] == "test"
    assert r["extractor"] == "digits-classifier" and r["samples_drawn"] == 200
    assert r["n_fake"] == r["n_real"] == 200
    assert r["fid"] > 1.0                          # blurred means are not digits
    assert np.isfinite(r["bpd"]) and "dequantization" in r["bpd_convention"]

    # the same seed draws the same samples: the same FID; text output names the extractor
    assert main(["eval", "--checkpoint", blur_checkpoint, "--metrics", "fid", "--n", "200"]) == 0
    out = capsys.readouterr().out
    assert "digits-classifier" in out and "200 samples vs 200 real" in out
    assert f"{r['fid']:.6g}" in out


def test_checkpoint_metric_errors(capsys, blur_checkpoint):
    assert main(["eval", "--checkpoint", blur_checkpoint]) == 1
    line = _error_line(capsys)
    assert "no evaluation" in line and "--metrics fid,kid,is,pr,dc" in line
    assert main(["eval", "--checkpoint", blur_checkpoint, "--metrics", "fid,accuracy"]) == 1
    line = _error_line(capsys)
    assert "'accuracy'" in line and "known: fid, kid, is, pr, dc, bpd" in line
    assert main(["eval", "--checkpoint", blur_checkpoint, "--samples", "x.npy"]) == 1
    assert "either" in _error_line(capsys)
