"""One-call interop with the PyTorch ecosystem: load its checkpoints into refgen models and
export refgen models back, so a model checked or trained here continues there.

==============================================  ==============================================
``from_hf_gpt2(state_dict_or_path, config)``    Hugging Face GPT-2 -> ``TransformerDecoder``
``to_hf_gpt2_state_dict(model)``                ... and back (with ``hf_gpt2_config(model)``)
``from_diffusers_unet(state_dict_or_path, c)``  diffusers ``UNet2DModel`` -> ``UNet``
``to_diffusers_unet_state_dict(model)``         ... and back (``diffusers_unet_config(model)``)
``from_parametrized_spectral_norm(sd)``         names of ``torch.nn.utils.parametrizations
                                                .spectral_norm`` -> refgen's (and back)
==============================================  ==============================================

Nothing here imports torch, transformers or diffusers: checkpoints are read as state_dicts
(torch tensors by duck typing), ``.safetensors``/``.npz`` files or ``save_pretrained``
folders, and exported as dicts of NumPy arrays. The cross-check tests in tests/refgen/interop/
build small random models in those libraries and compare outputs and gradients in float64.
"""
from refgen.backbones.spectral_norm import (from_parametrized_spectral_norm,
                                            to_parametrized_spectral_norm)

from .diffusers_unet import diffusers_unet_config, from_diffusers_unet, to_diffusers_unet_state_dict
from .hf_gpt2 import from_hf_gpt2, hf_gpt2_config, to_hf_gpt2_state_dict

__all__ = ["from_hf_gpt2", "to_hf_gpt2_state_dict", "hf_gpt2_config", "from_diffusers_unet",
           "to_diffusers_unet_state_dict", "diffusers_unet_config",
           "from_parametrized_spectral_norm", "to_parametrized_spectral_norm"]
