"""The FID Inception network: the 2015 TensorFlow Inception v3 as pytorch-fid defines it.

Szegedy et al. 2016 (Inception v3, "Rethinking the Inception Architecture"), in the form
Heusel et al. 2017 used for the Frechet Inception Distance: TensorFlow's 2015-12-05 graph,
which pytorch-fid (Seitzer 2020) re-expresses in torchvision's ``Inception3`` layout with
patched blocks. Every convention that changes the numbers:

* BasicConv2d = conv (no bias) + BatchNorm(eps=0.001, running statistics) + ReLU.
* Mixed_5b-d (A), Mixed_6b-e (C), Mixed_7b (E_1): the pool branch averages a 3x3 window
  with stride 1 and padding 1 EXCLUDING the padding from the count (TF's average pooling,
  ``count_include_pad=False``); Mixed_7c (E_2) max-pools that branch instead (most likely
  a slip in that TF graph, kept because every published FID value contains it).
* 1008 logits (the TF graph's output layer has 1008 classes), for the Inception Score;
  ``logits`` includes the fc bias.
* Input: images in [0, 1], (N, 3, H, W) or grey (N, 1, H, W) repeated to 3 channels;
  bilinearly resized to 299x299 (``align_corners=False``, no antialiasing), then 2 x - 1.

Outputs: ``features(x)`` the 2048-d pool3 features (global average of Mixed_7c), shape
(N, 2048); ``logits(x)`` (N, 1008); ``forward(x)`` both. Parameter names equal torchvision's
(``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ..., ``fc.weight``),
so pytorch-fid's weights file loads 1:1 (:func:`load_fid_inception`).

The network is always in eval mode (BatchNorm uses its running statistics; ``train()``
leaves it in eval) and its parameters do not require gradients; a graph is recorded only
when the input requires grad.
"""
import autodiff
import autodiff.functional as F
from autodiff import nn
from autodiff.tensor import Tensor

from .inception_weights import (FID_WEIGHTS_SHA256, FID_WEIGHTS_URL, WeightsNotFoundError,
                                convert_inception_weights, download_inception_weights,
                                find_fid_weights, read_fid_weights)

__all__ = ["FIDInceptionV3", "BasicConv2d", "FIDInceptionA", "InceptionB", "FIDInceptionC",
           "InceptionD", "FIDInceptionE_1", "FIDInceptionE_2", "load_fid_inception",
           "download_inception_weights", "convert_inception_weights", "find_fid_weights",
           "WeightsNotFoundError", "FID_WEIGHTS_URL", "FID_WEIGHTS_SHA256"]

FEATURE_DIM = 2048
NUM_LOGITS = 1008
INPUT_SIZE = 299
MIN_SIZE = 75  # the smallest input every block accepts (without the resize)


class BasicConv2d(nn.Module):
    """relu(BN(conv(x))), conv without bias, BN eps 0.001: (N, C_in, H, W) -> (N, C_out, H', W')."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3x3(x):
    """3x3 average, stride 1, padding 1, the padding not counted (TF's SAME average pool)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Mixed_5b-d: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg(no pad count)-1x1, concatenated.

    (N, C, H, W) -> (N, 224 + pool_features, H, W).
    """

    def __init__(self, in_channels, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3x3(x))
        return autodiff.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """Mixed_6a (grid reduction): 3x3/2 | 1x1-3x3-3x3/2 | maxpool 3x3/2.

    (N, C, H, W) -> (N, 480 + C, (H - 3) // 2 + 1, (W - 3) // 2 + 1).
    """

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return autodiff.cat([b3, bd, bp], dim=1)


class FIDInceptionC(nn.Module):
    """Mixed_6b-e: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avg(no pad count)-1x1.

    (N, C, H, W) -> (N, 768, H, W); ``channels_7x7`` is the width inside the 7-branches.
    """

    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = conv(bd)
        bp = self.branch_pool(_avg3x3(x))
        return autodiff.cat([b1, b7, bd, bp], dim=1)


class InceptionD(nn.Module):
    """Mixed_7a (grid reduction): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool 3x3/2.

    (N, C, H, W) -> (N, 512 + C, (H - 3) // 2 + 1, (W - 3) // 2 + 1).
    """

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3,
                     self.branch7x7x3_4):
            b7 = conv(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return autodiff.cat([b3, b7, bp], dim=1)


class _InceptionE(nn.Module):
    """Mixed_7b/7c: 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1.

    (N, C, H, W) -> (N, 2048, H, W); subclasses choose the pool.
    """

    def __init__(self, in_channels):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def _pool(self, x):
        raise NotImplementedError

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = autodiff.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = autodiff.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)
        bp = self.branch_pool(self._pool(x))
        return autodiff.cat([b1, b3, bd, bp], dim=1)


class FIDInceptionE_1(_InceptionE):
    """Mixed_7b: the pool branch averages without counting the padding."""

    def _pool(self, x):
        return _avg3x3(x)


class FIDInceptionE_2(_InceptionE):
    """Mixed_7c: the pool branch MAX-pools (3x3, stride 1, padding 1), as the TF graph does."""

    def _pool(self, x):
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class FIDInceptionV3(nn.Module):
    """The FID Inception v3 (see the module docstring); random weights until loaded.

    Use :func:`load_fid_inception` for the standard weights. ``resize_input=False`` skips
    the resize (inputs must then be at least 75x75); ``normalize_input=False`` takes inputs
    already in [-1, 1]; ``check_range`` rejects [0, 1]-inputs outside [-1e-3, 1 + 1e-3]
    (8-bit images passed unscaled are the usual mistake).
    """

    def __init__(self, resize_input=True, normalize_input=True, check_range=True):
        super().__init__()
        self.resize_input = resize_input
        self.normalize_input = normalize_input
        self.check_range = check_range
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)
        self.fc = nn.Linear(FEATURE_DIM, NUM_LOGITS)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode=True):
        """The FID network stays in eval mode (BatchNorm running statistics), whatever ``mode``."""
        return super().train(False)

    # ------------------------------------------------------------------ input handling
    def _prepare(self, x):
        """[0, 1] images (N, 1|3, H, W) -> [-1, 1] images (N, 3, 299, 299)."""
        if not isinstance(x, Tensor):
            x = autodiff.tensor(x, dtype=self.fc.weight.dtype)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"FIDInceptionV3: expected images (N, 3, H, W) or grey "
                             f"(N, 1, H, W), got shape {tuple(x.shape)}")
        if x.dtype != self.fc.weight.dtype:
            x = x.to(self.fc.weight.dtype)
        if self.check_range and self.normalize_input and x.numel() > 0:
            lo, hi = float(x.data.min()), float(x.data.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise ValueError(
                    f"FIDInceptionV3: inputs must lie in [0, 1], got values in [{lo:g}, "
                    f"{hi:g}] (divide 8-bit images by 255; map [-1, 1] images by (x + 1) / 2)")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey: the same image in R, G and B
        if self.resize_input and tuple(x.shape[2:]) != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                              align_corners=False)
        elif min(x.shape[2:]) < MIN_SIZE:
            raise ValueError(f"FIDInceptionV3: with resize_input=False images must be at "
                             f"least {MIN_SIZE}x{MIN_SIZE}, got {tuple(x.shape[2:])}")
        if self.normalize_input:
            x = 2 * x - 1
        return x

    # ------------------------------------------------------------------ the network
    def _pool3(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))  # adaptive average pool to 1x1, flattened: (N, 2048)

    def forward(self, x):
        """(features (N, 2048), logits (N, 1008)) of images x in [0, 1], (N, 1|3, H, W)."""
        feats = self._pool3(self._prepare(x))
        return feats, self.fc(feats)

    def features(self, x):
        """The 2048-d pool3 features, (N, 2048), that FID compares."""
        return self._pool3(self._prepare(x))

    def logits(self, x):
        """The 1008 logits, (N, 1008); softmax of them gives the Inception Score's p(y|x)."""
        return self.fc(self.features(x))


def load_fid_inception(path=None, verify=True, dtype=None, **kwargs):
    """The FID Inception network with the standard weights, in eval mode.

    :param path: the weights (``pt_inception-2015-12-05-6726825d.pth`` or its converted
        ``.npz``) or a folder to look in first; then ``$REFGEN_DATA`` and ``~/.cache/refgen``.
    :param verify: check the sha256 (default). ``verify=False`` loads other weights of the
        same layout (a torch-saved random network in the tests).
    :param dtype: parameter dtype (default: autodiff's default dtype).
    :param kwargs: passed to :class:`FIDInceptionV3` (resize_input, normalize_input, ...).
    :raises WeightsNotFoundError: no weights found; the message lists where it looked and
        how to get them (``refgen data download inception`` or the URL).
    """
    state, _file = read_fid_weights(path, verify=verify)
    model = FIDInceptionV3(**kwargs)
    if dtype is not None:
        model.to(dtype=dtype)
    model.load_state_dict(state)
    return model
