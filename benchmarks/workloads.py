"""The workloads of issue 2, each a training step (or op chain) built for either framework.

A workload knows how to make its batch (NumPy arrays, the same for both frameworks),
its model (``benchmarks.models``), its loss and its optimizer. ``check_same_loss``
runs both frameworks in float64 from the same weights and the same batch and fails
loudly unless the losses agree (before and after one optimizer step); ``make_step``
returns the float32 step that is timed.
"""
import dataclasses
from typing import Callable, Optional

import numpy as np  # host-side: batches are made once on the host and handed to both frameworks

from . import models

CHECK_RTOL = 1e-8


class LossMismatch(AssertionError):
    pass


@dataclasses.dataclass
class Workload:
    key: str
    label: str
    target: float                      # refgen/torch ratio of medians to reach (issue 10's targets)
    unit: str                          # "ms/step" or "us/op"
    make_model: Optional[Callable] = None
    make_batch: Optional[Callable] = None   # (rng, dtype, batch_size) -> tuple of arrays
    loss: Optional[Callable] = None         # (fw, model, *tensors) -> scalar loss
    optimizer: tuple = ("Adam", {"lr": 1e-3})
    batch_size: int = 64
    per: int = 1                       # the step's time is divided by this (ops per chain)


# --------------------------------------------------------------------------- batches
def _classification_batch(shape, classes):
    def make(rng, dtype, n):
        x = rng.standard_normal((n, *shape)).astype(dtype)
        y = rng.integers(0, classes, size=n).astype(np.int64)
        return x, y
    return make


def _ddpm_batch(rng, dtype, n, steps=1000):
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, Eq. 4), linear betas."""
    betas = np.linspace(1e-4, 0.02, steps)
    alpha_bar = np.cumprod(1.0 - betas)
    x0 = np.tanh(rng.standard_normal((n, 1, 28, 28)))
    t = rng.integers(0, steps, size=n)
    eps = rng.standard_normal((n, 1, 28, 28))
    ab = alpha_bar[t][:, None, None, None]
    x_t = np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps
    return x_t.astype(dtype), t.astype(dtype), eps.astype(dtype)


def _token_batch(rng, dtype, n, vocab=256, block=64):
    seq = rng.integers(0, vocab, size=(n, block + 1)).astype(np.int64)
    return seq[:, :-1].copy(), seq[:, 1:].copy()


# --------------------------------------------------------------------------- losses
def _ce_loss(fw, model, x, y):
    return fw.F.cross_entropy(model(x), y)


def _ddpm_loss(fw, model, x_t, t, eps):
    return fw.F.mse_loss(model(x_t, t), eps)


def _lm_loss(fw, model, idx, targets):
    logits = model(idx)
    return fw.F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# --------------------------------------------------------------------------- (a) op chain
CHAIN_LEN = 100


def op_chain(x, c):
    """100 small elementwise ops on x; values stay in a bounded range (no overflow).

    The cycle (scalar mul, tensor add, tanh, sigmoid, exp) repeats 20 times.
    """
    for _ in range(CHAIN_LEN // 5):
        x = x * 0.5
        x = x + c
        x = x.tanh()
        x = x.sigmoid()
        x = x.exp()
    return x


def _chain_batch(rng, dtype, n):
    return rng.standard_normal((8, 8)).astype(dtype), (0.1 * rng.standard_normal((8, 8))).astype(dtype)


WORKLOADS = {
    "ops": Workload("ops", "(a) 100-op elementwise chain on (8,8), fwd+bwd", 0.8, "us/op",
                    make_batch=_chain_batch, per=CHAIN_LEN),
    "mlp": Workload("mlp", "(b) MLP 784-512-512-10, B=128, Adam step", 1.0, "ms/step",
                    models.make_mlp, _classification_batch((784,), 10), _ce_loss,
                    ("Adam", {"lr": 1e-3}), batch_size=128),
    "conv": Workload("conv", "(c) conv net 64x1x28x28, Adam step", 1.5, "ms/step",
                     models.make_convnet, _classification_batch((1, 28, 28), 10), _ce_loss,
                     ("Adam", {"lr": 1e-3}), batch_size=64),
    "unet": Workload("unet", "(d) DDPM U-Net 64x1x28x28, Adam step", 2.0, "ms/step",
                     models.make_unet, _ddpm_batch, _ddpm_loss, ("Adam", {"lr": 2e-4}), batch_size=64),
    "transformer": Workload("transformer", "(e) Transformer 4L d128 T64 B32, AdamW step", 1.2,
                            "ms/step", models.make_transformer, _token_batch, _lm_loss,
                            ("AdamW", {"lr": 3e-4, "weight_decay": 0.01}), batch_size=32),
}


# --------------------------------------------------------------------------- steps
def _tensors(fw, arrays):
    return [fw.tensor(a) for a in arrays]


def make_chain_step(fw, arrays):
    """One forward and backward pass through the op chain; returns (step, x)."""
    x = fw.tensor(arrays[0], requires_grad=True)
    c = fw.tensor(arrays[1])

    def step():
        x.grad = None
        out = op_chain(x, c).sum()
        out.backward()
        return out
    return step, x


def make_chain_forward(fw, arrays):
    x = fw.tensor(arrays[0], requires_grad=True)
    c = fw.tensor(arrays[1])
    return lambda: op_chain(x, c)


def build_pair(w, torch_fw, refgen_fw, dtype, seed=0):
    """The PyTorch model (PyTorch's init, seeded) and a refgen model holding the same weights."""
    torch_fw.manual_seed(seed)
    tm = torch_fw.build(w.make_model, dtype)
    rm = refgen_fw.build(w.make_model, dtype)
    refgen_fw.load_arrays(rm, torch_fw.state_arrays(tm))
    return tm, rm


def make_optimizer(fw, w, model):
    name, kwargs = w.optimizer
    return getattr(fw.optim, name)(model.parameters(), **kwargs)


def make_step(fw, w, model, arrays):
    """The timed training step: zero_grad, forward, loss, backward, optimizer step."""
    opt = make_optimizer(fw, w, model)
    batch = _tensors(fw, arrays)

    def step():
        opt.zero_grad()
        loss = w.loss(fw, model, *batch)
        loss.backward()
        opt.step()
        return loss
    return step


def _assert_close(what, r, t, rtol=CHECK_RTOL):
    r, t = np.asarray(r, dtype=np.float64), np.asarray(t, dtype=np.float64)
    err = np.max(np.abs(r - t) / np.maximum(np.abs(t), 1e-300)) if r.size else 0.0
    if r.shape != t.shape or not np.all(np.abs(r - t) <= rtol * np.abs(t) + 1e-300):
        raise LossMismatch(f"{what}: refgen {r.ravel()[:4]} != torch {t.ravel()[:4]} "
                           f"(shapes {r.shape} vs {t.shape}, max rel err {err:.3g}, rtol {rtol})")
    return float(err)


def check_same_loss(w, torch_fw, refgen_fw, batch_size=None, seed=0):
    """float64: same weights, same batch -> same loss (and same loss after one step).

    Returns the largest relative difference seen; raises ``LossMismatch`` otherwise.
    """
    rng = np.random.default_rng(seed)
    arrays = w.make_batch(rng, np.float64, batch_size or w.batch_size)
    if w.key == "ops":
        outs, grads = [], []
        for fw in (refgen_fw, torch_fw):
            step, x = make_chain_step(fw, arrays)
            outs.append(fw.to_numpy(step()))
            grads.append(fw.to_numpy(x.grad))
        return max(_assert_close("op chain output", *outs), _assert_close("op chain grad", *grads))
    tm, rm = build_pair(w, torch_fw, refgen_fw, "float64", seed)
    t_step, r_step = make_step(torch_fw, w, tm, arrays), make_step(refgen_fw, w, rm, arrays)
    errs = [_assert_close(f"{w.key}: loss at step 0", refgen_fw.to_numpy(r_step()),
                          torch_fw.to_numpy(t_step()))]
    # A second step's loss is computed with the weights after one optimizer update, so it
    # also checks the backward pass and the optimizer's update rule.
    errs.append(_assert_close(f"{w.key}: loss after one {w.optimizer[0]} step",
                              refgen_fw.to_numpy(r_step()), torch_fw.to_numpy(t_step())))
    return max(errs)


def make_timed_pair(w, torch_fw, refgen_fw, batch_size=None, seed=0, forward_only=False):
    """(refgen_step, torch_step) in float32 from the same weights and batch."""
    rng = np.random.default_rng(seed + 1)
    arrays = w.make_batch(rng, np.float32, batch_size or w.batch_size)
    if w.key == "ops":
        if forward_only:
            return make_chain_forward(refgen_fw, arrays), make_chain_forward(torch_fw, arrays)
        return make_chain_step(refgen_fw, arrays)[0], make_chain_step(torch_fw, arrays)[0]
    tm, rm = build_pair(w, torch_fw, refgen_fw, "float32", seed)
    return make_step(refgen_fw, w, rm, arrays), make_step(torch_fw, w, tm, arrays)
