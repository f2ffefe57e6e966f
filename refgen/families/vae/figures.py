"""Figures of a trained VAE: reconstructions, interpolations, and the 2-D latent space.

Each function takes a ``VAE`` and a data set and writes one PNG with matplotlib's Agg backend
through ``refgen.plotting`` (atomically); ``python -m refgen.families.vae figures`` calls
them on a checkpoint.
"""
# host-side: figure drawing with matplotlib and scipy's inverse normal CDF on host arrays
import numpy as np
from scipy.stats import norm

import autodiff
from autodiff import backend as B

from ... import plotting
from .model import is_image

__all__ = ["plot_latent_space", "save_reconstructions", "save_interpolations"]


def plot_latent_space(model, dataset, path, n=2000, grid=15, batch_size=500):
    """The 2-D latent space: encoder means of ``n`` examples coloured by label, and, for
    image data, the decoded means on a grid of z spanning the prior's central 90 % per axis
    (Phi^-1(0.05..0.95), as Kingma & Welling 2014, Fig. 4). Needs ``latent_dim == 2``.
    Written with matplotlib's Agg backend through ``refgen.plotting``."""
    if model.latent_dim != 2:
        raise ValueError(f"plot_latent_space: the model's latent has {model.latent_dim} dims; "
                         "the figure needs 2 (train with --set latent_dim=2)")
    n = min(int(n), len(dataset))
    data = model._evaluation_data(dataset)
    means = []
    with autodiff.no_grad():
        for start in range(0, n, batch_size):
            x, c = model._dataset_batch(data, start, min(n, start + batch_size))
            means.append(plotting.to_host(model.encode(x, c).mean))
    z = np.concatenate(means)
    labels = None if getattr(dataset, "y", None) is None else plotting.to_host(dataset.y[:n])
    image = is_image(model.data_info) and not model.conditional
    fig, axes = plotting.plt.subplots(1, 2 if image else 1, figsize=(11 if image else 5.5, 5))
    ax = axes[0] if image else axes
    sc = ax.scatter(z[:, 0], z[:, 1], s=4, c=labels, cmap="tab10" if labels is not None
                    else None)
    if labels is not None:
        fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel("z_1 (encoder mean)")
    ax.set_ylabel("z_2")
    ax.set_title(f"q(z|x) means of {n} examples")
    if image:
        ticks = norm.ppf(np.linspace(0.05, 0.95, grid))
        zz = np.array([[a, b] for b in ticks[::-1] for a in ticks])
        with autodiff.no_grad():
            imgs = model.decode(autodiff.Tensor(B.to_backend(zz).astype(model._dtype())))
        lo, hi = model.value_range
        axes[1].imshow(plotting.image_grid(imgs, nrow=grid, value_range=(lo, hi)),
                       cmap="gray_r", vmin=0, vmax=1)
        axes[1].set_axis_off()
        axes[1].set_title("decoded means on a grid of z (prior quantiles 0.05..0.95)")
    return plotting.save_figure(fig, path)


def save_reconstructions(model, dataset, path, n=16):
    """Two rows: ``n`` evaluation examples (binarized for the Bernoulli decoder) and their
    reconstructions decode(mu_phi(x))."""
    data = model._evaluation_data(dataset)
    with autodiff.no_grad():
        x, c = model._dataset_batch(data, 0, n)
        rec = model.reconstruct(x, c)
    both = autodiff.cat([x.to(rec.dtype), rec], dim=0)
    return plotting.save_image_grid(both, path, nrow=n, value_range=model.value_range,
                                    title="top: data, bottom: reconstructions decode(mu(x))")


def save_interpolations(model, dataset, path, pairs=6, steps=10):
    """``pairs`` rows, each the decoded means along z_t = (1 - t) mu(x_a) + t mu(x_b)."""
    data = model._evaluation_data(dataset)
    with autodiff.no_grad():
        x_a, c_a = model._dataset_batch(data, 0, pairs)
        x_b, _ = model._dataset_batch(data, pairs, 2 * pairs)
        rows = model.interpolate(x_a, x_b, steps=steps, cond=c_a)    # (pairs, steps, ...)
    flat = rows.reshape((pairs * steps,) + model.example_shape)
    return plotting.save_image_grid(flat, path, nrow=steps, value_range=model.value_range,
                                    title="interpolations between encoder means, left to right")
