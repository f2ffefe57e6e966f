"""``python -m refgen.families.vae``: the k = 5000 log-likelihood estimate and the figures
of a trained VAE checkpoint (what ``refgen eval``/``refgen sample`` do not cover)."""
import argparse
import json
import os
import time

import autodiff

from ... import data as rdata
from ..loading import load_with_checkpoint
from .figures import plot_latent_space, save_interpolations, save_reconstructions
from .model import VAE, is_image


def main(argv=None):
    """``python -m refgen.families.vae estimate|figures --checkpoint CKPT ...``:

    * ``estimate``: the k-sample importance-sampled log-likelihood estimate (default
      k = 5000) on the test split (or ``--n`` first examples), with its standard error;
    * ``figures``: reconstructions, interpolations and (for a 2-D latent) the latent space,
      written as ``PREFIX_reconstructions.png`` etc.
    """
    p = argparse.ArgumentParser(prog="python -m refgen.families.vae", description=main.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("estimate", "figures"))
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", default=None, help="data set (default: the checkpoint's)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--n", type=int, default=None, help="first N examples only")
    p.add_argument("--chunk", type=int, default=None,
                   help="also print a JSON line after every CHUNK examples with the numbers "
                        "so far (a long estimate stopped early still gives its first examples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="figures/vae", help="figure path prefix")
    args = p.parse_args(argv)
    model, ckpt = load_with_checkpoint(args.checkpoint)
    if not isinstance(model, VAE):
        raise SystemExit(f"{args.checkpoint} holds a {ckpt['family']!r} model, not a vae")
    name = args.data or model.config.get("data")
    dataset = rdata.load_dataset(name, split=args.split, data_dir=args.data_dir)
    for module in model.modules().values():
        module.eval()
    if args.command == "estimate":
        t0 = time.perf_counter()
        generator = autodiff.Generator(args.seed)
        if args.chunk is not None:
            if args.chunk < 1:
                raise SystemExit(f"--chunk must be >= 1, got {args.chunk}")
            out = _estimate_in_chunks(model, dataset, args, generator, t0)
        else:
            out = model.estimate_dataset(dataset, k=args.k, max_examples=args.n,
                                         generator=generator)
        out.update(seconds=round(time.perf_counter() - t0, 1), data=name, split=args.split,
                   checkpoint=args.checkpoint, step=ckpt["step"])
        print(json.dumps(out))
        return 0
    paths = [save_reconstructions(model, dataset, f"{args.out}_reconstructions.png")
             if is_image(model.data_info) else None,
             save_interpolations(model, dataset, f"{args.out}_interpolations.png")
             if is_image(model.data_info) else None]
    if model.latent_dim == 2:
        paths.append(plot_latent_space(model, dataset, f"{args.out}_latent.png"))
    for path in paths:
        if path:
            print(f"wrote {os.path.abspath(path)}")
    return 0


def _estimate_in_chunks(model, dataset, args, generator, t0):
    """``estimate_dataset`` over consecutive chunks with one generator (the same numbers as
    one call), printing the pooled numbers so far after each chunk: the mean of the
    per-example estimates, and the standard error sqrt(sum_n se_n^2) / N."""
    stop = len(dataset) if args.n is None else min(len(dataset), args.n)
    total, var, n = 0.0, 0.0, 0
    for lo in range(0, stop, args.chunk):
        part = model.estimate_dataset(dataset, k=args.k, max_examples=min(stop, lo + args.chunk),
                                      generator=generator, start=lo)
        m = part["examples"]
        total += part["nll_estimate"] * m
        var += (part["nll_estimate_se"] * m) ** 2
        n += m
        print(json.dumps({"examples_so_far": n, "nll_estimate": total / n,
                          "nll_estimate_se": var ** 0.5 / n,
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    return {"nll_estimate": total / n, "nll_estimate_se": var ** 0.5 / n, "examples": n,
            "k": int(args.k)}


if __name__ == "__main__":
    raise SystemExit(main())
