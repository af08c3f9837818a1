"""The containers a Keras user feeds tfp_bnn: datasets (one-feature scalars, repeated), Keras's spellings
of one input, and a Sequential model without Input."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import sampling

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=96).astype(np.float32)  # one feature, as (N,): accepted as an array
Y = (2 * X1 + 0.1 * RNG.normal(size=96)).astype(np.float32)
X2 = RNG.normal(size=(96, 2)).astype(np.float32)  # two features, for the Sequential models
Y2 = (X2[:, 0] - 0.5 * X2[:, 1]).astype(np.float32)


def _model(**kwargs):
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.make_regressor((1,), hidden_units=(8,), **kwargs)
    model.compile(tf_keras.optimizers.Adam(0.01))
    return model


@pytest.fixture(scope="module")
def untrained():
    """One ``_model(train_size=96)`` for the tests that only predict with it (or are refused before
    anything runs): predict leaves the weights alone, and its graphs are traced once for them all."""
    return _model(train_size=96)


@pytest.mark.parametrize("kwargs", [{"train_size": 96}, {"inference": "ensemble", "num_members": 2}])
def test_a_batched_dataset_of_one_feature_scalars_trains_as_its_n_by_1_twin(kwargs):
    # The check took the batch (None,) for a single example of shape (1,): "Batch it".
    results = []
    for x in (X1, X1[:, None]):
        model = _model(**kwargs)
        data = tf.data.Dataset.from_tensor_slices((x, Y)).batch(16)
        context = sampling.posterior_mean() if "train_size" in kwargs else tf.name_scope("")
        with context:
            history = model.fit(data, epochs=2, verbose=0).history
            evaluated = model.evaluate(data, verbose=0)
        results.append((history["loss"], evaluated, model.get_weights()))
    (loss, evaluated, weights), (loss_2d, evaluated_2d, weights_2d) = results
    np.testing.assert_allclose(loss, loss_2d, rtol=1e-6)
    np.testing.assert_allclose(evaluated, evaluated_2d, rtol=1e-6)
    for w, w_2d in zip(weights, weights_2d):
        np.testing.assert_allclose(w, w_2d, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dataset", [
    lambda: tf.data.Dataset.from_tensor_slices(X1).batch(16),          # batches (None,)
    lambda: tf.data.Dataset.from_tensor_slices(X1).batch(20),          # a partial last batch
    lambda: tf.data.Dataset.from_tensor_slices(X1),                    # single scalars
    lambda: tf.data.Dataset.from_tensor_slices((X1, Y)).batch(16),     # (x, y) batches
])
def test_predict_reads_datasets_of_one_feature_scalars_as_the_array(dataset, untrained):
    model = untrained
    expected = tfp_bnn.predict(model, X1, num_samples=4, seed=0)
    result = tfp_bnn.predict(model, dataset(), num_samples=4, seed=0)
    np.testing.assert_array_equal(result.mean, expected.mean)
    np.testing.assert_array_equal(result.upper, expected.upper)


def test_single_scalar_examples_are_told_to_be_batched():
    model = _model(train_size=96)
    with pytest.raises(ValueError, match=r"yields single examples \(x of shape \(\)\).*dataset\.batch"):
        model.fit(tf.data.Dataset.from_tensor_slices((X1, Y)), verbose=0)


def test_predict_refuses_a_dataset_that_repeats_forever(untrained):
    # It read the dataset into memory until the machine ran out of it (Keras's predict refuses it).
    model = untrained
    endless = tf.data.Dataset.from_tensor_slices(X1[:, None]).batch(16).repeat()
    with pytest.raises(ValueError, match=r"repeats forever.*take\(num_batches\)"):
        tfp_bnn.predict(model, endless, num_samples=4, seed=0)
    with pytest.raises(ValueError, match=r"repeats forever"):
        tfp_bnn.log_likelihoods(model, endless, Y, num_samples=4, seed=0)


def test_predict_takes_the_spellings_of_one_input_that_fit_takes():
    # fit took {input_name: x} and [x]; predict said "x has dtype object ... encoding any text columns".
    model = _model(train_size=96)
    x = X1[:, None]
    model.fit({model.input_names[0]: x}, Y, epochs=1, verbose=0)
    expected = tfp_bnn.predict(model, x, num_samples=4, seed=0).mean
    np.testing.assert_array_equal(tfp_bnn.predict(model, {model.input_names[0]: x}, num_samples=4, seed=0).mean, expected)
    np.testing.assert_array_equal(tfp_bnn.predict(model, [x], num_samples=4, seed=0).mean, expected)
    np.testing.assert_array_equal(
        tfp_bnn.log_likelihoods(model, [x], Y, num_samples=4, seed=0),
        tfp_bnn.log_likelihoods(model, x, Y, num_samples=4, seed=0))
    with pytest.raises(ValueError, match="the model's one input is named"):
        tfp_bnn.predict(model, {"other": x}, num_samples=4)


def test_predict_names_generators_and_sequences_as_what_it_does_not_take(untrained):
    model = untrained

    class Batches(tf_keras.utils.Sequence):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return X1[i * 48:(i + 1) * 48, None]

    for data in (Batches(), (X1[i:i + 16, None] for i in range(0, 96, 16))):
        with pytest.raises(TypeError, match=r"take the inputs as an array or a tf\.data\.Dataset"):
            tfp_bnn.predict(model, data, num_samples=4)


def test_predict_reads_a_dataset_of_unknown_element_shape_by_its_elements(untrained):
    model = untrained
    expected = tfp_bnn.predict(model, X1, num_samples=4, seed=0).mean
    for rows in (lambda: (X1[i:i + 16, None] for i in range(0, 96, 16)), lambda: (X1[i:i + 1] for i in range(96))):
        data = tf.data.Dataset.from_generator(rows, output_signature=tf.TensorSpec(None, tf.float32))
        np.testing.assert_array_equal(tfp_bnn.predict(model, data, num_samples=4, seed=0).mean, expected)


def _sequential(with_input):
    return tf_keras.Sequential(([tf_keras.Input((2,))] if with_input else []) + [
        tfp_bnn.BayesianDense(8, activation="relu", kl_weight=1 / 96),
        tfp_bnn.BayesianDense(2, kl_weight=1 / 96),
        tfp_bnn.NormalHead(1),
    ])


@pytest.mark.parametrize("built_by", ["fit", "call"])
def test_a_sequential_built_on_its_first_batch_predicts_as_one_built_with_input(built_by):
    # Keras infers the input shape (32, 2) from the first batch; tfp_bnn.predict's graphs call
    # the model with an unknown batch size, and Keras's rebuild of the graph network ran the
    # Bayesian layers in a scratch graph: InaccessibleTensorError.
    tf_keras.utils.set_random_seed(0)
    model = _sequential(with_input=False)
    if built_by == "fit":
        model.compile(tf_keras.optimizers.Adam(0.01), loss=tfp_bnn.NegativeLogLikelihood())
        model.fit(X2, Y2, epochs=1, batch_size=32, verbose=0)
    else:
        model(X2[:32])
    reference = _sequential(with_input=True)
    reference.set_weights(model.get_weights())
    result = tfp_bnn.predict(model, X2[:5], num_samples=8, seed=3)
    expected = tfp_bnn.predict(reference, X2[:5], num_samples=8, seed=3)
    np.testing.assert_allclose(result.mean, expected.mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.epistemic_variance, expected.epistemic_variance, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(
        tfp_bnn.log_likelihoods(model, X2[:5], Y2[:5], num_samples=8, seed=3),
        tfp_bnn.log_likelihoods(reference, X2[:5], Y2[:5], num_samples=8, seed=3), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def image_model():
    """A model of (4, 3) inputs, untrained: one for the three spellings below (predict only)."""
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((4, 3))
    params = tfp_bnn.BayesianDense(2, kl_weight=0.01)(tf_keras.layers.Flatten()(inputs))
    return tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(params))


@pytest.mark.parametrize("as_list", [lambda ex: [ex], lambda ex: (ex,), lambda ex: [ex.tolist()]])
def test_a_list_holding_one_example_is_a_batch_of_one_not_a_wrapped_input(as_list, image_model):
    # [image] is one example, as np.asarray reads it; only [batch] is Keras's spelling of one input.
    model = image_model
    example = RNG.normal(size=(4, 3)).astype(np.float32)
    expected = tfp_bnn.predict(model, example[None], num_samples=4, seed=0).mean
    np.testing.assert_array_equal(tfp_bnn.predict(model, as_list(example), num_samples=4, seed=0).mean, expected)
    np.testing.assert_array_equal(tfp_bnn.predict(model, [example[None]], num_samples=4, seed=0).mean, expected)
