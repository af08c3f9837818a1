"""Bad input fails early with a clear error; good input of a slightly different shape is aligned.

Every failure case checks the exception type and that the message names both
the problem and the fix, and that nothing ran: the weights are bit-for-bit
unchanged, the optimizer took no step and Keras never built a train/test
function.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from scipy import special, stats

import tensorflow_probability as tfp

import tfp_bnn
from stop_before_training import warnings_before_training
from tfp_bnn import cli, data, heads, sampling, validation

N = 12
NUM_FEATURES = 3


# -- models ------------------------------------------------------------------------


def _head_model(head):
    """One BayesianDense layer feeding ``head`` (for heads the builders do not offer)."""
    inputs = tf_keras.Input((NUM_FEATURES,))
    params = tfp_bnn.BayesianDense(head.params_size, kl_weight=1.0 / N)(inputs)
    return tfp_bnn.BayesianModel(inputs, head(params))


def _make(kind):
    if kind == "regressor":
        model = tfp_bnn.make_regressor((NUM_FEATURES,), hidden_units=(4,), train_size=N)
    elif kind == "classifier":
        model = tfp_bnn.make_classifier((NUM_FEATURES,), 3, hidden_units=(4,), train_size=N)
    elif kind == "bernoulli":
        model = _head_model(heads.BernoulliHead())
    elif kind == "poisson":
        model = _head_model(heads.PoissonHead())
    else:
        raise AssertionError(kind)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    return model


def _data(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, NUM_FEATURES)).astype(np.float32)
    y = {
        "regressor": rng.normal(size=N),
        "classifier": rng.integers(0, 3, size=N),
        "bernoulli": rng.integers(0, 2, size=N),
        "poisson": rng.integers(0, 5, size=N),
    }[kind].astype(np.float32)
    return x, y


def _snapshot(model):
    return [w.numpy().copy() for w in model.weights]


_UNTOUCHED = {}


def _pristine(kind):
    """A compiled model of ``kind`` that nothing has run on, shared by the tests that only see calls refused.

    Building and compiling one took ~0.5 s in each of ~150 tests. Each of them asserts that its call
    left the model as it was (``_assert_untouched``); it is checked again here before it is handed on.
    """
    if kind not in _UNTOUCHED:
        model = _make(kind)
        _UNTOUCHED[kind] = model, _snapshot(model)
    model, initial = _UNTOUCHED[kind]
    _assert_untouched(model, initial)
    return model


def _assert_untouched(model, before):
    after = _snapshot(model)
    assert len(after) == len(before)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)
    assert int(model.optimizer.iterations) == 0
    assert model.train_function is None
    assert model.test_function is None


# -- bad x: every entry point ----------------------------------------------------------


def _set(array, index, value):
    array = array.copy()
    array[index] = value
    return array


BAD_X = {
    "nan": (lambda x: _set(x, (4, 2), np.nan), ValueError,
            r"x contains nan at row 4, column 2 \(1 non-finite values in all\); drop or impute"),
    "nan_and_inf": (lambda x: _set(_set(x, (9, 0), np.nan), (2, 1), np.inf), ValueError,
                    r"x contains inf at row 2, column 1 \(2 non-finite values in all\)"),
    "inf": (lambda x: _set(x, (7, 0), -np.inf), ValueError,
            r"x contains -inf at row 7, column 0 .*drop or impute missing and infinite values"),
    # Finite in float64 but not in the float32 the model computes in.
    "float32_overflow": (lambda x: _set(x.astype(np.float64), (3, 1), 1e39), ValueError,
                         r"x contains inf at row 3, column 1 .*drop or impute"),
    "strings": (lambda x: x.astype(str), TypeError,
                r"x has dtype <U\d+, not a number type; convert it to float32 \(e\.g\. x\.astype\('float32'\)\)"),
    "objects": (lambda x: x.astype(object), TypeError,
                r"x has dtype object, not a number type; convert it to float32"),
    "too_few_features": (lambda x: x[:, :2], ValueError,
                         r"x has shape \(12, 2\) but the model takes inputs of shape \(N, 3\): 3 features "
                         r"per example\. Pass the same features"),
    "extra_axis": (lambda x: x[..., np.newaxis], ValueError,
                   r"x has shape \(12, 3, 1\) but the model takes inputs of shape \(N, 3\).*Pass the same"),
    "flat": (lambda x: x[:, 0], ValueError,
             r"x has shape \(12,\) but the model takes inputs of shape \(N, 3\)"),
    "empty": (lambda x: x[:0], ValueError, r"x has no examples \(shape \(0, 3\)\); pass at least one row"),
    "none": (lambda x: None, ValueError, r"x is None; pass a NumPy array"),
}

ENTRY_POINTS = ("fit", "evaluate", "predict", "log_likelihoods")


def _call(entry, model, x, y, **kwargs):
    if entry == "fit":
        return model.fit(x, y, epochs=1, verbose=0, **kwargs)
    if entry == "evaluate":
        return model.evaluate(x, y, verbose=0, **kwargs)
    if entry == "predict":
        return tfp_bnn.predict(model, x, num_samples=3, seed=0, **kwargs)
    if entry == "log_likelihoods":
        return tfp_bnn.log_likelihoods(model, x, y, num_samples=3, seed=0, **kwargs)
    raise AssertionError(entry)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", sorted(BAD_X))
def test_bad_x_is_refused_before_anything_runs(entry, case):
    model = _pristine("regressor")
    x, y = _data("regressor")
    corrupt, error, message = BAD_X[case]
    before = _snapshot(model)
    with pytest.raises(error, match=message):
        _call(entry, model, corrupt(x), y)
    _assert_untouched(model, before)


# -- bad y: fit, evaluate, log_likelihoods ------------------------------------------

BAD_Y = {
    "nan": ("regressor", lambda y: _set(y, 5, np.nan), ValueError,
            r"y contains nan at row 5, column 0 \(1 non-finite values in all\); drop or impute"),
    "inf_2d": ("regressor", lambda y: _set(y[:, None], (2, 0), np.inf), ValueError,
               r"y contains inf at row 2, column 0 .*drop or impute"),
    "two_columns": ("regressor", lambda y: np.stack([y, y], axis=1), ValueError,
                    r"y has shape \(12, 2\) but NormalHead predicts targets of shape \(N, 1\); "
                    r"reshape y to \(N, 1\)"),
    "too_many_axes": ("regressor", lambda y: y[:, None, None, None], ValueError,
                      r"y has shape \(12, 1, 1, 1\) but NormalHead predicts targets of shape \(N, 1\)"),
    "too_short": ("regressor", lambda y: y[:-1], ValueError,
                  r"x has 12 examples but y has 11; pass one target per example"),
    "too_long": ("regressor", lambda y: np.concatenate([y, y[:3]]), ValueError,
                 r"x has 12 examples but y has 15; pass one target per example"),
    "strings": ("regressor", lambda y: y.astype(str), TypeError,
                r"y has dtype <U\d+, not a number type; convert it to float32"),
    "objects": ("regressor", lambda y: y.astype(object), TypeError, r"y has dtype object, not a number type"),
    "empty": ("regressor", lambda y: y[:0], ValueError, r"y has no examples \(shape \(0,\)\); pass at least one"),
    "label_equal_to_num_classes": ("classifier", lambda y: _set(y, 5, 3), ValueError,
                                   r"y\[5\] = 3, but labels must be integers 0\.\.2 \(the head has 3 classes\); "
                                   r"encode the classes as 0\.\.K-1"),
    "negative_label": ("classifier", lambda y: _set(y, 0, -1), ValueError,
                       r"y\[0\] = -1, but labels must be integers 0\.\.2 .*encode the classes as 0\.\.K-1"),
    "fractional_label": ("classifier", lambda y: _set(y, 9, 1.5), ValueError,
                         r"y\[9\] = 1\.5, but labels must be integers 0\.\.2 .*encode the classes"),
    "one_hot_labels": ("classifier", lambda y: np.eye(3)[y.astype(int)], ValueError,
                       r"y has shape \(12, 3\) but CategoricalHead predicts targets of shape \(N,\); "
                       r"reshape y to \(N,\)"),
    "bernoulli_label_2": ("bernoulli", lambda y: _set(y, 6, 2), ValueError,
                          r"y\[6\] = 2, but a Bernoulli head takes labels 0 or 1"),
    "bernoulli_fraction": ("bernoulli", lambda y: _set(y, 1, 0.5), ValueError,
                           r"y\[1\] = 0\.5, but a Bernoulli head takes labels 0 or 1"),
    "poisson_negative": ("poisson", lambda y: _set(y, 4, -2), ValueError,
                         r"y\[4\] = -2, but a Poisson head takes counts \(integers >= 0\)"),
    "poisson_fraction": ("poisson", lambda y: _set(y, 8, 2.5), ValueError,
                         r"y\[8\] = 2\.5, but a Poisson head takes counts \(integers >= 0\)"),
}


@pytest.mark.parametrize("entry", ("fit", "evaluate", "log_likelihoods"))
@pytest.mark.parametrize("case", sorted(BAD_Y))
def test_bad_y_is_refused_before_anything_runs(entry, case):
    kind, corrupt, error, message = BAD_Y[case]
    model = _pristine(kind)
    x, y = _data(kind)
    before = _snapshot(model)
    with pytest.raises(error, match=message):
        _call(entry, model, x, corrupt(y))
    _assert_untouched(model, before)


def test_bad_validation_data_is_refused_before_the_first_epoch():
    model = _pristine("regressor")
    x, y = _data("regressor")
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"y contains nan at row 3, column 0"):
        model.fit(x, y, validation_data=(x, _set(y, 3, np.nan)), epochs=1, verbose=0)
    _assert_untouched(model, before)
    with pytest.raises(ValueError, match=r"x has shape \(12, 2\) but the model takes inputs of shape \(N, 3\)"):
        model.fit(x, y, validation_data=(x[:, :2], y), epochs=1, verbose=0)
    _assert_untouched(model, before)


def test_the_untouched_checks_can_fail():
    """Control: a valid fit does move the weights and the step counter."""
    model = _make("regressor")
    x, y = _data("regressor")
    before = _snapshot(model)
    model.fit(x, y, epochs=2, batch_size=N, verbose=0)
    assert int(model.optimizer.iterations) == 2
    with pytest.raises(AssertionError):
        _assert_untouched(model, before)


def _dataset(kind, transform=lambda x, y: (x, y), batch=4):
    x, y = transform(*_data(kind))
    dataset = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    return dataset.batch(batch) if batch else dataset


BAD_DATASETS = {
    "unbatched": ("regressor", _dataset("regressor", batch=None),
                  r"The dataset yields single examples \(x of shape \(3,\)\); the model takes batches of shape "
                  r"\(N, 3\)\. Batch it: dataset\.batch\(32\)\."),
    "inputs_only": ("regressor", _dataset("regressor", lambda x, y: (x, None)),
                    r"The dataset yields inputs only; fit and evaluate need \(x, y\) pairs"),
    "too_few_features": ("regressor", _dataset("regressor", lambda x, y: (x[:, :2], y)),
                         r"The dataset's x has shape \(None, 2\) but the model takes inputs of shape \(N, 3\): 3 "
                         r"features per example\."),
    "one_hot_labels": ("classifier", _dataset("classifier", lambda x, y: (x, np.eye(3)[y.astype(int)])),
                       r"y has shape \(None, 3\) but CategoricalHead predicts targets of shape \(N,\); reshape y "
                       r"to \(N,\) \(one-hot labels\? pass the class indices, y\.argmax\(axis=1\)\)\."),
    "two_targets": ("regressor", _dataset("regressor", lambda x, y: (x, np.stack([y, y], 1))),
                    r"y has shape \(None, 2\) but NormalHead predicts targets of shape \(N, 1\)"),
}


@pytest.mark.parametrize("entry", ("fit", "evaluate"))
@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_a_bad_dataset_is_refused_by_its_element_spec_before_anything_runs(entry, case):
    kind, dataset, message = BAD_DATASETS[case]
    model = _pristine(kind)
    before = _snapshot(model)
    with pytest.raises(ValueError, match=message):
        _call(entry, model, dataset, None)
    _assert_untouched(model, before)


@pytest.mark.parametrize("weights, message", [
    (lambda w: _set(w, 5, np.nan), r"sample_weight contains nan at row 5 \(1 non-finite values in all\)"),
    (lambda w: _set(w, 2, -1.0), r"sample_weight must be >= 0 with at least one weight > 0"),
    (lambda w: 0 * w, r"sample_weight must be >= 0 with at least one weight > 0"),
    (lambda w: w[:-1], r"sample_weight has shape \(11,\); pass one weight per example, shape \(12,\)\."),
])
def test_bad_sample_weight_is_refused_before_anything_runs(weights, message):
    model = _pristine("regressor")
    x, y = _data("regressor")
    before = _snapshot(model)
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, sample_weight=weights(np.ones(N, np.float32)), epochs=1, verbose=0)
    _assert_untouched(model, before)


def test_sample_weight_of_shape_n_by_1_is_per_example_weights_after_a_refusal():
    # (Once, not in each case above: the same fit after each refusal, 7 s apiece.)
    model = _make("regressor")
    x, y = _data("regressor")
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0 with at least one weight > 0"):
        model.fit(x, y, sample_weight=np.zeros(N, np.float32), epochs=1, verbose=0)
    # (N, 1) weights are per-example weights too.
    model.fit(x, y, sample_weight=np.ones((N, 1)), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 1


@pytest.mark.parametrize("transform", [lambda x, y: (x, y), lambda x, y: (x, y[:, None])], ids=["n", "n_by_1"])
def test_a_good_dataset_trains_as_the_arrays_do(transform):
    model = _make("regressor")
    x, y = _data("regressor")
    model.fit(_dataset("regressor", transform), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 3
    with tfp_bnn.sampling.posterior_mean():  # the same network for both
        np.testing.assert_allclose(model.evaluate(_dataset("regressor", transform), verbose=0),
                                   model.evaluate(x, y, batch_size=4, verbose=0), rtol=1e-5)


@pytest.mark.parametrize("entry", ("fit", "evaluate"))
def test_arrays_without_targets_are_refused(entry):
    model = _pristine("regressor")
    x, _ = _data("regressor")
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"y is None; the loss is the head's negative log-likelihood of the "
                                         r"targets, so pass them: model\.fit\(x, y\)\."):
        _call(entry, model, x, None)
    _assert_untouched(model, before)


def test_keras_spellings_of_one_input_are_that_input():
    model = _make("regressor")
    x, y = _data("regressor")
    with tfp_bnn.sampling.posterior_mean():  # the same network for all
        expected = model.evaluate(x, y, verbose=0)
        for spelling in ([x], (x,), {model.input_names[0]: x}):
            assert model.evaluate(spelling, y, verbose=0) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"x has the keys \['features'\]; the model's one input is named"):
        model.fit({"features": x}, y, verbose=0)


# -- num_samples and level ------------------------------------------------------------


@pytest.mark.parametrize("entry", ("predict", "log_likelihoods"))
@pytest.mark.parametrize("num_samples", [0, -3, 2.5, 3.0, "10", True, None])
def test_num_samples_must_be_a_positive_integer(entry, num_samples):
    model = _pristine("regressor")
    x, y = _data("regressor")
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"num_samples must be a positive integer \(the number of weight draws\), got"):
        if entry == "predict":
            tfp_bnn.predict(model, x, num_samples=num_samples)
        else:
            tfp_bnn.log_likelihoods(model, x, y, num_samples=num_samples)
    _assert_untouched(model, before)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_level_must_lie_strictly_between_0_and_1(level):
    model = _pristine("regressor")
    x, _ = _data("regressor")
    with pytest.raises(ValueError, match=r"level must lie strictly between 0 and 1, got"):
        tfp_bnn.predict(model, x, num_samples=3, level=level)


@pytest.fixture(scope="module")
def predictor():
    """One untrained regressor for the tests that only compare its predictions with each other."""
    tf_keras.utils.set_random_seed(1234)
    return _make("regressor")


def test_numpy_integer_num_samples_is_accepted(predictor):
    model = predictor
    x, _ = _data("regressor")
    result = tfp_bnn.predict(model, x, num_samples=np.int64(4), seed=0)
    assert result.draw_means.shape == (4, N, 1)


@pytest.mark.parametrize("entry", ("predict", "log_likelihoods"))
@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "4", True])
def test_batch_size_must_be_a_positive_integer_or_none(entry, batch_size):
    model = _pristine("regressor")
    x, y = _data("regressor")
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer \(inputs per chunk\) or None, got"):
        _call(entry, model, x, y, batch_size=batch_size)


@pytest.mark.parametrize("seed", [1.7, "0", True, [1, 2], -1, 2**62])
def test_seed_must_be_an_integer_or_none(seed, predictor):
    model = predictor
    x, _ = _data("regressor")
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*62\) \(or None for fresh draws\), got"):
        tfp_bnn.predict(model, x, num_samples=3, seed=seed)
    # NumPy and scalar-tensor integers are integers.
    expected = tfp_bnn.predict(model, x, num_samples=3, seed=5).mean
    for seed in (np.int32(5), tf.constant(5)):
        np.testing.assert_array_equal(tfp_bnn.predict(model, x, num_samples=3, seed=seed).mean, expected)


@pytest.fixture(scope="module")
def ensemble():
    tf_keras.utils.set_random_seed(1234)
    return tfp_bnn.make_regressor((NUM_FEATURES,), hidden_units=(4,), inference="ensemble", num_members=4)


@pytest.mark.parametrize("entry", ("predict", "log_likelihoods", "export"))
def test_an_ensemble_needs_a_multiple_of_its_members_up_front(entry, tmp_path, ensemble):
    model = ensemble
    x, y = _data("regressor")
    message = (r"An ensemble of 4 members needs num_samples to be a multiple of 4 \(draw t is member t mod 4\), "
               r"got 10; e\.g\. num_samples=8\.")
    with pytest.raises(ValueError, match=message):
        if entry == "predict":
            tfp_bnn.predict(model, x, num_samples=10)
        elif entry == "log_likelihoods":
            tfp_bnn.log_likelihoods(model, x, y, num_samples=10)
        else:
            tfp_bnn.serving.export_for_serving(model, tmp_path / "ensemble", num_samples=10)
    assert not (tmp_path / "ensemble").exists()
    assert tfp_bnn.predict(model, x, num_samples=8, seed=0).draw_means.shape == (8, N, 1)


@pytest.mark.parametrize("batching", ["batched", "unbatched", "with_targets"])
def test_predict_takes_a_dataset_of_inputs(batching, predictor):
    model = predictor
    x, y = _data("regressor")
    dataset = {
        "batched": tf.data.Dataset.from_tensor_slices(x).batch(5),
        "unbatched": tf.data.Dataset.from_tensor_slices(x),
        "with_targets": tf.data.Dataset.from_tensor_slices((x, y)).batch(5),
    }[batching]
    expected = tfp_bnn.predict(model, x, num_samples=4, seed=3)
    result = tfp_bnn.predict(model, dataset, num_samples=4, seed=3)
    np.testing.assert_array_equal(result.draw_means, expected.draw_means)
    np.testing.assert_array_equal(result.lower, expected.lower)
    with pytest.raises(ValueError, match=r"The dataset is empty; pass at least one example"):
        tfp_bnn.predict(model, dataset.take(0), num_samples=4)


# -- targets of shape (N,) against a head of one output: aligned, never broadcast ---------


def _normal_dist(num=N):
    head = heads.NormalHead(1)
    rng = np.random.default_rng(1)
    params = rng.normal(size=(num, 2)).astype(np.float32)
    dist = head(tf.constant(params))
    loc = params[:, 0].astype(np.float64)
    scale = 1e-3 + np.log1p(np.exp(params[:, 1].astype(np.float64)))
    return dist, loc, scale


def test_align_target_reshapes_n_to_n_by_1_and_log_prob_is_per_example():
    dist, loc, scale = _normal_dist()
    y = np.linspace(-2.0, 2.0, N).astype(np.float32)

    aligned = heads.align_target(y, dist)
    assert aligned.shape == (N, 1)
    log_prob = dist.log_prob(aligned).numpy()
    assert log_prob.shape == (N,)
    by_hand = dist.log_prob(y.reshape(N, 1)).numpy()
    np.testing.assert_array_equal(log_prob, by_hand)
    np.testing.assert_allclose(log_prob, stats.norm.logpdf(y, loc, scale), rtol=1e-5, atol=1e-5)

    # The head's distribution takes the raw (N,) too (a custom loop's -dist.log_prob(y)): TFP broadcast
    # it against (N, 1) to (N, N) and summed every target's log-density under each example's distribution.
    np.testing.assert_array_equal(dist.log_prob(y).numpy(), log_prob)
    wrong = stats.norm.logpdf(y[np.newaxis, :], loc[:, np.newaxis], scale[:, np.newaxis]).sum(axis=1)
    assert not np.allclose(wrong, log_prob)

    # And back: (N, 1) labels against a Categorical head's (N,).
    logits = tf.constant(np.random.default_rng(2).normal(size=(N, 3)).astype(np.float32))
    categorical = heads.CategoricalHead(3)(logits)
    labels = np.arange(N) % 3
    aligned = heads.align_target(labels[:, None], categorical)
    assert aligned.shape == (N,) and aligned.dtype == categorical.dtype
    expected = special.log_softmax(logits.numpy().astype(np.float64), axis=1)[np.arange(N), labels]
    np.testing.assert_allclose(categorical.log_prob(aligned).numpy(), expected, rtol=1e-5)


def test_negative_log_likelihood_of_n_shaped_target_is_per_example():
    dist, loc, scale = _normal_dist()
    y = np.linspace(-2.0, 2.0, N).astype(np.float32)
    loss = heads.NegativeLogLikelihood()
    per_example = loss.call(tf.constant(y), dist).numpy()
    assert per_example.shape == (N,)
    expected = -stats.norm.logpdf(y, loc, scale)
    np.testing.assert_allclose(per_example, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.call(tf.constant(y[:, None]), dist).numpy(), per_example, rtol=0, atol=0)
    # The reduced Keras loss is the mean of the per-example values.
    np.testing.assert_allclose(float(loss(tf.constant(y), dist)), expected.mean(), rtol=1e-5)


def test_evaluate_gives_the_same_nll_for_n_and_n_by_1_targets():
    # No Bayesian layers: evaluation is deterministic and must match a hand computation.
    model = tfp_bnn.make_regressor((NUM_FEATURES,), regime="probabilistic", hidden_units=(4,))
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    x, y = _data("regressor")
    flat = model.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    column = model.evaluate(x, y[:, None], batch_size=N, verbose=0, return_dict=True)
    dist = model(x)
    mean, stddev = dist.mean().numpy()[:, 0], dist.stddev().numpy()[:, 0]
    expected = -np.mean(stats.norm.logpdf(y, mean, stddev))
    np.testing.assert_allclose(flat["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(column["loss"], expected, rtol=1e-5)
    assert flat["kl"] == 0.0


@pytest.mark.parametrize(
    "head, target_shape, message",
    [
        (heads.NormalHead(1), (N, 2), r"Target of shape \(N, 2\) does not fit the model's output: the head predicts "
                                      r"targets of shape \(N, 1\)\. Reshape y to \(N, 1\)"),
        (heads.NormalHead(2), (N,), r"Target of shape \(N,\) .*targets of shape \(N, 2\)\. Reshape y to \(N, 2\)"),
        (heads.NormalHead(2), (N, 3), r"Target of shape \(N, 3\) .*Reshape y to \(N, 2\)"),
        (heads.NormalHead(1), (N, 1, 2), r"Target of shape \(N, 1, 2\) .*Reshape y to \(N, 1\)"),
        (heads.CategoricalHead(3), (N, 3), r"Target of shape \(N, 3\) .*targets of shape \(N,\)\. Reshape y to \(N,\)"),
        (heads.BernoulliHead(), (N, 2), r"Target of shape \(N, 2\) .*Reshape y to \(N, 1\)"),
    ],
)
def test_align_target_refuses_incompatible_shapes(head, target_shape, message):
    dist = head(tf.zeros([N, head.params_size]))
    with pytest.raises(ValueError, match=message):
        heads.align_target(np.zeros(target_shape, np.float32), dist)
    with pytest.raises(ValueError, match=message):
        heads.NegativeLogLikelihood()(np.zeros(target_shape, np.float32), dist)


def test_one_rule_aligns_targets_of_one_value_for_arrays_and_graph_shapes():
    # +1: add the trailing axis of 1, -1: drop it, 0: as it is; the same for NumPy and TensorShapes.
    # Whether the result fits is the caller's check: (N, 2, 1) loses its axis and (N, 2) is refused.
    cases = {(N,): 1, (N, 1): 0, (N, 1, 1): -1, (N, 2): 0, (N, 2, 1): -1}
    assert {shape: validation.target_axis_change(shape, (N, 1)) for shape in cases} == cases
    assert validation.target_axis_change(tf.TensorShape([None]), tf.TensorShape([None, 1])) == 1
    # An axis of unknown length is not taken for one of size 1.
    assert validation.target_axis_change(tf.TensorShape([None, None]), (None,)) == 0
    assert validation.target_axis_change(tf.TensorShape(None), (N, 1)) == 0
    # Applied alike to arrays (check_targets) and tensors (align_target).
    assert validation.align_target_axis(np.zeros(N), (N, 1)).shape == (N, 1)
    assert validation.align_target_axis(tf.zeros([N, 1, 1]), (N, 1)).shape == (N, 1)
    assert validation.align_target_axis(np.zeros((N, 2)), (N, 1)).shape == (N, 2)  # for the caller to refuse


def test_shapes_in_messages_are_spelt_one_way():
    spelt = {(): "(N,)", (3,): "(N, 3)", (5, 1): "(N, 5, 1)", (None, 3): "(N, None, 3)"}
    assert {shape: validation.shape_text(shape) for shape in spelt} == spelt
    assert validation.shape_text(tf.TensorShape([None, 1]), unknown="L") == "(N, L, 1)"
    # A model of scalar inputs: the message said "inputs of shape (N, )".
    with pytest.raises(ValueError, match=r"takes inputs of shape \(N,\): an array of shape \(\) per example"):
        validation.check_inputs(np.zeros((N, 2)), input_shape=())


def test_draws_for_members_offers_the_nearest_multiple():
    assert [validation.draws_for_members(n, 5) for n in (1, 3, 5, 7, 8, 10, 12, 13)] == [5, 5, 5, 5, 10, 10, 10, 15]
    assert validation.draws_for_members(7, 1) == 7


# -- builders -------------------------------------------------------------------------


@pytest.mark.parametrize("regime", ["bayesian", "bayesian_probabilistic"])
@pytest.mark.parametrize("train_size", [None, 0])
def test_bayesian_regime_needs_train_size(regime, train_size):
    message = rf"regime='{regime}' needs train_size, the number of training examples N: the KL .*scaled by 1/N"
    with pytest.raises(ValueError, match=message):
        tfp_bnn.make_regressor((3,), regime=regime, train_size=train_size)
    with pytest.raises(ValueError, match=message):
        tfp_bnn.make_classifier((3,), 2, regime=regime, train_size=train_size)


def test_non_bayesian_regimes_need_no_train_size():
    model = tfp_bnn.make_regressor((3,), regime="probabilistic", hidden_units=(4,))
    assert not any(isinstance(layer, tfp_bnn.BayesianDense) for layer in model.layers)
    assert model.losses == []


@pytest.mark.parametrize("make, message", [
    (lambda: data.gap_regression(2.5), r"num_examples must be a positive integer, got 2\.5\."),
    (lambda: data.cubic_regression(5.0), r"num_examples must be a positive integer, got 5\.0\."),
    (lambda: tfp_bnn.BayesianDense(3, kl_weight=None),
     r"kl_weight must be a finite number >= 0 \(1 / training-set size\), got None\."),
    (lambda: tfp_bnn.BayesianDense(3, kl_weight=-0.1), r"kl_weight must be a finite number >= 0"),
    (lambda: tfp_bnn.BayesianDense(3, kl_weight=float("inf")), r"kl_weight must be a finite number >= 0"),
    (lambda: tfp_bnn.BayesianDense(0), r"units must be a positive integer, got 0\."),
    (lambda: tfp_bnn.BayesianConv2D(0, 3), r"filters must be a positive integer, got 0\."),
    (lambda: tfp_bnn.BayesianConv2D(4, 3, strides=2, dilation_rate=2),
     r"strides \(2, 2\) > 1 and dilation_rate \(2, 2\) > 1 cannot go together"),
    (lambda: tfp_bnn.StudentTHead(scale_floor=-1.0), r"scale_floor must be >= 0, got -1\.0\."),
    (lambda: tfp_bnn.make_regressor((3,), train_size=10, input_mean=np.zeros(2)),
     r"input_mean has shape \(2,\) but the inputs have shape \(3,\); pass one value per feature "
     r"\(e\.g\. x\.mean\(axis=0\)\) or a scalar\."),
    (lambda: tfp_bnn.make_classifier((3,), 2, train_size=10, input_std=np.ones((3, 1))),
     r"input_std has shape \(3, 1\) but the inputs have shape \(3,\)"),
    (lambda: tfp_bnn.make_regressor((3,), train_size=10, hidden_units=16),
     r"hidden_units must be a sequence of positive widths, e\.g\. \(50,\) or \(50, 50\), got 16\."),
    (lambda: tfp_bnn.make_regressor((3,), train_size=10, hidden_units=(16, 0)), r"hidden_units must be a sequence"),
    # float32 predictions of 1234567 +- 0.3: the draws collapsed onto one value and their float32 mean
    # drifted by 0.875, reported as an epistemic std of 0.875.
    (lambda: tfp_bnn.make_regressor((3,), train_size=10, target_mean=1234567.0, target_std=0.3),
     r"target_loc 1234567\.0 is 4\.1e\+06 times target_scale 0\.3: float32 predictions in these units cannot "
     r"resolve the targets' spread\. Subtract a constant from the targets first"),
    (lambda: tfp_bnn.StudentTHead(2, target_loc=[0.0, -5e6], target_scale=[1.0, 2.0]), r"is 2\.5e\+06 times"),
    # The variances predict reports are float32 in target units: inf at 1e20, 0 at 1e-22.
    (lambda: tfp_bnn.make_regressor((1,), train_size=10, target_std=1e20),
     r"target_scale 1e\+20 is outside \[1e-15, 1e\+15\]: the predicted variances, its square times the network's, "
     r"would leave float32's range \(0 or inf\)\. Rescale the targets first"),
    (lambda: tfp_bnn.StudentTHead(2, target_scale=[1.0, 1e-22]), r"target_scale \[1\.0, 1e-22\] is outside"),
    (lambda: tfp_bnn.make_regressor((1,), train_size=10, input_std=[1e20]),
     r"input_std \[1e\+20\]: its square, the variance, is beyond float32's range; rescale the inputs\."),
    # A NaN mean made every prediction NaN; a NaN std was named a float32 overflow.
    (lambda: tfp_bnn.make_regressor((2,), train_size=10, input_mean=[0.0, np.nan]),
     r"input_mean \[0\.0, nan\] is not finite; compute it from data without NaN or inf\."),
    (lambda: tfp_bnn.make_regressor((2,), train_size=10, input_std=[1.0, np.nan]),
     r"input_std \[1\.0, nan\] must be finite and >= 0 for every feature"),
    (lambda: tfp_bnn.make_classifier((2,), 2, train_size=10, input_std=[1.0, -2.0]),
     r"input_std \[1\.0, -2\.0\] must be finite and >= 0"),
    # 2.5 members built 2; True built a one-member "ensemble" with no epistemic variance.
    (lambda: tfp_bnn.make_regressor((2,), inference="ensemble", num_members=2.5),
     r"num_members must be a positive integer, got 2\.5\."),
    (lambda: tfp_bnn.EnsembleDense(3, num_members=True), r"num_members must be a positive integer, got True\."),
    (lambda: tfp_bnn.BayesianDense(3, kernel_posterior=tfp.layers.default_mean_field_normal_fn()),
     r"kernel_posterior must be a tfp_bnn distribution factory \(MeanFieldNormal or FullCovarianceNormal from "
     r"tfp_bnn\.posteriors\), got <function .*; tfp\.layers' prior/posterior functions go with tfp\.layers' own"),
    (lambda: tfp_bnn.make_regressor((2,), regime="probabilistic", head=tfp_bnn.PointHead(1)),
     r"a PointHead has no noise, so a probabilistic regime would report no aleatoric uncertainty"),
    (lambda: tfp_bnn.BayesianConv2D(3, 3, kernel_prior="normal"),
     r"kernel_prior must be a tfp_bnn distribution factory \(NormalPrior, ScaleMixturePrior, TrainableNormalPrior or "
     r"GaussianPrior"),
])
def test_builder_and_data_arguments_of_the_wrong_kind_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_int_input_shape_is_one_axis_and_inputs_standardise_per_feature():
    model = tfp_bnn.make_regressor(3, train_size=10, input_mean=[1.0, 2.0, 3.0], input_std=2.0)
    assert model.input_shape == (None, 3)
    standardize = model.get_layer("standardize")
    np.testing.assert_allclose(standardize(np.array([[3.0, 2.0, 1.0]], np.float32)), [[1.0, 0.0, -1.0]])


def test_a_feature_constant_in_training_is_scaled_by_1_not_by_keras_floor():
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    x[:, 1] = 5.0
    model = tfp_bnn.make_regressor((3,), hidden_units=(4,), train_size=12, input_mean=x.mean(0), input_std=x.std(0))
    # Keras's floor of 1e-7 turned 6.0 in that column into 1e7 (a predicted mean of 3.5e6).
    standardized = model.get_layer("standardize")(np.array([[0.0, 6.0, 0.0]], np.float32)).numpy()
    assert standardized[0, 1] == pytest.approx(1.0)
    # Constant up to float32 rounding: a column of 0.1 has a float32 std of 1.5e-8.
    x[:, 1] = 0.1
    assert 0 < x.std(0)[1] < 1e-7
    model = tfp_bnn.make_regressor((3,), hidden_units=(4,), train_size=12, input_mean=x.mean(0), input_std=x.std(0))
    standardized = model.get_layer("standardize")(np.array([[0.0, 0.2, 0.0]], np.float32)).numpy()
    assert standardized[0, 1] == pytest.approx(0.1, rel=1e-5)


def _unknown_shape_targets(x, y):
    """A dataset whose targets have no static shape, as from tf.py_function in a map."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    return dataset.map(lambda a, b: (a, tf.py_function(lambda t: t, [b], tf.float32)))


def test_targets_of_unknown_static_shape_are_aligned_or_refused_when_they_arrive():
    x = np.random.default_rng(0).normal(size=(N, NUM_FEATURES)).astype(np.float32)
    y = x.sum(axis=1)
    model = _make("regressor")
    # (N,) targets against the (N, 1) head: log_prob broadcast them to (N, N), a silently wrong loss.
    with sampling.posterior_mean():
        unknown = model.evaluate(_unknown_shape_targets(x, y), verbose=0, return_dict=True)
        known = model.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), verbose=0, return_dict=True)
    assert unknown["nll"] == pytest.approx(known["nll"], rel=1e-6)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Target does not fit the model.{1,2}s output: the head "
                                                               r"predicts targets of shape \(N, 1\); reshape y"):
        model.fit(_unknown_shape_targets(x, np.stack([y, y], axis=1)), epochs=1, verbose=0)
    for after, previous in zip(model.get_weights(), before):
        np.testing.assert_array_equal(after, previous)


@pytest.mark.parametrize("kind, class_weight, message", [
    ("classifier", {0: 1.0, 1: 1.0}, r"class_weight has the keys \[0, 1\]; pass one weight for each class 0\.\.2"),
    ("classifier", {0: np.nan, 1: 1.0, 2: 1.0}, r"class_weight values must be finite and >= 0"),
    ("classifier", {0: -1.0, 1: 1.0, 2: 1.0}, r"class_weight values must be finite and >= 0"),
    ("classifier", {0: 0.0, 1: 0.0, 2: 0.0}, r"with at least one > 0"),
    ("regressor", {0: 1.0}, r"class_weight weighs the classes of a classifier; NormalHead is a regression head\. "
                            r"Pass sample_weight"),
])
def test_bad_class_weight_is_refused_before_anything_runs(kind, class_weight, message):
    model = _pristine(kind)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    x = np.random.default_rng(0).normal(size=(N, NUM_FEATURES)).astype(np.float32)
    y = np.arange(N) % 3 if kind == "classifier" else x.sum(axis=1)
    before = [w.copy() for w in model.get_weights()]
    # A NaN weight trained to a loss of -1e9; a missing class failed deep in TF's GatherV2.
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, class_weight=class_weight, epochs=1, verbose=0)
    for after, previous in zip(model.get_weights(), before):
        np.testing.assert_array_equal(after, previous)
    assert model.train_function is None


def test_unknown_regime():
    with pytest.raises(ValueError, match=r"Unknown regime 'bayes'; choose one of 'deterministic', 'probabilistic', "
                                         r"'bayesian', 'bayesian_probabilistic'"):
        tfp_bnn.make_regressor((3,), regime="bayes", train_size=10)
    with pytest.raises(ValueError, match=r"Unknown regime 'Bayesian'"):
        tfp_bnn.make_classifier((3,), 2, regime="Bayesian", train_size=10)


def test_unknown_estimator():
    message = (r"Unknown estimator 'dropout' for BayesianDense; choose one of 'variational', "
               r"'reparameterization', 'flipout', 'local_reparameterization'")
    with pytest.raises(ValueError, match=message):
        tfp_bnn.make_regressor((3,), train_size=10, estimator="dropout")
    with pytest.raises(ValueError, match=r"Unknown estimator 'local_reparameterization' for BayesianConv2D; "
                                         r"choose one of 'variational', 'reparameterization', 'flipout'"):
        tfp_bnn.BayesianConv2D(4, 3, estimator="local_reparameterization")


@pytest.mark.parametrize("estimator", ["flipout", "local_reparameterization"])
def test_full_covariance_posterior_refuses_per_example_estimators(estimator):
    message = (rf"The '{estimator}' estimator needs independent weights; use a MeanFieldNormal posterior, or "
               r"estimator='variational' for a full-covariance posterior")
    with pytest.raises(ValueError, match=message):
        tfp_bnn.make_regressor((3,), train_size=10, estimator=estimator,
                               kernel_posterior=tfp_bnn.FullCovarianceNormal())
    with pytest.raises(ValueError, match=message):
        tfp_bnn.BayesianDense(4, estimator=estimator, kernel_posterior=tfp_bnn.FullCovarianceNormal())


def test_full_covariance_posterior_works_with_the_variational_estimator():
    layer = tfp_bnn.BayesianDense(4, estimator="variational",
                                  kernel_posterior=tfp_bnn.FullCovarianceNormal(initial_scale=0.01))
    x, _ = _data("regressor")
    assert layer(x).shape == (N, 4)
    covariance = layer.posterior.distribution().covariance().numpy()
    size = NUM_FEATURES * 4 + 4
    np.testing.assert_allclose(covariance, 0.01**2 * np.eye(size), rtol=1e-3, atol=1e-9)


def test_point_regime_refuses_a_distribution_head():
    with pytest.raises(ValueError, match=r"regime='deterministic' uses a PointHead; pass head only for the "
                                         r"probabilistic regimes"):
        tfp_bnn.make_regressor((3,), regime="deterministic", head=heads.NormalHead(1))


# -- library bugs found while writing these tests (see the report) -----------------------


@pytest.mark.parametrize("kind, dtype", [("classifier", np.int64), ("regressor", np.float64)])
def test_log_likelihoods_accepts_integer_labels_and_float64_targets(kind, dtype):
    model = _make(kind)
    x, y = _data(kind)
    reference = tfp_bnn.log_likelihoods(model, x, y.astype(np.float32), num_samples=3, seed=0)
    np.testing.assert_array_equal(tfp_bnn.log_likelihoods(model, x, y.astype(dtype), num_samples=3, seed=0), reference)


def test_y_that_overflows_float32_is_refused_like_inf():
    model = _pristine("regressor")
    x, y = _data("regressor")
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"y contains inf at row 3, column 0"):
        model.fit(x, _set(y.astype(np.float64), 3, 1e39), epochs=1, verbose=0)
    _assert_untouched(model, before)


def test_a_nearly_constant_feature_is_never_scaled_below_its_std():
    # Unix times over one hour: std ~1,000 s, under 1e-6 of the mean, yet 29 distinct float32
    # values. Scaled by 1 they reached the network as +-1,800 (the CLI's test RMSE was 178 for
    # targets in [-1, 1] and noise 0.1); a column constant up to rounding still gets 1.
    t = 1.7e9 + np.random.default_rng(0).uniform(0, 3600, size=(200, 1))
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=200, input_mean=t.mean(0), input_std=t.std(0))
    standardized = model.get_layer("standardize")(t.astype(np.float32)).numpy()
    assert 0.9 < standardized.std() < 1.1 and np.abs(standardized).max() < 2.0
    np.testing.assert_allclose(cli._feature_scale(t), t.std(0), rtol=1e-12)
    np.testing.assert_allclose(cli._feature_scale(np.full((5, 1), 1.7e9)), [1.0])


@pytest.mark.parametrize("head", [
    lambda **k: heads.NormalHead(1, **k), lambda **k: heads.PointHead(1, **k), lambda **k: heads.StudentTHead(1, **k),
    lambda **k: heads.HomoscedasticNormalHead(1, **k), lambda **k: heads.PoissonHead(1, **k),
    lambda **k: heads.CategoricalHead(3, **k), lambda **k: heads.PointClassHead(3, **k),
    lambda **k: heads.BernoulliHead(**k),
])
def test_a_head_refuses_an_activity_regularizer(head):
    # It was applied twice (DistributionLambda's call returns the distribution and its tensor)
    # and left out of the head's config (gone after clone_model, to_json, a save and load).
    with pytest.raises(ValueError, match="activity_regularizer"):
        head(activity_regularizer=tf_keras.regularizers.L2(3.0))
    head(activity_regularizer=None)


def test_categorical_head_takes_units_as_every_other_head():
    assert heads.CategoricalHead(units=5).num_classes == 5
    assert heads.PointClassHead(units=4).params_size == 4
    assert heads.CategoricalHead(5, units=5).num_classes == 5
    assert heads.CategoricalHead().num_classes == 2
    with pytest.raises(ValueError, match="differ"):
        heads.CategoricalHead(3, units=5)
    head = heads.CategoricalHead(units=5)
    assert type(head).from_config(head.get_config()).num_classes == 5


def test_bernoulli_head_refuses_units_other_than_one():
    assert heads.BernoulliHead(units=1).units == 1
    with pytest.raises(ValueError, match="one binary label"):
        heads.BernoulliHead(units=3)


@pytest.mark.parametrize("per", ["element", "last_axis", "first_axis", "scalar"])
def test_make_regressor_standardizes_inputs_of_several_axes(per, tmp_path):
    x = np.random.RandomState(0).randn(40, 2, 3).astype("float32") * 3.0 + 1.0
    axes = {"element": 0, "last_axis": (0, 1), "first_axis": (0, 2), "scalar": None}[per]
    keep = per == "first_axis"
    mean, std = x.mean(axis=axes, keepdims=keep), x.std(axis=axes, keepdims=keep)
    if keep:
        mean, std = mean[0], std[0]  # (2, 1): one value per row
    model = tfp_bnn.make_regressor((2, 3), hidden_units=(4,), train_size=40, input_mean=mean, input_std=std)
    np.testing.assert_allclose(model.get_layer("standardize")(x).numpy(), (x - mean) / std, rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = tf_keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.get_layer("standardize")(x).numpy(), (x - mean) / std, rtol=1e-4, atol=1e-5)


def test_make_regressor_keeps_the_normalization_axis_of_1d_inputs():
    model = tfp_bnn.make_regressor((3,), hidden_units=(4,), train_size=10, input_mean=[1.0, 2.0, 3.0], input_std=2.0)
    assert model.get_layer("standardize").get_config()["axis"] == (-1,)


# -- train_size against the rows fit trains on ----------------------------------------


def _kl_weight_warnings(model, x, y=None, **kwargs):
    """The messages of fit's train_size warning (others, such as Keras's, ignored); no train step is traced."""
    return [message for message in warnings_before_training(model, x, y, **kwargs) if message.startswith("kl_weight")]


def _rows(n):
    x = np.random.default_rng(0).normal(size=(n, NUM_FEATURES)).astype(np.float32)
    return x, x[:, :1] + 0.1


def _regressor(train_size, **kwargs):
    return tfp_bnn.make_regressor((NUM_FEATURES,), hidden_units=(4,), train_size=train_size, **kwargs)


def test_fit_warns_when_the_kl_weight_is_for_another_number_of_rows():
    """Bug: train_size (kl_weight 1/N) was never compared with the rows fit trains on: train_size=50
    for 600 rows weighed every step's KL 12x too strongly, silently (numbers unchanged by the check)."""
    x, y = _rows(600)
    [message] = _kl_weight_warnings(_regressor(50), x, y, batch_size=100)
    assert "training set of 50 rows" in message and "fit trains on 600 rows" in message
    assert "12x too strongly" in message and "train_size=600" in message
    [message] = _kl_weight_warnings(_regressor(6000), x, y, batch_size=100)
    assert "10x too weakly" in message
    [message] = _kl_weight_warnings(_regressor(1000), x, y, batch_size=100, validation_split=0.75)
    assert "fit trains on 150 of the 600 rows (validation_split=0.75)" in message and "train_size=150" in message
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(100, drop_remainder=True)
    [message] = _kl_weight_warnings(_regressor(50), batches)
    assert "600 rows (6 batches of 100)" in message
    # Layers built by hand with the default kl_weight 1 (a training set of one row); a model rebuilt from its
    # config (as load_model rebuilds one).
    inputs = tf_keras.Input((NUM_FEATURES,))
    hand_built = tfp_bnn.BayesianModel(inputs, heads.NormalHead(1)(tfp_bnn.BayesianDense(2)(inputs)))
    [message] = _kl_weight_warnings(hand_built, x, y, batch_size=100)
    assert message.startswith("kl_weight 1 of the Bayesian layers") and "600x too strongly" in message
    loaded = tf_keras.models.clone_model(_regressor(50))
    assert len(_kl_weight_warnings(loaded, x, y, batch_size=100)) == 1


def test_fit_does_not_warn_within_a_factor_of_two_or_where_the_rows_are_not_known():
    x, y = _rows(601)
    for train_size, kwargs in (
        (601, {}),
        (601, {"validation_split": 0.2}),  # len(x) before the split, as often passed
        (601, {"validation_split": 0.5}),  # 300 rows: 601 / 300.5 is a factor of 2
        (480, {"validation_split": 0.2}),
        (601, {"validation_data": (x[:50], y[:50])}),
        (2 * 601, {}),  # a KL tempered by 1/2
    ):
        assert _kl_weight_warnings(_regressor(train_size), x, y, batch_size=100, **kwargs) == [], kwargs
    # No KL weight to read (MC dropout's is a plain L2; an ensemble has none), or a warm-up at 0.
    assert _kl_weight_warnings(_regressor(10, inference="mc_dropout"), x, y, batch_size=100) == []
    assert _kl_weight_warnings(_regressor(None, inference="ensemble", num_members=2), x, y, batch_size=100) == []
    warm_up = _regressor(10)
    for layer in warm_up.layers:
        if isinstance(layer, tfp_bnn.BayesianDense):
            layer.kl_weight = 0.0
    assert _kl_weight_warnings(warm_up, x, y, batch_size=100) == []
    # Data whose number of rows is not known without reading them.
    ragged_last_batch = tf.data.Dataset.from_tensor_slices((x, y)).batch(100)
    assert _kl_weight_warnings(_regressor(10), ragged_last_batch) == []
    repeated = tf.data.Dataset.from_tensor_slices((x, y)).batch(100, drop_remainder=True).repeat()
    assert _kl_weight_warnings(_regressor(10), repeated, steps_per_epoch=3) == []
    three_times = tf.data.Dataset.from_tensor_slices((x, y)).batch(100, drop_remainder=True).repeat(3)
    assert _kl_weight_warnings(_regressor(600), three_times) == []  # 600 rows, each seen 3 times an epoch


def test_fit_does_not_warn_of_the_kl_weight_of_frozen_layers_nor_of_a_shuffled_sample_per_epoch():
    x, y = _rows(600)
    # Transfer learning: a Bayesian body pretrained on 6000 rows, frozen, under a new deterministic head.
    inputs = tf_keras.Input((NUM_FEATURES,))
    body = tfp_bnn.BayesianDense(8, activation="relu", kl_weight=1 / 6000)
    body.trainable = False
    model = tfp_bnn.BayesianModel(inputs, heads.NormalHead(1)(tf_keras.layers.Dense(2)(body(inputs))))
    assert _kl_weight_warnings(model, x, y, batch_size=100) == []
    # 2 batches drawn afresh each epoch from the 600 rows (take after shuffle, as steps_per_epoch).
    sample = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(600).batch(100, drop_remainder=True).take(2)
    assert _kl_weight_warnings(_regressor(600), sample) == []
    # Still warned: a trainable layer, and a fixed subset taken before any shuffle.
    assert len(_kl_weight_warnings(_regressor(6000), x, y, batch_size=100)) == 1
    subset = tf.data.Dataset.from_tensor_slices((x, y)).take(200).shuffle(200).batch(100, drop_remainder=True)
    assert len(_kl_weight_warnings(_regressor(6000), subset)) == 1
