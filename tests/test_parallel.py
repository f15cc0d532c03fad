"""Comparisons beyond one process: --jobs worker processes and a real local Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import (
    PATIENCE,
    assert_clean_refusal,
    assert_python_runs,
    assert_usage_refused,
    invoke,
    stop_process,
    subprocess_env,
    wait_until,
)  # fmt: skip

from dlcli.cli import cli
from dlcli.comparison.processes import placement

GRID = ["--vary", "units=8,16", "--vary", "lr=0.01,0.001", "--seeds", "2", "--batch-size", "64", "--quiet",
        "--format", "json"]  # fmt: skip


def compare_rows(runner, digits_npz, *args) -> list[dict]:
    return json.loads(invoke(runner, "compare", "--data", digits_npz, *GRID, *args).stdout)


def same_numbers(rows: list[dict], serial: list[dict]) -> None:
    """Everything but the seconds: accuracies and losses to the last digit; the
    gradient diagnostic (measured outside XLA, with threaded kernels) to 1e-6."""
    assert [r["variant"] for r in rows] == [r["variant"] for r in serial]
    for row, other in zip(rows, serial):
        for key, value in row.items():
            if key == "grad_ratio":
                assert value == pytest.approx(other[key], rel=1e-6)
            elif key != "seconds":
                assert value == other[key], (row["variant"], key)


def ledger(workdir, logdir="logs") -> list[dict]:
    return [json.loads(line) for line in (workdir / logdir / "compare/results.jsonl").read_text().splitlines()]


def test_placement_of_jobs():
    assert placement("auto", cores=16, gpus=()) == placement("4", cores=16, gpus=())
    assert placement("auto", cores=16, gpus=()).threads == 4
    assert placement("auto", cores=2, gpus=()).jobs == 1  # one run already uses both cores
    gpus = placement("auto", cores=16, gpus=("0", "1"))
    assert (gpus.jobs, gpus.gpus) == (2, ("0", "1"))
    assert placement("3", cores=16, gpus=()).threads == 5


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--jobs", "many"], "--jobs must be a number or auto"),
        (["--jobs", "2", "--cluster", "tcp://127.0.0.1:1"], "exclude each other"),
        (["--jobs", "2", "--strategy", "mirrored"], "not with --jobs"),
    ],
)
def test_bad_parallel_options(runner, workdir, digits_npz, args, needle):
    assert_usage_refused(runner, workdir, ["compare", "--data", str(digits_npz), *args], needle)


def test_cluster_without_the_extra_names_it(runner, workdir, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    assert_usage_refused(runner, workdir, ["compare", "--cluster", "tcp://127.0.0.1:8786"],
                         "pip install 'dlcli[cluster]'")  # fmt: skip


@pytest.mark.slow
def test_the_core_never_imports_the_cluster_engine():
    code = (
        "import sys\n"
        "from dlcli import comparison, cli\n"
        "from dlcli.comparison import processes\n"
        "from dlcli.core import session, train\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
    )
    assert_python_runs(code)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> tuple:
    """GRID's comparison made serially, once for the file: (its data file, its rows)."""
    from click.testing import CliRunner
    from conftest import fixture_folder

    with fixture_folder(tmp_path_factory, "serial") as (folder, data):
        rows = compare_rows(CliRunner(), data, "--logdir", folder / "logs", "--checkpoint-dir", folder / "ck")
    return data, rows


@pytest.mark.slow
def test_jobs_2_gives_the_serial_table_and_each_run_once_in_the_ledger(runner, workdir, serial):
    digits_npz, serial = serial
    parallel = compare_rows(runner, digits_npz, "--jobs", "2")
    same_numbers(parallel, serial)
    entries = ledger(workdir)
    assert len(entries) == 8 and len({e["key"] for e in entries}) == 8
    assert len(list((workdir / "checkpoints/compare").glob("*/*-s*/run.json"))) == 8


def start_scheduler(workdir):
    """A Dask scheduler on 127.0.0.1 (any free port); returns (process, address)."""
    file = workdir / "scheduler.json"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file", str(file)], cwd=workdir,
                                 env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    wait_until(lambda: file.exists() and file.read_text().strip(), scheduler, what="the scheduler")
    return scheduler, json.loads(file.read_text())["address"]


def start_workers(workdir, address: str, count: int, env=None):
    """`count` single-threaded worker processes (each under a nanny), registered."""
    from distributed import Client

    workers = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--nworkers", str(count), "--no-dashboard", "--host", "127.0.0.1"], cwd=workdir,
                               env=env or subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    with Client(address, timeout=PATIENCE) as client:
        client.wait_for_workers(count, timeout=PATIENCE)
    return workers


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real Dask cluster on 127.0.0.1: a scheduler and two worker processes, started
    once for the file (each worker starts TensorFlow, 5-7 s; a worker killed by a test
    is started again by its nanny, as on a real cluster), in a folder of its own: the
    workers reach the tests' folders through the absolute paths dlcli sends them."""
    folder = tmp_path_factory.mktemp("dask-cluster")
    scheduler, address = start_scheduler(folder)
    workers = None
    try:
        workers = start_workers(folder, address, 2)
        yield address
    finally:
        for proc in (workers, scheduler):
            if proc is not None:
                stop_process(proc, signal.SIGTERM)


@pytest.mark.slow
def test_a_local_dask_cluster_gives_the_serial_table_shared_or_shipped(runner, workdir, serial, dask_cluster):
    digits_npz, serial = serial
    shared = compare_rows(runner, digits_npz, "--cluster", dask_cluster)
    same_numbers(shared, serial)
    assert len(ledger(workdir)) == 8
    # In the driver's folders, though the workers run in a folder of their own.
    assert len(list((workdir / "checkpoints/compare").glob("*/*-s*/run.json"))) == 8
    shipped = compare_rows(runner, digits_npz, "--cluster", dask_cluster, "--cluster-files", "ship",
                           "--logdir", "ship-logs", "--checkpoint-dir", "ship-ck")  # fmt: skip
    same_numbers(shipped, serial)
    # The shipped folders are the driver's now: complete, and resumable from here.
    records = list((workdir / "ship-ck/compare").glob("*/*-s*/run.json"))
    assert len(records) == 8
    record = json.loads(records[0].read_text())
    assert record["config"]["checkpoint_dir"] == "ship-ck" and record["logdir"].startswith(str(workdir / "ship-logs"))
    out = invoke(runner, "resume", str(records[0].parent), "--json").stdout
    assert json.loads(out)["steps"] == 8


@pytest.mark.slow
def test_a_worker_killed_mid_comparison_its_run_goes_to_the_other(runner, workdir, digits_npz, dask_cluster):
    from distributed import Client

    args = ["compare", "--data", str(digits_npz), "--vary", "units=16,32", "--seeds", "2", "--batch-size", "8",
            "--epochs", "3", "--quiet", "--format", "json"]  # fmt: skip
    serial = json.loads(invoke(runner, *args, "--logdir", "serial-logs", "--checkpoint-dir", "serial-ck").stdout)
    proc = subprocess.Popen([sys.executable, "-m", "dlcli", *args, "--cluster", dask_cluster], cwd=workdir,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    with Client(dask_cluster, timeout=PATIENCE) as client:
        busy = {}
        wait_until(lambda: busy.update({w: k for w, k in client.processing().items() if k}) or busy, proc,
                   what="a run on a worker")  # fmt: skip
        victim = sorted(busy)[0]
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)  # the worker process, mid-run; its nanny starts a new one
    out, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0, err[-800:]
    same_numbers(json.loads(out), serial)
    entries = ledger(workdir)
    assert len(entries) == 4 and len({e["key"] for e in entries}) == 4


@pytest.mark.slow
def test_a_worker_that_cannot_import_dlcli_is_named(runner, workdir, digits_npz):
    broken = workdir / "broken"
    (broken / "dlcli").mkdir(parents=True)
    (broken / "dlcli" / "__init__.py").write_text("raise ImportError('this dlcli is broken')\n")
    scheduler, address = start_scheduler(workdir)
    worker = None
    try:
        env = {**subprocess_env(), "PYTHONPATH": str(broken) + os.pathsep + subprocess_env()["PYTHONPATH"]}
        worker = start_workers(workdir, address, 1, env=env)
        before = set(os.listdir(workdir))
        result = runner.invoke(cli, ["compare", "--data", str(digits_npz), "--vary", "units=8,16", "--cluster", address])
        assert_clean_refusal(result, "worker tcp://127.0.0.1:", "cannot import dlcli", "this dlcli is broken",
                             exit_code=1)  # fmt: skip
        assert set(os.listdir(workdir)) - before <= {"dask-scratch-space"}  # the worker's, not dlcli's
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                stop_process(proc, signal.SIGTERM)
