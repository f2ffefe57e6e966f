"""``BatchLoader``: endless seeded mini-batches with an exactly resumable state.

Each epoch is a fresh permutation drawn from the loader's generator; batches are slices of
it (the last partial batch is dropped when ``drop_last``). Iteration never stops: after the
last batch of an epoch the next call starts the next epoch, so a training loop asks for
``next(loader)`` as many times as it has steps.

Exact resume: ``state_dict()`` records the epoch, the position in it, the generator state
just before this epoch's permutation was drawn and the generator state now. Loading it
redraws the same permutation and leaves the generator where it was, so a resumed loader
yields bit-identical batches to one that never stopped (on the same backend), even when
the generator is shared with other samplers.
"""
import autodiff
from autodiff import backend as B
from autodiff.tensor import Tensor

__all__ = ["BatchLoader"]


class BatchLoader:
    """Endless mini-batches ``(x, y)`` of an :class:`ArrayDataset` as autodiff Tensors.

    :param dataset: anything with ``x`` (N, ...) and ``y`` (N,) or None backend arrays.
    :param batch_size: B, examples per batch.
    :param shuffle: a fresh seeded permutation each epoch (else the file order).
    :param drop_last: drop the final batch of an epoch when it has fewer than B examples.
    :param generator: ``autodiff.Generator`` for the permutations; default a new
        ``Generator(0)`` owned by the loader (so the order never depends on other code).
    Yields ``x`` (B, ...) float Tensor and ``y`` (B,) int64 Tensor, or None without labels.
    """

    def __init__(self, dataset, batch_size, shuffle=True, drop_last=True, generator=None):
        n = len(dataset)
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"BatchLoader: batch_size must be >= 1, got {batch_size}")
        if n == 0:
            raise ValueError(f"BatchLoader: data set {getattr(dataset, 'name', '')!r} is empty")
        if drop_last and batch_size > n:
            raise ValueError(f"BatchLoader: batch_size {batch_size} exceeds the {n} examples of "
                             f"{getattr(dataset, 'name', 'the data set')!r} with drop_last=True")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = autodiff.Generator(0) if generator is None else generator
        self.epoch = -1          # the epoch whose permutation is in self._order
        self.position = 0        # index into self._order of the next batch's first example
        self._order = None
        self._state_before_order = None

    @property
    def batches_per_epoch(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self):
        return self.batches_per_epoch

    def __iter__(self):
        return self

    def _new_epoch(self):
        self.epoch += 1
        self.position = 0
        self._draw_order()

    def _draw_order(self):
        n = len(self.dataset)
        self._state_before_order = _copy_state(self.generator.get_state()) if self.shuffle else None
        if self.shuffle:
            self._order = self.generator.permutation(n)
        else:
            self._order = B.xp.arange(n, dtype="int64")

    def _epoch_done(self):
        n = len(self.dataset)
        left = n - self.position
        return left <= 0 or (self.drop_last and left < self.batch_size)

    def __next__(self):
        if self._order is None or self._epoch_done():
            self._new_epoch()
        idx = self._order[self.position:self.position + self.batch_size]
        self.position += int(idx.shape[0])
        x, y = self.dataset[idx]
        return Tensor(x), (None if y is None else Tensor(y))

    def state_dict(self):
        """Epoch, position and generator states: plain ints/strs/dicts (``autodiff.save``-able)."""
        return {
            "epoch": int(self.epoch),
            "position": int(self.position),
            "batch_size": self.batch_size,
            "num_examples": len(self.dataset),
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "generator": _copy_state(self.generator.get_state()),
            "generator_before_epoch": self._state_before_order,
        }

    def load_state_dict(self, state):
        """Continue exactly where ``state`` was taken (same data set size and batch size)."""
        for key in ("batch_size", "num_examples", "shuffle", "drop_last"):
            mine = len(self.dataset) if key == "num_examples" else getattr(self, key)
            if key in state and state[key] != mine:
                raise ValueError(f"BatchLoader.load_state_dict: saved {key}={state[key]!r} but "
                                 f"this loader has {key}={mine!r}")
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        if self.epoch < 0:
            self._order = None
        else:
            if self.shuffle:
                self.generator.set_state(_copy_state(state["generator_before_epoch"]))
            self._draw_order()
        self.generator.set_state(_copy_state(state["generator"]))


def _copy_state(state):
    """A deep copy of a (nested dict) generator state, so later draws cannot alias it."""
    if isinstance(state, dict):
        return {k: _copy_state(v) for k, v in state.items()}
    return state
