"""What the per-layer diagnostics cost: the same runs with them on and off, side by side.

Off, the probe measures only what it measured before them (the histograms'
activations and the W1/WN gradient norms) and nothing extra goes to TensorBoard or
run.json. Runs alternate on/off in this one process, so drift on a noisy machine hits
both sides alike. Targets (issue 19): an MNIST epoch at most 5% slower, XOR's 20,000
steps at most 10% slower.

  xor    20000 full-batch steps of the 4-layer sigmoid net (log every 1000: 21 measurements)
  mnist  the default MLP (2 x 256), batch 128, log every 100, on 60,000 synthetic
         MNIST-shaped examples

  per-log  one logging step (the probe's measurement, the weight/bias/activation
           histograms every run writes, and with the diagnostics on their host work
           and TensorBoard record) before the diagnostics existed, today with them
           off, and on; and the first call's tracing; without whole runs around them
           (steadier on a shared machine)

Usage: python benchmarks/diagnostics.py [--only per-log,xor,mnist] [--reps 3] [--epochs 2] [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(config, reps: int, seconds_of) -> dict[bool, list[float]]:
    """{layers on?: [seconds_of(result, wall) per rep]}, alternating on and off."""
    from dataclasses import replace

    from dlcli.core import session

    samples: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            for layers in (True, False) if rep % 2 == 0 else (False, True):
                run = replace(config, name=f"{config.task}-{rep}-{layers}", logdir=f"{tmp}/logs",
                              checkpoint_dir=f"{tmp}/ck")  # fmt: skip
                start = time.perf_counter()
                result = session.train(run, layers=layers)
                samples[layers].append(seconds_of(result, time.perf_counter() - start))
    return samples


def report(title: str, samples: dict[bool, list[float]], target: float) -> None:
    on, off = statistics.median(samples[True]), statistics.median(samples[False])
    print(f"{title}")
    for layers in (True, False):
        values = ", ".join(f"{v:.3f}" for v in samples[layers])
        median = statistics.median(samples[layers])
        print(f"  diagnostics {'on ' if layers else 'off'}: median {median:.3f} s  ({values})")
    print(f"  cost: {on / off - 1:+.1%} (target <= +{target:.0%})\n")


def bench_xor(reps: int) -> None:
    from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec

    config = RunConfig(
        task="xor", name="xor",
        model=ModelSpec(layers=4, units=10, activation="sigmoid", init="normal"),
        train=TrainSpec(optimizer="sgd", lr=0.01, epochs=20000, batch_size=0, log_every=1000, save_every=0),
        data=DataSpec(dataset="xor"),
    )  # fmt: skip
    measure(config, 1, lambda r, wall: wall)  # warm-up: TensorFlow's first graphs
    samples = measure(config, reps, lambda result, wall: result.train_seconds)
    report("XOR, 20000 steps: training seconds (the step-0 measurement not included)", samples, 0.10)
    walls = measure(config, reps, lambda result, wall: wall)
    report("XOR, 20000 steps: whole session.train wall seconds (model, tracing, step 0, checkpoints)", walls, 0.10)


def bench_mnist(reps: int, epochs: int) -> None:
    from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec

    rng = np.random.default_rng(0)
    n = 60000
    x = (rng.random((n + 10000, 28, 28)) * 255).astype(np.uint8)
    y = rng.integers(0, 10, n + 10000).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.npz"
        np.savez(path, x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:])
        config = RunConfig(
            task="mnist", name="mnist", model=ModelSpec(layers=3, units=256),
            train=TrainSpec(epochs=epochs, batch_size=128, log_every=100), data=DataSpec(path=str(path)),
        )  # fmt: skip
        samples = measure(config, reps, lambda result, wall: result.seconds_per_epoch)
    report(f"MNIST-shaped, 2 x 256, batch 128: seconds per epoch ({epochs} epochs a run)", samples, 0.05)


def bench_per_log(calls: int, rounds: int = 5) -> None:
    """One logging step, without the noise of whole runs, for XOR's and MNIST's
    default nets, three ways, interleaved in `rounds` so that drift hits all alike:

      before  what a logging step did before the diagnostics (dlcli 0.2, 9e32449): the
              probe (activations, W1/WN gradient norms) and the weight/bias/activation
              histograms, bucketed by numpy.histogram and written by one eager
              tf.summary.write per tag (that code, copied below)
      off     today's code with the diagnostics off: the same probe, today's histograms
      on      today's code: the diagnostics' measurement, their host work and record

    and the first call's tracing, on vs off."""
    from dlcli.config import ModelSpec
    from dlcli.core import data as datasets
    from dlcli.core import models, summaries
    from dlcli.core.train import TrainingLoop

    rng = np.random.default_rng(0)
    mnist = datasets.Dataset(rng.random((1024, 28, 28), dtype=np.float32), rng.integers(0, 10, 1024).astype(np.int32),
                             None, None, source="synthetic", num_classes=10)  # fmt: skip
    cases = [
        ("xor 4 x 10 sigmoid", datasets.xor(), ModelSpec(layers=4, units=10, activation="sigmoid", init="normal"),
         "binary"),
        ("mnist 2 x 256 relu", mnist, ModelSpec(layers=3, units=256), "categorical"),
    ]  # fmt: skip
    modes = ("before", "off", "on")
    with tempfile.TemporaryDirectory() as tmp:
        for label, data, spec, objective in cases:
            logs, first = {}, {}
            for mode in modes:
                outputs = 1 if objective == "binary" else 10
                model = models.mlp(spec, data.input_shape, outputs, seed=0)
                loop = TrainingLoop(model, models.optimizer("sgd", 0.01), data, objective=objective, batch_size=0,
                                    seed=0, probe_examples=256, layer_diagnostics=mode == "on")  # fmt: skip
                writer = summaries.Summaries(Path(tmp) / f"{label}-{mode}", model)
                logs[mode] = _logging_step(mode, loop, writer)
                start = time.perf_counter()
                logs[mode](0)
                first[mode] = time.perf_counter() - start
            each: dict[str, list[float]] = {mode: [] for mode in modes}
            for round_ in range(rounds):
                for mode in modes if round_ % 2 == 0 else modes[::-1]:
                    start = time.perf_counter()
                    for step in range(1, calls // rounds + 1):
                        logs[mode](step)
                    each[mode].append((time.perf_counter() - start) / (calls // rounds))
            ms = {mode: statistics.median(each[mode]) * 1e3 for mode in modes}
            print(f"{label}: per logging step (median of {rounds} rounds of {calls // rounds}) "
                  f"before {ms['before']:.2f} ms, off {ms['off']:.2f} ms, on {ms['on']:.2f} ms: "
                  f"on - off {ms['on'] - ms['off']:+.2f} ms, on - before {ms['on'] - ms['before']:+.2f} ms; "
                  f"first call (tracing) on - off {first['on'] - first['off']:+.3f} s")  # fmt: skip
    print()


def _logging_step(mode: str, loop, writer):
    """What a logging step does besides its two scalars, as `mode` (bench_per_log)."""
    if mode == "before":
        probe = _probe_before(loop)

        def log(step):
            activations, norms = probe(loop.probe, loop.probe_labels)
            loop.grad_norm_sums.assign_add(tf_cast(norms))
            _histograms_before(writer, step, activations)

        return log

    def log(step):
        measured = loop.diagnostics.measure(loop.probe, loop.probe_labels)
        loop.grad_norm_sums.assign_add(tf_cast(measured["first_last"]))
        writer.histograms(step, measured["activations"], measured["weights"])
        if mode == "on":
            writer.layers(loop.diagnostics.to_host(measured, step))

    return log


def _probe_before(loop):
    """TrainingLoop._probe as it was before the diagnostics (9e32449), compiled the same way."""
    from dlcli.core import models
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    model = loop.model
    kernels = [layer.kernel for layer in models.dense_layers(model)]
    ids = [id(v) for v in model.trainable_variables]
    first_kernel, last_kernel = ids.index(id(kernels[0])), ids.index(id(kernels[-1]))

    def probe(features, labels):
        kernels = [model.trainable_variables[i] for i in (first_kernel, last_kernel)]
        activations, x = {}, features
        with tf.GradientTape() as tape:
            for layer in model.layers:
                x = layer(x, training=False)
                if layer.name.endswith("_act"):
                    activations[layer.name[: -len("_act")]] = x
            loss = tf.reduce_mean(loop._per_example_loss(labels, x))
        norms = tf.stack([tf.norm(g) for g in tape.gradient(loss, kernels)])
        activations["output"] = loop._hypothesis(x)
        return activations, norms

    return tf.function(probe, autograph=False)


def _histograms_before(writer, step: int, activations: dict) -> None:
    """Summaries.histograms as it was before the diagnostics (9e32449), verbatim but
    for the names: numpy.histogram's buckets, one eager write per tag."""
    from dlcli.core import models
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()

    def buckets(values, bucket_count=30):
        values = values.astype(np.float64).ravel()
        low, high = values.min(), values.max()
        if low == high:
            return np.array([[low - 0.5, high + 0.5, float(values.size)]])
        counts, edges = np.histogram(values, bins=bucket_count, range=(low, high))
        return np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)

    data = {}
    for layer in models.dense_layers(writer.model):
        data[f"{layer.name}/weights"] = layer.kernel
        data[f"{layer.name}/biases"] = layer.bias
        if layer.name in activations:
            data[f"{layer.name}/activations"] = activations[layer.name]
    data["output/hypothesis"] = activations["output"]
    with writer.writer("train").as_default(step=step):
        for tag, values in data.items():
            tf.summary.write(tag, buckets(np.asarray(values)), metadata=writer._metadata)


def tf_cast(tensor):
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    return tf.cast(tensor, tf.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="per-log,xor,mnist")
    parser.add_argument("--calls", type=int, default=200, help="measurements timed per net in per-log")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    only = args.only.split(",")
    if "per-log" in only:
        bench_per_log(args.calls)
    if "xor" in only:
        bench_xor(args.reps)
    if "mnist" in only:
        bench_mnist(args.reps, args.epochs)


if __name__ == "__main__":
    main()
