"""conv1d/conv2d/conv_transpose1d/conv_transpose2d against torch.nn.functional in float64:
forward, input/weight/bias gradients, and a second derivative (1e-10 relative)."""
import numpy as np  # host-side random inputs
import pytest

import autodiff
from autodiff.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

# torch warns that its own 'same' padding with even kernels copies the input: not our concern.
pytestmark = [pytest.mark.crosscheck,
              pytest.mark.filterwarnings("ignore:Using padding='same'")]


def _run(ours_fn, torch_fn, shapes, seed=0):
    """Compare values and gradients of sum(out * gy), plus the derivative of <grad_x, v> in w."""
    torch = torch_or_skip()
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [autodiff.tensor(a, requires_grad=True) for a in arrays]
    theirs = [to_torch(a, requires_grad=True) for a in arrays]
    y, ty = ours_fn(*ours), torch_fn(*theirs)
    assert_close(y, ty, what="forward")
    gy = rng.standard_normal(y.shape)
    grads = autodiff.grad((y * autodiff.tensor(gy)).sum(), ours, create_graph=True)
    tgrads = torch.autograd.grad((ty * to_torch(gy)).sum(), theirs, create_graph=True)
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        assert_close(g, tg, what=f"gradient of input {i}")
    # Second order: d<grad_x, v>/d(weight) (WGAN-GP differentiates through exactly this).
    v = rng.standard_normal(arrays[0].shape)
    (h,) = autodiff.grad((grads[0] * autodiff.tensor(v)).sum(), [ours[1]])
    (th,) = torch.autograd.grad((tgrads[0] * to_torch(v)).sum(), [theirs[1]])
    assert_close(h, th, what="second derivative")


CONV2D_GRID = [
    # x shape, weight shape, kwargs
    ((2, 3, 7, 6), (4, 3, 3, 3), dict()),
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 3), padding=(0, 2), dilation=(2, 1), groups=2)),
    ((2, 2, 5, 6), (3, 2, 2, 4), dict(padding="same", dilation=(1, 2))),
    ((2, 2, 5, 6), (3, 2, 3, 3), dict(padding="valid")),
    ((2, 6, 5, 5), (6, 1, 3, 3), dict(padding=1, groups=6)),          # depthwise
    ((2, 3, 6, 6), (5, 3, 1, 1), dict()),                              # 1x1
    ((3, 2, 11, 10), (4, 2, 3, 3), dict(stride=3, padding=2, dilation=2)),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs, ws, kw", CONV2D_GRID)
def test_conv2d_matches_torch(xs, ws, kw, bias):
    torch = torch_or_skip()
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    _run(lambda x, w, *b: conv2d(x, w, *b, **kw),
         lambda x, w, *b: torch.nn.functional.conv2d(x, w, *b, **kw), shapes)


CONVT_GRID = [
    ((2, 3, 4, 5), (3, 4, 3, 3), dict()),
    ((2, 3, 4, 5), (3, 4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((1, 4, 3, 4), (4, 3, 3, 2), dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2),
                                      dilation=(2, 1), groups=2)),
    ((2, 2, 4, 4), (2, 3, 3, 3), dict(stride=1, padding=1, output_padding=1, dilation=2)),
    ((2, 4, 3, 3), (4, 1, 4, 4), dict(stride=2, padding=1, groups=4)),
    ((2, 2, 3, 3), (2, 2, 2, 2), dict(stride=2)),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs, ws, kw", CONVT_GRID)
def test_conv_transpose2d_matches_torch(xs, ws, kw, bias):
    torch = torch_or_skip()
    shapes = [xs, ws] + ([(ws[1] * kw.get("groups", 1),)] if bias else [])
    _run(lambda x, w, *b: conv_transpose2d(x, w, *b, **kw),
         lambda x, w, *b: torch.nn.functional.conv_transpose2d(x, w, *b, **kw), shapes)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=2, groups=2),
                                dict(padding="same"), dict(padding="valid", stride=3)])
def test_conv1d_matches_torch(kw):
    torch = torch_or_skip()
    g = kw.get("groups", 1)
    _run(lambda x, w, b: conv1d(x, w, b, **kw),
         lambda x, w, b: torch.nn.functional.conv1d(x, w, b, **kw),
         [(2, 4, 11), (6, 4 // g, 3), (6,)])


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1),
                                dict(stride=3, dilation=2, groups=2)])
def test_conv_transpose1d_matches_torch(kw):
    torch = torch_or_skip()
    g = kw.get("groups", 1)
    _run(lambda x, w, b: conv_transpose1d(x, w, b, **kw),
         lambda x, w, b: torch.nn.functional.conv_transpose1d(x, w, b, **kw),
         [(2, 4, 6), (4, 3, 3), (3 * g,)])
