"""`dlcli diagnose RUN`: the training problem a run shows, its evidence and the fix;
with --try-fixes, the run against those fixes over paired seeds (compare's machinery)."""

from __future__ import annotations

import json

import click

from dlcli.cli.compare import SeedsType
from dlcli.cli.options import checkpoint_dir_option, logdir_option


@click.command("diagnose")
@click.argument("run", type=click.Path())
@click.option("--json", "as_json", is_flag=True,
              help="Print the findings as JSON on stdout (an object; a list for a comparison's folder).")  # fmt: skip
@click.option("--try-fixes", is_flag=True,
              help="Then train the run's config and each fix its findings name (ReLU, He or Xavier init, batch "
              "norm, a lower learning rate, ...) with the same seeds, as dlcli compare does, and say which "
              "fixes are clearly better than the run.")  # fmt: skip
@click.option("--seeds", type=SeedsType(), default=None,
              help="With --try-fixes: seeds per variant, or auto (as compare's --seeds).  [default: 3]")
@click.option("--max-seeds", type=int, default=None, metavar="N", help="With --try-fixes --seeds auto: at most N.")
@logdir_option("With --try-fixes: runs go to <logdir>/compare/fixes-<run>-<hash>/.")
@checkpoint_dir_option("With --try-fixes: checkpoints go to <checkpoint-dir>/compare/fixes-<run>-<hash>/.")
@click.option("-q", "--quiet", is_flag=True, help="With --try-fixes: no progress bars.")
def diagnose(run: str, as_json: bool, try_fixes: bool, seeds, max_seeds, logdir, checkpoint_dir, quiet) -> None:
    """Name a run's training problem, with its evidence and the lecture's fix.

    RUN is a run's checkpoint folder (checkpoints/<run>), or a comparison's
    (checkpoints/compare/<set>): then every run in it, grouped by variant. Reads
    the run's records only (run.json and its logged scalars: no training, no
    TensorFlow) and checks them for: divergence, exploding and vanishing
    gradients, dead (ReLU) and saturated (sigmoid) units, a loss stuck at chance,
    slow convergence, an oscillating loss and over-fitting. Each finding gives its
    layers and steps, the run's own numbers, and the fix as a dlcli command; a run
    with none is healthy. Thresholds and their reasons: docs/diagnosis.md.

    With --try-fixes (one run): a comparison of the run against the fixes, paired
    over seeds, with compare's table and verdicts.
    """
    from dlcli import diagnosis

    folders = diagnosis.run_folders(run)
    comparison = folders != [diagnosis.Path(run)]
    if try_fixes and (comparison or as_json):
        raise click.UsageError("--try-fixes takes one run's folder, and prints a table: not with --json"
                               if not comparison else "--try-fixes takes one run's folder, not a comparison's")
    if not try_fixes and (seeds is not None or max_seeds is not None):
        raise click.UsageError("--seeds and --max-seeds are for --try-fixes")
    found = [diagnosis.diagnose(folder) for folder in folders]
    if as_json:
        click.echo(json.dumps(diagnosis.to_json(found, comparison=comparison), indent=2))
        return
    click.echo(diagnosis.text(found, comparison=comparison))
    if try_fixes:
        _try_fixes(run, seeds, max_seeds, logdir, checkpoint_dir, quiet)


def _try_fixes(run, seeds, max_seeds, logdir, checkpoint_dir, quiet) -> None:
    import dlcli.comparison as comparisons
    from dlcli import diagnosis
    from dlcli.cli.compare import _auto_seeds, _print_results, _Progress
    from dlcli.cli.options import progress_bar

    seeds = 3 if seeds is None else seeds
    auto = _auto_seeds(seeds, max_seeds)
    _, request = diagnosis.fixes_request(run, seeds=seeds if auto is None else 1, auto=auto, logdir=logdir,
                                         checkpoint_dir=checkpoint_dir)  # fmt: skip
    if request is None:
        click.echo("\nnothing to fix: no fix to try")
        return
    click.echo("")
    progress = _Progress(quiet, auto)
    try:
        result = comparisons.compare(
            request, make_runner=lambda: comparisons.SerialRunner(progress_factory=lambda: progress_bar(quiet)),
            on_plan=progress.start, hooks=progress.hooks(),
        )  # fmt: skip
    finally:
        progress.close()
    _print_results(result, sort="order", fmt="github", wide=False, output=None, plot=None, report_file=None)
    click.echo("")
    for line in diagnosis.fixes_verdict(result):
        click.echo(line)
