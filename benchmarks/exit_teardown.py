"""A dlcli process's CPU time with Python's interpreter teardown (dlcli 0.3.5) and without
it (0.3.6: `dlcli.cli.leave` runs the atexit handlers, flushes and ends), side by side,
alternating, from this one process.

Every `dlcli` command that trains loads TensorFlow; tearing the interpreter down after
it costs about a CPU-second that a user waits for after the last line is printed. The
test suite starts dlcli some sixty times as a real process.

Usage: python benchmarks/exit_teardown.py [--reps 5]
Prints, for `dlcli xor --epochs 1` and for a bare `import tensorflow`, the median CPU
seconds (user + system) and wall seconds of a process each way.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

XOR = ["xor", "--epochs", "1", "--quiet"]
WAYS = {
    # Click's own main: ends with sys.exit, so Python tears everything down (0.3.5).
    "with teardown (0.3.5)": "import sys; from dlcli.cli import cli; cli.main(sys.argv[1:], prog_name='dlcli')",
    # The `dlcli` script's main (0.3.6).
    "without (0.3.6)": "import sys; from dlcli.cli import main; main(sys.argv[1:], prog_name='dlcli')",
}
BARE = {
    "import tensorflow, then exit": "import tensorflow",
    "import tensorflow, atexit, os._exit": "import atexit, os, tensorflow; atexit._run_exitfuncs(); os._exit(0)",
}


def measure(code: str, args: list[str], cwd: str) -> tuple[float, float]:
    if args:
        measure.runs = getattr(measure, "runs", 0) + 1
        args = [*args, "--name", f"run{measure.runs}"]  # each its own run folder
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    reps = parser.parse_args().reps
    print(f"{platform.processor() or platform.machine()}, {reps} alternating runs of each, median")
    with tempfile.TemporaryDirectory() as cwd:
        for title, ways, args in (("dlcli " + " ".join(XOR), WAYS, XOR), ("bare TensorFlow", BARE, [])):
            samples = {name: [] for name in ways}
            measure(next(iter(ways.values())), args, cwd)  # warm the page cache and compile cache
            for _ in range(reps):
                for name, code in ways.items():
                    samples[name].append(measure(code, args, cwd))
            print(f"\n{title}")
            for name, runs in samples.items():
                cpu = statistics.median(c for c, _ in runs)
                wall = statistics.median(w for _, w in runs)
                print(f"  {name:40s} {cpu:5.2f} CPU-s  {wall:5.2f} s wall")


if __name__ == "__main__":
    main()
