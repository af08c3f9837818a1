"""Figures of predictive uncertainty (matplotlib; ``pip install 'tfp-bnn[plots]'``).

One function per figure; each takes plain arrays and the prediction objects of
:func:`tfp_bnn.predict`, draws on ``ax`` if given (else on a new figure) and
returns the matplotlib ``Figure``. Nothing here trains or calls a model.

Regression (:class:`tfp_bnn.RegressionPrediction`, one output):

* :func:`uncertainty_bands`: mean with separate +-2 sd bands for the aleatoric,
  epistemic and total uncertainty over a 1-D input;
* :func:`sampled_curves`: the predictive mean of individual weight draws;
* :func:`calibration_curve`: observed vs nominal coverage of central intervals,
  from :func:`probability_integral_transform`.

Classification (:class:`tfp_bnn.ClassificationPrediction`):

* :func:`reliability_diagram`: accuracy vs confidence, with the bin counts and ECE;
* :func:`uncertainty_histograms`: predictive entropy and mutual information of
  correctly vs wrongly classified inputs;
* :func:`class_probability_bars`: one input's class probabilities and their
  spread over weight draws.

``import tfp_bnn`` does not import this module, nor does tfp_bnn import
matplotlib (TensorFlow's Keras 3 does, when it is installed); import it
yourself:

>>> import numpy as np, tfp_bnn
>>> from tfp_bnn import data, plots
>>> x, y = data.gap_regression(500, seed=0)
>>> model = tfp_bnn.make_regressor((1,), train_size=len(x))  # fit it first
>>> x_grid = np.linspace(-6, 6, 200, dtype="float32")[:, None]
>>> result = tfp_bnn.predict(model, x_grid, num_samples=200, seed=0)
>>> plots.uncertainty_bands(x_grid, result, x_train=x, y_train=y).savefig("bands.png")

The examples below start from ``x, y``, ``model`` and ``plots`` as here, or,
for classification, from

>>> iris = data.load_sklearn("iris")
>>> classifier = tfp_bnn.make_classifier((4,), 3, train_size=len(iris.y))  # fit it first
"""

import numpy as np
import tensorflow_probability as tfp

try:
    import matplotlib.pyplot as plt
    from mpl_toolkits.axes_grid1 import make_axes_locatable
except ImportError as error:
    raise ModuleNotFoundError(
        f"tfp_bnn.plots needs matplotlib ({error}); install it with: pip install 'tfp-bnn[plots]'",
        name=error.name,
    ) from error

from tfp_bnn import metrics
from tfp_bnn.validation import check_positive_int

__all__ = [
    "uncertainty_bands",
    "sampled_curves",
    "reliability_diagram",
    "calibration_curve",
    "probability_integral_transform",
    "uncertainty_histograms",
    "class_probability_bars",
]

_STANDARD_NORMAL = tfp.distributions.Normal(np.float64(0.0), np.float64(1.0))


# -- helpers ------------------------------------------------------------------------


def _figure_and_axes(ax, **subplots):
    if ax is None:
        return plt.subplots(**subplots)
    return np.ravel(ax)[0].figure, ax


def _single_output(array, name="result"):
    """``(N, 1)`` per-input arrays as ``(N,)``; refuses several outputs."""
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] != 1:
        raise ValueError(f"{name} has {array.shape[1]} outputs; this figure shows one output.")
    return array.reshape(len(array))


def _one_dimensional(x, name):
    x = np.asarray(x)
    if x.ndim > 2 or (x.ndim == 2 and x.shape[1] != 1):
        raise ValueError(f"{name} must be 1-D inputs of shape (N,) or (N, 1), got {x.shape}.")
    return x.reshape(len(x))


def _training_data(ax, x_train, y_train):
    if x_train is None and y_train is None:
        return
    if x_train is None or y_train is None:
        raise ValueError("Pass both x_train and y_train, or neither.")
    x_train, y_train = _one_dimensional(x_train, "x_train"), _single_output(y_train, "y_train")
    ax.scatter(x_train, y_train, s=6, color="black", alpha=0.3, linewidths=0, label="training data", zorder=3)


def _pooled(labels, probabilities):
    """Labels and probabilities of a label per step or pixel, ``(N, *steps)`` and
    ``(N, *steps, K)``, pooled as ``(N * steps,)`` and ``(N * steps, K)``; others unchanged."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    if probabilities.ndim <= 2:
        return labels, probabilities
    # (N, 1) labels of one step, as (N,): the same values in the same order.
    if metrics._squeezed_shape(labels.shape) != metrics._squeezed_shape(probabilities.shape[:-1]):
        hint = " (one-hot? pass labels.argmax(axis=-1))" if labels.shape == probabilities.shape else ""
        raise ValueError(
            f"probabilities of shape {probabilities.shape} hold a distribution per step or pixel: pass one "
            f"label per step, labels of shape {probabilities.shape[:-1]}, got {labels.shape}{hint}. The "
            "figure pools the labels of all steps."
        )
    return labels.reshape(-1), probabilities.reshape(-1, probabilities.shape[-1])


def _labels(labels, result):
    labels, probabilities = _pooled(labels, result.probabilities)
    labels = labels.reshape(-1)
    if labels.size != len(probabilities):
        raise ValueError(f"Got {labels.size} labels for {len(probabilities)} predictions.")
    return metrics._labels_and_probs(labels, probabilities)[0]  # integers 0..K-1, or a clear error


# -- regression ---------------------------------------------------------------------


def uncertainty_bands(x, result, x_train=None, y_train=None, ax=None):
    """Predictive mean over a 1-D input with separate +-2 sd bands.

    Three bands around the mean, each ``mean +- 2 sd``: the total standard
    deviation (widest, grey), the aleatoric one (noise in the data, orange) and
    the epistemic one (ignorance of the weights, blue hatched). ``result.lower``/``upper`` (the
    mixture's quantiles) are not drawn.

    Args:
      x: inputs ``(N,)`` or ``(N, 1)``, any order (they are sorted).
      result: :class:`tfp_bnn.RegressionPrediction` at ``x``, one output.
      x_train, y_train: training data to scatter, optional.
      ax: matplotlib ``Axes`` to draw on; a new figure if ``None``.

    Example:

    >>> grid = np.linspace(-6, 6, 400, dtype="float32")[:, None]
    >>> result = tfp_bnn.predict(model, grid, num_samples=200, seed=0)
    >>> fig = plots.uncertainty_bands(grid, result, x_train=x, y_train=y)
    """
    fig, ax = _figure_and_axes(ax, figsize=(8, 4.5))
    x = _one_dimensional(x, "x")
    order = np.argsort(x)
    x = x[order]
    mean = _single_output(result.mean)[order]
    _training_data(ax, x_train, y_train)
    # Total: grey fill; aleatoric: orange fill over it; epistemic: blue hatched outline on top,
    # so the two components stay distinguishable where they overlap.
    bands = (
        ("total", result.total_variance, {"facecolor": "0.85", "edgecolor": "0.85"}),
        ("aleatoric", result.aleatoric_variance, {"facecolor": "tab:orange", "alpha": 0.5, "edgecolor": "none"}),
        ("epistemic", result.epistemic_variance, {"facecolor": "none", "edgecolor": "tab:blue", "hatch": "///"}),
    )
    for name, variance, style in bands:
        half_width = 2.0 * np.sqrt(_single_output(variance))[order]
        ax.fill_between(x, mean - half_width, mean + half_width, linewidth=1.0, label=f"±2σ {name}", **style)
    ax.plot(x, mean, color="black", linewidth=1.5, label="predictive mean")
    ax.set(xlabel="x", ylabel="y", title="Predictive mean with aleatoric and epistemic uncertainty")
    ax.legend()
    return fig


def sampled_curves(x, result, num_curves=20, x_train=None, y_train=None, ax=None):
    """The predictive mean of ``num_curves`` individual weight draws, and their average.

    Curve ``t`` is ``result.draw_means[t]``; where the curves disagree the model
    is uncertain about its weights (epistemic). Each curve is one network for
    all inputs, whatever the estimator and ``batch_size``: :func:`tfp_bnn.predict`
    samples whole weights (Flipout's per-example signs are for training
    gradients only) and draws them once for all chunks of inputs; and for a
    deep ensemble curve ``t`` is member ``t mod M``. Not for MC dropout: it
    draws a dropout mask per input, so its "curves" are noise around the mean.

    Args:
      x: inputs ``(N,)`` or ``(N, 1)``, any order (they are sorted).
      result: :class:`tfp_bnn.RegressionPrediction` at ``x``, one output.
      num_curves: how many of the ``T`` draws to show (all if ``T`` is smaller).
      x_train, y_train: training data to scatter, optional.
      ax: matplotlib ``Axes`` to draw on; a new figure if ``None``.

    Example:

    >>> grid = np.linspace(-6, 6, 200, dtype="float32")[:, None]
    >>> result = tfp_bnn.predict(model, grid, num_samples=50, seed=0, batch_size=len(grid))
    >>> fig = plots.sampled_curves(grid, result, num_curves=20, x_train=x, y_train=y)
    """
    fig, ax = _figure_and_axes(ax, figsize=(8, 4.5))
    x = _one_dimensional(x, "x")
    order = np.argsort(x)
    check_positive_int(num_curves, "num_curves")
    draws = np.asarray(result.draw_means)[:num_curves]
    if draws.ndim != 3 or draws.shape[2] != 1:
        raise ValueError(f"result.draw_means must have shape (T, N, 1), got {np.shape(result.draw_means)}.")
    _training_data(ax, x_train, y_train)
    curves = ax.plot(x[order], draws[:, order, 0].T, color="tab:blue", alpha=0.4, linewidth=0.8)
    curves[0].set_label(f"{len(curves)} weight draws")
    ax.plot(x[order], _single_output(result.mean)[order], color="black", linewidth=1.5, label="predictive mean")
    ax.set(xlabel="x", ylabel="y", title="Predictive mean of individual weight draws")
    ax.legend()
    return fig


def probability_integral_transform(y, result):
    """PIT values ``u = F(y)`` of the predictive mixture, one per target.

    ``F(y) = 1/T sum_t Phi((y - m_t) / s_t)`` from the per-draw means ``m_t``
    and standard deviations ``s_t`` of ``result`` (exact for Normal heads, a
    Gaussian approximation per draw for other heads). A draw with ``s_t = 0``
    (a point head) contributes the step ``1[y > m_t]`` (``1/2`` at ``y = m_t``).
    For calibrated predictions ``u`` is uniform on [0, 1], and the central
    interval of level ``p`` covers ``y`` iff ``(1 - p)/2 <= u <= (1 + p)/2``.

    Args:
      y: targets, ``(N,)`` or ``(N, units)``.
      result: :class:`tfp_bnn.RegressionPrediction` at the same inputs.

    Returns:
      ``u`` in [0, 1], float64, the shape of ``y``.

    Example:

    >>> u = plots.probability_integral_transform(y, tfp_bnn.predict(model, x, seed=0))
    >>> counts, edges = np.histogram(u, bins=10, range=(0, 1))  # flat if calibrated
    >>> u.shape, int(counts.sum())
    ((500,), 500)
    """
    means = np.asarray(result.draw_means, np.float64)
    stddevs = np.sqrt(np.asarray(result.draw_variances, np.float64))
    y = np.asarray(y, np.float64)
    if y.size != np.prod(means.shape[1:]):
        raise ValueError(f"y has {y.size} values but result predicts {means.shape[1:]} (N, units).")
    if metrics._squeezed_shape(y.shape) != metrics._squeezed_shape(means.shape[1:]):
        raise ValueError(f"y has shape {y.shape} but result predicts {means.shape[1:]} (N, units): transposed?")
    difference = y.reshape(means.shape[1:]) - means
    # Zero spread: z = -inf, 0 or +inf, i.e. the step function with 1/2 at the step.
    step = np.where(difference == 0.0, 0.0, np.copysign(np.inf, difference))
    z = np.divide(difference, stddevs, out=step, where=stddevs > 0)
    return np.mean(_STANDARD_NORMAL.cdf(z).numpy(), axis=0).reshape(y.shape)


def calibration_curve(y, result, levels=np.linspace(0.05, 0.95, 19), ax=None):
    """Observed vs nominal coverage of the central prediction intervals.

    For each level ``p`` the fraction of targets inside the central ``p``
    interval of the predictive mixture, from the PIT values of
    :func:`probability_integral_transform`. Points below the diagonal:
    intervals too narrow (overconfident); above: too wide. The PIT treats
    every draw as a Normal, so this is for Normal heads (and point heads); a
    calibrated ``StudentTHead`` with small df or a ``PoissonHead`` would show a
    curve off the diagonal. For those, plot ``metrics.interval_coverage`` of
    ``tfp_bnn.predict(..., level=p)`` against ``p``, the heads' own intervals.

    Args:
      y: targets, ``(N,)`` or ``(N, units)`` (all outputs pooled).
      result: :class:`tfp_bnn.RegressionPrediction` at the inputs of ``y``.
      levels: nominal coverages in (0, 1).
      ax: matplotlib ``Axes`` to draw on; a new figure if ``None``.

    Example:

    >>> result = tfp_bnn.predict(model, x, num_samples=200, seed=0)
    >>> fig = plots.calibration_curve(y, result)
    """
    fig, ax = _figure_and_axes(ax, figsize=(5, 5))
    levels = np.asarray(levels, np.float64).reshape(-1)
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError("levels must lie strictly between 0 and 1.")
    u = probability_integral_transform(y, result).reshape(-1)
    inside = ((1 - levels[:, None]) / 2 <= u) & (u <= (1 + levels[:, None]) / 2)
    observed = np.mean(inside, axis=1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.plot(levels, observed, marker="o", color="tab:blue", label="model")
    ax.set(
        xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="nominal coverage of central interval",
        ylabel="observed coverage", title=f"Interval calibration (N = {u.size})",
    )
    ax.legend(loc="upper left")
    return fig


# -- classification -----------------------------------------------------------------


def reliability_diagram(labels, probabilities, num_bins=10, ax=None):
    """Accuracy vs confidence (top-class probability) in ``num_bins`` equal-width bins.

    Bars: the accuracy of the inputs whose confidence falls in each bin
    (empty bins have none); dashed diagonal: perfect calibration; a histogram
    of the confidences (bin counts) underneath; the expected calibration error
    (:func:`tfp_bnn.metrics.expected_calibration_error`, same bins) in the title.

    Args:
      labels: integer labels ``(N,)``; ``(N, *steps)`` for a label per step or
        pixel (all labels pooled).
      probabilities: ``(N, K)`` class probabilities (``(N, *steps, K)``), or a
        :class:`tfp_bnn.ClassificationPrediction`.
      num_bins: number of confidence bins over [0, 1].
      ax: matplotlib ``Axes`` for the bars; the count panel is split off its
        bottom. A new figure if ``None``.

    Example:

    >>> result = tfp_bnn.predict(classifier, iris.x, num_samples=100, seed=0)
    >>> fig = plots.reliability_diagram(iris.y, result.probabilities)
    """
    probabilities = np.asarray(getattr(probabilities, "probabilities", probabilities), np.float64)
    labels, probabilities = _pooled(labels, probabilities)
    counts, accuracy, _ = metrics.calibration_bins(labels, probabilities, num_bins)  # also checks the inputs
    ece = metrics.expected_calibration_error(labels, probabilities, num_bins)
    edges = np.linspace(0.0, 1.0, int(num_bins) + 1)
    filled = counts > 0

    fig, ax = _figure_and_axes(ax, figsize=(5, 6))
    ax_counts = make_axes_locatable(ax).append_axes("bottom", size="30%", pad=0.1, sharex=ax)
    ax.bar(
        edges[:-1][filled], accuracy[filled], width=np.diff(edges)[filled], align="edge",
        color="tab:blue", edgecolor="black", label="accuracy",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"Reliability diagram (ECE = {ece:.3f})")
    ax.tick_params(labelbottom=False)
    ax.legend(loc="upper left")
    ax_counts.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="0.5", edgecolor="black")
    ax_counts.set(xlabel="confidence (top-class probability)", ylabel="count")
    return fig


def uncertainty_histograms(labels, result, axes=None):
    """Predictive entropy and mutual information of correctly vs wrongly classified inputs.

    Left: predictive entropy (total uncertainty); right: mutual information
    (epistemic). Each panel overlays the densities of the two groups, so a
    useful uncertainty puts the wrongly classified inputs further right.

    Args:
      labels: integer labels ``(N,)``; ``(N, *steps)`` for a label per step or
        pixel (all labels pooled).
      result: :class:`tfp_bnn.ClassificationPrediction` at the same inputs.
      axes: two matplotlib ``Axes``; a new figure with two panels if ``None``.

    Example:

    >>> result = tfp_bnn.predict(classifier, iris.x, num_samples=100, seed=0)
    >>> fig = plots.uncertainty_histograms(iris.y, result)
    """
    labels = _labels(labels, result)
    fig, axes = _figure_and_axes(axes, ncols=2, figsize=(10, 4))
    axes = np.ravel(axes)
    if axes.size != 2:
        raise ValueError(f"axes must be two Axes, got {axes.size}.")
    correct = np.reshape(result.predicted_class, -1) == labels
    panels = (
        (result.predictive_entropy, "predictive entropy (total)"),
        (result.mutual_information, "mutual information (epistemic)"),
    )
    for ax, (values, title) in zip(axes, panels):
        values = np.asarray(values, np.float64).reshape(-1)
        bins = np.histogram_bin_edges(values, bins=30)
        for mask, name, color in ((correct, "correct", "tab:blue"), (~correct, "wrong", "tab:red")):
            if mask.any():
                ax.hist(
                    values[mask], bins=bins, density=True, histtype="stepfilled", alpha=0.5, color=color,
                    edgecolor=color, label=f"{name} (n = {mask.sum()})",
                )
        ax.set(xlabel="nats", ylabel="density", title=title)
        ax.legend()
    return fig


def class_probability_bars(result, index, class_names=None, ax=None):
    """One input's mean class probabilities, with their spread over weight draws.

    Bars: ``result.probabilities[index]``; error bars: the 2.5-97.5 percentiles
    of the per-draw probabilities ``result.draw_probabilities[:, index]``.
    Long error bars mean the weight draws disagree (epistemic uncertainty);
    flat bars with short error bars mean the draws agree the class is unclear
    (aleatoric).

    Args:
      result: :class:`tfp_bnn.ClassificationPrediction`.
      index: which input.
      class_names: ``K`` tick labels; ``0..K-1`` if ``None``.
      ax: matplotlib ``Axes`` to draw on; a new figure if ``None``.

    Example:

    >>> result = tfp_bnn.predict(classifier, iris.x, num_samples=100, seed=0)
    >>> fig = plots.class_probability_bars(result, 0, class_names=iris.class_names)
    """
    probabilities = np.asarray(result.probabilities)[index]
    if probabilities.ndim != 1:
        # A label per step or pixel: probabilities (N, L, K). Was a NumPy broadcast error from
        # matplotlib's bar, or (L = K) a TypeError from formatting the title.
        raise ValueError(
            f"result has probabilities of shape {np.shape(result.probabilities)} (a label per step or pixel); "
            f"index {index!r} selects {probabilities.shape}, not one distribution over classes: pass an index "
            "per axis, e.g. index=(0, 3) for example 0, step 3."
        )
    draws = np.asarray(result.draw_probabilities)[(slice(None), *np.index_exp[index])]
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    positions = np.arange(len(probabilities))
    class_names = [str(k) for k in positions] if class_names is None else list(class_names)
    if len(class_names) != len(probabilities):
        raise ValueError(f"Got {len(class_names)} class names for {len(probabilities)} classes.")
    fig, ax = _figure_and_axes(ax, figsize=(max(4, 0.8 * len(probabilities) + 2), 4))
    ax.bar(positions, probabilities, color="tab:blue", label="mean probability")
    ax.errorbar(
        positions, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor="black", capsize=4,
        label="2.5–97.5 % of draws",
    )
    ax.set_xticks(positions, labels=class_names)
    ax.set(
        ylim=(0, 1), ylabel="probability",
        title=(
            f"Input {index}: predictive entropy {result.predictive_entropy[index]:.2f} nats,\n"
            f"mutual information {result.mutual_information[index]:.3f} nats"
        ),
    )
    ax.legend()
    return fig
