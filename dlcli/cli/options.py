"""Options and parameter types shared by the commands: each checks its value before
anything runs (no TensorFlow), so a bad value is a one-line usage error."""

from __future__ import annotations

import click

from dlcli.config import (
    ACTIVATIONS,
    DATASETS,
    INITIALIZERS,
    OPTIMIZERS,
    check_name,
    keras_knows_activation,
    keras_knows_initializer,
    keras_knows_optimizer,
    validate_run_name,
)
from dlcli.errors import ConfigError


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


def distribute_spec(strategy: str, devices: str | None, cpu_replicas: int):
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



def progress_bar(quiet: bool):
    from dlcli.core.progress import Progress

    return Progress(enabled=False if quiet else None)


def check_format(ctx, param, value):
    from dlcli import report

    formats = report.table_formats()
    if value not in formats:
        raise click.BadParameter(f"unknown format {value!r}; choose one of: {', '.join(formats)}")
    return value


def check_output(ctx, param, value):
    """Refuse an unwritable --output/--plot before hours of training, not after."""
    import os

    if value is None:
        return None
    parent = os.path.dirname(os.path.abspath(value))
    if os.path.isdir(value) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise click.BadParameter(f"cannot write {value}: choose a file in an existing, writable folder")
    return value


def check_plot(ctx, param, value):
    """A --plot file: writable, and matplotlib installed (checked before any training)."""
    import importlib.util

    value = check_output(ctx, param, value)
    if value is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter("needs matplotlib: pip install 'dlcli[plot]' (or pip install matplotlib)")
    return value


def check_plot_prefix(ctx, param, value):
    """A --plot PREFIX for PREFIX-confusion.png and PREFIX-mistakes.png."""
    if value is not None:
        check_plot(ctx, param, f"{value}-confusion.png")
    return value


def plot_option(help_text: str, prefix: bool = False):
    return click.option("--plot", type=click.Path(dir_okay=False), default=None,
                        callback=check_plot_prefix if prefix else check_plot, help=help_text)  # fmt: skip



def absolute_path(path):
    import os

    return None if path is None else os.path.abspath(path)

