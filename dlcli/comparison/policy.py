"""One comparison loop, driven by a policy: which runs come next, from the results so far.

A policy is a state machine over whole steps (rounds). It proposes a step (a set of
planned runs); the loop drives it (ledger, claims, any runner); the policy then records
the step's entries, all of them, and proposes the next one from what it has recorded.
Three policies share the loop:

- fixed seeds (`Fixed`): one step, every planned run;
- `--seeds auto` (`sequential.SeedsAuto`): rounds that add seeds to the open variants;
- `--prune` (`prune.Pruning`): rungs that continue the better variants to more epochs.

Why this replays exactly: a policy looks only at the entries of the steps it proposed,
after each step is complete, and never at what else the ledger holds. A rerun after a
kill starts the policy from its first step again: the steps that finished before the
kill are all in the ledger, so they are reused (trained nothing) and recorded with the
same entries; the step the kill interrupted reuses its finished runs and trains the
rest. Every look therefore sees exactly the results that the uninterrupted command saw
at that look, whatever the ledger holds beyond them (a run of a half-finished round, a
seed of a bigger earlier budget), and the comparison ends with the same table.

Standard library only: planning and dry runs never import TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from dlcli.comparison.driver import Hooks, drive
from dlcli.comparison.ledger import Ledger, RunStatus, status
from dlcli.comparison.plan import Plan, PlannedRun
from dlcli.comparison.runners import Runner
from dlcli.comparison.stats import Judging, accuracies_of, summarize_all


@dataclass(frozen=True)
class Step:
    """The runs a policy wants next: `plan` holds them (its `runs`). `fresh`: --force may
    start them over (a --prune rung above the first continues its runs instead).
    `planned_epochs`: the runs are a rung of runs planned for that many epochs (prune)."""

    plan: Plan
    fresh: bool = True
    planned_epochs: int = 0


class Policy(Protocol):
    def next(self) -> Step | None:
        """The next step from what was recorded so far; None when the comparison is done."""
        ...

    def record(self, step: Step, entries: dict[str, list[dict]]) -> None:
        """The ledger entries of every run of `step` ({variant: [entry, ...]}, seed order)."""
        ...


def run(
    policy: Policy,
    ledger: Ledger,
    *,
    runner: Runner,
    force: bool = False,
    distribute=None,
    hooks: Hooks | None = None,
    on_step: Callable[[int, Step, list], None] = lambda number, step, statuses: None,
) -> list[tuple[PlannedRun, RunStatus]]:
    """Drive `policy` to its end: each step's runs through the driver, their entries
    recorded. `on_step(number, step, statuses)` hears each step (from 1) before it
    trains. Returns every step's (run, status), in order."""
    used: list[tuple[PlannedRun, RunStatus]] = []
    number = 0
    while (step := policy.next()) is not None:
        number += 1
        fresh = force and step.fresh
        if number > 1:
            ledger.refresh()  # what this and other drivers finished since the last step (the caller read it for the first)
        statuses = status(step.plan, ledger, force=fresh)
        on_step(number, step, statuses)
        entries = drive(step.plan, statuses, ledger, runner=runner, force=fresh, distribute=distribute, hooks=hooks,
                        planned_epochs=step.planned_epochs)  # fmt: skip
        policy.record(step, entries)
        used += statuses
    return used


def replay(policy: Policy, ledger: Ledger, *, force: bool = False) -> tuple[Step | None, list]:
    """What a run of `policy` would do first (a dry run): the steps the ledger holds
    entirely are replayed (recorded from the ledger, nothing trained); returns the first
    step with a run to train or resume, and its statuses ((None, []) when the ledger
    holds the whole comparison)."""
    while (step := policy.next()) is not None:
        statuses = status(step.plan, ledger, force=force and step.fresh)
        if any(how is not RunStatus.IN_LEDGER for _, how in statuses):
            return step, statuses
        entries: dict[str, list[dict]] = {v.name: [] for v in step.plan.variants}
        for planned, _ in statuses:
            entries[planned.variant.name].append(ledger.get(planned.config))
        policy.record(step, entries)
    return None, []


class Fixed:
    """A fixed number of seeds: one step, every planned run; one look at the end."""

    def __init__(self, the_plan: Plan, judging: Judging):
        self.plan, self.judging = the_plan, judging
        self.rows: list[dict] | None = None
        self.decision = None

    def next(self) -> Step | None:
        return Step(self.plan) if self.rows is None else None

    def record(self, step: Step, entries: dict[str, list[dict]]) -> None:
        self.decision = self.judging.decide(accuracies_of(entries))
        self.rows = summarize_all(self.plan, entries, self.decision)
