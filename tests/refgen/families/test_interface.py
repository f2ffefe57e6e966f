"""Conformance: every registered generative family honours the interface of
``refgen.families.base`` the same way, from training through ``refgen.load``.

Each family module gives ``smoke_config(data_info)`` (a tiny model) and ``SMOKE_DATA`` (the
data sets to run it on). For each pair the test trains a few steps with the one loop,
reloads the checkpoint with ``refgen.load`` (as ``refgen sample``/``eval`` do) and checks
what every family promises: its kind, samples of the data's shape that are finite and
reproducible from a seed, a likelihood of the kind it declares (finite, per example, with
bits/dim and a convention), and its sampling cost.
"""
import math

import numpy as np  # host-side: comparisons
import pytest

import autodiff
import refgen
from autodiff import backend as B
from refgen import families
from refgen.data import ArrayDataset, load_dataset, toy
from refgen.families.base import KINDS, LIKELIHOOD_KINDS, GenerativeModel, data_info_for_config
from refgen.train import TrainConfig, fit

GENERATIVE = [name for name in families.list_families()
              if getattr(families.FAMILIES[name], "kind", None) is not None]
CASES = [(name, data) for name in GENERATIVE
         for data in getattr(families.FAMILIES[name], "SMOKE_DATA", ["(missing)"])]


def test_every_generative_family_declares_its_kind_and_smoke_test():
    for name in GENERATIVE:
        module = families.FAMILIES[name]
        assert module.kind in KINDS, name
        for attr in ("default_config", "build", "smoke_config", "SMOKE_DATA"):
            assert hasattr(module, attr), f"family {name!r} lacks {attr}"
        assert module.SMOKE_DATA, f"family {name!r} names no smoke data"


def test_train_help_lists_models_by_kind(capsys):
    from refgen.cli import main
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "not generative: classifier" in text
    for kind, names in families.families_by_kind().items():
        if kind is not None:
            assert f"{kind}: {', '.join(names)}" in text


def _small(name, split, n=256):
    """A split of ``name``, at most ``n`` examples (toy densities draw only that many)."""
    if toy.parse_name(name)[0] in toy.DENSITIES:
        return load_dataset(name, split=split, n=n)
    d = load_dataset(name, split=split)
    y = None if d.y is None else d.y[:n]
    return ArrayDataset(d.x[:n], y, name=d.name, info=d.info)


@pytest.mark.parametrize("name,data_name", CASES)
def test_family_conforms(name, data_name, tmp_path):
    _conforms(families.get_family(name), name, data_name, tmp_path)


def _conforms(module, name, data_name, tmp_path):
    train, val = _small(data_name, "train"), _small(data_name, "val", n=8)
    info = dict(train.info)
    config = dict(module.smoke_config(info))
    config.update(data=data_name, dtype="float64", data_info=data_info_for_config(info))
    model = module.build(config, info)
    assert isinstance(model, GenerativeModel), f"{name}: build() must give a GenerativeModel"
    assert model.family in (None, name)
    options = dict(module.train_defaults(info)) if hasattr(module, "train_defaults") else {}
    options.update(steps=3, batch_size=16, log_every=1, checkpoint_every=3, eval_every=None,
                   out_dir=str(tmp_path), warmup_steps=0, lr_schedule="constant")
    options.pop("minutes", None)
    model.family = name
    result = fit(model, train, TrainConfig(**options), eval_data=None, progress=False)
    assert result.step == 3

    loaded = refgen.load(result.checkpoint_path)
    assert type(loaded) is type(model) and loaded.family == name
    assert loaded.kind == module.kind and loaded.likelihood_kind in LIKELIHOOD_KINDS
    shape = tuple(int(s) for s in train.x.shape[1:])
    assert loaded.example_shape == shape

    with autodiff.no_grad():
        a = loaded.sample(4, autodiff.Generator(5))
        b = loaded.sample(4, autodiff.Generator(5))
    assert isinstance(a, autodiff.Tensor) and tuple(a.shape) == (4, *shape), name
    assert a.dtype == np.float64
    a_host = B.to_numpy(a.data)
    assert np.isfinite(a_host).all(), f"{name}: non-finite samples"
    np.testing.assert_array_equal(a_host, B.to_numpy(b.data))   # same seed, same samples
    nfe = loaded.nfe_per_sample
    assert isinstance(nfe, int) and nfe >= 1, f"{name}: nfe_per_sample = {nfe!r}"

    if loaded.likelihood_kind == "none":
        assert loaded.bpd_convention is None
        return
    x = val.x[:5]
    with autodiff.no_grad():
        if loaded.discrete or loaded.levels is None:
            lp = loaded.log_prob(autodiff.Tensor(x))
        else:
            lp = loaded.log_prob(autodiff.Tensor(loaded.dequantize(x, autodiff.Generator(0))))
        bpd = loaded.bits_per_dim(x, generator=autodiff.Generator(0))
    lp_host = B.to_numpy(lp.data if isinstance(lp, autodiff.Tensor) else lp)
    assert lp_host.shape == (5,) and np.isfinite(lp_host).all(), f"{name}: log_prob {lp_host}"
    bpd = np.asarray(B.to_numpy(bpd))
    assert bpd.shape == (5,) and np.isfinite(bpd).all()
    assert isinstance(loaded.bpd_convention, str) and loaded.bpd_convention
    numbers = loaded.evaluate(val)
    assert "bpd" in numbers and math.isfinite(numbers["bpd"])


# --------------------------------------------------------------------------- the test's test
class _DiagonalGaussian(GenerativeModel):
    """p_theta(x) = N(x; mu, diag(exp(2 log_sigma))): the smallest exact-likelihood model."""

    kind, likelihood_kind = "flow", "exact"
    sample_options = ("temperature",)

    def __init__(self, config):
        super().__init__(config)
        from autodiff import nn
        d = math.prod(self.example_shape)
        self.net = nn.Module()
        self.net.mu = nn.Parameter(autodiff.zeros(d))
        self.net.log_sigma = nn.Parameter(autodiff.zeros(d))

    def _mu_log_sigma(self):
        return self.net.mu, self.net.log_sigma

    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    def training_step(self, batch, step, ctx):
        x, _ = batch
        loss = -self.log_prob(x).mean()
        ctx.optimize("model", loss)
        return {"loss": loss.item()}

    def log_prob(self, x, cond=None):
        mu, log_sigma = self._mu_log_sigma()
        z = (x.reshape(x.shape[0], -1) - mu) / log_sigma.exp()
        return (-0.5 * z * z - log_sigma - 0.5 * math.log(2 * math.pi)).sum(dim=1)

    def sample(self, n, generator=None, cond=None, **options):
        from refgen.families.base import check_sample_options
        check_sample_options("gaussian", options, self.sample_options)
        mu, log_sigma = self._mu_log_sigma()
        eps = autodiff.randn(n, mu.shape[0], generator=generator)
        t = 1.0 if options.get("temperature") is None else options["temperature"]
        return (mu + t * log_sigma.exp() * eps).detach().reshape(n, *self.example_shape)

    @property
    def nfe_per_sample(self):
        return 1


class _GaussianModule:
    kind = "flow"
    SMOKE_DATA = ["ring8:std=0.1"]
    model_class = _DiagonalGaussian

    @staticmethod
    def default_config(info):
        return {}

    smoke_config = default_config

    @classmethod
    def build(cls, config, info=None):
        return cls.model_class(config)


def test_the_conformance_check_passes_a_correct_family(tmp_path, monkeypatch):
    monkeypatch.setitem(families.FAMILIES, "gaussian", _GaussianModule)
    _conforms(_GaussianModule, "gaussian", "ring8:std=0.1", tmp_path)
    _conforms(_GaussianModule, "gaussian", "digits", tmp_path / "digits")


@pytest.mark.parametrize("flaw", ["sample_shape", "unseeded", "log_prob_shape", "nfe"])
def test_the_conformance_check_catches_a_broken_family(flaw, tmp_path, monkeypatch):
    class Broken(_DiagonalGaussian):
        def sample(self, n, generator=None, cond=None, **options):
            x = super().sample(n, None if flaw == "unseeded" else generator, cond, **options)
            return x.reshape(n, -1)[:, :1] if flaw == "sample_shape" else x

        def log_prob(self, x, cond=None):
            lp = super().log_prob(x, cond)
            return lp.sum() if flaw == "log_prob_shape" and not autodiff.is_grad_enabled() \
                else lp

        @property
        def nfe_per_sample(self):
            return 0 if flaw == "nfe" else 1

    class BrokenModule(_GaussianModule):
        model_class = Broken

    monkeypatch.setitem(families.FAMILIES, "broken", BrokenModule)
    with pytest.raises(AssertionError):
        _conforms(BrokenModule, "broken", "ring8:std=0.1", tmp_path)


def test_the_command_drives_a_family_end_to_end(tmp_path, monkeypatch, capsys):
    from refgen.cli import main
    monkeypatch.setitem(families.FAMILIES, "gaussian", _GaussianModule)
    run = tmp_path / "run"
    assert main(["train", "gaussian", "--data", "ring8:std=0.1", "--minutes", "1e-9",
                 "--set", 'note="a string"', "--set", "width=3", "--out", str(run),
                 "--quiet", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert "to step 1 " in out and "stopped by --minutes" in out
    model = refgen.load(run / "checkpoint.npz")
    assert model.config["note"] == "a string" and model.config["width"] == 3
    assert model.data_info["name"] == "ring8:std=0.1" and model.example_shape == (2,)
    # --temperature reaches sample(): at temperature 0 every sample is the mean
    assert main(["sample", "--checkpoint", str(run / "checkpoint.npz"), "--n", "6",
                 "--temperature", "0", "--out", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (6, 2) and np.all(x == x[0])
    # an option the family does not have is refused by name, in one line
    assert main(["sample", "--checkpoint", str(run / "checkpoint.npz"), "--n", "2",
                 "--guidance", "3", "--out", str(tmp_path / "t.npy")]) == 1
    assert "unknown option(s) guidance" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(run / "checkpoint.npz"), "--metrics", "bpd"]) == 0
    assert "density of continuous data" in capsys.readouterr().out
    assert main(["train", "gaussian", "--data", "ring8", "--set", "oops",
                 "--out", str(tmp_path / "x")]) == 1
    assert "--set 'oops': expected KEY=VALUE" in capsys.readouterr().err
