"""The zoo's table (``zoo.csv``, ``zoo.md``) and figures, from its measured rows.

Figures (matplotlib, Agg):

* ``zoo_samples_DATA.png``: one panel per model: 2-D samples over the true density, or a
  grid of 64 image samples;
* ``zoo_training_DATA.png``: each model's training loss against training time;
* ``zoo_cost_DATA.png``: sample quality (FID, or the high-quality share on 2-D data) and the
  likelihood against sampling speed, one point per model.
"""
import csv
import io
import math
import os

from ..fileio import atomic_open
from .measure import COLUMNS

__all__ = ["write_tables", "write_figures", "format_markdown"]

_DIGITS = {"nll": 4, "samples_per_s": 3, "fid": 4, "precision": 3, "recall": 3,
           "hq_share": 3, "kl_nats": 3, "train_seconds": 3, "density": 3, "coverage": 3}


def _cell(row, key):
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{_DIGITS.get(key, 4)}g}"
    return str(value)


def format_markdown(rows):
    """The rows as a Markdown table with ``COLUMNS`` (empty where a number does not apply)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, k) for k in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_tables(rows, out_dir):
    """``zoo.csv`` and ``zoo.md`` in ``out_dir``, atomically; returns their paths."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row, k) for k in COLUMNS])
    csv_path, md_path = os.path.join(out_dir, "zoo.csv"), os.path.join(out_dir, "zoo.md")
    with atomic_open(csv_path, "w", encoding="utf-8") as f:
        f.write(buffer.getvalue())
    budgets = sorted({str(r.get("budget", "")) for r in rows} - {""})
    header = ("# refgen zoo\n\nOne representative per family and two baselines, trained on "
              "the same data and measured by `refgen.zoo.measure` "
              f"(budget: {', '.join(budgets) or '?'}). nll: nats per example on 2-D data, "
              "bits/dim on images (dequantized, log2(levels) offset included); its kind says "
              "whether it is exact, a bound, an estimate or an ODE likelihood. kl_nats = nll "
              "- the true entropy. fid/precision/recall/density/coverage on the digits "
              "classifier's features against the test split; modes and hq_share by "
              "Srivastava et al. 2017 (3 sigma). train_seconds: training time only.\n\n")
    with atomic_open(md_path, "w", encoding="utf-8") as f:
        f.write(header + format_markdown(rows))
    return csv_path, md_path


def _by_data(rows):
    groups = {}
    for row in rows:
        groups.setdefault(row["data"], []).append(row)
    return groups


def _slug(name):
    return name.replace(":", "_").replace("=", "").replace(",", "_")


def _samples(out_dir, row):
    import autodiff
    path = os.path.join(out_dir, _slug(row["data"]), row["model"], "samples.npz")
    if not os.path.exists(path):
        return None
    from ..plotting import to_host
    return to_host(autodiff.load(path)["samples"])


def _label(row):
    return f"{row['model']} ({row['family']})"


def write_figures(rows, out_dir):
    """The three figures per data set (module docstring); returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import image_grid, save_figure
    paths = []
    for data, group in _by_data(rows).items():
        slug = _slug(data)
        image = group[0].get("nll_unit") == "bits/dim" or group[0].get("fid") is not None
        # samples
        cols = len(group) + (0 if image else 1)
        fig, axes = plt.subplots(1, cols, figsize=(2.6 * cols, 2.8), squeeze=False)
        axes = list(axes[0])
        if not image:
            from ..data import load_dataset
            from ..plotting import to_host
            truth = to_host(load_dataset(data, split="test", n=2500).x)
            # every panel on the truth's frame, widened by a quarter on each side
            lo, hi = truth.min(axis=0), truth.max(axis=0)
            frame = (lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo))
            _scatter(axes.pop(0), truth, "truth", frame)
        for ax, row in zip(axes, group):
            x = _samples(out_dir, row)
            if x is None:
                ax.axis("off")
                continue
            if image:
                ax.imshow(image_grid(x[:64], nrow=8), cmap="gray", vmin=0, vmax=1)
                ax.set_title(_label(row), fontsize=8)
                ax.axis("off")
            else:
                _scatter(ax, x, _label(row), frame)
        paths.append(save_figure(fig, os.path.join(out_dir, f"zoo_samples_{slug}.png")))
        plt.close(fig)
        # training curves
        trained = [r for r in group if r["family"] != "baseline"]
        if trained:
            fig, axes = plt.subplots(1, len(trained), figsize=(2.6 * len(trained), 2.4),
                                     squeeze=False)
            for ax, row in zip(axes[0], trained):
                _curve(ax, os.path.join(out_dir, slug, row["model"], "log.jsonl"), row)
            fig.tight_layout()
            paths.append(save_figure(fig, os.path.join(out_dir, f"zoo_training_{slug}.png")))
            plt.close(fig)
        # quality and likelihood against sampling speed
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
        quality = "fid" if image else "hq_share"
        for row in group:
            speed = row.get("samples_per_s")
            if speed and row.get(quality) is not None:
                left.scatter(speed, row[quality])
                left.annotate(row["model"], (speed, row[quality]), fontsize=7)
            if speed and row.get("nll") is not None:
                right.scatter(speed, row["nll"])
                right.annotate(f"{row['model']} ({row['likelihood_kind']})",
                               (speed, row["nll"]), fontsize=7)
        for ax in (left, right):
            ax.set_xscale("log")
            ax.set_xlabel("samples per second (this machine)")
        left.set_ylabel("FID (lower is better)" if image else "high-quality share")
        right.set_ylabel(f"held-out nll ({group[0].get('nll_unit') or 'nats'})")
        fig.suptitle(f"{data}: quality and likelihood against sampling cost", fontsize=9)
        fig.tight_layout()
        paths.append(save_figure(fig, os.path.join(out_dir, f"zoo_cost_{slug}.png")))
        plt.close(fig)
    return paths


def _scatter(ax, x, title, frame):
    ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
    ax.set_xlim(frame[0][0], frame[1][0])
    ax.set_ylim(frame[0][1], frame[1][1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _curve(ax, log_path, row):
    from ..train import read_log
    try:
        records = read_log(log_path)
    except (OSError, ValueError):
        ax.axis("off")
        return
    points = [(r["time"], r["loss"]) for r in records if isinstance(r.get("loss"), float)]
    if points:
        t, loss = zip(*points)
        ax.plot(t, loss, lw=1)
    ax.set_title(_label(row), fontsize=8)
    ax.set_xlabel("training seconds", fontsize=7)
    ax.tick_params(labelsize=6)
