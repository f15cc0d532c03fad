"""`--seeds auto`: add seeds in rounds, only where the verdict is still open.

Every variant first gets `min_seeds` seeds; then, after each look, `verdicts.next_round`
names the variants that need more (the open ones, and the best they are paired with) and
the seed count to reach; a round is an ordinary set of planned runs of the comparison
(the plan holds every seed up to `max_seeds`), driven like any other: ledger, claims,
--jobs, --cluster and resume all apply.

`SeedsAuto` is a policy of the one comparison loop (`policy`): it starts from no seeds
at all and looks only at the rounds it asked for, each complete. A rerun - after a kill
at any moment, or of a finished comparison - therefore replays the same looks on the
same results (the finished rounds come from the ledger, nothing trained) and trains only
what is missing, whatever else the ledger holds (a half-finished round's runs, the seeds
of an earlier, bigger budget): it ends with the uninterrupted command's table. The
verdicts of a look are `Judging.decide` (-> `verdicts.replay`), alpha split over the
design's looks, as before.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from dlcli import verdicts
from dlcli.comparison import policy
from dlcli.comparison.driver import Hooks
from dlcli.comparison.plan import MAX_RUNS, Plan
from dlcli.comparison.runners import Runner
from dlcli.comparison.stats import AutoSeeds, Judging, accuracies_of, summarize_all

if TYPE_CHECKING:
    from dlcli.comparison.request import Comparison, Request


class SeedsAuto:
    """The `--seeds auto` policy over a plan that holds every seed up to the budget."""

    def __init__(self, the_plan: Plan, auto: AutoSeeds, judging: Judging):
        self.plan, self.auto, self.judging = the_plan, auto, judging
        self.counts = {v.name: 0 for v in the_plan.variants}  # seeds each variant had at the last look
        self.done: dict[str, dict[int, dict]] = {v.name: {} for v in the_plan.variants}  # {seed: entry}
        self.targets: dict[str, int] = {}
        self.stop: str | None = None
        self.decision: verdicts.Decision | None = None

    def kept(self) -> dict[str, list[dict]]:
        """Each variant's entries over the seeds it had at the last look."""
        return {name: [self.done[name][s] for s in self.plan.seeds[:n]] for name, n in self.counts.items()}

    def next(self) -> policy.Step | None:
        """The next round: each variant's seeds up to its target that it lacks."""
        if min(self.counts.values()) < self.auto.min_seeds:
            self.targets = {v: self.auto.min_seeds for v, n in self.counts.items() if n < self.auto.min_seeds}
        else:
            self.decision = self.judging.decide(accuracies_of(self.kept()))
            step = verdicts.next_round(self.decision, max_seeds=self.auto.max_seeds, step=self.auto.step)
            self.targets, self.stop = step.seeds, step.stop
            if self.stop is not None:
                return None
        runs = tuple(run for run in self.plan.runs
                     if self.counts[run.variant.name] <= self.plan.seeds.index(run.seed)
                     < self.targets.get(run.variant.name, 0))  # fmt: skip
        return policy.Step(replace(self.plan, runs=runs))

    def record(self, step: policy.Step, entries: dict[str, list[dict]]) -> None:
        for name, finished in entries.items():
            self.done[name].update((e["seed"], e) for e in finished)
        self.counts.update(self.targets)

    def runs_used(self) -> Plan:
        """The plan as it turned out: the runs the rows rest on (curves, the HTML report)."""
        taken = {(name, seed) for name, n in self.counts.items() for seed in self.plan.seeds[:n]}
        return replace(self.plan, seeds=self.plan.seeds[: max(self.counts.values())],
                       runs=tuple(p for p in self.plan.runs if (p.variant.name, p.seed) in taken))  # fmt: skip


def compare_auto(comparison: Comparison, request: Request, *, make_runner: Callable[[], Runner],
                 on_plan: Callable, hooks: Hooks | None) -> Comparison:  # fmt: skip
    """Run `comparison` (planned with every seed up to the budget) in rounds until every
    variant is decided or the budget is spent; fill in its rows, decision, why it
    stopped (`stop`) and the runs it used (`statuses`). A dry run only fills in the
    first round with runs to train (`statuses`) and, when the ledger already decides
    it, `stop`."""
    from dlcli.comparison.request import PlanError

    auto = request.auto
    the_plan, ledger = comparison.plan, comparison.ledger
    hooks = hooks or Hooks()
    seeds_auto = SeedsAuto(the_plan, auto, request.judging)
    if request.dry_run:
        _, comparison.statuses = policy.replay(seeds_auto, ledger, force=request.force)
        comparison.stop = seeds_auto.stop
        return comparison
    budget = len(the_plan.variants) * auto.max_seeds
    if budget > MAX_RUNS and not request.allow_many:
        raise PlanError(
            f"this comparison can make up to {budget} runs ({len(the_plan.variants)} variants x --max-seeds "
            f"{auto.max_seeds}), more than {MAX_RUNS}; pass --yes to allow them, or lower --max-seeds"
        )
    rounds = []
    with contextlib.closing(make_runner()) as runner:  # its worker processes serve every round
        on_plan(comparison, runner)
        comparison.statuses = policy.run(seeds_auto, ledger, runner=runner, force=request.force,
                                         distribute=request.distribute, hooks=hooks,
                                         on_step=lambda n, step, runs: (rounds.append(n), hooks.on_round(n, runs)))  # fmt: skip
    comparison.decision, comparison.stop, comparison.rounds = seeds_auto.decision, seeds_auto.stop, len(rounds)
    comparison.rows = summarize_all(the_plan, seeds_auto.kept(), seeds_auto.decision)
    comparison.plan = seeds_auto.runs_used()
    return comparison
