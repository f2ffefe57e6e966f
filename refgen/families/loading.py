"""``refgen.load``: a trained model back from its checkpoint, in one call.

    import refgen
    model = refgen.load("runs/ddpm-ring8/checkpoint.npz")     # EMA weights when the run kept them
    x = model.sample(64, autodiff.Generator(0))
    bpd = model.bits_per_dim(test_x)

It is exactly what ``refgen sample`` and ``refgen eval`` use: the family is looked up by the
name the checkpoint records, rebuilt from the config stored with it (in the dtype it trained
in), given the checkpoint's weights, and put in eval mode.
"""
from ..train import load_checkpoint
from ..train.checkpoint import restore_modules

__all__ = ["load", "load_with_checkpoint"]


def load_with_checkpoint(checkpoint_path, ema=True):
    """(model, checkpoint dict): the model as ``load`` returns it, and the checkpoint's
    contents (its family name, config, step, train_config, ...)."""
    import autodiff
    from . import get_family
    ckpt = load_checkpoint(checkpoint_path)
    config = dict(ckpt["config"])
    if config.get("dtype"):
        autodiff.set_default_dtype(config["dtype"])  # rebuild in the dtype it trained in
    family = get_family(ckpt["family"])
    model = family.build(config, None)
    if not getattr(model, "family", None):
        model.family = ckpt["family"]
    restore_modules(model, ckpt, use_ema=ema)
    for module in model.modules().values():
        module.eval()
    return model, ckpt


def load(checkpoint_path, ema=True):
    """The trained model in ``checkpoint_path`` (a ``checkpoint.npz`` written by
    ``refgen.train.fit`` / ``refgen train``), in eval mode.

    :param ema: use the exponential moving average of the weights when the run kept one
        (the default, as ``refgen sample`` does); False for the raw weights.
    :raises FileNotFoundError, CheckpointError: a missing, corrupt or foreign file, named.

    Choose the backend first (``autodiff.set_backend("cupy")``) to load onto the GPU. The
    default float dtype is set to the one the run trained in.
    """
    return load_with_checkpoint(checkpoint_path, ema=ema)[0]
