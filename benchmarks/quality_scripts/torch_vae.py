"""python benchmarks/quality_scripts/torch_vae.py --minutes 10 [--cosine-time] [--n 1000]
    [--threads 1] [--data-dir DIR]

An independent PyTorch VAE 784-200-200-50 (tanh; benchmarks.family_workloads.torch_vae, the
model of the speed benchmark), trained as refgen's is (dynamic binarization, batch 100, the
ELBO with one draw, Adam 1e-3 [cosine over the time budget with --cosine-time]), for --minutes
of training time in its own process, ONE thread (--threads: intra-op threads for the whole
run, evaluation included). Then, on the first --n of the 10,000 MNIST test images in
refgen's fixed binarization (binarize_fixed seed 0):

    -ELBO, and the importance-sampled estimate of -log p(x) with k = 5000 draws of q(z|x),
    log p(x) ~= log (1/k) sum_i p(x, z_i) / q(z_i | x)   (Burda et al. 2016),

averaged over the images, +- the standard error over the images (what
``python -m refgen.families.vae estimate --n N`` reports for a refgen checkpoint)."""
import argparse
import math
import os
import sys
import time


def _threads_from_argv(argv):
    """--threads N, read before NumPy and torch load (they fix their thread pools then); a
    missing or bad value is left to argparse, which names it."""
    try:
        return max(1, int(argv[argv.index("--threads") + 1]))
    except (ValueError, IndexError):
        return 1


THREADS = _threads_from_argv(sys.argv)
os.environ["OMP_NUM_THREADS"] = str(THREADS)
import numpy as np  # host-side: a PyTorch reference script
import torch

torch.set_num_threads(THREADS)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from benchmarks.family_workloads import torch_vae  # noqa: E402
from refgen.data.preprocessing import binarize_fixed  # noqa: E402
from refgen.data.registry import load_dataset  # noqa: E402

LATENT = 50


def encode(model, x):
    h = model.encoder(x)
    return h[:, :LATENT], h[:, LATENT:]


def log_normal(z, mu, log_var):
    """sum_j log N(z_j; mu_j, exp(log_var_j)), per row."""
    return -0.5 * (math.log(2 * math.pi) + log_var + (z - mu) ** 2 / log_var.exp()).sum(-1)


def log_weights(model, x, k, gen):
    """(k,) log p(x, z_i) - log q(z_i | x) for one image x (1, 784), z_i ~ q(z | x)."""
    mu, log_var = encode(model, x)
    eps = torch.randn((k, LATENT), generator=gen, dtype=x.dtype)
    z = mu + (0.5 * log_var).exp() * eps
    logits = model.decoder(z)
    log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x.expand(k, -1), reduction="none").sum(1)
    log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    return log_px_z + log_pz - log_normal(z, mu, log_var)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--cosine-time", action="store_true")
    p.add_argument("--n", type=int, default=1000, help="test images for the estimate")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--data-dir", default="../shared/data/mnist")
    a = p.parse_args()
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    bs, budget = 100, 60 * a.minutes
    X = np.asarray(load_dataset("mnist", split="train", data_dir=a.data_dir).x,
                   dtype=np.float32).reshape(-1, 784)
    T = load_dataset("mnist", split="test", data_dir=a.data_dir).x
    T = np.asarray(binarize_fixed(np.asarray(T, dtype=np.float32)),
                   dtype=np.float32).reshape(-1, 784)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    m = torch_vae(torch)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    losses, elapsed, s = [], 0.0, 0
    perm, pos = rng.permutation(len(X)), 0
    while elapsed < budget:
        t0 = time.perf_counter()
        if a.cosine_time:
            for g in opt.param_groups:
                g["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, elapsed / budget)))
        if pos + bs > len(X):
            perm, pos = rng.permutation(len(X)), 0
        xb = X[perm[pos:pos + bs]]
        pos += bs
        xb = torch.from_numpy((rng.random(xb.shape) < xb).astype(np.float32))
        eps = torch.randn((bs, LATENT), generator=gen)
        loss = m.loss(xb, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        elapsed += time.perf_counter() - t0
        s += 1
        if s % 10000 == 0:
            print(s, "train -ELBO last 1000:", round(float(np.mean(losses[-1000:])), 3),
                  "time %.1f" % elapsed, flush=True)
    t0 = time.perf_counter()
    with torch.no_grad():
        x = torch.from_numpy(T[:a.n])
        neg_elbo = m.loss(x, torch.randn((len(x), LATENT), generator=gen)).item()
        est = np.array([-torch.logsumexp(log_weights(m, x[i:i + 1], a.k, gen).double(), 0).item()
                        + math.log(a.k) for i in range(len(x))])
    print(f"torch VAE ({torch.get_num_threads()} threads): {s} steps in {elapsed:.1f} s of "
          f"training; on the first {len(x)} test images: -ELBO {neg_elbo:.3f}, estimate "
          f"(k = {a.k}) {est.mean():.3f} +- {est.std(ddof=1) / math.sqrt(len(est)):.3f} nats "
          f"({time.perf_counter() - t0:.0f} s); "
          f"last train -ELBO {np.mean(losses[-1000:]):.3f}")


if __name__ == "__main__":
    main()
