"""Cross-check tier: refgen's rational-quadratic spline equals nflows' (Durkan et al.'s own
library, pinned in the ``crosscheck`` extra) given the same unconstrained parameters, in
outputs and log-determinants, forward and inverse, inside the interval and in the linear
tails (float64)."""
import numpy as np  # host-side: comparisons
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
from refgen.families.flows import splines

torch = pytest.importorskip("torch")
rq = pytest.importorskip("nflows.transforms.splines.rational_quadratic")

pytestmark = pytest.mark.crosscheck


@pytest.mark.parametrize("inverse", [False, True])
@settings(max_examples=15)
@given(seed=st.integers(0, 2 ** 16), k=st.integers(2, 12), bound=st.floats(0.5, 5.0),
       scale=st.floats(0.1, 4.0))
def test_spline_equals_nflows(inverse, seed, k, bound, scale):
    rng = np.random.default_rng(seed)
    n = 64
    x = rng.uniform(-1.3 * bound, 1.3 * bound, size=n)     # about a quarter in the tails
    w, h = rng.normal(size=(n, k)) * scale, rng.normal(size=(n, k)) * scale
    d = rng.normal(size=(n, k - 1)) * scale
    ours, ours_ld = splines.rational_quadratic_spline(
        autodiff.Tensor(x), autodiff.Tensor(w), autodiff.Tensor(h), autodiff.Tensor(d),
        inverse=inverse, tail_bound=bound)
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    theirs, theirs_ld = rq.unconstrained_rational_quadratic_spline(
        t(x), t(w), t(h), t(d), inverse=inverse, tails="linear", tail_bound=bound,
        min_bin_width=1e-3, min_bin_height=1e-3, min_derivative=1e-3)
    # float64 rounding through a few dozen operations on values of size ~bound
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-11 * bound)
    np.testing.assert_allclose(ours_ld.numpy(), theirs_ld.numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("d", [2, 3, 5, 8])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_made_masks_equal_nflows_where_the_degree_rules_agree(d, p):
    """Natural ordering with sequential hidden degrees is the one rule both libraries share
    (nflows: arange(H) % max(1, D - 1) + min(1, D - 1); refgen: the cycle over [min, D - 1]).
    Hidden masks must be equal; the output masks too, up to the order of the P heads' rows
    (nflows repeats each dimension P times, refgen stacks P blocks of D)."""
    import nflows.transforms.made as nmade
    from refgen.families.common import made
    h = 7
    theirs = nmade.MADE(features=d, hidden_features=h, num_blocks=2, output_multiplier=p,
                        use_residual_blocks=False, random_mask=False)
    ours = made.create_masks(made.create_degrees(d, (h, h, h), ordering="natural",
                                                 hidden_method="sequential"))
    their_masks = [theirs.initial_layer.mask] + [b.linear.mask for b in theirs.blocks]
    for a, b in zip(ours[:-1], their_masks):
        np.testing.assert_array_equal(np.asarray(a, dtype=float), b.numpy())
    their_out = theirs.final_layer.mask.numpy()               # rows d * P + p
    our_out = np.tile(np.asarray(ours[-1], dtype=float), (p, 1))   # rows p * D + d
    reorder = [pp * d + dd for dd in range(d) for pp in range(p)]
    np.testing.assert_array_equal(our_out[reorder], their_out)
