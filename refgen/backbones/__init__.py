"""Backbone networks shared by the model families.

========================  =====================================================
module                    what it holds
========================  =====================================================
``mlp``                   MLP (depth, width, activation, residual, conditioning)
``resnet``                pre-activation residual blocks, ResNet, DCGAN G and D
``spectral_norm``         spectral normalisation by power iteration (Miyato 2018)
``coupling``              zero-initialised conditioners for flow coupling layers
``embeddings``            sinusoidal time and position embeddings
``unet``                  the DDPM / improved-DDPM U-Net
``transformer``           GPT-style decoder with a KV cache; encoder-decoder
``classifier``            the CNN digit classifier (weights: refgen.metrics.pretrained)
``convert``               PyTorch / .npz / safetensors state_dicts -> refgen
``summary``               parameter-count tables
========================  =====================================================
"""
from .mlp import MLP, make_activation
from .resnet import (PreActResBlock, ResNet, ResNetGenerator, ResNetCritic, DCGANGenerator,
                     DCGANDiscriminator, dcgan_init_)
from .spectral_norm import spectral_norm, remove_spectral_norm
from .coupling import CouplingMLP, CouplingResNet
from .embeddings import timestep_embedding, sinusoidal_positions, SinusoidalEmbedding
from .unet import UNet, ResBlock, AttentionBlock, Downsample, Upsample, EmbedSequential
from .transformer import TransformerDecoder, TransformerEncoderDecoder, KVCache
from .convert import convert_state_dict, read_safetensors, StateDictMismatch
from .summary import summary, count_parameters

__all__ = [
    "MLP", "make_activation", "PreActResBlock", "ResNet", "ResNetGenerator", "ResNetCritic",
    "DCGANGenerator", "DCGANDiscriminator", "dcgan_init_", "spectral_norm",
    "remove_spectral_norm", "CouplingMLP", "CouplingResNet", "timestep_embedding",
    "sinusoidal_positions", "SinusoidalEmbedding", "UNet", "ResBlock", "AttentionBlock",
    "Downsample", "Upsample", "EmbedSequential", "TransformerDecoder",
    "TransformerEncoderDecoder", "KVCache", "convert_state_dict", "read_safetensors",
    "StateDictMismatch", "summary", "count_parameters",
]
