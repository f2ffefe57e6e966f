"""Sinusoidal embeddings of a scalar (a diffusion timestep t, or a token position).

Vaswani et al. (2017, Section 3.5) encode position p with sines and cosines of geometrically
spaced frequencies; Ho et al. (2020, Appendix B) feed the diffusion step t through the same
map before the U-Net's time MLP. With ``half = dim // 2`` and i = 0, ..., half - 1:

    omega_i = exp(-log(max_period) * i / (half - freq_shift))        (max_period = 10000)
    emb(t)  = [sin(t omega_0), ..., sin(t omega_{half-1}), cos(t omega_0), ..., cos(t omega_{half-1})]

Two conventions are in common use and both are available:

* ``flip_sin_to_cos=False``: sines first, ``[sin | cos]`` (Vaswani et al.'s pairing, the
  original DDPM TensorFlow code, diffusers' default).
* ``flip_sin_to_cos=True``: cosines first, ``[cos | sin]`` (improved DDPM / ADM, Nichol &
  Dhariwal 2021, and diffusers' U-Nets that load those weights).

``freq_shift`` = 0 gives omega_i = max_period^(-i/half) (ADM; omega spans [max_period^(-1+1/half), 1]);
``freq_shift`` = 1 gives max_period^(-i/(half-1)) (the DDPM TensorFlow code, whose lowest
frequency is exactly 1/max_period). An odd ``dim`` gets one zero column appended.

``sinusoidal_positions`` gives Vaswani et al.'s positional table, whose columns interleave
instead: PE(p, 2i) = sin(p omega_i), PE(p, 2i+1) = cos(p omega_i), omega_i = 10000^(-2i/dim).
"""
import math

import autodiff
from autodiff import backend as B
from autodiff import nn

__all__ = ["timestep_embedding", "sinusoidal_positions", "SinusoidalEmbedding"]


def _frequencies(half, max_period, freq_shift, dtype):
    """omega_i = exp(-log(max_period) * i / (half - freq_shift)), shape (half,)."""
    denom = half - freq_shift
    if denom <= 0:
        raise ValueError(
            f"timestep_embedding: half = dim // 2 = {half} must exceed freq_shift = {freq_shift} "
            f"(the frequencies divide by half - freq_shift)")
    i = B.xp.arange(half, dtype=dtype)
    return B.xp.exp(-math.log(max_period) * i / denom)


def _check(dim, max_period):
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"sinusoidal embedding: dim must be a positive int, got {dim!r}")
    if not max_period > 1:
        raise ValueError(f"sinusoidal embedding: max_period must be > 1, got {max_period!r}")


def timestep_embedding(t, dim, max_period=10000.0, flip_sin_to_cos=False, freq_shift=0,
                       dtype=None):
    """Sinusoidal embedding of timesteps (Vaswani et al. 2017, Sec. 3.5; Ho et al. 2020, App. B).

    emb(t)[i] = sin(t omega_i), emb(t)[half + i] = cos(t omega_i) (swapped halves when
    ``flip_sin_to_cos``), omega_i = exp(-log(max_period) i / (half - freq_shift)); see the
    module docstring for the conventions.

    :param t: (N,) timesteps, integer or float (continuous time), a Tensor or array-like.
        A float Tensor that requires grad is differentiated through.
    :param dim: embedding size; an odd dim gets a zero last column.
    :param dtype: floating dtype of the result (default: t's if floating, else the default dtype).
    :return: (N, dim)
    """
    _check(dim, max_period)
    if not isinstance(t, autodiff.Tensor):
        t = autodiff.as_tensor(B.xp.asarray(t))
    if t.ndim != 1:
        raise ValueError(f"timestep_embedding: t must have shape (N,), got {tuple(t.shape)}")
    if dtype is None:
        dtype = t.dtype if t.dtype.kind == "f" else autodiff.get_default_dtype()
    dtype = B.numpy.dtype(dtype)  # host-side dtype object only (no array data)
    if t.dtype != dtype:
        t = t.to(dtype)
    half = dim // 2
    freqs = autodiff.Tensor(_frequencies(half, max_period, freq_shift, dtype)) if half else None
    parts = []
    if half:
        args = t.unsqueeze(1) * freqs.unsqueeze(0)                   # (N, half)
        sin, cos = autodiff.sin(args), autodiff.cos(args)
        parts = [cos, sin] if flip_sin_to_cos else [sin, cos]
    if dim % 2:
        parts.append(autodiff.zeros(t.shape[0], 1, dtype=dtype))
    return autodiff.cat(parts, dim=1)


def sinusoidal_positions(length, dim, max_period=10000.0, dtype=None):
    """Vaswani et al. (2017, Sec. 3.5) positional table, columns interleaved.

    PE[p, 2i] = sin(p omega_i), PE[p, 2i+1] = cos(p omega_i), omega_i = max_period^(-2i/dim),
    p = 0, ..., length - 1. An odd dim drops the last cosine column (the table has
    exactly ``dim`` columns). Constant: no gradient.

    :return: (length, dim)
    """
    _check(dim, max_period)
    if not isinstance(length, int) or length < 0:
        raise ValueError(f"sinusoidal_positions: length must be a non-negative int, got {length!r}")
    dtype = B.numpy.dtype(dtype or autodiff.get_default_dtype())  # host-side dtype object only
    xp = B.xp
    n_freq = (dim + 1) // 2
    omega = xp.exp(-math.log(max_period) * xp.arange(0, 2 * n_freq, 2, dtype=dtype) / dim)
    args = xp.arange(length, dtype=dtype)[:, None] * omega[None, :]   # (length, n_freq)
    table = xp.empty((length, 2 * n_freq), dtype=dtype)
    table[:, 0::2] = xp.sin(args)
    table[:, 1::2] = xp.cos(args)
    return autodiff.Tensor(table[:, :dim])


class SinusoidalEmbedding(nn.Module):
    """Module form of :func:`timestep_embedding` (no parameters).

    Shapes: t (N,) -> (N, dim).
    """

    def __init__(self, dim, max_period=10000.0, flip_sin_to_cos=False, freq_shift=0):
        super().__init__()
        _check(dim, max_period)
        self.dim = dim
        self.max_period = max_period
        self.flip_sin_to_cos = flip_sin_to_cos
        self.freq_shift = freq_shift

    def forward(self, t, dtype=None):
        return timestep_embedding(t, self.dim, self.max_period, self.flip_sin_to_cos,
                                  self.freq_shift, dtype)

    def extra_repr(self):
        return (f"dim={self.dim}, max_period={self.max_period}, "
                f"flip_sin_to_cos={self.flip_sin_to_cos}, freq_shift={self.freq_shift}")
