"""The family interface's derived numbers: bits/dim conventions, evaluate, option checks."""
import math

import numpy as np  # host-side: expected values
import pytest

import autodiff
from autodiff import backend as B
from refgen.data import load_dataset
from refgen.families.base import (KINDS, LIKELIHOOD_KINDS, GenerativeModel,
                                  check_sample_options, data_info_for_config)
from refgen.families.likelihood import has_likelihood, model_bits_per_dim


class _UniformCube(GenerativeModel):
    """p(x) = 1 on the unit cube: a density of continuous data, log p = 0 inside."""

    kind, likelihood_kind = "flow", "exact"

    def log_prob(self, x, cond=None):
        inside = ((x.data >= 0) & (x.data <= 1)).all(axis=tuple(range(1, x.ndim)))
        return autodiff.Tensor(B.xp.where(inside, 0.0, -B.xp.inf))


class _FairCoins(GenerativeModel):
    """P(k) = 2^-D over binary images: a probability mass, exactly 1 bit per dimension."""

    kind, likelihood_kind, discrete = "autoregressive", "exact", True

    def log_prob(self, x, cond=None):
        return autodiff.Tensor(B.xp.full((x.shape[0],), -self.num_dims * math.log(2.0)))


class _NoLikelihood(GenerativeModel):
    kind = "gan"


def _digits_info():
    return data_info_for_config(load_dataset("digits", split="val").info)


def test_uniform_density_on_dequantized_levels_costs_log2_levels_bits():
    # log p(x') = 0 on [0, 1]^D for x' = (k + u)/L: bpd = -(0 + D log(1/L)) / (D log 2)
    model = _UniformCube({"data_info": _digits_info()})
    data = load_dataset("digits", split="val")
    bpd = model.bits_per_dim(data.x[:10], generator=autodiff.Generator(0))
    np.testing.assert_allclose(B.to_numpy(bpd), math.log2(17), rtol=1e-14)
    assert "log2(17)" in model.bpd_convention and "upper bound" in model.bpd_convention
    numbers = model.evaluate(data)
    assert numbers["bpd"] == pytest.approx(math.log2(17), rel=1e-14)
    assert numbers["nll"] == pytest.approx(64 * math.log(17), rel=1e-14)
    assert model_bits_per_dim(model, data)[0] == pytest.approx(math.log2(17), rel=1e-14)


def test_dequantized_values_stay_in_their_own_bin():
    model = _UniformCube({"data_info": _digits_info()})
    x = load_dataset("digits", split="val").x[:50]
    k = B.to_numpy(x) * 16
    xq = B.to_numpy(model.dequantize(x, autodiff.Generator(3))) * 17
    assert np.all(np.floor(xq) == np.round(k)) and np.all(xq < np.round(k) + 1)


def test_probability_mass_has_no_offset():
    model = _FairCoins({"data_info": _digits_info()})
    x = load_dataset("digits", split="val").x[:7]
    np.testing.assert_allclose(B.to_numpy(model.bits_per_dim(x)), 1.0, rtol=1e-14)
    assert "no dequantization" in model.bpd_convention


def test_points_are_continuous_without_offset():
    info = data_info_for_config(load_dataset("ring8", split="val", n=10).info)
    model = _UniformCube({"data_info": info})
    assert model.levels is None and model.example_shape == (2,)
    x = autodiff.Tensor(B.xp.full((4, 2), 0.5))
    np.testing.assert_allclose(B.to_numpy(model.bits_per_dim(x)), 0.0, atol=0)


def test_a_model_without_likelihood_says_so():
    model = _NoLikelihood({"data_info": _digits_info()})
    assert not has_likelihood(model) and model.bpd_convention is None
    assert model.evaluate(load_dataset("digits", split="val")) == {}
    with pytest.raises(NotImplementedError, match="no likelihood"):
        model.log_prob(autodiff.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="likelihood_kind 'none'"):
        model_bits_per_dim(model, load_dataset("digits", split="val"))


def test_vocabulary_and_option_checks():
    assert len(KINDS) == 7 and set(LIKELIHOOD_KINDS) == {"exact", "bound", "estimate", "ode",
                                                         "none"}
    check_sample_options("ddpm", {"steps": 10, "guidance": None}, ("steps",))
    with pytest.raises(ValueError, match="unknown option.*guidance.*takes: steps"):
        check_sample_options("ddpm", {"steps": 10, "guidance": 2.0}, ("steps",))
    with pytest.raises(ValueError, match="shape"):
        data_info_for_config({"kind": "image"})
