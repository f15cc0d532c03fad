"""Faults a long training run meets: divergence, torn checkpoints, kills, full disks."""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import (
    PATIENCE,
    assert_clean_refusal,
    invoke,
    invoke_json,
    subprocess_env,
    wait_until,
)
from test_resume import assert_same_state, assert_strictly_increasing, checkpoint_values

from dlcli.cli import cli


def test_divergence_stops_at_once_and_saves_no_nan(runner, workdir, digits_npz):
    args = ["mnist", "--data", str(digits_npz), "--batch-size", "64", "--optimizer", "sgd", "--lr", "1e6",
            "--epochs", "3", "--name", "div"]  # fmt: skip
    result = runner.invoke(cli, args)
    # The loss is checked at every step inside the compiled call: the step is named
    # exactly (the weight check after each call could only name a range of steps).
    assert_clean_refusal(result, "training diverged: the loss became non-finite at step ", "lower --lr", exit_code=1)
    folder = workdir / "checkpoints/div"
    assert json.loads((folder / "run.json").read_text())["status"] == "diverged"
    for name, value in checkpoint_values(folder).items():
        if value.dtype.kind == "f":
            assert np.isfinite(value).all(), name


@pytest.mark.slow
def test_torn_latest_checkpoint_falls_back_to_the_newest_good_one(runner, workdir, digits_npz):
    common = ["--data", str(digits_npz), "--batch-size", "64", "--epochs", "2", "--save-every", "5", "--keep", "9"]
    whole = invoke_json(runner, "mnist", *common, "--name", "whole")
    invoke_json(runner, "mnist", *common, "--name", "torn")
    folder = workdir / "checkpoints/torn"
    data = folder / "ckpt-16.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a kill mid-write
    files_before = sorted(p.name for p in folder.iterdir())
    record = json.loads((folder / "run.json").read_text())
    record.update(status="running", result=None)
    (folder / "run.json").write_text(json.dumps(record))

    result = invoke(runner, "resume", str(folder), "--json")
    assert "warning: checkpoint ckpt-16" in result.stderr and "falling back to ckpt-15" in result.stderr
    resumed = json.loads(result.stdout)
    assert resumed["accuracy"] == whole["accuracy"]
    assert set(files_before) <= {p.name for p in folder.iterdir()}  # nothing deleted
    assert_same_state(workdir / "checkpoints/whole", folder)


@pytest.mark.slow
def test_no_readable_checkpoint_is_one_clear_error(runner, workdir, digits_npz):
    invoke_json(runner, "mnist", "--data", str(digits_npz), "--batch-size", "64", "--save-every", "4", "--name", "bad")
    folder = workdir / "checkpoints/bad"
    for data in folder.glob("ckpt-*.data-*"):
        data.write_bytes(b"\0" * 64)
    result = runner.invoke(cli, ["resume", str(folder), "--epochs", "2"])
    assert_clean_refusal(result, "cannot restore any checkpoint", "ckpt-8", "ckpt-0", exit_code=1)
    assert len(list(folder.glob("ckpt-*.index"))) == 3


@pytest.mark.slow
def test_two_processes_on_one_run_folder(workdir, digits_npz):
    args = [sys.executable, "-m", "dlcli", "mnist", "--data", str(digits_npz), "--batch-size", "8", "--epochs", "400",
            "--name", "shared", "--quiet"]  # fmt: skip  (minutes of work: it is killed long before)
    first = subprocess.Popen(args, cwd=workdir, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (workdir / "checkpoints/shared/checkpoint").exists(), first, what="the first checkpoint")
        second = subprocess.run(
            [sys.executable, "-m", "dlcli", "resume", "checkpoints/shared"],
            cwd=workdir, env=subprocess_env(), capture_output=True, text=True, timeout=PATIENCE,
        )  # fmt: skip
        assert first.poll() is None, "the first run ended before the second could try"
        assert second.returncode == 1
        assert "in use by another dlcli process" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
    # The killed holder leaves no stuck lock.
    fd = os.open(workdir / "checkpoints/shared/.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held
    finally:
        os.close(fd)


@pytest.mark.slow
def test_random_sigkills_during_mnist_and_resume_end_like_an_uninterrupted_run(runner, workdir, digits_npz):
    """Kill the training process at random moments (while it trains, logs, writes
    checkpoints or run.json), resume, kill again, ... then compare with a run never
    interrupted: same weights, same accuracy, continuous TensorBoard series."""
    rng = random.Random(1234)
    args = ["--data", str(digits_npz), "--layers", "3", "--units", "32", "--dropout", "0.3", "--batchnorm",
            "--batch-size", "8", "--epochs", "10", "--save-every", "7", "--log-every", "5", "--keep", "2"]  # fmt: skip
    folder = workdir / "checkpoints/faulty"
    command = [sys.executable, "-m", "dlcli", "mnist", *args, "--name", "faulty", "--quiet"]
    kills = 0
    for attempt in range(4):
        start = newest_checkpoint(folder)
        proc = subprocess.Popen(command, cwd=workdir, env=subprocess_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        # Each kill lands while this process trains: once it has saved a checkpoint past
        # the one it started from (a kill during start-up and compiling, as a fixed wait
        # gave on a slow machine, resumes from the same checkpoint every time and proves
        # nothing about resuming mid-run).
        wait_until(lambda: proc.poll() is not None or newest_checkpoint(folder) > start, what="a new checkpoint")
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read().decode()[-500:]
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        command = [sys.executable, "-m", "dlcli", "resume", "checkpoints/faulty", "--quiet"]
    else:
        invoke(runner, "resume", "checkpoints/faulty", "--json")
    assert kills >= 1
    whole = invoke_json(runner, "mnist", *args, "--name", "whole")
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["result"]["accuracy"] == whole["accuracy"]
    assert_same_state(workdir / "checkpoints/whole", folder)
    assert_strictly_increasing(workdir / "logs/faulty")


def newest_checkpoint(folder) -> int:
    """The step of the newest checkpoint in `folder` (-1 when there is none)."""
    return max((int(p.name[len("ckpt-") : -len(".index")]) for p in folder.glob("ckpt-*.index")), default=-1)


@pytest.fixture
def tiny_disk(workdir):
    """A 2 MiB tmpfs (root only): the disk fills up partway through a run."""
    mount = workdir / "tiny-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip()[:80]})")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_a_clear_error_and_earlier_checkpoints_stay_resumable(runner, workdir, digits_npz, tiny_disk):
    args = ["mnist", "--data", str(digits_npz), "--batch-size", "8", "--units", "64", "--epochs", "40",
            "--save-every", "64", "--keep", "100", "--checkpoint-dir", str(tiny_disk), "--name", "full"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert_clean_refusal(result, "cannot write the checkpoint", "No space left on device", "dlcli resume", exit_code=1)
    folder = tiny_disk / "full"
    saved = sorted(int(p.name[5:-6]) for p in folder.glob("ckpt-*.index"))
    assert len(saved) >= 2  # some checkpoints fit before the disk filled
    moved = workdir / "moved"
    shutil.copytree(folder, moved)  # free space elsewhere: the run continues from there
    done = invoke_json(runner, "resume", str(moved))
    assert done["steps"] == 40 * 64


def test_a_read_only_output_folder_is_a_clear_error_with_nothing_written(runner, workdir):
    mount = workdir / "ro-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({done.stderr.decode().strip()[:80]})")
    try:
        for option in ("--checkpoint-dir", "--logdir"):
            result = runner.invoke(cli, ["xor", "--epochs", "5", option, str(mount / "runs")])
            assert_clean_refusal(result, option, "Read-only file system", exit_code=1)
            assert not any(mount.iterdir())
            assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").iterdir())
    finally:
        subprocess.run(["umount", str(mount)], check=False)
