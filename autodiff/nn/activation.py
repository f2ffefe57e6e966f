"""Activation modules: thin wrappers over ``autodiff.functional`` with PyTorch's names.

Every module here is elementwise (shape in = shape out) except Softmax/LogSoftmax, which
normalise along ``dim`` (shape in = shape out too). The subgradients at kinks are those of
the functional they call (relu'(0) = 0, as PyTorch).
"""
from .. import functional as F
from ._util import check_input
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "SiLU", "GELU", "Tanh", "Sigmoid", "ELU", "Softplus",
           "Softmax", "LogSoftmax", "Mish"]


class ReLU(Module):
    """max(0, x), elementwise. ``inplace`` is accepted for PyTorch compatibility and ignored
    (the engine never overwrites an array a backward rule may need)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        check_input(input, "ReLU")
        return F.relu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x, elementwise; derivative negative_slope at 0
    (PyTorch's choice)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        check_input(input, "LeakyReLU")
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class SiLU(Module):
    """x * sigmoid(x) (Elfwing et al. 2018; "swish"), elementwise."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        check_input(input, "SiLU")
        return F.silu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Mish(Module):
    """x * tanh(softplus(x)) (Misra 2019), elementwise."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        check_input(input, "Mish")
        return input * F.softplus(input).tanh()


class GELU(Module):
    """x * Phi(x) (Hendrycks & Gimpel 2016); ``approximate='tanh'`` uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        check_input(input, "GELU")
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, input):
        check_input(input, "Tanh")
        return input.tanh()


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise (stable for large |x|)."""

    def forward(self, input):
        check_input(input, "Sigmoid")
        return input.sigmoid()


class ELU(Module):
    """x if x > 0 else alpha (exp(x) - 1) (Clevert et al. 2016), elementwise; derivative
    alpha at 0 (PyTorch's)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        check_input(input, "ELU")
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    """(1/beta) log(1 + exp(beta x)), reverting to x where beta x > threshold (PyTorch's rule)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        check_input(input, "Softplus")
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


def _softmax_dim(input, dim, name):
    if dim is None:
        # PyTorch's legacy implicit choice (it warns): dim 0 for 0-, 1- and 3-d inputs, else 1.
        dim = 0 if input.ndim in (0, 1, 3) else 1
    if not -max(input.ndim, 1) <= dim < max(input.ndim, 1):
        raise IndexError(f"{name}(dim={dim}): dimension out of range for input of shape "
                         f"{tuple(input.shape)}")
    return dim


class Softmax(Module):
    """exp(x_i) / sum_j exp(x_j) along ``dim`` (computed with the max subtracted)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        check_input(input, "Softmax")
        return F.softmax(input, _softmax_dim(input, self.dim, "Softmax"))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """x_i - logsumexp_j(x_j) along ``dim``."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        check_input(input, "LogSoftmax")
        return F.log_softmax(input, _softmax_dim(input, self.dim, "LogSoftmax"))

    def extra_repr(self):
        return f"dim={self.dim}"
