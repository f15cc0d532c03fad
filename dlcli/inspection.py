"""`dlcli inspect RUN`: a run's per-layer diagnostics, read back from its event files.

Every run logs `layers/<layer>/<quantity>` scalars (core.diagnostics) at step 0 and
at every logging step. This module finds a run's logs from its run folder, reads those
series and arranges them as one row per layer at the steps asked for: the first and
the last logged step, or the logged step nearest to the one given. Anything that
cannot be inspected is a DlcliError with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlcli.errors import RunError

PREFIX = "layers/"


@dataclass
class Inspection:
    """A run's per-layer series: {layer: {quantity: {step: value}}}, layers in depth order."""

    run: str
    logdir: Path
    steps: list[int]  # every step with diagnostics, ascending
    series: dict

    @property
    def layers(self) -> list[str]:
        return sorted(self.series, key=layer_order)

    def nearest_step(self, step: int) -> int:
        """The logged step nearest to `step` (the earlier one on a tie); a RunError
        naming the logged range when `step` lies outside it."""
        first, last = self.steps[0], self.steps[-1]
        if not first <= step <= last:
            raise RunError(
                f"step {step} is outside the logged steps of {self.run} ({first} to {last}, "
                f"{len(self.steps)} logged); choose a --step in that range"
            )
        return min(self.steps, key=lambda s: (abs(s - step), s))

    def rows(self, steps: list[int]) -> list[dict]:
        """One row per (step, layer): {"step", "layer", quantity: value or None}."""
        from dlcli.core.diagnostics import QUANTITIES

        rows = []
        for step in steps:
            for layer in self.layers:
                values = self.series[layer]
                rows.append({"step": step, "layer": layer, **{q: values.get(q, {}).get(step) for q in QUANTITIES}})
        return rows


def check(path):
    """The run folder at `path`, after the checks that need no TensorFlow: a run folder
    whose log folder holds event files."""
    from dlcli.core.runs import RunFolder

    run = RunFolder.open(Path(path))
    logdir = run.logdir
    if not logdir.is_dir():
        raise RunError(f"run {run.name} has no logs: its log folder {logdir} is missing (moved or deleted?)")
    if not any(p.is_file() for p in (logdir / "train").rglob("events.out.tfevents.*")):
        raise _nothing_logged(run, path)
    return run


def _nothing_logged(run, path) -> RunError:
    return RunError(
        f"run {run.name} has no logs in {run.logdir / 'train'} yet (it stopped before logging anything); "
        f"resume it with `dlcli resume {path}`, then inspect it"
    )


def load(path) -> Inspection:
    """The run in checkpoint folder `path`, its per-layer series read from its logs."""
    run = check(path)
    logdir = run.logdir
    from dlcli.core.summaries import read_scalars

    scalars = read_scalars(logdir, "train")
    if not scalars:
        raise _nothing_logged(run, path)
    series: dict = {}
    for tag, points in scalars.items():
        if tag.startswith(PREFIX) and tag.count("/") == 2:
            _, layer, quantity = tag.split("/")
            series.setdefault(layer, {})[quantity] = dict(points)
    if not series:
        version = (run.record.get("versions") or {}).get("dlcli", "an older version")
        raise RunError(
            f"run {run.name} was made by dlcli {version} before per-layer diagnostics existed; "
            "rerun it to inspect its layers"
        )
    steps = sorted({step for quantities in series.values() for points in quantities.values() for step in points})
    return Inspection(run=run.name, logdir=logdir, steps=steps, series=series)


def chosen_steps(inspection: Inspection, step: int | None) -> list[int]:
    """The first and the last logged step, or the one nearest to `step`."""
    if step is not None:
        return [inspection.nearest_step(step)]
    return sorted({inspection.steps[0], inspection.steps[-1]})


def layer_order(layer: str) -> tuple:
    """hidden1, hidden2, ..., hidden10, output: the order of the layers in the net
    (a sort key; paper_plots uses it too)."""
    digits = layer[len("hidden") :]
    return (0, int(digits), layer) if layer.startswith("hidden") and digits.isdigit() else (1, 0, layer)
