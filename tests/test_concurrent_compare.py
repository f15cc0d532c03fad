"""Two `dlcli compare` processes on the same comparison (two terminals, same folders)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from conftest import PATIENCE, read_line, stop_process, subprocess_env

from dlcli.comparison import claims

ARGS = ["compare", "--vary", "units=8,16", "--seeds", "2", "--batch-size", "8", "--epochs", "3", "--quiet"]


def start(workdir, digits_npz):
    return subprocess.Popen([sys.executable, "-m", "dlcli", *ARGS, "--data", str(digits_npz)], cwd=workdir,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(proc) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


@pytest.mark.slow
def test_two_drivers_on_one_comparison_share_it_and_agree(workdir, digits_npz):
    first, second = start(workdir, digits_npz), start(workdir, digits_npz)
    (code_1, table_1, err_1), (code_2, table_2, err_2) = finish(first), finish(second)
    assert code_1 == 0, err_1[-1500:]
    assert code_2 == 0, err_2[-1500:]
    assert table_1 == table_2 and "units=16" in table_1
    # Each run trained once: one ledger line each (a driver appends every run it trains).
    lines = [json.loads(line) for line in (workdir / "logs/compare/results.jsonl").read_text().splitlines()]
    assert sorted(e["run"].rsplit("/", 1)[1] for e in lines) == ["units=16-s0", "units=16-s1", "units=8-s0",
                                                                 "units=8-s1"]  # fmt: skip
    by_run = {e["run"]: e for e in lines}
    for record_path in (workdir / "checkpoints/compare").glob("*/*-s*/run.json"):
        record = json.loads(record_path.read_text())
        entry = by_run.pop(record["run"])
        # The folder holds the run the ledger reports, finished by one training session:
        # its logs come from one process, and every step was logged once.
        assert record["status"] == "finished" and record["result"]["steps"] == 3 * 512 // 8
        assert record["result"]["accuracy"] == entry["accuracy"]
        logs = workdir / "logs" / record["run"]
        writers = {p.name.rsplit(".", 3)[1] for p in logs.rglob("events.out.tfevents.*")}  # the writers' pids
        assert len(writers) == 1, writers
    assert not by_run  # every ledger line has its folder
    # Nothing of the claims is left behind.
    assert not (workdir / "logs/compare/.claims").exists()


def test_a_claim_excludes_other_holders_until_released(workdir):
    mine = claims.claim(workdir, "run-a", wait=False)
    assert mine is not None
    assert claims.claim(workdir, "run-a", wait=False) is None  # another open file: another holder
    assert claims.claim(workdir, "run-b", wait=False) is not None  # other runs are free
    mine.release()
    assert not claims.claim_path(workdir, "run-a").exists()  # released claims leave no file
    again = claims.claim(workdir, "run-a", wait=False)
    assert again is not None
    again.release()


def test_a_dead_drivers_claim_blocks_nobody(workdir):
    code = (
        "import sys\n"
        "from dlcli.comparison import claims\n"
        f"held = claims.claim({str(workdir)!r}, 'run-a', wait=False)\n"
        "print('held' if held else 'refused', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], env=subprocess_env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert read_line(holder).strip() == "held"
        assert claims.claim(workdir, "run-a", wait=False) is None
    finally:
        stop_process(holder, signal.SIGKILL)  # a crash: no release, the file stays
    assert claims.claim_path(workdir, "run-a").exists()
    taken = claims.claim(workdir, "run-a", wait=False)  # the kernel dropped the dead process's lock
    assert taken is not None
    taken.release()
