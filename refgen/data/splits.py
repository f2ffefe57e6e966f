"""Fixed train/validation/test splits, identical on every machine and backend.

Split permutations are drawn with host NumPy's PCG64 from a fixed seed, never with the
backend generator: CuPy's stream differs from NumPy's, and a split must not change when
the backend does. The conventions (written into each data set's ``info["split"]``):

* MNIST / Fashion-MNIST: ``train`` = the first 50,000 images of the official training file,
  ``val`` = its last 10,000 (the convention of e.g. the VAE/IWAE/MADE literature),
  ``train+val`` = all 60,000, ``test`` = the official 10,000 test images.
* digits (1797 images): a permutation from seed 0 (:data:`DIGITS_SPLIT_SEED`); ``train`` its
  first 1197 images, ``val`` the next 300, ``test`` the last 300; ``train+val`` = 1497.
* faithful (272 rows): the same scheme with 192 / 40 / 40; ``all`` = the 272 rows in file order.
* toy densities: fresh samples; the split picks the seed, see :func:`split_seed`.
"""
# host-side: the split permutation and seed derivation must not depend on the backend
import numpy as np

__all__ = ["seeded_split_indices", "split_seed", "check_split", "DIGITS_SPLIT_SEED"]

DIGITS_SPLIT_SEED = 0
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}


def check_split(name, split, known):
    if split not in known:
        raise ValueError(f"unknown split {split!r} for data set {name!r}; known: {', '.join(known)}")


def seeded_split_indices(n, sizes, seed):
    """Index arrays (host int64) of a fixed permutation of ``range(n)`` cut into ``sizes``.

    :param sizes: dict split name -> size, in order; the sizes must add up to ``n``.
    :return: dict split name -> sorted host index array.
    """
    if sum(sizes.values()) != n:
        raise ValueError(f"split sizes {sizes} add up to {sum(sizes.values())}, not {n}")
    perm = np.random.default_rng(seed).permutation(n)
    out, start = {}, 0
    for split, size in sizes.items():
        # sorted so each split keeps the file order: easier to compare with other tools
        out[split] = np.sort(perm[start:start + size])
        start += size
    return out


def split_seed(seed, split):
    """The generator seed for ``split`` of a sampled (toy) data set with base ``seed``.

    Derived through NumPy's SeedSequence from the pair (seed, split index), so the train,
    val and test samples are independent streams and seed 1's train set is not seed 0's
    validation set (as ``seed + 1`` would make it).
    """
    idx = _SPLIT_INDEX.get(split)
    if idx is None:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(_SPLIT_INDEX)}")
    return int(np.random.SeedSequence([int(seed), idx]).generate_state(1, dtype=np.uint64)[0]
               % (2 ** 63))
