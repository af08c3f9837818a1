"""Priors, posteriors, Bayesian layers and heads, checked against closed forms and sampling theory."""

import inspect
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from scipy import stats

import tfp_bnn
from tfp_bnn import heads, sampling

tfd = tfp.distributions

IN, OUT = 3, 4


def _softplus(u):
    return np.logaddexp(0.0, np.asarray(u, np.float64))


def _gaussian_kl(q_loc, q_scale, p_scale):
    """KL(N(q_loc, q_scale^2) || N(0, p_scale^2)), summed over all weights, in float64."""
    q_loc, q_scale = np.asarray(q_loc, np.float64), np.asarray(q_scale, np.float64)
    return float(np.sum(np.log(p_scale / q_scale) + (q_scale**2 + q_loc**2) / (2 * p_scale**2) - 0.5))


def _log_scale_mixture(w, prior):
    return np.sum(np.log(
        prior.mixture_weight * stats.norm.pdf(w, 0.0, prior.scale1)
        + (1 - prior.mixture_weight) * stats.norm.pdf(w, 0.0, prior.scale2)
    ))


def _kl_to_scale_mixture(q_loc, q_scale, prior):
    """KL(q || scale mixture) for a factorised Normal q, by quadrature per weight."""
    z = np.linspace(-12.0, 12.0, 24001)
    weights = stats.norm.pdf(z) * (z[1] - z[0])
    q_loc, q_scale = np.asarray(q_loc, np.float64), np.asarray(q_scale, np.float64)
    w = q_loc[:, None] + q_scale[:, None] * z[None, :]
    log_prior = np.log(
        prior.mixture_weight * stats.norm.pdf(w, 0.0, prior.scale1)
        + (1 - prior.mixture_weight) * stats.norm.pdf(w, 0.0, prior.scale2)
    )
    negative_entropy = -0.5 * np.log(2 * np.pi * np.e * q_scale**2)
    return float(np.sum(negative_entropy - (log_prior * weights).sum(axis=1)))


def _weight(layer, suffix):
    matches = [w for w in layer.weights if w.name.split("/")[-1].startswith(suffix)]
    assert len(matches) == 1, [w.name for w in layer.weights]
    return matches[0].numpy().astype(np.float64)


@pytest.fixture
def x(rng):
    return tf.constant(rng.normal(size=(5, IN)).astype(np.float32))


# Identity rows then a zero row: a linear layer's output is then [kernel; 0] + bias.
PROBE = tf.constant(np.vstack([np.eye(IN), np.zeros((1, IN))]).astype(np.float32))


def _kernel_and_bias_from_outputs(outputs):
    outputs = np.asarray(outputs, np.float64)
    bias = outputs[-1]
    return outputs[:-1] - bias, bias


# -- priors and MeanFieldNormal inside TFP's own layers --------------------------------------


@pytest.mark.parametrize("layer_class", [tfp.layers.DenseReparameterization, tfp.layers.DenseFlipout])
def test_tfp_kernel_layers_with_normal_prior_and_mean_field_posterior(layer_class, x):
    layer = layer_class(OUT, kernel_posterior_fn=tfp_bnn.MeanFieldNormal(initial_scale=0.1),
                        kernel_prior_fn=tfp_bnn.NormalPrior(scale=0.5))
    assert layer(x).shape == (5, OUT)
    loc = _weight(layer, "kernel_posterior_loc")
    scale = _softplus(_weight(layer, "kernel_posterior_untransformed_scale")) + 1e-8
    assert loc.shape == (IN, OUT)
    np.testing.assert_allclose(scale, 0.1, rtol=1e-6)
    assert len(layer.losses) == 1  # the kernel's KL (TFP's default bias is a point estimate)
    np.testing.assert_allclose(float(layer.losses[0]), _gaussian_kl(loc, scale, 0.5), rtol=1e-5)


@pytest.mark.parametrize("layer_class", [tfp.layers.DenseReparameterization, tfp.layers.DenseFlipout])
def test_tfp_kernel_layers_with_trainable_prior(layer_class, x):
    layer = layer_class(OUT, kernel_posterior_fn=tfp_bnn.MeanFieldNormal(initial_scale=0.1),
                        kernel_prior_fn=tfp_bnn.TrainableNormalPrior(initial_scale=0.7))
    with tf.GradientTape() as tape:
        outputs = layer(x)
        kl = layer.losses[0]
    assert outputs.shape == (5, OUT)
    loc = _weight(layer, "kernel_posterior_loc")
    scale = _softplus(_weight(layer, "kernel_posterior_untransformed_scale")) + 1e-8
    prior_scale = float(_softplus(_weight(layer, "kernel_prior_untransformed_scale")) + 1e-6)
    assert prior_scale == pytest.approx(0.7, rel=1e-5)
    np.testing.assert_allclose(float(kl), _gaussian_kl(loc, scale, prior_scale), rtol=1e-5)
    # The prior scale is learnt: the KL has a gradient with respect to it.
    prior_variable = [w for w in layer.trainable_weights if "kernel_prior_untransformed_scale" in w.name]
    assert len(prior_variable) == 1
    gradient = tape.gradient(kl, prior_variable[0])
    assert gradient is not None and float(tf.abs(gradient)) > 0


def test_tfp_reparameterization_layer_with_scale_mixture_prior_monte_carlo_kl():
    prior = tfp_bnn.ScaleMixturePrior(mixture_weight=0.25, scale1=1.0, scale2=0.05)
    layer = tfp.layers.DenseReparameterization(
        OUT,
        kernel_posterior_fn=tfp_bnn.MeanFieldNormal(initial_scale=0.1),
        kernel_prior_fn=prior,
        # No closed form: the one-sample estimate at the kernel the layer used.
        kernel_divergence_fn=lambda q, p, w: q.log_prob(w) - p.log_prob(w),
    )
    kernel, bias = _kernel_and_bias_from_outputs(layer(PROBE))
    np.testing.assert_allclose(bias, _weight(layer, "bias_posterior_loc"), atol=1e-6)  # a point estimate
    loc = _weight(layer, "kernel_posterior_loc")
    scale = _softplus(_weight(layer, "kernel_posterior_untransformed_scale")) + 1e-8
    log_q = np.sum(stats.norm.logpdf(kernel, loc, scale))
    np.testing.assert_allclose(float(layer.losses[0]), log_q - _log_scale_mixture(kernel, prior), rtol=1e-4)


def test_tfp_flipout_layer_with_scale_mixture_prior(x):
    prior = tfp_bnn.ScaleMixturePrior()
    draws = 20000

    def monte_carlo_kl(q, p, _):
        w = q.sample(draws, seed=7)
        return tf.stack([tf.reduce_mean(q.log_prob(w) - p.log_prob(w)), tf.math.reduce_std(q.log_prob(w) - p.log_prob(w))])

    layer = tfp.layers.DenseFlipout(OUT, kernel_posterior_fn=tfp_bnn.MeanFieldNormal(initial_scale=0.05),
                                    kernel_prior_fn=prior, kernel_divergence_fn=monte_carlo_kl)
    assert layer(x).shape == (5, OUT)
    estimate, spread = layer.losses[0].numpy()
    loc = _weight(layer, "kernel_posterior_loc").ravel()
    scale = _softplus(_weight(layer, "kernel_posterior_untransformed_scale")).ravel() + 1e-8
    assert abs(estimate - _kl_to_scale_mixture(loc, scale, prior)) < 5 * spread / np.sqrt(draws)


def _tfp_mean_field_posterior(kernel_size, bias_size=0, dtype=None):
    """TFP's own tensor-coercible posterior (VariableLayer + DistributionLambda)."""
    n = kernel_size + bias_size
    initial = np.random.default_rng(3).normal(0.0, 0.3, size=2 * n) - np.r_[np.zeros(n), 2.0 * np.ones(n)]
    return tf_keras.Sequential([
        tfp.layers.VariableLayer(2 * n, dtype=dtype, initializer=tf.constant_initializer(initial)),
        tfp.layers.DistributionLambda(
            lambda t: tfd.MultivariateNormalDiag(loc=t[..., :n], scale_diag=tf.nn.softplus(t[..., n:]))
        ),
    ])


def _dense_variational_posterior(layer):
    (params,) = [w.numpy().astype(np.float64) for w in layer.weights if "/posterior/" in w.name]
    n = params.size // 2
    return params[:n], _softplus(params[n:])


@pytest.mark.parametrize("prior", [tfp_bnn.NormalPrior(scale=0.5), tfp_bnn.TrainableNormalPrior(initial_scale=0.7)],
                         ids=["normal", "trainable"])
def test_priors_as_make_prior_fn_of_dense_variational_exact_kl(prior, x):
    layer = tfp.layers.DenseVariational(OUT, make_posterior_fn=_tfp_mean_field_posterior, make_prior_fn=prior,
                                        kl_weight=0.1, kl_use_exact=True)
    assert layer(x).shape == (5, OUT)
    loc, scale = _dense_variational_posterior(layer)
    assert loc.size == IN * OUT + OUT
    if isinstance(prior, tfp_bnn.NormalPrior):
        prior_scale = 0.5
    else:
        (untransformed,) = [w.numpy() for w in layer.weights if "/prior/" in w.name]
        prior_scale = float(_softplus(untransformed) + 1e-6)
        assert prior_scale == pytest.approx(0.7, rel=1e-5)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 0.1 * _gaussian_kl(loc, scale, prior_scale), rtol=1e-5)


def test_scale_mixture_prior_as_make_prior_fn_of_dense_variational():
    prior = tfp_bnn.ScaleMixturePrior(mixture_weight=0.5, scale1=1.0, scale2=0.1)
    layer = tfp.layers.DenseVariational(OUT, make_posterior_fn=_tfp_mean_field_posterior, make_prior_fn=prior,
                                        kl_weight=0.1)
    # The default (Monte Carlo) KL is log q(w) - log p(w) at the w of this forward pass.
    kernel, bias = _kernel_and_bias_from_outputs(layer(PROBE))
    w = np.concatenate([kernel.ravel(), bias])
    loc, scale = _dense_variational_posterior(layer)
    expected = np.sum(stats.norm.logpdf(w, loc, scale)) - _log_scale_mixture(w, prior)
    np.testing.assert_allclose(float(layer.losses[0]), 0.1 * expected, rtol=1e-4)


def test_mean_field_normal_as_make_posterior_fn_of_dense_variational(x):
    layer = tfp.layers.DenseVariational(OUT, make_posterior_fn=tfp_bnn.MeanFieldNormal(initial_scale=0.1),
                                        make_prior_fn=tfp_bnn.NormalPrior(scale=0.5), kl_weight=0.1,
                                        kl_use_exact=True)
    assert layer(x).shape == (5, OUT)
    loc = _weight(layer, "posterior_loc")
    scale = _softplus(_weight(layer, "posterior_untransformed_scale")) + 1e-8
    np.testing.assert_allclose(float(layer.losses[0]), 0.1 * _gaussian_kl(loc, scale, 0.5), rtol=1e-5)


def test_dense_variational_without_bias_warns_that_its_posterior_cannot_see_the_fans():
    # DenseVariational(use_bias=False) passes the flat size only: Glorot took fan_in = fan_out =
    # in * units and started the means ~9x narrower than Dense's, silently.
    layer = tfp.layers.DenseVariational(
        50, make_posterior_fn=tfp_bnn.MeanFieldNormal(), make_prior_fn=tfp_bnn.NormalPrior(), use_bias=False)
    with pytest.warns(UserWarning, match="fan_in = fan_out = 10000"):
        layer(tf.ones([1, 200]))


def test_dense_variational_with_a_bias_or_fan_free_initializer_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = tfp.layers.DenseVariational(
            50, make_posterior_fn=tfp_bnn.MeanFieldNormal(), make_prior_fn=tfp_bnn.NormalPrior())
        layer(tf.ones([1, 200]))
        limit = np.sqrt(6.0 / (200 + 50))  # Dense's Glorot limit: the kernel's shape was recovered
        assert 0.9 * limit < np.abs(_weight(layer, "posterior_loc")[: 200 * 50]).max() <= limit
        tfp.layers.DenseVariational(
            50, make_posterior_fn=tfp_bnn.MeanFieldNormal(loc_initializer=tf_keras.initializers.RandomNormal(0, 0.1)),
            make_prior_fn=tfp_bnn.NormalPrior(), use_bias=False)(tf.ones([1, 200]))
        tfp_bnn.BayesianDense(50, use_bias=False)(tf.ones([1, 200]))


def test_normal_prior_scale_is_exact_in_float64():
    # tf.cast(0.7, float64) went through float32: 0.699999988.
    prior = tfp_bnn.NormalPrior(scale=0.7)
    assert prior.distribution(3, tf.float64).stddev().numpy()[0] == 0.7
    assert prior(tf.float64, [2, 2], "k", True, None).stddev().numpy()[0, 0] == 0.7
    layer = tfp_bnn.BayesianDense(2, kernel_prior=prior, dtype="float64")
    layer(tf.ones([1, 3], tf.float64))
    assert layer.prior.distribution().stddev().numpy()[0] == 0.7


# -- BayesianDense: the KL term ------------------------------------------------------------


def _posterior_moments(layer):
    q = layer.posterior.distribution()
    return q.mean().numpy().astype(np.float64), q.stddev().numpy().astype(np.float64)


@pytest.mark.parametrize("prior", [tfp_bnn.NormalPrior(scale=0.5), tfp_bnn.TrainableNormalPrior(initial_scale=0.7)],
                         ids=["normal", "trainable"])
def test_bayesian_dense_exact_kl(prior, x):
    layer = tfp_bnn.BayesianDense(OUT, kernel_prior=prior, kernel_posterior=tfp_bnn.MeanFieldNormal(0.05))
    layer(x)
    assert layer.exact_kl is True
    loc, scale = _posterior_moments(layer)
    assert loc.shape == (IN * OUT + OUT,)
    np.testing.assert_allclose(scale, 0.05, rtol=1e-5)
    if isinstance(prior, tfp_bnn.NormalPrior):
        prior_scale = 0.5
    else:
        prior_scale = float(_softplus(_weight(layer, "untransformed_prior_scale")) + 1e-6)
        assert prior_scale == pytest.approx(0.7, rel=1e-5)
    expected = _gaussian_kl(loc, scale, prior_scale)
    first, second = float(layer.kl_divergence()), float(layer.kl_divergence())
    assert first == second  # exact: no sampling
    assert first == pytest.approx(expected, rel=1e-5)


def test_bayesian_dense_scale_mixture_kl_is_monte_carlo_and_unbiased(x):
    prior = tfp_bnn.ScaleMixturePrior()
    layer = tfp_bnn.BayesianDense(2, kernel_prior=prior, kernel_posterior=tfp_bnn.MeanFieldNormal(0.05))
    layer(x)
    assert layer.exact_kl is False
    kl = tf.function(layer.kl_divergence)
    values = np.array([float(kl()) for _ in range(2000)])
    assert np.std(values) > 0.5  # a fresh posterior draw each time
    loc, scale = _posterior_moments(layer)
    expected = _kl_to_scale_mixture(loc, scale, prior)
    assert abs(values.mean() - expected) < 4 * values.std() / np.sqrt(values.size)


def test_model_losses_hold_kl_weight_times_kl_per_layer(rng):
    n_train = 500
    model = tfp_bnn.make_regressor((IN,), hidden_units=(6,), train_size=n_train,
                                   kernel_prior=tfp_bnn.NormalPrior(0.5),
                                   kernel_posterior=tfp_bnn.MeanFieldNormal(0.05))
    bayesian = [layer for layer in model.layers if isinstance(layer, tfp_bnn.BayesianDense)]
    assert len(bayesian) == 2

    def check():
        losses = [float(v) for v in model.losses]
        expected = [_gaussian_kl(*_posterior_moments(layer), 0.5) / n_train for layer in bayesian]
        assert len(losses) == 2
        np.testing.assert_allclose(losses, expected, rtol=1e-5)
        np.testing.assert_allclose(float(model.kl_divergence()), sum(expected), rtol=1e-5)
        return losses

    before = check()
    # After training the losses are recomputed from the new variables, not stale graph tensors.
    x = rng.normal(size=(n_train, IN)).astype(np.float32)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.05))
    model.fit(x, x.sum(axis=1), epochs=3, batch_size=125, verbose=0)
    after = check()
    assert not np.allclose(before, after)


# -- local reparameterization is NaN-safe with ReLU --------------------------------------


@pytest.mark.parametrize("use_bias", [False, True])
def test_local_reparameterization_is_finite_on_all_zero_rows(use_bias, rng):
    layer = tfp_bnn.BayesianDense(3, estimator="local_reparameterization", use_bias=use_bias, kl_weight=0.01)
    pre_activation = tf.constant(np.vstack([-np.abs(rng.normal(size=(3, 2))), rng.normal(size=(1, 2))]), tf.float32)
    upstream = tf.constant(rng.uniform(0.5, 1.5, size=(4, 3)), tf.float32)
    with tf.GradientTape() as tape:
        hidden = tf.nn.relu(pre_activation)  # rows 0-2 are all zero, as after a ReLU that is off
        outputs = layer(hidden)
        # A non-zero upstream gradient at every output, as from the layers after it
        # (TF's sqrt gradient is 0, not NaN, where the upstream gradient is exactly 0).
        objective = tf.reduce_sum(outputs * upstream) + tf.add_n(layer.losses)
    assert np.all(hidden.numpy()[:3] == 0)
    assert np.all(np.isfinite(outputs.numpy()))
    gradients = tape.gradient(objective, layer.trainable_variables)
    assert len(gradients) == 2
    for variable, gradient in zip(layer.trainable_variables, gradients):
        assert np.all(np.isfinite(gradient.numpy())), variable.name
    if not use_bias:
        np.testing.assert_allclose(outputs.numpy()[:3], 0.0, atol=1e-5)  # sd is the 1e-6 floor


def test_plain_sqrt_local_reparameterization_would_give_nan_gradients():
    scale = tf.Variable([[0.5, 0.2]])
    zeros = tf.zeros([4, 1])
    noise = tf.constant(np.random.default_rng(0).normal(size=(4, 2)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        variance = tf.matmul(tf.square(zeros), tf.square(scale))
        plain = tf.sqrt(variance) * noise
        floored = tf.sqrt(variance + 1e-12) * noise
    assert np.all(np.isnan(tape.gradient(plain, scale).numpy()))  # 1 / (2 sqrt 0) * 0 = inf * 0
    assert np.all(np.isfinite(tape.gradient(floored, scale).numpy()))


def test_tfp_dense_local_reparameterization_gradient_goes_nan_on_zero_rows():
    layer = tfp.layers.DenseLocalReparameterization(3)
    with tf.GradientTape() as tape:
        outputs = layer(tf.zeros([4, 2]))
        objective = tf.reduce_sum(outputs)
    gradients = dict(zip([v.name for v in layer.trainable_variables], tape.gradient(objective, layer.trainable_variables)))
    (scale_name,) = [name for name in gradients if "untransformed_scale" in name]
    assert np.all(np.isnan(gradients[scale_name].numpy()))


# -- weight_draws: T independent networks --------------------------------------------------

NUM_DRAWS = 2000


@pytest.mark.parametrize("estimator", ["reparameterization", "variational", "flipout", "local_reparameterization"])
def test_weight_draws_are_independent_with_the_posterior_variance(estimator):
    units = 6
    layer = tfp_bnn.BayesianDense(units, estimator=estimator, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    inputs = np.array([[1.0, -2.0, 0.5], [0.3, 0.0, 2.0]], np.float32)
    layer(inputs)
    with sampling.weight_draws(NUM_DRAWS, seed=tf.constant([1, 2])):
        outputs = layer(tf.tile(inputs, [NUM_DRAWS, 1])).numpy().astype(np.float64).reshape(NUM_DRAWS, 2, units)

    loc, scale = _posterior_moments(layer)
    kernel_loc, bias_loc = loc[: IN * units].reshape(IN, units), loc[IN * units:]
    kernel_scale, bias_scale = scale[: IN * units].reshape(IN, units), scale[IN * units:]
    mean = inputs @ kernel_loc + bias_loc
    variance = (inputs.astype(np.float64) ** 2) @ kernel_scale**2 + bias_scale**2

    assert len(np.unique(outputs[:, 0, :], axis=0)) == NUM_DRAWS
    relative_se = np.sqrt(2.0 / (NUM_DRAWS - 1))  # of a Gaussian sample variance
    ratio = outputs.var(axis=0, ddof=1) / variance
    assert np.all(np.abs(ratio - 1) < 5 * relative_se), ratio
    # Units are independent; the first input's 6 ratios average out the noise.
    assert abs(ratio[0].mean() - 1) < 4 * relative_se / np.sqrt(units), ratio[0]
    z = (outputs.mean(axis=0) - mean) / np.sqrt(variance / NUM_DRAWS)
    assert np.all(np.abs(z) < 5), z
    # Consecutive draws are uncorrelated.
    centred = outputs[:, 0, :] - outputs[:, 0, :].mean(axis=0)
    lag1 = np.sum(centred[1:] * centred[:-1], axis=0) / np.sum(centred**2, axis=0)
    assert np.all(np.abs(lag1) < 5 / np.sqrt(NUM_DRAWS)), lag1


@pytest.mark.parametrize("estimator", ["reparameterization", "variational", "flipout", "local_reparameterization"])
def test_each_weight_draw_is_one_network_for_all_inputs(estimator, rng):
    # Without bias the layer is linear in its input for a fixed weight draw:
    # f_t(a + b) = f_t(a) + f_t(b) holds only if rows a, b, a + b of block t share W_t.
    layer = tfp_bnn.BayesianDense(OUT, estimator=estimator, use_bias=False,
                                  kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    a, b = rng.normal(size=(2, IN)).astype(np.float32)
    inputs = np.stack([a, b, a + b])
    layer(inputs)
    draws = 50
    with sampling.weight_draws(draws, seed=tf.constant([7, 8])):
        outputs = layer(np.tile(inputs, [draws, 1])).numpy().reshape(draws, 3, OUT)
    np.testing.assert_allclose(outputs[:, 2], outputs[:, 0] + outputs[:, 1], rtol=1e-5, atol=1e-5)
    assert outputs[:, 0].std(axis=0).min() > 0.1  # and the draws do differ


def test_single_mode_shares_one_draw_among_copies():
    layer = tfp_bnn.BayesianDense(OUT, estimator="reparameterization", kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    inputs = np.ones((1, IN), np.float32)
    copies = layer(np.tile(inputs, [50, 1])).numpy()
    np.testing.assert_array_equal(copies, np.tile(copies[:1], [50, 1]))
    with sampling.weight_draws(50, seed=tf.constant([0, 1])):
        draws = layer(np.tile(inputs, [50, 1])).numpy()
    assert len(np.unique(draws, axis=0)) == 50


@pytest.mark.parametrize("estimator", ["reparameterization", "flipout", "local_reparameterization"])
def test_weight_draws_are_a_function_of_the_seed(estimator, x):
    layer = tfp_bnn.BayesianDense(OUT, estimator=estimator, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    layer(x)

    def draws(seed):
        with sampling.weight_draws(8, seed=tf.constant(seed)):
            return layer(tf.tile(x, [8, 1])).numpy()

    np.testing.assert_array_equal(draws([4, 5]), draws([4, 5]))
    assert not np.allclose(draws([4, 5]), draws([4, 6]))


@pytest.mark.parametrize("estimator", ["reparameterization", "variational", "flipout", "local_reparameterization"])
def test_posterior_mean_mode_is_the_mean_network(estimator, x):
    layer = tfp_bnn.BayesianDense(OUT, estimator=estimator, activation="tanh",
                                  kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    layer(x)
    loc, _ = _posterior_moments(layer)
    expected = np.tanh(x.numpy().astype(np.float64) @ loc[: IN * OUT].reshape(IN, OUT) + loc[IN * OUT:])
    with sampling.posterior_mean():
        first, second = layer(x).numpy(), layer(x).numpy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, expected, rtol=1e-6, atol=1e-6)
    # Outside the context the layer samples again.
    assert not np.allclose(layer(x).numpy(), expected, atol=1e-3)


# -- BayesianConv2D ------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["flipout", "reparameterization"])
@pytest.mark.parametrize("padding, strides, expected", [
    ("valid", 1, (2, 7, 7, 4)), ("valid", 2, (2, 4, 4, 4)), ("same", 1, (2, 9, 9, 4)), ("same", 2, (2, 5, 5, 4)),
    ("valid", (1, 3), (2, 7, 3, 4)),
])
def test_conv2d_output_shapes(estimator, padding, strides, expected):
    images = tf.zeros([2, 9, 9, 3])
    layer = tfp_bnn.BayesianConv2D(4, 3, strides=strides, padding=padding, estimator=estimator)
    assert layer(images).shape == expected
    assert tf_keras.layers.Conv2D(4, 3, strides=strides, padding=padding)(images).shape == expected


def test_conv2d_attributes_are_those_of_keras_conv2d():
    # kernel_size is the spatial pair, before and after build, as on tf_keras.layers.Conv2D
    # (it had been the flat number of kernel weights after build).
    layer, keras_layer = tfp_bnn.BayesianConv2D(4, 3, strides=2), tf_keras.layers.Conv2D(4, 3, strides=2)
    for built in (False, True):
        if built:
            layer(tf.zeros([1, 9, 9, 3])), keras_layer(tf.zeros([1, 9, 9, 3]))
        assert (layer.filters, layer.kernel_size, layer.strides) == (4, (3, 3), (2, 2))
        assert (layer.kernel_size, layer.strides) == (keras_layer.kernel_size, keras_layer.strides)
    assert layer.num_kernel_weights == 3 * 3 * 3 * 4


@pytest.mark.parametrize("estimator", ["flipout", "reparameterization"])
def test_conv2d_weight_draws_and_posterior_mean(estimator, rng):
    layer = tfp_bnn.BayesianConv2D(4, 3, estimator=estimator, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    images = tf.constant(rng.normal(size=(2, 6, 6, 3)).astype(np.float32))
    layer(images)
    draws = 5
    with sampling.weight_draws(draws, seed=tf.constant([3, 4])):
        outputs = layer(tf.tile(images, [draws, 1, 1, 1])).numpy()
    assert outputs.shape == (draws * 2, 4, 4, 4)
    per_draw = outputs.reshape(draws, -1)
    assert len(np.unique(per_draw, axis=0)) == draws
    for i in range(draws):
        for j in range(i):
            assert np.abs(per_draw[i] - per_draw[j]).max() > 0.1

    loc, _ = _posterior_moments(layer)
    kernel, bias = loc[:108].reshape(3, 3, 3, 4), loc[108:]
    with sampling.posterior_mean():
        mean_output = layer(images).numpy()
    expected = tf.nn.convolution(images, kernel.astype(np.float32), padding="VALID").numpy() + bias
    np.testing.assert_allclose(mean_output, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("estimator", ["flipout", "reparameterization"])
def test_conv2d_weight_draws_have_the_posterior_variance(estimator, rng):
    layer = tfp_bnn.BayesianConv2D(2, 3, estimator=estimator, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    image = rng.normal(size=(1, 3, 3, 2)).astype(np.float32)  # one output pixel per filter
    layer(image)

    @tf.function
    def draws():
        with sampling.weight_draws(NUM_DRAWS, seed=tf.constant([5, 6])):
            return layer(tf.tile(image, [NUM_DRAWS, 1, 1, 1]))

    outputs = draws().numpy().astype(np.float64).reshape(NUM_DRAWS, 2)
    _, scale = _posterior_moments(layer)
    kernel_scale, bias_scale = scale[:36].reshape(3, 3, 2, 2), scale[36:]
    variance = np.einsum("hwc,hwcf->f", image[0].astype(np.float64) ** 2, kernel_scale**2) + bias_scale**2
    ratio = outputs.var(axis=0, ddof=1) / variance
    assert np.all(np.abs(ratio - 1) < 5 * np.sqrt(2.0 / (NUM_DRAWS - 1))), ratio


def test_conv2d_flipout_gives_an_example_one_kernel_in_training():
    # A constant image with "valid" padding shows every output pixel the same patch, so
    # pixels of one example agree iff they share one kernel W + dW * (r_n s_n^T); the
    # spatial mean then varies across examples like one pixel, not 1/9 of it.
    layer = tfp_bnn.BayesianConv2D(2, 3, use_bias=False, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    images = np.ones((200, 5, 5, 2), np.float32)  # 3 x 3 output pixels per filter
    layer(images)
    # The training path as fit runs it, in a graph: each execution draws a fresh dW (stateful
    # seeds), and 400 executions of one traced call cost what a few eager calls did.
    call = tf.function(lambda: layer(images))
    calls = [call().numpy().astype(np.float64) for _ in range(400)]  # training path, fresh dW each
    assert not np.allclose(calls[0], calls[1])  # the graph draws afresh at each execution

    for outputs in calls:
        np.testing.assert_allclose(outputs, np.broadcast_to(outputs[:, :1, :1], outputs.shape), atol=1e-5)
    _, scale = _posterior_moments(layer)
    # Given the call's dW, filter f of example n is W x + s_nf sum_c r_nc sum_hw dW_hwcf (x = 1), of
    # variance sum_c (sum_hw dW_hwcf)^2 over the signs, whose mean over dW is sum_hwc sigma_hwcf^2.
    variance = np.sum(scale.reshape(3, 3, 2, 2) ** 2, axis=(0, 1, 2))
    spatial_mean_variance = np.mean([outputs.mean(axis=(1, 2)).var(axis=0, ddof=1) for outputs in calls], axis=0)
    # Noise of the ratio: a chi-square of 2 degrees (one per channel, relative variance <= 1) per call,
    # and 200 examples per call, averaged over 400 calls.
    relative_se = np.sqrt((1 + 2 / 199) / len(calls))
    ratio = spatial_mean_variance / variance
    assert np.all(np.abs(ratio - 1) < 5 * relative_se), ratio


# -- heads -----------------------------------------------------------------------------

N = 7

HEADS = [
    # head, params_size, event shape, what tf.convert_to_tensor gives
    (lambda: heads.PointHead(2), 2, [2], "mean"),
    (lambda: heads.NormalHead(2), 4, [2], "mean"),
    (lambda: heads.HomoscedasticNormalHead(2), 2, [2], "mean"),
    (lambda: heads.StudentTHead(2), 4, [2], "mean"),
    (lambda: heads.PoissonHead(2), 2, [2], "mean"),
    (lambda: heads.BernoulliHead(), 1, [1], "mean"),  # P(y = 1), as a sigmoid output for Keras's metrics
    (lambda: heads.CategoricalHead(3), 3, [], "probs"),
    (lambda: heads.PointClassHead(3), 3, [], "probs"),
]


@pytest.mark.parametrize("make_head, params_size, event_shape, tensor", HEADS,
                         ids=[h[0]().__class__.__name__ for h in HEADS])
def test_head_shapes(make_head, params_size, event_shape, tensor, rng):
    head = make_head()
    assert head.params_size == params_size
    params = tf.constant(rng.normal(size=(N, params_size)).astype(np.float32))
    dist = head(params)
    assert dist.batch_shape == [N]
    assert dist.event_shape == event_shape
    assert dist.log_prob(tf.zeros([N, *event_shape], dist.dtype)).shape == (N,)
    value = tf.convert_to_tensor(dist).numpy()
    if tensor == "mean":
        np.testing.assert_allclose(value, dist.mean().numpy(), rtol=1e-6)
        assert value.shape == (N, *event_shape)
    else:
        assert value.shape == (N, 3)
        np.testing.assert_allclose(value.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=rf"takes {params_size} inputs per example, got {params_size + 1}: end the "
                                         r"network with a layer of units=head\.params_size"):
        head(tf.zeros([N, params_size + 1]))


def test_normal_head_maps_standardized_params_to_raw_units(rng):
    params = rng.normal(size=(N, 2)).astype(np.float32)
    m, s = 3.0, 2.5
    dist = heads.NormalHead(1, target_loc=m, target_scale=s)(tf.constant(params))
    sigma = 1e-3 + _softplus(params[:, 1:])
    np.testing.assert_allclose(dist.mean().numpy(), m + s * params[:, :1], rtol=1e-6)
    np.testing.assert_allclose(dist.stddev().numpy(), s * sigma, rtol=1e-5)
    # log_prob in raw units is the standardized one minus log(s).
    y = m + s * rng.normal(size=(N, 1))
    np.testing.assert_allclose(
        dist.log_prob(y.astype(np.float32)).numpy(),
        stats.norm.logpdf((y - m) / s, params[:, :1], sigma).sum(axis=1) - np.log(s),
        rtol=1e-5, atol=1e-5,
    )
    # One loc/scale per unit.
    two = heads.NormalHead(2, target_loc=[1.0, -1.0], target_scale=[10.0, 0.5])(tf.zeros([N, 4]))
    np.testing.assert_allclose(two.mean().numpy(), np.tile([1.0, -1.0], [N, 1]))
    np.testing.assert_allclose(two.stddev().numpy(), np.tile([10.0, 0.5], [N, 1]) * (1e-3 + np.log(2)), rtol=1e-6)


def test_other_heads_parameters(rng):
    params = rng.normal(size=(N, 2)).astype(np.float32)
    point = heads.PointHead(1, target_loc=1.0, target_scale=4.0)(tf.constant(params[:, :1]))
    np.testing.assert_allclose(point.mean().numpy(), 1.0 + 4.0 * params[:, :1], rtol=1e-6)
    np.testing.assert_allclose(point.stddev().numpy(), 4.0, rtol=1e-6)

    homoscedastic = heads.HomoscedasticNormalHead(1, initial_scale=0.3, target_scale=2.0)
    dist = homoscedastic(tf.constant(params[:, :1]))
    np.testing.assert_allclose(dist.stddev().numpy(), 0.6, rtol=1e-5)

    student = heads.StudentTHead(1, initial_df=5.0)(tf.constant(params))
    scale = 1e-3 + _softplus(params[:, 1:])
    np.testing.assert_allclose(student.variance().numpy(), scale**2 * 5.0 / 3.0, rtol=1e-5)

    poisson = heads.PoissonHead(1)(tf.constant(params[:, :1]))
    np.testing.assert_allclose(poisson.mean().numpy(), np.exp(params[:, :1]), rtol=1e-5)

    bernoulli = heads.BernoulliHead()
    p = 1 / (1 + np.exp(-params[:, :1].astype(np.float64)))
    dist = bernoulli(tf.constant(params[:, :1]))
    np.testing.assert_allclose(tf.convert_to_tensor(dist).numpy(), p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bernoulli.draw_statistics(dist)["probs"].numpy(), np.hstack([1 - p, p]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("untransformed_df", [-17.0, -40.0, -200.0])
def test_a_student_t_df_driven_towards_2_keeps_a_finite_variance_and_beta_nll(rng, untransformed_df):
    # df = 2 + softplus(u): below u ~ -16.6 float32 rounded df to exactly 2, an infinite variance.
    head = heads.StudentTHead(1)
    params = tf.constant(rng.normal(size=(N, 2)).astype(np.float32))
    head(params)
    head.untransformed_df.assign([untransformed_df])
    dist = head(params)
    assert np.all(dist.distribution.df.numpy() > 2.0)
    variance = head.draw_statistics(dist)["variance"].numpy()
    assert np.all(np.isfinite(variance)) and np.all(variance > 0)
    loss = tfp_bnn.BetaNegativeLogLikelihood(0.5)(rng.standard_cauchy(size=(N, 1)).astype(np.float32), dist)
    assert np.isfinite(float(loss))


def test_a_student_t_head_started_just_above_df_2_has_a_finite_variance(rng):
    dist = heads.StudentTHead(1, initial_df=2.0000001)(tf.constant(rng.normal(size=(N, 2)).astype(np.float32)))
    assert np.all(np.isfinite(dist.variance().numpy()))


def test_one_posterior_with_an_unseeded_initializer_instance_starts_every_layer_afresh():
    # make_regressor hands one factory to every layer; an unseeded Keras initializer
    # instance returns the same values on every call, so equal-shaped layers would start
    # from the same means unless each layer gets its own copy (both factory protocols).
    posterior = tfp_bnn.MeanFieldNormal(0.01, loc_initializer=tf_keras.initializers.RandomNormal(stddev=0.1))
    model = tfp_bnn.make_regressor((8,), hidden_units=(8, 8, 8), train_size=100, kernel_posterior=posterior)
    means = [layer.posterior.loc.numpy() for layer in model.layers if isinstance(layer, tfp_bnn.BayesianDense)]
    kernels = [m[:64] for m in means[1:3]]  # the two 8 x 8 kernels
    assert not np.allclose(kernels[0], kernels[1])
    assert np.std(kernels[0]) == pytest.approx(0.1, rel=0.3)  # still the initializer asked for

    def tfp_kernel_means(**kwargs):
        layers = [tfp.layers.DenseFlipout(OUT, **kwargs) for _ in range(2)]
        for layer in layers:
            layer(tf.ones([2, IN]))
        return [_weight(layer, "kernel_posterior_loc") for layer in layers]

    assert not np.allclose(*tfp_kernel_means(kernel_posterior_fn=posterior))
    # The trap (README): TFP's default posterior shares its initializer instances.
    np.testing.assert_array_equal(*tfp_kernel_means())


def test_bernoulli_probabilities_keep_both_tails():
    # 1 - sigmoid(20) is 0 in float32; P(y = 0) = sigmoid(-20) = 2.06e-9 is not.
    logits = np.array([[-20.0], [-10.0], [10.0], [20.0]], np.float32)
    head = heads.BernoulliHead()
    dist = head(tf.constant(logits))
    probs = head.draw_statistics(dist)["probs"].numpy()
    exact = 1 / (1 + np.exp(np.hstack([logits, -logits]).astype(np.float64)))  # [P(0), P(1)]
    np.testing.assert_allclose(probs, exact, rtol=1e-5)
    # predict's probabilities agree with log_likelihoods' log_prob where P(0) is the small side.
    np.testing.assert_allclose(np.log(probs[2:, 0]), dist.distribution.log_prob(np.zeros((4, 1))).numpy()[2:, 0],
                               rtol=1e-5)


def test_full_covariance_posterior_starts_at_its_initial_scale():
    for scale in (1e-3, 1e-5):
        q = tfp_bnn.FullCovarianceNormal(scale).make_layer(3, 1, kernel_shape=(3, 1)).distribution()
        np.testing.assert_allclose(np.diag(q.scale.to_dense().numpy()), scale, rtol=1e-5)
    with pytest.raises(ValueError, match=r"initial_scale must be above 1e-06, the smallest diagonal of L"):
        tfp_bnn.FullCovarianceNormal(1e-6)  # the bijector's floor: every draw and the KL were NaN
    # float64 layers too (the bijector's shift was float32: a dtype error at the first draw).
    layer = tfp_bnn.BayesianDense(2, estimator="variational", kernel_posterior=tfp_bnn.FullCovarianceNormal(),
                                  kl_weight=0.1, dtype="float64")
    assert layer(tf.zeros([2, 3], tf.float64)).dtype == tf.float64 and layer.losses[0].dtype == tf.float64
    np.testing.assert_allclose(np.diag(layer.posterior.distribution().scale.to_dense().numpy()), 1e-3, rtol=1e-12)


def test_posterior_means_in_tfp_dense_variational_have_the_glorot_scale_of_the_kernel():
    # DenseVariational passes sizes only: the fans are those of [in, units], not of a flat in * units.
    layer = tfp.layers.DenseVariational(100, tfp_bnn.MeanFieldNormal(), tfp_bnn.NormalPrior(1.0))
    layer(tf.zeros([2, 50]))
    kernel_means = layer.trainable_weights[0].numpy()[: 50 * 100]
    limit = np.sqrt(6 / (50 + 100))
    assert kernel_means.max() <= limit and kernel_means.max() > 0.95 * limit


# -- BayesianConv2D against tf_keras.layers.Conv2D: input checks, compute_output_shape, data_format --
@pytest.mark.parametrize("channels", [6, 5])
def test_conv2d_refuses_another_channel_count_after_build(channels):
    # 6 = 2 x 3 channels had run as a 2-group convolution, silently; 5 failed inside TF.
    layer = tfp_bnn.BayesianConv2D(4, 3, kl_weight=1e-3)
    layer(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 3"):
        with sampling.posterior_mean():
            layer(np.zeros((2, 8, 8, channels), np.float32))


@pytest.mark.parametrize("shape", [(None, 11, 10, 3), [2, 11, 10, 3], tf.TensorShape([None, None, 10, 3]),
                                   (None, 8, 8, None), (None, 2, 2, 3)])
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3), dict(kernel_size=(2, 3), strides=2, padding="same"),
    dict(kernel_size=3, dilation_rate=(2, 1)), dict(kernel_size=(1, 3), strides=(1, 3), padding="same"),
])
def test_conv2d_compute_output_shape_is_conv2d_s_unbuilt_and_built(shape, kwargs):
    layer, keras_layer = tfp_bnn.BayesianConv2D(4, **kwargs), tf_keras.layers.Conv2D(4, **kwargs)
    try:
        expected = keras_layer.compute_output_shape(shape)
    except ValueError:  # inputs smaller than the dilated kernel: both refuse
        with pytest.raises(ValueError, match=r"smaller than the kernel"):
            layer.compute_output_shape(shape)
        return
    assert layer.compute_output_shape(shape) == expected
    assert not layer.built  # no weights made, as Conv2D
    if all(d is None or d > 0 for d in expected[1:3]):  # TF's CPU convolution mishandles empty outputs
        layer(np.zeros([7 if d is None else d for d in tf.TensorShape(shape)[:-1]] + [3], np.float32))
        assert layer.compute_output_shape(shape) == expected


def test_conv2d_compute_output_shape_draws_no_weights():
    layer = tfp_bnn.BayesianConv2D(4, 3)
    layer(np.zeros((1, 8, 8, 3), np.float32))
    record = []
    with sampling.weight_draws(3, seed=tf.constant([1, 2]), record=record):
        layer.compute_output_shape((None, 8, 8, 3))
    assert record == []


@pytest.mark.parametrize("value", [np.int64(3), np.int32(2)])
def test_conv2d_takes_numpy_integers_as_kernel_size_and_strides(value):
    layer = tfp_bnn.BayesianConv2D(np.int64(4), value, strides=value)
    assert layer.kernel_size == layer.strides == (int(value), int(value))


def test_conv2d_kernel_size_of_the_wrong_kind_is_named():
    with pytest.raises(ValueError, match=r"kernel_size must be a positive int or a pair of them, got 3\.0\."):
        tfp_bnn.BayesianConv2D(4, 3.0)


def test_conv2d_data_format_channels_last_is_taken_and_channels_first_refused():
    layer = tfp_bnn.BayesianConv2D(4, 3, data_format="channels_last")
    assert layer(np.zeros((2, 8, 8, 3), np.float32)).shape == (2, 6, 6, 4)
    assert type(layer).from_config(layer.get_config()).data_format == "channels_last"
    with pytest.raises(ValueError, match=r"BayesianConv2D takes inputs channels last, got data_format 'channels_first'"):
        tfp_bnn.BayesianConv2D(4, 3, data_format="channels_first")
    tf_keras.backend.set_image_data_format("channels_first")
    try:  # Conv2D reads (2, 3, 8, 8) as 3 channels; BayesianConv2D had read 8, silently
        with pytest.raises(ValueError, match=r"tf_keras\.backend\.image_data_format\(\)"):
            tfp_bnn.BayesianConv2D(4, 3)
    finally:
        tf_keras.backend.set_image_data_format("channels_last")


# -- BayesianConv1D and BayesianConv3D: the same layer with 1 and 3 spatial axes ------------------

CONV_RANKS = [
    (tfp_bnn.BayesianConv1D, tf_keras.layers.Conv1D, (2, 11, 3)),
    (tfp_bnn.BayesianConv3D, tf_keras.layers.Conv3D, (2, 7, 6, 5, 3)),
]


@pytest.mark.parametrize("cls, keras_cls, shape", CONV_RANKS)
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3), dict(kernel_size=2, strides=2, padding="same"), dict(kernel_size=3, dilation_rate=2),
])
def test_conv_1d_3d_shapes_are_keras_s(cls, keras_cls, shape, kwargs):
    layer, keras_layer = cls(4, **kwargs), keras_cls(4, **kwargs)
    inputs = np.zeros(shape, np.float32)
    expected = keras_layer(inputs).shape
    assert layer.compute_output_shape((None, *shape[1:])) == keras_layer.compute_output_shape((None, *shape[1:]))
    assert layer(inputs).shape == expected
    assert (layer.kernel_size, layer.strides, layer.dilation_rate) == (
        keras_layer.kernel_size, keras_layer.strides, keras_layer.dilation_rate)
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize("cls, keras_cls, shape", CONV_RANKS)
def test_conv_1d_3d_posterior_mean_is_keras_conv_with_the_mean_kernel(cls, keras_cls, shape, rng):
    layer = cls(4, 2, padding="same", kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    inputs = rng.normal(size=shape).astype(np.float32)
    layer(inputs)
    loc, _ = _posterior_moments(layer)
    keras_layer = keras_cls(4, 2, padding="same")
    keras_layer(inputs)
    keras_layer.set_weights([loc[: layer.num_kernel_weights].reshape(layer.kernel_shape), loc[layer.num_kernel_weights:]])
    with sampling.posterior_mean():
        np.testing.assert_allclose(layer(inputs), keras_layer(inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls, keras_cls, shape", CONV_RANKS)
@pytest.mark.parametrize("estimator", ["flipout", "reparameterization"])
def test_conv_1d_3d_draw_t_is_the_convolution_with_kernel_t(cls, keras_cls, shape, estimator, rng):
    layer = cls(2, 2, estimator=estimator, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    inputs = rng.normal(size=shape).astype(np.float32)
    layer(inputs)
    draws, record = 3, []
    with sampling.weight_draws(draws, seed=tf.constant([3, 4]), record=record):
        outputs = layer(sampling.stack_draws(inputs, draws)).numpy().reshape(draws, *layer.compute_output_shape(shape))
    params = record[0].numpy()
    for t in range(draws):
        kernel = params[t, : layer.num_kernel_weights].reshape(layer.kernel_shape)
        expected = tf.nn.convolution(inputs, kernel, padding="VALID").numpy() + params[t, layer.num_kernel_weights:]
        np.testing.assert_allclose(outputs[t], expected, rtol=1e-4, atol=1e-5)
    assert np.abs(outputs[0] - outputs[1]).max() > 0.1  # independent draws


def test_conv1d_regressor_predicts_with_epistemic_variance_and_saves(tmp_path, rng):
    # A sequence model end to end: fit, predict (T draws in one graph), .keras round trip.
    x = rng.normal(size=(256, 12, 1)).astype(np.float32)
    y = x[:, :, 0].mean(axis=1, keepdims=True) + 0.1 * rng.normal(size=(256, 1)).astype(np.float32)
    inputs = tf_keras.Input((12, 1))
    h = tfp_bnn.BayesianConv1D(4, 3, activation="relu", kl_weight=1 / 256)(inputs)
    h = tf_keras.layers.Flatten()(h)
    model = tfp_bnn.BayesianModel(inputs, heads.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=1 / 256)(h)))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    result = tfp_bnn.predict(model, x[:8], num_samples=50, seed=0)
    assert np.all(result.epistemic_variance > 1e-6)
    model.save(tmp_path / "conv1d.keras")
    loaded = tf_keras.models.load_model(tmp_path / "conv1d.keras")
    again = tfp_bnn.predict(loaded, x[:8], num_samples=50, seed=0)
    np.testing.assert_array_equal(again.mean, result.mean)
    np.testing.assert_array_equal(again.epistemic_variance, result.epistemic_variance)


@pytest.mark.parametrize("argument", ["convert_to_tensor_fn", "make_distribution_fn"])
def test_a_head_refuses_distribution_lambda_arguments_it_would_ignore(argument):
    with pytest.raises(TypeError, match=argument):
        heads.NormalHead(1, **{argument: tfp.distributions.Distribution.sample})


def test_help_of_a_head_does_not_promise_distribution_lambda_defaults():
    doc = inspect.getdoc(heads.NormalHead.__init__)
    assert "Default value: `tfd.Distribution.sample`" not in doc


def test_configs_that_carry_them_still_load():
    config = heads.NormalHead(1).get_config()
    config["convert_to_tensor_fn"] = "sample"
    head = heads.NormalHead.from_config(config)
    assert np.array_equal(tf.convert_to_tensor(head(tf.zeros([2, 2]))), np.zeros((2, 1)))
    clone = tf_keras.models.clone_model(tfp_bnn.make_regressor((1,), regime="probabilistic"))
    assert isinstance(clone.layers[-1], heads.NormalHead)


@pytest.mark.parametrize("factory", [tfp_bnn.MeanFieldNormal(), tfp_bnn.TrainableNormalPrior()])
def test_prior_and_posterior_layers_refuse_what_they_fix_and_load_configs_that_carry_it(factory):
    # They were dropped silently: a posterior layer given convert_to_tensor_fn=mean still sampled.
    layer = factory(3, 1, "float32")
    with pytest.raises(TypeError, match="takes no convert_to_tensor_fn: it returns distribution"):
        type(layer)(**layer.get_config(), convert_to_tensor_fn=tfp.distributions.Distribution.mean)
    loaded = type(layer).from_config({**layer.get_config(), "convert_to_tensor_fn": "mean"})
    assert loaded.size == layer.size == 4


@pytest.mark.parametrize("kwargs", [
    dict(kernel_prior=tfp_bnn.MeanFieldNormal()),
    dict(kernel_prior=tfp_bnn.FullCovarianceNormal()),
    dict(kernel_posterior=tfp_bnn.NormalPrior()),
    dict(kernel_posterior=tfp_bnn.ScaleMixturePrior()),
    dict(kernel_posterior=tfp_bnn.TrainableNormalPrior()),
])
@pytest.mark.parametrize("layer", [lambda **kw: tfp_bnn.BayesianDense(2, **kw),
                                   lambda **kw: tfp_bnn.BayesianConv2D(2, 3, **kw)])
def test_swapped_prior_and_posterior_are_refused(layer, kwargs):
    with pytest.raises(ValueError, match="swapped"):
        layer(**kwargs)
    with pytest.raises(ValueError, match="swapped"):
        tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=10, **kwargs)


def test_each_kind_in_its_place_is_accepted():
    for prior in (tfp_bnn.NormalPrior(), tfp_bnn.ScaleMixturePrior(), tfp_bnn.TrainableNormalPrior()):
        for posterior in (tfp_bnn.MeanFieldNormal(), tfp_bnn.FullCovarianceNormal()):
            tfp_bnn.BayesianDense(2, estimator="variational", kernel_prior=prior, kernel_posterior=posterior)
