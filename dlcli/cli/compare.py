"""`dlcli compare`: options -> a plan -> the runs -> the table (see dlcli.compare)."""

from __future__ import annotations

import functools
import sys

import click

import dlcli.compare as comparisons  # standard library only: fine for --help
from dlcli import settings
from dlcli.cli.options import (
    POSITIVE,
    absolute_path,
    check_format,
    check_output,
    check_plot,
    checkpoint_dir_option,
    distribute_options,
    distribute_spec,
    logdir_option,
    progress_bar,
    setting_option,
)
from dlcli.compare import ALL_PRESETS, SETTINGS, SORT_KEYS
from dlcli.config import (
    DATASETS,
    DataSpec,
)
from dlcli.errors import ConfigError


def _default_help(setting) -> str:
    """'[default: mnist 3, xor 4]': where a comparison's runs start, task by task."""
    values = [f"{task} {settings.shown(setting, setting.default(task, compare=True))}"
              for task in ("mnist", "xor") if task in setting.tasks]  # fmt: skip
    return f"  [default: {', '.join(values)}]"


def _check_cluster(ctx, param, value):
    """--cluster needs the cluster extra: say which, before anything runs."""
    if value is not None:
        from dlcli.compare import cluster

        try:
            cluster.check_installed()
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _compare_runner(jobs: str, cluster: str | None, files: str, strategy: str, quiet: bool):
    """Where compare's runs train: here one by one, in --jobs worker processes, or on a
    Dask cluster; and a few words saying which, for the plan line."""
    from dlcli.compare.processes import placement

    if cluster is not None:
        if jobs != "1":
            raise click.UsageError("--jobs and --cluster exclude each other: the cluster's workers are the jobs")
        if strategy != "default":
            raise click.UsageError(f"--strategy {strategy} trains one run on several devices; not with --cluster")
        from dlcli.compare.cluster import DaskRunner

        return DaskRunner(cluster, files=files), f", on the Dask cluster at {cluster}"
    serial = comparisons.SerialRunner(progress_factory=lambda: progress_bar(quiet))
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
    from dlcli.compare.processes import ProcessRunner

    return ProcessRunner(where), f", {where.describe()}"


def base_setting_options(f):
    """compare's shared settings, from the settings table: each defaults to None, the
    task's default (what `dlcli mnist`/`dlcli xor` use, unless the table says otherwise),
    and reaches the command as one `settings` argument, {setting name: value or None}.
    Click checks what holds for any task; comparisons.base_config the task's own range."""

    @functools.wraps(f)
    def with_settings(**kwargs):
        return f(settings={s.name: kwargs.pop(s.param) for s in SETTINGS.values()}, **kwargs)

    for s in reversed(SETTINGS.values()):
        only = "" if len(s.tasks) > 1 else f"; {', '.join(s.tasks)} only"
        help_text = s.help.removesuffix(".") + only + "." + _default_help(s)
        with_settings = setting_option(s, None, default=None, help_text=help_text, show_default=False)(with_settings)
    return with_settings


@click.command()
@click.option("--task", type=click.Choice(["mnist", "xor"]), default="mnist",
              help="What every run learns: MNIST digits (an MLP) or the four XOR points.")
@click.option(
    "--what",
    multiple=True,
    type=click.Choice(list(ALL_PRESETS)),
    help="A preset of the lectures' variants: activation, init, regularization, all (mnist); depth (xor). "
    "Give it several times for several sets.  [default: all (mnist), depth (xor); none with --vary]",
)
@click.option("--vary", multiple=True, metavar="NAME=V1,V2,...",
              help="Vary one setting over values; several --vary make a grid of every combination. "
              "NAME: activation, init, layers, units, dropout, batchnorm, optimizer, lr, batch-size, epochs.")  # fmt: skip
@click.option("--seeds", type=click.IntRange(min=1), default=1,
              help="Runs per variant with seeds SEED, SEED+1, ...: mean ± std, 95% intervals, paired differences.")  # fmt: skip
@click.option("--seed", type=int, default=0, help="The first seed.")
@click.option("--sort", type=click.Choice(list(SORT_KEYS)), default="order",
              help="Row order: as planned, best accuracy first, lowest loss, fewest seconds, or by name.")  # fmt: skip
@click.option("--format", "fmt", default="github", callback=check_format, metavar="FORMAT",
              help="Any tabulate format (github, plain, grid, pipe, latex, html, ...), json or csv.")
@click.option("--output", type=click.Path(), callback=check_output, help="Also write the table to this file.")
@click.option("--wide", is_flag=True,
              help="Every column (seconds, params, gradient ratio, each setting) even where it does not fit the "
              "terminal. Without it a terminal gets a table as wide as it is; a pipe or a file always gets "
              "every column, and json/csv every key.")  # fmt: skip
@click.option("--plot", type=click.Path(), callback=check_plot,
              help="Save final accuracy with intervals and the learning curves as a PNG (needs matplotlib).")  # fmt: skip
@click.option("--report", "report_file", type=click.Path(dir_okay=False), callback=check_output, metavar="FILE.html",
              help="Also write the comparison as one self-contained HTML file: table, plots, pictures, settings, "
              "versions and the command. For a finished comparison, run the same command again in the same folder "
              "with --report (and without --force): every run comes from the ledger, nothing trains.")  # fmt: skip
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
def compare(task, what, vary, seeds, seed, sort, fmt, output, wide, plot, report_file, points, force, dry_run, yes,
            dataset, data, limit, logdir, checkpoint_dir, quiet, jobs, cluster, cluster_files, strategy, devices,
            cpu_replicas, settings) -> None:  # fmt: skip
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
    from dlcli import report

    explicit = {name for name, value in settings.items() if value is not None}
    if task == "xor":
        for name in ("dropout", "batchnorm", "limit", "data"):
            given = {"limit": limit, "data": data}.get(name, settings.get(name))
            if given is not None:
                raise click.UsageError(f"--{name} is for mnist comparisons; xor runs have no {name}")
        if strategy != "default":
            raise click.UsageError(f"--strategy {strategy} is for mnist comparisons; xor trains on one device")
    try:
        base = comparisons.base_config(
            task, settings, data=DataSpec(dataset=dataset, path=absolute_path(data), limit=limit),
            logdir=logdir, checkpoint_dir=checkpoint_dir,
        )  # fmt: skip
        the_plan = comparisons.plan(task, what, vary, base, explicit=explicit, seeds=seeds, first_seed=seed,
                                    points=points)  # fmt: skip
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    finished, older = ({}, 0) if force else comparisons.ledger_contents(the_plan.ledger_path)
    statuses = comparisons.status(the_plan, force=force, finished=finished)
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
    if len(statuses) > comparisons.MAX_RUNS and not yes:
        raise click.UsageError(
            f"this comparison makes {len(statuses)} runs, more than {comparisons.MAX_RUNS}; "
            "pass --yes to run them all, or use fewer --vary values or --seeds"
        )
    distribute = distribute_spec(strategy, devices, cpu_replicas)
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
        rows = comparisons.run(the_plan, force=force, runner=runner, on_finish=finished, distribute=distribute)
    finally:
        bar.close()
    rows = comparisons.sort_rows(rows, sort)
    text = report.compare_table(rows, fmt, columns=the_plan.columns)
    click.echo(report.compare_table(rows, fmt, the_plan.columns, width=report.terminal_width(wide)))
    verdict = comparisons.verdict(rows)
    if verdict:
        click.echo(f"note: {verdict}", err=fmt in report.MACHINE_FORMATS)
    if output:
        from pathlib import Path

        from dlcli.core.runs import atomic_write_text

        atomic_write_text(Path(output), text + "\n")
    if plot:
        report.comparison_plot(rows, comparisons.learning_curves(the_plan), plot, task=task)
    if report_file:
        from dlcli import html_report

        html_report.write(report_file, the_plan, rows, command=html_report.command_line(sys.argv))
