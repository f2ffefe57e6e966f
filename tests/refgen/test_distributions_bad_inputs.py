"""Bernoulli.log_prob refuses values outside its support {0, 1} by default (it used to
return a number for 0.5 or 7), and evaluates the cross-entropy form on [0, 1] only when
asked with ``validate_args=False``."""
import numpy as np  # host-side: expected values
import pytest

import autodiff
from refgen import distributions as D


@pytest.mark.parametrize("bad", [0.5, 7.0, -1.0])
def test_bernoulli_log_prob_outside_support_is_refused(bad):
    d = D.Bernoulli(logits=autodiff.tensor([0.3, -1.0, 2.0]))
    with pytest.raises(ValueError, match=rf"Bernoulli.log_prob: value must be 0 or 1, got "
                                         rf"{bad!r} \(1 of 3 entries"):
        d.log_prob(autodiff.tensor([1.0, bad, 0.0]))


def test_bernoulli_grey_values_on_request_are_the_cross_entropy():
    logits = autodiff.tensor([0.3, -1.0])
    d = D.Bernoulli(logits=logits, validate_args=False)
    x = np.array([0.25, 0.5])
    p = 1 / (1 + np.exp(-logits.numpy()))
    np.testing.assert_allclose(d.log_prob(autodiff.tensor(x)).numpy(),
                               x * np.log(p) + (1 - x) * np.log1p(-p), rtol=1e-13)
    # and the support values still give the probabilities themselves
    np.testing.assert_allclose(np.exp(D.Bernoulli(logits=logits).log_prob(
        autodiff.tensor([1.0, 0.0])).numpy()), [p[0], 1 - p[1]], rtol=1e-13)
