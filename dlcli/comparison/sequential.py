"""`--seeds auto`: add seeds in rounds, only where the verdict is still open.

Every variant first gets `min_seeds` seeds; then, after each look, `verdicts.next_round`
names the variants that need more (the open ones, and the best they are paired with) and
the seed count to reach; a round is an ordinary set of planned runs of the comparison
(the plan holds every seed up to `max_seeds`), driven like any other: ledger, claims,
--jobs, --cluster and resume all apply. The looks are never kept in memory: before each
round the decision is replayed from the results alone (`Judging.decide` ->
`verdicts.replay`), so a rerun - with the same budget or a bigger one - rebuilds the same
looks from the ledger and trains only the seeds that are new.

A variant's results count as the seeds from the first one without a gap (a run in the
ledger past a missing seed waits until the gap is trained): the looks see each variant's
first n seeds, as the design says.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from dlcli import verdicts
from dlcli.comparison.driver import Hooks, drive
from dlcli.comparison.ledger import RunStatus
from dlcli.comparison.plan import MAX_RUNS, PlannedRun
from dlcli.comparison.runners import Runner
from dlcli.comparison.stats import accuracies_of, summarize_all

if TYPE_CHECKING:
    from dlcli.comparison.request import Comparison, Request


def compare_auto(comparison: Comparison, request: Request, *, make_runner: Callable[[], Runner],
                 on_plan: Callable, hooks: Hooks | None) -> Comparison:  # fmt: skip
    """Run `comparison` (planned with every seed up to the budget) in rounds until every
    variant is decided or the budget is spent; fill in its rows, decision, why it
    stopped (`stop`) and the runs it used (`statuses`). A dry run only fills in the
    first round's runs (`statuses`) and, when the ledger already decides it, `stop`."""
    from dlcli.comparison.request import PlanError

    auto, judging = request.auto, request.judging
    the_plan, ledger = comparison.plan, comparison.ledger
    hooks = hooks or Hooks()
    status = {(p.variant.name, p.seed): (p, how) for p, how in comparison.statuses}
    done = {v.name: {} for v in the_plan.variants}  # variant -> {seed: ledger entry}
    for (name, seed), (planned, how) in status.items():
        if how is RunStatus.IN_LEDGER:
            done[name][seed] = ledger.get(planned.config)
    used: list[tuple[PlannedRun, RunStatus]] = []

    def counts() -> dict[str, int]:
        return {name: _unbroken(seeds, the_plan.seeds) for name, seeds in done.items()}

    def kept() -> dict[str, list[dict]]:
        """Each variant's entries over its unbroken first seeds: what the looks see."""
        have = counts()
        return {name: [seeds[s] for s in the_plan.seeds[: have[name]]] for name, seeds in done.items()}

    def wanted() -> tuple[dict[str, int], str | None, verdicts.Decision | None]:
        """The seed count each variant needs next ({} when it stops), why it stops, and
        the decision that says so (None before every variant has its first seeds)."""
        have = counts()
        if min(have.values()) < auto.min_seeds:
            return {v: auto.min_seeds for v, n in have.items() if n < auto.min_seeds}, None, None
        decision = judging.decide(accuracies_of(kept()))
        step = verdicts.next_round(decision, max_seeds=auto.max_seeds, step=auto.step)
        return step.seeds, step.stop, decision

    def round_of(targets: dict[str, int]) -> list[tuple[PlannedRun, RunStatus]]:
        return [status[name, seed] for name, target in targets.items() for seed in the_plan.seeds[:target]
                if seed not in done[name]]  # fmt: skip

    targets, stop, decision = wanted()
    if request.dry_run:
        comparison.statuses, comparison.stop = round_of(targets), stop
        return comparison
    budget = len(the_plan.variants) * auto.max_seeds
    if budget > MAX_RUNS and not request.allow_many:
        raise PlanError(
            f"this comparison can make up to {budget} runs ({len(the_plan.variants)} variants x --max-seeds "
            f"{auto.max_seeds}), more than {MAX_RUNS}; pass --yes to allow them, or lower --max-seeds"
        )
    runner = make_runner()
    on_plan(comparison, runner)
    number = 0
    while stop is None:
        runs = round_of(targets)
        number += 1
        hooks.on_round(number, runs)
        entries = drive(the_plan, runs, ledger, runner=runner, force=request.force, distribute=request.distribute,
                        hooks=hooks)  # fmt: skip
        for name, finished in entries.items():
            done[name].update((e["seed"], e) for e in finished)
        used += runs
        targets, stop, decision = wanted()
    entries = kept()
    trained = {(planned.variant.name, planned.seed) for planned, _ in used}
    reused = [status[name, e["seed"]] for name, variant in entries.items() for e in variant
              if (name, e["seed"]) not in trained]  # fmt: skip
    comparison.statuses = reused + used
    comparison.decision, comparison.stop, comparison.rounds = decision, stop, number
    comparison.rows = summarize_all(the_plan, entries, decision)
    # The plan as it turned out: the runs the rows rest on (curves, the HTML report).
    taken = {(name, e["seed"]) for name, variant in entries.items() for e in variant}
    most = max(len(variant) for variant in entries.values())
    comparison.plan = replace(the_plan, seeds=the_plan.seeds[:most],
                              runs=tuple(p for p in the_plan.runs if (p.variant.name, p.seed) in taken))  # fmt: skip
    return comparison


def _unbroken(seeds: dict[int, dict], planned: tuple[int, ...]) -> int:
    """How many of the planned seeds, from the first, a variant has without a gap."""
    count = 0
    while count < len(planned) and planned[count] in seeds:
        count += 1
    return count

