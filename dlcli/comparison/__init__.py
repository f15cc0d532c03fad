"""`dlcli compare`: grids of real runs and the lectures' variant sets, with statistics.

A comparison is a list of variants (each a few settings on top of a shared base run),
every one trained with the same seeds. The variants come from a preset (`--what`: the
lectures' sets) or from a grid (`--vary NAME=V1,V2`: the cartesian product), or both.
Each (variant, seed) is an ordinary run through `dlcli.core.session.train` (the same
loop and checkpoints as `dlcli mnist` and `dlcli xor`), logged under
`<logdir>/compare/<label>/<variant>-s<seed>/`. Every finished run is appended to a
ledger, `<logdir>/compare/results.jsonl`, keyed by its whole configuration: running a
comparison again reuses what is finished, continues (exactly) a run that was
interrupted, and trains only what is missing.

Statistics (`stats`, computed by `dlcli.verdicts`): each variant's mean test accuracy
with its sample std and a 95% Student-t interval over seeds kept inside [0, 1], its
difference to the best variant *paired* over the seeds they share (a seed fixes the
initial weights and the data order, so the pairs differ only in the variant), and a
verdict ("clearly behind", "within D of the best", "clearly best", "open", "no verdict")
whose family-wise error over all pairs is at most alpha (Holm). `--seeds auto` adds
seeds in rounds where the verdict is open (`sequential`), alpha split over its looks.

Modules: `settings` and `presets` (what a run can vary), `plan`, `ledger` (with
`claims`, for two drivers on the same folders), `runners` (here; `processes` and
`cluster` elsewhere), `driver` (the runs -> the ledger), `request` (the whole
comparison as one call), `sequential` (its --seeds auto rounds), `stats`, `curves`.

Standard library only at import: the CLI plans, validates and dry-runs a comparison
without TensorFlow.
"""

# The package's public names, so callers need not know which module holds each.
# ruff: noqa: F401
from dlcli.comparison.curves import Curves, learning_curves
from dlcli.comparison.driver import (
    Hooks,
    drive,
    hparams_of,
    layout_charts,
    write_layout,
)
from dlcli.comparison.ledger import (
    KEY_FORMAT,
    Ledger,
    RunStatus,
    append_ledger,
    ledger_contents,
    ledger_key,
    read_ledger,
    status,
)
from dlcli.comparison.plan import (
    DEFAULT_POINTS,
    LEDGER,
    MAX_RUNS,
    Plan,
    PlannedRun,
    Variant,
    base_config,
    parse_vary,
    plan,
)
from dlcli.comparison.presets import ALL_PRESETS, DEFAULT_PRESET, PAPERS, PRESETS, VARIANTS, Paper, preset_help
from dlcli.comparison.request import Comparison, PlanError, Request, check_alpha, check_tolerance, compare, prepare
from dlcli.comparison.runners import Runner, RunTask, SerialRunner, execute
from dlcli.comparison.settings import (
    SETTINGS,
    TASK_DEFAULTS,
    Setting,
    apply_settings,
    format_value,
    setting_value,
)
from dlcli.comparison.stats import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_SEEDS,
    MIN_SEEDS,
    SORT_KEYS,
    AutoSeeds,
    Judging,
    accuracies_of,
    auto_seeds,
    sort_rows,
    starred,
    summarize,
    summarize_all,
)
