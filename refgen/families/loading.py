"""``refgen.load``: a trained model back from its checkpoint, in one call.

    import refgen
    model = refgen.load("runs/ddpm-ring8/checkpoint.npz")     # EMA weights when the run kept them
    x = model.sample(64, autodiff.Generator(0))
    bpd = model.bits_per_dim(test_x)

It is exactly what ``refgen sample`` and ``refgen eval`` use: the family is looked up by the
name the checkpoint records, rebuilt from the config stored with it (in the dtype it trained
in), given the checkpoint's weights, and put in eval mode.
"""
from ..train import CheckpointError, load_checkpoint
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
    _check_config_types(checkpoint_path, family, config)
    try:
        model = family.build(config, None)
    except (ValueError, TypeError) as exc:
        # The family's message may name neither file nor key (int('ten')): name the config
        # keys whose value the message quotes.
        keys = [k for k, v in _leaves(config) if isinstance(v, str) and repr(v) in str(exc)]
        named = f" (config key {', '.join(map(repr, keys))})" if keys else ""
        raise CheckpointError(f"checkpoint {str(checkpoint_path)!r}: its config does not build "
                              f"a {ckpt['family']!r} model{named}: {exc}") from exc
    if not getattr(model, "family", None):
        model.family = ckpt["family"]
    restore_modules(model, ckpt, use_ema=ema)
    _refuse_non_finite(checkpoint_path, model)
    for module in model.modules().values():
        module.eval()
    return model, ckpt


def _check_config_types(path, family, config):
    """Refuse a config value whose kind differs from the family default's (a string where a
    number is expected, ...), naming the file and the key, before the family's own code turns
    it into an error that names neither (``int('ten')``). None is left to the family."""
    try:
        defaults = family.default_config(config.get("data_info"))
    except Exception:  # the family cannot state its defaults without its data: build checks
        return

    def kind(value):
        if isinstance(value, bool):
            return "a boolean"
        if isinstance(value, (int, float)):
            return "a number"
        if isinstance(value, str):
            return "a string"
        return None

    def walk(expected, given, prefix):
        for key, default in expected.items():
            if key not in given or given[key] is None:
                continue
            where = f"{prefix}{key}"
            if isinstance(default, dict) and isinstance(given[key], dict):
                walk(default, given[key], where + ".")
                continue
            want = kind(default)
            if want is not None and kind(given[key]) != want:
                raise CheckpointError(
                    f"checkpoint {str(path)!r}: config key {where!r} is {given[key]!r}, "
                    f"expected {want} (like the default {default!r})")
    walk(defaults, config, "")


def _leaves(config, prefix=""):
    """(dotted key, value) for every non-dict value of a nested config."""
    for key, value in config.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _refuse_non_finite(path, model):
    """A checkpoint whose weights hold NaN or inf (a run that diverged) cannot be evaluated
    or sampled meaningfully: refuse it in one line naming the first such parameter. One
    scalar per tensor comes back to the host (documented transfer; load time only)."""
    import autodiff
    xp = autodiff.backend.xp
    for module_name, module in model.modules().items():
        for name, p in module.named_parameters():
            bad = int(xp.count_nonzero(~xp.isfinite(p.data)))   # host-side: one scalar
            if bad:
                raise CheckpointError(
                    f"checkpoint {str(path)!r}: parameter {module_name}.{name} holds {bad} "
                    f"NaN/inf value(s) of {p.data.size} (the run diverged?); refusing to use it")


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
