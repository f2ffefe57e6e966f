"""Density -> compression: an autoregressive model's conditionals drive rANS on test images,
and the file is as long as the model's bits/dim says (Shannon 1948: an ideal code spends
-log2 p(x) bits on x; MacKay 2003, ch. 6, arithmetic coding with a model's predictions).

An autoregressive model factorises

    log2 p_theta(x) = sum_d log2 p_theta(x_{o(d)} | x_{o(<d)})        (o: the model's ordering)

so each pixel is one symbol with its own categorical distribution, exactly what
``refgen.coding.rans`` codes. The model here is MADE (Germain et al. 2015; family ``made``
with ONE mask set, so that log p_theta is a product of conditionals and not a mixture of
orderings): Bernoulli conditionals on binarized MNIST (the default budget), a 17-way softmax
on the 8x8 digits (the tiny budget, and the fallback when MNIST is absent).

* Encoding (teacher forcing): ONE network pass over the true images gives every conditional
  at once, (N, D, A); the tables are quantised (``rans.quantize``, 12-bit) and coded.
* Decoding: D passes, one per dimension in the ordering, each on the images decoded so far
  (undecoded pixels are zero; the masks make output o(d) blind to them, and a masked weight
  is an exact 0, so the decoder's tables are bit-identical to the encoder's); every pass
  decodes one pixel of every image. The decoded images must equal the originals exactly.
* Lanes: the N images are coded in K interleaved rANS lanes (``lanes``), G = N / K images
  per lane, so the per-lane cost (the final 32-bit state) is spread over G D symbols.

Reported, in bits per dimension (bits per pixel) on the same test images:

    model     = -sum_n log2 p_theta(x_n) / (N D)              (``model.log_prob``, exact)
    ideal     = sum -log2 q over the quantised tables / (N D)
    file      = 16 * (words in the message) / (N D)           (the coder's output, all of it)
    ratio     = file / model     (the issue's target: within 1 %)

beside gzip (zlib level 9 on one byte per pixel, and on the pixels packed 8 to a byte for
binary images) and PNG (one file per image, and one file holding all images side by side;
1-bit PNGs for binary images, 8-bit grey for the digits' 17 levels; written by Pillow).

Bits-back with a VAE (Townsend, Bird and Barber 2019, BB-ANS; ``bits_back_compress``): a
latent-variable model has no product of conditionals to code with, but

    -log2 p(x | z) - log2 p(z) + log2 q(z | x)        averaged over z ~ q(z | x) is -ELBO(x)

and a stack coder pays exactly that per image when it POPS z with q(z | x) (taking bits
off the stack, which are given back when the decoder pushes z again), then pushes x with
p(x | z) and z with p(z). The latent is discretised into 2^b equal-mass buckets of the
prior. Reported on binarized test images: the VAE's -ELBO (Monte Carlo over z), the net
rate (the file minus the random initial bits the first pops consume) and the file; the
decoder must give back the images AND the initial bits.
"""
import io
import math
import time
import zlib

import numpy as np  # host-side: the coder, gzip and PNG work on host integer arrays

import autodiff
from autodiff import backend as B

from ..coding import rans

__all__ = ["DESCRIPTION", "BUDGETS", "run", "conditional_tables", "compress", "decompress",
           "latent_buckets", "bits_back_compress", "bits_back_decompress"]

DESCRIPTION = (
    "Lossless compression with a generative model: MADE's conditionals (Bernoulli on "
    "binarized MNIST, or a 17-way softmax on the 8x8 digits when MNIST is absent) drive an "
    "rANS coder (refgen.coding) on test images. Encoding takes one network pass, decoding one "
    "pass per pixel; the decoded images must equal the originals bit for bit. Reports the "
    "model's test bits/dim, the file's bits/dim and their ratio (target: within 1 %), and "
    "gzip and PNG on the same images; then bits-back ANS with a VAE (Townsend et al. 2019): "
    "its net rate against the negative ELBO. Figure: bits/dim per method.")

BUDGETS = {
    "default": {"data": "mnist", "fallback_data": "digits", "minutes": 5.0,
                "model": {"hidden_sizes": [500], "binarize": "dynamic"},
                "fallback_model": {"hidden_sizes": [500]},
                "test_images": 1000, "lanes": 10,
                # bits-back (the stretch): a VAE with the family's defaults, 3 minutes
                "vae_minutes": 3.0, "bitsback_images": 1000, "bitsback_lanes": 2,
                "latent_bits": 8, "latent_bits_sweep": [4, 6, 10], "elbo_samples": 64},
    "tiny": {"data": "digits", "fallback_data": "digits", "steps": 30,
             "vae_steps": 30, "bitsback_images": 40, "bitsback_lanes": 2,
             "latent_bits": 8, "latent_bits_sweep": [], "elbo_samples": 8,
             # a random ordering, so that the test sees the ordering matter
             "model": {"hidden_sizes": [32], "ordering": "random"},
             "fallback_model": {"hidden_sizes": [32], "ordering": "random"},
             "test_images": 40, "lanes": 4},
}


# ---------------------------------------------------------------- the model's conditionals
def _head_values(model):
    """The pixel value of each symbol a (A,): {0, 1} for Bernoulli, the L levels otherwise."""
    head = model.head
    if head.name == "bernoulli":
        return np.array([0.0, 1.0])
    if head.name == "categorical":
        return np.linspace(head.lo, head.hi, head.levels)
    raise ValueError(f"compression: the model's head must be 'bernoulli' or 'categorical' "
                     f"(a finite alphabet per pixel), got {head.name!r}")


def _check_model(model):
    if getattr(model, "family", None) != "made":
        raise ValueError(f"compression: the model must be a MADE (family 'made'), got "
                         f"{getattr(model, 'family', type(model).__name__)!r}")
    if model.eval_masks != 1:
        raise ValueError(f"compression: MADE with eval_masks={model.eval_masks} is a mixture "
                         "of orderings, not one product of conditionals; use num_masks=1")
    if model.conditional:
        raise ValueError("compression: a class-conditional MADE needs the labels to decode; "
                         "use an unconditional one")


def _log_tables(model, x_flat):
    """log q_theta(x_d = a | x_{<d}) (N, D, A) float64 on the host from ONE network pass on
    x_flat (N, D) (a backend array of pixel values)."""
    net = model.net
    net.set_mask(0)
    with autodiff.no_grad():
        params = net(model._scaled(autodiff.Tensor(x_flat)), None)           # (N, P, D)
    p = B.to_numpy(params.data).astype(np.float64)
    if model.head.name == "bernoulli":
        return _bernoulli_log_table(p[:, 0, :])                              # (N, D, 2)
    z = np.moveaxis(p, 1, 2)                                                  # (N, D, L)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))                 # log-softmax


def conditional_tables(model, x_flat):
    """Quantised frequency tables (N, D, A) of every conditional, from one network pass."""
    return rans.quantize(np.exp(_log_tables(model, x_flat)))


def _symbols(model, x_flat):
    """Pixel values (N, D) -> symbol indices (N, D) int64 (the head's alphabet)."""
    values = _head_values(model)
    x = B.to_numpy(x_flat).astype(np.float64)
    k = np.rint((x - values[0]) / (values[1] - values[0])).astype(np.int64)
    if k.min() < 0 or k.max() >= values.size or np.abs(values[k] - x).max() > 1e-6:
        raise ValueError(f"compression: pixel values must lie on the {values.size} levels "
                         f"{values[0]:g}..{values[-1]:g}")
    return k


def _lane_layout(n, lanes):
    if isinstance(lanes, bool) or int(lanes) != lanes or lanes < 1 or n % int(lanes):
        raise ValueError(f"compression: lanes must be a positive int dividing the number of "
                         f"images {n}, got {lanes!r}")
    return int(lanes), n // int(lanes)


def compress(model, x, lanes=1):
    """Code images x (N, *example_shape) with the model's conditionals.

    Lane k holds images kG..kG+G-1 (G = N / lanes); its symbol j G + g is pixel o(j) of
    image kG + g, so the decoder, at pixel o(j), decodes the G images of every lane in turn
    after one network pass.
    :return: (words uint16 (W,), ideal bits with the quantised tables)
    """
    _check_model(model)
    x_flat = model._flat(x).data                                            # (N, D)
    n, D = x_flat.shape
    K, G = _lane_layout(n, lanes)
    order = B.to_numpy(model.net.order).astype(np.int64)
    sym = _symbols(model, x_flat)[:, order]                                 # (N, D) in order
    tab = conditional_tables(model, x_flat)[:, order]                       # (N, D, A)
    A = tab.shape[-1]
    # (K, G, D) -> (K, D, G) -> (K, D G): symbol j G + g of lane k
    lane_sym = sym.reshape(K, G, D).transpose(0, 2, 1).reshape(K, D * G)
    lane_tab = tab.reshape(K, G, D, A).transpose(0, 2, 1, 3).reshape(K, D * G, A)
    words = rans.encode(lane_sym, lane_tab)
    return words, rans.ideal_bits(lane_sym, lane_tab)


def decompress(model, words, n, lanes=1):
    """Decode n images from ``words`` (``compress``'s message): one network pass per pixel
    on the images decoded so far. Returns (n, *example_shape) on the backend."""
    _check_model(model)
    K, G = _lane_layout(n, lanes)
    D = model.num_dims
    values = _head_values(model)
    dtype = model.net.layers[0].weight.dtype
    x = B.xp.zeros((n, D), dtype=dtype)
    dec = rans.RansDecoder(words, lanes=K)
    decoded = np.zeros((n, D), dtype=np.int64)
    for d in B.to_numpy(model.net.order).astype(np.int64).tolist():
        tab = rans.quantize(np.exp(_log_tables(model, x)[:, d]))            # (n, A)
        tab = tab.reshape(K, G, -1)
        for g in range(G):
            decoded[g::G, d] = dec.decode(tab[:, g])      # images kG + g, k = 0..K-1
        x[:, d] = B.to_backend(values[decoded[:, d]], dtype=x.dtype)
    dec.finish()
    return x.reshape((n,) + model.example_shape)


# ---------------------------------------------------------------- bits-back with a VAE
def latent_buckets(latent_bits):
    """Equal-mass buckets of the prior N(0, 1) per latent coordinate (Townsend et al. 2019,
    sec. 3.2): edges Phi^-1(j / B), j = 0..B (B = 2^latent_bits; -inf and +inf at the ends),
    and each bucket's representative Phi^-1((j + 1/2) / B). Under the prior every bucket has
    mass 1/B, so the prior's table is uniform and costs latent_bits per coordinate."""
    from scipy.special import ndtri
    B_ = 1 << int(latent_bits)
    edges = ndtri(np.arange(B_ + 1) / B_)                        # edges[0] = -inf, [B] = inf
    centres = ndtri((np.arange(B_) + 0.5) / B_)
    return edges, centres


def _posterior_tables(vae, x, edges, precision):
    """q(bucket j | x) = Phi((e_{j+1} - mu) / sigma) - Phi((e_j - mu) / sigma) per latent
    coordinate, quantised: (N, d, B)."""
    from scipy.special import ndtr
    with autodiff.no_grad():
        q = vae.encode(autodiff.Tensor(x.reshape((x.shape[0],) + vae.example_shape)))
    mu = B.to_numpy(q.loc.data).astype(np.float64)[..., None]               # (N, d, 1)
    sigma = B.to_numpy(q.scale.data).astype(np.float64)[..., None]
    cdf = ndtr((edges[None, None, :] - mu) / sigma)                          # (N, d, B + 1)
    return rans.quantize(np.maximum(np.diff(cdf, axis=-1), 0.0), precision)


def _bernoulli_log_table(logit):
    """(..., 2) host table [log p(0), log p(1)] = [log sigmoid(-l), log sigmoid(l)] of
    Bernoulli logits l (...,), as -softplus(+-l) = -logaddexp(0, +-l), which never overflows."""
    return -np.stack([np.logaddexp(0.0, logit), np.logaddexp(0.0, -logit)], axis=-1)


def _likelihood_tables(vae, z_index, centres):
    """p_theta(x_j | z) (N, D, 2) quantised, z the buckets' representatives (N, d)."""
    z = centres[z_index].astype(np.float64)
    with autodiff.no_grad():
        dist = vae.decoder_distribution(autodiff.Tensor(B.to_backend(z)))
    logit = B.to_numpy(dist.base.logits.data).astype(np.float64)            # (N, D)
    return rans.quantize(np.exp(_bernoulli_log_table(logit)))


def _check_vae(vae):
    if getattr(vae, "family", None) != "vae" or vae.decoder_kind != "bernoulli" \
            or vae.conditional:
        raise ValueError("bits-back: the model must be an unconditional VAE (family 'vae') "
                         "with the Bernoulli decoder")


def bits_back_compress(vae, x, lanes=1, latent_bits=8, initial_words=64, seed=0,
                       latent_precision=16, return_latents=False):
    """BB-ANS (Townsend, Bird and Barber 2019, "Practical lossless compression with latent
    variables using bits back coding", Table 1). Per image x, on a stack that holds bits:

        z <- pop with q(z | x)          (decode: takes about -log2 q(z | x) bits off)
        push x with p_theta(x | z)      (-log2 p(x | z) bits)
        push z with p(z)                (latent_bits per coordinate = -log2 p(z) bucket)

    so each image adds -log2 p(x | z) - log2 p(z) + log2 q(z | x) bits: on average the
    negative ELBO (with the buckets' discretisation, which cancels between q and p up to
    the posterior's curvature within a bucket). The first pops need bits that were never
    pushed: the stack starts from ``initial_words`` random words per lane (part of the
    file; the decoder gives them back). Lane k codes images kG..kG+G-1 in turn.
    :return: (words, initial words) -- the file and the initial message it started from;
        with ``return_latents`` also the bucket indices (N, d) that were popped
    """
    _check_vae(vae)
    x_flat = vae._flat(x, "bits_back").data                                  # (N, D)
    n = x_flat.shape[0]
    K, G = _lane_layout(n, lanes)
    edges, centres = latent_buckets(latent_bits)
    rng = np.random.default_rng(seed)
    initial = rng.integers(0, 1 << 16, size=K * initial_words, dtype=np.uint16)
    initial[-2 * K + 1::2] |= np.uint16(1)                # lane states >= 2^16 (high words)
    stack = rans.AnsStack.from_message(initial, K)
    prior = np.full((K, vae.latent_dim, 1 << latent_bits),
                    1 << (latent_precision - latent_bits), dtype=np.int64)
    sym = np.rint(B.to_numpy(x_flat)).astype(np.int64)                       # binary pixels
    latents = np.zeros((n, vae.latent_dim), dtype=np.int64)
    for g in range(G):
        rows = np.arange(K) * G + g                                          # lane k's image
        xg = x_flat[B.to_backend(rows)]
        z = stack.pop(_posterior_tables(vae, xg, edges, latent_precision), latent_precision)
        stack.push(sym[rows], _likelihood_tables(vae, z, centres))
        stack.push(z, prior, latent_precision)
        latents[rows] = z
    if return_latents:
        return stack.to_message(), initial, latents
    return stack.to_message(), initial


def bits_back_decompress(vae, words, n, lanes=1, latent_bits=8, latent_precision=16):
    """Undo ``bits_back_compress``: the images (n, *example_shape) and the initial message
    (which must equal the encoder's). In reverse: pop z with p(z), pop x with p(x | z),
    push z back with q(z | x)."""
    _check_vae(vae)
    K, G = _lane_layout(n, lanes)
    edges, centres = latent_buckets(latent_bits)
    stack = rans.AnsStack.from_message(words, K)
    prior = np.full((K, vae.latent_dim, 1 << latent_bits),
                    1 << (latent_precision - latent_bits), dtype=np.int64)
    out = np.zeros((n, vae.num_dims), dtype=np.int64)
    dtype = vae._dtype()
    for g in range(G - 1, -1, -1):
        rows = np.arange(K) * G + g
        z = stack.pop(prior, latent_precision)
        out[rows] = stack.pop(_likelihood_tables(vae, z, centres))
        xg = B.to_backend(out[rows], dtype=dtype)
        stack.push(z, _posterior_tables(vae, xg, edges, latent_precision), latent_precision)
    x = B.to_backend(out, dtype=dtype).reshape((n,) + vae.example_shape)
    return x, stack.to_message()


# ---------------------------------------------------------------- the classical baselines
def _png_bytes(image, binary):
    """One PNG file (bytes) of a 2-D integer image: 1-bit for binary, 8-bit grey otherwise."""
    from PIL import Image
    if binary:
        img = Image.fromarray(image.astype(bool))                            # mode "1"
    else:
        img = Image.fromarray(image.astype(np.uint8), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def classical_sizes(symbols_images, binary):
    """gzip and PNG sizes in bits of integer images (N, H, W) (pixel k as the byte k)."""
    imgs = symbols_images.astype(np.uint8)
    n, h, w = imgs.shape
    out = {"gzip_bytes": 8 * len(zlib.compress(imgs.tobytes(), 9)),
           "png_per_image": 8 * sum(len(_png_bytes(im, binary)) for im in imgs),
           "png_one_file": 8 * len(_png_bytes(imgs.transpose(1, 0, 2).reshape(h, n * w),
                                             binary))}
    if binary:
        out["gzip_packed_bits"] = 8 * len(zlib.compress(np.packbits(imgs).tobytes(), 9))
    return out


# ---------------------------------------------------------------- the experiment
def _data(ctx):
    """(data name, MADE settings): MNIST binarized when its files are found, else digits."""
    s = ctx.settings
    from ..data import load_dataset
    if s["data"] != s["fallback_data"]:
        try:
            load_dataset(s["data"], split="test", data_dir=ctx.data_dir)
            return s["data"], dict(s["model"])
        except FileNotFoundError as e:
            ctx.log(f"{s['data']} not found ({str(e).splitlines()[0]}); using "
                    f"{s['fallback_data']}")
    return s["fallback_data"], dict(s["fallback_model"])


def _test_images(model, data, n, data_dir):
    """The first n test images as the model codes them: binarized once with
    ``binarize_fixed(x, seed=0)`` (the model's own evaluation) for a binary model."""
    from ..data import load_dataset
    from ..data.preprocessing import binarize_fixed
    test = load_dataset(data, split="test", data_dir=data_dir)
    x = B.xp.asarray(test.x[:n])
    if model.binarize == "dynamic":
        x = binarize_fixed(x, seed=0)
    return x.astype(model.net.layers[0].weight.dtype)


def _figure(ctx, rows, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names, values = zip(*rows)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    colors = ["#7f7f7f" if name.startswith(("gzip", "PNG")) else "#1f77b4" for name in names]
    bars = ax.barh(range(len(rows)), values, color=colors)
    for bar, v in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v:.4f}",
                va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("bits per dimension (lower is better)")
    ax.set_xlim(0, max(values) * 1.2)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = ctx.figure_path("compression.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return ctx.publish(path)


def _negative_elbo_bits(vae, x, samples, chunk=100):
    """-sum_n ELBO(x_n) in bits, each ELBO's expectation by ``samples`` draws of z ~ q."""
    gen = autodiff.Generator(1)
    total = 0.0
    with autodiff.no_grad():
        for i in range(0, x.shape[0], chunk):
            e = vae.elbo(autodiff.Tensor(x[i:i + chunk]), generator=gen, num_samples=samples)
            total -= float(B.to_numpy(e.data).astype(np.float64).sum())
    return total / math.log(2.0)


def _bits_back(ctx, data):
    """The stretch: BB-ANS with a VAE on the same binarized test images; numbers in
    bits/dim: -ELBO, the net rate (file minus the initial bits), the file; round trip."""
    from ..data import load_dataset
    from ..data.preprocessing import binarize_fixed
    s = ctx.settings
    vae = ctx.train("vae", data, minutes=s.get("vae_minutes"), steps=s.get("vae_steps"),
                    tag=f"vae-{data}")
    n, K, bits = int(s["bitsback_images"]), int(s["bitsback_lanes"]), int(s["latent_bits"])
    test = load_dataset(data, split="test", data_dir=ctx.data_dir)
    x = binarize_fixed(B.xp.asarray(test.x[:n]), seed=0).astype(vae._dtype())
    D = vae.num_dims
    neg_elbo = _negative_elbo_bits(vae, x, int(s["elbo_samples"]))
    t0 = time.time()
    words, initial = bits_back_compress(vae, x, lanes=K, latent_bits=bits)
    t_enc = time.time() - t0
    t0 = time.time()
    back, rest = bits_back_decompress(vae, words, n, lanes=K, latent_bits=bits)
    t_dec = time.time() - t0
    exact = bool(B.xp.array_equal(back, x)) and bool(np.array_equal(rest, initial))
    if not exact:
        raise AssertionError("compression: bits-back decoding did not restore the images "
                             "and the initial bits")
    net = rans.coded_bits(words) - rans.coded_bits(initial)
    out = {"bitsback_images": n, "bitsback_lanes": K, "latent_dim": vae.latent_dim,
           "latent_bits": bits, "vae_negative_elbo_bpd": neg_elbo / (n * D),
           "bitsback_net_bpd": net / (n * D),
           "bitsback_file_bpd": rans.coded_bits(words) / (n * D),
           "bitsback_initial_bits": rans.coded_bits(initial),
           "ratio_bitsback_to_negative_elbo": net / neg_elbo,
           "bitsback_round_trip_exact": exact, "bitsback_encode_seconds": round(t_enc, 2),
           "bitsback_decode_seconds": round(t_dec, 2)}
    sweep = {}
    for b in s.get("latent_bits_sweep", []):
        w, init = bits_back_compress(vae, x, lanes=K, latent_bits=int(b))
        sweep[str(b)] = (rans.coded_bits(w) - rans.coded_bits(init)) / (n * D)
    out["bitsback_net_bpd_by_latent_bits"] = {str(bits): out["bitsback_net_bpd"], **sweep}
    ctx.log(f"bits-back (VAE, {vae.latent_dim}-d latent in {bits}-bit buckets, {n} images, "
            f"{K} lanes): -ELBO {out['vae_negative_elbo_bpd']:.5f} bits/dim, net rate "
            f"{out['bitsback_net_bpd']:.5f} (ratio {out['ratio_bitsback_to_negative_elbo']:.4f}"
            f"), file with the {out['bitsback_initial_bits']} initial bits "
            f"{out['bitsback_file_bpd']:.5f}; round trip exact: {exact}; encode {t_enc:.1f} s,"
            f" decode {t_dec:.1f} s")
    if sweep:
        ctx.log("bits-back net rate by latent bits: " + ", ".join(
            f"{k}: {v:.5f}" for k, v in out["bitsback_net_bpd_by_latent_bits"].items()))
    return out


def run(ctx):
    s = ctx.settings
    data, model_settings = _data(ctx)
    model_settings.update(num_masks=1)
    model = ctx.train("made", data, minutes=s.get("minutes"), steps=s.get("steps"),
                      settings=model_settings, tag=f"made-{data}")
    x = _test_images(model, data, int(s["test_images"]), ctx.data_dir)
    n, D = x.shape[0], model.num_dims
    with autodiff.no_grad():
        model_bits = -float(B.to_numpy(model.log_prob(x).data).astype(np.float64).sum()) \
            / math.log(2.0)
    t0 = time.time()
    words, ideal_bits = compress(model, x, lanes=s["lanes"])
    t_enc = time.time() - t0
    t0 = time.time()
    back = decompress(model, words, n, lanes=s["lanes"])
    t_dec = time.time() - t0
    exact = bool(B.xp.array_equal(back, x))
    if not exact:
        raise AssertionError("compression: the decoded images differ from the originals")
    file_bits = rans.coded_bits(words)
    per_dim = 1.0 / (n * D)
    binary = model.head.name == "bernoulli"
    sym = _symbols(model, model._flat(x).data).reshape((n,) + model.example_shape[-2:])
    classical = classical_sizes(sym, binary)
    numbers = {
        "data": data, "images": n, "dims": D, "lanes": int(s["lanes"]),
        "head": model.head.name, "precision_bits": rans.PRECISION,
        "model_bpd": model_bits * per_dim, "ideal_quantised_bpd": ideal_bits * per_dim,
        "file_bpd": file_bits * per_dim, "file_bytes": file_bits // 8,
        "ratio_file_to_model": file_bits / model_bits, "round_trip_exact": exact,
        "encode_seconds": round(t_enc, 2), "decode_seconds": round(t_dec, 2),
        **{f"{k}_bpd": v * per_dim for k, v in classical.items()},
    }
    ctx.log(f"{n} test images of {data} ({D} dims, head {model.head.name}), {s['lanes']} lanes")
    ctx.log(f"model -log2 p: {numbers['model_bpd']:.5f} bits/dim; quantised ideal "
            f"{numbers['ideal_quantised_bpd']:.5f}; rANS file {numbers['file_bpd']:.5f} "
            f"({file_bits // 8} bytes); file/model = {numbers['ratio_file_to_model']:.5f}")
    ctx.log(f"round trip exact: {exact}; encode {t_enc:.1f} s, decode {t_dec:.1f} s")
    ctx.log("gzip -9 " + ", ".join(f"{k}: {v * per_dim:.4f}" for k, v in classical.items())
            + " bits/dim")
    rows = [("MADE, -log2 p (model)", numbers["model_bpd"]),
            ("MADE + rANS (file)", numbers["file_bpd"])]
    if s.get("bitsback_images"):
        numbers.update(_bits_back(ctx, data))
        rows += [("VAE, -ELBO (bound)", numbers["vae_negative_elbo_bpd"]),
                 ("VAE + bits-back ANS (net)", numbers["bitsback_net_bpd"])]
    if binary:
        rows.append(("gzip -9, packed bits", numbers["gzip_packed_bits_bpd"]))
    rows += [("gzip -9, one byte/pixel", numbers["gzip_bytes_bpd"]),
             ("PNG, all images in one file", numbers["png_one_file_bpd"]),
             ("PNG, one file per image", numbers["png_per_image_bpd"])]
    _figure(ctx, rows, f"{n} test images of {data}{' (binarized)' if binary else ''}: "
                       f"lossless size, bits per pixel")
    return numbers
