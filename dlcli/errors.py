"""Exceptions the library raises and the exit statuses the CLI turns them into.

The library never exits the process: it raises a `DlcliError` whose message is one
line saying what went wrong and what to do. `dlcli.cli` prints it and exits 1.
"""

from enum import IntEnum


class ExitStatus(IntEnum):
    SUCCESS = 0
    ERROR = 1  # a runtime failure explained in one line
    USAGE = 2  # Click's usage errors
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class DlcliError(Exception):
    """An expected failure with a one-line, user-facing message."""

    def _render_traceback_(self) -> list[str]:
        # IPython and Jupyter show this instead of the traceback: the one line the CLI
        # prints, as the notebook's answer to bad input (`%debug` still has the frames).
        return [f"{type(self).__name__}: {self}"]


class ConfigError(DlcliError):
    """An option value or a combination of them that cannot work."""


class DataError(DlcliError):
    """A data set that is missing, truncated or malformed."""


class RunError(DlcliError):
    """A run folder that cannot be created, read or continued."""


class CheckpointError(RunError):
    """A checkpoint that is missing or cannot be restored."""


class DivergedError(DlcliError):
    """Training produced a non-finite loss; nothing from that step on was saved."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run (exit 130). The message says what happened and what to run
    next; `what` is its first half alone (what was interrupted and what was kept), for
    callers that know better what comes next (a comparison: run it again)."""

    def __init__(self, message: str = "", *, what: str = ""):
        super().__init__(message)
        self.what = what or message
