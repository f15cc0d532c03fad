"""Shared fixtures: a CliRunner, a clean working folder per test, and real digits."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
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


@pytest.fixture
def digits_npz(tmp_path) -> Path:
    return write_synthetic_digits(tmp_path / "synthetic.npz")


@contextlib.contextmanager
def fixture_folder(tmp_path_factory, name: str):
    """For a module-scoped fixture that trains once for its file: a folder of its own
    holding synthetic digits (synthetic.npz), made the current folder with no
    DLCLI_LOGDIR/DLCLI_CHECKPOINT_DIR, as `workdir` does for a test. Yields (folder,
    data file); tests that change what it made work on a copy."""
    folder = tmp_path_factory.mktemp(name)
    data = write_synthetic_digits(folder / "synthetic.npz")
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
