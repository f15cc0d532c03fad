"""Diagnosis inside comparisons: each variant's problems in compare's table (text,
json, csv, the API's rows), in the HTML report and the notebook display, and
`--prune` stopping a variant whose runs show a fatal problem."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from dlcli import diagnosis
from tests.conftest import invoke

# XOR, 4 layers of ReLU with Adam: lr 100 blows the loss up (finite, worse than guessing),
# zero init leaves every ReLU dead. 2 seeds each, ~10 s for the module.
XOR_GRID = ["compare", "--task", "xor", "--layers", "4", "--activation", "relu", "--optimizer", "adam",
            "--epochs", "300", "--vary", "lr=0.05,100", "--vary", "init=he,zeros", "--seeds", "2",
            "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def xor_grid(tmp_path_factory):
    """The grid trained once for the module: (its folder, its json rows by variant)."""
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("diagnose-compare")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name in ("DLCLI_LOGDIR", "DLCLI_CHECKPOINT_DIR"):
            patch.delenv(name, raising=False)
        rows = json.loads(invoke(CliRunner(), *XOR_GRID, "--format", "json").stdout)
    return folder, {r["variant"]: r for r in rows}


# -- the labels, on hand-built diagnoses (quick) ------------------------------------------------


def made(*problems: str, fatal: bool = False) -> diagnosis.Diagnosis:
    findings = [diagnosis.Finding(p, [], [1], "", "", "", fatal=fatal) for p in problems]
    return diagnosis.Diagnosis("run", "run", "mnist", findings, 10)


def test_a_variants_label_counts_its_runs_most_serious_first():
    assert diagnosis.label([made(), made()]) == "healthy"
    assert diagnosis.label([made("vanishing gradient")]) == "vanishing"  # one seed: no (1/1)
    runs = [made("stuck at chance", "vanishing gradient"), made("vanishing gradient"), made()]
    assert diagnosis.label(runs) == "vanishing (2/3), at chance (1/3)"
    assert diagnosis.label([made("dead units", fatal=True), None]) == "dead 100% (1/2), no records (1/2)"
    assert diagnosis.label([made("dead units")]) == "dead"
    assert diagnosis.label([]) == "-"


def test_an_entrys_diagnosis_reads_the_records_up_to_its_epochs():
    """A --prune run went on past its rung and blew up there: the rung's entry is
    diagnosed on the rung's records (so a rerun decides the same at that rung)."""
    steps = [10, 20, 30, 40]
    train = {"loss": dict(zip(steps, [1.0, 0.6, 0.5, 80.0])), "accuracy": dict(zip(steps, [0.7, 0.8, 0.85, 0.1]))}
    config = {"task": "mnist", "model": {"layers": 3, "activation": "relu", "init": "xavier"},
              "train": {"optimizer": "adam", "lr": 0.001, "epochs": 2}, "data": {}}  # fmt: skip
    record = {"task": "mnist", "config": config, "status": "finished",
              "result": {"accuracy": 0.1, "loss": 90.0, "epochs": 2, "steps": 40}}  # fmt: skip
    whole = diagnosis.Records("r", Path("r"), record, train, {})
    assert {f.problem for f in diagnosis.diagnose_records(whole).findings} == {"diverged"}
    rung = diagnosis.at_entry(whole, {"epochs": 1, "accuracy": 0.85, "loss": 0.5})
    assert max(rung.train["loss"]) == 20 and rung.record["result"]["accuracy"] == 0.85
    assert diagnosis.diagnose_records(rung).healthy


# -- a trained comparison ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_json_rows_say_each_variants_problems(xor_grid):
    _, rows = xor_grid
    assert rows["lr=0.05,init=zeros"]["diagnosis"] == "dead 100% (2/2), at chance (2/2)"
    assert rows["lr=100.0,init=he"]["diagnosis"].startswith("diverged (2/2)")
    assert "diverged" not in rows["lr=0.05,init=he"]["diagnosis"]


@pytest.mark.slow
def test_the_text_and_csv_tables_have_the_column(xor_grid, runner, monkeypatch):
    folder, rows = xor_grid
    monkeypatch.chdir(folder)
    text = invoke(runner, *XOR_GRID).stdout  # everything from the ledger: nothing trains
    header = next(line for line in text.splitlines() if "variant" in line)
    assert "diagnosis" in header
    assert "dead 100% (2/2), at chance (2/2)" in text
    read = list(csv.DictReader(io.StringIO(invoke(runner, *XOR_GRID, "--format", "csv").stdout)))
    assert {r["variant"]: r["diagnosis"] for r in read} == {v: r["diagnosis"] for v, r in rows.items()}


@pytest.mark.slow
def test_the_api_rows_and_diagnoses(xor_grid, monkeypatch):
    import dlcli

    folder, rows = xor_grid
    monkeypatch.chdir(folder)
    result = dlcli.compare(task="xor", layers=4, activation="relu", optimizer="adam", epochs=300,
                           vary=["lr=0.05,100", "init=he,zeros"], seeds=2, quiet=True)  # fmt: skip
    assert {r["variant"]: r["diagnosis"] for r in result.rows} == {v: r["diagnosis"] for v, r in rows.items()}
    dead = result.diagnoses["lr=0.05,init=zeros"]
    assert len(dead) == 2 and all(d.fatal for d in dead)


@pytest.mark.slow
def test_the_report_and_the_notebook_show_each_variants_findings(xor_grid, runner, monkeypatch):
    import dlcli

    folder, _ = xor_grid
    monkeypatch.chdir(folder)
    invoke(runner, *XOR_GRID, "--report", "report.html")
    page = (folder / "report.html").read_text()
    shown = dlcli.compare(task="xor", layers=4, activation="relu", optimizer="adam", epochs=300,
                          vary=["lr=0.05,100", "init=he,zeros"], seeds=2, quiet=True)._repr_html_()  # fmt: skip
    for html in (page, shown):
        section = html[html.index("diagnosis</"):]
        assert "<strong>lr=0.05,init=zeros</strong>: dead 100% (2/2), at chance (2/2)" in section
        assert "dead units (fatal)" in section and "100% dead at step" in section  # the evidence
        assert "dlcli xor " in section and "--init he" in section  # the fix as a command
        assert "lr=100.0,init=he-s1" in section  # each run's findings


# -- --prune stops a variant whose runs show a fatal problem ----------------------------------------

# 512 synthetic digits, batches of 64: 8 steps an epoch; rungs 1 and 2 epochs, 4 -> 2 -> 1
# variants. lr 10 diverges and zero init leaves every ReLU dead: three fatal variants, so
# successive halving keeps one of them with the healthy one, and the fatal stop does not.
PRUNE_GRID = ["compare", "--vary", "lr=0.001,10", "--vary", "init=he,zeros", "--layers", "2", "--units", "32",
              "--batch-size", "64", "--seeds", "2", "--epochs", "2", "--prune", "--prune-eta", "2", "--quiet",
              "--format", "json"]  # fmt: skip


@pytest.mark.slow
def test_prune_stops_a_fatal_variant_that_halving_would_keep_and_replays_it(runner, digits_npz):
    def rows(*extra):
        out = json.loads(invoke(runner, *PRUNE_GRID, "--data", digits_npz, *extra).stdout)
        return {r["variant"]: {k: v for k, v in r.items() if k != "seconds"} for r in out}

    stopped = rows()
    assert rows() == stopped  # a rerun replays the same decisions from the ledger and the records
    table = invoke(runner, *PRUNE_GRID[:-2], "--data", digits_npz).stdout  # the text table says why
    kept = rows("--no-stop-fatal")  # rung 1 from the ledger; the second-ranked variant goes on
    healthy = "lr=0.001,init=he"
    assert stopped[healthy]["epochs"] == kept[healthy]["epochs"] == 2 and stopped[healthy]["best"]
    second = next(v for v, r in kept.items() if v != healthy and r["epochs"] == 2)  # halving kept it
    assert stopped[second]["verdict"] == "pruned" and stopped[second]["pruned_at"] == 1
    assert stopped[second]["pruned_for"] and ("dead 100%" in stopped[second]["pruned_for"]
                                              or "diverged" in stopped[second]["pruned_for"])  # fmt: skip
    assert kept[second]["pruned_for"] is None and kept[second]["verdict"] != "pruned"
    assert all(r["epochs"] == 1 for v, r in stopped.items() if v != healthy)
    # Not asserted: after --no-stop-fatal continued the second variant's folder, a rerun
    # with the stop can judge its rung on other records (the point logged at the rung's
    # end goes when the run continues) — a known gap, docs/statistics.md.
    assert f"pruned at 1/2 epochs: {stopped[second]['pruned_for']}" in table


def test_a_blow_up_the_run_recovers_from_is_not_fatal():
    """Divergence stops a --prune variant only where the run did not learn again."""
    import math

    from tests.test_diagnose import records

    blow_up = [2.3, 10.5 * math.log(10), 3.0, 1.0, 0.5]
    recovered = diagnosis.diagnose_records(records(blow_up, test_accuracy=0.9))
    at_chance = diagnosis.diagnose_records(records(blow_up, test_accuracy=0.1))
    assert [f.problem for f in recovered.findings] == ["diverged"] and not recovered.fatal
    assert at_chance.fatal
    assert diagnosis.diagnose_records(records([2.3, 5.0 * math.log(10)], test_accuracy=0.9)).fatal  # ends worse


@pytest.mark.slow
def test_a_run_whose_records_are_gone_or_corrupt_says_so(runner, workdir):
    import shutil

    grid = ["compare", "--task", "xor", "--epochs", "50", "--vary", "lr=0.1", "--seeds", "3", "--quiet",
            "--format", "json"]  # fmt: skip
    invoke(runner, *grid)
    runs = sorted((workdir / "logs/compare").glob("*/lr=0.1-s*"))
    shutil.rmtree(runs[0])  # its logs are gone
    event = next((runs[1] / "train").glob("*tfevents*"))
    data = bytearray(event.read_bytes())
    data[40:60] = b"\xff" * 20  # a record's bytes scrambled, its framing kept
    event.write_bytes(bytes(data))
    (row,) = json.loads(invoke(runner, *grid).stdout)  # from the ledger: the table stands
    assert row["diagnosis"].endswith("no records (2/3)")


@pytest.mark.slow
def test_when_every_kept_variant_is_fatal_the_best_goes_on(runner):
    """Never none: two variants with every ReLU dead, halving keeps one, and it goes on."""
    rows = json.loads(invoke(runner, "compare", "--task", "xor", "--layers", "4", "--activation", "relu", "--init",
                             "zeros", "--vary", "lr=0.05,0.1", "--epochs", "2", "--prune", "--prune-eta", "2",
                             "--quiet", "--format", "json").stdout)  # fmt: skip
    assert sorted(r["epochs"] for r in rows) == [1, 2]
    assert all(r["diagnosis"].startswith("dead 100%") for r in rows)
