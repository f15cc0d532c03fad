"""`dlcli inspect RUN`: a run's per-layer diagnostics as a table and a depth profile."""

from __future__ import annotations

import click

from dlcli.cli.options import check_format, plot_option


@click.command("inspect")
@click.argument("run", type=click.Path())
@click.option("--step", type=click.IntRange(min=0), default=None,
              help="Show the logged step nearest to this one instead of the first and the last.")  # fmt: skip
@click.option("--format", "fmt", default="github", callback=check_format, metavar="FORMAT",
              help="Any tabulate format (github, plain, latex, ...), or json / csv with the raw numbers.")  # fmt: skip
@click.option("--wide", is_flag=True,
              help="Every column even where it does not fit the terminal. Without it a terminal gets the table "
              "as wide as it is; a pipe or a file always gets every column, and json/csv every key.")  # fmt: skip
@plot_option("Save the depth profile (per layer: weight-gradient norm, activation std, saturated/dead "
             "fraction) as a PNG (needs matplotlib).")  # fmt: skip
def inspect_run(run: str, step: int | None, fmt: str, wide: bool, plot: str | None) -> None:
    """Per-layer diagnostics of a run: why it trains, layer by layer.

    RUN is a run's checkpoint folder (checkpoints/<run>, or a comparison's run
    folder). For each layer, at the first and the last logged step: the weight-
    gradient norm, the weight norm and how far the last window moved it, the
    pre-activation percentiles, the activations' mean and std, the std of the
    gradient back-propagated to them, and the saturated (sigmoid-like) or dead
    (ReLU-like) fraction, measured on 256 training examples. Vanishing gradients
    show as norms shrinking toward the input.

    Columns: grad norm ||dL/dW||; weight norm ||W||; update ratio ||W_t - W_p|| / ||W_p||
    since the previous logged step p; preact p15/p50/p85 of the activation's input;
    act mean/std; backprop std of dL/d(activation); saturated: share of entries whose
    activation slope is under 10% of its maximum; dead: share of units that are 0 on
    every probe example; unit p15/p50/p85: the percentiles of one unit's input (the
    layer's first) over the probe examples. "-": does not apply.
    """
    from dlcli import inspection, report

    inspection.check(run)  # the refusals that need no TensorFlow, before it loads
    from dlcli.core.tf_setup import tensorflow

    tensorflow()  # reading event files loads it anyway; this way its start-up noise stays quiet
    found = inspection.load(run)
    rows = found.rows(inspection.chosen_steps(found, step))
    click.echo(report.layers_table(rows, fmt, width=report.terminal_width(wide)))
    if plot:
        steps = " and ".join(str(s) for s in sorted({r["step"] for r in rows}))
        report.depth_profile_plot(rows, plot, title=f"{found.run}: depth profile at step {steps}")
        click.echo(f"plot: {plot}", err=True)
