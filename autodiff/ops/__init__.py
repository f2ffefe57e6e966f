"""Every primitive of the engine: a forward on raw arrays and a backward in differentiable ops.

How to add a primitive (one file here, two test entries)
=========================================================

1. In the ops module it belongs to (``elementwise``, ``reduce``, ``shape``, ``linalg``,
   ``conv``, ``pool``, ``resample``, ``activations``, ``normalization``, ``special``), write
   a ``Function`` subclass:

   * ``forward(self, *arrays, **params) -> array`` on the backend's raw arrays (``B.xp``);
     keep on ``self`` only what the backward needs (shapes, masks). Subclass
     ``SaveOutputFunction`` and call ``self.saved_output()`` if the rule reuses the output.
   * ``backward(self, g) -> Tensor | tuple``: one gradient per Tensor input (None where there
     is none), in the broadcast shape of the output (the engine sums broadcasting back in one
     place), written with Tensor operations (``ew.exp(x)``, ``g * y``) -- never raw arrays --
     so that ``create_graph=True`` can differentiate it again. Where the rule needs fused
     array code for speed, make that code a primitive of its own with its own backward
     (``GeluGrad``, ``TanhBackward``).
   * The docstring states the function and its derivative (and any subgradient chosen).

2. Below it, the public function: check the arguments (clear errors naming the argument),
   then ``MyOp.apply(tensor_inputs..., param=...)``. A binary broadcasting op is one line
   with ``elementwise._binary``; a unary one with ``elementwise._unary``. Add its name to the
   module's ``__all__``: for ``elementwise``, ``reduce`` and ``shape`` that makes it
   ``autodiff.<name>`` too (this file collects them); the user-facing functions of
   ``activations``, ``normalization``, ``conv``, ``pool`` and ``resample`` are reached through
   ``autodiff.functional``. If it is also a Tensor method, add the one-line delegation to
   ``TensorMethods`` (autodiff/tensor_methods.py).

3. Tests: a gradcheck entry (first and second order against central differences, in the
   table of tests/autodiff/ops/test_<module>.py, e.g. ``UNARY``/``BINARY``) and a
   cross-check entry (forward, VJP and HVP against PyTorch, ``CASES`` in
   tests/autodiff/ops/test_ops_crosscheck.py).
"""
from . import (activations, conv, elementwise, linalg, normalization, pool, reduce,  # noqa: F401
               resample, shape, special)
from ._allocator import tune_malloc

tune_malloc()   # a step's freed arrays stay in the heap for the next step (see _allocator)
from .elementwise import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .linalg import det, einsum, logdet, matmul, slogdet  # noqa: F401

# The engine's top-level functions (autodiff.exp, autodiff.sum, autodiff.cat, ...): every
# elementwise, reduction and shape op, and the linear algebra PyTorch has at its top level
# (the rest of torch.linalg's names are in autodiff.linalg).
__all__ = [*elementwise.__all__, *reduce.__all__, *shape.__all__,
           "matmul", "einsum", "det", "slogdet", "logdet"]
