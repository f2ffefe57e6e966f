"""MADE's degrees, masks and masked network, written once (Germain et al. 2015).

Shared by the autoregressive family's ``made`` and by the flows' MAF and IAF.

A MADE is an MLP whose weights are multiplied by binary masks so that output d depends only
on the inputs that come before d in an ordering. Each unit carries a *degree*:

* inputs: ``m^0(d)`` is the position of input d in the ordering, a permutation of 1..D
  (natural ordering: ``m^0(d) = d + 1`` for 0-based d);
* hidden unit k of layer l: ``m^l(k)``, an integer in ``[min_k' m^{l-1}(k'), D - 1]``
  (Germain et al. 2015, sec. 4: drawn uniformly; or spread evenly, ``hidden_degrees=
  "sequential"``); a unit of degree m may see inputs of degree <= m only;
* outputs: the degree of the input they predict.

The masks follow (Germain et al. 2015, eq. 12 and 13)::

    hidden:  M^{W^l}[k, k'] = 1[ m^l(k) >= m^{l-1}(k') ]            (out, in)
    output:  M^V[d, k]      = 1[ m^0(d) >  m^L(k) ]                  (D, H_L)

so that every path from input j to output d passes only through degrees in
``[m^0(j), m^0(d) - 1]``: output d depends on input j only when ``m^0(j) < m^0(d)``, the
autoregressive property. The first output in the ordering depends on no input (its
distribution comes from the biases alone).

Connectivity-agnostic training (sec. 4): the network keeps ``num_masks`` mask sets, drawn
from ``seed + k`` for k = 0..num_masks-1, and training moves through them
(``MADE.set_mask(k)``); at test time an ensemble averages the probabilities of several masks.
Order-agnostic training (``ordering="random"``) also draws a new input ordering per mask.

API for the families (shapes)::

    net = MADE(num_inputs=D, hidden_sizes=(H1, ..., HL), outputs_per_dim=P,
               cond_dim=0, ordering="natural", num_masks=1, seed=0)
    out = net(x, cond=None)    # x (N, D), cond (N, cond_dim) -> out (N, P, D)
    # out[:, p, d] depends only on the inputs j with net.input_degrees[j] < net.input_degrees[d]
    net.order                  # (D,) the dimensions in generation order (sampling)
    net.set_mask(k)            # switch to mask set k (0 <= k < num_masks)

The condition ``cond`` (a class embedding, a context vector) is connected to every layer
without a mask, so every output may depend on it.

Direct connections (``direct=True``; Germain et al.'s code, ``direct_input_connect="Output"``):
a masked linear map from the inputs straight to the outputs is added to the output layer's
pre-activation,

    out = (M^V * V) h^L + (M^A * A) x + c,      M^A[d, j] = 1[ m^0(d) > m^0(j) ]   (D, D)

the strictly lower-triangular (in the ordering) mask of a fully visible sigmoid belief net,
so the property above still holds. The hidden layer then only has to model what a logistic
regression on x_{<d} misses; with one hidden layer every early output (few hidden units of
low degree) gains the most.
"""
import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff import nn

from ...backbones.mlp import make_activation

__all__ = ["ORDERINGS", "input_degrees", "hidden_degrees", "create_degrees", "create_masks",
           "MaskedLinear", "MADE"]

ORDERINGS = ("natural", "reversed", "random")
HIDDEN_DEGREES = ("random", "sequential")


def _xp_int(values):
    return B.xp.asarray(values, dtype=B.xp.int64)


def input_degrees(num_inputs, ordering="natural", generator=None):
    """Degrees m^0 (D,) of the inputs: input d is the m^0(d)-th to be generated (1-based).

    ``ordering``: ``"natural"`` (1, 2, ..., D), ``"reversed"`` (D, ..., 1), ``"random"`` (a
    random permutation from ``generator``), or a sequence: the dimensions in generation
    order (a permutation of 0..D-1), so ``ordering[i]`` gets degree i + 1.
    """
    D = int(num_inputs)
    if D < 1:
        raise ValueError(f"input_degrees: num_inputs must be >= 1, got {num_inputs!r}")
    if isinstance(ordering, str):
        if ordering == "natural":
            return B.xp.arange(1, D + 1, dtype=B.xp.int64)
        if ordering == "reversed":
            return B.xp.arange(D, 0, -1, dtype=B.xp.int64)
        if ordering == "random":
            gen = generator if generator is not None else autodiff.default_generator()
            order = gen.permutation(D)
        else:
            raise ValueError(f"input_degrees: unknown ordering {ordering!r}; known: "
                             f"{', '.join(ORDERINGS)} or a permutation of 0..D-1")
    else:
        order = _xp_int(ordering).reshape(-1)
        if order.shape[0] != D or not bool((B.xp.sort(order) == B.xp.arange(D)).all()):
            raise ValueError(f"input_degrees: ordering must be a permutation of 0..{D - 1}, "
                             f"got {list(int(v) for v in order)}")
    degrees = B.xp.empty(D, dtype=B.xp.int64)
    degrees[order] = B.xp.arange(1, D + 1, dtype=B.xp.int64)
    return degrees


def hidden_degrees(size, previous, num_inputs, method="random", generator=None):
    """Degrees (size,) of one hidden layer given the previous layer's degrees ``previous``.

    Each degree lies in ``[low, D - 1]`` with ``low = min(previous)`` (so every unit has at
    least one incoming connection), drawn uniformly (``"random"``, Germain et al. 2015) or
    cycling through the range (``"sequential"``, so every degree is equally represented).
    With D = 1 there is nothing for a hidden unit to see: all degrees are 0 (no connection).
    """
    size, D = int(size), int(num_inputs)
    if size < 1:
        raise ValueError(f"hidden_degrees: a hidden layer needs size >= 1, got {size!r}")
    high = D - 1
    low = min(int(previous.min()), high)
    if high < 1:
        return B.xp.zeros(size, dtype=B.xp.int64)
    if method == "random":
        gen = generator if generator is not None else autodiff.default_generator()
        return gen.integers(low, high + 1, (size,))
    if method == "sequential":
        return B.xp.arange(size, dtype=B.xp.int64) % (high - low + 1) + low
    raise ValueError(f"hidden_degrees: unknown method {method!r}; known: "
                     f"{', '.join(HIDDEN_DEGREES)}")


def create_degrees(num_inputs, hidden_sizes, ordering="natural", hidden_method="random",
                   generator=None):
    """[m^0 (D,), m^1 (H_1,), ..., m^L (H_L,)]: the degrees of the inputs and hidden layers."""
    degrees = [input_degrees(num_inputs, ordering, generator)]
    for size in hidden_sizes:
        degrees.append(hidden_degrees(size, degrees[-1], num_inputs, hidden_method, generator))
    return degrees


def create_masks(degrees):
    """The masks (eq. 12-13) from ``create_degrees``' list: one (out, in) array per layer.

    Hidden layers: ``M[k, k'] = 1[m^l(k) >= m^{l-1}(k')]``; the output layer:
    ``M[d, k] = 1[m^0(d) > m^L(k)]`` (strict: output d never sees input d). With no hidden
    layer the output mask is ``M[d, j] = 1[m^0(d) > m^0(j)]``.
    """
    masks = []
    for previous, current in zip(degrees[:-1], degrees[1:]):
        masks.append(current[:, None] >= previous[None, :])
    masks.append(degrees[0][:, None] > degrees[-1][None, :])
    return masks


class MaskedLinear(nn.Linear):
    """y = x (M * W)^T + b: a Linear layer whose weight is multiplied by a fixed 0/1 mask.

    Parameters: ``weight`` (out_features, in_features), ``bias`` (out_features,), PyTorch's
    Linear init. Buffer: ``mask`` (out_features, in_features), all ones until ``set_mask``;
    non-persistent, since MADE rebuilds its masks from the config and the seed.
    Shapes: (*, in_features) -> (*, out_features).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, generator=None):
        super().__init__(in_features, out_features, bias=bias, dtype=dtype, generator=generator)
        self.register_buffer("mask", autodiff.ones(self.out_features, self.in_features,
                                                   dtype=self.weight.dtype), persistent=False)

    def set_mask(self, mask):
        """Install a 0/1 mask of shape (out_features, in_features) (array or Tensor)."""
        mask = mask.data if isinstance(mask, autodiff.Tensor) else B.xp.asarray(mask)
        if tuple(mask.shape) != (self.out_features, self.in_features):
            raise ValueError(f"MaskedLinear.set_mask: mask has shape {tuple(mask.shape)}, "
                             f"expected (out_features, in_features) = "
                             f"({self.out_features}, {self.in_features})")
        self.mask = autodiff.Tensor(mask.astype(self.weight.dtype))

    def forward(self, input):
        if input.shape[-1] != self.in_features:
            raise ValueError(f"MaskedLinear(in_features={self.in_features}): input has shape "
                             f"{tuple(input.shape)}")
        return F.linear(input, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """The masked autoencoder for distribution estimation (Germain et al. 2015).

    :param num_inputs: D, the number of dimensions.
    :param hidden_sizes: widths of the hidden layers (may be empty: a masked linear map).
    :param outputs_per_dim: P, outputs per dimension (1 for Bernoulli logits, 2 for a shift
        and a log-scale, 3K for a K-component mixture, ...).
    :param cond_dim: size of an optional condition c connected, unmasked, to every layer.
    :param ordering: ``"natural"``, ``"reversed"``, ``"random"`` or a permutation of 0..D-1
        (``input_degrees``). ``"random"`` draws a fresh ordering for each mask set.
    :param hidden_degrees: ``"random"`` (Germain et al.) or ``"sequential"``.
    :param num_masks: number of mask sets for connectivity-agnostic training.
    :param seed: mask set k is drawn from ``autodiff.Generator(seed + k)``.
    :param activation: hidden nonlinearity (``refgen.backbones.make_activation``).
    :param direct: add the masked direct connection from the inputs to the outputs
        (``direct_layer``, no bias; see the module docstring).

    ``forward(x, cond=None)``: x (N, D) -> (N, P, D); ``out[:, :, d]`` are the parameters of
    p(x_d | x_{<d}) in the current mask set's ordering.
    """

    def __init__(self, num_inputs, hidden_sizes, outputs_per_dim=1, cond_dim=0,
                 ordering="natural", hidden_degrees="random", num_masks=1, seed=0,
                 activation="relu", direct=False, dtype=None):
        super().__init__()
        self.num_inputs = int(num_inputs)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.outputs_per_dim = int(outputs_per_dim)
        self.cond_dim = int(cond_dim or 0)
        self.ordering = ordering if isinstance(ordering, str) else [int(v) for v in ordering]
        self.hidden_degrees = hidden_degrees
        self.num_masks = int(num_masks)
        self.seed = int(seed)
        for name, value, low in (("num_inputs", self.num_inputs, 1),
                                 ("outputs_per_dim", self.outputs_per_dim, 1),
                                 ("num_masks", self.num_masks, 1), ("cond_dim", self.cond_dim, 0)):
            if value < low:
                raise ValueError(f"MADE: {name} must be >= {low}, got {value!r}")
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"MADE: hidden_sizes must be positive, got {hidden_sizes!r}")
        if self.hidden_degrees not in HIDDEN_DEGREES:
            raise ValueError(f"MADE: unknown hidden_degrees {hidden_degrees!r}; known: "
                             f"{', '.join(HIDDEN_DEGREES)}")
        if isinstance(self.ordering, str) and self.ordering not in ORDERINGS:
            raise ValueError(f"MADE: unknown ordering {ordering!r}; known: {', '.join(ORDERINGS)}"
                             " or a permutation of 0..D-1")
        D, P = self.num_inputs, self.outputs_per_dim
        sizes = (D,) + self.hidden_sizes
        self.layers = nn.ModuleList(
            [MaskedLinear(a, b, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:])]
            + [MaskedLinear(sizes[-1], P * D, dtype=dtype)])
        # the condition enters every layer's pre-activation, unmasked (no bias: the masked
        # layer has one)
        self.cond_layers = nn.ModuleList(
            [nn.Linear(self.cond_dim, b, bias=False, dtype=dtype)
             for b in self.hidden_sizes + (P * D,)]) if self.cond_dim else None
        self.direct_layer = (MaskedLinear(D, P * D, bias=False, dtype=dtype)
                             if direct else None)
        self.activation = make_activation(activation)
        self.mask_index = None
        self.set_mask(0)

    def mask_degrees(self, k):
        """The degrees [m^0, ..., m^L] of mask set k (a pure function of the config and k)."""
        if not 0 <= int(k) < self.num_masks:
            raise ValueError(f"MADE: mask index must be in 0..{self.num_masks - 1}, got {k!r}")
        gen = autodiff.Generator(self.seed + int(k))
        return create_degrees(self.num_inputs, self.hidden_sizes, self.ordering,
                              self.hidden_degrees, gen)

    def set_mask(self, k):
        """Install mask set k: every layer's mask (eq. 12-13), the output mask tiled over the
        P heads (output row p * D + d predicts dimension d)."""
        degrees = self.mask_degrees(k)
        masks = create_masks(degrees)
        masks[-1] = B.xp.tile(masks[-1], (self.outputs_per_dim, 1))
        for layer, mask in zip(self.layers, masks):
            layer.set_mask(mask)
        if self.direct_layer is not None:
            direct = degrees[0][:, None] > degrees[0][None, :]          # (D, D), strict
            self.direct_layer.set_mask(B.xp.tile(direct, (self.outputs_per_dim, 1)))
        self.input_degrees = degrees[0]
        self.mask_index = int(k)
        return self

    @property
    def order(self):
        """(D,) the dimensions in generation order: ``order[i]`` has degree i + 1."""
        return B.xp.argsort(self.input_degrees)

    def forward(self, x, cond=None):
        D = self.num_inputs
        if x.ndim != 2 or x.shape[1] != D:
            raise ValueError(f"MADE.forward: x must have shape (N, {D}), got {tuple(x.shape)}")
        if self.cond_dim and cond is None:
            raise ValueError(f"MADE.forward: this MADE takes a condition of size "
                             f"{self.cond_dim}, but cond is None")
        if cond is not None:
            if not self.cond_dim:
                raise ValueError("MADE.forward: cond given, but the MADE has cond_dim = 0")
            if cond.ndim != 2 or cond.shape != (x.shape[0], self.cond_dim):
                raise ValueError(f"MADE.forward: cond must have shape ({x.shape[0]}, "
                                 f"{self.cond_dim}), got {tuple(cond.shape)}")
        h = x
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if cond is not None:
                h = h + self.cond_layers[i](cond)
            if i < last:
                h = self.activation(h)
        if self.direct_layer is not None:
            h = h + self.direct_layer(x)
        return h.reshape(x.shape[0], self.outputs_per_dim, D)

    def extra_repr(self):
        return (f"num_inputs={self.num_inputs}, hidden_sizes={self.hidden_sizes}, "
                f"outputs_per_dim={self.outputs_per_dim}, cond_dim={self.cond_dim}, "
                f"ordering={self.ordering!r}, num_masks={self.num_masks}, "
                f"direct={self.direct_layer is not None}")
