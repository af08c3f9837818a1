"""Variational inference checked against exact answers: the conjugate posterior, the loss, the draws."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import heads, layers, posteriors, priors, sampling

ESTIMATORS = ("reparameterization", "variational", "flipout", "local_reparameterization")


def _softplus(u):
    return np.logaddexp(0.0, np.asarray(u, np.float64))


# -- Bayesian linear regression with known noise: the exact posterior -------------------------

NUM_POINTS, NOISE, PRIOR_SCALE = 20, 0.5, 1.0


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (NUM_POINTS, 1)).astype(np.float32)
    y = (0.8 * x[:, 0] + NOISE * rng.standard_normal(NUM_POINTS)).astype(np.float32)
    return x, y


def _exact_posterior(x, y):
    """Posterior of ``w`` in ``y ~ N(NOISE * w * x, NOISE^2)``, ``w ~ N(0, PRIOR_SCALE^2)``.

    The network predicts in units of the noise (``PointHead(target_scale=NOISE)``),
    so its weight is ``w`` and the precision is ``1 / PRIOR_SCALE^2 + sum x^2``.
    """
    x, y = x[:, 0].astype(np.float64), y.astype(np.float64)
    precision = 1.0 / PRIOR_SCALE**2 + np.sum(x**2)
    return np.sum(x * y / NOISE) / precision, 1.0 / np.sqrt(precision)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_mean_field_posterior_of_linear_regression_is_the_exact_posterior(linear_data, estimator):
    x, y = linear_data
    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((1,))
    weight = layers.BayesianDense(
        1, use_bias=False, estimator=estimator, kernel_prior=priors.NormalPrior(PRIOR_SCALE),
        kl_weight=1.0 / NUM_POINTS,
    )
    model = tfp_bnn.BayesianModel(inputs, heads.PointHead(1, target_scale=NOISE)(weight(inputs)))
    steps = 3000
    model.compile(
        optimizer=tf_keras.optimizers.Adam(tf_keras.optimizers.schedules.CosineDecay(0.05, steps)),
        steps_per_execution=100,
    )
    # Full batch: the only noise in the gradient is the estimator's.
    model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(), steps_per_epoch=steps, epochs=1, verbose=0)

    exact_mean, exact_stddev = _exact_posterior(x, y)
    q = weight.posterior.distribution()
    assert abs(float(q.mean()[0]) / exact_mean - 1) < 0.05, (float(q.mean()[0]), exact_mean)
    assert abs(float(q.stddev()[0]) / exact_stddev - 1) < 0.15, (float(q.stddev()[0]), exact_stddev)
    # Started at 1e-3: the posterior widened by a factor of ~300 to get there.
    assert float(q.stddev()[0]) > 100 * posteriors.MeanFieldNormal().initial_scale


# -- the loss fit reports ----------------------------------------------------------------------


def _numpy_forward(model, x):
    """The posterior-mean network of ``make_regressor`` in NumPy: loc and scale of the NormalHead."""
    h = x.astype(np.float64)
    bayesian = [layer for layer in model.layers if isinstance(layer, layers.BayesianDense)]
    for i, layer in enumerate(bayesian):
        loc = layer.posterior.loc.numpy().astype(np.float64)
        kernel = loc[: layer.num_kernel_weights].reshape(layer.kernel_shape)
        h = h @ kernel + loc[layer.num_kernel_weights :]
        if i < len(bayesian) - 1:
            h = np.maximum(h, 0.0)
    head = model.head
    loc = head.target_loc + head.target_scale * h[:, :1]
    scale = head.target_scale * (head.scale_floor + _softplus(h[:, 1:]))
    return loc[:, 0], scale[:, 0]


def _numpy_kl(layer):
    """``KL(q || N(0, s^2))`` of a mean-field layer, summed over its weights."""
    mu = layer.posterior.loc.numpy().astype(np.float64)
    sigma = _softplus(layer.posterior.untransformed_scale.numpy()) + 1e-8
    s = layer.kernel_prior.scale
    return float(np.sum(np.log(s / sigma) + (sigma**2 + mu**2) / (2 * s**2) - 0.5))


def test_fit_reports_mean_nll_plus_kl_over_n_with_the_posterior_mean():
    num_train = 100  # three batches of 32 and one of 4: the means are over examples, not batches
    rng = np.random.default_rng(3)
    x = rng.normal(size=(num_train, 2)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 1] ** 2 + 0.3 * rng.normal(size=num_train)).astype(np.float32)
    model = tfp_bnn.make_regressor(
        (2,), hidden_units=(8,), train_size=num_train, target_mean=0.2, target_std=1.7,
        kernel_posterior=posteriors.MeanFieldNormal(initial_scale=0.05),
        kernel_prior=priors.NormalPrior(0.7),
    )
    model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.0))  # the weights stay put
    with sampling.posterior_mean():
        logs = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history

    loc, scale = _numpy_forward(model, x)
    nll = np.mean(0.5 * ((y - loc) / scale) ** 2 + np.log(scale) + 0.5 * np.log(2 * np.pi))
    kl = sum(_numpy_kl(layer) for layer in model.layers if isinstance(layer, layers.BayesianDense))
    np.testing.assert_allclose(logs["nll"][0], nll, rtol=1e-5)
    np.testing.assert_allclose(logs["kl"][0], kl / num_train, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"][0], nll + kl / num_train, rtol=1e-5)
    assert kl / num_train > 0.05 * nll  # the KL part is not negligible, so the sum is tested


_DISTRIBUTED_FIT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras
    import tfp_bnn
    from tfp_bnn import posteriors, sampling

    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 2)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 1] ** 2 + 0.3 * rng.normal(size=100)).astype(np.float32)
    tf_keras.utils.set_random_seed(0)  # the initial weights: an unlucky draw made the KL < 5 % of the nll
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=100,
                                       kernel_posterior=posteriors.MeanFieldNormal(initial_scale=0.05))
        model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.0))  # the weights stay put
    with sampling.posterior_mean():
        logs = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
        nll = -float(np.mean(model(x).log_prob(y[:, None])))
    json.dump({"replicas": strategy.num_replicas_in_sync, "logs": {k: v[0] for k, v in logs.items()},
               "nll": nll, "kl": float(model.kl_divergence())}, sys.stdout)
""")


def test_fit_under_a_mirrored_strategy_logs_the_same_nll_and_kl_as_on_one_device():
    # Keras scales the loss it returns by 1 / replicas (the replicas' gradients are summed);
    # nll = loss - kl held on one device only: with 2 replicas it logged (nll + kl) / 2 - kl.
    # Its own process: the two CPU replicas must be set before TensorFlow starts, and two
    # MirroredStrategys in one process clash.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    child = subprocess.run([sys.executable, "-c", _DISTRIBUTED_FIT], capture_output=True, text=True, env=env,
                           timeout=300)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    logs = report["logs"]
    assert report["replicas"] == 2
    np.testing.assert_allclose(logs["kl"], report["kl"], rtol=1e-5)
    np.testing.assert_allclose(logs["nll"], report["nll"], rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], report["nll"] + report["kl"], rtol=1e-5)
    assert report["kl"] > 0.05 * abs(report["nll"])  # the KL part is not negligible, so the sum is tested


def test_under_mixed_precision_bayesian_layers_and_heads_compute_in_float32():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x.sum(axis=1) + 0.1 * rng.normal(size=64).astype("float32")
    policy = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        models = {
            "variational": tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=64),
            "mc_dropout": tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=64, inference="mc_dropout"),
            "ensemble": tfp_bnn.make_regressor((3,), hidden_units=(8,), inference="ensemble"),
        }
        dtypes = {name: [layer.compute_dtype for layer in model.layers[1:]] for name, model in models.items()}
        for model in models.values():
            model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
        histories = {name: model.fit(x, y, epochs=25, batch_size=16, verbose=0) for name, model in models.items()}
    finally:
        tf_keras.mixed_precision.set_global_policy(policy)
    # The policy is in force for the plain layers; tfp_bnn's own layers and heads stay float32.
    assert dtypes == {
        "variational": ["float32", "float32", "float32"],
        "mc_dropout": ["float16", "float16", "float16", "float16", "float32"],
        "ensemble": ["float16", "float16", "float32"],
    }
    for name, model in models.items():
        loss = histories[name].history["loss"]
        assert loss[-1] < loss[0] - 0.5, (name, loss[0], loss[-1])
        result = tfp_bnn.predict(model, x, num_samples=20, seed=0)
        assert result.mean.dtype == np.float32 and np.all(np.isfinite(result.stddev)), name
        assert np.sqrt(np.mean((result.mean[:, 0] - y) ** 2)) < np.std(y), name
    # All of the variational model is float32: the same numbers as its float32 twin with its weights.
    twin = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=64)
    twin.set_weights(models["variational"].get_weights())
    np.testing.assert_array_equal(tfp_bnn.predict(twin, x, num_samples=20, seed=0).mean,
                                  tfp_bnn.predict(models["variational"], x, num_samples=20, seed=0).mean)


def test_a_sampling_mode_belongs_to_the_thread_that_entered_it_outside_a_strategy():
    # Only a distribution strategy's replica threads read the calling thread's modes; any
    # other thread (a server's worker, say) keeps its own, and nothing is left behind.
    seen = {}

    def other_thread():
        seen["other"] = sampling.current_mode().kind
        with sampling.weight_draws(3):
            seen["other inside"] = sampling.current_mode().kind

    with sampling.posterior_mean():
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        seen["here"] = sampling.current_mode().kind
    assert seen == {"other": "single", "other inside": "draws", "here": "mean"}
    assert sampling.current_mode().kind == "single" and sampling._STACKS == {}


# -- T draws in one graph = T separate calls ----------------------------------------------------

NUM_DRAWS = 4000


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_one_graph_epistemic_variance_matches_a_python_loop_of_calls(estimator):
    tf_keras.utils.set_random_seed(5)
    model = tfp_bnn.make_regressor(
        (3,), hidden_units=(16,), train_size=100, estimator=estimator,
        kernel_posterior=posteriors.MeanFieldNormal(initial_scale=0.2),
    )
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    # Each call of the model is one weight draw (the `single` mode of model.fit); compiled,
    # so that the loop takes seconds, but still one call per draw.
    one_draw = tf.function(lambda inputs: model(inputs).mean())
    looped = np.stack([one_draw(x).numpy()[:, 0] for _ in range(NUM_DRAWS)])
    one_graph = tfp_bnn.predict(model, x, num_samples=NUM_DRAWS, seed=0)

    np.testing.assert_allclose(one_graph.epistemic_variance[:, 0], looped.var(axis=0), rtol=0.10)
    np.testing.assert_allclose(one_graph.mean[:, 0], looped.mean(axis=0), atol=4 * np.sqrt(
        looped.var(axis=0).max() / NUM_DRAWS))
