"""The `dlcli` command line: options -> config -> one library call -> output.

Heavy modules (TensorFlow above all) are imported inside the commands, so `--help`
and bad options answer instantly.
"""

from __future__ import annotations

import sys

import click

from dlcli import __version__
from dlcli.config import (
    ACTIVATIONS,
    DATASETS,
    INITIALIZERS,
    OPTIMIZERS,
    DataSpec,
    ModelSpec,
    RunConfig,
    TrainSpec,
    check_name,
    keras_knows_activation,
    keras_knows_initializer,
    keras_knows_optimizer,
    validate_run_name,
)
from dlcli.errors import ConfigError, DlcliError, ExitStatus

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}


class DlcliGroup(click.Group):
    """Turns library errors into one-line messages; the traceback only with --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            if _debug(ctx):
                raise
            click.echo(f"\n{exc or 'interrupted'}", err=True)
            ctx.exit(ExitStatus.INTERRUPTED)
        except DlcliError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            if _debug(ctx):
                raise
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        except Exception as exc:  # a bug: say so briefly, point at --debug
            if _debug(ctx):
                raise
            raise click.ClickException(
                f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                "(run `dlcli --debug ...` for the traceback and please report it)"
            ) from None


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


class KerasName(click.ParamType):
    """An activation, initializer or optimizer name, checked against Keras."""

    def __init__(self, kind: str, known: tuple, keras_knows):
        self.kind, self.known, self.keras_knows = kind, known, keras_knows
        self.name = kind

    def get_metavar(self, param, ctx=None):
        return "NAME"

    def convert(self, value, param, ctx):
        try:
            return check_name(self.kind, value, self.known, self.keras_knows)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


ACTIVATION = KerasName("activation", ACTIVATIONS, keras_knows_activation)
INITIALIZER = KerasName("initializer", INITIALIZERS, keras_knows_initializer)
OPTIMIZER = KerasName("optimizer", OPTIMIZERS, keras_knows_optimizer)
POSITIVE = click.IntRange(min=1)
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)


def _run_name(ctx, param, value):
    if value is None:
        return None
    try:
        return validate_run_name(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def logdir_option(help_text: str):
    return click.option(
        "--logdir",
        type=click.Path(file_okay=False),
        default="logs",
        envvar="DLCLI_LOGDIR",
        show_envvar=True,
        help=help_text,
    )


def checkpoint_dir_option(help_text: str):
    return click.option(
        "--checkpoint-dir",
        type=click.Path(file_okay=False),
        default="checkpoints",
        envvar="DLCLI_CHECKPOINT_DIR",
        show_envvar=True,
        help=help_text,
    )


def data_options(f):
    """Where mnist and compare get their examples, and how many per step."""
    for option in reversed(
        [
            click.option("--batch-size", type=POSITIVE, default=128, help="Examples per step."),
            click.option("--dataset", type=click.Choice(DATASETS), default="mnist", help="Which data set."),
            click.option(
                "--data",
                type=click.Path(),
                default=None,
                help="An .npz (x_train, y_train, x_test, y_test) or a folder of the four IDX files "
                "(.gz or raw).  [default: the Keras cache, ~/.keras/datasets]",
            ),
            click.option("--limit", type=POSITIVE, default=None, help="Train on the first N training examples only."),
        ]
    ):
        f = option(f)
    return f


def distribute_options(f):
    """Where training runs: one device, several local ones, or several machines."""
    for option in reversed(
        [
            click.option(
                "--strategy",
                type=click.Choice(["default", "mirrored", "multi-worker"]),
                default="default",
                help="default: one device (XLA). mirrored: all local GPUs, or --devices, or --cpu-replicas. "
                "multi-worker: the cluster in TF_CONFIG.",
            ),
            click.option("--devices", default=None, help="mirrored: comma-separated devices, e.g. /gpu:0,/gpu:1."),
            click.option(
                "--cpu-replicas",
                type=click.IntRange(min=0),
                default=0,
                help="Split the CPU into N logical devices to try mirrored training without GPUs.",
            ),
        ]
    ):
        f = option(f)
    return f


def _distribute(strategy: str, devices: str | None, cpu_replicas: int):
    """The DistributeSpec, checked; logical CPU devices are requested before TF starts."""
    from dlcli.core import tf_setup
    from dlcli.core.distribute import DistributeSpec

    spec = DistributeSpec(
        strategy=strategy,
        devices=tuple(d.strip() for d in devices.split(",") if d.strip()) if devices else (),
        cpu_replicas=cpu_replicas,
    ).validate()
    tf_setup.request_cpu_replicas(cpu_replicas)
    if spec.strategy == "multi-worker":
        tf_setup.request_multi_worker()
    return spec


def model_options(*, layers: int, units: int, activation: str, init: str, layers_help: str):
    def decorate(f):
        for option in reversed(
            [
                click.option("--layers", type=POSITIVE, default=layers, help=layers_help),
                click.option("--units", type=POSITIVE, default=units, help="Units in every hidden layer."),
                click.option(
                    "--activation",
                    type=ACTIVATION,
                    default=activation,
                    help="Hidden activation: sigmoid, tanh, relu, elu, selu, ... (any keras.activations name).",
                ),
                click.option(
                    "--init",
                    type=INITIALIZER,
                    default=init,
                    help="Weight init: normal (random normal), xavier (glorot_uniform), he (he_uniform), "
                    "or any Keras initializer name (glorot_normal, he_normal, lecun_normal, zeros, ...).",
                ),
            ]
        ):
            f = option(f)
        return f

    return decorate


def training_options(*, optimizer: str, lr: float, epochs: int, log_every: int, save_every: int):
    def decorate(f):
        for option in reversed(
            [
                click.option(
                    "--optimizer",
                    type=OPTIMIZER,
                    default=optimizer,
                    help="Optimizer: sgd, adam, rmsprop, adagrad, ... (any keras.optimizers name).",
                ),
                click.option("--lr", type=POSITIVE_FLOAT, default=lr, help="Learning rate."),
                click.option("--epochs", type=POSITIVE, default=epochs, help="Epochs to train."),
                click.option(
                    "--seed", type=int, default=0, help="Seed for weights, data order and dropout: same seed, same numbers."
                ),
                click.option(
                    "--name",
                    callback=_run_name,
                    help="Run name (a folder under --logdir and --checkpoint-dir).  [default: TASK-DATE-TIME]",
                ),
                logdir_option("Where TensorBoard logs go: <logdir>/<run>/."),
                checkpoint_dir_option("Where checkpoints and run.json go: <checkpoint-dir>/<run>/."),
                click.option("--log-every", type=POSITIVE, default=log_every, help="Steps between TensorBoard points."),
                click.option(
                    "--save-every",
                    type=click.IntRange(min=0),
                    default=save_every,
                    help="Steps between checkpoints (0: only at the start and the end).",
                ),
                click.option("--keep", type=POSITIVE, default=3, help="Checkpoints to keep."),
                click.option("--json", "as_json", is_flag=True, help="Print only a JSON summary on stdout."),
                click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
            ]
        ):
            f = option(f)
        return f

    return decorate


def _progress(quiet: bool):
    from dlcli.core.progress import Progress

    return Progress(enabled=False if quiet else None)


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

    result = session.train(config, auto_name=auto_name, progress=_progress(quiet), distribute=distribute)
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


def _check_format(ctx, param, value):
    from dlcli import report

    formats = report.table_formats()
    if value not in formats:
        raise click.BadParameter(f"unknown format {value!r}; choose one of: {', '.join(formats)}")
    return value


def _check_output(ctx, param, value):
    """Refuse an unwritable --output/--plot before hours of training, not after."""
    import os

    if value is None:
        return None
    parent = os.path.dirname(os.path.abspath(value))
    if os.path.isdir(value) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise click.BadParameter(f"cannot write {value}: choose a file in an existing, writable folder")
    return value


def _check_plot(ctx, param, value):
    """A --plot file: writable, and matplotlib installed (checked before any training)."""
    import importlib.util

    value = _check_output(ctx, param, value)
    if value is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter("needs matplotlib: pip install 'dlcli[plot]' (or pip install matplotlib)")
    return value


def _check_plot_prefix(ctx, param, value):
    """A --plot PREFIX for PREFIX-confusion.png and PREFIX-mistakes.png."""
    if value is not None:
        _check_plot(ctx, param, f"{value}-confusion.png")
    return value


def plot_option(help_text: str, prefix: bool = False):
    return click.option("--plot", type=click.Path(dir_okay=False), default=None,
                        callback=_check_plot_prefix if prefix else _check_plot, help=help_text)  # fmt: skip


@click.group(cls=DlcliGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="dlcli")
@click.option("--debug", is_flag=True, help="Show full tracebacks and TensorFlow's start-up messages.")
def cli(debug: bool) -> None:
    """A command-line lab for the experiments that explain why deep learning works.

    XOR that one logistic unit cannot learn but a deep net can; sigmoid vs ReLU;
    random-normal vs Xavier vs He initialisation; dropout and batch norm. Every run
    writes TensorBoard logs to logs/<run>/ and checkpoints to checkpoints/<run>/.
    """
    _show_warnings()
    if debug:
        from dlcli.core import tf_setup

        tf_setup.set_verbose(True)


def _show_warnings() -> None:
    """The library reports recoverable problems through logging; show them on stderr."""
    import logging

    class ClickStderr(logging.Handler):
        def emit(self, record):
            click.echo(self.format(record), err=True)  # today's stderr, even under CliRunner

    logger = logging.getLogger("dlcli")
    if not logger.handlers:
        handler = ClickStderr()
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


@cli.command()
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


@cli.command()
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
    data = DataSpec(dataset=options.pop("dataset"), path=_abs(options.pop("data")), limit=options.pop("limit"))
    config, auto = _base_config("mnist", options, model, data)
    distribute = _distribute(strategy, devices, cpu_replicas)
    _train(config, auto_name=auto, quiet=quiet, as_json=as_json, distribute=distribute, plot=plot)


def _abs(path):
    import os

    return None if path is None else os.path.abspath(path)


ARCHITECTURE_FLAGS = ("--layers", "--units", "--activation", "--init", "--dropout", "--batchnorm")


@cli.command(context_settings={"ignore_unknown_options": True})
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
    distribute = _distribute(strategy, devices, cpu_replicas)
    from dlcli.core import session

    result = session.resume(checkpoint_dir, epochs=epochs, progress=_progress(quiet), distribute=distribute)
    if not result.trained_steps and not as_json:
        click.echo(f"run {result.run} is already finished ({result.epochs} epochs); raise the target with --epochs N")
    _print_result(result, as_json=as_json, table=True)
    _plot_result(result, plot)


def _experiments():
    """dlcli.experiments (standard library only: fine for --help) for option choices."""
    from dlcli import experiments

    return experiments


def _default_help(setting: str) -> str:
    """'[default: mnist 3, xor 4]' from the two tasks' defaults (dlcli mnist / dlcli xor)."""
    from dlcli.experiments import SETTINGS, TASK_DEFAULTS, format_value

    s = SETTINGS[setting]
    values = []
    for task in ("mnist", "xor"):
        if task in s.tasks:
            model, train = TASK_DEFAULTS[task]
            value = getattr(model if s.part == "model" else train, s.field)
            values.append(f"{task} {format_value(value) if value != 0 or setting != 'batch-size' else 'all'}")
    return f"  [default: {', '.join(values)}]"


def _check_cluster(ctx, param, value):
    """--cluster needs the cluster extra: say which, before anything runs."""
    if value is not None:
        from dlcli import cluster

        try:
            cluster.check_installed()
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _compare_runner(jobs: str, cluster: str | None, files: str, strategy: str, quiet: bool):
    """Where compare's runs train: here one by one, in --jobs worker processes, or on a
    Dask cluster; and a few words saying which, for the plan line."""
    from dlcli import experiments
    from dlcli.parallel import placement

    if cluster is not None:
        if jobs != "1":
            raise click.UsageError("--jobs and --cluster exclude each other: the cluster's workers are the jobs")
        if strategy != "default":
            raise click.UsageError(f"--strategy {strategy} trains one run on several devices; not with --cluster")
        from dlcli.cluster import DaskRunner

        return DaskRunner(cluster, files=files), f", on the Dask cluster at {cluster}"
    serial = experiments.SerialRunner(progress_factory=lambda: _progress(quiet))
    if jobs == "1":
        return serial, ""  # without asking TensorFlow for GPUs: --cpu-replicas must come first
    try:
        where = placement(jobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if where.jobs == 1:
        return serial, ""
    if strategy != "default":
        raise click.UsageError(f"--strategy {strategy} trains one run on several devices; not with --jobs")
    from dlcli.parallel import ProcessRunner

    return ProcessRunner(where), f", {where.describe()}"


def base_setting_options(f):
    """compare's shared settings: each defaults to what `dlcli mnist`/`dlcli xor` use."""
    options = [
        ("--layers", POSITIVE, "layers", "Dense layers of every run, the output included."),
        ("--units", POSITIVE, "units", "Units in every hidden layer."),
        ("--activation", ACTIVATION, "activation", "Hidden activation."),
        ("--init", INITIALIZER, "init", "Weight init."),
        ("--dropout", click.FloatRange(0, 1, max_open=True), "dropout", "Dropout rate (mnist)."),
        ("--optimizer", OPTIMIZER, "optimizer", "Optimizer."),
        ("--lr", POSITIVE_FLOAT, "lr", "Learning rate."),
        ("--epochs", POSITIVE, "epochs", "Epochs per run."),
        ("--batch-size", POSITIVE, "batch-size", "Examples per step."),
    ]
    decorators = [
        click.option(flag, type=kind, default=None, show_default=False, help=text + _default_help(setting))
        for flag, kind, setting, text in options
    ]
    decorators.append(
        click.option("--batchnorm/--no-batchnorm", default=None, show_default=False,
                     help="Batch norm in every hidden layer (mnist)." + _default_help("batchnorm"))
    )  # fmt: skip
    for option in reversed(decorators):
        f = option(f)
    return f


@cli.command()
@click.option("--task", type=click.Choice(["mnist", "xor"]), default="mnist",
              help="What every run learns: MNIST digits (an MLP) or the four XOR points.")
@click.option(
    "--what",
    multiple=True,
    type=click.Choice(list(_experiments().ALL_PRESETS)),
    help="A preset of the lectures' variants: activation, init, regularization, all (mnist); depth (xor). "
    "Give it several times for several sets.  [default: all (mnist), depth (xor); none with --vary]",
)
@click.option("--vary", multiple=True, metavar="NAME=V1,V2,...",
              help="Vary one setting over values; several --vary make a grid of every combination. "
              "NAME: activation, init, layers, units, dropout, batchnorm, optimizer, lr, batch-size, epochs.")  # fmt: skip
@click.option("--seeds", type=click.IntRange(min=1), default=1,
              help="Runs per variant with seeds SEED, SEED+1, ...: mean ± std, 95% intervals, paired differences.")  # fmt: skip
@click.option("--seed", type=int, default=0, help="The first seed.")
@click.option("--sort", type=click.Choice(list(_experiments().SORT_KEYS)), default="order",
              help="Row order: as planned, best accuracy first, lowest loss, fewest seconds, or by name.")  # fmt: skip
@click.option("--format", "fmt", default="github", callback=_check_format, metavar="FORMAT",
              help="Any tabulate format (github, plain, grid, pipe, latex, html, ...), json or csv.")
@click.option("--output", type=click.Path(), callback=_check_output, help="Also write the table to this file.")
@click.option("--plot", type=click.Path(), callback=_check_plot,
              help="Save final accuracy with intervals and the learning curves as a PNG (needs matplotlib).")  # fmt: skip
@click.option("--points", type=POSITIVE, default=10,
              help="Learning-curve points per mnist run: evaluations on the first 1000 test examples.")  # fmt: skip
@click.option("--force", is_flag=True, help="Rerun every variant, ignoring finished results in the ledger.")
@click.option("--dry-run", is_flag=True, help="Print the planned runs (and which are in the ledger); train nothing.")
@click.option("--yes", is_flag=True, help="Run a comparison of more than 100 runs.")
@base_setting_options
@click.option("--dataset", type=click.Choice(DATASETS), default="mnist", help="Which data set (mnist).")
@click.option("--data", type=click.Path(), default=None,
              help="An .npz or a folder of the four IDX files (mnist).  [default: the Keras cache]")  # fmt: skip
@click.option("--limit", type=POSITIVE, default=None, help="Train on the first N training examples only (mnist).")
@logdir_option("Runs go to <logdir>/compare/<comparison>/<variant>-s<seed>/, the ledger to <logdir>/compare/results.jsonl.")
@checkpoint_dir_option("Checkpoints go to <checkpoint-dir>/compare/<comparison>/<variant>-s<seed>/.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--jobs", default="1", metavar="N|auto",
              help="Runs at a time, each in a worker process pinned to one GPU or its share of the CPU threads; "
              "auto: one per GPU, else one per 4 cores.")  # fmt: skip
@click.option("--cluster", metavar="ADDRESS", default=None, callback=_check_cluster,
              help="Send the runs to a Dask cluster (e.g. tcp://head:8786); needs pip install 'dlcli[cluster]'.")
@click.option("--cluster-files", type=click.Choice(["auto", "shared", "ship"]), default="auto",
              help="With --cluster: workers train in the driver's folders (shared file system) or ship each "
              "finished run folder back (ship); auto: shared when the workers see the driver's folders.")  # fmt: skip
@distribute_options
def compare(task, what, vary, seeds, seed, sort, fmt, output, plot, points, force, dry_run, yes, dataset, data,
            limit, logdir, checkpoint_dir, quiet, jobs, cluster, cluster_files, strategy, devices, cpu_replicas,
            **settings) -> None:  # fmt: skip
    """Compare variants as real runs and tabulate them with honest statistics.

    Presets (--what) are the lectures' questions. mnist: activation (sigmoid vs relu,
    Lab 10-1), init (normal vs xavier vs he, Lab 10-2), regularization (the deep net
    plain vs dropout vs batch norm, Labs 10-2-2 ... 10-4), all. xor: depth (1, 2 and 4
    layers, lecture 9). Your own question is a grid: --vary NAME=V1,V2,... (repeat it
    for every combination); the other options set what all runs share.

    Every variant gets the same seeds; the table shows mean ± std, a 95% interval, and
    each variant's difference to the best with a paired 95% interval over the seeds.
    Finished runs are kept in a ledger, so running the same comparison again only
    trains what is missing; an interrupted run is resumed.

    Try: dlcli compare --vary activation=sigmoid,tanh,relu --vary init=normal,he --seeds 3
    """
    from dlcli import experiments, report

    batchnorm = settings.pop("batchnorm")
    model = {k: settings.pop(k) for k in ("layers", "units", "activation", "init", "dropout")}
    model["batchnorm"] = batchnorm
    train = {k: settings.pop(k) for k in ("optimizer", "lr", "epochs", "batch_size")}
    explicit = {k.replace("_", "-") for k, v in {**model, **train}.items() if v is not None}
    if task == "xor":
        for name in ("dropout", "batchnorm", "limit", "data"):
            given = {"limit": limit, "data": data}.get(name, model.get(name))
            if given is not None:
                raise click.UsageError(f"--{name} is for mnist comparisons; xor runs have no {name}")
        if strategy != "default":
            raise click.UsageError(f"--strategy {strategy} is for mnist comparisons; xor trains on one device")
    try:
        base = experiments.base_config(
            task, model=model, train=train, data=DataSpec(dataset=dataset, path=_abs(data), limit=limit),
            logdir=logdir, checkpoint_dir=checkpoint_dir,
        )  # fmt: skip
        the_plan = experiments.plan(task, what, vary, base, explicit=explicit, seeds=seeds, first_seed=seed,
                                    points=points)  # fmt: skip
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    finished, older = ({}, 0) if force else experiments.ledger_contents(the_plan.ledger_path)
    statuses = experiments.status(the_plan, force=force, finished=finished)
    counts = {how: sum(1 for _, h in statuses if h == how) for how in ("in the ledger", "resume", "train")}
    summary = (
        f"{len(the_plan.variants)} variant{'s' if len(the_plan.variants) != 1 else ''} x {seeds} "
        f"seed{'s' if seeds != 1 else ''} = {len(statuses)} runs: {counts['in the ledger']} in the ledger, "
        f"{counts['resume']} to resume, {counts['train']} to train"
    )
    if older:
        summary += f" ({older} result{'s' if older != 1 else ''} of dlcli 0.1 set aside: its initial weights differed)"
    if dry_run:
        click.echo(report.plan_table(statuses))
        click.echo(f"\n{summary} (dry run: nothing trained)")
        return
    if len(statuses) > experiments.MAX_RUNS and not yes:
        raise click.UsageError(
            f"this comparison makes {len(statuses)} runs, more than {experiments.MAX_RUNS}; "
            "pass --yes to run them all, or use fewer --vary values or --seeds"
        )
    distribute = _distribute(strategy, devices, cpu_replicas)
    runner, where = _compare_runner(jobs, cluster, cluster_files, strategy, quiet)
    click.echo(f"compare {the_plan.folder}: {summary}{where}", err=True)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(statuses), desc="compare", unit="run", file=sys.stderr, disable=True if quiet else None)
    best: dict = {}

    def finished(planned, entry):
        # Runs done and the best variant so far (mean accuracy over its finished seeds).
        best.setdefault(planned.variant.name, []).append(entry["accuracy"])
        name, values = max(best.items(), key=lambda item: sum(item[1]) / len(item[1]))
        bar.set_postfix_str(f"best so far {name} {sum(values) / len(values):.4f}")
        bar.update(1)

    try:
        rows = experiments.run(the_plan, force=force, runner=runner, on_finish=finished, distribute=distribute)
    finally:
        bar.close()
    rows = experiments.sort_rows(rows, sort)
    text = report.compare_table(rows, fmt, columns=the_plan.columns)
    click.echo(text)
    verdict = experiments.verdict(rows)
    if verdict:
        click.echo(f"note: {verdict}", err=fmt in report.MACHINE_FORMATS)
    if output:
        from pathlib import Path

        from dlcli.core.runs import atomic_write_text

        atomic_write_text(Path(output), text + "\n")
    if plot:
        report.comparison_plot(rows, experiments.learning_curves(the_plan), plot, task=task)


@cli.command()
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
def board(logdir: str, host: str, port: int | None, list_only: bool) -> None:
    """Show every run in TensorBoard (loss, accuracy, histograms, hparams).

    Serves on 127.0.0.1 until Ctrl-C. With --list, prints each run's last step and
    latest loss and accuracy instead, without starting a server.
    """
    from dlcli import board as tb
    from dlcli.core.tf_setup import tensorflow

    tensorflow()  # TensorBoard loads it anyway; this way its start-up noise stays quiet
    if list_only:
        click.echo(tb.runs_table(tb.list_runs(logdir)))
        return
    runs = tb.check_logdir(logdir)
    if host in tb.PUBLIC_HOSTS:
        click.echo(
            f"warning: serving on every interface ({host or '*'}): anyone on the network can read these logs",
            err=True,
        )
    # From here on Ctrl-C or SIGTERM, whenever it comes, is a clean stop (exit 0).
    tb.stop_on_signals()
    try:
        url = tb.serve(logdir, host=host, port=port)
        click.echo(f"TensorBoard {url}  ({len(runs)} run{'s' if len(runs) != 1 else ''} in {logdir})")
        for run in runs:
            click.echo(f"  {run}")
        sys.stdout.flush()  # the URL must reach a pipe now, not when the server stops
        click.echo("Press Ctrl-C to stop.", err=True)
        tb.wait_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


def main(*args, **kwargs):
    return cli.main(*args, **kwargs)


@cli.command("inspect")
@click.argument("run", type=click.Path())
@click.option("--step", type=click.IntRange(min=0), default=None,
              help="Show the logged step nearest to this one instead of the first and the last.")  # fmt: skip
@click.option("--format", "fmt", default="github", callback=_check_format, metavar="FORMAT",
              help="Any tabulate format (github, plain, latex, ...), or json / csv with the raw numbers.")  # fmt: skip
@plot_option("Save the depth profile (per layer: weight-gradient norm, activation std, saturated/dead "
             "fraction) as a PNG (needs matplotlib).")  # fmt: skip
def inspect_run(run: str, step: int | None, fmt: str, plot: str | None) -> None:
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
    every probe example. "-": does not apply.
    """
    from dlcli import inspect as inspection
    from dlcli import report
    from dlcli.core.tf_setup import tensorflow

    tensorflow()  # reading event files loads it anyway; this way its start-up noise stays quiet
    found = inspection.load(run)
    rows = found.rows(inspection.chosen_steps(found, step))
    click.echo(report.layers_table(rows, fmt))
    if plot:
        steps = " and ".join(str(s) for s in sorted({r["step"] for r in rows}))
        report.depth_profile_plot(rows, plot, title=f"{found.run}: depth profile at step {steps}")
        click.echo(f"plot: {plot}", err=True)
