"""Start-up of the compile cache against its size, side by side, in one process.

`compile_cache.start()` is what every dlcli process that trains runs before importing
TensorFlow: it checks the shared folder's entries and links them into a private folder.
Measured on synthetic entries (TensorFlow's names, filler bytes) stored the way a
process stores them (`Session.publish`: record written beside each entry):

  empty      a cache with no entry
  1000 MB    1500 entries of 0.67 MB (the default DLCLI_COMPILE_CACHE_MAX_MB), records
             of dlcli 0.3.2 (SHA-256, size, time stamp): checked by a stat each
  upgrade    the same entries with records of dlcli 0.3.1 (SHA-256 alone): the first
             start after an upgrade hashes each entry once, as every start of 0.3.1 did

Usage: python benchmarks/compile_cache.py [--mb 1000] [--entries 1500] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlcli.core import compile_cache  # noqa: E402


def fill(root: Path, entries: int, size: int) -> Path:
    """`entries` stored entries of `size` bytes under `root`; returns their folder."""
    os.environ[compile_cache.ENV] = str(root)
    session = compile_cache.start()
    filler = b"\x17" * size
    for i in range(entries):
        (session.folder / f"xla_compile_cache__{i:016d}__{i}__XLA_CPU_JIT.pb").write_bytes(filler)
    session.publish()
    return session.store


def start_seconds(root: Path) -> float:
    os.environ[compile_cache.ENV] = str(root)
    begun = time.perf_counter()
    session = compile_cache.start()
    took = time.perf_counter() - begun
    shutil.rmtree(session.folder)  # nothing compiled: what publish would do
    return took


def as_0_3_1(store: Path) -> None:
    """Rewrite every record as dlcli 0.3.1 wrote it: the SHA-256 alone."""
    for record in store.glob("*.pb" + compile_cache.CHECKSUM):
        record.write_text(record.read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=1000)
    parser.add_argument("--entries", type=int, default=1500)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    os.environ[compile_cache.MAX_MB_ENV] = "inf"
    os.environ.pop("TF_XLA_FLAGS", None)
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        fill(empty, 0, 0)
        store = fill(full, args.entries, int(args.mb * 1_000_000 / args.entries))
        size = sum(p.stat().st_size for p in store.glob("*.pb")) / 1e6
        rows = [("empty", [start_seconds(empty) for _ in range(args.reps)])]
        rows.append((f"{size:.0f} MB ({args.entries} entries)", [start_seconds(full) for _ in range(args.reps)]))
        upgrade = []
        for _ in range(args.reps):
            as_0_3_1(store)
            upgrade.append(start_seconds(full))  # hashes each entry, then rewrites its record
        rows.append((f"{size:.0f} MB, first start after 0.3.1 (hashes each entry once)", upgrade))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    print(f"{time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; median of {args.reps} [min-max]")  # fmt: skip
    print("| cache | compile_cache.start() |\n| --- | --- |")
    for name, times in rows:
        print(f"| {name} | {statistics.median(times) * 1000:.1f} ms [{min(times) * 1000:.1f}-{max(times) * 1000:.1f}] |")


if __name__ == "__main__":
    main()
