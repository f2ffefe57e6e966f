"""The caveat, measured: likelihood and sample quality answer different questions
(Theis, van den Oord and Bethge 2016, "A note on the evaluation of generative models",
sec. 3.2, samples and log-likelihood).

(a) A good likelihood with poor samples (Theis et al. 2016, sec. 3.2). Mix a trained model
p_theta with noise u:

    q(x) = w p_theta(x) + (1 - w) u(x),        w = 0.01.

Both terms are non-negative, so for EVERY x

    log q(x) >= log w + log p_theta(x) = log p_theta(x) - log 100,

and q's negative log-likelihood exceeds p_theta's by at most log(1/w) = 4.6 nats per
example: log(100)/D nats, or log2(100)/D bits, per dimension; 0.104 bits/dim on the 8x8
digits (D = 64), 0.0085 on MNIST (D = 784). A model's log-likelihood grows with D (the MADE
here: about -94 nats per digit), so the loss is small and shrinks with the dimension; yet 99 % of
q's samples are pure noise. ``NoiseMixture`` is q as a ``GenerativeModel``; its noise u is
uniform in the convention of p_theta, so that the two likelihoods compare:

* p_theta discrete (a probability mass of the stored values k/(L - 1)): u(x) = L^-D,
  the uniform mass over the L^D images;
* p_theta a density of dequantized images on [lo, hi]^D: u(x) = (hi - lo)^-D;
* 2-D points: the uniform density on a box given by the caller (a density must be
  normalised on a known set; it is -inf outside the box).

log q is a log-sum-exp of the two log-terms, so neither p_theta(x) ~ e^-94 nor u(x) = 17^-64
(e^-181) underflows, and the bound holds in floating point as well (``_logsumexp_rows``).

(b) Great samples with a poor likelihood (Theis et al. 2016, sec. 3.2; the mode collapse of
GANs, Srivastava et al. 2017). A GAN on ``ring8`` (8 Gaussians on a circle of radius 2, std
0.02, the standard setting of Srivastava et al. 2017) draws samples that lie on modes (a
high share of "high quality" samples, within 3 std) while spreading them over few of the
modes (counted strictly: modes with at least 20 of 2500 samples; and the KL divergence of
the samples' histogram over the modes from the uniform weights). Here the saturating
minimax loss of Goodfellow et al. (2014) collapsed; the non-saturating loss of the same
paper, trained alike, is measured beside it. A GAN has no likelihood; the density its
samples imply, a kernel density estimate fitted on its samples (bandwidth chosen by the likelihood of more
GAN samples, so the real data are never seen), gives the real test points a poor
log-likelihood next to the same estimator fitted on real points and the truth's entropy.
(Theis et al. warn against such Parzen-window estimates as a measure of a model's
likelihood; here it only measures how far the samples' spread is from the data's.)
Precision and recall (Kynkaanniemi et al. 2019, k = 3) on the 2-D points are reported
beside the mode counts.

Numbers: nats per example on 2-D points; bits per dimension on images (the model's own
convention, ``GenerativeModel.bpd_convention``; the mixture shares it).
"""
import math
from types import SimpleNamespace

import autodiff
from autodiff import backend as B

from ..families.base import GenerativeModel

__all__ = ["DESCRIPTION", "BUDGETS", "run", "NoiseMixture"]

DESCRIPTION = (
    "The caveat of Theis et al. (2016), measured both ways. (a) q = 0.01 p + 0.99 noise, with "
    "p a MADE trained on the 8x8 digits: log q(x) >= log p(x) - log 100 for every test image, "
    "so q loses at most log2(100)/64 = 0.104 bits/dim, while 99 % of its samples are noise "
    "(FID, precision and recall on the digits classifier's features). (b) GANs on ring8 (the "
    "minimax and the non-saturating loss, three seeds each): samples on the modes (high-quality "
    "share) while modes are missed, and the density their samples imply (a KDE on them) gives "
    "real test points a poor likelihood. One figure with both cases side by side.")

# The GANs of part (b): the saturating minimax loss of Goodfellow et al. (2014) and the
# non-saturating loss of the same paper (Adam 1e-3, 6000 steps), each from several seeds:
# whether a GAN collapses here depends on its initialisation (benchmarks/QUALITY.md).
GANS = ({"name": "minimax", "settings": {"loss": "minimax"}},
        {"name": "non-saturating", "settings": {"loss": "ns"}})

BUDGETS = {
    # p_theta: the model, its data and its training; the GAN on the 2-D mixture; how many
    # test examples, samples and points the numbers use
    "default": {"p_model": "made", "p_data": "digits", "p_minutes": 1.0, "p_steps": None,
                "weight": 0.01, "n_eval": 360, "n_samples": 300,
                "gan_data": "ring8", "gan_minutes": None, "gan_steps": 6000,
                "gans": GANS, "gan_seeds": (0, 1, 2), "n_points": 2500, "n_kde_val": 1000},
    "tiny": {"p_model": "made", "p_data": "digits", "p_minutes": None, "p_steps": 3,
             "weight": 0.01, "n_eval": 40, "n_samples": 40,
             "gan_data": "ring8", "gan_minutes": None, "gan_steps": 3,
             "gans": GANS[:1], "gan_seeds": (0,), "n_points": 300, "n_kde_val": 100},
}


class NoiseMixture(GenerativeModel):
    """q(x) = w p_theta(x) + (1 - w) u(x): a model diluted with uniform noise (module
    docstring, Theis et al. 2016, sec. 3.2).

    :param model: p_theta, a ``GenerativeModel`` with a likelihood.
    :param weight: w in (0, 1], the model's share.
    :param box: (low, high) of the uniform noise on 2-D points (floats or one per
        dimension); images use the data's value range and ignore it.
    """

    family = "noise-mixture"

    def __init__(self, model, weight=0.01, box=None):
        if not isinstance(model, GenerativeModel):
            raise TypeError(f"NoiseMixture: model must be a GenerativeModel, got "
                            f"{type(model).__name__}")
        if not model.has_likelihood:
            raise ValueError(f"NoiseMixture: model {model.family!r} has no likelihood "
                             f"(likelihood_kind = {model.likelihood_kind!r})")
        weight = float(weight)
        if not 0.0 < weight <= 1.0:   # also refuses NaN
            raise ValueError(f"NoiseMixture: weight must be in (0, 1], got {weight!r}")
        super().__init__({"data_info": model.data_info, "weight": weight})
        self.model = model
        self.weight = weight
        self.kind = model.kind
        self.likelihood_kind = model.likelihood_kind   # a bound on log p stays a bound on log q
        self.discrete = model.discrete
        self.sample_options = tuple(getattr(model, "sample_options", ()))
        d = self.num_dims
        if self.levels:
            lo, hi = self.value_range
            self.low = B.xp.full((d,), lo, dtype=B.xp.float64)
            self.high = B.xp.full((d,), hi, dtype=B.xp.float64)
        else:
            if box is None:
                raise ValueError("NoiseMixture: continuous points need box=(low, high) for the "
                                 "uniform noise")
            low, high = box
            self.low = B.xp.broadcast_to(B.xp.asarray(low, dtype=B.xp.float64), (d,)).copy()
            self.high = B.xp.broadcast_to(B.xp.asarray(high, dtype=B.xp.float64), (d,)).copy()
            if not bool((self.high > self.low).all()):
                raise ValueError(f"NoiseMixture: box must have low < high in every dimension, "
                                 f"got {box!r}")

    @property
    def nfe_per_sample(self):
        """Expected network evaluations: only the share w of samples runs the model."""
        return self.weight * self.model.nfe_per_sample

    def log_noise(self, x):
        """log u(x) (N,) in p_theta's convention (module docstring)."""
        xp = B.xp
        flat = x.reshape(x.shape[0], -1)
        if self.discrete:   # the uniform mass over the L^D stored images
            return xp.full((x.shape[0],), -self.num_dims * math.log(self.levels))
        log_volume = float(xp.log(self.high - self.low).sum())
        inside = ((flat >= self.low) & (flat <= self.high)).all(axis=1)
        return xp.where(inside, -log_volume, -xp.inf)

    def log_prob(self, x, cond=None):
        """log q(x) = logsumexp(log w + log p_theta(x), log(1 - w) + log u(x)), (N,) nats."""
        xp = B.xp
        a = x.data if isinstance(x, autodiff.Tensor) else B.to_backend(x)
        log_p = self.model.log_prob(autodiff.Tensor(a), cond=cond)
        log_p = (log_p.data if isinstance(log_p, autodiff.Tensor) else log_p)
        terms = xp.stack([math.log(self.weight) + log_p.astype(xp.float64),
                          math.log1p(-self.weight) + self.log_noise(a)])   # (2, N)
        return autodiff.Tensor(_logsumexp_rows(terms))

    def sample_with_source(self, n, generator=None, cond=None, **options):
        """(x (n, *example_shape), from_model (n,) bool): which samples came from p_theta."""
        xp = B.xp
        generator = generator or autodiff.default_generator()
        n = int(n)
        from_model = generator.random((n,), "float64") < self.weight
        k = int(from_model.sum())
        x = self._noise(n, generator)
        if k:
            drawn = self.model.sample(k, generator, cond=cond, **options)
            drawn = drawn.data if isinstance(drawn, autodiff.Tensor) else B.to_backend(drawn)
            x[xp.nonzero(from_model)[0]] = drawn.reshape(k, -1).astype(xp.float64)
        x = x.reshape((n,) + self.example_shape).astype(B.get_default_dtype())
        return autodiff.Tensor(x), from_model

    def sample(self, n, generator=None, cond=None, **options):
        return self.sample_with_source(n, generator, cond=cond, **options)[0]

    def _noise(self, n, generator):
        """n draws of u, flat (n, D), float64."""
        u = generator.random((n, self.num_dims), "float64")
        if self.discrete:   # a uniform level k in {0, ..., L-1}, stored as k/(L - 1)
            k = B.xp.minimum(B.xp.floor(u * self.levels), self.levels - 1)
            return self.low + (self.high - self.low) * k / (self.levels - 1)
        return self.low + (self.high - self.low) * u


def _logsumexp_rows(terms):
    """log sum_j exp(terms[j]) over axis 0 (terms (J, N) -> (N,)), shifted by the largest
    term m: m + log(sum_j exp(terms[j] - m)). The sum is at least exp(0) = 1, so its log is
    >= 0 and the result is never below any term: the bound log q >= log w + log p holds in
    floating point too, not only on paper. A column of -inf stays -inf."""
    xp = B.xp
    m = terms.max(axis=0)
    shift = xp.where(xp.isfinite(m), m, 0.0)   # exp(-inf - (-inf)) would be NaN
    total = xp.exp(terms - shift).sum(axis=0)
    return xp.where(total > 0, xp.log(xp.where(total > 0, total, 1.0)), -xp.inf) + shift


def run(ctx):
    """Both halves of the caveat; returns their numbers and writes ``caveat.png``."""
    s = ctx.settings
    diluted, pictures = _diluted_model(ctx, s)
    gans, shown, points = [], [], []
    for variant in s["gans"]:
        for k, seed in enumerate(s["gan_seeds"]):
            numbers, drawn = _sharp_but_narrow(ctx, s, variant, ctx.seed + seed)
            gans.append(numbers)
            if k == 0:   # the figure shows the first seed of each loss, whatever it did
                shown.append(numbers)
                points.append(drawn)
    path = _figure(ctx, diluted, shown, pictures, points)
    ctx.publish(path)
    ctx.log(f"figure: {path}")
    return {"diluted": diluted, "gans": gans}


def _as_array(t):
    return t.data if isinstance(t, autodiff.Tensor) else B.to_backend(t)


def _diluted_model(ctx, s):
    """(a): p_theta against q = w p_theta + (1 - w) u, per test example and by samples."""
    from ..data import load_dataset
    from ..metrics import evaluate_samples
    from ..metrics.likelihood import bits_per_dim, bits_per_dim_discrete
    xp = B.xp
    # trained in the dtype in force (float32 from the command, float64 in the tests); the
    # global generator (which initialises the weights) seeded first, as for the GANs
    autodiff.manual_seed(ctx.seed)
    p = ctx.train(s["p_model"], s["p_data"], minutes=s["p_minutes"], steps=s["p_steps"],
                  dtype=str(autodiff.get_default_dtype()))
    q = NoiseMixture(p, s["weight"])
    test = load_dataset(s["p_data"], "test", data_dir=ctx.data_dir)
    x = test.x[: s["n_eval"]]
    d = p.num_dims
    # both likelihoods of the SAME points: dequantized once when p_theta is a density
    scale = 1.0
    if not p.discrete and p.levels:
        x = p.dequantize(x, generator=autodiff.Generator(ctx.seed))
        lo, hi = p.value_range
        scale = (hi - lo) / p.levels
    with autodiff.no_grad():
        log_p = _as_array(p.log_prob(autodiff.Tensor(x))).astype(xp.float64)   # (N,)
        log_q = _as_array(q.log_prob(autodiff.Tensor(x))).astype(xp.float64)   # (N,)
    if p.discrete:
        bpd_p, bpd_q = bits_per_dim_discrete(log_p, d), bits_per_dim_discrete(log_q, d)
    else:
        bpd_p, bpd_q = bits_per_dim(log_p, d, scale), bits_per_dim(log_q, d, scale)
    # the bound, per example, in nats: log q - (log p + log w) >= 0
    margin = log_q - (log_p + math.log(s["weight"]))
    bound_nats = -math.log(s["weight"])
    out = {
        "model": s["p_model"], "data": s["p_data"], "weight": s["weight"], "dims": d,
        "n_eval": int(x.shape[0]), "convention": p.bpd_convention,
        "value_range": list(p.value_range),
        "bpd_p": float(bpd_p.mean()), "bpd_q": float(bpd_q.mean()),
        "bpd_lost_mean": float((bpd_q - bpd_p).mean()),
        "bpd_lost_max": float((bpd_q - bpd_p).max()),
        "bpd_lost_bound": bound_nats / (d * math.log(2.0)),
        "nats_lost_max": float((log_p - log_q).max()), "nats_lost_bound": bound_nats,
        "bound_margin_min_nats": float(margin.min()),
        "bound_holds_every_example": bool((margin >= 0).all()),
    }
    # samples: q's are mostly noise; the same metrics for p_theta's own samples beside them
    with autodiff.no_grad():
        xs_p = _as_array(p.sample(s["n_samples"], autodiff.Generator(ctx.seed + 1)))
        xs_q, from_model = q.sample_with_source(s["n_samples"], autodiff.Generator(ctx.seed + 2))
    xs_q = _as_array(xs_q)
    out["q_share_from_model"] = float(from_model.mean())
    out["n_samples"] = int(s["n_samples"])
    lo, hi = p.value_range
    for name, xs in (("p", xs_p), ("q", xs_q)):
        unit = xp.clip((xs.astype(xp.float64) - lo) / (hi - lo), 0.0, 1.0)
        report = evaluate_samples(unit, test, metrics=["fid", "pr"], seed=ctx.seed)
        out.update({f"fid_{name}": report["fid"], f"precision_{name}": report["precision"],
                    f"recall_{name}": report["recall"]})
    out["extractor"] = report["extractor"]
    ctx.log(f"(a) {s['p_model']} on {s['p_data']} (D = {d}): p {out['bpd_p']:.4f} bits/dim, "
            f"q = {s['weight']:g} p + {1 - s['weight']:g} noise {out['bpd_q']:.4f} bits/dim; "
            f"lost {out['bpd_lost_mean']:.4f} on average, {out['bpd_lost_max']:.4f} at most "
            f"<= log2(1/w)/D = {out['bpd_lost_bound']:.4f}; bound holds on every example: "
            f"{out['bound_holds_every_example']}")
    ctx.log(f"(a) samples ({out['extractor']} features): FID p {out['fid_p']:.2f}, "
            f"q {out['fid_q']:.2f}; precision p {out['precision_p']:.3f}, "
            f"q {out['precision_q']:.3f}; q's samples from the model: "
            f"{100 * out['q_share_from_model']:.1f} %")
    return out, (xs_p, xs_q, from_model)


def _sharp_but_narrow(ctx, s, variant, seed):
    """(b): a GAN's samples on the modes, its coverage, and the likelihood they imply."""
    from ..data import load_dataset, toy
    from ..metrics import mode_coverage, precision_recall
    from ..zoo.baselines import KernelDensity
    xp = B.xp
    data, n = s["gan_data"], s["n_points"]
    # the weights are initialised from the global generator when the model is built, before
    # the loop seeds it: seeded here, so that the run does not depend on what ran before
    autodiff.manual_seed(seed)
    gan = ctx.train("gan", data, minutes=s["gan_minutes"], steps=s["gan_steps"],
                    settings=variant["settings"], options={"seed": seed},
                    tag=f"gan-{data}-{variant['name']}-seed{seed}",
                    dtype=str(autodiff.get_default_dtype()))
    with autodiff.no_grad():
        fake = _as_array(gan.sample(n, autodiff.Generator(ctx.seed + 3))).astype(xp.float64)
        more = _as_array(gan.sample(s["n_kde_val"], autodiff.Generator(ctx.seed + 4)))
    train = load_dataset(data, "train", n=n, seed=ctx.seed)
    val = load_dataset(data, "val", n=s["n_kde_val"], seed=ctx.seed + 1)
    test = load_dataset(data, "test", n=n, seed=ctx.seed + 2)
    modes = mode_coverage(fake, data)
    modes_real = mode_coverage(test.x, data)
    pr = precision_recall(test.x, fake, k=3)
    # the density the GAN's samples imply: a KDE that sees only GAN samples ...
    kde_gan = KernelDensity(train.info).fit(SimpleNamespace(x=fake),
                                            SimpleNamespace(x=more.astype(xp.float64)))
    # ... and the same estimator on as many real points, for scale
    kde_real = KernelDensity(train.info).fit(train, val)
    nll_gan = -_as_array(kde_gan.log_prob(test.x))
    nll_real = -_as_array(kde_real.log_prob(test.x))
    entropy = toy.get_density(data).entropy()[0]
    out = {
        "gan": variant["name"], "settings": variant["settings"], "seed": seed, "data": data,
        "n_samples": n, "modes": int(modes.n_modes),
        "modes_captured": int(modes.modes_captured),
        "modes_with_20": int(modes.modes_with_min_count),
        "high_quality_share": float(modes.high_quality_share),
        "high_quality_share_real": float(modes_real.high_quality_share),
        "kl_modes": float(modes.kl_modes),
        "precision": float(pr.precision), "recall": float(pr.recall),
        "kde_on_gan_samples_nll": float(nll_gan.mean()),
        "kde_on_gan_samples_nll_median": float(xp.median(nll_gan)),
        "kde_on_gan_samples_bandwidth": kde_gan.choice["bandwidth"],
        "kde_on_real_nll": float(nll_real.mean()),
        "kde_on_real_nll_stderr": float(nll_real.std(ddof=1)) / math.sqrt(nll_real.shape[0]),
        "kde_on_real_bandwidth": kde_real.choice["bandwidth"],
        "entropy": float(entropy), "nll_unit": "nats per point",
    }
    ctx.log(f"(b) gan ({variant['name']}, seed {seed}) on {data}: {out['modes_captured']}/{out['modes']} modes "
            f"({out['modes_with_20']} with >= 20), high quality {100 * out['high_quality_share']:.1f} % "
            f"(real {100 * out['high_quality_share_real']:.1f} %), precision "
            f"{out['precision']:.3f}, recall {out['recall']:.3f}")
    ctx.log(f"(b) test NLL of a KDE on the GAN's samples {out['kde_on_gan_samples_nll']:.3f} nats "
            f"(median {out['kde_on_gan_samples_nll_median']:.3f}); on real points "
            f"{out['kde_on_real_nll']:.3f}; the truth's entropy {entropy:.3f}")
    density = toy.get_density(data)
    return out, (B.to_numpy(fake), B.to_numpy(xp.asarray(density.means)), float(density.sigma))


def _figure(ctx, diluted, gans, pictures, points):
    """caveat.png: p's samples, q's samples, each GAN's samples over the modes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..plotting import image_grid, save_figure
    from matplotlib.patches import Rectangle
    xs_p, xs_q, from_model = pictures
    fig, axes = plt.subplots(1, 2 + len(gans), figsize=(4.8 * (2 + len(gans)), 5.0))
    d = diluted
    n_show = min(64, xs_p.shape[0])
    value_range = tuple(d["value_range"])
    for ax, xs, title in (
            (axes[0], xs_p, f"p = {d['model']} on {d['data']}\n{d['bpd_p']:.3f} bits/dim, "
                            f"FID {d['fid_p']:.1f}, precision {d['precision_p']:.2f}"),
            (axes[1], xs_q, f"q = {d['weight']:g} p + {1 - d['weight']:g} noise\n"
                            f"{d['bpd_q']:.3f} bits/dim (+{d['bpd_lost_mean']:.3f} <= "
                            f"{d['bpd_lost_bound']:.3f}), FID {d['fid_q']:.1f}, "
                            f"precision {d['precision_q']:.2f}")):
        ax.imshow(image_grid(xs[:n_show], value_range=value_range), cmap="gray_r",
                  vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    # frame q's samples that came from p (the share w; most grids of 64 show none)
    h, w = xs_q.shape[-2:]
    ncol = int(math.ceil(math.sqrt(n_show)))
    chosen = [int(i) for i in B.to_numpy(B.xp.nonzero(from_model[:n_show])[0])]
    for i in chosen:
        r, k = divmod(i, ncol)
        axes[1].add_patch(Rectangle((k * (w + 1) - 0.5, r * (h + 1) - 0.5), w + 1, h + 1,
                                    fill=False, edgecolor="red", linewidth=1.5))
    axes[1].text(0.5, -0.02, f"{len(chosen)} of the {n_show} shown drawn from p (framed in "
                 f"red); {100 * d['q_share_from_model']:.1f} % of all {d['n_samples']}",
                 transform=axes[1].transAxes, ha="center", va="top", fontsize=8)
    theta = [2 * math.pi * k / 48 for k in range(49)]
    for ax, c, (fake, means, sigma) in zip(axes[2:], gans, points):
        ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.4, color="C3")
        for mx, my in means:   # the 3-sigma circle of every mode: "high quality" inside
            ax.plot([mx + 3 * sigma * math.cos(t) for t in theta],
                    [my + 3 * sigma * math.sin(t) for t in theta], color="k", lw=0.6)
        ax.set_aspect("equal")
        ax.set_title(f"GAN, {c['gan']} loss (seed {c['seed']}) on {c['data']}:\n"
                     f"{c['modes_captured']}/{c['modes']} modes ({c['modes_with_20']} with >= "
                     f"20), {100 * c['high_quality_share']:.0f} % high quality\n"
                     f"precision {c['precision']:.2f}, recall {c['recall']:.2f}\n"
                     f"test NLL of a KDE on its samples {c['kde_on_gan_samples_nll']:.4g} nats"
                     f"\n(KDE on real points {c['kde_on_real_nll']:.2f}; entropy "
                     f"{c['entropy']:.2f})", fontsize=8)
    fig.suptitle("Likelihood and sample quality disagree (Theis et al. 2016): a good "
                 "likelihood with noise samples (left), sharp samples with a bad likelihood "
                 "(right)", fontsize=10, y=1.1)
    return save_figure(fig, ctx.figure_path("caveat.png"))
