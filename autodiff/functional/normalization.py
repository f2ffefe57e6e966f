"""Normalisation layers in functional form: layer_norm, group_norm, batch_norm.

All three compute  y = (x - mean) / sqrt(var + eps) * weight + bias  with the *biased*
variance (divide by n) over a different set of axes, composed from differentiable ops so
that second derivatives (WGAN-GP through a normalised critic) come for free.
"""
from ..tensor import no_grad
from ..ops import elementwise as ew
from ..ops.normalization import Normalize
from .activations import _check_tensor
from .layers import _check_same_dtype

__all__ = ["layer_norm", "group_norm", "batch_norm"]


def _normalize(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over ``axes`` with the biased variance."""
    axes = tuple(a % x.ndim for a in axes)
    return Normalize.apply(x, axes=axes, eps=float(eps))


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _check_param(p, n, op, name, x):
    if p is not None and tuple(p.shape) != (n,) and p.numel() != n:
        raise ValueError(
            f"{op}: {name} of shape {tuple(p.shape)} does not match {n} channels of input "
            f"shape {tuple(x.shape)}")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation (Ba, Kiros & Hinton 2016) over the trailing ``normalized_shape`` dims.

    :param input: (*, *normalized_shape)
    :param weight, bias: (*normalized_shape) or None
    :return: same shape as input
    """
    _check_tensor(input, "layer_norm")
    _check_same_dtype("layer_norm", input, weight=weight, bias=bias)
    normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                        else tuple(normalized_shape))
    k = len(normalized_shape)
    if k == 0 or k > input.ndim or tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise ValueError(
            f"layer_norm: normalized_shape {normalized_shape} does not match the trailing "
            f"dims of input shape {tuple(input.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != normalized_shape:
            raise ValueError(
                f"layer_norm: {name} of shape {tuple(p.shape)} must have normalized_shape "
                f"{normalized_shape}")
    axes = tuple(range(input.ndim - k, input.ndim))
    y = _normalize(input, axes, eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation (Wu & He 2018): channels split into ``num_groups`` groups, each
    normalised over its channels and all spatial positions, per sample.

    :param input: (N, C, *) with C divisible by num_groups
    :param weight, bias: (C,) or None, applied per channel
    :return: (N, C, *)
    """
    _check_tensor(input, "group_norm")
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected input (N, C, *), got shape {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(
            f"group_norm: {c} channels (input shape {tuple(input.shape)}) cannot be split into "
            f"{num_groups} groups")
    _check_param(weight, c, "group_norm", "weight", input)
    _check_param(bias, c, "group_norm", "bias", input)
    per_group = input.numel() // (n * num_groups) if n else 0
    grouped = input.reshape(n, num_groups, per_group)
    y = _normalize(grouped, (2,), eps).reshape(input.shape)
    return _affine(y, weight, bias, (1, c) + (1,) * (input.ndim - 2))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation (Ioffe & Szegedy 2015, Algorithm 1) over every dim but channels.

    Training: normalise with the batch mean and *biased* batch variance, and update the
    running statistics in place (when given) exactly as PyTorch does:

        running_mean <- (1 - momentum) running_mean + momentum mean
        running_var  <- (1 - momentum) running_var  + momentum var * n / (n - 1)   (unbiased)

    with n the number of values per channel. Eval: normalise with the running statistics.

    :param input: (N, C) or (N, C, *)
    :param running_mean, running_var: (C,) Tensors (buffers), or None in training
    :return: same shape as input
    """
    _check_tensor(input, "batch_norm")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, *), got shape {tuple(input.shape)}")
    c = input.shape[1]
    for name, p in (("running_mean", running_mean), ("running_var", running_var)):
        _check_param(p, c, "batch_norm", name, input)
    _check_param(weight, c, "batch_norm", "weight", input)
    _check_param(bias, c, "batch_norm", "bias", input)
    shape = (1, c) + (1,) * (input.ndim - 2)
    axes = (0,) + tuple(range(2, input.ndim))
    if training:
        count = input.numel() // c if c else 0
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"shape {tuple(input.shape)}")
        y = _normalize(input, axes, eps)
        if running_mean is not None or running_var is not None:
            # The batch statistics again, as raw arrays, for the running averages only.
            mean = input.data.mean(axis=axes)
            centred = input.data - mean.reshape(shape)
            var = (centred * centred).mean(axis=axes)
            _update_running(running_mean, mean, momentum, 1.0)
            _update_running(running_var, var, momentum, count / (count - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when not "
                             "training")
        mean = running_mean.detach().reshape(shape)
        var = running_var.detach().reshape(shape)
        y = (input - mean) / ew.sqrt(var + float(eps))
    return _affine(y, weight, bias, shape)


def _update_running(buffer, stat, momentum, correction):
    """buffer <- (1 - momentum) buffer + momentum * correction * stat, in place."""
    if buffer is None:
        return
    with no_grad():
        value = stat.reshape(buffer.shape)
        if correction != 1.0:
            value = value * correction
        new = buffer.data * (1.0 - momentum) + value * momentum
        buffer.copy_(new.astype(buffer.dtype, copy=False))

