"""Saving and loading: ``model.save("m.keras")`` and ``load_model`` in a new process.

Every layer, prior, posterior and head of tfp_bnn has a Keras config and is
registered as serializable, so a model saved to the ``.keras`` format loads in
a fresh Python process with ``safe_mode=True`` (no pickled lambdas), predicts
the very same numbers for the same seed and carries on training where it
stopped (optimizer state included).

The round trip is expensive (TensorFlow start-up, tracing), so one
module-scoped fixture trains and saves every case in this process, then loads
all of them in ONE child process, which writes what it sees to an ``.npz`` and
a ``.json`` file; the parametrized tests below check each case separately.
"""

import json
import os
import subprocess
import sys
import textwrap
import traceback
import zipfile

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import baselines, heads, layers, models, posteriors, priors

NUM_TRAIN = 64
BATCH_SIZE = 32
EPOCHS = 2  # 2 epochs of 2 batches: the saved optimizer has made 4 steps
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE
NUM_SAMPLES = 16
SEED = 7
CHILD_TIMEOUT = 420  # seconds

REGRESSION_FIELDS = (
    "mean", "aleatoric_variance", "epistemic_variance", "lower", "upper", "draw_means", "draw_variances",
)
CLASSIFICATION_FIELDS = (
    "probabilities", "predictive_entropy", "expected_entropy", "mutual_information", "draw_probabilities",
)

# -- the cases ------------------------------------------------------------------

def _regressor(**kwargs):
    return tfp_bnn.make_regressor((1,), hidden_units=(8,), train_size=NUM_TRAIN, **kwargs)


def _classifier(**kwargs):
    return tfp_bnn.make_classifier((2,), 3, hidden_units=(8,), train_size=NUM_TRAIN, **kwargs)


def _conv_model(estimator):
    """BayesianConv2D -> Flatten -> BayesianDense -> CategoricalHead(3) on 6x6 images."""
    head = heads.CategoricalHead(3, name="conv_head")
    inputs = tf_keras.Input((6, 6, 1))
    x = layers.BayesianConv2D(
        2, 3, activation="relu", estimator=estimator, kl_weight=1.0 / NUM_TRAIN, name=f"conv_{estimator}"
    )(inputs)
    x = tf_keras.layers.Flatten()(x)
    x = layers.BayesianDense(head.params_size, estimator=estimator, kl_weight=1.0 / NUM_TRAIN)(x)
    return tfp_bnn.BayesianModel(inputs, head(x), name=f"conv_{estimator}")


# name -> (builder of an uncompiled model, kind of data it trains on)
CASES = {
    # the four estimators (default NormalHead, NormalPrior, MeanFieldNormal)
    "estimator-flipout": (lambda: _regressor(estimator="flipout"), "regression"),
    "estimator-reparameterization": (lambda: _regressor(estimator="reparameterization"), "regression"),
    "estimator-variational": (lambda: _regressor(estimator="variational"), "regression"),
    "estimator-local_reparameterization": (
        lambda: _regressor(estimator="local_reparameterization"), "regression"),
    # the eight heads, with non-default arguments so their configs are exercised
    "head-PointHead": (
        lambda: _regressor(regime="bayesian", target_mean=0.5, target_std=2.0, input_mean=0.1, input_std=0.6),
        "regression"),
    "head-NormalHead": (
        lambda: _regressor(head=heads.NormalHead(1, scale_floor=1e-2, target_loc=-0.25, target_scale=1.5)),
        "regression"),
    "head-HomoscedasticNormalHead": (
        lambda: _regressor(head=heads.HomoscedasticNormalHead(1, initial_scale=0.5, scale_floor=1e-2)),
        "regression"),
    "head-StudentTHead": (
        lambda: _regressor(head=heads.StudentTHead(1, initial_df=4.0, scale_floor=1e-2)), "regression"),
    "head-PoissonHead": (lambda: _regressor(head=heads.PoissonHead(1)), "counts"),
    "head-BernoulliHead": (lambda: _regressor(head=heads.BernoulliHead()), "binary"),
    "head-CategoricalHead": (lambda: _classifier(), "classes"),
    # (a wide posterior, so that the weight draws vote for different classes)
    "head-PointClassHead": (
        lambda: _classifier(regime="bayesian", kernel_posterior=posteriors.MeanFieldNormal(initial_scale=0.3)),
        "classes"),
    # convolution
    "conv-flipout": (lambda: _conv_model("flipout"), "images"),
    "conv-reparameterization": (lambda: _conv_model("reparameterization"), "images"),
    # priors and posteriors
    "prior-ScaleMixturePrior": (
        lambda: _regressor(kernel_prior=priors.ScaleMixturePrior(0.25, 1.5, 0.05)), "regression"),
    "prior-TrainableNormalPrior": (
        lambda: _regressor(
            kernel_prior=priors.TrainableNormalPrior(0.5),
            kernel_posterior=posteriors.MeanFieldNormal(initial_scale=1e-2, loc_initializer="he_uniform"),
        ),
        "regression"),
    "posterior-FullCovarianceNormal": (
        lambda: _regressor(
            estimator="variational", kernel_posterior=posteriors.FullCovarianceNormal(initial_scale=1e-2)),
        "regression"),
}
CASE_PARAMS = list(CASES)


def _data(kind, rng):
    """(x_train, y_train, x_test) for one kind of model."""
    if kind == "images":
        x = rng.normal(size=(NUM_TRAIN + 10, 6, 6, 1)).astype("float32")
        y = (x[:, :3].mean(axis=(1, 2, 3)) > 0).astype("int64") + (x[:, 3:].mean(axis=(1, 2, 3)) > 0.2)
        return x[:NUM_TRAIN], y[:NUM_TRAIN].astype("int64"), x[NUM_TRAIN:]
    if kind == "classes":
        x = rng.uniform(-1, 1, size=(NUM_TRAIN + 10, 2)).astype("float32")
        y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.4, 0.4]).astype("int64")
        return x[:NUM_TRAIN], y[:NUM_TRAIN], x[NUM_TRAIN:]
    x = rng.uniform(-1, 1, size=(NUM_TRAIN + 10, 1)).astype("float32")
    if kind == "regression":
        y = (np.sin(3 * x) + 0.1 * rng.normal(size=x.shape)).astype("float32")
    elif kind == "counts":
        y = rng.poisson(np.exp(x + 0.5)).astype("float32")
    elif kind == "binary":
        y = (x + 0.2 * rng.normal(size=x.shape) > 0).astype("float32")
    else:
        raise ValueError(kind)
    return x[:NUM_TRAIN], y[:NUM_TRAIN], x[NUM_TRAIN:]


def _jsonable(value):
    """A config as it reads back from JSON (tuples -> lists, NumPy scalars -> numbers)."""

    def builtin(obj):
        if isinstance(obj, (np.generic, np.ndarray)):
            return obj.tolist()
        raise TypeError(f"not JSON serializable: {obj!r}")

    return json.loads(json.dumps(value, default=builtin))


def _prediction_arrays(model, x):
    result = tfp_bnn.predict(model, x, num_samples=NUM_SAMPLES, seed=SEED)
    fields = CLASSIFICATION_FIELDS if model.layers[-1].task == "classification" else REGRESSION_FIELDS
    return {field: np.asarray(getattr(result, field)) for field in fields}


def _bayesian_layers(model):
    return [layer for layer in model.layers if isinstance(layer, (layers.BayesianDense, layers.BayesianConv2D))]


def _describe(model):
    """Everything about a model that must survive the round trip, JSON-friendly.

    The same code runs in the child (CHILD_CODE defines an identical copy).
    """
    bayesian = []
    for layer in _bayesian_layers(model):
        prior, posterior = layer.kernel_prior, layer.kernel_posterior
        bayesian.append({
            "name": layer.name,
            "class": type(layer).__name__,
            "estimator": layer.estimator,
            "kl_weight": layer.kl_weight,
            "exact_kl": bool(layer.exact_kl),
            "prior_class": type(prior).__name__,
            "prior_config": prior.get_config(),
            "prior_config_roundtrip": type(prior).from_config(prior.get_config()).get_config(),
            "posterior_class": type(posterior).__name__,
            "posterior_config": posterior.get_config(),
            "posterior_config_roundtrip": type(posterior).from_config(posterior.get_config()).get_config(),
        })
    head = model.layers[-1]
    return _jsonable({
        "model_class": type(model).__name__,
        "model_config": model.get_config(),
        "compile_config": model.get_compile_config(),
        "layer_classes": [type(layer).__name__ for layer in model.layers],
        "bayesian_layers": bayesian,
        "head_class": type(head).__name__,
        "head_config": head.get_config(),
        "loss_class": type(model.loss).__name__,
        "loss_config": model.loss.get_config(),
        "optimizer_class": type(model.optimizer).__name__,
        "optimizer_config": model.optimizer.get_config(),
        "iterations": int(model.optimizer.iterations.numpy()),
        "num_losses": len(model.losses),
        "weight_names": [w.name.split("/")[-1] for w in model.weights],
    })


# -- the child process ------------------------------------------------------------

CHILD_CODE = textwrap.dedent(
    r'''
    import json, os, sys, traceback
    import numpy as np
    import tf_keras
    from tf_keras.src.saving import serialization_lib
    import tfp_bnn
    from tfp_bnn import heads, layers

    workdir, expected_module = sys.argv[1], sys.argv[2]
    assert os.path.realpath(tfp_bnn.__file__) == os.path.realpath(expected_module), tfp_bnn.__file__

    # safe_mode must come from load_model(safe_mode=True) alone: nobody may
    # switch unsafe deserialization on in this process.
    def _forbidden(*args, **kwargs):
        raise AssertionError("enable_unsafe_deserialization() was called")
    serialization_lib.enable_unsafe_deserialization = _forbidden
    tf_keras.__internal__.enable_unsafe_deserialization = _forbidden

    # Spy: the safe-mode flag in force while Keras revives a tfp_bnn head.
    safe_mode_seen = []
    _head_from_config = heads.Head.from_config.__func__
    def _spy_from_config(cls, config):
        safe_mode_seen.append(serialization_lib.in_safe_mode())
        return _head_from_config(cls, config)
    heads.Head.from_config = classmethod(_spy_from_config)

    DESCRIBE

    inputs = np.load(os.path.join(workdir, "inputs.npz"))
    cases = json.load(open(os.path.join(workdir, "cases.json")))
    arrays, report = {}, {"safe_mode_before_loading": serialization_lib.in_safe_mode()}

    # Positive control: the same load_model call refuses a model with a lambda.
    try:
        tf_keras.models.load_model(os.path.join(workdir, "lambda.keras"), safe_mode=True)
        report["lambda_control"] = "loaded"
    except Exception as error:
        report["lambda_control"] = type(error).__name__ + ": " + str(error)

    for name, info in cases.items():
        try:
            del safe_mode_seen[:]
            model = tf_keras.models.load_model(os.path.join(workdir, name + ".keras"), safe_mode=True)
            entry = {"describe": _describe(model), "safe_mode_seen": list(safe_mode_seen)}
            x_train, y_train, x_test = (inputs[name + "/" + k] for k in ("x_train", "y_train", "x_test"))
            result = tfp_bnn.predict(model, x_test, num_samples=info["num_samples"], seed=info["seed"])
            for field in info["fields"]:
                arrays[name + "/predict/" + field] = np.asarray(getattr(result, field))
            for i, w in enumerate(model.weights):
                arrays[name + "/weights/%d" % i] = w.numpy()
            for i, v in enumerate(model.optimizer.variables):
                arrays[name + "/optimizer/%d" % i] = v.numpy()
            arrays[name + "/kl"] = np.asarray(model.kl_divergence())
            entry["trainable_indices"] = [
                i for i, w in enumerate(model.weights) if any(w is t for t in model.trainable_weights)]
            history = model.fit(x_train, y_train, epochs=1, batch_size=info["batch_size"], verbose=0)
            entry["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
            # The legacy HDF5 file, saved beside it before training: the same predictions.
            legacy = tf_keras.models.load_model(os.path.join(workdir, name + ".h5"))
            entry["h5_class"] = type(legacy).__name__
            result = tfp_bnn.predict(legacy, x_test, num_samples=info["num_samples"], seed=info["seed"])
            for field in info["fields"]:
                arrays[name + "/h5_predict/" + field] = np.asarray(getattr(result, field))
            entry["iterations_after_fit"] = int(model.optimizer.iterations.numpy())
            for i, w in enumerate(model.weights):
                arrays[name + "/weights_after_fit/%d" % i] = w.numpy()
            report[name] = entry
        except Exception:
            report[name] = {"error": traceback.format_exc()}

    np.savez(os.path.join(workdir, "results.npz"), **arrays)
    json.dump(report, open(os.path.join(workdir, "results.json"), "w"))
    '''
)


def _child_code():
    import inspect

    helpers = "\n".join(
        inspect.getsource(f) for f in (_jsonable, _bayesian_layers, _describe)
    )
    return CHILD_CODE.replace("DESCRIBE", helpers)


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    """Train and save every case here, load them all in one new process.

    Returns ``(original, loaded, workdir)``: ``original[name]`` holds the
    description, arrays and saved config of the model trained here (or
    ``"error"``), ``loaded[name]`` what the child saw (or ``"error"``).
    """
    workdir = tmp_path_factory.mktemp("saving")
    rng = np.random.default_rng(0)
    tf_keras.utils.set_random_seed(0)
    original, inputs, cases = {}, {}, {}
    for name, (build, kind) in CASES.items():
        x_train, y_train, x_test = _data(kind, rng)
        try:
            model = build()
            model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.0123, beta_1=0.85))
            model.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=0)
            path = workdir / f"{name}.keras"
            model.save(path)
            model.save(workdir / f"{name}.h5")
            with zipfile.ZipFile(path) as archive:
                saved_config = archive.read("config.json").decode()
            predictions = _prediction_arrays(model, x_test)
        except Exception:
            original[name] = {"error": traceback.format_exc()}
            continue
        original[name] = {
            "describe": _describe(model),
            "predict": predictions,
            "weights": [w.numpy() for w in model.weights],
            "trainable_indices": [
                i for i, w in enumerate(model.weights) if any(w is t for t in model.trainable_weights)],
            "optimizer": [v.numpy() for v in model.optimizer.variables],
            "kl": np.asarray(model.kl_divergence()),
            "saved_config": saved_config,
        }
        inputs.update({f"{name}/x_train": x_train, f"{name}/y_train": y_train, f"{name}/x_test": x_test})
        cases[name] = {
            "num_samples": NUM_SAMPLES, "seed": SEED, "batch_size": BATCH_SIZE,
            "fields": list(predictions),
        }

    # The positive control for safe mode: a model whose config holds a lambda.
    control = tf_keras.Sequential([tf_keras.Input((1,)), tf_keras.layers.Lambda(lambda t: 2.0 * t)])
    control.save(workdir / "lambda.keras")

    np.savez(workdir / "inputs.npz", **inputs)
    (workdir / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run(
        [sys.executable, "-c", _child_code(), str(workdir), tfp_bnn.__file__],
        cwd=workdir,  # not the repository: the child imports tfp_bnn exactly as we do
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert completed.returncode == 0, f"child process failed:\n{completed.stdout}\n{completed.stderr}"
    report = json.loads((workdir / "results.json").read_text())
    with np.load(workdir / "results.npz") as arrays:
        arrays = dict(arrays)
    loaded = {}
    for name in CASES:
        entry = report.get(name, {"error": "not run in the child (it failed to train or save here)"})
        if "error" not in entry:
            entry = dict(entry)
            prefix = f"{name}/"
            for key in ("predict", "h5_predict"):
                entry[key] = {
                    k[len(prefix + key + "/"):]: v for k, v in arrays.items() if k.startswith(prefix + key + "/")}
            entry["weights"] = _indexed(arrays, prefix + "weights/")
            entry["optimizer"] = _indexed(arrays, prefix + "optimizer/")
            entry["weights_after_fit"] = _indexed(arrays, prefix + "weights_after_fit/")
            entry["kl"] = arrays[prefix + "kl"]
        loaded[name] = entry
    return original, loaded, report, workdir


def _indexed(arrays, prefix):
    found = {int(k[len(prefix):]): v for k, v in arrays.items() if k.startswith(prefix)}
    return [found[i] for i in range(len(found))]


def _case(roundtrip, name):
    original, loaded, _, _ = roundtrip
    if "error" in original[name]:
        pytest.fail(f"{name}: building/training/saving failed in the parent:\n{original[name]['error']}")
    if "error" in loaded[name]:
        pytest.fail(f"{name}: loading/predicting/training failed in the child:\n{loaded[name]['error']}")
    return original[name], loaded[name]


# -- round-trip tests, one per case -----------------------------------------------

@pytest.mark.parametrize("name", CASE_PARAMS)
def test_loaded_model_predicts_identically(roundtrip, name):
    """Same seed, same numbers: every field of tfp_bnn.predict, bit for bit."""
    original, loaded = _case(roundtrip, name)
    assert loaded["describe"]["model_class"] == "BayesianModel"
    assert set(loaded["predict"]) == set(original["predict"])
    for field, expected in original["predict"].items():
        np.testing.assert_array_equal(loaded["predict"][field], expected, err_msg=f"{name}: {field}")
    # The predictions are not trivially constant, so equality means something.
    first = original["predict"]["draw_means" if "draw_means" in original["predict"] else "draw_probabilities"]
    assert np.ptp(first, axis=0).max() > 0, "all weight draws agree: the model is not stochastic"


@pytest.mark.parametrize("name", CASE_PARAMS)
def test_legacy_h5_file_loads_in_a_new_process_and_predicts_identically(roundtrip, name):
    """``model.save("m.h5")`` and ``load_model`` after ``import tfp_bnn``, no custom_objects."""
    original, loaded = _case(roundtrip, name)
    assert loaded["h5_class"] == "BayesianModel"
    assert sorted(loaded["h5_predict"]) == sorted(original["predict"])
    for field, expected in original["predict"].items():
        np.testing.assert_array_equal(loaded["h5_predict"][field], expected, err_msg=f"{name}: {field}")


@pytest.mark.parametrize("name", CASE_PARAMS)
def test_loaded_model_keeps_weights_and_configs(roundtrip, name):
    """Weights, the whole model config, and every layer's estimator, kl_weight, prior and posterior."""
    original, loaded = _case(roundtrip, name)
    before, after = original["describe"], loaded["describe"]
    assert after["weight_names"] == before["weight_names"]
    assert len(loaded["weights"]) == len(original["weights"]) > 0
    for i, (got, expected) in enumerate(zip(loaded["weights"], original["weights"])):
        np.testing.assert_array_equal(got, expected, err_msg=f"{name}: weight {before['weight_names'][i]}")

    assert after["model_config"] == before["model_config"]
    assert after["layer_classes"] == before["layer_classes"]
    assert after["head_class"] == before["head_class"]
    assert after["head_config"] == before["head_config"]

    assert len(after["bayesian_layers"]) == len(before["bayesian_layers"]) >= 2
    for got, expected in zip(after["bayesian_layers"], before["bayesian_layers"]):
        assert got == expected
        assert got["kl_weight"] == 1.0 / NUM_TRAIN
        # get_config -> from_config -> get_config is the identity for the revived prior/posterior.
        assert got["prior_config_roundtrip"] == got["prior_config"]
        assert got["posterior_config_roundtrip"] == got["posterior_config"]

    # The KL terms are re-registered (one callable loss per Bayesian layer) and,
    # where exact, equal the original's (the Monte Carlo KL is random).
    assert after["num_losses"] == before["num_losses"] == len(before["bayesian_layers"])
    assert np.isfinite(loaded["kl"]) and loaded["kl"] > 0
    if all(layer["exact_kl"] for layer in before["bayesian_layers"]):
        np.testing.assert_array_equal(loaded["kl"], original["kl"])


@pytest.mark.parametrize("name", CASE_PARAMS)
def test_loaded_model_keeps_compiled_loss_and_optimizer_state(roundtrip, name):
    original, loaded = _case(roundtrip, name)
    before, after = original["describe"], loaded["describe"]
    assert after["loss_class"] == "NegativeLogLikelihood"
    assert after["loss_config"] == before["loss_config"]
    assert after["compile_config"] == before["compile_config"]
    assert after["optimizer_class"] == before["optimizer_class"] == "Adam"
    assert after["optimizer_config"] == before["optimizer_config"]
    assert after["optimizer_config"]["beta_1"] == 0.85
    assert after["iterations"] == before["iterations"] == EPOCHS * STEPS_PER_EPOCH
    # Adam's moments come back too, not freshly zeroed slots.
    assert len(loaded["optimizer"]) == len(original["optimizer"]) > 1
    for got, expected in zip(loaded["optimizer"], original["optimizer"]):
        np.testing.assert_array_equal(got, expected)
    assert any(np.any(v != 0) for v in loaded["optimizer"][1:])


@pytest.mark.parametrize("name", CASE_PARAMS)
def test_loaded_model_continues_training(roundtrip, name):
    """fit on the loaded model: the step count goes on and every trainable weight moves."""
    original, loaded = _case(roundtrip, name)
    assert loaded["iterations_after_fit"] == EPOCHS * STEPS_PER_EPOCH + STEPS_PER_EPOCH
    history = loaded["history"]
    assert set(history) == {"loss", "nll", "kl"}
    assert all(np.isfinite(history[k]).all() for k in history)
    assert loaded["trainable_indices"] == original["trainable_indices"]
    assert loaded["trainable_indices"]
    for i in loaded["trainable_indices"]:
        name_i = loaded["describe"]["weight_names"][i]
        assert np.all(np.isfinite(loaded["weights_after_fit"][i])), name_i
        assert np.any(loaded["weights_after_fit"][i] != loaded["weights"][i]), f"{name}: {name_i} did not move"


@pytest.mark.parametrize("name", CASE_PARAMS)
def test_loading_ran_in_safe_mode(roundtrip, name):
    """The heads were revived under safe mode, and the saved config holds no lambda."""
    original, loaded = _case(roundtrip, name)
    assert loaded["safe_mode_seen"] == [True]
    config = original["saved_config"]
    assert "__lambda__" not in config
    assert "lambda" not in config.lower()
    assert json.loads(config)["registered_name"] == "tfp_bnn>BayesianModel"


def test_safe_mode_is_effective_in_the_child(roundtrip):
    """Positive control: the child's load_model(safe_mode=True) refuses a lambda, and nobody unlocked it."""
    _, _, report, _ = roundtrip
    assert report["safe_mode_before_loading"] is None  # enable_unsafe_deserialization never ran
    assert report["lambda_control"].startswith("ValueError"), report["lambda_control"]
    assert "safe_mode" in report["lambda_control"]


# -- configs, in process ------------------------------------------------------------

# (class, factory of an instance with non-default arguments, marks): one row per
# registered class except BayesianModel (that one is covered by the round trips).
INSTANCES = [
    (priors.NormalPrior, lambda: priors.NormalPrior(0.5), []),
    (priors.ScaleMixturePrior, lambda: priors.ScaleMixturePrior(0.3, 2.0, 0.1), []),
    (priors.TrainableNormalPrior, lambda: priors.TrainableNormalPrior(0.7), []),
    (priors.GaussianPrior, lambda: priors.GaussianPrior("full"), []),
    (posteriors.MeanFieldNormal, lambda: posteriors.MeanFieldNormal(1e-2, "he_normal"), []),
    (posteriors.MeanFieldNormal,
     lambda: posteriors.MeanFieldNormal(1e-2, tf_keras.initializers.RandomNormal(stddev=0.1, seed=1)), []),
    (posteriors.FullCovarianceNormal, lambda: posteriors.FullCovarianceNormal(2e-2), []),
    (priors.FixedDistributionLayer,
     lambda: priors.FixedDistributionLayer(5, priors.ScaleMixturePrior(), name="fixed"), []),
    (priors.TrainablePriorLayer, lambda: priors.TrainablePriorLayer(5, 0.7, name="trainable_prior"), []),
    (priors.GaussianPriorLayer, lambda: priors.GaussianPriorLayer(4, "full", name="gaussian_prior"), []),
    (posteriors.MeanFieldNormalLayer,
     lambda: posteriors.MeanFieldNormalLayer((2, 3), 3, 0.01, "glorot_uniform", name="mean_field"), []),
    (posteriors.FullCovarianceNormalLayer,
     lambda: posteriors.FullCovarianceNormalLayer((2, 3), 3, 0.01, "glorot_uniform", name="full_cov"),
     []),
    (layers.BayesianDense,
     lambda: layers.BayesianDense(
         4, activation="tanh", estimator="local_reparameterization", use_bias=False,
         kernel_prior=priors.ScaleMixturePrior(0.2, 1.0, 0.01),
         kernel_posterior=posteriors.MeanFieldNormal(3e-3, "he_uniform"), kl_weight=0.1, name="dense"),
     []),
    (layers.BayesianConv2D,
     lambda: layers.BayesianConv2D(
         3, (2, 3), strides=2, padding="same", dilation_rate=1, estimator="reparameterization",
         kernel_prior=priors.TrainableNormalPrior(0.3),
         kernel_posterior=posteriors.FullCovarianceNormal(1e-2), kl_weight=0.01, name="conv"),
     []),
    (layers.BayesianConv1D,
     lambda: layers.BayesianConv1D(3, 2, dilation_rate=2, padding="same", estimator="flipout", kl_weight=0.1,
                                   name="conv1d"),
     []),
    (layers.BayesianConv3D,
     lambda: layers.BayesianConv3D(2, (1, 2, 3), strides=(1, 2, 1), estimator="variational", use_bias=False,
                                   kl_weight=0.1, name="conv3d"),
     []),
    (heads.PointHead, lambda: heads.PointHead(2, target_loc=[1.0, 2.0], target_scale=3.0, name="point"), []),
    (heads.NormalHead, lambda: heads.NormalHead(1, scale_floor=0.01, target_loc=1.0, name="normal"), []),
    (heads.HomoscedasticNormalHead,
     lambda: heads.HomoscedasticNormalHead(1, initial_scale=0.5, scale_floor=0.01, name="homoscedastic"), []),
    (heads.StudentTHead,
     lambda: heads.StudentTHead(2, initial_df=4.0, target_scale=[1.0, 2.0], name="student_t"), []),
    (heads.PoissonHead, lambda: heads.PoissonHead(2, name="poisson"), []),
    (heads.BernoulliHead, lambda: heads.BernoulliHead(name="bernoulli"), []),
    (heads.CategoricalHead, lambda: heads.CategoricalHead(3, name="categorical"), []),
    (heads.PointClassHead, lambda: heads.PointClassHead(4, name="point_class"), []),
    (heads.NegativeLogLikelihood, lambda: heads.NegativeLogLikelihood(name="nll"), []),
    (heads.BetaNegativeLogLikelihood, lambda: heads.BetaNegativeLogLikelihood(beta=0.25, name="beta_nll"), []),
    (tfp_bnn.MCDropout, lambda: tfp_bnn.MCDropout(0.2, seed=3, name="mc_dropout"), []),
    (tfp_bnn.EnsembleDense,
     lambda: tfp_bnn.EnsembleDense(4, num_members=3, activation="relu", kernel_regularizer="l2", name="members"), []),
]


def _instance_params():
    params, seen = [], {}
    for cls, make, marks in INSTANCES:
        seen[cls] = seen.get(cls, 0) + 1
        suffix = f"-{seen[cls]}" if seen[cls] > 1 else ""
        params.append(pytest.param(cls, make, id=cls.__name__ + suffix, marks=marks))
    return params


@pytest.mark.parametrize("cls, make", _instance_params())
def test_config_round_trip(cls, make):
    obj = make()
    assert type(obj) is cls
    assert tf_keras.saving.get_registered_name(cls) == f"tfp_bnn>{cls.__name__}"
    assert tf_keras.saving.get_registered_object(f"tfp_bnn>{cls.__name__}") is cls

    config = obj.get_config()
    revived = cls.from_config(config)
    assert type(revived) is cls
    assert revived.get_config() == config

    # Through JSON and the Keras serializer, in safe mode, as load_model does it.
    serialized = _jsonable(tf_keras.saving.serialize_keras_object(obj))
    assert serialized["registered_name"] == f"tfp_bnn>{cls.__name__}"
    assert "lambda" not in json.dumps(serialized).lower()
    again = tf_keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(again) is cls
    assert _jsonable(tf_keras.saving.serialize_keras_object(again)) == serialized


def test_every_registered_class_is_covered():
    """The list above holds every tfp_bnn class Keras knows (BayesianModel: the round trips)."""
    registered = {
        key.split(">", 1)[1] for key in tf_keras.saving.get_custom_objects() if key.startswith("tfp_bnn>")
    }
    covered = {cls.__name__ for cls, _, _ in INSTANCES}
    assert registered - {"BayesianModel", "_LogMean"} == covered  # _LogMean: fit's log trackers


@pytest.mark.parametrize(
    "module", [priors, posteriors, layers, heads], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_public_class_is_registered(module):
    """Every public layer, prior, posterior, head (and the loss) is Keras-serializable under tfp_bnn>."""
    classes = [getattr(module, n) for n in module.__all__ if isinstance(getattr(module, n), type)]
    # The abstract bases of the user's own heads, priors and posteriors (made again by a factory: not saved).
    classes = [cls for cls in classes if cls not in (heads.Head, priors.Prior, posteriors.Posterior,
                                                     posteriors.DistributionLayer)]
    assert classes
    for cls in classes:
        assert tf_keras.saving.get_registered_name(cls) == f"tfp_bnn>{cls.__name__}", cls
        assert callable(getattr(cls, "get_config", None)), cls
    assert tf_keras.saving.get_registered_name(tfp_bnn.BayesianModel) == "tfp_bnn>BayesianModel"


# -- arguments Keras leaves out of a config -----------------------------------------


def test_mc_dropouts_activity_regularizer_survives_its_config(tmp_path):
    # Keras's Dropout takes the argument but leaves it out of its config.
    inputs = tf_keras.Input((3,))
    hidden = baselines.MCDropout(0.1, activity_regularizer="l2")(inputs)
    model = tfp_bnn.BayesianModel(inputs, heads.PointHead(1)(tf_keras.layers.Dense(1)(hidden)))
    assert len(model.losses) == 1
    model.save(tmp_path / "m.keras")
    for other in (tf_keras.models.clone_model(model), tf_keras.models.load_model(tmp_path / "m.keras")):
        assert isinstance(other.layers[1].activity_regularizer, tf_keras.regularizers.L2)
        assert len(other.losses) == 1


def test_a_posteriors_initializer_class_serializes_as_dense_s(tmp_path):
    # A class (as Dense takes it) built and trained, then failed every serialization.
    posterior = posteriors.MeanFieldNormal(0.01, tf_keras.initializers.HeNormal)
    assert "HeNormal" in repr(posterior)
    rebuilt = posteriors.MeanFieldNormal.from_config(posterior.get_config())
    assert isinstance(tf_keras.initializers.get(rebuilt.loc_initializer), tf_keras.initializers.HeNormal)
    inputs = tf_keras.Input((3,))
    outputs = heads.NormalHead(1)(tfp_bnn.BayesianDense(2, kernel_posterior=posterior)(inputs))
    model = tfp_bnn.BayesianModel(inputs, outputs)
    model.save(tmp_path / "m.keras")
    tf_keras.models.load_model(tmp_path / "m.keras")
    tf_keras.models.clone_model(model)


def test_a_model_compiled_with_a_legacy_optimizer_loads_from_a_keras_file(tmp_path):
    # compile_from_config built the optimizer unconditionally; Keras exempts legacy optimizers,
    # and load_model failed with "'Adam' object has no attribute 'build'".
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2)).astype(np.float32)
    y = x.sum(axis=1)
    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=32)
    model.compile(tf_keras.optimizers.legacy.Adam(0.01))
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = tf_keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, tf_keras.optimizers.legacy.Adam)
    assert np.isfinite(loaded.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def _nll_metric(y_true, y_pred):
    return tf.reduce_mean(tf.abs(tf.reshape(y_true, [-1, 1]) - y_pred))


def test_a_file_saved_with_a_metric_named_nll_still_loads(tmp_path, monkeypatch):
    # Files saved before compile refused the name: load_model (.keras, SavedModel folder) raised the
    # compile-time ValueError, so the model could not even be loaded for prediction.
    x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=32)
    with monkeypatch.context() as patch:  # compiled as before the check
        patch.setattr(models, "_check_metric_names", lambda *args, **kwargs: None)
        model.compile("adam", metrics=[tf_keras.metrics.MeanMetricWrapper(_nll_metric, name="nll")])
    model.fit(x, x[:, 0], epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m_dir")
    for path in ("m.keras", "m_dir"):
        with pytest.warns(UserWarning, match="A metric named 'nll'"):
            loaded = tf_keras.models.load_model(tmp_path / path, custom_objects={"_nll_metric": _nll_metric})
        np.testing.assert_allclose(loaded.get_layer(index=-2).get_weights()[0], model.get_layer(index=-2).get_weights()[0])
    with pytest.raises(ValueError, match="another name"):  # a compile of the user's still refuses it
        loaded.compile("adam", metrics=[tf_keras.metrics.MeanMetricWrapper(_nll_metric, name="nll")])
