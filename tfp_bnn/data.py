"""Built-in data sets.

:func:`gap_regression` is the 1-D heteroscedastic regression with a gap in
``x`` used throughout the article series: inside the two training intervals
the noise grows from left to right (aleatoric), in the gap and beyond the ends
there is no data (epistemic).

Example:

>>> x, y = gap_regression(500, seed=0)
>>> x.shape, y.shape
((500, 1), (500,))
"""

import numpy as np

__all__ = ["gap_regression", "gap_regression_mean", "gap_regression_noise_std", "GAP_REGRESSION_INTERVALS"]

#: The two intervals of x that hold training data; the gap lies between them.
GAP_REGRESSION_INTERVALS = ((-3.0, -1.0), (1.0, 3.0))


def gap_regression_mean(x):
    """``E[y | x] = sin(2x) + 0.3 x``."""
    x = np.asarray(x, np.float64)
    return np.sin(2.0 * x) + 0.3 * x


def gap_regression_noise_std(x):
    """True noise standard deviation, rising linearly from 0.1 at x = -3 to 0.5 at x = 3."""
    x = np.asarray(x, np.float64)
    return 0.1 + 0.4 * (x + 3.0) / 6.0


def gap_regression(num_samples=1000, seed=0, intervals=GAP_REGRESSION_INTERVALS):
    """``num_samples`` points, ``x`` uniform on the ``intervals``, ``y = mean(x) + noise_std(x) * eps``.

    Returns:
      ``x`` float32 ``(num_samples, 1)``, ``y`` float32 ``(num_samples,)``.
    """
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    rng = np.random.default_rng(seed)
    lows, highs = np.asarray(intervals, np.float64).T
    which = rng.choice(len(lows), size=int(num_samples), p=(highs - lows) / np.sum(highs - lows))
    x = rng.uniform(lows[which], highs[which])
    y = gap_regression_mean(x) + gap_regression_noise_std(x) * rng.standard_normal(x.shape)
    return x[:, np.newaxis].astype(np.float32), y.astype(np.float32)
