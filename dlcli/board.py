"""TensorBoard on the runs, started through TensorBoard's own Python API.

`tensorboard.program` serves from this process (no `tensorboard` binary on PATH is
needed). `list_runs` reads the event files directly, for `dlcli board --list`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlcli.errors import DlcliError

SPLITS = ("train", "test")
PUBLIC_HOSTS = ("0.0.0.0", "::", "")


@dataclass
class RunSummary:
    run: str  # the run's folder relative to the logdir
    step: int  # the last step with a scalar
    values: dict  # {"train/loss": 0.1, "test/accuracy": 0.9, ...} latest values
    images: list = field(default_factory=list)  # image tags ("train/boundary", ...)


def find_runs(logdir: Path) -> list[str]:
    """Run folders below `logdir`: the folder holding train/ and test/, or event files
    (but for a comparison's folder, whose only event file is its charts' layout)."""
    logdir = Path(logdir)
    runs = set()
    for event in logdir.rglob("events.out.tfevents.*"):
        if _only_layout(event):
            continue
        folder = event.parent
        if folder.name in SPLITS and folder != logdir:
            folder = folder.parent
        runs.add(folder.relative_to(logdir).as_posix() or ".")
    return sorted(runs)


def _only_layout(path: Path) -> bool:
    """An event file that holds a Custom Scalars layout and nothing else: named so by
    `write_custom_scalars`, or (written by an older dlcli) found so by reading it."""
    from dlcli.core.summaries import LAYOUT_SUFFIX

    if path.name.endswith(LAYOUT_SUFFIX):
        return True
    if path.parent.name in SPLITS or path.stat().st_size > 65536:
        return False  # a layout is a few hundred bytes
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.custom_scalar.metadata import CONFIG_SUMMARY_TAG

    tags = {value.tag for event in EventFileLoader(str(path)).Load() for value in event.summary.value}
    return tags == {CONFIG_SUMMARY_TAG}


def _scope(run: str) -> str:
    """The prefix of a comparison run's scalar tags (`compare/<label>/<run>`: `<label>/`)."""
    parts = run.split("/")
    return f"{parts[1]}/" if len(parts) >= 3 and parts[0] == "compare" else ""


def check_logdir(logdir: Path) -> list[str]:
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise DlcliError(
            f"no log folder at {logdir.resolve()}; make a run first (e.g. `dlcli xor`) or pass --logdir"
        )
    runs = find_runs(logdir)
    if not runs:
        raise DlcliError(
            f"no TensorBoard runs in {logdir.resolve()}; make one first (e.g. `dlcli xor`) or pass --logdir"
        )
    return runs


def list_runs(logdir: Path) -> list[RunSummary]:
    """The latest loss and accuracy of every run, read from its event files."""
    from dlcli.core.summaries import read_images, read_scalars

    summaries = []
    for run in check_logdir(logdir):
        folder = Path(logdir) / run
        values, last_step, images = {}, 0, []
        for split in SPLITS:
            if not (folder / split).is_dir():
                continue
            for tag, series in read_scalars(folder, split, _scope(run)).items():
                step, value = series[-1]
                values[f"{split}/{tag}"] = value
                last_step = max(last_step, step)
            images += [f"{split}/{tag}" for tag in read_images(folder, split)]
        summaries.append(RunSummary(run=run, step=last_step, values=values, images=images))
    return summaries


SCALARS = ["train/loss", "train/accuracy", "test/loss", "test/accuracy"]
# Which loss and accuracy each column is: the table's full headers, and a terminal's short ones.
HEADERS = {"train/loss": "train/loss (window mean)", "train/accuracy": "train/accuracy (window mean)",
           "test/loss": "test/loss (test set)", "test/accuracy": "test/accuracy (test set)"}  # fmt: skip
SHORT_HEADERS = {"train/loss": "train loss", "train/accuracy": "train acc", "test/loss": "test loss",
                 "test/accuracy": "test acc"}  # fmt: skip
LEGEND = (
    "train: the mean over the training steps of the last logging window (with dropout on, if any); "
    "test: the whole test set at the last epoch end (mnist). A run's printed result is its final evaluation: "
    "the test set (mnist) or the 4 points (xor), so an xor run's train loss is not its printed loss."
)


def runs_table(summaries: list[RunSummary], *, width: int | None = None) -> str:
    """`board --list`: every run's last step and latest values. `width` (a
    terminal's): short headers, and while too wide the image tags, the training
    values and the step go, in that order, then long run names are wrapped;
    None: every column."""
    from dlcli import report

    headers = HEADERS if width is None else SHORT_HEADERS
    cells = {
        "run": [s.run for s in summaries],
        "step": [str(s.step) for s in summaries],
        **{headers[c]: [_fmt(s.values.get(c)) for s in summaries] for c in SCALARS},
        "images": [_images(s.images) for s in summaries],
    }
    if width is None:
        from tabulate import tabulate

        return tabulate(list(zip(*cells.values())), headers=list(cells), tablefmt="github", disable_numparse=True)

    def narrower():
        yield cells
        for header in ("images", "train loss", "train acc", "step"):
            cells.pop(header)
            yield cells

    return report.fit(narrower(), "github", width)


def _images(tags: list[str]) -> str:
    """'boundary, boundary/hidden1_units' (tags without their split), or '-'."""
    return ", ".join(tag.split("/", 1)[1] for tag in tags) or "-"


def serve(logdir: Path, *, host: str, port: int | None, reload_interval: float = 5.0):
    """Start TensorBoard on a daemon thread; return its URL.

    `port` None scans upwards from 6006 for a free port; 0 lets the OS choose; any
    other busy port is an error.
    """
    from tensorboard import program

    tensorboard = program.TensorBoard()
    flags = dict(
        logdir=str(Path(logdir).resolve()),
        host=host,
        reload_interval=reload_interval,
        load_fast="false",  # one process: the Python data server, no helper binary
    )
    if port is not None:
        flags["port"] = port
    tensorboard.configure(**flags)
    try:
        return tensorboard.launch()
    except program.TensorBoardPortInUseError:
        raise DlcliError(
            f"port {port} is already in use; pick another with --port (or --port 0 for any free port)"
        ) from None
    except OSError as exc:
        raise DlcliError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, Ctrl-C and SIGTERM raise KeyboardInterrupt, the server's clean
    stop; the handlers from before are put back after it.

    Python leaves SIGINT ignored when it was ignored at start-up, as it is for a
    command started in the background (`dlcli board &`, nohup, some CI runners):
    the server is stoppable all the same. Installed before the server starts, so a
    signal that comes early (while the URL is printed) stops it cleanly too. Put back,
    so a caller in the same process (a notebook, a test) keeps its own handlers."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def wait_forever() -> None:
    while True:
        time.sleep(3600)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"
