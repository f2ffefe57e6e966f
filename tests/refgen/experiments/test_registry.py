"""The experiment registry and ``refgen experiment``: every experiment the issue names is
listed, importable, and has its description, budgets (with a tiny one for tests) and run."""
import pytest

from refgen.cli import main
from refgen.experiments import EXPERIMENTS, get_experiment

NAMES = ("anomaly", "compression", "probe", "rare-class", "text-to-image", "language",
         "caveat", "dimensionality")


def test_every_named_experiment_is_registered():
    assert set(NAMES) <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", NAMES)
def test_experiment_module_has_the_interface(name):
    module = get_experiment(name)
    assert module.DESCRIPTION.strip()
    assert {"default", "tiny"} <= set(module.BUDGETS)
    assert callable(module.run)


def test_unknown_experiment_is_named():
    with pytest.raises(ValueError, match="unknown experiment 'nope'.*anomaly"):
        get_experiment("nope")


def test_help_lists_every_experiment(capsys):
    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    text = capsys.readouterr().out
    for name in NAMES:
        assert name in text


def test_unknown_budget_is_a_one_line_error(capsys, tmp_path):
    assert main(["experiment", "caveat", "--budget", "huge", "--out", str(tmp_path)]) == 1
    assert "--budget 'huge' is not a budget of experiment 'caveat'" in capsys.readouterr().err
