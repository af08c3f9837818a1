"""Models whose input is not a float feature matrix: ids and text keep their dtype."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn

N = 120


def _model(inp, features):
    h = tfp_bnn.BayesianDense(2, kl_weight=1 / N)(features)
    model = tfp_bnn.BayesianModel(inp, tfp_bnn.NormalHead(1)(h))
    model.compile(optimizer=tf_keras.optimizers.Adam(5e-2))
    return model


def test_large_integer_ids_are_not_rounded_through_float32():
    vocab = np.array([100000001, 100000002, 100000003, 100000004], np.int64)  # > 2**24
    ids = np.random.default_rng(0).choice(vocab, size=(N, 1))
    y = (ids - 100000000).astype("float32")
    inp = tf_keras.Input((1,), dtype="int64")
    model = _model(inp, tf_keras.layers.IntegerLookup(vocabulary=vocab, output_mode="one_hot")(inp))
    model.fit(ids, y, epochs=40, verbose=0)
    x = vocab[:, None]
    result = tfp_bnn.predict(model, x, num_samples=20, seed=0)
    # rounded to float32, every id was one out-of-vocabulary id: one prediction for all
    assert np.ptp(result.mean) > 1.0
    # draw t is the model called on the int64 ids with the t-th weights predict drew
    from tfp_bnn import prediction, sampling
    seed = sampling.stateless_seed(0)
    weights = prediction._cached_weights_fn(model, 20)(seed)
    for t in (0, 7, 19):
        with sampling.weight_draws(1, seed, weights=[w[t][None] for w in weights]):
            expected = model(tf.constant(x), training=False).mean().numpy()
        np.testing.assert_allclose(result.draw_means[t], expected, rtol=1e-6)
    assert tfp_bnn.log_likelihoods(model, x, x - 100000000, num_samples=5, seed=0).shape == (5, 4)


def test_string_inputs_fit_predict_and_export_is_refused_by_name(tmp_path):
    cats = np.array(["red", "green", "blue"])
    s = np.random.default_rng(0).choice(cats, size=(N, 1))
    y = (s == "red").astype("float32") * 2.0
    inp = tf_keras.Input((1,), dtype="string")
    model = _model(inp, tf_keras.layers.StringLookup(vocabulary=list(cats), output_mode="one_hot")(inp))
    model.fit(s, y, epochs=2, verbose=0)
    result = tfp_bnn.predict(model, s[:4], num_samples=8, seed=0)
    assert result.mean.shape == (4, 1) and (result.epistemic_variance > 0).all()
    same = tfp_bnn.predict(model, tf.data.Dataset.from_tensor_slices(s[:4]).batch(2), num_samples=8, seed=0)
    np.testing.assert_array_equal(result.mean, same.mean)
    with pytest.raises(TypeError, match="string tensor"):
        tfp_bnn.serving.export_for_serving(model, tmp_path / "m", num_samples=4)
    with pytest.raises(TypeError, match="pass the text itself"):
        tfp_bnn.predict(model, np.zeros((2, 1)), num_samples=4)


def test_export_of_a_model_with_a_lookup_table(tmp_path):
    vocab = np.array([3, 5, 7, 9], np.int64)
    ids = np.random.default_rng(0).choice(vocab, size=(N, 1))
    inp = tf_keras.Input((1,), dtype="int64")
    model = _model(inp, tf_keras.layers.IntegerLookup(vocabulary=vocab, output_mode="one_hot")(inp))
    model.fit(ids, ids.astype("float32"), epochs=2, verbose=0)
    path = tfp_bnn.serving.export_for_serving(model, tmp_path / "m", num_samples=8)
    seeded = tf.saved_model.load(str(path)).signatures["seeded"]
    out = seeded(x=tf.constant(ids[:5], tf.float32), seed=tf.constant(3, tf.int64))
    expected = tfp_bnn.predict(model, ids[:5], num_samples=8, seed=3)
    np.testing.assert_allclose(out["mean"].numpy(), expected.mean, rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="2\\*\\*24"):
        seeded(x=tf.constant([[100000001.0]]), seed=tf.constant(3, tf.int64))


def test_uint16_inputs_predict_as_their_float_values():
    # 16-bit pixels: TF has no Tile kernel for uint16, which stacking the T draws used
    from tfp_bnn.baselines import EnsembleDense

    x = np.random.default_rng(0).integers(0, 2**16, size=(N, 3)).astype("uint16")
    y = (x[:, :1] / 2**16).astype("float32")
    for layer in (tfp_bnn.BayesianDense(2, kl_weight=1 / N), EnsembleDense(2, num_members=2)):
        inp = tf_keras.Input((3,), dtype="uint16")
        model = _model_of(inp, layer(tf_keras.layers.Rescaling(1 / 2**16)(inp)))
        model.fit(x, y, epochs=1, verbose=0)
        result = tfp_bnn.predict(model, x[:4], num_samples=4, seed=0)
        same = tfp_bnn.predict(model, x[:4].astype("float32"), num_samples=4, seed=0)
        np.testing.assert_array_equal(result.mean, same.mean)
        assert tfp_bnn.log_likelihoods(model, x[:4], y[:4], num_samples=4, seed=0).shape == (4, 4)


def _model_of(inp, params):
    model = tfp_bnn.BayesianModel(inp, tfp_bnn.NormalHead(1)(params))
    model.compile(optimizer=tf_keras.optimizers.Adam(5e-2))
    return model


def test_served_ids_from_2_to_the_24_up_are_refused(tmp_path):
    # 2**24 + 1 arrives as float32 2**24: the served check cannot tell them apart
    vocab = np.array([3, 5], np.int64)
    inp = tf_keras.Input((1,), dtype="int64")
    model = _model(inp, tf_keras.layers.IntegerLookup(vocabulary=vocab, output_mode="one_hot")(inp))
    path = tfp_bnn.serving.export_for_serving(model, tmp_path / "m", num_samples=2)
    seeded = tf.saved_model.load(str(path)).signatures["seeded"]
    seed = tf.constant(3, tf.int64)
    assert seeded(x=tf.constant([[2.0**24 - 1]]), seed=seed)["mean"].shape == (1, 1)
    for x in (2**24, 2**24 + 1, -(2**24)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="2\\*\\*24"):
            seeded(x=tf.constant([[x]], tf.float32), seed=seed)
