"""Import TensorFlow without its C++ start-up chatter.

TF 2.21 writes oneDNN and CUDA-probing lines to stderr while it loads, before
``TF_CPP_MIN_LOG_LEVEL`` takes effect; they would bury the command line's
one-line error messages. Only when the user has not imported TensorFlow yet
and has not chosen a ``TF_CPP_MIN_LOG_LEVEL`` themselves, stderr (file
descriptor 2) is silenced for the import and the level set to 3. Python
exceptions are unaffected: they are printed after stderr is restored.
"""

import os
import sys


def import_tensorflow_quietly():
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
