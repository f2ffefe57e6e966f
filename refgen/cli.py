"""The ``refgen`` command: train, sample, evaluate, and look at data.

    refgen train FAMILY --data NAME [--steps N] [--out DIR] [--resume] [--device cpu|gpu] ...
    refgen sample --checkpoint PATH --n N --out grid.png|samples.npy
    refgen eval --checkpoint PATH [--data NAME] [--metrics a,b]
    refgen data list | download NAME | show NAME [--out PNG]

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
import tempfile
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
    """(checkpoint dict, family module, trainable with the checkpoint's weights)."""
    from refgen import families
    from refgen.train import load_checkpoint
    from refgen.train.checkpoint import restore_modules
    _setup(device)  # first: the checkpoint's arrays then load onto the chosen backend
    ckpt = load_checkpoint(checkpoint_path)
    config = dict(ckpt["config"])
    if config.get("dtype"):
        import autodiff
        autodiff.set_default_dtype(config["dtype"])  # rebuild in the dtype it trained in
    family = families.get_family(ckpt["family"])
    trainable = family.build(config, None)
    restore_modules(trainable, ckpt, use_ema=use_ema)
    return ckpt, family, trainable


def _atomic_save_npy(array, path):
    # host-side: np.save writes the host copy of the samples to a file
    import numpy as np
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
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


# --------------------------------------------------------------------------- commands
def cmd_train(args):
    _setup(args.device, args.dtype)
    from refgen import families
    from refgen.train import TrainConfig, fit

    family = families.get_family(args.family)   # unknown family: lists the known ones
    train_data = _load_data(args.data, args.train_split, args.data_dir)
    eval_data = None if args.eval_split == "none" else \
        _load_data(args.data, args.eval_split, args.data_dir)
    info = dict(train_data.info)
    info.setdefault("name", args.data)
    config = family.default_config(info)
    config["data"] = args.data
    config["dtype"] = args.dtype

    options = dict(getattr(family, "train_defaults", lambda info: {})(info))
    cli = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
           "seed": args.seed, "eval_every": args.eval_every,
           "checkpoint_every": args.checkpoint_every, "log_every": args.log_every}
    options.update({k: v for k, v in cli.items() if v is not None})
    out_dir = args.out or os.path.join("runs", f"{args.family}-{args.data}")
    options["out_dir"] = out_dir
    # a short run (--steps 30) still logs, evaluates and checkpoints: intervals <= steps,
    # and a family's warmup that would not fit is dropped
    for key in ("checkpoint_every", "log_every", "eval_every"):
        if options.get(key) is not None and options.get("steps") is not None:
            options[key] = min(options[key], options["steps"])
    if options.get("warmup_steps", 0) >= options.get("steps", 1):
        options["warmup_steps"] = 0
    train_config = TrainConfig(**options)

    trainable = family.build(config, info)
    if not getattr(trainable, "family", None):
        trainable.family = args.family
    result = fit(trainable, train_data, train_config, eval_data=eval_data,
                 resume=args.resume, progress=not args.quiet)
    try:
        from refgen import plotting
        plotting.plot_loss_curves(result.log_path, os.path.join(out_dir, "loss.png"),
                                  title=f"{args.family} on {args.data}")
    except ValueError as exc:  # e.g. nothing logged yet; the run itself succeeded
        print(f"refgen: note: no loss curve drawn ({exc})", file=sys.stderr)
    numbers = {**result.metrics, **result.eval_metrics}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in numbers.items()
                      if k in ("loss", "accuracy") or k.startswith("eval/"))
    print(f"trained {args.family} on {args.data} to step {result.step}: {shown}")
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
    with autodiff.no_grad():
        x = sample(args.n, generator)
    data_name = ckpt["config"].get("data")
    info = {"value_range": ckpt["config"].get("value_range", (0.0, 1.0))}
    path = _write_samples(x, args.out, info, data_name,
                          title=f"{ckpt['family']} samples, step {ckpt['step']}")
    print(f"wrote {args.n} samples of shape {tuple(x.shape[1:])} to {path}")
    return 0


def cmd_eval(args):
    import autodiff
    ckpt, family, trainable = _restore(args.checkpoint, args.device, use_ema=not args.no_ema)
    evaluate = getattr(trainable, "evaluate", None)
    if not callable(evaluate):
        raise CLIError(f"family {ckpt['family']!r} defines no evaluation")
    data_name = args.data or ckpt["config"].get("data")
    if not data_name:
        raise CLIError(f"the checkpoint {args.checkpoint} does not record its data set; "
                       "give --data NAME")
    dataset = _load_data(data_name, args.split, args.data_dir)
    for module in trainable.modules().values():
        module.eval()
    with autodiff.no_grad():
        results = evaluate(dataset, None)
    wanted = _parse_metrics(args.metrics)
    if wanted:
        unknown = [m for m in wanted if m not in results]
        if unknown:
            raise CLIError(f"unknown metric(s) {', '.join(unknown)} for family "
                           f"{ckpt['family']!r}; known: {', '.join(results)}")
        results = {m: results[m] for m in wanted}
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, "step": ckpt["step"],
                          "data": data_name, "split": args.split, **results}))
    else:
        print(f"{ckpt['family']} at step {ckpt['step']} on {data_name} ({args.split}, "
              f"{len(dataset)} examples):")
        for k, v in results.items():
            print(f"  {k:<12} {v:.6g}")
    return 0


def cmd_data_list(args):
    from refgen import data
    for name in data.list_datasets():
        print(name)
    return 0


def cmd_data_download(args):
    from refgen import data
    path = data.download(args.name, data_dir=args.data_dir)
    print(f"{args.name}: verified and stored{' in ' + str(path) if path else ''}")
    return 0


def cmd_data_show(args):
    from refgen import data
    print(data.describe(args.name))
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


def _device_option(p):
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="cpu (NumPy, the default) or gpu (CuPy on an NVIDIA GPU)")


def _data_dir_option(p):
    p.add_argument("--data-dir", default=None,
                   help="where MNIST-style files are looked for first (then $REFGEN_DATA, "
                        "then ~/.cache/refgen)")


def build_parser():
    families_text = ", ".join(sorted(_families()))
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
             f"take the family's defaults for the data set. Families: {families_text}.",
             "  refgen train classifier --data digits --steps 2000 --out runs/clf-digits\n"
             "  refgen train classifier --data mnist --data-dir ../shared/data --out runs/clf-mnist\n"
             "  refgen train classifier --data digits --steps 2000 --out runs/clf-digits "
             "--resume   # after an interruption",
             cmd_train)
    p.add_argument("family", help=f"model family ({families_text})")
    p.add_argument("--data", required=True, help="data set name (see 'refgen data list')")
    _data_dir_option(p)
    p.add_argument("--steps", type=int, help="optimisation steps (default: the family's)")
    p.add_argument("--batch-size", type=int, help="examples per step (default: the family's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the family's)")
    p.add_argument("--out", help="run directory (default: runs/FAMILY-DATA)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint.npz")
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
    _device_option(p)

    p = _sub(sub, "eval", "evaluate a trained model",
             "Load a training checkpoint and report the family's metrics on a split of its "
             "data set (for the classifier: accuracy and the NLL -log p(y|x) in nats).",
             "  refgen eval --checkpoint runs/clf-digits/checkpoint.npz\n"
             "  refgen eval --checkpoint runs/clf-digits/checkpoint.npz --metrics accuracy "
             "--split val --json",
             cmd_eval)
    p.add_argument("--checkpoint", required=True, help="path of a checkpoint.npz")
    p.add_argument("--data", help="data set (default: the one the run trained on)")
    _data_dir_option(p)
    p.add_argument("--split", default="test", help="which split to evaluate on (default: test)")
    p.add_argument("--metrics", nargs="+", help="only these metrics (names, comma or space "
                                                "separated; default: all the family has)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-ema", action="store_true", help="use the raw (not averaged) weights")
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
    q = _sub(data_sub, "download", "download and verify a data set",
             "Download the files of an MNIST-style data set into --data-dir (default: "
             "$REFGEN_DATA or ~/.cache/refgen) and check the sha256 of their decompressed "
             "bytes. Digits and the toy densities ship with refgen and need no download.",
             "  refgen data download mnist --data-dir ~/data", cmd_data_download)
    q.add_argument("name", help="data set name (see 'refgen data list')")
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


def main(argv=None):
    """Run the command; returns the exit status (0 ok, 1 user error, 2 usage, 130 Ctrl-C)."""
    parser = build_parser()
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
