"""autodiff.nn: Module, Parameter and layers with PyTorch's names, shapes and default inits.

A PyTorch ``state_dict`` converted to arrays loads into the matching module with
``load_state_dict`` and gives the same outputs (checked in
tests/autodiff/nn/test_layers_crosscheck.py).
"""
from . import init
from .module import Module, Parameter, num_parameters, IncompatibleKeys
from .container import Sequential, ModuleList, ModuleDict
from .linear import Identity, Linear, Flatten, Unflatten
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .normalization import LayerNorm, GroupNorm, BatchNorm1d, BatchNorm2d
from .activation import (ReLU, LeakyReLU, SiLU, GELU, Tanh, Sigmoid, ELU, Softplus, Softmax,
                         LogSoftmax, Mish)
from .embedding import Embedding
from .dropout import Dropout
from .attention import MultiheadAttention

__all__ = [
    "init", "Module", "Parameter", "num_parameters", "IncompatibleKeys",
    "Sequential", "ModuleList", "ModuleDict", "Identity", "Linear", "Flatten", "Unflatten",
    "Conv1d", "Conv2d", "ConvTranspose2d", "LayerNorm", "GroupNorm", "BatchNorm1d",
    "BatchNorm2d", "ReLU", "LeakyReLU", "SiLU", "GELU", "Tanh", "Sigmoid", "ELU", "Softplus",
    "Softmax", "LogSoftmax", "Mish", "Embedding", "Dropout", "MultiheadAttention",
]
