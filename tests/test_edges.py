"""Nothing lost at the edges (issue 25): refusals before TensorFlow, Ctrl-C outside the
training loop, a run killed before its first checkpoint, recorded times kept, malformed
ledger lines, wrong-typed API arguments and a closed pipe."""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_clean_refusal, invoke, invoke_json, stop_process, subprocess_env, wait_until

import dlcli
from dlcli.cli import cli
from dlcli.errors import DlcliError, TrainingInterrupted

XOR = ["xor", "--epochs", "200", "--quiet"]
COMPARE = ["compare", "--task", "xor", "--vary", "lr=0.5,1.0", "--epochs", "200", "--quiet"]

# -- refusals before TensorFlow --------------------------------------------------------

# One fresh interpreter for the whole list: each bad input through the CLI in-process,
# then the check that nothing so far imported TensorFlow (the first one that does fails,
# named). Exit codes and a word of each message are checked on the way.
REFUSALS = r'''
import fcntl, json, os, sys
from click.testing import CliRunner
from dlcli.cli import cli
from dlcli.config import task_config

def record(name, status="finished", target=5):
    folder = f"checkpoints/{name}"
    os.makedirs(folder)
    config = task_config("xor", {"epochs": target}, name=name, logdir="logs", checkpoint_dir="checkpoints")
    json.dump({"format": 1, "run": name, "task": "xor", "config": config.to_dict(), "logdir": os.path.abspath(f"logs/{name}"),
               "target_epochs": target, "status": status, "result": None}, open(f"{folder}/run.json", "w"))
    return folder

record("finished-no-ckpt")
record("busy", status="created")
busy = os.open("checkpoints/busy/.lock", os.O_RDWR | os.O_CREAT)
fcntl.flock(busy, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another process training in it
os.makedirs("ckpts-only-folder/a/b")
open("a-file", "w").close()
with open("ledger-bad.jsonl", "w") as f:
    f.write('{"torn\n')
CASES = [
    (["resume", "nowhere/"], 1, "not a folder"),
    (["resume", "ckpts-only-folder"], 1, "no run.json"),
    (["resume", "checkpoints/finished-no-ckpt"], 1, "no checkpoint"),
    (["resume", "checkpoints/finished-no-ckpt", "--epochs", "2"], 1, "below the run's target"),
    (["resume", "checkpoints/busy"], 1, "in use by another dlcli process"),
    (["inspect", "checkpoints"], 1, "checkpoints/busy"),
    (["inspect", "nowhere"], 1, "not a folder"),
    (["mnist", "--data", "missing.npz"], 1, "missing.npz: no such file"),
    (["xor", "--name", "x" * 300], 2, "at most 200 bytes"),
    (["xor", "--name", "finished-no-ckpt"], 1, "already exists"),
    (["mnist", "--name", "a/b"], 2, "invalid run name"),
    (["xor", "--checkpoint-dir", "a-file/sub"], 1, "a-file is not a folder"),
    (["xor", "--logdir", "a-file/sub"], 1, "a-file is not a folder"),
    (["compare", "--data", "missing.npz", "--vary", "lr=0.1,0.2"], 1, "missing.npz: no such file"),
    (["compare", "--task", "xor", "--prune", "--seeds", "auto"], 2, "exclude each other"),
    (["compare", "--task", "xor", "--data", "x.npz"], 2, "xor runs have no data"),
]
runner = CliRunner()
for args, code, needle in CASES:
    result = runner.invoke(cli, args)
    out = result.output
    assert result.exit_code == code, (args, result.exit_code, out)
    assert needle in out and "internal error" not in out, (args, out)
    assert "tensorflow" not in sys.modules, f"{args[:3]} imported TensorFlow before refusing"
# A malformed ledger is a warning, read before TensorFlow too (a dry run needs none).
os.makedirs("logs/compare", exist_ok=True)
os.replace("ledger-bad.jsonl", "logs/compare/results.jsonl")
result = runner.invoke(cli, ["compare", "--task", "xor", "--dry-run"])
assert result.exit_code == 0 and "results.jsonl line 1 is set aside" in result.output, result.output
assert "tensorflow" not in sys.modules
print("ok", len(CASES))
'''


def test_every_check_that_needs_no_tensorflow_refuses_before_it_loads(workdir):
    out = subprocess.run([sys.executable, "-c", REFUSALS], capture_output=True, text=True, env=subprocess_env(),
                         cwd=workdir)  # fmt: skip
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-3000:]


def test_a_folder_of_runs_is_answered_with_the_runs_it_holds(runner, workdir):
    invoke(runner, *XOR[:1], "--epochs", "5", "--name", "one", "--quiet")
    result = runner.invoke(cli, ["inspect", "checkpoints"])
    assert_clean_refusal(result, "holds 1 run folder, not one run", "checkpoints/one", exit_code=1)


# -- Ctrl-C outside the training loop ---------------------------------------------------


def test_ctrl_c_while_tensorflow_loads_says_what_happened_and_what_to_run(workdir):
    # A real SIGINT once TensorFlow's library is mapped into the process (it then takes
    # seconds more to load): the command runs, no run folder exists yet. Waiting for the
    # library, not for a time, keeps the moment the same on a slow or loaded machine.
    args = [sys.executable, "-m", "dlcli", "xor", "--epochs", "5", "--name", "early", "--quiet"]
    proc = subprocess.Popen(args, cwd=workdir, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    maps = Path(f"/proc/{proc.pid}/maps")
    wait_until(lambda: "libtensorflow" in maps.read_text(), proc, what="TensorFlow to start loading")
    # Which signals the child ignores and catches at that moment (hex masks, bit 2 is
    # SIGINT): a suite started in the background passed its ignored SIGINT on to this
    # child, which then ended with exit 0 (conftest now starts every worker with Ctrl-C on).
    masks = [line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if line.startswith("Sig")]
    code = stop_process(proc, signal.SIGINT)
    assert code == 130, f"exit {code}; the child's {masks}; the worker's SIGINT handler {signal.getsignal(signal.SIGINT)!r}"
    err = proc.stderr.read()
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("interrupted"), err[-2000:]
    assert "run `dlcli xor --epochs 5 --name early --quiet` again" in lines[-1], err[-2000:]
    assert "Traceback" not in err and not (workdir / "checkpoints/early").exists()


@pytest.fixture
def interrupt(monkeypatch):
    """interrupt(n, exc): the n-th run a comparison (or a command) hands to
    `runners.execute` raises `exc` instead, as Ctrl-C there would."""
    from dlcli.comparison import runners

    real = runners.execute

    def arm(n, exc):
        calls = []

        def execute(task, **kwargs):
            calls.append(task)
            if len(calls) == n:
                raise exc
            return real(task, **kwargs)

        monkeypatch.setattr(runners, "execute", execute)

    return arm


def test_ctrl_c_between_two_runs_of_a_compare_says_rerun_the_compare(runner, workdir, interrupt):
    interrupt(2, KeyboardInterrupt())
    result = runner.invoke(cli, COMPARE)
    assert result.exit_code == 130, result.output
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("interrupted; the runs finished before it are in the ledger"), last
    assert f"continue the comparison with `dlcli {' '.join(COMPARE)}`" in last
    assert "dlcli resume" not in result.stderr


def test_ctrl_c_inside_a_run_of_a_compare_advises_the_compare_not_resume(runner, workdir, interrupt):
    what = "interrupted at step 37 of run compare/x/lr=1.0-s0; checkpoint saved"
    inside = TrainingInterrupted(f"{what}, continue with `dlcli resume checkpoints/compare/x/lr=1.0-s0`")
    inside.what = what  # what a run's Ctrl-C carries (session.fit)
    interrupt(1, inside)
    result = runner.invoke(cli, COMPARE)
    assert result.exit_code == 130, result.output
    assert f"{what}; the runs finished before it are in the ledger: continue the comparison with `dlcli " \
        f"{' '.join(COMPARE)}`" in result.stderr
    assert "dlcli resume" not in result.stderr
    # The API hears the same: run the comparison again.
    interrupt(1, inside)
    with pytest.raises(TrainingInterrupted, match="run the same comparison again"):
        dlcli.compare(task="xor", vary={"lr": [0.5, 1.0]}, epochs=200, quiet=True)


# -- a run killed before its first checkpoint --------------------------------------------


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(runner, workdir):
    from dlcli.api import run_config
    from dlcli.core.runs import RunFolder
    from test_resume import assert_same_state

    # The state a SIGKILL leaves while the model is built and compiled: run.json, no
    # checkpoint, maybe a torn event file.
    config, _ = run_config("xor", {"epochs": 200, "name": "early"})
    RunFolder.create(config, auto_name=False).unlock()
    (workdir / "logs/early/train").mkdir(parents=True)
    (workdir / "logs/early/train/events.out.tfevents.1.torn").write_bytes(b"\x00torn")
    # Every command gives the same advice, and it works.
    assert "dlcli resume checkpoints/early" in runner.invoke(cli, ["xor", "--name", "early"]).output
    assert "dlcli resume checkpoints/early" in runner.invoke(cli, ["inspect", "checkpoints/early"]).output
    resumed = invoke_json(runner, "resume", "checkpoints/early", "--quiet")
    straight = invoke_json(runner, *XOR, "--name", "straight")
    assert resumed["steps"] == straight["steps"] == 200 and resumed["accuracy"] == straight["accuracy"]
    assert resumed["loss"] == straight["loss"]
    assert_same_state(workdir / "checkpoints/straight", workdir / "checkpoints/early")
    assert not (workdir / "logs/early/train/events.out.tfevents.1.torn").exists()
    assert "| output" in invoke(runner, "inspect", "checkpoints/early").stdout  # its step-0 diagnostics too


# -- recorded times --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_resume_that_trains_nothing_keeps_the_recorded_time(runner, workdir):
    first = invoke_json(runner, *XOR, "--name", "ts1")
    again = invoke_json(runner, "resume", "checkpoints/ts1")
    record = json.loads((workdir / "checkpoints/ts1/run.json").read_text())["result"]
    assert first["train_seconds"] > 0.005  # a real run's time, not a no-op's
    assert again["train_seconds"] == record["train_seconds"] == first["train_seconds"]


@pytest.mark.slow
def test_a_compare_run_read_back_after_a_kill_before_its_ledger_line_keeps_its_seconds(runner, workdir):
    first = json.loads(invoke(runner, *COMPARE, "--format", "json").stdout)
    ledger = workdir / "logs/compare/results.jsonl"
    lines = ledger.read_text().splitlines()
    ledger.write_text(lines[0] + "\n")  # killed after the second run finished, before its line
    again = json.loads(invoke(runner, *COMPARE, "--format", "json").stdout)
    assert [r["seconds"] for r in again] == [r["seconds"] for r in first]
    assert json.loads(ledger.read_text().splitlines()[1])["seconds"] == json.loads(lines[1])["seconds"] > 0.005


# -- malformed ledger lines ---------------------------------------------------------------------


def _entry(**changes) -> dict:
    from dlcli.comparison import KEY_FORMAT

    entry = {"key": "k", "key_format": KEY_FORMAT, "variant": "v", "seed": 0, "run": "r", "accuracy": 0.75,
             "loss": 0.5, "seconds": 1.5, "epochs": 3, "trained_steps": 3, "params": 9, "grad_ratio": None,
             "diagnostics": None}  # fmt: skip
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not ...}


MALFORMED = {
    "torn in the middle": '{"key": "k", "accur',
    "not an object": "[1, 2]",
    "accuracy as text": json.dumps(_entry(accuracy="1.0")),
    "no seed": json.dumps(_entry(seed=...)),
    "no key": json.dumps(_entry(key=...)),
    "accuracy out of range": json.dumps(_entry(accuracy=1.5)),
    "negative seed": json.dumps(_entry(seed=-1)),
    "seed as a float": json.dumps(_entry(seed=1.0)),
    "NaN loss": json.dumps(_entry(loss=float("nan"))),
    "seconds as a bool": json.dumps(_entry(seconds=True)),
    "diagnostics as a list": json.dumps(_entry(diagnostics=[])),
}


@pytest.fixture
def warnings():
    """The warnings dlcli logs during the test (whatever handlers the CLI has set up)."""
    heard = []

    class Heard(logging.Handler):
        def emit(self, record):
            heard.append(record.getMessage())

    handler = Heard(logging.WARNING)
    logger = logging.getLogger("dlcli")
    logger.addHandler(handler)
    yield heard
    logger.removeHandler(handler)


@pytest.mark.parametrize("line", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_ledger_line_is_set_aside_with_one_warning_naming_file_and_line(workdir, warnings, line):
    from dlcli.comparison import Ledger

    path = workdir / "results.jsonl"
    good = json.dumps(_entry(key="other"))
    path.write_text(f"{good}\n{line}\n{good}\n")
    ledger = Ledger.read(path)
    ledger.refresh()  # nothing new: no second warning
    assert list(ledger.entries) == ["other"] and ledger.malformed == [2] and ledger.older == 0
    assert len(warnings) == 1 and f"{path} line 2 is set aside" in warnings[0] and "trains again" in warnings[0]


def test_a_whole_valid_line_and_an_older_dlcli_line_are_not_warned_about(workdir, warnings):
    from dlcli.comparison import Ledger

    path = workdir / "results.jsonl"
    path.write_text(json.dumps(_entry()) + "\n" + json.dumps(_entry(key_format=2, seed=...)) + "\n")
    ledger = Ledger.read(path)
    assert list(ledger.entries) == ["k"] and ledger.older == 1 and not warnings
    forced = Ledger.read(path, force=True)  # --force: line numbers still count from the top
    with open(path, "a") as f:
        f.write("torn\n")
    forced.refresh()
    assert forced.malformed == [3] and "line 3 is set aside" in warnings[0]


@pytest.mark.slow
def test_a_compare_over_a_malformed_ledger_warns_and_trains_that_run_again(runner, workdir):
    one = ["compare", "--task", "xor", "--vary", "lr=1.0", "--epochs", "50", "--quiet", "--format", "json"]
    first = json.loads(invoke(runner, *one).stdout)
    ledger = workdir / "logs/compare/results.jsonl"
    entry = json.loads(ledger.read_text())
    ledger.write_text('{"torn": \n' + json.dumps({**entry, "accuracy": str(entry["accuracy"])}) + "\n")
    result = invoke(runner, *one)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "logs/compare/results.jsonl line 1 is set aside" in warnings[0], result.stderr
    assert "line 2 is set aside: accuracy must be a number from 0 to 1, got '" in warnings[1]
    assert json.loads(result.stdout)[0]["accuracy"] == first[0]["accuracy"]
    assert json.loads(ledger.read_text().splitlines()[-1])["accuracy"] == entry["accuracy"]  # the run, again


# -- wrong-typed API arguments -------------------------------------------------------------


class Accepted(Exception):
    """The arguments got past every check (the test stops there: nothing trains)."""


def _api_cases():
    wrong = {"flag": [5, "yes"], "list": [5, object()], "any": [object(), [1, 2]]}
    kinds = {"quiet": "flag", "force": "flag", "dry_run": "flag", "yes": "flag", "what": "list", "vary": "list"}
    for name in ("xor", "mnist", "compare", "resume", "inspect"):
        for param in inspect.signature(getattr(dlcli, name)).parameters:
            for value in wrong[kinds.get(param, "any")]:
                yield pytest.param(name, param, value, id=f"{name}-{param}={type(value).__name__}")


@pytest.mark.parametrize("function,keyword,value", list(_api_cases()))
def test_every_wrong_typed_api_argument_is_a_dlcli_error(workdir, monkeypatch, function, keyword, value):
    import dlcli.api as api
    import dlcli.comparison.request as request
    from dlcli import inspection
    from dlcli.core.runs import RunFolder

    def accepted(*args, **kwargs):
        raise Accepted

    monkeypatch.setattr(api, "check_before_training", accepted, raising=False)  # (no such check before issue 25)
    monkeypatch.setattr(request, "prepare", accepted)
    monkeypatch.setattr(RunFolder, "for_resume", classmethod(accepted), raising=False)
    monkeypatch.setattr(inspection, "check", accepted, raising=False)
    call = getattr(dlcli, function)
    first = inspect.signature(call).parameters
    positional = next(iter(first)) if function in ("resume", "inspect") else None
    args, keywords = (), {keyword: value}
    if positional == keyword:
        args, keywords = (value,), {}
    elif positional:
        args = ("checkpoints/run",)
    with pytest.raises(DlcliError) as refused:
        call(*args, **keywords)
    assert "\n" not in str(refused.value)


# -- a closed pipe -------------------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly(workdir):
    # A real pipe whose reader is gone before the plan is printed (no TensorFlow: a dry run).
    proc = subprocess.Popen([sys.executable, "-m", "dlcli", *COMPARE, "--dry-run"], cwd=workdir,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == "", err


@pytest.mark.parametrize("command", [["board", "--list"], [*COMPARE, "--format", "csv", "--dry-run"]],
                         ids=["board", "compare"])  # fmt: skip
def test_a_pipe_closed_while_printing_ends_quietly(runner, workdir, monkeypatch, command):
    import click

    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(click, "echo", lambda *a, err=False, **k: closed() if not err else None)
    monkeypatch.setattr("dlcli.board.list_runs", lambda logdir: [])
    result = runner.invoke(cli, command)
    assert result.exit_code == 0 and "Error" not in result.output, result.output
    assert "Broken pipe" not in result.output


def test_a_ctrl_c_while_tensorflow_loads_is_held_until_it_has_loaded():
    """core.tf_setup holds the first SIGINT during `import tensorflow` (a KeyboardInterrupt
    raised inside the import was seen lost) and raises it after; a second one at once;
    a SIGINT the process ignores stays ignored. The process-level check is
    test_ctrl_c_while_tensorflow_loads_says_what_happened_and_what_to_run."""
    from dlcli.core.tf_setup import _interrupt_after_loading

    ran_on = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the worker's is
    try:
        with pytest.raises(KeyboardInterrupt):
            with _interrupt_after_loading():
                os.kill(os.getpid(), signal.SIGINT)
                ran_on.append("after the first")  # held: the import goes on
        assert ran_on == ["after the first"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back

        with pytest.raises(KeyboardInterrupt):
            with _interrupt_after_loading():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
                ran_on.append("after the second")  # never: the second stops at once
        assert ran_on == ["after the first"]

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with _interrupt_after_loading():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
