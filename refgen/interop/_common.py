"""What the converters share: reading a config and a checkpoint, and host copies of weights.

A checkpoint is a state_dict (torch tensors or arrays), a ``.safetensors`` / ``.npz`` file, or
a folder as ``save_pretrained`` writes it (``model.safetensors`` [or
``diffusion_pytorch_model.safetensors``] beside ``config.json``). Torch is never imported:
torch tensors are read by duck typing in ``refgen.backbones.convert``.
"""
import json
import os
from collections import OrderedDict
from collections.abc import Mapping

from autodiff import backend as B
from refgen.backbones.convert import convert_state_dict

__all__ = ["read_config", "read_weights", "host_state_dict"]


def _folder_files(path, weight_names):
    weights = [os.path.join(path, n) for n in weight_names if os.path.isfile(os.path.join(path, n))]
    if not weights:
        raise FileNotFoundError(f"{path!r}: a checkpoint folder needs one of "
                                f"{', '.join(weight_names)} (pytorch_model.bin is a pickle, "
                                f"which refgen does not read: save with safe_serialization)")
    return weights[0], os.path.join(path, "config.json")


def read_config(config, where, folder=None):
    """The configuration as a plain dict: ``config`` may be a dict, an object with
    ``to_dict()`` (transformers' GPT2Config, diffusers' FrozenDict config), a path to a
    ``config.json``, or None to read ``folder/config.json``."""
    if config is None and folder is not None:
        config = os.path.join(folder, "config.json")
    if config is None:
        raise ValueError(f"{where}: config is required (a dict, a config object or a path to "
                         f"config.json) unless a checkpoint folder holding config.json is given")
    if isinstance(config, (str, os.PathLike)):
        if not os.path.isfile(config):
            raise FileNotFoundError(f"{where}: no config file {os.fspath(config)!r}")
        with open(config, encoding="utf-8") as fh:
            return json.load(fh)
    if hasattr(config, "to_dict") and callable(config.to_dict):
        return dict(config.to_dict())
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"{where}: config must be a dict, a config object with to_dict() or a path "
                    f"to config.json, got {type(config).__name__}")


def read_weights(source, weight_names, where):
    """(name -> host NumPy array in the file's order, folder or None) from a state_dict, a
    file or a checkpoint folder."""
    folder = None
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        folder = os.fspath(source)
        source, _ = _folder_files(folder, weight_names)
    if not isinstance(source, (str, os.PathLike, Mapping)):
        raise TypeError(f"{where}: state_dict_or_path must be a state_dict (mapping), a .safetensors"
                        f"/.npz file or a checkpoint folder, got {type(source).__name__}")
    tensors = convert_state_dict(source)
    return OrderedDict((k, B.to_numpy(v.data)) for k, v in tensors.items()), folder


def host_state_dict(module):
    """name -> host NumPy copy of every entry of ``module.state_dict()``."""
    return OrderedDict((k, B.to_numpy(v.data).copy()) for k, v in module.state_dict().items())


def require(cfg, key, allowed, where, default=None):
    """cfg[key] (or ``default`` when absent) must be one of ``allowed``; returns it."""
    value = cfg.get(key, default)
    if value not in allowed:
        raise ValueError(f"{where}: config {key}={value!r} is not supported; refgen's model "
                         f"has {' or '.join(map(repr, allowed))}")
    return value
