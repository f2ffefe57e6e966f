"""Time refgen's FID Inception forward against the same network in PyTorch (issue 5).

Usage (from the repository root)::

    python -m benchmarks.inception_speed [--batch 8] [--steps 5] [--warmup 1]

What it does, in one process with 2 threads (it re-executes itself with the thread
variables set before NumPy loads, see ``benchmarks/harness.py``):

1. builds the FID Inception v3 in PyTorch (the definition in
   ``tests/refgen/metrics/test_inception_crosscheck.py``) with random weights and perturbed
   BatchNorm statistics, saves its ``state_dict`` with ``torch.save`` and loads that file
   into ``refgen.metrics.FIDInceptionV3`` through refgen's own reader (no unpickling);
2. checks that both give the same 2048-d features and 1008 logits in float32 on 2 images
   (relative difference, norm-wise, at most 1e-4; float32 rounding over ~100 layers);
3. times the forward (features and logits, no gradient) on a batch of 299x299 images in
   float32: warmup, then refgen and PyTorch alternate; median and IQR; ratio = refgen / torch.
"""
import argparse
import os
import sys
import tempfile

from . import harness

CHECK_RTOL = 1e-4


def _torch_net(torch):
    """PyTorch's FID Inception with random weights and BatchNorm statistics (eval mode)."""
    from tests.refgen.metrics.test_inception_crosscheck import _torch_inception
    torch.manual_seed(0)
    net = _torch_inception(torch)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 1.5)
                m.running_mean.normal_(0.0, 0.1)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    return net.eval()


def main(argv=None):
    if not harness.env_is_ready():
        harness.reexec_with_benchmark_env("benchmarks.inception_speed")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)

    import numpy as np  # host-side: the benchmark's timing summary and comparisons
    import torch

    import autodiff
    from refgen.metrics.inception import load_fid_inception

    torch.set_num_threads(harness.THREADS)
    torch.set_default_dtype(torch.float32)
    autodiff.set_default_dtype("float32")
    net = _torch_net(torch)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "random_fid_inception.pth")
        torch.save(net.state_dict(), path)
        model = load_fid_inception(path, verify=False)

    gen = np.random.default_rng(0)
    check = gen.random((2, 3, 299, 299)).astype(np.float32)
    with torch.no_grad():
        t_feats, t_logits = net(torch.from_numpy(check), resize=False)
    feats, logits = model(check)
    for name, ours, theirs in [("features", feats, t_feats), ("logits", logits, t_logits)]:
        a, b = ours.numpy(), theirs.numpy()
        rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
        print(f"same-output check ({name}, float32, 2 images): relative difference {rel:.2e}")
        if not rel <= CHECK_RTOL:
            sys.exit(f"refgen and PyTorch disagree on the {name} (relative {rel:.2e} > "
                     f"{CHECK_RTOL}); not timing")

    x_np = gen.random((args.batch, 3, 299, 299)).astype(np.float32)
    x_ref = autodiff.tensor(x_np)
    x_torch = torch.from_numpy(x_np)

    def run_refgen():
        model(x_ref)

    def run_torch():
        with torch.no_grad():
            net(x_torch, resize=False)

    times = harness.time_interleaved({"refgen": run_refgen, "torch": run_torch},
                                     warmup=args.warmup, steps=args.steps)
    info = harness.machine_info(torch.__version__)
    print()
    for key, value in info.items():
        print(f"{key}: {value}")
    print(f"\nFID Inception forward, batch {args.batch} x 3 x 299 x 299, float32, "
          f"{args.steps} timed steps after {args.warmup} warmup")
    medians = {}
    for name, samples in times.items():
        med, iqr = harness.summarize(samples)
        medians[name] = med
        print(f"  {name:7s} median {med:7.3f} s  IQR {iqr:6.3f} s  min {min(samples):7.3f} s"
              f"  ({args.batch / med:6.2f} images/s)")
    print(f"  ratio refgen / torch (medians): {medians['refgen'] / medians['torch']:.2f}x; "
          f"(minima): {min(times['refgen']) / min(times['torch']):.2f}x")
    print(f"  load average at end (1/5/15 min): "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
