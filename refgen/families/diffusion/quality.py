"""Sample quality of a trained ``ddpm`` on a 2-D mixture against the sampling cost.

    python -m refgen.families.diffusion.quality runs/ddpm-ring8/checkpoint.npz \\
        --density ring8 --out figures/ddpm_nfe_ring8.png

draws 2500 samples (the standard setting, Srivastava et al. 2017) with each sampler of
``SWEEP`` and reports mode coverage (``refgen.metrics.modes.mode_coverage``: modes captured,
high-quality share) against the network evaluations per sample, as a table on stdout (JSON
lines with ``--json``) and a plot.
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--density", required=True, help="ring8 or grid25")
    parser.add_argument("--n", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="the plot (.png)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import refgen
    model = refgen.load(args.checkpoint)
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
