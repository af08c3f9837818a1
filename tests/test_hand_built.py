"""Models built by hand from tfp_bnn's layers, as Keras users build them: shared layers,
wrappers, several or variable-length inputs, TFP's own layers and subclassed models."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn
from tfp_bnn import serving


def _set_posterior(layer, loc, scale):
    layer.posterior.loc.assign(np.full(layer.posterior.loc.shape, loc, np.float32))
    layer.posterior.untransformed_scale.assign(
        np.full(layer.posterior.loc.shape, np.log(np.expm1(scale)), np.float32))


@pytest.mark.parametrize("estimator", ["reparameterization", "flipout"])
def test_a_layer_used_twice_is_one_weight_draw_in_each_network(estimator):
    # f(x) = w * (w * x) with w ~ N(1, 0.5^2): each network is w_t^2 x >= 0, and the
    # epistemic variance at x = 1 is Var(w^2) = 4 mu^2 s^2 + 2 s^4 = 1.125. Two independent
    # draws per network would give Var(w1 w2) = 0.5625 and 4.5 % of negative networks.
    inputs = tf_keras.Input((1,))
    shared = tfp_bnn.BayesianDense(1, use_bias=False, estimator=estimator, kl_weight=0.01)
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.PointHead(1)(shared(shared(inputs))))
    _set_posterior(shared, 1.0, 0.5)
    assert len(model.losses) == 1  # one KL term for the one layer
    result = tfp_bnn.predict(model, [[1.0], [3.0]], num_samples=4000, seed=0)
    draws = result.draw_means[..., 0]
    assert draws.min() >= 0.0
    np.testing.assert_allclose(draws[:, 1], 3.0 * draws[:, 0], rtol=1e-5)
    # The sample variance of w^2 over 4000 draws has a standard error of 0.031.
    np.testing.assert_allclose(result.epistemic_variance[0, 0], 1.125, atol=0.1)
    # 20 inputs x 4000 draws take the graph loop over draws, the 2 above the stacked batch.
    looped = tfp_bnn.predict(model, np.linspace(1.0, 3.0, 20)[:, None], num_samples=4000, seed=0)
    np.testing.assert_allclose(looped.draw_means[:, [0, -1]], result.draw_means, rtol=1e-6)


def test_eager_calls_under_weight_draws_draw_afresh_and_train():
    # The cache that makes a reused layer one draw per network acts while a graph is built;
    # eagerly, every call is a new forward pass (a new step of a GradientTape).
    layer = tfp_bnn.BayesianDense(2, kl_weight=0.01, estimator="reparameterization",
                                  kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    x = tf.ones([4, 3])
    layer(x)
    with tfp_bnn.sampling.weight_draws(1, seed=tf.constant([1, 2])):
        outputs, gradients = [], []
        for _ in range(2):
            with tf.GradientTape() as tape:
                outputs.append(layer(x))
                total = tf.reduce_sum(outputs[-1])
            gradients.append(tape.gradient(total, layer.posterior.loc))
    assert all(g is not None for g in gradients)  # the second call had reused the first's tensor
    assert not np.allclose(outputs[0], outputs[1])  # and its draw


def test_time_distributed_bayesian_dense_predicts_what_the_same_layer_on_sequences_does():
    # BayesianDense applies to the last axis of a sequence itself; wrapped in TimeDistributed
    # (which Keras runs in a while loop when the batch size is known) it must draw the same.
    def model(wrapped):
        inputs = tf_keras.Input((4, 3))
        layer = tfp_bnn.BayesianDense(5, kl_weight=0.01, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
        hidden = tf_keras.layers.TimeDistributed(layer)(inputs) if wrapped else layer(inputs)
        hidden = tf_keras.layers.Flatten()(hidden)
        return tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=0.01)(hidden)))

    wrapped, plain = model(True), model(False)
    plain.set_weights(wrapped.get_weights())
    x = np.random.default_rng(0).normal(size=(6, 4, 3)).astype(np.float32)
    by_wrapped = tfp_bnn.predict(wrapped, x, num_samples=20, seed=3)
    by_plain = tfp_bnn.predict(plain, x, num_samples=20, seed=3)
    np.testing.assert_allclose(by_wrapped.draw_means, by_plain.draw_means, rtol=1e-5, atol=1e-6)
    assert by_wrapped.epistemic_stddev.min() > 0.05


class _BayesianCell(tf_keras.layers.Layer):
    """h_t = tanh([x_t, h_(t-1)] @ W + b), with a Bayesian [W, b]."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.state_size = units, units
        self.dense = tfp_bnn.BayesianDense(
            units, activation="tanh", kl_weight=0.01, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))

    def call(self, inputs, states):
        hidden = self.dense(tf.concat([inputs, states[0]], axis=-1))
        return hidden, [hidden]


def _recurrent_model(unroll):
    inputs = tf_keras.Input((5, 3))
    hidden = tf_keras.layers.RNN(_BayesianCell(4), unroll=unroll)(inputs)
    return tfp_bnn.BayesianModel(inputs, tfp_bnn.PointHead(1)(tf_keras.layers.Dense(1)(hidden)))


def test_a_recurrent_cell_keeps_one_weight_draw_for_every_time_step(tmp_path):
    # Keras runs an RNN in a while loop: the cell's draws are made in the function around it
    # (they once stayed in the loop's graph, and predict failed with InaccessibleTensorError),
    # so network t applies one [W, b] at every step, as the unrolled RNN does.
    looped, unrolled = _recurrent_model(False), _recurrent_model(True)
    unrolled.set_weights(looped.get_weights())
    x = np.random.default_rng(0).normal(size=(6, 5, 3)).astype(np.float32)
    by_loop = tfp_bnn.predict(looped, x, num_samples=20, seed=3)
    by_unroll = tfp_bnn.predict(unrolled, x, num_samples=20, seed=3)
    np.testing.assert_allclose(by_loop.draw_means, by_unroll.draw_means, rtol=1e-5, atol=1e-6)
    assert by_loop.epistemic_stddev.min() > 0.01
    path = serving.export_for_serving(looped, tmp_path / "m", num_samples=20)
    served = tf.saved_model.load(str(path)).signatures["seeded"](x=tf.constant(x), seed=tf.constant(3, tf.int64))
    np.testing.assert_allclose(served["epistemic_stddev"], by_loop.epistemic_stddev, rtol=1e-4, atol=1e-6)

    # Draw t, recorded once, is the network that the recurrence computes with NumPy.
    @tf.function
    def three_networks(batch):  # as tfp_bnn.predict records the draws of a seed
        record = []
        with tfp_bnn.sampling._one_pass_draws(3, seed=tf.constant([1, 2]), record=record):
            return looped(batch, training=False).mean(), record

    stacked, record = three_networks(tfp_bnn.sampling.stack_draws(x, 3))
    assert [tuple(w.shape) for w in record] == [(3, 7 * 4 + 4)]  # one [T, size] draw for five steps
    head = looped.layers[-2]
    for t, params in enumerate(record[0].numpy()):
        kernel, bias = params[:28].reshape(7, 4), params[28:]
        h = np.zeros((6, 4), np.float32)
        for step in range(5):
            h = np.tanh(np.concatenate([x[:, step], h], axis=1) @ kernel + bias)
        expected = h @ head.kernel.numpy() + head.bias.numpy()
        np.testing.assert_allclose(stacked[t * 6 : (t + 1) * 6], expected, rtol=1e-4, atol=1e-5)


def _two_input_model():
    a, b = tf_keras.Input((3,), name="a"), tf_keras.Input((2,), name="b")
    hidden = tf_keras.layers.Concatenate()([tfp_bnn.BayesianDense(4, kl_weight=0.01)(a), b])
    return tfp_bnn.BayesianModel([a, b], tfp_bnn.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=0.01)(hidden)))


def test_several_inputs_fit_from_arrays_as_a_functional_model_does():
    model = _two_input_model()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(64, 3)).astype(np.float32), rng.normal(size=(64, 2)).astype(np.float32)
    y = (xa[:, 0] - xb[:, 1]).astype(np.float32)
    as_list = model.fit([xa, xb], y, epochs=2, batch_size=16, verbose=0).history
    as_dict = model.fit({"a": xa, "b": xb}, y, epochs=2, batch_size=16, verbose=0).history
    listed_target = model.fit([xa, xb], [y], epochs=1, batch_size=16, verbose=0).history
    named_target = model.fit([xa, xb], {model.output_names[0]: y}, epochs=1, batch_size=16, verbose=0).history
    assert all(np.isfinite(h["loss"]).all() for h in (as_list, as_dict, listed_target, named_target))
    with pytest.raises(ValueError, match=r"y contains nan"):  # the targets are still checked
        model.fit([xa, xb], np.full(64, np.nan, np.float32), verbose=0)
    with pytest.raises(TypeError, match=r"predict takes models with one input; this one has 2\. Give the model one "
                       r"input that holds them all \(e\.g\. np\.concatenate"):
        tfp_bnn.predict(model, [xa, xb], num_samples=5)
    with pytest.raises(TypeError, match=r"^log_likelihoods takes models with one input"):
        tfp_bnn.log_likelihoods(model, [xa, xb], y, num_samples=5)


def test_variable_length_sequences_fit_and_predict_says_what_it_needs():
    inputs = tf_keras.Input((None, 3))
    pooled = tf_keras.layers.GlobalAveragePooling1D()(tfp_bnn.BayesianDense(4, kl_weight=1 / 6)(inputs))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=1 / 6)(pooled)))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    history = model.fit(np.zeros((6, 5, 3), np.float32), np.zeros(6, np.float32), verbose=0).history
    assert np.isfinite(history["loss"]).all()
    with pytest.raises(ValueError, match=r"x has shape \(6, 5, 2\) but the model takes inputs of shape \(N, None, 3\)"):
        model.fit(np.zeros((6, 5, 2), np.float32), np.zeros(6, np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"input shape \(None, None, 3\) has unknown dimensions besides the batch"):
        tfp_bnn.predict(model, np.zeros((6, 5, 3), np.float32), num_samples=5)


@pytest.mark.parametrize("layer", [
    lambda: tfp.layers.DenseReparameterization(2, kernel_posterior_fn=tfp_bnn.MeanFieldNormal(0.3)),
    lambda: tfp.layers.DenseFlipout(2),
    lambda: tfp.layers.DenseVariational(2, tfp_bnn.MeanFieldNormal(0.3), tfp_bnn.NormalPrior(1.0)),
], ids=["reparameterization", "flipout", "variational"])
def test_tfp_variational_layers_are_refused_not_mis_sampled(layer, tmp_path):
    # TFP's layers draw once per call: all T stacked copies would share that draw
    # (an epistemic variance of ~1e-12 where the true one is ~0.2).
    inputs = tf_keras.Input((1,))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(layer()(inputs)))
    message = r"one of TFP's variational layers, which draw one weight sample per call.*Use tfp_bnn\.BayesianDense"
    with pytest.raises(TypeError, match=message):
        tfp_bnn.predict(model, [[1.0]], num_samples=10)
    with pytest.raises(TypeError, match=message):
        tfp_bnn.log_likelihoods(model, [[1.0]], [[0.0]], num_samples=10)
    with pytest.raises(TypeError, match=message):
        serving.export_for_serving(model, tmp_path / "m", num_samples=10)
    assert not (tmp_path / "m").exists()


def test_a_subclassed_model_is_refused_with_the_way_out():
    class Net(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = tfp_bnn.BayesianDense(2, kl_weight=0.1)
            self.head = tfp_bnn.NormalHead(1)

        def call(self, x):
            return self.head(self.hidden(x))

    net = Net()
    net(np.zeros((2, 1), np.float32))
    with pytest.raises(TypeError, match=r"Net has no input shape \(a subclassed model\).*BayesianModel\(inputs, outputs\)"):
        tfp_bnn.predict(net, [[1.0]], num_samples=5)
    unbuilt = tf_keras.Sequential([tfp_bnn.BayesianDense(2, kl_weight=0.1), tfp_bnn.NormalHead(1)])
    with pytest.raises(TypeError, match=r"This Sequential model has not been built.*tf_keras\.Input\(shape\)"):
        tfp_bnn.predict(unbuilt, [[1.0]], num_samples=5)
