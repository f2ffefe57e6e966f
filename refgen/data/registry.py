"""The data-set registry: ``list_datasets``, ``load_dataset``, ``describe``.

Names: ``digits`` (embedded), ``mnist``, ``fashion-mnist`` (IDX files, see
:mod:`refgen.data.sources`), ``faithful`` (embedded), and the toy densities of
:mod:`refgen.data.toy` (ring8, grid25, moons, checkerboard, swissroll, pinwheel, rings,
spirals).

Conventions of the arrays returned:

* images: ``x`` (N, 1, H, W) of the default float dtype, ``x = k / (L - 1)`` in [0, 1] for
  raw grey levels k in {0..L-1} (``info["levels"]`` = L: 17 for digits, 256 for MNIST);
  ``scale="symmetric"`` gives 2x - 1 in [-1, 1]; ``binarize="fixed"`` one seeded Bernoulli
  draw (``binarize_seed``, default 0). Dequantization and dynamic binarization belong to each
  batch (:mod:`refgen.data.preprocessing`), not to the stored data.
* points: ``x`` (N, 2). Toy data: fresh samples, ``n`` per split (default 10,000), the
  split's seed derived from ``seed`` (default 0) by :func:`refgen.data.splits.split_seed`.
  Both may also be spelled in the name, ``checkerboard:n=1000000``, which reaches them from
  ``refgen train --data`` (10,000 fixed points are few for a flexible 2-D model: an 8-layer
  spline flow trained for minutes on them fits the sample, not the density).
  faithful: ``standardize=True`` (default) subtracts the column means and divides by the
  sample standard deviations of all 272 rows (``info["mean"]``, ``info["std"]``); a density
  of the standardised data converts back by log p(x) = log p(z) - sum(log std)
  (``info["log_det"]``).
"""
import math
import sys

import autodiff
from autodiff import backend as B

from . import preprocessing as P
from . import toy
from .dataset import ArrayDataset
from .embedded import load_digits_arrays, load_faithful_arrays
from .images import load_idx_split
from .sources import IDX_SETS, candidates
from .splits import DIGITS_SPLIT_SEED, check_split, seeded_split_indices, split_seed

__all__ = ["list_datasets", "load_dataset", "describe", "DATASETS"]

DIGITS_SPLITS = {"train": 1197, "val": 300, "test": 300}
FAITHFUL_SPLITS = {"train": 192, "val": 40, "test": 40}
_IMAGE_OPTIONS = ("scale", "binarize", "binarize_seed", "dtype")
_TOY_OPTIONS = ("n", "seed", "dtype")
# the most points a toy data set draws: 10^8 pairs are 1.6 GB in float64 before the
# sampler's work arrays; a larger n is refused by name, not by NumPy's MemoryError
MAX_TOY_POINTS = 10 ** 8
_FAITHFUL_OPTIONS = ("standardize", "dtype")

DIGITS_INFO = {
    "source": "UCI optdigits test set (E. Alpaydin, C. Kaynak 1998) as shipped by scikit-learn; "
              "embedded, see refgen/data/files/ATTRIBUTION.md",
    "split": f"fixed permutation (seed {DIGITS_SPLIT_SEED}) cut into train 1197 / val 300 / "
             "test 300; train+val 1497; all 1797",
}
FAITHFUL_INFO = {
    "source": "Old Faithful geyser (Haerdle 1991; Azzalini & Bowman 1990), 272 eruptions; "
              "embedded, see refgen/data/files/ATTRIBUTION.md",
    "split": "fixed permutation (seed 0) cut into train 192 / val 40 / test 40; all 272",
}


_DTYPES = ("float32", "float64")


def _options(name, given, allowed):
    """Check the options before any file is read: unknown names, and dtype."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(f"load_dataset({name!r}): unknown option(s) {', '.join(unknown)}; "
                        f"accepted: {', '.join(allowed)}")
    dtype = given.get("dtype")
    if dtype is not None:
        try:
            ok = B.xp.dtype(dtype).name in _DTYPES
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"load_dataset({name!r}): dtype must be one of "
                             f"{', '.join(_DTYPES)}, got {dtype!r}")


def _dtype(opts):
    return opts.get("dtype") or B.get_default_dtype()


def _image_dataset(name, images, labels, levels, classes, split, source, split_text, opts):
    scale = opts.get("scale", "unit")
    if scale not in P.SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(P.SCALES)}")
    binarize = opts.get("binarize")
    if binarize not in (None, "fixed"):
        raise ValueError(f"unknown binarize {binarize!r}; known: None, 'fixed' (dynamic "
                         "binarization is per batch: refgen.data.preprocessing.binarize_dynamic)")
    x = B.to_backend(images).astype(_dtype(opts))[:, None, :, :] / (levels - 1)
    conventions = {"stored": f"x = k / {levels - 1} for grey levels k in 0..{levels - 1}"}
    if binarize == "fixed":
        seed = int(opts.get("binarize_seed", 0))
        x = P.binarize_fixed(x, seed)
        conventions["binarize"] = (f"fixed: one Bernoulli(x) draw, autodiff.Generator({seed}) "
                                   "(not the Larochelle & Murray 2011 binarized MNIST)")
    x = P.scale(x, scale)
    conventions["scale"] = scale + (" [0, 1]" if scale == "unit" else " [-1, 1] = 2x - 1")
    conventions["dequantize"] = (f"per batch: (k + u) / {levels}, u ~ U[0,1) "
                                 f"(preprocessing.dequantize(x, levels={levels}))")
    info = {
        "kind": "image", "shape": tuple(int(s) for s in x.shape[1:]), "num_classes": len(classes),
        "class_names": list(classes), "levels": levels,
        "value_range": (0.0, 1.0) if scale == "unit" else (-1.0, 1.0),
        "binary": binarize == "fixed", "preprocessing": conventions, "split": split_text,
        "split_name": split, "source": source, "num_examples": int(x.shape[0]),
    }
    return ArrayDataset(x, labels, name=name, info=info)


def _load_digits(split, data_dir, opts):
    _options("digits", opts, _IMAGE_OPTIONS)
    images, labels = load_digits_arrays()
    known = ("train", "val", "test", "train+val", "all")
    check_split("digits", split, known)
    idx = seeded_split_indices(1797, DIGITS_SPLITS, DIGITS_SPLIT_SEED)
    if split == "train+val":
        sel = sorted(list(idx["train"]) + list(idx["val"]))
    elif split == "all":
        sel = list(range(1797))
    else:
        sel = idx[split]
    return _image_dataset("digits", images[sel], labels[sel], 17, [str(i) for i in range(10)],
                          split, DIGITS_INFO["source"], DIGITS_INFO["split"], opts)


def _idx_loader(name):
    def load(split, data_dir, opts):
        _options(name, opts, _IMAGE_OPTIONS)
        images, labels = load_idx_split(name, split, data_dir)
        text = ("train = first 50,000 of the official training file, val = its last 10,000, "
                "train+val = all 60,000, test = the official 10,000")
        return _image_dataset(name, images, labels, 256, IDX_SETS[name]["classes"], split,
                              IDX_SETS[name]["source"], text, opts)
    return load


def _load_faithful(split, data_dir, opts):
    _options("faithful", opts, _FAITHFUL_OPTIONS)
    table = load_faithful_arrays()
    check_split("faithful", split, ("train", "val", "test", "all"))
    sel = list(range(272)) if split == "all" else seeded_split_indices(272, FAITHFUL_SPLITS, 0)[split]
    mean, std = table.mean(axis=0), table.std(axis=0, ddof=1)
    standardize = bool(opts.get("standardize", True))
    x = (table[sel] - mean) / std if standardize else table[sel]
    info = {
        "kind": "points", "shape": (2,), "num_classes": None, "columns": ["eruptions", "waiting"],
        "units": "minutes", "standardized": standardize,
        "mean": [float(v) for v in mean], "std": [float(v) for v in std],
        "log_det": -float(sum(math.log(s) for s in std)) if standardize else 0.0,
        "preprocessing": ("z = (x - mean) / std with the mean and sample std (ddof=1) of all "
                          "272 rows; log p(x) = log p(z) + log_det" if standardize else "raw minutes"),
        "split": FAITHFUL_INFO["split"], "split_name": split, "source": FAITHFUL_INFO["source"],
        "num_examples": len(sel),
    }
    return ArrayDataset(B.to_backend(x).astype(_dtype(opts)), None, name="faithful", info=info)


def _toy_loader(base):
    def load(split, data_dir, opts, name=base):
        _options(name, opts, _TOY_OPTIONS)
        check_split(name, split, ("train", "val", "test"))
        # "ring8:std=0.1,n=1000000": std is the density's option, n the data set's
        _, in_name = toy.split_sample_options(name)
        both = sorted(set(in_name) & set(opts))
        if both:
            raise ValueError(f"data set {name!r}: {', '.join(both)} given twice, in the name "
                             f"and as a keyword; give it once")
        for key, value in in_name.items():
            if not math.isfinite(value) or value != int(value) or (key == "n" and value < 1):
                what = "a positive whole number of points" if key == "n" else "a whole number"
                raise ValueError(f"data set {name!r}: {key} must be {what}, got {value:g}")
        opts = {**opts, **{k: int(v) for k, v in in_name.items()}}
        density = toy.get_density(name)   # "ring8:std=0.1": the options after the colon
        n, seed = int(opts.get("n", 10_000)), int(opts.get("seed", 0))
        if n > MAX_TOY_POINTS:
            raise ValueError(f"data set {name!r}: n={n:,} points is more than a toy data set "
                             f"draws (at most {MAX_TOY_POINTS:,}: 16 bytes a point in float64)")
        x = density.sample(n, autodiff.Generator(split_seed(seed, split))).data
        info = {
            "kind": "points", "shape": (2,), "num_classes": None, "density": name,
            "bounds": density.bounds, "exact_log_prob": density.exact,
            "preprocessing": "none: samples of refgen.data.toy.get_density(name)",
            "split": f"fresh samples; generator seed split_seed({seed}, {split!r}) "
                     f"(backend {B.name}: NumPy and CuPy streams differ)",
            "split_name": split, "seed": seed, "name": name,
            "source": f"synthetic toy density {name!r} (refgen.data.toy)", "num_examples": n,
        }
        return ArrayDataset(x.astype(_dtype(opts), copy=False), None, name=name, info=info)
    return load


DATASETS = {
    "digits": _load_digits,
    "mnist": _idx_loader("mnist"),
    "fashion-mnist": _idx_loader("fashion-mnist"),
    "faithful": _load_faithful,
}
DATASETS.update({name: _toy_loader(name) for name in toy.list_densities()})


def list_datasets():
    """All data-set names ``load_dataset`` accepts."""
    return list(DATASETS)


def _unknown(name):
    return ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


def load_dataset(name, split="train", data_dir=None, **preprocess):
    """Load one split of a data set as an :class:`ArrayDataset` (see the module docstring).

    :param name: one of :func:`list_datasets`; a toy density may carry options after a
        colon, ``"ring8:std=0.1"`` (see ``refgen.data.toy.parse_name``), and so may its
        sample options ``n`` and ``seed`` (``"checkerboard:n=1000000"``).
    :param split: "train", "val", "test" (plus "train+val" for images, "all" for digits and
        faithful).
    :param data_dir: folder searched first for IDX files (MNIST, Fashion-MNIST).
    :param preprocess: images: scale, binarize, binarize_seed, dtype; toy: n, seed, dtype;
        faithful: standardize, dtype.
    """
    base, options = toy.parse_name(name)
    if base not in DATASETS:
        raise _unknown(base)
    if options:
        if base not in toy.DENSITIES:
            raise ValueError(f"data set {base!r} takes no options after a colon (only the toy "
                             f"densities do, e.g. ring8:std=0.1); got {name!r}")
        return DATASETS[base](split, data_dir, preprocess, name=name)
    return DATASETS[name](split, data_dir, preprocess)


def describe(name, data_dir=None):
    """A few lines about data set ``name``: what it is, shapes, splits, source, files."""
    if toy.parse_name(name)[0] not in DATASETS:
        raise _unknown(name)
    if name == "digits":
        lines = ["digits: 1797 handwritten digits, 8x8 grey images with 17 levels (0..16), "
                 "labels 0-9; embedded in refgen (no download)",
                 "x: (N, 1, 8, 8) in [0, 1] = k/16", "splits: " + DIGITS_INFO["split"],
                 "source: " + DIGITS_INFO["source"]]
    elif name in IDX_SETS:
        lines = [f"{name}: 28x28 grey images with 256 levels, 10 classes "
                 f"({', '.join(IDX_SETS[name]['classes'])})",
                 "x: (N, 1, 28, 28) in [0, 1] = k/255",
                 "splits: train 50,000 (first of the training file) / val 10,000 (its last) / "
                 "train+val 60,000 / test 10,000",
                 "source: " + IDX_SETS[name]["source"], "files:"]
        for stem in IDX_SETS[name]["files"]:
            found = next((p for p in candidates(name, stem, data_dir) if p.is_file()), None)
            lines.append(f"  {stem}: " + (str(found) if found else
                                          f"missing (refgen data download {name})"))
    elif name == "faithful":
        lines = ["faithful: Old Faithful geyser, 272 (eruption minutes, waiting minutes) pairs; "
                 "bimodal real 2-D data; embedded",
                 "x: (N, 2), standardised by default (standardize=False for minutes)",
                 "splits: " + FAITHFUL_INFO["split"], "source: " + FAITHFUL_INFO["source"]]
    else:
        density = toy.get_density(name)
        exact = ("exact log_prob" if density.exact else
                 "sampler only; reference_log_prob / reference_grid give a histogram reference")
        doc = sys.modules[type(density).__module__].__doc__ or ""
        lines = [f"{name}: toy 2-D density, {exact}", f"bounds: {density.bounds}",
                 "x: (n, 2) samples; load_dataset(name, split, n=10000, seed=0)",
                 doc.strip().splitlines()[0] if doc.strip() else ""]
    return "\n".join(line for line in lines if line)
