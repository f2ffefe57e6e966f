"""Small trainables and a stand-in loader for the loop's tests, and a command-line entry
point so a test can run training in a subprocess and kill it::

    python -m tests.refgen.train.toy_trainable OUT_DIR --steps 13 --checkpoint-every 4 \
        [--resume] [--block-at-step 6 --marker FILE] [--block-in-save 2 --marker FILE]

``--block-at-step s`` writes the marker file when ``training_step`` is called with step s
and then waits forever (the parent kills it with SIGKILL); ``--block-in-save k`` writes
half of the k-th checkpoint archive, then the marker, then waits: a kill "during the write".
"""
import argparse
import sys
import time

import numpy as np  # host-side: bit-for-bit comparison of checkpoint arrays

import autodiff
import autodiff.functional as F
from autodiff import Tensor, nn
from autodiff import backend as B

from refgen.train import TrainConfig, fit


# --------------------------------------------------------------------------- data
class ToyData:
    """Two interleaved Gaussian blobs with labels: x (n, 2), y (n,) in {0, 1}."""

    def __init__(self, n=96, seed=123):
        g = autodiff.Generator(seed)
        self.y = autodiff.Tensor(g.integers(0, 2, (n,)))
        centres = autodiff.Tensor(g.normal((2, 2), autodiff.get_default_dtype()))
        self.x = centres[self.y] + 0.7 * autodiff.randn(n, 2, generator=g)

    def __len__(self):
        return self.x.shape[0]


class ToyLoader:
    """A stand-in following ``refgen.data.BatchLoader``'s interface: endless seeded batches,
    a fresh permutation per epoch, ``state_dict``/``load_state_dict`` for exact resume."""

    def __init__(self, data, batch_size, generator):
        self.data, self.batch_size, self.generator = data, batch_size, generator
        self.order, self.position, self.epoch = None, 0, -1

    def __iter__(self):
        return self

    def __next__(self):
        if self.order is None or self.position + self.batch_size > len(self.data):
            self.order = self.generator.permutation(len(self.data))
            self.position, self.epoch = 0, self.epoch + 1
        idx = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return self.data.x[autodiff.Tensor(idx)], self.data.y[autodiff.Tensor(idx)]

    def state_dict(self):
        return {"order": self.order, "position": self.position, "epoch": self.epoch,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.order, self.position = state["order"], state["position"]
        self.epoch = state["epoch"]
        self.generator.set_state(state["generator"])


# --------------------------------------------------------------------------- trainables
class MLPClassifier:
    """An MLP with dropout (its own generator) that also draws input noise from
    ``ctx.generator`` and the global generator, so every random stream matters."""

    family = "toy-mlp"

    def __init__(self, hidden=16, seed=0):
        self.config = {"hidden": hidden, "seed": seed}
        autodiff.manual_seed(seed)
        self.dropout_generator = autodiff.Generator(seed + 100)
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(),
                                 nn.Dropout(0.2, generator=self.dropout_generator),
                                 nn.Linear(hidden, 2))
        self.eval_calls = []

    def modules(self):
        return {"net": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    def generators(self):
        return {"dropout": self.dropout_generator}

    def training_step(self, batch, step, ctx):
        x, y = batch
        x = x + 0.05 * autodiff.randn(*x.shape, generator=ctx.generator)
        x = x + 0.01 * autodiff.randn(*x.shape)  # the global generator
        loss = F.cross_entropy(self.net(x), y)
        ctx.optimize("model", loss)
        return {"loss": loss.item()}

    def evaluate(self, data, ctx):
        self.eval_calls.append(ctx.step)
        logits = self.net(data.x)
        acc = (logits.argmax(-1) == data.y).float().mean()
        return {"accuracy": acc.item(), "loss": F.cross_entropy(logits, data.y).item()}


class ToyGAN:
    """A GAN-like toy with two players: G maps z (B, 1) to x (B, 2), D scores x.
    Non-saturating losses (Goodfellow et al. 2014, Section 3):
    L_D = softplus(-D(x)) + softplus(D(G(z))),  L_G = softplus(-D(G(z)))."""

    family = "toy-gan"

    def __init__(self, seed=0, critic_steps=2):
        self.config = {"seed": seed, "critic_steps": critic_steps}
        autodiff.manual_seed(seed)
        self.G = nn.Linear(1, 2)
        self.D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        self.critic_steps = critic_steps

    def modules(self):
        return {"generator": self.G, "critic": self.D}

    def parameter_groups(self):
        return {"generator": list(self.G.parameters()), "critic": list(self.D.parameters())}

    def training_step(self, batch, step, ctx):
        x, _ = batch
        n = x.shape[0]
        for _ in range(self.critic_steps):
            fake = self.G(autodiff.randn(n, 1, generator=ctx.generator))
            loss_d = (F.softplus(-self.D(x)) + F.softplus(self.D(fake.detach()))).mean()
            ctx.optimize("critic", loss_d)
        fake = self.G(autodiff.randn(n, 1, generator=ctx.generator))
        loss_g = F.softplus(-self.D(fake)).mean()
        ctx.optimize("generator", loss_g)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}


def assert_identical(a, b, path="ckpt"):
    """Nested equality, arrays compared bit for bit (same dtype, same bytes)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys {list(a)} vs {list(b)}"
        for k in a:
            assert_identical(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{path}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, Tensor) or B.is_backend_array(a):
        x = B.to_numpy(a.data if isinstance(a, Tensor) else a)
        y = B.to_numpy(b.data if isinstance(b, Tensor) else b)
        assert x.dtype == y.dtype and x.shape == y.shape, \
            f"{path}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
        assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), f"{path}: values differ"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# --------------------------------------------------------------------------- a run
def default_config(out_dir, **changes):
    options = dict(steps=13, batch_size=16, lr=3e-2, optimizer="adam", grad_clip=0.5,
                   ema_decay=0.9, lr_schedule="warmup_cosine", warmup_steps=3, log_every=3,
                   checkpoint_every=4, seed=7, out_dir=str(out_dir))
    options.update(changes)
    return TrainConfig(**options)


def run_mlp(out_dir, resume=False, eval_every=None, **changes):
    """Build the MLP, its data and loader, and train it; returns (trainable, TrainResult)."""
    data = ToyData()
    config = default_config(out_dir, eval_every=eval_every, **changes)
    loader = ToyLoader(data, config.batch_size, autodiff.Generator(config.seed + 1))
    model = MLPClassifier()
    result = fit(model, loader, config, eval_data=data, resume=resume, progress=False)
    return model, result


def _block(marker):
    with open(marker, "w") as f:
        f.write("ready\n")
    while True:  # wait for the parent's SIGKILL
        time.sleep(0.05)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, default=13)
    p.add_argument("--checkpoint-every", type=int, default=4)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--block-at-step", type=int, default=None)
    p.add_argument("--block-in-save", type=int, default=None)
    p.add_argument("--marker", default=None)
    args = p.parse_args(argv)
    autodiff.set_default_dtype("float64")

    if args.block_at_step is not None:
        original = MLPClassifier.training_step

        def training_step(self, batch, step, ctx):
            if step == args.block_at_step:
                _block(args.marker)
            return original(self, batch, step, ctx)

        MLPClassifier.training_step = training_step

    if args.block_in_save is not None:
        from autodiff import serialization

        real_write = serialization._write_archive
        saves = [0]

        def write_half(fileobj, arrays):
            saves[0] += 1
            if saves[0] < args.block_in_save:
                return real_write(fileobj, arrays)
            import io
            buf = io.BytesIO()
            real_write(buf, arrays)
            fileobj.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            fileobj.flush()
            _block(args.marker)

        serialization._write_archive = write_half

    run_mlp(args.out_dir, resume=args.resume, steps=args.steps,
            checkpoint_every=args.checkpoint_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
