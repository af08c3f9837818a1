"""Seeds, levels, chunks and rates that a wrong implementation would get silently wrong.

Each test was written against a mutant of the code that the rest of the suite
let pass (named in its docstring): the same noise in every layer, a cached
graph that ignores ``level``, chunks joined on the wrong axis, and so on.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from scipy import stats

import tfp_bnn
from tfp_bnn import sampling

N = 30


@pytest.fixture
def inputs():
    return np.random.default_rng(0).normal(size=(N, 2)).astype(np.float32)


def _regressor(**kwargs):
    return tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=N,
                                  kernel_posterior=tfp_bnn.MeanFieldNormal(initial_scale=0.3), **kwargs)


def _mixture_cdf(result, y):
    means = result.draw_means.astype(np.float64)
    scales = np.sqrt(result.draw_variances.astype(np.float64))
    return stats.norm.cdf(np.asarray(y, np.float64)[np.newaxis], means, scales).mean(axis=0)


# -- prediction.py -------------------------------------------------------------------------------


def test_a_second_level_on_the_same_model_gives_its_own_interval(inputs):
    """Mutant: the cached graph's key leaves out ``level`` (prediction.py:192).

    The first call's graph (level 0.95) is then reused for level 0.5, and the
    0.5 interval comes back as the 95 % one: its ends sit at mixture CDF
    0.025/0.975 instead of 0.25/0.75.
    """
    model = _regressor()
    wide = tfp_bnn.predict(model, inputs, num_samples=50, seed=0, level=0.95)
    narrow = tfp_bnn.predict(model, inputs, num_samples=50, seed=0, level=0.5)
    np.testing.assert_allclose(_mixture_cdf(narrow, narrow.lower), 0.25, atol=1e-4)
    np.testing.assert_allclose(_mixture_cdf(narrow, narrow.upper), 0.75, atol=1e-4)
    assert np.all(narrow.upper - narrow.lower < 0.8 * (wide.upper - wide.lower))
    np.testing.assert_array_equal(narrow.mean, wide.mean)  # same seed: same networks


def test_unseeded_predictions_draw_afresh_and_follow_the_global_seed(inputs):
    """Mutant: ``seed=None`` becomes a fixed seed (prediction.py:634).

    Two unseeded calls then return identical numbers; they should differ as
    two Monte Carlo estimates do, and repeat after ``set_random_seed``.
    """
    model = _regressor()
    tf_keras.utils.set_random_seed(7)
    first = tfp_bnn.predict(model, inputs, num_samples=20)
    second = tfp_bnn.predict(model, inputs, num_samples=20)
    assert np.max(np.abs(first.mean - second.mean)) > 1e-3
    tf_keras.utils.set_random_seed(7)
    np.testing.assert_array_equal(tfp_bnn.predict(model, inputs, num_samples=20).mean, first.mean)


def test_log_likelihoods_in_several_chunks_are_the_one_chunk_numbers(inputs):
    """Mutant: chunks of ``log_likelihoods`` joined on the draw axis (prediction.py:645).

    The (T, N) array then comes back (T * chunks, chunk) and mixture_nll
    averages the wrong axis.
    """
    model = _regressor()
    y = np.random.default_rng(1).normal(size=N).astype(np.float32)
    one = tfp_bnn.log_likelihoods(model, inputs, y, num_samples=10, seed=0)
    chunked = tfp_bnn.log_likelihoods(model, inputs, y, num_samples=10, seed=0, batch_size=7)
    assert one.shape == chunked.shape == (10, N)
    np.testing.assert_allclose(chunked, one, rtol=1e-5, atol=1e-5)


def test_a_point_head_reports_no_aleatoric_variance_in_raw_units(inputs):
    """Mutant: PointHead.draw_statistics returns the unit training scale as variance (heads.py:231).

    A "bayesian" regressor (point head) would then report aleatoric variance
    target_std**2 = 4 and a stddev that never shrinks below 2; all its
    uncertainty is epistemic, so the aleatoric part must be exactly 0.
    """
    model = tfp_bnn.make_regressor((2,), regime="bayesian", hidden_units=(8,), train_size=N, target_std=2.0,
                                   kernel_posterior=tfp_bnn.MeanFieldNormal(initial_scale=0.3))
    result = tfp_bnn.predict(model, inputs, num_samples=50, seed=0)
    np.testing.assert_array_equal(result.aleatoric_variance, 0.0)
    np.testing.assert_allclose(result.total_variance, result.draw_means.astype(np.float64).var(axis=0), rtol=1e-4)
    assert np.all(result.epistemic_variance > 0)


# -- layers.py / sampling.py ----------------------------------------------------------------------


def test_two_layers_of_one_shape_draw_independent_weights():
    """Mutant: every layer gets the same stateless seed (sampling.py:313).

    Two Bayesian layers of equal size then draw the *same* standard-normal
    noise: the standardized weight draws of the two layers correlate at 1.0
    (MC dropout masks of equal shape likewise coincide). Independent draws
    correlate at ~0 (standard error 1/sqrt(2400) = 0.02).
    """
    inputs = tf_keras.Input((3,))
    h = tfp_bnn.BayesianDense(3, kl_weight=0.1, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))(inputs)
    h = tfp_bnn.BayesianDense(3, kl_weight=0.1, kernel_posterior=tfp_bnn.MeanFieldNormal(0.3))(h)
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(tf_keras.layers.Dense(2)(h)))
    first, second = [layer for layer in model.layers if isinstance(layer, tfp_bnn.BayesianDense)]
    record = []
    with sampling.weight_draws(200, sampling.stateless_seed(0), record=record):
        model(tf.zeros([200, 3]))
    noise = [((w.numpy() - layer.posterior.loc.numpy()) / layer.posterior.scale().numpy()).ravel()
             for w, layer in zip(record, (first, second))]
    assert abs(np.corrcoef(noise[0], noise[1])[0, 1]) < 0.1


def test_two_mc_dropout_layers_draw_independent_masks():
    """Same mutant as above (sampling.py:313), seen through MC dropout: equal masks in every layer."""
    first, second = tfp_bnn.MCDropout(0.5), tfp_bnn.MCDropout(0.5)
    with sampling.weight_draws(4, sampling.stateless_seed(0)):
        a, b = first(tf.ones([4 * 50, 20])).numpy() != 0, second(tf.ones([4 * 50, 20])).numpy() != 0
    assert 0.4 < np.mean(a == b) < 0.6  # independent fair masks agree half the time


def test_seeds_beyond_two_to_the_31_are_distinct_draws(inputs):
    """Mutant: ``stateless_seed`` drops the high 31 bits (sampling.py:418).

    Seeds 5 and 5 + 2**31 then give the same pair and the same networks,
    though both are valid seeds of predict and of the served signatures.
    """
    low, high = sampling.stateless_seed(5).numpy(), sampling.stateless_seed(5 + 2**31).numpy()
    assert low.tolist() == [5, 0] and high.tolist() == [5, 1]
    model = _regressor()
    a = tfp_bnn.predict(model, inputs, num_samples=10, seed=5)
    b = tfp_bnn.predict(model, inputs, num_samples=10, seed=5 + 2**31)
    assert np.max(np.abs(a.mean - b.mean)) > 1e-3


# -- baselines.py / models.py ---------------------------------------------------------------------


def test_mc_dropout_drops_at_its_rate_inside_predict():
    """Mutant: the seeded path (the one predict and serving use) drops at 1 - rate (baselines.py:82).

    The existing test of the seeded path uses rate 0.5, where p and 1 - p agree.
    """
    layer = tfp_bnn.MCDropout(0.1)
    with sampling.weight_draws(10, sampling.stateless_seed(0)):
        outputs = layer(tf.ones([10 * 100, 20])).numpy()
    assert abs(np.mean(outputs == 0) - 0.1) < 0.02
    np.testing.assert_allclose(outputs[outputs != 0], 1 / 0.9, rtol=1e-6)


def test_mc_dropout_weight_decay_is_l2_one_minus_p_over_2n():
    """Mutant: the decay uses p instead of 1 - p (models.py:486).

    The README promises ``l^2 (1 - p) / (2N)``; model.losses must be that
    times the squared norm of every Dense kernel after the dropout.
    """
    from tfp_bnn.models import MC_DROPOUT_LENGTH_SCALE

    rate, n = 0.2, 40
    model = tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=n, inference="mc_dropout", dropout_rate=rate)
    dense = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.Dense)]
    assert len(dense) == 2
    decay = MC_DROPOUT_LENGTH_SCALE**2 * (1 - rate) / (2 * n)
    expected = decay * sum(np.sum(layer.kernel.numpy().astype(np.float64) ** 2) for layer in dense)
    np.testing.assert_allclose(float(tf.add_n(model.losses)), expected, rtol=1e-5)


# -- serving.py -----------------------------------------------------------------------------------


def test_exported_interval_has_the_exported_level(inputs, tmp_path):
    """Mutant: the served summary ignores ``level`` (serving.py:245) and always answers 95 %.

    tfp_bnn.json records level 0.5 while lower/upper are the 95 % ends.
    """
    from tfp_bnn import serving

    model = _regressor()
    serving.export_for_serving(model, tmp_path / "m", num_samples=20, level=0.5)
    loaded = tf.saved_model.load(str(tmp_path / "m" / "1"))
    answer = loaded.signatures["seeded"](x=tf.constant(inputs), seed=tf.constant(3, tf.int64))
    expected = tfp_bnn.predict(model, inputs, num_samples=20, seed=3, level=0.5)
    np.testing.assert_allclose(answer["lower"].numpy(), expected.lower, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(answer["upper"].numpy(), expected.upper, rtol=1e-4, atol=1e-4)


def test_a_bayesian_model_retraces_its_steps_for_another_seed(inputs):
    """Bug (before the fix): ``Mode.key`` held whether there is a seed, not which one (sampling.py).

    ``predict``/``evaluate`` inside ``weight_draws(T, seed=2)`` then reused the
    step traced under seed 1, whose seed is a constant of its graph: the
    numbers of seed 1 again, silently.
    """
    model = _regressor()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    num_draws = 4
    x = sampling.stack_draws(inputs, num_draws).numpy()
    y = np.zeros((len(x), 1), np.float32)

    def run(seed):
        with sampling.weight_draws(num_draws, seed=sampling.stateless_seed(seed)):
            means = model.predict(x, batch_size=len(x), verbose=0)
            nll = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["nll"]
        return means, nll

    first, first_nll = run(1)
    other, other_nll = run(2)
    again, again_nll = run(1)
    assert np.max(np.abs(first - other)) > 1e-3 and first_nll != other_nll
    np.testing.assert_array_equal(again, first)
    assert again_nll == first_nll


def test_in_one_seeded_context_every_step_and_every_function_uses_the_same_networks(inputs):
    """Bug (before the fix): layer seeds and draws were counted over the context's life.

    Keras's multi-step function (BayesianModel compiles 32 steps per execution)
    calls the step a second time inside a loop: every batch after the first
    got other networks (seeds ``fold_in(seed, L + i)``). A second function
    traced in the same context (``evaluate`` before ``predict``) likewise
    shifted the seeds, so ``predict``'s numbers depended on what ran before.
    """
    num_draws = 4
    same_rows = np.concatenate([inputs[:8]] * 4)  # four batches of the same 8 rows
    batches = tf.data.Dataset.from_tensor_slices(same_rows).batch(8).map(
        lambda b: sampling.stack_draws(b, num_draws))
    x = sampling.stack_draws(inputs[:8], num_draws).numpy()

    def fresh_model():
        tf_keras.utils.set_random_seed(0)
        model = _regressor()
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))  # steps_per_execution 32
        return model

    model = fresh_model()
    with sampling.weight_draws(num_draws, seed=sampling.stateless_seed(1)):
        by_batch = model.predict(batches, verbose=0).reshape(4, -1)
        alone = model.predict(x, batch_size=len(x), verbose=0)
    for k in range(1, 4):
        np.testing.assert_array_equal(by_batch[k], by_batch[0])
    model = fresh_model()
    y = np.linspace(-1, 1, 8, dtype=np.float32)[:, np.newaxis]
    with sampling.weight_draws(num_draws, seed=sampling.stateless_seed(1)):
        nll = model.evaluate(x, sampling.stack_draws(y, num_draws).numpy(), batch_size=len(x), verbose=0,
                             return_dict=True)["nll"]
        after_evaluate = model.predict(x, batch_size=len(x), verbose=0)
    np.testing.assert_array_equal(after_evaluate, alone)
    np.testing.assert_array_equal(alone[:, 0], by_batch[0])
    # The networks of tfp_bnn.log_likelihoods with the same seed: evaluate's nll is their mean.
    log_likelihoods = tfp_bnn.log_likelihoods(model, inputs[:8], y, num_samples=num_draws, seed=1)
    assert nll == pytest.approx(-log_likelihoods.mean(), rel=1e-5)


def test_a_variable_seed_is_read_at_run_time_without_a_retrace(inputs):
    """Regression (cdc11dc): Mode.key held a tf.Variable seed's value, so each assign retraced the steps."""
    model = _regressor()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    num_draws = 4
    x = sampling.stack_draws(inputs, num_draws).numpy()
    seed = tf.Variable([1, 0], dtype=tf.int32)
    outputs, functions = [], set()
    for value in ([1, 0], [2, 0]):
        seed.assign(value)
        with sampling.weight_draws(num_draws, seed=seed):
            outputs.append(model.predict(x, batch_size=len(x), verbose=0))
        functions.add(id(model.predict_function))
    assert len(functions) == 1
    assert np.max(np.abs(outputs[0] - outputs[1])) > 1e-3
    with sampling.weight_draws(num_draws, seed=tf.constant([2, 0])):  # the value itself: the same networks
        np.testing.assert_array_equal(model.predict(x, batch_size=len(x), verbose=0), outputs[1])


def test_a_new_seed_value_in_weight_draws_does_not_retrace_the_steps(inputs):
    """Bug: each new seed value retraced Keras's predict/test steps (Mode.key holds the value).

    A loop over seeds (``with weight_draws(T, seed=s): model.predict(...)``) paid
    a trace per call (~0.5 s for predict, ~1.5 s for evaluate of a 1x8
    network, 10-20x a call) and kept memory per trace. The steps read the seed
    at run time instead: one function for every seed, and the numbers of the
    seed (as a tf.Variable seed gives them, and as before for the seed's value).
    """
    model = _regressor()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    num_draws = 4
    x = sampling.stack_draws(inputs, num_draws).numpy()
    y = np.zeros((len(x), 1), np.float32)
    functions, outputs = set(), {}
    for seed in (1, 2, 3, 1):
        with sampling.weight_draws(num_draws, seed=sampling.stateless_seed(seed)):
            means = model.predict(x, batch_size=len(x), verbose=0)
            nll = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["nll"]
        functions.add((id(model.predict_function), id(model.test_function)))
        outputs.setdefault(seed, []).append((means, nll))
    assert len(functions) == 1
    assert np.max(np.abs(outputs[1][0][0] - outputs[2][0][0])) > 1e-3
    np.testing.assert_array_equal(outputs[1][1][0], outputs[1][0][0])
    assert outputs[1][1][1] == outputs[1][0][1]
    variable = tf.Variable([0, 0], dtype=tf.int32)  # the seed read at run time, as the steps now read it
    for seed in (1, 2, 3):
        variable.assign(sampling.stateless_seed(seed))
        with sampling.weight_draws(num_draws, seed=variable):
            np.testing.assert_array_equal(model.predict(x, batch_size=len(x), verbose=0), outputs[seed][0][0])
    assert "weight_draws_seed" not in " ".join(w.name for w in model.weights)  # not model state


def test_keras_calls_on_one_model_from_two_threads_run_one_at_a_time_with_their_own_seeds(inputs):
    """Bug: Keras's calls share the model's seed variable, step functions and steps_per_execution.

    Eight threads calling ``model.predict`` inside ``weight_draws(4, seed)`` with their own
    seeds got another thread's draws in 34 of 40 calls; under ``posterior_mean`` 2 of 40
    raised "Empty batch_outputs". A second thread's call now starts when the first has ended.
    """
    import threading

    model = _regressor()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    num_draws = 4
    x = sampling.stack_draws(inputs, num_draws).numpy()

    def seeded_predict(seed, callbacks=()):
        with sampling.weight_draws(num_draws, seed=sampling.stateless_seed(seed)):
            return model.predict(x, batch_size=len(x), verbose=0, callbacks=list(callbacks))

    expected = {seed: seeded_predict(seed) for seed in (1, 2)}
    assert np.max(np.abs(expected[1] - expected[2])) > 1e-3
    started, results = threading.Event(), {}

    class Started(tf_keras.callbacks.Callback):
        def on_predict_begin(self, logs=None):
            started.set()

    class SecondThreadMeanwhile(tf_keras.callbacks.Callback):
        def on_predict_begin(self, logs=None):  # the first call has assigned its seed: a second one starts
            second.start()
            results["second started meanwhile"] = started.wait(1.0)

    second = threading.Thread(target=lambda: results.setdefault(2, seeded_predict(2, [Started()])))
    # The waiting thread says so (a thread that fit's callback joined would wait for good).
    with pytest.warns(UserWarning, match="running in another thread: this call waits for it"):
        results[1] = seeded_predict(1, [SecondThreadMeanwhile()])
        second.join()
    assert results["second started meanwhile"] is False
    np.testing.assert_array_equal(results[1], expected[1])
    np.testing.assert_array_equal(results[2], expected[2])


def test_other_recorded_weights_retrace_the_steps(inputs):
    """Bug: Mode.key left out ``weights``: ``model.predict`` in ``weight_draws(T, weights=other)``
    reused the step traced with the first weights (captured by its graph): their networks, silently."""
    model = _regressor()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    num_draws = 4
    x = sampling.stack_draws(inputs, num_draws).numpy()
    records, predicted, eager = [[], []], [], []
    for seed, record in zip((1, 2), records):
        with sampling.weight_draws(num_draws, seed=sampling.stateless_seed(seed), record=record):
            model(x)
    for record in records:
        with sampling.weight_draws(num_draws, weights=record):
            predicted.append(model.predict(x, batch_size=len(x), verbose=0))
            eager.append(model(x).mean().numpy())
    assert np.max(np.abs(predicted[0] - predicted[1])) > 1e-3
    for p, e in zip(predicted, eager):
        np.testing.assert_allclose(p, e, rtol=1e-6, atol=1e-6)


def test_seeded_steps_leave_tf_modules_view_of_the_model_as_it_was(inputs):
    """Bug: the seed variables, a dict keyed by DType in the model's attributes, broke tf.Module's
    walk (``model.submodules``: "'<' not supported between instances of 'DType' and 'DType'")
    after seeds of both dtypes, and showed up in ``tf.Module.variables`` after one."""
    model = _regressor()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    x = sampling.stack_draws(inputs, 2).numpy()
    submodules = len(model.submodules)
    variables = [v.ref() for v in tf.Module.variables.fget(model)]
    for seed in ((1, 2), np.array([1, 2], np.int64)):
        with sampling.weight_draws(2, seed=seed):
            model.predict(x, verbose=0)
        assert len(model.submodules) == submodules
        assert [v.ref() for v in tf.Module.variables.fget(model)] == variables


def test_seeds_of_one_value_in_either_integer_dtype_share_one_trace(inputs):
    """Bug: one seed variable per dtype (models.py ``_SeedVariables``): Mode.key holds the variable, so
    seeds alternating int32/int64 (``stateless_seed`` gives int32, a NumPy seed int64) retraced
    Keras's predict/test steps at each switch. One int64 variable: the same numbers for the same values."""
    model = _regressor()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    num_draws = 4
    x = sampling.stack_draws(inputs, num_draws).numpy()
    y = np.zeros((len(x), 1), np.float32)
    functions, outputs = set(), []
    big = tf.constant([2**40 + 1, -(2**35)], tf.int64)  # beyond int32: reaches the ops as it is
    for seed in (tf.constant([1, 2], tf.int32), np.array([1, 2], np.int64), (1, 2), tf.constant([1, 2], tf.int64), big):
        with sampling.weight_draws(num_draws, seed=seed):
            means = model.predict(x, batch_size=len(x), verbose=0)
            nll = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["nll"]
        functions.add((id(model.predict_function), id(model.test_function)))
        outputs.append((means, nll))
    assert len(functions) == 1
    for means, nll in outputs[1:-1]:
        np.testing.assert_array_equal(means, outputs[0][0])
        assert nll == outputs[0][1]
    assert np.max(np.abs(outputs[-1][0] - outputs[0][0])) > 1e-3
    for seed, (means, _) in ((tf.constant([1, 2], tf.int32), outputs[0]), (big, outputs[-1])):
        with sampling.weight_draws(num_draws, seed=seed, record=[]):  # a record: the seed traced as a constant
            np.testing.assert_array_equal(model.predict(x, batch_size=len(x), verbose=0), means)
