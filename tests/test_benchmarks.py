"""Smoke runs of the benchmark scripts on tiny settings: they run and write the documented JSON.

The full runs are ``make bench`` (outside ``make test``); these only check that
every code path works and that the output files hold the documented keys.
"""

import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def uci():
    module = _load("uci")
    # Every split in this process, not in a new one (~10 s of importing TensorFlow each): the new
    # processes themselves are tested by test_uci_splits_side_by_side_give_the_results_of_one_at_a_time.
    module.run_split_in_new_process = _in_this_process(module)
    return module


_SPLITS = {}  # run_split's JSON answer by its arguments: tests that read the same split share one run


def _in_this_process(uci):
    """``run_split_in_new_process`` in this process: the same answer (run_split sets its own seeds), as JSON."""
    new_process = uci.run_split_in_new_process

    def run(*args):
        key = json.dumps([str(arg) for arg in args])
        if key not in _SPLITS:
            _SPLITS[key] = json.dumps(uci.run_split(*args))
        return tuple(json.loads(_SPLITS[key]))

    run.new_process = new_process
    return run


def _uci_folder(root, name="tiny", rows=80, num_test=16, splits=2, seed=0):
    """A data set in the layout of ../shared/data/uci: data.txt, index files, n_hidden.txt."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    x[:, 2] = 5.0  # a constant column, as naval's column 8: its std 0 must not divide
    y = 100 + 10 * (x[:, 0] - 0.5 * x[:, 1]) + rng.normal(size=rows)
    np.savetxt(folder / "data.txt", np.column_stack([x, y]))
    (folder / "index_features.txt").write_text("0\n1\n2\n")
    (folder / "index_target.txt").write_text("3\n")
    (folder / "n_hidden.txt").write_text("8\n")
    for split in range(splits):
        order = rng.permutation(rows)
        np.savetxt(folder / f"index_train_{split}.txt", order[num_test:], fmt="%d")
        np.savetxt(folder / f"index_test_{split}.txt", order[:num_test], fmt="%d")
    return folder


@pytest.fixture(scope="module")
def uci_data(tmp_path_factory):
    """Two folders of data sets: 80 rows (3 splits) for the quick runs, 300 rows for the search's curves."""
    root = tmp_path_factory.mktemp("uci_data")
    _uci_folder(root / "small", splits=3)
    _uci_folder(root / "small", name="two", seed=2)
    _uci_folder(root / "large", rows=300, num_test=60)
    return root


_RUNS = {}


def _documented_run(uci, uci_data, tmp_path_factory, method, folds):
    """One ``uci.py`` run of split 0 of "tiny" (JSON, markdown, report), shared by the tests that read it.

    The 5-fold runs and bnn's holdout run use the 300 rows, whose curves the search tests
    read (bnn: up to 64 epochs, cross-validated: up to 16); the other holdout runs the 80 rows.
    """
    if (method, folds) not in _RUNS:
        out = tmp_path_factory.mktemp(f"uci_{method}_{folds}")
        large = folds != 1 or method == "bnn"
        epochs = ("64" if folds == 1 else "16") if large else "2"
        status = uci.main([
            "--data-dir", str(uci_data / ("large" if large else "small")), "--datasets", "tiny", "--splits", "1",
            "--method", method, "--max-epochs", epochs, "--samples", "100",
            "--json", str(out / "uci.json"), "--markdown", str(out / "uci.md"),
            *([] if folds == uci.FOLDS else ["--cross-validation-rows", "0"]),
        ])
        _RUNS[method, folds] = status, out / "uci.json", out / "uci.md"
    status, out_json, out_md = _RUNS[method, folds]
    assert status == 0
    return out_json, out_md, json.loads(out_json.read_text())


UCI_KEYS = {
    "rmse_mean", "rmse_se", "test_ll_mean", "test_ll_se", "rmse", "test_ll", "seconds",
    "seconds_per_split", "hyperparameters", "selection", "num_splits",
}


# 64 training rows choose by 5-fold cross-validation unless told otherwise (--cross-validation-rows 0:
# the 20 % holdout). Both paths run for every method; those that train a grid five times are slow.
@pytest.mark.parametrize("method, folds", [
    ("bnn", 1), ("mc_dropout", 1), ("ensemble", 1), ("ensemble", 5),
    pytest.param("bnn", 5, marks=pytest.mark.slow), pytest.param("mc_dropout", 5, marks=pytest.mark.slow),
])
def test_uci_benchmark_writes_the_documented_json_and_table(uci, uci_data, tmp_path_factory, method, folds,
                                                           tmp_path):
    out_json, out_md, report = _documented_run(uci, uci_data, tmp_path_factory, method, folds)
    assert report["method"] == method
    result = report["datasets"]["tiny"]
    assert UCI_KEYS <= set(result)
    assert result["num_splits"] == len(result["rmse"]) == len(result["test_ll"]) == len(result["seconds"]) == 1
    assert result["num_hidden"] == 8
    assert result["rmse_mean"] == pytest.approx(result["rmse"][0]) and result["rmse_se"] == 0.0
    assert result["rmse_mean"] > 0 and math.isfinite(result["test_ll_mean"])
    # Chosen on each split's validation rows, by the grid recorded beside it.
    assert len(result["hyperparameters"]) == len(result["selection"]) == 1
    assert {"epochs", "learning_rate", "batch_size", "head"} <= set(result["hyperparameters"][0])
    configurations = list(uci.configurations(method))
    assert len(configurations) == (len(uci.GRIDS[method]) if method == "bnn" else math.prod(
        len(v) for v in uci.GRIDS[method].values()))
    assert [trial["params"] for trial in result["selection"][0]["trials"]] == configurations
    assert result["grid"] == uci._recorded_grid(method)
    # Every configuration is reported with how often it was chosen (once in all, one split).
    counts = re.findall(r"×(\d+)", out_md.read_text().split("Chosen per split")[1])
    assert sum(map(int, counts)) == (1 if uci.GRIDS[method] else 0)  # one per grid key, or one in all
    assert "| tiny | 1 |" in out_md.read_text()
    assert "one hidden layer of 8 units," in out_md.read_text()  # the folder's n_hidden.txt, not a fixed 50
    # The report says how the choice was validated.
    assert result["selection"][0]["validation_folds"] == folds
    if folds == uci.FOLDS:
        assert "5-fold cross-validation" in result["tuned_on"] and "| tiny | 5-fold |" in out_md.read_text()
    else:
        assert "20 % of its training rows held out" in result["tuned_on"]
        assert "| tiny | last 20 % |" in out_md.read_text()
    # The tables can be rendered again from the JSON alone.
    assert uci.main(["--table-from", str(out_json), "--markdown", str(tmp_path / "again.md")]) == 0
    assert (tmp_path / "again.md").read_text() == out_md.read_text()


def test_uci_benchmark_scores_in_original_units(uci, uci_data, tmp_path_factory):
    """Targets around 100 with noise std 1: a standardised-unit RMSE would be far below 1."""
    _, _, report = _documented_run(uci, uci_data, tmp_path_factory, "bnn", 1)  # 240 training rows, up to 64 epochs
    result = report["datasets"]["tiny"]
    assert 1 <= result["selection"][0]["params"]["epochs"] <= 64
    assert 0.5 < result["rmse"][0] < 4.0, result["rmse"]
    assert -4.0 < result["test_ll"][0] < -1.0, result["test_ll"]  # N(0, 1) noise alone: -1.42


def test_uci_search_stops_after_patience_checkpoints_without_improvement(uci, uci_data, tmp_path_factory):
    """Each search run's curve ends at its best point or PATIENCE checkpoints after it."""
    _, _, report = _documented_run(uci, uci_data, tmp_path_factory, "bnn", 1)  # 240 training rows, up to 64 epochs
    (selection,) = report["datasets"]["tiny"]["selection"]
    assert selection["validation_folds"] == 1 and selection["max_epochs"] == 64
    for trial in selection["trials"]:
        scores = [point["test_ll"] for point in trial["curve"]]
        best = int(np.argmax(scores))
        assert trial["epochs"] == trial["curve"][best]["epochs"]
        assert len(scores) - 1 - best <= uci.PATIENCE
        if len(scores) < len(uci.CHECKPOINTS):  # stopped early: exactly PATIENCE misses in a row
            assert len(scores) - 1 - best == uci.PATIENCE


def test_uci_choice_takes_the_lowest_rmse_within_one_standard_error_of_the_best_log_likelihood(uci):
    def trial(name, ll, se, rmse):
        return {"params": {"name": name}, "validation_ll": ll, "validation_ll_se": se, "validation_rmse": rmse}

    best, close, lower_rmse_but_far = trial("a", -2.70, 0.01, 4.5), trial("b", -2.705, 0.02, 4.3), trial("c", -2.72, 0.01, 4.1)
    assert uci.choose([best, close, lower_rmse_but_far]) is close
    # The standard error is the best trial's: "c" is 0.02 below "a", outside a's 0.01.
    assert uci.choose([best, lower_rmse_but_far]) is best
    # Without ties it is the best log-likelihood, whatever the RMSE.
    assert uci.choose([trial("a", -2.7, 0.0, 9.0), trial("b", -2.8, 0.0, 1.0)])["params"]["name"] == "a"


@pytest.mark.parametrize("peak, scored_below", [(5, True), (40, False)])
def test_uci_search_goes_below_the_first_checkpoint_when_the_choice_is_there(uci, monkeypatch, peak, scored_below):
    """Validation log-likelihood -(log2(epochs / peak))^2: with a budget of 640 epochs the first
    checkpoint is 10, so a peak at 5 is only found by scoring below it (at 1, 2 and 5 epochs)."""
    calls = []

    def curve(method, params, x, y, folds, num_hidden, budget, checkpoints, samples, seed):
        calls.append(list(checkpoints))
        return [{"epochs": e, "test_ll": -math.log2(e / peak) ** 2, "test_ll_se": 0.01, "rmse": 1.0}
                for e in checkpoints]

    monkeypatch.setattr(uci, "search_curve", curve)
    x, y = np.zeros((200, 2)), np.zeros(200)
    selection = uci.select("ensemble", x, y, 8, 100, epochs_cap=640, seed=0, cross_validation_rows=0)
    assert calls[0][0] == 10 and calls[0][-1] == 640
    assert selection["params"]["epochs"] == peak
    (trial,) = selection["trials"]
    assert [point["epochs"] for point in trial["curve"]] == [*([1, 2, 5] if scored_below else []), *calls[0]]
    assert len(calls) == (2 if scored_below else 1)


def test_uci_search_records_what_the_choice_used(uci, uci_data, tmp_path_factory):
    _, _, report = _documented_run(uci, uci_data, tmp_path_factory, "bnn", 1)  # 60 validation rows of 240
    (selection,) = report["datasets"]["tiny"]["selection"]
    for trial in selection["trials"]:
        point = next(p for p in trial["curve"] if p["epochs"] == trial["epochs"])
        assert (trial["validation_ll"], trial["validation_rmse"], trial["validation_ll_se"]) == (
            point["test_ll"], point["rmse"], point["test_ll_se"])
        assert 0 < trial["validation_ll_se"] < 0.5  # 60 validation rows, N(0, 1)-scale noise
    assert selection["params"] == {**uci.choose(selection["trials"])["params"], "epochs": uci.choose(selection["trials"])["epochs"]}


def test_uci_tables_merge_runs_of_different_data_sets(uci, uci_data, tmp_path_factory, tmp_path, capsys):
    """Long runs split over processes (--datasets a / --datasets b) merge into one report."""
    # Data set "tiny" is the documented ensemble run's (--datasets tiny); "two" is run here.
    one_json, _, _ = _documented_run(uci, uci_data, tmp_path_factory, "ensemble", 1)
    (tmp_path / "tiny.json").write_text(one_json.read_text())
    assert uci.main(["--data-dir", str(uci_data / "small"), "--method", "ensemble", "--splits", "1", "--max-epochs",
                     "2", "--samples", "100", "--cross-validation-rows", "0", "--datasets", "two",
                     "--json", str(tmp_path / "two.json")]) == 0
    merged, table = tmp_path / "merged.json", tmp_path / "merged.md"
    assert uci.main(["--table-from", str(tmp_path / "tiny.json"), str(tmp_path / "two.json"),
                     "--json", str(merged), "--markdown", str(table)]) == 0
    report = json.loads(merged.read_text())
    assert list(report["datasets"]) == ["tiny", "two"]
    for name in ("tiny", "two"):
        alone = json.loads((tmp_path / f"{name}.json").read_text())["datasets"][name]
        assert report["datasets"][name] == alone
        assert f"| {name} | 1 |" in table.read_text()
    for folder in (tmp_path, one_json.parent):  # each run's progress file became its --json
        assert not list(folder.glob("*.partial"))

    # Files of another method, or the same data set twice, are refused, not mislabelled or dropped.
    other = json.loads((tmp_path / "two.json").read_text())
    (tmp_path / "other_method.json").write_text(json.dumps({**other, "method": "mc_dropout"}))
    for files, message in [(["tiny.json", "other_method.json"], "results of different methods (ensemble, mc_dropout)"),
                           (["tiny.json", "two.json", "tiny.json"], "tiny is in more than one --table-from file")]:
        before = merged.read_text()
        assert uci.main(["--table-from", *(str(tmp_path / f) for f in files), "--json", str(merged)]) == 2
        assert message in capsys.readouterr().err and merged.read_text() == before


def test_uci_folds_cover_every_training_row_once_and_the_last_is_the_holdout(uci):
    for rows in (455, 927, 80):
        folds = uci.validation_folds(rows)
        assert len(folds) == uci.FOLDS
        np.testing.assert_array_equal(np.concatenate(folds), np.arange(rows))  # contiguous, in order, once each
        np.testing.assert_array_equal(folds[-1], uci.validation_folds(rows, cross_validation_rows=0)[0])
        assert folds[-1][0] == round(0.8 * rows)
        assert max(map(len, folds)) - min(map(len, folds)) <= 1 + rows // 100  # about a fifth each
    (holdout,) = uci.validation_folds(7_373)  # kin8nm-sized: the single last 20 %
    np.testing.assert_array_equal(holdout, np.arange(round(0.8 * 7_373), 7_373))


def test_uci_pooled_scores_weigh_every_row_equally(uci):
    """Pooling the folds' rows is not averaging the folds' scores: a fold of 3 rows counts 3 times one of 1."""
    rng = np.random.default_rng(0)

    def part(rows, offset):
        y = rng.normal(size=(rows, 1))
        mean = y + offset
        return {"y": y, "mean": mean, "lower": mean - 1.0, "upper": mean + 1.0,
                "log_likelihood": rng.normal(-1.0 - offset, 0.1, size=rows)}

    small, large = part(1, 3.0), part(3, 0.5)
    pooled = uci.summarize([small, large])
    assert pooled["rmse"] == pytest.approx(np.sqrt((1 * 3.0**2 + 3 * 0.5**2) / 4))
    assert pooled["test_ll"] == pytest.approx(
        (small["log_likelihood"].sum() + large["log_likelihood"].sum()) / 4)
    assert pooled["coverage_95"] == 0.75  # the small fold's row is 3 from its interval of half-width 1
    assert pooled == uci.summarize([{k: np.concatenate([small[k], large[k]]) for k in small}])


def test_uci_training_resumed_at_a_checkpoint_ends_where_one_fit_ends(uci, tmp_path):
    """The folds train from checkpoint to checkpoint: with the raw (not averaged) weights put back
    after each ``fit``, that is the same training as one ``fit`` through all epochs."""
    folder = _uci_folder(tmp_path / "data", rows=120, num_test=20)
    x, y, x_val, y_val = uci.data.load_uci(folder, 0)
    params = {**uci.FIXED["bnn"], "head": "normal"}

    def trained(stops, restore=True):
        uci.tf_keras.backend.clear_session()
        uci.tf_keras.utils.set_random_seed(0)
        model = uci.build("bnn", params, x, y, 8, 6)
        done = 0
        for epochs in stops:
            scorer = uci._Checkpoints([3], x_val, y_val, 100, 0, stop_early=False)
            # shuffle=False: a new fit draws new shuffle orders (the same training in distribution,
            # not in numbers: 1e-4 apart here), which would hide what restoring the weights does.
            model.fit(x, y, batch_size=32, initial_epoch=done, epochs=epochs, verbose=0, callbacks=[scorer],
                      shuffle=False)
            if restore and epochs < stops[-1]:
                scorer.restore_raw_weights()
            done = epochs
        return [w.numpy() for w in model.trainable_variables], scorer

    once, whole = trained([6])
    resumed, _ = trained([3, 6])
    for a, b in zip(once, resumed):
        np.testing.assert_array_equal(a, b)
    not_restored, _ = trained([3, 6], restore=False)  # goes on from the averaged weights: another path
    assert max(np.abs(a - b).max() for a, b in zip(once, not_restored)) > 1e-3
    assert [point["epochs"] for point in whole.curve] == [3]


@pytest.mark.parametrize("method", ["ensemble", pytest.param("bnn", marks=pytest.mark.slow)])
def test_uci_cross_validated_search_stops_on_the_pooled_curve(uci, uci_data, tmp_path_factory, method):
    _, _, report = _documented_run(uci, uci_data, tmp_path_factory, method, uci.FOLDS)  # up to 16 epochs
    (selection,) = report["datasets"]["tiny"]["selection"]
    x, _, _, _ = uci.data.load_uci(uci_data / "large" / "tiny", 0)
    assert selection["validation_folds"] == uci.FOLDS  # 240 training rows: below CROSS_VALIDATION_ROWS
    assert selection["max_epochs"] == 16
    holdout_se = []
    for trial in selection["trials"]:
        scores = [point["test_ll"] for point in trial["curve"]]
        best = int(np.argmax(scores))
        assert trial["epochs"] == trial["curve"][best]["epochs"]
        assert len(scores) - 1 - best <= uci.PATIENCE
        if trial["curve"][-1]["epochs"] < 16:  # stopped early: exactly PATIENCE misses in a row
            assert len(scores) - 1 - best == uci.PATIENCE
        # Pooled over all 240 rows, not the 48 of one fold: the standard error is about sqrt(5) smaller.
        per_row_std = trial["validation_ll_se"] * np.sqrt(len(x))
        holdout_se.append(per_row_std / np.sqrt(len(x) // uci.FOLDS))
        assert trial["validation_ll_se"] < holdout_se[-1] / 2
    assert selection["params"]["epochs"] == uci.choose(selection["trials"])["epochs"]


def test_uci_splits_side_by_side_give_the_results_of_one_at_a_time(uci, uci_data, tmp_path, monkeypatch):
    """--jobs runs every split in a process of its own; the results, in split order, do not change."""
    common = ["--data-dir", str(uci_data / "small"), "--datasets", "tiny", "--method", "ensemble", "--max-epochs",
              "2", "--samples", "100", "--cross-validation-rows", "0"]  # the cheapest method: what is tested is the order of the splits
    results = []
    for jobs in ("1", "2"):  # one at a time in this process, then two at a time, each in a new process
        if jobs == "2":
            monkeypatch.setattr(uci, "run_split_in_new_process", uci.run_split_in_new_process.new_process)
        out = tmp_path / f"jobs{jobs}.json"
        assert uci.main([*common, "--jobs", jobs, "--json", str(out)]) == 0
        results.append(json.loads(out.read_text())["datasets"]["tiny"])
    one, two = results
    assert one["num_splits"] == two["num_splits"] == 3
    assert one["rmse"] == two["rmse"] and one["test_ll"] == two["test_ll"]
    assert one["selection"] == two["selection"]
    assert len(set(one["rmse"])) == 3  # three different splits, not one repeated


def test_uci_benchmark_refuses_an_unknown_data_set_before_any_work(uci, tmp_path, capsys):
    _uci_folder(tmp_path / "data")
    status = uci.main(["--data-dir", str(tmp_path / "data"), "--datasets", "tiny,boston"])
    assert status == 2
    assert "no data set folder boston" in capsys.readouterr().err


def test_uci_benchmark_reads_every_split_before_any_work(uci, tmp_path, capsys):
    bad = _uci_folder(tmp_path / "data", name="leak")
    (bad / "index_test_1.txt").write_text((bad / "index_train_1.txt").read_text())  # test rows trained on
    nan = _uci_folder(tmp_path / "data", name="nan")
    table = np.loadtxt(nan / "data.txt")
    table[int(np.loadtxt(nan / "index_test_1.txt")[0]), 1] = np.nan
    np.savetxt(nan / "data.txt", table)
    for name, message in [("leak", "split 1 has 64 row(s) in both index_train_1.txt and index_test_1.txt"),
                          ("nan", "holds a NaN or infinite value (or one beyond float32); drop or impute it")]:
        status = uci.main(["--data-dir", str(tmp_path / "data"), "--datasets", name, "--max-epochs", "1",
                           "--samples", "100"])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("uci.py: error: ") and message in err, err
        assert "split 0:" not in err  # nothing trained
    for names, message in [(",", "names no data set"), ("nan,nan", "names a data set twice")]:
        assert uci.main(["--data-dir", str(tmp_path / "data"), "--datasets", names]) == 2
        assert message in capsys.readouterr().err


def test_uci_standard_error_is_over_splits_as_published(uci):
    mean, se = uci.mean_and_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4]) / 2)


def test_speed_benchmark_writes_the_documented_json(tmp_path):
    speed = _load("speed")
    out_json, out_md = tmp_path / "speed.json", tmp_path / "speed.md"
    assert speed.main(["--quick", "--no-torch", "--json", str(out_json), "--markdown", str(out_md)]) == 0
    report = json.loads(out_json.read_text())
    assert {"settings", "machine", "training", "prediction", "memory"} <= set(report)
    training = {row["case"]: row for row in report["training"]}
    assert set(speed.QUICK["only"]) == set(training)
    assert training["keras deterministic"]["ratio_to_deterministic"] == 1.0
    assert all(row["seconds_per_epoch"] > 0 for row in training.values())
    strategies = {(row["model"], row["strategy"]) for row in report["prediction"]}
    assert ("reparameterization", speed.LIMIT) in strategies and ("flipout", speed.LOOP) in strategies
    assert ("ensemble", speed.XLA) in strategies and ("flipout", speed.XLA) in strategies
    assert ("reparameterization", speed.LIMIT_XLA) in strategies
    assert all(row["ratio_to_xla"] > 0 for row in report["prediction"] if (row["model"], speed.XLA) in strategies
               and row["strategy"] in (speed.LOOP, speed.LIMIT, speed.LIMIT_XLA))
    assert all(row["ratio_to_one_graph"] > 0 for row in report["prediction"] if row["strategy"] != speed.ONE_GRAPH)
    kinds = {row["kind"] for row in report["memory"]}
    assert kinds == {"import", "train", "predict"}
    # A fresh process after importing TensorFlow holds at least 100 MiB, and no case reports
    # its parent's memory (ru_maxrss would: it survives exec).
    assert all(100 < row["peak_rss_mb"] < 8000 for row in report["memory"])
    assert "Training: seconds per epoch" in out_md.read_text()


def test_speed_limit_computes_the_same_log_likelihoods_as_tfp_bnn():
    """The batched-weights limit is a fair bound only if it computes what tfp_bnn computes."""
    speed = _load("speed")
    import tfp_bnn

    x, y = speed._data(50, seed=0)
    case = speed.KerasPrediction("reparameterization", speed.LIMIT, (8,), x, y, num_samples=400)

    def both():
        limit = case.run().reshape(400, 50)
        return limit, tfp_bnn.log_likelihoods(case.model, x, y, num_samples=400, seed=0)

    def set_posterior_scale(value):
        for layer in case.model.layers:
            if isinstance(layer, tfp_bnn.BayesianDense):
                scale = layer.posterior.untransformed_scale
                scale.assign(np.full(scale.shape, np.log(np.expm1(value)), np.float32))

    set_posterior_scale(1e-7)  # every draw is the mean network: the very same numbers
    limit, ours = both()
    np.testing.assert_allclose(limit, ours, rtol=1e-4, atol=1e-4)
    set_posterior_scale(0.3)  # wide posteriors: the draws must spread alike
    limit, ours = both()

    def quartiles(ll):  # log-likelihoods of wide posteriors are heavy-tailed: robust statistics
        return np.median(np.percentile(ll, [25, 50, 75], axis=0), axis=1)

    np.testing.assert_allclose(quartiles(limit), quartiles(ours), rtol=0.1)
    assert np.ptp(quartiles(limit)) > 0.5  # and the draws do spread


def test_uci_learning_rate_decays_to_zero_over_the_epoch_budget_by_epoch(uci, tmp_path):
    """Search run (80 % of the rows) and final run (all of them) are at the same rate after the same epochs."""
    folder = _uci_folder(tmp_path / "data", rows=300, num_test=60)
    x, y, _, _ = uci.data.load_uci(folder, 0)
    params = {**uci.FIXED["bnn"], "head": "normal"}
    budget = 10
    for rows in (len(x), int(0.8 * len(x))):
        steps_per_epoch = math.ceil(rows / params["batch_size"])
        model, done = uci.build("bnn", params, x[:rows], y[:rows], 8, budget), 0
        for epochs in (budget // 2, budget):  # the rate after `epochs` epochs: one model, fit on to each
            model.fit(x[:rows], y[:rows], batch_size=params["batch_size"], initial_epoch=done, epochs=epochs,
                      verbose=0)
            done = epochs
            last_step = epochs * steps_per_epoch - 1  # the rate of the last update
            expected = 0.5 * params["learning_rate"] * (1 + math.cos(math.pi * last_step / (budget * steps_per_epoch)))
            assert float(model.optimizer.learning_rate) == pytest.approx(expected, rel=1e-4), (rows, epochs)
        assert expected < 1e-3 * params["learning_rate"]  # all but 0 at the end of the budget
    constant = uci.build("mc_dropout", {**uci.FIXED["mc_dropout"], "dropout_rate": 0.05}, x, y, 8, budget)
    constant.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert float(constant.optimizer.learning_rate) == pytest.approx(uci.FIXED["mc_dropout"]["learning_rate"])


def test_uci_configurations_set_the_kl_weight_and_the_loss_they_record(uci, tmp_path):
    """kl_scale multiplies every Bayesian layer's 1/N; loss_beta > 0 trains with the beta-NLL."""
    import tfp_bnn

    folder = _uci_folder(tmp_path / "data", rows=300, num_test=60)
    x, y, _, _ = uci.data.load_uci(folder, 0)
    configurations = list(uci.configurations("bnn"))
    assert {c["kl_scale"] for c in configurations} == {1.0, 0.25, 0.5}
    assert {c["loss_beta"] for c in configurations} == {0.0, 0.5}
    for params in configurations:
        model = uci.build("bnn", params, x, y, 8, 10)
        weights = [layer.kl_weight for layer in model.layers if isinstance(layer, tfp_bnn.BayesianDense)]
        assert len(weights) == 2
        np.testing.assert_allclose(weights, params["kl_scale"] / len(x), rtol=1e-3)
        loss = model.compiled_loss._losses
        if params["loss_beta"]:
            assert isinstance(loss, tfp_bnn.BetaNegativeLogLikelihood) and loss.beta == params["loss_beta"]
        else:
            assert isinstance(loss, tfp_bnn.NegativeLogLikelihood)


def test_uci_epoch_budget_is_the_step_budget_within_its_bounds(uci):
    """STEP_BUDGET steps of batch 32, but never fewer than MIN_EPOCHS nor more than 2,000 epochs."""
    steps = lambda rows: uci.max_epochs(rows) * math.ceil(rows / 32)  # noqa: E731
    assert uci.max_epochs(8_000) == uci.STEP_BUDGET * 32 // 8_000  # power-sized: the step budget decides
    assert abs(steps(8_000) - uci.STEP_BUDGET) <= math.ceil(8_000 / 32)
    assert uci.max_epochs(36_584) == uci.MIN_EPOCHS > uci.STEP_BUDGET * 32 // 36_584  # protein-sized: the floor
    assert uci.max_epochs(100) == 2000  # tiny data: the ceiling


def test_uci_table_from_a_file_it_cannot_read_fails_cleanly_and_keeps_the_json(uci, tmp_path, capsys):
    """--table-from of a missing, non-JSON or foreign-format file: exit 2, one line, --json and --markdown untouched."""
    merged, table = tmp_path / "merged.json", tmp_path / "merged.md"
    merged.write_text('{"keep": "me"}\n')
    (tmp_path / "broken.json").write_text("{")
    # An older uci.py's results: "hyperparameters" held text, not one dict per split.
    (tmp_path / "old.json").write_text(json.dumps({"method": "bnn", "datasets": {"tiny": {
        "rmse_mean": 1.0, "rmse_se": 0.0, "test_ll_mean": -1.0, "test_ll_se": 0.0, "num_splits": 1, "num_samples": 100,
        "num_hidden": 8, "seconds_per_split": 1.0, "seconds": [1.0], "tuning_seconds": 0.5,
        "hyperparameters": ["learning_rate=0.003"], "selection": [{"validation_ll": -1.0}]}}}))
    for name in ("missing.json", "broken.json", "old.json"):
        status = uci.main(["--table-from", str(tmp_path / name), "--json", str(merged), "--markdown", str(table)])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("uci.py: error: --table-from") and "Traceback" not in err, err
        assert merged.read_text() == '{"keep": "me"}\n' and not table.exists()
