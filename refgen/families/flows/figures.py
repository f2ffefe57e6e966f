"""Figures of trained flows (issue 12): density panels beside the truth, the map from base to
data as frames through the layers, sample grids at two temperatures.

    python -m refgen.families.flows.figures density --data ring8:std=0.1 \
        --checkpoint runs/a/checkpoint.npz [runs/b/checkpoint.npz ...] --out figures/flow_density_ring8.png
    python -m refgen.families.flows.figures frames --checkpoint CKPT --out figures/flow_frames.png
    python -m refgen.families.flows.figures temperature --checkpoint CKPT --out figures/flow_t.png
"""
import argparse

import numpy as np  # host-side: figures

import autodiff
from ... import plotting
from ...plotting import plt

__all__ = ["density_panels", "layer_frames", "temperature_grids", "main"]


def _panel(ax, log_prob, bounds, title, grid_size):
    xs, ys, logp = plotting.density_grid(log_prob, bounds, grid_size)
    ax.imshow(np.exp(logp - logp.max()), origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]),
              cmap="viridis", aspect="equal", interpolation="bilinear")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def density_panels(models, density, path, grid_size=200):
    """exp(log p) of the truth and of each model (``{title: model}``) on the density's box."""
    fig, axes = plt.subplots(1, 1 + len(models), figsize=(3.2 * (1 + len(models)), 3.4))
    axes = np.atleast_1d(axes)
    _panel(axes[0], density.log_prob, density.bounds, f"truth: {density.name}", grid_size)
    for ax, (title, model) in zip(axes[1:], models.items()):
        _panel(ax, model.log_prob, density.bounds, title, grid_size)
    return plotting.save_figure(fig, path)


def layer_frames(model, path, n=3000, seed=0, bounds=None):
    """Base samples z pushed through the inverse layers one at a time (2-D flows): frame 0 is
    z ~ N(0, I), the last frame is x = f^{-1}(z)."""
    layers = list(model.flow.bijection.layers)
    with autodiff.no_grad():
        h = autodiff.randn(n, 2, generator=autodiff.Generator(seed), dtype=model._dtype())
        frames = [("base z", h.numpy())]
        for i, layer in enumerate(reversed(layers)):
            h, _ = layer.inverse(h)
            frames.append((f"after {type(layer).__name__}", h.numpy()))
    keep = frames if len(frames) <= 10 else frames[::max(1, len(frames) // 9)] + [frames[-1]]
    fig, axes = plt.subplots(1, len(keep), figsize=(2.4 * len(keep), 2.6))
    for ax, (title, pts) in zip(np.atleast_1d(axes), keep):
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4, c=np.arctan2(frames[0][1][:, 1],
                                                                      frames[0][1][:, 0]),
                   cmap="hsv", linewidths=0)
        if bounds:
            ax.set_xlim(*bounds[0])
            ax.set_ylim(*bounds[1])
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    return plotting.save_figure(fig, path)


def temperature_grids(model, path, temperatures=(1.0, 0.7), n=64, seed=0):
    """Image samples at each temperature, side by side, from the same base noise."""
    fig, axes = plt.subplots(1, len(temperatures), figsize=(4 * len(temperatures), 4.3))
    lo, hi = model.value_range
    for ax, t in zip(np.atleast_1d(axes), temperatures):
        with autodiff.no_grad():
            x = model.sample(n, autodiff.Generator(seed), temperature=t).numpy()
        ax.imshow(plotting.image_grid(x, value_range=(lo, hi)), cmap="gray",
                  interpolation="nearest")
        ax.set_title(f"T = {t:g}")
        ax.set_axis_off()
    return plotting.save_figure(fig, path)


def main(argv=None):
    import refgen
    from ...data.toy import get_density
    p = argparse.ArgumentParser(prog="python -m refgen.families.flows.figures",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["density", "frames", "temperature"])
    p.add_argument("--checkpoint", nargs="+", required=True)
    p.add_argument("--data", help="toy density name (density panels)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    models = {}
    for ckpt in args.checkpoint:
        m = refgen.load(ckpt)
        models[f"{m.family} ({ckpt.split('/')[-2]})"] = m
    first = next(iter(models.values()))
    if args.what == "density":
        name = args.data or first.data_info.get("name")
        print(density_panels(models, get_density(name), args.out))
    elif args.what == "frames":
        print(layer_frames(first, args.out, bounds=((-4, 4), (-4, 4))))
    else:
        print(temperature_grids(first, args.out))


if __name__ == "__main__":
    main()
