"""The anomaly experiment's figure: per model (one column each), histograms of the
in-distribution and the out-of-distribution images' scores, one row per score: bits/dim,
the typicality score |bpd - mean training bpd|, and, where a background model was trained,
the likelihood ratio bpd_theta - bpd_theta0; each panel's title gives its AUROC."""
from ..plotting import plt, save_figure, to_host

__all__ = ["draw"]

_ROWS = [("bpd", "bits/dim", "auroc_bpd"),
         ("typicality", "|bpd - mean train bpd|", "auroc_typicality"),
         ("llr", "bpd - bpd background", "auroc_likelihood_ratio")]


def draw(results, scores, path):
    """Write the figure to ``path`` and return it.

    :param results: {key: row} as ``anomaly.run`` builds them (model, in, ood, AUROCs).
    :param scores: {key: {"bpd_in": (N,), "bpd_ood": (M,), "typicality_in": ..., ...}}.
    """
    import numpy as np  # host-side: histogram bins for matplotlib
    keys = list(results)
    rows = [r for r in _ROWS if any(f"{r[0]}_in" in scores[k] for k in keys)]
    fig, axes = plt.subplots(len(rows), len(keys), figsize=(3.0 * len(keys), 2.4 * len(rows)),
                             squeeze=False)
    for j, key in enumerate(keys):
        row = results[key]
        for i, (score, label, auroc_key) in enumerate(rows):
            ax = axes[i][j]
            if f"{score}_in" not in scores[key]:
                ax.axis("off")
                continue
            a = to_host(scores[key][f"{score}_in"])
            b = to_host(scores[key][f"{score}_ood"])
            lo, hi = np.percentile(np.concatenate([a, b]), [0.5, 99.5])
            bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 40)
            ax.hist(a, bins=bins, alpha=0.6, density=True, label=f"{row['in']} (in)")
            ax.hist(b, bins=bins, alpha=0.6, density=True, label=f"{row['ood']} (OOD)")
            ax.set_xlabel(label, fontsize=8)
            ax.set_title(f"{row['model']} trained on {row['in']}\nAUROC {row[auroc_key]:.3f}",
                         fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
            if i == 0:
                ax.legend(fontsize=6)
    fig.suptitle("Likelihood as an anomaly score (OOD = positive; AUROC < 0.5: the OOD set "
                 "looks MORE likely)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
