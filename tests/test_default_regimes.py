"""fit warns when the default model meets inputs or targets far from unit scale (it fits them badly, silently)."""

import numpy as np
import pytest
import tf_keras

import tfp_bnn
from stop_before_training import warnings_before_training


def _messages(model, x, y):
    """fit's "is not standardized" warnings (given before Keras trains, so no train step is traced)."""
    return [message for message in warnings_before_training(model, x, y) if "is not standardized" in message]


def _data(x_scale=1.0, x_offset=0.0, y_scale=1.0, y_offset=0.0):
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (200, 3))
    y = np.sin(z.sum(1)) + 0.3 * rng.normal(size=200)
    return (z * x_scale + x_offset).astype("float32"), (y * y_scale + y_offset).astype("float32")


@pytest.mark.parametrize("kind, kwargs", [
    ("x", {"x_offset": 5e4, "x_scale": 1e4}), ("x", {"x_scale": 100.0}),
    ("y", {"y_offset": 1e6, "y_scale": 1e4}), ("y", {"y_scale": 1e-4}), ("y", {"y_scale": 100.0}),
])
def test_fit_warns_of_unstandardized_data_the_default_model_fits_badly(kind, kwargs):
    x, y = _data(**kwargs)
    messages = _messages(tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x)), x, y)
    assert len(messages) == 1 and messages[0].startswith(f"{kind} is not standardized"), messages
    assert ("input_mean=x.mean(axis=0)" if kind == "x" else "target_mean=y.mean(axis=0)") in messages[0]


def test_fit_does_not_warn_of_unit_scale_or_standardized_data():
    x, y = _data()
    assert _messages(tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x)), x, y) == []
    x, y = _data(x_offset=5e4, x_scale=1e4, y_offset=1e6, y_scale=1e4)
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x), input_mean=x.mean(0),
                                   input_std=x.std(0), target_mean=float(y.mean()), target_std=float(y.std()))
    assert _messages(model, x, y) == []
    # A constant target, counts and a classifier's labels are not "unscaled".
    assert _messages(tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x)), _data()[0],
                     np.full(200, 3.0, "float32")) == []
    labels = np.arange(200) % 40
    assert _messages(tfp_bnn.make_classifier((3,), 40, hidden_units=(8,), train_size=200), _data()[0], labels) == []


def test_a_model_that_rescales_its_own_inputs_is_not_warned():
    x, y = _data(x_scale=1e4)
    inputs = tf_keras.Input((3,))
    hidden = tf_keras.layers.Rescaling(1e-4)(inputs)
    hidden = tfp_bnn.BayesianDense(8, activation="relu", kl_weight=1 / 200)(hidden)
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=1 / 200)(hidden)))
    assert _messages(model, x, y) == []


@pytest.fixture(scope="module")
def classifier():
    """One classifier for the cases below: each refusal comes before anything runs, and the advice gives
    the same labels ([0, 1] * 10) in each, so the train step is traced once."""
    tf_keras.utils.set_random_seed(1234)
    model = tfp_bnn.make_classifier((3,), 2, hidden_units=(4,), train_size=20)
    model.compile()
    return model


@pytest.mark.parametrize("labels", [np.array(["no", "yes"] * 10), ["no", "yes"] * 10, np.array([b"no", b"yes"] * 10, object)])
def test_text_labels_are_refused_with_advice_that_works(labels, classifier):
    x = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    model = classifier
    steps = int(model.optimizer.iterations)
    with pytest.raises(TypeError, match=r"return_inverse=True") as raised:
        model.fit(x, labels, epochs=1, verbose=0)
    assert "astype('float32')" not in str(raised.value)
    assert int(model.optimizer.iterations) == steps  # refused before a step
    classes, y = np.unique(labels, return_inverse=True)  # the advice, followed
    model.fit(x, y, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == steps + 1


@pytest.mark.parametrize("value", [3.0, 0.1, 0.0])
def test_a_constant_target_standardized_as_the_readme_does_builds_and_fits(value):
    y = np.full(100, value, "float32")
    x = np.random.default_rng(0).normal(size=(100, 2)).astype("float32")
    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=100,
                                   target_mean=float(y.mean()), target_std=float(y.std()))
    assert np.ravel(model.head.target_scale).tolist() == [1.0]
    model.compile()
    model.fit(x, y, epochs=1, verbose=0)
    result = tfp_bnn.predict(model, x[:3], num_samples=10, seed=0)
    assert np.all(np.isfinite(result.mean))


@pytest.mark.parametrize("shape", [(200,), (200, 1)])
def test_the_y_advice_followed_literally_silences_the_warning(shape):
    x, y = _data(y_offset=1e6, y_scale=1e4)
    y = y.reshape(shape)
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x),
                                   target_mean=y.mean(axis=0), target_std=y.std(axis=0))
    assert _messages(model, x, y) == []


def test_targets_of_several_columns_are_checked_per_column_and_the_advice_works():
    # A second column 1000x off: IndexError in the warning's f-string (target_loc of one value for two
    # units), and y.mean()/y.std() over all columns left the first column at a std of 0.002.
    x, _ = _data()
    y = np.stack([x.sum(1), 1000 * x[:, 0]], 1)
    messages = _messages(tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x), units=2), x, y)
    assert len(messages) == 1 and messages[0].startswith("y is not standardized: target 1 "), messages
    assert "target_mean=y.mean(axis=0), target_std=y.std(axis=0)" in messages[0]
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x), units=2,
                                   target_mean=y.mean(axis=0), target_std=y.std(axis=0))
    assert _messages(model, x, y) == []


def test_a_spread_too_small_for_its_offset_is_told_to_subtract_a_constant():
    # target_std=y.std() under 1e-6 of the mean is taken as a constant's (1); the warning then repeated
    # the advice the user had followed. Its own advice, followed, silences it.
    x, _ = _data()
    y = 1e5 + 0.05 * np.random.default_rng(1).normal(size=len(x))
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x), target_mean=y.mean(), target_std=y.std())
    messages = _messages(model, x, y)
    assert len(messages) == 1 and "Subtract a constant from the targets first" in messages[0], messages
    shifted = y - np.round(y.mean(axis=0))
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x),
                                   target_mean=shifted.mean(axis=0), target_std=shifted.std(axis=0))
    assert _messages(model, x, shifted) == []
