"""A comparison is a function of its plan, its policy and its ledger: killed at any
moment and rerun, it ends with the uninterrupted table. Simulated here without training
(a runner that makes up each run's numbers from its configuration alone), over every
kill point of a larger --seeds auto and --prune comparison; the same with real runs
killed by SIGKILL is in test_kill_anywhere.py."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from dlcli.comparison import driver, ledger_key, request
from dlcli.comparison.plan import base_config
from dlcli.comparison.runners import KEY_FORMAT
from dlcli.comparison.stats import AutoSeeds


class MadeUpRunner:
    """Trains nothing: each run's accuracy is drawn from its key (its variant, seed and
    epochs), so a run gives the same entry whenever it 'trains'. Counts what it trains."""

    where = ""

    def __init__(self, means: dict[str, float], trained: list):
        self.means, self.trained = means, trained

    def close(self):
        pass

    def run(self, tasks):
        for task in tasks:
            self.trained.append(task.config.name + f"@{task.config.train.epochs}")
            rng = random.Random(hashlib.sha256(ledger_key(task.config).encode()).hexdigest())
            epochs = task.config.train.epochs
            accuracy = min(1.0, max(0.0, self.means[task.variant] * (1 - 0.5 / epochs) + rng.gauss(0, 0.03)))
            yield task, {"key": ledger_key(task.config), "key_format": KEY_FORMAT, "variant": task.variant,
                         "seed": task.seed, "run": task.config.name, "accuracy": accuracy,
                         "loss": 1 - accuracy + rng.random() / 100, "seconds": rng.random(),
                         "epochs": epochs, "trained_steps": 1, "params": 9, "grad_ratio": rng.random(),
                         "diagnostics": None}  # fmt: skip


# Five xor variants (lr values): two near the top (open for a while), one clearly behind
# at once, two in between: rounds that add seeds to some variants only.
LRS = ("0.1", "0.3", "1", "3", "10")
MEANS = {"lr=0.1": 0.90, "lr=0.3": 0.95, "lr=1.0": 0.97, "lr=3.0": 0.965, "lr=10.0": 0.6}


def make_request(workdir, **how) -> request.Request:
    base = base_config("xor", {"epochs": 9}, logdir=str(workdir / "logs"), checkpoint_dir=str(workdir / "ckpt"))
    return request.Request("xor", base, vary=("lr=" + ",".join(LRS),), **how)


def table(comparison) -> str:
    """The rows as compare --format json prints them, wall times aside."""
    return json.dumps([{k: v for k, v in row.items() if k != "seconds"} for row in comparison.rows], sort_keys=True)


def run(workdir, how, trained):
    return request.compare(make_request(workdir, **how), make_runner=lambda: MadeUpRunner(MEANS, trained))


POLICIES = {
    "seeds auto": {"auto": AutoSeeds(max_seeds=8)},
    "prune": {"prune": True, "seeds": 3},
}


@pytest.mark.parametrize("policy", POLICIES)
def test_every_kill_point_reruns_to_the_uninterrupted_table(workdir, monkeypatch, policy):
    monkeypatch.setattr(driver, "write_layout", lambda the_plan: None)  # no TensorBoard file: no TensorFlow
    trained: list = []
    whole = run(workdir, POLICIES[policy], trained)
    expected, ledger_path = table(whole), workdir / "logs" / "compare" / "results.jsonl"
    lines = ledger_path.read_text().splitlines(keepends=True)
    assert len(lines) == len(trained) >= 20  # a comparison of many steps (rounds, rungs)
    if policy == "seeds auto":
        assert whole.rounds >= 4 and len({row["seeds"] for row in whole.rows}) > 1, whole.rows  # uneven rounds
    else:
        assert {row["epochs"] for row in whole.rows} == {1, 3, 9}
    # A kill after k ledger lines (k = 0 ... all), and a kill mid-append (a torn line).
    cuts = [("".join(lines[:k]), k) for k in range(len(lines) + 1)]
    cuts += [("".join(lines[:k]) + lines[k][: len(lines[k]) // 2], k) for k in range(0, len(lines), 5)]
    differ = []
    for text, k in cuts:
        ledger_path.write_text(text)
        again: list = []
        rerun = run(workdir, POLICIES[policy], again)
        if table(rerun) != expected:
            differ.append(k)
        # Every finished run reused, nothing trained twice: the rerun trains exactly the rest.
        assert sorted(again) == sorted(trained[k:]), k
    assert differ == [], f"{len(differ)} of {len(cuts)} kill points rerun to another table: after lines {differ}"


def test_a_rerun_with_a_half_finished_round_in_the_ledger_looks_at_whole_rounds_only(workdir, monkeypatch):
    # The bug this replaces: the rerun's first look saw a round's finished half (uneven seeds).
    monkeypatch.setattr(driver, "write_layout", lambda the_plan: None)
    trained: list = []
    whole = run(workdir, POLICIES["seeds auto"], trained)
    ledger_path = workdir / "logs" / "compare" / "results.jsonl"
    lines = ledger_path.read_text().splitlines(keepends=True)
    ledger_path.write_text("".join(lines[:len(MEANS) * 3 + 1]))  # round 1, and one run of round 2
    rounds: list = []
    hooks = driver.Hooks(on_round=lambda number, runs: rounds.append(sorted(p.seed for p, _ in runs)))
    rerun = request.compare(make_request(workdir, **POLICIES["seeds auto"]),
                            make_runner=lambda: MadeUpRunner(MEANS, []), hooks=hooks)  # fmt: skip
    assert rerun.rounds == whole.rounds and rounds[0] == sorted([0, 1, 2] * len(MEANS))
    assert table(rerun) == table(whole)
