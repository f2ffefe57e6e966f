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
    module = families.get_family(name)
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
