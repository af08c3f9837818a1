"""Keras models for the four regimes of the article series.

=========================  ================  ===================  ==========================
regime                     hidden layers     head                 uncertainty
=========================  ================  ===================  ==========================
``deterministic``          ``Dense``         point                none
``probabilistic``          ``Dense``         distribution         aleatoric
``bayesian``               ``BayesianDense`` point                epistemic
``bayesian_probabilistic`` ``BayesianDense`` distribution         aleatoric + epistemic
=========================  ================  ===================  ==========================

In the Bayesian regimes, ``inference`` chooses how the weights are uncertain:

================  ============================================================
``inference``     hidden and output layers
================  ============================================================
``variational``   ``BayesianDense``: a variational posterior, KL to the prior
``mc_dropout``    ``MCDropout`` before every ``Dense`` (Gal & Ghahramani 2016)
``ensemble``      ``EnsembleDense``: ``num_members`` independently initialised
                  networks trained side by side (Lakshminarayanan et al. 2017)
================  ============================================================

(:mod:`tfp_bnn.baselines`). All three predict through :func:`tfp_bnn.predict`.

:func:`make_regressor` and :func:`make_classifier` build them as
:class:`BayesianModel`, a Functional ``tf_keras.Model`` that users compile and
``fit`` as usual. Its loss is the negative log-likelihood of the head plus the
KL terms in ``model.losses`` (the negative ELBO per example), and the
training history shows both parts as ``nll`` and ``kl`` next to ``loss``.

Example:

>>> import numpy as np, tf_keras, tfp_bnn
>>> x = np.random.rand(200, 1).astype("float32"); y = 2 * x[:, 0] + 0.1
>>> model = tfp_bnn.make_regressor((1,), hidden_units=(16,), train_size=len(x))
>>> model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
>>> history = model.fit(x, y, epochs=2, verbose=0)
>>> sorted(history.history)
['kl', 'loss', 'nll']
"""

import contextlib
import dataclasses
import inspect
import math
import threading

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from tf_keras.src import losses as keras_losses  # LossFunctionWrapper, what compile makes of a function
from tf_keras.src.engine import data_adapter  # Keras's own batching of arrays, pinned with tf-keras
from tf_keras.src.utils import losses_utils  # how compiled_loss brings losses to one dtype

from tfp_bnn import heads as heads_lib
from tfp_bnn import _warnings, sampling, validation
from tfp_bnn._factory import deserialize, float32_under_mixed_precision, register, serialize
from tfp_bnn.baselines import EnsembleDense, MCDropout, checked_rate
from tfp_bnn.layers import TFP_VARIATIONAL_LAYERS, BayesianDense, _BayesianLayer
from tfp_bnn.posteriors import FullCovarianceNormal
from tfp_bnn.priors import GaussianPrior

__all__ = ["BayesianModel", "make_regressor", "make_classifier", "posterior_as_prior", "REGIMES", "INFERENCE_METHODS"]

REGIMES = ("deterministic", "probabilistic", "bayesian", "bayesian_probabilistic")
INFERENCE_METHODS = ("variational", "mc_dropout", "ensemble")
# Prior length-scale of the MC dropout weight decay l^2 (1 - p) / (2 N) (Gal & Ghahramani 2016, UCI runs).
MC_DROPOUT_LENGTH_SCALE = 1e-2
# Batches per tf.function call in fit/evaluate/predict unless compile is told
# otherwise; the per-epoch time stops falling between 16 and 32 (1x50 Flipout at batch 32,
# relative to 32: 2.0-2.15x at 1, 1.12-1.17x at 8, 1.02-1.14x at 16, 1.0x at 64, the spread
# that of a shared 2-core machine's load; benchmarks/speed.py compares 1 with 32).
DEFAULT_STEPS_PER_EXECUTION = 32
# The baselines' defaults: MC dropout's rate p and the deep ensemble's M networks.
DEFAULT_DROPOUT_RATE = 0.05
DEFAULT_NUM_MEMBERS = 5


# Registered: the TF SavedModel format (``model.save("dir")``) stores the model's metrics by
# class name, and load_model could not revive an unregistered one ("Unable to restore custom
# object of class '_LogMean'").
@tf_keras.saving.register_keras_serializable(package="tfp_bnn")
class _LogMean(tf_keras.metrics.Mean):
    """A running mean of ``fit``'s logs, which the ``.keras`` format neither saves nor restores.

    The format walks a model's attributes and its ``metrics``, so it found the
    trackers (which exist before any ``fit``, unlike Keras's compiled metrics) and
    restored them on load: under a ``MirroredStrategy`` their variables are
    ``SyncOnRead``, and ``load_model`` in ``strategy.scope()`` failed with
    "unsupported operand type(s) for /: 'Dataset' and 'int'". Files that hold
    them load too: their values are ignored.
    """

    def save_own_variables(self, store):
        pass

    def load_own_variables(self, store):
        pass


@register
class BayesianModel(tf_keras.Model):
    """Functional ``tf_keras.Model`` ending in a :mod:`tfp_bnn.heads` head.

    Differences from a plain Functional model:

    * ``compile`` defaults the loss to :class:`tfp_bnn.heads.NegativeLogLikelihood`
      and warns of trainable weights stored in float16;
    * ``fit``/``evaluate`` check NumPy inputs first (NaN, shapes, dtypes,
      labels outside the head's support) with :mod:`tfp_bnn.validation`;
    * ``fit`` warns when the Bayesian layers' ``kl_weight`` (``1 / train_size``)
      is for a training set more than twice larger or smaller than the rows it
      trains on (arrays after ``validation_split``; datasets of fixed-size batches),
      when in-memory ``x`` or ``y`` are far from unit scale, and when a ``tfp.layers``
      variational layer adds its KL unscaled;
    * the logs hold ``loss = nll + kl``, where ``kl`` is the sum of
      ``model.losses`` (the 1/N-scaled KL of the Bayesian layers and any other
      regularizer);
    * step functions are retraced when the :mod:`tfp_bnn.sampling` mode differs
      from the one they were traced in;
    * a model of :class:`tfp_bnn.baselines.EnsembleDense` layers (an ensemble of
      ``num_members`` networks) trains and evaluates every member on every
      batch: the batch goes through stacked once per member; the logged loss
      is the mean of the members' losses (``kl``: ``model.losses`` / ``M``,
      each member's own penalty) and ``fit`` minimises their sum; its ``model.predict``
      averages every member's prediction for every row (a plain model sends row ``n``
      of a batch through member ``n mod M``);
    * ``model.predict`` returns the head's tensor (the mean, or class
      probabilities), also when run eagerly.

    Build it like a Functional model: ``BayesianModel(inputs, outputs)``, arguments as in
    ``tf_keras.Model``.

    Example: a custom network of Bayesian layers ending in a head.

    >>> import tf_keras, tfp_bnn
    >>> inputs = tf_keras.Input((3,))
    >>> hidden = tfp_bnn.BayesianDense(16, activation="relu", kl_weight=1 / 100)(inputs)
    >>> parameters = tfp_bnn.BayesianDense(2, kl_weight=1 / 100)(hidden)  # loc and scale of a Normal
    >>> model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(parameters))
    >>> model.compile(optimizer="adam")  # the loss is the head's negative log-likelihood
    >>> len(model.losses)  # one KL term per Bayesian layer
    2
    """

    # The same arguments as Functional.__init__, which is what lets Keras save
    # and revive this class as a Functional model (get_config/from_config).
    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        validation.check_eager_outside_functions("tfp_bnn.BayesianModel")
        validation.check_not_keras3((inputs, outputs), "tfp_bnn.BayesianModel")
        super().__init__(inputs=inputs, outputs=outputs, name=name, trainable=trainable, **kwargs)
        validation.check_no_keras3_weights(self)
        # Any output may be the head: with outputs [head, auxiliary Dense] the Dense is the last layer.
        # A model ending in a head counts as its head (Keras's end-to-end model: preprocessing layers,
        # then the fitted model as a layer).
        if not any(_head_of(*coordinates) is not None for coordinates in _output_coordinates(self)):
            raise TypeError(
                "A BayesianModel must end in a tfp_bnn head (tfp_bnn.heads), got "
                f"{', '.join(dict.fromkeys(type(layer).__name__ for layer in self._output_layers))}."
                f"{heads_lib.replacement_advice(self._output_layers[-1])}"
            )
        self._create_trackers()
        self._traced_modes = {}
        self.num_members = _num_members(self)
        _warn_of_shared_head_weights(self)
        heads_lib.warn_of_squashed_logits(self)

    # Running means of the logs are not model state: untracked, they stay out
    # of model.weights, get_weights() and the saved file.
    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _create_trackers(self):
        self.nll_tracker = _LogMean(name="nll")
        self.kl_tracker = _LogMean(name="kl")

    @property
    def head(self):
        """The model's last layer, a :class:`tfp_bnn.heads.Head` (with several outputs, the last head among them).

        For an output that is a model ending in a head (a fitted model inside an end-to-end model), that head.
        """
        if isinstance(self.layers[-1], heads_lib.Head):
            return self.layers[-1]
        return [head for head in (_head_of(*c) for c in _output_coordinates(self)) if head is not None][-1]

    def compile(
        self,
        optimizer="adam",
        loss=None,
        metrics=None,
        loss_weights=None,
        weighted_metrics=None,
        run_eagerly=None,
        steps_per_execution=None,
        jit_compile=None,
        **kwargs,
    ):
        """``tf_keras.Model.compile`` with the head's NLL as default loss and 32 steps per call.

        ``fit`` of a small network spends most of a small-batch epoch in
        Python between steps; running ``steps_per_execution`` batches inside
        one ``tf.function`` call removes that (``benchmarks/speed.py``).
        Batch-level callbacks then run every ``steps_per_execution`` batches;
        pass ``steps_per_execution=1`` to get them after every batch.
        ``jit_compile=True`` compiles :func:`tfp_bnn.predict`'s graph with XLA
        too (not for MC dropout; see :mod:`tfp_bnn.prediction`). Keras also
        compiles the training step with it, which made 1x50 batch-32 epochs
        of the Bayesian estimators 1.3-1.5x slower here (the ensemble's 1.5x
        faster); to use XLA for prediction only, set ``model.jit_compile =
        True`` after ``fit``.

        The arguments are Keras's, in Keras's order (the default optimizer is
        ``"adam"``, not Keras's ``"rmsprop"``). ``fit`` logs ``loss`` =
        ``nll`` + ``kl``, where ``nll`` is the compiled loss (the head's NLL
        unless you pass another) and ``kl`` the sum of ``model.losses`` (for an
        ensemble of ``M`` networks, divided by ``M``). For an ensemble the loss
        and Keras ``metrics`` are averages over the members' own predictions,
        not scores of the ensemble's mixture (use
        :func:`tfp_bnn.predict` for those).
        """
        # Loading (compile_from_config; the SavedModel and HDF5 loaders pass from_serialized) compiles
        # what the file holds: a file saved with a metric named "nll" still loads, with a warning.
        loading = kwargs.pop("_loading", False) or kwargs.get("from_serialized", False)
        validation.check_not_keras3((optimizer, loss, metrics, weighted_metrics), "compile")
        if loss is None:
            _check_all_outputs_are_heads(self)
        _check_metric_names(self, metrics, weighted_metrics, warn_only=loading)
        super().compile(
            optimizer=optimizer,
            loss=heads_lib.NegativeLogLikelihood() if not loss else tf.nest.map_structure(_target_aligned, loss),
            metrics=metrics,
            loss_weights=loss_weights,
            weighted_metrics=weighted_metrics,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution or DEFAULT_STEPS_PER_EXECUTION,
            jit_compile=jit_compile,
            **kwargs,
        )
        if loss:  # the files (.keras; .h5 and SavedModel: _user_losses) hold the loss as given, not its wrapper
            self.loss = self.compiled_loss._user_losses = loss
            self._compile_config.config["loss"] = loss
        # As Keras's compiled metrics, which compile makes anew: get_metrics_result() after a recompile
        # (fine-tuning with another optimizer) held the nll/kl of the fit or evaluate before it.
        self.nll_tracker.reset_state()
        self.kl_tracker.reset_state()
        _warn_of_half_precision_weights(self)

    # Keras's Model.compile_from_config skips models with a custom compile (a
    # warning, no optimizer after load_model); this is its body without that check.
    def compile_from_config(self, config):
        self.compile(**tf_keras.saving.deserialize_keras_object(config), _loading=True)
        # As Keras: legacy optimizers (tf_keras.optimizers.legacy) have no build, and load_model
        # of a model compiled with one failed ("'Adam' object has no attribute 'build'").
        if self.built and isinstance(self.optimizer, tf_keras.optimizers.Optimizer):
            self.optimizer.build(self.trainable_variables)

    # The nll/kl trackers are not in `metrics`: Keras's documented train_step overrides return
    # {m.name: m.result() for m in self.metrics} (or compute_metrics), and a subclass that
    # does so without updating them logged nll 0.0 and kl 0.0 at every epoch. BayesianModel's
    # own steps add them to their logs (_log); Keras resets them with the metrics.
    def reset_metrics(self):
        super().reset_metrics()
        self.nll_tracker.reset_state()
        self.kl_tracker.reset_state()

    def get_metrics_result(self):
        """Keras's metric results, with ``nll`` and ``kl`` once this model's own steps have logged them.

        Read eagerly (``model.get_metrics_result()``, ``compute_metrics`` after ``fit``/``evaluate``).
        Inside a step function they are left to the steps' logs (``_log``): a ``train_step`` override
        that returns ``compute_metrics`` without updating them (Keras's guide's) logs no ``nll``/``kl``
        rather than 0.0 at every epoch.
        """
        results = super().get_metrics_result()
        if tf.executing_eagerly() and float(self.nll_tracker.count.numpy()) > 0:
            results.update(nll=self.nll_tracker.result(), kl=self.kl_tracker.result())
        return results

    @property
    def metrics_names(self):
        # evaluate()'s list (return_dict=False) in the order loss, metrics, nll, kl.
        return super().metrics_names + [self.nll_tracker.name, self.kl_tracker.name]

    def kl_divergence(self):
        """Sum of ``model.losses`` (recomputed now): the scaled KL of all Bayesian layers.

        Each layer adds ``kl_weight * KL(q || p)``; any other loss a layer adds (a plain
        ``Dense``'s ``kernel_regularizer``, MC dropout's weight decay) is in the sum too. The
        unscaled KL in nats is the sum of ``layer.kl_divergence()`` over the Bayesian layers.
        In the widest dtype among them (layers of float32 and float64 mix), float32 without any.
        """
        losses = self.losses
        if not losses:
            return tf.constant(0.0)
        # As Keras sums them in compiled_loss: add_n refuses float32 beside float64.
        return tf.add_n(losses_utils.cast_losses_to_common_dtype(losses))

    def _step(self, data, training):
        x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
        x = _conformed_input(self, x)
        if self.num_members > 1:
            # One stacked copy per member (draw t is member t mod M), targets alike.
            x, y, sample_weight = tf.nest.map_structure(
                lambda v: sampling.stack_draws(v, self.num_members), (x, y, sample_weight)
            )
            with sampling.weight_draws(self.num_members):
                y_pred = self(x, training=training)
        else:
            y_pred = self(x, training=training)
        # A padding mask on the output (Embedding(mask_zero=True) before a per-step head): its steps'
        # weights are 0 in the loss (Keras's compiled loss would take it from y_pred itself, but
        # averaged over the unmasked steps, not summed per example as the NLL's ELBO wants).
        masks = [getattr(output, "_keras_mask", None) for output in tf.nest.flatten(y_pred)]
        weights = _masked_sample_weight(y_pred, sample_weight)
        kl = self.kl_divergence()
        if self.num_members > 1:
            # The loss is the mean of the members' losses, and a member's own penalty
            # counts once in it: the regularizers sum over the members.
            kl = kl / self.num_members
        # An ensemble's losses see its members (weight_draws): a loss that normalises over the
        # batch (BetaNegativeLogLikelihood) does so per member, as in a network of its own.
        with sampling.weight_draws(self.num_members) if self.num_members > 1 else contextlib.nullcontext():
            loss = self.compiled_loss(y, y_pred, weights, regularization_losses=[kl])
        if any(mask is not None for mask in masks):  # back for Keras's metrics, which leave padded steps out by it
            _set_masks(tf.nest.flatten(y_pred), masks)
        # compiled_loss sums in the widest dtype of the NLL and the KL (a float64 head, or
        # float64 layers, against the float32 zero of a model without KL terms).
        return x, y, weights, y_pred, tf.cast(kl, loss.dtype), loss

    def _log(self, x, y, sample_weight, y_pred, kl, loss):
        # Weighted by the batch size, as Keras weights `loss`: with a partial last batch
        # the epoch's nll + kl is still its loss, and nll the mean over examples.
        batch_size = tf.shape(tf.nest.flatten(y)[0])[0]
        # Under a distribution strategy compiled_loss returns (nll + kl) / replicas (the
        # replicas' gradients are summed); the trackers want this replica's means.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self.nll_tracker.update_state(loss * replicas - kl, sample_weight=batch_size)
        self.kl_tracker.update_state(kl, sample_weight=batch_size)
        logs = self.compute_metrics(x, _targets_for_metrics(y, y_pred, sample_weight), y_pred, sample_weight)
        return {**logs, "nll": self.nll_tracker.result(), "kl": self.kl_tracker.result()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            x, y, sample_weight, y_pred, kl, loss = self._step(data, training=True)
            # The members' sum, not their mean, so that every member gets the whole gradient of
            # its own loss, as in a network of its own (SGD's step would be lr / M otherwise).
            objective = loss * self.num_members if self.num_members > 1 else loss
        _minimize(self.optimizer, objective, self.trainable_variables, tape)
        return self._log(x, y, sample_weight, y_pred, kl, loss)

    def test_step(self, data):
        return self._log(*self._step(data, training=False))

    # -- checks before training --------------------------------------------
    def _checked(self, x, y):
        heads_lib._sync_step_shapes(self)
        # A list for several inputs, also for a model built on a dict of inputs (keras.io's structured-data
        # models): its dict input_shape failed here ("unhashable type: 'slice'").
        input_shape = validation.model_input_shape(self)
        several = isinstance(input_shape, list)
        if isinstance(x, tf.data.Dataset):
            validation.check_dataset(x, input_shape if several else input_shape[1:], self.head)
            return x, y
        if isinstance(x, tf_keras.utils.Sequence) or callable(getattr(x, "__next__", None)):
            return x, y  # streamed data is checked by Keras as it comes
        if len(self.outputs) > 1:  # several heads: each target is checked against its own head
            if not several:
                given = validation.single_input(self, x)
                x = _as_given(given, validation.check_inputs(given, input_shape[1:], validation.model_input_dtype(self)))
            return x, _checked_targets_by_output(self, y)
        if several:  # several inputs: Keras matches them to the model's
            y = _single_target(self, y)
            return x, y if y is None else validation.check_targets(y, self.head)
        given = validation.single_input(self, x)
        x = _as_given(given, validation.check_inputs(given, input_shape[1:], validation.model_input_dtype(self)))
        y = _single_target(self, y)
        if y is None:
            raise ValueError(
                "y is None; the loss is the head's negative log-likelihood of the targets, so pass "
                "them: model.fit(x, y)."
            )
        y = validation.check_targets(y, self.head, num_examples=len(x))
        return x, y

    def _checked_sample_weight(self, sample_weight, x):
        return _checked_weights(sample_weight, x, len(self.outputs), _weight_steps(self))

    def fit(self, x=None, y=None, *args, **kwargs):
        """``tf_keras.Model.fit``, after checking the data, with tf.data autotuning off for arrays.

        NumPy arrays and tensors go through Keras's own batching (the same
        shuffling, ``validation_split``, ``sample_weight`` and partial last
        batch) with ``tf.data.Options().autotune.enabled = False``. On a
        2-core machine the autotuner competes with the training step for the
        cores: about half of the ``fit`` calls of a 2x256 network at batch
        32 ran every step at a fixed ~5 ms (1.29 s per epoch instead of
        0.70 s), in every estimator and in plain Keras models too. Slicing
        batches out of arrays in memory needs no tuning. Pass a
        ``tf.data.Dataset`` to choose its options yourself.
        """
        args = _arguments(tf_keras.Model.fit, self, x, y, *args, **kwargs)
        validation.check_not_keras3(args["callbacks"], "fit")
        args["x"], args["y"] = self._checked(args["x"], args["y"])
        args["sample_weight"] = self._checked_sample_weight(args["sample_weight"], args["x"])
        if len(self.outputs) == 1:  # several outputs: Keras refuses class_weight ("only ... a single output")
            _check_class_weight(args["class_weight"], self.head, args["y"])
        validation_data = args["validation_data"]
        if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
            x_valid, y_valid = self._checked(*validation_data[:2])
            weights = [self._checked_sample_weight(w, x_valid) for w in validation_data[2:3]]
            args["validation_data"] = (x_valid, y_valid, *weights)
        validation_xy = args["validation_data"]
        if isinstance(validation_xy, (tuple, list)):
            validation_xy = tuple(validation_xy[:2])
        else:
            validation_xy = (validation_xy, None)
        unknown = _unknown_length(args["x"], args["y"], args["steps_per_epoch"]) or (
            validation_xy[0] is not None and _unknown_length(*validation_xy, args["validation_steps"]))
        _warn_of_another_train_size(self, args)
        _warn_of_unscaled_tfp_kl(self, args)
        _warn_of_unscaled_data(self, args["x"], args["y"])
        args["callbacks"] = _progbar_of_logs(args["callbacks"], args["verbose"])
        one_step = self._one_step_per_execution(self.make_train_function) if unknown else contextlib.nullcontext()
        with self._one_keras_call_at_a_time(), self._seed_read_at_run_time(), one_step:
            return super().fit(**_untuned_arrays(self, args))

    def evaluate(self, x=None, y=None, *args, **kwargs):
        args = _arguments(tf_keras.Model.evaluate, self, x, y, *args, **kwargs)
        validation.check_not_keras3(args["callbacks"], "evaluate")
        args["x"], args["y"] = self._checked(args["x"], args["y"])
        args["sample_weight"] = self._checked_sample_weight(args["sample_weight"], args["x"])
        extra = args.pop("kwargs", {})  # Keras's private ones, e.g. fit's _use_cached_eval_dataset
        unknown = _unknown_length(args["x"], args["y"], args["steps"])
        args["callbacks"] = _progbar_of_logs(args["callbacks"], args["verbose"])
        one_step = self._one_step_per_execution(self.make_test_function) if unknown else contextlib.nullcontext()
        with self._one_keras_call_at_a_time(), self._seed_read_at_run_time(), one_step:
            return super().evaluate(**args, **extra)

    def predict(self, x, *args, **kwargs):
        """``tf_keras.Model.predict``: the head's mean (or class probabilities) for one weight draw.

        For an ensemble, the average over its members. Use :func:`tfp_bnn.predict`
        for the predictive distribution. Data of unknown length run one step per
        execution, as in ``fit``.
        """
        args = _arguments(tf_keras.Model.predict, self, x, *args, **kwargs)
        validation.check_not_keras3(args["callbacks"], "predict")
        unknown = _unknown_length(args["x"], None, args["steps"])
        one_step = self._one_step_per_execution(self.make_predict_function) if unknown else contextlib.nullcontext()
        with self._one_keras_call_at_a_time(), self._seed_read_at_run_time(), one_step:
            return super().predict(**args)

    def predict_step(self, data):
        # The head's tensor (its mean, or class probabilities), also when run eagerly:
        # Keras's eager predict would hand back the distribution object itself.
        if self.num_members > 1:
            return self._ensemble_predict_step(data)
        return tf.nest.map_structure(tf.convert_to_tensor, super().predict_step(data))

    def _ensemble_predict_step(self, data):
        """The ensemble's prediction: the head's tensor of every member, averaged.

        A plain call sends row ``n`` of a batch through member ``n mod M``, so
        ``model.predict`` gave a row the member of its place in its batch: other
        numbers for another ``batch_size``, and member 0 alone for a single row.
        Every member sees every row here, as in ``fit`` and ``evaluate``.
        """
        x, _, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
        members = self.num_members
        with sampling.weight_draws(members):
            y_pred = self(tf.nest.map_structure(lambda v: sampling.stack_draws(v, members), x), training=False)

        def average(tensor):
            tensor = tf.convert_to_tensor(tensor)
            by_member = tf.reshape(tensor, tf.concat([[members, -1], tf.shape(tensor)[1:]], axis=0))
            return tf.reduce_mean(by_member, axis=0)

        return tf.nest.map_structure(average, y_pred)

    # -- one batch at a time -------------------------------------------------
    # Keras's multi-step function would ask the one-batch iterator for compile's
    # steps_per_execution batches (OutOfRangeError). It reads the variable at run
    # time, so one step runs if it holds 1 for the call; building the function
    # first keeps it the multi-step one that fit needs afterwards.
    def train_on_batch(self, *args, **kwargs):
        with self._one_keras_call_at_a_time(), self._seed_read_at_run_time(), \
                self._one_step_per_execution(self.make_train_function):
            return super().train_on_batch(*args, **kwargs)

    def test_on_batch(self, *args, **kwargs):
        with self._one_keras_call_at_a_time(), self._seed_read_at_run_time(), \
                self._one_step_per_execution(self.make_test_function):
            return super().test_on_batch(*args, **kwargs)

    def predict_on_batch(self, *args, **kwargs):
        with self._one_keras_call_at_a_time(), self._seed_read_at_run_time(), \
                self._one_step_per_execution(self.make_predict_function):
            return super().predict_on_batch(*args, **kwargs)

    @contextlib.contextmanager
    def _one_step_per_execution(self, make_function):
        steps = getattr(self, "_steps_per_execution", None)
        if steps is None or int(steps.numpy()) == 1:
            yield
            return
        with self.distribute_strategy.scope():
            make_function()
        previous = steps.numpy()
        steps.assign(1)
        try:
            yield
        finally:
            steps.assign(previous)

    # -- Keras's fit/evaluate/predict on one model from several threads -----------
    @contextlib.contextmanager
    def _one_keras_call_at_a_time(self):
        """Keras's ``fit``/``evaluate``/``predict`` (and ``*_on_batch``) on this model run one at a time.

        They share the model's state: its step functions (rebuilt when the sampling mode
        changes), the seed variable of :meth:`_seed_read_at_run_time` and Keras's
        ``steps_per_execution`` variable, which Keras sets for a last partial execution
        (32 batches per execution here by default). Eight threads calling
        ``model.predict`` inside ``weight_draws(4, seed)`` with their own seeds got
        another thread's draws in 34 of 40 calls, and ``predict`` under
        ``posterior_mean`` raised "Empty batch_outputs". Re-entrant: a callback's own
        ``predict`` inside ``fit`` runs in the same thread. :func:`tfp_bnn.predict`
        does not wait for it: its graphs share no such state.

        A thread that waits says so first: one started by a callback of ``fit`` (or a
        ``Sequence``'s workers) and awaited there would wait for good.
        """
        lock = vars(self).setdefault("_tfp_bnn_keras_calls", threading.RLock())  # out of Keras's tracking
        if not lock.acquire(blocking=False):
            _warnings.warn(
                f"Keras's fit/evaluate/predict of model {self.name!r} is running in another thread: this call "
                "waits for it (they share the model's step functions and seed). If that thread waits for this "
                "one (a callback of fit that starts a thread and joins it), both wait for good: call "
                "tfp_bnn.predict there instead, which does not wait."
            )
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    # -- a weight_draws seed read when the step runs ---------------------------
    @contextlib.contextmanager
    def _seed_read_at_run_time(self):
        """Inside ``weight_draws(T, seed)``, the steps read the seed from a variable of the model.

        A traced step holds a seed tensor as a constant, so each new seed value
        retraced Keras's step functions (Mode.key holds the value): ~0.5 s per
        ``model.predict`` and ~1.5 s per ``model.evaluate`` of a 1x16 network in
        a loop over seeds, and memory kept per retrace. The value is assigned to
        the model's own variable before the call instead, and the steps read it
        when they run: one trace for all seeds, the same draws (the stateless
        ops see the same value). A ``tf.Variable`` seed (read at run time
        already), eager steps (``run_eagerly``: nothing traced) and a context
        with a ``record`` (filled when a step is traced) are left as they are.
        """
        mode = sampling.current_mode()
        seed = mode.seed
        if (
            mode.kind != "draws" or seed is None or isinstance(seed, tf.Variable) or self.run_eagerly
            or not tf.executing_eagerly() or mode.record is not None  # a record is filled by a trace
        ):
            yield
            return
        try:
            seed = tf.convert_to_tensor(seed)
            seed.numpy()
        except (AttributeError, TypeError, ValueError, NotImplementedError):  # symbolic: as it was
            yield
            return
        if seed.dtype not in (tf.int32, tf.int64) or seed.shape != (2,):
            yield  # refused by the stateless ops, with their own message, as before
            return
        # One int64 variable for seeds of either dtype: the stateless ops derive their key from the
        # seed's values (an int32 seed and the int64 seed of the same values draw the same numbers),
        # and a variable per dtype retraced Keras's steps at each switch (Mode.key holds the variable).
        # Untracked (not model state), and out of tf.Module's walk over attributes (model.submodules,
        # tf.Module.variables): a plain object there is not entered.
        holder = vars(self).setdefault("_tfp_bnn_seed_variable", _SeedVariable())
        variable = holder.variable
        if variable is None:
            with tf.init_scope(), self.distribute_strategy.scope():
                variable = holder.variable = tf.Variable(
                    tf.zeros([2], tf.int64), trainable=False, name="weight_draws_seed"
                )
        previous = variable.read_value()  # a callback's own seeded predict inside fit: restored after it
        variable.assign(tf.cast(seed, tf.int64))
        try:
            with sampling._entered(dataclasses.replace(mode, seed=variable)):
                yield
        finally:
            variable.assign(previous)

    # -- retrace when the sampling mode changed ------------------------------
    def _mode_changed(self, function_name):
        key = sampling.current_mode().key
        changed = self._traced_modes.get(function_name, key) != key
        self._traced_modes[function_name] = key
        return changed

    def make_train_function(self, force=False):
        changed = self._mode_changed("train")
        return _per_model_step(super().make_train_function(force=force or changed), rebuilt=changed)

    def make_test_function(self, force=False):
        changed = self._mode_changed("test")
        return _per_model_step(super().make_test_function(force=force or changed), rebuilt=changed)

    def make_predict_function(self, force=False):
        changed = self._mode_changed("predict")
        return _per_model_step(super().make_predict_function(force=force or changed), rebuilt=changed)


def _minimize(optimizer, loss, variables, tape):
    """``optimizer.minimize``, without summing the gradients over replicas when there is one.

    Keras sums them with ``ReplicaContext.all_reduce``, a ``tf.custom_gradient`` that registers
    a gradient function per trace in TensorFlow's process-wide registry, never removed: each
    traced training step stays in memory after its model is deleted (plain tf_keras too; here
    ~34 MB per model, steps_per_execution=32 tracing the step twice). A search that builds and
    fits many models in one process grew by that per model. Over one replica the sum is the
    gradient itself: the same numbers, nothing registered.
    """
    if tf.distribute.has_strategy() or not isinstance(optimizer, tf_keras.optimizers.Optimizer):
        optimizer.minimize(loss, variables, tape=tape)  # several replicas; legacy optimizers
        return
    optimizer.apply_gradients(optimizer.compute_gradients(loss, variables, tape), skip_gradients_aggregation=True)


def _masked_sample_weight(y_pred, sample_weight):
    """``sample_weight`` times the padding masks of the outputs ``y_pred``, which are taken off them.

    A mask ``(N, *steps)`` (``_keras_mask``, set by Keras on a head's output when a masking layer
    feeds a per-step head) becomes per-step weights: with a mask only, the loss is the same as
    ``fit``'s with ``sample_weight=mask`` (each example's NLL summed over its unmasked steps).
    Per-example weights ``(N,)`` are spread over the steps. The mask is taken off ``y_pred`` for
    the compiled loss, which would apply it a second time, as a mean over the unmasked steps
    (``BayesianModel._step`` puts it back for the metrics).
    """
    outputs = tf.nest.flatten(y_pred)
    masks = [getattr(output, "_keras_mask", None) for output in outputs]
    if all(mask is None for mask in masks):
        return sample_weight
    _set_masks(outputs, [None] * len(outputs))
    if len(outputs) == 1:
        return _times_mask(sample_weight, masks[0])
    if sample_weight is None or tf.is_tensor(sample_weight) or isinstance(sample_weight, np.ndarray):
        weights = [sample_weight] * len(outputs)  # one weight for all outputs, as Keras takes it
    else:
        weights = tf.nest.flatten(sample_weight)
        if len(weights) != len(outputs):  # a dict of some outputs: Keras's own matching, masks left out
            return sample_weight
    return tf.nest.pack_sequence_as(y_pred, [_times_mask(w, m) for w, m in zip(weights, masks)])


def _set_masks(outputs, masks):
    for output, mask in zip(outputs, masks):
        try:
            output._keras_mask = mask
        except AttributeError:
            pass


def _times_mask(sample_weight, mask):
    """Per-step weights: ``mask`` ``(N, *steps)`` times ``sample_weight`` (``(N,)`` or ``(N, *steps)``)."""
    if mask is None:
        return sample_weight
    mask = tf.cast(mask, tf.float32)
    if sample_weight is None:
        return mask
    sample_weight = tf.cast(sample_weight, mask.dtype)
    # (N,) to (N, 1, ...) for a mask (N, *steps); ranks may be known only at run time.
    extra = tf.maximum(tf.rank(mask) - tf.rank(sample_weight), 0)
    sample_weight = tf.reshape(sample_weight, tf.concat([tf.shape(sample_weight), tf.ones([extra], tf.int32)], 0))
    return mask * sample_weight


def _targets_for_metrics(y, y_pred, sample_weight=None):
    """Per-step targets ``(N, *steps)`` with the trailing axis of the head's ``(N, *steps, 1)`` output.

    Keras adds it only to targets of rank 1. Without it a metric squeezed the predictions to
    ``(N, *steps)`` and averaged each example's steps first (``binary_accuracy`` is a mean over
    the last axis): per-step sample weights (a padding mask) then failed with "Can not
    squeeze dim[1]". Only with per-step weights: without them the per-example means weigh
    every step alike (the same numbers), and a multi-label model's ``(N, L)`` targets stay
    ``(N, L)`` for ``AUC(multi_label=True, num_labels=L)``, which takes rank 2 only.
    One output only; several are left to Keras.
    """
    if tf.nest.is_nested(y) or tf.nest.is_nested(y_pred) or not tf.is_tensor(y):
        return y
    if sample_weight is None or tf.nest.is_nested(sample_weight):
        return y
    if tf.convert_to_tensor(sample_weight).shape.rank in (None, 0, 1):  # per example: no per-step weights
        return y
    predicted = getattr(y_pred, "shape", tf.TensorShape(None))
    if predicted.rank is not None and predicted.rank >= 3 and y.shape.rank == predicted.rank - 1 and predicted[-1] == 1:
        return y[..., tf.newaxis]
    return y


def _aligned_target(y_true, y_pred):
    """``y_true`` in the shape of the head's distribution, if ``y_pred`` is a head's output."""
    dist = heads_lib.distribution_of(y_pred)
    if isinstance(dist, tfp.distributions.Distribution):
        return heads_lib.align_target(y_true, dist)
    return y_true


class _TargetAlignedLoss(keras_losses.LossFunctionWrapper):
    """A loss function of the user's, given the targets in the shape of the head's distribution.

    Keras's compiled loss expands targets of shape ``(N,)`` to ``(N, 1)`` when the model's output
    converts to a tensor of rank 2, as a classifier's class probabilities do. The loss of the
    series on probabilistic deep learning, ``lambda y, rv: -rv.log_prob(y)``, then took the
    log-probability of every label under every example's ``Categorical`` (an ``(N, N)`` matrix)
    and trained a classifier towards the label frequencies, without an error.
    ``NegativeLogLikelihood`` aligns the targets itself (:func:`tfp_bnn.heads.align_target`).
    """

    def call(self, y_true, y_pred):
        return super().call(_aligned_target(y_true, y_pred), y_pred)


class _TargetAlignedLossObject(tf_keras.losses.Loss):
    """A ``tf_keras.losses.Loss`` of the user's (``class NLL(Loss): call = -rv.log_prob(y)``), given aligned targets.

    Delegates to the user's object (its reduction and sample weighting, its state), as
    :class:`_TargetAlignedLoss` does to a function.
    """

    def __init__(self, loss):
        super().__init__(reduction=loss.reduction, name=loss.name)
        self.loss = loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        # What Keras's compiled loss allows the object it holds (this one) under a distribution strategy.
        self.loss._allow_sum_over_batch_size = self._allow_sum_over_batch_size
        return self.loss(_aligned_target(y_true, y_pred), y_pred, sample_weight=sample_weight)


def _target_aligned(loss):
    """``loss`` (one of compile's) as Keras would take it; a user's function or Loss gets aligned targets."""
    if isinstance(loss, (heads_lib.NegativeLogLikelihood, heads_lib.BetaNegativeLogLikelihood)):
        return loss  # they align the targets themselves
    if isinstance(loss, tf_keras.losses.Loss):
        return _TargetAlignedLossObject(loss)
    if callable(loss) and not isinstance(loss, str):
        return _TargetAlignedLoss(loss, name=getattr(loss, "__name__", None))
    return loss


def _per_model_step(function, rebuilt=False):
    """Keras's step function, without TensorFlow's warning of frequent retracing.

    TensorFlow counts traces per Python code object, across models: each model's first
    ``fit`` traces its step twice (the first call creates the optimizer's variables), and
    with ``steps_per_execution=32`` an epoch is a call or two, so a search loop over a
    few models warned "5 out of the last 9 calls to <function
    Model.make_train_function.<locals>.train_function> triggered tf.function retracing"
    from the fourth model on (as :func:`tfp_bnn.prediction._per_model_function` for
    predict's graphs).

    A step rebuilt because the sampling mode changed (``rebuilt``) keeps the warning: alternating
    modes between calls (``weight_draws`` with another ``num_draws``) retraces at every call.
    """
    if rebuilt:
        return function
    if hasattr(function, "experimental_get_tracing_count"):  # a tf.function (not run_eagerly)
        function._omit_frequent_tracing_warning = True
    return function


def _conformed_input(model, x):
    """One input tensor of unknown rank given the model's input rank, as Keras does when it knows it.

    Keras's step functions relax their trace to an unknown rank when batches of two ranks
    come in (a one-feature dataset's ``(N,)`` batches, which ``fit`` accepts, after ``(N, 1)``
    arrays), and ``tf.py_function`` in a ``tf.data`` map gives one; the Functional model then
    neither adds the feature axis nor knows the rank, which the Bayesian layers need.
    """
    if not isinstance(x, tf.Tensor) or x.shape.rank is not None:
        return x
    try:
        input_shape = validation.model_input_shape(model)
    except AttributeError:  # a subclassed model: no input shape to conform to
        return x
    if isinstance(input_shape, list):
        return x
    expected = tuple(input_shape[1:])
    if expected[-1:] == (1,):  # (N,) for one feature (or (N, L) for (L, 1)): the axis Keras adds
        x = tf.cond(tf.equal(tf.rank(x), len(expected)), lambda: tf.expand_dims(x, -1), lambda: x)
    return tf.ensure_shape(x, [None, *expected])


class _SeedVariable:
    """The seed variable of a model: a plain object, which tf.nest and tf.Module do not enter."""

    def __init__(self):
        self.variable = None


def _progbar_of_logs(callbacks, verbose):
    """``callbacks`` with a ``ProgbarLogger`` that shows ``nll``/``kl`` as logged, not averaged again.

    Keras's progress bar averages over the epoch's batches every log that is not the
    result of one of ``model.metrics``; ``nll`` and ``kl`` are running means already
    but are not in ``model.metrics`` (see ``BayesianModel.reset_metrics``): the bar
    showed a mean of running means, which did not add up to ``loss``.
    """
    names = ("nll", "kl")
    given = callbacks.callbacks if isinstance(callbacks, tf_keras.callbacks.CallbackList) else list(callbacks or [])
    progbars = [callback for callback in given if isinstance(callback, tf_keras.callbacks.ProgbarLogger)]
    for progbar in progbars:
        progbar.stateful_metrics = set(progbar.stateful_metrics) | set(names)
    if isinstance(callbacks, tf_keras.callbacks.CallbackList) or progbars or verbose == 0:
        return callbacks
    # Where Keras puts its own (first), with Keras's arguments.
    return [tf_keras.callbacks.ProgbarLogger(count_mode="steps", stateful_metrics=names), *given]


# fit warns when the layers' kl_weight is for a training set more than this factor larger or smaller than
# the rows it trains on. Within it: train_size=len(x) beside a validation_split up to 0.5, and a KL
# tempered by up to 2 on purpose; the slips it is for are off by an order of magnitude or more (a
# train_size left from other data, a subset fitted, the batch count, the layers' default kl_weight 1).
TRAIN_SIZE_TOLERANCE = 2.0


def _warn_of_another_train_size(model, args):
    """A ``UserWarning`` if the Bayesian layers' ``kl_weight`` (``1 / N``) is for another ``N`` than fit's rows.

    ``N`` is read from the layers (``kl_weight``, in their config: loaded models too) when all of
    them with a KL term share one weight; MC dropout's weight decay is a plain Keras ``L2``, which
    does not tell ``N`` from a user's own factor, and is not checked. The rows are those of arrays
    (after ``validation_split``) and of a finite ``tf.data.Dataset`` of a fixed batch size
    (``drop_remainder=True``) without ``steps_per_epoch``; other data are not checked.
    """
    weights = {
        layer.kl_weight for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, _BayesianLayer) and layer.kl_weight > 0  # 0: the start of a KL warm-up
        # A frozen layer's KL is a constant of the loss (no gradient): its weight, for the set it was
        # trained on, does not act on this fit (a pretrained Bayesian body under a new head).
        and layer.trainable
    }
    if len(weights) != 1:  # none, or set per layer on purpose
        return
    kl_weight = weights.pop()
    rows, described = _training_rows(args)
    if rows is None or rows <= 0:
        return
    size = 1.0 / kl_weight
    ratio = max(size, rows) / min(size, rows)
    if ratio <= TRAIN_SIZE_TOLERANCE:
        return
    exact = math.floor(rows)
    _warnings.warn(
        f"kl_weight {kl_weight:.3g} of the Bayesian layers weighs the KL for a training set of {size:.6g} "
        f"rows (kl_weight = 1/train_size), but fit trains on {described}: each step weighs the KL "
        f"{ratio:.3g}x too {'strongly' if size < rows else 'weakly'} against the NLL per example. Build the "
        f"model with train_size={exact} (or set layer.kl_weight = 1 / {exact} on every Bayesian layer). If the "
        "weight is meant (a tempered posterior, a part of the training set per fit call), silence this with "
        "warnings.filterwarnings('ignore', message='kl_weight').",
        UserWarning,
    )


def _unscaled_tfp_kl(layer):
    """The arguments by which ``layer``, a ``tfp.layers`` variational layer, adds its KL unscaled (a list).

    The Reparameterization/Flipout layers' default ``kernel_divergence_fn`` (and ``bias_divergence_fn``
    with a ``bias_prior_fn``) is the plain KL; ``DenseVariational``'s ``kl_weight`` defaults to ``None``.
    """
    if isinstance(layer, tfp.layers.DenseVariational):
        function = getattr(layer, "_kl_divergence_fn", None)
        cells = dict(zip(getattr(getattr(function, "__code__", None), "co_freevars", ()),
                         getattr(function, "__closure__", None) or ()))
        return ["kl_weight"] if "weight" in cells and cells["weight"].cell_contents is None else []
    defaults = inspect.signature(type(layer).__init__).parameters
    unscaled = []
    if "kernel_divergence_fn" in defaults and (
            getattr(layer, "kernel_divergence_fn", None) is defaults["kernel_divergence_fn"].default):
        unscaled.append("kernel_divergence_fn")
    if (getattr(layer, "bias_prior_fn", None) is not None and "bias_divergence_fn" in defaults
            and getattr(layer, "bias_divergence_fn", None) is defaults["bias_divergence_fn"].default):
        unscaled.append("bias_divergence_fn")
    return unscaled


def _warn_of_unscaled_tfp_kl(model, args):
    """A ``UserWarning`` if a ``tfp.layers`` variational layer adds its KL without ``1 / N`` to the loss.

    The series on probabilistic deep learning passes ``kernel_divergence_fn=lambda q, p, _:
    tfd.kl_divergence(q, p) / N``; left out, TFP adds the whole KL to the per-example NLL:
    the KL weighed N times too strongly, without a word (tfp_bnn's priors and posteriors are
    documented for these layers).
    """
    layers = [layer for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, TFP_VARIATIONAL_LAYERS) and layer.trainable and _unscaled_tfp_kl(layer)]
    rows, described = _training_rows(args)
    if not layers or rows is None or rows <= TRAIN_SIZE_TOLERANCE:
        return
    layer, exact = layers[0], math.floor(rows)
    fix = " and ".join(
        f"kl_weight=1 / {exact}" if argument == "kl_weight"
        else f"{argument}=lambda q, p, _: tfd.kl_divergence(q, p) / {exact}"
        for argument in _unscaled_tfp_kl(layer)
    )
    _warnings.warn(
        f"{type(layer).__name__} {layer.name!r}{f' and {len(layers) - 1} more' if len(layers) > 1 else ''} adds "
        f"the KL of its weights unscaled (TFP's default), but fit trains on {described}: each step weighs the "
        f"KL {rows:.6g}x too strongly against the NLL per example. Pass {fix}, or use "
        f"tfp_bnn's layers with kl_weight=1 / {exact}. If the weight is meant, silence this with "
        "warnings.filterwarnings('ignore', message='.* adds the KL of its weights unscaled').",
        UserWarning,
    )


# fit warns when the data a network meets in its own units are this many times off unit scale: a
# feature or (standardized) target whose mean or std exceeds it, or a non-constant target whose
# std is below its inverse. Past it the default regressor's RMSE was 3-270x the noise and its 95 %
# intervals covered 0-77 % of fresh points (targets of std 100 or offset 100, inputs of std 60).
UNSCALED_FACTOR = 10.0

# Layers that apply weights to the inputs as they come (no preprocessing in between).
_RAW_INPUT_LAYERS = (
    tf_keras.layers.Dense, tf_keras.layers.Flatten, tf_keras.layers.Conv1D, tf_keras.layers.Conv2D,
    tf_keras.layers.Conv3D, _BayesianLayer, EnsembleDense, MCDropout,
)


# Rows enough to tell a scale off by 10x; more would copy a large image array to float64 at each fit.
_SCALE_CHECK_ROWS = 10_000


def _warn_of_half_precision_weights(model):
    """Warn of trainable weights stored in float16 (``set_floatx("float16")``, a ``"float16"`` policy).

    tfp_bnn's Bayesian layers and heads stay float32 there, but plain layers (MC dropout's
    Dense, EnsembleDense, a deterministic network) keep float16 weights: Adam's second moment
    ``0.001 * g**2`` underflows to 0 for |g| < ~0.0055 (half of float16's smallest subnormal,
    2**-25), and a step becomes the bias-corrected rate times ``m / epsilon``: steps of 10-14 at
    learning rate 1e-2. An ensemble classifier (200 rows, 8 units, Adam(1e-2)) stayed at losses
    near 7 for 3 epochs (float32: 0.69 -> 0.52), with 50 units it reached inf.
    """
    half = [v.name for v in model.trainable_variables if v.dtype == tf.float16]
    if half:
        _warnings.warn(
            f"{len(half)} trainable weights of this model are stored in float16 "
            f"({half[0]}, ...; the global floatx or dtype policy is {tf_keras.mixed_precision.global_policy().name!r}): "
            "optimizers such as Adam lose their second moments to underflow there and training can diverge. "
            "Use tf_keras.mixed_precision.set_global_policy('mixed_float16') (float32 weights, half-precision "
            "compute) instead of set_floatx('float16')."
        )


def _feature_stats(array):
    """Mean and std per last-axis feature (float64), over all other axes of up to 10,000 evenly spaced rows."""
    array = np.asarray(array)[:: max(1, len(array) // _SCALE_CHECK_ROWS)]
    values = np.asarray(array, np.float64).reshape(-1, array.shape[-1] if array.ndim > 1 else 1)
    return values.mean(axis=0), values.std(axis=0)


def _warn_of_unscaled_data(model, x, y):
    """A ``UserWarning`` if in-memory inputs or targets are far from the unit scale the network works in.

    Inputs are checked when they go straight into weights (a ``Dense``/Bayesian/``Flatten``
    layer, no ``Normalization`` in between): features of mean or std beyond
    :data:`UNSCALED_FACTOR`. Targets of a standardized regression head (``target_loc``,
    ``target_scale``) are checked in its standardized units: mean or std beyond the factor, or a
    std below its inverse. Weights start and are regularized at unit scale, so such data fit
    badly and give wrong intervals, silently.
    """
    if isinstance(x, tf.Tensor) and len(model.inputs) == 1:  # checked inputs kept as the tensor given (_as_given)
        x = np.asarray(x)  # a view of an eager tensor's memory, no copy
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and len(model.inputs) == 1 and x.size:
        own = {id(layer) for layer in model.layers}  # an Input reused by other models feeds their layers too
        consumers = [node.layer for node in getattr(model._input_layers[0], "_outbound_nodes", ())
                     if id(node.layer) in own]
        if consumers and all(isinstance(layer, _RAW_INPUT_LAYERS) for layer in consumers):
            mean, std = _feature_stats(x)
            off = np.flatnonzero((np.abs(mean) > UNSCALED_FACTOR) | (std > UNSCALED_FACTOR))
            if off.size:
                i = off[0]
                _warnings.warn(
                    f"x is not standardized: feature {i} has mean {mean[i]:.4g} and std {std[i]:.4g}"
                    f"{f' ({off.size - 1} more features beyond {UNSCALED_FACTOR:g})' if off.size > 1 else ''}, "
                    "and the model feeds x unscaled to its weights, which start and are regularized at unit "
                    "scale: it will fit poorly and its uncertainty will be wrong. Build it with "
                    "input_mean=x.mean(axis=0), input_std=x.std(axis=0) (make_regressor, make_classifier; a "
                    "Normalization layer of your own otherwise). Silence with "
                    "warnings.filterwarnings('ignore', message='x is not standardized').",
                    UserWarning,
                )
    head = model.head if len(model.outputs) == 1 else None
    if isinstance(head, heads_lib._StandardizedRegressionHead) and isinstance(y, np.ndarray) and y.size:
        y = y[:: max(1, len(y) // _SCALE_CHECK_ROWS)]  # as _feature_stats: no float64 copy of all of y
        loc, scale = np.asarray(head.target_loc, np.float64), np.asarray(head.target_scale, np.float64)
        mean, std = _feature_stats((np.asarray(y, np.float64) - loc) / scale)
        off = np.flatnonzero((np.abs(mean) > UNSCALED_FACTOR) | (std > UNSCALED_FACTOR)
                             | ((std > 0) & (std < 1.0 / UNSCALED_FACTOR)))
        if off.size:
            i = off[0]
            raw_mean, raw_std = _feature_stats(np.asarray(y, np.float64))
            loc, scale = np.broadcast_to(np.ravel(loc), mean.shape), np.broadcast_to(np.ravel(scale), mean.shape)
            if 0 < raw_std[i] < np.abs(raw_mean[i]) / heads_lib.MAX_TARGET_OFFSET:
                # target_std=y.std() of such a target is taken as a constant's (1): the head cannot offset it.
                advice = ("Subtract a constant from the targets first (e.g. y - np.round(y.mean(axis=0))), build "
                          "with target_mean and target_std of the result, and add the constant back to the predictions")
            else:
                advice = ("Build it with target_mean=y.mean(axis=0), target_std=y.std(axis=0) (make_regressor; "
                          "target_loc/target_scale of your own head)")
            _warnings.warn(
                f"y is not standardized: target {i} has mean {raw_mean[i]:.4g} and std {raw_std[i]:.4g}, "
                f"{mean[i]:.4g} and {std[i]:.4g} in the head's units (target_loc {loc[i]:.4g}, "
                f"target_scale {scale[i]:.4g}), where the network predicts values of about 0 "
                f"and 1: it will fit poorly and its intervals will be wrong. {advice}. Silence with "
                "warnings.filterwarnings('ignore', message='y is not standardized').",
                UserWarning,
            )


def _training_rows(args):
    """``(rows, description)`` of the examples ``fit`` trains on, or ``(None, None)`` where not known cheaply."""
    x, y = args["x"], args["y"]
    if isinstance(x, tf.data.Dataset):
        if args["steps_per_epoch"] is not None:
            return None, None
        batches = int(x.cardinality())
        batch_size = tf.nest.flatten(x.element_spec)[0].shape
        batch_size = batch_size[0] if batch_size.rank else None
        if batches <= 0 or batch_size is None or _repeats(x):  # infinite or unknown; batches of varying
            return None, None  # size; or rows counted more than once (.repeat(3): 3 epochs of one set)
        return batches * batch_size, f"{batches * batch_size} rows ({batches} batches of {batch_size})"
    try:
        if data_adapter.select_data_adapter(x, y) is not data_adapter.TensorLikeDataAdapter:
            return None, None
        length = tf.nest.flatten(x)[0].shape[0]
    except (ValueError, TypeError, AttributeError, IndexError):
        return None, None
    if length is None:
        return None, None
    split = args["validation_split"] if args["validation_data"] is None else 0
    if not split:
        return length, f"{length} rows"
    # Keras trains on the first floor(n (1 - split)) rows; compared unrounded, so that
    # train_size=len(x) beside validation_split=0.5 is within the tolerance for any n.
    return length * (1.0 - split), (
        f"{math.floor(length * (1.0 - split))} of the {length} rows (validation_split={split:g})"
    )


def _repeats(dataset):
    """Whether ``dataset``'s pipeline holds a ``repeat``, or a ``take`` after a ``shuffle`` (an epoch of
    batches drawn afresh from a larger set each epoch, as ``steps_per_epoch`` does); read through
    tf.data's private ``_inputs``."""
    try:
        pending = [(dataset, False)]
        while pending:
            current, taken = pending.pop()
            kind = type(current).__name__
            if kind == "_RepeatDataset" or (taken and kind == "_ShuffleDataset"):
                return True
            pending.extend((source, taken or kind == "_TakeDataset") for source in current._inputs())
    except (AttributeError, TypeError, NotImplementedError):  # a dataset tf.data cannot walk: rows not known
        return True
    return False


def _arguments(method, model, *args, **kwargs):
    """``method``'s arguments by name, defaults filled in (``self`` left out)."""
    bound = inspect.signature(method).bind(model, *args, **kwargs)
    bound.apply_defaults()
    return {name: value for name, value in bound.arguments.items() if name != "self"}


def _as_given(given, checked):
    """The checked inputs ``checked`` (NumPy) as the tensor ``given`` they view, if the checks kept its dtype.

    Keras takes a tensor as it is but copies a NumPy array into a new tensor: returning the
    NumPy view of a tensor cost fit and evaluate a full copy of x (2e6 x 50 float32: +0.75 GB
    and ~0.3 s before the first step, against +0.05 GB for tf_keras.Model.fit). Only the shape
    may differ ((N,) for one feature, (N, 1) checked): a reshape, no copy.
    """
    if not isinstance(given, tf.Tensor) or given.dtype.as_numpy_dtype != checked.dtype:
        return checked
    return given if tuple(given.shape) == checked.shape else tf.reshape(given, checked.shape)


def _checked_weights(sample_weight, x, num_outputs=1, steps=()):
    """Sample weights of in-memory arrays checked (NaN, negative, all zero, length); others as given.

    ``steps``: the step shape of a single head with a label per step, which also takes a weight per label.
    """
    if sample_weight is None or not isinstance(x, (np.ndarray, tf.Tensor)):  # a tensor: checked inputs (_as_given)
        return sample_weight
    if num_outputs > 1 and isinstance(sample_weight, (dict, list, tuple)):  # one per output, as Keras takes them
        check = lambda w: None if w is None else validation.check_sample_weight(w, len(x))  # noqa: E731
        if isinstance(sample_weight, dict):
            return {name: check(w) for name, w in sample_weight.items()}
        if len(sample_weight) == num_outputs and all(w is None or np.ndim(w) >= 1 for w in sample_weight):
            return [check(w) for w in sample_weight]
    return validation.check_sample_weight(sample_weight, len(x), steps)


def _weight_steps(model):
    """The step shape of a single head with a label per step (its sample weights may be per label), else ()."""
    if len(model.outputs) != 1:
        return ()
    try:
        return tuple(model.head._step_shape)
    except (AttributeError, IndexError):  # no tfp_bnn head (a plain output with a loss of its own)
        return ()


def _check_class_weight(class_weight, head, y):
    """``class_weight`` of a classification head: a finite weight >= 0 for every class, some > 0."""
    if class_weight is None:
        return
    if head.task != "classification":
        raise ValueError(
            f"class_weight weighs the classes of a classifier; {type(head).__name__} is a regression head. "
            "Pass sample_weight (one weight per example) instead."
        )
    if head._step_shape and head._step_shape != (1,):  # one step: (N, 1) labels, Keras's one class per example
        # Keras maps class_weight to one weight per example: for (N, L) labels it took the argmax
        # over the steps (a position, not a class) as the example's class, silently or as an
        # out-of-range gather inside the graph.
        raise ValueError(
            f"class_weight weighs one class per example, but {type(head).__name__} predicts a label per step "
            f"or pixel (targets of shape {validation.shape_text(head._step_shape)}): Keras would weigh "
            "each example by the argmax over its steps. Weigh the steps yourself: fit a tf.data.Dataset of "
            "(x, y, w) with w = np.asarray([class_weight[k] for k in range(K)])[y.astype(int)], shape of y."
        )
    num_classes = getattr(head, "num_classes", head.units)
    keys = sorted(class_weight)
    if keys != list(range(num_classes)):
        raise ValueError(
            f"class_weight has the keys {keys}; pass one weight for each class 0..{num_classes - 1}, "
            f"e.g. {{k: 1.0 for k in range({num_classes})}} and change the ones to weigh."
        )
    weights = np.asarray([class_weight[k] for k in keys], np.float64)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise ValueError(
            f"class_weight values must be finite and >= 0 with at least one > 0, got {class_weight!r}."
        )


def _head_of(layer, tensor_index=0):
    """The head of an output: the layer itself, or the head that output ``tensor_index`` of a model ends in; else None."""
    if isinstance(layer, heads_lib.Head):
        return layer
    coordinates = getattr(layer, "_output_coordinates", None) if isinstance(layer, tf_keras.Model) else None
    if coordinates and tensor_index < len(coordinates):
        inner, _, index = coordinates[tensor_index]
        return _head_of(inner, index)
    return None


def _output_coordinates(model):
    """(layer, tensor index) of each output: a model with several outputs, as a layer, gives several."""
    return [(layer, tensor_index) for layer, _, tensor_index in model._output_coordinates]


def _outputs_by_key(model):
    """The model's output layers by the keys Keras matches a dict of targets (and losses) with.

    For outputs given as a dict (``Model(inputs, {"price": head(...)})``) those are the dict's
    keys; otherwise the output names (the layers' names).
    """
    nested = getattr(model, "_nested_outputs", None)
    if isinstance(nested, dict):
        return {key: _head_of(tensor._keras_history.layer, tensor._keras_history.tensor_index)
                or tensor._keras_history.layer for key, tensor in nested.items()}
    return {key: _head_of(*coordinates) or coordinates[0]
            for key, coordinates in zip(model.output_names, _output_coordinates(model))}


def _check_metric_names(model, metrics, weighted_metrics, warn_only=False):
    """A ``ValueError`` for a compiled metric named ``nll`` or ``kl``, the names of the logs ``fit`` adds.

    A metric of one of those names was lost silently: the log of that name was tfp_bnn's (the
    user's metric gone), or, with metrics named both, Keras took its metrics' results for the
    logs and ``nll``/``kl`` were the user's (``loss`` no longer ``nll + kl``). Keras prefixes
    the metrics of a model of several outputs with the output's name: only one output clashes.
    """
    if len(model.outputs) != 1:
        return
    names = {
        getattr(metric, "name", None) or getattr(metric, "__name__", None) or metric
        for metric in tf.nest.flatten([metrics, weighted_metrics])
        if metric is not None
    }
    clash = sorted(name for name in ("nll", "kl") if name in names)
    if clash:
        message = (
            f"A metric named {' and '.join(map(repr, clash))}: fit and evaluate log the model's "
            "negative log-likelihood as 'nll' and its KL as 'kl', and one of the two would hide the other. "
            "Give the metric another name (e.g. tf_keras.metrics.MeanMetricWrapper(fn, name='my_nll'))."
        )
        if not warn_only:
            raise ValueError(message)
        _warnings.warn(message + " The loaded model is compiled as saved.")


def _check_all_outputs_are_heads(model):
    """The default loss, the heads' NLL, fits no other output: name them and the fix before fit traces it."""
    outputs = _outputs_by_key(model)
    others = [key for key, layer in outputs.items() if _head_of(layer) is None]
    if others:
        example = ", ".join(
            f"{key!r}: " + ("'mse'" if key in others else "tfp_bnn.NegativeLogLikelihood()") for key in outputs
        )
        raise ValueError(
            f"The output(s) {others} are not tfp_bnn heads, and the default loss (a head's negative "
            f"log-likelihood) takes a distribution: pass a loss per output, e.g. loss={{{example}}}."
        )


def _checked_targets_by_output(model, y):
    """Targets of a model with several heads, as Keras matches them: a dict by output key or a list in order."""
    outputs = _outputs_by_key(model)
    keys = list(outputs)
    dict_outputs = isinstance(getattr(model, "_nested_outputs", None), dict)
    if isinstance(y, dict):
        if sorted(y) != sorted(keys):
            described = f"have the keys {keys}" if dict_outputs else f"are named {keys}"
            raise ValueError(f"y has the keys {sorted(y)}; the model's outputs {described}.")
        return {key: _checked_output_target(outputs[key], y[key]) for key in keys}
    if dict_outputs:
        raise ValueError(
            f"The model's outputs are a dict with the keys {keys}: pass the targets as a dict with the same "
            "keys (Keras matches them to the outputs by key)."
        )
    if isinstance(y, (list, tuple)) and len(y) == len(keys):
        return [_checked_output_target(outputs[key], t) for t, key in zip(y, keys)]
    raise ValueError(
        f"The model has {len(keys)} outputs {keys}: pass one target per output, as a list in that order "
        "or a dict by output name."
    )


def _checked_output_target(layer, y):
    """A head's target checked against that head; another output's (say an auxiliary Dense) as given."""
    head = _head_of(layer)
    return y if head is None else validation.check_targets(y, head)


def _single_target(model, y):
    """Keras's other spellings of one target, ``[y]`` and ``{output_key: y}``, as ``y``."""
    # An array in a list; not a nested list, which is one row of targets ([[y1, y2]]: shape (1, 2)).
    if isinstance(y, (list, tuple)) and len(y) == 1 and not isinstance(y[0], (list, tuple)) and np.ndim(y[0]) >= 1:
        return y[0]
    if isinstance(y, dict):
        # The output's key (dict outputs, as Keras matches them) or its name.
        name, key = model.output_names[0], next(iter(_outputs_by_key(model)))
        if len(y) != 1 or next(iter(y)) not in (name, key):
            key_note = f" (key {key!r})" if key != name else ""
            raise ValueError(f"y has the keys {sorted(y)}; the model's one output is named {name!r}{key_note}.")
        return next(iter(y.values()))
    return y


def _untuned_arrays(model, args):
    """``fit``'s arguments with in-memory arrays as Keras's datasets of them, autotuning off."""
    x, y, sample_weight = args["x"], args["y"], args["sample_weight"]
    if data_adapter.select_data_adapter(x, y) is not data_adapter.TensorLikeDataAdapter:
        return args
    args = dict(args)
    if args["validation_split"] and args["validation_data"] is None:
        (x, y, sample_weight), args["validation_data"] = data_adapter.train_validation_split(
            (x, y, sample_weight), validation_split=args["validation_split"]
        )
    batch_size = args["batch_size"]
    training = _array_batches(
        model, (x, y, sample_weight), batch_size, args["steps_per_epoch"],
        epochs=args["epochs"] - args["initial_epoch"], shuffle=args["shuffle"],
    )
    args.update(
        x=training.get_dataset().with_options(_UNTUNED), y=None, sample_weight=None, batch_size=None,
        validation_split=0.0, steps_per_epoch=args["steps_per_epoch"] or training.get_size(),
    )
    validation_data = args["validation_data"]
    if isinstance(validation_data, tuple) and data_adapter.select_data_adapter(
        *validation_data[:2]
    ) is data_adapter.TensorLikeDataAdapter:
        validation_batches = _array_batches(
            model, data_adapter.unpack_x_y_sample_weight(validation_data),
            args["validation_batch_size"] or batch_size, args["validation_steps"],
            epochs=1, shuffle=False,
        )
        args.update(
            validation_data=validation_batches.get_dataset().with_options(_UNTUNED), validation_batch_size=None,
            validation_steps=args["validation_steps"] or validation_batches.get_size(),
        )
    return args


def _unknown_length(x, y, steps):
    """Data of unknown length (a generator, a filtered Dataset) without a step count.

    Keras refuses those with steps_per_execution > 1 ("Could not infer the
    size of the data"), and 32 is tfp_bnn's default: fit and evaluate run them
    one step per execution, until the data end, as with Keras's own default.
    """
    if steps is not None:
        return False
    if isinstance(x, tf.data.Dataset):
        return int(x.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    try:
        return data_adapter.select_data_adapter(x, y) is data_adapter.GeneratorDataAdapter
    except ValueError:  # a type no adapter takes: Keras names it
        return False


def _array_batches(model, data, batch_size, steps, epochs, shuffle):
    """What Model.fit's DataHandler builds from arrays: one dataset of every epoch's batches."""
    x, y, sample_weight = data
    return data_adapter.TensorLikeDataAdapter(
        x, y, sample_weights=sample_weight, batch_size=batch_size, steps=steps, epochs=epochs,
        shuffle=shuffle, distribution_strategy=model.distribute_strategy, model=model,
    )


_UNTUNED = tf.data.Options()
_UNTUNED.autotune.enabled = False


def _num_members(model):
    """``M`` of a model of ``EnsembleDense`` layers (1 without them)."""
    sizes = {layer.num_members for layer in model._flatten_layers() if isinstance(layer, EnsembleDense)}
    if len(sizes) > 1:
        raise ValueError(f"The EnsembleDense layers of one model must agree on num_members, got {sorted(sizes)}.")
    return sizes.pop() if sizes else 1


def _warn_of_shared_head_weights(model):
    """Warn when an ensemble's members share weights of its head (one ``sigma``, one ``df``)."""
    if model.num_members < 2:
        return
    shared = [w.name for w in getattr(model.head, "trainable_weights", [])]
    if shared:
        _warnings.warn(
            f"The {model.num_members} ensemble members share the weights of {type(model.head).__name__} "
            f"({', '.join(shared)}): one value for all members, trained on the sum of their losses, so a "
            "member's training depends on the others'. For the independent members of a deep ensemble "
            "use a head whose parameters the network outputs, such as NormalHead. If the sharing is meant, "
            "silence this with warnings.filterwarnings('ignore', message='The .* ensemble members share').",
        )


def _check_regime(regime, train_size, inference):
    if regime not in REGIMES:
        raise ValueError(f"Unknown regime {regime!r}; choose one of {', '.join(map(repr, REGIMES))}.")
    if inference not in INFERENCE_METHODS:
        raise ValueError(
            f"Unknown inference {inference!r}; choose one of {', '.join(map(repr, INFERENCE_METHODS))}."
        )
    bayesian = regime.startswith("bayesian")
    if inference != "variational" and not bayesian:
        raise ValueError(
            f"inference={inference!r} gives epistemic uncertainty, which regime={regime!r} does not have; "
            "use regime='bayesian_probabilistic' (or 'bayesian' for a point head)."
        )
    if bayesian and inference != "ensemble" and (train_size is None or train_size == 0):
        penalty = "the KL of every Bayesian layer" if inference == "variational" else "the weight decay"
        raise ValueError(
            f"regime={regime!r} needs train_size, the number of training examples N: {penalty} is "
            "scaled by 1/N."
        )
    if train_size is not None and not validation.is_positive_int(train_size):
        raise ValueError(
            f"train_size must be a positive integer (the number of training examples), got {train_size!r}."
        )
    return bayesian, regime.endswith("probabilistic")


def _scale_or_one(mean, std):
    """``std``, with 1 for every feature that is constant up to float32 rounding.

    A feature constant in training is scaled by 1, as scikit-learn's StandardScaler does:
    Keras's floor of 1e-7 would multiply any later change of it by 10^7. "Constant" up to
    float32 rounding, relative to the feature's mean: a column of 0.1 has a float32 std of
    1.5e-8, not 0, while a column of +-1e-7 around 0 varies and keeps its std.
    The rule only ever widens a scale: a std above 1 is kept (a column of Unix times spanning an
    hour has a std of ~1,000 s, under 1e-6 of its mean; scaled by 1 it fed the network values of
    +-1,800).
    """
    constant = np.asarray(std) <= 1e-6 * np.abs(np.asarray(mean, np.float64))
    if np.any(constant | (np.asarray(std) == 0)):
        return np.where(constant | (np.asarray(std) == 0), np.maximum(std, 1.0).astype(np.asarray(std).dtype), std)
    return std


def _constant_target_scale(mean, std):
    """``std``, with 1 for a target constant in training: std 0, or float32 rounding (under 1e-6) of a mean
    the head can offset (up to ``MAX_TARGET_OFFSET``; beyond it the head's own error asks to subtract a
    constant). ``target_std=y.std()`` of a constant ``y`` was refused ("must be positive"; for a constant
    0.1, whose float32 std is 3e-8, with advice that left it constant)."""
    try:
        mean64, std64 = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        constant = (std64 == 0) | ((std64 <= 1e-6 * np.abs(mean64)) & (np.abs(mean64) <= heads_lib.MAX_TARGET_OFFSET))
    except (TypeError, ValueError):  # text, ragged, shapes that do not broadcast: the head names them
        return std
    if not np.any(constant & (std64 >= 0)):
        return std
    return np.where(constant & (std64 >= 0), np.maximum(std64, 1.0), std64)


def _per_feature(value, input_shape, name):
    """``value`` (a scalar or per feature), unchanged, if it broadcasts to one example's shape."""
    shape = np.shape(value)
    try:
        if np.broadcast_shapes(shape, input_shape) == input_shape:
            return value
    except ValueError:
        pass
    raise ValueError(
        f"{name} has shape {shape} but the inputs have shape {input_shape}; pass one value per "
        f"feature (e.g. x.{name.split('_')[1]}(axis=0)) or a scalar."
    )


def _layer_factory(bayesian, inference, train_size, layer_kwargs):
    """``dense(units, activation)`` -> the layers of one dense block, input first."""
    if not bayesian:
        return lambda units, activation=None: [tf_keras.layers.Dense(units, activation=activation)]
    if inference == "variational":
        kl_weight = 1.0 / int(train_size)
        return lambda units, activation=None: [
            BayesianDense(units, activation=activation, kl_weight=kl_weight, **layer_kwargs)
        ]
    if inference == "ensemble":
        return lambda units, activation=None: [EnsembleDense(units, activation=activation, **layer_kwargs)]
    # MC dropout's KL term is the weight decay l^2 (1 - p) / (2 N) ||W||^2 per example.
    dropout_rate = checked_rate(layer_kwargs["dropout_rate"])
    decay = MC_DROPOUT_LENGTH_SCALE**2 * (1.0 - dropout_rate) / (2.0 * int(train_size))
    return lambda units, activation=None: [
        MCDropout(dropout_rate),
        tf_keras.layers.Dense(units, activation=activation, kernel_regularizer=tf_keras.regularizers.L2(decay)),
    ]


def _build(input_shape, hidden_units, head, dense, activation, input_mean, input_std, name):
    input_shape = (input_shape,) if isinstance(input_shape, (int, np.integer)) else tuple(input_shape)
    if isinstance(hidden_units, (int, np.integer)) or not all(validation.is_positive_int(u) for u in hidden_units):
        raise ValueError(
            f"hidden_units must be a sequence of positive widths, e.g. (50,) or (50, 50), got {hidden_units!r}."
        )
    inputs = tf_keras.Input(shape=input_shape)
    x = inputs
    if input_mean is not None or input_std is not None:
        mean = _per_feature(0.0 if input_mean is None else input_mean, input_shape, "input_mean")
        std = _per_feature(1.0 if input_std is None else input_std, input_shape, "input_std")
        if not np.all(np.isfinite(np.asarray(mean, np.float64))):
            raise ValueError(f"input_mean {input_mean!r} is not finite; compute it from data without NaN or inf.")
        if not np.all(np.isfinite(np.asarray(std, np.float64))) or np.any(np.asarray(std) < 0):
            raise ValueError(
                f"input_std {input_std!r} must be finite and >= 0 for every feature; compute it from data "
                "without NaN or inf, e.g. x.std(axis=0)."
            )
        std = _scale_or_one(mean, std)
        if not np.all(np.square(np.asarray(std, np.float64)) <= np.finfo(np.float32).max):
            raise ValueError(
                f"input_std {input_std!r}: its square, the variance, is beyond float32's range; rescale the inputs."
            )
        # Normalization keeps its default axis=-1 (a mean per last-axis feature) for 1-D inputs; for
        # inputs of more axes the mean and std may be given per element (x.mean(axis=0)), which
        # axis=-1 failed to reshape ("Input to reshape is a tensor with 6 values ... has 3").
        axes = {"axis": tuple(range(1, len(input_shape) + 1))} if len(input_shape) > 1 else {}
        # float32 under a mixed policy, as the Bayesian layers and heads: it takes raw units, which
        # float16 turned into inf above 65504 (NaN losses) and bfloat16 rounded to 3 digits (the
        # years 1990-2020 to 4 values) before standardizing.
        normalization_kwargs = float32_under_mixed_precision(axes)
        x = tf_keras.layers.Normalization(
            mean=mean, variance=tf.square(std), name="standardize", **normalization_kwargs
        )(x)
    if len(input_shape) > 1:
        x = tf_keras.layers.Flatten()(x)
    blocks = [dense(units, activation) for units in hidden_units] + [dense(head.params_size)]
    for block in blocks:
        for layer in block:
            x = layer(x)
    return BayesianModel(inputs, head(x), name=name)


def make_regressor(
    input_shape,
    *,
    regime="bayesian_probabilistic",
    hidden_units=(50,),
    train_size=None,
    inference="variational",
    estimator=None,
    activation="relu",
    units=1,
    head=None,
    kernel_prior=None,
    kernel_posterior=None,
    dropout_rate=None,
    num_members=None,
    input_mean=None,
    input_std=None,
    target_mean=0.0,
    target_std=1.0,
    name="regressor",
):
    """A regression MLP of one of the four :data:`REGIMES`, uncompiled.

    Args:
      input_shape: shape of one example, e.g. ``(13,)``.
      regime: see the module docs.
      hidden_units: width of each hidden layer.
      train_size: number of training examples ``N`` (Bayesian regimes), the
        rows ``fit`` trains on (after ``validation_split``): every
        Bayesian layer gets ``kl_weight = 1 / N`` (MC dropout: weight decay
        ``l^2 (1 - p) / (2 N)`` with ``l = MC_DROPOUT_LENGTH_SCALE``; an
        ensemble does not need it). ``fit`` warns when the layers'
        ``kl_weight`` is for more than :data:`TRAIN_SIZE_TOLERANCE` times more
        or fewer rows than it trains on (arrays, and datasets of fixed-size
        batches).
      inference: ``"variational"`` (default), ``"mc_dropout"`` or
        ``"ensemble"``, for the Bayesian regimes (module docs).
      estimator, kernel_prior, kernel_posterior: passed to every
        :class:`tfp_bnn.layers.BayesianDense` (variational inference;
        ``estimator`` defaults to ``"flipout"``).
      dropout_rate: MC dropout's rate ``p``, before every dense layer
        (default 0.05).
      num_members: ``M``, the ensemble's number of networks (default 5);
        predict with a ``num_samples`` that is a multiple of ``M``.

      activation: of the hidden layers.
      units: number of targets.
      head: a :mod:`tfp_bnn.heads` head for the probabilistic regimes
        (default ``NormalHead``); point regimes use ``PointHead``.
      input_mean, input_std: if given, inputs are standardized inside the
        model (a ``Normalization`` layer), so it takes raw units. The std of
        a feature constant in training (0, or under 1e-6 of its mean: float
        rounding) is taken as 1 (its std if that is larger), as scikit-learn's
        ``StandardScaler`` does.
      target_mean, target_std: the default heads predict
        ``target_mean + target_std * z`` from standardized ``z`` (they are the
        heads' ``target_loc`` and ``target_scale``). A ``target_std`` of a
        target constant in training (0, or under 1e-6 of a mean up to
        ``heads.MAX_TARGET_OFFSET``) is taken as 1, as for the inputs.

    Scale: without ``input_mean``/``input_std`` and ``target_mean``/``target_std``
    the network takes the data as they are, and its weights (their
    initialization and prior) are for unit scale; ``fit`` warns of inputs or
    targets more than :data:`UNSCALED_FACTOR` times off it. Training budget:
    the variational posterior starts near a point estimate
    (``MeanFieldNormal(initial_scale=1e-3)``), so until ``fit`` has brought
    the KL down (``history.history["kl"]`` levels off) the model is a nearly
    deterministic, overfitting network and its intervals are too narrow. At
    Adam's default rate (1e-3) that takes thousands of steps: 100 epochs of
    1,000 rows of 200 features (3,200 steps) gave 95 % intervals covering
    41-59 % of new points, depending on the data (91-93 % after 300 epochs);
    1,000 epochs of 20 rows 26-37 %.

    An argument of another inference method or regime than the one built
    (say ``dropout_rate`` for a variational model), or ``target_mean`` and
    ``target_std`` beside your own ``head``, raises a ``ValueError``: it would
    otherwise be silently ignored. ``train_size`` is the exception: the
    non-Bayesian regimes and ensembles accept it unused, so that one call
    serves every regime (as the command line's ``fit`` does).

    Example:

    >>> from tfp_bnn.models import make_regressor
    >>> model = make_regressor((3,), hidden_units=(16,), train_size=100)
    >>> [type(layer).__name__ for layer in model.layers]
    ['InputLayer', 'BayesianDense', 'BayesianDense', 'NormalHead']
    """
    bayesian, probabilistic = _check_regime(regime, train_size, inference)
    target = {"target_loc": target_mean, "target_scale": target_std}
    if head is None:
        target["target_scale"] = _constant_target_scale(target_mean, target_std)
        head = heads_lib.NormalHead(units, **target) if probabilistic else heads_lib.PointHead(units, **target)
    elif not probabilistic:
        raise ValueError(f"regime={regime!r} uses a PointHead; pass head only for the probabilistic regimes.")
    else:
        _check_own_head(head, units, target_mean, target_std)
    dense = _layer_factory(
        bayesian, inference, train_size,
        _layer_kwargs(bayesian, inference, estimator, kernel_prior, kernel_posterior, dropout_rate, num_members),
    )
    return _build(input_shape, hidden_units, head, dense, activation, input_mean, input_std, name)


def make_classifier(
    input_shape,
    num_classes,
    *,
    regime="bayesian_probabilistic",
    hidden_units=(50,),
    train_size=None,
    inference="variational",
    estimator=None,
    activation="relu",
    kernel_prior=None,
    kernel_posterior=None,
    dropout_rate=None,
    num_members=None,
    input_mean=None,
    input_std=None,
    name="classifier",
):
    """A classification MLP over integer labels ``0..num_classes-1``, uncompiled.

    Probabilistic regimes end in :class:`tfp_bnn.heads.CategoricalHead`, point
    regimes in :class:`tfp_bnn.heads.PointClassHead`; other arguments as in
    :func:`make_regressor`. Inputs of rank > 1 (images) are flattened.

    Example:

    >>> from tfp_bnn.models import make_classifier
    >>> model = make_classifier((4,), 3, hidden_units=(16,), train_size=150)
    >>> [type(layer).__name__ for layer in model.layers]
    ['InputLayer', 'BayesianDense', 'BayesianDense', 'CategoricalHead']
    """
    bayesian, probabilistic = _check_regime(regime, train_size, inference)
    head_class = heads_lib.CategoricalHead if probabilistic else heads_lib.PointClassHead
    dense = _layer_factory(
        bayesian, inference, train_size,
        _layer_kwargs(bayesian, inference, estimator, kernel_prior, kernel_posterior, dropout_rate, num_members),
    )
    return _build(input_shape, hidden_units, head_class(num_classes), dense, activation, input_mean, input_std, name)


def posterior_as_prior(model, *, train_size):
    """A copy of ``model`` whose prior is ``model``'s posterior: Bayesian updating on new data.

    Bayes' rule in two steps, as the articles teach it: after data ``D1`` the
    posterior ``q1(w) ≈ p(w | D1)`` is the prior for the next data ``D2``,

    .. math:: p(w | D1, D2) \\propto p(D2 | w) \\, p(w | D1),

    so fitting the copy on ``D2`` alone (with ``train_size=len(D2)``, the
    ``kl_weight = 1 / N`` of that fit) gives the posterior of both. Each
    :mod:`tfp_bnn.layers` Bayesian layer gets a
    :class:`tfp_bnn.priors.GaussianPrior` set to its current posterior
    (diagonal for ``MeanFieldNormal``, full for ``FullCovarianceNormal``), and
    its posterior starts there, so the KL is 0 before the first step.

    The update is exact where the variational family holds the true posterior
    (a ``FullCovarianceNormal`` linear model with Gaussian noise). Otherwise
    it is the usual online approximation (assumed density filtering): a
    mean-field posterior forgets the correlations ``D1`` put between weights,
    and the errors of successive fits add up. Weights without a posterior
    (plain ``Dense`` layers, a head's own noise scale, normalization
    statistics) start from their fitted values and have no prior: the new fit
    moves them by the likelihood of ``D2`` alone. The copy keeps ``model``'s
    configuration, including its input and target standardization (the
    posterior is in those units): do not re-standardize on ``D2``.

    Compile the copy with gradient clipping (``clipnorm=1.0``) when ``D2`` lies
    where ``D1`` had no data: there single weight draws of a heteroscedastic
    head predict a noise scale near its floor, the first steps see NLLs of
    ``1e4``-``1e5``, and without clipping Adam left the network dead (a toy
    sine fitted on ``x < 0`` then updated on ``x > 0``: test NLL 1.39 against
    -0.74 for one fit on both halves; -0.58 with ``clipnorm=1.0``).

    Args:
      model: a built Keras model (Functional or Sequential, e.g. a fitted
        :class:`BayesianModel`) with at least one ``tfp_bnn`` Bayesian layer.
      train_size: ``N``, the number of examples of the data the copy will be
        fitted on; every Bayesian layer's ``kl_weight`` becomes ``1 / N``.

    Returns:
      An uncompiled model of the same class and configuration; ``model`` is
      unchanged.

    Example:

    >>> import numpy as np, tf_keras, tfp_bnn
    >>> x = np.random.rand(200, 1).astype("float32"); y = 2 * x[:, 0] + 0.1
    >>> model = tfp_bnn.make_regressor((1,), hidden_units=(16,), train_size=100)
    >>> model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    >>> history = model.fit(x[:100], y[:100], epochs=2, verbose=0)
    >>> updated = tfp_bnn.posterior_as_prior(model, train_size=100)
    >>> round(float(updated.kl_divergence()), 6)  # the prior is the posterior it starts from
    0.0
    >>> updated.compile(optimizer=tf_keras.optimizers.Adam(0.01, clipnorm=1.0))
    >>> history = updated.fit(x[100:], y[100:], epochs=2, verbose=0)
    """
    if not validation.is_positive_int(train_size):
        raise ValueError(
            f"train_size must be a positive integer, the number of examples the copy will be fitted on; "
            f"got {train_size!r}."
        )
    old_layers = _posterior_layers(model)
    config = _with_posterior_priors(model.get_config(), kl_weight=1.0 / int(train_size))
    # Under the model's distribution strategy, as the model was built: outside its scope the
    # copy of a MirroredStrategy model was a single-device model, and fit trained it so silently.
    strategy = model.distribute_strategy
    in_scope = tf.distribute.has_strategy() or strategy is tf.distribute.get_strategy()
    with contextlib.nullcontext() if in_scope else strategy.scope():
        try:
            updated = type(model).from_config(config)
        except (NotImplementedError, TypeError) as error:
            updated = error
        if not isinstance(updated, tf_keras.Model) or not updated.built:
            # A subclassed model's config does not hold its layers: the rebuilt model was refused
            # as "needs a built Keras model ... fit it", about the fitted model it was given.
            raise ValueError(
                f"posterior_as_prior copies a model through its get_config(), and {type(model).__name__} "
                f"{model.name!r} rebuilt from it is not a built model ({updated!r}): a subclassed model's "
                "config does not hold its layers. Build the model as a Functional or Sequential model "
                "(e.g. tfp_bnn.BayesianModel(inputs, outputs))."
            ) from (updated if isinstance(updated, Exception) else None)
        new_layers = _posterior_layers(updated)
        _copy_weights(model, old_layers, updated, new_layers)
        for old, new in zip(old_layers, new_layers):
            new.prior.assign(old.posterior.distribution())
    return updated


def _posterior_layers(model):
    """The built tfp_bnn Bayesian layers of ``model``, in order; an error if there are none or it cannot be copied."""
    validation.check_not_keras3(model, "posterior_as_prior")
    if not isinstance(model, tf_keras.Model) or not model.built:
        raise ValueError(
            f"posterior_as_prior needs a built Keras model, got {model!r}: fit it, or build it on data, first."
        )
    flat = list(model._flatten_layers(include_self=False))
    foreign = sorted({type(layer).__name__ for layer in flat if isinstance(layer, TFP_VARIATIONAL_LAYERS)})
    if foreign:
        raise ValueError(
            f"posterior_as_prior copies tfp_bnn's Bayesian layers; this model has tfp.layers' {', '.join(foreign)}, "
            "whose prior functions cannot be replaced. Use tfp_bnn.layers.BayesianDense/BayesianConv*D instead."
        )
    bayesian = [layer for layer in flat if isinstance(layer, _BayesianLayer)]
    if not bayesian:
        raise ValueError(
            f"Model {model.name!r} has no tfp_bnn Bayesian layer (BayesianDense, BayesianConv*D), so no posterior "
            "to use as a prior. MC dropout and deep ensembles have none: fit them on all the data instead."
        )
    return bayesian


def _with_posterior_priors(config, kl_weight):
    """``config`` with each Bayesian layer's ``kernel_prior`` a ``GaussianPrior`` and its ``kl_weight`` set."""
    if isinstance(config, list):
        return [_with_posterior_priors(item, kl_weight) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: _with_posterior_priors(value, kl_weight) for key, value in config.items()}
    registered = config.get("registered_name")
    layer_class = tf_keras.saving.get_registered_object(registered) if isinstance(registered, str) else None
    if isinstance(layer_class, type) and issubclass(layer_class, _BayesianLayer):
        layer_config = config["config"]
        full = isinstance(deserialize(layer_config["kernel_posterior"]), FullCovarianceNormal)
        prior = GaussianPrior("full" if full else "diagonal")
        config["config"] = {**layer_config, "kernel_prior": serialize(prior), "kl_weight": kl_weight}
    return config


def _copy_weights(model, old_layers, updated, new_layers):
    """Every weight of ``model`` but its priors' into ``updated`` (built from the same configuration)."""

    def without_priors(weights, layers):
        prior_weights = {id(weight) for layer in layers for weight in layer.prior.weights}
        return [weight for weight in weights if id(weight) not in prior_weights]

    old = without_priors(model.weights, old_layers)
    new = without_priors(updated.weights, new_layers)
    if len(old) != len(new) or any(a.shape != b.shape for a, b in zip(old, new)):
        raise ValueError(  # the model's get_config does not rebuild the model (a custom layer's config is short)
            f"Model {model.name!r} rebuilt from its get_config() has other weights "
            f"({[tuple(w.shape) for w in new]}) than it has ({[tuple(w.shape) for w in old]}): "
            "check the get_config of its custom layers."
        )
    for source, target in zip(old, new):
        target.assign(source)


# The builders' arguments that only one inference method uses.
_METHOD_ARGUMENTS = {
    "variational": ("estimator", "kernel_prior", "kernel_posterior"),
    "mc_dropout": ("dropout_rate",),
    "ensemble": ("num_members",),
}


def _layer_kwargs(bayesian, inference, estimator, kernel_prior, kernel_posterior, dropout_rate, num_members):
    """The chosen method's layer arguments; any other method's given argument is an error, not ignored."""
    given = {name: value for name, value in (
        ("estimator", estimator), ("kernel_prior", kernel_prior), ("kernel_posterior", kernel_posterior),
        ("dropout_rate", dropout_rate), ("num_members", num_members),
    ) if value is not None}
    used = _METHOD_ARGUMENTS[inference] if bayesian else ()
    unused = [name for name in given if name not in used]
    if unused:
        owner = next(method for method, names in _METHOD_ARGUMENTS.items() if unused[0] in names)
        it = "it" if len(unused) == 1 else "them"
        raise ValueError(
            f"{', '.join(unused)}: for the layers of inference={owner!r}, which this model "
            f"({'inference=' + repr(inference) if bayesian else 'a regime without Bayesian layers'}) does not "
            f"have. Leave {it} out, or build a {'model of that inference' if bayesian else 'Bayesian regime'}."
        )
    if inference == "variational":
        return {"estimator": "flipout", **given}
    if inference == "mc_dropout":
        return {"dropout_rate": DEFAULT_DROPOUT_RATE if dropout_rate is None else dropout_rate}
    return {"num_members": DEFAULT_NUM_MEMBERS if num_members is None else num_members}


def _check_own_head(head, units, target_mean, target_std):
    # A regime "with aleatoric uncertainty" must get a head that has some.
    if isinstance(head, heads_lib.PointHead):
        raise ValueError(
            "a PointHead has no noise, so a probabilistic regime would report no aleatoric uncertainty; for a "
            "point model pass regime='deterministic' or 'bayesian' without head (target_mean and target_std "
            "configure its PointHead), or pass a distribution head such as NormalHead."
        )
    if head.units != units:
        raise ValueError(
            f"units={units} but the head predicts {head.units} target(s); pass units={head.units}, or a head "
            f"of {units} units."
        )
    if (target_mean, target_std) != (0.0, 1.0) and not hasattr(head, "target_loc"):
        raise ValueError(
            f"target_mean and target_std configure the default head; {type(head).__name__} takes no "
            "target_loc/target_scale (it predicts in the targets' own units): leave them out."
        )
    if (target_mean, target_std) != (0.0, 1.0):
        raise ValueError(
            "target_mean and target_std configure the default head; pass them to your head instead "
            f"(e.g. {type(head).__name__}({head.units}, target_loc=..., target_scale=...))."
        )
