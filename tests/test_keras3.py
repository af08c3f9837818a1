"""Keras 3 objects (``tf.keras``, ``keras``) given to tfp_bnn: one TypeError that names the object and the fix.

In TensorFlow >= 2.16 ``tf.keras`` is Keras 3, while TFP's layers and tfp_bnn are tf-keras (Keras 2):
a reader of the articles who writes ``tf.keras.optimizers.Adam`` got "Could not interpret optimizer
identifier", a ``tf.keras.Input`` gave "'tuple' object has no attribute 'rank'", and a ``tf.keras``
layer inside a tf-keras model trained without its weights (with at most a warning about a Lambda layer).
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn

keras = pytest.importorskip("keras", reason="Keras 3 is not installed: no tf.keras objects to refuse")
if not keras.__version__.startswith("3."):
    pytest.skip(f"tf.keras is Keras {keras.__version__}, not Keras 3", allow_module_level=True)

_FIX = "TF_USE_LEGACY_KERAS=1"


def _data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 1)).astype("float32")
    return x, (2 * x + 0.1 * rng.normal(size=x.shape)).astype("float32")


def _model():
    return tfp_bnn.make_regressor((1,), hidden_units=(8,), train_size=64)


def _weights(model):
    return [w.copy() for w in model.get_weights()]


@pytest.mark.parametrize(
    "compile_kwargs, named, instead",
    [
        ({"optimizer": lambda: keras.optimizers.Adam(1e-2)}, "optimizers.Adam of Keras 3", "tf_keras.optimizers.Adam"),
        ({"metrics": lambda: [keras.metrics.MeanSquaredError()]}, "metrics.MeanSquaredError of Keras 3",
         "tf_keras.metrics.MeanSquaredError"),
        ({"weighted_metrics": lambda: {"normal_head": keras.metrics.MeanAbsoluteError()}},
         "metrics.MeanAbsoluteError of Keras 3", "tf_keras.metrics.MeanAbsoluteError"),
        ({"loss": lambda: keras.losses.MeanSquaredError()}, "losses.MeanSquaredError of Keras 3",
         "tf_keras.losses.MeanSquaredError"),
    ],
    ids=["optimizer", "metric", "weighted_metric", "loss"],
)
def test_compile_refuses_keras3_objects_naming_the_tf_keras_one(compile_kwargs, named, instead):
    model = _model()
    with pytest.raises(TypeError, match="Keras 3") as error:
        model.compile(**{key: make() for key, make in compile_kwargs.items()})
    assert f"compile got {named}" in str(error.value)
    assert f"use {instead}" in str(error.value) and _FIX in str(error.value)


def test_a_keras3_class_without_a_tf_keras_counterpart_is_not_given_one():
    model = _model()
    with pytest.raises(TypeError, match=r"compile got losses.Dice of Keras 3 .* use one of tf_keras.losses "
                                        r"\(tf_keras has no Dice\)"):
        model.compile(loss=keras.losses.Dice())


def test_keras3_functions_pass_they_compute_on_tensors():
    x, y = _data()
    model = _model()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2), metrics=[keras.metrics.mean_absolute_error])
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(history.history["mean_absolute_error"]).all()


def test_a_keras3_loss_would_have_ignored_the_sample_weights():
    """Why a Keras 3 loss is refused although tf-keras runs it: it reduces over the batch itself, and
    tf-keras then scaled that mean by the mean weight."""
    x = np.arange(8, dtype="float32")[:, None]
    y = np.ones((8, 1), "float32")
    weights = np.array([1, 0, 0, 0, 0, 0, 0, 3], "float32")
    inputs = tf_keras.Input((1,))
    plain = tf_keras.Model(inputs, tf_keras.layers.Dense(1, kernel_initializer="ones")(inputs))
    exact = np.sum(weights * (x[:, 0] - 1) ** 2) / len(x)  # Keras's weighted mean: 13.625
    losses = {}
    for name, loss in (("tf_keras", tf_keras.losses.MeanSquaredError()), ("keras3", keras.losses.MeanSquaredError())):
        plain.compile(loss=loss, weighted_metrics=[])
        losses[name] = plain.evaluate(x, y, sample_weight=weights, batch_size=8, verbose=0)
    assert losses["tf_keras"] == pytest.approx(exact, rel=1e-6)
    assert losses["keras3"] == pytest.approx(np.mean((x[:, 0] - 1) ** 2) * weights.mean(), rel=1e-6)  # 5.75


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_fit_evaluate_and_predict_refuse_keras3_callbacks_before_any_step(method):
    x, y = _data()
    model = _model()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    before = _weights(model)
    args = (x,) if method == "predict" else (x, y)
    with pytest.raises(TypeError, match=f"{method} got callbacks.EarlyStopping of Keras 3") as error:
        getattr(model, method)(*args, callbacks=[keras.callbacks.EarlyStopping(monitor="loss")], verbose=0)
    assert "use tf_keras.callbacks.EarlyStopping" in str(error.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(model)))


@pytest.mark.parametrize(
    "layer",
    [
        lambda: tfp_bnn.BayesianDense(2),
        lambda: tfp_bnn.BayesianConv1D(2, 3),
        lambda: tfp_bnn.MCDropout(0.1),
        lambda: tfp_bnn.EnsembleDense(2, num_members=2),
        lambda: tfp_bnn.NormalHead(),
    ],
    ids=["BayesianDense", "BayesianConv1D", "MCDropout", "EnsembleDense", "NormalHead"],
)
def test_layers_called_on_a_keras3_tensor_say_so(layer):
    layer = layer()
    shape = (5, 2) if isinstance(layer, tfp_bnn.BayesianConv1D) else (2,)
    with pytest.raises(TypeError, match=f"{type(layer).__name__} got a Keras 3 tensor") as error:
        layer(keras.Input(shape))
    assert "use tf_keras.Input and tf_keras.layers" in str(error.value) and _FIX in str(error.value)


def test_bayesian_model_refuses_keras3_tensors():
    inputs = keras.Input((1,))
    with pytest.raises(TypeError, match="tfp_bnn.BayesianModel got a Keras 3 tensor"):
        tfp_bnn.BayesianModel(inputs, keras.layers.Dense(2)(inputs))


def _mixed_graph(dense):
    """tf-keras input -> ``dense`` (8 relu units) -> BayesianDense -> NormalHead."""
    inputs = tf_keras.Input((1,))
    hidden = dense(8, activation="relu", bias_initializer="zeros")(inputs)
    return inputs, tfp_bnn.NormalHead()(tfp_bnn.BayesianDense(2, kl_weight=1 / 64)(hidden))


def test_a_keras3_layer_in_a_tf_keras_graph_is_refused_because_its_weights_would_not_train():
    x, y = _data()
    # What a plain tf_keras.Model makes of it: tf-keras wraps the Keras 3 layer's ops, and fit
    # trains everything else while that layer's bias stays at its zeros (its kernel is a constant).
    inputs, outputs = _mixed_graph(keras.layers.Dense)
    plain = tf_keras.Model(inputs, outputs, name="plain")
    keras3_bias = next(v for v in tf.nest.flatten([n.call_args for l in plain.layers for n in l._inbound_nodes])
                       if type(v).__module__.startswith("keras."))
    plain.compile(optimizer=tf_keras.optimizers.Adam(1e-2), loss=tfp_bnn.NegativeLogLikelihood())
    trained_before = [w.numpy().copy() for w in plain.trainable_weights]
    plain.fit(x, y, epochs=3, verbose=0)
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(trained_before, plain.trainable_weights))
    assert np.array_equal(keras3_bias.numpy(), np.zeros(8, "float32"))
    assert not any(w.name.startswith(keras3_bias.path) for w in plain.weights)

    with pytest.raises(TypeError, match=f"Model 'plain' holds the Keras 3 weight '{keras3_bias.path}'") as error:
        tfp_bnn.predict(plain, x[:4], num_samples=10, seed=0)
    assert "fit would never train its weights" in str(error.value) and "use tf_keras.layers" in str(error.value)

    inputs, outputs = _mixed_graph(keras.layers.Dense)
    with pytest.raises(TypeError, match=r"Model '\w+' holds the Keras 3 weight '.*bias' .* in its layer 'tf.nn.bias_add"):
        tfp_bnn.BayesianModel(inputs, outputs)

    # The same graph of tf_keras layers builds, and fit trains the plain layer too.
    model = tfp_bnn.BayesianModel(*_mixed_graph(tf_keras.layers.Dense))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    before = model.layers[1].get_weights()
    model.fit(x, y, epochs=3, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.layers[1].get_weights()))


def test_functions_of_a_model_refuse_a_keras3_model():
    x, _ = _data()
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs), name="k3")
    for call, where in (
        (lambda: tfp_bnn.predict(model, x, num_samples=10), "predict"),
        (lambda: tfp_bnn.log_likelihoods(model, x, x, num_samples=10), "log_likelihoods"),
        (lambda: tfp_bnn.posterior_as_prior(model, train_size=10), "posterior_as_prior"),
        (lambda: tfp_bnn.serving.export_for_serving(model, "unused_export_dir"), "export_for_serving"),
    ):
        with pytest.raises(TypeError, match=f"{where} got the Keras 3 model 'k3'") as error:
            call()
        assert "use tf_keras.Model or tf_keras.Sequential" in str(error.value)


def test_following_the_advice_tf_keras_through_tf_use_legacy_keras_trains_and_predicts():
    """With TF_USE_LEGACY_KERAS=1, code written against tf.keras (the articles' spelling) is tf-keras code."""
    script = textwrap.dedent("""
        import os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import numpy as np, tensorflow as tf
        import tfp_bnn
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (256, 1)).astype("float32")
        y = (2 * x + 0.1 * rng.normal(size=x.shape)).astype("float32")
        inputs = tf.keras.Input((1,))
        hidden = tf.keras.layers.Dense(16, activation="relu")(inputs)
        model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead()(tfp_bnn.BayesianDense(2, kl_weight=1 / 256)(hidden)))
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), metrics=[tf.keras.metrics.MeanSquaredError()])
        tf.keras.utils.set_random_seed(0)
        history = model.fit(x, y, epochs=60, batch_size=32, verbose=0,
                            callbacks=[tf.keras.callbacks.EarlyStopping(monitor="loss", patience=100)])
        result = tfp_bnn.predict(model, [[0.5]], num_samples=200, seed=0)
        print(history.history["loss"][0], history.history["loss"][-1], float(result.mean[0, 0]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    first_loss, last_loss, mean = map(float, out.stdout.split())
    assert last_loss < first_loss - 1.0
    assert mean == pytest.approx(1.0, abs=0.15)


class _MyKeras3Loss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)


class _MyKeras3Metric(keras.metrics.Mean):
    pass


class _MyKeras3Callback(keras.callbacks.Callback):
    pass


@pytest.mark.parametrize("call, named", [
    (lambda model, x, y: model.compile(loss=_MyKeras3Loss()),
     "compile got _MyKeras3Loss, a subclass of losses.Loss of Keras 3"),
    (lambda model, x, y: model.compile(metrics=[_MyKeras3Metric()]),
     "compile got _MyKeras3Metric, a subclass of metrics.Mean of Keras 3"),
    (lambda model, x, y: model.fit(x, y, verbose=0, callbacks=[_MyKeras3Callback()]),
     "fit got _MyKeras3Callback, a subclass of callbacks.Callback of Keras 3"),
], ids=["loss", "metric", "callback"])
def test_user_subclasses_of_keras3_classes_are_refused_too(call, named):
    # Defined in the user's module, not in keras.*: the loss ran (its sample weights wrong), the metric and
    # the callback failed with "'Variable' object has no attribute '_distribute_strategy'" and
    # "'_MyKeras3Callback' object has no attribute '_implements_train_batch_hooks'".
    x, y = _data()
    model = _model()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    with pytest.raises(TypeError, match=named) as error:
        call(model, x, y)
    assert "use a subclass of tf_keras." in str(error.value) and _FIX in str(error.value)
