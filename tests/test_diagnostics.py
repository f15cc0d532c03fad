"""Per-layer diagnostics: every number against NumPy, the pathological layers, the
TensorBoard series, and exactness across a real kill and `resume`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke_json, stop_process, subprocess_env, wait_until

from dlcli.core import summaries

SIGMOID_MAX_SLOPE = {"sigmoid": 0.25, "tanh": 1.0}


def tiny_loop(activation="sigmoid", *, batchnorm=False, layers=3, units=5, n=40, seed=3):
    """A real TrainingLoop on 40 random 6-feature examples, 4 classes; probe = 32 of them."""
    from dlcli.config import ModelSpec
    from dlcli.core import models
    from dlcli.core.data import Dataset
    from dlcli.core.train import TrainingLoop

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = rng.integers(0, 4, n).astype(np.int32)
    data = Dataset(x, y, x, y, source="test", num_classes=4)
    spec = ModelSpec(layers=layers, units=units, activation=activation, init="xavier", batchnorm=batchnorm)
    model = models.mlp(spec, data.input_shape, 4, seed=seed)
    return TrainingLoop(model, models.optimizer("sgd", 0.5), data, objective="categorical", batch_size=8, seed=seed,
                        probe_examples=32)  # fmt: skip


def _act(name, z):
    if name == "sigmoid":
        a = 1 / (1 + np.exp(-z))
        return a, a * (1 - a)
    if name == "tanh":
        a = np.tanh(z)
        return a, 1 - a**2
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(float)
    raise ValueError(name)


def reference(loop, activation):
    """{layer: {quantity: value}} computed independently with NumPy (float64)."""
    from dlcli.core import models

    model = loop.model
    x = loop.probe.numpy().astype(np.float64)
    labels = loop.probe_labels.numpy()
    layers = {layer.name: layer for layer in model.layers}
    dense = models.dense_layers(model)
    weights = [(d.kernel.numpy().astype(np.float64), d.bias.numpy().astype(np.float64)) for d in dense]
    zs, acts, slopes, h = [], [], [], x
    for i, (w, b) in enumerate(weights[:-1], start=1):
        z = h @ w + b
        if f"hidden{i}_bn" in layers:  # inference: the moving statistics
            bn = layers[f"hidden{i}_bn"]
            z = (z - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
            z = z * bn.gamma.numpy() + bn.beta.numpy()
        a, slope = _act(activation, z)
        zs.append(z), acts.append(a), slopes.append(slope)
        h = a
    logits = h @ weights[-1][0] + weights[-1][1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = len(x)
    delta = p.copy()
    delta[np.arange(n), labels] -= 1
    delta /= n  # d(mean loss)/d(logits)
    inputs = [x] + acts
    grads, backprop = [None] * len(weights), [None] * len(acts)
    grads[-1] = inputs[-1].T @ delta
    upstream = delta @ weights[-1][0].T  # dL/da of the last hidden layer
    for k in range(len(acts) - 1, -1, -1):
        backprop[k] = upstream
        dz = upstream * slopes[k]
        if f"hidden{k + 1}_bn" in layers:
            bn = layers[f"hidden{k + 1}_bn"]
            dz = dz * bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
        grads[k] = inputs[k].T @ dz
        upstream = dz @ weights[k][0].T
    out = {}
    for d, (w, _), g in zip(dense, weights, grads):
        out[d.name] = {"weight_grad_norm": np.linalg.norm(g), "weight_norm": np.linalg.norm(w)}
    for k, (z, a, g, slope) in enumerate(zip(zs, acts, backprop, slopes), start=1):
        p15, p50, p85 = np.percentile(z, [15, 50, 85])
        u15, u50, u85 = np.percentile(z[:, 0], [15, 50, 85])  # one unit's input over the examples
        entry = {"preact_p15": p15, "preact_p50": p50, "preact_p85": p85, "act_mean": a.mean(), "act_std": a.std(),
                 "backprop_std": g.std(), "unit_p15": u15, "unit_p50": u50, "unit_p85": u85}  # fmt: skip
        if activation in SIGMOID_MAX_SLOPE:
            entry["saturated"] = np.mean(slope < 0.1 * SIGMOID_MAX_SLOPE[activation])
        else:
            entry["dead"] = np.mean(np.all(a == 0, axis=0))
        out[f"hidden{k}"].update(entry)
    return out


def assert_matches(measured: dict, expected: dict) -> None:
    assert list(measured) == list(expected)
    for layer, values in expected.items():
        assert set(measured[layer]) - {"update_ratio"} == set(values), layer
        for quantity, value in values.items():
            assert measured[layer][quantity] == pytest.approx(value, rel=2e-5, abs=1e-7), (layer, quantity)


@pytest.mark.parametrize(
    "activation, batchnorm", [("sigmoid", False), ("tanh", False), ("relu", False), ("relu", True)]
)
def test_every_diagnostic_matches_numpy(activation, batchnorm):
    from dlcli.core.train import Hooks

    loop = tiny_loop(activation, batchnorm=batchnorm)
    at_start = loop.measure_layers()
    assert at_start.step == 0
    assert_matches(at_start.values, reference(loop, activation))
    assert all("update_ratio" not in v for v in at_start.values.values())  # no window at step 0

    # Train 15 steps (a logging step every 10, then the end): the update ratio over
    # the last window is ||W_15 - W_10|| / ||W_10||.
    kernels, seen = {}, []

    def on_log(window):
        seen.append(window.layers)
        kernels[window.step] = [d.kernel.numpy().astype(np.float64) for d in loop.diagnostics.dense]

    loop.run(3, log_every=10, hooks=Hooks(on_log=on_log))  # 40 // 8 = 5 steps an epoch
    assert [m.step for m in seen] == [10, 15]
    last = seen[-1]
    assert_matches(last.values, reference(loop, activation))
    for d, before, after in zip(loop.diagnostics.dense, kernels[10], kernels[15]):
        ratio = np.linalg.norm(after - before) / np.linalg.norm(before)
        assert last.values[d.name]["update_ratio"] == pytest.approx(ratio, rel=1e-4)
    # The back-propagated gradients and pre-activations behind the histograms, too.
    expected_z = reference(loop, activation)["hidden1"]["preact_p50"]
    assert np.percentile(last.preactivations["hidden1"], 50) == pytest.approx(expected_z, rel=1e-5)


def test_measuring_changes_nothing_the_training_uses():
    loop = tiny_loop("relu", batchnorm=True)
    loop.model.get_layer("hidden1_bn").moving_mean.assign(np.full(5, 0.3, np.float32))
    before = [v.numpy().copy() for v in loop.model.variables + loop.optimizer.variables]
    loop.measure_layers()
    loop.measure_layers()
    after = [v.numpy() for v in loop.model.variables + loop.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_a_layer_built_dead_reports_every_unit_dead():
    loop = tiny_loop("relu", layers=4)
    loop.model.get_layer("hidden2").bias.assign(np.full(5, -100.0, np.float32))
    values = loop.measure_layers().values
    assert values["hidden2"]["dead"] == 1.0
    assert values["hidden1"]["dead"] < 1.0
    # Nothing flows back through a dead layer: the layers below it learn nothing.
    assert values["hidden1"]["weight_grad_norm"] == 0.0
    assert "saturated" not in values["hidden2"]


def test_a_sigmoid_layer_fed_huge_preactivations_is_saturated():
    loop = tiny_loop("sigmoid")
    layer = loop.model.get_layer("hidden1")
    assert loop.measure_layers().values["hidden1"]["saturated"] < 0.5
    layer.kernel.assign(layer.kernel.numpy() * 1000)
    values = loop.measure_layers().values
    assert values["hidden1"]["saturated"] >= 0.99
    assert "dead" not in values["hidden1"]


@pytest.mark.parametrize(
    "name, saturating, zero_region",
    [("sigmoid", True, False), ("tanh", True, False), ("softsign", True, False), ("hard_sigmoid", True, False),
     ("relu", False, True), ("relu6", True, True), ("elu", False, False), ("leaky_relu", False, False),
     ("softplus", False, False), ("gelu", False, False), ("linear", False, False)],
)  # fmt: skip
def test_activation_families(name, saturating, zero_region):
    from dlcli.core.diagnostics import activation_family
    from dlcli.core.tf_setup import tensorflow

    family = activation_family(tensorflow().keras.activations.get(name))
    assert (family.saturating, family.zero_region) == (saturating, zero_region)


def _awkward_arrays(rng):
    """Arrays that trip a bucketing or interpolation shortcut: values exactly on the
    bucket edges, ties, a constant array, one value, huge and tiny scales, float32."""
    for trial in range(400):
        low, high = sorted(rng.normal(size=2) * rng.choice([1e-6, 1.0, 1e4]))
        edges = np.linspace(low, high, summaries.BUCKETS + 1)
        on_edges = rng.choice(edges, int(rng.integers(1, 60)))
        yield np.concatenate([on_edges, rng.normal(size=int(rng.integers(0, 5)))]).astype(np.float32)
        yield rng.integers(-3, 4, int(rng.integers(1, 300))).astype(np.float32)  # ties
    yield np.full(7, 2.5, np.float32)
    yield np.array([1.0])
    yield np.array([1.0, 2.0, np.inf, 4.0, -np.inf], np.float32)  # an overflowed activation
    yield np.array([1.0, np.nan, 4.0, 3.0])
    yield rng.normal(size=(256, 256)).astype(np.float32)


def test_histogram_buckets_are_numpy_histograms_bit_for_bit():
    # The buckets are counted from the sorted values (fast); they must be exactly
    # numpy.histogram's over [min, max]. Fault: side="right" in the search, or
    # edges of another formula, and the on-edge arrays count differently.
    rng = np.random.default_rng(0)
    for values in _awkward_arrays(rng):
        flat = values.astype(np.float64).ravel()
        flat = flat[np.isfinite(flat)]  # numpy.histogram refuses them; the buckets leave them out
        buckets = summaries.histogram_buckets(values)
        assert np.array_equal(buckets, summaries.histogram_buckets(np.sort(values, axis=None), presorted=True))
        if flat.min() == flat.max():
            assert buckets.tolist() == [[flat.min() - 0.5, flat.max() + 0.5, flat.size]]
            continue
        counts, edges = np.histogram(flat, bins=summaries.BUCKETS, range=(flat.min(), flat.max()))
        assert np.array_equal(buckets, np.stack([edges[:-1], edges[1:], counts], axis=1))
    assert summaries.histogram_buckets(np.zeros((0, 4))).shape == (0, 3)


def test_percentiles_from_sorted_values_are_numpy_percentiles_bit_for_bit():
    # Fault: interpolating from one side only (low + diff * gamma throughout) differs
    # from numpy in the last bits for gamma >= 0.5.
    from dlcli.core.diagnostics import PERCENTILES, sorted_percentiles

    rng = np.random.default_rng(1)
    for values in _awkward_arrays(rng):
        got = sorted_percentiles(np.sort(values, axis=None), PERCENTILES)
        with np.errstate(invalid="ignore"):
            expected = np.percentile(values, PERCENTILES)
        assert np.array_equal(got, expected, equal_nan=True), values


def test_a_run_logs_every_layer_at_step_0_and_every_logging_step(runner):
    out = invoke_json(runner, "xor", "--epochs", "300", "--log-every", "100", "--name", "d")
    scalars = summaries.read_scalars(out["logdir"], "train")
    layer_tags = {t for t in scalars if t.startswith("layers/")}
    expected = {f"layers/hidden{i}/{q}" for i in (1, 2, 3) for q in
                ("preact_p15", "preact_p50", "preact_p85", "act_mean", "act_std", "backprop_std", "saturated",
                 "unit_p15", "unit_p50", "unit_p85")}
    expected |= {f"layers/{l}/{q}" for l in ("hidden1", "hidden2", "hidden3", "output")
                 for q in ("weight_grad_norm", "weight_norm", "update_ratio")}  # fmt: skip
    assert layer_tags == expected  # sigmoid: saturated, never dead
    assert [s for s, _ in scalars["layers/hidden1/act_std"]] == [0, 100, 200, 300]
    assert [s for s, _ in scalars["layers/output/update_ratio"]] == [100, 200, 300]  # no window at step 0
    hist = summaries.read_histograms(out["logdir"])
    for kind in ("preactivations", "backprop_gradients"):
        series = hist[f"hidden2/{kind}"]
        assert [s for s, _ in series] == [0, 100, 200, 300]
        assert series[0][1][:, 2].sum() == 4 * 10  # 4 XOR points x 10 units
    # run.json keeps the first and the last values, the same numbers as the event files.
    record = json.loads((Path(out["checkpoint_dir"]) / "run.json").read_text())
    diagnostics = record["result"]["diagnostics"]
    assert diagnostics["first"]["step"] == 0 and diagnostics["last"]["step"] == 300
    for which, index in (("first", 0), ("last", -1)):
        for layer, values in diagnostics[which]["layers"].items():
            for quantity, value in values.items():
                step, logged = scalars[f"layers/{layer}/{quantity}"][index]
                assert (step, logged) == (diagnostics[which]["step"], pytest.approx(value, rel=1e-6))


# -- exactness across a real interruption -------------------------------------------

MODEL = ["--layers", "3", "--units", "16", "--dropout", "0.3", "--batchnorm", "--batch-size", "8"]
# 2 epochs of 512 // 8 = 64 steps: the resumed run crosses an epoch end (a new data
# order) and a kill after the first steps still leaves over a hundred steps to go.
EPOCHS = 2
STEPS = EPOCHS * 64


def event_steps(logdir, split="train") -> list[int]:
    """Every event's step in a split's event files, tolerating a torn last record
    (the files of a process that was killed, or is still writing)."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    steps = []
    for path in summaries.event_files(logdir / split):
        try:
            for raw in tf.data.TFRecordDataset(str(path)):
                event = event_pb2.Event.FromString(raw.numpy())
                if event.summary.value:
                    steps.append(event.step)
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
            pass
    return steps


def all_series(logdir) -> dict:
    return {split: summaries.read_scalars(logdir, split) for split in ("train", "test")}


def layer_series(logdir) -> dict:
    return {t: v for t, v in summaries.read_scalars(logdir, "train").items() if t.startswith("layers/")}


def assert_strictly_increasing(logdir) -> None:
    for split, series in all_series(logdir).items():
        for tag, points in series.items():
            steps = [s for s, _ in points]
            assert steps == sorted(set(steps)), f"{split}/{tag}: {steps}"
    hist = summaries.read_histograms(logdir)
    for tag, points in hist.items():
        steps = [s for s, _ in points]
        assert steps == sorted(set(steps)), f"histogram {tag}: {steps}"


def start(workdir, args, name):
    return subprocess.Popen(
        [sys.executable, "-m", "dlcli", "mnist", *args, "--name", name, "--quiet"],
        cwd=workdir, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_every_series_stays_strictly_increasing_after_sigkill_with_log_every_1(runner, workdir, digits_npz):
    # Logging at every step puts an event right after the checkpoint the run resumes
    # from (here the only one, step 0): a truncation that keeps one step too many
    # leaves a duplicate step 1 behind.
    args = ["--data", str(digits_npz), *MODEL, "--epochs", str(EPOCHS), "--log-every", "1"]
    proc = start(workdir, args, "killed")
    logdir = workdir / "logs/killed"
    wait_until(lambda: any(s >= 3 for s in event_steps(logdir)), proc, what="steps past 2 in the event files")
    stop_process(proc, signal.SIGKILL)
    written = event_steps(logdir)
    assert 1 in written and max(written) < STEPS, "the kill must land mid-run, after step 1 was logged"

    resumed = invoke_json(runner, "resume", "checkpoints/killed")
    whole = invoke_json(runner, "mnist", *args, "--name", "whole")
    assert_strictly_increasing(resumed["logdir"])
    # Point for point the uninterrupted run's series, the per-layer ones included.
    assert all_series(resumed["logdir"]) == all_series(whole["logdir"])
    assert any(t.startswith("layers/") for t in all_series(whole["logdir"])["train"])


@pytest.mark.slow
def test_diagnostics_survive_a_sigkill_and_resume_mid_window_exactly(runner, workdir, digits_npz):
    # Checkpoints every 3 steps, logging every 5: resuming from a checkpoint that is
    # no logging step, the first update ratio after it spans steps from before the
    # kill, and only the checkpointed previous kernels can give the same number.
    args = ["--data", str(digits_npz), *MODEL, "--epochs", str(EPOCHS), "--log-every", "5", "--save-every", "3",
            "--keep", "1000"]  # fmt: skip
    proc = start(workdir, args, "killed")
    folder = workdir / "checkpoints/killed"
    wait_until(lambda: len(list(folder.glob("ckpt-*.index"))) >= 4, proc, what="a few checkpoints")
    stop_process(proc, signal.SIGKILL)
    steps = sorted(int(p.name[5:-6]) for p in folder.glob("ckpt-*.index"))
    assert steps[-1] < STEPS, "the kill must land mid-run"
    # Resume from the newest checkpoint that is no logging step (an older one stands
    # in, as it would for a torn newest one): drop the ones after it.
    resume_from = max(s for s in steps if s % 5)
    for p in folder.glob("ckpt-*"):
        if int(p.name.split("-")[1].split(".")[0]) > resume_from:
            p.unlink()
    (folder / "checkpoint").unlink()

    resumed = invoke_json(runner, "resume", "checkpoints/killed")
    whole = invoke_json(runner, "mnist", *args, "--name", "whole")
    assert resumed["steps"] == whole["steps"] == STEPS
    ours, theirs = layer_series(resumed["logdir"]), layer_series(whole["logdir"])
    window_end = (resume_from // 5 + 1) * 5
    ratio = dict(ours["layers/hidden1/update_ratio"])
    assert ratio[window_end] == dict(theirs["layers/hidden1/update_ratio"])[window_end]
    # (Not the train loss and accuracy: they average the steps of a logging window,
    # and the resumed process saw only the window's steps after the checkpoint.)
    assert ours == theirs
    record = lambda name: json.loads((workdir / f"checkpoints/{name}/run.json").read_text())["result"]  # noqa: E731
    assert record("killed")["diagnostics"] == record("whole")["diagnostics"]
    assert_strictly_increasing(resumed["logdir"])


@pytest.mark.slow
def test_a_checkpoint_from_before_diagnostics_still_resumes(workdir):
    # dlcli 0.2's checkpoints hold no previous kernels: resume restores the rest and
    # starts the update window at the restored step (instead of "cannot restore").
    import tensorflow as tf

    from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec
    from dlcli.core import session
    from dlcli.core.distribute import DistributeSpec
    from dlcli.core.reuse import Reuse
    from dlcli.core.runs import RunFolder

    config = RunConfig(task="xor", name="old", model=ModelSpec(layers=4, units=10, activation="sigmoid", init="normal"),
                       train=TrainSpec(optimizer="sgd", lr=0.01, epochs=300, batch_size=0, log_every=100),
                       data=DataSpec(dataset="xor"))  # fmt: skip
    session.train(config)
    folder = workdir / "checkpoints/old"
    data = session.load_data(config, Reuse())
    old = session._Session(RunFolder.open(folder), config, data, DistributeSpec().validate(), Reuse())
    old.restore()
    for path in folder.glob("ckpt-*"):
        path.unlink()
    before = old._checkpoint_without(["diagnostics", "window"])  # as 0.2 wrote them
    tf.train.CheckpointManager(before, str(folder), max_to_keep=3, checkpoint_name="ckpt").save(checkpoint_number=300)
    old.summaries.close()
    assert not session._holds(str(folder / "ckpt-300"), "diagnostics")
    result = session.resume(folder, epochs=400)
    assert result.steps == 400
    assert result.diagnostics["last"]["layers"]["output"]["update_ratio"] > 0
