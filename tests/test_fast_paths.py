"""The fast paths of training and prediction (measured by benchmarks/speed.py) compute the same thing."""

import logging

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import sampling

IN, OUT = 4, 3


@pytest.mark.parametrize("estimator", ["flipout", "local_reparameterization"])
def test_every_estimator_draws_one_network_per_block_for_prediction(estimator):
    # Without bias the layer is linear in its input for a fixed weight draw:
    # f_t(a + b) = f_t(a) + f_t(b) holds only if rows a, b, a + b of block t share W_t.
    layer = tfp_bnn.BayesianDense(OUT, estimator=estimator, use_bias=False,
                                  kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    a, b = np.random.default_rng(0).normal(size=(2, IN)).astype(np.float32)
    inputs = np.stack([a, b, a + b])
    layer(inputs)
    with sampling.weight_draws(50, seed=tf.constant([7, 8])):
        outputs = layer(np.tile(inputs, [50, 1])).numpy().reshape(50, 3, OUT)
    np.testing.assert_allclose(outputs[:, 2], outputs[:, 0] + outputs[:, 1], rtol=1e-5, atol=1e-5)
    assert outputs[:, 0].std(axis=0).min() > 0.1


def test_one_kernel_for_all_rows_is_the_batched_matmul():
    layer = tfp_bnn.BayesianDense(OUT, estimator="reparameterization")
    x = tf.random.normal([2, 5, IN])  # [T, batch, in]
    layer.build((None, IN))
    kernel = tf.random.normal([1, IN, OUT])
    np.testing.assert_allclose(layer._apply_kernel(x, kernel).numpy(), tf.matmul(x, kernel).numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        layer._apply_kernel(x[:1], kernel).numpy(), tf.matmul(x[:1], kernel).numpy(), rtol=1e-5
    )


def test_compile_runs_32_steps_per_execution_unless_told_otherwise():
    model = tfp_bnn.make_regressor((1,), regime="probabilistic")
    model.compile()
    assert model._steps_per_execution.numpy() == tfp_bnn.models.DEFAULT_STEPS_PER_EXECUTION == 32
    model.compile(steps_per_execution=1)
    assert model._steps_per_execution.numpy() == 1


def test_fit_with_several_steps_per_execution_runs_every_batch_once():
    x = np.random.default_rng(0).normal(size=(100, 1)).astype("float32")
    model = tfp_bnn.make_regressor((1,), train_size=100)
    model.compile()
    model.fit(x, x[:, 0], batch_size=8, epochs=3, verbose=0)  # 13 batches: 32 > an epoch, and a partial batch
    assert model.optimizer.iterations.numpy() == 3 * 13


def test_one_batch_methods_run_one_step_under_several_steps_per_execution():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, IN)).astype("float32")
    y = x.sum(axis=1)
    model = tfp_bnn.make_regressor((IN,), regime="probabilistic", hidden_units=(8,))
    model.compile(optimizer=tf_keras.optimizers.SGD(0.01))
    reference = tf_keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    reference.compile(optimizer=tf_keras.optimizers.SGD(0.01), steps_per_execution=1)

    # The same step as with one step per execution (before: OutOfRangeError from the iterator).
    for m in (model, reference):
        m.train_on_batch(x[:10], y[:10])
    assert model.optimizer.iterations.numpy() == 1
    for got, expected in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(model.test_on_batch(x[:10], y[:10]), reference.test_on_batch(x[:10], y[:10]), rtol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x[:3]), reference.predict_on_batch(x[:3]), rtol=1e-6)
    # fit afterwards still runs 32 steps per execution and every batch once.
    assert model._steps_per_execution.numpy() == 32
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert model.optimizer.iterations.numpy() == 1 + 10


def test_recorded_weight_draws_replay_the_same_networks_without_new_random_numbers():
    layer = tfp_bnn.BayesianDense(OUT, estimator="flipout", kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    x = np.random.default_rng(1).normal(size=(6, IN)).astype(np.float32)
    layer(x)
    record = []
    with sampling.weight_draws(4, seed=tf.constant([1, 2]), record=record):
        first = layer(np.tile(x, [4, 1])).numpy()
    assert [w.shape for w in record] == [(4, IN * OUT + OUT)]
    # Another seed, but the recorded weights: the same four networks.
    with sampling.weight_draws(4, seed=tf.constant([3, 4]), weights=record):
        replayed = layer(np.tile(x, [4, 1])).numpy()
    np.testing.assert_array_equal(replayed, first)
    with sampling.weight_draws(4, seed=tf.constant([3, 4])):
        fresh = layer(np.tile(x, [4, 1])).numpy()
    assert np.abs(fresh - first).max() > 0.1


@pytest.mark.parametrize("estimator", ["flipout", "variational"])
def test_prediction_draws_the_weights_once_so_chunks_do_not_change_the_networks(estimator):
    model = tfp_bnn.make_regressor((IN,), hidden_units=(8,), train_size=100, estimator=estimator,
                                   kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    x = np.random.default_rng(2).normal(size=(23, IN)).astype(np.float32)
    whole = tfp_bnn.predict(model, x, num_samples=10, seed=5, batch_size=23)
    chunked = tfp_bnn.predict(model, x, num_samples=10, seed=5, batch_size=4)
    np.testing.assert_allclose(chunked.draw_means, whole.draw_means, rtol=1e-5, atol=1e-6)
    assert whole.draw_means.std(axis=0).min() > 1e-3  # ten different networks, not one


def test_flipout_flips_the_shared_perturbation_with_fair_independent_signs():
    # One input equal to 1: example n sees M + r_n s_n dW, so y_n - M is +-dW with the sign
    # r_n s_nj, which must be +1 or -1 with probability 1/2, independently across outputs.
    rows = 4000
    layer = tfp_bnn.BayesianDense(OUT, estimator="flipout", use_bias=False,
                                  kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
    layer.build((None, 1))
    deviation = layer(tf.ones([rows, 1])).numpy() - layer.posterior.distribution().mean().numpy()
    np.testing.assert_allclose(np.abs(deviation), np.abs(deviation[:1]).repeat(rows, 0), rtol=1e-5)
    signs = np.sign(deviation)
    standard_error = np.sqrt(0.25 / rows)
    assert np.all(np.abs((signs > 0).mean(axis=0) - 0.5) < 4 * standard_error)
    correlation = np.corrcoef(signs, rowvar=False)[np.triu_indices(OUT, 1)]
    assert np.all(np.abs(correlation) < 4 * 2 * standard_error)


@pytest.mark.parametrize("steps_per_execution", [1, 32])
def test_fit_feeds_arrays_in_the_same_batches_as_keras(steps_per_execution):
    # BayesianModel.fit hands Keras a dataset of the arrays (autotuning off); Keras's own
    # fit of the same arrays must give the same history and weights: same batches, same
    # validation_split rows, same sample weights, same partial last batch.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(103, IN)).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) + 0.1 * rng.normal(size=(103, 1))).astype(np.float32)
    weights = rng.uniform(0.1, 2.0, size=103).astype(np.float32)
    histories, final_weights = [], []
    for fit in (tfp_bnn.BayesianModel.fit, tf_keras.Model.fit):
        tf_keras.utils.set_random_seed(0)
        model = tfp_bnn.make_regressor((IN,), hidden_units=(8,), regime="probabilistic")
        model.compile(optimizer=tf_keras.optimizers.SGD(0.05), steps_per_execution=steps_per_execution)
        history = fit(model, x, y, batch_size=10, epochs=3, shuffle=False, sample_weight=weights,
                      validation_split=0.25, verbose=0)
        histories.append(history.history)
        final_weights.append(model.get_weights())
        assert model.optimizer.iterations.numpy() == 3 * 8  # 78 training rows in batches of 10
    assert sorted(histories[0]) == sorted(histories[1])
    for name in histories[0]:
        np.testing.assert_allclose(histories[0][name], histories[1][name], rtol=1e-5, err_msg=name)
    for ours, keras in zip(*final_weights):
        np.testing.assert_allclose(ours, keras, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loop_from_rows", [0, 10**9])
@pytest.mark.parametrize("estimator", ["flipout", "variational"])
def test_draws_one_at_a_time_are_the_networks_of_the_stacked_batch(estimator, loop_from_rows, monkeypatch):
    # predict runs the network below the head once per draw in a graph loop (large
    # batches) or stacked (small ones); with the same seed either must predict what the
    # stacked [T * B] batch through the whole model does.
    from tfp_bnn import prediction

    monkeypatch.setattr(prediction, "_LOOP_FROM_ROWS", loop_from_rows)

    x = np.random.default_rng(4).normal(size=(37, IN)).astype(np.float32)
    models = []
    for _ in range(2):
        model = tfp_bnn.make_regressor((IN,), hidden_units=(16, 8), train_size=100, estimator=estimator,
                                       kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))
        model(x[:1])
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    assert prediction._body(models[0]) is not None
    prediction._functions(models[1])["body"] = None  # the stacked batch
    loop, stacked = (tfp_bnn.predict(model, x, num_samples=20, seed=9) for model in models)
    np.testing.assert_allclose(loop.draw_means, stacked.draw_means, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loop.draw_variances, stacked.draw_variances, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loop.upper, stacked.upper, rtol=1e-4, atol=1e-4)
    assert loop.draw_means.std(axis=0).min() > 1e-3


@pytest.mark.parametrize("inference", ["variational", "ensemble", "mc_dropout"])
def test_a_model_compiled_with_jit_compile_predicts_through_xla_the_same_distribution(inference):
    # model.compile(jit_compile=True) asks for XLA, as Keras's own predict honours it; the
    # weight draws come from the same seed, so only float rounding may differ. MC dropout
    # stays on the plain graph (its per-row masks would come from XLA's slow generator):
    # the same numbers exactly.
    from tfp_bnn import prediction

    x = np.random.default_rng(5).normal(size=(41, IN)).astype(np.float32)
    y = x[:, :1] ** 2
    model = tfp_bnn.make_regressor((IN,), hidden_units=(16,), train_size=100, inference=inference)
    results = {}
    for jit_compile in (False, True):
        model.compile(jit_compile=jit_compile)
        results[jit_compile] = (tfp_bnn.predict(model, x, num_samples=20, seed=3),
                                tfp_bnn.log_likelihoods(model, x, y, num_samples=20, seed=3))
    compiled = sorted(fn._jit_compile for key, fn in prediction._functions(model).items() if key[0] == "predict")
    assert compiled == ([False] if inference == "mc_dropout" else [False, True])
    (graph, graph_ll), (xla, xla_ll) = results[False], results[True]
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if inference != "mc_dropout" else {"rtol": 0, "atol": 0}
    for name in ("draw_means", "draw_variances", "lower", "upper"):
        np.testing.assert_allclose(getattr(xla, name), getattr(graph, name), **tolerance, err_msg=name)
    np.testing.assert_allclose(xla_ll, graph_ll, **tolerance)
    assert graph.draw_means.std(axis=0).min() > 1e-4  # T different networks


def test_predicting_with_several_new_models_traces_each_once_and_warns_of_no_retracing():
    # TensorFlow counts traces per Python code object: every new model's first trace
    # of the same function body used to count as a retrace ("5 out of the last 5 calls
    # ... triggered tf.function retracing"), noise for anyone comparing a few models.
    from tfp_bnn import prediction

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    tf.get_logger().addHandler(handler)
    x = np.random.default_rng(6).normal(size=(9, IN)).astype(np.float32)
    models = [tfp_bnn.make_regressor((IN,), hidden_units=(4,), train_size=9) for _ in range(6)]
    try:
        for model in models:
            for _ in range(2):
                tfp_bnn.predict(model, x, num_samples=5, seed=1)
                tfp_bnn.log_likelihoods(model, x, x[:, :1], num_samples=5, seed=1)
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [message for message in messages if "retracing" in message]
    counts = [fn.experimental_get_tracing_count() for model in models for fn in prediction._functions(model).values()
              if hasattr(fn, "experimental_get_tracing_count")]
    assert len(counts) >= 3 * len(models) and set(counts) == {1}


# -- what a long-running service needs -----------------------------------------------------------------------


def _predicted_model():
    x = np.random.default_rng(7).normal(size=(9, IN)).astype(np.float32)
    model = tfp_bnn.make_regressor((IN,), hidden_units=(8,), train_size=9)
    tfp_bnn.predict(model, x, num_samples=5, seed=1)
    tfp_bnn.log_likelihoods(model, x, x[:, :1], num_samples=5, seed=1)
    return model


def test_a_model_that_predicted_is_freed_with_its_graphs():
    # A service that reloads a model version and predicts kept every old model (14 MB for a
    # 1x50 network): the cache's weak keys were held by their own values, functions that close
    # over the model. And TFP's process-wide bijector cache kept every graph that sampled a
    # MultivariateNormalDiag (31 MB per serving export).
    import gc
    import weakref

    from tfp_bnn import prediction

    model = _predicted_model()
    functions = [fn for fn in prediction._functions(model).values() if hasattr(fn, "get_concrete_function")]
    graphs = [weakref.ref(fn.get_concrete_function().graph) for fn in functions]
    alive = weakref.ref(model)
    assert len(graphs) >= 3 and all(graph() is not None for graph in graphs)
    del model, functions
    gc.collect()
    assert alive() is None
    assert [graph() for graph in graphs] == [None] * len(graphs)


def test_first_predictions_from_several_threads_at_once_all_succeed():
    # Tracing calls the heads, and TFP's DistributionLambda.__call__ keeps a flag per instance
    # that two threads tracing at once overwrote: 1-3 of 24 first calls failed.
    from concurrent.futures import ThreadPoolExecutor

    x = np.random.default_rng(8).normal(size=(50, IN)).astype(np.float32)
    model = tfp_bnn.make_regressor((IN,), hidden_units=(8,), train_size=50)
    calls = [(num_samples, seed) for num_samples in (5, 10, 20) for seed in range(8)]

    def one(call):
        return tfp_bnn.predict(model, x, num_samples=call[0], seed=call[1]).mean

    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(one, calls))
    for call, mean in zip(calls, concurrent):
        np.testing.assert_array_equal(mean, one(call))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_full_covariance_draws_without_tfp_bijectors_are_its_distributions_bit_for_bit(dtype):
    # FullCovarianceNormal samples loc + L z and builds L without TFP's FillScaleTriL/Softplus
    # bijectors (their cache and custom gradient kept every graph alive): the same numbers.
    import tensorflow_probability as tfp

    tfb = tfp.bijectors
    layer = tfp_bnn.FullCovarianceNormal(0.05).make_layer(6, 2, dtype=dtype, kernel_shape=(3, 2))
    rng = np.random.default_rng(9)
    layer.untransformed_scale_tril.assign(rng.normal(size=36, scale=6.0))  # diagonals above and below the cutoff
    layer.loc.assign(rng.normal(size=8))
    fill = tfb.FillScaleTriL(diag_bijector=tfb.Softplus(), diag_shift=tf.constant(1e-6, dtype))
    expected = tfp.distributions.MultivariateNormalTriL(layer.loc, fill.forward(layer.untransformed_scale_tril))
    seed = sampling.stateless_seed(4)
    for run in (lambda f: f(), tf.function(lambda f: f())):
        np.testing.assert_array_equal(run(layer.scale_tril), fill.forward(layer.untransformed_scale_tril))
        np.testing.assert_array_equal(run(lambda: layer.sample_weights(5, seed)), expected.sample(5, seed=seed))
    np.testing.assert_array_equal(layer.distribution().log_prob(np.ones(8)), expected.log_prob(np.ones(8)))


def test_a_full_covariance_model_that_predicted_and_exported_is_freed_with_its_graphs(tmp_path):
    # Its L went through TFP's bijector cache and its Softplus through a tf.custom_gradient,
    # whose gradient function TensorFlow registers process-wide: each held its graph, 3.8 MB
    # per predicted model and 34 MB per serving export of a 3-8-2 network, for good.
    import gc
    import weakref

    from tfp_bnn import prediction, serving

    x = np.random.default_rng(7).normal(size=(9, IN)).astype(np.float32)
    model = tfp_bnn.make_regressor((IN,), hidden_units=(4,), train_size=9, estimator="variational",
                                   kernel_posterior=tfp_bnn.FullCovarianceNormal())
    tfp_bnn.predict(model, x, num_samples=5, seed=1)
    tfp_bnn.log_likelihoods(model, x, x[:, :1], num_samples=5, seed=1)
    functions = [fn for fn in prediction._functions(model).values() if hasattr(fn, "get_concrete_function")]
    graphs = [weakref.ref(fn.get_concrete_function().graph) for fn in functions]
    with sampling.posterior_mean():  # the mean network builds L too
        mean_fn = tf.function(lambda t: model(t))
        graphs.append(weakref.ref(mean_fn.get_concrete_function(tf.TensorSpec([None, IN])).graph))
    serving.export_for_serving(model, tmp_path / "full", num_samples=5)
    alive = weakref.ref(model)
    assert len(graphs) >= 4 and all(graph() is not None for graph in graphs)
    del model, functions, mean_fn
    gc.collect()
    assert alive() is None
    assert [graph() for graph in graphs] == [None] * len(graphs)


def test_a_stacked_batch_of_images_is_bounded_by_its_widest_activation_not_its_row_count():
    # Below 2**16 stacked rows predict ran T * B rows through every layer at once, whatever a
    # row holds: 300 CIFAR-sized images (T = 100) through a 32-filter convolution kept
    # 100 * 300 * 32 * 32 * 32 floats, 8.9 GiB peak, and 600 of them did not fit (1,365 took
    # the loop: 1.4 GiB). A layer after the convolution records how many numbers each call sees.
    seen = []

    def record(t):
        seen.append(int(t))
        return t

    inputs = tf_keras.Input((64, 64, 3))
    hidden = tfp_bnn.BayesianConv2D(16, 3, padding="same", activation="relu", kl_weight=1e-3)(inputs)

    def recorded(h):
        size = tf.numpy_function(record, [tf.size(h, tf.int64)], tf.int64, stateful=True)
        size.set_shape([])
        return h + tf.cast(size, h.dtype) * 0.0

    hidden = tf_keras.layers.Lambda(recorded, output_shape=lambda shape: shape)(hidden)
    hidden = tf_keras.layers.GlobalAveragePooling2D()(hidden)
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(3)(tfp_bnn.BayesianDense(3, kl_weight=1e-3)(hidden)))
    x = np.random.default_rng(0).normal(size=(12, 64, 64, 3)).astype(np.float32)
    seen.clear()
    result = tfp_bnn.predict(model, x, num_samples=50, seed=0)  # 600 stacked rows of 64 * 64 * 16 numbers
    assert result.draw_probabilities.shape == (50, 12, 3)
    assert seen and max(seen) <= 2**25, max(seen)  # 128 MiB of float32 per activation
    # A small stacked batch still goes through at once (not one call per draw; the other
    # call is the pass of one input per draw that records the weight draws).
    seen.clear()
    tfp_bnn.predict(model, x[:1], num_samples=5, seed=0)
    assert seen == [5 * 64 * 64 * 16] * 2, seen


def test_the_widest_row_is_that_of_the_predicted_model_not_of_other_models_sharing_a_layer():
    # A layer's inbound nodes include its calls in other models: a convolution first called on
    # 224 x 224 images made an 8 x 8 model loop over the draws from 41 stacked rows on.
    from tfp_bnn import prediction

    conv = tfp_bnn.BayesianConv2D(16, 3, padding="same", kl_weight=1e-3)
    big = tf_keras.Input((224, 224, 3))
    tf_keras.Model(big, conv(big))
    small = tf_keras.Input((8, 8, 3))
    hidden = tf_keras.layers.Flatten()(conv(small))
    model = tfp_bnn.BayesianModel(small, tfp_bnn.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=1e-3)(hidden)))
    assert prediction._widest_row(prediction._body(model)) == 8 * 8 * 16
    # A nested model's activations count too.
    inner = tf_keras.Sequential([tf_keras.Input((8, 8, 3)), tfp_bnn.BayesianConv2D(32, 3, padding="same",
                                                                                  kl_weight=1e-3)])
    outer_inputs = tf_keras.Input((8, 8, 3))
    flat = tf_keras.layers.Flatten()(inner(outer_inputs))
    outer = tfp_bnn.BayesianModel(
        outer_inputs, tfp_bnn.NormalHead(1)(tfp_bnn.BayesianDense(2, kl_weight=1e-3)(flat)))
    assert prediction._widest_row(prediction._body(outer)) == 8 * 8 * 32
