"""refgen.backbones.classifier (the CNN), refgen.metrics.pretrained (its weights) and
refgen.families.classifier (its Trainable): shapes,
probabilities, the size rule, evaluation by batches, the shipped digits weights."""
import os

import numpy as np  # host-side: reference computations in tests
import pytest
from hypothesis import given, strategies as st

import autodiff
import autodiff.functional as F
from refgen import families
from refgen.backbones.classifier import DigitClassifier, default_architecture
from refgen.metrics.pretrained import WEIGHTS_DIR, load_pretrained, save_weights
from refgen.data.dataset import ArrayDataset


@given(image_size=st.integers(1, 64))
def test_default_architecture_ends_at_most_7x7(image_size):
    # the rule: halve (rounding up, as a 3x3 stride-2 conv with padding 1 does) while > 7
    net = DigitClassifier(image_size=image_size)
    with autodiff.no_grad():
        h = net.body(autodiff.zeros(1, 1, image_size, image_size))
    assert h.shape[2] == h.shape[3] <= 7
    assert h.shape[2] > 3 or image_size <= 7   # and no further than needed


@given(n=st.integers(1, 5), size=st.sampled_from([8, 12, 28]), hidden=st.integers(1, 20))
def test_shapes_and_probabilities(n, size, hidden):
    net = DigitClassifier(image_size=size, num_classes=7, hidden=hidden)
    x = autodiff.rand(n, 1, size, size)
    assert net.features(x).shape == (n, hidden)
    assert net.logits(x).shape == (n, 7)
    probs = net.probs(x).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(net.log_probs(x).numpy(), np.log(probs), rtol=1e-10, atol=1e-12)
    assert (net.features(x).numpy() >= 0).all()        # post-ReLU features


def test_bad_input_named():
    net = DigitClassifier(image_size=8)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\).*\(2, 3, 8, 8\)"):
        net(autodiff.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="downsamples=3"):
        DigitClassifier(channels=[8, 8], downsamples=3)


def test_save_and_load_weights_round_trip(tmp_path):
    net = DigitClassifier(image_size=8)
    path = tmp_path / "w.npz"
    save_weights(net, path, metadata={"note": "test"})
    back = load_pretrained(path=str(path))
    x = autodiff.rand(3, 1, 8, 8)
    # saved in float32: equal to float32 rounding of the weights
    np.testing.assert_allclose(back(x).numpy(), net(x).numpy(), rtol=1e-5, atol=1e-6)
    assert not back.training


def test_load_pretrained_errors(tmp_path):
    with pytest.raises(ValueError, match="known: digits"):
        load_pretrained("cifar")
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        load_pretrained(path=str(tmp_path / "nothere.npz"))
    autodiff.save({"x": 1}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="other.npz"):
        load_pretrained(path=str(tmp_path / "other.npz"))


DIGITS_INFO = {"kind": "image", "shape": (1, 8, 8), "num_classes": 10, "name": "digits"}


class _RecordingContext:
    def __init__(self):
        self.calls = []

    def optimize(self, player, loss):
        self.calls.append((player, loss))


def test_training_step_optimises_the_cross_entropy():
    family = families.get_family("classifier")
    model = family.build(family.default_config(DIGITS_INFO))
    x, y = autodiff.rand(6, 1, 8, 8), autodiff.tensor(np.arange(6) % 10)
    ctx = _RecordingContext()
    out = model.training_step((x, y), 0, ctx)
    assert [p for p, _ in ctx.calls] == ["model"]
    expected = F.cross_entropy(model.net(x), y).item()
    assert ctx.calls[0][1].item() == pytest.approx(expected, rel=1e-12)
    assert out["loss"] == pytest.approx(expected, rel=1e-12)
    assert set(model.modules()) == set(model.parameter_groups()) == {"model"}


def test_evaluate_in_batches_matches_one_pass():
    family = families.get_family("classifier")
    model = family.build(family.default_config(DIGITS_INFO))
    gen = autodiff.Generator(1)
    data = ArrayDataset(autodiff.rand(23, 1, 8, 8, generator=gen).data,
                        np.arange(23) % 10, name="random")
    with autodiff.no_grad():
        logits = model.net.eval()(autodiff.Tensor(data.x))
    nll = F.cross_entropy(logits, autodiff.Tensor(data.y)).item()
    acc = float((logits.numpy().argmax(axis=1) == np.arange(23) % 10).mean())
    got = model.evaluate(data, None, batch_size=5)   # 5 batches, the last one short
    assert got["accuracy"] == pytest.approx(acc, abs=1e-15)
    assert got["nll"] == pytest.approx(nll, rel=1e-12)


def test_family_errors():
    with pytest.raises(ValueError, match="known: classifier"):
        families.get_family("vea")
    family = families.get_family("classifier")
    with pytest.raises(ValueError, match="image data"):
        family.default_config({"kind": "points", "shape": (2,), "name": "ring8"})
    with pytest.raises(ValueError, match="lacks"):
        family.build({"in_channels": 1})


def test_shipped_weights_are_small():
    path = os.path.join(WEIGHTS_DIR, "classifier_digits.npz")
    assert os.path.getsize(path) < 200_000
    net = load_pretrained("digits")
    assert default_architecture(8)["channels"] == net.config["channels"]


def test_shipped_digits_classifier_reaches_97_percent():
    from refgen import data
    test = data.load_dataset("digits", split="test")
    net = load_pretrained("digits")
    with autodiff.no_grad():
        predicted = net(autodiff.Tensor(test.x)).numpy().argmax(axis=1)
    accuracy = float((predicted == autodiff.backend.to_numpy(test.y)).mean())
    assert accuracy >= 0.97, f"shipped digits classifier: test accuracy {accuracy:.4f} < 0.97"
