"""TF Serving export: what tensorflow_model_server relies on, checked without the server.

We cannot run the server binary here, so each thing it needs is proven on its
own. One module-scoped fixture trains a small regressor and a small classifier
(with input and target standardization inside), exports both with
:func:`tfp_bnn.serving.export_for_serving`, writes ``PredictRequest`` files
built by :func:`tfp_bnn.serving.predict_request`, then runs
``tests/serving_child.py`` ONCE in a fresh process that imports only
TensorFlow: it audits the ops, loads each export with the TF1 session loader,
answers the requests by the tensor names of the SignatureDefs as TF Serving's
Predict API does, says which its batching session would refuse, turns the
README's REST bodies into requests as its REST API does and answers them,
answers the warm-up records and calls the signatures through
``tf.saved_model.load``. ``saved_model_cli show`` and
``run`` run as the user would type them. The tests below read what came out.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import cli, posteriors, serving

grpc = pytest.importorskip("grpc")
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NUM_SAMPLES = 64
SEED = 11
CHILD_TIMEOUT = 300  # seconds

REGRESSION_OUTPUTS = ("mean", "stddev", "aleatoric_stddev", "epistemic_stddev", "lower", "upper")
CLASSIFICATION_OUTPUTS = ("probabilities", "predicted_class", "entropy", "expected_entropy", "mutual_information")
EXPORTS = ("regression", "classification")


def _quiet_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


# -- the models ---------------------------------------------------------------------


def _regression_case():
    """2 features in raw units far from 0 / 1 (so standardization matters), heteroscedastic noise."""
    rng = np.random.default_rng(0)
    x = rng.normal([10.0, -5.0], [2.0, 0.5], size=(256, 2)).astype("float32")
    y = (3.0 * x[:, 0] + 4.0 * x[:, 1] ** 2 + rng.normal(size=256) * (1.0 + np.abs(x[:, 0] - 10.0))).astype("float32")
    model = tfp_bnn.make_regressor(
        (2,), hidden_units=(16,), train_size=len(x),
        kernel_posterior=posteriors.MeanFieldNormal(initial_scale=0.05),
        input_mean=x.mean(0), input_std=x.std(0), target_mean=float(y.mean()), target_std=float(y.std()),
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(x, y, epochs=20, batch_size=64, verbose=0)
    # Inside the data and far outside it (larger epistemic spread).
    x_test = np.concatenate([x[:8], rng.normal([10.0, -5.0], [8.0, 2.0], size=(4, 2))]).astype("float32")
    return model, x_test


def _classification_case():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(192, 4)).astype("float32") * 3.0 + 1.0
    labels = (x[:, 0] > 1.0).astype("int64") + (x[:, 1] > 2.0)
    model = tfp_bnn.make_classifier(
        (4,), 3, hidden_units=(16,), train_size=len(x),
        kernel_posterior=posteriors.MeanFieldNormal(initial_scale=0.1),
        input_mean=x.mean(0), input_std=x.std(0),
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(x, labels, epochs=20, batch_size=64, verbose=0)
    return model, x[:12]


def _raw_request(name, x, dtype, seed=None, signature_name=None):
    """A request predict_request would refuse to build: what a foreign client might send."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name or ("serving_default" if seed is None else "seeded")
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray(x, dtype)))
    if seed is not None:
        request.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.asarray(seed, np.int64)))
    return request


def _requests(name, x):
    request = serving.predict_request
    num_features = x.shape[1]
    return {
        "seeded": request(x, model_name=name, seed=SEED),
        "seeded_again": request(x, model_name=name, seed=SEED),
        "other_seed": request(x, model_name=name, seed=SEED + 1),
        "unseeded_1": request(x, model_name=name),
        "unseeded_2": request(x, model_name=name),
        "samples_seeded": request(x, model_name=name, signature_name="samples", seed=SEED),
        "samples_unseeded": request(x, model_name=name, signature_name="samples"),
        "seeded_negative": _raw_request(name, x, np.float32, seed=-1),
        "seeded_without_seed": _raw_request(name, x, np.float32, signature_name="seeded"),
        "seed_to_serving_default": _raw_request(name, x, np.float32, seed=SEED, signature_name="serving_default"),
        "wrong_features": request(np.zeros((2, num_features + 1)), model_name=name),
        "wrong_rank": _raw_request(name, np.zeros(num_features), np.float32),
        "wrong_dtype": _raw_request(name, x, np.float64),
        "nan": _raw_request(name, np.where(np.arange(x.size).reshape(x.shape) == 1, np.nan, x), np.float32),
        "seed_vector": _raw_request(name, x, np.float32, seed=[SEED, SEED + 1, SEED + 2]),
        "seed_too_large": _raw_request(name, x, np.float32, seed=2**62 + SEED),
    }


def _readme_rest_bodies():
    """The request bodies of the README's curl commands, in order."""
    return [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", (REPO / "README.md").read_text())]


def _rest_bodies(x):
    """The README's REST bodies with this export's rows (and the test's seed), and the other plain forms."""
    rows = np.asarray(x).tolist()
    bodies = {}
    for i, body in enumerate(_readme_rest_bodies()):
        for key in ("instances", "inputs"):
            if isinstance(body.get(key), list):
                body[key] = rows
            elif isinstance(body.get(key), dict):
                body[key]["x"] = rows
                if "seed" in body[key]:
                    body[key]["seed"] = SEED
        bodies[f"readme_{i}"] = body
    bodies.update({
        "columns": {"inputs": {"x": rows}},
        "plain_columns": {"inputs": rows},
        "row_objects": {"instances": [{"x": row} for row in rows]},
        "samples_rows": {"signature_name": "samples", "instances": rows},
        "samples_seeded": {"signature_name": "samples_seeded", "inputs": {"x": rows, "seed": SEED}},
        "seeded_rows": {"signature_name": "seeded", "instances": rows},
        "seed_to_serving_default": {"inputs": {"x": rows, "seed": SEED}},
    })
    return bodies


def _saved_model_cli(*args):
    command = [str(Path(sys.executable).parent / "saved_model_cli"), *map(str, args)]
    completed = subprocess.run(command, env=_quiet_env(), capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert completed.returncode == 0, f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serving")
    tf_keras.utils.set_random_seed(5)
    cases = {"regression": _regression_case(), "classification": _classification_case()}
    exports, inputs, in_python = {}, {}, {}
    for name, (model, x) in cases.items():
        metadata = {"features": [f"f{i}" for i in range(x.shape[1])]}
        exports[name] = serving.export_for_serving(
            model, workdir / "models" / name, num_samples=NUM_SAMPLES, metadata=metadata)
        inputs[f"{name}/input/x"] = x
        inputs[f"{name}/input/seed"] = np.int64(SEED)
        (workdir / "requests" / name).mkdir(parents=True)
        for label, request in _requests(name, x).items():
            (workdir / "requests" / name / f"{label}.pb").write_bytes(request.SerializeToString())
        (workdir / "rest" / name).mkdir(parents=True)
        for label, body in _rest_bodies(x).items():
            (workdir / "rest" / name / f"{label}.json").write_text(json.dumps(body))
        in_python[name] = tfp_bnn.predict(model, x, num_samples=NUM_SAMPLES, seed=SEED)
    np.savez(workdir / "inputs.npz", **inputs)
    (workdir / "exports.json").write_text(json.dumps({k: str(v) for k, v in exports.items()}))

    completed = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("serving_child.py")), str(workdir)],
        cwd=workdir, env=_quiet_env(), capture_output=True, text=True, timeout=CHILD_TIMEOUT,
    )
    assert completed.returncode == 0, f"child process failed:\n{completed.stdout}\n{completed.stderr}"
    with np.load(workdir / "child.npz") as arrays:
        answers = dict(arrays)

    # saved_model_cli, as a user would run it.
    shown = _saved_model_cli("show", "--dir", exports["regression"], "--all")
    np.save(workdir / "x.npy", inputs["regression/input/x"])
    np.save(workdir / "seed.npy", np.int64(SEED))
    _saved_model_cli(
        "run", "--dir", exports["regression"], "--tag_set", "serve", "--signature_def", "seeded",
        "--inputs", f"x={workdir / 'x.npy'};seed={workdir / 'seed.npy'}", "--outdir", workdir / "cli_run",
    )
    cli_run = {p.stem: np.load(p) for p in (workdir / "cli_run").glob("*.npy")}
    return {
        "cases": cases,
        "exports": exports,
        "report": json.loads((workdir / "child.json").read_text()),
        "answers": answers,
        "in_python": in_python,
        "shown": shown,
        "cli_run": cli_run,
    }


def _answer(served, name, request):
    prefix = f"{name}/{request}/"
    found = {k[len(prefix):]: v for k, v in served["answers"].items() if k.startswith(prefix)}
    assert found, f"no answer to {request!r} for the {name} export: {served['report']['exports'][name]['errors']}"
    return found


def _served_like_predict(prediction, task):
    """The serving_default outputs tfp_bnn.predict's result corresponds to."""
    if task == "classification":
        return {
            "probabilities": prediction.probabilities,
            "predicted_class": prediction.predicted_class,
            "entropy": prediction.predictive_entropy,
            "expected_entropy": prediction.expected_entropy,
            "mutual_information": prediction.mutual_information,
        }
    return {name: getattr(prediction, name) for name in REGRESSION_OUTPUTS}


# -- the layout -----------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPORTS)
def test_export_writes_a_versioned_saved_model(served, name):
    path = served["exports"][name]
    assert path.name == "1" and path.parent.name == name
    assert (path / "saved_model.pb").is_file()
    assert (path / "variables" / "variables.index").is_file()
    assert (path / "assets.extra" / serving.WARMUP_FILE).stat().st_size > 0
    # Nothing but the version: the staging folder was renamed, not left behind.
    assert [p.name for p in path.parent.iterdir()] == ["1"]
    described = json.loads((path / "assets.extra" / serving.METADATA_FILE).read_text())
    model, x = served["cases"][name]
    assert described["num_samples"] == NUM_SAMPLES
    assert described["input_shape"] == [x.shape[1]]
    assert described["task"] == name
    assert described["features"] == [f"f{i}" for i in range(x.shape[1])]
    assert set(described["signatures"]) == set(serving.SIGNATURES)


# -- what the server needs: core ops only, in a process without TFP ------------------


@pytest.mark.parametrize("name", EXPORTS)
def test_every_op_is_a_registered_core_tensorflow_op(served, name):
    report = served["report"]
    assert report["foreign_modules_at_start"] == [] and report["foreign_modules_at_end"] == []
    ops = report["exports"][name]["ops"]
    assert ops["num_meta_graphs"] == 1
    assert ops["unregistered"] == []
    assert ops["python_ops"] == []
    assert ops["without_cpu_kernel"] == []
    # The T draws are one batched matmul, and the weight noise comes from
    # stateless ops; the one stateful random op draws the seed of unseeded requests.
    assert "BatchMatMulV2" in ops["ops"]
    assert any(op.startswith("StatelessRandom") for op in ops["ops"])
    assert ops["stateful_random"] == ["RandomUniformInt"]


@pytest.mark.parametrize("name", EXPORTS)
def test_signatures_take_named_float32_inputs_and_the_seeded_twins_a_required_seed(served, name):
    signatures = served["report"]["exports"][name]["signatures"]
    _, x = served["cases"][name]
    assert set(signatures) == set(serving.SIGNATURES)
    outputs = {
        "serving_default": (REGRESSION_OUTPUTS if name == "regression" else CLASSIFICATION_OUTPUTS) + ("seed",),
        "samples": ("samples", "draw_means", "draw_variances", "seed") if name == "regression"
        else ("samples", "draw_probabilities", "seed"),
    }
    outputs.update(seeded=outputs["serving_default"], samples_seeded=outputs["samples"])
    for key, signature in signatures.items():
        assert signature["method_name"] == "tensorflow/serving/predict"
        assert signature["inputs"]["x"]["dtype"] == "float32"
        assert signature["inputs"]["x"]["shape"] == [-1, x.shape[1]]
        assert signature["defaults"] == {}  # TF Serving would feed a default seed as a scalar
        if key in ("serving_default", "samples"):
            assert set(signature["inputs"]) == {"x"}
        else:
            assert set(signature["inputs"]) == {"x", "seed"}
            assert signature["inputs"]["seed"]["dtype"] == "int64"
            assert signature["inputs"]["seed"]["shape"] == []
        assert set(signature["outputs"]) == set(outputs[key])
        for output in signature["outputs"].values():
            assert output["shape"][0] == -1  # batch first: TF Serving's row format works
        assert signature["outputs"]["seed"]["dtype"] == "int64" and signature["outputs"]["seed"]["shape"] == [-1]
    if name == "regression":
        assert all(signatures["serving_default"]["outputs"][k]["shape"] == [-1, 1] for k in REGRESSION_OUTPUTS)
        assert signatures["samples"]["outputs"]["samples"]["shape"] == [-1, NUM_SAMPLES, 1]
    else:
        assert signatures["serving_default"]["outputs"]["probabilities"]["shape"] == [-1, 3]
        assert signatures["serving_default"]["outputs"]["predicted_class"]["dtype"] == "int64"
        assert signatures["samples"]["outputs"]["samples"]["shape"] == [-1, NUM_SAMPLES]
        assert signatures["samples"]["outputs"]["samples"]["dtype"] == "int64"


# -- the answers ----------------------------------------------------------------------


# The TF1 session (TF Serving's way in) optimizes the graph differently from
# eager tf.function calls (other op fusions), so its float32 sums may round
# differently: equal to float32 precision, far below the Monte Carlo error.
# Sums of large terms (targets around 130) that cancel near 0 keep the
# absolute error of the large terms: tolerances are relative to the array's scale.
SESSION_RTOL = 1e-5


def _assert_float32_close(actual, expected, err_msg):
    atol = SESSION_RTOL * max(float(np.abs(expected).max()), 1e-3)
    np.testing.assert_allclose(actual, expected, rtol=SESSION_RTOL, atol=atol, err_msg=err_msg)


def _expected_draws(served, name):
    draws = served["in_python"][name]
    fields = ("draw_means", "draw_variances") if name == "regression" else ("draw_probabilities",)
    return {field: np.swapaxes(getattr(draws, field), 0, 1) for field in fields}


@pytest.mark.parametrize("name", EXPORTS)
@pytest.mark.parametrize("route", ["tf2", "session"])
def test_seeded_answer_equals_tfp_bnn_predict_with_that_seed(served, name, route):
    """Same seed, same weight draws: predict's numbers, bit for bit through
    tf.saved_model.load, to float32 rounding by tensor names in a TF1 session."""
    compare = np.testing.assert_array_equal if route == "tf2" else _assert_float32_close
    requests = ("tf2_seeded", "tf2_samples_seeded") if route == "tf2" else ("seeded", "samples_seeded")
    expected = (_served_like_predict(served["in_python"][name], name), _expected_draws(served, name))
    for request, fields in zip(requests, expected):
        answer = _answer(served, name, request)
        assert set(fields) <= set(answer)
        for output, value in fields.items():
            compare(answer[output], value, err_msg=f"{request} {output}")


@pytest.mark.parametrize("name", EXPORTS)
def test_same_seed_same_answer_without_seed_fresh_draws(served, name):
    seeded, again = _answer(served, name, "seeded"), _answer(served, name, "seeded_again")
    for output in seeded:
        np.testing.assert_array_equal(again[output], seeded[output], err_msg=output)
    key = "mean" if name == "regression" else "probabilities"
    first, second = _answer(served, name, "unseeded_1"), _answer(served, name, "unseeded_2")
    assert not np.array_equal(first[key], second[key])
    assert not np.array_equal(_answer(served, name, "other_seed")[key], seeded[key])
    assert not np.array_equal(
        _answer(served, name, "samples_unseeded")["samples"], _answer(served, name, "samples_seeded")["samples"])


@pytest.mark.parametrize("name", EXPORTS)
def test_every_answer_says_its_seed_and_an_unseeded_one_is_predict_with_that_seed(served, name):
    """A request without a seed draws a fresh one, reports it, and is then predict's answer for it."""
    model, x = served["cases"][name]
    for request in ("seeded", "samples_seeded"):
        np.testing.assert_array_equal(_answer(served, name, request)["seed"], np.full(len(x), SEED))
    seeds = []
    for request in ("unseeded_1", "unseeded_2"):
        answer = _answer(served, name, request)
        assert answer["seed"].shape == (len(x),) and len(set(answer["seed"])) == 1
        seed = int(answer["seed"][0])
        assert 0 <= seed < 2**62
        seeds.append(seed)
        expected = _served_like_predict(tfp_bnn.predict(model, x, num_samples=NUM_SAMPLES, seed=seed), name)
        for output, value in expected.items():
            _assert_float32_close(answer[output], value, err_msg=f"{request} {output}")
    assert seeds[0] != seeds[1]
    # A negative seed sent to the seeded twin draws afresh too, and says so.
    fresh = _answer(served, name, "seeded_negative")["seed"]
    assert len(set(fresh.tolist())) == 1 and 0 <= fresh[0] < 2**62


def test_samples_are_draws_of_the_predictive_mixture(served):
    reg = _answer(served, "regression", "samples_seeded")
    summary = _answer(served, "regression", "seeded")
    assert reg["samples"].shape == (12, NUM_SAMPLES, 1)
    z = np.abs(reg["samples"].mean(1) - summary["mean"]) / (summary["stddev"] / np.sqrt(NUM_SAMPLES))
    assert z.max() < 5.0
    # Fraction of samples inside the 95 % interval, over all inputs.
    inside = (reg["samples"] >= summary["lower"][:, None]) & (reg["samples"] <= summary["upper"][:, None])
    assert 0.90 < inside.mean() < 0.99

    cls = _answer(served, "classification", "samples_seeded")
    probabilities = _answer(served, "classification", "seeded")["probabilities"]
    assert cls["samples"].dtype == np.int64 and set(np.unique(cls["samples"])) <= {0, 1, 2}
    frequencies = np.stack([(cls["samples"] == k).mean(1) for k in range(3)], axis=1)
    tolerance = 5.0 * np.sqrt(probabilities * (1 - probabilities) / NUM_SAMPLES) + 1.0 / NUM_SAMPLES
    assert np.all(np.abs(frequencies - probabilities) <= tolerance)


def test_regression_answer_is_in_raw_units_with_a_consistent_split(served):
    answer = _answer(served, "regression", "seeded")
    np.testing.assert_allclose(
        answer["stddev"] ** 2, answer["aleatoric_stddev"] ** 2 + answer["epistemic_stddev"] ** 2, rtol=1e-5)
    assert np.all(answer["lower"] < answer["mean"]) and np.all(answer["mean"] < answer["upper"])
    assert np.all(answer["epistemic_stddev"] > 0)
    # Targets are around 3 * 10 + 4 * 25 = 130: the target standardization is baked in.
    assert 50 < np.median(answer["mean"]) < 250


def test_classification_answer_is_a_consistent_entropy_split(served):
    answer = _answer(served, "classification", "seeded")
    np.testing.assert_allclose(answer["probabilities"].sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(answer["predicted_class"], answer["probabilities"].argmax(1))
    np.testing.assert_allclose(
        answer["entropy"], answer["expected_entropy"] + answer["mutual_information"], rtol=1e-4, atol=1e-6)
    assert np.all(answer["mutual_information"] >= 0)


# -- bad requests ---------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPORTS)
def test_wrong_shape_fails_naming_the_expected_shape(served, name):
    errors = served["report"]["exports"][name]["errors"]
    num_features = served["cases"][name][1].shape[1]
    expected = f"(N, {num_features})"
    assert set(errors) == {"wrong_features", "wrong_rank", "wrong_dtype", "nan", "seed_vector", "seed_too_large",
                           "seeded_without_seed", "seed_to_serving_default", "rest_seeded_rows"}
    assert expected in errors["wrong_features"] and f"[2 {num_features + 1}]" in errors["wrong_features"]
    assert expected in errors["wrong_rank"] and f"[{num_features}]" in errors["wrong_rank"]
    assert "NaN" in errors["nan"]
    # TF Serving feeds the seed unchecked too: 2**62 + s would draw what s does.
    assert "seed must be an int64 scalar below 2**62 (negative: fresh draws)" in errors["seed_too_large"]
    assert str(2**62 + SEED) in errors["seed_too_large"]
    # Refused by whichever of TF's ops meets the vector first (the graph's inter-op threads race):
    # the fresh-seed Fill or a layer's stateless random op.
    assert ("must represent a scalar, got shape [3]" in errors["seed_vector"]
            or "seed must have shape [2], not [2,3]" in errors["seed_vector"]), errors["seed_vector"]
    # A float64 tensor never reaches the graph: TensorFlow refuses the feed.
    assert "float" in errors["wrong_dtype"] and "double" in errors["wrong_dtype"]
    # The seeded twins have no default seed; the others no seed at all (over gRPC an error,
    # over REST dropped: see test_readme_rest_requests_are_answered_by_the_signatures_they_name).
    assert "seed not found in request and no default value provided" in errors["seeded_without_seed"]
    assert "extra inputs ['seed']" in errors["seed_to_serving_default"]
    assert "instances is a plain list, but expecting list of objects" in errors["rest_seeded_rows"]
    # Through tf.saved_model.load: the same check, and the same refusal of float64.
    tf2 = served["report"]["exports"][name]["tf2_errors"]
    assert tf2["wrong_features"] is not None and expected in tf2["wrong_features"]
    assert tf2["wrong_dtype"] is not None and "float" in tf2["wrong_dtype"] and "double" in tf2["wrong_dtype"]


def test_predict_request_refuses_bad_inputs_before_sending():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        serving.predict_request(np.zeros((3, 3)), model_name="m", input_shape=(2,))
    with pytest.raises(ValueError, match=r"\(1, features\)"):
        serving.predict_request(np.zeros(3), model_name="m")
    with pytest.raises(ValueError, match="row 1, column 0"):
        serving.predict_request([[0.0], [np.nan]], model_name="m")
    with pytest.raises(TypeError, match="not a number type"):
        serving.predict_request([["a"], ["b"]], model_name="m")
    for seed in (-1, 1.5, True, 2**62, 2**63):
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*62\) \(or None for fresh draws\)"):
            serving.predict_request([[0.0]], model_name="m", seed=seed)


# -- the other ways in ------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPORTS)
def test_tf2_signatures_give_the_session_answers(served, name):
    for signature, request in (("seeded", "seeded"), ("samples_seeded", "samples_seeded")):
        by_session, by_tf2 = _answer(served, name, request), _answer(served, name, f"tf2_{signature}")
        assert set(by_tf2) == set(by_session)
        for output in by_session:
            _assert_float32_close(by_tf2[output], by_session[output], err_msg=f"{signature} {output}")


@pytest.mark.parametrize("name", EXPORTS)
def test_warmup_records_are_predict_logs_the_model_answers(served, name):
    warmup = served["report"]["exports"][name]["warmup"]
    assert {w["kind"] for w in warmup} == {"predict_log"}
    assert {w["model_name"] for w in warmup} == {name}
    assert sorted(w["signature_name"] for w in warmup) == ["samples", "serving_default"]
    # x alone: with --enable_batching the server replays them through its batching
    # session, which refuses a scalar input, and a failed warm-up fails the version.
    assert [w["inputs"] for w in warmup] == [["x"], ["x"]]
    assert [w["batching"] for w in warmup] == [None, None]
    assert all(w["finite"] and w["outputs"] for w in warmup)


@pytest.mark.parametrize("name", EXPORTS)
def test_requests_without_a_seed_pass_the_batching_session_and_seeded_ones_do_not(served, name):
    """TF Serving's batching session (--enable_batching) refuses any fed tensor without a
    batch dimension (ComputeInputSize); Predict feeds a signature's defaults too."""
    batching = served["report"]["exports"][name]["batching"]
    for label in ("unseeded_1", "samples_unseeded", "wrong_features", "rest_readme_0", "rest_columns",
                  "rest_samples_rows"):
        assert batching[label] is None, label
    for label in ("seeded", "samples_seeded", "seeded_negative", "rest_readme_1", "rest_samples_seeded"):
        assert batching[label] == "Batching Run() input tensors must have at least one dimension", label


def test_readme_rest_requests_are_the_row_format_and_a_seeded_one():
    bodies = _readme_rest_bodies()
    assert len(bodies) == 2
    assert bodies[0] == {"instances": [[-4.5], [0.0], [2.0]]}  # no signature name: serving_default
    assert bodies[1] == {"signature_name": "seeded", "inputs": {"x": [[-4.5], [0.0], [2.0]], "seed": 0}}


@pytest.mark.parametrize("name", EXPORTS)
def test_readme_rest_requests_are_answered_by_the_signatures_they_name(served, name):
    """The README's curl bodies (with this export's rows and seed), turned into requests as
    TF Serving's REST API does: the row format reaches serving_default, the seeded one
    answers as tfp_bnn.predict with that seed, and a seed sent to serving_default is dropped."""
    model, x = served["cases"][name]
    errors = served["report"]["exports"][name]["errors"]
    key = "mean" if name == "regression" else "probabilities"
    for label in ("readme_0", "columns", "plain_columns", "row_objects", "samples_rows", "seed_to_serving_default"):
        assert f"rest_{label}" not in errors, errors.get(f"rest_{label}")
        answer = _answer(served, name, f"rest_{label}")
        assert answer["seed"].shape == (len(x),) and len(set(answer["seed"].tolist())) == 1
        if label == "samples_rows":
            assert answer["samples"].shape[:2] == (len(x), NUM_SAMPLES)
            continue
        # Fresh draws: predict's answer for the seed they report.
        expected = _served_like_predict(
            tfp_bnn.predict(model, x, num_samples=NUM_SAMPLES, seed=int(answer["seed"][0])), name)
        _assert_float32_close(answer[key], expected[key], err_msg=f"rest_{label}")
    assert _answer(served, name, "rest_seed_to_serving_default")["seed"][0] != SEED  # the seed was not read
    for label, expected in (("readme_1", _served_like_predict(served["in_python"][name], name)),
                            ("samples_seeded", _expected_draws(served, name))):
        answer = _answer(served, name, f"rest_{label}")
        np.testing.assert_array_equal(answer["seed"], np.full(len(x), SEED))
        for output, value in expected.items():
            _assert_float32_close(answer[output], value, err_msg=f"rest_{label} {output}")


def test_predict_request_sends_a_seed_to_the_seeded_twin_and_refuses_other_names():
    kinds = {(None, "serving_default"): "serving_default", (None, "samples"): "samples",
             (3, "serving_default"): "seeded", (3, "samples"): "samples_seeded"}
    for (seed, kind), signature in kinds.items():
        request = serving.predict_request([[0.0]], model_name="m", signature_name=kind, seed=seed)
        assert request.model_spec.signature_name == signature
        assert set(request.inputs) == ({"x"} if seed is None else {"x", "seed"})
    assert serving.predict_request([[0.0]], model_name="m", seed=0).model_spec.signature_name == "seeded"
    for name in ("seeded", "samples_seeded", "unseeded", "predict"):
        message = (r"signature_name must be 'serving_default' or 'samples' \(a seed sends the request to its "
                   rf"seeded twin, 'seeded' or 'samples_seeded'\), got '{name}'")
        with pytest.raises(ValueError, match=message):
            serving.predict_request([[0.0]], model_name="m", signature_name=name, seed=0)
    with pytest.raises(ValueError, match=re.escape("got 'samples_seeded'; for 'samples_seeded' pass "
                                                   "signature_name='samples' and a seed.")):
        serving.predict_request([[0.0]], model_name="m", signature_name="samples_seeded")


def test_saved_model_cli_shows_and_runs_the_signatures(served):
    shown = served["shown"]
    for signature in serving.SIGNATURES:
        assert f"signature_def['{signature}']" in shown
    assert shown.count("Method name is: tensorflow/serving/predict") == len(serving.SIGNATURES)
    assert "shape: (-1, 2)" in shown and "seeded_seed:0" in shown and "serving_default_seed:0" not in shown
    for output in REGRESSION_OUTPUTS:
        assert f"outputs['{output}']" in shown
    seeded = _answer(served, "regression", "seeded")
    assert set(served["cli_run"]) == set(REGRESSION_OUTPUTS) | {"seed"}
    for output, value in served["cli_run"].items():
        np.testing.assert_array_equal(value, seeded[output], err_msg=output)


class _LocalServer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's Predict over gRPC on 127.0.0.1, backed by the TF1 session of an export."""

    def __init__(self, path):
        spec = importlib.util.spec_from_file_location("serving_child", Path(__file__).with_name("serving_child.py"))
        self.child = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.child)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], str(path))
        self.requests = []

    def Predict(self, request, context):
        self.requests.append(request)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in self.child.run_predict(self.session, self.meta_graph, request).items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


def test_grpc_client_round_trip_on_loopback(served):
    servicer = _LocalServer(served["exports"]["regression"])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        x = served["cases"]["regression"][1]
        answer = serving.grpc_predict(f"127.0.0.1:{port}", x, model_name="regression", seed=SEED, version=1,
                                      timeout=60)
    finally:
        server.stop(grace=None)
        servicer.session.close()
    request = servicer.requests[0]
    assert request.model_spec.name == "regression"
    assert request.model_spec.signature_name == "seeded"
    assert request.model_spec.version.value == 1
    assert request.inputs["x"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in request.inputs["x"].tensor_shape.dim] == list(x.shape)
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]), x)
    assert request.inputs["seed"].dtype == tf.int64.as_datatype_enum and tf.make_ndarray(request.inputs["seed"]) == SEED
    seeded = _answer(served, "regression", "seeded")
    assert set(answer) == set(seeded)
    for output in seeded:
        np.testing.assert_array_equal(answer[output], seeded[output], err_msg=output)


def test_predict_request_fields():
    request = serving.predict_request([[1.0, 2.0]], model_name="gap", signature_name="samples")
    assert request.model_spec.name == "gap" and request.model_spec.signature_name == "samples"
    assert not request.model_spec.HasField("version")
    assert set(request.inputs) == {"x"}  # no seed: the server's default, fresh draws
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]), np.array([[1.0, 2.0]], np.float32))
    assert request.inputs["x"].dtype == tf.float32.as_datatype_enum
    seeded = serving.predict_request(np.ones((3, 1), np.float64), model_name="gap", seed=2**40, input_shape=(1,))
    assert seeded.inputs["x"].dtype == tf.float32.as_datatype_enum
    assert tf.make_ndarray(seeded.inputs["seed"]) == 2**40 and seeded.inputs["seed"].tensor_shape.dim == []
    assert seeded.model_spec.signature_name == "seeded"


# -- versions: next integer, never overwritten, atomic -------------------------------------


def test_check_export_dir_picks_the_next_version_and_refuses_existing_ones(tmp_path):
    base = tmp_path / "models" / "gap"
    assert serving.check_export_dir(base) == 1
    for name in ("1", "3", "notes", ".5.incomplete-x"):
        (base / name).mkdir(parents=True)
    assert serving.check_export_dir(base) == 4
    assert serving.check_export_dir(base, 2) == 2
    with pytest.raises(FileExistsError, match="never overwritten; omit the version to write the next one \\(4\\)"):
        serving.check_export_dir(base, 3)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="positive integer"):
            serving.check_export_dir(base, bad)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="pass its parent BASE/NAME"):
        serving.check_export_dir(base / "1")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        serving.check_export_dir(tmp_path / "file")
    (base / "²").mkdir()  # a digit to str.isdigit, not to int() nor to TF Serving
    assert serving.check_export_dir(base) == 4


def test_export_refuses_metadata_that_would_replace_its_own_keys(tmp_path):
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=10)
    with pytest.raises(ValueError, match=r"metadata keys \['head', 'num_samples'\] are written by export_for_serving"):
        serving.export_for_serving(model, tmp_path / "m", num_samples=4, metadata={"num_samples": "x", "head": "y"})
    assert not (tmp_path / "m").exists()


def test_export_is_renamed_into_place_complete_and_leaves_nothing_when_it_fails(tmp_path, monkeypatch):
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=10)
    base = tmp_path / "gap"
    (base / "1").mkdir(parents=True)
    (base / "1" / "keep").write_text("version 1")
    renames = []
    real_rename = os.rename

    def spy(source, target):
        source = Path(source)
        renames.append({
            "source": source.name,
            "target": Path(target).name,
            "files": sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()),
        })
        return real_rename(source, target)

    monkeypatch.setattr(serving.os, "rename", spy)
    path = serving.export_for_serving(model, base, num_samples=4)
    assert path == base / "2"
    assert len(renames) == 1 and renames[0]["target"] == "2"
    assert renames[0]["source"].startswith(".2.incomplete-")  # not a number: the server ignores it
    assert {"saved_model.pb", "assets.extra/tf_serving_warmup_requests", "variables/variables.index"} <= set(
        renames[0]["files"])

    def broken_save(module, directory, signatures=None, options=None):
        (Path(directory) / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(serving.tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        serving.export_for_serving(model, base, num_samples=4)
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
    assert (base / "1" / "keep").read_text() == "version 1"


def test_export_refuses_models_it_cannot_serve(tmp_path):
    plain = tf_keras.Sequential([tf_keras.Input((2,)), tf_keras.layers.Dense(1)])
    with pytest.raises(TypeError, match="export_for_serving needs a model that ends in a tfp_bnn head"):
        serving.export_for_serving(plain, tmp_path / "m")
    model = tfp_bnn.make_regressor((1,), hidden_units=(4,), train_size=10)
    with pytest.raises(ValueError, match="num_samples"):
        serving.export_for_serving(model, tmp_path / "m", num_samples=0)
    with pytest.raises(ValueError, match="level"):
        serving.export_for_serving(model, tmp_path / "m", level=1.0)
    assert not (tmp_path / "m").exists()


# -- the command line ---------------------------------------------------------------------


def test_cli_export_writes_next_versions_and_never_overwrites(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["fit", "--out", str(run), "--epochs", "1", "--hidden", "4", "--samples", "2"]) == 0
    base = tmp_path / "models" / "gap"
    assert cli.main(["export", "--model", str(run), "--out", str(base), "--samples", "4"]) == 0
    assert cli.main(["export", "--model", str(run), "--out", str(base), "--samples", "4", "--version", "7"]) == 0
    assert sorted(p.name for p in base.iterdir()) == ["1", "7"]
    described = json.loads((base / "7" / "assets.extra" / serving.METADATA_FILE).read_text())
    assert described["num_samples"] == 4 and described["features"] == ["x"] and described["target"] == "y"
    assert "Wrote" in capsys.readouterr().out

    before = (base / "7" / "saved_model.pb").read_bytes()
    assert cli.main(["export", "--model", str(run), "--out", str(base), "--version", "7"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfp-bnn export: error:") and "never overwritten" in error and "(8)" in error
    assert len(error.splitlines()) == 1
    assert (base / "7" / "saved_model.pb").read_bytes() == before

    assert cli.main(["export", "--model", str(tmp_path / "nothing"), "--out", str(base)]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(run), "--out", str(base / "1")]) == 2
    assert "pass its parent BASE/NAME" in capsys.readouterr().err
    assert sorted(p.name for p in base.iterdir()) == ["1", "7"]


# -- the README's models.config ---------------------------------------------------------------


def test_readme_models_config_example_parses():
    from google.protobuf import text_format

    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:protobuf|text)\n(model_config_list.*?)```", readme, flags=re.S)
    assert len(blocks) == 1, "README.md should hold one models.config example"
    config = text_format.Parse(blocks[0], model_server_config_pb2.ModelServerConfig())
    models = {c.name: c for c in config.model_config_list.config}
    assert len(models) >= 2
    assert all(c.base_path.startswith("/models/") and c.model_platform == "tensorflow" for c in models.values())
    policies = [c.model_version_policy.WhichOneof("policy_choice") for c in models.values()]
    assert "specific" in policies  # serving several versions of one model


def test_readme_rest_answer_is_one_the_export_could_give_and_matches_its_text():
    # The numbers come from a trained model (re-run the README's commands to refresh them);
    # what holds for any answer is checked here: the request, the output names, the split
    # of the variance, the interval around the mean and the ratio the text quotes.
    readme = (REPO / "README.md").read_text()
    request = _readme_rest_bodies()[-1]  # the seeded one, whose answer the README shows
    answer = json.loads(re.search(r"```json\n(\{\"outputs\".*?)```", readme, flags=re.S).group(1))["outputs"]
    assert request["signature_name"] == "seeded" and request["inputs"]["x"] == [[-4.5], [0.0], [2.0]]
    assert set(answer) == {*REGRESSION_OUTPUTS, "seed"} and answer["seed"] == [request["inputs"]["seed"]] * 3
    out = {name: np.asarray(values, dtype=float) for name, values in answer.items()}
    assert all(out[name].shape == (3, 1) for name in REGRESSION_OUTPUTS)
    np.testing.assert_allclose(out["stddev"] ** 2, out["aleatoric_stddev"] ** 2 + out["epistemic_stddev"] ** 2,
                               atol=2e-4)  # the JSON rounds to 4 decimals
    assert (out["lower"] < out["mean"]).all() and (out["mean"] < out["upper"]).all()
    quoted = float(re.search(r"its epistemic std is ([\d.]+)× that at x = 2", readme).group(1))
    assert round(out["epistemic_stddev"][0, 0] / out["epistemic_stddev"][2, 0], 1) == quoted


# -- the benchmark runs (its numbers are not a test) ---------------------------------------------


def test_serving_benchmark_smoke_run_never_replaces_the_committed_results(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("serving_benchmark", REPO / "benchmarks" / "serving.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    monkeypatch.setattr(benchmark, "RESULTS", tmp_path / "committed.json")
    monkeypatch.setattr(benchmark, "run", lambda settings: {"settings": settings, "rows": []})
    assert benchmark.main(["--tiny"])["settings"]["samples"] == benchmark.TINY["samples"]
    assert not (tmp_path / "committed.json").exists()
    benchmark.main([])  # the full run writes them
    assert json.loads((tmp_path / "committed.json").read_text())["settings"]["samples"] == benchmark.FULL["samples"]
    with pytest.raises(SystemExit):
        benchmark.main(["--tiny", "--repeats", "0"])
    assert "argument --repeats: must be a positive integer, got 0" in capsys.readouterr().err


def test_serving_benchmark_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("serving_benchmark", REPO / "benchmarks" / "serving.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    out = tmp_path / "serving.json"
    results = benchmark.main(["--tiny", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(results))
    for row in saved["rows"]:
        assert row["served_seconds"] > 0 and row["forward_seconds"] > 0
        assert row["ratio"] == pytest.approx(row["served_seconds"] / row["forward_seconds"])


def test_a_model_compiled_for_xla_exports_the_plain_graph_with_the_same_answers(tmp_path):
    # Prediction here goes through XLA for such a model; the export must not: a
    # function marked must-compile runs only on a server built with XLA's JIT.
    from tensorflow.core.protobuf import saved_model_pb2

    model = tfp_bnn.make_regressor((3,), hidden_units=(8,), train_size=32)
    model.compile(jit_compile=True)
    x = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    xla = tfp_bnn.predict(model, x, num_samples=8, seed=5)
    path = serving.export_for_serving(model, tmp_path / "gap", num_samples=8)

    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    marked = [node.name for node in nodes if node.attr["_XlaMustCompile"].b]
    marked += [f.signature.name for f in graph.library.function if f.attr["_XlaMustCompile"].b]
    assert len(nodes) > 100 and marked == []

    answer = tf.saved_model.load(str(path)).signatures["seeded"](x=tf.constant(x), seed=tf.constant(5, tf.int64))
    np.testing.assert_allclose(answer["mean"].numpy(), xla.mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(answer["lower"].numpy(), xla.lower, rtol=1e-4, atol=1e-4)


def test_a_student_t_export_holds_no_gradient_functions_and_answers_as_predict(tmp_path):
    # The StudentT quantiles run TFP's betainc, a custom-gradient op: with its gradients the
    # graph was 7.4 MB (against 0.4 MB for a Normal head) and the export took 3x as long.
    from tensorflow.core.protobuf import saved_model_pb2

    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=16, head=tfp_bnn.StudentTHead(1))
    x = np.random.default_rng(3).normal(size=(5, 2)).astype(np.float32)
    path = serving.export_for_serving(model, tmp_path / "student", num_samples=6)
    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    functions = [f.signature.name for f in saved.meta_graphs[0].graph_def.library.function]
    assert [name for name in functions if "grad_fn" in name or "gradients_" in name] == []
    assert (path / "saved_model.pb").stat().st_size < 3e6
    answer = tf.saved_model.load(str(path)).signatures["seeded"](x=tf.constant(x), seed=tf.constant(4, tf.int64))
    expected = tfp_bnn.predict(model, x, num_samples=6, seed=4)
    for output in ("mean", "lower", "upper", "aleatoric_stddev", "epistemic_stddev"):
        np.testing.assert_allclose(answer[output].numpy(), getattr(expected, output), rtol=1e-5, atol=1e-6, err_msg=output)


def test_serving_benchmark_refuses_an_unknown_estimator_before_measuring(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("serving_benchmark", REPO / "benchmarks" / "serving.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    measured = []
    monkeypatch.setattr(benchmark, "_run_one", lambda settings, model: measured.append(model) or [])
    for names in ("flipout,nope", "flipout,flipout", "flipout,"):
        with pytest.raises(SystemExit) as error:
            benchmark.main(["--tiny", "--estimators", names])
        assert error.value.code == 2 and "argument --estimators" in capsys.readouterr().err
    assert measured == []  # nothing measured before the refusal


def test_an_empty_request_is_refused_by_name_for_dense_and_conv_models(tmp_path, served):
    """As tfp_bnn.predict refuses x without rows; a convolution's draws (tf.map_fn over
    Conv2D) otherwise failed with "PartialTensorShape: Incompatible shapes during merge"."""
    inputs = tf_keras.Input((6, 6, 1))
    hidden = tf_keras.layers.Flatten()(tfp_bnn.BayesianConv2D(2, 3, kl_weight=0.1)(inputs))
    head = tfp_bnn.CategoricalHead(3)
    conv = tfp_bnn.BayesianModel(inputs, head(tfp_bnn.BayesianDense(head.params_size, kl_weight=0.1)(hidden)))
    conv_export = serving.export_for_serving(conv, tmp_path / "conv", num_samples=3)
    dense, _ = served["cases"]["regression"]  # a dense regressor (make_regressor), exported by the fixture
    for model, path in ((conv, conv_export), (dense, served["exports"]["regression"])):
        loaded = tf.saved_model.load(str(path))
        empty = tf.zeros((0, *model.input_shape[1:]))
        with pytest.raises(tf.errors.InvalidArgumentError, match="input x has no examples"):
            loaded.signatures["seeded"](x=empty, seed=tf.constant(0, tf.int64))
        with pytest.raises(tf.errors.InvalidArgumentError, match="input x has no examples"):
            loaded.signatures["serving_default"](x=empty)


def test_an_mc_dropout_answer_is_predict_of_the_whole_request_as_the_readme_says(tmp_path):
    """Its masks are drawn per row of a chunk: predict's default chunks (2**17 / T rows)
    draw other masks than the server's one call, so the README names batch_size=len(x)."""
    num_samples = 8
    x = np.random.default_rng(3).normal(size=(2**17 // num_samples + 5, 2)).astype(np.float32)
    model = tfp_bnn.make_regressor((2,), hidden_units=(4,), train_size=10, inference="mc_dropout")
    loaded = tf.saved_model.load(str(serving.export_for_serving(model, tmp_path / "mcd", num_samples=num_samples)))
    served = loaded.signatures["seeded"](x=tf.constant(x), seed=tf.constant(5, tf.int64))["mean"].numpy()
    whole = tfp_bnn.predict(model, x, num_samples=num_samples, seed=5, batch_size=len(x))
    np.testing.assert_array_equal(served, whole.mean)
    chunked = tfp_bnn.predict(model, x, num_samples=num_samples, seed=5)
    assert not np.array_equal(served, chunked.mean)
    readme = (REPO / "README.md").read_text()
    assert "batch_size=len(x))`" in readme.replace("\n", " ")


def test_a_scalar_x_fed_by_the_server_fails_with_the_named_shape_error(served):
    """TF Serving feeds x unchecked: REST's {"inputs": 0.5} is a scalar. The empty-request
    check must not slice its shape first ("slice index 0 of dimension 0 out of bounds")."""
    path = served["exports"]["regression"]  # make_regressor((2,), ...): x of shape (N, 2)
    assert served["cases"]["regression"][0].input_shape == (None, 2)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
        for name in ("serving_default", "seeded"):
            signature = meta_graph.signature_def[name]
            feeds = {graph.get_tensor_by_name(signature.inputs["x"].name)._as_tf_output(): np.float32(0.5)}
            if "seed" in signature.inputs:
                feeds[graph.get_tensor_by_name(signature.inputs["seed"].name)._as_tf_output()] = np.int64(0)
            fetches = [graph.get_tensor_by_name(signature.outputs["mean"].name)._as_tf_output()]
            for _ in range(5):  # the graph's inter-op threads: every run names the shape
                with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape("of shape (N, 2)")):
                    session._call_tf_sessionrun(None, feeds, fetches, [], None)
