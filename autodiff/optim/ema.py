"""Exponential moving average of parameters (Polyak averaging), for evaluation and sampling.

Generative models (DDPM, score models, GANs) are usually evaluated with an EMA of their
weights rather than the raw weights. The shadow copy follows

    shadow <- decay_t * shadow + (1 - decay_t) * param

after each optimiser step. With ``use_num_updates=True`` (the default) the decay is
warmed up as in TensorFlow's ``tf.train.ExponentialMovingAverage(num_updates=n)`` (and the
``torch_ema`` package)::

    decay_t = min(decay, (1 + n) / (10 + n)),      n = number of updates before this one

so early averages are not dominated by the random initialisation (decay_0 = 0.1).
"""
from contextlib import contextmanager

from .. import backend as B
from ..tensor import Tensor, _make, no_grad
from .optimizer import bump_version

__all__ = ["ExponentialMovingAverage"]


def _as_param_list(parameters, what):
    """A list of Tensors from a module (anything with ``.parameters()``) or an iterable."""
    if hasattr(parameters, "parameters") and callable(parameters.parameters):
        parameters = parameters.parameters()
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(
                f"ExponentialMovingAverage.{what}: parameter {i} is a {type(p).__name__}, "
                "not a Tensor")
    return params


class ExponentialMovingAverage:
    """A shadow copy of ``parameters`` kept as their exponential moving average.

    :param parameters: a module (its ``parameters()``) or an iterable of Tensors.
    :param decay: the long-run decay, in [0, 1] (0.999 or 0.9999 are usual).
    :param use_num_updates: warm the decay up as ``min(decay, (1 + n) / (10 + n))``.

    Typical use::

        ema = ExponentialMovingAverage(model, decay=0.999)
        for batch in data:
            ...; opt.step(); ema.update()
        with ema.average_parameters():      # store, copy_to, then restore on exit
            evaluate(model)

    Methods that take ``parameters=None`` use the ones given at construction; pass others
    (same shapes, same order) to act on a different copy of the model.
    """

    def __init__(self, parameters, decay, use_num_updates=True):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ExponentialMovingAverage: decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.num_updates = 0 if use_num_updates else None
        self._params = _as_param_list(parameters, "__init__")
        self.shadow_params = [_make(B.xp.array(p.data, copy=True), False, None)
                              for p in self._params]
        self.collected_params = None

    def _resolve(self, parameters, what):
        if parameters is None:
            return self._params
        params = _as_param_list(parameters, what)
        if len(params) != len(self.shadow_params):
            raise ValueError(
                f"ExponentialMovingAverage.{what}: got {len(params)} parameters, the average "
                f"holds {len(self.shadow_params)}")
        for i, (p, s) in enumerate(zip(params, self.shadow_params)):
            if p.shape != s.shape:
                raise ValueError(
                    f"ExponentialMovingAverage.{what}: parameter {i} has shape "
                    f"{tuple(p.shape)}, its average has shape {tuple(s.shape)}")
        return params

    def current_decay(self):
        """The decay the next ``update()`` will use."""
        if self.num_updates is None:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n))

    def update(self, parameters=None):
        """``shadow <- d * shadow + (1 - d) * param`` with d = ``current_decay()``."""
        params = self._resolve(parameters, "update")
        decay = self.current_decay()
        if self.num_updates is not None:
            self.num_updates += 1
        with no_grad():
            for s, p in zip(self.shadow_params, params):
                a = s.data
                a *= decay
                a += (1 - decay) * p.data

    def copy_to(self, parameters=None):
        """Overwrite ``parameters`` (a module or Tensors) with the averages, in place."""
        for s, p in zip(self.shadow_params, self._resolve(parameters, "copy_to")):
            p.data[...] = s.data
            bump_version(p)

    def store(self, parameters=None):
        """Keep a copy of the current ``parameters`` to bring back with ``restore()``."""
        self.collected_params = [_make(B.xp.array(p.data, copy=True), False, None)
                                 for p in self._resolve(parameters, "store")]

    def restore(self, parameters=None):
        """Put back the values saved by ``store()`` (e.g. after evaluating with the EMA)."""
        if self.collected_params is None:
            raise RuntimeError(
                "ExponentialMovingAverage.restore: nothing stored; call store() first")
        for c, p in zip(self.collected_params, self._resolve(parameters, "restore")):
            p.data[...] = c.data
            bump_version(p)
        self.collected_params = None

    @contextmanager
    def average_parameters(self, parameters=None):
        """Within the block the parameters hold the averages; restored on exit."""
        self.store(parameters)
        self.copy_to(parameters)
        try:
            yield
        finally:
            self.restore(parameters)

    def state_dict(self):
        """``{"decay", "num_updates", "shadow_params", "collected_params"}`` (copies)."""
        def copy(ts):
            return None if ts is None else [_make(B.xp.array(t.data, copy=True), False, None)
                                            for t in ts]
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow_params": copy(self.shadow_params),
                "collected_params": copy(self.collected_params)}

    def load_state_dict(self, state_dict):
        """Restore the averages saved by ``state_dict()`` (shapes must match)."""
        shadows = state_dict["shadow_params"]
        if len(shadows) != len(self.shadow_params):
            raise ValueError(
                f"ExponentialMovingAverage.load_state_dict: {len(shadows)} averages in the "
                f"state dict, {len(self.shadow_params)} parameters here")

        def load(ts):
            out = []
            for i, (t, mine) in enumerate(zip(ts, self.shadow_params)):
                a = t.data if isinstance(t, Tensor) else t
                if tuple(a.shape) != tuple(mine.shape):
                    raise ValueError(
                        f"ExponentialMovingAverage.load_state_dict: average {i} has shape "
                        f"{tuple(a.shape)}, the parameter has shape {tuple(mine.shape)}")
                out.append(_make(B.xp.array(a, dtype=mine.dtype, copy=True), False, None))
            return out

        decay = state_dict["decay"]
        if not 0.0 <= decay <= 1.0:
            raise ValueError(
                f"ExponentialMovingAverage.load_state_dict: decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.num_updates = state_dict["num_updates"]
        self.shadow_params = load(shadows)
        collected = state_dict.get("collected_params")
        self.collected_params = None if collected is None else load(collected)
