"""`dlcli board`: a real TensorBoard server over real runs, and `--list`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import (
    PATIENCE,
    assert_clean_refusal,
    invoke,
    invoke_json,
    read_line,
    stop_process,
    subprocess_env,
    wait_until,
)


@pytest.fixture(scope="module")
def trained_logs(tmp_path_factory) -> Path:
    """A folder with an XOR run `x`, an MNIST run `m` (its logs/ and checkpoints/) and,
    in `with-compare/`, the same two beside a `compare --what activation`: trained once
    for the file; each test gets a copy (some add runs or rename files)."""
    from click.testing import CliRunner
    from conftest import fixture_folder

    runner = CliRunner()
    with fixture_folder(tmp_path_factory, "board") as (root, data):
        (root / "plain").mkdir()
        os.chdir(root / "plain")  # the fixture's patch restores the folder afterwards
        invoke_json(runner, "xor", "--epochs", "300", "--log-every", "100", "--name", "x")
        invoke_json(runner, "mnist", "--data", data, "--batch-size", "64", "--log-every", "4", "--name", "m")
        shutil.copytree(root / "plain", root / "with-compare")
        os.chdir(root / "with-compare")
        invoke(runner, "compare", "--what", "activation", "--data", data, "--batch-size", "64", "--quiet")
    return root


def copy_into(workdir: Path, source: Path) -> Path:
    for part in ("logs", "checkpoints"):
        shutil.copytree(source / part, workdir / part)
    return workdir / "logs"


@pytest.fixture
def logdir(trained_logs, workdir) -> Path:
    return copy_into(workdir, trained_logs / "plain")


@pytest.fixture
def logdir_with_compare(trained_logs, workdir) -> Path:
    return copy_into(workdir, trained_logs / "with-compare")


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
        (label,) = [p.name for p in (logdir / "compare").iterdir() if p.is_dir() and not p.name.startswith(".")]
        assert {f"{label}/accuracy", f"{label}/loss"} <= metrics  # the comparison's runs' tags (its scope)
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


def comparison_runs(logdir: Path) -> dict[str, set[str]]:
    """{comparison folder: its run folders}, relative to the logdir, from the disk."""
    return {
        folder.relative_to(logdir).as_posix(): {run.relative_to(logdir).as_posix() for run in folder.iterdir()
                                                if run.is_dir()}
        for folder in (logdir / "compare").iterdir() if folder.is_dir() and not folder.name.startswith(".")
    }  # fmt: skip


@pytest.mark.slow
def test_a_comparisons_charts_draw_its_own_runs_only(runner, logdir_with_compare, workdir):
    # Beside an XOR run, an MNIST run and an MNIST comparison: an XOR comparison. Every
    # run writes a `loss`; each comparison's charts must draw that comparison's runs.
    from urllib.parse import urlencode

    invoke(runner, "compare", "--task", "xor", "--vary", "layers=1,2", "--epochs", "2000", "--quiet")
    logdir = logdir_with_compare
    comparisons = comparison_runs(logdir)
    assert len(comparisons) == 2
    proc = subprocess.Popen([sys.executable, "-m", "dlcli", "board", "--logdir", str(logdir), "--port", "0"],
                            cwd=workdir, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        url = read_line(proc).split()[1].rstrip("/")
        wanted = {"x/train", "m/train"} | {f"{run}/train" for runs in comparisons.values() for run in runs}
        wait_until(lambda: wanted <= set(get_json(f"{url}/data/runs")), proc, what="TensorBoard to load the runs")
        runs = get_json(f"{url}/data/runs")
        layout = get_json(f"{url}/data/plugin/custom_scalars/layout")
        charts = {category["title"]: category["chart"] for category in layout["category"]}
        assert set(charts) == {f"dlcli {folder}" for folder in comparisons}
        for folder, own in comparisons.items():
            assert len(charts[f"dlcli {folder}"]) in (2, 3)  # xor: accuracy, loss; mnist: + training loss
            for chart in charts[f"dlcli {folder}"]:
                (regex,) = chart["multiline"]["tag"]
                drawn = set()
                for run in runs:  # what the chart asks for: every run, the tags matching its regex
                    answer = get_json(f"{url}/data/plugin/custom_scalars/scalars?{urlencode({'run': run, 'tag': regex})}")
                    assert answer["regex_valid"]
                    if answer["tag_to_events"]:
                        drawn.add(run.rsplit("/", 1)[0] if run.endswith(("/train", "/test")) else run)
                assert drawn == own, (chart["title"], drawn)
    finally:
        stop_process(proc, signal.SIGINT)


@pytest.mark.slow
def test_list_shows_a_comparisons_runs_not_its_folder(runner, logdir_with_compare):
    logdir = logdir_with_compare
    ((folder, own),) = comparison_runs(logdir).items()

    def listed() -> dict[str, list[str]]:
        lines = invoke(runner, "board", "--list", "--logdir", logdir).stdout.splitlines()
        return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}

    rows = listed()
    assert set(rows) == {"m", "x"} | own
    for run in own:  # their values read back under the comparison's tags
        assert rows[run][0] == "8" and "-" not in rows[run][1:5], rows[run]
    # A layout written by an older dlcli (no .layout in its name) is recognised by its content.
    (layout,) = (logdir / folder).glob("events.out.tfevents.*.layout")
    layout.rename(layout.with_name(layout.name[: -len(".layout")] + ".v2"))
    assert listed() == rows
