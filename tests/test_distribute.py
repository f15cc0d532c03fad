"""Training beyond one device with tf.distribute, on the CPU: mirrored over logical
CPU devices and a real two-process multi-worker cluster on localhost."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import PATIENCE, assert_clean_refusal, invoke_json, subprocess_env, tree

from dlcli.cli import cli

TIMEOUT = PATIENCE  # every process here stops by itself well before this


def dlcli(args, cwd, env=None, timeout=TIMEOUT):
    return subprocess.run([sys.executable, "-m", "dlcli", *args], cwd=cwd, env=env or subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_matches_one_device_and_resumes_on_one(runner, workdir, real_digits):
    common = ["mnist", "--data", str(real_digits), "--limit", "4096", "--epochs", "2", "--batchnorm", "--json", "--quiet"]
    one = invoke_json(runner, *common[:-2], "--name", "one", "--quiet")
    done = dlcli([*common, "--strategy", "mirrored", "--cpu-replicas", "2", "--sync-batchnorm", "--name", "two"], workdir)
    assert done.returncode == 0, done.stderr[-800:]
    two = json.loads(done.stdout)
    # Same data, seed and global batch: the replicas' averaged gradients are the
    # one-device gradients up to float rounding, so the accuracy agrees closely.
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.01, (one, two)
    record = json.loads((workdir / "checkpoints/two/run.json").read_text())
    assert record["distribute"] == {"strategy": "mirrored", "replicas": 2}
    assert record["config"]["model"]["sync_batchnorm"] is True

    resumed = invoke_json(runner, "resume", "checkpoints/two", "--epochs", "3")  # one device, XLA
    assert resumed["steps"] == 3 * (4096 // 128) and resumed["accuracy"] > 0.8
    assert json.loads((workdir / "checkpoints/two/run.json").read_text())["distribute"]["replicas"] == 1


@pytest.mark.slow
def test_two_worker_cluster_on_localhost(runner, workdir, digits_npz):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    args = [sys.executable, "-m", "dlcli", "mnist", "--data", str(digits_npz), "--batch-size", "64", "--epochs", "2",
            "--strategy", "multi-worker", "--name", "cluster", "--quiet", "--json"]  # fmt: skip
    procs = []
    for index in range(2):
        env = subprocess_env()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))  # fmt: skip
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            proc.kill()
    for code, out, err in outputs:
        assert code == 0, err[-800:]
    chief, worker = (json.loads(out) for _, out, _ in outputs)
    assert chief["steps"] == worker["steps"] == 16 and chief["loss"] == worker["loss"]
    folder = workdir / "checkpoints/cluster"
    assert sorted(p.name for p in folder.glob("ckpt-*.index")) == ["ckpt-0.index", "ckpt-16.index"]
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["distribute"] == {"strategy": "multi-worker", "replicas": 2}
    assert not os.path.exists(worker["checkpoint_dir"])  # the helper worker cleaned up after itself
    assert sorted(p.name for p in workdir.iterdir() if p.name != "synthetic.npz") == ["checkpoints", "logs"]

    resumed = invoke_json(runner, "resume", "checkpoints/cluster", "--epochs", "3")  # one device
    assert resumed["steps"] == 24


@pytest.mark.parametrize(
    "tf_config,needle",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', '"cluster"'),
        ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief", "index": 0}}', '"task"'),
        ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}', "outside"),
    ],
)
def test_multi_worker_needs_a_sound_tf_config(runner, workdir, monkeypatch, digits_npz, tf_config, needle):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    before = tree(workdir)
    result = runner.invoke(cli,
                           ["mnist", "--data", str(digits_npz), "--strategy", "multi-worker"])  # fmt: skip
    assert_clean_refusal(result, needle, exit_code=1)
    assert tree(workdir) == before


def test_distribution_options_that_do_not_fit(runner, digits_npz):
    result = runner.invoke(cli, ["mnist", "--data", str(digits_npz), "--cpu-replicas", "2"])
    assert_clean_refusal(result, "need --strategy mirrored")


@pytest.mark.slow
def test_a_one_device_run_resumes_mirrored_and_compare_takes_a_strategy(runner, workdir, digits_npz):
    invoke_json(runner, "mnist", "--data", str(digits_npz), "--batch-size", "64", "--epochs", "1", "--name", "solo")
    done = dlcli(["resume", "checkpoints/solo", "--epochs", "2", "--strategy", "mirrored", "--cpu-replicas", "2",
                  "--json", "--quiet"], workdir)  # fmt: skip
    assert done.returncode == 0, done.stderr[-800:]
    assert json.loads(done.stdout)["steps"] == 16
    record = json.loads((workdir / "checkpoints/solo/run.json").read_text())
    assert record["distribute"] == {"strategy": "mirrored", "replicas": 2} and record["status"] == "finished"

    table = dlcli(["compare", "--what", "activation", "--data", str(digits_npz), "--batch-size", "64",
                   "--strategy", "mirrored", "--cpu-replicas", "2", "--format", "json", "--quiet"], workdir)  # fmt: skip
    assert table.returncode == 0, table.stderr[-800:]
    assert [row["variant"] for row in json.loads(table.stdout)] == ["sigmoid-normal", "relu-normal"]
