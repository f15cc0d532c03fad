"""What one process may reuse across the runs it trains, held in one explicit object.

Loading MNIST, copying it into tensors and compiling a training step each cost about a
second; `dlcli compare` trains many runs of one architecture on one data set. Whoever
trains several runs (compare, the tests, a benchmark) makes a `Reuse` and passes it to
`session.train`/`session.resume`; a single run gets a fresh one and reuses nothing.
Nothing is kept in module globals, and every decision to reuse compares the whole
relevant configuration (`loop_key`), never object identity or a hand-kept tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from dlcli.config import DataSpec, RunConfig


def loop_key(config: RunConfig) -> RunConfig:
    """The configuration with every field blanked that a compiled loop does not depend on.

    Two runs whose keys are equal can share one compiled loop, restarted from the new
    run's initial weights: they differ only in their names and folders, the initial
    weights (init, seed), the learning rate (an optimizer variable the compiled step
    reads, set again by the restart like every other optimizer variable) and how long
    and how often they log and save. Any other field, including one added to the
    config later, keeps them apart.
    """
    return replace(
        config,
        name="",
        logdir="",
        checkpoint_dir="",
        model=replace(config.model, init=""),
        train=replace(config.train, seed=0, lr=0.0, epochs=0, log_every=0, save_every=0, keep=0),
    )


# How many compiled loops a Reuse keeps, the least recently used going first. A
# comparison comes back to its architectures: every round of --seeds auto and every
# rung of --prune goes over the variants again, and a Lab's calls alternate; keeping
# only the last loop reused it between one variant's seeds only. A loop of an MLP holds
# a few MB (its model, optimizer and executables), so a grid's worth costs little.
MAX_LOOPS = 16


@dataclass
class Reuse:
    """Data sets, their training tensors and the compiled loops of this process."""

    datasets: dict[DataSpec, object] = field(default_factory=dict)  # {spec: Dataset}
    tensors: dict[DataSpec, tuple] = field(default_factory=dict)  # {spec: (x_train, y_train)}
    loops: dict[RunConfig, object] = field(default_factory=dict)  # {loop_key: TrainingLoop}, oldest use first

    @property
    def loop(self) -> tuple[RunConfig, object] | None:
        """(loop_key, TrainingLoop) of the loop used last, or None."""
        return next(reversed(self.loops.items()), None)

    def dataset(self, spec: DataSpec, load: Callable[[], object]):
        if spec not in self.datasets:
            self.datasets[spec] = load()
        return self.datasets[spec]

    def training_tensors(self, spec: DataSpec, make: Callable[[], tuple]) -> tuple:
        if spec not in self.tensors:
            self.tensors[spec] = make()
        return self.tensors[spec]

    def reusable_loop(self, config: RunConfig):
        """The loop of an earlier run whose compiled functions fit `config`, or None."""
        return self.loops.get(loop_key(config))

    def keep_loop(self, config: RunConfig, loop) -> None:
        key = loop_key(config)
        self.loops.pop(key, None)
        self.loops[key] = loop
        while len(self.loops) > MAX_LOOPS:
            del self.loops[next(iter(self.loops))]
