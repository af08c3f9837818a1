"""Priors over the weights of a Bayesian layer.

Each prior is a serializable factory, a subclass of :class:`Prior`: pass it as
``kernel_prior`` of :class:`tfp_bnn.layers.BayesianDense`, as ``make_prior_fn``
of ``tfp.layers.DenseVariational`` or as ``kernel_prior_fn`` of
``tfp.layers.DenseReparameterization``/``DenseFlipout``. With those TFP layers
:class:`ScaleMixturePrior` also needs a Monte Carlo
``kernel_divergence_fn=lambda q, p, _: q.log_prob(w := q.sample()) - p.log_prob(w)``
(their default is the analytic KL, which TFP has not for a Normal against a
mixture); ``BayesianDense`` and ``DenseVariational`` need nothing more.

A prior of your own subclasses :class:`Prior` (a fixed distribution: its
``distribution(size, dtype)``; with variables: ``make_layer`` returning a
:class:`DistributionLayer`); :class:`Prior` says what to define.

Gaussian priors are ``MultivariateNormalDiag`` over the flat weight vector so
that ``tfd.kl_divergence`` is exact against both posteriors of
:mod:`tfp_bnn.posteriors` (mean-field and full covariance).

Example:

>>> import tensorflow_probability as tfp
>>> import tfp_bnn
>>> from tfp_bnn.priors import NormalPrior
>>> layer = tfp.layers.DenseVariational(
...     4, make_posterior_fn=tfp_bnn.posteriors.MeanFieldNormal(),
...     make_prior_fn=NormalPrior(scale=1.0), kl_weight=1 / 100)
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_bnn._factory import (
    DistributionFactory,
    DistributionLayer,
    deserialize,
    register,
    serialize,
    softplus_inverse,
)

tfd = tfp.distributions

__all__ = ["DistributionLayer", "GaussianPrior", "NormalPrior", "Prior", "ScaleMixturePrior", "TrainableNormalPrior"]


@register
class FixedDistributionLayer(DistributionLayer):
    """Holds no variables: the prior of a :class:`NormalPrior`/:class:`ScaleMixturePrior`."""

    def __init__(self, size, prior, **kwargs):
        kwargs["trainable"] = False  # also in its config: from_config passes it back
        super().__init__(size, **kwargs)
        self.prior = deserialize(prior)

    def distribution(self):
        return self.prior.distribution(self.size, self.dtype)

    def get_config(self):
        return {**super().get_config(), "prior": serialize(self.prior)}


class Prior(DistributionFactory):
    """Base class of the priors ``p(w)`` over the weights of a Bayesian layer; subclass it for your own.

    A prior is a small factory object, not a Keras layer: one instance may be
    passed to every layer of a model. Each Bayesian layer calls
    ``make_layer(kernel_size, bias_size, dtype, kernel_shape=kernel_shape)`` once,
    when it is built, and keeps the :class:`DistributionLayer` it returns as
    ``layer.prior``; ``layer.prior.distribution()`` is then ``p``.

    What to define:

    * a fixed prior (no variables): ``distribution(size, dtype)``, the
      distribution over a flat vector of ``size`` weights. The default
      ``make_layer`` calls it with ``size = kernel_size + bias_size`` and the
      layer's ``dtype``.
    * a prior with variables (trained, as :class:`TrainableNormalPrior`'s scale,
      or set, as :class:`GaussianPrior`'s mean): ``make_layer`` returning a
      :class:`DistributionLayer` subclass that owns them.
    * ``get_config()``: the arguments of ``__init__`` (``{}`` if none), and
      registration with ``tf_keras.saving.register_keras_serializable(package=...)``,
      so that ``model.save("m.keras")`` stores the prior and ``load_model``
      (in a process that has run the registration) makes it again.
    * optionally ``kernel_fn(dtype, shape, name, trainable, add_variable_fn)``,
      for TFP's Reparameterization/Flipout layers only.

    Shapes and dtype: the distribution is over the flat vector
    ``[kernel.ravel(), bias]`` of ``kernel_size + bias_size`` weights (the kernel
    row-major in ``kernel_shape``: ``(input_dim, units)`` for a dense layer,
    ``(*kernel_size, input_channels, filters)`` for a convolution), with batch
    shape ``[]``, event shape ``[kernel_size + bias_size]`` and the layer's dtype
    (float32 unless the layer is float64). An elementwise distribution
    (``tfd.Laplace(zeros([size]), b)``, batch shape ``[size]``) must be wrapped in
    ``tfd.Independent(..., reinterpreted_batch_ndims=1)``: a Bayesian layer refuses
    another shape or dtype when it is built.

    The KL term: a Bayesian layer adds ``kl_weight * KL(q || p)`` to the model's
    losses. It is exact when TFP has ``tfd.kl_divergence`` for the pair of
    distribution classes (a ``MultivariateNormalDiag`` prior against
    :class:`~tfp_bnn.posteriors.MeanFieldNormal`, whose ``q`` is a
    ``MultivariateNormalDiag``; TFP has no KL between a ``MultivariateNormalDiag``
    and an ``Independent(Normal)``, so that prior's KL is Monte Carlo), else an unbiased
    one-draw Monte Carlo estimate ``log q(w) - log p(w)`` at ``w ~ q``, redrawn at
    every step (a Laplace or Student-t prior). ``layer.exact_kl`` says which; a KL
    registered with ``tfd.RegisterKL`` makes it exact.

    Example: a fixed Laplace prior ``p(w_j) = Laplace(0, b)``, saved with the model.

    >>> import tensorflow as tf, tensorflow_probability as tfp, tf_keras
    >>> from tfp_bnn.layers import BayesianDense
    >>> from tfp_bnn.priors import Prior
    >>> @tf_keras.saving.register_keras_serializable(package="my_priors")
    ... class LaplacePrior(Prior):
    ...     def __init__(self, scale=1.0):
    ...         self.scale = float(scale)
    ...     def distribution(self, size, dtype=tf.float32):
    ...         laplace = tfp.distributions.Laplace(tf.zeros([size], dtype), tf.constant(self.scale, dtype))
    ...         return tfp.distributions.Independent(laplace, reinterpreted_batch_ndims=1)
    ...     def get_config(self):
    ...         return {"scale": self.scale}
    >>> layer = BayesianDense(2, kernel_prior=LaplacePrior(0.5), kl_weight=1 / 100)
    >>> layer(tf.zeros([4, 3])).shape
    TensorShape([4, 2])
    >>> layer.prior.distribution().event_shape, layer.exact_kl  # the 3 x 2 kernel, 2 biases; Monte Carlo KL
    (TensorShape([8]), False)
    """

    def distribution(self, size, dtype=tf.float32):
        """The prior over a flat vector of ``size`` weights: batch shape ``[]``, event shape ``[size]``, ``dtype``.

        Define it for a fixed prior; a prior with variables defines :meth:`make_layer` instead.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define distribution(size, dtype) (a fixed prior) or make_layer(kernel_size, "
            "bias_size, dtype, kernel_shape) returning a DistributionLayer (a prior with variables)."
        )

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        """A layer without variables whose ``distribution()`` is ``self.distribution(kernel_size + bias_size, dtype)``.

        Arguments as in :meth:`DistributionFactory.make_layer`: ``kernel_size``,
        ``bias_size``, ``dtype`` and ``kernel_shape`` (unused by a fixed prior).
        Override it for a prior with variables.
        """
        return FixedDistributionLayer(kernel_size + bias_size, self, dtype=dtype)


@register
class NormalPrior(Prior):
    """Fixed isotropic prior ``w ~ Normal(0, scale**2 I)``.

    Args:
      scale: prior standard deviation of every weight (and bias).

    Example:

    >>> from tfp_bnn.priors import NormalPrior
    >>> prior = NormalPrior(scale=0.5).distribution(6)  # over 6 weights
    >>> prior.event_shape, float(prior.stddev()[0])
    (TensorShape([6]), 0.5)
    """

    def __init__(self, scale=1.0):
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}.")
        self.scale = float(scale)

    def distribution(self, size, dtype=tf.float32):
        """``MultivariateNormalDiag`` over a flat vector of ``size`` weights."""
        return tfd.MultivariateNormalDiag(
            loc=tf.zeros([size], dtype), scale_diag=tf.fill([size], tf.constant(self.scale, dtype))
        )

    def kernel_fn(self, dtype, shape, name, trainable, add_variable_fn):
        """``Normal(0, scale)`` for every weight of a kernel of ``shape`` (TFP's Reparameterization/Flipout layers)."""
        return tfd.Independent(
            tfd.Normal(loc=tf.zeros(shape, dtype), scale=tf.constant(self.scale, dtype)),
            reinterpreted_batch_ndims=len(shape),
        )

    def get_config(self):
        """``{"scale": ...}``."""
        return {"scale": self.scale}


@register
class ScaleMixturePrior(Prior):
    """Scale mixture of two zero-mean Normals (Blundell et al. 2015, eq. 7).

    .. math:: p(w) = \\prod_j \\pi N(w_j | 0, \\sigma_1^2) + (1 - \\pi) N(w_j | 0, \\sigma_2^2)

    A wide component (``scale1``) lets a few weights be large, a narrow one
    (``scale2``) pulls the rest to zero. There is no closed-form KL against a
    Gaussian posterior, so layers use the Monte Carlo estimate
    ``log q(w) - log p(w)`` at a posterior draw.

    Args:
      mixture_weight: ``pi``, the weight of the wide component.
      scale1: standard deviation of the wide component.
      scale2: standard deviation of the narrow component (``scale2 < scale1``).

    Example: the default mixes scales 1 and e^-6 half and half.

    >>> from tfp_bnn.priors import ScaleMixturePrior
    >>> prior = ScaleMixturePrior().distribution(6)
    >>> prior.event_shape, round(float(prior.stddev()[0]), 4)  # sqrt(0.5 * 1 + 0.5 * e^-12)
    (TensorShape([6]), 0.7071)
    """

    def __init__(self, mixture_weight=0.5, scale1=1.0, scale2=float(np.exp(-6.0))):
        if not 0.0 < mixture_weight < 1.0:
            raise ValueError(f"mixture_weight must lie in (0, 1), got {mixture_weight!r}.")
        if not 0.0 < scale2 < scale1:
            raise ValueError(f"need 0 < scale2 < scale1, got scale1={scale1!r}, scale2={scale2!r}.")
        self.mixture_weight = float(mixture_weight)
        self.scale1 = float(scale1)
        self.scale2 = float(scale2)

    def _mixture(self, shape, dtype):
        probs = tf.constant([self.mixture_weight, 1.0 - self.mixture_weight], dtype)
        scales = tf.constant([self.scale1, self.scale2], dtype)
        batch = tf.ones(list(shape) + [1], dtype)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(probs=batch * probs),
            components_distribution=tfd.Normal(loc=tf.zeros_like(batch * scales), scale=batch * scales),
        )

    def distribution(self, size, dtype=tf.float32):
        """The mixture for each of ``size`` weights, as one event of ``size`` (``tfd.Independent``)."""
        return tfd.Independent(self._mixture([size], dtype), reinterpreted_batch_ndims=1)

    def kernel_fn(self, dtype, shape, name, trainable, add_variable_fn):
        """The mixture for every weight of a kernel of ``shape`` (TFP's Reparameterization/Flipout layers)."""
        return tfd.Independent(self._mixture(shape, dtype), reinterpreted_batch_ndims=len(shape))

    def get_config(self):
        """``{"mixture_weight": ..., "scale1": ..., "scale2": ...}``."""
        return {"mixture_weight": self.mixture_weight, "scale1": self.scale1, "scale2": self.scale2}


@register
class TrainablePriorLayer(DistributionLayer):
    """One trainable prior scale shared by all weights of a layer."""

    def __init__(self, size, initial_scale=1.0, **kwargs):
        super().__init__(size, **kwargs)
        self.initial_scale = float(initial_scale)
        self.untransformed_scale = self.add_weight(
            name="untransformed_prior_scale",
            shape=[],
            initializer=tf.constant_initializer(softplus_inverse(self.initial_scale)),
        )

    def distribution(self):
        scale = tf.nn.softplus(self.untransformed_scale) + 1e-6
        return tfd.MultivariateNormalDiag(
            loc=tf.zeros([self.size], self.dtype), scale_diag=tf.fill([self.size], scale)
        )

    def get_config(self):
        return {**super().get_config(), "initial_scale": self.initial_scale}


@register
class TrainableNormalPrior(Prior):
    """Empirical-Bayes prior ``Normal(0, s**2 I)`` with one trainable ``s`` per layer.

    The scale is learnt with the rest of the ELBO (type-II maximum
    likelihood): the data choose how large the weights of each layer may be.
    One scale per layer, not per weight: a per-weight prior could simply copy
    the posterior and the KL term would vanish.

    Args:
      initial_scale: starting value of ``s``.

    Example: one trainable scale for all the layer's weights.

    >>> from tfp_bnn.priors import TrainableNormalPrior
    >>> layer = TrainableNormalPrior(initial_scale=1.0).make_layer(6)
    >>> round(float(layer.distribution().stddev()[0]), 4), len(layer.trainable_weights)
    (1.0, 1)
    """

    def __init__(self, initial_scale=1.0):
        if not initial_scale > 0:
            raise ValueError(f"initial_scale must be positive, got {initial_scale!r}.")
        self.initial_scale = float(initial_scale)

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        """A layer holding the one trainable scale of the ``kernel_size + bias_size`` weights."""
        return TrainablePriorLayer(kernel_size + bias_size, self.initial_scale, dtype=dtype)

    def kernel_fn(self, dtype, shape, name, trainable, add_variable_fn):
        """A ``Normal(0, s)`` kernel of ``shape`` with ``s`` made by ``add_variable_fn`` (TFP's layers)."""
        untransformed = add_variable_fn(
            name=name + "_untransformed_scale",
            shape=[],
            initializer=tf.constant_initializer(softplus_inverse(self.initial_scale)),
            dtype=dtype,
            trainable=True,
        )
        scale = tfp.util.DeferredTensor(untransformed, lambda u: tf.nn.softplus(u) + 1e-6)
        return tfd.Independent(
            tfd.Normal(loc=tf.zeros(shape, dtype), scale=scale), reinterpreted_batch_ndims=len(shape)
        )

    def get_config(self):
        """``{"initial_scale": ...}``."""
        return {"initial_scale": self.initial_scale}


_COVARIANCES = ("diagonal", "full")


@register
class GaussianPriorLayer(DistributionLayer):
    """A fixed Gaussian with a mean and a scale per weight, held as non-trainable weights.

    Non-trainable weights, not its config: they are saved with the model's other
    weights (``.keras``, SavedModel, checkpoints), and the config stays small.
    Until :meth:`assign` sets them the distribution is ``Normal(0, I)``.
    """

    def __init__(self, size, covariance="diagonal", **kwargs):
        kwargs["trainable"] = False  # also in its config: from_config passes it back
        super().__init__(size, **kwargs)
        self.covariance = _checked_covariance(covariance)
        self.loc = self.add_weight(name="prior_loc", shape=[self.size], initializer="zeros", trainable=False)
        if self.covariance == "full":
            self.scale_tril = self.add_weight(
                name="prior_scale_tril", shape=[self.size, self.size], initializer="identity", trainable=False
            )
        else:
            self.scale_diag = self.add_weight(
                name="prior_scale", shape=[self.size], initializer="ones", trainable=False
            )

    def distribution(self):
        if self.covariance == "full":
            return tfd.MultivariateNormalTriL(loc=self.loc, scale_tril=self.scale_tril)
        return tfd.MultivariateNormalDiag(loc=self.loc, scale_diag=self.scale_diag)

    def assign(self, distribution):
        """Set this prior to ``distribution``, a Gaussian over the same ``size`` weights.

        ``distribution`` is a ``MultivariateNormalDiag`` (``covariance="diagonal"``)
        or ``MultivariateNormalTriL`` (``"full"``), such as a posterior layer's
        ``distribution()``: its ``loc`` and ``scale`` are copied, not referenced.
        """
        if distribution.event_shape != [self.size]:
            raise ValueError(
                f"The prior is over {self.size} weights; got a distribution of event shape "
                f"{distribution.event_shape}."
            )
        scale = distribution.scale
        if self.covariance == "full":
            self.scale_tril.assign(tf.cast(scale.to_dense(), self.dtype))
        elif isinstance(scale, tf.linalg.LinearOperatorDiag):
            self.scale_diag.assign(tf.cast(scale.diag_part(), self.dtype))
        else:
            raise ValueError(
                "A diagonal prior takes a MultivariateNormalDiag (a mean-field posterior); got "
                f"{type(distribution).__name__} with a {type(scale).__name__} scale. Use "
                "GaussianPrior(covariance='full') for a full-covariance posterior."
            )
        self.loc.assign(tf.cast(distribution.mean(), self.dtype))

    def get_config(self):
        return {**super().get_config(), "covariance": self.covariance}


def _checked_covariance(covariance):
    if covariance not in _COVARIANCES:
        raise ValueError(f"covariance must be one of {_COVARIANCES}, got {covariance!r}.")
    return covariance


@register
class GaussianPrior(Prior):
    """Fixed Gaussian prior with its own mean and scale for every weight: an earlier posterior.

    .. math:: p(w) = N(w | m, S)

    with ``S`` diagonal (``covariance="diagonal"``, for a
    :class:`~tfp_bnn.posteriors.MeanFieldNormal` posterior) or full
    (``"full"``, for a :class:`~tfp_bnn.posteriors.FullCovarianceNormal` one).
    ``m`` and ``S`` are non-trainable weights of the layer's ``prior``, saved
    with the model; they start at ``m = 0``, ``S = I`` and are set by
    :meth:`GaussianPriorLayer.assign`. :func:`tfp_bnn.posterior_as_prior` does
    it for a whole model: yesterday's posterior becomes today's prior, and
    fitting the new data gives the posterior of all the data seen
    (``p(w | D1, D2) ∝ p(D2 | w) p(w | D1)``), exactly where the posterior family
    holds the true posterior (``"full"`` for a linear-Gaussian model).

    Args:
      covariance: ``"diagonal"`` or ``"full"``.

    Example: a prior over 3 weights, set from a posterior.

    >>> import tensorflow_probability as tfp
    >>> from tfp_bnn.priors import GaussianPrior
    >>> layer = GaussianPrior().make_layer(3)
    >>> layer.assign(tfp.distributions.MultivariateNormalDiag([1.0, 2.0, 3.0], [0.1, 0.2, 0.3]))
    >>> [round(float(s), 2) for s in layer.distribution().stddev()], len(layer.trainable_weights)
    ([0.1, 0.2, 0.3], 0)
    """

    def __init__(self, covariance="diagonal"):
        self.covariance = _checked_covariance(covariance)

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        """A :class:`GaussianPriorLayer` over the ``kernel_size + bias_size`` weights (``m = 0``, ``S = I``)."""
        return GaussianPriorLayer(kernel_size + bias_size, self.covariance, dtype=dtype)

    def get_config(self):
        """``{"covariance": ...}``."""
        return {"covariance": self.covariance}
