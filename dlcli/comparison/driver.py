"""Driving a planned comparison: hand its missing runs to a runner, one claim and one
ledger line per run, and return every run's ledger entry (`stats` makes the rows).

Only the driving process (the `dlcli compare` command) claims runs and writes the
ledger. Two drivers on the same folders share the work: each claims a run before it
starts it (see `claims`), and a run another driver holds is waited for, then read
from the ledger, never trained twice. A driver waits only while it holds no claim
itself, so two drivers never wait for each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from dlcli.comparison import claims
from dlcli.comparison.ledger import Ledger, RunStatus, ledger_key
from dlcli.comparison.plan import Plan, PlannedRun
from dlcli.comparison.runners import Runner, RunTask, SerialRunner
from dlcli.comparison.settings import setting_value
from dlcli.config import TEST_SUBSET
from dlcli.errors import TrainingInterrupted


def _ignore(*args) -> None:
    pass


class Hooks:
    """What the caller hears while a comparison runs (all optional)."""

    def __init__(
        self,
        on_start: Callable[[PlannedRun, str], None] = _ignore,  # (run, "reused" | "resumed" | "trained")
        on_finish: Callable[[PlannedRun, dict], None] = _ignore,  # (run, its ledger entry)
        on_wait: Callable[[PlannedRun], None] = _ignore,  # another process is training this run
        # --seeds auto: (round number, the round's (run, status) list) before the round starts
        on_round: Callable[[int, list], None] = _ignore,
    ):
        self.on_start, self.on_finish, self.on_wait = on_start, on_finish, on_wait
        self.on_round = on_round


def drive(
    the_plan: Plan,
    statuses: list[tuple[PlannedRun, RunStatus]],
    ledger: Ledger,
    *,
    runner: Runner | None = None,
    force: bool = False,
    distribute=None,
    hooks: Hooks | None = None,
    planned_epochs: int = 0,
) -> dict[str, list[dict]]:
    """Run every run of `statuses` that is not in `ledger` and return the ledger entries
    of all of them, {variant: [entry, ...] in seed order} (every variant of the plan, empty
    when none of its runs was given). `statuses` and `ledger` are what the caller read
    (once) to plan; `statuses` may be a part of the plan (a round of --seeds auto).
    `planned_epochs`: the runs are a rung of runs planned for that many epochs
    (`prune`; see RunTask)."""
    hooks = hooks or Hooks()
    entries: dict[str, list[dict]] = {v.name: [] for v in the_plan.variants}
    by_name = {planned.config.name: planned for planned, _ in statuses}

    def finished(planned: PlannedRun, entry: dict) -> None:
        entries[planned.variant.name].append(entry)
        hooks.on_finish(planned, entry)

    tasks = []
    for planned, how in statuses:
        if how is RunStatus.IN_LEDGER:
            hooks.on_start(planned, how.done)
            finished(planned, ledger.get(planned.config))
        else:
            tasks.append(RunTask(planned.config, planned.variant.name, planned.seed, hparams_of(planned, the_plan),
                                 how, start_over=force, distribute=distribute, scope=the_plan.scope,
                                 planned_epochs=planned_epochs))  # fmt: skip
    footprint = Footprint(the_plan)
    try:
        trained = _train(tasks, runner or SerialRunner(), ledger, by_name, footprint, hooks, finished)
    except BaseException as exc:
        claims.tidy(ledger.path.parent)
        footprint.undo_unless_trained()
        if isinstance(exc, KeyboardInterrupt):
            # For a comparison the way on is to run it again, not `dlcli resume` of one run.
            what = getattr(exc, "what", "") or "interrupted"
            raise TrainingInterrupted(f"{what}; the runs finished before it are in the ledger: run the same "
                                      "comparison again to continue", what=what) from None  # fmt: skip
        raise
    claims.tidy(ledger.path.parent)
    if trained:
        footprint.write_layout()  # again: another driver that failed may have taken back the one it made
    for variant in entries.values():
        variant.sort(key=lambda e: e["seed"])
    return entries


def _train(tasks: list[RunTask], runner: Runner, ledger: Ledger, by_name: dict, footprint: "Footprint",
           hooks: Hooks, finished: Callable) -> int:  # fmt: skip
    """Rounds: claim and train what no other driver holds; then wait (holding nothing)
    for one run another driver holds, and go again with the runs left. Returns how
    many runs this driver trained."""
    folder, trained = ledger.path.parent, 0
    while tasks:
        held: dict[str, claims.Claim] = {}
        others: list[RunTask] = []

        def claimed() -> Iterator[RunTask]:
            # Taken by the runner only when it can start a run: claims never wait here.
            for task in tasks:
                planned = by_name[task.config.name]
                claim = claims.claim(folder, ledger_key(task.config), wait=False)
                if claim is None:
                    others.append(task)
                    continue
                ledger.refresh()  # another driver may have finished it since we read the ledger
                entry = ledger.get(task.config)
                if entry is not None:
                    claim.release()
                    hooks.on_start(planned, RunStatus.IN_LEDGER.done)
                    finished(planned, entry)
                    continue
                held[task.config.name] = claim
                footprint.write_layout()
                hooks.on_start(planned, task.how.done)
                yield task

        try:
            for task, entry in runner.run(claimed()):
                ledger.append(entry)
                held.pop(task.config.name).release()
                trained += 1
                finished(by_name[task.config.name], entry)
        finally:
            for claim in held.values():
                claim.release()
        if others:
            hooks.on_wait(by_name[others[0].config.name])
            claims.claim(folder, ledger_key(others[0].config), wait=True).release()
        tasks = others
    return trained


def hparams_of(planned: PlannedRun, the_plan: Plan) -> dict:
    """What TensorBoard's HParams dashboard shows for a run: the variant, its settings, the seed."""
    values = {"variant": planned.variant.name}
    values.update((name, setting_value(planned.config, name)) for name in the_plan.columns)
    values["seed"] = planned.seed
    return values


def layout_charts(the_plan: Plan) -> list[tuple[str, str]]:
    """(chart title, tag regex) of the comparison's Custom Scalars charts: each regex
    matches only its runs' tags (they are written under `the_plan.scope`)."""
    import re

    scope = re.escape(the_plan.scope)
    if the_plan.task == "mnist":
        return [
            (f"test accuracy (first {TEST_SUBSET} test examples)", rf"^{scope}subset/accuracy$"),
            (f"test loss (first {TEST_SUBSET} test examples)", rf"^{scope}subset/loss$"),
            ("training loss", rf"^{scope}loss$"),
        ]
    return [("accuracy on the 4 XOR points", rf"^{scope}accuracy$"), ("loss", rf"^{scope}loss$")]


def write_layout(the_plan: Plan) -> Path | None:
    """A TensorBoard custom-scalars layout that puts every variant of the comparison on
    one chart per metric (the Custom Scalars tab), in its folder; None when the folder
    has one already."""
    from dlcli.core import summaries

    folder = Path(the_plan.base.logdir) / the_plan.folder
    if any(folder.glob(f"events.out.tfevents.*{summaries.LAYOUT_SUFFIX}")):
        return None
    return summaries.write_custom_scalars(folder, f"dlcli {the_plan.folder}", layout_charts(the_plan))


class Footprint:
    """What a comparison adds under the logdir before its first run trains (its
    folder, the folders above it, its layout), taken back when the command fails before
    any run of the comparison wrote a log: a missing data set or a cluster that
    refuses leaves nothing behind."""

    def __init__(self, the_plan: Plan):
        self.plan = the_plan
        self.folder = Path(the_plan.base.logdir) / the_plan.folder
        checkpoints = Path(the_plan.base.checkpoint_dir) / the_plan.folder
        self.missing = [p for folder in (self.folder, checkpoints) for p in [folder, *folder.parents]
                        if not p.exists()]  # innermost first, per tree  # fmt: skip
        self.layout: Path | None = None

    def write_layout(self) -> None:
        if self.layout is None or not self.layout.exists():
            self.layout = write_layout(self.plan) or self.layout

    def undo_unless_trained(self) -> None:
        if any(p.parent != self.folder for p in self.folder.rglob("events.out.tfevents.*")):
            return  # a run of the comparison (this driver's or another's) has logs: they stay, with the layout
        if self.layout is not None:
            self.layout.unlink(missing_ok=True)
        for folder in self.missing:
            try:
                folder.rmdir()
            except OSError:
                pass  # gone already, or not empty: someone else's now
