"""tfp_bnn.score holds per-example values only, not the (T, N) draws of all inputs at once."""

import numpy as np
import pytest
import tf_keras

import tfp_bnn
from tfp_bnn import metrics, prediction


def _old_score(model, x, y, **draws):
    """score as it was: predict and log_likelihoods of all x in one call each."""
    result = tfp_bnn.predict(model, x, **draws)
    if hasattr(result, "probabilities"):
        return {
            "accuracy": metrics.accuracy(y, result.probabilities),
            "nll": metrics.mixture_nll(tfp_bnn.log_likelihoods(model, x, y, **draws)),
        }
    return {
        "rmse": metrics.rmse(y, result.mean),
        "nll": metrics.mixture_nll(tfp_bnn.log_likelihoods(model, x, y, **draws)),
        "coverage_95": metrics.interval_coverage(y, result.lower, result.upper),
        "width_95": metrics.interval_width(result.lower, result.upper),
    }


@pytest.mark.parametrize("kind", ["variational", "mc_dropout", "ensemble", "classifier"])
def test_score_runs_in_slices_of_bounded_rows_with_the_same_numbers(kind, monkeypatch):
    tf_keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_350, 3)).astype(np.float32)
    if kind == "classifier":
        model = tfp_bnn.make_classifier((3,), 3, hidden_units=(8,), train_size=100)
        y = rng.integers(0, 3, size=len(x))
    else:
        model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=100, inference=kind)
        y = x[:, :1] + rng.normal(size=(len(x), 1)).astype(np.float32)
    draws = {"num_samples": 10, "seed": 3, "batch_size": 100}
    expected = _old_score(model, x, y, **draws)

    seen = []
    run_chunks = prediction._run_chunks
    monkeypatch.setattr(prediction, "_SCORE_NUMBERS", 10 * 300)  # 3 chunks of 100 per slice
    monkeypatch.setattr(
        prediction, "_run_chunks", lambda model, f, arrays, *a: seen.append(len(arrays[0])) or run_chunks(model, f, arrays, *a)
    )
    scores = tfp_bnn.score(model, x, y, **draws)
    assert max(seen) <= 300, seen  # never the (T, N) arrays of all 2,350 inputs
    for key, value in expected.items():
        assert scores[key] == value, (key, scores[key], value)  # bit for bit, MC dropout masks too


def test_chunked_predict_is_the_chunks_predictions():
    # Chunks are written into arrays for all inputs as they come (a list joined at the end held the
    # result twice: +1.6 GB at the peak for 0.8 GB of results, N = 10**6, T = 100; now +0.8 GB).
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=100, inference="mc_dropout")
    x = np.random.default_rng(1).normal(size=(250, 3)).astype(np.float32)
    whole = tfp_bnn.predict(model, x, num_samples=7, seed=2, batch_size=100)
    for start in (0, 100, 200):
        part = tfp_bnn.predict(model, x[start : start + 100], num_samples=7, seed=2, batch_size=100)
        np.testing.assert_array_equal(whole.mean[start : start + 100], part.mean)
        np.testing.assert_array_equal(whole.draw_means[:, start : start + 100], part.draw_means)


@pytest.mark.parametrize("classes, steps", [(64, ()), (2, (4, 4))])
def test_score_bounds_the_numbers_of_a_slice_not_its_rows(classes, steps, monkeypatch):
    # The slices counted inputs x draws: a 64-class head's draw probabilities held 64 times the
    # budget per slice (a per-pixel head's, the pixels x classes times it).
    tf_keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1_000, 3)).astype(np.float32)
    if steps:
        inputs = tf_keras.Input((3,))
        logits = tf_keras.layers.Reshape((*steps, 2))(tfp_bnn.BayesianDense(32, kl_weight=0.01)(inputs))
        model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(2)(logits))
        y = rng.integers(0, classes, size=(len(x), *steps))
    else:
        model = tfp_bnn.make_classifier((3,), classes, hidden_units=(8,), train_size=100)
        y = rng.integers(0, classes, size=len(x))
    draws = {"num_samples": 10, "seed": 3, "batch_size": 10}
    expected = tfp_bnn.score(model, x, y, **draws)  # one slice of all 1,000 inputs
    sizes, predict = [], prediction.predict
    monkeypatch.setattr(prediction, "_SCORE_NUMBERS", 10 * 10 * 64)

    def counted(*args, **kwargs):
        result = predict(*args, **kwargs)
        sizes.append(result.draw_probabilities.size)
        return result

    monkeypatch.setattr(prediction, "predict", counted)
    scores = tfp_bnn.score(model, x, y, **draws)
    assert max(sizes) <= prediction._SCORE_NUMBERS, sizes
    for key, value in expected.items():
        assert scores[key] == value, (key, scores[key], value)
