"""Distances of 2500 samples to their nearest mode, in units of the mode's std (how wide the
learned modes are): python benchmarks/quality_scripts/mode_distance.py CHECKPOINT DATA [SAMPLER STEPS]."""
import sys, numpy as np, autodiff, refgen
from refgen.data.toy import get_density
m = refgen.load(sys.argv[1]); d = get_density(sys.argv[2])
kw = dict(sampler=sys.argv[3], steps=int(sys.argv[4])) if len(sys.argv) > 3 else {}
x = m.sample(2500, autodiff.Generator(0), **kw).numpy()
mu = np.asarray(d.means); std = d.sigma
r = np.sqrt(((x[:, None, :] - mu[None]) ** 2).sum(-1)).min(1)
print("std", std, "dist/std quantiles 50/80/90/95/99:", np.round(np.quantile(r / std, [.5, .8, .9, .95, .99]), 2),
      "share within 3 std", (r < 3 * std).mean(), "within 5 std", (r < 5 * std).mean())
# 2-D Gaussian: |r|/std has Rayleigh quantiles 1.18, 1.79, 2.15, 2.45, 3.03
