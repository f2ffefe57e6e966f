"""Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay."""
from .. import backend as B
from ..tensor import _make
from .optimizer import Optimizer, bump_version, check_hyperparameters

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""SGD with PyTorch's exact update rule (``torch.optim.SGD``).

    For each parameter p with gradient g, at step t (b is the momentum buffer)::

        g   <- -g                              if maximize
        g   <- g + weight_decay * p            (L2 penalty added to the gradient)
        b_1  = g                               (first step: the buffer starts at g)
        b_t  = momentum * b_{t-1} + (1 - dampening) * g
        d    = g + momentum * b_t              if nesterov  (Sutskever et al. 2013)
               b_t                             otherwise    (d = g when momentum = 0)
        p   <- p - lr * d

    :param params: iterable of Tensors or of parameter-group dicts.
    :param lr: learning rate (PyTorch's default 1e-3).
    :param momentum: momentum factor; 0 turns momentum off (no buffer is kept).
    :param dampening: dampening of the momentum's gradient term.
    :param weight_decay: L2 penalty coefficient.
    :param nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
    :param maximize: ascend the objective instead of descending it.
    State per parameter: ``"momentum_buffer"`` (a Tensor, when momentum != 0).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        check_hyperparameters("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if not lr >= 0.0:   # also NaN
            raise ValueError(f"SGD: invalid learning rate: {lr}")
        if not momentum >= 0.0:
            raise ValueError(f"SGD: invalid momentum value: {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"SGD: invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"SGD: Nesterov momentum requires a momentum > 0 and zero dampening, got "
                f"momentum={momentum}, dampening={dampening}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _update_group(self, group):
        xp = B.xp
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], \
            group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._penalised_grad(p, weight_decay, maximize, slot=0)
            tmp = self._scratch(g, 0)
            if momentum != 0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = _make(xp.array(g, copy=True), False, None)
                    state["momentum_buffer"] = buf
                else:
                    b = buf.data
                    b *= momentum
                    if dampening != 0:
                        scaled = xp.multiply(g, 1 - dampening, out=self._scratch(g, 1))
                        b += scaled
                    else:
                        b += g
                if nesterov:  # g + momentum * buf
                    nest = xp.multiply(buf.data, momentum, out=self._scratch(g, 1))
                    g = xp.add(g, nest, out=tmp)
                else:
                    g = buf.data
            # g is the .grad, the momentum buffer or slot 0, never slot 1: safe to write there.
            p.data -= xp.multiply(g, lr, out=self._scratch(g, 1))
            bump_version(p)
