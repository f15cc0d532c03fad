"""Import TensorFlow once, quietly.

TensorFlow's C++ runtime prints oneDNN and CUDA notices on stderr while it loads,
before absl logging is initialised, so no environment variable silences them. We
point file descriptor 2 at /dev/null for the import and the first device query only;
Python exceptions still surface normally once it is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys

_VERBOSE = False


def set_verbose(verbose: bool) -> None:
    """With `--debug`, let TensorFlow's own start-up messages through."""
    global _VERBOSE
    _VERBOSE = verbose


@contextlib.contextmanager
def _stderr_fd_silenced():
    if _VERBOSE:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def tensorflow():
    """Return the `tensorflow` module, importing and initialising it on first use."""
    if "tensorflow" in sys.modules and getattr(tensorflow, "_ready", False):
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_fd_silenced():
        import tensorflow as tf

        tf.config.list_logical_devices()  # device set-up is where CUDA probing prints
    tf.get_logger().setLevel("ERROR")
    tensorflow._ready = True
    return tf
