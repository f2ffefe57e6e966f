"""spectral_norm: power iteration converges to the largest singular value, PyTorch's state_dict
layout, training/eval behaviour, gradients (sigma differentiable in W, u and v constants)."""
import copy
from types import SimpleNamespace

import numpy as np  # host-side: SVD reference and comparisons
import pytest
from hypothesis import given, strategies as st

import autodiff
from autodiff import nn
from autodiff.checks import gradcheck
from refgen.backbones.spectral_norm import spectral_norm, remove_spectral_norm, SpectralNorm


def top_singular_value(w, dim=0):
    m = np.moveaxis(w, dim, 0).reshape(w.shape[dim], -1)
    return np.linalg.svd(m, compute_uv=False)[0]


@given(h=st.integers(1, 6), w=st.integers(1, 6), seed=st.integers(0, 50))
def test_sigma_converges_to_largest_singular_value(h, w, seed):
    layer = spectral_norm(nn.Linear(w, h, generator=autodiff.Generator(seed)), n_power_iterations=5,
                          generator=autodiff.Generator(seed + 1))
    w0 = layer.weight_orig.numpy()
    x = autodiff.randn(2, w)
    for _ in range(200):
        layer(x)
    sv = np.linalg.svd(w0, compute_uv=False)
    # power iteration converges at rate (s2/s1)^k; skip near-degenerate top singular values
    if len(sv) == 1 or sv[1] / sv[0] < 0.9:
        fn = layer._spectral_norms["weight"]
        np.testing.assert_allclose(fn.sigma(layer), sv[0], rtol=1e-8)
        np.testing.assert_allclose(top_singular_value(layer.weight.numpy()), 1.0, rtol=1e-8)
    np.testing.assert_array_equal(layer.weight_orig.numpy(), w0)  # the parameter is untouched


@pytest.mark.parametrize("make,dim", [
    (lambda: nn.Conv2d(3, 5, 3), 0),
    (lambda: nn.ConvTranspose2d(3, 5, 4, 2, 1), 1),
    (lambda: nn.Linear(4, 7), 0),
])
def test_conv_layers_normalised_along_output_dim(make, dim):
    layer = spectral_norm(make(), n_power_iterations=3)
    fn = layer._spectral_norms["weight"]
    assert fn.dim == dim
    assert layer.weight_u.shape == (layer.weight_orig.shape[dim],)
    x = autodiff.randn(2, 3, 6, 6) if not isinstance(layer, nn.Linear) else autodiff.randn(2, 4)
    for _ in range(100):
        layer(x)
    np.testing.assert_allclose(top_singular_value(layer.weight.numpy(), dim), 1.0, rtol=1e-6)


def test_state_dict_names_match_torch_layout():
    layer = spectral_norm(nn.Conv2d(2, 3, 3))
    assert list(layer.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert [n for n, _ in layer.named_parameters()] == ["bias", "weight_orig"]
    assert layer.weight_u.shape == (3,) and layer.weight_v.shape == (18,)
    np.testing.assert_allclose(np.linalg.norm(layer.weight_u.numpy()), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(layer.weight_v.numpy()), 1.0, rtol=1e-14)
    # a round trip through the state dict reproduces the outputs
    other = spectral_norm(nn.Conv2d(2, 3, 3)).eval()
    other.load_state_dict(layer.state_dict())
    layer.eval()
    x = autodiff.randn(1, 2, 5, 5)
    np.testing.assert_array_equal(layer(x).numpy(), other(x).numpy())


def test_power_iteration_only_in_training():
    layer = spectral_norm(nn.Linear(4, 3))
    x = autodiff.randn(2, 4)
    u0 = layer.weight_u.numpy().copy()
    layer.eval()
    layer(x)
    np.testing.assert_array_equal(layer.weight_u.numpy(), u0)
    layer.train()
    layer(x)
    assert not np.array_equal(layer.weight_u.numpy(), u0)


def test_eval_output_is_weight_over_sigma():
    layer = spectral_norm(nn.Linear(4, 3)).eval()
    x = autodiff.randn(5, 4)
    u, v, w = layer.weight_u.numpy(), layer.weight_v.numpy(), layer.weight_orig.numpy()
    sigma = u @ w @ v
    expected = x.numpy() @ (w / sigma).T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-13)


def test_gradient_treats_u_v_as_constants():
    """d/dW sum(G * W/sigma) with sigma = u^T W v: (G - <G, W> / sigma * u v^T) / sigma."""
    w = autodiff.randn(3, 4, requires_grad=True)
    u = autodiff.tensor(np.linalg.qr(np.random.default_rng(0).standard_normal((3, 1)))[0][:, 0])
    v = autodiff.tensor(np.linalg.qr(np.random.default_rng(1).standard_normal((4, 1)))[0][:, 0])
    fn = SpectralNorm()
    g = np.random.default_rng(2).standard_normal((3, 4))
    out = fn.compute_weight(SimpleNamespace(weight_orig=w, weight_u=u, weight_v=v), False)
    (out * autodiff.tensor(g)).sum().backward()
    W, U, V = w.numpy(), u.numpy(), v.numpy()
    sigma = U @ W @ V
    expected = (g - (g * W).sum() / sigma * np.outer(U, V)) / sigma
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda w: fn.compute_weight(
        SimpleNamespace(weight_orig=w, weight_u=u, weight_v=v), False), [w])


def test_gradcheck_through_normalised_conv_input():
    layer = spectral_norm(nn.Conv2d(2, 3, 3, padding=1)).eval()
    x = autodiff.randn(1, 2, 4, 4, requires_grad=True)
    assert gradcheck(layer, [x])


def test_deepcopy_and_remove():
    layer = spectral_norm(nn.Linear(4, 3))
    twin = copy.deepcopy(layer)
    x = autodiff.randn(2, 4)
    np.testing.assert_array_equal(layer(x).numpy(), twin(x).numpy())
    np.testing.assert_array_equal(layer.weight_u.numpy(), twin.weight_u.numpy())
    assert twin.weight_orig is not layer.weight_orig
    layer.eval()
    y = layer(x).numpy()
    remove_spectral_norm(layer)
    assert list(layer.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(layer(x).numpy(), y, rtol=1e-14)
    assert isinstance(layer.weight, nn.Parameter)


def test_errors():
    layer = spectral_norm(nn.Linear(4, 3))
    with pytest.raises(RuntimeError, match="two spectral_norm hooks on the same parameter weight"):
        spectral_norm(layer)
    with pytest.raises(ValueError, match="has no parameter 'kernel'.*parameters: weight, bias"):
        spectral_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match="n_power_iterations must be a positive int"):
        spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        spectral_norm(nn.Linear(2, 2), dim=2)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        remove_spectral_norm(nn.Linear(2, 2))
