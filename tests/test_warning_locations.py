"""tfp_bnn's warnings name the user's line: the call in the user's file, not a line of tfp_bnn or Keras.

Python prints a warning with the file and line it is attributed to, and its default filter
shows a warning once per such location: a warning attributed to a line of tfp_bnn or Keras
points the reader at library code and is shown at only one of the user's call sites.
"""

import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn


def _caught(call):
    """``call()``'s UserWarnings, and the line ``call`` returns: that of its own call into tfp_bnn or Keras."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = call()
    return [w for w in caught if issubclass(w.category, UserWarning)], line


def _assert_at(caught, line, match):
    ours = [w for w in caught if match in str(w.message)]
    assert ours, [str(w.message)[:80] for w in caught]
    assert [(w.filename, w.lineno) for w in ours] == [(__file__, line)] * len(ours)


def _line():
    return sys._getframe(1).f_lineno


def _ensemble_with_a_shared_head():
    return tfp_bnn.make_regressor((1,), inference="ensemble", num_members=3, hidden_units=(4,),
                                  head=tfp_bnn.HomoscedasticNormalHead())


def test_the_shared_head_warning_of_make_regressor_names_the_users_line():
    def call():
        tfp_bnn.make_regressor((1,), inference="ensemble", num_members=3, hidden_units=(4,), head=tfp_bnn.HomoscedasticNormalHead()); return _line()  # noqa: E702,E501
    _assert_at(*_caught(call), "ensemble members share the weights")


def test_the_shared_head_warning_of_a_loaded_or_cloned_model_names_the_users_line(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _ensemble_with_a_shared_head()
    model.save(tmp_path / "ensemble.keras")

    def load():
        tf_keras.models.load_model(tmp_path / "ensemble.keras"); return _line()  # noqa: E702
    _assert_at(*_caught(load), "ensemble members share the weights")

    def clone():
        tf_keras.models.clone_model(model); return _line()  # noqa: E702
    _assert_at(*_caught(clone), "ensemble members share the weights")


def test_the_warning_of_a_loaded_metric_named_nll_names_the_users_line(tmp_path):
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=10)
    # A file saved with such a metric (compile refuses it now): compiled past the check.
    tf_keras.Model.compile(model, optimizer="adam", loss=tfp_bnn.NegativeLogLikelihood(),
                           metrics=[tf_keras.metrics.MeanSquaredError(name="nll")])
    model.save(tmp_path / "nll.keras")

    def load():
        tf_keras.models.load_model(tmp_path / "nll.keras"); return _line()  # noqa: E702
    _assert_at(*_caught(load), "A metric named 'nll'")


def test_the_flat_kernel_warning_of_dense_variational_names_the_users_line():
    layer = tfp.layers.DenseVariational(
        50, make_posterior_fn=tfp_bnn.MeanFieldNormal(), make_prior_fn=tfp_bnn.NormalPrior(), use_bias=False)

    def call():
        layer(tf.ones([1, 200])); return _line()  # noqa: E702
    _assert_at(*_caught(call), "fan_in = fan_out")


@pytest.mark.parametrize("case", ["train_size", "x", "y"])
def test_the_warnings_of_fit_name_the_users_line(case):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 1)).astype("float32"), rng.normal(size=40).astype("float32")
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=4000 if case == "train_size" else 40)
    model.compile(optimizer="adam")
    x, y = (x * 1000, y) if case == "x" else (x, y * 1000) if case == "y" else (x, y)

    def call():
        model.fit(x, y, epochs=1, verbose=0); return _line()  # noqa: E702
    match = {"train_size": "kl_weight", "x": "x is not standardized", "y": "y is not standardized"}[case]
    _assert_at(*_caught(call), match)


def test_python_default_filter_shows_a_warning_at_each_call_site(tmp_path):
    # Attributed to a line of tfp_bnn, the same warning from a second call site was swallowed by
    # the default filter's once-per-location registry.
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=10)
    tf_keras.Model.compile(model, optimizer="adam", loss=tfp_bnn.NegativeLogLikelihood(),
                           metrics=[tf_keras.metrics.MeanSquaredError(name="nll")])
    model.save(tmp_path / "nll.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        tf_keras.models.load_model(tmp_path / "nll.keras")
        tf_keras.models.load_model(tmp_path / "nll.keras")
    assert len([w for w in caught if "A metric named 'nll'" in str(w.message)]) == 2


@pytest.mark.parametrize("layer_class", [tfp.layers.DenseFlipout, tfp.layers.Convolution1DReparameterization])
def test_tfp_layers_built_with_tfp_bnn_factories_do_not_warn_of_keras_deprecations(layer_class):
    # TFP passes its layer's add_variable, tf-keras's deprecated alias of add_weight, which warned
    # "`layer.add_variable` is deprecated" twice per posterior and once per trainable prior.
    layer = layer_class(
        2, *([3] if layer_class is tfp.layers.Convolution1DReparameterization else []),
        kernel_posterior_fn=tfp_bnn.MeanFieldNormal(), kernel_prior_fn=tfp_bnn.TrainableNormalPrior(),
        bias_posterior_fn=tfp_bnn.MeanFieldNormal())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(tf.ones([1, 5, 4]) if layer_class is tfp.layers.Convolution1DReparameterization else tf.ones([1, 4]))
    assert [str(w.message) for w in caught] == []
    assert len(layer.trainable_weights) == 5  # the same variables: kernel loc/scale, prior scale, bias loc/scale
