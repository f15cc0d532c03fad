"""`dlcli compare`: grids of real runs and the lectures' variant sets, with statistics.

A comparison is a list of variants (each a few settings on top of a shared base run),
every one trained with the same seeds. The variants come from a preset (`--what`: the
lectures' sets) or from a grid (`--vary NAME=V1,V2`: the cartesian product), or both.
Each (variant, seed) is an ordinary run through `dlcli.core.session.train` (the same
loop and checkpoints as `dlcli mnist` and `dlcli xor`), logged under
`<logdir>/compare/<label>/<variant>-s<seed>/`. Every finished run is appended to a
ledger, `<logdir>/compare/results.jsonl`, keyed by its whole configuration: running a
comparison again reuses what is finished, continues (exactly) a run that was
interrupted, and trains only what is missing.

Statistics: each variant's mean test accuracy with its sample std and 95% Student-t
interval over seeds, and its difference to the best variant with a *paired* 95%
interval over the seeds they share (a seed fixes the initial weights and the data
order, so the pairs differ only in the variant).

Standard library only at import: the CLI plans, validates and dry-runs a comparison
without TensorFlow.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from dlcli import __version__
from dlcli.config import (
    ACTIVATIONS,
    TEST_SUBSET,
    INITIALIZERS,
    OPTIMIZERS,
    DataSpec,
    ModelSpec,
    RunConfig,
    TrainSpec,
    check_name,
    keras_knows_activation,
    keras_knows_initializer,
    keras_knows_optimizer,
)
from dlcli.errors import ConfigError

LEDGER = "results.jsonl"
# Ledger lines: format 3 (dlcli 0.2) keys are the whole run configuration. Lines of
# formats 1 and 2 (dlcli 0.1) came from models whose layers shared one initializer seed
# taken from Python's global random state; their numbers are not this version's, so
# they are set aside (counted, never reused) and those runs train again.
KEY_FORMAT = 3
MAX_RUNS = 100  # a larger comparison needs --yes
DEFAULT_POINTS = 10  # learning-curve points per mnist run

# -- the settings a comparison can vary ------------------------------------------------


def _integer(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise ConfigError(f"{value} is below {minimum}")
        return value

    return parse


def _number(low: float, high: float, *, low_open: bool, high_open: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{text!r} is not a number") from None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) and above and below):
            bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise ConfigError(f"{text} is outside {bounds}")
        return value

    return parse


def _flag(text: str) -> bool:
    words = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}
    if text.lower() not in words:
        raise ConfigError(f"{text!r} is not yes or no")
    return words[text.lower()]


def _keras_name(kind: str, known: tuple, keras_knows):
    def parse(text: str) -> str:
        return check_name(kind, text, known, keras_knows)

    return parse


@dataclass(frozen=True)
class Setting:
    """One run setting a grid can vary: its option name, where it lives, its parser."""

    name: str  # as on the command line: batch-size
    part: str  # "model" or "train"
    field: str  # the dataclass field: batch_size
    parse: Callable[[str], object]
    tasks: tuple[str, ...] = ("mnist", "xor")


SETTINGS = {
    s.name: s
    for s in (
        Setting("activation", "model", "activation", _keras_name("activation", ACTIVATIONS, keras_knows_activation)),
        Setting("init", "model", "init", _keras_name("initializer", INITIALIZERS, keras_knows_initializer)),
        Setting("layers", "model", "layers", _integer(1)),
        Setting("units", "model", "units", _integer(1)),
        Setting("dropout", "model", "dropout", _number(0, 1, low_open=False, high_open=True), ("mnist",)),
        Setting("batchnorm", "model", "batchnorm", _flag, ("mnist",)),
        Setting("optimizer", "train", "optimizer", _keras_name("optimizer", OPTIMIZERS, keras_knows_optimizer)),
        Setting("lr", "train", "lr", _number(0, math.inf, low_open=True, high_open=True)),
        Setting("batch-size", "train", "batch_size", _integer(1)),
        Setting("epochs", "train", "epochs", _integer(1)),
    )
}


def format_value(value) -> str:
    """A setting's value as it appears in variant names, tables and folders."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def setting_value(config: RunConfig, name: str):
    """The value of setting `name` (a SETTINGS key) in `config`; apply_settings' inverse."""
    s = SETTINGS[name]
    return getattr(getattr(config, s.part), s.field)


def apply_settings(config: RunConfig, settings: dict) -> RunConfig:
    """`config` with each {setting name: value} put in its place."""
    model = {SETTINGS[k].field: v for k, v in settings.items() if SETTINGS[k].part == "model"}
    train = {SETTINGS[k].field: v for k, v in settings.items() if SETTINGS[k].part == "train"}
    return replace(config, model=replace(config.model, **model), train=replace(config.train, **train))


# -- the task defaults and the lectures' presets ---------------------------------------

# What `dlcli xor` and `dlcli mnist` train by default: the shared base of a comparison
# before the user's own options.
TASK_DEFAULTS = {
    "xor": (
        ModelSpec(layers=4, units=10, activation="sigmoid", init="normal"),
        TrainSpec(optimizer="sgd", lr=0.01, epochs=20000, batch_size=0, log_every=1000),
    ),
    "mnist": (ModelSpec(), TrainSpec()),
}

_LECTURE_MLP = ("activation", "init", "layers", "units", "dropout", "batchnorm")


def _mlp(activation, init, layers, units, dropout=0.0, batchnorm=False) -> dict:
    return dict(zip(_LECTURE_MLP, (activation, init, layers, units, dropout, batchnorm)))


# Lab 10-1: sigmoid vs relu, 2 hidden layers of 256, random-normal init.
# Lab 10-2: normal vs xavier vs he with relu. Labs 10-2-2, 10-3, 10-4: the deep net
# (4 hidden layers of 512, relu, xavier) plain, with dropout 0.5, with batch norm.
# Lecture 9 (XOR): one logistic unit, Lab 09-2's two layers, Lab 09-3's four.
VARIANTS = {
    "mnist": {
        "sigmoid-normal": _mlp("sigmoid", "normal", 3, 256),
        "relu-normal": _mlp("relu", "normal", 3, 256),
        "relu-xavier": _mlp("relu", "xavier", 3, 256),
        "relu-he": _mlp("relu", "he", 3, 256),
        "deep": _mlp("relu", "xavier", 5, 512),
        "deep-dropout": _mlp("relu", "xavier", 5, 512, dropout=0.5),
        "deep-batchnorm": _mlp("relu", "xavier", 5, 512, batchnorm=True),
    },
    "xor": {f"layers={n}": {"layers": n} for n in (1, 2, 4)},
}
PRESETS = {
    "mnist": {
        "activation": ["sigmoid-normal", "relu-normal"],
        "init": ["relu-normal", "relu-xavier", "relu-he"],
        "regularization": ["deep", "deep-dropout", "deep-batchnorm"],
    },
    "xor": {"depth": ["layers=1", "layers=2", "layers=4"]},
}
PRESETS["mnist"]["all"] = list(dict.fromkeys(v for names in PRESETS["mnist"].values() for v in names))
DEFAULT_PRESET = {"mnist": "all", "xor": "depth"}
ALL_PRESETS = tuple(dict.fromkeys(p for presets in PRESETS.values() for p in presets))


# -- planning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str  # derived from its settings only: `activation=tanh,lr=0.01` (or a preset's name)
    settings: tuple[tuple[str, object], ...]  # ((setting name, value), ...)


@dataclass(frozen=True)
class PlannedRun:
    variant: Variant
    seed: int
    config: RunConfig


@dataclass(frozen=True)
class Plan:
    """What to compare: variants on a shared base run, and the seeds every one gets."""

    task: str
    label: str  # the comparison's folder: <logdir>/compare/<label>/
    variants: tuple[Variant, ...]
    columns: tuple[str, ...]  # the settings the variants differ in (table columns)
    seeds: tuple[int, ...]
    base: RunConfig
    points: int = DEFAULT_POINTS  # test-subset evaluations per mnist run (learning curves)

    def runs(self) -> list[PlannedRun]:
        """One validated run per (variant, seed), variants in order."""
        out = []
        for variant in self.variants:
            for seed in self.seeds:
                config = apply_settings(self.base, dict(variant.settings))
                config = replace(
                    config,
                    name=f"compare/{self.label}/{variant.name}-s{seed}",
                    train=replace(config.train, seed=seed, eval_points=self.points if self.task == "mnist" else 0),
                )
                try:
                    config.validate()
                except ConfigError as exc:
                    raise ConfigError(f"variant {variant.name}: {exc}") from None
                out.append(PlannedRun(variant, seed, config))
        return out

    @property
    def ledger_path(self) -> Path:
        return Path(self.base.logdir) / "compare" / LEDGER

    @property
    def folder(self) -> str:
        return f"compare/{self.label}"


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
                value = SETTINGS[name].parse(text)
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
) -> Plan:
    """Check everything and lay out the comparison; nothing is trained or written.

    `base` is the shared run (the task's defaults and the user's options); `explicit`
    names the settings the user gave on the command line, which a preset that sets
    them too would silently override: that is an error instead.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if points < 1:
        raise ConfigError(f"--points must be at least 1, got {points}")
    unknown = [w for w in what if w not in PRESETS[task]]
    if unknown:
        raise ConfigError(
            f"--what {unknown[0]} is not a {task} preset; {task} has {', '.join(PRESETS[task])}"
            + (" (use --task xor)" if unknown[0] in PRESETS["xor"] else "")
            + (" (use --task mnist)" if unknown[0] in PRESETS["mnist"] else "")
        )
    grid = parse_vary(vary, task)
    presets = tuple(dict.fromkeys(what)) or (() if grid else (DEFAULT_PRESET[task],))
    if "all" in presets:
        presets = ("all",)
    preset_variants = list(dict.fromkeys(v for p in presets for v in PRESETS[task][p]))
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
    varied = [name for name, _ in grid]
    if set(varied) & set(explicit):
        name = sorted(set(varied) & set(explicit))[0]
        raise ConfigError(f"--{name} and --vary {name} both set {name}; keep one")

    variants = []
    bases = [(name, tuple(VARIANTS[task][name].items())) for name in preset_variants] or [("", ())]
    for (preset_name, preset_settings), values in itertools.product(bases, itertools.product(*[v for _, v in grid])):
        chosen = tuple(zip(varied, values))
        grid_name = ",".join(f"{n}={format_value(v)}" for n, v in chosen)
        name = ",".join(filter(None, [preset_name, grid_name]))
        variants.append(Variant(name, preset_settings + chosen))
    columns = tuple(dict.fromkeys([s for v in preset_variants for s in VARIANTS[task][v]] + varied))

    label_parts = list(presets) + (["vary-" + "-".join(varied)] if varied else [])
    label = ("" if task == "mnist" else f"{task}-") + "_".join(label_parts)
    shared = _shared_part(base, columns, points if task == "mnist" else 0)
    if shared != _shared_part(_default_base(task, base), columns, DEFAULT_POINTS if task == "mnist" else 0):
        # Another base (other data, epochs, width...) is another comparison: its own folder.
        label += "-" + hashlib.sha256(shared.encode()).hexdigest()[:8]
    the_plan = Plan(
        task=task, label=label, variants=tuple(variants), columns=columns,
        seeds=tuple(range(first_seed, first_seed + seeds)), base=base, points=points,
    )  # fmt: skip
    the_plan.runs()  # validates every run's configuration now, before anything trains
    return the_plan


def base_config(task: str, *, model: dict, train: dict, data: DataSpec, logdir: str, checkpoint_dir: str) -> RunConfig:
    """The task's defaults with the given {field: value} overrides (None: keep the default)."""
    default_model, default_train = TASK_DEFAULTS[task]
    return RunConfig(
        task=task,
        name="compare",
        model=replace(default_model, **{k: v for k, v in model.items() if v is not None}),
        train=replace(default_train, **{k: v for k, v in train.items() if v is not None}),
        data=DataSpec(dataset="xor") if task == "xor" else data,
        logdir=logdir,
        checkpoint_dir=checkpoint_dir,
    )


def _default_base(task: str, base: RunConfig) -> RunConfig:
    model, train = TASK_DEFAULTS[task]
    data = DataSpec(dataset="xor") if task == "xor" else DataSpec()
    return replace(base, model=model, train=train, data=data)


def _shared_part(base: RunConfig, columns: tuple[str, ...], points: int) -> str:
    """The runs' key without the varied settings and the seed: what all variants share."""
    blank = {name: None for name in columns}
    config = apply_settings(base, blank)
    return ledger_key(replace(config, train=replace(config.train, seed=0, eval_points=points)))


# -- the ledger ---------------------------------------------------------------------------


def ledger_key(config: RunConfig) -> str:
    """What makes two runs the same experiment: the whole configuration but its name
    and folders. Derived from the config itself, so a setting added later is part of
    the key without anyone remembering to add it."""
    return json.dumps(replace(config, name="", logdir="", checkpoint_dir="").to_dict(), sort_keys=True)


def read_ledger(path: Path) -> dict[str, dict]:
    """{key: entry} of finished runs. A torn last line (a kill mid-append), lines that
    are not ledger entries and entries of an older dlcli (see KEY_FORMAT) are skipped."""
    return ledger_contents(path)[0]


def ledger_contents(path: Path) -> tuple[dict[str, dict], int]:
    """read_ledger's entries, and how many entries an older dlcli wrote (set aside)."""
    entries, older = {}, 0
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                key = entry["key"]
                float(entry["accuracy"]), float(entry["loss"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            if entry.get("key_format") == KEY_FORMAT:
                entries[key] = entry
            else:
                older += 1
    return entries, older


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


def status(the_plan: Plan, *, force: bool = False, finished: dict | None = None) -> list[tuple[PlannedRun, str]]:
    """Each planned run and what running the plan would do with it: reuse ("in the
    ledger"), "resume" or "train". `finished`: the ledger, when the caller has read it."""
    if finished is None:
        finished = {} if force else read_ledger(the_plan.ledger_path)
    out = []
    for run in the_plan.runs():
        if ledger_key(run.config) in finished:
            out.append((run, "in the ledger"))
        elif not force and _resumable(run.config):
            out.append((run, "resume"))
        else:
            out.append((run, "train"))
    return out


def _resumable(config: RunConfig) -> bool:
    """A checkpointed folder of exactly this run (never another config's folder), made
    by this version of dlcli (an older one drew other initial weights: see KEY_FORMAT)."""
    folder = Path(config.checkpoint_dir) / config.name
    try:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        same = RunConfig.from_dict(record["config"]) == config and record["versions"]["dlcli"] == __version__
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return False
    return same and (folder / "checkpoint").is_file()


# -- running ------------------------------------------------------------------------------


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
        # Per-layer diagnostics at the first and last logged step (core.diagnostics).
        "diagnostics": result.diagnostics,
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


# -- statistics ---------------------------------------------------------------------------

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


# -- learning curves ------------------------------------------------------------------------


@dataclass
class Curves:
    """{variant: {seed: [(step, value), ...]}} of one metric, read from the event files."""

    metric: str
    by_variant: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)


def learning_curves(the_plan: Plan) -> tuple[Curves, Curves]:
    """Accuracy and loss against the step for every run of the plan, from its own
    TensorBoard event files: the test-subset points of mnist runs (with the final
    test-set value at each epoch end), the training series of XOR (its test set)."""
    from dlcli.core.summaries import read_scalars

    accuracy, loss = Curves("accuracy"), Curves("loss")
    for planned in the_plan.runs():
        logdir = Path(planned.config.logdir) / planned.config.name
        if the_plan.task == "mnist":
            series = read_scalars(logdir, "test")
            acc, los = series.get("subset/accuracy", []), series.get("subset/loss", [])
        else:
            series = read_scalars(logdir, "train")
            acc, los = series.get("accuracy", []), series.get("loss", [])
        accuracy.by_variant.setdefault(planned.variant.name, {})[planned.seed] = acc
        loss.by_variant.setdefault(planned.variant.name, {})[planned.seed] = los
    return accuracy, loss
