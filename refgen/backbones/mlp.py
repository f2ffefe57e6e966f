"""Multilayer perceptron (MLP) backbone, and the activation-by-name lookup the backbones share.

The network, for hidden widths h_1..h_L, activation phi and optional conditioning c::

    a_0 = [x, c]                                   concatenation along the last axis
    a_l = drop(phi(norm_l(W_l a_{l-1} + b_l)))     l = 1..L (norm: LayerNorm or identity)
    a_l = a_{l-1} + drop(phi(norm_l(W_l a_{l-1} + b_l)))   instead, when ``residual`` and
                                                   h_l == h_{l-1} (l >= 2): a skip connection
                                                   between equal-width hidden layers
                                                   (He et al. 2016, "Deep residual learning")
    y   = W_out a_L + b_out

LayerNorm is Ba et al. (2016); dropout is Srivastava et al. (2014). Conditioning by
concatenation is the simplest of the conditioning schemes (Mirza & Osindero 2014, "Conditional
generative adversarial nets", feed y to both networks as an extra input); the first Linear
simply has ``in_features + cond_features`` inputs, the input x first, then c.

Parameter names (``layers.0.weight``, ``norms.0.weight``, ``out.weight``, ...) are those of
the PyTorch reference module written in tests/refgen/backbones/test_mlp_crosscheck.py, so a
converted torch ``state_dict`` loads as is.
"""
from autodiff import nn
from autodiff import cat, Tensor

__all__ = ["ACTIVATIONS", "make_activation", "MLP"]

# name -> constructor of the autodiff.nn module (PyTorch's defaults: LeakyReLU slope 0.01,
# ELU alpha 1, Softplus beta 1, exact-erf GELU).
ACTIVATIONS = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
}


def make_activation(name, negative_slope=None):
    """The activation module called ``name`` (one of ``ACTIVATIONS``).

    ``negative_slope`` sets LeakyReLU's slope (PyTorch's default 0.01 when None; DCGAN's
    discriminator uses 0.2); it is an error for any other activation.
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01 if negative_slope is None else negative_slope)
    if negative_slope is not None:
        raise ValueError(f"negative_slope applies to 'leaky_relu' only, not to {name!r}")
    return ACTIVATIONS[name]()


def _widths(hidden, depth):
    """Hidden widths as a tuple: an int repeated ``depth`` times, or a sequence as given."""
    if isinstance(hidden, int):
        if not isinstance(depth, int) or depth < 0:
            raise ValueError(f"MLP: depth must be a non-negative int, got {depth!r}")
        widths = (hidden,) * depth
    else:
        widths = tuple(hidden)
        if depth is not None and depth != len(widths):
            raise ValueError(f"MLP: depth={depth} disagrees with hidden={widths} "
                             f"({len(widths)} widths); pass depth=None with a sequence")
    if any(not isinstance(w, int) or w <= 0 for w in widths):
        raise ValueError(f"MLP: hidden widths must be positive ints, got {widths}")
    return widths


class MLP(nn.Module):
    """Fully connected network: x (*, in_features) [, c (*, cond_features)] -> (*, out_features).

    :param in_features: size of x's last axis.
    :param out_features: size of the output's last axis.
    :param hidden: width of every hidden layer (int, with ``depth``) or a sequence of widths.
    :param depth: number of hidden layers when ``hidden`` is an int (0: a single Linear).
        Pass ``depth=None`` with a sequence.
    :param activation: a name in ``ACTIVATIONS`` ('relu', 'silu', 'gelu', 'tanh',
        'leaky_relu', 'elu', 'softplus').
    :param residual: add skip connections a_l = a_{l-1} + f_l(a_{l-1}) between consecutive
        hidden layers of equal width (the first hidden layer never has one: its input is x).
    :param cond_features: size of an optional conditioning vector c, concatenated after x
        to form the first layer's input; 0 means unconditional (then c must be None).
    :param dropout: dropout probability after each hidden activation (0: no Dropout module).
    :param layer_norm: LayerNorm after each hidden Linear, before the activation.
    :param negative_slope: LeakyReLU slope when activation='leaky_relu'.
    :param generator: autodiff.Generator for the default (PyTorch) Linear initialisation.
    """

    def __init__(self, in_features, out_features, hidden=64, depth=2, activation="relu",
                 residual=False, cond_features=0, dropout=0.0, layer_norm=False,
                 negative_slope=None, generator=None):
        super().__init__()
        for what, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"MLP: {what} must be a positive int, got {value!r}")
        if not isinstance(cond_features, int) or cond_features < 0:
            raise ValueError(f"MLP: cond_features must be a non-negative int, got "
                             f"{cond_features!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout}")
        widths = _widths(hidden, depth)
        self.in_features, self.out_features = in_features, out_features
        self.cond_features = cond_features
        self.widths = widths
        self.residual = bool(residual)
        self.activation = activation
        fan_in = in_features + cond_features
        self.layers = nn.ModuleList()
        for w in widths:
            self.layers.append(nn.Linear(fan_in, w, generator=generator))
            fan_in = w
        self.norms = nn.ModuleList([nn.LayerNorm(w) for w in widths]) if layer_norm else None
        self.act = make_activation(activation, negative_slope)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.out = nn.Linear(fan_in, out_features, generator=generator)

    def _input(self, x, c):
        if not isinstance(x, Tensor):
            raise TypeError(f"MLP: x must be a Tensor, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"MLP(in_features={self.in_features}): x must be "
                             f"(*, {self.in_features}), got shape {tuple(x.shape)}")
        if self.cond_features == 0:
            if c is not None:
                raise ValueError("MLP: got a condition c but cond_features=0 "
                                 "(build the MLP with cond_features=c.shape[-1])")
            return x
        if c is None:
            raise ValueError(f"MLP(cond_features={self.cond_features}): the condition c "
                             f"(*, {self.cond_features}) is required")
        if not isinstance(c, Tensor):
            raise TypeError(f"MLP: c must be a Tensor, got {type(c).__name__}")
        if tuple(c.shape) != tuple(x.shape[:-1]) + (self.cond_features,):
            raise ValueError(f"MLP(cond_features={self.cond_features}): c must be "
                             f"{tuple(x.shape[:-1]) + (self.cond_features,)} to go with x of "
                             f"shape {tuple(x.shape)}, got shape {tuple(c.shape)}")
        return cat([x, c], dim=-1)

    def forward(self, x, c=None):
        """x (*, in_features), c (*, cond_features) or None -> (*, out_features)."""
        h = self._input(x, c)
        for i, layer in enumerate(self.layers):
            a = layer(h)
            if self.norms is not None:
                a = self.norms[i](a)
            a = self.act(a)
            if self.drop is not None:
                a = self.drop(a)
            skip = self.residual and i > 0 and self.widths[i] == self.widths[i - 1]
            h = h + a if skip else a
        return self.out(h)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"hidden={self.widths}, cond_features={self.cond_features}, "
                f"residual={self.residual}")
