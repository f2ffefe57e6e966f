"""The FID Inception network: names, block shapes, the patched pooling, input handling.

The numbers themselves are checked against PyTorch in test_inception_crosscheck.py.
"""
import numpy as np  # host-side: reference values in tests
import pytest

import autodiff
import autodiff.functional as F
from refgen.metrics import inception as inc
from refgen.metrics.inception import (FIDInceptionA, FIDInceptionC,
                                      FIDInceptionE_1, FIDInceptionE_2, FIDInceptionV3,
                                      InceptionB, InceptionD)


@pytest.fixture(scope="module")
def model():
    # .double(): module-scoped fixtures run before the autouse float64 fixture.
    return FIDInceptionV3().double()


def test_parameter_names_follow_torchvision(model):
    sd = model.state_dict()
    assert len(sd) == 566          # entries of pt_inception-2015-12-05-6726825d.pth
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.running_mean": (32,),
        "Conv2d_4a_3x3.bn.num_batches_tracked": (),
        "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7c.branch3x3dbl_3b.bn.running_var": (384,),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    for name, shape in expected.items():
        assert tuple(sd[name].shape) == shape, name
    assert not any("bias" in k for k in sd if ".conv." in k)   # convs have no bias
    assert all(m.eps == 0.001 for m in model.modules() if isinstance(m, autodiff.nn.BatchNorm2d))


@pytest.mark.parametrize("block, cin, hw, out", [
    (lambda: FIDInceptionA(192, 32), 192, (5, 6), (256, 5, 6)),
    (lambda: InceptionB(288), 288, (7, 8), (768, 3, 3)),
    (lambda: FIDInceptionC(768, 128), 768, (4, 3), (768, 4, 3)),
    (lambda: InceptionD(768), 768, (5, 7), (1280, 2, 3)),
    (lambda: FIDInceptionE_1(1280), 1280, (2, 3), (2048, 2, 3)),
    (lambda: FIDInceptionE_2(2048), 2048, (2, 2), (2048, 2, 2)),
])
def test_block_output_shapes(block, cin, hw, out):
    y = block()(autodiff.rand(1, cin, *hw))
    assert tuple(y.shape) == (1,) + out


def test_average_pool_branch_excludes_padding():
    """TF's SAME average pool: a constant image stays constant up to the border.

    Counting the padding (PyTorch's default) would give 4/9 in the corners.
    """
    y = inc._avg3x3(autodiff.ones(1, 2, 4, 5))
    np.testing.assert_allclose(y.numpy(), 1.0, rtol=0, atol=1e-15)


def test_e_blocks_pool_branch_average_then_max():
    x = autodiff.randn(1, 3, 4, 4)
    e1, e2 = FIDInceptionE_1.__new__(FIDInceptionE_1), FIDInceptionE_2.__new__(FIDInceptionE_2)
    np.testing.assert_array_equal(e1._pool(x).numpy(), inc._avg3x3(x).numpy())
    np.testing.assert_array_equal(e2._pool(x).numpy(),
                                  F.max_pool2d(x, 3, stride=1, padding=1).numpy())
    assert not np.allclose(e1._pool(x).numpy(), e2._pool(x).numpy())


def test_always_in_eval_mode_and_frozen(model):
    model.train()
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())


def test_gradient_reaches_the_input_only():
    """Frozen weights; an input that requires grad still gets one (e.g. for attacks)."""
    block = FIDInceptionA(8, 4)
    block.requires_grad_(False)
    x = autodiff.rand(1, 8, 5, 5, requires_grad=True)
    block(x).sum().backward()
    assert x.grad is not None and np.abs(x.grad.numpy()).sum() > 0
    assert all(p.grad is None for p in block.parameters())


def test_input_resized_scaled_and_grey_repeated(model):
    x = autodiff.rand(2, 1, 28, 28)
    prepared = model._prepare(x)
    assert tuple(prepared.shape) == (2, 3, 299, 299)
    np.testing.assert_array_equal(prepared.numpy(),
                                  model._prepare(x.expand(-1, 3, -1, -1)).numpy())
    # Scaling: 0 -> -1, 1 -> 1 (a constant image stays constant under bilinear resizing).
    np.testing.assert_allclose(model._prepare(autodiff.zeros(1, 3, 8, 8)).numpy(), -1.0,
                               atol=1e-15)
    np.testing.assert_allclose(model._prepare(autodiff.ones(1, 3, 8, 8)).numpy(), 1.0,
                               atol=1e-15)
    # 299x299 input is not resampled.
    y = autodiff.rand(1, 3, 299, 299)
    np.testing.assert_array_equal(model._prepare(y).numpy(), 2 * y.numpy() - 1)


@pytest.mark.parametrize("shape, message", [
    ((2, 4, 32, 32), r"\(N, 3, H, W\).*got shape \(2, 4, 32, 32\)"),
    ((3, 32, 32), r"got shape \(3, 32, 32\)"),
])
def test_bad_shapes_named(model, shape, message):
    with pytest.raises(ValueError, match=message):
        model.features(autodiff.rand(*shape))


def test_unscaled_8bit_images_rejected(model):
    images = np.zeros((1, 3, 8, 8))
    images[0, 0, 0, 0] = 255.0
    with pytest.raises(ValueError, match=r"\[0, 1\], got values in \[0, 255\].*by 255"):
        model.features(autodiff.tensor(images))


def test_too_small_without_resize():
    m = FIDInceptionV3(resize_input=False)
    with pytest.raises(ValueError, match="at least 75x75, got \\(74, 80\\)"):
        m.features(autodiff.rand(1, 3, 74, 80))


def test_float32_end_to_end_with_host_array_input():
    autodiff.set_default_dtype("float32")
    m = FIDInceptionV3(resize_input=False)
    x = np.random.default_rng(0).random((1, 3, 75, 75))      # float64 host array
    feats, logits = m(x)
    assert feats.dtype == autodiff.float32 and logits.dtype == autodiff.float32
    assert tuple(feats.shape) == (1, 2048) and tuple(logits.shape) == (1, 1008)
    assert np.isfinite(feats.numpy()).all() and (feats.numpy() >= 0).all()   # after ReLU
    np.testing.assert_allclose(m.fc(feats).numpy(), logits.numpy(), rtol=1e-6)
