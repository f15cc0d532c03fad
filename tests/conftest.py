"""Shared fixtures: a CliRunner, a clean working folder per test, and real digits."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dlcli.cli import cli

# Bytecode caches (__pycache__, git-ignored) as Python writes them by default, even where
# PYTHONDONTWRITEBYTECODE is set (this machine and its CI set it): without them every
# xdist worker parses and assertion-rewrites every test module again at each session
# (the quick loop: 78-88 s without, 64-72 s with; docs/speed.md), and every subprocess
# (`python -m dlcli`, `--jobs` and Dask workers, the notebook's kernel) compiles dlcli
# from source. Set here, before pytest imports the test modules.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# A suite started in the background of a script (`python -m pytest &`, `nohup`, some CI
# runners) inherits SIGINT ignored; Python keeps it ignored, and so does every process
# the suite starts, so a Ctrl-C test's child would ignore its Ctrl-C (fresh clones run
# that way failed so). The Ctrl-C tests stand for a user at a terminal: Ctrl-C works
# here as there. A test wanting the background case sets it in its child (test_board).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Keras reads KERAS_HOME once, at import, and writes keras.json there: point it at an
# empty folder for the whole session so no test sees (or fills) the user's cache.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="dlcli-keras-home-")
# It goes when the session ends (the test's tmp_path folders are pytest's to prune).
atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)
# dlcli's compile cache (~/.cache/dlcli/xla) has a folder of the suite's own, never the
# user's: shared by the session's runs, subprocesses and xdist workers as a user's runs
# share theirs, and kept from one session to the next as a user's is (the quick loop's
# reruns load what the last one compiled). An entry is keyed by TensorFlow's version,
# the machine and XLA's fingerprint of the program, so changed code compiles afresh; the
# cache's own tests use folders of their own. Trimmed to its size limit like any other.
os.environ["DLCLI_COMPILE_CACHE"] = str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "dlcli-compile-cache")

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
SRC = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    """Every test runs in its own empty folder, so logs/ and checkpoints/ land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLCLI_LOGDIR", raising=False)
    monkeypatch.delenv("DLCLI_CHECKPOINT_DIR", raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def signal_handlers_put_back():
    """A test that changes the worker's SIGINT/SIGTERM handler must put it back: a
    SIGINT left ignored is inherited by every process the worker starts afterwards, so a
    later Ctrl-C test's child would ignore its Ctrl-C, in some test orders only; and a
    handler left behind stands in the next in-process test's way. Restored here, and
    the test that left it errors at teardown."""
    watched = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.getsignal(sig) for sig in watched}
    yield
    left = {sig: signal.getsignal(sig) for sig in watched}
    changed = [sig for sig in watched if left[sig] is not before[sig]]
    for sig in changed:
        signal.signal(sig, before[sig])
    if changed:
        pytest.fail(
            "left the worker's signal handlers changed: "
            + ", ".join(f"{signal.Signals(sig).name} {before[sig]!r} -> {left[sig]!r}" for sig in changed),
            pytrace=False,
        )


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args, expect: int = 0):
    """Run `dlcli ARGS` in-process and check the exit code, showing output on failure."""
    result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def invoke_json(runner, *args) -> dict:
    return json.loads(invoke(runner, *args, "--json").stdout)


def assert_clean_refusal(result, *needles: str, exit_code: int | None = None) -> None:
    """A refusal, not a crash: a non-zero exit (`exit_code` when given), exactly one
    'Error:' line naming the problem (every needle in it), and nothing that betrays a
    crash: no exception object other than SystemExit in the CliRunner result (CliRunner
    never prints a traceback, so the output alone cannot show one), and not the
    catch-all 'internal error' line that dlcli prints for an unexpected exception."""
    output = result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"crashed instead of refusing:\n{trace}\noutput:\n{output}")
    assert result.exit_code != 0, output
    if exit_code is not None:
        assert result.exit_code == exit_code, f"exit {result.exit_code}, expected {exit_code}\n{output}"
    assert "Traceback" not in output, output
    assert "internal error" not in output, f"a crash reported as an internal error, not a refusal:\n{output}"
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], errors[0]


def assert_ran(result) -> None:
    """A valid input ran: exit 0 and no exception, with the output shown otherwise."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"crashed:\n{trace}")
    assert result.exit_code == 0, result.stdout + result.stderr


def assert_usage_refused(runner, workdir: Path, args: list, *needles: str) -> None:
    """Bad command-line input: exit 2, one 'Error:' line naming it, nothing written."""
    before = tree(workdir)
    result = runner.invoke(cli, args)
    assert_clean_refusal(result, *needles, exit_code=2)
    assert tree(workdir) == before


def tree(path: Path) -> set[str]:
    """Every file and folder below `path` (to check that nothing was written)."""
    return {str(p.relative_to(path)) for p in Path(path).rglob("*")}


def synthetic_digits(n_train=512, n_test=128, seed=0):
    """Tiny MNIST-shaped uint8 arrays whose class is readable from the pixels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n_train + n_test).astype(np.uint8)
    x = rng.integers(0, 40, (n_train + n_test, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):  # a bright bar whose row says the digit
        x[i, 2 + 2 * label, 4:24] = 255
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def write_synthetic_digits(path: Path) -> Path:
    """`synthetic_digits()` as an .npz at `path`, the keys `--data` reads."""
    x_train, y_train, x_test, y_test = synthetic_digits()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


SHARED_DIGITS = "shared-synthetic.npz"  # in the worker's base temp folder


def shared_digits_file(tmp_path_factory) -> Path:
    """The worker's one synthetic-digits file, written on first use and only read after.

    One path for every test of a worker, not one per test: a run's data spec (its path)
    is part of what decides whether a compiled loop can be reused (core.reuse.loop_key),
    so tests that train the same net on it share the worker's compiled loop (see
    `shared_compiled_loops`). `digits_are_untouched` checks at the end that no test
    changed it."""
    path = tmp_path_factory.getbasetemp() / SHARED_DIGITS
    if not path.exists():
        write_synthetic_digits(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def digits_are_untouched(tmp_path_factory):
    yield
    path = tmp_path_factory.getbasetemp() / SHARED_DIGITS
    if path.exists():
        expected = write_synthetic_digits(path.with_name("expected-synthetic.npz")).read_bytes()
        assert path.read_bytes() == expected, "a test changed the shared synthetic digits; change a copy"


@pytest.fixture
def digits_npz(tmp_path_factory) -> Path:
    return shared_digits_file(tmp_path_factory)


# -- compiled loops shared by the tests of a worker --------------------------------------------
#
# Tracing and compiling a training step costs ~1.5 CPU-s per run (docs/speed.md), and the
# suite trains ~250 runs in-process, most of them one of a few small nets on the same
# synthetic digits. A command given no Reuse makes a fresh one (core.session: a single
# `dlcli mnist` reuses nothing); here every in-process command and comparison gets the
# worker's instead, as a dlcli.Lab's calls share theirs, so a net compiled by one test is
# restarted by the next (core.reuse: the same state as a new loop; that equality is
# tested on its own: test_resume's restarted-loop test, the comparison rerun tests).
# What stays on fresh loops, whatever xdist's scheduling: every subprocess (`python -m
# dlcli`, --jobs, Dask, SIGKILL), the API's functions and Labs (a Reuse of their own),
# every test that patches a function or an item (`monkeypatch.setattr`), and the tests marked
# `fresh_loops` (exact resume at and between epoch ends and to a higher target, the
# seeds' data orders, XOR solved), whose commands each get a new Reuse as outside the
# tests; and the first run of every net in every worker.
WORKER_LOOPS = 64  # the worker's Reuse keeps this many nets (a Reuse keeps 16)


class _WorkerReuse:
    shared = None  # this worker's Reuse; None while a test wants fresh ones
    made = None


def _a_reuse():
    from dlcli.core.reuse import Reuse

    return _WorkerReuse.shared if _WorkerReuse.shared is not None else Reuse()


@pytest.fixture(scope="session", autouse=True)
def shared_compiled_loops():
    from dlcli.comparison import runners
    from dlcli.core import reuse, session

    _WorkerReuse.made = reuse.Reuse()
    _WorkerReuse.shared = _WorkerReuse.made
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(session, "Reuse", _a_reuse)
        patch.setattr(runners, "Reuse", _a_reuse)
        patch.setattr(reuse, "MAX_LOOPS", WORKER_LOOPS)
        yield


class _PatchingMeansFreshLoops(pytest.MonkeyPatch):
    """pytest's monkeypatch, but once a test replaces an attribute or an item (a
    function that may be compiled into a loop, which later tests would then reuse),
    its commands get a new Reuse each, and the worker's is not touched by it."""

    def setattr(self, *args, **kwargs):
        _WorkerReuse.shared = None
        return super().setattr(*args, **kwargs)

    def setitem(self, *args, **kwargs):
        _WorkerReuse.shared = None
        return super().setitem(*args, **kwargs)

    def delattr(self, *args, **kwargs):
        _WorkerReuse.shared = None
        return super().delattr(*args, **kwargs)


@pytest.fixture
def monkeypatch(request):
    """(Overrides pytest's: see _PatchingMeansFreshLoops.) chdir and the environment
    change no compiled function, so `workdir`'s use keeps the worker's loops."""
    patch = _PatchingMeansFreshLoops()
    if request.node.get_closest_marker("fresh_loops"):
        _WorkerReuse.shared = None
    yield patch
    patch.undo()
    _WorkerReuse.shared = _WorkerReuse.made


@contextlib.contextmanager
def fixture_folder(tmp_path_factory, name: str):
    """For a module-scoped fixture that trains once for its file: a folder of its own,
    made the current folder with no DLCLI_LOGDIR/DLCLI_CHECKPOINT_DIR, as `workdir` does
    for a test. Yields (folder, the worker's synthetic digits); tests that change what
    it made work on a copy."""
    folder = tmp_path_factory.mktemp(name)
    data = shared_digits_file(tmp_path_factory)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for variable in ("DLCLI_LOGDIR", "DLCLI_CHECKPOINT_DIR"):
            patch.delenv(variable, raising=False)
        yield folder, data


@pytest.fixture(scope="session")
def real_digits(tmp_path_factory) -> Path:
    """The shared MNIST test set split 8000/2000 into an .npz (skips without ../shared)."""
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST digits not found at {SHARED_MNIST} (only on the dev machines and CI)")
    from dlcli.core import data

    x = data.read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz", images=True)
    y = data.read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz", images=False)
    path = tmp_path_factory.mktemp("real") / "digits.npz"
    np.savez(path, x_train=x[:8000], y_train=y[:8000], x_test=x[8000:], y_test=y[8000:])
    return path


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def assert_python_runs(code: str) -> None:
    """`code` (asserts included) passes in a fresh interpreter: what a new process
    imports, seen without this test process's modules."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert out.returncode == 0, out.stderr


# How long a test waits for a process to show a sign of life (a line, a file) before
# failing. Generous on purpose: a cold first start in a fresh virtualenv (TensorFlow's
# and TensorBoard's first imports, empty caches) on a slow shared machine can take tens
# of seconds. Waiting ends at the signal itself, so a fast machine never waits long.
PATIENCE = 600


def wait_until(condition, proc=None, *, what: str, limit: float = PATIENCE) -> None:
    """Poll `condition()` until it holds; fail if `proc` ends first or after `limit` s."""
    import time

    deadline = time.monotonic() + limit
    while not condition():
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}: {str(err)[-800:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing happened for {limit} s while waiting for {what}")
        time.sleep(0.02)


def read_line(proc, *, limit: float = PATIENCE) -> str:
    """The next line of `proc`'s stdout, waited for as long as the process lives."""
    import select

    ready, _, _ = select.select([proc.stdout], [], [], limit)
    if not ready:
        raise AssertionError(f"no output from the process for {limit} s")
    return proc.stdout.readline()


def stop_process(proc, sig, *, limit: float = PATIENCE) -> int:
    """Send `sig` and wait for the exit; a process that ignores it is killed and fails the test."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the process did not stop within {limit} s of signal {sig}") from None


@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib figure a command saves, {file name: figure}, kept for reading
    back (tests/test_figures.py: figure_problems)."""
    from matplotlib.figure import Figure

    saved, original = {}, Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        saved[getattr(fname, "name", None) or str(fname)] = self
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test that uses a module-scoped fixture of its file joins that file's xdist
    group, so the fixture (a trained run or comparison) is made once, on one worker;
    the file's other tests still go to whichever worker is free. (Before xdist reads
    the groups: it runs after this hook.)"""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        for name in item.fixturenames:
            defs = definitions.name2fixturedefs.get(name)
            if defs and defs[-1].scope == "module" and item.get_closest_marker("xdist_group") is None:
                item.add_marker(pytest.mark.xdist_group(item.module.__name__))
                break


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Say so when xdist's groups did not take (pytest 9.2 with pytest-xdist 3.8: setup.cfg
    pins pytest below it): the suite still passes, but each worker that runs a file's
    tests trains its module-scoped runs again (~2 minutes more on two cores)."""
    if not getattr(session.config.option, "loadgroup", False):  # -n 0, or xdist not installed
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        import warnings

        warnings.warn(pytest.PytestWarning(
            f"pytest-xdist's --dist loadgroup did not group {len(lost)} tests (pytest {pytest.__version__}): every "
            f"worker trains their module-scoped runs again; install pytest<9.2 (setup.cfg's test extra)"
        ))  # fmt: skip

