"""`dlcli board`: a real TensorBoard server over real runs, and `--list`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import PATIENCE, assert_clean_refusal, invoke, invoke_json, read_line, stop_process, subprocess_env, wait_until


@pytest.fixture
def logdir(runner, workdir, digits_npz) -> Path:
    invoke_json(runner, "xor", "--epochs", "300", "--log-every", "100", "--name", "x")
    invoke_json(runner, "mnist", "--data", digits_npz, "--batch-size", "64", "--log-every", "4", "--name", "m")
    return workdir / "logs"


@pytest.fixture
def logdir_with_compare(runner, logdir, digits_npz) -> Path:
    invoke(runner, "compare", "--what", "activation", "--data", digits_npz, "--batch-size", "64", "--quiet")
    return logdir


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=PATIENCE) as response:
        return json.loads(response.read())


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from /proc (no traffic)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(address)
    return found


@pytest.mark.slow
def test_board_serves_runs_scalars_histograms_and_hparams_on_localhost(logdir_with_compare, workdir):
    logdir = logdir_with_compare
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcli", "board", "--logdir", str(logdir), "--port", "0"],
        cwd=workdir, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = read_line(proc)  # printed once the server listens: the readiness signal
        assert first.startswith("TensorBoard http://127.0.0.1:"), first + proc.stderr.read()
        url = first.split()[1].rstrip("/")
        port = int(url.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"127.0.0.1"}
        # TensorBoard loads the runs on a thread of its own: wait until it has them.
        wanted = {"x/train", "m/train", "m/test"}
        wait_until(lambda: wanted <= set(get_json(f"{url}/data/runs")), proc, what="TensorBoard to load the runs")

        loss = get_json(f"{url}/data/plugin/scalars/scalars?run=m/train&tag=loss")
        assert [point[1] for point in loss] == [4, 8]  # (wall time, step, value)
        accuracy = get_json(f"{url}/data/plugin/scalars/scalars?run=m/test&tag=accuracy")
        assert len(accuracy) == 1 and 0.0 <= accuracy[0][2] <= 1.0
        tags = get_json(f"{url}/data/plugin/histograms/tags")
        assert "hidden1/weights" in tags["x/train"] and "output/hypothesis" in tags["x/train"]
        hist = get_json(f"{url}/data/plugin/histograms/histograms?run=x/train&tag=hidden1/weights")
        assert [entry[1] for entry in hist] == [100, 200, 300]

        request = urllib.request.Request(
            f"{url}/data/plugin/hparams/experiment",
            data=json.dumps({"experimentName": ""}).encode(),
            headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        )
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            experiment = json.loads(response.read())
        names = {info["name"] for info in experiment["hparamInfos"]}
        assert {"variant", "activation", "init", "dropout", "batchnorm"} <= names
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {"accuracy", "loss"} <= metrics
    finally:
        stop_process(proc, signal.SIGINT)
    assert proc.returncode == 0, proc.stderr.read()
    assert "Traceback" not in proc.stderr.read()


@pytest.mark.slow
def test_list_shows_runs_with_latest_values(runner, logdir):
    out = invoke(runner, "board", "--list", "--logdir", logdir).stdout
    lines = out.splitlines()
    assert lines[0].split("|")[1].strip() == "run"
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}
    assert set(rows) == {"m", "x"}
    assert rows["x"][0] == "300" and rows["x"][3] == "-"  # xor has no test split
    assert rows["m"][0] == "8" and 0 <= float(rows["m"][4]) <= 1


def test_missing_and_empty_logdir(runner, workdir):
    from dlcli.cli import cli

    assert_clean_refusal(runner.invoke(cli, ["board", "--logdir", "nowhere"]), "no log folder", "dlcli xor")
    (workdir / "empty").mkdir()
    for args in (["board", "--logdir", "empty"], ["board", "--list", "--logdir", "empty"]):
        result = runner.invoke(cli, args)
        assert_clean_refusal(result, "no TensorBoard runs", "dlcli xor", exit_code=1)


@pytest.mark.slow
def test_busy_explicit_port_is_a_clear_error(runner, logdir):
    from dlcli.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["board", "--logdir", str(logdir), "--port", str(port)])
    assert_clean_refusal(result, f"port {port} is already in use", "--port", exit_code=1)


@pytest.mark.slow
def test_the_server_stops_on_sigterm_and_on_ctrl_c_even_when_started_with_sigint_ignored(logdir, workdir):
    import signal as signals

    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(
            [sys.executable, "-m", "dlcli", "board", "--logdir", str(logdir), "--port", "0"], cwd=workdir,
            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signals.signal(signals.SIGINT, signals.SIG_IGN),  # as `dlcli board &` starts it
        )  # fmt: skip
        try:
            assert read_line(proc).startswith("TensorBoard http://127.0.0.1:")
        finally:
            assert stop_process(proc, sig) == 0, proc.stderr.read()
        assert "stopped" in proc.stderr.read()


@pytest.mark.slow
def test_every_interface_only_when_asked_and_with_a_warning(logdir, workdir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlcli", "board", "--logdir", str(logdir), "--host", "0.0.0.0", "--port", "0"],
        cwd=workdir, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = read_line(proc)
        port = int(first.split()[1].rstrip("/").rsplit(":", 1)[1])
        assert listening_addresses(port) == {"0.0.0.0"}
    finally:
        stop_process(proc, signal.SIGINT)
    assert proc.returncode == 0
    assert "anyone on the network can read these logs" in proc.stderr.read()
