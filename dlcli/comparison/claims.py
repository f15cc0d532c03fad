"""Claims: which driving process trains a run, when two `dlcli compare` share folders.

A process claims a run before it starts it and keeps the claim until the run's line
is in the ledger; another process that wants the same run waits for the claim, then
finds the run in the ledger (or, when the first process died, trains it itself).

A claim is an exclusive `flock` on `<logdir>/compare/.claims/<key hash>`: the kernel
drops it when its process dies, however it dies, so a crashed driver never blocks
another. The file is removed on release; a process that locked a file just removed
(it opened it before the unlink) sees that the path no longer names its file and
takes the new one instead, so two processes never both hold a run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

FOLDER = ".claims"


class Claim:
    """One run's claim, held by this process until `release`."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking: a waiter then retries on a new file
        os.close(self._fd)
        self._fd = None


def claim_path(folder: Path, key: str) -> Path:
    return Path(folder) / FOLDER / hashlib.sha256(key.encode()).hexdigest()[:32]


def claim(folder: Path, key: str, *, wait: bool) -> Claim | None:
    """The claim on the run whose ledger key is `key`, in the ledger's folder; None
    when another process holds it and `wait` is false (else wait for it)."""
    path = claim_path(folder, key)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder was removed between the two calls
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return Claim(path, fd)
        os.close(fd)  # released and removed by its holder meanwhile: claim the path anew


def tidy(folder: Path) -> None:
    """Remove the claims folder when no claim is left in it (another process's claims
    keep it)."""
    try:
        (Path(folder) / FOLDER).rmdir()
    except OSError:
        pass
