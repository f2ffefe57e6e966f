"""The trained digit classifiers as feature extractors: the shipped 8x8 digits network and
files written by ``save_weights`` or by ``refgen train classifier``.

The network is ``refgen.backbones.classifier.DigitClassifier``; ``extractors`` wraps these
for FID/KID/IS/precision-recall on digits and MNIST.
"""
import json
import os

import autodiff
from refgen.backbones.classifier import DigitClassifier

__all__ = ["load_pretrained", "pretrained_names", "save_weights", "WEIGHTS_DIR"]

# refgen/weights: package data next to this package's parent
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
# name -> file in WEIGHTS_DIR; the file holds {"config": ..., "state_dict": ...}.
_PRETRAINED = {"digits": "classifier_digits.npz"}


def pretrained_names():
    """Names ``load_pretrained`` accepts."""
    return sorted(_PRETRAINED)


def load_pretrained(name="digits", path=None):
    """The shipped trained classifier ``name`` (eval mode, default dtype), or one from ``path``.

    ``path`` may be a weights file written by ``save_weights`` or a training checkpoint of
    the ``classifier`` family (``refgen train classifier ...``).
    """
    if path is None:
        if name not in _PRETRAINED:
            raise ValueError(f"no pretrained classifier {name!r}; known: "
                             f"{', '.join(pretrained_names())}")
        path = os.path.join(WEIGHTS_DIR, _PRETRAINED[name])
    if not os.path.exists(path):
        raise FileNotFoundError(f"classifier weights not found: {path}")
    blob = autodiff.load(path)
    if "state_dict" in blob:  # a weights file
        config, state = blob["config"], blob["state_dict"]
    elif "modules" in blob and "model" in blob.get("modules", {}):  # a training checkpoint
        config, state = blob["config"], blob["modules"]["model"]
    else:
        raise ValueError(f"{path} holds neither classifier weights nor a classifier "
                         "checkpoint (no 'state_dict' or 'modules/model' entry)")
    net = DigitClassifier(**{k: config[k] for k in ("in_channels", "image_size", "num_classes",
                                                    "channels", "downsamples", "hidden",
                                                    "pool")})
    net.load_state_dict(state)
    return net.eval()


def save_weights(net, path, metadata=None):
    """Write ``net``'s config and float32 parameters to ``path`` (atomic, via autodiff.save).

    float32 halves the file; the shipped digits file stays well under 200 KB.
    """
    state = {k: v.data.astype("float32") for k, v in net.state_dict().items()}
    blob = {"config": dict(net.config), "state_dict": state}
    if metadata:
        blob["metadata"] = json.dumps(metadata, sort_keys=True)
    autodiff.save(blob, path)
