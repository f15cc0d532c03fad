"""`dlcli xor`, `dlcli mnist` and `dlcli resume`: one run each, trained through
`dlcli.core.session`, its result printed."""

from __future__ import annotations

import click

from dlcli import settings
from dlcli.cli.options import (
    command_options,
    command_settings,
    distribute_options,
    distribute_spec,
    plot_option,
    progress_bar,
    run_options,
    setting_type,
)
from dlcli.config import RunConfig


def _print_result(result, *, as_json: bool, table: bool) -> None:
    from dlcli import report

    if as_json:
        click.echo(report.to_json(result.summary()))
        return
    if table and result.truth_table:
        click.echo(report.truth_table(result.truth_table))
        click.echo()
    click.echo(report.run_summary(result))


def _train(config: RunConfig, *, auto_name: bool, quiet: bool, as_json: bool, distribute=None, plot=None) -> None:
    from dlcli.api import check_before_training

    check_before_training(config, auto_name)
    from dlcli.core import session

    result = session.train(config, auto_name=auto_name, progress=progress_bar(quiet), distribute=distribute)
    _print_result(result, as_json=as_json, table=True)
    _plot_result(result, plot)


def _plot_result(result, plot: str | None) -> None:
    """--plot: XOR's decision boundary to FILE, or MNIST's confusion matrix and most
    confident mistakes to PREFIX-confusion.png and PREFIX-mistakes.png."""
    if not plot:
        return
    from dlcli import report

    if result.boundary is not None:
        title = f"{result.run}: final accuracy {result.accuracy:.2f} and loss {result.loss:.4f} on the 4 points"
        report.boundary_plot(result.boundary, [row["target"] for row in result.truth_table], plot, title=title)
        written = [plot]
    else:
        written = report.mistakes_plots(result.mistakes, plot)
    click.echo(f"plot: {', '.join(written)}", err=True)


def _run_config(task: str, options: dict) -> tuple[RunConfig, bool]:
    """The run `dlcli TASK` was asked for (its options taken out of `options`), and whether
    its name is the automatic one: built by the code `dlcli.TASK(...)` uses (dlcli.api)."""
    from dlcli.api import command_config

    return command_config(task, command_settings(task, options), name=options.pop("name"),
                          logdir=options.pop("logdir"), checkpoint_dir=options.pop("checkpoint_dir"))  # fmt: skip


@click.command()
@command_options("xor")
@run_options
@click.option("--manual", is_flag=True, help="Forward-propagate the lecture's hand-set gates instead of training.")
@plot_option("Save the decision boundary (and what each first-layer unit sees) as a PNG (needs matplotlib).")
def xor(manual: bool, as_json: bool, quiet: bool, plot: str | None, **options) -> None:
    """Learn XOR: one logistic unit fails, a 2- or 4-layer sigmoid net solves it.

    Trains on the four XOR points with full-batch gradient descent (Labs 09-1 ... 09-4)
    and prints the truth table. TensorBoard gets loss and accuracy plus histograms of
    every layer's weights, biases and activations. `normal` init here is N(0, 1), the
    lab's tf.random.normal.

    Try: `dlcli xor --layers 1` (stuck at accuracy <= 0.75) and `dlcli xor --manual`.
    """
    if manual:
        from dlcli import report
        from dlcli.core import gates

        rows = gates.truth_table()
        if as_json:
            accuracy = sum(r["prediction"] == r["target"] for r in rows) / len(rows)
            click.echo(report.to_json({"manual": True, "accuracy": accuracy, "rows": rows}))
        else:
            click.echo("Lecture 9's gates: W1=[5,5] b1=-8, W2=[-7,-7] b2=3, W3=[-11,-11] b3=6\n")
            click.echo(report.truth_table(rows))
        if plot:
            from dlcli.core import pictures

            boundary = pictures.boundary(gates.manual_network())
            report.boundary_plot(boundary, [r["target"] for r in rows], plot, title="lecture 9's hand-set gates")
            click.echo(f"plot: {plot}", err=True)
        return
    config, auto = _run_config("xor", options)
    _train(config, auto_name=auto, quiet=quiet, as_json=as_json, plot=plot)


@click.command()
@command_options("mnist")
@run_options
@distribute_options
@plot_option("Save the confusion matrix and the most confident mistakes as PREFIX-confusion.png and "
             "PREFIX-mistakes.png (needs matplotlib).", prefix=True)  # fmt: skip
def mnist(as_json: bool, quiet: bool, strategy: str, devices, cpu_replicas: int, plot: str | None, **options) -> None:
    """Train an MLP on MNIST or Fashion-MNIST (Labs 10-1 ... 10-4).

    The defaults are Lab 10-2-1: two hidden layers of 256 ReLU units, Xavier init,
    Adam 0.001, batch 128, one epoch. Prints the test accuracy and loss; checkpoints
    are written as it trains, so an interrupted run continues with `dlcli resume`.
    """
    config, auto = _run_config("mnist", options)
    distribute = distribute_spec(strategy, devices, cpu_replicas)
    _train(config, auto_name=auto, quiet=quiet, as_json=as_json, distribute=distribute, plot=plot)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("checkpoint_dir", type=click.Path(file_okay=False))
@click.option("--epochs", type=setting_type(settings.BY_NAME["epochs"], None), default=None,
              help="Raise the run's target to this many epochs.  [default: the run's own target]")
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON summary on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@distribute_options
@plot_option("XOR runs: save the decision boundary as a PNG. MNIST runs: PREFIX-confusion.png and "
             "PREFIX-mistakes.png (needs matplotlib).")  # fmt: skip
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def resume(checkpoint_dir: str, epochs: int | None, as_json: bool, quiet: bool, strategy: str, devices,
           cpu_replicas: int, plot: str | None, extra: tuple) -> None:  # fmt: skip
    """Continue an interrupted xor or mnist run exactly where it stopped.

    Rebuilds the run from CHECKPOINT_DIR/run.json and its latest checkpoint and trains
    on to the run's target: the same weights and accuracy as a run never interrupted.
    """
    if extra:  # the network comes from run.json: its options are refused, not ignored
        flag = extra[0].split("=")[0]
        why = settings.fixed_on_resume(flag) if flag.startswith("--") else None
        if why:
            raise click.UsageError(why)
        raise click.UsageError(
            f"unexpected argument {extra[0]!r}; resume takes --epochs, --json, --quiet and the --strategy options"
        )
    distribute = distribute_spec(strategy, devices, cpu_replicas)
    from dlcli.core.runs import RunFolder

    RunFolder.for_resume(checkpoint_dir, epochs)  # every refusal that needs no TensorFlow, before it loads
    from dlcli.core import session

    result = session.resume(checkpoint_dir, epochs=epochs, progress=progress_bar(quiet), distribute=distribute)
    if not result.trained_steps and not as_json:
        click.echo(f"run {result.run} is already finished ({result.epochs} epochs); raise the target with --epochs N")
    _print_result(result, as_json=as_json, table=True)
    _plot_result(result, plot)


