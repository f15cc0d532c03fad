"""Options and parameter types shared by the commands: each checks its value before
anything runs (no TensorFlow), so a bad value is a one-line usage error."""

from __future__ import annotations

import click

from dlcli import settings
from dlcli.api import CHECKPOINT_DIR_ENV, LOGDIR_ENV  # the API reads the same variables
from dlcli.errors import ConfigError
from dlcli.settings import Setting, validate_run_name
from dlcli.wording import did_you_mean

POSITIVE = click.IntRange(min=1)


class Choice(click.Choice):
    """click.Choice that, for a mistyped value, names the choice it was probably
    meant to be: "'inits' is not one of ... Did you mean 'init'?"."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            exc.message += did_you_mean(value, self.choices)
            raise


class _Checked:
    """A Click type that reads and checks a value through the settings table: the same
    parser, range and message as --vary and RunConfig.validate. The message is raised
    as it is (a UsageError, exit 2): it names the option already."""

    def __init__(self, setting: Setting, task: str | None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setting, self.task = setting, task

    def convert(self, value, param, ctx):
        try:
            return self.setting.parse(value, self.task)
        except ConfigError as exc:
            raise click.UsageError(str(exc), ctx) from None


class _IntegerSetting(_Checked, click.IntRange):
    pass


class _NumberSetting(_Checked, click.FloatRange):
    pass


class _ChoiceSetting(_Checked, Choice):
    pass


class _NameSetting(_Checked, click.ParamType):
    """An activation, initializer or optimizer: a listed name, or one Keras knows."""

    name = "name"

    def get_metavar(self, param, ctx=None):
        return "NAME"


def setting_type(setting: Setting, task: str | None) -> click.ParamType:
    """The Click type of `setting` for `task`'s runs (None: any task's; compare checks the
    task's own range once it knows the task). Ranges show in --help as Click's do."""
    rule = setting.rule
    if isinstance(rule, settings.Integers):
        low, high = rule.bounds(task)
        return _IntegerSetting(setting, task, min=low, max=high)
    if isinstance(rule, settings.Numbers):
        high = None if rule.high == float("inf") else rule.high
        return _NumberSetting(setting, task, min=rule.low, max=high, min_open=rule.low_open, max_open=rule.high_open)
    if isinstance(rule, settings.KnownName):
        return _NameSetting(setting, task)
    if isinstance(rule, settings.OneOf):
        choices = rule.choices.get(task) if task else tuple(dict.fromkeys(sum(rule.choices.values(), ())))
        return _ChoiceSetting(setting, task, choices)
    if setting.kind is settings.PATH:
        return click.Path()
    raise ValueError(f"the settings table gives {setting.name} no Click type")


def setting_option(setting: Setting, task: str | None, *, default, help_text: str, show_default: bool = True):
    """The option --NAME (a --NAME/--no-NAME pair for a flag that has one)."""
    if setting.kind is settings.FLAG:
        if setting.negatable:
            return click.option(f"{setting.option}/--no-{setting.name}", setting.param, default=default,
                                show_default=show_default, help=help_text)  # fmt: skip
        return click.option(setting.option, setting.param, is_flag=True, default=default,
                            show_default=show_default and bool(default), help=help_text)  # fmt: skip
    if default is None and None in setting.shown:
        help_text += f"  [default: {setting.shown[None]}]"
    return click.option(setting.option, setting.param, type=setting_type(setting, task), default=default,
                        show_default=show_default, help=help_text)  # fmt: skip


def command_options(task: str):
    """Every run setting `dlcli TASK` offers, from the settings table, with the task's defaults."""

    def decorate(f):
        for s in reversed(settings.for_command(task)):
            f = setting_option(s, task, default=s.default(task), help_text=s.command_help.get(task, s.help))(f)
        return f

    return decorate


def command_settings(task: str, options: dict) -> dict:
    """{setting name: value} of `dlcli TASK`'s setting options, taken out of `options`."""
    return {s.name: options.pop(s.param) for s in settings.for_command(task)}


def _run_name(ctx, param, value):
    if value is None:
        return None
    try:
        return validate_run_name(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _folder_option(flag: str, default: str, envvar: str):
    def option(help_text: str):
        return click.option(flag, type=click.Path(file_okay=False), default=default, envvar=envvar,
                            show_envvar=True, help=help_text)  # fmt: skip

    return option


# Where runs write: <logdir>/<run>/ and <checkpoint-dir>/<run>/, each movable by an environment variable.
logdir_option = _folder_option("--logdir", "logs", LOGDIR_ENV)
checkpoint_dir_option = _folder_option("--checkpoint-dir", "checkpoints", CHECKPOINT_DIR_ENV)


def distribute_options(f):
    """Where training runs: one device, several local ones, or several machines."""
    for option in reversed(
        [
            click.option(
                "--strategy",
                type=Choice(["default", "mirrored", "multi-worker"]),
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


def run_options(f):
    """The run's name and folders, and how xor and mnist report."""
    for option in reversed(
        [
            click.option(
                "--name",
                callback=_run_name,
                help="Run name (a folder under --logdir and --checkpoint-dir).  [default: TASK-DATE-TIME]",
            ),
            logdir_option("Where TensorBoard logs go: <logdir>/<run>/."),
            checkpoint_dir_option("Where checkpoints and run.json go: <checkpoint-dir>/<run>/."),
            click.option("--json", "as_json", is_flag=True, help="Print only a JSON summary on stdout."),
            click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
        ]
    ):
        f = option(f)
    return f


def progress_bar(quiet: bool):
    from dlcli.core.progress import Progress

    return Progress(enabled=False if quiet else None)


def check_format(ctx, param, value):
    from dlcli import report

    formats = report.table_formats()
    if value not in formats:
        raise click.BadParameter(f"unknown format {value!r}; choose one of: {', '.join(formats)}."
                                 + did_you_mean(value, formats))
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

