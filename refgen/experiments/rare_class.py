"""``refgen experiment rare-class``: synthetic data for a class the training set nearly lacks.

One class r is made rare: of its N_r training images only m = max(1, round(f N_r)) are kept
(f = 1 %, a fixed seeded choice); every other class is left whole. On that SAME imbalanced
set (the removed images are never seen) a class-conditional DDPM is trained with label
dropout (p_uncond = 0.1), so one network gives both eps_theta(x_t, t, c) and
eps_theta(x_t, t, null), and samples of class r are drawn with classifier-free guidance
(Ho & Salimans 2022, Eq. 6)

    eps_w(x_t, t, r) = (1 + w) eps_theta(x_t, t, r) - w eps_theta(x_t, t, null),

w = 0 the conditional model, larger w samples that the model finds more typical of r (less
diverse). A classifier p_phi(y | x) (the registered ``classifier`` CNN) is then trained

* (a) ``baseline``: on the imbalanced set alone;
* (b) ``oversampled``: the m rare images repeated until class r has S examples (the control:
  what re-weighting alone buys, with no generative model);
* (c) ``synthetic w``: the imbalanced set plus S - m guided samples of class r, for each w;

S = the median size of the other classes: in (b) and (c) class r is as large as the rest. Reported
on held-out images (neither the DDPM nor any classifier sees them): the rare class's
accuracy (its recall, the fraction of held-out class-r images labelled r) and the overall
accuracy, mean +- std over classifier seeds, as a function of w; and how many of the
synthetic samples the shipped digits classifier (trained on all the data; only a diagnostic
here) labels as r.
"""
import math

# host-side: index bookkeeping for the subsets and the summary statistics (small arrays);
# indices reach the device once through B.to_backend, predictions come back through B.to_numpy
import numpy as np

import autodiff
from autodiff import backend as B

from ..data import ArrayDataset, load_dataset

__all__ = ["DESCRIPTION", "BUDGETS", "run", "make_rare", "oversample", "with_synthetic",
           "quantize", "per_class_accuracy"]

DESCRIPTION = (
    "A classifier trained with one class made rare (1% of its training images kept) against "
    "the same classifier with guided class-conditional DDPM samples of that class added, the "
    "DDPM trained on the same imbalanced set with label dropout and sampled with "
    "classifier-free guidance at several weights w; a control repeats the few real rare "
    "images instead. Reports the rare class's held-out accuracy and the overall accuracy "
    "against w (mean +- std over classifier seeds). 8x8 digits by default.")

BUDGETS = {
    # 2 CPU cores: 5 minutes of DDPM training, then 2 seeds x 5 classifiers of 2000 steps
    # (the registered classifier's recipe, 99% on the whole digits; 600 steps left the
    # baseline at 86% overall, benchmarks/QUALITY.md)
    "default": {
        "data": "digits", "rare_class": 8, "rare_fraction": 0.01,
        "eval_splits": ["val", "test"],
        "ddpm": {"minutes": 5.0, "settings": {}},
        "classifier": {"steps": 2000, "settings": {}},
        "guidance": [0.0, 1.0, 3.0], "sampler": "ddim", "sample_steps": 50,
        "classifier_seeds": [0, 1],
    },
    # the same with 10% of the class kept (12 digits images instead of 1): does the DDPM
    # help once it has more than one image of the class to learn from?
    "fraction10": {
        "data": "digits", "rare_class": 8, "rare_fraction": 0.1,
        "eval_splits": ["val", "test"],
        "ddpm": {"minutes": 5.0, "settings": {}},
        "classifier": {"steps": 2000, "settings": {}},
        "guidance": [0.0, 1.0, 3.0], "sampler": "ddim", "sample_steps": 50,
        "classifier_seeds": [0, 1],
    },
    # seconds, for the test
    "tiny": {
        "data": "digits", "rare_class": 8, "rare_fraction": 0.01,
        "eval_splits": ["val", "test"],
        "ddpm": {"steps": 5, "settings": {"model_channels": 8, "num_groups": 4,
                                          "timesteps": 50}},
        "classifier": {"steps": 10, "settings": {"channels": [4, 8], "hidden": 16}},
        "guidance": [0.0, 3.0], "sampler": "ddim", "sample_steps": 5,
        "classifier_seeds": [0],
    },
}


# ============================================================================ the data sets
def _subset(ds, index, name):
    index = B.to_backend(np.asarray(index, dtype=np.int64))
    info = dict(ds.info, num_examples=int(index.shape[0]))
    return ArrayDataset(ds.x[index], ds.y[index], name=name, info=info)


def make_rare(ds, rare_class, fraction, seed):
    """``ds`` with class ``rare_class`` cut to m = max(1, round(fraction N_r)) of its N_r
    examples, chosen by ``numpy.random.default_rng(seed)``; other classes untouched, order
    kept. Returns (the imbalanced ArrayDataset, the kept rare indices, the removed ones),
    indices into ``ds``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"make_rare: fraction must be in (0, 1], got {fraction!r}")
    y = B.to_numpy(ds.y).astype(np.int64)
    k = int(ds.info.get("num_classes") or (y.max() + 1))
    if not (isinstance(rare_class, (int, np.integer)) and 0 <= rare_class < k):
        raise ValueError(f"make_rare: rare_class must be an int in 0..{k - 1}, got "
                         f"{rare_class!r}")
    rare = np.flatnonzero(y == rare_class)
    m = max(1, int(round(fraction * len(rare))))
    chosen = np.random.default_rng(seed).permutation(rare)
    kept, removed = np.sort(chosen[:m]), np.sort(chosen[m:])
    keep = np.sort(np.concatenate([np.flatnonzero(y != rare_class), kept]))
    return _subset(ds, keep, f"{ds.name}-rare{rare_class}"), kept, removed


def oversample(ds, rare_class, target):
    """``ds`` with its class-``rare_class`` examples repeated in turn until there are
    ``target`` of them (the control: re-weighting without new images)."""
    y = B.to_numpy(ds.y).astype(np.int64)
    rare = np.flatnonzero(y == rare_class)
    if len(rare) == 0:
        raise ValueError(f"oversample: no example of class {rare_class} in {ds.name!r}")
    extra = np.resize(rare, max(0, target - len(rare)))
    return _subset(ds, np.concatenate([np.arange(len(y)), extra]),
                   f"{ds.name}-oversampled")


def quantize(x, levels, value_range):
    """Samples snapped to the data's L grey levels, k / (L - 1) in [lo, hi]: the classifier
    then sees synthetic images of the same kind as the stored real ones."""
    lo, hi = value_range
    k = B.xp.clip(B.xp.rint((x - lo) / (hi - lo) * (levels - 1)), 0, levels - 1)
    return lo + (hi - lo) * k / (levels - 1)


def with_synthetic(ds, x_syn, label):
    """``ds`` with images ``x_syn`` (S, *shape) appended under class ``label``."""
    x_syn = B.to_backend(x_syn).astype(ds.x.dtype)
    if tuple(x_syn.shape[1:]) != tuple(ds.x.shape[1:]):
        raise ValueError(f"with_synthetic: samples have shape {tuple(x_syn.shape)}, the data "
                         f"set's examples {tuple(ds.x.shape[1:])}")
    y_syn = B.xp.full((x_syn.shape[0],), int(label), dtype=ds.y.dtype)
    x = B.xp.concatenate([ds.x, x_syn])
    y = B.xp.concatenate([ds.y, y_syn])
    return ArrayDataset(x, y, name=f"{ds.name}+synthetic",
                        info=dict(ds.info, num_examples=int(x.shape[0])))


# ============================================================================ evaluation
def predict(net, x, batch_size=1000):
    """argmax_y p_phi(y | x) for a classifier network, (N,) host ints."""
    net.eval()
    dtype = next(iter(net.parameters())).dtype
    out = []
    with autodiff.no_grad():
        for s in range(0, x.shape[0], batch_size):
            out.append(B.to_numpy(net(autodiff.Tensor(x[s:s + batch_size].astype(dtype)))
                                  .data.argmax(axis=1)))
    return np.concatenate(out)


def per_class_accuracy(pred, y, num_classes):
    """Recall of each class, (K,): correct predictions of class k / examples of class k
    (NaN for a class with no example). ``pred`` and ``y`` may be host or backend arrays:
    both are copied to the host explicitly (``np.asarray`` of a CuPy array is refused)."""
    pred, y = B.to_numpy(pred), B.to_numpy(y)
    if pred.shape != y.shape:
        raise ValueError(f"per_class_accuracy: pred {pred.shape} and y {y.shape} differ")
    out = np.full(num_classes, np.nan)
    for k in range(num_classes):
        mask = y == k
        if mask.any():
            out[k] = float((pred[mask] == k).mean())
    return out


def _suffix(ctx):
    """Figure names: the default budget's plain, another budget's with its name."""
    return "" if ctx.budget == "default" else f"_{ctx.budget}"


def _mean_std(values):
    v = [float(a) for a in values]
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "runs": v}


def _figure(ctx, summary, guidance, rare_class, data):
    from .. import plotting
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, title in ((axes[0], "rare_accuracy", f"class {rare_class} (rare) accuracy"),
                           (axes[1], "overall_accuracy", "overall accuracy")):
        syn = [summary[f"synthetic_w{w:g}"][key] for w in guidance]
        ax.errorbar(guidance, [s["mean"] for s in syn], yerr=[s["std"] for s in syn],
                    marker="o", capsize=3, label="+ guided samples")
        for name, style in (("baseline", "--"), ("oversampled", ":")):
            m, s = summary[name][key]["mean"], summary[name][key]["std"]
            ax.axhline(m, linestyle=style, color="k" if name == "baseline" else "gray",
                       label=f"{name} ({m:.3f})")
            if s > 0:
                ax.axhspan(m - s, m + s, color="k" if name == "baseline" else "gray",
                           alpha=0.08)
        ax.set_xlabel("guidance weight w")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out accuracy")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{data}: one class rare, classifier-free guided DDPM samples added",
                 fontsize=10)
    path = plotting.save_figure(fig, ctx.figure_path(f"rare_class_accuracy{_suffix(ctx)}.png"))
    return ctx.publish(path)


def _sample_grid(ctx, samples, guidance):
    from .. import plotting
    n = min(10, min(s.shape[0] for s in samples.values()))
    rows = B.xp.concatenate([samples[w][:n] for w in guidance])
    path = plotting.save_image_grid(autodiff.Tensor(rows), ctx.figure_path(f"rare_class_samples{_suffix(ctx)}.png"),
                                    nrow=n, title="guided samples of the rare class, one row "
                                                  "per w = " + ", ".join(f"{w:g}" for w in guidance))
    return ctx.publish(path)


# ============================================================================ the experiment
def run(ctx):
    st = ctx.settings
    data, r = st["data"], int(st["rare_class"])
    full = load_dataset(data, split="train", data_dir=ctx.data_dir)
    k = int(full.info["num_classes"])
    imbalanced, kept, removed = make_rare(full, r, float(st["rare_fraction"]), ctx.seed)
    counts = np.bincount(B.to_numpy(imbalanced.y).astype(np.int64), minlength=k)
    target = int(np.median([counts[c] for c in range(k) if c != r]))
    n_syn = target - len(kept)   # class r brought to S examples, as in the control
    ctx.log(f"class {r}: {len(kept)} of {len(kept) + len(removed)} training images kept; "
            f"{len(imbalanced)} images in all; {n_syn} synthetic samples per w")

    held = [load_dataset(data, split=s, data_dir=ctx.data_dir) for s in st["eval_splits"]]
    eval_x = B.xp.concatenate([d.x for d in held])
    eval_y = np.concatenate([B.to_numpy(d.y) for d in held]).astype(np.int64)

    # the generative model, on the imbalanced set only
    spec = st["ddpm"]
    settings = dict(spec.get("settings") or {}, conditional=True)
    ddpm = ctx.train("ddpm", data, minutes=spec.get("minutes"), steps=spec.get("steps"),
                     settings=settings, train_data=imbalanced, tag=f"ddpm-{data}-rare{r}")
    guidance = [float(w) for w in st["guidance"]]
    samples, judged = {}, {}
    from ..metrics.pretrained import load_pretrained
    judge = load_pretrained("digits") if data == "digits" else None
    for i, w in enumerate(guidance):
        with autodiff.no_grad():
            x = ddpm.sample(n_syn, generator=autodiff.Generator(ctx.seed * 1000 + i),
                            cond=B.xp.full((n_syn,), r, dtype=B.numpy.int64),
                            sampler=st["sampler"], steps=int(st["sample_steps"]), guidance=w)
        samples[w] = quantize(x.data, int(full.info["levels"]), full.info["value_range"])
        if judge is not None:
            judged[f"w{w:g}"] = float((predict(judge, samples[w]) == r).mean())
            ctx.log(f"w = {w:g}: the shipped digits classifier labels "
                    f"{judged[f'w{w:g}']:.1%} of the samples as {r}")

    # the classifiers
    sets = {"baseline": imbalanced, "oversampled": oversample(imbalanced, r, target)}
    sets.update({f"synthetic_w{w:g}": with_synthetic(imbalanced, samples[w], r)
                 for w in guidance})
    cspec = st["classifier"]
    results = {name: {"rare_accuracy": [], "overall_accuracy": []} for name in sets}
    for seed in st["classifier_seeds"]:
        for name, ds in sets.items():
            model = ctx.train("classifier", data, steps=cspec.get("steps"),
                              minutes=cspec.get("minutes"), settings=cspec.get("settings"),
                              train_data=ds, options={"seed": int(seed)},
                              tag=f"classifier-{name}-seed{seed}")
            pred = predict(model.net, eval_x)
            acc = per_class_accuracy(pred, eval_y, k)
            results[name]["rare_accuracy"].append(float(acc[r]))
            results[name]["overall_accuracy"].append(float((pred == eval_y).mean()))
            ctx.log(f"{name:16s} seed {seed}: class {r} {acc[r]:.4f}, overall "
                    f"{(pred == eval_y).mean():.4f}")
    summary = {name: {key: _mean_std(v) for key, v in res.items()}
               for name, res in results.items()}
    figure = _figure(ctx, summary, guidance, r, data)
    grid = _sample_grid(ctx, samples, guidance)
    return {"data": data, "rare_class": r, "rare_fraction": float(st["rare_fraction"]),
            "rare_kept": int(len(kept)), "rare_removed": int(len(removed)),
            "train_examples": int(len(imbalanced)), "synthetic_per_w": n_syn,
            "rare_class_size_with_additions": target,
            "held_out": {"splits": list(st["eval_splits"]), "examples": int(len(eval_y)),
                         "rare_examples": int((eval_y == r).sum())},
            "guidance": guidance, "sampler": f"{st['sampler']} {st['sample_steps']} steps",
            "samples_judged_as_rare": judged, "classifier_seeds": list(st["classifier_seeds"]),
            "accuracy": summary, "figures": {"accuracy": figure, "samples": grid}}
