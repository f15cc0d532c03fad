"""Planning a comparison: variants on a shared base run, the seeds every one gets,
each run's validated configuration. Nothing is trained or written here."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

from dlcli.comparison.ledger import folder_key
from dlcli.comparison.presets import DEFAULT_PRESET, PAPERS, PRESETS, VARIANTS
from dlcli.comparison.settings import (
    SETTINGS,
    TASK_DATA,
    TASK_DEFAULTS,
    apply_settings,
    format_value,
)
from dlcli.config import DataSpec, RunConfig, task_config
from dlcli.errors import ConfigError
from dlcli.settings import BY_NAME

LEDGER = "results.jsonl"
MAX_RUNS = 100  # a larger comparison needs --yes
DEFAULT_POINTS = 10  # learning-curve points per mnist run

@dataclass(frozen=True)
class Variant:
    name: str  # derived from its settings only: `activation=tanh,lr=0.01` (or a preset's name)
    settings: tuple[tuple[str, object], ...]  # ((setting name, value), ...)
    preset: str = ""  # the preset's variant it is (or extends with a grid's values); "" for a grid's own


@dataclass(frozen=True)
class PlannedRun:
    variant: Variant
    seed: int
    config: RunConfig


@dataclass(frozen=True)
class Plan:
    """What to compare: variants on a shared base run, the seeds every one gets, and
    the runs that makes (computed and validated once, by `plan`)."""

    task: str
    label: str  # the comparison's folder: <logdir>/compare/<label>/
    variants: tuple[Variant, ...]
    columns: tuple[str, ...]  # the settings the variants differ in (table columns)
    seeds: tuple[int, ...]
    base: RunConfig
    runs: tuple[PlannedRun, ...]  # one validated run per (variant, seed), variants in order
    points: int = DEFAULT_POINTS  # test-subset evaluations per mnist run (learning curves)
    paper: str | None = None  # the paper preset (presets.PAPERS) it runs, if any

    @property
    def ledger_path(self) -> Path:
        return Path(self.base.logdir) / "compare" / LEDGER

    @property
    def folder(self) -> str:
        return f"compare/{self.label}"

    @property
    def scope(self) -> str:
        """The prefix of its runs' scalar tags: only they match its charts' regexes."""
        return f"{self.label}/"


def _planned_runs(task: str, label: str, variants, seeds, base: RunConfig, points: int) -> tuple[PlannedRun, ...]:
    """One validated run per (variant, seed), variants in order."""
    out = []
    for variant in variants:
        for seed in seeds:
            config = apply_settings(base, dict(variant.settings))
            config = replace(
                config,
                name=f"compare/{label}/{variant.name}-s{seed}",
                train=replace(config.train, seed=seed, eval_points=points if task == "mnist" else 0),
            )
            try:
                config.validate()
            except ConfigError as exc:
                raise ConfigError(f"variant {variant.name}: {exc}") from None
            out.append(PlannedRun(variant, seed, config))
    return tuple(out)


def parse_vary(items: tuple[str, ...], task: str) -> list[tuple[str, list]]:
    """[(setting, [values...]), ...] from `--vary NAME=V1,V2,...` options, all checked."""
    grid, seen = [], set()
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--vary {item!r}: expected NAME=V1,V2,... (e.g. --vary lr=0.1,0.01)")
        if name not in SETTINGS:
            raise ConfigError(f"--vary {item!r}: unknown setting {name!r}; choose from {', '.join(SETTINGS)}")
        if task not in SETTINGS[name].tasks:
            raise ConfigError(f"--vary {name}: {task} runs have no {name} setting")
        if name in seen:
            raise ConfigError(f"--vary {name} is given twice; put all its values in one --vary {name}=V1,V2,...")
        seen.add(name)
        texts = [v.strip() for v in values.split(",")]
        if texts == [""]:
            raise ConfigError(f"--vary {name}= has no values; give at least one: --vary {name}=V1,V2,...")
        parsed, names = [], set()
        for text in texts:
            if not text:
                raise ConfigError(f"--vary {item!r}: an empty value; separate values with single commas")
            try:
                value = SETTINGS[name].parse(text, task)
            except ConfigError as exc:
                raise ConfigError(f"--vary {name}: {exc}") from None
            if format_value(value) in names:
                raise ConfigError(f"--vary {name}: {text} is given twice")
            names.add(format_value(value))
            parsed.append(value)
        grid.append((name, parsed))
    return grid


def plan(
    task: str,
    what: tuple[str, ...],
    vary: tuple[str, ...],
    base: RunConfig,
    *,
    explicit: set[str] = frozenset(),
    seeds: int = 1,
    first_seed: int = 0,
    points: int = DEFAULT_POINTS,
    named: tuple = (),
    label: str | None = None,
) -> Plan:
    """Check everything and lay out the comparison; nothing is trained or written.

    `base` is the shared run (the task's defaults and the user's options); `explicit`
    names the settings the user gave on the command line, which a preset that sets
    them too would silently override: that is an error instead. A paper's preset
    also brings a base run of its own (presets.Paper.base): it replaces the task's
    defaults in `base`, and the settings in `explicit` replace it in turn.
    """
    _check_counts(seeds, points)
    if named:
        return _named_plan(task, named, base, seeds=seeds, first_seed=first_seed, points=points, label=label)
    _check_presets(task, what)
    grid = parse_vary(vary, task)
    presets = tuple(dict.fromkeys(what)) or (() if grid else (DEFAULT_PRESET[task],))
    if "all" in presets:
        presets = ("all",)
    paper = _paper_of(presets)
    preset_variants = list(dict.fromkeys(v for p in presets for v in PRESETS[task][p]))
    _check_overlaps(task, presets, preset_variants, grid, explicit)
    paper_base = PAPERS[paper].base if paper else {}
    base = apply_settings(base, {name: value for name, value in paper_base.items() if name not in explicit})
    varied = [name for name, _ in grid]
    variants = _variants(task, preset_variants, grid)
    columns = tuple(dict.fromkeys([s for v in preset_variants for s in VARIANTS[task][v]] + varied))
    label = _label(task, presets, varied, base, columns, points, paper_base)
    seed_list = tuple(range(first_seed, first_seed + seeds))
    # Every run's configuration is validated now, before anything trains.
    runs = _planned_runs(task, label, variants, seed_list, base, points)
    return Plan(task=task, label=label, variants=variants, columns=columns, seeds=seed_list, base=base, runs=runs,
                points=points, paper=paper)  # fmt: skip


def _named_plan(task: str, named: tuple, base: RunConfig, *, seeds: int, first_seed: int, points: int,
                label: str | None) -> Plan:  # fmt: skip
    """A comparison of variants given one by one, ((name, {setting: value}), ...), not
    a preset or a grid (`dlcli diagnose --try-fixes`: a run and the fixes for its
    problems), in `<logdir>/compare/<label>-<hash of the shared settings>/`."""
    variants = tuple(Variant(name, tuple(changes.items())) for name, changes in named)
    columns = tuple(dict.fromkeys(setting for _, changes in named for setting in changes))
    shared = _shared_part(base, columns, points if task == "mnist" else 0)
    label = f"{label or 'named'}-{hashlib.sha256(shared.encode()).hexdigest()[:8]}"
    seed_list = tuple(range(first_seed, first_seed + seeds))
    runs = _planned_runs(task, label, variants, seed_list, base, points)
    return Plan(task=task, label=label, variants=variants, columns=columns, seeds=seed_list, base=base, runs=runs,
                points=points)  # fmt: skip


def _paper_of(presets: tuple) -> str | None:
    """The paper preset among `presets`, which must then be the only one: its base run
    is not the other presets' (nor another paper's)."""
    papers = [p for p in presets if p in PAPERS]
    if papers and len(presets) > 1:
        other = next(p for p in presets if p != papers[0])
        raise ConfigError(
            f"--what {papers[0]} cannot be combined with --what {other}: {papers[0]} runs on a base of its own "
            f"({PAPERS[papers[0]].scale}); run each on its own"
        )
    return papers[0] if papers else None


def _check_counts(seeds: int, points: int) -> None:
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if points < 1:
        raise ConfigError(f"--points must be at least 1, got {points}")


def _check_presets(task: str, what: tuple[str, ...]) -> None:
    unknown = [w for w in what if w not in PRESETS[task]]
    if unknown:
        raise ConfigError(
            f"--what {unknown[0]} is not a {task} preset; {task} has {', '.join(PRESETS[task])}"
            + (" (use --task xor)" if unknown[0] in PRESETS["xor"] else "")
            + (" (use --task mnist)" if unknown[0] in PRESETS["mnist"] else "")
        )


def _check_overlaps(task: str, presets: tuple, preset_variants: list, grid: list, explicit) -> None:
    """A setting is set in one place only: by a preset, a --vary or its own option."""
    fixed = {s for v in preset_variants for s in VARIANTS[task][v]}
    for name, _ in grid:
        if name in fixed:
            raise ConfigError(
                f"--vary {name} cannot be combined with --what {','.join(presets)}: its variants set {name} "
                f"themselves; vary it on its own or drop --what"
            )
    overridden = sorted(fixed & set(explicit))
    if overridden:
        raise ConfigError(
            f"--{overridden[0]} cannot be combined with --what {','.join(presets)}: its variants set "
            f"{overridden[0]} themselves; use --vary {overridden[0]}=... without --what instead"
        )
    both = sorted({name for name, _ in grid} & set(explicit))
    if both:
        raise ConfigError(f"--{both[0]} and --vary {both[0]} both set {both[0]}; keep one")


def _variants(task: str, preset_variants: list, grid: list) -> tuple[Variant, ...]:
    """Every preset variant with every combination of the grid's values."""
    varied = [name for name, _ in grid]
    variants = []
    bases = [(name, tuple(VARIANTS[task][name].items())) for name in preset_variants] or [("", ())]
    for (preset_name, preset_settings), values in itertools.product(bases, itertools.product(*[v for _, v in grid])):
        chosen = tuple(zip(varied, values))
        grid_name = ",".join(f"{n}={format_value(v)}" for n, v in chosen)
        name = ",".join(filter(None, [preset_name, grid_name]))
        variants.append(Variant(name, preset_settings + chosen, preset_name))
    return tuple(variants)


def _label(task: str, presets: tuple, varied: list, base: RunConfig, columns: tuple, points: int,
           paper_base: dict) -> str:  # fmt: skip
    """The comparison's folder name: its presets and varied settings, and a hash of
    its shared settings when they are not the task's defaults (a paper's preset: its
    own base run)."""
    label_parts = list(presets) + (["vary-" + "-".join(varied)] if varied else [])
    label = ("" if task == "mnist" else f"{task}-") + "_".join(label_parts)
    shared = _shared_part(base, columns, points if task == "mnist" else 0)
    default = apply_settings(_default_base(task, base), paper_base)
    if shared != _shared_part(default, columns, DEFAULT_POINTS if task == "mnist" else 0):
        # Another base (other data, epochs, width...) is another comparison: its own folder.
        label += "-" + hashlib.sha256(shared.encode()).hexdigest()[:8]
    return label


def base_config(
    task: str, settings: dict | None = None, *, data: DataSpec | None = None, logdir: str = "logs",
    checkpoint_dir: str = "checkpoints",
) -> RunConfig:  # fmt: skip
    """The shared run of a `task` comparison: compare's defaults for the task with the
    given {setting name: value} in place (None: keep the default), each checked for the
    task by the settings table, as `dlcli TASK` and --vary check it. `data`: mnist's."""
    given = {name: value for name, value in (settings or {}).items() if value is not None}
    for name, value in given.items():
        setting = BY_NAME[name]
        if task not in setting.tasks:
            raise ConfigError(f"--{name} is for {'/'.join(setting.tasks)} comparisons; {task} runs have no {name}")
        setting.check(value, task)
    config = task_config(task, given, name="compare", logdir=logdir, checkpoint_dir=checkpoint_dir, compare=True)
    return config if task == "xor" or data is None else replace(config, data=data)


def _default_base(task: str, base: RunConfig) -> RunConfig:
    model, train = TASK_DEFAULTS[task]
    return replace(base, model=model, train=train, data=TASK_DATA[task])


def _shared_part(base: RunConfig, columns: tuple[str, ...], points: int) -> str:
    """The runs' configuration without the varied settings and the seed: what all
    variants share (in dlcli 0.3.1's terms, so a folder keeps its name across upgrades)."""
    blank = {name: None for name in columns}
    config = apply_settings(base, blank)
    return folder_key(replace(config, train=replace(config.train, seed=0, eval_points=points)))
