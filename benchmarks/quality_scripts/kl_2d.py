"""python benchmarks/quality_scripts/kl_2d.py CHECKPOINT [--data NAME]

KL(truth || model) of a 2-D model with an exact or estimated log-density, on the test split
``refgen eval`` uses (10,000 points of the data set the checkpoint trained on; a training set
enlarged in the name, ``checkerboard:n=1000000``, is evaluated on the standard 10,000 test
points all the same; ``--data`` names another test set):

    KL = E_truth[log p_truth(x) - log p_model(x)],

reported two ways: test NLL minus the density's entropy (its Monte Carlo estimate, +- the
two standard errors combined), and "paired", the mean of log p_truth - log p_model over the
same test points (+- its standard error; the smaller error, as the two terms are
correlated point by point)."""
import argparse
import json
import math

import numpy as np  # host-side: the per-point log-densities are reduced on the host

import autodiff
import refgen
from autodiff import backend as B
from refgen.data import load_dataset
from refgen.data.toy import get_density, split_sample_options


def main(path, data=None):
    model = refgen.load(path)
    data = data or split_sample_options(model.config["data"])[0]
    test = load_dataset(data, split="test")
    x = test.x
    with autodiff.no_grad():
        log_model = B.to_numpy(model.log_prob(autodiff.Tensor(B.to_backend(x))).data)
    density = get_density(data)
    log_true = B.to_numpy(density.log_prob(B.to_backend(x)))
    log_true = np.asarray(getattr(log_true, "data", log_true), dtype=np.float64)
    n = log_model.shape[0]
    nll, nll_se = -log_model.mean(), log_model.std(ddof=1) / math.sqrt(n)
    entropy, entropy_se = density.entropy()
    diff = log_true - log_model
    print(json.dumps({"checkpoint": path, "data": data, "n": n, "nll": round(float(nll), 4),
                      "nll_se": round(float(nll_se), 4), "entropy": round(float(entropy), 4),
                      "kl": round(float(nll - entropy), 4),
                      "kl_se": round(float(math.hypot(nll_se, entropy_se)), 4),
                      "paired_kl": round(float(diff.mean()), 4),
                      "paired_kl_se": round(float(diff.std(ddof=1) / math.sqrt(n)), 4)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", help="test set to evaluate on (default: the checkpoint's "
                                       "density, 10,000 test points)")
    args = parser.parse_args()
    main(args.checkpoint, args.data)
