"""``refgen experiment language`` on the tiny budget: the decoded text is the test text, the
file is the model's -log2 p up to the coder's stated overhead, the cached tables that the
coder uses are the model's teacher-forced conditionals, and gzip's number is a real size."""
import math
import zlib

import numpy as np  # host-side: ids and the coder's arrays live on the host
import pytest

import autodiff
from autodiff import backend as B
from refgen.coding import rans
from refgen.experiments import language as L
from refgen.experiments.common import ExperimentContext


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    previous = autodiff.get_default_dtype()
    autodiff.set_default_dtype("float32")
    try:
        tmp = tmp_path_factory.mktemp("language")
        ctx = ExperimentContext(name="language", out=str(tmp / "out"), budget="tiny",
                                settings=dict(L.BUDGETS["tiny"]), figures=str(tmp / "fig"),
                                progress=None)
        numbers = L.run(ctx)
        text = L.experiment_text(ctx)               # the text the run used (OUT/text.txt)
        vocab = L.Vocabulary(text)
        model = L._train(ctx, vocab, None)          # finished: loaded from its checkpoint
    finally:
        autodiff.set_default_dtype(previous)
    return tmp, numbers, model, vocab, text


def test_tiny_run_round_trips_and_matches_the_model(tiny):
    tmp, numbers, _, vocab, _ = tiny
    assert numbers["round_trip_exact"] is True
    chars, K = numbers["coded_chars"], numbers["lanes"]
    bound = rans.excess_bound_bits(chars, K, numbers["precision_bits"]) / chars
    assert numbers["ideal_quantised_bpc"] <= numbers["file_bpc"] + 1e-12
    assert numbers["file_bpc"] <= numbers["ideal_quantised_bpc"] + bound
    # quantisation: q >= p (1 - V/M) for every character, so the ideal exceeds the model's
    # -log2 p by at most -log2(1 - V / 2^14) bits per character (and can be below it)
    V = numbers["vocab_size"]
    assert numbers["ideal_quantised_bpc"] <= numbers["model_bpc"] - math.log2(
        1 - V / 2 ** numbers["precision_bits"]) + 1e-3
    # an untrained-ish model is near the uniform distribution: below log2(V) + 1
    assert 0 < numbers["model_bpc"] < math.log2(V) + 1
    assert numbers["vocab_size"] == len(vocab)
    assert (tmp / "fig" / "language.png").read_bytes()[:4] == b"\x89PNG"
    assert set(numbers["samples"]) == {"0.5", "1.0"}
    assert all(len(s) == L.BUDGETS["tiny"]["sample_chars"] for s in numbers["samples"].values())


def test_gzip_number_is_the_size_of_a_real_file(tiny):
    _, numbers, _, vocab, text = tiny
    T = numbers["block_size"]
    test = text[int(0.9 * len(text)):][:numbers["coded_chars"]]
    raw = test.encode("utf-8")
    assert zlib.decompress(zlib.compress(raw, 9)) == raw
    assert numbers["gzip_bpc"] == pytest.approx(8 * len(zlib.compress(raw, 9)) / len(test))
    assert numbers["coded_chars"] % (T * numbers["lanes"]) == 0


def test_cached_tables_are_the_teacher_forced_conditionals(tiny):
    """The per-position tables of the coder (one cached pass per position) come from the
    same distribution as the one-pass teacher-forced likelihood (float32 rounding apart):
    sum of -log2 q over the text = test_bits up to quantisation."""
    _, numbers, model, vocab, text = tiny
    T = numbers["block_size"]
    ids = vocab.encode(text[int(0.9 * len(text)):][:T * 4])
    w = L.windows(ids, T)
    model.net.eval()
    cache = model.net.new_cache()
    prev = np.zeros((4, 1), dtype=np.int64)
    logp = np.zeros((4, T))
    for t in range(T):
        with autodiff.no_grad():
            z = B.to_numpy(model.net(autodiff.Tensor(B.to_backend(prev)), cache=cache).data)
        z = z[:, -1].astype(np.float64)
        z = z - z.max(axis=-1, keepdims=True)
        logp[:, t] = (z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(4), w[:, t]]
        prev = w[:, t:t + 1]
    cached_bits = -logp.sum() / math.log(2)
    assert cached_bits == pytest.approx(model.test_bits(w), rel=1e-4)


def test_windows_lanes_and_vocabulary():
    ids = np.arange(10)
    np.testing.assert_array_equal(L.windows(ids, 4), [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(L.windows(ids, 4, stride=3), [[0, 1, 2, 3], [3, 4, 5, 6],
                                                                [6, 7, 8, 9]])
    v = L.Vocabulary("abca")
    assert v.chars[0] == L.BOS and v.decode(v.encode("cab")) == "cab"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.encode("abz")
    with pytest.raises(ValueError, match="lanes must be a positive int dividing the number "
                                         "of windows 6, got 4"):
        L._layout(6, 4)


def test_a_different_model_does_not_decode_the_file(tiny):
    _, numbers, model, vocab, text = tiny
    T = numbers["block_size"]
    w = L.windows(vocab.encode(text[int(0.9 * len(text)):][:T * 4]), T)
    words, _ = L.encode_text(model, w, 2, 14)
    np.testing.assert_array_equal(L.decode_text(model, words, 4, T, 2, 14), w)
    b = model.net.ln_f.bias
    saved = b.data.copy()
    b.data = b.data + 0.3
    try:
        try:
            back = L.decode_text(model, words, 4, T, 2, 14)
        except ValueError as e:
            assert "tables" in str(e)
            return
        assert not np.array_equal(back, w)
    finally:
        b.data = saved
