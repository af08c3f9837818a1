"""fit/evaluate on large inputs: a tensor x reaches Keras as given, and keeps every check."""

import functools
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfp_bnn import models, validation
from tfp_bnn.models import make_regressor


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_a_tensor_x_reaches_keras_as_given(method, monkeypatch):
    # The checks turned it into NumPy and Keras copied that into a new tensor: a (2e6, 50) float32
    # x added +802 MB to fit's peak (plain Keras +55 MB); now +70 MB.
    x = tf.constant(np.random.default_rng(0).standard_normal((64, 3), dtype=np.float32))
    y = np.zeros(64, np.float32)
    model = make_regressor((3,), hidden_units=(4,), train_size=64)
    model.compile()
    seen = []
    if method == "fit":  # arrays go to Keras's batching through _untuned_arrays
        untuned = models._untuned_arrays
        monkeypatch.setattr(models, "_untuned_arrays", lambda model, args: seen.append(args["x"]) or untuned(model, args))
    else:
        keras_evaluate = tf_keras.Model.evaluate

        @functools.wraps(keras_evaluate)  # BayesianModel binds its arguments by Keras's signature
        def recording(self, *args, **kwargs):
            seen.append(kwargs["x"])
            return keras_evaluate(self, *args, **kwargs)

        monkeypatch.setattr(tf_keras.Model, "evaluate", recording)
    getattr(model, method)(x, y, verbose=0)
    assert seen[0] is x


def test_the_finite_check_of_large_inputs_still_names_the_first_bad_value():
    # It reads min and max first (no N x D booleans, 10 MB here); a bad value still gets its row and column.
    x = np.random.default_rng(0).standard_normal((1_000_000, 10), dtype=np.float32)  # 40 MB
    validation.check_inputs(x, (10,))
    x[123, 4] = np.nan
    with pytest.raises(ValueError, match=r"x contains nan at row 123, column 4 \(1 non-finite values in all\)"):
        validation.check_inputs(x, (10,))
    x[123, 4] = -np.inf
    with pytest.raises(ValueError, match="x contains -inf at row 123"):
        validation.check_inputs(x, (10,))


def test_tensor_inputs_train_as_arrays_and_keep_checks():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 3)).astype(np.float32)
    y = rng.standard_normal(300).astype(np.float32)
    weights = []
    for given in (x, tf.constant(x)):
        tf_keras.utils.set_random_seed(0)
        model = make_regressor((3,), hidden_units=(8,), train_size=300)
        model.compile()
        history = model.fit(given, y, batch_size=32, epochs=2, verbose=0)
        weights.append(([w.numpy() for w in model.weights], history.history["loss"],
                        model.evaluate(given, y, verbose=0)))
    for a, b in zip(weights[0][0], weights[1][0]):
        np.testing.assert_array_equal(a, b)
    assert weights[0][1:] == weights[1][1:]
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        model.fit(tf.constant(x), y, sample_weight=-np.ones(300), verbose=0)
    with pytest.raises(ValueError, match="sample_weight has shape"):
        model.fit(tf.constant(x), y, sample_weight=np.ones(7), verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(tf.constant(100 * x), y, epochs=1, verbose=0)
    assert any("x is not standardized" in str(w.message) for w in caught)
    one = make_regressor((1,), hidden_units=(4,), train_size=300)  # (N,) for one feature: reshaped, not copied
    one.compile()
    one.fit(tf.constant(x[:, 0]), y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="x contains nan"):
        one.fit(tf.constant(np.full(300, np.nan, np.float32)), y, verbose=0)
