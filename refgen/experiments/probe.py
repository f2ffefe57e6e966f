"""``refgen experiment probe``: representations learned without labels, read by a linear probe.

A generative model trained on x alone builds a map x -> phi(x) on the way; if phi makes the
classes linearly separable, a handful of labels suffices. The measure is the linear probe of
``refgen.metrics.probe`` (multinomial logistic regression with an L2 penalty lambda, L-BFGS
to convergence, lambda chosen on a held-out validation split), trained on n labelled images
per class (2 to 100 on the 8x8 digits of the default budget, 10, 100, 1000 on MNIST with
``--budget mnist``), several random labelled subsets each (mean +- std of test accuracy),
on four representations of the same images:

* ``pixels``: phi(x) = x, the baseline;
* ``vae``: the posterior mean phi(x) = mu_phi(x) of q_phi(z | x) (Kingma & Welling 2014);
* ``flow``: the base-space point phi(x) = f_theta(x) of a RealNVP (Dinh et al. 2017),
  x at the centre of its dequantization bin, (k + 1/2) / L: the flow is a bijection, so
  this keeps all of x and only changes its geometry;
* ``diffusion``: the U-Net's middle-block activations of an unconditional DDPM at a small
  noise level, h_mid(x_t, t) with x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
  (one fixed eps per image). Small t because the network is trained on noisy inputs only
  and the low-noise denoiser must keep the image's content, and the bottleneck because it
  is the U-Net's most compressed summary; Baranchuk et al. 2022 and Xiang et al. 2023
  ("Denoising diffusion autoencoders are unified self-supervised learners") probe the
  same kind of features and find small-to-moderate t best;
* ``diffusion-init``: the same features from the same U-Net untrained (its initialisation,
  ``autodiff.manual_seed(seed)``), the control that separates what training taught the
  network from what its architecture does to any input. (ADM initialises each ResBlock's
  last convolution to zero, so at initialisation the middle block sees a random linear
  map of x_t through the input and downsampling convolutions.)

Every model is unconditional: no label reaches training. The figure plots accuracy against
labels per class, one line per representation; two more figures interpolate between test
images, through the VAE's latent means and through the flow's base space.
"""
import math

# host-side: choosing labelled subsets and tabulating accuracies (small index arrays)
import numpy as np

import autodiff
from autodiff import backend as B

from ..data import load_dataset
from ..families import get_family
from ..metrics.probe import select_l2

__all__ = ["DESCRIPTION", "BUDGETS", "run", "REPRESENTATIONS", "labelled_subsets",
           "vae_features", "flow_features", "diffusion_features", "flow_interpolation"]

DESCRIPTION = (
    "Linear probes on representations learned without labels. An L2-regularised "
    "multinomial logistic regression (L-BFGS to convergence, lambda chosen on a validation "
    "split) is trained on n labelled images per class (several random draws, mean +- std) "
    "on raw pixels, on the VAE's posterior means, on a RealNVP's base-space point f(x) and "
    "on an unconditional DDPM U-Net's middle-block activations at a small noise level. "
    "Default budget: 8x8 digits, n = 2..100; --budget mnist: MNIST from --data-dir, "
    "n = 10, 100, 1000 (falls back to digits without the files). Figures: accuracy "
    "against labels per class, and latent interpolations through the VAE and the flow.")

REPRESENTATIONS = ("pixels", "vae", "flow", "diffusion", "diffusion-init")

BUDGETS = {
    # 8x8 digits on 2 shared CPU cores: 9 minutes of training, then features and probes in
    # about a minute. The digits' training split holds about 120 images a class, so 100
    # labels a class is the most it allows (the "mnist" budget has 1000).
    "default": {
        "data": "digits", "fallback_data": "digits",
        "labels_per_class": [2, 5, 10, 30, 100], "draws": 5,
        "pool": 1197, "val": 300, "test": 300,
        "l2_grid": [10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
        "models": {
            "vae": {"minutes": 2.0, "settings": {}},
            "realnvp": {"minutes": 3.0, "settings": {}},
            "ddpm": {"minutes": 4.0, "settings": {"conditional": False}},
        },
        "diffusion_t": 50, "interpolation_pairs": 6, "interpolation_steps": 10,
    },
    # MNIST (--data-dir): the 10, 100, 1000 labels a class. Not run on the 2-core
    # machine: there, under the other jobs' load, the flow made 23 and the DDPM 12
    # training steps in 3 minutes each (benchmarks/QUALITY.md); it needs a GPU or more time.
    "mnist": {
        "data": "mnist", "fallback_data": "digits",
        "labels_per_class": [10, 100, 1000], "draws": 3,
        "pool": 15000, "val": 1000, "test": 5000,
        "l2_grid": [10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6],
        "models": {
            "vae": {"minutes": 10.0, "settings": {}},
            "realnvp": {"minutes": 20.0, "settings": {"hidden": 32, "blocks": 1}},
            "ddpm": {"minutes": 20.0, "settings": {"conditional": False}},
        },
        "diffusion_t": 50, "interpolation_pairs": 6, "interpolation_steps": 10,
    },
    # seconds, for the test: digits, tiny networks, a few steps each
    "tiny": {
        "data": "digits", "fallback_data": "digits",
        "labels_per_class": [2, 10], "draws": 2,
        "pool": 600, "val": 150, "test": 200,
        "l2_grid": [1.0, 1e-2, 1e-4],
        "models": {
            "vae": {"steps": 20, "settings": {"latent_dim": 4, "hidden": [32]}},
            "realnvp": {"steps": 10, "settings": {"hidden": 8, "blocks": 1,
                                                  "steps_per_scale": 1}},
            "ddpm": {"steps": 5, "settings": {"conditional": False, "model_channels": 8,
                                              "num_groups": 4, "timesteps": 100}},
        },
        "diffusion_t": 5, "interpolation_pairs": 2, "interpolation_steps": 5,
    },
}

_MODEL_OF = {"vae": "vae", "flow": "realnvp", "diffusion": "ddpm"}


# ============================================================================ labels
def labelled_subsets(labels, counts, draws, seed):
    """Random labelled subsets: for draw r, one random order of each class's indices
    (``numpy.random.default_rng((seed, r))``), and for each n in ``counts`` the first n of
    each class, so the subsets of one draw are nested (10 of them inside the 100).

    labels (N,) int -> {(n, r): index array (K n,)}; a ValueError when a class has fewer
    than max(counts) examples."""
    y = np.asarray(labels).astype(np.int64)
    classes = np.unique(y)
    biggest = max(counts)
    per_class = {k: np.flatnonzero(y == k) for k in classes}
    short = {int(k): len(v) for k, v in per_class.items() if len(v) < biggest}
    if short:
        raise ValueError(f"labelled_subsets: {biggest} labels per class asked, but the pool "
                         f"holds fewer for classes {short}")
    out = {}
    for r in range(draws):
        rng = np.random.default_rng((seed, r))
        orders = {k: rng.permutation(v) for k, v in per_class.items()}
        for n in counts:
            out[(n, r)] = np.sort(np.concatenate([orders[k][:n] for k in classes]))
    return out


# ============================================================================ features
def _batches(x, batch_size):
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size]


def _flat(t):
    return t.reshape(t.shape[0], -1).data


def vae_features(model, x, batch_size=500):
    """mu_phi(x): the mean of q_phi(z | x), (N, d). Grey images go in as they are (the
    encoder of a Bernoulli VAE is trained on binarized draws whose mean is x)."""
    with autodiff.no_grad():
        parts = [_flat(model.encode(autodiff.Tensor(b)).mean) for b in _batches(x, batch_size)]
    return B.xp.concatenate(parts)


def dequantization_centre(model, x):
    """(k + 1/2) / L scaled to the value range: the centre of the bin a flow was trained on
    (x = k / (L - 1) is stored; training dequantizes to (k + u) / L, u ~ U[0, 1))."""
    lo, hi = model.value_range
    levels = model.levels
    k = B.xp.rint((x - lo) / (hi - lo) * (levels - 1))
    return lo + (hi - lo) * (k + 0.5) / levels


def flow_features(model, x, batch_size=500):
    """f_theta(x) at the bin centres, flattened: (N, D)."""
    x = dequantization_centre(model, x).astype(model._dtype())
    with autodiff.no_grad():
        parts = [_flat(model.encode(autodiff.Tensor(b))) for b in _batches(x, batch_size)]
    return B.xp.concatenate(parts)


def diffusion_features(model, x, t_index, generator, batch_size=250):
    """The U-Net's middle-block activations h_mid(x_t, t) (N, C_mid H_mid W_mid) at
    schedule index ``t_index``, x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
    with x_0 in the model's [-1, 1] and eps ~ N(0, I) from ``generator``; the null label
    for a class-conditional U-Net (its unconditional mode)."""
    net = model.net
    if not hasattr(net, "middle_block"):
        raise ValueError("diffusion_features: needs a DDPM with the U-Net backbone (images)")
    T = model.schedule.num_timesteps
    if not (isinstance(t_index, int) and 0 <= t_index < T):
        raise ValueError(f"diffusion_features: t_index must be an int in [0, {T - 1}], got "
                         f"{t_index!r}")
    parts = []
    with autodiff.no_grad():
        for b in _batches(x, batch_size):
            x0 = model.to_model_space(autodiff.Tensor(b))
            n = x0.shape[0]
            t = B.xp.full((n,), t_index, dtype=B.numpy.int64)
            eps = autodiff.randn(*x0.shape, generator=generator, dtype=x0.dtype)
            xt = model.schedule.q_sample(x0, t, eps)
            t_net = model.schedule.timesteps[t].astype(B.numpy.float64)
            emb = net.embed(autodiff.Tensor(B.xp.asarray(t_net, dtype=x0.dtype)), None, n=n,
                            dtype=x0.dtype)
            h = xt
            for block in net.input_blocks:   # the encoder half of UNet.forward
                h = block(h, emb)
            parts.append(_flat(net.middle_block(h, emb)))
    return B.xp.concatenate(parts)


# ============================================================================ interpolation
def flow_interpolation(model, x_a, x_b, steps):
    """x along the straight line in base space, f^{-1}((1 - s) f(x_a) + s f(x_b)),
    s = 0, 1/(steps-1), ..., 1: (N, steps, *example_shape). The ends are x_a and x_b at
    their bin centres (the flow is a bijection)."""
    za = model.encode(dequantization_centre(model, x_a).astype(model._dtype()))
    zb = model.encode(dequantization_centre(model, x_b).astype(model._dtype()))
    s = B.xp.linspace(0.0, 1.0, steps, dtype=za.dtype).reshape((steps, 1) +
                                                               (1,) * (za.ndim - 1))
    z = (1.0 - s) * za.data[None] + s * zb.data[None]           # (steps, N, *base)
    n = za.shape[0]
    with autodiff.no_grad():
        x = model.flow.decode(autodiff.Tensor(z.reshape((steps * n,) + tuple(za.shape[1:]))))
    x = x.reshape((steps, n) + model.example_shape).data
    return B.xp.swapaxes(x, 0, 1)


def _interpolation_figures(ctx, models, test_x, pairs, steps):
    from .. import plotting
    paths = {}
    xa, xb = test_x[:pairs], test_x[pairs:2 * pairs]
    if "vae" in models:
        m = models["vae"]
        with autodiff.no_grad():
            rows = m.interpolate(autodiff.Tensor(xa), autodiff.Tensor(xb), steps=steps)
        p = plotting.save_image_grid(rows.reshape((pairs * steps,) + m.example_shape),
                                     ctx.figure_path("interpolation_vae.png"), nrow=steps,
                                     value_range=m.value_range,
                                     title="VAE: decoder means along (1-s) mu(x_a) + s mu(x_b)")
        paths["vae"] = ctx.publish(p)
    if "flow" in models:
        m = models["flow"]
        with autodiff.no_grad():
            rows = flow_interpolation(m, xa, xb, steps)
        p = plotting.save_image_grid(autodiff.Tensor(rows.reshape((pairs * steps,)
                                                                  + m.example_shape)),
                                     ctx.figure_path("interpolation_flow.png"), nrow=steps,
                                     value_range=m.value_range,
                                     title="RealNVP: f^-1((1-s) f(x_a) + s f(x_b))")
        paths["flow"] = ctx.publish(p)
    return paths


def _accuracy_figure(ctx, table, counts, data):
    from .. import plotting
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for rep, row in table.items():
        means = [row[str(n)]["mean"] for n in counts]
        stds = [row[str(n)]["std"] for n in counts]
        ax.errorbar(counts, means, yerr=stds, marker="o", capsize=3, label=rep)
    ax.set_xscale("log")
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy of the linear probe")
    ax.set_title(f"linear probe on {data} (mean +- std over draws)")
    ax.grid(alpha=0.3)
    ax.legend()
    path = plotting.save_figure(fig, ctx.figure_path("probe_accuracy.png"))
    return ctx.publish(path)


# ============================================================================ the experiment
def _load_data(ctx, settings):
    """The data set: MNIST from --data-dir, or the fallback (digits) with a note."""
    name = settings["data"]
    try:
        splits = {s: load_dataset(name, split=s, data_dir=ctx.data_dir)
                  for s in ("train", "val", "test")}
    except (OSError, ValueError) as err:
        if name == settings["fallback_data"]:
            raise
        ctx.log(f"{name} not found ({err}); using {settings['fallback_data']}")
        name = settings["fallback_data"]
        splits = {s: load_dataset(name, split=s, data_dir=ctx.data_dir)
                  for s in ("train", "val", "test")}
    return name, splits


def run(ctx):
    st = ctx.settings
    data, splits = _load_data(ctx, st)
    num_classes = int(splits["train"].info["num_classes"])
    pool = splits["train"].x[:st["pool"]]
    pool_y = B.to_numpy(splits["train"].y[:st["pool"]])
    smallest = int(np.bincount(pool_y.astype(np.int64), minlength=num_classes).min())
    counts = [int(n) for n in st["labels_per_class"] if int(n) <= smallest]
    if len(counts) < len(st["labels_per_class"]):
        ctx.log(f"the pool holds only {smallest} images of its smallest class: labels per "
                f"class {counts} (asked {st['labels_per_class']})")
    val_x, val_y = splits["val"].x[:st["val"]], B.to_numpy(splits["val"].y[:st["val"]])
    test_x, test_y = splits["test"].x[:st["test"]], B.to_numpy(splits["test"].y[:st["test"]])
    subsets = labelled_subsets(pool_y, counts, int(st["draws"]), ctx.seed)

    models, train_info = {}, {}
    for rep, family in _MODEL_OF.items():
        spec = st["models"][family]
        models[rep] = ctx.train(family, data, minutes=spec.get("minutes"),
                                steps=spec.get("steps"), settings=spec.get("settings"),
                                tag=f"{family}-{data}")
        train_info[rep] = {"model": family, "budget": spec.get("minutes") or spec.get("steps"),
                           "budget_unit": "minutes" if spec.get("minutes") else "steps"}

    all_x = B.xp.concatenate([pool, val_x, test_x])
    n_pool, n_val = pool.shape[0], val_x.shape[0]
    features = {"pixels": all_x.reshape(all_x.shape[0], -1)}
    features["vae"] = vae_features(models["vae"], all_x)
    features["flow"] = flow_features(models["flow"], all_x)
    features["diffusion"] = diffusion_features(models["diffusion"], all_x,
                                               int(st["diffusion_t"]),
                                               autodiff.Generator(ctx.seed))
    autodiff.manual_seed(ctx.seed)
    untrained = get_family("ddpm").build(dict(models["diffusion"].config))
    features["diffusion-init"] = diffusion_features(untrained, all_x, int(st["diffusion_t"]),
                                                    autodiff.Generator(ctx.seed))
    dims = {rep: int(f.shape[1]) for rep, f in features.items()}
    ctx.log("feature dimensions: " + ", ".join(f"{r} {d}" for r, d in dims.items()))

    table, runs = {}, []
    for rep in REPRESENTATIONS:
        f = B.to_numpy(features[rep]).astype(np.float64)
        f_pool, f_val, f_test = f[:n_pool], f[n_pool:n_pool + n_val], f[n_pool + n_val:]
        table[rep] = {}
        for n in counts:
            accs = []
            for r in range(int(st["draws"])):
                idx = subsets[(n, r)]
                res = select_l2(f_pool[idx], pool_y[idx], f_val, val_y, num_classes,
                                st["l2_grid"], test_x=f_test, test_y=test_y)
                accs.append(res["test_accuracy"])
                runs.append({"representation": rep, "labels_per_class": n, "draw": r,
                             "l2": res["l2"], "val_accuracy": res["val_accuracy"],
                             "train_accuracy": res["train_accuracy"],
                             "test_accuracy": res["test_accuracy"],
                             "converged": res["converged"]})
            mean, std = float(np.mean(accs)), float(np.std(accs, ddof=1)) if len(accs) > 1 \
                else 0.0
            table[rep][str(n)] = {"mean": mean, "std": std, "draws": accs}
            ctx.log(f"{rep:9s} {n:5d}/class: test accuracy {mean:.4f} +- {std:.4f} "
                    f"({len(accs)} draws)")

    figure = _accuracy_figure(ctx, table, counts, data)
    interp = _interpolation_figures(ctx, {"vae": models["vae"], "flow": models["flow"]},
                                    test_x, int(st["interpolation_pairs"]),
                                    int(st["interpolation_steps"]))
    return {"data": data, "num_classes": num_classes, "labels_per_class": counts,
            "draws": int(st["draws"]), "pool": int(n_pool), "val": int(n_val),
            "test": int(test_x.shape[0]), "feature_dims": dims,
            "diffusion_t": int(st["diffusion_t"]), "l2_grid": list(st["l2_grid"]),
            "models": train_info, "accuracy": table, "runs": runs,
            "all_probes_converged": all(r["converged"] for r in runs),
            "figures": {"accuracy": figure, "interpolation": interp},
            "chance": 1.0 / num_classes}
