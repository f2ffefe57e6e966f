"""The family registry: one name per model family, each a module with two functions.

A family module provides

* ``default_config(data_info) -> dict``: the model's JSON-able config for a data set
  described by ``data_info`` (``ArrayDataset.info``: kind, shape, num_classes, ...);
* ``build(config, data_info=None) -> Trainable``: the object ``refgen.train.fit`` trains
  (see ``refgen.train``: ``config``, ``modules()``, ``parameter_groups()``,
  ``training_step(batch, step, ctx)``, optionally ``evaluate`` and ``sample``);

and optionally ``train_defaults(data_info) -> dict``: ``TrainConfig`` options that suit the
family (lr, steps, ...), which command-line flags override.

``build(config)`` must rebuild the same network from the config alone, since checkpoints
store only the config: that is how ``refgen eval`` and ``refgen sample`` reload a run.
Adding a family is one line in ``FAMILIES``; the loop and the command stay unchanged.
"""
from . import classifier

__all__ = ["FAMILIES", "get_family", "list_families"]

FAMILIES = {
    "classifier": classifier,
}


def list_families():
    """Registered family names, sorted."""
    return sorted(FAMILIES)


def get_family(name):
    """The family module registered as ``name``; an unknown name lists the known ones."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown family {name!r}; known: {', '.join(list_families())}") \
            from None
