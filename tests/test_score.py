"""tfp_bnn.score: the usual scores of a model's predictive distribution, against known distributions."""

import numpy as np
import pytest
from scipy import stats
import tf_keras

import tfp_bnn
from tfp_bnn import metrics
from tfp_bnn._factory import softplus_inverse

N = 20_000  # sampling sd of a coverage of 0.95: 0.0015


def _fixed_model(head, kernel, bias):
    """A model whose every draw is the same known distribution: one Dense layer with set weights, then ``head``."""
    inputs = tf_keras.Input((1,))
    dense = tf_keras.layers.Dense(len(bias))
    model = tfp_bnn.BayesianModel(inputs, head(dense(inputs)))
    dense.set_weights([np.array(kernel, "float32"), np.array(bias, "float32")])
    return model


def test_regression_scores_of_a_known_normal_match_its_closed_forms():
    # Every draw predicts N(2x, 0.5^2); the targets are drawn from it.
    scale = 0.5
    model = _fixed_model(tfp_bnn.NormalHead(), [[2.0, 0.0]], [0.0, softplus_inverse(scale - 0.001)])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (N, 1)).astype("float32")
    y = 2 * x + scale * rng.normal(size=x.shape).astype("float32")
    scores = tfp_bnn.score(model, x, y, num_samples=4, seed=0)
    assert list(scores) == ["rmse", "nll", "coverage_95", "width_95"]
    assert scores["rmse"] == pytest.approx(scale, abs=3 * scale / np.sqrt(2 * N))
    exact_nll = 0.5 * np.log(2 * np.pi * scale**2) + 0.5  # the Normal's entropy: 0.7258
    assert scores["nll"] == pytest.approx(exact_nll, abs=3 * np.sqrt(0.5) / np.sqrt(N))
    assert scores["coverage_95"] == pytest.approx(0.95, abs=3 * np.sqrt(0.95 * 0.05 / N))
    assert scores["width_95"] == pytest.approx(2 * stats.norm.ppf(0.975) * scale, rel=1e-4)

    at_90 = tfp_bnn.score(model, x, y, num_samples=4, seed=0, level=0.9)
    assert list(at_90) == ["rmse", "nll", "coverage_90", "width_90"]
    assert at_90["coverage_90"] == pytest.approx(0.90, abs=3 * np.sqrt(0.9 * 0.1 / N))
    assert list(tfp_bnn.score(model, x[:10], y[:10], num_samples=4, seed=0, level=0.975))[2] == "coverage_97.5"


def test_classification_scores_of_known_probabilities_match_their_expectations():
    # Logits 1.5x, 0, -1.5x: labels drawn from the model's own softmax, so it is calibrated.
    model = _fixed_model(tfp_bnn.CategoricalHead(3), [[1.5, 0.0, -1.5]], [0.0, 0.0, 0.0])
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, (N, 1)).astype("float32")
    logits = np.concatenate([1.5 * x, 0 * x, -1.5 * x], axis=1).astype(np.float64)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (rng.uniform(size=(N, 1)) > np.cumsum(probabilities, axis=1)).sum(axis=1)
    scores = tfp_bnn.score(model, x, labels, num_samples=4, seed=0)
    assert list(scores) == ["accuracy", "nll", "brier", "ece"]
    expected = {  # expectations over the labels' own distribution, and their sampling sd over N points
        "accuracy": probabilities.max(axis=1),
        "nll": -np.sum(probabilities * np.log(probabilities), axis=1),
        "brier": 1 - np.sum(probabilities**2, axis=1),
    }
    for name, per_point in expected.items():
        assert scores[name] == pytest.approx(per_point.mean(), abs=3 * 0.6 / np.sqrt(N)), name
    assert scores["ece"] < 0.02


def test_scores_are_those_of_predict_and_log_likelihoods_on_the_same_draws():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (200, 2)).astype("float32")
    y = (x[:, :1] - x[:, 1:] + 0.1 * rng.normal(size=(200, 1))).astype("float32")
    model = tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=len(x))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    model.fit(x, y, epochs=5, verbose=0)
    result = tfp_bnn.predict(model, x, num_samples=30, seed=3)
    by_hand = {
        "rmse": metrics.rmse(y, result.mean),
        "nll": metrics.mixture_nll(tfp_bnn.log_likelihoods(model, x, y, num_samples=30, seed=3)),
        "coverage_95": metrics.interval_coverage(y, result.lower, result.upper),
        "width_95": metrics.interval_width(result.lower, result.upper),
    }
    assert tfp_bnn.score(model, x, y, num_samples=30, seed=3) == by_hand
    fresh = [tfp_bnn.score(model, x, y, num_samples=30)["nll"] for _ in range(2)]
    assert fresh[0] != fresh[1]  # seed=None: other draws at each call


def test_a_point_class_head_is_scored_by_its_vote_shares():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 3)).astype("float32")
    labels = (x[:, 0] > 0).astype("int64")
    model = tfp_bnn.make_classifier((3,), 2, regime="bayesian", hidden_units=(8,), train_size=100)
    result = tfp_bnn.predict(model, x, num_samples=20, seed=0)
    scores = tfp_bnn.score(model, x, labels, num_samples=20, seed=0)
    assert scores["nll"] == metrics.categorical_nll(labels, result.probabilities)
    assert scores["accuracy"] == metrics.accuracy(labels, result.probabilities)


def test_a_bernoulli_head_takes_labels_of_shape_n_by_1():
    model = _fixed_model(tfp_bnn.BernoulliHead(), [[3.0]], [0.0])
    x = np.linspace(-2, 2, 101, dtype="float32")[:, None]
    labels = (x > 0).astype("int64")
    scores = tfp_bnn.score(model, x, labels, num_samples=2, seed=0)
    assert scores["accuracy"] == 1.0  # at x = 0 (label 0) the probabilities are 1/2 each: argmax picks class 0
    exact = -np.mean(np.log(np.where(labels[:, 0] == 1, 1 / (1 + np.exp(-3 * x[:, 0])), 1 / (1 + np.exp(3 * x[:, 0])))))
    assert scores["nll"] == pytest.approx(exact, rel=1e-5)


def test_targets_of_the_wrong_shape_are_refused_before_any_prediction(monkeypatch):
    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=10)
    predicted = []
    monkeypatch.setattr(tfp_bnn.prediction, "predict", lambda *args, **kwargs: predicted.append(1))
    with pytest.raises(ValueError, match=r"y has shape \(10, 3\)"):
        tfp_bnn.score(model, np.zeros((10, 2)), np.zeros((10, 3)))
    assert not predicted


def test_unseeded_scores_follow_the_global_seed_as_predict_does():
    # seed=None drew from a fresh np.random.default_rng(): set_random_seed, which makes
    # predict(seed=None) and log_likelihoods(seed=None) repeat, did not make score repeat.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 2)).astype("float32")
    y = rng.normal(size=50).astype("float32")
    model = tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=50)
    tf_keras.utils.set_random_seed(7)
    first = tfp_bnn.score(model, x, y, num_samples=20)
    tf_keras.utils.set_random_seed(7)
    assert tfp_bnn.score(model, x, y, num_samples=20) == first
    tf_keras.utils.set_random_seed(7)
    mean = tfp_bnn.predict(model, x, num_samples=20).mean  # the same draws as the unseeded score after the same seed
    assert metrics.rmse(y, mean) == first["rmse"]


@pytest.mark.parametrize("level", ["0.9", None, [0.9, 0.95]])
def test_a_level_that_is_not_a_number_is_refused_with_the_fix(level):
    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=10)
    with pytest.raises(ValueError, match=r"level must lie strictly between 0 and 1, got .*such as 0.95"):
        tfp_bnn.score(model, np.zeros((10, 2)), np.zeros(10), num_samples=2, level=level)
    with pytest.raises(ValueError, match=r"level must lie strictly between 0 and 1, got .*such as 0.95"):
        tfp_bnn.predict(model, np.zeros((10, 2)), num_samples=2, level=level)


def test_the_documented_coverage_of_counts_exceeds_the_level():
    # A Poisson model that is exactly the data's distribution covers more than `level`: its
    # interval's end counts belong to it. score's documentation says so, with these numbers.
    model = _fixed_model(tfp_bnn.PoissonHead(), [[1.0]], [0.0])  # rate exp(x), every draw
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 2, (N, 1)).astype("float32")
    y = rng.poisson(np.exp(x)).astype("float32")
    at_50 = tfp_bnn.score(model, x, y, num_samples=2, seed=0, level=0.5)["coverage_50"]
    at_95 = tfp_bnn.score(model, x, y, num_samples=2, seed=0)["coverage_95"]
    assert at_50 == pytest.approx(0.75, abs=0.01) and at_95 == pytest.approx(0.98, abs=0.005)
    doc = " ".join(tfp_bnn.score.__doc__.split())
    assert "calibrated model covers more than ``level``" in doc and "0.75 at ``level=0.5``" in doc


@pytest.mark.parametrize("level, suffix", [(0.9, "90"), (0.999, "99.9"), (0.9999999, "99.99999"), (0.07, "7")])
def test_the_key_suffix_is_the_level_in_percent_without_rounding_to_100(level, suffix):
    model = _fixed_model(tfp_bnn.NormalHead(), [[1.0, 0.0]], [0.0, 0.0])
    scores = tfp_bnn.score(model, np.zeros((4, 1)), np.zeros(4), num_samples=2, seed=0, level=level)
    assert {f"coverage_{suffix}", f"width_{suffix}"} <= set(scores)


@pytest.mark.parametrize("noise", [0.1, 3.0])
def test_a_point_head_nll_follows_its_documented_formula_not_log_target_scale_alone(noise):
    # A PointHead's nll is its training likelihood's, N(prediction, target_scale**2): with errors smaller
    # than target_scale it grows by log(10) from scale 1 to 10; with larger errors it falls.
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, (2000, 1)).astype("float32")
    y = (2 * x + noise * rng.normal(size=x.shape)).astype("float32")
    nll = {}
    for scale in (1.0, 10.0):
        model = _fixed_model(tfp_bnn.PointHead(1, target_scale=scale), [[2.0 / scale]], [0.0])
        nll[scale] = tfp_bnn.score(model, x, y, num_samples=2, seed=0)["nll"]
        formula = np.log(scale) + np.mean((y - 2 * x) ** 2) / (2 * scale**2) + 0.5 * np.log(2 * np.pi)
        assert nll[scale] == pytest.approx(formula, rel=1e-4)
    assert (nll[10.0] < nll[1.0]) == (noise > 1.0)
    doc = " ".join(tfp_bnn.score.__doc__.split())
    assert "``log target_scale + (error / target_scale)**2 / 2`` plus a constant" in doc
    assert "the joint NLL of the example's targets" in doc
