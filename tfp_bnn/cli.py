"""The ``tfp-bnn`` command line: ``fit``, ``predict``, ``evaluate``, ``export``.

    tfp-bnn fit [--data FILE.csv --target COLUMN] --out DIR
    tfp-bnn predict --model DIR --data FILE.csv --output PRED.csv
    tfp-bnn evaluate --model DIR --data FILE.csv --target COLUMN [--json FILE]
    tfp-bnn export --model DIR --out BASE/NAME [--samples T] [--version V]

Bad input (or an output path that cannot be written) ends the command with one line
on standard error and exit status 2 before any training; nothing already written is
overwritten without ``--force``, which replaces only a folder written by ``fit``.
"""

import argparse
import contextlib
import csv
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import tf_keras

import tfp_bnn
from tfp_bnn import data, models, validation

MODEL_FILE = "model.keras"
REPORT_FILE = "report.json"
FIGURE_FILE = "uncertainty.png"
DELIMITER_HELP = "column separator of --data: a character, or 'tab' (default ,)"
DEFAULT_EPOCHS = 500
MIN_STEPS_TIMES_RATE = 15.0  # --inference variational trains at least 15 / learning rate steps (see _default_epochs)
EPOCHS_HELP = (
    f"default {DEFAULT_EPOCHS}; on small data with --inference variational, enough epochs for "
    f"{MIN_STEPS_TIMES_RATE:g} / --learning-rate steps (5,000 at the default rate): the posterior starts narrow"
)
MAX_VALIDATIONS = 100  # fit evaluates the validation rows at most this often (see _validation_epochs)
REPORT_KEYS = ("task", "features", "target", "class_names")  # what predict, evaluate and export read


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def main(argv=None):
    """Run one ``tfp-bnn`` command; the entry point of ``tfp-bnn`` and ``python -m tfp_bnn``.

    Args:
      argv: the arguments after the program name, e.g. ``["fit", "--out", "runs/gap"]``;
        ``None`` reads ``sys.argv[1:]``.

    Returns:
      The exit status: 0 on success, 2 after bad input, reported as one line on standard
      error (set ``TFP_BNN_DEBUG=1`` to see a ``ValueError``/``TypeError`` raised with its
      traceback instead). ``--help`` and unknown arguments exit through ``argparse``.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (UsageError, data.DataError) as error:
        print(f"tfp-bnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as error:
        # tfp_bnn.validation's messages name the problem and the fix.
        if os.environ.get("TFP_BNN_DEBUG"):
            raise
        print(f"tfp-bnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


class _OneTarget(argparse.Action):
    """``--target`` once: argparse keeps the last of repeated options, and ``--target b --target c``
    fitted a model of ``c`` with ``b`` among its features, as if several targets were taken."""

    def __call__(self, parser, namespace, values, option_string=None):
        previous = getattr(namespace, self.dest, None)
        if previous is not None and previous != values:
            parser.error(
                f"{option_string} given twice ({previous!r}, then {values!r}): a model predicts one target "
                "column; fit one model per target."
            )
        setattr(namespace, self.dest, values)


def _parser():
    parser = argparse.ArgumentParser(
        prog="tfp-bnn", description="Bayesian neural networks with honest uncertainty, from CSV files."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser(
        "fit",
        help="train a Bayesian + probabilistic model",
        description="Train a Bayesian + probabilistic model (aleatoric and epistemic uncertainty) and write "
        "DIR/model.keras, DIR/report.json and DIR/uncertainty.png. Without --data, use the built-in "
        "1-D regression with a gap in x.",
    )
    fit.add_argument("--data", type=Path, help="CSV file with a header row (default: built-in data)")
    fit.add_argument("--target", action=_OneTarget, help="name of the target column (required with --data)")
    fit.add_argument("--task", choices=("regression", "classification"), help="default: inferred from the target")
    fit.add_argument(
        "--inference", choices=tfp_bnn.INFERENCE_METHODS, default="variational",
        help="how the weights are uncertain: a variational posterior (default), MC dropout or a deep ensemble",
    )
    fit.add_argument("--estimator", choices=tfp_bnn.layers.ESTIMATORS, help="gradient estimator of --inference variational "
                     "(default flipout)")
    fit.add_argument("--members", type=_positive_int, help="networks of --inference ensemble (default 5)")
    fit.add_argument("--hidden", type=_hidden_units, default=(50, 50), help="hidden layer widths (default 50,50)")
    fit.add_argument("--epochs", type=_positive_int, help=EPOCHS_HELP)
    fit.add_argument("--batch-size", type=_positive_int, default=100)
    fit.add_argument("--learning-rate", type=_positive_float, default=3e-3)
    fit.add_argument("--validation-fraction", type=float, default=0.2)
    fit.add_argument("--samples", type=_positive_int, default=100, help="weight draws for the report")
    fit.add_argument("--seed", type=_non_negative_int, default=0, help="an integer in [0, 2**32) (default 0)")
    fit.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    fit.add_argument("--force", action="store_true", help="replace an existing --out folder written by fit")
    fit.add_argument("--delimiter", type=_delimiter, default=",", help=DELIMITER_HELP)
    fit.set_defaults(run=_fit)

    predict = commands.add_parser(
        "predict",
        help="predict with uncertainty, one CSV row per input",
        description="Write one row per input of --data: for regression mean, stddev, aleatoric_stddev, "
        "epistemic_stddev, lower, upper; for classification prob_<class>, predicted_class, entropy, "
        "expected_entropy, mutual_information.",
    )
    predict.add_argument("--model", type=Path, required=True, help="folder written by tfp-bnn fit")
    predict.add_argument("--data", type=Path, required=True,
                         help="CSV file of inputs with the model's feature columns (a target column is ignored)")
    predict.add_argument("--samples", type=_positive_int, default=100, help="weight draws (default 100)")
    predict.add_argument("--seed", type=_non_negative_int, help="makes the Monte Carlo estimate reproducible")
    predict.add_argument("--level", type=float, default=0.95, help="central interval level (default 0.95)")
    predict.add_argument("--output", type=Path, required=True, help="CSV file to write")
    predict.add_argument("--force", action="store_true", help="replace an existing --output file")
    predict.add_argument("--delimiter", type=_delimiter, default=",", help=DELIMITER_HELP)
    predict.set_defaults(run=_predict)

    evaluate = commands.add_parser(
        "evaluate",
        help="metrics of a model on labelled data",
        description="Print the metrics table of a fitted model on --data and optionally write it as JSON.",
    )
    evaluate.add_argument("--model", type=Path, required=True, help="folder written by tfp-bnn fit")
    evaluate.add_argument("--data", type=Path, required=True)
    evaluate.add_argument("--target", action=_OneTarget, required=True)
    evaluate.add_argument("--samples", type=_positive_int, default=100)
    evaluate.add_argument("--seed", type=_non_negative_int, default=0)
    evaluate.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    evaluate.add_argument("--force", action="store_true", help="replace an existing --json file")
    evaluate.add_argument("--delimiter", type=_delimiter, default=",", help=DELIMITER_HELP)
    evaluate.set_defaults(run=_evaluate)

    export = commands.add_parser(
        "export",
        help="write a TensorFlow Serving version of a fitted model",
        description="Write the model in --model as the next version BASE/NAME/<version>/ of a TensorFlow "
        "Serving model: signatures serving_default (the predictive mean, stddev and its aleatoric/epistemic "
        "split, or class probabilities and the entropy split) and samples, each from T weight draws per "
        "request with fresh draws (input x alone: REST rows and --enable_batching work), and their "
        "reproducible twins seeded and samples_seeded (inputs x and seed). "
        "Existing versions are kept and never overwritten.",
    )
    export.add_argument("--model", type=Path, required=True, help="folder written by tfp-bnn fit")
    export.add_argument("--out", type=Path, required=True, help="BASE/NAME: the served model's folder of versions")
    export.add_argument("--samples", type=_positive_int, default=100, help="weight draws per request (default 100)")
    export.add_argument("--version", type=_positive_int, help="version number (default: one more than the highest)")
    export.set_defaults(run=_export)
    return parser


def _number(parse, accept, what):
    """An argparse type: ``parse(text)``, kept if ``accept(value)``, else "must be {what}"."""

    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return convert


_positive_int = _number(int, lambda value: value >= 1, "a positive integer")
_non_negative_int = _number(int, lambda value: value >= 0, "an integer >= 0")
_positive_float = _number(float, lambda value: np.isfinite(value) and value > 0, "a positive number")


def _delimiter(text):
    delimiter = {"tab": "\t", "\\t": "\t"}.get(text, text)
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise argparse.ArgumentTypeError(f"must be one character (or 'tab'), got {text!r}")
    return delimiter


def _hidden_units(text):
    try:
        units = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths such as 50,50, got {text!r}")
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths such as 50,50, got {text!r}")
    return units


# -- fit ------------------------------------------------------------------------------


def _fit(args):
    _check_output_folder(args.out, keep=[args.data] if args.data else [])
    _refuse_overwrite(args.out, args.force)
    _check_writable(args.out, "--out")
    _check_inference(args)
    if args.seed >= 2**32:  # NumPy's global seed, set by tf_keras.utils.set_random_seed
        raise UsageError(f"--seed must be below 2**32, got {args.seed}.")
    if args.data is None and args.task is not None:
        raise UsageError("--task goes with --data; the built-in data set is a regression.")
    if args.data is None:
        if args.target:
            raise UsageError("--target goes with --data; the built-in data set has its own target.")
        x, y = data.gap_regression(2000, seed=args.seed)
        dataset = data.Dataset(x=x, y=y, feature_names=("x",), target_name="y", task="regression")
    else:
        if not args.target:
            raise UsageError("--data needs --target COLUMN, the column to predict.")
        dataset = data.load_csv(args.data, args.target, task=args.task, delimiter=args.delimiter)
    if not 0.0 <= args.validation_fraction < 1.0:
        raise UsageError(f"--validation-fraction must lie in [0, 1), got {args.validation_fraction}.")
    train, valid = _split(dataset, args.validation_fraction, args.seed)
    _check_replaceable(args.out)  # after the data's checks (their messages first), before training

    tf_keras.utils.set_random_seed(args.seed)
    args.epochs = args.epochs or _default_epochs(len(train[0]), args)
    model = _build(dataset, train, args)
    model.compile(optimizer=tf_keras.optimizers.Adam(args.learning_rate))
    validation_epochs = _validation_epochs(args.epochs) if len(valid[0]) else []
    history = model.fit(
        train[0],
        train[1],
        epochs=args.epochs,
        batch_size=min(args.batch_size, len(train[0])),
        validation_data=valid if len(valid[0]) else None,
        validation_freq=validation_epochs or 1,
        verbose=0,
        callbacks=[_progress_bar(args.epochs), tf_keras.callbacks.TerminateOnNaN()],
    )
    _check_finite_training(model, history, args)

    report = {
        "task": dataset.task,
        "features": list(dataset.feature_names),
        "target": dataset.target_name,
        "class_names": list(dataset.class_names) if dataset.class_names is not None else None,
        "data": str(args.data) if args.data else "built-in gap_regression",
        "model": {
            "inference": args.inference,
            "estimator": args.estimator or ("flipout" if args.inference == "variational" else None),
            "members": args.members if args.inference == "ensemble" else None,
            "hidden": list(args.hidden),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "seed": args.seed,
            "train_size": len(train[0]),
        },
        "metrics": {"train": _metrics(model, *train, dataset.task, args.samples, args.seed)},
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        "validation_epochs": validation_epochs,  # the epochs (from 1) of the history's val_* values
    }
    if len(valid[0]):
        report["metrics"]["validation"] = _metrics(model, *valid, dataset.task, args.samples, args.seed)

    with _replaced_dir(args.out, args.force, keep=[args.data] if args.data else []) as folder:
        model.save(folder / MODEL_FILE)
        (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        written = [MODEL_FILE, REPORT_FILE]
        if _save_figure(model, dataset, train, valid, args, folder / FIGURE_FILE):
            written.append(FIGURE_FILE)
    print("Wrote " + ", ".join(str(args.out / name) for name in written[:-1]) + f" and {args.out / written[-1]}")
    _print_metrics(report["metrics"])


def _default_epochs(num_rows, args):
    """500 epochs, more on small data for a variational posterior: at least 15 / learning rate steps.

    The default posterior starts narrow (scale 1e-3, softplus^-1 = -6.9) and Adam moves a
    raw parameter about one learning rate per step, so reaching a scale near 1 takes at
    least 7 / learning rate steps; twice that leaves the KL time to level off. On iris (120
    training rows, 2 steps per epoch at the default batch of 100), 500 epochs (1,000 steps at
    3e-3) stopped with KL/N at 84, still falling, and a mutual information of 0.001 nats at
    the flowers: a network with no epistemic uncertainty; 2,500 epochs (5,000 steps) reach
    KL/N 1.9 and 0.19 nats (0.43 far off them). The built-in set keeps 500 epochs (8,000 steps).
    """
    if args.inference != "variational":
        return DEFAULT_EPOCHS  # MC dropout and ensembles start where they train: no narrow start to leave
    steps_per_epoch = math.ceil(num_rows / min(args.batch_size, num_rows))
    return max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS_TIMES_RATE / args.learning_rate / steps_per_epoch))


def _validation_epochs(epochs):
    """The epochs (counted from 1) after which ``fit`` scores the validation rows: at most 100, the last included.

    Keras builds a new iterator over the validation data at each evaluation, about 18 ms on 2
    cores whatever the data's size, while an epoch of iris's 120 training rows takes 2-4 ms:
    validating every one of its 2,500 epochs took four fifths of the fit's time.
    """
    every = math.ceil(epochs / MAX_VALIDATIONS)
    return sorted({*range(every, epochs + 1, every), epochs})


def _check_finite_training(model, history, args):
    """A run whose loss or weights became NaN/inf is an error of the options, not of the data (checked before)."""
    losses = history.history.get("loss", [])
    if all(np.isfinite(losses)) and all(np.all(np.isfinite(w)) for w in model.get_weights()):
        return
    raise UsageError(
        f"training diverged (loss {losses[-1] if losses else 'nan'} at epoch {len(losses)} of {args.epochs}); "
        f"nothing was written. Lower --learning-rate (now {args.learning_rate:g})."
    )


def _check_inference(args):
    if args.estimator is not None and args.inference != "variational":
        raise UsageError(f"--estimator goes with --inference variational, not {args.inference}.")
    if args.members is not None and args.inference != "ensemble":
        raise UsageError(f"--members goes with --inference ensemble, not {args.inference}.")
    if args.inference == "ensemble":
        args.members = args.members or tfp_bnn.models.DEFAULT_NUM_MEMBERS
    if args.inference == "ensemble" and validation.draws_for_members(args.samples, args.members) != args.samples:
        raise UsageError(
            f"--samples {args.samples} is not a multiple of --members {args.members}: every network of the "
            "ensemble must be drawn equally often."
        )


def _split(dataset, fraction, seed):
    order = np.random.default_rng(seed).permutation(len(dataset.x))
    num_valid = int(round(fraction * len(order)))
    if len(order) - num_valid < 2:
        raise UsageError(f"only {len(order) - num_valid} training rows after the validation split; need at least 2.")
    valid, train = order[:num_valid], order[num_valid:]
    return (dataset.x[train], dataset.y[train]), (dataset.x[valid], dataset.y[valid])


def _build(dataset, train, args):
    x, y = train
    # Standardized inside the model: the saved model takes and predicts raw units.
    common = dict(
        hidden_units=args.hidden,
        train_size=len(x),
        inference=args.inference,
        estimator=args.estimator,
        input_mean=np.mean(x, axis=0, dtype=np.float64),
        input_std=_feature_scale(x),
    )
    if args.inference == "ensemble":
        common["num_members"] = args.members
    if dataset.task == "classification":
        return tfp_bnn.make_classifier((x.shape[1],), len(dataset.class_names), **common)
    return tfp_bnn.make_regressor(
        (x.shape[1],), target_mean=float(np.mean(y, dtype=np.float64)),
        target_std=float(_feature_scale(y[:, np.newaxis])[0]), **common
    )


def _feature_scale(x):
    """Each column's standard deviation, and 1 for a column constant in training.

    ``make_regressor``'s rule (``models._scale_or_one``): a floor such as 1e-6 would multiply
    any later change of that column by a million (1.001 instead of 1 moved a prediction by
    -390). In float64: float32 squares overflow for values beyond about 1e19.
    """
    x = np.asarray(x, np.float64)
    return models._scale_or_one(x.mean(axis=0), x.std(axis=0))


def _progress_bar(epochs):
    class EpochProgress(tf_keras.callbacks.Callback):
        """One Keras progress bar over all epochs (not one bar per epoch)."""

        shown = ("loss", "nll", "kl", "val_loss")

        def on_train_begin(self, logs=None):
            # Stateful: show each epoch's values, not their running average over all epochs.
            self.bar = tf_keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=self.shown)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(epoch + 1, values=[(k, logs[k]) for k in self.shown if k in (logs or {})])

    return EpochProgress()


def _save_figure(model, dataset, train, valid, args, path):
    """Draw the uncertainty figure into ``path``; False (and a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from tfp_bnn import plots
    except ImportError:
        print("matplotlib is not installed (pip install 'tfp-bnn[plots]'): no uncertainty.png", file=sys.stderr)
        return False
    x_eval, y_eval = valid if len(valid[0]) else train
    if dataset.task == "classification":
        result = tfp_bnn.predict(model, x_eval, num_samples=args.samples, seed=args.seed)
        figure = plots.uncertainty_histograms(y_eval, result)
    elif dataset.x.shape[1] == 1:
        low, high = float(dataset.x.min()), float(dataset.x.max())
        margin = 0.5 * (high - low)
        grid = np.linspace(low - margin, high + margin, 400, dtype=np.float32)[:, np.newaxis]
        result = tfp_bnn.predict(model, grid, num_samples=args.samples, seed=args.seed)
        figure = plots.uncertainty_bands(grid, result, x_train=train[0], y_train=train[1])
    else:
        result = tfp_bnn.predict(model, x_eval, num_samples=args.samples, seed=args.seed)
        figure = plots.calibration_curve(y_eval, result)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return True


# -- metrics ------------------------------------------------------------------------


def _metrics(model, x, y, task, num_samples, seed):
    labels_or_targets = y.astype(np.int64) if task == "classification" else y
    return {**tfp_bnn.score(model, x, labels_or_targets, num_samples=num_samples, seed=seed), "n": int(len(y))}


def _print_metrics(metrics_by_split):
    names = [name for name in next(iter(metrics_by_split.values())) if name != "n"]
    print(f"{'':18}" + "".join(f"{name:>13}" for name in names))
    for split, values in metrics_by_split.items():
        # 4 decimals; 4 significant digits when that would not fit the column (one space between)
        # or would show nothing (an RMSE of 2e-7 printed 0.0000 for targets of scale 1e-6).
        cells = (
            f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"
            for value in map(values.get, names)
        )
        print(f"{split + ' (' + str(values['n']) + ')':18}" + "".join(f"{cell:>13}" for cell in cells))


# -- predict / evaluate ---------------------------------------------------------------------


def _predict(args):
    _check_file_output(args.output, "--output", args)
    try:
        validation.check_level(args.level, name="--level")
    except ValueError as error:  # a usage error: one line, also under TFP_BNN_DEBUG
        raise UsageError(error) from None
    report = _read_report(args.model)
    # A labelled file may keep its target column: it is not a feature.
    x = data.load_features(args.data, report["features"], ignore=(report["target"],), delimiter=args.delimiter)
    model = _load_model(args.model, args.samples)
    result = tfp_bnn.predict(model, x, num_samples=args.samples, seed=args.seed, level=args.level)
    if report["task"] == "classification":
        class_names = report["class_names"]
        columns = {f"prob_{name}": result.probabilities[:, k] for k, name in enumerate(class_names)}
        columns["predicted_class"] = np.asarray(class_names)[result.predicted_class]
        columns["entropy"] = result.predictive_entropy
        columns["expected_entropy"] = result.expected_entropy
        columns["mutual_information"] = result.mutual_information
    else:
        columns = {
            "mean": result.mean[:, 0],
            "stddev": result.stddev[:, 0],
            "aleatoric_stddev": result.aleatoric_stddev[:, 0],
            "epistemic_stddev": result.epistemic_stddev[:, 0],
            "lower": result.lower[:, 0],
            "upper": result.upper[:, 0],
        }
    with _replaced_file(args.output, args.force, _inputs(args)) as path:
        _write_csv(path, columns)
    print(f"Wrote {len(x)} predictions to {args.output}")


def _inputs(args):
    """The files predict/evaluate read: an output must not replace them."""
    return [args.data, args.model / MODEL_FILE, args.model / REPORT_FILE]


def _check_file_output(target, option, args):
    """Before any work: the file output is no input, no folder, new (or --force) and can be written."""
    _check_not_an_input(target, _inputs(args), file=True)
    if target.is_dir():
        raise UsageError(f"{target} is a folder; give a file name.")
    _refuse_overwrite(target, args.force)
    _check_writable(target, option)


def _read_report(folder):
    path = folder / REPORT_FILE
    if not path.is_file():
        raise UsageError(f"{path} not found: --model must be a folder written by 'tfp-bnn fit'.")
    try:
        report = json.loads(path.read_text())
        problem = ", ".join(key for key in REPORT_KEYS if key not in report)
        problem = problem and f"no {problem}"
    except (ValueError, TypeError) as error:  # JSONDecodeError, bad UTF-8, not a JSON object
        problem = str(error)
    if problem:
        raise UsageError(
            f"{path} is damaged or not written by 'tfp-bnn fit' ({problem}); "
            "run 'tfp-bnn fit' again into a new --out folder."
        )
    return report


def _load_model(folder, samples):
    path = folder / MODEL_FILE
    if not path.is_file():
        raise UsageError(f"{path} not found: --model must be a folder written by 'tfp-bnn fit'.")
    try:
        model = tf_keras.models.load_model(path)
    except (OSError, ValueError) as error:  # truncated, damaged or not a Keras file
        reason = " ".join(str(error).split())[:200]
        raise UsageError(f"{path} cannot be loaded ({reason}); run 'tfp-bnn fit' again into a new --out folder.")
    members = getattr(model, "num_members", 1)
    fixed = validation.draws_for_members(samples, members)
    if fixed != samples:  # validation.check_num_samples's rule, in the command line's words
        raise UsageError(
            f"--samples {samples} is not a multiple of the ensemble's {members} members: every network of the "
            f"ensemble must be drawn equally often; e.g. --samples {fixed}."
        )
    return model


def _evaluate(args):
    if args.json is not None:
        _check_file_output(args.json, "--json", args)
    report = _read_report(args.model)
    # The target first: a misspelt --target is then reported as such, not as an unknown feature.
    y = data.load_target(args.data, args.target, class_names=report["class_names"], delimiter=args.delimiter)
    x = data.load_features(args.data, report["features"], ignore=(args.target,), delimiter=args.delimiter)
    if args.target != report["target"]:
        print(
            f"note: the model was trained to predict {report['target']!r}; evaluating it against {args.target!r}.",
            file=sys.stderr,
        )
    model = _load_model(args.model, args.samples)
    metrics = {"data": _metrics(model, x, y, report["task"], args.samples, args.seed)}
    _print_metrics(metrics)
    if args.json is not None:
        with _replaced_file(args.json, args.force, _inputs(args)) as path:
            path.write_text(json.dumps(metrics["data"], indent=2) + "\n")


def _export(args):
    from tfp_bnn import serving

    try:
        version = serving.check_export_dir(args.out, args.version)
    except FileExistsError as error:
        raise UsageError(str(error))
    _check_writable(args.out, "--out", inside=True)  # the version is written inside BASE/NAME
    report = _read_report(args.model)
    model = _load_model(args.model, args.samples)
    metadata = {key: report[key] for key in ("features", "target", "class_names")}  # the export adds the task
    try:
        path = serving.export_for_serving(
            model, args.out, num_samples=args.samples, version=version, metadata=metadata
        )
    except (FileExistsError, ImportError) as error:
        raise UsageError(str(error))
    print(f"Wrote {path} (signatures serving_default and samples, and seeded and samples_seeded with a "
          f"seed input, {args.samples} weight draws per request)")


def _write_csv(path, columns):
    names = list(columns)
    rows = zip(*(columns[name] for name in names))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            # 9 significant digits give back every float32 (6 merged a mean of 1234567.9 with its bounds).
            writer.writerow([value if isinstance(value, str) else f"{value:.9g}" for value in row])


# -- files: never lose what is there ----------------------------------------------------------


def _refuse_overwrite(path, force):
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to replace it.")


FIT_FILES = (MODEL_FILE, REPORT_FILE, FIGURE_FILE)
FOLDER_VIEW_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")  # written by file browsers, not by the user


def _check_replaceable(target):
    """--force replaces an empty folder or one written by fit, never other files (e.g. runs/ holding runs)."""
    if not target.exists():
        return
    if not target.is_dir():
        raise UsageError(f"{target} is a file; --force replaces only a folder written by 'tfp-bnn fit'.")
    other = sorted(path.name for path in target.iterdir() if path.name not in FIT_FILES + FOLDER_VIEW_FILES)
    if other:
        raise UsageError(
            f"{target} holds {', '.join(map(repr, other[:3]))}{' ...' if len(other) > 3 else ''}, not written by "
            "'tfp-bnn fit'; --force replaces only a fit's folder: write to a new folder such as "
            f"{target / 'model'}."
        )


def _check_writable(target, option, inside=False):
    """Before any work: the output can be created where it is asked for (its nearest existing folder is writable).

    ``inside``: the output is written into ``target`` itself (export's versions in BASE/NAME), so an
    existing ``target`` must be writable, not its parent.
    """
    folder = target if inside else target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {target}: {folder} is a file, not a folder; choose another path.")
    try:
        tempfile.TemporaryDirectory(prefix=".tfp-bnn-check.", dir=folder).cleanup()
    except OSError as error:
        raise UsageError(f"{option} {target}: cannot write in {folder} ({error.strerror}); choose another path.")


def _check_output_folder(target, keep=()):
    """--force deletes the output folder: never the working folder, a folder holding it, or the input data."""
    if target.is_symlink():
        raise UsageError(f"{target} is a symbolic link; give the folder itself, or a new one.")
    resolved, here = target.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise UsageError(f"{target} is the current folder or holds it; write to a new folder such as runs/model.")
    _check_not_an_input(target, keep)


def _check_not_an_input(target, inputs, file=False):
    """An output must be neither an input file nor a folder holding one: --force would replace it."""
    resolved = target.resolve()
    for kept in inputs:
        kept_resolved = Path(kept).resolve()
        if resolved == kept_resolved:
            raise UsageError(f"{target} is the input {kept}; write the output to another path.")
        if resolved in kept_resolved.parents:
            if file:
                raise UsageError(f"{target} is a folder holding the input {kept}; give a file name.")
            raise UsageError(f"{target} holds {kept}, which --force would delete; write to another folder.")


def _umask():
    """The process's umask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _replaced_dir(target, force, keep=()):
    """Write into a fresh temporary folder beside ``target``, then move it into place."""
    _check_output_folder(target, keep)
    _refuse_overwrite(target, force)
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp's 0o700 would hide the model from everyone else
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _replaced_file(target, force, inputs=()):
    """Write into a temporary file beside ``target``, then rename it into place."""
    _check_not_an_input(target, inputs, file=True)
    _refuse_overwrite(target, force)
    if target.is_dir():
        raise UsageError(f"{target} is a folder; give a file name.")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    os.chmod(staging, 0o666 & ~_umask())  # mkstemp's 0o600, as open() would not make it
    try:
        yield Path(staging)
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


if __name__ == "__main__":
    sys.exit(main())
