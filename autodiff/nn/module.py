"""Module and Parameter: the containers every layer is built from (``torch.nn.Module``'s API).

A ``Module`` owns three ordered registries, filled by plain attribute assignment:

* ``_parameters``: ``Parameter`` objects (trainable leaves, ``requires_grad=True``);
* ``_buffers``: Tensors that are state but not trained (BatchNorm's running statistics),
  registered with ``register_buffer``; saved in ``state_dict`` unless non-persistent;
* ``_modules``: child modules.

Names are joined with dots through the tree, exactly as PyTorch names them
(``"layers.0.weight"``), so a PyTorch ``state_dict`` converted to arrays loads as is.
"""
from collections import OrderedDict, namedtuple

from .. import backend as B
from ..tensor import Tensor, no_grad, to_device

__all__ = ["Parameter", "Module", "num_parameters", "IncompatibleKeys"]


class Parameter(Tensor):
    """A Tensor that a Module registers as a trainable parameter when assigned to it.

    ``Parameter(data, requires_grad=True)``: shares ``data``'s array (like PyTorch).
    Operations on a Parameter give plain Tensors.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = B.xp.zeros((0,), dtype=B.get_default_dtype())
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _host_shape(value):
    return tuple(int(s) for s in value.shape)


def _as_array(value, key):
    """A state_dict value (Tensor, NumPy/CuPy array, torch tensor, scalar) as a backend array."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, by duck typing
        value = value.detach().cpu().numpy()
    try:
        arr = B.to_backend(value)
    except Exception as exc:  # a clear message instead of NumPy's
        raise TypeError(
            f"load_state_dict: value for {key!r} is a {type(value).__name__}, "
            f"not a Tensor or an array") from exc
    if arr.dtype.kind not in "biufc":  # a str or object would fail later, in the cast
        raise TypeError(
            f"load_state_dict: value for {key!r} has dtype {arr.dtype}, not a numeric array")
    return arr


def _addindent(text, n):
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign Parameters, buffers and child
    modules as attributes, and define ``forward``; calling the module calls ``forward``.
    """

    def __init__(self):
        # object.__setattr__ because our __setattr__ consults these registries.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # ------------------------------------------------------------------ forward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def _check_ready(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() is called "
                "(call super().__init__() first)")

    def register_parameter(self, name, param):
        """Add a Parameter (or None, a declared but absent parameter such as ``bias=False``)."""
        self._check_ready()
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign a {type(param).__name__} as parameter {name!r} "
                "(wrap it in nn.Parameter, or use register_buffer)")
        self._drop(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a non-trained Tensor (or None) saved in ``state_dict`` when ``persistent``."""
        self._check_ready()
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign a {type(tensor).__name__} as buffer {name!r} (a Tensor or None)")
        self._drop(name)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Add a child module (or None) under ``name``."""
        self._check_ready()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        self._drop(name)
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, name, kind):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a str, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{kind} name {name!r} must be non-empty and contain no '.'")

    def _drop(self, name):
        """Remove ``name`` from every registry and the instance dict (it is being rebound)."""
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                    f"{type(self).__name__} (a Parameter or None expected)")
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to child module {name!r} of "
                    f"{type(self).__name__} (a Module or None expected)")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to buffer {name!r} of "
                    f"{type(self).__name__} (a Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Called only when ordinary lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            reg = d.get(registry)
            if reg is not None and name in reg:
                return reg[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from child.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter), each shared Parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        """The descendant at dotted path ``target`` (``""`` is this module)."""
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules or mod._modules[part] is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} "
                                     f"(looking up {target!r})")
            mod = mod._modules[part]
        return mod

    def get_parameter(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r}")
        return mod._parameters[name]

    # ------------------------------------------------------------------ state
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Ordered dict: dotted name -> Tensor, parameters then persistent buffers per module.

        Values share memory with the module (detached unless ``keep_vars``), as PyTorch's.
        """
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _state_targets(self):
        """dotted name -> the Parameter or buffer Tensor that a state_dict entry fills."""
        targets = OrderedDict()
        for mod_prefix, mod in self.named_modules(remove_duplicate=False):
            dot = mod_prefix + ("." if mod_prefix else "")
            for name, p in mod._parameters.items():
                if p is not None:
                    targets[dot + name] = p
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent_buffers:
                    targets[dot + name] = b
        return targets

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values from ``state_dict`` (Tensors or arrays) into parameters and buffers.

        Values are cast to each target's dtype and copied in place, so Parameters keep their
        identity (an optimizer holding them still works). Mis-shaped keys are always an
        error; with ``strict`` missing and unexpected keys are too. One error lists them all.
        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(
                f"load_state_dict expects a dict of name -> Tensor/array, got "
                f"{type(state_dict).__name__}")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        arrays, mis_shaped = {}, []
        for key, target in targets.items():
            if key not in state_dict:
                continue
            arr = _as_array(state_dict[key], key)
            if _host_shape(arr) != tuple(target.shape):
                mis_shaped.append(f"{key}: checkpoint shape {_host_shape(arr)}, "
                                  f"model shape {tuple(target.shape)}")
            else:
                arrays[key] = arr
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if mis_shaped:
            problems.append("mis-shaped keys: " + "; ".join(mis_shaped))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        with no_grad():
            for key, arr in arrays.items():
                target = targets[key]
                target.copy_(B.xp.asarray(arr, dtype=target.dtype))
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode=True):
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) recursively."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's ``.grad`` (to None, or to zeros)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = Tensor(B.xp.zeros_like(p.data))

    def apply(self, fn):
        """Call ``fn`` on every submodule (children first) and then on this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self, trainable_only=False):
        """Number of scalar parameters (each shared Parameter counted once)."""
        return num_parameters(self, trainable_only)

    # ------------------------------------------------------------------ dtype / device
    def _convert(self, fn, floating_only):
        """Replace every parameter's and buffer's array by ``fn(array)``, keeping objects."""
        for m in self.modules():
            for reg in (m._parameters, m._buffers):
                for t in reg.values():
                    if t is None or (floating_only and t.data.dtype.kind not in "fc"):
                        continue
                    t.data = fn(t.data)
                    if t.grad is not None:
                        t.grad = Tensor(fn(t.grad.data))
        return self

    def to(self, dtype=None, device=None):
        """Convert floating parameters and buffers to ``dtype`` and/or move them to ``device``.

        ``module.to(autodiff.float64)``, ``module.to("cuda")`` or both. Parameters keep
        their identity (their arrays are replaced), as in PyTorch.
        """
        if isinstance(dtype, str) and dtype in ("cpu", "cuda", "gpu") or (
                isinstance(dtype, str) and dtype.startswith("cuda")):
            dtype, device = None, dtype
        if device is not None:
            self._convert(lambda a: to_device(Tensor(a), device).data, floating_only=False)
        if dtype is not None:
            dt = B.numpy.dtype(dtype)
            if dt.kind != "f":
                raise TypeError(f"Module.to: dtype must be floating, got {dt}")
            self._convert(lambda a: a.astype(dt, copy=False), floating_only=True)
        return self

    def double(self):
        return self.to(B.numpy.float64)

    def float(self):
        return self.to(B.numpy.float32)

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self):
        return self.to(device="cuda")

    # ------------------------------------------------------------------ repr
    def extra_repr(self):
        """The text inside this module's parentheses (its hyperparameters)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, child in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(child), 2))
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


def num_parameters(module, trainable_only=False):
    """Total number of scalar parameters of ``module`` (shared ones counted once)."""
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad or not trainable_only)
