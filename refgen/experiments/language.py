"""Language and code, autoregressively: a character-level Transformer decoder trained on
refgen's own Python source, its bits per character beside gzip's, and an rANS file of the
test text driven by the model (Shannon 1951, "Prediction and entropy of printed English":
a predictor's cross-entropy is a code length; Radford et al. 2019 for the decoder).

The text is every ``refgen/**/*.py`` file of the installed package, in sorted path order,
joined by newlines; the first 90 % of its characters train, the last 10 % test (the source
changes as the project does: the text is saved as ``OUT/text.txt`` and a resumed run reuses
it; ``text_sha256`` in the result names it). The
vocabulary is the set of characters of the whole text plus BOS, a start symbol that never
occurs in it.

The model (``refgen.backbones.transformer.TransformerDecoder``) reads windows of T =
``block_size`` characters, each started by BOS:

    log2 p_theta(w) = sum_{t=0}^{T-1} log2 p_theta(w_t | BOS, w_0, ..., w_{t-1})

Training minimises the mean of -log p over random windows of the training text (the loop's
``fit``; cross-entropy from the logits). The test text is cut into consecutive windows of T
characters; each is predicted from its own start (the context restarts every T characters,
which is what the coder below does too), so

    test bits/char = -sum_w log2 p_theta(w) / (number of characters).

The coder. The windows are spread over K interleaved rANS lanes (``refgen.coding.rans``):
lane k holds windows kG..kG+G-1 and its symbol t G + g is character t of window kG + g.
Encoder and decoder compute the conditionals in the SAME way, one position of every window
per network pass through the key/value cache (the encoder feeding the true characters, the
decoder the ones it has just decoded), so both see bit-identical tables; T passes encode and
T passes decode. (A full teacher-forced pass gives the same numbers only up to float
rounding, which could move a quantised frequency by one and break decoding.)

gzip: zlib level 9 on the test text's UTF-8 bytes, and again with the last 32 KiB of the
training text as a preset dictionary (zlib's ``zdict``: gzip allowed to have "read" some of
the training data). Bits per character = 8 * bytes / characters.
"""
import hashlib
import math
import os
import time
import zlib

import numpy as np  # host-side: text, the coder and gzip work on host arrays

import autodiff
import autodiff.functional as F
from autodiff import backend as B

from ..backbones.transformer import TransformerDecoder
from ..coding import rans

__all__ = ["DESCRIPTION", "BUDGETS", "run", "source_text", "experiment_text", "CharModel",
           "encode_text", "decode_text"]

DESCRIPTION = (
    "A character-level Transformer decoder (refgen.backbones.transformer) trained on "
    "refgen's own Python source (first 90 % of the characters; the last 10 % test). Reports "
    "test bits per character beside gzip's (zlib -9, with and without the training text as "
    "a preset dictionary) and the size of an rANS file of the test text driven by the model "
    "(decoded back exactly), prints samples at two temperatures; figure: the training curve "
    "and the bits per character of each method.")

BUDGETS = {
    # 5 minutes of training; a small model and short windows, so that a loaded 2-core
    # machine still takes ~2000 steps (128-character windows, width 96, batch 32 took 1.3 s
    # a step at load 9: 270 steps, 3.27 bits/char)
    "default": {"minutes": 5.0, "block_size": 64, "n_layer": 2, "n_head": 4, "n_embd": 64,
                "batch_size": 16, "lr": 3e-3, "lanes": 8, "precision": 14,
                "test_chars": None, "sample_chars": 300},
    "tiny": {"steps": 20, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16,
             "batch_size": 8, "lr": 3e-3, "lanes": 4, "precision": 14,
             "test_chars": 16 * 12, "sample_chars": 40},
}

BOS = "\x00"   # the start symbol: never in Python source (checked)


# ---------------------------------------------------------------- the text
def source_text():
    """Every refgen/**/*.py of the installed package, sorted by path, joined by newlines."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # .../refgen
    paths = []
    for folder, _, files in os.walk(root):
        paths += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    parts = []
    for path in sorted(paths, key=lambda p: os.path.relpath(p, root)):
        with open(path, encoding="utf-8") as f:
            parts.append(f.read())
    text = "\n".join(parts)
    if BOS in text:
        raise ValueError("language: the source text contains the BOS character \\x00")
    return text


class Vocabulary:
    """Characters <-> ids; id 0 is BOS, then the text's characters in sorted order."""

    def __init__(self, text):
        self.chars = [BOS] + sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        missing = sorted(set(text) - set(self.index))
        if missing:
            raise ValueError(f"language: characters {missing[:5]!r} are not in the vocabulary")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def windows(ids, block_size, stride=None):
    """Consecutive windows (N, T) of an id array (the tail shorter than T dropped)."""
    stride = block_size if stride is None else stride
    starts = np.arange(0, ids.size - block_size + 1, stride)
    return ids[starts[:, None] + np.arange(block_size)[None, :]]


# ---------------------------------------------------------------- the model as a Trainable
class CharModel:
    """A Trainable (``refgen.train.loop``) around ``TransformerDecoder``: windows (B, T) of
    character ids are predicted from BOS + the window shifted right."""

    family = "charlm"

    def __init__(self, config):
        self.config = dict(config)
        c = self.config
        self.net = TransformerDecoder(c["vocab_size"], c["block_size"], n_layer=c["n_layer"],
                                      n_head=c["n_head"], n_embd=c["n_embd"],
                                      generator=autodiff.Generator(c.get("seed", 0)))

    def modules(self):
        return {"model": self.net}

    def parameter_groups(self):
        return {"model": list(self.net.parameters())}

    def _inputs(self, w):
        """BOS followed by the window without its last character: (B, T)."""
        bos = B.xp.zeros((w.shape[0], 1), dtype=B.xp.int64)
        return autodiff.Tensor(B.xp.concatenate([bos, w[:, :-1]], axis=1))

    def nll_nats(self, w):
        """-log p_theta(w_t | BOS, w_<t) (B, T) in nats, from one teacher-forced pass."""
        w = B.xp.asarray(w).astype(B.xp.int64)
        logits = self.net(self._inputs(w))                                   # (B, T, V)
        b, t, v = logits.shape
        return F.cross_entropy(logits.reshape(b * t, v), autodiff.Tensor(w.reshape(-1)),
                               reduction="none").reshape(b, t)

    def training_step(self, batch, step, ctx):
        w, _ = batch
        loss = self.nll_nats(w).mean()                                       # nats per char
        ctx.optimize("model", loss)
        value = float(loss.item())
        return {"loss": value, "bpc": value / math.log(2.0)}

    def test_bits(self, w, batch=256):
        """-sum log2 p_theta over windows w (N, T), evaluated in batches (no gradients)."""
        total = 0.0
        self.net.eval()
        with autodiff.no_grad():
            for i in range(0, w.shape[0], batch):
                total += float(self.nll_nats(B.to_backend(w[i:i + batch])).sum().item())
        self.net.train()
        return total / math.log(2.0)


def _train(ctx, vocab, train_ids):
    """Train (or resume, or load) the character model into OUT/models/charlm."""
    from ..data.dataset import ArrayDataset
    from ..train import TrainConfig, fit
    from ..train.checkpoint import load_checkpoint, restore_modules
    s = ctx.settings
    config = {"vocab_size": len(vocab), "block_size": s["block_size"], "n_layer": s["n_layer"],
              "n_head": s["n_head"], "n_embd": s["n_embd"], "seed": ctx.seed}
    model = CharModel(config)
    run_dir = ctx.path("models", "charlm", "")
    checkpoint, done = os.path.join(run_dir, "checkpoint.npz"), os.path.join(run_dir, "done")
    if os.path.exists(done) and os.path.exists(checkpoint) and not ctx.retrain:
        ctx.log(f"charlm: trained before, loading {checkpoint}")
        restore_modules(model, load_checkpoint(checkpoint))
        return model
    # overlapping windows (stride T/2); batches of them, shuffled by the loop
    data = ArrayDataset(B.to_backend(windows(train_ids, s["block_size"],
                                             max(1, s["block_size"] // 2))), name="source")
    steps = s.get("steps")
    tc = TrainConfig(steps=steps if steps is not None else 10 ** 9, minutes=s.get("minutes"),
                     batch_size=s["batch_size"], lr=s["lr"], grad_clip=1.0,
                     log_every=max(1, min(50, steps or 50)), checkpoint_every=500,
                     seed=ctx.seed, out_dir=run_dir, ema_decay=None)
    resume = os.path.exists(checkpoint) and not ctx.retrain
    ctx.log(f"charlm: training on {len(data)} windows of {s['block_size']} characters "
            f"({s.get('minutes')} min)" if steps is None else
            f"charlm: training {steps} steps" + (", resuming" if resume else ""))
    result = fit(model, data, tc, resume=resume, progress=False)
    with open(done, "w", encoding="utf-8") as f:
        f.write(f"{result.step} steps, {result.elapsed:.1f} s\n")
    return model


# ---------------------------------------------------------------- coding with the model
def _step_tables(model, cache, inputs, precision):
    """One cached pass: inputs (N, 1) ids -> quantised tables (N, V) of the next character."""
    with autodiff.no_grad():
        logits = model.net(autodiff.Tensor(inputs), cache=cache)             # (N, 1, V)
    z = B.to_numpy(logits.data[:, -1, :]).astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)                                    # stable softmax
    p = np.exp(z)
    return rans.quantize(p / p.sum(axis=-1, keepdims=True), precision)


def _layout(n, lanes):
    if isinstance(lanes, bool) or int(lanes) != lanes or lanes < 1 or n % int(lanes):
        raise ValueError(f"language: lanes must be a positive int dividing the number of "
                         f"windows {n}, got {lanes!r}")
    return int(lanes), n // int(lanes)


def encode_text(model, w, lanes, precision=rans.PRECISION):
    """Code windows w (N, T) of ids; returns (words, ideal bits with the quantised tables).
    T cached passes, each feeding the true previous character of every window."""
    n, T = w.shape
    K, G = _layout(n, lanes)
    model.net.eval()
    cache = model.net.new_cache()
    prev = np.zeros((n, 1), dtype=np.int64)                                  # BOS
    tables = []
    for t in range(T):
        tables.append(_step_tables(model, cache, B.to_backend(prev), precision))
        prev = w[:, t:t + 1]
    tab = np.stack(tables, axis=1)                                           # (N, T, V)
    V = tab.shape[-1]
    # (K, G, T) -> (K, T, G) -> (K, T G): symbol t G + g of lane k
    sym = w.reshape(K, G, T).transpose(0, 2, 1).reshape(K, T * G)
    tab = tab.reshape(K, G, T, V).transpose(0, 2, 1, 3).reshape(K, T * G, V)
    return rans.encode(sym, tab, precision), rans.ideal_bits(sym, tab, precision)


def decode_text(model, words, n, block_size, lanes, precision=rans.PRECISION):
    """Decode n windows (n, block_size) of ids: T cached passes on the decoded characters."""
    K, G = _layout(n, lanes)
    model.net.eval()
    cache = model.net.new_cache()
    dec = rans.RansDecoder(words, lanes=K, precision=precision)
    out = np.zeros((n, block_size), dtype=np.int64)
    prev = np.zeros((n, 1), dtype=np.int64)
    for t in range(block_size):
        tab = _step_tables(model, cache, B.to_backend(prev), precision).reshape(K, G, -1)
        for g in range(G):
            out[g::G, t] = dec.decode(tab[:, g])          # windows kG + g, k = 0..K-1
        prev = out[:, t:t + 1]
    dec.finish()
    return out


# ---------------------------------------------------------------- the experiment
def _gzip_bits(test_bytes, dictionary=None):
    if dictionary is None:
        return 8 * len(zlib.compress(test_bytes, 9))
    c = zlib.compressobj(level=9, zdict=dictionary)
    return 8 * len(c.compress(test_bytes) + c.flush())


def _figure(ctx, log_path, rows):
    import json

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps, bpc = [], []
    if os.path.exists(log_path):
        with open(log_path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if "bpc" in rec and "step" in rec:
                    steps.append(rec["step"])
                    bpc.append(rec["bpc"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(steps, bpc, lw=1)
    a.axhline(rows[0][1], color="k", ls="--", lw=0.8, label="test (model)")
    a.set_xlabel("step")
    a.set_ylabel("training bits per character")
    a.set_title("character Transformer on refgen's source", fontsize=9)
    a.legend(fontsize=8)
    names, values = zip(*rows)
    bars = b.barh(range(len(rows)), values,
                  color=["#1f77b4", "#1f77b4"] + ["#7f7f7f"] * (len(rows) - 2))
    for bar, v in zip(bars, values):
        b.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v:.3f}", va="center",
               fontsize=8)
    b.set_yticks(range(len(rows)), names, fontsize=8)
    b.invert_yaxis()
    b.set_xlim(0, max(values) * 1.25)
    b.set_xlabel("bits per character on the test text (lower is better)")
    fig.tight_layout()
    path = ctx.figure_path("language.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return ctx.publish(path)


def experiment_text(ctx):
    """The text of this experiment folder: ``OUT/text.txt`` when an earlier (killed or
    finished) run wrote it, so that a resumed run codes the text its model was trained on
    while the source goes on changing; else ``source_text()``, saved there."""
    path = ctx.path("text.txt")
    if os.path.exists(path) and not ctx.retrain:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    text = source_text()
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return text


def run(ctx):
    s = ctx.settings
    text = experiment_text(ctx)
    cut = int(0.9 * len(text))
    train_text, test_text = text[:cut], text[cut:]
    vocab = Vocabulary(text)
    T, lanes, precision = int(s["block_size"]), int(s["lanes"]), int(s["precision"])
    test_ids = vocab.encode(test_text)
    w = windows(test_ids, T)
    n = (w.shape[0] if s.get("test_chars") is None else int(s["test_chars"]) // T)
    w = w[:n - n % lanes]                                 # a whole number of windows per lane
    coded_text = vocab.decode(w.reshape(-1))
    chars = w.size
    ctx.log(f"text: {len(text)} characters of refgen/**/*.py ({len(vocab) - 1} distinct); "
            f"train {len(train_text)}, test {len(test_text)}; coding the first {chars} test "
            f"characters ({w.shape[0]} windows of {T}) in {lanes} lanes")
    model = _train(ctx, vocab, vocab.encode(train_text))
    model_bits = model.test_bits(w)
    t0 = time.time()
    words, ideal = encode_text(model, w, lanes, precision)
    t_enc = time.time() - t0
    t0 = time.time()
    back = decode_text(model, words, w.shape[0], T, lanes, precision)
    t_dec = time.time() - t0
    exact = bool(np.array_equal(back, w)) and vocab.decode(back.reshape(-1)) == coded_text
    if not exact:
        raise AssertionError("language: the decoded text differs from the original")
    file_bits = rans.coded_bits(words)
    raw = coded_text.encode("utf-8")
    gz = _gzip_bits(raw)
    gz_dict = _gzip_bits(raw, train_text.encode("utf-8")[-32768:])
    samples = {}
    gen = autodiff.Generator(ctx.seed)
    for temperature in (0.5, 1.0):
        prompt = autodiff.Tensor(B.xp.zeros((1, 1), dtype=B.xp.int64))
        ids = model.net.generate(prompt, int(s["sample_chars"]), temperature=temperature,
                                 generator=gen)
        samples[str(temperature)] = vocab.decode(B.to_numpy(ids.data)[0, 1:])
    numbers = {
        "text_chars": len(text), "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "vocab_size": len(vocab), "train_chars": len(train_text), "test_chars": len(test_text),
        "coded_chars": chars, "block_size": T, "lanes": lanes, "precision_bits": precision,
        "parameters": sum(int(p.numel()) for p in model.net.parameters()),
        "model_bpc": model_bits / chars, "ideal_quantised_bpc": ideal / chars,
        "file_bpc": file_bits / chars, "file_bytes": file_bits // 8,
        "ratio_file_to_model": file_bits / model_bits, "round_trip_exact": exact,
        "gzip_bpc": gz / chars, "gzip_with_train_dictionary_bpc": gz_dict / chars,
        "encode_seconds": round(t_enc, 2), "decode_seconds": round(t_dec, 2),
        "samples": samples,
    }
    ctx.log(f"test bits/char: model {numbers['model_bpc']:.4f}, quantised ideal "
            f"{numbers['ideal_quantised_bpc']:.4f}, rANS file {numbers['file_bpc']:.4f} "
            f"({file_bits // 8} bytes; file/model {numbers['ratio_file_to_model']:.5f}), "
            f"gzip -9 {numbers['gzip_bpc']:.4f}, gzip -9 with a 32 KiB training dictionary "
            f"{numbers['gzip_with_train_dictionary_bpc']:.4f}")
    ctx.log(f"round trip exact: {exact}; encode {t_enc:.1f} s, decode {t_dec:.1f} s")
    for temperature, sample in samples.items():
        ctx.log(f"sample at temperature {temperature}:\n{sample}\n")
    rows = [("Transformer, -log2 p (model)", numbers["model_bpc"]),
            ("Transformer + rANS (file)", numbers["file_bpc"]),
            ("gzip -9", numbers["gzip_bpc"]),
            ("gzip -9, 32 KiB train dictionary", numbers["gzip_with_train_dictionary_bpc"])]
    _figure(ctx, os.path.join(ctx.path("models", "charlm", ""), "log.jsonl"), rows)
    return numbers
