"""Variational posteriors over the weights of a Bayesian layer.

Each posterior is a serializable factory, a subclass of :class:`Posterior`: pass it
as ``kernel_posterior`` of :class:`tfp_bnn.layers.BayesianDense`, as
``make_posterior_fn`` of ``tfp.layers.DenseVariational`` or (mean-field only)
as ``kernel_posterior_fn`` of ``tfp.layers.DenseReparameterization``/
``DenseFlipout``.

A posterior of your own subclasses :class:`Posterior`, whose ``make_layer``
returns a :class:`DistributionLayer` holding its variables; :class:`Posterior`
says what to define.

The initial posterior scale matters: a wide initial posterior injects so much
noise that the network cannot fit the data and the KL term drives every weight
back to the prior (training "collapses" to a constant). Start narrow
(``initial_scale`` around 1e-3 in standardized units) and let the KL widen it.

Example:

>>> from tfp_bnn.posteriors import MeanFieldNormal
>>> layer = MeanFieldNormal(initial_scale=1e-3).make_layer(6, 2, kernel_shape=(3, 2))
>>> layer.distribution().event_shape
TensorShape([8])
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_bnn import _warnings
from tfp_bnn._factory import (
    DistributionFactory,
    DistributionLayer,
    fresh_initializer,
    kernel_shape_or_flat,
    register,
    softplus_inverse,
)

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["DistributionLayer", "FullCovarianceNormal", "MeanFieldNormal", "Posterior"]

# Full covariance stores size * (size + 1) / 2 numbers: refuse sizes whose
# Cholesky factor would not fit comfortably in memory or time.
MAX_FULL_COVARIANCE_SIZE = 2048


def _initial_loc(kernel_shape, bias_size, initializer, dtype):
    """Kernel part from a fresh copy of a Keras initializer (it knows fan-in/out), bias part zero."""
    kernel = fresh_initializer(initializer)(kernel_shape, dtype=dtype)
    return tf.concat([tf.reshape(kernel, [-1]), tf.zeros([bias_size], dtype)], axis=0)


class _PosteriorLayer(DistributionLayer):
    def __init__(self, kernel_shape, bias_size, initial_scale, loc_initializer, **kwargs):
        kernel_shape = tuple(int(d) for d in kernel_shape)
        super().__init__(int(np.prod(kernel_shape)) + int(bias_size), **kwargs)
        self.kernel_shape = kernel_shape
        self.bias_size = int(bias_size)
        self.initial_scale = float(initial_scale)
        self.loc_initializer = tf_keras.initializers.get(loc_initializer)
        self.loc = self.add_weight(
            name="posterior_loc",
            shape=[self.size],
            initializer=lambda shape, dtype: _initial_loc(
                self.kernel_shape, self.bias_size, self.loc_initializer, dtype
            ),
        )

    def get_config(self):
        config = super().get_config()
        del config["size"]
        return {
            **config,
            "kernel_shape": self.kernel_shape,
            "bias_size": self.bias_size,
            "initial_scale": self.initial_scale,
            "loc_initializer": tf_keras.initializers.serialize(self.loc_initializer),
        }


@register
class MeanFieldNormalLayer(_PosteriorLayer):
    """Variables ``loc`` and ``rho`` of ``Normal(loc, softplus(rho))`` per weight."""

    def __init__(self, kernel_shape, bias_size, initial_scale, loc_initializer, **kwargs):
        super().__init__(kernel_shape, bias_size, initial_scale, loc_initializer, **kwargs)
        self.untransformed_scale = self.add_weight(
            name="posterior_untransformed_scale",
            shape=[self.size],
            initializer=tf.constant_initializer(softplus_inverse(self.initial_scale)),
        )

    def distribution(self):
        return tfd.MultivariateNormalDiag(loc=self.loc, scale_diag=self.scale())

    def scale(self):
        return tf.nn.softplus(self.untransformed_scale) + 1e-8

    def sample_weights(self, num_draws, seed):
        """``[num_draws, size]`` draws of :meth:`distribution`, bit for bit, without a bijector.

        ``MultivariateNormalDiag.sample`` goes through TFP's process-wide
        bijector cache, which holds the input of every graph-mode forward as
        long as its output lives, and the output lives as long as its graph:
        every traced graph that sampled (each export, each predict function)
        stayed in memory for the life of the process.
        """
        return tfd.Independent(tfd.Normal(self.loc, self.scale()), 1).sample(num_draws, seed=seed)


_DIAG_SHIFT = 1e-6  # the smallest diagonal of L: keeps L invertible


def _stable_softplus(x):
    """``tfb.Softplus().forward(x)``, bit for bit, without ``tf.custom_gradient``.

    TFP's Softplus bijector computes ``log1p(exp(x))`` below a cutoff and
    ``softplus(x)`` above, with a custom gradient: in a graph, ``tf.custom_gradient``
    registers a new gradient function per call in TensorFlow's process-wide registry,
    and that function holds the graph's tensors, so every graph that called it stayed
    alive. Here the gradient is TensorFlow's own (``SoftplusGrad``, and
    ``exp(x) / (1 + exp(x))`` below the cutoff instead of ``exp(x)``: within a few
    float32 ulps, and a relative 1e-4 where ``L`` has a diagonal under 1.2e-4).
    """
    cutoff = -20.0 if x.dtype == tf.float64 else -9.0
    # min(): the branch not taken must not give inf * 0 = NaN gradients for large x.
    return tf.where(x < cutoff, tf.math.log1p(tf.exp(tf.minimum(x, cutoff))), tf.nn.softplus(x))


@register
class FullCovarianceNormalLayer(_PosteriorLayer):
    """Variables of ``MultivariateNormalTriL(loc, L)``, ``L`` from a vector by ``FillScaleTriL``."""

    def __init__(self, kernel_shape, bias_size, initial_scale, loc_initializer, **kwargs):
        super().__init__(kernel_shape, bias_size, initial_scale, loc_initializer, **kwargs)
        # The bijector's inverse takes the shift off itself: L starts at exactly initial_scale
        # (eager, once: no graph for the bijector cache to keep).
        fill = tfb.FillScaleTriL(diag_bijector=tfb.Softplus(), diag_shift=tf.constant(_DIAG_SHIFT, self.dtype))
        initial_tril = fill.inverse(tf.eye(self.size, dtype=self.dtype) * self.initial_scale).numpy()
        self.untransformed_scale_tril = self.add_weight(
            name="posterior_untransformed_scale_tril",
            shape=[self.size * (self.size + 1) // 2],
            initializer=tf.constant_initializer(initial_tril),
        )

    def scale_tril(self):
        """``L``: what ``FillScaleTriL(Softplus(), diag_shift)`` makes of the vector, bit for bit.

        Without the bijector: its forward goes through TFP's process-wide bijector
        cache, and its ``Softplus`` through a ``tf.custom_gradient``, which in a graph
        registers its gradient in TensorFlow's process-wide registry. Either kept every
        traced graph that built ``L`` (each predict function, each export, each
        ``evaluate``) alive for the life of the process.
        """
        tril = tfp.math.fill_triangular(tf.convert_to_tensor(self.untransformed_scale_tril))
        diag = _stable_softplus(tf.linalg.diag_part(tril)) + tf.constant(_DIAG_SHIFT, tril.dtype)
        return tf.linalg.set_diag(tril, diag)

    def distribution(self):
        return tfd.MultivariateNormalTriL(loc=self.loc, scale_tril=self.scale_tril())

    def sample_weights(self, num_draws, seed):
        """``[num_draws, size]`` draws of :meth:`distribution`, bit for bit: ``loc + L z``.

        The standard normal ``z`` from the distribution's own base distribution,
        ``L z`` by its own operator, without its bijectors (and their cache, see
        :meth:`scale_tril`).
        """
        q = self.distribution()
        z = q.distribution.sample(num_draws, seed=seed)
        return q.scale.matvec(z) + q.loc


class Posterior(DistributionFactory):
    """Base class of the variational posteriors ``q(w)`` of a Bayesian layer; subclass it for your own.

    A posterior is a small factory object, not a Keras layer: one instance may be
    passed to every layer of a model. Each Bayesian layer calls
    ``make_layer(kernel_size, bias_size, dtype, kernel_shape=kernel_shape)`` once,
    when it is built, and keeps the :class:`DistributionLayer` it returns as
    ``layer.posterior``: its variables are the layer's trainable weights, and
    ``layer.posterior.distribution()`` is ``q``, which the layer samples (through
    the layer's ``sample_weights(num_draws, seed)`` if it has one).

    What to define:

    * ``make_layer(kernel_size, bias_size=0, dtype=None, kernel_shape=None)``:
      a :class:`DistributionLayer` subclass over ``kernel_size + bias_size``
      weights, made with ``dtype=dtype``, that creates its variables with
      ``add_weight`` and returns ``q`` from ``distribution()``.
    * ``get_config()``: the arguments of ``__init__`` (``{}`` if none), and
      registration with ``tf_keras.saving.register_keras_serializable(package=...)``,
      so that ``model.save("m.keras")`` stores the posterior and ``load_model``
      (in a process that has run the registration) makes the layer again and
      loads its variables. The :class:`DistributionLayer` needs no registration.
    * optionally ``kernel_fn(dtype, shape, name, trainable, add_variable_fn)``,
      for TFP's Reparameterization/Flipout layers only.

    Shapes and dtype: ``q`` is over the flat vector ``[kernel.ravel(), bias]``
    (the kernel row-major in ``kernel_shape``: ``(input_dim, units)`` for a dense
    layer, ``(*kernel_size, input_channels, filters)`` for a convolution), with
    batch shape ``[]``, event shape ``[kernel_size + bias_size]`` and dtype
    ``dtype``; a Bayesian layer refuses another shape or dtype when it is built.

    Estimators: a posterior with correlated weights or another family than the
    Normal goes with ``estimator="variational"`` (or ``"reparameterization"``),
    which samples whole weight vectors. Flipout and local reparameterization take
    only a mean-field Normal ``q`` (``tfd.MultivariateNormalDiag``, or
    ``tfd.Independent`` over ``tfd.Normal``); the layer refuses others.

    The KL term ``KL(q || p)`` is exact when TFP has ``tfd.kl_divergence`` for the
    pair of classes (a ``MultivariateNormalDiag`` ``q`` against
    :class:`~tfp_bnn.priors.NormalPrior`), else an unbiased one-draw Monte Carlo
    estimate ``log q(w) - log p(w)`` at ``w ~ q`` (``layer.exact_kl`` says which).
    ``q`` must be reparameterized (``q.reparameterization_type`` is
    ``tfd.FULLY_REPARAMETERIZED``, as for every Normal) for ``fit`` to train it.

    Example: a low-rank plus diagonal Gaussian, ``Cov = diag(d) + U U^T``, ``U`` of
    ``rank`` columns.

    >>> import tensorflow as tf, tensorflow_probability as tfp, tf_keras
    >>> from tfp_bnn.layers import BayesianDense
    >>> from tfp_bnn.posteriors import DistributionLayer, Posterior
    >>> class LowRankLayer(DistributionLayer):
    ...     def __init__(self, size, rank, **kwargs):
    ...         super().__init__(size, **kwargs)
    ...         self.rank = rank
    ...         self.loc = self.add_weight(name="loc", shape=[size], initializer="glorot_uniform")
    ...         narrow = tf_keras.initializers.Constant(-10.0)  # the variances d start at softplus(-10)
    ...         self.raw_diag = self.add_weight(name="raw_diag", shape=[size], initializer=narrow)
    ...         small = tf_keras.initializers.RandomNormal(stddev=1e-3)
    ...         self.factor = self.add_weight(name="factor", shape=[size, rank], initializer=small)
    ...     def distribution(self):
    ...         return tfp.distributions.MultivariateNormalDiagPlusLowRankCovariance(
    ...             self.loc, tf.nn.softplus(self.raw_diag), self.factor)
    ...     def get_config(self):
    ...         return {**super().get_config(), "rank": self.rank}
    >>> @tf_keras.saving.register_keras_serializable(package="my_posteriors")
    ... class LowRankNormal(Posterior):
    ...     def __init__(self, rank=2):
    ...         self.rank = int(rank)
    ...     def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
    ...         return LowRankLayer(kernel_size + bias_size, self.rank, dtype=dtype)
    ...     def get_config(self):
    ...         return {"rank": self.rank}
    >>> layer = BayesianDense(2, estimator="variational", kernel_posterior=LowRankNormal(rank=2), kl_weight=1 / 100)
    >>> layer(tf.zeros([4, 3])).shape
    TensorShape([4, 2])
    >>> layer.posterior.distribution().event_shape, len(layer.trainable_weights), layer.exact_kl
    (TensorShape([8]), 3, False)
    """

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        """A :class:`DistributionLayer` holding the variables of ``q`` over ``kernel_size + bias_size`` weights.

        Arguments as in :meth:`DistributionFactory.make_layer`: ``kernel_size``,
        ``bias_size``, ``dtype`` (make the layer with it) and ``kernel_shape``
        (the kernel's shape, e.g. for a fan-based initializer of the means;
        ``None`` from ``tfp.layers.DenseVariational``).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define make_layer(kernel_size, bias_size=0, dtype=None, kernel_shape=None), "
            "returning a DistributionLayer over kernel_size + bias_size weights."
        )


@register
class MeanFieldNormal(Posterior):
    """Mean-field Gaussian posterior ``q(w) = prod_j Normal(mu_j, softplus(rho_j))``.

    The softplus keeps the scale positive with a gradient that does not vanish
    for small scales (unlike ``exp`` of a large negative number).

    Args:
      initial_scale: every ``softplus(rho_j)`` at initialisation.
      loc_initializer: Keras initializer of the kernel means (biases start at
        zero), ``"glorot_uniform"`` as in ``tf_keras.layers.Dense``.

    Example: the posterior of a 3x2 kernel and 2 biases, a distribution over 8 weights.

    >>> from tfp_bnn.posteriors import MeanFieldNormal
    >>> layer = MeanFieldNormal(initial_scale=0.05).make_layer(6, 2, kernel_shape=(3, 2))
    >>> q = layer.distribution()
    >>> q.event_shape, round(float(q.stddev()[0]), 4), len(layer.trainable_weights)  # mu and rho
    (TensorShape([8]), 0.05, 2)
    """

    layer_class = MeanFieldNormalLayer

    def __init__(self, initial_scale=1e-3, loc_initializer="glorot_uniform"):
        if not initial_scale > 0:
            raise ValueError(f"initial_scale must be positive, got {initial_scale!r}.")
        self.initial_scale = float(initial_scale)
        self.loc_initializer = loc_initializer

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        """A :class:`MeanFieldNormalLayer`; the kernel means start from ``loc_initializer``."""
        if kernel_shape is None and bias_size and kernel_size % bias_size == 0:
            # tfp.layers.DenseVariational gives sizes only; its kernel is [in, units] with
            # bias_size = units, and the initializer needs those fans, not a flat in * units.
            kernel_shape = (kernel_size // bias_size, bias_size)
        elif kernel_shape is None and isinstance(
            fresh_initializer(self.loc_initializer), tf_keras.initializers.VarianceScaling
        ):
            # tfp.layers.DenseVariational(use_bias=False) gives in * units only: a fan-based
            # initializer would take fan_in = fan_out = in * units (far narrower means than Dense's).
            _warnings.warn(
                f"{type(self).__name__} got a flat kernel of {kernel_size} weights without its shape "
                "(tfp.layers.DenseVariational(use_bias=False) passes sizes only): its fan-based loc_initializer "
                f"{self.loc_initializer!r} takes fan_in = fan_out = {kernel_size}, so the kernel means start much "
                "narrower than in tf_keras.layers.Dense. Pass use_bias=True, or a loc_initializer that does not "
                "depend on the fans (e.g. tf_keras.initializers.RandomNormal(stddev=...)).",
            )
        return self.layer_class(
            kernel_shape_or_flat(kernel_size, kernel_shape),
            bias_size,
            self.initial_scale,
            self.loc_initializer,
            dtype=dtype,
        )

    def kernel_fn(self, dtype, shape, name, trainable, add_variable_fn):
        """``Normal(loc, softplus(rho))`` per weight of a kernel of ``shape`` (TFP's Reparameterization/Flipout)."""
        loc = add_variable_fn(
            name=name + "_loc",
            shape=shape,
            initializer=fresh_initializer(self.loc_initializer),
            dtype=dtype,
            trainable=trainable,
        )
        untransformed_scale = add_variable_fn(
            name=name + "_untransformed_scale",
            shape=shape,
            initializer=tf.constant_initializer(softplus_inverse(self.initial_scale)),
            dtype=dtype,
            trainable=trainable,
        )
        scale = tfp.util.DeferredTensor(untransformed_scale, lambda u: tf.nn.softplus(u) + 1e-8)
        return tfd.Independent(tfd.Normal(loc=loc, scale=scale), reinterpreted_batch_ndims=len(shape))

    def get_config(self):
        """``{"initial_scale": ..., "loc_initializer": ...}`` (the initializer serialized)."""
        loc_initializer = self.loc_initializer
        if not isinstance(loc_initializer, (str, dict)):  # names and configs are serialized already
            # get(): a class (HeNormal, as Dense takes it) becomes an instance to serialize.
            loc_initializer = tf_keras.initializers.serialize(tf_keras.initializers.get(loc_initializer))
        return {"initial_scale": self.initial_scale, "loc_initializer": loc_initializer}


@register
class FullCovarianceNormal(MeanFieldNormal):
    """Full-covariance Gaussian posterior ``MultivariateNormalTriL(mu, L L^T)``.

    Captures correlations between the weights of one layer at the cost of
    ``size * (size + 1) / 2`` parameters, so it is meant for small layers
    (at most ``MAX_FULL_COVARIANCE_SIZE`` weights). It needs one weight draw
    per forward pass: use it with the ``"variational"`` or
    ``"reparameterization"`` estimator, not Flipout or local
    reparameterization (they rely on independent weights).

    Args:
      initial_scale: diagonal of ``L`` at initialisation (off-diagonal zero).
      loc_initializer: as in :class:`MeanFieldNormal`.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.layers import BayesianDense
    >>> from tfp_bnn.posteriors import FullCovarianceNormal
    >>> layer = BayesianDense(4, estimator="variational", kernel_posterior=FullCovarianceNormal(), kl_weight=1 / 100)
    >>> layer(tf.zeros([2, 3])).shape, len(layer.losses)  # one KL term
    (TensorShape([2, 4]), 1)
    """

    layer_class = FullCovarianceNormalLayer

    def __init__(self, initial_scale=1e-3, loc_initializer="glorot_uniform"):
        if not initial_scale > _DIAG_SHIFT:
            raise ValueError(
                f"initial_scale must be above {_DIAG_SHIFT}, the smallest diagonal of L, got {initial_scale!r}."
            )
        super().__init__(initial_scale, loc_initializer)

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        """A :class:`FullCovarianceNormalLayer`; refuses more than ``MAX_FULL_COVARIANCE_SIZE`` weights."""
        size = kernel_size + bias_size
        if size > MAX_FULL_COVARIANCE_SIZE:
            raise ValueError(
                f"A full-covariance posterior over {size} weights needs "
                f"{size * (size + 1) // 2} parameters; it is meant for layers of at most "
                f"{MAX_FULL_COVARIANCE_SIZE} weights. Use MeanFieldNormal for this layer."
            )
        return super().make_layer(kernel_size, bias_size, dtype, kernel_shape)

    def kernel_fn(self, dtype, shape, name, trainable, add_variable_fn):
        """Raises ``NotImplementedError``: TFP's Reparameterization/Flipout layers need independent weights."""
        return DistributionFactory.kernel_fn(self, dtype, shape, name, trainable, add_variable_fn)
