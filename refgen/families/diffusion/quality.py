"""Sample quality of a trained ``ddpm``: against the sampling cost, and against the
classifier-free guidance weight.

    python -m refgen.families.diffusion.quality runs/ddpm-ring8/checkpoint.npz \\
        --density ring8 --out figures/ddpm_nfe_ring8.png

draws 2500 samples (the standard setting, Srivastava et al. 2017) with each sampler of
``SWEEP`` and reports mode coverage (``refgen.metrics.modes.mode_coverage``: modes captured,
high-quality share) against the network evaluations per sample, as a table on stdout (JSON
lines with ``--json``) and a plot.

    python -m refgen.families.diffusion.quality runs/ddpm-digits/checkpoint.npz \\
        --guidance 0,1,3 --sampler ddim --steps 50 --out figures/ddpm_digits_guidance.png

samples a class-conditional model with equal numbers of each label at each guidance weight
w, and reports FID and precision/recall on the classifier's features against the test split
(``refgen.metrics.report.evaluate_samples``, extractor "auto") and the classifier's accuracy
on the samples (does it read the label that was asked for?); it draws the sample grids
(``..._w{w}.png``) and FID against accuracy.
"""
import argparse
import json
import sys

import autodiff

# (label, sampler, steps): the full chain, then DDIM at decreasing cost, then the
# sigma-view solvers at comparable costs
SWEEP = (("ancestral 1000", "ancestral", None),
         ("ddim 50", "ddim", 50), ("ddim 20", "ddim", 20), ("ddim 10", "ddim", 10),
         ("heun 25", "heun", 25), ("heun 10", "heun", 10),
         ("dpm++2m 20", "dpmpp_2m", 20), ("dpm++2m 10", "dpmpp_2m", 10),
         ("euler 50", "euler", 50))


def sweep(model, density, n=2500, seed=0, samplers=SWEEP):
    """[{label, sampler, steps, nfe, modes_captured, n_modes, high_quality_share}, ...]."""
    from ...metrics.modes import mode_coverage
    rows = []
    for label, sampler, steps in samplers:
        with autodiff.no_grad():
            x = model.sample(n, autodiff.Generator(seed), sampler=sampler, steps=steps)
        cov = mode_coverage(x.numpy(), density)
        rows.append({"label": label, "sampler": sampler, "steps": steps,
                     "nfe": model.nfe_per_sample, "modes_captured": cov["modes_captured"],
                     "n_modes": cov["n_modes"],
                     "high_quality_share": cov["high_quality_share"]})
    return rows


def plot(rows, path, title):
    """High-quality share against NFE (log axis), one marker per sampler family."""
    from ... import plotting  # noqa: F401  (selects the Agg backend)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        sel = [r for r in rows if r["sampler"] == sampler]
        ax.plot([r["nfe"] for r in sel], [100 * r["high_quality_share"] for r in sel], "o-",
                label=sampler)
        for r in sel:
            ax.annotate(f"{r['modes_captured']}/{r['n_modes']}", (r["nfe"],
                        100 * r["high_quality_share"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations per sample")
    ax.set_ylabel("high-quality samples (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def guidance_sweep(model, weights, n_per_class=30, sampler="ddim", steps=50, seed=0,
                   data_dir=None):
    """[{w, fid, precision, recall, accuracy, nfe}, ...] and the samples per w, for a
    class-conditional model on labelled image data."""
    import numpy as np  # host-side: labels and the accuracy count
    from ...metrics.extractors import get_extractor
    from ...metrics.report import evaluate_samples
    if not model.conditional:
        raise ValueError("the guidance sweep needs a class-conditional model")
    k = model.num_classes
    labels = np.repeat(np.arange(k), n_per_class)
    data_name = model.data_info.get("name", "digits")
    rows, samples = [], {}
    for w in weights:
        with autodiff.no_grad():
            x = model.sample(len(labels), autodiff.Generator(seed),
                             cond=autodiff.Tensor(autodiff.backend.to_backend(labels)),
                             sampler=sampler, steps=steps, guidance=w)
        x = x.numpy()
        report = evaluate_samples(x, data_name, metrics="fid,pr", seed=seed,
                                  data_dir=data_dir)
        extractor = get_extractor(report["extractor"])
        accuracy = float((extractor.probs(x).argmax(1) == labels).mean())
        rows.append({"w": w, "fid": report["fid"], "precision": report["precision"],
                     "recall": report["recall"], "accuracy": accuracy,
                     "nfe": model.nfe_per_sample, "n": len(labels),
                     "extractor": report["extractor"], "n_real": report["n_real"]})
        samples[w] = (x, labels)
    return rows, samples


def plot_guidance(rows, samples, path, title):
    """FID against the classifier's accuracy on the samples, one point per w; and one
    sample grid per w next to ``path`` (``_w{w}.png``), a row per class."""
    import os
    from ... import plotting
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot([100 * r["accuracy"] for r in rows], [r["fid"] for r in rows], "o-")
    for r in rows:
        ax.annotate(f"w = {r['w']:g}", (100 * r["accuracy"], r["fid"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("classifier accuracy on the samples (%)")
    ax.set_ylabel("FID (classifier features)")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    stem, ext = os.path.splitext(path)
    written = [path]
    for w, (x, labels) in samples.items():
        per_class = int((labels == labels[0]).sum())
        keep = [i for i in range(len(labels)) if i % per_class < 10]     # 10 per class
        grid_path = f"{stem}_w{w:g}{ext}"
        plotting.save_image_grid(x[keep], grid_path, nrow=10, title=f"w = {w:g}")
        written.append(grid_path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--density", help="ring8 or grid25: the sampler sweep")
    parser.add_argument("--guidance", help="comma-separated weights w: the guidance sweep")
    parser.add_argument("--sampler", default="ddim", help="the guidance sweep's sampler")
    parser.add_argument("--steps", type=int, default=50, help="the guidance sweep's steps")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--data-dir")
    parser.add_argument("--n", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="the plot (.png)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import refgen
    model = refgen.load(args.checkpoint)
    if args.guidance:
        weights = [float(w) for w in args.guidance.split(",")]
        rows, samples = guidance_sweep(model, weights, args.per_class, args.sampler,
                                       args.steps, args.seed, args.data_dir)
        for r in rows:
            print(json.dumps(r) if args.json else
                  f"w {r['w']:<4g} fid {r['fid']:.3f}  precision {r['precision']:.3f}  recall "
                  f"{r['recall']:.3f}  accuracy {100 * r['accuracy']:.1f} %  nfe {r['nfe']}  "
                  f"({r['n']} samples, {r['n_real']} real, {r['extractor']})")
        if args.out:
            for p in plot_guidance(rows, samples, args.out, f"ddpm guidance sweep, "
                                   f"{args.sampler} {args.steps} steps, {args.checkpoint}"):
                print(f"wrote {p}")
        return 0
    if not args.density:
        parser.error("give --density (sampler sweep) or --guidance (guidance sweep)")
    rows = sweep(model, args.density, n=args.n, seed=args.seed)
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['label']:<16} nfe {r['nfe']:>5}  modes {r['modes_captured']}/"
                  f"{r['n_modes']}  high quality {100 * r['high_quality_share']:.1f} %")
    if args.out:
        plot(rows, args.out, f"ddpm on {args.density}: {args.n} samples, {args.checkpoint}")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
