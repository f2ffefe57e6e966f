"""KL(p || q) = E_p[log p(x) - log q(x)] in closed form, looked up by the pair of types
(``torch.distributions.kl_divergence`` / ``register_kl``)."""
import math

import autodiff
import autodiff.functional as F

from .continuous import Uniform
from .discrete import Bernoulli, Categorical
from ._base import broadcast_shapes
from .normal import Independent, MultivariateNormal, Normal, _tri_solve

__all__ = ["kl_divergence", "register_kl"]

_KL = {}


def register_kl(type_p, type_q):
    """Decorator: ``fn(p, q)`` computes KL(p || q) for instances of these types."""
    def deco(fn):
        _KL[(type_p, type_q)] = fn
        return fn
    return deco


def kl_divergence(p, q):
    """KL(p || q), shape broadcast(p.batch_shape, q.batch_shape).

    The most specific registered pair along both types' MROs is used; without one,
    NotImplementedError names both types and lists the registered pairs. Event shapes must
    be equal and batch shapes must broadcast (ValueError naming both, before any arithmetic).
    """
    names = f"{type(p).__name__} || {type(q).__name__}"
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise ValueError(f"kl_divergence({names}): event shapes differ: {p.event_shape} and "
                         f"{q.event_shape}")
    broadcast_shapes(p.batch_shape, q.batch_shape,
                     what=f"kl_divergence({names}): batch shapes")
    for tp in type(p).__mro__:
        for tq in type(q).__mro__:
            fn = _KL.get((tp, tq))
            if fn is not None:
                return fn(p, q)
    known = ", ".join(f"({a.__name__}, {b.__name__})" for a, b in _KL)
    raise NotImplementedError(f"no closed-form KL({type(p).__name__} || {type(q).__name__}); "
                              f"registered pairs: {known}")


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    """log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2, written with
    r = (s_p / s_q)^2 as (r + t - 1 - log r) / 2, t = ((m_p - m_q) / s_q)^2."""
    r = (p.scale / q.scale) ** 2
    t = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (r + t - 1.0 - autodiff.log(r))


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    """(tr(S_q^-1 S_p) + (m_q - m_p)^T S_q^-1 (m_q - m_p) - d + log det S_q - log det S_p) / 2
    with S = L L^T: tr = ||L_q^-1 L_p||_F^2, the quadratic form = ||L_q^-1 (m_q - m_p)||^2."""
    d = p.event_shape[0]
    batch = broadcast_shapes(p.batch_shape, q.batch_shape,
                             what="kl_divergence: MultivariateNormal batch shapes")
    Lp = autodiff.broadcast_to(p._unbroadcasted_scale_tril, batch + (d, d))
    Lq = autodiff.broadcast_to(q._unbroadcasted_scale_tril, batch + (d, d))
    M = autodiff.linalg.solve_triangular(Lq, Lp, upper=False)          # L_q^-1 L_p
    trace = (M * M).sum((-2, -1))
    y = _tri_solve(q._unbroadcasted_scale_tril, q.loc - p.loc)
    maha = (y * y).sum(-1)
    return 0.5 * (trace + maha - d) + q._half_log_det() - p._half_log_det()


@register_kl(Independent, Independent)
def _kl_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independent distributions with different "
                                  "reinterpreted_batch_ndims")
    return p._sum_rightmost(kl_divergence(p.base, q.base))


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli(p, q):
    """p (log sig(l_p) - log sig(l_q)) + (1 - p) (log sig(-l_p) - log sig(-l_q)), with
    1 - p = sig(-l_p) (not 1 - sig(l_p), which rounds to 0 for large l_p)."""
    lp, lq = p.logits, q.logits
    return (autodiff.sigmoid(lp) * (F.logsigmoid(lp) - F.logsigmoid(lq))
            + autodiff.sigmoid(-lp) * (F.logsigmoid(-lp) - F.logsigmoid(-lq)))


@register_kl(Categorical, Categorical)
def _kl_categorical(p, q):
    """sum_k p_k (log p_k - log q_k); classes with p_k = 0 add 0."""
    if p.num_classes != q.num_classes:
        raise ValueError(f"kl_divergence: Categoricals over {p.num_classes} and "
                         f"{q.num_classes} classes")
    diff = p.logits - q.logits
    zero_p = p.logits.data == -math.inf
    return (autodiff.where(zero_p, 0.0, p.probs * autodiff.where(zero_p, 0.0, diff))).sum(-1)


@register_kl(Uniform, Uniform)
def _kl_uniform(p, q):
    """log((h_q - l_q) / (h_p - l_p)) when [l_p, h_p] lies inside [l_q, h_q], else +inf."""
    val = autodiff.log(q.high - q.low) - autodiff.log(p.high - p.low)
    inside = (q.low.data <= p.low.data) & (p.high.data <= q.high.data)
    return autodiff.where(inside, val, math.inf)
