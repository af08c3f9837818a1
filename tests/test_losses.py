"""The training losses of the heads: the NLL and the beta-weighted NLL (Seitzer et al. 2022)."""

import threading

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn
from tfp_bnn import heads

tfd = tfp.distributions


@pytest.fixture
def regression(rng):
    """A batch of 64 targets with two units, a Normal head's inputs for them (varied scales)."""
    params = rng.normal(size=(64, 4)).astype(np.float32)
    params[:, 2:] *= 2.0  # raw scales from ~0.05 to ~4: the weights differ a lot
    y = rng.normal(size=(64, 2)).astype(np.float32)
    return params, y


def _loss_and_gradient(loss, head, params, y):
    params = tf.constant(params)
    head(params)  # builds it
    with tf.GradientTape() as tape:
        tape.watch(params)
        dist = head._make_distribution(params)  # what the layer computes
        value = loss.call(y, dist)
        total = tf.reduce_sum(value)
    return value.numpy(), tape.gradient(total, params).numpy(), dist


def test_beta_zero_is_the_negative_log_likelihood(regression):
    params, y = regression
    head = heads.NormalHead(2, target_loc=[1.0, -1.0], target_scale=[2.0, 0.5])
    nll, nll_grad, _ = _loss_and_gradient(heads.NegativeLogLikelihood(), head, params, y)
    beta, beta_grad, _ = _loss_and_gradient(heads.BetaNegativeLogLikelihood(beta=0.0), head, params, y)
    assert nll.shape == beta.shape == (64,)
    np.testing.assert_allclose(beta, nll, rtol=1e-6)
    np.testing.assert_allclose(beta_grad, nll_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_constant_variance_gives_the_negative_log_likelihood(rng, beta):
    # Homoscedastic head: every weight is 1, whatever beta.
    head = heads.HomoscedasticNormalHead(1, initial_scale=0.7, target_scale=3.0)
    params, y = rng.normal(size=(32, 1)).astype(np.float32), rng.normal(size=(32, 1)).astype(np.float32)
    nll, _, _ = _loss_and_gradient(heads.NegativeLogLikelihood(), head, params, y)
    weighted, _, _ = _loss_and_gradient(heads.BetaNegativeLogLikelihood(beta), head, params, y)
    np.testing.assert_allclose(weighted, nll, rtol=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_gradient_of_the_mean_scales_as_sigma_to_two_beta_minus_two(regression, beta):
    params, y = regression
    head = heads.NormalHead(2, target_scale=[2.0, 0.5])
    _, grad, dist = _loss_and_gradient(heads.BetaNegativeLogLikelihood(beta), head, params, y)
    normal = dist.distribution
    sigma, mu = normal.scale.numpy(), normal.loc.numpy()
    factor = np.asarray([2.0, 0.5])  # d(mu) / d(network's loc), in original units
    weight = sigma ** (2 * beta) / np.mean(sigma ** (2 * beta), axis=0)
    expected = weight * (mu - y) / sigma**2 * factor
    np.testing.assert_allclose(grad[:, :2], expected, rtol=1e-4, atol=1e-6)
    if beta == 1.0:
        # Mean squared error's gradient, up to one factor per target.
        ratio = grad[:, :2] / (mu - y)
        np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1], ratio.shape), rtol=1e-4)


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_the_variance_is_still_fitted_to_the_squared_error(rng, beta):
    # Where sigma^2 equals the squared residual, the gradient of the scale vanishes.
    head = heads.NormalHead(1, scale_floor=0.0)
    loc = rng.normal(size=(16, 1)).astype(np.float32)
    sigma = rng.uniform(0.2, 3.0, size=(16, 1)).astype(np.float32)
    y = loc + sigma * rng.choice([-1.0, 1.0], size=(16, 1)).astype(np.float32)
    raw_scale = np.log(np.expm1(sigma))  # softplus inverse
    _, grad, _ = _loss_and_gradient(heads.BetaNegativeLogLikelihood(beta), head, np.concatenate([loc, raw_scale], 1), y)
    np.testing.assert_allclose(grad[:, 1], 0.0, atol=1e-5)
    # ... and elsewhere it points towards it.
    _, grad, _ = _loss_and_gradient(
        heads.BetaNegativeLogLikelihood(beta), head, np.concatenate([loc, raw_scale + 0.5], 1), y)
    assert np.all(grad[:, 1] > 0)


def test_weights_average_to_one_so_the_loss_keeps_the_nll_scale(regression):
    params, y = regression
    dist = heads.NormalHead(2)(tf.constant(params))  # as the model outputs it (a tensor-coercible wrapper)
    nll = -dist.distribution.log_prob(y).numpy()
    sigma2 = dist.distribution.variance().numpy()
    weighted = heads.BetaNegativeLogLikelihood(1.0).call(y, dist).numpy()
    np.testing.assert_allclose(weighted, np.sum(sigma2 / sigma2.mean(0) * nll, axis=1), rtol=1e-5)


def test_beta_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\]"):
        heads.BetaNegativeLogLikelihood(beta=1.5)


def test_wrong_target_shape_names_both_shapes(regression):
    params, _ = regression
    dist = heads.NormalHead(2)(tf.constant(params))
    with pytest.raises(ValueError, match=r"shape \(N, 3\).*\(N, 2\)"):
        heads.BetaNegativeLogLikelihood()(np.zeros((64, 3), np.float32), dist)


def test_fit_with_the_beta_loss_recovers_the_mean_and_the_noise(rng):
    # y = 2x + noise whose scale grows linearly with x; beta = 1 fits both.
    x = rng.uniform(-1, 1, size=(1024, 1)).astype(np.float32)
    noise_scale = lambda x: 0.1 + 0.3 * (x + 1)  # noqa: E731
    y = 2 * x + noise_scale(x) * rng.normal(size=x.shape).astype(np.float32)
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.make_regressor((1,), hidden_units=(16,), regime="probabilistic", head=heads.NormalHead(1))
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01), loss=heads.BetaNegativeLogLikelihood(1.0))
    model.fit(x, y, batch_size=64, epochs=100, verbose=0)
    grid = np.array([[-0.8], [0.0], [0.8]], np.float32)
    dist = model(grid)
    np.testing.assert_allclose(dist.mean().numpy()[:, 0], 2 * grid[:, 0], atol=0.1)
    np.testing.assert_allclose(dist.stddev().numpy()[:, 0], noise_scale(grid[:, 0]), atol=0.05)


@pytest.mark.parametrize("head, beta", [(heads.NormalHead, 0.0), (heads.HomoscedasticNormalHead, 1.0)])
def test_fit_logs_the_same_loss_as_the_nll_where_the_weights_are_one(rng, head, beta):
    # Inside fit the output is a graph-mode distribution wrapper: the loss must see per-target terms there too.
    x = rng.normal(size=(96, 3)).astype(np.float32)
    y = x[:, :1] + 0.3 * rng.normal(size=(96, 1)).astype(np.float32)
    histories = []
    for loss in (None, heads.BetaNegativeLogLikelihood(beta)):
        tf_keras.utils.set_random_seed(1)
        model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=len(x), head=head(1))
        model.compile(optimizer="adam", loss=loss)
        histories.append(model.fit(x, y, batch_size=32, epochs=2, verbose=0).history)
    np.testing.assert_allclose(histories[1]["nll"], histories[0]["nll"], rtol=1e-5)
    np.testing.assert_allclose(histories[1]["loss"], histories[0]["loss"], rtol=1e-5)
    assert 0.5 < histories[0]["nll"][-1] < 5.0  # per example, not summed over the batch


def _binary_classifier():
    return tfp_bnn.make_regressor((2,), regime="probabilistic", head=heads.BernoulliHead(), hidden_units=(8,))


@pytest.mark.parametrize("make", [
    lambda: tfp_bnn.make_classifier((2,), 3, regime="probabilistic", hidden_units=(8,)),
    lambda: tfp_bnn.make_classifier((2,), 3, regime="deterministic", hidden_units=(8,)),
    _binary_classifier,
], ids=["CategoricalHead", "PointClassHead", "BernoulliHead"])
def test_fractional_sample_and_class_weights_of_a_classifier_are_not_truncated(rng, make):
    # Keras casts sample_weight to the output's dtype: an int32 distribution made 0.5 a 0 and 1.7 a 1.
    x = rng.normal(size=(64, 2)).astype(np.float32)
    model = make()
    num_classes = getattr(model.head, "num_classes", 2)
    y = rng.integers(0, num_classes, size=64)
    model.compile(optimizer="adam", weighted_metrics=["accuracy"])
    probabilities = model.predict(x, verbose=0)
    if probabilities.shape[1] == 1:
        probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
    per_example = -np.log(probabilities[np.arange(64), y])
    weights = rng.uniform(0.0, 2.0, size=64).astype(np.float32)
    logs = model.evaluate(x, y, sample_weight=weights, batch_size=64, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["nll"], np.mean(weights * per_example), rtol=1e-5)
    correct = probabilities.argmax(axis=1) == y
    np.testing.assert_allclose(logs["accuracy"], np.sum(weights * correct) / np.sum(weights), rtol=1e-5)
    history = model.fit(x, y, class_weight={k: 0.5 for k in range(num_classes)}, epochs=1, batch_size=64, verbose=0)
    np.testing.assert_allclose(history.history["nll"][0], 0.5 * per_example.mean(), rtol=1e-5)


@pytest.mark.parametrize("dtype, num_classes, label", [("float16", 3000, 2049), ("bfloat16", 300, 257)])
def test_a_half_precision_categorical_head_keeps_every_label_exact(dtype, num_classes, label):
    """The labels are floats (so fractional sample weights survive Keras's cast), but float16
    holds integers exactly only to 2048 and bfloat16 to 256: label 2049 became 2048."""
    logits = np.zeros((1, num_classes), np.float32)
    logits[0, label] = 5.0
    dist = tfp_bnn.CategoricalHead(num_classes, dtype=dtype)(tf.constant(logits, dtype))
    nll = float(tfp_bnn.NegativeLogLikelihood()(np.array([label]), dist))
    expected = -float(tf.nn.log_softmax(logits)[0, label])
    assert abs(nll - expected) < 0.05, (nll, expected)


@pytest.mark.parametrize("head, y", [
    (heads.CategoricalHead(3), [0.0, 1.0, 2.0]),
    (heads.PointClassHead(3), [0.0, 1.0, 2.0]),
    (heads.BernoulliHead(), [0.0, 1.0, 1.0]),
])
def test_the_beta_nll_refuses_classification_heads(head, y):
    dist = head(tf.constant([[0.0, 1.0, 5.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])[:, : head.params_size])
    with pytest.raises(TypeError, match="regression head"):
        heads.BetaNegativeLogLikelihood(1.0)(tf.constant(y), dist)


def test_the_beta_weights_average_over_the_examples_as_the_sample_weights_count_them(rng):
    # Rows of sample_weight 0 (say, missing targets) rescaled the others by their own predicted variance.
    params = np.c_[rng.normal(size=(8, 1)), rng.normal(size=(8, 1))].astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    loud = np.c_[np.zeros((8, 1)), np.full((8, 1), 5.0)].astype(np.float32)  # sigma ~5
    head, loss = heads.NormalHead(1), heads.BetaNegativeLogLikelihood(1.0)
    alone = float(loss(y, head(params)))
    padded = float(loss(np.r_[y, y], head(np.r_[params, loud]), sample_weight=np.r_[np.ones(8), np.zeros(8)]))
    np.testing.assert_allclose(padded, alone * 8 / 16, rtol=1e-5)  # Keras's mean over the 16 rows, as the NLL's
    w = rng.uniform(0.1, 2.0, size=8).astype(np.float32)
    dist = head(params)
    nll, var = -dist.distribution.log_prob(y).numpy()[:, 0], dist.distribution.variance().numpy()[:, 0]
    expected = np.sum(w * var / (np.sum(w * var) / np.sum(w)) * nll) / 8
    np.testing.assert_allclose(float(loss(y, dist, sample_weight=w)), expected, rtol=1e-5)
    assert np.isfinite(float(loss(y, dist, sample_weight=np.zeros(8, np.float32))))


def test_an_ensemble_member_gets_the_beta_loss_of_its_own_predictions(rng):
    # The weights were normalised over all members' stacked rows: a member's gradient
    # changed with the variance another member predicts.
    x = rng.normal(size=(32, 2)).astype(np.float32)
    y = rng.normal(size=32).astype(np.float32)
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.make_regressor((2,), hidden_units=(8,), inference="ensemble", num_members=3)
    model.compile(optimizer=tf_keras.optimizers.SGD(0.0), loss=heads.BetaNegativeLogLikelihood(1.0))
    last = [layer for layer in model.layers if isinstance(layer, tfp_bnn.EnsembleDense)][-1]

    def member_1_gradient():
        with tf.GradientTape() as tape:
            loss = model._step((x, y), training=True)[-1]
        return tape.gradient(loss, last.kernel).numpy()[1]

    before = member_1_gradient()
    bias = last.bias.numpy()
    bias[0, 1] += 4.0  # member 0's predicted scale ~7x larger
    last.bias.assign(bias)
    np.testing.assert_allclose(member_1_gradient(), before, rtol=1e-5, atol=1e-8)


def test_one_beta_loss_called_from_two_threads_weighs_each_call_by_its_own_sample_weight(rng, monkeypatch):
    # The sample_weight of a call was kept on the loss object: another thread's call in the
    # meantime (models sharing the loss, fitted in threads) replaced it (or reset it to None).
    params = np.c_[rng.normal(size=(16, 1)), np.r_[np.zeros(8), np.full(8, 5.0)]].astype(np.float32)
    y = rng.normal(size=(16, 1)).astype(np.float32)
    w = np.r_[np.ones(8), np.zeros(8)].astype(np.float32)
    loss = heads.BetaNegativeLogLikelihood(1.0)
    dist = heads.NormalHead(1)(params)
    weighted, plain = float(loss(y, dist, sample_weight=w)), float(loss(y, dist))
    original, other = heads._distribution_of, {}

    def another_thread_calls_meanwhile(y_pred, name):
        if threading.current_thread() is threading.main_thread() and not other:
            thread = threading.Thread(target=lambda: other.setdefault("plain", float(loss(y, dist))))
            thread.start()
            thread.join()
        return original(y_pred, name)

    monkeypatch.setattr(heads, "_distribution_of", another_thread_calls_meanwhile)
    assert float(loss(y, dist, sample_weight=w)) == pytest.approx(weighted, rel=1e-6)
    assert other["plain"] == pytest.approx(plain, rel=1e-6)


def test_a_per_step_nll_with_reduction_sum_or_none_is_not_scaled_by_the_steps():
    # The factor L makes Keras's mean over N * L labels the mean joint NLL; reduction "sum" and
    # "none" (tf.nn.compute_average_loss in a custom loop) sum over the labels already.
    import tensorflow as tf
    import tf_keras
    x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, size=(8, 5)).astype(np.float32)
    inputs = tf_keras.Input((5, 3))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(3)(tf_keras.layers.Dense(3)(inputs)))
    dist = model(x)
    per_step = -dist.tensor_distribution.log_prob(y).numpy()
    joint = per_step.sum(axis=1)
    np.testing.assert_allclose(float(tfp_bnn.NegativeLogLikelihood()(y, dist)), joint.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        float(tfp_bnn.NegativeLogLikelihood(reduction="sum")(y, dist)), joint.sum(), rtol=1e-5)
    none = tfp_bnn.NegativeLogLikelihood(reduction="none")(y, dist)
    np.testing.assert_allclose(none.numpy(), per_step, rtol=1e-5)
    np.testing.assert_allclose(float(tf.nn.compute_average_loss(none, global_batch_size=8)), joint.mean(), rtol=1e-5)
