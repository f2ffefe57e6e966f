"""Convolutional backbones against PyTorch modules written here with the same structure and
parameter names: PreActResBlock in each resample mode and norm, the ResNet classifier, and the
DCGAN generator and discriminator (batch norm in training mode, running statistics compared
too). Outputs, input gradients and parameter gradients equal in float64 (rtol 1e-10)."""
import numpy as np  # host-side: test data
import pytest

from refgen.backbones.resnet import (PreActResBlock, ResNet, DCGANGenerator,
                                     DCGANDiscriminator)
from tests.crosscheck_utils import torch_or_skip, assert_close
from tests.refgen.backbones._torch_compare import randomize_, load_from_torch, compare, RTOL

pytestmark = pytest.mark.crosscheck


@pytest.fixture
def torch():
    return torch_or_skip()


def torch_norm(torch, norm, ch, groups):
    if norm == "batch":
        return torch.nn.BatchNorm2d(ch)
    if norm == "group":
        return torch.nn.GroupNorm(min(groups, ch), ch)
    return torch.nn.Identity()


def torch_block(torch, c_in, c_out, resample, down, norm, groups=2):
    nn, F = torch.nn, torch.nn.functional
    strided = resample == "down" and down == "stride"

    class TorchPreActResBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = torch_norm(torch, norm, c_in, groups)
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2 if strided else 1, padding=1)
            self.norm2 = torch_norm(torch, norm, c_out, groups)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
            self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=2 if strided else 1)
                             if c_in != c_out or strided else None)
            self.act = nn.ReLU()

        def forward(self, x):
            up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
            h = self.act(self.norm1(x))
            h = self.conv1(up(h) if resample == "up" else h)
            h = self.conv2(self.act(self.norm2(h)))
            s = x
            if resample == "up":
                s = up(s)
            elif resample == "down" and down == "avg":
                h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
            return h + (self.shortcut(s) if self.shortcut is not None else s)

    return TorchPreActResBlock()


@pytest.mark.parametrize("resample,down", [(None, "avg"), ("up", "avg"), ("down", "avg"),
                                           ("down", "stride")])
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
@pytest.mark.parametrize("c_in,c_out", [(4, 4), (2, 4)])
def test_preact_block_matches_torch(torch, resample, down, norm, c_in, c_out):
    theirs = randomize_(torch, torch_block(torch, c_in, c_out, resample, down, norm))
    ours = PreActResBlock(c_in, c_out, resample=resample, downsample=down, norm=norm,
                          num_groups=2)
    load_from_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((3, c_in, 6, 6))
    compare(torch, ours, theirs, x, what=f"block {resample} {down} {norm}")
    if norm == "batch":
        assert_close(ours.norm1.running_var, theirs.norm1.running_var, rtol=RTOL)
        assert_close(ours.norm2.running_mean, theirs.norm2.running_mean, rtol=RTOL)


def test_resnet_classifier_matches_torch(torch):
    nn = torch.nn
    blocks = [torch_block(torch, 4, 4, None, "avg", "batch"),
              torch_block(torch, 4, 8, "down", "avg", "batch")]

    class TorchResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 4, 3, padding=1)
            self.blocks = nn.Sequential(*blocks)
            self.norm = nn.BatchNorm2d(8)
            self.act = nn.ReLU()
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(self.act(self.norm(self.blocks(self.stem(x)))).mean(dim=(2, 3)))

    theirs = randomize_(torch, TorchResNet())
    ours = ResNet(in_channels=1, num_classes=10, widths=(4, 8), blocks_per_stage=1)
    load_from_torch(ours, theirs)
    compare(torch, ours, theirs, np.random.default_rng(0).standard_normal((2, 1, 28, 28)),
            what="ResNet")


def torch_dcgan_g(torch, z_dim, ch, b, s0, k, bn):
    nn = torch.nn
    w = b * 2 ** (k - 1)
    layers = [nn.ConvTranspose2d(z_dim, w, s0, 1, 0, bias=not bn)]
    layers += [nn.BatchNorm2d(w)] if bn else []
    layers += [nn.ReLU(True)]
    for _ in range(k - 1):
        layers += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=not bn)]
        layers += [nn.BatchNorm2d(w // 2)] if bn else []
        layers += [nn.ReLU(True)]
        w //= 2
    layers += [nn.ConvTranspose2d(w, ch, 4, 2, 1), nn.Tanh()]

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(*layers)

        def forward(self, z):
            return self.main(z.reshape(z.shape[0], z_dim, 1, 1))

    return G()


def torch_dcgan_d(torch, ch, b, s0, k, bn, sn):
    nn = torch.nn
    maybe_sn = torch.nn.utils.spectral_norm if sn else (lambda m: m)
    layers = [maybe_sn(nn.Conv2d(ch, b, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
    w = b
    for _ in range(k - 1):
        layers += [maybe_sn(nn.Conv2d(w, 2 * w, 4, 2, 1, bias=not bn))]
        layers += [nn.BatchNorm2d(2 * w)] if bn else []
        layers += [nn.LeakyReLU(0.2, True)]
        w *= 2
    layers += [maybe_sn(nn.Conv2d(w, 1, s0, 1, 0))]

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(*layers)

        def forward(self, x):
            return self.main(x).reshape(x.shape[0])

    return D()


@pytest.mark.parametrize("size,s0,k", [(28, 7, 2), (32, 4, 3)])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_dcgan_generator_matches_torch(torch, size, s0, k, norm):
    theirs = randomize_(torch, torch_dcgan_g(torch, 5, 1, 4, s0, k, norm == "batch"), scale=0.2)
    ours = DCGANGenerator(z_dim=5, channels=1, base_width=4, image_size=size, norm=norm,
                          init=False)
    load_from_torch(ours, theirs)
    compare(torch, ours, theirs, np.random.default_rng(0).standard_normal((3, 5)),
            what=f"DCGAN G {size} {norm}")


@pytest.mark.parametrize("size,s0,k", [(28, 7, 2), (32, 4, 3)])
@pytest.mark.parametrize("norm,sn", [("batch", False), ("none", False), ("none", True)])
def test_dcgan_discriminator_matches_torch(torch, size, s0, k, norm, sn):
    theirs = randomize_(torch, torch_dcgan_d(torch, 1, 4, s0, k, norm == "batch", sn), scale=0.2)
    ours = DCGANDiscriminator(channels=1, base_width=4, image_size=size, norm=norm,
                              spectral_norm=sn, init=False)
    load_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    for step in range(2):  # two training-mode steps: spectral-norm buffers and BN stats move
        compare(torch, ours, theirs, rng.standard_normal((3, 1, size, size)), seed=step,
                what=f"DCGAN D {size} {norm} sn={sn} step {step}")
        ours.zero_grad()
        theirs.zero_grad()
    for k_, v in theirs.state_dict().items():
        assert_close(ours.state_dict()[k_], v, rtol=RTOL, what=k_)
