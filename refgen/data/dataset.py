"""``ArrayDataset``: a whole data set held as one backend array (and optional labels).

Every data set in refgen is small enough to sit in memory (MNIST is 60,000 x 784 floats),
so a data set is just ``x`` (N, ...) and ``y`` (N,) on the active backend, plus an ``info``
dict that writes down what the numbers mean (kind, shape, value range, preprocessing,
source). Mini-batches come from :class:`refgen.data.BatchLoader`.
"""
from autodiff import backend as B

__all__ = ["ArrayDataset"]


class ArrayDataset:
    """Arrays ``x`` (N, ...) float and ``y`` (N,) int64 or None, with a name and an info dict.

    :param x: backend array (or host data, moved to the backend) of N examples.
    :param y: labels, shape (N,), converted to int64; or None for unlabelled data.
    :param name: the data set's registry name, e.g. ``"digits"``.
    :param info: what the numbers mean: ``kind`` ("image" | "points"), ``shape`` (one example),
        ``num_classes``, ``value_range``, ``preprocessing``, ``source``, ...
    """

    def __init__(self, x, y=None, name="", info=None):
        x = B.to_backend(x)
        if x.ndim < 1:
            raise ValueError(f"ArrayDataset {name!r}: x must have a leading example axis, "
                             f"got shape {tuple(x.shape)}")
        if y is not None:
            y = B.to_backend(y, dtype="int64")
            if y.shape != (x.shape[0],):
                raise ValueError(f"ArrayDataset {name!r}: y has shape {tuple(y.shape)}, "
                                 f"expected ({x.shape[0]},) to match x {tuple(x.shape)}")
        self.x = x
        self.y = y
        self.name = name
        self.info = dict(info or {})

    def __len__(self):
        return int(self.x.shape[0])

    def __getitem__(self, index):
        """``(x[index], y[index])`` as backend arrays (``y`` part None when unlabelled)."""
        return self.x[index], (None if self.y is None else self.y[index])

    def __repr__(self):
        labels = "unlabelled" if self.y is None else "labelled"
        return (f"ArrayDataset(name={self.name!r}, x={tuple(self.x.shape)} {self.x.dtype}, "
                f"{labels})")
