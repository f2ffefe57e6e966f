"""The training steps of the family quality runs, each against the same model written in PyTorch.

refgen side: the family's own model (``refgen.families.FAMILIES[name].build``) and its own
``training_step(batch, step, ctx)`` with the loop's ``TrainContext`` (Adam, no gradient
clipping), so the benchmark times what ``refgen train`` runs. PyTorch side: the same model,
written independently below from the papers' equations (and the family's configuration),
with a plain ``zero_grad / loss / backward / Adam.step`` step. Neither side clips gradients.

| key | model (config) | batch |
|---|---|---|
| realnvp | RealNVP 2-D, 8 affine couplings, MLP 2x128 conditioners, tanh-bounded log-scale | 512 points |
| ddpm | DDPM eps-prediction, MLP 3x128 (SiLU) on [x_t, Linear(SiLU(Linear(sinusoid(t))))] | 512 points |
| vae | VAE 784-200-200-50 (tanh), Bernoulli decoder, one-draw ELBO | 100 binary images |
| made | MADE 784-500-784 (ReLU), Bernoulli outputs | 100 binary images |
| pixelcnn | plain PixelCNN: 7x7 type A + 5 residual blocks with 3x3 type B, 64 channels, Bernoulli | 32 binary 28x28 images |

Data: the 2-D points are draws of ring8:std=0.1 (8 Gaussians on a circle of radius 2), the
images are Bernoulli(0.13) pixels (MNIST's share of ink): the cost of these dense steps does
not depend on the pixel values, and the benchmark then needs no data files.

Same loss (float64, ``check``): both models get the same parameters (refgen's named
parameters in order onto the PyTorch module's, shapes checked; every parameter perturbed to
random values first, since several families start from a zero last layer) and the same
batch and noise; the losses must agree to rtol 1e-8 before and after one Adam step.
The noise of the VAE and the DDPM is drawn from an ``autodiff.Generator`` the way the family
draws it and handed to PyTorch as arrays.
"""
import math

import numpy as np  # host-side: batches and weights travel between the frameworks as NumPy arrays

POINTS = {"kind": "points", "shape": [2], "name": "ring8:std=0.1"}
# ArrayDataset.info of mnist with binarize="fixed" (the keys a family reads)
BINARY_MNIST = {"kind": "image", "shape": [1, 28, 28], "levels": 256, "value_range": [0.0, 1.0],
                "binary": True, "num_classes": 10, "name": "mnist"}

# PyTorch steps/s measured on this kind of machine, quoted from issue 10 (information only)
ISSUE_TORCH_STEPS_PER_S = {"realnvp": "118-125", "ddpm": "552", "vae": "228",
                           "made": "128-141", "pixelcnn": "4.1 (batch 32-64)"}


def ring8_batch(rng, n, dtype):
    """x (n, 2): a uniform mode k of 8 on the circle of radius 2, plus N(0, 0.1^2 I)."""
    k = rng.integers(0, 8, size=n)
    centres = 2.0 * np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], axis=1)
    return (centres + 0.1 * rng.standard_normal((n, 2))).astype(dtype)


def binary_images(rng, n, dtype):
    """x (n, 1, 28, 28) in {0, 1}: Bernoulli(0.13) pixels."""
    return (rng.random((n, 1, 28, 28)) < 0.13).astype(dtype)


class FamilyWorkload:
    """One family's step. ``family`` names the registry entry, ``config`` overrides its
    default config, ``make_batch(rng, n, dtype)`` the data, ``torch_model(torch)`` the
    independent PyTorch model, whose ``loss(x, noise)`` takes explicit noise (or None)."""

    def __init__(self, key, label, family, data_info, config, batch_size, make_batch,
                 torch_model, target, lr=1e-3):
        self.key, self.label, self.family = key, label, family
        self.data_info, self.config = data_info, config
        self.batch_size, self.make_batch = batch_size, make_batch
        self.torch_model, self.target, self.lr = torch_model, target, lr
        self.unit, self.per = "ms/step", 1

    # ---- refgen
    def refgen_model(self, dtype="float32"):
        import autodiff
        from refgen.families import FAMILIES
        prev = autodiff.get_default_dtype()
        autodiff.set_default_dtype(dtype)
        try:
            fam = FAMILIES[self.family]
            cfg = fam.default_config(self.data_info)
            cfg.update(self.config)
            return fam.build(cfg, self.data_info)
        finally:
            autodiff.set_default_dtype(prev)

    def refgen_step(self, model, x, seed=0):
        """The family's own training step under the loop's TrainContext (Adam, lr, no clip)."""
        import autodiff
        from autodiff import optim
        from refgen.train.config import TrainConfig
        from refgen.train.context import TrainContext
        groups = model.parameter_groups()
        opts = {p: optim.Adam(ps, lr=self.lr) for p, ps in groups.items()}
        ctx = TrainContext(TrainConfig(grad_clip=None), groups, opts, autodiff.Generator(seed))
        batch = (autodiff.tensor(x), None)
        counter = [0]

        def step():
            ctx.begin_step(counter[0])
            out = model.training_step(batch, counter[0], ctx)
            counter[0] += 1
            return out["loss"]
        return step

    # ---- torch
    def torch_step(self, torch, model, x, seed=0):
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        xt = torch.from_numpy(x)
        gen = torch.Generator().manual_seed(seed)

        def step():
            opt.zero_grad()
            loss = model.loss(xt, model.draw_noise(xt, gen))
            loss.backward()
            opt.step()
            return loss.item()
        return step


# --------------------------------------------------------------------------- PyTorch models
def torch_realnvp(torch, d=2, num_layers=8, hidden=128, scale_bound=3.0):
    """RealNVP (Dinh et al. 2017, Eq. 9) on vectors: with b the alternating mask,
    (s_raw, t) = MLP(b x), s = (1 - b) bound tanh(s_raw / bound), x <- x exp(s) + (1 - b) t,
    log p(x) = log N(z; 0, I) + sum of s; loss = -mean log p / D."""
    nn = torch.nn

    class RealNVP(nn.Module):
        def __init__(self):
            super().__init__()
            self.nets = nn.ModuleList([
                nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                              nn.ReLU(), nn.Linear(hidden, 2 * d)) for _ in range(num_layers)])
            for i in range(num_layers):
                self.register_buffer(f"mask{i}", ((torch.arange(d) + i % 2) % 2 == 0).double())

        def log_prob(self, x):
            logdet = 0.0
            for i, net in enumerate(self.nets):
                b = getattr(self, f"mask{i}").to(x.dtype)
                params = net(x * b).view(x.shape[0], 2, d)
                s = scale_bound * torch.tanh(params[:, 0] / scale_bound) * (1 - b)
                x = x * torch.exp(s) + params[:, 1] * (1 - b)
                logdet = logdet + s.sum(1)
            return -0.5 * (x * x).sum(1) - 0.5 * d * math.log(2 * math.pi) + logdet

        def draw_noise(self, x, gen):
            return None

        def loss(self, x, noise):
            return -self.log_prob(x).mean() / d

    return RealNVP()


def torch_ddpm(torch, d=2, hidden=128, depth=3, emb_dim=128, timesteps=1000):
    """DDPM (Ho et al. 2020, Eq. 14) with linear betas 1e-4..0.02: t ~ U{0..T-1},
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, loss = |eps - eps_theta(x_t, t)|^2
    (mean); eps_theta = MLP([x_t, Linear(SiLU(Linear(sinusoid(t))))]) with SiLU."""
    nn, F = torch.nn, torch.nn.functional

    class Denoiser(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_embed = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(),
                                            nn.Linear(emb_dim, emb_dim))
            widths = [d + emb_dim] + [hidden] * depth
            self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
            self.out = nn.Linear(hidden, d)
            betas = torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64)
            self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0))
            half = emb_dim // 2
            self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(
                half, dtype=torch.float64) / half))

        def forward(self, x, t):
            args = t.to(x.dtype)[:, None] * self.freqs.to(x.dtype)[None, :]
            emb = self.time_embed(torch.cat([torch.sin(args), torch.cos(args)], 1))
            h = torch.cat([x, emb], 1)
            for layer in self.layers:
                h = F.silu(layer(h))
            return self.out(h)

        def draw_noise(self, x, gen):
            t = torch.randint(0, timesteps, (x.shape[0],), generator=gen)
            return t, torch.randn(x.shape, generator=gen, dtype=x.dtype)

        def loss(self, x0, noise):
            t, eps = noise
            ab = self.alpha_bar[t].to(x0.dtype)[:, None]
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
            return F.mse_loss(self(xt, t), eps)

    return Denoiser()


def _bernoulli_log_prob(F, logits, x):
    """sum_j x_j log sigmoid(l_j) + (1 - x_j) log sigmoid(-l_j), per example."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def torch_vae(torch, d=784, hidden=(200, 200), latent=50):
    """VAE (Kingma & Welling 2014): q(z|x) = N(mu, exp(log_var)) from a tanh MLP, Bernoulli
    p(x|z) from a tanh MLP; loss = -mean(E_q log p(x|z) - KL(q || N(0, I))), one draw."""
    nn, F = torch.nn, torch.nn.functional

    def mlp(a, out):
        sizes = [a, *hidden]
        mods = []
        for i, o in zip(sizes[:-1], sizes[1:]):
            mods += [nn.Linear(i, o), nn.Tanh()]
        return nn.Sequential(*mods, nn.Linear(sizes[-1], out))

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = mlp(d, 2 * latent)
            self.decoder = mlp(latent, d)

        def draw_noise(self, x, gen):
            return torch.randn((x.shape[0], latent), generator=gen, dtype=x.dtype)

        def loss(self, x, eps):
            x = x.flatten(1)
            h = self.encoder(x)
            mu, log_var = h[:, :latent], h[:, latent:]
            z = mu + torch.exp(0.5 * log_var) * eps
            recon = _bernoulli_log_prob(F, self.decoder(z), x)
            kl = 0.5 * (mu * mu + torch.exp(log_var) - 1.0 - log_var).sum(1)
            return -(recon - kl).mean()

    return VAE()


def made_masks(d, hidden, rng):
    """MADE masks (Germain et al. 2015, Eq. 12-13) for the natural ordering and random hidden
    degrees m(k) in 1..D-1: W1 mask [m(k) >= i], output mask [d > m(k)]."""
    m_in = np.arange(1, d + 1)
    m_h = rng.integers(1, d, size=hidden)
    return ((m_h[:, None] >= m_in[None, :]).astype(np.float64),
            (m_in[:, None] > m_h[None, :]).astype(np.float64))


def torch_made(torch, d=784, hidden=500, direct=False):
    """MADE 784-500-784 (ReLU), Bernoulli outputs; the network sees x in [-1, 1] (2x - 1).
    ``direct``: add the masked input-to-output map (no bias), mask [d > j] (refgen's
    ``MADE(direct=True)``; Germain et al.'s ``direct_input_connect="Output"``)."""
    nn, F = torch.nn, torch.nn.functional

    class MADE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)
            m1, m2 = made_masks(d, hidden, np.random.default_rng(0))
            self.register_buffer("mask1", torch.from_numpy(m1))
            self.register_buffer("mask2", torch.from_numpy(m2))
            self.direct = nn.Linear(d, d, bias=False) if direct else None
            if direct:
                m_in = np.arange(1, d + 1)
                self.register_buffer("mask0", torch.from_numpy(
                    (m_in[:, None] > m_in[None, :]).astype(np.float64)))

        def draw_noise(self, x, gen):
            return None

        def logits(self, x):
            """Bernoulli logits (N, D) of p(x_d | x_{<d}) for x (N, D) in {0, 1}."""
            m1, m2 = self.mask1.to(x.dtype), self.mask2.to(x.dtype)
            h = F.relu(F.linear(2 * x - 1, self.fc1.weight * m1, self.fc1.bias))
            out = F.linear(h, self.fc2.weight * m2, self.fc2.bias)
            if self.direct is not None:
                out = out + F.linear(2 * x - 1, self.direct.weight * self.mask0.to(x.dtype))
            return out

        def loss(self, x, noise):
            x = x.flatten(1)
            return -_bernoulli_log_prob(F, self.logits(x), x).mean()

    return MADE()


def pixelcnn_mask(k, mask_type):
    """(k, k) PixelCNN mask (van den Oord et al. 2016a, Fig. 2): the rows above the centre and
    the centre row left of the centre; type B keeps the centre too."""
    m = np.ones((k, k))
    c = k // 2
    m[c, c + (1 if mask_type == "B" else 0):] = 0
    m[c + 1:] = 0
    return m


def torch_pixelcnn(torch, channels=64, num_layers=5):
    """PixelCNN (van den Oord et al. 2016a): 7x7 type A, residual blocks
    x + 1x1(ReLU(3x3_B(ReLU(1x1(ReLU(x)))))) with h -> h/2 -> h/2 -> h, then
    ReLU-1x1-ReLU-1x1 to one Bernoulli logit per pixel; the network sees 2x - 1."""
    nn, F = torch.nn, torch.nn.functional
    half = channels // 2

    class Masked(nn.Conv2d):
        def __init__(self, cin, cout, k, mask_type):
            super().__init__(cin, cout, k, padding=k // 2)
            self.register_buffer("mask", torch.from_numpy(pixelcnn_mask(k, mask_type)))

        def forward(self, x):
            return F.conv2d(x, self.weight * self.mask.to(x.dtype), self.bias, padding=self.padding)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.reduce = nn.Conv2d(channels, half, 1)
            self.conv = Masked(half, half, 3, "B")
            self.expand = nn.Conv2d(half, channels, 1)

        def forward(self, x):
            return x + self.expand(F.relu(self.conv(F.relu(self.reduce(F.relu(x))))))

    class PixelCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = Masked(1, channels, 7, "A")
            self.blocks = nn.ModuleList([Block() for _ in range(num_layers)])
            self.out1, self.out2 = nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, 1, 1)

        def draw_noise(self, x, gen):
            return None

        def loss(self, x, noise):
            h = self.first(2 * x - 1)
            for block in self.blocks:
                h = block(h)
            logits = self.out2(F.relu(self.out1(F.relu(h))))
            return -_bernoulli_log_prob(F, logits, x).mean()

    return PixelCNN()


FAMILY_WORKLOADS = {
    "realnvp": FamilyWorkload("realnvp", "(g) RealNVP 2-D, 8 couplings MLP 2x128, B=512", "realnvp",
                              POINTS, {}, 512, ring8_batch, torch_realnvp, target=1 / 1.5),
    "ddpm": FamilyWorkload("ddpm", "(h) DDPM MLP 3x128 + time embedding, B=512", "ddpm", POINTS,
                           {}, 512, ring8_batch, torch_ddpm, target=1 / 1.5),
    "vae": FamilyWorkload("vae", "(i) VAE 784-200-200-50, B=100", "vae", BINARY_MNIST, {}, 100,
                          binary_images, torch_vae, target=1.0),
    # without the direct connection (the binary-pixel default since this table's runs): the
    # workload of record, so the recorded rows stay comparable
    "made": FamilyWorkload("made", "(j) MADE 784-500-784, B=100", "made", BINARY_MNIST,
                           {"direct": False}, 100,
                           binary_images, torch_made, target=1.0),
    "pixelcnn": FamilyWorkload("pixelcnn", "(k) PixelCNN 7x7 A + 5 res 3x3 B, 64 ch, B=32",
                               "pixelcnn", BINARY_MNIST, {"architecture": "plain"}, 32,
                               binary_images, torch_pixelcnn, target=1.0),
}


# --------------------------------------------------------------------------- the float64 check
def _refgen_params(model):
    """refgen's trainable parameters in named order across the model's modules."""
    out = []
    for mod in model.modules().values():
        out += [(name, p) for name, p in mod.named_parameters()]
    return out


def _refgen_loss(w, model, x, seed):
    """The family's float64 loss on x with noise drawn from autodiff.Generator(seed), and that
    noise as NumPy arrays for PyTorch (None for the noiseless losses)."""
    import autodiff
    import autodiff.functional as F
    xt = autodiff.tensor(x)
    if w.family in ("realnvp",):
        return -model.log_prob(xt).mean() / x.shape[1], None
    if w.family in ("made", "pixelcnn"):
        return -model.log_prob_flat(model._flat(xt), None, step=0).mean(), None
    if w.family == "vae":
        recon, kl = model.elbo_terms(xt, generator=autodiff.Generator(seed))
        # DiagonalNormal.rsample((1,)) draws generator.normal((1, N, d)) once
        eps = autodiff.Generator(seed).normal((1, x.shape[0], model.latent_dim), np.float64)[0]
        return -(recon - kl).mean(), autodiff.backend.to_numpy(eps)
    if w.family == "ddpm":
        rng = np.random.default_rng(seed)
        t = rng.integers(0, model.schedule.num_timesteps, size=x.shape[0])
        eps = rng.standard_normal(x.shape)
        x0 = model.to_model_space(xt)
        xt_ = model.schedule.q_sample(x0, autodiff.backend.xp.asarray(t), autodiff.tensor(eps))
        out, _ = model._net(xt_, model.schedule.timesteps[t].astype(np.float64), None)
        return F.mse_loss(out, autodiff.tensor(eps)), (t, eps)
    raise KeyError(w.family)


def check(w, seed=0, batch_size=None):
    """Same parameters, batch and noise in float64 -> the same loss in both frameworks, before
    and after one Adam step (lr 1e-3). Returns the largest relative difference."""
    import autodiff
    import torch
    from autodiff import optim
    rng = np.random.default_rng(seed)
    x = w.make_batch(rng, batch_size or w.batch_size, np.float64)
    model = w.refgen_model("float64")
    params = _refgen_params(model)
    with autodiff.no_grad():
        for _, p in params:
            p.data[...] = 0.05 * rng.standard_normal(p.shape)
    torch.manual_seed(seed)
    tm = w.torch_model(torch).double()
    tparams = list(tm.parameters())
    if len(tparams) != len(params):
        raise AssertionError(f"{w.key}: {len(params)} refgen parameters, {len(tparams)} torch")
    with torch.no_grad():
        for (name, p), tp in zip(params, tparams):
            if tuple(p.shape) != tuple(tp.shape):
                raise AssertionError(f"{w.key}: {name} {tuple(p.shape)} vs torch {tuple(tp.shape)}")
            tp.copy_(torch.from_numpy(p.numpy().copy()))
        if w.family == "made":   # the refgen MADE's masks (seeded degrees) onto the torch model
            layers = model.net.layers
            tm.mask1.copy_(torch.from_numpy(layers[0].mask.numpy().copy()))
            tm.mask2.copy_(torch.from_numpy(layers[1].mask.numpy().copy()))
    ropt = optim.Adam([p for _, p in params], lr=w.lr)
    topt = torch.optim.Adam(tparams, lr=w.lr)
    xt = torch.from_numpy(x)
    errs = []
    for when in ("at step 0", "after one Adam step"):
        r_loss, noise = _refgen_loss(w, model, x, seed)
        if isinstance(noise, tuple):
            tnoise = tuple(torch.from_numpy(np.asarray(a)) for a in noise)
        else:
            tnoise = None if noise is None else torch.from_numpy(noise)
        t_loss = tm.loss(xt, tnoise)
        r, t = float(r_loss.item()), float(t_loss.item())
        err = abs(r - t) / max(abs(t), 1e-300)
        if not err <= 1e-8:
            raise AssertionError(f"{w.key}: loss {when}: refgen {r!r} != torch {t!r} "
                                 f"(rel {err:.3g}, rtol 1e-8)")
        errs.append(err)
        ropt.zero_grad()
        r_loss.backward()
        ropt.step()
        topt.zero_grad()
        t_loss.backward()
        topt.step()
    return max(errs)
