"""Distribution heads: the last layer of every tfp_bnn model.

A head is a ``tfp.layers.DistributionLambda`` that turns the ``params_size``
outputs of the layer before it into a distribution; the model's loss is that
distribution's negative log-likelihood (:class:`NegativeLogLikelihood`).

Shapes: for a batch of ``N`` inputs, regression heads return a distribution
with batch shape ``[N]`` and event shape ``[units]`` (``tfd.Independent`` over
the outputs), so ``log_prob`` gives one number per example; classification
heads have batch shape ``[N]`` and event shape ``[]`` (:class:`CategoricalHead`,
integer labels) or ``[1]`` (:class:`BernoulliHead`). A classification head over
inputs ``(N, *steps, K)`` (a label per time step or pixel; ``K = 1`` for
:class:`BernoulliHead`, ``L`` binary labels as ``(N, L, 1)``) has batch shape
``[N, *steps]`` and the same event shape. The head owns the target shape:
:func:`align_target` turns ``y`` of shape ``(N,)`` into ``(N, 1)`` (and back)
and refuses anything else, so ``log_prob`` never broadcasts ``(N,)`` against
``(N, 1)`` into an ``(N, N)`` matrix.

Converted to a tensor (``model.predict``, a following Keras layer), a head
gives its mean for regression and the class probabilities for
classification (:class:`BernoulliHead`: ``P(y = 1)``, ``(N, 1)``), of the one weight draw of that call; use
:func:`tfp_bnn.predict` for the predictive distribution over many draws.

Heads also tell :mod:`tfp_bnn.prediction` what one weight draw predicts
(:meth:`Head.draw_statistics`): mean and variance for regression, class
probabilities for classification. *Point* heads (:class:`PointHead`,
:class:`PointClassHead`) are for the regimes without aleatoric uncertainty:
they train like MSE / cross-entropy but each draw predicts a single value or
class.

Regression heads take ``target_loc``/``target_scale`` so a network that works
in standardized units predicts in raw units: ``y = target_loc +
target_scale * z``.

Example:

>>> import tensorflow as tf
>>> from tfp_bnn.heads import NormalHead
>>> head = NormalHead(units=1)
>>> dist = head(tf.zeros([5, head.params_size]))
>>> dist.batch_shape, dist.event_shape
(TensorShape([5]), TensorShape([1]))
"""

import threading

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_bnn import _warnings, sampling
from tfp_bnn._factory import (
    CopiesWithOwnWeights,
    NameScopedBuildFromConfig,
    float32_under_mixed_precision,
    refuse_mixed_policy,
    register,
    softplus_inverse,
)
from tfp_bnn.validation import align_target_axis, check_not_keras3, check_positive_int, shape_text

tfd = tfp.distributions

__all__ = [
    "Head",
    "PointHead",
    "NormalHead",
    "HomoscedasticNormalHead",
    "StudentTHead",
    "PoissonHead",
    "BernoulliHead",
    "CategoricalHead",
    "PointClassHead",
    "NegativeLogLikelihood",
    "BetaNegativeLogLikelihood",
    "align_target",
]


def align_target(y, dist):
    """``y`` reshaped to the distribution ``dist``'s ``batch_shape + event_shape``.

    Accepts exactly the shape ``log_prob`` expects, or one trailing axis of
    size 1 more or less (``(N,)`` for ``(N, 1)`` and back); raises a
    ``ValueError`` naming both shapes otherwise. ``y`` is cast to the
    distribution's dtype. A shape known only when the data arrive (a
    generator's batches, ``tf.py_function``) is checked then, by an assertion
    in the graph; XLA (``jit_compile=True``) drops assertions, so there only a
    wrong number of values fails, as a reshape error.

    Example: three examples of one target, event shape ``[1]``.

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import NormalHead, align_target
    >>> dist = NormalHead(1)(tf.zeros([3, 2]))
    >>> y = align_target([0.5, 1.0, 1.5], dist)  # (N,) -> (N, 1)
    >>> y.shape, dist.log_prob(y).shape  # one log-probability per example
    (TensorShape([3, 1]), TensorShape([3]))
    >>> align_target(tf.zeros([3, 2]), dist)
    Traceback (most recent call last):
    ValueError: Target of shape (N, 2) does not fit the model's output: the head predicts targets of shape (N, 1). Reshape y to (N, 1) (N examples first).
    """
    y = tf.convert_to_tensor(y)
    expected = dist.batch_shape.concatenate(dist.event_shape)
    # (N, ?) for a head of (N,): a generator's (N, 1) labels; the run-time check below decides.
    deferred = y.shape.rank == (expected.rank or 0) + 1 and y.shape[-1] is None
    if y.shape.rank is not None and expected.rank is not None and not deferred:
        y = align_target_axis(y, expected)  # the rule check_targets applies to arrays
        if y.shape.rank != expected.rank or not y.shape[1:].is_compatible_with(expected[1:]):
            raise ValueError(
                f"Target of shape {_shape_str(y.shape)} does not fit the model's output: the head "
                f"predicts targets of shape {_shape_str(expected)}. Reshape y to "
                f"{_shape_str(expected)} (N examples first)."
            )
    if not (y.shape.rank is not None and y.shape[1:].is_fully_defined()) and expected[1:].is_fully_defined():
        # Shapes known only at run time (a Sequence, a generator, tf.py_function in a tf.data
        # map): check them there, or (N,) against (N, 1) would broadcast to (N, N) silently.
        tail = expected[1:].as_list()
        rows = dist.batch_shape_tensor()[0]
        shape = tf.shape(y)
        first = tf.concat([shape, [-1]], axis=0)[0]  # -1 for a scalar
        fits = tf.logical_and(tf.equal(first, rows), tf.equal(tf.size(y), rows * int(np.prod(tail))))
        check = tf.debugging.Assert(
            fits,
            [f"Target does not fit the model's output: the head predicts targets of shape "
             f"{_shape_str(expected)}; reshape y to {_shape_str(expected)} (N examples first). Got a "
             "target of shape", shape],
        )
        with tf.control_dependencies([check]):
            y = tf.reshape(y, tf.concat([[rows], tf.constant(tail, tf.int32)], axis=0))
    return tf.cast(y, dist.dtype)


class _OneValueEvents(tfd.Independent):
    """``tfd.Independent`` of event shape ``[1]`` whose ``log_prob``/``cdf`` take targets ``(N,)`` as ``(N, 1)``.

    A custom training loop's ``-model(x).log_prob(y)`` (Bayesian-Torch's and TFP's loops, the
    series' loss) with ``y`` of shape ``(N,)``, as ``fit`` takes it, broadcast ``y`` against the
    ``(N, 1)`` locations: each example's log-probability summed over all N targets, a shape of
    ``(N,)`` and no error; a regressor trained so predicted about the batch's mean (RMSE 1.84,
    the targets' standard deviation 1.91, against 0.10-0.17 aligned, in the loop of
    tests/test_ported_examples.py). A target of one value less in rank is the example's one
    value; the rest is TFP's.
    """

    # Not validation.align_target_axis (align_target's and check_targets' rule): a log_prob also
    # takes samples, (S, N, 1) a shape that rule would cut to (S, N), and broadcasts what it does not
    # recognise, so only the one missing axis is added here, nothing dropped or refused, and a rank
    # known only at run time is decided in the graph.
    def _aligned(self, value):
        rank = value.shape.rank
        batch_rank = self.batch_shape.rank
        if batch_rank is None or batch_rank == 0 or (rank is not None and rank != batch_rank):
            return value
        if rank is None:  # tf.py_function's targets in a tf.data loop: the axis added when the rank is known
            added = tf.cast(tf.equal(tf.rank(value), batch_rank), tf.int32)
            return tf.reshape(value, tf.concat([tf.shape(value), tf.ones([added], tf.int32)], axis=0))
        return tf.expand_dims(value, -1)

    # _log_prob, not log_prob: DistributionLambda's outputs (_TensorCoercible) run their own
    # log_prob and reach the distribution's _log_prob (the distribution's prob goes through it too, its cdf
    # through _log_cdf; the _TensorCoercible's own prob and cdf fail in TFP: use dist.tensor_distribution).
    def _log_prob(self, value, **kwargs):
        return super()._log_prob(self._aligned(value), **kwargs)

    def _log_cdf(self, value, **kwargs):
        return super()._log_cdf(self._aligned(value), **kwargs)

    def _unnormalized_log_prob(self, value, **kwargs):
        return super()._unnormalized_log_prob(self._aligned(value), **kwargs)


class _ClassLabels(tfd.Categorical):
    """``tfd.Categorical`` whose ``log_prob``/``cdf`` take labels ``(N, 1)`` as ``(N,)``.

    Keras's sparse labels often come as a column (``keras.datasets.cifar10``'s are ``(N, 1)``): in a
    custom training loop's ``-model(x).log_prob(y)`` they broadcast against the ``(N,)`` batch to
    ``(N, N)``, every label scored under every example's distribution, and no error (iris trained so:
    accuracy 0.70 against 0.97).
    """

    # Not validation.align_target_axis: as in _OneValueEvents, samples ((S, N), or (S, 1) of a
    # one-example batch) and other shapes are TFP's to broadcast, so only a column of one label per
    # example loses its axis, nothing is refused, and an unknown last axis is decided in the graph.
    def _aligned(self, value):
        rank, batch_rank = value.shape.rank, self.batch_shape.rank
        if batch_rank is None or batch_rank == 0 or (rank is not None and rank != batch_rank + 1):
            return value
        if rank is not None and (value.shape[-1] not in (1, None)
                                 or not value.shape[:-1].is_compatible_with(self.batch_shape)):
            return value  # samples (S, N) or (S, 1) of a one-example batch are TFP's
        if rank is not None and value.shape[-1] == 1:
            return tf.squeeze(value, -1)
        # Unknown rank or last axis (tf.py_function, a generator's labels): the axis dropped when the
        # value is a column of one label per example, as for a known shape.
        shape = tf.shape(value)
        padded = tf.concat([shape, tf.zeros([batch_rank + 1], tf.int32)], axis=0)[: batch_rank + 1]
        column = tf.logical_and(tf.equal(tf.size(shape), batch_rank + 1), tf.equal(padded[-1], 1))
        column = tf.logical_and(column, tf.reduce_all(tf.equal(padded[:-1], self.batch_shape_tensor())))
        return tf.reshape(value, shape[: tf.size(shape) - tf.cast(column, tf.int32)])

    def _log_prob(self, k):
        return super()._log_prob(self._aligned(k))

    def _cdf(self, k):
        return super()._cdf(self._aligned(k))


def _independent(distribution):
    """``distribution`` (batch ``[N, units]``) as one event of ``units`` values per example."""
    if distribution.batch_shape[-1:] == [1]:
        return _OneValueEvents(distribution, reinterpreted_batch_ndims=1)
    return tfd.Independent(distribution, reinterpreted_batch_ndims=1)


def _event_size(layer):
    """The size a ``tfp.layers`` head was given (``IndependentNormal(3)``: 3), or ``None``."""
    size = getattr(layer, "_event_shape", None)
    if size is not None:  # IndependentNormal(): event shape (), one location and one scale; (2, 3): 6 of each
        try:
            return tf.TensorShape(size).num_elements()
        except (TypeError, ValueError):
            return None
    try:  # OneHotCategorical keeps no size: the logits it was built on
        return int(layer.input_shape[-1])
    except (AttributeError, RuntimeError, TypeError, ValueError, IndexError):
        return None


def _squashing(layer):
    """``"softmax"`` or ``"sigmoid"`` if ``layer`` ends in that activation (or is a ``Softmax`` layer), else ``None``.

    Keras's ``Dense(10, activation="softmax")`` ending a classifier (TFP's Bayesian LeNet, keras.io)
    gives probabilities; a tfp_bnn classification head takes logits.
    """
    if isinstance(layer, tf_keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None or not callable(activation):
        return None
    if activation in (tf_keras.activations.softmax, tf.nn.softmax, tf.math.softmax):
        return "softmax"
    if activation in (tf_keras.activations.sigmoid, tf.nn.sigmoid, tf.math.sigmoid):
        return "sigmoid"
    return None


def warn_of_squashed_logits(model):
    """A ``UserWarning`` for a classification head fed by a softmax/sigmoid (a Keras classifier's last layer kept)."""
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, _ClassificationHead):
            continue
        for node in _own_nodes(model, layer):
            for inbound in tf.nest.flatten(node.inbound_layers):
                message = squashed_logits_advice(layer, inbound)
                if message:
                    _warnings.warn(message, UserWarning)


def squashed_logits_advice(head, layer):
    """The message for a classification ``head`` fed by ``layer``'s softmax/sigmoid, or ``None``."""
    # A model as a layer (a Sequential body before the head, TFP's LeNet): the layer that makes its output.
    while isinstance(layer, tf_keras.Model) and len(getattr(layer, "_output_layers", None) or ()) == 1:
        layer = layer._output_layers[0]
    squash = _squashing(layer)
    if squash is None or not isinstance(head, _ClassificationHead):
        return None
    softmax_layer = isinstance(layer, tf_keras.layers.Softmax)
    fix = "remove the Softmax layer" if softmax_layer else f"activation=None on {layer.name!r}"
    if isinstance(head, CategoricalHead):  # softmax of values in [0, 1]: at most e / (e + K - 1)
        own, effect = "softmax", (
            f"which squeezes every predicted probability towards uniform (none above "
            f"{np.e / (np.e + head.num_classes - 1):.2f} with {head.num_classes} classes)")
    else:  # sigmoid of a value in [0, 1]: between 0.5 and 0.73
        own, effect = "sigmoid", "which keeps every P(y = 1) between 0.5 and 0.73 (every example predicted as 1)"
    return (
        f"{type(head).__name__} {head.name!r} takes logits, but {type(layer).__name__} {layer.name!r} before it "
        f"applies a {squash}: the head would take probabilities for logits, {effect} and trains against "
        f"that, without an error. Drop the {squash} ({fix}): the head applies its own {own}."
    )


def replacement_advice(layer):
    """`` Replace it with ...``: the tfp_bnn head for a ``tfp.layers`` distribution layer (ported code), or ``""``.

    For a plain last layer (a Keras classifier's ``Dense(K, activation="softmax")``, a regressor's
    ``Dense(1)``): the head to add after it.
    """
    if not isinstance(layer, tfp.layers.DistributionLambda) or isinstance(layer, Head):
        units = getattr(layer, "units", None) or getattr(layer, "filters", None)
        if isinstance(layer, Head) or not isinstance(units, int):
            return ""
        squash = _squashing(layer)
        if squash == "softmax":
            return (f" End in tfp_bnn.CategoricalHead({units}) after it, without its softmax (the head takes "
                    f"{units} logits; labels as class indices).")
        if squash == "sigmoid" and units == 1:
            return " End in tfp_bnn.BernoulliHead() after it, without its sigmoid (the head takes one logit)."
        classes = f", tfp_bnn.CategoricalHead({units}) ({units} logits, no softmax)" if units > 1 else ""
        # A relu or a sigmoid of several units kept before the head would bound its locations or logits.
        activation = getattr(layer, "activation", None)
        raw = "" if activation in (None, tf_keras.activations.linear) else (
            f" Set activation=None on {layer.name!r}: a head takes the layer's raw values.")
        return (f" Add a head after it: tfp_bnn.PointHead({units}) (the squared error of a Dense({units}) "
                f"regressor){classes}, or a distribution head on a layer of its params_size units, such as "
                f"tfp_bnn.NormalHead({units}) on a Dense({2 * units}).{raw}")
    size = _event_size(layer)
    n = "n" if size is None else str(size)
    same = {
        "IndependentNormal": (f"NormalHead({n})", "the same 2 * units inputs: locations, then softplus scales; "
                              "NormalHead adds a scale floor of 1e-3"),
        "OneHotCategorical": (f"CategoricalHead({n})", "the same logits; labels as class indices, "
                              "y.argmax(axis=1), not one-hot"),
        "IndependentBernoulli": ("BernoulliHead()", "one logit; labels 0/1") if size == 1 else None,
        "IndependentPoisson": (f"PoissonHead({n})", "the same log-rates"),
    }.get(type(layer).__name__)
    if same:
        return f" Replace it with tfp_bnn.{same[0]} ({same[1]}); the loss stays the NLL."
    return (
        " Replace it with a tfp_bnn head: NormalHead(units) for tfd.Normal(loc=t[..., :units], "
        "scale=softplus(t[..., units:])), StudentTHead, PoissonHead, BernoulliHead or CategoricalHead(K) "
        "(integer labels), or a subclass of tfp_bnn.heads.Head for another distribution."
    )


def _sync_step_shapes(model):
    """Set the step shape of ``model``'s heads from their calls in ``model``'s own graph.

    A head's own step shape is that of its first call (``build``): a head shared by another
    model (the same layers over another length, a predictive mixture over stacked draws), or
    built outside this model, would otherwise make this model ask for another model's targets.
    Read from the graph when targets are checked, not set in an override of ``__call__``:
    overriding ``DistributionLambda.__call__`` kept every model and its graphs alive.
    """
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, tf_keras.Model):
            _sync_step_shapes(layer)
        elif isinstance(layer, Head):
            nodes = _own_nodes(model, layer)
            if nodes:
                layer._set_step_shape(nodes[0].input_shapes)


def _own_nodes(model, layer):
    """The nodes of ``layer``'s calls in ``model``'s own graph, not in other models that share the layer.

    Read from Keras's private keys of a Functional model's nodes, ``"<layer name>_ib-<index>"``.
    """
    own = getattr(model, "_network_nodes", None) or ()
    return [node for index, node in enumerate(layer._inbound_nodes) if f"{layer.name}_ib-{index}" in own]


def _shape_str(shape):
    """A full shape (N first) as the messages spell it; a scalar's is ``()``."""
    return "()" if shape.rank == 0 else shape_text(shape[1:])


def _per_unit(value, units, name):
    """A float or one float per output unit, as a list (Keras-config friendly)."""
    alias = {"target_loc": " (make_regressor's target_mean)", "target_scale": " (make_regressor's target_std)"}
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:  # text, a ragged list: not a shape to name
        raise ValueError(f"{name}{alias.get(name, '')} must be a float or floats, got {value!r} ({error}).") from None
    try:
        values = np.broadcast_to(array, [units])
    except ValueError:  # NumPy's own message named neither the argument nor the fix
        statistic = {"target_loc": "mean", "target_scale": "std"}.get(name, "mean")
        raise ValueError(
            f"{name}{alias.get(name, '')} has shape {array.shape}, but the head has units={units}: pass a "
            f"float or one value per output, shape ({units},), e.g. y.{statistic}(axis=0) of targets of shape "
            f"{shape_text((units,))}."
        ) from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return values.tolist() if np.ndim(value) else float(value)


class Head(CopiesWithOwnWeights, NameScopedBuildFromConfig, tfp.layers.DistributionLambda):
    """Base class of the heads (a ``DistributionLambda`` with a Keras config).

    Subclasses set ``task`` and ``params_per_unit`` and implement
    ``_make_distribution``; they may override ``draw_statistics``,
    ``components``, ``_to_tensor``, ``target_shape`` and ``check_support``. Heads
    over counts set ``integer_valued``: their prediction intervals end on whole numbers.
    A regression head's distribution has batch ``[N]`` and event ``[units]``
    (``tfd.Independent`` over an elementwise distribution, as below; another
    event shape is refused, and a joint distribution over the units such as
    ``MultivariateNormalTriL`` needs its own ``components``); a classification
    head's (``task = "classification"``) takes class indices (``target_shape`` ``()``) and reports
    ``dist.probs_parameter()``. Register a subclass with
    ``tf_keras.saving.register_keras_serializable`` (and extend ``get_config``
    with its own arguments) for ``.keras`` files.

    Example: a Laplace head, location and unconstrained scale per target.

    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> from tfp_bnn.heads import Head
    >>> class LaplaceHead(Head):
    ...     params_per_unit = 2
    ...     def _make_distribution(self, params):
    ...         loc, raw_scale = params[..., : self.units], params[..., self.units :]
    ...         laplace = tfp.distributions.Laplace(loc, tf.nn.softplus(raw_scale))
    ...         return tfp.distributions.Independent(laplace, reinterpreted_batch_ndims=1)
    >>> head = LaplaceHead(units=1)
    >>> head.task, head.params_size, head.target_shape  # the layer before it has params_size units
    ('regression', 2, (1,))
    >>> stats = head.draw_statistics(head(tf.zeros([4, 2])))  # what one weight draw predicts
    >>> stats["mean"].shape, round(float(stats["variance"][0, 0]), 4)  # 2 softplus(0)^2
    (TensorShape([4, 1]), 0.9609)
    """

    task = "regression"
    params_per_unit = 1
    integer_valued = False

    def __init__(self, units=1, **kwargs):
        """A head of ``units`` targets (classes); ``kwargs`` go to ``tf_keras.layers.Layer``.

        Unlike ``tfp.layers.DistributionLambda`` a head takes no ``make_distribution_fn``
        nor ``convert_to_tensor_fn``: the subclass fixes both (as a tensor, a head is its
        mean, or its class probabilities; see the module docs).
        """
        fixed = [name for name in ("make_distribution_fn", "convert_to_tensor_fn") if name in kwargs]
        if fixed:
            raise TypeError(
                f"{type(self).__name__} takes no {' nor '.join(fixed)}: the head fixes its distribution and "
                "its tensor (the mean, or the class probabilities). For samples, draw them from the "
                "distribution the head returns (model(x).sample()), or predict with tfp_bnn.predict."
            )
        if kwargs.get("activity_regularizer") is not None:
            # DistributionLambda's call returns (distribution, tensor): Keras regularized both,
            # the penalty counted twice, and the head's config left it out (gone after a save).
            raise ValueError(
                f"{type(self).__name__} takes no activity_regularizer (its output is a distribution); "
                "put it on the layer before the head."
            )
        super().__init__(
            self._checked_distribution, convert_to_tensor_fn=self._to_tensor, **float32_under_mixed_precision(kwargs)
        )
        refuse_mixed_policy(self)
        self.units = check_positive_int(units, "units")  # 2.7 was 2 classes
        self._step_shape = ()  # the axes between batch and parameters, set when the head is built
        # A padding mask (Embedding(mask_zero=True), Masking) on a per-step head's input is passed
        # on to its output, as Keras's Dense does: Lambda's compute_mask dropped it, and padded
        # steps counted in fit, evaluate and score. BayesianModel turns it into sample weights.
        self.supports_masking = True

    def build(self, input_shape):
        self._set_step_shape(input_shape)  # a subclassed model's head: its first call
        super().build(input_shape)

    def _set_step_shape(self, input_shape):
        # A label per step or pixel: its targets are (N, *steps, *target_shape) (check_targets);
        # None for a step axis of any length. Set by the first call and by each model's graph
        # (_sync_step_shapes), not by every call: a user's head(logits) over a [N, T, K] stack of
        # draws (a mixture on top) made the model ask fit, evaluate and log_likelihoods for (N, T).
        shape = tf.TensorShape(input_shape)
        if shape.rank is not None and shape.rank > 2 and self.task == "classification":
            self._step_shape = tuple(shape[1:-1])
        elif shape.rank is not None:
            self._step_shape = ()

    def compute_mask(self, inputs, mask=None):
        """The padding mask of the head's input, ``(N, *steps)``: one flag per label, passed on to the output.

        ``BayesianModel`` weights each step's log-likelihood by it in ``fit``/``evaluate`` (as a
        per-step sample weight), and :func:`tfp_bnn.score`/:func:`tfp_bnn.log_likelihoods` leave the
        masked steps out, as do Keras's compiled metrics. (A head with one target per
        example meets no mask in the usual models: pooling, or a recurrent layer without
        ``return_sequences``, consumes it.)
        """
        return mask

    @property
    def params_size(self):
        """How many inputs the head takes from the layer before it."""
        return self.units * self.params_per_unit

    @property
    def target_shape(self):
        """Shape of one example's target: ``(units,)`` for regression, ``()`` (a class index) for classification."""
        return () if self.task == "classification" else (self.units,)

    def _checked_distribution(self, params):
        """:meth:`_make_distribution`, refused when a regression head's distribution is not one event of ``units``.

        A bare ``tfd.LogNormal`` (batch ``[N, units]``, no ``tfd.Independent``) trained, but the
        intervals came from its ``.distribution``, the Normal of the logarithm (a 95 % interval
        that left out the predictive mean), and ``score`` failed on ``(T, N, units)`` log-likelihoods.
        """
        dist = self._make_distribution(params)
        if self.task == "regression" and tf.TensorShape(dist.event_shape).as_list() != [self.units]:
            raise TypeError(
                f"{type(self).__name__}._make_distribution returned {type(dist).__name__} of batch shape "
                f"{dist.batch_shape} and event shape {dist.event_shape}; a regression head's distribution has "
                f"one event of units={self.units} values per example (batch [N], event [{self.units}]): wrap "
                "an elementwise distribution in tfd.Independent(..., reinterpreted_batch_ndims=1)."
            )
        return dist

    def check_support(self, y):
        """Raise a ``ValueError`` if targets ``y`` (NumPy) lie outside the distribution's support."""

    def _make_distribution(self, params):
        raise NotImplementedError

    def _to_tensor(self, dist):
        # A Bernoulli's tensor is P(y = 1), as BernoulliHead's; tfd.Independent has no probs_parameter.
        if self.task == "classification" and not isinstance(_elementwise(dist), tfd.Bernoulli):
            return self.draw_statistics(dist)["probs"]
        return dist.mean()

    def _check_params(self, params):
        check_not_keras3(params, type(self).__name__)
        rank = params.shape.rank
        if rank is not None and (rank < 2 or (rank > 2 and self.task != "classification")):
            # A regression head over (N, L, params) made a distribution of batch shape (N, L): fit
            # refused its (N, L) targets as not (N, units), and tfp_bnn.predict failed deep in its
            # graph. A classifier over (N, L, K) logits (a label per time step or pixel) trains on
            # generators, predicts (probabilities and entropies per step), exports and loads: kept.
            raise ValueError(
                f"{type(self).__name__} takes one row of {self.params_size} parameters per example, inputs of "
                f"shape {shape_text((self.params_size,))}; got {shape_text(params.shape[1:])}. A head predicts one "
                "target vector per example: flatten the other axes first (tf_keras.layers.Flatten()) and end in a "
                "layer of units=head.params_size (for L regression targets per example, a head of units=L); a "
                "target per time step or pixel (a sequence or image of targets) is not supported."
            )
        if params.shape[-1] is not None and params.shape[-1] != self.params_size:
            raise ValueError(
                f"{type(self).__name__}(units={self.units}) takes {self.params_size} inputs per "
                f"example, got {params.shape[-1]}: end the network with a layer of "
                f"units=head.params_size."
            )
        return params

    def draw_statistics(self, dist):
        """What one weight draw predicts, from the distribution ``dist`` the head returned.

        Regression heads: ``{"mean", "variance"}``, each ``[N, units]``. Classification
        heads: ``{"probs"}``, ``[N, *steps, K]`` class probabilities (``K = 2``,
        ``[1 - p, p]``, for :class:`BernoulliHead`); by default ``dist.probs_parameter()``.
        """
        if self.task == "classification":
            inner = _elementwise(dist)  # BernoulliHead's pattern: tfd.Independent(tfd.Bernoulli), no probs_parameter
            if isinstance(inner, tfd.Bernoulli):
                logits = inner.logits_parameter()
                probs = tf.stack([tf.sigmoid(-logits), tf.sigmoid(logits)], axis=-1)
                return {"probs": probs[..., 0, :] if dist.event_shape == [1] else probs}
            return {"probs": inner.probs_parameter()}
        return {"mean": dist.mean(), "variance": dist.variance()}

    def components(self, dist):
        """Elementwise distribution (batch ``[N, units]``) whose CDF makes the intervals (regression heads).

        By default the distribution inside the ``tfd.Independent``; override it for a joint
        distribution over the units (``MultivariateNormalTriL``: its marginal Normals).
        """
        inner = distribution_of(dist)
        if not isinstance(inner, tfd.Independent):
            raise TypeError(
                f"{type(self).__name__}: the intervals need the elementwise distribution of each target; "
                f"{type(inner).__name__} is no tfd.Independent. Override components(dist) to return it "
                "(batch [N, units])."
            )
        return inner.distribution

    def get_config(self):
        # Skip DistributionLambda/Lambda.get_config: they pickle the function.
        return {**tf_keras.layers.Layer.get_config(self), "units": self.units}

    @classmethod
    def from_config(cls, config):
        # Fixed by the subclass; configs of older versions may carry them.
        config = {k: v for k, v in config.items() if k not in ("make_distribution_fn", "convert_to_tensor_fn")}
        return cls(**config)


# The largest |target_loc| / target_scale a regression head takes (see _StandardizedRegressionHead).
MAX_TARGET_OFFSET = 1e5
# The range of target_scale: the variances tfp_bnn.predict reports are float32 in target units,
# target_scale^2 times the network's (1e-6 at the scale floor, up to ~1e6 far from the data).
MIN_TARGET_SCALE, MAX_TARGET_SCALE = 1e-15, 1e15


class _StandardizedRegressionHead(Head):
    """A regression head whose network works in standardized target units."""

    def __init__(self, units=1, target_loc=0.0, target_scale=1.0, **kwargs):
        super().__init__(units, **kwargs)
        self.target_loc = _per_unit(target_loc, self.units, "target_loc")
        self.target_scale = _per_unit(target_scale, self.units, "target_scale")
        if np.any(np.asarray(self.target_scale) <= 0):
            raise ValueError(f"target_scale must be positive, got {target_scale!r}.")
        scale = np.asarray(self.target_scale)
        outside = scale[(scale < MIN_TARGET_SCALE) | (scale > MAX_TARGET_SCALE)]
        if outside.size:
            # The factor that brings the scale to about 1: down for huge scales, up for tiny ones.
            factor = f"1e{-int(np.round(np.log10(outside[0])))}"
            raise ValueError(
                f"target_scale {target_scale!r} is outside [{MIN_TARGET_SCALE:g}, {MAX_TARGET_SCALE:g}]: the "
                "predicted variances, its square times the network's, would leave float32's range (0 or inf). "
                f"Rescale the targets first (e.g. y * {factor}) and the predictions back."
            )
        # Predictions are float32 in target units: float32 resolves |loc| to about 1.2e-7 * |loc|,
        # so beyond MAX_TARGET_OFFSET scales a prediction and its spread are not resolved (draws
        # collapse onto a few values, sums over draws drift by more than the spread).
        ratio = np.max(np.abs(np.asarray(self.target_loc)) / np.asarray(self.target_scale))
        if ratio > MAX_TARGET_OFFSET:
            raise ValueError(
                f"target_loc {target_loc!r} is {ratio:.1e} times target_scale {target_scale!r}: float32 "
                "predictions in these units cannot resolve the targets' spread. Subtract a constant from "
                "the targets first (e.g. y - round(y.mean())) and add it back to the predictions."
            )

    def _raw_units(self, loc, scale):
        shift = tf.constant(self.target_loc, loc.dtype)
        factor = tf.constant(self.target_scale, loc.dtype)
        return shift + factor * loc, factor * scale

    def get_config(self):
        return {**super().get_config(), "target_loc": self.target_loc, "target_scale": self.target_scale}


@register
class PointHead(_StandardizedRegressionHead):
    """Point regression: the loss is Gaussian with unit scale (in standardized units).

    ``-log N(y | mu, 1) = (y - mu)^2 / 2 + const``, i.e. mean squared error;
    each weight draw predicts ``mu`` alone (aleatoric variance 0), so the
    spread of predictions comes from the weights only. For the
    "deterministic" and "Bayesian" regimes.

    Takes ``units`` inputs (``mu``); batch shape ``[N]``, event shape ``[units]``.

    Args:
      units: number of targets.
      target_loc, target_scale: see the module docs.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import PointHead
    >>> head = PointHead(1)
    >>> dist = head(tf.constant([[1.0]]))  # the prediction itself
    >>> float(dist.mean()[0, 0]), float(dist.stddev()[0, 0])  # the unit scale of the squared-error loss
    (1.0, 1.0)
    """

    def _make_distribution(self, params):
        loc, scale = self._raw_units(self._check_params(params), tf.ones_like(params))
        return _independent(tfd.Normal(loc, scale))

    def draw_statistics(self, dist):
        """``{"mean", "variance"}``, each ``[N, units]``; the variance is 0 (no aleatoric part)."""
        mean = dist.mean()
        return {"mean": mean, "variance": tf.zeros_like(mean)}

    def components(self, dist):
        """``tfd.Deterministic`` at each draw's prediction (batch ``[N, units]``)."""
        return tfd.Deterministic(dist.distribution.loc)


@register
class NormalHead(_StandardizedRegressionHead):
    """Heteroscedastic Normal: ``y ~ N(mu(x), sigma(x)^2)``, ``sigma = floor + softplus(.)``.

    Takes ``2 * units`` inputs (``mu`` then the unconstrained scale). The
    floor keeps the likelihood bounded when the network fits a point exactly.

    Args:
      units: number of targets.
      scale_floor: smallest standard deviation, in standardized units.
      target_loc, target_scale: see the module docs.

    Example: a location of 1 and an unconstrained scale parameter of 0.

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import NormalHead
    >>> head = NormalHead(1)
    >>> dist = head(tf.constant([[1.0, 0.0]]))  # [batch, params_size]
    >>> float(dist.mean()[0, 0]), round(float(dist.stddev()[0, 0]), 4)  # softplus(0) + 0.001
    (1.0, 0.6941)
    >>> dist.batch_shape, dist.event_shape
    (TensorShape([1]), TensorShape([1]))
    """

    params_per_unit = 2

    def __init__(self, units=1, scale_floor=1e-3, **kwargs):
        super().__init__(units, **kwargs)
        if not scale_floor >= 0:
            raise ValueError(f"scale_floor must be >= 0, got {scale_floor!r}.")
        self.scale_floor = float(scale_floor)

    def _make_distribution(self, params):
        params = self._check_params(params)
        loc, raw_scale = params[..., : self.units], params[..., self.units :]
        loc, scale = self._raw_units(loc, self.scale_floor + tf.nn.softplus(raw_scale))
        return _independent(tfd.Normal(loc, scale))

    def get_config(self):
        return {**super().get_config(), "scale_floor": self.scale_floor}


@register
class HomoscedasticNormalHead(_StandardizedRegressionHead):
    """Normal with one learned noise scale per target: ``y ~ N(mu(x), sigma^2)``.

    Takes ``units`` inputs (the mean); ``sigma = floor + softplus(rho)`` is a
    weight of the head, shared by all inputs. Batch shape ``[N]``, event shape
    ``[units]``.

    Args:
      units: number of targets.
      initial_scale: starting ``sigma`` (standardized units).
      scale_floor: smallest ``sigma``.
      target_loc, target_scale: as in :class:`NormalHead`.

    Example: one parameter per output, the location; the scale is the head's own weight.

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import HomoscedasticNormalHead
    >>> head = HomoscedasticNormalHead(1)
    >>> dist = head(tf.constant([[1.0], [2.0]]))
    >>> dist.mean().numpy().ravel().tolist(), dist.stddev().numpy().round(4).ravel().tolist()  # one scale
    ([1.0, 2.0], [1.0, 1.0])
    """

    def __init__(self, units=1, initial_scale=1.0, scale_floor=1e-3, **kwargs):
        super().__init__(units, **kwargs)
        if not initial_scale > scale_floor >= 0:
            raise ValueError(
                f"need initial_scale > scale_floor >= 0, got {initial_scale!r}, {scale_floor!r}."
            )
        self.initial_scale = float(initial_scale)
        self.scale_floor = float(scale_floor)

    def build(self, input_shape):
        self.untransformed_scale = self.add_weight(
            name="untransformed_noise_scale",
            shape=[self.units],
            initializer=tf.constant_initializer(softplus_inverse(self.initial_scale - self.scale_floor)),
        )
        super().build(input_shape)

    def noise_scale(self):
        """The learned ``sigma`` (standardized units), shape ``[units]``."""
        return self.scale_floor + tf.nn.softplus(self.untransformed_scale)

    def _make_distribution(self, params):
        loc = self._check_params(params)
        loc, scale = self._raw_units(loc, self.noise_scale() * tf.ones_like(loc))
        return _independent(tfd.Normal(loc, scale))

    def get_config(self):
        return {**super().get_config(), "initial_scale": self.initial_scale, "scale_floor": self.scale_floor}


@register
class StudentTHead(_StandardizedRegressionHead):
    """Heteroscedastic Student-t, robust to outliers; one learned ``df > 2`` per target.

    Takes ``2 * units`` inputs like :class:`NormalHead`. ``df = 2 + 4 eps +
    softplus(.)`` (``eps`` the dtype's: without it float32 rounds ``df`` to 2
    once ``softplus`` is at most ``2**-23``, half an ulp of 2) keeps the
    variance ``scale^2 df / (df - 2)`` finite, so the
    aleatoric/epistemic split is defined.

    Batch shape ``[N]``, event shape ``[units]``.

    Args:
      units: number of targets.
      initial_df: starting degrees of freedom.
      scale_floor: smallest scale.
      target_loc, target_scale: as in :class:`NormalHead`.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import StudentTHead
    >>> head = StudentTHead(1)
    >>> dist = head(tf.constant([[1.0, 0.0]]))  # location, unconstrained scale
    >>> float(dist.mean()[0, 0]), dist.batch_shape, dist.event_shape
    (1.0, TensorShape([1]), TensorShape([1]))
    """

    params_per_unit = 2

    def __init__(self, units=1, initial_df=5.0, scale_floor=1e-3, **kwargs):
        super().__init__(units, **kwargs)
        if not initial_df > 2:
            raise ValueError(f"initial_df must be > 2 (finite variance), got {initial_df!r}.")
        if not scale_floor >= 0:
            raise ValueError(f"scale_floor must be >= 0, got {scale_floor!r}.")
        self.initial_df = float(initial_df)
        self.scale_floor = float(scale_floor)

    def build(self, input_shape):
        self.untransformed_df = self.add_weight(
            name="untransformed_df",
            shape=[self.units],
            initializer=tf.constant_initializer(softplus_inverse(self.initial_df - 2.0)),
        )
        super().build(input_shape)

    def _make_distribution(self, params):
        params = self._check_params(params)
        loc, raw_scale = params[..., : self.units], params[..., self.units :]
        loc, scale = self._raw_units(loc, self.scale_floor + tf.nn.softplus(raw_scale))
        # A few ulps above 2: in float32 2 + softplus(u) rounds to exactly 2 (an infinite variance, a NaN
        # beta-NLL) once softplus(u) <= 2**-23 (u < -15.9), which heavy-tailed data drive u towards in long training.
        margin = 4.0 * float(np.finfo(loc.dtype.as_numpy_dtype).eps)
        df = (2.0 + margin) + tf.nn.softplus(self.untransformed_df) * tf.ones_like(loc)
        return _independent(tfd.StudentT(df, loc, scale))

    def get_config(self):
        return {**super().get_config(), "initial_df": self.initial_df, "scale_floor": self.scale_floor}


def _check_integers(y, low, high, what):
    """Every value an integer in ``[low, high)``, or a ValueError naming the first that is not."""
    bad = (y != np.round(y)) | (y < low) | (y >= high)
    if bad.any():
        row = np.argwhere(bad)[0][0]
        value = y[tuple(np.argwhere(bad)[0])]
        raise ValueError(f"y[{row}] = {value:g}, but {what}.")


@register
class PoissonHead(Head):
    """Counts: ``y ~ Poisson(exp(eta(x)))``; takes ``units`` log-rates.

    Batch shape ``[N]``, event shape ``[units]``; counts of shape ``(N, units)``.

    :func:`tfp_bnn.predict`'s interval ends are counts: the smallest ``k`` with
    ``P(Y <= k) >= p`` under the predictive mixture. For rates up to about
    10^3: the float32 CDF of TFP's Poisson is off by a count at 8e3 and by
    hundreds beyond 1e5 (its log-probability by 0.04 nats at 1e5), so model
    counts that large as a regression of their logarithm.

    Example: a log rate of 0 is a rate of 1.

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import PoissonHead
    >>> head = PoissonHead(1)
    >>> dist = head(tf.constant([[0.0]]))
    >>> float(dist.mean()[0, 0]), round(float(tf.exp(dist.log_prob([[2.0]]))[0]), 4)  # e^-1 / 2!
    (1.0, 0.1839)
    """

    integer_valued = True

    def check_support(self, y):
        """A ``ValueError`` for targets that are not counts (integers >= 0)."""
        _check_integers(y, 0, np.inf, "a Poisson head takes counts (integers >= 0)")

    def _make_distribution(self, params):
        return _independent(tfd.Poisson(log_rate=self._check_params(params)))

    def components(self, dist):
        """The elementwise ``tfd.Poisson`` (batch ``[N, units]``), with the step CDF of the counts."""
        # TFP's Poisson CDF interpolates between counts (igammac(y + 1, rate)) unless told
        # otherwise; the intervals need the step CDF of the counts, P(Y <= floor(y)).
        return tfd.Poisson(log_rate=dist.distribution.log_rate, force_probs_to_zero_outside_support=True)


class _ClassificationHead(Head):
    task = "classification"

    def _to_tensor(self, dist):
        return self.draw_statistics(dist)["probs"]

    def components(self, dist):
        """A ``TypeError``: a classification head has no prediction intervals."""
        raise TypeError(f"{type(self).__name__} predicts classes; it has no prediction intervals.")


@register
class CategoricalHead(_ClassificationHead):
    """``y ~ Categorical(softmax(logits(x)))`` over ``num_classes`` integer labels.

    Takes ``num_classes`` logits; batch shape ``[N]``, event shape ``[]``,
    labels ``0 .. num_classes - 1`` of shape ``(N,)`` (or ``(N, 1)``); over logits
    ``(N, *steps, num_classes)`` (a label per time step or pixel) batch shape
    ``[N, *steps]`` and labels ``(N, *steps)``. ``units`` is accepted as another
    name of ``num_classes`` (default 2). The
    distribution's dtype is the logits' float dtype (at least float32, exact for
    every label below 2**24), not TFP's int32 (its
    samples are whole floats): Keras casts ``sample_weight`` and ``class_weight``
    to the output's dtype, and an int32 output truncated a weight of 0.5 to 0.

    Example: logits in, class probabilities out.

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import CategoricalHead
    >>> head = CategoricalHead(3)
    >>> dist = head(tf.constant([[0.0, 1.0, 2.0]]))
    >>> [round(p, 4) for p in dist.probs_parameter().numpy()[0].tolist()]  # softmax
    [0.09, 0.2447, 0.6652]
    >>> dist.batch_shape, dist.event_shape  # a label per example
    (TensorShape([1]), TensorShape([]))
    """

    def __init__(self, num_classes=None, **kwargs):
        # `units`, as every other head (and Dense) names it, is the number of classes too;
        # it was dropped silently (CategoricalHead(units=10) had 2 classes).
        units = kwargs.pop("units", None)
        if num_classes is not None and units is not None and units != num_classes:
            raise ValueError(f"num_classes={num_classes!r} and units={units!r} differ; pass one of them.")
        num_classes = next((n for n in (num_classes, units) if n is not None), 2)
        super().__init__(num_classes, **kwargs)
        if self.units < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes!r}.")

    @property
    def num_classes(self):
        return self.units

    @property
    def target_shape(self):
        """``()``: one integer label per example (per step for a label per time step or pixel)."""
        return ()

    def check_support(self, y):
        """A ``ValueError`` for labels that are not integers ``0 .. num_classes - 1``."""
        _check_integers(
            y, 0, self.num_classes,
            f"labels must be integers 0..{self.num_classes - 1} (the head has {self.num_classes} "
            "classes); encode the classes as 0..K-1",
        )

    def _make_distribution(self, params):
        params = self._check_params(params)
        # Labels in the logits' float dtype, not TFP's default int32: Keras casts sample_weight
        # (and class_weight) to the output's dtype in compiled_loss and compiled_metrics, and an
        # int32 distribution truncated weights of 0.5 to 0. At least float32: a half-precision
        # head (dtype="float16"/"bfloat16") would round labels above 2048 (256) to a neighbour.
        return _ClassLabels(logits=params, dtype=params.dtype if params.dtype.size >= 4 else tf.float32)

    def draw_statistics(self, dist):
        """``{"probs"}``: the draw's softmax, ``[N, *steps, num_classes]``."""
        return {"probs": dist.probs_parameter()}

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = config.pop("units")
        return config


@register
class PointClassHead(CategoricalHead):
    """Point classification: trained with cross-entropy, each draw predicts one class.

    For the "deterministic" and "Bayesian" classification regimes: a weight
    draw votes for its most probable class (a one-hot "probability"), so the
    predictive probabilities are vote shares, the expected entropy is 0 and
    all uncertainty is epistemic. As a tensor (``model.predict``, Keras
    metrics) the head is the draw's softmax, as a ``Dense(softmax)`` gives.
    Shapes and arguments as :class:`CategoricalHead`'s (``num_classes`` logits).

    Example: trained on logits like :class:`CategoricalHead`; in a prediction
    each draw counts as a vote for its most probable class.

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import PointClassHead
    >>> head = PointClassHead(3)
    >>> int(head(tf.constant([[0.0, 1.0, 2.0]])).mode()[0])
    2
    """

    def draw_statistics(self, dist):
        """``{"probs"}``: the draw's vote, a one-hot ``[N, *steps, num_classes]`` of its most probable class."""
        return {"probs": tf.one_hot(tf.argmax(dist.logits, axis=-1), self.units, dtype=dist.logits.dtype)}

    def _to_tensor(self, dist):
        # As a tensor (model.predict, Keras metrics) the draw's softmax, as a
        # Dense(softmax) classifier gives: a one-hot vote made "categorical_crossentropy"
        # differ from the loss it equals and left AUC nothing to rank.
        return dist.probs_parameter()


@register
class BernoulliHead(_ClassificationHead):
    """Binary labels ``y ~ Bernoulli(sigmoid(logit(x)))``; takes one logit.

    Batch shape ``[N]``, event shape ``[1]``; labels 0/1 of shape ``(N,)`` or
    ``(N, 1)``. Over logits ``(N, *steps, 1)`` (``L`` labels per example, multi-label,
    as ``(N, L, 1)``) batch shape ``[N, *steps]`` and labels ``(N, *steps)``.
    :func:`tfp_bnn.predict` reports the two class probabilities
    ``[1 - p, p]``; as a tensor (``model.predict``, Keras metrics such as
    ``"binary_accuracy"`` or ``AUC``) the head is ``p = P(y = 1)`` of shape
    ``(N, 1)``, as a sigmoid ``Dense(1)`` would give. Float labels, as
    :class:`CategoricalHead`'s (fractional sample weights stay fractional).

    Example: a logit of 0 is a probability of one half.

    >>> import tensorflow as tf
    >>> from tfp_bnn.heads import BernoulliHead
    >>> head = BernoulliHead()
    >>> dist = head(tf.constant([[0.0], [2.0]]))
    >>> [round(p, 4) for p in dist.mean().numpy().ravel().tolist()]  # sigmoid(logit)
    [0.5, 0.8808]
    """

    num_classes = 2

    @property
    def target_shape(self):
        """Shape of one example's target: ``(1,)``, a label 0 or 1 (``(N,)`` labels are taken too)."""
        return (1,)

    def __init__(self, **kwargs):
        units = kwargs.pop("units", 1)
        if units != 1:  # it was dropped silently: BernoulliHead(units=3) had one label
            raise ValueError(
                f"BernoulliHead predicts one binary label (units=1), got units={units!r}; for L binary "
                "labels per example (multi-label) end in a layer of L units, tf_keras.layers.Reshape((L, 1)) "
                "and BernoulliHead(): a label per step, labels (N, L), which tfp_bnn.predict, score and "
                "export_for_serving take (probabilities and mutual information per label). For one of "
                "several exclusive classes use CategoricalHead(K)."
            )
        super().__init__(1, **kwargs)

    def check_support(self, y):
        """A ``ValueError`` for labels other than 0 and 1."""
        _check_integers(y, 0, 2, "a Bernoulli head takes labels 0 or 1")

    def _make_distribution(self, params):
        params = self._check_params(params)
        # Float labels, as CategoricalHead's: an int32 output truncated fractional sample weights.
        bernoulli = tfd.Bernoulli(logits=params, dtype=params.dtype)
        return _independent(bernoulli)

    def _to_tensor(self, dist):
        return dist.mean()

    def draw_statistics(self, dist):
        """``{"probs"}``: ``[1 - p, p]`` of the draw, ``[N, *steps, 2]``."""
        logits = dist.distribution.logits
        # sigmoid(-z), not 1 - sigmoid(z): that is 0 in float32 for z > 16.6 (P(y = 0) = 6e-8 there).
        return {"probs": tf.concat([tf.sigmoid(-logits), tf.sigmoid(logits)], axis=-1)}

    def get_config(self):
        config = super().get_config()
        del config["units"]
        return config


@register
class NegativeLogLikelihood(tf_keras.losses.Loss):
    """``-log p(y | x)`` of the model's output distribution, one value per example.

    The target is aligned to the distribution with :func:`align_target`
    first, so ``(N,)`` against ``(N, 1)`` cannot silently broadcast.

    A ``log_prob`` with more than one value per example, ``(N, L)`` (a label
    per time step or pixel, or a distribution without ``tfd.Independent`` over
    an example's targets), is the example's joint NLL under Keras's mean over
    the batch: the sum over its L values, as the KL terms' ``1 / N`` per example
    expects (with ``reduction="sum"`` or ``"none"`` the values are left as they are).

    Example: ``-log N(y = 1 | 0, 1) = 0.5 + log(2 pi) / 2``.

    >>> import tensorflow_probability as tfp
    >>> from tfp_bnn.heads import NegativeLogLikelihood
    >>> normal = tfp.distributions.Normal(loc=[[0.0]], scale=[[1.0]])
    >>> round(float(NegativeLogLikelihood()([[1.0]], normal)), 4)
    1.4189
    """

    def __init__(self, name="negative_log_likelihood", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        dist = _distribution_of(y_pred, type(self).__name__)
        log_prob = dist.log_prob(align_target(y_true, dist))
        # Only under Keras's mean over the batch (compile's default): with reduction="sum", or "none"
        # and a custom loop's tf.nn.compute_average_loss, the (N, L) values are summed as they are.
        mean_over_batch = self.reduction in (
            tf_keras.losses.Reduction.AUTO, tf_keras.losses.Reduction.SUM_OVER_BATCH_SIZE)
        if mean_over_batch and log_prob.shape.rank is not None and log_prob.shape.rank > 1:
            # A label per time step or pixel: Keras averages the loss over all N * L values, which
            # made the data term the mean per label while the KL terms are scaled by 1 / N per
            # example (an ELBO with the KL weighted L times too much). Times L, the mean is the
            # example's joint NLL (the sum over its labels, as log_likelihoods reports), also
            # under Keras's temporal (N, L) sample weights.
            steps = tf.reduce_prod(tf.shape(log_prob)[1:])
            log_prob = log_prob * tf.cast(steps, log_prob.dtype)
        return -log_prob


def _elementwise(dist):
    """``dist`` (a head's output or distribution) without its ``tfd.Independent`` wrappers."""
    dist = distribution_of(dist)
    while isinstance(dist, tfd.Independent):
        dist = dist.distribution
    return dist


def distribution_of(output):
    """The distribution behind a head's output (``output`` itself if it is none)."""
    # A head's output: a KerasTensor-backed value in graph mode, a _TensorCoercible eagerly.
    dist = getattr(output, "_tfp_distribution", output)
    return getattr(dist, "tensor_distribution", dist)


def _distribution_of(y_pred, loss_name):
    dist = distribution_of(y_pred)
    if not hasattr(dist, "log_prob"):
        raise TypeError(
            f"{loss_name} needs a model whose output is a distribution: end the network with a "
            "tfp_bnn head (tfp_bnn.heads)."
        )
    return dist


@register
class BetaNegativeLogLikelihood(tf_keras.losses.Loss):
    """Negative log-likelihood with each target weighted by its predicted variance to the ``beta``.

    The "beta-NLL" of Seitzer et al. (2022), for heteroscedastic regression heads::

        loss_i = sum_k  w_ik * -log p(y_ik | x_i),   w_ik = stop_gradient(var_ik^beta) / mean_i(...)

    Why: with the plain NLL the gradient of the mean is ``(mu - y) / sigma^2``,
    so a network that predicts large noise somewhere stops fitting the mean
    there, and the mean ends up worse than a homoscedastic model's (on the UCI
    data sets by 7-12 % RMSE). The weight rescales it to ``sigma^(2 beta - 2)
    (mu - y)``: ``beta = 0`` is the NLL, ``beta = 1`` fits the mean as the mean
    squared error does. The variance's optimum is unchanged (``sigma^2 = E[(y -
    mu)^2 | x]``), and the weights have mean 1 over the batch (per target; weighted
    by Keras's ``sample_weight``/``class_weight``, and per member in an ensemble's
    step), so the data term keeps the NLL's scale against the KL terms in ``model.losses``.
    That normalisation makes the weighting act between the examples of one
    batch: at batch size 1 the loss is the NLL, and small batches weaken it
    (Seitzer et al. do not normalise); use batches of 32 or more.
    Weights that are constant (homoscedastic and point heads) give exactly the
    NLL. Only training changes: the model still predicts, and is scored by, its
    distribution (the ``nll`` in ``fit``'s logs is then the weighted loss).

    Example:

    >>> import tfp_bnn
    >>> model = tfp_bnn.make_regressor((3,), train_size=100)
    >>> model.compile(optimizer="adam", loss=tfp_bnn.BetaNegativeLogLikelihood(beta=0.5))

    Args:
      beta: exponent in ``[0, 1]``.
    """

    def __init__(self, beta=0.5, name="beta_negative_log_likelihood", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}.")
        self.beta = float(beta)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # The weights' mean is taken over the examples as the loss weighs them: with Keras's
        # sample_weight (class_weight), so that rows of weight 0 do not rescale the others.
        # Per thread, not on the loss object: one loss object may be called by several threads at
        # once (models sharing it, fitted in threads), and each call must see its own weights.
        calls = _BETA_SAMPLE_WEIGHTS.__dict__.setdefault("by_loss", {})
        calls.setdefault(id(self), []).append(sample_weight)
        try:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        finally:
            calls[id(self)].pop()
            if not calls[id(self)]:
                del calls[id(self)]

    def call(self, y_true, y_pred):
        dist = _distribution_of(y_pred, type(self).__name__)
        y = align_target(y_true, dist)
        # The per-target terms: the elementwise distribution inside Independent.
        elementwise = dist.distribution if isinstance(dist, tfd.Independent) else dist
        if isinstance(elementwise, (tfd.Categorical, tfd.Bernoulli)):
            # Their variance is that of the label's index (0..K-1): a weight with no meaning for a class.
            raise TypeError(
                f"BetaNegativeLogLikelihood weights each target by its predicted variance; "
                f"{type(elementwise).__name__} predicts classes: use it with a regression head (NormalHead, "
                "StudentTHead) and NegativeLogLikelihood for classifiers."
            )
        nll, variance = -elementwise.log_prob(y), elementwise.variance()
        if nll.shape.rank is not None and nll.shape.rank != variance.shape.rank:
            raise TypeError(
                f"BetaNegativeLogLikelihood weights each target by its variance, but "
                f"{type(elementwise).__name__} has log-probabilities of shape {nll.shape} and variances "
                f"of shape {variance.shape}: use it with a regression head (NormalHead, StudentTHead)."
            )
        weight = tf.stop_gradient(variance**self.beta)
        calls = getattr(_BETA_SAMPLE_WEIGHTS, "by_loss", {}).get(id(self))
        weight = weight / _mean_over_examples(weight, calls[-1] if calls else None)
        terms = nll * weight
        return tf.reduce_sum(tf.reshape(terms, [tf.shape(terms)[0], -1]), axis=-1)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


# The sample_weight of each BetaNegativeLogLikelihood call in progress, per thread (by id of the loss).
_BETA_SAMPLE_WEIGHTS = threading.local()


def _mean_over_examples(weight, sample_weight=None):
    """The mean of ``weight`` over the examples (axis 0), in ``weight``'s shape or broadcastable to it.

    Weighted by ``sample_weight`` when given (a batch of weights all 0: the plain mean; the loss is 0
    then). In an ensemble's step (``T`` stacked copies of the batch, one per member, inside
    :func:`tfp_bnn.sampling.weight_draws`) each member's block has its own mean, so that a member's
    loss does not depend on the variances the other members predict.
    """
    mode = sampling.current_mode()
    draws = mode.num_draws if mode.kind == "draws" else 1
    if sample_weight is None and draws == 1:
        return tf.reduce_mean(weight, axis=0)
    shape = tf.shape(weight)
    blocks = tf.reshape(weight, tf.concat([[draws, -1], shape[1:]], axis=0))
    if sample_weight is None:
        mean = tf.reduce_mean(blocks, axis=1, keepdims=True)
    else:
        rows = tf.reshape(tf.cast(sample_weight, weight.dtype), [draws, -1])  # one weight per example
        rows = tf.reshape(rows, tf.concat([tf.shape(rows), tf.ones([tf.rank(weight) - 1], tf.int32)], axis=0))
        total = tf.reduce_sum(rows, axis=1, keepdims=True)
        weighted = tf.math.divide_no_nan(tf.reduce_sum(rows * blocks, axis=1, keepdims=True), total)
        mean = tf.where(total > 0, weighted, tf.reduce_mean(blocks, axis=1, keepdims=True))
    return tf.reshape(tf.broadcast_to(mean, tf.shape(blocks)), shape)
