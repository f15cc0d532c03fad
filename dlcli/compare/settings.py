"""The run settings a comparison can vary (`--vary NAME=V1,V2`), their parsers, and
the task defaults a comparison starts from."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from dlcli.config import (
    ACTIVATIONS,
    INITIALIZERS,
    OPTIMIZERS,
    ModelSpec,
    RunConfig,
    TrainSpec,
    check_name,
    keras_knows_activation,
    keras_knows_initializer,
    keras_knows_optimizer,
)
from dlcli.errors import ConfigError

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
