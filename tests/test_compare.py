"""`dlcli compare`: variant sets as real runs, formats, the ledger, statistics."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
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
    tree,
    wait_until,
)

from dlcli import __version__
from dlcli import comparison as experiments
from dlcli.config import DataSpec
from dlcli.errors import ConfigError


def compare(runner, data, *args):
    return invoke(runner, "compare", "--data", data, "--batch-size", "64", "--quiet", *args)


def ledger_lines(workdir):
    path = workdir / "logs" / "compare" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def mnist_plan(what=(), vary=(), seeds=1, **base):
    config = experiments.base_config("mnist", base, data=DataSpec(), logdir="logs", checkpoint_dir="checkpoints")
    return experiments.plan("mnist", what, vary, config, seeds=seeds)


def test_presets_have_the_lecture_variants():
    plan = mnist_plan(("all",))
    assert [v.name for v in plan.variants] == [
        "sigmoid-normal", "relu-normal", "relu-xavier", "relu-he", "deep", "deep-dropout", "deep-batchnorm"
    ]  # fmt: skip
    assert mnist_plan().label == "all" and [v.name for v in mnist_plan().variants] == [v.name for v in plan.variants]
    both = mnist_plan(("activation", "init"), seeds=2)
    assert [v.name for v in both.variants] == ["sigmoid-normal", "relu-normal", "relu-xavier", "relu-he"]
    assert len(both.runs) == 8
    deep = {r.variant.name: r.config.model for r in plan.runs}["deep-batchnorm"]
    assert (deep.hidden_layers, deep.units, deep.batchnorm, deep.init) == (4, 512, True, "xavier")


def test_a_grid_is_the_cartesian_product_named_by_its_settings():
    plan = mnist_plan(vary=("activation=sigmoid,tanh,relu", "init=normal,he"), seeds=3)
    names = [v.name for v in plan.variants]
    assert names[:3] == ["activation=sigmoid,init=normal", "activation=sigmoid,init=he", "activation=tanh,init=normal"]
    assert len(names) == 6 and len(plan.runs) == 18 and plan.columns == ("activation", "init")
    run = plan.runs[-1]
    assert run.config.name == "compare/vary-activation-init/activation=relu,init=he-s2"
    assert (run.config.model.activation, run.config.model.init, run.config.train.seed) == ("relu", "he", 2)
    # Values are normalised: the same grid typed differently is the same comparison.
    again = mnist_plan(vary=("activation=sigmoid,tanh,relu", "init=normal,he"), seeds=3)
    assert again == plan
    typed = mnist_plan(vary=("lr=0.010,1e-3", "batchnorm=yes,off"))
    assert [v.name for v in typed.variants] == [
        "lr=0.01,batchnorm=yes", "lr=0.01,batchnorm=no", "lr=0.001,batchnorm=yes", "lr=0.001,batchnorm=no"
    ]  # fmt: skip


def test_a_preset_combines_with_a_grid_over_what_it_leaves_free():
    plan = mnist_plan(("init",), vary=("lr=0.01,0.001",))
    assert [v.name for v in plan.variants][:2] == ["relu-normal,lr=0.01", "relu-normal,lr=0.001"]
    assert plan.columns == ("activation", "init", "layers", "units", "dropout", "batchnorm", "lr")


def test_a_base_setting_gives_the_comparison_its_own_folder():
    default = mnist_plan(vary=("dropout=0,0.3",))
    wide = mnist_plan(vary=("dropout=0,0.3",), layers=5, units=512)
    assert default.label == "vary-dropout"
    assert wide.label.startswith("vary-dropout-") and wide.label != default.label
    assert all(r.config.model.units == 512 for r in wide.runs)


@pytest.mark.parametrize(
    "what,vary,explicit,needle",
    [
        ((), ("lrate=0.1",), set(), "unknown setting 'lrate'"),
        ((), ("lr",), set(), "expected NAME=V1,V2"),
        ((), ("lr=",), set(), "has no values"),
        ((), ("lr=0.1,,0.2",), set(), "an empty value"),
        ((), ("lr=0.1,0.10",), set(), "0.10 is given twice"),
        ((), ("lr=0.1", "lr=0.2"), set(), "--vary lr is given twice"),
        ((), ("lr=abc",), set(), "--vary lr: --lr must be a number, got 'abc'"),
        ((), ("lr=0",), set(), "--vary lr: --lr must be a positive number, got 0.0"),
        ((), ("dropout=1",), set(), "--vary dropout: --dropout must be in [0, 1), got 1.0"),
        ((), ("layers=0",), set(), "--layers must be an integer >= 1, got 0"),
        ((), ("units=2.5",), set(), "--units must be an integer, got '2.5'"),
        ((), ("activation=sigmoidal",), set(), "unknown activation 'sigmoidal'"),
        ((), ("init=xavierr",), set(), "unknown initializer"),
        ((), ("optimizer=adamm",), set(), "unknown optimizer"),
        ((), ("batchnorm=maybe",), set(), "--batchnorm must be yes or no, got 'maybe'"),
        (("init",), ("activation=relu,tanh",), set(), "cannot be combined with --what init"),
        (("activation",), (), {"activation"}, "--activation cannot be combined with --what activation"),
        ((), ("units=8,16",), {"units"}, "--units and --vary units"),
        (("depth",), (), set(), "not a mnist preset"),
    ],
)
def test_bad_grids_are_refused_naming_the_problem(what, vary, explicit, needle):
    base = experiments.base_config("mnist", data=DataSpec(), logdir="l", checkpoint_dir="c")
    with pytest.raises(ConfigError, match=re.escape(needle)):
        experiments.plan("mnist", what, vary, base, explicit=explicit)


def test_xor_plans_depth_and_refuses_mnist_only_settings():
    base = experiments.base_config("xor", data=DataSpec(), logdir="l", checkpoint_dir="c")
    plan = experiments.plan("xor", (), (), base, seeds=8)
    assert [v.name for v in plan.variants] == ["layers=1", "layers=2", "layers=4"]
    config = plan.runs[0].config
    assert (config.task, config.model.units, config.model.activation, config.train.optimizer) == ("xor", 10, "sigmoid", "sgd")
    assert (config.train.epochs, config.train.batch_size, plan.label) == (20000, 0, "xor-depth")
    with pytest.raises(ConfigError, match="xor runs have no dropout"):
        experiments.plan("xor", (), ("dropout=0,0.5",), base)


def test_the_ledger_key_is_the_whole_configuration():
    from dataclasses import fields, replace

    config = mnist_plan().runs[0].config
    key = experiments.ledger_key(config)
    # Where a run goes never matters...
    assert experiments.ledger_key(replace(config, name="x", logdir="y", checkpoint_dir="z")) == key
    # ...every other field does, including any added later: the key is derived from the
    # config's fields, so this loop covers a new field without anyone listing it.
    for part in ("model", "train", "data"):
        spec = getattr(config, part)
        for f in fields(spec):
            value = getattr(spec, f.name)
            other = (not value) if isinstance(value, bool) else (value or 0) + 1 if isinstance(value, (int, float)) \
                else f"{value}-other"  # fmt: skip
            changed = replace(config, **{part: replace(spec, **{f.name: other})})
            assert experiments.ledger_key(changed) != key, f"{part}.{f.name} is not in the ledger key"
    assert experiments.ledger_key(replace(config, task="xor")) != key


def test_ledger_lines_of_an_older_dlcli_are_set_aside_never_reused(workdir):
    # dlcli 0.1 wrote format 1 (a key of the model, five train settings and the data) and
    # format 2 (the whole config) from models with another weight initialization: their
    # numbers are not this version's, even where the configuration is the same.
    config = mnist_plan(("activation",)).runs[0].config
    key = experiments.ledger_key(config)
    format_1 = json.dumps({"model": config.model.__dict__, "train": {"seed": 0}, "data": config.data.__dict__})
    line = {"variant": "sigmoid-normal", "seed": 0, "accuracy": 0.9, "loss": 0.3, "seconds": 1.0, "params": 10,
            "grad_ratio": 0.1}  # fmt: skip
    ledger = workdir / "results.jsonl"
    ledger.write_text("".join(json.dumps(entry) + "\n" for entry in (
        {**line, "key": format_1}, {**line, "key": key, "key_format": 2}, {"key": 3}, {**line, "key": key,
        "key_format": experiments.KEY_FORMAT, "accuracy": 0.5},
    )) + "not json\n")  # fmt: skip
    entries, older = experiments.ledger_contents(ledger)
    assert list(entries) == [key] and entries[key]["accuracy"] == 0.5
    assert older == 2 and experiments.read_ledger(ledger) == entries
    assert experiments.ledger_contents(workdir / "missing.jsonl") == ({}, 0)


def test_statistics_for_known_inputs():
    from dlcli import verdicts

    # Interval of a mean: scipy.stats.t.interval(0.95, 4, mean, sem) of these five.
    interval = verdicts.accuracy_interval([0.9612, 0.9587, 0.9633, 0.9601, 0.9625])
    assert interval.mean == pytest.approx(0.96116) and interval.std == pytest.approx(0.0018406520583749916)
    assert (interval.low, interval.high) == (pytest.approx(0.9588745286058963, abs=2e-6),
                                             pytest.approx(0.963445471394104, abs=2e-6))  # fmt: skip
    # Paired differences: scipy.stats.ttest_rel(a, b).confidence_interval(0.95) is the interval
    # of the differences' mean; a row's diff interval is that at the verdicts' adjusted level.
    a = dict(enumerate([0.9612, 0.9587, 0.9633, 0.9601, 0.9625]))
    b = dict(enumerate([0.9570, 0.9581, 0.9598, 0.9555, 0.9610]))
    diff = verdicts.mean_interval([a[s] - b[s] for s in a])
    assert diff.mean == pytest.approx(0.00288)
    assert diff.low == pytest.approx(0.0007125937761752483, abs=2e-6)
    assert diff.high == pytest.approx(0.0050474062238248275, abs=2e-6)
    decision = experiments.Judging().decide({"a": a, "b": b})
    marginal = decision.verdicts["b"].diff_to_best_marginal
    assert (marginal.low, marginal.high) == (pytest.approx(-0.0050474062238248275, abs=2e-6),
                                             pytest.approx(-0.0007125937761752483, abs=2e-6))  # fmt: skip
    # Only shared seeds pair up; one value has no interval.
    assert verdicts.paired({0: 0.5, 1: 0.6}, {1: 0.4, 2: 0.9}).mean == pytest.approx(0.2)
    assert verdicts.paired({0: 0.5}, {1: 0.4}) is None
    single = verdicts.accuracy_interval([0.9])
    assert single.std == 0.0 and single.low is None


def rows_of(plan, accuracies, **judging):
    entries = {name: [{"seed": s, "accuracy": acc, "loss": 0.1, "seconds": 1.0, "params": 1, "grad_ratio": None}
                      for s, acc in enumerate(values)] for name, values in accuracies.items()}  # fmt: skip
    decision = experiments.Judging(**judging).decide(experiments.accuracies_of(entries))
    return experiments.summarize_all(plan, entries, decision), decision


def test_rows_carry_paired_differences_and_the_verdicts():
    plan = mnist_plan(vary=("units=8,16,32",), seeds=5)
    accuracies = {"units=8": [0.9470, 0.9481, 0.9498, 0.9455, 0.9510],
                  "units=16": [0.9612, 0.9587, 0.9633, 0.9601, 0.9625],
                  "units=32": [0.9614, 0.9585, 0.9630, 0.9603, 0.9627]}  # fmt: skip
    rows, decision = rows_of(plan, accuracies)
    by = {r["variant"]: r for r in rows}
    assert by["units=32"]["best"] and by["units=32"]["diff_to_best"] is None
    assert by["units=8"]["diff_to_best"] == pytest.approx(-0.01290)
    assert by["units=8"]["verdict"] == "clearly behind" and by["units=8"]["diff_ci_high"] < 0
    assert by["units=16"]["verdict"] == "open" and by["units=32"]["verdict"] == "open"
    assert not any(experiments.starred(r) for r in rows)  # 16 and 32 are not apart: no winner
    assert by["units=8"]["p_behind"] <= 0.05 < by["units=16"]["p_behind"]
    assert decision.family.startswith("verdicts Holm-adjusted over 6 tests (both directions of 3 pairs) at alpha 0.05")
    # A tolerance of one point decides the near-tie; alpha sets the level.
    rows, decision = rows_of(plan, accuracies, tolerance=0.01)
    assert {r["variant"]: r["verdict"] for r in rows}["units=16"] == "within 0.01 of the best"
    assert "9 tests" in decision.family
    rows, _ = rows_of(plan, accuracies, alpha=1e-6)
    assert {r["verdict"] for r in rows} == {"open"}
    assert [r["variant"] for r in experiments.sort_rows(rows, "accuracy")] == ["units=32", "units=16", "units=8"]
    assert [r["variant"] for r in experiments.sort_rows(rows, "name")] == ["units=16", "units=32", "units=8"]


def test_a_clearly_best_row_is_the_only_starred_one_and_one_seed_stars_none():
    from dlcli import report

    plan = mnist_plan(vary=("units=8,16",), seeds=5)
    rows, _ = rows_of(plan, {"units=8": [0.90, 0.91, 0.92, 0.905, 0.915], "units=16": [0.95, 0.96, 0.97, 0.955, 0.966]})
    assert [experiments.starred(r) for r in rows] == [False, True]
    headers, body = report.compare_cells(rows)
    assert headers[0] == "variant" and body[1][headers.index("verdict")] == "clearly best"  # no star column
    plan = mnist_plan(vary=("units=8,16",), seeds=1)
    rows, decision = rows_of(plan, {"units=8": [0.90], "units=16": [0.95]})
    assert not any(experiments.starred(r) for r in rows) and {r["verdict"] for r in rows} == {"no verdict"}
    assert report.verdict_lines(decision) == [
        "note: one seed per variant: no spread to judge by, so no interval and no verdict; use --seeds 3 or more "
        "(or --seeds auto) to test the differences"
    ]  # fmt: skip


def trained_once(tmp_path_factory, name: str, *args) -> tuple:
    """`compare --data D --batch-size 64 --quiet ARGS` trained once for the module, in a
    folder of its own with its own synthetic digits: (folder, data file, stdout)."""
    from click.testing import CliRunner

    with fixture_folder(tmp_path_factory, name) as (folder, data):
        out = compare(CliRunner(), data, *args).stdout
    return folder, data, out


def copied(trained: tuple, workdir) -> tuple:
    """The trained comparison's logs/ and checkpoints/ copied into this test's folder (a
    test may add runs, force them or edit their records): (data file, first stdout). The
    data file stays where it was, so the runs' configurations (the ledger key) match."""
    folder, data, out = trained
    for part in ("logs", "checkpoints"):
        shutil.copytree(folder / part, workdir / part)
    return data, out


@pytest.fixture(scope="module")
def activation_sweep(tmp_path_factory):
    """`compare --what activation --seeds 2` (sigmoid-normal, relu-normal; 1 epoch):
    trained once for the tests that read it, rerun it or build on it; each copies it."""
    return trained_once(tmp_path_factory, "activation-sweep", "--what", "activation", "--seeds", "2")


@pytest.fixture(scope="module")
def units_sweep(tmp_path_factory):
    """`compare --vary units=8,16 --format json`, trained once; each test copies it."""
    return trained_once(tmp_path_factory, "units-sweep", "--vary", "units=8,16", "--format", "json")


@pytest.mark.slow
def test_every_format_renders_and_a_rerun_trains_nothing(runner, workdir, activation_sweep):
    digits_npz, first = copied(activation_sweep, workdir)  # the table the training run printed
    assert len(ledger_lines(workdir)) == 4
    assert "sigmoid-normal" in first and "relu-normal" in first and "| verdict " in first
    for fmt in ("plain", "grid", "pipe", "latex", "html", "rst"):
        out = compare(runner, digits_npz, "--what", "activation", "--seeds", "2", "--format", fmt).stdout
        assert "sigmoid-normal" in out, fmt
    rows = json.loads(compare(runner, digits_npz, "--what", "activation", "--seeds", "2", "--format", "json").stdout)
    assert [r["variant"] for r in rows] == ["sigmoid-normal", "relu-normal"]
    for r in rows:
        assert {"variant", "accuracy", "accuracy_std", "loss", "seconds", "params", "grad_ratio", "seeds"} <= set(r)
        assert r["seeds"] == 2 and r["ci_low"] <= r["accuracy"] <= r["ci_high"]
    parsed = list(csv.DictReader(io.StringIO(
        compare(runner, digits_npz, "--what", "activation", "--seeds", "2", "--format", "csv").stdout
    )))  # fmt: skip
    assert [r["variant"] for r in parsed] == ["sigmoid-normal", "relu-normal"]
    assert float(parsed[1]["accuracy"]) == pytest.approx(rows[1]["accuracy"])
    again = compare(runner, digits_npz, "--what", "activation", "--seeds", "2").stdout
    assert again == first  # same table, and...
    assert len(ledger_lines(workdir)) == 4  # ...nothing was trained again
    out = workdir / "table.md"
    compare(runner, digits_npz, "--what", "activation", "--seeds", "2", "--output", out)
    assert out.read_text() == first  # the table and the lines under it: what the verdicts were adjusted for
    assert "verdicts Holm-adjusted over 2 tests (both directions of 1 pair) at alpha 0.05" in first


def only(paths):
    (path,) = list(paths)
    return path


@pytest.mark.slow
def test_force_reruns_and_runs_land_in_compare_folders(runner, workdir, activation_sweep):
    digits_npz, _ = copied(activation_sweep, workdir)
    trained = ledger_lines(workdir)
    # Its own data and batch size make it another comparison than the default one: a
    # folder of its own (named by the preset and a hash of the shared settings).
    folder = only((workdir / "logs/compare").glob("activation-*"))
    assert re.fullmatch(r"activation-[0-9a-f]{8}", folder.name)
    assert (folder / "relu-normal-s0/train").is_dir()
    assert (workdir / "checkpoints/compare" / folder.name / "sigmoid-normal-s0/run.json").is_file()
    compare(runner, digits_npz, "--what", "activation")
    assert ledger_lines(workdir) == trained  # seed 0 of each variant is in the ledger: nothing trains
    compare(runner, digits_npz, "--what", "activation", "--force")
    forced = ledger_lines(workdir)[len(trained):]  # --force trains both runs again
    assert sorted((e["variant"], e["seed"]) for e in forced) == [("relu-normal", 0), ("sigmoid-normal", 0)]


@pytest.mark.slow
def test_another_base_never_resumes_or_reuses_a_run_of_this_one(runner, workdir, activation_sweep):
    digits_npz, _ = copied(activation_sweep, workdir)
    one = json.loads(compare(runner, digits_npz, "--what", "activation", "--format", "json").stdout)
    assert len(ledger_lines(workdir)) == 4  # 1 epoch: from the ledger
    two = json.loads(compare(runner, digits_npz, "--what", "activation", "--epochs", "2", "--format", "json").stdout)
    assert len(ledger_lines(workdir)) == 6  # two more runs, not two reused ones
    assert [r["accuracy"] for r in one] != [r["accuracy"] for r in two]
    records = [json.loads(p.read_text()) for p in (workdir / "checkpoints/compare").glob("*/relu-normal-s0/run.json")]
    assert sorted(r["config"]["train"]["epochs"] for r in records) == [1, 2]
    assert all(r["status"] == "finished" for r in records)


@pytest.mark.slow
def test_a_grid_reruns_nothing_sorts_and_dry_runs(runner, workdir, digits_npz):
    args = ["--vary", "units=8,16", "--vary", "lr=0.01,0.001", "--seeds", "2", "--format", "json"]
    first = json.loads(compare(runner, digits_npz, *args).stdout)
    assert [r["variant"] for r in first] == ["units=8,lr=0.01", "units=8,lr=0.001", "units=16,lr=0.01",
                                             "units=16,lr=0.001"]  # fmt: skip
    for row in first:
        assert {"units", "lr", "diff_to_best", "diff_ci_low", "diff_ci_high", "ci_low", "seeds"} <= set(row)
        assert row["seeds"] == 2
        if not row["best"]:
            assert row["diff_ci_low"] <= row["diff_to_best"] <= row["diff_ci_high"]
    assert len(ledger_lines(workdir)) == 8
    before = tree(workdir)
    dry = invoke(runner, "compare", "--data", digits_npz, "--batch-size", "64", "--dry-run", *args[:4],
                 "--seeds", "3", "--plot", "p.png", "--report", "r.html").stdout  # fmt: skip
    assert dry.count("| in the ledger") == 8 and dry.count("| train") == 4
    assert "4 variants x 3 seeds = 12 runs: 8 in the ledger, 0 to resume, 4 to train (dry run" in dry
    assert "dry run: --plot p.png, --report r.html not written (there are no results yet)" in dry
    assert tree(workdir) == before  # a dry run writes nothing, pictures and pages included
    by_accuracy = json.loads(compare(runner, digits_npz, *args, "--sort", "accuracy").stdout)
    assert by_accuracy == sorted(first, key=lambda r: -r["accuracy"])
    assert len(ledger_lines(workdir)) == 8  # nothing trained again


@pytest.mark.slow
def test_learning_curves_come_from_the_event_files_and_the_plot_has_them(runner, workdir, digits_npz):
    from dlcli import report
    from dlcli.core import summaries

    compare(runner, digits_npz, "--vary", "activation=sigmoid,relu", "--seeds", "2", "--epochs", "2",
            "--points", "12", "--plot", "curves.png")  # fmt: skip
    folder = only((workdir / "logs/compare").glob("vary-activation-*"))
    series = summaries.read_scalars(folder / "activation=relu-s0", "test", scope=f"{folder.name}/")
    steps = [step for step, _ in series["subset/accuracy"]]
    assert len(steps) >= 12 and steps == sorted(set(steps)) and steps[-1] == 16  # 512/64 x 2 epochs
    assert len(series["accuracy"]) == 2  # the whole test set at each epoch end, as before
    # The Custom Scalars layout puts every variant on one chart.
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(folder))
    acc.Reload()
    assert "custom_scalars__config__" in acc.Tags()["tensors"]
    image = (workdir / "curves.png").read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    pixels = matplotlib.image.imread(str(workdir / "curves.png"))
    assert pixels.shape[1] > 1000 and pixels.std() > 0.05  # three panels, not blank
    # What the plot draws: both variants in every panel, from those event files.
    the_plan = experiments.plan("mnist", (), ("activation=sigmoid,relu",), experiments.base_config(
        "mnist", {"epochs": 2, "batch-size": 64}, data=DataSpec(path=str(digits_npz)),
        logdir="logs", checkpoint_dir="checkpoints"), seeds=2, points=12)  # fmt: skip
    curves = experiments.learning_curves(the_plan)
    assert len(curves[0].by_variant["activation=relu"][1]) == len(steps)
    rows = json.loads(compare(runner, digits_npz, "--vary", "activation=sigmoid,relu", "--seeds", "2", "--epochs",
                              "2", "--points", "12", "--format", "json").stdout)  # fmt: skip
    drawn = report.comparison_plot(rows, curves, str(workdir / "again.png"), task="mnist")
    assert drawn == {"final": 2, "accuracy": 2, "loss": 2}


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_only_the_missing_variants(runner, workdir, digits_npz):
    args = ["compare", "--what", "init", "--data", str(digits_npz), "--batch-size", "8", "--epochs", "3", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "dlcli", *args], cwd=workdir, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    wait_until(lambda: len(ledger_lines(workdir)) >= 1, proc, what="the first finished run")
    stop_process(proc, signal.SIGKILL)
    done_before = [e["variant"] for e in ledger_lines(workdir)]
    assert 1 <= len(done_before) < 3

    result = invoke(runner, *args[:-1], "--format", "json")
    rows = json.loads(result.stdout)
    entries = ledger_lines(workdir)
    assert [e["variant"] for e in entries[: len(done_before)]] == done_before
    assert sorted(e["variant"] for e in entries) == ["relu-he", "relu-normal", "relu-xavier"]  # each once
    # The same sweep never interrupted gives the same numbers.
    fresh = json.loads(invoke(runner, *args[:-1], "--format", "json", "--logdir", "fresh-logs",
                              "--checkpoint-dir", "fresh-ck").stdout)  # fmt: skip
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in fresh]


@pytest.mark.slow
def test_real_digits_relu_beats_sigmoid(runner, real_digits):
    rows = json.loads(invoke(runner, "compare", "--what", "activation", "--data", real_digits, "--epochs", "3",
                             "--quiet", "--format", "json").stdout)  # fmt: skip
    by = {r["variant"]: r for r in rows}
    assert by["relu-normal"]["accuracy"] > by["sigmoid-normal"]["accuracy"] + 0.01
    # The vanishing-gradient diagnostic says why: sigmoid's first layer learns far less.
    assert by["sigmoid-normal"]["grad_ratio"] < by["relu-normal"]["grad_ratio"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--what", "dropout"], "--what"),
        (["--what", "depth"], "not a mnist preset"),
        (["--seeds", "0"], "--seeds"),
        (["--vary", "lrate=0.1"], "unknown setting 'lrate'"),
        (["--vary", "lr=0.1,x"], "--vary lr: --lr must be a number, got 'x'"),
        (["--vary", "units=8,8"], "8 is given twice"),
        (["--vary", "lr="], "has no values"),
        (["--what", "init", "--vary", "init=he,normal"], "cannot be combined"),
        (["--task", "xor", "--dropout", "0.5"], "--dropout is for mnist"),
        (["--task", "xor", "--vary", "batchnorm=yes,no"], "xor runs have no batchnorm"),
        (["--task", "xor", "--dataset", "fashion_mnist"], "--dataset is for mnist comparisons"),
        (["--task", "xor", "--limit", "10"], "--limit is for mnist comparisons"),
        (["--vary", "units=1,2,3,4,5,6", "--vary", "layers=1,2,3,4,5", "--seeds", "4"], "120 runs, more than 100"),
        (["--format", "fancy"], "unknown format"),
        (["--output", "no/such/folder/t.md"], "cannot write"),
    ],
)
def test_bad_compare_input(runner, workdir, args, needle):
    assert_usage_refused(runner, workdir, ["compare", *args], needle)


@pytest.mark.slow
def test_plot_writes_a_png_and_without_matplotlib_says_what_to_install(runner, workdir, activation_sweep,
                                                                      monkeypatch):  # fmt: skip
    import importlib.util

    digits_npz, _ = copied(activation_sweep, workdir)  # the curves are read from its event files
    args = ["compare", "--what", "activation", "--data", str(digits_npz), "--batch-size", "64", "--quiet",
            "--plot", "acc.png"]  # fmt: skip
    invoke(runner, *args)
    assert (workdir / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    args[args.index("activation")] = "init"
    assert_usage_refused(runner, workdir, args, "--plot", "pip install 'dlcli[plot]'")  # before any training


@pytest.mark.slow
def test_xor_depth_the_logistic_unit_never_solves_it_deeper_nets_mostly_do(runner):
    args = ["compare", "--task", "xor", "--what", "depth", "--seeds", "4", "--quiet"]
    rows = {r["variant"]: r for r in json.loads(invoke(runner, *args, "--format", "json").stdout)}
    assert list(rows) == ["layers=1", "layers=2", "layers=4"]
    assert rows["layers=1"]["solved"] == 0 and rows["layers=1"]["accuracy"] <= 0.75
    assert rows["layers=2"]["solved"] >= 0.75 and rows["layers=4"]["solved"] >= 0.5
    assert rows["layers=1"]["diff_ci_high"] < 0  # clearly behind the best, paired over the 4 seeds
    table = invoke(runner, *args).stdout  # the same runs, from the ledger
    line = next(line for line in table.splitlines() if "| layers=1 " in line)
    assert "| 0/4 " in line and "solved" in table.splitlines()[0]


@pytest.mark.slow
@pytest.mark.parametrize("edit", ["another configuration", "an older dlcli"])
def test_a_run_folder_of_another_configuration_is_started_over_not_resumed(runner, workdir, units_sweep, edit):
    # A folder at a planned run's path whose run.json says another configuration (edited
    # by hand), or that an older dlcli made (other initial weights), is never continued
    # as if it were this run.
    args = ["--vary", "units=8,16", "--format", "json"]
    digits_npz, out = copied(units_sweep, workdir)
    first = json.loads(out)
    (workdir / "logs/compare/results.jsonl").unlink()
    (record_path,) = (workdir / "checkpoints/compare").glob("*/units=8-s0/run.json")
    record = json.loads(record_path.read_text())
    if edit == "another configuration":
        record["config"]["train"]["lr"] = 0.5
    else:
        record["versions"]["dlcli"] = "0.1.0"
    record.update(status="running")
    record_path.write_text(json.dumps(record))
    dry = compare(runner, digits_npz, *args[:2], "--dry-run").stdout
    assert re.search(r"\| units=8 +\| 0 +\| train ", dry), dry
    again = json.loads(compare(runner, digits_npz, *args).stdout)
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in first]
    record = json.loads(record_path.read_text())
    assert (record["config"]["train"]["lr"], record["versions"]["dlcli"]) == (0.001, __version__)


@pytest.mark.slow
def test_ledger_results_of_an_older_dlcli_are_not_reused_and_the_summary_says_so(runner, workdir, units_sweep):
    args = ["--vary", "units=8,16", "--format", "json"]
    digits_npz, out = copied(units_sweep, workdir)
    first = json.loads(out)
    ledger = workdir / "logs/compare/results.jsonl"
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    ledger.write_text("".join(json.dumps({**entry, "key_format": 2}) + "\n" for entry in lines))
    dry = compare(runner, digits_npz, *args[:2], "--dry-run").stdout
    # The run folders are this version's (finished): their results are read back from them.
    assert "0 in the ledger, 2 to resume, 0 to train (2 results of dlcli 0.1 set aside" in dry
    again = invoke(runner, "compare", "--data", digits_npz, "--batch-size", "64", *args)
    assert "2 results of dlcli 0.1 set aside: its initial weights differed" in again.stderr
    assert [r["accuracy"] for r in json.loads(again.stdout)] == [r["accuracy"] for r in first]
    assert len(ledger_lines(workdir)) == 4


@pytest.mark.parametrize("data", ["missing.npz", "corrupt.npz"])
def test_a_compare_that_fails_before_training_writes_nothing(runner, workdir, data):
    # The data is read by the first run, after the plan stands (so also a Keras cache
    # without MNIST, offline): nothing of the comparison stays, not even the folders
    # above it or its charts' layout, which `board --list` would show as a run.
    from dlcli.cli import cli

    (workdir / "corrupt.npz").write_bytes(b"not an npz")
    before = tree(workdir)
    result = runner.invoke(cli, ["compare", "--vary", "units=8,16", "--data", data, "--quiet",
                                 "--logdir", "deep/logs", "--checkpoint-dir", "deep/ck"])  # fmt: skip
    assert_clean_refusal(result, data, exit_code=1)
    assert tree(workdir) == before


@pytest.mark.slow
def test_a_run_that_fails_after_another_trained_keeps_what_was_trained(runner, workdir, digits_npz):
    from dlcli.cli import cli

    result = runner.invoke(cli, ["compare", "--vary", "batch-size=64,100000", "--data", str(digits_npz), "--quiet"])
    assert_clean_refusal(result, "--batch-size 100000 is larger than the 512 training examples", exit_code=1)
    assert [e["variant"] for e in ledger_lines(workdir)] == ["batch-size=64"]
    folder = only((workdir / "logs/compare").glob("vary-batch-size*"))
    assert len(list(folder.glob("events.out.tfevents.*.layout"))) == 1  # the charts of what was trained
    assert (folder / "batch-size=64-s0/train").is_dir()
    assert not (workdir / "logs/compare/.claims").exists()


def test_the_ledger_is_read_once_then_only_what_was_appended(workdir):
    config = mnist_plan(("activation",)).runs[0].config
    path = workdir / "results.jsonl"
    line = {"key": experiments.ledger_key(config), "key_format": experiments.KEY_FORMAT, "accuracy": 0.5,
            "loss": 1.0, "seed": 0, "seconds": 1.0, "params": 10}  # fmt: skip
    experiments.append_ledger(path, line)
    ledger = experiments.Ledger.read(path)
    assert ledger.get(config)["accuracy"] == 0.5
    forced = experiments.Ledger.read(path, force=True)
    assert forced.get(config) is None  # --force: what was there is not reused...
    with open(path, "a") as f:
        f.write(json.dumps({**line, "accuracy": 0.75}) + "\n" + json.dumps({**line, "accuracy": 0.9})[:20])
    forced.refresh()
    assert forced.get(config)["accuracy"] == 0.75  # ...what another driver appends since is
    with open(path, "a") as f:
        f.write(json.dumps({**line, "accuracy": 0.9})[20:] + "\n")  # the torn line, completed
    forced.refresh()
    assert forced.get(config)["accuracy"] == 0.9
    experiments.append_ledger(path, {**line, "accuracy": 0.25})
    ledger.refresh()
    assert ledger.get(config)["accuracy"] == 0.25 and ledger.offset == path.stat().st_size


def test_statuses_are_a_type_not_strings(workdir):
    the_plan = mnist_plan(("activation",))
    ledger = experiments.Ledger.read(the_plan.ledger_path)
    statuses = experiments.status(the_plan, ledger)
    assert [how for _, how in statuses] == [experiments.RunStatus.TRAIN] * 2
    assert [run for run, _ in statuses] == list(the_plan.runs)
    experiments.append_ledger(the_plan.ledger_path, {"key": experiments.ledger_key(the_plan.runs[0].config),
                                                     "key_format": experiments.KEY_FORMAT, "accuracy": 0.5,
                                                     "loss": 1.0, "seed": 0, "seconds": 1.0, "params": 10})  # fmt: skip
    ledger.refresh()
    assert experiments.status(the_plan, ledger)[0][1] is experiments.RunStatus.IN_LEDGER
    assert experiments.RunStatus.IN_LEDGER.value == "in the ledger" and experiments.RunStatus.RESUME.done == "resumed"


def test_a_plan_validates_each_run_once(workdir, monkeypatch):
    from dlcli.config import RunConfig

    validated = []
    real = RunConfig.validate
    monkeypatch.setattr(RunConfig, "validate", lambda self: validated.append(self.name) or real(self))
    base = experiments.base_config("mnist", data=DataSpec(), logdir="logs",
                                   checkpoint_dir="checkpoints")  # fmt: skip
    comparison = experiments.prepare(experiments.Request("mnist", base, vary=("units=8,16",), seeds=2))
    assert len(comparison.plan.runs) == len(comparison.statuses) == 4
    assert sorted(validated) == sorted(run.config.name for run in comparison.plan.runs)


def test_a_command_reads_the_ledger_once(runner, workdir, monkeypatch):
    base = experiments.base_config("mnist", data=DataSpec(), logdir="logs",
                                   checkpoint_dir="checkpoints")  # fmt: skip
    the_plan = experiments.plan("mnist", (), ("units=8,16",), base, seeds=2)
    for i, run in enumerate(the_plan.runs):
        experiments.append_ledger(the_plan.ledger_path, {
            "key": experiments.ledger_key(run.config), "key_format": experiments.KEY_FORMAT, "variant": run.variant.name,
            "seed": run.seed, "run": run.config.name, "accuracy": 0.5 + i / 10, "loss": 1.0, "seconds": 1.0,
            "params": 10, "grad_ratio": None,
        })  # fmt: skip
    reads = []
    real = experiments.Ledger.refresh
    monkeypatch.setattr(experiments.Ledger, "refresh", lambda self: reads.append(1) or real(self))
    rows = json.loads(invoke(runner, "compare", "--vary", "units=8,16", "--seeds", "2", "--format", "json").stdout)
    assert [r["accuracy"] for r in rows] == [pytest.approx(0.55), pytest.approx(0.75)]
    assert len(reads) == 1
