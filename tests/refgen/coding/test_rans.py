"""rANS (refgen.coding.rans): exact round trips, the length bound of the module docstring,
wrong tables detected, interleaving costs nothing but the final states, clear errors."""
import numpy as np  # host-side: the coder is host-side integer code on NumPy arrays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refgen.coding import rans


def _message(seed, lanes, length, alphabet, precision, concentration=0.5):
    """Random tables (Dirichlet probabilities, quantised) and symbols drawn from them."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(alphabet, concentration), size=(lanes, length))
    freqs = rans.quantize(p, precision)
    cdf = np.cumsum(freqs, axis=-1) / float(1 << precision)
    symbols = (rng.random((lanes, length, 1)) >= cdf).sum(axis=-1)
    return np.minimum(symbols, alphabet - 1), freqs


messages = st.tuples(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(0, 60),
                     st.integers(2, 40), st.integers(6, 16))


@given(messages)
def test_round_trip_is_exact(args):
    seed, lanes, length, alphabet, precision = args
    if alphabet > 1 << precision:
        alphabet = 1 << precision
    symbols, freqs = _message(seed, lanes, length, alphabet, precision)
    words = rans.encode(symbols, freqs, precision)
    assert words.dtype == np.uint16
    np.testing.assert_array_equal(rans.decode(words, freqs, precision), symbols)


@given(messages)
def test_length_within_the_hard_bound_of_the_ideal(args):
    """coded <= sum -log2 q + S log2(1 + 2^(n-16)) + 32 K (module docstring), and never
    below the information the decoder needs beyond the first 16 bits of each lane."""
    seed, lanes, length, alphabet, precision = args
    alphabet = min(alphabet, 1 << precision)
    symbols, freqs = _message(seed, lanes, length, alphabet, precision)
    words = rans.encode(symbols, freqs, precision)
    ideal = rans.ideal_bits(symbols, freqs, precision)
    excess = rans.coded_bits(words) - ideal
    assert excess <= rans.excess_bound_bits(symbols.size, lanes, precision) + 1e-9
    # a lane's information: 16 bits of initial state are not message; the rest must be there
    assert excess >= -symbols.size * np.log2(1 + 2.0 ** (precision - 16)) - 16 * lanes - 1e-9


def test_average_excess_is_the_final_states_not_a_per_symbol_cost():
    """On long messages the excess per lane is about 16-32 bits (initial state plus flush),
    not a per-symbol cost: 200 lanes of 2000 Bernoulli-like symbols at 0.16 bits each (the
    information per pixel of binarized MNIST) cost under 0.5% more than the ideal."""
    symbols, freqs = _message(1, 200, 2000, 2, rans.PRECISION, concentration=0.1)
    words = rans.encode(symbols, freqs)
    ideal = rans.ideal_bits(symbols, freqs)
    per_lane = (rans.coded_bits(words) - ideal) / 200
    assert 8 <= per_lane <= 36
    np.testing.assert_array_equal(rans.decode(words, freqs), symbols)


def test_interleaved_lanes_cost_exactly_the_sum_of_single_lanes():
    """Interleaving only shares the stream: every lane emits the same words as alone."""
    symbols, freqs = _message(2, 7, 300, 9, 12)
    together = rans.encode(symbols, freqs)
    alone = [rans.encode(symbols[k], freqs[k]) for k in range(7)]
    assert together.size == sum(w.size for w in alone)
    for k in range(7):
        np.testing.assert_array_equal(rans.decode(alone[k], freqs[k]), symbols[k])


@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.integers(1, 50), st.integers(3, 30))
def test_a_wrong_table_fails_or_decodes_something_else(seed, lanes, length, alphabet):
    symbols, freqs = _message(seed, lanes, length, alphabet, 12)
    words = rans.encode(symbols, freqs)
    rng = np.random.default_rng(seed + 1)
    k, i = rng.integers(lanes), rng.integers(length)
    wrong = freqs.copy()
    row = wrong[k, i]
    a = symbols[k, i]                                   # move mass away from the coded symbol
    b = (a + 1 + rng.integers(alphabet - 1)) % alphabet
    take = max(1, (row[a] - 1) // 2)
    if row[a] == 1:                                     # nothing to take: give it mass instead
        donor = int(np.argmax(row))
        row[donor] -= 1
        row[a] += 1
    else:
        row[a] -= take
        row[b] += take
    try:
        decoded = rans.decode(words, wrong)
    except ValueError as e:
        assert "tables" in str(e)
        return
    assert not np.array_equal(decoded, symbols)


def test_step_decoder_matches_whole_decode_and_detects_leftovers():
    symbols, freqs = _message(3, 4, 40, 5, 12)
    words = rans.encode(symbols, freqs)
    dec = rans.RansDecoder(words, lanes=4)
    for i in range(40):
        np.testing.assert_array_equal(dec.decode(freqs[:, i]), symbols[:, i])
    dec.finish()
    early = rans.RansDecoder(words, lanes=4)
    for i in range(20):
        early.decode(freqs[:, i])
    with pytest.raises(ValueError, match="did not end where encoding began"):
        early.finish()


@given(st.integers(0, 2**31 - 1), st.integers(2, 300), st.integers(8, 16))
def test_quantize_keeps_every_symbol_and_stays_close(seed, alphabet, precision):
    alphabet = min(alphabet, 1 << precision)
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(alphabet, 0.3), size=5)
    f = rans.quantize(p, precision)
    M = 1 << precision
    assert f.dtype == np.int64 and f.min() >= 1
    np.testing.assert_array_equal(f.sum(axis=-1), M)
    # q = f / M is within A / M of p in every entry (1 + floor(p (M - A)), plus the rest)
    assert np.abs(f / M - p).max() <= alphabet / M + 1e-12


def test_quantize_is_near_lossless_for_bernoulli_pixels():
    """KL(p || q) of binary pixels at the default precision: below 1e-3 bits per symbol
    except for probabilities under 2^-12, which quantisation must lift to 1/M."""
    p1 = np.linspace(1e-3, 1 - 1e-3, 999)
    p = np.stack([1 - p1, p1], axis=-1)
    q = rans.quantize(p) / float(1 << rans.PRECISION)
    kl = np.sum(p * np.log2(p / q), axis=-1)
    assert kl.max() < 1e-3


def test_bad_inputs_are_named():
    f = rans.quantize(np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="precision must be an int in 1..16"):
        rans.encode(np.array([0]), f, precision=20)
    with pytest.raises(ValueError, match=r"symbols must lie in 0..1"):
        rans.encode(np.array([2]), f)
    with pytest.raises(ValueError, match=r"symbols.shape \+ \(A,\)"):
        rans.encode(np.array([0, 1]), f)
    with pytest.raises(ValueError, match="summing to 2\\^precision = 4096"):
        rans.encode(np.array([0]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match="finite and non-negative"):
        rans.quantize(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="300 symbols do not fit precision 8"):
        rans.quantize(np.ones(300), precision=8)
    with pytest.raises(ValueError, match="uint16"):
        rans.RansDecoder(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"freqs must have shape \(2, A\)"):
        rans.RansDecoder(np.zeros(4, dtype=np.uint16), lanes=2).decode(f)
    with pytest.raises(ValueError, match="ran out of words"):
        dec = rans.RansDecoder(rans.encode(np.array([0]), f), lanes=1)
        for _ in range(40):
            dec.decode(f)


@pytest.mark.crosscheck
@pytest.mark.parametrize("alphabet,length", [(2, 5000), (17, 2000), (96, 1000)])
def test_length_matches_constriction_on_the_same_probabilities(alphabet, length):
    """constriction's ANS coder (Bamler 2022; 64-bit state, 32-bit words, 24-bit precision)
    on the same quantised probabilities q = f / 2^12 gives the same length up to the two
    coders' own overheads: ours <= 32 bits plus the per-step term, constriction's final
    state is at most 64 bits and its words are 32 bits (so it rounds up by < 32)."""
    constriction = pytest.importorskip("constriction")
    symbols, freqs = _message(4, 1, length, alphabet, 12)
    symbols, freqs = symbols[0], freqs[0]
    mine = rans.coded_bits(rans.encode(symbols, freqs))
    q = freqs / float(1 << 12)
    coder = constriction.stream.stack.AnsCoder()
    model = constriction.stream.model.Categorical(perfect=False)
    coder.encode_reverse(symbols.astype(np.int32), model, q)
    theirs = coder.num_bits()
    ideal = rans.ideal_bits(symbols, freqs)
    # constriction re-quantises q to 2^-24 (an exact multiple here, up to its own rounding)
    theirs_slack = length * np.log2(1 + 2.0 ** -8) + 64 + 32
    assert ideal - 32 <= theirs <= ideal + theirs_slack
    assert abs(mine - theirs) <= rans.excess_bound_bits(length, 1) + theirs_slack
    decoder = constriction.stream.stack.AnsCoder(coder.get_compressed())
    np.testing.assert_array_equal(decoder.decode(model, q), symbols)


def _random_message(seed, lanes, words):
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 1 << 16, size=words + 2 * lanes, dtype=np.uint16)
    w[-2 * lanes + 1::2] |= np.uint16(1)                # lane states >= 2^16
    return w


@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.integers(1, 30), st.integers(2, 50),
       st.integers(6, 16))
def test_stack_pop_then_push_is_the_identity(seed, lanes, length, alphabet, precision):
    """Bits-back's step: popping symbols that were never pushed (decoding from the bits
    already there) and pushing them back with the same tables restores every word."""
    alphabet = min(alphabet, 1 << precision)
    _, freqs = _message(seed, lanes, length, alphabet, precision)
    start = _random_message(seed, lanes, 4 * length)
    stack = rans.AnsStack.from_message(start, lanes)
    popped = stack.pop(freqs, precision)
    assert popped.shape == (lanes, length) and popped.min() >= 0 and popped.max() < alphabet
    stack.push(popped, freqs, precision)
    np.testing.assert_array_equal(stack.to_message(), start)
    # the same on a stack grown by pushes (its words in many small pieces)
    symbols0, freqs0 = _message(seed + 1, lanes, 3 * length, 3, 12)
    stack.push(symbols0, freqs0)
    grown = stack.to_message()
    popped = stack.pop(freqs, precision)
    stack.push(popped, freqs, precision)
    np.testing.assert_array_equal(stack.to_message(), grown)
    np.testing.assert_array_equal(stack.pop(freqs0), symbols0)
    np.testing.assert_array_equal(stack.to_message(), start)


@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.integers(0, 30), st.integers(2, 50))
def test_stack_push_then_pop_returns_the_symbols(seed, lanes, length, alphabet):
    symbols, freqs = _message(seed, lanes, length, alphabet, 12)
    start = _random_message(seed + 1, lanes, 3)
    stack = rans.AnsStack.from_message(start, lanes)
    stack.push(symbols, freqs)
    grown = stack.bits() - rans.coded_bits(start)
    # pushing on a stack costs what encode's bound says (the states were already there)
    assert grown <= rans.ideal_bits(symbols, freqs) + rans.excess_bound_bits(
        symbols.size, lanes) + 1e-9
    again = rans.AnsStack.from_message(stack.to_message(), lanes)
    np.testing.assert_array_equal(again.pop(freqs), symbols)
    np.testing.assert_array_equal(again.to_message(), start)


def test_stack_errors_are_named():
    with pytest.raises(ValueError, match="ran out of words"):
        stack = rans.AnsStack(1)
        stack.pop(rans.quantize(np.full((1, 50, 2), 0.5)))
    with pytest.raises(ValueError, match=r"freqs must have shape \(2, S, A\)"):
        rans.AnsStack(2).push(np.zeros((1, 1), dtype=np.int64),
                              rans.quantize(np.full((1, 1, 2), 0.5)))
    with pytest.raises(ValueError, match="at least 4 words"):
        rans.AnsStack.from_message(np.zeros(3, dtype=np.uint16), 2)
