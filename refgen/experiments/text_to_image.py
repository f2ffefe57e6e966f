"""``refgen experiment text-to-image``: conditional generation from text, in miniature.

Claim: a generative model conditioned on a sentence draws what the sentence says. Here the
sentences are captions of 8x8 digits made from their labels by several templates ("a
seven", "the digit 7", "seven, written thin"), and, on two-digit canvases (8x16: two digits
side by side), captions that compose ("a 3 left of a 7", "a seven right of a three").
A Transformer encoder reads the caption (``captions.encoder``); two image models use it:

(a) a DDPM whose U-Net cross-attends to the caption's word vectors, trained with caption
    dropout and sampled with classifier-free guidance, eps_guided = (1 + w) eps(x, c)
    - w eps(x, null) (Ho & Salimans 2022, Eq. 6) at w = 0, 1, 3 (``captions.diffusion``);
    the two-digit model starts from the one-digit model's weights (the U-Net is
    convolutional, with the column coordinate as an input channel, so they apply to 8x16);
(b) an encoder-decoder Transformer that writes the 17 grey levels in raster order,
    p_theta(x | c) = prod_i p_theta(k_i | k_<i, c) (``captions.autoregressive``).

Measured: the accuracy of the registered ``classifier`` family (trained on the digits) on
the generated images against the digit(s) the caption names (on a two-digit canvas each
8x8 half is classified, and a sample counts when both halves are right), per model and
guidance weight, beside the classifier's accuracy on real test images with their captions
(the ceiling) and chance (10%, or 1% for two digits). For captions that name a style,
the share of samples whose ink mass falls on the named side of the training class median
(chance 50%).
"""
import json
import math
import os
import time

import autodiff
from autodiff import backend as B

from ..data import ArrayDataset, load_dataset
from ..fileio import atomic_open
from ..train import TrainConfig, fit, load_checkpoint
from ..train.checkpoint import restore_modules
from .captions import (CaptionDiffusion, CaptionPixelTransformer, autoregressive_config,
                       diffusion_config)
from .captions import text as T

__all__ = ["DESCRIPTION", "BUDGETS", "run", "make_canvases", "eval_captions",
           "caption_accuracy"]

DESCRIPTION = (
    "Captions of digits made from their labels by templates ('a seven', 'the digit 7', "
    "'seven, written thin') and, on two-digit 8x16 canvases, captions that compose ('a 3 "
    "left of a 7'). A Transformer encoder reads the caption; a DDPM U-Net cross-attends to "
    "it (classifier-free guidance, w = 0, 1, 3) and an encoder-decoder Transformer writes "
    "the pixels in raster order. Reports the digits classifier's accuracy against the "
    "caption per model and guidance weight, with caption-titled sample grids.")

_COMMON = {"canvases": [1, 2], "guidance": [0.0, 1.0, 3.0], "levels": 17}
BUDGETS = {
    # 2 CPU cores, about 15 minutes in all: 11 minutes of training budget, the
    # classifier's 2000 steps (about a minute), sampling 4 x 200 images per canvas
    "default": {**_COMMON, "classifier_steps": 2000, "pairs": 6000,
                "diffusion": {"minutes": {1: 4.0, 2: 4.0}, "batch_size": 32, "lr": 2e-3,
                              "ema_decay": 0.99, "warm_start": True,
                              "config": {"model_channels": 16, "num_groups": 4,
                                         "d_model": 32}},
                "autoregressive": {"minutes": {1: 1.5, 2: 1.5}, "batch_size": 32, "lr": 2e-3,
                                   "ema_decay": 0.99, "config": {"d_model": 32}},
                "sample_steps": 25, "eval_per_canvas": 200, "grid_captions": 6,
                "grid_samples": 5},
    # seconds, for the test: tiny networks, a few steps, a few samples
    "tiny": {**_COMMON, "classifier_steps": 30, "pairs": 64,
             "diffusion": {"steps": 3, "batch_size": 16, "lr": 1e-3, "ema_decay": 0.9,
                           "warm_start": True,
                           "config": {"model_channels": 8, "num_groups": 4, "d_model": 16,
                                      "nhead": 2, "cross_heads": 2, "encoder_layers": 1,
                                      "timesteps": 50}},
             "autoregressive": {"steps": 3, "batch_size": 16, "lr": 1e-3, "ema_decay": 0.9,
                                "config": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1,
                                           "num_decoder_layers": 1}},
             "sample_steps": 3, "eval_per_canvas": 10, "grid_captions": 2, "grid_samples": 2},
}


# ---------------------------------------------------------------------------- data
def make_canvases(x, digits, styles, k, n=None, generator=None):
    """Canvases of k digits side by side and their labels.

    k = 1: the images themselves. k = 2: n canvases (N, C, H, 2W), each two images drawn
    independently at random, with digits (n, 2) and styles (n, 2) = (left, right).
    """
    if k == 1:
        return x, digits, styles
    if k != 2:
        raise ValueError(f"make_canvases: k (digits per canvas) must be 1 or 2, got {k!r}")
    if n is None or n < 1:
        raise ValueError(f"make_canvases: n must be a positive number of canvases, got {n!r}")
    gen = generator if generator is not None else B.default_generator()
    left = gen.integers(0, x.shape[0], (n,))
    right = gen.integers(0, x.shape[0], (n,))
    canvas = B.xp.concatenate([x[left], x[right]], axis=3)               # (n, C, H, 2W)
    return (canvas, B.xp.stack([digits[left], digits[right]], axis=1),
            B.xp.stack([styles[left], styles[right]], axis=1))


def eval_captions(k, n, generator, length=None):
    """n evaluation captions for k digits per canvas: the digits (k = 1: 0..9 in turn;
    k = 2: uniform pairs), random styles, templates in turn (each equally often).
    Returns (tokens (n, S) with S = ``length`` or the longest caption, digits (n,) or
    (n, 2), styles like digits, template (n,))."""
    xp = B.xp
    if k == 1:
        digits = xp.arange(n, dtype=B.numpy.int64) % 10
        styles = generator.integers(0, 2, (n,))
        J = len(T.SINGLE_TEMPLATES)
    else:
        digits = generator.integers(0, 10, (n, 2))
        styles = generator.integers(0, 2, (n, 2))
        J = len(T.PAIR_TEMPLATES)
    template = (xp.arange(n, dtype=B.numpy.int64) // (10 if k == 1 else 1)) % J
    table = T.caption_table(digits, styles, length)                      # (n, J, S)
    return table[xp.arange(n), template], digits, styles, template


def _classify(classifier, x):
    """Predicted digit of each 8x8 image x (N, 1, 8, 8) -> (N,) backend int array;
    ``classifier`` is the ``classifier`` family's model or its ``DigitClassifier``."""
    net = getattr(classifier, "net", classifier)
    dtype = net.head.weight.dtype
    with autodiff.no_grad():
        return net(autodiff.Tensor(x.astype(dtype))).data.argmax(axis=1)


def caption_accuracy(classifier, x, digits):
    """Share of canvases whose every 8x8 part the classifier reads as the caption's digit,
    and the per-digit share: x (N, C, 8, 8 k), digits (N,) or (N, k) -> (all, per digit)."""
    xp = B.xp
    x = x.data if isinstance(x, autodiff.Tensor) else x
    digits = digits.reshape(digits.shape[0], -1)
    k = digits.shape[1]
    width = x.shape[3] // k
    right = xp.stack([_classify(classifier, x[:, :, :, j * width:(j + 1) * width]) == digits[:, j]
                      for j in range(k)], axis=1)                         # (N, k)
    return float(right.all(axis=1).mean()), float(right.mean())


def style_agreement(x, digits, styles, template, medians, k):
    """Among captions whose template names the style, the share of canvas parts whose ink
    mass lies on the named side of the training median of the named digit (chance 0.5)."""
    xp = B.xp
    x = x.data if isinstance(x, autodiff.Tensor) else x
    named = template == (2 if k == 1 else 4)          # the templates with "thin"/"thick"
    if not bool(named.any()):
        return None
    digits = digits.reshape(digits.shape[0], -1)[named]
    styles = styles.reshape(styles.shape[0], -1)[named]
    x = x[named]
    width = x.shape[3] // k
    agree = xp.stack([T.ink_styles(x[:, :, :, j * width:(j + 1) * width], digits[:, j],
                                   medians) == styles[:, j] for j in range(k)], axis=1)
    return float(agree.mean())


# ---------------------------------------------------------------------------- training
def _train(ctx, trainable, x, tag, spec):
    """Train ``trainable`` on images x with batches (x, example index) by ``refgen.train.fit``
    into OUT/models/TAG (resumable; a finished run is loaded), then load its EMA weights."""
    run_dir = ctx.path("models", tag, "")
    checkpoint = os.path.join(run_dir, "checkpoint.npz")
    done = os.path.join(run_dir, "done.json")
    if ctx.retrain:
        # fit never overwrites a checkpoint: a retrain starts from an empty run folder
        for stale in (checkpoint, done, os.path.join(run_dir, "log.jsonl")):
            if os.path.exists(stale):
                os.remove(stale)
    if not (os.path.exists(done) and os.path.exists(checkpoint)):
        options = {"steps": spec.get("steps", 10 ** 6), "minutes": spec.get("minutes"),
                   "batch_size": spec["batch_size"], "lr": spec["lr"],
                   "ema_decay": spec["ema_decay"],
                   "grad_clip": 1.0, "log_every": 50, "checkpoint_every": 500,
                   "seed": ctx.seed, "out_dir": run_dir}
        data = ArrayDataset(x, B.xp.arange(x.shape[0], dtype=B.numpy.int64), name=tag)
        budget = f"{spec['minutes']} min" if spec.get("minutes") else f"{spec['steps']} steps"
        ctx.log(f"{tag}: training ({budget})")
        result = fit(trainable, data, TrainConfig.from_dict(options),
                     resume=os.path.exists(checkpoint), progress=False)
        with atomic_open(done, "w", encoding="utf-8") as f:
            json.dump({"steps": int(result.step), "train_seconds": round(result.elapsed, 1)}, f)
    ckpt = load_checkpoint(checkpoint)
    restore_modules(trainable, ckpt, use_ema=True)
    for module in trainable.modules().values():
        module.eval()
    with open(done, encoding="utf-8") as f:    # host-side: the marker file written above
        record = json.load(f)
    return {"steps": int(ckpt["step"]), "train_seconds": record["train_seconds"]}


# ---------------------------------------------------------------------------- the run
def run(ctx):
    st = ctx.settings
    xp = B.xp
    gen = autodiff.Generator(ctx.seed)
    classifier = ctx.train("classifier", "digits", steps=st["classifier_steps"],
                           tag="classifier-digits")
    dtype = classifier.net.head.weight.dtype
    train = load_dataset("digits", "train")
    test = load_dataset("digits", "test")
    medians = T.class_ink_medians(train.x, train.y)
    train_styles = T.ink_styles(train.x, train.y, medians)
    test_styles = T.ink_styles(test.x, test.y, medians)
    results = {"chance": {}, "real_test": {}, "models": {}}
    grids = {}
    # one caption length for both canvases, so that one set of weights reads both (the
    # encoder's extra padding is invisible)
    S = max(T.caption_length(1), T.caption_length(2))
    single_diffusion = None
    for k in st["canvases"]:
        name = "single" if k == 1 else "pair"
        x, digits, styles = make_canvases(train.x, train.y, train_styles, k, st["pairs"], gen)
        x = x.astype(dtype)
        table = T.caption_table(digits, styles, S)
        shape = tuple(int(s) for s in x.shape[1:])
        # the ceiling: the classifier on real test canvases against their own captions
        tx, tdig, _ = make_canvases(test.x, test.y, test_styles, k, 1000, gen)
        results["real_test"][name] = caption_accuracy(classifier, tx, tdig)[0]
        results["chance"][name] = 0.1 ** k
        tokens, edigits, estyles, etemplate = eval_captions(k, st["eval_per_canvas"], gen, S)
        texts = T.detokenize(tokens)

        diff = CaptionDiffusion(diffusion_config(shape, S, sample_steps=st["sample_steps"],
                                                 seed=ctx.seed, **st["diffusion"]["config"]),
                                table)
        dspec = dict(st["diffusion"], minutes=st["diffusion"].get("minutes", {}).get(k))
        if k == 2 and dspec.get("warm_start") and single_diffusion is not None:
            # the U-Net is convolutional and the coordinate channel is in units of the
            # height, so the one-digit model's weights apply to 8x16 as they are: start
            # there, and the two-digit run has only composition left to learn
            diff.model.load_state_dict(single_diffusion.model.state_dict())
            ctx.log("diffusion-pair: starting from the single-digit model's weights")
        dtrain = _train(ctx, diff, x, f"diffusion-{name}", dspec)
        if k == 1:
            single_diffusion = diff
        ar = CaptionPixelTransformer(autoregressive_config(shape, st["levels"], S, seed=ctx.seed,
                                                           **st["autoregressive"]["config"]),
                                     table)
        aspec = dict(st["autoregressive"],
                     minutes=st["autoregressive"].get("minutes", {}).get(k))
        atrain = _train(ctx, ar, x, f"autoregressive-{name}", aspec)

        # the grid: a few captions (different digits and templates), each drawn n times
        # (single digits: caption i names digit i mod 10 with template (i // 10) mod 5, so
        # steps of 11 give a new digit and a new template on every row)
        pick = (xp.arange(st["grid_captions"], dtype=B.numpy.int64) * 11) % tokens.shape[0]
        grid_tokens = xp.repeat(tokens[pick], st["grid_samples"], axis=0)
        grids[(name, "captions")] = [texts[int(i)] for i in B.to_numpy(pick)]
        rows = {}
        for w in st["guidance"]:
            t0 = time.time()
            samples = diff.sample(tokens, autodiff.Generator(ctx.seed + 1), guidance=w)
            seconds = round(time.time() - t0, 1)
            acc, per_digit = caption_accuracy(classifier, samples, edigits)
            rows[f"diffusion w={w:g}"] = {
                "accuracy": acc, "per_digit_accuracy": per_digit,
                "style_agreement": style_agreement(samples, edigits, estyles, etemplate,
                                                   medians, k),
                "nfe_per_sample": diff.nfe_per_sample(w), "sample_seconds": seconds, **dtrain}
            grids[(name, f"diffusion w={w:g}")] = diff.sample(
                grid_tokens, autodiff.Generator(ctx.seed + 2), guidance=w)
            ctx.log(f"{name}: diffusion w={w:g}: accuracy {acc:.3f} (per digit {per_digit:.3f})")
        t0 = time.time()
        samples = ar.sample(tokens, autodiff.Generator(ctx.seed + 1))
        seconds = round(time.time() - t0, 1)
        acc, per_digit = caption_accuracy(classifier, samples, edigits)
        with autodiff.no_grad():
            test_nll = _ar_test_nll(ar, tx.astype(dtype), tdig, k, S)
        rows["autoregressive"] = {
            "accuracy": acc, "per_digit_accuracy": per_digit,
            "style_agreement": style_agreement(samples, edigits, estyles, etemplate, medians, k),
            "nfe_per_sample": ar.num_pixels, "sample_seconds": seconds,
            "test_bits_per_dim": test_nll, **atrain}
        grids[(name, "autoregressive")] = ar.sample(grid_tokens, autodiff.Generator(ctx.seed + 2))
        ctx.log(f"{name}: autoregressive: accuracy {acc:.3f} (per digit {per_digit:.3f}), "
                f"test {test_nll:.3f} bits/dim")
        results["models"][name] = rows
        ctx.log(f"{name}: real test canvases {results['real_test'][name]:.3f}, chance "
                f"{results['chance'][name]:.3f}")
    for k in st["canvases"]:
        name = "single" if k == 1 else "pair"
        path = _figure(ctx, grids, name, st["grid_samples"])
        ctx.publish(path)
        ctx.log(f"figure: {path}")
    results["eval_captions_per_canvas"] = st["eval_per_canvas"]
    return results


def _ar_test_nll(ar, tx, tdig, k, length, n=200):
    """The autoregressive model's -log2 p_theta(x | c) / D on test canvases with their own
    captions (first template), in bits per dimension on the 17-level grid."""
    tx, tdig = tx[:n], tdig[:n]
    styles = B.xp.zeros_like(tdig)          # the first templates do not name the style
    tokens = T.caption_table(tdig, styles, length)[:, 0]
    lp = ar.log_prob(autodiff.Tensor(tx), tokens)
    return float(-lp.mean().item() / (ar.num_pixels * math.log(2)))


def _figure(ctx, grids, name, n_samples):
    """Sample grids: one panel per model (and guidance weight), one row per caption (the
    caption as the row's title), the caption's n_samples samples side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np   # host-side: the figure is drawn on the host

    texts = grids[(name, "captions")]
    panels = [key[1] for key in grids if key[0] == name and key[1] != "captions"]
    width = 2 if name == "pair" else 1
    fig, axes = plt.subplots(len(texts), len(panels), squeeze=False,
                             figsize=(0.45 * width * n_samples * len(panels) + 2.0,
                                      0.6 * len(texts) + 0.8))
    for c, panel in enumerate(panels):
        samples = B.to_numpy(grids[(name, panel)].data)                  # (R n, 1, H, W)
        for r, text in enumerate(texts):
            row = samples[r * n_samples:(r + 1) * n_samples, 0]
            strip = np.concatenate([np.pad(img, ((0, 0), (0, 1)), constant_values=0.5)
                                    for img in row], axis=1)
            ax = axes[r][c]
            ax.imshow(strip, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=7)
            if r == 0:
                ax.set_title(panel, fontsize=8)
    fig.suptitle(f"text-to-image: {'two-digit 8x16' if width == 2 else '8x8'} canvases, "
                 f"budget {ctx.budget}", fontsize=9)
    fig.tight_layout()
    path = ctx.figure_path(f"text_to_image_{name}.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
