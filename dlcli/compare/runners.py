"""Running a comparison: each planned run trained or resumed (here, in worker processes
or on a cluster: see `processes` and `cluster`), its ledger entry appended, the rows
summarised."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dlcli.compare.ledger import (
    KEY_FORMAT,
    _resumable,
    append_ledger,
    ledger_key,
    read_ledger,
    status,
)
from dlcli.compare.plan import Plan, PlannedRun
from dlcli.compare.settings import setting_value
from dlcli.compare.stats import summarize_all
from dlcli.config import TEST_SUBSET, RunConfig


@dataclass(frozen=True)
class RunTask:
    """One run to train or resume, everything a worker process needs (picklable)."""

    config: RunConfig
    variant: str
    seed: int
    hparams: dict
    how: str  # "train" or "resume", as the driver planned it (for display)
    start_over: bool = False  # --force: never resume, even a checkpointed folder of this run
    distribute: object = None  # a DistributeSpec, or None for one device


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
    if not task.start_over and _resumable(config):
        result = session.resume(folder, progress=progress, distribute=task.distribute, reuse=reuse)
    else:
        # compare owns these folders: a forced rerun, a run killed before its first
        # checkpoint, or a folder of another configuration starts over clean.
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(Path(config.logdir) / config.name, ignore_errors=True)
        result = session.train(config, progress=progress, hparams=task.hparams, distribute=task.distribute,
                               reuse=reuse)  # fmt: skip
    return {
        "key": ledger_key(config),
        "key_format": KEY_FORMAT,
        "variant": task.variant,
        "seed": task.seed,
        "run": config.name,
        "accuracy": result.accuracy,
        "loss": result.loss,
        "seconds": result.train_seconds,
        "params": result.params,
        "grad_ratio": result.grad_ratio if math.isfinite(result.grad_ratio) else None,
    }


class SerialRunner:
    """Every run in this process, one after another, sharing one Reuse (data sets and
    one compiled loop per architecture)."""

    def __init__(self, progress_factory=None):
        self.progress_factory = progress_factory

    def run(self, tasks: list[RunTask], started: Callable[[RunTask], None]):
        from dlcli.core.reuse import Reuse

        reuse = Reuse()
        for task in tasks:
            started(task)
            progress = self.progress_factory() if self.progress_factory else None
            yield task, execute(task, reuse=reuse, progress=progress)


def run(
    the_plan: Plan,
    *,
    force: bool = False,
    runner=None,
    on_start: Callable[[PlannedRun, str], None] = lambda run, how: None,
    on_finish: Callable[[PlannedRun, dict], None] = lambda run, entry: None,
    distribute=None,
) -> list[dict]:
    """Run every missing (variant, seed) and return one row of statistics per variant.

    `runner` decides where the runs train (SerialRunner by default; `dlcli.parallel`
    and `dlcli.cluster` have others); this process alone writes the ledger, one line
    per finished run, so parallel runs never tear it.
    """
    runner = runner or SerialRunner()
    finished = {} if force else read_ledger(the_plan.ledger_path)
    entries: dict[str, list[dict]] = {v.name: [] for v in the_plan.variants}
    tasks, planned_of = [], {}
    for planned, how in status(the_plan, force=force, finished=finished):
        if how == "in the ledger":
            entry = finished[ledger_key(planned.config)]
            on_start(planned, "reused")
            entries[planned.variant.name].append(entry)
            on_finish(planned, entry)
            continue
        task = RunTask(planned.config, planned.variant.name, planned.seed, hparams_of(planned, the_plan), how,
                       start_over=force, distribute=distribute)  # fmt: skip
        tasks.append(task)
        planned_of[planned.config.name] = planned
    done = {"train": "trained", "resume": "resumed"}

    def started(task: RunTask) -> None:
        # Once the runner has checked its workers (a cluster can refuse before any run).
        write_layout(the_plan)
        on_start(planned_of[task.config.name], done[task.how])

    for task, entry in runner.run(tasks, started):
        append_ledger(the_plan.ledger_path, entry)
        entries[task.variant].append(entry)
        on_finish(planned_of[task.config.name], entry)
    for variant in entries.values():
        variant.sort(key=lambda e: e["seed"])
    return summarize_all(the_plan, entries)


def hparams_of(planned: PlannedRun, the_plan: Plan) -> dict:
    """What TensorBoard's HParams dashboard shows for a run: the variant, its settings, the seed."""
    values = {"variant": planned.variant.name}
    values.update((name, setting_value(planned.config, name)) for name in the_plan.columns)
    values["seed"] = planned.seed
    return values


def write_layout(the_plan: Plan) -> None:
    """A TensorBoard custom-scalars layout that puts every variant of the comparison on
    one chart per metric (the Custom Scalars tab). Written once per comparison folder."""
    from dlcli.core import summaries

    folder = Path(the_plan.base.logdir) / the_plan.folder
    if any(folder.glob("events.out.tfevents.*")):
        return
    if the_plan.task == "mnist":
        charts = [
            (f"test accuracy (first {TEST_SUBSET} test examples)", r"^subset/accuracy$"),
            (f"test loss (first {TEST_SUBSET} test examples)", r"^subset/loss$"),
            ("training loss", r"^loss$"),
        ]
    else:
        charts = [("accuracy on the 4 XOR points", r"^accuracy$"), ("loss", r"^loss$")]
    summaries.write_custom_scalars(folder, f"dlcli {the_plan.folder}", charts)
