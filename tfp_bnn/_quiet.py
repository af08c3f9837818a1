"""Import TensorFlow without its C++ start-up chatter.

TF 2.21 writes oneDNN and CUDA-probing lines to stderr while it loads, whatever
``TF_CPP_MIN_LOG_LEVEL`` says (absl logs them before the level takes effect);
they would bury the command line's one-line error messages. Unless TensorFlow
is already imported or the user asked for all of TF's logs
(``TF_CPP_MIN_LOG_LEVEL=0``), stderr (file descriptor 2) is silenced for the
import and the level defaults to 3. Python exceptions are unaffected: they are
printed after stderr is restored.
"""

import os
import sys


def import_tensorflow_quietly():
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
