"""Every run setting, once: its option, type, allowed values, defaults and help.

`TABLE` is the one definition the rest of dlcli reads. The `dlcli xor` and `dlcli mnist`
options and compare's shared options are generated from it (dlcli.cli.options), so are
`--vary` values (dlcli.comparison), `RunConfig`'s dataclass defaults, its validation and
run.json's type checks (dlcli.config). A value is therefore accepted or refused the same
way everywhere, with the same message: `--dropout must be in [0, 1), got 1.0` reads the
same after `dlcli mnist --dropout 1`, `dlcli compare --vary dropout=1` and a hand-edited
run.json.

Standard library only (and below dlcli.config): the CLI checks every value before
TensorFlow is imported. The one exception is a name outside the lists in dlcli.names,
which only Keras can answer (see `keras_knows`).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

from dlcli.errors import ConfigError
from dlcli.wording import did_you_mean
from dlcli.names import ACTIVATIONS, DATASETS, INITIALIZERS, OPTIMIZERS, TASKS

# -- types: how a value is written in an option or --vary, and in run.json -------------


def _yes_no(text: str) -> bool:
    words = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}
    return words[text.lower()]  # KeyError: not a yes or no


@dataclass(frozen=True)
class Kind:
    """A setting's type: what it reads from text and what run.json may hold."""

    name: str  # integer | number | flag | text | path
    noun: str  # "an integer": `--layers must be an integer, got '2.5'`
    json_noun: str  # the same for run.json, where a flag is written true/false
    holds: Callable[[object], bool]  # a value of this type (bool is an int in Python, never here)
    from_text: Callable[[str], object]  # raises ValueError or KeyError on bad text


INTEGER = Kind("integer", "an integer", "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool), int)
NUMBER = Kind("number", "a number", "a number",
              lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), float)  # fmt: skip
FLAG = Kind("flag", "yes or no", "true or false", lambda v: isinstance(v, bool), _yes_no)
TEXT = Kind("text", "a string", "a string", lambda v: isinstance(v, str), str)
PATH = Kind("path", "a path", "a string", lambda v: isinstance(v, str), str)


# -- rules: the values a setting allows, and the sentence that refuses the others ------


@dataclass(frozen=True)
class Integers:
    """Integers from `low` (per task where tasks differ) up to `high` (None: no limit)."""

    low: int | dict
    high: int | None = None

    def bounds(self, task: str | None) -> tuple[int, int | None]:
        """The bounds for `task`; for None (a task not known yet), the loosest."""
        if not isinstance(self.low, dict):
            return self.low, self.high
        return (self.low[task] if task is not None else min(self.low.values())), self.high

    def refusal(self, option: str, value, task: str | None) -> str | None:
        if task is None and isinstance(self.low, dict):
            return None  # the task decides: checked once it is known (compare's base_config)
        low, high = self.bounds(task)
        if value >= low and (high is None or value <= high):
            return None
        wanted = f">= {low}" if high is None else f"in [{low}, {high}]"
        return f"{option} must be an integer {wanted}, got {value!r}"


@dataclass(frozen=True)
class Numbers:
    """Finite numbers between `low` and `high`, each end open or closed."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def refusal(self, option: str, value, task: str | None) -> str | None:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        if math.isfinite(value) and above and below:
            return None
        if (self.low, self.low_open, self.high) == (0, True, math.inf):
            return f"{option} must be a positive number, got {value!r}"
        bounds = f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        return f"{option} must be in {bounds}, got {value!r}"


@dataclass(frozen=True)
class KnownName:
    """A name in dlcli.names' list, or one Keras knows (asked only for unlisted names)."""

    kind: str  # activation | initializer | optimizer
    known: tuple[str, ...]

    def refusal(self, option: str, value, task: str | None) -> str | None:
        if value in self.known or keras_knows(self.kind, value):
            return None
        return f"unknown {self.kind} {value!r}; choose one of: {', '.join(self.known)}.{did_you_mean(value, self.known)}"


@dataclass(frozen=True)
class OneOf:
    """One of a few words, per task (a task not listed takes any)."""

    choices: dict[str, tuple[str, ...]]

    def refusal(self, option: str, value, task: str | None) -> str | None:
        allowed = self.choices.get(task) if task else tuple(dict.fromkeys(sum(self.choices.values(), ())))
        if not allowed or value in allowed:
            return None
        return f"unknown {option} {value!r}; expected one of {', '.join(allowed)}"


@dataclass(frozen=True)
class AnyValue:
    """Every value of the setting's type."""

    def refusal(self, option: str, value, task: str | None) -> str | None:
        return None


def keras_knows(kind: str, name: str) -> bool:
    """Whether Keras itself knows a name that is not in dlcli.names' lists.

    The only way to know is to ask Keras, so this imports TensorFlow (seconds), and the
    look-ups stay in dlcli.core.models with the rest of the Keras code. It is the one
    place the settings layer reaches up, lazily and for unlisted names only; core.models
    imports nothing of this layer back (only dlcli.names), so there is no cycle, and a
    config with listed names is validated without dlcli.core ever being imported.
    """
    from dlcli.core import models

    exists = {"activation": models.activation_exists, "initializer": models.initializer_exists,
              "optimizer": models.optimizer_exists}  # fmt: skip
    return exists[kind](name)


# -- the settings --------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One run setting: its option, its place in RunConfig, its type, range and defaults."""

    name: str  # as on the command line: batch-size (the option is --batch-size)
    part: str  # where RunConfig keeps it: model | train | data
    field: str  # the dataclass field: batch_size
    kind: Kind
    rule: object  # Integers | Numbers | KnownName | OneOf | AnyValue
    defaults: dict  # {task: value}: what `dlcli xor` / `dlcli mnist` start from
    help: str
    tasks: tuple[str, ...] = TASKS  # the tasks whose runs have it as a choice
    commands: tuple[str, ...] | None = None  # the commands offering --NAME (None: tasks)
    optional: bool = False  # None is a value too (limit: no limit), and the default
    negatable: bool = False  # a flag pair, --NAME/--no-NAME
    vary: bool = False  # `compare --vary` varies it, and compare shares it as an option
    compare: dict = field(default_factory=dict)  # compare's runs' defaults where they differ...
    why: str = ""  # ...and why they do
    command_help: dict = field(default_factory=dict)  # {task: help}: a command's own wording
    shown: dict = field(default_factory=dict)  # how a value reads in --help: {0: "all"}

    @property
    def option(self) -> str:
        return f"--{self.name}"

    @property
    def param(self) -> str:
        """The Python name Click gives the option's value."""
        return self.name.replace("-", "_")

    @property
    def on_commands(self) -> tuple[str, ...]:
        return self.tasks if self.commands is None else self.commands

    def default(self, task: str, *, compare: bool = False):
        if compare and task in self.compare:
            return self.compare[task]
        return self.defaults[task]

    def refusal(self, value, task: str | None) -> str | None:
        """Why `value` cannot be this setting's value for `task`, or None. With task None
        (compare's options, read before the task is known) a range that depends on the
        task passes here and is checked once the task is known."""
        if value is None and self.optional:
            return None
        if not self.kind.holds(value):
            return f"{self.option} must be {self.kind.noun}, got {value!r}"
        return self.rule.refusal(self.option, value, task)

    def check(self, value, task: str | None):
        """`value`, or a ConfigError saying why not."""
        problem = self.refusal(value, task)
        if problem:
            raise ConfigError(problem)
        return value

    def parse(self, text, task: str | None):
        """The value of an option or a --vary item (text), checked for `task`."""
        if isinstance(text, str) and self.kind is not TEXT and self.kind is not PATH:
            try:
                value = self.kind.from_text(text)
            except (ValueError, KeyError):
                raise ConfigError(f"{self.option} must be {self.kind.noun}, got {text!r}") from None
        else:
            value = text
        return self.check(value, task)


_FOLDER_CACHE = "the Keras cache, ~/.keras/datasets"

TABLE = (
    # -- the network ----------------------------------------------------------------
    Setting("layers", "model", "layers", INTEGER, Integers(1), {"xor": 4, "mnist": 3},
            "Dense (weight) layers, the output included.", vary=True,
            command_help={"xor": "Dense (weight) layers, the output included: 1 = one logistic unit (fails), "
                                 "2 = Lab 09-2, 4 = Lab 09-3's wide & deep net.",
                          "mnist": "Dense (weight) layers, the output included: 3 = two hidden layers and the "
                                   "output."}),
    Setting("units", "model", "units", INTEGER, Integers(1), {"xor": 10, "mnist": 256},
            "Units in every hidden layer.", vary=True),
    Setting("activation", "model", "activation", TEXT, KnownName("activation", ACTIVATIONS),
            {"xor": "sigmoid", "mnist": "relu"},
            "Hidden activation: sigmoid, tanh, relu, elu, selu, ... (any keras.activations name).", vary=True),
    Setting("init", "model", "init", TEXT, KnownName("initializer", INITIALIZERS), {"xor": "normal", "mnist": "xavier"},
            "Weight init: normal (random normal), xavier (glorot_uniform), he (he_uniform), standard "
            "(U[-1/sqrt(fan-in), 1/sqrt(fan-in)], Glorot & Bengio's name), or any Keras initializer name "
            "(glorot_normal, he_normal, lecun_normal, zeros, ...).", vary=True),
    Setting("dropout", "model", "dropout", NUMBER, Numbers(0, 1, high_open=True), {"mnist": 0.0},
            "Dropout rate after each hidden activation (0: none).", tasks=("mnist",), vary=True),
    Setting("batchnorm", "model", "batchnorm", FLAG, AnyValue(), {"mnist": False},
            "Batch norm between each hidden dense layer and its activation.", tasks=("mnist",), negatable=True,
            vary=True),
    Setting("sync-batchnorm", "model", "sync_batchnorm", FLAG, AnyValue(), {"mnist": False},
            "With --batchnorm and a strategy: batch statistics over all replicas.", tasks=("mnist",)),
    # -- the data ---------------------------------------------------------------------
    # XOR's four points need no batches: 0 means the whole set, and is XOR's default.
    Setting("batch-size", "train", "batch_size", INTEGER, Integers({"xor": 0, "mnist": 1}), {"xor": 0, "mnist": 128},
            "Examples per step; 0: the whole set at once (xor only).", commands=("mnist",), vary=True,
            command_help={"mnist": "Examples per step."}, shown={0: "all"}),
    # XOR runs' data is always the four points (dataset "xor"), never a choice.
    Setting("dataset", "data", "dataset", TEXT, OneOf({"mnist": DATASETS}), {"xor": "xor", "mnist": "mnist"},
            "Which data set.", tasks=("mnist",)),
    Setting("data", "data", "path", PATH, AnyValue(), {"mnist": None},
            "An .npz (x_train, y_train, x_test, y_test) or a folder of the four IDX files (.gz or raw).",
            tasks=("mnist",), optional=True, shown={None: _FOLDER_CACHE}),
    Setting("limit", "data", "limit", INTEGER, Integers(1), {"mnist": None},
            "Train on the first N training examples only.", tasks=("mnist",), optional=True),
    # -- the training -----------------------------------------------------------------
    Setting("optimizer", "train", "optimizer", TEXT, KnownName("optimizer", OPTIMIZERS),
            {"xor": "sgd", "mnist": "adam"},
            "Optimizer: sgd, adam, rmsprop, adagrad, ... (any keras.optimizers name).", vary=True),
    Setting("lr", "train", "lr", NUMBER, Numbers(0, math.inf, low_open=True, high_open=True),
            {"xor": 0.01, "mnist": 0.001}, "Learning rate.", vary=True),
    Setting("epochs", "train", "epochs", INTEGER, Integers(1), {"xor": 20000, "mnist": 1},
            "Epochs to train.", vary=True),
    # NumPy's and TensorFlow's global seeds take 32 bits; outside them a run cannot start.
    Setting("seed", "train", "seed", INTEGER, Integers(0, 2**32 - 1), {"xor": 0, "mnist": 0},
            "Seed for weights, data order and dropout: same seed, same numbers."),
    Setting("log-every", "train", "log_every", INTEGER, Integers(1), {"xor": 1000, "mnist": 100},
            "Steps between TensorBoard points."),
    Setting("save-every", "train", "save_every", INTEGER, Integers(0), {"xor": 0, "mnist": 200},
            "Steps between checkpoints (0: only at the start and the end).",
            compare={"mnist": 0},
            why="compare's runs are the unit it retries: it keeps finished runs in its ledger and "
                "resumes an interrupted one, and Ctrl-C checkpoints the step it stopped at anyway, so "
                "periodic checkpoints only save work after a hard kill, while every run of a comparison "
                "would pay for them. And the ledger keys a run by its whole config: a new period here "
                "would make every comparison already in a ledger train again."),
    Setting("keep", "train", "keep", INTEGER, Integers(1), {"xor": 3, "mnist": 3}, "Checkpoints to keep."),
    # compare sets it per run (its own --points); no command offers it.
    Setting("points", "train", "eval_points", INTEGER, Integers(0), {"xor": 0, "mnist": 0},
            "Test-subset evaluations spread over the run (learning curves); 0: none.", commands=()),
)  # fmt: skip

BY_NAME = {s.name: s for s in TABLE}
VARIED = {s.name: s for s in TABLE if s.vary}  # what --vary and compare's shared options offer


def fixed_on_resume(name: str) -> str | None:
    """Why the setting `name` (an option, --layers, or a keyword, layers) cannot be
    given to resume, or None: a run's network comes from its run.json."""
    setting = BY_NAME.get(name.lstrip("-").replace("_", "-"))
    if setting is None or setting.part != "model":
        return None
    return f"{setting.option} cannot change on resume: the architecture comes from the run's run.json"


def for_command(task: str) -> list[Setting]:
    """The settings `dlcli TASK` offers as options, in the table's order."""
    return [s for s in TABLE if task in s.on_commands]


def defaults(task: str, part: str, *, compare: bool = False) -> dict:
    """{field: default} of one RunConfig part for `task`'s runs (compare's, with compare=True)."""
    return {s.field: s.default(task, compare=compare) for s in TABLE if s.part == part and task in s.defaults}


def format_value(value) -> str:
    """A setting's value as it appears in variant names, tables and folders."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def shown(setting: Setting, value) -> str:
    """A default as --help shows it: 'all' for XOR's batch size 0, else format_value."""
    if isinstance(value, bool):  # False == 0: never 'all'
        return format_value(value)
    return setting.shown.get(value, format_value(value))


# -- run names -------------------------------------------------------------------------

# Besides letters and digits of any script (and their combining marks): '.', '_', '-',
# and '=' and ',', because compare names its runs by their settings (lr=0.01,units=8-s0).
_NAME_PUNCTUATION = "._-=,"
# A name is a folder name: file systems allow 255 bytes, and an automatic name may gain
# a '-2' suffix; 200 bytes (UTF-8) leaves that room and is still far beyond any real name.
MAX_NAME_BYTES = 200


def _name_part_ok(part: str) -> bool:
    if not part or part in (".", "..") or not _letter_or_digit(part[0]):
        return False  # also refuses a leading '-' (read as an option) or '.' (hidden)
    return all(_letter_or_digit(ch) or ch in _NAME_PUNCTUATION or unicodedata.category(ch)[0] == "M" for ch in part)


def _letter_or_digit(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def validate_run_name(name: str, *, nested: bool = False) -> str:
    """A run name is a folder name: letters and digits of any script, '.', '_', '-', '='
    and ',', starting with a letter or digit; never a path separator, '..' or a control
    character. `nested` allows '/'-separated names such as compare's `compare/init/he-s0`.
    """
    parts = (name.split("/") if nested else [name]) if isinstance(name, str) else [""]
    if not all(_name_part_ok(p) for p in parts):
        raise ConfigError(
            f"invalid run name {name!r}: use letters, digits, '.', '_', '-', '=' and ',', starting with a "
            "letter or digit (it becomes a folder name)"
        )
    longest = max(parts, key=lambda p: len(p.encode("utf-8")))
    if len(longest.encode("utf-8")) > MAX_NAME_BYTES:
        raise ConfigError(
            f"run name {longest[:24]}... is {len(longest.encode('utf-8'))} bytes long; a run name becomes a "
            f"folder name, at most {MAX_NAME_BYTES} bytes: choose a shorter one"
        )
    return name
