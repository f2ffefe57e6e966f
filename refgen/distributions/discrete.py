"""``Bernoulli`` and ``Categorical``, parameterised by logits and computed in log space.

Probabilities near 0 or 1 are where float arithmetic fails: sigma(l) rounds to 1 for
l > 37 in float64, and log(1 - p) then is -inf. Everything here is written in logits with
log-sigmoid (log sigma(l) = -softplus(-l)) and log-softmax, which stay finite for any finite
logit.
"""
import autodiff
import autodiff.functional as F
from autodiff import backend as B

from ._base import Distribution, as_param, broadcast_shapes, generator_or_default

__all__ = ["Bernoulli", "Categorical"]


def _logits_from(probs, logits, owner, is_binary):
    if (probs is None) == (logits is None):
        raise ValueError(f"{owner}: give exactly one of probs, logits")
    if logits is not None:
        return as_param(logits, "logits", owner)
    probs = as_param(probs, "probs", owner)
    data = probs.data
    if data.size and not bool(B.xp.all((data >= 0) & (data <= 1))):
        raise ValueError(f"{owner}: probs must lie in [0, 1]")
    # Clamp away from {0, 1} by the dtype's eps (as torch's probs_to_logits) so the
    # logits stay finite; the lost mass is below float resolution anyway.
    eps = float(B.xp.finfo(data.dtype).eps)
    p = autodiff.clamp(probs, eps, 1.0 - eps)
    if is_binary:
        return autodiff.log(p) - autodiff.log1p(-p)
    return autodiff.log(p)


class Bernoulli(Distribution):
    """Bernoulli(p), p = sigma(logits), over {0, 1}; batch_shape = logits.shape.

    log p(x) = x log sigma(l) + (1 - x) log sigma(-l),   log sigma(l) = -softplus(-l)
    (for x in {0, 1} this is -softplus(-l) or -softplus(l): finite for any finite l).
    entropy = -(p log sigma(l) + (1 - p) log sigma(-l)).

    ``log_prob`` refuses values outside {0, 1} (as PyTorch's ``validate_args``); with
    ``validate_args=False`` it evaluates the same formula for x in [0, 1], the binary
    cross-entropy against grey values that is not a normalised density (checking costs one
    host round trip per call on the GPU).
    """

    support_is_discrete = True

    def __init__(self, probs=None, logits=None, validate_args=True):
        self.logits = _logits_from(probs, logits, "Bernoulli", is_binary=True)
        self.validate_args = bool(validate_args)
        super().__init__(self.logits.shape)

    @property
    def probs(self):
        return autodiff.sigmoid(self.logits)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        return autodiff.sigmoid(self.logits) * autodiff.sigmoid(-self.logits)

    def log_prob(self, value):
        value = self._value(value, self.logits.dtype)
        if value.dtype.kind != "f":
            value = value.double() if self.logits.dtype == autodiff.float64 else value.float()
        xp = autodiff.backend.xp
        outside = (value.data != 0) & (value.data != 1)
        if self.validate_args and bool(outside.any()):   # host-side: one bool
            bad = value.data[outside].ravel()[0]
            raise ValueError(
                f"Bernoulli.log_prob: value must be 0 or 1, got {float(bad)!r} "
                f"({int(xp.count_nonzero(outside))} of {value.data.size} entries outside "
                "{0, 1}); for grey values in [0, 1] pass validate_args=False")
        return value * F.logsigmoid(self.logits) + (1.0 - value) * F.logsigmoid(-self.logits)

    def sample(self, sample_shape=(), generator=None):
        """1.0 where u < p, u ~ U[0, 1) drawn by ``generator.random`` (same dtype as logits)."""
        shape = self._extended_shape(sample_shape)
        u = generator_or_default(generator).random(shape, self.logits.dtype)
        p = self.probs.data
        return autodiff.Tensor((u < p).astype(self.logits.dtype))

    def entropy(self):
        # 1 - p as sigma(-l): 1 - sigma(l) rounds to 0 for l > 37 and drops that term.
        l = self.logits
        return -(autodiff.sigmoid(l) * F.logsigmoid(l)
                 + autodiff.sigmoid(-l) * F.logsigmoid(-l))


class Categorical(Distribution):
    """Categorical over {0, ..., K-1} with log p = log_softmax(logits) over the last dim.

    logits (*batch, K) -> batch_shape = *batch, event_shape = (); values are int64.
    entropy = -sum_k p_k log p_k; sample by the Gumbel-max trick (argmax of logits plus
    Gumbel noise -log(-log u); Gumbel 1954, as in Maddison et al. 2014): exact, and
    probability-0 classes (logits -inf) are never drawn.
    """

    support_is_discrete = True

    def __init__(self, probs=None, logits=None):
        logits = _logits_from(probs, logits, "Categorical", is_binary=False)
        if logits.ndim < 1 or logits.shape[-1] < 1:
            raise ValueError(f"Categorical: logits/probs need a last dim with at least one "
                             f"class, got shape {tuple(logits.shape)}")
        self.logits = F.log_softmax(logits, dim=-1)   # normalised, as torch stores them
        super().__init__(logits.shape[:-1])

    @property
    def num_classes(self):
        return self.logits.shape[-1]

    @property
    def probs(self):
        return autodiff.exp(self.logits)

    def log_prob(self, value):
        if isinstance(value, autodiff.Tensor):
            idx = value.data
        else:
            idx = B.xp.asarray(value)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Categorical.log_prob: values must be integers, got {idx.dtype}")
        K = self.num_classes
        if idx.size and not bool(B.xp.all((idx >= 0) & (idx < K))):
            raise ValueError(f"Categorical.log_prob: values must lie in [0, {K}), got "
                             f"min {int(idx.min())}, max {int(idx.max())}")
        shape = self._broadcast_value_shape(tuple(idx.shape))
        logits = autodiff.broadcast_to(self.logits, shape + (K,))
        idx = B.xp.broadcast_to(idx.astype(B.xp.int64), shape)[..., None]
        return autodiff.gather(logits, -1, idx).squeeze(-1)

    def _broadcast_value_shape(self, value_shape):
        return broadcast_shapes(value_shape, self.batch_shape,
                                what="Categorical.log_prob: value shape and batch_shape")

    def sample(self, sample_shape=(), generator=None):
        shape = self._extended_shape(sample_shape) + (self.num_classes,)
        xp = B.xp
        dtype = self.logits.dtype
        u = generator_or_default(generator).random(shape, dtype)
        u = xp.clip(u, xp.finfo(dtype).tiny, 1.0)     # log(0) never taken
        gumbel = -xp.log(-xp.log(u))
        return autodiff.Tensor(xp.argmax(self.logits.data + gumbel, axis=-1).astype(xp.int64))

    def entropy(self):
        # p log p -> 0 as p -> 0: a class with logit -inf gets the most negative finite
        # log p instead, so its term is 0 * finite = 0 (not 0 * inf = nan), as torch does.
        logp = autodiff.clamp(self.logits, min=float(B.xp.finfo(self.logits.dtype).min))
        return -(self.probs * logp).sum(-1)
