"""KID's spread over subsets is undefined when every subset is the whole set (both sets
of the subset size): it is NaN in ``kid`` and 'undefined' in the report, not the rounding
noise (1e-13) it used to print."""
import math

import numpy as np  # host-side: features
import pytest

import autodiff
from refgen.metrics import format_report, kid


def _features(n, seed, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, 8)) + shift


def test_kid_std_is_nan_when_subsets_are_the_whole_sets():
    real, fake = _features(300, 0), _features(300, 1, 0.5)
    whole = kid(real, fake, num_subsets=5, subset_size=1000)
    assert whole.subset_size == 300 and math.isnan(whole.std)
    part = kid(real, fake, num_subsets=5, subset_size=100)
    assert part.std > 0 and np.isfinite(part.std)
    # one side larger: subsets of the larger set still vary, so the spread is defined
    assert kid(real, _features(400, 2, 0.5), num_subsets=5, subset_size=1000).std > 0
    assert whole.mean == pytest.approx(kid(real, fake, num_subsets=1, subset_size=300).mean,
                                       rel=1e-12)


def test_report_says_undefined_instead_of_a_number():
    from refgen.metrics.report import evaluate_samples   # noqa: F401 (the path the CLI takes)
    report = {"n_fake": 300, "n_real": 300, "real": "digits", "extractor": "e",
              "feature_dim": 8, "extractor_description": "d", "extractor_choice": "c",
              "metrics": ["kid"], "kid_mean": 0.01, "kid_std": None, "conventions": {}}
    text = format_report(report)
    text = text if isinstance(text, str) else "\n".join(text)
    assert "undefined (each subset is the whole set)" in text and "nan" not in text
