"""Checks of user data that run before any training or prediction starts.

Each failure is a ``ValueError`` (or ``TypeError`` for a wrong kind of
object) whose message names the problem and the fix, e.g. the row and column
of the first NaN. :func:`tfp_bnn.predict`, ``fit`` and the other entry points
run them for you:

>>> import numpy as np
>>> from tfp_bnn.validation import check_inputs
>>> x = np.zeros((4, 2), "float32"); x[2, 1] = np.nan
>>> check_inputs(x, input_shape=(2,))
Traceback (most recent call last):
ValueError: x contains nan at row 2, column 1 (1 non-finite values in all); drop or impute missing and infinite values first.
>>> check_inputs(np.zeros((4, 3)), input_shape=(2,))
Traceback (most recent call last):
ValueError: x has shape (4, 3) but the model takes inputs of shape (N, 2): 2 features per example. Pass the same features, in the same order, that the model was built for.
"""

import numbers
import operator

import numpy as np
import tensorflow as tf
import tf_keras

__all__ = ["check_inputs", "check_targets", "check_num_samples"]


def _as_numeric_array(data, name):
    if data is None:
        raise ValueError(f"{name} is None; pass a NumPy array (or something np.asarray accepts).")
    try:
        array = np.asarray(data)
    except Exception as error:  # ragged lists and the like
        raise TypeError(f"{name} could not be turned into an array ({error}); pass a rectangular array.")
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {array.dtype}, not a number type; convert it to float32 "
            f"(e.g. {name}.astype('float32')) after encoding any text columns."
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(f"{name} has no examples (shape {array.shape}); pass at least one row.")
    return array


def _check_finite(array, name):
    # The min and max are NaN or infinite if any value is: no N x D temporaries of booleans on large data.
    with np.errstate(invalid="ignore"):
        if array.size == 0 or (np.isfinite(array.min()) and np.isfinite(array.max())):
            return
    bad = ~np.isfinite(array)
    if bad.any():
        position = np.argwhere(bad)[0]
        value = array[tuple(position)]
        where = f"row {position[0]}" + (
            f", column {', '.join(map(str, position[1:]))}" if position.size > 1 else ""
        )
        raise ValueError(
            f"{name} contains {value} at {where} ({int(bad.sum())} non-finite values in all); "
            "drop or impute missing and infinite values first."
        )


def check_inputs(x, input_shape, dtype=None):
    """``x`` as float32 (or ``dtype``) of shape ``(N, *input_shape)``; ``(N,)`` is accepted for one feature.

    ``dtype``: the model's input dtype. Integer inputs (token ids, categories for
    ``Embedding``/``IntegerLookup``) keep their integers, cast to that dtype (float32
    holds integers exactly only up to 2**24); string inputs (``StringLookup``) stay text.

    Example:

    >>> from tfp_bnn.validation import check_inputs
    >>> x = check_inputs([1, 2, 3], input_shape=(1,))  # a list of ints, one feature
    >>> x.shape, x.dtype.name
    ((3, 1), 'float32')
    >>> check_inputs([["a", "b"]], input_shape=(2,))
    Traceback (most recent call last):
    TypeError: x has dtype <U1, not a number type; convert it to float32 (e.g. x.astype('float32')) after encoding any text columns.
    """
    dtype = tf.as_dtype(dtype or tf.float32)
    if dtype == tf.string:
        array = _as_text_array(x)
    else:
        array = _as_numeric_array(x, "x")
    expected = tuple(input_shape)
    if array.ndim == 1 and expected == (1,):
        array = array[:, np.newaxis]
    if not tf.TensorShape(array.shape[1:]).is_compatible_with(expected):  # None: any length
        raise ValueError(
            f"x has shape {array.shape} but the model takes inputs of shape {shape_text(expected)}: "
            f"{_describe(expected)} per example. Pass the same features, in the same order, that the "
            "model was built for."
        )
    if dtype == tf.string:
        return array
    if dtype.is_integer or dtype.is_bool:
        return _as_integers(array, dtype)
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    _check_finite(array, "x")
    return array


def model_input_shape(model):
    """``model.input_shape``, a list for several inputs however they were given.

    A model built on a dict of inputs (Keras's named inputs, ``{name: tf_keras.Input(...)}``)
    has a dict ``input_shape``: taken as one input's shape or as a list, as if built on a list.
    """
    shape = model.input_shape
    if isinstance(shape, dict):
        shape = list(shape.values()) if len(shape) > 1 else next(iter(shape.values()))
    return shape


def model_input_dtype(model):
    """The dtype ``check_inputs`` gives a model's inputs: an integer, bool or string input's own, else float32."""
    dtype = tf.as_dtype(model.inputs[0].dtype)
    return dtype if dtype.is_integer or dtype.is_bool or dtype == tf.string else tf.float32


def single_input(model, x):
    """Keras's other spellings of one input, ``[x]`` and ``{input_name: x}``, as ``x``."""
    if _is_wrapped_batch(model, x):
        return x[0]
    if isinstance(x, dict):
        nested = getattr(model, "_nested_inputs", None)
        if list(x) != model.input_names and not (isinstance(nested, dict) and list(x) == list(nested)):
            raise ValueError(f"x has the keys {sorted(x)}; the model's one input is named {model.input_names[0]!r}.")
        return next(iter(x.values()))  # by the input's name, or by its key in a dict of inputs
    return x


def _is_wrapped_batch(model, x):
    """Whether ``x`` is ``[batch]``, one input in a list, not a list holding one example.

    ``[image]`` (or a nested list of one example) is a batch of one example: its item has
    one example's rank, a wrapped batch one more.
    """
    if not (isinstance(x, (list, tuple)) and len(x) == 1 and np.ndim(x[0]) > 1):
        return False
    shape = model_input_shape(model)
    return isinstance(shape, list) or np.ndim(x[0]) != len(shape) - 1


def _as_text_array(x):
    """The inputs of a model with a string input: text (str, bytes or objects of them), as given."""
    try:
        array = np.asarray(x)
    except Exception as error:
        raise TypeError(f"x could not be turned into an array ({error}); pass a rectangular array.")
    if array.dtype.kind not in "USO":
        raise TypeError(
            f"x has dtype {array.dtype}, but the model's input is a string tensor "
            "(tf_keras.Input(..., dtype='string')); pass the text itself, e.g. x.astype(str)."
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(f"x has no examples (shape {array.shape}); pass at least one row.")
    return array


def _as_integers(array, dtype):
    """Numbers for an integer input, as ``dtype``: whole numbers within its range, or an error."""
    info = np.iinfo(dtype.as_numpy_dtype) if dtype.is_integer else np.iinfo(np.uint8)
    if array.dtype.kind == "f":
        _check_finite(array, "x")
        if not np.array_equal(array, np.round(array)):
            raise TypeError(
                f"x holds fractions, but the model's input is {dtype.name} (ids or categories); "
                "pass whole numbers."
            )
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise ValueError(f"x holds values outside the range of the model's input dtype {dtype.name}.")
    return array.astype(dtype.as_numpy_dtype, copy=False)


def _describe(shape):
    return f"{shape[0]} features" if len(shape) == 1 else f"an array of shape {shape}"


def shape_text(example_shape, unknown="None"):
    """A batch of examples of shape ``example_shape`` as the messages spell it, N first.

    ``()`` is ``"(N,)"``, ``(3,)`` ``"(N, 3)"``, ``(5, 1)`` ``"(N, 5, 1)"``; an axis of unknown
    length (``None``) is shown as ``unknown`` (e.g. ``"L"`` for a label per step).
    """
    dims = ["N"] + [unknown if d is None else str(d) for d in tf.TensorShape(example_shape).as_list()]
    return "(N,)" if len(dims) == 1 else "(" + ", ".join(dims) + ")"


def target_axis_change(shape, expected):
    """How a target of ``shape`` meets a head's ``expected`` target shape (N first): ``+1``, ``-1`` or ``0``.

    The one rule for a head of one value per example (or per step): ``y`` may lack the
    trailing axis of size 1 (``(N,)`` for ``(N, 1)``: ``+1``, add it) or have one more
    (``(N, 1)`` for ``(N,)``: ``-1``, drop it); anything else (``0``) must fit as it is.
    ``shape`` may be a NumPy shape or a ``tf.TensorShape`` (``None`` for unknown lengths);
    an axis of unknown length is not taken for one of size 1.
    """
    shape, expected = tf.TensorShape(shape), tuple(tf.TensorShape(expected).as_list())
    if shape.rank is None:
        return 0
    if shape.rank == len(expected) - 1 and expected[-1:] == (1,):
        return 1
    if shape.rank == len(expected) + 1 and shape[-1] == 1:
        return -1
    return 0


def align_target_axis(y, expected):
    """``y`` (a NumPy array or a tensor) with the axis of size 1 that :func:`target_axis_change` adds or drops."""
    change = target_axis_change(y.shape, expected)
    if change > 0:
        return y[..., np.newaxis]
    return y[..., 0] if change < 0 else y


def check_targets(y, head, num_examples=None):
    """``y`` as float32, reshaped to the head's ``(N, *target_shape)`` and checked against its support.

    A :class:`~tfp_bnn.heads.BernoulliHead` with a label per step (or pixel) takes and gives
    its labels as ``(N, *steps)``, without the trailing axis of size 1.

    Example: a regression head's ``(N,)`` targets become ``(N, 1)``; a label outside
    a classifier's classes is refused before any training.

    >>> from tfp_bnn.heads import CategoricalHead, NormalHead
    >>> from tfp_bnn.validation import check_targets
    >>> check_targets([0.5, 1.5], NormalHead(1)).shape
    (2, 1)
    >>> check_targets([0, 3], CategoricalHead(3))
    Traceback (most recent call last):
    ValueError: y[1] = 3, but labels must be integers 0..2 (the head has 3 classes); encode the classes as 0..K-1.
    >>> check_targets([0.5, 1.5], NormalHead(1), num_examples=3)
    Traceback (most recent call last):
    ValueError: x has 3 examples but y has 2; pass one target per example.
    """
    if head.task == "classification" and _is_text(y):
        top = head.units - 1 if head.units > 1 else 1  # BernoulliHead: one unit, labels 0/1
        raise TypeError(
            f"y holds text labels, but {type(head).__name__} takes class indices 0..{top}; encode them: "
            "classes, y = np.unique(y, return_inverse=True) (classes[k] is the label of class k)."
        )
    array = _as_numeric_array(y, "y")
    if num_examples is not None and array.shape[0] != num_examples:
        raise ValueError(
            f"x has {num_examples} examples but y has {array.shape[0]}; pass one target per example."
        )
    target_shape = _example_target_shape(head)
    expected = (array.shape[0], *target_shape)
    array = align_target_axis(array, expected)
    if not tf.TensorShape(array.shape).is_compatible_with(expected):
        raise ValueError(_target_shape_message(np.shape(y), head))
    # float32 is what the model computes in: a value that overflows it is as bad as inf.
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    _check_finite(array, "y")
    head.check_support(array)
    if head.task == "classification" and head._step_shape and tuple(head.target_shape) == (1,):
        # A binary label per step (L labels of an example, a multi-label classifier): (N, L), as a
        # sigmoid Dense(L)'s labels. As (N, L, 1) Keras's AUC(multi_label=True, num_labels=L) failed in
        # fit/evaluate on arrays ("Tensor ... must have rank 2"), while it took datasets' (N, L); the
        # loss aligns (N, L) to the head's (N, L, 1) itself (align_target).
        array = array[..., 0]
    return array


def _is_text(data):
    """Whether ``data`` is an array (or list) of strings or bytes."""
    try:
        array = np.asarray(data)
    except Exception:  # ragged: _as_numeric_array says so
        return False
    if array.dtype.kind in "US":
        return True
    return array.dtype.kind == "O" and array.size > 0 and isinstance(array.flat[0], (str, bytes))


def _example_target_shape(head):
    """One example's target: ``head.target_shape``, after the steps of a label per time step or pixel."""
    return (*head._step_shape, *head.target_shape)


def _target_shape_message(shape, head):
    target_shape = _example_target_shape(head)
    shown = shape_text(target_shape, unknown="L")
    message = f"y has shape {tuple(shape)} but {type(head).__name__} predicts targets of shape {shown}; reshape y to {shown}"
    if head.task == "classification" and not head._step_shape and len(shape) == 2 and shape[-1] not in (1, None):
        if tuple(head.target_shape) == (1,) and shape[-1] != 2:  # a label 0/1 per example (BernoulliHead)
            # Several binary labels per example: argmax would make class indices 0..k-1, not labels 0/1.
            message += (
                f" (several binary labels per example? {type(head).__name__} predicts one: for L labels end in a "
                "layer of L units, tf_keras.layers.Reshape((L, 1)) and the head, a label per step that "
                "tfp_bnn.predict, score and export_for_serving take; a model with a head per label trains but "
                "does not predict with them)"
            )
        else:
            message += " (one-hot labels? pass the class indices, y.argmax(axis=1))"
    elif head.task == "classification" and head._step_shape and len(shape) == len(target_shape) + 2 \
            and head.units > 1 and shape[-1] == head.units:
        message += " (one-hot labels? pass the class index of each step, y.argmax(axis=-1))"
    return message + "."


def check_dataset(dataset, input_shape, head):
    """Check a ``tf.data.Dataset`` for ``fit``/``evaluate`` by its ``element_spec``, before it runs.

    Its elements must be batches ``(x, y)`` or ``(x, y, sample_weight)``, ``x`` of shape
    ``(batch, *input_shape)`` and ``y`` of a shape the head takes (for a model of several inputs,
    ``input_shape`` is the list of their shapes). The values themselves (NaN, labels) are Keras's
    to meet as they stream.
    """
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            "The dataset yields inputs only; fit and evaluate need (x, y) pairs, e.g. "
            "tf.data.Dataset.from_tensor_slices((x, y)).batch(32)."
        )
    x_spec, y_spec = spec[:2]
    if not isinstance(x_spec, tf.TensorSpec):
        return  # several inputs: for Keras to match against the model
    if isinstance(input_shape, list):  # a model of several inputs (their shapes, with the batch axis)
        raise ValueError(
            f"The model takes {len(input_shape)} inputs but the dataset's x is one tensor of shape "
            f"{tuple(x_spec.shape)}; yield the inputs together, e.g. ((x1, x2), y) or ({{name: x}}, y)."
        )
    expected = tuple(input_shape)
    if _single_examples(x_spec.shape, expected):
        raise ValueError(
            f"The dataset yields single examples (x of shape {tuple(x_spec.shape)}); the model takes "
            f"batches of shape {shape_text(expected)}. Batch it: dataset.batch(32)."
        )
    if _batch_of_scalars(x_spec.shape, expected):
        pass  # (N,) for one feature, as for arrays: Keras adds the feature axis
    elif x_spec.shape.rank is not None and not x_spec.shape[1:].is_compatible_with(expected):
        raise ValueError(
            f"The dataset's x has shape {tuple(x_spec.shape)} but the model takes inputs of shape "
            f"{shape_text(expected)}: {_describe(expected)} per example."
        )
    if isinstance(y_spec, tf.TensorSpec) and y_spec.shape.rank is not None:
        target_shape = _example_target_shape(head)
        shape = y_spec.shape
        change = target_axis_change(shape, (None, *target_shape))
        # (N, ?), a generator's labels for a head of (N,): align_target checks them as they come.
        unknown_column = shape.rank == len(target_shape) + 2 and shape[-1] is None
        aligned = (
            shape[1:].is_compatible_with(target_shape)
            or change > 0
            or ((change < 0 or unknown_column) and shape[1:-1].is_compatible_with(target_shape))
        )
        if not aligned:
            raise ValueError(_target_shape_message(tuple(shape), head))


def check_sample_weight(sample_weight, num_examples, steps=()):
    """``sample_weight`` as float32 ``(N,)``: finite, >= 0, one per example, not all 0.

    For a head with a label per step or pixel (``steps``, its step shape) also one weight per
    label, ``(N, *steps)``: Keras's temporal weights, as a dataset's ``(x, y, w)`` gives them.
    """
    array = _as_numeric_array(sample_weight, "sample_weight")
    if array.ndim == 2 and array.shape[1] == 1:  # one per example, also for a head of one step:
        # kept (N, 1), Keras's class weights (N,) broadcast with them to (N, N) weights.
        array = array[:, 0]
    per_label = (bool(steps) and array.ndim == 1 + len(steps) and array.shape[0] == num_examples
                 and tf.TensorShape(array.shape[1:]).is_compatible_with(steps))
    if not per_label and array.shape != (num_examples,):
        per_label_shape = ", ".join(["L" if d is None else str(d) for d in steps])
        raise ValueError(
            f"sample_weight has shape {array.shape}; pass one weight per example, shape ({num_examples},)"
            + (f" (or one per label, shape ({num_examples}, {per_label_shape}))" if steps else "") + "."
        )
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    _check_finite(array, "sample_weight")
    if np.any(array < 0) or not np.any(array > 0):
        raise ValueError("sample_weight must be >= 0 with at least one weight > 0 (each example's share of the loss).")
    return array


def is_positive_int(value):
    """Whether ``value`` is a Python or NumPy integer ``>= 1``: not a bool, not ``2.0``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def check_positive_int(value, name, meaning=None, allow_none=False):
    """``value`` as a Python int ``>= 1`` (see :func:`is_positive_int`), or ``None`` if allowed.

    The one rule for every count of the package (units, draws, bins, versions, ...):
    ``2.5`` would silently become 2, and ``True`` 1.
    """
    if value is None and allow_none:
        return None
    if not is_positive_int(value):
        what = f" ({meaning})" if meaning else ""
        alternative = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive integer{what}{alternative}, got {value!r}.")
    return int(value)


def check_batch_size(batch_size):
    """``batch_size`` as a positive Python int, or ``None`` (chosen for you)."""
    return check_positive_int(batch_size, "batch_size", "inputs per chunk", allow_none=True)


def check_eager_outside_functions(what):
    """A ``RuntimeError`` in TF1 graph mode (``tf.compat.v1.disable_eager_execution()``).

    There Keras builds its TF1 models (``training_v1``): their ``compile`` refused the
    arguments tfp_bnn passes ("Invalid keyword argument(s) in `compile`: {'jit_compile',
    'steps_per_execution'}"), and prediction failed on ".numpy()" of a symbolic tensor.
    """
    if not tf.compat.v1.executing_eagerly_outside_functions():
        raise RuntimeError(
            f"{what} needs TensorFlow 2 behaviour (eager execution outside tf.function), which this "
            "process has turned off (tf.compat.v1.disable_eager_execution(), or a tf.Graph().as_default() "
            "block): Keras then builds TF1 models, which tfp_bnn does not support. Run it in a process "
            "that does not call tf.compat.v1.disable_eager_execution()."
        )


# Keras 3 packages whose objects have a tf_keras counterpart of the same name.
_KERAS_PACKAGES = ("callbacks", "constraints", "initializers", "layers", "losses", "metrics", "optimizers",
                   "regularizers")


def _is_keras3_module(module):
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _keras3_object(obj):
    """``(what obj is, what to use instead)`` for an object of Keras 3, else ``None``.

    Keras 3 (``keras``, and ``tf.keras`` in TensorFlow >= 2.16) and tf-keras
    (Keras 2, which TFP's layers and tfp_bnn build on) are two libraries whose
    classes share names; an object's module tells them apart
    (``keras.src.optimizers.adam`` against ``tf_keras.src.optimizers.adam``).
    """
    # The first Keras 3 class of its type: a user's own subclass (class MyLoss(tf.keras.losses.Loss)) is
    # defined in the user's module, and went on to the failures (or, a Loss, to its wrong sample weighting).
    keras3_class = next((c for c in type(obj).__mro__ if _is_keras3_module(getattr(c, "__module__", None))), None)
    if keras3_class is None:
        return None
    module, name = keras3_class.__module__, keras3_class.__name__
    parts = module.split(".")
    package = parts[2] if parts[1:2] == ["src"] and len(parts) > 2 else None
    if name == "KerasTensor":
        return "a Keras 3 tensor (of keras.Input or a Keras 3 layer)", "tf_keras.Input and tf_keras.layers"
    if name == "Variable":
        return f"the Keras 3 weight {getattr(obj, 'path', obj.name)!r}", "tf_keras.layers"
    if package == "models":
        return f"the Keras 3 model {getattr(obj, 'name', name)!r}", "tf_keras.Model or tf_keras.Sequential"
    if package in _KERAS_PACKAGES:
        counterpart = f"tf_keras.{package}.{name}"
        if not hasattr(getattr(tf_keras, package), name):
            counterpart = f"one of tf_keras.{package} (tf_keras has no {name})"
        if keras3_class is not type(obj):
            return f"{type(obj).__name__}, a subclass of {package}.{name} of Keras 3", f"a subclass of {counterpart}"
        return f"{package}.{name} of Keras 3", counterpart
    return f"a Keras 3 {name}", "its tf_keras counterpart"


def _leaves(objects):
    if isinstance(objects, dict):
        objects = objects.values()
    if isinstance(objects, (list, tuple, type({}.values()))):
        for obj in objects:
            yield from _leaves(obj)
    else:
        yield objects


def check_not_keras3(objects, where, consequence="", verb="got"):
    """A ``TypeError`` if ``objects`` (nested in lists, tuples and dicts) hold a Keras 3 object.

    ``import tensorflow as tf; tf.keras.optimizers.Adam()`` makes a Keras 3
    object, which a tf-keras model cannot use: Keras failed with messages that
    do not say so ("Could not interpret optimizer identifier", "'tuple' object
    has no attribute 'rank'", "'EarlyStopping' object has no attribute
    '_implements_train_batch_hooks'"). ``consequence`` says what would go wrong
    had it been allowed. Keras 3 *functions* (``keras.losses.mean_squared_error``)
    pass: they compute on TensorFlow tensors.
    """
    for obj in _leaves(objects):
        found = _keras3_object(obj)
        if found is not None:
            what, instead = found
            raise TypeError(
                f"{where} {verb} {what} (Keras 3 is `keras`, and `tf.keras` in TensorFlow >= 2.16){consequence}. "
                "tfp_bnn's models are tf-keras (Keras 2) models, which cannot use Keras 3 objects: use "
                f"{instead} (`import tf_keras`). Code that says `tf.keras` can stay as it is with the environment "
                "variable TF_USE_LEGACY_KERAS=1 set before `tf.keras` is first used (restart a session that used "
                "it), which makes `tf.keras` tf-keras; `import keras` stays Keras 3."
            )


def check_no_keras3_weights(model):
    """Refuse a Keras 3 layer called on the model's tf-keras tensors.

    tf-keras wraps each TensorFlow op of such a layer in a layer of its own
    (``tf.nn.bias_add``) that holds the Keras 3 weight untracked: ``fit`` never
    trained it and the model did not save it, with at most tf-keras's warning
    that a Lambda layer "should be rewritten as a subclassed Layer". Found only
    where a weight reaches an op as a variable (a ``Dense`` bias, a convolution
    kernel, an ``Embedding`` table): weights that Keras 3 reads into constants
    (a ``Dense`` kernel, the normalization layers' weights) leave no trace, so
    ``Dense(use_bias=False)`` or ``BatchNormalization`` pass unnoticed.
    """
    flatten_layers = getattr(model, "_flatten_layers", None)  # a tf_keras.Model's
    for layer in flatten_layers(include_self=False) if flatten_layers else ():
        for node in getattr(layer, "_inbound_nodes", ()):
            check_not_keras3(
                (node.call_args, node.call_kwargs),
                f"Model {model.name!r}",
                verb="holds",
                consequence=f", in its layer {layer.name!r}: a Keras 3 layer was called on the model's tf-keras "
                "tensors, and fit would never train its weights nor save them",
            )


def check_level(level, name="level"):
    """``level``, the coverage of a central interval, checked to lie strictly between 0 and 1.

    A string or ``None`` (``level="0.9"`` read from a config file) was compared with 0.0
    and failed with Python's "'<' not supported between instances of 'float' and 'str'".
    ``name``: what the error calls it (the command line's ``"--level"``).
    """
    try:
        valid = not isinstance(level, (str, bytes)) and bool(0.0 < level < 1.0)
    except (TypeError, ValueError):  # None, an array of several levels
        valid = False
    if not valid:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {level!r}; pass a number such as 0.95.")
    return level


def check_seed(seed):
    """``seed`` as a Python int in ``[0, 2**62)``, or ``None`` (fresh draws).

    :func:`tfp_bnn.sampling.stateless_seed` makes two 31-bit halves of it: ``2**62 + s``
    would draw what ``s`` does.
    """
    if seed is None:
        return None
    try:
        if isinstance(seed, bool):
            raise TypeError
        value = operator.index(seed)  # ints, NumPy and scalar tensor integers; not 1.7
    except TypeError:
        value = None
    if value is None or not 0 <= value < 2**62:
        raise ValueError(f"seed must be an integer in [0, 2**62) (or None for fresh draws), got {seed!r}.")
    return value


def dataset_inputs(dataset, input_shape):
    """The inputs of a ``tf.data.Dataset`` (``x`` or ``(x, ...)`` elements) as one NumPy array.

    Batched or not: elements of one example's rank (``len(input_shape)``) are stacked.
    """
    spec = dataset.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(x_spec, tf.TensorSpec):
        raise TypeError(
            f"The dataset's inputs are {x_spec}; tfp_bnn models take one input tensor per example "
            "(elements x or (x, y))."
        )
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "The dataset repeats forever (dataset.repeat()); pass one that ends, e.g. the dataset "
            "before .repeat(), or dataset.take(num_batches)."
        )
    elements = [element[0] if isinstance(element, tuple) else element for element in dataset.as_numpy_iterator()]
    if not elements:
        raise ValueError("The dataset is empty; pass at least one example.")
    # By the spec: a batch (None,) of one feature and one example (1,) have the same rank.
    shape = x_spec.shape if x_spec.shape.rank is not None else tf.TensorShape(elements[0].shape)
    single_examples = _single_examples(shape, tuple(input_shape))
    return np.stack(elements) if single_examples else np.concatenate(elements, axis=0)


def _batch_of_scalars(shape, input_shape):
    """A batch ``(N,)`` of one-feature examples (``(None,)``, or a fixed batch size other than 1)."""
    return input_shape == (1,) and shape.rank == 1 and shape[0] != 1


def _single_examples(shape, input_shape):
    """Whether elements of this ``x`` shape are single examples (a scalar too, for one feature)."""
    if _batch_of_scalars(shape, input_shape):
        return False
    return shape.rank == len(input_shape) or (input_shape == (1,) and shape.rank == 0)


def check_num_samples(num_samples, model=None):
    """``num_samples`` as a positive Python int; for an ensemble ``model``, a multiple of its size.

    Example:

    >>> import numpy as np, tfp_bnn
    >>> from tfp_bnn.validation import check_num_samples
    >>> check_num_samples(np.int64(100))
    100
    >>> ensemble = tfp_bnn.make_regressor((1,), inference="ensemble", num_members=5)
    >>> check_num_samples(12, ensemble)
    Traceback (most recent call last):
    ValueError: An ensemble of 5 members needs num_samples to be a multiple of 5 (draw t is member t mod 5), got 12; e.g. num_samples=10.
    """
    check_positive_int(num_samples, "num_samples", "the number of weight draws")
    # tfp_bnn.baselines.EnsembleDense layers (and the BayesianModel of them) have num_members.
    members = {getattr(layer, "num_members", 1) for layer in model._flatten_layers()} if model else set()
    for size in members - {1}:
        fixed = draws_for_members(num_samples, size)
        if fixed != num_samples:
            raise ValueError(
                f"An ensemble of {size} members needs num_samples to be a multiple of {size} (draw t is "
                f"member t mod {size}), got {num_samples}; e.g. num_samples={fixed}."
            )
    return int(num_samples)


def draws_for_members(num_samples, num_members):
    """``num_samples`` if it draws an ensemble's ``num_members`` equally often, else the nearest count that does.

    Draw t is member t mod ``num_members``: only a multiple of ``num_members`` weighs every
    member alike. The count offered instead is the nearest multiple, at least ``num_members``.
    """
    if num_samples % num_members == 0:
        return num_samples
    return num_members * max(1, round(num_samples / num_members))
