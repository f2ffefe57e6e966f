"""Density -> anomaly detection: does a likelihood model trained on Fashion-MNIST flag MNIST?

A density model p_theta fitted to in-distribution data gives every image a score, its bits
per dimension

    bpd(x) = -log p_theta(x) / (D log 2)          (D = 784; refgen's ``bits_per_dim``)

and the natural anomaly detector flags the images with the highest bpd. The detector is
measured by the AUROC of that score (``refgen.metrics.ranking.auroc``): the probability that
an out-of-distribution (OOD) image scores above an in-distribution one, ties counted 1/2.

Nalisnick et al. (2019, "Do deep generative models know what they don't know?", ICLR,
Sec. 3) found the opposite of what one hopes: flows, PixelCNN and VAEs trained on
Fashion-MNIST give MNIST HIGHER likelihood than Fashion-MNIST's own test images, AUROC < 0.5
with bpd as the score. The usual explanation (Nalisnick et al. 2019; Ren et al. 2019;
Serra et al. 2020) is that the likelihood of an image is dominated by population-level
statistics, here the many constant black background pixels MNIST has more of, not by what
makes an image a garment. Trained on MNIST and shown Fashion-MNIST (the reverse direction),
the same models usually do detect the OOD set.

Two remedies are measured, each against the plain bpd of the same model:

* the typicality test (Nalisnick et al. 2019b, "Detecting out-of-distribution inputs to deep
  generative models using typicality", arXiv:1906.02994, their test with batch size M = 1):
  a typical example's bpd is close to the entropy rate the model assigns its training data,
  so the score is

      s_typ(x) = | bpd(x) - mean_{x' in training set} bpd(x') |

  (two-sided: an image with MUCH higher likelihood than the training images is atypical too);

* the likelihood ratio against a background model (Ren et al. 2019, "Likelihood ratios for
  out-of-distribution detection", NeurIPS, Sec. 3): a second model p_theta0 of the same
  family, trained on the training images with a fraction mu of their pixels replaced by
  uniform random grey levels (their Appendix A, Algorithm 1), learns the background
  statistics but not the semantics, and the ratio cancels the former:

      LLR(x) = log p_theta(x) - log p_theta0(x),     s_LLR(x) = -LLR(x) / (D log 2)
             = bpd_theta(x) - bpd_theta0(x)

  (in bits/dim, larger = more anomalous; the log2(L) dequantization offset cancels).
  Unlike Ren et al., the background model here has no extra L2 penalty and is trained on
  one fixed perturbed copy of the training images (a short run sees each image about once).

Data. Only the TEST file of Fashion-MNIST is available (``/work/shared/data/fashion-mnist``),
so its 10,000 images are split once with a fixed seed (``FASHION_SPLIT_SEED``,
``refgen.data.splits.seeded_split_indices``) into 8,000 for training and 2,000 held out;
the first ``train_images`` / ``score_images`` of each are used. MNIST's models train on the
first ``train_images`` images of refgen's MNIST ``train`` split (the first 50,000 of the
official training file), and MNIST is scored on a fixed-seed subset of the official test
file. Every model scores in-distribution and OOD images by the same ``bits_per_dim``, i.e.
under the same dequantization convention (uniform dequantization for the flow, the discrete
probability mass for PixelCNN, the VAE's discretized-logistic ELBO and DDPM's bound).
"""
import json

import autodiff
from autodiff import backend as B

from ..data import load_dataset
from ..data.dataset import ArrayDataset
from ..data.splits import seeded_split_indices
from ..fileio import atomic_open
from ..metrics.ranking import auroc, auroc_standard_error

__all__ = ["DESCRIPTION", "BUDGETS", "run", "perturb", "typicality_score",
           "likelihood_ratio_score", "split_fashion", "FASHION_SPLIT_SEED"]

DESCRIPTION = (
    "Likelihood as an anomaly score. Models with a likelihood (Glow, PixelCNN, the VAE "
    "bound, the DDPM bound) are trained on Fashion-MNIST (the test file split 8,000/2,000, "
    "the only file available) and score MNIST by bits/dim; some also train on MNIST and "
    "score Fashion-MNIST (the reverse). Reports the AUROC of bits/dim as the anomaly score "
    "in both directions (Nalisnick et al. 2019 found < 0.5 for Fashion-MNIST -> MNIST), and "
    "two remedies: the typicality test |bpd - mean training bpd| (Nalisnick et al. 2019b) "
    "and the likelihood ratio against a background model trained on perturbed images (Ren "
    "et al. 2019). Figure: histograms of bits/dim and of the remedies' scores per model. "
    "Needs --data-dir with mnist/ and fashion-mnist/.")

FASHION_SPLIT_SEED = 0
FASHION_SPLIT = {"train": 8000, "held_out": 2000}
MNIST_SCORE_SEED = 1

# models: (registered name, config settings, TrainConfig options, budget) in the order of
# the figure's columns; "minutes" trains for that long (constant learning rate), "steps"
# for that many steps (deterministic: the tiny budget)
BUDGETS = {
    "default": {
        "train_images": 8000, "score_images": 1000, "train_score_images": 500,
        "models": [
            {"model": "glow", "minutes": 2.0, "options": {"batch_size": 32},
             "settings": {"hidden": 32, "blocks": 1, "steps_per_scale": 2}},
            {"model": "pixelcnn", "minutes": 2.0, "options": {"batch_size": 32},
             "settings": {"channels": 16, "num_layers": 3, "first_kernel_size": 5,
                          "num_components": 3}},
            {"model": "vae", "minutes": 1.0, "options": {"batch_size": 100},
             "settings": {"decoder": "logistic", "latent_dim": 32, "hidden": [256]}},
            # the bound costs bound_timesteps + 2 U-Net passes per example: fewer scored
            {"model": "ddpm", "minutes": 2.0, "options": {"batch_size": 32},
             "score_images": 200, "train_score_images": 200,
             "settings": {"model_channels": 8, "channel_mult": [1, 2], "num_groups": 4,
                          "conditional": False, "bound_timesteps": 10, "eval_examples": 0}},
        ],
        "reverse": ["vae", "glow"],          # also trained on MNIST, scored on Fashion-MNIST
        "background": ["vae", "pixelcnn"],   # likelihood ratio (Fashion-MNIST -> MNIST)
        "perturb_rate": 0.2,                 # Ren et al. 2019 search mu in [0.1, 0.2]
    },
    "tiny": {
        "train_images": 128, "score_images": 48, "train_score_images": 32,
        "models": [
            {"model": "glow", "steps": 2, "options": {"batch_size": 16},
             "settings": {"hidden": 4, "blocks": 1, "steps_per_scale": 1}},
            {"model": "pixelcnn", "steps": 2, "options": {"batch_size": 16},
             "settings": {"channels": 4, "num_layers": 2, "first_kernel_size": 3,
                          "num_components": 2}},
            {"model": "vae", "steps": 20, "options": {"batch_size": 32},
             "settings": {"decoder": "logistic", "latent_dim": 2, "hidden": [16]}},
            {"model": "ddpm", "steps": 2, "options": {"batch_size": 16},
             "score_images": 16, "train_score_images": 16,
             "settings": {"timesteps": 20, "model_channels": 4, "channel_mult": [1, 2],
                          "num_groups": 2, "conditional": False, "bound_timesteps": 4,
                          "eval_examples": 0}},
        ],
        "reverse": ["vae"],
        "background": ["vae"],
        "perturb_rate": 0.2,
    },
}

_SCORE_BATCH = 100


# ---------------------------------------------------------------------------- the scores
def typicality_score(bpd, train_mean_bpd):
    """Nalisnick et al. (2019b), the typicality test with M = 1:
    s(x) = |bpd(x) - mean training bpd|.

    :param bpd: (N,) bits/dim of the examples to score.
    :param train_mean_bpd: the mean bits/dim of (a sample of) the model's training images,
        an estimate of the entropy rate the model assigns its own data.
    :return: (N,) scores, larger = less typical.
    """
    return B.xp.abs(B.xp.asarray(bpd) - float(train_mean_bpd))


def likelihood_ratio_score(bpd_model, bpd_background):
    """Ren et al. (2019), the log-likelihood ratio in bits/dim:
    s(x) = -LLR(x)/(D log 2) = bpd_theta(x) - bpd_theta0(x), larger = more anomalous.

    :param bpd_model: (N,) bits/dim under the model p_theta.
    :param bpd_background: (N,) bits/dim of the same images under the background p_theta0.
    """
    a, b = B.xp.asarray(bpd_model), B.xp.asarray(bpd_background)
    if a.shape != b.shape:
        raise ValueError(f"likelihood_ratio_score: bpd_model {tuple(a.shape)} and "
                         f"bpd_background {tuple(b.shape)} must have the same shape")
    return a - b


def perturb(x, rate, levels, generator):
    """Ren et al. (2019), Appendix A, Algorithm 1: each pixel, independently with probability
    ``rate`` (their mu), replaced by a grey level drawn uniformly from {0, .., L-1}.

    :param x: (N, C, H, W) stored images k/(L-1) in [0, 1] (backend array).
    :param rate: mu in [0, 1].
    :param levels: L; the result stays on the grid k/(L-1), so the discrete models and the
        dequantization of ``bits_per_dim`` apply to it unchanged.
    :param generator: an ``autodiff.Generator`` (the perturbation is reproducible).
    :return: (N, C, H, W) perturbed copy.
    """
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"perturb: rate must be in [0, 1], got {rate!r}")
    levels = int(levels)
    if levels < 2:
        raise ValueError(f"perturb: levels must be >= 2, got {levels!r}")
    x = B.xp.asarray(x)
    replace = generator.random(x.shape, x.dtype) < rate
    noise = (generator.integers(0, levels, x.shape) / (levels - 1)).astype(x.dtype)
    return B.xp.where(replace, noise, x)


# ---------------------------------------------------------------------------- the data
def split_fashion(n_total=10_000):
    """Host index arrays {"train", "held_out"} of the Fashion-MNIST test file (8,000 / 2,000,
    fixed permutation from ``FASHION_SPLIT_SEED``), each in file order."""
    return seeded_split_indices(n_total, FASHION_SPLIT, FASHION_SPLIT_SEED)


def _subset(dataset, index, name):
    index = B.to_backend(index)
    info = dict(dataset.info, num_examples=int(index.shape[0]), split_name=name)
    y = None if dataset.y is None else dataset.y[index]
    return ArrayDataset(dataset.x[index], y, name=dataset.name, info=info)


def _data(ctx):
    """The sets of both directions: for each data set, the images a model trains on
    ("train"), the in-distribution images it is scored on ("held_out") and the
    split it is built from (name, split) for ``ctx.train``."""
    s = ctx.settings
    n_train, n_score = int(s["train_images"]), int(s["score_images"])
    fashion = load_dataset("fashion-mnist", "test", data_dir=ctx.data_dir)
    idx = split_fashion(len(fashion))
    mnist_train = load_dataset("mnist", "train", data_dir=ctx.data_dir)
    mnist_test = load_dataset("mnist", "test", data_dir=ctx.data_dir)
    score_idx = seeded_split_indices(len(mnist_test), {"score": n_score,
                                                       "rest": len(mnist_test) - n_score},
                                     MNIST_SCORE_SEED)["score"]
    return {
        "fashion-mnist": {"train": _subset(fashion, idx["train"][:n_train], "train"),
                          "held_out": _subset(fashion, idx["held_out"][:n_score], "held_out"),
                          "split": "test"},
        "mnist": {"train": _subset(mnist_train, list(range(n_train)), "train"),
                  "held_out": _subset(mnist_test, score_idx, "held_out"),
                  "split": "train"},
    }


def bits_per_dim(model, x, seed):
    """(N,) float64 backend array: the bits/dim of images x (N, C, H, W), in batches,
    without gradients; the dequantization noise (and a bound's Monte Carlo draws, which use the
    global generator) seeded by ``seed``, so model and background see the same noise."""
    autodiff.manual_seed(seed)
    generator = autodiff.Generator(seed)
    out = []
    with autodiff.no_grad():
        for start in range(0, int(x.shape[0]), _SCORE_BATCH):
            batch = autodiff.Tensor(x[start:start + _SCORE_BATCH])
            out.append(B.xp.asarray(model.bits_per_dim(batch, generator=generator)))
    return B.xp.concatenate(out).astype(B.xp.float64)


# ---------------------------------------------------------------------------- the run
def _train(ctx, entry, data_name, sets, *, tag, train_data=None):
    return ctx.train(entry["model"], data_name, tag=tag, minutes=entry.get("minutes"),
                     steps=entry.get("steps"), settings=entry.get("settings"),
                     options=entry.get("options"), train_split=sets["split"],
                     train_data=train_data if train_data is not None else sets["train"])


def _mean(a):
    return float(B.xp.asarray(a).mean())


def run(ctx):
    s = ctx.settings
    data = _data(ctx)
    directions = [("fashion-mnist", "mnist", [e["model"] for e in s["models"]]),
                  ("mnist", "fashion-mnist", list(s.get("reverse", ())))]
    entries = {e["model"]: e for e in s["models"]}
    results, scores = {}, {}
    for d_in, d_out, names in directions:
        for name in names:
            key = f"{name}:{d_in}->{d_out}"
            results[key], scores[key] = _evaluate(ctx, entries[name], d_in, d_out, data)
            ctx.log(_line(key, results[key]))
    _save_scores(ctx, scores)
    from .anomaly_figure import draw
    path = draw(results, scores, ctx.figure_path("anomaly.png"))
    ctx.publish(path)
    return {"fashion_split": f"Fashion-MNIST test file, seed {FASHION_SPLIT_SEED}: "
                             f"train {FASHION_SPLIT['train']} / held out "
                             f"{FASHION_SPLIT['held_out']}",
            "train_images": int(s["train_images"]), "results": results}


def _evaluate(ctx, entry, d_in, d_out, data):
    """Train ``entry``'s model on ``d_in`` and score held-out ``d_in`` and ``d_out`` images:
    (the row of numbers, the per-image scores). The same seeds (dequantization noise) for
    the in-distribution and OOD sets of every model."""
    s = ctx.settings
    name, tag = entry["model"], f"{entry['model']}-{d_in}"
    n_score = int(entry.get("score_images", s["score_images"]))
    n_tscore = int(entry.get("train_score_images", s["train_score_images"]))
    model = _train(ctx, entry, d_in, data[d_in], tag=tag)
    x_in = data[d_in]["held_out"].x[:n_score]
    x_out = data[d_out]["held_out"].x[:n_score]
    bpd_in = bits_per_dim(model, x_in, ctx.seed + 1)
    bpd_out = bits_per_dim(model, x_out, ctx.seed + 2)
    train_mean = _mean(bits_per_dim(model, data[d_in]["train"].x[:n_tscore], ctx.seed + 3))
    typ_in, typ_out = typicality_score(bpd_in, train_mean), typicality_score(bpd_out, train_mean)
    row = {"model": name, "likelihood": model.likelihood_kind,
           "bpd_convention": model.bpd_convention, "in": d_in, "ood": d_out,
           **_training_record(ctx, tag),
           "n_in": int(bpd_in.shape[0]), "n_ood": int(bpd_out.shape[0]),
           "bpd_train": train_mean, "bpd_in": _mean(bpd_in), "bpd_ood": _mean(bpd_out),
           **_auroc("bpd", bpd_in, bpd_out), **_auroc("typicality", typ_in, typ_out)}
    scores = {"bpd_in": bpd_in, "bpd_ood": bpd_out, "typicality_in": typ_in,
              "typicality_ood": typ_out}
    if d_in == "fashion-mnist" and name in s.get("background", ()):
        _likelihood_ratio(ctx, entry, d_in, data, x_in, x_out, row, scores)
    return row, scores


def _likelihood_ratio(ctx, entry, d_in, data, x_in, x_out, row, scores):
    """Ren et al. (2019): train the background model p_theta0 (same family and config) on a
    perturbed copy of the training images, and add its bpd and the likelihood-ratio scores
    bpd_theta - bpd_theta0 to ``row`` and ``scores``."""
    rate = ctx.settings["perturb_rate"]
    train = data[d_in]["train"]
    perturbed = ArrayDataset(perturb(train.x, rate, train.info["levels"],
                                     autodiff.Generator(ctx.seed + 10)),
                             None, name=d_in, info=train.info)
    tag = f"{entry['model']}-background-{d_in}"
    background = _train(ctx, entry, d_in, data[d_in], tag=tag, train_data=perturbed)
    bg_in = bits_per_dim(background, x_in, ctx.seed + 1)     # the model's seeds: same noise
    bg_out = bits_per_dim(background, x_out, ctx.seed + 2)
    llr_in = likelihood_ratio_score(scores["bpd_in"], bg_in)
    llr_out = likelihood_ratio_score(scores["bpd_ood"], bg_out)
    row.update({"perturb_rate": rate, "background_steps": _training_record(ctx, tag)["steps"],
                "bpd_background_in": _mean(bg_in), "bpd_background_ood": _mean(bg_out),
                **_auroc("likelihood_ratio", llr_in, llr_out)})
    scores.update({"llr_in": llr_in, "llr_ood": llr_out, "background_in": bg_in,
                   "background_ood": bg_out})


def _auroc(name, score_in, score_ood):
    """{"auroc_NAME": AUROC with the OOD set positive, "auroc_NAME_se": its DeLong standard
    error}."""
    return {f"auroc_{name}": auroc(score_in, score_ood),
            f"auroc_{name}_se": auroc_standard_error(score_in, score_ood)}


def _training_record(ctx, tag):
    """Steps and training seconds of a model's run (its ``done.json``)."""
    with open(ctx.path("models", tag, "done.json"), encoding="utf-8") as f:
        done = json.load(f)
    return {"steps": int(done["steps"]), "train_seconds": float(done["train_seconds"])}


def _line(key, row):
    def a(name):
        return f"{row['auroc_' + name]:.3f} +- {row['auroc_' + name + '_se']:.3f}"
    text = (f"{key}: bpd in {row['bpd_in']:.3f}, ood {row['bpd_ood']:.3f} (train "
            f"{row['bpd_train']:.3f}); AUROC bpd {a('bpd')}, typicality {a('typicality')}")
    if "auroc_likelihood_ratio" in row:
        text += f", likelihood ratio {a('likelihood_ratio')}"
    return text


def _save_scores(ctx, scores):
    """Every score, per example, in ``OUT/scores.npz`` (keys ``MODEL:IN->OOD/NAME``)."""
    import numpy as np  # host-side: writing the per-example scores to a file
    flat = {f"{key}/{name}": np.asarray(B.to_numpy(v)) for key, sc in scores.items()
            for name, v in sc.items()}
    with atomic_open(ctx.path("scores.npz"), "wb") as f:
        np.savez(f, **flat)
