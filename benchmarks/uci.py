"""UCI regression benchmark: tfp_bnn beside the published results.

    python benchmarks/uci.py --data-dir ../shared/data/uci --datasets bostonHousing,concrete \\
        [--splits K] [--method bnn|mc_dropout|ensemble] [--jobs N] [--json OUT] [--markdown OUT]

``--data-dir`` holds one folder per data set in the layout of Hernández-Lobato &
Adams' splits (``data.txt``, ``index_features.txt``, ``index_target.txt``,
``index_train_<i>.txt``/``index_test_<i>.txt``, optionally ``n_hidden.txt``);
any such folder runs. The protocol is that of ``PUBLISHED.md`` §7:

* the given splits (the first ``--splits`` of them);
* one hidden layer of ``n_hidden.txt`` ReLU units (50; 100 for protein);
* inputs and targets standardised with the training split's mean and standard
  deviation (inside the model: it takes and predicts original units);
* test RMSE of the predictive mean and test log-likelihood of the Monte Carlo
  predictive mixture, ``log 1/T sum_t p(y | x, w_t)`` over ``--samples`` draws,
  averaged over test points, both in original units; then mean and standard
  error over splits (``std / sqrt(splits)``, ``ddof=0`` as in Gal's logs).

Hyperparameters are chosen on validation data only, separately for every
split: the last 20 % of that split's training rows (Gal 2018) are held out,
every configuration of the method's small grid is trained on the other 80 %
and scored by validation log-likelihood at up to 11 checkpoints between 1/64
of the epoch budget (about 40,000 steps) and all of it, stopping once
``PATIENCE`` checkpoints in a row have not improved on the best. Each
configuration's epoch count is its best checkpoint. Among the configurations
whose validation log-likelihood is within one standard error of the best
(``std / sqrt(N)`` of the best one's per-point log-likelihoods), the one with
the lowest validation RMSE is chosen (the one-standard-error rule of Hastie et
al., ESL §7.10, with RMSE as the tie-break: the targets are both, and smaller
differences are the noise of the validation rows; protein split 0 of the
previous full run chose by a difference of 0.003 over 7,316 rows the
configuration with validation RMSE 4.46 over one with 4.34).
If the chosen configuration's best is its first checkpoint, the answer lies at
the edge of the range searched, and that configuration is scored again at 1/8,
1/4 and 1/2 of it (``EARLIER``) before choosing again: the deep ensemble's
validation log-likelihood fell from its first checkpoint (31 epochs) on all 20
boston splits of the previous run (split 0: -2.49, -2.55, -2.66, -3.02 after
31, 62, 125, 250 epochs). The chosen
configuration and epoch count are then used to train on the split's full
training rows, and only that model sees the split's test rows. The grid,
every validation score and each split's choice are written to the JSON.

Training splits of fewer than ``CROSS_VALIDATION_ROWS`` = 1,000 rows (boston
455, concrete 927) use 5-fold cross-validation instead of the single holdout:
five contiguous blocks, the last one the same last 20 %; the five models of a
configuration train side by side and the curve is that of all five validation
blocks pooled, so every training row is scored once. On those two data sets
the holdout's standard error of the validation log-likelihood (median over
the previous full run's choices: 0.10 on boston, 0.08 on concrete; 0.02-0.03
elsewhere) was as large as the differences it decided between the
configurations (median spread 0.20 and 0.13). The threshold was set from
these validation numbers, before any cross-validated run. Larger data sets
keep the single holdout: five times the cost, for differences their
validation rows already resolve. Every split runs in a process of its own
(``--jobs`` of them side by side), because TensorFlow does not give back the
memory of its many ``fit`` calls.

Weights are trained with Adam and, for ``bnn``, two guards against the
heteroscedastic Normal head's instability (a step can throw the mean far off
where the predicted noise is large; the loss recovers slowly):

* the gradient's global norm is clipped at 1 (``global_clipnorm``): without
  it, naval splits 11 and 13 ended training at a training-set NLL of -4.35
  and -2.80 against -6.24 and -6.26 with it (training rows only);
* the weights kept are the exponential moving average over the steps
  (Polyak averaging, ``ema_momentum``): it scored better on validation rows
  than the last step (mean validation log-likelihood with the Normal head:
  boston, 8 splits, -2.367 vs -2.393; concrete, 6 splits, -3.089 vs -3.105).

* the learning rate follows a cosine decay to 0 over the search's epoch
  budget (``lr_schedule="cosine"``), the same schedule (by epoch) in the
  search runs and in the final run, which stops on it at the chosen epoch.
  The budget is known in advance, the stopping epoch is not; runs stopped
  early (the small data sets) train at nearly the full rate, runs that use
  the whole budget (the large ones) end converged. Power split 0, validation
  rows, Normal head: RMSE 3.857 -> 3.837, log-likelihood -2.745 -> -2.736
  after the 148-epoch budget; four times the budget with the decay did no
  better (3.850, -2.741).

The search for ``bnn`` (``GRIDS``) compares four ways to train the default
regressor (heteroscedastic Normal head), each with its epoch count: the ELBO;
the beta-NLL of Seitzer et al. 2022 (``loss_beta=0.5``,
:class:`tfp_bnn.BetaNegativeLogLikelihood`); a tempered posterior, KL weight
``kl_scale / N`` with ``kl_scale = 1/4``; and the beta-NLL with ``kl_scale =
1/2``. Validation rows, split 0, RMSE / log-likelihood, ELBO -> beta-NLL ->
tempered: concrete 5.69 / -3.068 -> 5.21 / -3.018 -> (stops at the first
checkpoint, 6.16 / -3.312); power 3.837 / -2.736 -> 3.858 / -2.744 -> 3.808 /
-2.726. The plain NLL fits the mean of the small data sets worse (the gradient
of the mean is divided by the predicted variance), the full KL weight underfits
the large ones; which one applies is a choice on validation rows like the
others. The fourth configuration replaced the homoscedastic Normal head of the
previous full run (chosen on 6 of 20 boston splits, once on naval, never
elsewhere). With the same splits and seeds, the chosen configuration's
validation RMSE / log-likelihood, averaged over splits, old grid -> new grid:
concrete (splits 0-13) 5.46 / -2.983 -> 5.21 / -2.958; boston (0-13) 3.16 /
-2.370 -> 3.08 / -2.336; protein (0, 4) 4.50 / -2.744 -> 4.41 / -2.740; power,
kin8nm, naval (0-3) log-likelihood -2.746 -> -2.745, 1.196 -> 1.200, 6.722 ->
6.767. Replacing the ELBO or the tempered ELBO instead scored a lower or equal
validation log-likelihood on every data set. More configurations also mean more
chances to pick one by the noise of a small validation set: boston split 3 (91
validation rows) chose the tempered posterior and scored -2.78 on its test rows
(95 % coverage 0.84) in the previous full run, against -2.37 for the ELBO in a
run without it.

Two settings shared by the four were moved after an earlier full run, on
validation rows of its splits (never test rows):

* the prior scale is 3, not 1 (inputs and targets are standardised).
  The beta-NLL's validation RMSE / log-likelihood on concrete, splits 0-5:
  5.21 / -3.018 -> 5.05 / -2.967, 5.71 / -3.051 -> 5.63 / -3.051,
  5.08 / -2.941 -> 4.95 / -2.925, 6.28 / -3.157 -> 5.99 / -3.152,
  5.00 / -2.936 -> 4.79 / -2.931, 5.82 / -3.076 -> 5.40 / -3.045; equal on
  splits 6-9. The chosen configuration's validation log-likelihood on boston,
  splits 0-7, mean -2.408 -> -2.395; power splits 0-1, each configuration
  within 0.02 RMSE and 0.005 log-likelihood. A prior scale of 0.3 was
  worse (concrete split 0: 5.46 / -3.043), 10 no better (5.09 / -2.978), and a
  trainable prior scale much worse (5.65 / -3.071);
* the epoch budget is at least ``MIN_EPOCHS`` = 100: protein's 40,000 steps
  are 35 epochs, and its validation scores were still improving at the end
  (split 0, beta-NLL: 4.45 / -2.774 after 31 epochs, 4.41 / -2.749 after 88).

The default method ``bnn`` is the default Bayesian + probabilistic regressor of
tfp_bnn (``make_regressor``: Flipout ``BayesianDense``, mean-field posterior,
Normal prior, KL weight ``1/N``); ``mc_dropout`` and ``ensemble`` are the
baselines of :mod:`tfp_bnn.baselines`.
"""

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tf_keras  # noqa: E402

import tfp_bnn  # noqa: E402
from tfp_bnn import data, heads, metrics, posteriors, priors  # noqa: E402
from tfp_bnn.cli import _positive_int  # noqa: E402  (the CLI's argparse type)

METHODS = ("bnn", "mc_dropout", "ensemble")
VALIDATION_FRACTION = 0.2
# Training splits with fewer rows choose by FOLDS-fold cross-validation (boston 455 rows,
# concrete 927; the next smallest, kin8nm, has 7,373): see the module docstring.
CROSS_VALIDATION_ROWS = 1000
FOLDS = 5
STEP_BUDGET = 40_000  # training steps of the longest run
MIN_EPOCHS = 100  # large data sets (protein) still improved after 40,000 steps: see the module docstring
ROWS_PER_CHUNK = 2**18  # inputs x draws per prediction call: a few hundred MB at most for these MLPs
# Validation scores at these fractions of the epoch budget: dense at the start,
# where small data sets are best stopped early.
CHECKPOINTS = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 5 / 8, 3 / 4, 7 / 8, 1)
# When the chosen configuration's best point is its first checkpoint, the curve has not shown
# where its best lies: that configuration is scored again at these fractions of it (see select).
EARLIER = (1 / 8, 1 / 4, 1 / 2)
PATIENCE = 3  # checkpoints without a better validation score before a search run stops

# Settings every configuration shares (recorded in the JSON).
FIXED = {
    "bnn": {
        "learning_rate": 3e-3, "lr_schedule": "cosine", "ema_momentum": 0.99, "global_clipnorm": 1.0, "batch_size": 32,
        "estimator": "flipout",
        # prior_scale 3 (not 1): see the module docstring.
        "posterior_scale": 1e-3, "prior": "normal", "prior_scale": 3.0, "loss_beta": 0.0, "kl_scale": 1.0,
    },
    "mc_dropout": {"learning_rate": 3e-3, "batch_size": 32, "head": "homoscedastic"},
    "ensemble": {"learning_rate": 3e-3, "batch_size": 32, "head": "normal", "num_members": 5},
}
# What is searched on validation data, per method: a grid (every combination of the
# values), or a list of configurations (each overriding FIXED).
GRIDS = {
    # The heteroscedastic Normal head, trained four ways: the ELBO; the beta-NLL (beta
    # 0.5), whose mean is not neglected where the predicted noise is large; a tempered
    # posterior (KL weight 1/4 of 1/N); both, with half the KL weight.
    "bnn": [
        {"head": "normal"},
        {"head": "normal", "loss_beta": 0.5},
        {"head": "normal", "kl_scale": 0.25},
        {"head": "normal", "loss_beta": 0.5, "kl_scale": 0.5},
    ],
    "mc_dropout": {"dropout_rate": (0.005, 0.01, 0.05, 0.1)},  # Gal's dropout_rates.txt
    "ensemble": {},
}
HEADS = {"normal": heads.NormalHead, "homoscedastic": heads.HomoscedasticNormalHead}
# "trainable": empirical Bayes, one learned prior scale per layer (as DVI's prior), starting at prior_scale.
PRIORS = {"normal": priors.NormalPrior, "trainable": priors.TrainableNormalPrior}

# Published columns shown beside ours (PUBLISHED.md §2 and §3): mean, error.
# (c) MC dropout, Gal & Ghahramani 2016 Table 1; (f) Deep Ensembles,
# Lakshminarayanan et al. 2017 (error probably a std); (g) DVI and (i) MCVI,
# Wu et al. 2019 Table 2 (log-likelihood only).
PUBLISHED_RMSE = {
    "bostonHousing": {"c": (2.97, 0.19), "f": (3.28, 1.00)},
    "concrete": {"c": (5.23, 0.12), "f": (6.03, 0.58)},
    "energy": {"c": (1.66, 0.04), "f": (2.09, 0.29)},
    "kin8nm": {"c": (0.10, 0.00), "f": (0.09, 0.00)},
    "naval-propulsion-plant": {"c": (0.01, 0.00), "f": (0.00, 0.00)},
    "power-plant": {"c": (4.02, 0.04), "f": (4.11, 0.17)},
    "protein-tertiary-structure": {"c": (4.36, 0.01), "f": (4.71, 0.06)},
    "wine-quality-red": {"c": (0.62, 0.01), "f": (0.64, 0.04)},
    "yacht": {"c": (1.11, 0.09), "f": (1.58, 0.48)},
}
PUBLISHED_LL = {
    "bostonHousing": {"c": (-2.46, 0.06), "f": (-2.41, 0.25), "g": (-2.41, 0.02), "i": (-2.46, 0.02)},
    "concrete": {"c": (-3.04, 0.02), "f": (-3.06, 0.18), "g": (-3.06, 0.01), "i": (-3.07, 0.01)},
    "energy": {"c": (-1.99, 0.02), "f": (-1.38, 0.22), "g": (-1.01, 0.06), "i": (-1.03, 0.04)},
    "kin8nm": {"c": (0.95, 0.01), "f": (1.20, 0.02), "g": (1.13, 0.00), "i": (1.14, 0.00)},
    "naval-propulsion-plant": {"c": (3.80, 0.01), "f": (5.63, 0.05), "g": (6.29, 0.04), "i": (5.94, 0.05)},
    "power-plant": {"c": (-2.80, 0.01), "f": (-2.79, 0.04), "g": (-2.80, 0.00), "i": (-2.80, 0.00)},
    "protein-tertiary-structure": {"c": (-2.89, 0.00), "f": (-2.83, 0.02), "g": (-2.85, 0.01), "i": (-2.87, 0.01)},
    "wine-quality-red": {"c": (-0.93, 0.01), "f": (-0.94, 0.12), "g": (-0.90, 0.01), "i": (-0.92, 0.01)},
    "yacht": {"c": (-1.55, 0.03), "f": (-1.18, 0.21), "g": (-0.47, 0.03), "i": (-0.68, 0.03)},
}


class UsageError(Exception):
    """Bad command-line input: one line on standard error, exit status 2."""


# -- training and scoring one model --------------------------------------------------------------


def max_epochs(num_train, batch_size=32):
    """Epoch budget of the search: ``STEP_BUDGET`` steps, between ``MIN_EPOCHS`` and 2,000 epochs.

    About 20 s per training run on two shared cores (protein's 100 epochs:
    about 2 minutes). Seconds per split in the committed runs (two to five
    processes on two cores): boston (5-fold) about 300, concrete (5-fold)
    475, kin8nm, naval and power about 270, protein 860.
    """
    return int(min(2000, max(MIN_EPOCHS, STEP_BUDGET * batch_size // num_train)))


def standardization(x, y):
    """Training-split mean and std of inputs and target (a std of 0 becomes 1)."""
    x_std = x.std(axis=0)
    x_std[x_std == 0] = 1.0
    y_std = float(y.std()) or 1.0
    return x.mean(axis=0), x_std, float(y.mean()), y_std


def build(method, params, x, y, num_hidden, epoch_budget):
    """A compiled regressor of ``method`` with hyperparameters ``params`` for training data ``x, y``."""
    x_mean, x_std, y_mean, y_std = standardization(x, y)
    head = HEADS[params["head"]](1, target_loc=y_mean, target_scale=y_std)
    kwargs = {}
    if method == "bnn":
        kwargs = {
            "estimator": params["estimator"],
            "kernel_prior": PRIORS[params["prior"]](params["prior_scale"]),
            "kernel_posterior": posteriors.MeanFieldNormal(params["posterior_scale"]),
        }
    elif method == "mc_dropout":
        kwargs = {"inference": "mc_dropout", "dropout_rate": params["dropout_rate"]}
    else:
        kwargs = {"inference": "ensemble", "num_members": params["num_members"]}
    # make_regressor weighs each layer's KL by 1/train_size; kl_scale multiplies that weight.
    train_size = int(round(len(x) / params.get("kl_scale", 1.0)))
    model = tfp_bnn.make_regressor(
        x.shape[1:], hidden_units=(num_hidden,), train_size=train_size, head=head,
        input_mean=x_mean, input_std=x_std, **kwargs,
    )
    ema = params.get("ema_momentum")
    optimizer = tf_keras.optimizers.Adam(
        learning_rate(params, len(x), epoch_budget), use_ema=ema is not None, ema_momentum=ema or 0.99,
        global_clipnorm=params.get("global_clipnorm"),
    )
    beta = params.get("loss_beta", 0.0)
    model.compile(optimizer=optimizer, loss=tfp_bnn.BetaNegativeLogLikelihood(beta) if beta else None)
    return model


def learning_rate(params, num_train, epoch_budget):
    """Constant, or ``lr_schedule="cosine"``: decayed to 0 over ``epoch_budget`` epochs of ``num_train`` rows."""
    if params.get("lr_schedule") != "cosine":
        return params["learning_rate"]
    steps_per_epoch = math.ceil(num_train / params["batch_size"])
    return tf_keras.optimizers.schedules.CosineDecay(params["learning_rate"], epoch_budget * steps_per_epoch)


def num_draws(method, params, samples):
    """``samples`` rounded up to a multiple of the ensemble size (every member equally often)."""
    members = params.get("num_members", 1) if method == "ensemble" else 1
    return int(math.ceil(samples / members) * members)


def score(model, x, y, samples, seed):
    """RMSE of the predictive mean, mean test log-likelihood and 95 % interval coverage."""
    return summarize([per_point_scores(model, x, y, samples, seed)])


def per_point_scores(model, x, y, samples, seed):
    """Targets, predictive mean, 95 % interval and mixture log-likelihood of every row of ``x``."""
    chunk = max(1, ROWS_PER_CHUNK // samples)
    log_likelihoods = tfp_bnn.log_likelihoods(model, x, y, num_samples=samples, seed=seed, batch_size=chunk)
    prediction = tfp_bnn.predict(model, x, num_samples=samples, seed=seed, batch_size=chunk)
    return {
        "y": y, "mean": prediction.mean, "lower": prediction.lower, "upper": prediction.upper,
        "log_likelihood": metrics.mixture_log_likelihoods(log_likelihoods),
    }


def summarize(parts):
    """The scores of :func:`score` over the rows of all ``parts`` (:func:`per_point_scores`) together."""
    pooled = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    per_point = pooled["log_likelihood"]
    return {
        "rmse": metrics.rmse(pooled["y"], pooled["mean"]),
        "test_ll": float(per_point.mean()),
        "test_ll_se": float(per_point.std() / np.sqrt(per_point.size)),
        "coverage_95": metrics.interval_coverage(pooled["y"], pooled["lower"], pooled["upper"]),
    }


# -- hyperparameter choice on validation data ------------------------------------------------------


def configurations(method):
    """The configurations searched for ``method``: ``FIXED`` overridden by each grid point."""
    grid = GRIDS[method]
    points = grid if isinstance(grid, list) else (dict(zip(grid, v)) for v in itertools.product(*grid.values()))
    for point in points:
        yield {**FIXED[method], **point}


def _recorded_grid(method):
    grid = GRIDS[method]
    return [dict(point) for point in grid] if isinstance(grid, list) else {k: list(v) for k, v in grid.items()}


def _best(curve):
    """The point of a validation curve with the highest log-likelihood."""
    return max(curve, key=lambda point: point["test_ll"])


def _stale(curve):
    """Whether the last ``PATIENCE`` points of a validation curve missed its best log-likelihood."""
    return len(curve) - 1 - curve.index(_best(curve)) >= PATIENCE


class _Checkpoints(tf_keras.callbacks.Callback):
    """Scores the model on validation data at the given epochs; stops after ``PATIENCE`` misses.

    With an EMA optimizer the score is that of the averaged weights (what ``fit``
    leaves behind at its end), swapped in for scoring and swapped out again so
    training goes on from the raw weights, as in one uninterrupted ``fit``.
    ``scores`` keeps the per-point scores of every checkpoint (pooled over the
    folds of a cross-validation, which then decides when to stop:
    ``stop_early=False``).
    """

    def __init__(self, epochs, x_val, y_val, samples, seed, stop_early=True):
        super().__init__()
        self.epochs, self.x_val, self.y_val, self.samples, self.seed = set(epochs), x_val, y_val, samples, seed
        self.stop_early = stop_early
        self.curve, self.scores, self._raw = [], [], []

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 not in self.epochs:
            return
        optimizer, weights = self.model.optimizer, self.model.trainable_variables
        self._raw = [w.numpy() for w in weights]
        if optimizer.use_ema:
            optimizer._overwrite_model_variables_with_average_value(weights)  # what finalize_variable_values does
        self.scores.append(per_point_scores(self.model, self.x_val, self.y_val, self.samples, self.seed))
        self.curve.append({"epochs": epoch + 1, **summarize(self.scores[-1:])})
        self.restore_raw_weights()
        if self.stop_early and _stale(self.curve):
            self.model.stop_training = True

    def restore_raw_weights(self):
        """The weights of the last checkpoint before averaging: ``fit`` ends by swapping the average in,
        and training resumed by another ``fit`` must go on from where it left off."""
        for w, value in zip(self.model.trainable_variables, self._raw):
            w.assign(value)


def validation_folds(num_rows, cross_validation_rows=CROSS_VALIDATION_ROWS):
    """Row indices of the validation block of each fold of ``num_rows`` training rows.

    One block, the last 20 % of the rows (Gal 2018), or, below
    ``cross_validation_rows`` rows, ``FOLDS`` contiguous blocks: the first 80 %
    cut into ``FOLDS - 1``, then the same last 20 %. Contiguous as the holdout
    is, so that the split files' row order means the same in both.
    """
    cut = min(num_rows - 1, max(1, int(round((1 - VALIDATION_FRACTION) * num_rows))))
    last = np.arange(cut, num_rows)
    if num_rows >= cross_validation_rows:
        return [last]
    return [*np.array_split(np.arange(cut), FOLDS - 1), last]


def search_curve(method, params, x, y, folds, num_hidden, budget, checkpoints, samples, seed):
    """Validation scores of one configuration at its checkpoints, until ``PATIENCE`` misses in a row.

    A single holdout is one ``fit`` with :class:`_Checkpoints` deciding when to
    stop. Folds train side by side instead, each ``fit`` going from one
    checkpoint to the next (``initial_epoch``), and the curve is that of the
    validation rows of all folds pooled: every training row scored once, by the
    model that did not train on it.
    """
    tf_keras.backend.clear_session()  # one process trains hundreds of models: free the old graphs
    runs = []
    for rows in folds:
        fit_rows = np.setdiff1d(np.arange(len(x)), rows)
        tf_keras.utils.set_random_seed(seed)
        model = build(method, params, x[fit_rows], y[fit_rows], num_hidden, budget)
        runs.append((model, x[fit_rows], y[fit_rows], x[rows], y[rows]))
    if len(runs) == 1:
        model, x_fit, y_fit, x_val, y_val = runs[0]
        scorer = _Checkpoints(checkpoints, x_val, y_val, samples, seed)
        model.fit(x_fit, y_fit, batch_size=params["batch_size"], epochs=max(checkpoints), verbose=0,
                  callbacks=[scorer])
        return scorer.curve
    curve, done = [], 0
    for epochs in checkpoints:
        parts = []
        for model, x_fit, y_fit, x_val, y_val in runs:
            scorer = _Checkpoints([epochs], x_val, y_val, samples, seed, stop_early=False)
            model.fit(x_fit, y_fit, batch_size=params["batch_size"], initial_epoch=done, epochs=epochs, verbose=0,
                      callbacks=[scorer])
            scorer.restore_raw_weights()
            parts.extend(scorer.scores)
        curve.append({"epochs": epochs, **summarize(parts)})
        done = epochs
        if _stale(curve):
            break
    return curve


def select(method, x_train, y_train, num_hidden, samples, epochs_cap, seed, cross_validation_rows=CROSS_VALIDATION_ROWS):
    """Configuration and epoch count chosen on validation rows of ``x_train`` (see :func:`validation_folds`
    and :func:`choose`)."""
    folds = validation_folds(len(x_train), cross_validation_rows)
    budget = max_epochs(len(x_train), FIXED[method]["batch_size"])
    budget = min(epochs_cap, budget) if epochs_cap else budget
    checkpoints = sorted({max(1, round(budget * fraction)) for fraction in CHECKPOINTS})

    def search(params, epochs):
        return search_curve(
            method, params, x_train, y_train, folds, num_hidden, budget, epochs, num_draws(method, params, samples), seed,
        )

    trials = [_trial(params, search(params, checkpoints)) for params in configurations(method)]
    chosen = choose(trials)
    earlier = sorted({max(1, round(checkpoints[0] * fraction)) for fraction in EARLIER} - {checkpoints[0]})
    if earlier and chosen["epochs"] == checkpoints[0]:
        # The answer lies at the edge of the range searched: the chosen configuration is scored below it too.
        trials[trials.index(chosen)] = _trial(chosen["params"], search(chosen["params"], earlier) + chosen["curve"])
        chosen = choose(trials)
    return {
        "params": {**chosen["params"], "epochs": chosen["epochs"]},
        "validation_ll": chosen["validation_ll"],
        "validation_folds": len(folds),
        "max_epochs": budget,
        "trials": trials,
    }


def _trial(params, curve):
    """A configuration's search record: its curve, and the scores at its best checkpoint."""
    best = _best(curve)
    return {
        "params": params, "epochs": best["epochs"], "validation_ll": best["test_ll"],
        "validation_ll_se": best["test_ll_se"], "validation_rmse": best["rmse"], "curve": curve,
    }


def choose(trials):
    """The one-standard-error rule: the lowest validation RMSE among the trials within one
    standard error of the best validation log-likelihood (that trial's ``std / sqrt(N)``).

    Log-likelihood differences smaller than their standard error are noise of the
    validation rows, and the targets are RMSE as well as log-likelihood.
    """
    best = max(trials, key=lambda trial: trial["validation_ll"])
    tied = [trial for trial in trials if trial["validation_ll"] >= best["validation_ll"] - best["validation_ll_se"]]
    return min(tied, key=lambda trial: trial["validation_rmse"])


# -- one data set -------------------------------------------------------------------------------------


def run_split(method, folder, split, num_hidden, samples, epochs_cap, seed, cross_validation_rows=CROSS_VALIDATION_ROWS):
    """Choose hyperparameters on this split's training rows, train on all of them, score on its test rows."""
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = data.load_uci(folder, split)
    selection = select(
        method, x_train, y_train, num_hidden, max(100, samples // 10), epochs_cap, seed + split, cross_validation_rows
    )
    tuning_seconds = time.perf_counter() - start
    params = selection["params"]
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed + split)
    model = build(method, params, x_train, y_train, num_hidden, selection["max_epochs"])
    model.fit(x_train, y_train, batch_size=params["batch_size"], epochs=params["epochs"], verbose=0)
    result = score(model, x_test, y_test, num_draws(method, params, samples), seed + split)
    return {**result, "seconds": time.perf_counter() - start, "tuning_seconds": tuning_seconds}, selection


def run_split_in_new_process(method, folder, split, num_hidden, samples, epochs_cap, seed, cross_validation_rows):
    """:func:`run_split` in a Python process of its own, which gives all its memory back when it ends.

    TensorFlow keeps memory for every ``fit`` call and every scoring (measured:
    0.7 and 0.3 MB, on one model; neither ``clear_session`` nor ``gc`` gives it
    back), and a cross-validated split makes hundreds of both: one process for
    all of boston's 20 splits grew to 21 GB. The results do not depend on it:
    every split sets its own seeds.
    """
    request = {
        "method": method, "folder": str(folder), "split": split, "num_hidden": num_hidden, "samples": samples,
        "epochs_cap": epochs_cap, "seed": seed, "cross_validation_rows": cross_validation_rows,
    }
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "split.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--run-split", json.dumps(request), str(out)]
        status = subprocess.run(command).returncode  # its standard error is ours: a traceback shows above
        if status != 0:
            raise RuntimeError(f"{folder.name} split {split}: its process failed with exit status {status}.")
        answer = json.loads(out.read_text())
    return answer["result"], answer["selection"]


def _run_split_request(request, out):
    """The other end of :func:`run_split_in_new_process` (``--run-split REQUEST OUT``)."""
    request = json.loads(request)
    request["folder"] = Path(request["folder"])
    result, selection = run_split(**request)
    Path(out).write_text(json.dumps({"result": result, "selection": selection}))


def mean_and_se(values):
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std() / np.sqrt(len(values)))


def run_dataset(method, folder, num_splits, samples, epochs_cap, seed, log, jobs=1,
                cross_validation_rows=CROSS_VALIDATION_ROWS):
    """Every split of ``folder``, ``jobs`` at a time, each in a new process; the results in split order."""
    settings = data.uci_settings(folder)
    num_hidden = settings.get("n_hidden", 50)
    splits = min(num_splits or data.uci_num_splits(folder), data.uci_num_splits(folder))
    per_split, selections = [], []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(run_split_in_new_process, method, folder, split, num_hidden, samples, epochs_cap, seed,
                        cross_validation_rows)
            for split in range(splits)
        ]
        try:
            for split, future in enumerate(futures):
                result, selection = future.result()
                per_split.append(result)
                selections.append(selection)
                log(f"{folder.name} split {split}: chose {selection['params']}; "
                    + ", ".join(f"{k} {v:.4g}" for k, v in result.items()))
        except BaseException:
            for future in futures:  # the splits not started yet; the running ones end before the error shows
                future.cancel()
            raise
    rmse_mean, rmse_se = mean_and_se([s["rmse"] for s in per_split])
    ll_mean, ll_se = mean_and_se([s["test_ll"] for s in per_split])
    return {
        "rmse_mean": rmse_mean,
        "rmse_se": rmse_se,
        "test_ll_mean": ll_mean,
        "test_ll_se": ll_se,
        "coverage_95_mean": float(np.mean([s["coverage_95"] for s in per_split])),
        "num_splits": splits,
        "rmse": [s["rmse"] for s in per_split],
        "test_ll": [s["test_ll"] for s in per_split],
        "coverage_95": [s["coverage_95"] for s in per_split],
        "seconds": [s["seconds"] for s in per_split],
        "seconds_per_split": float(np.mean([s["seconds"] for s in per_split])),
        "tuning_seconds": float(sum(s["tuning_seconds"] for s in per_split)),
        "num_hidden": num_hidden,
        "num_samples": samples,
        "fixed": FIXED[method],
        "grid": _recorded_grid(method),
        "tuned_on": _tuned_on(selections),
        "hyperparameters": [selection["params"] for selection in selections],
        "selection": selections,
        "published_rmse": PUBLISHED_RMSE.get(folder.name, {}),
        "published_test_ll": PUBLISHED_LL.get(folder.name, {}),
    }


def _tuned_on(selections):
    folds = sorted({selection.get("validation_folds", 1) for selection in selections})
    return " or ".join(
        "each split: the last 20 % of its training rows held out for validation" if k == 1 else
        f"each split: {k}-fold cross-validation over its training rows (contiguous blocks, the last one the "
        "last 20 %), validation scores pooled over the folds"
        for k in folds
    )


# -- report ------------------------------------------------------------------------------------------


def _number(value, digits=2):
    return f"{value:.{digits}f}" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}"


def _pm(mean, se):
    digits = 2 if abs(mean) >= 0.1 else 4
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def targets(name, result):
    """Which targets this result meets, compared at the published precision (2 decimals)."""
    rmse, ll = PUBLISHED_RMSE.get(name, {}), PUBLISHED_LL.get(name, {})
    ours_ll, ours_rmse = round(result["test_ll_mean"], 2), round(result["rmse_mean"], 2)
    checks = {}
    if "i" in ll:
        checks["LL >= MCVI (i)"] = ours_ll >= ll["i"][0]
    if "c" in ll:
        checks["LL >= MC dropout (c)"] = ours_ll >= ll["c"][0]
    if "c" in rmse:
        checks["RMSE <= MC dropout (c)"] = ours_rmse <= rmse["c"][0]
    if "g" in ll:
        checks["LL >= DVI (g, stretch)"] = ours_ll >= ll["g"][0]
    return checks


def report_markdown(report):
    """The results table, the chosen hyperparameters and how the targets are judged."""
    results, method = report["datasets"], report["method"]
    samples = {result["num_samples"] for result in results.values()}
    lines = [
        f"# UCI regression: tfp_bnn ({method}) beside the published results",
        "",
        "Protocol of PUBLISHED.md §7 (benchmarks/uci.py docstring): the given splits, one hidden layer of "
        f"{_hidden_units_text(results)}, training-split standardisation inside the model, test RMSE and test "
        f"log-likelihood of the predictive mixture of T = {', '.join(map(str, sorted(samples)))} draws in "
        "original units, mean ± standard error over splits. Hyperparameters chosen separately for every "
        "split on validation rows from its training rows (never on test rows): the last 20 % or 5-fold "
        "cross-validation, as column 'validation' says (by default 5-fold for training splits of fewer than "
        "1,000 rows); then the model retrained on all of them. Targets are judged at the published precision "
        "(our means rounded to 2 decimals). Letters are PUBLISHED.md's columns.",
        "",
        table(results, method),
        "",
        "Settings shared by every configuration: "
        + ", ".join(f"{k}={v}" for k, v in next(iter(results.values())).get("fixed", {}).items())
        + ". Chosen per split (epochs by validation log-likelihood, then the configuration by the "
        "one-standard-error rule):",
        "",
        "| data set | validation | chosen per split | epochs: median [min, max] | validation LL (mean over splits) "
        "| tuning s | total s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        choices = result["hyperparameters"]
        counts = _choice_counts(result.get("grid", {}), result.get("fixed", {}), choices)
        epochs = [c["epochs"] for c in choices]
        validation = np.mean([selection["validation_ll"] for selection in result["selection"]])
        lines.append(
            f"| {name} | {_validation(result)} | {'; '.join(counts) or '—'} | {int(np.median(epochs))} [{min(epochs)}, {max(epochs)}] "
            f"| {validation:.3f} | {result['tuning_seconds']:.0f} | {sum(result['seconds']):.0f} |"
        )
    return "\n".join(lines)


def _hidden_units_text(results):
    """``"50 units (100 for protein-tertiary-structure)"``: the widths the results record."""
    widths = {name: result["num_hidden"] for name, result in results.items()}
    usual = max(sorted(set(widths.values())), key=list(widths.values()).count)
    others = ", ".join(f"{width} for {name}" for name, width in widths.items() if width != usual)
    return f"{usual} units" + (f" ({others})" if others else "")


def _validation(result):
    folds = sorted({selection.get("validation_folds", 1) for selection in result["selection"]})
    return " / ".join("last 20 %" if k == 1 else f"{k}-fold" for k in folds)


def _choice_counts(grid, fixed, choices):
    """How often each grid value (a grid) or each configuration (a list) was chosen, as text."""
    if isinstance(grid, dict):
        return [
            ", ".join(f"{key}={value} ×{sum(c[key] == value for c in choices)}" for value in values)
            for key, values in grid.items()
        ]

    def chosen(point, choice):
        return all(choice.get(key) == value for key, value in {**fixed, **point}.items())

    return [", ".join(
        " ".join(f"{key}={value}" for key, value in point.items()) + f" ×{sum(chosen(point, c) for c in choices)}"
        for point in grid
    )]


def table(results, method):
    """Markdown table: ours beside the published columns, then the targets met."""
    def published(column, name, key):
        entry = column.get(name, {}).get(key)
        return f"{entry[0]:.2f} ± {entry[1]:.2f}" if entry else "—"

    lines = [
        f"| data set | splits | RMSE tfp_bnn ({method}) | RMSE (c) MC dropout | RMSE (f) Deep Ens. "
        f"| test LL tfp_bnn ({method}) | LL (c) MC dropout | LL (f) Deep Ens. | LL (g) DVI | LL (i) MCVI "
        "| s / split | targets met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        checks = targets(name, result)
        met = ", ".join(f"{'✓' if ok else '✗'} {label}" for label, ok in checks.items()) or "—"
        lines.append(
            f"| {name} | {result['num_splits']} | {_pm(result['rmse_mean'], result['rmse_se'])} "
            f"| {published(PUBLISHED_RMSE, name, 'c')} | {published(PUBLISHED_RMSE, name, 'f')} "
            f"| {_pm(result['test_ll_mean'], result['test_ll_se'])} "
            f"| {published(PUBLISHED_LL, name, 'c')} | {published(PUBLISHED_LL, name, 'f')} "
            f"| {published(PUBLISHED_LL, name, 'g')} | {published(PUBLISHED_LL, name, 'i')} "
            f"| {result['seconds_per_split']:.0f} | {met} |"
        )
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------------------------



def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="folder of UCI data set folders (required to run)")
    parser.add_argument("--datasets", help="comma-separated folder names (default: all in --data-dir)")
    parser.add_argument("--splits", type=_positive_int, help="use the first K splits (default: all)")
    parser.add_argument("--method", choices=METHODS, default="bnn")
    parser.add_argument("--samples", type=_positive_int, default=1000, help="draws T for the test scores (>= 100)")
    parser.add_argument("--max-epochs", type=_positive_int, help="cap the epoch budget (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=_positive_int, default=1, help="splits run side by side (default 1)")
    parser.add_argument(
        "--cross-validation-rows", type=int, default=CROSS_VALIDATION_ROWS, metavar="N",
        help=f"choose by {FOLDS}-fold cross-validation on training splits of fewer than N rows, on the last 20 %% "
        f"of the rows otherwise (default {CROSS_VALIDATION_ROWS}; 0: never cross-validate)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument(
        "--table-from", type=Path, nargs="+", metavar="JSON",
        help="only print (and --markdown) the tables of results files; several files (say, from runs of "
        "different --datasets in parallel processes) are merged, and --json writes the merged results",
    )
    parser.add_argument("--run-split", nargs=2, help=argparse.SUPPRESS)  # one split, in a new process
    return parser.parse_args(argv)


def dataset_folders(data_dir, names):
    available = {folder.name: folder for folder in data.uci_datasets(data_dir)}
    if not available:
        raise UsageError(f"{data_dir} holds no UCI data set folders (folders with data.txt).")
    if not names:
        return list(available.values())
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if not wanted:
        raise UsageError(f"--datasets {names!r} names no data set; choose from {', '.join(available)}.")
    if len(set(wanted)) < len(wanted):
        raise UsageError(f"--datasets {names!r} names a data set twice.")
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise UsageError(
            f"no data set folder {', '.join(unknown)} in {data_dir}; choose from {', '.join(available)}."
        )
    return [available[name] for name in wanted]


def main(argv=None):
    args = parse_args(argv)
    # kl_scale weighs the KL by kl_scale / N on purpose (a tempered posterior, see build): fit's
    # warning of a kl_weight for another number of rows than it trains on is expected there.
    warnings.filterwarnings("ignore", message="kl_weight", category=UserWarning)
    if args.run_split:
        _run_split_request(*args.run_split)
        return 0
    try:
        for path in (args.json, args.markdown):
            if path is not None and not path.parent.is_dir():
                raise UsageError(f"{path.parent}: folder not found for {path.name}.")
        if args.table_from:
            report = merged_reports(args.table_from)
            try:  # before anything is written: a file this table cannot read must not replace --json
                markdown = report_markdown(report)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise UsageError(
                    f"--table-from {' '.join(map(str, args.table_from))}: not results of this uci.py "
                    f"(cannot read {error!r} in them)."
                ) from None
        else:
            if args.data_dir is None:
                raise UsageError("--data-dir is required: the folder that holds the UCI data set folders.")
            folders = dataset_folders(args.data_dir, args.datasets)
            if args.samples < 100:
                raise UsageError(f"--samples must be at least 100 (the protocol's T >= 100), got {args.samples}.")
            split_counts = {folder.name: checked_splits(folder, args.splits) for folder in folders}
    except (UsageError, data.DataError) as error:
        print(f"uci.py: error: {error}", file=sys.stderr)
        return 2
    if args.table_from:
        _write(args.json, json.dumps(report, indent=1) + "\n")
        print(markdown)
        _write(args.markdown, markdown + "\n")
        return 0

    def log(message):
        print(message, file=sys.stderr, flush=True)

    results = {}
    partial = None if args.json is None else args.json.with_name(args.json.name + ".partial")
    for folder in folders:
        results[folder.name] = run_dataset(
            args.method, folder, split_counts[folder.name], args.samples, args.max_epochs, args.seed, log,
            args.jobs, args.cross_validation_rows,
        )
        report = {"method": args.method, "protocol": __doc__, "datasets": results}
        if partial:  # after every data set, so a long run that dies leaves its finished part behind
            partial.write_text(json.dumps(report, indent=1) + "\n")
    if partial:  # only a finished run replaces an earlier results file
        _write(args.json, partial.read_text(), replace_with=partial)
    markdown = report_markdown(report)
    print(markdown)
    _write(args.markdown, markdown + "\n")
    return 0


def merged_reports(paths):
    """The results of several ``--json`` files of one method and distinct data sets, as one report."""
    reports = []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:  # missing, unreadable, not JSON
            raise UsageError(f"--table-from {path}: cannot read it as a results file ({error}).") from None
        if not isinstance(report, dict) or not isinstance(report.get("datasets"), dict) or "method" not in report:
            raise UsageError(f"--table-from {path}: not a results file of uci.py (no method and datasets).")
        reports.append(report)
    methods = sorted({report["method"] for report in reports})
    if len(methods) > 1:
        raise UsageError(f"--table-from files hold results of different methods ({', '.join(methods)}); "
                         "give the files of one method.")
    datasets = {}
    for path, report in zip(paths, reports):
        for name, result in report["datasets"].items():
            if name in datasets:
                raise UsageError(f"{name} is in more than one --table-from file (again in {path}); keep one.")
            datasets[name] = result
    return {**reports[0], "datasets": dict(sorted(datasets.items()))}


def checked_splits(folder, wanted):
    """How many splits of ``folder`` to run, after reading each one: bad files fail here, before any training."""
    available = data.uci_num_splits(folder)
    splits = min(wanted or available, available)
    if wanted and wanted > available:
        print(f"uci.py: note: {folder.name} has {available} splits; running {available}.", file=sys.stderr)
    for split in range(splits):
        data.load_uci(folder, split)
    return splits


def _write(path, text, replace_with=None):
    """Write ``text`` to ``path`` (if given), saying so when it replaces a file."""
    if path is None:
        return
    if path.exists():
        print(f"uci.py: replacing {path}", file=sys.stderr)
    if replace_with is not None:
        os.replace(replace_with, path)
    else:
        path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
