"""``ExperimentContext.train``: a finished model is loaded, not retrained; ``retrain``
starts each model over once per run (a folder with a checkpoint must not make it fail)."""
import json

from refgen.experiments.common import ExperimentContext


def _context(out, retrain=False):
    lines = []
    ctx = ExperimentContext(name="t", out=str(out), budget="tiny", settings={},
                            retrain=retrain, progress=lines.append)
    return ctx, lines


def _steps(out):
    with open(out / "models" / "made-ring8" / "done.json") as f:
        return json.load(f)["steps"]


def test_trained_once_then_loaded_and_retrain_starts_over(tmp_path):
    ctx, lines = _context(tmp_path)
    ctx.train("made", "ring8", tag="made-ring8", steps=2)
    assert _steps(tmp_path) == 2 and any("training made" in line for line in lines)

    ctx, lines = _context(tmp_path)                       # a second run: loads
    ctx.train("made", "ring8", tag="made-ring8", steps=3)
    assert any("trained before" in line for line in lines) and _steps(tmp_path) == 2

    ctx, lines = _context(tmp_path, retrain=True)         # --retrain: trains again
    ctx.train("made", "ring8", tag="made-ring8", steps=3)
    assert any("training made" in line for line in lines) and _steps(tmp_path) == 3
    lines.clear()
    ctx.train("made", "ring8", tag="made-ring8", steps=3)  # same run: not a second time
    assert any("trained before" in line for line in lines)


def test_initial_weights_do_not_depend_on_what_ran_before(tmp_path):
    """Two builds of the same run give the same initial weights, whatever drew from the
    global generator in between (the zoo and the experiments train many models in one
    process)."""
    import autodiff
    from refgen.families.training import prepare_run

    def first_weights(out):
        _, trainable, *_ = prepare_run("made", "ring8", out, options={"seed": 3},
                                       eval_split="none")
        modules = trainable.modules()
        modules = modules.values() if isinstance(modules, dict) else modules
        return [autodiff.backend.to_numpy(p.data).copy()
                for module in modules for p in module.parameters()]

    a = first_weights(tmp_path / "a")
    autodiff.randn(1000)                   # something else draws from the global generator
    b = first_weights(tmp_path / "b")
    assert len(a) == len(b) > 0 and all((x == y).all() for x, y in zip(a, b))


def test_result_json_is_strict_json_with_null_for_nan(tmp_path):
    """``result.json`` parses as strict JSON (no bare NaN/Infinity tokens): a number that is
    not finite (a KL with no high-quality sample, say) is written as null."""
    import numpy as np  # host-side: the result values are host scalars and arrays

    ctx, _ = _context(tmp_path)
    ctx.write_result({"kl": float("nan"), "ratio": np.float64("inf"), "counts": np.arange(3),
                      "nested": {"x": [1.5, float("-inf")]}})

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    with open(tmp_path / "result.json") as f:
        record = json.load(f, parse_constant=refuse)
    assert record["kl"] is None and record["ratio"] is None
    assert record["counts"] == [0, 1, 2] and record["nested"] == {"x": [1.5, None]}
