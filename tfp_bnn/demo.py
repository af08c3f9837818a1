"""The main job on built-in data: ``python -m tfp_bnn.demo`` (``make demo``).

Runs ``tfp-bnn fit`` on the built-in 1-D regression with a gap in x, then
``tfp-bnn predict`` on a grid of x that reaches into the gap and beyond the
data, and prints the uncertainty table: aleatoric std follows the true noise
inside the data, epistemic std grows where there is no data.
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from tfp_bnn import cli, data

GRID = (-6.0, -4.5, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.5, 6.0)


def _region(x):
    if any(low <= x <= high for low, high in data.GAP_REGRESSION_INTERVALS):
        return "data"
    lows, highs = zip(*data.GAP_REGRESSION_INTERVALS)
    return "gap" if min(lows) < x < max(highs) else "outside"


def main(argv=None):
    """Fit on the built-in gap data, predict on a grid and print the uncertainty table.

    Args:
      argv: ``--out DIR`` (the model folder, replaced; default ``runs/demo``),
        ``--epochs``, ``--samples`` (weight draws per prediction) and ``--seed``;
        ``None`` reads ``sys.argv[1:]``.

    Returns:
      The exit status: 0, or 1 if the ``fit`` or ``predict`` command failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="model folder (replaced)")
    # The commands' own checks, so that a bad value is refused before the 500 epochs of `fit`.
    parser.add_argument("--epochs", type=cli._positive_int, default=500)
    parser.add_argument("--samples", type=cli._positive_int, default=200, help="weight draws per prediction")
    parser.add_argument("--seed", type=cli._non_negative_int, default=0)
    args = parser.parse_args(argv)

    fit = ["fit", "--out", str(args.out), "--force", "--epochs", str(args.epochs), "--seed", str(args.seed)]
    print("$ tfp-bnn " + " ".join(fit))
    if cli.main(fit):
        return 1

    grid_path = args.out.parent / f"{args.out.name}_grid.csv"
    predictions_path = args.out.parent / f"{args.out.name}_grid_predictions.csv"
    grid_path.write_text("x\n" + "".join(f"{x}\n" for x in GRID))
    predict = [
        "predict", "--model", str(args.out), "--data", str(grid_path), "--output", str(predictions_path),
        "--samples", str(args.samples), "--seed", str(args.seed), "--force",
    ]
    print("\n$ tfp-bnn " + " ".join(predict))
    if cli.main(predict):
        return 1

    with open(predictions_path, newline="") as handle:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    print(f"\nPredictive distribution from {args.samples} weight draws (95% interval of the mixture):")
    header = (
        f"{'x':>6} {'region':>8} {'true mean':>10} {'mean':>8} {'aleatoric':>10} {'true noise':>11} "
        f"{'epistemic':>10} {'total':>8}   95% interval"
    )
    print(header)
    print("-" * len(header))
    for x, row in zip(GRID, rows):
        region = _region(x)
        # The data set defines its noise only where it has data.
        noise = f"{data.gap_regression_noise_std(x):11.3f}" if region == "data" else f"{'-':>11}"
        print(
            f"{x:6.1f} {region:>8} {data.gap_regression_mean(x):10.3f} {row['mean']:8.3f} "
            f"{row['aleatoric_stddev']:10.3f} {noise} {row['epistemic_stddev']:10.3f} {row['stddev']:8.3f}   "
            f"[{row['lower']:7.3f}, {row['upper']:7.3f}]"
        )

    epistemic = {region: [] for region in ("data", "gap", "outside")}
    for x, row in zip(GRID, rows):
        epistemic[_region(x)].append(row["epistemic_stddev"])
    inside = np.mean(epistemic["data"])
    print(
        f"\nMean epistemic std: {inside:.3f} inside the data, {np.mean(epistemic['gap']):.3f} in the gap, "
        f"{np.mean(epistemic['outside']):.3f} outside ({np.mean(epistemic['outside']) / inside:.0f}x inside)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
