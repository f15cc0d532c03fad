"""Every hyperparameter of a run, validated, and its JSON round-trip.

Standard library only: the CLI builds and validates a `RunConfig` without importing
TensorFlow, so bad input is refused instantly and before anything is written. What each
setting allows, its type and its default come from the settings table (dlcli.settings);
this module never imports dlcli.core.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from dlcli import settings
from dlcli.errors import ConfigError

# The names a run may use, re-exported for the modules that read them from here.
from dlcli.names import (  # noqa: F401
    ACTIVATIONS,
    DATASETS,
    INIT_ALIASES,
    INITIALIZERS,
    OPTIMIZERS,
    TASKS,
)
from dlcli.settings import validate_run_name  # noqa: F401

# The standard deviation `normal` means. Lab 09's XOR net draws its weights with
# tf.random.normal (stddev 1.0); a 4-layer sigmoid net started at Keras' 0.05 never
# leaves loss 0.6931 in 20000 SGD steps. Lab 10's MNIST nets use
# tf.keras.initializers.RandomNormal() (stddev 0.05), which the lecture's numbers need.
NORMAL_STDDEV = {"xor": 1.0, "mnist": 0.05}

# Test examples behind the learning-curve points of a run with eval_points (the first
# ones of the test set: the same for every run, so curves compare).
TEST_SUBSET = 1000

# The dataclasses' defaults: an MNIST run as `dlcli compare` starts one (the settings
# table says where that differs from `dlcli mnist`, and why).
_MODEL = settings.defaults("mnist", "model", compare=True)
_TRAIN = settings.defaults("mnist", "train", compare=True)
_DATA = settings.defaults("mnist", "data", compare=True)


@dataclass(frozen=True)
class ModelSpec:
    """The network: `layers` dense (weight) layers, the output layer included."""

    layers: int = _MODEL["layers"]  # W1..WN of the lectures; 1 = logistic regression / softmax
    units: int = _MODEL["units"]  # width of every hidden layer
    activation: str = _MODEL["activation"]  # any name in keras.activations
    init: str = _MODEL["init"]  # normal | xavier | he | any Keras initializer name
    dropout: float = _MODEL["dropout"]  # rate after each hidden activation (0 = none)
    batchnorm: bool = _MODEL["batchnorm"]  # dense -> batch norm -> activation (Lab 10-4)
    sync_batchnorm: bool = _MODEL["sync_batchnorm"]  # batch statistics over all replicas (tf.distribute)

    @property
    def hidden_layers(self) -> int:
        return self.layers - 1


@dataclass(frozen=True)
class TrainSpec:
    """How the network is trained."""

    optimizer: str = _TRAIN["optimizer"]
    lr: float = _TRAIN["lr"]
    epochs: int = _TRAIN["epochs"]  # the target: resume trains on until it is reached
    batch_size: int = _TRAIN["batch_size"]  # 0 = the whole training set in one batch (XOR)
    seed: int = _TRAIN["seed"]  # decides initial weights, data order and dropout masks
    log_every: int = _TRAIN["log_every"]  # steps between TensorBoard points
    save_every: int = _TRAIN["save_every"]  # steps between checkpoints; 0 = only at the start and end
    keep: int = _TRAIN["keep"]  # checkpoints kept
    eval_points: int = _TRAIN["eval_points"]  # test-subset evaluations spread over the run (learning curves); 0: none


@dataclass(frozen=True)
class DataSpec:
    """Where the examples come from."""

    dataset: str = _DATA["dataset"]  # xor | mnist | fashion_mnist
    path: str | None = _DATA["path"]  # an .npz or an IDX folder instead of the Keras cache
    limit: int | None = _DATA["limit"]  # train on the first N training examples only


@dataclass(frozen=True)
class RunConfig:
    """One training run: what `run.json` records and `resume` rebuilds."""

    task: str
    name: str
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    data: DataSpec = field(default_factory=DataSpec)
    logdir: str = "logs"  # the base folder; the run writes to <logdir>/<name>
    checkpoint_dir: str = "checkpoints"  # the base folder; <checkpoint_dir>/<name>

    def validate(self) -> "RunConfig":
        """Raise ConfigError naming the first bad value; return self when all is well.

        Every setting is checked by the settings table, with the message the CLI and
        `--vary` give for the same value; names only Keras can answer come last, so a
        plain mistake elsewhere is reported without importing TensorFlow.
        """
        validate_run_name(self.name, nested=True)
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        for s in sorted(settings.TABLE, key=lambda s: isinstance(s.rule, settings.KnownName)):
            s.check(getattr(getattr(self, s.part), s.field), self.task)
        t, d = self.train, self.data
        if d.limit is not None and t.batch_size > d.limit:
            raise ConfigError(
                f"--batch-size {t.batch_size} is larger than --limit {d.limit}; "
                "lower --batch-size or raise --limit"
            )
        return self

    @property
    def normal_stddev(self) -> float:
        return NORMAL_STDDEV[self.task]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Rebuild a config from `to_dict()` output (a run.json, by hand or not).

        Unknown or missing keys and values of the wrong type are ConfigErrors naming the
        field (`config.train.lr must be a number, got 'abc'`), never a crash later on.
        """
        parts = {"model": ModelSpec, "train": TrainSpec, "data": DataSpec}
        top = {f.name: (settings.TEXT, False) for f in dataclasses.fields(cls) if f.name not in parts}
        values = _typed_fields(cls, data, "config", top)
        for key, spec in parts.items():
            if key not in data:
                raise ConfigError(f"config.{key} is missing")
            kinds = {s.field: (s.kind, s.optional) for s in settings.TABLE if s.part == key}
            values[key] = spec(**_typed_fields(spec, data[key], f"config.{key}", kinds))
        return cls(**values)


def task_config(
    task: str, values: dict | None = None, *, name: str, logdir: str = "logs", checkpoint_dir: str = "checkpoints",
    compare: bool = False,
) -> RunConfig:  # fmt: skip
    """A `task` run: its defaults (`dlcli TASK`'s; compare's runs' with `compare`) with the
    given {setting name: value} in place, None keeping a default. Not validated here."""
    parts = {part: settings.defaults(task, part, compare=compare) for part in ("model", "train", "data")}
    for key, value in (values or {}).items():
        if value is not None:
            s = settings.BY_NAME[key]
            parts[s.part][s.field] = value
    return RunConfig(
        task=task, name=name, model=ModelSpec(**parts["model"]), train=TrainSpec(**parts["train"]),
        data=DataSpec(**parts["data"]), logdir=logdir, checkpoint_dir=checkpoint_dir,
    )  # fmt: skip


def _typed_fields(cls, data, where: str, kinds: dict) -> dict:
    """`data`'s values for the fields of dataclass `cls`, each checked against its type
    in `kinds` ({field: (settings.Kind, None allowed)}; fields not in it pass as they are)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be an object, got {data!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where} has an unknown field {unknown[0]!r}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}.{f.name} is missing")
            continue
        value = data[f.name]
        if f.name in kinds and not (value is None and kinds[f.name][1]):
            kind = kinds[f.name][0]
            if not kind.holds(value):
                raise ConfigError(f"{where}.{f.name} must be {kind.json_noun}, got {value!r}")
            if kind is settings.NUMBER:
                value = float(value)  # JSON writes 1.0 as 1; Keras wants a float learning rate
        values[f.name] = value
    return values
