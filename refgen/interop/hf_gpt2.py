"""Hugging Face GPT-2 <-> refgen's ``TransformerDecoder``, in one call each way.

GPT-2 (Radford et al. 2019) and ``refgen.backbones.TransformerDecoder`` compute the same
function: h_0 = wte[x] + wpe[0..T-1]; per block h += Attn_causal(LN_1(h)), h += MLP(LN_2(h));
logits = LN_f(h) lm_head^T. The parameter names are GPT-2's, so the surgery is small:

* ``GPT2LMHeadModel`` prefixes the body with ``transformer.`` (``GPT2Model`` and the
  original OpenAI checkpoints do not): the prefix is dropped / added.
* GPT-2's projections are ``Conv1D`` layers, y = x W + b with W stored (in, out); a
  ``Linear`` stores (out, in): ``c_attn``, ``c_proj`` and ``c_fc`` weights are transposed.
* ``h.{i}.attn.bias`` and ``h.{i}.attn.masked_bias`` in older checkpoints are the causal mask
  as buffers, not weights: ignored.
* With tied embeddings (``tie_word_embeddings``, GPT-2's default) ``lm_head.weight`` is
  ``wte.weight``; a checkpoint may omit it.

Config keys read (transformers' ``GPT2Config``): vocab_size, n_positions, n_embd, n_layer,
n_head, n_inner (None: 4 n_embd), activation_function ("gelu_new" / "gelu_pytorch_tanh": the
tanh approximation; "gelu": exact), layer_norm_epsilon, resid/embd/attn_pdrop,
tie_word_embeddings. Variants refgen's model does not have (scale_attn_weights=False,
scale_attn_by_inverse_layer_idx, cross-attention) are refused by name.

    model = from_hf_gpt2("path/to/gpt2-folder")          # model.safetensors + config.json
    model = from_hf_gpt2(hf_model.state_dict(), hf_model.config)
    hf_model.load_state_dict({k: torch.from_numpy(v) for k, v in
                              to_hf_gpt2_state_dict(model).items()})
"""
from collections import OrderedDict

from refgen.backbones.convert import convert_state_dict
from refgen.backbones.transformer import TransformerDecoder

from ._common import host_state_dict, read_config, read_weights, require

__all__ = ["from_hf_gpt2", "to_hf_gpt2_state_dict", "hf_gpt2_config"]

_WHERE_IN, _WHERE_OUT = "from_hf_gpt2", "to_hf_gpt2_state_dict"
_CONV1D = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
_MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")
_GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
_PREFIX = "transformer."


def _model_kwargs(cfg, dropout):
    where = _WHERE_IN
    act = require(cfg, "activation_function", tuple(_GELU), where, "gelu_new")
    require(cfg, "scale_attn_weights", (True,), where, True)
    require(cfg, "scale_attn_by_inverse_layer_idx", (False,), where, False)
    require(cfg, "add_cross_attention", (False,), where, False)
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"{where}: config model_type={cfg['model_type']!r}, expected 'gpt2'")
    missing = [k for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head") if k not in cfg]
    if missing:
        raise ValueError(f"{where}: config lacks {', '.join(missing)}")
    d = int(cfg["n_embd"])
    inner = cfg.get("n_inner") or 4 * d
    if dropout is None:
        rates = {k: float(cfg.get(k, 0.1)) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
        if len(set(rates.values())) != 1:
            raise ValueError(f"{where}: refgen's decoder has one dropout rate, the config has "
                             f"{rates}; pass dropout=... explicitly")
        dropout = next(iter(rates.values()))
    return dict(vocab_size=int(cfg["vocab_size"]), block_size=int(cfg["n_positions"]),
                n_layer=int(cfg["n_layer"]), n_head=int(cfg["n_head"]), n_embd=d,
                mlp_ratio=inner / d, dropout=dropout, bias=True, positions="learned",
                tie_weights=bool(cfg.get("tie_word_embeddings", True)),
                gelu_approximate=_GELU[act],
                layer_norm_eps=float(cfg.get("layer_norm_epsilon", 1e-5)))


def from_hf_gpt2(state_dict_or_path, config=None, dropout=None):
    """Build a ``TransformerDecoder`` holding a Hugging Face GPT-2 checkpoint's weights.

    :param state_dict_or_path: the state_dict of a ``GPT2LMHeadModel`` or ``GPT2Model``
        (torch tensors or arrays), a ``.safetensors``/``.npz`` file of one, or a folder written
        by ``save_pretrained`` (``model.safetensors`` and ``config.json``).
    :param config: a ``GPT2Config``, its dict, or a path to config.json; None reads the folder's.
    :param dropout: overrides the config's dropout rate (which must otherwise be one rate).
    :return: the model in the default dtype, in training mode (call ``.eval()`` to compare).
    """
    weights, folder = read_weights(state_dict_or_path, ("model.safetensors",), _WHERE_IN)
    cfg = read_config(config, _WHERE_IN, folder)
    model = TransformerDecoder(**_model_kwargs(cfg, dropout))
    ours = OrderedDict()
    for name, value in weights.items():
        if name.startswith(_PREFIX):
            name = name[len(_PREFIX):]
        if name.endswith(_MASK_BUFFERS):
            continue                                   # the causal mask, kept as a buffer
        if name.endswith(_CONV1D):
            value = value.T                            # Conv1D (in, out) -> Linear (out, in)
        ours[name] = value
    if model.tie_weights:
        if "lm_head.weight" in ours and "wte.weight" in ours and \
                (ours["lm_head.weight"] != ours["wte.weight"]).any():
            raise ValueError(f"{_WHERE_IN}: the config ties the embeddings "
                             f"(tie_word_embeddings=True) but lm_head.weight differs from "
                             f"wte.weight")
        ours.setdefault("lm_head.weight", ours.get("wte.weight"))
    model.load_state_dict(convert_state_dict(ours, target_module=model))
    return model


def _check_exportable(model):
    if not isinstance(model, TransformerDecoder):
        raise TypeError(f"{_WHERE_OUT}: expected a TransformerDecoder, got {type(model).__name__}")
    if model.positions != "learned":
        raise ValueError(f"{_WHERE_OUT}: GPT-2 has learned positions; the model has "
                         f"positions={model.positions!r}")
    if not model.bias:
        raise ValueError(f"{_WHERE_OUT}: GPT-2 has biases in every Linear and LayerNorm; the "
                         f"model has bias=False")


def hf_gpt2_config(model):
    """The ``GPT2Config`` keyword arguments of an equivalent Hugging Face model (a dict)."""
    _check_exportable(model)
    inner = int(model.mlp_ratio * model.n_embd)
    return dict(vocab_size=model.vocab_size, n_positions=model.block_size, n_embd=model.n_embd,
                n_layer=model.n_layer, n_head=model.n_head,
                n_inner=None if inner == 4 * model.n_embd else inner,
                activation_function="gelu_new" if model.gelu_approximate == "tanh" else "gelu",
                layer_norm_epsilon=model.layer_norm_eps, resid_pdrop=model.drop.p,
                embd_pdrop=model.drop.p, attn_pdrop=model.drop.p,
                tie_word_embeddings=bool(model.tie_weights))


def to_hf_gpt2_state_dict(model):
    """The weights of a ``TransformerDecoder`` under ``GPT2LMHeadModel``'s names: an ordered
    dict name -> host NumPy array (``torch.from_numpy`` each to load them). With
    ``hf_gpt2_config(model)`` it rebuilds the model in ``transformers``."""
    _check_exportable(model)
    out = OrderedDict()
    for name, value in host_state_dict(model).items():
        if name.endswith(_CONV1D):
            value = value.T.copy()                     # Linear (out, in) -> Conv1D (in, out)
        out[name if name == "lm_head.weight" else _PREFIX + name] = value
    return out
