"""``refgen experiment compression`` on the tiny budget: the decoded images equal the
originals, the file's length is the model's -log2 p up to the coder's stated overhead, and
the pieces (tables, lane layout) are what the derivation says."""
import math

import numpy as np  # host-side: reading the coder's host arrays
import pytest

import autodiff
from autodiff import backend as B
from refgen.coding import rans
from refgen.experiments import compression as C
from refgen.experiments.common import ExperimentContext


def _ctx(tmp_path, budget="tiny", **changes):
    settings = dict(C.BUDGETS[budget], **changes)
    return ExperimentContext(name="compression", out=str(tmp_path / "out"), budget=budget,
                             settings=settings, figures=str(tmp_path / "figures"),
                             progress=None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny experiment run once (float32, as the command runs it)."""
    previous = autodiff.get_default_dtype()
    autodiff.set_default_dtype("float32")
    try:
        tmp = tmp_path_factory.mktemp("compression")
        ctx = _ctx(tmp)
        numbers = C.run(ctx)
        model = ctx.train("made", "digits", steps=C.BUDGETS["tiny"]["steps"], tag="made-digits")
        vae = ctx.train("vae", "digits", steps=C.BUDGETS["tiny"]["vae_steps"], tag="vae-digits")
    finally:
        autodiff.set_default_dtype(previous)
    return tmp, numbers, model, vae


def test_bits_back_round_trips_near_the_negative_elbo(tiny):
    _, numbers, _, _ = tiny
    assert numbers["bitsback_round_trip_exact"] is True
    # a 30-step VAE: the rate is the discretised -ELBO of the popped buckets (next test);
    # against the Monte Carlo -ELBO it is within a few per cent (measured 1.008 here)
    assert 0 < numbers["bitsback_net_bpd"] < numbers["bitsback_file_bpd"]
    assert abs(numbers["ratio_bitsback_to_negative_elbo"] - 1) < 0.05


def test_bits_back_rate_is_the_discretised_elbo_of_the_popped_latents(tiny):
    """Net bits = sum_n [-log2 p(x_n | z_n) + b d - (-log2 Q(z_n | x_n))] over the buckets
    z_n that were popped, with the quantised tables, up to the coder's rounding: each push
    or pop moves the state's information by log2(M/f) within 2 log2(1 + 2^(n-16)) bits,
    and each lane's state adds 0..16 bits at both ends (precision n = 12 here, so that the
    bound is tight enough to catch a wrong table: popping z from the prior instead of the
    posterior, for one, is off by thousands of bits)."""
    from refgen.data import load_dataset
    from refgen.data.preprocessing import binarize_fixed
    vae = tiny[3]
    n, K, b = 40, 2, 8
    x = binarize_fixed(B.xp.asarray(load_dataset("digits", split="test").x[:n]),
                       seed=0).astype(vae._dtype())
    words, initial, z = C.bits_back_compress(vae, x, lanes=K, latent_bits=b,
                                             latent_precision=12, return_latents=True)
    back, rest = C.bits_back_decompress(vae, words, n, lanes=K, latent_bits=b,
                                        latent_precision=12)
    assert bool(B.xp.array_equal(back, x)) and np.array_equal(rest, initial)
    edges, centres = C.latent_buckets(b)
    x_sym = np.rint(B.to_numpy(x.reshape(n, -1))).astype(np.int64)
    recon = rans.ideal_bits(x_sym, C._likelihood_tables(vae, z, centres))
    back_bits = rans.ideal_bits(z, C._posterior_tables(vae, x.reshape(n, -1), edges, 12), 12)
    ideal = recon + n * vae.latent_dim * b - back_bits
    net = rans.coded_bits(words) - rans.coded_bits(initial)
    ops = n * (2 * vae.latent_dim + vae.num_dims)
    assert abs(net - ideal) <= ops * 2 * np.log2(1 + 2.0 ** (12 - 16)) + 32 * K
    assert net < recon + n * vae.latent_dim * b            # bits did come back


def test_tiny_run_round_trips_and_matches_the_model(tiny):
    tmp, numbers, _, _ = tiny
    assert numbers["round_trip_exact"] is True
    n, D, K = numbers["images"], numbers["dims"], numbers["lanes"]
    # the file is the quantised ideal plus at most the hard bound of rans' docstring
    bound = rans.excess_bound_bits(n * D, K) / (n * D)
    assert numbers["ideal_quantised_bpd"] <= numbers["file_bpd"] + 1e-12
    assert numbers["file_bpd"] <= numbers["ideal_quantised_bpd"] + bound
    # quantisation to 12 bits moves -log2 p by at most log2(1 + A / (2^12 p_min))-ish per
    # symbol; for 17 levels and an untrained-ish model: well under 1 % of 4 bits/dim
    assert abs(numbers["ideal_quantised_bpd"] / numbers["model_bpd"] - 1) < 0.01
    assert numbers["file_bytes"] * 8 == round(numbers["file_bpd"] * n * D)
    # everything is a real size: 17-level pixels cost at most log2(17) bits/dim in a
    # uniform model; gzip and PNG give positive sizes
    assert 0 < numbers["model_bpd"] < math.log2(17) + 0.5
    for key in ("gzip_bytes_bpd", "png_per_image_bpd", "png_one_file_bpd"):
        assert numbers[key] > 0
    assert (tmp / "figures" / "compression.png").read_bytes()[:4] == b"\x89PNG"


def test_one_pass_tables_give_the_models_log_likelihood(tiny):
    """sum_d log q(x_d | x_<d) from the teacher-forced tables (before quantisation) is
    model.log_prob(x): the coder codes exactly the model's factorisation."""
    _, _, model, _ = tiny
    x = C._test_images(model, "digits", 12, None)                    # the model's dtype
    logq = C._log_tables(model, model._flat(x).data)                  # (N, D, A)
    sym = C._symbols(model, model._flat(x).data)
    mine = np.take_along_axis(logq, sym[..., None], -1)[..., 0].sum(axis=1)
    with autodiff.no_grad():
        theirs = B.to_numpy(model.log_prob(autodiff.Tensor(x)).data).astype(np.float64)
    # the model computes in its own dtype (float32): relative rounding of float32 sums
    np.testing.assert_allclose(mine, theirs, rtol=1e-4)


def test_decoder_tables_equal_encoder_tables_bit_for_bit(tiny):
    """Undecoded pixels set to zero do not change the tables of the pixels before them
    (the masks), so the decoder rebuilds the encoder's integer tables exactly."""
    _, _, model, _ = tiny
    x = C._test_images(model, "digits", 8, None)
    x_flat = model._flat(x).data
    full = C.conditional_tables(model, x_flat)
    order = B.to_numpy(model.net.order).tolist()
    partial = x_flat.copy()
    for j in range(len(order) - 1, 10, -1):
        partial[:, order[j]] = 0
    j = 10
    np.testing.assert_array_equal(C.conditional_tables(model, partial)[:, order[j]],
                                  full[:, order[j]])


def test_lanes_change_the_size_only_by_the_final_states(tiny):
    _, _, model, _ = tiny
    x = C._test_images(model, "digits", 16, None)
    one, ideal1 = C.compress(model, x, lanes=1)
    four, ideal4 = C.compress(model, x, lanes=4)
    assert ideal1 == pytest.approx(ideal4, rel=1e-12)      # the same symbols and tables
    assert abs(rans.coded_bits(four) - rans.coded_bits(one)) <= 32 * 4 + 16
    back = C.decompress(model, four, 16, lanes=4)
    assert bool(B.xp.array_equal(back, x))


def test_a_different_model_does_not_decode_the_file(tiny):
    """Decoding needs the encoder's conditionals: another model's tables fail or give
    other images."""
    _, _, model, _ = tiny
    x = C._test_images(model, "digits", 8, None)
    words, _ = C.compress(model, x, lanes=2)
    w = model.net.layers[-1].bias
    w.data = w.data + 0.5 * B.xp.sin(B.xp.arange(w.data.size, dtype=w.data.dtype))
    try:
        try:
            back = C.decompress(model, words, 8, lanes=2)
        except ValueError as e:
            assert "tables" in str(e)
            return
        assert not bool(B.xp.array_equal(back, x))
    finally:
        w.data = w.data - 0.5 * B.xp.sin(B.xp.arange(w.data.size, dtype=w.data.dtype))


def test_bad_arguments_are_named(tiny):
    _, _, model, _ = tiny
    x = C._test_images(model, "digits", 6, None)
    with pytest.raises(ValueError, match="lanes must be a positive int dividing the number "
                                         "of images 6, got 4"):
        C.compress(model, x, lanes=4)
    with pytest.raises(ValueError, match="must be a MADE"):
        C.compress(object(), x)
    with pytest.raises(ValueError, match="must be an unconditional VAE"):
        C.bits_back_compress(model, x)


def test_classical_sizes_are_real_files():
    """gzip and PNG sizes round-trip through their own decoders (they are real files)."""
    import io
    import zlib

    from PIL import Image
    rng = np.random.default_rng(0)
    imgs = (rng.random((5, 8, 8)) < 0.3).astype(np.uint8)
    sizes = C.classical_sizes(imgs, binary=True)
    assert sizes["gzip_bytes"] == 8 * len(zlib.compress(imgs.tobytes(), 9))
    png = C._png_bytes(imgs[0], True)
    np.testing.assert_array_equal(np.array(Image.open(io.BytesIO(png))).astype(np.uint8),
                                  imgs[0])
    png8 = C._png_bytes(imgs[1] * 16, False)
    np.testing.assert_array_equal(np.array(Image.open(io.BytesIO(png8))), imgs[1] * 16)


def test_decoder_tables_equal_encoder_tables_with_the_direct_map():
    """The binarized-MNIST budget's MADE has the direct input-to-output map (the default
    for binary pixels): its masked weights are exact zeros too, so undecoded pixels set to
    zero leave the earlier pixels' integer tables unchanged, as the decoder needs."""
    from refgen.families.autoregressive import made as made_family
    from refgen.families.base import data_info_for_config
    info = {"name": "bin", "kind": "image", "shape": [1, 4, 4], "levels": 2,
            "value_range": [0.0, 1.0], "binary": True}
    config = made_family.default_config(info)
    config.update(hidden_sizes=[16], ordering="random", data_info=data_info_for_config(info))
    model = made_family.build(config)
    assert model.net.direct_layer is not None
    for p in model.net.parameters():
        p.data *= 3.0                     # far from uniform, so equal tables mean something
    x_flat = B.to_backend((np.random.default_rng(0).random((8, 16)) < 0.5).astype(np.float64),
                          dtype=model.net.layers[0].weight.dtype)
    full = C.conditional_tables(model, x_flat)
    order = B.to_numpy(model.net.order).tolist()
    for j in (3, 9):
        partial = x_flat.copy()
        partial[:, order[j + 1:]] = 0
        np.testing.assert_array_equal(C.conditional_tables(model, partial)[:, order[j]],
                                      full[:, order[j]])
    # and a later pixel does change them (the test would pass on a blind model otherwise)
    flipped = x_flat.copy()
    flipped[:, order[:9]] = 1 - flipped[:, order[:9]]
    assert not np.array_equal(C.conditional_tables(model, flipped)[:, order[9]],
                              full[:, order[9]])
