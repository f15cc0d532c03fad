"""A persistent cache of XLA-compiled training steps, so a new dlcli process does not
compile again what this machine compiled before.

TensorFlow has the mechanism (`TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR`:
every executable it compiles is written to DIR, and looked up there before compiling)
but not the safety around it, so this module adds that:

- Stale code. TensorFlow's file names hash the HLO program and the device type only,
  not TensorFlow's version nor the exact CPU (XLA:CPU compiles for the host's
  instruction set; an executable from another CPU can die with SIGILL) nor the GPU. So
  the cache is split into one folder per TensorFlow version and machine fingerprint:
  ~/.cache/dlcli/xla/tf-2.21.0-<fingerprint>/, and another machine or an upgrade starts
  an empty folder of its own.
- Corrupt entries. TensorFlow fails the whole run on an entry it cannot parse, and
  would run a damaged executable whose bytes still parse. TensorFlow therefore never
  reads the shared folder itself: each process points it at a private folder holding
  (hard links to) the entries that passed their check, and, at exit, moves what it
  compiled into the shared folder. An entry that fails its check is left out, so it is
  compiled again (and stored again, whole), with one warning line.
- The check costs nothing per megabyte. When dlcli stores an entry it writes beside it
  the entry's SHA-256, size and modification time (`<sha256> <size> <mtime_ns>`), and a
  process starting checks each entry's size and time stamp against that record: a
  stat, not a read. Why that is enough: entries are only ever written whole, in a
  private folder, and renamed into place (a rename keeps both), so what changes an
  entry afterwards - a truncation, a partial overwrite, garbage, another tool - changes
  its size or its time stamp; hashing every entry at every start (0.65 s at 580 MB in
  0.3.1, growing with the cache) paid for the one fault this misses, bytes that rot in
  place on the disk. A record of dlcli 0.3.1 (the SHA-256 alone) is checked by hashing
  its entry once, then rewritten in the new form. A start takes no lock: entries and
  records are replaced atomically, record first, so a reader sees an entry with its
  own record or skips it; it never deletes anything (a failed check is skipped, removed
  by the next store under the lock). Start-up, side by side: benchmarks/compile_cache.py.
- Shared folders. Records are readable by whoever can read their entries (the entry's
  own permission bits), and an entry this user cannot read is skipped, never deleted.
- Unwritable folders. TensorFlow fails the run when it cannot store an entry, so the
  folder is tried first; when it cannot be written, one warning line and the run goes
  on compiling as before.

- Growth. Every new shape of net adds an entry (0.3-1 MB on a CPU), and an upgrade
  leaves the old version's folder behind. After storing its entries a process trims the
  cache to DLCLI_COMPILE_CACHE_MAX_MB (default 1000): other TensorFlow versions'
  entries first, then the oldest. An entry trimmed away is compiled again when
  next needed. (Oldest, not least recently used: every process links every entry, so
  which ones TensorFlow read is not known here.) Other machines' entries sharing the
  root are trimmed by age with this one's, not first.

Turn it off with `dlcli --no-compile-cache` or DLCLI_COMPILE_CACHE=off; move it with
DLCLI_COMPILE_CACHE=PATH. Standard library only: this runs before TensorFlow is imported.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import math
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path

ENV = "DLCLI_COMPILE_CACHE"
MAX_MB_ENV = "DLCLI_COMPILE_CACHE_MAX_MB"
DEFAULT_MAX_MB = 1000
OFF = ("off", "0", "no", "false", "none")
FLAG = "--tf_xla_persistent_cache_directory"
SUFFIX = ".pb"  # TensorFlow's entries: xla_compile_cache__<signature>__<program>__<device>.pb
CHECKSUM = ".sha256"
SESSION_PREFIX = ".session-"

log = logging.getLogger("dlcli")


def disable() -> None:
    """`dlcli --no-compile-cache`: off for this process and the workers it starts."""
    os.environ[ENV] = "off"


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dlcli" / "xla"


def tensorflow_version() -> str:
    """The installed TensorFlow's version, without importing it (that takes seconds)."""
    from importlib import metadata

    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly", "tf-nightly-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def machine_fingerprint() -> str:
    """What the compiled code depends on besides the program: the CPU's model and
    instruction-set flags, the GPUs and their driver, and the user's own XLA flags."""
    parts = [platform.machine(), platform.system()]
    parts += _cpu_description()
    gpus = _nvidia_gpus()
    parts += gpus
    if len(set(gpus[1:])) > 1:  # different GPU models: a worker pinned to one must not read another's code
        parts.append("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    parts.append("XLA_FLAGS=" + os.environ.get("XLA_FLAGS", ""))
    parts.append("TF_XLA_FLAGS=" + _user_flags())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _cpu_description() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux: the processor string is the best there is
        return [platform.processor()]
    first = text.split("\n\n", 1)[0]
    keep = ("vendor_id", "model name", "flags", "cpu family", "model", "Features", "CPU part")
    return [line.strip() for line in first.splitlines() if line.split(":", 1)[0].strip() in keep]


def _nvidia_gpus() -> list[str]:
    """The driver version and every GPU's model, from /proc (no CUDA call needed)."""
    root = Path("/proc/driver/nvidia")
    try:
        found = [(root / "version").read_text(errors="replace").splitlines()[0]]
        for info in sorted(root.glob("gpus/*/information")):
            model = [line for line in info.read_text(errors="replace").splitlines() if line.startswith("Model")]
            found += model
    except (OSError, IndexError):
        return []
    return found


def _user_flags() -> str:
    """TF_XLA_FLAGS as the user set it: without a cache folder a dlcli parent process
    added (spawned `compare --jobs` workers inherit the parent's environment)."""
    ours = os.environ.get("DLCLI_COMPILE_CACHE_SESSION")
    flags = os.environ.get("TF_XLA_FLAGS", "").split()
    return " ".join(f for f in flags if not (ours and f == f"{FLAG}={ours}"))


class Session:
    """This process's view of the cache: a private folder TensorFlow reads and writes,
    filled with the shared folder's verified entries, emptied into it at exit."""

    def __init__(self, store: Path, folder: Path, linked: set[str]):
        self.store, self.folder, self.linked = store, folder, linked

    def new_entries(self) -> list[Path]:
        """What TensorFlow compiled and stored in this process (its .tmp files excluded)."""
        return sorted(p for p in self.folder.glob("*" + SUFFIX) if p.name not in self.linked)

    def publish(self) -> int:
        """Move this process's new entries into the shared folder, each with its checksum;
        returns how many. Run at exit; a failure costs a recompile later, never the run."""
        if not self.folder.is_dir():
            return 0
        count = 0
        new = self.new_entries()
        try:
            with _lock(self.store) if new else contextlib.nullcontext():
                for entry in new:
                    # Checksum first: a reader that sees the entry sees its checksum.
                    _write_atomic(self.store / (entry.name + CHECKSUM), _record(entry, _digest(entry.read_bytes())),
                                  mode=entry.stat().st_mode & 0o666)  # fmt: skip
                    os.replace(entry, self.store / entry.name)
                    count += 1
                if new:
                    _remove_failed(self.store)
        except OSError as exc:
            log.warning(f"compile cache: could not store new entries in {self.store} ({_reason(exc)})")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        if count:
            trim(self.store.parent, self.store, max_bytes())
        return count


def max_bytes() -> int:
    """DLCLI_COMPILE_CACHE_MAX_MB in bytes (one warning and the default when unreadable;
    "inf": no limit)."""
    text = os.environ.get(MAX_MB_ENV, "").strip()
    if text:
        try:
            megabytes = float(text)
            if megabytes >= 0:
                return int(megabytes * 1_000_000) if math.isfinite(megabytes) else sys.maxsize
        except ValueError:
            pass
        log.warning(f"{MAX_MB_ENV}={text!r} is not a number of megabytes >= 0; keeping the cache to {DEFAULT_MAX_MB}")
    return DEFAULT_MAX_MB * 1_000_000


STORE_NAME = re.compile(r"tf-(?P<version>.+)-[0-9a-f]{16}")  # what `start` names a folder
ENTRY_GLOB = "xla_compile_cache__*" + SUFFIX  # TensorFlow's entries' names


def trim(root: Path, current: Path, limit: int) -> int:
    """Remove entries under `root` until they take at most `limit` bytes: first those
    of other TensorFlow versions (left behind by an upgrade), then the oldest, whatever
    the machine (a root shared by several machines keeps each one's recent entries).
    Only dlcli's folders and TensorFlow's entry files are touched. Returns how many
    went; a failure leaves an entry, never the run."""
    version = STORE_NAME.fullmatch(current.name)
    found = []
    for store in root.iterdir() if root.is_dir() else ():
        match = STORE_NAME.fullmatch(store.name)
        if match is None or not store.is_dir():
            continue
        stale = version is not None and match["version"] != version["version"]
        for entry in store.glob(ENTRY_GLOB):
            with contextlib.suppress(OSError):
                info = entry.stat()
                found.append((not stale, info.st_mtime_ns, entry, info.st_size))
    total = sum(size for *_, size in found)
    removed = 0
    for _, _, entry, size in sorted(found, key=lambda item: item[:2]):
        if total <= limit:
            break
        try:
            with _lock(entry.parent):  # not while a process stores entries there
                entry.unlink()
                with contextlib.suppress(OSError):
                    Path(str(entry) + CHECKSUM).unlink()
        except FileNotFoundError:
            pass  # another process trimming at the same moment removed it: gone all the same
        except OSError:
            continue
        total -= size
        removed += 1
    return removed


def start() -> Session | None:
    """Point TensorFlow at a verified copy of this machine's cache; must run before
    TensorFlow is imported. None (and TensorFlow compiles as ever) when the cache is
    off, the user set TensorFlow's own cache flag, or the folder cannot be used."""
    user_flags = _user_flags()
    os.environ.pop("DLCLI_COMPILE_CACHE_SESSION", None)
    if user_flags:
        os.environ["TF_XLA_FLAGS"] = user_flags  # not the folder of the process that started this one
    else:
        os.environ.pop("TF_XLA_FLAGS", None)
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    if FLAG in user_flags:
        return None  # the user's own TensorFlow cache setting wins
    root = Path(setting).expanduser() if setting else default_root()
    store = root / f"tf-{tensorflow_version()}-{machine_fingerprint()}"
    try:
        store.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{SESSION_PREFIX}{socket.gethostname()}-{os.getpid()}-", dir=store))
    except OSError as exc:
        log.warning(f"compile cache {store} is not writable ({_reason(exc)}); compiling without it")
        return None
    try:
        linked, bad = _fill(store, folder)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        log.warning(f"compile cache {store} cannot be read ({_reason(exc)}); compiling without it")
        return None
    if bad:
        log.warning(
            f"compile cache: {bad} unreadable entr{'y' if bad == 1 else 'ies'} in {store} left out "
            "(compiled again this time)"
        )
    session = Session(store, folder, linked)
    os.environ["DLCLI_COMPILE_CACHE_SESSION"] = str(folder)
    os.environ["TF_XLA_FLAGS"] = " ".join(filter(None, [user_flags, f"{FLAG}={folder}"]))
    atexit.register(session.publish)
    return session


def _fill(store: Path, folder: Path) -> tuple[set[str], int]:
    """Link every entry that passes its check into `folder` (no lock, nothing removed:
    see the module's doc). Returns (the names linked, how many were left out)."""
    _remove_abandoned_sessions(store)
    linked, bad = set(), 0
    # Plain strings and scandir, not pathlib: this loop is a start's whole cost per entry.
    with os.scandir(store) as found:
        names = [item.name for item in found if item.name.endswith(SUFFIX)]
    for name in names:
        entry, target = os.path.join(store, name), os.path.join(folder, name)
        if not os.access(entry, os.R_OK):
            continue  # another user's, not shared with this one: not ours to judge or remove
        intact = _intact(entry)
        if intact is None:
            continue  # trimmed away while we looked
        if not intact:
            bad += 1
            continue
        try:
            try:
                os.link(entry, target)
            except OSError:  # no hard links here (some network file systems): a copy
                shutil.copyfile(entry, target)
        except OSError:
            continue  # trimmed away meanwhile, or not ours to link or copy: compiled again
        linked.add(name)
    return linked, bad


def _record(entry: Path, digest: str) -> str:
    info = entry.stat()
    return f"{digest} {info.st_size} {info.st_mtime_ns}"


def _intact(entry, *, upgrade: bool = True) -> bool | None:
    """Whether `entry` is as it was stored: its size and time stamp as its record says
    (a stat); a record of dlcli 0.3.1 (the SHA-256 alone) by hashing it once, and
    then (`upgrade`) in the new form. None: the entry is gone."""
    checksum = str(entry) + CHECKSUM
    try:
        info = os.stat(entry)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        with open(checksum, encoding="ascii") as handle:
            fields = handle.read().split()
        if len(fields) == 3:
            return fields[1:] == [str(info.st_size), str(info.st_mtime_ns)]
        with open(entry, "rb") as handle:
            if len(fields) != 1 or fields[0] != _digest(handle.read()):
                return False
    except (OSError, UnicodeDecodeError):
        return False
    if upgrade:
        with contextlib.suppress(OSError):
            _write_atomic(Path(checksum), _record(Path(entry), fields[0]), mode=info.st_mode & 0o666)
    return True


def _remove_failed(store: Path) -> None:
    """Under the lock: entries that fail their check, and records whose entry is gone."""
    for entry in store.glob("*" + SUFFIX):
        if os.access(entry, os.R_OK) and _intact(entry, upgrade=False) is False:
            for path in (entry, Path(str(entry) + CHECKSUM)):
                with contextlib.suppress(OSError):
                    path.unlink()
    for orphan in store.glob("*" + SUFFIX + CHECKSUM):  # its entry is gone
        if not (store / orphan.name[: -len(CHECKSUM)]).exists():
            with contextlib.suppress(OSError):
                orphan.unlink()


def _remove_abandoned_sessions(store: Path) -> None:
    """Private folders of processes on this host that died before their exit ran."""
    host = socket.gethostname()
    for folder in store.glob(SESSION_PREFIX + "*"):
        rest = folder.name[len(SESSION_PREFIX):]
        if not rest.startswith(host + "-"):
            continue
        pid = rest[len(host) + 1:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def _lock(store: Path):
    """One process at a time checks or stores entries (POSIX file lock; none elsewhere)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(store / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """`path` holds `text` whole or not at all; `mode`: its permission bits (mkstemp's
    are 0600, which another user sharing the folder could not read)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
