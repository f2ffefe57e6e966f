"""MLP backbone: shapes, conditioning, residual connections, errors, gradients."""
import numpy as np  # host-side: comparisons
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff.checks import gradcheck
from refgen.backbones.mlp import MLP, ACTIVATIONS, make_activation


@given(batch=st.integers(1, 3), d_in=st.integers(1, 4), d_out=st.integers(1, 3),
       depth=st.integers(0, 3), cond=st.integers(0, 2), residual=st.booleans(),
       layer_norm=st.booleans())
def test_shapes(batch, d_in, d_out, depth, cond, residual, layer_norm):
    net = MLP(d_in, d_out, hidden=5, depth=depth, cond_features=cond, residual=residual,
              layer_norm=layer_norm)
    x = autodiff.randn(batch, d_in)
    c = autodiff.randn(batch, cond) if cond else None
    assert net(x, c).shape == (batch, d_out)
    assert len(net.layers) == depth


def test_extra_leading_dims_and_sequence_widths():
    net = MLP(3, 2, hidden=(4, 6, 6), depth=None, cond_features=1)
    y = net(autodiff.randn(2, 5, 3), autodiff.randn(2, 5, 1))
    assert y.shape == (2, 5, 2)
    assert [tuple(l.weight.shape) for l in net.layers] == [(4, 4), (6, 4), (6, 6)]


def test_state_dict_names():
    net = MLP(3, 2, hidden=4, depth=2, layer_norm=True)
    assert list(net.state_dict()) == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
        "norms.0.weight", "norms.0.bias", "norms.1.weight", "norms.1.bias",
        "out.weight", "out.bias"]
    assert net.num_parameters() == (3 * 4 + 4) + (4 * 4 + 4) + 4 * 4 + (4 * 2 + 2)


def test_condition_is_concatenated_after_x():
    net = MLP(2, 3, hidden=4, depth=1, cond_features=2)
    x, c = autodiff.randn(5, 2), autodiff.randn(5, 2)
    w = net.layers[0].weight
    first = x @ w[:, :2].T + c @ w[:, 2:].T + net.layers[0].bias
    expected = net.out(net.act(first))
    np.testing.assert_allclose(net(x, c).numpy(), expected.numpy(), rtol=1e-13)


def test_residual_adds_skip_between_equal_widths():
    """With the skip, a_2 = a_1 + relu(W a_1 + b); without, a_2 = relu(W a_1 + b)."""
    autodiff.manual_seed(3)
    res = MLP(3, 2, hidden=(4, 4, 6), depth=None, residual=True)
    plain = MLP(3, 2, hidden=(4, 4, 6), depth=None, residual=False)
    plain.load_state_dict(res.state_dict())
    x = autodiff.randn(7, 3)
    a1 = res.act(res.layers[0](x))
    a2 = a1 + res.act(res.layers[1](a1))
    a3 = res.act(res.layers[2](a2))  # widths differ: no skip
    np.testing.assert_allclose(res(x).numpy(), res.out(a3).numpy(), rtol=1e-13)
    assert not np.allclose(res(x).numpy(), plain(x).numpy())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_gradcheck(name):
    autodiff.manual_seed(1)
    net = MLP(3, 2, hidden=4, depth=2, activation=name, residual=True, layer_norm=True,
              cond_features=1)
    x = autodiff.randn(4, 3, requires_grad=True)
    c = autodiff.randn(4, 1, requires_grad=True)
    # second order skipped for relu-like kinks only where the function is piecewise linear
    assert gradcheck(lambda x, c: net(x, c), [x, c],
                     second_order=name not in ("relu", "leaky_relu"))


def test_dropout_train_and_eval():
    net = MLP(3, 2, hidden=64, depth=2, dropout=0.5)
    x = autodiff.randn(8, 3)
    net.eval()
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())
    net.train()
    assert not np.allclose(net(x).numpy(), net(x).numpy())


def test_errors():
    with pytest.raises(ValueError, match="unknown activation 'swish'; known: elu, gelu"):
        MLP(2, 2, activation="swish")
    with pytest.raises(ValueError, match="negative_slope applies to 'leaky_relu' only"):
        make_activation("relu", negative_slope=0.2)
    assert make_activation("leaky_relu", 0.2).negative_slope == 0.2
    with pytest.raises(ValueError, match="depth=3 disagrees"):
        MLP(2, 2, hidden=(4, 4), depth=3)
    with pytest.raises(ValueError, match="dropout"):
        MLP(2, 2, dropout=1.0)
    net = MLP(3, 2, cond_features=2)
    with pytest.raises(ValueError, match=r"x must be \(\*, 3\), got shape \(4, 2\)"):
        net(autodiff.randn(4, 2), autodiff.randn(4, 2))
    with pytest.raises(ValueError, match="the condition c"):
        net(autodiff.randn(4, 3))
    with pytest.raises(ValueError, match=r"c must be \(4, 2\).*got shape \(3, 2\)"):
        net(autodiff.randn(4, 3), autodiff.randn(3, 2))
    with pytest.raises(ValueError, match="cond_features=0"):
        MLP(3, 2)(autodiff.randn(4, 3), autodiff.randn(4, 1))
    with pytest.raises(TypeError, match="x must be a Tensor"):
        MLP(3, 2)(np.zeros((4, 3)))
