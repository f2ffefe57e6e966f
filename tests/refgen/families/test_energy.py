"""Energy-based model (refgen.families.energy) on Gaussians with analytic energies, float64.

E(x) = (x - mu)^T P (x - mu) / 2 with P = diag(1 / s^2) has the score -P(x - mu) and, on a
box B = prod_i [a_i, b_i], the normaliser
    Z_B = prod_i s_i sqrt(2 pi) (Phi((b_i - mu_i) / s_i) - Phi((a_i - mu_i) / s_i)).

Tolerances: the grid's midpoint rule on one axis errs by at most (b - a) h^2 max|g''| / 24
with g(t) = exp(-(t - mu)^2 / (2 s^2)), max|g''| = 1 / s^2 (at t = mu); AIS is compared
within 3 of its own standard errors (a two-sided 99.7 % interval if log Z_hat is close to
normal), and its standard error must be small for the comparison to mean something.

Breakages tried (each fails a test): the cell area left out of the grid's log Z; the AIS
increment with +E instead of -E; the log-volume of the uniform start left out; MALA with
the acceptance step removed (the invariance test sees ULA's inflated variance at a large
step); the replay buffer never re-initialising; the CD loss with the sign of the contrast
flipped (the energy of data rises).
"""
import math

import numpy as np
import pytest
from scipy import stats

import autodiff
from autodiff import nn
from refgen.data import load_dataset
from refgen.families import energy
from refgen.families.base import data_info_for_config
from refgen.families.common.langevin import energy_and_score, mala_step
from refgen.train import TrainConfig
from refgen.train.context import TrainContext
from tests.refgen.families.test_langevin import box_m_p, exact_draws

MU = np.array([0.3, -0.2])
S = np.array([0.5, 0.8])


class QuadraticEnergy(nn.Module):
    """E(x) = sum_i (x_i - mu_i)^2 / (2 s_i^2), x (N, D) -> (N,)."""

    def __init__(self, mu, s):
        super().__init__()
        self.mu, self.s = autodiff.tensor(mu), autodiff.tensor(s)

    def forward(self, x):
        z = (x - self.mu) / self.s
        return 0.5 * (z * z).sum(1)


def truncated_log_z(mu, s, box):
    total = 0.0
    for m, sd, (a, b) in zip(mu, s, box):
        mass = stats.norm.cdf((b - m) / sd) - stats.norm.cdf((a - m) / sd)
        total += math.log(sd * math.sqrt(2 * math.pi) * mass)
    return total


def _model(name="ring8:std=0.1", **overrides):
    d = load_dataset(name, split="train", **({"n": 256} if ":" in name or "ring" in name
                                              else {}))
    info = dict(d.info)
    info.setdefault("name", name)
    config = energy.smoke_config(info)
    config.update(overrides, data_info=data_info_for_config(info))
    return energy.build(config, info), d


def test_minus_grad_energy_is_the_analytic_score():
    model, _ = _model()
    model.energy = QuadraticEnergy(MU, S)
    x = autodiff.randn(9, 2)
    np.testing.assert_allclose(model.score(x).numpy(), -(x.numpy() - MU) / S ** 2, rtol=1e-13)


def test_grid_normalizer_equals_the_analytic_truncated_log_z():
    """An off-centre box that cuts off a visible part of the Gaussian (Z_B < Z_R2)."""
    box = ((-0.5, 1.5), (-1.0, 2.5))
    grid = 256
    got = energy.grid_log_normalizer(QuadraticEnergy(MU, S), box, grid)
    truth = truncated_log_z(MU, S, box)
    assert truth < math.log(2 * math.pi * S.prod()) - 0.05      # truncation matters here
    bound = 0.0
    for (a, b), sd, m in zip(box, S, MU):
        h = (b - a) / grid
        integral = sd * math.sqrt(2 * math.pi) * (stats.norm.cdf((b - m) / sd)
                                                  - stats.norm.cdf((a - m) / sd))
        bound += (b - a) * h * h / (24 * sd * sd) / integral   # relative error per axis
    assert abs(got - truth) <= 2 * bound, (got, truth, bound)


def test_model_density_integrates_to_one():
    """exp(log_prob) of the (untrained) MLP energy summed over a finer, shifted grid is 1 to
    within the quadrature errors (log Z's Richardson estimate, O(h^2) scaling: tolerance
    3 log_z_error, i.e. |log Z_n - log Z_n/2|, covers both grids' errors)."""
    model, _ = _model(grid=128)
    info = model.log_normalizer()
    (x0, x1), (y0, y1) = model.box
    n = 384
    hx, hy = (x1 - x0) / n, (y1 - y0) / n
    cx = x0 + hx * (np.arange(n) + 0.5)
    cy = y0 + hy * (np.arange(n) + 0.5)
    pts = np.stack(np.meshgrid(cx, cy, indexing="ij"), -1).reshape(-1, 2)
    lp = model.log_prob(autodiff.tensor(pts)).numpy()
    total = np.exp(lp).sum() * hx * hy
    assert abs(math.log(total)) <= 3 * info["log_z_error"] + 1e-12, (total, info)
    assert info["log_z_error"] < 1e-3


@pytest.mark.parametrize("dim", [2, 5])
def test_ais_log_z_within_its_standard_error_of_the_truth(dim):
    mu, s = np.linspace(-0.3, 0.4, dim), np.linspace(0.4, 0.9, dim)
    box = (-2.0, 2.0)
    truth = truncated_log_z(mu, s, [box] * dim)
    r = energy.ais_log_normalizer(QuadraticEnergy(mu, s), box, (dim,), n_chains=200,
                                  n_temperatures=300, generator=autodiff.Generator(1))
    assert r["stderr"] < 0.1, r                  # small enough for the test to mean something
    assert abs(r["log_z"] - truth) < 3 * r["stderr"], (r, truth)
    assert 0.2 < r["acceptance"] <= 1.0


def test_ais_agrees_with_the_grid_on_the_models_own_energy():
    model, _ = _model(grid=256)
    grid = model.log_normalizer()
    lo = min(b[0] for b in model.box)
    hi = max(b[1] for b in model.box)
    assert all(tuple(b) == (lo, hi) for b in model.box)     # ring8:std=0.1: a square box
    r = energy.ais_log_normalizer(model.energy_fn, (lo, hi), (2,), n_chains=200,
                                  n_temperatures=300, generator=autodiff.Generator(2))
    assert abs(r["log_z"] - grid["log_z"]) < 3 * r["stderr"] + grid["log_z_error"], (r, grid)


def test_mala_leaves_the_gaussian_invariant_where_ula_does_not():
    """From exact draws of N(mu, diag(s^2)), 30 steps with a large step h = 0.2 (h a / 4 =
    0.2 at a = 1 / 0.25: ULA's variance is inflated by 1 / (1 - 0.2) = 1.25): MALA's
    states still pass Box's M test against fresh exact draws at level 1e-3; ULA's fail."""
    n = 2000
    f = QuadraticEnergy(MU, S)
    cov = np.diag(S ** 2)
    start = autodiff.tensor(exact_draws(MU, cov, n, seed=11))
    x, state = start, None
    gen = autodiff.Generator(12)
    for _ in range(30):
        x, state, _ = mala_step(f, x, 0.2, generator=gen, state=state)
    assert box_m_p(x.numpy(), exact_draws(MU, cov, n, seed=13)) > 1e-3
    y = start
    for _ in range(30):
        e, s = energy_and_score(f, y)
        y = y + 0.1 * s + math.sqrt(0.2) * autodiff.randn(n, 2, generator=gen)
    assert box_m_p(y.numpy(), exact_draws(MU, cov, n, seed=13)) < 1e-3


def test_replay_buffer_reinitialises_with_the_stated_probability():
    model, _ = _model(buffer_size=64, reinit=0.25)
    gen = autodiff.Generator(0)
    first = model._initial_negatives(32, gen, "float64")     # empty buffer: all fresh
    model.buffer.push(autodiff.full((64, 2), 100.0))        # marked entries, outside B
    x0 = np.concatenate([model._initial_negatives(64, gen, "float64").numpy()
                         for _ in range(50)])
    from_buffer = (x0 == 100.0).all(1).mean()
    assert abs(first.numpy()).max() <= 3.0
    # binomial: 0.75 +- 4 standard errors sqrt(0.75 * 0.25 / 3200) = 0.0077
    assert abs(from_buffer - 0.75) < 4 * math.sqrt(0.75 * 0.25 / 3200)
    assert model.buffer.filled() == 64 and int(model.buffer.count.numpy()[0]) == 64


@pytest.mark.parametrize("negatives", ["langevin", "grid"])
def test_cd_step_lowers_the_energy_of_data_relative_to_negatives(negatives):
    """Gradient descent on mean E(x+) - mean E(x-) (alpha = 0: the contrast alone). With
    short-run negatives that start from noise the data's energy falls relative to theirs;
    with exact negatives (the grid) the step is a maximum-likelihood step: the exact NLL
    of the data falls."""
    model, d = _model(negatives=negatives, alpha=0.0)
    groups = model.parameter_groups()
    from autodiff import optim
    ctx = TrainContext(TrainConfig(), groups, {"energy": optim.Adam(groups["energy"], lr=1e-2)},
                       autodiff.Generator(0))
    x = autodiff.tensor(d.x[:128].astype("float64"))
    nll_before = -model.log_prob(x).numpy().mean()
    cds = []
    for step in range(15):
        ctx.begin_step(step)
        m = model.training_step((x, None), step, ctx)
        cds.append(m["e_pos"] - m["e_neg"])
        assert ctx.updates == {"energy": 1}
    if negatives == "grid":
        assert -model.log_prob(x).numpy().mean() < nll_before - 0.1
    else:
        assert cds[-1] < cds[0] - 0.1, cds


def test_log_prob_is_minus_inf_outside_the_box_and_inputs_are_checked():
    model, _ = _model()
    lp = model.log_prob(autodiff.tensor([[0.0, 0.0], [10.0, 0.0]])).numpy()
    assert np.isfinite(lp[0]) and lp[1] == -np.inf
    with pytest.raises(ValueError, match=r"x must be \(N, 2\)"):
        model.log_prob(autodiff.zeros(3, 3))
    with pytest.raises(ValueError, match="unknown sampler"):
        model.sample(2, autodiff.Generator(0), sampler="ddim")
    with pytest.raises(ValueError, match="reinit"):
        _model(reinit=1.5)
    with pytest.raises(ValueError, match="negatives='grid' exists only for 2-D"):
        _model("digits", negatives="grid")
    with pytest.raises(ValueError, match="box"):
        energy.grid_log_normalizer(lambda x: x.sum(1), ((1.0, 0.0), (0.0, 1.0)), 8)


def test_grid_sampler_follows_the_grid_density():
    """Exact sampling from the grid approximation of a Gaussian energy: Box's M and
    Hotelling's tests against exact draws of the (essentially untruncated) Gaussian."""
    from tests.refgen.families.test_langevin import hotelling_two_sample_p
    model, _ = _model(grid=256)
    model.energy = QuadraticEnergy(MU, S * 0.4)
    x = model.sample(2000, autodiff.Generator(3), sampler="grid").numpy()
    ref = exact_draws(MU, np.diag((S * 0.4) ** 2), 2000, seed=4)
    assert hotelling_two_sample_p(x, ref) > 1e-3 and box_m_p(x, ref) > 1e-3


def test_nfe_per_sample_follows_the_sampler_in_use():
    model, _ = _model()
    assert model.nfe_per_sample == model.config["sample_steps"]   # the default sampler
    model.sample(2, autodiff.Generator(0), steps=7)
    assert model.nfe_per_sample == 7                             # Langevin steps asked for
    model.sample(2, autodiff.Generator(0), sampler="grid")
    assert model.nfe_per_sample == 1                             # one batched grid evaluation


def test_tempered_training_chains_sample_the_tempered_gaussian():
    """``anneal_from``: a chain at temperature T runs Langevin for exp(-E/T), whose Gaussian
    has variance T s^2. At a fixed T = 4 held for 1000 steps of h = 0.05 min s^2 from the
    mode (about 10 relaxation times of the slowest axis), the chains' variance per axis is
    T s^2 within 5 of its standard errors (4000 independent chains; the Euler bias of ULA, a
    relative h/(4 s^2) <= 1.25 %, is well below that), and at T = 1 it is s^2. The training schedule is geometric from T0
    to 1 over the first half of the steps, then 1."""
    model, _ = _model(anneal_from=20.0, n_steps=8, box=[[-50.0, 50.0], [-50.0, 50.0]])
    model.energy = QuadraticEnergy(MU, S)
    t = model._training_temperatures()
    assert t[0] == 20.0 and t[4:] == [1.0] * 4
    np.testing.assert_allclose(t[:4], 20.0 ** (1 - np.arange(4) / 4), rtol=1e-12)
    h, n, steps = 0.05 * float(S.min()) ** 2, 4000, 1000
    for temperature in (4.0, 1.0):
        x0 = autodiff.tensor(np.tile(MU, (n, 1)))
        x = model._langevin(x0, steps, autodiff.Generator(1), step_size=h,
                            temperatures=[temperature] * steps).numpy()
        var = x.var(axis=0, ddof=1)
        want = temperature * S ** 2
        se = want * math.sqrt(2.0 / (n - 1))      # of a normal sample variance
        assert np.all(np.abs(var - want) < 5 * se), (temperature, var, want)
    assert _model(anneal_from=1.0)[0]._training_temperatures() is None   # T0 = 1: off
