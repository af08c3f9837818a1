"""Process-global state: tf.config switches a notebook or a search loop leaves on."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn


def _shared_layer_model():
    inputs = tf_keras.Input((4,))
    shared = tfp_bnn.BayesianDense(4, kl_weight=1 / 64, activation="tanh")
    features = tf_keras.layers.Dense(2)(shared(shared(inputs)))
    return tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead()(features))


@pytest.mark.parametrize("predicted_in_graph_first", [True, False])
def test_run_functions_eagerly_predicts_what_the_graph_predicts_for_a_shared_layer(predicted_in_graph_first):
    """Eagerly a shared Bayesian layer's second call drew new weights: draw t was not one network."""
    x = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    model = _shared_layer_model()
    if predicted_in_graph_first:
        graph = tfp_bnn.predict(model, x, num_samples=10, seed=1)
    tf.config.run_functions_eagerly(True)
    try:
        eager = tfp_bnn.predict(model, x, num_samples=10, seed=1)
        eager_ll = tfp_bnn.log_likelihoods(model, x, x[:, :1], num_samples=10, seed=1)
    finally:
        tf.config.run_functions_eagerly(False)
    if not predicted_in_graph_first:
        graph = tfp_bnn.predict(model, x, num_samples=10, seed=1)
    graph_ll = tfp_bnn.log_likelihoods(model, x, x[:, :1], num_samples=10, seed=1)
    np.testing.assert_allclose(eager.draw_means, graph.draw_means, atol=1e-6)
    np.testing.assert_allclose(eager.epistemic_variance, graph.epistemic_variance, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(eager_ll, graph_ll, atol=1e-5)


def test_tf1_graph_mode_is_refused_with_a_clear_message():
    """In TF1 graph mode Keras builds training_v1 models: compile refused tfp_bnn's own arguments
    ("Invalid keyword argument(s) in `compile`: {'jit_compile', 'steps_per_execution'}") and
    predict failed on ".numpy()" of a SymbolicTensor."""
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        tf.compat.v1.disable_eager_execution()
        import tf_keras, tfp_bnn
        messages = []
        try:
            tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=10)
        except RuntimeError as error:
            messages.append(str(error))
        plain = tf_keras.Sequential([tf_keras.Input((1,)), tfp_bnn.BayesianDense(2, kl_weight=0.1),
                                     tfp_bnn.NormalHead()])
        for call in (lambda: tfp_bnn.predict(plain, np.zeros((2, 1)), num_samples=3, seed=0),
                     lambda: tfp_bnn.serving.export_for_serving(plain, "/nonexistent/m")):
            try:
                call()
            except RuntimeError as error:
                messages.append(str(error))
        print(len(messages), all("disable_eager_execution" in m for m in messages))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1:] == ["3 True"], out.stdout + out.stderr[-2000:]


_SEARCH_LOOP_CHILD = textwrap.dedent("""
    import json, logging
    import numpy as np, tensorflow as tf, tf_keras
    from tensorflow.python.framework import ops  # the registry itself: what held the graphs
    import tfp_bnn
    from tfp_bnn import sampling
    messages = []
    handler = type("Collect", (logging.Handler,), {"emit": lambda self, r: messages.append(r.getMessage())})()
    tf.get_logger().addHandler(handler)
    x = np.random.default_rng(0).normal(size=(64, 1)).astype(np.float32)

    def retracing_warnings():
        return sum("retracing" in m for m in messages)

    def custom_gradients():
        return sum(key.startswith("CustomGradient") for key in ops._gradient_registry.list())

    report = {}
    # 1. A search loop: MC dropout and ensembles train through the same step as variational models.
    gradients_before = custom_gradients()
    for inference in ("variational", "variational", "mc_dropout", "ensemble", "variational", "mc_dropout"):
        tf_keras.backend.clear_session()
        model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=64, inference=inference)
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
        model.fit(x, x, epochs=2, batch_size=32, verbose=0)
        model.evaluate(x, x, verbose=0)
        model.predict(x, verbose=0)
    report["search_loop_retracing_warnings"] = retracing_warnings()
    report["search_loop_new_custom_gradients"] = custom_gradients() - gradients_before

    # 2. Alternating sampling modes on one model: counted on their own.
    warnings_before = retracing_warnings()
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=64)
    model.compile(optimizer="adam")
    for i in range(12):
        draws = 3 + i % 2
        with sampling.weight_draws(draws, seed=(0, i)):
            model.predict(sampling.stack_draws(x[:8], draws), batch_size=8 * draws, verbose=0)
    report["alternating_retracing_warnings"] = retracing_warnings() - warnings_before

    # 3. Last (its Keras step may warn or retrace): a legacy optimizer keeps Keras's own step,
    # so the count does see a training step's registration.
    gradients_before = custom_gradients()
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=64)
    model.compile(optimizer=tf_keras.optimizers.legacy.Adam(1e-2))
    model.fit(x, x, epochs=1, batch_size=32, verbose=0)
    report["legacy_optimizer_new_custom_gradients"] = custom_gradients() - gradients_before
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def search_loop_child():
    """One fresh process for the checks below: TF warns of retracing at most 5 times per function
    per process, so earlier tests could have used them up; and the gradient registry is process-wide."""
    out = subprocess.run([sys.executable, "-c", _SEARCH_LOOP_CHILD], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_search_loop_over_models_does_not_warn_of_retracing(search_loop_child):
    """Each model's steps are traced afresh (twice at the first fit); TensorFlow counted them as
    retraces of one function and warned from the fourth model on."""
    assert search_loop_child["search_loop_retracing_warnings"] == 0


def test_a_search_loop_over_models_leaves_no_training_graph_behind(search_loop_child):
    """Keras sums gradients over replicas with a tf.custom_gradient, which registers a gradient
    function per trace in TensorFlow's process-wide registry, holding the traced step's graph
    for good (~34 MB per model here). Over one replica tfp_bnn's step does not sum them."""
    assert search_loop_child["legacy_optimizer_new_custom_gradients"] > 0  # the count sees a step's registration
    assert search_loop_child["search_loop_new_custom_gradients"] == 0


def test_alternating_sampling_modes_still_warn_of_retracing(search_loop_child):
    """Each predict under another weight_draws(num_draws) rebuilds and retraces Keras's step:
    TensorFlow's frequent-retracing warning must still say so (only per-model first traces are quiet)."""
    assert search_loop_child["alternating_retracing_warnings"] > 0


def test_a_seeded_request_is_answered_by_a_process_that_requires_determinism(tmp_path):
    """The unseeded fresh-seed op (RandomUniformInt, seed 0) ran for every request; under
    TF_DETERMINISTIC_OPS=1 (or enable_op_determinism) its kernel is refused, and with it the
    seeded signatures: "When determinism is enabled, random ops must have a seed specified"."""
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    model = tfp_bnn.make_regressor((3,), hidden_units=(4,), train_size=32)
    path = tfp_bnn.serving.export_for_serving(model, tmp_path / "m", num_samples=5)
    expected = tfp_bnn.predict(model, x[:2], num_samples=5, seed=3).mean
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(path)!r})
        out = loaded.signatures["seeded"](x=tf.constant(np.asarray({x[:2].tolist()!r}, np.float32)),
                                          seed=tf.constant(3, tf.int64))
        print(repr(out["mean"].numpy().ravel().tolist()))
    """)
    env = {**os.environ, "TF_DETERMINISTIC_OPS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(eval(out.stdout.strip().splitlines()[-1]), expected.ravel(), atol=1e-5)
