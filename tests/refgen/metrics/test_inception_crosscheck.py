"""PyTorch cross-checks: torch.save files read exactly; the FID Inception equals PyTorch's.

The PyTorch network is written here from the same definition (torchvision is not a
dependency), given random weights and random BatchNorm statistics, saved with torch.save
and loaded through refgen's reader, so the weights path and the network are checked
together. Tolerance: float64 through the same formulas differs only by summation order
(im2col matmul vs. PyTorch's convolution) over ~100 layers; 1e-8 relative (norm-wise, and
elementwise against the largest value) is far above that rounding and far below any
mistake in a block (a count_include_pad or pooling slip changes features at 1e-2).
"""
from collections import OrderedDict

import numpy as np  # host-side: comparisons in tests
import pytest

import autodiff
from refgen.metrics.inception import FIDInceptionV3, load_fid_inception
from refgen.metrics.torch_pickle import load_torch_file, read_torch_state_dict
from tests.crosscheck_utils import to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck
RTOL = 1e-8


# ----------------------------------------------------------------- reader vs torch.save
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_reader_matches_torch_save(tmp_path, legacy):
    torch = torch_or_skip()
    g = torch.Generator().manual_seed(0)
    big = torch.randn(6, 10, generator=g, dtype=torch.float64)
    sd = OrderedDict([
        ("f32", torch.randn(3, 4, generator=g, dtype=torch.float32)),
        ("f64_offset_strided", big[1:5, 2::3]),          # offset and non-unit strides
        ("f64_transposed", big.t()),                       # shares big's storage
        ("i64", torch.arange(-5, 7, dtype=torch.int64).reshape(3, 4)),
        ("counter", torch.tensor(123456789012, dtype=torch.int64)),  # 0-d
        ("f16", torch.randn(5, generator=g).half()),
        ("bf16", torch.randn(5, generator=g).bfloat16()),
        ("bool", torch.tensor([True, False, True])),
        ("u8", torch.arange(250, 256, dtype=torch.uint8)),
        ("empty", torch.zeros(0, 3)),
        ("param", torch.nn.Parameter(torch.randn(2, 2, generator=g))),
        ("nested", OrderedDict([("inner", torch.ones(2)), ("deeper", {"x": big[0]})])),
    ])
    path = tmp_path / "sd.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    out = load_torch_file(path)

    def check(ours, theirs, where):
        if isinstance(theirs, dict):
            assert list(ours) == list(theirs), where
            for k in theirs:
                check(ours[k], theirs[k], f"{where}.{k}")
            return
        ref = theirs.detach()
        ref = ref.float().numpy() if ref.dtype == torch.bfloat16 else ref.numpy()
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, where
        np.testing.assert_array_equal(ours, ref, err_msg=where)

    check(out, sd, "sd")


def test_reader_matches_torch_module_state_dict(tmp_path):
    torch = torch_or_skip()
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Linear(5, 2))
    path = tmp_path / "m.pth"
    torch.save(net.state_dict(), path)   # carries _metadata (BUILD on the dict)
    out = read_torch_state_dict(path)
    ref = net.state_dict()
    assert list(out) == list(ref)
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k].numpy(), err_msg=k)


# ----------------------------------------------------------------- the network in torch
def _torch_inception(torch):
    nn, F = torch.nn, torch.nn.functional

    class Basic(nn.Module):
        def __init__(self, cin, cout, k, stride=1, padding=0):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    def avg(x):
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    class A(nn.Module):
        def __init__(self, cin, pf):
            super().__init__()
            self.branch1x1 = Basic(cin, 64, 1)
            self.branch5x5_1, self.branch5x5_2 = Basic(cin, 48, 1), Basic(48, 64, 5, padding=2)
            self.branch3x3dbl_1 = Basic(cin, 64, 1)
            self.branch3x3dbl_2 = Basic(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = Basic(96, 96, 3, padding=1)
            self.branch_pool = Basic(cin, pf, 1)

        def forward(self, x):
            return torch.cat([
                self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(avg(x))], 1)

    class B(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.branch3x3 = Basic(cin, 384, 3, stride=2)
            self.branch3x3dbl_1 = Basic(cin, 64, 1)
            self.branch3x3dbl_2 = Basic(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = Basic(96, 96, 3, stride=2)

        def forward(self, x):
            return torch.cat([
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2)], 1)

    class C(nn.Module):
        def __init__(self, cin, c7):
            super().__init__()
            self.branch1x1 = Basic(cin, 192, 1)
            self.branch7x7_1 = Basic(cin, c7, 1)
            self.branch7x7_2 = Basic(c7, c7, (1, 7), padding=(0, 3))
            self.branch7x7_3 = Basic(c7, 192, (7, 1), padding=(3, 0))
            self.branch7x7dbl_1 = Basic(cin, c7, 1)
            self.branch7x7dbl_2 = Basic(c7, c7, (7, 1), padding=(3, 0))
            self.branch7x7dbl_3 = Basic(c7, c7, (1, 7), padding=(0, 3))
            self.branch7x7dbl_4 = Basic(c7, c7, (7, 1), padding=(3, 0))
            self.branch7x7dbl_5 = Basic(c7, 192, (1, 7), padding=(0, 3))
            self.branch_pool = Basic(cin, 192, 1)

        def forward(self, x):
            d = x
            for i in range(1, 6):
                d = getattr(self, f"branch7x7dbl_{i}")(d)
            return torch.cat([
                self.branch1x1(x), self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                d, self.branch_pool(avg(x))], 1)

    class D(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.branch3x3_1, self.branch3x3_2 = Basic(cin, 192, 1), Basic(192, 320, 3, stride=2)
            self.branch7x7x3_1 = Basic(cin, 192, 1)
            self.branch7x7x3_2 = Basic(192, 192, (1, 7), padding=(0, 3))
            self.branch7x7x3_3 = Basic(192, 192, (7, 1), padding=(3, 0))
            self.branch7x7x3_4 = Basic(192, 192, 3, stride=2)

        def forward(self, x):
            s = x
            for i in range(1, 5):
                s = getattr(self, f"branch7x7x3_{i}")(s)
            return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), s,
                              F.max_pool2d(x, 3, stride=2)], 1)

    class E(nn.Module):
        def __init__(self, cin, use_max):
            super().__init__()
            self.use_max = use_max
            self.branch1x1 = Basic(cin, 320, 1)
            self.branch3x3_1 = Basic(cin, 384, 1)
            self.branch3x3_2a = Basic(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3_2b = Basic(384, 384, (3, 1), padding=(1, 0))
            self.branch3x3dbl_1 = Basic(cin, 448, 1)
            self.branch3x3dbl_2 = Basic(448, 384, 3, padding=1)
            self.branch3x3dbl_3a = Basic(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3dbl_3b = Basic(384, 384, (3, 1), padding=(1, 0))
            self.branch_pool = Basic(cin, 192, 1)

        def forward(self, x):
            t = self.branch3x3_1(x)
            t = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            p = F.max_pool2d(x, 3, stride=1, padding=1) if self.use_max else avg(x)
            return torch.cat([self.branch1x1(x), t, d, self.branch_pool(p)], 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.Conv2d_1a_3x3 = Basic(3, 32, 3, stride=2)
            self.Conv2d_2a_3x3 = Basic(32, 32, 3)
            self.Conv2d_2b_3x3 = Basic(32, 64, 3, padding=1)
            self.Conv2d_3b_1x1 = Basic(64, 80, 1)
            self.Conv2d_4a_3x3 = Basic(80, 192, 3)
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
            self.Mixed_6a = B(288)
            self.Mixed_6b, self.Mixed_6c = C(768, 128), C(768, 160)
            self.Mixed_6d, self.Mixed_6e = C(768, 160), C(768, 192)
            self.Mixed_7a = D(768)
            self.Mixed_7b, self.Mixed_7c = E(1280, False), E(2048, True)
            self.fc = nn.Linear(2048, 1008)

        def forward(self, x, resize=True):
            if resize:
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            x = 2 * x - 1
            x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
            x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
            x = F.max_pool2d(x, 3, stride=2)
            for name in ["5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"]:
                x = getattr(self, "Mixed_" + name)(x)
            feats = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return feats, self.fc(feats)

    return Net()


@pytest.fixture(scope="module")
def torch_net_and_file(tmp_path_factory):
    """A torch FID Inception with random weights and BatchNorm statistics, saved to .pth.

    The statistics come from one train-mode pass on random 75x75 images (so activations
    stay O(1) through the 94 layers), then are perturbed, and the affine BN parameters
    are drawn at random: every number in the file is different from its default.
    """
    torch = torch_or_skip()
    torch.manual_seed(0)
    net = _torch_inception(torch).double()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    with torch.no_grad():
        net.train()(torch.rand(2, 3, 75, 75, dtype=torch.float64), resize=False)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.5, 1.5))
                m.running_mean.add_(0.1 * torch.randn_like(m.running_mean))
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    net.eval()
    path = tmp_path_factory.mktemp("inception") / "random_fid_inception.pth"
    torch.save(net.state_dict(), path)
    return torch, net, path


@pytest.fixture(scope="module")
def loaded(torch_net_and_file):
    """refgen's network with the torch network's weights, read through the .pth reader.

    float64 explicitly: a module-scoped fixture runs before the autouse float64 fixture.
    """
    _torch, _net, path = torch_net_and_file
    return load_fid_inception(path, verify=False, dtype=autodiff.float64, resize_input=False)


def _assert_rel(ours, theirs, what):
    a, b = ours.numpy(), theirs.detach().numpy()
    assert a.shape == b.shape, what
    rel = np.linalg.norm(a - b) / np.linalg.norm(b)
    assert rel <= RTOL, f"{what}: relative difference {rel:.3e}"
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.abs(b).max(), err_msg=what)


def test_state_dict_names_and_shapes_equal_torch(torch_net_and_file):
    _torch, net, _path = torch_net_and_file
    ours = FIDInceptionV3().state_dict()
    theirs = net.state_dict()
    assert list(ours) == list(theirs)
    assert len(theirs) == 566   # the count of the published weights file's entries
    for k, v in theirs.items():
        assert tuple(ours[k].shape) == tuple(v.shape), k


def test_features_and_logits_equal_torch_small_input(torch_net_and_file, loaded):
    """75x107 without the resize: every block, in a fraction of the time of 299x299.

    107 columns leave 2 columns at Mixed_7b/7c (75 would leave 1x1, where E_2's max pool
    and E_1's average pool of a single value agree and a swap would go unnoticed).
    """
    torch, net, _path = torch_net_and_file
    model = loaded
    x = autodiff.rand(2, 3, 75, 107, generator=autodiff.Generator(1))
    feats, logits = model(x)
    with torch.no_grad():
        t_feats, t_logits = net(to_torch(x), resize=False)
    _assert_rel(feats, t_feats, "features (75x107)")
    _assert_rel(logits, t_logits, "logits (75x107)")
    assert feats.numpy().std() > 1e-3   # the comparison is not between near-zero vectors
    _assert_rel(model.features(x[:1]), t_feats[:1], "features()")
    _assert_rel(model.logits(x[:1]), t_logits[:1], "logits()")


def test_input_preparation_equals_torch():
    """Resize to 299 (bilinear, align_corners=False) and 2 x - 1, grey repeated to RGB."""
    torch = torch_or_skip()
    model = FIDInceptionV3()
    x = autodiff.rand(2, 3, 32, 40, generator=autodiff.Generator(3))
    ref = 2 * torch.nn.functional.interpolate(to_torch(x), size=(299, 299), mode="bilinear",
                                              align_corners=False) - 1
    np.testing.assert_allclose(model._prepare(x).numpy(), ref.numpy(), rtol=1e-12, atol=1e-14)
    grey = x[:, :1]
    ref = 2 * torch.nn.functional.interpolate(to_torch(grey).expand(-1, 3, -1, -1),
                                              size=(299, 299), mode="bilinear",
                                              align_corners=False) - 1
    np.testing.assert_allclose(model._prepare(grey).numpy(), ref.numpy(), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.slow
def test_features_and_logits_equal_torch_resized_to_299(torch_net_and_file, loaded):
    """The full path: a 32x32 image bilinearly resized to 299, scaled, through the network.

    Slow (about 15 s in float64 on 2 cores); the default run checks every block at 75x75
    and the input preparation separately.
    """
    torch, net, _path = torch_net_and_file
    model = loaded
    model.resize_input = True
    x = autodiff.rand(1, 3, 32, 32, generator=autodiff.Generator(2))
    try:
        feats, logits = model(x)
    finally:
        model.resize_input = False
    with torch.no_grad():
        t_feats, t_logits = net(to_torch(x))
    _assert_rel(feats, t_feats, "features (299)")
    _assert_rel(logits, t_logits, "logits (299)")
