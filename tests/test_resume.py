"""`dlcli resume`: exact continuation, TensorBoard continuity, and clean refusals."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import (
    assert_clean_refusal,
    invoke,
    invoke_json,
    stop_process,
    subprocess_env,
    wait_until,
)

from dlcli.cli import cli
from dlcli.core import summaries

# Dropout and batch norm make the test strict: their RNG and moving statistics must
# come back too. 512 examples / batch 64 = 8 steps an epoch.
MODEL = ["--layers", "3", "--units", "32", "--dropout", "0.3", "--batchnorm", "--batch-size", "64"]


def checkpoint_values(folder) -> dict:
    import tensorflow as tf

    path = tf.train.latest_checkpoint(str(folder))
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, _ in tf.train.list_variables(path)
        if not name.startswith(("_CHECKPOINTABLE", "save_counter"))
    }


def assert_same_state(a, b):
    """Every variable of the latest checkpoints equal, bit for bit: the diagnostics'
    too (the gradient-norm sums, the update ratio's W_p, the logging window's sums),
    also for a run whose target was raised on resume."""
    va, vb = checkpoint_values(a), checkpoint_values(b)
    assert va.keys() == vb.keys()
    different = [k for k in va if not np.array_equal(va[k], vb[k])]
    assert not different, f"differ after resume: {different[:5]}"


def mnist(runner, data, name, *extra):
    return invoke_json(runner, "mnist", "--data", data, *MODEL, "--name", name, *extra)


def interrupt_after(folder, step):
    """Leave `folder` as a kill right after the checkpoint at `step` would: later
    checkpoints gone, the record still 'running' (the event files keep later steps)."""
    import tensorflow as tf

    for p in folder.glob("ckpt-*"):
        if int(p.name.split("-")[1].split(".")[0]) > step:
            p.unlink()
    kept = sorted(int(p.name[5:-6]) for p in folder.glob("ckpt-*.index"))
    tf.compat.v1.train.update_checkpoint_state(
        str(folder), f"ckpt-{step}", all_model_checkpoint_paths=[f"ckpt-{s}" for s in kept]
    )
    record = json.loads((folder / "run.json").read_text())
    record.update(status="running", result=None)
    (folder / "run.json").write_text(json.dumps(record))


def assert_strictly_increasing(logdir):
    for split in ("train", "test"):
        for tag, series in summaries.read_scalars(logdir, split).items():
            steps = [s for s, _ in series]
            assert steps == sorted(set(steps)), f"{split}/{tag}: {steps}"


@pytest.mark.slow
@pytest.mark.fresh_loops  # built here, not restarted: tests/conftest.py
def test_resume_at_an_epoch_boundary_is_exact(runner, workdir, digits_npz):
    whole = mnist(runner, digits_npz, "whole", "--epochs", "3")
    mnist(runner, digits_npz, "part", "--epochs", "1")
    resumed = invoke_json(runner, "resume", "checkpoints/part", "--epochs", "3")
    assert resumed["steps"] == whole["steps"] == 24
    assert resumed["accuracy"] == whole["accuracy"] and resumed["loss"] == whole["loss"]
    assert_same_state(workdir / "checkpoints/whole", workdir / "checkpoints/part")
    assert json.loads((workdir / "checkpoints/part/run.json").read_text())["target_epochs"] == 3


@pytest.mark.slow
@pytest.mark.fresh_loops  # built here, not restarted: tests/conftest.py
def test_resume_mid_epoch_is_exact_and_tensorboard_stays_continuous(runner, workdir, digits_npz):
    whole = mnist(runner, digits_npz, "whole", "--epochs", "3", "--log-every", "2")
    cut = mnist(runner, digits_npz, "cut", "--epochs", "3", "--log-every", "2", "--save-every", "5", "--keep", "99")
    interrupt_after(workdir / "checkpoints/cut", 10)  # epoch 2, step 2 of 8
    resumed = invoke_json(runner, "resume", "checkpoints/cut")
    assert resumed["accuracy"] == whole["accuracy"] and resumed["loss"] == whole["loss"]
    assert_same_state(workdir / "checkpoints/whole", workdir / "checkpoints/cut")
    assert_strictly_increasing(cut["logdir"])
    # The resumed run's series are the uninterrupted run's, point for point.
    for split in ("train", "test"):
        assert summaries.read_scalars(cut["logdir"], split) == summaries.read_scalars(whole["logdir"], split)


@pytest.mark.slow
def test_a_restarted_loop_trains_exactly_what_a_new_one_does(workdir, digits_npz):
    from dataclasses import replace

    from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec
    from dlcli.core import session
    from dlcli.core.reuse import Reuse

    # Runs of one architecture that share a Reuse share a compiled loop (compare's
    # variants and seeds): the third run reuses the loop the second one trained with
    # another initializer, seed and learning rate (an optimizer variable the restart
    # sets), and must still end bit for bit where the first did.
    base = RunConfig(
        task="mnist", name="first",
        model=ModelSpec(layers=3, units=32, dropout=0.3, batchnorm=True, init="normal"),
        train=TrainSpec(epochs=2, batch_size=64, seed=0), data=DataSpec(path=str(digits_npz)),
    )  # fmt: skip
    reuse = Reuse()
    first = session.train(base, reuse=reuse)
    loop = reuse.loop[1]
    other = replace(base, name="other", model=replace(base.model, init="he"),
                    train=replace(base.train, epochs=1, seed=7, lr=0.01))  # fmt: skip
    restarted = session.train(other, reuse=reuse)
    assert reuse.loop[1] is loop, "the loop was built again instead of restarted"
    # Another architecture between them (a comparison's rounds go variant by variant)
    # gets a loop of its own and keeps the first one.
    session.train(replace(base, name="wider", model=replace(base.model, units=48), train=replace(base.train, epochs=1)),
                  reuse=reuse)  # fmt: skip
    assert reuse.loop[1] is not loop and len(reuse.loops) == 2
    again = session.train(replace(base, name="again"), reuse=reuse)
    assert reuse.loop[1] is loop
    assert (again.loss, again.accuracy) == (first.loss, first.accuracy)
    assert_same_state(workdir / "checkpoints/first", workdir / "checkpoints/again")
    assert summaries.read_scalars(again.logdir, "train") == summaries.read_scalars(first.logdir, "train")
    # And runs that share no Reuse share nothing: the restarted run is what a new loop
    # trains at its learning rate.
    fresh = Reuse()
    alone = session.train(replace(other, name="alone"), reuse=fresh)
    assert fresh.loop[1] is not loop
    assert (alone.loss, alone.accuracy) == (restarted.loss, restarted.accuracy)
    assert_same_state(workdir / "checkpoints/other", workdir / "checkpoints/alone")


def test_an_event_file_made_within_the_same_second_still_sorts_last(tmp_path):
    # TensorBoard reads event files in name order: events.out.tfevents.<second>.<host>.
    # <pid>.<n>.v2. An earlier file of this very second whose n has more digits would
    # sort after a new one unless the new one is made in a later second.
    earlier = summaries.Summaries(tmp_path / "earlier", model=None)
    earlier.scalars("train", 1, loss=1.0)
    earlier.close()
    (made,) = summaries.event_files(tmp_path / "earlier")
    prefix, _, version = made.name.rsplit(".", 2)
    (tmp_path / "run" / "train").mkdir(parents=True)
    made.rename(tmp_path / "run" / "train" / f"{prefix}.999999999.{version}")
    later = summaries.Summaries(tmp_path / "run", model=None)
    later.scalars("train", 2, loss=2.0)
    later.close()
    assert summaries.read_scalars(tmp_path / "run", "train") == {"loss": [(1, 1.0), (2, 2.0)]}


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """MODEL trained for one epoch, once for the file: its checkpoint folder."""
    from click.testing import CliRunner
    from conftest import fixture_folder

    with fixture_folder(tmp_path_factory, "one-epoch") as (folder, data):
        invoke_json(CliRunner(), "mnist", "--data", data, *MODEL, "--epochs", "1", "--name", "one", "--quiet",
                    "--logdir", folder / "logs", "--checkpoint-dir", folder / "checkpoints")  # fmt: skip
    return folder / "checkpoints/one"


@pytest.fixture
def finished(one_epoch, workdir):
    """A copy of that finished run in this test's folder (checkpoints/done), to resume,
    lock or damage as if `dlcli mnist ... --name done` had trained it here."""
    from dlcli.core.runs import RunFolder

    RunFolder.open(one_epoch).copy_to(workdir / "checkpoints/done", logdir=workdir / "logs/done")
    return workdir / "checkpoints/done"


@pytest.mark.slow
def test_resume_of_a_finished_run_says_so(runner, finished):
    result = invoke(runner, "resume", "checkpoints/done")
    assert "already finished" in result.stdout
    assert invoke_json(runner, "resume", "checkpoints/done")["steps"] == 8


@pytest.mark.slow
def test_resume_xor(runner, workdir):
    whole = invoke_json(runner, "xor", "--epochs", "3000", "--name", "w")
    invoke_json(runner, "xor", "--epochs", "1200", "--name", "p")
    resumed = invoke_json(runner, "resume", "checkpoints/p", "--epochs", "3000")
    assert resumed["loss"] == whole["loss"]
    assert_same_state(workdir / "checkpoints/w", workdir / "checkpoints/p")


def test_architecture_flags_cannot_change(runner, finished):
    result = runner.invoke(cli, ["resume", "checkpoints/done", "--units", "64"])
    assert_clean_refusal(result, "--units cannot change on resume", exit_code=2)


@pytest.mark.slow
def test_bad_run_folders(runner, workdir, finished):
    folder = finished
    (workdir / "empty").mkdir()
    assert_clean_refusal(runner.invoke(cli, ["resume", "nowhere"]), "nowhere is not a folder")
    assert_clean_refusal(runner.invoke(cli, ["resume", "empty"]), "not a dlcli run folder")

    record = (folder / "run.json").read_text()
    (folder / "run.json").write_text(record.replace('"format": 1', '"format": 99'))
    assert_clean_refusal(runner.invoke(cli, ["resume", str(folder)]), "format 99", "reads format 1")
    (folder / "run.json").write_text("{ not json")
    assert_clean_refusal(runner.invoke(cli, ["resume", str(folder)]), "run.json cannot be read")
    (folder / "run.json").write_text(record)

    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    for index in folder.glob("ckpt-*.data-*"):
        index.write_bytes(b"garbage" * 10)
    corrupt = runner.invoke(cli, ["resume", str(folder), "--epochs", "2"])
    assert corrupt.exit_code == 1
    assert_clean_refusal(corrupt, "cannot restore")
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith("ckpt-")}
    assert after["run.json"] == before["run.json"]  # nothing overwritten

    for p in folder.glob("ckpt-*"):
        p.unlink()
    (folder / "checkpoint").unlink()
    assert_clean_refusal(runner.invoke(cli, ["resume", str(folder)]), "no checkpoint")


@pytest.mark.slow
def test_a_folder_in_use_is_refused(runner, finished):
    fd = os.open("checkpoints/done/.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = runner.invoke(cli, ["resume", "checkpoints/done", "--epochs", "2"])
        assert_clean_refusal(result, "in use by another dlcli process")
    finally:
        os.close(fd)
    invoke(runner, "resume", "checkpoints/done", "--epochs", "2", "--json")


# 40 epochs of batch 8 (2560 steps, seconds of training): a kill or Ctrl-C lands mid-run.
LONG = [*MODEL[:-2], "--batch-size", "8", "--epochs", "40"]


@pytest.fixture(scope="module")
def straight_long(tmp_path_factory):
    """LONG trained straight through once for the file: (its data file, its --json
    result, its checkpoint folder). Where a run saves does not change its numbers."""
    from click.testing import CliRunner
    from conftest import fixture_folder

    with fixture_folder(tmp_path_factory, "straight") as (folder, data):
        result = invoke_json(CliRunner(), "mnist", "--data", data, *LONG, "--name", "whole", "--quiet",
                             "--logdir", folder / "logs", "--checkpoint-dir", folder / "checkpoints")  # fmt: skip
    return data, result, folder / "checkpoints/whole"


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(runner, workdir, straight_long):
    data, whole, whole_folder = straight_long
    args = ["--data", str(data), *LONG, "--save-every", "50"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcli", "mnist", *args, "--name", "killed", "--quiet"],
        cwd=workdir, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    state = workdir / "checkpoints/killed/checkpoint"
    wait_until(lambda: state.exists() and "ckpt-0" not in state.read_text().splitlines()[0], proc,
               what="a checkpoint past the first")  # fmt: skip
    stop_process(proc, signal.SIGKILL)
    record = json.loads((workdir / "checkpoints/killed/run.json").read_text())
    assert record["status"] == "running"

    resumed = invoke_json(runner, "resume", "checkpoints/killed")
    assert resumed["steps"] == whole["steps"] == 40 * 64
    assert resumed["accuracy"] == whole["accuracy"]
    assert_same_state(whole_folder, workdir / "checkpoints/killed")
    assert_strictly_increasing(resumed["logdir"])


@pytest.mark.slow
def test_ctrl_c_saves_the_current_step_exits_130_and_resumes_exactly(runner, workdir, straight_long):
    data, whole, whole_folder = straight_long
    # Saving every 1000 steps: the checkpoint after Ctrl-C is the current step's, not a scheduled one.
    args = ["--data", str(data), *LONG, "--save-every", "1000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcli", "mnist", *args, "--name", "stopped", "--quiet"],
        cwd=workdir, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    events = workdir / "logs/stopped/train"
    wait_until(lambda: list(events.glob("events.*")), proc, what="training to start")
    time.sleep(0.3)  # well inside training: 2560 steps take seconds
    stop_process(proc, signal.SIGINT)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr[-800:]
    assert "checkpoint saved, continue with `dlcli resume checkpoints/stopped`" in stderr
    assert "Traceback" not in stderr
    record = json.loads((workdir / "checkpoints/stopped/run.json").read_text())
    assert record["status"] == "interrupted"
    import tensorflow as tf

    saved = int(tf.train.latest_checkpoint("checkpoints/stopped").rsplit("-", 1)[1])
    assert 0 < saved < 40 * 64

    resumed = invoke_json(runner, "resume", "checkpoints/stopped")
    assert resumed["accuracy"] == whole["accuracy"]
    assert_same_state(whole_folder, workdir / "checkpoints/stopped")
