"""What the per-layer diagnostics cost: the same runs with them on and off, side by side.

Off, the probe measures only what it measured before them (the histograms'
activations and the W1/WN gradient norms) and nothing extra goes to TensorBoard or
run.json. Runs alternate on/off in this one process, so drift on a noisy machine hits
both sides alike. Targets (issue 19): an MNIST epoch at most 5% slower, XOR's 20,000
steps at most 10% slower.

  xor    20000 full-batch steps of the 4-layer sigmoid net (log every 1000: 21 measurements)
  mnist  the default MLP (2 x 256), batch 128, log every 100, on 60,000 synthetic
         MNIST-shaped examples

  per-log  one logging step's extra work and the extra tracing, on vs off, without
           whole runs around them (steadier on a shared machine)

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


def bench_per_log(calls: int) -> None:
    """The extra work itself, without the noise of whole runs: one logging step's
    measurement (and, on, its host copy and TensorBoard write), and the first call
    (tracing), for XOR's and MNIST's default nets, on vs off."""
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
    with tempfile.TemporaryDirectory() as tmp:
        for label, data, spec, objective in cases:
            times = {}
            for full in (True, False):
                outputs = 1 if objective == "binary" else 10
                model = models.mlp(spec, data.input_shape, outputs, seed=0)
                loop = TrainingLoop(model, models.optimizer("sgd", 0.01), data, objective=objective, batch_size=0,
                                    seed=0, probe_examples=256, layer_diagnostics=full)  # fmt: skip
                writer = summaries.Summaries(Path(tmp) / f"{label}-{full}", model)

                def log(step):
                    measured = loop.diagnostics.measure(loop.probe, loop.probe_labels)
                    loop.grad_norm_sums.assign_add(tf_cast(measured["first_last"]))
                    if full:
                        writer.layers(loop.diagnostics.to_host(measured, step))

                start = time.perf_counter()
                log(1)
                first = time.perf_counter() - start
                start = time.perf_counter()
                for step in range(2, calls + 2):
                    log(step)
                times[full] = (first, (time.perf_counter() - start) / calls)
                writer.close()
            (first_on, each_on), (first_off, each_off) = times[True], times[False]
            print(f"{label}: per logging step {each_on * 1e3:.2f} ms on, {each_off * 1e3:.2f} ms off "
                  f"(+{(each_on - each_off) * 1e3:.2f} ms); first call (tracing) {first_on:.3f} s on, "
                  f"{first_off:.3f} s off (+{first_on - first_off:.3f} s)")  # fmt: skip
    print()


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
