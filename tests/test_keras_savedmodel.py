"""Keras's TF SavedModel format: ``model.save("dir")`` (no extension) and ``tf_keras.models.load_model``."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A fitted regressor and the TF SavedModel folder it was saved to, shared by the module: the tests
    below only read both (each loads its own copy of the folder)."""
    tf_keras.utils.set_random_seed(1234)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x[:, 0]
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=64)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("savedmodel") / "model"
    model.save(str(path))  # a folder: tf_keras's TF SavedModel format
    return model, x, y, path


def test_a_savedmodel_folder_loads_predicts_and_trains(saved):
    # load_model failed: 'Unable to restore custom object of class "_LogMean"'.
    model, x, y, path = saved
    loaded = tf_keras.models.load_model(str(path))
    assert type(loaded) is tfp_bnn.BayesianModel
    np.testing.assert_array_equal(
        tfp_bnn.predict(loaded, x[:4], num_samples=10, seed=0).mean,
        tfp_bnn.predict(model, x[:4], num_samples=10, seed=0).mean,
    )
    assert set(loaded.fit(x, y, epochs=1, verbose=0).history) == {"loss", "nll", "kl"}


def test_a_loaded_savedmodel_has_the_weights_of_the_original(saved):
    # The kl_weight variable came back as a weight of each Bayesian layer: 6 arrays against 4.
    model, _, _, path = saved
    loaded = tf_keras.models.load_model(str(path))
    assert [w.name for w in loaded.weights] == [w.name for w in model.weights]
    loaded.set_weights(model.get_weights())
    layer = loaded.layers[1]
    layer.kl_weight = 0.5  # still the variable the loss reads
    np.testing.assert_allclose(float(loaded.losses[0]), 0.5 * float(layer.kl_divergence()), rtol=1e-6)


class _GuideTrainStep(tfp_bnn.BayesianModel):
    """train_step as Keras's guide "Customizing what happens in fit()" writes it."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return self.compute_metrics(x, y, y_pred, None)


def test_an_overridden_train_step_does_not_log_a_kl_of_zero():
    # The nll/kl trackers were in model.metrics: never updated by this train_step, they logged 0.0.
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    inputs = tf_keras.Input((3,))
    hidden = tfp_bnn.BayesianDense(2, kl_weight=1 / 64)(inputs)
    model = _GuideTrainStep(inputs, tfp_bnn.NormalHead(1)(hidden))
    model.compile(tf_keras.optimizers.SGD(0.01))
    history = model.fit(x, x[:, 0], epochs=1, verbose=0).history
    assert history.get("kl", [None])[0] != 0.0 and history.get("nll", [None])[0] != 0.0, history
    # BayesianModel's own steps still log them, in Keras's order.
    logs = model.evaluate(x, x[:, 0], verbose=0, return_dict=True)
    assert list(logs) == ["loss", "nll", "kl"] and logs["kl"] > 0
    assert model.metrics_names == ["loss", "nll", "kl"]
    np.testing.assert_allclose(model.evaluate(x, x[:, 0], verbose=0)[2], float(model.kl_divergence()), rtol=1e-6)


def test_get_metrics_result_holds_the_nll_and_kl_that_fit_and_evaluate_logged():
    # They were only in the steps' logs: model.get_metrics_result() (and compute_metrics) had loss and
    # the compiled metrics only.
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    model = tfp_bnn.make_regressor((3,), hidden_units=(4,), train_size=64)
    model.compile(tf_keras.optimizers.SGD(0.01), metrics=["mae"])
    history = model.fit(x, x[:, 0], epochs=1, verbose=0).history
    assert {name: float(value) for name, value in model.get_metrics_result().items()} == pytest.approx(
        {name: values[-1] for name, values in history.items()}, rel=1e-6)
    logs = model.evaluate(x, x[:, 0], verbose=0, return_dict=True)
    results = model.get_metrics_result()
    assert list(results) == list(logs) == ["loss", "mae", "nll", "kl"]
    assert {name: float(value) for name, value in results.items()} == pytest.approx(logs, rel=1e-6)
    computed = model.compute_metrics(x, tf.constant(x[:, :1]), model(x), None)
    assert float(computed["nll"]) == pytest.approx(logs["nll"], rel=1e-6)
    # The guide's train_step never updates them: still not logged, nor reported as 0.0.
    guide = _GuideTrainStep(model.inputs, model.outputs)
    guide.compile(tf_keras.optimizers.SGD(0.01))
    guide.fit(x, x[:, 0], epochs=1, verbose=0)
    assert list(guide.get_metrics_result()) == ["loss"]


def test_a_recompiled_model_reports_no_nll_and_kl_of_the_fit_before():
    # Fine-tuning recompiles with another optimizer: Keras's own metrics start afresh, while
    # get_metrics_result() still held the nll and kl of the earlier fit beside them.
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    model = tfp_bnn.make_regressor((3,), hidden_units=(4,), train_size=64)
    model.compile(tf_keras.optimizers.SGD(0.01))
    model.fit(x, x[:, 0], epochs=1, verbose=0)
    assert list(model.get_metrics_result()) == ["loss", "nll", "kl"]
    model.compile(tf_keras.optimizers.SGD(0.001))
    assert list(model.get_metrics_result()) == []
    history = model.fit(x, x[:, 0], epochs=1, verbose=0).history
    assert {name: float(value) for name, value in model.get_metrics_result().items()} == pytest.approx(
        {name: values[-1] for name, values in history.items()}, rel=1e-6)


def test_load_weights_of_a_savedmodel_folder_leaves_kl_weight_as_configured(saved):
    # A weight checkpoint never sets kl_weight (1 / N is configuration): load_weights of the folder's
    # variables had put the saved 1/64 into the variable the loss reads, while layer.kl_weight said 1/1000.
    model, _, _, path = saved
    other = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=1000)
    other.load_weights(str(path / "variables" / "variables"))
    for original, layer in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(original, layer)
    bayesian = [layer for layer in other.layers if isinstance(layer, tfp_bnn.BayesianDense)]
    assert bayesian
    for layer in bayesian:
        assert layer.kl_weight == 1 / 1000
        np.testing.assert_allclose(float(layer.kl_weight_variable.numpy()), 1 / 1000, rtol=1e-6)
