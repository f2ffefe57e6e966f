"""``refgen experiment probe`` on its tiny budget, and the facts its parts rest on: nested,
class-balanced labelled subsets; the flow interpolation's ends are the inputs (a bijection);
the diffusion features are the activations UNet.forward computes in its middle block."""
import json
import os

import numpy as np  # host-side: index sets and reading back results
import pytest

import autodiff
from autodiff import backend as B
from refgen.data import load_dataset
from refgen.experiments import get_experiment
from refgen.experiments.common import ExperimentContext
from refgen.experiments.probe import (diffusion_features, flow_interpolation,
                                      labelled_subsets, dequantization_centre)
from refgen.families import get_family


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    module = get_experiment("probe")
    out = tmp_path_factory.mktemp("probe")
    previous = autodiff.get_default_dtype()
    autodiff.set_default_dtype("float32")   # the experiment trains as refgen does: float32
    try:
        ctx = ExperimentContext(name="probe", out=str(out), budget="tiny",
                                settings=dict(module.BUDGETS["tiny"]), seed=0,
                                figures=str(out / "figures"), progress=None)
        record = ctx.write_result(module.run(ctx))
    finally:
        autodiff.set_default_dtype(previous)
    return out, record


def test_tiny_run_reports_a_sane_table(tiny_result):
    out, r = tiny_result
    assert json.load(open(out / "result.json"))["accuracy"] == r["accuracy"]
    counts = r["labels_per_class"]
    assert set(r["accuracy"]) == {"pixels", "vae", "flow", "diffusion", "diffusion-init"}
    for rep, row in r["accuracy"].items():
        for n in counts:
            cell = row[str(n)]
            assert len(cell["draws"]) == r["draws"]
            assert all(0.0 <= a <= 1.0 for a in cell["draws"])
            assert cell["mean"] == pytest.approx(np.mean(cell["draws"]))
    assert r["all_probes_converged"]
    # raw pixels of the 8x8 digits are nearly linearly separable: 10 labels a class give a
    # probe far above chance (0.1) even on this small test set
    assert r["accuracy"]["pixels"]["10"]["mean"] > 0.6
    tiny = get_experiment("probe").BUDGETS["tiny"]
    assert r["feature_dims"]["pixels"] == 64 and r["feature_dims"]["flow"] == 64
    assert r["feature_dims"]["vae"] == tiny["models"]["vae"]["settings"]["latent_dim"]
    for name in ("probe_accuracy.png", "interpolation_vae.png", "interpolation_flow.png"):
        assert os.path.getsize(out / "figures" / name) > 0


def test_labelled_subsets_are_nested_and_balanced():
    y = np.repeat(np.arange(4), 25)[np.random.default_rng(0).permutation(100)]
    subsets = labelled_subsets(y, [2, 10], draws=3, seed=7)
    for r in range(3):
        small, big = subsets[(2, r)], subsets[(10, r)]
        assert set(small) <= set(big)
        assert np.array_equal(np.bincount(y[small]), [2] * 4)
        assert np.array_equal(np.bincount(y[big]), [10] * 4)
    assert not np.array_equal(subsets[(10, 0)], subsets[(10, 1)])   # draws differ
    again = labelled_subsets(y, [2, 10], draws=3, seed=7)
    assert all(np.array_equal(again[k], v) for k, v in subsets.items())
    with pytest.raises(ValueError, match="fewer for classes"):
        labelled_subsets(y, [30], draws=1, seed=0)


def _digits_model(name, **extra):
    info = load_dataset("digits", split="test").info
    family = get_family(name)
    config = family.smoke_config(info)
    config.update(extra)
    return family.build(config, info), load_dataset("digits", split="test").x


def test_flow_interpolation_ends_at_the_inputs():
    model, x = _digits_model("realnvp")   # untrained: any bijection has the property
    rows = B.to_numpy(flow_interpolation(model, x[:3], x[3:6], steps=4))
    assert rows.shape == (3, 4, 1, 8, 8)
    np.testing.assert_allclose(rows[:, 0], B.to_numpy(dequantization_centre(model, x[:3])),
                               atol=1e-9)
    np.testing.assert_allclose(rows[:, -1], B.to_numpy(dequantization_centre(model, x[3:6])),
                               atol=1e-9)
    # the inside is not the pixel-space line
    pixel_mid = 0.5 * (rows[:, 0] + rows[:, -1])
    assert np.abs(rows[:, 1:3].mean(axis=1) - pixel_mid).max() > 1e-3


def test_diffusion_features_are_unet_middle_activations():
    model, x = _digits_model("ddpm", conditional=False)
    net = model.net
    # ADM zero-initialises each ResBlock's last conv, so at init the time embedding has no
    # effect; random weights everywhere make every input of the middle block matter
    gen = autodiff.Generator(5)
    for p in net.parameters():
        p.data[...] = 0.2 * gen.normal(p.shape, p.dtype)
    seen = []
    original = net.middle_block.forward

    def recording(h, emb):
        out = original(h, emb)
        seen.append(B.to_numpy(out.data).reshape(out.shape[0], -1))
        return out

    feats = B.to_numpy(diffusion_features(model, x[:5], 3, autodiff.Generator(11)))
    # the same x_t through the whole network
    x0 = model.to_model_space(autodiff.Tensor(x[:5]))
    eps = autodiff.randn(*x0.shape, generator=autodiff.Generator(11), dtype=x0.dtype)
    t = B.xp.full((5,), 3, dtype=B.numpy.int64)
    xt = model.schedule.q_sample(x0, t, eps)
    net.middle_block.forward = recording
    try:
        with autodiff.no_grad():
            net(xt, autodiff.Tensor(model.schedule.timesteps[t].astype(x0.dtype)))
    finally:
        del net.middle_block.forward
    np.testing.assert_allclose(feats, seen[0], rtol=1e-12, atol=1e-12)
    other_t = B.to_numpy(diffusion_features(model, x[:5], 15, autodiff.Generator(11)))
    assert np.abs(other_t - feats).max() > 1e-6        # the time step reaches the features
    with pytest.raises(ValueError, match="t_index"):
        diffusion_features(model, x[:5], model.schedule.num_timesteps, autodiff.Generator(0))
