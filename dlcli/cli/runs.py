"""`dlcli xor`, `dlcli mnist` and `dlcli resume`: one run each, trained through
`dlcli.core.session`, its result printed."""

from __future__ import annotations

import click

from dlcli.cli.options import (
    POSITIVE,
    absolute_path,
    data_options,
    distribute_options,
    distribute_spec,
    model_options,
    plot_option,
    progress_bar,
    training_options,
)
from dlcli.config import (
    DataSpec,
    ModelSpec,
    RunConfig,
    TrainSpec,
)


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
        title = f"{result.run}: accuracy {result.accuracy:.2f} on the 4 points, loss {result.loss:.4f}"
        report.boundary_plot(result.boundary, [row["target"] for row in result.truth_table], plot, title=title)
        written = [plot]
    else:
        written = report.mistakes_plots(result.mistakes, plot)
    click.echo(f"plot: {', '.join(written)}", err=True)


def _train_spec(**options) -> TrainSpec:
    keys = ("optimizer", "lr", "epochs", "seed", "log_every", "save_every", "keep")
    return TrainSpec(**{k: options[k] for k in keys}, batch_size=options.get("batch_size", 0))


def _base_config(task: str, options: dict, model: ModelSpec, data: DataSpec) -> tuple[RunConfig, bool]:
    from dlcli.core.runs import default_run_name

    name = options["name"] or default_run_name(task)
    config = RunConfig(
        task=task,
        name=name,
        model=model,
        train=_train_spec(**options),
        data=data,
        logdir=options["logdir"],
        checkpoint_dir=options["checkpoint_dir"],
    )
    return config, options["name"] is None


@click.command()
@model_options(
    layers=4,
    units=10,
    activation="sigmoid",
    init="normal",
    layers_help="Dense (weight) layers, the output included: 1 = one logistic unit (fails), "
    "2 = Lab 09-2, 4 = Lab 09-3's wide & deep net.",
)
@training_options(optimizer="sgd", lr=0.01, epochs=20000, log_every=1000, save_every=0)
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
    model = ModelSpec(
        layers=options.pop("layers"), units=options.pop("units"),
        activation=options.pop("activation"), init=options.pop("init"),
    )  # fmt: skip
    config, auto = _base_config("xor", options, model, DataSpec(dataset="xor"))
    _train(config, auto_name=auto, quiet=quiet, as_json=as_json, plot=plot)


@click.command()
@model_options(
    layers=3,
    units=256,
    activation="relu",
    init="xavier",
    layers_help="Dense (weight) layers, the output included: 3 = two hidden layers and the output.",
)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, help="Dropout rate after each hidden activation (0: none).")
@click.option("--batchnorm/--no-batchnorm", default=False, help="Batch norm between each hidden dense layer and its activation.")
@click.option("--sync-batchnorm", is_flag=True, help="With --batchnorm and a strategy: batch statistics over all replicas.")
@data_options
@training_options(optimizer="adam", lr=0.001, epochs=1, log_every=100, save_every=200)
@distribute_options
@plot_option("Save the confusion matrix and the most confident mistakes as PREFIX-confusion.png and "
             "PREFIX-mistakes.png (needs matplotlib).", prefix=True)  # fmt: skip
def mnist(as_json: bool, quiet: bool, strategy: str, devices, cpu_replicas: int, plot: str | None, **options) -> None:
    """Train an MLP on MNIST or Fashion-MNIST (Labs 10-1 ... 10-4).

    The defaults are Lab 10-2-1: two hidden layers of 256 ReLU units, Xavier init,
    Adam 0.001, batch 128, one epoch. Prints the test accuracy and loss; checkpoints
    are written as it trains, so an interrupted run continues with `dlcli resume`.
    """
    model = ModelSpec(
        layers=options.pop("layers"), units=options.pop("units"),
        activation=options.pop("activation"), init=options.pop("init"),
        dropout=options.pop("dropout"), batchnorm=options.pop("batchnorm"),
        sync_batchnorm=options.pop("sync_batchnorm"),
    )  # fmt: skip
    data = DataSpec(dataset=options.pop("dataset"), path=absolute_path(options.pop("data")), limit=options.pop("limit"))
    config, auto = _base_config("mnist", options, model, data)
    distribute = distribute_spec(strategy, devices, cpu_replicas)
    _train(config, auto_name=auto, quiet=quiet, as_json=as_json, distribute=distribute, plot=plot)


ARCHITECTURE_FLAGS = ("--layers", "--units", "--activation", "--init", "--dropout", "--batchnorm")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("checkpoint_dir", type=click.Path(file_okay=False))
@click.option("--epochs", type=POSITIVE, default=None, help="Raise the run's target to this many epochs.  [default: the run's own target]")
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
    if extra:
        flag = extra[0].split("=")[0]
        if flag in ARCHITECTURE_FLAGS:
            raise click.UsageError(f"{flag} cannot change on resume: the architecture comes from the run's run.json")
        raise click.UsageError(
            f"unexpected argument {extra[0]!r}; resume takes --epochs, --json, --quiet and the --strategy options"
        )
    distribute = distribute_spec(strategy, devices, cpu_replicas)
    from dlcli.core import session

    result = session.resume(checkpoint_dir, epochs=epochs, progress=progress_bar(quiet), distribute=distribute)
    if not result.trained_steps and not as_json:
        click.echo(f"run {result.run} is already finished ({result.epochs} epochs); raise the target with --epochs N")
    _print_result(result, as_json=as_json, table=True)
    _plot_result(result, plot)


