"""A checkpoint of torch.nn.utils.parametrizations.spectral_norm (the newer API) loads into
refgen's spectral_norm through from_parametrized_spectral_norm and, in evaluation mode (no
power iteration: the stored u, v are used as they are), gives the same outputs to 1e-10;
and the export goes back into the newer API."""
import numpy as np  # host-side: test data
import pytest

import autodiff
from autodiff import nn
from refgen.backbones import spectral_norm
from refgen.interop import from_parametrized_spectral_norm, to_parametrized_spectral_norm
from tests.crosscheck_utils import assert_close, torch_or_skip

pytestmark = pytest.mark.crosscheck


def _torch_model(torch):
    P = torch.nn.utils.parametrizations
    torch.manual_seed(0)
    return torch.nn.Sequential(P.spectral_norm(torch.nn.Linear(3, 5)), torch.nn.SiLU(),
                               P.spectral_norm(torch.nn.Conv2d(5, 2, 1))).double()


def _ours():
    return nn.Sequential(spectral_norm(nn.Linear(3, 5)), nn.SiLU(),
                         spectral_norm(nn.Conv2d(5, 2, 1)))


def test_parametrized_checkpoint_loads_and_matches_in_eval():
    torch = torch_or_skip()
    theirs = _torch_model(torch)
    theirs.train()
    for _ in range(3):   # move u, v away from their initial values (training-mode forwards)
        with torch.no_grad():
            theirs[0](torch.randn(4, 3, dtype=torch.float64))
            theirs[2](torch.randn(4, 5, 2, 2, dtype=torch.float64))
    theirs.eval()
    ours = _ours()
    ours.load_state_dict(from_parametrized_spectral_norm(
        {k: v.detach().numpy() for k, v in theirs.state_dict().items()}))
    ours.eval()
    x = np.random.default_rng(0).standard_normal((4, 3))
    h = ours[0](autodiff.tensor(x))
    with torch.no_grad():
        ref = theirs[0](torch.from_numpy(x))
    assert_close(h, ref, what="Linear with the newer spectral_norm's u, v")
    z = np.random.default_rng(1).standard_normal((2, 5, 3, 3))
    with torch.no_grad():
        ref = theirs[2](torch.from_numpy(z))
    assert_close(ours[2](autodiff.tensor(z)), ref, what="Conv2d with the newer spectral_norm")

    back = to_parametrized_spectral_norm({k: torch.from_numpy(v.numpy())
                                          for k, v in ours.state_dict().items()})
    fresh = _torch_model(torch)
    fresh.load_state_dict(back, strict=True)
    fresh.eval()
    with torch.no_grad():
        assert_close(fresh[0](torch.from_numpy(x)), theirs[0](torch.from_numpy(x)),
                     what="exported back into the newer API")
