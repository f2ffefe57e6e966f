"""python benchmarks/quality_scripts/torch_made.py --minutes 10 [--cosine-time] [--direct]
    [--data-dir DIR]

An independent PyTorch MADE 784-500-784 (benchmarks.family_workloads.torch_made), trained as
refgen's is (dynamic binarization, batch 100, Adam 1e-3 [cosine over the time budget with
--cosine-time]), for --minutes of training time in its own process, ONE thread (--direct:
with the masked direct input-to-output connection, refgen's `--set direct=true`); then the
test NLL on refgen's fixed binarization of the 10,000 MNIST test images (binarize_fixed seed 0)."""
import argparse, os, sys, time
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from benchmarks.family_workloads import torch_made
from refgen.data.registry import load_dataset
from refgen.data.preprocessing import binarize_fixed
p = argparse.ArgumentParser(); p.add_argument("--minutes", type=float, default=10); p.add_argument("--cosine-time", action="store_true")
p.add_argument("--direct", action="store_true")
p.add_argument("--data-dir", default="../shared/data/mnist")
a = p.parse_args()
bs, budget = 100, 60 * a.minutes
X = np.asarray(load_dataset("mnist", split="train", data_dir=a.data_dir).x, dtype=np.float32).reshape(-1, 784)
T = load_dataset("mnist", split="test", data_dir=a.data_dir).x
T = np.asarray(binarize_fixed(np.asarray(T, dtype=np.float32)), dtype=np.float32).reshape(-1, 784)
torch.manual_seed(0)
m = torch_made(torch, direct=a.direct)
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
rng = np.random.default_rng(0); losses = []; elapsed = 0.0; s = 0
perm = rng.permutation(len(X)); pos = 0
while elapsed < budget:
    t0 = time.perf_counter()
    if a.cosine_time:
        for g in opt.param_groups: g["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, elapsed / budget)))
    if pos + bs > len(X): perm = rng.permutation(len(X)); pos = 0
    xb = X[perm[pos:pos + bs]]; pos += bs
    xb = torch.from_numpy((rng.random(xb.shape) < xb).astype(np.float32))
    loss = m.loss(xb, None)
    opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
    elapsed += time.perf_counter() - t0; s += 1
    if s % 5000 == 0: print(s, "train loss last 1000:", round(float(np.mean(losses[-1000:])), 3), "time %.1f" % elapsed, flush=True)
with torch.no_grad():
    per = []
    for i in range(0, len(T), 500):
        x = torch.from_numpy(T[i:i + 500])
        logits = m.logits(x)
        per.append(torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).numpy())
per = np.concatenate(per)
print(f"torch MADE: {s} steps in {elapsed:.1f} s of training; test NLL {per.mean():.3f} +- {per.std(ddof=1) / np.sqrt(len(per)):.3f} nats on {len(per)} images; last train loss {np.mean(losses[-1000:]):.3f}")
