"""Tensor, the recorded graph, and reverse-mode differentiation.

A ``Tensor`` holds an array of the active backend (``backend.xp``) and, when it was made
by a recorded operation, the ``Function`` node that made it. A node keeps its input
tensors; that is the whole graph.

Reverse mode (the chain rule, applied from the output back):

    dL/dx_i = sum over nodes f that consumed x_i of  (df/dx_i)^T  dL/df

Each primitive's ``backward`` is written with Tensor operations, not raw arrays. With
``create_graph=False`` those operations run with recording off (fast, first order);
with ``create_graph=True`` they are recorded too, so the gradient is itself a
differentiable function of the inputs and second derivatives (Hessian-vector
products, the WGAN-GP penalty) come from differentiating it again.

Broadcasting follows NumPy. A binary operation's backward returns gradients in the
broadcast shape, and the engine sums each one back to its input's shape in one place
(``_accumulate``), never inside the ops.

The graph is walked by an explicit stack (no recursion), so depth is limited only by memory.
"""
import os
import traceback
import weakref

from . import backend as B
from .tensor_methods import TensorMethods

__all__ = [
    "Tensor", "Function", "tensor", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "grad", "detect_anomaly", "is_anomaly_enabled",
]

_grad_enabled = True
_anomaly_enabled = False


# --------------------------------------------------------------------------- grad mode
class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    __slots__ = ("mode", "prev")

    def __init__(self, mode):
        global _grad_enabled
        self.prev = _grad_enabled
        self.mode = bool(mode)
        _grad_enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


class _GradModeContext:
    """Base of ``no_grad``/``enable_grad``: a context manager that is also a decorator."""

    mode = True

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self.mode

        def wrapper(*args, **kwargs):
            global _grad_enabled
            prev = _grad_enabled
            _grad_enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _grad_enabled = prev

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class no_grad(_GradModeContext):
    """Operations inside run without recording a graph (like ``torch.no_grad``)."""

    mode = False


class enable_grad(_GradModeContext):
    """Recording on inside, even within ``no_grad``."""

    mode = True


def is_grad_enabled():
    return _grad_enabled


# --------------------------------------------------------------------------- anomaly mode
class detect_anomaly:
    """While active, every recorded forward and every backward rule is checked for NaN/Inf.

    The first operation whose output (forward) or input gradient (backward) is not finite
    raises ``FloatingPointError`` naming the operation and, for backward, the line of user
    code where that operation was recorded. Slow: a debugging aid.
    """

    def __init__(self, enabled=True):
        self.enabled = enabled

    def __enter__(self):
        global _anomaly_enabled
        self.prev = _anomaly_enabled
        _anomaly_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        global _anomaly_enabled
        _anomaly_enabled = self.prev
        return False


def is_anomaly_enabled():
    return _anomaly_enabled


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame():
    """The innermost stack frame outside the autodiff package, as 'file:line in fn'."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "<unknown>"


def _all_finite(a):
    xp = B.xp
    return a.dtype.kind not in "fc" or bool(xp.isfinite(a).all())


# --------------------------------------------------------------------------- Function
class Function:
    """A primitive operation: ``forward`` on raw arrays, ``backward`` in Tensor operations.

    Subclasses implement

    * ``forward(self, *arrays, **params) -> array``: the value; may store on ``self``
      whatever the backward rule needs (non-differentiable data such as shapes or masks).
    * ``backward(self, grad_output) -> Tensor | tuple``: one gradient per tensor input
      (``None`` where there is none), in the broadcast shape of the output; written in
      differentiable Tensor operations so that it can itself be differentiated.

    ``self.inputs`` are the input Tensors; ``self.saved_output()`` returns the output
    Tensor for rules that reuse it (held by a weak reference, so no reference cycle).
    """

    __slots__ = ("inputs", "versions", "_out_ref", "trace", "__dict__")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the forward on the inputs' arrays and record the node when needed."""
        fn = cls()
        # Unrolled for one and two inputs: this is the hottest path of the engine.
        n = len(inputs)
        if n == 1:
            a = inputs[0]
            data = fn.forward(a.data, **params)
            record = _grad_enabled and a.requires_grad
        elif n == 2:
            a, b = inputs
            data = fn.forward(a.data, b.data, **params)
            record = _grad_enabled and (a.requires_grad or b.requires_grad)
        else:
            data = fn.forward(*[t.data for t in inputs], **params)
            record = _grad_enabled and any(t.requires_grad for t in inputs)
        if not record:
            return _make(data, False, None)
        fn.inputs = inputs
        fn.versions = [t._version for t in inputs]
        out = _make(data, True, fn)
        if _anomaly_enabled:
            fn.trace = _user_frame()
            if not _all_finite(data):
                raise FloatingPointError(
                    f"anomaly: forward of {cls.__name__} produced NaN or Inf "
                    f"(recorded at {fn.trace})")
        return out

    def saved_output(self):
        out = self._out_ref()
        if out is None:  # cannot happen while the engine walks through the output
            raise RuntimeError(f"{type(self).__name__}: saved output was freed")
        if out._version != 0:
            raise RuntimeError(
                f"{type(self).__name__}: its output was modified in place after the "
                f"forward, but the backward rule needs the original value")
        return out

    def forward(self, *arrays, **params):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad_output):  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} has no backward rule")


class SaveOutputFunction(Function):
    """A Function whose backward reuses its output (exp, tanh, sigmoid, sqrt, ...)."""

    @classmethod
    def apply(cls, *inputs, **params):
        out = super().apply(*inputs, **params)
        if out._node is not None:
            out._node._out_ref = weakref.ref(out)
        return out


# --------------------------------------------------------------------------- Tensor
def _make(data, requires_grad, node):
    t = object.__new__(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = requires_grad
    t._node = node
    t._version = 0
    return t


def _as_array(data, dtype=None):
    """Turn Python data, a host array or a backend array into a backend array.

    Python floats (and lists of them) take the default dtype; integers and booleans
    keep integer/boolean dtypes; existing arrays keep their dtype unless one is given.
    """
    xp = B.xp
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return xp.asarray(data, dtype=B.numpy.dtype(dtype) if not isinstance(dtype, str) else dtype)
    if isinstance(data, (xp.ndarray, B.numpy.ndarray, B.numpy.generic)):
        return xp.asarray(data)
    arr = B.numpy.asarray(data)
    if arr.dtype.kind == "f":
        arr = arr.astype(B.get_default_dtype(), copy=False)
    return xp.asarray(arr)


class Tensor(TensorMethods):
    """An n-dimensional array that can record the operations made with it.

    Attributes (PyTorch's names): ``data`` (the backend array), ``grad`` (a Tensor or
    None, filled by ``backward``), ``requires_grad``. The operators and maths methods
    (``+``, ``exp``, ``sum``, ``reshape``, ...) are in the mixin ``TensorMethods``
    (autodiff/tensor_methods.py). Mutating ``data`` directly bypasses
    the in-place checks, as in PyTorch; the in-place methods (``add_``, ``copy_``, ...)
    are checked.
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_version", "__weakref__")
    __array_ufunc__ = None  # NumPy scalars on the left defer to our reflected operators
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None
        self._version = 0

    # ---- basic properties
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def device(self):
        return "cuda" if B.name == "cupy" and not isinstance(self.data, B.numpy.ndarray) else "cpu"

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        body = repr(B.to_numpy(self.data)).replace("array(", "tensor(", 1)
        if self._node is not None:
            body = body[:-1] + f", grad_fn=<{type(self._node).__name__}>)"
        elif self.requires_grad:
            body = body[:-1] + ", requires_grad=True)"
        return body

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor of shape {tuple(self.shape)} is ambiguous")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __hash__(self):
        return id(self)

    # ---- conversion
    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, got shape {tuple(self.shape)}")
        return self.data.reshape(()).item()

    def numpy(self):
        """The values as a host NumPy array (a copy when the backend is CuPy)."""
        return B.to_numpy(self.data)

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same values, cut from the graph (shares the array, like PyTorch)."""
        return _make(self.data, False, None)

    def clone(self):
        from .ops import elementwise
        return elementwise.clone(self)

    def to(self, dtype=None, device=None):
        """Convert the dtype (``autodiff.float64``, ...) and/or move (``"cpu"``/``"cuda"``)."""
        out = self
        if device is not None:
            out = to_device(out, device)
        if dtype is not None and B.numpy.dtype(dtype) != out.dtype:
            from .ops import elementwise
            out = elementwise.astype(out, dtype)
        return out

    def type(self, dtype):
        return self.to(dtype=dtype)

    def float(self):
        return self.to(dtype=B.numpy.float32)

    def double(self):
        return self.to(dtype=B.numpy.float64)

    def long(self):
        return self.to(dtype=B.numpy.int64)

    def bool(self):
        return self.to(dtype=B.numpy.bool_)

    def cpu(self):
        """The tensor on the host (itself on the NumPy backend)."""
        return to_device(self, "cpu")

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad can only be turned off on a leaf; use detach()")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):  # gradients of non-leaves are returned by autodiff.grad instead
        raise NotImplementedError(
            "retain_grad is not supported; use autodiff.grad(output, [tensor]) for a non-leaf")

    # ---- differentiation
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` is the vector of the vector-Jacobian product; it may be omitted only
        when ``self`` has one element. ``retain_graph`` is accepted for PyTorch
        compatibility: the graph is always kept while referenced.
        """
        _run_backward([self], [gradient], inputs=inputs, create_graph=create_graph,
                      accumulate=True)

    # ---- in-place operations (checked by the version counter)
    def _bump(self):
        # In-place operations are not recorded in the graph. So that no gradient silently
        # ignores one, they are refused on any tensor that takes part in recording; under
        # no_grad (optimiser steps) they bump the version that backward rules check.
        if _grad_enabled and self.requires_grad:
            if self._node is None:
                raise RuntimeError(
                    "a leaf tensor that requires grad is used in an in-place operation; "
                    "wrap the update in autodiff.no_grad()")
            raise RuntimeError(
                f"in-place operation on a tensor computed by {type(self._node).__name__} "
                "while gradients are recorded: in-place operations are not differentiable "
                "here; use the out-of-place form (e.g. y = y * 3.0 instead of y.mul_(3.0))")
        self._version += 1

    def copy_(self, src):
        src = src.data if isinstance(src, Tensor) else src
        self._bump()
        self.data[...] = src
        return self

    def zero_(self):
        self._bump()
        self.data[...] = 0
        return self

    def fill_(self, value):
        self._bump()
        self.data[...] = value
        return self

    def add_(self, other, alpha=1):
        other = other.data if isinstance(other, Tensor) else other
        self._bump()
        if alpha != 1:
            other = other * alpha
        self.data += other
        return self

    def sub_(self, other, alpha=1):
        return self.add_(other, alpha=-alpha)

    def mul_(self, other):
        other = other.data if isinstance(other, Tensor) else other
        self._bump()
        self.data *= other
        return self

    def div_(self, other):
        other = other.data if isinstance(other, Tensor) else other
        self._bump()
        self.data /= other
        return self

    def clamp_(self, min=None, max=None):
        self._bump()
        B.xp.clip(self.data, min, max, out=self.data)
        return self

    def __setitem__(self, index, value):
        index = _index_data(index)
        value = value.data if isinstance(value, Tensor) else value
        self._bump()
        self.data[index] = value


def _index_data(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def tensor(data, dtype=None, requires_grad=False):
    """Make a leaf tensor from Python data or an array (``torch.tensor``'s signature).

    Python floats take the default dtype (``autodiff.set_default_dtype``).
    """
    if isinstance(data, Tensor):
        data = data.data
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def to_device(t, device):
    """Move a tensor to ``"cpu"`` (a NumPy array) or ``"cuda"``/``"gpu"`` (CuPy array).

    Moving to the GPU needs the CuPy backend. The result is a new leaf.
    """
    device = str(device)
    if device == "cpu":
        data = B.to_numpy(t.data)
    elif device.startswith("cuda") or device == "gpu":
        if B.name != "cupy":
            raise RuntimeError(
                f"cannot move to {device!r}: the active backend is {B.name!r}; "
                "use autodiff.set_backend('cupy') or REFGEN_BACKEND=cupy")
        data = B.xp.asarray(t.data)
    else:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    if data is t.data:
        return t
    # _make, not Tensor(): Tensor() passes data through xp.asarray, which on the CuPy
    # backend would copy a host array straight back to the device.
    return _make(data, t.requires_grad, None)


# --------------------------------------------------------------------------- the engine
def _toposort(roots):
    """Tensors reachable from ``roots`` through recorded nodes, inputs before users.

    Iterative depth-first post-order, so deep graphs never hit the recursion limit.
    """
    order = []
    visited = set()
    stack = [(r, False) for r in roots]
    push, pop, append, seen = stack.append, stack.pop, order.append, visited.add
    while stack:
        t, expanded = pop()
        if expanded:
            append(t)
            continue
        key = id(t)
        if key in visited:
            continue
        seen(key)
        push((t, True))
        node = t._node
        if node is not None:
            for p in node.inputs:
                if p.requires_grad and id(p) not in visited:
                    push((p, False))
    return order


def _sum_to_shape(g, shape):
    """Undo NumPy broadcasting: sum ``g`` down to ``shape`` (the one central place)."""
    from .ops.reduce import sum_to
    return sum_to(g, shape)


def _cast(g, dtype):
    from .ops.elementwise import astype
    return astype(g, dtype)


def _check_grad_finite(node, grads):
    for g in grads:
        if g is not None and not _all_finite(g.data):
            raise FloatingPointError(
                f"anomaly: backward of {type(node).__name__} produced NaN or Inf "
                f"(the op was recorded at {getattr(node, 'trace', '<unknown>')})")


def _run_backward(outputs, grad_outputs, inputs=None, create_graph=False, accumulate=False,
                  allow_unused=True):
    global _grad_enabled
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"outputs must be Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "the output was not computed from any tensor with requires_grad=True")
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; the output has "
                    f"shape {tuple(out.shape)}: pass gradient= (or grad_outputs=) of that shape")
            g = _make(B.xp.ones_like(out.data), False, None)
        else:
            g = g if isinstance(g, Tensor) else Tensor(g, dtype=out.dtype)
            if g.shape != out.shape:
                raise RuntimeError(
                    f"gradient has shape {tuple(g.shape)} but the output has shape "
                    f"{tuple(out.shape)}")
        seeds.append((out, g))

    order = _toposort([out for out, _ in seeds])
    targets = None
    if inputs is not None:
        targets = {id(t) for t in inputs}
        # Keep only tensors from which some target is reachable (inputs come first in order).
        relevant = set()
        for t in order:
            if id(t) in targets or (t._node is not None and any(
                    id(p) in relevant for p in t._node.inputs)):
                relevant.add(id(t))
    grads = {}
    for out, g in seeds:
        grads[id(out)] = grads[id(out)] + g if id(out) in grads else g
    results = {}

    prev_mode = _grad_enabled
    _grad_enabled = create_graph
    try:
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if targets is not None and id(t) in targets:
                results[id(t)] = g
            node = t._node
            if node is None:
                if accumulate and (targets is None or id(t) in targets):
                    if t.grad is not None:
                        t.grad = t.grad + g
                    elif create_graph:
                        t.grad = g
                    else:
                        # A copy: the upstream array may be a read-only broadcast view, or
                        # shared with another leaf, and optimisers update .grad in place.
                        t.grad = _make(g.data.copy(), False, None)
                continue
            if targets is not None and id(t) not in relevant:
                continue
            inputs_ = node.inputs
            for p, v in zip(inputs_, node.versions):
                if p._version != v:
                    raise RuntimeError(
                        f"one of the tensors needed by {type(node).__name__}'s backward was "
                        f"modified by an in-place operation (version {v} -> {p._version})")
            in_grads = node.backward(g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if _anomaly_enabled:
                _check_grad_finite(node, in_grads)
            for p, gp in zip(inputs_, in_grads):
                if gp is None or not p.requires_grad:
                    continue
                pdata = p.data
                if gp.data.shape != pdata.shape:
                    gp = _sum_to_shape(gp, pdata.shape)
                if gp.data.dtype != pdata.dtype:  # mixed-precision graph: as PyTorch, cast back
                    gp = _cast(gp, pdata.dtype)
                key = id(p)
                prev = grads.get(key)
                grads[key] = gp if prev is None else prev + gp
    finally:
        _grad_enabled = prev_mode
    if inputs is None:
        return None
    out = []
    for t in inputs:
        r = results.get(id(t))
        if r is None and not allow_unused:
            raise RuntimeError(
                "one of the differentiated tensors was not used in the graph; "
                "pass allow_unused=True to get None for it")
        out.append(r)
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=True):
    """Gradients of ``outputs`` with respect to ``inputs`` (``torch.autograd.grad``).

    Returns a list with one Tensor per input (``None`` for an input the outputs do not
    depend on). With ``create_graph=True`` the returned gradients are recorded and can be
    differentiated again. ``.grad`` attributes are not touched.
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    single_in = isinstance(inputs, Tensor)
    inputs = [inputs] if single_in else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs[{i}] is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(f"inputs[{i}] does not require grad")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    return _run_backward(outputs, list(grad_outputs), inputs=inputs,
                         create_graph=create_graph, accumulate=False, allow_unused=allow_unused)


