"""refgen's TransformerDecoder against Hugging Face's GPT2LMHeadModel, both ways, in float64.

from_hf_gpt2: a small random GPT2LMHeadModel (every parameter redrawn, so no zero or unit
init hides a term) -> refgen; to_hf_gpt2_state_dict: a random refgen decoder -> a new
GPT2LMHeadModel. In both directions logits, every parameter gradient and the gradient with
respect to the input embeddings agree to rtol 1e-10 (same formulas; rounding and summation
order differ). Parameter gradients are compared through the converter itself: the map from
HF's weights to ours is linear (renames and transposes), so converting HF's gradients must
give ours.
"""
import numpy as np  # host-side: test data and comparisons
import pytest

import autodiff
from refgen.backbones import TransformerDecoder
from refgen.interop import from_hf_gpt2, hf_gpt2_config, to_hf_gpt2_state_dict
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck

CONFIGS = {
    "tied_gelu_new": dict(vocab_size=13, n_positions=9, n_embd=8, n_layer=2, n_head=2),
    "untied_exact_gelu_inner": dict(vocab_size=11, n_positions=7, n_embd=8, n_layer=1, n_head=4,
                                    n_inner=12, activation_function="gelu",
                                    layer_norm_epsilon=1e-3, tie_word_embeddings=False),
}


def _transformers():
    torch = torch_or_skip()
    transformers = pytest.importorskip("transformers")
    return torch, transformers


def _hf_model(transformers, torch, cfg, seed=0):
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        **cfg, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0))
    model = model.double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype) + 0.05)
    return model


def _compare(torch, ours, theirs, what):
    """Logits, parameter gradients (through from_hf_gpt2) and input-embedding gradients."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, ours.vocab_size, size=(3, ours.block_size - 1))
    cot = rng.standard_normal((3, tokens.shape[1], ours.vocab_size))
    logits = ours(tokens)
    (logits * autodiff.tensor(cot)).sum().backward()
    t_logits = theirs(input_ids=torch.from_numpy(tokens)).logits
    (t_logits * torch.from_numpy(cot)).sum().backward()
    assert_close(logits, t_logits, what=f"{what}: logits")

    grads = from_hf_gpt2({k: p.grad for k, p in theirs.named_parameters()}, theirs.config)
    for name, p in ours.named_parameters():
        assert_close(p.grad, grads.state_dict()[name], what=f"{what}: grad of {name}")

    emb = rng.standard_normal((2, 5, ours.n_embd))
    xa, xt = autodiff.tensor(emb, requires_grad=True), to_torch(emb, requires_grad=True)
    cot = rng.standard_normal((2, 5, ours.vocab_size))
    (ours.forward_embeddings(xa) * autodiff.tensor(cot)).sum().backward()
    (theirs(inputs_embeds=xt).logits * torch.from_numpy(cot)).sum().backward()
    assert_close(xa.grad, xt.grad, what=f"{what}: d logits / d input embeddings")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_from_hf_gpt2_matches(name):
    torch, transformers = _transformers()
    theirs = _hf_model(transformers, torch, CONFIGS[name])
    ours = from_hf_gpt2(theirs.state_dict(), theirs.config).eval()
    _compare(torch, ours, theirs, f"from_hf_gpt2[{name}]")


@pytest.mark.parametrize("tie,approximate", [(True, "tanh"), (False, "none")])
def test_to_hf_gpt2_matches(tie, approximate):
    torch, transformers = _transformers()
    ours = TransformerDecoder(10, 6, n_layer=2, n_head=2, n_embd=8, tie_weights=tie,
                              gelu_approximate=approximate, generator=autodiff.Generator(3))
    rng = np.random.default_rng(4)
    for p in ours.parameters():       # away from GPT-2's init: zero biases hide nothing
        p.data[...] = 0.3 * rng.standard_normal(p.shape) + 0.05
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        **hf_gpt2_config(ours), bos_token_id=0, eos_token_id=0)).double().eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in to_hf_gpt2_state_dict(ours).items()},
                           strict=True)
    _compare(torch, ours.eval(), theirs, f"to_hf_gpt2[tie={tie}]")


def test_save_pretrained_folder_loads(tmp_path):
    """A folder written by save_pretrained (model.safetensors + config.json) in one call."""
    torch, transformers = _transformers()
    theirs = _hf_model(transformers, torch, CONFIGS["tied_gelu_new"], seed=5)
    theirs.save_pretrained(tmp_path)
    ours = from_hf_gpt2(tmp_path).eval()
    tokens = np.random.default_rng(6).integers(0, 13, size=(2, 8))
    with torch.no_grad():
        ref = theirs(input_ids=torch.from_numpy(tokens)).logits
    assert_close(ours(tokens), ref, what="from a save_pretrained folder")
