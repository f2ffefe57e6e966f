"""``refgen.load`` (and so ``refgen eval``/``sample``) refuses, in one line naming the file
and the key or parameter, a checkpoint whose config has a value of the wrong kind or whose
weights hold NaN (a diverged run); it used to fail inside int() or report ``nll nan``."""
import pytest

import autodiff
import refgen
from refgen.cli import main
from refgen.train import CheckpointError


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    previous = autodiff.get_default_dtype()
    assert main(["train", "classifier", "--data", "digits", "--steps", "2", "--out", str(run),
                 "--quiet", "--dtype", "float64"]) == 0
    autodiff.set_default_dtype(previous)
    return run / "checkpoint.npz"


def _edited(checkpoint, tmp_path, edit):
    ckpt = autodiff.load(checkpoint)
    edit(ckpt)
    path = tmp_path / "edited.npz"
    autodiff.save(ckpt, path)
    return path


def test_the_untouched_checkpoint_loads(checkpoint):
    assert refgen.load(checkpoint) is not None


def test_config_value_of_the_wrong_kind_names_file_and_key(checkpoint, tmp_path, capsys):
    path = _edited(checkpoint, tmp_path, lambda c: c["config"].__setitem__("num_classes", "ten"))
    with pytest.raises(CheckpointError, match=r"edited\.npz.*config key 'num_classes'"):
        refgen.load(path)
    assert main(["eval", "--checkpoint", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "num_classes" in err and "edited.npz" in err


def test_config_kind_checked_against_the_family_defaults(checkpoint, tmp_path):
    """With the data's description in the config, the defaults say what kind each key
    holds: a string where the default is a number is refused before the family runs."""
    from refgen.families import loading

    class Family:
        @staticmethod
        def default_config(data_info):
            return {"hidden": 64, "data_info": {"num_classes": 10}, "act": "silu"}

    for config, key in (({"hidden": "64", "act": "silu"}, "'hidden' is '64'"),
                        ({"data_info": {"num_classes": "ten"}}, "'data_info.num_classes'"),
                        ({"act": 3}, "'act' is 3, expected a string")):
        with pytest.raises(CheckpointError, match=rf"x\.npz.*{key}"):
            loading._check_config_types("x.npz", Family, config)
    loading._check_config_types("x.npz", Family, {"hidden": 32.0, "act": "relu",
                                                  "data_info": {"num_classes": None}})


def test_nan_weight_is_refused_naming_the_parameter(checkpoint, tmp_path, capsys):
    def poison(ckpt):
        for module_state in ckpt["modules"].values():
            name = next(k for k in module_state if k.endswith("weight"))
            module_state[name].data[(0,) * module_state[name].ndim] = float("nan")
            poison.name = name
            return
    path = _edited(checkpoint, tmp_path, poison)
    with pytest.raises(CheckpointError, match=rf"edited\.npz.*{poison.name}.* 1 NaN/inf"):
        refgen.load(path, ema=False)
    assert main(["eval", "--checkpoint", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and poison.name in err
