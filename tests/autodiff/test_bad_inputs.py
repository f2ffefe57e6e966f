"""Bad input to the engine's constructors and functions gets a clear error naming the
function, the argument and the value (PyTorch's checks are the floor), or, where PyTorch
warns, a warning naming both shapes. Each case below was accepted silently or failed
with a message naming neither before issue 8."""
import warnings

import numpy as np  # host-side: test data
import pytest

import autodiff
import autodiff.functional as F
from autodiff import nn, optim


@pytest.mark.parametrize("make, words", [
    (lambda: nn.Linear("2", 3), ["Linear", "in_features", "'2'", "str"]),
    (lambda: nn.Linear(2, 3.0), ["Linear", "out_features", "3.0", "float"]),
    (lambda: nn.Linear(True, 3), ["Linear", "in_features", "True"]),
    (lambda: nn.Conv2d(1, 2, "3"), ["Conv2d", "kernel_size", "'3'"]),
    (lambda: nn.Conv2d(1, 2, (3, 2.5)), ["Conv2d", "kernel_size", "2.5"]),
    (lambda: nn.Embedding(10.0, 3), ["Embedding", "num_embeddings", "10.0"]),
    (lambda: nn.LayerNorm(["4"]), ["LayerNorm", "normalized_shape", "'4'"]),
    (lambda: nn.GroupNorm("2", 4), ["GroupNorm", "num_groups", "'2'"]),
    (lambda: nn.BatchNorm1d(None), ["BatchNorm1d", "num_features", "None"]),
    (lambda: nn.MultiheadAttention(8, "2"), ["MultiheadAttention", "num_heads", "'2'"]),
    (lambda: optim.Adam(nn.Linear(2, 3).parameters(), lr="0.01"), ["Adam", "lr", "'0.01'"]),
    (lambda: optim.AdamW(nn.Linear(2, 3).parameters(), betas=(0.9, "0.99")),
     ["AdamW", "betas[1]", "'0.99'"]),
    (lambda: optim.SGD(nn.Linear(2, 3).parameters(), lr=None), ["SGD", "lr", "None"]),
    (lambda: optim.SGD(nn.Linear(2, 3).parameters(), lr=0.1, momentum="0.9"),
     ["SGD", "momentum", "'0.9'"]),
])
def test_wrong_type_is_a_type_error_naming_owner_argument_and_value(make, words):
    with pytest.raises(TypeError) as info:
        make()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_negative_sizes_and_nan_rates_are_value_errors():
    with pytest.raises(ValueError, match="Linear: out_features must be >= 0, got -3"):
        nn.Linear(2, -3)
    with pytest.raises(ValueError, match="SGD: invalid learning rate: nan"):
        optim.SGD(nn.Linear(2, 3).parameters(), lr=float("nan"))


def test_integer_like_sizes_are_still_accepted():
    layer = nn.Linear(np.int64(2), 3)
    assert layer.in_features == 2 and type(layer.in_features) is int
    assert nn.Conv2d(1, 2, (np.int32(3), 3)).kernel_size == (3, 3)


@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss])
def test_regression_loss_warns_when_the_target_broadcasts(loss):
    """(N, 1) against (N,) becomes an (N, N) loss: PyTorch warns, naming both shapes."""
    x, y = autodiff.randn(5, 1), autodiff.randn(5)
    with pytest.warns(UserWarning, match=r"target of shape \(5,\) differs from input of shape "
                                         r"\(5, 1\).*broadcast to \(5, 5\)"):
        out = loss(x, y, reduction="none")
    assert out.shape == (5, 5)   # still computed as broadcast, as PyTorch does
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # same shapes: no warning
        loss(x, autodiff.randn(5, 1))


@pytest.mark.parametrize("fn, args", [
    (F.linear, lambda x32: (x32, autodiff.randn(3, 4))),
    (F.linear, lambda x32: (x32, autodiff.randn(3, 4).float(), autodiff.randn(3))),
    (F.layer_norm, lambda x32: (x32, (4,), autodiff.randn(4))),
    (F.layer_norm, lambda x32: (x32, (4,), None, autodiff.randn(4))),
])
def test_float64_parameter_with_float32_input_is_refused(fn, args):
    """PyTorch refuses mixed dtypes here; promoting would make a float32 network float64."""
    x32 = autodiff.randn(2, 4).float()
    with pytest.raises(TypeError, match=r"(weight|bias) has dtype float64 but input has dtype "
                                        r"float32"):
        fn(*args(x32))
    assert autodiff.get_default_dtype() == np.float64   # the parameters above were float64


def test_same_dtype_linear_and_layer_norm_still_work():
    x = autodiff.randn(2, 4).float()
    w = autodiff.randn(3, 4).float()
    assert F.linear(x, w).dtype == np.float32
    assert F.layer_norm(x, (4,), autodiff.ones(4).float()).dtype == np.float32


# --------------------------------------------------------------------------- systematic pass
# Every size/count argument of every nn layer, found by introspection: a valid call, then
# the same call with that one argument replaced by a str, a float and a bool. The error must
# be a TypeError naming the layer and the argument. (Padding also takes 'same'/'valid'.)
_SIZE_ARGS = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size",
              "stride", "padding", "dilation", "groups", "num_features", "num_embeddings",
              "embedding_dim", "num_groups", "num_channels", "embed_dim", "num_heads", "kdim",
              "vdim", "normalized_shape")
_VALID = {"in_features": 4, "out_features": 3, "in_channels": 2, "out_channels": 2,
          "kernel_size": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 1,
          "num_features": 4, "num_embeddings": 5, "embedding_dim": 3, "num_groups": 2,
          "num_channels": 4, "embed_dim": 8, "num_heads": 2, "kdim": 8, "vdim": 8,
          "normalized_shape": 4}


def _layer_size_cases():
    import inspect
    cases = []
    for name in sorted(dir(nn)):
        cls = getattr(nn, name)
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            continue
        params = list(inspect.signature(cls.__init__).parameters)
        sizes = [p for p in params if p in _SIZE_ARGS]
        if sizes:
            required = [p for p, v in inspect.signature(cls.__init__).parameters.items()
                        if p != "self" and v.default is inspect.Parameter.empty]
            cases += [(cls, required, sizes, arg) for arg in sizes]
    return cases


@pytest.mark.parametrize("cls, required, sizes, arg", _layer_size_cases(),
                         ids=lambda v: v.__name__ if isinstance(v, type) else
                         (v if isinstance(v, str) else None))
@pytest.mark.parametrize("bad", ["2", 2.5, True])
def test_every_layer_size_argument_refuses_a_non_integer(cls, required, sizes, arg, bad):
    kwargs = {p: _VALID[p] for p in sizes if p in required or p == arg}
    cls(**kwargs)   # the valid call works
    kwargs[arg] = bad
    # padding also takes the strings 'same'/'valid': another string is a ValueError (PyTorch's)
    error = (TypeError, ValueError) if arg == "padding" and bad == "2" else TypeError
    with pytest.raises(error) as info:
        cls(**kwargs)
    assert cls.__name__ in str(info.value) and arg in str(info.value), str(info.value)
