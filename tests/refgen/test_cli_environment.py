"""The command's environment: BLAS threads chosen before NumPy loads, and a bad
``REFGEN_BACKEND`` reported in one line (the backend is chosen at import time, before the
command's own error handling used to start)."""
import os
import subprocess
import sys

import pytest

from refgen.cli import BLAS_THREAD_VARIABLES


def _run_python(code, **env_changes):
    """Run ``code`` in a fresh interpreter with this checkout first on PYTHONPATH; a value of
    None in ``env_changes`` removes that variable."""
    import refgen
    root = os.path.dirname(os.path.dirname(os.path.abspath(refgen.__file__)))
    env = {k: v for k, v in os.environ.items()
           if k not in BLAS_THREAD_VARIABLES and k not in ("REFGEN_BACKEND", "REFGEN_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=root)


THREADS_AFTER_MAIN = (
    "import os, sys\n"
    "from refgen.cli import main, BLAS_THREAD_VARIABLES\n"
    "assert 'numpy' not in sys.modules\n"
    "main(['data', 'list'])\n"
    "assert 'numpy' in sys.modules  # the command loaded NumPy after choosing\n"
    "print('THREADS', [os.environ.get(v) for v in BLAS_THREAD_VARIABLES])\n")


def _threads(proc):
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("THREADS")]
    return line[0].split(" ", 1)[1]


def test_command_chooses_one_blas_thread_before_numpy_loads():
    proc = _run_python(THREADS_AFTER_MAIN)
    assert _threads(proc) == "['1', '1', '1']"


def test_command_leaves_a_users_thread_choice_alone():
    proc = _run_python(THREADS_AFTER_MAIN, OMP_NUM_THREADS="2")
    assert _threads(proc) == "[None, '2', None]"


def test_no_thread_choice_once_numpy_is_loaded():
    """In a process that already loaded NumPy (a notebook, this test) the variables would
    be read too late: the helper says so by returning False and changes nothing."""
    from refgen.cli import use_one_blas_thread
    before = {v: os.environ.get(v) for v in BLAS_THREAD_VARIABLES}
    assert use_one_blas_thread() is False
    assert {v: os.environ.get(v) for v in BLAS_THREAD_VARIABLES} == before


@pytest.mark.parametrize("value, words", [
    ("bogus", ["REFGEN_BACKEND='bogus'", "unknown backend", "numpy"]),
    ("cupy", ["REFGEN_BACKEND='cupy'", "CuPy"]),
])
def test_bad_refgen_backend_is_one_line(value, words):
    if value == "cupy":
        try:
            import cupy  # noqa: F401
            pytest.skip("CuPy is installed: the missing-CuPy error cannot be shown")
        except ImportError:
            pass
    proc = _run_python("import sys\nfrom refgen.cli import main\n"
                       "sys.exit(main(['data', 'list']))", REFGEN_BACKEND=value)
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("refgen: error: ")
    for word in words:
        assert word in err
