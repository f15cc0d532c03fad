"""`dlcli inspect RUN`: the per-layer table from the event files, its formats and
plot, and one-line refusals for everything that cannot be inspected."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from conftest import assert_clean_refusal, assert_usage_refused, invoke, invoke_json

from dlcli.cli import cli

XOR = ["xor", "--epochs", "300", "--log-every", "100"]


@pytest.fixture(scope="module")
def trained_xor(tmp_path_factory):
    """One xor run for the module, trained once: (its checkpoint folder, its log folder)."""
    from click.testing import CliRunner

    root = tmp_path_factory.mktemp("inspect")
    invoke_json(CliRunner(), *XOR, "--name", "x", "--logdir", root / "logs", "--checkpoint-dir", root / "checkpoints")
    return root / "checkpoints/x", root / "logs/x"


@pytest.fixture
def xor_run(trained_xor, workdir):
    """A copy of the module's run in this test's folder (checkpoints/x, logs/x), to read
    or to damage, as if `dlcli xor --name x` had trained it there."""
    from dlcli.core.runs import RunFolder

    checkpoints, logs = trained_xor
    shutil.copytree(logs, workdir / "logs/x")
    RunFolder.open(checkpoints).copy_to(workdir / "checkpoints/x", logdir=workdir / "logs/x")
    return workdir / "checkpoints/x"


def rows(runner, *args) -> list[dict]:
    return json.loads(invoke(runner, "inspect", *args, "--format", "json").stdout)


def test_the_table_shows_every_layer_at_the_first_and_last_logged_step(runner, xor_run):
    table = rows(runner, xor_run)
    assert [(r["step"], r["layer"]) for r in table] == [
        (step, layer) for step in (0, 300) for layer in ("hidden1", "hidden2", "hidden3", "output")
    ]
    # The event files' numbers are the ones run.json kept at the end of the run.
    diagnostics = json.loads((xor_run / "run.json").read_text())["result"]["diagnostics"]
    for row in table:
        which = "first" if row["step"] == 0 else "last"
        kept = diagnostics[which]["layers"][row["layer"]]
        for quantity, value in row.items():
            if quantity in ("step", "layer"):
                continue
            if value is None:  # does not apply: sigmoid is never dead; no window at step 0
                assert quantity not in kept, (row["layer"], quantity)
            else:
                assert value == pytest.approx(kept[quantity], rel=1e-6), (row["layer"], quantity)
    assert all(r["dead"] is None for r in table)
    assert all(r["saturated"] is not None for r in table if r["layer"] != "output")
    text = invoke(runner, "inspect", xor_run).stdout
    assert "saturated" in text and "hidden3" in text and "| 300" in text


@pytest.mark.parametrize("asked, shown", [(140, 100), (160, 200), (150, 100), (0, 0), (300, 300)])
def test_step_picks_the_nearest_logged_step(runner, xor_run, asked, shown):
    assert {r["step"] for r in rows(runner, xor_run, "--step", asked)} == {shown}


def test_a_step_outside_the_logged_range_is_refused_with_the_range(runner, xor_run):
    result = runner.invoke(cli, ["inspect", str(xor_run), "--step", "301"])
    assert_clean_refusal(result, "step 301 is outside", "0 to 300", "4 logged", exit_code=1)


def test_csv_and_tabulate_formats(runner, xor_run):
    parsed = list(csv.DictReader(io.StringIO(invoke(runner, "inspect", xor_run, "--format", "csv").stdout)))
    assert len(parsed) == 8 and parsed[0]["layer"] == "hidden1" and parsed[0]["dead"] == ""
    assert float(parsed[-1]["weight_norm"]) > 0
    plain = invoke(runner, "inspect", xor_run, "--format", "plain").stdout
    assert "|" not in plain and "output" in plain


def test_bad_format_is_a_usage_error(runner, workdir, xor_run):
    assert_usage_refused(runner, workdir, ["inspect", str(xor_run), "--format", "pdf"], "unknown format 'pdf'")


def test_plot_draws_the_depth_profile(runner, workdir, xor_run):
    import matplotlib.image

    result = invoke(runner, "inspect", xor_run, "--plot", "depth.png")
    assert "plot: depth.png" in result.stderr
    pixels = matplotlib.image.imread(str(workdir / "depth.png"))
    assert pixels.shape[0] > 300 and pixels.std() > 0.05


def test_plot_without_matplotlib_says_what_to_install(runner, workdir, xor_run, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert_usage_refused(runner, workdir, ["inspect", str(xor_run), "--plot", "depth.png"], "pip install")


def test_refusals_are_one_line(runner, workdir, xor_run):
    (workdir / "empty").mkdir()
    assert_clean_refusal(runner.invoke(cli, ["inspect", "nowhere"]), "nowhere is not a folder", exit_code=1)
    assert_clean_refusal(runner.invoke(cli, ["inspect", "empty"]), "not a dlcli run folder", exit_code=1)
    record = (xor_run / "run.json").read_text()
    (xor_run / "run.json").write_text("{ torn")
    assert_clean_refusal(runner.invoke(cli, ["inspect", str(xor_run)]), "cannot be read", exit_code=1)
    (xor_run / "run.json").write_text(record)

    # No logs at all, or a log folder without a single event.
    logs = workdir / "logs/x"
    shutil.move(logs, workdir / "moved")
    assert_clean_refusal(runner.invoke(cli, ["inspect", str(xor_run)]), "has no logs", "is missing", exit_code=1)
    (logs / "train").mkdir(parents=True)
    assert_clean_refusal(runner.invoke(cli, ["inspect", str(xor_run)]), "has no logs", exit_code=1)


def test_a_run_made_before_diagnostics_is_told_to_rerun(runner, workdir, xor_run):
    # What an older dlcli left: loss and accuracy in the event files, no layers/ series.
    from dlcli.core import summaries

    shutil.rmtree(workdir / "logs/x")
    old = summaries.Summaries(workdir / "logs/x", model=None)
    for step in (100, 200, 300):
        old.scalars("train", step, loss=0.5, accuracy=0.75)
    old.close()
    record = json.loads((xor_run / "run.json").read_text())
    record["versions"]["dlcli"] = "0.2.0"
    (xor_run / "run.json").write_text(json.dumps(record))
    result = runner.invoke(cli, ["inspect", str(xor_run)])
    assert_clean_refusal(result, "made by dlcli 0.2.0 before per-layer diagnostics", "rerun it", exit_code=1)


def test_a_run_killed_before_its_first_logging_step_shows_step_0(runner, workdir, xor_run):
    from dlcli.core import summaries

    summaries.truncate_after(workdir / "logs/x", 0)  # as a resume would leave a kill before step 100
    table = rows(runner, xor_run)
    assert {r["step"] for r in table} == {0}


def test_help_needs_no_tensorflow():
    from conftest import assert_python_runs

    assert_python_runs(
        "import sys; from click.testing import CliRunner; from dlcli.cli import cli; "
        "r = CliRunner().invoke(cli, ['inspect', '--help']); assert r.exit_code == 0, r.output; "
        "assert 'depth profile' in r.output; assert 'tensorflow' not in sys.modules"
    )


@pytest.mark.slow
def test_a_comparisons_runs_carry_diagnostics_to_the_ledger_and_inspect(runner, workdir, digits_npz):
    # Sigmoid vs ReLU at the same depth: the ledger keeps each run's first and last
    # per-layer values (no event files needed), and inspect reads a comparison's run.
    invoke(runner, "compare", "--data", digits_npz, "--vary", "activation=sigmoid,relu", "--batch-size", "64",
           "--quiet", "--format", "json")  # fmt: skip
    entries = [json.loads(line) for line in (workdir / "logs/compare/results.jsonl").read_text().splitlines()]
    assert len(entries) == 2
    for entry in entries:
        first, last = entry["diagnostics"]["first"], entry["diagnostics"]["last"]
        assert first["step"] == 0 and last["step"] == 8  # 512 examples, batch 64, 1 epoch
        assert list(first["layers"]) == ["hidden1", "hidden2", "output"]
        family = "saturated" if entry["variant"].endswith("sigmoid") else "dead"
        assert family in last["layers"]["hidden1"]
    folders = [p.parent for p in (workdir / "checkpoints").rglob("run.json")]
    assert len(folders) == 2
    for folder in folders:
        assert {r["layer"] for r in rows(runner, folder)} == {"hidden1", "hidden2", "output"}
