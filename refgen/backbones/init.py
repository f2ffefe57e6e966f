"""Initialisations shared by the backbones."""
from autodiff import nn

__all__ = ["zero_module_"]


def zero_module_(module):
    """Set every parameter of ``module`` to zero in place; returns it. A residual branch or an
    output layer that starts at zero makes its block the identity (or its output 0) at
    initialisation (Goyal et al. 2017's zero-gamma trick; improved DDPM; Glow's zero init)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module
