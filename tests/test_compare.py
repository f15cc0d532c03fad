"""`dlcli compare`: variant sets as real runs, formats, the ledger, statistics."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest

from dlcli.cli import cli
from conftest import assert_one_line_error, assert_usage_refused, invoke, subprocess_env
from dlcli import experiments
from dlcli.config import DataSpec, TrainSpec


def compare(runner, data, *args):
    return invoke(runner, "compare", "--data", data, "--batch-size", "64", "--quiet", *args)


def ledger_lines(workdir):
    path = workdir / "logs" / "compare" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_sets_and_all_have_the_lecture_variants():
    plan = experiments.plan(("all",), 1, TrainSpec(), DataSpec())
    assert plan.variants == [
        "sigmoid-normal", "relu-normal", "relu-xavier", "relu-he", "deep", "deep-dropout", "deep-batchnorm"
    ]  # fmt: skip
    both = experiments.plan(("activation", "init"), 2, TrainSpec(), DataSpec())
    assert both.variants == ["sigmoid-normal", "relu-normal", "relu-xavier", "relu-he"]
    assert len(both.runs()) == 8
    deep = experiments.VARIANTS["deep-batchnorm"]
    assert (deep.hidden_layers, deep.units, deep.batchnorm, deep.init) == (4, 512, True, "xavier")


def test_statistics_for_known_inputs():
    entries = [{"accuracy": a, "loss": 0.1, "seconds": 1.0, "params": 10, "grad_ratio": r}
               for a, r in ((0.90, 0.5), (0.92, 0.7), (0.94, 0.9))]  # fmt: skip
    row = experiments.summarize("relu-he", entries)
    assert row["accuracy"] == pytest.approx(0.92)
    assert row["accuracy_std"] == pytest.approx(0.02)  # sample std, n - 1
    half = 4.303 * 0.02 / 3**0.5  # t(0.975, df=2)
    assert row["ci_low"] == pytest.approx(0.92 - half) and row["ci_high"] == pytest.approx(0.92 + half)
    assert row["grad_ratio"] == pytest.approx(0.7) and row["seconds"] == 3.0 and row["seeds"] == 3
    single = experiments.summarize("relu-he", entries[:1])
    assert single["accuracy_std"] == 0.0 and single["ci_low"] is None


def test_best_row_and_overlap_verdict():
    def row(name, low, high):
        return {"variant": name, "accuracy": (low + high) / 2, "ci_low": low, "ci_high": high, "seeds": 3}

    best, verdict = experiments.best_and_verdict([row("a", 0.90, 0.92), row("b", 0.95, 0.97)])
    assert best == 1 and verdict is None
    best, verdict = experiments.best_and_verdict([row("a", 0.90, 0.955), row("b", 0.95, 0.97)])
    assert best == 1 and "b is not clearly ahead of a" in verdict


def test_every_format_renders_and_a_rerun_trains_nothing(runner, workdir, digits_npz):
    first = compare(runner, digits_npz, "--what", "activation", "--seeds", "2").stdout
    assert len(ledger_lines(workdir)) == 4
    assert "sigmoid-normal" in first and "relu-normal" in first and "*" in first
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
    assert out.read_text().strip() == first.strip().split("\nnote:")[0].strip()


def test_force_reruns_and_runs_land_in_compare_folders(runner, workdir, digits_npz):
    compare(runner, digits_npz, "--what", "activation")
    assert (workdir / "logs/compare/activation/relu-normal-s0/train").is_dir()
    assert (workdir / "checkpoints/compare/activation/sigmoid-normal-s0/run.json").is_file()
    compare(runner, digits_npz, "--what", "activation", "--force")
    assert len(ledger_lines(workdir)) == 4


def test_hparams_are_written_for_the_dashboard(runner, workdir, digits_npz):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    compare(runner, digits_npz, "--what", "activation")
    acc = event_accumulator.EventAccumulator(str(workdir / "logs/compare/activation/relu-normal-s0"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = session.session_start_info.hparams
    assert hparams["activation"].string_value == "relu" and hparams["variant"].string_value == "relu-normal"
    assert "_hparams_/experiment" in content


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_only_the_missing_variants(runner, workdir, digits_npz):
    args = ["compare", "--what", "init", "--data", str(digits_npz), "--batch-size", "8", "--epochs", "3", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "dlcli", *args], cwd=workdir, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(ledger_lines(workdir)) < 1:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-400:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
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
        (["--seeds", "0"], "--seeds"),
        (["--format", "fancy"], "unknown format"),
        (["--output", "no/such/folder/t.md"], "cannot write"),
    ],
)
def test_bad_compare_input(runner, workdir, args, needle):
    assert_usage_refused(runner, workdir, ["compare", *args], needle)


def test_plot_writes_a_png_or_says_what_to_install(runner, workdir, digits_npz):
    import importlib.util

    args = ["compare", "--what", "activation", "--data", str(digits_npz), "--batch-size", "64", "--quiet",
            "--plot", "acc.png"]  # fmt: skip
    if importlib.util.find_spec("matplotlib") is None:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2
        assert_one_line_error(result, "--plot", "pip install 'dlcli[plot]'")
        assert not (workdir / "logs").exists()  # refused before any training
    else:
        invoke(runner, *args)
        assert (workdir / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
