"""FID/precision/recall of 1000 MNIST training images against the test split (the floor)."""
import sys
import numpy as np
import refgen
from refgen.metrics.report import evaluate_samples
ds = refgen.data.load_dataset("mnist", "train", data_dir="/work/shared/data/mnist")
x = ds.x if hasattr(ds, "x") else ds[:][0]
x = np.asarray(getattr(x, "data", x))
idx = np.random.default_rng(1).choice(len(x), 1000, replace=False)
r = evaluate_samples(x[idx], "mnist", metrics="fid,pr", n=1000, data_dir="/work/shared/data/mnist",
                     extractor="mnist-classifier", extractor_weights=sys.argv[1])
print({k: r[k] for k in ("fid", "precision", "recall", "n_real", "n_fake")})
