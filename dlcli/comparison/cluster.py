"""`dlcli compare --cluster ADDRESS`: the runs of a comparison as tasks on a Dask cluster.

Dask distributed, not a scheduler of our own: its scheduler places each run on a free
worker, notices a worker that dies and gives its run to another, and its workers are
started the usual way on any machine that has dlcli and the data:

    dask scheduler                                              # on the head machine
    dask worker tcp://HEAD:8786 --nthreads 1 --nworkers 4       # on each machine
    CUDA_VISIBLE_DEVICES=0 dask worker tcp://HEAD:8786 --nthreads 1 --resources GPU=1   # one per GPU

`--nthreads 1`: one run at a time per worker process (TensorFlow uses the cores
within it). When any worker offers a GPU resource, runs go to GPU workers only. This module is imported only when --cluster is given, and it is the only
one that imports `distributed` (the `cluster` extra).

The driver owns the ledger: workers only train and return each run's ledger entry.
Run folders end up under the driver's --checkpoint-dir and --logdir either way:
- shared file system (the driver's folders are visible at the same paths on the
  workers, as on one machine or with NFS): workers train in place, and a run whose
  worker died resumes from its last checkpoint on the next one;
- no shared file system: a worker trains in a temporary folder and ships the finished
  run folders back with its entry; a run whose worker died starts over on the next
  one (the same result either way: a run depends on its configuration alone).
"""

from __future__ import annotations

import io
import itertools
import os
import secrets
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from dlcli.core.data import _reason  # an exception's first line, shortened (NumPy only)
from dlcli.errors import ConfigError, DlcliError

EXTRA = "pip install 'dlcli[cluster]'"


def check_installed() -> None:
    """A one-line error naming the extra when Dask distributed is not installed."""
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise ConfigError(f"--cluster needs Dask distributed: {EXTRA} (or pip install distributed)")


class DaskRunner:
    """The runs of a comparison as Dask tasks (a `runners.Runner`); `files` is "auto",
    "shared" or "ship"."""

    def __init__(self, address: str, *, files: str = "auto", connect_timeout: float = 30):
        self.address, self.files, self.connect_timeout = address, files, connect_timeout
        self.where = f", on the Dask cluster at {address}"

    def close(self) -> None:
        """Nothing to stop: each run() connects and disconnects; the cluster is the user's."""

    def run(self, tasks: Iterator) -> Iterator[tuple]:
        tasks = iter(tasks)
        first = next(tasks, None)
        if first is None:
            return
        from distributed import Client

        try:
            client = Client(self.address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise DlcliError(
                f"cannot reach the Dask scheduler at {self.address} ({_reason(exc)}); start it with `dask scheduler` "
                "and check the address"
            ) from None
        try:
            shared = self._preflight(client, first.config)
            yield from self._submit_all(client, itertools.chain([first], tasks), shared)
        finally:
            client.close()

    def _submit_all(self, client, tasks: Iterator, shared: bool) -> Iterator[tuple]:
        """Every run as a task at once (Dask's scheduler places them); each run's entry
        as it finishes, its folders moved here first when they were shipped."""
        from distributed import as_completed

        # Workers started with `--resources GPU=1` (one per GPU, each with its own
        # CUDA_VISIBLE_DEVICES) get the runs, one at a time each; otherwise every
        # worker is a CPU worker, and `--nthreads 1` makes it one run at a time.
        workers = client.scheduler_info()["workers"].values()
        resources = {"GPU": 1} if any(w.get("resources", {}).get("GPU") for w in workers) else None
        futures = {}
        for task in tasks:
            if shared:
                # The driver's folders at the paths the workers see them: a worker's own
                # current folder is not the driver's, so --checkpoint-dir and --logdir
                # (relative by default) go as absolute paths (the ledger key leaves both out).
                task = replace(task, config=replace(task.config, checkpoint_dir=os.path.abspath(task.config.checkpoint_dir),
                                                    logdir=os.path.abspath(task.config.logdir)))  # fmt: skip
            future = client.submit(run_on_worker, task, shared, key=f"dlcli-{task.config.name}-{secrets.token_hex(4)}",
                                   pure=False, resources=resources)  # fmt: skip
            futures[future] = task
        for future in as_completed(futures, loop=client.loop):
            task = futures[future]
            try:
                entry, worker, archive = future.result()
            except DlcliError:
                raise
            except Exception as exc:
                raise DlcliError(f"{task.config.name} failed on the cluster: {_reason(exc)}") from None
            if archive is not None:
                _unpack(archive, task.config)
            yield task, entry

    def _preflight(self, client, config) -> bool:
        """Every worker can import dlcli and read the data; returns whether the driver's
        folders are shared with the workers (a marker file seen at the same path)."""
        # In the nearest folder that exists already: a refused comparison writes nothing.
        folder = next(p for p in [Path(config.checkpoint_dir).resolve(), *Path(config.checkpoint_dir).resolve().parents]
                      if p.is_dir())  # fmt: skip
        marker = folder / f".dlcli-cluster-{secrets.token_hex(8)}"
        marker.write_text("written by the dlcli compare driver\n")
        try:
            answers = client.run(_probe_function(), str(marker), config.data.path if config.task == "mnist" else None)
        finally:
            marker.unlink(missing_ok=True)
        if not answers:
            raise DlcliError(f"the Dask cluster at {self.address} has no workers; start some with `dask worker {self.address}`")
        for worker, answer in sorted(answers.items()):
            if answer["problem"]:
                raise DlcliError(f"worker {worker}: {answer['problem']}")
        shared = all(answer["sees_marker"] for answer in answers.values())
        if self.files == "shared" and not shared:
            raise DlcliError("--cluster-files shared, but some workers do not see the driver's --checkpoint-dir")
        return shared and self.files != "ship"


def _probe_function():
    """A function that Dask ships by value (it is defined in a function), so it runs
    even on a worker where `import dlcli` fails, and reports that as the problem."""

    def probe(marker: str, data_path):
        import importlib
        import os

        problem = None
        try:
            importlib.import_module("dlcli.comparison.runners")
        except Exception as exc:  # noqa: BLE001 - any import failure is the answer
            problem = f"cannot import dlcli ({type(exc).__name__}: {exc}); install dlcli there (same version)"
        if problem is None and data_path is not None and not os.access(data_path, os.R_OK):
            problem = f"cannot read the data at {data_path}; copy it there at the same path"
        return {"problem": problem, "sees_marker": os.path.exists(marker)}

    return probe


def run_on_worker(task, shared: bool):
    """A Dask task: train one run, return (ledger entry, worker address, archive or None)."""
    from distributed import get_worker

    from dlcli.comparison import runners
    from dlcli.core.reuse import Reuse

    worker = get_worker()
    reuse = getattr(worker, "_dlcli_reuse", None)
    if reuse is None:
        reuse = worker._dlcli_reuse = Reuse()  # this worker's data and compiled loops, kept between runs
    if shared:
        return runners.execute(task, reuse=reuse), worker.address, None
    with tempfile.TemporaryDirectory(prefix="dlcli-run-") as tmp:
        local = replace(task.config, checkpoint_dir=f"{tmp}/checkpoints", logdir=f"{tmp}/logs")
        entry = runners.execute(replace(task, config=local, start_over=True), reuse=reuse)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(Path(local.checkpoint_dir) / local.name, arcname="checkpoints", filter=_without_lock)
            tar.add(Path(local.logdir) / local.name, arcname="logs")
        return entry, worker.address, buffer.getvalue()


def _without_lock(info):
    return None if info.name.endswith("/.lock") else info


def _unpack(archive: bytes, config) -> None:
    """Put a shipped run's folders where the driver keeps them (RunFolder points its
    record at them, so `dlcli resume` of it works on the driver)."""
    from dlcli.core.runs import RunFolder

    Path(config.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dlcli-unpack-", dir=Path(config.checkpoint_dir)) as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        RunFolder.move_in(Path(tmp) / "checkpoints", Path(tmp) / "logs", config)
