"""Data for refgen: toy 2-D densities, embedded digits and Old Faithful, MNIST-style IDX files.

    from refgen import data
    ds = data.load_dataset("digits", split="train")       # ArrayDataset: x (1197, 1, 8, 8)
    loader = data.BatchLoader(ds, batch_size=64, generator=autodiff.Generator(0))
    x, y = next(loader)                                   # Tensors (64, 1, 8, 8), (64,)
    moons = data.toy.get_density("moons")
    log_p = moons.log_prob(moons.sample(1000))            # exact log-density, (1000,)

Conventions (scaling, dequantization, binarization, logit transform, splits) are written in
:mod:`refgen.data.preprocessing`, :mod:`refgen.data.splits` and :mod:`refgen.data.registry`,
and repeated in each data set's ``info`` dict.
"""
from . import preprocessing, toy
from .dataset import ArrayDataset
from .download import download
from .idx import IDXError, read_idx
from .loader import BatchLoader
from .registry import DATASETS, describe, list_datasets, load_dataset

__all__ = ["ArrayDataset", "BatchLoader", "list_datasets", "load_dataset", "describe",
           "download", "read_idx", "IDXError", "toy", "preprocessing", "DATASETS"]
