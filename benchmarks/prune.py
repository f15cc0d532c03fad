"""`dlcli compare --prune` against the full grid, side by side in one benchmark run.

A grid of 27 variants (activation x init x lr) on real digits: the shared MNIST test
set split 8000 / 2000 (as tests/conftest.py's real_digits), trained on the first
--limit examples for --epochs epochs. Three whole `dlcli compare` processes, one
after another, each in fresh folders:

  warm-up  the same grid for 1 epoch: fills a fresh XLA compile cache (used by both
           measured runs), so neither pays first compiles the other does not
  full     every variant to --epochs
  prune    --prune (eta 3): 27 to 1 epoch, 9 to 3, 3 to 9 (with --epochs 9)

and reports both wall times, the epochs each trained, and whether the full grid's
best variant survived pruning (and where the pruned comparison's winner ranks in
the full grid).

Usage: python benchmarks/prune.py [--limit 8000] [--epochs 9] [--seeds 1]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST = ROOT.parent / "shared" / "data" / "mnist"
GRID = ["--vary", "activation=sigmoid,tanh,relu", "--vary", "init=normal,xavier,he", "--vary", "lr=0.01,0.001,0.0001"]


def digits(folder: Path) -> Path:
    from dlcli.core import data

    x = data.read_idx(MNIST / "t10k-images-idx3-ubyte.gz", images=True)
    y = data.read_idx(MNIST / "t10k-labels-idx1-ubyte.gz", images=False)
    path = folder / "digits.npz"
    np.savez(path, x_train=x[:8000], y_train=y[:8000], x_test=x[8000:], y_test=y[8000:])
    return path


def compare(tmp: Path, name: str, env: dict, *args: str) -> tuple[float, list[dict]]:
    """Wall time of one whole `dlcli compare` process, and its rows."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "dlcli", "compare", *GRID, *args, "--quiet", "--format", "json", "--yes",
         "--logdir", str(tmp / name / "logs"), "--checkpoint-dir", str(tmp / name / "ckpt")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"dlcli compare {name} failed:\n{out.stderr[-2000:]}")
    return wall, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlcli-bench-prune-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "DLCLI_COMPILE_CACHE": str(tmp / "xla")}  # fmt: skip
        common = ["--data", str(digits(tmp)), "--limit", str(args.limit), "--seeds", str(args.seeds)]
        warm, _ = compare(tmp, "warm-up", env, *common, "--epochs", "1")
        full_wall, full = compare(tmp, "full", env, *common, "--epochs", str(args.epochs))
        prune_wall, pruned = compare(tmp, "prune", env, *common, "--epochs", str(args.epochs), "--prune")

    ranking = [r["variant"] for r in sorted(full, key=lambda r: (-r["accuracy"], r["loss"]))]
    best = ranking[0]
    survivors = [r["variant"] for r in pruned if r["pruned_at"] is None]
    winner = next(r["variant"] for r in pruned if r["best"])
    by_full = {r["variant"]: r for r in full}
    epochs_full = len(full) * args.epochs * args.seeds
    epochs_pruned = sum(r["epochs"] for r in pruned) * args.seeds
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; {len(full)} variants x {args.seeds} seed(s), --limit {args.limit}, "
          f"--epochs {args.epochs}; warm-up {warm:.1f} s")  # fmt: skip
    print()
    print("| grid | wall time (whole process) | epochs trained | best variant | its accuracy |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| full | {full_wall:.1f} s | {epochs_full} | {best} | {by_full[best]['accuracy']:.4f} |")
    print(f"| --prune | {prune_wall:.1f} s ({full_wall / prune_wall:.2f}x faster) | {epochs_pruned} | {winner} | "
          f"{by_full[winner]['accuracy']:.4f} (full grid rank {ranking.index(winner) + 1}) |")  # fmt: skip
    print()
    print(f"the full grid's best ({best}) survived pruning: {'yes' if best in survivors else 'no'}; "
          f"survivors: {', '.join(survivors)}")
    print("full grid's top 5: " + ", ".join(f"{v} {by_full[v]['accuracy']:.4f}" for v in ranking[:5]))


if __name__ == "__main__":
    main()
