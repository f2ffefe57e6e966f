"""refgen: reference implementations of generative models on the ``autodiff`` engine.

Subpackages: ``refgen.data`` (toy densities, digits, IDX files), ``refgen.distributions``,
``refgen.train`` (one training loop for every family), ``refgen.backbones`` (MLP, ResNet,
U-Net, Transformers, coupling networks), ``refgen.conditioning``, ``refgen.families`` (the
seven families behind one interface, ``refgen.families.base``), and the ``refgen`` command
(``refgen.cli``).

``refgen.load(checkpoint_path)`` returns a trained model (EMA weights by default), ready for
``sample``, ``log_prob``, ``bits_per_dim`` and the rest of the family interface.
"""

__version__ = "0.1.0"
__all__ = ["load"]


def load(checkpoint_path, ema=True):
    """A trained model from its checkpoint (see ``refgen.families.loading.load``)."""
    from .families.loading import load as _load
    return _load(checkpoint_path, ema=ema)
