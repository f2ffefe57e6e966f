"""The sigma-view samplers (Euler, Heun, DPM-Solver++(2M)) and the Karras noise levels,
on Gaussian data whose denoiser and probability-flow ODE are solved exactly (float64)."""
import math

import numpy as np  # host-side: reference values
import pytest

import autodiff
from autodiff import backend as B
from refgen.families.diffusion import samplers as S

M, S_DATA = 0.7, 0.5          # data x_0 ~ N(M, S_DATA^2) per dimension
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def _denoiser(x, sigma):
    """D(x; sigma) = E[x_0 | x_0 + sigma eps = x] = M + S^2 / (S^2 + sigma^2) (x - M)."""
    return M + (S_DATA ** 2 / (S_DATA ** 2 + sigma ** 2)) * (x - M)


def _exact(x_T, sigma_min):
    """The PF-ODE dx/dsigma = (x - D(x; sigma)) / sigma from sigma_max solved exactly,
    x(sigma) - M = (x_T - M) sqrt((S^2 + sigma^2) / (S^2 + sigma_max^2)), to sigma_min, then the
    last jump to sigma = 0 that every sampler takes, x = D(x(sigma_min); sigma_min)."""
    x_min = M + (x_T - M) * math.sqrt((S_DATA ** 2 + sigma_min ** 2)
                                      / (S_DATA ** 2 + SIGMA_MAX ** 2))
    return M + S_DATA ** 2 / (S_DATA ** 2 + sigma_min ** 2) * (x_min - M)


def _start():
    gen = np.random.default_rng(0)
    x = gen.standard_normal((6, 3)) * math.sqrt(S_DATA ** 2 + SIGMA_MAX ** 2) + M
    return x, autodiff.Tensor(B.to_backend(x))


@pytest.mark.parametrize("name,order", [("euler", 1), ("heun", 2), ("dpmpp_2m", 2)])
def test_convergence_order(name, order):
    """Global error ~ C n^-p on Karras sigmas: doubling n from 64 to 128 divides the error by
    2^p, Euler p = 1, Heun p = 2 (Karras et al. 2022, Sec. 3), DPM-Solver++(2M) p = 2 (Lu et
    al. 2022b, Sec. 4); the +-0.25 allows the O(1/n) next-order terms at these n."""
    x_np, x = _start()
    errors = []
    for n in (64, 128):
        sigmas = S.get_sigmas_karras(n, SIGMA_MIN, SIGMA_MAX)
        out = S.K_SAMPLERS[name](_denoiser, x, sigmas)
        errors.append(np.abs(B.to_numpy(out.data) - _exact(x_np, sigmas[-2])).max())
    observed = math.log2(errors[0] / errors[1])
    assert abs(observed - order) < 0.25, (errors, observed)


def test_callbacks_see_every_step_and_nfe_counts():
    _, x = _start()
    sigmas = S.get_sigmas_karras(7, SIGMA_MIN, SIGMA_MAX)
    for name, fn in S.K_SAMPLERS.items():
        calls, seen = [], []

        def counting(x, sigma, calls=calls):
            calls.append(sigma)
            return _denoiser(x, sigma)
        fn(counting, x, sigmas, callback=lambda d, seen=seen: seen.append(d["i"]))
        assert seen == list(range(7))
        assert len(calls) == S.nfe_karras(name, 7)


def test_karras_sigmas():
    """Karras et al. 2022, Eq. 5: sigma_0 = sigma_max, sigma_{n-1} = sigma_min, 0 appended,
    and sigma^(1/rho) evenly spaced."""
    sigmas = S.get_sigmas_karras(10, 0.01, 50.0, rho=7.0)
    assert len(sigmas) == 11 and sigmas[-1] == 0.0
    assert sigmas[0] == pytest.approx(50.0, rel=1e-12)
    assert sigmas[-2] == pytest.approx(0.01, rel=1e-12)
    roots = np.array(sigmas[:-1]) ** (1.0 / 7.0)
    np.testing.assert_allclose(np.diff(roots), np.full(9, (roots[-1] - roots[0]) / 9),
                               rtol=1e-10)
    with pytest.raises(ValueError, match="sigma_min <= sigma_max"):
        S.get_sigmas_karras(10, 5.0, 1.0)
    with pytest.raises(ValueError, match="strictly decreasing"):
        S.sample_euler(_denoiser, _start()[1], [1.0, 2.0, 0.0])
