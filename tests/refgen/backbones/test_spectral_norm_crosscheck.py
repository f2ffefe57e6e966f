"""spectral_norm against torch.nn.utils.spectral_norm: same state_dict keys, same u, v buffers
after several training-mode forwards, same outputs and gradients (float64, rtol 1e-10)."""
import numpy as np  # host-side: test data
import pytest

import autodiff
from autodiff import nn
from refgen.backbones.spectral_norm import spectral_norm
from tests.crosscheck_utils import torch_or_skip, assert_close
from tests.refgen.backbones._torch_compare import randomize_, load_from_torch, compare, RTOL

pytestmark = pytest.mark.crosscheck


@pytest.mark.parametrize("kind", ["linear", "conv", "conv_transpose"])
@pytest.mark.parametrize("n_iter", [1, 3])
def test_spectral_norm_matches_torch(kind, n_iter):
    torch = torch_or_skip()
    if kind == "linear":
        theirs, ours, shape = torch.nn.Linear(5, 4), nn.Linear(5, 4), (3, 5)
    elif kind == "conv":
        theirs, ours, shape = torch.nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)
    else:
        theirs = torch.nn.ConvTranspose2d(2, 3, 4, 2, 1)
        ours, shape = nn.ConvTranspose2d(2, 3, 4, 2, 1), (2, 2, 3, 3)
    randomize_(torch, theirs)
    theirs = torch.nn.utils.spectral_norm(theirs, n_power_iterations=n_iter)
    ours = spectral_norm(ours, n_power_iterations=n_iter)
    load_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    for step in range(4):  # training-mode forwards, each one power-iteration update
        x = rng.standard_normal(shape)
        compare(torch, ours, theirs, x, seed=step, what=f"{kind} step {step}")
        assert_close(ours.weight_u, theirs.weight_u, rtol=RTOL, what="weight_u")
        assert_close(ours.weight_v, theirs.weight_v, rtol=RTOL, what="weight_v")
        assert_close(ours.weight, theirs.weight, rtol=RTOL, what="normalised weight")
        ours.zero_grad()
        theirs.zero_grad()
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape)
    compare(torch, ours, theirs, x, what=f"{kind} eval")
    assert_close(ours.weight_u, theirs.weight_u, rtol=RTOL, what="weight_u after eval")


def test_torch_checkpoint_loads_into_ours():
    """A torch state_dict saved after training-mode steps gives our module the same function."""
    torch = torch_or_skip()
    theirs = torch.nn.utils.spectral_norm(randomize_(torch, torch.nn.Conv2d(3, 4, 3)))
    for _ in range(5):
        theirs(torch.randn(1, 3, 6, 6))
    theirs.eval()
    ours = spectral_norm(nn.Conv2d(3, 4, 3)).eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6))
    assert_close(ours(autodiff.tensor(x)), theirs(torch.from_numpy(x)), rtol=RTOL)
