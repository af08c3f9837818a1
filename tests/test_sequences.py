"""Sequence and text models as Keras users build them: Bayesian layers in a recurrent cell,
a label per time step, Bidirectional wrappers and padding masks."""

import numpy as np
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import serving


@tf_keras.saving.register_keras_serializable("test_sequences")
class _BayesianLSTMCell(tf_keras.layers.Layer):
    """An LSTM cell whose four gates are one BayesianDense over ``[x_t, h_(t-1)]``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.state_size, self.output_size = units, [units, units], units
        self.gates = tfp_bnn.BayesianDense(4 * units, kl_weight=1 / 32, kernel_posterior=tfp_bnn.MeanFieldNormal(0.1))

    def call(self, inputs, states):
        h, c = states
        i, f, g, o = tf.split(self.gates(tf.concat([inputs, h], axis=-1)), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _padded_ids():
    ids = np.array([[3, 5, 2, 0, 0], [4, 1, 0, 0, 0], [6, 2, 7, 1, 3]])
    return ids, [ids[0, :3], ids[1, :2], ids[2]]


def test_a_padding_mask_passes_through_bayesian_dense_into_a_recurrent_layer():
    # Embedding(mask_zero=True) -> BayesianDense -> RNN: as after Keras's Dense, the RNN skips the
    # padded steps, so a padded sequence predicts what the unpadded one does. BayesianDense once
    # dropped the mask, and the padding changed every draw (by up to 0.049 here).
    inputs = tf_keras.Input((5,), dtype="int32")
    embedding = tf_keras.layers.Embedding(8, 3, mask_zero=True)
    projection = tfp_bnn.BayesianDense(3, kl_weight=0.01, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    rnn, dense, head = tf_keras.layers.RNN(_BayesianLSTMCell(4)), tf_keras.layers.Dense(2), tfp_bnn.NormalHead(1)
    model = tfp_bnn.BayesianModel(inputs, head(dense(rnn(projection(embedding(inputs))))))
    assert getattr(projection.output, "_keras_mask", None) is not None  # Keras Dense passes it on too
    ids, unpadded = _padded_ids()
    padded = tfp_bnn.predict(model, ids, num_samples=10, seed=0)
    assert padded.epistemic_stddev.min() > 1e-3
    for n, sequence in enumerate(unpadded):
        short_inputs = tf_keras.Input((len(sequence),), dtype="int32")
        short = tfp_bnn.BayesianModel(short_inputs, head(dense(rnn(projection(embedding(short_inputs))))))
        alone = tfp_bnn.predict(short, sequence[None], num_samples=10, seed=0)
        np.testing.assert_allclose(alone.draw_means[:, 0], padded.draw_means[:, n], atol=1e-6)


def test_a_bidirectional_bayesian_cell_with_a_label_per_step_predicts_serves_and_saves(tmp_path):
    # One KL per Bayesian layer (the forward and backward cells' gates and the output layer),
    # not one per time step; the served model and the reloaded .keras file give predict's numbers.
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 10, size=(32, 6))
    ids[rng.random((32, 6)) < 0.3] = 0
    labels = (ids % 2).astype(np.float32)
    inputs = tf_keras.Input((6,), dtype="int32")
    hidden = tf_keras.layers.Embedding(10, 4)(inputs)
    hidden = tf_keras.layers.Bidirectional(tf_keras.layers.RNN(_BayesianLSTMCell(5), return_sequences=True))(hidden)
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(tfp_bnn.BayesianDense(1, kl_weight=1 / 32)(hidden)))
    assert len(model.losses) == 3
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    history = model.fit(ids, labels, epochs=2, batch_size=16, verbose=0).history
    assert np.isfinite(history["loss"]).all() and len(model.losses) == 3
    result = tfp_bnn.predict(model, ids, num_samples=20, seed=3)
    assert result.probabilities.shape == (32, 6, 2) and result.mutual_information.min() > 0
    np.testing.assert_allclose(  # one chunk of 32 inputs (stacked draws) or chunks of 5 (a loop over draws)
        tfp_bnn.predict(model, ids, num_samples=20, seed=3, batch_size=5).probabilities,
        result.probabilities, atol=1e-6)
    scores = tfp_bnn.score(model, ids, labels, num_samples=20, seed=3)
    assert scores["accuracy"] == np.mean(result.probabilities.argmax(-1) == labels)
    path = serving.export_for_serving(model, tmp_path / "m", num_samples=20)
    served = tf.saved_model.load(str(path)).signatures["seeded"](
        x=tf.constant(ids, tf.float32), seed=tf.constant(3, tf.int64))
    np.testing.assert_allclose(served["probabilities"], result.probabilities, atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = tf_keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(tfp_bnn.predict(loaded, ids, num_samples=20, seed=3).probabilities,
                                  result.probabilities)


def _random_padded_ids(rng, n, steps, vocab):
    """Token ids ``(n, steps)`` of sequences of 2 to ``steps`` tokens, padded with 0."""
    ids = rng.integers(1, vocab, size=(n, steps))
    for row, length in enumerate(rng.integers(2, steps + 1, size=n)):
        ids[row, length:] = 0
    return ids


def _masked_tagger(steps, vocab):
    """Embedding(mask_zero=True) -> LSTM -> a binary label per step."""
    inputs = tf_keras.Input((steps,), dtype="int32")
    hidden = tf_keras.layers.LSTM(5, return_sequences=True)(tf_keras.layers.Embedding(vocab, 4, mask_zero=True)(inputs))
    return tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(tf_keras.layers.Dense(1)(hidden)))


def test_padding_mask_leaves_padded_steps_out_of_loss_and_score():
    # Embedding(mask_zero=True) before a per-step head: changing only the padded labels changes
    # nothing, and the loss is fit's with sample_weight=mask (was: padded steps counted).
    rng = np.random.default_rng(0)
    n, steps, vocab = 32, 6, 10
    ids = _random_padded_ids(rng, n, steps, vocab)
    y = (ids % 2 == 1).astype(np.float32)
    flipped = y.copy()
    flipped[ids == 0] = 1 - flipped[ids == 0]
    tf_keras.utils.set_random_seed(1)
    model = _masked_tagger(steps, vocab)
    model.compile()
    losses = [model.evaluate(ids, t, verbose=0)[0] for t in (y, flipped)]
    weighted = model.evaluate(ids, y, sample_weight=(ids != 0).astype(np.float32), verbose=0)[0]
    assert abs(losses[0] - losses[1]) < 1e-6 and abs(losses[0] - weighted) < 1e-6
    scores = [tfp_bnn.score(model, ids, t, num_samples=5, seed=0) for t in (y, flipped)]
    assert scores[0] == scores[1]
    ll = tfp_bnn.log_likelihoods(model, ids, y, num_samples=5, seed=0)
    p = tfp_bnn.predict(model, ids, num_samples=5, seed=0).draw_probabilities[..., 1]
    manual = (np.log(np.where(y[None] == 1, p, 1 - p)) * (ids != 0)[None]).sum(-1)
    np.testing.assert_allclose(ll, manual, atol=1e-4)


def test_per_step_metrics_count_each_step_with_its_weight_and_leave_padding_out():
    # Keras's metrics on a per-step head: per-step sample weights failed ("Can not squeeze
    # dim[1]") and a padding mask did not reach them. Accuracy is now per step: the weighted
    # mean of the steps' hits, padded steps out.
    rng = np.random.default_rng(0)
    n, steps, vocab = 40, 6, 10
    ids = _random_padded_ids(rng, n, steps, vocab)
    y = rng.integers(0, 2, size=(n, steps)).astype(np.float32)
    tf_keras.utils.set_random_seed(2)
    model = _masked_tagger(steps, vocab)
    model.compile(metrics=["accuracy"], weighted_metrics=["accuracy"])
    hits = ((model(ids).mean().numpy()[..., 0] > 0.5) == y).astype(np.float64)
    mask = ids != 0
    weights = rng.uniform(0.5, 2.0, size=(n, steps))
    logs = model.evaluate(ids, y, sample_weight=weights, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["accuracy"], hits[mask].mean(), atol=1e-6)
    np.testing.assert_allclose(logs["weighted_accuracy"], (hits * weights)[mask].sum() / weights[mask].sum(), atol=1e-6)
    flipped = np.where(mask, y, 1 - y)
    assert model.evaluate(ids, flipped, verbose=0, return_dict=True)["accuracy"] == logs["accuracy"]


def test_multi_label_auc_in_fit_and_evaluate_matches_keras_on_the_squeezed_labels():
    # (N, L) labels of a BernoulliHead over (N, L, 1): the metrics' targets stay (N, L) without per-step
    # weights, so AUC(multi_label=True, num_labels=L) (rank 2 only) works as before; expanding them
    # to (N, L, 1) failed with "must have rank 2".
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (rng.uniform(size=(40, 3)) < 0.4).astype(np.float32)
    inputs = tf_keras.Input((4,))
    dense = tf_keras.layers.Dense(3)
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(tf_keras.layers.Reshape((3, 1))(dense(inputs))))
    model.compile(tf_keras.optimizers.SGD(0.0), metrics=[tf_keras.metrics.AUC(multi_label=True, num_labels=3)])
    logs = model.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
    expected = tf_keras.metrics.AUC(multi_label=True, num_labels=3)
    expected.update_state(y, tf.sigmoid(dense(x)))
    np.testing.assert_allclose(logs["auc"], expected.result().numpy(), rtol=1e-6)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["auc"]).all()
