"""autodiff.ops._allocator: the malloc thresholds are set at import on glibc, and left alone
when REFGEN_MALLOC_TUNING=0 or the environment sets them itself."""
import os
import subprocess
import sys

import pytest

CODE = "import autodiff.ops._allocator as a; print(a.tuned)"


def _tuned(**env_overrides):
    env = {k: v for k, v in os.environ.items()
           if k not in ("REFGEN_MALLOC_TUNING", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    env.update(env_overrides)
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    return out == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_thresholds_set_at_import_unless_opted_out():
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert _tuned()
    assert not _tuned(REFGEN_MALLOC_TUNING="0")
    assert not _tuned(MALLOC_TRIM_THRESHOLD_="1000000")
