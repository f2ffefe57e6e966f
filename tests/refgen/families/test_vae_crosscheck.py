"""Cross-check of the VAE family against PyTorch: the same weights and the same noise eps give
the same ELBO, IWAE bound and parameter gradients (float64), with the losses written the way
PyTorch users write them (``binary_cross_entropy_with_logits``, ``torch.distributions``'
``kl_divergence``, ``torch.logsumexp``)."""
import math

import numpy as np  # host-side: moving arrays between the two libraries
import pytest

import autodiff
from autodiff import backend as B
from refgen.data import load_dataset, preprocessing
from refgen.families import vae as V
from refgen.families.base import data_info_for_config

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.crosscheck


def _pair(conditional=False):
    data = load_dataset("digits", split="val")
    config = V.default_config(data.info)
    config.update(latent_dim=3, hidden=[12, 10], decoder="bernoulli", conditional=conditional,
                  data_info=data_info_for_config(data.info))
    model = V.build(config)
    x = preprocessing.binarize_fixed(data.x[:5], 0)
    return model, x, data.y[:5]


def _torch_mlp(mlp):
    """A function computing the refgen MLP with torch tensors that share its weights."""
    sd = {k: torch.tensor(B.to_numpy(v.data), requires_grad=True)
          for k, v in mlp.state_dict().items()}
    n = len(mlp.layers)

    def f(h, c=None):
        if c is not None:
            h = torch.cat([h, c], dim=-1)
        for i in range(n):
            h = torch.tanh(h @ sd[f"layers.{i}.weight"].T + sd[f"layers.{i}.bias"])
        return h @ sd["out.weight"].T + sd["out.bias"]
    return f, sd


def _torch_log_weights(model, x, y, k, seed):
    enc, enc_sd = _torch_mlp(model.encoder.net)
    dec, dec_sd = _torch_mlp(model.decoder.net)
    d = model.latent_dim
    xt = torch.tensor(B.to_numpy(x).reshape(x.shape[0], -1))
    c = None
    if y is not None:
        c = torch.nn.functional.one_hot(torch.tensor(B.to_numpy(y)), 10).double()
    h = enc(xt, c)
    mu, log_var = h[:, :d], h[:, d:]
    std = torch.exp(0.5 * log_var)
    eps = torch.tensor(B.to_numpy(autodiff.Generator(seed).normal((k, x.shape[0], d),
                                                                   "float64")))
    z = mu + std * eps                                                   # (k, N, d)
    c_k = None if c is None else c.expand(k, -1, -1)
    logits = dec(z, c_k)
    log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, xt.expand(k, -1, -1), reduction="none").sum(-1)
    normal = torch.distributions.Normal
    log_pz = normal(0.0, 1.0).log_prob(z).sum(-1)
    log_q = normal(mu, std).log_prob(z).sum(-1)
    kl = torch.distributions.kl_divergence(normal(mu, std), normal(0.0, 1.0)).sum(-1)
    return log_px_z, log_pz, log_q, kl, enc_sd, dec_sd


def _grads(module):
    return {k: B.to_numpy(p.grad.data) for k, p in module.net.named_parameters()}


@pytest.mark.parametrize("conditional", [False, True])
def test_elbo_and_its_gradients_match_pytorch(conditional):
    model, x, y = _pair(conditional)
    cond = autodiff.tensor(y) if conditional else None
    elbo = model.elbo(autodiff.tensor(x), cond, generator=autodiff.Generator(3))
    elbo.sum().backward()
    log_px_z, _, _, kl, enc_sd, dec_sd = _torch_log_weights(model, x, y if conditional
                                                            else None, 1, 3)
    ref = log_px_z[0] - kl
    ref.sum().backward()
    np.testing.assert_allclose(B.to_numpy(elbo.data), ref.detach().numpy(), rtol=1e-12)
    for module, sd in ((model.encoder, enc_sd), (model.decoder, dec_sd)):
        for name, g in _grads(module).items():
            np.testing.assert_allclose(g, sd[name].grad.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=name)


def test_iwae_bound_and_its_gradients_match_pytorch():
    model, x, _ = _pair()
    k = 7
    bound = model.iwae(autodiff.tensor(x), k, generator=autodiff.Generator(5))
    bound.sum().backward()
    log_px_z, log_pz, log_q, _, enc_sd, dec_sd = _torch_log_weights(model, x, None, k, 5)
    ref = torch.logsumexp(log_px_z + log_pz - log_q, dim=0) - math.log(k)
    ref.sum().backward()
    np.testing.assert_allclose(B.to_numpy(bound.data), ref.detach().numpy(), rtol=1e-12)
    for module, sd in ((model.encoder, enc_sd), (model.decoder, dec_sd)):
        for name, g in _grads(module).items():
            np.testing.assert_allclose(g, sd[name].grad.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=name)
