"""Default initialisations: the moments and bounds of PyTorch's distributions.

Tolerances are Monte Carlo errors computed from the distribution: for U(-b, b),
E x^2 = b^2/3 and Var(x^2) = 4 b^4 / 45; for N(0, s^2), Var(x^2) = 2 s^4. We allow 5
standard errors of the sample mean and of the sample second moment (fixed seeds: deterministic).
"""
import math

import numpy as np  # host-side statistics of the drawn values
import pytest

import autodiff
import autodiff.nn as nn
from autodiff.nn import init


def assert_uniform(values, bound, what):
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    assert np.all(np.abs(x) <= bound), f"{what}: values outside [-{bound}, {bound}]"
    assert np.abs(x).max() > bound * (1 - 10.0 / n), f"{what}: support too narrow"
    assert abs(x.mean()) < 5 * bound / math.sqrt(3 * n), f"{what}: mean {x.mean()}"
    m2_se = math.sqrt(4 * bound ** 4 / 45 / n)
    assert abs((x ** 2).mean() - bound ** 2 / 3) < 5 * m2_se, f"{what}: second moment"


def assert_normal(values, std, what, mean=0.0):
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n), f"{what}: mean {x.mean()}"
    m2 = ((x - mean) ** 2).mean()
    assert abs(m2 - std ** 2) < 5 * math.sqrt(2 * std ** 4 / n), f"{what}: variance {m2}"


def test_linear_default_init():
    lin = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)  # kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), ...)
    assert_uniform(lin.weight.numpy(), bound, "Linear.weight")
    big_bias = nn.Linear(50, 20000).bias
    assert_uniform(big_bias.numpy(), bound, "Linear.bias")


@pytest.mark.parametrize("cls,args,fan_in", [
    (nn.Conv1d, (6, 64, 5), 6 * 5),
    (nn.Conv2d, (8, 64, 3), 8 * 9),
    (nn.Conv2d, (8, 64, (3, 2), 1, 0, 1, 4), 2 * 6),          # groups=4
    (nn.ConvTranspose2d, (8, 64, 3, 1, 0, 0, 2), 32 * 9),     # fan_in = out/groups * k*k
])
def test_conv_default_init(cls, args, fan_in):
    conv = cls(*args)
    bound = 1 / math.sqrt(fan_in)
    assert_uniform(conv.weight.numpy(), bound, f"{cls.__name__}.weight")
    assert np.all(np.abs(conv.bias.numpy()) <= bound)


def test_embedding_and_norm_inits():
    emb = nn.Embedding(500, 40, padding_idx=3)
    w = emb.weight.numpy()
    assert np.all(w[3] == 0)
    assert_normal(np.delete(w, 3, axis=0), 1.0, "Embedding.weight")
    for m in (nn.LayerNorm(5), nn.GroupNorm(1, 5), nn.BatchNorm2d(5)):
        np.testing.assert_array_equal(m.weight.numpy(), np.ones(5))
        np.testing.assert_array_equal(m.bias.numpy(), np.zeros(5))


def test_multihead_attention_init():
    mha = nn.MultiheadAttention(64, 4)
    assert_uniform(mha.in_proj_weight.numpy(), math.sqrt(6 / (64 + 192)), "in_proj_weight")
    assert np.all(mha.in_proj_bias.numpy() == 0) and np.all(mha.out_proj.bias.numpy() == 0)
    assert_uniform(mha.out_proj.weight.numpy(), 1 / math.sqrt(64), "out_proj.weight")


@pytest.mark.parametrize("fn,kwargs,std", [
    (init.kaiming_normal_, dict(), math.sqrt(2 / (1 + 0.0)) / math.sqrt(200)),
    (init.kaiming_normal_, dict(mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 300)),
    (init.xavier_normal_, dict(gain=2.0), 2.0 * math.sqrt(2 / 500)),
    (init.normal_, dict(mean=0.0, std=0.3), 0.3),
])
def test_normal_initialisers(fn, kwargs, std):
    w = autodiff.zeros(300, 200)
    assert fn(w, **kwargs) is w
    assert_normal(w.numpy(), std, fn.__name__)


@pytest.mark.parametrize("fn,kwargs,bound", [
    (init.kaiming_uniform_, dict(a=0.1), math.sqrt(3) * math.sqrt(2 / 1.01) / math.sqrt(200)),
    (init.xavier_uniform_, dict(), math.sqrt(6 / 500)),
    (init.uniform_, dict(a=-0.5, b=0.5), 0.5),
])
def test_uniform_initialisers(fn, kwargs, bound):
    w = autodiff.zeros(300, 200)
    fn(w, **kwargs)
    assert_uniform(w.numpy(), bound, fn.__name__)


def test_generator_reproducible_and_dtype_kept():
    a = nn.Linear(3, 4, generator=autodiff.Generator(5), dtype=autodiff.float32)
    b = nn.Linear(3, 4, generator=autodiff.Generator(5), dtype=autodiff.float32)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    assert a.weight.dtype == np.float32
    autodiff.manual_seed(1)
    c = nn.Linear(3, 4)
    autodiff.manual_seed(1)
    d = nn.Linear(3, 4)
    np.testing.assert_array_equal(c.weight.numpy(), d.weight.numpy())


def test_trunc_normal_and_constants():
    w = autodiff.zeros(20000)
    init.trunc_normal_(w, mean=0.0, std=1.0, a=-1.0, b=1.0)
    x = w.numpy()
    assert x.min() >= -1 and x.max() <= 1
    # variance of N(0,1) truncated to [-1, 1]: 1 - 2 phi(1) / (2 Phi(1) - 1)
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    var = 1 - 2 * phi / math.erf(1 / math.sqrt(2))
    assert abs(x.var() - var) < 0.01
    assert np.all(init.constant_(autodiff.zeros(3), 2.5).numpy() == 2.5)


def test_gain_and_fans():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_fan_in_and_fan_out(autodiff.zeros(4, 3, 2, 5)) == (30, 40)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(autodiff.zeros(5))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swishy")
