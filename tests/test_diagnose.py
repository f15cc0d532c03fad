"""`dlcli diagnose`: runs built to show one problem get it named, with its evidence and
a fix; healthy runs get none; the diagnosis reads files only and survives resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dlcli import diagnosis
from dlcli.cli import cli
from conftest import assert_clean_refusal, assert_python_runs, invoke, write_synthetic_digits


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Tiny runs on synthetic digits, each constructed to show one problem (trained
    once for the module through one dlcli.Lab, which compiles each architecture once:
    the tests that use them are marked slow): {name: checkpoint folder}."""
    import dlcli

    root = tmp_path_factory.mktemp("diagnose")
    data = write_synthetic_digits(root / "digits.npz")
    runs = {
        "healthy": {},
        "zeros": {"init": "zeros"},  # every ReLU's input is 0 for every example: 100% dead
        "saturated": {"activation": "sigmoid", "init": "ones"},  # inputs ~x100 Xavier's: flat sigmoids
        "xavier30": {"layers": 30, "units": 32, "init": "xavier"},  # He et al.'s Fig. 3
        "he30": {"layers": 30, "units": 32, "init": "he"},
        "lr10": {"lr": 10},
    }
    lab = dlcli.Lab(logdir=root / "logs", checkpoint_dir=root / "checkpoints", quiet=True)
    for name, settings in runs.items():
        lab.mnist(data=data, epochs=2, log_every=2, name=name, **settings)
    return {name: root / "checkpoints" / name for name in runs}


def problems(folder) -> set[str]:
    return {f.problem for f in diagnosis.diagnose(folder).findings}


def finding(folder, problem):
    return next(f for f in diagnosis.diagnose(folder).findings if f.problem == problem)


@pytest.mark.slow
def test_zero_init_relu_is_all_dead(built):
    dead = finding(built["zeros"], "dead units")
    assert dead.layers == ["hidden1", "hidden2"] and dead.fatal
    assert "hidden1 100% dead" in dead.evidence and "since step 0" in dead.evidence
    assert "--init he" in dead.command
    assert "stuck at chance" in problems(built["zeros"])


@pytest.mark.slow
def test_sigmoid_with_huge_weights_is_saturated(built):
    found = finding(built["saturated"], "saturated units")
    assert found.layers == ["hidden1", "hidden2"]
    assert "100% of entries saturated" in found.evidence
    assert "--activation relu" in found.command and "--init xavier" in found.command


@pytest.mark.slow
def test_thirty_xavier_relu_layers_vanish_and_he_does_not(built):
    vanishing = finding(built["xavier30"], "vanishing gradient")
    assert vanishing.steps[0] == 0  # the init's doing: at step 0, before any training
    assert "--init he" in vanishing.command
    assert "vanishing gradient" not in problems(built["he30"])


@pytest.mark.slow
def test_learning_rate_ten_diverges(built):
    diverged = finding(built["lr10"], "diverged")
    assert diverged.fatal and "--lr 0.001 " in diverged.command  # the default: a tenth of 10 diverges too


@pytest.mark.slow
def test_a_default_run_on_synthetic_digits_is_healthy(built):
    found = diagnosis.diagnose(built["healthy"])
    assert found.healthy, found.text()
    assert "healthy" in found.text()


@pytest.mark.slow
def test_the_default_mnist_run_is_healthy(real_digits, runner):
    invoke(runner, "mnist", "--data", real_digits, "--name", "default")
    found = diagnosis.diagnose("checkpoints/default")
    assert found.healthy, found.text()


@pytest.mark.slow
def test_the_fix_command_runs(built, runner, tmp_path):
    """A finding's command is one dlcli accepts as it stands (here, asked for --help
    after its options so nothing trains)."""
    import shlex

    command = finding(built["zeros"], "dead units").command
    words = shlex.split(command)
    assert words[:2] == ["dlcli", "mnist"]
    result = runner.invoke(cli, words[1:] + ["--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_command_text_and_json(built, runner):
    text = invoke(runner, "diagnose", built["zeros"]).stdout
    assert "dead units in hidden1, hidden2" in text and "fix:" in text
    data = json.loads(invoke(runner, "diagnose", built["zeros"], "--json").stdout)
    assert data["run"] == "zeros" and not data["healthy"]
    assert {"problem", "layers", "steps", "evidence", "fix", "command", "fatal"} <= set(data["findings"][0])
    assert json.loads(invoke(runner, "diagnose", built["healthy"], "--json").stdout)["healthy"] is True


@pytest.mark.slow
def test_python_api(built):
    import dlcli

    result = dlcli.diagnose(built["lr10"])
    assert "diverged" in repr(result) and not result.healthy
    assert "diverged" in result._repr_html_()
    assert dlcli.diagnose(built["healthy"]).healthy


@pytest.mark.slow
def test_diagnosing_imports_no_tensorflow(built):
    assert_python_runs(
        "import sys\nfrom dlcli.cli import cli\n"
        f"cli.main(['diagnose', {str(built['zeros'])!r}, '--json'], standalone_mode=False)\n"
        "assert 'tensorflow' not in sys.modules, 'diagnose imported TensorFlow'\n"
    )


def test_refusals_are_one_line(runner, tmp_path):
    assert_clean_refusal(runner.invoke(cli, ["diagnose", "nowhere"]),
                         "nowhere is not a folder", exit_code=1)  # fmt: skip
    (tmp_path / "empty").mkdir()
    assert_clean_refusal(runner.invoke(cli, ["diagnose", "empty"]),
                         "holds no run", exit_code=1)  # fmt: skip


@pytest.mark.slow
def test_same_diagnosis_after_resume(runner, digits_npz):
    """A run stopped after one epoch and resumed to two is diagnosed as one trained
    straight to two: the same findings, layers, steps and numbers."""
    common = ["--data", digits_npz, "--log-every", 2, "--init", "zeros"]
    invoke(runner, "mnist", *common, "--epochs", 2, "--name", "straight")
    invoke(runner, "mnist", *common, "--epochs", 1, "--name", "resumed")
    invoke(runner, "resume", "checkpoints/resumed", "--epochs", 2)

    def seen(name):
        return [(f.problem, f.layers, f.steps, f.evidence) for f in diagnosis.diagnose(f"checkpoints/{name}").findings]

    assert seen("straight") == seen("resumed") != []


@pytest.mark.slow
def test_a_comparison_folder_per_variant(runner, digits_npz):
    invoke(runner, "compare", "--data", digits_npz, "--vary", "init=zeros,xavier", "--epochs", 1, "--points", 1)
    folder = next(p for p in Path("checkpoints/compare").iterdir() if p.is_dir())
    text = invoke(runner, "diagnose", folder).stdout
    zeros = next(line for line in text.splitlines() if line.startswith("init=zeros ("))
    assert "dead units in 1 of 1" in zeros, text
    zeros_run = next(d for d in diagnosis.diagnose_all(folder) if diagnosis.variant_of(d) == "init=zeros")
    command = zeros_run.findings[0].command  # a fix for a comparison's run is a plain run of its own
    assert "--name init=zeros-s0-fix" in command, command
    rows = json.loads(invoke(runner, "diagnose", folder, "--json").stdout)
    assert isinstance(rows, list) and {r["variant"] for r in rows} == {diagnosis.variant_of(d) for d in
                                                                       diagnosis.diagnose_all(folder)}  # fmt: skip


@pytest.mark.slow
def test_events_are_read_without_tensorflow_as_tensorboard_reads_them(built):
    """The module's own event reader gives what dlcli.core.summaries (TensorBoard's
    reader) gives, step for step."""
    from dlcli.core.summaries import read_scalars

    logdir = Path(json.loads((built["xavier30"] / "run.json").read_text())["logdir"])
    theirs = {tag: dict(points) for tag, points in read_scalars(logdir, "train").items()}
    assert diagnosis.read_events(logdir / "train") == theirs



@pytest.mark.slow
def test_try_fixes_on_a_vanishing_sigmoid_run_reproduces_the_lecture(real_digits, runner):
    """Lab 10's lesson, from a diagnosis: a 4-hidden-layer sigmoid net with a small
    normal init does not learn (the gradient vanishes), and over 3 paired seeds ReLU,
    ReLU with He init and Xavier init are each clearly better than it (Holm over every
    pair at alpha 0.05), with compare's table above the verdicts."""
    invoke(runner, "mnist", "--data", real_digits, "--activation", "sigmoid", "--layers", 5, "--units", 64,
           "--init", "normal", "--log-every", 10, "--name", "sigmoid")  # fmt: skip
    out = invoke(runner, "diagnose", "checkpoints/sigmoid", "--try-fixes", "--seeds", 3, "-q").stdout
    assert "vanishing gradient" in out
    assert "| as-run" in out and "clearly behind" in out  # compare's table and verdicts
    better = next(line for line in out.splitlines() if line.startswith("fixes clearly better than the run"))
    for fix in ("relu", "relu-he", "xavier-init"):
        assert f"{fix}: clearly better than the run" in out, out
        assert fix in better
    # The Python API gives the same, every run read back from compare's ledger.
    import dlcli

    result = dlcli.Lab(quiet=True).try_fixes("checkpoints/sigmoid", seeds=3)
    assert result.fixes == out[out.index("fixes clearly better"):].strip().splitlines()
    assert {row["variant"] for row in result.rows} == {"as-run", "relu", "relu-he", "xavier-init", "batchnorm"}


def test_try_fixes_refusals(runner, tmp_path):
    for seeds in ("5", "3"):
        assert_clean_refusal(runner.invoke(cli, ["diagnose", "somewhere", "--seeds", seeds]), "--seeds", exit_code=2)
    assert_clean_refusal(runner.invoke(cli, ["diagnose", "somewhere", "--try-fixes", "--json"]), "--json",
                         exit_code=2)  # fmt: skip


@pytest.mark.slow
def test_a_torn_last_event_ends_the_reading(built, tmp_path):
    """A run killed while writing leaves a torn last record: it is left out, the rest is read."""
    logdir = Path(json.loads((built["healthy"] / "run.json").read_text())["logdir"]) / "train"
    whole = diagnosis.read_events(logdir)
    (tmp_path / "train").mkdir()
    for path in logdir.iterdir():
        (tmp_path / "train" / path.name).write_bytes(path.read_bytes()[:-3])
    torn = diagnosis.read_events(tmp_path / "train")
    assert torn and torn != whole
    assert all(torn[tag].items() <= whole[tag].items() for tag in torn)


def test_decision_holds_every_pairs_claim():
    """--try-fixes reads "as-run is below the fix" from the verdicts' own Holm family."""
    from dlcli import verdicts

    decision = verdicts.decide({"as-run": {0: 0.10, 1: 0.11, 2: 0.10, 3: 0.12},
                                "relu": {0: 0.90, 1: 0.91, 2: 0.92, 3: 0.90},
                                "other": {0: 0.11, 1: 0.10, 2: 0.12, 3: 0.10}})  # fmt: skip
    assert decision.behind[("as-run", "relu")] <= decision.alpha
    assert decision.behind[("relu", "as-run")] > decision.alpha
    assert decision.behind[("as-run", "other")] > decision.alpha
    assert len(decision.behind) == decision.tests  # the whole family, no tolerance tests here


def test_fixes_are_planned_as_named_variants_on_the_run_itself(tmp_path):
    """The fixes comparison is compare's plan: one variant per fix on the run's own
    config, its folder named after the run, validated before anything trains."""
    import dlcli.comparison as comparisons

    base = comparisons.base_config("mnist", {"activation": "sigmoid", "layers": 5, "init": "normal"})
    request = comparisons.Request("mnist", base, named=(("as-run", {}), ("relu", {"activation": "relu"}),
                                                        ("relu-he", {"activation": "relu", "init": "he"})),
                                  label="fixes-r", seeds=3, dry_run=True)  # fmt: skip
    plan = comparisons.prepare(request).plan
    assert [v.name for v in plan.variants] == ["as-run", "relu", "relu-he"]
    assert plan.columns == ("activation", "init") and plan.label.startswith("fixes-r-")
    configs = {(r.variant.name, r.seed): r.config for r in plan.runs}
    assert configs["as-run", 0].model.activation == "sigmoid" and configs["relu-he", 2].model.init == "he"
    assert configs["relu", 1].model.layers == 5 and configs["relu", 1].train.seed == 1


@pytest.mark.slow
def test_one_logistic_unit_on_xor_is_stuck_and_the_fix_is_depth(runner):
    """Lecture 9: one unit draws one line, so XOR stays at chance; the fix is layers."""
    invoke(runner, "xor", "--layers", 1, "--epochs", 2000, "--name", "one")
    stuck = finding("checkpoints/one", "stuck at chance")
    assert "ln 2" in stuck.evidence and stuck.fatal
    assert "--layers 4" in stuck.command and stuck.fixes == {"deeper": {"layers": 4}}


# -- the rules on records built by hand (no training): each at both sides of its threshold --


def records(loss, *, accuracy=None, test_accuracy=0.9, layers=None, status="finished", task="mnist"):
    """A run's records: train loss (and accuracy) per logging window of 10 steps, the final
    test accuracy, and per-layer series {layer: {quantity: [value per window]}}."""
    steps = [10 * (i + 1) for i in range(len(loss))]
    train = {"loss": dict(zip(steps, loss))}
    if accuracy is not None:
        train["accuracy"] = dict(zip(steps, accuracy))
    for layer, quantities in (layers or {}).items():
        for quantity, values in quantities.items():
            train[f"layers/{layer}/{quantity}"] = dict(zip([0, *steps], values))
    config = {"task": task, "model": {"layers": 3, "units": 256, "activation": "relu", "init": "xavier",
                                      "dropout": 0.0, "batchnorm": False},
              "train": {"optimizer": "adam", "lr": 0.001, "epochs": 1}, "data": {}}  # fmt: skip
    record = {"task": task, "config": config, "status": status, "result": {"accuracy": test_accuracy}}
    return diagnosis.Records("made", Path("made"), record, train, {})


def found(r) -> set[str]:
    return {f.problem for f in diagnosis.diagnose_records(r).findings}


FALLING = [1.2, 0.8, 0.6, 0.5, 0.45, 0.4, 0.38, 0.36, 0.35, 0.34, 0.33, 0.32]


def test_healthy_records_have_no_finding():
    assert found(records(FALLING, accuracy=[0.9] * 12)) == set()


def test_oscillating_loss_at_its_threshold():
    jumpy = list(FALLING)
    for i in (3, 6, 9):  # 3 of 11 windows rise by more than 10%: 27% >= 20%
        jumpy[i] = jumpy[i - 1] * 1.15
    assert "oscillating loss" in found(records(jumpy))
    jumpy[9] = jumpy[8]  # 2 of 11: 18% < 20%
    assert "oscillating loss" not in found(records(jumpy))


def test_slow_convergence_at_its_threshold():
    chance = math.log(10)
    assert "slow convergence" in found(records([2.3, 2.0, 1.6, 0.5 * chance + 0.01]))
    assert "slow convergence" not in found(records([2.3, 2.0, 1.6, 0.5 * chance - 0.01]))


def test_over_fitting_at_its_threshold():
    assert "over-fitting" in found(records(FALLING, accuracy=[1.0] * 12, test_accuracy=0.89))
    assert "over-fitting" not in found(records(FALLING, accuracy=[1.0] * 12, test_accuracy=0.91))


def test_a_blow_up_that_comes_back_is_divergence():
    chance = math.log(10)
    assert "diverged" in found(records([2.3, 10.5 * chance, 3.0, 1.0, 0.5]))
    assert "diverged" not in found(records([2.3, 9.5 * chance, 3.0, 1.0, 0.5]))


def test_exploding_gradient_at_its_threshold():
    def run(ratio):
        layers = {"hidden1": {"backprop_std": [1.0] + [ratio] * 12}, "hidden2": {"backprop_std": [1.0] * 13},
                  "output": {"weight_grad_norm": [1.0] * 13}}  # fmt: skip
        return records(FALLING, layers=layers)

    assert "exploding gradient" in found(run(71.0))
    assert "exploding gradient" not in found(run(69.0))


def test_dead_saturated_and_vanishing_at_their_thresholds():
    def run(quantity, value, at_start=False):
        series = [value] * 13 if not at_start else [value] + [1.0] * 12
        layers = {"hidden1": {quantity: series}, "hidden2": {quantity: [1.0 if quantity == "backprop_std" else 0.0]
                                                                         * 13}}  # fmt: skip
        return records(FALLING, layers=layers)

    assert "dead units" in found(run("dead", 0.76)) and "dead units" not in found(run("dead", 0.74))
    assert "saturated units" in found(run("saturated", 0.51))
    assert "saturated units" not in found(run("saturated", 0.49))
    # the first hidden layer's dL/da over the last's, at step 0 alone: the init's doing
    assert "vanishing gradient" in found(run("backprop_std", 0.009, at_start=True))
    assert "vanishing gradient" not in found(run("backprop_std", 0.011, at_start=True))


def test_stuck_at_chance_at_its_thresholds():
    chance = math.log(10)
    assert "stuck at chance" in found(records([chance] * 4, test_accuracy=0.14))
    assert "stuck at chance" not in found(records([chance] * 4, test_accuracy=0.16))
    assert "stuck at chance" not in found(records([chance * 1.06] * 4, test_accuracy=0.10))


def test_a_run_stopped_by_a_nan_is_diverged():
    r = records([2.3, 1.5], status="diverged")
    assert "diverged" in found(r)
    assert "--lr 0.0001" in next(f for f in diagnosis.diagnose_records(r).findings if f.problem == "diverged").command


def test_over_fitting_with_dropout_already_asks_for_data():
    r = records(FALLING, accuracy=[1.0] * 12, test_accuracy=0.8)
    r.config["model"]["dropout"] = 0.5
    r.config["data"] = {"limit": 300}
    over = next(f for f in diagnosis.diagnose_records(r).findings if f.problem == "over-fitting")
    assert over.fix == "more training data" and "--limit" not in over.command and "more-data" in over.command
