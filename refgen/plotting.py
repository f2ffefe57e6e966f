"""Figures with matplotlib's Agg backend (no display needed), each written atomically.

* ``save_image_grid``: images (N, C, H, W) tiled into one picture.
* ``plot_samples_over_density``: 2-D samples scattered over a true density exp(log p(x)).
* ``plot_density``: a heatmap of exp(log_prob) on a grid, e.g. a learned p_theta(x).
* ``plot_loss_curves``: every logged number of one or more ``log.jsonl`` files against step.

Every function takes host or backend arrays or Tensors, returns the path written, and
writes to a temporary file in the target directory that is renamed over the target, so an
interrupted call never leaves a half-written PNG.
"""
import json
import math
import os

import matplotlib

matplotlib.use("Agg")  # no display: figures go to files only
import matplotlib.pyplot as plt  # noqa: E402

# host-side: matplotlib draws host arrays; device data is copied to the host first
import numpy as np  # noqa: E402

import autodiff  # noqa: E402
from autodiff import backend as B  # noqa: E402
from autodiff import Tensor  # noqa: E402

from .fileio import atomic_open  # noqa: E402

__all__ = ["to_host", "image_grid", "save_image_grid", "plot_samples_over_density",
           "plot_density", "density_grid", "read_log", "plot_loss_curves", "save_figure"]


def to_host(x):
    """A host NumPy array from a Tensor, a backend array or host data."""
    if isinstance(x, Tensor):
        x = x.data
    return np.asarray(B.to_numpy(x))


def save_figure(fig, path, dpi=120):
    """Write ``fig`` to ``path`` atomically (temporary file, then ``os.replace``); close it."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    ext = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format=ext, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def image_grid(images, nrow=None, padding=1, value_range=(0.0, 1.0), pad_value=0.5):
    """Tile images (N, C, H, W) or (N, H, W) into one host array (rows*(H+p)+p, cols*(W+p)+p[, 3]).

    Values are clipped to ``value_range`` and mapped to [0, 1]. ``nrow`` images per row
    (default: ceil(sqrt(N))). C must be 1 (grey) or 3 (RGB).
    """
    x = to_host(images).astype(np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"image_grid expects images of shape (N, C, H, W) with N >= 1 and "
                         f"C in (1, 3), or (N, H, W); got {tuple(to_host(images).shape)}")
    lo, hi = map(float, value_range)
    if not hi > lo:
        raise ValueError(f"image_grid: value_range must be (low, high) with low < high, "
                         f"got {value_range!r}")
    x = (np.clip(x, lo, hi) - lo) / (hi - lo)
    n, c, h, w = x.shape
    ncol = int(nrow) if nrow else int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncol))
    grid = np.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding),
                   float(pad_value))
    for i in range(n):
        r, q = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_image_grid(images, path, nrow=None, value_range=(0.0, 1.0), title=None, scale=None,
                    labels=None):
    """Save images (N, C, H, W) as one grid PNG; ink is dark on white for grey images.

    :param labels: optional sequence of N short strings (e.g. class labels) written under the
        figure as a row-major list.
    :param scale: pixels per image pixel (default: about 400 px of grid width).
    """
    grid = image_grid(images, nrow=nrow, value_range=value_range)
    height, width = grid.shape[:2]
    scale = scale or max(1, 400 // max(width, 1))
    fig = plt.figure(figsize=(width * scale / 100, height * scale / 100 + (0.3 if title else 0)))
    ax = fig.add_axes([0, 0, 1, 1])
    if grid.ndim == 2:
        ax.imshow(grid, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    if labels is not None:
        fig.text(0.0, -0.02, "labels (row-major): " + " ".join(map(str, labels)), fontsize=6,
                 va="top", wrap=True)
    return save_figure(fig, path, dpi=100)


def density_grid(log_prob, bounds, grid_size=200):
    """Evaluate ``log_prob`` on a grid_size x grid_size grid over ``bounds``.

    :param log_prob: callable, (M, 2) Tensor/array -> (M,) log-densities
    :param bounds: ((xmin, xmax), (ymin, ymax))
    :return: (xs (G,), ys (G,), logp (G, G) host arrays; logp[i, j] at (xs[j], ys[i]))
    """
    (x0, x1), (y0, y1) = bounds
    xs, ys = np.linspace(x0, x1, grid_size), np.linspace(y0, y1, grid_size)
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    pts = autodiff.tensor(points.astype(autodiff.get_default_dtype()))
    with autodiff.no_grad():
        logp = to_host(log_prob(pts)).reshape(grid_size, grid_size)
    return xs, ys, logp


def _draw_density(ax, log_prob, bounds, grid_size, cmap="Blues"):
    xs, ys, logp = density_grid(log_prob, bounds, grid_size)
    finite = np.isfinite(logp)
    if not finite.any():
        raise ValueError("the log-density is not finite anywhere on the plotting grid")
    # subtract the max before exp: only the shape is drawn, and this cannot overflow
    with np.errstate(under="ignore"):
        dens = np.where(finite, np.exp(np.where(finite, logp, 0.0) - logp[finite].max()), 0.0)
    ax.imshow(dens, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), cmap=cmap,
              aspect="auto", interpolation="bilinear")
    return dens


def _bounds_of(density, bounds, samples=None):
    if bounds is not None:
        return bounds
    if density is not None and getattr(density, "bounds", None) is not None:
        return density.bounds
    if samples is not None:
        s = to_host(samples)
        lo, hi = s.min(axis=0), s.max(axis=0)
        pad = 0.05 * (hi - lo + 1e-12)
        return ((lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1]))
    raise ValueError("give bounds=((xmin, xmax), (ymin, ymax)) or a density with .bounds")


def plot_samples_over_density(samples, path, density=None, log_prob=None, bounds=None,
                              grid_size=200, title=None, max_points=5000):
    """Scatter 2-D ``samples`` (N, 2) over exp(log p(x)) of the true density.

    :param density: object with ``log_prob`` and ``bounds`` (``refgen.data.toy``); or give
        ``log_prob`` (callable) and ``bounds`` directly. Without either: samples only.
    """
    s = to_host(samples)
    if s.ndim != 2 or s.shape[1] != 2:
        raise ValueError(f"plot_samples_over_density expects samples of shape (N, 2), got "
                         f"{tuple(s.shape)}")
    if log_prob is None and density is not None:
        log_prob = density.log_prob
    bounds = _bounds_of(density, bounds, s)
    fig, ax = plt.subplots(figsize=(5, 5))
    if log_prob is not None:
        try:
            _draw_density(ax, log_prob, bounds, grid_size)
        except NotImplementedError:
            pass  # the density has no exact log_prob: samples only
    s = s[:max_points]
    ax.scatter(s[:, 0], s[:, 1], s=2, c="tab:red", alpha=0.6, linewidths=0)
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_density(log_prob, bounds, path, grid_size=200, title=None, samples=None):
    """Heatmap of exp(log_prob(x)) on a grid over ``bounds``, e.g. a learned p_theta(x)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    _draw_density(ax, log_prob, bounds, grid_size, cmap="viridis")
    if samples is not None:
        s = to_host(samples)
        ax.scatter(s[:, 0], s[:, 1], s=1, c="white", alpha=0.4, linewidths=0)
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


_NOT_PLOTTED = ("step", "time", "wall")  # the x axis and clock times, not training numbers


def read_log(path):
    """The records of a ``log.jsonl`` (one JSON object per line).

    A torn last line (the run was killed mid-write; ``refgen.train`` resumes past it) is
    skipped; a bad line anywhere else raises an error naming the file and line.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"log file not found: {path}")
    with open(path) as f:
        lines = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
    records = []
    for i, (lineno, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1 and not line.endswith("\n"):
                break
            raise ValueError(f"{path}:{lineno} is not a JSON object ({exc.msg})") from None
    return records


def plot_loss_curves(logs, path, keys=None, title=None, logy=None):
    """Plot logged numbers against ``step``, one panel per key, one line per log file.

    :param logs: a ``log.jsonl`` path, or a list of them, or a dict label -> path
    :param keys: which numbers (default: every numeric key except step, time and wall)
    :param logy: log-scale y for every key whose values are all positive (True), for none
        (False), or, by default (None), for keys containing 'loss' or 'nll'
    """
    if isinstance(logs, (str, os.PathLike)):
        logs = {os.path.basename(os.path.dirname(os.path.abspath(logs))): logs}
    elif not isinstance(logs, dict):
        logs = {os.path.basename(os.path.dirname(os.path.abspath(p))) or str(p): p
                for p in logs}
    runs = {label: read_log(p) for label, p in logs.items()}
    if keys is None:
        keys = []
        for records in runs.values():
            for r in records:
                for k, v in r.items():
                    if k not in _NOT_PLOTTED and k not in keys and \
                            isinstance(v, (int, float)) and not isinstance(v, bool):
                        keys.append(k)
    if not keys:
        raise ValueError(f"no numbers to plot in {', '.join(map(str, logs.values()))}")
    ncols = min(3, len(keys))
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.ravel()[len(keys):]:
        ax.set_axis_off()
    for ax, key in zip(axes.ravel(), keys):
        for label, records in runs.items():
            pts = [(r["step"], r[key]) for r in records if key in r and "step" in r
                   and isinstance(r[key], (int, float))]
            if pts:
                steps, values = zip(*pts)
                ax.plot(steps, values, label=label, marker="." if len(pts) < 30 else None)
                if (logy if logy is not None else "loss" in key or "nll" in key) and \
                        min(values) > 0:
                    ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
