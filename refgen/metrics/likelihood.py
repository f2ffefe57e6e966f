"""Bits per dimension from an exact log-likelihood, a bound, or an ODE likelihood.

    bpd = -log p(x) / (D log 2),      D = number of dimensions (e.g. C * H * W).

What log p(x) is, and so what the number means, depends on how the data were made
continuous. The conventions (Theis, van den Oord & Bethge 2016, "A note on the evaluation of
generative models", section 3.1; Dinh et al. 2017, section 4.1; Ho et al. 2020, section 3.3):

* Discrete data. 8-bit images are integers k in {0, ..., L-1}^D (L = 256 levels; digits in
  refgen have L = 17). A model of the probability mass P(k) (PixelCNN's softmax, a
  discretized logistic, DDPM's discrete decoder) gives bpd = -log P(k) / (D log 2) directly:
  ``bits_per_dim_discrete``.
* Uniform dequantization. A continuous density is fitted to y = k + u, u ~ U[0, 1)^D, in
  [0, L)^D. Since P(k) = int_{[0,1)^D} p(k + u) du, Jensen's inequality gives
  E_u[log p(k + u)] <= log P(k): the dequantized log-likelihood is a LOWER bound on the
  discrete one, so the bpd reported is an UPPER bound on the discrete bpd.
* Scaled data: the change-of-variables offset. Models usually see x = a y + b, e.g.
  x = y / 256 in [0, 1) (a = 1/256) or x = 2 y / 256 - 1 in [-1, 1) (a = 2/256), refgen's
  image data sets with ``preprocessing.dequantize``: x = (k + u) / L (a = 1/L). Then
  log p_Y(y) = log p_X(x) + D log a, so with a = 1/256 the offset is -D log 256, i.e.
  + log2(256) = 8 bits per dimension:
      bpd = -log p_X(x) / (D log 2) - log2(a)  =  -log p_X(x) / (D log 2) + 8   (a = 1/256).
  ``bits_per_dim(log_px, D, data_scale=a)`` takes a explicitly; ``data_scale(levels,
  value_range)`` gives a = (hi - lo) / levels. Forgetting the term is the most common
  source of wrong numbers; with it, numbers on [0, 1], [-1, 1] and [0, 256) data agree.
* A bound instead of log p(x): an ELBO (VAE; diffusion models' variational bound) is
  <= log p(x), so its bpd is an upper bound on the model's bpd: ``bits_per_dim_from_elbo``.
* An ODE likelihood (continuous normalising flow; a diffusion model's probability-flow ODE,
  Song et al. 2021, appendix D.2): by the instantaneous change of variables (Chen et al.
  2018, theorem 1), log p_0(x(0)) = log p_T(x(T)) + int_0^T div f(x(t), t) dt, with x(t)
  solving dx/dt = f(x, t) from the data at t = 0 to the prior at t = T:
  ``bits_per_dim_from_ode``. A Hutchinson (Skilling 1989, Hutchinson 1990) estimate of the
  divergence makes the log-likelihood unbiased, not exact; the ODE solver's tolerance adds
  error; and on dequantized data it is again a bound on the discrete likelihood.

All functions take floats, NumPy or backend arrays or Tensors (per-example values, shape
(N,) or any shape) and return the same shape as a float64 backend array (a Python float for
scalar input); average over examples AFTER converting (bpd is linear in log p, so the mean
bpd equals the bpd of the mean log-likelihood).
"""
import math

from autodiff import backend as B

from ._arrays import backend_float64

__all__ = ["bits_per_dim", "bits_per_dim_discrete", "bits_per_dim_from_elbo",
           "bits_per_dim_from_ode", "data_scale", "LOG2"]

LOG2 = math.log(2.0)


def _arr(x, name):
    a = backend_float64(x)
    if not bool(B.xp.isfinite(a).all()):
        raise ValueError(f"{name} has non-finite values")
    return a


def _out(a):
    return float(a) if a.ndim == 0 else a


def _dims(num_dims):
    if isinstance(num_dims, (tuple, list)):
        num_dims = math.prod(int(d) for d in num_dims)
    if int(num_dims) != num_dims or int(num_dims) < 1:
        raise ValueError(f"num_dims must be a positive integer (or a shape), got {num_dims!r}")
    return int(num_dims)


def data_scale(levels=256, value_range=(0.0, 1.0)):
    """a = dx/dy for data x = a y + b with y in [0, levels) dequantized: (hi - lo) / levels.

    ``data_scale(256, (0, 1)) = 1/256``; ``data_scale(256, (-1, 1)) = 1/128``;
    ``data_scale(256, (0, 256)) = 1``.
    """
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo or int(levels) < 2:
        raise ValueError(f"need levels >= 2 and value_range (lo, hi) with hi > lo; got levels "
                         f"{levels}, value_range {value_range}")
    return (hi - lo) / int(levels)


def bits_per_dim(log_px, num_dims, data_scale=1.0):
    """bpd = -(log p_X(x) + D log a) / (D log 2) for a continuous density on scaled data.

    :param log_px: log p_X(x) in nats, the density of the model's data x = a y + b, where y
        in [0, L)^D is the uniformly dequantized integer data (the result is then an upper
        bound on the discrete bpd, by Jensen: see the module docstring).
    :param num_dims: D, an int or the shape of one example (e.g. (3, 32, 32)).
    :param data_scale: a = dx/dy, explicitly: 1/256 for [0, 1] (adds 8 bits), 2/256 for
        [-1, 1] (adds 7), 1 for [0, 256) (adds nothing); see ``data_scale()``.
    :return: bits per dimension, shape of ``log_px``.
    """
    d = _dims(num_dims)
    a = float(data_scale)
    if not a > 0:
        raise ValueError(f"data_scale must be > 0 (dx/dy of x = a y + b), got {data_scale}")
    log_py = _arr(log_px, "log_px") + d * math.log(a)   # change of variables back to y
    return _out(-log_py / (d * LOG2))


def bits_per_dim_discrete(log_pmf, num_dims):
    """bpd = -log P(k) / (D log 2) for a probability mass of the integer data: exact, no
    dequantization and no change-of-variables offset."""
    d = _dims(num_dims)
    log_p = _arr(log_pmf, "log_pmf")
    if bool((log_p > 0).any()):
        raise ValueError("log_pmf must be <= 0 (the log of a probability mass)")
    return _out(-log_p / (d * LOG2))


def bits_per_dim_from_elbo(elbo, num_dims, data_scale=None):
    """Upper bound on bpd from an ELBO <= log p(x): -ELBO / (D log 2) (+ the offset).

    :param elbo: the evidence lower bound in nats (per example or averaged).
    :param data_scale: None when the decoder is a probability mass over the integer data
        (Bernoulli, discretized logistic, DDPM's discrete decoder): no offset; otherwise
        a = dx/dy of a continuous decoder on dequantized data, as in ``bits_per_dim``.
    :return: bits per dimension, an upper bound on the model's (negative ELBO >= NLL).
    """
    if data_scale is None:
        d = _dims(num_dims)
        return _out(-_arr(elbo, "elbo") / (d * LOG2))
    return bits_per_dim(elbo, num_dims, data_scale)


def bits_per_dim_from_ode(prior_log_prob, delta_log_prob, num_dims, data_scale=1.0):
    """bpd from the instantaneous change of variables along an ODE from data to prior.

    log p_0(x(0)) = log p_T(x(T)) + int_0^T div f(x(t), t) dt (Chen et al. 2018, thm. 1;
    Song et al. 2021, appendix D.2), then ``bits_per_dim`` with the data-scale offset.

    :param prior_log_prob: log p_T(x(T)), the prior's log-density at the end of the ODE.
    :param delta_log_prob: int_0^T div f dt, integrated along the same path (exact or a
        Hutchinson estimate: then the result is unbiased in nats, not exact).
    :param data_scale: a = dx/dy for dequantized data (see ``bits_per_dim``).
    """
    log_px = _arr(prior_log_prob, "prior_log_prob") + _arr(delta_log_prob, "delta_log_prob")
    return bits_per_dim(log_px, num_dims, data_scale)
