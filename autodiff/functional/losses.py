"""Loss functions with PyTorch's names, signatures, reductions and exact normalisations.

Every loss takes ``reduction`` in {'none', 'mean', 'sum'} (kl_div also 'batchmean'); the
deprecated ``size_average``/``reduce`` pair is honoured as PyTorch does. Losses that start
from logits never form a probability first (log_softmax, softplus), so logits of +-1e4
give finite values and gradients.
"""
import math
import warnings

from .. import backend as B
from ..tensor import Tensor
from ..ops import elementwise as ew
from ..ops import shape as sh
from ..ops._util import const
from ..ops.activations import Softplus
from .activations import _check_tensor, log_softmax
from .layers import _check_range

__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
    "gaussian_nll_loss", "kl_div",
]

_REDUCTIONS = ("none", "mean", "sum")


# --------------------------------------------------------------------------- reductions
def _reduction(size_average, reduce, reduction, op, allowed=_REDUCTIONS):
    """The reduction string, from the deprecated pair when either is given (PyTorch's rule)."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in allowed:
        raise ValueError(
            f"{op}: unknown reduction {reduction!r}; expected one of "
            f"{', '.join(repr(a) for a in allowed)}")
    return reduction


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def _as_tensor(x, like):
    """``x`` as a Tensor in ``like``'s floating dtype (targets may come as arrays or ints)."""
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.dtype != like.dtype and like.dtype.kind == "f":
        t = ew.astype(t, like.dtype)
    return t


def _scalar(value, like):
    """A 0-d constant in ``like``'s dtype (used as a denominator)."""
    return const(B.xp.asarray(value, dtype=like.dtype))


def _check_broadcast(a_shape, b_shape, op, a_name="input", b_name="target"):
    try:
        return B.numpy.broadcast_shapes(tuple(a_shape), tuple(b_shape))  # shape arithmetic
    except ValueError:
        raise ValueError(
            f"{op}: {a_name} of shape {tuple(a_shape)} and {b_name} of shape "
            f"{tuple(b_shape)} do not broadcast") from None


def _warn_if_target_broadcasts(input_shape, target_shape, op):
    """PyTorch's warning for pointwise regression losses: a target of a different shape is
    broadcast, and (N, 1) against (N,) silently becomes an (N, N) loss, almost never meant."""
    if tuple(input_shape) != tuple(target_shape):
        warnings.warn(
            f"{op}: target of shape {tuple(target_shape)} differs from input of shape "
            f"{tuple(input_shape)}; they are broadcast to "
            f"{B.numpy.broadcast_shapes(tuple(input_shape), tuple(target_shape))}, which is "
            "likely wrong: give both the same shape", UserWarning, stacklevel=3)


# --------------------------------------------------------------------------- class targets
def _class_targets(input, target, op):
    """Validate integer class indices; return the array (shape (N, *) or () for input (C,))."""
    t = target.data if isinstance(target, Tensor) else B.xp.asarray(target)
    expected = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if tuple(t.shape) != expected:
        raise ValueError(
            f"{op}: target of shape {tuple(t.shape)} does not match input of shape "
            f"{tuple(input.shape)}: expected class indices of shape {expected}"
            + (f" or class probabilities of shape {tuple(input.shape)}"
               if op == "cross_entropy" else ""))
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index target must be an integer tensor, got dtype {t.dtype}")
    return t


def _check_weight(weight, n_classes, input, op):
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise ValueError(
            f"{op}: weight of shape {tuple(weight.shape)} must have one entry per class "
            f"({n_classes},) for input of shape {tuple(input.shape)}")


def _target_weights(t, weight, ignore_index, n_classes, dtype, op):
    """(safe indices, per-target weight w[t] with 0 where t == ignore_index)."""
    xp = B.xp
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)   # ignored targets may be out of range (e.g. -100)
    _check_range(safe, n_classes, op, "target class indices")
    if weight is None:
        return safe, valid.astype(dtype)
    return safe, weight.data.astype(dtype, copy=False)[safe] * valid


def _nll(log_probs, t, weight, ignore_index, reduction, op):
    """-w[t] log_probs[t] per target; 'mean' divides by sum of w[t] over kept targets."""
    squeeze = log_probs.ndim == 1
    if squeeze:                      # (C,) with a 0-d target: one sample
        log_probs, t = log_probs.unsqueeze(0), t[None]
    n_classes = log_probs.shape[1]
    safe, w = _target_weights(t, weight, ignore_index, n_classes, log_probs.dtype, op)
    picked = sh.gather(log_probs, 1, safe[:, None]).squeeze(1)          # (N, *)
    loss = -(picked * const(w))
    if squeeze:
        loss = loss.reshape(())
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # Weighted mean; every target ignored gives 0/0 = NaN, as in PyTorch.
    return loss.sum() / _scalar(w.sum(), log_probs)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of class indices: loss_n = -weight[t_n] * input[n, t_n].

    :param input: log-probabilities (N, C) or (N, C, d1, ...) or (C,)
    :param target: int (N,) or (N, d1, ...) or (); entries equal to ``ignore_index`` add 0
    :param weight: (C,) class weights or None (treated as constants, as in PyTorch)
    :return: 'none': (N, d1, ...); 'sum': total; 'mean': total / sum of weight[t_n] over
        the targets that are not ignored
    """
    op = "nll_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensor(input, op)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    _check_weight(weight, input.shape[0 if input.ndim == 1 else 1], input, op)
    t = _class_targets(input, target, op)
    return _nll(input, t, weight, ignore_index, reduction, op)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy from unnormalised logits: nll_loss(log_softmax(input, class_dim), target).

    Class-index targets (int, shape (N, d1, ...)): with label smoothing eps (Szegedy et al.
    2016) the loss is  (1 - eps) nll + (eps / C) * sum_c -w_c log p_c,  and for 'mean' both
    parts are divided by the sum of w[t_n] over targets that are not ignored (PyTorch's
    normalisation).

    Class-probability targets (float, the input's shape): loss_n = -sum_c w_c y_c log p_c
    with y smoothed to (1 - eps) y + eps / C; 'mean' divides by N * d1 * ... (not by weights).

    :param input: logits (N, C), (N, C, d1, ...) or (C,)
    :return: 'none': (N, d1, ...); otherwise a scalar
    """
    op = "cross_entropy"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensor(input, op)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    _check_weight(weight, n_classes, input, op)
    target_shape = tuple(target.shape) if hasattr(target, "shape") else ()
    log_p = log_softmax(input, class_dim)
    if target_shape == tuple(input.shape) and input.ndim > 0:
        return _soft_cross_entropy(log_p, target, weight, reduction, label_smoothing, class_dim)
    t = _class_targets(input, target, op)
    nll = _nll(log_p, t, weight, ignore_index, reduction, op)
    if label_smoothing == 0.0:
        return nll
    # Smoothing part: uniform target over classes, weighted per class.
    dtype = log_p.dtype
    weighted = log_p if weight is None else log_p * const(
        weight.data.astype(dtype, copy=False).reshape((n_classes,) + (1,) * (input.ndim - 2)))
    smooth = -weighted.sum(class_dim)
    safe, w = _target_weights(t, weight, ignore_index, n_classes, dtype, op)
    smooth = smooth * const((t != ignore_index).astype(dtype))
    if reduction == "mean":
        smooth = smooth.sum() / _scalar(w.sum(), log_p)
    elif reduction == "sum":
        smooth = smooth.sum()
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _soft_cross_entropy(log_p, target, weight, reduction, label_smoothing, class_dim):
    op = "cross_entropy"
    if (target.dtype.kind if hasattr(target, "dtype") else "f") != "f":
        raise TypeError(
            f"{op}: target of shape {tuple(target.shape)} has the input's shape, so it is read "
            f"as class probabilities, which must be floating point; got dtype {target.dtype}. "
            f"Class indices need shape {tuple(log_p.shape[:1]) + tuple(log_p.shape[2:])}")
    n_classes = log_p.shape[class_dim]
    y = _as_tensor(target, log_p)
    if label_smoothing > 0.0:
        y = y * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = log_p * y
    if weight is not None:
        weight = _as_tensor(weight, log_p)
        prod = prod * weight.reshape((n_classes,) + (1,) * (log_p.ndim - class_dim - 1))
    if reduction == "none":
        return -prod.sum(class_dim)
    total = -prod.sum()
    if reduction == "sum":
        return total
    count = log_p.numel() // n_classes if n_classes else 0
    return total / float(count) if count else total * float("nan")


# --------------------------------------------------------------------------- regression losses
def _pointwise_weighted(loss, weight, reduction, input, op):
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: weight of shape {tuple(weight.shape)} must have the input's shape "
            f"{tuple(input.shape)}")
    weight = _as_tensor(weight, input)
    loss = loss * weight
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)^2, broadcast; with ``weight`` (input's shape) 'mean' is
    sum(w (x - y)^2) / sum(w), as PyTorch."""
    op = "mse_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensor(input, op)
    target = _as_tensor(target, input)
    _check_broadcast(input.shape, target.shape, op)
    _warn_if_target_broadcasts(input.shape, target.shape, op)
    diff = input - target
    return _pointwise_weighted(diff * diff, weight, reduction, input, op)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|, broadcast; derivative 0 where input == target (PyTorch's choice)."""
    op = "l1_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensor(input, op)
    target = _as_tensor(target, input)
    _check_broadcast(input.shape, target.shape, op)
    _warn_if_target_broadcasts(input.shape, target.shape, op)
    return _pointwise_weighted(ew.abs(input - target), weight, reduction, input, op)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """-[p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], from logits x.

    Stable form: since log(1 - sigmoid(x)) = log sigmoid(x) - x and -log sigmoid(x) =
    softplus(-x),

        loss = (1 - y) x + (1 + (p - 1) y) softplus(-x)

    with p = pos_weight (broadcast along the last, class, dim). ``weight`` multiplies the
    elementwise loss. Input and target must have the same shape.
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensor(input, op)
    target = _as_tensor(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: target of shape {tuple(target.shape)} must have the same shape as input "
            f"of shape {tuple(input.shape)}")
    neg_log_sigmoid = Softplus.apply(-input)
    if pos_weight is not None:
        pos_weight = _as_tensor(pos_weight, input)
        _check_broadcast(input.shape, pos_weight.shape, op, b_name="pos_weight")
        log_weight = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * neg_log_sigmoid
    else:
        loss = (1.0 - target) * input + neg_log_sigmoid
    if weight is not None:
        weight = _as_tensor(weight, input)
        _check_broadcast(input.shape, weight.shape, op, b_name="weight")
        loss = loss * weight
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood with predicted variance (Nix & Weigend 1994):

        loss = 0.5 (log max(var, eps) + (input - target)^2 / max(var, eps))  [+ 0.5 log(2 pi)]

    :param input, target: (N, *)
    :param var: input's shape; or one dim short (homoscedastic, unsqueezed at the end); or
        input's shape with one dim of size 1; or a non-negative float
    """
    op = "gaussian_nll_loss"
    _check_tensor(input, op)
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError(f"{op}: var has negative entry/entries ({var})")
        var = Tensor(B.xp.full(input.shape, float(var), dtype=input.dtype))
    else:
        var = _as_tensor(var, input)
        if bool((var.data < 0).any()):
            raise ValueError(f"{op}: var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(var.shape) == tuple(input.shape[:-1]):
            var = var.unsqueeze(-1)
        elif not (var.ndim == input.ndim and sum(
                v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ValueError(
                f"{op}: var of shape {tuple(var.shape)} is of incorrect size for input of shape "
                f"{tuple(input.shape)} (need the same shape, the same without the last dim, or "
                f"one dim of size 1)")
    reduction = _reduction(None, None, reduction, op)
    target = _as_tensor(target, input)
    _check_broadcast(input.shape, target.shape, op)
    var = ew.ClampMinStraightThrough.apply(var, lo=eps)
    diff = input - target
    loss = (ew.log(var) + diff * diff / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise KL divergence with ``input`` = log q (log-probabilities) and target p:

        log_target=False:  p (log p - log q)   (0 where p = 0, via xlogy)
        log_target=True:   exp(t) (t - log q)   with t = log p

    Reductions: 'batchmean' = sum / input.shape[0] (the true KL per sample), 'mean' = mean
    over all elements (PyTorch's, which it warns about), 'sum', 'none'.
    """
    op = "kl_div"
    reduction = _reduction(size_average, reduce, reduction, op,
                           allowed=("none", "batchmean", "sum", "mean"))
    _check_tensor(input, op)
    target = _as_tensor(target, input)
    _check_broadcast(input.shape, target.shape, op)
    if log_target:
        loss = ew.exp(target) * (target - input)
    else:
        positive = target.data != 0
        # xlogy(p, p): the log only sees p where p != 0, so p = 0 adds 0 without NaN.
        p_log_p = ew.where(positive, target * ew.log(ew.where(positive, target, 1.0)), 0.0)
        loss = p_log_p - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / float(input.shape[0]) if input.ndim else total
    return _reduce(loss, reduction)
