"""What a comparison pays besides training, side by side in one process (0.3.3 vs 0.3.2).

Two costs that grow with a comparison's runs, not their steps:

  loops   compiling a training loop (tf.function tracing + XLA, 1-3 s on a CPU) for a
          run whose loop an earlier run of the same process already compiled.
          0.3.2 kept the last loop, keyed with the learning rate: one variant's seeds
          shared it, but every rung of --prune (and round of --seeds auto) going over
          the variants again compiled them all again. 0.3.3 keeps one per architecture
          (up to 16) and the learning rate is not in the key (an optimizer variable,
          set again by the restart).
  workers `--jobs N` worker processes (a TensorFlow start and their own compiles each).
          0.3.2 started a pool per round of `--seeds auto` and per rung of `--prune`;
          0.3.3 keeps one for the whole comparison.

Each pair runs the same comparison in fresh folders, in alternating order, and checks
that both wrote the same ledger (every number but the seconds).

Usage: python benchmarks/comparison_overhead.py [--reps 2] [--skip-workers]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from click.testing import CliRunner  # noqa: E402

from conftest import synthetic_digits  # noqa: E402
from dlcli.cli import cli  # noqa: E402
from dlcli.comparison import processes  # noqa: E402
from dlcli.core import reuse  # noqa: E402

# 4 variants (2 architectures x 2 learning rates) x 2 seeds on 512 synthetic digits,
# halved over 3 rungs (1, 2, 4 epochs), here in this process.
GRID = ["--vary", "units=16,32", "--vary", "lr=0.01,0.001", "--seeds", "2", "--batch-size", "64", "--epochs", "4",
        "--prune", "--prune-eta", "2", "--quiet", "--format", "json"]  # fmt: skip
# 4 learning rates x 2 seeds, halved over 3 rungs (1, 2, 4 epochs), in 2 worker processes.
PRUNED = ["--vary", "lr=0.03,0.01,0.003,0.001", "--seeds", "2", "--batch-size", "64", "--epochs", "4", "--prune",
          "--prune-eta", "2", "--jobs", "2", "--quiet", "--format", "json"]  # fmt: skip


@contextlib.contextmanager
def as_0_3_2_loops():
    """One kept loop, keyed with the learning rate, as 0.3.2 had it."""
    key, limit = reuse.loop_key, reuse.MAX_LOOPS
    reuse.loop_key = lambda config: replace(key(config), train=replace(key(config).train, lr=config.train.lr))
    reuse.MAX_LOOPS = 1
    try:
        yield
    finally:
        reuse.loop_key, reuse.MAX_LOOPS = key, limit


@contextlib.contextmanager
def as_0_3_2_workers():
    """A new pool of worker processes for every round or rung, as 0.3.2 started them."""
    run = processes.ProcessRunner.run

    def pool_per_call(self, tasks):
        try:
            yield from run(self, tasks)
        finally:
            self.close()

    processes.ProcessRunner.run = pool_per_call
    try:
        yield
    finally:
        processes.ProcessRunner.run = run


def timed(args: list[str], data: Path, folder: Path) -> tuple[float, list[dict]]:
    begun = time.perf_counter()
    result = CliRunner().invoke(cli, ["compare", "--data", str(data), *args, "--logdir", str(folder / "logs"),
                                      "--checkpoint-dir", str(folder / "ck")])  # fmt: skip
    took = time.perf_counter() - begun
    assert result.exit_code == 0, result.output
    ledger = [json.loads(line) for line in (folder / "logs/compare/results.jsonl").read_text().splitlines()]
    return took, sorted(({k: v for k, v in e.items() if k != "seconds"} for e in ledger), key=lambda e: e["key"])


def pair(name: str, args: list[str], old, data: Path, root: Path, reps: int) -> None:
    times = {"0.3.2": [], "0.3.3": []}
    for rep in range(reps):
        ledgers = {}
        for which in (["0.3.2", "0.3.3"] if rep % 2 == 0 else ["0.3.3", "0.3.2"]):
            with old() if which == "0.3.2" else contextlib.nullcontext():
                took, ledgers[which] = timed(args, data, root / f"{name}-{which}-{rep}")
            times[which].append(took)
        assert ledgers["0.3.2"] == ledgers["0.3.3"], f"{name}: the two ledgers differ"
    before, after = statistics.median(times["0.3.2"]), statistics.median(times["0.3.3"])
    print(f"{name:8} 0.3.2 {before:6.1f} s   0.3.3 {after:6.1f} s   x{before / after:.2f}   "
          f"(medians of {reps}; same ledger)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--skip-workers", action="store_true")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "digits.npz"
        np.savez(data, **dict(zip(("x_train", "y_train", "x_test", "y_test"), synthetic_digits())))
        os.chdir(root)
        CliRunner().invoke(cli, ["xor", "--epochs", "5", "--quiet"])  # TensorFlow started before timing
        pair("loops", GRID, as_0_3_2_loops, data, root, args.reps)
        if not args.skip_workers:
            pair("workers", PRUNED, as_0_3_2_workers, data, root, args.reps)


if __name__ == "__main__":
    main()
