"""One policy for samples slightly outside [0, 1], the same for every network extractor:
values in [-0.5, 1.5] are clipped to [0, 1] (scored as the image they would be saved as),
values beyond are refused. The Inception extractor used to refuse 1.01, which the
classifier extractors accepted unchanged."""
import numpy as np  # host-side: test images
import pytest

import autodiff
from refgen.data import load_dataset
from refgen.metrics import FIDInceptionV3
from refgen.metrics.extractors import InceptionExtractor, get_extractor


def _digits():
    from autodiff import backend as B
    return np.array(B.to_numpy(load_dataset("digits", split="val").x[:4]))   # host copy


def _slightly_outside(x):
    """x with some pixels pushed a little past both ends of [0, 1]."""
    y = x.copy()
    y[0, 0, 0, :2] = [1.01, -0.02]
    y[1, 0, 3, 3] = 1.2
    return y


def test_classifier_extractor_scores_the_clipped_image():
    ext = get_extractor("digits-classifier")
    x = _digits()
    y = _slightly_outside(x)
    np.testing.assert_array_equal(ext.features(y), ext.features(np.clip(y, 0, 1)))
    assert not np.array_equal(ext.features(y), ext.features(x))   # the change is seen


def test_inception_extractor_accepts_and_clips_like_the_classifiers():
    autodiff.manual_seed(0)
    ext = InceptionExtractor(FIDInceptionV3(), batch_size=2)     # random weights suffice
    y = _slightly_outside(_digits()[:2])
    np.testing.assert_array_equal(ext.features(y), ext.features(np.clip(y, 0, 1)))


@pytest.mark.parametrize("bad", [1.6, -0.6])
def test_far_outside_is_refused_by_every_network_extractor(bad):
    y = _digits()[:2].copy()
    y[0, 0, 0, 0] = bad
    for ext in (get_extractor("digits-classifier"),
                InceptionExtractor(FIDInceptionV3(), batch_size=2)):
        with pytest.raises(ValueError, match=r"takes images in \[0, 1\]"):
            ext.features(y)
