"""A run records the same numbers however it got to its target: trained straight
through, resumed to a higher --epochs, or continued rung by rung by compare --prune.
Every recorded number is compared (wall times aside): run.json's result and step-0
diagnostics, the ledger line, and every TensorBoard scalar series."""

from __future__ import annotations

import json
import math

import pytest
from conftest import invoke

WALL = {"train_seconds", "seconds", "seconds_per_epoch"}
NAMES = {"run", "checkpoint_dir", "logdir", "trained_steps"}  # where it lives; what this call trained


def numbers(value, path=""):
    """Every number in a JSON-like value, {path: number}, wall times and names aside."""
    out = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            if key not in WALL | NAMES:
                out.update(numbers(inner, f"{path}/{key}"))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out.update(numbers(inner, f"{path}/{i}"))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[path] = "nan" if isinstance(value, float) and math.isnan(value) else value
    return out


def recorded(workdir, run: str) -> dict:
    """run.json's result and step-0 diagnostics, and the run's TensorBoard scalars."""
    from dlcli.core import summaries

    record = json.loads((workdir / "checkpoints" / run / "run.json").read_text())
    out = numbers({"result": record["result"], "layers_at_start": record["layers_at_start"]})
    for split in ("train", "test"):
        for tag, series in summaries.read_scalars(workdir / "logs" / run, split).items():
            out.update({f"tb/{split}/{tag.split('/', 1)[-1] if '/' in tag and tag.startswith('compare') else tag}":
                        series})  # fmt: skip
    return out


def differences(first: dict, second: dict) -> list[str]:
    return [f"{k}: {first.get(k)} vs {second.get(k)}" for k in sorted(first.keys() | second.keys())
            if first.get(k) != second.get(k)]  # fmt: skip


@pytest.mark.slow
@pytest.mark.fresh_loops  # built here, not restarted: tests/conftest.py
def test_a_run_resumed_to_a_higher_target_records_what_a_straight_run_records(runner, workdir):
    # 1500 is between two logging steps (every 1000): the first process measured there.
    invoke(runner, "xor", "--epochs", "3000", "--name", "straight", "--quiet")
    invoke(runner, "xor", "--epochs", "1500", "--name", "continued", "--quiet")
    invoke(runner, "resume", "checkpoints/continued", "--epochs", "3000", "--quiet")
    straight, continued = recorded(workdir, "straight"), recorded(workdir, "continued")
    assert "/result/grad_ratio" in straight and "/result/diagnostics/last/layers/hidden1/update_ratio" in straight
    assert any(k.startswith("tb/train/layers/") for k in straight)
    assert differences(straight, continued) == []


@pytest.mark.slow
def test_a_pruned_survivor_records_what_the_same_run_trained_straight_records(runner, workdir, monkeypatch):
    # Rungs 20, 200 and 2000 epochs: the first two end between logging steps.
    args = ["compare", "--task", "xor", "--vary", "lr=0.3,1,3", "--epochs", "2000", "--quiet", "--format", "json"]
    for where, extra in (("pruned", ["--prune", "--prune-eta", "10"]), ("straight", [])):
        (workdir / where).mkdir()
        monkeypatch.chdir(workdir / where)
        invoke(runner, *args, *extra)
    ledgers = {where: {e["key"]: e for e in map(json.loads, (workdir / where / "logs/compare/results.jsonl")
                                                 .read_text().splitlines())} for where in ("pruned", "straight")}  # fmt: skip
    survivors = [key for key, e in ledgers["pruned"].items() if e["epochs"] == 2000]
    assert len(survivors) == 1
    for key in survivors:
        pruned, straight = ledgers["pruned"][key], ledgers["straight"][key]
        assert differences(numbers(straight), numbers(pruned)) == []
        assert pruned["grad_ratio"] == straight["grad_ratio"] and pruned["diagnostics"] == straight["diagnostics"]
        assert differences(recorded(workdir / "straight", pruned["run"]), recorded(workdir / "pruned", pruned["run"])) == []
