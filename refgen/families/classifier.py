"""Family ``classifier``: the CNN digit classifier p_theta(y | x) as a ``Trainable``.

Not a generative model: it is the first model trained through ``refgen.train.fit`` (so the
loop, checkpoints and command work before any generative family exists), and its trained
features serve the sample-quality metrics (``refgen.metrics.pretrained``; the network is
``refgen.backbones.classifier``).

Loss: the mean cross-entropy  L = -(1/N) sum_n log softmax(logits(x_n))_{y_n}  in nats.
Evaluation: accuracy and the same NLL on a held-out split.

``refgen train classifier --data digits`` trains it; ``refgen eval --checkpoint ...`` reports
test accuracy and NLL; it has no ``sample`` (the command says so).
"""
import autodiff
import autodiff.functional as F

from ..backbones.classifier import DigitClassifier

__all__ = ["ClassifierModel", "default_config", "build", "train_defaults"]

kind = None  # not a generative model: refgen train --help lists it apart

_ARCH_KEYS = ("in_channels", "image_size", "num_classes", "channels", "downsamples", "hidden",
              "pool")


def _image_shape(data_info):
    info = dict(data_info or {})
    shape = tuple(info.get("shape", ()))
    if info.get("kind") != "image" or len(shape) != 3:
        raise ValueError(
            f"the classifier family needs labelled image data with examples of shape (C, H, W); "
            f"data set {info.get('name', '?')!r} is of kind {info.get('kind')!r} with shape "
            f"{shape}")
    if not info.get("num_classes"):
        raise ValueError(f"the classifier family needs labelled data; data set "
                         f"{info.get('name', '?')!r} has no num_classes")
    return shape


def default_config(data_info):
    """Architecture for the data set: (C, H, W) and the class count from ``data_info``."""
    c, h, w = _image_shape(data_info)
    probe = DigitClassifier(in_channels=c, image_size=max(h, w),
                            num_classes=int(data_info["num_classes"]))
    return dict(probe.config)


def train_defaults(data_info):
    """TrainConfig options that train it to the targets (>= 97% digits, >= 99% MNIST).

    8x8 digits: 2000 Adam steps of 64 (about 90 epochs of 1437 images, a minute on 2 CPU
    cores); 28x28: 4000 steps of 128 (about 10 epochs of MNIST's 50,000 training images). Cosine decay to 0.
    """
    _, h, _ = _image_shape(data_info)
    if h <= 8:
        return {"steps": 2000, "batch_size": 64, "lr": 3e-3, "lr_schedule": "cosine",
                "log_every": 50, "eval_every": 500, "checkpoint_every": 500}
    return {"steps": 4000, "batch_size": 128, "lr": 2e-3, "lr_schedule": "cosine",
            "log_every": 50, "eval_every": 1000, "checkpoint_every": 500}


class ClassifierModel:
    """The ``Trainable`` wrapping one ``DigitClassifier`` (player ``"model"``)."""

    family = "classifier"  # the name checkpoints record (refgen.train.checkpoint.family_name)

    def __init__(self, config):
        missing = [k for k in _ARCH_KEYS if k not in config]
        if missing:
            raise ValueError(f"classifier config lacks {', '.join(missing)}; got keys "
                             f"{', '.join(sorted(config))}")
        self.config = dict(config)
        self.net = DigitClassifier(**{k: config[k] for k in _ARCH_KEYS})

    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    def training_step(self, batch, step, ctx):
        x, y = batch
        if y is None:
            raise ValueError("the classifier family needs labels, but the data set has none")
        logits = self.net(x)                      # (N, K)
        loss = F.cross_entropy(logits, y)         # mean -log p_theta(y | x), nats
        ctx.optimize("model", loss)
        y_arr = y.data if isinstance(y, autodiff.Tensor) else y
        accuracy = float((logits.data.argmax(axis=1) == y_arr).mean())
        return {"loss": float(loss.item()), "accuracy": accuracy}

    def evaluate(self, dataset, ctx=None, batch_size=1000):
        """Accuracy and mean NLL -log p_theta(y | x) (nats) over the whole ``dataset``."""
        if dataset.y is None:
            raise ValueError(f"cannot evaluate the classifier on {dataset.name!r}: no labels")
        was_training = self.net.training
        self.net.eval()
        correct, nll_sum, n = 0, 0.0, len(dataset)
        dtype = self.net.head.weight.dtype
        with autodiff.no_grad():
            for start in range(0, n, batch_size):
                x = autodiff.Tensor(dataset.x[start:start + batch_size].astype(dtype))
                y = dataset.y[start:start + batch_size]
                logits = self.net(x)
                nll = F.cross_entropy(logits, autodiff.Tensor(y), reduction="sum")
                nll_sum += float(nll.item())
                correct += int((logits.data.argmax(axis=1) == y).sum())
        self.net.train(was_training)
        return {"accuracy": correct / n, "nll": nll_sum / n}


def build(config, data_info=None):
    """A ``ClassifierModel`` from its config (``data_info`` is not needed once configured)."""
    return ClassifierModel(config)
