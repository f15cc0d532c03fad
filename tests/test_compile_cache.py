"""The persistent XLA compilation cache: a second process reuses what the first compiled,
the off switch writes nothing, and an unusable folder or a damaged entry costs one
warning line, never the run nor its numbers."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import subprocess_env

from dlcli.core import compile_cache

XOR = ["xor", "-q", "--json", "--epochs", "300", "--seed", "3"]


def dlcli(args, cwd: Path, **env) -> subprocess.CompletedProcess:
    """A whole `dlcli` process, as a user starts it, with `env` on top of this one's."""
    environ = {**subprocess_env(), **env}
    for name in ("TF_XLA_FLAGS", "DLCLI_COMPILE_CACHE_SESSION"):
        environ.pop(name, None)
    return subprocess.run([sys.executable, "-m", "dlcli", *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          check=False)  # fmt: skip


def result_of(out: subprocess.CompletedProcess) -> tuple[float, float]:
    assert out.returncode == 0, out.stderr
    numbers = json.loads(out.stdout)
    return numbers["accuracy"], numbers["loss"]


def entries(cache: Path) -> dict[str, tuple[int, int]]:
    """{entry file: (inode, mtime)} of every cached executable below `cache`."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*" + compile_cache.SUFFIX)}


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """One cold run into an empty cache: (cache folder, its result, its stderr)."""
    cache = tmp_path_factory.mktemp("xla-cache")
    out = dlcli(XOR, tmp_path_factory.mktemp("cold"), DLCLI_COMPILE_CACHE=str(cache))
    return cache, result_of(out), out.stderr


def copy_of(cache: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cache"
    shutil.copytree(cache, target)
    return target


@pytest.mark.slow
def test_a_run_fills_the_cache_with_checksummed_entries_and_a_second_process_loads_them(cold, tmp_path):
    cache, result, stderr = cold
    assert stderr == ""  # the cache says nothing when all is well
    stores = [p for p in cache.iterdir() if p.is_dir()]
    key = f"tf-{compile_cache.tensorflow_version()}-{compile_cache.machine_fingerprint()}"
    assert [p.name for p in stores] == [key]
    before = entries(cache)
    assert before, "the run compiled its training step but stored nothing"
    for name in before:
        assert (stores[0] / (name + compile_cache.CHECKSUM)).is_file()
    assert not list(stores[0].glob(compile_cache.SESSION_PREFIX + "*")), "the private folder outlived the run"

    cache = copy_of(cache, tmp_path)
    before = entries(cache)
    # TensorFlow's own log line says where the executable came from.
    out = dlcli(XOR, tmp_path, DLCLI_COMPILE_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="0",
                TF_CPP_VMODULE="device_executable_persistor=1")  # fmt: skip
    assert result_of(out) == result
    assert "Loading cached entry" in out.stderr
    # Nothing compiled, so nothing stored: the same files, untouched.
    assert entries(cache) == before


@pytest.mark.slow
def test_the_off_switch_writes_nothing(cold, tmp_path):
    cache = tmp_path / "cache"
    home = tmp_path / "xdg"
    out = dlcli(["--no-compile-cache", *XOR], tmp_path, DLCLI_COMPILE_CACHE=str(cache), XDG_CACHE_HOME=str(home))
    assert result_of(out) == cold[1]
    assert not cache.exists() and not (home / "dlcli").exists()


@pytest.mark.parametrize("setting", ["off", "OFF ", "0", "false", "no"])
def test_the_off_setting_starts_nothing_and_writes_nothing(clean_env, tmp_path, setting):
    # The setting is read by start(), before TensorFlow (the flag above sets it too).
    clean_env.setenv(compile_cache.ENV, setting)
    assert compile_cache.start() is None
    assert "TF_XLA_FLAGS" not in os.environ and "DLCLI_COMPILE_CACHE_SESSION" not in os.environ
    assert not (tmp_path / "xdg").exists()


@pytest.mark.slow
def test_an_unwritable_cache_folder_is_one_warning_and_the_run_goes_on(cold, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = dlcli(XOR, tmp_path, DLCLI_COMPILE_CACHE=str(blocker / "cache"))
    assert result_of(out) == cold[1]
    lines = warnings_in(out.stderr)
    assert len(lines) == 1 and "not writable" in lines[0] and "compiling without it" in lines[0], out.stderr
    assert out.stderr.strip() == lines[0]


def damage(entry: Path, how: str) -> None:
    checksum = Path(str(entry) + compile_cache.CHECKSUM)
    data = bytearray(entry.read_bytes())
    if how == "garbage":  # TensorFlow alone fails the run: "Can't parse ... as binary proto"
        entry.write_bytes(os.urandom(1000))
    elif how == "flipped bytes":  # still parses; inside the executable's code
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 64])
        entry.write_bytes(bytes(data))
    else:
        checksum.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["garbage", "flipped bytes", "checksum lost"])
def test_a_damaged_entry_is_never_handed_to_tensorflow(cold, clean_env, tmp_path, how):
    """The real entry of the cold run, damaged: a start leaves it out of the folder
    TensorFlow reads, with one warning, and a store after compiling puts it back whole."""
    cache = copy_of(cold[0], tmp_path)
    clean_env.setenv(compile_cache.ENV, str(cache))
    [entry] = [p for p in cache.rglob("*" + compile_cache.SUFFIX)]
    whole = entry.read_bytes()
    damage(entry, how)
    # Heard on dlcli's own logger (the CLI, run earlier in this process, stops it
    # propagating to the root logger that caplog listens on).
    heard: list[logging.LogRecord] = []
    listener = logging.Handler(logging.WARNING)
    listener.emit = heard.append
    compile_cache.log.addHandler(listener)
    try:
        session = compile_cache.start()
    finally:
        compile_cache.log.removeHandler(listener)
    assert session.linked == set() and not (session.folder / entry.name).exists()
    lines = [r.getMessage() for r in heard]
    assert len(lines) == 1 and "1 unreadable entry" in lines[0], lines
    (session.folder / entry.name).write_bytes(whole)  # what TensorFlow compiles again
    assert session.publish() == 1
    assert entry.read_bytes() == whole
    assert compile_cache._intact(entry) is True


@pytest.mark.slow
def test_a_garbage_entry_is_one_warning_and_the_run_gives_the_same_numbers(cold, tmp_path):
    # The damage TensorFlow itself would fail the whole run on, end to end in real processes.
    cache = copy_of(cold[0], tmp_path)
    [entry] = [p for p in cache.rglob("*" + compile_cache.SUFFIX)]
    checksum = Path(str(entry) + compile_cache.CHECKSUM)
    damage(entry, "garbage")
    out = dlcli(XOR, tmp_path, DLCLI_COMPILE_CACHE=str(cache))
    assert result_of(out) == cold[1]
    lines = warnings_in(out.stderr)
    assert len(lines) == 1 and "1 unreadable entry" in lines[0], out.stderr
    # Compiled again and stored again, whole: the next run is quiet and warm.
    assert checksum.read_text().split()[0] == compile_cache._digest(entry.read_bytes())
    again = dlcli(XOR, tmp_path, DLCLI_COMPILE_CACHE=str(cache))
    assert result_of(again) == cold[1] and again.stderr == ""  # TensorFlow's noise on loading an entry too


# -- the folder's key and the process plumbing (no TensorFlow) ------------------------


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("TF_XLA_FLAGS", "DLCLI_COMPILE_CACHE_SESSION", "XLA_FLAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    monkeypatch.setattr("atexit.register", lambda f: f)  # sessions here are published by hand
    return monkeypatch


def test_the_default_folder_is_under_the_users_cache_and_keyed_by_tensorflow_and_machine(clean_env, tmp_path):
    session = compile_cache.start()
    assert session.store.parent == tmp_path / "xdg" / "dlcli" / "xla"
    assert session.store.name == f"tf-{compile_cache.tensorflow_version()}-{compile_cache.machine_fingerprint()}"
    assert os.environ["TF_XLA_FLAGS"] == f"{compile_cache.FLAG}={session.folder}"
    assert session.folder.parent == session.store
    session.publish()
    assert not session.folder.exists()


def test_an_upgrade_or_another_machine_gets_a_folder_of_its_own(clean_env):
    first = compile_cache.start()
    first.publish()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compile_cache, "tensorflow_version", lambda: "2.99.0")
        upgraded = compile_cache.start()
        upgraded.publish()
    assert upgraded.store != first.store and upgraded.store.name.startswith("tf-2.99.0-")
    fingerprint = compile_cache.machine_fingerprint()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compile_cache, "_cpu_description", lambda: ["model name: another CPU", "flags: sse2"])
        assert compile_cache.machine_fingerprint() != fingerprint
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compile_cache, "_nvidia_gpus", lambda: ["NVRM version: 550", "Model: NVIDIA H100"])
        assert compile_cache.machine_fingerprint() != fingerprint
    clean_env.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
    assert compile_cache.machine_fingerprint() != fingerprint


def test_a_worker_makes_its_own_folder_and_the_users_flags_are_kept(clean_env):
    clean_env.setenv("TF_XLA_FLAGS", "--tf_xla_min_cluster_size=2")
    parent = compile_cache.start()
    inherited = os.environ["TF_XLA_FLAGS"]
    assert inherited.startswith("--tf_xla_min_cluster_size=2 ")
    child = compile_cache.start()  # what a spawned worker does with the inherited environment
    assert child.folder != parent.folder
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_min_cluster_size=2 {compile_cache.FLAG}={child.folder}"
    clean_env.setenv(compile_cache.ENV, "off")  # an inherited folder is dropped when off, too
    assert compile_cache.start() is None
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_min_cluster_size=2"
    for session in (parent, child):
        session.publish()


def test_the_users_own_tensorflow_cache_flag_wins(clean_env, tmp_path):
    clean_env.setenv("TF_XLA_FLAGS", f"{compile_cache.FLAG}={tmp_path / 'theirs'}")
    assert compile_cache.start() is None
    assert not (tmp_path / "xdg").exists()


def test_publish_moves_new_entries_with_their_checksums_and_abandoned_folders_go(clean_env, tmp_path):
    session = compile_cache.start()
    (session.folder / "xla_compile_cache__1__2__XLA_CPU_JIT.pb").write_bytes(b"compiled")
    (session.folder / "xla_compile_cache__1__2__XLA_CPU_JIT.pb.tmp123").write_bytes(b"half")  # TensorFlow's
    assert session.publish() == 1
    stored = session.store / "xla_compile_cache__1__2__XLA_CPU_JIT.pb"
    assert stored.read_bytes() == b"compiled"
    digest, size, mtime = Path(str(stored) + ".sha256").read_text().split()
    assert (digest, int(size), int(mtime)) == (compile_cache._digest(b"compiled"), 8, stored.stat().st_mtime_ns)
    dead = session.store / f"{compile_cache.SESSION_PREFIX}{__import__('socket').gethostname()}-999999999-x"
    dead.mkdir()
    later = compile_cache.start()
    assert not dead.exists()
    assert later.linked == {stored.name}
    assert (later.folder / stored.name).read_bytes() == b"compiled"
    assert later.publish() == 0


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions that bind (not root)")
def test_a_read_only_cache_folder_is_one_warning(clean_env, tmp_path, caplog):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    clean_env.setenv(compile_cache.ENV, str(root))
    try:
        assert compile_cache.start() is None
    finally:
        root.chmod(0o700)
    assert [r.getMessage() for r in caplog.records if "not writable" in r.getMessage()]


def test_the_cache_is_trimmed_to_its_limit_other_versions_first_then_the_oldest(clean_env, tmp_path):
    # Faults: trimming newest first, or this version's entries before an old version's,
    # removes what this process just compiled; trimming another machine's folder first
    # (a shared root) removes its newest entries; a loose glob deletes the user's files.
    session = compile_cache.start()
    root = session.store.parent
    version = compile_cache.tensorflow_version()
    upgraded_from = root / "tf-2.0.0-0123456789abcdef"
    other_machine = root / f"tf-{version}-fedcba9876543210"
    theirs = root / "tf-models"  # not dlcli's: a user's folder in a cache root they chose
    for folder in (upgraded_from, other_machine, theirs):
        folder.mkdir()
    (theirs / "saved_model.pb").write_bytes(b"x" * 5000)
    old_time = 1_700_000_000 * 10**9

    def entry(folder: Path, name: str, age: int) -> Path:
        path = folder / f"xla_compile_cache__{name}__1__XLA_CPU_JIT.pb"
        path.write_bytes(b"x" * 400)
        Path(str(path) + compile_cache.CHECKSUM).write_text(compile_cache._digest(path.read_bytes()))
        os.utime(path, ns=(old_time - age, old_time - age))
        return path

    stale = [entry(upgraded_from, f"stale{i}", age=0) for i in range(2)]  # newest of all, but stale
    older = entry(session.store, "older", age=10)
    newer = entry(session.store, "newer", age=5)
    their_newest = entry(other_machine, "theirs", age=1)
    (session.folder / "xla_compile_cache__fresh__1__XLA_CPU_JIT.pb").write_bytes(b"x" * 400)
    clean_env.setenv(compile_cache.MAX_MB_ENV, "0.0012")  # 1200 bytes: room for three entries
    assert session.publish() == 1
    left = {p.name.split("__")[1] for p in root.rglob("xla_compile_cache__*" + compile_cache.SUFFIX)}
    assert left == {"newer", "theirs", "fresh"}
    for gone in [*stale, older]:
        assert not Path(str(gone) + compile_cache.CHECKSUM).exists()
    assert Path(str(newer) + compile_cache.CHECKSUM).exists() and their_newest.exists()
    assert (theirs / "saved_model.pb").exists()
    # The limit's own input: megabytes >= 0 ("inf": none), or one warning and the default.
    clean_env.setenv(compile_cache.MAX_MB_ENV, "lots")
    warned = logging.Handler()
    warned.emit = lambda record: warnings.append(record.getMessage())
    warnings: list[str] = []
    compile_cache.log.addHandler(warned)  # the CLI's handler may keep records from the root (caplog)
    try:
        assert compile_cache.max_bytes() == compile_cache.DEFAULT_MAX_MB * 1_000_000
    finally:
        compile_cache.log.removeHandler(warned)
    assert len(warnings) == 1 and compile_cache.MAX_MB_ENV in warnings[0]
    clean_env.setenv(compile_cache.MAX_MB_ENV, "0")
    assert compile_cache.max_bytes() == 0
    clean_env.setenv(compile_cache.MAX_MB_ENV, "inf")
    assert compile_cache.max_bytes() == sys.maxsize


# -- start-up that does not grow with the cache (benchmarks/compile_cache.py) ---------------


def stored_entries(clean_env, count: int) -> compile_cache.Session:
    """A cache holding `count` entries stored by a process, and a session that stored them."""
    session = compile_cache.start()
    for i in range(count):
        (session.folder / f"xla_compile_cache__{i}__2__XLA_CPU_JIT.pb").write_bytes(b"compiled %d" % i)
    assert session.publish() == count
    return session


def test_a_start_reads_no_entry_and_takes_no_lock(clean_env, tmp_path, monkeypatch):
    # Fault: hashing every entry at every start (0.3.1: 0.65 s at 580 MB) or holding the
    # exclusive lock while checking (every --jobs worker starting waits for the others).
    store = stored_entries(clean_env, 5).store
    monkeypatch.setattr(compile_cache, "_digest", lambda data: pytest.fail("a start hashed an entry"))
    monkeypatch.setattr(compile_cache, "_lock", lambda store: pytest.fail("a start took the lock"))
    later = compile_cache.start()
    assert len(later.linked) == 5 and len(list(store.glob("*.pb"))) == 5


def test_a_record_of_0_3_1_is_checked_by_its_hash_once_then_by_its_size_and_time(clean_env, tmp_path):
    store = stored_entries(clean_env, 1).store
    [entry] = store.glob("*.pb")
    record = Path(str(entry) + compile_cache.CHECKSUM)
    record.write_text(compile_cache._digest(entry.read_bytes()))  # as dlcli 0.3.1 wrote it
    assert compile_cache.start().linked == {entry.name}
    assert record.read_text().split()[1:] == [str(entry.stat().st_size), str(entry.stat().st_mtime_ns)]
    # A changed entry (same size, another time stamp) is left out, with nothing deleted at start.
    entry.write_bytes(b"compiled X")
    later = compile_cache.start()
    assert later.linked == set() and entry.exists()


def test_records_are_as_readable_as_their_entries(clean_env, tmp_path):
    # Fault: records written 0600 (mkstemp's mode): another user sharing the folder cannot
    # read them, takes valid entries for damaged ones and compiles again.
    store = stored_entries(clean_env, 1).store
    [entry] = store.glob("*.pb")
    assert Path(str(entry) + compile_cache.CHECKSUM).stat().st_mode & 0o777 == entry.stat().st_mode & 0o666


def test_an_entry_this_user_cannot_read_is_skipped_not_deleted(clean_env, tmp_path, monkeypatch):
    store = stored_entries(clean_env, 2).store
    theirs = sorted(store.glob("*.pb"))[0]
    real = os.access
    monkeypatch.setattr(compile_cache.os, "access", lambda path, mode: Path(path) != theirs and real(path, mode))
    later = compile_cache.start()
    assert theirs.name not in later.linked and len(later.linked) == 1
    (later.folder / "xla_compile_cache__new__2__XLA_CPU_JIT.pb").write_bytes(b"new")
    assert later.publish() == 1  # storing (under the lock) leaves it alone too
    assert theirs.exists() and Path(str(theirs) + compile_cache.CHECKSUM).exists()
