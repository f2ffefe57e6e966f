"""The VAE family's mathematics: the variational autoencoder, its importance-weighted bound, and the
conditional VAE.

The model (Kingma & Welling 2014, "Auto-encoding variational Bayes"; Rezende et al. 2014)::

    z ~ p(z) = N(0, I_d)                          the prior, d = ``latent_dim``
    x ~ p_theta(x | z, c)                         the decoder (Bernoulli, Gaussian or
                                                  discretized logistic, below)
    q_phi(z | x, c) = N(mu_phi(x, c), diag sigma_phi(x, c)^2)     the Gaussian encoder

with an optional class label c fed to both networks (the conditional VAE, Sohn et al. 2015,
"Learning structured output representation using deep conditional generative models", as a
one-hot vector concatenated to their inputs). For every q,

    log p_theta(x) >= E_q[log p_theta(x | z)] - KL(q_phi(z | x) || p(z))  =  ELBO(x)
                                                     (Kingma & Welling 2014, Eq. 3 and 10)

The expectation is estimated with the reparameterisation z = mu + sigma * eps,
eps ~ N(0, I) (ibid., Sec. 2.4), so its gradient flows into phi; the KL of two Gaussians is
in closed form (ibid., Appendix B):

    KL(N(mu, sigma^2) || N(0, 1)) = sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2) / 2.

``beta`` weighs the KL term (beta-VAE, Higgins et al. 2017): the training loss is
-(E_q[log p(x|z)] - beta KL); beta = 1 is the ELBO.

The importance-weighted bound with k samples (Burda et al. 2016, "Importance weighted
autoencoders", Eq. 8), with log weights log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x),
z_1..z_k ~ q(z | x) independently:

    IWAE_k(x) = E[ log (1/k) sum_i w_i ],    ELBO = IWAE_1 <= IWAE_k <= IWAE_{k+1} <= log p(x)

(ibid., Theorem 1), computed with a max-shifted log-mean-exp so that no w_i is ever formed:
log (1/k) sum_i exp(a_i) = m + log (1/k) sum_i exp(a_i - m), m = max_i a_i. Training on it
(``objective="iwae"``) is the IWAE. The same weights with k = 5000 give the log-likelihood
ESTIMATE of Burda et al. (Sec. 5.1, following Rezende et al. 2014), log p_hat(x) =
log (1/k) sum_i w_i: consistent as k -> infinity, biased low for finite k (it is IWAE_k's
single-draw estimate), with the delta-method standard error
se = sqrt(Var(w) / k) / mean(w) computed from normalised weights w_i / mean(w).

Decoders (``decoder``), each a distribution over the D = prod(example shape) flattened
dimensions, independent given z:

* ``"bernoulli"``: logits l(z); log p(x | z) = sum_j x_j log sigma(l_j) + (1 - x_j) log
  sigma(-l_j) (log-sigmoid: finite for every logit). Binary data; grey-level data are
  binarized dynamically for training (a fresh Bernoulli(x) draw per batch, Salakhutdinov &
  Murray 2008, as in Burda et al. 2016) and once, with a fixed seed, for evaluation.
  ``discrete``: the likelihood is a mass on {0, 1}^D.
* ``"gaussian"``: N(mean(z), sigma^2), sigma fixed (``sigma``) or learned per dimension
  (``variance="learned"``: the network also gives log sigma^2). A density of continuous data:
  image data are uniformly dequantized (refgen.data.preprocessing.dequantize) for training
  and bits/dim.
* ``"logistic"``: the discretized logistic of PixelCNN++ (Salimans et al. 2017, Sec. 2.1) on
  the data's L grey levels (``refgen.distributions.DiscretizedLogistic``), loc and log scale
  per pixel. ``discrete``: a mass of the stored levels, so bits/dim need no dequantization.

Shapes: x (N, *example_shape), flattened to (N, D) inside; z (N, d), or (k, N, d) for k
importance samples; labels c (N,) int64.
"""
import math

import autodiff
from autodiff import backend as B
from autodiff import nn

from ...backbones.mlp import MLP
from ...distributions import (Bernoulli, DiagonalNormal, DiscretizedLogistic, Independent,
                             Normal, kl_divergence)
from ..base import GenerativeModel, check_sample_options

__all__ = ["kind", "VAE", "GaussianEncoder", "ConvEncoderNet", "BernoulliDecoder",
           "GaussianDecoder", "DiscretizedLogisticDecoder", "log_mean_exp",
           "importance_log_weights", "iwae_from_log_weights", "estimate_from_log_weights",
           "standard_normal_prior", "default_config", "build", "train_defaults",
           "smoke_config", "SMOKE_DATA", "DECODERS", "OBJECTIVES"]

kind = "vae"

DECODERS = ("bernoulli", "gaussian", "logistic")
OBJECTIVES = ("elbo", "iwae")
VARIANCES = ("learned", "fixed")
SAMPLERS = ("draw", "mean")

# Lower bound on the discretized logistic's log scale: PixelCNN++ clamps at -7 too. Below it
# the bins of 8-bit data are already a million scales wide, and exp() stays far from 0.
_MIN_LOG_SCALE = -7.0


# ============================================================================ the bounds
def log_mean_exp(a, dim=0):
    """log (1/k) sum_i exp(a_i) along ``dim`` (k = a.shape[dim]), shifted by the maximum.

    m = max_i a_i (detached: the value does not depend on it, and the gradient of the
    shifted form is exactly softmax(a), as it should be); then
    m + log sum_i exp(a_i - m) - log k. No exp overflows and the largest term is exp(0) = 1,
    so the sum never underflows to 0 either (Burda et al. 2016 compute IWAE this way).
    """
    k = a.shape[dim]
    m = autodiff.Tensor(B.xp.max(a.data, axis=dim, keepdims=True))
    return (m.squeeze(dim) + autodiff.log(autodiff.exp(a - m).sum(dim))) - math.log(k)


def standard_normal_prior(latent_dim, dtype):
    """p(z) = N(0, I_d) as a ``DiagonalNormal`` with event shape (d,)."""
    xp = B.xp
    return DiagonalNormal(autodiff.Tensor(xp.zeros((latent_dim,), dtype=dtype)),
                          autodiff.Tensor(xp.ones((latent_dim,), dtype=dtype)))


def importance_log_weights(x_flat, q, decoder, prior, k, generator=None, c=None):
    """log w_i = log p_theta(x | z_i, c) + log p(z_i) - log q(z_i | x, c), z_i ~ q (rsample).

    :param x_flat: (N, D) data.
    :param q: the encoder's distribution, event shape (d,), batch shape (N,).
    :param decoder: a decoder module: ``decoder(z, c)`` -> a distribution over (.., D).
    :param prior: p(z), event shape (d,).
    :param k: importance samples per example.
    :param c: labels (N,) or None.
    :return: (k, N) log weights, differentiable in the encoder's and decoder's parameters
        (reparameterised draws).
    """
    n = x_flat.shape[0]
    z = q.rsample((k,), generator=generator)                     # (k, N, d)
    log_q = q.log_prob(z)                                        # (k, N)
    log_prior = prior.log_prob(z)                                # (k, N)
    z_flat = z.reshape(k * n, z.shape[-1])                       # (k N, d)
    x_rep = autodiff.broadcast_to(x_flat, (k,) + tuple(x_flat.shape)).reshape(k * n, -1)
    c_rep = None if c is None else _repeat_labels(c, k)
    log_px_z = decoder(z_flat, c_rep).log_prob(x_rep).reshape(k, n)   # (k, N)
    return log_px_z + log_prior - log_q


def iwae_from_log_weights(log_w):
    """IWAE_k = log (1/k) sum_i w_i per example: (k, N) -> (N,) (Burda et al. 2016, Eq. 8)."""
    return log_mean_exp(log_w, dim=0)


def estimate_from_log_weights(log_w):
    """The importance-sampled log-likelihood estimate and its standard error, (k, N) -> two
    (N,) backend arrays (no gradient).

    log p_hat = log mean_i w_i; by the delta method its standard error is
    sd(w) / (sqrt(k) mean(w)) = sd(w~) / sqrt(k) with the normalised weights
    w~_i = w_i / mean(w) = exp(log w_i - log p_hat), which never overflow (max w~ <= k).
    """
    xp = B.xp
    a = log_w.data if isinstance(log_w, autodiff.Tensor) else xp.asarray(log_w)
    k = a.shape[0]
    m = a.max(axis=0, keepdims=True)
    est = (m + xp.log(xp.exp(a - m).mean(axis=0, keepdims=True)))       # (1, N)
    w_norm = xp.exp(a - est)
    se = w_norm.std(axis=0, ddof=1) / math.sqrt(k) if k > 1 else xp.full(a.shape[1], xp.inf)
    return est[0], se


def _repeat_labels(c, k):
    """(N,) labels -> (k N,), the label of example n at rows n, N + n, 2N + n, ..."""
    data = c.data if isinstance(c, autodiff.Tensor) else c
    return autodiff.Tensor(B.xp.tile(data, k))


# ============================================================================ networks
class GaussianEncoder(nn.Module):
    """q_phi(z | x, c) = N(mu, diag exp(log_var)): ``net`` maps the flattened x (and a
    condition vector) to (N, 2 d) = [mu, log sigma^2] (Kingma & Welling 2014, App. C.2).

    :param net: a module, ``net(x)`` or ``net(x, c_vec)`` -> (N, 2 d); an ``MLP`` in the
        family, any module (a ``Linear`` in the tests' linear-Gaussian model).
    :param latent_dim: d.
    :param num_classes: K > 0 for a conditional encoder (labels -> one-hot c_vec), else 0.
    """

    def __init__(self, net, latent_dim, num_classes=0):
        super().__init__()
        self.net = net
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)

    def forward(self, x_flat, c=None):
        """x (N, D), c (N,) or None -> DiagonalNormal, batch (N,), event (d,)."""
        h = _call_net(self.net, x_flat, c, self.num_classes)
        mu, log_var = h[..., :self.latent_dim], h[..., self.latent_dim:]
        return DiagonalNormal(mu, autodiff.exp(0.5 * log_var))


class ConvEncoderNet(nn.Module):
    """The small convolutional network of the encoder for images (``encoder="conv"``):

        (N, C, H, W) -> conv 4x4 stride 2 (``channels[0]``) -> act -> conv 4x4 stride 2
        (``channels[1]``) -> act -> flatten -> [features, c] -> Linear -> (N, out_features)

    (each stride-2 convolution with padding 1 halves H and W: 28 -> 14 -> 7, 8 -> 4 -> 2).
    It takes the flattened x (N, D) as the MLP does and reshapes it to ``image_shape``; a
    condition vector (N, cond_features) joins the flattened features before the Linear.
    """

    def __init__(self, image_shape, out_features, channels=(32, 64), activation="relu",
                 cond_features=0):
        super().__init__()
        from ...backbones.mlp import make_activation
        c, h, w = (int(s) for s in image_shape)
        if h % 4 or w % 4:
            raise ValueError(f"vae: the conv encoder halves H and W twice; they must be "
                             f"multiples of 4, got image shape {tuple(image_shape)}")
        self.image_shape, self.cond_features = (c, h, w), int(cond_features)
        c1, c2 = (int(v) for v in channels)
        self.conv1 = nn.Conv2d(c, c1, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 4, stride=2, padding=1)
        self.act = make_activation(activation)
        self.out = nn.Linear(c2 * (h // 4) * (w // 4) + self.cond_features, out_features)

    def forward(self, x_flat, c=None):
        h = x_flat.reshape((x_flat.shape[0],) + self.image_shape)
        h = self.act(self.conv2(self.act(self.conv1(h))))
        h = h.reshape(h.shape[0], -1)
        if c is not None:
            h = autodiff.cat([h, c], dim=-1)
        return self.out(h)


class BernoulliDecoder(nn.Module):
    """p_theta(x | z, c) = prod_j Bernoulli(x_j; sigma(l_j(z, c))); ``net`` gives the logits
    (*, D)."""

    def __init__(self, net, num_classes=0):
        super().__init__()
        self.net, self.num_classes = net, int(num_classes)

    def forward(self, z, c=None):
        return Independent(Bernoulli(logits=_call_net(self.net, z, c, self.num_classes)), 1)

    @staticmethod
    def mean(dist):
        return dist.base.probs


class GaussianDecoder(nn.Module):
    """p_theta(x | z, c) = prod_j N(x_j; m_j(z, c), sigma_j^2).

    ``variance="fixed"``: ``net`` gives the mean (*, D), sigma = ``sigma`` for every j;
    ``"learned"``: ``net`` gives (*, 2 D) = [mean, log sigma^2].
    """

    def __init__(self, net, num_classes=0, variance="learned", sigma=1.0):
        super().__init__()
        if variance not in VARIANCES:
            raise ValueError(f"GaussianDecoder: variance must be one of {VARIANCES}, "
                             f"got {variance!r}")
        if not float(sigma) > 0:
            raise ValueError(f"GaussianDecoder: sigma must be positive, got {sigma!r}")
        self.net, self.num_classes = net, int(num_classes)
        self.variance, self.sigma = variance, float(sigma)

    def forward(self, z, c=None):
        h = _call_net(self.net, z, c, self.num_classes)
        if self.variance == "fixed":
            return Independent(Normal(h, autodiff.full_like(h, self.sigma)), 1)
        dim = h.shape[-1] // 2
        return Independent(Normal(h[..., :dim], autodiff.exp(0.5 * h[..., dim:])), 1)

    @staticmethod
    def mean(dist):
        return dist.base.loc


class DiscretizedLogisticDecoder(nn.Module):
    """p_theta(x | z, c) = prod_j DiscretizedLogistic(x_j; m_j, s_j) on ``levels`` bins of
    [low, high] (Salimans et al. 2017, Sec. 2.1); ``net`` gives (*, 2 D) = [m, log s],
    log s clamped below at -7 as PixelCNN++ does."""

    def __init__(self, net, levels, low=0.0, high=1.0, num_classes=0):
        super().__init__()
        self.net, self.num_classes = net, int(num_classes)
        self.levels, self.low, self.high = int(levels), float(low), float(high)

    def forward(self, z, c=None):
        h = _call_net(self.net, z, c, self.num_classes)
        dim = h.shape[-1] // 2
        log_s = autodiff.clamp(h[..., dim:], min=_MIN_LOG_SCALE)
        return Independent(DiscretizedLogistic(h[..., :dim], autodiff.exp(log_s),
                                               num_bins=self.levels, low=self.low,
                                               high=self.high), 1)

    @staticmethod
    def mean(dist):
        # the logistic's mean, clipped to the bins' range (the edge bins take the tails)
        return autodiff.clamp(dist.base.loc, dist.base.low, dist.base.high)


def _call_net(net, h, c, num_classes):
    """net(h) or, with labels, net(h, onehot(c)) (concatenation conditioning)."""
    if not num_classes:
        if c is not None:
            raise ValueError("a label c was given to an unconditional VAE network "
                             "(build it with conditional=True)")
        return net(h)
    if c is None:
        raise ValueError("the conditional VAE needs the labels c (N,) for its networks")
    labels = c.data if isinstance(c, autodiff.Tensor) else B.xp.asarray(c)
    onehot = B.xp.eye(num_classes, dtype=h.dtype)[labels.astype(B.numpy.int64)]
    return net(h, autodiff.Tensor(onehot))


# ============================================================================ the model
class VAE(GenerativeModel):
    """A VAE (or conditional VAE) with a Gaussian encoder and one of ``DECODERS``.

    :param config: ``default_config`` gives every key: ``latent_dim`` (d), ``hidden`` (MLP
        widths of both networks), ``activation``, ``encoder`` ('mlp' | 'conv': the
        ``ConvEncoderNet`` for images, with ``conv_channels``), ``decoder`` (one of ``DECODERS``),
        ``variance`` ('learned' | 'fixed') and ``sigma`` (the fixed sigma) of the Gaussian
        decoder, ``beta`` (KL weight of the ELBO loss), ``objective`` ('elbo' | 'iwae'),
        ``k`` (samples per example: the IWAE's k, or the draws averaged in the ELBO's
        reconstruction term), ``conditional`` and ``num_classes`` (the conditional VAE),
        ``binarize_seed`` (the fixed binarization of evaluation data), ``eval_k`` (also
        report -IWAE_{eval_k} in ``evaluate`` when > 1), ``data_info``.
    :param encoder: optional ``GaussianEncoder`` to use instead of the config's MLP (a test
        plugs in the exact posterior of a linear-Gaussian model).
    :param decoder: optional decoder module, likewise.
    """

    family = "vae"
    kind = "vae"
    likelihood_kind = "bound"
    sample_options = ("sampler", "temperature")

    def __init__(self, config, encoder=None, decoder=None):
        super().__init__(config)
        c = self.config
        self.latent_dim = _positive_int(c.get("latent_dim", 2), "latent_dim")
        self.decoder_kind = c.get("decoder", "gaussian")
        if self.decoder_kind not in DECODERS:
            raise ValueError(f"vae: decoder must be one of {', '.join(DECODERS)}, got "
                             f"{self.decoder_kind!r}")
        self.objective = c.get("objective", "elbo")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"vae: objective must be one of {', '.join(OBJECTIVES)}, got "
                             f"{self.objective!r}")
        self.k = _positive_int(c.get("k", 1), "k")
        self.beta = float(c.get("beta", 1.0))
        if not self.beta >= 0:
            raise ValueError(f"vae: beta must be >= 0, got {c.get('beta')!r}")
        if self.objective == "iwae" and self.beta != 1.0:
            raise ValueError(f"vae: beta={self.beta} applies to the ELBO objective only; the "
                             "IWAE bound has no separate KL term to weigh")
        self.conditional = bool(c.get("conditional", False))
        self.num_classes = int(c.get("num_classes") or self.data_info.get("num_classes") or 0)
        if self.conditional and self.num_classes < 1:
            raise ValueError("vae: conditional=True needs labelled data (num_classes > 0)")
        k_cond = self.num_classes if self.conditional else 0
        self.discrete = self.decoder_kind in ("bernoulli", "logistic")
        d = self.num_dims
        if d < 1:
            raise ValueError("vae: config['data_info'] must give the example 'shape'")
        if encoder is None:
            encoder = GaussianEncoder(self._encoder_net(d, k_cond), self.latent_dim, k_cond)
        if decoder is None:
            decoder = self._make_decoder(d, k_cond)
        self.encoder, self.decoder = encoder, decoder

    # ---- building
    def _mlp(self, n_in, n_out, k_cond):
        hidden = self.config.get("hidden", [200, 200])
        hidden = [int(hidden)] if isinstance(hidden, int) else [int(h) for h in hidden]
        return MLP(n_in, n_out, hidden=hidden, depth=None,
                   activation=self.config.get("activation", "tanh"), cond_features=k_cond)

    def _encoder_net(self, d, k_cond):
        kind_ = self.config.get("encoder", "mlp")
        if kind_ == "mlp":
            return self._mlp(d, 2 * self.latent_dim, k_cond)
        if kind_ != "conv":
            raise ValueError(f"vae: encoder must be 'mlp' or 'conv', got {kind_!r}")
        if self.data_info.get("kind") != "image" or len(self.example_shape) != 3:
            raise ValueError(f"vae: the conv encoder needs images (C, H, W); this data's "
                             f"examples have shape {self.example_shape}")
        return ConvEncoderNet(self.example_shape, 2 * self.latent_dim,
                              channels=self.config.get("conv_channels", [32, 64]),
                              activation=self.config.get("activation", "tanh"),
                              cond_features=k_cond)

    def _make_decoder(self, d, k_cond):
        kind_ = self.decoder_kind
        if kind_ == "bernoulli":
            if tuple(self.value_range) != (0.0, 1.0):
                raise ValueError(f"vae: the Bernoulli decoder models data in {{0, 1}}; this "
                                 f"data set's value range is {self.value_range}")
            return BernoulliDecoder(self._mlp(self.latent_dim, d, k_cond), k_cond)
        if kind_ == "gaussian":
            variance = self.config.get("variance", "learned")
            width = 2 * d if variance == "learned" else d
            return GaussianDecoder(self._mlp(self.latent_dim, width, k_cond), k_cond,
                                   variance=variance, sigma=self.config.get("sigma", 1.0))
        if not self.levels:
            raise ValueError("vae: the discretized logistic decoder needs image data with "
                             f"grey levels; data set {self.data_info.get('name', '?')!r} has "
                             "none (use decoder='gaussian')")
        lo, hi = self.value_range
        return DiscretizedLogisticDecoder(self._mlp(self.latent_dim, 2 * d, k_cond),
                                          self.levels, lo, hi, k_cond)

    # ---- Trainable
    def modules(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    def parameter_groups(self):
        return {"model": list(self.encoder.parameters()) + list(self.decoder.parameters())}

    def training_step(self, batch, step, ctx):
        x, y = batch
        c = self._labels(y, len(x), "training batch") if self.conditional else None
        x = self._training_data(x, ctx.generator)
        if self.objective == "iwae":
            bound = self.iwae(x, self.k, cond=c, generator=ctx.generator)   # (N,)
            loss = -bound.mean()
            ctx.optimize("model", loss)
            return {"loss": float(loss.item()), f"iwae{self.k}": float(bound.data.mean())}
        recon, kl = self.elbo_terms(x, cond=c, generator=ctx.generator, num_samples=self.k)
        loss = -(recon - self.beta * kl).mean()
        ctx.optimize("model", loss)
        return {"loss": float(loss.item()), "elbo": float((recon - kl).data.mean()),
                "recon": float(recon.data.mean()), "kl": float(kl.data.mean())}

    def _training_data(self, x, generator):
        """What the likelihood is trained on: a fresh binarization of grey data for the
        Bernoulli decoder; uniformly dequantized images for the Gaussian decoder."""
        from ...data import preprocessing
        if self.decoder_kind == "bernoulli" and not self.data_info.get("binary"):
            return preprocessing.binarize_dynamic(x, generator=generator)
        if self.decoder_kind == "gaussian" and self.levels:
            return autodiff.Tensor(self.dequantize(x.data, generator=generator))
        return x

    # ---- the bounds
    def _dtype(self):
        return next(iter(self.encoder.parameters())).dtype

    def _flat(self, x, who):
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        shape = self.example_shape
        if x.ndim < 1 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"vae.{who}: x must have shape (N, {', '.join(map(str, shape))}) "
                             f"for this model, got {tuple(x.shape)}")
        if x.dtype != self._dtype():
            x = x.to(self._dtype())
        return x.reshape(x.shape[0], self.num_dims)

    def _labels(self, cond, n, who):
        if not self.conditional:
            if cond is not None:
                raise ValueError(f"vae.{who}: got cond, but this VAE is unconditional "
                                 "(train it with --set conditional=true)")
            return None
        if cond is None:
            raise ValueError(f"vae.{who}: this conditional VAE needs cond, the labels (N,)")
        data = cond.data if isinstance(cond, autodiff.Tensor) else B.xp.asarray(cond)
        if data.shape != (n,) or data.dtype.kind not in "iu":
            raise ValueError(f"vae.{who}: cond must be integer labels of shape ({n},), got "
                             f"shape {tuple(data.shape)} and dtype {data.dtype}")
        if data.size and (int(data.min()) < 0 or int(data.max()) >= self.num_classes):
            raise ValueError(f"vae.{who}: labels must lie in [0, {self.num_classes}), got "
                             f"[{int(data.min())}, {int(data.max())}]")
        return autodiff.Tensor(data.astype(B.numpy.int64))

    def _check_binary(self, x_flat, who):
        if self.decoder_kind == "bernoulli":
            data = x_flat.data
            if data.size and not bool(B.xp.all((data == 0) | (data == 1))):
                raise ValueError(f"vae.{who}: the Bernoulli decoder's likelihood is a mass on "
                                 "{0, 1}; binarize x first (refgen.data.preprocessing."
                                 "binarize_fixed), or use bits_per_dim/evaluate, which do")

    def prior(self):
        return standard_normal_prior(self.latent_dim, self._dtype())

    def elbo_terms(self, x, cond=None, generator=None, num_samples=1):
        """(E_q[log p_theta(x | z, c)], KL(q(z | x, c) || p(z))), each (N,) nats.

        The expectation by ``num_samples`` reparameterised draws z = mu + sigma eps (their
        mean); the KL in closed form (``refgen.distributions.kl_divergence``, Kingma & Welling
        2014, App. B).
        """
        x_flat = self._flat(x, "elbo")
        self._check_binary(x_flat, "elbo")
        c = self._labels(cond, x_flat.shape[0], "elbo")
        q = self.encoder(x_flat, c)
        n, s = x_flat.shape[0], _positive_int(num_samples, "num_samples")
        z = q.rsample((s,), generator=generator).reshape(s * n, self.latent_dim)
        x_rep = autodiff.broadcast_to(x_flat, (s,) + tuple(x_flat.shape)).reshape(s * n, -1)
        c_rep = None if c is None else _repeat_labels(c, s)
        recon = self.decoder(z, c_rep).log_prob(x_rep).reshape(s, n).mean(0)
        kl = kl_divergence(q, self.prior())
        return recon, kl

    def elbo(self, x, cond=None, generator=None, num_samples=1):
        """ELBO(x) = E_q[log p_theta(x | z)] - KL(q(z | x) || p(z)), (N,) nats (Kingma &
        Welling 2014, Eq. 10), a one-draw (``num_samples``-draw) unbiased estimate."""
        recon, kl = self.elbo_terms(x, cond, generator, num_samples)
        return recon - kl

    def log_weights(self, x, k, cond=None, generator=None):
        """(k, N) importance log weights log p(x, z_i) - log q(z_i | x), z_i ~ q."""
        x_flat = self._flat(x, "iwae")
        self._check_binary(x_flat, "iwae")
        c = self._labels(cond, x_flat.shape[0], "iwae")
        q = self.encoder(x_flat, c)
        return importance_log_weights(x_flat, q, self.decoder, self.prior(),
                                      _positive_int(k, "k"), generator, c)

    def iwae(self, x, k, cond=None, generator=None):
        """IWAE_k(x) = log (1/k) sum_i p(x, z_i) / q(z_i | x), (N,) nats, one draw of the k
        samples (Burda et al. 2016, Eq. 8); k = 1 is the ELBO with a Monte Carlo KL."""
        return iwae_from_log_weights(self.log_weights(x, k, cond, generator))

    def log_likelihood_estimate(self, x, k=5000, cond=None, generator=None, chunk=20000):
        """The importance-sampled estimate of log p_theta(x) with k samples from q (Burda et
        al. 2016, Sec. 5.1) and its Monte Carlo standard error: two (N,) backend arrays,
        nats. An ESTIMATE (biased low for finite k, consistent), not a bound.

        The k samples are drawn in pieces of at most ``chunk`` decoder rows (memory).
        """
        k = _positive_int(k, "k")
        x_flat = self._flat(x, "log_likelihood_estimate")
        n = x_flat.shape[0]
        per = max(1, int(chunk) // max(n, 1))
        parts = []
        with autodiff.no_grad():
            for start in range(0, k, per):
                parts.append(self.log_weights(x, min(per, k - start), cond, generator).data)
        return estimate_from_log_weights(B.xp.concatenate(parts, axis=0))

    def log_prob(self, x, cond=None, generator=None):
        """The ELBO per example (N,) nats: a lower bound on log p_theta(x | c) (likelihood_kind
        'bound'); for the Bernoulli decoder x must be binary.

        A conditional VAE asked without ``cond`` bounds the marginal under uniform labels,
        log p(x) = log (1/K) sum_c p(x | c) >= log (1/K) sum_c exp(ELBO(x | c)) (each term
        is bounded; log-mean-exp over the K labels), so ``bits_per_dim`` works on unlabelled
        data too, at K times the cost.
        """
        if not self.conditional or cond is not None:
            return self.elbo(x, cond=cond, generator=generator)
        n = x.shape[0]
        per_label = [self.elbo(x, cond=autodiff.full((n,), label, dtype="int64"),
                               generator=generator) for label in range(self.num_classes)]
        return log_mean_exp(autodiff.stack(per_label, dim=0), dim=0)

    def bits_per_dim(self, x, cond=None, generator=None):
        """As ``GenerativeModel.bits_per_dim``; grey-level data under the Bernoulli decoder
        are first binarized by one Bernoulli(x) draw from ``generator`` (``Generator(
        binarize_seed)`` when None), as the binarized-MNIST benchmark does."""
        if self.decoder_kind == "bernoulli" and not self.data_info.get("binary"):
            from ...data import preprocessing
            if generator is None:
                generator = autodiff.Generator(int(self.config.get("binarize_seed", 0)))
            data = x.data if isinstance(x, autodiff.Tensor) else B.to_backend(x)
            if data.size and not bool(B.xp.all((data == 0) | (data == 1))):
                x = preprocessing.binarize_dynamic(autodiff.Tensor(data), generator)
        return super().bits_per_dim(x, cond=cond, generator=generator)

    # ---- encode, decode, sample
    def encode(self, x, cond=None):
        """q_phi(z | x, c): a ``DiagonalNormal`` with batch (N,) and event (d,)."""
        x_flat = self._flat(x, "encode")
        return self.encoder(x_flat, self._labels(cond, x_flat.shape[0], "encode"))

    def decoder_distribution(self, z, cond=None):
        """p_theta(x | z, c) over the flattened x: a distribution with event (D,)."""
        if not isinstance(z, autodiff.Tensor):
            z = autodiff.Tensor(B.to_backend(z))
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"vae.decode: z must have shape (N, {self.latent_dim}), got "
                             f"{tuple(z.shape)}")
        if z.dtype != self._dtype():
            z = z.to(self._dtype())
        return self.decoder(z, self._labels(cond, z.shape[0], "decode"))

    def decode(self, z, cond=None):
        """E[x | z, c] (N, *example_shape): Bernoulli probabilities, the Gaussian's mean, or
        the logistic's location clipped to the data range."""
        dist = self.decoder_distribution(z, cond)
        return self.decoder.mean(dist).reshape((z.shape[0],) + self.example_shape)

    def reconstruct(self, x, cond=None):
        """decode(mu_phi(x)): the decoder's mean at the encoder's mean, (N, *example_shape)."""
        return self.decode(self.encode(x, cond).mean, cond)

    def interpolate(self, x_a, x_b, steps=8, cond=None):
        """Decoded means along the straight line between the encoder means of x_a and x_b:
        z_t = (1 - t) mu(x_a) + t mu(x_b), t = 0, 1/(steps-1), ..., 1.

        x_a, x_b (N, *example_shape) (one example may be given without the N axis) ->
        (N, steps, *example_shape); ``cond`` labels both ends.
        """
        steps = _positive_int(steps, "steps")
        if steps < 2:
            raise ValueError(f"vae.interpolate: steps must be >= 2, got {steps}")
        x_a, x_b = (self._batched(v) for v in (x_a, x_b))
        if tuple(x_a.shape) != tuple(x_b.shape):
            raise ValueError(f"vae.interpolate: x_a and x_b differ in shape: "
                             f"{tuple(x_a.shape)} and {tuple(x_b.shape)}")
        n = x_a.shape[0]
        z_a, z_b = self.encode(x_a, cond).mean, self.encode(x_b, cond).mean   # (N, d)
        t = autodiff.Tensor(B.xp.linspace(0.0, 1.0, steps, dtype=z_a.dtype))[:, None, None]
        z = ((1.0 - t) * z_a + t * z_b).reshape(steps * n, self.latent_dim)   # (steps N, d)
        c_rep = None if cond is None else _repeat_labels(self._labels(cond, n, "interpolate"),
                                                         steps)
        out = self.decode(z, c_rep).reshape((steps, n) + self.example_shape)
        return out.transpose(0, 1)

    def _batched(self, x):
        if not isinstance(x, autodiff.Tensor):
            x = autodiff.Tensor(B.to_backend(x))
        return x.unsqueeze(0) if tuple(x.shape) == self.example_shape else x

    def sample(self, n, generator=None, cond=None, sampler=None, temperature=None,
               **options):
        """n draws (n, *example_shape): z ~ N(0, T^2 I) (T = ``temperature``, default 1),
        then x ~ p_theta(x | z, c) (``sampler="draw"``, the default) or x = E[x | z, c]
        (``sampler="mean"``: the smooth images VAE figures usually show). Gaussian draws of
        image data are clipped to the data range. A conditional VAE without ``cond`` draws
        the labels 0, 1, ..., K-1, 0, 1, ... in turn.
        """
        check_sample_options("vae", options, self.sample_options)
        n = _positive_int(n, "n")
        sampler = "draw" if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"vae.sample: sampler must be one of {', '.join(SAMPLERS)}, got "
                             f"{sampler!r}")
        temperature = 1.0 if temperature is None else float(temperature)
        if not temperature > 0:
            raise ValueError(f"vae.sample: temperature must be positive, got {temperature}")
        gen = generator if generator is not None else autodiff.default_generator()
        if self.conditional and cond is None:
            cond = autodiff.Tensor(B.xp.arange(n, dtype=B.numpy.int64) % self.num_classes)
        z = autodiff.Tensor(temperature * gen.normal((n, self.latent_dim), self._dtype()))
        dist = self.decoder_distribution(z, cond)
        if sampler == "mean":
            x = self.decoder.mean(dist)
        else:
            x = dist.sample(generator=gen)
            if self.decoder_kind == "gaussian" and self.levels:
                lo, hi = self.value_range
                x = autodiff.clamp(x, lo, hi)
        return x.reshape((n,) + self.example_shape)

    @property
    def nfe_per_sample(self):
        """One decoder evaluation per sample."""
        return 1

    # ---- evaluation
    def evaluate(self, dataset, ctx=None, batch_size=500, max_examples=None):
        """The negative ELBO (nats per example) and its bits/dim on ``dataset``; grey data
        under the Bernoulli decoder are binarized once with ``Generator(binarize_seed)``
        (one fixed binarization of the evaluation set). With ``eval_k`` > 1 in the config,
        also the negative IWAE_{eval_k} bound ``neg_iwae{k}``."""
        data = self._evaluation_data(dataset)
        out = super().evaluate(data, ctx, batch_size=batch_size, max_examples=max_examples)
        k = int(self.config.get("eval_k", 0) or 0)
        if k > 1:
            gen = ctx.generator if ctx is not None and getattr(ctx, "generator", None) \
                else autodiff.Generator(0)
            n = len(data) if max_examples is None else min(len(data), int(max_examples))
            total = 0.0
            with autodiff.no_grad():
                for start in range(0, n, batch_size):
                    x, c = self._dataset_batch(data, start, min(n, start + batch_size))
                    total += float(self.iwae(x, k, cond=c, generator=gen).data.sum())
            out[f"neg_iwae{k}"] = -total / n
        return out

    def _evaluation_data(self, dataset):
        from ...data import ArrayDataset, preprocessing
        if self.decoder_kind == "bernoulli" and not self.data_info.get("binary"):
            x = preprocessing.binarize_fixed(dataset.x, int(self.config.get("binarize_seed", 0)))
            info = dict(getattr(dataset, "info", {}) or {})
            return ArrayDataset(x, getattr(dataset, "y", None), name=getattr(dataset, "name", ""),
                                info=info)
        return dataset

    def _dataset_batch(self, data, start, stop):
        """Examples start..stop-1 as the likelihood sees them (images dequantized for the
        Gaussian decoder, with ``Generator(start)`` so evaluations repeat exactly) and
        their labels when the model is conditional."""
        x = autodiff.Tensor(data.x[start:stop])
        if self.levels and not self.discrete:
            x = autodiff.Tensor(self.dequantize(x.data, generator=autodiff.Generator(start)))
        c = None
        if self.conditional and getattr(data, "y", None) is not None:
            c = autodiff.Tensor(data.y[start:stop])
        return x, c

    def estimate_dataset(self, dataset, k=5000, max_examples=None, batch_size=1,
                         generator=None, start=0):
        """The k-sample log-likelihood estimate averaged over ``dataset`` (the evaluation
        binarization/dequantization as ``evaluate``): dict with ``nll_estimate`` (nats per
        example, -mean log p_hat), its Monte Carlo standard error ``nll_estimate_se``
        (sqrt(sum se_n^2) / N, the importance-sampling error only, given these examples)
        and ``examples``, over examples ``start``..``max_examples`` - 1 (chunks evaluated in
        order with one generator give the numbers of one call over all of them). For the
        Gaussian decoder on images the estimate is of the
        density of dequantized examples, and the D log((hi - lo)/L) term of
        ``bits_per_dim``'s convention is added, so the number compares with ``neg_elbo``."""
        data = self._evaluation_data(dataset)
        gen = generator if generator is not None else autodiff.Generator(0)
        stop = len(data) if max_examples is None else min(len(data), int(max_examples))
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < stop:
            raise ValueError(f"vae.estimate_dataset: start must be an int in 0..{stop - 1}, "
                             f"got {start!r}")
        n = stop - start
        total, var = 0.0, 0.0
        for lo in range(start, stop, batch_size):
            x, c = self._dataset_batch(data, lo, min(stop, lo + batch_size))
            est, se = self.log_likelihood_estimate(x, k, cond=c, generator=gen)
            total += float(est.sum())
            var += float((se * se).sum())
        if self.levels and not self.discrete:
            lo, hi = self.value_range
            total += n * self.num_dims * math.log((hi - lo) / self.levels)
        return {"nll_estimate": -total / n, "nll_estimate_se": math.sqrt(var) / n,
                "examples": n, "k": int(k)}


def _positive_int(value, name):
    """``value`` as an int >= 1; an integral float (5.0, as JSON may give) is accepted."""
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral:
        raise TypeError(f"vae: {name} must be a positive integer, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"vae: {name} must be a positive integer, got {value!r}")
    return int(value)


# ============================================================================ registry
def is_image(info):
    return dict(info or {}).get("kind") == "image"


def default_config(data_info):
    """The model for a data set: MNIST-sized images get Burda et al.'s (2016) architecture
    with one stochastic layer, 784-200-200-50 with tanh (and 50-200-200-784 back) and a
    Bernoulli decoder; 8x8 digits the same with a 16-d latent; 2-D points a 2-D latent,
    2 x 128 ReLU layers and a learned-variance Gaussian decoder. (The keys are described
    in ``VAE``'s docstring.)"""
    info = dict(data_info or {})
    base = {"beta": 1.0, "objective": "elbo", "k": 1, "conditional": False,
            "encoder": "mlp", "conv_channels": [32, 64],
            "num_classes": int(info.get("num_classes") or 0), "binarize_seed": 0, "eval_k": 0}
    if is_image(info):
        shape = tuple(info.get("shape", ()))
        large = len(shape) == 3 and shape[1] * shape[2] >= 28 * 28
        base.update(latent_dim=50 if large else 16, hidden=[200, 200], activation="tanh",
                    decoder="bernoulli", variance="learned", sigma=1.0)
    else:
        base.update(latent_dim=2, hidden=[128, 128], activation="relu", decoder="gaussian",
                    variance="learned", sigma=1.0)
    return base


def train_defaults(data_info):
    """Adam at 1e-3, batch 100 (Burda et al. 2016, Sec. 5, used Adam with batch 20 and
    3^i passes at lr 1e-3 * 10^(-i/7) for i = 0..7, 3280 passes in all; a larger batch
    suits a CPU better)."""
    if is_image(data_info):
        return {"steps": 20000, "batch_size": 100, "lr": 1e-3, "log_every": 100,
                "eval_every": 2000, "checkpoint_every": 1000}
    return {"steps": 5000, "batch_size": 256, "lr": 1e-3, "log_every": 100,
            "eval_every": 1000, "checkpoint_every": 1000}


def smoke_config(data_info):
    """A tiny model for the conformance test: one hidden layer of 16, a 2-D latent; images
    use the discretized logistic decoder (its log_prob takes the stored grey levels)."""
    config = default_config(data_info)
    config.update(latent_dim=2, hidden=[16])
    if is_image(data_info):
        config.update(decoder="logistic")
    return config


SMOKE_DATA = ["ring8:std=0.1", "digits"]


def build(config, data_info=None):
    """A ``VAE`` from its config (``data_info`` fills ``config["data_info"]`` if absent)."""
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    return VAE(config)
