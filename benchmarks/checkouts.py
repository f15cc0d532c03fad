"""Two dlcli checkouts side by side: did a change move the training speed?

Runs the same commands from each checkout in child processes (PYTHONPATH points at
the checkout), alternating which goes first in every repetition so that a noisy,
shared machine slows both alike, and prints medians:

  xor    `dlcli xor` (20000 full-batch steps): training seconds and whole-process seconds
  mnist  the default MLP on synthetic MNIST-shaped data (60,000 examples): a steady
         epoch's seconds, from runs of 1 and 3 epochs ((t3 - t1) / 2, so start-up and
         compilation cancel out)
  log    the same with --log-every 10 (47 logging steps an epoch instead of 4.7): what
         a logging step costs (probe, histograms, diagnostics), magnified tenfold

Usage: python benchmarks/checkouts.py OLD_CHECKOUT NEW_CHECKOUT [--reps 3] [--only xor,mnist,log]
e.g.   git worktree add /tmp/old 9e32449 && python benchmarks/checkouts.py /tmp/old .
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run_json(checkout: Path, args: list[str], cwd: str) -> tuple[dict, float]:
    """One `python -m dlcli ... --json` from `checkout`: its JSON summary and wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "DLCLI_COMPILE_CACHE": "off"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dlcli", *args, "-q", "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{checkout}: dlcli {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout), wall


def measure(checkout: Path, what: str, data: str, tmp: str, rep: int) -> dict[str, float]:
    name = f"{checkout.name}-{what}-{rep}"
    if what == "xor":
        result, wall = run_json(checkout, ["xor", "--name", name], tmp)
        return {"xor training s": result["train_seconds"], "xor process s": wall}
    extra, key = ([], "mnist steady epoch s") if what == "mnist" else (["--log-every", "10"], "mnist, --log-every 10")
    one, _ = run_json(checkout, ["mnist", "--data", data, "--epochs", "1", "--name", name + "-1", *extra], tmp)
    three, _ = run_json(checkout, ["mnist", "--data", data, "--epochs", "3", "--name", name + "-3", *extra], tmp)
    return {key: (three["train_seconds"] - one["train_seconds"]) / 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="xor,mnist")
    args = parser.parse_args()
    checkouts = [args.old.resolve(), args.new.resolve()]
    samples: dict[tuple[Path, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "mnist-shaped.npz")
        rng = np.random.default_rng(0)
        x = (rng.random((70000, 28, 28)) * 255).astype(np.uint8)
        y = rng.integers(0, 10, 70000).astype(np.uint8)
        np.savez(data, x_train=x[:60000], y_train=y[:60000], x_test=x[60000:], y_test=y[60000:])
        for rep in range(args.reps):
            for checkout in checkouts if rep % 2 == 0 else checkouts[::-1]:
                for what in args.only.split(","):
                    for key, value in measure(checkout, what, data, tmp, rep).items():
                        samples.setdefault((checkout, key), []).append(value)
    from tabulate import tabulate

    keys = list(dict.fromkeys(key for _, key in samples))
    rows = []
    for key in keys:
        old, new = (statistics.median(samples[(c, key)]) for c in checkouts)
        spread = [f"{min(samples[(c, key)]):.3f}-{max(samples[(c, key)]):.3f}" for c in checkouts]
        rows.append([key, f"{old:.3f} ({spread[0]})", f"{new:.3f} ({spread[1]})", f"{new / old - 1:+.1%}"])
    print(f"medians of {args.reps} alternating repetitions; old = {checkouts[0]}, new = {checkouts[1]}")
    print(tabulate(rows, headers=["", "old (min-max)", "new (min-max)", "new vs old"], tablefmt="github"))


if __name__ == "__main__":
    main()
