"""MC dropout and deep ensembles (tfp_bnn.baselines) through the same prediction API as the BNNs."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import sampling
from tfp_bnn.baselines import EnsembleDense, MCDropout

NUM_TRAIN = 256


def _sine_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (NUM_TRAIN, 1)).astype("float32")
    y = (np.sin(3 * x[:, 0]) + 0.1 * rng.normal(size=NUM_TRAIN)).astype("float32")
    return x, y


def _trained_regressor(inference, epochs=150, **kwargs):
    x, y = _sine_data()
    model = tfp_bnn.make_regressor((1,), hidden_units=(32,), train_size=NUM_TRAIN, inference=inference, **kwargs)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="module")
def mc_dropout_regressor():
    tf_keras.utils.set_random_seed(0)
    return _trained_regressor("mc_dropout", dropout_rate=0.1)


@pytest.fixture(scope="module")
def ensemble_regressor():
    tf_keras.utils.set_random_seed(0)
    return _trained_regressor("ensemble", num_members=4)


# -- MCDropout -------------------------------------------------------------------------------------------


def test_mc_dropout_is_on_outside_training_and_drops_at_its_rate():
    layer = MCDropout(0.3)
    outputs = layer(tf.ones([2000, 10]), training=False).numpy()
    assert abs(np.mean(outputs == 0) - 0.3) < 0.02
    np.testing.assert_allclose(outputs[outputs != 0], 1 / 0.7, rtol=1e-6)  # inverted dropout keeps the mean


def test_mc_dropout_draws_independent_masks_per_copy_and_repeats_with_a_seed():
    layer = MCDropout(0.5)
    stacked = tf.ones([8 * 4, 6])  # T = 8 copies of a batch of 4

    def masks(seed):
        with sampling.weight_draws(8, seed=tf.constant([seed, 0])):
            return tf.reshape(layer(stacked), [8, 4, 6]).numpy() != 0

    first = masks(1)
    assert len({m.tobytes() for m in first}) == 8  # every copy has its own mask
    np.testing.assert_array_equal(first, masks(1))
    assert not np.array_equal(first, masks(2))


@pytest.mark.parametrize("rate", [1.0, -0.1, float("nan"), True, "0.5"])
def test_mc_dropout_refuses_a_rate_outside_0_1_when_built(rate):
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
        MCDropout(rate)
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
        tfp_bnn.make_regressor((1,), inference="mc_dropout", dropout_rate=rate, train_size=10)


def test_a_numpy_float32_dropout_rate_builds_and_trains():
    # Keras's L2 refused the weight decay derived from it ("not a valid regularization penalty number").
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), inference="mc_dropout", dropout_rate=np.float32(0.1),
                                   train_size=8)
    model.compile(tf_keras.optimizers.Adam(0.01))
    assert np.isfinite(model.fit(np.ones((8, 1)), np.ones(8), epochs=1, verbose=0).history["loss"][0])


def test_mc_dropout_is_the_identity_under_posterior_mean():
    x = tf.random.normal([5, 3])
    with sampling.posterior_mean():
        np.testing.assert_array_equal(MCDropout(0.5)(x).numpy(), x.numpy())


# -- EnsembleDense ---------------------------------------------------------------------------------------


def test_ensemble_members_start_from_independent_initialisations_of_the_right_scale():
    layer = EnsembleDense(64, num_members=3)
    layer.build((None, 32))
    kernels = layer.kernel.numpy()
    assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])
    limit = np.sqrt(6 / (32 + 64))  # glorot_uniform of one member's [32, 64]
    assert kernels.max() <= limit and kernels.max() > 0.9 * limit


def test_a_seeded_initializer_still_starts_every_member_from_its_own_weights():
    def kernels():
        layer = EnsembleDense(8, num_members=3, kernel_initializer=tf_keras.initializers.GlorotUniform(seed=1),
                              bias_initializer=tf_keras.initializers.RandomNormal(seed=2))
        layer.build((None, 4))
        return layer.kernel.numpy(), layer.bias.numpy()

    (kernel, bias), (again, bias_again) = kernels(), kernels()
    for members in (kernel, bias):  # one seed for all would be one network three times
        assert not np.allclose(members[0], members[1]) and not np.allclose(members[1], members[2])
    np.testing.assert_array_equal(kernel, again)  # and the seed still makes it reproducible
    np.testing.assert_array_equal(bias, bias_again)
    np.testing.assert_array_equal(kernel[0], tf_keras.initializers.GlorotUniform(seed=1)((4, 8)))


def test_a_plain_function_initializer_is_called_for_every_member():
    layer = EnsembleDense(2, num_members=3, kernel_initializer=lambda shape, dtype=None: tf.fill(shape, 0.5))
    layer.build((None, 4))  # it has no config to copy; it had failed to serialize
    np.testing.assert_array_equal(layer.kernel.numpy(), np.full((3, 4, 2), 0.5))


def test_activity_regularizer_survives_the_config_as_in_dense():
    # Its loss term would otherwise vanish from training after a save and load.
    for layer, other_losses in ((EnsembleDense(2, num_members=2, activity_regularizer="l2"), 0),
                                (tfp_bnn.BayesianDense(2, kl_weight=0.1, activity_regularizer="l2"), 1)):
        rebuilt = type(layer).from_config(layer.get_config())
        assert isinstance(rebuilt.activity_regularizer, tf_keras.regularizers.L2)
        rebuilt(tf.ones([3, 4]))
        assert len(rebuilt.losses) == other_losses + 1


def test_ensemble_draw_t_is_member_t_mod_m():
    layer = EnsembleDense(2, num_members=3, bias_initializer="random_normal")
    x = tf.random.normal([4, 5])
    layer.build(x.shape)
    with sampling.weight_draws(6):
        y = tf.reshape(layer(tf.tile(x, [6, 1])), [6, 4, 2]).numpy()
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    for t in range(6):
        np.testing.assert_allclose(y[t], x.numpy() @ kernel[t % 3] + bias[t % 3], rtol=1e-5, atol=1e-6)


def test_a_plain_call_sends_row_n_through_member_n_mod_m():
    layer = EnsembleDense(2, num_members=3)
    x = tf.random.normal([7, 5])
    y = layer(x).numpy()
    for n in range(7):
        np.testing.assert_allclose(y[n], x.numpy()[n] @ layer.kernel.numpy()[n % 3], rtol=1e-5, atol=1e-6)


def test_ensemble_refuses_draws_that_are_not_a_multiple_of_members_and_the_posterior_mean():
    layer = EnsembleDense(2, num_members=3)
    layer(tf.zeros([1, 2]))
    with pytest.raises(ValueError, match="multiple of 3"), sampling.weight_draws(4):
        layer(tf.zeros([4, 2]))
    with pytest.raises(ValueError, match="no posterior-mean network"), sampling.posterior_mean():
        layer(tf.zeros([1, 2]))


# -- models: fit, predict, the uncertainty split ------------------------------------------------------


def test_fit_trains_every_ensemble_member_on_the_data(ensemble_regressor):
    x, y = _sine_data(seed=1)
    result = tfp_bnn.predict(ensemble_regressor, x, num_samples=4, seed=0)
    member_rmse = np.sqrt(np.mean((result.draw_means[:, :, 0] - y) ** 2, axis=1))
    assert member_rmse.shape == (4,)
    assert np.all(member_rmse < 0.2), member_rmse  # noise std 0.1; an untrained member is ~0.7 off
    assert np.all(np.abs(np.sqrt(result.draw_variances.mean(axis=(1, 2))) - 0.1) < 0.05)


@pytest.mark.parametrize("penalty", [None, "kernel", "activity"])
def test_an_ensemble_member_takes_the_step_it_would_take_alone(penalty):
    # SGD on one batch: member 0 of five moves as the same network alone does (it had moved
    # 1/M as far; an L2 penalty, summed over members, had weighed M times too much; an
    # activity penalty, divided by the rows of all members, 1/M of its weight).
    def network(num_members):
        tf_keras.utils.set_random_seed(0)
        regularizers = {} if penalty is None else {f"{penalty}_regularizer": tf_keras.regularizers.L2(0.1)}
        inputs = tf_keras.Input((2,))
        h = EnsembleDense(8, num_members=num_members, activation="relu", **regularizers)(inputs)
        h = EnsembleDense(2, num_members=num_members, **regularizers)(h)
        model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(h))
        model.compile(optimizer=tf_keras.optimizers.SGD(0.1))
        return model

    ensemble, alone = network(5), network(1)
    alone.set_weights([w[:1] for w in ensemble.get_weights()])
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    y = np.sin(x[:, :1]) + x[:, 1:]
    before = [w[:1] for w in ensemble.get_weights()]
    logs = [m.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0).history for m in (ensemble, alone)]
    for start, member, single in zip(before, ensemble.get_weights(), alone.get_weights()):
        np.testing.assert_allclose(member[:1] - start, single - start, rtol=1e-4, atol=1e-7)
    # Logged: the mean of the members' losses, each with its own penalty.
    assert logs[0]["loss"][0] == pytest.approx(logs[0]["nll"][0] + logs[0]["kl"][0], rel=1e-5)


def test_ensemble_predictions_are_the_uniform_mixture_for_any_multiple_of_members(ensemble_regressor):
    x = np.linspace(-3, 3, 9, dtype="float32")[:, None]
    exact = tfp_bnn.predict(ensemble_regressor, x, num_samples=4)
    repeated = tfp_bnn.predict(ensemble_regressor, x, num_samples=100)
    for field in ("mean", "aleatoric_variance", "epistemic_variance", "lower", "upper"):
        np.testing.assert_allclose(getattr(repeated, field), getattr(exact, field), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(exact.epistemic_variance, exact.draw_means.var(axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="multiple of 4"):
        tfp_bnn.predict(ensemble_regressor, x, num_samples=10)


@pytest.mark.parametrize("fixture", ["mc_dropout_regressor", "ensemble_regressor"])
def test_epistemic_variance_is_positive_and_grows_off_the_data(fixture, request):
    model = request.getfixturevalue(fixture)
    samples = 100 if fixture == "ensemble_regressor" else 400

    def epistemic(x):
        return tfp_bnn.predict(model, np.asarray(x, "float32")[:, None], num_samples=samples, seed=0).epistemic_stddev

    inside = epistemic(np.linspace(-0.9, 0.9, 19))  # the data cover [-1, 1]
    left, right = epistemic(np.linspace(-4, -2.5, 4)), epistemic(np.linspace(2.5, 4, 4))
    assert np.all(inside > 0)
    # ReLU members extrapolate linearly with their own slopes; on one side they may happen to
    # agree more than on the other, so each side is compared on average.
    assert left.mean() > inside.mean() and right.mean() > inside.mean()
    assert np.concatenate([left, right]).mean() > 5 * inside.mean(), (inside.mean(), left.mean(), right.mean())


@pytest.mark.parametrize("fixture", ["mc_dropout_regressor", "ensemble_regressor"])
def test_variance_split_adds_up_to_the_mixture_variance(fixture, request):
    model = request.getfixturevalue(fixture)
    x = np.linspace(-2, 2, 11, dtype="float32")[:, None]
    result = tfp_bnn.predict(model, x, num_samples=100, seed=3)
    mixture_second_moment = np.mean(result.draw_variances + result.draw_means**2, axis=0)
    np.testing.assert_allclose(result.total_variance, mixture_second_moment - result.mean**2, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("inference", ["mc_dropout", "ensemble"])
def test_classifier_entropy_split_with_positive_mutual_information(inference):
    tf_keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)).astype("float32") * 0.5
    labels = (x[:, 0] > 0).astype("int64")
    model = tfp_bnn.make_classifier((2,), 2, hidden_units=(32,), train_size=len(x), inference=inference)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    model.fit(x, labels, batch_size=32, epochs=60, verbose=0)
    points = np.array([[0.8, 0.0], [0.0, 6.0], [0.0, -6.0]], dtype="float32")
    result = tfp_bnn.predict(model, points, num_samples=200, seed=0)
    np.testing.assert_allclose(
        result.predictive_entropy, result.expected_entropy + result.mutual_information, rtol=1e-4, atol=1e-6
    )
    assert result.probabilities[0, 1] > 0.9  # well inside class 1
    assert np.all(result.mutual_information[1:] > 1e-4)  # far from the data the networks disagree


# -- builders, saving, compile ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"inference": "laplace", "train_size": 10}, "Unknown inference 'laplace'"),
        ({"inference": "ensemble", "regime": "probabilistic"}, "regime='bayesian_probabilistic'"),
        ({"inference": "mc_dropout"}, "needs train_size"),
        ({"inference": "ensemble", "estimator": "flipout"},
         r"estimator: for the layers of inference='variational', which this model \(inference='ensemble'\) "
         r"does not have\. Leave it out, or build a model of that inference\."),
        ({"inference": "mc_dropout", "train_size": 10, "dropout_rate": 1.5}, "rate"),
        # Arguments another method or regime would use are refused, not ignored.
        ({"train_size": 10, "dropout_rate": 0.5}, r"dropout_rate: for the layers of inference='mc_dropout'"),
        ({"inference": "mc_dropout", "train_size": 10, "num_members": 3},
         r"num_members: for the layers of inference='ensemble', which this model \(inference='mc_dropout'\)"),
        ({"regime": "deterministic", "estimator": "flipout", "kernel_prior": tfp_bnn.NormalPrior(0.1)},
         r"estimator, kernel_prior: for the layers of inference='variational', which this model \(a regime "
         r"without Bayesian layers\) does not have\. Leave them out, or build a Bayesian regime\."),
        ({"train_size": 10, "head": tfp_bnn.StudentTHead(1), "target_mean": 100.0, "target_std": 10.0},
         r"target_mean and target_std configure the default head; pass them to your head instead "
         r"\(e\.g\. StudentTHead\(1, target_loc=\.\.\., target_scale=\.\.\.\)\)"),
        ({"train_size": 10, "units": 2, "head": tfp_bnn.NormalHead(1)},
         r"units=2 but the head predicts 1 target\(s\); pass units=1, or a head of 2 units\."),
        ({"train_size": 2.9}, r"train_size must be a positive integer \(the number of training examples\), got 2\.9"),
        ({"train_size": True}, r"train_size must be a positive integer"),
    ],
)
def test_builders_refuse_inconsistent_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tfp_bnn.make_regressor((3,), **kwargs)


def test_ensemble_needs_no_train_size_and_counts_members():
    model = tfp_bnn.make_regressor((3,), inference="ensemble", num_members=7)
    assert model.num_members == 7 and not model.losses


@pytest.mark.parametrize("fixture", ["mc_dropout_regressor", "ensemble_regressor"])
def test_saved_keras_file_predicts_the_same_distribution_and_keeps_training(fixture, request, tmp_path):
    model = request.getfixturevalue(fixture)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = tf_keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is tfp_bnn.BayesianModel and loaded.num_members == model.num_members
    x = np.linspace(-2, 2, 9, dtype="float32")[:, None]
    before, after = (tfp_bnn.predict(m, x, num_samples=20, seed=5) for m in (model, loaded))
    for field in ("mean", "aleatoric_variance", "epistemic_variance", "lower", "upper"):
        np.testing.assert_allclose(getattr(after, field), getattr(before, field), rtol=1e-5, atol=1e-7)
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() > 0
    loaded.fit(*_sine_data(), batch_size=32, epochs=1, verbose=0)


def test_keras_predict_of_an_ensemble_is_the_members_average_whatever_the_batch_size(ensemble_regressor):
    # A plain call sends row n of a batch through member n mod M: model.predict gave a row the
    # member of its place in its batch (up to 0.2 apart for batch_size 1 and 32 on a sine fit),
    # and a single row always member 0 alone.
    x = np.linspace(-1, 1, 30, dtype=np.float32)[:, None]
    by_batch = [ensemble_regressor.predict(x, batch_size=b, verbose=0) for b in (1, 7, 32)]
    for other in by_batch[1:]:
        np.testing.assert_allclose(other, by_batch[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ensemble_regressor.predict(x[3:4], verbose=0)[0], by_batch[0][3], rtol=1e-6)
    np.testing.assert_allclose(ensemble_regressor.predict_on_batch(x[:5]), by_batch[0][:5], rtol=1e-6, atol=1e-7)
    with sampling.weight_draws(4):  # every member on every row, member-major
        members = ensemble_regressor(np.tile(x, [4, 1])).mean().numpy().reshape(4, 30, 1)
    np.testing.assert_allclose(by_batch[0], members.mean(axis=0), rtol=1e-6, atol=1e-7)
    predicted = tfp_bnn.predict(ensemble_regressor, x, num_samples=8, seed=0)  # draw t is member t mod 4
    np.testing.assert_allclose(by_batch[0], predicted.mean, rtol=1e-5, atol=1e-6)


def test_keras_predict_of_an_ensemble_classifier_averages_the_members_probabilities():
    x = np.random.default_rng(2).normal(size=(12, 3)).astype(np.float32)
    model = tfp_bnn.make_classifier((3,), 4, hidden_units=(8,), inference="ensemble", num_members=3)
    probs = model.predict(x, batch_size=5, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs, model.predict(x, batch_size=1, verbose=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(probs, tfp_bnn.predict(model, x, num_samples=3, seed=0).probabilities, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", [tfp_bnn.HomoscedasticNormalHead, tfp_bnn.StudentTHead])
def test_an_ensemble_warns_that_its_members_share_the_heads_weights(head):
    with pytest.warns(UserWarning, match="ensemble members share the weights") as caught:
        tfp_bnn.make_regressor((2,), inference="ensemble", num_members=3, head=head(1))
    # The filter the warning gives silences it.
    (message,) = [str(w.message) for w in caught if "members share" in str(w.message)]
    advice = message.split("warnings.filterwarnings(")[1].rstrip(").")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eval(f"warnings.filterwarnings({advice})")
        tfp_bnn.make_regressor((2,), inference="ensemble", num_members=3, head=head(1))


def test_an_ensemble_with_a_normal_head_or_one_member_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tfp_bnn.make_regressor((2,), inference="ensemble", num_members=3)
        tfp_bnn.make_regressor((2,), inference="ensemble", num_members=1, head=tfp_bnn.HomoscedasticNormalHead(1))
        tfp_bnn.make_regressor((2,), inference="mc_dropout", train_size=10, head=tfp_bnn.HomoscedasticNormalHead(1))


def test_a_mask_shared_by_the_batch_is_one_mask_per_draw_not_one_for_all_draws():
    layer = MCDropout(0.5, noise_shape=(1, 10))
    with sampling.weight_draws(4, seed=tf.constant([1, 2])):
        out = layer(tf.ones([4 * 3, 10])).numpy().reshape(4, 3, 10)
    # the rows of one draw share its mask (noise_shape's batch axis of 1) ...
    assert all(np.array_equal(out[t, 0], out[t, b]) for t in range(4) for b in range(3))
    # ... and the draws are different networks
    assert not all(np.array_equal(out[0], out[t]) for t in range(1, 4))


def test_predict_with_a_batch_shared_mask_has_epistemic_uncertainty():
    inputs = tf_keras.Input((3,))
    h = tf_keras.layers.Dense(16, activation="relu")(inputs)
    h = MCDropout(0.5, noise_shape=(1, 16))(h)
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(tf_keras.layers.Dense(2)(h)))
    result = tfp_bnn.predict(model, np.ones((5, 3), np.float32), num_samples=20, seed=0)
    assert result.epistemic_stddev.min() > 1e-4
    # one network per draw: draw t is a function of x (identical inputs, identical outputs)
    assert np.allclose(result.draw_means[:, :1], result.draw_means)
