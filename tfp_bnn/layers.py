"""Bayesian dense and convolution layers with a choice of gradient estimator.

One class per layer type, one argument for the estimator:

============================  =====================================================
``estimator``                 what one forward pass does
============================  =====================================================
``"variational"``             draws one weight vector from the posterior over the
                              flat ``[kernel, bias]`` vector and applies it to the
                              whole batch (``tfp.layers.DenseVariational``); any
                              posterior, including full covariance.
``"reparameterization"``      the same reparameterization-trick estimator under
                              the name of ``tfp.layers.DenseReparameterization``.
``"flipout"``                 mean weights plus one shared perturbation whose sign
                              is flipped per example (Wen et al. 2018): nearly
                              independent weights per example, lower-variance
                              gradients. Mean-field posteriors only.
``"local_reparameterization"``  samples the pre-activations instead of the weights
                              (Kingma et al. 2015): ``N(x mu, x^2 sigma^2)``; dense
                              only, mean-field only. Unlike TFP's
                              ``DenseLocalReparameterization`` it stays finite when
                              a ReLU feeds it all-zero rows (``sqrt`` at 0).
============================  =====================================================

Every layer adds ``kl_weight * KL(q || p)`` to ``model.losses`` as a *callable*
loss, so ``model.losses`` is recomputed from the current variables each time it
is read (never a stale graph tensor after ``fit``). Set ``kl_weight = 1 / N``
with ``N`` the size of the training set (the builders in :mod:`tfp_bnn.models`
do this from ``train_size``). The KL is exact (``tfd.kl_divergence``) wherever
TFP has it in closed form, and a one-draw Monte Carlo estimate otherwise
(e.g. with :class:`tfp_bnn.priors.ScaleMixturePrior`).

Inside :func:`tfp_bnn.sampling.weight_draws` the layers draw ``T`` independent
weight samples at once (one ``[T, ...]`` tensor, one batched matmul), which is
how :func:`tfp_bnn.predict` runs ``T`` networks in one graph (for large batches
it applies the recorded draws one at a time in a graph loop). There every
estimator samples whole weights: the estimator only decides how training
gradients are estimated. In :func:`tfp_bnn.predict`, :func:`tfp_bnn.score`
and the served model, a layer called several times in one forward pass (a
shared layer, a recurrent cell at every time step) keeps its draw, so draw
``t`` is one network. Under ``weight_draws`` itself that holds only in a
traced graph and, for a recurrent cell in ``tf_keras.layers.RNN``'s while
loop, only with a ``seed`` (eagerly every call draws afresh). In training
(outside ``weight_draws``) every call draws afresh, so a recurrent cell gets
new weights (or Flipout noise) at each time step.

Example:

>>> import tf_keras, tfp_bnn
>>> model = tf_keras.Sequential([
...     tf_keras.Input((3,)),
...     tfp_bnn.layers.BayesianDense(16, activation="relu", kl_weight=1 / 500),
...     tfp_bnn.layers.BayesianDense(2, estimator="reparameterization", kl_weight=1 / 500),
...     tfp_bnn.heads.NormalHead(1),
... ])
"""

import inspect
import numbers

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from tf_keras.src.utils import conv_utils  # Conv2D's own output-length rule, pinned with tf-keras

from tfp_bnn import sampling
from tfp_bnn._factory import (
    _KERNEL_FN_ARGS,
    DistributionFactory,
    NameScopedBuildFromConfig,
    RefusesKeras3Inputs,
    deserialize,
    float32_under_mixed_precision,
    refuse_mixed_policy,
    register,
    serialize,
)
from tfp_bnn.posteriors import FullCovarianceNormal, MeanFieldNormal, Posterior
from tfp_bnn.priors import NormalPrior, Prior
from tfp_bnn.validation import check_positive_int, is_positive_int

tfd = tfp.distributions

__all__ = ["BayesianDense", "BayesianConv1D", "BayesianConv2D", "BayesianConv3D", "ESTIMATORS"]

ESTIMATORS = ("variational", "reparameterization", "flipout", "local_reparameterization")
# tfp.layers' own variational layers, which tfp_bnn's layers replace: they draw one weight sample per
# call whatever the sampling mode (tfp_bnn.predict refuses them), and their priors are Python
# functions (posterior_as_prior cannot replace them).
TFP_VARIATIONAL_LAYERS = tuple(
    getattr(tfp.layers, name)
    for name in (
        "DenseVariational", "DenseReparameterization", "DenseFlipout", "DenseLocalReparameterization",
        *(f"Convolution{rank}D{estimator}" for rank in (1, 2, 3) for estimator in ("Reparameterization", "Flipout")),
    )
)
_SINGLE_DRAW = ("variational", "reparameterization")
# Added under the square root of the local-reparameterization variance: its
# gradient 1/(2 sqrt(v)) is infinite at v = 0 and inf * 0 = NaN.
_VARIANCE_FLOOR = 1e-12


def _standard_normal(shape, seed, dtype):
    return tf.random.stateless_normal(shape, seed=seed, dtype=dtype)


def _random_signs(shape, seed, dtype):
    """Independent +1/-1 with probability 1/2 each (Rademacher), from one random bit each.

    ``tfp.random.rademacher`` draws integers in ``[0, 2)`` and rescales them; taking bit 1
    of raw random integers needs no range reduction. Flipout asks for two sign tensors per
    layer and step: this cut its 2x256 training epoch at batch 256 by about a tenth.
    """
    bits = tf.random.stateless_uniform(shape, seed=seed, minval=None, maxval=None, dtype=tf.int32)
    return tf.cast(tf.bitwise.bitwise_and(bits, 2) - 1, dtype)


def _flipout_sign_shape(tensor):
    """``[draws, batch, 1, ..., 1, channels]``: one sign per example and channel.

    An example's positions (a convolution's pixels, a sequence's steps) share its
    signs, so they all see the one kernel ``W + dW * (r_n s_n^T)``, as in TFP's
    ``Convolution2DFlipout``. A sign per position would give each pixel a kernel of
    its own: pooled over pixels the weight noise would average out in training,
    and the network ``fit`` trains would not be the one ``predict`` samples.
    """
    shape = tf.shape(tensor)
    return tf.concat([shape[:2], tf.ones([tensor.shape.rank - 3], tf.int32), shape[-1:]], axis=0)


def _factory(value, default, argument, accepted, other_kind=()):
    """A prior/posterior factory (or its Keras config); a TFP function, a name or the other kind gets a clear error.

    ``other_kind``: the factories of the other argument. A posterior taken as the prior is a
    trainable per-weight prior that copies the posterior (the KL vanishes); a prior taken as the
    posterior has no variables (or one scale), so the layer never learns its weights. Both trained
    without a word.
    """
    factory = default() if value is None else deserialize(value)
    if isinstance(factory, other_kind):
        raise ValueError(
            f"{argument} must be one of {accepted}, got {factory!r}, which is a "
            f"{'posterior' if argument == 'kernel_prior' else 'prior'}: were kernel_prior and kernel_posterior "
            "swapped?"
        )
    if not isinstance(factory, DistributionFactory):
        # tfp.layers.default_mean_field_normal_fn() failed later as "'function' object has no attribute 'make_layer'".
        raise ValueError(
            f"{argument} must be a tfp_bnn distribution factory ({accepted}), got {value!r}; "
            "tfp.layers' prior/posterior functions go with tfp.layers' own layers, and a prior or posterior of "
            "your own subclasses tfp_bnn.priors.Prior or tfp_bnn.posteriors.Posterior."
        )
    return factory


_KL_ADVICE = (
    "tfp_bnn's layers add kl_weight * KL(q || p) to model.losses themselves (exact where TFP has the closed "
    "form, a one-draw Monte Carlo estimate otherwise): pass kl_weight=1 / N (N training examples) instead, "
    "and no divergence function (one that divides by N beside kl_weight would scale the KL twice)"
)
_PRIOR_ADVICE = (
    "pass kernel_prior=, a tfp_bnn.priors factory over the kernel and the bias together "
    "(NormalPrior(scale), ScaleMixturePrior(...), TrainableNormalPrior(...))"
)
_POSTERIOR_ADVICE = (
    "pass kernel_posterior=, a tfp_bnn.posteriors factory over the kernel and the bias together "
    "(MeanFieldNormal(initial_scale=...), FullCovarianceNormal(...)); use_bias=False for no bias"
)
# The arguments of tfp.layers' DenseVariational, Dense/Convolution Reparameterization and Flipout layers,
# which tf_keras refused as "('Keyword argument not understood:', 'kernel_divergence_fn')".
_TFP_ARGUMENTS = {
    "kernel_divergence_fn": _KL_ADVICE,
    "bias_divergence_fn": _KL_ADVICE,
    "kl_use_exact": _KL_ADVICE,
    "make_prior_fn": _PRIOR_ADVICE,
    "kernel_prior_fn": _PRIOR_ADVICE,
    "bias_prior_fn": _PRIOR_ADVICE,
    "make_posterior_fn": _POSTERIOR_ADVICE,
    "kernel_posterior_fn": _POSTERIOR_ADVICE,
    "bias_posterior_fn": _POSTERIOR_ADVICE,
    "kernel_posterior_tensor_fn": "the weights are sampled by the estimator (training) and by tfp_bnn.predict's T "
                                  "draws (prediction); for the posterior mean use tfp_bnn.sampling.posterior_mean()",
    "bias_posterior_tensor_fn": "the weights are sampled by the estimator (training) and by tfp_bnn.predict's T "
                                "draws (prediction); for the posterior mean use tfp_bnn.sampling.posterior_mean()",
    "seed": "seed the draws with tf_keras.utils.set_random_seed (training) and tfp_bnn.predict(..., seed=)",
}


_INITIALIZER_ADVICE = (
    "the weights are a posterior: its means start from kernel_posterior=MeanFieldNormal(loc_initializer=...) "
    "(the biases' at zero) and its scales from initial_scale"
)
_REGULARIZER_ADVICE = (
    "the prior is the regularizer: kernel_prior=NormalPrior(scale) (its KL, weighted by kl_weight, is the "
    "penalty); for another penalty use model.add_loss"
)
_CONSTRAINT_ADVICE = "a posterior's draws are not constrained: constrain the outputs (activation, or the head)"
# Keras's Dense/Conv arguments, which tf_keras also refused with its bare "Keyword argument not understood".
_KERAS_ARGUMENTS = {
    "kernel_initializer": _INITIALIZER_ADVICE,
    "bias_initializer": _INITIALIZER_ADVICE,
    "kernel_regularizer": _REGULARIZER_ADVICE,
    "bias_regularizer": _REGULARIZER_ADVICE,
    "kernel_constraint": _CONSTRAINT_ADVICE,
    "bias_constraint": _CONSTRAINT_ADVICE,
}


def _is_tfp_distribution_fn(value):
    """Whether ``value`` is a ``tfp.layers`` prior/posterior function: ``make_posterior_fn(kernel_size, bias_size,
    dtype)`` (DenseVariational's, as TFP's regression tutorial and keras.io define them) or a
    ``kernel_posterior_fn(dtype, shape, name, trainable, add_variable_fn)``."""
    if isinstance(value, (str, type)) or not callable(value):
        return False
    try:
        names = list(inspect.signature(value).parameters)
    except (TypeError, ValueError):
        return False
    return names[:2] == ["kernel_size", "bias_size"] or names[:5] == list(_KERNEL_FN_ARGS)


def _refuse_tfp_arguments(layer_class, kwargs):
    """A ``TypeError`` naming the tfp_bnn argument for a ``tfp.layers`` or Keras one (ported code)."""
    given = [name for name in _TFP_ARGUMENTS if name in kwargs]
    if given:
        advice = "; ".join(dict.fromkeys(_TFP_ARGUMENTS[name] for name in given))
        raise TypeError(
            f"{layer_class.__name__} takes no {', '.join(given)} (tfp.layers' argument"
            f"{'s' if len(given) > 1 else ''}): {advice}."
        )
    given = [name for name in _KERAS_ARGUMENTS if name in kwargs]
    if given:
        advice = "; ".join(dict.fromkeys(_KERAS_ARGUMENTS[name] for name in given))
        raise TypeError(f"{layer_class.__name__} takes no {', '.join(given)} (Keras's Dense/Conv arguments): {advice}.")


class _BayesianLayer(RefusesKeras3Inputs, NameScopedBuildFromConfig, tf_keras.layers.Layer):
    """What the dense and convolution layers share: posterior, prior, KL, modes."""

    estimators = ESTIMATORS

    def __init__(
        self,
        estimator="flipout",
        activation=None,
        use_bias=True,
        kernel_prior=None,
        kernel_posterior=None,
        kl_weight=1.0,
        **kwargs,
    ):
        _refuse_tfp_arguments(type(self), kwargs)
        for name, value in (("activation", activation), ("estimator", estimator)):
            if isinstance(value, DistributionFactory) or _is_tfp_distribution_fn(value):
                # tfp.layers.DenseVariational(units, make_posterior_fn, make_prior_fn) ported as it was: the prior
                # became the estimator ("Unknown estimator NormalPrior(...)"); the posterior alone became the
                # activation (a warning of "a flat kernel of ... weights", then a TypeError at the first call).
                # TFP's own functions (the regression tutorial's posterior_mean_field, prior_trainable): "Unknown
                # estimator <function prior_trainable>", or the posterior as the activation, failing deep in TFP.
                tfp_function = (
                    " tfp.layers' prior/posterior functions go with tfp.layers' own layers; tfp_bnn's are the "
                    "factories of tfp_bnn.priors and tfp_bnn.posteriors (TFP's posterior_mean_field is "
                    "MeanFieldNormal, the keras.io MultivariateNormalTriL posterior FullCovarianceNormal with "
                    "estimator='variational')."
                ) if _is_tfp_distribution_fn(value) else ""
                raise TypeError(
                    f"{type(self).__name__} got {value!r} as its {name} (a positional argument?); pass priors "
                    "and posteriors by keyword: kernel_prior=NormalPrior(...), kernel_posterior=MeanFieldNormal(...)."
                    + tfp_function
                )
        super().__init__(**float32_under_mixed_precision(kwargs))
        refuse_mixed_policy(self)
        if estimator not in self.estimators:
            raise ValueError(
                f"Unknown estimator {estimator!r} for {type(self).__name__}; "
                f"choose one of {', '.join(map(repr, self.estimators))}."
            )
        self.estimator = estimator
        self.activation = tf_keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_prior = _factory(kernel_prior, NormalPrior, "kernel_prior", "NormalPrior, ScaleMixturePrior, "
                                     "TrainableNormalPrior or GaussianPrior from tfp_bnn.priors",
                                     other_kind=(Posterior,))
        self.kernel_posterior = _factory(kernel_posterior, MeanFieldNormal, "kernel_posterior",
                                         "MeanFieldNormal or FullCovarianceNormal from tfp_bnn.posteriors",
                                         other_kind=(Prior,))
        if isinstance(self.kernel_posterior, FullCovarianceNormal) and estimator not in _SINGLE_DRAW:
            raise ValueError(
                f"The {estimator!r} estimator needs independent weights; use a MeanFieldNormal "
                "posterior, or estimator='variational' for a full-covariance posterior."
            )
        self.kl_weight = kl_weight

    @property
    def kl_weight(self):
        """Factor of the layer's KL term, ``1 / N``; may be changed between steps.

        Once the layer is built a non-trainable variable holds it, which the traced
        train step reads: a callback that sets ``layer.kl_weight`` (a KL warm-up)
        changes what ``fit`` minimises from the next step on. A Python float would be
        baked into the step function when it is first traced.
        """
        return self.__dict__["_kl_weight"]  # the number set (1 / 100, not its float32 rounding)

    @kl_weight.setter
    def kl_weight(self, kl_weight):
        if isinstance(kl_weight, bool) or not isinstance(kl_weight, numbers.Real) or not 0 <= kl_weight < np.inf:
            raise ValueError(f"kl_weight must be a finite number >= 0 (1 / training-set size), got {kl_weight!r}.")
        # In __dict__, past Keras's attribute tracking: the variable is no weight of the
        # layer (get_weights and weight files are unchanged).
        self.__dict__["_kl_weight"] = float(kl_weight)
        variable = self.__dict__.get("_kl_weight_variable")
        if variable is not None:
            variable.assign(float(kl_weight))

    # -- subclasses --------------------------------------------------------
    def _kernel_shape(self, input_shape):
        raise NotImplementedError

    def _apply_kernel(self, x, kernel):
        """``x`` is ``[T, batch, ...]``; ``kernel`` is ``[T, *kernel_shape]`` or ``[1, ...]``."""
        raise NotImplementedError

    # -- build -------------------------------------------------------------
    def build(self, input_shape):
        self.kernel_shape = self._kernel_shape(tf.TensorShape(input_shape))
        self.num_kernel_weights = int(np.prod(self.kernel_shape))
        self.bias_size = self.kernel_shape[-1] if self.use_bias else 0
        self.posterior = self.kernel_posterior.make_layer(
            self.num_kernel_weights, self.bias_size, self.dtype, kernel_shape=self.kernel_shape
        )
        self.prior = self.kernel_prior.make_layer(
            self.num_kernel_weights, self.bias_size, self.dtype, kernel_shape=self.kernel_shape
        )
        self._check_over_flat_weights()
        self.exact_kl = self._has_exact_kl()
        if self.estimator not in _SINGLE_DRAW:
            self._check_mean_field_normal()
        variable = tf.Variable(self.kl_weight, trainable=False, dtype=self.dtype, name="kl_weight")
        self.__dict__["_kl_weight_variable"] = variable
        # A bound method, not a lambda over the layer and the variable: copy.deepcopy binds it
        # to the copy (a lambda is copied by reference, and a deep-copied layer's loss was the
        # original's KL, which no setting of the copy changed and whose gradient missed its weights).
        self.add_loss(self._scaled_kl_divergence)
        super().build(input_shape)

    def _scaled_kl_divergence(self):
        return self.__dict__["_kl_weight_variable"] * self.kl_divergence()

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # A SavedModel must reach the variable (the loss captures it); a weight checkpoint
        # leaves it out, as the .keras/.h5 weight files do: kl_weight (1 / N) is the model's
        # configuration, which load_weights must not change, and checkpoints written before
        # it existed still match every object.
        children = super()._trackable_children(save_type, **kwargs)
        variable = self.__dict__.get("_kl_weight_variable")
        if variable is not None and save_type == "savedmodel":
            children["kl_weight_variable"] = variable
        return children

    @property
    def kl_weight_variable(self):
        """The non-trainable variable that holds :attr:`kl_weight` once built (``None`` before)."""
        return self.__dict__.get("_kl_weight_variable")

    @kl_weight_variable.setter
    def kl_weight_variable(self, variable):
        # Keras's SavedModel loader (load_model of a model.save("dir") folder) sets the saved
        # child back by name, after finding it with _lookup_dependency: the layer's own
        # variable. As a property it is not tracked again as a weight of the layer (it was:
        # one array more per Bayesian layer in get_weights(), so set_weights between the
        # original and the loaded model failed).
        if variable is not self.kl_weight_variable:
            raise AttributeError("kl_weight_variable is the layer's own; set layer.kl_weight instead.")

    def _lookup_dependency(self, name, cached_dependencies=None):
        # Only for the SavedModel loaders, which ask without cached_dependencies. A checkpoint
        # restore (load_weights of a SavedModel folder's variables/variables) passes the
        # children of a weight checkpoint, which leave the variable out: it must not change
        # kl_weight, as no other weight file does (and layer.kl_weight would not show it).
        if name == "kl_weight_variable" and cached_dependencies is None and self.kl_weight_variable is not None:
            return self.kl_weight_variable
        return super()._lookup_dependency(name, cached_dependencies)

    def _check_mean_field_normal(self):
        """Flipout and local reparameterization train with ``mean + stddev * Normal noise`` per weight.

        For any other posterior (your own factory's: correlated weights, another family) training
        would optimise the mean-field Normal of the same marginals while the KL and ``tfp_bnn.predict``
        use the posterior itself, without an error. FullCovarianceNormal is refused in ``__init__``.
        """
        q = self.posterior.distribution()
        inner = q.distribution if isinstance(q, tfd.Independent) else None
        if isinstance(q, tfd.MultivariateNormalDiag) or isinstance(inner, tfd.Normal):
            return
        raise ValueError(
            f"The {self.estimator!r} estimator of {type(self).__name__} {self.name!r} samples independent Normal "
            f"weights (mean + stddev * noise), but its posterior is {type(q).__name__}: training would ignore its "
            "correlations and family. Use estimator='variational' (or 'reparameterization') with this posterior; "
            "Flipout and local reparameterization need a mean-field Normal one (tfd.MultivariateNormalDiag, or "
            "tfd.Independent over tfd.Normal)."
        )

    def _check_over_flat_weights(self):
        """Both distributions are one event of ``[kernel.ravel(), bias]`` in the layer's dtype (a factory of your own).

        A bare elementwise distribution (``tfd.Laplace(zeros([size]))``: batch ``[size]``,
        event ``[]``) gave a KL and log-densities per weight instead of one number.
        """
        size = self.num_kernel_weights + self.bias_size
        for argument, factory, made in (("kernel_posterior", self.kernel_posterior, self.posterior),
                                        ("kernel_prior", self.kernel_prior, self.prior)):
            dist = made.distribution()
            shapes_known = dist.batch_shape.is_fully_defined() and dist.event_shape.is_fully_defined()
            if shapes_known and (dist.batch_shape.rank != 0 or dist.event_shape.as_list() != [size]):
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: its {argument} {factory!r} made a distribution of batch "
                    f"shape {dist.batch_shape} and event shape {dist.event_shape}; it must be one distribution over "
                    f"the flat [kernel, bias] vector of {self.num_kernel_weights} + {self.bias_size} weights: batch "
                    f"shape [], event shape [{size}]. Wrap an elementwise distribution in "
                    "tfd.Independent(..., reinterpreted_batch_ndims=1)."
                )
            if dist.dtype != tf.as_dtype(self.dtype):
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: its {argument} {factory!r} made a {dist.dtype.name} "
                    f"distribution for a {self.dtype} layer; make it in the dtype make_layer receives."
                )

    def _has_exact_kl(self):
        try:
            tfd.kl_divergence(self.posterior.distribution(), self.prior.distribution())
        except NotImplementedError:
            return False
        return True

    def kl_divergence(self):
        """``KL(q || p)`` of this layer's weights from the current variables (unscaled)."""
        q, p = self.posterior.distribution(), self.prior.distribution()
        if self.exact_kl:
            return tfd.kl_divergence(q, p)
        w = q.sample()
        return q.log_prob(w) - p.log_prob(w)

    # -- forward -----------------------------------------------------------
    def _split(self, params):
        """``[T, num_kernel_weights + bias_size]`` -> kernel ``[T, *kernel_shape]``, bias ``[T, units]``."""
        kernel = tf.reshape(params[..., : self.num_kernel_weights], [-1, *self.kernel_shape])
        bias = params[..., self.num_kernel_weights :] if self.use_bias else None
        return kernel, bias

    def _add_bias(self, y, bias):
        if bias is None:
            return y
        return y + tf.reshape(bias, [-1] + [1] * (y.shape.rank - 2) + [self.kernel_shape[-1]])

    def _mean_field_moments(self):
        q = self.posterior.distribution()
        return q.mean(), q.stddev()

    def call(self, inputs):
        mode = sampling.current_mode()
        num_draws = mode.num_draws if mode.kind == "draws" else 1
        # Made first, as they always were: under a global seed a stateful random op's seed is
        # its place in the graph, so moving them would change what a seeded fit draws. Draws
        # made in the function around a recurrent cell's loop make their seed there.
        seeds = None if mode.draws_elsewhere() else self._seeds(mode)
        x = tf.cast(inputs, self.compute_dtype)
        x = tf.reshape(x, tf.concat([[num_draws, -1], tf.shape(x)[1:]], axis=0))

        if mode.kind == "mean":
            y = self._forward_mean(x)
        elif self.estimator in _SINGLE_DRAW or mode.kind == "draws":
            # Under weight_draws every estimator samples whole weights: Flipout's sign flips
            # and local reparameterization only lower the variance of training gradients;
            # the predictive distribution is the same, and draw t is then one network for
            # all inputs (coherent sampled curves).
            def sample():
                seed = (self._seeds(mode) if seeds is None else seeds)[0]
                draw = getattr(self.posterior, "sample_weights", None)
                if draw is not None:
                    return draw(num_draws, seed)
                return self.posterior.distribution().sample(num_draws, seed=seed)

            params = mode.layer_weights(sample, self) if mode.kind == "draws" else sample()
            kernel, bias = self._split(params)
            y = self._add_bias(self._apply_kernel(x, kernel), bias)
        elif self.estimator == "flipout":
            y = self._forward_flipout(x, seeds)
        else:
            y = self._forward_local_reparameterization(x, seeds)

        y = tf.reshape(y, tf.concat([[-1], tf.shape(y)[2:]], axis=0))
        return self.activation(y) if self.activation is not None else y

    def _seeds(self, mode):
        """Three seeds for one forward pass: stateless under ``weight_draws(T, seed)``, else None (stateful)."""
        # No salt: mode.next_seed already differs per layer, by the order of tracing, so the
        # draws depend on the seed and the architecture, not on auto-generated layer names.
        return tfp.random.split_seed(mode.next_seed(self) if mode.kind == "draws" else None, n=3)

    def _forward_mean(self, x):
        kernel, bias = self._split(self.posterior.distribution().mean()[tf.newaxis])
        return self._add_bias(self._apply_kernel(x, kernel), bias)

    def _forward_flipout(self, x, seeds):
        loc, scale = self._mean_field_moments()
        loc_kernel, loc_bias = self._split(loc[tf.newaxis])
        noise = scale * _standard_normal([1, self.num_kernel_weights + self.bias_size], seeds[0], x.dtype)
        delta_kernel, delta_bias = self._split(noise)
        # Flipout: example n sees W + dW * (r_n s_n^T) with random signs r_n, s_n.
        sign_in = _random_signs(_flipout_sign_shape(x), seeds[1], x.dtype)
        perturbation = self._apply_kernel(x * sign_in, delta_kernel)
        sign_out = _random_signs(_flipout_sign_shape(perturbation), seeds[2], x.dtype)
        y = self._apply_kernel(x, loc_kernel) + perturbation * sign_out
        bias = None if loc_bias is None else loc_bias + delta_bias
        return self._add_bias(y, bias)

    def _forward_local_reparameterization(self, x, seeds):
        loc, scale = self._mean_field_moments()
        loc_kernel, loc_bias = self._split(loc[tf.newaxis])
        var_kernel, var_bias = self._split(tf.square(scale)[tf.newaxis])
        mean = self._add_bias(self._apply_kernel(x, loc_kernel), loc_bias)
        variance = self._add_bias(self._apply_kernel(tf.square(x), var_kernel), var_bias)
        noise = _standard_normal(tf.shape(mean), seeds[0], x.dtype)
        return mean + tf.sqrt(variance + _VARIANCE_FLOOR) * noise

    def get_config(self):
        return {
            **super().get_config(),
            "estimator": self.estimator,
            "activation": tf_keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_prior": serialize(self.kernel_prior),
            "kernel_posterior": serialize(self.kernel_posterior),
            "kl_weight": self.kl_weight,
            # Keras's base Layer takes it but leaves it out of its config (Dense adds it too).
            "activity_regularizer": tf_keras.regularizers.serialize(self.activity_regularizer),
        }


@register
class BayesianDense(_BayesianLayer):
    """Densely connected layer with a posterior over its kernel and bias.

    ``outputs = activation(inputs @ W + b)`` with ``[W, b] ~ q``; adds
    ``kl_weight * KL(q || p)`` to ``model.losses``.

    Args:
      units: dimensionality of the output space.
      activation: Keras activation (``None``: linear).
      estimator: ``"flipout"`` (default), ``"reparameterization"``,
        ``"variational"`` or ``"local_reparameterization"`` (module docs).
      use_bias: whether the layer has a (Bayesian) bias.
      kernel_prior: a :mod:`tfp_bnn.priors` factory over ``[W, b]``
        (default ``NormalPrior(1.0)``), or one of your own (a subclass of
        :class:`tfp_bnn.priors.Prior`).
      kernel_posterior: a :mod:`tfp_bnn.posteriors` factory over ``[W, b]``
        (default ``MeanFieldNormal(initial_scale=1e-3)``), or one of your own
        (a subclass of :class:`tfp_bnn.posteriors.Posterior`).
      kl_weight: factor of the KL term, ``1 / N`` for ``N`` training examples;
        a callback may change ``layer.kl_weight`` during ``fit`` (KL warm-up).

    Input shape ``(batch, ..., input_dim)``; output ``(batch, ..., units)``.

    Once built, ``layer.posterior.distribution()`` and
    ``layer.prior.distribution()`` are ``q`` and ``p`` as TFP distributions
    over the flat vector ``[W.ravel(), b]`` (event shape
    ``(input_dim * units + units,)``, ``W`` row-major ``(input_dim, units)``),
    the weights this layer samples; ``layer.kl_divergence()`` is
    ``KL(q || p)`` unscaled, in nats (the model's loss adds ``kl_weight``
    times it), exact if ``layer.exact_kl``, else a one-draw Monte Carlo estimate. The same holds for the convolutions, with the kernel of shape
    ``(*kernel_size, input_channels, filters)``.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.layers import BayesianDense
    >>> layer = BayesianDense(8, activation="relu", kl_weight=1 / 1000)
    >>> layer(tf.zeros([4, 3])).shape
    TensorShape([4, 8])
    >>> q = layer.posterior.distribution()
    >>> q.event_shape  # the 3 x 8 kernel, then the 8 biases
    TensorShape([32])
    >>> W = tf.reshape(q.mean()[: 3 * 8], (3, 8))  # the posterior mean of the kernel
    """

    def __init__(self, units, activation=None, estimator="flipout", **kwargs):
        super().__init__(estimator=estimator, activation=activation, **kwargs)
        self.units = check_positive_int(units, "units")
        self.input_spec = tf_keras.layers.InputSpec(min_ndim=2)
        # As Keras's Dense: applied to each step on its own, so a sequence's padding mask
        # (Embedding(mask_zero=True), Masking) passes on to a recurrent layer after it.
        self.supports_masking = True

    def _kernel_shape(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError("The last dimension of the inputs to BayesianDense must be known.")
        self.input_spec = tf_keras.layers.InputSpec(min_ndim=2, axes={-1: int(input_shape[-1])})
        return (int(input_shape[-1]), self.units)

    def _apply_kernel(self, x, kernel):
        if kernel.shape[0] == 1:
            # One kernel for all draws (single draw, posterior mean, Flipout's
            # mean): one 2-D matmul of all rows. A [1, ...] batched matmul costs
            # about as much as the rest of a small layer's training step.
            rows = tf.matmul(tf.reshape(x, [-1, self.kernel_shape[0]]), kernel[0])
            return tf.reshape(rows, tf.concat([tf.shape(x)[:-1], [self.units]], axis=0))
        # Broadcast the [T, in, out] kernels over any middle dimensions of x.
        kernel = tf.reshape(kernel, [-1] + [1] * (x.shape.rank - 3) + list(self.kernel_shape))
        return tf.matmul(x, kernel)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.units])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _BayesianConv(_BayesianLayer):
    """A ``rank``-D convolution (channels last) with a posterior over its kernel and bias.

    The base of :class:`BayesianConv1D`, :class:`BayesianConv2D` and
    :class:`BayesianConv3D`: their arguments are those of ``tf_keras``'s
    ``Conv1D``/``Conv2D``/``Conv3D`` with ``rank`` spatial axes. The kernel has
    shape ``(*kernel_size, input_channels, filters)``.
    """

    rank = None  # spatial axes, set by each subclass
    estimators = ("variational", "reparameterization", "flipout")

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        activation=None,
        estimator="flipout",
        data_format=None,
        **kwargs,
    ):
        super().__init__(estimator=estimator, activation=activation, **kwargs)
        # None follows Keras's global image_data_format, as Conv2D does: channels first
        # would otherwise be read as channels last, silently.
        data_format = tf_keras.backend.image_data_format() if data_format is None else data_format
        if data_format != "channels_last":
            spatial = ", ".join(str(axis) for axis in range(2, self.rank + 2))
            raise ValueError(
                f"{type(self).__name__} takes inputs channels last, got data_format {data_format!r} (the argument "
                "or tf_keras.backend.image_data_format()); pass data_format='channels_last' with inputs "
                f"(batch, {self._spatial_names()}, channels), e.g. after tf_keras.layers.Permute(({spatial}, 1))."
            )
        self.data_format = data_format
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = _spatial_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = _spatial_tuple(strides, self.rank, "strides")
        self.dilation_rate = _spatial_tuple(dilation_rate, self.rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:  # as Conv2D: TF's convolution has no such mode
            raise ValueError(
                f"strides {self.strides} > 1 and dilation_rate {self.dilation_rate} > 1 cannot go together; "
                "choose one."
            )
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}.")
        self.padding = padding.lower()
        self.input_spec = tf_keras.layers.InputSpec(ndim=self.rank + 2)

    def _spatial_names(self):
        return {1: "steps", 2: "height, width", 3: "depth, height, width"}[self.rank]

    def _kernel_shape(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"The channel dimension of the inputs to {type(self).__name__} must be known.")
        # As Conv2D: another channel count is refused. TF's convolution would run a
        # multiple of it as a grouped convolution, silently.
        self.input_spec = tf_keras.layers.InputSpec(ndim=self.rank + 2, axes={-1: int(input_shape[-1])})
        return (*self.kernel_size, int(input_shape[-1]), self.filters)

    def compute_output_shape(self, input_shape):
        """As ``Conv2D``'s, from the arguments alone: no weights built, no weights drawn."""
        input_shape = tf.TensorShape(input_shape).with_rank(self.rank + 2)
        spatial = [
            conv_utils.conv_output_length(size, kernel, self.padding, stride, dilation)
            for size, kernel, stride, dilation in zip(
                input_shape[1 : self.rank + 1], self.kernel_size, self.strides, self.dilation_rate
            )
        ]
        if any(size is not None and size < 0 for size in spatial):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: inputs of shape {tuple(input_shape)} are smaller than the "
                f"kernel {self.kernel_size} (dilation {self.dilation_rate}) with padding 'valid'."
            )
        return tf.TensorShape([input_shape[0], *spatial, self.filters])

    def _convolve(self, x, kernel):
        return tf.nn.convolution(
            x, kernel, strides=self.strides, padding=self.padding.upper(), dilations=self.dilation_rate
        )

    def _apply_kernel(self, x, kernel):
        if kernel.shape[0] == 1:
            # One kernel for every draw: a single convolution of all T * batch inputs.
            y = self._convolve(tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)), kernel[0])
            return tf.reshape(y, tf.concat([tf.shape(x)[:2], tf.shape(y)[1:]], 0))
        if x.shape[0] == 1:
            return self._convolve(x[0], kernel[0])[tf.newaxis]
        return tf.map_fn(
            lambda xk: self._convolve(xk[0], xk[1]),
            (x, kernel),
            fn_output_signature=x.dtype,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "data_format": self.data_format,
        }


_CONV_ARGS = """Estimators ``"reparameterization"``/``"variational"`` (one kernel draw per
    forward pass) and ``"flipout"``. Within :func:`tfp_bnn.sampling.weight_draws`
    the ``T`` kernel draws are applied with ``tf.map_fn``.

    Args:
      filters, kernel_size, strides, padding, dilation_rate: as in
        ``tf_keras.layers.{keras}`` (an int or a tuple of {rank}); padding
        ``"valid"`` or ``"same"``.
      data_format: ``"channels_last"``; ``None`` (default) takes Keras's
        ``image_data_format()``, which must then be ``"channels_last"``.
      estimator: ``"flipout"`` (default), ``"reparameterization"`` or ``"variational"``.
      Other arguments as in :class:`BayesianDense`."""


@register
class BayesianConv1D(_BayesianConv):
    """1-D convolution (sequences, channels last) with a posterior over its kernel and bias.

    {args}

    Input shape ``(batch, steps, channels)``; output ``(batch, new_steps, filters)``.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.layers import BayesianConv1D
    >>> layer = BayesianConv1D(4, 3, activation="relu", kl_weight=1 / 1000)
    >>> layer(tf.zeros([2, 10, 1])).shape
    TensorShape([2, 8, 4])
    """

    rank = 1


@register
class BayesianConv2D(_BayesianConv):
    """2-D convolution (images, channels last) with a posterior over its kernel and bias.

    {args}

    Input shape ``(batch, height, width, channels)``; output
    ``(batch, new_height, new_width, filters)``.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.layers import BayesianConv2D
    >>> layer = BayesianConv2D(4, 3, activation="relu", kl_weight=1 / 1000)
    >>> layer(tf.zeros([2, 8, 8, 1])).shape
    TensorShape([2, 6, 6, 4])
    """

    rank = 2


@register
class BayesianConv3D(_BayesianConv):
    """3-D convolution (volumes, channels last) with a posterior over its kernel and bias.

    {args}

    Input shape ``(batch, depth, height, width, channels)``; output
    ``(batch, new_depth, new_height, new_width, filters)``.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.layers import BayesianConv3D
    >>> layer = BayesianConv3D(4, 3, activation="relu", kl_weight=1 / 1000)
    >>> layer(tf.zeros([2, 6, 6, 6, 1])).shape
    TensorShape([2, 4, 4, 4, 4])
    """

    rank = 3


for _conv, _keras in ((BayesianConv1D, "Conv1D"), (BayesianConv2D, "Conv2D"), (BayesianConv3D, "Conv3D")):
    _conv.__doc__ = _conv.__doc__.replace("{args}", _CONV_ARGS.replace("{keras}", _keras).replace("{rank}", str(_conv.rank)))
del _conv, _keras


def _spatial_tuple(value, rank, name):
    """``value`` (an int, or ``rank`` of them) as a tuple of ``rank`` positive ints."""
    try:
        values = (value,) * rank if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:  # not iterable: 3.0, None
        values = ()
    if len(values) != rank or not all(is_positive_int(v) for v in values):
        kind = "a pair" if rank == 2 else f"a tuple of {rank}"
        raise ValueError(f"{name} must be a positive int or {kind} of them, got {value!r}.")
    return tuple(int(v) for v in values)
