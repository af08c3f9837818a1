"""How Bayesian layers draw their weights on the call being traced.

A Bayesian layer has three ways to produce its output:

* ``single`` (the default, what ``model.fit`` sees): one weight draw per call,
  shared by the whole batch (Flipout and local reparameterization add their
  per-example decorrelation on top).
* ``draws``: the batch arrives stacked ``num_draws`` times, draw-major, as
  ``[num_draws * batch, ...]``; block ``t`` of ``batch`` rows uses its own,
  independent weight draw. This is how :func:`tfp_bnn.predict` gets ``T``
  independent networks out of one graph: all ``T`` weight samples are drawn
  as one ``[T, ...]`` tensor and applied with one batched matmul/convolution
  (for large batches ``predict`` instead records the draws once and applies
  them one at a time in a graph loop: see :mod:`tfp_bnn.prediction`).
* ``mean``: the posterior mean, no noise (a deterministic network).

The mode is read when a layer's ``call`` is traced, like a name scope, so
enter the context around the code that builds the graph (``tf.function``
tracing, ``model.fit``/``model.evaluate`` on a model that has not traced its
step yet; :class:`tfp_bnn.BayesianModel` retraces its step functions when the
mode changes).

Example: five networks for three inputs in one call.

>>> import numpy as np, tfp_bnn
>>> from tfp_bnn import sampling
>>> layer = tfp_bnn.BayesianDense(2, kl_weight=1 / 100)
>>> x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
>>> with sampling.weight_draws(5, seed=(7, 8)):  # a stateless seed pair
...     stacked = layer(np.tile(x, [5, 1]))  # rows 3t .. 3t + 2 go through draw t
>>> stacked.shape
TensorShape([15, 2])
>>> by_draw = stacked.numpy().reshape(5, 3, 2)
>>> bool(by_draw.std(axis=0).min() > 0)  # five different networks
True
>>> with sampling.posterior_mean():
...     bool(np.array_equal(layer(x), layer(x)))  # no noise
True
"""

import contextlib
import dataclasses
import threading

import tensorflow as tf
# The graphs of tf.while_loop/tf.cond bodies (a recurrent layer's loop), pinned with TensorFlow.
from tensorflow.python.ops import control_flow_v2_func_graphs

from tfp_bnn import validation

__all__ = ["weight_draws", "posterior_mean", "current_mode", "stateless_seed", "stack_draws"]


@dataclasses.dataclass
class Mode:
    kind: str = "single"
    num_draws: int = 1
    seed: tf.Tensor | None = None
    # "draws" only: weight draws to use instead of sampling (one [T, size] tensor per
    # Bayesian layer, in call order), and a list that collects the draws the layers make.
    weights: list | None = None
    record: list | None = None
    # The context holds one forward pass (tfp_bnn's own prediction graphs): eagerly too, as
    # under tf.config.run_functions_eagerly(True), a layer called again is the same pass.
    one_pass: bool = False
    # One-pass contexts only: the graph the forward pass starts in (None eagerly).
    pass_graph: object = None
    # Per function being traced (its outermost graph; None eagerly): the number each
    # layer got, in order of first call, for its seed and its entry of ``weights``.
    _numbers: dict = dataclasses.field(default_factory=dict)
    _drawn_by_layer: dict = dataclasses.field(default_factory=dict)

    @property
    def key(self):
        """Hashable summary used to decide whether a traced function is stale.

        A traced graph holds the seed as a constant, so another seed is another
        graph: the seed's value is part of the key, not only whether there is one.
        Likewise the ``weights`` it replays, by identity.
        """
        return (self.kind, self.num_draws, _seed_key(self.seed), _weights_key(self.weights))

    def next_seed(self, layer=None):
        """A stateless seed for the next layer traced, or None (stateful draws).

        Layers are traced in a fixed order, so layer ``i`` always gets
        ``fold_in(seed, i)``: the same seed gives the same draws. Numbered per
        function traced, and a ``layer`` keeps its number there: every function
        traced in one context (Keras's predict and test steps, a retrace) and a
        step called again inside one (Keras's ``steps_per_execution`` loop) draws
        the same networks, each from the variables of its own step. Eagerly,
        where each call is a new pass, every call takes the next number.
        """
        if self.seed is None:
            return None
        return tf.random.experimental.stateless_fold_in(self.seed, self._number("seed", layer))

    def _number(self, kind, layer):
        """``layer``'s number (1, 2, ... in order of first call) in the function being traced."""
        graph = self._pass(_outermost_function_graph())
        entry = self._numbers.get((kind, id(graph)))
        if entry is None or entry[0] is not graph:  # the graph is kept, so its id cannot be reused meanwhile
            entry = self._numbers[(kind, id(graph))] = (graph, {}, [0])
        _, by_layer, count = entry
        if graph is not None and layer is not None and id(layer) in by_layer:
            return by_layer[id(layer)][1]
        count[0] += 1
        if graph is not None and layer is not None:
            by_layer[id(layer)] = (layer, count[0])
        return count[0]

    def draws_elsewhere(self):
        """Whether a layer's draws are made outside the graph being built: in the graph of the forward pass."""
        return self._home() is not _default_function_graph()

    def _home(self):
        """The graph in which the next layer's draws are made.

        The graph being built, except for a layer in a loop or branch inside the one
        forward pass of tfp_bnn's own prediction functions (a recurrent cell, in
        tf_keras.layers.RNN's while loop): there, in the graph the pass started in, so
        that draw ``t`` is one network for every time step (as with ``unroll=True``) and
        the draws can be recorded (a loop's tensors cannot be used outside it). Never
        out of a loop around the forward pass (Keras's ``steps_per_execution`` loop of
        training steps, each with its own variables and gradients): only one-pass
        contexts know where their pass started.
        """
        graph = current = _default_function_graph()
        if self.kind != "draws" or self.weights is not None or self.pass_graph is None:
            return current
        while isinstance(graph, control_flow_v2_func_graphs.ControlFlowFuncGraph):
            graph = graph.outer_graph
            if graph is self.pass_graph:
                return graph
        return current

    def layer_weights(self, sample, layer=None):
        """The ``[T, size]`` weight draws of the next Bayesian layer traced.

        ``sample()`` draws them, unless ``weights`` were given: then the
        layer's entry is used as it is (the same networks again without
        paying for the random numbers again). Appended to ``record`` if set.
        A ``layer`` called again in the graph being built (shared weights: a
        Siamese network, tied layers) gets its first draws back, so that draw
        ``t`` stays one network; it is recorded once. Eager calls always draw, except in a
        one-pass context (tfp_bnn's own prediction functions, run eagerly by
        ``tf.config.run_functions_eagerly(True)``).
        """
        # Only while a graph is built: there a second call is the same forward pass. Eagerly,
        # each call is a new pass (a new step under GradientTape) and must draw afresh.
        home = self._home()
        graph = self._pass(home)
        key = None if layer is None or graph is None else (id(layer), id(graph))
        if key in self._drawn_by_layer and self._drawn_by_layer[key][0] is graph:
            return self._drawn_by_layer[key][1]
        if self.weights is not None:
            params = self.weights[self._number("weights", layer) - 1]
        elif home is not _default_function_graph():
            with home.as_default():  # the recurrent cell's loop captures them
                params = sample()
        else:
            params = sample()
        if self.record is not None:
            self.record.append(params)
        if key is not None:  # the graph itself is kept, so its id cannot be reused meanwhile
            self._drawn_by_layer[key] = (graph, params)
        return params

    def _pass(self, graph):
        """The graph being built, or eagerly in a one-pass context a stand-in for it (the context itself).

        With ``tf.config.run_functions_eagerly(True)`` tfp_bnn's prediction functions run
        eagerly: a shared Bayesian layer's second call drew new weights there, so draw ``t``
        was not one network and ``tfp_bnn.predict`` gave other numbers than in graph mode.
        """
        if graph is None and self.one_pass:
            return _EAGER_PASS
        return graph


# Stands in for the graph of an eager one-pass context (kept alive as a module constant).
_EAGER_PASS = object()


def _default_function_graph():
    """The graph being built (a function, or a loop or branch inside one); None eagerly."""
    return tf.compat.v1.get_default_graph() if tf.inside_function() else None


def _outermost_function_graph():
    """The graph of the function being traced (not of a loop or branch inside it); None eagerly."""
    graph = _default_function_graph()
    while graph is not None and getattr(getattr(graph, "outer_graph", None), "building_function", False):
        graph = graph.outer_graph
    return graph


def _seed_key(seed):
    """A hashable stand-in for a stateless seed: its value (eager), or the tensor itself (symbolic).

    A ``tf.Variable`` is read when the traced graph runs, not when it is traced:
    the variable itself is the key, so assigning it another seed reuses the graph.
    """
    if seed is None:
        return None
    if isinstance(seed, tf.Variable):
        return ("variable", seed.ref())  # holds the variable: its id cannot be reused meanwhile
    try:
        return tuple(int(v) for v in tf.reshape(seed, [-1]).numpy())
    except (AttributeError, TypeError, NotImplementedError):  # a graph tensor: a new tensor, a new graph
        return ("tensor", id(seed))


def _weights_key(weights):
    """A hashable stand-in for the weight draws to use: the tensors themselves (a graph captures them)."""
    if weights is None:
        return None
    return tuple(w.ref() if hasattr(w, "ref") else _ByIdentity(w) for w in weights)


class _ByIdentity:
    """Hashable by identity, holding its object (a NumPy array): its id cannot be reused meanwhile."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _ByIdentity) and other.value is self.value

    def __hash__(self):
        return id(self.value)


_DEFAULT = Mode()
_STACKS = {}  # thread id -> that thread's active modes, innermost last


def current_mode() -> Mode:
    """The innermost active mode (``single`` when no context is active).

    Example:

    >>> from tfp_bnn.sampling import current_mode, posterior_mean, weight_draws
    >>> current_mode().kind
    'single'
    >>> with weight_draws(5):
    ...     outer = current_mode().kind, current_mode().num_draws
    ...     with posterior_mean():
    ...         inner = current_mode().kind
    >>> outer, inner
    (('draws', 5), 'mean')
    """
    stack = _STACKS.get(threading.get_ident()) or _strategy_caller_stack()
    return stack[-1] if stack else _DEFAULT


def _strategy_caller_stack():
    """In a replica thread of a distribution strategy, the modes of the thread that called it.

    ``MirroredStrategy`` traces each replica's step in a thread of its own:
    ``with posterior_mean(): model.fit(...)`` entered the mode in the calling
    thread, and the replicas must see it too (as TensorFlow carries the
    graph and name scope over into them).
    """
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    return _STACKS.get(threading.main_thread().ident)


@contextlib.contextmanager
def _entered(mode):
    thread = threading.get_ident()
    stack = _STACKS.setdefault(thread, [])
    stack.append(mode)
    try:
        yield mode
    finally:
        stack.pop()
        if not stack:  # no entry left behind per thread that ever predicted
            del _STACKS[thread]


def weight_draws(num_draws, seed=None, *, weights=None, record=None):
    """Context in which Bayesian layers use ``num_draws`` independent weight draws.

    Args:
      num_draws: Python int ``T >= 1``; inputs must be ``[T * batch, ...]``,
        draw-major (``tf.tile(x, [T, 1])``).
      seed: optional stateless seed, an int32 tensor of shape ``[2]``; with it
        the draws are a deterministic function of the seed.
      weights: optional list of each Bayesian layer's ``[T, size]`` weight
        draws, in call order, as collected by ``record``: the layers use them
        instead of sampling. :func:`tfp_bnn.predict` draws the weights once
        and reuses them for every chunk of inputs, since drawing ``T`` copies
        of a large layer's weights costs as much as a chunk's matmuls.
      record: optional list; each Bayesian layer appends the weight draws it
        uses.

    Example: record the draws of a seed, then use them again.

    >>> import numpy as np, tensorflow as tf, tfp_bnn
    >>> from tfp_bnn.sampling import stateless_seed, weight_draws
    >>> layer = tfp_bnn.BayesianDense(2, kl_weight=1 / 100)
    >>> x = np.ones((3, 4), "float32")
    >>> record = []
    >>> with weight_draws(5, seed=stateless_seed(0), record=record):
    ...     y = layer(tf.tile(x, [5, 1]))  # [T * batch, ...], draw-major
    >>> y.shape, record[0].shape  # T = 5 draws of the 4 * 2 kernel and 2 biases
    (TensorShape([15, 2]), TensorShape([5, 10]))
    >>> with weight_draws(5, seed=stateless_seed(0)):  # the same seed: the same networks
    ...     same_seed = layer(tf.tile(x, [5, 1]))
    >>> with weight_draws(5, weights=record):  # the recorded draws: the same networks
    ...     same_weights = layer(tf.tile(x, [5, 1]))
    >>> bool(np.array_equal(y, same_seed)), bool(np.array_equal(y, same_weights))
    (True, True)
    """
    num_draws = validation.check_positive_int(num_draws, "num_draws")
    return _entered(Mode("draws", num_draws, seed, weights=weights, record=record))


def _one_pass_draws(num_draws, seed=None, *, weights=None, record=None):
    """:func:`weight_draws` around one forward pass: eagerly too, a layer called again reuses its draws."""
    num_draws = validation.check_positive_int(num_draws, "num_draws")
    mode = Mode("draws", num_draws, seed, weights=weights, record=record, one_pass=True,
                pass_graph=_default_function_graph())
    return _entered(mode)


def stack_draws(tensor, num_draws):
    """``tensor`` ``[batch, ...]`` -> ``[num_draws * batch, ...]``, draw-major, as :func:`weight_draws` takes it.

    ``num_draws``: ``T``, the number of copies.

    Rows ``t * batch .. (t + 1) * batch - 1`` are copy ``t``, which goes through
    draw ``t``; ``None`` (no sample weights, say) stays ``None``.

    Example:

    >>> from tfp_bnn.sampling import stack_draws
    >>> stack_draws([[1.0], [2.0]], 3).numpy().ravel().tolist()
    [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    """
    if tensor is None:
        return None
    tensor = tf.convert_to_tensor(tensor)
    if tensor.dtype == tf.uint16:  # TF has no Tile kernel for uint16 (16-bit pixels); int32 holds them all
        return tf.cast(stack_draws(tf.cast(tensor, tf.int32), num_draws), tf.uint16)
    return tf.tile(tensor, tf.concat([[num_draws], tf.ones([tf.rank(tensor) - 1], tf.int32)], axis=0))


def posterior_mean():
    """Context in which Bayesian layers use the mean of their posterior (no noise).

    Example: outside it every call draws new weights; inside, a layer is deterministic.

    >>> import numpy as np, tfp_bnn
    >>> from tfp_bnn.sampling import posterior_mean
    >>> layer = tfp_bnn.BayesianDense(2, kl_weight=1 / 100)
    >>> x = np.ones((3, 4), "float32")
    >>> bool(np.array_equal(layer(x), layer(x)))
    False
    >>> with posterior_mean():
    ...     bool(np.array_equal(layer(x), layer(x)))
    True
    """
    return _entered(Mode("mean"))


def stateless_seed(seed):
    """An integer ``seed`` (Python int or int64 tensor) as a stateless seed ``[2]`` int32.

    The low 31 bits and the next 31 bits, so every seed in ``[0, 2**62)``
    gives its own pair. It is made of plain TensorFlow ops, so a graph that
    takes the seed as an input (a served model) derives the same pair as
    :func:`tfp_bnn.predict` does from a Python int. (Not
    ``tfp.random.sanitize_seed``: for ints it runs a stateful op, which gives
    a new value on every eager call.)

    Example:

    >>> from tfp_bnn.sampling import stateless_seed
    >>> seed = stateless_seed(2**31 + 5)  # low 31 bits 5, next 31 bits 1
    >>> seed.numpy().tolist(), seed.dtype.name
    ([5, 1], 'int32')
    >>> stateless_seed(2**62 + 5).numpy().tolist()  # beyond 2**62 seeds repeat
    [5, 0]
    """
    seed = tf.convert_to_tensor(seed, tf.int64)
    mask = tf.constant(0x7FFFFFFF, tf.int64)
    low = tf.bitwise.bitwise_and(seed, mask)
    high = tf.bitwise.bitwise_and(tf.bitwise.right_shift(seed, 31), mask)
    return tf.cast(tf.stack([low, high]), tf.int32)
