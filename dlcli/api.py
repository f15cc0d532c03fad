"""dlcli from Python: `dlcli.xor(...)`, `dlcli.mnist(...)`, `dlcli.compare(...)`,
`dlcli.resume(path)`, `dlcli.inspect(run)`, `dlcli.diagnose(run)` and `dlcli.Lab`, returning result objects
that show themselves in Jupyter (dlcli.results).

The keyword arguments are the commands' options under their Python names (`batch_size`
for `--batch-size`), generated from the settings table (dlcli.settings) as the options
are: the same defaults, and every value read and checked by the same `Setting.parse`,
so a value the command line refuses is refused here with the same one-line message, as
a `dlcli.errors.DlcliError`. After reading them, a run goes through the code the
command uses (`command_config`, shared with dlcli.cli.runs; `comparison.compare`).

Several calls reuse data and compiled training loops through a `Lab`, which owns the
`Reuse` that `dlcli compare` keeps for its runs; each module-level function makes a
fresh Lab, so nothing is kept between calls in module state.

Standard library only at import (with dlcli.settings and dlcli.config): TensorFlow is
imported when something trains, and `import dlcli` imports none of this until a name
is asked for.
"""

from __future__ import annotations

import difflib
import os
from inspect import Parameter, Signature

from dlcli import settings
from dlcli.comparison.plan import DEFAULT_POINTS
from dlcli.config import RunConfig, task_config
from dlcli.errors import ConfigError
from dlcli.settings import validate_run_name
from dlcli.wording import counted

TASKS = ("xor", "mnist")
LOGDIR_ENV, CHECKPOINT_DIR_ENV = "DLCLI_LOGDIR", "DLCLI_CHECKPOINT_DIR"  # as the commands' --logdir, --checkpoint-dir


class UnknownArgument(ConfigError, TypeError):
    """A keyword argument the function does not take (a TypeError too, as Python's own is)."""


# -- reading keyword arguments through the settings table -------------------------------


def _plain(value):
    """A NumPy scalar as the Python number it holds (np.float64(0.1) from a np.linspace
    sweep, np.int64 from np.arange); anything else as it is."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def setting_value(setting: settings.Setting, value, task: str | None):
    """`value` for `setting`, read and checked as the option --NAME reads its text
    (`Setting.parse`: the parser, range and message the command line and --vary use).
    Python values of the setting's type are taken as they are (text as the option's);
    a number becomes a float as the option and run.json make it, so a run's config, its
    folder and its ledger key are the command line's for the same values."""
    value = _plain(value)
    if setting.kind is settings.PATH and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if setting.kind is settings.NUMBER and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # before the check too: `got 1.0`, as --dropout 1 says
    return setting.parse(value, task)


def _refuse_unknown(function: str, given, known, task: str | None) -> None:
    for key in given:
        if key in known:
            continue
        setting = settings.BY_NAME.get(key.replace("_", "-"))
        if setting is not None:
            why = f" ({task} runs have no {setting.name})" if task and task not in setting.tasks else ""
        else:
            close = difflib.get_close_matches(key, known, n=1)
            why = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownArgument(f"{function}() got an unexpected keyword argument {key!r}{why}")


def _folder(value, env: str, default: str) -> str:
    """A base folder: the argument, else the environment variable the command reads, else its default."""
    if value is None:
        value = os.environ.get(env) or default
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"a folder must be a path, got {value!r}")
    return os.fspath(value)


def command_config(task: str, values: dict, *, name: str | None, logdir: str, checkpoint_dir: str
                   ) -> tuple[RunConfig, bool]:  # fmt: skip
    """`dlcli TASK`'s run from its parsed settings ({setting name: value}, None keeping the
    default): the data path made absolute, the automatic name when none is given, checked
    by the settings table. Returns the config and whether its name is the automatic one.
    The command (dlcli.cli.runs) and `dlcli.TASK(...)` both build their runs here."""
    from dlcli.core.runs import default_run_name

    values = dict(values)
    if values.get("data") is not None:
        values["data"] = os.path.abspath(values["data"])
    if name is not None:
        validate_run_name(name)
    config = task_config(task, values, name=name or default_run_name(task), logdir=logdir,
                         checkpoint_dir=checkpoint_dir)  # fmt: skip
    return config.validate(), name is None


def check_before_training(config: RunConfig, auto_name: bool) -> None:
    """What a new run needs of the file system, checked before TensorFlow loads: its
    --data is there, and its name is not taken (the command and `dlcli.TASK` ask here)."""
    from dlcli.core.data import check_path  # NumPy only
    from dlcli.core.runs import RunFolder

    if config.data.path is not None:
        check_path(config.data.path)
    RunFolder.check_new(config, auto_name=auto_name)


def run_config(task: str, keywords: dict, *, logdir=None, checkpoint_dir=None) -> tuple[RunConfig, bool]:
    """The run `dlcli.TASK(**keywords)` asks for: every setting `dlcli TASK` offers as an
    option, by its Python name, read through the settings table; `name` as --name."""
    keywords = dict(keywords)
    name = keywords.pop("name", None)
    offered = {s.param: s for s in settings.for_command(task)}
    _refuse_unknown(f"dlcli.{task}", keywords, offered, task)
    values = {s.name: setting_value(s, keywords[p], task) for p, s in offered.items() if keywords.get(p) is not None}
    return command_config(task, values, name=name, logdir=_folder(logdir, LOGDIR_ENV, "logs"),
                          checkpoint_dir=_folder(checkpoint_dir, CHECKPOINT_DIR_ENV, "checkpoints"))  # fmt: skip


# -- a comparison's request from keyword arguments --------------------------------------

COMPARE_DATA = ("dataset", "data", "limit")  # compare's own data options, read by the table here


def _vary_items(vary) -> tuple[str, ...]:
    """`vary` as compare's --vary texts: {"activation": ["sigmoid", "relu"]} (any setting
    by its Python or option name) or the command line's "activation=sigmoid,relu"
    (one, or a list). The values are written as the table writes them and read back by
    --vary's own parser: the same checks and messages as `dlcli compare --vary`."""
    if not vary:
        return ()
    if isinstance(vary, str):
        return (vary,)
    if isinstance(vary, dict):
        items = []
        for key, values in vary.items():
            name = str(key).replace("_", "-")
            if isinstance(values, str):
                items.append(f"{name}={values}")
                continue
            if not hasattr(values, "__iter__"):
                values = [values]
            texts = []
            for value in values:
                text = settings.format_value(_plain(value))
                if "," in text:
                    raise ConfigError(f"--vary {name}: {text!r} holds a ',', which separates values")
                texts.append(text)
            items.append(f"{name}={','.join(texts)}")
        return tuple(items)
    if isinstance(vary, (list, tuple)) and all(isinstance(item, str) for item in vary):
        return tuple(vary)
    raise ConfigError(f"vary must be a dict {{setting: [values]}} or 'NAME=V1,V2' texts, got {vary!r}")


def _words(option: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        words = (value,)
    elif isinstance(value, (list, tuple)):
        words = tuple(value)
    else:
        raise ConfigError(f"{option} takes a name or a list of names, got {value!r}")
    for word in words:
        if not isinstance(word, str):
            raise ConfigError(f"{option} takes names, got {word!r}")
    return words


def _flag(option: str, value, default: bool | None = False) -> bool | None:
    """A yes/no argument: True or False (None: `default`), never a truthy stand-in."""
    value = _plain(value)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{option} must be True or False, got {value!r}")
    return value


def _choice(option: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"unknown {option} {value!r}; choose one of: {', '.join(choices)}")
    return value


def _integer(option: str, value) -> int:
    """An integer option's type; its range is checked where the command's is (the plan)."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"--{option} must be an integer, got {value!r}")
    return value


COMPARE_OPTIONS = ("task", "what", "vary", "seeds", "max_seeds", "alpha", "tolerance", "seed", "sort", "points",
                   "force", "dry_run", "yes")  # fmt: skip


def _fraction(option: str, value, default):
    """--alpha / --tolerance as a float (None: the default); its range is the library's
    (comparison.check_alpha / check_tolerance), checked when the request is prepared."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"--{option} must be a number, got {value!r}")
    return float(value)


def compare_request(keywords: dict, *, logdir=None, checkpoint_dir=None):
    """The `comparison.Request` `dlcli.compare(**keywords)` asks for, and its sort order:
    compare's options by their Python names, the shared run settings read as the
    command's options read them (any task's range first, then the task's own, in
    `comparison.base_config`), the data options (dataset, data, limit) by the table."""
    import dlcli.comparison as comparisons

    keywords = dict(keywords)
    shared = {s.param: s for s in settings.VARIED.values()}
    data = {settings.BY_NAME[n].param: settings.BY_NAME[n] for n in COMPARE_DATA}
    _refuse_unknown("dlcli.compare", keywords, (*COMPARE_OPTIONS, *shared, *data), None)
    task = _choice("task", keywords.get("task", "mnist"), TASKS)
    sort = _choice("sort", keywords.get("sort", "order"), tuple(comparisons.SORT_KEYS))
    given = {s.name: setting_value(s, keywords[p], None) for p, s in shared.items() if keywords.get(p) is not None}
    explicit = frozenset(given)
    # compare's data options are mnist's; on an xor comparison base_config refuses them
    # as the command does ("--data is for mnist comparisons; xor runs have no data").
    for param, s in data.items():
        if keywords.get(param) is not None:
            value = setting_value(s, keywords[param], "mnist")
            given[s.name] = os.path.abspath(value) if s.name == "data" else value
    base = comparisons.base_config(task, given, logdir=_folder(logdir, LOGDIR_ENV, "logs"),
                                   checkpoint_dir=_folder(checkpoint_dir, CHECKPOINT_DIR_ENV, "checkpoints"))  # fmt: skip
    seeds = keywords.get("seeds", 1)
    seeds = seeds if seeds == "auto" else _integer("seeds", seeds)
    max_seeds = keywords.get("max_seeds")
    auto = comparisons.auto_seeds(seeds, None if max_seeds is None else _integer("max-seeds", max_seeds))
    request = comparisons.Request(
        task, base, what=_words("what", keywords.get("what")), vary=_vary_items(keywords.get("vary")),
        explicit=explicit, seeds=1 if auto else seeds, auto=auto,
        alpha=_fraction("alpha", keywords.get("alpha"), comparisons.DEFAULT_ALPHA),
        tolerance=_fraction("tolerance", keywords.get("tolerance"), None),
        first_seed=_integer("seed", keywords.get("seed", 0)),
        points=_integer("points", keywords.get("points", DEFAULT_POINTS)),
        force=_flag("force", keywords.get("force")), dry_run=_flag("dry_run", keywords.get("dry_run")),
        allow_many=_flag("yes", keywords.get("yes")),
    )  # fmt: skip
    return request, sort


# -- the Lab: what several calls share -----------------------------------------------------


class Lab:
    """Runs and comparisons that share one process's data sets and compiled training
    loops (a `dlcli.core.reuse.Reuse`, in `lab.reuse`), and where they write.

        lab = dlcli.Lab(logdir="logs")
        lab.compare(task="xor", what="depth", epochs=2000)
        lab.mnist(data="digits.npz", limit=2000)     # the data set is read once...
        lab.mnist(data="digits.npz", limit=2000, seed=1)  # ...and this reuses the compiled loop

    Its methods are the module's functions (`dlcli.xor` is `Lab().xor` with a new Lab).
    """

    def __init__(self, logdir=None, checkpoint_dir=None, *, quiet: bool = False):
        from dlcli.core.reuse import Reuse

        self.logdir = _folder(logdir, LOGDIR_ENV, "logs")
        self.checkpoint_dir = _folder(checkpoint_dir, CHECKPOINT_DIR_ENV, "checkpoints")
        self.quiet = _flag("quiet", quiet)
        self.reuse = Reuse()

    def __repr__(self) -> str:
        loops = len(self.reuse.loops)
        count = len(self.reuse.datasets)
        return (f"Lab(logdir={self.logdir!r}, checkpoint_dir={self.checkpoint_dir!r}; keeps "
                f"{counted(count, 'data set')} and {counted(loops, 'compiled loop')})")  # fmt: skip

    def _progress(self, quiet):
        from dlcli.core.progress import Progress

        quiet = _flag("quiet", quiet, None)
        # tqdm.auto: a widget bar in Jupyter (with ipywidgets), text on a terminal.
        return Progress(enabled=False if (self.quiet if quiet is None else quiet) else None)

    def _train(self, task: str, keywords: dict, quiet):
        _flag("quiet", quiet, None)
        config, auto = run_config(task, keywords, logdir=self.logdir, checkpoint_dir=self.checkpoint_dir)
        check_before_training(config, auto)
        from dlcli.core import session
        from dlcli.results import RunResult

        result = session.train(config, auto_name=auto, progress=self._progress(quiet), reuse=self.reuse)
        return RunResult.of(result)

    def xor(self, *, quiet=None, **keywords):
        return self._train("xor", keywords, quiet)

    def mnist(self, *, quiet=None, **keywords):
        return self._train("mnist", keywords, quiet)

    def resume(self, path, *, epochs=None, quiet=None, **keywords):
        """Continue the run in checkpoint folder `path` (or a RunResult) to its target,
        or to `epochs` (raising the target), as `dlcli resume` does."""
        for key in keywords:
            why = settings.fixed_on_resume(key)
            if why:
                raise UnknownArgument(why)
        _refuse_unknown("dlcli.resume", keywords, (), None)
        if epochs is not None:
            epochs = setting_value(settings.BY_NAME["epochs"], epochs, None)
        _flag("quiet", quiet, None)
        from dlcli.core.runs import RunFolder

        RunFolder.for_resume(_run_folder(path), epochs)  # the refusals that need no TensorFlow, before it loads
        from dlcli.core import session
        from dlcli.results import RunResult

        result = session.resume(_run_folder(path), epochs=epochs, progress=self._progress(quiet), reuse=self.reuse)
        return RunResult.of(result)

    def compare(self, *, quiet=None, **keywords):
        _flag("quiet", quiet, None)
        request, sort = compare_request(keywords, logdir=self.logdir, checkpoint_dir=self.checkpoint_dir)
        import dlcli.comparison as comparisons
        from dlcli.results import ComparisonResult

        # Here, run after run, with this lab's data and compiled loops: a notebook's kernel
        # is one process (the command's --jobs and --cluster are not offered here).
        comparison = comparisons.compare(
            request, make_runner=lambda: comparisons.SerialRunner(lambda: self._progress(quiet), reuse=self.reuse))
        return ComparisonResult(comparison, sort=sort)

    def inspect(self, run, *, step=None):
        """A run's per-layer diagnostics (`dlcli inspect RUN`): `run` is its checkpoint
        folder or a RunResult; the first and last logged step, or the one nearest `step`."""
        if step is not None and _integer("step", step) < 0:
            raise ConfigError(f"--step must be an integer >= 0, got {step!r}")
        from dlcli import inspection
        from dlcli.results import InspectionResult

        inspection.check(_run_folder(run))  # the refusals that need no TensorFlow, before it loads
        found = inspection.load(_run_folder(run))
        return InspectionResult(found, found.rows(inspection.chosen_steps(found, step)))

    def diagnose(self, run):
        """A run's training problems, their evidence and fixes (`dlcli diagnose RUN`):
        `run` is its checkpoint folder or a RunResult, or a comparison's folder (every
        run in it). Reads the run's records only: no training, no TensorFlow."""
        from dlcli import diagnosis
        from dlcli.results import DiagnosisResult

        folder = _run_folder(run)
        folders = diagnosis.run_folders(folder)
        return DiagnosisResult([diagnosis.diagnose(f) for f in folders],
                               comparison=folders != [diagnosis.Path(folder)])  # fmt: skip

    def try_fixes(self, run, *, seeds=3, max_seeds=None, quiet=None):
        """`dlcli diagnose RUN --try-fixes`: the run's config against each fix its findings
        name, over paired seeds, as a comparison (compare's ledger: runs already trained are
        reused). Returns a ComparisonResult whose `fixes` holds the lines saying which fixes
        are clearly better than the run; None when the diagnosis found nothing to fix."""
        import dlcli.comparison as comparisons
        from dlcli import diagnosis
        from dlcli.results import ComparisonResult

        seeds = seeds if seeds == "auto" else _integer("seeds", seeds)
        auto = comparisons.auto_seeds(seeds, None if max_seeds is None else _integer("max-seeds", max_seeds))
        _, request = diagnosis.fixes_request(_run_folder(run), seeds=1 if auto else seeds, auto=auto,
                                             logdir=self.logdir, checkpoint_dir=self.checkpoint_dir)  # fmt: skip
        if request is None:
            return None
        comparison = comparisons.compare(
            request, make_runner=lambda: comparisons.SerialRunner(lambda: self._progress(quiet), reuse=self.reuse))
        result = ComparisonResult(comparison, sort="order")
        result.fixes = diagnosis.fixes_verdict(comparison)
        return result


def _run_folder(run) -> str:
    folder = getattr(run, "checkpoint_dir", run)
    if not isinstance(folder, (str, os.PathLike)):
        raise ConfigError(f"expected a run's checkpoint folder or a run result, got {run!r}")
    return os.fspath(folder)


# -- signatures and help generated from the settings table -----------------------------------


def _keyword(name: str, default) -> Parameter:
    return Parameter(name, Parameter.KEYWORD_ONLY, default=default)


def _settings_help(task: str | None, settings_list) -> str:
    lines = []
    for s in settings_list:
        if task is None:
            shown = ", ".join(f"{t} {settings.shown(s, s.default(t, compare=True))}" for t in TASKS if t in s.tasks)
        else:
            shown = settings.shown(s, s.default(task))
        text = s.command_help.get(task, s.help) if task else s.help
        lines.append(f"    {s.param}: {text} [default: {shown}]")
    return "\n".join(lines)


def _run_signature(task: str) -> Signature:
    params = [_keyword(s.param, s.default(task)) for s in settings.for_command(task)]
    params += [_keyword("name", None), _keyword("quiet", None)]
    return Signature(params)


def _compare_settings() -> list:
    return [*settings.VARIED.values(), *(settings.BY_NAME[n] for n in COMPARE_DATA)]


_RUN_DOC = """Train one {task} run, as `dlcli {task}` does, and return its RunResult.

{about}

Keyword arguments (`dlcli {task}`'s options by their Python names; the same defaults,
checks and messages):
{settings}
    name: the run's name (a folder under the logdir and checkpoint folders) [default: {task}-DATE-TIME]
    quiet: no progress bar [default: the Lab's, False]

Bad values raise dlcli.errors.ConfigError with the command line's message.
"""

_ABOUT = {
    "xor": "The four XOR points, full-batch gradient descent (Labs 09-1 ... 09-4): the result has "
    "the truth table and the decision boundary as an RGB array.",
    "mnist": "An MLP on MNIST or Fashion-MNIST (Labs 10-1 ... 10-4): the result has the test "
    "accuracy, the confusion matrix (rows true, columns predicted) and the surest mistakes.",
}

_COMPARE_DOC = """Compare variants as real runs, as `dlcli compare` does; returns a ComparisonResult.

    task: mnist or xor [default: mnist]
    what: a preset or several (activation, init, regularization, all), or one paper
          (glorot, he, batchnorm: docs/papers/); xor: depth
          [default: all (mnist), depth (xor); none with vary]
    vary: a grid, {{"activation": ["sigmoid", "relu"], "lr": [0.1, 0.01]}} (or the command
          line's "activation=sigmoid,relu" texts): every combination is a variant
    seeds: runs per variant, seeds seed, seed+1, ... [default: 1]; "auto": 3 each, then
           more only where the verdict is still open, up to max_seeds
    max_seeds: with seeds="auto", the budget per variant [default: 10]
    alpha: the verdicts' family-wise error [default: 0.05]
    tolerance: accuracy points within which a variant counts as good as the best
           (adds the verdict "within D of the best") [default: none]
    seed: the first seed [default: 0]
    sort: row order: order, accuracy, loss, seconds, name [default: order]
    points: learning-curve points per mnist run [default: 10]
    force: rerun everything, ignoring the ledger [default: False]
    dry_run: plan only; the result lists the planned runs [default: False]
    yes: allow more than 100 runs [default: False]
    quiet: no progress bars [default: the Lab's, False]
What every run shares (None: the task's default, as the command's options):
{settings}

Runs train here, one after another, sharing the Lab's data and compiled loops; finished
runs are kept in the ledger (<logdir>/compare/results.jsonl), so calling it again trains
only what is missing.
"""


def _make_function(name: str, method, signature: Signature, doc: str):
    """The module-level `name`: `method` of a new Lab (its own data and compiled loops,
    nothing kept after the call), taking the Lab's logdir/checkpoint_dir as keywords."""

    def function(*args, logdir=None, checkpoint_dir=None, **keywords):
        return method(Lab(logdir, checkpoint_dir), *args, **keywords)

    folders = [_keyword("logdir", None), _keyword("checkpoint_dir", None)]
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind is not Parameter.KEYWORD_ONLY]
    keyword = [p for p in params if p.kind is Parameter.KEYWORD_ONLY]
    function.__signature__ = signature.replace(parameters=[*positional, *keyword, *folders])
    function.__name__ = function.__qualname__ = name
    function.__module__ = "dlcli"
    function.__doc__ = doc + (
        "\n    logdir, checkpoint_dir: where runs write [default: $DLCLI_LOGDIR or logs, "
        "$DLCLI_CHECKPOINT_DIR or checkpoints]\n\nA new Lab for this call: nothing is reused from earlier calls "
        "(use a dlcli.Lab for that).\n"
    )
    return function


def _described(method, signature: Signature, doc: str):
    method.__signature__ = Signature([Parameter("self", Parameter.POSITIONAL_OR_KEYWORD),
                                      *signature.parameters.values()])  # fmt: skip
    method.__doc__ = doc
    return method


_DOCS = {task: _RUN_DOC.format(task=task, about=_ABOUT[task],
                               settings=_settings_help(task, settings.for_command(task))) for task in TASKS}  # fmt: skip
_SIGNATURES = {task: _run_signature(task) for task in TASKS}
_described(Lab.xor, _SIGNATURES["xor"], _DOCS["xor"])
_described(Lab.mnist, _SIGNATURES["mnist"], _DOCS["mnist"])

xor = _make_function("xor", Lab.xor, _SIGNATURES["xor"], _DOCS["xor"])
mnist = _make_function("mnist", Lab.mnist, _SIGNATURES["mnist"], _DOCS["mnist"])
resume = _make_function("resume", Lab.resume, Signature([
    Parameter("path", Parameter.POSITIONAL_OR_KEYWORD), _keyword("epochs", None), _keyword("quiet", None)]),
    Lab.resume.__doc__)  # fmt: skip
inspect = _make_function("inspect", Lab.inspect, Signature([
    Parameter("run", Parameter.POSITIONAL_OR_KEYWORD), _keyword("step", None)]), Lab.inspect.__doc__)  # fmt: skip
diagnose = _make_function("diagnose", Lab.diagnose, Signature([Parameter("run", Parameter.POSITIONAL_OR_KEYWORD)]),
                          Lab.diagnose.__doc__)  # fmt: skip


def _compare_signature() -> Signature:
    own = [_keyword("task", "mnist"), _keyword("what", ()), _keyword("vary", ()), _keyword("seeds", 1),
           _keyword("max_seeds", None), _keyword("alpha", None), _keyword("tolerance", None), _keyword("seed", 0), _keyword("sort", "order"), _keyword("points", DEFAULT_POINTS), _keyword("force", False),
           _keyword("dry_run", False), _keyword("yes", False), _keyword("quiet", None)]  # fmt: skip
    return Signature(own + [_keyword(s.param, None) for s in _compare_settings()])


_COMPARE_SIGNATURE = _compare_signature()
_COMPARE = _COMPARE_DOC.format(settings=_settings_help(None, _compare_settings()))
_described(Lab.compare, _COMPARE_SIGNATURE, _COMPARE)
compare = _make_function("compare", Lab.compare, _COMPARE_SIGNATURE, _COMPARE)
