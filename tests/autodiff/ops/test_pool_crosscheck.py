"""Pooling and resampling against torch.nn.functional in float64: forward, input gradient
and returned indices (1e-10 relative). These maps are (piecewise) linear, so their second
derivatives are zero; their backward-of-backward is checked numerically in test_pool.py and
test_resample.py."""
import numpy as np  # host-side random inputs
import pytest

import autodiff
from autodiff.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from autodiff.ops.resample import interpolate, pixel_shuffle, pixel_unshuffle
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck


def _run(ours_fn, torch_fn, shape, seed=0, distinct=False):
    torch = torch_or_skip()
    rng = np.random.default_rng(seed)
    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 if distinct \
        else rng.standard_normal(shape)
    ours, theirs = autodiff.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
    y, ty = ours_fn(ours), torch_fn(theirs)
    if isinstance(y, tuple):
        np.testing.assert_array_equal(y[1].numpy(), ty[1].numpy(), err_msg="indices")
        y, ty = y[0], ty[0]
    assert_close(y, ty, what="forward")
    gy = rng.standard_normal(y.shape)
    (g,) = autodiff.grad((y * autodiff.tensor(gy)).sum(), [ours], create_graph=True)
    (tg,) = torch.autograd.grad((ty * to_torch(gy)).sum(), [theirs], create_graph=True)
    assert_close(g, tg, what="input gradient")


AVG = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True,
         count_include_pad=False),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
    dict(kernel_size=2, stride=3, ceil_mode=True),
    dict(kernel_size=2, divisor_override=3),
]


@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (3, 8, 9)])
@pytest.mark.parametrize("kw", AVG)
def test_avg_pool2d_matches_torch(kw, shape):
    torch = torch_or_skip()
    _run(lambda x: avg_pool2d(x, **kw), lambda x: torch.nn.functional.avg_pool2d(x, **kw), shape)


MAX = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), ceil_mode=True),
    dict(kernel_size=2, stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=1, padding=1),
]


@pytest.mark.parametrize("shape", [(2, 3, 9, 8), (3, 7, 7)])
@pytest.mark.parametrize("kw", MAX)
def test_max_pool2d_matches_torch_with_indices(kw, shape):
    torch = torch_or_skip()
    _run(lambda x: max_pool2d(x, return_indices=True, **kw),
         lambda x: torch.nn.functional.max_pool2d(x, return_indices=True, **kw), shape)


def test_max_pool2d_ties_match_torch():
    """Equal values in a window: the gradient goes where torch sends it (first maximum)."""
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(np.float64)
    ours, theirs = autodiff.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
    y, i = max_pool2d(ours, 3, 1, 1, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(theirs, 3, 1, 1, return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    y.sum().backward()
    ty.sum().backward()
    assert_close(ours.grad, theirs.grad, what="gradient at ties")


@pytest.mark.parametrize("size", [(1, 1), (3, 4), (2, 3), (5, 5), (None, 2), 4, (7, 6)])
def test_adaptive_avg_pool2d_matches_torch(size):
    torch = torch_or_skip()
    _run(lambda x: adaptive_avg_pool2d(x, size),
         lambda x: torch.nn.functional.adaptive_avg_pool2d(x, size), (2, 3, 7, 6))


INTERP = [
    dict(scale_factor=2, mode="nearest"),
    dict(scale_factor=3, mode="nearest"),
    dict(scale_factor=1.7, mode="nearest"),
    dict(scale_factor=(0.6, 2.5), mode="nearest"),
    dict(size=(9, 11), mode="nearest"),
    dict(size=(3, 2), mode="nearest"),
    dict(size=(82, 3), mode="nearest"),
    dict(size=(9, 11), mode="nearest-exact"),
    dict(scale_factor=1.3, mode="nearest-exact"),
    dict(scale_factor=2, mode="bilinear"),
    dict(scale_factor=2, mode="bilinear", align_corners=True),
    dict(scale_factor=1.3, mode="bilinear"),
    dict(scale_factor=(0.6, 2.5), mode="bilinear", align_corners=False),
    dict(size=(9, 11), mode="bilinear", align_corners=True),
    dict(size=(1, 3), mode="bilinear", align_corners=True),
    dict(size=(3, 2), mode="bilinear"),
    dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
    dict(scale_factor=1.7, mode="nearest", recompute_scale_factor=True),
    dict(size=(2, 3), mode="area"),
    dict(size=(3, 5), mode="area"),
]


@pytest.mark.parametrize("kw", INTERP)
def test_interpolate_matches_torch(kw):
    torch = torch_or_skip()
    _run(lambda x: interpolate(x, **kw), lambda x: torch.nn.functional.interpolate(x, **kw),
         (2, 2, 4, 7))


@pytest.mark.parametrize("shape, r", [((2, 8, 3, 4), 2), ((1, 18, 2, 2), 3), ((3, 2, 4, 1, 1), 1),
                                      ((2, 4, 12, 3, 2), 2)])
def test_pixel_shuffle_matches_torch(shape, r):
    torch = torch_or_skip()
    _run(lambda x: pixel_shuffle(x, r), lambda x: torch.nn.functional.pixel_shuffle(x, r), shape)


@pytest.mark.parametrize("shape, r", [((2, 3, 4, 6), 2), ((1, 2, 6, 3), 3), ((2, 2, 1, 4, 4), 2)])
def test_pixel_unshuffle_matches_torch(shape, r):
    torch = torch_or_skip()
    _run(lambda x: pixel_unshuffle(x, r), lambda x: torch.nn.functional.pixel_unshuffle(x, r),
         shape)
