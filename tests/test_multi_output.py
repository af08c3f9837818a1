"""Models whose outputs are not one list entry: dict outputs, outputs beside a head, heads over
sequences, several binary labels, per-output target scaling."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 2)).astype(np.float32)
Y = (X[:, :1] - 0.5 * X[:, 1:] + 0.1 * RNG.normal(size=(64, 1))).astype(np.float32)


def _dict_output_model(layer, keys=("out",)):
    inputs = tf_keras.Input((2,))
    outputs = {key: tfp_bnn.NormalHead(1, name=f"head_{i}")(layer()(inputs)) for i, key in enumerate(keys)}
    return tfp_bnn.BayesianModel(inputs, outputs)


@pytest.mark.parametrize("layer", [
    lambda: tf_keras.layers.Dense(2),
    lambda: tfp_bnn.EnsembleDense(2, num_members=2),
    lambda: tf_keras.Sequential([tfp_bnn.MCDropout(0.1), tf_keras.layers.Dense(2)]),
], ids=["dense", "ensemble", "mc_dropout"])
def test_a_head_given_as_a_dict_output_predicts_as_a_plain_one(layer, tmp_path):
    model = _dict_output_model(layer)
    result = tfp_bnn.predict(model, X[:5], num_samples=4, seed=0)  # AttributeError: 'dict' ... 'mean'
    assert result.mean.shape == (5, 1)
    assert tfp_bnn.log_likelihoods(model, X[:5], Y[:5], num_samples=4, seed=0).shape == (4, 5)
    served = tf.saved_model.load(str(tfp_bnn.serving.export_for_serving(model, tmp_path / "m", num_samples=4)))
    answer = served.signatures["seeded"](x=tf.constant(X[:5]), seed=tf.constant(0, tf.int64))
    np.testing.assert_allclose(answer["mean"], result.mean, rtol=1e-6)


def test_dict_outputs_take_targets_by_their_keys_as_in_keras():
    model = _dict_output_model(lambda: tfp_bnn.BayesianDense(2, kl_weight=1 / len(X)), keys=("first", "second"))
    model.compile(tf_keras.optimizers.Adam(1e-2))
    logs = model.fit(X, {"first": Y, "second": Y + 1}, epochs=1, verbose=0).history  # refused before
    assert np.isfinite(logs["loss"]).all()
    assert np.isfinite(model.evaluate(X, {"first": Y, "second": Y + 1}, verbose=0)).all()
    with pytest.raises(ValueError, match=r"outputs have the keys \['first', 'second'\]"):
        model.fit(X, {"head_0": Y, "head_1": Y}, verbose=0)  # Keras itself fails on it, cryptically
    with pytest.raises(ValueError, match=r"outputs are a dict with the keys \['first', 'second'\]: pass the targets"):
        model.fit(X, [Y, Y], verbose=0)
    with pytest.raises(ValueError, match=r"y has shape \(64, 3\) but NormalHead"):  # still checked per head
        model.fit(X, {"first": Y, "second": np.zeros((64, 3))}, verbose=0)
    single = _dict_output_model(lambda: tf_keras.layers.Dense(2))
    single.compile(tf_keras.optimizers.Adam(1e-2))
    for y in ({"out": Y}, {"head_0": Y}):
        assert np.isfinite(single.fit(X, y, epochs=1, verbose=0).history["loss"]).all()


def test_compile_names_outputs_that_the_default_loss_does_not_fit():
    inputs = tf_keras.Input((2,))
    auxiliary = tf_keras.layers.Dense(1, name="auxiliary")(inputs)
    head = tfp_bnn.NormalHead(1, name="head")(tf_keras.layers.Dense(2)(inputs))
    model = tfp_bnn.BayesianModel(inputs, [auxiliary, head])
    with pytest.raises(ValueError, match=r"\['auxiliary'\] are not tfp_bnn heads.*pass a loss per output"):
        model.compile("adam")  # was a TypeError inside fit's AutoGraph trace
    model.compile("adam", loss={"auxiliary": "mse", "head": tfp_bnn.NegativeLogLikelihood()})
    assert np.isfinite(model.fit(X, [Y, Y], epochs=1, verbose=0).history["loss"]).all()


@pytest.mark.parametrize("head", [tfp_bnn.NormalHead(1), tfp_bnn.PoissonHead(1)], ids=["normal", "poisson"])
def test_a_regression_head_over_a_sequence_is_refused_when_the_model_is_built(head):
    inputs = tf_keras.Input((5, 3))
    params = tfp_bnn.BayesianDense(head.params_size, kl_weight=0.01)(inputs)  # (N, 5, params)
    # Was built: fit refused (N, 5) targets as "reshape y to (N, 1)", predict failed in its graph.
    with pytest.raises(ValueError, match=r"takes one row of \d parameters per example.*got \(N, 5, \d\)"):
        head(params)


@pytest.mark.parametrize("head", [tfp_bnn.CategoricalHead(3), tfp_bnn.BernoulliHead()], ids=["categorical", "bernoulli"])
def test_a_classifier_over_a_sequence_still_trains_predicts_and_exports(head, tmp_path):
    # A label per time step: fit on a generator, tfp_bnn.predict and export worked before the
    # rank check, and a model saved then must still load.
    x = RNG.normal(size=(32, 5, 3)).astype(np.float32)
    labels = RNG.integers(0, head.units if head.units > 1 else 2, size=(32, 5)).astype(np.float32)
    labels = labels if head.units > 1 else labels[..., None]
    inputs = tf_keras.Input((5, 3))
    model = tfp_bnn.BayesianModel(inputs, head(tfp_bnn.BayesianDense(head.params_size, kl_weight=1 / 32)(inputs)))
    model.compile("adam")

    def batches():
        while True:
            yield x[:16], labels[:16]
            yield x[16:], labels[16:]

    assert np.isfinite(model.fit(batches(), steps_per_epoch=2, epochs=1, verbose=0).history["loss"]).all()
    result = tfp_bnn.predict(model, x[:4], num_samples=4, seed=0)
    assert result.probabilities.shape == (4, 5, max(head.units, 2))
    assert result.mutual_information.shape == (4, 5)
    model.save(tmp_path / "m.keras")
    loaded = tf_keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        tfp_bnn.predict(loaded, x[:4], num_samples=4, seed=0).probabilities, result.probabilities, rtol=1e-6)
    tfp_bnn.serving.export_for_serving(model, tmp_path / "served", num_samples=4)


def test_several_binary_labels_are_not_told_to_take_argmax():
    inputs = tf_keras.Input((2,))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(tfp_bnn.BayesianDense(1, kl_weight=0.01)(inputs)))
    model.compile("adam")
    labels = (RNG.uniform(size=(64, 3)) < 0.5).astype(np.float32)
    with pytest.raises(ValueError, match=r"several binary labels per example\? BernoulliHead predicts one") as error:
        model.fit(X, labels, verbose=0)
    assert "argmax" not in str(error.value)
    with pytest.raises(ValueError, match=r"one-hot labels\? pass the class indices"):  # two columns: one-hot
        model.fit(X, np.eye(2)[(X[:, 0] > 0).astype(int)], verbose=0)


@pytest.mark.parametrize("argument, value, shape", [
    ("target_mean", [0.0, 1.0], r"\(2,\)"), ("target_std", np.ones((1, 3)), r"\(1, 3\)"),
])
def test_per_output_target_scaling_of_another_length_is_named(argument, value, shape):
    with pytest.raises(ValueError, match=rf"make_regressor's {argument}\) has shape {shape}, but the head has units=3"):
        tfp_bnn.make_regressor((2,), units=3, train_size=10, **{argument: value})


@pytest.mark.parametrize("value", ["abc", [1.0, "x", 2.0], [[1.0, 2.0], [3.0]]])
def test_target_scaling_that_is_not_numbers_is_not_called_a_shape_mismatch(value):
    # Was "has shape (3,), but the head has units=3: pass ... shape (3,)" for [1.0, "x", 2.0].
    with pytest.raises(ValueError, match=r"target_loc \(make_regressor's target_mean\) must be a float or floats, got") as error:
        tfp_bnn.make_regressor((2,), units=3, train_size=10, target_mean=value)
    assert "has shape" not in str(error.value)


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_the_cli_refuses_a_second_target_column(command, capsys, tmp_path):
    from tfp_bnn import cli

    csv_file = tmp_path / "t.csv"
    csv_file.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9\n")
    extra = ["--out", str(tmp_path / "out")] if command == "fit" else ["--model", str(tmp_path / "m")]
    with pytest.raises(SystemExit) as exit_info:  # was: a model of c, with b among its features
        cli.main([command, "--data", str(csv_file), "--target", "b", "--target", "c", *extra])
    assert exit_info.value.code == 2
    assert "--target given twice ('b', then 'c'): a model predicts one target column" in capsys.readouterr().err


def test_a_head_may_be_any_output_not_only_the_last():
    inputs = tf_keras.Input((2,))
    hidden = tfp_bnn.BayesianDense(8, activation="relu", kl_weight=1 / len(X))(inputs)
    head = tfp_bnn.NormalHead(1, name="head")(tfp_bnn.BayesianDense(2, kl_weight=1 / len(X))(hidden))
    auxiliary = tf_keras.layers.Dense(1, name="auxiliary")(hidden)
    model = tfp_bnn.BayesianModel(inputs, [head, auxiliary])  # TypeError "must end in a head, got Dense"
    assert model.head is head._keras_history.layer
    model.compile("adam", loss={"head": tfp_bnn.NegativeLogLikelihood(), "auxiliary": "mse"})
    assert np.isfinite(model.fit(X, [Y, Y], epochs=1, verbose=0).history["loss"]).all()
    with pytest.raises(ValueError, match=r"y has shape \(64, 3\) but NormalHead"):
        model.fit(X, [np.zeros((64, 3)), Y], verbose=0)
    with pytest.raises(TypeError, match="must end in a tfp_bnn head .tfp_bnn.heads., got Dense"):
        tfp_bnn.BayesianModel(inputs, [auxiliary])


def test_class_weight_of_a_model_with_several_heads_gets_keras_own_message():
    inputs = tf_keras.Input((2,))
    classes = tfp_bnn.CategoricalHead(3, name="classes")(tf_keras.layers.Dense(3)(inputs))
    value = tfp_bnn.NormalHead(1, name="value")(tf_keras.layers.Dense(2)(inputs))
    model = tfp_bnn.BayesianModel(inputs, [classes, value])
    model.compile("adam")
    labels = RNG.integers(0, 3, len(X)).astype(np.float32)
    # Was "NormalHead is a regression head": the model has a classifier head too.
    with pytest.raises(ValueError, match="only supported for Models with a single output"):
        model.fit(X, [labels, Y], class_weight={0: 1.0, 1: 2.0, 2: 1.0}, verbose=0)


@pytest.mark.parametrize("steps", [5, None], ids=["fixed_length", "any_length"])
@pytest.mark.parametrize("head", [tfp_bnn.CategoricalHead(3), tfp_bnn.BernoulliHead()], ids=["categorical", "bernoulli"])
def test_a_classifier_over_a_sequence_takes_its_per_step_labels_as_arrays_and_datasets(head, steps):
    # Was: fit/evaluate/log_likelihoods refused (N, 5) labels with "reshape y to (N,) (one-hot labels?
    # pass ... y.argmax(axis=1))", advice that cannot work; only generators trained.
    x = RNG.normal(size=(16, 5, 3)).astype(np.float32)
    y = RNG.integers(0, 2, size=(16, 5)).astype(np.float32)
    inputs = tf_keras.Input((steps, 3))
    logits = tf_keras.layers.Dense(head.params_size)  # no weight uncertainty: every draw is the same
    model = tfp_bnn.BayesianModel(inputs, head(logits(inputs)))
    model.compile("adam")
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
    assert np.isfinite(model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
                       .history["loss"]).all()
    assert np.isfinite(model.evaluate(x, y, verbose=0)).all()
    if steps is None:
        return  # prediction takes one length (its graph is built for fixed input shapes)

    # One number per example and draw: the joint log-likelihood of its 5 labels.
    ll = tfp_bnn.log_likelihoods(model, x[:4], y[:4], num_samples=3, seed=0)
    z = logits(x[:4]).numpy().astype(np.float64)
    if head.units > 1:
        per_step = np.take_along_axis(z - np.log(np.exp(z).sum(-1, keepdims=True)), y[:4, :, None].astype(int), -1)
    else:
        per_step = y[:4, :, None] * z - np.log1p(np.exp(z))
    np.testing.assert_allclose(ll, np.broadcast_to(per_step.sum(axis=(1, 2)), (3, 4)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"targets of shape \(N, 5") as error:
        model.fit(x, y[:, :4], epochs=1, verbose=0)
    assert "argmax" not in str(error.value)
    if head.units > 1:
        with pytest.raises(ValueError, match=r"one-hot labels\? pass the class index of each step, y.argmax\(axis=-1\)"):
            model.fit(x, np.eye(3, dtype=np.float32)[y.astype(int)], epochs=1, verbose=0)


@pytest.mark.parametrize("head", [tfp_bnn.CategoricalHead(3), tfp_bnn.BernoulliHead()], ids=["categorical", "bernoulli"])
def test_calling_a_classifiers_head_on_stacked_draws_leaves_the_models_targets_alone(head):
    # A user's predictive mixture over T draws, the model's own head on [N, T, K] logits: the
    # model then asked fit, evaluate and log_likelihoods for (N, T) labels.
    x = RNG.normal(size=(6, 3)).astype(np.float32)
    y = RNG.integers(0, 2, size=6).astype(np.float32)
    inputs = tf_keras.Input((3,))
    logits = tf_keras.layers.Dense(head.params_size)
    model = tfp_bnn.BayesianModel(inputs, head(logits(inputs)))
    model.compile("adam")
    stacked = tf.stack([logits(x)] * 5, axis=1)  # [N, T, params], every draw the same
    mixture = tfp.distributions.MixtureSameFamily(
        tfp.distributions.Categorical(logits=tf.zeros([6, 5])), model.head(stacked))
    z = logits(x).numpy().astype(np.float64)
    if head.units > 1:
        expected = (z - np.log(np.exp(z).sum(-1, keepdims=True)))[np.arange(6), y.astype(int)]
    else:
        expected = y * z[:, 0] - np.log1p(np.exp(z[:, 0]))
    np.testing.assert_allclose(mixture.log_prob(y if head.units > 1 else y[:, None]), expected, rtol=1e-5)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
    assert np.isfinite(model.evaluate(x, y, verbose=0)).all()
    assert tfp_bnn.log_likelihoods(model, x, y, num_samples=2, seed=0).shape == (2, 6)


def test_a_head_still_takes_numpy_parameters():
    np.testing.assert_array_equal(tfp_bnn.NormalHead(1)(np.zeros([2, 2], np.float32)).mean(), np.zeros([2, 1]))


def test_a_classifier_over_sequences_of_any_length_takes_labels_of_each_length():
    # The head's step shape was overwritten by each traced call: after a fit on sequences of
    # length 5, labels of length 7 were refused ("predicts targets of shape (N, 5)").
    head = tfp_bnn.CategoricalHead(3)
    inputs = tf_keras.Input((None, 3))
    model = tfp_bnn.BayesianModel(inputs, head(tf_keras.layers.Dense(head.params_size)(inputs)))
    model.compile("adam")
    for length in (5, 7, 5):
        x = RNG.normal(size=(16, length, 3)).astype(np.float32)
        y = RNG.integers(0, 3, size=(16, length)).astype(np.float32)
        assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
        assert np.isfinite(model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
                           .history["loss"]).all()
        assert np.isfinite(model.evaluate(x, y, verbose=0)).all()


def test_a_head_shared_with_another_model_keeps_each_models_targets():
    # The same layers in a second Functional model (a predictive mixture over 4 stacked draws):
    # the head's last Keras-tensor call set its step shape, and the first model asked for (N, 4, 5).
    x = RNG.normal(size=(16, 5, 3)).astype(np.float32)
    y = RNG.integers(0, 3, size=(16, 5)).astype(np.float32)
    inputs = tf_keras.Input((5, 3))
    body, head = tf_keras.layers.Dense(3), tfp_bnn.CategoricalHead(3)
    model = tfp_bnn.BayesianModel(inputs, head(body(inputs)))
    model.compile("adam")
    tf_keras.Model(inputs, head(tf_keras.layers.Lambda(lambda z: tf.stack([z] * 4, axis=1))(body(inputs))))
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
    assert np.isfinite(model.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), verbose=0)).all()
    assert tfp_bnn.log_likelihoods(model, x, y, num_samples=2, seed=0).shape == (2, 16)
    flat_inputs = tf_keras.Input((4,))
    flat = tfp_bnn.BayesianModel(flat_inputs, head(tf_keras.layers.Dense(3)(flat_inputs)))
    flat.compile("adam")
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
    assert np.isfinite(flat.fit(x[:, 0, :].repeat(2, 1)[:, :4], y[:, 0], epochs=1, verbose=0).history["loss"]).all()


def _sequence_classifier(steps, classes):
    inputs = tf_keras.Input((steps, 3))
    logits = tf_keras.layers.Dense(classes)  # no weight uncertainty: every draw is the same
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(classes)(logits(inputs)))
    model.compile(tf_keras.optimizers.SGD(0.0), steps_per_execution=1)
    return model, logits


def test_class_weight_of_a_per_step_classifier_is_refused_not_taken_from_the_argmax_over_steps():
    # Keras turned (N, L) labels into one class per example, argmax over the steps (a position):
    # with L <= K the loss was weighted silently by class_weight[position of the largest label].
    model, _ = _sequence_classifier(steps=2, classes=3)
    x = RNG.normal(size=(16, 2, 3)).astype(np.float32)
    y = RNG.integers(0, 3, size=(16, 2)).astype(np.float32)
    with pytest.raises(ValueError, match=r"class_weight weighs one class per example.*label per step"):
        model.fit(x, y, class_weight={0: 1.0, 1: 5.0, 2: 0.1}, epochs=1, verbose=0)


def test_a_per_step_classifiers_nll_is_the_examples_joint_nll_as_log_likelihoods_reports():
    # The data term against KL / N must be the per-example NLL (sum over its L labels), as for a head
    # of several units; it was the mean per label, L times too small beside the KL.
    model, logits = _sequence_classifier(steps=5, classes=3)
    x = RNG.normal(size=(16, 5, 3)).astype(np.float32)
    y = RNG.integers(0, 3, size=(16, 5)).astype(np.float32)
    z = logits(x).numpy().astype(np.float64)
    per_step = -np.take_along_axis(z - np.log(np.exp(z).sum(-1, keepdims=True)), y[..., None].astype(int), -1)[..., 0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["nll"], per_step.sum(axis=1).mean(), rtol=1e-5)
    ll = tfp_bnn.log_likelihoods(model, x, y, num_samples=2, seed=0)
    np.testing.assert_allclose(logs["nll"], tfp_bnn.metrics.mixture_nll(ll), rtol=1e-5)
    weights = RNG.uniform(size=(16, 5)).astype(np.float32)  # Keras's temporal weights, through a dataset
    weighted = model.evaluate(tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(8), verbose=0,
                              return_dict=True)
    np.testing.assert_allclose(weighted["nll"], (weights * per_step).sum(axis=1).mean(), rtol=1e-5)


def test_class_weight_of_a_one_step_classifier_weighs_the_example_by_its_label():
    # (N, 1) labels: Keras takes the example's one label as its class, as sample_weight would.
    model, _ = _sequence_classifier(steps=1, classes=3)
    x = RNG.normal(size=(16, 1, 3)).astype(np.float32)
    y = RNG.integers(0, 3, size=(16, 1)).astype(np.float32)
    class_weight = {0: 1.0, 1: 5.0, 2: 0.1}
    weights = np.asarray([class_weight[k] for k in range(3)])[y[:, 0].astype(int)]
    by_class = model.fit(x, y, class_weight=class_weight, epochs=1, batch_size=16, verbose=0).history["loss"]
    by_sample = model.fit(x, y, sample_weight=weights, epochs=1, batch_size=16, verbose=0).history["loss"]
    np.testing.assert_allclose(by_class, by_sample, rtol=1e-6)


@pytest.mark.parametrize("layout", ["(N, L)", "(N, L, 1)"])
def test_a_multi_label_bernoulli_classifier_takes_keras_multi_label_auc_on_arrays(layout):
    # L binary labels per example, a BernoulliHead over (N, L, 1) logits: as arrays the labels became
    # (N, L, 1) and AUC(multi_label=True, num_labels=L) failed in evaluate/fit ("must have rank 2"),
    # while a dataset's (N, L) labels worked.
    x = RNG.normal(size=(64, 4)).astype(np.float32)
    y = (RNG.uniform(size=(64, 3)) < 0.3).astype(np.float32)
    labels = y if layout == "(N, L)" else y[..., None]
    inputs = tf_keras.Input((4,))
    logits = tf_keras.layers.Reshape((3, 1))(tf_keras.layers.Dense(3)(inputs))  # every draw the same
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(logits))
    model.compile(tf_keras.optimizers.SGD(0.0), metrics=[tf_keras.metrics.AUC(multi_label=True, num_labels=3)])
    from_arrays = model.evaluate(x, labels, batch_size=16, verbose=0)
    from_dataset = model.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), verbose=0)
    np.testing.assert_allclose(from_arrays, from_dataset, rtol=1e-6)
    assert np.isfinite(model.fit(x, labels, epochs=1, verbose=0).history["loss"]).all()
    assert tfp_bnn.log_likelihoods(model, x, labels, num_samples=2, seed=0).shape == (2, 64)
    assert np.isfinite(list(tfp_bnn.score(model, x, labels, num_samples=2, seed=0).values())).all()


def test_the_advice_for_several_binary_labels_leads_to_a_model_that_predicts():
    # The advice was "a model with several outputs" (a head per label), which tfp_bnn.predict, score
    # and export_for_serving refuse; a BernoulliHead over (N, L, 1) logits takes all three.
    x = RNG.normal(size=(32, 4)).astype(np.float32)
    y = (RNG.uniform(size=(32, 3)) < 0.5).astype(np.float32)
    inputs = tf_keras.Input((4,))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(tfp_bnn.BayesianDense(1, kl_weight=1 / 32)(inputs)))
    model.compile("adam")
    with pytest.raises(ValueError, match=r"several binary labels per example\? .*Reshape\(\(L, 1\)\)"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"Reshape\(\(L, 1\)\) and BernoulliHead\(\)"):
        tfp_bnn.BernoulliHead(units=3)
    logits = tf_keras.layers.Reshape((3, 1))(tfp_bnn.BayesianDense(3, kl_weight=1 / 32)(inputs))
    advised = tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(logits))
    advised.compile("adam")
    assert np.isfinite(advised.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
    result = tfp_bnn.predict(advised, x, num_samples=4, seed=0)
    assert result.probabilities.shape == (32, 3, 2) and result.mutual_information.shape == (32, 3)
    assert set(tfp_bnn.score(advised, x, y, num_samples=4, seed=0)) == {"accuracy", "nll", "brier", "ece"}


def test_a_multi_label_classifier_takes_a_weight_per_label_as_an_array():
    # Imbalanced labels weigh each label's positives: (N, L) weights were refused as arrays ("pass one
    # weight per example"), though Keras and the loss take them (a dataset's (x, y, w) did).
    x = RNG.normal(size=(64, 4)).astype(np.float32)
    y = (RNG.uniform(size=(64, 3)) < 0.3).astype(np.float32)
    w = np.where(y == 1, 5.0, 1.0).astype(np.float32)
    inputs = tf_keras.Input((4,))
    logits = tf_keras.layers.Dense(3)  # every draw the same
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.BernoulliHead()(tf_keras.layers.Reshape((3, 1))(logits(inputs))))
    model.compile(tf_keras.optimizers.SGD(0.0))
    z = logits(x).numpy().astype(np.float64)
    expected = -(w * (y * z - np.logaddexp(0.0, z))).sum(axis=1).mean()
    logs = model.evaluate(x, y, sample_weight=w, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["nll"], expected, rtol=1e-5)
    from_dataset = model.evaluate(tf.data.Dataset.from_tensor_slices((x, y, w)).batch(16), verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["nll"], from_dataset["nll"], rtol=1e-6)
    assert np.isfinite(model.fit(x, y, sample_weight=w, epochs=1, verbose=0).history["loss"]).all()
    with pytest.raises(ValueError, match=r"or one per label, shape \(64, 3\)"):
        model.fit(x, y, sample_weight=w[:, :2], epochs=1, verbose=0)


@pytest.mark.parametrize("head", [tfp_bnn.CategoricalHead(3), tfp_bnn.BernoulliHead()])
def test_a_one_step_classifier_weighs_by_sample_weight_n_1_times_class_weight(head):
    # A one-step head's (N, 1) sample weights are one per example: kept (N, 1) as "one per label",
    # Keras's class weights (N,) broadcast with them to (N, N) and the loss was another number.
    classes = 3 if isinstance(head, tfp_bnn.CategoricalHead) else 2
    x = RNG.normal(size=(64, 4)).astype(np.float32)
    y = RNG.integers(0, classes, size=(64, 1)).astype(np.float32)
    w = RNG.uniform(0.5, 2.0, size=(64, 1)).astype(np.float32)
    class_weight = {k: float(k + 1) for k in range(classes)}
    inputs = tf_keras.Input((4,))
    logits = tf_keras.layers.Reshape((1, head.params_size))(tf_keras.layers.Dense(head.params_size)(inputs))
    model = tfp_bnn.BayesianModel(inputs, head(logits))
    model.compile(tf_keras.optimizers.SGD(0.0))  # every draw the same, weights fixed
    by_both = model.fit(x, y, sample_weight=w, class_weight=class_weight, batch_size=16, shuffle=False,
                        epochs=1, verbose=0).history["loss"]
    combined = w[:, 0] * np.asarray([class_weight[k] for k in y[:, 0].astype(int)], np.float32)
    by_sample = model.fit(x, y, sample_weight=combined, batch_size=16, shuffle=False, epochs=1, verbose=0).history["loss"]
    np.testing.assert_allclose(by_both, by_sample, rtol=1e-6)
