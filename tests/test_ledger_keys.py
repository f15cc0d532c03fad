"""Ledger keys that survive upgrades and notice changed numerics: a setting added later,
at its default, leaves every key (and every comparison folder's name) unchanged; a
change in what training computes must bump ledger.NUMERICS, which changes every key; a
ledger written by dlcli 0.3.1 is reused without retraining."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke

from dlcli.comparison import ledger as ledgers
from dlcli.comparison.plan import base_config, plan
from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec

FIXTURES = Path(__file__).parent / "fixtures"

# The fingerprint of a tiny XOR run's final weights and loss, for each numerics format.
# When test_the_numerics_are_pinned fails, training computes something else than before:
# bump ledgers.NUMERICS and add the new fingerprint here (old results then train again).
FINGERPRINTS = {1: "0cd45ae9c886bd84"}


class WithALaterSetting:
    """A run configuration as a later dlcli would have it: one setting more."""

    def __init__(self, config: RunConfig, value):
        self.task, self.config, self.value = config.task, config, value

    def to_dict(self) -> dict:
        whole = self.config.to_dict()
        whole["train"]["warmup"] = self.value
        return whole


def configs() -> list[RunConfig]:
    base = base_config("xor", {"epochs": 300}, logdir="l", checkpoint_dir="c")
    return [run.config for run in plan("xor", ("depth",), (), base, seeds=2).runs] + [
        RunConfig(task="mnist", name="m")]  # fmt: skip


def test_a_setting_added_later_at_its_default_leaves_every_key_and_folder_unchanged(monkeypatch):
    monkeypatch.setitem(ledgers.KEY_BASELINE["train"], "warmup", 0)
    for config in configs():
        later = WithALaterSetting(config, 0)
        assert ledgers.ledger_key(later) == ledgers.ledger_key(config)
        assert ledgers.folder_key(later) == ledgers.folder_key(config)
        # ...and off its default, it is part of both.
        assert ledgers.ledger_key(WithALaterSetting(config, 5)) != ledgers.ledger_key(config)
        assert ledgers.folder_key(WithALaterSetting(config, 5)) != ledgers.folder_key(config)


def test_every_setting_has_a_pinned_baseline():
    # A setting missing from KEY_BASELINE is always in the key: add it with the value
    # that reproduces the runs made before it existed, or every key changes.
    for part, spec in (("model", ModelSpec), ("train", TrainSpec), ("data", DataSpec)):
        assert {f.name for f in dataclasses.fields(spec)} <= set(ledgers.KEY_BASELINE[part]), part


def test_the_numerics_format_is_in_every_key():
    for config in configs():
        assert ledgers.ledger_key(config, numerics=ledgers.NUMERICS + 1) != ledgers.ledger_key(config)


@pytest.mark.slow
def test_the_numerics_are_pinned(workdir):
    """Fails when what training computes changes: then bump ledgers.NUMERICS."""
    import tensorflow as tf

    from dlcli.config import task_config
    from dlcli.core import session

    config = task_config("xor", {"epochs": 300, "layers": 2, "lr": 1.0}, name="fingerprint")
    result = session.train(config)
    path = tf.train.latest_checkpoint(str(workdir / "checkpoints/fingerprint"))
    reader, digest = tf.train.load_checkpoint(path), hashlib.sha256()
    for name, _ in sorted(tf.train.list_variables(path)):
        if name.startswith("model_variables/"):  # rounded: the same on any CPU, not after a change
            digest.update(name.encode() + np.round(reader.get_tensor(name).astype(np.float64), 4).tobytes())
    digest.update(f"{result.loss:.5f} {result.accuracy} {result.grad_ratio:.4f}".encode())
    fingerprint = digest.hexdigest()[:16]
    assert FINGERPRINTS.get(ledgers.NUMERICS) == fingerprint, (
        f"training now computes another result (fingerprint {fingerprint}): bump NUMERICS in "
        "dlcli/comparison/ledger.py and pin the new fingerprint in FINGERPRINTS")  # fmt: skip


def test_a_ledger_of_dlcli_0_3_1_is_reused_without_retraining(runner, workdir):
    # Written by dlcli 0.3.1 (commit 8beda99): `dlcli compare --task xor --what depth
    # --epochs 300 --seeds 2` and `--vary lr=0.3,1 --epochs 20 --seeds 2`, rows in *.json.
    (workdir / "logs/compare").mkdir(parents=True)
    shutil.copy(FIXTURES / "ledger-0.3.1.jsonl", workdir / "logs/compare/results.jsonl")
    before = (workdir / "logs/compare/results.jsonl").read_text()
    depth = ["compare", "--task", "xor", "--what", "depth", "--epochs", "300", "--seeds", "2", "--quiet"]
    lr = ["compare", "--task", "xor", "--vary", "lr=0.3,1", "--epochs", "20", "--seeds", "2", "--quiet"]
    assert "6 in the ledger, 0 to resume, 0 to train" in invoke(runner, *depth, "--dry-run").stdout
    for args, name in ((depth, "depth"), (lr, "lr")):
        rows = json.loads(invoke(runner, *args, "--format", "json").stdout)
        then = json.loads((FIXTURES / f"rows-0.3.1-{name}.json").read_text())
        # Every number of 0.3.1's rows; the diagnosis column is new (and reads run folders,
        # which the fixture does not carry: "no records").
        assert [r.pop("diagnosis") for r in rows] == ["no records (2/2)"] * len(rows)
        assert [{k: v for k, v in r.items() if k != "seconds"} for r in rows] == \
            [{k: v for k, v in r.items() if k != "seconds"} for r in then]  # fmt: skip
    assert (workdir / "logs/compare/results.jsonl").read_text() == before  # nothing trained, nothing appended
    assert not (workdir / "checkpoints").exists()
