"""MADE: the shared masks (refgen.families.common.made) and the ``made`` family.

The autoregressive property is checked by gradients (as pytorch-made does): for every mask
set, d out[:, p, i] / d x_j is exactly 0 unless x_j comes before x_i in the ordering, and the
condition reaches every output.
"""
import itertools
import math

import numpy as np
import pytest

import autodiff
from autodiff import backend as B
from refgen.families.common import made as M


def _jacobian_x(net, x, cond=None):
    """J[p, i, j] = d out[0, p, i] / d x[0, j] for one example (float64), and the same for
    the condition (or None)."""
    x = autodiff.Tensor(x.data.copy(), requires_grad=True)
    inputs = [x] if cond is None else [x, autodiff.Tensor(cond.data.copy(), requires_grad=True)]
    out = net(*inputs)
    P, D = out.shape[1], out.shape[2]
    J = np.zeros((P, D, D))
    Jc = None if cond is None else np.zeros((P, D, cond.shape[1]))
    for p in range(P):
        for i in range(D):
            grads = autodiff.grad(out[0, p, i], inputs, allow_unused=True)
            J[p, i] = B.to_numpy(grads[0].data)[0] if grads[0] is not None else 0.0
            if cond is not None:
                Jc[p, i] = B.to_numpy(grads[1].data)[0] if grads[1] is not None else 0.0
    return J, Jc


ORDERINGS = ["natural", "reversed", "random", [2, 0, 4, 1, 3]]


@pytest.mark.parametrize("ordering", ORDERINGS, ids=str)
@pytest.mark.parametrize("hidden_degrees", ["random", "sequential"])
def test_autoregressive_property_by_gradients(ordering, hidden_degrees):
    D, P = 5, 2
    net = M.MADE(D, (12, 12), outputs_per_dim=P, cond_dim=3, ordering=ordering,
                 hidden_degrees=hidden_degrees, num_masks=4, seed=3)
    x, c = autodiff.randn(1, D), autodiff.randn(1, 3)
    for k in range(net.num_masks):
        net.set_mask(k)
        J, Jc = _jacobian_x(net, x, c)
        deg = B.to_numpy(net.input_degrees)
        before = deg[None, :] < deg[:, None]           # before[i, j]: x_j precedes x_i
        assert np.all(J[:, ~before] == 0.0), f"mask {k}: an output sees a later input"
        # the first dimension in the ordering depends on no input at all
        first = int(B.to_numpy(net.order)[0])
        assert np.all(J[:, first, :] == 0.0)
        # the condition reaches every output (it connects to every layer, unmasked)
        assert np.all(np.abs(Jc).sum(axis=2) > 0)
        # and the mask is not trivially empty: most allowed connections are present
        assert (J[:, before] != 0).mean() > 0.5


def test_masks_follow_equations_12_13():
    degrees = [B.xp.asarray([2, 3, 1]), B.xp.asarray([1, 2, 2, 1])]
    hidden, out = [B.to_numpy(m) for m in M.create_masks(degrees)]
    # M^W[k, k'] = 1[m^1(k) >= m^0(k')]
    assert np.array_equal(hidden, np.array([[0, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 1]],
                                           dtype=bool))
    # M^V[d, k] = 1[m^0(d) > m^1(k)]
    assert np.array_equal(out, np.array([[1, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]],
                                        dtype=bool))


def test_degrees_ranges_and_seeding():
    D = 7
    deg = M.create_degrees(D, (50, 40), ordering="random", generator=autodiff.Generator(0))
    assert sorted(B.to_numpy(deg[0]).tolist()) == list(range(1, D + 1))
    for prev, cur in zip(deg[:-1], deg[1:]):
        cur = B.to_numpy(cur)
        assert cur.min() >= B.to_numpy(prev).min() and cur.max() <= D - 1
    again = M.create_degrees(D, (50, 40), ordering="random", generator=autodiff.Generator(0))
    assert all(np.array_equal(B.to_numpy(a), B.to_numpy(b)) for a, b in zip(deg, again))
    seq = B.to_numpy(M.hidden_degrees(12, B.xp.arange(1, D + 1), D, "sequential"))
    assert np.bincount(seq, minlength=D)[1:].tolist() == [2] * (D - 1)
    # an explicit ordering: ordering[i] gets degree i + 1
    assert B.to_numpy(M.input_degrees(4, [3, 1, 0, 2])).tolist() == [3, 2, 4, 1]


def test_single_dimension_depends_on_nothing():
    net = M.MADE(1, (4,), outputs_per_dim=3)
    J, _ = _jacobian_x(net, autodiff.randn(1, 1))
    assert np.all(J == 0.0)


def test_no_hidden_layer_and_output_shape():
    net = M.MADE(4, (), outputs_per_dim=2, ordering="reversed")
    x = autodiff.randn(6, 4)
    assert net(x).shape == (6, 2, 4)
    J, _ = _jacobian_x(net, x[:1])
    deg = B.to_numpy(net.input_degrees)
    assert np.all(J[:, ~(deg[None, :] < deg[:, None])] == 0.0)


def test_masks_are_rebuilt_from_the_config_not_saved():
    net = M.MADE(5, (8,), num_masks=3, ordering="random", seed=4)
    assert not any("mask" in k for k in net.state_dict())
    net.set_mask(2)
    other = M.MADE(5, (8,), num_masks=3, ordering="random", seed=4).set_mask(2)
    assert np.array_equal(B.to_numpy(net.layers[0].mask.data),
                          B.to_numpy(other.layers[0].mask.data))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="ordering"):
        M.MADE(3, (4,), ordering="sideways")
    with pytest.raises(ValueError, match="permutation"):
        M.input_degrees(3, [0, 0, 1])
    with pytest.raises(ValueError, match="mask index"):
        M.MADE(3, (4,), num_masks=2).set_mask(2)
    net = M.MADE(3, (4,), cond_dim=2)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        net(autodiff.randn(2, 4), autodiff.randn(2, 2))
    with pytest.raises(ValueError, match="cond is None"):
        net(autodiff.randn(2, 3))
    with pytest.raises(ValueError, match="mask has shape"):
        M.MaskedLinear(3, 2).set_mask(B.xp.ones((3, 2)))
