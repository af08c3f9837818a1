"""MC dropout and deep ensembles: the two usual alternatives to a variational BNN.

Both are layers that follow the sampling modes of :mod:`tfp_bnn.sampling`, so
:func:`tfp_bnn.predict`, :func:`tfp_bnn.log_likelihoods` and the
aleatoric/epistemic (or entropy) split work on them unchanged, ``T`` draws in
one graph. Build the models with ``make_regressor``/``make_classifier``
(``inference="mc_dropout"`` or ``inference="ensemble"``).

* :class:`MCDropout` (Gal & Ghahramani 2016): dropout that stays on at
  prediction. Every row of a batch gets its own mask (as in Gal's code and
  Keras's ``Dropout``), so inside ``weight_draws(T)`` each input meets ``T``
  independent dropout networks: its mean, variance split and intervals are
  Monte Carlo estimates over ``T`` networks. But draw ``t`` is a different
  network at every row, so ``draw_means[t]`` across inputs is not one
  function (``plots.sampled_curves`` shows noise for MC dropout, and the
  served ``samples`` of two inputs are independent).
* :class:`EnsembleDense` (Lakshminarayanan et al. 2017): a dense layer with
  ``M`` independently initialised kernels ``[M, in, out]``, one per member; a
  network of such layers holds ``M`` networks that share nothing but their
  architecture. A :class:`tfp_bnn.BayesianModel` made of them trains every
  member on every batch (the batch goes through stacked ``M`` times, one copy
  per member; ``fit`` logs the mean of the members' losses and minimises their
  sum, so each member gets the gradient of its own loss, penalty included, as
  in a network of its own). A head with weights of its own
  (``HomoscedasticNormalHead``'s noise scale, ``StudentTHead``'s ``df``) is
  one for all members, trained on the sum of their losses: it couples them
  (``BayesianModel`` warns); ``NormalHead``, the paper's, does not. For
  predictions draw ``t`` is member ``t mod M``, so ``num_samples`` must be a
  multiple of ``M``: each member then appears ``T / M`` times and the
  mixture over draws is exactly the uniform mixture of the ``M`` members
  (``num_samples=M`` gives the same numbers as any other multiple, up to
  float32 rounding).

Example:

>>> import tf_keras, tfp_bnn
>>> from tfp_bnn import data
>>> x, y = data.gap_regression(500, seed=0)
>>> model = tfp_bnn.make_regressor((1,), inference="ensemble", num_members=5)
>>> model.compile(optimizer=tf_keras.optimizers.Adam(3e-3))
>>> history = model.fit(x, y, epochs=20, verbose=0)
>>> tfp_bnn.predict(model, [[0.0], [6.0]], num_samples=5).epistemic_stddev.shape
(2, 1)
"""

import numbers

import tensorflow as tf
import tf_keras

from tfp_bnn import sampling
from tfp_bnn._factory import NameScopedBuildFromConfig, RefusesKeras3Inputs, fresh_initializer, register
from tfp_bnn.validation import check_positive_int

__all__ = ["MCDropout", "EnsembleDense"]


@register
class MCDropout(RefusesKeras3Inputs, tf_keras.layers.Dropout):
    """Dropout that is on whether or not Keras is training (Monte Carlo dropout).

    ``outputs = inputs * mask / (1 - rate)`` with ``mask ~ Bernoulli(1 - rate)``
    drawn per element. Within :func:`tfp_bnn.sampling.weight_draws` the
    stacked copies of the batch get independent masks (and with a seed, the
    masks are a deterministic function of it), a mask per row: draw ``t`` is
    another network at every input (see the module docstring); within
    :func:`tfp_bnn.sampling.posterior_mean` it is the identity, the usual
    weight-scaling approximation of the dropout network's mean.

    Args:
      rate: probability of dropping a unit, ``0 <= rate < 1``.
      noise_shape, seed: as in ``tf_keras.layers.Dropout``. A ``noise_shape``
        whose batch axis is 1 (one mask for all rows) gives, within
        ``weight_draws``, one mask per draw: draw ``t`` is then one dropout
        network for every input.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.baselines import MCDropout
    >>> layer = MCDropout(0.5)
    >>> float(tf.reduce_mean(tf.cast(layer(tf.ones([1000, 10])) == 0, tf.float32)))  # doctest: +SKIP
    0.5
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(checked_rate(rate), noise_shape=noise_shape, seed=seed, **kwargs)

    def call(self, inputs, training=None):
        mode = sampling.current_mode()
        if mode.kind == "mean" or self.rate == 0:
            return tf.identity(inputs)
        if mode.kind == "draws" and self.noise_shape is not None and self.noise_shape[0] == 1:
            # A mask shared along the batch axis is shared by a draw's rows, not by the T draws:
            # over the stacked [T * B] rows one mask would make all T networks the same one.
            return self._dropout_per_draw(inputs, mode)
        noise_shape = self._get_noise_shape(inputs)
        seed = mode.next_seed(self) if mode.kind == "draws" else None
        if seed is not None:
            return tf.nn.experimental.stateless_dropout(inputs, self.rate, seed=seed, noise_shape=noise_shape)
        return self._random_generator.dropout(inputs, self.rate, noise_shape=noise_shape)

    def _dropout_per_draw(self, inputs, mode):
        """``inputs`` ``[T * B, ...]`` with one mask per draw ``t`` (``noise_shape`` with a batch axis of 1)."""
        by_draw = tf.reshape(inputs, tf.concat([[mode.num_draws, -1], tf.shape(inputs)[1:]], axis=0))
        noise_shape = tf.concat([[mode.num_draws], self._get_noise_shape(inputs)], axis=0)
        seed = mode.next_seed(self)
        if seed is not None:
            outputs = tf.nn.experimental.stateless_dropout(by_draw, self.rate, seed=seed, noise_shape=noise_shape)
        else:
            outputs = self._random_generator.dropout(by_draw, self.rate, noise_shape=noise_shape)
        return tf.reshape(outputs, tf.shape(inputs))

    def get_config(self):
        # Keras's Dropout takes it but leaves it out of its config: its loss term would
        # vanish after clone_model, to_json or a save and load.
        return {
            **super().get_config(),
            "activity_regularizer": tf_keras.regularizers.serialize(self.activity_regularizer),
        }


def checked_rate(rate):
    """``rate`` if it is a dropout rate in ``[0, 1)``; Keras's Dropout fails only when called."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise ValueError(f"rate must be a number in [0, 1) (the probability of dropping a unit), got {rate!r}.")
    return float(rate)  # a NumPy float32 made Keras's L2 refuse the weight decay derived from it


def _member_initializer(initializer, member):
    if not isinstance(tf_keras.initializers.get(initializer), tf_keras.initializers.Initializer):
        return fresh_initializer(initializer)  # a plain function: called as it is
    config = tf_keras.initializers.serialize(tf_keras.initializers.get(initializer))
    seed = config.get("config", {}).get("seed") if isinstance(config, dict) else None
    if seed is None:
        return fresh_initializer(initializer)
    return tf_keras.initializers.get({**config, "config": {**config["config"], "seed": int(seed) + member}})


@register
class EnsembleDense(RefusesKeras3Inputs, NameScopedBuildFromConfig, tf_keras.layers.Layer):
    """``num_members`` independent dense layers side by side: one per ensemble member.

    Member ``m`` computes ``activation(inputs @ kernel[m] + bias[m])``; each
    ``kernel[m]`` is drawn by its own instance of ``kernel_initializer``, so the
    members start from independent initialisations. Which member sees which
    rows depends on the :mod:`tfp_bnn.sampling` mode:

    * ``draws`` (``T`` stacked copies, draw-major): copy ``t`` goes through
      member ``t mod M``; ``T`` must be a multiple of ``M``.
    * ``single`` (a plain call): row ``n`` of the batch goes through member
      ``n mod M`` in every layer, so each row sees one whole member.
      (``BayesianModel``'s ``fit``, ``evaluate`` and ``predict`` run every
      member on every row; ``predict`` returns the members' average.)
    * ``mean``: refused; an ensemble has no mean network (use
      ``tfp_bnn.predict(...).mean``).

    Args:
      units: output size of every member.
      num_members: ``M >= 1``.
      activation, use_bias, kernel_initializer, bias_initializer,
      kernel_regularizer: as in ``tf_keras.layers.Dense`` (the regularizer
      sums over members).

    Input shape ``(batch, input_dim)``; output ``(batch, units)``.

    Example:

    >>> import tensorflow as tf
    >>> from tfp_bnn.baselines import EnsembleDense
    >>> layer = EnsembleDense(8, num_members=5, activation="relu")
    >>> layer(tf.zeros([4, 3])).shape
    TensorShape([4, 8])
    >>> layer.kernel.shape
    TensorShape([5, 3, 8])
    """

    def __init__(
        self,
        units,
        num_members=5,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        # Keras would divide the activity penalty by all the rows of the stacked members
        # (M times a member's batch), so a member would get 1/M of its own: `call` adds it.
        activity_regularizer = tf_keras.regularizers.get(kwargs.pop("activity_regularizer", None))
        super().__init__(**kwargs)
        self._member_activity_regularizer = activity_regularizer
        # Not int(): 2.5 members built 2, and True built a one-member "ensemble".
        self.units = check_positive_int(units, "units")
        self.num_members = check_positive_int(num_members, "num_members")
        self.activation = tf_keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = tf_keras.initializers.get(kernel_initializer)
        self.bias_initializer = tf_keras.initializers.get(bias_initializer)
        self.kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)
        self.input_spec = tf_keras.layers.InputSpec(ndim=2)

    def build(self, input_shape):
        input_dim = tf.TensorShape(input_shape)[-1]
        if input_dim is None:
            raise ValueError("The last dimension of the inputs to EnsembleDense must be known.")
        self.input_spec = tf_keras.layers.InputSpec(ndim=2, axes={-1: int(input_dim)})
        self.kernel = self.add_weight(
            name="kernel",
            shape=[self.num_members, int(input_dim), self.units],
            initializer=self._per_member(self.kernel_initializer),
            regularizer=self.kernel_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=[self.num_members, self.units], initializer=self._per_member(self.bias_initializer)
            )
        super().build(input_shape)

    def _per_member(self, initializer):
        """Initialise each member's slice with a fresh copy of ``initializer``.

        Fan-in/fan-out come from one member's shape, and fresh copies matter:
        an unseeded Keras initializer returns the same values when called twice.
        A seeded one gives member ``m`` the seed ``seed + m``: one seed for all
        would start every member from the same weights, one network M times.
        """
        def initialize(shape, dtype=None):
            return tf.stack([_member_initializer(initializer, m)(shape[1:], dtype=dtype) for m in range(shape[0])])

        return initialize

    @property
    def activity_regularizer(self):
        return self._member_activity_regularizer

    @activity_regularizer.setter
    def activity_regularizer(self, regularizer):
        self._member_activity_regularizer = regularizer

    def call(self, inputs):
        mode = sampling.current_mode()
        x = tf.cast(inputs, self.compute_dtype)
        if mode.kind == "mean":
            raise ValueError(
                "An ensemble has no posterior-mean network; use tfp_bnn.predict(...).mean for the "
                "ensemble's mean prediction."
            )
        if mode.kind == "draws":
            y = self._members_by_draw(x, mode.num_draws)
        else:
            y = self._member_per_row(x)
        y = self.activation(y) if self.activation is not None else y
        if self.activity_regularizer is not None:
            self.add_loss(self._activity_penalty(y, mode))
        return y

    def _activity_penalty(self, outputs, mode):
        """Sum over members of each member's activity penalty per row (Keras's per-batch mean).

        With ``T`` stacked draws of ``B`` rows, member ``m`` has ``T / M`` copies of
        ``B`` rows: the sum over members of their mean over copies is the penalty
        of all ``T * B`` rows times ``M / (T * B)``. A plain call sends each row
        through one member, as a single network: the penalty over its rows.
        """
        penalty = tf.cast(self.activity_regularizer(outputs), outputs.dtype)
        rows = tf.cast(tf.shape(outputs)[0], outputs.dtype)
        members = self.num_members if mode.kind == "draws" else 1
        return penalty * members / rows

    def _apply(self, x):
        """``x`` ``[M, rows, in]`` -> every member on its own rows, ``[M, rows, units]``."""
        y = tf.matmul(x, self.kernel)
        return y + self.bias[:, tf.newaxis, :] if self.use_bias else y

    def _members_by_draw(self, x, num_draws):
        members = self.num_members
        if num_draws % members:
            raise ValueError(
                f"An ensemble of {members} members needs num_samples to be a multiple of {members} "
                f"(draw t is member t mod {members}), got {num_draws}."
            )
        # [T * B, in] -> [T / M, M, B, in] -> member-major [M, T / M * B, in]: one matmul per member.
        repeats = num_draws // members
        features = self.kernel.shape[1]  # x's last axis is unknown for a generator's batches
        per_member = tf.reshape(x, [repeats, members, -1, features])
        y = self._apply(tf.reshape(tf.transpose(per_member, [1, 0, 2, 3]), [members, -1, features]))
        y = tf.transpose(tf.reshape(y, [members, repeats, -1, self.units]), [1, 0, 2, 3])
        return tf.reshape(y, [-1, self.units])

    def _member_per_row(self, x):
        every_member = self._apply(tf.tile(x[tf.newaxis], [self.num_members, 1, 1]))  # [M, B, units]
        member = tf.range(tf.shape(x)[0]) % self.num_members
        return tf.gather(tf.transpose(every_member, [1, 0, 2]), member, batch_dims=1)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.units])

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_members": self.num_members,
            "activation": tf_keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": tf_keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": tf_keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": tf_keras.regularizers.serialize(self.kernel_regularizer),
            "activity_regularizer": tf_keras.regularizers.serialize(self.activity_regularizer),
        }
