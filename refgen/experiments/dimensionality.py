"""The curse of dimensionality, measured: a histogram and a kernel density estimate beside
learned density models as the dimension D grows from 2 to 64 to 784 (Bellman 1961; Scott
2015, "Multivariate Density Estimation", ch. 7; Theis et al. 2016, sec. 3.1 for the
likelihood conventions).

The estimators are the zoo's (``refgen.zoo.baselines``): a histogram with b^D cells and
additive smoothing, and a Gaussian KDE, each with its smoothing chosen by validation
likelihood. In 2-D both are as good as a network; in D dimensions a histogram with b bins
per axis has b^D cells, so with N = 50,000 examples and b >= 2 nearly every test image falls
in an empty cell (2^784 cells), and the best choice is b = 1: the uniform density, log2(L)
bits/dim. A KDE's log-density of a test point is dominated by its nearest training point,
log p(x) ~ -|x - x_nn|^2 / (2 h^2) - (D/2) log(2 pi h^2) - log N, and in high dimension the
nearest neighbour of a new image is far, so h must be wide and the density blurred.

One metric for every method and data set, per dimension:

* images (8x8 digits, L = 17; MNIST 28x28, L = 256): bits/dim of the test set, the
  density models on uniformly dequantized data with the log2(L) offset included (an upper
  bound on the discrete bits/dim), the discrete models (MADE, the VAE's discretized
  logistic) as a probability mass of the stored values; the uniform density scores
  log2(L), so all numbers are on the same scale and comparable within a data set;
* 2-D points (``ring8:std=0.1``): the continuous density's -log2 p(x) / D (no
  dequantization; nats/dim = bits/dim * ln 2), beside the truth's entropy per dimension.

Across data sets the absolute numbers are different questions (different data), so the
figure's second panel is the excess over the best learned model on the same data,
bits/dim(method) - min over learned models: about 0 for the classical estimators in 2-D,
large in 784-D. The VAE's number is from its bound (an upper bound on its bits/dim).
"""
import math
import time
from types import SimpleNamespace

import autodiff

__all__ = ["DESCRIPTION", "BUDGETS", "run"]

DESCRIPTION = (
    "The curse of dimensionality, measured: a histogram and a Gaussian KDE (smoothing chosen "
    "by validation likelihood) beside MADE, RealNVP and the VAE bound on ring8:std=0.1 "
    "(2-D), the 8x8 digits (64-D) and MNIST (784-D, when found through --data-dir; the KDE "
    "on a subset). One metric: test bits/dim (images dequantized, log2(L) included; 2-D: "
    "the continuous density per dimension). One figure: bits/dim against D, one line per "
    "method, and the excess over the best learned model.")

# Per data set: minutes (or steps) of training for each learned model, which models, the
# classical estimators' training subset, the test examples scored.
BUDGETS = {
    "default": {
        "data": {
            "ring8:std=0.1": {"minutes": 0.3, "models": ["made", "realnvp", "vae"],
                              "n_train": 10_000, "n_val": 1000, "n_eval": 2000},
            "digits": {"minutes": 0.5, "models": ["made", "realnvp", "vae"],
                       "n_train": None, "n_val": 1000, "n_eval": 360},
            "mnist": {"minutes": 1.5, "models": ["made", "vae"],
                      "n_train": 5000, "n_val": 500, "n_eval": 1000},
        },
        "steps": None},
    "tiny": {
        "data": {
            "ring8:std=0.1": {"minutes": None, "models": ["made", "realnvp", "vae"],
                              "n_train": 2000, "n_val": 200, "n_eval": 2000},
            "digits": {"minutes": None, "models": ["made", "vae"],
                       "n_train": 500, "n_val": 100, "n_eval": 50},
        },
        "steps": 3},
}
# the tiny budget with MNIST as well (loading it and a 784-D MADE cost tens of seconds on a
# busy machine: a slow-tier test runs it)
BUDGETS["tiny-mnist"] = {"steps": 3, "data": dict(BUDGETS["tiny"]["data"], mnist={
    "minutes": None, "models": ["made", "vae"], "n_train": 300, "n_val": 50, "n_eval": 50})}

# Config entries that make the rows comparable (as in the zoo): the VAE's default image
# decoder is Bernoulli on binarized pixels, a likelihood of other data; the discretized
# logistic models the grey levels the others see.
SETTINGS = {("vae", "image"): {"decoder": "logistic"}}

CLASSICAL = ("histogram", "kde")


def run(ctx):
    """Every method on every data set that is found; returns the table, writes the figure."""
    from ..data import load_dataset
    s = ctx.settings
    rows = []
    for data, spec in s["data"].items():
        try:
            test = load_dataset(data, "test", data_dir=ctx.data_dir)
        except FileNotFoundError:
            ctx.log(f"{data}: not found (give --data-dir); skipped")
            continue
        rows += _measure_data(ctx, data, spec, test, s["steps"])
    path = _figure(ctx, rows)
    ctx.publish(path)
    ctx.log(f"figure: {path}")
    return {"rows": rows, "convention": "bits/dim of the test set: images dequantized "
            "(log2(L) included) or a probability mass of the stored values; 2-D points: "
            "-log2 p(x) / D of the continuous density"}


def _measure_data(ctx, data, spec, test, steps):
    from ..data import load_dataset, toy
    n_eval = min(int(spec["n_eval"]), len(test))
    info = test.info
    test = _Dataset(test.x[:n_eval])
    image = info.get("kind") == "image"
    dims = math.prod(int(v) for v in info["shape"])
    rows = []
    base = {"data": data, "dims": dims, "n_eval": n_eval}
    if image:
        base["uniform_bpd"] = math.log2(int(info["levels"]))
    elif toy.parse_name(data)[0] in toy.DENSITIES and toy.get_density(data).exact:
        base["entropy_bpd"] = toy.get_density(data).entropy()[0] / (dims * math.log(2.0))
    # the classical estimators, on a training subset (the KDE's cost is N_test x N_train x D)
    load = {"n": spec["n_train"]} if not image else {}
    train = load_dataset(data, "train", data_dir=ctx.data_dir, **load)
    val = load_dataset(data, "val", data_dir=ctx.data_dir,
                       **({"n": spec["n_val"]} if not image else {}))
    n_train = len(train) if spec["n_train"] is None else min(len(train), spec["n_train"])
    subset = SimpleNamespace(x=train.x[:n_train])
    from ..zoo.baselines import BASELINES
    for name in CLASSICAL:
        t0 = time.perf_counter()
        model = BASELINES[name](train.info).fit(subset, val, generator=autodiff.Generator(ctx.seed),
                                                max_val=spec["n_val"])
        fit_seconds = time.perf_counter() - t0
        rows.append(_row(ctx, model, test, base, name, "classical", n_train=n_train,
                         fit_seconds=fit_seconds, smoothing=model.choice))
    for name in spec["models"]:
        settings = SETTINGS.get((name, "image" if image else "points"))
        # trained in the dtype in force (float32 from the command, float64 in the tests);
        # the global generator, which initialises the weights when the model is built, is
        # seeded first, so that a model does not depend on what ran before it
        autodiff.manual_seed(ctx.seed)
        model = ctx.train(name, data, minutes=spec["minutes"], steps=steps, settings=settings,
                          dtype=str(autodiff.get_default_dtype()))
        rows.append(_row(ctx, model, test, base, name, "learned", settings=settings or {},
                         train_minutes=spec["minutes"], train_steps=steps))
    return rows


def _row(ctx, model, test, base, name, group, **extra):
    """One method on one data set: the mean test bits/dim in the family interface's own
    convention (``GenerativeModel.bits_per_dim``, which dequantizes where the model is a
    density of images), its standard error over the test examples, and nats/dim."""
    from autodiff import backend as B
    t0 = time.perf_counter()
    generator = autodiff.Generator(ctx.seed + 1)
    parts = []
    with autodiff.no_grad():
        for start in range(0, test.x.shape[0], 250):
            bpd = model.bits_per_dim(test.x[start:start + 250], generator=generator)
            bpd = bpd.data if isinstance(bpd, autodiff.Tensor) else bpd
            parts.append(B.xp.asarray(bpd, dtype=B.xp.float64))
    bpd = B.xp.concatenate(parts)                                            # (N,)
    n = int(bpd.shape[0])
    mean = float(bpd.mean())
    stderr = float(bpd.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    row = dict(base, method=name, group=group, likelihood_kind=model.likelihood_kind,
               bpd=mean, bpd_stderr=stderr, nats_per_dim=mean * math.log(2.0),
               convention=model.bpd_convention,
               eval_seconds=round(time.perf_counter() - t0, 1), **extra)
    ctx.log(f"{base['data']} (D = {base['dims']}): {name:9s} {mean:8.4f} +- {stderr:.4f} "
            f"bits/dim ({model.likelihood_kind})")
    return row


class _Dataset:
    """The first n test examples."""

    def __init__(self, x):
        self.x, self.y = x, None

    def __len__(self):
        return int(self.x.shape[0])


def _figure(ctx, rows):
    """dimensionality.png: bits/dim against D per method, and the excess over the best
    learned model on the same data."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..plotting import save_figure
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    best = {}
    for r in rows:
        if r["group"] == "learned":
            best[r["data"]] = min(best.get(r["data"], math.inf), r["bpd"])
    for i, m in enumerate(methods):
        mine = sorted((r for r in rows if r["method"] == m), key=lambda r: r["dims"])
        style = "--" if m in CLASSICAL else "-"
        marker = "s" if m in CLASSICAL else "o"
        ax.plot([r["dims"] for r in mine], [r["bpd"] for r in mine], style, marker=marker,
                label=m, color=f"C{i}")
        have = [r for r in mine if r["data"] in best]
        ax2.plot([r["dims"] for r in have], [r["bpd"] - best[r["data"]] for r in have],
                 style, marker=marker, label=m, color=f"C{i}")
    seen = {}
    for r in rows:
        seen[r["data"]] = r
    for data, r in seen.items():
        if "uniform_bpd" in r:
            ax.plot([r["dims"]], [r["uniform_bpd"]], "k_", markersize=18)
            ax.annotate(f"uniform, {data}", (r["dims"], r["uniform_bpd"]), fontsize=7,
                        textcoords="offset points", xytext=(-20, 6))
        if "entropy_bpd" in r:
            ax.plot([r["dims"]], [r["entropy_bpd"]], "k*", markersize=9)
            ax.annotate(f"truth's entropy, {data}", (r["dims"], r["entropy_bpd"]), fontsize=7,
                        textcoords="offset points", xytext=(6, -4))
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("dimension D (2-D ring8:std=0.1, 8x8 digits, 28x28 MNIST)")
        a.grid(alpha=0.3)
    ax.set_ylabel("test NLL, bits/dim")
    ax.set_title("NLL per dimension (images: dequantized, log2 L included;\n2-D: the "
                 "continuous density)", fontsize=9)
    ax2.set_ylabel("bits/dim above the best learned model")
    ax2.set_title("the curse of dimensionality: the classical estimators fall behind",
                  fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, ctx.figure_path("dimensionality.png"))
