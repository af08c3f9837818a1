"""tfp_bnn.metrics against independent computations, and the identities of tfp_bnn.predict."""

import numpy as np
import pytest
import tf_keras
from scipy import integrate, special, stats

import tfp_bnn
from tfp_bnn import heads, metrics

Z_975 = 1.959963984540054  # standard normal 0.975 quantile


# -- regression metrics ------------------------------------------------------------------


def test_rmse(rng):
    y, pred = rng.normal(size=50), rng.normal(size=50)
    assert metrics.rmse(y, pred) == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)), rel=1e-12)
    assert metrics.rmse([1.0, 2.0, 3.0], [1.0, 4.0, 0.0]) == pytest.approx(np.sqrt(13.0 / 3.0), rel=1e-12)
    # (N,) against (N, 1) pairs elementwise, it does not broadcast to (N, N).
    assert metrics.rmse(y, pred[:, None]) == pytest.approx(metrics.rmse(y, pred), rel=1e-12)
    with pytest.raises(ValueError, match=r"y_true has 50 values but y_pred has 49"):
        metrics.rmse(y, pred[:-1])


def _direct_mixture_nll(ll):
    with np.errstate(divide="ignore"):
        return -np.mean(np.log(np.mean(np.exp(ll), axis=0)))


def test_mixture_nll_matches_the_direct_formula(rng):
    ll = rng.normal(-2.0, 1.0, size=(50, 20))
    assert metrics.mixture_nll(ll) == pytest.approx(_direct_mixture_nll(ll), rel=1e-12)
    # One draw: the plain mean NLL.
    assert metrics.mixture_nll(ll[:1]) == pytest.approx(-np.mean(ll[0]), rel=1e-12)
    # A mixture is at least as good as its average member (Jensen).
    assert metrics.mixture_nll(ll) <= -np.mean(ll)


def test_mixture_log_likelihoods_are_per_point_and_average_to_minus_the_nll(rng):
    ll = rng.normal(-2.0, 1.0, size=(50, 20))
    per_point = metrics.mixture_log_likelihoods(ll)
    assert per_point.shape == (20,)
    np.testing.assert_allclose(per_point, np.log(np.mean(np.exp(ll), axis=0)), rtol=1e-12)
    assert -per_point.mean() == pytest.approx(metrics.mixture_nll(ll), rel=1e-12)
    with pytest.raises(ValueError, match=r"must have shape \(T, N\), got \(20,\)"):
        metrics.mixture_log_likelihoods(ll[0])


def test_mixture_nll_stays_finite_where_the_direct_formula_underflows(rng):
    ll = rng.normal(-1000.0, 5.0, size=(50, 20))
    assert _direct_mixture_nll(ll) == np.inf  # exp(-1000) is 0 in float64
    value = metrics.mixture_nll(ll)
    assert np.isfinite(value)
    # Shifting every log-likelihood by c shifts the NLL by -c; the shifted values do not underflow.
    assert value == pytest.approx(_direct_mixture_nll(ll + 1000.0) + 1000.0, rel=1e-12)
    # And the max-shifted log-sum-exp, written out per example.
    top = ll.max(axis=0)
    by_hand = -np.mean(top + np.log(np.mean(np.exp(ll - top), axis=0)))
    assert value == pytest.approx(by_hand, rel=1e-12)


def test_mixture_nll_needs_draws_by_examples():
    with pytest.raises(ValueError, match=r"log_likelihoods must have shape \(T, N\), got \(5,\)"):
        metrics.mixture_nll(np.zeros(5))


def test_interval_coverage_and_width_by_hand():
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    lower = np.array([0.0, 0.0, 3.0, 2.0, 5.0])
    upper = np.array([1.0, 0.5, 4.0, 3.0, 6.0])
    # Covered: 0 (on the lower end) and 3 (on the upper end); 1, 2 and 4 are outside.
    assert metrics.interval_coverage(y, lower, upper) == pytest.approx(0.4)
    assert metrics.interval_coverage(y[:, None], lower[:, None], upper) == pytest.approx(0.4)
    assert metrics.interval_width(lower, upper) == pytest.approx(0.9)
    assert metrics.interval_width(lower[:, None], upper) == pytest.approx(0.9)


@pytest.mark.parametrize("metric", ["rmse", "interval_coverage", "interval_width", "crps_gaussian"])
def test_regression_metrics_refuse_nan_and_empty_input_instead_of_a_plausible_number(metric):
    function = getattr(metrics, metric)
    y = np.array([0.0, 1.0, 2.0, 3.0])
    valid = {"rmse": [y, y + 1], "interval_coverage": [y, y - 1, y + 1], "interval_width": [y - 1, y + 1],
             "crps_gaussian": [y, y + 1, y + 2]}[metric]
    function(*valid)
    for position in range(len(valid)):
        # interval_coverage counted a NaN as a miss: 0.75 here, a number that looks like a result.
        with_nan = [a.copy() for a in valid]
        with_nan[position][1] = np.nan
        with pytest.raises(ValueError, match=r"has a NaN or infinite value \(at flat index 1\); drop or impute"):
            function(*with_nan)
    with pytest.raises(ValueError, match="is empty; a metric needs at least one example"):
        function(*[a[:0] for a in valid])


def test_an_infinite_end_is_a_one_sided_interval():
    y = np.array([1.0, 2.0, 3.0])
    assert metrics.interval_coverage(y, np.full(3, -np.inf), np.full(3, 2.0)) == pytest.approx(2 / 3)
    assert metrics.interval_width(np.full(3, -np.inf), y) == np.inf


def test_intervals_with_lower_above_upper_are_refused():
    y = np.array([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"lower > upper at flat index 0; pass the interval as \(lower, upper\)"):
        metrics.interval_coverage(y, y + 1, y - 1)  # was 0.0
    with pytest.raises(ValueError, match=r"lower > upper at flat index 0"):
        metrics.interval_width(y + 1, y - 1)  # was -2.0


def test_interval_coverage_of_exact_gaussian_intervals(rng):
    n = 20000
    mean, scale = rng.normal(size=n), rng.uniform(0.5, 2.0, size=n)
    y = mean + scale * rng.standard_normal(n)
    coverage = metrics.interval_coverage(y, mean - Z_975 * scale, mean + Z_975 * scale)
    assert abs(coverage - 0.95) < 4 * np.sqrt(0.95 * 0.05 / n)
    assert metrics.interval_width(mean - Z_975 * scale, mean + Z_975 * scale) == pytest.approx(
        2 * Z_975 * scale.mean(), rel=1e-12
    )


def _crps_by_integration(y, mean, stddev):
    def squared_gap_below(t):
        return stats.norm.cdf(t, mean, stddev) ** 2

    def squared_gap_above(t):
        return stats.norm.sf(t, mean, stddev) ** 2

    below, _ = integrate.quad(squared_gap_below, -np.inf, y, epsabs=1e-12, epsrel=1e-10)
    above, _ = integrate.quad(squared_gap_above, y, np.inf, epsabs=1e-12, epsrel=1e-10)
    return below + above


def test_crps_gaussian_against_numerical_integration():
    y = np.array([0.0, 1.3, -2.0, 5.0, 0.1])
    mean = np.array([0.0, 0.5, 1.0, -1.0, 0.1])
    stddev = np.array([1.0, 0.3, 2.0, 1.5, 1e-2])
    expected = np.mean([_crps_by_integration(*args) for args in zip(y, mean, stddev)])
    assert metrics.crps_gaussian(y, mean, stddev) == pytest.approx(expected, rel=1e-7)
    # Closed-form special cases: sigma (sqrt 2 - 1) / sqrt(pi) at y = mu, |y - mu| for sigma -> 0.
    assert metrics.crps_gaussian([0.0], [0.0], [2.0]) == pytest.approx(2 * (np.sqrt(2) - 1) / np.sqrt(np.pi))
    assert metrics.crps_gaussian([3.0], [1.0], [1e-9]) == pytest.approx(2.0, rel=1e-8)
    # ... and exactly |y - mu| at sigma = 0 (a point head's aleatoric stddev), beside sigma > 0.
    assert metrics.crps_gaussian([3.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, 0.0, 2.0]) == pytest.approx(
        (2.0 + 0.5 + 2 * (np.sqrt(2) - 1) / np.sqrt(np.pi)) / 3, rel=1e-12)
    with pytest.raises(ValueError, match=r"stddev must be >= 0"):
        metrics.crps_gaussian([0.0], [0.0], [-1.0])


def test_crps_ensemble_against_the_pairwise_definition(rng):
    samples = rng.normal(size=(40, 7)) * rng.uniform(0.5, 3.0, size=7)
    y = rng.normal(size=7)
    absolute_error = np.mean(np.abs(samples - y), axis=0)
    pairwise = np.mean(np.abs(samples[:, None, :] - samples[None, :, :]), axis=(0, 1))
    expected = np.mean(absolute_error - 0.5 * pairwise)
    assert metrics.crps_ensemble(y, samples) == pytest.approx(expected, rel=1e-12)
    # The samples' order does not matter, nor does a trailing axis of y.
    shuffled = rng.permuted(samples, axis=0)
    assert metrics.crps_ensemble(y[:, None], shuffled) == pytest.approx(expected, rel=1e-12)
    # A one-member ensemble scores its absolute error.
    assert metrics.crps_ensemble(y, samples[:1]) == pytest.approx(np.mean(np.abs(samples[0] - y)), rel=1e-12)
    with pytest.raises(ValueError, match=r"samples must have shape \(S, 6\), got \(40, 7\)"):
        metrics.crps_ensemble(y[:6], samples)
    # As the other metrics: an error, not NaN with a RuntimeWarning.
    for bad_y, bad_samples, name in ((np.where(y == y[2], np.nan, y), samples, "y_true"),
                                     (y, np.where(samples == samples[0, 3], np.inf, samples), "samples")):
        with pytest.raises(ValueError, match=rf"{name} has a NaN or infinite value \(at flat index [23]\)"):
            metrics.crps_ensemble(bad_y, bad_samples)
    with pytest.raises(ValueError, match="y_true is empty"):
        metrics.crps_ensemble(y[:0], samples[:, :0])


def test_crps_ensemble_of_many_gaussian_samples_approaches_crps_gaussian(rng):
    num_samples, n = 20000, 10
    mean, stddev = rng.normal(size=n), rng.uniform(0.5, 2.0, size=n)
    y = mean + stddev * rng.standard_normal(n)
    samples = mean + stddev * rng.standard_normal((num_samples, n))
    exact = metrics.crps_gaussian(y, mean, stddev)
    # Monte Carlo error of E|X - y| and E|X - X'|: about stddev / sqrt(S) per example.
    tolerance = 5 * np.mean(stddev) / np.sqrt(num_samples * n)
    assert abs(metrics.crps_ensemble(y, samples) - exact) < tolerance


# -- classification metrics ----------------------------------------------------------------


@pytest.fixture
def classification(rng):
    n, k = 500, 4
    logits = 2.0 * rng.normal(size=(n, k))
    probs = special.softmax(logits, axis=1)
    labels = np.array([rng.choice(k, p=p) for p in probs])
    return labels, probs


def test_accuracy_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3], [0.5, 0.1, 0.4]])
    assert metrics.accuracy([0, 2, 0, 2], probs) == pytest.approx(0.5)
    assert metrics.accuracy(np.array([[0], [2], [1], [0]]), probs) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"labels must be integers 0\.\.2; labels\[1\] = 3"):
        metrics.accuracy([0, 3, 0, 0], probs)
    with pytest.raises(ValueError, match=r"probabilities must have shape \(N, K\) with N = 3 labels, got \(4, 3\)"):
        metrics.accuracy([0, 1, 2], probs)
    with pytest.raises(ValueError, match=r"labels of shape \(4, 3\) look one-hot; pass the class indices"):
        metrics.accuracy(np.eye(3)[[0, 2, 1, 0]], probs)
    with pytest.raises(ValueError, match="labels is empty"):
        metrics.accuracy([], np.zeros((0, 3)))


@pytest.mark.parametrize("metric", ["accuracy", "categorical_nll", "brier_score", "expected_calibration_error"])
def test_classification_metrics_refuse_fractional_labels_and_rows_that_are_not_distributions(metric):
    probs = np.array([[0.1, 0.9], [0.8, 0.2]])
    function = getattr(metrics, metric)
    # 0.9 was truncated to class 0 before: accuracy 0.5 of labels [0, 0] instead of an error.
    with pytest.raises(ValueError, match=r"labels must be integers 0\.\.1; labels\[0\] = 0\.9"):
        function([0.9, 0.2], probs)
    assert function([1.0, 0.0], probs) == function([1, 0], probs)  # whole floats are labels
    with pytest.raises(ValueError, match=r"probabilities must be rows of K >= 0 numbers that sum to 1 \(row sums "
                                         r"1\.5 to 1\.5\); normalise them"):
        function([0, 1], np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"probabilities must be rows of K >= 0 numbers that sum to 1"):
        function([0, 1], np.array([[1.2, -0.2], [0.5, 0.5]]))
    # float32 softmax rows are distributions.
    rows = special.softmax(np.random.default_rng(0).normal(size=(100, 5)), axis=1).astype(np.float32)
    function(np.zeros(100, int), rows)


def test_calibration_bins_put_a_confidence_on_an_edge_in_the_bin_above():
    # 0.6, 0.7, 0.95 are edges of 10 or 20 bins that float rounding had moved one bin down.
    labels = [0, 1, 0, 0]
    probs = np.array([[0.7, 0.3], [0.75, 0.25], [0.6, 0.4], [0.95, 0.05]])
    counts, accuracy, confidence = metrics.calibration_bins(labels, probs, 10)
    np.testing.assert_array_equal(counts, [0, 0, 0, 0, 0, 0, 1, 2, 0, 1])
    np.testing.assert_allclose(accuracy[[6, 7, 9]], [1.0, 0.5, 1.0])
    np.testing.assert_allclose(confidence[[6, 7, 9]], [0.6, 0.725, 0.95])
    assert np.isnan(accuracy[0]) and np.isnan(confidence[0])
    counts20, _, _ = metrics.calibration_bins(labels, probs, 20)
    assert counts20[12] == counts20[14] == counts20[15] == counts20[19] == 1
    assert metrics.expected_calibration_error(labels, probs, 10) == pytest.approx(
        (1 * 0.4 + 2 * 0.225 + 1 * 0.05) / 4, rel=1e-12)
    # Also in float32, as predict returns them: 7 votes of 10 are 0.69999999, on the edge 0.7.
    votes = np.array([[7, 3], [9, 1], [6, 4], [7, 3], [3, 7]], np.float32) / np.float32(10)
    counts, _, _ = metrics.calibration_bins([0, 0, 0, 1, 1], votes, 10)
    np.testing.assert_array_equal(counts, [0, 0, 0, 0, 0, 0, 1, 3, 0, 1])
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"num_bins must be a positive integer, got {bad!r}"):
            metrics.expected_calibration_error(labels, probs, bad)


def test_categorical_nll(classification):
    labels, probs = classification
    expected = -np.mean(np.log(probs[np.arange(len(labels)), labels]))
    assert metrics.categorical_nll(labels, probs) == pytest.approx(expected, rel=1e-12)
    # A vote share of 0 for the label is clipped at 1e-12, not -log 0 = inf.
    votes = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert metrics.categorical_nll([1, 0], votes) == pytest.approx((-np.log(1e-12) - np.log(0.5)) / 2, rel=1e-9)


def test_brier_score(classification):
    labels, probs = classification
    one_hot = np.eye(probs.shape[1])[labels]
    expected = np.mean(np.sum((probs - one_hot) ** 2, axis=1))
    assert metrics.brier_score(labels, probs) == pytest.approx(expected, rel=1e-9)
    # Perfect and worst predictions.
    assert metrics.brier_score([0, 1], np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.0, abs=1e-9)
    assert metrics.brier_score([1, 0], np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(2.0, abs=1e-9)


def _binned_ece(labels, probs, num_bins=10):
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return ece


def test_expected_calibration_error_against_binned_by_hand(classification):
    labels, probs = classification
    # Calibrated by construction (labels drawn from probs): small but not zero.
    assert metrics.expected_calibration_error(labels, probs) == pytest.approx(_binned_ece(labels, probs), rel=1e-12)
    # Over-confident probabilities: same labels, sharpened.
    sharp = special.softmax(3.0 * np.log(probs), axis=1)
    expected = _binned_ece(labels, sharp)
    assert expected > 0.1
    assert metrics.expected_calibration_error(labels, sharp) == pytest.approx(expected, rel=1e-12)


# -- prediction identities -----------------------------------------------------------------

NUM_INPUTS = 30


@pytest.fixture
def inputs(rng):
    return rng.normal(size=(NUM_INPUTS, 2)).astype(np.float32)


def _entropy(p):
    return -np.sum(special.xlogy(p, p), axis=-1)


def test_classification_entropy_split(inputs):
    model = tfp_bnn.make_classifier((2,), 3, hidden_units=(8,), train_size=NUM_INPUTS,
                                    kernel_posterior=tfp_bnn.MeanFieldNormal(initial_scale=0.5))
    result = tfp_bnn.predict(model, inputs, num_samples=50, seed=0)
    draws = result.draw_probabilities.astype(np.float64)
    assert draws.shape == (50, NUM_INPUTS, 3)
    np.testing.assert_allclose(draws.sum(axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(result.probabilities.sum(axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(result.probabilities, draws.mean(axis=0), atol=1e-6)
    # Each part against NumPy, then the identity.
    np.testing.assert_allclose(result.predictive_entropy, _entropy(draws.mean(axis=0)), atol=1e-5)
    np.testing.assert_allclose(result.expected_entropy, _entropy(draws).mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(
        result.predictive_entropy, result.expected_entropy + result.mutual_information, atol=1e-5
    )
    assert np.all(result.mutual_information >= 0)
    assert np.all(result.predictive_entropy <= np.log(3) + 1e-6)
    # The draws differ (posterior scale 0.5), so there is epistemic uncertainty to report.
    assert result.mutual_information.mean() > 0.01
    np.testing.assert_array_equal(result.predicted_class, np.argmax(result.probabilities, axis=-1))


def test_point_class_head_draws_vote(inputs):
    model = tfp_bnn.make_classifier((2,), 3, regime="bayesian", hidden_units=(8,), train_size=NUM_INPUTS,
                                    kernel_posterior=tfp_bnn.MeanFieldNormal(initial_scale=0.5))
    result = tfp_bnn.predict(model, inputs, num_samples=40, seed=0)
    assert set(np.unique(result.draw_probabilities)) == {0.0, 1.0}
    np.testing.assert_allclose(result.probabilities * 40, np.round(result.probabilities * 40), atol=1e-4)
    np.testing.assert_allclose(result.expected_entropy, 0.0, atol=1e-7)
    np.testing.assert_allclose(result.mutual_information, result.predictive_entropy, atol=1e-6)


@pytest.fixture
def regressor():
    return tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=NUM_INPUTS,
                                  kernel_posterior=tfp_bnn.MeanFieldNormal(initial_scale=0.3))


def test_regression_variance_split(regressor, inputs):
    result = tfp_bnn.predict(regressor, inputs, num_samples=200, seed=0)
    means = result.draw_means.astype(np.float64)
    variances = result.draw_variances.astype(np.float64)
    assert means.shape == variances.shape == (200, NUM_INPUTS, 1)
    np.testing.assert_allclose(result.mean, means.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.aleatoric_variance, variances.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(result.epistemic_variance, means.var(axis=0), rtol=1e-4, atol=1e-7)
    # Total = variance of the mixture, E[var + mean^2] - (E mean)^2.
    mixture_variance = np.mean(variances + means**2, axis=0) - means.mean(axis=0) ** 2
    np.testing.assert_allclose(result.total_variance, mixture_variance, rtol=1e-4)
    np.testing.assert_allclose(result.total_variance, result.aleatoric_variance + result.epistemic_variance, rtol=1e-6)
    np.testing.assert_allclose(result.stddev, np.sqrt(mixture_variance), rtol=1e-4)
    assert np.all(result.epistemic_variance > 0)


def test_no_epistemic_variance_without_bayesian_layers(inputs):
    model = tfp_bnn.make_regressor((2,), regime="probabilistic", hidden_units=(8,))
    result = tfp_bnn.predict(model, inputs, num_samples=20, seed=0)
    # Identical draws; only float32 rounding of their mean is left.
    assert np.all(result.aleatoric_variance > 0)
    assert np.all(result.epistemic_variance <= 1e-9 * result.aleatoric_variance)


@pytest.mark.parametrize("level, z", [(0.95, Z_975), (0.5, stats.norm.ppf(0.75))])
def test_one_draw_interval_is_mean_plus_minus_z_stddev(regressor, inputs, level, z):
    result = tfp_bnn.predict(regressor, inputs, num_samples=1, seed=0, level=level)
    assert result.epistemic_variance.max() == 0.0
    stddev = np.sqrt(result.aleatoric_variance.astype(np.float64))
    mean = result.mean.astype(np.float64)
    np.testing.assert_allclose(result.lower, mean - z * stddev, rtol=1e-4, atol=1e-4 * stddev.min())
    np.testing.assert_allclose(result.upper, mean + z * stddev, rtol=1e-4, atol=1e-4 * stddev.min())
    np.testing.assert_allclose((result.upper - result.lower) / (2 * stddev), z, rtol=1e-4)


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_many_draw_interval_ends_are_mixture_quantiles(regressor, inputs, level):
    result = tfp_bnn.predict(regressor, inputs, num_samples=200, seed=1, level=level)
    means = result.draw_means.astype(np.float64)
    scales = np.sqrt(result.draw_variances.astype(np.float64))

    def mixture_cdf(y):
        return stats.norm.cdf(y.astype(np.float64)[np.newaxis], means, scales).mean(axis=0)

    np.testing.assert_allclose(mixture_cdf(result.lower), (1 - level) / 2, atol=1e-4)
    np.testing.assert_allclose(mixture_cdf(result.upper), (1 + level) / 2, atol=1e-4)
    # Not just mean +- z * total stddev: the mixture is not Gaussian.
    z = stats.norm.ppf((1 + level) / 2)
    assert np.max(np.abs(result.upper - (result.mean + z * result.stddev))) > 1e-2


RATES = np.array([0.001, 0.03, 0.24, 0.9, 4.0, 30.0])


def _poisson_rate_model(**kwargs):
    """Log-rate = x: a linear model whose input is the log-rate, Bayesian or not."""
    model = tfp_bnn.make_regressor((1,), hidden_units=(), head=heads.PoissonHead(1), **kwargs)
    posterior = [w for w in model.trainable_weights if "loc" in w.name]
    if posterior:  # the BayesianDense's posterior over [kernel, bias]; its scale stays
        posterior[0].assign([1.0, 0.0])
    else:
        model.layers[1].set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    return model


@pytest.mark.parametrize("level", [0.95, 0.8, 0.999])
def test_poisson_interval_ends_are_the_counts_of_scipy_quantiles(level):
    model = _poisson_rate_model(regime="probabilistic")
    result = tfp_bnn.predict(model, np.log(RATES)[:, None], num_samples=3, seed=0, level=level)
    np.testing.assert_allclose(result.draw_means[0, :, 0], RATES, rtol=1e-5)
    # Smallest count k with P(Y <= k) >= p: TFP's default Poisson CDF interpolates between counts.
    np.testing.assert_array_equal(result.lower[:, 0], stats.poisson.ppf((1 - level) / 2, RATES))
    np.testing.assert_array_equal(result.upper[:, 0], stats.poisson.ppf((1 + level) / 2, RATES))
    assert not np.signbit(result.lower).any()  # 0, not -0.0 (a root a hair below 0, rounded)
    coverage = stats.poisson.cdf(result.upper[:, 0], RATES) - stats.poisson.cdf(result.lower[:, 0] - 1, RATES)
    assert np.all(coverage >= level), coverage


def test_poisson_interval_ends_are_counts_of_the_mixture():
    model = _poisson_rate_model(train_size=50, kernel_posterior=tfp_bnn.MeanFieldNormal(0.5))
    result = tfp_bnn.predict(model, np.log(RATES)[:, None], num_samples=200, seed=0)
    rates = result.draw_means[..., 0].astype(np.float64)
    assert np.all(rates.std(axis=0) > 0.1 * rates.mean(axis=0))  # a real mixture of rates
    counts = np.arange(int(3 * rates.max()) + 50)[:, None, None]
    mixture_cdf = stats.poisson.cdf(counts, rates[None]).mean(axis=1)  # (count, input)
    for end, p in ((result.lower, 0.025), (result.upper, 0.975)):
        expected = np.argmax(mixture_cdf >= p, axis=0)
        np.testing.assert_array_equal(end[:, 0], expected)


def test_log_likelihoods_and_mixture_nll_match_the_predicted_draws(regressor, inputs, rng):
    y = rng.normal(size=NUM_INPUTS).astype(np.float32)
    result = tfp_bnn.predict(regressor, inputs, num_samples=20, seed=3)
    log_likelihoods = tfp_bnn.log_likelihoods(regressor, inputs, y, num_samples=20, seed=3)
    assert log_likelihoods.shape == (20, NUM_INPUTS)
    # Same seed, same model, same chunks: the same 20 networks.
    expected = stats.norm.logpdf(
        y[np.newaxis].astype(np.float64), result.draw_means[..., 0], np.sqrt(result.draw_variances[..., 0])
    )
    np.testing.assert_allclose(log_likelihoods, expected, rtol=1e-5, atol=1e-5)
    nll = -np.mean(special.logsumexp(expected, axis=0) - np.log(20))
    assert metrics.mixture_nll(log_likelihoods) == pytest.approx(nll, rel=1e-5)


@pytest.mark.parametrize("metric", ["accuracy", "categorical_nll", "brier_score", "expected_calibration_error"])
def test_classification_metrics_refuse_one_column_and_take_float16_rows(metric):
    function = getattr(metrics, metric)
    # P(y = 1) of a binary model, (N, 1): "labels must be integers 0..0" blamed the labels before,
    # and for labels all 0 the advice p / p.sum(axis=1) made every row 1.
    for labels in ([0, 1, 1], [0, 0, 0]):
        with pytest.raises(ValueError, match=r"one column, not a distribution over classes.*np\.hstack"):
            function(labels, np.array([[0.2], [0.8], [0.6]]))
    # float16 softmax rows, normalised: within float16's rounding of 1 (were refused at 1e-4).
    logits = np.random.default_rng(0).normal(size=(20, 50))
    rows = special.softmax(logits, axis=1).astype(np.float16)
    rows = rows / rows.sum(axis=1, keepdims=True)
    assert np.abs(rows.astype(np.float64).sum(axis=1) - 1).max() > 1e-4
    function(np.zeros(20, int), rows)


def test_metrics_refuse_transposed_multi_output_arrays():
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    assert metrics.rmse(y, pred[:, :1].repeat(2, 1)) > 0  # same layout: fine
    assert metrics.rmse(y[:, 0], pred[:, :1]) == metrics.rmse(y[:, 0], pred[:, 0])  # (N,) with (N, 1): fine
    for call in (
        lambda: metrics.rmse(y, pred.T),
        lambda: metrics.interval_coverage(y, pred.T - 1, pred.T + 1),
        lambda: metrics.interval_width(pred - 1, pred.T + 1),
        lambda: metrics.crps_gaussian(y, pred.T, np.ones((2, 5))),
        lambda: metrics.crps_ensemble(y, rng.normal(size=(7, 2, 5))),
    ):
        with pytest.raises(ValueError, match="shape"):
            call()


def test_pit_refuses_transposed_targets():
    plots = pytest.importorskip("tfp_bnn.plots")
    result = tfp_bnn.RegressionPrediction(
        mean=np.zeros((5, 2)), aleatoric_variance=np.ones((5, 2)), epistemic_variance=np.zeros((5, 2)),
        lower=-np.ones((5, 2)), upper=np.ones((5, 2)), level=0.95,
        draw_means=np.zeros((3, 5, 2)), draw_variances=np.ones((3, 5, 2)),
    )
    assert plots.probability_integral_transform(np.zeros((5, 2)), result).shape == (5, 2)
    with pytest.raises(ValueError, match="transposed"):
        plots.probability_integral_transform(np.zeros((2, 5)), result)


@pytest.mark.parametrize("ll", [np.zeros((3, 0)), np.zeros((0, 3)), np.array([[0.0, np.nan]])])
def test_mixture_nll_refuses_empty_and_nan_like_the_other_metrics(ll):
    with pytest.raises(ValueError):
        metrics.mixture_nll(ll)


def test_mixture_nll_keeps_zero_likelihoods():
    assert metrics.mixture_nll(np.array([[-np.inf], [0.0]])) == pytest.approx(np.log(2))


def test_crps_gaussian_takes_multi_output_arrays_of_one_layout():
    # stddev was checked against the flattened y_true: (N, 2) inputs of one layout were refused.
    rng = np.random.default_rng(0)
    y, mean, stddev = rng.normal(size=(5, 2)), rng.normal(size=(5, 2)), rng.uniform(0.5, 2.0, size=(5, 2))
    flat = metrics.crps_gaussian(y.reshape(-1), mean.reshape(-1), stddev.reshape(-1))
    assert metrics.crps_gaussian(y, mean, stddev) == pytest.approx(flat)
    assert metrics.crps_gaussian(y[:, 0], mean[:, :1], stddev[:, :1]) == pytest.approx(
        metrics.crps_gaussian(y[:, 0], mean[:, 0], stddev[:, 0]))
    with pytest.raises(ValueError, match="shape"):
        metrics.crps_gaussian(y, mean, stddev.T)
