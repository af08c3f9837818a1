"""tfp_bnn.data: synthetic generators, Dataset, scikit-learn sets, CSV files and the UCI benchmark layout."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from tfp_bnn import data
from tfp_bnn.data import DataError


# --- synthetic regressions ---------------------------------------------------------------------------

GENERATORS = [data.linear_regression, data.cubic_regression, data.gap_regression]


@pytest.mark.parametrize("generate", GENERATORS, ids=lambda f: f.__name__)
def test_generators_reproduce_with_a_seed(generate):
    x1, y1 = generate(300, seed=7)
    x2, y2 = generate(300, seed=7)
    x3, _ = generate(300, seed=8)
    assert x1.shape == (300, 1) and y1.shape == (300,)
    assert x1.dtype == np.float32 and y1.dtype == np.float32
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


@pytest.mark.parametrize("generate", [data.linear_regression, data.cubic_regression], ids=lambda f: f.__name__)
def test_article_generators_draw_x_uniformly_on_minus_one_one(generate):
    x, _ = generate(20_000, seed=0)
    assert -1.0 <= x.min() < -0.99 and 0.99 < x.max() <= 1.0
    assert abs(x.mean()) < 0.02 and x.std() == pytest.approx(1 / np.sqrt(3), rel=0.02)


@pytest.mark.parametrize("bad", [0, -5, 2.5, 5.0, True, "5"])
def test_generators_refuse_a_bad_num_examples(bad):
    with pytest.raises(ValueError, match="num_examples must be a positive integer"):
        data.linear_regression(bad)


def test_linear_regression_has_slope_one_and_noise_three_eighths():
    x, y = data.linear_regression(20_000, seed=1)
    slope, intercept = np.polyfit(x[:, 0], y, 1)
    assert slope == pytest.approx(1.0, abs=0.02) and intercept == pytest.approx(0.0, abs=0.01)
    residual = y - data.linear_regression_mean(x[:, 0])
    assert residual.std() == pytest.approx(0.375, rel=0.03)
    assert abs(residual.mean()) < 0.01
    np.testing.assert_array_equal(data.linear_regression_noise_std(np.array([-1.0, 0.0, 1.0])), 0.375)


def test_cubic_regression_noise_grows_from_0_1_to_0_3_as_documented():
    x, y = data.cubic_regression(60_000, seed=2)
    x = x[:, 0].astype(np.float64)
    residual = y - data.cubic_regression_mean(x)
    assert abs(residual.mean()) < 0.005
    edges = np.linspace(-1.0, 1.0, 9)
    stds = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (x >= low) & (x < high)
        stds.append(residual[inside].std())
        # Inside a bin the std varies a little; compare to the RMS of the true std over the bin.
        grid = np.linspace(low, high, 101)
        expected = np.sqrt(np.mean(data.cubic_regression_noise_std(grid) ** 2))
        assert stds[-1] == pytest.approx(expected, rel=0.05), (low, high)
    assert np.all(np.diff(stds) > 0)  # strictly growing with x
    assert stds[-1] / stds[0] == pytest.approx(0.2875 / 0.1125, rel=0.08)  # bin centres -0.875, 0.875
    np.testing.assert_allclose(data.cubic_regression_noise_std([-1.0, 0.0, 1.0]), [0.1, 0.2, 0.3])
    np.testing.assert_allclose(data.cubic_regression_mean([-1.0, 0.5, 2.0]), [-1.0, 0.125, 8.0])


def test_gap_regression_is_unchanged():
    assert data.GAP_REGRESSION_INTERVALS == ((-3.0, -1.0), (1.0, 3.0))
    np.testing.assert_allclose(data.gap_regression_noise_std([-3.0, 3.0]), [0.1, 0.5])
    x, _ = data.gap_regression(1000, seed=0)
    assert not np.any((x > -1.0) & (x < 1.0))


# --- Dataset -----------------------------------------------------------------------------------------


def test_dataset_converts_dtypes_and_counts():
    regression = data.Dataset([[1, 2], [3, 4], [5, 6]], [0.5, 1, 2], ["a", "b"], "t", "regression")
    assert regression.x.dtype == np.float32 and regression.y.dtype == np.float32
    assert (regression.num_examples, regression.num_features, regression.num_classes) == (3, 2, None)
    assert regression.feature_names == ("a", "b")
    labels = data.Dataset(np.zeros((3, 1)), [0, 2, 1], ["a"], "t", "classification", ["x", "y", "z"])
    assert labels.y.dtype == np.int64 and labels.num_classes == 3 and labels.class_names == ("x", "y", "z")
    with pytest.raises(AttributeError):
        labels.task = "regression"  # frozen


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(task="clustering"), "task must be"),
        (dict(x=np.zeros(3)), r"shape \(N, D\)"),
        (dict(y=np.zeros(2)), r"y must have shape \(3,\)"),
        (dict(feature_names=("a",)), "1 feature names for 2 columns"),
        (dict(y=[0.0, 0.5, 1.0], task="classification"), "integers 0..K-1"),
        (dict(y=[0, 1, 2], task="classification", class_names=("a", "b")), "label 2 has no name"),
    ],
)
def test_dataset_refuses_inconsistent_fields(kwargs, message):
    fields = dict(x=np.zeros((3, 2)), y=np.zeros(3), feature_names=("a", "b"), target_name="t", task="regression")
    with pytest.raises(ValueError, match=message):
        data.Dataset(**{**fields, **kwargs})


# --- scikit-learn's bundled sets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape, num_classes, first_class",
    [
        ("iris", (150, 4), 3, "setosa"),
        ("wine", (178, 13), 3, "class_0"),
        ("breast_cancer", (569, 30), 2, "malignant"),
        ("digits", (1797, 64), 10, "0"),
    ],
)
def test_load_sklearn_shapes_and_classes(name, shape, num_classes, first_class):
    dataset = data.load_sklearn(name)
    assert dataset.task == "classification"
    assert dataset.x.shape == shape and dataset.x.dtype == np.float32
    assert dataset.y.shape == (shape[0],) and dataset.y.dtype == np.int64
    assert dataset.num_classes == num_classes and len(dataset.class_names) == num_classes
    assert dataset.class_names[0] == first_class and all(isinstance(c, str) for c in dataset.class_names)
    np.testing.assert_array_equal(np.unique(dataset.y), np.arange(num_classes))  # every class present
    assert len(dataset.feature_names) == shape[1] and np.isfinite(dataset.x).all()


def test_load_sklearn_unknown_name_lists_the_choices():
    with pytest.raises(DataError, match="unknown scikit-learn data set 'mnist'.*iris, wine, breast_cancer, digits"):
        data.load_sklearn("mnist")
    assert issubclass(DataError, ValueError)


# --- CSV files ---------------------------------------------------------------------------------------


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_csv_regression_round_trip(tmp_path, rng):
    x = rng.normal(size=(40, 3)).round(4)
    y = (x @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=40)).round(4)
    lines = ["a, b ,c,price"] + [",".join(map(str, [*row, target])) for row, target in zip(x, y)]
    dataset = data.load_csv(write(tmp_path, "\n".join(lines) + "\n"), target="price")
    assert dataset.task == "regression" and dataset.class_names is None
    assert dataset.feature_names == ("a", "b", "c") and dataset.target_name == "price"
    np.testing.assert_array_equal(dataset.x, x.astype(np.float32))
    np.testing.assert_array_equal(dataset.y, y.astype(np.float32))
    assert dataset.x.dtype == np.float32 and dataset.y.dtype == np.float32


def test_load_csv_target_can_be_any_column(tmp_path):
    path = write(tmp_path, "label,f1,f2\n3,0.5,1\n5,1.5,2\n7,2.5,3\n3,3.5,4\n5,4.5,5\n7,5.5,6\n3,6.5,7\n")
    dataset = data.load_csv(path, target="label")
    assert dataset.task == "classification"  # 3 distinct integers < 7 / 2
    assert dataset.feature_names == ("f1", "f2")
    np.testing.assert_array_equal(dataset.x[:, 0], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
    np.testing.assert_array_equal(dataset.y, [0, 1, 2, 0, 1, 2, 0])
    assert dataset.class_names == ("3", "5", "7")
    # class_names maps predictions back to the labels in the file
    assert [dataset.class_names[k] for k in dataset.y] == ["3", "5", "7", "3", "5", "7", "3"]


def test_load_csv_orders_numeric_labels_numerically_and_text_labels_alphabetically(tmp_path):
    numbers = write(tmp_path, "x,y\n" + "".join(f"{i},{label}\n" for i, label in enumerate([10, 2, 9, 2, 10, 9, 2, 2])))
    dataset = data.load_csv(numbers, target="y")
    assert dataset.class_names == ("2", "9", "10")
    np.testing.assert_array_equal(dataset.y, [2, 0, 1, 0, 2, 1, 0, 0])
    words = write(tmp_path, "x,animal\n1,dog\n2,cat\n3,\"dog\"\n4,emu\n", name="words.csv")
    dataset = data.load_csv(words, target="animal")  # text labels: classification even for few rows
    assert dataset.task == "classification" and dataset.class_names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(dataset.y, [1, 0, 1, 2])
    floats = write(tmp_path, "x,y\n1,0.5\n2,1.5\n3,0.5\n", name="floats.csv")
    assert data.load_csv(floats, target="y", task="classification").class_names == ("0.5", "1.5")


def test_load_csv_keeps_integer_labels_beyond_float64_apart(tmp_path):
    # 100000000000000001 and ...002 are one float64: as numbers they had merged into one class.
    ids = ["100000000000000001", "100000000000000002", "7"] * 4
    path = write(tmp_path, "x,code\n" + "".join(f"{i},{label}\n" for i, label in enumerate(ids)), name="ids.csv")
    dataset = data.load_csv(path, target="code", task="classification")
    assert dataset.class_names == ("7", "100000000000000001", "100000000000000002")
    np.testing.assert_array_equal(dataset.y, [1, 2, 0] * 4)
    again = data.load_target(path, "code", class_names=dataset.class_names)
    np.testing.assert_array_equal(again, dataset.y)


def test_load_csv_task_inference_thresholds(tmp_path):
    def labels_file(labels, name):
        return write(tmp_path, "x,y\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels)), name)

    twenty = labels_file(np.arange(100) % 20, "twenty.csv")  # 20 integer values in 100 rows
    assert data.load_csv(twenty, target="y").task == "classification"
    assert data.load_csv(twenty, target="y").num_classes == 20
    many = labels_file(np.arange(100) % 21, "many.csv")  # 21 > 20
    assert data.load_csv(many, target="y").task == "regression"
    not_fewer_than_half = labels_file([0, 1, 2, 3, 0, 1, 2, 3], "half.csv")  # 4 values, 8 rows: not < 4
    assert data.load_csv(not_fewer_than_half, target="y").task == "regression"
    fractional = labels_file([0, 1, 0.5, 0, 1, 0, 1, 0], "fractional.csv")
    assert data.load_csv(fractional, target="y").task == "regression"
    forced = data.load_csv(not_fewer_than_half, target="y", task="classification")
    assert forced.task == "classification" and forced.num_classes == 4
    forced = data.load_csv(twenty, target="y", task="regression")
    assert forced.task == "regression" and forced.y.dtype == np.float32 and forced.y[19] == 19.0


def test_load_csv_skips_blank_lines_reads_quotes_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes('\ufeff"a","b","y"\r\n1,2,0.5\r\n\r\n" 3 ",4,1.5\r\n,,\r\n'.encode("utf-8"))
    dataset = data.load_csv(path, target="y")
    assert dataset.feature_names == ("a", "b")
    np.testing.assert_array_equal(dataset.x, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(dataset.y, [0.5, 1.5])


CSV_ERRORS = [
    # (file text, load_csv kwargs, regex the message must match)
    ("a,b,y\n1,2,3\n4,5,6\n", dict(target="price"), r"no column 'price'; the columns are 'a', 'b', 'y'"),
    ("a,b,y\n1,2,3\n4,x5,6\n7,8,9\n", {}, r"line 3, column 'b': 'x5' is not a number"),
    ("a,b,y\n1,2,3\n\n4,5,6\n7,,9\n", {}, r"line 5, column 'b': empty cell"),
    # A row of empty cells between data rows is missing values (trailing ones are a spreadsheet's export).
    ("a,b,y\n1,2,3\n,,\n4,5,6\n,,\n", {}, r"line 3, column 'a': empty cell"),
    ("a,b,y\n1,2,3\n4,5e38,6\n", {}, r"line 3, column 'b': '5e38' is beyond float32's range \(about 3\.4e38\), "
                                      r"in which the model computes; rescale the column"),
    ("a,b,y\n1,nan,3\n4,5,6\n", {}, r"line 2, column 'b': 'nan' is not a finite number"),
    ("a,b,y\n1,2,3\n4,5,-inf\n", {}, r"line 3, column 'y': '-inf' is not a finite number"),
    ("a,b,y\n1,2,3\n4,5,\n", {}, r"line 3, column 'y': empty cell"),
    ("a,b,y\n1,2,3\n", {}, r"1 data row\(s\) below the header; need at least 2"),
    ("a,b,y\n", {}, r"0 data row\(s\) below the header; need at least 2"),
    ("a,b,y\n1,2,3\n4,5,6\n7,8,9\n", dict(min_rows=10), r"3 data row\(s\) below the header; need at least 10"),
    ("y\n1\n2\n3\n", {}, r"the target 'y' is the only column; add feature columns"),
    ("a,b,y\n1,2,3\n4,5\n", {}, r"line 3 has 2 cells but the header has 3 columns"),
    (",a,y\n0,1,2\n1,3,4\n", {}, r"column 1 of the header has no name.*index=False"),
    ("a,a,y\n1,2,3\n4,5,6\n", {}, r"column name\(s\) 'a' appear more than once"),
    ("", {}, r"empty first line; the first line must be a header row"),
    ("a,y\n1,4\n2,4\n3,4\n4,4\n5,4\n", {}, r"target 'y' has one value only \(4\); a classifier needs 2 classes"),
    ("a,y\n1,0.5\n2,0.7\n3,high\n", {}, r"line 4, column 'y': 'high' is not a number"),
    # A missing value written as text gets the advice for missing values, not "pass task='classification'".
    ("a,y\n1,0.5\n2,NA\n3,0.7\n", {}, r"line 3, column 'y': 'NA' is not a number, in a target of numbers "
     r"\(it looks like a missing value\); drop or impute rows with missing values\.$"),
    ("a,b,y\n1,2,3\n4,?,6\n7,8,9\n", {}, r"line 3, column 'b': '\?' is not a number \(it looks like a missing "
     r"value\); drop or impute rows with missing values\.$"),
    # ... but a marker among other text is a category (or a class), as any other text.
    ("a,g,y\n1,none,3\n2,attached,4\n3,detached,5\n", {}, r"line 2, column 'g': 'none' is not a number; encode text "
     r"as numbers or drop the column\.$"),
    ("a,y\n1,none\n2,1\n3,low\n4,2\n", {}, r"line 2, column 'y': 'none' is not a number, in a target of numbers: "
     r"fix or drop that row, or if the values are classes pass task='classification'"),
    # Labels of numbers and markers only: a missing value whatever the task (with task='classification'
    # 'NA' was a third class beside '0' and '1').
    ("a,y\n1,0\n2,1\n3,NA\n4,1\n", dict(task="classification"), r"line 4, column 'y': 'NA' is not a number, in a "
     r"target of numbers \(it looks like a missing value\); drop or impute rows with missing values\.$"),
    ("a,y\n1,NA\n2,none\n3,NA\n", {}, r"line 2, column 'y': 'NA' is not a class label \(it looks like a missing "
     r"value\); drop or impute rows with missing values\.$"),
    ("a,y\n1,low\n2,high\n3,high\n", dict(task="regression"), r"line 2, column 'y': 'low' is not a number"),
    ("a,y\n1,low\n2,\n3,high\n", {}, r"line 3, column 'y': empty cell"),
    # Among text labels "nan" is a missing value, named at its own cell (not at 'cat', as a number column).
    ("a,y\n1,cat\n2,nan\n3,dog\n", {}, r"line 3, column 'y': 'nan' is not a finite number"),
    ("a,y\n1,cat\n2,dog\n3,-inf\n", dict(task="classification"), r"line 4, column 'y': '-inf' is not a finite"),
]


@pytest.mark.parametrize("text, kwargs, message", CSV_ERRORS)
def test_load_csv_errors_name_the_line_column_and_problem(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as caught:
        data.load_csv(path, **{"target": "y", **kwargs})
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_load_csv_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"nothing\.csv: file not found"):
        data.load_csv(tmp_path / "nothing.csv", target="y")
    with pytest.raises(DataError, match="is a folder, not a file"):
        data.load_csv(tmp_path, target="y")
    with pytest.raises(ValueError, match="task must be None"):
        data.load_csv(tmp_path / "nothing.csv", target="y", task="ranking")


def test_load_csv_reports_bad_bytes(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,y\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        data.load_csv(path, target="y")


def test_load_features_picks_the_model_features_in_order(tmp_path):
    path = write(tmp_path, "c,label,a,b\n3,cat,1,2\n\n6,dog,4,5\n")
    x = data.load_features(path, ["a", "b", "c"], ignore=("label",))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(DataError, match=r"feature column\(s\) 'd' missing; the columns are 'c', 'label', 'a', 'b'"):
        data.load_features(path, ["a", "d"], ignore=("label",))
    with pytest.raises(DataError, match=r"column\(s\) 'label' are not features of the model \('a', 'b', 'c'\); drop"):
        data.load_features(path, ["a", "b", "c"])
    with pytest.raises(DataError, match=r"line 3, column 'b': 'x' is not a number"):
        data.load_features(write(tmp_path, "a,b\n1,2\n3,x\n", "bad.csv"), ["a", "b"])
    with pytest.raises(DataError, match=r"0 data row\(s\) below the header; need at least 1"):
        data.load_features(write(tmp_path, "a,b\n", "empty.csv"), ["a", "b"])


def test_load_target_maps_labels_with_the_training_class_names(tmp_path):
    path = write(tmp_path, "x,label,price\n0,7,1.5\n1,3.0,2.5\n2,5,-1\n")
    np.testing.assert_array_equal(data.load_target(path, "label", class_names=("3", "5", "7")), [2, 0, 1])
    price = data.load_target(path, "price")
    assert price.dtype == np.float32
    np.testing.assert_array_equal(price, [1.5, 2.5, -1.0])
    with pytest.raises(DataError, match=r"line 2, column 'label': label '7' is not one of the classes '3', '5'"):
        data.load_target(path, "label", class_names=("3", "5"))
    with pytest.raises(DataError, match=r"no column 'y'; the columns are 'x', 'label', 'price'"):
        data.load_target(path, "y")
    words = write(tmp_path, "x,animal\n1,dog\n2,\n", "words.csv")
    with pytest.raises(DataError, match=r"line 3, column 'animal': empty cell"):
        data.load_target(words, "animal", class_names=("cat", "dog"))


# --- UCI benchmark folders ---------------------------------------------------------------------------


def make_uci_folder(parent, name, table, features, target, splits, subfolder=True, n_splits_file=True, fmt="{}"):
    """A data set folder in the Hernández-Lobato & Adams layout; returns the data set folder."""
    folder = parent / name
    files = folder / "data" if subfolder else folder
    files.mkdir(parents=True)
    np.savetxt(files / "data.txt", table, fmt="%.6g", delimiter="\t")
    (files / "index_features.txt").write_text("".join(fmt.format(i) + "\n" for i in features))
    (files / "index_target.txt").write_text(fmt.format(target) + "\n")
    for i, (train, test) in enumerate(splits):
        (files / f"index_train_{i}.txt").write_text("".join(fmt.format(j) + "\n" for j in train))
        (files / f"index_test_{i}.txt").write_text("".join(fmt.format(j) + "\n" for j in test))
    if n_splits_file:
        (files / "n_splits.txt").write_text(f"{len(splits)}\n")
    return folder


TABLE = np.arange(40, dtype=np.float64).reshape(10, 4) + 0.25  # 10 rows; target in column 1
SPLITS = [([0, 2, 4, 6, 8, 9, 7], [1, 3, 5]), ([9, 8, 7, 6, 5, 4, 3, 2], [1, 0])]


@pytest.mark.parametrize(
    "layout",
    [
        dict(subfolder=True, n_splits_file=True, fmt="{}"),  # as in the original repositories
        dict(subfolder=False, n_splits_file=False, fmt="{:.18e}"),  # flat, float-formatted, no n_splits.txt
    ],
    ids=["data-subfolder", "flat-float-indices"],
)
def test_load_uci_on_a_synthetic_folder_returns_the_exact_rows(tmp_path, layout):
    folder = make_uci_folder(tmp_path, "toy", TABLE, features=[0, 2, 3], target=1, splits=SPLITS, **layout)
    assert data.uci_num_splits(folder) == 2
    for split, (train, test) in enumerate(SPLITS):
        x_train, y_train, x_test, y_test = data.load_uci(folder, split)
        for array in (x_train, y_train, x_test, y_test):
            assert array.dtype == np.float32
        np.testing.assert_array_equal(x_train, TABLE[train][:, [0, 2, 3]].astype(np.float32))
        np.testing.assert_array_equal(y_train, TABLE[train, 1].astype(np.float32))
        np.testing.assert_array_equal(x_test, TABLE[test][:, [0, 2, 3]].astype(np.float32))
        np.testing.assert_array_equal(y_test, TABLE[test, 1].astype(np.float32))
        indices = data.uci_split_indices(folder, split)
        assert [list(part) for part in indices] == [train, test]
        assert all(part.dtype == np.int64 for part in indices)
    x_train, *_ = data.load_uci(folder, np.int64(1))  # NumPy integers are fine
    assert x_train.shape == (8, 3)


def test_uci_datasets_lists_only_data_set_folders_sorted(tmp_path):
    for name, subfolder in [("zeta", True), ("Alpha", False), ("beta", True)]:
        make_uci_folder(tmp_path, name, TABLE, [0], 1, SPLITS, subfolder=subfolder)
    (tmp_path / "notes").mkdir()
    (tmp_path / "README.md").write_text("not a data set")
    assert [folder.name for folder in data.uci_datasets(tmp_path)] == ["Alpha", "beta", "zeta"]
    assert data.uci_datasets(tmp_path / "notes") == []
    with pytest.raises(DataError, match="folder not found"):
        data.uci_datasets(tmp_path / "absent")


def test_uci_settings_reads_the_optional_files(tmp_path):
    folder = make_uci_folder(tmp_path, "toy", TABLE, [0], 1, SPLITS)
    assert data.uci_settings(folder) == {"n_splits": 2}
    (folder / "data" / "n_hidden.txt").write_text("50\n")
    (folder / "data" / "tau_values.txt").write_text("0.1\n0.15\n0.2")
    assert data.uci_settings(folder) == {"n_splits": 2, "n_hidden": 50, "tau_values": (0.1, 0.15, 0.2)}


def test_load_uci_errors(tmp_path):
    folder = make_uci_folder(tmp_path, "toy", TABLE, [0, 2], 1, SPLITS)
    files = folder / "data"
    for split in (-1, 2, "0", True, 1.0):
        with pytest.raises(DataError, match=r"split .* is out of range: .*toy has 2 splits, 0\.\.1"):
            data.load_uci(folder, split)
    with pytest.raises(DataError, match="folder not found"):
        data.load_uci(tmp_path / "absent", 0)
    with pytest.raises(DataError, match=r"holds UCI data set folders \(toy\); pass one of them"):
        data.load_uci(tmp_path, 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no data\.txt in it or in .*empty/data"):
        data.uci_num_splits(tmp_path / "empty")

    (files / "index_test_1.txt").unlink()
    with pytest.raises(DataError, match=r"index_test_1\.txt: file not found"):
        data.load_uci(folder, 1)
    (files / "index_test_1.txt").write_text("1\n10\n")
    with pytest.raises(DataError, match=r"index_test_1\.txt: index 10 is out of range for 10 rows \(0-based, 0\.\.9\)"):
        data.load_uci(folder, 1)
    (files / "index_test_1.txt").write_text("1\n0.5\n")
    with pytest.raises(DataError, match=r"index_test_1\.txt: 0\.5 is not a whole number"):
        data.uci_split_indices(folder, 1)
    (files / "index_test_1.txt").write_text("")
    with pytest.raises(DataError, match=r"index_test_1\.txt: empty"):
        data.uci_split_indices(folder, 1)
    (files / "index_target.txt").write_text("4\n")
    with pytest.raises(DataError, match=r"index_target\.txt: index 4 is out of range for 4 columns"):
        data.load_uci(folder, 0)
    (files / "index_target.txt").write_text("2\n")
    with pytest.raises(DataError, match=r"target column 2 is also listed in index_features\.txt"):
        data.load_uci(folder, 0)
    (files / "index_target.txt").write_text("1\n")
    (files / "data.txt").write_text("1 2 3 4\n5 6 7\n")
    with pytest.raises(DataError, match=r"data\.txt: not a table of whitespace-separated numbers"):
        data.load_uci(folder, 0)
    (files / "n_splits.txt").write_text("two\n")
    with pytest.raises(DataError, match=r"n_splits\.txt: expected whitespace-separated numbers"):
        data.uci_num_splits(folder)
    (files / "n_splits.txt").unlink()
    for path in files.glob("index_train_*.txt"):
        path.unlink()
    with pytest.raises(DataError, match=r"no n_splits\.txt nor index_train_0\.txt"):
        data.uci_num_splits(folder)


# --- the real UCI folders (beside the checkout, at ../shared/data/uci; CI may not have them) ----------

UCI_ROOT = Path(os.environ.get("TFP_BNN_UCI_ROOT", Path(__file__).resolve().parents[2] / "shared" / "data" / "uci"))
needs_uci = pytest.mark.skipif(
    not UCI_ROOT.is_dir(),
    reason=f"UCI benchmark folder {UCI_ROOT} not found (set TFP_BNN_UCI_ROOT to its location to run these tests)",
)

# From PUBLISHED.md: rows, features, splits, train / test per split, n_hidden.txt, n_epochs.txt.
UCI_FACTS = {
    "bostonHousing": (506, 13, 20, 455, 51, 50, 40),
    "concrete": (1030, 8, 20, 927, 103, 50, 40),
    "kin8nm": (8192, 8, 20, 7373, 819, 50, 40),
    "naval-propulsion-plant": (11934, 16, 20, 10741, 1193, 50, 40),
    "power-plant": (9568, 4, 20, 8611, 957, 50, 40),
    "protein-tertiary-structure": (45730, 9, 5, 41157, 4573, 100, 20),
}


@needs_uci
def test_real_uci_root_lists_the_six_data_sets():
    assert [folder.name for folder in data.uci_datasets(UCI_ROOT)] == sorted(UCI_FACTS, key=str.lower)


@needs_uci
@pytest.mark.parametrize("name", list(UCI_FACTS))
def test_real_uci_data_set_shapes_and_partitions(name):
    rows, features, splits, n_train, n_test, n_hidden, n_epochs = UCI_FACTS[name]
    folder = UCI_ROOT / name
    assert data.uci_num_splits(folder) == splits
    settings = data.uci_settings(folder)
    assert (settings["n_splits"], settings["n_hidden"], settings["n_epochs"]) == (splits, n_hidden, n_epochs)
    assert settings["dropout_rates"] == (0.005, 0.01, 0.05, 0.1) and len(settings["tau_values"]) == 3
    for split in range(splits):
        train, test = data.uci_split_indices(folder, split)
        assert (len(train), len(test)) == (n_train, n_test), split
        assert len(np.intersect1d(train, test)) == 0, split  # no overlap
        np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(rows))  # all rows
    x_train, y_train, x_test, y_test = data.load_uci(folder, splits - 1)
    assert x_train.shape == (n_train, features) and x_test.shape == (n_test, features)
    assert y_train.shape == (n_train,) and y_test.shape == (n_test,)
    assert np.isfinite(x_train).all() and np.isfinite(y_train).all()


@needs_uci
def test_real_boston_housing_rows_match_the_raw_file():
    folder = UCI_ROOT / "bostonHousing"
    raw = np.loadtxt(folder / "data.txt")
    assert raw.shape == (506, 14)
    for split in (0, 19):
        x_train, y_train, x_test, y_test = data.load_uci(folder, split)
        train, test = data.uci_split_indices(folder, split)
        np.testing.assert_array_equal(x_train, raw[train, :13].astype(np.float32))
        np.testing.assert_array_equal(y_train, raw[train, 13].astype(np.float32))
        np.testing.assert_array_equal(x_test, raw[test, :13].astype(np.float32))
        np.testing.assert_array_equal(y_test, raw[test, 13].astype(np.float32))
    target = np.concatenate([y_train, y_test])
    assert (target.min(), target.max()) == (5.0, 50.0)  # MEDV in $1000s, capped at 50
    with pytest.raises(DataError, match="split 20 is out of range: .* has 20 splits, 0..19"):
        data.load_uci(folder, 20)


# --- digit images and their corruption -----------------------------------------------------------------


def test_load_digit_images_scales_pixels_to_unit_range_and_stratifies():
    x_train, y_train, x_test, y_test = data.load_digit_images("digits", test_fraction=0.25, seed=0)
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    # scikit-learn's pixels are 0..16: divided by 16, the brightest pixel is exactly 1.
    assert x_train.min() == 0.0 and x_train.max() == 1.0 and x_test.max() <= 1.0
    np.testing.assert_array_equal(np.unique(x_train * 16), np.arange(17))
    train_share = np.bincount(y_train, minlength=10) / len(y_train)
    test_share = np.bincount(y_test, minlength=10) / len(y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)
    again = data.load_digit_images("digits", seed=0)
    np.testing.assert_array_equal(again[3], y_test)
    assert not np.array_equal(data.load_digit_images("digits", seed=1)[3], y_test)


def test_load_digit_images_unknown_source():
    with pytest.raises(DataError, match="unknown digit image source 'fashion'; choose one of digits, mnist"):
        data.load_digit_images("fashion")


@pytest.mark.skipif(
    not (Path.home() / ".keras" / "datasets" / "mnist.npz").exists(),
    reason="MNIST is not in ~/.keras/datasets and the test suite does not download",
)
def test_load_digit_images_mnist_from_the_keras_cache():
    x_train, y_train, x_test, y_test = data.load_digit_images("mnist")
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.max() == 1.0 and set(np.unique(y_test)) == set(range(10))


@pytest.fixture(scope="module")
def digit_images():
    return data.load_digit_images("digits")


@pytest.mark.parametrize("shape", [(50, 8, 8), (50, 8, 8, 1), (20, 12, 10, 3)])
def test_corrupt_images_keeps_shape_and_range_and_reproduces_with_a_seed(shape, rng):
    images = rng.uniform(0, 1, shape).astype(np.float32)
    corrupted = data.corrupt_images(images, seed=3)
    assert corrupted.shape == shape and corrupted.dtype == np.float32
    assert corrupted.min() >= 0.0 and corrupted.max() <= 1.0
    np.testing.assert_array_equal(corrupted, data.corrupt_images(images, seed=3))
    assert not np.array_equal(corrupted, data.corrupt_images(images, seed=4))


def test_corrupt_images_without_blobs_or_noise_is_the_identity(digit_images):
    x_test = digit_images[2]
    np.testing.assert_array_equal(data.corrupt_images(x_test, num_blobs=0, noise_std=0.0), x_test)


def test_corrupt_images_noise_has_the_requested_standard_deviation():
    grey = np.full((200, 16, 16, 1), 0.5, np.float32)
    difference = data.corrupt_images(grey, num_blobs=0, noise_std=0.1, seed=0) - grey
    # Clipping at 0 and 1 lies 5 sd away: the noise is untouched.
    assert difference.mean() == pytest.approx(0.0, abs=0.002)
    assert difference.std() == pytest.approx(0.1, rel=0.01)


def test_corrupt_images_blobs_cover_a_share_of_pixels_that_grows_with_their_number():
    black = np.zeros((500, 28, 28), np.float32)

    def covered(num_blobs):
        blobs = data.corrupt_images(black, num_blobs=num_blobs, blob_radius=(0.1, 0.1), noise_std=0.0, seed=0)
        return np.mean(blobs > 0)

    # One blob of radius r = 2.8 px fades out at 1.5 r: it touches about pi (1.5 r)^2 = 55 of 784 pixels
    # (fewer at the borders); k independent blobs cover 1 - (1 - p)^k.
    one = covered(1)
    assert 0.05 < one < 0.075
    assert covered(4) == pytest.approx(1 - (1 - one) ** 4, rel=0.05)
    # A blob of radius 2 image sides covers the whole image with its shade, uniform on [0, 1].
    covering = data.corrupt_images(black, num_blobs=1, blob_radius=(2.0, 2.0), noise_std=0.0, seed=1)
    shades = covering[:, 0, 0]
    np.testing.assert_array_equal(covering, np.broadcast_to(shades[:, None, None], covering.shape))
    assert shades.mean() == pytest.approx(0.5, abs=0.03) and shades.std() == pytest.approx(12**-0.5, rel=0.06)


def test_corrupt_images_breaks_a_classifier_trained_on_clean_digits(digit_images):
    from sklearn.linear_model import LogisticRegression

    x_train, y_train, x_test, y_test = digit_images
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    classifier = LogisticRegression(max_iter=2000).fit(flat(x_train), y_train)
    clean = classifier.score(flat(x_test), y_test)
    noisy = classifier.score(flat(data.corrupt_images(x_test, num_blobs=0)), y_test)
    spattered = classifier.score(flat(data.corrupt_images(x_test)), y_test)
    assert clean > 0.95
    assert clean - 0.1 < noisy < clean  # the default noise alone hurts a little
    assert spattered < clean - 0.15  # blobs and noise: the default corruption takes away a sixth or more


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (np.full((2, 8, 8), 16.0), {}, r"scaled to \[0, 1\], got values in \[16, 16\]; divide by"),
        (np.zeros((8, 8)), {}, r"shape \(N, H, W\) or \(N, H, W, C\), got \(8, 8\)"),
        (np.zeros((2, 8, 8)), {"blob_radius": (0.3, 0.1)}, "0 < blob_radius"),
        (np.zeros((2, 8, 8)), {"noise_std": -1.0}, "noise_std >= 0"),
    ],
)
def test_corrupt_images_refuses_bad_input(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.corrupt_images(images, **kwargs)


def test_a_marker_among_text_labels_is_a_class_and_named_in_a_warning(tmp_path):
    """Bug: 'NA' among text labels became a class silently (R writes missing labels so), while 'nan' is
    refused. A marker among other text stays a class ('none' of none/mild/severe), with a warning."""
    path = write(tmp_path, "a,y\n1,cat\n2,dog\n3,NA\n4,cat\n5,NA\n")
    with pytest.warns(UserWarning, match=r"column 'y': the label\(s\) 'NA' \(2 row\(s\), first at line 4\) look "
                      r"like missing values; they are kept as classes, as other text\. If they mark missing labels, "
                      r"drop or impute those rows\.$") as caught:
        dataset = data.load_csv(path, target="y")
    assert caught[0].filename == __file__  # points at the caller's load_csv
    assert dataset.class_names == ("NA", "cat", "dog")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.load_csv(write(tmp_path, "a,y\n1,cat\n2,dog\n3,cat\n", name="plain.csv"), target="y")


def test_labels_that_are_all_symbols_are_classes_without_a_missing_value_warning(tmp_path):
    # UCI's credit approval data labels its classes "+" and "-": "-" is the negative class.
    path = write(tmp_path, "a,y\n1,+\n2,-\n3,-\n4,+\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.load_csv(path, target="y").class_names == ("+", "-")
    with pytest.warns(UserWarning, match=r"the label\(s\) '\?' \(1 row\(s\)"):  # a lone "?" among words: still named
        data.load_csv(write(tmp_path, "a,y\n1,cat\n2,?\n3,dog\n", name="q.csv"), target="y")
