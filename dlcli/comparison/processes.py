"""`dlcli compare --jobs N`: the runs of a comparison in N worker processes at a time.

Each worker is a fresh Python process (spawned, so no TensorFlow state is shared)
pinned to its share of the machine before TensorFlow starts: one GPU of
CUDA_VISIBLE_DEVICES each when there are GPUs, else an equal share of the CPU threads.
A worker keeps its own Reuse, so the runs it trains of one architecture share a
compiled loop. The driver (the `dlcli compare` process) hands out the runs, writes the
ledger alone, and keeps the table and every run folder exactly as a serial comparison
would: a run's numbers depend on its configuration only (tested bit for bit).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Iterator

from dlcli.errors import ConfigError, RunError


@dataclass(frozen=True)
class Placement:
    """Where `jobs` workers run: GPUs to deal out, or CPU threads per worker."""

    jobs: int
    gpus: tuple[str, ...] = ()
    threads: int = 1  # intra-op threads per worker (CPU only)

    def describe(self) -> str:
        if self.gpus:
            return f"{self.jobs} worker processes, one GPU each of {','.join(self.gpus)}"
        return f"{self.jobs} worker processes, {self.threads} CPU thread{'s' if self.threads > 1 else ''} each"


def visible_gpus() -> tuple[str, ...]:
    """The GPUs a worker may be given: CUDA_VISIBLE_DEVICES when set, else those
    TensorFlow finds (an import in the driver, only when --jobs asks)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return tuple(d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1")
    from dlcli.core.tf_setup import tensorflow

    return tuple(str(i) for i in range(len(tensorflow().config.list_physical_devices("GPU"))))


def placement(jobs: str, *, cores: int | None = None, gpus: tuple[str, ...] | None = None) -> Placement:
    """`--jobs N` or `--jobs auto`: one worker per GPU, else one per 4 cores (a small
    MLP does not speed up beyond a few threads, so more runs at once use the machine)."""
    cores = cores or os.cpu_count() or 1
    count = None
    if jobs != "auto":  # checked before asking TensorFlow for GPUs (a 2 s import)
        try:
            count = int(jobs)
        except ValueError:
            raise ConfigError(f"--jobs must be a number or auto, got {jobs!r}") from None
        if count < 1:
            raise ConfigError(f"--jobs must be at least 1, got {count}")
    gpus = visible_gpus() if gpus is None else gpus
    if count is None:
        count = len(gpus) if gpus else max(1, cores // 4)
    return Placement(jobs=count, gpus=gpus, threads=max(1, cores // count))


def _start_worker(slots, gpus: tuple[str, ...], threads: int) -> None:
    """Runs first in each worker process: take a slot, pin it, before TensorFlow starts."""
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    else:
        from dlcli.core import tf_setup

        tf_setup.request_threads(threads)


class _Worker:
    """What a worker process keeps between the runs it trains (one per process)."""

    reuse = None


def _execute_in_worker(task):
    from dlcli.comparison import runners
    from dlcli.core.reuse import Reuse

    if _Worker.reuse is None:
        _Worker.reuse = Reuse()
    return runners.execute(task, reuse=_Worker.reuse)


class ProcessRunner:
    """The runs of a comparison in worker processes, `placement.jobs` at a time (a
    `runners.Runner`)."""

    def __init__(self, where: Placement):
        self.placement = where
        self.where = f", {where.describe()}"
        self._pool = None

    def run(self, tasks: Iterator) -> Iterator[tuple]:
        tasks = iter(tasks)
        first = next(tasks, None)
        if first is None:
            return  # nothing to train: no worker processes started (or none more)
        yield from self._keep_busy(self._workers(), itertools.chain([first], tasks))

    def _workers(self):
        """The worker processes, started by the first run() that has runs to train and
        kept for the next ones: --seeds auto's rounds and --prune's rungs each call
        run(), and a worker's TensorFlow start and compiled loops (its Reuse) are worth
        keeping (5-10 s a worker on a CPU). close() stops them."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            slots = context.Queue()
            for slot in range(self.placement.jobs):
                slots.put(slot)
            self._pool = ProcessPoolExecutor(
                max_workers=self.placement.jobs,
                mp_context=context,
                initializer=_start_worker,
                initargs=(slots, self.placement.gpus, self.placement.threads),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (waiting for the runs they are on, as leaving a
        `with ProcessPoolExecutor` block does)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)

    def _keep_busy(self, pool, tasks: Iterator) -> Iterator[tuple]:
        """Every worker busy while there are runs; each run's entry as it finishes."""
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        running = {}
        more = True
        while more or running:
            while more and len(running) < self.placement.jobs:
                task = next(tasks, None)
                if task is None:
                    more = False
                else:
                    running[pool.submit(_execute_in_worker, task)] = task
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                try:
                    entry = future.result()
                except BrokenProcessPool:
                    raise RunError(
                        f"a worker process died while training {task.config.name} (killed, or out of memory); "
                        "rerun the same command: finished runs are in the ledger and the rest resume"
                    ) from None
                yield task, entry
