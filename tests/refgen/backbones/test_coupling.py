"""Coupling conditioners: output exactly zero at initialisation, so a fresh affine coupling
layer y_b = x_b * exp(s) + t is exactly the identity with log-det 0; gradients still reach the
zeroed layer; shapes and errors."""
import numpy as np  # host-side: comparisons
import pytest

import autodiff
from autodiff.checks import gradcheck
from refgen.backbones.coupling import CouplingMLP, CouplingResNet


def affine_coupling(net, x, split_dim):
    """Real NVP (Dinh et al. 2017, Eq. 6-7): (y, log|det J|) with (s, t) = net(x_a)."""
    half = x.shape[split_dim] // 2
    x_a, x_b = x.split([half, x.shape[split_dim] - half], dim=split_dim)
    s, t = net(x_a).chunk(2, dim=split_dim)
    y_b = x_b * s.exp() + t
    logdet = s.reshape(x.shape[0], -1).sum(dim=1)
    return autodiff.cat([x_a, y_b], dim=split_dim), logdet


@pytest.mark.parametrize("depth,residual", [(1, False), (3, True)])
def test_fresh_mlp_coupling_is_identity(depth, residual):
    net = CouplingMLP(3, 2 * 3, hidden=16, depth=depth, residual=residual, activation="silu")
    x = autodiff.randn(10, 6) * 3
    y, logdet = affine_coupling(net, x, split_dim=1)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_array_equal(logdet.numpy(), np.zeros(10))


@pytest.mark.parametrize("norm", ["group", "batch", "none"])
def test_fresh_resnet_coupling_is_identity(norm):
    net = CouplingResNet(2, 2 * 2, hidden_channels=8, blocks=2, norm=norm, num_groups=4)
    x = autodiff.randn(3, 4, 7, 7)
    y, logdet = affine_coupling(net, x, split_dim=1)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_array_equal(logdet.numpy(), np.zeros(3))


def test_zero_layer_still_gets_gradient():
    """The last layer's input is non-zero, so training moves it away from zero."""
    for net, x in ((CouplingMLP(3, 4, hidden=8, depth=2), autodiff.randn(5, 3)),
                   (CouplingResNet(1, 2, hidden_channels=4, blocks=1, num_groups=2),
                    autodiff.randn(2, 1, 5, 5))):
        (net(x) * autodiff.randn(*net(x).shape)).sum().backward()
        last = net.out if isinstance(net, CouplingMLP) else net.conv_out
        assert float(last.weight.grad.abs().sum().item()) > 0
        assert float(last.bias.grad.abs().sum().item()) > 0


def test_shapes_names_and_gradcheck():
    net = CouplingResNet(3, 6, hidden_channels=4, blocks=1, num_groups=2)
    assert net(autodiff.randn(2, 3, 28, 28)).shape == (2, 6, 28, 28)
    assert list(net.state_dict())[-2:] == ["conv_out.weight", "conv_out.bias"]
    autodiff.manual_seed(4)
    net = CouplingMLP(2, 4, hidden=6, depth=2, activation="tanh", cond_features=1)
    for p in net.out.parameters():  # away from zero, so the check sees the whole network
        p.data[...] = autodiff.randn(*p.shape).data
    x, c = autodiff.randn(3, 2, requires_grad=True), autodiff.randn(3, 1, requires_grad=True)
    assert net(x, c).shape == (3, 4)
    assert gradcheck(net, [x, c])


def test_errors():
    with pytest.raises(ValueError, match=r"input must be \(N, 3, H, W\), got shape \(2, 2, 4, 4\)"):
        CouplingResNet(3, 6, hidden_channels=4, num_groups=2)(autodiff.randn(2, 2, 4, 4))
    with pytest.raises(ValueError, match="blocks must be a non-negative int"):
        CouplingResNet(3, 6, blocks=-1)
    with pytest.raises(ValueError, match="hidden_channels must be a positive int"):
        CouplingResNet(3, 6, hidden_channels=0)
    with pytest.raises(ValueError, match=r"x must be \(\*, 3\)"):
        CouplingMLP(3, 6)(autodiff.randn(2, 4))
