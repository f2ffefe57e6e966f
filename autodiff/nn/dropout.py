"""Dropout (``torch.nn.Dropout``; Srivastava et al. 2014)."""
from .. import functional as F
from ._util import check_input
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1/(1-p)
    ("inverted dropout", so evaluation is the identity). Shape in = shape out.

    ``generator`` (an extension of PyTorch's signature) draws the masks; None uses the
    global generator.
    """

    def __init__(self, p=0.5, inplace=False, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p
        self.inplace = inplace
        self.generator = generator

    def forward(self, input):
        check_input(input, "Dropout")
        if not self.training or self.p == 0.0:
            return input
        return F.dropout(input, self.p, True, generator=self.generator)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
