"""Where a comparison's runs train: the `Runner` interface, one run's work
(`execute`), and the runner that trains here, one run after another. The others
train in worker processes (`processes.ProcessRunner`, `--jobs`) or on a Dask cluster
(`cluster.DaskRunner`, `--cluster`); `driver` hands any of them the runs to train."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Protocol

from dlcli.comparison.ledger import KEY_FORMAT, RunStatus, ledger_key
from dlcli.config import RunConfig
from dlcli.core.reuse import Reuse
from dlcli.core.runs import RunFolder


@dataclass(frozen=True)
class RunTask:
    """One run to train or resume, everything a worker process needs (picklable)."""

    config: RunConfig
    variant: str
    seed: int
    hparams: dict
    how: RunStatus  # TRAIN or RESUME, as the driver planned it (for display)
    start_over: bool = False  # --force: never resume, even a checkpointed folder of this run
    distribute: object = None  # a DistributeSpec, or None for one device
    scope: str = ""  # the prefix of the run's scalar tags: its comparison's (see Plan.scope)
    # --prune: `config` is a rung of a run planned for this many epochs (its ledger key
    # has the rung's epochs; its folder records the whole run, targeted at the rung).
    # 0: `config` is the whole run.
    planned_epochs: int = 0


class Runner(Protocol):
    """Trains a comparison's runs somewhere. The driver alone claims runs and writes
    the ledger; a runner only trains, and yields each run's ledger entry."""

    where: str  # a few words for the plan line: ", 2 worker processes, ..." ("" for here)

    def run(self, tasks: Iterator[RunTask]) -> Iterator[tuple[RunTask, dict]]:
        """Train the runs, taking each from `tasks` only when it can start it (taking a
        task is what tells the driver it starts), and yield each with its ledger entry
        as it finishes. Called once per round or rung of a comparison."""
        ...

    def close(self) -> None:
        """Stop what the runner kept between run() calls (worker processes); once, when
        the comparison ends."""
        ...


def execute(task: RunTask, *, reuse=None, progress=None) -> dict:
    """Train (or resume) one run of a comparison in this process; return its ledger entry.

    The same function runs in the driver (serially), in `--jobs` worker processes and
    on cluster workers: a run's numbers depend on its configuration alone.
    """
    from dlcli.core import session

    config = task.config
    folder = Path(config.checkpoint_dir) / config.name
    # Decided here, not by the driver: a run retried after its worker died resumes
    # from the checkpoints that worker left.
    # A folder of this run stopped at a lower target (a --prune rung) is continued too.
    if not task.start_over and RunFolder.resumable(config):
        result = session.resume(folder, epochs=config.train.epochs, progress=progress, distribute=task.distribute,
                                reuse=reuse)  # fmt: skip
    else:
        # compare owns these folders: a forced rerun, a run killed before its first
        # checkpoint, or a folder of another configuration starts over clean.
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(Path(config.logdir) / config.name, ignore_errors=True)
        whole = config
        if task.planned_epochs:
            whole = replace(config, train=replace(config.train, epochs=task.planned_epochs))
        result = session.train(whole, progress=progress, hparams=task.hparams, distribute=task.distribute,
                               reuse=reuse, scope=task.scope, epochs=config.train.epochs)  # fmt: skip
    return {
        "key": ledger_key(config),
        "key_format": KEY_FORMAT,
        "variant": task.variant,
        "seed": task.seed,
        "run": config.name,
        "accuracy": result.accuracy,
        "loss": result.loss,
        "seconds": result.train_seconds,
        "epochs": config.train.epochs,
        "trained_steps": result.trained_steps,  # this call's steps: a resumed run's are the rest of it
        "params": result.params,
        "grad_ratio": result.grad_ratio if math.isfinite(result.grad_ratio) else None,
        # Per-layer diagnostics at the first and last logged step (core.diagnostics).
        "diagnostics": result.diagnostics,
    }


class SerialRunner:
    """Every run in this process, one after another, sharing one Reuse (data sets and
    one compiled loop per architecture): the caller's (a dlcli.Lab's, kept across its
    calls) or a new one for this comparison."""

    where = ""

    def __init__(self, progress_factory=None, reuse=None):
        self.progress_factory = progress_factory
        self.reuse = reuse  # kept between calls: --seeds auto's rounds reuse the compiled loops

    def run(self, tasks: Iterator[RunTask]) -> Iterator[tuple[RunTask, dict]]:
        if self.reuse is None:
            self.reuse = Reuse()
        for task in tasks:
            progress = self.progress_factory() if self.progress_factory else None
            yield task, execute(task, reuse=self.reuse, progress=progress)

    def close(self) -> None:
        """Nothing to stop (the Reuse is the caller's, or goes with this runner)."""
