"""Shared plumbing of tfp_bnn's layers, heads, priors and posteriors.

Keras registration (:func:`register`), float32 under a mixed-precision policy,
the mixins of the layers and heads (:class:`NameScopedBuildFromConfig`,
:class:`RefusesKeras3Inputs`, :class:`CopiesWithOwnWeights`), and the base
classes of the prior and posterior factories (:class:`DistributionFactory`,
:class:`DistributionLayer`).

A factory is a small serializable object that speaks the two protocols of
``tfp.layers``:

* ``factory(kernel_size, bias_size, dtype)`` -> a Keras layer whose call
  returns a distribution over the flat vector ``[kernel.ravel(), bias]``
  (``make_prior_fn``/``make_posterior_fn`` of ``tfp.layers.DenseVariational``;
  tfp_bnn's own layers use this one too and also pass ``kernel_shape``);
* ``factory(dtype, shape, name, trainable, add_variable_fn)`` -> a
  distribution over a kernel of ``shape`` (``kernel_prior_fn``/
  ``kernel_posterior_fn`` of ``DenseReparameterization``, ``DenseFlipout``
  and the convolution layers).
"""

import types

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_bnn import validation

_KERNEL_FN_ARGS = ("dtype", "shape", "name", "trainable", "add_variable_fn")


def register(cls):
    """Register ``cls`` with Keras as ``tfp_bnn>Name``, and as ``Name`` for legacy ``.h5`` files.

    The ``.keras`` format stores the registered name. The legacy HDF5 format stores the
    bare class name of the model and of the priors and posteriors inside a layer's
    config, and looks those up among the custom objects: without them ``load_model``
    of an ``.h5`` file fails with "Unknown layer: 'BayesianModel'". A class the user
    registered under the same bare name keeps it (``setdefault``).
    """
    tf_keras.saving.get_custom_objects().setdefault(cls.__name__, cls)
    return tf_keras.saving.register_keras_serializable(package="tfp_bnn")(cls)


def float32_under_mixed_precision(layer_kwargs):
    """Layer kwargs with ``dtype="float32"`` if none is given and the global policy is mixed or half.

    Under ``mixed_float16``/``mixed_bfloat16`` a layer computes in half precision.
    Sampling weights, their KL and a distribution's log-density need float32 (as
    Keras advises for a model's output softmax), and TFP's distributions do not
    mix dtypes: tfp_bnn's Bayesian layers and heads stay float32, the plain layers
    between them follow the policy.
    """
    policy = tf_keras.mixed_precision.global_policy()
    # A half-precision global policy ("float16", "bfloat16") too: its layers compute in half
    # precision as a mixed policy's do (a Normal head's intervals failed in TFP's ndtr).
    if layer_kwargs.get("dtype") is None and (
        policy.name.startswith("mixed_") or policy.compute_dtype in ("float16", "bfloat16")
    ):
        return {**layer_kwargs, "dtype": "float32"}
    return layer_kwargs


def refuse_mixed_policy(layer):
    """A ``ValueError`` if ``layer`` was given a mixed policy (half-precision compute) as its own dtype.

    ``float32_under_mixed_precision`` keeps tfp_bnn's layers and heads float32 under a
    mixed *global* policy; a mixed ``dtype=`` passed to one of them failed at its first
    call (a Bayesian layer: "cannot compute Mul ... half tensor"), or, for a head,
    computed its log-densities in float16.
    """
    if layer.compute_dtype != layer.variable_dtype:
        raise ValueError(
            f"{type(layer).__name__}(dtype={layer.dtype_policy.name!r}): tfp_bnn's Bayesian layers and heads "
            "compute in the dtype of their weights (weight sampling, the KL and log-densities need float32). "
            "Leave dtype out (under a mixed global policy they stay float32, the plain Keras layers between "
            "them follow it) or pass dtype='float32'."
        )


class NameScopedBuildFromConfig:
    """Builds in the layer's name scope when Keras's loader builds it from its ``build_config``.

    ``load_model`` of a ``.keras`` file and ``Model.from_config`` build a layer that
    has a ``build_config`` before calling it, outside its name scope: the variables
    of every layer got bare names (each Bayesian layer's ``posterior_loc:0``), and
    after ``fit`` saving to ``.h5`` failed on the optimizer's slots of the same name
    ("Unable to synchronously create dataset (name already exists)"). Called
    normally, Keras builds a layer in its name scope (``bayesian_dense/posterior_loc:0``).
    """

    def build_from_config(self, config):
        with tf.name_scope(self.name):
            super().build_from_config(config)


class RefusesKeras3Inputs:
    """Says so when called on a Keras 3 tensor (``tf.keras.Input``).

    The Bayesian layers failed with "'tuple' object has no attribute 'rank'" (tf-keras's input
    check), MCDropout and EnsembleDense with "A KerasTensor cannot be used as input to a
    TensorFlow function".
    """

    def __call__(self, inputs, *args, **kwargs):
        validation.check_not_keras3(inputs, type(self).__name__)
        return super().__call__(inputs, *args, **kwargs)


def serialize(obj):
    return tf_keras.saving.serialize_keras_object(obj)


def deserialize(config):
    """A factory from its Keras config (objects pass through unchanged)."""
    if isinstance(config, dict):
        return tf_keras.saving.deserialize_keras_object(config)
    return config


def fresh_initializer(initializer):
    """A new Keras initializer with ``initializer``'s config (a name, config or instance).

    An unseeded Keras initializer *instance* returns the same values every time
    it is called, so one instance shared by several layers (a factory passed to
    every layer of a model) would start them all from the same weights.
    """
    initializer = tf_keras.initializers.get(initializer)
    if not isinstance(initializer, tf_keras.initializers.Initializer):
        return initializer  # a plain function has no config to copy (and no state to share)
    return tf_keras.initializers.get(tf_keras.initializers.serialize(initializer))


def softplus_inverse(x):
    """Inverse of softplus, in NumPy (for initial values)."""
    x = np.asarray(x, dtype=np.float64)
    return x + np.log(-np.expm1(-x))


def _add_weight_of(add_variable_fn):
    """The layer's ``add_weight`` for the ``layer.add_variable`` that TFP's layers pass as ``add_variable_fn``.

    tf-keras's ``add_variable`` is a deprecated alias of ``add_weight`` (the same arguments and
    variable) that warns at every call: two per posterior and one per trainable prior, named at tfp_bnn's line.
    """
    layer = getattr(add_variable_fn, "__self__", None)
    if getattr(add_variable_fn, "__name__", None) == "add_variable" and isinstance(layer, tf_keras.layers.Layer):
        return layer.add_weight
    return add_variable_fn


class DistributionFactory:
    """Base class of the priors and posteriors: the two ``tfp.layers`` protocols and Keras serialization.

    Subclass :class:`tfp_bnn.priors.Prior` or :class:`tfp_bnn.posteriors.Posterior`
    (both derive from this class): they document the protocol.
    """

    def __call__(self, *args, **kwargs):
        if len(args) + len(kwargs) == len(_KERNEL_FN_ARGS) or "add_variable_fn" in kwargs:
            if "add_variable_fn" in kwargs:
                kwargs["add_variable_fn"] = _add_weight_of(kwargs["add_variable_fn"])
            elif len(args) == len(_KERNEL_FN_ARGS):
                args = (*args[:-1], _add_weight_of(args[-1]))
            return self.kernel_fn(*args, **kwargs)
        return self.make_layer(*args, **kwargs)

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        """A :class:`DistributionLayer` over the flat ``[kernel.ravel(), bias]`` vector of one Bayesian layer.

        Called once, when the Bayesian layer is built. Its ``distribution()`` has batch
        shape ``[]``, event shape ``[kernel_size + bias_size]`` and dtype ``dtype``.

        Args:
          kernel_size: number of kernel weights, ``prod(kernel_shape)``.
          bias_size: number of biases (``units``/``filters``; 0 without a bias).
          dtype: the Bayesian layer's dtype (its variables' and the distribution's).
          kernel_shape: the kernel's shape, ``(input_dim, units)`` for a dense
            layer, ``(*kernel_size, input_channels, filters)`` for a convolution;
            ``None`` from ``tfp.layers.DenseVariational``, which passes sizes only.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define make_layer(kernel_size, bias_size=0, dtype=None, kernel_shape=None)."
        )

    def kernel_fn(self, dtype, shape, name, trainable, add_variable_fn):
        """A distribution over a kernel of ``shape``, for TFP's Reparameterization/Flipout layers.

        The ``kernel_prior_fn``/``kernel_posterior_fn`` protocol of
        ``tfp.layers.DenseReparameterization``, ``DenseFlipout`` and the
        convolutions: event shape ``shape``, variables made by
        ``add_variable_fn(name=..., shape=..., initializer=..., dtype=dtype,
        trainable=trainable)``. tfp_bnn's own layers never call it; the base
        raises ``NotImplementedError``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot be used as a kernel prior/posterior of "
            "the tfp.layers Reparameterization/Flipout layers."
        )

    def get_config(self):
        """The arguments of ``__init__`` as a JSON-able dict: ``type(self)(**config)`` is an equal factory.

        With the class registered (``tf_keras.saving.register_keras_serializable``),
        a Bayesian layer's config stores the factory by it, and ``.keras``/``.h5``
        files load it back; the variables of the layer it made are the model's weights.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define get_config(), the arguments of its __init__ (an empty dict if it "
            "takes none), so that a model using it can be saved."
        )

    @classmethod
    def from_config(cls, config):
        """``cls(**config)``, the inverse of :meth:`get_config`."""
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class CopiesWithOwnWeights:
    """A ``DistributionLambda`` whose deep copy makes its distributions from its own weights.

    ``DistributionLambda.__init__`` wraps the distribution function, here a bound method of
    the layer (a head's ``_make_distribution``), in a closure that becomes the layer's
    ``function``, and ``copy.deepcopy`` copies functions by reference: a copy of a head
    with weights of its own (``HomoscedasticNormalHead``'s noise scale, ``StudentTHead``'s
    ``df``) computed with the original's variables, which are no weights of the copy's
    model, so ``fit`` never trained them (the noise scale stayed at its initial value), and
    a copy of an unbuilt head failed at its first call ("object has no attribute
    'untransformed_scale'"). Keras's ``__setstate__`` restores the copied attributes; the
    closure is then rebuilt around the copy's own methods.
    """

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__["function"] = _rebound(self.__dict__["function"], self)


def _rebound(function, layer):
    """``function`` with the methods of another ``type(layer)`` in its closure bound to ``layer``."""
    cells = []
    for cell in function.__closure__ or ():
        value = cell.cell_contents
        if isinstance(value, types.MethodType) and type(value.__self__) is type(layer) and value.__self__ is not layer:
            value = types.MethodType(value.__func__, layer)
        cells.append(types.CellType(value))
    if not cells:
        return function
    return types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__, tuple(cells)
    )


_FIXED_BY_THE_CLASS = ("make_distribution_fn", "convert_to_tensor_fn")


class DistributionLayer(CopiesWithOwnWeights, tfp.layers.DistributionLambda):
    """A Keras layer that owns the variables of a distribution over a flat weight vector.

    What a prior's or a posterior's ``make_layer`` returns. Subclasses create their
    variables in ``__init__`` with ``self.add_weight`` and implement
    :meth:`distribution`: a distribution with batch shape ``[]``, event shape
    ``[size]`` and dtype ``self.dtype`` (wrap an elementwise distribution such as
    ``tfd.Laplace(loc)`` in ``tfd.Independent(..., reinterpreted_batch_ndims=1)``).
    A Bayesian layer checks this when it is built. Its variables are the model's
    weights: trained by ``fit`` if trainable, saved and loaded with the model. The
    layer is made again by ``make_layer`` when a saved model is loaded, so it needs
    no registration of its own.

    Its call ignores the inputs (they are only there for the
    ``make_posterior_fn`` protocol) and returns :meth:`distribution` as a
    ``DistributionLambda`` does: a distribution that converts to a tensor by
    sampling, which is what ``tfp.layers.DenseVariational`` expects.

    A subclass may define ``sample_weights(num_draws, seed)``, the
    ``[num_draws, size]`` draws of :meth:`distribution`: tfp_bnn's layers then
    sample through it. Define it when the distribution samples through a
    bijector (``MultivariateNormalDiag``/``TriL``, a ``TransformedDistribution``):
    TFP's bijector cache keeps every graph that sampled so alive for the life
    of the process (each ``tfp_bnn.predict`` function, each serving export), and
    so does a ``tf.custom_gradient`` (TFP's ``Softplus`` bijector) called in a graph.

    Args:
      size: length of the weight vector, ``kernel_size + bias_size``.
      **kwargs: ``tf_keras.layers.Layer`` arguments (``dtype``, ``name``, ``trainable``).

    Example: independent Laplace weights around a trainable location.

    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> from tfp_bnn.posteriors import DistributionLayer
    >>> class LaplaceLayer(DistributionLayer):
    ...     def __init__(self, size, **kwargs):
    ...         super().__init__(size, **kwargs)
    ...         self.loc = self.add_weight(name="loc", shape=[self.size], initializer="zeros")
    ...     def distribution(self):
    ...         laplace = tfp.distributions.Laplace(self.loc, tf.constant(0.1, self.dtype))
    ...         return tfp.distributions.Independent(laplace, reinterpreted_batch_ndims=1)
    >>> layer = LaplaceLayer(8)
    >>> q = layer.distribution()
    >>> q.batch_shape, q.event_shape, q.dtype, len(layer.trainable_weights)
    (TensorShape([]), TensorShape([8]), tf.float32, 1)
    """

    def __init__(self, size, **kwargs):
        fixed = [name for name in _FIXED_BY_THE_CLASS if name in kwargs]
        if fixed:  # they were dropped silently: convert_to_tensor_fn=mean still sampled
            raise TypeError(
                f"{type(self).__name__} takes no {' nor '.join(fixed)}: it returns distribution() and converts "
                "to a tensor by sampling, as tfp.layers.DenseVariational expects."
            )
        super().__init__(self._from_inputs, convert_to_tensor_fn=tfp.distributions.Distribution.sample, **kwargs)
        self.size = int(size)

    def distribution(self):
        """The distribution over the ``size`` weights: batch shape ``[]``, event shape ``[size]``, ``self.dtype``."""
        raise NotImplementedError(f"{type(self).__name__} must define distribution().")

    def _from_inputs(self, inputs):
        return self.distribution()

    def get_config(self):
        """The Keras layer's config and ``size`` (extend it with the arguments of your ``__init__``)."""
        # Skip DistributionLambda/Lambda.get_config: they would pickle the function.
        return {**tf_keras.layers.Layer.get_config(self), "size": self.size}

    @classmethod
    def from_config(cls, config):
        """``cls(**config)``, without the arguments the class fixes."""
        # Fixed by the class; configs of older versions may carry them.
        return cls(**{k: v for k, v in config.items() if k not in _FIXED_BY_THE_CLASS})


def kernel_shape_or_flat(kernel_size, kernel_shape):
    """The kernel's shape, or a flat one when the caller only gave its size."""
    if kernel_shape is None:
        return (int(kernel_size),)
    if int(np.prod(kernel_shape)) != int(kernel_size):
        raise ValueError(f"kernel_shape {kernel_shape} does not hold {kernel_size} weights.")
    return tuple(int(d) for d in kernel_shape)
