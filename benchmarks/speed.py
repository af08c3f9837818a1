"""Speed benchmark: tfp_bnn's training and prediction beside the alternatives, in one run.

    python benchmarks/speed.py [--repeats R] [--json OUT] [--markdown OUT] [--quick] [--no-torch] [--no-memory]

Machines are noisy (this one has two cores shared with other jobs), so every
comparison is measured side by side in one process: the cases of one table
row group take turns, R rounds in a rotating order, and we report medians of
the times and medians of the per-round ratios; the raw seconds of every
round are in the JSON.

On 2 cores, tf.data's autotuner made about half of Keras's ``fit`` calls run
every step at a fixed ~5 ms (the same 1.29 s per 2x256 batch-32 epoch
whatever the estimator, thread settings or steps per execution; 10/10 fits
at 0.67-0.74 s with autotuning off). ``BayesianModel.fit`` feeds arrays with
autotuning off; the plain Keras model does not, so the table also has
``deterministic, tfp_bnn fit``: the same deterministic network fed as
tfp_bnn feeds its models.

* Training: seconds per epoch of ``model.fit`` (8,192 examples, 8 features;
  one timed run is a ``fit`` of ``epochs_per_run`` epochs divided by that
  number, as a user's ``fit`` of many epochs pays ``fit``'s set-up once, not
  every epoch: a ``fit(epochs=1)`` spends ~35 ms building its data pipeline
  and callbacks, more than a whole steady 1x50 epoch at batch 256) for
  every Bayesian estimator of ``tfp_bnn.make_regressor``, MC dropout and a
  5-member ensemble, and the same-shape deterministic Keras model with the
  same ``NormalHead`` (a ``tf_keras.Sequential`` compiled with the same
  ``steps_per_execution``), for a 1x50 and a 2x256 ReLU MLP at batch 32 and
  256. ``flipout, steps_per_execution=1`` is tf_keras's default execution, to
  show what ``BayesianModel.compile``'s default of 32 buys; ratios are to the
  plain Keras model, what a Keras user would otherwise train.
* Prediction: ``T = 100`` draws for 10,000 inputs, all cases computing the same
  ``(T, N)`` per-draw log-likelihoods: tfp_bnn's one graph
  (``tfp_bnn.log_likelihoods``), the same for the model compiled with
  ``jit_compile=True`` (XLA), a Python loop of ``T`` calls ``model(x)``, and
  for the Reparameterization/Variational estimators the batched-weights limit
  (all ``T`` weight samples drawn as one ``[T, in, out]`` tensor per layer and
  applied with one batched matmul, nothing else in the graph), also under
  XLA, to compare with the ``jit_compile`` one graph like for like. The full
  ``tfp_bnn.predict`` (moments and mixture-quantile intervals) is timed too.
* Bayesian-Torch (when ``torch`` and ``bayesian_torch`` import): the same MLP
  (``LinearReparameterization``/``LinearFlipout``), Normal head, batch, data
  and ``T`` (a loop of ``T`` forward passes, as Bayesian-Torch draws one
  weight sample per pass), in the same rounds.
* Memory: each case once more in a fresh subprocess (the 2x256 MLP, batch 32),
  peak resident set size from ``getrusage``; "import only" is a process that
  just imports the framework.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

FULL = {
    "num_train": 8192,
    "num_predict": 10_000,
    "num_samples": 100,
    "shapes": {"1x50": (50,), "2x256": (256, 256)},
    "batch_sizes": (32, 256),
    "epochs_per_run": 4,
    "repeats": 7,
}
QUICK = {  # a smoke run of every code path, not a measurement
    "num_train": 256,
    "num_predict": 200,
    "num_samples": 10,
    "shapes": {"1x8": (8,)},
    "batch_sizes": (32,),
    "epochs_per_run": 1,
    "repeats": 1,
    "only": ("keras deterministic", "deterministic, tfp_bnn fit", "flipout", "reparameterization", "ensemble", "flipout, steps_per_execution=1"),
}
NUM_FEATURES = 8
ENSEMBLE_SIZE = 5
LEARNING_RATE = 1e-3
MEMORY_SHAPE, MEMORY_BATCH = "2x256", 32


def _data(num, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num, NUM_FEATURES)).astype("float32")
    y = (np.sin(x).sum(axis=1) + 0.1 * rng.normal(size=num)).astype("float32")
    return x, y


def _torch_available():
    try:
        import bayesian_torch.layers  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# -- cases: training ------------------------------------------------------------------------------------

TFP_BNN_TRAINING = {
    "flipout": {"estimator": "flipout"},
    "reparameterization": {"estimator": "reparameterization"},
    "variational": {"estimator": "variational"},
    "local_reparameterization": {"estimator": "local_reparameterization"},
    "mc_dropout": {"inference": "mc_dropout"},
    "ensemble": {"inference": "ensemble", "num_members": ENSEMBLE_SIZE},
}
DETERMINISTIC = "keras deterministic"
# The same deterministic network as a tfp_bnn model: its fit feeds arrays with tf.data
# autotuning off (BayesianModel.fit), which the plain Keras model above does not.
DETERMINISTIC_TFP_BNN = "deterministic, tfp_bnn fit"
SLOW_EXECUTION = "flipout, steps_per_execution=1"
TORCH_ESTIMATORS = {"reparameterization": "LinearReparameterization", "flipout": "LinearFlipout"}


def training_cases(torch, only=None):
    cases = [DETERMINISTIC, DETERMINISTIC_TFP_BNN, *TFP_BNN_TRAINING, SLOW_EXECUTION]
    if torch:
        cases += [f"bayesian-torch {name}" for name in TORCH_ESTIMATORS]
    return [case for case in cases if only is None or case in only or case.startswith("bayesian-torch")]


def _keras_deterministic(hidden, num_train):
    import tf_keras

    import tfp_bnn

    model = tf_keras.Sequential(
        [tf_keras.Input((NUM_FEATURES,))]
        + [tf_keras.layers.Dense(units, activation="relu") for units in hidden]
        + [tf_keras.layers.Dense(2), tfp_bnn.NormalHead(1)]
    )
    model.compile(
        optimizer=tf_keras.optimizers.Adam(LEARNING_RATE),
        loss=tfp_bnn.NegativeLogLikelihood(),
        steps_per_execution=tfp_bnn.models.DEFAULT_STEPS_PER_EXECUTION,
    )
    return model


def _tfp_bnn_regressor(case, hidden, num_train):
    import tf_keras

    import tfp_bnn

    if case == DETERMINISTIC_TFP_BNN:
        kwargs = {"regime": "probabilistic"}
    else:
        kwargs = TFP_BNN_TRAINING["flipout" if case == SLOW_EXECUTION else case]
    model = tfp_bnn.make_regressor((NUM_FEATURES,), hidden_units=hidden, train_size=num_train, **kwargs)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(LEARNING_RATE),
        steps_per_execution=1 if case == SLOW_EXECUTION else None,
    )
    return model


class KerasTraining:
    """``model.fit`` for ``epochs`` epochs."""

    def __init__(self, case, hidden, batch_size, x, y, epochs):
        if case == DETERMINISTIC:
            self.model = _keras_deterministic(hidden, len(x))
        else:
            self.model = _tfp_bnn_regressor(case, hidden, len(x))
        self.batch_size, self.x, self.y, self.epochs = batch_size, x, y, epochs

    def run(self):
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=self.epochs, verbose=0)


class TorchTraining:
    """``epochs`` epochs of the usual PyTorch loop over a Bayesian-Torch MLP: NLL + KL / N, Adam."""

    def __init__(self, estimator, hidden, batch_size, x, y, epochs):
        import torch

        self.torch = torch
        self.net = _torch_mlp(estimator, hidden)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LEARNING_RATE)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.batch_size, self.epochs = batch_size, epochs

    def run(self):
        for _ in range(self.epochs):
            self._epoch()

    def _epoch(self):
        torch = self.torch
        order = torch.randperm(len(self.x))
        for start in range(0, len(self.x), self.batch_size):
            rows = order[start : start + self.batch_size]
            dist, kl = self.net(self.x[rows])
            loss = -dist.log_prob(self.y[rows]).mean() + kl / len(self.x)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


def _torch_mlp(estimator, hidden):
    import bayesian_torch.layers as bnn_layers
    import torch

    layer_class = getattr(bnn_layers, TORCH_ESTIMATORS[estimator])

    class MLP(torch.nn.Module):
        """ReLU MLP of Bayesian-Torch layers ending in a Normal head (softplus scale + 1e-3)."""

        def __init__(self):
            super().__init__()
            sizes = [NUM_FEATURES, *hidden, 2]
            self.layers = torch.nn.ModuleList(layer_class(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

        def forward(self, x):
            kl = 0.0
            for i, layer in enumerate(self.layers):
                x, layer_kl = layer(x)
                kl = kl + layer_kl
                if i < len(self.layers) - 1:
                    x = torch.relu(x)
            scale = 1e-3 + torch.nn.functional.softplus(x[:, 1])
            return torch.distributions.Normal(x[:, 0], scale), kl

    return MLP()


def make_training(case, hidden, batch_size, x, y, epochs=1):
    if case.startswith("bayesian-torch "):
        return TorchTraining(case.split(" ", 1)[1], hidden, batch_size, x, y, epochs)
    return KerasTraining(case, hidden, batch_size, x, y, epochs)


# -- cases: prediction ----------------------------------------------------------------------------------

ONE_GRAPH, LOOP, LIMIT, FULL_PREDICT = "tfp_bnn one graph", "python loop of model(x)", "batched-weights limit", "tfp_bnn.predict"
XLA = "tfp_bnn one graph, jit_compile"
LIMIT_XLA = "batched-weights limit, jit_compile"
PREDICTION_ESTIMATORS = ("flipout", "reparameterization", "variational", "local_reparameterization")
LIMIT_ESTIMATORS = ("reparameterization", "variational")


def prediction_cases(torch, only=None):
    cases = []
    for estimator in PREDICTION_ESTIMATORS:
        cases += [(estimator, ONE_GRAPH), (estimator, XLA), (estimator, FULL_PREDICT), (estimator, LOOP)]
        if estimator in LIMIT_ESTIMATORS:
            cases += [(estimator, LIMIT), (estimator, LIMIT_XLA)]
    # Not MC dropout with XLA: tfp_bnn.predict keeps it on the plain graph (tfp_bnn.prediction._jit_compile).
    cases += [("mc_dropout", ONE_GRAPH), ("mc_dropout", LOOP)]
    cases += [("ensemble", ONE_GRAPH), ("ensemble", XLA), ("ensemble", LOOP)]
    if torch:
        cases += [(f"bayesian-torch {name}", LOOP) for name in TORCH_ESTIMATORS]
    return [case for case in cases if only is None or case[0] in only or case[0].startswith("bayesian-torch")]


class KerasPrediction:
    """``T`` draws of ``log p(y | x, w_t)`` for every input, by one of the strategies."""

    def __init__(self, model_case, strategy, hidden, x, y, num_samples):
        import tensorflow as tf

        import tfp_bnn

        self.tf, self.tfp_bnn = tf, tfp_bnn
        kwargs = TFP_BNN_TRAINING[model_case]
        self.model = tfp_bnn.make_regressor((NUM_FEATURES,), hidden_units=hidden, train_size=len(x), **kwargs)
        self.strategy, self.x, self.y, self.num_samples = strategy, x, y, num_samples
        if strategy == XLA:
            self.model.compile(jit_compile=True)
        if strategy in (LIMIT, LIMIT_XLA):
            self.limit = _batched_weights_limit(self.model, num_samples, jit_compile=strategy == LIMIT_XLA)
            self.x_tensor, self.y_tensor = tf.constant(x), tf.constant(y)

    def run(self):
        tfp_bnn, x, y, samples = self.tfp_bnn, self.x, self.y, self.num_samples
        if self.strategy in (ONE_GRAPH, XLA):
            return tfp_bnn.log_likelihoods(self.model, x, y, num_samples=samples, seed=0)
        if self.strategy == FULL_PREDICT:
            return tfp_bnn.predict(self.model, x, num_samples=samples, seed=0)
        if self.strategy in (LIMIT, LIMIT_XLA):
            return self.limit(self.x_tensor, self.y_tensor).numpy()
        y_column = y[:, None]
        return np.stack([self.model(x).log_prob(y_column).numpy() for _ in range(samples)])


def _batched_weights_limit(model, num_samples, jit_compile=False):
    """The least work ``T`` draws take: per layer, ``[T, in, out]`` weights and one batched matmul."""
    import tensorflow as tf

    from tfp_bnn.layers import BayesianDense

    layers = [layer for layer in model.layers if isinstance(layer, BayesianDense)]
    head = model.head

    @tf.function(input_signature=[tf.TensorSpec([None, NUM_FEATURES]), tf.TensorSpec([None])], jit_compile=jit_compile)
    def log_likelihoods(x, y):
        h = x[tf.newaxis]
        for i, layer in enumerate(layers):
            q = layer.posterior
            noise = tf.random.stateless_normal([num_samples, q.size], seed=[0, i])
            weights = q.loc + q.scale() * noise
            kernel = tf.reshape(weights[:, : layer.num_kernel_weights], [num_samples, *layer.kernel_shape])
            h = tf.matmul(h, kernel) + weights[:, tf.newaxis, layer.num_kernel_weights :]
            h = layer.activation(h)
        return head(tf.reshape(h, [-1, head.params_size])).log_prob(tf.tile(y, [num_samples])[:, tf.newaxis])

    return log_likelihoods


class TorchPrediction:
    """Bayesian-Torch's way to ``T`` draws: ``T`` forward passes under ``no_grad``."""

    def __init__(self, estimator, hidden, x, y, num_samples):
        import torch

        self.torch = torch
        self.net = _torch_mlp(estimator, hidden)
        self.x, self.y, self.num_samples = torch.from_numpy(x), torch.from_numpy(y), num_samples

    def run(self):
        with self.torch.no_grad():
            return self.torch.stack([self.net(self.x)[0].log_prob(self.y) for _ in range(self.num_samples)]).numpy()


def make_prediction(model_case, strategy, hidden, x, y, num_samples):
    if model_case.startswith("bayesian-torch "):
        return TorchPrediction(model_case.split(" ", 1)[1], hidden, x, y, num_samples)
    return KerasPrediction(model_case, strategy, hidden, x, y, num_samples)


# -- timing ---------------------------------------------------------------------------------------------


def interleaved(runners, repeats, warmup=2):
    """``{name: [seconds per round]}``: each round runs every case once, in a rotating order."""
    for runner in runners.values():
        for _ in range(warmup):  # tracing, first-call allocations
            runner.run()
    times = {name: [] for name in runners}
    names = list(runners)
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name].run()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(numerator, denominator):
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def bench_training(settings, torch, log):
    x, y = _data(settings["num_train"], seed=0)
    epochs = settings["epochs_per_run"]
    rows = []
    for shape, hidden in settings["shapes"].items():
        for batch_size in settings["batch_sizes"]:
            runners = {
                case: make_training(case, hidden, batch_size, x, y, epochs)
                for case in training_cases(torch, settings.get("only"))
            }
            times = interleaved(runners, settings["repeats"])
            for case, run_seconds in times.items():
                seconds = [s / epochs for s in run_seconds]
                rows.append({
                    "shape": shape,
                    "batch_size": batch_size,
                    "case": case,
                    "seconds_per_epoch": statistics.median(seconds),
                    "ratio_to_deterministic": median_ratio(run_seconds, times[DETERMINISTIC]),
                    "seconds": seconds,
                })
                log(f"train {shape} batch {batch_size} {case}: {rows[-1]['seconds_per_epoch']:.3f} s/epoch, "
                    f"{rows[-1]['ratio_to_deterministic']:.2f}x deterministic")
    return rows


def bench_prediction(settings, torch, log):
    x, y = _data(settings["num_predict"], seed=1)
    rows = []
    for shape, hidden in settings["shapes"].items():
        runners = {
            case: make_prediction(*case, hidden, x, y, settings["num_samples"])
            for case in prediction_cases(torch, settings.get("only"))
        }
        times = interleaved(runners, settings["repeats"], warmup=1)
        for (model_case, strategy), seconds in times.items():
            # Bayesian-Torch rows against tfp_bnn's one graph of the same estimator, same rounds.
            graph = times.get((model_case.removeprefix("bayesian-torch "), ONE_GRAPH))
            row = {
                "shape": shape,
                "model": model_case,
                "strategy": strategy,
                "seconds": statistics.median(seconds),
                "seconds_all": seconds,
            }
            if graph is not None and strategy != ONE_GRAPH:
                row["ratio_to_one_graph"] = median_ratio(seconds, graph)
            versus = (("ratio_to_xla", XLA, (LOOP, LIMIT, LIMIT_XLA)), ("ratio_to_predict", FULL_PREDICT, (LOOP,)))
            for key, other, strategies in versus:
                if (model_case, other) in times and strategy in strategies:
                    row[key] = median_ratio(seconds, times[(model_case, other)])
            rows.append(row)
            log(f"predict {shape} {model_case} / {strategy}: {row['seconds']:.3f} s"
                + (f", {row['ratio_to_one_graph']:.2f}x one graph" if "ratio_to_one_graph" in row else ""))
    return rows


# -- memory: one case per fresh process -------------------------------------------------------------------


def _peak_rss_mb():
    """Peak resident set size of this process in MiB.

    On Linux VmHWM of /proc/self/status: unlike ``ru_maxrss``, it starts afresh at
    ``exec``, so a child does not report its parent's memory at the fork.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def memory_case(spec):
    """Run one case in this (fresh) process and return its peak RSS in MiB."""
    settings = QUICK if spec["quick"] else FULL
    hidden = settings["shapes"].get(MEMORY_SHAPE, next(iter(settings["shapes"].values())))
    if spec["kind"] == "import":
        if spec["case"] == "torch":
            import bayesian_torch.layers  # noqa: F401
        else:
            import tfp_bnn  # noqa: F401
    elif spec["kind"] == "train":
        x, y = _data(settings["num_train"], seed=0)
        make_training(spec["case"], hidden, MEMORY_BATCH, x, y).run()
    else:
        x, y = _data(settings["num_predict"], seed=1)
        make_prediction(spec["case"], spec["strategy"], hidden, x, y, settings["num_samples"]).run()
    return _peak_rss_mb()


def memory_specs(torch, quick):
    specs = [{"kind": "import", "case": "tfp_bnn"}]
    if torch:
        specs.append({"kind": "import", "case": "torch"})
    only = QUICK["only"] if quick else None
    specs += [{"kind": "train", "case": case} for case in training_cases(torch, only) if case not in (SLOW_EXECUTION, DETERMINISTIC_TFP_BNN)]
    specs += [
        {"kind": "predict", "case": model, "strategy": strategy}
        for model, strategy in prediction_cases(torch, only)
        if strategy != FULL_PREDICT
    ]
    if quick:  # the smoke test: one case of each kind
        kinds = {}
        for spec in specs:
            kinds.setdefault(spec["kind"], spec)
        specs = list(kinds.values())
    return [{**spec, "quick": quick} for spec in specs]


def bench_memory(torch, quick, log):
    rows = []
    for spec in memory_specs(torch, quick):
        completed = subprocess.run(
            [sys.executable, __file__, "--memory-case", json.dumps(spec)],
            capture_output=True, text=True, check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"memory case {spec} failed:\n{completed.stderr[-2000:]}")
        peak = json.loads(completed.stdout.strip().splitlines()[-1])["peak_rss_mb"]
        rows.append({**{k: v for k, v in spec.items() if k != "quick"}, "peak_rss_mb": peak})
        log(f"memory {spec['kind']} {spec['case']} {spec.get('strategy', '')}: {peak:.0f} MiB")
    return rows


# -- report -----------------------------------------------------------------------------------------------


def markdown(report):
    epochs = report["settings"].get("epochs_per_run", 1)
    lines = ["## Training: seconds per epoch (median) and ratio to the deterministic model", "",
             f"One timed run = `fit` (or Bayesian-Torch's loop) of {epochs} epoch(s), divided by {epochs}.", ""]
    training = report["training"]
    configs = list(dict.fromkeys((row["shape"], row["batch_size"]) for row in training))
    lines.append("| case | " + " | ".join(f"{shape} batch {batch}" for shape, batch in configs) + " |")
    lines.append("|---|" + "---|" * len(configs))
    for case in dict.fromkeys(row["case"] for row in training):
        cells = []
        for shape, batch in configs:
            row = next(r for r in training if (r["shape"], r["batch_size"], r["case"]) == (shape, batch, case))
            cells.append(f"{row['seconds_per_epoch']:.3f} s ({row['ratio_to_deterministic']:.2f}x)")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    samples, inputs = report["settings"]["num_samples"], report["settings"]["num_predict"]
    lines += ["", f"## Prediction: T = {samples} draws for {inputs:,} inputs (median seconds; each ratio the median "
              "of the per-round ratios)", "",
              "One graph = `tfp_bnn.log_likelihoods` (the (T, N) per-draw log-likelihoods, as the loop and the "
              "limit compute), `jit_compile` the same for a model compiled with `jit_compile=True` (XLA) and the "
              "limit's graph compiled with XLA; "
              "`tfp_bnn.predict` adds the moments and the mixture-quantile intervals.", "",
              "| shape | model | strategy | seconds | x one graph | x one graph, jit_compile | x tfp_bnn.predict |",
              "|---|---|---|---|---|---|---|"]
    for row in report["prediction"]:
        ratio = f"{row['ratio_to_one_graph']:.1f}" if "ratio_to_one_graph" in row else ""
        ratio = "1" if row["strategy"] == ONE_GRAPH else ratio
        versus = (f"{row[key]:.1f}" if key in row else "" for key in ("ratio_to_xla", "ratio_to_predict"))
        lines.append(f"| {row['shape']} | {row['model']} | {row['strategy']} | {row['seconds']:.3f} | {ratio} | "
                     + " | ".join(versus) + " |")
    if report.get("memory"):
        shapes = report["settings"]["shapes"]
        shape = MEMORY_SHAPE if MEMORY_SHAPE in shapes else next(iter(shapes))  # as bench_memory picks it
        lines += ["", f"## Peak resident memory ({shape} MLP, batch {MEMORY_BATCH}; one fresh process per "
                  "case)", "", "| kind | case | strategy | peak RSS (MiB) |", "|---|---|---|---|"]
        for row in report["memory"]:
            lines.append(f"| {row['kind']} | {row['case']} | {row.get('strategy', '')} | {row['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def _versions(torch):
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    versions = {"python": platform.python_version(), "tensorflow": tf.__version__,
                "tf_keras": tf_keras.__version__, "tensorflow_probability": tfp.__version__}
    if torch:
        import torch as torch_module

        versions["torch"] = torch_module.__version__
    return versions


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, help="rounds per comparison (default 7; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument("--no-torch", action="store_true", help="skip Bayesian-Torch even if it is installed")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-process memory measurements")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"argument --repeats: must be a positive integer, got {args.repeats}")
    return args



def main(argv=None):
    args = parse_args(argv)
    if args.memory_case:
        print(json.dumps({"peak_rss_mb": memory_case(json.loads(args.memory_case))}))
        return 0
    for path in (args.json, args.markdown):
        if path is not None and not path.parent.is_dir():
            print(f"speed.py: error: {path.parent}: folder not found for {path.name}.", file=sys.stderr)
            return 2
    settings = dict(QUICK if args.quick else FULL)
    if args.repeats is not None:
        settings["repeats"] = args.repeats
    torch = _torch_available() and not args.no_torch

    def log(message):
        print(message, file=sys.stderr, flush=True)

    log(f"Bayesian-Torch: {'included' if torch else 'not installed or skipped'}")
    report = {
        "settings": {**{k: v for k, v in settings.items() if k != "only"},
                     "shapes": {k: list(v) for k, v in settings["shapes"].items()},
                     "num_features": NUM_FEATURES, "ensemble_size": ENSEMBLE_SIZE},
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), **_versions(torch)},
        "training": bench_training(settings, torch, log),
        "prediction": bench_prediction(settings, torch, log),
        "memory": [] if args.no_memory else bench_memory(torch, args.quick, log),
    }
    report["machine"]["load_average_at_end"] = os.getloadavg()
    text = markdown(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
