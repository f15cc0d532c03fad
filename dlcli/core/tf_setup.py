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


class _RuntimeSettings:
    """How TensorFlow's runtime is to start. The runtime itself is process-wide and
    fixed once it initialises, so these settings are too: the CLI sets them before
    anything imports the core, and they are read once, at the import below."""

    verbose = False  # --debug: let TensorFlow's start-up messages through
    cpu_replicas = 0  # split the CPU into this many logical devices (0: leave it whole)
    multi_worker = False  # make the MultiWorkerMirroredStrategy at start-up
    multi_worker_strategy = None  # the strategy made then
    threads = 0  # intra-op threads (0: TensorFlow's choice, all cores); one of `compare --jobs` workers
    compile_cache = None  # the persistent XLA cache's Session, when on (see compile_cache.py)


RUNTIME = _RuntimeSettings()


def set_verbose(verbose: bool) -> None:
    """With `--debug`, let TensorFlow's own start-up messages through."""
    RUNTIME.verbose = verbose


def request_cpu_replicas(count: int) -> None:
    """Ask for `count` logical CPU devices; must come before TensorFlow starts.

    TensorFlow fixes its devices when its runtime initialises (at the first import
    here), so the CLI calls this before anything imports the core.
    """
    if getattr(tensorflow, "_ready", False) and count != RUNTIME.cpu_replicas:
        from dlcli.errors import ConfigError

        raise ConfigError("--cpu-replicas must be chosen before TensorFlow starts (start a new dlcli process)")
    RUNTIME.cpu_replicas = count


def request_threads(count: int) -> None:
    """Use `count` threads for TensorFlow's (and XLA's) kernels; before TensorFlow starts."""
    if getattr(tensorflow, "_ready", False) and count != RUNTIME.threads:
        from dlcli.errors import ConfigError

        raise ConfigError("thread counts must be chosen before TensorFlow starts (start a new dlcli process)")
    RUNTIME.threads = count


def request_multi_worker() -> None:
    """Collective ops must be configured before TensorFlow's runtime starts, so the
    multi-worker strategy is made right at the import (from TF_CONFIG)."""
    if getattr(tensorflow, "_ready", False) and not RUNTIME.multi_worker:
        from dlcli.errors import ConfigError

        raise ConfigError("--strategy multi-worker must be chosen before TensorFlow starts (start a new dlcli process)")
    RUNTIME.multi_worker = True


@contextlib.contextmanager
def _stderr_fd_silenced():
    if RUNTIME.verbose:
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


@contextlib.contextmanager
def held_interrupt(*, keep_ignored: bool = False):
    """Hold a first Ctrl-C (the context yields a function: was one received?); a second
    one raises KeyboardInterrupt at once. `keep_ignored`: a SIGINT the process was
    started ignoring stays ignored. Off the main thread, nothing is held."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)
    if keep_ignored and previous in (signal.SIG_IGN, None):
        yield lambda: False
        return
    received = []

    def handler(signum, frame):
        if received:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        received.append(signum)

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _interrupt_after_loading():
    """Hold a Ctrl-C that comes while TensorFlow loads, and raise it once it has.

    `import tensorflow` runs seconds of Python inside C extensions; a KeyboardInterrupt
    raised in there was seen to leave the process to die of the signal at exit
    (CHANGES 0.3.5). Raised here, after the import, it reaches the command's one
    handler. A second Ctrl-C stops at once; a SIGINT the process was started ignoring
    stays ignored."""
    with held_interrupt(keep_ignored=True) as interrupted:
        yield
    if interrupted():
        raise KeyboardInterrupt


def tensorflow():
    """Return the `tensorflow` module, importing and initialising it on first use."""
    if "tensorflow" in sys.modules and getattr(tensorflow, "_ready", False):
        return sys.modules["tensorflow"]
    from dlcli.core import compile_cache

    # XLA reads its flags (the cache folder among them) when TensorFlow starts.
    RUNTIME.compile_cache = compile_cache.start()
    if RUNTIME.compile_cache is not None and not RUNTIME.verbose:
        # Loading a cached executable logs two harmless ERROR lines from TensorFlow's
        # C++ (a text-format probe of the binary entry, and CPU tuning flags it takes
        # for missing features); real failures still reach Python as exceptions.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _interrupt_after_loading(), _stderr_fd_silenced():
        import tensorflow as tf

        if RUNTIME.multi_worker:
            RUNTIME.multi_worker_strategy = tf.distribute.MultiWorkerMirroredStrategy()
        if RUNTIME.threads:
            tf.config.threading.set_intra_op_parallelism_threads(RUNTIME.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        if RUNTIME.cpu_replicas > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(RUNTIME.cpu_replicas)]
            )
        tf.config.list_logical_devices()  # device set-up is where CUDA probing prints
    tf.get_logger().setLevel("ERROR")
    tensorflow._ready = True
    return tf
