"""`dlcli diagnose RUN`: the training problem a run shows, its evidence and the fix."""

from __future__ import annotations

import json

import click


@click.command("diagnose")
@click.argument("run", type=click.Path())
@click.option("--json", "as_json", is_flag=True,
              help="Print the findings as JSON on stdout (an object; a list for a comparison's folder).")  # fmt: skip
def diagnose(run: str, as_json: bool) -> None:
    """Name a run's training problem, with its evidence and the lecture's fix.

    RUN is a run's checkpoint folder (checkpoints/<run>), or a comparison's
    (checkpoints/compare/<set>): then every run in it, grouped by variant. Reads
    the run's records only (run.json and its logged scalars: no training, no
    TensorFlow) and checks them for: divergence, exploding and vanishing
    gradients, dead (ReLU) and saturated (sigmoid) units, a loss stuck at chance,
    slow convergence, an oscillating loss and over-fitting. Each finding gives its
    layers and steps, the run's own numbers, and the fix as a dlcli command; a run
    with none is healthy. Thresholds and their reasons: docs/diagnosis.md.
    """
    from dlcli import diagnosis

    folders = diagnosis.run_folders(run)
    comparison = folders != [diagnosis.Path(run)]
    found = [diagnosis.diagnose(folder) for folder in folders]
    if as_json:
        click.echo(json.dumps(diagnosis.to_json(found, comparison=comparison), indent=2))
    else:
        click.echo(diagnosis.text(found, comparison=comparison))
