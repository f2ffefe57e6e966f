"""Conditioning: how a network f(x, c) takes its condition c.

* ``concat_condition``: c appended to the input vector, or to feature maps as constant
  channels (a vector c broadcast over H, W).
* ``FiLM`` (Perez et al. 2018, "FiLM: Visual Reasoning with a General Conditioning Layer"):
  per-feature scale and shift predicted from c.
* ``AdaIN`` and ``adain`` (Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with
  Adaptive Instance Normalization", Eq. 8): instance-normalise x, then scale and shift by
  statistics of (or a projection of) a style.
* ``CrossAttention``: queries from x, keys and values from a sequence of condition tokens
  (Vaswani et al. 2017, Eq. 1; the conditioning block of Rombach et al. 2022's latent
  diffusion U-Net).
* ``ClassEmbedding`` with a learned null token, ``drop_labels`` and
  ``classifier_free_guidance`` (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance",
  Eq. 6).
"""
import autodiff
from autodiff import backend as B
from autodiff import nn

__all__ = ["concat_condition", "FiLM", "instance_norm", "adain", "AdaIN", "CrossAttention",
           "ClassEmbedding", "drop_labels", "classifier_free_guidance", "guidance_scale_to_w"]


def _need_tensor(x, where, name):
    if not isinstance(x, autodiff.Tensor):
        raise TypeError(f"{where}: {name} must be a Tensor, got {type(x).__name__}")


def _need_vector(c, batch, dim, where, name="c"):
    """c must be (batch, dim)."""
    _need_tensor(c, where, name)
    if c.ndim != 2 or c.shape[0] != batch or (dim is not None and c.shape[1] != dim):
        want = f"({batch}, {dim if dim is not None else 'D_c'})"
        raise ValueError(f"{where}: {name} must have shape {want}, got {tuple(c.shape)}")


# ---------------------------------------------------------------------------- concatenation
def concat_condition(x, c):
    """Concatenate a condition to the input along the feature/channel axis (dim 1).

    * x (B, D), c (B, D_c) -> (B, D + D_c)
    * x (B, C, *spatial), c (B, D_c) -> (B, C + D_c, *spatial): c is repeated at every position
      (constant feature maps)
    * x (B, C, *spatial), c (B, D_c, *spatial) -> (B, C + D_c, *spatial)
    """
    where = "concat_condition"
    _need_tensor(x, where, "x")
    _need_tensor(c, where, "c")
    if x.ndim < 2 or c.ndim < 2 or c.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: x (B, ...) and c (B, ...) need the same batch size and at "
                         f"least 2 dims, got x {tuple(x.shape)} and c {tuple(c.shape)}")
    spatial = tuple(x.shape[2:])
    if c.ndim == 2 and spatial:
        c = c.reshape(tuple(c.shape) + (1,) * len(spatial)).expand(
            (c.shape[0], c.shape[1]) + spatial)
    elif tuple(c.shape[2:]) != spatial:
        raise ValueError(f"{where}: c must be (B, D_c) or (B, D_c, {', '.join(map(str, spatial))})"
                         f" to match x {tuple(x.shape)}, got {tuple(c.shape)}")
    return autodiff.cat([x, c.to(x.dtype)], dim=1)


def _per_channel(v, ndim):
    """(B, C) -> (B, C, 1, ..., 1) to broadcast over the ndim - 2 trailing (spatial) dims."""
    return v.reshape(tuple(v.shape) + (1,) * (ndim - 2))


# ---------------------------------------------------------------------------- FiLM
class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018):

        gamma, beta = Linear(c).chunk(2)          (gamma first)
        FiLM(x | c) = gamma * x + beta            (one_plus=False: the paper's form)
        FiLM(x | c) = (1 + gamma) * x + beta      (one_plus=True: the "scale-shift" form of
                                                   Nichol & Dhariwal 2021's U-Net; with
                                                   zero_init a fresh layer is the identity)

    gamma and beta are per feature/channel, shared over spatial positions.

    :param num_features: C, the features of x; :param cond_dim: D_c, the size of c
    :param zero_init: start the projection at zero (gamma = beta = 0)
    Parameters: ``linear`` Linear(cond_dim, 2 * num_features).
    Shapes: x (B, C) or (B, C, *spatial), c (B, D_c) -> same shape as x.
    """

    def __init__(self, num_features, cond_dim, one_plus=False, zero_init=False, bias=True,
                 generator=None):
        super().__init__()
        self.num_features, self.cond_dim = int(num_features), int(cond_dim)
        self.one_plus, self.zero_init = one_plus, zero_init
        self.linear = nn.Linear(cond_dim, 2 * num_features, bias=bias, generator=generator)
        if zero_init:
            nn.init.zeros_(self.linear.weight)
            if self.linear.bias is not None:
                nn.init.zeros_(self.linear.bias)

    def forward(self, x, c):
        where = f"FiLM(num_features={self.num_features})"
        _need_tensor(x, where, "x")
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"{where}: x must be (B, {self.num_features}, *spatial), got "
                             f"{tuple(x.shape)}")
        _need_vector(c, x.shape[0], self.cond_dim, where)
        gamma, beta = self.linear(c).chunk(2, dim=1)
        gamma, beta = _per_channel(gamma, x.ndim), _per_channel(beta, x.ndim)
        if self.one_plus:
            gamma = gamma + 1.0
        return x * gamma + beta

    def extra_repr(self):
        return (f"num_features={self.num_features}, cond_dim={self.cond_dim}, "
                f"one_plus={self.one_plus}")


# ---------------------------------------------------------------------------- AdaIN
def _spatial_stats(x, eps, where, name):
    """Per-sample, per-channel mean and sqrt(biased variance + eps) over spatial dims,
    each (B, C, 1, ..., 1)."""
    _need_tensor(x, where, name)
    if x.ndim < 3:
        raise ValueError(f"{where}: {name} must be (B, C, *spatial) with at least one spatial "
                         f"dim (instance statistics need positions), got {tuple(x.shape)}")
    dims = tuple(range(2, x.ndim))
    mu = x.mean(dim=dims, keepdim=True)
    var = ((x - mu) * (x - mu)).mean(dim=dims, keepdim=True)
    return mu, (var + eps).sqrt()


def instance_norm(x, eps=1e-5):
    """(x - mu(x)) / sqrt(sigma^2(x) + eps), statistics per sample and channel over the spatial
    dims (Ulyanov et al. 2016), biased variance as ``torch.nn.functional.instance_norm``.
    (B, C, *spatial) -> same shape."""
    mu, sigma = _spatial_stats(x, eps, "instance_norm", "x")
    return (x - mu) / sigma


def adain(content, style, eps=1e-5):
    """Adaptive instance normalisation from instance statistics (Huang & Belongie 2017, Eq. 8):

        AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y)

    mu and sigma per sample and channel over the spatial dims; sigma = sqrt(var + eps) with
    the biased (population) variance, for both x and y.

    :param content: x (B, C, *spatial)
    :param style: y (B, C, *spatial'), any spatial size, as many spatial dims as x
    :return: (B, C, *spatial)
    """
    mu_x, sigma_x = _spatial_stats(content, eps, "adain", "content")
    mu_y, sigma_y = _spatial_stats(style, eps, "adain", "style")
    # the same number of spatial dims too: (B, C, 1) statistics of a 1-d style would
    # otherwise broadcast against (B, C, H, W) along the wrong axes, silently when B = C = H
    if tuple(style.shape[:2]) != tuple(content.shape[:2]) or style.ndim != content.ndim:
        raise ValueError(f"adain: content {tuple(content.shape)} and style {tuple(style.shape)} "
                         f"must agree in batch, channels and number of spatial dims")
    return sigma_y * (content - mu_x) / sigma_x + mu_y


class AdaIN(nn.Module):
    """AdaIN with a learned style projection (as in StyleGAN, Karras et al. 2019, Eq. 1):

        gamma, beta = Linear(s).chunk(2)
        AdaIN(x, s) = gamma * instance_norm(x) + beta       ((1 + gamma) with one_plus=True)

    :param num_features: C; :param style_dim: D_s; :param eps: inside the instance norm
    Parameters: ``linear`` Linear(style_dim, 2 * num_features).
    Shapes: x (B, C, *spatial) (at least one spatial dim), s (B, D_s) -> (B, C, *spatial).
    """

    def __init__(self, num_features, style_dim, eps=1e-5, one_plus=False, bias=True,
                 generator=None):
        super().__init__()
        self.num_features, self.style_dim = int(num_features), int(style_dim)
        self.eps, self.one_plus = eps, one_plus
        self.linear = nn.Linear(style_dim, 2 * num_features, bias=bias, generator=generator)

    def forward(self, x, style):
        where = f"AdaIN(num_features={self.num_features})"
        _need_tensor(x, where, "x")
        if x.ndim < 3 or x.shape[1] != self.num_features:
            raise ValueError(f"{where}: x must be (B, {self.num_features}, *spatial), got "
                             f"{tuple(x.shape)}")
        _need_vector(style, x.shape[0], self.style_dim, where, "style")
        gamma, beta = self.linear(style).chunk(2, dim=1)
        gamma, beta = _per_channel(gamma, x.ndim), _per_channel(beta, x.ndim)
        if self.one_plus:
            gamma = gamma + 1.0
        return gamma * instance_norm(x, self.eps) + beta

    def extra_repr(self):
        return (f"num_features={self.num_features}, style_dim={self.style_dim}, eps={self.eps}, "
                f"one_plus={self.one_plus}")


# ---------------------------------------------------------------------------- cross-attention
class CrossAttention(nn.Module):
    """Pre-LayerNorm cross-attention block with a residual connection:

        y = x + MultiHead(Q = LN(x), K = V = context)      (Vaswani et al. 2017, Eq. 1)

    Queries come from the tokens of x, or from the positions of a feature map (flattened to
    H*W tokens of C features and reshaped back); keys and values from condition tokens.

    :param query_dim: D (tokens) or C (feature maps); :param context_dim: D_c
    :param num_heads: heads (query_dim divisible by it); :param dropout: on attention weights
    Parameters: ``norm`` LayerNorm(query_dim), ``attn`` MultiheadAttention(query_dim,
    num_heads, kdim=vdim=context_dim, batch_first=True) (``in_proj_weight`` when
    context_dim == query_dim, else ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``).

    forward(x (B, L, D) or (B, C, H, W), context (B, S, D_c), context_padding_mask (B, S)
    bool, True at padding) -> same shape as x. A query whose every context token is padding
    gets zero attention weights, so the heads give 0 and the block gives
    y = x + out_proj(0) = x + ``attn.out_proj.bias`` there (= x only while that bias is zero, as
    it is at initialisation).
    """

    def __init__(self, query_dim, context_dim, num_heads=1, dropout=0.0, bias=True,
                 generator=None):
        super().__init__()
        self.query_dim, self.context_dim = int(query_dim), int(context_dim)
        self.norm = nn.LayerNorm(query_dim, bias=bias)
        self.attn = nn.MultiheadAttention(query_dim, num_heads, dropout=dropout, bias=bias,
                                          kdim=context_dim, vdim=context_dim, batch_first=True,
                                          generator=generator)

    def forward(self, x, context, context_padding_mask=None):
        where = f"CrossAttention(query_dim={self.query_dim}, context_dim={self.context_dim})"
        _need_tensor(x, where, "x")
        _need_tensor(context, where, "context")
        if x.ndim == 3 and x.shape[2] == self.query_dim:
            tokens, shape = x, None
        elif x.ndim == 4 and x.shape[1] == self.query_dim:
            shape = tuple(x.shape)                                     # (B, C, H, W)
            tokens = x.flatten(2).transpose(1, 2)                      # (B, H*W, C)
        else:
            raise ValueError(f"{where}: x must be (B, L, {self.query_dim}) or "
                             f"(B, {self.query_dim}, H, W), got {tuple(x.shape)}")
        if context.ndim != 3 or context.shape[0] != x.shape[0] or context.shape[2] != self.context_dim:
            raise ValueError(f"{where}: context must be ({x.shape[0]}, S, {self.context_dim}), "
                             f"got {tuple(context.shape)}")
        mask = None
        if context_padding_mask is not None:
            mask = (context_padding_mask.data if isinstance(context_padding_mask, autodiff.Tensor)
                    else B.xp.asarray(context_padding_mask))
            if mask.dtype.kind != "b" or tuple(mask.shape) != tuple(context.shape[:2]):
                raise ValueError(f"{where}: context_padding_mask must be boolean "
                                 f"{tuple(context.shape[:2])}, got shape {tuple(mask.shape)} and "
                                 f"dtype {mask.dtype}")
        a, _ = self.attn(self.norm(tokens), context, context, key_padding_mask=mask,
                         need_weights=False)
        y = tokens + a
        if shape is not None:
            y = y.transpose(1, 2).reshape(shape)
        return y

    def extra_repr(self):
        return f"query_dim={self.query_dim}, context_dim={self.context_dim}"


# ---------------------------------------------------------------------------- classes and CFG
def drop_labels(y, p, null_index, generator=None):
    """Replace each label by ``null_index`` independently with probability p (the label
    dropout that trains one network as both f(x, c) and f(x, null); Ho & Salimans 2022,
    Algorithm 1). y (B,) int -> (B,) int64 Tensor."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop_labels: p must be in [0, 1], got {p}")
    data = y.data if isinstance(y, autodiff.Tensor) else B.xp.asarray(y)
    if data.ndim != 1 or data.dtype.kind not in "iu":
        raise ValueError(f"drop_labels: y must be a 1-d integer array (B,), got shape "
                         f"{tuple(data.shape)} and dtype {data.dtype}")
    gen = generator if generator is not None else B.default_generator()
    drop = gen.random(data.shape, B.numpy.float64) < p
    return autodiff.Tensor(B.xp.where(drop, null_index, data).astype(B.numpy.int64))


class ClassEmbedding(nn.Module):
    """Class labels to vectors, with a learned null token for classifier-free guidance.

    Labels 0..num_classes-1 are classes; index ``num_classes`` (``null_index``) is the
    learned "no label" embedding.
    Parameters: ``embedding`` Embedding(num_classes + 1, embedding_dim).
    Shapes: y (B,) int in [0, num_classes] -> (B, embedding_dim).
    """

    def __init__(self, num_classes, embedding_dim, generator=None):
        super().__init__()
        if int(num_classes) <= 0:
            raise ValueError(f"ClassEmbedding: num_classes must be positive, got {num_classes}")
        self.num_classes, self.embedding_dim = int(num_classes), int(embedding_dim)
        self.embedding = nn.Embedding(self.num_classes + 1, embedding_dim, generator=generator)

    @property
    def null_index(self):
        return self.num_classes

    def null_labels(self, batch):
        """(batch,) int64 Tensor of null labels."""
        return autodiff.Tensor(B.xp.full((int(batch),), self.null_index, dtype=B.numpy.int64))

    def drop_labels(self, y, p, generator=None):
        """y with each label replaced by the null label with probability p."""
        return drop_labels(y, p, self.null_index, generator)

    def forward(self, y):
        data = y.data if isinstance(y, autodiff.Tensor) else B.xp.asarray(y)
        if data.ndim != 1 or data.dtype.kind not in "iu":
            raise ValueError(f"ClassEmbedding: y must be a 1-d integer array (B,), got shape "
                             f"{tuple(data.shape)} and dtype {data.dtype}")
        if data.size and (int(data.min()) < 0 or int(data.max()) > self.null_index):
            raise ValueError(f"ClassEmbedding: labels must lie in [0, {self.num_classes}] "
                             f"({self.num_classes} is the null label), got values in "
                             f"[{int(data.min())}, {int(data.max())}]")
        return self.embedding(autodiff.Tensor(data.astype(B.numpy.int64)))

    def extra_repr(self):
        return f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}"


def classifier_free_guidance(cond_out, uncond_out, w):
    """Classifier-free guidance (Ho & Salimans 2022, Eq. 6), for a noise or score prediction:

        guided = (1 + w) * f(x, c) - w * f(x, null)  =  f(x, c) + w * (f(x, c) - f(x, null))

    w = 0 is no guidance (the conditional model), w > 0 strengthens the condition, w = -1
    gives the unconditional model. Some libraries (e.g. the ``guidance_scale`` of Hugging Face
    diffusers) write s * f(x, c) + (1 - s) * f(x, null) with s = 1 + w, so s = 1 is no
    guidance; ``guidance_scale_to_w(s)`` converts (w = s - 1).

    :param cond_out: f(x, c), any shape; :param uncond_out: f(x, null), the same shape
    :param w: float, or a Tensor broadcastable to the outputs (per-sample weights)
    :return: same shape as cond_out
    """
    _need_tensor(cond_out, "classifier_free_guidance", "cond_out")
    _need_tensor(uncond_out, "classifier_free_guidance", "uncond_out")
    if tuple(cond_out.shape) != tuple(uncond_out.shape):
        raise ValueError(f"classifier_free_guidance: cond_out {tuple(cond_out.shape)} and "
                         f"uncond_out {tuple(uncond_out.shape)} must have the same shape")
    # This form returns cond_out exactly when w = 0.
    return cond_out + w * (cond_out - uncond_out)


def guidance_scale_to_w(s):
    """The ``guidance_scale`` convention s * f(x, c) + (1 - s) * f(x, null) -> our w = s - 1."""
    return s - 1
