"""`dlcli board`: TensorBoard on the runs, or a table of them (--list)."""

from __future__ import annotations

import sys

import click

from dlcli.cli.options import (
    logdir_option,
)
from dlcli.wording import counted


@click.command()
@logdir_option("The folder of runs to show.")
@click.option(
    "--host",
    default="127.0.0.1",
    help="Address to serve on; 0.0.0.0 serves every interface (anyone on the network can read the logs).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port; 0 takes any free port. A busy explicit port is an error.  [default: 6006 or the next free one]",
)
@click.option("--list", "list_only", is_flag=True, help="Print a table of the runs and their latest values; no server.")
@click.option("--wide", is_flag=True,
              help="With --list: every column even where it does not fit the terminal (a pipe or a file always "
              "gets every column).")  # fmt: skip
def board(logdir: str, host: str, port: int | None, list_only: bool, wide: bool) -> None:
    """Show every run in TensorBoard (loss, accuracy, histograms, hparams).

    Serves on 127.0.0.1 until Ctrl-C. With --list, prints each run's last step and
    latest loss and accuracy instead, without starting a server.
    """
    from dlcli import board as tb
    from dlcli.core.tf_setup import tensorflow

    tensorflow()  # TensorBoard loads it anyway; this way its start-up noise stays quiet
    if list_only:
        from dlcli.report import terminal_width, wrap_line

        width = terminal_width(wide)
        click.echo(tb.runs_table(tb.list_runs(logdir), width=width))
        click.echo(wrap_line(tb.LEGEND, width), err=True)  # which loss is which; stdout stays the table
        return
    runs = tb.check_logdir(logdir)
    if host in tb.PUBLIC_HOSTS:
        click.echo(
            f"warning: serving on every interface ({host or '*'}): anyone on the network can read these logs",
            err=True,
        )
    # From here on Ctrl-C or SIGTERM, whenever it comes, is a clean stop (exit 0).
    with tb.stop_on_signals():
        try:
            url = tb.serve(logdir, host=host, port=port)
            click.echo(f"TensorBoard {url}  ({counted(len(runs), 'run')} in {logdir})")
            for run in runs:
                click.echo(f"  {run}")
            sys.stdout.flush()  # the URL must reach a pipe now, not when the server stops
            click.echo("Press Ctrl-C to stop.", err=True)
            tb.wait_forever()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
