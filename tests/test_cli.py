"""The ``tfp-bnn`` command line: fit -> predict -> evaluate end to end, and every kind of bad input.

Each command (fit, predict, evaluate) of the end-to-end runs, and a few bad
inputs, go through a real subprocess (``python -m tfp_bnn``) at least once, so
exit status, standard error and files are what a user sees. The other calls,
and the remaining bad inputs, call :func:`tfp_bnn.cli.main` in this process:
the same code path (``python -m tfp_bnn`` exits with what ``main`` returns)
without a TensorFlow start-up (~10 s) per call.
"""

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tf_keras

import tfp_bnn
from tfp_bnn import cli

FIT_FAST = ["--epochs", "60", "--hidden", "16", "--samples", "50", "--batch-size", "32"]
REGRESSION_COLUMNS = ["mean", "stddev", "aleatoric_stddev", "epistemic_stddev", "lower", "upper"]
CLASSES = ("alpha", "beta", "gamma")


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows


def _run(*args, cwd):
    """``python -m tfp_bnn ARGS`` in a fresh process, with the environment of a user's shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFP_BNN_DEBUG")}
    return subprocess.run(
        [sys.executable, "-m", "tfp_bnn", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


def _main(capsys, *args):
    """``cli.main`` in this process: (exit status, stderr)."""
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small CSV files: a regression (y = x1 - x2^2 + noise) and a 3-class problem with text labels."""
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(160, 2))
    y = x[:, 0] - x[:, 1] ** 2 + 0.1 * rng.normal(size=160)
    regression = _write_csv(folder / "regression.csv", ["x1", "x2", "y"], np.column_stack([x, y]).round(5))
    labels = np.digitize(x[:, 0] + 0.3 * x[:, 1], [-0.35, 0.35])
    classification = _write_csv(
        folder / "classes.csv", ["f1", "f2", "label"],
        [[*row.round(5), CLASSES[k]] for row, k in zip(x, labels)],
    )
    return {"folder": folder, "regression": regression, "classification": classification, "x": x, "y": y,
            "labels": labels}


# -- end to end, in a subprocess ----------------------------------------------------------------


def _main_quietly(*args):
    """``cli.main`` in this process, outside a test (module fixtures): (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def regression_run(files):
    # fit and one predict in a real process, as a user runs them; the second predict (the same seed
    # must give the same file, in another process) and evaluate in this one: the same ``cli.main``
    # without a TensorFlow start-up each (evaluate runs in a real process in the classification test).
    folder = files["folder"]
    out = folder / "reg_model"
    fit = _run("fit", "--data", files["regression"], "--target", "y", "--out", out, "--seed", "1", *FIT_FAST,
               cwd=folder)
    assert fit.returncode == 0, fit.stderr
    grid = _write_csv(folder / "grid.csv", ["x2", "x1"], [[0.0, v] for v in (-0.9, 0.0, 0.9, 3.0, 6.0)])
    predictions = [folder / "pred_a.csv", folder / "pred_b.csv"]
    run = _run("predict", "--model", out, "--data", grid, "--output", predictions[0], "--samples", "400",
               "--seed", "3", cwd=folder)
    assert run.returncode == 0, run.stderr
    status, _, err = _main_quietly("predict", "--model", out, "--data", grid, "--output", predictions[1],
                                   "--samples", "400", "--seed", "3")
    assert status == 0, err
    status, stdout, err = _main_quietly("evaluate", "--model", out, "--data", files["regression"], "--target", "y",
                                        "--json", folder / "reg_metrics.json", "--samples", "50")
    assert status == 0, err
    return {"out": out, "fit": fit, "predictions": predictions, "evaluate_stdout": stdout,
            "metrics": folder / "reg_metrics.json"}


def test_fit_writes_the_model_report_and_figure(files, regression_run):
    out = regression_run["out"]
    assert (out / "model.keras").stat().st_size > 0
    assert (out / "uncertainty.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "regression" and report["features"] == ["x1", "x2"] and report["target"] == "y"
    assert set(report["metrics"]) == {"train", "validation"}
    validation = report["metrics"]["validation"]
    assert set(validation) == {"rmse", "nll", "coverage_95", "width_95", "n"}
    assert validation["n"] == 32 and report["metrics"]["train"]["n"] == 128
    # It learnt something: well below the spread of y, and the intervals are honest-ish.
    assert validation["rmse"] < 0.5 * np.std(files["y"])
    assert 0.8 <= validation["coverage_95"] <= 1.0
    history = report["history"]
    assert len(history["loss"]) == 60
    np.testing.assert_allclose(np.add(history["nll"], history["kl"]), history["loss"], rtol=1e-5, atol=1e-6)


def test_predict_writes_one_row_per_input_with_the_uncertainty_columns(regression_run):
    rows = _read_csv(regression_run["predictions"][0])
    assert list(rows[0]) == REGRESSION_COLUMNS
    values = np.array([[float(row[c]) for c in REGRESSION_COLUMNS] for row in rows])
    assert values.shape == (5, 6)
    mean, stddev, aleatoric, epistemic, lower, upper = values.T
    np.testing.assert_allclose(stddev**2, aleatoric**2 + epistemic**2, rtol=1e-4)
    assert np.all(lower < mean) and np.all(mean < upper)
    # Inputs are x1 = -0.9, 0, 0.9 (in the data), 3 and 6 (outside): epistemic std grows outside.
    assert epistemic[4] > epistemic[3] > 2 * epistemic[:3].max()


def test_predict_columns_are_tfp_bnn_predict_of_the_saved_model(regression_run):
    # Each column by name: the checks above hold if aleatoric and epistemic were swapped.
    model = tf_keras.models.load_model(regression_run["out"] / "model.keras")
    grid = np.array([[v, 0.0] for v in (-0.9, 0.0, 0.9, 3.0, 6.0)], np.float32)  # x1, x2: the training order
    result = tfp_bnn.predict(model, grid, num_samples=400, seed=3)
    rows = _read_csv(regression_run["predictions"][0])
    for column in REGRESSION_COLUMNS:
        np.testing.assert_allclose([float(row[column]) for row in rows], getattr(result, column).ravel(),
                                   rtol=1e-6, atol=1e-7, err_msg=column)


def test_predict_with_a_seed_is_reproducible(regression_run):
    first, second = regression_run["predictions"]
    assert first.read_text() == second.read_text()


def test_evaluate_prints_and_writes_the_metrics(files, regression_run):
    metrics = json.loads(regression_run["metrics"].read_text())
    assert set(metrics) == {"rmse", "nll", "coverage_95", "width_95", "n"} and metrics["n"] == 160
    for name in ("rmse", "nll", "coverage_95", "width_95"):
        assert name in regression_run["evaluate_stdout"]
    # The same numbers as the report's train/validation metrics, weighted by their sizes (same seed, T).
    report = json.loads((regression_run["out"] / "report.json").read_text())["metrics"]
    pooled_mse = (report["train"]["rmse"] ** 2 * 128 + report["validation"]["rmse"] ** 2 * 32) / 160
    assert metrics["rmse"] == pytest.approx(np.sqrt(pooled_mse), rel=0.05)


@pytest.fixture(scope="module")
def classification_model(files):
    # In this process: the regression fit above runs in a real one.
    out = files["folder"] / "class_model"
    status, _, err = _main_quietly("fit", "--data", files["classification"], "--target", "label", "--out", out,
                                   *FIT_FAST)
    assert status == 0, err
    return out


def test_classification_end_to_end(capsys, files, classification_model):
    folder, out = files["folder"], classification_model
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "classification" and report["class_names"] == list(CLASSES)
    assert set(report["metrics"]["validation"]) == {"accuracy", "nll", "brier", "ece", "n"}

    unlabelled = _write_csv(folder / "new.csv", ["f1", "f2"], files["x"][:20].round(5))
    status, err = _main(capsys, "predict", "--model", out, "--data", unlabelled, "--output",
                        folder / "classes_pred.csv", "--seed", "0")
    assert status == 0, err
    rows = _read_csv(folder / "classes_pred.csv")
    assert list(rows[0]) == [f"prob_{c}" for c in CLASSES] + [
        "predicted_class", "entropy", "expected_entropy", "mutual_information"]
    probs = np.array([[float(row[f"prob_{c}"]) for c in CLASSES] for row in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [row["predicted_class"] for row in rows] == [CLASSES[k] for k in probs.argmax(axis=1)]
    entropy, expected, mutual = (np.array([float(r[c]) for r in rows])
                                 for c in ("entropy", "expected_entropy", "mutual_information"))
    np.testing.assert_allclose(entropy, expected + mutual, atol=1e-5)
    result = tfp_bnn.predict(tf_keras.models.load_model(out / "model.keras"), files["x"][:20].round(5),
                             num_samples=100, seed=0)
    for column, field in (("entropy", "predictive_entropy"), ("expected_entropy", "expected_entropy"),
                          ("mutual_information", "mutual_information")):
        np.testing.assert_allclose([float(r[column]) for r in rows], getattr(result, field), atol=1e-6, err_msg=column)
    np.testing.assert_allclose(probs, result.probabilities, atol=1e-6)
    # Most predictions agree with the true labels of this easy problem.
    assert np.mean(probs.argmax(axis=1) == files["labels"][:20]) >= 0.8

    evaluate = _run("evaluate", "--model", out, "--data", files["classification"], "--target", "label",
                    cwd=folder)
    assert evaluate.returncode == 0, evaluate.stderr
    assert "accuracy" in evaluate.stdout and "ece" in evaluate.stdout


@pytest.mark.parametrize("args, message", [
    (["fit", "--data", "missing.csv", "--target", "y", "--out", "m"], "missing.csv: file not found"),
    (["predict", "--model", "nowhere", "--data", "x.csv", "--output", "p.csv"], "nowhere/report.json not found"),
])
def test_bad_input_in_a_real_process_is_one_line_and_exit_status_2(files, args, message):
    run = _run(*args, cwd=files["folder"])
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "fast"])
def test_fit_refuses_a_learning_rate_that_is_not_a_positive_number(capsys, tmp_path, value):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit", "--out", str(tmp_path / "run"), "--learning-rate", value])
    assert exit_info.value.code == 2
    assert "argument --learning-rate: must be a positive number, got" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_metrics_table_columns_stay_apart_for_large_values(capsys):
    cli._print_metrics({"test": {"rmse": 53.87473899239, "nll": 23923.61127, "crps": 1.23e12, "n": 7}})
    header, row = capsys.readouterr().out.splitlines()
    assert row.split() == ["test", "(7)", "53.8747", "23923.6113", "1.23e+12"]
    assert len(row) == len(header) == 18 + 3 * 13


def test_metrics_table_shows_the_digits_of_tiny_values(capsys):
    # Targets in units of 1e-6: the RMSE and the interval width printed as 0.0000.
    cli._print_metrics({"test": {"rmse": 2.0966e-07, "nll": -14.0415, "coverage_95": 0.9584, "width_95": 8.3348e-07,
                                 "ece": 0.0, "n": 5}})
    header, row = capsys.readouterr().out.splitlines()
    assert row.split() == ["test", "(5)", "2.097e-07", "-14.0415", "0.9584", "8.335e-07", "0.0000"]
    assert len(row) == len(header) == 18 + 5 * 13


def test_every_command_has_help(capsys):
    for command, option in (("fit", "--estimator"), ("predict", "--samples"), ("evaluate", "--json")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert option in capsys.readouterr().out


# -- bad input: one line, exit status 2, nothing touched ------------------------------------------


@pytest.fixture
def workdir(tmp_path, files, regression_run, classification_model):
    """A folder with good and bad CSV files and the two trained models."""
    shutil.copytree(regression_run["out"], tmp_path / "model")
    x, y = files["x"], files["y"]
    good = np.column_stack([x, y]).round(5).astype(object)
    _write_csv(tmp_path / "good.csv", ["x1", "x2", "y"], good)
    with_nan = good.copy()
    with_nan[2, 1] = "nan"
    _write_csv(tmp_path / "nan.csv", ["x1", "x2", "y"], with_nan)
    with_inf = good.copy()
    with_inf[5, 0] = "inf"
    _write_csv(tmp_path / "inf.csv", ["x1", "x2", "y"], with_inf)
    text_target = good.copy()
    text_target[7, 2] = "n/a"
    _write_csv(tmp_path / "text_target.csv", ["x1", "x2", "y"], text_target)
    _write_csv(tmp_path / "one_row.csv", ["x1", "x2", "y"], good[:1])
    _write_csv(tmp_path / "other_features.csv", ["x1", "x3", "y"], good)
    _write_csv(tmp_path / "extra_feature.csv", ["x1", "x2", "x3"], good)
    labelled = [[*row[:2], CLASSES[k]] for row, k in zip(good, files["labels"])]
    labelled[4][2] = "delta"
    _write_csv(tmp_path / "unknown_class.csv", ["f1", "f2", "label"], labelled)
    shutil.copytree(classification_model, tmp_path / "class_model")
    return tmp_path


BAD_INPUTS = [
    # (arguments, message); "{d}" is the work folder
    (["fit", "--data", "{d}/absent.csv", "--target", "y"], "absent.csv: file not found"),
    (["fit", "--data", "{d}/good.csv", "--target", "price"], "no column 'price'; the columns are 'x1', 'x2', 'y'"),
    (["fit", "--data", "{d}/text_target.csv", "--target", "y", "--task", "regression"],
     "line 9, column 'y': 'n/a' is not a number"),
    (["fit", "--data", "{d}/nan.csv", "--target", "y"], "line 4, column 'x2': 'nan' is not a finite number"),
    (["fit", "--data", "{d}/inf.csv", "--target", "y"], "line 7, column 'x1': 'inf' is not a finite number"),
    (["fit", "--data", "{d}/one_row.csv", "--target", "y"], "1 data row(s) below the header; need at least 2"),
    (["fit", "--data", "{d}/good.csv"], "--data needs --target COLUMN"),
    (["fit", "--data", "{d}/good.csv", "--target", "y", "--inference", "mc_dropout", "--estimator", "flipout"],
     "--estimator goes with --inference variational, not mc_dropout"),
    (["fit", "--data", "{d}/good.csv", "--target", "y", "--inference", "ensemble", "--samples", "12"],
     "--samples 12 is not a multiple of --members 5"),
    (["fit", "--data", "{d}/good.csv", "--target", "y", "--members", "3"],
     "--members goes with --inference ensemble, not variational"),
    (["predict", "--model", "{d}/model", "--data", "{d}/nan.csv"], "line 4, column 'x2': 'nan' is not a finite"),
    (["predict", "--model", "{d}/model", "--data", "{d}/other_features.csv"], "feature column(s) 'x2' missing"),
    (["predict", "--model", "{d}/model", "--data", "{d}/extra_feature.csv"],
     "column(s) 'x3' are not features of the model ('x1', 'x2'); drop them"),
    (["predict", "--model", "{d}/model", "--data", "{d}/good.csv", "--level", "1.5"],
     "--level must lie strictly between 0 and 1"),
    (["evaluate", "--model", "{d}/class_model", "--data", "{d}/unknown_class.csv", "--target", "label"],
     "line 6, column 'label': label 'delta' is not one of the classes 'alpha', 'beta', 'gamma'"),
    (["evaluate", "--model", "{d}/model", "--data", "{d}/good.csv", "--target", "z"], "no column 'z'"),
]
OUTPUT_OPTION = {"fit": "--out", "predict": "--output", "evaluate": "--json"}


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=lambda v: v[0] if isinstance(v, list) else None)
def test_bad_input_is_one_clear_line_and_existing_output_survives(capsys, workdir, args, message):
    args = [a.format(d=workdir) for a in args]
    # The output exists and --force is given: a failure must still leave it as it was.
    existing = workdir / ("existing_dir" if args[0] == "fit" else "existing.out")
    if args[0] == "fit":
        existing.mkdir()
        (existing / "keep.txt").write_text("precious")
    else:
        existing.write_text("precious")
    status, err = _main(capsys, *args, OUTPUT_OPTION[args[0]], existing, "--force")
    assert status == 2
    assert message in err, err
    assert err.startswith(f"tfp-bnn {args[0]}: error: ") and len(err.strip().splitlines()) == 1
    kept = existing / "keep.txt" if args[0] == "fit" else existing
    assert kept.read_text() == "precious"
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".")) == []  # no staging left


@pytest.mark.parametrize("command", ["fit", "predict", "evaluate"])
def test_existing_output_is_never_replaced_without_force(capsys, workdir, command):
    target = workdir / ("out_dir" if command == "fit" else "out.file")
    if command == "fit":
        target.mkdir()
        (target / "keep.txt").write_text("precious")
    else:
        target.write_text("precious")
    args = {
        "fit": ["fit", "--data", workdir / "good.csv", "--target", "y", "--out", target],
        "predict": ["predict", "--model", workdir / "model", "--data", workdir / "good.csv", "--output", target],
        "evaluate": ["evaluate", "--model", workdir / "model", "--data", workdir / "good.csv", "--target", "y",
                     "--json", target],
    }[command]
    status, err = _main(capsys, *args)
    assert status == 2 and f"{target} already exists; pass --force to replace it." in err
    assert (target / "keep.txt" if command == "fit" else target).read_text() == "precious"


def test_force_replaces_an_existing_prediction(capsys, workdir):
    target = workdir / "pred.csv"
    target.write_text("old")
    status, _ = _main(capsys, "predict", "--model", workdir / "model", "--data", workdir / "good.csv",
                      "--output", target, "--force", "--samples", "5", "--seed", "0")
    assert status == 0
    assert list(_read_csv(target)[0]) == REGRESSION_COLUMNS and len(_read_csv(target)) == 160


@pytest.mark.parametrize("inference", ["mc_dropout", "ensemble"])
def test_fit_with_the_baselines_and_predict_their_epistemic_uncertainty(capsys, workdir, inference):
    out = workdir / inference
    status, err = _main(capsys, "fit", "--data", workdir / "good.csv", "--target", "y", "--out", out,
                        "--inference", inference, "--epochs", "40", "--hidden", "16", "--samples", "50")
    assert status == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["inference"] == inference and report["model"]["estimator"] is None
    assert report["model"]["members"] == (5 if inference == "ensemble" else None)
    assert report["metrics"]["validation"]["rmse"] < np.std(np.loadtxt(workdir / "good.csv", delimiter=",",
                                                                     skiprows=1)[:, 2])
    status, err = _main(capsys, "predict", "--model", out, "--data", workdir / "good.csv", "--output",
                        workdir / f"{inference}.csv", "--samples", "50", "--seed", "0")
    assert status == 0, err
    epistemic = np.array([float(row["epistemic_stddev"]) for row in _read_csv(workdir / f"{inference}.csv")])
    assert np.all(epistemic > 0)
    if inference == "ensemble":  # 5 members: 12 draws cannot weigh them equally, refused before predicting
        status, err = _main(capsys, "predict", "--model", out, "--data", workdir / "good.csv", "--output",
                            workdir / "twelve.csv", "--samples", "12")
        assert status == 2 and not (workdir / "twelve.csv").exists()
        assert err.strip() == ("tfp-bnn predict: error: --samples 12 is not a multiple of the ensemble's 5 members: "
                               "every network of the ensemble must be drawn equally often; e.g. --samples 10.")


def test_force_never_deletes_the_working_folder_or_the_input_data(capsys, workdir, monkeypatch):
    (workdir / "keep.txt").write_text("precious")
    monkeypatch.chdir(workdir)
    for out in (".", "..", str(workdir)):
        status, err = _main(capsys, "fit", "--data", "good.csv", "--target", "y", "--out", out, "--force")
        assert status == 2 and "is the current folder or holds it; write to a new folder" in err, err
    (workdir / "runs").mkdir()
    shutil.copy(workdir / "good.csv", workdir / "runs" / "train.csv")
    status, err = _main(capsys, "fit", "--data", "runs/train.csv", "--target", "y", "--out", "runs", "--force")
    assert status == 2 and "runs holds runs/train.csv, which --force would delete" in err, err
    (workdir / "link").symlink_to(workdir / "runs")
    status, err = _main(capsys, "fit", "--data", "good.csv", "--target", "y", "--out", "link", "--force")
    assert status == 2 and "link is a symbolic link" in err, err
    assert (workdir / "keep.txt").read_text() == "precious" and (workdir / "runs" / "train.csv").exists()
    assert (workdir / "good.csv").exists()


@pytest.mark.parametrize("command", ["fit", "predict", "evaluate"])
def test_force_never_replaces_an_input_named_as_the_output(capsys, workdir, command):
    data = workdir / "inputs.csv"
    shutil.copy(workdir / "good.csv", data)
    before = {path: path.read_bytes() for path in (data, workdir / "model" / "model.keras",
                                                  workdir / "model" / "report.json")}
    common = ["--model", workdir / "model", "--data", data, "--samples", "5"]
    if command == "fit":
        cases = [["fit", "--data", data, "--target", "y", "--out", data, "--epochs", "1"]]
    else:
        option = OUTPUT_OPTION[command]
        extra = ["--target", "y"] if command == "evaluate" else []
        cases = [[command, *common, *extra, option, output]
                 for output in (data, workdir / "model" / "report.json", workdir / "model" / "model.keras")]
        # A folder holding an input, as a file output: the way out is a file name.
        status, err = _main(capsys, *cases[0][:-1], workdir / "model", "--force")
        assert status == 2 and "is a folder holding the input" in err and "give a file name" in err, err
    for args in cases:
        for force in ([], ["--force"]):  # the same answer, not "pass --force" and then a refusal
            status, err = _main(capsys, *args, *force)
            assert status == 2 and f"{args[args.index(OUTPUT_OPTION[command]) + 1]} is the input" in err, err
    assert {path: path.read_bytes() for path in before} == before


def test_fit_without_matplotlib_does_not_claim_a_figure(capsys, workdir, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    out = workdir / "no_figure"
    status = cli.main([str(a) for a in ("fit", "--data", workdir / "good.csv", "--target", "y", "--out", out,
                                        "--epochs", "1", "--hidden", "4", "--samples", "5")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "matplotlib is not installed" in captured.err and not (out / "uncertainty.png").exists()
    assert f"Wrote {out / 'model.keras'} and {out / 'report.json'}\n" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["model.keras", "report.json"]


@pytest.mark.parametrize("args, message", [
    (["fit", "--epochs", "abc"], "argument --epochs: must be a positive integer, got 'abc'"),
    (["fit", "--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["predict", "--model", "m", "--data", "d.csv", "--output", "o.csv", "--seed", "x"],
     "argument --seed: must be an integer >= 0, got 'x'"),
])
def test_argument_errors_name_the_option(capsys, tmp_path, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args + (["--out", str(tmp_path / "run")] if args[0] == "fit" else []))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_task_without_data_is_refused(capsys, tmp_path):
    status, err = _main(capsys, "fit", "--task", "classification", "--out", tmp_path / "run")
    assert status == 2 and "--task goes with --data; the built-in data set is a regression." in err
    assert not (tmp_path / "run").exists()


def test_predictions_keep_the_digits_of_float32(tmp_path):
    path = tmp_path / "p.csv"
    cli._write_csv(path, {"mean": np.array([1234567.9], np.float32), "lower": np.array([1234566.8], np.float32)})
    (row,) = _read_csv(path)
    assert np.float32(row["mean"]) == np.float32(1234567.9) and np.float32(row["lower"]) == np.float32(1234566.8)


def test_a_feature_constant_in_training_gets_scale_1():
    x = np.column_stack([np.linspace(-1, 1, 50), np.ones(50), np.full(50, 1e6)])
    np.testing.assert_allclose(cli._feature_scale(x), [x[:, 0].std(), 1.0, 1.0])


def test_a_feature_of_tiny_scale_keeps_its_scale():
    # Constant is judged relative to the mean, as make_regressor judges it: a column of +-1e-7
    # around 0 varies (the CLI's own rule had scaled it, and a target like it, by 1).
    x = np.column_stack([np.linspace(-1e-7, 1e-7, 50), np.full(50, 0.1, np.float32)])
    np.testing.assert_allclose(cli._feature_scale(x), [x[:, 0].std(), 1.0], rtol=1e-12)


def test_scales_of_float32_columns_beyond_1e19_are_finite():
    # In float32 the squares overflow: a target of scale 1e20 was refused as "target_scale inf".
    column = (np.linspace(-1, 1, 50) * 1e20).astype(np.float32)
    np.testing.assert_allclose(cli._feature_scale(column[:, None]), [column.astype(np.float64).std()], rtol=1e-12)


def test_classification_nll_is_the_exact_mixture_nll_of_confidently_wrong_predictions():
    # Logits 0, 20 and 40 apart: the true classes' log-probabilities are -0.69, -40 and -80. The
    # probabilities' NLL clipped them at 1e-12 (27.6 nats each): 18.65 instead of 40.23.
    model = tfp_bnn.make_classifier((1,), 2, regime="probabilistic", hidden_units=())
    model.layers[-2].set_weights([np.array([[20.0, -20.0]], np.float32), np.zeros(2, np.float32)])
    x, y = np.array([[0.0], [1.0], [2.0]], np.float32), np.array([0.0, 1.0, 1.0])
    logits = x[:, 0] * 40.0  # class 0 minus class 1
    expected = np.mean([np.log1p(np.exp(-logits[0])), np.logaddexp(0, logits[1]), np.logaddexp(0, logits[2])])
    assert cli._metrics(model, x, y, "classification", 1, 0)["nll"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("rows, batch_size, learning_rate, inference, epochs", [
    (120, 100, 3e-3, "variational", 2500),  # iris after the validation split: 2 steps per epoch, 5,000 steps
    (120, 32, 3e-3, "variational", 1250),  # 4 steps per epoch
    (40, 100, 1e-2, "variational", 1500),  # one step per epoch (the batch is the rows), 15 / 1e-2 steps
    (1600, 100, 3e-3, "variational", 500),  # the built-in set: 16 steps per epoch, 8,000 steps in 500 epochs
    (120, 100, 3e-3, "mc_dropout", 500),
    (120, 100, 3e-3, "ensemble", 500),
])
def test_default_epochs_give_a_variational_posterior_15_over_the_learning_rate_steps(
        rows, batch_size, learning_rate, inference, epochs):
    args = cli._parser().parse_args(["fit", "--out", "unused", "--batch-size", str(batch_size),
                                     "--learning-rate", str(learning_rate), "--inference", inference])
    assert args.epochs is None
    assert cli._default_epochs(rows, args) == epochs


@pytest.mark.parametrize("epochs, every", [(60, 1), (100, 1), (250, 3), (2500, 25), (5001, 51)])
def test_fit_validates_at_most_100_times_the_last_epoch_included(epochs, every):
    validated = cli._validation_epochs(epochs)
    assert len(validated) <= cli.MAX_VALIDATIONS + 1 and validated[-1] == epochs
    assert validated[:-1] == list(range(every, epochs, every))[: len(validated) - 1]


def test_validating_less_often_leaves_training_unchanged(capsys, tmp_path, files, monkeypatch):
    # Keras builds a new iterator per validation (~18 ms): fit scores the validation rows at most 100
    # times. The training itself must not notice: the same losses and final metrics. (The val_* values
    # are one weight draw each, from a generator each validation advances: not comparable draw by draw.)
    def fit(out):
        status, err = _main(capsys, "fit", "--data", files["regression"], "--target", "y", "--out", out,
                            "--epochs", "101", "--hidden", "8", "--samples", "20", "--seed", "3")
        assert status == 0, err
        return json.loads((out / "report.json").read_text())

    sparse = fit(tmp_path / "sparse")
    monkeypatch.setattr(cli, "MAX_VALIDATIONS", 10**6)
    every = fit(tmp_path / "every")
    assert every["validation_epochs"] == list(range(1, 102))
    # 101 epochs: every 2nd, and the last (an odd one) too
    assert sparse["validation_epochs"][-2:] == [100, 101] and len(sparse["validation_epochs"]) == 51
    assert len(sparse["history"]["val_loss"]) == 51 and len(sparse["history"]["loss"]) == 101
    np.testing.assert_array_equal(sparse["history"]["loss"], every["history"]["loss"])
    assert sparse["metrics"] == every["metrics"]


@pytest.mark.slow  # 5,000 epochs of one step: minutes, most of it Keras's per-epoch work
def test_default_epochs_on_small_data_train_an_epistemic_signal(tmp_path):
    # 60 rows of two blobs. 500 epochs (the old default: 500 steps) left the posterior at its narrow
    # start: mutual information ~1e-5 nats everywhere. The default now trains 5,000 steps.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    x = rng.normal(size=(60, 2)) + np.where(labels[:, None] == 1, 1.5, -1.5)
    data = _write_csv(tmp_path / "blobs.csv", ["a", "b", "label"], [[*row.round(4), k] for row, k in zip(x, labels)])
    fit = _run("fit", "--data", data, "--target", "label", "--out", tmp_path / "run", "--hidden", "16", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["model"]["epochs"] == 5000 and len(report["history"]["kl"]) == 5000
    model = tf_keras.models.load_model(tmp_path / "run" / "model.keras")
    far = x.mean(0) + 8 * x.std(0) * rng.standard_normal((300, 2))
    at_data, off_data = (tfp_bnn.predict(model, points.astype("float32"), num_samples=100, seed=0).mutual_information
                         for points in (x, far))
    assert at_data.mean() > 0.01 and off_data.mean() > 2 * at_data.mean()
