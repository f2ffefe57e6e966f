"""``refgen data show NAME --data-dir DIR`` describes the files found in DIR, the folder it
then loads from (it used to report all four MNIST files missing, then draw them)."""
from refgen.cli import main
from refgen.data.registry import IDX_SETS


def test_data_show_describes_the_files_in_data_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REFGEN_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))      # no ~/.cache/refgen either
    stems = IDX_SETS["mnist"]["files"]
    assert main(["data", "show", "mnist"]) == 0
    assert capsys.readouterr().out.count("missing") == len(stems)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem in stems:
        (folder / (stem + ".gz")).write_bytes(b"")   # found is all describe reports
    assert main(["data", "show", "mnist", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "missing" not in out
    for stem in stems:
        assert str(folder / (stem + ".gz")) in out
