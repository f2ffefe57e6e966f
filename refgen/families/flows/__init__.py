"""Normalizing flows (issue 12): exact likelihood by the change of variables.

* ``bijections``: the Bijection interface (``forward``/``inverse`` -> (output, logabsdet)),
  composition, permutations, affine/additive coupling with checkerboard and channel masks,
  ActNorm, invertible 1x1 convolutions (plain and LU), squeeze and the multi-scale
  architecture, batch norm, logit preprocessing;
* ``splines``: rational-quadratic splines with linear tails and the spline coupling;
* ``autoregressive``: MAF and IAF on the shared MADE (``families.common.made``);
* ``models``: ``Flow`` (base + bijection: log_prob, sample, sample_and_log_prob, encode) and
  ``FlowModel``, the ``GenerativeModel``;
* ``ffjord``: the continuous flow (FFJORD) on ``families.common.ode``;
* ``family``: the registry entries ``realnvp``, ``glow``, ``nsf``, ``maf`` (and ``ffjord``).
"""
from . import bijections, splines
from .family import FlowFamily, glow, maf, nsf, realnvp
from .ffjord import FFJORD, ffjord
from .models import ARCHITECTURES, Flow, FlowModel, build_bijection, standard_normal_log_prob

__all__ = ["bijections", "splines", "Flow", "FlowModel", "FlowFamily", "build_bijection",
           "standard_normal_log_prob", "ARCHITECTURES", "realnvp", "glow", "nsf", "maf", "FFJORD", "ffjord"]
