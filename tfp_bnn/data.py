"""Built-in data sets and loaders for your own data.

Synthetic 1-D regressions, each with its true mean and noise standard deviation,
all returning ``x`` float32 ``(N, 1)`` and ``y`` float32 ``(N,)``:

- :func:`gap_regression`: heteroscedastic with a gap in ``x``, used throughout the
  article series: inside the two training intervals the noise grows from left to
  right (aleatoric), in the gap and beyond the ends there is no data (epistemic).
- :func:`linear_regression`: ``y = x + (3/8) eps``, constant noise.
- :func:`cubic_regression`: ``y = x^3 + 0.1 (2 + x) eps``, noise growing with ``x``.

Loaders returning a :class:`Dataset` (``x`` float32 ``(N, D)``, ``y`` float32 or
int64 labels ``0..K-1``): :func:`load_sklearn` (iris, wine, breast_cancer, digits,
bundled with scikit-learn) and :func:`load_csv`.

Images: :func:`load_digit_images` (scikit-learn's 8x8 digits, or MNIST) scaled
to [0, 1], and :func:`corrupt_images`, a spatter-like corruption of blobs and
noise for testing a classifier off its training distribution.

The UCI regression benchmark in the folder layout of Hernández-Lobato & Adams
(2015): :func:`uci_datasets`, :func:`uci_num_splits`, :func:`uci_split_indices`,
:func:`uci_settings` and :func:`load_uci`.

Problems with a file, folder or named data set raise :class:`DataError` (a
``ValueError``) with a one-line message naming the file, line and column.

Example:

>>> from tfp_bnn.data import gap_regression
>>> x, y = gap_regression(500, seed=0)
>>> x.shape, y.shape
((500, 1), (500,))
"""

import csv
import dataclasses
import math
import re
import warnings
from pathlib import Path

import numpy as np

from tfp_bnn.validation import check_positive_int

__all__ = [
    "gap_regression",
    "gap_regression_mean",
    "gap_regression_noise_std",
    "GAP_REGRESSION_INTERVALS",
    "linear_regression",
    "linear_regression_mean",
    "linear_regression_noise_std",
    "cubic_regression",
    "cubic_regression_mean",
    "cubic_regression_noise_std",
    "DataError",
    "Dataset",
    "load_sklearn",
    "SKLEARN_DATASETS",
    "load_digit_images",
    "DIGIT_IMAGE_SOURCES",
    "corrupt_images",
    "load_csv",
    "load_features",
    "load_target",
    "uci_datasets",
    "uci_num_splits",
    "uci_split_indices",
    "uci_settings",
    "load_uci",
]

#: The two intervals of x that hold training data; the gap lies between them.
GAP_REGRESSION_INTERVALS = ((-3.0, -1.0), (1.0, 3.0))


def gap_regression_mean(x):
    """``E[y | x] = sin(2x) + 0.3 x``.

    Example:

    >>> import numpy as np
    >>> from tfp_bnn.data import gap_regression_mean
    >>> gap_regression_mean([0.0, np.pi / 4]).round(4).tolist()  # sin(pi / 2) + 0.3 pi / 4
    [0.0, 1.2356]
    """
    x = np.asarray(x, np.float64)
    return np.sin(2.0 * x) + 0.3 * x


def gap_regression_noise_std(x):
    """True noise standard deviation, rising linearly from 0.1 at x = -3 to 0.5 at x = 3.

    Example:

    >>> from tfp_bnn.data import gap_regression_noise_std
    >>> gap_regression_noise_std([-3.0, 0.0, 3.0]).round(4).tolist()
    [0.1, 0.3, 0.5]
    """
    x = np.asarray(x, np.float64)
    return 0.1 + 0.4 * (x + 3.0) / 6.0


def gap_regression(num_examples=1000, seed=0, intervals=GAP_REGRESSION_INTERVALS):
    """``num_examples`` points, ``x`` uniform on the ``intervals``, ``y = mean(x) + noise_std(x) * eps``.

    Returns:
      ``x`` float32 ``(num_examples, 1)``, ``y`` float32 ``(num_examples,)``.

    Example: every ``x`` lies in one of the two intervals; the noise around the true
    mean is what :func:`gap_regression_noise_std` says.

    >>> import numpy as np
    >>> from tfp_bnn.data import GAP_REGRESSION_INTERVALS, gap_regression
    >>> from tfp_bnn.data import gap_regression_mean, gap_regression_noise_std
    >>> x, y = gap_regression(10_000, seed=0)
    >>> x.shape, y.shape, x.dtype.name
    ((10000, 1), (10000,), 'float32')
    >>> GAP_REGRESSION_INTERVALS
    ((-3.0, -1.0), (1.0, 3.0))
    >>> bool(np.all((np.abs(x) >= 1) & (np.abs(x) <= 3)))  # nothing in the gap (-1, 1)
    True
    >>> z = (y - gap_regression_mean(x[:, 0])) / gap_regression_noise_std(x[:, 0])
    >>> round(float(z.std()), 1)  # standardized noise
    1.0
    """
    _check_num_examples(num_examples)
    rng = np.random.default_rng(seed)
    lows, highs = np.asarray(intervals, np.float64).T
    which = rng.choice(len(lows), size=int(num_examples), p=(highs - lows) / np.sum(highs - lows))
    x = rng.uniform(lows[which], highs[which])
    y = gap_regression_mean(x) + gap_regression_noise_std(x) * rng.standard_normal(x.shape)
    return x[:, np.newaxis].astype(np.float32), y.astype(np.float32)


# --- The 1-D regressions of the "Probabilistic Deep Learning" article series ------------------------


def _check_num_examples(num_examples):
    # num_examples, not num_samples: in predict that name is T, the number of weight draws.
    check_positive_int(num_examples, "num_examples")


def _uniform_regression(num_examples, seed, mean, noise_std):
    """``x`` uniform on [-1, 1], ``y = mean(x) + noise_std(x) * eps`` with ``eps ~ N(0, 1)``."""
    _check_num_examples(num_examples)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=int(num_examples))
    y = mean(x) + noise_std(x) * rng.standard_normal(x.shape)
    return x[:, np.newaxis].astype(np.float32), y.astype(np.float32)


def linear_regression_mean(x):
    """``E[y | x] = x``.

    Example: the residuals of :func:`linear_regression`'s data have the noise std 3/8.

    >>> from tfp_bnn.data import linear_regression, linear_regression_mean
    >>> linear_regression_mean([-1.0, 0.5]).tolist()
    [-1.0, 0.5]
    >>> x, y = linear_regression(10_000, seed=0)
    >>> residual = y - linear_regression_mean(x[:, 0])
    >>> abs(float(residual.std()) - 0.375) < 0.01
    True
    """
    return np.array(x, np.float64)


def linear_regression_noise_std(x):
    """Constant noise standard deviation ``3/8``.

    Example: the same at every ``x``, in the shape of ``x``.

    >>> from tfp_bnn.data import linear_regression_noise_std
    >>> linear_regression_noise_std([-1.0, 0.0, 1.0]).tolist()
    [0.375, 0.375, 0.375]
    """
    return np.full(np.shape(x), 3.0 / 8.0)


def linear_regression(num_examples=100, seed=0):
    """``y = x + (3/8) eps``, ``x`` uniform on [-1, 1]: the article series' linear data (homoscedastic).

    Returns ``x`` float32 ``(num_examples, 1)``, ``y`` float32 ``(num_examples,)``.

    >>> from tfp_bnn.data import linear_regression, linear_regression_noise_std
    >>> x, y = linear_regression(100, seed=0)
    >>> x.shape, y.shape, float(linear_regression_noise_std(0.0))
    ((100, 1), (100,), 0.375)
    """
    return _uniform_regression(num_examples, seed, linear_regression_mean, linear_regression_noise_std)


def cubic_regression_mean(x):
    """``E[y | x] = x^3``.

    Example:

    >>> from tfp_bnn.data import cubic_regression_mean
    >>> cubic_regression_mean([-1.0, 0.5, 2.0]).tolist()
    [-1.0, 0.125, 8.0]
    """
    return np.asarray(x, np.float64) ** 3


def cubic_regression_noise_std(x):
    """``0.1 (2 + x)``: rises linearly with ``x`` from 0.1 at ``x = -1`` to 0.3 at ``x = 1``.

    Example: the residuals of :func:`cubic_regression`'s data, left and right of 0.

    >>> from tfp_bnn.data import cubic_regression, cubic_regression_mean, cubic_regression_noise_std
    >>> round(float(cubic_regression_noise_std(0.0)), 4)
    0.2
    >>> x, y = cubic_regression(10_000, seed=0)
    >>> residual = y - cubic_regression_mean(x[:, 0])
    >>> left, right = x[:, 0] < 0, x[:, 0] > 0
    >>> round(float(residual[left].std()), 2), round(float(residual[right].std()), 2)  # about 0.15 and 0.25
    (0.15, 0.25)
    """
    return 0.1 * (2.0 + np.asarray(x, np.float64))


def cubic_regression(num_examples=1000, seed=0):
    """``y = x^3 + 0.1 (2 + x) eps``, ``x`` uniform on [-1, 1]: non-linear mean, heteroscedastic noise.

    The noise std triples from left (0.1) to right (0.3), so a model of aleatoric
    uncertainty should widen its band with ``x``.

    Returns ``x`` float32 ``(num_examples, 1)``, ``y`` float32 ``(num_examples,)``.

    >>> from tfp_bnn.data import cubic_regression, cubic_regression_noise_std
    >>> x, y = cubic_regression(1000, seed=0)
    >>> x.shape, [round(float(s), 2) for s in cubic_regression_noise_std([-1.0, 0.0, 1.0])]
    ((1000, 1), [0.1, 0.2, 0.3])
    """
    return _uniform_regression(num_examples, seed, cubic_regression_mean, cubic_regression_noise_std)


# --- Data sets as arrays with names -----------------------------------------------------------------


class DataError(ValueError):
    """A problem with a data file, folder or named data set; the message is one line, fit to print.

    A ``ValueError``, so ``except ValueError`` catches it too.

    Example:

    >>> from tfp_bnn.data import load_sklearn
    >>> load_sklearn("mnist")
    Traceback (most recent call last):
    tfp_bnn.data.DataError: unknown scikit-learn data set 'mnist'; choose one of iris, wine, breast_cancer, digits.
    """


TASKS = ("regression", "classification")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Features, targets and their names.

    ``x`` is float32 ``(N, D)``; ``y`` is float32 ``(N,)`` for ``task="regression"``
    and int64 labels ``0..K-1`` for ``task="classification"``, where
    ``class_names[k]`` (if given) names label ``k``.

    >>> from tfp_bnn.data import Dataset
    >>> data = Dataset([[0.0, 1.0], [2.0, 3.0]], [1, 0], ("a", "b"), "label", "classification", ("no", "yes"))
    >>> data.x.dtype, data.y.dtype, data.num_features, data.num_classes
    (dtype('float32'), dtype('int64'), 2, 2)
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple
    target_name: str
    task: str
    class_names: tuple = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}.")
        x = np.asarray(self.x, np.float32)
        if x.ndim != 2:
            raise ValueError(f"x must have shape (N, D), got {x.shape}; reshape one feature to (N, 1).")
        y = np.asarray(self.y)
        if y.shape != (len(x),):
            raise ValueError(f"y must have shape ({len(x)},) to match x {x.shape}, got {y.shape}.")
        if len(self.feature_names) != x.shape[1]:
            raise ValueError(f"{len(self.feature_names)} feature names for {x.shape[1]} columns of x.")
        if self.task == "classification":
            y = _check_labels(y, self.class_names)
        # The dataclass is frozen: store the converted fields past its __setattr__.
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y.astype(np.float32 if self.task == "regression" else np.int64))
        object.__setattr__(self, "feature_names", tuple(map(str, self.feature_names)))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(map(str, self.class_names)))

    @property
    def num_examples(self):
        return self.x.shape[0]

    @property
    def num_features(self):
        return self.x.shape[1]

    @property
    def num_classes(self):
        """``K``: ``len(class_names)`` if given, else ``max(y) + 1``; ``None`` for regression."""
        if self.task == "regression":
            return None
        return len(self.class_names) if self.class_names is not None else int(self.y.max(initial=-1)) + 1


def _check_labels(y, class_names):
    if y.size and (not np.all(y == np.round(y)) or y.min() < 0):
        raise ValueError("classification labels must be integers 0..K-1; map classes to 0..K-1 first.")
    if class_names is not None and y.size and y.max() >= len(class_names):
        raise ValueError(f"label {int(y.max())} has no name among the {len(class_names)} class_names.")
    return y


#: Names accepted by :func:`load_sklearn`, with the scikit-learn function that loads each.
SKLEARN_DATASETS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
}


def load_sklearn(name):
    """One of scikit-learn's bundled classification sets (no download) as a :class:`Dataset`.

    ``name`` is ``"iris"`` (150 x 4, 3 classes), ``"wine"`` (178 x 13, 3),
    ``"breast_cancer"`` (569 x 30, 2) or ``"digits"`` (1797 x 64, 10).

    >>> from tfp_bnn.data import load_sklearn
    >>> data = load_sklearn("iris")
    >>> data.x.shape, data.class_names
    ((150, 4), ('setosa', 'versicolor', 'virginica'))
    """
    if name not in SKLEARN_DATASETS:
        choices = ", ".join(SKLEARN_DATASETS)
        raise DataError(f"unknown scikit-learn data set {name!r}; choose one of {choices}.")
    from sklearn import datasets

    bunch = getattr(datasets, SKLEARN_DATASETS[name])()
    return Dataset(
        bunch.data,
        bunch.target,
        feature_names=tuple(bunch.feature_names),
        target_name="class",
        task="classification",
        class_names=tuple(bunch.target_names),
    )


# --- Images: handwritten digits and a corruption ----------------------------------------------------

#: Sources accepted by :func:`load_digit_images`.
DIGIT_IMAGE_SOURCES = ("digits", "mnist")


def load_digit_images(source="digits", test_fraction=0.25, seed=0):
    """Handwritten digits as images scaled to [0, 1]: ``(x_train, y_train, x_test, y_test)``.

    ``x`` is float32 ``(N, H, W, 1)`` with pixels divided by their largest
    possible value (16 for scikit-learn's digits, 255 for MNIST), so a network
    sees inputs of order one; ``y`` is int64 labels 0..9.

    ``source="digits"``: scikit-learn's 1797 8x8 images (bundled, no download),
    split at random into train and test with every class in the same
    proportion in both (``test_fraction``, ``seed``).
    ``source="mnist"``: the 60000 + 10000 28x28 MNIST images of
    ``tf_keras.datasets.mnist`` with their standard split (downloaded once to
    ``~/.keras/datasets``; ``test_fraction`` and ``seed`` are ignored).

    >>> from tfp_bnn.data import load_digit_images
    >>> x_train, y_train, x_test, y_test = load_digit_images("digits")
    >>> x_train.shape, x_test.shape, float(x_train.max())
    ((1347, 8, 8, 1), (450, 8, 8, 1), 1.0)
    """
    if source not in DIGIT_IMAGE_SOURCES:
        raise DataError(f"unknown digit image source {source!r}; choose one of {', '.join(DIGIT_IMAGE_SOURCES)}.")
    if source == "mnist":
        import tf_keras

        (x_train, y_train), (x_test, y_test) = tf_keras.datasets.mnist.load_data()
        scale = 255.0
    else:
        from sklearn import datasets, model_selection

        digits = datasets.load_digits()
        x_train, x_test, y_train, y_test = model_selection.train_test_split(
            digits.images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
        )
        scale = 16.0

    def images(x):
        return (np.asarray(x, np.float32) / np.float32(scale))[..., np.newaxis]

    return images(x_train), np.int64(y_train), images(x_test), np.int64(y_test)


def corrupt_images(images, num_blobs=3, blob_radius=(0.1, 0.2), noise_std=0.15, seed=0):
    """Spatter-like corruption: soft blobs of random shade, then Gaussian pixel noise.

    Each image gets ``num_blobs`` round blobs (in the spirit of ImageNet-C's
    "spatter") at uniformly random centres, each with a radius drawn uniformly
    from ``blob_radius`` (fractions of the image side) and a shade uniform in
    [0, 1] that covers the pixels under it with a soft edge; then independent
    ``N(0, noise_std^2)`` noise is added to every pixel and the result clipped
    to [0, 1]. A classifier trained on clean images has never seen either.

    Args:
      images: ``(N, H, W)`` or ``(N, H, W, C)`` pixels in [0, 1] (all channels
        get the same blobs).
      num_blobs: blobs per image (0: noise only).
      blob_radius: ``(low, high)``, radius range as a fraction of ``max(H, W)``.
      noise_std: standard deviation of the pixel noise (0: blobs only).
      seed: seed of NumPy's generator; the same seed gives the same corruption.

    Returns:
      float32 array of the shape of ``images``, in [0, 1].

    >>> from tfp_bnn.data import corrupt_images, load_digit_images
    >>> x_train, y_train, x_test, y_test = load_digit_images("digits")
    >>> corrupt_images(x_test, seed=0).shape
    (450, 8, 8, 1)
    """
    images = np.asarray(images, np.float32)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape}.")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(
            f"images must be scaled to [0, 1], got values in [{images.min():g}, {images.max():g}]; divide by "
            "the largest pixel value (16 for scikit-learn's digits, 255 for 8-bit images)."
        )
    low, high = blob_radius
    if not 0.0 < low <= high or int(num_blobs) < 0 or not noise_std >= 0.0:
        raise ValueError(
            f"need num_blobs >= 0, 0 < blob_radius[0] <= blob_radius[1] and noise_std >= 0, got "
            f"{num_blobs!r}, {blob_radius!r}, {noise_std!r}."
        )
    rng = np.random.default_rng(seed)
    num_images, height, width = images.shape[:3]
    pixels = images.reshape(num_images, height, width, -1).copy()
    rows, columns = np.arange(height)[:, np.newaxis], np.arange(width)[np.newaxis, :]
    for _ in range(int(num_blobs)):
        centre_row = rng.uniform(0, height, num_images)[:, np.newaxis, np.newaxis]
        centre_column = rng.uniform(0, width, num_images)[:, np.newaxis, np.newaxis]
        radius = rng.uniform(low, high, num_images)[:, np.newaxis, np.newaxis] * max(height, width)
        shade = rng.uniform(0.0, 1.0, num_images)[:, np.newaxis, np.newaxis, np.newaxis]
        distance = np.hypot(rows - centre_row + 0.5, columns - centre_column + 0.5) / radius
        # Full cover inside the radius, fading to none at 1.5 radii: a splash, not a disk.
        cover = np.clip(3.0 - 2.0 * distance, 0.0, 1.0)[..., np.newaxis]
        pixels = (1.0 - cover) * pixels + cover * shade
    pixels = pixels + noise_std * rng.standard_normal(pixels.shape)
    return np.clip(pixels, 0.0, 1.0).astype(np.float32).reshape(images.shape)


# --- CSV files --------------------------------------------------------------------------------------

#: Inferred classification needs at most this many distinct integer target values (and < half the rows).
MAX_INFERRED_CLASSES = 20


def load_csv(path, target, task=None, min_rows=2, delimiter=","):
    """A CSV file with a header row of column names as a :class:`Dataset`.

    ``target`` names the target column; every other column is a feature and must be
    numeric. ``task=None`` infers it: classification if the target values are all
    integers with at most :data:`MAX_INFERRED_CLASSES` distinct values and fewer than
    half as many as rows, or if every target value is text; else regression. For
    classification the labels are mapped to ``0..K-1`` in sorted order (numeric order
    for numbers) and ``class_names`` holds the original values as text, so
    ``class_names[prediction]`` maps a prediction back.

    Raises :class:`DataError` for a missing file, a missing target column, a bad cell
    (non-numeric, empty, NaN or infinite; reported with its line in the file, the
    header being line 1, and its column), fewer than ``max(2, min_rows)`` data rows,
    or no feature columns.

    >>> from tfp_bnn.data import load_csv
    >>> data = load_csv("measurements.csv", target="label")  # doctest: +SKIP
    >>> data.task, data.class_names  # doctest: +SKIP
    ('classification', ('3', '5', '7'))
    """
    if task not in (None, *TASKS):
        raise ValueError(f"task must be None (infer), 'regression' or 'classification', got {task!r}.")
    header, rows, lines = _read_csv(path, delimiter, wanted=(target,))
    column = _column(path, header, target)
    features = [j for j in range(len(header)) if j != column]
    if not features:
        raise DataError(f"{path}: the target {target!r} is the only column; add feature columns.")
    _check_num_rows(path, rows, max(2, min_rows))
    x = _parse_cells(path, header, rows, lines, features)
    y, task, class_names = _encode_target(path, header, rows, lines, column, task)
    return Dataset(x, y, tuple(header[j] for j in features), target, task, class_names)


def load_features(path, feature_names, ignore=(), delimiter=","):
    """The columns ``feature_names`` of a CSV file, in that order, as float32 ``(N, D)``.

    For new data given to a trained model: every feature must be present; any other
    column must be listed in ``ignore`` (e.g. the target), so a wrong file is refused
    rather than silently half-used. Bad cells raise :class:`DataError` as in :func:`load_csv`.

    >>> from tfp_bnn.data import load_features
    >>> x = load_features("new.csv", ["sepal length (cm)", "sepal width (cm)"])  # doctest: +SKIP
    """
    header, rows, lines = _read_csv(path, delimiter, wanted=feature_names)
    missing = [name for name in feature_names if name not in header]
    if missing:
        raise DataError(
            f"{path}: feature column(s) {', '.join(map(repr, missing))} missing; "
            f"the columns are {', '.join(map(repr, header))}.{_no_header_hint(header)}"
        )
    extra = [name for name in header if name not in feature_names and name not in ignore]
    if extra:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, extra))} are not features of the model "
            f"({', '.join(map(repr, feature_names))}); drop them."
        )
    _check_num_rows(path, rows, 1)
    columns = [header.index(name) for name in feature_names]
    return _parse_cells(path, header, rows, lines, columns).astype(np.float32)


def load_target(path, target, class_names=None, delimiter=","):
    """The column ``target`` of a CSV file: float32 ``(N,)``, or int64 labels if ``class_names`` is given.

    With ``class_names`` (as in :attr:`Dataset.class_names`) each cell is mapped to its
    index there (``7`` and ``7.0`` both match ``"7"``); an unknown label raises
    :class:`DataError` naming its line and the known classes.

    >>> from tfp_bnn.data import load_target
    >>> y = load_target("test.csv", "label", class_names=("3", "5", "7"))  # doctest: +SKIP
    """
    header, rows, lines = _read_csv(path, delimiter, wanted=(target,))
    column = _column(path, header, target)
    _check_num_rows(path, rows, 1)
    if class_names is None:
        return _parse_cells(path, header, rows, lines, [column])[:, 0].astype(np.float32)
    index = {str(name): k for k, name in enumerate(class_names)}
    labels = [_class_index(path, row[column], line, target, index) for row, line in zip(rows, lines)]
    return np.array(labels, dtype=np.int64)


def _class_index(path, text, line, column, index):
    if text in index:
        return index[text]
    if _is_number(text) and math.isfinite(float(text)) and _number_text(text) in index:
        return index[_number_text(text)]
    if not text:
        _parse_cell(path, text, line, column)  # raises: empty cell
    known = ", ".join(map(repr, index))
    raise DataError(
        f"{path}: line {line}, column {column!r}: label {text!r} is not one of the classes {known}."
    )


def _column(path, header, name):
    if name not in header:
        raise DataError(
            f"{path}: no column {name!r}; the columns are {', '.join(map(repr, header))}.{_no_header_hint(header)}"
        )
    return header.index(name)


def _check_num_rows(path, rows, need):
    if len(rows) < need:
        raise DataError(f"{path}: {len(rows)} data row(s) below the header; need at least {need}.")


def _read_csv(path, delimiter, wanted=()):
    """The header, the non-blank rows (stripped cells) and each row's line number in the file.

    ``wanted``: the column names asked for; a one-column header that is one of them is no sign
    of another separator (a name may hold ';' or '|').
    """
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "file not found"
        raise DataError(f"{path}: {problem}; pass the path of a CSV file.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, delimiter=delimiter)
            header = [name.strip() for name in next(reader, [])]
            _check_header(path, header)
            _check_delimiter(path, header, delimiter, wanted)
            rows, lines = [], []
            for cells in reader:
                cells = [cell.strip() for cell in cells]
                if len(cells) <= 1 and not any(cells):
                    continue  # a blank line
                if len(cells) != len(header):
                    raise DataError(
                        f"{path}: line {reader.line_num} has {len(cells)} cells but the header has "
                        f"{len(header)} columns; check the delimiter and quoting."
                    )
                rows.append(cells)
                lines.append(reader.line_num)
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8.")
    except csv.Error as error:
        raise DataError(f"{path}: not readable as CSV ({error}).")
    # Spreadsheets export trailing rows of empty cells (",,"); one between data rows is a row of
    # missing values, refused as such (dropping it would shift every prediction after it).
    while rows and not any(rows[-1]):
        rows.pop()
        lines.pop()
    return header, rows, lines


def _check_delimiter(path, header, delimiter, wanted=()):
    """A header of one column holding another separator: the file is not ``delimiter``-separated."""
    if len(header) != 1 or header[0] in wanted:
        return
    for other in (",", ";", "\t", "|"):
        if other != delimiter and other in header[0]:
            name = "tab" if other == "\t" else other
            raise DataError(
                f"{path}: the header {header[0]!r} is one column: the file seems separated by {name!r}, not "
                f"{delimiter!r}; pass delimiter={other!r} (tfp-bnn: --delimiter {name!r})."
            )


def _check_header(path, header):
    if not any(header):
        raise DataError(f"{path}: empty first line; the first line must be a header row of column names.")
    if "" in header:
        raise DataError(
            f"{path}: column {header.index('') + 1} of the header has no name; name it or drop it "
            "(an unnamed first column is often a saved row index, e.g. pandas' to_csv without index=False)."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(
            f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more than once.{_no_header_hint(header)}"
        )


def _no_header_hint(header):
    """A hint for a first line of numbers only: most likely data, the file having no header row."""
    if all(_is_number(name) for name in header):
        return " The first line holds numbers only: if it is data, add a header row of column names above it."
    return ""


def _parse_cells(path, header, rows, lines, columns):
    """The cells of ``columns`` as float64 ``(len(rows), len(columns))``; DataError at the first bad cell."""
    block = [[row[j] for j in columns] for row in rows]
    try:
        values = np.array(block, dtype=np.float64)
        if np.all(np.abs(values) <= _FLOAT32_MAX):  # finite, and so in float32 (NaN compares False)
            return values.reshape(len(rows), len(columns))
    except ValueError:
        pass
    # Slow path, only for a file with a bad cell: find and report the first one.
    # A marker ("none", "-") is a missing value only if the column has no other text.
    marks_missing = [_only_missing_markers(row[k] for row in block) for k in range(len(columns))]
    return np.array(
        [
            [_parse_cell(path, text, line, header[j], marks) for text, j, marks in zip(row, columns, marks_missing)]
            for row, line in zip(block, lines)
        ]
    )


def _parse_cell(path, text, line, column, marks_missing=True):
    where = f"{path}: line {line}, column {column!r}"
    if not text:
        raise DataError(f"{where}: empty cell; fill in or drop rows with missing values.")
    try:
        value = float(text)
    except ValueError:
        if marks_missing and _is_missing_marker(text):
            raise DataError(f"{where}: {text!r} is not a number{_MISSING_ADVICE}") from None
        raise DataError(f"{where}: {text!r} is not a number; encode text as numbers or drop the column.") from None
    if not math.isfinite(value):
        raise DataError(
            f"{where}: {text!r} is not a finite number; drop or impute missing and infinite values."
        )
    if abs(value) > _FLOAT32_MAX:
        raise DataError(
            f"{where}: {text!r} is beyond float32's range (about 3.4e38), in which the model computes; "
            "rescale the column."
        )
    return value


_FLOAT32_MAX = float(np.finfo(np.float32).max)


# How spreadsheets, R and pandas write a missing value. "nan" parses as a float and is
# refused as non-finite; these do not parse, and the advice for other text (encode it,
# or it is a class label) would be wrong for them.
_MISSING_MARKERS = frozenset({"na", "n/a", "#n/a", "null", "none", "missing", "?", "-", "--", "."})
_MISSING_ADVICE = " (it looks like a missing value); drop or impute rows with missing values."


def _is_missing_marker(text):
    return text.strip().lower() in _MISSING_MARKERS


def _only_missing_markers(texts):
    """Whether a column's cells that are not numbers are all missing-value markers (or empty)."""
    return all(not text or _is_number(text) or _is_missing_marker(text) for text in texts)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _encode_target(path, header, rows, lines, column, task):
    """``(y, task, class_names)``: float32 targets, or int64 labels 0..K-1 and the original values as text."""
    texts = [row[column] for row in rows]
    # "nan"/"inf" parse as floats but are not numbers of a numeric column: among text labels
    # they are missing values, refused below at their own cell.
    numeric = [_is_number(text) and math.isfinite(float(text)) for text in texts]
    if (task == "classification" and not all(numeric)) or (task is None and not any(numeric)):
        # As in every column: a marker ("NA", "none") is a missing value where the labels hold no other
        # text (numbers and markers), and a class, as any text, among text labels ("none", "mild").
        markers_missing = _only_missing_markers(texts)
        for text, line in zip(texts, lines):
            if not text or _is_number(text):
                _parse_cell(path, text, line, header[column])  # raises: empty or non-finite label
            elif markers_missing and _is_missing_marker(text):
                kind = "not a number, in a target of numbers" if any(numeric) else "not a class label"
                raise DataError(f"{path}: line {line}, column {header[column]!r}: {text!r} is {kind}{_MISSING_ADVICE}")
        classes, labels = np.unique(np.array(texts), return_inverse=True)
        _warn_of_marker_classes(path, header[column], texts, lines)
        return _labels(path, header[column], labels, [str(name) for name in classes])
    if task is None and not all(numeric):
        for text, line in zip(texts, lines):
            if text and not _is_number(text):  # numbers and text mixed: classes, or a stray note?
                if _is_missing_marker(text) and _only_missing_markers(texts):
                    raise DataError(
                        f"{path}: line {line}, column {header[column]!r}: {text!r} is not a number, in a target "
                        f"of numbers{_MISSING_ADVICE}"
                    )
                raise DataError(
                    f"{path}: line {line}, column {header[column]!r}: {text!r} is not a number, in a target of "
                    "numbers: fix or drop that row, or if the values are classes pass task='classification' "
                    "(tfp-bnn: --task classification)."
                )
    values = _parse_cells(path, header, rows, lines, [column])[:, 0]
    task = task or _infer_task(values)
    if task == "regression":
        return values.astype(np.float32), task, None
    if all(_INTEGER.fullmatch(text.strip()) for text in texts):
        # As Python ints: float64 would merge integer labels beyond 2**53 (IDs, product codes).
        exact = [int(text) for text in texts]
        classes = sorted(set(exact))
        index = {value: k for k, value in enumerate(classes)}
        return _labels(path, header[column], np.array([index[v] for v in exact]), [str(c) for c in classes])
    classes, labels = np.unique(values, return_inverse=True)
    return _labels(path, header[column], labels, [_number_text(value) for value in classes])


def _warn_of_marker_classes(path, name, texts, lines):
    """A ``UserWarning`` naming text labels that are missing-value markers, kept as classes."""
    found = {}
    # Labels that are all symbols ("+" and "-", as in UCI's credit approval data) are classes: a "-"
    # among them is the negative class, not a missing value.
    symbols = {text for text in texts if text.strip() and not any(ch.isalnum() for ch in text)}
    for text, line in zip(texts, lines):
        if _is_missing_marker(text) and not (text in symbols and len(symbols) > 1):
            found.setdefault(text, []).append(line)
    if found:
        named = ", ".join(f"{text!r} ({len(at)} row(s), first at line {at[0]})" for text, at in found.items())
        warnings.warn(
            f"{path}: column {name!r}: the label(s) {named} look like missing values; they are kept as classes, as "
            "other text. If they mark missing labels, drop or impute those rows.",
            UserWarning,
            stacklevel=4,
        )


_INTEGER = re.compile(r"-?\d+")


def _infer_task(values):
    distinct = np.unique(values).size
    integers = np.all(values == np.round(values))
    few = distinct <= MAX_INFERRED_CLASSES and distinct < len(values) / 2
    return "classification" if integers and few else "regression"


def _number_text(value):
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _labels(path, name, labels, class_names):
    if len(class_names) < 2:
        raise DataError(
            f"{path}: target {name!r} has one value only ({class_names[0]});"
            " a classifier needs 2 classes or more."
        )
    return labels.reshape(-1).astype(np.int64), "classification", tuple(class_names)


# --- The UCI regression benchmark of Hernández-Lobato & Adams (2015) ---------------------------------
#
# A data set folder holds (directly, or in a ``data/`` subfolder as in the original
# repositories) whitespace-separated text files: ``data.txt`` (one row per example),
# ``index_features.txt`` and ``index_target.txt`` (0-based column numbers),
# ``index_train_<i>.txt`` / ``index_test_<i>.txt`` (0-based row numbers of split i),
# optionally ``n_splits.txt`` and the hyperparameter files read by :func:`uci_settings`.
# Indices may be written as integers or as floats (``3.0``, ``3.000e+00``).

_UCI_REQUIRED = "data.txt, index_features.txt, index_target.txt and index_train_<i>.txt / index_test_<i>.txt"
_UCI_SETTINGS = {
    "n_splits": int,
    "n_hidden": int,
    "n_epochs": int,
    "dropout_rates": float,
    "tau_values": float,
}


def _uci_folder(directory):
    """The folder that holds ``data.txt``: ``directory/data`` or ``directory`` itself."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: folder not found; pass a UCI data set folder (with {_UCI_REQUIRED}).")
    for folder in (directory / "data", directory):
        if (folder / "data.txt").is_file():
            return folder
    inside = [folder.name for folder in uci_datasets(directory)]
    if inside:
        raise DataError(f"{directory} holds UCI data set folders ({', '.join(inside)}); pass one of them.")
    raise DataError(
        f"{directory}: no data.txt in it or in {directory / 'data'}; "
        f"a UCI data set folder holds {_UCI_REQUIRED}."
    )


def uci_datasets(root):
    """The UCI data set folders directly inside ``root``, sorted by name (empty if there are none).

    >>> from tfp_bnn.data import uci_datasets
    >>> [folder.name for folder in uci_datasets("/work/shared/data/uci")][:2]  # doctest: +SKIP
    ['bostonHousing', 'concrete']
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found; pass the folder that holds the UCI data set folders.")
    found = [
        folder
        for folder in root.iterdir()
        if folder.is_dir() and ((folder / "data.txt").is_file() or (folder / "data" / "data.txt").is_file())
    ]
    return sorted(found, key=lambda folder: folder.name.lower())


def _read_numbers(path):
    """All whitespace-separated numbers in a small text file, as float64 ``(n,)``."""
    if not path.is_file():
        raise DataError(f"{path}: file not found; a UCI data set folder holds {_UCI_REQUIRED}.")
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError as error:
        raise DataError(f"{path}: expected whitespace-separated numbers ({error}).") from None
    if values.size == 0:
        raise DataError(f"{path}: empty; expected whitespace-separated numbers.")
    return values


def _read_indices(path, size, what):
    """0-based indices (written as integers or floats) into ``size`` rows or columns, as int64."""
    values = _read_numbers(path)
    if not np.all(values == np.round(values)):
        bad = values[values != np.round(values)][0]
        raise DataError(f"{path}: {bad} is not a whole number; indices are 0-based integers.")
    indices = values.astype(np.int64)
    bad = (indices < 0) | (indices >= size)
    if bad.any():
        first, last = indices[bad][0], size - 1
        raise DataError(f"{path}: index {first} is out of range for {size} {what} (0-based, 0..{last}).")
    return indices


def uci_num_splits(directory):
    """The number of train/test splits: ``n_splits.txt`` if present, else the number of ``index_train_<i>.txt``.

    >>> from tfp_bnn.data import uci_num_splits
    >>> uci_num_splits("/work/shared/data/uci/bostonHousing")  # doctest: +SKIP
    20
    """
    folder = _uci_folder(directory)
    if (folder / "n_splits.txt").is_file():
        values = _read_numbers(folder / "n_splits.txt")
        if values.size != 1 or values[0] != int(values[0]) or values[0] < 1:
            raise DataError(f"{folder / 'n_splits.txt'}: expected one positive integer.")
        return int(values[0])
    count = 0
    while (folder / f"index_train_{count}.txt").is_file():
        count += 1
    if count == 0:
        raise DataError(f"{folder}: no n_splits.txt nor index_train_0.txt; it should hold {_UCI_REQUIRED}.")
    return count


def uci_split_indices(directory, split):
    """0-based row indices ``(train, test)`` of split ``split``, int64.

    >>> from tfp_bnn.data import uci_split_indices
    >>> train, test = uci_split_indices("/work/shared/data/uci/bostonHousing", 0)  # doctest: +SKIP
    >>> len(train), len(test)  # doctest: +SKIP
    (455, 51)
    """
    folder = _uci_folder(directory)
    _check_split(directory, folder, split)
    return _split_indices(folder, split, _count_rows(folder / "data.txt"))


def _check_split(directory, folder, split):
    num_splits = uci_num_splits(folder)
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 0 <= split < num_splits:
        last = num_splits - 1
        raise DataError(f"split {split!r} is out of range: {directory} has {num_splits} splits, 0..{last}.")


def _split_indices(folder, split, num_rows):
    paths = (folder / f"index_train_{split}.txt", folder / f"index_test_{split}.txt")
    return tuple(_read_indices(path, num_rows, "rows") for path in paths)


def _count_rows(path):
    """Rows of a table as np.loadtxt counts them: lines that are neither blank nor comments."""
    with open(path, "rb") as file:
        return sum(1 for line in file if line.strip() and not line.lstrip().startswith(b"#"))


def _load_table(path):
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        reason = " ".join(str(error).split())  # one line
        raise DataError(f"{path}: not a table of whitespace-separated numbers ({reason}).") from None


def load_uci(directory, split):
    """Split ``split`` of a UCI data set folder: ``(x_train, y_train, x_test, y_test)``, float32.

    ``x`` is ``data[rows, index_features]`` ``(N, D)`` and ``y`` is
    ``data[rows, index_target]`` ``(N,)``, unnormalised (standardise with the training
    split's statistics, as the benchmark does).

    >>> from tfp_bnn.data import load_uci
    >>> x_train, y_train, x_test, y_test = load_uci("/work/shared/data/uci/bostonHousing", 0)  # doctest: +SKIP
    >>> x_train.shape, y_test.shape  # doctest: +SKIP
    ((455, 13), (51,))
    """
    folder = _uci_folder(directory)
    _check_split(directory, folder, split)  # before reading a possibly large table
    data = _load_table(folder / "data.txt")
    train, test = _split_indices(folder, split, len(data))
    shared = np.intersect1d(train, test)
    if shared.size:  # scored on rows it was trained on
        raise DataError(
            f"{folder}: split {split} has {shared.size} row(s) in both index_train_{split}.txt and "
            f"index_test_{split}.txt (e.g. row {shared[0]}); a test row must not be trained on."
        )
    features = _read_indices(folder / "index_features.txt", data.shape[1], "columns")
    target = _read_indices(folder / "index_target.txt", data.shape[1], "columns")
    if target.size != 1:
        raise DataError(f"{folder / 'index_target.txt'}: expected one column number, found {target.size}.")
    if target[0] in features:
        raise DataError(f"{folder}: the target column {target[0]} is also listed in index_features.txt.")
    x = data[:, features].astype(np.float32)
    y = data[:, target[0]].astype(np.float32)
    rows = np.concatenate([train, test])
    bad = ~np.isfinite(x[rows]).all(axis=1) | ~np.isfinite(y[rows])
    if bad.any():
        raise DataError(
            f"{folder / 'data.txt'}: row {rows[bad][0]} of split {split} holds a NaN or infinite value (or one "
            "beyond float32); drop or impute it."
        )
    return x[train], y[train], x[test], y[test]


def uci_settings(directory):
    """The benchmark's settings files present in the folder, parsed.

    Keys (each only if its file exists): ``n_splits``, ``n_hidden`` (hidden units),
    ``n_epochs`` (PBP's epoch count) as ints; ``dropout_rates`` and ``tau_values``
    (Gal's grid) as tuples of floats.

    >>> from tfp_bnn.data import uci_settings
    >>> settings = uci_settings("/work/shared/data/uci/protein-tertiary-structure")  # doctest: +SKIP
    >>> settings["n_splits"], settings["n_hidden"], settings["tau_values"]  # doctest: +SKIP
    (5, 100, (0.025, 0.05, 0.075))
    """
    folder = _uci_folder(directory)
    settings = {}
    for name, kind in _UCI_SETTINGS.items():
        path = folder / f"{name}.txt"
        if path.is_file():
            values = _read_numbers(path)
            if kind is int:
                if values.size != 1 or values[0] != int(values[0]):
                    raise DataError(f"{path}: expected one integer.")
                settings[name] = int(values[0])
            else:
                settings[name] = tuple(float(value) for value in values)
    return settings
