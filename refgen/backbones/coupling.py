"""Conditioner networks for coupling layers of normalising flows, zero at initialisation.

An affine coupling layer (Dinh et al. 2017, "Density estimation using Real NVP", Eq. 6-7)
splits x into (x_a, x_b) and computes

    (s, t) = NN(x_a),   y_a = x_a,   y_b = x_b * exp(s) + t,   log|det J| = sum(s).

If the conditioner's last layer has zero weight and zero bias, NN(x_a) = 0 for every input,
so s = t = 0 and a freshly built coupling layer is exactly the identity with log-det 0
(Kingma & Dhariwal 2018, "Glow", Sec. 3.3: "we initialize the last convolution of each NN()
with zeros, such that each affine coupling layer initially performs an identity function").
Training starts from the identity flow; the gradient still reaches the zero layer (its input is
non-zero), so it moves away from zero after the first step.

* ``CouplingMLP``: for vector data, (*, in_features) -> (*, out_features); an MLP whose
  ``out`` Linear is zeroed (parameter names as ``refgen.backbones.mlp.MLP``).
* ``CouplingResNet``: for images, (N, in_channels, H, W) -> (N, out_channels, H, W); a 3x3
  stem, ``blocks`` pre-activation residual blocks at constant resolution, norm-act and a zeroed
  3x3 output convolution ``conv_out``.

For an affine coupling, out_features (out_channels) is twice the number of transformed
features (channels): s and t.
"""
from autodiff import nn

from .mlp import MLP, make_activation
from ._checks import check_image, check_positive_ints
from .init import zero_module_
from .resnet import PreActResBlock, make_norm

__all__ = ["CouplingMLP", "CouplingResNet", "zero_module_"]


class CouplingMLP(MLP):
    """MLP conditioner with a zero last layer: NN(x) = 0 at initialisation.

    (*, in_features) [, c (*, cond_features)] -> (*, out_features). Arguments as ``MLP``
    (hidden width, depth, activation, residual, cond_features, ...).
    """

    def __init__(self, in_features, out_features, hidden=64, depth=2, activation="relu",
                 **kwargs):
        super().__init__(in_features, out_features, hidden=hidden, depth=depth,
                         activation=activation, **kwargs)
        zero_module_(self.out)


class CouplingResNet(nn.Module):
    """Convolutional conditioner with a zero last convolution: NN(x) = 0 at initialisation.

    (N, in_channels, H, W) -> (N, out_channels, H, W).

    :param hidden_channels: width of the stem and the residual blocks.
    :param blocks: number of PreActResBlocks (no resampling).
    :param norm: 'group' by default: per-sample statistics, so the flow is the same function
        in training and evaluation mode and exactly invertible in both; 'batch' or 'none'.
    Children: stem, blocks, norm, act, conv_out.
    """

    def __init__(self, in_channels, out_channels, hidden_channels=64, blocks=2, norm="group",
                 activation="relu", num_groups=8, generator=None):
        super().__init__()
        check_positive_ints("CouplingResNet", in_channels=in_channels, out_channels=out_channels,
                        hidden_channels=hidden_channels)
        if not isinstance(blocks, int) or blocks < 0:
            raise ValueError(f"CouplingResNet: blocks must be a non-negative int, got {blocks!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stem = nn.Conv2d(in_channels, hidden_channels, 3, padding=1, generator=generator)
        self.blocks = nn.Sequential(*[
            PreActResBlock(hidden_channels, hidden_channels, norm=norm, activation=activation,
                           num_groups=num_groups, generator=generator) for _ in range(blocks)])
        self.norm = make_norm(norm, hidden_channels, num_groups)
        self.act = make_activation(activation)
        self.conv_out = zero_module_(nn.Conv2d(hidden_channels, out_channels, 3, padding=1))

    def forward(self, x):
        """x (N, in_channels, H, W) -> (N, out_channels, H, W)."""
        check_image(x, f"CouplingResNet(in_channels={self.in_channels})", self.in_channels)
        h = self.blocks(self.stem(x))
        return self.conv_out(self.act(self.norm(h)))
