"""The comparison ledger, `<logdir>/compare/results.jsonl`: one line per finished run,
keyed by its configuration and the numerics format, appended by the driving processes alone.

Keys that survive upgrades (format 4): a key names the settings that differ from their
value in `KEY_BASELINE` (pinned here, never read from today's defaults) and `NUMERICS`,
the version of what training computes. A setting added later is added to the baseline
at its default, so every existing key stays the same; a change in what a run computes
bumps `NUMERICS` (tests/test_ledger_keys.py pins a tiny run's fingerprint and fails until
it is bumped), which changes every key on purpose: old results are then never reused for
runs the new code would not reproduce. Lines of dlcli 0.3.1 (format 3, the whole
configuration) are re-keyed as they are read, with the numerics they were made with.

A command reads the ledger once (`Ledger.read`); after that it only reads the lines
other processes appended since (`Ledger.refresh`), so two `dlcli compare` processes
on the same folders see each other's finished runs without reading everything again.
"""

from __future__ import annotations

import enum
import fcntl
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dlcli.config import RunConfig
from dlcli.errors import ConfigError
from dlcli.core.runs import RunFolder  # standard library and config only

if TYPE_CHECKING:  # plan.py keys its comparison folders with ledger_key
    from dlcli.comparison.plan import Plan, PlannedRun

# Ledger lines: format 4 (dlcli 0.3.2) keys are the settings off the baseline and the
# numerics format; format 3 (dlcli 0.2 to 0.3.1) keys are the whole run configuration,
# re-keyed on reading. Lines of formats 1 and 2 (dlcli 0.1) came from models whose layers
# shared one initializer seed taken from Python's global random state; their numbers are
# not this version's, so they are set aside (counted, never reused) and those runs train again.
KEY_FORMAT = 4
LEGACY_FORMAT = 3

# What training computes, as a number in every key. Bump it when the fingerprint in
# tests/test_ledger_keys.py changes (initialization, data order, the step, the loss, the
# diagnostics): results of older numerics are then set aside, not reused.
NUMERICS = 1
LEGACY_NUMERICS = 1  # the numerics of format-3 lines (dlcli 0.2 to 0.3.1): today's

# Each setting's value at which a key leaves it out: dlcli 0.3.1's defaults, pinned (a
# default that changes later must not change what an old key means). A setting added
# later goes here with the value that reproduces the runs made before it existed.
KEY_BASELINE = {
    "model": {"activation": "relu", "batchnorm": False, "dropout": 0.0, "init": "xavier", "layers": 3,
              "sync_batchnorm": False, "units": 256},
    "train": {"batch_size": 128, "epochs": 1, "eval_points": 0, "keep": 3, "log_every": 100, "lr": 0.001,
              "optimizer": "adam", "save_every": 0, "seed": 0},
    "data": {"dataset": "mnist", "limit": None, "path": None},
}  # fmt: skip
LEGACY_FIELDS = {part: tuple(fields) for part, fields in KEY_BASELINE.items()}  # the fields dlcli 0.3.1 keyed

log = logging.getLogger("dlcli")


class RunStatus(enum.Enum):
    """What running a comparison does with one of its planned runs."""

    IN_LEDGER = "in the ledger"  # finished: its entry is reused
    RESUME = "resume"  # a checkpointed folder of exactly this run: continued
    TRAIN = "train"  # trained from its first step

    @property
    def done(self) -> str:
        """The past tense, for progress lines: reused, resumed, trained."""
        return {"in the ledger": "reused", "resume": "resumed", "train": "trained"}[self.value]


def ledger_key(config: RunConfig, *, numerics: int = NUMERICS) -> str:
    """What makes two runs the same experiment: the task, every setting whose value is
    not its baseline's (a setting missing from KEY_BASELINE always counts), and the
    numerics format; never the run's name and folders."""
    whole = config.to_dict()
    changed = {part: {name: value for name, value in whole[part].items()
                      if name not in KEY_BASELINE[part] or not _same(value, KEY_BASELINE[part][name])}
               for part in KEY_BASELINE}  # fmt: skip
    return json.dumps({"numerics": numerics, "task": config.task, **{p: v for p, v in changed.items() if v}},
                      sort_keys=True)  # fmt: skip


def folder_key(config: RunConfig) -> str:
    """The whole configuration but its name and folders, as dlcli 0.3.1 keyed it (format 3),
    plus any later setting off its baseline: what names a comparison's folder
    (plan._label), so a folder keeps its name across upgrades."""
    whole = {**config.to_dict(), "name": "", "logdir": "", "checkpoint_dir": ""}
    for part, names in LEGACY_FIELDS.items():
        whole[part] = {name: value for name, value in whole[part].items()
                       if name in names or not _same(value, KEY_BASELINE[part].get(name, object()))}  # fmt: skip
    return json.dumps(whole, sort_keys=True)


def _same(value, baseline) -> bool:
    # By their JSON: 1 and 1.0 and True stay apart, as they were in a format-3 key.
    return json.dumps(value) == json.dumps(baseline)


def rekeyed(legacy_key: str) -> str | None:
    """The format-4 key of a format-3 line's key (its whole configuration); None when
    it is not one."""
    try:
        config = RunConfig.from_dict(json.loads(legacy_key))
    except (ConfigError, ValueError, TypeError):
        return None
    return ledger_key(config, numerics=LEGACY_NUMERICS)


@dataclass
class Ledger:
    """The finished runs in a ledger file, as one command sees them."""

    path: Path
    entries: dict[str, dict] = field(default_factory=dict)  # {key: entry}, the last line of a key wins
    older: int = 0  # entries of an older dlcli, set aside (see KEY_FORMAT)
    offset: int = 0  # bytes read so far: whole lines only
    lines: int = 0  # lines read so far (to name a malformed one by its number)
    malformed: list[int] = field(default_factory=list)  # numbers of the lines set aside as malformed
    warn: bool = True  # say so for each malformed line (once per command: its first read)

    @classmethod
    def read(cls, path: Path, *, force: bool = False, warn: bool = True) -> "Ledger":
        """The ledger as it is now. `force`: what is in it already is ignored (never
        reused), but lines appended from now on are read by `refresh`. `warn`: log one
        warning per malformed line (off for a second reader in the same command)."""
        ledger = cls(Path(path), warn=warn)
        if force:
            try:
                data = ledger.path.read_bytes()
            except FileNotFoundError:
                data = b""
            ledger.offset, ledger.lines = len(data), data.count(b"\n")
        else:
            ledger.refresh()
        return ledger

    def refresh(self) -> None:
        """Read the lines appended since the last read (by this or another process).
        A line still being written (no newline yet) waits for the next read; entries
        of an older dlcli are set aside and counted; any other line that is not a whole,
        valid entry (torn by a kill, hand-edited, a wrong type, a missing key, a number
        out of range) is set aside with a warning naming the file and the line, and its
        run trains again."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self.offset += len(complete)
        for line in complete.decode("utf-8", errors="replace").split("\n")[:-1]:
            self.lines += 1
            self._take(line, self.lines)

    def _take(self, line: str, number: int) -> None:
        if not line.strip():
            return  # an empty line holds no run
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            return self._set_aside(number, "not a whole JSON line (torn by a kill, or edited)")
        if not isinstance(entry, dict):
            return self._set_aside(number, "not a JSON object")
        key_format = entry.get("key_format")
        if key_format not in (KEY_FORMAT, LEGACY_FORMAT) and _problem(entry, OLDER_FIELDS) is None:
            self.older += 1
            return
        problem = _problem(entry, FIELDS)
        if problem is not None:
            return self._set_aside(number, problem)
        if key_format == KEY_FORMAT:
            self.entries[entry["key"]] = entry
        elif key_format == LEGACY_FORMAT and (new := rekeyed(entry["key"])) is not None:
            self.entries[new] = {**entry, "key": new, "key_format": KEY_FORMAT}
        else:
            self.older += 1

    def _set_aside(self, number: int, problem: str) -> None:
        self.malformed.append(number)
        if self.warn:
            log.warning("%s line %d is set aside: %s; its run trains again", self.path, number, problem)

    def get(self, config: RunConfig) -> dict | None:
        return self.entries.get(ledger_key(config))

    def append(self, entry: dict) -> None:
        """One line, written and fsynced at once under an exclusive lock of the file,
        so the ledger stays readable after a kill and two drivers never interleave."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file closes
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a torn line from a killed append: end it first
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


# What a ledger entry holds: (field, check, what the check wants), every field required
# unless OPTIONAL says otherwise. A line that fails one is set aside, never half-used.
def _number(low=0.0, high=math.inf):
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high


def _integer(low=0):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


FIELDS = {
    "key": (lambda v: isinstance(v, str) and v != "", "a non-empty text"),
    "seed": (_integer(0), "an integer >= 0"),
    "accuracy": (_number(0.0, 1.0), "a number from 0 to 1"),
    "loss": (_number(), "a finite number >= 0"),
    "seconds": (_number(), "a finite number >= 0"),
    "params": (_integer(0), "an integer >= 0"),
    "variant": (lambda v: isinstance(v, str), "a text"),
    "run": (lambda v: isinstance(v, str), "a text"),
    "epochs": (_integer(1), "an integer >= 1"),
    "trained_steps": (_integer(0), "an integer >= 0"),
    "grad_ratio": (lambda v: v is None or _number()(v), "a finite number >= 0 or null"),
    "diagnostics": (lambda v: v is None or isinstance(v, dict), "an object or null"),
}
OPTIONAL = {"variant", "run", "epochs", "trained_steps", "grad_ratio", "diagnostics"}
OLDER_FIELDS = {k: FIELDS[k] for k in ("key", "accuracy", "loss")}  # enough to count an older dlcli's line


def _problem(entry: dict, fields: dict) -> str | None:
    """What is wrong with `entry` ("accuracy must be a number from 0 to 1, got '1.0'"),
    or None when every field of `fields` is there with a value it takes."""
    for name, (ok, wanted) in fields.items():
        if name not in entry:
            if name in OPTIONAL:
                continue
            return f"it has no {name!r}"
        if not ok(entry[name]):
            return f"{name} must be {wanted}, got {entry[name]!r}"
    return None


def read_ledger(path: Path) -> dict[str, dict]:
    """{key: entry} of the finished runs in the ledger at `path` (see Ledger)."""
    return Ledger.read(path).entries


def ledger_contents(path: Path, *, warn: bool = True) -> tuple[dict[str, dict], int]:
    """read_ledger's entries, and how many entries an older dlcli wrote (set aside)."""
    ledger = Ledger.read(path, warn=warn)
    return ledger.entries, ledger.older


def append_ledger(path: Path, entry: dict) -> None:
    Ledger(Path(path)).append(entry)


def status(the_plan: Plan, ledger: Ledger, *, force: bool = False) -> list[tuple[PlannedRun, RunStatus]]:
    """Each planned run and what running the plan would do with it, from `ledger`
    (read once by the caller) and the run folders."""
    out = []
    for run in the_plan.runs:
        if ledger.get(run.config) is not None:
            out.append((run, RunStatus.IN_LEDGER))
        elif not force and RunFolder.resumable(run.config):
            out.append((run, RunStatus.RESUME))
        else:
            out.append((run, RunStatus.TRAIN))
    return out
