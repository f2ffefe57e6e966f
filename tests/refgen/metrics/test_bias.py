"""FID vs N: the 1/N fit, the subsets, the figure, errors."""
import numpy as np  # host-side: reference values in tests
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autodiff
from refgen.metrics import RunningStatistics, fid_from_features
from refgen.metrics.bias import default_ns, fid_vs_n, fit_inverse_n, main, plot_fid_vs_n


@given(a=st.floats(0, 100), b=st.floats(-1e4, 1e4),
       ns=st.lists(st.integers(2, 10_000), min_size=2, max_size=15, unique=True))
def test_fit_recovers_exact_line_in_inverse_n(a, b, ns):
    fid_inf, slope = fit_inverse_n(ns, [a + b / n for n in ns])
    assert fid_inf == pytest.approx(a, abs=1e-8 * (1 + abs(b)))
    assert slope == pytest.approx(b, abs=1e-6 * (1 + abs(b)) * max(ns))


def test_full_set_point_equals_fid_and_fit_is_consistent():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 5))
    y = rng.standard_normal((300, 5)) * 1.3 + 0.2
    r = fid_vs_n(x, y, ns=[50, 100, 300], repeats=3, generator=autodiff.Generator(1))
    assert r.ns == (50, 100, 300)
    # N = all fake rows: every draw is the whole set, the FID is the full one, no spread
    assert r.fids[-1] == pytest.approx(fid_from_features(x, y), rel=1e-10)
    assert r.fid_stds[-1] == pytest.approx(0.0, abs=1e-10)
    assert r.fid_stds[0] > 0          # smaller N: each repeat draws a different subset
    assert (r.fid_inf, r.slope) == pytest.approx(fit_inverse_n(r.ns, r.fids))
    # FID is biased upward at small N: the fitted slope is positive here
    assert r.slope > 0
    # real given as running statistics: same numbers
    s = RunningStatistics().update(x)
    r2 = fid_vs_n(s, y, ns=[50, 100, 300], repeats=3, generator=autodiff.Generator(1))
    assert r2.fids == pytest.approx(r.fids, rel=1e-10)


def test_extrapolation_removes_most_of_the_bias():
    # real statistics from a large sample, fake from the same Gaussian shifted by mu:
    # population FID = |mu|^2 = 0.25; FID_N carries ~ c / N bias at small N
    rng = np.random.default_rng(2)
    d = 8
    x = rng.standard_normal((40_000, d))
    y = rng.standard_normal((4_000, d)) + 0.5 / np.sqrt(d)
    r = fid_vs_n(x, y, ns=[100, 200, 400, 1000, 2000, 4000], repeats=8)
    truth = 0.25
    assert abs(r.fid_inf - truth) < 0.5 * abs(r.fids[0] - truth)


def test_default_ns_and_errors():
    ns = default_ns(1000, 64)
    assert ns[0] == 128 and ns[-1] == 1000 and len(ns) == 15
    x = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match=r"between 2 and the 20 fake rows; got \[30\]"):
        fid_vs_n(x, x, ns=[10, 30])
    with pytest.raises(ValueError, match="fake features have dimension 3, real ones 2"):
        fid_vs_n(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 distinct N"):
        fit_inverse_n([10, 10], [1.0, 2.0])


def test_plot_writes_png_atomically(tmp_path):
    rng = np.random.default_rng(3)
    r = fid_vs_n(rng.standard_normal((100, 3)), rng.standard_normal((80, 3)), ns=[20, 40, 80])
    path = plot_fid_vs_n(r, tmp_path / "sub" / "fid.png", title="t")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["fid.png"]   # no temp left


def test_digits_figure_command(tmp_path, capsys):
    out = tmp_path / "fid_vs_n_digits.png"
    assert main(["--out", str(out), "--extractor", "pixels", "--repeats", "2"]) == 0
    assert out.exists()
    text = capsys.readouterr().out
    assert "FID_inf" in text and "N=  899" in text
