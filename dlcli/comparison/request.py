"""A comparison as one call: `compare(Request(...))` plans it, reads the ledger once,
says what each run needs, runs the missing ones and returns the rows with their verdicts.
Every comparison runs through the one loop of `policy`, with its policy: fixed seeds
(`policy.Fixed`), `--seeds auto` (`sequential.SeedsAuto`) or `--prune` (`prune.Pruning`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

from dlcli.comparison import policy
from dlcli.comparison.driver import Hooks
from dlcli.comparison.ledger import Ledger, RunStatus, status
from dlcli.comparison.plan import DEFAULT_POINTS, MAX_RUNS, Plan, PlannedRun, plan
from dlcli.comparison.prune import DEFAULT_ETA, Pruning
from dlcli.comparison.runners import Runner, SerialRunner
from dlcli.comparison.stats import (
    DEFAULT_ALPHA,
    AutoSeeds,
    Judging,
)
from dlcli.config import RunConfig
from dlcli.errors import ConfigError


class PlanError(ConfigError):
    """A comparison that cannot be planned as asked: the caller's input is wrong (the
    CLI's usage error), as opposed to a failure while it runs."""


@dataclass(frozen=True)
class Request:
    """What to compare and how: everything `compare` needs but where the runs train."""

    task: str
    base: RunConfig  # the shared run: the task's defaults with the caller's settings (plan.base_config)
    what: tuple[str, ...] = ()  # presets
    vary: tuple[str, ...] = ()  # NAME=V1,V2,... grids
    explicit: frozenset[str] = frozenset()  # settings the caller gave (a preset may not override them)
    seeds: int = 1
    first_seed: int = 0
    points: int = DEFAULT_POINTS
    force: bool = False  # rerun everything: the ledger's results and checkpointed folders are not reused
    dry_run: bool = False  # plan and say what each run needs; train nothing
    allow_many: bool = False  # more than MAX_RUNS runs
    distribute: object = None  # a DistributeSpec for every run, or None for one device
    # How sure (stats.Judging): the verdicts' family-wise level, the "within D of the best"
    # margin in accuracy points (None: no such verdict), and --seeds auto's design (None:
    # exactly `seeds` seeds; else `seeds` is unused and the rounds decide, up to max_seeds).
    alpha: float = DEFAULT_ALPHA
    tolerance: float | None = None
    auto: AutoSeeds | None = None
    # --prune: successive halving over the variants (see prune.py), keeping 1/prune_eta a rung.
    prune: bool = False
    prune_eta: int = DEFAULT_ETA
    stop_fatal: bool = True  # --prune also stops a variant whose every run shows a fatal problem at a rung
    # Variants given one by one instead of `what`/`vary`: ((name, {setting: value}), ...),
    # in <logdir>/compare/<label>-<hash>/ (dlcli diagnose --try-fixes).
    named: tuple = ()
    label: str | None = None

    @property
    def judging(self) -> Judging:
        return Judging(self.alpha, self.tolerance, self.auto)

    @property
    def planned_seeds(self) -> int:
        """The seeds the plan holds per variant: all of them, or --seeds auto's budget."""
        return self.seeds if self.auto is None else self.auto.max_seeds


@dataclass
class Comparison:
    """A planned comparison, what each of its runs needs, and once run, its rows."""

    plan: Plan
    ledger: Ledger  # as read for the plan (once)
    statuses: list[tuple[PlannedRun, RunStatus]]
    rows: list[dict] | None = None  # one per variant; None until run (a dry run)
    decision: object = None  # the verdicts.Decision the rows' verdicts come from; None until run
    stop: str | None = None  # --seeds auto: why the rounds stopped ("all decided after 5 seeds (15 runs)")
    rounds: int = 0  # --seeds auto: how many rounds trained (or reused) runs
    pruning: Pruning | None = None  # --prune: the rungs (statuses are then the first rung's)
    # {variant: its runs' dlcli.diagnosis.Diagnosis (None: records unreadable)}; None until run
    diagnoses: dict | None = None

    def count(self, how: RunStatus) -> int:
        return sum(1 for _, h in self.statuses if h is how)


def prepare(request: Request) -> Comparison:
    """The plan, the ledger and each run's status; nothing is trained or written."""
    try:
        _check_judging(request)
        the_plan = plan(request.task, request.what, request.vary, request.base, explicit=request.explicit,
                        seeds=request.planned_seeds, first_seed=request.first_seed, points=request.points,
                        named=request.named, label=request.label)  # fmt: skip
    except ConfigError as exc:
        raise PlanError(str(exc)) from None
    ledger = Ledger.read(the_plan.ledger_path, force=request.force)
    if request.prune:  # --prune: a hook of its own (prune.py)
        try:
            pruning = Pruning(the_plan, request.prune_eta, stop_fatal=request.stop_fatal)
        except ConfigError as exc:
            raise PlanError(str(exc)) from None
        return Comparison(the_plan, ledger, pruning.first_statuses(ledger, force=request.force), pruning=pruning)
    return Comparison(the_plan, ledger, status(the_plan, ledger, force=request.force))


def compare(
    request: Request,
    *,
    make_runner: Callable[[], Runner] = SerialRunner,
    on_plan: Callable[[Comparison, Runner], None] = lambda comparison, runner: None,
    hooks: Hooks | None = None,
    on_rung: Callable = lambda index, pruning, statuses: None,
) -> Comparison:
    """Plan the comparison and, unless it is a dry run, run what is missing and fill
    in its rows. `make_runner` is called once the plan stands (choosing a runner may
    ask TensorFlow for GPUs); `on_plan` hears the plan and the runner before anything
    trains; `hooks` each run as it starts and finishes; `on_rung` each --prune rung
    (see Pruning.drive)."""
    comparison = prepare(request)
    if not request.dry_run and request.base.data.path is not None:
        from dlcli.core.data import check_path  # NumPy only: refused before TensorFlow loads

        check_path(request.base.data.path)
    if request.auto is not None:
        from dlcli.comparison.sequential import compare_auto

        return _diagnosed(compare_auto(comparison, request, make_runner=make_runner, on_plan=on_plan, hooks=hooks))
    if request.dry_run:
        return comparison
    runs = len(comparison.statuses)
    if runs > MAX_RUNS and not request.allow_many:
        raise PlanError(
            f"this comparison makes {runs} runs, more than {MAX_RUNS}; "
            "pass --yes to run them all, or use fewer --vary values or --seeds"
        )
    if comparison.pruning is not None:
        comparison.pruning.check_folders(comparison.ledger, force=request.force)
    with contextlib.closing(make_runner()) as runner:
        on_plan(comparison, runner)
        if comparison.pruning is not None:
            comparison.rows = comparison.pruning.drive(comparison.ledger, request.judging, runner=runner,
                                                       force=request.force, distribute=request.distribute,
                                                       hooks=hooks, on_rung=on_rung)  # fmt: skip
            comparison.decision = comparison.pruning.decision  # the last rung's: the survivors'
            comparison.plan = comparison.pruning.reached_plan(comparison.rows)
            return _diagnosed(comparison)
        fixed = policy.Fixed(comparison.plan, request.judging)
        policy.run(fixed, comparison.ledger, runner=runner, force=request.force, distribute=request.distribute,
                   hooks=hooks)  # fmt: skip
    comparison.decision, comparison.rows = fixed.decision, fixed.rows
    return _diagnosed(comparison)


def _diagnosed(comparison: Comparison) -> Comparison:
    """Each row's `diagnosis`: its variant's problems, read from the records of the
    runs the rows rest on (comparison.plan as it turned out; files only, ~40 ms a run)."""
    if comparison.rows is not None:
        from dlcli import diagnosis

        if any(comparison.ledger.get(run.config) is None for run in comparison.plan.runs):
            comparison.ledger.refresh()  # the lines this command appended (only those are read)
        comparison.diagnoses = diagnosis.of_runs(comparison.plan.runs, comparison.ledger.get)
        diagnosis.label_rows(comparison.rows, comparison.diagnoses)
    return comparison


def check_alpha(alpha: float) -> float:
    """--alpha: the verdicts' family-wise level (the command line and the API ask here)."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"--alpha must be between 0 and 1, got {alpha}")
    return alpha


def check_tolerance(tolerance: float | None) -> float | None:
    """--tolerance: accuracy points within which a variant counts as good as the best."""
    if tolerance is not None and not 0.0 < tolerance < 1.0:
        raise ConfigError(f"--tolerance is in accuracy points, between 0 and 1 (e.g. 0.01), got {tolerance}")
    return tolerance


def _check_judging(request: Request) -> None:
    """The verdicts' settings, whoever built the request."""
    check_alpha(request.alpha)
    check_tolerance(request.tolerance)
    auto = request.auto
    if auto is not None and request.prune:
        raise ConfigError("--prune and --seeds auto exclude each other for now: prune with a fixed --seeds N")
    if auto is not None and not 2 <= auto.min_seeds <= auto.max_seeds:
        raise ConfigError(f"--max-seeds must be at least {auto.min_seeds} with --seeds auto, got {auto.max_seeds}")
