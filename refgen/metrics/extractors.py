"""Feature extractors for the sample-quality metrics, including offline ones for small data.

FID, KID, precision/recall and density/coverage compare two sets of feature vectors; the
Inception Score needs class probabilities p(y|x). Which network makes them changes every
number, so each extractor has a ``name`` that the metric reports carry. The extractors:

* ``"digits-classifier"``: the shipped digit classifier (``refgen.metrics
  .pretrained.load_pretrained("digits")``) on 8x8 images (N, 1, 8, 8) in [0, 1]: features = its
  penultimate layer relu(fc(pool(body(x)))), (N, 128); probs = softmax(logits), (N, 10).
* ``"mnist-classifier"``: a ``DigitClassifier`` for 28x28 images (N, 1, 28, 28) in [0, 1],
  read from a weights file or a ``classifier`` training checkpoint (``refgen train
  classifier --data mnist``), given by path or found as ``classifier_mnist.npz`` in
  ``$REFGEN_DATA`` or the cache dir (:func:`find_mnist_classifier`); (N, hidden) features
  and (N, 10) probs as above.
* ``"inception"``: the FID Inception v3 (:func:`refgen.metrics.inception.load_fid_inception`):
  2048-d pool3 features; probs = softmax of the 1008 logits (fc bias included), the
  Inception Score's p(y|x). Needs the standard weights file.
* ``"pixels"``: the flattened input, (N, prod(shape)); no probs. Any input shape (points
  (N, 2) too). FID on pixels measures something else than FID on features: say so.

Numbers from the classifier extractors are on their own scale (an IS over 10 digit classes
is at most 10; FIDs are not comparable to Inception FIDs). Each extractor works in batches
(``batch_size``) under ``autodiff.no_grad`` with the network in eval mode, and returns
host NumPy float64 arrays, since the metrics accumulate in float64 (``refgen.metrics.fid``).

Inputs: NumPy or backend arrays or Tensors. The classifier extractors check the per-example
shape (an MNIST image given to the digits extractor names both shapes) and the value range:
values outside [-0.5, 1.5] are refused (8-bit images not divided by 255, or [-1, 1]
images).

One policy for inputs slightly outside [0, 1], for every network extractor (classifiers and
Inception alike): values in [-0.5, 1.5] are clipped to [0, 1] before the network sees them.
A sample a little outside the range (a Gaussian decoder's mean, a diffusion sampler's last
step) is then scored as the image it would be shown or saved as; a sample far outside is a
scale mistake and is refused. The pixel extractor takes values as they are.
"""
import os
from pathlib import Path

# host-side: the extractors' outputs are host float64 arrays for the float64 metric code
import numpy as np

import autodiff
import autodiff.functional as F

from ._arrays import backend_array, host_float64

__all__ = ["Extractor", "ClassifierExtractor", "InceptionExtractor", "PixelExtractor",
           "EXTRACTORS", "get_extractor", "find_mnist_classifier", "MNIST_CLASSIFIER_FILE",
           "MNISTClassifierNotFoundError"]

EXTRACTORS = ("digits-classifier", "mnist-classifier", "inception", "pixels")
MNIST_CLASSIFIER_FILE = "classifier_mnist.npz"
# values outside this interval mean the images are not in [0, 1] (0..255, or [-1, 1])
_RANGE = (-0.5, 1.5)


class MNISTClassifierNotFoundError(FileNotFoundError):
    """No MNIST classifier weights found; the message says how to make them."""


class Extractor:
    """Base: ``features(x)`` -> (N, D) host float64, ``probs(x)`` -> (N, C) or None.

    :param name: the name the metric reports carry.
    :param description: one line saying what the features are.
    :param batch_size: examples per forward pass.
    """

    input_shape = None   # per-example shape required, or None for any
    num_classes = None   # C of probs(), or None when the extractor has no probabilities

    def __init__(self, name, description, batch_size=256):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.name = name
        self.description = description
        self.batch_size = int(batch_size)

    def __repr__(self):
        return f"<extractor {self.name}: {self.description}>"

    def _check(self, x):
        a = backend_array(x)
        if a.ndim < 2 or a.shape[0] == 0:
            raise ValueError(f"extractor {self.name!r}: expected a batch of examples (N, ...) "
                             f"with N >= 1, got shape {tuple(a.shape)}")
        if self.input_shape is not None and tuple(a.shape[1:]) != tuple(self.input_shape):
            want = ", ".join(str(s) for s in ("N",) + tuple(self.input_shape))
            raise ValueError(f"extractor {self.name!r} takes images of shape ({want}), got "
                             f"{tuple(a.shape)}")
        return a

    def _batches(self, a):
        for start in range(0, int(a.shape[0]), self.batch_size):
            yield a[start:start + self.batch_size]

    def features(self, x):
        """Feature vectors of the examples ``x``: (N, ...) -> (N, D) host float64."""
        raise NotImplementedError

    def probs(self, x):
        """Class probabilities p(y|x), (N, C) host float64; None when there are none."""
        return None


class PixelExtractor(Extractor):
    """The flattened input as the feature vector, (N, ...) -> (N, prod(...)); no probs."""

    def __init__(self, batch_size=256):
        super().__init__("pixels", "the raw values, flattened", batch_size)

    def features(self, x):
        a = backend_array(x)
        a = self._check(a[:, None] if a.ndim == 1 else a)   # (N,) scalars: one feature each
        return host_float64(a.reshape(a.shape[0], -1))


class _NetworkExtractor(Extractor):
    """Batches through ``self._forward`` under no_grad, network in eval mode."""

    def __init__(self, name, description, net, batch_size=256):
        super().__init__(name, description, batch_size)
        self.net = net.eval()
        self.dtype = next(iter(net.parameters())).dtype   # the weights' dtype

    def _check_range(self, a):
        lo, hi = float(a.min()), float(a.max())
        if not (_RANGE[0] <= lo and hi <= _RANGE[1]):
            raise ValueError(
                f"extractor {self.name!r} takes images in [0, 1]; got values in [{lo:g}, "
                f"{hi:g}] (divide 8-bit images by 255; map [-1, 1] images by (x + 1) / 2)")

    def _run(self, x, which):
        a = self._check(x)
        self._check_range(a)
        a = autodiff.backend.xp.clip(a, 0.0, 1.0)   # the policy in the module docstring
        out = []
        with autodiff.no_grad():
            for part in self._batches(a):
                out.append(host_float64(which(autodiff.Tensor(part.astype(self.dtype))).data))
        return np.concatenate(out, axis=0)


class ClassifierExtractor(_NetworkExtractor):
    """A ``DigitClassifier``'s penultimate features (N, hidden) and softmax probs (N, K)."""

    def __init__(self, name, net, description=None, batch_size=256):
        side = int(net.config["image_size"])
        description = description or (f"penultimate layer ({net.hidden}-d) of a "
                                       f"{side}x{side} digit classifier")
        super().__init__(name, description, net, batch_size)
        self.input_shape = (int(net.in_channels), side, side)
        self.num_classes = int(net.num_classes)

    def features(self, x):
        return self._run(x, self.net.features)

    def probs(self, x):
        return self._run(x, self.net.probs)


class InceptionExtractor(_NetworkExtractor):
    """FID Inception v3: 2048-d pool3 features, softmax of the 1008 logits as probs.

    Any image size (resized to 299 bilinearly by the network), 1 or 3 channels, in [0, 1].
    """

    num_classes = 1008

    def __init__(self, net, batch_size=32):
        super().__init__("inception", "FID Inception v3 pool3 features (2048-d; pytorch-fid's "
                         "network and weights)", net, batch_size)

    def _check(self, x):
        a = super()._check(x)
        if a.ndim != 4 or a.shape[1] not in (1, 3):
            raise ValueError(f"extractor 'inception' takes images (N, 3, H, W) or grey "
                             f"(N, 1, H, W), got {tuple(a.shape)}")
        return a

    def features(self, x):
        return self._run(x, self.net.features)

    def probs(self, x):
        return self._run(x, lambda t: F.softmax(self.net.logits(t), dim=1))


def find_mnist_classifier(path=None):
    """The MNIST classifier file: ``path`` if given, else the first ``classifier_mnist.npz``
    in ``$REFGEN_DATA`` or the cache dir (``~/.cache/refgen``).

    The file may be a weights file (``refgen.metrics.pretrained.save_weights``) or a training
    checkpoint of the ``classifier`` family.

    :raises MNISTClassifierNotFoundError: nothing found; says how to make one.
    """
    from ..data.sources import search_dirs
    if path is not None:
        p = Path(path)
        if p.is_file():
            return p
        looked = [p / MNIST_CLASSIFIER_FILE] if p.is_dir() else [p]
    else:
        looked = [d / MNIST_CLASSIFIER_FILE for d in search_dirs()]
    for c in looked:
        if c.is_file():
            return c
    cache = search_dirs()[-1] / MNIST_CLASSIFIER_FILE
    raise MNISTClassifierNotFoundError(
        "MNIST classifier weights not found; looked in: " + ", ".join(map(str, looked))
        + ". Make them with `refgen train classifier --data mnist --out runs/clf-mnist` "
        f"(about 6 minutes on 2 CPU cores), then copy runs/clf-mnist/checkpoint.npz to {cache} "
        "(or a folder in REFGEN_DATA), or pass its path (--extractor-weights PATH)")


def _digits(weights, batch_size):
    from .pretrained import load_pretrained
    net = load_pretrained("digits", path=None if weights is None else os.fspath(weights))
    what = None if weights is not None else (
        f"penultimate layer ({net.hidden}-d) of refgen's shipped 8x8 digits classifier")
    return ClassifierExtractor("digits-classifier", net, what, batch_size)


def _mnist(weights, batch_size):
    from .pretrained import load_pretrained
    file = find_mnist_classifier(weights)
    net = load_pretrained(path=os.fspath(file))
    if (net.in_channels, net.config["image_size"]) != (1, 28):
        raise ValueError(f"{file}: a classifier for {net.in_channels}-channel "
                         f"{net.config['image_size']}x{net.config['image_size']} images, not "
                         "MNIST's 1x28x28")
    what = f"penultimate layer ({net.hidden}-d) of the 28x28 MNIST classifier {file}"
    return ClassifierExtractor("mnist-classifier", net, what, batch_size)


def _inception(weights, batch_size):
    from .inception import load_fid_inception
    return InceptionExtractor(load_fid_inception(weights), batch_size)


_FACTORIES = {"digits-classifier": _digits, "mnist-classifier": _mnist,
              "inception": _inception, "pixels": lambda weights, batch_size:
              PixelExtractor(batch_size)}


def get_extractor(name, weights=None, batch_size=None):
    """The extractor called ``name`` (one of :data:`EXTRACTORS`).

    :param weights: a weights file (or folder) for the network: the MNIST classifier's
        file, the FID Inception weights, or another digits classifier; None searches the
        default places.
    :param batch_size: examples per forward pass (default 256; 32 for Inception).
    :raises ValueError: unknown name (lists the known ones).
    :raises FileNotFoundError: the network's weights are missing (says how to get them).
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown extractor {name!r}; known: {', '.join(EXTRACTORS)}")
    if batch_size is None:
        batch_size = 32 if name == "inception" else 256
    return _FACTORIES[name](weights, batch_size)
