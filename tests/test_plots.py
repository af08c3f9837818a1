"""tfp_bnn.plots: every figure renders to a PNG, and shows the numbers it claims to show."""

import statistics
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402

import tfp_bnn  # noqa: E402
from tfp_bnn import data, metrics, plots  # noqa: E402

NUM_TRAIN = 300
NUM_DRAWS = 20

# -- fixtures: tiny models, 2 epochs, predictions once per module -------------------


@pytest.fixture(scope="module")
def regression():
    tf_keras.utils.set_random_seed(0)
    x, y = data.gap_regression(NUM_TRAIN, seed=0)
    model = tfp_bnn.make_regressor((1,), hidden_units=(8,), train_size=NUM_TRAIN)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(x, y, epochs=2, batch_size=50, verbose=0)
    grid = np.linspace(-5, 5, 101, dtype=np.float32)[::-1, np.newaxis]  # unsorted on purpose
    x_test, y_test = data.gap_regression(400, seed=1)
    return {
        "x": x, "y": y, "grid": grid, "x_test": x_test, "y_test": y_test,
        "grid_result": tfp_bnn.predict(model, grid, num_samples=NUM_DRAWS, seed=0),
        "test_result": tfp_bnn.predict(model, x_test, num_samples=NUM_DRAWS, seed=0),
    }


@pytest.fixture(scope="module")
def classification():
    tf_keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=NUM_TRAIN)
    x = centres[labels] + rng.normal(size=(NUM_TRAIN, 4)).astype(np.float32)
    model = tfp_bnn.make_classifier((4,), 3, hidden_units=(8,), train_size=NUM_TRAIN)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(x, labels, epochs=2, batch_size=50, verbose=0)
    return labels, tfp_bnn.predict(model, x, num_samples=NUM_DRAWS, seed=0)


def _saved(fig, tmp_path, name):
    """Render ``fig`` to PNG, check the file, close the figure."""
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    plt.close(fig)
    content = path.read_bytes()
    assert len(content) > 1000 and content.startswith(b"\x89PNG")
    return path


def _legend_labels(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _gaussian_mixture_prediction(means, stddevs):
    """A RegressionPrediction with the given per-draw moments ``(T, N)``, one output."""
    means, variances = means[..., np.newaxis], np.square(stddevs)[..., np.newaxis]
    mean = means.mean(axis=0)
    return tfp_bnn.RegressionPrediction(
        mean=mean, aleatoric_variance=variances.mean(axis=0), epistemic_variance=means.var(axis=0),
        lower=mean, upper=mean, level=0.95, draw_means=means, draw_variances=variances,
    )


def _max_distance_from_uniform(u):
    """Kolmogorov-Smirnov-style distance of the sample ``u`` from Uniform(0, 1)."""
    return np.max(np.abs(np.sort(u) - (np.arange(len(u)) + 0.5) / len(u)))


# -- regression ---------------------------------------------------------------------


def test_uncertainty_bands(regression, tmp_path):
    result = regression["grid_result"]
    fig = plots.uncertainty_bands(regression["grid"], result, x_train=regression["x"], y_train=regression["y"])
    ax = fig.axes[0]
    assert _legend_labels(ax) == ["training data", "±2σ total", "±2σ aleatoric", "±2σ epistemic", "predictive mean"]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    # Each band spans mean +- 2 sd of its variance; the x are drawn sorted.
    order = np.argsort(regression["grid"][:, 0])
    for band, variance in zip(bands, (result.total_variance, result.aleatoric_variance, result.epistemic_variance)):
        vertices = band.get_paths()[0].vertices
        top = 2 * np.sqrt(variance[order, 0]) + result.mean[order, 0]
        np.testing.assert_allclose(np.max(vertices[:, 1]), np.max(top), rtol=1e-5)
    (mean_line,) = ax.get_lines()
    np.testing.assert_array_equal(mean_line.get_xdata(), regression["grid"][order, 0])
    np.testing.assert_array_equal(mean_line.get_ydata(), result.mean[order, 0])
    scatter = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatter) == 1 and len(scatter[0].get_offsets()) == NUM_TRAIN
    _saved(fig, tmp_path, "bands")


def test_uncertainty_bands_draws_on_a_given_axes_without_training_data(regression, tmp_path):
    fig, (left, right) = plt.subplots(ncols=2)
    returned = plots.uncertainty_bands(regression["grid"], regression["grid_result"], ax=right)
    assert returned is fig and not left.has_data() and "training data" not in _legend_labels(right)
    _saved(fig, tmp_path, "bands_on_axes")


def test_sampled_curves(regression, tmp_path):
    result = regression["grid_result"]
    fig = plots.sampled_curves(regression["grid"], result, num_curves=7, x_train=regression["x"], y_train=regression["y"])
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 7 + 1  # the draws and the predictive mean
    order = np.argsort(regression["grid"][:, 0])
    for t, line in enumerate(lines[:7]):
        np.testing.assert_array_equal(line.get_ydata(), result.draw_means[t, order, 0])
    assert _legend_labels(ax) == ["training data", "7 weight draws", "predictive mean"]
    _saved(fig, tmp_path, "curves")
    # More curves than draws: all T of them.
    fig = plots.sampled_curves(regression["grid"], result, num_curves=10 * NUM_DRAWS)
    assert len(fig.axes[0].get_lines()) == NUM_DRAWS + 1
    plt.close(fig)
    for bad in (0, -1, 2.5):  # -1 had drawn T - 1 curves, 0 an IndexError
        with pytest.raises(ValueError, match=f"num_curves must be a positive integer, got {bad!r}"):
            plots.sampled_curves(regression["grid"], result, num_curves=bad)


def test_pit_of_samples_from_a_known_gaussian_mixture_is_uniform():
    rng = np.random.default_rng(0)
    num_draws, num_points = 5, 4000
    means = rng.normal(size=(num_draws, num_points)) * 2
    stddevs = rng.uniform(0.2, 1.5, size=(num_draws, num_points))
    component = rng.integers(0, num_draws, size=num_points)
    columns = np.arange(num_points)
    y = means[component, columns] + stddevs[component, columns] * rng.standard_normal(num_points)

    u = plots.probability_integral_transform(y, _gaussian_mixture_prediction(means, stddevs))
    assert u.shape == y.shape and np.all((0 <= u) & (u <= 1))
    assert _max_distance_from_uniform(u) < 0.05
    # (N, 1) targets give the same numbers in their own shape.
    np.testing.assert_array_equal(
        plots.probability_integral_transform(y[:, np.newaxis], _gaussian_mixture_prediction(means, stddevs))[:, 0], u
    )
    # The check has teeth: a mixture with half the spread is far from uniform.
    overconfident = plots.probability_integral_transform(y, _gaussian_mixture_prediction(means, stddevs / 2))
    assert _max_distance_from_uniform(overconfident) > 0.05


def test_pit_of_point_draws_is_a_step_function():
    # Four draws with zero variance at m = 0, 1, 2, 3: F(y) is the fraction of
    # draws below y, with 1/2 for a draw exactly at y.
    means = np.tile(np.arange(4.0)[:, np.newaxis], (1, 6))
    y = np.array([-1.0, 0.0, 0.5, 2.0, 2.5, 9.0])
    u = plots.probability_integral_transform(y, _gaussian_mixture_prediction(means, np.zeros_like(means)))
    np.testing.assert_array_equal(u, [0.0, 0.125, 0.25, 0.625, 0.75, 1.0])


def test_pit_refuses_targets_of_the_wrong_size(regression):
    with pytest.raises(ValueError, match="y has 3 values"):
        plots.probability_integral_transform(np.zeros(3), regression["test_result"])


def test_calibration_curve_plots_the_observed_coverage(regression, tmp_path):
    y, result = regression["y_test"], regression["test_result"]
    levels = np.linspace(0.05, 0.95, 19)
    fig = plots.calibration_curve(y, result, levels=levels)
    ax = fig.axes[0]
    diagonal, curve = ax.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), levels)

    # Independently: the mixture CDF with the standard library's normal CDF.
    cdf = np.vectorize(lambda z: statistics.NormalDist().cdf(z))
    u = np.mean(cdf((y - result.draw_means[:, :, 0]) / np.sqrt(result.draw_variances[:, :, 0])), axis=0)
    expected = [np.mean(((1 - p) / 2 <= u) & (u <= (1 + p) / 2)) for p in levels]
    np.testing.assert_allclose(curve.get_ydata(), expected)
    # At 95 % it agrees with predict's own mixture-quantile interval.
    assert abs(curve.get_ydata()[-1] - metrics.interval_coverage(y, result.lower, result.upper)) <= 1 / len(y)
    assert _legend_labels(ax) == ["perfect calibration", "model"]
    _saved(fig, tmp_path, "calibration")


# -- classification -----------------------------------------------------------------


def test_reliability_diagram_bars_are_the_per_bin_accuracies(classification, tmp_path):
    labels, result = classification
    num_bins = 10
    fig = plots.reliability_diagram(labels, result.probabilities, num_bins=num_bins)
    ax, ax_counts = fig.axes

    confidence = result.probabilities.max(axis=1)
    correct = result.probabilities.argmax(axis=1) == labels
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    filled = [k for k in range(num_bins) if np.any(bins == k)]
    accuracy = [np.mean(correct[bins == k]) for k in filled]
    bars = ax.patches
    np.testing.assert_allclose([bar.get_height() for bar in bars], accuracy)
    np.testing.assert_allclose([bar.get_x() for bar in bars], np.array(filled) / num_bins)
    counts = [bar.get_height() for bar in ax_counts.patches]
    np.testing.assert_array_equal(counts, [np.sum(bins == k) for k in range(num_bins)])

    # The bins are the ones the ECE in the title uses.
    ece = metrics.expected_calibration_error(labels, result.probabilities, num_bins)
    gaps = [np.sum(bins == k) * abs(a - np.mean(confidence[bins == k])) for k, a in zip(filled, accuracy)]
    np.testing.assert_allclose(np.sum(gaps) / len(labels), ece, rtol=1e-4, atol=1e-6)
    assert ax.get_title() == f"Reliability diagram (ECE = {ece:.3f})"
    _saved(fig, tmp_path, "reliability")


def test_reliability_diagram_bars_and_title_agree_on_a_bin_edge(tmp_path):
    # Both confidences are in [0.7, 0.8): one bar of accuracy 1/2 under ECE |0.5 - 0.725| = 0.225
    # (the bars had put 0.7 in [0.6, 0.7), a drawn ECE of 0.475 under a title of 0.225).
    fig = plots.reliability_diagram([1, 0], np.array([[0.7, 0.3], [0.75, 0.25]]), num_bins=10)
    ax, ax_counts = fig.axes
    assert [(round(bar.get_x(), 9), bar.get_height()) for bar in ax.patches] == [(0.7, 0.5)]
    assert [bar.get_height() for bar in ax_counts.patches][6:8] == [0, 2]
    assert ax.get_title() == "Reliability diagram (ECE = 0.225)"
    _saved(fig, tmp_path, "reliability_edge")


def test_reliability_diagram_takes_a_prediction_and_an_axes(classification, tmp_path):
    labels, result = classification
    fig, ax = plt.subplots()
    assert plots.reliability_diagram(labels, result, num_bins=5, ax=ax) is fig
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) == 5
    _saved(fig, tmp_path, "reliability_on_axes")


def test_uncertainty_histograms_split_correct_and_wrong(classification, tmp_path):
    labels, result = classification
    correct = result.probabilities.argmax(axis=1) == labels
    assert 0 < correct.sum() < len(labels)  # both groups present after 2 epochs
    fig = plots.uncertainty_histograms(labels, result)
    assert len(fig.axes) == 2
    expected_labels = [f"correct (n = {correct.sum()})", f"wrong (n = {(~correct).sum()})"]
    for ax, values in zip(fig.axes, (result.predictive_entropy, result.mutual_information)):
        assert _legend_labels(ax) == expected_labels
        # Two filled step histograms, each a density (area 1) on shared bins covering the values.
        for polygon in ax.patches:
            x, height = polygon.get_xy()[:, 0], polygon.get_xy()[:, 1]
            assert x.min() <= values.min() and x.max() >= values.max()
            np.testing.assert_allclose(np.trapezoid(height, x), 1.0, rtol=1e-6)
        assert len(ax.patches) == 2
    _saved(fig, tmp_path, "histograms")


def test_uncertainty_histograms_draw_on_given_axes(classification, tmp_path):
    labels, result = classification
    fig, axes = plt.subplots(ncols=3)
    assert plots.uncertainty_histograms(labels, result, axes=axes[1:]) is fig
    assert not axes[0].has_data() and axes[1].has_data() and axes[2].has_data()
    _saved(fig, tmp_path, "histograms_on_axes")


def test_class_probability_bars_show_mean_and_percentiles(classification, tmp_path):
    _, result = classification
    index = 3
    fig = plots.class_probability_bars(result, index, class_names=["a", "b", "c"])
    ax = fig.axes[0]
    np.testing.assert_allclose([bar.get_height() for bar in ax.patches], result.probabilities[index])
    (errorbar,) = [c for c in ax.containers if hasattr(c, "has_yerr")]
    segments = errorbar.lines[2][0].get_segments()
    low, high = np.percentile(result.draw_probabilities[:, index], [2.5, 97.5], axis=0)
    np.testing.assert_allclose([s[:, 1].min() for s in segments], low, atol=1e-7)
    np.testing.assert_allclose([s[:, 1].max() for s in segments], high, atol=1e-7)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    _saved(fig, tmp_path, "class_bars")


def test_class_probability_bars_refuse_wrong_class_names(classification):
    _, result = classification
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        plots.class_probability_bars(result, 0, class_names=["a", "b"])
    plt.close("all")


def test_importing_tfp_bnn_does_not_import_plots():
    # (Not matplotlib itself: TensorFlow's Keras 3 imports it whenever it is installed.)
    code = "import sys, tfp_bnn; print('tfp_bnn.plots' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_class_probability_bars_of_a_per_step_result_names_the_index_and_takes_one_per_axis():
    inputs = tf_keras.Input((3, 2))
    model = tfp_bnn.BayesianModel(
        inputs, tfp_bnn.CategoricalHead(3)(tfp_bnn.BayesianDense(3, kl_weight=0.25)(inputs)))
    result = tfp_bnn.predict(model, np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32), num_samples=4, seed=0)
    with pytest.raises(ValueError, match=r"a label per step or pixel.*index=\(0, 3\)"):  # was a TypeError from format
        plots.class_probability_bars(result, 0)
    fig = plots.class_probability_bars(result, (0, 2))
    assert len(fig.axes[0].patches) == 3


@pytest.mark.parametrize("head", [tfp_bnn.CategoricalHead(3), tfp_bnn.BernoulliHead()], ids=["categorical", "bernoulli"])
def test_classification_figures_of_a_per_step_result_pool_the_labels_of_all_steps(head, tmp_path):
    # Was "Got 12 labels for 4 predictions" for labels (N, L), and for labels (N,) "probabilities must
    # have shape (N, K) with N = 4 labels, got (4, 3, 3)": neither said what to pass.
    inputs = tf_keras.Input((3, 2))
    model = tfp_bnn.BayesianModel(inputs, head(tfp_bnn.BayesianDense(head.params_size, kl_weight=0.25)(inputs)))
    rng = np.random.default_rng(0)
    result = tfp_bnn.predict(model, rng.normal(size=(40, 3, 2)).astype(np.float32), num_samples=4, seed=0)
    labels = rng.integers(0, 2, size=(40, 3))
    num_classes = result.probabilities.shape[-1]
    flat = result.probabilities.reshape(-1, num_classes)

    fig = plots.uncertainty_histograms(labels, result)
    correct = int((flat.argmax(axis=1) == labels.reshape(-1)).sum())
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert legend == [f"correct (n = {correct})", f"wrong (n = {120 - correct})"]
    _saved(fig, tmp_path, "per_step_histograms")

    fig = plots.reliability_diagram(labels, result, num_bins=5)
    ece = metrics.expected_calibration_error(labels.reshape(-1), flat, 5)
    assert f"ECE = {ece:.3f}" in fig.axes[0].get_title()
    _saved(fig, tmp_path, "per_step_reliability")

    for wrong in (labels[:, 0], labels.reshape(-1), np.eye(num_classes)[labels]):
        with pytest.raises(ValueError, match=r"a distribution per step or pixel: pass one label per step, labels "
                                             r"of shape \(40, 3\)"):
            plots.uncertainty_histograms(wrong, result)
        with pytest.raises(ValueError, match=r"labels of shape \(40, 3\)"):
            plots.reliability_diagram(wrong, result.probabilities)


def test_classification_figures_of_a_one_step_result_take_labels_n_or_n_by_1(classification, tmp_path):
    labels, result = classification
    one_step = tfp_bnn.ClassificationPrediction(
        *(np.asarray(getattr(result, name))[:, None] for name in
          ("probabilities", "predictive_entropy", "expected_entropy", "mutual_information")),
        np.asarray(result.draw_probabilities)[:, :, None])
    for given in (labels, labels[:, None]):
        _saved(plots.uncertainty_histograms(given, one_step), tmp_path, "one_step_histograms")
        _saved(plots.reliability_diagram(given, one_step), tmp_path, "one_step_reliability")
