"""Gradient clipping: by the global norm of all gradients, or elementwise by value."""
from .. import backend as B
from ..tensor import Tensor, _make

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _vector_norm(a, norm_type):
    """``||a||_p`` of the flattened array (p = inf: max |a|; p = 0: number of non-zeros)."""
    xp = B.xp
    a = a.reshape(-1)
    if a.size == 0:
        return xp.zeros((), dtype=a.dtype)
    if norm_type == 2.0:
        return xp.sqrt(xp.dot(a, a)) if a.dtype.kind == "f" else xp.linalg.norm(a)
    return xp.linalg.norm(a, ord=norm_type).astype(a.dtype)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False):
    """The p-norm of the p-norms of ``tensors``, i.e. of all their elements in one vector.

    Returns a 0-d Tensor on the active backend (0 when there is nothing to measure).
    """
    xp = B.xp
    norm_type = float(norm_type)
    arrays = [t.data if isinstance(t, Tensor) else t for t in tensors]
    if not arrays:
        return _make(xp.zeros((), dtype=B.get_default_dtype()), False, None)
    norms = xp.stack([_vector_norm(a, norm_type) for a in arrays])
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):  # host sync only when asked
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{float(total)}, so they cannot be clipped; set error_if_nonfinite=False to "
            "scale by the non-finite norm anyway")
    return _make(total, False, None)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    r"""Scale all gradients together so that their joint norm is at most ``max_norm``.

    PyTorch's rule (``torch.nn.utils.clip_grad_norm_``)::

        total = || (||g_1||_p, ..., ||g_k||_p) ||_p        (the p-norm of all elements)
        coef  = min(max_norm / (total + 1e-6), 1)
        g_i  <- coef * g_i                                   for every gradient, in place

    The 1e-6 keeps the division finite at total = 0; the scaling is applied even when
    coef = 1 (no branch, hence no device-to-host sync on CuPy).

    :param parameters: a Tensor or an iterable of Tensors; those without ``.grad`` are skipped.
    :param max_norm: the largest allowed norm. :param norm_type: p (``float('inf')`` for max).
    :param error_if_nonfinite: raise when the total norm is NaN or infinite.
    :return: the total norm before clipping, a 0-d Tensor.
    """
    xp = B.xp
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if not grads:
        return total
    coef = xp.minimum(max_norm / (total.data + 1e-6), 1.0)
    for g in grads:
        g.data *= coef.astype(g.dtype, copy=False)
        g._version += 1
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        B.xp.clip(g.data, -clip_value, clip_value, out=g.data)
        g._version += 1
