"""Learning curves of a comparison's runs, read back from their TensorBoard event files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlcli.comparison.plan import Plan


@dataclass
class Curves:
    """{variant: {seed: [(step, value), ...]}} of one metric, read from the event files."""

    metric: str
    by_variant: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)


def learning_curves(the_plan: Plan) -> tuple[Curves, Curves]:
    """Accuracy and loss against the step for every run of the plan, from its own
    TensorBoard event files: the test-subset points of mnist runs (with the final
    test-set value at each epoch end), the training series of XOR (its test set)."""
    from dlcli.core.summaries import read_scalars

    accuracy, loss = Curves("accuracy"), Curves("loss")
    for planned in the_plan.runs:
        logdir = Path(planned.config.logdir) / planned.config.name
        if the_plan.task == "mnist":
            series = read_scalars(logdir, "test", the_plan.scope)
            acc, los = series.get("subset/accuracy", []), series.get("subset/loss", [])
        else:
            series = read_scalars(logdir, "train", the_plan.scope)
            acc, los = series.get("accuracy", []), series.get("loss", [])
        accuracy.by_variant.setdefault(planned.variant.name, {})[planned.seed] = acc
        loss.by_variant.setdefault(planned.variant.name, {})[planned.seed] = los
    return accuracy, loss
