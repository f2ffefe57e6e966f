"""Feature extractors: shapes, dtypes, batching, the shipped digits classifier's features,
and one clear error for each wrong input or missing weights file."""
# host-side: the extractors return host NumPy arrays; the tests compare them
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autodiff
from refgen.backbones.classifier import DigitClassifier
from refgen.metrics.pretrained import load_pretrained, save_weights
from refgen.data import load_dataset
from refgen.metrics import FIDInceptionV3
from refgen.metrics.extractors import (EXTRACTORS, MNIST_CLASSIFIER_FILE, ClassifierExtractor,
                                       InceptionExtractor, MNISTClassifierNotFoundError,
                                       get_extractor)


@pytest.fixture(scope="module")
def digits_test():
    autodiff.set_default_dtype("float64")
    data = load_dataset("digits", split="test")
    return data.x, data.y


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    """REFGEN_DATA and the cache dir point at empty folders."""
    monkeypatch.setenv("REFGEN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_digits_classifier_features_and_probs(digits_test):
    x, y = digits_test
    ext = get_extractor("digits-classifier")
    assert ext.name == "digits-classifier" and ext.num_classes == 10
    f, p = ext.features(x), ext.probs(x)
    assert isinstance(f, np.ndarray) and f.dtype == np.float64 and f.shape == (300, 128)
    assert p.dtype == np.float64 and p.shape == (300, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-6)  # float32 weights
    # the shipped network's penultimate layer and its softmax, nothing else (to rounding:
    # batches of 256 and one of 300 sum in different orders)
    net = load_pretrained("digits")
    with autodiff.no_grad():
        t = autodiff.tensor(x.astype(net.fc.weight.dtype))
        np.testing.assert_allclose(f, net.features(t).numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(p, net.probs(t).numpy(), rtol=1e-12, atol=1e-12)
    assert (p.argmax(axis=1) == autodiff.backend.to_numpy(y)).mean() >= 0.97


@given(batch_size=st.integers(1, 40))
def test_batching_does_not_change_the_features(batch_size):
    # a wrong batch boundary (drop or repeat rows) changes the rows or their count
    x = load_dataset("digits", split="val").x[:37]
    whole = get_extractor("digits-classifier", batch_size=1000)
    parts = get_extractor("digits-classifier", batch_size=batch_size)
    np.testing.assert_allclose(parts.features(x), whole.features(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(parts.probs(x), whole.probs(x), rtol=1e-12, atol=1e-12)


def test_features_accept_numpy_backend_and_tensor(digits_test):
    x, _ = digits_test
    ext = get_extractor("digits-classifier")
    ref = ext.features(x[:5])
    np.testing.assert_array_equal(ext.features(autodiff.tensor(x[:5])), ref)
    np.testing.assert_array_equal(ext.features(autodiff.backend.to_numpy(x[:5])), ref)


def test_features_do_not_record_a_graph(digits_test):
    x, _ = digits_test
    ext = get_extractor("digits-classifier")
    xt = autodiff.tensor(x[:4], requires_grad=True)
    ext.features(xt)
    assert xt.grad is None and not ext.net.training


def test_digits_extractor_on_mnist_sized_images_names_both_shapes():
    ext = get_extractor("digits-classifier")
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\).*\(5, 1, 28, 28\)"):
        ext.features(autodiff.rand(5, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\).*\(5, 8, 8\)"):
        ext.probs(autodiff.rand(5, 8, 8))
    with pytest.raises(ValueError, match="N >= 1"):
        ext.features(autodiff.rand(0, 1, 8, 8))


@pytest.mark.parametrize("scale, shown", [(255.0, "255"), (-1.0, "-1")])
def test_values_outside_unit_range_are_refused(scale, shown):
    x = load_dataset("digits", split="val").x[:8]
    x = x * 255.0 if scale == 255.0 else 2 * x - 1
    with pytest.raises(ValueError, match=r"\[0, 1\].*" + shown):
        get_extractor("digits-classifier").features(x)


def test_pixels_flatten_any_shape():
    ext = get_extractor("pixels")
    x = autodiff.rand(6, 1, 8, 8)
    np.testing.assert_array_equal(ext.features(x), x.numpy().reshape(6, 64))
    pts = autodiff.randn(9, 2)
    assert ext.features(pts).shape == (9, 2) and ext.features(pts).dtype == np.float64
    assert ext.features(autodiff.randn(4)).shape == (4, 1)
    assert ext.probs(x) is None and ext.num_classes is None


def test_unknown_extractor_lists_known():
    with pytest.raises(ValueError, match="'clip'.*" + ", ".join(EXTRACTORS)):
        get_extractor("clip")
    with pytest.raises(ValueError, match="batch_size"):
        get_extractor("pixels", batch_size=0)


def test_missing_mnist_classifier_says_how_to_make_it(no_weights_anywhere):
    with pytest.raises(MNISTClassifierNotFoundError) as info:
        get_extractor("mnist-classifier")
    text = str(info.value)
    assert "refgen train classifier --data mnist" in text
    assert str(no_weights_anywhere / "data" / MNIST_CLASSIFIER_FILE) in text
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        get_extractor("mnist-classifier", weights=no_weights_anywhere / "nowhere.npz")


def test_mnist_classifier_found_in_refgen_data(no_weights_anywhere):
    folder = no_weights_anywhere / "data"
    folder.mkdir()
    net = DigitClassifier(image_size=28, channels=[4, 4, 8], hidden=16)
    save_weights(net, str(folder / MNIST_CLASSIFIER_FILE))
    ext = get_extractor("mnist-classifier")
    assert isinstance(ext, ClassifierExtractor) and ext.name == "mnist-classifier"
    x = autodiff.rand(3, 1, 28, 28)
    assert ext.features(x).shape == (3, 16) and ext.probs(x).shape == (3, 10)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\).*\(3, 1, 8, 8\)"):
        ext.features(autodiff.rand(3, 1, 8, 8))


def test_mnist_classifier_of_the_wrong_size_is_refused(tmp_path):
    path = tmp_path / "clf8.npz"
    save_weights(DigitClassifier(image_size=8, channels=[4, 8], hidden=8), str(path))
    with pytest.raises(ValueError, match="not MNIST's 1x28x28"):
        get_extractor("mnist-classifier", weights=path)


def test_missing_inception_weights_say_how_to_get_them(no_weights_anywhere):
    with pytest.raises(FileNotFoundError, match="refgen data download inception"):
        get_extractor("inception")


def test_inception_extractor_shapes_with_random_weights():
    # random weights, no resize (75x75 is the smallest input): shapes and probabilities only
    ext = InceptionExtractor(FIDInceptionV3(resize_input=False))
    x = autodiff.rand(2, 1, 75, 75)
    f, p = ext.features(x), ext.probs(x)
    assert f.shape == (2, 2048) and f.dtype == np.float64
    assert p.shape == (2, 1008)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"\(2, 2, 75, 75\)"):
        ext.features(autodiff.rand(2, 2, 75, 75))
