"""Two thin adapters, one for refgen's ``autodiff`` and one for PyTorch, with one interface.

The models in ``benchmarks/models.py`` are written once against this interface
(``fw.lib``, ``fw.nn``, ``fw.F``), so the refgen and PyTorch models have the same
structure and the same parameter names by construction, and a PyTorch state_dict maps
1:1 onto the refgen model. Each adapter imports its library lazily: a memory
measurement of refgen runs in a process that never imports torch.
"""
import numpy as np  # host-side: benchmark data and weights travel between the two libraries as NumPy arrays


class Torch:
    name = "torch"

    def __init__(self, threads=2):
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(threads)
        self.lib, self.nn, self.F, self.optim = torch, torch.nn, F, torch.optim
        self.float32, self.float64 = torch.float32, torch.float64

    def dtype(self, name):
        return {"float32": self.float32, "float64": self.float64}[name]

    def manual_seed(self, seed):
        self.lib.manual_seed(seed)

    def tensor(self, array, requires_grad=False):
        t = self.lib.from_numpy(np.ascontiguousarray(array))
        return t.requires_grad_(requires_grad) if requires_grad else t

    def to_numpy(self, t):
        return t.detach().cpu().numpy()

    def build(self, make_model, dtype):
        """Instantiate a model (PyTorch's own initialisation) in ``dtype``."""
        return make_model(self).to(self.dtype(dtype))

    def state_arrays(self, model):
        return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}

    def load_arrays(self, model, arrays):
        model.load_state_dict({k: self.lib.from_numpy(v.copy()) for k, v in arrays.items()})

    def version(self):
        return self.lib.__version__


class Refgen:
    name = "refgen"

    def __init__(self, threads=2):
        import autodiff
        self.lib = autodiff
        self.float32, self.float64 = autodiff.float32, autodiff.float64

    # nn, functional and optim are imported on first use: workload (a) needs only the core.
    @property
    def nn(self):
        import autodiff.nn
        return autodiff.nn

    @property
    def F(self):
        import autodiff.functional
        return autodiff.functional

    @property
    def optim(self):
        import autodiff.optim
        return autodiff.optim

    def dtype(self, name):
        return {"float32": self.float32, "float64": self.float64}[name]

    def manual_seed(self, seed):
        self.lib.manual_seed(seed)

    def tensor(self, array, requires_grad=False):
        return self.lib.tensor(np.ascontiguousarray(array), requires_grad=requires_grad)

    def to_numpy(self, t):
        return t.detach().numpy()

    def build(self, make_model, dtype):
        """Instantiate a model with parameters of ``dtype`` (the default dtype while it is built)."""
        prev = self.lib.get_default_dtype()
        self.lib.set_default_dtype(self.dtype(dtype))
        try:
            return make_model(self)
        finally:
            self.lib.set_default_dtype(prev)

    def state_arrays(self, model):
        return {k: np.array(v.numpy()) for k, v in model.state_dict().items()}

    def load_arrays(self, model, arrays):
        model.load_state_dict({k: self.lib.tensor(v.copy()) for k, v in arrays.items()})

    def version(self):
        return self.lib.__version__


def get(name, threads=2):
    return {"torch": Torch, "refgen": Refgen}[name](threads)
