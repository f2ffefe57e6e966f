"""``TrainContext``: what a family's ``training_step`` sees of the loop.

A family computes its losses; the context does the rest of an update. For one player::

    def training_step(self, batch, step, ctx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        ctx.optimize("model", loss)
        return {"loss": loss.item()}

A GAN alternates its players inside one step (Goodfellow et al. 2014, Algorithm 1)::

        for _ in range(n_critic):
            ctx.optimize("critic", critic_loss(...))
        ctx.optimize("generator", generator_loss(...))

``ctx.optimize(player, loss)`` clears every gradient of every player, backpropagates
``loss``, clips the player's joint gradient norm when the config asks, and steps the
player's optimiser. Only the player's parameters change: the gradients the loss sends into
the other players' parameters are discarded. Learning-rate schedules and the EMA advance
once per loop step, after ``training_step`` returns.
"""
import math

from autodiff import Tensor
from autodiff.optim import clip_grad_norm_

__all__ = ["TrainContext"]


class TrainContext:
    """The loop's side of ``training_step(batch, step, ctx)`` and ``evaluate(data, ctx)``.

    Attributes: ``step`` (0-based index of the step being taken; during evaluation the
    number of steps completed), ``config`` (the ``TrainConfig``), ``generator`` (an
    ``autodiff.Generator`` owned by the loop, seeded from the config and checkpointed: use it
    for the noise a step draws), ``optimizers`` (player -> optimiser), ``players``,
    ``evaluating`` (True inside ``evaluate``, where ``generator`` is a fresh one seeded the
    same way at every evaluation so evaluations are reproducible and leave training's
    random streams untouched).
    """

    def __init__(self, config, groups, optimizers, generator):
        self.config = config
        self.groups = groups
        self.optimizers = optimizers
        self.players = list(groups)
        self.generator = generator
        self.step = 0
        self.evaluating = False
        self._all_params = [p for ps in groups.values() for p in ps]
        self._clip = {p: config.options_for(p)["grad_clip"] for p in groups}
        self.updates = {}
        self.grad_norms = {}

    def begin_step(self, step):
        self.step = step
        self.updates = {p: 0 for p in self.players}
        self.grad_norms = {}

    def _zero_all_grads(self):
        for p in self._all_params:
            p.grad = None

    def optimize(self, player, loss):
        """One update of ``player``'s parameters from ``loss`` (a 0-d Tensor).

        Clears all gradients, ``loss.backward()``, clips the player's gradients to the joint
        norm ``grad_clip`` (recording the norm before clipping), ``optimizer.step()``, then
        clears the gradients again. Returns ``loss`` as a Python float.
        """
        if self.evaluating:
            raise RuntimeError("ctx.optimize was called inside evaluate(); evaluation must not "
                               "change the parameters")
        if player not in self.optimizers:
            raise ValueError(f"ctx.optimize: unknown player {player!r}; this run's players "
                             f"(from parameter_groups()): {', '.join(self.players)}")
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            what = (f"a Tensor of shape {tuple(loss.shape)}" if isinstance(loss, Tensor)
                    else f"a {type(loss).__name__}")
            raise ValueError(f"ctx.optimize({player!r}, loss): loss must be a 0-d Tensor, "
                             f"got {what} (reduce it with .mean() or .sum())")
        if not loss.requires_grad:
            raise ValueError(f"ctx.optimize({player!r}, loss): the loss does not require grad; "
                             "was it computed under no_grad or from detached tensors?")
        params = self.groups[player]
        self._zero_all_grads()
        loss.backward()
        if all(p.grad is None for p in params):
            self._zero_all_grads()
            raise ValueError(f"ctx.optimize({player!r}, loss): the loss does not depend on any "
                             f"parameter of player {player!r}")
        clip = self._clip[player]
        if clip is not None:
            norm = float(clip_grad_norm_(params, clip).item())
            # Over several updates of one player in a step, log the largest norm seen.
            self.grad_norms[player] = max(self.grad_norms.get(player, -math.inf), norm)
        self.optimizers[player].step()
        self._zero_all_grads()
        self.updates[player] += 1
        return float(loss.item())
