"""Run folders: `checkpoints/<run>/` with run.json, the checkpoints and a lock.

`run.json` records everything `resume` needs to rebuild a run from the folder alone:
the whole configuration, the data source, the target epochs, the versions, the scope
of its TensorBoard tags, and the final result once there is one. It is always
replaced atomically (write a temporary file, fsync, rename), so a kill at any moment
leaves the old or the new record. `RunFolder` is its only reader and writer: code that
needs to know something of a run folder, or to move one, asks `RunFolder`.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path

from dlcli import __version__
from dlcli.config import RunConfig
from dlcli.errors import ConfigError, RunError

RECORD = "run.json"
LOCK = ".lock"
FORMAT = 1  # bump when run.json changes incompatibly


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def default_run_name(task: str) -> str:
    return f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunFolder:
    """A run's checkpoint folder and log folder, and its record."""

    def __init__(self, path: Path, record: dict):
        self.path = Path(path)
        self.record = record
        self._lock_fd: int | None = None

    # -- creating and opening -------------------------------------------------------

    @classmethod
    def create(cls, config: RunConfig, *, auto_name: bool, scope: str = "",
               target_epochs: int | None = None) -> "RunFolder":  # fmt: skip
        """Make `<checkpoint_dir>/<name>` and `<logdir>/<name>`, never reusing either.

        With `auto_name`, a taken name gets a `-2`, `-3`, ... suffix instead of an error.
        Nothing is left behind if either folder cannot be made. `scope` prefixes the
        run's scalar tags (a comparison's runs: see `dlcli.core.summaries.Summaries`).
        `target_epochs`: where training stops first, when not at `config`'s epochs (a
        `compare --prune` rung: the record holds the whole run, its target the rung).
        """
        ckpt_base, log_base = Path(config.checkpoint_dir), Path(config.logdir)
        made: list[Path] = []
        try:
            for base, option in ((ckpt_base, "--checkpoint-dir"), (log_base, "--logdir")):
                made += _make_base(base, option)
        except RunError:
            for folder in reversed(made):  # only the empty folders this call made
                folder.rmdir()
            raise
        name, suffix = config.name, 1
        while True:
            ckpt, logs = ckpt_base / name, log_base / name
            taken = ckpt.exists() or (logs.exists() and any(logs.iterdir()))
            if not taken:
                try:
                    ckpt.parent.mkdir(parents=True, exist_ok=True)
                    ckpt.mkdir()
                    break
                except FileExistsError:
                    pass  # another process took it a moment ago
                except OSError as exc:
                    raise RunError(f"cannot create {ckpt}: {exc.strerror}; choose another --checkpoint-dir") from None
            if not auto_name:
                raise RunError(_taken(name, ckpt, logs))
            suffix += 1
            name = f"{config.name}-{suffix}"
        try:
            logs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            shutil.rmtree(ckpt, ignore_errors=True)
            raise RunError(f"cannot create {logs}: {exc.strerror}; choose another --logdir") from None
        if name != config.name:
            config = replace(config, name=name)
        record = {
            "format": FORMAT,
            "run": name,
            "task": config.task,
            "config": config.to_dict(),
            "logdir": str(logs.resolve()),
            "target_epochs": target_epochs or config.train.epochs,
            "data_source": None,
            "versions": versions(),
            "created": now(),
            "updated": now(),
            "status": "created",
            "result": None,
        }
        if scope:
            record["scope"] = scope
        run = cls(ckpt, record)
        run.lock()
        run.save_record()
        return run

    @classmethod
    def open(cls, path: Path) -> "RunFolder":
        """An existing run folder, checked; raises RunError on anything unusable."""
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{path} is not a folder; give a run folder such as checkpoints/<run>")
        record_path = path / RECORD
        if not record_path.is_file():
            runs = sorted(p.parent for p in path.glob(f"*/{RECORD}"))
            if runs:  # the folder above the runs (checkpoints/): name one of them
                shown = ", ".join(str(r) for r in runs[:3]) + (", ..." if len(runs) > 3 else "")
                raise RunError(f"{path} holds {len(runs)} run folder{'s' if len(runs) != 1 else ''}, not one run; "
                               f"give one of them: {shown}")  # fmt: skip
            raise RunError(f"{path} is not a dlcli run folder (no {RECORD}); give a run folder such as "
                           "checkpoints/<run>")  # fmt: skip
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{record_path} cannot be read ({exc}); it is not a valid run record") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            found = record.get("format") if isinstance(record, dict) else None
            raise RunError(
                f"{record_path} has format {found!r}; this dlcli ({__version__}) reads format {FORMAT}"
            )
        try:
            _check_record(record)
        except ConfigError as exc:
            raise RunError(f"{record_path} is not a valid run record ({exc})") from None
        return cls(path, record)

    @classmethod
    def check_new(cls, config: RunConfig, *, auto_name: bool) -> None:
        """`create`'s refusal of a taken name, asked before anything is imported or
        made (an automatic name never is: it gains a suffix)."""
        for base, option in ((Path(config.checkpoint_dir), "--checkpoint-dir"), (Path(config.logdir), "--logdir")):
            _check_base(base, option)
        ckpt, logs = Path(config.checkpoint_dir) / config.name, Path(config.logdir) / config.name
        if not auto_name and (ckpt.exists() or (logs.is_dir() and any(logs.iterdir()))):
            raise RunError(_taken(config.name, ckpt, logs))

    @classmethod
    def for_resume(cls, path: Path, epochs: int | None = None) -> tuple["RunFolder", int]:
        """The run folder at `path` and the target `dlcli resume --epochs` gives it,
        after every check that needs no TensorFlow: a run folder, a valid record, a
        target not below the run's, something to resume from, no other process in it."""
        run = cls.open(path)
        target = int(run.record["target_epochs"])
        if epochs is not None:
            if epochs < target:
                raise RunError(f"--epochs {epochs} is below the run's target of {target} epochs")
            target = epochs
        if not checkpoint_paths(run.path) and not run.starts_over:
            raise RunError(
                f"{run.path} holds no checkpoint to resume from (its checkpoints were deleted?); "
                f"train the run again under a new --name, or delete the folder"
            )
        run.lock()  # the same refusal a busy folder gets later, now
        run.unlock()
        return run, target

    @property
    def starts_over(self) -> bool:
        """A run killed before its first checkpoint (its start-up: building the model,
        compiling): no checkpoint at all and never finished. run.json holds all it
        needs, so `resume` trains it from step 0, as the run would have."""
        return (not checkpoint_paths(self.path) and self.record.get("result") is None
                and self.record.get("status") in ("created", "running"))  # fmt: skip

    # -- record -------------------------------------------------------------------

    @property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.record["config"])

    @property
    def name(self) -> str:
        return self.record["run"]

    @property
    def logdir(self) -> Path:
        return Path(self.record["logdir"])

    @property
    def scope(self) -> str:
        """The prefix of the run's scalar tags ("" but for a comparison's runs)."""
        return self.record.get("scope", "")

    def made_by(self, config: RunConfig) -> bool:
        """Whether exactly `config` made this folder, with this version of dlcli (an
        older one drew other initial weights from the same configuration)."""
        versions = self.record.get("versions")
        return self.config == config and isinstance(versions, dict) and versions.get("dlcli") == __version__

    def continues_to(self, config: RunConfig) -> bool:
        """Whether `config`'s run is this folder's run trained on: made by `config` but
        for its epochs (this dlcli), and not targeted past them.

        The number of epochs is where a run stops, not what a step does (no schedule
        depends on it), so a run resumed to a higher target is the run trained straight
        there, bit for bit: `compare --prune` continues its survivors rung by rung this
        way, and a comparison's run stopped at a rung continues to the whole run."""
        same = replace(config, train=replace(config.train, epochs=self.config.train.epochs))
        return self.made_by(same) and self.record["target_epochs"] <= config.train.epochs

    @classmethod
    def resumable(cls, config: RunConfig) -> bool:
        """A checkpointed folder at `config`'s path of this run, to be continued to
        `config`'s epochs (`continues_to`): never another configuration's folder, an
        older dlcli's, nor one targeted past `config`'s epochs."""
        try:
            run = cls.open(Path(config.checkpoint_dir) / config.name)
        except RunError:
            return False
        return run.continues_to(config) and (run.path / "checkpoint").is_file()

    @classmethod
    def ahead_of(cls, config: RunConfig) -> "RunFolder | None":
        """The folder at `config`'s path when it holds `config`'s run but for its
        epochs, targeted past them (a lower rung of it would have to start over)."""
        try:
            run = cls.open(Path(config.checkpoint_dir) / config.name)
        except RunError:
            return None
        same = replace(config, train=replace(config.train, epochs=run.config.train.epochs))
        return run if run.made_by(same) and run.record["target_epochs"] > config.train.epochs else None

    # -- moving -----------------------------------------------------------------------

    @classmethod
    def move_in(cls, checkpoints: Path, logs: Path, config: RunConfig) -> "RunFolder":
        """A run folder made elsewhere (its checkpoint and log folders, unpacked at
        `checkpoints` and `logs`: a cluster worker's shipped run) moved to where `config`
        puts it, replacing what was there; its record then points at its new place, so
        `dlcli resume` of it works here."""
        target, target_logs = Path(config.checkpoint_dir) / config.name, Path(config.logdir) / config.name
        for folder in (target, target_logs):
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(checkpoints), target)
        shutil.move(str(logs), target_logs)
        run = cls.open(target)
        run.record["config"].update(checkpoint_dir=config.checkpoint_dir, logdir=config.logdir)
        run.record["logdir"] = str(target_logs.resolve())
        run.save_record()
        return run

    def copy_to(self, folder: Path, *, logdir: Path) -> "RunFolder":
        """A copy of the checkpoint folder at `folder` (without the lock) whose record
        logs to `logdir`: the same run, trained elsewhere (a helper worker's scratch)."""
        shutil.copytree(self.path, folder, ignore=shutil.ignore_patterns(LOCK))
        copy = RunFolder(folder, json.loads(json.dumps(self.record)))
        copy.record["logdir"] = str(logdir)
        copy.save_record()
        return RunFolder.open(folder)

    def update(self, **fields) -> None:
        self.record.update(fields, updated=now())
        self.save_record()

    def save_record(self) -> None:
        try:
            atomic_write_text(self.path / RECORD, json.dumps(self.record, indent=2) + "\n")
        except OSError as exc:
            raise RunError(f"cannot write {self.path / RECORD}: {exc.strerror}") from None

    # -- lock -----------------------------------------------------------------------

    def lock(self) -> None:
        """Hold an exclusive lock on the folder while this process trains in it.

        flock locks die with their process, so a killed run never leaves one stuck.
        """
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise RunError(
                    f"{self.path} is in use by another dlcli process; wait for it to finish or stop it"
                ) from None
            raise
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _taken(name: str, ckpt: Path, logs: Path) -> str:
    if ckpt.exists():
        return f"run {name!r} already exists ({ckpt}); continue it with `dlcli resume {ckpt}` or choose another --name"
    return f"run {name!r} already exists: its logs are in {logs}; choose another --name (or move those logs)"


def checkpoint_paths(folder: Path) -> list[str]:
    """Checkpoint prefixes in `folder`, newest step first (from the files themselves,
    so a lost or stale `checkpoint` state file hides nothing)."""
    steps = []
    for index in Path(folder).glob("ckpt-*.index"):
        try:
            steps.append(int(index.name[len("ckpt-") : -len(".index")]))
        except ValueError:
            continue
    return [str(Path(folder) / f"ckpt-{step}") for step in sorted(steps, reverse=True)]


def _check_record(record: dict) -> None:
    """Every field resume reads, with its type; the config in full (RunConfig.from_dict)."""
    kinds = {"run": (str, "a run name"), "logdir": (str, "a folder path"), "target_epochs": (int, "an integer"),
             "config": (dict, "an object")}  # fmt: skip
    for key, (kind, description) in kinds.items():
        if key not in record:
            raise ConfigError(f"{key} is missing")
        value = record[key]
        if not isinstance(value, kind) or isinstance(value, bool) or value in ("", {}):
            raise ConfigError(f"{key} must be {description}, got {value!r}")
    if record["target_epochs"] < 1:
        raise ConfigError(f"target_epochs must be at least 1, got {record['target_epochs']}")
    RunConfig.from_dict(record["config"]).validate()


def _check_base(base: Path, option: str) -> None:
    """Whether `_make_base` can make `base`, asked without making anything: its nearest
    existing folder must be a writable folder (the same refusals, before TensorFlow)."""
    existing = next((p for p in [base, *base.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise RunError(f"cannot create {option} {base}: {existing} is not a folder; choose a writable folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise RunError(f"cannot create {option} {base}: Read-only file system; choose a writable folder")
        raise RunError(f"{option} {base} is not writable; choose a writable folder")


def _make_base(base: Path, option: str) -> list[Path]:
    """Create `base` and its missing parents; return the folders made, outermost first."""
    missing = [p for p in [base, *base.parents] if not p.exists()][::-1]
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for folder in reversed([p for p in missing if p.is_dir()]):
            folder.rmdir()
        raise RunError(f"cannot create {option} {base}: {exc.strerror}; choose a writable folder") from None
    if not os.access(base, os.W_OK | os.X_OK):
        raise RunError(f"{option} {base} is not writable; choose a writable folder")
    return missing


def versions() -> dict:
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    return {
        "dlcli": __version__,
        "tensorflow": tf.__version__,
        "keras": tf.keras.__version__,
        "python": platform.python_version(),
    }
