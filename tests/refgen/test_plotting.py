"""refgen.plotting: grids place every image where it belongs, figures are written atomically
as real PNGs, and bad input is named."""
import json
import os

import numpy as np  # host-side: expected values and PNG checks in tests
import pytest
from hypothesis import given, strategies as st

import autodiff
from refgen import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


def _no_temporaries(directory):
    return [p for p in os.listdir(directory) if p.endswith(".tmp")] == []


@given(n=st.integers(1, 13), nrow=st.one_of(st.none(), st.integers(1, 6)),
       h=st.integers(1, 5), w=st.integers(1, 5), padding=st.integers(0, 2))
def test_image_grid_places_each_image(n, nrow, h, w, padding):
    # image i is filled with a value unique to it; it must appear exactly in its own cell
    values = (np.arange(n) + 1.0) / (n + 1.0)
    images = np.broadcast_to(values[:, None, None, None], (n, 1, h, w)).copy()
    grid = plotting.image_grid(images, nrow=nrow, padding=padding, pad_value=0.0)
    ncol = nrow or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncol))
    assert grid.shape == (nrows * (h + padding) + padding, ncol * (w + padding) + padding)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        np.testing.assert_array_equal(grid[top:top + h, left:left + w], values[i])
        assert np.count_nonzero(grid == values[i]) == h * w


def test_image_grid_value_range_and_rgb():
    x = autodiff.tensor(np.array([[[[-1.0, 0.0], [1.0, 3.0]]]] * 3).reshape(1, 3, 2, 2))
    grid = plotting.image_grid(x, padding=0, value_range=(-1, 1))
    assert grid.shape == (2, 2, 3)                      # RGB: channels last
    np.testing.assert_allclose(grid[..., 0], [[0.0, 0.5], [1.0, 1.0]])  # clipped at 1


@pytest.mark.parametrize("shape", [(2, 2, 4, 4), (0, 1, 4, 4), (4, 4)])
def test_image_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*" + str(shape).replace("(", r"\(")
                       .replace(")", r"\)")):
        plotting.image_grid(np.zeros(shape))


def test_save_image_grid_writes_png(tmp_path):
    out = tmp_path / "sub" / "grid.png"
    path = plotting.save_image_grid(autodiff.rand(10, 1, 8, 8), out, title="t",
                                    labels=list(range(10)))
    assert path == str(out) and _is_png(out)
    assert _no_temporaries(out.parent)
    assert plotting.save_image_grid(np.random.rand(4, 3, 5, 5), tmp_path / "rgb.png")


class _Gaussian:
    bounds = ((-3.0, 3.0), (-3.0, 3.0))

    def log_prob(self, x):
        return -0.5 * (x * x).sum(dim=1) - np.log(2 * np.pi)


class _SamplerOnly(_Gaussian):
    def log_prob(self, x):
        raise NotImplementedError("defined by its sampler only")


def test_density_grid_orientation():
    # logp[i, j] must be the value at (xs[j], ys[i]): use a density that depends on x only
    xs, ys, logp = plotting.density_grid(lambda p: p[:, 0] * 1.0, ((0, 1), (5, 6)), 4)
    np.testing.assert_allclose(logp, np.broadcast_to(xs, (4, 4)))
    np.testing.assert_allclose(ys, np.linspace(5, 6, 4))


@pytest.mark.parametrize("density", [_Gaussian(), _SamplerOnly(), None])
def test_samples_over_density(tmp_path, density):
    out = tmp_path / "scatter.png"
    plotting.plot_samples_over_density(autodiff.randn(200, 2), out, density=density,
                                       grid_size=30, title="x")
    assert _is_png(out) and _no_temporaries(tmp_path)


def test_samples_over_density_rejects_bad_shape(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 2\).*\(5, 3\)"):
        plotting.plot_samples_over_density(np.zeros((5, 3)), tmp_path / "x.png")


def test_plot_density(tmp_path):
    out = tmp_path / "density.png"
    plotting.plot_density(_Gaussian().log_prob, _Gaussian.bounds, out, grid_size=30,
                          samples=np.zeros((3, 2)))
    assert _is_png(out)
    with pytest.raises(ValueError, match="not finite"):
        plotting.plot_density(lambda p: p[:, 0] * float("nan"), _Gaussian.bounds,
                              tmp_path / "nan.png", grid_size=5)


def _write_log(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_loss_curves(tmp_path):
    a = _write_log(tmp_path / "a.jsonl", [{"step": s, "time": s * 0.1, "loss": 1.0 / s,
                                           "eval/accuracy": 0.5} for s in range(1, 50, 7)])
    b = _write_log(tmp_path / "b.jsonl", [{"step": s, "loss": 2.0 / s} for s in range(1, 9)])
    plotting.plot_loss_curves(a, tmp_path / "one.png")
    plotting.plot_loss_curves({"a": a, "b": b}, tmp_path / "two.png", keys=["loss"])
    assert _is_png(tmp_path / "one.png") and _is_png(tmp_path / "two.png")


def test_loss_curves_name_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        plotting.plot_loss_curves(tmp_path / "missing.jsonl", tmp_path / "x.png")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1, "loss": 1.0}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        plotting.plot_loss_curves(bad, tmp_path / "x.png")
    empty = _write_log(tmp_path / "empty.jsonl", [{"step": 1, "time": 0.0}])
    with pytest.raises(ValueError, match="no numbers"):
        plotting.plot_loss_curves(empty, tmp_path / "x.png")


def test_failed_write_leaves_target_and_no_temporary(tmp_path):
    out = tmp_path / "figure.png"
    out.write_bytes(b"previous")
    with pytest.raises(ValueError):  # matplotlib does not know the format
        plotting.save_image_grid(np.zeros((1, 1, 2, 2)), tmp_path / "figure.unknownfmt")
    assert out.read_bytes() == b"previous"
    assert _no_temporaries(tmp_path)
    assert not (tmp_path / "figure.unknownfmt").exists()


def test_loss_curves_skip_a_torn_last_line(tmp_path):
    """A run killed mid-write leaves a torn last line; its curve still plots."""
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 1.0 / i}) + "\n" for i in range(1, 6))
                   + '{"step": 6, "lo')
    assert [r["step"] for r in plotting.read_log(log)] == [1, 2, 3, 4, 5]
    plotting.plot_loss_curves(log, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0
