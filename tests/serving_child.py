"""What tensorflow_model_server does with an export, in a process that imports only TensorFlow.

Run by tests/test_serving.py as ``python serving_child.py WORKDIR``. It never
imports tfp_bnn, TensorFlow Probability or tf_keras (it checks), only
``tensorflow`` and TF Serving's request protos (``tensorflow_serving.apis``,
plain protobuf classes), and for every export listed in
``WORKDIR/exports.json``:

* lists every op of the MetaGraphDef and its function library and checks it
  against TensorFlow's op registry and CPU kernels;
* loads the SavedModel with the TF1 session loader and answers the
  ``PredictRequest`` files in ``WORKDIR/requests/<export>/`` the way TF
  Serving's Predict API does (``predict_util.cc``): the signature's inputs
  taken from the request or else from the SignatureDef's defaults, fed and
  fetched by the tensor names in the SignatureDef, through the C session
  API with no Python-side checks of the fed tensors;
* says of each request what TF Serving's batching session
  (``--enable_batching``) would: it refuses any fed tensor without a batch
  dimension (``batching_session.cc``, ``ComputeInputSize``);
* turns the REST bodies in ``WORKDIR/rest/<export>/*.json`` into requests as
  TF Serving's REST API does (``json_tensor.cc``,
  ``FillPredictRequestFromJson``) and answers them;
* answers the warm-up records of ``assets.extra`` the same way;
* calls every signature through ``tf.saved_model.load(path).signatures``.

Answers go to ``WORKDIR/child.npz`` (``<export>/<request>/<output>``, REST
bodies as ``rest_<name>``), the rest to ``WORKDIR/child.json``.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import kernels, op_def_registry
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

# (tensorflow itself imports Keras 3 for tf.keras; tf_keras is the Keras that tfp_bnn uses.)
FOREIGN_MODULES = ("tfp_bnn", "tensorflow_probability", "tf_keras")
PYTHON_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")


def foreign_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in FOREIGN_MODULES)


def audit_ops(path):
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    ops, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in meta_graph.graph_def.library.function:
            functions.add(function.signature.name)
            ops |= {node.op for node in function.node_def}
    ops -= functions  # calls of the library's own functions
    devices = {op: {k.device_type for k in kernels.get_registered_kernels_for_op(op).kernel} for op in ops}
    return {
        "num_meta_graphs": len(saved_model.meta_graphs),
        "ops": sorted(ops),
        "unregistered": sorted(op for op in ops if op_def_registry.get(op) is None),
        "python_ops": sorted(op for op in ops if op in PYTHON_OPS),
        "without_cpu_kernel": sorted(op for op in ops if not devices[op] & {"CPU", "DEFAULT"}),
        "stateful_random": sorted(op for op in ops if "Random" in op and not op.startswith("Stateless")),
    }


def describe_signatures(meta_graph):
    described = {}
    for key, signature in meta_graph.signature_def.items():
        if key.startswith("__"):
            continue
        described[key] = {
            "method_name": signature.method_name,
            "inputs": {
                alias: {"dtype": tf.dtypes.as_dtype(info.dtype).name, "shape": _shape(info), "name": info.name}
                for alias, info in signature.inputs.items()
            },
            "outputs": {
                alias: {"dtype": tf.dtypes.as_dtype(info.dtype).name, "shape": _shape(info), "name": info.name}
                for alias, info in signature.outputs.items()
            },
            "defaults": {alias: tf.make_ndarray(proto).tolist() for alias, proto in signature.defaults.items()},
        }
    return described


def _shape(info):
    if info.tensor_shape.unknown_rank:
        return None
    return [d.size for d in info.tensor_shape.dim]


def run_predict(session, meta_graph, request):
    """TF Serving's RunPredict, by tensor names, without Python's feed checks."""
    name = request.model_spec.signature_name or "serving_default"
    if name not in meta_graph.signature_def:
        raise KeyError(f'Serving signature key "{name}" not found.')
    signature = meta_graph.signature_def[name]
    if set(request.inputs) - set(signature.inputs):
        raise ValueError(f"Sent extra inputs {sorted(set(request.inputs) - set(signature.inputs))}")
    graph = session.graph
    feeds = {}
    for alias, value in fed_inputs(signature, request).items():
        feeds[graph.get_tensor_by_name(signature.inputs[alias].name)._as_tf_output()] = value
    aliases = sorted(signature.outputs)
    fetches = [graph.get_tensor_by_name(signature.outputs[a].name)._as_tf_output() for a in aliases]
    # What Session::Run in C++ does: the fed tensors go in as they are.
    values = session._call_tf_sessionrun(None, feeds, fetches, [], None)
    return dict(zip(aliases, values))


def fed_inputs(signature, request):
    """What Predict feeds (saved_model::GetInputValues): the request's inputs, else the signature's defaults."""
    fed = {}
    for alias in signature.inputs:
        if alias in request.inputs:
            fed[alias] = tf.make_ndarray(request.inputs[alias])
        elif alias in signature.defaults:
            fed[alias] = tf.make_ndarray(signature.defaults[alias])
        else:
            raise ValueError(f"Signature input alias: {alias} not found in request and no default value provided.")
    return fed


def batching_refusal(meta_graph, request):
    """TF Serving's batching session on the fed tensors (ComputeInputSize): its error, or None."""
    signature = meta_graph.signature_def[request.model_spec.signature_name or "serving_default"]
    sizes = set()
    for value in fed_inputs(signature, request).values():
        if value.ndim == 0:
            return "Batching Run() input tensors must have at least one dimension"
        sizes.add(value.shape[0])
    return None if len(sizes) <= 1 else "Batching Run() input tensors must have equal 0th-dimension size"


def rest_request(meta_graph, body):
    """A REST predict body as TF Serving's json_tensor.cc makes it a PredictRequest (its checks and messages).

    Rows (``"instances"``): a plain list only for a signature with one input, else
    objects with exactly its inputs as keys, stacked along a new first axis.
    Columns (``"inputs"``): a plain value for one input, else an object naming every
    input (other keys are not read).
    """
    document = json.loads(body)
    name = document.get("signature_name", "serving_default")
    if name not in meta_graph.signature_def:
        raise KeyError(f'Serving signature name: "{name}" not found in signature def')
    infomap = meta_graph.signature_def[name].inputs
    if ("instances" in document) == ("inputs" in document):
        raise ValueError("Missing 'inputs' or 'instances' key" if "inputs" not in document
                         else "Expecting only one of 'inputs' or 'instances'")
    if "instances" in document:
        rows = document["instances"]
        if not rows:
            raise ValueError("No values in 'instances' array")
        if all(isinstance(row, dict) for row in rows):
            for i, row in enumerate(rows):
                if set(row) != set(infomap):
                    raise ValueError(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                     f"{json.dumps(row)} keys must be equal to: {','.join(sorted(infomap))}")
            columns = {alias: [row[alias] for row in rows] for alias in infomap}
        elif len(infomap) > 1:
            raise ValueError("instances is a plain list, but expecting list of objects as multiple input "
                             "tensors required as per tensorinfo_map")
        else:
            columns = {next(iter(infomap)): rows}
    else:
        value = document["inputs"]
        if not isinstance(value, dict):
            if len(infomap) > 1:
                raise ValueError("inputs is a plain value/list, but expecting an object as multiple input "
                                 "tensors required as per tensorinfo_map")
            columns = {next(iter(infomap)): value}
        else:
            for alias in infomap:
                if alias not in value:
                    raise ValueError(f"Missing named input: {alias} in 'inputs' object.")
            columns = {alias: value[alias] for alias in infomap}
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = name
    for alias, value in columns.items():
        dtype = tf.dtypes.as_dtype(infomap[alias].dtype).as_numpy_dtype
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(np.asarray(value, dtype)))
    return request


def serve_export(name, path, workdir, arrays, report):
    report["ops"] = audit_ops(path)
    warmup = path / "assets.extra" / "tf_serving_warmup_requests"
    warmup_records = list(tf.data.TFRecordDataset(str(warmup)).as_numpy_iterator())
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
        report["signatures"] = describe_signatures(meta_graph)
        report["errors"], report["batching"] = {}, {}
        requests = {f.stem: predict_pb2.PredictRequest.FromString(f.read_bytes())
                    for f in sorted((workdir / "requests" / name).glob("*.pb"))}
        for rest_file in sorted((workdir / "rest" / name).glob("*.json")):
            try:
                requests[f"rest_{rest_file.stem}"] = rest_request(meta_graph, rest_file.read_text())
            except Exception as error:
                report["errors"][f"rest_{rest_file.stem}"] = f"{type(error).__name__}: {error}"
        for label, request in requests.items():
            try:
                report["batching"][label] = batching_refusal(meta_graph, request)
                answer = run_predict(session, meta_graph, request)
            except Exception as error:  # the tests check which requests fail, and how
                report["errors"][label] = f"{type(error).__name__}: {error}"
                continue
            for output, value in answer.items():
                arrays[f"{name}/{label}/{output}"] = value
        report["warmup"] = []
        for record in warmup_records:
            log = prediction_log_pb2.PredictionLog.FromString(record)
            request = log.predict_log.request
            answer = run_predict(session, meta_graph, request)
            report["warmup"].append({
                "batching": batching_refusal(meta_graph, request),
                "kind": log.WhichOneof("log_type"),
                "model_name": request.model_spec.name,
                "signature_name": request.model_spec.signature_name,
                "inputs": sorted(request.inputs),
                "outputs": sorted(answer),
                "finite": bool(all(np.all(np.isfinite(v)) for v in answer.values())),
            })

    # The TF2 way: tf.saved_model.load(...).signatures[...], called with tensors.
    loaded = tf.saved_model.load(str(path))
    x = tf.constant(arrays[f"{name}/input/x"])
    seed = tf.constant(int(arrays[f"{name}/input/seed"]), tf.int64)
    for key in sorted(loaded.signatures):
        takes_seed = "seed" in loaded.signatures[key].structured_input_signature[1]
        answer = loaded.signatures[key](x=x, seed=seed) if takes_seed else loaded.signatures[key](x=x)
        for output, value in answer.items():
            arrays[f"{name}/tf2_{key}/{output}"] = value.numpy()
    report["tf2_errors"] = {}
    bad_inputs = {
        "wrong_features": tf.zeros([2, x.shape[1] + 1], tf.float32),
        "wrong_dtype": tf.cast(x, tf.float64),
    }
    for label, bad in bad_inputs.items():
        try:
            loaded.signatures["serving_default"](x=bad)
            report["tf2_errors"][label] = None
        except Exception as error:
            report["tf2_errors"][label] = f"{type(error).__name__}: {error}"


def main(workdir):
    workdir = Path(workdir)
    report = {"foreign_modules_at_start": foreign_modules(), "exports": {}}
    with np.load(workdir / "inputs.npz") as inputs:
        arrays = dict(inputs)
    for name, path in json.loads((workdir / "exports.json").read_text()).items():
        report["exports"][name] = {}
        serve_export(name, Path(path), workdir, arrays, report["exports"][name])
    report["foreign_modules_at_end"] = foreign_modules()
    np.savez(workdir / "child.npz", **arrays)
    (workdir / "child.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main(sys.argv[1])
