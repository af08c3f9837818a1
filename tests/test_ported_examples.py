"""Public Bayesian-NN examples ported to tfp_bnn: keras.io's named inputs, TFP's LeNet softmax, TFP's tutorial functions."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn

tfd, tfpl = tfp.distributions, tfp.layers


def _named_inputs_model(names):
    # keras.io's "Probabilistic Bayesian Neural Networks": a dict of one Input per feature, concatenated.
    inputs = {name: tf_keras.Input((1,), name=name) for name in names}
    features = tf_keras.layers.concatenate(list(inputs.values()))
    hidden = tfp_bnn.BayesianDense(8, activation="sigmoid", kl_weight=1 / 64)(features)
    return tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(tf_keras.layers.Dense(2)(hidden)))


@pytest.mark.parametrize("count", [3, 11])  # 11: the keys' order differs from Keras's sorted input names
def test_a_model_built_on_a_dict_of_inputs_fits_and_evaluates(count):
    # Were "unhashable type: 'slice'" (3 features) or "the model's one input is named 'f0'" (11).
    names = [f"f{i}" for i in range(count)]
    model = _named_inputs_model(names)
    model.compile()
    rng = np.random.default_rng(0)
    x = {name: rng.normal(size=(64, 1)).astype(np.float32) for name in names}
    y = x["f0"][:, 0] - x["f1"][:, 0]
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert np.isfinite(model.evaluate(x, y, verbose=0)).all()
    assert np.isfinite(model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), verbose=0).history["loss"]).all()
    with pytest.raises(TypeError, match=f"predict takes models with one input; this one has {count}"):
        tfp_bnn.predict(model, x, num_samples=5)


def test_a_model_of_one_named_input_takes_it_by_key_or_bare():
    inputs = tf_keras.Input((3,), name="a")
    model = tfp_bnn.BayesianModel({"features": inputs},
                                  tfp_bnn.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=1 / 32)(inputs)))
    model.compile()
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    for given in (x, {"features": x}, {"a": x}):
        assert np.isfinite(model.fit(given, x[:, 0], verbose=0).history["loss"]).all()
    expected = tfp_bnn.predict(model, x, num_samples=5, seed=0).mean
    np.testing.assert_array_equal(tfp_bnn.predict(model, {"features": x}, num_samples=5, seed=0).mean, expected)


@pytest.mark.parametrize("last, head", [
    (lambda: tfp_bnn.BayesianDense(3, activation="softmax", kl_weight=0.01), lambda: tfp_bnn.CategoricalHead(3)),
    (lambda: tf_keras.layers.Dense(3, activation=tf.nn.softmax), lambda: tfp_bnn.PointClassHead(3)),
    (lambda: tf_keras.layers.Dense(1, activation="sigmoid"), lambda: tfp_bnn.BernoulliHead()),
], ids=["bayesian-softmax", "tf.nn.softmax", "sigmoid"])
def test_a_classification_head_after_a_softmax_warns(last, head):
    # TFP's Bayesian LeNet ends in DenseFlipout(10, activation=tf.nn.softmax): kept before a CategoricalHead,
    # digits trained to accuracy 0.96 with NLL 1.51 and ECE 0.73 (0.12 and 0.02 on logits), silently.
    inputs = tf_keras.Input((4,))
    with pytest.warns(UserWarning, match=r"takes logits, but .* applies a (softmax|sigmoid).*\(activation=None"):
        tfp_bnn.BayesianModel(inputs, head()(last()(inputs)))


def test_a_classification_head_after_logits_does_not_warn():
    inputs = tf_keras.Input((4,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(3)(tf_keras.layers.Dense(3, activation="relu")(inputs)))
        tfp_bnn.make_classifier((4,), num_classes=3, train_size=100)


def test_a_keras_classifiers_last_layer_is_answered_with_the_head_to_add():
    inputs = tf_keras.Input((4,))
    with pytest.raises(TypeError, match=r"got BayesianDense\. End in tfp_bnn\.CategoricalHead\(10\) after it, "
                       r"without its softmax"):
        tfp_bnn.BayesianModel(inputs, tfp_bnn.BayesianDense(10, activation="softmax")(inputs))
    with pytest.raises(TypeError, match=r"got Dense\. Add a head after it: tfp_bnn\.PointHead\(1\).*Dense\(2\)\.$"):
        tfp_bnn.BayesianModel(inputs, tf_keras.layers.Dense(1)(inputs))
    # A relu or a sigmoid of several units: the advice says to drop it too (the head would warn of the sigmoid).
    for activation in ("relu", "sigmoid"):
        with pytest.raises(TypeError, match=r"CategoricalHead\(3\) .*Set activation=None on 'last'"):
            tfp_bnn.BayesianModel(inputs, tf_keras.layers.Dense(3, activation=activation, name="last")(inputs))


def posterior_mean_field(kernel_size, bias_size=0, dtype=None):
    n = kernel_size + bias_size
    c = np.log(np.expm1(1.0))
    return tf_keras.Sequential([
        tfpl.VariableLayer(2 * n, dtype=dtype),
        tfpl.DistributionLambda(lambda t: tfd.Independent(
            tfd.Normal(loc=t[..., :n], scale=1e-5 + tf.nn.softplus(c + t[..., n:])), reinterpreted_batch_ndims=1)),
    ])


def prior_trainable(kernel_size, bias_size=0, dtype=None):
    n = kernel_size + bias_size
    return tf_keras.Sequential([
        tfpl.VariableLayer(n, dtype=dtype),
        tfpl.DistributionLambda(lambda t: tfd.Independent(tfd.Normal(loc=t, scale=1), reinterpreted_batch_ndims=1)),
    ])


@pytest.mark.parametrize("args", [(posterior_mean_field, prior_trainable), (posterior_mean_field,),
                                  (tfpl.default_mean_field_normal_fn(),)], ids=["both", "posterior", "kernel_fn"])
def test_tfp_tutorial_functions_passed_positionally_are_refused_by_name(args):
    # TFP's regression tutorial: DenseVariational(1, posterior_mean_field, prior_trainable, kl_weight=1 / N).
    # Were "Unknown estimator <function prior_trainable>", or the posterior taken as the activation.
    with pytest.raises(TypeError, match=r"as its activation .a positional argument.*tfp\.layers' prior/posterior "
                       r"functions go with tfp\.layers' own layers"):
        tfp_bnn.BayesianDense(1, *args, kl_weight=1 / 150)


@pytest.mark.parametrize("head, params, y", [
    (lambda: tfp_bnn.NormalHead(1), [[0.0, 0.0], [1.0, 0.5], [2.0, -1.0]], [0.5, 1.0, 4.0]),
    (lambda: tfp_bnn.PointHead(1), [[0.0], [1.0], [2.0]], [0.5, 1.0, 4.0]),
    (lambda: tfp_bnn.HomoscedasticNormalHead(1), [[0.0], [1.0], [2.0]], [0.5, 1.0, 4.0]),
    (lambda: tfp_bnn.StudentTHead(1), [[0.0, 0.0], [1.0, 0.5], [2.0, -1.0]], [0.5, 1.0, 4.0]),
    (lambda: tfp_bnn.PoissonHead(1), [[0.0], [1.0], [-1.0]], [0.0, 3.0, 1.0]),
    (lambda: tfp_bnn.BernoulliHead(), [[0.0], [2.0], [-1.0]], [0.0, 1.0, 1.0]),
], ids=["normal", "point", "homoscedastic", "student-t", "poisson", "bernoulli"])
def test_a_custom_loops_log_prob_takes_targets_of_shape_n(head, params, y):
    # Bayesian-Torch's loop ported, loss = -mean(model(x).log_prob(y)) with y of shape (N,) as fit takes it:
    # log_prob broadcast y against the (N, 1) outputs, every example scored against every target, shape (N,)
    # and no error (a regressor trained so: RMSE 1.84, about the targets' sd, against 0.10-0.17 aligned).
    layer = head()
    dist = layer(tf.constant(params))
    column = np.asarray(y, np.float32)[:, None]
    expected = dist.log_prob(column).numpy()
    np.testing.assert_array_equal(dist.log_prob(np.asarray(y, np.float32)).numpy(), expected)
    np.testing.assert_array_equal(dist.log_prob(tf.constant(y)).numpy(), expected)
    np.testing.assert_allclose(dist.tensor_distribution.prob(tf.constant(y)).numpy(), np.exp(expected), rtol=1e-6)
    np.testing.assert_array_equal(  # batches of unknown size, as in a traced step
        tf.function(lambda p, t: layer(p).log_prob(t), input_signature=[
            tf.TensorSpec([None, len(params[0])]), tf.TensorSpec([None])])(tf.constant(params), tf.constant(y)).numpy(),
        expected)
    assert dist.log_prob(dist.sample(4, seed=(1, 2))).shape == (4, 3)  # samples as TFP takes them


def test_a_custom_training_loop_with_the_series_loss_fits_as_fit_does():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 1)).astype(np.float32)
    y = (2 * x[:, 0] + 0.1 * rng.normal(size=128)).astype(np.float32)
    tf_keras.utils.set_random_seed(0)
    model = tfp_bnn.make_regressor((1,), hidden_units=(16,), train_size=128)
    optimizer = tf_keras.optimizers.Adam(1e-2)
    for _ in range(30):
        for start in range(0, 128, 32):
            with tf.GradientTape() as tape:
                dist = model(x[start:start + 32], training=True)
                loss = -tf.reduce_mean(dist.log_prob(y[start:start + 32])) + model.kl_divergence()
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    assert tfp_bnn.score(model, x, y, num_samples=50, seed=0)["rmse"] < 0.5  # a constant predictor: about 2


def test_a_custom_loops_log_prob_takes_targets_of_unknown_rank():
    # A loop over a tf.data pipeline inside tf.function: tf.py_function's targets have no static rank,
    # and log_prob broadcast (N,) against (N, 1) there as before.
    head = tfp_bnn.NormalHead(1)
    params = tf.constant([[0.0, 0.0], [1.0, 0.5], [2.0, -1.0]])
    y = np.array([0.5, 1.0, 4.0], np.float32)
    expected = head(params).log_prob(y[:, None]).numpy()
    signature = [tf.TensorSpec([None, 2]), tf.TensorSpec(None)]
    log_prob = tf.function(lambda p, t: head(p).log_prob(t), input_signature=signature)
    np.testing.assert_allclose(log_prob(params, y).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(log_prob(params, y[:, None]).numpy(), expected, rtol=1e-6)
    assert log_prob(params, head(params).sample(4, seed=(1, 2))).numpy().shape == (4, 3)
    np.testing.assert_allclose(head(params).tensor_distribution.unnormalized_log_prob(y).numpy(), expected, rtol=1e-6)


def test_a_sequential_port_or_a_nested_body_ending_in_a_softmax_warns():
    # TFP's Bayesian LeNet is a Sequential: ported as one it is no BayesianModel, and went unwarned;
    # so did a BayesianModel whose head follows a Sequential body ending in the softmax.
    x = np.zeros((2, 4), np.float32)
    sequential = tf_keras.Sequential([tf_keras.Input((4,)), tfp_bnn.BayesianDense(3, activation=tf.nn.softmax,
                                      kl_weight=0.01), tfp_bnn.CategoricalHead(3)])
    with pytest.warns(UserWarning, match=r"takes logits, but BayesianDense"):
        tfp_bnn.predict(sequential, x, num_samples=2, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tfp_bnn.predict(sequential, x, num_samples=2, seed=0)  # once per model
    assert not [w for w in caught if "takes logits" in str(w.message)]
    inputs = tf_keras.Input((4,))
    body = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3, activation="softmax")])
    with pytest.warns(UserWarning, match=r"takes logits, but Dense '.*' before it applies a softmax"):
        tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(3)(body(inputs)))


def test_a_dataset_of_one_tensor_for_a_model_of_several_inputs_is_refused_with_the_fix():
    # Was "the model takes inputs of shape (N, ): an array of shape () per example" (before: a TypeError).
    a, b = tf_keras.Input((2,)), tf_keras.Input((3,))
    hidden = tfp_bnn.BayesianDense(2, kl_weight=0.1)(tf_keras.layers.concatenate([a, b]))
    model = tfp_bnn.BayesianModel([a, b], tfp_bnn.NormalHead(1)(hidden))
    model.compile()
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((8, 5), np.float32), np.zeros(8, np.float32))).batch(4)
    with pytest.raises(ValueError, match=r"takes 2 inputs but the dataset's x is one tensor of shape \(None, 5\)"):
        model.fit(dataset, verbose=0)


@pytest.mark.parametrize("head", [lambda: tfp_bnn.CategoricalHead(3), lambda: tfp_bnn.PointClassHead(3)],
                         ids=["categorical", "point-class"])
def test_a_custom_loops_log_prob_takes_class_labels_of_shape_n_by_1(head):
    # keras.datasets' sparse labels are (N, 1): against the (N,) batch they broadcast to (N, N), every
    # label scored under every example's distribution, and no error (iris: accuracy 0.70 against 0.97).
    layer = head()
    params = tf.constant([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [1.0, -1.0, 0.0]])
    labels = np.array([2, 0, 1, 0], np.float32)
    dist = layer(params)
    expected = dist.log_prob(labels).numpy()
    assert expected.shape == (4,)
    np.testing.assert_array_equal(dist.log_prob(labels[:, None]).numpy(), expected)
    traced = tf.function(lambda p, t: layer(p).log_prob(t),
                         input_signature=[tf.TensorSpec([None, 3]), tf.TensorSpec([None, 1])])
    np.testing.assert_array_equal(traced(params, labels[:, None]).numpy(), expected)
    assert dist.log_prob(dist.sample(5, seed=(1, 2))).shape == (5, 4)  # samples as TFP takes them
    one = layer(params[:1])
    assert one.log_prob(one.sample(5, seed=(1, 2))).shape == (5, 1)


def test_the_sigmoid_warning_says_a_bernoulli_head_then_predicts_class_1_everywhere():
    squashed = tf.sigmoid(tf.sigmoid(tf.linspace(-30.0, 30.0, 101)))  # the head's P(y = 1) after a sigmoid
    assert float(tf.reduce_min(squashed)) >= 0.5 and float(tf.reduce_max(squashed)) < 0.7311
    inputs = tf_keras.Input((4,))
    with pytest.warns(UserWarning, match=r"between 0\.5 and 0\.73 \(every example predicted as 1\).*its own sigmoid"):
        tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(tf_keras.layers.Dense(1, activation="sigmoid")(inputs)))
    with pytest.warns(UserWarning, match=r"none above 0\.23 with 10 classes.*its own softmax"):
        tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(10)(tf_keras.layers.Dense(10, activation="sigmoid")(inputs)))
