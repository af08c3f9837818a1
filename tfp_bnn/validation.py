"""Checks of user data that run before any training or prediction starts.

Each failure is a ``ValueError`` (or ``TypeError`` for a wrong kind of
object) whose message names the problem and the fix, e.g. the row and column
of the first NaN. :func:`tfp_bnn.predict`, ``fit`` and the other entry points
run them for you:

>>> import numpy as np
>>> x = np.zeros((4, 2), "float32"); x[2, 1] = np.nan
>>> check_inputs(x, input_shape=(2,))
Traceback (most recent call last):
ValueError: x contains nan at row 2, column 1 (1 non-finite values in all); drop or impute missing and infinite values first.
>>> check_inputs(np.zeros((4, 3)), input_shape=(2,))
Traceback (most recent call last):
ValueError: x has shape (4, 3) but the model takes inputs of shape (N, 2): 2 features per example. Pass the same features, in the same order, that the model was built for.
"""

import numpy as np

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


def check_inputs(x, input_shape):
    """``x`` as float32 of shape ``(N, *input_shape)``; ``(N,)`` is accepted for one feature."""
    array = _as_numeric_array(x, "x")
    expected = tuple(input_shape)
    if array.ndim == 1 and expected == (1,):
        array = array[:, np.newaxis]
    if array.shape[1:] != expected:
        raise ValueError(
            f"x has shape {array.shape} but the model takes inputs of shape (N, "
            f"{', '.join(map(str, expected))}): {_describe(expected)} per example. Pass the same "
            "features, in the same order, that the model was built for."
        )
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    _check_finite(array, "x")
    return array


def _describe(shape):
    return f"{shape[0]} features" if len(shape) == 1 else f"an array of shape {shape}"


def check_targets(y, head, num_examples=None):
    """``y`` as float32, reshaped to the head's ``(N, *target_shape)`` and checked against its support."""
    array = _as_numeric_array(y, "y")
    if num_examples is not None and array.shape[0] != num_examples:
        raise ValueError(
            f"x has {num_examples} examples but y has {array.shape[0]}; pass one target per example."
        )
    target_shape = tuple(head.target_shape)
    expected = (array.shape[0], *target_shape)
    if array.ndim == len(expected) - 1 and target_shape[-1:] == (1,):
        array = array[..., np.newaxis]
    elif array.ndim == len(expected) + 1 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.shape != expected:
        shown = "(N" + "".join(f", {d}" for d in target_shape) + (",)" if not target_shape else ")")
        raise ValueError(
            f"y has shape {np.shape(y)} but {type(head).__name__} predicts targets of shape {shown}; "
            f"reshape y to {shown}."
        )
    # float32 is what the model computes in: a value that overflows it is as bad as inf.
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    _check_finite(array, "y")
    head.check_support(array)
    return array


def check_num_samples(num_samples):
    """``num_samples`` as a positive Python int."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(
            f"num_samples must be a positive integer (the number of weight draws), got {num_samples!r}."
        )
    return int(num_samples)
