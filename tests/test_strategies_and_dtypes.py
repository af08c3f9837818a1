"""Distribution strategies and dtype policies: a .keras file under MirroredStrategy, float64 models, mixed dtypes."""

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tf_keras

import tfp_bnn
from tfp_bnn import sampling


_LOAD_UNDER_STRATEGY = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras
    import tfp_bnn

    path = sys.argv[1]
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x[:, 0]
    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=64)
    model.compile(optimizer="adam")
    model.fit(x, y, epochs=1, verbose=0)  # the trackers hold running means now
    model.save(path)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        loaded = tf_keras.models.load_model(path)
    same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))
    logs = loaded.fit(x, y, epochs=1, verbose=0).history
    json.dump({"same_weights": same, "logs": {k: v[0] for k, v in logs.items()}}, sys.stdout)
""")


def test_a_keras_file_loads_and_trains_under_a_mirrored_strategy(tmp_path):
    # The nll/kl trackers were written to the .keras file and restored on load; under a
    # MirroredStrategy their SyncOnRead variables refused the file's data:
    # "unsupported operand type(s) for /: 'Dataset' and 'int'".
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    child = subprocess.run([sys.executable, "-c", _LOAD_UNDER_STRATEGY, str(tmp_path / "m.keras")],
                           capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout)
    assert report["same_weights"]
    assert set(report["logs"]) == {"loss", "nll", "kl"}


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=n)).astype("float32")


@pytest.mark.parametrize("kwargs", [
    dict(inference="ensemble", num_members=3),
    dict(regime="deterministic"),
    dict(regime="probabilistic"),
    dict(train_size=64),
])
def test_a_float64_model_trains_and_matches_its_float32_twin(kwargs):
    # Without KL terms the model's KL was a float32 zero against the float64 loss:
    # fit and evaluate failed with "'outputs' must be defined before the loop".
    x, y = _data()
    tf_keras.utils.set_random_seed(0)
    twin = tfp_bnn.make_regressor((3,), hidden_units=(8,), **kwargs)
    policy = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy("float64")
    try:
        model = tfp_bnn.make_regressor((3,), hidden_units=(8,), **kwargs)
    finally:
        tf_keras.mixed_precision.set_global_policy(policy)
    model.set_weights([w.astype(np.float64) for w in twin.get_weights()])
    for m in (model, twin):
        m.compile(optimizer=tf_keras.optimizers.SGD(0.0))
    with sampling.posterior_mean() if "train_size" in kwargs else contextlib.nullcontext():
        logs64 = model.evaluate(x, y, verbose=0, return_dict=True)
        logs32 = twin.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs64["loss"], logs64["nll"] + logs64["kl"], rtol=1e-6)
    for key in ("loss", "nll", "kl"):
        np.testing.assert_allclose(logs64[key], logs32[key], rtol=1e-5, atol=1e-7)
    history = model.fit(x, y, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_bayesian_layers_of_float32_and_float64_in_one_model_train():
    # kl_divergence added float32 and float64 KL terms with add_n (InvalidArgumentError),
    # and a float64 head beside float32 KL terms failed fit.
    x, y = _data()
    for hidden, output, head in [("float64", "float32", None), ("float32", "float32", "float64")]:
        inputs = tf_keras.Input((3,))
        h = tfp_bnn.BayesianDense(8, activation="relu", kl_weight=1 / 64, dtype=hidden)(inputs)
        p = tfp_bnn.BayesianDense(2, kl_weight=1 / 64, dtype=output)(h)
        model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1, dtype=head)(p))
        model.compile(optimizer="adam")
        per_layer = sum(float(loss) for loss in model.losses)
        np.testing.assert_allclose(float(model.kl_divergence()), per_layer, rtol=1e-6)
        logs = model.fit(x, y, epochs=1, verbose=0).history
        np.testing.assert_allclose(logs["loss"][0], logs["nll"][0] + logs["kl"][0], rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda dtype: tfp_bnn.BayesianDense(2, kl_weight=0.1, dtype=dtype),
    lambda dtype: tfp_bnn.BayesianConv2D(2, 3, kl_weight=0.1, dtype=dtype),
    lambda dtype: tfp_bnn.NormalHead(1, dtype=dtype),
    lambda dtype: tfp_bnn.CategoricalHead(3, dtype=dtype),
])
@pytest.mark.parametrize("dtype", ["mixed_float16", tf_keras.mixed_precision.Policy("mixed_bfloat16")])
def test_a_mixed_policy_given_to_a_bayesian_layer_or_head_is_refused_by_name(make, dtype):
    # The Bayesian layers failed at their first call ("cannot compute Mul ... half tensor");
    # a head silently computed its log-densities in float16.
    with pytest.raises(ValueError, match="dtype='float32'"):
        make(dtype)


def test_float32_and_float64_are_still_accepted():
    layer = tfp_bnn.BayesianDense(2, kl_weight=0.1, dtype="float64")
    assert layer(np.zeros((2, 3))).dtype == "float64"
    assert tfp_bnn.NormalHead(1, dtype="float32").compute_dtype == "float32"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("inference", ["variational", "mc_dropout"])
def test_raw_inputs_are_standardized_in_float32_under_a_mixed_policy(policy, inference):
    # make_regressor's "standardize" layer takes raw units: in float16 a price of 2e5 was inf
    # (NaN losses), in bfloat16 the years 1990-2020 became 4 values.
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(2e5, 3e4, 64), rng.integers(1990, 2021, 64)], 1).astype(np.float32)
    z = (x - x.mean(0)) / x.std(0)
    y = (z[:, 0] + z[:, 1]).astype(np.float32)
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(policy)
    try:
        model = tfp_bnn.make_regressor((2,), hidden_units=(8,), train_size=64, inference=inference,
                                       input_mean=x.mean(0), input_std=x.std(0))
        np.testing.assert_allclose(model.get_layer("standardize")(x).numpy(), z, atol=1e-5)
        model.compile(tf_keras.optimizers.Adam(0.01))
        assert np.all(np.isfinite(model.fit(x, y, epochs=2, verbose=0).history["loss"]))
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
def test_a_half_precision_global_policy_keeps_bayesian_layers_and_heads_float32(policy):
    # Under a pure half policy they were built in half precision: the classifier's loss rose
    # (42 -> 58 in 5 epochs) and tfp_bnn.predict of a Normal head failed in TFP's ndtr
    # (float16) or in NumPy's finfo (bfloat16).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x.sum(axis=1).astype(np.float32)
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(policy)
    try:
        model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=64)
        assert [layer.compute_dtype for layer in model.layers[1:]] == ["float32"] * 3
        model.compile(tf_keras.optimizers.Adam(0.01))
        loss = model.fit(x, y, epochs=5, verbose=0).history["loss"]
        assert loss[-1] < loss[0]
        result = tfp_bnn.predict(model, x[:4], num_samples=8, seed=0)
        assert np.all(np.isfinite(result.lower)) and np.all(np.isfinite(result.upper))
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("inference", ["ensemble", "mc_dropout"])
def test_compile_warns_of_weights_stored_in_float16(inference):
    # A "float16" policy (or set_floatx("float16") in a process without one) stores plain layers'
    # weights in float16, where Adam's second moment underflows: an ensemble's loss went 6.7, 7.5,
    # 7.0 in 3 epochs (float32: 0.69 -> 0.52).
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy("float16")
    try:
        model = tfp_bnn.make_classifier((3,), 2, hidden_units=(8,), train_size=200, inference=inference)
        with pytest.warns(UserWarning, match="stored in float16"):
            model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)
    model = tfp_bnn.make_classifier((3,), 2, hidden_units=(8,), train_size=200, inference=inference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))  # float32: no warning
