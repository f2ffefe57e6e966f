"""The Transformers against PyTorch: the same weights (through convert_state_dict) give the same
logits, parameter gradients and input gradients in float64 (rtol 1e-10: same formulas, only
rounding and summation order differ).

The GPT-style decoder's reference is written here in PyTorch with explicit attention
arithmetic; the encoder-decoder's is assembled from torch.nn.TransformerEncoderLayer /
TransformerDecoderLayer(norm_first=True, batch_first=True), whose names ours mirror.
"""
import math

import numpy as np  # host-side: random inputs and comparisons in tests
import pytest

import autodiff
from refgen.backbones.convert import convert_state_dict
from refgen.backbones.transformer import TransformerDecoder, TransformerEncoderDecoder
from tests.crosscheck_utils import torch_or_skip, to_torch, assert_close

pytestmark = pytest.mark.crosscheck


def torch_sinusoidal(torch, length, dim):
    """PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(...) (Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    i2 = torch.arange(0, dim, 2, dtype=torch.float64)
    ang = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), i2 / dim)
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(ang), torch.cos(ang)
    return pe


def torch_gpt(torch, V, block, n_layer, n_head, d, positions, tie, bias=True):
    nn, Fn = torch.nn, torch.nn.functional

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(d, 3 * d, bias=bias)
            self.c_proj = nn.Linear(d, d, bias=bias)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.c_attn(x).split(d, dim=2)
            q, k, v = (z.view(b, t, n_head, d // n_head).transpose(1, 2) for z in (q, k, v))
            att = q @ k.transpose(-2, -1) / math.sqrt(d // n_head)
            future = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
            att = torch.softmax(att.masked_fill(future, float("-inf")), dim=-1)
            return self.c_proj((att @ v).transpose(1, 2).reshape(b, t, d))

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(d, 4 * d, bias=bias)
            self.c_proj = nn.Linear(4 * d, d, bias=bias)

        def forward(self, x):
            return self.c_proj(Fn.gelu(self.c_fc(x)))

    class Blk(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(d, bias=bias), Attn()
            self.ln_2, self.mlp = nn.LayerNorm(d, bias=bias), Mlp()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, d)
            if positions == "learned":
                self.wpe = nn.Embedding(block, d)
            self.h = nn.ModuleList([Blk() for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(d, bias=bias)
            self.lm_head = nn.Linear(d, V, bias=False)
            if tie:
                self.lm_head.weight = self.wte.weight

        def forward_embeddings(self, x):
            t = x.shape[1]
            pe = self.wpe(torch.arange(t)) if positions == "learned" else torch_sinusoidal(torch, t, d)
            h = x + pe
            for blk in self.h:
                h = blk(h)
            return self.lm_head(self.ln_f(h))

        def forward(self, tokens):
            return self.forward_embeddings(self.wte(tokens))

    return GPT()


def _load_from_torch(ours, theirs):
    ours.load_state_dict(convert_state_dict(theirs.state_dict(), ours))


def _compare_grads(ours, theirs, what):
    theirs_named = dict(theirs.named_parameters())
    ours_named = dict(ours.named_parameters())
    assert set(ours_named) == set(theirs_named), what
    for name, p in ours_named.items():
        assert_close(p.grad, theirs_named[name].grad, what=f"{what}: grad of {name}")


@pytest.mark.parametrize("positions,tie,bias", [("learned", True, True),
                                                ("sinusoidal", False, True),
                                                ("learned", False, False)])
def test_decoder_matches_torch(positions, tie, bias):
    torch = torch_or_skip()
    V, block, L, H, d = 13, 9, 2, 2, 8
    torch.manual_seed(0)
    theirs = torch_gpt(torch, V, block, L, H, d, positions, tie, bias)
    ours = TransformerDecoder(V, block, n_layer=L, n_head=H, n_embd=d, positions=positions,
                              tie_weights=tie, bias=bias)
    _load_from_torch(ours, theirs)
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, V, size=(3, 7))
    weights = rng.standard_normal((3, 7, V))

    # logits and parameter gradients from tokens
    logits = ours(tokens)
    (logits * autodiff.tensor(weights)).sum().backward()
    t_logits = theirs(torch.from_numpy(tokens))
    (t_logits * torch.from_numpy(weights)).sum().backward()
    assert_close(logits, t_logits, what="decoder logits")
    _compare_grads(ours, theirs, "decoder")

    # input gradients through the embedding entry point
    x = rng.standard_normal((3, 7, d))
    xa = autodiff.tensor(x, requires_grad=True)
    xt = to_torch(x, requires_grad=True)
    (ours.forward_embeddings(xa) * autodiff.tensor(weights)).sum().backward()
    (theirs.forward_embeddings(xt) * torch.from_numpy(weights)).sum().backward()
    assert_close(xa.grad, xt.grad, what="decoder input gradient")


def torch_seq2seq(torch, Vs, Vt, max_len, d, nhead, n_enc, n_dec, ff, activation, positions):
    nn = torch.nn

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed, self.tgt_embed = nn.Embedding(Vs, d), nn.Embedding(Vt, d)
            if positions == "learned":
                self.src_pos, self.tgt_pos = nn.Embedding(max_len, d), nn.Embedding(max_len, d)
            kw = dict(dim_feedforward=ff, dropout=0.0, activation=activation, batch_first=True,
                      norm_first=True)
            self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, nhead, **kw), n_enc,
                                                 norm=nn.LayerNorm(d), enable_nested_tensor=False)
            self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, nhead, **kw), n_dec,
                                                 norm=nn.LayerNorm(d))
            self.lm_head = nn.Linear(d, Vt, bias=False)

        def _pos(self, x, which):
            t = x.shape[1]
            if positions == "learned":
                return x + getattr(self, f"{which}_pos")(torch.arange(t))
            return x + torch_sinusoidal(torch, t, d)

        def forward_embeddings(self, s, t, smask, tmask):
            memory = self.encoder(self._pos(s, "src"), src_key_padding_mask=smask)
            causal = torch.triu(torch.ones(t.shape[1], t.shape[1], dtype=torch.bool), 1)
            h = self.decoder(self._pos(t, "tgt"), memory, tgt_mask=causal,
                             tgt_key_padding_mask=tmask, memory_key_padding_mask=smask)
            return self.lm_head(h)

        def forward(self, src, tgt, smask, tmask):
            return self.forward_embeddings(self.src_embed(src), self.tgt_embed(tgt), smask, tmask)

    return Seq2Seq()


@pytest.mark.parametrize("positions,activation", [("learned", "gelu"), ("sinusoidal", "relu")])
def test_encoder_decoder_matches_torch(positions, activation):
    torch = torch_or_skip()
    Vs, Vt, max_len, d, nhead, ff = 11, 7, 8, 8, 2, 16
    torch.manual_seed(0)
    theirs = torch_seq2seq(torch, Vs, Vt, max_len, d, nhead, 2, 2, ff, activation, positions)
    ours = TransformerEncoderDecoder(Vs, Vt, max_len, d_model=d, nhead=nhead, num_encoder_layers=2,
                                     num_decoder_layers=2, dim_feedforward=ff,
                                     activation=activation, positions=positions)
    _load_from_torch(ours, theirs)
    rng = np.random.default_rng(2)
    src, tgt = rng.integers(0, Vs, size=(2, 6)), rng.integers(0, Vt, size=(2, 5))
    # right padding: sample 0 has 4 real source tokens and 3 real target tokens
    smask = np.array([[False] * 4 + [True] * 2, [False] * 6])
    tmask = np.array([[False] * 3 + [True] * 2, [False] * 5])
    weights = rng.standard_normal((2, 5, Vt))

    logits = ours(src, tgt, smask, tmask)
    (logits * autodiff.tensor(weights)).sum().backward()
    t_logits = theirs(torch.from_numpy(src), torch.from_numpy(tgt), torch.from_numpy(smask),
                      torch.from_numpy(tmask))
    (t_logits * torch.from_numpy(weights)).sum().backward()
    assert_close(logits, t_logits, what="encoder-decoder logits")
    _compare_grads(ours, theirs, "encoder-decoder")

    s, t = rng.standard_normal((2, 6, d)), rng.standard_normal((2, 5, d))
    sa, ta = autodiff.tensor(s, requires_grad=True), autodiff.tensor(t, requires_grad=True)
    st, tt = to_torch(s, True), to_torch(t, True)
    (ours.forward_embeddings(sa, ta, smask, tmask) * autodiff.tensor(weights)).sum().backward()
    (theirs.forward_embeddings(st, tt, torch.from_numpy(smask), torch.from_numpy(tmask))
     * torch.from_numpy(weights)).sum().backward()
    assert_close(sa.grad, st.grad, what="source input gradient")
    assert_close(ta.grad, tt.grad, what="target input gradient")
