"""PyTorch cross-checks: precision/recall, density/coverage and KID against the definitions
written with torch.cdist / torch.kthvalue / torch matrix products on the same features."""
import numpy as np  # host-side: test data
import pytest

from refgen.metrics import density_coverage, kid, mmd2_unbiased, polynomial_kernel, precision_recall
from tests.crosscheck_utils import to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck


def _features(seed, n, m, d):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((m, d)) * 1.2 + 0.1


@pytest.mark.parametrize("seed,n,m,d", [(0, 300, 250, 16), (1, 500, 500, 64), (2, 60, 90, 3)])
def test_precision_recall_density_coverage_match_torch(seed, n, m, d):
    torch = torch_or_skip()
    x, y = _features(seed, n, m, d)
    tx, ty = to_torch(x), to_torch(y)

    def radii(a, k):   # k-th nearest OTHER point: the (k+1)-th smallest including self
        return torch.kthvalue(torch.cdist(a, a), k + 1, dim=1).values

    d_xy = torch.cdist(tx, ty)                                     # (N, M)
    r3x, r3y, r5x = radii(tx, 3), radii(ty, 3), radii(tx, 5)
    precision = (d_xy <= r3x[:, None]).any(0).double().mean().item()
    recall = (d_xy <= r3y[None, :]).any(1).double().mean().item()
    inside = d_xy <= r5x[:, None]
    density = inside.sum().item() / (5 * m)
    coverage = inside.any(1).double().mean().item()
    assert precision_recall(x, y, k=3, batch_size=128) == (precision, recall)
    got = density_coverage(x, y, k=5, batch_size=128)
    assert got.density == pytest.approx(density, rel=1e-12)
    assert got.coverage == coverage


def test_kid_kernel_and_mmd_match_torch():
    torch = torch_or_skip()
    x, y = _features(3, 200, 150, 32)
    tx, ty = to_torch(x), to_torch(y)
    d = x.shape[1]

    def k(a, b):
        return (a @ b.T / d + 1) ** 3

    m, n = 200, 150
    kxx, kyy, kxy = k(tx, tx), k(ty, ty), k(tx, ty)
    want = ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) - 2 * kxy.mean()).item()
    got = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))
    assert got == pytest.approx(want, rel=1e-10)
    # equal-size subsets of all rows: KID's mean is this MMD^2
    assert kid(x[:150], y, num_subsets=2, subset_size=150).mean == pytest.approx(
        mmd2_unbiased(polynomial_kernel(x[:150], x[:150]), polynomial_kernel(y, y),
                      polynomial_kernel(x[:150], y)), rel=1e-12)
