"""The main job on built-in data: ``python -m tfp_bnn.demo``.

Trains a Bayesian + probabilistic regressor on :func:`tfp_bnn.data.gap_regression`
and prints, along a grid of ``x``, the predictive mean and the split of its
uncertainty: aleatoric (noise in the data, grows from left to right inside the
data) and epistemic (ignorance of the weights, grows in the gap and beyond).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402

import tfp_bnn  # noqa: E402
from tfp_bnn import data  # noqa: E402

GRID = (-6.0, -4.5, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.5, 6.0)


def _region(x):
    if any(low <= x <= high for low, high in data.GAP_REGRESSION_INTERVALS):
        return "data"
    lows, highs = zip(*data.GAP_REGRESSION_INTERVALS)
    return "gap" if min(lows) < x < max(highs) else "outside"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--samples", type=int, default=200, help="weight draws per prediction")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tf_keras.utils.set_random_seed(args.seed)
    x, y = data.gap_regression(2000, seed=args.seed)
    model = tfp_bnn.make_regressor((1,), hidden_units=(50, 50), train_size=len(x))
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    start = time.perf_counter()
    history = model.fit(x, y, epochs=args.epochs, batch_size=100, verbose=0)
    seconds = time.perf_counter() - start
    logs = {k: v[-1] for k, v in history.history.items()}
    print(
        f"Trained a 2 x 50 Flipout BNN with a Normal head on {len(x)} points in {seconds:.1f} s: "
        f"loss {logs['loss']:.3f} = NLL {logs['nll']:.3f} + KL/N {logs['kl']:.3f}"
    )

    grid = np.array(GRID, np.float32)[:, np.newaxis]
    result = tfp_bnn.predict(model, grid, num_samples=args.samples, seed=args.seed)
    print(f"\nPredictive distribution from {args.samples} weight draws (95% interval of the mixture):")
    header = f"{'x':>6} {'region':>8} {'true mean':>10} {'mean':>8} {'aleatoric':>10} {'true noise':>11} {'epistemic':>10} {'total':>8}   95% interval"
    print(header)
    print("-" * len(header))
    for i, value in enumerate(grid[:, 0]):
        region = _region(value)
        # The data set defines its noise only where it has data.
        noise = f"{data.gap_regression_noise_std(value):11.3f}" if region == "data" else f"{'-':>11}"
        print(
            f"{value:6.1f} {region:>8} {data.gap_regression_mean(value):10.3f} {result.mean[i, 0]:8.3f} "
            f"{result.aleatoric_stddev[i, 0]:10.3f} {noise} "
            f"{result.epistemic_stddev[i, 0]:10.3f} {result.stddev[i, 0]:8.3f}   "
            f"[{result.lower[i, 0]:7.3f}, {result.upper[i, 0]:7.3f}]"
        )

    x_test, y_test = data.gap_regression(4000, seed=args.seed + 1)
    inside = tfp_bnn.predict(model, x_test, num_samples=args.samples, seed=args.seed)
    coverage = tfp_bnn.metrics.interval_coverage(y_test, inside.lower, inside.upper)
    outside = result.epistemic_stddev[[0, -1], 0]
    print(
        f"\nOn 4000 fresh points inside the data: 95% intervals cover {coverage:.1%}; mean epistemic std "
        f"{inside.epistemic_stddev.mean():.3f} vs {outside.mean():.3f} at x = +-6 "
        f"({outside.mean() / inside.epistemic_stddev.mean():.0f}x)."
    )


if __name__ == "__main__":
    main()
