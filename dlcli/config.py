"""Every hyperparameter of a run, validated, and its JSON round-trip.

Standard library only: the CLI builds and validates a `RunConfig` without importing
TensorFlow, so bad input is refused instantly and before anything is written.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from dlcli.errors import ConfigError

# Names accepted without importing Keras. Anything else is checked against Keras
# itself (dlcli.core.models), so every name Keras knows works.
ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "mish", "relu", "relu6", "selu",
    "sigmoid", "silu", "softplus", "softsign", "squareplus", "swish", "tanh",
)  # fmt: skip
# The lectures' names first (Lab 10-2), then Keras' own.
INIT_ALIASES = {
    "normal": "random_normal",
    "xavier": "glorot_uniform",
    "he": "he_uniform",
}
INITIALIZERS = tuple(INIT_ALIASES) + (
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform",
    "truncated_normal", "variance_scaling", "zeros",
)  # fmt: skip
OPTIMIZERS = (
    "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl", "lion",
    "nadam", "rmsprop", "sgd",
)  # fmt: skip
DATASETS = ("mnist", "fashion_mnist")
TASKS = ("xor", "mnist")

# The standard deviation `normal` means. Lab 09's XOR net draws its weights with
# tf.random.normal (stddev 1.0); a 4-layer sigmoid net started at Keras' 0.05 never
# leaves loss 0.6931 in 20000 SGD steps. Lab 10's MNIST nets use
# tf.keras.initializers.RandomNormal() (stddev 0.05), which the lecture's numbers need.
NORMAL_STDDEV = {"xor": 1.0, "mnist": 0.05}

# Test examples behind the learning-curve points of a run with eval_points (the first
# ones of the test set: the same for every run, so curves compare).
TEST_SUBSET = 1000

# '=' and ',' too: compare names its runs by their settings (activation=tanh,lr=0.01-s0).
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """The network: `layers` dense (weight) layers, the output layer included."""

    layers: int = 3  # W1..WN of the lectures; 1 = logistic regression / softmax
    units: int = 256  # width of every hidden layer
    activation: str = "relu"  # any name in keras.activations
    init: str = "xavier"  # normal | xavier | he | any Keras initializer name
    dropout: float = 0.0  # rate after each hidden activation (0 = none)
    batchnorm: bool = False  # dense -> batch norm -> activation (Lab 10-4)
    sync_batchnorm: bool = False  # batch statistics over all replicas (tf.distribute)

    @property
    def hidden_layers(self) -> int:
        return self.layers - 1


@dataclass(frozen=True)
class TrainSpec:
    """How the network is trained."""

    optimizer: str = "adam"
    lr: float = 0.001
    epochs: int = 1  # the target: resume trains on until it is reached
    batch_size: int = 128  # 0 = the whole training set in one batch (XOR)
    seed: int = 0  # decides initial weights, data order and dropout masks
    log_every: int = 100  # steps between TensorBoard points
    save_every: int = 0  # steps between checkpoints; 0 = only at the start and end
    keep: int = 3  # checkpoints kept
    eval_points: int = 0  # test-subset evaluations spread over the run (learning curves); 0: none


@dataclass(frozen=True)
class DataSpec:
    """Where the examples come from."""

    dataset: str = "mnist"  # xor | mnist | fashion_mnist
    path: str | None = None  # an .npz or an IDX folder instead of the Keras cache
    limit: int | None = None  # train on the first N training examples only


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
        """Raise ConfigError naming the first bad value; return self when all is well."""
        validate_run_name(self.name, nested=True)
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        m, t, d = self.model, self.train, self.data
        _at_least("--layers", m.layers, 1)
        _at_least("--units", m.units, 1)
        if not 0.0 <= m.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {m.dropout}")
        if not (t.lr > 0 and t.lr < float("inf")):
            raise ConfigError(f"--lr must be a positive number, got {t.lr}")
        _at_least("--epochs", t.epochs, 1)
        _at_least("--batch-size", t.batch_size, 0 if self.task == "xor" else 1)
        _at_least("--log-every", t.log_every, 1)
        _at_least("--save-every", t.save_every, 0)
        _at_least("--keep", t.keep, 1)
        _at_least("--points", t.eval_points, 0)
        if d.limit is not None:
            _at_least("--limit", d.limit, 1)
        if self.task == "mnist" and d.dataset not in DATASETS:
            raise ConfigError(
                f"unknown --dataset {d.dataset!r}; expected one of {', '.join(DATASETS)}"
            )
        if d.limit is not None and t.batch_size > d.limit:
            raise ConfigError(
                f"--batch-size {t.batch_size} is larger than --limit {d.limit}; "
                "lower --batch-size or raise --limit"
            )
        check_name("activation", m.activation, ACTIVATIONS, keras_knows_activation)
        check_name("initializer", m.init, INITIALIZERS, keras_knows_initializer)
        check_name("optimizer", t.optimizer, OPTIMIZERS, keras_knows_optimizer)
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
        values = _typed_fields(cls, data, "config", skip=tuple(parts))
        for key, spec in parts.items():
            if key not in data:
                raise ConfigError(f"config.{key} is missing")
            values[key] = spec(**_typed_fields(spec, data[key], f"config.{key}"))
        return cls(**values)


# What a field's annotation accepts in JSON. bool is an int in Python, never here.
_JSON_TYPES = {
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
}


def _typed_fields(cls, data, where: str, skip: tuple = ()) -> dict:
    """`data`'s values for the fields of dataclass `cls`, each checked against its type."""
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
        if f.name not in skip:
            kind = str(f.type).replace(" | None", "")
            if not (value is None and "None" in str(f.type)):
                description, accepts = _JSON_TYPES[kind]
                if not accepts(value):
                    raise ConfigError(f"{where}.{f.name} must be {description}, got {value!r}")
                if kind == "float":
                    value = float(value)  # JSON writes 1.0 as 1; Keras wants a float learning rate
        values[f.name] = value
    return values


def _at_least(option: str, value, minimum) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{option} must be an integer >= {minimum}, got {value!r}")


def validate_run_name(name: str, *, nested: bool = False) -> str:
    """A run name is a folder name: letters, digits, '.', '_', '-', '=' and ',', never '..'.

    `nested` allows '/'-separated names such as compare's `compare/init/he-s0`.
    """
    parts = name.split("/") if nested else [name]
    if not name or not all(_NAME_RE.match(p) and p not in (".", "..") for p in parts):
        raise ConfigError(
            f"invalid run name {name!r}: use letters, digits, '.', '_', '-', '=' and ',' "
            "(it becomes a folder name)"
        )
    return name


def check_name(kind: str, name: str, known: tuple, keras_knows) -> str:
    """Accept a known name at once; ask Keras (slow import) only about the rest."""
    if name in known or keras_knows(name):
        return name
    raise ConfigError(f"unknown {kind} {name!r}; choose one of: {', '.join(known)}")


def keras_knows_activation(name: str) -> bool:
    from dlcli.core import models

    return models.activation_exists(name)


def keras_knows_initializer(name: str) -> bool:
    from dlcli.core import models

    return models.initializer_exists(name)


def keras_knows_optimizer(name: str) -> bool:
    from dlcli.core import models

    return models.optimizer_exists(name)
