"""The comparison ledger, `<logdir>/compare/results.jsonl`: one line per finished run,
keyed by the run's whole configuration, appended by the driver alone."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dlcli import __version__
from dlcli.config import RunConfig
from dlcli.errors import ConfigError

if TYPE_CHECKING:  # plan.py keys its comparison folders with ledger_key
    from dlcli.compare.plan import Plan, PlannedRun

# Ledger lines: format 3 (dlcli 0.2) keys are the whole run configuration. Lines of
# formats 1 and 2 (dlcli 0.1) came from models whose layers shared one initializer seed
# taken from Python's global random state; their numbers are not this version's, so
# they are set aside (counted, never reused) and those runs train again.
KEY_FORMAT = 3


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
