"""BayesianModel driven as Keras models are: compile's arguments, metrics, eager prediction,
Keras's other spellings of the data, and the checks that run before any work."""

import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import sampling

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 2)).astype(np.float32)
Y = (X[:, 0] - 0.5 * X[:, 1] + 0.1 * RNG.normal(size=96)).astype(np.float32)


def _regressor():
    tf_keras.utils.set_random_seed(0)
    return tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=len(X))


def test_compile_takes_keras_arguments_in_keras_order():
    model = _regressor()
    model.compile("adam", None, ["mae"], None, None, None, 4)  # optimizer, loss, metrics, ..., steps_per_execution
    assert int(model._steps_per_execution.numpy()) == 4
    logs = model.fit(X, Y, epochs=1, batch_size=32, verbose=0).history
    assert set(logs) == {"loss", "mae", "nll", "kl"}
    with sampling.posterior_mean():
        mean = model(X).mean().numpy()[:, 0]
        assert model.evaluate(X, Y, verbose=0, return_dict=True)["mae"] == pytest.approx(
            np.mean(np.abs(mean - Y)), rel=1e-5)


def test_bernoulli_head_works_with_keras_binary_metrics():
    labels = (X[:, 0] > 0).astype(np.float32)[:, None]
    inputs = tf_keras.Input((2,))
    model = tfp_bnn.BayesianModel(
        inputs, tfp_bnn.BernoulliHead()(tfp_bnn.BayesianDense(1, kl_weight=1 / len(X))(inputs)))
    model.compile(tf_keras.optimizers.Adam(0.05), metrics=["binary_accuracy", tf_keras.metrics.AUC(name="auc")])
    model.fit(X, labels, epochs=10, batch_size=32, verbose=0)
    with sampling.posterior_mean():
        logs = model.evaluate(X, labels, verbose=0, return_dict=True)
        p = model.predict(X, verbose=0)
    assert p.shape == (96, 1)  # P(y = 1), as a sigmoid output
    assert logs["binary_accuracy"] == pytest.approx(np.mean((p > 0.5) == labels), abs=1e-6)
    assert logs["binary_accuracy"] > 0.9 and logs["auc"] > 0.95


def test_point_classifier_as_a_tensor_is_its_softmax_so_keras_crossentropy_is_the_loss():
    labels = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.make_classifier((2,), 3, regime="deterministic", hidden_units=(8,))
    model.compile(tf_keras.optimizers.Adam(0.05), metrics=["sparse_categorical_crossentropy"])
    model.fit(X, labels, epochs=20, batch_size=32, verbose=0)
    logs = model.evaluate(X, labels, batch_size=96, verbose=0, return_dict=True)
    probs = model.predict(X, verbose=0)
    np.testing.assert_allclose(probs, tf.nn.softmax(model(X).logits).numpy(), rtol=1e-5, atol=1e-7)
    assert 0 < probs.min() and probs.max() < 1  # not a one-hot vote
    assert logs["sparse_categorical_crossentropy"] == pytest.approx(logs["nll"], rel=1e-4)
    # tfp_bnn.predict still counts each draw as a vote: a deterministic model gives one-hot shares.
    np.testing.assert_array_equal(tfp_bnn.predict(model, X[:5], num_samples=4).probabilities,
                                  np.eye(3, dtype=np.float32)[probs[:5].argmax(-1)])


def _batches():
    for start in range(0, len(X), 16):
        yield X[start:start + 16], Y[start:start + 16]


@pytest.mark.parametrize("data", [
    lambda: tf.data.Dataset.from_tensor_slices((X, Y)).filter(lambda x, y: True).batch(16),  # unknown cardinality
    _batches,
])
def test_data_of_unknown_length_trains_as_with_one_step_per_execution(data):
    # Keras refuses data whose size it cannot infer when steps_per_execution > 1 (tfp_bnn's default is 32).
    results = []
    for steps_per_execution in (None, 1):
        model = _regressor()
        model.compile(tf_keras.optimizers.Adam(0.01), steps_per_execution=steps_per_execution)
        history = model.fit(data(), epochs=1, verbose=0).history
        results.append((history["loss"], model.evaluate(data(), verbose=0), model.get_weights()))
        # Only for that call: arrays go back to running 32 steps per execution.
        assert int(model._steps_per_execution.numpy()) == (steps_per_execution or 32)
    (loss, evaluated, weights), (loss_1, evaluated_1, weights_1) = results
    assert loss == loss_1 and evaluated == evaluated_1
    for w, w_1 in zip(weights, weights_1):
        np.testing.assert_array_equal(w, w_1)


def test_validation_data_of_unknown_length_is_run_one_step_at_a_time():
    filtered = tf.data.Dataset.from_tensor_slices((X, Y)).filter(lambda x, y: True).batch(16)
    model = _regressor()
    model.compile(tf_keras.optimizers.Adam(0.01))
    logs = model.fit(X, Y, epochs=1, batch_size=16, validation_data=filtered, verbose=0).history
    with sampling.posterior_mean():
        expected = model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
        assert model.evaluate(filtered, verbose=0, return_dict=True)["nll"] == pytest.approx(expected["nll"], rel=1e-6)
    assert np.isfinite(logs["val_loss"][0]) and int(model._steps_per_execution.numpy()) == 32


def test_generators_feed_classifiers_their_n_by_1_labels_and_ensembles_their_batches():
    # Keras gives a generator's arrays the shape (None, None): (N, 1) labels were refused against a
    # head of (N,), and the ensemble reshaped with the unknown feature count.
    labels = (X[:, :1] > 0).astype(np.int64)  # (N, 1)
    classifier = tfp_bnn.make_classifier((2,), 2, hidden_units=(8,), train_size=len(X))
    classifier.compile(tf_keras.optimizers.Adam(0.05))
    batches = lambda: ((X[i:i + 16], labels[i:i + 16]) for i in range(0, len(X), 16))  # noqa: E731
    classifier.fit(batches(), epochs=1, verbose=0)
    with sampling.posterior_mean():
        assert classifier.evaluate(batches(), verbose=0) == pytest.approx(
            classifier.evaluate(X, labels, batch_size=16, verbose=0), rel=1e-6)
    ensemble = tfp_bnn.make_regressor((2,), hidden_units=(8,), inference="ensemble", num_members=3)
    ensemble.compile(tf_keras.optimizers.Adam(0.01))
    history = ensemble.fit(_batches(), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_predict_returns_arrays_also_when_run_eagerly():
    model = _regressor()
    model.compile(tf_keras.optimizers.Adam(1e-2), run_eagerly=True)
    with sampling.posterior_mean():
        for result in (model.predict(X[:3], verbose=0), model.predict_on_batch(X[:3])):
            assert isinstance(result, np.ndarray) and result.shape == (3, 1)
            np.testing.assert_allclose(result, model(X[:3]).mean().numpy(), rtol=1e-6)


def test_targets_as_a_one_element_list_or_a_dict_of_the_output_name():
    model = _regressor()
    model.compile(tf_keras.optimizers.Adam(1e-2))
    for y in ([Y], {model.output_names[0]: Y}):
        assert np.isfinite(model.fit(X, y, epochs=1, verbose=0).history["loss"]).all()
    with pytest.raises(ValueError, match=r"y has the keys \['price'\]; the model's one output is named"):
        model.fit(X, {"price": Y}, verbose=0)
    # A nested list is one row of targets, not Keras's [y]: one example of a 2-output head.
    two = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=1, units=2)
    two.compile(tf_keras.optimizers.Adam(1e-2))
    assert np.isfinite(two.fit(X[:1], [[1.0, 2.0]], verbose=0).history["loss"]).all()


def test_sample_weights_are_checked_in_validation_data_and_evaluate():
    model = _regressor()
    model.compile(tf_keras.optimizers.Adam(1e-2))
    weights = np.ones(len(X), np.float32)
    weights[5] = np.nan
    with pytest.raises(ValueError, match=r"sample_weight contains nan at row 5"):
        model.fit(X, Y, validation_data=(X, Y, weights), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight contains nan at row 5"):
        model.evaluate(X, Y, sample_weight=weights, verbose=0)
    halves = np.where(np.arange(len(X)) < 48, 1.0, 0.0).astype(np.float32)
    with sampling.posterior_mean():  # a weighted evaluate still runs, weighting as Keras does
        weighted = model.evaluate(X, Y, sample_weight=halves, verbose=0, return_dict=True)
        nll = -model(X).log_prob(Y[:, None]).numpy()
    assert weighted["nll"] == pytest.approx(np.sum(halves * nll) / len(X), rel=1e-4)
    logs = model.fit(X, Y, validation_data=(X, Y, halves), epochs=1, verbose=0).history
    assert np.isfinite(logs["val_loss"]).all()


def test_predict_takes_data_of_unknown_length():
    model = _regressor()
    model.compile(tf_keras.optimizers.Adam(0.01))
    filtered = tf.data.Dataset.from_tensor_slices(X).filter(lambda x: True).batch(16)
    with sampling.posterior_mean():
        expected = model.predict(X, verbose=0)
        for data in (filtered, (X[i:i + 16] for i in range(0, len(X), 16))):
            # Keras: "Could not infer the size of the data" at 32 steps per execution.
            np.testing.assert_allclose(model.predict(data, verbose=0), expected, rtol=1e-6)


def test_a_model_with_two_heads_trains_each_on_its_own_target():
    inputs = tf_keras.Input((2,))
    hidden = tf_keras.layers.Dense(16, activation="relu")(inputs)
    heads = [tfp_bnn.NormalHead(1, name=name)(tfp_bnn.BayesianDense(2, kl_weight=1 / len(X))(hidden))
             for name in ("first", "second")]
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.BayesianModel(inputs, heads)
    model.compile(tf_keras.optimizers.Adam(0.03))
    for targets in ({"first": Y, "second": Y + 10.0}, [Y, Y + 10.0]):
        model.fit(X, targets, epochs=200, batch_size=32, verbose=0)
        with sampling.posterior_mean():
            means = [m.mean() for m in model.predict(X, verbose=0)]
        # The second head had been fitted to the first target: a mean of 0 for targets around 10.
        assert means[0] == pytest.approx(Y.mean(), abs=0.5) and means[1] == pytest.approx(Y.mean() + 10, abs=0.5)
    with pytest.raises(ValueError, match=r"The model has 2 outputs \['first', 'second'\]: pass one target per output"):
        model.fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match=r"y has the keys \['first'\]; the model's outputs are named"):
        model.fit(X, {"first": Y}, verbose=0)
    with pytest.raises(TypeError, match="one output .one head.; this one has 2 .first, second."):
        tfp_bnn.predict(model, X)


def test_outputs_beside_a_head_and_per_output_sample_weights_train_as_in_keras():
    inputs = tf_keras.Input((2,))
    hidden = tfp_bnn.BayesianDense(16, activation="relu", kl_weight=1 / len(X))(inputs)
    auxiliary = tf_keras.layers.Dense(1, name="auxiliary")(hidden)  # not a head: only Keras checks its target
    head = tfp_bnn.NormalHead(1, name="head")(tf_keras.layers.Dense(2)(hidden))
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.BayesianModel(inputs, [auxiliary, head])
    model.compile(tf_keras.optimizers.Adam(0.03), loss={"auxiliary": "mse", "head": tfp_bnn.NegativeLogLikelihood()})
    ones = np.ones(len(X))
    logs = model.fit(X, {"auxiliary": Y + 5.0, "head": Y}, sample_weight={"auxiliary": ones, "head": ones},
                     epochs=40, batch_size=32, verbose=0).history
    assert np.isfinite(logs["loss"]).all()
    with sampling.posterior_mean():
        auxiliary_mean = model.predict(X, verbose=0)[0].mean()
    assert auxiliary_mean == pytest.approx(Y.mean() + 5.0, abs=0.5)
    # One weight array per output, as a list; a weight with a NaN is still refused.
    model.evaluate(X, [Y + 5.0, Y], sample_weight=[ones, ones], verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, [Y + 5.0, Y], sample_weight=[ones, np.where(ones > 0, np.nan, 1.0)], verbose=0)


def test_a_callback_that_anneals_kl_weight_changes_what_fit_minimises(tmp_path):
    model = _regressor()
    model.compile(tf_keras.optimizers.Adam(0.01))
    layers = [layer for layer in model.layers if isinstance(layer, tfp_bnn.BayesianDense)]
    weights = [0.0, 1 / len(X), 10 / len(X)]

    class WarmUp(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            for layer in layers:
                layer.kl_weight = weights[epoch]

    logs = model.fit(X, Y, epochs=3, batch_size=32, callbacks=[WarmUp()], verbose=0).history
    kl = sum(layer.kl_divergence() for layer in layers).numpy()
    # The weight was baked into the traced step: the history's kl stayed 0 after epoch 0.
    assert logs["kl"][0] == 0.0 and logs["kl"][2] == pytest.approx(10 / len(X) * kl, rel=0.05)
    assert logs["kl"][2] > 5 * logs["kl"][1] > 0
    np.testing.assert_allclose(np.add(logs["nll"], logs["kl"]), logs["loss"], rtol=1e-5)
    assert layers[0].get_config()["kl_weight"] == 10 / len(X)
    # Configuration, not a weight: no weight file (.h5, .keras or a TF checkpoint) changes it, so
    # weights from a model trained on another N do not bring their 1 / N along.
    assert layers[0].weights == layers[0].trainable_weights
    model.save_weights(tmp_path / "ckpt")
    layers[0].kl_weight = 0.5
    model.load_weights(tmp_path / "ckpt")
    assert layers[0].kl_weight == 0.5
    assert model.evaluate(X, Y, verbose=0, return_dict=True)["kl"] > 0.5 * layers[0].kl_divergence().numpy() * 0.9
    with pytest.raises(ValueError, match="kl_weight must be a finite number >= 0"):
        layers[0].kl_weight = -1.0


def _shown_in_progbar(text, name):
    """The last value of `name` the progress bar printed."""
    return float(re.findall(rf"(?<![a-z_]){name}: ([-0-9.e]+)", text)[-1])


@pytest.mark.parametrize("callbacks", [None, "own"])
def test_the_progress_bar_shows_the_logged_nll_and_kl(capsys, callbacks):
    # nll/kl left model.metrics: Keras's progress bar averaged their running means over the
    # epoch's batches again, and showed an nll that was not loss - kl (3.4245 for 3.3655).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 3)).astype("float32")
    y = x.sum(axis=1) + 0.1 * rng.normal(size=320).astype("float32")
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=320)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.05), steps_per_execution=1)
    own = [tf_keras.callbacks.ProgbarLogger(count_mode="steps")] if callbacks else None
    capsys.readouterr()
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=1, callbacks=own).history
    shown = capsys.readouterr().out
    for name in ("loss", "nll", "kl"):
        assert _shown_in_progbar(shown, name) == pytest.approx(history[name][0], abs=1e-4), (name, shown[-300:])
    logs = model.evaluate(x, y, batch_size=32, verbose=1, return_dict=True)
    shown = capsys.readouterr().out
    for name in ("loss", "nll", "kl"):
        assert _shown_in_progbar(shown, name) == pytest.approx(logs[name], abs=1e-4), (name, shown[-300:])


@pytest.fixture(scope="module")
def fitted_regressor():
    """A regressor fitted for one epoch, one per inference for the module: the tests below wrap it and
    compare the wrapper with the model itself at the same weights, so they can share one fit."""
    fitted = {}

    def get(inference):
        if inference not in fitted:
            tf_keras.utils.set_random_seed(0)
            model = tfp_bnn.make_regressor(
                (2,), hidden_units=(8,), train_size=len(X), inference=inference,
                **({"num_members": 2} if inference == "ensemble" else {}),
            )
            model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
            model.fit(X, Y, epochs=1, verbose=0)
            fitted[inference] = model
        return fitted[inference]

    return get


@pytest.mark.parametrize("inference", ["variational", "mc_dropout", "ensemble"])
def test_a_fitted_model_wrapped_in_an_end_to_end_model_predicts_and_exports_as_itself(
        tmp_path, inference, fitted_regressor):
    # Keras's end-to-end model: preprocessing layers, then the fitted model as a layer.
    model = fitted_regressor(inference)
    raw = tf_keras.Input((2,))
    end_to_end = tf_keras.Model(raw, model(tf_keras.layers.Rescaling(1.0)(raw)))
    wrapped = tf_keras.Sequential([tf_keras.Input((2,)), model])
    expected = tfp_bnn.predict(model, X[:5], num_samples=10, seed=0)
    for outer in (end_to_end, wrapped):
        result = tfp_bnn.predict(outer, X[:5], num_samples=10, seed=0)
        np.testing.assert_allclose(result.draw_means, expected.draw_means, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(result.lower, expected.lower, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            tfp_bnn.log_likelihoods(outer, X[:5], Y[:5], num_samples=10, seed=0),
            tfp_bnn.log_likelihoods(model, X[:5], Y[:5], num_samples=10, seed=0), rtol=1e-6, atol=1e-6)
    path = tfp_bnn.serving.export_for_serving(end_to_end, tmp_path / "m", num_samples=10)
    served = tf.saved_model.load(str(path)).signatures["seeded"](x=tf.constant(X[:5]), seed=tf.constant(0, tf.int64))
    np.testing.assert_allclose(served["mean"], expected.mean, rtol=1e-5, atol=1e-6)


def test_predict_follows_a_sequential_model_whose_head_was_replaced(tmp_path):
    # Transfer learning the Sequential way: pop the old head, add a new one, recompile, fit.
    model = tf_keras.Sequential([
        tf_keras.Input((2,)),
        tfp_bnn.BayesianDense(8, activation="relu", kl_weight=1 / len(X)),
        tfp_bnn.BayesianDense(2, kl_weight=1 / len(X)),
        tfp_bnn.NormalHead(1),
    ])
    model.compile(optimizer="adam", loss=tfp_bnn.NegativeLogLikelihood())
    before = tfp_bnn.predict(model, X[:4], num_samples=10, seed=0)
    tfp_bnn.serving.export_for_serving(model, tmp_path / "old", num_samples=10)
    model.pop()
    model.pop()
    model.add(tfp_bnn.BayesianDense(2, kl_weight=1 / len(X)))
    model.add(tfp_bnn.NormalHead(1, target_loc=100.0))  # the new head's predictions are near 100
    model.compile(optimizer="adam", loss=tfp_bnn.NegativeLogLikelihood())
    with sampling.posterior_mean():
        expected = model(X[:4]).mean().numpy()
    after = tfp_bnn.predict(model, X[:4], num_samples=10, seed=0)
    assert np.abs(before.mean).max() < 50
    np.testing.assert_allclose(after.mean, expected, atol=0.1)
    path = tfp_bnn.serving.export_for_serving(model, tmp_path / "new", num_samples=10)
    served = tf.saved_model.load(str(path)).signatures["seeded"](x=tf.constant(X[:4]), seed=tf.constant(0, tf.int64))
    np.testing.assert_allclose(served["mean"], after.mean, rtol=1e-5, atol=1e-5)
    model.pop()
    model.pop()
    model.add(tfp_bnn.BayesianDense(3, kl_weight=1 / len(X)))
    model.add(tfp_bnn.CategoricalHead(3))  # now a classifier
    result = tfp_bnn.predict(model, X[:4], num_samples=10, seed=0)
    assert result.probabilities.shape == (4, 3)


def test_a_cached_predict_does_not_walk_every_sublayer_again(monkeypatch):
    # The check that the model's layers are those the graphs were traced for walked every tracked
    # sublayer on each lookup (3 per call): ~1 ms a predict for a 60-layer network.
    model = tfp_bnn.make_regressor((2,), hidden_units=(8, 8), train_size=len(X))
    expected = tfp_bnn.predict(model, X[:4], num_samples=4, seed=0).mean
    walks, original = [], type(model)._flatten_layers

    def counted(self, recursive=True, include_self=True):
        if self is model and recursive:
            walks.append(1)
        return original(self, recursive=recursive, include_self=include_self)

    monkeypatch.setattr(type(model), "_flatten_layers", counted)
    np.testing.assert_array_equal(tfp_bnn.predict(model, X[:4], num_samples=4, seed=0).mean, expected)
    assert len(walks) <= 2  # _checked's own checks (TFP's variational layers), as before the cache check


@pytest.mark.parametrize("inference", ["variational", "ensemble"])
def test_a_bayesian_model_around_a_fitted_model_predicts_exports_and_fits_as_it(tmp_path, inference, fitted_regressor):
    # Keras's end-to-end model as a BayesianModel: was "A BayesianModel must end in a tfp_bnn head
    # (tfp_bnn.heads), got BayesianModel" at construction, while tf_keras.Model(raw, ...) worked.
    model = fitted_regressor(inference)
    raw = tf_keras.Input((2,))
    end_to_end = tfp_bnn.BayesianModel(raw, model(tf_keras.layers.Rescaling(1.0)(raw)))
    assert end_to_end.head is model.head and end_to_end.num_members == model.num_members
    expected = tfp_bnn.predict(model, X[:5], num_samples=10, seed=0)
    result = tfp_bnn.predict(end_to_end, X[:5], num_samples=10, seed=0)
    np.testing.assert_array_equal(result.draw_means, expected.draw_means)
    np.testing.assert_array_equal(result.lower, expected.lower)
    np.testing.assert_array_equal(
        tfp_bnn.log_likelihoods(end_to_end, X[:5], Y[:5], num_samples=10, seed=0),
        tfp_bnn.log_likelihoods(model, X[:5], Y[:5], num_samples=10, seed=0))
    path = tfp_bnn.serving.export_for_serving(end_to_end, tmp_path / "m", num_samples=10)
    served = tf.saved_model.load(str(path)).signatures["seeded"](x=tf.constant(X[:5]), seed=tf.constant(0, tf.int64))
    np.testing.assert_allclose(served["mean"], expected.mean, rtol=1e-6, atol=1e-6)
    end_to_end.compile(optimizer=tf_keras.optimizers.Adam(1e-2))  # the inner head's NLL by default
    history = end_to_end.fit(X, Y, epochs=1, verbose=0).history
    assert np.isfinite([history["loss"], history["nll"], history["kl"]]).all()
    with pytest.raises(ValueError, match=r"NormalHead predicts targets of shape \(N, 1\)"):
        end_to_end.fit(X, np.repeat(Y.reshape(-1, 1), 2, axis=1), epochs=1, verbose=0)
    with pytest.raises(TypeError, match="must end in a tfp_bnn head .tfp_bnn.heads., got Functional"):
        tfp_bnn.BayesianModel(raw, tf_keras.Model(raw, tf_keras.layers.Dense(2)(raw))(raw))


@pytest.mark.parametrize("names", [("nll",), ("kl",), ("nll", "kl")])
def test_a_metric_named_as_the_nll_or_kl_log_is_refused(names):
    # A metric named "nll" vanished behind the model's NLL log; named "nll" and "kl", Keras
    # logged the metrics in place of the model's NLL and KL (loss no longer nll + kl).
    def mae(y_true, y_pred):
        return tf_keras.metrics.mean_absolute_error(tf_keras.backend.reshape(y_true, [-1, 1]), y_pred)

    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=10)
    metrics = [tf_keras.metrics.MeanMetricWrapper(mae, name=name) for name in names]
    with pytest.raises(ValueError, match="another name"):
        model.compile(metrics=metrics)
    model.compile(metrics=[tf_keras.metrics.MeanMetricWrapper(mae, name="my_nll")])  # other names work


def test_a_bayesian_model_around_a_fitted_model_of_two_heads_checks_each_target_against_its_head():
    # Was "A BayesianModel must end in a tfp_bnn head (tfp_bnn.heads), got BayesianModel" at construction
    # (the wrapper was accepted for fitted models of one output only), while tf_keras.Model(raw, ...) worked.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2)).astype(np.float32)
    inputs = tf_keras.Input((2,))
    hidden = tfp_bnn.BayesianDense(4, activation="relu", kl_weight=1 / 32)(inputs)
    fitted = tfp_bnn.BayesianModel(inputs, [
        tfp_bnn.NormalHead(1, name="price")(tfp_bnn.BayesianDense(2, kl_weight=1 / 32)(hidden)),
        tfp_bnn.CategoricalHead(3, name="kind")(tfp_bnn.BayesianDense(3, kl_weight=1 / 32)(hidden)),
    ])
    raw = tf_keras.Input((2,))
    end_to_end = tfp_bnn.BayesianModel(raw, fitted(tf_keras.layers.Rescaling(1.0)(raw)))
    assert isinstance(end_to_end.head, tfp_bnn.CategoricalHead)
    end_to_end.compile("adam")
    history = end_to_end.fit(x, [x[:, 0], rng.integers(0, 3, 32)], epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    with pytest.raises(ValueError, match=r"y\[0\] = 7, but labels must be integers 0..2"):
        end_to_end.fit(x, [x[:, 0], np.full(32, 7)], epochs=1, verbose=0)
