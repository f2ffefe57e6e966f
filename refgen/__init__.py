"""refgen: reference implementations of generative models on the ``autodiff`` engine.

Subpackages: ``refgen.data`` (toy densities, digits, IDX files), ``refgen.distributions``,
``refgen.train`` (one training loop for every family), ``refgen.backbones`` (MLP, ResNet,
U-Net, Transformers, coupling networks), ``refgen.conditioning``, ``refgen.families``, and
the ``refgen`` command (``refgen.cli``).
"""

__version__ = "0.1.0"
