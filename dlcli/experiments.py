"""`dlcli compare`: the lecture's variant sets, run as real mnist runs, with statistics.

Each variant is an ordinary run through `dlcli.core.session.train` (the same loop and
checkpoints as `dlcli mnist`), logged under `<logdir>/compare/<set>/<variant>-s<seed>/`.
Every finished run is appended to a ledger, `<logdir>/compare/results.jsonl`, keyed by
its full configuration: running the same comparison again reuses what is finished,
continues (exactly) a run that was interrupted, and trains only what is missing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec
from dlcli.errors import ConfigError

# Lab 10-1: sigmoid vs relu, 2 hidden layers of 256, random-normal init.
# Lab 10-2: normal vs xavier vs he with relu. Labs 10-2-2, 10-3, 10-4: the deep net
# (4 hidden layers of 512, relu, xavier) plain, with dropout 0.5, with batch norm.
VARIANTS = {
    "sigmoid-normal": ModelSpec(layers=3, units=256, activation="sigmoid", init="normal"),
    "relu-normal": ModelSpec(layers=3, units=256, activation="relu", init="normal"),
    "relu-xavier": ModelSpec(layers=3, units=256, activation="relu", init="xavier"),
    "relu-he": ModelSpec(layers=3, units=256, activation="relu", init="he"),
    "deep": ModelSpec(layers=5, units=512, activation="relu", init="xavier"),
    "deep-dropout": ModelSpec(layers=5, units=512, activation="relu", init="xavier", dropout=0.5),
    "deep-batchnorm": ModelSpec(layers=5, units=512, activation="relu", init="xavier", batchnorm=True),
}
SETS = {
    "activation": ["sigmoid-normal", "relu-normal"],
    "init": ["relu-normal", "relu-xavier", "relu-he"],
    "regularization": ["deep", "deep-dropout", "deep-batchnorm"],
}
SETS["all"] = list(dict.fromkeys(v for names in SETS.values() for v in names))
LEDGER = "results.jsonl"

# Two-sided 95% Student t quantiles, t(0.975, df) for df = 1 .. 30.
T_975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What to compare: variant names (in order), seeds, and the shared settings."""

    sets: tuple[str, ...]
    seeds: int
    train: TrainSpec
    data: DataSpec
    logdir: str = "logs"
    checkpoint_dir: str = "checkpoints"

    @property
    def set_name(self) -> str:
        return "_".join(self.sets)

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(v for s in self.sets for v in SETS[s]))

    def runs(self) -> list[RunConfig]:
        """One validated mnist run per (variant, seed)."""
        configs = []
        for variant in self.variants:
            for seed in range(self.seeds):
                configs.append(
                    RunConfig(
                        task="mnist",
                        name=f"compare/{self.set_name}/{variant}-s{seed}",
                        model=VARIANTS[variant],
                        train=replace(self.train, seed=self.train.seed + seed),
                        data=self.data,
                        logdir=self.logdir,
                        checkpoint_dir=self.checkpoint_dir,
                    ).validate()
                )
        return configs


def plan(what: tuple[str, ...], seeds: int, train: TrainSpec, data: DataSpec, **paths) -> Plan:
    unknown = [w for w in what if w not in SETS]
    if unknown:
        raise ConfigError(f"unknown --what {unknown[0]!r}; choose from {', '.join(SETS)}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    ordered = tuple(dict.fromkeys(what or ("all",)))
    if "all" in ordered:
        ordered = ("all",)
    return Plan(sets=ordered, seeds=seeds, train=train, data=data, **paths)


def ledger_key(config: RunConfig) -> str:
    """What makes two runs the same experiment: everything but names and folders."""
    t = config.train
    key = {
        "model": config.model.__dict__,
        "train": {"optimizer": t.optimizer, "lr": t.lr, "epochs": t.epochs, "batch_size": t.batch_size, "seed": t.seed},
        "data": config.data.__dict__,
    }
    return json.dumps(key, sort_keys=True)


def read_ledger(path: Path) -> dict[str, dict]:
    """{key: entry} of finished runs; a torn last line (a kill mid-append) is skipped."""
    entries = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                entries[entry["key"]] = entry
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return entries


def append_ledger(path: Path, entry: dict) -> None:
    """One line, written and fsynced at once, so the ledger stays readable after a kill."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, sort_keys=True) + "\n"
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a torn line from a killed append: end it first
                line = "\n" + line
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def run(
    plan: Plan,
    *,
    force: bool = False,
    on_start: Callable[[RunConfig, str], None] = lambda config, how: None,
    on_finish: Callable[[RunConfig], None] = lambda config: None,
    progress_factory=None,
    distribute=None,
) -> list[dict]:
    """Run every missing (variant, seed) and return one row of statistics per variant."""
    from dlcli.core import session

    configs = plan.runs()
    ledger_path = Path(plan.logdir) / "compare" / LEDGER
    finished = {} if force else read_ledger(ledger_path)
    results: dict[str, list[dict]] = {}
    for config in configs:
        key = ledger_key(config)
        variant = config.name.split("/")[-1].rsplit("-s", 1)[0]
        if key in finished:
            on_start(config, "reused")
            results.setdefault(variant, []).append(finished[key])
            on_finish(config)
            continue
        folder = Path(config.checkpoint_dir) / config.name
        progress = progress_factory() if progress_factory else None
        if folder.is_dir() and not force and (folder / "checkpoint").is_file():
            on_start(config, "resumed")
            result = session.resume(folder, progress=progress, distribute=distribute)
        else:
            if force or folder.is_dir():
                # compare owns these folders: a forced rerun, or a run killed before its
                # first checkpoint, starts over in a clean folder.
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(Path(config.logdir) / config.name, ignore_errors=True)
            on_start(config, "trained")
            result = session.train(
                config, progress=progress, hparams=hparams_of(variant, config), distribute=distribute
            )
        entry = {
            "key": key,
            "variant": variant,
            "seed": config.train.seed,
            "run": config.name,
            "accuracy": result.accuracy,
            "loss": result.loss,
            "seconds": result.train_seconds,
            "params": result.params,
            "grad_ratio": result.grad_ratio if math.isfinite(result.grad_ratio) else None,
        }
        append_ledger(ledger_path, entry)
        results.setdefault(variant, []).append(entry)
        on_finish(config)
    return [summarize(variant, results[variant]) for variant in plan.variants]


def hparams_of(variant: str, config: RunConfig) -> dict:
    m = config.model
    return {
        "variant": variant,
        "activation": m.activation,
        "init": m.init,
        "hidden_layers": m.hidden_layers,
        "units": m.units,
        "dropout": m.dropout,
        "batchnorm": m.batchnorm,
        "seed": config.train.seed,
    }


def summarize(variant: str, entries: list[dict]) -> dict:
    """Mean, sample std and a 95% t interval of the test accuracy over seeds."""
    spec = VARIANTS[variant]
    accuracies = [e["accuracy"] for e in entries]
    n = len(accuracies)
    mean = statistics.fmean(accuracies)
    std = statistics.stdev(accuracies) if n > 1 else 0.0
    half = t_quantile(n - 1) * std / math.sqrt(n) if n > 1 else None
    ratios = [e["grad_ratio"] for e in entries if e.get("grad_ratio") is not None]
    return {
        "variant": variant,
        "activation": spec.activation,
        "init": spec.init,
        "hidden": f"{spec.hidden_layers}x{spec.units}",
        "dropout": spec.dropout,
        "batchnorm": spec.batchnorm,
        "accuracy": mean,
        "accuracy_std": std,
        "ci_low": None if half is None else mean - half,
        "ci_high": None if half is None else mean + half,
        "loss": statistics.fmean(e["loss"] for e in entries),
        "seconds": sum(e["seconds"] for e in entries),
        "params": entries[0]["params"],
        "grad_ratio": statistics.fmean(ratios) if ratios else None,
        "seeds": n,
    }


def t_quantile(df: int) -> float:
    return T_975[df - 1] if df <= len(T_975) else 1.96


def best_and_verdict(rows: list[dict]) -> tuple[int, str | None]:
    """Index of the best row, and a warning when it is not clearly ahead of the second."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["accuracy"], reverse=True)
    best = order[0]
    if len(rows) < 2:
        return best, None
    second = order[1]
    a, b = rows[best], rows[second]
    if a["seeds"] < 2:
        return best, "one seed per variant: no spread to judge by; use --seeds 3 or more for intervals"
    if a["ci_low"] <= b["ci_high"]:
        return best, (
            f"{a['variant']} is not clearly ahead of {b['variant']}: their 95% intervals overlap "
            f"([{a['ci_low']:.4f}, {a['ci_high']:.4f}] vs [{b['ci_low']:.4f}, {b['ci_high']:.4f}])"
        )
    return best, None
