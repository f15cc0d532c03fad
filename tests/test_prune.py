"""`dlcli compare --prune`: successive halving, survivors continued by exact resume."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys

import pytest
from conftest import (
    assert_clean_refusal,
    assert_usage_refused,
    fixture_folder,
    invoke,
    stop_process,
    subprocess_env,
    wait_until,
)
from test_resume import assert_same_state

from dlcli.cli import cli
from dlcli.comparison import prune

# Dropout and batch norm make "bit for bit" strict (their RNG and moving statistics).
# 512 synthetic examples / batch 64 = 8 steps an epoch. Three learning rates that
# differ clearly by the first epoch; eta 2 over 4 epochs: rungs 1, 2, 4 and
# 3 -> 2 -> 1 variants, so a survivor is continued twice.
STEPS_PER_EPOCH = 8
GRID = ["--vary", "lr=0.01,0.001,0.0001", "--layers", "2", "--units", "32", "--dropout", "0.3", "--batchnorm",
        "--batch-size", "64", "--seeds", "2", "--quiet"]  # fmt: skip
PRUNE = ["--epochs", "4", "--prune", "--prune-eta", "2"]


def compare(runner, data, *args, where: str = "", lrs: str = ""):
    """`compare` of GRID (its learning rates `lrs` only, where given) with `args`."""
    folders = ["--logdir", f"{where}/logs", "--checkpoint-dir", f"{where}/ckpt"] if where else []
    grid = [f"lr={lrs}" if lrs and arg.startswith("lr=") else arg for arg in GRID]
    return invoke(runner, "compare", "--data", data, *grid, *folders, *args)


def rows_of(result) -> dict[str, dict]:
    return {r["variant"]: r for r in json.loads(result.stdout)}


def ledger(workdir, where: str = "") -> list[dict]:
    path = workdir / where / "logs/compare/results.jsonl" if where else workdir / "logs/compare/results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def without(rows: dict, *keys: str) -> dict:
    """The rows but their seconds (and `keys`)."""
    return {name: {k: v for k, v in row.items() if k not in ("seconds", *keys)} for name, row in rows.items()}


# -- the rungs, without training ------------------------------------------------------------


@pytest.mark.parametrize(
    "epochs,eta,expected",
    [(9, 3, (1, 3, 9)), (10, 3, (1, 3, 10)), (20, 3, (2, 6, 20)), (27, 3, (1, 3, 9, 27)), (4, 2, (1, 2, 4)),
     (5, 2, (1, 2, 5)), (1, 3, (1,)), (2, 3, (2,)), (2, 2, (1, 2))],
)  # fmt: skip
def test_rungs_are_whole_epochs_dividing_by_eta(epochs, eta, expected):
    assert prune.rungs(epochs, eta) == expected


def test_a_rung_keeps_one_in_eta_and_never_none():
    assert [prune.kept(n, 3) for n in (27, 9, 3, 2, 1, 7)] == [9, 3, 1, 1, 1, 3]
    assert [prune.kept(n, 2) for n in (3, 2, 1)] == [2, 1, 1]


def test_ranking_is_by_mean_accuracy_then_loss_then_plan_order():
    rows = [{"variant": "a", "accuracy": 0.5, "loss": 1.0}, {"variant": "b", "accuracy": 0.9, "loss": 1.0},
            {"variant": "c", "accuracy": 0.5, "loss": 0.5}, {"variant": "d", "accuracy": 0.5, "loss": 0.5}]  # fmt: skip
    assert prune.ranked(rows) == ["b", "c", "d", "a"]


def test_the_dry_run_says_the_rungs_and_that_one_epoch_has_nothing_to_prune(runner, digits_npz):
    out = invoke(runner, "compare", "--data", digits_npz, *GRID, "--epochs", "9", "--prune", "--dry-run").stdout
    assert "--prune (successive halving, keeping 1/3 a rung): 3 variants to 1 epoch, 1 variant to 3 epochs, " \
           "1 variant to 9 epochs" in out  # fmt: skip
    assert "lr=0.01-s0" in out and "train" in out
    one = invoke(runner, "compare", "--data", digits_npz, *GRID, "--epochs", "1", "--prune", "--dry-run").stdout
    assert "one rung, nothing to prune" in one


@pytest.mark.parametrize(
    "args,needle",
    [(["--vary", "epochs=1,2"], "--vary epochs"), (["--prune-eta", "1"], "--prune-eta")],
)
def test_prune_refuses_what_it_cannot_do(runner, workdir, digits_npz, args, needle):
    assert_usage_refused(runner, workdir, ["compare", "--data", str(digits_npz), "--vary", "units=8,16", "--prune",
                                           *args], needle)  # fmt: skip


# -- real runs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serial_prune(tmp_path_factory):
    """One serial `--prune` comparison, made once for the tests that check it or compare
    another way of making it against it: (its folder, its data file, its table)."""
    from click.testing import CliRunner

    with fixture_folder(tmp_path_factory, "serial-prune") as (folder, data):
        rows = rows_of(compare(CliRunner(), data, *PRUNE, "--format", "json"))
    return folder, data, rows


@pytest.mark.slow
def test_prune_continues_the_best_exactly_and_keeps_the_pruned_rows(runner, serial_prune, monkeypatch):
    from dlcli.core import summaries

    workdir, digits_npz, pruned = serial_prune
    monkeypatch.chdir(workdir)  # the comparison's own folder: later steps read and add to its ledger
    entries = ledger(workdir)

    # One ledger line per (run, rung); each rung's runs are the best of the rung before.
    assert all(n == 1 for n in collections.Counter((e["run"], e["epochs"]) for e in entries).values())
    at = {rung: {} for rung in (1, 2, 4)}
    for e in entries:
        at[e["epochs"]].setdefault(e["variant"], []).append(e)
    assert [len(at[r]) for r in (1, 2, 4)] == [3, 2, 1] and len(entries) == 2 * (3 + 2 + 1)
    for lower, upper, keep in ((1, 2, 2), (2, 4, 1)):
        mean = {v: (-sum(e["accuracy"] for e in es) / 2, sum(e["loss"] for e in es) / 2) for v, es in at[lower].items()}
        assert set(at[upper]) == set(sorted(mean, key=mean.get)[:keep]), (lower, mean, list(at[upper]))
    # A continued rung trains only its new epochs (not the run again from its start).
    for rung, previous in ((2, 1), (4, 2)):
        assert {e["trained_steps"] for es in at[rung].values() for e in es} == {(rung - previous) * STEPS_PER_EPOCH}

    # The table: the survivor is compared as usual; each pruned variant keeps its rung's numbers.
    (survivor,) = at[4]
    assert pruned[survivor]["best"] and pruned[survivor]["epochs"] == 4 and pruned[survivor]["pruned_at"] is None
    for variant, row in pruned.items():
        if variant != survivor:
            rung = 2 if variant in at[2] else 1
            assert row["pruned_at"] == rung and not row["best"] and row["diff_to_best"] is None
            assert row["accuracy"] == sum(e["accuracy"] for e in at[rung][variant]) / 2

    # Straight through, without --prune: the survivor's weights, accuracy and loss bit for
    # bit, and every rung's numbers are those of a run trained straight to that rung (the
    # whole grid to 4 epochs; to 1 and 2 epochs, the variant pruned at that rung: a
    # variant's runs are the same in a grid of it alone, only the ones compared differ).
    stopped = {rung: next(v for v, row in pruned.items() if row["pruned_at"] == rung) for rung in (1, 2)}
    straight = {epochs: rows_of(compare(runner, digits_npz, "--epochs", str(epochs), "--format", "json",
                                        where="straight", lrs=stopped[epochs].removeprefix("lr=") if epochs < 4 else ""))
                for epochs in (1, 2, 4)}  # fmt: skip
    assert [list(straight[epochs]) for epochs in (1, 2)] == [[stopped[1]], [stopped[2]]]
    for key in ("accuracy", "loss", "accuracy_std"):
        assert pruned[survivor][key] == straight[4][survivor][key]
    for variant, row in pruned.items():
        reached = row["pruned_at"] or 4
        assert (row["accuracy"], row["loss"]) == (straight[reached][variant]["accuracy"],
                                                  straight[reached][variant]["loss"])  # fmt: skip
    (label,) = [p.name for p in (workdir / "checkpoints/compare").iterdir()]
    for seed in (0, 1):
        run = f"compare/{label}/{survivor}-s{seed}"
        assert_same_state(workdir / "checkpoints" / run, workdir / "straight/ckpt" / run)
        # Its learning curves are the straight run's: the points logged where a rung
        # ended went when the run continued past it.
        for split in ("train", "test"):
            curves = summaries.read_scalars(workdir / "logs" / run, split, f"{label}/")
            assert curves == summaries.read_scalars(workdir / "straight/logs" / run, split, f"{label}/"), split

    # Again: everything comes from the ledger, the same table, marked in words.
    again = compare(runner, digits_npz, *PRUNE)
    assert "pruned at 1/4 epochs" in again.stdout and "pruned at 2/4 epochs" in again.stdout
    assert rows_of(compare(runner, digits_npz, *PRUNE, "--format", "json")) == pruned
    assert len(ledger(workdir)) == len(entries)

    # Without --prune the pruned runs continue from their rung to the whole run, exactly,
    # down to the gradient-ratio diagnostic.
    whole = rows_of(compare(runner, digits_npz, "--epochs", "4", "--format", "json"))
    assert without(whole) == without(straight[4])
    fresh = ledger(workdir)[len(entries):]
    assert {e["trained_steps"] for e in fresh} == {2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH}


@pytest.mark.slow
def test_a_prune_killed_between_rungs_gives_the_same_table_when_run_again(runner, workdir, digits_npz, serial_prune):
    args = ["compare", "--data", str(digits_npz), *GRID, *PRUNE]
    proc = subprocess.Popen([sys.executable, "-m", "dlcli", *args], cwd=workdir, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    first_rung = 3 * 2
    wait_until(lambda: sum(e["epochs"] == 1 for e in ledger(workdir)) >= first_rung, proc, what="the first rung")
    stop_process(proc, signal.SIGKILL)
    assert len(ledger(workdir)) < 2 * (3 + 2 + 1), "the comparison finished before it was killed"

    rows = rows_of(invoke(runner, *args, "--format", "json"))
    entries = ledger(workdir)
    assert all(n == 1 for n in collections.Counter((e["run"], e["epochs"]) for e in entries).values())
    assert len(entries) == 2 * (3 + 2 + 1)
    uninterrupted = serial_prune[2]  # the same comparison, never interrupted
    assert without(rows) == without(uninterrupted)


@pytest.mark.slow
def test_prune_refuses_to_restart_runs_trained_past_its_first_rung(runner, workdir, digits_npz):
    args = ["compare", "--data", str(digits_npz), "--vary", "units=8,16", "--batch-size", "64", "--epochs", "2",
            "--quiet"]  # fmt: skip
    invoke(runner, *args)
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file()}
    result = runner.invoke(cli, [*args, "--prune", "--prune-eta", "2"])
    assert_clean_refusal(result, "went past the 1-epoch rung", "without --prune", "--force", exit_code=1)
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_prune_with_jobs_gives_the_serial_table(runner, workdir, digits_npz, serial_prune):
    # Each rung is an ordinary set of runs through the runner: worker processes too.
    parallel = rows_of(compare(runner, digits_npz, *PRUNE, "--jobs", "2", "--format", "json"))
    serial = serial_prune[2]
    assert without(parallel) == without(serial)
    assert [r["pruned_at"] for r in parallel.values()].count(None) == 1


@pytest.mark.slow
def test_a_pruned_comparison_keeps_every_variants_runs_for_the_report_and_the_depth_profile(workdir):
    """After --prune, the comparison's plan holds the runs as they turned out (each
    variant at the rung it reached), so the HTML report's run table and the depth
    profile, which read the ledger by the plan's runs, find the pruned variants too."""
    from dlcli import comparison as comparisons
    from dlcli import html_report, paper_plots
    from dlcli.config import DataSpec

    base = comparisons.base_config("xor", {"epochs": 4}, data=DataSpec(), logdir="logs", checkpoint_dir="ckpt")
    request = comparisons.Request("xor", base, vary=("layers=1,2,4",), seeds=2, prune=True, prune_eta=2)
    result = comparisons.compare(request)
    pruned = [r for r in result.rows if r.get("pruned_at")]
    assert pruned and all(r["verdict"] == "pruned" for r in pruned)
    runs, _ = html_report._runs(result.plan)
    assert len(runs) == 3 * 2 and all(row[2] != "-" for row in runs), runs  # every run's accuracy is there
    entries = paper_plots.ledger_entries(result)
    assert {v: len(e) for v, e in entries.items()} == {"layers=1": 2, "layers=2": 2, "layers=4": 2}
    for row in pruned:  # the entries are the rung's: the row's own numbers
        assert sum(e["accuracy"] for e in entries[row["variant"]]) / 2 == row["accuracy"]
