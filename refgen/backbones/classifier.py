"""A small convolutional digit classifier: the first model trained through ``refgen.train``,
and the feature extractor the sample-quality metrics use on digits and MNIST.

Architecture (LeCun et al. 1998 in spirit; global average pooling as Lin et al. 2014,
"Network in Network", section 3.2)::

    x (N, C, H, W) in [0, 1]
      -> conv3x3(C -> c0), ReLU                      stride 1, keeps H x W
      -> conv3x3(c_{i-1} -> c_i, stride 2), ReLU     ``downsamples`` times: H -> ceil(H / 2)
      -> conv3x3(c_{i-1} -> c_i), ReLU               the remaining channels, stride 1
      -> pool: "mean" over H, W (N, c_last), or "flatten" (N, c_last * h * w)
      -> linear(-> hidden), ReLU                     = features(x), (N, hidden)
      -> linear(hidden -> num_classes)               = logits(x), (N, num_classes)

    p_theta(y | x) = softmax(logits(x))_y, trained by minimising the cross-entropy
    -log p_theta(y | x) averaged over the batch.

The default sizes follow the image size (``default_architecture``): 8x8 digits get channels
(16, 32, 64), one downsampling and mean pooling (33k parameters, 136 KB in float32, so the
trained weights ship in ``refgen/weights/``); 28x28 MNIST gets (16, 32, 64), two
downsamplings (28 -> 14 -> 7) and flattening (426k parameters): on MNIST, mean pooling
after so few layers stayed below 96% test accuracy in 1500 steps, flattening keeps where
the strokes are.

The trained weights and their use as the metrics' feature extractor are in
``refgen.metrics.pretrained`` (``load_pretrained("digits")`` returns the shipped network in
eval mode); the training is the ``classifier`` family (``refgen.families.classifier``).
"""
import autodiff.functional as F
from autodiff import nn

POOLING = ("mean", "flatten")

__all__ = ["DigitClassifier", "POOLING", "default_architecture"]


def default_architecture(image_size):
    """Channels and number of stride-2 convolutions for square images of side ``image_size``.

    Downsample while the side is above 7 (8 -> 4; 28 -> 14 -> 7; 32 -> 16 -> 8 -> 4), so the
    last feature map is at most 7x7 and each unit sees most of the digit.
    """
    if int(image_size) < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    downsamples, side = 0, int(image_size)
    while side > 7:
        side = (side + 1) // 2
        downsamples += 1
    if image_size <= 8:
        return {"channels": [16, 32, 64], "downsamples": downsamples, "pool": "mean"}
    return {"channels": [16] + [32] * (downsamples - 1) + [64], "downsamples": downsamples,
            "pool": "flatten"}


class DigitClassifier(nn.Module):
    """CNN classifier p_theta(y | x) for small greyscale (or colour) images.

    :param in_channels: C of the input images (N, C, H, W)
    :param image_size: H = W of the inputs (only used to choose default sizes)
    :param num_classes: number of classes K
    :param channels: conv widths; the first conv has stride 1, the next ``downsamples``
        have stride 2, the rest stride 1
    :param downsamples: number of stride-2 convolutions
    :param hidden: width of the penultimate (feature) layer
    """

    def __init__(self, in_channels=1, image_size=8, num_classes=10, channels=None,
                 downsamples=None, hidden=128, pool=None):
        super().__init__()
        arch = default_architecture(image_size)
        channels = list(arch["channels"] if channels is None else channels)
        downsamples = arch["downsamples"] if downsamples is None else int(downsamples)
        pool = arch["pool"] if pool is None else pool
        if pool not in POOLING:
            raise ValueError(f"DigitClassifier: unknown pool {pool!r}; known: "
                             f"{', '.join(POOLING)}")
        if not channels:
            raise ValueError("DigitClassifier: channels must name at least one conv width")
        if not 0 <= downsamples <= len(channels) - 1:
            raise ValueError(f"DigitClassifier: downsamples={downsamples} needs at least "
                             f"{downsamples + 1} conv layers, got channels={channels}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.hidden = int(hidden)
        layers, c_in = [], self.in_channels
        for i, c in enumerate(channels):
            stride = 2 if 1 <= i <= downsamples else 1
            layers += [nn.Conv2d(c_in, int(c), 3, stride=stride, padding=1), nn.ReLU()]
            c_in = int(c)
        self.body = nn.Sequential(*layers)
        self.pool = pool
        side = int(image_size)
        for _ in range(downsamples):
            side = (side + 1) // 2
        self.fc = nn.Linear(c_in if pool == "mean" else c_in * side * side, self.hidden)
        self.head = nn.Linear(self.hidden, self.num_classes)
        self.config = {"in_channels": self.in_channels, "image_size": int(image_size),
                       "num_classes": self.num_classes, "channels": [int(c) for c in channels],
                       "downsamples": downsamples, "hidden": self.hidden, "pool": pool}

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"DigitClassifier expects images of shape (N, {self.in_channels}, "
                             f"H, W), got {tuple(x.shape)}")

    def features(self, x):
        """Penultimate activations, (N, C, H, W) -> (N, hidden): the metrics' feature space."""
        self._check_input(x)
        h = self.body(x)                                  # (N, c_last, h, w)
        # "mean": global average pooling, (N, c_last); "flatten": (N, c_last * h * w)
        h = h.mean(dim=(2, 3)) if self.pool == "mean" else h.reshape(h.shape[0], -1)
        return F.relu(self.fc(h))

    def logits(self, x):
        """Unnormalised log-probabilities, (N, C, H, W) -> (N, num_classes)."""
        return self.head(self.features(x))

    def forward(self, x):
        return self.logits(x)

    def log_probs(self, x):
        """log p_theta(y | x) for every y, (N, num_classes), by a stable log-softmax."""
        return F.log_softmax(self.logits(x), dim=1)

    def probs(self, x):
        """p_theta(y | x) for every y, (N, num_classes); rows sum to 1."""
        return F.softmax(self.logits(x), dim=1)
