"""``refgen experiment NAME``: what generative models are for, each claim measured.

The overview refgen implements lists the uses of generative models: synthesis,
representation learning, density estimation (anomaly detection, compression), conditional
generation and the understanding of data. Each experiment here turns one claim into a command
that trains what it needs, prints its numbers, writes its figure and its ``result.json``.

An experiment is a module in this package with

- ``DESCRIPTION``: one paragraph, shown by ``refgen experiment NAME --help``;
- ``BUDGETS``: a dict from budget name to settings; ``"default"`` fits 2 CPU cores (a few
  minutes to tens of minutes), ``"tiny"`` runs in seconds for the tests;
- ``run(ctx) -> dict``: does the work in ``ctx.out`` and returns the numbers (JSON-able).

Everything an experiment shares with the others (training a registered model with resume,
writing the result, figures) is in ``refgen.experiments.common``.
"""
import importlib

__all__ = ["EXPERIMENTS", "get_experiment", "list_experiments"]

# name -> (module in this package, one-line summary for ``refgen experiment --help``)
EXPERIMENTS = {
    # -- registered experiments (one line each; keep the order of the issue) --
    "anomaly": ("anomaly", "likelihood as an anomaly score: Fashion-MNIST against MNIST, AUROC"),
    "compression": ("compression", "lossless compression by rANS at the model's bits/dim"),
    "probe": ("probe", "linear probes on latents and features against raw pixels"),
    "rare-class": ("rare_class", "a rare class helped by guided class-conditional samples"),
    "text-to-image": ("text_to_image", "captions to digits: cross-attention U-Net and "
                                       "encoder-decoder"),
    "language": ("language", "a character-level Transformer on refgen's own source"),
    "caveat": ("caveat", "likelihood and sample quality disagree (Theis et al. 2016)"),
    "dimensionality": ("dimensionality", "histogram and KDE against learned models as the "
                                         "dimension grows"),
}


def list_experiments():
    """The experiment names, in the order of ``EXPERIMENTS``."""
    return list(EXPERIMENTS)


def get_experiment(name):
    """The module of experiment ``name``; a ValueError names the known experiments."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    module = importlib.import_module(f"{__name__}.{EXPERIMENTS[name][0]}")
    for attribute in ("DESCRIPTION", "BUDGETS", "run"):
        if not hasattr(module, attribute):
            raise ValueError(f"experiment {name!r} ({module.__name__}) has no {attribute}")
    return module
