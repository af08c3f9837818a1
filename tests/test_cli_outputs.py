"""The command line's outputs and inputs: paths it cannot write, --force beside other files,
diverged runs, damaged model folders, delimiters, headers."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tfp_bnn import cli, data

FAST = ["--epochs", "2", "--hidden", "4", "--samples", "4"]


def _main(capsys, *args):
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().err


def _csv(path, text):
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(40, 2)).round(4)
    y = (x[:, 0] - x[:, 1] ** 2).round(4)
    good = _csv(folder / "good.csv", "x1,x2,y\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(x, y)))
    assert cli.main(["fit", "--data", str(good), "--target", "y", "--out", str(folder / "model"), *FAST]) == 0
    return folder


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained before refusing the output path")

    monkeypatch.setattr(cli, "_build", refuse)


def test_fit_refuses_an_out_under_a_file_before_training(capsys, trained, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("precious")
    _no_training(monkeypatch)
    status, err = _main(capsys, "fit", "--data", trained / "good.csv", "--target", "y",
                        "--out", tmp_path / "notes.txt" / "model", *FAST)
    assert status == 2 and "notes.txt is a file, not a folder" in err, err
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_fit_refuses_an_unwritable_out_before_training(capsys, trained, tmp_path, monkeypatch):
    def no_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    _no_training(monkeypatch)
    monkeypatch.setattr(cli.tempfile, "TemporaryDirectory", no_write)
    status, err = _main(capsys, "fit", "--data", trained / "good.csv", "--target", "y",
                        "--out", tmp_path / "model", *FAST)
    assert status == 2 and "cannot write in" in err and "Permission denied" in err, err


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_other_commands_refuse_an_output_under_a_file(capsys, trained, tmp_path, command):
    (tmp_path / "notes.txt").write_text("precious")
    target = tmp_path / "notes.txt" / "out"
    args = {
        "predict": ["--data", trained / "good.csv", "--output", target],
        "evaluate": ["--data", trained / "good.csv", "--target", "y", "--json", target],
        "export": ["--out", target],
    }[command]
    status, err = _main(capsys, command, "--model", trained / "model", *args)
    assert status == 2 and "is a file, not a folder" in err, err


def test_a_diverged_run_names_the_learning_rate_and_keeps_the_old_model(capsys, trained, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    before = {}
    for name in ("model.keras", "report.json"):
        before[name] = (trained / "model" / name).read_bytes()
        (out / name).write_bytes(before[name])
    status, err = _main(capsys, "fit", "--data", trained / "good.csv", "--target", "y", "--out", out, "--force",
                        "--epochs", "30", "--hidden", "8", "--samples", "4", "--learning-rate", "1e8")
    assert status == 2 and "training diverged" in err and "--learning-rate" in err, err
    assert "drop or impute" not in err
    assert {name: (out / name).read_bytes() for name in before} == before  # the previous model is kept
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("report.json", "{oops", "report.json is damaged or not written by 'tfp-bnn fit'"),
        ("report.json", '{"task": "regression"}', "(no features, target, class_names)"),
        ("model.keras", "not a model", "model.keras cannot be loaded"),
    ],
)
@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_a_damaged_model_folder_is_one_line_and_exit_status_2(capsys, trained, tmp_path, command, name, content,
                                                              message):
    model = tmp_path / "model"
    model.mkdir()
    for file in ("model.keras", "report.json"):
        (model / file).write_bytes((trained / "model" / file).read_bytes())
    (model / name).write_text(content)
    args = {
        "predict": ["--data", trained / "good.csv", "--output", tmp_path / "p.csv"],
        "evaluate": ["--data", trained / "good.csv", "--target", "y"],
        "export": ["--out", tmp_path / "served"],
    }[command]
    status, err = _main(capsys, command, "--model", model, *args)
    assert status == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_semicolon_file_names_its_separator_and_the_option_reads_it(capsys, trained, tmp_path):
    text = (trained / "good.csv").read_text()
    semicolons = _csv(tmp_path / "semi.csv", text.replace(",", ";"))
    tabs = _csv(tmp_path / "tabs.tsv", text.replace(",", "\t"))
    status, err = _main(capsys, "fit", "--data", semicolons, "--target", "y", "--out", tmp_path / "m", *FAST)
    assert status == 2 and "seems separated by ';'" in err and "--delimiter ';'" in err, err
    status, err = _main(capsys, "fit", "--data", tabs, "--target", "y", "--out", tmp_path / "m", *FAST)
    assert status == 2 and "--delimiter 'tab'" in err, err
    assert cli.main(["fit", "--data", str(semicolons), "--target", "y", "--delimiter", ";",
                     "--out", str(tmp_path / "m"), *FAST]) == 0
    assert cli.main(["predict", "--model", str(tmp_path / "m"), "--data", str(tabs), "--delimiter", "tab",
                     "--output", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 41


def test_a_file_without_header_row_says_so(tmp_path):
    path = _csv(tmp_path / "no_header.csv", "0,0,1\n1,2,3\n4,5,6\n")
    with pytest.raises(data.DataError, match="add a header row"):
        data.load_csv(path, "y")
    path = _csv(tmp_path / "no_header2.csv", "0.5,1.5,2.5\n1,2,3\n4,5,6\n")
    with pytest.raises(data.DataError, match="add a header row"):
        data.load_csv(path, "2")
    with pytest.raises(data.DataError, match="add a header row"):
        data.load_features(path, ["x1"])
    # A header of numbers that are names (pandas' default 0, 1, 2) still works.
    assert data.load_csv(_csv(tmp_path / "named.csv", "0,1,2\n1,2,3.5\n4,5,6.5\n7,8,9.1\n"), "2").x.shape == (3, 2)


def test_mixed_text_in_a_numeric_target_suggests_the_task(tmp_path):
    path = _csv(tmp_path / "mixed.csv", "a,y\n1,1\n2,2\n3,cat\n4,1\n")
    with pytest.raises(data.DataError, match=r"line 4, column 'y': 'cat' is not a number.*--task classification"):
        data.load_csv(path, "y")


def test_fit_refuses_a_seed_numpy_cannot_take_by_the_option_name(capsys, trained, tmp_path, monkeypatch):
    _no_training(monkeypatch)
    status, err = _main(capsys, "fit", "--data", trained / "good.csv", "--target", "y", "--out", tmp_path / "m",
                        "--seed", 2**32)
    assert status == 2 and "--seed must be below 2**32, got 4294967296." in err, err


def test_force_never_deletes_a_folder_of_other_runs_or_files(capsys, trained, tmp_path):
    runs = tmp_path / "runs"
    (runs / "houses").mkdir(parents=True)
    for name in ("model.keras", "report.json"):
        (runs / "houses" / name).write_bytes((trained / "model" / name).read_bytes())
    (runs / "NOTES.md").write_text("precious")
    status, err = _main(capsys, "fit", "--data", trained / "good.csv", "--target", "y", "--out", runs, "--force",
                        *FAST)
    assert status == 2 and "--force replaces only a fit's folder" in err, err
    assert (runs / "NOTES.md").read_text() == "precious" and (runs / "houses" / "model.keras").exists()
    # A fit's own folder is still replaced.
    assert cli.main(["fit", "--data", str(trained / "good.csv"), "--target", "y", "--out", str(runs / "houses"),
                     "--force", *FAST]) == 0


def test_outputs_get_the_permissions_of_the_umask_not_private_temporary_ones(capsys, trained, tmp_path):
    mask = os.umask(0o022)
    try:
        out, predictions = tmp_path / "model", tmp_path / "p.csv"
        assert cli.main(["fit", "--data", str(trained / "good.csv"), "--target", "y", "--out", str(out), *FAST]) == 0
        assert cli.main(["predict", "--model", str(out), "--data", str(trained / "good.csv"),
                         "--output", str(predictions)]) == 0
        assert cli.main(["evaluate", "--model", str(out), "--data", str(trained / "good.csv"), "--target", "y",
                         "--json", str(tmp_path / "m.json")]) == 0
    finally:
        os.umask(mask)
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)
    assert oct(predictions.stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "m.json").stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_folder_as_file_output_is_refused_the_same_way_with_or_without_force(capsys, trained, tmp_path, command):
    (tmp_path / "results").mkdir()
    args = {
        "predict": ["--data", trained / "good.csv", "--output", tmp_path / "results"],
        "evaluate": ["--data", trained / "good.csv", "--target", "y", "--json", tmp_path / "results"],
    }[command]
    for force in ([], ["--force"]):  # not "pass --force" and then, after the work, "is a folder"
        status, err = _main(capsys, command, "--model", trained / "model", *args, *force)
        assert status == 2 and "results is a folder; give a file name." in err, err


def test_export_into_a_writable_model_folder_of_a_read_only_base(trained, tmp_path, monkeypatch, capsys):
    base = tmp_path / "models"
    (base / "gap").mkdir(parents=True)  # the server's folder: BASE read-only, BASE/NAME the user's
    real = tempfile.TemporaryDirectory

    def read_only_base(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == base.resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(cli.tempfile, "TemporaryDirectory", read_only_base)
    status = cli.main(["export", "--model", str(trained / "model"), "--out", str(base / "gap"), "--samples", "2"])
    assert status == 0, capsys.readouterr().err
    assert (base / "gap" / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("name", ["ratio|usd", "dose;mg"])
def test_a_one_column_file_whose_name_holds_a_separator_is_read(tmp_path, name):
    path = tmp_path / "new.csv"
    path.write_text(f'"{name}"\n1\n2.5\n')
    np.testing.assert_array_equal(data.load_features(path, [name]).ravel(), [1.0, 2.5])
    np.testing.assert_array_equal(data.load_target(path, name), [1.0, 2.5])
    tsv = tmp_path / "new.tsv"
    tsv.write_text("income, USD\n1\n2.5\n")
    np.testing.assert_array_equal(data.load_features(tsv, ["income, USD"], delimiter="\t").ravel(), [1.0, 2.5])
    # A file of another separator is still named as such.
    wrong = tmp_path / "semi.csv"
    wrong.write_text("a;b;y\n1;2;3\n")
    with pytest.raises(data.DataError, match="seems separated by ';'"):
        data.load_features(wrong, ["a", "b"])
