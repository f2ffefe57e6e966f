"""The strict test backend refuses what CuPy refuses and counts host transfers, and an
engine training step (forward, backward, Adam) makes none on it."""
import numpy as np  # host-side: the conversions the strict backend must refuse
import pytest

import autodiff
import autodiff.functional as F
from autodiff import backend as B, nn, optim
from autodiff.strict_backend import StrictArray, host_transfers


@pytest.fixture
def strict():
    previous = B.get_backend()
    autodiff.set_backend("strict")
    autodiff.manual_seed(0)
    yield
    autodiff.set_backend(previous)


def test_strict_arrays_refuse_implicit_host_conversion(strict):
    a = autodiff.randn(3, 2).data
    assert isinstance(a, StrictArray) and not isinstance(a, np.ndarray)
    for convert in (np.asarray, np.array, lambda v: np.testing.assert_allclose(v, 0)):
        with pytest.raises(TypeError, match="Implicit conversion"):
            convert(a)
    with pytest.raises(TypeError, match=r"host numpy.ndarray \(shape \(2,\)\)"):
        a + np.ones(2)
    # NumPy functions dispatch and stay on the "device"; reductions are 0-d arrays (CuPy's)
    assert isinstance(np.exp(a), StrictArray) and isinstance(B.xp.sum(a), StrictArray)
    assert B.xp.sum(a).shape == ()


def test_transfers_are_counted_by_kind(strict):
    a = autodiff.randn(4).data
    with host_transfers() as c:
        host = B.to_numpy(a)
        float(B.xp.sum(a))
        bool(B.xp.any(a > 0))
        B.to_backend(host)
    assert isinstance(host, np.ndarray) and host.shape == (4,)
    assert (c["explicit"], c["scalar"], c["to_device"]) == (1, 2, 1)


def test_an_engine_training_step_makes_no_host_transfer(strict):
    autodiff.set_default_dtype("float64")
    model = nn.Sequential(nn.Linear(2, 16), nn.LayerNorm(16), nn.SiLU(), nn.Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x = autodiff.randn(32, 2)
    y = autodiff.randint(0, 3, (32,))
    for _ in range(2):   # the second step also exercises Adam's state
        with host_transfers() as c:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert c["explicit"] == 0 and c["scalar"] == 0, dict(c)
    assert np.isfinite(loss.item())


def test_the_same_step_gives_the_numpy_backends_numbers():
    """Strict is NumPy underneath: a step gives bit-identical numbers on both."""
    losses = {}
    for backend in ("numpy", "strict"):
        autodiff.set_backend(backend)
        try:
            autodiff.set_default_dtype("float64")
            autodiff.manual_seed(3)
            model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
            opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            x = autodiff.randn(16, 2)
            out = []
            for _ in range(3):
                loss = F.mse_loss(model(x), x[:, :1])
                opt.zero_grad()
                loss.backward()
                opt.step()
                out.append(loss.item())
            losses[backend] = out
        finally:
            autodiff.set_backend("numpy")
    assert losses["strict"] == losses["numpy"]
