"""What every experiment shares: its context, training a registered model once (resumable),
and writing its result atomically.

    ctx = ExperimentContext(name="anomaly", out="runs/experiment-anomaly", budget="tiny",
                            settings=module.BUDGETS["tiny"], seed=0)
    model = ctx.train("realnvp", "fashion-mnist", minutes=2.0)   # trained once, then loaded
    ctx.log("AUROC 0.91")
    ctx.write_result({"auroc": 0.91})

A model's run lives in ``OUT/models/TAG``; when its ``checkpoint.npz`` says the run is
finished, it is loaded instead of retrained, so an experiment killed at any moment and run
again redoes only what was not finished (as ``refgen zoo`` does).
"""
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field

from ..fileio import atomic_open

__all__ = ["ExperimentContext", "machine_line"]


def machine_line():
    """'<cpu model>, N cores, load a/b/c' for the record beside every measured number."""
    cpu = platform.processor() or platform.machine()
    try:   # host-side: reading /proc, not array code
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        load = "unknown"
    return f"{cpu}, {os.cpu_count()} cores, load {load}"


@dataclass
class ExperimentContext:
    """Where an experiment works and what it was asked for.

    :param name: the experiment's name.
    :param out: its folder (models, figures, ``result.json``).
    :param budget: the budget's name; ``settings`` is ``BUDGETS[budget]`` of the module.
    :param figures: a second folder the figures are copied into (``--figures``), or None.
    :param data_dir: where MNIST-style data sets are found (``--data-dir``).
    :param progress: called with each line of progress (default: print).
    """
    name: str
    out: str
    budget: str
    settings: dict
    seed: int = 0
    figures: str = None
    data_dir: str = None
    retrain: bool = False
    progress: object = print
    started: float = field(default_factory=time.time)
    _retrained: set = field(default_factory=set, repr=False)   # run folders redone this run

    def log(self, text):
        if self.progress:
            self.progress(f"[{self.name}] {text}")

    def path(self, *parts):
        """A path inside the experiment's folder (its parent folders created)."""
        p = os.path.join(self.out, *parts)
        os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
        return p

    def figure_path(self, filename):
        """Where to save a figure: in ``out``; ``publish`` copies it to ``--figures``."""
        return self.path(filename)

    def publish(self, path):
        """Copy a written figure into the ``--figures`` folder, if one was given."""
        if not self.figures:
            return path
        import shutil
        os.makedirs(self.figures, exist_ok=True)
        target = os.path.join(self.figures, os.path.basename(path))
        shutil.copyfile(path, target)
        return target

    def train(self, model, data, *, tag=None, minutes=None, steps=None, settings=None,
              options=None, train_split="train", eval_split="none", dtype="float32",
              train_data=None):
        """Train registered model ``model`` on data set ``data`` into ``OUT/models/TAG``
        once, and return it loaded with its EMA weights (``refgen.load``).

        A finished run is loaded, not retrained (unless ``retrain``); an unfinished one
        resumes from its checkpoint. ``minutes`` is a training-time budget, ``steps`` a
        step count (the tiny budgets use steps, so that a test is deterministic).
        ``train_data``: an ``ArrayDataset`` to train on instead of ``data``'s
        ``train_split`` (a deterministic subset, perturbed copies); ``data`` and
        ``train_split`` still name the set the model is built for (shape, levels). It must
        be the same on every call, or a resumed run would continue on other data.
        """
        from ..families.loading import load
        from ..families.training import prepare_run
        from ..train import fit
        tag = tag or f"{model}-{data}".replace(":", "_").replace("=", "").replace("/", "_")
        run_dir = self.path("models", tag, "")
        done = os.path.join(run_dir, "done.json")
        checkpoint = os.path.join(run_dir, "checkpoint.npz")
        fresh = self.retrain and run_dir not in self._retrained
        if os.path.exists(done) and os.path.exists(checkpoint) and not fresh:
            self.log(f"{tag}: trained before, loading {checkpoint}")
            return load(checkpoint)
        if fresh:   # --retrain: this run's models start over (once each, not per call)
            import shutil
            shutil.rmtree(run_dir, ignore_errors=True)
            os.makedirs(run_dir, exist_ok=True)
            self._retrained.add(run_dir)
        given_data = train_data
        opts = dict(options or {})
        if steps is not None:
            opts["steps"] = steps
        opts.setdefault("seed", self.seed)
        _, trainable, config, train_data, eval_data = prepare_run(
            model, data, run_dir, settings=settings, options=opts, minutes=minutes,
            dtype=dtype, data_dir=self.data_dir, train_split=train_split,
            eval_split=eval_split, note=self.log)
        if given_data is not None:
            if tuple(given_data.x.shape[1:]) != tuple(train_data.x.shape[1:]):
                raise ValueError(f"train_data examples have shape {tuple(given_data.x.shape[1:])}"
                                 f", but {data!r} has {tuple(train_data.x.shape[1:])}")
            train_data = given_data
        resume = os.path.exists(checkpoint)
        budget = f"{minutes} min" if minutes is not None else f"{config.steps} steps"
        self.log(f"{tag}: training {model} on {data} ({budget})"
                 + (", resuming" if resume else ""))
        t0 = time.time()
        result = fit(trainable, train_data, config, eval_data=eval_data, resume=resume,
                     progress=False)
        with atomic_open(done, "w", encoding="utf-8") as f:
            json.dump({"model": model, "data": data, "steps": int(result.step),
                       "train_seconds": round(result.elapsed, 1),
                       "seconds_this_call": round(time.time() - t0, 1)}, f)
        return load(checkpoint)

    def write_result(self, numbers):
        """Write ``OUT/result.json`` atomically: the numbers with the budget, the seed, the
        machine and the wall time; returns the dict written."""
        record = {"experiment": self.name, "budget": self.budget, "seed": self.seed,
                  "machine": machine_line(),
                  "wall_seconds": round(time.time() - self.started, 1), **numbers}
        with atomic_open(self.path("result.json"), "w", encoding="utf-8") as f:
            json.dump(_jsonable(record), f, indent=2, sort_keys=False, allow_nan=False)
        return record


def _jsonable(value):
    """``value`` as strict JSON: NumPy/CuPy scalars and arrays as numbers and lists (host-side:
    results are written on the host), and a NaN or infinite number as null. Python's json
    would write the bare tokens NaN and Infinity, which are not JSON and which other
    readers (jq, JavaScript, most JSON libraries) reject."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if hasattr(value, "item"):
        return _jsonable(value.item())
    raise TypeError(f"result value of type {type(value).__name__} is not JSON-serialisable")
