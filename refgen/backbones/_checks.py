"""Input checks of the backbones, named so that each ``forward`` reads like its equation.

Each check raises a ValueError (TypeError for a non-Tensor) that names the module (``who``),
the argument and what it got; users and tests rely on these messages. ``who`` comes first
after the checked value in every check.
"""
import autodiff
from autodiff import backend as B

__all__ = ["check_image", "check_even", "check_embedding", "check_known", "check_tokens",
           "check_sequence", "check_padding_mask", "check_positive_ints", "check_divisible",
           "check_sampling_options"]


def check_image(x, who, channels, size=None):
    """x must be a Tensor (N, channels, H, W) [with H = W = size]."""
    if not isinstance(x, autodiff.Tensor):
        raise TypeError(f"{who}: input must be a Tensor, got {type(x).__name__}")
    ok = x.ndim == 4 and x.shape[1] == channels
    if size is not None:
        ok = ok and tuple(x.shape[2:]) == (size, size)
    if not ok:
        want = f"(N, {channels}, {size}, {size})" if size is not None else f"(N, {channels}, H, W)"
        raise ValueError(f"{who}: input must be {want}, got shape {tuple(x.shape)}")


def check_even(x, who):
    """H and W of x (N, C, H, W) must be even (a 2x2 downsampling follows)."""
    if x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"{who}: H and W must be even, got shape {tuple(x.shape)}")


def check_embedding(emb, who, n, dim):
    """emb must be a Tensor (n, dim): one conditioning vector per example of x."""
    if not isinstance(emb, autodiff.Tensor) or emb.shape != (n, dim):
        got = tuple(emb.shape) if isinstance(emb, autodiff.Tensor) else type(emb).__name__
        raise ValueError(f"{who}: emb must be (N, {dim}) with N = {n} as x, got {got}")


def check_known(value, who, what, known):
    """value must be one of ``known`` (names the option ``what`` and lists the choices)."""
    if value not in known:
        raise ValueError(f"{who}: unknown {what} {value!r}; known: {', '.join(known)}")


def check_tokens(tokens, vocab_size, who, name="tokens"):
    """tokens must be a 2-d integer Tensor/array with values in [0, vocab_size); returns it
    as an int64 Tensor."""
    data = tokens.data if isinstance(tokens, autodiff.Tensor) else B.xp.asarray(tokens)
    if data.ndim != 2 or data.dtype.kind not in "iu":
        raise ValueError(f"{who}: {name} must be a 2-d integer array (B, T), got shape "
                         f"{tuple(data.shape)} and dtype {data.dtype}")
    if data.size and (int(data.min()) < 0 or int(data.max()) >= vocab_size):
        raise ValueError(f"{who}: {name} must lie in [0, {vocab_size}), got values in "
                         f"[{int(data.min())}, {int(data.max())}]")
    return autodiff.Tensor(data.astype(B.numpy.int64))


def check_sequence(x, dim, who, name):
    """x must be a Tensor (B, T, dim) of token embeddings."""
    if not isinstance(x, autodiff.Tensor):
        raise TypeError(f"{who}: {name} must be a Tensor, got {type(x).__name__}")
    if x.ndim != 3 or x.shape[-1] != dim:
        raise ValueError(f"{who}: {name} must have shape (B, T, {dim}), got {tuple(x.shape)}")


def check_padding_mask(mask, batch, length, who, name):
    """A boolean (batch, length) mask, True at padding, as a backend array (or None)."""
    if mask is None:
        return None
    data = mask.data if isinstance(mask, autodiff.Tensor) else B.xp.asarray(mask)
    if data.dtype.kind != "b" or tuple(data.shape) != (batch, length):
        raise ValueError(f"{who}: {name} must be a boolean array of shape ({batch}, {length}) "
                         f"(True at padding), got shape {tuple(data.shape)} and dtype {data.dtype}")
    return data


def check_positive_ints(who, **values):
    """Each keyword value must be a positive int (sizes, counts)."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{who}: {name} must be a positive int, got {v!r}")


def check_divisible(who, n, n_name, k, k_name):
    """n must be divisible by k (widths by heads)."""
    if n % k:
        raise ValueError(f"{who}: {n_name} ({n}) must be divisible by {k_name} ({k})")


def check_sampling_options(who, max_new_tokens, temperature, top_k):
    """Options of autoregressive generation: max_new_tokens a non-negative int, temperature
    >= 0 (0: argmax), top_k None or >= 1."""
    if temperature < 0:
        raise ValueError(f"{who}: temperature must be >= 0, got {temperature}")
    if int(max_new_tokens) != max_new_tokens or max_new_tokens < 0:
        raise ValueError(f"{who}: max_new_tokens must be a non-negative int, got "
                         f"{max_new_tokens!r}")
    if top_k is not None and not 1 <= top_k:
        raise ValueError(f"{who}: top_k must be >= 1, got {top_k}")
