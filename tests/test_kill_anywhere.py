"""Real comparisons SIGKILLed at a spread of moments (mid-round, mid-rung, inside a run),
rerun, and compared with the same comparison never interrupted: the same table (wall
times aside), every run in the ledger once. The policy replay over every kill point is
simulated, without training, in test_policy_replay.py."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys

import pytest
from conftest import invoke, stop_process, subprocess_env, wait_until

AUTO = ["compare", "--task", "xor", "--what", "depth", "--lr", "1", "--epochs", "200", "--seeds", "auto",
        "--max-seeds", "5"]  # fmt: skip
# Rungs 3, 30, 300 and 3000 epochs (log_every 1000: the first three end between two
# logging steps); 4 variants x 2 seeds, then 1 variant.
PRUNE = ["compare", "--task", "xor", "--vary", "lr=0.1,0.3,1,3", "--epochs", "3000", "--prune", "--prune-eta", "10",
         "--seeds", "2"]  # fmt: skip


def ledger(folder) -> list[dict]:
    path = folder / "logs/compare/results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")] if path.exists() else []


def training(folder) -> bool:
    """Whether a run is inside its training (its run.json says "running")."""
    for path in (folder / "checkpoints/compare").glob("*/*-s*/run.json"):
        try:
            if json.loads(path.read_text()).get("status") == "running":
                return True
        except (OSError, ValueError):
            pass
    return False


def rows(result) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads(result.stdout)]


def kill_when(folder, args, condition, what: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dlcli", *args, "--quiet"], cwd=folder, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_until(condition, proc, what=what)
    finally:
        stop_process(proc, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("args, kills", [
    # --seeds auto: 3 variants x 3 seeds in round 1, then rounds of 1 seed for the open ones.
    (AUTO, [(4, False), (10, True)]),
    (PRUNE, [(3, False), (11, True)]),
], ids=["seeds-auto", "prune"])  # fmt: skip
def test_a_comparison_killed_anywhere_reruns_to_the_uninterrupted_table(runner, workdir, monkeypatch, args, kills):
    (workdir / "straight").mkdir()
    monkeypatch.chdir(workdir / "straight")
    expected = rows(invoke(runner, *args, "--quiet", "--format", "json"))
    total = len(ledger(workdir / "straight"))

    killed = workdir / "killed"
    killed.mkdir()
    for lines, inside in kills:
        # Killed once `lines` runs are in the ledger; `inside`: while a run is training.
        kill_when(killed, args, lambda: len(ledger(killed)) >= lines
                  and (not inside or training(killed)), f"{lines} ledger lines")  # fmt: skip
        assert len(ledger(killed)) < total, "the comparison finished before it was killed"
    monkeypatch.chdir(killed)
    assert rows(invoke(runner, *args, "--quiet", "--format", "json")) == expected
    entries = ledger(killed)
    assert all(n == 1 for n in collections.Counter(e["key"] for e in entries).values()), "a run trained twice"
    assert {e["key"] for e in entries} == {e["key"] for e in ledger(workdir / "straight")}
