"""Family ``vae`` (kind "vae"): the variational autoencoder, the IWAE bound and the
conditional VAE (issue 11).

* ``model``: the mathematics, top to bottom: the ELBO, the IWAE bound, the importance-sampled
  log-likelihood estimate, the Gaussian encoder, the three decoders, the ``VAE`` model, and
  the registry functions (``default_config``, ``build``, ``train_defaults``,
  ``smoke_config``, ``SMOKE_DATA``);
* ``figures``: reconstructions, interpolations and the 2-D latent space;
* ``__main__``: ``python -m refgen.families.vae estimate|figures --checkpoint CKPT``.

``refgen train vae --data NAME`` trains it (``--set decoder=bernoulli|gaussian|logistic``,
``--set objective=iwae --set k=5``, ``--set beta=4``, ``--set conditional=true``,
``--set latent_dim=2``); ``refgen sample`` draws from it (``--sampler mean`` for decoder
means, ``--temperature T``, ``--label K`` for the conditional VAE); ``refgen eval`` reports
the negative ELBO in nats and bits/dim.
"""
from .model import (DECODERS, OBJECTIVES, SMOKE_DATA, VAE, BernoulliDecoder,
                    ConvEncoderNet, DiscretizedLogisticDecoder, GaussianDecoder,
                    GaussianEncoder, build, default_config, estimate_from_log_weights,
                    importance_log_weights, iwae_from_log_weights, kind, log_mean_exp,
                    smoke_config, standard_normal_prior, train_defaults)

__all__ = ["kind", "VAE", "GaussianEncoder", "ConvEncoderNet", "BernoulliDecoder",
           "GaussianDecoder", "DiscretizedLogisticDecoder", "log_mean_exp",
           "importance_log_weights", "iwae_from_log_weights", "estimate_from_log_weights",
           "standard_normal_prior", "default_config", "build", "train_defaults",
           "smoke_config", "SMOKE_DATA", "DECODERS", "OBJECTIVES"]
