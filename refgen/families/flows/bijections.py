"""Bijections with their log-determinants: the layers normalizing flows are built from.

A bijection f maps data-side x to base-side z (the normalizing direction, as in nflows)::

    forward(x, cond=None) -> (z, log|det dz/dx|)      inverse(z, cond=None) -> (x, log|det dx/dz|)

with the log-determinants per example, shape (N,), so that for a flow z = f(x)

    log p_theta(x) = log p_Z(f(x)) + log|det df/dx (x)|        (change of variables)

and the two log-determinants of a round trip sum to zero. ``cond`` is an optional context
vector c (N, cond_features) (a one-hot class label), passed to every conditioner.
``output_shape(shape)`` gives the shape of one example after ``forward`` (only ``Squeeze``
and ``MultiScale`` change it).

Here: ``Compose`` and ``Inverse``; ``Permutation``; ``AffineCoupling`` and
``AdditiveCoupling`` (Dinh et al. 2015 "NICE", 2017 "RealNVP") with checkerboard and channel
masks; ``ActNorm`` and ``InvConv1x1`` (plain and LU) (Kingma & Dhariwal 2018, "Glow");
``Squeeze`` and ``MultiScale`` (RealNVP Sec. 3.6); ``BatchNormFlow`` (RealNVP Sec. 3.7);
``LogitPreprocess`` (RealNVP Sec. 4.1). The spline coupling is in ``splines``, MAF/IAF in
``autoregressive``.

Shapes: vector data (N, D); image data (N, C, H, W). "Features" below means D for vectors
and C (channels) for images; per-feature parameters are shared over the pixels, so their
log-determinant counts H * W times.
"""
import math

import numpy  # host-side: scipy's LU decomposition of a given weight (InvConv1x1.from_weight)

import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff import nn

from ...backbones.coupling import CouplingMLP, CouplingResNet

__all__ = ["Bijection", "Compose", "Inverse", "Permutation", "checkerboard_mask",
           "channel_mask", "Conditioner", "AffineCoupling", "AdditiveCoupling", "ActNorm",
           "InvConv1x1", "Squeeze", "MultiScale", "BatchNormFlow", "LogitPreprocess",
           "sum_per_example"]


def sum_per_example(t):
    """(N, ...) -> (N,): the sum over each example's entries."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def _spatial(shape):
    """Pixels per feature: H * W for an image (C, H, W), 1 for a vector (D,)."""
    return math.prod(shape[1:]) if len(shape) > 1 else 1


def _feature_view(shape):
    """Broadcast shape of a per-feature parameter: (1, D) or (1, C, 1, 1)."""
    return (1, shape[0]) + (1,) * (len(shape) - 1)


def _check_input(x, shape, who):
    if not isinstance(x, autodiff.Tensor):
        raise TypeError(f"{who}: expected a Tensor, got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{who}: expected examples of shape {tuple(shape)}, got a batch of "
                         f"shape {tuple(x.shape)}")


class Bijection(nn.Module):
    """Base class: ``forward``/``inverse`` return (output, logabsdet (N,))."""

    def forward(self, x, cond=None):
        raise NotImplementedError

    def inverse(self, z, cond=None):
        raise NotImplementedError

    def output_shape(self, shape):
        return tuple(shape)


class Compose(Bijection):
    """f = f_K o ... o f_1: log-determinants add (the chain rule, det(AB) = det A det B)."""

    def __init__(self, bijections):
        super().__init__()
        self.layers = nn.ModuleList(list(bijections))

    def forward(self, x, cond=None):
        total = 0.0
        for layer in self.layers:
            x, ld = layer(x, cond)
            total = ld + total
        return x, _as_logdet(total, x)

    def inverse(self, z, cond=None):
        total = 0.0
        for layer in reversed(list(self.layers)):
            z, ld = layer.inverse(z, cond)
            total = ld + total
        return z, _as_logdet(total, z)

    def output_shape(self, shape):
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return tuple(shape)

    def forward_steps(self, x, cond=None):
        """The intermediate states [x, f_1(x), f_2(f_1(x)), ...] (for figures)."""
        states = [x]
        for layer in self.layers:
            x, _ = layer(x, cond)
            states.append(x)
        return states


def _as_logdet(total, x):
    if isinstance(total, autodiff.Tensor):
        return total
    return autodiff.zeros(x.shape[0], dtype=x.dtype) + total


class Inverse(Bijection):
    """The inverse of a bijection as a bijection (IAF is the inverse of MAF's transform)."""

    def __init__(self, bijection):
        super().__init__()
        self.base = bijection

    def forward(self, x, cond=None):
        return self.base.inverse(x, cond)

    def inverse(self, z, cond=None):
        return self.base(z, cond)


# --------------------------------------------------------------------------- permutations
class Permutation(Bijection):
    """z[:, i] = x[:, perm[i]] along the feature axis (dim 1); |det| = 1, log-det 0.

    ``Permutation.reverse(D)`` reverses the order (RealNVP/MAF between layers);
    ``Permutation.random(D, seed)`` draws a fixed permutation.
    """

    def __init__(self, perm):
        super().__init__()
        perm = numpy.asarray(perm, dtype=numpy.int64)  # host-side: validate the permutation
        if perm.ndim != 1 or sorted(perm.tolist()) != list(range(perm.size)):
            raise ValueError(f"Permutation: perm must be a permutation of 0..D-1, got "
                             f"{perm.tolist()}")
        self.register_buffer("perm", autodiff.Tensor(B.xp.asarray(perm)))
        self.register_buffer("inv_perm", autodiff.Tensor(B.xp.asarray(numpy.argsort(perm))))

    @classmethod
    def reverse(cls, num_features):
        return cls(numpy.arange(num_features)[::-1].copy())

    @classmethod
    def random(cls, num_features, seed=0):
        return cls(numpy.random.default_rng(seed).permutation(num_features))

    def _apply(self, x, index):
        if x.shape[1] != index.shape[0]:
            raise ValueError(f"Permutation of {index.shape[0]} features got a batch of shape "
                             f"{tuple(x.shape)}")
        return autodiff.index_select(x, 1, index.data)

    def forward(self, x, cond=None):
        return self._apply(x, self.perm), autodiff.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z, cond=None):
        return self._apply(z, self.inv_perm), autodiff.zeros(z.shape[0], dtype=z.dtype)


# --------------------------------------------------------------------------- coupling
def checkerboard_mask(shape, parity=0):
    """b (shape) with b = 1 where (sum of the spatial indices + parity) is even: for an image
    (C, H, W) a checkerboard over H, W shared by the channels (RealNVP Fig. 3, left); for a
    vector (D,) every other dimension."""
    xp = B.xp
    if len(shape) == 1:
        b = (xp.arange(shape[0]) + parity) % 2 == 0
    else:
        _, h, w = shape
        ij = xp.arange(h)[:, None] + xp.arange(w)[None, :]
        b = xp.broadcast_to(((ij + parity) % 2 == 0)[None], tuple(shape))
    return b.astype(autodiff.get_default_dtype())


def channel_mask(shape, parity=0):
    """b (shape) with b = 1 on the first half of the features (parity 0) or the second half
    (parity 1): the channel-wise mask of RealNVP (Fig. 3, right) and Glow's split."""
    xp = B.xp
    c = shape[0]
    first = xp.arange(c) < c // 2
    b = first if parity == 0 else ~first
    b = b.reshape((c,) + (1,) * (len(shape) - 1))
    return xp.broadcast_to(b, tuple(shape)).astype(autodiff.get_default_dtype())


class Conditioner(nn.Module):
    """NN(b * x [, c]) -> (N, P, *shape): P parameters for each entry of x, zero at init.

    Vector data: ``CouplingMLP`` on the D masked inputs (plus c), P * D outputs. Images:
    ``CouplingResNet`` on C masked channels plus the mask itself as a channel (the network
    then knows which pixels it sees) plus c broadcast over the pixels, P * C output channels.
    """

    def __init__(self, shape, params_per_entry, hidden=128, depth=2, blocks=2,
                 cond_features=0, activation="relu"):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.params_per_entry = int(params_per_entry)
        self.cond_features = int(cond_features)
        p = self.params_per_entry
        if len(self.shape) == 1:
            d = self.shape[0]
            self.net = CouplingMLP(d, p * d, hidden=hidden, depth=depth, activation=activation,
                                   cond_features=self.cond_features)
        elif len(self.shape) == 3:
            c = self.shape[0]
            self.net = CouplingResNet(c + 1 + self.cond_features, p * c,
                                      hidden_channels=hidden, blocks=blocks,
                                      num_groups=math.gcd(8, hidden), activation=activation)
        else:
            raise ValueError(f"Conditioner: shape must be (D,) or (C, H, W), got {shape}")

    def forward(self, x_masked, mask, cond=None):
        n = x_masked.shape[0]
        if self.cond_features and cond is None:
            raise ValueError(f"this flow is conditional ({self.cond_features} condition "
                             "features): pass cond")
        if len(self.shape) == 1:
            out = self.net(x_masked, cond if self.cond_features else None)
        else:
            _, h, w = self.shape
            parts = [x_masked, autodiff.Tensor(B.xp.broadcast_to(mask[:1][None],
                                                                 (n, 1, h, w)).copy())]
            if self.cond_features:
                parts.append(cond.reshape(n, self.cond_features, 1, 1)
                             * autodiff.ones(1, 1, h, w, dtype=x_masked.dtype))
            out = self.net(autodiff.cat(parts, dim=1))
        return out.reshape((n, self.params_per_entry) + self.shape)


class AffineCoupling(Bijection):
    """Affine coupling (RealNVP, Dinh et al. 2017, Eq. 9) with a binary mask b:

        (s_raw, t) = NN(b * x [, c]),   s = (1 - b) * bound * tanh(s_raw / bound),
        z = b * x + (1 - b) * (x * exp(s) + t),          log|det dz/dx| = sum(s).

    The soft clamp bound * tanh(. / bound) keeps every log-scale in (-bound, bound) (a
    bounded, stable scale: exp(s) can neither overflow nor vanish) and is the identity near 0;
    the conditioner's last layer starts at zero, so the layer starts as the identity.
    Inverse: x = b * z + (1 - b) * (z - t) * exp(-s), with NN evaluated on b * z = b * x.
    """

    params_per_entry = 2

    def __init__(self, shape, mask, hidden=128, depth=2, blocks=2, cond_features=0,
                 scale_bound=3.0, activation="relu"):
        super().__init__()
        self.shape = tuple(shape)
        mask = B.xp.asarray(mask, dtype=autodiff.get_default_dtype())
        if tuple(mask.shape) != self.shape:
            raise ValueError(f"{type(self).__name__}: mask of shape {tuple(mask.shape)} for "
                             f"examples of shape {self.shape}")
        self.register_buffer("mask", autodiff.Tensor(mask))
        self.scale_bound = float(scale_bound)
        if not self.scale_bound > 0:
            raise ValueError(f"AffineCoupling: scale_bound must be positive, got {scale_bound}")
        self.conditioner = Conditioner(self.shape, self.params_per_entry, hidden=hidden,
                                       depth=depth, blocks=blocks, cond_features=cond_features,
                                       activation=activation)

    def _s_t(self, x_id, cond):
        b = self.mask
        params = self.conditioner(x_id * b, b.data, cond)
        s_raw, t = params[:, 0], params[:, 1]
        s = autodiff.tanh(s_raw / self.scale_bound) * (self.scale_bound * (1 - b))
        return s, t * (1 - b)

    def forward(self, x, cond=None):
        _check_input(x, self.shape, type(self).__name__)
        s, t = self._s_t(x, cond)
        return x * autodiff.exp(s) + t, sum_per_example(s)

    def inverse(self, z, cond=None):
        _check_input(z, self.shape, type(self).__name__)
        s, t = self._s_t(z, cond)
        return (z - t) * autodiff.exp(-s), -sum_per_example(s)


class AdditiveCoupling(AffineCoupling):
    """Additive coupling (NICE, Dinh et al. 2015, Eq. 5): z = x + (1 - b) * t(b * x [, c]);
    volume preserving, log|det| = 0."""

    params_per_entry = 1

    def _t(self, x_id, cond):
        b = self.mask
        return self.conditioner(x_id * b, b.data, cond)[:, 0] * (1 - b)

    def forward(self, x, cond=None):
        _check_input(x, self.shape, type(self).__name__)
        return x + self._t(x, cond), autodiff.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z, cond=None):
        _check_input(z, self.shape, type(self).__name__)
        return z - self._t(z, cond), autodiff.zeros(z.shape[0], dtype=z.dtype)


# --------------------------------------------------------------------------- Glow's layers
class ActNorm(Bijection):
    """Per-feature affine map with data-dependent initialisation (Glow, Sec. 3.1):

        z = (x + bias) * exp(log_scale),      log|det| = (H * W) * sum(log_scale).

    On the first forward pass in training mode, bias = -mean and log_scale = -log(std) of
    that batch per feature, so the first batch comes out with zero mean and unit variance;
    the ``initialized`` buffer records it (a reloaded model is not re-initialised).
    """

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        view = _feature_view(self.shape)
        self.bias = nn.Parameter(autodiff.zeros(*view))
        self.log_scale = nn.Parameter(autodiff.zeros(*view))
        self.register_buffer("initialized", autodiff.zeros(1))

    def _init_from(self, x):
        xp = B.xp
        axes = (0,) + tuple(range(2, x.ndim))
        mean = x.data.mean(axis=axes, keepdims=True)
        std = x.data.std(axis=axes, keepdims=True)
        self.bias.data[...] = -mean
        self.log_scale.data[...] = -xp.log(std + 1e-6)
        self.initialized.data[...] = 1

    def forward(self, x, cond=None):
        _check_input(x, self.shape, "ActNorm")
        if self.training and not bool(self.initialized.data[0]):
            self._init_from(x)
        ld = self.log_scale.sum() * _spatial(self.shape)
        return (x + self.bias) * autodiff.exp(self.log_scale), \
            ld + autodiff.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z, cond=None):
        _check_input(z, self.shape, "ActNorm")
        ld = -self.log_scale.sum() * _spatial(self.shape)
        return z * autodiff.exp(-self.log_scale) - self.bias, \
            ld + autodiff.zeros(z.shape[0], dtype=z.dtype)


class InvConv1x1(Bijection):
    """Invertible 1x1 convolution (Glow, Sec. 3.2): z[:, :, i, j] = W x[:, :, i, j] with a
    C x C matrix W at every pixel, log|det| = H * W * log|det W| (for vectors, z = W x).

    Plain: W is the parameter (log|det W| by ``slogdet``, O(C^3)). LU (Glow Eq. 10):
    W = P L (U + diag(sign(s) exp(log|s|))) with P a fixed permutation, L unit lower
    triangular, U strictly upper triangular: log|det W| = sum(log|s|), O(C). Initialised as
    a random rotation (QR of a Gaussian matrix), as in Glow.
    """

    def __init__(self, shape, lu=False, seed=0):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.lu = bool(lu)
        c = self.shape[0]
        rng = numpy.random.default_rng(seed)  # host-side: the initial rotation
        q, _ = numpy.linalg.qr(rng.normal(size=(c, c)))
        self._set_weight(q)

    def _set_weight(self, w):
        """Parameters for the weight w (C, C): as is, or its LU decomposition."""
        import scipy.linalg  # host-side: the LU decomposition of a given matrix
        w = numpy.asarray(B.to_numpy(w), dtype=numpy.float64)
        dtype = autodiff.get_default_dtype()
        c = self.shape[0]
        if w.shape != (c, c):
            raise ValueError(f"InvConv1x1: weight must be ({c}, {c}), got {w.shape}")
        for name in ("weight", "lower", "upper", "log_s"):
            if name in self._parameters:
                del self._parameters[name]
        if not self.lu:
            self.weight = nn.Parameter(autodiff.Tensor(B.xp.asarray(w, dtype=dtype)))
            return
        p, lower, u = scipy.linalg.lu(w)
        s = numpy.diag(u)
        if numpy.any(s == 0):
            raise ValueError("InvConv1x1: the weight is singular (a zero pivot in its LU)")
        t = lambda a: autodiff.Tensor(B.xp.asarray(a, dtype=dtype))  # noqa: E731
        self.register_buffer("p", t(p))
        self.register_buffer("sign_s", t(numpy.sign(s)))
        self.register_buffer("lower_mask", t(numpy.tril(numpy.ones((c, c)), -1)))
        self.lower = nn.Parameter(t(numpy.tril(lower, -1)))
        self.upper = nn.Parameter(t(numpy.triu(u, 1)))
        self.log_s = nn.Parameter(t(numpy.log(numpy.abs(s))))

    @classmethod
    def from_weight(cls, shape, weight, lu=False):
        """An InvConv1x1 whose matrix is ``weight`` (plain, or decomposed as P L U)."""
        layer = cls(shape, lu=lu)
        layer._set_weight(weight)
        return layer

    def matrix(self):
        """W (C, C) as a Tensor (composed from the factors in the LU form)."""
        if not self.lu:
            return self.weight
        c = self.shape[0]
        eye = autodiff.eye(c, dtype=self.log_s.dtype)
        lower = self.lower * self.lower_mask + eye
        # eye * v is diag(v): row i keeps only column i, whose factor is v[i]
        upper = self.upper * self.lower_mask.transpose(0, 1) \
            + eye * (self.sign_s * autodiff.exp(self.log_s))
        return self.p @ (lower @ upper)

    def log_abs_det(self):
        """log|det W|, a 0-d Tensor."""
        if self.lu:
            return self.log_s.sum()
        return autodiff.slogdet(self.weight)[1]

    def _apply(self, w, x):
        n, c = x.shape[0], x.shape[1]
        flat = x.reshape(n, c, -1)                    # (N, C, S)
        return (w @ flat).reshape(x.shape)            # (C, C) @ (N, C, S)

    def forward(self, x, cond=None):
        _check_input(x, self.shape, "InvConv1x1")
        ld = self.log_abs_det() * _spatial(self.shape)
        return self._apply(self.matrix(), x), ld + autodiff.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z, cond=None):
        _check_input(z, self.shape, "InvConv1x1")
        ld = -self.log_abs_det() * _spatial(self.shape)
        return self._apply(autodiff.inverse(self.matrix()), z), \
            ld + autodiff.zeros(z.shape[0], dtype=z.dtype)


class Squeeze(Bijection):
    """(C, H, W) -> (4C, H/2, W/2), each 2x2 block of pixels into channels (RealNVP Sec. 3.6,
    ``pixel_unshuffle``); a permutation of the entries, log-det 0."""

    def forward(self, x, cond=None):
        if x.ndim != 4 or x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"Squeeze needs images (N, C, H, W) with even H and W, got "
                             f"{tuple(x.shape)}")
        return F.pixel_unshuffle(x, 2), autodiff.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z, cond=None):
        if z.ndim != 4 or z.shape[1] % 4:
            raise ValueError(f"Squeeze.inverse needs (N, 4C, H, W), got {tuple(z.shape)}")
        return F.pixel_shuffle(z, 2), autodiff.zeros(z.shape[0], dtype=z.dtype)

    def output_shape(self, shape):
        c, h, w = shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs even H and W, got an image of shape {tuple(shape)}")
        return (4 * c, h // 2, w // 2)


class MultiScale(Bijection):
    """The multi-scale architecture (RealNVP Sec. 3.6; Glow Fig. 2): after each level, half
    the channels are factored out straight to the base distribution and only the rest goes
    on, so the later (more expensive) levels work on fewer dimensions:

        h_0 = x;  (z_i, h_i) = split(level_i(h_{i-1}));  z_L = final(h_{L-1});
        z = concat(flatten(z_1), ..., flatten(z_L))     (N, D),

    log|det| = the sum of the levels' log-determinants (the split is a permutation).

    :param input_shape: (C, H, W) of one example.
    :param levels: bijections (each typically begins with a ``Squeeze``).
    :param final: the bijection on what remains after the last split.
    """

    def __init__(self, input_shape, levels, final):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.levels = nn.ModuleList(list(levels))
        self.final = final
        self._shapes = []      # (shape after level i, shape of the kept half)
        shape = self.input_shape
        for level in self.levels:
            out = tuple(level.output_shape(shape))
            if out[0] % 2:
                raise ValueError(f"MultiScale: a level outputs {out[0]} channels; the split "
                                 "needs an even number")
            kept = (out[0] // 2,) + out[1:]
            self._shapes.append((out, kept))
            shape = kept
        self._final_in = shape
        self._final_out = tuple(final.output_shape(shape))

    def output_shape(self, shape):
        if tuple(shape) != self.input_shape:
            raise ValueError(f"MultiScale built for {self.input_shape}, asked about {shape}")
        return (math.prod(self.input_shape),)

    def forward(self, x, cond=None):
        _check_input(x, self.input_shape, "MultiScale")
        n = x.shape[0]
        outs, total, h = [], 0.0, x
        for level, (out, kept) in zip(self.levels, self._shapes):
            h, ld = level(h, cond)
            total = ld + total
            half = out[0] // 2
            outs.append(h[:, :half].reshape(n, -1))
            h = h[:, half:]
        h, ld = self.final(h, cond)
        outs.append(h.reshape(n, -1))
        return autodiff.cat(outs, dim=1), ld + total

    def inverse(self, z, cond=None):
        n = z.shape[0]
        if tuple(z.shape[1:]) != (math.prod(self.input_shape),):
            raise ValueError(f"MultiScale.inverse: expected (N, {math.prod(self.input_shape)}),"
                             f" got {tuple(z.shape)}")
        sizes = [math.prod(kept) for _, kept in self._shapes] + [math.prod(self._final_out)]
        pieces = autodiff.split(z, sizes, dim=1)
        h, total = self.final.inverse(pieces[-1].reshape((n,) + self._final_out), cond)
        for i in reversed(range(len(self.levels))):
            out, kept = self._shapes[i]
            factored = pieces[i].reshape((n,) + kept)
            h, ld = self.levels[i].inverse(autodiff.cat([factored, h], dim=1), cond)
            total = ld + total
        return h, total


# --------------------------------------------------------------------------- batch norm
class BatchNormFlow(Bijection):
    """Batch normalization as a bijection (RealNVP Sec. 3.7, Eq. 16; MAF Sec. 3.4):

        z = (x - mu) / sqrt(var + eps) * exp(log_gamma) + beta,
        log|det| = (H * W) * sum(log_gamma - 0.5 * log(var + eps)).

    In training mode mu, var are the batch's (biased variance, gradients flow through them)
    and the running averages move by ``momentum``; in eval mode the running averages are
    used, and then the layer is an exact per-example bijection. ``inverse`` always uses the
    running averages (it is called for sampling, in eval mode).
    """

    def __init__(self, shape, momentum=0.1, eps=1e-5):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        view = _feature_view(self.shape)
        self.momentum, self.eps = float(momentum), float(eps)
        self.log_gamma = nn.Parameter(autodiff.zeros(*view))
        self.beta = nn.Parameter(autodiff.zeros(*view))
        self.register_buffer("running_mean", autodiff.zeros(*view))
        self.register_buffer("running_var", autodiff.ones(*view))

    def _stats(self, x):
        if not self.training:
            return self.running_mean, self.running_var
        axes = (0,) + tuple(range(2, x.ndim))
        mean = x.mean(dim=axes, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=axes, keepdim=True)
        m = self.momentum
        self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * mean.data
        self.running_var.data[...] = (1 - m) * self.running_var.data + m * var.data
        return mean, var

    def forward(self, x, cond=None):
        _check_input(x, self.shape, "BatchNormFlow")
        mean, var = self._stats(x)
        z = (x - mean) * autodiff.rsqrt(var + self.eps) * autodiff.exp(self.log_gamma) \
            + self.beta
        ld = (self.log_gamma - 0.5 * autodiff.log(var + self.eps)).sum() * _spatial(self.shape)
        return z, ld + autodiff.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, z, cond=None):
        _check_input(z, self.shape, "BatchNormFlow")
        mean, var = self.running_mean, self.running_var
        x = (z - self.beta) * autodiff.exp(-self.log_gamma) * autodiff.sqrt(var + self.eps) \
            + mean
        ld = -(self.log_gamma - 0.5 * autodiff.log(var + self.eps)).sum() * _spatial(self.shape)
        return x, ld + autodiff.zeros(z.shape[0], dtype=z.dtype)


# --------------------------------------------------------------------------- preprocessing
class LogitPreprocess(Bijection):
    """Data in [lo, hi] to the real line (RealNVP Sec. 4.1):

        u = (x - lo) / (hi - lo),   p = alpha + (1 - 2 alpha) u,   y = logit(p),
        log|det dy/dx| = sum over entries of [ log(1 - 2 alpha) - log p - log(1 - p) ]
                         - D log(hi - lo).

    With p = sigmoid(y), -log p = softplus(-y) and -log(1 - p) = softplus(y): the stable form.
    alpha keeps p away from 0 and 1 (dequantized data touch the range's ends only in the
    limit; alpha = 0.05 as RealNVP, 1e-6 as MAF for MNIST).
    """

    def __init__(self, shape, alpha=0.05, value_range=(0.0, 1.0)):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.alpha = float(alpha)
        if not 0.0 <= self.alpha < 0.5:
            raise ValueError(f"LogitPreprocess: alpha must be in [0, 0.5), got {alpha}")
        self.lo, self.hi = (float(v) for v in value_range)
        if not self.hi > self.lo:
            raise ValueError(f"LogitPreprocess: value_range must have hi > lo, got "
                             f"{value_range}")

    def _logdet_from_y(self, y):
        d = math.prod(self.shape)
        per = F.softplus(y) + F.softplus(-y)
        return sum_per_example(per) + d * (math.log1p(-2 * self.alpha)
                                           - math.log(self.hi - self.lo))

    def forward(self, x, cond=None):
        _check_input(x, self.shape, "LogitPreprocess")
        p = self.alpha + (1 - 2 * self.alpha) * (x - self.lo) / (self.hi - self.lo)
        y = autodiff.log(p) - autodiff.log1p(-p)
        return y, self._logdet_from_y(y)

    def inverse(self, y, cond=None):
        _check_input(y, self.shape, "LogitPreprocess")
        u = (autodiff.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
        return self.lo + (self.hi - self.lo) * u, -self._logdet_from_y(y)
