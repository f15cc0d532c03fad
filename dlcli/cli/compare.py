"""`dlcli compare`: options -> a plan -> the runs -> the table (see dlcli.comparison)."""

from __future__ import annotations

import functools
import sys

import click

import dlcli.comparison as comparisons  # standard library only: fine for --help
from dlcli import settings
from dlcli.cli.options import (
    POSITIVE,
    Choice,
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
    setting_type,
)
from dlcli.comparison import ALL_PRESETS, SETTINGS, SORT_KEYS
from dlcli.config import (
    DataSpec,
)
from dlcli.errors import ConfigError
from dlcli.wording import counted


def _check_cluster(ctx, param, value):
    """--cluster needs the cluster extra: say which, before anything runs."""
    if value is not None:
        from dlcli.comparison import cluster

        try:
            cluster.check_installed()
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


class SeedsType(click.ParamType):
    """--seeds: a number of seeds per variant (at least 1), or `auto`."""

    name = "N|auto"

    def get_metavar(self, param, ctx=None) -> str:
        return "N|auto"  # as typed: Click would show the type's name in capitals

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of seeds nor auto", param, ctx)
        if number < 1:
            self.fail(f"{number} is not a number of seeds: give 1 or more, or auto", param, ctx)
        return number


def _library_check(check):
    """An option callback that asks the library's own check (the API asks it too)."""

    def callback(ctx, param, value):
        try:
            return check(value)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def _auto_seeds(seeds, max_seeds: int | None):
    try:
        return comparisons.auto_seeds(seeds, max_seeds)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _compare_runner(jobs: str, cluster: str | None, files: str, strategy: str, quiet: bool):
    """Where compare's runs train: here one by one, in --jobs worker processes, or on a
    Dask cluster (each runner says which, for the plan line)."""
    from dlcli.comparison.processes import placement

    if cluster is not None:
        if jobs != "1":
            raise click.UsageError("--jobs and --cluster exclude each other: the cluster's workers are the jobs")
        if strategy != "default":
            raise click.UsageError(f"--strategy {strategy} trains one run on several devices; not with --cluster")
        from dlcli.comparison.cluster import DaskRunner

        return DaskRunner(cluster, files=files)
    serial = comparisons.SerialRunner(progress_factory=lambda: progress_bar(quiet))
    if jobs == "1":
        return serial  # without asking TensorFlow for GPUs: --cpu-replicas must come first
    try:
        where = placement(jobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if where.jobs == 1:
        return serial
    if strategy != "default":
        raise click.UsageError(f"--strategy {strategy} trains one run on several devices; not with --jobs")
    from dlcli.comparison.processes import ProcessRunner

    return ProcessRunner(where)


def _summary(comparison, auto=None) -> str:
    """'4 variants x 2 seeds = 8 runs: 2 in the ledger, 0 to resume, 6 to train', or with
    --seeds auto '3 variants x 3 to 10 seeds (--seeds auto), at most 30 runs: 9 in the ledger'."""
    from dlcli.comparison import RunStatus

    variants, seeds, runs = len(comparison.plan.variants), len(comparison.plan.seeds), len(comparison.statuses)
    if auto is not None:
        # Over the whole plan: a dry run's statuses are its next round only.
        stored = sum(1 for planned in comparison.plan.runs if comparison.ledger.get(planned.config) is not None)
        summary = (
            f"{counted(variants, 'variant')} x {auto.min_seeds} to {auto.max_seeds} seeds "
            f"(--seeds auto), at most {variants * auto.max_seeds} runs: {stored} in the ledger"
        )
    else:
        summary = (
            f"{counted(variants, 'variant')} x {counted(seeds, 'seed')} = {runs} "
            f"runs: {comparison.count(RunStatus.IN_LEDGER)} in the ledger, {comparison.count(RunStatus.RESUME)} "
            f"to resume, {comparison.count(RunStatus.TRAIN)} to train"
        )
    older = comparison.ledger.older
    if older:
        summary += f" ({counted(older, 'result')} of dlcli 0.1 set aside: its initial weights differed)"
    return summary


class _Progress:
    """The plan line and the progress bar on stderr: runs done, the best variant so far."""

    def __init__(self, quiet: bool, auto=None):
        self.quiet, self.auto, self.bar, self.best = quiet, auto, None, {}

    def start(self, comparison, runner) -> None:
        from tqdm.auto import tqdm

        click.echo(f"compare {comparison.plan.folder}: {_summary(comparison, self.auto)}{runner.where}", err=True)
        if comparison.pruning is not None:
            click.echo(comparison.pruning.describe(), err=True)
            total = comparison.pruning.total_runs()
        else:
            total = 0 if self.auto is not None else len(comparison.statuses)  # auto: each round adds its runs
        self.bar = tqdm(total=total, desc="compare", unit="run", file=sys.stderr,
                        disable=True if self.quiet else None)  # fmt: skip

    def round(self, number: int, runs) -> None:
        """--seeds auto: a line per round (which variants get seeds), and its runs on the bar."""
        click.echo(_round_line(number, runs), err=True)
        self.bar.total += len(runs)
        self.bar.refresh()

    def rung(self, index, pruning, statuses) -> None:
        """--prune: a line as each rung starts (after the first: the plan line says it)."""
        if index:
            from dlcli.comparison import RunStatus

            n = {how: sum(1 for _, h in statuses if h is how) for how in RunStatus}
            self.bar.write(
                f"rung {index + 1}/{len(pruning.rungs)}: {counted(pruning.counts()[index], 'variant')} to "
                f"{counted(pruning.rungs[index], 'epoch')}: {n[RunStatus.IN_LEDGER]} in the ledger, "
                f"{n[RunStatus.RESUME]} to continue, {n[RunStatus.TRAIN]} to train", file=sys.stderr,
            )  # fmt: skip

    def finished(self, planned, entry) -> None:
        # The best variant so far: the mean accuracy over its finished seeds.
        self.best.setdefault(planned.variant.name, []).append(entry["accuracy"])
        name, values = max(self.best.items(), key=lambda item: sum(item[1]) / len(item[1]))
        self.bar.set_postfix_str(f"best so far {name} {sum(values) / len(values):.4f}")
        self.bar.update(1)

    def waiting(self, planned) -> None:
        self.bar.write(f"waiting for {planned.config.name}: another dlcli process is training it", file=sys.stderr)

    def hooks(self):
        return comparisons.Hooks(on_finish=self.finished, on_wait=self.waiting, on_round=self.round)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _round_line(number: int, runs) -> str:
    """'round 2: seeds 3 for relu-he, relu-xavier: 2 runs, 0 to resume, 2 to train'."""
    from dlcli.comparison import RunStatus

    names = list(dict.fromkeys(planned.variant.name for planned, _ in runs))
    seeds = sorted({planned.seed for planned, _ in runs})
    span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    who = f"all {len(names)} variants" if number == 1 and len(names) > 3 else ", ".join(names)
    counts = {how: sum(1 for _, h in runs if h is how) for how in RunStatus}
    return (f"round {number}: {span} for {who}: {counted(len(runs), 'run')}, "
            f"{counts[RunStatus.RESUME]} to resume, {counts[RunStatus.TRAIN]} to train")  # fmt: skip


def _print_plan(comparison, auto=None) -> None:
    """--dry-run: every planned run and what running the comparison would do with it;
    with --seeds auto, the first round's runs (later rounds depend on its results)."""
    from dlcli import report

    if auto is None:
        click.echo(report.plan_table([(run, how.value) for run, how in comparison.statuses]))
        click.echo(f"\n{_summary(comparison)} (dry run: nothing trained)")
        if comparison.pruning is not None:
            click.echo(f"{comparison.pruning.describe()}; the runs above are the first rung's")
        return
    if comparison.stop is not None:
        click.echo(f"{_summary(comparison, auto)}; nothing to train: {comparison.stop} (dry run)")
        return
    click.echo(report.plan_table([(run, how.value) for run, how in comparison.statuses]))
    click.echo(f"\n{_summary(comparison, auto)}\n{_round_line(1, comparison.statuses)}; later rounds add seeds "
               "only to variants whose verdict is open (dry run: nothing trained)")  # fmt: skip


def _print_results(comparison, *, sort: str, fmt: str, wide: bool, output: str | None, plot: str | None,
                   report_file: str | None) -> None:
    """The table on stdout (fitted to a terminal; whole in --output), the lines under it
    (what the verdicts were adjusted for, or why there are none; why --seeds auto
    stopped), the --plot picture and the --report page."""
    from dlcli import report

    rows = comparisons.sort_rows(comparison.rows, sort)
    text = report.compare_table(rows, fmt, columns=comparison.plan.columns)
    width = report.terminal_width(wide)
    click.echo(report.compare_table(rows, fmt, comparison.plan.columns, width=width))
    lines = report.verdict_lines(comparison.decision, stop=_stopped(comparison))
    shared = report.shared_line(rows, comparison.plan.columns)
    lines = ([shared] if shared else []) + lines
    paper = comparisons.PAPERS.get(comparison.plan.paper)
    if paper is not None and paper.reference and "paper_test_error" in rows[0]:
        lines.append(f"paper's test error: {paper.reference}")
    machine = fmt in report.MACHINE_FORMATS
    for line in ([] if machine else [""]) + lines:
        click.echo(report.wrap_line(line, width), err=machine)  # json and csv keep stdout parseable
    if output:
        from pathlib import Path

        from dlcli.core.runs import atomic_write_text

        atomic_write_text(Path(output), "\n".join([text, *([] if machine else ["", *lines])]) + "\n")
    if plot:
        the_plan = comparison.plan
        from dlcli import paper_plots

        report.comparison_plot(rows, comparisons.learning_curves(the_plan), plot, task=the_plan.task,
                               colors=paper_plots.plan_colors(the_plan))  # fmt: skip

        more = paper_plots.write_all(comparison, rows, plot)  # the depth profile, and a paper's figure
        click.echo(f"plots: {', '.join([plot, *more])}", err=True)
    if report_file:
        from dlcli import html_report

        html_report.write(report_file, comparison.plan, rows, command=html_report.command_line(sys.argv),
                          lines=lines)  # fmt: skip
        click.echo(f"report: {report_file}", err=True)


def _stopped(comparison) -> str | None:
    """--seeds auto's stop reason with how many of its runs trained now."""
    if comparison.stop is None:
        return None
    from dlcli.comparison import RunStatus

    now = comparison.count(RunStatus.TRAIN) + comparison.count(RunStatus.RESUME)
    if now == len(comparison.statuses):
        return f"{comparison.stop}; all trained now"
    return f"{comparison.stop}; {now} trained now, the rest from the ledger" if now else f"{comparison.stop}; " \
        "all from the ledger"


def _check_xor_options(task: str, settings: dict, *, dataset, limit, data, strategy: str) -> None:
    """The mnist-only options, refused on an xor comparison."""
    if task != "xor":
        return
    for name in ("dropout", "batchnorm", "dataset", "limit", "data"):
        given = {"dataset": dataset, "limit": limit, "data": data}.get(name, settings.get(name))
        if given is not None:
            raise click.UsageError(f"--{name} is for mnist comparisons; xor runs have no {name}")
    if strategy != "default":
        raise click.UsageError(f"--strategy {strategy} is for mnist comparisons; xor trains on one device")


# -- compare's shared settings -> the base run --------------------------------------------
# One block (_default_help, base_setting_options, _base_run): how the shared setting
# options become the comparison's base configuration; the rest of this file only
# passes that configuration on (in the Request).


def _default_help(setting) -> str:
    """'[default: mnist 3, xor 4]': where a comparison's runs start, task by task."""
    values = [f"{task} {settings.shown(setting, setting.default(task, compare=True))}"
              for task in ("mnist", "xor") if task in setting.tasks]  # fmt: skip
    return f"  [default: {', '.join(values)}]"


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


def data_setting_options(f):
    """compare's data options (mnist comparisons), from the settings table: None is the
    mnist default, and an xor comparison refuses them (_check_xor_options)."""
    for name in reversed(("dataset", "data", "limit")):
        s = settings.BY_NAME[name]
        default = s.defaults.get("mnist")
        shown = f"  [default: {default}]" if default is not None else ""
        f = setting_option(s, "mnist", default=None, show_default=False,
                           help_text=s.help.removesuffix(".") + " (mnist comparisons)." + shown)(f)  # fmt: skip
    return f


def _base_run(task: str, settings: dict, *, dataset, data, limit, logdir, checkpoint_dir):
    """The comparison's base configuration from the shared setting options, and the
    settings the user gave explicitly."""
    explicit = {name for name, value in settings.items() if value is not None}
    try:
        base = comparisons.base_config(
            task, settings, data=DataSpec(dataset=dataset, path=absolute_path(data), limit=limit),
            logdir=logdir, checkpoint_dir=checkpoint_dir,
        )  # fmt: skip
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    return base, explicit


# -- the command ---------------------------------------------------------------------------


@click.command()
@click.option("--task", type=Choice(["mnist", "xor"]), default="mnist",
              help="What every run learns: MNIST digits (an MLP) or the four XOR points.")
@click.option(
    "--what",
    multiple=True,
    type=Choice(list(ALL_PRESETS)),
    help=f"A preset: {comparisons.preset_help()}. Give a lecture's several times for several sets; a paper's "
    "runs alone, on its own base run (your options replace its settings, except those its variants set).  "
    "[default: all (mnist), depth (xor); none with --vary]",
)
@click.option("--vary", multiple=True, metavar="NAME=V1,V2,...",
              help="Vary one setting over values; several --vary make a grid of every combination. "
              "NAME: activation, init, layers, units, dropout, batchnorm, optimizer, lr, batch-size, epochs.")  # fmt: skip
@click.option("--seeds", type=SeedsType(), default=1, show_default=True,
              help="Runs per variant with seeds SEED, SEED+1, ...: mean ± std, 95% intervals, paired differences "
              "and verdicts (2 or more). auto: 3 seeds each, then more in rounds only for the variants whose "
              "verdict is still open, until all are decided or --max-seeds is reached.")  # fmt: skip
@click.option("--max-seeds", type=int, default=None, metavar="N",
              help=f"With --seeds auto: at most N seeds per variant.  [default: {comparisons.DEFAULT_MAX_SEEDS}]")
@click.option("--alpha", type=float, default=comparisons.DEFAULT_ALPHA, callback=_library_check(comparisons.check_alpha),
              show_default=True,
              help="The verdicts' family-wise error: the chance that any \"clearly behind\" or \"within\" claim "
              "of the table is wrong (Holm over every pair; split over the looks of --seeds auto).")  # fmt: skip
@click.option("--tolerance", type=float, default=None, callback=_library_check(comparisons.check_tolerance),
              metavar="D",
              help="Accuracy points (e.g. 0.01) within which a variant counts as good as the best: adds the "
              "verdict \"within D of the best\", so near-ties are decided too.  [default: none]")  # fmt: skip
@click.option("--seed", type=setting_type(settings.BY_NAME["seed"], None), default=0,
              help="The first seed: the runs of every variant get SEED, SEED+1, ...")
@click.option("--sort", type=Choice(list(SORT_KEYS)), default="order",
              help="Row order: as planned, best accuracy first, lowest loss, fewest seconds, or by name.")  # fmt: skip
@click.option("--format", "fmt", default="github", callback=check_format, metavar="FORMAT",
              help="Any tabulate format (github, plain, grid, pipe, latex, html, ...), json or csv.")
@click.option("--output", type=click.Path(), callback=check_output, help="Also write the table to this file.")
@click.option("--wide", is_flag=True,
              help="Every column (seconds, params, gradient ratio, each setting) even where it does not fit the "
              "terminal. Without it a terminal gets a table as wide as it is; a pipe or a file always gets "
              "every column, and json/csv every key.")  # fmt: skip
@click.option("--plot", type=click.Path(), callback=check_plot,
              help="Save final accuracy with intervals and the learning curves as a PNG (needs matplotlib); "
              "beside it STEM-depth.png, the weight-gradient norm of every layer at step 0 per variant, and for a "
              "paper's preset STEM-paper.png, its figure.")  # fmt: skip
@click.option("--report", "report_file", type=click.Path(dir_okay=False), callback=check_output, metavar="FILE.html",
              help="Also write the comparison as one self-contained HTML file: table, plots, pictures, settings, "
              "versions and the command. For a finished comparison, run the same command again in the same folder "
              "with --report (and without --force): every run comes from the ledger, nothing trains.")  # fmt: skip
@click.option("--points", type=POSITIVE, default=comparisons.DEFAULT_POINTS,
              help="Learning-curve points per mnist run: evaluations on the first 1000 test examples.")  # fmt: skip
@click.option("--force", is_flag=True, help="Rerun every variant, ignoring finished results in the ledger.")
@click.option("--dry-run", is_flag=True, help="Print the planned runs (and which are in the ledger); train nothing.")
@click.option("--yes", is_flag=True, help="Run a comparison of more than 100 runs.")
@base_setting_options
@data_setting_options
@logdir_option("Runs go to <logdir>/compare/<comparison>/<variant>-s<seed>/, the ledger to <logdir>/compare/results.jsonl.")
@checkpoint_dir_option("Checkpoints go to <checkpoint-dir>/compare/<comparison>/<variant>-s<seed>/.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--jobs", default="1", metavar="N|auto",
              help="Runs at a time, each in a worker process pinned to one GPU or its share of the CPU threads; "
              "auto: one per GPU, else one per 4 cores.")  # fmt: skip
@click.option("--cluster", metavar="ADDRESS", default=None, callback=_check_cluster,
              help="Send the runs to a Dask cluster (e.g. tcp://head:8786); needs pip install 'dlcli[cluster]'.")
@click.option("--cluster-files", type=Choice(["auto", "shared", "ship"]), default="auto",
              help="With --cluster: workers train in the driver's folders (shared file system) or ship each "
              "finished run folder back (ship); auto: shared when the workers see the driver's folders.")  # fmt: skip
@click.option("--prune", is_flag=True,
              help="Successive halving for big grids: every variant trains a first rung of the epochs, the best "
              "1/eta (mean accuracy over the seeds) continue, exactly resumed, to the next rung, until the "
              "survivors reach --epochs (rungs --epochs/eta^k: 9 epochs, eta 3: 1, 3, 9). Pruned variants stay in "
              "the table with their last rung's numbers, marked.")  # fmt: skip
@click.option("--prune-eta", type=click.IntRange(min=2), default=3, show_default=True,
              help="With --prune: the reduction factor eta (keep 1/eta of the variants at each rung).")
@click.option("--stop-fatal/--no-stop-fatal", default=True, show_default=True,
              help="With --prune: also stop, at a rung, a variant whose every run shows a fatal problem there "
              "(diverged, a layer 100% dead, stuck at chance: dlcli diagnose), even where successive halving "
              "would keep it.")  # fmt: skip
@distribute_options
def compare(task, what, vary, seeds, max_seeds, alpha, tolerance, seed, sort, fmt, output, wide, plot, report_file, points, force, dry_run, yes,
            dataset, data, limit, logdir, checkpoint_dir, quiet, jobs, cluster, cluster_files, strategy, devices,
            cpu_replicas, settings, prune, prune_eta, stop_fatal) -> None:  # fmt: skip
    """Compare variants as real runs and tabulate them with honest statistics.

    Presets (--what) are the lectures' questions. mnist: activation (sigmoid vs relu,
    Lab 10-1), init (normal vs xavier vs he, Lab 10-2), regularization (the deep net
    plain vs dropout vs batch norm, Labs 10-2-2 ... 10-4), all. xor: depth (1, 2 and 4
    layers, lecture 9). And the papers behind the lectures, scaled down to about two
    minutes on a laptop (docs/papers/): glorot (Glorot & Bengio 2010: sigmoid, tanh,
    softsign x standard vs normalised init), he (He et al. 2015: 30 ReLU layers, Xavier
    vs He init), batchnorm (Ioffe & Szegedy 2015: 3 sigmoid layers with and without
    batch norm). Your own question is a grid: --vary NAME=V1,V2,... (repeat it for
    every combination); the other options set what all runs share.

    Every variant gets the same seeds; the table shows mean ± std, a 95% interval (kept
    inside [0, 1]), each variant's difference to the best paired over the seeds, and a
    verdict: clearly behind, within D of the best (--tolerance D), clearly best, open,
    or no verdict (one seed). The verdicts are Holm-adjusted over every pair, at
    --alpha together. --seeds auto adds seeds only where the verdict is open.
    Finished runs are kept in a ledger, so running the same comparison again only
    trains what is missing (a bigger --max-seeds only the new seeds); an interrupted
    run is resumed.

    Try: dlcli compare --vary activation=sigmoid,tanh,relu --vary init=normal,he --seeds auto
    """
    _check_xor_options(task, settings, dataset=dataset, limit=limit, data=data, strategy=strategy)
    auto = _auto_seeds(seeds, max_seeds)
    base, explicit = _base_run(task, settings, dataset=dataset or "mnist", data=data, limit=limit, logdir=logdir,
                               checkpoint_dir=checkpoint_dir)  # fmt: skip
    request = comparisons.Request(
        task, base, what=what, vary=vary, explicit=frozenset(explicit), seeds=1 if auto else seeds, first_seed=seed,
        points=points, force=force, dry_run=dry_run, allow_many=yes, alpha=alpha, tolerance=tolerance, auto=auto,
        distribute=None if dry_run else distribute_spec(strategy, devices, cpu_replicas),
        prune=prune, prune_eta=prune_eta, stop_fatal=stop_fatal,
    )  # fmt: skip
    progress = _Progress(quiet, auto)
    try:
        comparison = comparisons.compare(
            request, make_runner=lambda: _compare_runner(jobs, cluster, cluster_files, strategy, quiet),
            on_plan=progress.start, hooks=progress.hooks(), on_rung=progress.rung,
        )  # fmt: skip
    except comparisons.PlanError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        progress.close()
    if dry_run:
        _print_plan(comparison, auto)
        unwritten = [f"{flag} {path}" for flag, path in (("--output", output), ("--plot", plot),
                                                          ("--report", report_file)) if path]  # fmt: skip
        if unwritten:
            click.echo(f"dry run: {', '.join(unwritten)} not written (there are no results yet)")
    else:
        _print_results(comparison, sort=sort, fmt=fmt, wide=wide, output=output, plot=plot,
                       report_file=report_file)

