"""A first tour of the engine: train a small network on two interleaved spirals.

Run it with ``python examples/train_classifier.py`` (no download: the data is generated).
It shows the API that every refgen model is written in:

* tensors with ``requires_grad`` and ``backward()``;
* ``autodiff.nn`` layers and ``autodiff.optim.Adam`` with PyTorch's names;
* ``autodiff.grad(..., create_graph=True)``: a Hessian-vector product, the tool that
  WGAN-GP penalties and score matching need;
* ``autodiff.save`` / ``autodiff.load``: an atomic ``.npz`` checkpoint, read back without
  unpickling.
"""
import math
import os
import tempfile

import autodiff
import autodiff.functional as F
from autodiff import nn, optim


def two_spirals(n, generator):
    """n points on each of two interleaved spirals in R^2, with labels 0 and 1.

    Returns x of shape (2n, 2) and y of shape (2n,) (int64).
    """
    t = autodiff.rand(n, generator=generator) * 3 * math.pi + 0.5      # (n,) angle
    noise = autodiff.randn(2 * n, 2, generator=generator) * 0.15
    r = t / (3 * math.pi) * 2.0
    arm = autodiff.stack([r * t.cos(), r * t.sin()], dim=1)            # (n, 2)
    x = autodiff.cat([arm, -arm], dim=0) + noise                      # (2n, 2)
    y = autodiff.cat([autodiff.zeros(n, dtype=autodiff.int64),
                      autodiff.ones(n, dtype=autodiff.int64)])
    return x, y


def main(steps=600, seed=0):
    autodiff.manual_seed(seed)
    gen = autodiff.Generator(seed)
    x_train, y_train = two_spirals(512, gen)
    x_test, y_test = two_spirals(512, gen)

    model = nn.Sequential(nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(),
                          nn.Linear(64, 2))
    print(model)
    opt = optim.Adam(model.parameters(), lr=1e-2)

    for step in range(1, steps + 1):
        loss = F.cross_entropy(model(x_train), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            with autodiff.no_grad():
                acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
            print(f"step {step:4d}  train loss {loss.item():.4f}  test accuracy {acc:.3f}")

    # A Hessian-vector product of the loss with respect to the first layer's weight:
    # differentiate the gradient again (create_graph=True records the backward pass).
    w = model[0].weight
    loss = F.cross_entropy(model(x_train), y_train)
    (g,) = autodiff.grad(loss, [w], create_graph=True)
    v = autodiff.randn(*w.shape, generator=gen)
    (hv,) = autodiff.grad((g * v).sum(), [w])
    print(f"|grad| = {g.norm().item():.4f}, |H v| = {hv.norm().item():.4f}")

    # Checkpoint round trip: parameters and optimiser state in one atomic .npz.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spirals.npz")
        autodiff.save({"model": model.state_dict(), "optim": opt.state_dict()}, path)
        restored = autodiff.load(path)
        model.load_state_dict(restored["model"])
        print(f"saved and reloaded {len(restored['model'])} tensors from {os.path.basename(path)}")
    return acc


if __name__ == "__main__":
    main()
