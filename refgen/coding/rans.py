"""Range asymmetric numeral systems (rANS; Duda 2013, "Asymmetric numeral systems: entropy
coding combining speed of Huffman coding with compression rate of arithmetic coding",
arXiv:1311.2540, section 3 "range variant"), vectorised across K interleaved lanes.

The coder turns symbols s_1..s_S, each with its own categorical distribution q_i, into a
stream of 16-bit words whose length is close to sum_i -log2 q_i(s_i) bits, and back.

Quantised probabilities. Every table is an integer frequency vector f (A,) with f_a >= 1
and sum_a f_a = M = 2^n (``precision`` = n <= 16), so q(a) = f_a / M; c_a = sum_{b<a} f_b
is the start of symbol a's slot range [c_a, c_a + f_a) in [0, M). ``quantize`` makes such a
table from probabilities p; the price is the cross-entropy gap

    E_p[-log2 q] - E_p[-log2 p] = KL(p || q)  bits per symbol,

which is second order in (q - p) except for symbols with p < 1/M (they cost at most n
bits when they occur, instead of -log2 p).

The state. One unsigned integer x per lane kept in I = [L, 2^16 L) with L = 2^16 (a 32-bit
state renormalised 16 bits at a time). Encoding symbol s (frequency f, start c):

    renormalise:  while x >= 2^(32-n) f:  emit x mod 2^16;  x <- floor(x / 2^16)
    encode:       x <- M floor(x / f) + (x mod f) + c                        (Duda, eq. 12)

and decoding inverts it exactly, in the opposite order:

    slot = x mod M;  s = the a with c_a <= slot < c_a + f_a
    x <- f floor(x / M) + slot - c
    renormalise:  while x < L:  x <- 2^16 x + (next word)

Since n <= 16, one word per symbol is always enough in both directions. rANS is a stack
(last in, first out), so the encoder runs over the symbols in reverse and the decoder reads
them forward, which is the order an autoregressive model needs: the decoder sees s_1..s_{i-1}
before it must know q_i.

Why the length is ~ sum -log2 q. Count the information in a lane as log2 x plus 16 bits per
emitted word. Encoding multiplies x by M/f up to the rounding of floor(x/f): with
q = floor(x/f) >= 2^(16-n) after renormalisation, x' / (x M/f) lies in
[q/(q+1), (q+1)/q], so each symbol adds -log2(f/M) + delta with
|delta| <= log2(1 + 2^(n-16)) bits, and delta averages out to a second-order term. Emitting
a word moves 16 bits from x into the stream. A lane starts at x = L (16 bits of nothing)
and ends with its 32-bit state flushed, so

    coded bits <= sum_i -log2 q_i(s_i) + S log2(1 + 2^(n-16)) + 32 K      (a hard bound;
                                                          S: all symbols of all K lanes)

and on average the excess is about 16-32 bits per lane plus a small per-symbol term; the
measured excess is in tests/refgen/coding/test_rans.py and the compression experiment.
Lower n makes the per-symbol term smaller (q >= 2^(16-n)) and the quantisation cost larger
(the smallest probability is 2^-n); the default n = 12 keeps both below 1e-3 bits per
symbol on the experiments' data (see ``PRECISION``).

Interleaving (Giesen 2014, "Interleaved entropy coders", arXiv:1402.3392). K lanes with
their own states share ONE word stream: at each position i the lanes that renormalise emit
their words in lane order; the decoder, reading the reversed stream, takes them back in the
mirrored order. So one call codes many images (or text windows) at once with NumPy
operations over K, and the K final states are the only per-lane cost.

A stack in both directions (``AnsStack``): bits-back coding (Townsend et al. 2019) pops
symbols that were never pushed, from the bits already on the stack, and pushes them back
later; ``AnsStack`` allows push and pop in any order on the same interleaved lanes, with
the same step functions as ``encode`` and ``RansDecoder``.

Everything here is host-side integer code on NumPy arrays of uint64 (no float arithmetic
touches the state, so encoding and decoding are exact on every machine).
"""
import numpy as np  # host-side: integer entropy coding; the states and words live on the host

__all__ = ["PRECISION", "WORD_BITS", "quantize", "encode", "decode", "RansDecoder", "AnsStack",
           "ideal_bits", "coded_bits", "excess_bound_bits"]

PRECISION = 12          # n: probabilities are multiples of 2^-12 (see the module docstring)
WORD_BITS = 16          # renormalisation unit
STATE_BITS = 32         # the state lives in [2^16, 2^32)
_L = np.uint64(1 << 16)  # lower end of the state interval
_WORD_MASK = np.uint64((1 << WORD_BITS) - 1)


def _check_precision(precision):
    if isinstance(precision, bool) or int(precision) != precision or not 1 <= precision <= 16:
        raise ValueError(f"rans: precision must be an int in 1..16 (bits), got {precision!r}")
    return int(precision)


def quantize(probs, precision=PRECISION):
    """Integer frequencies f (..., A) >= 1 with sum f = 2^precision from probabilities.

    f_a = 1 + floor(p_a (M - A)) with p normalised over the last axis, then the remaining
    M - sum f (between 0 and A - 1) goes to the most probable symbol: every symbol keeps a
    slot (so any symbol can be coded), and q = f / M differs from p by at most A / M.

    :param probs: (..., A) non-negative, finite, each row with a positive sum
    :return: int64 (..., A)
    """
    n = _check_precision(precision)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] < 2:
        raise ValueError(f"rans.quantize: probs must have shape (..., A) with A >= 2 symbols, "
                         f"got shape {p.shape}")
    A, M = p.shape[-1], 1 << n
    if A > M:
        raise ValueError(f"rans.quantize: {A} symbols do not fit precision {n} "
                         f"(2^{n} = {M} slots; each symbol needs one)")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("rans.quantize: probs must be finite and non-negative")
    total = p.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("rans.quantize: every row of probs needs a positive sum")
    f = 1 + np.floor(p / total * (M - A)).astype(np.int64)
    rest = M - f.sum(axis=-1, keepdims=True)                       # in [0, A - 1]
    np.put_along_axis(f, p.argmax(axis=-1)[..., None],
                      np.take_along_axis(f, p.argmax(axis=-1)[..., None], -1) + rest, -1)
    return f


def _check_tables(freqs, precision, who):
    f = np.asarray(freqs)
    if f.ndim < 1 or f.shape[-1] < 2 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"rans.{who}: freqs must be an integer array (..., A) with A >= 2, "
                         f"got dtype {f.dtype} shape {f.shape}")
    f = f.astype(np.int64)
    M = 1 << precision
    if np.any(f < 1) or np.any(f.sum(axis=-1) != M):
        raise ValueError(f"rans.{who}: every frequency table must have entries >= 1 summing "
                         f"to 2^precision = {M} (use rans.quantize)")
    return f


def _as_lanes(symbols, freqs, who):
    """symbols (S,) or (K, S); freqs (..., A) matching -> (K, S), (K, S, A), single_lane."""
    s = np.asarray(symbols)
    if not np.issubdtype(s.dtype, np.integer) or s.ndim not in (1, 2):
        raise ValueError(f"rans.{who}: symbols must be integers of shape (S,) or (K, S), "
                         f"got dtype {s.dtype} shape {s.shape}")
    if freqs.shape[:-1] != s.shape:
        raise ValueError(f"rans.{who}: freqs must have shape symbols.shape + (A,) = "
                         f"{s.shape} + (A,), got {freqs.shape}")
    single = s.ndim == 1
    if single:
        s, freqs = s[None], freqs[None]
    A = freqs.shape[-1]
    if s.size and (s.min() < 0 or s.max() >= A):
        raise ValueError(f"rans.{who}: symbols must lie in 0..{A - 1}, got values in "
                         f"{int(s.min())}..{int(s.max())}")
    return s.astype(np.int64), freqs, single


def _push_step(x, f, c, n):
    """Encode one symbol per lane: x (K,) uint64, f, c (K,) uint64 -> (x', emitted words
    of the lanes that renormalised, in ascending lane order)."""
    emit = x >= (f << np.uint64(STATE_BITS - n))                    # renormalise (one word)
    words = (x[emit] & _WORD_MASK).astype(np.uint16)
    x = np.where(emit, x >> np.uint64(WORD_BITS), x)
    return ((x // f) << np.uint64(n)) + (x % f) + c, words          # Duda eq. 12


def _pop_step(x, f_all, n):
    """Decode one symbol per lane from tables f_all (K, A) int64: -> (symbols (K,) int64,
    x' before renormalisation, mask of the lanes that need one word)."""
    ends = np.cumsum(f_all, axis=-1)                                # c_a + f_a
    slot = x & np.uint64((1 << n) - 1)
    s = (ends <= slot.astype(np.int64)[:, None]).sum(axis=-1)       # c_s <= slot < c_s + f_s
    f = np.take_along_axis(f_all, s[:, None], -1)[:, 0].astype(np.uint64)
    c = np.take_along_axis(ends, s[:, None], -1)[:, 0].astype(np.uint64) - f
    x = f * (x >> np.uint64(n)) + slot - c
    return s.astype(np.int64), x, x < _L


def _refill(x, need, words):
    """x <- 2^16 x + word for the lanes in ``need`` (words in ascending lane order)."""
    x = x.copy()
    x[need] = (x[need] << np.uint64(WORD_BITS)) | words.astype(np.uint64)
    return x


def encode(symbols, freqs, precision=PRECISION):
    """Encode symbols with their frequency tables into one uint16 word stream.

    :param symbols: (S,) one lane, or (K, S): K lanes (interleaved) of S symbols each
    :param freqs: symbols.shape + (A,) integer tables (``quantize``), entries >= 1 summing
        to 2^precision; table [k, i] is the distribution of symbol [k, i]
    :return: uint16 (W,) the message; ``decode`` reads it back (it needs K and the tables)
    """
    n = _check_precision(precision)
    f_all = _check_tables(freqs, n, "encode")
    s, f_all, _ = _as_lanes(symbols, f_all, "encode")
    K, S = s.shape
    starts = np.cumsum(f_all, axis=-1) - f_all                      # c_a (K, S, A)
    f = np.take_along_axis(f_all, s[..., None], -1)[..., 0].astype(np.uint64)   # (K, S)
    c = np.take_along_axis(starts, s[..., None], -1)[..., 0].astype(np.uint64)
    x = np.full(K, _L, dtype=np.uint64)
    chunks = []
    for i in range(S - 1, -1, -1):                                  # a stack: reverse order
        x, words = _push_step(x, f[:, i], c[:, i], n)
        if words.size:
            chunks.append(words)
    # flush the final states: low word then high word, lane by lane
    final = np.stack([x & _WORD_MASK, x >> np.uint64(WORD_BITS)], axis=1).reshape(-1)
    chunks.append(final.astype(np.uint16))
    # reversed, so that the decoder reads forward from index 0
    return np.concatenate(chunks)[::-1].copy()


class RansDecoder:
    """Decodes a message of ``encode`` one position at a time, all K lanes at once, so the
    caller can compute the next tables from the symbols decoded so far (an autoregressive
    model: one network pass per position).

        dec = RansDecoder(words, lanes=K)
        for i in range(S):
            symbols_i = dec.decode(tables_i)        # tables_i (K, A) -> (K,) int64
        dec.finish()                                # every word used, every state back at L

    A wrong table gives other symbols, runs out of words (ValueError) or fails ``finish``.
    """

    def __init__(self, words, lanes=1, precision=PRECISION):
        self.n = _check_precision(precision)
        w = np.asarray(words)
        if w.ndim != 1 or w.dtype != np.uint16:
            raise ValueError(f"RansDecoder: words must be a 1-D uint16 array (from "
                             f"rans.encode), got dtype {w.dtype} shape {w.shape}")
        if isinstance(lanes, bool) or int(lanes) != lanes or lanes < 1:
            raise ValueError(f"RansDecoder: lanes must be a positive int, got {lanes!r}")
        self.K = int(lanes)
        if w.size < 2 * self.K:
            raise ValueError(f"RansDecoder: a message of {self.K} lanes holds at least "
                             f"{2 * self.K} words (the final states), got {w.size}")
        self.words = w.astype(np.uint64)
        head = self.words[:2 * self.K][::-1].reshape(self.K, 2)     # (low, high) per lane
        self.x = head[:, 0] | (head[:, 1] << np.uint64(WORD_BITS))
        self.pos = 2 * self.K

    def decode(self, freqs):
        """The next symbol of every lane from its table freqs (K, A); returns (K,) int64."""
        f_all = _check_tables(freqs, self.n, "RansDecoder.decode")
        if f_all.shape[:-1] != (self.K,):
            raise ValueError(f"RansDecoder.decode: freqs must have shape ({self.K}, A), got "
                             f"{f_all.shape}")
        s, x, need = _pop_step(self.x, f_all, self.n)
        count = int(need.sum())
        if count:
            if self.pos + count > self.words.size:
                raise ValueError("RansDecoder: the message ran out of words (wrong tables, "
                                 "a wrong lane count or a corrupted message)")
            # the encoder pushed these lanes in ascending order; reversed they come last-first
            x = _refill(x, need, self.words[self.pos:self.pos + count][::-1])
            self.pos += count
        self.x = x
        return s

    def finish(self):
        """Check that the message is used up and every lane is back at its initial state;
        anything else means the tables differed from the encoder's (ValueError)."""
        if self.pos != self.words.size or np.any(self.x != _L):
            raise ValueError(f"RansDecoder: decoding did not end where encoding began "
                             f"({self.words.size - self.pos} words left, "
                             f"{int(np.sum(self.x != _L))} of {self.K} lanes not at the "
                             "initial state): the tables differ from the encoder's")


class AnsStack:
    """rANS as a stack of K lanes sharing one word stack: ``push`` and ``pop`` in any order.

    ``encode``/``RansDecoder`` code a message whose symbols are all pushed before any is
    popped. Bits-back coding (Townsend et al. 2019) needs more: it POPS symbols that were
    never pushed, using the bits already on the stack as its random source, and pushes them
    back later. Popping with table q from any state is a valid decode, and pushing the same
    symbol with the same q restores the state and the words exactly, so

        stack.pop(q) then stack.push(s, q)   and   stack.push(s, q) then stack.pop(q)

    are both the identity. A stack starts from a message (``from_message``: its last 2K
    words are the lane states, the rest the word stack) and ends as one (``to_message``).

    push(symbols (K, S), freqs (K, S, A), precision) pushes symbol S-1 first, so that
    pop(freqs (K, S, A), precision) returns them in the order 0..S-1.
    """

    def __init__(self, lanes):
        if isinstance(lanes, bool) or int(lanes) != lanes or lanes < 1:
            raise ValueError(f"AnsStack: lanes must be a positive int, got {lanes!r}")
        self.K = int(lanes)
        self.x = np.full(self.K, _L, dtype=np.uint64)
        self.words = []                     # chunks of uint16 words; the top is the end

    @classmethod
    def from_message(cls, words, lanes):
        """The stack whose ``to_message`` is ``words`` (uint16, at least 2 * lanes)."""
        stack = cls(lanes)
        w = np.asarray(words)
        if w.ndim != 1 or w.dtype != np.uint16 or w.size < 2 * stack.K:
            raise ValueError(f"AnsStack.from_message: words must be a 1-D uint16 array of at "
                             f"least {2 * stack.K} words, got dtype {w.dtype} shape {w.shape}")
        states = w[w.size - 2 * stack.K:].astype(np.uint64).reshape(stack.K, 2)
        stack.x = states[:, 0] | (states[:, 1] << np.uint64(WORD_BITS))
        if np.any(stack.x < _L):
            raise ValueError("AnsStack.from_message: a lane state is below 2^16 (not a "
                             "message of this coder)")
        stack.words = [w[:w.size - 2 * stack.K].copy()]
        return stack

    def to_message(self):
        """The word stack followed by the lane states (low, high word per lane): uint16."""
        states = np.stack([self.x & _WORD_MASK, self.x >> np.uint64(WORD_BITS)], axis=1)
        return np.concatenate(self.words + [states.reshape(-1).astype(np.uint16)])

    def bits(self):
        """The length of ``to_message`` in bits."""
        return WORD_BITS * (sum(int(c.size) for c in self.words) + 2 * self.K)

    def _tables(self, freqs, precision, who, symbols=None):
        n = _check_precision(precision)
        f_all = _check_tables(freqs, n, who)
        if f_all.ndim != 3 or f_all.shape[0] != self.K:
            raise ValueError(f"AnsStack.{who}: freqs must have shape ({self.K}, S, A), got "
                             f"{f_all.shape}")
        if symbols is not None:
            _as_lanes(symbols, f_all, who)
        return n, f_all

    def push(self, symbols, freqs, precision=PRECISION):
        """Push symbols (K, S) with their tables (K, S, A) (symbol S-1 first)."""
        s = np.asarray(symbols)
        n, f_all = self._tables(freqs, precision, "push", s)
        s = s.astype(np.int64)
        starts = np.cumsum(f_all, axis=-1) - f_all
        f = np.take_along_axis(f_all, s[..., None], -1)[..., 0].astype(np.uint64)
        c = np.take_along_axis(starts, s[..., None], -1)[..., 0].astype(np.uint64)
        for i in range(s.shape[1] - 1, -1, -1):
            self.x, words = _push_step(self.x, f[:, i], c[:, i], n)
            if words.size:
                self.words.append(words)

    def pop(self, freqs, precision=PRECISION):
        """Pop S symbols per lane with tables (K, S, A); returns (K, S) int64."""
        n, f_all = self._tables(freqs, precision, "pop")
        out = np.empty(f_all.shape[:2], dtype=np.int64)
        for i in range(f_all.shape[1]):
            out[:, i], x, need = _pop_step(self.x, f_all[:, i], n)
            count = int(need.sum())
            if count:
                self.x = _refill(x, need, self._take(count))
            else:
                self.x = x
        return out

    def _take(self, count):
        """The top ``count`` words, in the order they were pushed."""
        taken = []
        while count:
            if not self.words:
                raise ValueError("AnsStack.pop: the stack ran out of words (bits-back needs "
                                 "initial bits: start from a message of random words)")
            top = self.words[-1]
            k = min(count, top.size)
            taken.append(top[top.size - k:])
            if k == top.size:
                self.words.pop()
            else:
                self.words[-1] = top[:top.size - k]
            count -= k
        return np.concatenate(taken[::-1])


def decode(words, freqs, precision=PRECISION):
    """Decode a whole message whose tables are known in advance: freqs (S, A) for one lane
    or (K, S, A); returns symbols (S,) or (K, S) and checks that decoding ended cleanly."""
    n = _check_precision(precision)
    f_all = _check_tables(freqs, n, "decode")
    if f_all.ndim not in (2, 3):
        raise ValueError(f"rans.decode: freqs must have shape (S, A) or (K, S, A), got "
                         f"{f_all.shape}")
    single = f_all.ndim == 2
    if single:
        f_all = f_all[None]
    K, S, _ = f_all.shape
    dec = RansDecoder(words, lanes=K, precision=n)
    out = np.empty((K, S), dtype=np.int64)
    for i in range(S):
        out[:, i] = dec.decode(f_all[:, i])
    dec.finish()
    return out[0] if single else out


def ideal_bits(symbols, freqs, precision=PRECISION):
    """sum_i -log2 q_i(s_i) with q = freqs / 2^precision: the length an ideal coder would
    reach with these quantised tables (float64)."""
    n = _check_precision(precision)
    f = _check_tables(freqs, n, "ideal_bits")
    s = np.asarray(symbols).astype(np.int64)
    fs = np.take_along_axis(f, s[..., None], -1)[..., 0]
    return float(np.sum(n - np.log2(fs)))


def coded_bits(words):
    """The message's length in bits (16 per word, final states included)."""
    return WORD_BITS * int(np.asarray(words).size)


def excess_bound_bits(num_symbols, lanes, precision=PRECISION):
    """The hard upper bound on coded_bits - ideal_bits (see the module docstring):
    S log2(1 + 2^(n-16)) for the rounding of each step plus 32 bits per lane."""
    n = _check_precision(precision)
    return float(num_symbols * np.log2(1.0 + 2.0 ** (n - 16)) + STATE_BITS * lanes)
