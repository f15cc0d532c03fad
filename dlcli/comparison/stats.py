"""Statistics of a comparison: each variant's row (mean accuracy over seeds with an
interval inside [0, 1], the paired difference to the best variant, and a verdict).

The statistics themselves are `dlcli.verdicts` (Holm over every pair, bounded intervals,
alpha split over the looks of `--seeds auto`); this module only says which of its
functions a comparison uses (`Judging.decide`) and turns its Decision into rows."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dlcli import verdicts
from dlcli.comparison.presets import PAPERS
from dlcli.comparison.settings import apply_settings, setting_value

if TYPE_CHECKING:
    from dlcli.comparison.plan import Plan, Variant

DEFAULT_ALPHA = 0.05
MIN_SEEDS = 3  # --seeds auto: every variant starts with this many
DEFAULT_MAX_SEEDS = 10  # --seeds auto: the budget per variant unless --max-seeds says otherwise


@dataclass(frozen=True)
class AutoSeeds:
    """The `--seeds auto` design: every variant gets `min_seeds`, then rounds add `step`
    seeds to the open ones, never beyond `max_seeds`. Alpha is split over its looks."""

    min_seeds: int = MIN_SEEDS
    max_seeds: int = DEFAULT_MAX_SEEDS
    step: int = 1

    @property
    def looks(self) -> int:
        return verdicts.looks_for(self.min_seeds, self.max_seeds, self.step)


def auto_seeds(seeds, max_seeds: int | None) -> AutoSeeds | None:
    """--seeds auto's design (None for a fixed number of seeds); --max-seeds needs auto.
    The command line and the Python API both ask here, so both refuse alike."""
    from dlcli.errors import ConfigError

    if seeds != "auto":
        if max_seeds is not None:
            raise ConfigError(f"--max-seeds is the budget of --seeds auto; with --seeds {seeds} every "
                              "variant gets exactly that many: drop --max-seeds or use --seeds auto")  # fmt: skip
        return None
    budget = DEFAULT_MAX_SEEDS if max_seeds is None else max_seeds
    if budget < MIN_SEEDS:
        raise ConfigError(f"--max-seeds {budget}: --seeds auto starts with {MIN_SEEDS} seeds per "
                          f"variant, so the budget must be at least {MIN_SEEDS}")  # fmt: skip
    return AutoSeeds(max_seeds=budget)


@dataclass(frozen=True)
class Judging:
    """How a comparison's verdicts are reached: the family-wise level, the equivalence
    margin (accuracy points; None: no "within D" verdict), and the `--seeds auto` design
    whose looks the level is split over (None: a fixed number of seeds, one look)."""

    alpha: float = DEFAULT_ALPHA
    tolerance: float | None = None
    auto: AutoSeeds | None = None

    def decide(self, accuracies: dict[str, dict[int, float]]) -> verdicts.Decision:
        """The verdicts on `{variant: {seed: accuracy}}`. With `auto`, every look of the
        design is replayed from the results (`verdicts.replay`), so the rows printed live
        and on a rerun from the ledger are the same and the repeated looks are paid for."""
        if self.auto is None or all(len(seeds) < self.auto.min_seeds for seeds in accuracies.values()):
            # A fixed design (or an auto one before its first look: nothing to replay yet).
            return verdicts.decide(accuracies, alpha=self.alpha, tolerance=self.tolerance)
        return verdicts.replay(accuracies, min_seeds=self.auto.min_seeds, max_seeds=self.auto.max_seeds,
                               step=self.auto.step, alpha=self.alpha, tolerance=self.tolerance)  # fmt: skip


def accuracies_of(entries: dict[str, list[dict]]) -> dict[str, dict[int, float]]:
    """{variant: {seed: accuracy}} from the ledger entries of each variant."""
    return {name: {e["seed"]: e["accuracy"] for e in variant} for name, variant in entries.items()}


def summarize_all(the_plan: Plan, entries: dict[str, list[dict]], decision: verdicts.Decision | None = None,
                  ) -> list[dict]:  # fmt: skip
    """One row per variant, in plan order: its settings and statistics, the paired
    difference to the best row and its verdict (from `decision`, by default a fixed-seeds
    Judging's at alpha 0.05). A variant without entries (not run) has no row."""
    variants = [v for v in the_plan.variants if entries.get(v.name)]
    if decision is None:
        decision = Judging().decide(accuracies_of({v.name: entries[v.name] for v in variants}))
    rows = []
    for v in variants:
        row = summarize(v, entries[v.name], the_plan)
        row.update(verdict_keys(decision.verdicts[v.name], decision))
        rows.append(row)
    paper = PAPERS.get(the_plan.paper)
    if paper is not None and paper.test_errors:
        for row, variant in zip(rows, variants):
            # The paper's own number beside dlcli's (None where the paper gives none).
            row["paper_test_error"] = paper.test_errors.get(variant.preset)
    return rows


def verdict_keys(verdict: verdicts.Verdict, decision: verdicts.Decision) -> dict:
    """A row's statistics from its Verdict: the accuracy interval (inside [0, 1]; `ci_clipped`
    when it had to be cut there), the difference to the best with its interval at the
    verdicts' own level (below 0 always means "clearly behind"), and the verdict."""
    accuracy, difference = verdict.accuracy, verdict.diff_to_best
    return {
        "accuracy_std": accuracy.std,
        "ci_low": accuracy.low,
        "ci_high": accuracy.high,
        "ci_clipped": accuracy.clipped,
        "best": verdict.variant == decision.best,
        "diff_to_best": None if difference is None else difference.mean,
        "diff_ci_low": None if difference is None else difference.low,
        "diff_ci_high": None if difference is None else difference.high,
        "diff_ci_level": None if difference is None or difference.low is None else difference.level,
        "diff_ci_clipped": difference is not None and difference.clipped,
        "verdict": verdict.summary,
        "verdict_reason": verdict.reason,
        "p_behind": verdict.p_behind,
        "p_within": verdict.p_within,
        "decided_at": verdict.decided_at,
    }


def summarize(variant: Variant, entries: list[dict], the_plan: Plan) -> dict:
    """A variant's row without its verdict: its settings, and its runs' numbers."""
    ratios = [e["grad_ratio"] for e in entries if e.get("grad_ratio") is not None]
    config = apply_settings(the_plan.base, dict(variant.settings))
    accuracy, std = verdicts.mean_and_std([e["accuracy"] for e in entries])
    row = {"variant": variant.name}
    row.update((name, setting_value(config, name)) for name in the_plan.columns)
    row.update(
        accuracy=accuracy,
        accuracy_std=std,
        loss=statistics.fmean(e["loss"] for e in entries),
        seconds=sum(e["seconds"] for e in entries),
        params=entries[0]["params"],
        grad_ratio=statistics.fmean(ratios) if ratios else None,
        seeds=len(entries),
    )
    if the_plan.task == "xor":
        row["solved"] = sum(e["accuracy"] == 1.0 for e in entries) / len(entries)
    return row


def starred(row: dict) -> bool:
    """The row a table may mark as the winner: only a "clearly best" one (never the
    highest mean alone: with one seed, or when it is not clearly ahead, that is noise)."""
    return row.get("verdict") == "clearly best"


SORT_KEYS = {
    "order": None,
    "accuracy": lambda row: -row["accuracy"],
    "loss": lambda row: row["loss"],
    "seconds": lambda row: row["seconds"],
    "name": lambda row: row["variant"],
}


def sort_rows(rows: list[dict], by: str) -> list[dict]:
    key = SORT_KEYS[by]
    return rows if key is None else sorted(rows, key=key)
