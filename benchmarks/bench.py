"""Side-by-side speed and memory of dlcli against what a Keras user would write instead.

Everything is measured in this one process (or in child processes started from it)
on the same machine, one after another, so the ratios are fair even on a noisy box:

  help     wall time of `dlcli --help` and `dlcli xor --help` (TensorFlow never loads)
  xor      20000 full-batch epochs of Lab 09-3's wide & deep net: dlcli vs an eager
           per-step GradientTape loop like the lab's (a few thousand steps, scaled)
  mnist    the default MLP (2 x 256) and the deep one (4 x 512) on synthetic
           MNIST-shaped data (60,000 x 28 x 28): dlcli's loop vs Keras model.fit as
           compiled by default and as a Keras user tunes it (jit_compile=True,
           steps_per_execution = an epoch) vs an eager GradientTape loop, seconds per
           epoch in steady state
  compare  `dlcli compare --what all` (7 variants, one epoch each on 60k examples) vs
           the same 7 models trained and evaluated with model.fit (`--seeds N`: N each),
           and the cost of 10 learning-curve points a run against 1
  parallel one grid of 12 runs serially, with --jobs 2 and on a local 2-worker Dask cluster
  process  whole-process wall time and peak memory of `dlcli mnist --epochs 1`
  peak     what dense matmuls reach on this machine, big and in the MLP's shapes,
           with XLA (dlcli's step) and with TensorFlow's oneDNN kernels (model.fit)
  cache    whole-process wall time of `dlcli xor` and of `dlcli compare --what all`
           (2000 examples, 1 epoch) rerun with a new --seed: the compile cache off,
           empty (cold: compiles and stores) and filled by an earlier run (warm)

Usage: python benchmarks/bench.py [--only help,xor,mnist,compare,parallel,process,peak,cache] [--epochs 4]
                                  [--reps 3] [--seeds 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Child processes run this checkout's dlcli too, whatever `pip install` left in site-packages.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def spread(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f} (min {min(samples):.3f}, max {max(samples):.3f}, n={len(samples)})"


def table(rows, headers):
    from tabulate import tabulate

    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    print()


# -- help ---------------------------------------------------------------------------


def bench_help(reps: int) -> None:
    rows = []
    for args in (["--help"], ["xor", "--help"]):
        samples = []
        for _ in range(max(reps, 5)):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dlcli", *args], check=True, capture_output=True, cwd=ROOT, env=CHILD_ENV)
            samples.append(time.perf_counter() - start)
        rows.append(["dlcli " + " ".join(args), spread(samples), "< 0.5 s"])
    table(rows, ["command", "wall seconds (median)", "target"])


# -- xor ----------------------------------------------------------------------------


def bench_xor(reps: int) -> None:
    from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec
    from dlcli.core import session
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    config = RunConfig(
        task="xor",
        name="bench-xor",
        model=ModelSpec(layers=4, units=10, activation="sigmoid", init="normal"),
        train=TrainSpec(optimizer="sgd", lr=0.01, epochs=20000, batch_size=0, log_every=1000, save_every=0),
        data=DataSpec(dataset="xor"),
    )
    # TensorBoard images of the boundary at every logging step, on (the default) and off.
    seconds = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            for images in (True, False):
                run = RunConfig(**{**config.__dict__, "name": f"xor-{rep}-{images}", "logdir": f"{tmp}/logs",
                                   "checkpoint_dir": f"{tmp}/ck"})  # fmt: skip
                result = session.train(run, images=images)
                assert result.accuracy == 1.0
                seconds[images].append(result.train_seconds)
    dlcli_seconds = seconds[True]

    # Lab 09-3: tf.Variables, an eager tape per step, SGD 0.01, full batch.
    x = tf.constant([[0, 0], [0, 1], [1, 0], [1, 1]], tf.float32)
    y = tf.constant([[0], [1], [1], [0]], tf.float32)
    shapes = [(2, 10), (10, 10), (10, 10), (10, 1)]
    weights = [tf.Variable(tf.random.normal(s)) for s in shapes]
    biases = [tf.Variable(tf.random.normal((s[1],))) for s in shapes]
    variables = weights + biases
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.01)

    def net(features):
        h = features
        for w, b in zip(weights, biases):
            h = tf.sigmoid(tf.matmul(h, w) + b)
        return h

    def step():
        with tf.GradientTape() as tape:
            hypothesis = net(x)
            loss = -tf.reduce_mean(y * tf.math.log(hypothesis) + (1 - y) * tf.math.log(1 - hypothesis))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(50):
        step()  # warm-up
    eager_seconds = []
    sample_steps = 2000
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(sample_steps):
            step()
        eager_seconds.append((time.perf_counter() - start) * 20000 / sample_steps)
    ratio = statistics.median(eager_seconds) / statistics.median(dlcli_seconds)
    table(
        [
            ["dlcli xor (compiled chunks, histograms + checkpoints + boundary images on)", spread(dlcli_seconds),
             "<= 1 s"],
            ["dlcli xor, boundary images off", spread(seconds[False]), ""],
            [f"eager per-step loop, Lab 09-3 ({sample_steps} steps scaled)", spread(eager_seconds), ""],
            ["speed-up", f"{ratio:.0f}x", ""],
        ],
        ["20000 epochs of XOR", "training seconds (median)", "target"],
    )


# -- mnist --------------------------------------------------------------------------


def synthetic_mnist(n=60000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    return x, y


def training_flops(model, examples: int) -> float:
    """Forward 2 and backward 4 FLOPs per weight per example (dense layers dominate)."""
    weights = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers if hasattr(layer, "kernel"))
    return 6.0 * weights * examples


def bench_mnist(epochs: int) -> None:
    from dlcli.config import ModelSpec
    from dlcli.core import models
    from dlcli.core.data import Dataset
    from dlcli.core.tf_setup import tensorflow
    from dlcli.core.train import TrainingLoop

    tf = tensorflow()
    keras = tf.keras
    x, y = synthetic_mnist()
    data = Dataset(x, y, x[:10000], y[:10000], source="synthetic", num_classes=10)
    batch = 128
    steps = len(x) // batch

    for label, spec in (
        ("default 2 x 256", ModelSpec(layers=3, units=256)),
        ("deep 4 x 512", ModelSpec(layers=5, units=512)),
    ):
        results = {}

        # dlcli's loop, several epochs in one call; time each epoch through the hook.
        keras.utils.set_random_seed(0)
        model = models.mlp(spec, (28, 28), 10, seed=0)
        loop = TrainingLoop(model, models.optimizer("adam", 1e-3), data, objective="categorical", batch_size=batch, seed=0)
        marks = [time.perf_counter()]
        from dlcli.core.train import Hooks

        loop.run(epochs, log_every=100, hooks=Hooks(on_epoch_end=lambda e, s: marks.append(time.perf_counter())))
        results["dlcli loop"] = np.diff(marks)[1:].tolist()  # epoch 1 pays for compilation
        flops = training_flops(model, steps * batch)

        # Keras model.fit, same model and batch size: compiled the default way, and as a
        # Keras user tunes it (XLA, and one host round-trip per epoch instead of per step).
        class EpochTimer(keras.callbacks.Callback):
            def __init__(self, times):
                super().__init__()
                self.times = times

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        for name, tuning in (
            ("keras model.fit", {}),
            ("keras model.fit, tuned (jit_compile, steps_per_execution=epoch)",
             {"jit_compile": True, "steps_per_execution": steps}),
        ):  # fmt: skip
            keras.utils.set_random_seed(0)
            model = models.mlp(spec, (28, 28), 10, seed=0)
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
                **tuning,
            )
            fit_times: list[float] = []
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True, callbacks=[EpochTimer(fit_times)])
            results[name] = fit_times[1:]  # epoch 1 pays for compilation

        # An eager GradientTape loop like the labs' (no tf.function), a sample scaled up.
        keras.utils.set_random_seed(0)
        model = models.mlp(spec, (28, 28), 10, seed=0)
        optimizer = keras.optimizers.Adam(1e-3)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(60000).batch(batch, drop_remainder=True)

        def eager_steps(count):
            for i, (xb, yb) in enumerate(dataset):
                if i == count:
                    break
                with tf.GradientTape() as tape:
                    loss = loss_fn(yb, model(xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))

        eager_steps(5)
        sample = 60
        eager = []
        for _ in range(3):
            start = time.perf_counter()
            eager_steps(sample)
            eager.append((time.perf_counter() - start) * steps / sample)
        results["eager GradientTape loop"] = eager

        fit_median = statistics.median(results["keras model.fit"])
        tuned_median = statistics.median(results["keras model.fit, tuned (jit_compile, steps_per_execution=epoch)"])
        rows = []
        for name, samples in results.items():
            seconds = statistics.median(samples)
            rows.append(
                [
                    name,
                    spread(samples),
                    f"{steps * batch / seconds:,.0f}",
                    f"{flops / seconds / 1e9:.0f}",
                    f"{fit_median / seconds:.2f}x",
                    f"{tuned_median / seconds:.2f}x",
                ]
            )
        print(f"MNIST-shaped data, {label}, batch {batch}, Adam 1e-3, {epochs} epochs per call "
              f"({flops / 1e9:.0f} GFLOP per epoch)")
        table(rows, ["trainer", "s per epoch, steady (median)", "examples/s", "GFLOP/s", "vs model.fit", "vs tuned fit"])


# -- compare ------------------------------------------------------------------------


def bench_compare(seeds: int) -> None:
    """Both sides train every (variant, seed) for one epoch and measure its test accuracy;
    dlcli also writes checkpoints and TensorBoard logs, which count against it."""
    import json

    from dlcli import comparison as experiments
    from dlcli.config import DataSpec
    from dlcli.core import models
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    keras = tf.keras
    x, y = synthetic_mnist()
    seed_args = ["--seeds", str(seeds)] if seeds > 1 else []
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/mnist.npz", x_train=(x * 255).astype(np.uint8), y_train=y,
                 x_test=(x[:10000] * 255).astype(np.uint8), y_test=y[:10000])  # fmt: skip
        # Learning curves: 10 test-subset points per run (the default) against 1.
        walls, trains = {}, {}
        for points in ("1", "10"):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "dlcli", "compare", "--what", "all", *seed_args, "--data", f"{tmp}/mnist.npz",
                 "--quiet", "--format", "json", "--points", points, "--logdir", f"logs-{points}",
                 "--checkpoint-dir", f"ck-{points}"],
                cwd=tmp, capture_output=True, text=True, check=True, env=CHILD_ENV,
            )  # fmt: skip
            walls[points] = time.perf_counter() - start
            trains[points] = sum(row["seconds"] for row in json.loads(out.stdout))
        dlcli_wall, dlcli_train = walls["10"], trains["10"]

    xs = x / np.float32(1.0)
    fit_only = fit_and_evaluate = 0.0
    start = time.perf_counter()
    base = experiments.base_config("mnist", data=DataSpec(), logdir="l", checkpoint_dir="c")
    the_plan = experiments.plan("mnist", ("all",), (), base, seeds=seeds)
    for variant in the_plan.variants:
        for seed in range(seeds):
            keras.utils.set_random_seed(seed)
            spec = experiments.apply_settings(base, dict(variant.settings)).model
            model = models.mlp(spec, (28, 28), 10, seed=seed)
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            fit_start = time.perf_counter()
            model.fit(xs, y, batch_size=128, epochs=1, verbose=0, shuffle=True)
            fit_only += time.perf_counter() - fit_start
            model.evaluate(xs[:10000], y[:10000], batch_size=10000, verbose=0)
            fit_and_evaluate += time.perf_counter() - fit_start
    fit_all = time.perf_counter() - start
    runs = len(the_plan.variants) * seeds
    label = "dlcli compare --what all" + (f" --seeds {seeds}" if seeds > 1 else "")
    table(
        [
            [f"{label} (whole process: TF import, data, {runs} runs)", f"{dlcli_wall:.1f}", f"{dlcli_train:.1f}"],
            [f"the same {runs} runs with model.fit + evaluate (in this process)", f"{fit_all:.1f}",
             f"{fit_and_evaluate:.1f} (fit alone {fit_only:.1f})"],
            ["speed-up", f"{fit_all / dlcli_wall:.2f}x", f"{fit_and_evaluate / dlcli_train:.2f}x"],
            [f"{label} --points 1 (one learning-curve point a run instead of 10)", f"{walls['1']:.1f}",
             f"{trains['1']:.1f} (10 points cost {100 * (walls['10'] / walls['1'] - 1):+.1f}% of the wall time)"],
        ],  # fmt: skip
        [f"{runs} runs, 1 epoch of 60k each", "wall seconds", "training + test evaluation seconds"],
    )


# -- parallel -------------------------------------------------------------------------


def bench_parallel() -> None:
    """One grid (2 activations x 2 widths x 3 seeds = 12 runs, 1 epoch of 60k each) three
    ways: serially, with --jobs 2 (two worker processes, one CPU thread each), and on a
    local Dask cluster of two single-threaded worker processes. Whole-process wall time."""
    import json

    x, y = synthetic_mnist()
    grid = ["--vary", "activation=relu,tanh", "--vary", "units=128,256", "--seeds", "3", "--quiet", "--format", "json"]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/mnist.npz", x_train=(x * 255).astype(np.uint8), y_train=y,
                 x_test=(x[:10000] * 255).astype(np.uint8), y_test=y[:10000])  # fmt: skip
        scheduler = workers = None
        try:
            scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                          "--port", "0", "--no-dashboard", "--scheduler-file", f"{tmp}/s.json"],
                                         cwd=tmp, env=CHILD_ENV, stderr=subprocess.DEVNULL)  # fmt: skip
            while not (os.path.exists(f"{tmp}/s.json") and open(f"{tmp}/s.json").read().strip()):
                time.sleep(0.1)
            address = json.load(open(f"{tmp}/s.json"))["address"]
            workers = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                        "--nworkers", "2", "--no-dashboard", "--host", "127.0.0.1"],
                                       cwd=tmp, env=CHILD_ENV, stderr=subprocess.DEVNULL)  # fmt: skip
            from distributed import Client

            with Client(address) as client:
                client.wait_for_workers(2)
            rows, outputs = [], {}
            for label, extra in (("serial (one process)", []), ("--jobs 2", ["--jobs", "2"]),
                                 ("--cluster, 2 Dask workers on this machine", ["--cluster", address])):  # fmt: skip
                start = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-m", "dlcli", "compare", *grid, "--data", f"{tmp}/mnist.npz", *extra,
                     "--logdir", f"{tmp}/logs-{len(rows)}", "--checkpoint-dir", f"{tmp}/ck-{len(rows)}"],
                    cwd=tmp, capture_output=True, text=True, check=True, env=CHILD_ENV,
                )  # fmt: skip
                wall = time.perf_counter() - start
                outputs[label] = [(r["variant"], r["accuracy"], r["loss"]) for r in json.loads(out.stdout)]
                rows.append([f"dlcli compare, 12 runs, {label}", f"{wall:.1f}"])
            same = len({json.dumps(v) for v in outputs.values()}) == 1
            table(rows, ["the same grid", "wall seconds (whole process)"])
            print(f"accuracies and losses identical in all three: {same}\n")
        finally:
            for proc in (workers, scheduler):
                if proc is not None:
                    proc.terminate()
                    proc.wait()


# -- the hardware ---------------------------------------------------------------------


def bench_peak() -> None:
    """What dense matmuls reach here: the ceiling for an MLP's training step.

    Big square matmuls show the machine's usable peak; the batch-128 shapes of the deep
    MLP's step (forward, weight gradient dW = x^T dy, input gradient dX = dy W^T) show
    what XLA's kernels (dlcli's step) and TensorFlow's oneDNN kernels (model.fit) get.
    """
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    rng = np.random.default_rng(0)
    repeats = 64

    def gflops(m, k, n, transpose_a=False, transpose_b=False, xla=True):
        a = tf.constant(rng.random((k, m) if transpose_a else (m, k), dtype=np.float32))
        b = tf.constant(rng.random((n, k) if transpose_b else (k, n), dtype=np.float32))

        def many():
            # A loop-carried nudge keeps XLA from hoisting the matmul out of the loop.
            def body(i, acc):
                c = tf.linalg.matmul(a + acc * 0.0, b, transpose_a=transpose_a, transpose_b=transpose_b)
                return i + 1, c[0, 0]

            return tf.while_loop(lambda i, _: i < repeats, body, (tf.constant(0), tf.constant(0.0)))[1]

        run = tf.function(many, jit_compile=xla, autograph=False)
        run().numpy()
        best = min(_timed(lambda: run().numpy()) for _ in range(5))
        return 2.0 * m * k * n * repeats / best / 1e9

    rows = []
    for label, shape, flags in (
        ("4096 x 4096 x 4096", (4096, 4096, 4096), {}),
        ("forward, 128 x 784 x 512", (128, 784, 512), {}),
        ("forward, 128 x 512 x 512", (128, 512, 512), {}),
        ("dW = x^T dy, 512 x 128 x 512", (512, 128, 512), {"transpose_a": True}),
        ("dX = dy W^T, 128 x 512 x 512", (128, 512, 512), {"transpose_b": True}),
    ):
        rows.append([label, f"{gflops(*shape, **flags, xla=True):.0f}", f"{gflops(*shape, **flags, xla=False):.0f}"])
    table(rows, ["matmul (m x k x n, fp32)", "XLA GFLOP/s (dlcli's step)", "TF oneDNN GFLOP/s (model.fit)"])


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# -- whole process ------------------------------------------------------------------


# A small launcher measures the child: on Linux a forked child's peak RSS starts at its
# parent's size, so forking from this (large) benchmark process would inflate it.
LAUNCHER = """
import os, sys, time
start = time.perf_counter()
quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], dict(os.environ), file_actions=quiet)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
"""


def run_measured(args: list[str], cwd: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args], cwd=cwd, capture_output=True, text=True, check=True, env=CHILD_ENV
    ).stdout.split()
    seconds, rss, code = float(out[0]), float(out[1]), int(out[2])
    if code != 0:
        raise SystemExit(f"{' '.join(args)} failed")
    return seconds, rss


def bench_process(reps: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        x, y = synthetic_mnist()
        np.savez(f"{tmp}/mnist.npz", x_train=(x * 255).astype(np.uint8), y_train=y,
                 x_test=(x[:10000] * 255).astype(np.uint8), y_test=y[:10000])  # fmt: skip
        for label, args in (
            ("dlcli --help", ["--help"]),
            ("dlcli xor", ["xor", "--quiet"]),
            ("dlcli mnist --epochs 1 (60k examples)", ["mnist", "--data", f"{tmp}/mnist.npz", "--epochs", "1", "--quiet"]),
        ):
            measured = [run_measured([sys.executable, "-m", "dlcli", *args], tmp) for _ in range(reps)]
            rows.append([label, spread([m[0] for m in measured]), f"{max(m[1] for m in measured):.0f}"])
    table(rows, ["whole process", "wall seconds (median)", "peak RSS MiB"])


# -- cache --------------------------------------------------------------------------


def bench_cache(reps: int) -> None:
    """Off, cold and warm in turn within each repetition, so a busy spell on a shared
    machine hits all three alike; every run in a fresh folder (no ledger to reuse)."""
    with tempfile.TemporaryDirectory() as tmp:
        x, y = synthetic_mnist(n=3000)
        data = f"{tmp}/small.npz"
        np.savez(data, x_train=(x[:2000] * 255).astype(np.uint8), y_train=y[:2000],
                 x_test=(x[2000:] * 255).astype(np.uint8), y_test=y[2000:])  # fmt: skip
        commands = [
            ("dlcli xor", lambda seed: ["xor", "--quiet", "--seed", str(seed)]),
            ("dlcli compare --what all (2000 examples, 1 epoch), new --seed",
             lambda seed: ["compare", "--what", "all", "--data", data, "--epochs", "1", "--seed", str(seed),
                           "--quiet", "--format", "json"]),
        ]  # fmt: skip
        runs = iter(range(10**6))

        def timed(args, cache: str) -> float:
            folder = f"{tmp}/run-{next(runs)}"
            os.makedirs(folder)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dlcli", *args], cwd=folder, capture_output=True, check=True,
                           env={**CHILD_ENV, "DLCLI_COMPILE_CACHE": cache})  # fmt: skip
            return time.perf_counter() - start

        rows = []
        for i, (label, make) in enumerate(commands):
            warm = f"{tmp}/cache-{i}"
            timed(make(1000), warm)  # fills it
            seconds = {"off": [], "cold": [], "warm": []}
            for rep in range(reps):
                seconds["off"].append(timed(make(rep), "off"))
                seconds["cold"].append(timed(make(rep), f"{tmp}/empty-{i}-{rep}"))
                seconds["warm"].append(timed(make(rep), warm))
            saved = 1 - statistics.median(seconds["warm"]) / statistics.median(seconds["cold"])
            rows.append([label, spread(seconds["off"]), spread(seconds["cold"]), spread(seconds["warm"]),
                         f"{saved:.0%}"])  # fmt: skip
    table(rows, ["whole process", "cache off", "cold (empty cache)", "warm", "warm vs cold"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="help,xor,mnist,compare,parallel,process,peak,cache")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per call in the mnist section")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1, help="seeds per variant in the compare section")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}\n")  # fmt: skip
    sections = args.only.split(",")
    if "help" in sections:
        bench_help(args.reps)
    if "xor" in sections:
        bench_xor(args.reps)
    if "mnist" in sections:
        bench_mnist(args.epochs)
    if "compare" in sections:
        bench_compare(args.seeds)
    if "parallel" in sections:
        bench_parallel()
    if "process" in sections:
        bench_process(args.reps)
    if "peak" in sections:
        bench_peak()
    if "cache" in sections:
        bench_cache(args.reps)


if __name__ == "__main__":
    main()
