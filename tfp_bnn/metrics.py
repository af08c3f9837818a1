"""Metrics as plain functions of NumPy arrays.

Regression: :func:`rmse`, :func:`mixture_nll` and, per point,
:func:`mixture_log_likelihoods` (from the per-draw log-likelihoods of
:func:`tfp_bnn.log_likelihoods`), :func:`interval_coverage`,
:func:`interval_width`, :func:`crps_gaussian`, :func:`crps_ensemble`.
Classification (integer labels, probabilities ``(N, K)``): :func:`accuracy`,
:func:`categorical_nll`, :func:`brier_score`, :func:`expected_calibration_error`
and its bins, :func:`calibration_bins`.

Example:

>>> import tfp_bnn
>>> from tfp_bnn import data
>>> from tfp_bnn.metrics import mixture_nll
>>> x, y = data.gap_regression(50, seed=0)
>>> model = tfp_bnn.make_regressor((1,), train_size=len(x))  # fit it first
>>> ll = tfp_bnn.log_likelihoods(model, x, y, num_samples=100, seed=0)
>>> ll.shape  # (T, N)
(100, 50)
>>> nll = mixture_nll(ll)  # the mean over points of -log(1/T sum_t p(y | x, w_t))
"""

import numpy as np
import tensorflow_probability as tfp

from tfp_bnn.validation import check_positive_int

_STANDARD_NORMAL = tfp.distributions.Normal(np.float64(0.0), np.float64(1.0))

__all__ = [
    "rmse",
    "mixture_nll",
    "mixture_log_likelihoods",
    "interval_coverage",
    "interval_width",
    "crps_gaussian",
    "crps_ensemble",
    "accuracy",
    "categorical_nll",
    "brier_score",
    "expected_calibration_error",
    "calibration_bins",
]


def _squeezed_shape(shape):
    """A shape without its axes of length 1: (N,), (N, 1) and (1, N) all hold the same N values."""
    return tuple(d for d in shape if d != 1)


def _check_same_shape(first, second, names):
    # Equal sizes alone would pair (N, 2) targets with (2, N) predictions, flattened in different orders.
    if first.size != second.size:
        raise ValueError(f"{names[0]} has {first.size} values but {names[1]} has {second.size}.")
    if _squeezed_shape(first.shape) != _squeezed_shape(second.shape):
        raise ValueError(
            f"{names[0]} has shape {first.shape} but {names[1]} has shape {second.shape}: the same values in "
            "another layout (transposed?) would be paired wrongly."
        )


def _flat_pair(y_true, y_pred, names=("y_true", "y_pred")):
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    _check_same_shape(y_true, y_pred, names)
    for name, values in zip(names, (y_true, y_pred)):
        _check_values(values, name)
    return y_true.reshape(-1), y_pred.reshape(-1)


def _check_values(values, name):
    # As scikit-learn's metrics: a NaN would be a miss in a coverage, a NaN in a mean.
    if values.size == 0:
        raise ValueError(f"{name} is empty; a metric needs at least one example.")
    bad = np.isnan(values) if name in _MAY_BE_INFINITE else ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad.reshape(-1))[0][0])
        raise ValueError(f"{name} has a NaN or infinite value (at flat index {row}); drop or impute those rows first.")


# An infinite end is a one-sided interval.
_MAY_BE_INFINITE = ("lower", "upper", "log_likelihoods")


def _ordered_bounds(lower, upper):
    lower, upper = _flat_pair(lower, upper, ("lower", "upper"))
    if np.any(lower > upper):
        row = int(np.argmax(lower > upper))
        raise ValueError(f"lower > upper at flat index {row}; pass the interval as (lower, upper).")
    return lower, upper


def rmse(y_true, y_pred):
    """Root mean squared error.

    Example: errors 0, 0 and 2.

    >>> from tfp_bnn.metrics import rmse
    >>> round(rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]), 4)  # sqrt(4 / 3)
    1.1547
    """
    y_true, y_pred = _flat_pair(y_true, y_pred)
    return float(np.sqrt(np.mean(np.square(y_true - y_pred))))


def mixture_log_likelihoods(log_likelihoods):
    """Log-likelihood of each point under the Monte Carlo predictive mixture.

    .. math:: \\log \\frac1T \\sum_t p(y_n | x_n, w_t)

    computed as ``logsumexp_t(ll) - log T`` so that tiny per-draw likelihoods
    do not underflow. Their spread gives the standard error of
    :func:`mixture_nll`: ``std / sqrt(N)``.

    Args:
      log_likelihoods: ``(T, N)`` array of ``log p(y_n | x_n, w_t)``.

    Returns:
      ``(N,)`` array.

    Example: two draws, two points; the mixture averages the likelihoods, not their logs.

    >>> import numpy as np
    >>> from tfp_bnn.metrics import mixture_log_likelihoods
    >>> ll = np.log([[0.2, 0.5], [0.4, 0.5]])  # (T, N)
    >>> np.exp(mixture_log_likelihoods(ll)).round(4).tolist()  # (0.2 + 0.4) / 2 and (0.5 + 0.5) / 2
    [0.3, 0.5]
    """
    ll = np.asarray(log_likelihoods, np.float64)
    if ll.ndim != 2:
        raise ValueError(f"log_likelihoods must have shape (T, N), got {ll.shape}.")
    _check_values(ll, "log_likelihoods")  # empty or NaN; -inf is a likelihood of 0
    return np.logaddexp.reduce(ll, axis=0) - np.log(ll.shape[0])


def mixture_nll(log_likelihoods):
    """Mean negative log-likelihood of the Monte Carlo predictive mixture.

    .. math:: -\\frac1N \\sum_n \\log \\frac1T \\sum_t p(y_n | x_n, w_t)

    the negated mean of :func:`mixture_log_likelihoods`.

    Args:
      log_likelihoods: ``(T, N)`` array of ``log p(y_n | x_n, w_t)``.

    Example: the likelihoods of :func:`mixture_log_likelihoods`'s example, 0.3 and 0.5.

    >>> import numpy as np
    >>> from tfp_bnn.metrics import mixture_nll
    >>> ll = np.log([[0.2, 0.5], [0.4, 0.5]])  # (T, N)
    >>> round(mixture_nll(ll), 4)  # -(log 0.3 + log 0.5) / 2
    0.9486
    >>> round(float(-ll.mean()), 4)  # the mean per-draw NLL is larger (Jensen), not the same thing
    0.978
    """
    return float(-np.mean(mixture_log_likelihoods(log_likelihoods)))


def interval_coverage(y_true, lower, upper):
    """Fraction of targets inside ``[lower, upper]``.

    Example: the ends count as inside; 3 lies above its interval.

    >>> from tfp_bnn.metrics import interval_coverage
    >>> interval_coverage([0.0, 1.0, 2.0, 3.0], lower=[0.0, 0.0, 0.0, 0.0], upper=[1.0, 1.0, 2.0, 2.0])
    0.75
    """
    y_true, _ = _flat_pair(y_true, lower, ("y_true", "lower"))
    lower, upper = _ordered_bounds(lower, upper)
    return float(np.mean((lower <= y_true) & (y_true <= upper)))


def interval_width(lower, upper):
    """Mean width ``upper - lower``.

    Example: widths 1, 1, 2 and 2.

    >>> from tfp_bnn.metrics import interval_width
    >>> interval_width(lower=[0.0, 0.0, 0.0, 0.0], upper=[1.0, 1.0, 2.0, 2.0])
    1.5
    """
    lower, upper = _ordered_bounds(lower, upper)
    return float(np.mean(upper - lower))


def crps_gaussian(y_true, mean, stddev):
    """Mean continuous ranked probability score of ``N(mean, stddev^2)`` forecasts (closed form).

    .. math:: \\sigma [z (2 \\Phi(z) - 1) + 2 \\phi(z) - 1 / \\sqrt\\pi], \\quad z = (y - \\mu) / \\sigma

    and ``|y - mu|`` where ``sigma = 0`` (a point forecast, e.g. a ``PointHead``).

    Example: ``N(0, 1)`` at ``y = 0`` scores ``2 phi(0) - 1 / sqrt(pi)``; a point
    forecast 1 away scores 1.

    >>> from tfp_bnn.metrics import crps_gaussian
    >>> round(crps_gaussian([0.0], mean=[0.0], stddev=[1.0]), 4)
    0.2337
    >>> crps_gaussian([1.0], mean=[0.0], stddev=[0.0])
    1.0
    """
    flat_y, mean = _flat_pair(y_true, mean, ("y_true", "mean"))
    _, stddev = _flat_pair(y_true, stddev, ("y_true", "stddev"))  # against y_true's own shape, not the flat copy
    y_true = flat_y
    if np.any(stddev < 0):
        raise ValueError("stddev must be >= 0 (a standard deviation, not a variance or log-scale).")
    point = stddev == 0
    z = np.divide(y_true - mean, stddev, out=np.zeros_like(y_true), where=~point)
    cdf, pdf = _STANDARD_NORMAL.cdf(z).numpy(), _STANDARD_NORMAL.prob(z).numpy()
    crps = stddev * (z * (2 * cdf - 1) + 2 * pdf - 1 / np.sqrt(np.pi))
    return float(np.mean(np.where(point, np.abs(y_true - mean), crps)))


def crps_ensemble(y_true, samples):
    """Mean CRPS of the empirical distribution of ``samples`` ``(S, N)``.

    ``E|X - y| - E|X - X'| / 2``, with the second term from the sorted
    samples in ``O(S log S)``.

    Example: two samples, 0 and 2, of a target 1: ``E|X - y| = 1``, ``E|X - X'| / 2 = 0.5``.
    Many samples of ``N(0, 1)`` approach :func:`crps_gaussian`'s closed form, 0.2337.

    >>> import numpy as np
    >>> from tfp_bnn.metrics import crps_ensemble, crps_gaussian
    >>> crps_ensemble([1.0], [[0.0], [2.0]])  # samples (S, N) = (2, 1)
    0.5
    >>> samples = np.random.default_rng(0).normal(size=(10_000, 1))
    >>> abs(crps_ensemble([0.0], samples) - crps_gaussian([0.0], mean=[0.0], stddev=[1.0])) < 0.01
    True
    """
    samples, y_true = np.asarray(samples, np.float64), np.asarray(y_true, np.float64)
    _check_values(y_true, "y_true")
    _check_values(samples, "samples")
    flat = samples.reshape(samples.shape[0], -1)
    if flat.shape[1] != y_true.size:
        raise ValueError(f"samples must have shape (S, {y_true.size}), got {flat.shape}.")
    if samples.ndim > 1 and _squeezed_shape(samples.shape[1:]) != _squeezed_shape(y_true.shape):
        raise ValueError(f"samples must have shape (S, *{y_true.shape}) as y_true, got {samples.shape}.")
    samples, y_true = np.sort(flat, axis=0), y_true.reshape(-1)
    size = samples.shape[0]
    absolute_error = np.mean(np.abs(samples - y_true), axis=0)
    weights = (2 * np.arange(1, size + 1) - size - 1)[:, np.newaxis]
    spread = np.sum(weights * samples, axis=0) / size**2
    return float(np.mean(absolute_error - spread))


def _labels_and_probs(labels, probabilities):
    labels = np.asarray(labels)
    given = np.asarray(probabilities).dtype
    probabilities = np.asarray(probabilities, np.float64)
    if labels.ndim == 2 and labels.shape[1] > 1 and labels.shape == probabilities.shape:
        raise ValueError(
            f"labels of shape {labels.shape} look one-hot; pass the class indices, labels.argmax(axis=1)."
        )
    labels = labels.reshape(-1)
    if labels.size == 0:
        raise ValueError("labels is empty; a metric needs at least one example.")
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.size:
        raise ValueError(
            f"probabilities must have shape (N, K) with N = {labels.size} labels, got {probabilities.shape}."
        )
    num_classes = probabilities.shape[1]
    if num_classes < 2:
        raise ValueError(
            f"probabilities has shape {probabilities.shape}: one column, not a distribution over classes. For "
            "P(y = 1) of a binary model (a BernoulliHead's model.predict) pass np.hstack([1 - p, p]), or "
            "tfp_bnn.predict(model, x).probabilities."
        )
    bad = ~np.isin(labels, np.arange(num_classes))
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(f"labels must be integers 0..{num_classes - 1}; labels[{index}] = {labels[index]}.")
    sums = probabilities.sum(axis=-1)
    # float32 rows of a softmax sum to 1 within ~1e-6; a row that does not is not a distribution.
    # Lower precisions round more: a float16 row sums to 1 only within a few times its eps (1e-3).
    tolerance = max(1e-4, 4 * np.finfo(given).eps) if np.issubdtype(given, np.floating) else 1e-4
    if np.any(probabilities < 0) or not np.allclose(sums, 1.0, rtol=0.0, atol=tolerance):
        raise ValueError(
            f"probabilities must be rows of K >= 0 numbers that sum to 1 (row sums {sums.min():.6g} to "
            f"{sums.max():.6g}); normalise them, e.g. p / p.sum(axis=1, keepdims=True)."
        )
    return labels.astype(np.int64), probabilities


def accuracy(labels, probabilities):
    """Fraction of examples whose most probable class is the label.

    Example: integer labels, probabilities ``(N, K)``; the third example is wrong.

    >>> from tfp_bnn.metrics import accuracy
    >>> round(accuracy([0, 1, 1], [[0.7, 0.3], [0.4, 0.6], [0.8, 0.2]]), 4)
    0.6667
    """
    labels, probabilities = _labels_and_probs(labels, probabilities)
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def categorical_nll(labels, probabilities, eps=1e-12):
    """Mean ``-log p(label)``; probabilities are clipped at ``eps`` (a vote share of 0).

    Example: the labels' probabilities are 0.7, 0.6 and 0.2: ``-(log 0.7 + log 0.6 + log 0.2) / 3``.

    >>> from tfp_bnn.metrics import categorical_nll
    >>> round(categorical_nll([0, 1, 1], [[0.7, 0.3], [0.4, 0.6], [0.8, 0.2]]), 4)
    0.8256
    >>> round(categorical_nll([1], [[1.0, 0.0]]), 2)  # -log(1e-12), not infinity
    27.63
    """
    labels, probabilities = _labels_and_probs(labels, probabilities)
    return float(-np.mean(np.log(np.maximum(probabilities[np.arange(labels.size), labels], eps))))


def brier_score(labels, probabilities):
    """Mean Brier score ``sum_k (p_k - 1[y = k])^2`` (0 is perfect, 2 the worst).

    In NumPy on the probabilities as given: ``tfp.stats.brier_score`` takes logits and
    renormalises them through a softmax.

    Example: per example ``0.3^2 + 0.3^2``, ``0.4^2 + 0.4^2`` and ``0.8^2 + 0.8^2``.

    >>> from tfp_bnn.metrics import brier_score
    >>> round(brier_score([0, 1, 1], [[0.7, 0.3], [0.4, 0.6], [0.8, 0.2]]), 4)  # (0.18 + 0.32 + 1.28) / 3
    0.5933
    """
    labels, probabilities = _labels_and_probs(labels, probabilities)
    one_hot = np.eye(probabilities.shape[1])[labels]
    return float(np.mean(np.sum(np.square(probabilities - one_hot), axis=-1)))


def calibration_bins(labels, probabilities, num_bins=10):
    """Counts, accuracy and mean confidence of the top class in ``num_bins`` equal-width bins.

    Bin ``b`` holds the confidences in ``[b / B, (b + 1) / B)`` (the last bin also 1), with
    the edges ``b / B`` rounded to the probabilities' own precision: a confidence of 0.7 is in
    the bin [0.7, 0.8) also as float32 (0.69999999, what ``tfp_bnn.predict`` returns for
    7 votes of 10), where ``floor(0.69999999 * 10)`` would put it in [0.6, 0.7).
    :func:`expected_calibration_error` and :func:`tfp_bnn.plots.reliability_diagram` both
    use these bins (``tfp.stats.expected_calibration_error`` bins a float32 softmax of the
    log-probabilities, which moves confidences on a bin edge, e.g. 0.6, to the bin below).

    Returns:
      ``(counts, accuracy, confidence)``, each of shape ``(num_bins,)``; accuracy and
      confidence are NaN in empty bins.

    Example:

    >>> from tfp_bnn.metrics import calibration_bins
    >>> counts, accuracy, confidence = calibration_bins([0, 1, 1], [[0.7, 0.3], [0.75, 0.25], [0.1, 0.9]], 10)
    >>> counts.tolist()
    [0, 0, 0, 0, 0, 0, 0, 2, 0, 1]
    >>> float(accuracy[7]), float(confidence[7]), float(accuracy[9])
    (0.5, 0.725, 1.0)
    """
    check_positive_int(num_bins, "num_bins")
    given = np.asarray(probabilities).dtype
    precision = given if np.issubdtype(given, np.floating) else np.float64
    labels, probabilities = _labels_and_probs(labels, probabilities)
    confidence = np.max(probabilities, axis=-1)
    correct = (np.argmax(probabilities, axis=-1) == labels).astype(np.float64)
    edges = (np.arange(1, num_bins) / num_bins).astype(precision).astype(np.float64)
    bins = np.searchsorted(edges, confidence, side="right")
    counts = np.bincount(bins, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(bins, weights=correct, minlength=num_bins) / counts
        mean_confidence = np.bincount(bins, weights=confidence, minlength=num_bins) / counts
    return counts, accuracy, mean_confidence


def expected_calibration_error(labels, probabilities, num_bins=10):
    """Expected calibration error of the top-class confidence, ``num_bins`` equal-width bins.

    ``sum_b (n_b / N) |accuracy_b - confidence_b|`` over the bins of :func:`calibration_bins`.

    Example: the bins of :func:`calibration_bins`'s example, two examples in [0.7, 0.8)
    (accuracy 0.5, confidence 0.725) and one in [0.9, 1] (1 and 0.9): ``(2 * 0.225 + 0.1) / 3``.

    >>> from tfp_bnn.metrics import expected_calibration_error
    >>> round(expected_calibration_error([0, 1, 1], [[0.7, 0.3], [0.75, 0.25], [0.1, 0.9]]), 4)
    0.1833
    """
    counts, accuracy, confidence = calibration_bins(labels, probabilities, num_bins)
    filled = counts > 0
    return float(np.sum(counts[filled] * np.abs(accuracy[filled] - confidence[filled])) / np.sum(counts))
