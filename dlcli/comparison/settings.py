"""The run settings a comparison can vary (`--vary NAME=V1,V2`) and the task defaults a
comparison starts from: a view of the settings table (dlcli.settings), which holds
their parsers, ranges and defaults."""

from __future__ import annotations

from dataclasses import replace

from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec
from dlcli.settings import BY_NAME, Setting, defaults, format_value  # noqa: F401
from dlcli.settings import VARIED as SETTINGS  # noqa: F401 - {name: Setting} of the varied settings


def setting_value(config: RunConfig, name: str):
    """The value of setting `name` in `config`; apply_settings' inverse."""
    s = BY_NAME[name]
    return getattr(getattr(config, s.part), s.field)


def apply_settings(config: RunConfig, settings: dict) -> RunConfig:
    """`config` with each {setting name: value} put in its place."""
    parts = {}
    for name, value in settings.items():
        s = BY_NAME[name]
        parts.setdefault(s.part, {})[s.field] = value
    return replace(config, **{part: replace(getattr(config, part), **fields) for part, fields in parts.items()})


# What a comparison's runs start from before the user's own options: `dlcli xor`'s and
# `dlcli mnist`'s defaults, except where the settings table says compare's runs differ.
TASK_DEFAULTS = {
    task: (ModelSpec(**defaults(task, "model", compare=True)), TrainSpec(**defaults(task, "train", compare=True)))
    for task in ("xor", "mnist")
}
TASK_DATA = {task: DataSpec(**defaults(task, "data", compare=True)) for task in ("xor", "mnist")}
