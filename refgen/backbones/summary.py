"""Parameter counts of a model, as a table (the simplest form of torchinfo's summary).

``count_parameters(module, trainable_only=False)``: the number of scalar parameters, each
shared (tied) Parameter counted once.

``summary(module, max_depth=None)``: one row per submodule, indented by depth, with its type,
the shapes of its own parameters and its parameter count (recursive, so a container's row
is the sum of its children), then the totals. No forward pass is run, so no output shapes.
Example (a TransformerDecoder with tied embeddings)::

    Layer (type)                 Param shapes            Param #
    ============================================================
    TransformerDecoder                                     1,912
      wte (Embedding)            weight (11, 8)              88
      ...
      lm_head (Linear)           weight (11, 8) (shared with wte.weight)   88
    ============================================================
    Total params: 1,912
    Trainable params: 1,912
    Non-trainable params: 0
    (shared parameters are counted once in the totals and in each row)
"""
from autodiff import nn

__all__ = ["count_parameters", "summary"]


def _check_module(module, where):
    if not isinstance(module, nn.Module):
        raise TypeError(f"{where}: expected an autodiff.nn.Module, got {type(module).__name__}")


def count_parameters(module, trainable_only=False):
    """Total number of scalar parameters (shared Parameters once; frozen ones skipped when
    ``trainable_only``)."""
    _check_module(module, "count_parameters")
    return nn.num_parameters(module, trainable_only)


def _own_shapes(module, prefix, first_name):
    """'weight (8, 4), bias (8,)'; a tied Parameter also names where it first appears."""
    parts = []
    for name, p in module._parameters.items():
        if p is None:
            continue
        text = f"{name} {tuple(p.shape)}"
        origin = first_name.get(id(p))
        if origin is not None and origin != prefix + name:
            text += f" (shared with {origin})"
        parts.append(text)
    return ", ".join(parts)


def summary(module, max_depth=None):
    """A text table of submodules and parameter counts (see the module docstring).

    :param module: an autodiff.nn.Module
    :param max_depth: show submodules down to this depth (None: all)
    :return: str
    """
    _check_module(module, "summary")
    if max_depth is not None and int(max_depth) < 0:
        raise ValueError(f"summary: max_depth must be >= 0 or None, got {max_depth}")
    first_name = {}
    for pname, p in module.named_parameters(remove_duplicate=False):
        first_name.setdefault(id(p), pname)
    rows = []
    for name, mod in module.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if max_depth is not None and depth > max_depth:
            continue
        label = type(mod).__name__ if not name else f"{name.rsplit('.', 1)[-1]} ({type(mod).__name__})"
        rows.append(("  " * depth + label, _own_shapes(mod, name + "." if name else "", first_name), f"{count_parameters(mod):,}"))
    total = count_parameters(module)
    trainable = count_parameters(module, trainable_only=True)
    header = ("Layer (type)", "Param shapes", "Param #")
    w0 = max(len(header[0]), *(len(r[0]) for r in rows)) + 2
    w1 = max(len(header[1]), *(len(r[1]) for r in rows)) + 2
    w2 = max(len(header[2]), *(len(r[2]) for r in rows))
    line = "=" * (w0 + w1 + w2)
    out = [f"{header[0]:<{w0}}{header[1]:<{w1}}{header[2]:>{w2}}", line]
    out += [f"{a:<{w0}}{b:<{w1}}{c:>{w2}}" for a, b, c in rows]
    out += [line, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
            "(shared parameters are counted once in the totals and in each row)"]
    return "\n".join(out)
