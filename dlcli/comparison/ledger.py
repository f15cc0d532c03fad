"""The comparison ledger, `<logdir>/compare/results.jsonl`: one line per finished run,
keyed by the run's whole configuration, appended by the driving processes alone.

A command reads the ledger once (`Ledger.read`); after that it only reads the lines
other processes appended since (`Ledger.refresh`), so two `dlcli compare` processes
on the same folders see each other's finished runs without reading everything again.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dlcli.config import RunConfig
from dlcli.core.runs import RunFolder  # standard library and config only

if TYPE_CHECKING:  # plan.py keys its comparison folders with ledger_key
    from dlcli.comparison.plan import Plan, PlannedRun

# Ledger lines: format 3 (dlcli 0.2) keys are the whole run configuration. Lines of
# formats 1 and 2 (dlcli 0.1) came from models whose layers shared one initializer seed
# taken from Python's global random state; their numbers are not this version's, so
# they are set aside (counted, never reused) and those runs train again.
KEY_FORMAT = 3


class RunStatus(enum.Enum):
    """What running a comparison does with one of its planned runs."""

    IN_LEDGER = "in the ledger"  # finished: its entry is reused
    RESUME = "resume"  # a checkpointed folder of exactly this run: continued
    TRAIN = "train"  # trained from its first step

    @property
    def done(self) -> str:
        """The past tense, for progress lines: reused, resumed, trained."""
        return {"in the ledger": "reused", "resume": "resumed", "train": "trained"}[self.value]


def ledger_key(config: RunConfig) -> str:
    """What makes two runs the same experiment: the whole configuration but its name
    and folders. Derived from the config itself, so a setting added later is part of
    the key without anyone remembering to add it."""
    return json.dumps(replace(config, name="", logdir="", checkpoint_dir="").to_dict(), sort_keys=True)


@dataclass
class Ledger:
    """The finished runs in a ledger file, as one command sees them."""

    path: Path
    entries: dict[str, dict] = field(default_factory=dict)  # {key: entry}, the last line of a key wins
    older: int = 0  # entries of an older dlcli, set aside (see KEY_FORMAT)
    offset: int = 0  # bytes read so far: whole lines only

    @classmethod
    def read(cls, path: Path, *, force: bool = False) -> "Ledger":
        """The ledger as it is now. `force`: what is in it already is ignored (never
        reused), but lines appended from now on are read by `refresh`."""
        ledger = cls(Path(path))
        if force:
            ledger.offset = _size(ledger.path)
        else:
            ledger.refresh()
        return ledger

    def refresh(self) -> None:
        """Read the lines appended since the last read (by this or another process). A
        torn last line (a kill mid-append), lines that are not ledger entries and
        entries of an older dlcli are skipped."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self.offset += len(complete)
        for line in complete.decode("utf-8", errors="replace").splitlines():
            self._take(line)

    def _take(self, line: str) -> None:
        try:
            entry = json.loads(line)
            key = entry["key"]
            float(entry["accuracy"]), float(entry["loss"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            return
        if entry.get("key_format") == KEY_FORMAT:
            self.entries[key] = entry
        else:
            self.older += 1

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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_ledger(path: Path) -> dict[str, dict]:
    """{key: entry} of the finished runs in the ledger at `path` (see Ledger)."""
    return Ledger.read(path).entries


def ledger_contents(path: Path) -> tuple[dict[str, dict], int]:
    """read_ledger's entries, and how many entries an older dlcli wrote (set aside)."""
    ledger = Ledger.read(path)
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
