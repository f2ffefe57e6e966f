"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), PyTorch's exact rules."""
from .. import backend as B
from ..tensor import _make
from .optimizer import Optimizer, bump_version, check_hyperparameters

__all__ = ["Adam", "AdamW"]


def _lerp_(start, end, weight, scratch):
    """``start <- start + weight * (end - start)`` in place, as ``torch.lerp_`` rounds it.

    PyTorch evaluates from the nearer end for accuracy: ``start + w (end - start)`` when
    |w| < 0.5, else ``end - (end - start)(1 - w)``. ``scratch`` is a work array.
    """
    xp = B.xp
    xp.subtract(end, start, out=scratch)
    if abs(weight) < 0.5:
        scratch *= weight
        start += scratch
    else:
        scratch *= 1 - weight
        xp.subtract(end, scratch, out=start)
    return start


class Adam(Optimizer):
    r"""Adam with PyTorch's exact update rule (``torch.optim.Adam``).

    Kingma & Ba (2015), Algorithm 1, with PyTorch's placement of eps. For each parameter
    p with gradient g, at step t = 1, 2, ...::

        g     <- -g                                     if maximize
        p     <- p (1 - lr * weight_decay)              AdamW (decoupled decay), or
        g     <- g + weight_decay * p                   Adam  (L2 penalty in the gradient)
        m_t    = beta1 m_{t-1} + (1 - beta1) g          (computed as a lerp)
        v_t    = beta2 v_{t-1} + (1 - beta2) g^2
        vmax_t = max(vmax_{t-1}, v_t)                   amsgrad only (Reddi et al. 2018)
        denom  = sqrt(v_t or vmax_t) / sqrt(1 - beta2^t) + eps
        p     <- p - lr / (1 - beta1^t) * m_t / denom

    :param params: iterable of Tensors or of parameter-group dicts.
    :param lr: learning rate. :param betas: (beta1, beta2) moment decay rates.
    :param eps: added to the bias-corrected root of the second moment.
    :param weight_decay: L2 coefficient (Adam) or decoupled decay rate (AdamW).
    :param amsgrad: normalise by the running maximum of v_t.
    :param maximize: ascend instead of descend.
    State per parameter: ``"step"`` (int), ``"exp_avg"``, ``"exp_avg_sq"`` and, with
    amsgrad, ``"max_exp_avg_sq"`` (Tensors on the active backend).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        name = type(self).__name__
        check_hyperparameters(name, lr=lr, eps=eps, weight_decay=weight_decay)
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_hyperparameters(name, **{f"betas[{i}]": b for i, b in enumerate(betas)})
        if not 0.0 <= lr:
            raise ValueError(f"{name}: invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"{name}: invalid epsilon value: {eps}")
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"{name}: invalid beta parameter at index {i}: {beta} (need 0 <= beta < 1)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"{name}: invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _init_state(self, p, amsgrad):
        xp = B.xp
        state = {"step": 0,
                 "exp_avg": _make(xp.zeros_like(p.data), False, None),
                 "exp_avg_sq": _make(xp.zeros_like(p.data), False, None)}
        if amsgrad:
            state["max_exp_avg_sq"] = _make(xp.zeros_like(p.data), False, None)
        self.state[p] = state
        return state

    def _update_group(self, group):
        xp = B.xp
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        amsgrad, maximize = group["amsgrad"], group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state.get(p) or self._init_state(p, amsgrad)
            if amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on later
                state["max_exp_avg_sq"] = _make(xp.zeros_like(p.data), False, None)
            # slot 1 for g: slot 0 is the work array of the moment updates below
            g = self._penalised_grad(p, 0 if decoupled else weight_decay, maximize, slot=1)
            tmp = self._scratch(g, 0)
            if decoupled and weight_decay != 0:
                p.data *= 1 - lr * weight_decay
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"].data, state["exp_avg_sq"].data
            _lerp_(m, g, 1 - beta1, tmp)
            v *= beta2
            xp.multiply(g, 1 - beta2, out=tmp)   # v += (1 - beta2) * g * g (addcmul's order)
            tmp *= g
            v += tmp
            bias_correction1 = 1 - beta1 ** t
            bias_correction2_sqrt = (1 - beta2 ** t) ** 0.5
            step_size = lr / bias_correction1
            if amsgrad:
                vmax = state["max_exp_avg_sq"].data
                xp.maximum(vmax, v, out=vmax)
                v = vmax
            # update = -step_size * m / (sqrt(v) / sqrt(bc2) + eps), in the work array
            # (out= everywhere: a ufunc on a 0-d array would otherwise return a scalar).
            update = xp.sqrt(v, out=tmp)
            update /= bias_correction2_sqrt
            update += eps
            xp.divide(m, update, out=update)
            update *= -step_size
            p.data += update
            bump_version(p)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019; ``torch.optim.AdamW``).

    Before the Adam step, ``p <- p (1 - lr * weight_decay)``; the gradient itself is not
    changed. Default ``weight_decay=1e-2`` as in PyTorch. See :class:`Adam` for the rule.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)
