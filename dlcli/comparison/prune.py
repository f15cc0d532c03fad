"""`dlcli compare --prune`: successive halving over a comparison's variants.

Every variant trains to the first rung of epochs; the better 1/eta of them (by mean
test accuracy over their seeds: every variant has the same seeds, so this is the
order of their paired differences) continue to the next rung, and so on until the
survivors reach the comparison's --epochs. This is the successive halving of
Jamieson & Talwalkar (2016) that Hyperband and ASHA (Li et al., 2018, 2020) build on;
Optuna's SuccessiveHalvingPruner and W&B sweeps' `early_terminate` (type hyperband)
apply it to trials.

Rungs: with E epochs and reduction factor eta, rung k (k = K, ..., 1, 0) is
floor(E / eta^k) epochs, where K is the largest k with eta^k <= E; equal values count
once. --epochs 9: 1, 3, 9; --epochs 10: 1, 3, 10; --epochs 20: 2, 6, 20; --epochs 1
or 2 (eta 3): one rung, nothing to prune. A rung keeps ceil(n / eta) of its n variants
(never none): 27 -> 9 -> 3.

A rung is an ordinary set of runs through the driver (any runner: here, --jobs,
--cluster); `Pruning` is a policy of the one comparison loop (`policy`): each rung's
survivors follow from the complete results of the rung before it, so a rerun after a
kill replays the same rungs from the ledger and ends with the same table. A rung's
run is the planned run with the rung's epochs: that is its ledger key, so the ledger has one line per (run, rung) and a rerun reuses every rung.
Its folder records the whole run, targeted at the rung (`session.train(...,
epochs=rung)`), and the next rung resumes it to a higher target
(`RunFolder.continues_to`): bit for bit the run trained straight through, diagnostics
and learning curves included (the points logged at a rung's end go when it continues).

Standard library only: the CLI plans a pruned comparison without TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

from dlcli.comparison import policy
from dlcli.comparison.driver import Hooks
from dlcli.comparison.ledger import Ledger, RunStatus, status
from dlcli.comparison.plan import Plan, PlannedRun, Variant
from dlcli.comparison.policy import Step
from dlcli.comparison.runners import Runner
from dlcli.comparison.stats import Judging, accuracies_of, summarize_all
from dlcli.core.runs import RunFolder
from dlcli.errors import ConfigError, DlcliError
from dlcli.wording import counted

DEFAULT_ETA = 3


def rungs(epochs: int, eta: int = DEFAULT_ETA) -> tuple[int, ...]:
    """The rungs' epochs, lowest first, ending at `epochs` (see the module's doc)."""
    found, k = set(), 0
    while eta**k <= epochs:
        found.add(epochs // eta**k)
        k += 1
    return tuple(sorted(found))


def kept(n: int, eta: int = DEFAULT_ETA) -> int:
    """How many of `n` variants continue to the next rung: ceil(n / eta)."""
    return max(1, math.ceil(n / eta))


def ranked(rows: list[dict]) -> list[str]:
    """Variant names, best first: higher mean accuracy, then lower mean loss, then
    plan order (ties are decided, and the same way every time)."""
    order = sorted(range(len(rows)), key=lambda i: (-rows[i]["accuracy"], rows[i]["loss"], i))
    return [rows[i]["variant"] for i in order]


def mark_pruned(row: dict, rung: int, fatal: str | None = None) -> None:
    """A variant's row stopped at `rung` epochs: no verdict against the survivors (its
    numbers are of a shorter run), "pruned" in the verdict cell; `fatal`: stopped for
    the fatal problem its runs showed there (their diagnosis), not for its rank."""
    row.update(pruned_at=rung, pruned_for=fatal, best=False, diff_to_best=None, diff_ci_low=None, diff_ci_high=None,
               verdict="pruned", verdict_reason=None, p_behind=None, p_within=None)  # fmt: skip


def pruned_note(row: dict) -> str:
    """What a pruned row says where others show their difference to the best."""
    note = f"pruned at {row['pruned_at']}/{row['planned_epochs']} epochs"
    return note + (f": {row['pruned_for']}" if row.get("pruned_for") else "")


class Pruning:
    """A comparison's rungs, and driving it rung by rung."""

    def __init__(self, the_plan: Plan, eta: int = DEFAULT_ETA, *, stop_fatal: bool = True):
        if eta < 2:
            raise ConfigError(f"--prune-eta must be at least 2 (keep 1/eta of the variants a rung), got {eta}")
        epochs = {run.config.train.epochs for run in the_plan.runs}
        if len(epochs) != 1:
            raise ConfigError("--prune cannot be combined with --vary epochs: its rungs are fractions of one --epochs")
        self.plan, self.eta, self.stop_fatal = the_plan, eta, stop_fatal
        self.epochs = epochs.pop()
        self.rungs = rungs(self.epochs, eta)
        self.decision = None  # the verdicts of the last rung driven (the survivors', once done)

    def counts(self) -> list[int]:
        """How many variants train to each rung."""
        n, out = len(self.plan.variants), []
        for _ in self.rungs:
            out.append(n)
            n = kept(n, self.eta)
        return out

    def total_runs(self) -> int:
        """Runs trained or reused over all rungs: (variants at a rung x seeds), summed."""
        return sum(self.counts()) * len(self.plan.seeds)

    def describe(self) -> str:
        """One line on the rungs, for stderr."""
        if len(self.rungs) == 1:
            return (f"--prune: with --epochs {self.epochs} and --prune-eta {self.eta} there is one rung, nothing to "
                    "prune: every variant trains all its epochs")  # fmt: skip
        steps = ", ".join(f"{counted(n, 'variant')} to {counted(r, 'epoch')}" for n, r in zip(self.counts(), self.rungs))
        return f"--prune (successive halving, keeping 1/{self.eta} a rung): {steps}"

    def rung_plan(self, rung: int, variants: list[Variant]) -> Plan:
        """The plan of one rung: these variants' runs, each with the rung's epochs."""
        names = {v.name for v in variants}
        runs = tuple(
            PlannedRun(r.variant, r.seed, replace(r.config, train=replace(r.config.train, epochs=rung)))
            for r in self.plan.runs if r.variant.name in names
        )  # fmt: skip
        return replace(self.plan, variants=tuple(variants), runs=runs)

    def reached_plan(self, rows: list[dict]) -> Plan:
        """The plan as it turned out: each variant's runs at the rung it reached (its
        rows' `epochs`), so that what reads the ledger by a plan's runs (the HTML
        report, the depth profile) finds the pruned variants' entries too."""
        runs = tuple(run for row in rows
                     for run in self.rung_plan(row["epochs"], [v for v in self.plan.variants
                                                               if v.name == row["variant"]]).runs)  # fmt: skip
        return replace(self.plan, runs=runs)

    def first_statuses(self, ledger: Ledger, *, force: bool = False) -> list[tuple[PlannedRun, RunStatus]]:
        """What the first rung does with each of its runs (the plan line, --dry-run)."""
        return status(self.rung_plan(self.rungs[0], list(self.plan.variants)), ledger, force=force)

    def check_folders(self, ledger: Ledger, *, force: bool = False) -> None:
        """Refuse to restart a run that went past the rung it would continue from
        (trained by a comparison without --prune, or with another --prune-eta): its
        folder and its results would be thrown away for a lower rung."""
        if force:
            return
        for run in self.plan.runs:
            for rung in self.rungs:
                config = replace(run.config, train=replace(run.config.train, epochs=rung))
                if ledger.get(config) is not None:
                    continue
                ahead = RunFolder.ahead_of(config)
                if ahead is not None:
                    raise DlcliError(
                        f"--prune: {ahead.path} went past the {rung}-epoch rung already "
                        f"(to {ahead.record['target_epochs']} epochs); run this comparison without --prune to reuse "
                        "its runs, or add --force to train it again rung by rung"
                    )
                break  # the first rung this run lacks is where it would continue

    def start(self, judging: Judging) -> None:
        """Make this the policy of the one comparison loop (`policy.run`): from the
        first rung, with no results yet."""
        self.judging = judging
        self.alive, self.index, self.rows = list(self.plan.variants), 0, {}
        self.seconds: dict[str, float] = {}

    def next(self) -> Step | None:
        """The next rung: the surviving variants' runs at its epochs (None when done)."""
        if self.index >= len(self.rungs) or not self.alive:
            return None
        rung_plan = self.rung_plan(self.rungs[self.index], self.alive)
        return Step(rung_plan, fresh=self.index == 0, planned_epochs=self.epochs)

    def record(self, step: Step, entries: dict[str, list[dict]]) -> None:
        """A rung's results: its rows, and which variants continue. Survivors' rows are
        the last rung's, compared with each other as usual; a pruned variant's row is
        its last rung's numbers, with `pruned_at` (its epochs there) and no verdict."""
        rung, last = self.rungs[self.index], self.index == len(self.rungs) - 1
        # The verdicts of a rung are among the variants still in it: at the last rung,
        # the survivors compared with each other as usual.
        self.decision = self.judging.decide(accuracies_of(entries))
        rung_rows = summarize_all(step.plan, entries, self.decision)
        for row in rung_rows:
            # A row's seconds: all its rungs' (a continued run's entry has the rung's own).
            self.seconds[row["variant"]] = self.seconds.get(row["variant"], 0.0) + row["seconds"]
            row.update(seconds=self.seconds[row["variant"]], epochs=rung, planned_epochs=self.epochs, pruned_at=None,
                       pruned_for=None)  # fmt: skip
            self.rows[row["variant"]] = row
        self.index += 1
        if last:
            return
        order = ranked(rung_rows)
        survivors = set(order[: kept(len(self.alive), self.eta)])
        fatal = self._fatal(step.plan, entries, survivors)
        survivors = {v for v in survivors if v not in fatal} or {order[0]}  # never none
        for row in rung_rows:
            if row["variant"] not in survivors:
                mark_pruned(row, rung, fatal.get(row["variant"]))
        self.alive = [v for v in self.alive if v.name in survivors]

    def drive(
        self,
        ledger: Ledger,
        judging: Judging,
        *,
        runner: Runner,
        force: bool = False,
        distribute=None,
        hooks: Hooks | None = None,
        on_rung: Callable[[int, Pruning, list], None] = lambda index, pruning, statuses: None,
    ) -> list[dict]:
        """Train rung by rung through the one comparison loop; one row per variant, in
        plan order. `force` retrains the first rung from scratch; later rungs continue
        it. `on_rung(index, self, statuses)` hears each rung before it trains."""
        self.start(judging)
        policy.run(self, ledger, runner=runner, force=force, distribute=distribute, hooks=hooks,
                   on_step=lambda number, step, statuses: on_rung(number - 1, self, statuses))  # fmt: skip
        return [self.rows[v.name] for v in self.plan.variants]

    def _fatal(self, rung_plan: Plan, entries: dict[str, list[dict]], survivors: set[str]) -> dict[str, str]:
        """{variant: its diagnosis} of the survivors whose every run shows a fatal problem
        at this rung (diverged, a layer 100% dead, stuck at chance): stopped here, however
        they rank. Read from the runs' records up to the rung (dlcli.diagnosis; files only)."""
        if not self.stop_fatal or not survivors:
            return {}
        from dlcli import diagnosis

        runs = [run for run in rung_plan.runs if run.variant.name in survivors]
        return diagnosis.fatal_variants(runs, entries)
