"""python benchmarks/quality_scripts/ebm_mode_masses.py CHECKPOINT

How a 2-D model trained on ring8 shares its probability among the 8 modes: the exact
density (``refgen.load(CHECKPOINT).log_prob``, for the EBM normalised on its grid) on a
400 x 400 midpoint grid over [-4, 4]^2, summed per angular sector of the ring (sector k
holds the angles within pi/8 of mode k). Prints the total (should be 1), the 8 masses and
KL(uniform || masses) = sum_k (1/8) log((1/8) / mass_k), the part of KL(truth || model) that
the mode weights alone explain (the chain rule of KL: the rest is the shape within the
sectors)."""
import sys

import numpy as np  # host-side: a grid of points and their sums

import autodiff
import refgen
from autodiff import backend as B


def main(path, half_width=4.0, n=400):
    model = refgen.load(path)
    h = 2 * half_width / n
    g = -half_width + h * (np.arange(n) + 0.5)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    with autodiff.no_grad():
        log_p = B.to_numpy(model.log_prob(autodiff.Tensor(B.to_backend(pts.astype(np.float32)))).data)
    p = np.exp(log_p.astype(np.float64)) * h * h
    sector = np.round(np.arctan2(pts[:, 1], pts[:, 0]) / (2 * np.pi / 8)).astype(int) % 8
    mass = np.array([p[sector == k].sum() for k in range(8)])
    share = mass / mass.sum()
    print("total", round(float(p.sum()), 4), "masses", share.round(4).tolist(),
          "KL(mode masses)", round(float(np.sum(np.log((1 / 8) / share)) / 8), 4))


if __name__ == "__main__":
    main(sys.argv[1])
