"""The backend switch: who may import the array libraries, default dtypes, seeded
randomness, host conversion and device moves.

Import rule (enforced below): no module of ``autodiff/`` or ``refgen/`` imports ``numpy`` or
``cupy`` except ``autodiff/backend.py``, unless the import carries an explicit exemption,
a comment containing ``host-side`` followed by the reason, either on the import line or
in the comment lines directly above it::

    import numpy  # host-side: scipy's erfinv works on host arrays

Everything else reaches arrays through ``autodiff.backend.xp`` so one switch moves it to
the GPU.
"""
import ast
import pathlib
import re

import numpy as np  # host-side: reference values and type checks in tests
import pytest

import autodiff as ad
from autodiff import backend as B

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN = {"numpy", "cupy"}
EXEMPT_FILES = {"autodiff/backend.py"}
MARKER = re.compile(r"#.*\bhost-side\b\W*\w+", re.IGNORECASE)


def _imported_roots(node):
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module.split(".")[0]}
    return set()


def _is_exempt(lines, lineno):
    """The import at 1-based ``lineno`` has the marker on its line or in the comments above."""
    if MARKER.search(lines[lineno - 1]):
        return True
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        if MARKER.search(lines[i]):
            return True
        i -= 1
    return False


def array_library_violations(root=ROOT):
    found = []
    for package in ("autodiff", "refgen"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in EXEMPT_FILES:
                continue
            source = path.read_text()
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source, filename=rel)):
                bad = _imported_roots(node) & FORBIDDEN
                if bad and not _is_exempt(lines, node.lineno):
                    found.append(f"{rel}:{node.lineno} imports {', '.join(sorted(bad))}")
    return found


def test_only_backend_imports_array_libraries():
    violations = array_library_violations()
    assert not violations, (
        "array libraries imported outside autodiff/backend.py without a "
        "'# host-side: <reason>' comment:\n  " + "\n  ".join(violations))


def test_import_rule_catches_an_unmarked_import(tmp_path):
    # the checker itself must be able to fail
    pkg = tmp_path / "autodiff"
    pkg.mkdir()
    (tmp_path / "refgen").mkdir()
    (pkg / "bad.py").write_text("import os\nimport numpy as np\n")
    (pkg / "bad2.py").write_text("def f():\n    from cupy import asarray\n")
    (pkg / "ok.py").write_text("# host-side: file I/O on the host\nimport numpy\n")
    (pkg / "ok2.py").write_text("import numpy.linalg  # host-side: scipy needs host arrays\n")
    found = array_library_violations(tmp_path)
    assert found == ["autodiff/bad.py:2 imports numpy", "autodiff/bad2.py:2 imports cupy"]


def test_default_dtype_switch():
    ad.set_default_dtype("float32")
    try:
        assert ad.get_default_dtype() == np.float32
        assert ad.tensor([1.0]).dtype == np.float32
        assert ad.zeros(2).dtype == np.float32 and ad.randn(2).dtype == np.float32
        assert ad.arange(3).dtype == np.int64 and ad.arange(0.0, 1.0, 0.5).dtype == np.float32
        assert ad.tensor([1, 2]).dtype == np.int64
        assert ad.tensor(np.ones(2)).dtype == np.float64  # arrays keep their dtype
        ad.set_default_dtype(ad.float64)
        assert ad.tensor([1.0]).dtype == np.float64 and ad.ones(1).dtype == np.float64
    finally:
        ad.set_default_dtype("float64")
    with pytest.raises(ValueError, match="float32 or float64"):
        ad.set_default_dtype("int32")


def test_manual_seed_reproducible_and_seed_sensitive():
    ad.manual_seed(123)
    a = ad.randn(5).numpy()
    u = ad.rand(3).numpy()
    ad.manual_seed(123)
    np.testing.assert_array_equal(ad.randn(5).numpy(), a)
    np.testing.assert_array_equal(ad.rand(3).numpy(), u)
    ad.manual_seed(124)
    assert not np.array_equal(ad.randn(5).numpy(), a)
    assert ((u >= 0) & (u < 1)).all()


def test_generators_are_independent_of_the_global_one():
    g1, g2 = ad.Generator(7), ad.Generator(7)
    x1 = ad.randn(4, generator=g1).numpy()
    ad.manual_seed(0)
    _ = ad.randn(100)  # advancing the global generator must not touch g2
    x2 = ad.randn(4, generator=g2).numpy()
    np.testing.assert_array_equal(x1, x2)
    ad.manual_seed(5)
    before = ad.randn(3).numpy()
    ad.manual_seed(5)
    _ = ad.randn(10, generator=ad.Generator(1))  # using g does not advance the global one
    np.testing.assert_array_equal(ad.randn(3).numpy(), before)
    i = ad.randint(0, 10, (1000,), generator=ad.Generator(3)).numpy()
    assert i.dtype == np.int64 and i.min() >= 0 and i.max() < 10
    p = ad.randperm(6, generator=ad.Generator(3)).numpy()
    assert sorted(p.tolist()) == list(range(6))


def test_generator_state_roundtrip():
    g = ad.Generator(11)
    state = g.get_state()
    a = ad.rand(4, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(ad.rand(4, generator=g).numpy(), a)


def test_numpy_returns_host_ndarray_and_item():
    t = ad.tensor([[1.0, 2.0]], requires_grad=True)
    assert type(t.numpy()) is np.ndarray
    assert (t * 2.0).numpy().tolist() == [[2.0, 4.0]]
    assert ad.tensor(3.5).item() == 3.5 and isinstance(ad.tensor(3.5).item(), float)
    assert t.tolist() == [[1.0, 2.0]]


def test_to_device_cpu_and_dtype_moves():
    t = ad.tensor([1.0, 2.0])
    c = ad.to_device(t, "cpu")
    assert c.device == "cpu" and type(c.numpy()) is np.ndarray
    np.testing.assert_array_equal(c.numpy(), t.numpy())
    assert t.to(device="cpu").device == "cpu"
    # on CuPy these move to the host (Tensor() would have copied the host array back)
    assert t.cpu().device == "cpu" and type(t.cpu().data) is np.ndarray
    g = ad.tensor([1.0], requires_grad=True)
    assert ad.to_device(g, "cpu").requires_grad and ad.to_device(g, "cpu").is_leaf
    assert t.to(ad.float32).dtype == np.float32 and t.float().double().dtype == np.float64
    with pytest.raises(ValueError, match="unknown device"):
        ad.to_device(t, "tpu")
    if B.get_backend() == "numpy":
        with pytest.raises(RuntimeError, match="cupy"):
            ad.to_device(t, "cuda")


def test_unknown_backend_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'jax'.*numpy.*cupy"):
        ad.set_backend("jax")
    assert ad.get_backend() in ("numpy", "cupy", "strict")


def test_scatter_add_accumulates_repeats():
    out = B.xp.zeros(3)
    B.scatter_add(out, B.xp.asarray([0, 0, 2]), B.xp.asarray([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(B.to_numpy(out), [3.0, 0.0, 5.0])


def test_factories():
    assert ad.zeros(2, 3).shape == (2, 3) and ad.ones((2,)).shape == (2,)
    np.testing.assert_array_equal(ad.full((2,), 7.0).numpy(), [7.0, 7.0])
    np.testing.assert_array_equal(ad.eye(2).numpy(), np.eye(2))
    np.testing.assert_allclose(ad.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5), rtol=0)
    x = ad.tensor([1.0, 2.0])
    assert ad.zeros_like(x).shape == (2,) and ad.ones_like(x).dtype == x.dtype
    assert ad.randn_like(x).shape == (2,) and ad.rand_like(x).dtype == x.dtype
    assert ad.from_numpy(np.arange(3)).dtype == np.int64
    assert ad.zeros(2, requires_grad=True).requires_grad
    # torch.randint's two forms; randint(2, (3,)) used to draw one value in [2, 3)
    r = ad.randint(2, (3,))
    assert r.shape == (3,) and r.dtype == np.int64 and set(r.numpy()) <= {0, 1}
    assert ad.randint(5, size=(4,)).shape == (4,) and ad.randint(2, 5, (3,)).shape == (3,)
    with pytest.raises(ValueError, match=r"randint: empty range \[5, 2\)"):
        ad.randint(5, 2, (3,))
