"""`dlcli xor`: the lecture's three configurations, the hand-set gates, TensorBoard."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke, invoke_json


def test_single_logistic_unit_cannot_learn_xor(runner):
    out = invoke_json(runner, "xor", "--layers", "1")
    assert out["accuracy"] <= 0.75


def test_single_unit_with_the_labs_zero_init_sits_at_chance(runner):
    out = invoke_json(runner, "xor", "--layers", "1", "--init", "zeros")
    assert out["accuracy"] == 0.5
    assert out["loss"] == pytest.approx(np.log(2), abs=1e-4)  # 0.6931


def test_two_layer_net_solves_xor_given_the_labs_50000_epochs(runner):
    out = invoke_json(runner, "xor", "--layers", "2", "--units", "2", "--epochs", "50000")
    assert out["accuracy"] == 1.0


@pytest.mark.fresh_loops  # built here, not restarted: tests/conftest.py
def test_wide_and_deep_default_solves_xor(runner):
    result = invoke(runner, "xor")
    lines = result.stdout.splitlines()
    assert lines[0].split("|")[1:6] == [" x1   ", " x2   ", " target   ", " hypothesis   ", " prediction   "]
    rows = [[c.strip() for c in line.split("|")[1:6]] for line in lines[2:6]]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("0", "0", "0", "0"), ("0", "1", "1", "1"), ("1", "0", "1", "1"), ("1", "1", "0", "0")
    ]  # fmt: skip
    assert "accuracy on the 4 XOR points 1.0000" in result.stdout


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> tuple:
    """One XOR run that logs and saves every 100 of its 400 epochs, trained once for the
    tests that read its --json summary, checkpoints, record and event files: (its
    folder, its --json output). Nothing here changes what it made."""
    from click.testing import CliRunner
    from conftest import fixture_folder

    with fixture_folder(tmp_path_factory, "xor-run") as (folder, _):
        out = invoke_json(CliRunner(), "xor", "--epochs", "400", "--log-every", "100", "--save-every", "100", "--keep",
                          "2", "--name", "r")  # fmt: skip
    return folder, out


def test_json_summary_has_the_documented_keys(logged_run):
    folder, out = logged_run
    assert set(out) == {"run", "accuracy", "loss", "epochs", "steps", "train_seconds", "checkpoint_dir", "logdir"}
    assert out["run"] == "r" and out["epochs"] == 400 and out["steps"] == 400
    assert out["checkpoint_dir"] == "checkpoints/r" and out["logdir"] == "logs/r"
    assert (folder / out["checkpoint_dir"] / "run.json").is_file()


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_numbers(runner):
    a = invoke_json(runner, "xor", "--epochs", "300", "--seed", "7")
    b = invoke_json(runner, "xor", "--epochs", "300", "--seed", "7")
    c = invoke_json(runner, "xor", "--epochs", "300", "--seed", "8")
    assert a["loss"] == b["loss"] and a["accuracy"] == b["accuracy"]
    assert a["loss"] != c["loss"]


@pytest.mark.slow
def test_runs_without_a_name_get_fresh_folders(runner):
    first = invoke_json(runner, "xor", "--epochs", "10")
    second = invoke_json(runner, "xor", "--epochs", "10")
    assert first["run"] != second["run"]
    assert first["run"].startswith("xor-")


def test_manual_gates_compute_xor(runner):
    out = json.loads(invoke(runner, "xor", "--manual", "--json").stdout)
    assert out["accuracy"] == 1.0
    assert [r["prediction"] for r in out["rows"]] == [0, 1, 1, 0]
    table = invoke(runner, "xor", "--manual").stdout
    assert "W1=[5,5] b1=-8" in table and "gate1" in table


def test_histograms_and_scalars_are_in_the_event_files(logged_run):
    from dlcli.core import summaries

    folder, out = logged_run
    hist = summaries.read_histograms(folder / out["logdir"])
    expected = {f"hidden{i}/{kind}" for i in (1, 2, 3) for kind in ("weights", "biases", "activations")}
    expected |= {"output/weights", "output/biases", "output/hypothesis"}
    assert expected <= set(hist)
    assert [step for step, _ in hist["hidden1/weights"]] == [100, 200, 300, 400]
    buckets = hist["hidden1/weights"][0][1]
    assert buckets.shape[1] == 3 and buckets[:, 2].sum() == 2 * 10  # W1 is 2x10
    assert hist["output/hypothesis"][0][1][:, 2].sum() == 4  # the four XOR points
    scalars = summaries.read_scalars(folder / out["logdir"], "train")
    assert [s for s, _ in scalars["loss"]] == [100, 200, 300, 400]
    assert all(0 <= v <= 1 for _, v in scalars["accuracy"])


def test_checkpoints_and_run_record(logged_run):
    folder, out = logged_run
    folder = folder / out["checkpoint_dir"]
    indexes = sorted(p.name for p in folder.glob("ckpt-*.index"))
    assert indexes == ["ckpt-300.index", "ckpt-400.index"]  # --keep 2
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["task"] == "xor"
    assert record["config"]["model"] == {
        "layers": 4, "units": 10, "activation": "sigmoid", "init": "normal", "dropout": 0.0, "batchnorm": False,
        "sync_batchnorm": False,
    }  # fmt: skip
    assert record["result"]["accuracy"] == out["accuracy"]
    assert record["versions"]["tensorflow"]
