"""Predictions with uncertainty: ``T`` weight draws of the whole network in one graph.

For inputs ``x`` the predictive distribution is the mixture over weight draws
``w_t ~ q``: ``p(y | x) ~= 1/T sum_t p(y | x, w_t)``. Its variance splits by
the law of total variance,

.. math::

   Var[y] = E_t[Var(y | w_t)] + Var_t[E(y | w_t)]
          = aleatoric (noise in the data) + epistemic (ignorance of the weights),

and for classifiers the entropy splits the same way:
``H[p_mean] = E_t H[p_t] + MI`` (expected entropy, aleatoric; mutual
information between label and weights, epistemic).

The ``T`` draws are independent networks: inside
:func:`tfp_bnn.sampling.weight_draws` every Bayesian layer draws ``T`` weight
samples at once; a loop in the graph then runs the network below the head
once per draw on all inputs of a chunk (a 2-D matmul per layer and draw), and
only the head's inputs are stacked to ``[T * B]``. MC dropout and ensembles,
random per row or per member, run a stacked batch instead: copy ``t`` of the
batch goes through draw ``t`` (one batched matmul). All of it is one
``tf.function``. Copying the batch ``T`` times through an ordinary forward
pass would instead share one weight draw among the copies.
Inputs go through in chunks, so the graph's memory stays bounded for any ``N``
(:func:`predict` still returns the ``(T, N, ...)`` per-draw arrays, written into
place chunk by chunk; :func:`score` keeps only per-example values); the weights
are drawn once per call, in a graph of their own, and every chunk reuses them
(the same ``T`` networks for all inputs, and ``T`` copies of a large layer's
weights are not drawn again for each chunk).

The graph of one chunk is built by :func:`predictive_summary` (and
:func:`predictive_draws`, :func:`predictive_samples`), plain functions of
tensors that any ``tf.function`` can call: :mod:`tfp_bnn.serving` exports
the same graph for TensorFlow Serving.

Example:

>>> import tfp_bnn
>>> model = tfp_bnn.make_regressor((1,), train_size=100)  # fit it first
>>> result = tfp_bnn.predict(model, [[0.0], [6.0]], num_samples=100, seed=0)
>>> result.mean.shape, result.aleatoric_stddev.shape, result.epistemic_stddev.shape
((2, 1), (2, 1), (2, 1))
>>> bool((result.lower < result.mean).all() and (result.mean < result.upper).all())
True
"""

import dataclasses
import threading

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_bnn import _warnings
from tfp_bnn import heads as heads_lib
from tfp_bnn import metrics, sampling, validation
from tfp_bnn._factory import DistributionLayer
from tfp_bnn.baselines import EnsembleDense, MCDropout
from tfp_bnn.heads import Head
from tfp_bnn.layers import TFP_VARIATIONAL_LAYERS, _BayesianLayer

__all__ = [
    "predict",
    "log_likelihoods",
    "score",
    "RegressionPrediction",
    "ClassificationPrediction",
    "predictive_draws",
    "predictive_summary",
    "predictive_samples",
]

# Rows (inputs x draws) per chunk, and the cap on numbers per input row. Fewer,
# larger chunks are faster (bigger matmuls per draw, fewer calls): 2**17 rows of a
# 256-unit layer are 128 MiB per activation (benchmarks/speed.py).
_ROWS_PER_CHUNK = 2**17
_ELEMENTS_PER_CHUNK = 2**22
# Rows (inputs x draws) of the head's per-draw outputs per chunk when the draws run
# one at a time: for T = 100, chunks of ~10,000 inputs (2x256 MLP: 0.61 s against
# 0.82 s in chunks of 1,310 for 10,000 inputs).
_HEAD_ROWS_PER_CHUNK = 2**20
# Stacked rows (inputs x draws) from which looping over the draws is faster than
# one stacked batch through every layer (2x50 MLP: even at ~1,000 inputs, T = 100).
_LOOP_FROM_ROWS = 2**16
# ... and numbers in the stacked batch's widest tensor (an input row or a layer's output
# per row, times the rows) from which the loop is taken whatever the row count: 128 MiB
# of float32, so MLPs whose inputs and layers are at most 512 wide keep the row rule alone. A row of a 32x32
# convolution with 32 filters holds 32,768 numbers: 2**16 stacked rows of it were 8 GiB.
_LOOP_FROM_ELEMENTS = 2**25
# Numbers (inputs x draws x values per input and draw: units, or classes per step) of a per-draw
# array that score holds at once: 2**23 are 32 MiB per float32 array (draw means, variances,
# probabilities, log-likelihoods), whatever the number of inputs, classes or steps.
_SCORE_NUMBERS = 2**23


@dataclasses.dataclass(frozen=True)
class RegressionPrediction:
    """Predictive mean and variance split, each ``(N, units)``.

    ``mean``, ``aleatoric_variance`` (the draws' mean variance),
    ``epistemic_variance`` (the variance of the draws' means), ``lower``,
    ``upper`` and the properties ``total_variance``, ``stddev``,
    ``aleatoric_stddev``, ``epistemic_stddev`` are ``(N, units)``; ``level`` is a
    float. ``lower``/``upper`` bound the central ``level`` interval of the predictive
    mixture (its quantiles, not mean +- 2 sd); ``draw_means`` and
    ``draw_variances`` hold the ``(T, N, units)`` per-draw moments.

    Example:

    >>> import numpy as np, tfp_bnn
    >>> result = tfp_bnn.predict(tfp_bnn.make_regressor((1,), train_size=100), [[0.0]], num_samples=50, seed=0)
    >>> bool(np.allclose(result.stddev ** 2, result.aleatoric_stddev ** 2 + result.epistemic_stddev ** 2))
    True
    """

    mean: np.ndarray
    aleatoric_variance: np.ndarray
    epistemic_variance: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    draw_means: np.ndarray
    draw_variances: np.ndarray

    @property
    def total_variance(self):
        return self.aleatoric_variance + self.epistemic_variance

    @property
    def stddev(self):
        return np.sqrt(self.total_variance)

    @property
    def aleatoric_stddev(self):
        return np.sqrt(self.aleatoric_variance)

    @property
    def epistemic_stddev(self):
        return np.sqrt(self.epistemic_variance)


@dataclasses.dataclass(frozen=True)
class ClassificationPrediction:
    """Mean class probabilities ``(N, K)`` and the entropy split, each ``(N,)`` (nats).

    ``probabilities`` ``(N, K)`` (``K = 2``, ``[P(y = 0), P(y = 1)]``, for a
    ``BernoulliHead``); ``predictive_entropy`` ``H[p_mean]``, ``expected_entropy``
    ``E_t H[p_t]`` (aleatoric), ``mutual_information`` (epistemic) and the property
    ``predicted_class`` (int64), each ``(N,)``; ``draw_probabilities`` ``(T, N, K)``.
    With a label per time step or pixel (a head over ``(N, *steps, K)``, or
    ``L`` binary labels as ``(N, L, 1)``) every array has the ``steps`` after
    ``N``: ``(N, *steps, K)``, ``(N, *steps)`` and ``(T, N, *steps, K)``.

    Example:

    >>> import numpy as np, tfp_bnn
    >>> model = tfp_bnn.make_classifier((4,), 3, train_size=100)
    >>> result = tfp_bnn.predict(model, np.zeros((2, 4)), num_samples=50, seed=0)
    >>> result.probabilities.shape, result.draw_probabilities.shape
    ((2, 3), (50, 2, 3))
    >>> bool(np.allclose(result.predictive_entropy, result.expected_entropy + result.mutual_information, atol=1e-5))
    True
    """

    probabilities: np.ndarray
    predictive_entropy: np.ndarray
    expected_entropy: np.ndarray
    mutual_information: np.ndarray
    draw_probabilities: np.ndarray

    @property
    def predicted_class(self):
        return np.argmax(self.probabilities, axis=-1)


def predict(model, x, *, num_samples=100, seed=None, level=0.95, batch_size=None):
    """Predictive distribution of ``model`` at ``x`` from ``num_samples`` weight draws.

    Args:
      model: a Keras model ending in a :mod:`tfp_bnn.heads` head.
      x: inputs, ``(N, *input_shape)``.
      num_samples: ``T``, the number of weight draws.
      seed: int for reproducible draws (identical numbers for the same seed,
        model and ``batch_size``); ``None`` draws afresh on each call.
      level: coverage of the central prediction interval (regression).
      batch_size: inputs per chunk; by default as many as keep a chunk of
        ``T * batch_size`` rows within a fixed memory budget.

    Each model keeps one graph per ``(num_samples, level)`` it has predicted
    with (about 10 MB for a 1x50 network; new inputs, batch sizes and seeds
    reuse it): a service should offer a few fixed levels, not any value.

    A model compiled with ``jit_compile=True`` predicts through XLA (not MC
    dropout): faster for small networks, a compilation per new input shape.

    Returns:
      :class:`RegressionPrediction` or :class:`ClassificationPrediction`,
      after the head's ``task``.

    Example:

    >>> import tfp_bnn
    >>> from tfp_bnn.prediction import predict
    >>> model = tfp_bnn.make_regressor((1,), train_size=100)  # fit it first
    >>> result = predict(model, [[0.0], [1.0], [2.0]], num_samples=50, seed=0)
    >>> result.mean.shape, result.epistemic_stddev.shape, result.draw_means.shape
    ((3, 1), (3, 1), (50, 3, 1))
    """
    head = _head(model)
    validation.check_level(level)
    x, num_samples, seed, batch_size = _checked(model, x, num_samples, seed, batch_size)
    jit = _jit_compile(model)
    function = _cached(
        model, ("predict", num_samples, float(level), jit), lambda: _summary_fn(model, num_samples, level, jit)
    )
    parts = _run_chunks(model, function, (x,), num_samples, seed, batch_size)
    if head.task == "classification":
        return ClassificationPrediction(**parts)
    return RegressionPrediction(level=float(level), **parts)


def log_likelihoods(model, x, y, *, num_samples=100, seed=None, batch_size=None):
    """``log p(y_n | x_n, w_t)`` for ``T`` weight draws, shape ``(T, N)``.

    Arguments as in :func:`predict`, with ``y`` the targets of ``x``.

    ``y_n`` is example n's whole target: for a classifier with a label per time
    step (or pixel) it is the sum over the steps, the joint log-likelihood of the
    sequence under draw t. Feed it to :func:`tfp_bnn.metrics.mixture_nll` for the
    negative log-likelihood of the Monte Carlo predictive mixture. A
    ``PointClassHead`` is scored by each draw's softmax (its training
    likelihood), while :func:`predict` reports its draws' votes.

    Example:

    >>> import tfp_bnn
    >>> from tfp_bnn.prediction import log_likelihoods
    >>> model = tfp_bnn.make_regressor((1,), train_size=100)  # fit it first
    >>> log_likelihoods(model, [[0.0], [1.0]], [[0.5], [1.5]], num_samples=50, seed=0).shape
    (50, 2)
    """
    head = _head(model, "log_likelihoods")
    x, num_samples, seed, batch_size = _checked(model, x, num_samples, seed, batch_size, "log_likelihoods")
    heads_lib._sync_step_shapes(model)
    y = validation.check_targets(y, head, num_examples=len(x))
    jit = _jit_compile(model)
    function = _cached(
        model, ("log_likelihoods", num_samples, jit), lambda: _log_likelihood_fn(model, num_samples, jit)
    )
    return _run_chunks(model, function, (x, y), num_samples, seed, batch_size)["log_likelihoods"]


def score(model, x, y, *, num_samples=100, seed=None, level=0.95, batch_size=None):
    """The usual scores of ``model``'s predictive distribution on ``(x, y)``, a dict of floats.

    The :mod:`tfp_bnn.metrics` of one set of ``num_samples`` weight draws (for
    ``seed=None``, a seed drawn for the call from NumPy's global generator, as
    :func:`predict` draws one: ``tf_keras.utils.set_random_seed`` makes it
    repeat), in the targets' units:

    * regression: ``rmse`` of the predictive mean; ``nll``, the mean negative
      log-likelihood of the Monte Carlo predictive mixture
      (:func:`tfp_bnn.metrics.mixture_nll`); ``coverage_95`` and ``width_95``,
      the fraction of targets inside the central ``level`` interval and its
      mean width (the suffix is ``level`` in percent: ``coverage_90`` for 0.9).
      ``nll`` is per example, as :func:`log_likelihoods`: for a head of several
      units the joint NLL of the example's targets (about the sum of one-target
      models' NLLs, not their mean), while ``rmse``, coverage and width are per
      target value. A ``PointHead``'s ``nll`` is that of its training likelihood, a
      Normal of scale ``target_scale`` around each draw's prediction:
      ``log target_scale + (error / target_scale)**2 / 2`` plus a constant, set
      by the ``target_scale`` chosen, not a fitted noise (not comparable with a
      distribution head's), while its interval is that of the draws' predictions
      alone (epistemic).
      For counts (``PoissonHead``) the interval's end counts belong to it, so a
      calibrated model covers more than ``level``: rates of 0.4 to 7 cover
      0.75 at ``level=0.5`` and 0.98 at 0.95;
    * classification: ``accuracy``; ``nll``, the mixture's (a
      ``PointClassHead``'s: of its draws' vote shares, clipped at 1e-12, as
      :func:`tfp_bnn.metrics.categorical_nll`); ``brier``; ``ece``, the expected
      calibration error over 10 bins. With a label per time step, ``nll`` is
      per example (the sum over its steps), except a ``PointClassHead``'s,
      which is per step like the others.

    Arguments as in :func:`predict`, with ``y`` the targets of ``x``.

    Example:

    >>> import numpy as np, tfp_bnn
    >>> model = tfp_bnn.make_regressor((1,), train_size=100)  # fit it first
    >>> scores = tfp_bnn.score(model, np.zeros((5, 1)), np.ones((5, 1)), num_samples=50, seed=0)
    >>> sorted(scores)
    ['coverage_95', 'nll', 'rmse', 'width_95']
    """
    head = _head(model, "score")
    x, num_samples, seed, batch_size = _checked(model, x, num_samples, seed, batch_size, "score")
    heads_lib._sync_step_shapes(model)
    y = validation.check_targets(y, head, num_examples=len(x))
    validation.check_level(level)
    if seed is None:  # predict and log_likelihoods then score the same draws
        seed = _fresh_seed()
    # Scored a slice of whole chunks at a time, keeping only per-example values: the (T, N) draws
    # and log-likelihoods of all x at once took O(T * N) memory (N = 10**6, T = 100: 2.4 GB) for
    # four numbers. The slices end at chunk boundaries and share the seed, so each chunk sees
    # the inputs and random numbers it saw in one call: the same scores, bit for bit.
    batch_size = batch_size or _default_batch_size(model, x, num_samples)
    rows = batch_size * max(1, _SCORE_NUMBERS // (num_samples * _values_per_draw(head) * batch_size))
    draws = {"num_samples": num_samples, "seed": seed, "batch_size": batch_size}
    pointwise = isinstance(head, heads_lib.PointClassHead)
    kept = {"mean": [], "lower": [], "upper": [], "probabilities": [], "log_likelihood": []}
    for start in range(0, len(x), rows):
        x_part, y_part = x[start : start + rows], y[start : start + rows]
        result = predict(model, x_part, level=level, **draws)
        for key in ("mean", "lower", "upper", "probabilities"):
            if hasattr(result, key):
                kept[key].append(getattr(result, key))
        if not pointwise:  # the mixture's exact log-mean-exp: no clip, no float32 underflow
            kept["log_likelihood"].append(
                metrics.mixture_log_likelihoods(log_likelihoods(model, x_part, y_part, **draws))
            )
        del result
    kept = {key: np.concatenate(parts) for key, parts in kept.items() if parts}
    nll = None if pointwise else float(-np.mean(kept["log_likelihood"]))
    if head.task == "classification":
        probabilities = kept["probabilities"].reshape(-1, kept["probabilities"].shape[-1])
        labels = np.reshape(y, -1)
        mask = _padding_mask_array(model, x)
        if mask is not None:  # padded steps are no labels: accuracy, Brier and ECE over the others
            probabilities, labels = probabilities[mask.reshape(-1)], labels[mask.reshape(-1)]
        if pointwise:
            nll = metrics.categorical_nll(labels, probabilities)  # vote shares: a share of 0 is real
        return {
            "accuracy": metrics.accuracy(labels, probabilities),
            "nll": nll,
            "brier": metrics.brier_score(labels, probabilities),
            "ece": metrics.expected_calibration_error(labels, probabilities),
        }
    percent = f"{float(level) * 100:.10g}"  # 10 digits: 0.9999999 is not "100"
    return {
        "rmse": metrics.rmse(y, kept["mean"]),
        "nll": nll,
        f"coverage_{percent}": metrics.interval_coverage(y, kept["lower"], kept["upper"]),
        f"width_{percent}": metrics.interval_width(kept["lower"], kept["upper"]),
    }


def _values_per_draw(head):
    """Numbers per input in predict's largest per-draw array: a value per unit, or a probability per class, per step."""
    per_step = getattr(head, "num_classes", head.units) if head.task == "classification" else head.units
    return int(np.prod([d or 1 for d in head._step_shape], dtype=np.int64)) * int(per_step)


def _checked(model, x, num_samples, seed, batch_size, what="predict"):
    """The arguments every entry point shares, checked before any graph runs."""
    validation.check_eager_outside_functions(f"tfp_bnn.{what}")
    input_shape = _input_shape(model, what)
    _refuse_tfp_variational_layers(model)
    if isinstance(x, tf.data.Dataset):
        x = validation.dataset_inputs(x, input_shape)
    elif isinstance(x, tf_keras.utils.Sequence) or callable(getattr(x, "__next__", None)):
        raise TypeError(
            f"x is a {type(x).__name__}; tfp_bnn.predict and log_likelihoods take the inputs as an array "
            "or a tf.data.Dataset (a generator's batches, (x, ...) tuples or x alone: "
            "np.concatenate([b[0] if isinstance(b, (tuple, list)) else b for b in batches]))."
        )
    elif isinstance(x, (dict, list, tuple)):
        x = validation.single_input(model, x)  # Keras's other spellings of one input, as fit takes them
    num_samples = validation.check_num_samples(num_samples, model)
    x = validation.check_inputs(x, input_shape, validation.model_input_dtype(model))
    return x, num_samples, validation.check_seed(seed), validation.check_batch_size(batch_size)


def _input_shape(model, what="predict"):
    """One example's shape: prediction (and serving) build their graphs for one input of fixed shape."""
    try:
        shape = validation.model_input_shape(model)
    except AttributeError:
        if isinstance(model, tf_keras.Sequential):
            raise TypeError(
                f"This Sequential model has not been built, so its input shape is unknown; start it with "
                f"tf_keras.Input(shape) or call model.build((None, ...)) before {what}."
            ) from None
        raise TypeError(
            f"{type(model).__name__} has no input shape (a subclassed model): {what} needs a Functional or "
            "Sequential model, e.g. tfp_bnn.BayesianModel(inputs, outputs) around the same layers."
        ) from None
    if isinstance(shape, list):
        raise TypeError(
            f"{what} takes models with one input; this one has {len(shape)}. Give the model one input "
            "that holds them all (e.g. np.concatenate([x1, x2], axis=1)) and split it inside the model "
            "(tf_keras.layers.Lambda(lambda x: tf.split(x, [d1, d2], axis=1)))."
        )
    if any(d is None for d in shape[1:]):
        raise ValueError(
            f"The model's input shape {tuple(shape)} has unknown dimensions besides the batch; {what} needs "
            "a fixed one (pad sequences to one length, e.g. tf_keras.Input((50, 3)))."
        )
    _relax_inferred_batch(model, shape)
    return tuple(int(d) for d in shape[1:])


def _relax_inferred_batch(model, shape):
    """A Sequential without ``Input`` built on data: its graph network for any batch size, now.

    Such a model takes its input shape from the first batch it met (``fit``'s 32 rows), and
    the first call with another batch size rebuilds its graph network: Keras calls every
    layer again on symbolic inputs in a scratch graph. Inside the graphs that predict, the
    Bayesian layers drew (and recorded) weights there too, and tracing failed with an
    InaccessibleTensorError. Rebuilt here, outside any sampling mode, for an unknown batch.
    """
    if isinstance(model, tf_keras.Sequential) and shape[0] is not None:
        model._build_graph_network_for_inferred_shape((None, *shape[1:]), model.inputs[0].dtype)


def _refuse_tfp_variational_layers(model):
    """TFP's own variational layers draw one weight sample per call, whatever the sampling mode.

    In one graph all ``T`` stacked copies would then share that draw: an
    epistemic variance of nearly zero, without an error. A prior or posterior
    layer that no tfp_bnn layer owns gets a warning for the same reason.
    """
    layers = list(model._flatten_layers(include_self=False))  # one walk for both checks (per predict call)
    tfp_layers = [layer for layer in layers if isinstance(layer, TFP_VARIATIONAL_LAYERS)]
    if tfp_layers:
        raise TypeError(
            f"{type(tfp_layers[0]).__name__} is one of TFP's variational layers, which draw one weight sample "
            "per call: tfp_bnn.predict's T draws in one graph would all share it. Use tfp_bnn.BayesianDense or "
            "BayesianConv1D/2D/3D (the same estimators, priors and posteriors), or loop over model(x) yourself."
        )
    _warn_of_own_posterior_layers(layers)


def _warn_of_own_posterior_layers(layers):
    """Warn of a prior/posterior layer that no tfp_bnn Bayesian layer owns: a user's layer samples it.

    tfp_bnn's layers draw ``T`` weight samples under :func:`predict` through
    :mod:`tfp_bnn.sampling`'s mode; a user's layer that calls ``posterior.sample()``
    itself draws once per call, and the ``T`` stacked copies of a batch share
    that draw. A Bayesian embedding of this kind had an epistemic std below
    1e-7 (for 4 inputs and for 2,048), against 0.34-0.38 by 200 separate
    passes; with a BayesianDense after it, 1.3e-6 for 4 inputs and 0.36 for
    2,048 (there the draws are looped, one network at a time): it depended
    on the number of inputs.
    """
    # getattr: a Bayesian layer that was never called (one a custom layer holds but does not use) has none yet.
    owned = {id(owned) for layer in layers if isinstance(layer, _BayesianLayer)
             for owned in (getattr(layer, "posterior", None), getattr(layer, "prior", None))}
    own = [layer for layer in layers if isinstance(layer, DistributionLayer) and id(layer) not in owned]
    if own:
        _warnings.warn(
            f"{type(own[0]).__name__} {own[0].name!r} is a prior or posterior layer that no tfp_bnn Bayesian "
            "layer owns: if your layer samples it itself, tfp_bnn.predict's T draws of a batch share one "
            "sample (an epistemic variance of about 0). Build the layer on tfp_bnn.BayesianDense or "
            "BayesianConv1D/2D/3D, or check the epistemic variance against a loop over model(x)."
        )


# -- graph functions -----------------------------------------------------------

def _functions(model):
    """The model's graph functions, by key.

    On the model itself, not in a module-level WeakKeyDictionary: the cached
    tf.functions close over the model, so a weak key would be kept alive by
    its own value and no model that ever predicted could be freed. Stored in
    ``__dict__`` directly, out of Keras's attribute tracking (and the saved
    file); the model <-> functions cycle is collected with the model.
    """
    # Traced for the layers the model has now: a Sequential model changes them with pop()
    # and add() (a new head for transfer learning), and its old graphs would go on
    # predicting with the layers it had (Keras's own step functions are reset by compile).
    layers = _layer_structure(model)
    if vars(model).get("_tfp_bnn_functions_layers") != layers:
        vars(model)["_tfp_bnn_functions"] = {}
        vars(model)["_tfp_bnn_functions_layers"] = layers
    return vars(model)["_tfp_bnn_functions"]


def _layer_structure(model):
    """The layers of ``model`` and of the models nested in it, as a tuple (what pop/add and a new head change).

    Not every sublayer (``_flatten_layers``): that walk costs ~2 us per tracked layer, on each call of
    predict (a 60-layer network: ~1 ms, 10 % of a small batch's predict).
    """
    return tuple(
        (layer, _layer_structure(layer)) if isinstance(layer, tf_keras.Model) else layer
        for layer in getattr(model, "layers", None) or ()
    )


def _cached(model, key, make):
    functions = _functions(model)
    if key not in functions:
        # Traced once, here, under a lock: tracing calls the heads, and TFP's
        # DistributionLambda.__call__ keeps a per-instance flag
        # (_enter_dunder_call) that two threads tracing at once overwrite.
        with _TRACING:
            if key not in functions:
                function = make()
                if hasattr(function, "get_concrete_function"):
                    function.get_concrete_function()  # fixed signature: the only trace
                functions[key] = function
    return functions[key]


_TRACING = threading.RLock()


def _per_model_function(input_signature, jit_compile=False):
    """``tf.function`` for one model's graph, with a fixed signature, so traced once.

    TensorFlow's retracing detector counts traces per Python code object, not
    per function: the first trace of each new model's function counted as a
    retrace of one function, and building a few models warned "5 out of the
    last N calls ... triggered tf.function retracing". A fixed input signature
    cannot retrace, so the warning is off for these functions (as TensorFlow
    does for the functions it loads from a SavedModel).
    """

    def decorate(python_function):
        function = tf.function(python_function, input_signature=input_signature, jit_compile=jit_compile)
        function._omit_frequent_tracing_warning = True
        return function

    return decorate


def _head(model, what="predict"):
    validation.check_not_keras3(model, what)
    if isinstance(model, tf_keras.Model):  # once per model and set of layers: it walks every sublayer
        _cached(model, "no Keras 3 weights", lambda: validation.check_no_keras3_weights(model))
        _cached(model, "squashed logits", lambda: _warn_of_squashed_logits(model))
    output_layers = list({id(layer): layer for layer in getattr(model, "_output_layers", None) or []}.values())
    if len(output_layers) > 1:
        names = [layer.name for layer in output_layers]
        raise TypeError(
            f"{what} takes models with one output (one head); this one has {len(names)} ({', '.join(names)}). "
            "Predict each head from a model of its own: tf_keras.Model(model.inputs, model.outputs[i])."
        )
    head = model.layers[-1] if getattr(model, "layers", None) else None
    if isinstance(head, tf_keras.Model) and not isinstance(head, Head):
        # A model around a model that ends in a head (Keras's end-to-end model: preprocessing
        # layers, then the fitted model): its output is that head's distribution.
        return _head(head, what)
    if not isinstance(head, Head):
        raise TypeError(
            f"{what} needs a model that ends in a tfp_bnn head (tfp_bnn.heads); the last layer is "
            f"{type(head).__name__}.{heads_lib.replacement_advice(head)}"
        )
    return head


def _warn_of_squashed_logits(model):
    """The softmax warning of a model that is no ``BayesianModel`` (which warns when built): a ``Sequential``."""
    from tfp_bnn.models import BayesianModel

    if not isinstance(model, BayesianModel):
        heads_lib.warn_of_squashed_logits(model)


# The stateless seed of the weight draws.
_SEED_SPEC = tf.TensorSpec([2], tf.int32)


def _by_draw(tensor, num_samples):
    """``[T * B, ...]`` (draw-major) -> ``[T, B, ...]``."""
    return tf.reshape(tensor, tf.concat([[num_samples, -1], tf.shape(tensor)[1:]], axis=0))


def _draws(model, x, num_samples, seed, weights=None):
    """The output distribution for ``T`` independent weight draws, batch ``[T * B]``."""
    body = _body(model)
    if body is None:
        with sampling._one_pass_draws(num_samples, seed, weights=weights):
            return _the_output(model(sampling.stack_draws(x, num_samples), training=False))
    if weights is None:
        weights = _recorded_weights(body, num_samples, seed)

    def stacked():
        with sampling._one_pass_draws(num_samples, seed, weights=weights):
            return body(sampling.stack_draws(x, num_samples), training=False)

    # One draw at a time in a graph loop: a 2-D matmul of all B rows per draw is
    # faster than one batched matmul of [T, B] rows (the 256 x 256 layer, T = 100,
    # 10,000 inputs: 0.40 s against 0.54 s) and the activations are [B, units],
    # not [T, B, units], so chunks can be T times larger. Only the head's inputs
    # are stacked. A small batch is faster stacked: the loop's T iterations cost
    # ~20 us each (2x50, T = 100, served batch of 1: 7.7 ms looped, 3.5 ms stacked).
    def looped():
        def one_draw(t):
            with sampling._one_pass_draws(1, seed, weights=[w[t][tf.newaxis] for w in weights]):
                return body(x, training=False)

        spec = tf.TensorSpec(body.output.shape, body.output.dtype)
        features = tf.map_fn(one_draw, tf.range(num_samples), fn_output_signature=spec)
        return tf.reshape(features, tf.concat([[-1], tf.shape(features)[2:]], axis=0))

    rows = tf.shape(x)[0] * num_samples
    small = tf.logical_and(rows < _LOOP_FROM_ROWS, rows < max(1, _LOOP_FROM_ELEMENTS // _widest_row(body)))
    features = tf.cond(small, stacked, looped)
    features.set_shape([None, *body.output.shape[1:]])
    return model.layers[-1](features, training=False)


def _widest_row(body):
    """Numbers per example in the body's widest tensor: an input or any layer's output (nested ones too).

    A stacked batch holds ``T * B`` rows of each: an image's convolution outputs are
    far wider than its input row. Unknown dimensions count as 1.
    """
    tensors = list(tf.nest.flatten(body.inputs))
    models = [body]
    while models:  # the nodes of this graph and its nested models only: not of other models sharing a layer
        model = models.pop()
        for nodes in getattr(model, "_nodes_by_depth", {}).values():
            for node in nodes:
                tensors.extend(tf.nest.flatten(node.outputs))
                if isinstance(node.layer, tf_keras.Model):
                    models.append(node.layer)
    return max(_numbers_per_row(tensor.shape) for tensor in tensors if hasattr(tensor, "shape"))


def _numbers_per_row(shape):
    shape = tf.TensorShape(shape)
    if shape.rank is None or shape.rank < 2:
        return 1
    return int(np.prod([d or 1 for d in shape.as_list()[1:]]))


def _has_padding_mask(model):
    """Whether ``model``'s head has a label per step and a padding mask reaches it (``Embedding(mask_zero=True)``)."""
    try:
        output = _the_output(model.outputs)
    except AttributeError:
        return False
    steps = getattr(getattr(model, "head", None), "_step_shape", ())
    return bool(steps) and getattr(output, "_keras_mask", None) is not None


def _padding_mask(model, x):
    """The padding mask of ``model``'s output for inputs ``x``, ``(B, *steps)`` bool, or ``None``.

    Keras computes it by running the network (``Functional.compute_mask``); it depends on the
    inputs only, not on the weight draw.
    """
    if not _has_padding_mask(model):
        return None
    return _the_output(model.compute_mask(x, None))


def _padding_mask_array(model, x):
    """:func:`_padding_mask` of NumPy inputs, as a NumPy bool array (``None`` without a mask)."""
    if not _has_padding_mask(model):
        return None
    return np.asarray(_padding_mask(model, tf.convert_to_tensor(x)), dtype=bool)


def _the_output(outputs):
    """The head's distribution out of a one-output model's structure (``{key: dist}`` for dict outputs)."""
    if isinstance(outputs, dict) and len(outputs) == 1:
        (outputs,) = outputs.values()
    elif isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        (outputs,) = outputs
    return outputs


def _body(model):
    return _cached(model, "body", lambda: _network_below_head(model))


def _network_below_head(model):
    """The model up to its head's input, when every random layer in it draws whole weights.

    Then draw ``t`` is a network of its own, computed from the ``t``-th recorded
    weights alone. MC dropout (a mask per row) and ensembles (member ``t mod M``
    of a stacked batch) need the stacked batch; so do models that are not
    Functional graphs.
    """
    inner = list(model._flatten_layers(include_self=False))
    if any(isinstance(layer, (MCDropout, EnsembleDense)) for layer in inner):
        return None
    if not any(isinstance(layer, _BayesianLayer) for layer in inner):
        return None
    if not isinstance(model.layers[-1], Head):  # the head is inside a nested model: the stacked batch
        return None
    try:
        return tf_keras.Model(model.inputs, model.layers[-1].input)
    except (AttributeError, TypeError, ValueError):
        return None


def _recorded_weights(model, num_samples, seed):
    """The ``[T, size]`` draws of every Bayesian layer for ``seed``, in call order, as a stacked batch draws them.

    Recorded on a forward pass of one input (the rest of that graph is pruned away).
    """
    record = []
    with sampling._one_pass_draws(num_samples, seed, record=record):
        zeros = _zeros_of_unknown_batch(
            [num_samples, *validation.model_input_shape(model)[1:]], validation.model_input_dtype(model))
        model(zeros, training=False)
    return record


def predictive_draws(model, x, *, num_samples, seed, weights=None):
    """Graph function: the head's distribution and what each of ``T`` weight draws predicts.

    Built for a ``tf.function`` (as :func:`tfp_bnn.predict` and the served
    signatures call it): eagerly it gives the same numbers, op by op, except
    for a model that calls one Bayesian layer more than once (shared or tied
    weights): eagerly each call draws its own weights, so draw ``t`` is not one
    network; call it inside a ``tf.function`` there.

    Args:
      model: a Keras model ending in a :mod:`tfp_bnn.heads` head.
      x: float32 tensor ``[B, *input_shape]``.
      num_samples: Python int ``T``.
      seed: stateless seed, int32 tensor ``[2]`` (:func:`tfp_bnn.sampling.stateless_seed`).
      weights: optional weight draws of the Bayesian layers for this seed, as
        :func:`tfp_bnn.sampling.weight_draws` takes them; drawn here if None.

    Returns:
      ``(dist, stats)``: the output distribution with batch ``[T * B]``
      (draw-major; ``[T * B, *steps]`` for a label per time step or pixel) and the
      head's :meth:`~tfp_bnn.heads.Head.draw_statistics`,
      each reshaped to ``[T, B, ...]``.

    Example: ``T = 20`` draws for ``B = 3`` inputs.

    >>> import numpy as np, tensorflow as tf, tfp_bnn
    >>> from tfp_bnn.prediction import predictive_draws
    >>> from tfp_bnn.sampling import stateless_seed
    >>> model = tfp_bnn.make_regressor((1,), train_size=100)  # fit it first
    >>> @tf.function
    ... def draws(x):
    ...     dist, stats = predictive_draws(model, x, num_samples=20, seed=stateless_seed(0))
    ...     return dist.mean(), stats
    >>> mean, stats = draws(tf.constant([[0.0], [1.0], [2.0]]))
    >>> mean.shape, stats["mean"].shape, stats["variance"].shape  # [T * B, 1], [T, B, 1]
    (TensorShape([60, 1]), TensorShape([20, 3, 1]), TensorShape([20, 3, 1]))
    >>> bool(np.array_equal(tf.reshape(mean, [20, 3, 1]), stats["mean"]))  # draw-major: row t * B + b
    True
    """
    head = _head(model, "predictive_draws")
    dist = _draws(model, x, num_samples, seed, weights)
    return dist, {k: _by_draw(v, num_samples) for k, v in head.draw_statistics(dist).items()}


def predictive_summary(model, x, *, num_samples, seed, level=0.95, weights=None):
    """Graph function: the tensors of :func:`predict` for one batch ``x``.

    Regression: ``mean``, ``aleatoric_variance``, ``epistemic_variance``,
    ``lower``, ``upper`` (``[B, units]``) and ``draw_means``,
    ``draw_variances`` (``[T, B, units]``). Classification:
    ``probabilities`` (``[B, K]``), ``predictive_entropy``,
    ``expected_entropy``, ``mutual_information`` (``[B]``) and
    ``draw_probabilities`` (``[T, B, K]``); with a label per time step or pixel
    each has the ``steps`` after ``B`` (``[B, *steps, K]``, ``[B, *steps]``,
    ``[T, B, *steps, K]``). ``level`` as in :func:`predict`; other arguments as in
    :func:`predictive_draws`.

    Example: with the seed :func:`predict` derives from ``seed=0``, the same numbers.

    >>> import numpy as np, tensorflow as tf, tfp_bnn
    >>> from tfp_bnn.prediction import predictive_summary
    >>> from tfp_bnn.sampling import stateless_seed
    >>> model = tfp_bnn.make_classifier((4,), 3, train_size=100)  # fit it first
    >>> @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    ... def summary(x):
    ...     return predictive_summary(model, x, num_samples=20, seed=stateless_seed(0))
    >>> out = summary(tf.zeros([2, 4]))
    >>> out["probabilities"].shape, out["mutual_information"].shape, out["draw_probabilities"].shape
    (TensorShape([2, 3]), TensorShape([2]), TensorShape([20, 2, 3]))
    >>> result = tfp_bnn.predict(model, np.zeros([2, 4]), num_samples=20, seed=0)
    >>> bool(np.allclose(out["probabilities"], result.probabilities))
    True
    """
    head = _head(model, "predictive_summary")
    dist, stats = predictive_draws(model, x, num_samples=num_samples, seed=seed, weights=weights)
    if head.task == "classification":
        return _entropy_split(stats["probs"])
    return _variance_split(head, dist, stats, num_samples, level)


def predictive_samples(model, x, *, num_samples, seed, weights=None):
    """Graph function: one draw ``y_t ~ p(y | x, w_t)`` for each of ``T`` weight draws.

    Together the ``T`` values are a sample of the predictive mixture.
    Regression draws from the head's :meth:`~tfp_bnn.heads.Head.components`
    (so a point head gives its prediction itself); classification draws a
    class index from each draw's probabilities. Returns ``samples``
    (``[T, B, units]`` float, or ``[T, B]`` int64 class indices, ``[T, B, *steps]``
    with a label per time step or pixel) next to the
    per-draw statistics of :func:`predictive_summary`. The weight draws are
    those of :func:`predictive_summary` with the same seed; ``y`` uses a
    seed derived from it. Arguments as in :func:`predictive_draws`.

    Example: a classifier's ``T = 20`` sampled labels for ``B = 2`` inputs.

    >>> import tensorflow as tf, tfp_bnn
    >>> from tfp_bnn.prediction import predictive_samples
    >>> from tfp_bnn.sampling import stateless_seed
    >>> model = tfp_bnn.make_classifier((4,), 3, train_size=100)  # fit it first
    >>> @tf.function
    ... def sample(x):
    ...     return predictive_samples(model, x, num_samples=20, seed=stateless_seed(0))
    >>> out = sample(tf.zeros([2, 4]))
    >>> out["samples"].shape, out["samples"].dtype.name, out["draw_probabilities"].shape
    (TensorShape([20, 2]), 'int64', TensorShape([20, 2, 3]))
    """
    head = _head(model, "predictive_samples")
    dist, stats = predictive_draws(model, x, num_samples=num_samples, seed=seed, weights=weights)
    sample_seed = tfp.random.split_seed(seed, n=1, salt="tfp_bnn.predictive_samples")[0]
    if head.task == "classification":
        probs = stats["probs"]
        classes = tfp.distributions.Categorical(probs=probs, dtype=tf.int64).sample(seed=sample_seed)
        return {"samples": classes, "draw_probabilities": probs}
    samples = _by_draw(head.components(dist).sample(seed=sample_seed), num_samples)
    return {"samples": samples, "draw_means": stats["mean"], "draw_variances": stats["variance"]}


def _zeros_of_unknown_batch(shape, dtype=tf.float32):
    """Zeros whose batch size the graph does not know, as in the graphs that predict.

    With a known batch Keras's ``TimeDistributed`` runs its layer in a while
    loop, and the weights a layer draws inside it cannot be read outside.
    """
    return tf.compat.v1.placeholder_with_default(tf.zeros(shape, dtype), [None, *shape[1:]])


def _weights_fn(model, num_samples):
    """``tf.function`` ``seed -> [T, size]`` weight draws of every Bayesian layer, in call order.

    The same seeds, so the same draws, as a chunk that samples its own (:func:`_recorded_weights`).
    """

    @_per_model_function([_SEED_SPEC])
    def weights(seed):
        return _recorded_weights(model, num_samples, seed)

    return weights


def _cached_weights_fn(model, num_samples):
    return _cached(model, ("weights", num_samples), lambda: _weights_fn(model, num_samples))


def _weight_specs(model, num_samples):
    outputs = _cached_weights_fn(model, num_samples).get_concrete_function().structured_outputs
    return [tf.TensorSpec.from_tensor(t) for t in outputs]


def _jit_compile(model):
    """Whether a chunk's graph is compiled with XLA: as ``model.compile(jit_compile=...)`` asks.

    XLA fuses the element-wise work around the matmuls, most of a small
    network's time: the (T, N) log-likelihoods of T = 100 draws for 10,000
    inputs of a 1x50 MLP took 0.5-0.6 of the time (benchmarks/speed.py). It
    compiles once per input shape, about a second each, so it pays on
    repeated calls with chunks of one size; a 2x256 MLP, bound by its
    matmuls, gains nothing. Not for MC dropout: its masks are random per
    row, drawn inside the chunk's graph, and XLA's CPU generator made the
    1x50 case 15x slower.
    """
    if not getattr(model, "jit_compile", False):
        return False
    return not any(isinstance(layer, MCDropout) for layer in model._flatten_layers(include_self=False))


def _input_spec(model):
    """A batch of the model's inputs, of any size, as ``check_inputs`` gives them."""
    return tf.TensorSpec([None, *validation.model_input_shape(model)[1:]], validation.model_input_dtype(model))


def _summary_fn(model, num_samples, level, jit_compile):
    @_per_model_function([_input_spec(model), _SEED_SPEC, _weight_specs(model, num_samples)], jit_compile)
    def summary(x, seed, weights):
        return predictive_summary(model, x, num_samples=num_samples, seed=seed, level=level, weights=weights)

    return summary


def _log_likelihood_fn(model, num_samples, jit_compile):
    signature = [_input_spec(model), tf.TensorSpec(None, tf.float32), _SEED_SPEC, _weight_specs(model, num_samples)]

    @_per_model_function(signature, jit_compile)
    def log_likelihood(x, y, seed, weights):
        dist = _draws(model, x, num_samples, seed, weights)
        stacked = sampling.stack_draws(y, num_samples)
        log_prob = dist.log_prob(tf.cast(stacked, dist.dtype))
        # A label per time step or pixel: the joint log-likelihood of the example's labels under one
        # draw, so the predictive mixture is over whole sequences (as for a head of several units).
        steps = len(_head(model, "log_likelihoods")._step_shape)
        if steps:
            mask = _padding_mask(model, x)
            if mask is not None:  # padded steps (Embedding(mask_zero=True)) are no labels: left out
                log_prob = log_prob * tf.cast(sampling.stack_draws(mask, num_samples), log_prob.dtype)
            log_prob = tf.reduce_sum(log_prob, axis=list(range(1, 1 + steps)))
        return {"log_likelihoods": _by_draw(log_prob, num_samples)}

    return log_likelihood


def _variance_split(head, dist, stats, num_samples, level):
    means, variances = stats["mean"], stats["variance"]
    mean = tf.reduce_mean(means, axis=0)
    components = head.components(dist)
    lower, upper = (
        _mixture_quantile(components, means, variances, num_samples, p, head.integer_valued)
        for p in ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
    )
    return {
        "mean": mean,
        "aleatoric_variance": tf.reduce_mean(variances, axis=0),
        "epistemic_variance": tf.reduce_mean(tf.square(means - mean), axis=0),
        "lower": lower,
        "upper": upper,
        "draw_means": means,
        "draw_variances": variances,
    }


def _mixture_quantile(components, means, variances, num_samples, p, integer_valued=False):
    """Quantile ``p`` of ``1/T sum_t F_t``, by Chandrupatla's root finder on the mixture CDF.

    For counts (``integer_valued``, step CDFs) that is the smallest count ``k`` with
    ``F(k) >= p``: the root finder converges on the step at ``k``, to well within 1/2.
    """

    def mixture_cdf_minus_p(y):
        stacked = tf.tile(y, [num_samples, 1])
        return tf.reduce_mean(_by_draw(components.cdf(stacked), num_samples), axis=0) - p

    # The mixture quantile lies between the smallest and largest component quantile.
    try:
        quantiles = _by_draw(components.quantile(tf.cast(p, means.dtype)), num_samples)
        low, high = tf.reduce_min(quantiles, 0), tf.reduce_max(quantiles, 0)
    except NotImplementedError:
        spread = 12.0 * tf.sqrt(variances)
        if integer_valued:  # the step at count 1 can lie beyond 12 sd of a tiny rate
            spread += 1.0
        low, high = tf.reduce_min(means - spread, 0), tf.reduce_max(means + spread, 0)
    margin = 1e-3 * (high - low) + 1e-6 * (1.0 + tf.abs(high) + tf.abs(low))
    low, high = low - margin, high + margin
    # The loop runs until every element has converged, so no element may ask for
    # more than its dtype can resolve: a bracket far narrower than the root's
    # magnitude would otherwise spin to max_iterations (and cost 5x the draws).
    resolution = 4.0 * np.finfo(means.dtype.as_numpy_dtype).eps * (tf.abs(low) + tf.abs(high))
    root, _, _ = tfp.math.find_root_chandrupatla(
        mixture_cdf_minus_p,
        low=low,
        high=high,
        position_tolerance=tf.maximum(1e-6 * (high - low), resolution),
        value_tolerance=0.0,
        max_iterations=60,
    )
    # abs: a root a hair below 0 would round to -0.0, a count printed "-0.0".
    return tf.abs(tf.round(root)) if integer_valued else root


def _entropy(probs):
    return -tf.reduce_sum(tf.math.xlogy(probs, probs), axis=-1)


def _entropy_split(draw_probs):
    # In float64: the mutual information is a difference of two entropies, and in float32
    # T identical draws (no epistemic uncertainty) left up to 3e-6 nats of rounding.
    probs64 = tf.cast(draw_probs, tf.float64)
    mean64 = tf.reduce_mean(probs64, axis=0)
    predictive = _entropy(mean64)
    expected = tf.reduce_mean(_entropy(probs64), axis=0)
    return {
        "probabilities": tf.cast(mean64, draw_probs.dtype),
        "predictive_entropy": tf.cast(predictive, draw_probs.dtype),
        "expected_entropy": tf.cast(expected, draw_probs.dtype),
        "mutual_information": tf.cast(tf.maximum(predictive - expected, 0.0), draw_probs.dtype),
        "draw_probabilities": draw_probs,
    }


# -- chunking ---------------------------------------------------------------------


def _fresh_seed():
    """The seed of a call with ``seed=None``: from NumPy's global generator, which
    ``tf_keras.utils.set_random_seed`` seeds (so unseeded calls repeat after it)."""
    return int(np.random.randint(0, 2**31 - 1))


def _default_batch_size(model, x, num_samples):
    """Inputs per chunk when ``batch_size`` is None."""
    per_row = int(np.prod(x.shape[1:])) or 1
    rows = min(_ROWS_PER_CHUNK, max(1, _ELEMENTS_PER_CHUNK // per_row))
    if _body(model) is None:
        return max(1, rows // num_samples)  # [T * B] rows through every layer
    # one draw at a time: [B] rows per layer, only the head's inputs are [T * B]
    return max(1, min(rows, _HEAD_ROWS_PER_CHUNK // num_samples))


def _run_chunks(model, function, arrays, num_samples, seed, batch_size):
    num_inputs = len(arrays[0])
    if batch_size is None:
        batch_size = _default_batch_size(model, arrays[0], num_samples)
    # The weights are drawn once and every chunk reuses them, so weight draw t is
    # the same network for all inputs (coherent sampled curves), and a large
    # layer's T weight copies are not drawn again per chunk (1.3x faster for
    # a 2x256 MLP, benchmarks/speed.py). Random numbers the layers draw per row
    # (MC dropout masks) derive from the same seed. Without a seed, one is drawn
    # from NumPy's global generator (which tf_keras.utils.set_random_seed seeds).
    if seed is None:
        seed = _fresh_seed()
    seed = sampling.stateless_seed(int(seed))
    weights = _cached_weights_fn(model, num_samples)(seed)
    # Each chunk's outputs are written into arrays for all N inputs as they come: a list of chunks
    # joined at the end held every output twice (N = 10**6, T = 100: 1.6 GB for 0.8 GB of results).
    # Per-draw arrays are [T, N, ...]: chunks fill the example axis.
    out = None
    for start in range(0, num_inputs, int(batch_size)):
        chunk = [tf.constant(a[start : start + int(batch_size)]) for a in arrays]
        part = {k: v.numpy() for k, v in function(*chunk, seed, weights).items()}
        if start == 0 and len(chunk[0]) == num_inputs:  # one chunk: no copy (2.6 ms of a 1x50 MLP's 34 ms)
            return part
        if out is None:
            out = {
                key: np.empty((*v.shape[:axis], num_inputs, *v.shape[axis + 1 :]), v.dtype)
                for key, v in part.items()
                for axis in [_example_axis(key)]
            }
        for key, v in part.items():
            index = (slice(None),) * _example_axis(key) + (slice(start, start + v.shape[_example_axis(key)]),)
            out[key][index] = v
    return out


def _example_axis(key):
    return 1 if key.startswith("draw_") or key == "log_likelihoods" else 0
