"""Family ``ebm``: an energy-based model p_theta(x) = exp(-E_theta(x)) / Z_theta on a box B.

The model. E_theta is a network x (N, *example_shape) -> (N,): an MLP with SiLU on 2-D
points (smooth, so its gradient field is continuous), a CNN with spectral normalisation on
images (the DCGAN discriminator, Miyato et al. 2018: a Lipschitz energy keeps Langevin
stable). The density is supported on a box B = [lo, hi]^D (the data's bounds on 2-D, the
value range on images), so that Z_theta = int_B exp(-E_theta(x)) dx is finite for any
network and samplers stay in the support by clipping.

Training by contrastive divergence (Hinton 2002; Du & Mordatch 2019, Algorithm 1). The
gradient of the log-likelihood is
    grad_theta E_data[log p_theta(x)] = -E_data[grad_theta E(x)] + E_{p_theta}[grad_theta E(x)],
so the loss  L = mean E(x+) - mean E(x-) + alpha mean(E(x+)^2 + E(x-)^2)  with negatives x-
from the model has the right gradient (the second term's expectation approximated by
samples, treated as constants). The negatives come from short-run Langevin
(``common.langevin.langevin_dynamics``: K steps of x <- x - (h/2) grad E(x) + noise_scale
sqrt(h) eps, clipped to B) started from a replay buffer of past negatives, each chain
re-initialised from uniform noise on B with probability ``reinit`` (Du & Mordatch 2019,
Sec. 3.1). The alpha term (their Sec. 3.3) keeps the energies near 0, so the contrast
cannot drift off.

* ``step_size`` h and ``noise_scale`` are separate: noise_scale = 1 is Langevin dynamics
  proper (the 2-D default, where the exact likelihood is the judge); the images default is
  the decoupled "SGLD" of Du & Mordatch (gradient step lambda = 10, noise 0.005, i.e.
  h = 2 lambda = 20 and noise_scale = 0.005 / sqrt(20)), which is NOT Langevin dynamics in
  the strict sense: it samples p_theta^(1/T) with T = noise_scale^2 at best, and the model it
  trains is only meaningful together with that sampler (Nijkamp et al. 2019).

Ablation (2-D only): ``negatives="grid"`` replaces the Langevin negatives by exact samples
of the grid approximation of p_theta (``sample(sampler="grid")``). The update is then the
maximum-likelihood gradient with an unbiased Monte Carlo estimate of E_p_theta[grad E]: no
longer contrastive divergence, it shows how much of the error is the short-run sampler's
(which cannot move mass between separated modes: only the alpha term keeps their depths
equal).

Tempered negatives (``anneal_from`` = T0 > 1; 20 on 2-D, 1 = off on images): the chains start
hot and cool, sampling exp(-E/T_k) with T_k falling geometrically from T0 to 1 over the
first half of the ``n_steps`` steps and T = 1 for the second half (noise_scale multiplied
by sqrt(T_k): the step x <- x - (h/2) grad E(x) + sqrt(h T) eps leaves exp(-E/T) invariant
in the limit of small h, the Langevin dynamics of the tempered density). At T0 the barriers
between modes shrink by T0, so a chain can change mode before it settles, and the negatives
fall into the modes more in proportion to the model's own mass than to the basins the
buffer's chains happen to sit in, which lets the CD gradient correct the modes' relative
depths. Still contrastive divergence (short runs from the buffer), not
Langevin dynamics at one temperature: the cooling is a heuristic of this family, in the
spirit of simulated annealing, with no guarantee of equilibrium.

Likelihood.
* 2-D (``likelihood_kind = "exact"``): log Z_theta by the midpoint rule on a ``grid`` x
  ``grid`` lattice over B (``grid_log_normalizer``). There is no truncation error, since
  p_theta lives on B by definition (the true data's mass outside B is < 1e-22 on the toy
  densities, their ``tail_mass``); the quadrature error of the midpoint rule is O(cell^2)
  and is estimated by Richardson's rule, |log Z_n - log Z_{n/2}| / 3, reported as
  ``log_z_error``. Then log p(x) = -E(x) - log Z exactly (to that error), and the test NLL
  minus the data's entropy is the KL divergence to the truth.
* images (``likelihood_kind = "estimate"``): annealed importance sampling (Neal 2001) from
  the uniform density on B to p_theta along p_beta proportional to exp(-beta E) on B, with
  one MALA step per temperature (``ais_log_normalizer``), gives log Z with a standard error;
  log p(x) = -E(x) - log Z_hat is an estimate (the bias of log of an unbiased Z_hat is
  negative: log Z is underestimated and the NLL overestimated, in expectation).

    refgen train ebm --data ring8:std=0.1 --minutes 5
    refgen eval --checkpoint runs/ebm-ring8:std=0.1/checkpoint.npz   # exact NLL, KL
    refgen train ebm --data digits --minutes 5
"""
import hashlib
import math

import autodiff
from autodiff import backend as B
from autodiff import nn

from ..backbones import MLP, DCGANDiscriminator
from .base import GenerativeModel, check_sample_options
from .common.langevin import energy_and_score, energy_score, langevin_dynamics, mala_step

__all__ = ["kind", "default_config", "build", "train_defaults", "smoke_config", "SMOKE_DATA",
           "EnergyModel", "grid_log_normalizer", "ais_log_normalizer"]

kind = "energy"
SMOKE_DATA = ["ring8:std=0.1", "digits"]


# --------------------------------------------------------------------------- log Z on 2-D
def grid_log_normalizer(energy_fn, box, grid, batch_size=65536):
    """log Z = log int_B exp(-E(x)) dx by the midpoint rule on a grid x grid lattice over the
    2-D box B = [x0, x1] x [y0, y1]:  Z ~ sum_cells exp(-E(centre)) * cell area, as a
    log-sum-exp.

    :param energy_fn: x (N, 2) -> E(x) (N,). :param box: ((x0, x1), (y0, y1)).
    :param grid: cells per axis. :return: log Z (a float).
    """
    (x0, x1), (y0, y1) = ((float(a), float(b)) for a, b in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"grid_log_normalizer: box must be ((x0, x1), (y0, y1)) with x0 < x1 "
                         f"and y0 < y1, got {box!r}")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid_log_normalizer: grid must be an int >= 2, got {grid!r}")
    xp = B.xp
    dtype = autodiff.get_default_dtype()
    hx, hy = (x1 - x0) / grid, (y1 - y0) / grid
    cx = x0 + hx * (xp.arange(grid, dtype=dtype) + 0.5)
    cy = y0 + hy * (xp.arange(grid, dtype=dtype) + 0.5)
    points = xp.stack([xp.repeat(cx, grid), xp.tile(cy, grid)], axis=1)   # (grid^2, 2)
    neg = []
    with autodiff.no_grad():
        for start in range(0, points.shape[0], batch_size):
            e = energy_fn(autodiff.Tensor(points[start:start + batch_size]))
            neg.append(-e.data.astype("float64"))
    neg = xp.concatenate(neg)
    m = float(neg.max())
    return m + math.log(float(xp.exp(neg - m).sum())) + math.log(hx * hy)


# --------------------------------------------------------------------------- AIS
def ais_log_normalizer(energy_fn, box, example_shape, n_chains, n_temperatures, generator=None,
                       step_size=None, power=4.0):
    """Annealed importance sampling (Neal 2001) for log Z = log int_B exp(-E(x)) dx.

    Path: f_beta(x) = |B|^-(1 - beta) exp(-beta E(x)) on B, beta_k = (k / K)^power (dense
    near 0, where the path changes fastest), k = 0..K; f_0 = the uniform density (Z_0 = 1),
    f_1 = exp(-E). Each chain starts x_0 ~ U(B), and for k = 1..K adds
    log f_k(x) - log f_{k-1}(x) = (beta_k - beta_{k-1})(log |B| - E(x)) to its log weight,
    then moves by one MALA step that leaves f_k invariant (``mala_step``) with step size
    h_k = step_size / beta_k, capped at the box's width squared (a fixed schedule, chosen in
    advance, so each transition is exactly f_k-invariant). Z_hat = mean_i w_i is unbiased.

    :param energy_fn: x (N, *example_shape) -> (N,). :param box: (lo, hi), the same for
        every coordinate. :param step_size: h at beta = 1 (default: 0.1 width^2 / D).
    :return: dict(log_z, stderr, ess, acceptance): log Z_hat = log-mean-exp of the log
        weights, its standard error by the delta method, std(w) / (sqrt(n) mean(w)), the
        effective sample size (sum w)^2 / sum w^2, and MALA's mean acceptance rate.
    """
    lo, hi = (float(v) for v in box)
    if not hi > lo:
        raise ValueError(f"ais_log_normalizer: box must be (lo, hi) with lo < hi, got {box!r}")
    for name, v in (("n_chains", n_chains), ("n_temperatures", n_temperatures)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise ValueError(f"ais_log_normalizer: {name} must be an int >= 2, got {v!r}")
    d = math.prod(example_shape)
    width = hi - lo
    log_volume = d * math.log(width)
    h1 = 0.1 * width * width / d if step_size is None else float(step_size)
    dtype = autodiff.get_default_dtype()
    x = lo + width * autodiff.rand(n_chains, *example_shape, generator=generator, dtype=dtype)
    log_w = B.xp.zeros(n_chains, dtype="float64")
    state = energy_and_score(energy_fn, x)
    betas = [(k / n_temperatures) ** power for k in range(n_temperatures + 1)]
    accepted = 0.0
    for k in range(1, n_temperatures + 1):
        beta, previous = betas[k], betas[k - 1]
        log_w += (beta - previous) * (log_volume - state[0].data.astype("float64"))
        h = min(h1 / beta, width * width)
        x, (e, s), acc = mala_step(lambda v, b=beta: b * energy_fn(v), x, h,
                                   generator=generator, box=(lo, hi),
                                   state=(beta * state[0], beta * state[1]))
        state = (e / beta, s / beta)
        accepted += float(acc.mean())
    m = float(log_w.max())
    w = B.xp.exp(log_w - m)
    mean_w = float(w.mean())
    log_z = m + math.log(mean_w)
    stderr = float(w.std(ddof=1)) / (math.sqrt(n_chains) * mean_w)
    ess = float(w.sum()) ** 2 / float((w * w).sum())
    return {"log_z": log_z, "stderr": stderr, "ess": ess,
            "acceptance": accepted / n_temperatures}


# --------------------------------------------------------------------------- the model
def _is_image(shape):
    return len(shape) == 3


class ReplayBuffer(nn.Module):
    """Past negatives (Du & Mordatch 2019, Sec. 3.1) as module buffers, so a checkpoint
    holds them and a resumed run continues exactly: ``x`` (size, *example_shape), ``count``
    (entries filled so far; the buffer is written cyclically)."""

    def __init__(self, size, example_shape):
        super().__init__()
        self.size = int(size)
        self.register_buffer("x", autodiff.zeros(self.size, *example_shape))
        self.register_buffer("count", autodiff.zeros(1, dtype="int64"))

    def push(self, x):
        n, start = x.shape[0], int(self.count.data[0])
        idx = (start + B.xp.arange(n)) % self.size
        self.x.data[idx] = x.data
        self.count.data[0] = start + n

    def filled(self):
        return min(int(self.count.data[0]), self.size)


class EnergyModel(GenerativeModel):
    """E_theta, its sampler, its normaliser; see the module docstring.

    Config keys: ``hidden``, ``depth`` (MLP), ``base_width`` (CNN), ``box`` (lo, hi) per
    axis, ``step_size``, ``noise_scale``, ``n_steps`` (training's short run),
    ``sample_steps`` (sampling), ``buffer_size``, ``reinit``, ``alpha``, ``grid`` (2-D
    quadrature), ``ais_chains``, ``ais_temperatures``, ``negatives`` ('langevin' or, on
    2-D, 'grid'), ``anneal_from`` (the training chains' starting temperature, >= 1).
    """

    kind = "energy"
    sample_options = ("sampler", "steps", "temperature")

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        shape = self.example_shape
        if not shape:
            raise ValueError("ebm: config['data_info'] has no example shape")
        for key in ("hidden", "depth", "base_width", "n_steps", "sample_steps", "buffer_size",
                    "grid", "ais_chains", "ais_temperatures"):
            if isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] < 1:
                raise ValueError(f"ebm: {key} must be a positive integer, got {c[key]!r}")
        for key in ("step_size", "noise_scale", "alpha", "reinit"):
            if isinstance(c[key], bool) or not isinstance(c[key], (int, float)) or c[key] < 0:
                raise ValueError(f"ebm: {key} must be a number >= 0, got {c[key]!r}")
        if not c["step_size"] > 0:
            raise ValueError(f"ebm: step_size must be > 0, got {c['step_size']!r}")
        anneal = c.get("anneal_from", 1.0)
        if isinstance(anneal, bool) or not isinstance(anneal, (int, float)) or \
                not 1.0 <= anneal < math.inf:
            raise ValueError(f"ebm: anneal_from is a starting temperature >= 1, got {anneal!r}")
        if not c["reinit"] <= 1:
            raise ValueError(f"ebm: reinit is a probability, got {c['reinit']!r}")
        if c["negatives"] not in ("langevin", "grid"):
            raise ValueError(f"ebm: negatives must be 'langevin' or 'grid', got "
                             f"{c['negatives']!r}")
        self.image = _is_image(shape)
        self.box = [tuple(float(v) for v in b) for b in c["box"]]
        if len(self.box) != (1 if self.image else math.prod(shape)) or \
                any(not hi > lo for lo, hi in self.box):
            raise ValueError(f"ebm: box must be one (lo, hi) pair for images or one per axis "
                             f"for points, with lo < hi; got {c['box']!r}")
        self.likelihood_kind = "estimate" if self.image else \
            ("exact" if math.prod(shape) == 2 else "none")
        if c["negatives"] == "grid" and self.likelihood_kind != "exact":
            raise ValueError("ebm: negatives='grid' exists only for 2-D data")
        if self.image:
            ch, h, _ = shape
            self.energy = DCGANDiscriminator(channels=ch, base_width=c["base_width"],
                                             image_size=h, norm="none", spectral_norm=True)
        else:
            self.energy = MLP(math.prod(shape), 1, hidden=c["hidden"], depth=c["depth"],
                              activation="silu")
        self.buffer = ReplayBuffer(c["buffer_size"], shape)
        self._log_z_cache = (None, None)

    def _dtype(self):
        for p in self.energy.parameters():
            return p.dtype
        return autodiff.get_default_dtype()

    # ---- E_theta and its score
    def energy_fn(self, x):
        """E_theta(x) (N,) for x (N, *example_shape)."""
        return self.energy(x).reshape(x.shape[0])

    def score(self, x):
        """s(x) = grad_x log p_theta(x) = -grad_x E_theta(x), detached (N, *example_shape)."""
        return energy_score(self.energy_fn)(x)

    def _into_box(self, x):
        if self.image:
            return x.clamp(*self.box[0])
        lo = autodiff.tensor([b[0] for b in self.box], dtype=x.dtype)
        hi = autodiff.tensor([b[1] for b in self.box], dtype=x.dtype)
        return autodiff.minimum(autodiff.maximum(x, lo), hi)

    def _uniform(self, n, generator, dtype):
        u = autodiff.rand(n, *self.example_shape, generator=generator, dtype=dtype)
        if self.image:
            lo, hi = self.box[0]
            return lo + (hi - lo) * u
        lo = autodiff.tensor([b[0] for b in self.box], dtype=dtype)
        hi = autodiff.tensor([b[1] for b in self.box], dtype=dtype)
        return lo + (hi - lo) * u

    def _langevin(self, x, n_steps, generator, noise_scale=None, step_size=None,
                  temperatures=None):
        """Langevin chains clipped to B after every step (``langevin_dynamics`` with the box;
        per-axis boxes on points by clipping inside the score's step). ``temperatures``: one
        T_k per step (noise_scale * sqrt(T_k)), or None for T = 1 throughout."""
        c = self.config
        h = float(c["step_size"] if step_size is None else step_size)
        ns = float(c["noise_scale"] if noise_scale is None else noise_scale)
        score = energy_score(self.energy_fn)
        if self.image and temperatures is None:
            return langevin_dynamics(score, x, h, n_steps, noise_scale=ns, generator=generator,
                                     clamp=self.box[0])
        for k in range(n_steps):   # one step at a time: per-axis box, or a temperature per step
            scale = ns if temperatures is None else ns * math.sqrt(temperatures[k])
            if self.image:
                x = langevin_dynamics(score, x, h, 1, noise_scale=scale, generator=generator,
                                      clamp=self.box[0])
            else:
                x = self._into_box(langevin_dynamics(score, x, h, 1, noise_scale=scale,
                                                     generator=generator))
        return x

    def _training_temperatures(self):
        """T_k of the training chains (``anneal_from``, module docstring): geometric from T0
        to 1 over the first half of the n_steps steps, then 1; None when T0 = 1."""
        t0, n = float(self.config.get("anneal_from", 1.0)), int(self.config["n_steps"])
        if t0 == 1.0:
            return None
        hot = max(1, n // 2)
        return [t0 ** (1.0 - k / hot) if k < hot else 1.0 for k in range(n)]

    # ---- the Trainable
    def modules(self):
        return {"energy": self.energy, "buffer": self.buffer}

    def parameter_groups(self):
        return {"energy": list(self.energy.parameters())}

    def _initial_negatives(self, n, generator, dtype):
        """x0 for the short runs: buffer entries, each replaced by uniform noise on B with
        probability ``reinit`` (all noise until the buffer holds n entries)."""
        fresh = self._uniform(n, generator, dtype)
        filled = self.buffer.filled()
        if filled < n:
            return fresh
        idx = autodiff.randint(0, filled, (n,), generator=generator)
        old = autodiff.Tensor(self.buffer.x.data[idx.data].astype(dtype))
        keep = autodiff.rand(n, generator=generator, dtype=dtype) >= self.config["reinit"]
        keep = keep.reshape(n, *([1] * len(self.example_shape)))
        return autodiff.where(keep, old, fresh)

    def training_step(self, batch, step, ctx):
        """One CD update: negatives by short-run Langevin from the buffer, then
        L = mean E(x+) - mean E(x-) + alpha mean(E(x+)^2 + E(x-)^2)."""
        x_pos, _ = batch
        n, dtype = x_pos.shape[0], x_pos.dtype
        if self.config["negatives"] == "grid":   # the ablation: exact samples, no CD
            with autodiff.no_grad():
                x_neg = self._grid_sample(n, ctx.generator, dtype)
        else:
            x0 = self._initial_negatives(n, ctx.generator, dtype)
            x_neg = self._langevin(x0, self.config["n_steps"], ctx.generator,
                                   temperatures=self._training_temperatures())
            self.buffer.push(x_neg)
        e_pos, e_neg = self.energy_fn(x_pos), self.energy_fn(x_neg.detach())
        contrast = e_pos.mean() - e_neg.mean()
        reg = (e_pos * e_pos).mean() + (e_neg * e_neg).mean()
        loss = contrast + self.config["alpha"] * reg
        ctx.optimize("energy", loss)
        return {"loss": float(loss.item()), "cd": float(contrast.item()),
                "e_pos": float(e_pos.mean().item()), "e_neg": float(e_neg.mean().item())}

    # ---- the generative model
    def sample(self, n, generator=None, cond=None, **options):
        """Samples: ``sampler="langevin"`` (default) runs ``steps`` (default
        ``sample_steps``) Langevin steps from uniform noise on B with the configured step
        size and noise_scale * sqrt(temperature); on 2-D, ``sampler="grid"`` draws exactly
        from the grid approximation of p_theta (a cell by its probability, then uniformly
        within it)."""
        check_sample_options("ebm", options, self.sample_options)
        if cond is not None:
            raise ValueError("ebm.sample: this energy model is not conditional; got cond")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"ebm.sample: n must be a positive int, got {n!r}")
        sampler = options.get("sampler") or "langevin"
        dtype = self._dtype()
        if sampler == "grid":
            if self.image or len(self.box) != 2:
                raise ValueError("ebm.sample: sampler 'grid' exists only for 2-D data")
            self._last_nfe = 1   # one batched evaluation of E_theta on the grid
            return self._grid_sample(n, generator, dtype)
        if sampler != "langevin":
            raise ValueError(f"ebm.sample: unknown sampler {sampler!r}; known: langevin"
                             + ("" if self.image else ", grid"))
        steps = options.get("steps")
        steps = self.config["sample_steps"] if steps is None else int(steps)
        temperature = options.get("temperature")
        temperature = 1.0 if temperature is None else float(temperature)
        if not temperature >= 0:
            raise ValueError(f"ebm.sample: temperature must be >= 0, got {temperature}")
        x0 = self._uniform(n, generator, dtype)
        self._last_nfe = steps
        return self._langevin(x0, steps, generator,
                              noise_scale=self.config["noise_scale"] * math.sqrt(temperature))

    def _grid_sample(self, n, generator, dtype):
        xp = B.xp
        g = self.config["grid"]
        (x0, x1), (y0, y1) = self.box
        hx, hy = (x1 - x0) / g, (y1 - y0) / g
        cx = x0 + hx * (xp.arange(g, dtype=dtype) + 0.5)
        cy = y0 + hy * (xp.arange(g, dtype=dtype) + 0.5)
        centres = xp.stack([xp.repeat(cx, g), xp.tile(cy, g)], axis=1)
        with autodiff.no_grad():
            neg = -self.energy_fn(autodiff.Tensor(centres)).data.astype("float64")
        p = xp.exp(neg - neg.max())
        cdf = xp.cumsum(p / p.sum())
        u = generator.random((n,), "float64") if generator is not None else \
            autodiff.default_generator().random((n,), "float64")
        cell = xp.minimum(xp.searchsorted(cdf, u, side="right"), g * g - 1)
        jitter = autodiff.rand(n, 2, generator=generator, dtype=dtype).data - 0.5
        x = centres[cell] + jitter * xp.asarray([hx, hy], dtype=dtype)
        return autodiff.Tensor(x)

    @property
    def nfe_per_sample(self):
        """Energy-gradient evaluations per sample of the last ``sample`` call (Langevin steps;
        1 for the grid sampler's one batched evaluation), else of the default sampler."""
        last = getattr(self, "_last_nfe", None)
        return int(self.config["sample_steps"] if last is None else last)

    # ---- the normaliser and the likelihood
    def _fingerprint(self):
        h = hashlib.sha1()
        for p in self.energy.parameters():
            h.update(B.to_numpy(p.data).tobytes())
        return h.hexdigest()

    def log_normalizer(self, generator=None):
        """log Z_theta: on 2-D by the grid (dict log_z, log_z_error), on images by AIS (dict
        log_z, stderr, ess, acceptance). Cached for unchanged parameters."""
        key = self._fingerprint()
        if self._log_z_cache[0] == key:
            return self._log_z_cache[1]
        c = self.config
        if self.likelihood_kind == "exact":
            fine = grid_log_normalizer(self.energy_fn, self.box, c["grid"])
            coarse = grid_log_normalizer(self.energy_fn, self.box, max(c["grid"] // 2, 2))
            result = {"log_z": fine, "log_z_error": abs(fine - coarse) / 3.0}
        elif self.likelihood_kind == "estimate":
            result = ais_log_normalizer(self.energy_fn, self.box[0], self.example_shape,
                                        c["ais_chains"], c["ais_temperatures"],
                                        generator=generator or autodiff.Generator(0))
        else:
            raise NotImplementedError("ebm: no normaliser for data that are neither 2-D "
                                      "points nor images")
        self._log_z_cache = (key, result)
        return result

    def log_prob(self, x, cond=None):
        """log p_theta(x) = -E_theta(x) - log Z_theta (N,) in nats; -inf outside B."""
        if cond is not None:
            raise ValueError("ebm.log_prob: this energy model is not conditional; got cond")
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        if tuple(x.shape[1:]) != self.example_shape:
            raise ValueError(f"ebm.log_prob: x must be (N, {', '.join(map(str, self.example_shape))}), "
                             f"got {tuple(x.shape)}")
        dtype = self._dtype()
        x = x.to(dtype)
        log_z = self.log_normalizer()["log_z"]
        with autodiff.no_grad():
            lp = -self.energy_fn(x) - log_z
        # p_theta is 0 outside B
        inside = B.xp.all((self._into_box(x).data == x.data).reshape(x.shape[0], -1), axis=1)
        return autodiff.where(autodiff.Tensor(inside), lp,
                              autodiff.full((x.shape[0],), -math.inf, dtype=dtype))

    def evaluate(self, dataset, ctx=None, batch_size=500, max_examples=None):
        """The NLL (exact on 2-D, an AIS estimate on images) and bits/dim over the whole
        ``dataset`` (log Z is computed once, so the examples are cheap); on toy 2-D data
        also the KL divergence to the truth, NLL - entropy, and log Z's error."""
        out = super().evaluate(dataset, ctx, batch_size=batch_size, max_examples=max_examples)
        info = self.log_normalizer()
        out["log_z"] = info["log_z"]
        if "log_z_error" in info:
            out["log_z_error"] = info["log_z_error"]
        if "stderr" in info:
            out["log_z_stderr"] = info["stderr"]
        name = self.data_info.get("name")
        if not self.image and name:
            from ..data import toy
            try:
                density = toy.get_density(name)
            except (ValueError, TypeError):
                density = None
            if density is not None:
                entropy, _ = density.entropy()
                out["kl"] = out["nll"] - float(entropy)
        return out


# --------------------------------------------------------------------------- the family
def _bounds(data_info):
    info = dict(data_info or {})
    if info.get("kind") == "image":
        return [list(info.get("value_range", (0.0, 1.0)))]
    bounds = info.get("bounds")
    if bounds is None and info.get("name"):
        from ..data import toy
        try:
            bounds = toy.get_density(info["name"]).bounds
        except (ValueError, TypeError):
            bounds = None
    if bounds is None:
        raise ValueError(f"ebm: the data set {info.get('name', '?')!r} has no bounds; set the "
                         "box with --set box=[[lo,hi],[lo,hi]]")
    return [list(map(float, b)) for b in bounds]


def default_config(data_info):
    """2-D: MLP 3 x 128 SiLU, Langevin proper (noise_scale 1) with h = 3e-3 (h a / 4 =
    0.075 at the precision a = 100 of a std-0.1 ring's cross-section), 20 steps, alpha 0.05,
    grid 256 (the best of four 2-minute trials on ring8:std=0.1, benchmarks/QUALITY.md), and
    tempered chains from T0 = 20 (KL 0.053 and 0.083 on ring8:std=0.1 in 5 minutes for seeds
    0 and 1, against 0.248 untempered: the modes' masses come out even). Images: SN-CNN, Du
    & Mordatch's SGLD (h = 20, noise_scale = 0.005 / sqrt 20), 60 steps, no tempering."""
    image = (data_info or {}).get("kind") == "image"
    config = {"hidden": 128, "depth": 3, "base_width": 32, "box": _bounds(data_info),
              "buffer_size": 10000, "reinit": 0.05, "alpha": 0.1, "grid": 256,
              "ais_chains": 100, "ais_temperatures": 1000, "negatives": "langevin",
              "anneal_from": 1.0}
    if image:
        config.update(step_size=20.0, noise_scale=0.005 / math.sqrt(20.0), n_steps=60,
                      sample_steps=200, alpha=1.0)
    else:
        config.update(step_size=3e-3, noise_scale=1.0, n_steps=20, sample_steps=1000,
                      alpha=0.05, anneal_from=20.0)
    return config


def train_defaults(data_info):
    """Adam(1e-3, betas (0.0, 0.999)) on 2-D; Adam(1e-4, (0.0, 0.999)) on images (Du &
    Mordatch use beta1 = 0: the CD gradient is noisy and non-stationary)."""
    if (data_info or {}).get("kind") == "image":
        return {"steps": 5000, "batch_size": 64, "lr": 1e-4, "betas": (0.0, 0.999),
                "log_every": 50, "checkpoint_every": 500}
    return {"steps": 20000, "batch_size": 256, "lr": 1e-3, "betas": (0.0, 0.999),
            "log_every": 100, "checkpoint_every": 2000}


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(hidden=16, depth=2, base_width=8, n_steps=3, sample_steps=5, buffer_size=64,
                  grid=32, ais_chains=4, ais_temperatures=5)
    return config


def build(config, data_info=None):
    from .base import with_data_info
    config = with_data_info(config, data_info)
    full = default_config(data_info or config.get("data_info"))
    full.update(config)
    return EnergyModel(full)
