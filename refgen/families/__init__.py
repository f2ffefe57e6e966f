"""The family registry: one name per model, each a module with two functions.

A family module provides

* ``kind``: one of ``base.KINDS`` (``autoregressive``, ``vae``, ``gan``, ``flow``,
  ``diffusion``, ``score``, ``energy``), or ``None`` for a model that is not generative
  (the classifier); ``refgen train --help`` groups the names by it;
* ``default_config(data_info) -> dict``: the model's JSON-able config for a data set
  described by ``data_info`` (``ArrayDataset.info``: kind, shape, num_classes, ...);
* ``build(config, data_info=None) -> Trainable``: the object ``refgen.train.fit`` trains
  (see ``refgen.train``: ``config``, ``modules()``, ``parameter_groups()``,
  ``training_step(batch, step, ctx)``, optionally ``evaluate``); a generative model is a
  ``base.GenerativeModel`` (``sample``, ``log_prob``, ``bits_per_dim``, ...);

and optionally ``train_defaults(data_info) -> dict``: ``TrainConfig`` options that suit the
family (lr, steps, ...), which command-line flags override; and ``smoke_config(data_info)
-> dict``: a tiny config the conformance test (``tests/refgen/families/test_interface.py``)
trains for a few steps, with ``SMOKE_DATA``, the data-set names to run it on.

``build(config)`` must rebuild the same network from the config alone, since checkpoints
store only the config: that is how ``refgen.load``, ``refgen eval`` and ``refgen sample``
reload a run. Adding a family is one line in ``FAMILIES``; the loop and the command stay
unchanged.
"""
from . import classifier
from . import energy
from . import diffusion
from . import flows
from . import gan
from . import score
from . import vae
from .autoregressive import made, pixel_transformer, pixelcnn
from .base import KINDS

__all__ = ["FAMILIES", "get_family", "list_families", "families_by_kind", "KINDS"]

FAMILIES = {
    "classifier": classifier,
    # autoregressive and VAE (issue 11)
    "made": made,
    "pixelcnn": pixelcnn,
    "pixel_transformer": pixel_transformer,
    "vae": vae,
    # flows (issue 12)
    "realnvp": flows.realnvp, "glow": flows.glow, "nsf": flows.nsf, "maf": flows.maf,
    "ffjord": flows.ffjord,
    # diffusion and score (issue 13)
    "ddpm": diffusion,
    "ncsn": score.ncsn, "sde": score.sde_model,
    # GAN and energy (issue 14)
    "gan": gan,
    "wgan-gp": gan.wgan_gp,
    "ebm": energy,
}


def list_families():
    """Registered family names, sorted."""
    return sorted(FAMILIES)


def families_by_kind():
    """``{kind: [names]}`` in the taxonomy's order, non-generative models last under None."""
    groups = {kind: [] for kind in KINDS}
    groups[None] = []
    for name in list_families():
        groups.setdefault(getattr(FAMILIES[name], "kind", None), []).append(name)
    return {k: v for k, v in groups.items() if v}


def get_family(name):
    """The family module registered as ``name``; an unknown name lists the known ones."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown family {name!r}; known: {', '.join(list_families())}") \
            from None
