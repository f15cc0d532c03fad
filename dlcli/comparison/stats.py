"""Statistics of a comparison: each variant's mean accuracy over seeds with its interval,
and its paired difference to the best variant."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dlcli.comparison.settings import apply_settings, setting_value

if TYPE_CHECKING:
    from dlcli.comparison.plan import Plan, Variant

# Two-sided 95% Student t quantiles, t(0.975, df) for df = 1 .. 30.
T_975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip


def t_quantile(df: int) -> float:
    return T_975[df - 1] if df <= len(T_975) else 1.96


@dataclass(frozen=True)
class Interval:
    mean: float
    std: float  # sample std (n - 1)
    low: float | None  # 95% Student-t interval of the mean; None with one value
    high: float | None
    n: int


def mean_interval(values: list[float]) -> Interval:
    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    if n < 2:
        return Interval(mean, std, None, None, n)
    half = t_quantile(n - 1) * std / math.sqrt(n)
    return Interval(mean, std, mean - half, mean + half, n)


def paired_difference(a: dict[int, float], b: dict[int, float]) -> Interval | None:
    """Mean of a[seed] - b[seed] over the seeds both have, with its paired 95% interval
    (the interval of a paired t-test); None when they share no seed."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    return mean_interval([a[s] - b[s] for s in shared])


def summarize_all(the_plan: Plan, entries: dict[str, list[dict]]) -> list[dict]:
    """One row per variant, in plan order, with the paired difference to the best row."""
    rows = [summarize(v, entries[v.name], the_plan) for v in the_plan.variants]
    by_seed = {v.name: {e["seed"]: e["accuracy"] for e in entries[v.name]} for v in the_plan.variants}
    best = max(range(len(rows)), key=lambda i: (rows[i]["accuracy"], -rows[i]["loss"]))
    for i, row in enumerate(rows):
        row["best"] = i == best
        diff = None if i == best else paired_difference(by_seed[row["variant"]], by_seed[rows[best]["variant"]])
        row["diff_to_best"], row["diff_ci_low"], row["diff_ci_high"] = (
            (None, None, None) if diff is None else (diff.mean, diff.low, diff.high)
        )
    return rows


def summarize(variant: Variant, entries: list[dict], the_plan: Plan) -> dict:
    """A variant's row: its settings, and accuracy statistics over its seeds."""
    accuracy = mean_interval([e["accuracy"] for e in entries])
    ratios = [e["grad_ratio"] for e in entries if e.get("grad_ratio") is not None]
    config = apply_settings(the_plan.base, dict(variant.settings))
    row = {"variant": variant.name}
    row.update((name, setting_value(config, name)) for name in the_plan.columns)
    row.update(
        accuracy=accuracy.mean,
        accuracy_std=accuracy.std,
        ci_low=accuracy.low,
        ci_high=accuracy.high,
        loss=statistics.fmean(e["loss"] for e in entries),
        seconds=sum(e["seconds"] for e in entries),
        params=entries[0]["params"],
        grad_ratio=statistics.fmean(ratios) if ratios else None,
        seeds=len(entries),
    )
    if the_plan.task == "xor":
        row["solved"] = sum(e["accuracy"] == 1.0 for e in entries) / len(entries)
    return row


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


def not_clearly_behind(row: dict) -> bool:
    """The paired interval of the difference to the best row contains 0."""
    low, high = row.get("diff_ci_low"), row.get("diff_ci_high")
    return low is not None and low <= 0.0 <= high


def verdict(rows: list[dict]) -> str | None:
    """A warning when the best row is not clearly ahead of the runner-up."""
    if len(rows) < 2:
        return None
    best = next(r for r in rows if r["best"])
    if best["seeds"] < 2:
        return "one seed per variant: no spread to judge by; use --seeds 3 or more for intervals"
    others = sorted((r for r in rows if not r["best"]), key=lambda r: -r["accuracy"])
    second = others[0]
    if not_clearly_behind(second):
        return (
            f"{best['variant']} is not clearly ahead of {second['variant']}: the paired 95% interval of "
            f"their difference, [{second['diff_ci_low']:+.4f}, {second['diff_ci_high']:+.4f}], contains 0"
        )
    return None
