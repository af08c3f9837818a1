"""Serve the predictive distribution with TensorFlow Serving.

A Keras SavedModel of a TFP model answers every request with one random
*sample* of the output distribution. :func:`export_for_serving` writes a
SavedModel whose signatures run ``T`` independent weight draws inside the
graph in one call (the graph of :func:`tfp_bnn.predict`, built by
:func:`tfp_bnn.prediction.predictive_summary`) and answer with the whole
predictive distribution. TF Serving loads it as it is: the graph holds only
core TensorFlow ops (no Python, no TFP code at serving time).

=====================  =========================================================
signature              outputs (``N`` inputs, ``T`` weight draws, all batch-major)
=====================  =========================================================
``serving_default``    regression: ``mean``, ``stddev``, ``aleatoric_stddev``,
                       ``epistemic_stddev``, ``lower``, ``upper`` (central
                       ``level`` interval of the predictive mixture), each
                       ``[N, units]``; classification: ``probabilities``
                       ``[N, K]``, ``predicted_class`` ``[N]`` (int64),
                       ``entropy``, ``expected_entropy``, ``mutual_information``
                       ``[N]`` (nats); a label per time step or pixel adds
                       its ``steps`` after ``N`` (in ``samples`` after ``T``:
                       ``[N, T, *steps]``, ``[N, T, *steps, K]``)
``samples``            ``samples``: one draw ``y_t ~ p(y | x, w_t)`` per weight
                       draw, ``[N, T, units]`` (classification: class indices
                       ``[N, T]``), and ``draw_means``, ``draw_variances``
                       ``[N, T, units]`` (classification: ``draw_probabilities``
                       ``[N, T, K]``)
``seeded``,            the outputs of ``serving_default`` and ``samples``, for
``samples_seeded``     inputs ``x`` and ``seed``: reproducible answers
all                    ``seed``: the seed of the answer, int64 ``[N]`` (the
                       same in every row)
=====================  =========================================================

Inputs (method ``tensorflow/serving/predict``): ``x``, float32
``[N, *input_shape]`` in the units the model was trained on (any
standardization is inside the model); ``seeded`` and ``samples_seeded`` also
take ``seed``, a required int64 scalar. ``serving_default`` and ``samples``
draw a fresh seed per request, so answers vary as Monte Carlo estimates do;
the ``seed`` output says which, so any answer can be reproduced by sending its
seed to the seeded twin. There, with a seed in ``[0, 2**62)`` (larger ones are
refused; a negative one draws afresh), the answer is a fixed function of the
seed (the weight draws are stateless random ops, and the same as those of
``tfp_bnn.predict(model, x, num_samples=T, seed=seed)``; for MC dropout, whose
masks are drawn per row of a chunk, with ``batch_size=len(x)``). Every output
has the batch as its first axis. ``serving_default`` and ``samples`` take
``x`` alone, so TF Serving's REST row format (``{"instances": [[0.5]]}``, no
signature name) and its server-side batching (``--enable_batching``) work
with them; the seed is one int64 scalar per request, so a seeded request
goes in the columnar format (``{"signature_name": "seeded", "inputs": {"x":
[[0.5]], "seed": 0}}``) to a server without batching, whose batching session
refuses any input without a batch dimension.

A process that requires determinism (``TF_DETERMINISTIC_OPS=1``,
``tf.config.experimental.enable_op_determinism()``) answers the seeded
signatures and refuses the unseeded ones, whose fresh seed is a random op
without a seed. TF Serving's warm-up replays unseeded requests, and a
server fails a version whose warm-up fails: do not run the server that way
(untested here, without a server binary).

Layout, the one TF Serving watches::

    BASE/NAME/1/saved_model.pb, variables/, assets.extra/tf_serving_warmup_requests
    BASE/NAME/2/...

A new version is written to a hidden temporary folder inside ``BASE/NAME``
and renamed into place, so a server never sees half a version; an existing
version is never overwritten and older versions are kept (the server's
version policy decides which it serves). ``assets.extra`` also holds
``tfp_bnn.json``: the number of draws, the input shape and the outputs.

Example:

>>> import tfp_bnn
>>> model = tfp_bnn.make_regressor((1,), train_size=100)  # fit it first
>>> path = tfp_bnn.serving.export_for_serving(model, "models/gap", num_samples=100)
>>> path
PosixPath('models/gap/1')

Then, with ``tensorflow_model_server --model_base_path=$PWD/models/gap
--model_name=gap`` running:

>>> tfp_bnn.serving.grpc_predict("localhost:8500", [[0.5]], model_name="gap", seed=0)["mean"]  # doctest: +SKIP
array([[...]], dtype=float32)

(with ``seed=0`` the request goes to the ``seeded`` signature; without a seed,
to ``serving_default``.)
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

from tfp_bnn import prediction, sampling, validation

__all__ = [
    "export_for_serving",
    "check_export_dir",
    "predict_request",
    "grpc_predict",
    "SIGNATURES",
    "UNSEEDED",
]

SIGNATURES = ("serving_default", "samples", "seeded", "samples_seeded")
# The kinds of answer a request names, and the twin that takes a seed. The
# kinds take x alone: what TF Serving's REST row format ("instances") and its
# batching session (--enable_batching: every fed input needs a batch dimension)
# accept. No input has a default: TF Serving would feed it as a scalar anyway.
_SEEDED = {"serving_default": "seeded", "samples": "samples_seeded"}
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "tfp_bnn.json"
# A negative seed means "draw a fresh one": what serving_default and samples
# pass their seeded twins (which also accept it from a request).
UNSEEDED = -1
# Fresh seeds are drawn from [0, 2**62): the range sampling.stateless_seed keeps apart.
_SEED_RANGE = 2**62

_SERVING_API_MISSING = (
    "this needs the TensorFlow Serving API protos (package tensorflow-serving-api); "
    "install them with: pip install 'tfp-bnn[serving]'"
)


def export_for_serving(model, export_dir, *, num_samples=100, version=None, level=0.95, metadata=None):
    """Write ``model`` as version ``version`` of the TF Serving model in ``export_dir``.

    Args:
      model: a Keras model with one input of fixed shape that ends in a
        :mod:`tfp_bnn.heads` head (e.g. a :class:`tfp_bnn.BayesianModel`
        loaded from a ``.keras`` file).
      export_dir: ``BASE/NAME``, the folder of numbered versions that the
        server watches (``--model_base_path``); created if missing.
      num_samples: ``T``, weight draws per request (fixed in the graph).
      version: positive integer; by default one more than the highest
        existing version (1 for a new model). An existing version is never
        overwritten (``FileExistsError``).
      level: coverage of the ``lower``/``upper`` interval (regression).
      metadata: optional JSON-serializable dict added to
        ``assets.extra/tfp_bnn.json`` (e.g. feature and class names); its
        keys must differ from those the export writes (``ValueError``).

    Returns:
      The ``pathlib.Path`` of the new version folder.

    The signatures are TensorFlow's plain graph even for a model compiled
    with ``jit_compile=True``: a function exported under XLA keeps its
    must-compile mark, and would then run only on a server built with XLA's
    JIT, while every op of the plain graph is a core op that any TF Serving
    build registers (``tests/test_serving.py`` checks each one).

    Example: version 1 of a new classifier, with the class names in its metadata.

    >>> import json, tfp_bnn
    >>> from tfp_bnn.serving import export_for_serving
    >>> model = tfp_bnn.make_classifier((4,), 3, train_size=100)  # fit it first
    >>> path = export_for_serving(model, "models/iris", num_samples=10, metadata={"classes": ["a", "b", "c"]})
    >>> path.as_posix(), sorted(p.name for p in (path / "assets.extra").iterdir())
    ('models/iris/1', ['tf_serving_warmup_requests', 'tfp_bnn.json'])
    >>> info = json.loads((path / "assets.extra" / "tfp_bnn.json").read_text())
    >>> info["num_samples"], info["input_shape"], info["classes"]
    (10, [4], ['a', 'b', 'c'])
    >>> info["signatures"]["serving_default"]["probabilities"], info["signatures"]["samples"]["samples"]
    ('float32 (N, 3)', 'int64 (N, 10)')
    """
    validation.check_eager_outside_functions("tfp_bnn.serving.export_for_serving")
    head = prediction._head(model, "export_for_serving")
    prediction._refuse_tfp_variational_layers(model)
    num_samples = validation.check_num_samples(num_samples, model)
    validation.check_level(level)
    input_shape = prediction._input_shape(model, "export_for_serving")
    if validation.model_input_dtype(model) == tf.string:
        raise TypeError(
            "The model's input is a string tensor, but the served signatures take x as float32 numbers: "
            "export a model without the text preprocessing (e.g. tf_keras.Model(lookup.output, "
            "model.output) after the StringLookup) and encode the text in the client."
        )
    export_dir = Path(export_dir)
    version = check_export_dir(export_dir, version)
    warmup = _warmup_requests(export_dir.name, input_shape)  # before any work: needs the serving protos
    description = {
        "tfp_bnn_version": _version(),
        "task": head.task,
        "head": type(head).__name__,
        "num_samples": num_samples,
        "level": float(level) if head.task == "regression" else None,
        "input_shape": list(input_shape),
        "unseeded": UNSEEDED,
        "signatures": {},
    }
    clashes = sorted(set(metadata or {}) & set(description))
    if clashes:
        raise ValueError(
            f"metadata keys {clashes} are written by export_for_serving itself; rename them "
            f"(e.g. 'user_{clashes[0]}')."
        )
    description.update(metadata or {})
    json.dumps(description)  # fail now, not after the export, if metadata is not JSON

    signatures = _signatures(model, head, input_shape, num_samples, float(level))
    export_dir.mkdir(parents=True, exist_ok=True)
    # Hidden and not a number: TF Serving ignores it until the rename.
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.incomplete-", dir=export_dir))
    try:
        module = tf.Module()
        module.model_variables = list(model.variables)  # what the signatures read
        # And the tables of preprocessing layers (StringLookup, IntegerLookup, ...), which are
        # resources, not variables: untracked, saving failed with "untracked resource".
        module.model_resources = _resources(model)
        # Without the gradients of TFP's custom-gradient ops, which a server never runs: a
        # StudentT head's quantiles (betainc) made a 7.4 MB graph of them, 1.5 MB without.
        options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
        tf.saved_model.save(module, str(staging), signatures=signatures, options=options)
        extra = staging / "assets.extra"
        extra.mkdir()
        with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
            for record in warmup:
                writer.write(record)
        for name, function in signatures.items():
            outputs = function.get_concrete_function().structured_outputs
            description["signatures"][name] = {key: _spec_text(t) for key, t in outputs.items()}
        (extra / METADATA_FILE).write_text(json.dumps(description, indent=2) + "\n")
        staging.chmod(0o755)  # mkdtemp's 0o700 would hide it from a server running as another user
        target = export_dir / str(version)
        if target.exists():  # written by someone else meanwhile
            raise FileExistsError(f"{target} appeared during the export; it was left as it is.")
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def check_export_dir(export_dir, version=None):
    """The version :func:`export_for_serving` would write in ``export_dir``, or an error.

    ``export_dir`` is ``BASE/NAME``: a folder (possibly not yet there) whose
    integer-named subfolders are versions. Raises ``FileExistsError`` if
    ``version`` exists already, ``ValueError`` for a bad version or folder.

    Example: check before a long training run that the export will not fail.

    >>> from pathlib import Path
    >>> from tfp_bnn.serving import check_export_dir
    >>> check_export_dir("models/prices")  # a new model: version 1
    1
    >>> Path("models/prices/1").mkdir(parents=True)
    >>> check_export_dir("models/prices")
    2
    >>> check_export_dir("models/prices", version=1)
    Traceback (most recent call last):
    FileExistsError: models/prices/1 already exists and a served version is never overwritten; omit the version to write the next one (2) or choose an unused number.
    """
    export_dir = Path(export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise ValueError(f"{export_dir} is a file; the export goes to a folder BASE/NAME of numbered versions.")
    if (export_dir / "saved_model.pb").exists():
        raise ValueError(
            f"{export_dir} is itself a SavedModel (a version folder?); pass its parent BASE/NAME, "
            "the folder that holds the numbered versions."
        )
    existing = _existing_versions(export_dir)
    following = max(existing, default=0) + 1
    if version is None:
        return following
    version = validation.check_positive_int(version, "version")
    if version in existing:
        raise FileExistsError(
            f"{existing[int(version)]} already exists and a served version is never overwritten; "
            f"omit the version to write the next one ({following}) or choose an unused number."
        )
    return int(version)


def _existing_versions(export_dir):
    if not export_dir.is_dir():
        return {}
    # isascii: str.isdigit() also accepts digits such as '²' that int() refuses.
    return {int(p.name): p for p in export_dir.iterdir() if p.name.isascii() and p.name.isdigit()}


def _spec_text(tensor):
    """``"float32 (N, 1)"``: how the README and the metadata file name an output."""
    dims = ["N" if d is None else str(d) for d in tensor.shape.as_list()]
    return f"{tensor.dtype.name} ({', '.join(dims)}{',' if len(dims) == 1 else ''})"


def _version():
    import tfp_bnn

    return tfp_bnn.__version__


# -- the graph ---------------------------------------------------------------------


def _signatures(model, head, input_shape, num_samples, level):
    x_spec = tf.TensorSpec([None, *input_shape], tf.float32, name="x")
    integer = validation.model_input_dtype(model).is_integer  # ids sent as float32: exact up to 2**24 only
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")

    @tf.function(input_signature=[x_spec, seed_spec])
    def seeded(x, seed):
        x, seed = _checked_inputs(x, seed, input_shape, integer)
        summary = prediction.predictive_summary(
            model, x, num_samples=num_samples, seed=sampling.stateless_seed(seed), level=level)
        return {**_summary_outputs(head, summary), "seed": _per_row(seed, x)}

    @tf.function(input_signature=[x_spec, seed_spec])
    def samples_seeded(x, seed):
        x, seed = _checked_inputs(x, seed, input_shape, integer)
        draws = prediction.predictive_samples(model, x, num_samples=num_samples, seed=sampling.stateless_seed(seed))
        # [T, N, ...] -> [N, T, ...]: TF Serving's row format wants the batch first.
        draws = {k: tf.transpose(v, [1, 0, *range(2, v.shape.rank)]) for k, v in draws.items()}
        return {**draws, "seed": _per_row(seed, x)}

    # x alone: the fresh-seed marker is a constant of the graph, not an input that
    # TF Serving would feed (as a scalar, refused by its batching session, and one
    # that its REST API would want in every request). They call the very functions
    # of their seeded twins, so the warm-up records run every op of those too.
    unseeded = tf.constant(UNSEEDED, tf.int64)

    @tf.function(input_signature=[x_spec])
    def serving_default(x):
        return seeded(x, unseeded)

    @tf.function(input_signature=[x_spec])
    def samples(x):
        return samples_seeded(x, unseeded)

    return {"serving_default": serving_default, "samples": samples,
            "seeded": seeded, "samples_seeded": samples_seeded}


def _resources(model):
    """The resources (lookup tables) the model's layers hold, which ``model.variables`` leaves out."""
    return [
        obj for obj in tf.train.TrackableView(model).descendants()
        if isinstance(obj, tf.saved_model.experimental.TrackableResource)
    ]


def _per_row(seed, x):
    """The seed the answer used, once per input row: TF Serving's row format wants the batch first."""
    return tf.fill(tf.shape(x)[:1], seed)


def _checked_inputs(x, seed, input_shape, integer=False):
    """``x`` checked at run time, and the request's seed (a fresh one if it was negative).

    TF Serving feeds request tensors without checking them against the
    signature's shape, so a wrong feature count would otherwise surface as a
    matmul error deep inside (or not at all).
    """
    expected = validation.shape_text(input_shape)
    shape = tf.shape(x)
    # Padded with -1 so that a tensor of any rank compares: dims 1..k must be
    # the input shape and dim k + 1 must not exist.
    padded = tf.concat([shape, -tf.ones([len(input_shape) + 2], tf.int32)], axis=0)
    fits = tf.reduce_all(tf.equal(padded[1 : len(input_shape) + 2], [*input_shape, -1]))
    shape_check = tf.debugging.Assert(
        fits,
        [f"tfp_bnn: input x must be float32 of shape {expected}: N examples of shape "
         f"{tuple(input_shape)}; got a tensor of shape", shape],
        name="check_x_shape",
    )
    # As tfp_bnn.predict: an empty batch is refused by name (a convolution's draws,
    # tf.map_fn over TensorFlow's Conv2D, failed on it with a TensorList shape error).
    # After the shape check and on the padded shape: shape[0] of a scalar x (REST's
    # {"inputs": 0.5}) fails with "slice index 0 of dimension 0 out of bounds".
    with tf.control_dependencies([shape_check]):
        rows_check = tf.debugging.Assert(
            padded[0] > 0, ["tfp_bnn: input x has no examples; send at least one row."], name="check_x_rows")
    # After the shape check, and flat: ops built for rank 2 fail on other ranks.
    with tf.control_dependencies([shape_check, rows_check]):
        finite_check = tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(tf.reshape(x, [-1]))),
            ["tfp_bnn: input x contains NaN or infinite values; drop or impute them first."],
            name="check_x_finite",
        )
    # 2**62 + s would draw what s does (sampling.stateless_seed keeps 62 bits).
    # A seed of another rank fails in whichever of TF's ops meets it first, the
    # fresh-seed Fill ("must represent a scalar") or a layer's stateless random op
    # ("seed must have shape [2]"): a rank check here would be folded away, as the
    # graph knows the seed as [].
    seed_check = tf.debugging.Assert(
        tf.reduce_all(tf.reshape(seed, [-1]) < _SEED_RANGE),
        ["tfp_bnn: seed must be an int64 scalar below 2**62 (negative: fresh draws); got", seed],
        name="check_seed",
    )
    checks = [finite_check, seed_check]
    if integer:  # float32 holds every integer below 2**24 exactly; 2**24 itself is also 2**24 + 1 rounded
        with tf.control_dependencies([finite_check]):
            checks.append(tf.debugging.Assert(
                tf.reduce_all((tf.abs(x) < 2.0**24) & (tf.round(x) == x)),
                ["tfp_bnn: the model's input is integer (ids); x must hold whole numbers below 2**24 "
                 "in absolute value, which float32 represents exactly."],
                name="check_x_integers",
            ))
    with tf.control_dependencies(checks):
        x, seed = tf.identity(x), tf.identity(seed)
    # The only stateful random op: a fresh seed for requests without one. The
    # raw op with seed = seed2 = 0 is seeded from the OS, not from the global
    # seed of the exporting process (which would repeat across server restarts).
    # Drawn in a branch taken only without a seed, and kept a functional If (not lowered to
    # Switch/Merge, whose kernels are all created up front): a process that requires
    # determinism (TF_DETERMINISTIC_OPS=1, tf.config.experimental.enable_op_determinism())
    # refuses the op's kernel, and so refused seeded requests too.
    def with_fresh_seed():
        fresh = tf.raw_ops.RandomUniformInt(
            shape=tf.constant([], tf.int32),
            minval=tf.constant(0, tf.int64),
            maxval=tf.constant(_SEED_RANGE, tf.int64),
            seed=0,
            seed2=0,
        )
        return tf.where(seed < 0, fresh, seed)

    graph = tf.compat.v1.get_default_graph()
    before = len(graph.get_operations())
    chosen = tf.cond(tf.reduce_any(seed < 0), with_fresh_seed, lambda: seed)
    for op in graph.get_operations()[before:]:
        if op.type in ("If", "StatelessIf"):
            op._set_attr("_lower_using_switch_merge", attr_value_pb2.AttrValue(b=False))
    return x, chosen


def _summary_outputs(head, summary):
    if head.task == "classification":
        probs = summary["probabilities"]
        return {
            "probabilities": probs,
            "predicted_class": tf.argmax(probs, axis=-1),
            "entropy": summary["predictive_entropy"],
            "expected_entropy": summary["expected_entropy"],
            "mutual_information": summary["mutual_information"],
        }
    aleatoric, epistemic = summary["aleatoric_variance"], summary["epistemic_variance"]
    shape = summary["mean"].shape
    lower, upper = summary["lower"], summary["upper"]
    lower.set_shape(shape)  # the root finder's while loop loses the static shape
    upper.set_shape(shape)
    return {
        "mean": summary["mean"],
        "stddev": tf.sqrt(aleatoric + epistemic),
        "aleatoric_stddev": tf.sqrt(aleatoric),
        "epistemic_stddev": tf.sqrt(epistemic),
        "lower": lower,
        "upper": upper,
    }


# -- requests: warm-up records and the gRPC client ------------------------------------


def _serving_apis():
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ImportError(f"tfp_bnn.serving: {_SERVING_API_MISSING}.") from error
    return predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc


def _warmup_requests(model_name, input_shape):
    """Serialized ``PredictionLog`` records: ``serving_default`` and ``samples``, once each.

    Only those: with ``--enable_batching`` TF Serving replays them through its
    batching session, which refuses the scalar ``seed`` of the seeded twins
    (every batched input needs a batch dimension) and then refuses the whole
    version. They still run every op: each calls its seeded twin's function.
    """
    _, prediction_log_pb2, _ = _serving_apis()
    x = np.zeros((1, *input_shape), np.float32)
    requests = [predict_request(x, model_name=model_name, signature_name=name) for name in _SEEDED]
    return [
        prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        ).SerializeToString()
        for request in requests
    ]


def predict_request(x, *, model_name, signature_name="serving_default", seed=None, version=None, input_shape=None):
    """A TF Serving ``PredictRequest`` for inputs ``x``, checked before it is sent.

    Args:
      x: ``(N, *input_shape)`` numbers, sent as float32.
      model_name: the served model's name (``NAME`` of ``BASE/NAME``).
      signature_name: the kind of answer, ``"serving_default"`` (the
        predictive summary) or ``"samples"`` (the draws).
      seed: integer ``>= 0`` for a reproducible answer: the request then
        goes to the kind's seeded twin, ``"seeded"`` or ``"samples_seeded"``
        (which a server run with ``--enable_batching`` refuses, its seed
        having no batch dimension). ``None``: fresh weight draws, from the
        signature named, which takes ``x`` alone.
      version: ask for this version instead of the newest one served.
      input_shape: if given, ``x`` must have it (e.g. ``(13,)``).

    Example: a request for two inputs, to send with your own gRPC client.

    >>> import tensorflow as tf
    >>> from tfp_bnn.serving import predict_request
    >>> request = predict_request([[0.5], [4.0]], model_name="gap", seed=0)
    >>> request.model_spec.name, request.model_spec.signature_name, sorted(request.inputs)
    ('gap', 'seeded', ['seed', 'x'])
    >>> tf.make_ndarray(request.inputs["x"]).shape, int(tf.make_ndarray(request.inputs["seed"]))
    ((2, 1), 0)
    >>> fresh = predict_request([[0.5]], model_name="gap", signature_name="samples")
    >>> fresh.model_spec.signature_name, sorted(fresh.inputs)
    ('samples', ['x'])
    >>> predict_request([0.5, 4.0], model_name="gap")
    Traceback (most recent call last):
    ValueError: x has shape (2,); a request takes a batch of shape (N, features): reshape a single example to (1, features).
    """
    predict_pb2, _, _ = _serving_apis()
    if signature_name not in _SEEDED:
        twins = {twin: kind for kind, twin in _SEEDED.items()}
        hint = (f"; for {signature_name!r} pass signature_name={twins[signature_name]!r} and a seed"
                if signature_name in twins else "")
        raise ValueError(
            f"signature_name must be 'serving_default' or 'samples' (a seed sends the request to its "
            f"seeded twin, 'seeded' or 'samples_seeded'), got {signature_name!r}{hint}."
        )
    if input_shape is None:
        if np.ndim(x) < 2:
            raise ValueError(
                f"x has shape {np.shape(x)}; a request takes a batch of shape (N, features): "
                "reshape a single example to (1, features)."
            )
        input_shape = np.shape(x)[1:]
    x = validation.check_inputs(x, input_shape)
    seed = validation.check_seed(seed)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name if seed is None else _SEEDED[signature_name]
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    if seed is not None:
        request.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.int64(seed)))
    return request


def grpc_predict(target, x, *, model_name, signature_name="serving_default", seed=None, version=None,
                 input_shape=None, timeout=30.0):
    """Ask the TF Serving server at ``target`` (``"host:8500"``) for a prediction.

    Arguments as in :func:`predict_request` (``signature_name`` names the kind,
    ``"serving_default"`` or ``"samples"``; a ``seed`` asks its seeded twin);
    ``timeout`` in seconds. Returns the signature's outputs as a dict of NumPy
    arrays.

    Example:

    >>> from tfp_bnn.serving import grpc_predict
    >>> answer = grpc_predict("localhost:8500", [[0.5], [4.0]], model_name="gap", seed=0)  # doctest: +SKIP
    >>> answer["mean"].shape, answer["epistemic_stddev"].shape  # doctest: +SKIP
    ((2, 1), (2, 1))
    """
    import grpc

    _, _, prediction_service_pb2_grpc = _serving_apis()
    request = predict_request(
        x, model_name=model_name, signature_name=signature_name, seed=seed, version=version,
        input_shape=input_shape,
    )
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
