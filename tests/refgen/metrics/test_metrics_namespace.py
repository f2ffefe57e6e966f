"""Every public name of ``refgen.metrics`` is what it says: the functions ``kid``,
``inception_score`` and ``precision_recall`` are functions, and no public submodule of
the package is shadowed by a function of the same name (``import refgen.metrics.kid`` gave
the function, so ``refgen.metrics.kid.polynomial_kernel`` failed)."""
import importlib
import pkgutil
import types

import refgen.metrics


def test_no_public_submodule_is_shadowed_by_a_package_attribute():
    for info in pkgutil.iter_modules(refgen.metrics.__path__):
        if info.name.startswith("_") or info.name == "bias":   # bias runs as a script
            continue
        module = importlib.import_module(f"refgen.metrics.{info.name}")
        assert getattr(refgen.metrics, info.name) is module, info.name


def test_metric_functions_are_functions():
    for name in ("kid", "inception_score", "precision_recall", "density_coverage"):
        assert isinstance(getattr(refgen.metrics, name), types.FunctionType), name
