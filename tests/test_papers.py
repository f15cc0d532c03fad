"""The papers as presets (`compare --what glorot|he|batchnorm`), the "standard" init,
and the pictures beside compare's --plot (the depth profile, each paper's figure)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from conftest import assert_usage_refused, invoke

from dlcli import comparison as comparisons
from dlcli.config import DataSpec
from dlcli.errors import ConfigError


def paper_plan(what, vary=(), explicit=None, seeds=1):
    settings = explicit or {}
    base = comparisons.base_config("mnist", settings, data=DataSpec(), logdir="logs", checkpoint_dir="checkpoints")
    return comparisons.plan("mnist", what, vary, base, explicit=set(settings), seeds=seeds)


def run_settings(plan) -> dict:
    """{variant: (layers, units, activation, init, batchnorm, optimizer, lr, batch size, epochs)} of seed 0."""
    out = {}
    for run in plan.runs:
        m, t = run.config.model, run.config.train
        out[run.variant.name] = (m.layers, m.units, m.activation, m.init, m.batchnorm, t.optimizer, t.lr,
                                 t.batch_size, t.epochs)  # fmt: skip
    return out


# -- planning -----------------------------------------------------------------------------


def test_each_paper_plans_its_variants_on_its_own_base_run():
    glorot = paper_plan(("glorot",))
    assert glorot.label == "glorot" and glorot.paper == "glorot" and glorot.columns == ("activation", "init")
    assert run_settings(glorot) == {
        f"{a}-{name}": (6, 100, a, init, False, "sgd", 0.03, 10, 10)
        for a in ("sigmoid", "tanh", "softsign") for name, init in (("standard", "standard"), ("normalized", "xavier"))
    }  # fmt: skip
    he = paper_plan(("he",))
    assert he.label == "he" and he.columns == ("init",)
    assert run_settings(he) == {"xavier-lecun_normal": (30, 64, "relu", "lecun_normal", False, "sgd", 0.01, 32, 5),
                                "he-he_normal": (30, 64, "relu", "he_normal", False, "sgd", 0.01, 32, 5)}  # fmt: skip
    batchnorm = paper_plan(("batchnorm",))
    assert batchnorm.columns == ("batchnorm",)
    assert run_settings(batchnorm) == {
        "sigmoid-plain": (4, 100, "sigmoid", "glorot_normal", False, "sgd", 0.1, 60, 30),
        "sigmoid-batchnorm": (4, 100, "sigmoid", "glorot_normal", True, "sgd", 0.1, 60, 30),
    }
    # The lectures' presets keep the task's base run, and `all` is still the lectures' alone.
    assert comparisons.plan("mnist", ("all",), (), comparisons.base_config("mnist")).paper is None
    assert not set(comparisons.PRESETS["mnist"]["all"]) & {v for p in comparisons.PAPERS
                                                           for v in comparisons.PRESETS["mnist"][p]}  # fmt: skip


def test_your_options_replace_a_papers_base_settings_and_fold_into_its_folder():
    big = paper_plan(("glorot",), explicit={"units": 1000, "epochs": 5, "lr": 0.01})
    assert {s[1:] for s in run_settings(big).values()} >= {(1000, "tanh", "standard", False, "sgd", 0.01, 10, 5)}
    assert all(s[1] == 1000 and s[6] == 0.01 and s[8] == 5 for s in run_settings(big).values())
    assert big.label.startswith("glorot-") and big.label != "glorot"  # another base: its own folder
    # Giving a base setting its preset value is the same comparison, the same folder.
    assert paper_plan(("he",), explicit={"epochs": 5, "units": 64}).label == "he"
    # A grid over a base setting gives one variant per value on the paper's base.
    grid = paper_plan(("he",), vary=("layers=22,30",))
    assert [v.name for v in grid.variants] == ["xavier-lecun_normal,layers=22", "xavier-lecun_normal,layers=30",
                                               "he-he_normal,layers=22", "he-he_normal,layers=30"]  # fmt: skip
    assert [r.config.model.layers for r in grid.runs] == [22, 30, 22, 30]
    assert {r.config.model.units for r in grid.runs} == {64}


@pytest.mark.parametrize(
    "what,vary,explicit,needle",
    [
        (("he",), (), {"init": "he_normal"}, "--init cannot be combined with --what he: its variants set init"),
        (("glorot",), (), {"activation": "relu"}, "--activation cannot be combined with --what glorot"),
        (("batchnorm",), (), {"batchnorm": True}, "--batchnorm cannot be combined with --what batchnorm"),
        (("he",), ("init=he_uniform,lecun_uniform",), {}, "--vary init cannot be combined with --what he"),
        (("he", "init"), (), {}, "--what he cannot be combined with --what init: he runs on a base of its own"),
        (("glorot", "he"), (), {}, "--what glorot cannot be combined with --what he"),
    ],
)
def test_what_a_papers_variants_set_cannot_be_given_and_papers_run_alone(what, vary, explicit, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        paper_plan(what, vary, explicit)


def test_the_cli_plans_a_paper_with_your_sizes_and_refuses_the_rest(runner, workdir):
    out = invoke(runner, "compare", "--what", "he", "--units", "1000", "--epochs", "20", "--dry-run").stdout
    assert "2 variants x 1 seed = 2 runs" in out and re.search(r"compare/he-[0-9a-f]{8}/he-he_normal-s0", out)
    assert_usage_refused(runner, workdir, ["compare", "--what", "he", "--init", "he_normal"], "--init cannot be")
    assert_usage_refused(runner, workdir, ["compare", "--what", "glorot", "--what", "activation"],
                         "--what glorot cannot be combined with --what activation")  # fmt: skip
    help_text = " ".join(invoke(runner, "compare", "--help").stdout.split())  # unwrapped
    assert all(name in help_text for name in ("glorot", "Glorot & Bengio 2010", "He et al. 2015", "Ioffe"))


def test_the_glorot_table_carries_the_papers_test_errors_beside_dlclis():
    from dlcli import report

    plan = paper_plan(("glorot",), seeds=2)
    entries = {v.name: [{"seed": s, "accuracy": 0.9 + 0.01 * i + 0.001 * s, "loss": 0.3, "seconds": 1.0,
                         "params": 10, "grad_ratio": None} for s in (0, 1)]
               for i, v in enumerate(plan.variants)}  # fmt: skip
    rows = comparisons.summarize_all(plan, entries)
    errors = {r["variant"]: r["paper_test_error"] for r in rows}
    assert errors == {"sigmoid-standard": 0.0221, "sigmoid-normalized": None, "tanh-standard": 0.0176,
                      "tanh-normalized": 0.0164, "softsign-standard": 0.0164, "softsign-normalized": 0.0172}  # fmt: skip
    table = report.compare_table(rows, "github", plan.columns)
    line = next(line for line in table.splitlines() if "| tanh-standard " in line)
    assert "paper's test error (full training)" in table and "1.76%" in line and f"{1 - 0.9205:.2%}" in line  # the mean of 0.920 and 0.921
    fitted = report.compare_table(rows, "github", plan.columns, width=400)
    assert "paper's test error (full training)" in fitted and "2.21%" in fitted
    assert json.loads(report.compare_table(rows, "json"))[1]["paper_test_error"] is None
    # Another comparison's rows carry no such key.
    plain = paper_plan(("he",))
    assert "paper_test_error" not in comparisons.summarize_all(plain, {v.name: entries["tanh-standard"]
                                                                       for v in plain.variants})[0]  # fmt: skip


# -- the "standard" init -----------------------------------------------------------------


def test_standard_init_is_uniform_within_one_over_root_fan_in_per_layer():
    from dlcli.config import ModelSpec
    from dlcli.core import models

    model = models.mlp(ModelSpec(layers=4, units=300, init="standard"), (28, 28), 10, seed=3)
    kernels = [layer.kernel.numpy() for layer in models.dense_layers(model)]
    assert [k.shape[0] for k in kernels] == [784, 300, 300, 300]
    for kernel in kernels:
        limit = 1 / np.sqrt(kernel.shape[0])  # U[-1/sqrt(n), 1/sqrt(n)], n = the fan-in
        assert np.abs(kernel).max() <= limit
        assert np.abs(kernel).max() > 0.99 * limit  # fills the interval, not a narrower one
        # A uniform's std is limit/sqrt(3): within 3% for >= 3000 draws (its own sampling
        # error is under 1.5% there).
        assert kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.03)
        assert abs(kernel.mean()) < 4 * limit / np.sqrt(3) / np.sqrt(kernel.size)
    # Each layer its own draw, and the seed alone decides them.
    again = models.mlp(ModelSpec(layers=4, units=300, init="standard"), (28, 28), 10, seed=3)
    assert all(np.array_equal(k, layer.kernel.numpy()) for k, layer in zip(kernels, models.dense_layers(again)))
    assert not np.array_equal(kernels[1], kernels[2] * 1.0)


def test_xavier_and_he_of_the_he_preset_have_std_root_one_and_two_over_fan_in():
    """He et al.'s "Xavier" is std sqrt(1/n); theirs sqrt(2/n) (n the fan-in)."""
    from dlcli.config import ModelSpec
    from dlcli.core import models

    for init, scale in (("lecun_normal", 1.0), ("he_normal", 2.0)):
        model = models.mlp(ModelSpec(layers=3, units=400, init=init), (28, 28), 10, seed=0)
        for layer in models.dense_layers(model)[:2]:
            kernel = layer.kernel.numpy()
            assert kernel.std() == pytest.approx(math.sqrt(scale / kernel.shape[0]), rel=0.03), (init, layer.name)


# -- the He preset at initialisation, from the step-0 diagnostics --------------------------


@pytest.mark.slow
def test_he_preset_at_initialisation_xavier_shrinks_the_signal_by_root_2_a_layer(runner, workdir, real_digits):
    invoke(runner, "compare", "--what", "he", "--data", real_digits, "--limit", "256", "--epochs", "1", "--seeds",
           "2", "--quiet", "--format", "json")  # fmt: skip
    ledger = [json.loads(line) for line in (workdir / "logs/compare/results.jsonl").read_text().splitlines()]
    assert sorted(e["variant"] for e in ledger) == ["he-he_normal"] * 2 + ["xavier-lecun_normal"] * 2
    for entry in ledger:
        layers = entry["diagnostics"]["first"]["layers"]
        assert entry["diagnostics"]["first"]["step"] == 0
        hidden = [layers[f"hidden{i}"] for i in range(1, 30)]
        std = np.array([h["act_std"] for h in hidden])
        grads = np.array([layers[name]["weight_grad_norm"] for name in [f"hidden{i}" for i in range(1, 30)] + ["output"]])
        if entry["variant"].startswith("xavier"):
            # The std falls by sqrt(2) a layer: 28 layers from hidden1 to hidden29, 2^14 in all.
            per_layer = (std[0] / std[-1]) ** (1 / 28)
            assert 1.3 < per_layer < 1.55, per_layer
            assert np.all(std[1:] < std[:-1])
            xavier_grads = grads
        else:
            # He keeps the second moment in expectation; with 64 units a layer's std still
            # wanders (a random walk over 29 layers), within a small factor of the first's.
            assert std.max() / std[0] < 4 and std.min() / std[0] > 1 / 4, std
            he_grads = grads
    assert xavier_grads.max() * 1000 < he_grads.min(), (xavier_grads.max(), he_grads.min())


# -- the pictures ---------------------------------------------------------------------------


def not_blank(path) -> bool:
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    return pixels.std() > 0.02


@pytest.mark.slow
def test_compare_plot_adds_the_depth_profile_mean_over_seeds(runner, workdir, digits_npz):
    from dlcli import paper_plots

    invoke(runner, "compare", "--vary", "activation=sigmoid,relu", "--layers", "5", "--units", "16", "--seeds", "2",
           "--data", digits_npz, "--batch-size", "64", "--quiet", "--plot", "cmp.png")  # fmt: skip
    assert not_blank(workdir / "cmp.png") and not_blank(workdir / "cmp-depth.png")
    assert not (workdir / "cmp-paper.png").exists()  # no paper: no paper figure
    # What it draws: each layer's step-0 gradient norm, the mean of the two seeds' ledger values.
    ledger = [json.loads(line) for line in (workdir / "logs/compare/results.jsonl").read_text().splitlines()]
    entries = {}
    for e in ledger:
        entries.setdefault(e["variant"], []).append(e)
    profile = paper_plots.at_start(entries, "weight_grad_norm")
    assert list(profile["activation=sigmoid"]) == ["hidden1", "hidden2", "hidden3", "hidden4", "output"]
    by_seed = [e["diagnostics"]["first"]["layers"]["hidden1"]["weight_grad_norm"] for e in entries["activation=relu"]]
    assert profile["activation=relu"]["hidden1"] == pytest.approx(sum(by_seed) / 2)
    assert paper_plots.depth_profile_plot(profile, ["activation=sigmoid", "activation=relu"], "again.png",
                                          title="t") == 2  # fmt: skip
    # Sigmoid's gradient dies toward the input, relu's does not (lecture 10).
    sigmoid, relu = profile["activation=sigmoid"], profile["activation=relu"]
    assert sigmoid["hidden1"] / sigmoid["output"] < relu["hidden1"] / relu["output"]


@pytest.mark.slow
@pytest.mark.parametrize("what,args", [("glorot", ["--epochs", "1", "--limit", "100"]),
                                       ("he", ["--layers", "6", "--epochs", "2", "--limit", "64"]),
                                       ("batchnorm", ["--epochs", "2", "--limit", "120"])])  # fmt: skip
def test_each_paper_draws_its_figure(runner, workdir, real_digits, what, args, saved_figures):
    from test_figures import colours_by_label, figure_problems

    out = invoke(runner, "compare", "--what", what, "--data", real_digits, *args, "--quiet", "--plot", f"{what}.png")
    assert f"{what}.png, {what}-depth.png, {what}-paper.png" in out.stderr
    for suffix in ("", "-depth", "-paper"):
        assert not_blank(workdir / f"{what}{suffix}.png"), suffix
    # In the figure style (tests/test_figures.py), each variant in one colour in all three.
    colours: dict[str, set] = {}
    variants = {line.split("|")[1].strip() for line in out.stdout.splitlines()[2:] if line.startswith("|")}
    for name, fig in saved_figures.items():
        assert figure_problems(fig) == [], name
        for label, found in colours_by_label(fig).items():
            if label in variants:
                colours.setdefault(label, set()).update(found)
    assert colours and all(len(found) == 1 for found in colours.values()), colours
