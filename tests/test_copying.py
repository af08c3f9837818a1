"""``copy.deepcopy`` of tfp_bnn's layers and heads: a copy computes with, and trains, its own weights.

Models deep-copy through Keras's own ``.keras`` round trip (``Model.__deepcopy__``); layers and
heads through Python's: functions (a lambda, TFP's ``DistributionLambda`` closure) are copied by
reference, so a copy whose loss or distribution was a closure over the original used the original's
variables.
"""

import copy

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn


def _shifted(layer, amount=1.0):
    for weight in layer.trainable_weights:
        weight.assign(weight + amount)


@pytest.mark.parametrize("head_class", [tfp_bnn.HomoscedasticNormalHead, tfp_bnn.StudentTHead])
def test_a_deep_copy_of_a_built_head_makes_its_distribution_from_its_own_weights(head_class):
    head = head_class(1)
    params = tf.zeros([2, head.params_size])
    head(params)
    twin = copy.deepcopy(head)
    _shifted(twin)
    assert not np.allclose(twin(params).stddev().numpy(), head(params).stddev().numpy())
    with tf.GradientTape() as tape:
        log_prob = tf.reduce_sum(twin(params).log_prob(tf.ones([2, 1])))
    assert all(gradient is not None for gradient in tape.gradient(log_prob, twin.trainable_weights))


def test_a_deep_copy_of_an_unbuilt_head_trains_its_own_noise_scale():
    x = np.random.default_rng(0).normal(size=(64, 1)).astype("float32")
    y = x[:, 0]
    head = copy.deepcopy(tfp_bnn.HomoscedasticNormalHead(1))
    model = tfp_bnn.make_regressor((1,), regime="probabilistic", hidden_units=(4,), head=head)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.1))
    before = head.weights[0].numpy().copy()
    model.fit(x, y, epochs=2, verbose=0)
    assert not np.array_equal(head.weights[0].numpy(), before)


def test_a_deep_copy_of_a_built_bayesian_layer_adds_its_own_kl():
    layer = tfp_bnn.BayesianDense(3, kl_weight=0.5)
    layer(tf.zeros([1, 2]))
    twin = copy.deepcopy(layer)
    twin.posterior.untransformed_scale.assign(tf.zeros_like(twin.posterior.untransformed_scale))
    np.testing.assert_allclose(float(twin.losses[0]), 0.5 * float(twin.kl_divergence()), rtol=1e-6)
    assert float(twin.losses[0]) != pytest.approx(float(layer.losses[0]))
    with tf.GradientTape() as tape:
        loss = twin.losses[0]
    assert all(gradient is not None for gradient in tape.gradient(loss, twin.trainable_weights))
    twin.kl_weight = 0.0
    assert float(twin.losses[0]) == 0.0
    assert float(layer.losses[0]) > 0.0


def test_a_deep_copy_of_a_posterior_layer_called_as_a_layer_uses_its_own_weights():
    layer = tfp_bnn.BayesianDense(3, kl_weight=0.5)
    layer(tf.zeros([1, 2]))
    twin = copy.deepcopy(layer.posterior)
    _shifted(twin, 2.0)
    np.testing.assert_allclose(twin(tf.zeros([1])).mean().numpy(), twin.distribution().mean().numpy())
