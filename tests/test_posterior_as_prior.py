"""Bayesian updating: tfp_bnn.posterior_as_prior makes the posterior of one fit the prior of the next."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn
from tfp_bnn import heads, layers, posteriors, priors

NOISE = 0.5


def _exact_posterior(x, y):
    """Mean and covariance of ``[w, b]`` in ``y / NOISE ~ N(x w + b, 1)``, ``[w, b] ~ N(0, I)``."""
    design = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    covariance = np.linalg.inv(np.eye(design.shape[1]) + design.T @ design)
    return covariance @ design.T @ (y.astype(np.float64) / NOISE), covariance


def _linear_model(num_features, train_size, posterior, estimator, use_bias=True, seed=0):
    """Bayesian linear regression with known noise: the network predicts in units of the noise."""
    tf_keras.utils.set_random_seed(seed)
    inputs = tf_keras.Input((num_features,))
    layer = layers.BayesianDense(
        1, estimator=estimator, use_bias=use_bias, kernel_posterior=posterior,
        kernel_prior=priors.NormalPrior(1.0), kl_weight=1.0 / train_size,
    )
    return tfp_bnn.BayesianModel(inputs, heads.PointHead(1, target_scale=NOISE)(layer(inputs)))


def _fit_full_batch(model, x, y, steps=3000):
    model.compile(
        optimizer=tf_keras.optimizers.Adam(tf_keras.optimizers.schedules.CosineDecay(0.05, steps)),
        steps_per_execution=100,
    )
    # Full batch: the only noise in the gradient is the estimator's.
    model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    return model


def _posterior_moments(model):
    (layer,) = [layer for layer in model.layers if isinstance(layer, layers.BayesianDense)]
    q = layer.posterior.distribution()
    return q.mean().numpy().astype(np.float64), q.covariance().numpy().astype(np.float64)


@pytest.fixture(scope="module")
def correlated_data():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 2))
    x = np.stack([z[:, 0], 0.8 * z[:, 0] + 0.6 * z[:, 1]], axis=1).astype(np.float32)  # correlation 0.8
    y = (x @ [0.7, -0.4] + 0.3 + NOISE * rng.standard_normal(40)).astype(np.float32)
    return x, y


def test_two_fits_in_turn_give_the_exact_posterior_of_all_the_data(correlated_data):
    # Full covariance holds the exact posterior of a linear-Gaussian model: fitting the first
    # half, then the second with the first's posterior as prior, must give the posterior of all 40.
    x, y = correlated_data
    first = _fit_full_batch(
        _linear_model(2, 20, posteriors.FullCovarianceNormal(), "variational"), x[:20], y[:20]
    )
    updated = _fit_full_batch(tfp_bnn.posterior_as_prior(first, train_size=20), x[20:], y[20:])

    exact_mean, exact_covariance = _exact_posterior(x, y)
    exact_stddev = np.sqrt(np.diag(exact_covariance))
    mean, covariance = _posterior_moments(updated)
    assert np.all(np.abs(mean - exact_mean) < 0.15 * exact_stddev), (mean, exact_mean, exact_stddev)
    assert np.abs(covariance - exact_covariance).max() < 0.06 * np.abs(exact_covariance).max(), (
        covariance, exact_covariance)

    # The control: the second half under the original N(0, I) prior is far from it (the test can fail).
    alone_mean, alone_covariance = _posterior_moments(
        _fit_full_batch(_linear_model(2, 20, posteriors.FullCovarianceNormal(), "variational", seed=1),
                        x[20:], y[20:])
    )
    assert np.max(np.abs(alone_mean - exact_mean) / exact_stddev) > 0.4
    assert np.abs(alone_covariance - exact_covariance).max() > 0.2 * np.abs(exact_covariance).max()


def test_one_weight_mean_field_with_flipout_updates_exactly():
    # One weight: mean-field is the exact family too, so the sequential posterior is the batch one.
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, (30, 1)).astype(np.float32)
    y = (0.8 * x[:, 0] + NOISE * rng.standard_normal(30)).astype(np.float32)
    first = _fit_full_batch(
        _linear_model(1, 15, posteriors.MeanFieldNormal(), "flipout", use_bias=False), x[:15], y[:15]
    )
    updated = _fit_full_batch(tfp_bnn.posterior_as_prior(first, train_size=15), x[15:], y[15:])

    precision = 1.0 + np.sum(x.astype(np.float64) ** 2)
    exact_mean, exact_stddev = np.sum(x[:, 0] * y / NOISE) / precision, 1.0 / np.sqrt(precision)
    mean, covariance = _posterior_moments(updated)
    assert abs(mean[0] - exact_mean) < 0.1 * exact_stddev, (mean, exact_mean, exact_stddev)
    assert abs(np.sqrt(covariance[0, 0]) / exact_stddev - 1) < 0.05, (np.sqrt(covariance[0, 0]), exact_stddev)


@pytest.fixture(scope="module")
def fitted_regressor():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1.0, 1.0, (64, 2)).astype(np.float32)
    y = (np.sin(3 * x[:, 0]) + 0.1 * rng.standard_normal(64)).astype(np.float32)
    tf_keras.utils.set_random_seed(2)
    model = tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=64)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.02))
    model.fit(x, y, epochs=20, verbose=0)
    return model, x


def test_the_copy_starts_where_the_model_is_with_its_posterior_as_prior(fitted_regressor):
    model, x = fitted_regressor
    before = [layer.get_weights() for layer in model.layers]
    updated = tfp_bnn.posterior_as_prior(model, train_size=10)

    assert type(updated) is type(model)
    assert float(updated.kl_divergence()) == pytest.approx(0.0, abs=1e-6)
    old_layers = [layer for layer in model.layers if isinstance(layer, layers.BayesianDense)]
    new_layers = [layer for layer in updated.layers if isinstance(layer, layers.BayesianDense)]
    assert len(new_layers) == 2
    for old, new in zip(old_layers, new_layers):
        q, p = old.posterior.distribution(), new.prior.distribution()
        np.testing.assert_array_equal(p.mean(), q.mean())
        np.testing.assert_allclose(p.stddev(), q.stddev(), rtol=1e-6)
        assert new.kl_weight == 1 / 10 and old.kl_weight == 1 / 64
        assert isinstance(new.kernel_prior, priors.GaussianPrior) and isinstance(old.kernel_prior, priors.NormalPrior)
        assert new.prior.trainable_weights == []
    # The same predictive distribution, and the original model untouched.
    a, b = tfp_bnn.predict(model, x, seed=3), tfp_bnn.predict(updated, x, seed=3)
    for field in ("mean", "aleatoric_variance", "epistemic_variance", "lower", "upper"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    for layer, weights in zip(model.layers, before):
        for saved, current in zip(weights, layer.get_weights()):
            np.testing.assert_array_equal(saved, current)


def test_the_prior_survives_saving_and_training_moves_only_the_posterior(fitted_regressor, tmp_path):
    model, x = fitted_regressor
    updated = tfp_bnn.posterior_as_prior(model, train_size=64)
    updated.compile(optimizer=tf_keras.optimizers.Adam(0.02))
    prior_before = [w.numpy() for w in updated.non_trainable_weights]
    rng = np.random.default_rng(4)
    new_x = rng.uniform(-1.0, 1.0, (64, 2)).astype(np.float32)
    updated.fit(new_x, np.sin(3 * new_x[:, 0]).astype(np.float32), epochs=3, verbose=0)
    assert float(updated.kl_divergence()) > 0
    for before, after in zip(prior_before, updated.non_trainable_weights):
        np.testing.assert_array_equal(before, after.numpy())

    updated.save(tmp_path / "updated.keras")
    loaded = tf_keras.models.load_model(tmp_path / "updated.keras")
    assert float(loaded.kl_divergence()) == pytest.approx(float(updated.kl_divergence()), rel=1e-6)
    a, b = tfp_bnn.predict(updated, x, seed=5), tfp_bnn.predict(loaded, x, seed=5)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.epistemic_variance, b.epistemic_variance)
    # And again: the posterior after two data sets is the prior for a third.
    again = tfp_bnn.posterior_as_prior(loaded, train_size=32)
    np.testing.assert_array_equal(again.layers[1].prior.distribution().mean(), loaded.layers[1].posterior.loc)


def test_nested_models_frozen_layers_and_convolutions_are_copied():
    tf_keras.utils.set_random_seed(6)
    inner = tf_keras.Sequential(
        [tf_keras.Input((6, 6, 1)), layers.BayesianConv2D(2, 3, kl_weight=0.1), tf_keras.layers.Flatten()],
        name="inner",
    )
    frozen = tf_keras.layers.Dense(3, trainable=False, name="frozen")
    inputs = tf_keras.Input((6, 6, 1))
    hidden = frozen(inner(inputs))
    outputs = heads.NormalHead(1)(layers.BayesianDense(
        2, estimator="variational", kernel_posterior=posteriors.FullCovarianceNormal(), kl_weight=0.1)(hidden))
    model = tfp_bnn.BayesianModel(inputs, outputs)
    x = np.random.default_rng(6).random((5, 6, 6, 1)).astype(np.float32)

    updated = tfp_bnn.posterior_as_prior(model, train_size=20)
    assert updated.get_layer("inner").layers[0].prior.covariance == "diagonal"
    assert updated.layers[-2].prior.covariance == "full"
    assert not updated.get_layer("frozen").trainable
    assert float(updated.kl_divergence()) == pytest.approx(0.0, abs=1e-5)
    a, b = tfp_bnn.predict(model, x, seed=7), tfp_bnn.predict(updated, x, seed=7)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.epistemic_variance, b.epistemic_variance)


def test_models_without_a_posterior_and_bad_arguments_are_refused(fitted_regressor):
    model, _ = fitted_regressor
    with pytest.raises(ValueError, match="train_size must be a positive integer"):
        tfp_bnn.posterior_as_prior(model, train_size=0)
    ensemble = tfp_bnn.make_regressor((2,), inference="ensemble", num_members=2)
    with pytest.raises(ValueError, match="no tfp_bnn Bayesian layer.*MC dropout and deep ensembles"):
        tfp_bnn.posterior_as_prior(ensemble, train_size=10)
    unbuilt = tf_keras.Sequential([layers.BayesianDense(2, kl_weight=0.1), heads.NormalHead(1)])
    with pytest.raises(ValueError, match="needs a built Keras model"):
        tfp_bnn.posterior_as_prior(unbuilt, train_size=10)
    raw_tfp = tf_keras.Sequential([tf_keras.Input((2,)), tfp.layers.DenseFlipout(2), heads.NormalHead(1)])
    with pytest.raises(ValueError, match="tfp.layers' DenseFlipout"):
        tfp_bnn.posterior_as_prior(raw_tfp, train_size=10)


def test_gaussian_prior_checks_what_it_is_given():
    with pytest.raises(ValueError, match="covariance must be one of"):
        priors.GaussianPrior("dense")
    with pytest.raises(ValueError, match="swapped"):
        layers.BayesianDense(2, kernel_posterior=priors.GaussianPrior())
    diagonal = priors.GaussianPrior().make_layer(3)
    with pytest.raises(ValueError, match="over 3 weights"):
        diagonal.assign(tfp.distributions.MultivariateNormalDiag(tf.zeros(4), tf.ones(4)))
    with pytest.raises(ValueError, match="covariance='full'"):
        diagonal.assign(tfp.distributions.MultivariateNormalTriL(tf.zeros(3), tf.eye(3)))
    full = priors.GaussianPrior("full").make_layer(2)
    scale_tril = tf.constant([[1.0, 0.0], [0.5, 2.0]])
    full.assign(tfp.distributions.MultivariateNormalTriL([1.0, -1.0], scale_tril))
    np.testing.assert_allclose(full.distribution().covariance(), scale_tril @ tf.transpose(scale_tril))
    np.testing.assert_array_equal(full.distribution().mean(), [1.0, -1.0])


def test_a_trained_copy_and_a_reloaded_model_save_to_h5_with_their_optimizer(fitted_regressor, tmp_path):
    # Keras builds a layer from its build_config outside its name scope (Model.from_config, load_model):
    # every Bayesian layer's variables were "posterior_loc:0", ..., and the optimizer's slots clashed in .h5.
    model, x = fitted_regressor
    updated = tfp_bnn.posterior_as_prior(model, train_size=64)
    assert len({w.name for w in updated.weights}) == len(updated.weights)
    updated.compile(optimizer=tf_keras.optimizers.Adam(0.02))
    updated.fit(x, np.sin(3 * x[:, 0]).astype(np.float32), epochs=1, verbose=0)
    updated.save(tmp_path / "updated.h5")
    loaded = tf_keras.models.load_model(tmp_path / "updated.h5")
    assert float(loaded.kl_divergence()) == pytest.approx(float(updated.kl_divergence()), rel=1e-6)

    model.save(tmp_path / "model.keras")
    reloaded = tf_keras.models.load_model(tmp_path / "model.keras")
    reloaded.compile(optimizer=tf_keras.optimizers.Adam(0.02))
    reloaded.fit(x, np.sin(3 * x[:, 0]).astype(np.float32), epochs=1, verbose=0)
    reloaded.save(tmp_path / "reloaded.h5")


_COPY_OUTSIDE_THE_SCOPE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras
    import tfp_bnn

    x = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=64)
    updated = tfp_bnn.posterior_as_prior(model, train_size=32)  # outside the scope
    same = np.array_equal(tfp_bnn.predict(model, x, seed=1).mean, tfp_bnn.predict(updated, x, seed=1).mean)
    updated.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    logs = updated.fit(x, np.sin(3 * x[:, 0]), epochs=1, verbose=0).history
    json.dump({"same_strategy": updated.distribute_strategy is strategy,
               "distributed": all(isinstance(w, tf.distribute.DistributedValues) for w in updated.weights),
               "same_prediction": bool(same), "loss": logs["loss"][0]}, sys.stdout)
""")


def test_the_copy_of_a_distributed_model_is_built_under_its_strategy():
    # Outside the scope the copy of a MirroredStrategy model was a one-device model, which fit
    # trained without a word. Its own process: two MirroredStrategys in one process clash.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    child = subprocess.run([sys.executable, "-c", _COPY_OUTSIDE_THE_SCOPE], capture_output=True, text=True,
                           env=env, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout)
    assert report["same_strategy"] and report["distributed"] and report["same_prediction"]
    assert np.isfinite(report["loss"])


class _Subclassed(tf_keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.BayesianDense(2, kl_weight=0.1)
        self.head = heads.NormalHead(1)

    def call(self, inputs):
        return self.head(self.dense(inputs))


def test_a_built_subclassed_model_is_refused_for_what_it_is():
    model = _Subclassed()
    model(np.zeros((2, 3), np.float32))
    assert model.built
    with pytest.raises(ValueError, match="subclassed model's config does not hold its layers"):
        tfp_bnn.posterior_as_prior(model, train_size=10)
