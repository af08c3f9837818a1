"""What the uncertainty costs a served model: the signature against one deterministic forward pass.

    python benchmarks/serving.py [--samples 100] [--repeats 30] [--estimators flipout,reparameterization]
                                 [--json benchmarks/results/serving.json]

A regressor (8 features, two Bayesian layers of 50, Normal head), for each
estimator, is exported twice: by :func:`tfp_bnn.serving.export_for_serving` (``serving_default``,
``T`` weight draws, mean/stddev split and the 95 % mixture interval), and as
one forward pass of the same network through its posterior means. Both are
loaded as TF Serving runs them (TF1 session loader, fed and fetched by the
tensor names of the signature; ``serving_default`` takes ``x`` alone and
draws a fresh seed per request, as most requests come) and timed in the same process, interleaved (served, forward,
served, ...), each time the median over the repeats:

* batch 1: latency of one request;
* batch 1024: throughput in rows per second.

``ratio`` is served time / forward time per call, measured side by side.
Under ``weight_draws`` every estimator draws ``T`` whole weight matrices and
nothing per example, so the estimators cost the same to serve.
Not part of ``make test`` (a smoke test runs it with ``--tiny``).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tfp_bnn
from tfp_bnn import sampling, serving
from tfp_bnn.cli import _positive_int  # noqa: E402  (the CLI's argparse type)

import tensorflow as tf  # noqa: E402  (after tfp_bnn: quiet start-up)

FULL = {
    "samples": 100, "repeats": 30, "features": 8, "hidden": (50, 50), "batches": (1, 1024), "calls": 20,
    "estimators": ("flipout", "reparameterization"),
}
TINY = {
    "samples": 4, "repeats": 3, "features": 2, "hidden": (8,), "batches": (1, 16), "calls": 2,
    "estimators": ("flipout",),
}


def _model(settings, estimator):
    return tfp_bnn.make_regressor(
        (settings["features"],), hidden_units=settings["hidden"], train_size=1000, estimator=estimator
    )


def _export_forward(model, path):
    """One deterministic pass through the posterior means, with the same head outputs."""
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="x")

    @tf.function(input_signature=[spec])
    def forward(x):
        with sampling.posterior_mean():
            dist = model(x, training=False)
        return {"mean": dist.mean(), "stddev": dist.stddev()}

    module = tf.Module()
    module.model_variables = list(model.variables)
    tf.saved_model.save(module, str(path), signatures={"serving_default": forward})


class _Served:
    """A SavedModel in a TF1 session, called by the tensor names of its serving_default signature."""

    def __init__(self, path):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], str(path))
        signature = meta_graph.signature_def["serving_default"]
        self.call = self.session.make_callable(
            [o.name for o in signature.outputs.values()], [signature.inputs["x"].name]
        )

    def seconds(self, x, calls):
        start = time.perf_counter()
        for _ in range(calls):
            self.call(x)
        return (time.perf_counter() - start) / calls


def run(settings):
    rows = []
    for estimator in settings["estimators"]:
        rows += [{"estimator": estimator, **row} for row in _run_one(settings, _model(settings, estimator))]
    return {
        "settings": {**settings, **{k: list(settings[k]) for k in ("hidden", "batches", "estimators")}},
        "rows": rows,
    }


def _run_one(settings, model):
    with tempfile.TemporaryDirectory() as folder:
        served = _Served(serving.export_for_serving(model, Path(folder) / "bnn", num_samples=settings["samples"]))
        _export_forward(model, Path(folder) / "forward")
        forward = _Served(Path(folder) / "forward")
    rng = np.random.default_rng(0)
    rows = []
    for batch in settings["batches"]:
        x = rng.normal(size=(batch, settings["features"])).astype(np.float32)
        calls = settings["calls"] if batch == 1 else 1
        for runner in (served, forward):  # warm-up: graph optimization, first allocations
            runner.seconds(x, 2)
        timings = {"served": [], "forward": []}
        for _ in range(settings["repeats"]):
            timings["served"].append(served.seconds(x, calls))
            timings["forward"].append(forward.seconds(x, calls))
        served_seconds = float(np.median(timings["served"]))
        forward_seconds = float(np.median(timings["forward"]))
        rows.append({
            "batch": batch,
            "served_seconds": served_seconds,
            "forward_seconds": forward_seconds,
            "ratio": served_seconds / forward_seconds,
            "served_rows_per_second": batch / served_seconds,
            "forward_rows_per_second": batch / forward_seconds,
        })
    served.session.close()
    forward.session.close()
    return rows


def _print_table(results):
    samples = results["settings"]["samples"]
    print(f"serving_default (T = {samples} weight draws) against one deterministic forward pass; "
          f"medians of {results['settings']['repeats']} interleaved repeats")
    print(f"{'estimator':>18} {'batch':>6} {'served':>22} {'forward pass':>22} {'ratio':>8}")
    for row in results["rows"]:
        if row["batch"] == 1:
            served, forward = f"{row['served_seconds'] * 1e3:.2f} ms/request", f"{row['forward_seconds'] * 1e3:.2f} ms/request"
        else:
            served, forward = f"{row['served_rows_per_second']:,.0f} rows/s", f"{row['forward_rows_per_second']:,.0f} rows/s"
        print(f"{row['estimator']:>18} {row['batch']:>6} {served:>22} {forward:>22} {row['ratio']:>7.1f}x")


RESULTS = Path(__file__).parent / "results" / "serving.json"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=_positive_int, help=f"weight draws T (default {FULL['samples']})")
    parser.add_argument("--repeats", type=_positive_int, help=f"timed repeats (default {FULL['repeats']})")
    parser.add_argument("--estimators", help="comma-separated (default flipout,reparameterization)")
    parser.add_argument("--tiny", action="store_true", help="tiny settings, for the smoke test")
    parser.add_argument("--json", type=Path, help=f"write the results here (default {RESULTS}; none with --tiny: "
                        "a smoke run must not replace the committed measurements)")
    args = parser.parse_args(argv)
    if args.json is None and not args.tiny:
        args.json = RESULTS
    settings = dict(TINY if args.tiny else FULL)
    for key in ("samples", "repeats"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.estimators:
        estimators = tuple(name.strip() for name in args.estimators.split(","))
        unknown = [name for name in estimators if name not in tfp_bnn.layers.ESTIMATORS]
        if unknown or len(set(estimators)) < len(estimators):  # before any estimator is measured
            parser.error(f"argument --estimators: {args.estimators!r}: give distinct names from "
                         f"{', '.join(tfp_bnn.layers.ESTIMATORS)}")
        settings["estimators"] = estimators
    results = run(settings)
    _print_table(results)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"Wrote {args.json}")
    return results



if __name__ == "__main__":
    main()
    sys.exit(0)
