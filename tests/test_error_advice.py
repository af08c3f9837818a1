"""The fixes that error messages prescribe, applied as written, work."""

import re

import numpy as np
import pytest
import tensorflow as tf

import tfp_bnn


def _one_feature_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64,)).astype("float32")
    return x, 2 * x


def test_batching_a_one_feature_dataset_as_advised_works_after_arrays():
    x, y = _one_feature_data()
    model = tfp_bnn.make_regressor((1,), hidden_units=(8,), train_size=64)
    model.compile(optimizer="adam")
    model.fit(x[:, None], y, epochs=1, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match=r"Batch it: dataset\.batch\(32\)\.") as error:
        model.fit(dataset, epochs=1, verbose=0)
    advice = re.search(r"Batch it: (dataset\.batch\(\d+\))", str(error.value)).group(1)
    batched = eval(advice)  # the message's code, as written
    model.fit(batched, epochs=1, verbose=0)
    # And arrays again after it, as a user evaluates a test split.
    assert np.isfinite(model.evaluate(x[:, None], y, verbose=0)[0])
    assert np.isfinite(model.evaluate(batched, verbose=0)[0])


def test_inputs_of_unknown_rank_train():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, x.sum(1))).batch(16).map(
        lambda a, b: (tf.py_function(lambda t: t, [a], tf.float32), b))
    assert dataset.element_spec[0].shape.rank is None
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=64)
    model.compile(optimizer="adam")
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("yields_targets", [True, False])
def test_generator_hint_of_predict_gives_the_inputs(yields_targets):
    x = np.random.default_rng(0).normal(size=(64, 1)).astype("float32")

    def generator():
        for start in range(0, 64, 16):
            yield (x[start:start + 16], x[start:start + 16, 0]) if yields_targets else x[start:start + 16]

    model = tfp_bnn.make_regressor((1,), hidden_units=(8,), train_size=64)
    with pytest.raises(TypeError) as error:
        tfp_bnn.predict(model, generator(), num_samples=4)
    snippet = re.search(r"(np\.concatenate\(\[.*\]\))", str(error.value)).group(1)
    batches = generator()
    np.testing.assert_array_equal(eval(snippet), x)  # the message's code, as written


def test_own_head_without_target_units_is_not_told_to_take_them():
    with pytest.raises(ValueError) as error:
        tfp_bnn.make_regressor((3,), train_size=10, head=tfp_bnn.PoissonHead(1), target_mean=5.0, target_std=2.0)
    message = str(error.value)
    assert "PoissonHead" in message
    if "target_loc=" in message:  # advice to pass them to the head: it must take them
        tfp_bnn.PoissonHead(1, target_loc=5.0, target_scale=2.0)


@pytest.mark.parametrize("scale", [1e20, 1e-20, 3e16, 2e-17])
def test_target_scale_advice_brings_the_scale_into_range(scale):
    with pytest.raises(ValueError) as error:
        tfp_bnn.NormalHead(1, target_scale=scale)
    factor = float(re.search(r"e\.g\. y \* ([0-9.e+-]+)\)", str(error.value)).group(1))
    tfp_bnn.NormalHead(1, target_scale=scale * factor)  # targets rescaled as advised: accepted
