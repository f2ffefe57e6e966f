"""The optimiser base class: parameter groups, per-parameter state, checkpoints.

Mirrors ``torch.optim.Optimizer``:

* ``param_groups`` is a list of dicts; each holds ``"params"`` (a list of Tensors) and
  that group's hyperparameters (``lr``, ``weight_decay``, ...), filled from ``defaults``
  where the group does not set them.
* ``state`` maps a parameter Tensor to a dict of its running quantities (momentum
  buffers, moment estimates, step counts). Array-valued state is held as Tensors whose
  arrays live on the active backend (``backend.xp``).
* ``state_dict()`` / ``load_state_dict()`` use PyTorch's layout: parameters are named by
  their position across the groups (0, 1, 2, ... in group order), so a checkpoint made
  from one optimiser resumes in a fresh one built over the same parameters in the same
  order, and the trajectory continues identically.

Parameters are updated in place under ``no_grad`` and each update bumps the parameter's
version counter, so a graph recorded before ``step()`` and backpropagated after it raises
the engine's in-place error instead of silently mixing old and new values.
"""
from .. import backend as B
from ..tensor import Tensor, _make, enable_grad, no_grad

__all__ = ["Optimizer", "required"]


class _Required:
    """Marker for a hyperparameter that has no default and must be given."""

    def __repr__(self):
        return "<required parameter>"


required = _Required()


def check_hyperparameters(owner, **values):
    """Each value must be a real number (not a str, None or bool): a TypeError naming
    ``owner``, the argument and the value, before the range checks (PyTorch's messages)
    compare it and fail with ``'<=' not supported between 'float' and 'str'``."""
    import numbers
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{owner}: {name} must be a real number, got {value!r} "
                            f"({type(value).__name__})")


def bump_version(p):
    """Record that ``p.data`` was changed in place (the engine's in-place check reads it)."""
    p._version += 1


def _copy_value(value, like=None):
    """Deep copy of a state value; Tensors/arrays are copied onto the active backend.

    Floating arrays take the dtype of ``like`` (the parameter) when given, as PyTorch
    casts optimiser state to the parameter's dtype on load.
    """
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, (B.xp.ndarray, B.numpy.ndarray)):
        dtype = None
        if like is not None and value.dtype.kind == "f" and like.dtype.kind == "f":
            dtype = like.dtype
        return _make(B.xp.array(value, dtype=dtype, copy=True), False, None)
    if isinstance(value, dict):
        return {k: _copy_value(v, like) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_value(v, like) for v in value)
    return value


class Optimizer:
    """Base class of all optimisers (``torch.optim.Optimizer``'s interface).

    :param params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts
        (parameter groups) each with a ``"params"`` entry and optional per-group options.
    :param defaults: the hyperparameters a group takes when it does not set them.

    Subclasses implement ``step(closure=None)``.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params argument given to the optimizer should be "
                "an iterable of Tensors or dicts, but got a single Tensor "
                "(wrap it in a list)")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (e.g. a different ``lr``).

        Options the group leaves out take the optimiser's defaults. A parameter may
        belong to one group only.
        """
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{type(self).__name__}.add_param_group: a parameter group must be a dict, "
                f"got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(
                f"{type(self).__name__}.add_param_group: the group has no 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"{type(self).__name__}: optimizer parameters need to be organized in "
                "ordered collections, but the ordering of tensors in sets changes between "
                "runs; use a list instead")
        params = list(params)
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
                names.append(p[0])
                p = p[1]
            tensors.append(p)
        if names and len(names) != len(tensors):
            raise ValueError(
                f"{type(self).__name__}: all parameters of a group must be named or none")
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__} can only optimize Tensors, but parameter {i} "
                    f"of the group is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(
                    f"{type(self).__name__} can't optimize a non-leaf Tensor (parameter {i} "
                    f"of the group, shape {tuple(p.shape)}); optimize the leaf it came from")
        group["params"] = tensors
        if names:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(
                    f"{type(self).__name__}: parameter group didn't specify a value of "
                    f"required optimization parameter {key}")
            group.setdefault(key, default)
        ids = [id(p) for p in tensors]
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"{type(self).__name__}: a parameter group contains the same parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(i in seen for i in ids):
            raise ValueError(
                f"{type(self).__name__}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ------------------------------------------------------------------ gradients
    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient: drop it (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g._node is not None or g.requires_grad:  # a create_graph gradient
                        g = _make(g.data, False, None)
                        p.grad = g
                    g.data[...] = 0
                    bump_version(g)

    def _scratch(self, like, slot=0):
        """A reusable work array shaped and typed like ``like`` (contents undefined).

        Updates write their temporaries into these through ``out=`` instead of allocating
        a fresh array per operation: one buffer per slot and dtype, sized to the largest
        parameter seen, shared by all parameters (so the memory cost is that of one
        parameter, not of a copy of the model).
        """
        xp = B.xp
        pool = self.__dict__.setdefault("_scratch_pool", {})
        key = (slot, like.dtype.str)
        buf = pool.get(key)
        if buf is None or buf.size < like.size or not isinstance(buf, xp.ndarray):
            buf = xp.empty(like.size, dtype=like.dtype)
            pool[key] = buf
        return buf[:like.size].reshape(like.shape)

    def _run_closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.
        The update rule is the subclass's ``_update_group(group)``, run without recording."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group):  # pragma: no cover - interface
        raise NotImplementedError

    def _penalised_grad(self, p, weight_decay, maximize, slot):
        """The gradient the rule follows, g = (-1 if maximize) * p.grad + weight_decay * p
        (the L2 penalty's gradient), as a raw array: ``p.grad`` itself when nothing changes
        it, else scratch ``slot`` (the other of slots 0 and 1 holds weight_decay * p)."""
        xp = B.xp
        g = p.grad.data
        if maximize:
            g = xp.negative(g, out=self._scratch(g, slot))
        if weight_decay != 0:
            wd_p = xp.multiply(p.data, weight_decay, out=self._scratch(g, 1 - slot))
            g = xp.add(g, wd_p, out=self._scratch(g, slot))
        return g

    # ------------------------------------------------------------------ checkpoints
    def _param_index(self):
        """{id(param): position across all groups}, PyTorch's naming in state dicts."""
        index, k = {}, 0
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), k)
                k += 1
        return index

    def state_dict(self):
        """The optimiser's state as ``{"state": {index: {...}}, "param_groups": [...]}``.

        PyTorch's layout: parameters are replaced by their position across the groups.
        Unlike PyTorch, the state arrays are COPIES, so a saved state dict does not change
        when training continues (PyTorch returns references to the live buffers).
        """
        index = self._param_index()
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = _copy_value(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore the state saved by ``state_dict()`` (of an optimiser of the same type
        built over parameters of the same shapes, in the same order and grouping).

        Floating state arrays are copied onto the active backend in each parameter's dtype.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups' "
                f"entries, got {type(state_dict).__name__}"
                + (f" with keys {sorted(map(str, state_dict))}" if isinstance(state_dict, dict)
                   else ""))
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the loaded state dict has {len(saved_groups)} "
                f"parameter groups, the optimizer has {len(self.param_groups)}")
        for i, (g, sg) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} has {len(sg['params'])} "
                    f"parameters in the state dict but {len(g['params'])} in the optimizer")
        id_map = {}
        for g, sg in zip(self.param_groups, saved_groups):
            for p, k in zip(g["params"], sg["params"]):
                id_map[int(k)] = p
        state = {}
        for k, v in state_dict["state"].items():
            p = id_map.get(int(k))
            if p is None:
                raise ValueError(
                    f"{name}.load_state_dict: state entry {k!r} names no parameter")
            for key, val in v.items():
                shape = getattr(val, "shape", None)
                if shape is not None and len(shape) > 0 and tuple(shape) != tuple(p.shape):
                    raise ValueError(
                        f"{name}.load_state_dict: state {key!r} of parameter {k} has shape "
                        f"{tuple(shape)}, but the parameter has shape {tuple(p.shape)}")
            state[p] = _copy_value(v, like=p)
        new_groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            ng = {k: _copy_value(v) for k, v in sg.items() if k not in ("params", "param_names")}
            if isinstance(ng.get("betas"), list):  # a JSON round trip turns tuples into lists
                ng["betas"] = tuple(ng["betas"])
            ng["params"] = g["params"]
            if "param_names" in g:
                ng["param_names"] = g["param_names"]
            new_groups.append(ng)
        self.param_groups = new_groups
        self.state = state
