"""``run_zoo``: one representative of each of the seven families, and two classical baselines,
trained on the same data and measured by the same code (``refgen.zoo.measure``).

The overview's table of generative families (tractable likelihood? how fast does it
sample? what is its mechanism?) becomes a table of measurements: one row per model and data
set, written to ``zoo.csv`` and ``zoo.md`` with figures beside them.

Layout of a zoo directory::

    OUT/DATA/MODEL/           the model's training run (checkpoint.npz, log.jsonl, ...)
    OUT/DATA/MODEL/result.json   its measured row, written atomically once measured
    OUT/zoo.csv, OUT/zoo.md   the table (rewritten after every model)
    OUT/zoo_*.png             the figures

Resuming: a model whose ``result.json`` exists is done and never retrained (unless
``retrain``); one with a checkpoint but no result continues from its checkpoint (the time
already spent counts against its budget); so a zoo killed at any moment, run again with
the same arguments, finishes what was left and redoes nothing.

Budgets (``BUDGETS``): ``quick`` fits in about 10 minutes on 2 CPU cores; ``full`` is the
reference run; ``tiny`` trains a few steps, for tests. The training budget is training time
(``TrainConfig.minutes``, constant learning rate) except for ``tiny``, which counts steps so
that a test is deterministic.
"""
import json
import os
import shutil
import time

import autodiff

from ..data import load_dataset, toy
from ..families import get_family
from ..families.training import prepare_run
from ..fileio import atomic_open
from ..train import fit
from .baselines import BASELINES
from .measure import count_parameters, measure_model

__all__ = ["run_zoo", "REPRESENTATIVES", "BUDGETS", "DATASETS"]

# One model per family, in the taxonomy's order (``refgen.families.base.KINDS``).
REPRESENTATIVES = (("autoregressive", "made"), ("vae", "vae"), ("gan", "gan"),
                   ("flow", "realnvp"), ("diffusion", "ddpm"), ("energy", "ebm"),
                   ("score", "sde"))
# 2-D data with an exact density and modes (KL and mode coverage both apply), and images.
DATASETS = ("ring8:std=0.1", "digits")

BUDGETS = {
    # minutes of training per model, by the data's kind; examples for the likelihood;
    # samples for the quality metrics and the speed
    "tiny": {"steps": 3, "minutes": None, "n_eval": {"points": 64, "image": 16},
             "n_samples": {"points": 200, "image": 20}, "n_train_points": 2000},
    "quick": {"steps": None, "minutes": {"points": 0.3, "image": 0.4},
              "n_eval": {"points": 1000, "image": 100},
              "n_samples": {"points": 2500, "image": 300}, "n_train_points": 10_000},
    "full": {"steps": None, "minutes": {"points": 5.0, "image": 10.0},
             "n_eval": {"points": 10_000, "image": 300},
             "n_samples": {"points": 2500, "image": 1000}, "n_train_points": 10_000},
}

# Samplers chosen for cost where a family's default is slow (the row's nfe_per_sample and
# sample_options say which cost was measured): DDIM (Song et al. 2021a) instead of 1000
# ancestral steps, fewer predictor-corrector steps for the SDE; in "tiny", a few steps of
# everything (a test of the plumbing, not of quality).
SAMPLE_OPTIONS = {
    "tiny": {"ddpm": {"sampler": "ddim", "steps": 5}, "sde": {"steps": 25},
             "ebm": {"steps": 5}},
    "quick": {"ddpm": {"sampler": "ddim", "steps": 25}, "sde": {"steps": 50},
              "ebm": {"steps": 200}},
    "full": {"ddpm": {"sampler": "ddim", "steps": 100}},
}
# Config entries per budget, by (model, kind of data). The VAE's default image decoder is
# Bernoulli on binarized pixels (the binarized-MNIST benchmark), a likelihood of other data
# than the 17 grey levels the other models see; the discretized logistic models those
# levels, so the rows compare. The SDE's probability-flow likelihood is an adaptive ODE
# solve per batch; looser tolerances (stated in the row) keep the small budgets small.
_COMPARABLE = {("vae", "image"): {"decoder": "logistic"}}
SETTINGS = {
    "tiny": {**_COMPARABLE, ("sde", "image"): {"ode_rtol": 1e-2, "ode_atol": 1e-2},
             ("sde", "points"): {"ode_rtol": 1e-2, "ode_atol": 1e-2}},
    "quick": {**_COMPARABLE, ("sde", "image"): {"ode_rtol": 1e-3, "ode_atol": 1e-3},
              ("sde", "points"): {"ode_rtol": 1e-3, "ode_atol": 1e-3},
              # DDPM's bound as a stratified unbiased estimate over 100 of its 1000 terms
              ("ddpm", "points"): {"bound_timesteps": 100}},
    "full": dict(_COMPARABLE),
}


def _slug(name):
    return name.replace(":", "_").replace("=", "").replace(",", "_")


def _load(data, split, budget, data_dir):
    kwargs = {}
    if toy.parse_name(data)[0] in toy.DENSITIES:
        kwargs["n"] = budget["n_train_points"] if split != "test" else \
            max(budget["n_eval"]["points"], 2)
    return load_dataset(data, split=split, data_dir=data_dir, **kwargs)


def _truth(data):
    """(entropy or None, mixture name or None) of a toy density."""
    if toy.parse_name(data)[0] not in toy.DENSITIES:
        return None, None
    density = toy.get_density(data)
    entropy = density.entropy()[0] if density.exact else None
    mixture = data if hasattr(density, "means") else None
    return entropy, mixture


def _write_json(path, obj):
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def _train_family(name, data, run_dir, budget, kind_of_data, seed, data_dir, say, settings):
    minutes = None if budget["minutes"] is None else budget["minutes"][kind_of_data]
    options = {"seed": seed, "steps": budget["steps"]}
    if budget["steps"] is not None:
        options.update(log_every=1, checkpoint_every=1)
    _, model, config, train, _ = prepare_run(
        name, data, run_dir, options=options, minutes=minutes, data_dir=data_dir,
        settings=settings,
        eval_split=None, dtype=str(autodiff.get_default_dtype()), note=lambda text: None)
    if budget["steps"] is None:   # sparse bookkeeping: the budget is spent on training
        config = config.replace(checkpoint_every=500, log_every=50, eval_every=None)
    if budget["n_train_points"] and train.x.shape[0] > budget["n_train_points"]:
        train = load_dataset(data, split="train", n=budget["n_train_points"])
    resume = os.path.exists(os.path.join(run_dir, "checkpoint.npz"))
    if resume:
        say("continuing from its checkpoint")
    result = fit(model, train, config, resume=resume, progress=False)
    from ..families.loading import load
    model = load(result.checkpoint_path)   # EMA weights, as refgen sample uses
    return model, result.elapsed, result.step


def _measure_job(job, out_dir, budget, seed, data_dir, say, sample_options, budget_settings):
    data, family_kind, name = job
    run_dir = os.path.join(out_dir, _slug(data), name)
    os.makedirs(run_dir, exist_ok=True)
    test = _load(data, "test", budget, data_dir)
    kind_of_data = "image" if test.info.get("kind") == "image" else "points"
    entropy, mixture = _truth(data)
    start = time.perf_counter()
    settings = None
    if family_kind == "baseline":
        train, val = _load(data, "train", budget, data_dir), _load(data, "val", budget, data_dir)
        model = BASELINES[name](train.info).fit(train, val, generator=autodiff.Generator(seed))
        train_seconds, steps = time.perf_counter() - start, None
        model_name = name
    else:
        settings = budget_settings.get((name, kind_of_data))
        model, train_seconds, steps = _train_family(name, data, run_dir, budget, kind_of_data,
                                                    seed, data_dir, say, settings)
        model_name = name
    train_end = time.perf_counter()
    row, samples = measure_model(
        model, test, n_eval=budget["n_eval"][kind_of_data],
        n_samples=budget["n_samples"][kind_of_data], sample_options=sample_options,
        seed=seed, entropy=entropy, mixture=mixture)
    row["measure_seconds"] = time.perf_counter() - train_end
    row.update(family=family_kind, model=model_name, data=data, params=count_parameters(model),
               train_seconds=train_seconds, train_steps=steps,
               sample_options=sample_options or {},
               settings=settings or {})
    if family_kind == "baseline":
        row["smoothing"] = model.choice
    # host-side: a few samples kept for the figures (small: <= 64 images or 2500 points)
    from autodiff import backend as B
    keep = samples[:64] if kind_of_data == "image" else samples[:2500]
    autodiff.save({"samples": autodiff.Tensor(B.to_backend(keep))},
                  os.path.join(run_dir, "samples.npz"))
    return row


def jobs_for(datasets=DATASETS, families=None, baselines=True):
    """The (data, kind, model) triples of a zoo run, in order."""
    chosen = REPRESENTATIVES if families is None else \
        [(k, m) for k, m in REPRESENTATIVES if k in families or m in families]
    if families is not None:
        known = {k for k, _ in REPRESENTATIVES} | {m for _, m in REPRESENTATIVES} | \
            set(BASELINES) | {"baseline"}
        unknown = sorted(set(families) - known)
        if unknown:
            raise ValueError(f"unknown zoo families {', '.join(unknown)}; known: "
                             f"{', '.join(k for k, _ in REPRESENTATIVES)}, baseline")
        baselines = baselines and ("baseline" in families or
                                   any(b in families for b in BASELINES))
    jobs = []
    for data in datasets:
        jobs += [(data, kind, name) for kind, name in chosen]
        if baselines:
            jobs += [(data, "baseline", name) for name in BASELINES]
    for _, _, name in jobs:
        if name not in BASELINES:
            get_family(name)   # every representative is registered
    return jobs


def run_zoo(out_dir, budget="quick", datasets=DATASETS, families=None, retrain=False,
            seed=0, data_dir=None, dtype="float32", progress=print, figures=True):
    """Train and measure the zoo into ``out_dir``; returns the rows (dicts) in job order.

    :param budget: "tiny", "quick" or "full" (``BUDGETS``).
    :param families: kinds or model names to include (default: all seven and the baselines).
    :param retrain: redo models that are already measured (their directories are removed).
    :param progress: called with one line of text per event (None: silent).
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown zoo budget {budget!r}; known: {', '.join(BUDGETS)}")
    say_all = progress or (lambda text: None)
    spec = BUDGETS[budget]
    jobs = jobs_for(tuple(datasets), families)
    os.makedirs(out_dir, exist_ok=True)
    previous_dtype = autodiff.get_default_dtype()
    autodiff.set_default_dtype(dtype)
    rows = []
    try:
        for i, job in enumerate(jobs, 1):
            data, kind, name = job
            head = f"[{i}/{len(jobs)}] {name} ({kind}) on {data}"
            run_dir = os.path.join(out_dir, _slug(data), name)
            result_path = os.path.join(run_dir, "result.json")
            if retrain and os.path.isdir(run_dir):
                shutil.rmtree(run_dir)
            if os.path.exists(result_path):
                with open(result_path, encoding="utf-8") as f:
                    row = json.load(f)
                say_all(f"{head}: measured earlier ({result_path}), not retrained")
            else:
                say_all(f"{head}: training and measuring ...")
                row = _measure_job(job, out_dir, spec, seed, data_dir,
                                   lambda text: say_all(f"{head}: {text}"),
                                   SAMPLE_OPTIONS[budget].get(name), SETTINGS[budget])
                row["budget"] = budget
                _write_json(result_path, row)
                say_all(f"{head}: {_summary(row)}")
            rows.append(row)
            from .report import write_tables
            write_tables(rows, out_dir)
        if figures:
            from .report import write_figures
            write_figures(rows, out_dir)
    finally:
        autodiff.set_default_dtype(previous_dtype)
    return rows


def _summary(row):
    parts = []
    if row.get("nll") is not None:
        parts.append(f"nll {row['nll']:.4g} {row['nll_unit']} ({row['likelihood_kind']})")
    for key in ("kl_nats", "fid", "precision", "recall", "modes_captured", "hq_share"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4g}")
    parts.append(f"{row['samples_per_s']:.3g} samples/s, nfe {row['nfe_per_sample']}")
    parts.append(f"trained {row['train_seconds']:.1f} s, measured "
                 f"{row.get('measure_seconds', 0.0):.1f} s")
    return ", ".join(parts)
