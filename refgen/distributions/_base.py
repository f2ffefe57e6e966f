"""The ``Distribution`` interface and the helpers every distribution shares.

Names and shapes follow ``torch.distributions``: a distribution has a ``batch_shape``
(independent distributions side by side, from broadcasting its parameters) and an
``event_shape`` (the shape of one draw). A draw of ``sample(sample_shape)`` has shape
``sample_shape + batch_shape + event_shape``; ``log_prob(x)`` takes such an ``x`` (any
leading dims that broadcast against the batch) and returns ``sample_shape + batch_shape``.

Parameters are autodiff Tensors (numbers and arrays are converted), so every
``log_prob``, ``entropy``, ``rsample`` and KL is differentiable in them.
"""
import math
import numbers
import operator

import autodiff
from autodiff import backend as B

__all__ = ["Distribution", "broadcast_shapes", "as_param", "broadcast_params",
           "check_positive", "loc_scale_params", "sample_shape_of", "generator_or_default"]

LOG_2PI = math.log(2.0 * math.pi)


def broadcast_shapes(*shapes, what="shapes"):
    """The NumPy broadcast of ``shapes``; ValueError naming every shape when they clash."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            listed = ", ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"{what} do not broadcast: {listed}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def as_param(value, name, owner, dtype=None):
    """``value`` as a floating Tensor (Tensors pass through, keeping their graph)."""
    if isinstance(value, autodiff.Tensor):
        if value.dtype.kind != "f":
            raise TypeError(f"{owner}: {name} must be a floating Tensor, got {value.dtype}")
        return value
    try:
        return autodiff.tensor(value, dtype=dtype or autodiff.get_default_dtype())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{owner}: {name} must be a Tensor or a number/array, got "
                        f"{type(value).__name__}") from exc


def broadcast_params(owner, **params):
    """Broadcast named Tensors to one shape (differentiably), as torch's broadcast_all."""
    shape = broadcast_shapes(*(p.shape for p in params.values()),
                             what=f"{owner}: parameter shapes of " + ", ".join(params))
    return [autodiff.broadcast_to(p, shape) for p in params.values()]


def check_positive(t, name, owner):
    """Raise ValueError unless every element of ``t`` is > 0 (NaN fails too)."""
    data = t.data
    if data.size and not bool(B.xp.all(data > 0)):
        bad = data[~(data > 0)].ravel()[0]
        raise ValueError(f"{owner}: {name} must be positive everywhere, got {float(bad)}")


def loc_scale_params(owner, loc, scale, validate_args=True):
    """The (loc, scale) of a location-scale family (Normal, Logistic, their discretised
    versions) as Tensors broadcast to one batch shape, scale > 0 checked unless
    ``validate_args`` is False; errors name ``owner``."""
    loc, scale = broadcast_params(owner, loc=as_param(loc, "loc", owner),
                                  scale=as_param(scale, "scale", owner))
    if validate_args:
        check_positive(scale, "scale", owner)
    return loc, scale


def sample_shape_of(sample_shape):
    """An int or a sequence of ints as a tuple (torch.Size semantics); TypeError for
    anything else (a string, floats), ValueError for a negative size."""
    if isinstance(sample_shape, numbers.Integral):
        shape = (int(sample_shape),)
    else:
        try:
            shape = tuple(operator.index(n) for n in sample_shape)
        except TypeError:
            raise TypeError(f"sample_shape must be an int or a tuple of ints, got "
                            f"{sample_shape!r}") from None
    if any(n < 0 for n in shape):
        raise ValueError(f"sample_shape must not be negative, got {shape}")
    return shape


def generator_or_default(generator):
    return B.default_generator() if generator is None else generator


class Distribution:
    """Base class: ``batch_shape``, ``event_shape``, ``log_prob``, ``sample``, ``rsample``.

    ``sample`` never records a graph; ``rsample`` (only where ``has_rsample``) is a
    differentiable function of the parameters and of noise drawn from ``generator``
    (the reparameterisation trick; Kingma and Welling 2014, Sec. 2.4).
    """

    has_rsample = False
    support_is_discrete = False

    def __init__(self, batch_shape=(), event_shape=()):
        self.batch_shape = tuple(batch_shape)
        self.event_shape = tuple(event_shape)

    # ------------------------------------------------------------------ shapes
    def _extended_shape(self, sample_shape=()):
        return sample_shape_of(sample_shape) + self.batch_shape + self.event_shape

    def _value(self, value, dtype, what="value"):
        """``value`` as a Tensor whose trailing dims match ``event_shape`` and whose
        batch dims broadcast with ``batch_shape``; the error names both shapes."""
        if not isinstance(value, autodiff.Tensor):
            value = autodiff.tensor(value, dtype=dtype)
        n_event = len(self.event_shape)
        if n_event and tuple(value.shape[value.ndim - n_event:]) != self.event_shape:
            raise ValueError(f"{type(self).__name__}.log_prob: {what} of shape "
                             f"{tuple(value.shape)} must end in the event shape "
                             f"{self.event_shape}")
        batch = tuple(value.shape[:value.ndim - n_event])
        broadcast_shapes(batch, self.batch_shape,
                         what=f"{type(self).__name__}.log_prob: {what} batch shape and the "
                              f"distribution's batch_shape")
        return value

    # ------------------------------------------------------------------ interface
    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def rsample(self, sample_shape=(), generator=None):
        raise NotImplementedError(
            f"{type(self).__name__} has no reparameterised sampler (rsample); use sample()")

    def sample(self, sample_shape=(), generator=None):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, no graph."""
        with autodiff.no_grad():
            return self.rsample(sample_shape, generator).detach()

    def entropy(self):
        raise NotImplementedError(f"{type(self).__name__} has no closed-form entropy")

    @property
    def mean(self):
        raise NotImplementedError(f"{type(self).__name__} has no closed-form mean")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self).__name__} has no closed-form variance")

    @property
    def stddev(self):
        return autodiff.sqrt(self.variance)

    def __repr__(self):
        return (f"{type(self).__name__}(batch_shape={self.batch_shape}, "
                f"event_shape={self.event_shape})")
