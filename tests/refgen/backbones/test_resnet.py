"""Convolutional backbones: shapes at 28x28 and 32x32 (and 64), errors, gradients, the
identity shortcut, DCGAN's initialisation, state_dict names."""
import numpy as np  # host-side: statistics and comparisons
import pytest

import autodiff
from autodiff import nn
from autodiff.checks import gradcheck
from refgen.backbones.resnet import (PreActResBlock, ResNet, ResNetGenerator, ResNetCritic,
                                     DCGANGenerator, DCGANDiscriminator, dcgan_init_, base_size,
                                     make_norm)

RESAMPLES = [(None, "avg"), ("up", "avg"), ("down", "avg"), ("down", "stride")]


@pytest.mark.parametrize("resample,down", RESAMPLES)
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("c_in,c_out", [(4, 4), (2, 4)])
def test_block_shapes(resample, down, size, c_in, c_out):
    block = PreActResBlock(c_in, c_out, resample=resample, downsample=down, norm="group",
                           num_groups=2)
    y = block(autodiff.randn(3, c_in, size, size))
    expected = {None: size, "up": 2 * size,
                "down": size // 2 if down == "avg" else (size + 1) // 2}[resample]
    assert y.shape == (3, c_out, expected, expected)
    has_projection = c_in != c_out or (resample, down) == ("down", "stride")
    assert (block.shortcut is not None) == has_projection


@pytest.mark.parametrize("resample,down", RESAMPLES)
def test_shortcut_is_identity_path(resample, down):
    """With conv2 zeroed the residual branch vanishes: y = shortcut(x) (x itself, resampled)."""
    block = PreActResBlock(3, 3, resample=resample, downsample=down, norm="none")
    nn.init.zeros_(block.conv2.weight)
    nn.init.zeros_(block.conv2.bias)
    x = autodiff.randn(2, 3, 4, 4)
    y = block(x).numpy()
    xn = x.numpy()
    if resample is None:
        expected = xn
    elif resample == "up":
        expected = xn.repeat(2, axis=2).repeat(2, axis=3)
    elif down == "avg":
        expected = xn.reshape(2, 3, 2, 2, 2, 2).mean(axis=(3, 5))
    else:
        s = block.shortcut
        expected = (np.einsum("oi,nihw->nohw", s.weight.numpy()[:, :, 0, 0], xn[:, :, ::2, ::2])
                    + s.bias.numpy()[None, :, None, None])
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("resample,down", RESAMPLES)
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_block_gradcheck(resample, down, norm):
    autodiff.manual_seed(2)
    block = PreActResBlock(2, 4, resample=resample, downsample=down, norm=norm, num_groups=2,
                           activation="silu")
    x = autodiff.randn(2, 2, 4, 4, requires_grad=True)
    assert gradcheck(block, [x], second_order=False)


def test_block_state_dict_names():
    block = PreActResBlock(2, 4, norm="batch")
    assert list(block.state_dict()) == [
        "norm1.weight", "norm1.bias", "norm1.running_mean", "norm1.running_var",
        "norm1.num_batches_tracked", "conv1.weight", "conv1.bias",
        "norm2.weight", "norm2.bias", "norm2.running_mean", "norm2.running_var",
        "norm2.num_batches_tracked", "conv2.weight", "conv2.bias",
        "shortcut.weight", "shortcut.bias"]
    sn = PreActResBlock(2, 2, norm="none", spectral_norm=True)
    assert "conv1.weight_orig" in sn.state_dict() and "conv2.weight_u" in sn.state_dict()


@pytest.mark.parametrize("size", [28, 32])
def test_resnet_classifier_and_features(size):
    net = ResNet(in_channels=1, num_classes=10, widths=(4, 8), blocks_per_stage=2, norm="group",
                 num_groups=2)
    assert net(autodiff.randn(2, 1, size, size)).shape == (2, 10)
    feats = ResNet(in_channels=3, num_classes=None, widths=(4, 8, 8), norm="batch")
    assert feats(autodiff.randn(2, 3, size, size)).shape == (2, 8)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3)])
def test_resnet_generator_and_critic(size, channels):
    g = ResNetGenerator(z_dim=6, out_channels=channels, image_size=size, width=8, num_groups=4)
    x = g(autodiff.randn(2, 6))
    assert x.shape == (2, channels, size, size)
    assert float(x.abs().max().item()) < 1
    for sn in (False, True):
        d = ResNetCritic(in_channels=channels, image_size=size, width=8, spectral_norm=sn)
        assert d(x).shape == (2,)


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_dcgan_shapes(size, norm):
    g = DCGANGenerator(z_dim=5, channels=1, base_width=4, image_size=size, norm=norm)
    d = DCGANDiscriminator(channels=1, base_width=4, image_size=size, norm=norm)
    x = g(autodiff.randn(3, 5))
    assert x.shape == (3, 1, size, size)
    assert g(autodiff.randn(3, 5, 1, 1)).shape == (3, 1, size, size)
    assert d(x).shape == (3,)
    # no batch norm directly after D's first convolution (Radford et al. 2016)
    assert isinstance(d.main[1], nn.LeakyReLU) and d.main[1].negative_slope == 0.2
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in list(g.modules()) + list(d.modules()))
    assert has_bn == (norm == "batch")


def test_dcgan_channel_layout_matches_paper_at_64():
    """64x64: z -> 8B at 4x4 -> 4B -> 2B -> B -> channels (the PyTorch DCGAN example's layout)."""
    g = DCGANGenerator(z_dim=100, channels=3, base_width=8, image_size=64, init=False)
    convs = [m for m in g.main if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (100, 64), (64, 32), (32, 16), (16, 8), (8, 3)]
    d = DCGANDiscriminator(channels=3, base_width=8, image_size=64, init=False)
    convs = [m for m in d.main if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (3, 8), (8, 16), (16, 32), (32, 64), (64, 1)]


def test_dcgan_init_statistics():
    """Weights ~ N(0, 0.02), BN gamma ~ N(1, 0.02): sample moments within 5 standard errors."""
    g = DCGANGenerator(z_dim=64, channels=3, base_width=32, image_size=32,
                       generator=autodiff.Generator(0))
    w = np.concatenate([m.weight.numpy().ravel() for m in g.modules()
                        if isinstance(m, nn.ConvTranspose2d)])
    gamma = np.concatenate([m.weight.numpy() for m in g.modules()
                            if isinstance(m, nn.BatchNorm2d)])
    n = w.size
    assert abs(w.mean()) < 5 * 0.02 / np.sqrt(n)
    assert abs(w.std() - 0.02) < 5 * 0.02 / np.sqrt(2 * n)
    assert abs(gamma.mean() - 1) < 5 * 0.02 / np.sqrt(gamma.size)
    # init=False keeps PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    plain = DCGANGenerator(z_dim=64, channels=3, base_width=32, image_size=32, init=False)
    assert all(np.all(m.weight.numpy() == 1) for m in plain.modules()
               if isinstance(m, nn.BatchNorm2d))
    # spectral-normed discriminator: the init draws weight_orig
    d = dcgan_init_(DCGANDiscriminator(3, 16, 32, norm="none", spectral_norm=True, init=False))
    assert abs(d.main[0].weight_orig.numpy().std() - 0.02) < 0.005


def test_dcgan_gradcheck_small():
    g = DCGANGenerator(z_dim=3, channels=1, base_width=2, image_size=8, norm="batch")
    d = DCGANDiscriminator(channels=1, base_width=2, image_size=8, norm="none",
                           spectral_norm=True).eval()
    z = autodiff.randn(2, 3, requires_grad=True)
    assert gradcheck(lambda z: d(g(z)), [z], second_order=False)


def test_base_size():
    assert base_size(28) == (7, 2) and base_size(32) == (4, 3) and base_size(64) == (4, 4)
    assert base_size(8) == (4, 1)
    for bad in (30, 7, 4, 22, "32"):
        with pytest.raises(ValueError, match="image_size must be"):
            base_size(bad)


def test_errors():
    with pytest.raises(ValueError, match="unknown resample 'sideways'"):
        PreActResBlock(2, 2, resample="sideways")
    with pytest.raises(ValueError, match="unknown downsample 'max'"):
        PreActResBlock(2, 2, resample="down", downsample="max")
    with pytest.raises(ValueError, match="unknown norm 'instance'; known: batch, group, none"):
        make_norm("instance", 4)
    with pytest.raises(ValueError, match="not divisible into 4 groups"):
        PreActResBlock(6, 6, norm="group", num_groups=4)
    with pytest.raises(ValueError, match="unknown activation"):
        PreActResBlock(2, 2, activation="sigmoidish")
    with pytest.raises(ValueError, match=r"input must be \(N, 2, H, W\), got shape \(1, 3, 4, 4\)"):
        PreActResBlock(2, 2)(autodiff.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"must be \(N, 5\) or \(N, 5, 1, 1\), got shape \(2, 4\)"):
        DCGANGenerator(z_dim=5, base_width=2, image_size=8)(autodiff.randn(2, 4))
    with pytest.raises(ValueError, match=r"input must be \(N, 1, 28, 28\), got shape \(2, 1, 32, 32\)"):
        DCGANDiscriminator(1, 2, 28)(autodiff.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="unknown norm 'group'; known: 'batch', 'none'"):
        DCGANDiscriminator(1, 2, 28, norm="group")
    with pytest.raises(ValueError, match=r"z must be \(N, 4\)"):
        ResNetGenerator(4, 1, 28, 8, num_groups=4)(autodiff.randn(2, 3))
