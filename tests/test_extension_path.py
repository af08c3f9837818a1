import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn
from tfp_bnn._factory import DistributionFactory, DistributionLayer
from tfp_bnn.heads import Head

tfd = tfp.distributions


class _BareLogNormalHead(Head):  # forgot tfd.Independent
    params_per_unit = 2

    def _make_distribution(self, params):
        return tfd.LogNormal(params[..., :1], 1e-3 + tf.nn.softplus(params[..., 1:]))


def test_regression_head_without_independent_is_refused():
    with pytest.raises(TypeError, match="tfd.Independent"):
        _BareLogNormalHead(1)(tf.zeros([3, 2]))


class _TemperatureHead(Head):
    task = "classification"

    def _make_distribution(self, params):
        return tfd.Categorical(logits=params / 2.0, dtype=tf.float32)


def test_custom_classification_head_from_head_takes_class_indices():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    inputs = tf_keras.Input((2,))
    h = tfp_bnn.BayesianDense(2, kl_weight=1 / 64)(inputs)
    model = tfp_bnn.BayesianModel(inputs, _TemperatureHead(2)(h))
    model.compile(optimizer="adam")
    model.fit(x, y, epochs=1, verbose=0)
    result = tfp_bnn.predict(model, x[:3], num_samples=5, seed=0)
    assert result.probabilities.shape == (3, 2)
    assert set(tfp_bnn.score(model, x, y, num_samples=5, seed=0)) == {"accuracy", "nll", "brier", "ece"}


class _LowRankLayer(DistributionLayer):
    def __init__(self, size, **kwargs):
        super().__init__(size, **kwargs)
        self.loc = self.add_weight(name="loc", shape=[size], initializer="zeros")
        self.factor = self.add_weight(name="factor", shape=[size, 1], initializer="ones")

    def distribution(self):
        return tfd.MultivariateNormalDiagPlusLowRankCovariance(self.loc, tf.fill([self.size], 1e-3), self.factor)


class _LowRank(DistributionFactory):
    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        return _LowRankLayer(kernel_size + bias_size, dtype=dtype)

    def get_config(self):
        return {}


@pytest.mark.parametrize("estimator", ["flipout", "local_reparameterization"])
def test_per_example_estimators_refuse_a_correlated_custom_posterior(estimator):
    layer = tfp_bnn.BayesianDense(1, estimator=estimator, kernel_posterior=_LowRank(), kl_weight=0.0)
    with pytest.raises(ValueError, match="mean-field Normal"):
        layer(tf.ones([2, 4]))


def test_variational_estimator_takes_a_correlated_custom_posterior():
    layer = tfp_bnn.BayesianDense(1, estimator="variational", kernel_posterior=_LowRank(), kl_weight=0.0)
    assert layer(tf.ones([2, 4])).shape == (2, 1)


class _SelfSampledEmbedding(tf_keras.layers.Layer):
    """A Bayesian embedding built from tfp_bnn's factories that samples its posterior itself."""

    def build(self, input_shape):
        self.posterior = tfp_bnn.MeanFieldNormal(0.5).make_layer(40, 0, kernel_shape=(10, 4))

    def call(self, ids):
        table = tf.reshape(self.posterior.distribution().sample(), [10, 4])
        return tf.gather(table, tf.cast(ids[..., 0], tf.int32))


def test_predict_warns_of_a_posterior_that_a_users_layer_samples_itself():
    # Under tfp_bnn.predict the T stacked copies of a batch share its one sample per call: an epistemic
    # std below 1e-7 for 4 inputs, against 0.34-0.38 by 200 separate passes. Nothing said so.
    ids = np.arange(4, dtype=np.float32)[:, None]
    inputs = tf_keras.Input((1,))
    own = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(tf_keras.layers.Dense(2)(_SelfSampledEmbedding()(inputs))))
    with pytest.warns(UserWarning, match="no tfp_bnn Bayesian layer owns: if your layer samples it itself"):
        result = tfp_bnn.predict(own, ids, num_samples=20, seed=0)
    assert result.epistemic_stddev.max() < 1e-3  # the shared draw the warning is about
    builtin = tfp_bnn.make_regressor((1,), train_size=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tfp_bnn.predict(builtin, ids, num_samples=20, seed=0).epistemic_stddev.min() > 0


class _IndependentBernoulliHead(Head):  # BernoulliHead's own pattern, on the documented extension path
    task = "classification"

    def _make_distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params, dtype=tf.float32), reinterpreted_batch_ndims=1)


def test_custom_classification_head_over_independent_bernoulli_trains_and_predicts():
    # The default classification tensor and draw statistics called probs_parameter() on the
    # tfd.Independent: an AttributeError when the head was first called (before this batch it trained).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    inputs = tf_keras.Input((2,))
    hidden = tfp_bnn.BayesianDense(1, kl_weight=1 / 64)(inputs)
    model = tfp_bnn.BayesianModel(inputs, _IndependentBernoulliHead(1)(hidden))
    model.compile(optimizer="adam")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.predict(x[:3], verbose=0).shape == (3, 1)  # P(y = 1), as BernoulliHead's tensor
    result = tfp_bnn.predict(model, x[:3], num_samples=5, seed=0)
    assert result.probabilities.shape == (3, 2)
    np.testing.assert_allclose(result.probabilities.sum(-1), 1.0, rtol=1e-6)


class _HoldsAnUnusedBayesianLayer(tf_keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.used = tfp_bnn.BayesianDense(2, kl_weight=1 / 64)
        self.spare = tfp_bnn.BayesianDense(2, kl_weight=1 / 64)  # never called: no posterior yet

    def call(self, inputs):
        return self.used(inputs)


def test_predict_takes_a_model_holding_a_bayesian_layer_that_was_never_called():
    inputs = tf_keras.Input((3,))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(_HoldsAnUnusedBayesianLayer()(inputs)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = tfp_bnn.predict(model, np.zeros((4, 3), np.float32), num_samples=5, seed=0)
    assert result.mean.shape == (4, 1)
