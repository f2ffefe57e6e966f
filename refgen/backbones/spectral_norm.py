"""Spectral normalisation of a layer's weight (Miyato et al. 2018), as ``torch.nn.utils.spectral_norm``.

The weight W (reshaped to a matrix W_mat of shape (h, w), h = size of dimension ``dim``, the
output dimension) is replaced in every forward by

    W_SN = W / sigma(W),   sigma(W) = u^T W_mat v                   (Miyato et al. 2018, Eq. 8)

where u (h,) and v (w,) estimate the leading singular vectors by power iteration
(Algorithm 1), run ``n_power_iterations`` times before each forward in training mode only:

    v <- W_mat^T u / max(||W_mat^T u||, eps),   u <- W_mat v / max(||W_mat v||, eps)

u and v are constants for the gradient (no graph through the iteration); sigma and W_SN are
differentiable in W, so d sigma / d W = u v^T, as PyTorch computes it. In evaluation mode the
stored u, v are used as they are. The layer's Lipschitz constant is then about 1, which is
what discriminators (Miyato et al.) and energy networks want.

Layout, identical to PyTorch's so a torch ``state_dict`` loads 1:1: the parameter ``weight``
is removed and re-registered as ``weight_orig`` (a Parameter); ``weight_u`` (h,) and
``weight_v`` (w,) are persistent buffers; ``weight`` becomes a plain attribute recomputed
before each forward. ``dim`` defaults to 0, and to 1 for ConvTranspose layers, whose weight
is (in, out, kh, kw).

Update order. PyTorch has two versions. refgen follows the older ``torch.nn.utils.spectral_norm``
(Algorithm 1's order: v from u, then u from v, then sigma = u^T W v). The newer
``torch.nn.utils.parametrizations.spectral_norm`` updates u from v first, then v from u, and
stores its state under other names: ``parametrizations.weight.original`` (W),
``parametrizations.weight.0._u`` and ``parametrizations.weight.0._v``.
``from_parametrized_spectral_norm`` renames such a checkpoint to refgen's names (and
``to_parametrized_spectral_norm`` back). In evaluation mode (no power iteration) both give the
same W / sigma from the same u, v; one training step later the two versions' u, v differ
(the same iteration entered from the other end), as they would between the two PyTorch versions.

The engine has no forward pre-hooks, so the module's ``forward`` is wrapped by an instance
attribute (a ``_SpectralNormForward``) that recomputes the weight(s) and then calls the
original ``forward``; ``copy.deepcopy`` rebinds it to the copy.
"""
from collections import OrderedDict
from collections.abc import Mapping

from autodiff import backend as B
from autodiff import nn, no_grad, Tensor

__all__ = ["spectral_norm", "remove_spectral_norm", "SpectralNorm",
           "from_parametrized_spectral_norm", "to_parametrized_spectral_norm"]


def _normalize(a, eps):
    """a / max(||a||_2, eps) on a raw 1-D array (``F.normalize(dim=0)``)."""
    return a / B.xp.maximum(B.xp.sqrt((a * a).sum()), eps)


class SpectralNorm:
    """The per-parameter state: name, dim, n_power_iterations, eps; computes W / sigma."""

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if not isinstance(n_power_iterations, int) or n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be a positive int, got "
                             f"{n_power_iterations!r}")
        self.name, self.n_power_iterations, self.dim, self.eps = (
            name, n_power_iterations, dim, eps)

    def weight_matrix(self, weight):
        """W with dimension ``dim`` moved first, reshaped to (h, w)."""
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def power_iteration(self, module):
        """Update the buffers u, v in place by n_power_iterations steps (no graph)."""
        with no_grad():
            w_mat = self.weight_matrix(getattr(module, self.name + "_orig")).data
            u = getattr(module, self.name + "_u")
            v = getattr(module, self.name + "_v")
            u_arr, v_arr = u.data, v.data
            for _ in range(self.n_power_iterations):
                v_arr = _normalize(w_mat.T @ u_arr, self.eps)
                u_arr = _normalize(w_mat @ v_arr, self.eps)
            # in place, as PyTorch's normalize(out=...): the buffers keep their identity
            u.data[...] = u_arr
            v.data[...] = v_arr

    def compute_weight(self, module, do_power_iteration):
        """W / sigma with sigma = u^T W_mat v (differentiable in W, constant in u and v)."""
        if do_power_iteration:
            self.power_iteration(module)
        weight = getattr(module, self.name + "_orig")
        # copies: a later in-place power iteration must not change this graph's constants
        u = Tensor(getattr(module, self.name + "_u").data.copy())
        v = Tensor(getattr(module, self.name + "_v").data.copy())
        sigma = (u * (self.weight_matrix(weight) @ v)).sum()
        return weight / sigma

    def sigma(self, module):
        """The current estimate u^T W_mat v as a Python float (no power iteration)."""
        with no_grad():
            w = getattr(module, self.name + "_orig")
            u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
            return float((u * (self.weight_matrix(w) @ v)).sum().item())


class _SpectralNormForward:
    """Replaces ``module.forward``: recompute each normalised weight, then the original forward."""

    def __init__(self, module, inner):
        self.module, self.inner = module, inner

    def __call__(self, *args, **kwargs):
        m = self.module
        for fn in m._spectral_norms.values():
            object.__setattr__(m, fn.name, fn.compute_weight(m, do_power_iteration=m.training))
        return self.inner(*args, **kwargs)


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None,
                  generator=None):
    """Apply spectral normalisation to parameter ``name`` of ``module``; returns the module.

    :param module: an autodiff.nn.Module holding the Parameter ``name`` (Linear, Conv2d, ...).
    :param n_power_iterations: power-iteration steps per training-mode forward (>= 1).
    :param eps: floor of the norms in the normalisation of u and v.
    :param dim: the output dimension of the weight (default 0; 1 for ConvTranspose2d).
    :param generator: autodiff.Generator drawing the initial u ~ N(0, I), v ~ N(0, I)
        (then normalised); None uses the global generator.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"spectral_norm: expected an autodiff.nn.Module, got "
                        f"{type(module).__name__}")
    norms = module.__dict__.get("_spectral_norms")
    if norms is not None and name in norms:
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter "
                           f"{name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r} "
                         f"(parameters: {', '.join(k for k, p in module._parameters.items() if p is not None) or 'none'})")
    if dim is None:
        dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    if not -weight.ndim <= dim < weight.ndim:
        raise ValueError(f"spectral_norm: dim={dim} is out of range for {name!r} of shape "
                         f"{tuple(weight.shape)}")
    dim = dim % weight.ndim
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    gen = generator if generator is not None else B.default_generator()
    h, w = fn.weight_matrix(weight).shape
    u = Tensor(_normalize(gen.normal((h,), weight.dtype), eps))
    v = Tensor(_normalize(gen.normal((w,), weight.dtype), eps))
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    object.__setattr__(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    if norms is None:
        object.__setattr__(module, "_spectral_norms", OrderedDict())
        object.__setattr__(module, "forward", _SpectralNormForward(module, module.forward))
    module._spectral_norms[name] = fn
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo ``spectral_norm``: ``name`` becomes a Parameter holding W / sigma (no iteration)."""
    norms = module.__dict__.get("_spectral_norms")
    if not norms or name not in norms:
        raise ValueError(f"spectral_norm of {name!r} not found in {type(module).__name__}")
    fn = norms.pop(name)
    with no_grad():
        weight = fn.compute_weight(module, do_power_iteration=False)
    for suffix in ("_orig", "_u", "_v"):
        delattr(module, name + suffix)
    module.__dict__.pop(name, None)
    module.register_parameter(name, nn.Parameter(weight.detach().data.copy()))
    if not norms:
        wrapper = module.__dict__.pop("forward")
        del module.__dict__["_spectral_norms"]
        assert isinstance(wrapper, _SpectralNormForward)
    return module


# ---------------------------------------------------------------------------- checkpoint names
_PARAMETRIZED = (("parametrizations.{n}.original", "{n}_orig"),
                 ("parametrizations.{n}.0._u", "{n}_u"),
                 ("parametrizations.{n}.0._v", "{n}_v"))


def _rename_suffixes(state_dict, pairs, name, where):
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"{where}: expected a state_dict (mapping), got {type(state_dict).__name__}")
    out = OrderedDict()
    for key, value in state_dict.items():
        for old, new in pairs:
            old, new = old.format(n=name), new.format(n=name)
            if key == old or key.endswith("." + old):
                key = key[:len(key) - len(old)] + new
                break
        if key in out:
            raise ValueError(f"{where}: two entries map to {key!r}")
        out[key] = value
    return out


def from_parametrized_spectral_norm(state_dict, name="weight"):
    """A state_dict of ``torch.nn.utils.parametrizations.spectral_norm`` modules under
    refgen's (and the older PyTorch API's) names: ``X.parametrizations.weight.original`` ->
    ``X.weight_orig``, ``X.parametrizations.weight.0._u`` -> ``X.weight_u``, ``..._v`` ->
    ``X.weight_v``; other entries unchanged. Values are passed through as they are."""
    return _rename_suffixes(state_dict, _PARAMETRIZED, name, "from_parametrized_spectral_norm")


def to_parametrized_spectral_norm(state_dict, name="weight"):
    """The inverse of ``from_parametrized_spectral_norm``: refgen's names -> the newer API's."""
    return _rename_suffixes(state_dict, [(b, a) for a, b in _PARAMETRIZED], name,
                            "to_parametrized_spectral_norm")
