"""Warnings attributed to the user's line.

A fixed ``stacklevel`` names the user's line only when the user calls the
function that warns directly. tfp_bnn's warnings are also raised through its
builders (``make_regressor`` builds the ``BayesianModel``), through Keras
(``load_model`` compiles the loaded model, a layer's ``build`` runs a
posterior factory) and TensorFlow; there a fixed level named a line of
tfp_bnn, tf_keras or TensorFlow, and Python's default filter (once per
location) then also hid the warning at every other call site of the process.
"""

import os
import sys
import warnings

_PACKAGES = ("tfp_bnn", "tf_keras", "tensorflow", "tensorflow_probability", "keras")
# tfp_bnn's command-line modules are the user's entry point: their lines are the ones to name.
_ENTRY_POINTS = ("cli.py", "demo.py", "__main__.py")


def _library_dirs():
    dirs = []
    for name in _PACKAGES:
        module = sys.modules.get(name)
        for path in getattr(module, "__path__", None) or ():
            dirs.append(os.path.join(os.path.realpath(path), ""))
    return tuple(dirs)


def _is_library(filename, dirs):
    if "__autograph_generated_file" in filename:
        return True  # library code converted by AutoGraph (a tf.function's body)
    path = os.path.realpath(filename)
    if not path.startswith(dirs):
        return False
    own = os.path.join(os.path.dirname(os.path.realpath(__file__)), "")
    return not (path.startswith(own) and os.path.basename(path) in _ENTRY_POINTS)


def warn(message, category=UserWarning):
    """``warnings.warn`` at the first frame outside tfp_bnn, tf_keras, TensorFlow and TFP: the user's line."""
    dirs = _library_dirs()
    frame, level = sys._getframe(1), 2
    while frame is not None and _is_library(frame.f_code.co_filename, dirs):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)
