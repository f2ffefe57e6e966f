"""The ``refgen`` command: train, sample, evaluate, and look at data.

    refgen train FAMILY --data NAME [--steps N] [--out DIR] [--resume] [--device cpu|gpu] ...
    refgen sample --checkpoint PATH --n N --out grid.png|samples.npy
    refgen eval --checkpoint PATH [--data NAME] [--metrics a,b] [--n N] [--extractor NAME]
    refgen eval --samples FILE.npy|DIR --data NAME [--metrics fid,kid,is,pr,dc]
    refgen data list | download NAME|inception | show NAME [--out PNG]

Every command explains itself with ``--help``, including an example. Errors a user can fix
(an unknown family or data set, a missing or corrupt file, an option out of range, CuPy
missing for ``--device gpu``) end the command with one line on stderr and exit status 1;
set ``REFGEN_DEBUG=1`` to see the traceback instead.

A run directory (``--out``, default ``runs/FAMILY-DATA``) holds ``config.json``,
``log.jsonl``, ``checkpoint.npz`` (see ``refgen.train``) and ``loss.png``. The checkpoint
records the family, its config (with the data set's name and the dtype under ``"data"`` and
``"dtype"``), so ``eval`` and ``sample`` need nothing but its path.
"""
import argparse
import json
import os
import sys
import textwrap

__all__ = ["main", "build_parser", "CLIError"]

DTYPES = ("float32", "float64")
DEVICES = ("cpu", "gpu")


class CLIError(Exception):
    """A mistake the user can fix; ``main`` prints its one-line message and exits 1."""


# --------------------------------------------------------------------------- helpers
def _setup(device, dtype=None):
    """Select the backend (before any tensor exists) and the default float dtype."""
    import autodiff
    if device not in DEVICES:
        raise CLIError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    if device == "gpu":
        try:
            autodiff.set_backend("cupy")
        except (RuntimeError, ImportError) as exc:
            raise CLIError(f"--device gpu needs CuPy and an NVIDIA GPU: {exc}") from None
    if dtype is not None:
        autodiff.set_default_dtype(dtype)


def _load_data(name, split, data_dir):
    from refgen import data
    return data.load_dataset(name, split=split, data_dir=data_dir)


def _restore(checkpoint_path, device, use_ema=True):
    """(checkpoint dict, family module, trainable with the checkpoint's weights): what
    ``refgen.load`` returns, so the command and a notebook use the same model."""
    from refgen import families
    from refgen.families.loading import load_with_checkpoint
    _setup(device)  # first: the checkpoint's arrays then load onto the chosen backend
    trainable, ckpt = load_with_checkpoint(checkpoint_path, ema=use_ema)
    return ckpt, families.get_family(ckpt["family"]), trainable


def _parse_settings(pairs):
    """``--set key=value`` pairs as a dict; values are read as JSON when they parse
    (numbers, true/false, null, lists), else kept as strings."""
    out = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set hidden=256")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out[key.strip()] = value
    return out


def _atomic_save_npy(array, path):
    # host-side: np.save writes the host copy of the samples to a file
    import numpy as np
    from refgen.fileio import atomic_open
    with atomic_open(path, "wb") as f:
        np.save(f, array)
    return path


def _plot_points(points, path, data_name, title):
    """Scatter 2-D points, over the true density when ``data_name`` is a toy density."""
    from refgen import plotting
    density = None
    try:
        from refgen.data import toy
        density = toy.get_density(data_name)
    except (ImportError, ValueError, KeyError, AttributeError):
        density = None  # real 2-D data (e.g. faithful): no true density to draw
    return plotting.plot_samples_over_density(points, path, density=density, title=title)


def _write_samples(x, path, info, data_name, title):
    """Samples to ``path``: ``.npy`` raw array; ``.png``/``.pdf``/``.svg`` a picture."""
    from refgen import plotting
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _atomic_save_npy(plotting.to_host(x), path)
    if ext not in (".png", ".pdf", ".svg", ".jpg"):
        raise CLIError(f"--out {path}: unknown file type {ext or '(none)'!r}; use .png (a "
                       "picture) or .npy (the raw samples)")
    shape = tuple(x.shape)
    if len(shape) == 4:
        lo_hi = tuple((info or {}).get("value_range", (0.0, 1.0)))
        return plotting.save_image_grid(x, path, value_range=lo_hi, title=title)
    if len(shape) == 2 and shape[1] == 2:
        return _plot_points(x, path, data_name, title)
    raise CLIError(f"cannot draw samples of shape {shape} (images (N, C, H, W) or points "
                   f"(N, 2)); write them with --out samples.npy")


def _parse_metrics(text):
    if not text:
        return None
    return [m for part in text for m in part.replace(",", " ").split() if m]


def _resume_or_set_aside(out_dir, resume):
    """Whether ``fit`` resumes, after dealing with what ``out_dir`` already holds; one line
    on stderr says what was done with it.

    * A fresh run into a folder with an earlier run's checkpoint moves that folder aside to
      ``OUT.1`` (``.2``, ...; nothing is deleted), so re-running a command works.
    * ``--resume`` without a checkpoint (the run was stopped before its first one) starts
      from step 0.
    """
    from refgen.train import CHECKPOINT_NAME
    has_checkpoint = os.path.exists(os.path.join(out_dir, CHECKPOINT_NAME))
    if resume and not has_checkpoint:
        print(f"refgen train: --resume: no checkpoint in {out_dir} yet (the run stopped "
              "before its first one): starting from step 0", file=sys.stderr)
        return False
    if not resume and has_checkpoint:
        n = 1
        while os.path.exists(f"{out_dir}.{n}"):
            n += 1
        os.rename(out_dir, f"{out_dir}.{n}")
        print(f"refgen train: {out_dir} held an earlier run: moved it to {out_dir}.{n} and "
              "started afresh (--resume continues a run instead)", file=sys.stderr)
    return resume


# --------------------------------------------------------------------------- commands
def cmd_train(args):
    _setup(args.device, args.dtype)
    from refgen.families.training import prepare_run
    from refgen.train import fit
    out_dir = args.out or os.path.join("runs", f"{args.family}-{args.data}")
    options = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
               "lr_schedule": args.lr_schedule, "ema_decay": args.ema_decay,
               "seed": args.seed, "eval_every": args.eval_every,
               "checkpoint_every": args.checkpoint_every, "log_every": args.log_every}
    _, trainable, train_config, train_data, eval_data = prepare_run(
        args.family, args.data, out_dir, settings=_parse_settings(args.set), options=options,
        minutes=args.minutes, dtype=args.dtype, data_dir=args.data_dir,
        train_split=args.train_split, eval_split=args.eval_split,
        note=lambda text: print(f"refgen: note: {text}", file=sys.stderr))
    resume = _resume_or_set_aside(out_dir, args.resume)
    result = fit(trainable, train_data, train_config, eval_data=eval_data,
                 resume=resume, progress=not args.quiet)
    try:
        from refgen import plotting
        plotting.plot_loss_curves(result.log_path, os.path.join(out_dir, "loss.png"),
                                  title=f"{args.family} on {args.data}")
    except ValueError as exc:  # e.g. nothing logged yet; the run itself succeeded
        print(f"refgen: note: no loss curve drawn ({exc})", file=sys.stderr)
    numbers = {**result.metrics, **result.eval_metrics}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in numbers.items()
                      if k in ("loss", "accuracy") or k.startswith("eval/"))
    budget = " (stopped by --minutes)" if result.stopped_by_time else ""
    print(f"trained {args.family} on {args.data} to step {result.step} in "
          f"{result.elapsed:.1f} s of training{budget}: {shown}")
    print(f"checkpoint: {result.checkpoint_path}")
    print(f"log: {result.log_path}  loss curve: {os.path.join(out_dir, 'loss.png')}")
    return 0


def cmd_sample(args):
    import autodiff
    ckpt, family, trainable = _restore(args.checkpoint, args.device, use_ema=not args.no_ema)
    sample = getattr(trainable, "sample", None)
    if not callable(sample):
        raise CLIError(f"family {ckpt['family']!r} cannot sample: it is not a generative "
                       "model (its Trainable has no sample method)")
    if args.n < 1:
        raise CLIError(f"--n must be a positive integer, got {args.n}")
    generator = autodiff.Generator(args.seed)
    options = _sample_options(args)
    with autodiff.no_grad():
        x = sample(args.n, generator, **options)
    data_name = ckpt["config"].get("data")
    info = {"value_range": ckpt["config"].get("value_range", (0.0, 1.0))}
    path = _write_samples(x, args.out, info, data_name,
                          title=f"{ckpt['family']} samples, step {ckpt['step']}")
    print(f"wrote {args.n} samples of shape {tuple(x.shape[1:])} to {path}")
    return 0


def _sample_options(args):
    """The sampler options given on the command line, as keyword arguments of
    ``model.sample`` (a family refuses one it does not have, by name)."""
    import autodiff
    options = {"sampler": args.sampler, "steps": args.steps, "guidance": args.guidance,
               "temperature": args.temperature}
    options = {k: v for k, v in options.items() if v is not None}
    if getattr(args, "label", None) is not None:
        options["cond"] = autodiff.full((args.n,), args.label, dtype="int64")
    return options


SAMPLE_METRICS = ("fid", "kid", "is", "pr", "dc")   # refgen.metrics.report.SAMPLE_METRICS


def _load_samples(path, example_shape):
    """Samples from a ``.npy`` array or a folder of ``.png`` images, as a host float array.

    PNGs are read with matplotlib (values in [0, 1]); an RGB(A) picture of a grey data set
    (``example_shape[0] == 1``) must have R = G = B; alpha is dropped. (N, H, W) arrays of a
    one-channel data set get the channel axis.
    """
    # host-side: np.load and matplotlib.image.imread read files into host arrays
    import numpy as np
    if os.path.isdir(path):
        import matplotlib.image as mpimg  # host-side: PNG decoding
        names = sorted(f for f in os.listdir(path) if f.lower().endswith(".png"))
        if not names:
            raise CLIError(f"--samples {path}: the folder holds no .png images")
        images = []
        for name in names:
            img = np.asarray(mpimg.imread(os.path.join(path, name)), dtype=np.float64)
            if img.ndim == 3:
                img = img[..., :3]                      # drop alpha
                if example_shape and example_shape[0] == 1:
                    if not np.allclose(img, img[..., :1]):
                        raise CLIError(f"{os.path.join(path, name)} is a colour image, but the "
                                       f"data set's examples have shape {tuple(example_shape)}")
                    img = img[..., :1]
                img = img.transpose(2, 0, 1)            # (C, H, W)
            else:
                img = img[None]                         # grey (1, H, W)
            if images and img.shape != images[0].shape:
                raise CLIError(f"{os.path.join(path, name)} has shape {img.shape}, but "
                               f"{os.path.join(path, names[0])} has {images[0].shape}")
            images.append(img)
        return np.stack(images)
    if not os.path.isfile(path):
        raise CLIError(f"--samples {path}: no such file or folder")
    if not path.lower().endswith(".npy"):
        raise CLIError(f"--samples {path}: give a .npy array or a folder of .png images")
    try:
        # Memory-mapped first, so a header that claims more data than the file holds is
        # refused by its size instead of allocating what it claims; then an owned copy.
        x = np.array(np.load(path, mmap_mode="r", allow_pickle=False))
    except ValueError as exc:
        raise CLIError(f"--samples {path}: not a readable .npy array ({exc})") from None
    if not np.issubdtype(x.dtype, np.floating):
        raise CLIError(f"--samples {path}: holds {x.dtype} values; save samples as floats "
                       "in [0, 1] (8-bit images: divide by 255)")
    if example_shape and len(example_shape) == 3 and example_shape[0] == 1 and \
            x.ndim == 3 and tuple(x.shape[1:]) == tuple(example_shape[1:]):
        x = x[:, None]
    return x


def _draw_samples(sample, n, seed, batch_size, options=None):
    """n samples from ``sample(n, generator, **options)`` in chunks of ``batch_size``, one
    generator."""
    import autodiff
    from autodiff import backend as B
    generator = autodiff.Generator(seed)
    parts = []
    with autodiff.no_grad():
        for start in range(0, n, batch_size):
            x = sample(min(batch_size, n - start), generator, **(options or {}))
            parts.append(x.data if isinstance(x, autodiff.Tensor) else B.to_backend(x))
    return B.xp.concatenate(parts, axis=0)


def _sample_report(args, samples, data_name):
    from refgen.metrics.report import evaluate_samples
    wanted = [m for m in args._wanted if m in SAMPLE_METRICS] if args._wanted else None
    return evaluate_samples(samples, data_name, metrics=wanted, extractor=args.extractor,
                            n=args._n, seed=args.seed, split=args.split,
                            data_dir=args.data_dir, extractor_weights=args.extractor_weights,
                            fid_method=args.fid_method)


_REPORT_NUMBERS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall",
                   "density", "coverage")


def _print_eval(args, header, family_numbers, report, extra):
    from refgen.metrics.report import format_report
    if args.json:
        out = dict(extra)
        out.update(family_numbers)
        if report is not None:
            out.update(report)
        print(json.dumps(out))
        return
    print(header)
    if extra.get("likelihood_kind"):
        from refgen.families.base import LIKELIHOOD_KINDS
        print(f"  likelihood: {extra['likelihood_kind']} "
              f"({LIKELIHOOD_KINDS[extra['likelihood_kind']].split(':')[0].split(' (')[0]})")
    for k, v in family_numbers.items():
        note = f"  ({extra['bpd_convention']})" if k == "bpd" and "bpd_convention" in extra \
            else ""
        print(f"  {k:<12} {v:.6g}{note}")
    if report is not None:
        print(format_report(report))


def cmd_eval(args):
    if bool(args.checkpoint) == bool(args.samples):
        raise CLIError("give either --checkpoint PATH (a trained model) or --samples "
                       "FILE.npy|DIR (saved samples) with --data NAME")
    if args.n is not None and args.n < 2:
        raise CLIError(f"--n must be an integer >= 2, got {args.n}")
    wanted = _parse_metrics(args.metrics)
    args._wanted = wanted
    if args.samples:
        return _eval_samples(args, wanted)
    return _eval_checkpoint(args, wanted)


def _eval_samples(args, wanted):
    from refgen.metrics.report import parse_metric_names
    _setup(args.device)
    if wanted:
        parse_metric_names(wanted, SAMPLE_METRICS)   # unknown names list the known ones
    if not args.data:
        raise CLIError("--samples needs --data NAME, the data set to compare against")
    reference = _load_data(args.data, args.split, args.data_dir)
    samples = _load_samples(args.samples, tuple(reference.info.get("shape", ())))
    args._n = args.n
    report = _sample_report(args, samples, reference)
    _print_eval(args, f"samples {args.samples}:", {}, report,
                {"samples": args.samples, "data": args.data, "split": args.split})
    return 0


def _eval_checkpoint(args, wanted):
    from refgen.families.likelihood import has_likelihood, model_bits_per_dim
    ckpt, family, trainable = _restore(args.checkpoint, args.device, use_ema=not args.no_ema)
    name = ckpt["family"]
    evaluate = getattr(trainable, "evaluate", None)
    sample = getattr(trainable, "sample", None)
    if not wanted and not callable(evaluate):
        hint = (f"; ask for sample metrics with --metrics {','.join(SAMPLE_METRICS)}"
                if callable(sample) else "")
        raise CLIError(f"family {name!r} defines no evaluation of its own{hint}")
    data_name = args.data or ckpt["config"].get("data")
    if not data_name:
        raise CLIError(f"the checkpoint {args.checkpoint} does not record its data set; "
                       "give --data NAME")
    dataset = _load_data(data_name, args.split, args.data_dir)
    for module in trainable.modules().values():
        module.eval()

    sample_wanted = [m for m in (wanted or []) if m in SAMPLE_METRICS]
    other = [m for m in (wanted or []) if m not in SAMPLE_METRICS and m != "bpd"]
    likelihood = has_likelihood(trainable)
    results = {}
    # the family's own metric names are known only by running its evaluate(): run it when
    # it is asked for, or when a name is not one of the sample metrics this model supports
    cheap = [m for m in SAMPLE_METRICS if callable(sample)] + (["bpd"] if likelihood else [])
    if callable(evaluate) and (not wanted or any(m not in cheap for m in wanted)):
        import autodiff
        with autodiff.no_grad():
            results = evaluate(dataset, None)
    known = list(results) + [m for m in SAMPLE_METRICS if callable(sample)] + \
        (["bpd"] if likelihood or "bpd" in results else [])
    known = list(dict.fromkeys(known))
    unknown = [m for m in (wanted or []) if m not in known]
    if unknown:
        why = ""
        if any(m in SAMPLE_METRICS for m in unknown) and not callable(sample):
            why = (f" (sample metrics need samples: family {name!r} cannot sample, it is "
                   "not a generative model)")
        raise CLIError(f"unknown metric(s) {', '.join(map(repr, unknown))} for family "
                       f"{name!r}{why}; "
                       f"known: {', '.join(known) or '(none)'}")
    numbers = dict(results) if not wanted else {m: results[m] for m in other}
    extra = {"checkpoint": args.checkpoint, "family": name, "step": ckpt["step"],
             "data": data_name, "split": args.split}
    if wanted and "bpd" in wanted:
        numbers["bpd"], extra["bpd_convention"] = model_bits_per_dim(
            trainable, dataset, seed=args.seed, family_results=results)
    elif "bpd" in numbers and getattr(trainable, "bpd_convention", None):
        extra["bpd_convention"] = trainable.bpd_convention   # the family's own evaluate
    if getattr(trainable, "likelihood_kind", None):
        extra["likelihood_kind"] = trainable.likelihood_kind
    report = None
    if sample_wanted:
        args._n = args.n if args.n is not None else min(len(dataset), 10_000)
        samples = _draw_samples(sample, args._n, args.seed, batch_size=500,
                                options=_sample_options(args))
        lo, hi = (float(v) for v in ckpt["config"].get("value_range", (0.0, 1.0)))
        if (lo, hi) != (0.0, 1.0):   # e.g. a model of 2x - 1 in [-1, 1]: back to [0, 1]
            samples = (samples - lo) / (hi - lo)
        report = _sample_report(args, samples, dataset)
        extra["samples_drawn"] = args._n
    _print_eval(args, f"{name} at step {ckpt['step']} on {data_name} ({args.split}, "
                      f"{len(dataset)} examples):", numbers, report, extra)
    return 0


def cmd_zoo(args):
    _setup(args.device)
    from refgen.zoo import DATASETS, run_zoo
    families = _parse_metrics(args.families)
    datasets = _parse_metrics(args.data) or list(DATASETS)
    out = args.out or os.path.join("runs", f"zoo-{args.budget}")
    rows = run_zoo(out, budget=args.budget, datasets=datasets, families=families,
                   retrain=args.retrain, seed=args.seed, data_dir=args.data_dir,
                   progress=None if args.quiet else print)
    if args.figures:
        import shutil
        os.makedirs(args.figures, exist_ok=True)
        for name in sorted(os.listdir(out)):
            if name.startswith("zoo") and os.path.isfile(os.path.join(out, name)):
                shutil.copyfile(os.path.join(out, name), os.path.join(args.figures, name))
    print(f"zoo: {len(rows)} rows in {os.path.join(out, 'zoo.md')} and zoo.csv; figures "
          f"zoo_*.png in {out}" + (f", copied to {args.figures}" if args.figures else ""))
    return 0


def cmd_experiment(args):
    _setup(args.device)
    from refgen.experiments import get_experiment
    from refgen.experiments.common import ExperimentContext
    module = get_experiment(args.name)
    if args.budget not in module.BUDGETS:
        raise CLIError(f"--budget {args.budget!r} is not a budget of experiment {args.name!r}; "
                       f"it has: {', '.join(module.BUDGETS)}")
    out = args.out or os.path.join("runs", f"experiment-{args.name}-{args.budget}")
    ctx = ExperimentContext(name=args.name, out=out, budget=args.budget,
                            settings=dict(module.BUDGETS[args.budget]), seed=args.seed,
                            figures=args.figures, data_dir=args.data_dir,
                            retrain=args.retrain, progress=None if args.quiet else print)
    if not args.quiet:   # what the experiment shows, before its progress lines
        print(textwrap.fill(" ".join(module.DESCRIPTION.split()), 88))
    numbers = module.run(ctx)
    record = ctx.write_result(numbers or {})
    print(f"{args.name}: result in {os.path.join(out, 'result.json')} "
          f"({record['wall_seconds']:.0f} s, {record['machine']})")
    return 0


def cmd_data_list(args):
    from refgen import data
    for name in data.list_datasets():
        print(name)
    return 0


def cmd_data_download(args):
    if args.name == "inception":
        from refgen.metrics.inception_weights import download_inception_weights
        path = download_inception_weights(dest=args.data_dir, progress=print)
        print(f"inception: FID weights verified and stored in {path}")
        return 0
    from refgen import data
    path = data.download(args.name, data_dir=args.data_dir)
    print(f"{args.name}: verified and stored{' in ' + str(path) if path else ''}")
    return 0


def cmd_data_show(args):
    from refgen import data
    if args.n < 1:   # x[:-3] would silently draw all but the last 3
        raise CLIError(f"--n must be a positive integer, got {args.n}")
    print(data.describe(args.name, data_dir=args.data_dir))   # files looked up where loaded
    if not args.out:
        return 0
    dataset = _load_data(args.name, args.split, args.data_dir)
    n = min(args.n, len(dataset))
    x, y = dataset.x[:n], (None if dataset.y is None else dataset.y[:n])
    title = f"{args.name} ({args.split}), first {n}"
    if dataset.info.get("kind") == "image" or x.ndim == 4:
        from refgen import plotting
        labels = None if y is None else [int(v) for v in plotting.to_host(y)]
        path = plotting.save_image_grid(x, args.out, title=title, labels=labels,
                                        value_range=tuple(dataset.info.get("value_range",
                                                                           (0.0, 1.0))))
    else:
        path = _write_samples(x, args.out, dataset.info, args.name, title)
    print(f"wrote {path}")
    return 0


# --------------------------------------------------------------------------- parser
def _families():
    from refgen import families
    return families.FAMILIES


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the examples' line breaks (descriptions are wrapped by ``_sub``)."""


def _sub(subparsers, name, help, description, example, func):
    p = subparsers.add_parser(name, help=help, description=textwrap.fill(description, 88),
                              epilog="examples:\n" + example, formatter_class=_Formatter)
    p.set_defaults(func=func)
    return p


def _many_runs_options(p, figures, retrain):
    """The options of the commands that train several models (zoo, experiment)."""
    p.add_argument("--figures", help=f"also copy {figures} into this folder")
    p.add_argument("--retrain", action="store_true", help=f"retrain models {retrain} before")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def _device_option(p):
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="cpu (NumPy, the default) or gpu (CuPy on an NVIDIA GPU)")


def _sampler_options(p):
    p.add_argument("--sampler", help="the family's sampler (e.g. ancestral, ddim, heun, pc)")
    p.add_argument("--steps", type=int, help="sampler steps (diffusion, score, Langevin)")
    p.add_argument("--guidance", type=float,
                   help="classifier-free guidance weight w: (1 + w) eps(x, c) - w eps(x, null)")
    p.add_argument("--temperature", type=float, help="sampling temperature (flows, "
                                                     "autoregressive models)")


def _data_dir_option(p):
    p.add_argument("--data-dir", default=None,
                   help="where MNIST-style files are looked for first (then $REFGEN_DATA, "
                        "then ~/.cache/refgen)")


def _families_by_kind_text():
    from refgen import families
    return "; ".join(f"{kind or 'not generative'}: {', '.join(names)}"
                     for kind, names in families.families_by_kind().items())


def build_parser():
    families_text = ", ".join(sorted(_families()))
    by_kind = _families_by_kind_text()
    parser = argparse.ArgumentParser(
        prog="refgen", formatter_class=_Formatter,
        description=textwrap.fill(
            "Reference implementations of generative models: train a model family on a data "
            "set, sample from it, evaluate it, and look at the data.", 88),
        epilog="examples:\n  refgen data show digits --out digits.png\n"
               "  refgen train classifier --data digits --steps 2000 --out runs/clf\n"
               "  refgen eval --checkpoint runs/clf/checkpoint.npz\n\n"
               "Run 'refgen COMMAND --help' for each command's options.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = _sub(sub, "train", "train a model family on a data set",
             "Train FAMILY on data set NAME with the one training loop of refgen.train. The "
             "run directory gets config.json, log.jsonl (every logged number), checkpoint.npz "
             "(written atomically; continue with --resume) and loss.png. Options left out "
             "take the family's defaults for the data set; --set KEY=VALUE changes one entry "
             "of the model's config (e.g. --set prediction=v). --minutes M stops at M "
             "minutes of training time (quality comparisons at equal time). Models by "
             f"kind: {by_kind}.",
             "  refgen train classifier --data digits --steps 2000 --out runs/clf-digits\n"
             "  refgen train classifier --data mnist --data-dir ../shared/data --out runs/clf-mnist\n"
             "  refgen train classifier --data digits --steps 2000 --out runs/clf-digits "
             "--resume   # after an interruption",
             cmd_train)
    p.add_argument("family", help=f"model family ({families_text})")
    p.add_argument("--data", required=True, help="data set name (see 'refgen data list')")
    _data_dir_option(p)
    p.add_argument("--steps", type=int, help="optimisation steps (default: the family's)")
    p.add_argument("--minutes", type=float,
                   help="stop after this much training time, checkpoint and evaluate; resume "
                        "keeps counting (without --steps: constant learning rate)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one entry of the model's config (JSON value), repeatable")
    p.add_argument("--batch-size", type=int, help="examples per step (default: the family's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the family's)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine", "cosine_time"),
                   help="learning-rate schedule (default: the family's); cosine decays to 0 "
                        "over --steps, also under --minutes when --steps is given; "
                        "cosine_time decays to 0 over the --minutes budget")
    p.add_argument("--ema-decay", type=float,
                   help="decay of the exponential moving average of the parameters that "
                        "sampling and evaluation use (default: the family's)")
    p.add_argument("--out", help="run directory (default: runs/FAMILY-DATA)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint.npz (from step 0 "
                        "when it has none yet). Without --resume, an earlier run in --out is "
                        "moved aside to OUT.1 (.2, ...), never deleted")
    _device_option(p)
    p.add_argument("--seed", type=int, default=0, help="seed of every random stream (default: 0)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="floating dtype (default: float32)")
    p.add_argument("--train-split", default="train", help="split to train on (default: train)")
    p.add_argument("--eval-split", default="val",
                   help="split evaluated during training (default: val; 'none' to skip)")
    p.add_argument("--eval-every", type=int, help="evaluate every so many steps")
    p.add_argument("--log-every", type=int, help="log every so many steps")
    p.add_argument("--checkpoint-every", type=int, help="checkpoint every so many steps")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")

    p = _sub(sub, "sample", "draw samples from a trained model",
             "Load a training checkpoint and draw N samples from the model (with its EMA "
             "weights when the run kept an average). A .png/.pdf/.svg output is a picture: "
             "an image grid for image data, a scatter over the true density for 2-D toy "
             "data; a .npy output holds the raw samples.",
             "  refgen sample --checkpoint runs/vae-digits/checkpoint.npz --n 64 "
             "--out samples.png\n"
             "  refgen sample --checkpoint runs/vae-digits/checkpoint.npz --n 10000 "
             "--out samples.npy",
             cmd_sample)
    p.add_argument("--checkpoint", required=True, help="path of a checkpoint.npz")
    p.add_argument("--n", type=int, default=64, help="number of samples (default: 64)")
    p.add_argument("--out", required=True, help="output file: .png (picture) or .npy (array)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler's generator (default: 0)")
    p.add_argument("--no-ema", action="store_true", help="use the raw (not averaged) weights")
    _sampler_options(p)
    p.add_argument("--label", type=int, help="class label for a class-conditional model")
    _device_option(p)

    p = _sub(sub, "eval", "evaluate a trained model or saved samples",
             "Evaluate a training checkpoint, or samples saved as a .npy array or a folder of "
             "PNG images, on a split of a data set. Without --metrics a checkpoint reports its "
             "family's own metrics (for the classifier: accuracy and the NLL -log p(y|x) in "
             "nats). Sample metrics (fid, kid, is, pr = precision/recall, dc = "
             "density/coverage) compare N drawn or saved samples with the split in the "
             "feature space of --extractor (auto: the digits classifier for 8x8 images, the "
             "MNIST classifier for 28x28 when its weights exist, else raw pixels; the FID "
             "Inception for other images when its weights exist); the report names the "
             "extractor, the sample counts and each metric's conventions. bpd needs a family "
             "with a likelihood (bits_per_dim or log_prob).",
             "  refgen eval --checkpoint runs/clf-digits/checkpoint.npz\n"
             "  refgen eval --checkpoint runs/clf-digits/checkpoint.npz --metrics accuracy "
             "--split val --json\n"
             "  refgen eval --checkpoint runs/vae-digits/checkpoint.npz --metrics fid,kid,is,pr,dc "
             "--n 1000\n"
             "  refgen eval --samples samples.npy --data digits --metrics fid,is,pr",
             cmd_eval)
    p.add_argument("--checkpoint", help="path of a checkpoint.npz (or use --samples)")
    p.add_argument("--samples", help="a .npy array (N, C, H, W) in [0, 1] or a folder of .png "
                                     "images, instead of --checkpoint")
    p.add_argument("--data", help="data set to compare with (default for --checkpoint: the one "
                                  "the run trained on)")
    _data_dir_option(p)
    p.add_argument("--split", default="test", help="which split to evaluate on and compare "
                                                   "samples with (default: test)")
    p.add_argument("--metrics", nargs="+",
                   help="names, comma or space separated: fid, kid, is, pr, dc, bpd and the "
                        "family's own (e.g. accuracy, nll); default: the family's own, or "
                        "every sample metric for --samples")
    p.add_argument("--n", type=int, help="number of samples (and of real examples, a seeded "
                                         "subset); default: with --checkpoint the split's "
                                         "size up to 10,000, with --samples all")
    p.add_argument("--extractor", default="auto",
                   choices=("auto", "digits-classifier", "mnist-classifier", "inception",
                            "pixels"),
                   help="feature extractor of the sample metrics (default: auto)")
    p.add_argument("--extractor-weights", help="weights file of the extractor (the MNIST "
                                               "classifier or the FID Inception weights)")
    p.add_argument("--fid-method", default="pytorch-fid", choices=("pytorch-fid", "eigh"),
                   help="FID's matrix square root (default: pytorch-fid, scipy sqrtm)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and the metrics' "
                                                       "random subsets (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-ema", action="store_true", help="use the raw (not averaged) weights")
    _sampler_options(p)
    _device_option(p)

    p = _sub(sub, "zoo", "train one model of each family and compare them",
             "Train one representative of each of the seven families (made, vae, gan, "
             "realnvp, ddpm, ebm, sde) and two classical baselines (a histogram and a kernel "
             "density estimate) on the same data, measure each with the same code (held-out "
             "likelihood and its kind, sampling cost, sample quality, parameters, training "
             "time) and write zoo.csv, zoo.md and figures. --budget quick fits in about 10 "
             "minutes on 2 CPU cores; full is the reference run. A killed zoo run again with "
             "the same options resumes: measured models are never retrained (unless "
             "--retrain), a model in training continues from its checkpoint.",
             "  refgen zoo --budget quick\n"
             "  refgen zoo --budget full --out runs/zoo-full --figures figures\n"
             "  refgen zoo --budget quick --families flow,diffusion,baseline --data "
             "ring8:std=0.1",
             cmd_zoo)
    p.add_argument("--budget", default="quick", choices=("tiny", "quick", "full"),
                   help="training time per model: quick (about 10 minutes in all), full "
                        "(the reference run), tiny (a few steps: a test of the plumbing)")
    p.add_argument("--data", nargs="+", help="data sets, comma or space separated (default: "
                                             "ring8:std=0.1 and digits)")
    p.add_argument("--families", nargs="+", help="kinds or model names to include, comma or "
                                                 "space separated, 'baseline' for the two "
                                                 "baselines (default: all)")
    p.add_argument("--out", help="zoo directory (default: runs/zoo-BUDGET)")
    _many_runs_options(p, figures="the table and figures", retrain="measured")
    _data_dir_option(p)
    _device_option(p)

    from refgen.experiments import EXPERIMENTS
    p = _sub(sub, "experiment", "run one experiment on what generative models are for",
             "Run one experiment that measures a use of generative models: it trains what it "
             "needs (once: a killed run resumes, a finished model is loaded), prints its "
             "numbers, writes its figures and result.json into --out. --budget default fits "
             "2 CPU cores; tiny runs in seconds (a test of the plumbing).",
             "  refgen experiment compression\n"
             "  refgen experiment anomaly --data-dir ../shared/data --figures figures\n"
             "  refgen experiment caveat --budget tiny", cmd_experiment)
    p.epilog = ("experiments:\n" + "\n".join(f"  {name:15s} {summary}"
                                              for name, (_, summary) in EXPERIMENTS.items())
                + "\n\n" + p.epilog)
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME",
                   help="one of: " + ", ".join(EXPERIMENTS))
    p.add_argument("--budget", default="default",
                   help="default (fits 2 CPU cores) or tiny (seconds); some experiments have "
                        "more (see the experiment's module)")
    p.add_argument("--out", help="experiment folder (default: runs/experiment-NAME-BUDGET)")
    _many_runs_options(p, figures="the figures", retrain="trained")
    _data_dir_option(p)
    _device_option(p)

    p = _sub(sub, "data", "list, download and look at data sets",
             "Work with the data sets: 'list' names them, 'download NAME' fetches an "
             "MNIST-style data set and verifies its hashes, 'show NAME' describes one and "
             "with --out draws its first examples.",
             "  refgen data list\n  refgen data show digits --out digits.png\n"
             "  refgen data download mnist --data-dir ~/data", None)
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    _sub(data_sub, "list", "name every data set", "Print the names of all data sets.",
         "  refgen data list", cmd_data_list)
    q = _sub(data_sub, "download", "download and verify a data set or the FID weights",
             "Download the files of an MNIST-style data set into --data-dir (default: "
             "~/.cache/refgen) and check the sha256 of their decompressed bytes. 'download "
             "inception' fetches the FID Inception weights (pytorch-fid's "
             "pt_inception-2015-12-05-6726825d.pth, 96 MB) and checks their sha256. Digits "
             "and the toy densities ship with refgen and need no download.",
             "  refgen data download mnist --data-dir ~/data\n"
             "  refgen data download inception", cmd_data_download)
    q.add_argument("name", help="data set name (see 'refgen data list'), or 'inception'")
    _data_dir_option(q)
    q = _sub(data_sub, "show", "describe a data set and draw its first examples",
             "Print what the data set is (source, size, shape, value range, preprocessing "
             "conventions) and, with --out, draw its first N examples: an image grid, or a "
             "scatter of 2-D points over the true density.",
             "  refgen data show digits --out figures/digits.png --n 100\n"
             "  refgen data show ring8 --out ring8.png", cmd_data_show)
    q.add_argument("name", help="data set name (see 'refgen data list')")
    q.add_argument("--out", help="write a picture of the first examples here (.png)")
    q.add_argument("--n", type=int, default=64, help="how many examples to draw (default: 64)")
    q.add_argument("--split", default="train", help="which split to draw from (default: train)")
    _data_dir_option(q)
    return parser


# --------------------------------------------------------------------------- entry point
def _user_errors():
    """Exception types that mean 'the user can fix this': one line, no traceback."""
    # OSError covers missing/existing files, permissions, a full disk, no network;
    # ValueError the project's named errors (unknown names, CheckpointError, IDXError, ...)
    return (CLIError, ValueError, OSError, NotImplementedError, RuntimeError,
            FloatingPointError)


def _one_line(exc):
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileExistsError) and "resume" in text:
        text += " (with refgen train: add --resume, or give another --out)"
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return " ".join(text.split())


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def use_one_blas_thread():
    """Make BLAS use one thread in this process unless the user chose a number; True if set.

    Why: refgen's matrices are small, and two fork-join BLAS threads on a shared two-core
    machine lose badly when one is descheduled (the quick start measured 3.3x slower, see
    benchmarks/RESULTS.md). BLAS reads these variables once, when NumPy loads it, so this
    only acts before NumPy is imported (the command's entry, the test suite's conftest);
    any of the variables already set is the user's choice and is left alone.
    """
    if "numpy" in sys.modules or any(v in os.environ for v in BLAS_THREAD_VARIABLES):
        return False
    for variable in BLAS_THREAD_VARIABLES:
        os.environ[variable] = "1"
    return True


def main(argv=None):
    """Run the command; returns the exit status (0 ok, 1 user error, 2 usage, 130 Ctrl-C)."""
    use_one_blas_thread()
    try:
        # Building the parser lists the families, which imports the engine, which chooses
        # the backend from REFGEN_BACKEND: a bad value is a user error, not a traceback.
        parser = build_parser()
    except _user_errors() as exc:
        if os.environ.get("REFGEN_DEBUG"):
            raise
        print(f"refgen: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("refgen: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if os.environ.get("REFGEN_DEBUG"):
            raise
        print(f"refgen {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
