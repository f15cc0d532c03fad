"""The settings table (dlcli.settings) is the one definition of every run setting: the
commands' options, compare's shared options, --vary and run.json all accept and refuse
the same values with the same message; no module keeps a second copy; config never
imports the core; run names take any script's letters."""

from __future__ import annotations

import ast
import json
import math
import re
import sys
import tokenize
from pathlib import Path

import pytest
from conftest import (
    SRC,
    assert_clean_refusal,
    assert_python_runs,
    assert_usage_refused,
    invoke,
    invoke_json,
    tree,
)

import dlcli.comparison as comparisons
from dlcli import settings
from dlcli.cli import cli
from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec, task_config
from dlcli.errors import ConfigError
from dlcli.settings import FLAG, PATH, TABLE, validate_run_name

TASKS = ("xor", "mnist")

# Other settings a value needs to be valid at all (a limit of 1 example needs batches of 1).
COMPANIONS = {"limit": {"batch-size": 1}}


def boundary_cases(setting, task) -> list[tuple[str, object, bool]]:
    """(text, the value it means, accepted?) at the edges of what `setting` allows for
    `task`, derived from its rule, so a setting added to the table is walked too. The
    value is None where the text is not of the setting's type at all."""
    rule = setting.rule
    if isinstance(rule, settings.Integers):
        low, high = rule.bounds(task)
        cases = [(str(low), low, True), (str(low + 1), low + 1, True), (str(low - 1), low - 1, False),
                 ("2.5", None, False), ("abc", None, False)]  # fmt: skip
        if high is not None:
            cases += [(str(high), high, True), (str(high + 1), high + 1, False)]
        return cases
    if isinstance(rule, settings.Numbers):
        cases = [(repr(rule.low + 1e-9), rule.low + 1e-9, True), (repr(rule.low - 0.1), rule.low - 0.1, False),
                 (str(rule.low), float(rule.low), not rule.low_open), ("inf", math.inf, False),
                 ("nan", math.nan, False), ("x", None, False)]  # fmt: skip
        if rule.low_open:
            cases.append(("-1", -1.0, False))
        if math.isfinite(rule.high):
            cases += [(repr(rule.high - 0.001), rule.high - 0.001, True), (str(rule.high), float(rule.high),
                                                                           not rule.high_open)]  # fmt: skip
        return cases
    if isinstance(rule, settings.KnownName):
        return [(rule.known[0], rule.known[0], True), (rule.known[-1], rule.known[-1], True),
                ("nope", "nope", False), (rule.known[0] + "al", rule.known[0] + "al", False)]  # fmt: skip
    if isinstance(rule, settings.OneOf):
        if task not in rule.choices:
            return []
        return [(c, c, True) for c in rule.choices[task]] + [("cifar10", "cifar10", False)]
    if setting.kind is FLAG:
        return [("yes", True, True), ("no", False, True), ("maybe", None, False)]
    if setting.kind is PATH:
        return [("some/digits.npz", "some/digits.npz", True)]
    raise AssertionError(f"no boundary cases for {setting.name}: add its rule here")


def expected_refusal(setting, task, text) -> str:
    """The one message every context must give (the table's own)."""
    with pytest.raises(ConfigError) as refused:
        setting.parse(text, task)
    return str(refused.value)


CASES = [
    pytest.param(s, task, text, value, ok, id=f"{task}-{s.name}={text}")
    for s in TABLE
    for task in TASKS
    for text, value, ok in boundary_cases(s, task)
]


def test_every_setting_has_boundary_cases_and_both_answers():
    walked = {p.values[0].name for p in CASES}
    assert walked == {s.name for s in TABLE}
    for s in TABLE:
        if s.kind is not PATH:  # a path takes any text
            answers = {p.values[4] for p in CASES if p.values[0] is s}
            assert answers == {True, False}, s.name


def test_the_lectures_boundaries():
    """The brief's examples, spelled out (the walk below derives the rest from the table)."""
    cases = {("dropout", "0"): True, ("dropout", "0.999"): True, ("dropout", "1"): False, ("dropout", "-0.1"): False,
             ("lr", "1e-9"): True, ("lr", "0"): False, ("lr", "-1"): False, ("lr", "inf"): False,
             ("lr", "nan"): False, ("layers", "1"): True, ("layers", "0"): False, ("activation", "tanh"): True,
             ("activation", "sigmoidal"): False, ("init", "he"): True, ("optimizer", "sgdm"): False}  # fmt: skip
    for (name, text), ok in cases.items():
        try:
            settings.BY_NAME[name].parse(text, "mnist")
            accepted = True
        except ConfigError:
            accepted = False
        assert accepted == ok, (name, text)
    assert expected_refusal(settings.BY_NAME["dropout"], "mnist", "1") == "--dropout must be in [0, 1), got 1.0"
    assert expected_refusal(settings.BY_NAME["lr"], "xor", "0") == "--lr must be a positive number, got 0.0"
    assert expected_refusal(settings.BY_NAME["layers"], "xor", "0") == "--layers must be an integer >= 1, got 0"
    assert expected_refusal(settings.BY_NAME["batch-size"], "mnist", "0") == (
        "--batch-size must be an integer >= 1, got 0")
    settings.BY_NAME["batch-size"].parse("0", "xor")  # XOR: 0 = the four points in one batch


# -- the four places a value is given -------------------------------------------------


def assert_refused_with(runner, workdir, args: list, message: str) -> None:
    """A usage error whose one line is exactly `message`: nothing added, nothing written."""
    before = tree(workdir)
    result = runner.invoke(cli, args)
    assert_clean_refusal(result, message, exit_code=2)
    assert [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error:")] == [
        f"Error: {message}"]  # fmt: skip
    assert tree(workdir) == before


@pytest.mark.parametrize("setting,task,text,value,ok", CASES)
def test_command_option(runner, workdir, setting, task, text, value, ok):
    """`dlcli xor`/`dlcli mnist --NAME TEXT`: parsed only (make_context), never trained."""
    if task not in setting.on_commands:
        assert setting.option not in {o for p in cli.commands[task].params for o in p.opts}
        return
    if setting.kind is FLAG:
        args = [setting.option if value else f"--no-{setting.name}"] if setting.negatable else [setting.option]
        if value is None or (not value and not setting.negatable):
            return  # a flag takes no text: nothing to refuse on the command line
    else:
        args = [setting.option, text]
    if ok:
        ctx = cli.commands[task].make_context(task, args)
        assert ctx.params[setting.param] == value
    else:
        assert_refused_with(runner, workdir, [task, *args], expected_refusal(setting, task, text))


@pytest.mark.parametrize("setting,task,text,value,ok", CASES)
def test_compare_option(runner, workdir, setting, task, text, value, ok):
    """compare's shared option, in a dry run (plans, trains nothing)."""
    if not setting.vary:
        # compare's own options of the same name: its data (see KNOWN_COPIES), the first of
        # its seeds, and the learning-curve points of every run.
        assert setting.option not in {o for p in cli.commands["compare"].params for o in p.opts} or setting.name in (
            "dataset", "data", "limit", "seed", "points")
        return
    if setting.kind is FLAG:
        if value is None:
            return
        args = [setting.option if value else f"--no-{setting.name}"]
    else:
        args = [setting.option, text]
    other = "units=8,16" if setting.name != "units" else "lr=0.1,0.01"
    command = ["compare", "--task", task, *args, "--vary", other, "--dry-run"]
    if task not in setting.tasks:  # a value no run can have is refused as such; any other for the task
        try:
            setting.parse(text, None)
            message = f"{task} runs have no {setting.name}"
        except ConfigError as exc:
            message = str(exc)
        assert_usage_refused(runner, workdir, command, message)
    elif ok:
        invoke(runner, *command)
        base = comparisons.base_config(task, {setting.name: value})
        assert getattr(getattr(base, setting.part), setting.field) == value
    else:
        assert_refused_with(runner, workdir, command, expected_refusal(setting, task, text))


@pytest.mark.parametrize("setting,task,text,value,ok", CASES)
def test_vary(setting, task, text, value, ok):
    if not setting.vary:
        with pytest.raises(ConfigError, match=f"unknown setting '{setting.name}'"):
            comparisons.parse_vary((f"{setting.name}={text}",), task)
    elif task not in setting.tasks:
        with pytest.raises(ConfigError, match=f"{task} runs have no {setting.name}"):
            comparisons.parse_vary((f"{setting.name}={text}",), task)
    elif ok:
        assert comparisons.parse_vary((f"{setting.name}={text}",), task) == [(setting.name, [value])]
    else:
        with pytest.raises(ConfigError) as refused:
            comparisons.parse_vary((f"{setting.name}={text}",), task)
        assert str(refused.value) == f"--vary {setting.name}: {expected_refusal(setting, task, text)}"


def _record(setting, task, value) -> dict:
    companions = COMPANIONS.get(setting.name, {})
    config = task_config(task, companions, name="hand-written").to_dict()
    config[setting.part][setting.field] = value
    return {"format": 1, "run": "hand-written", "logdir": "logs/hand-written", "target_epochs": 1, "config": config}


@pytest.mark.parametrize("setting,task,text,value,ok", CASES)
def test_run_json(runner, workdir, setting, task, text, value, ok):
    """A hand-written run.json: RunConfig.from_dict + validate, and `dlcli resume` on it."""
    written = value if value is not None else text  # text of the wrong type: a JSON string
    record = _record(setting, task, written)
    if value is None:  # not the setting's type: from_dict says so, with the table's noun
        message = f"config.{setting.part}.{setting.field} must be {setting.kind.json_noun}, got {text!r}"
        if setting.kind is not FLAG:  # the noun the command line uses too (JSON writes flags true/false)
            assert expected_refusal(setting, task, text).endswith(f" must be {setting.kind.noun}, got {text!r}")
    elif ok:
        config = RunConfig.from_dict(json.loads(json.dumps(record["config"])))
        assert config.validate() is config
        return
    else:
        message = expected_refusal(setting, task, text)
        with pytest.raises(ConfigError) as refused:
            RunConfig.from_dict(record["config"]).validate()
        assert str(refused.value) == message
    folder = workdir / "hand-written"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(record))
    result = runner.invoke(cli, ["resume", str(folder)])
    assert_clean_refusal(result, "run.json is not a valid run record", exit_code=1)
    assert (result.stdout + result.stderr).strip().endswith(f"run.json is not a valid run record ({message})")


# -- the table itself -------------------------------------------------------------------


def test_the_table_covers_every_config_field_exactly():
    from dataclasses import fields

    table = {(s.part, s.field) for s in TABLE}
    dataclasses = {(part, f.name) for part, spec in (("model", ModelSpec), ("train", TrainSpec), ("data", DataSpec))
                   for f in fields(spec)}  # fmt: skip
    assert table == dataclasses


@pytest.mark.parametrize("task", TASKS)
def test_the_defaults_are_valid_and_are_what_the_commands_use(task):
    for compare in (False, True):
        task_config(task, name="defaults", compare=compare).validate()
    params = cli.commands[task].make_context(task, []).params
    for s in settings.for_command(task):
        assert params[s.param] == s.default(task), s.name


def test_the_checkpoint_period_of_compare_runs_is_decided_in_the_table():
    save_every = settings.BY_NAME["save-every"]
    assert save_every.why  # a different default says why
    assert cli.commands["mnist"].make_context("mnist", []).params["save_every"] == 200
    assert comparisons.base_config("mnist").train.save_every == 0
    # Every default that differs between a command and compare is documented like this one.
    for s in TABLE:
        assert not s.compare or s.why, s.name


def test_what_compare_runs_is_unchanged_so_existing_ledgers_stay_valid():
    # The ledger keys a run by its whole config: any change here retrains every
    # comparison already in a ledger. Change it only on purpose, and say so.
    assert comparisons.base_config("mnist").to_dict() == {
        "task": "mnist", "name": "compare", "logdir": "logs", "checkpoint_dir": "checkpoints",
        "model": {"layers": 3, "units": 256, "activation": "relu", "init": "xavier", "dropout": 0.0,
                  "batchnorm": False, "sync_batchnorm": False},
        "train": {"optimizer": "adam", "lr": 0.001, "epochs": 1, "batch_size": 128, "seed": 0, "log_every": 100,
                  "save_every": 0, "keep": 3, "eval_points": 0},
        "data": {"dataset": "mnist", "path": None, "limit": None},
    }  # fmt: skip
    xor = comparisons.base_config("xor").to_dict()
    assert (xor["model"], xor["data"]) == (
        {"layers": 4, "units": 10, "activation": "sigmoid", "init": "normal", "dropout": 0.0, "batchnorm": False,
         "sync_batchnorm": False}, {"dataset": "xor", "path": None, "limit": None})  # fmt: skip
    assert xor["train"] == {"optimizer": "sgd", "lr": 0.01, "epochs": 20000, "batch_size": 0, "seed": 0,
                            "log_every": 1000, "save_every": 0, "keep": 3, "eval_points": 0}  # fmt: skip


def test_compare_help_shows_both_tasks_defaults(runner):
    out = " ".join(invoke(runner, "compare", "--help").stdout.split())
    assert "[default: mnist 3, xor 4]" in out
    assert "[default: mnist 128, xor all]" in out
    assert "[default: mnist 0.001, xor 0.01]" in out
    assert "mnist only. [default: mnist 0.0]" in out


def test_an_unlisted_name_keras_knows_is_accepted_everywhere(runner, workdir):
    name = "hard_shrink"  # a Keras 3 activation dlcli does not list
    assert name not in settings.BY_NAME["activation"].rule.known
    assert cli.commands["xor"].make_context("xor", ["--activation", name]).params["activation"] == name
    assert comparisons.parse_vary((f"activation=tanh,{name}",), "mnist")[0][1] == ["tanh", name]
    task_config("mnist", {"activation": name}, name="r").validate()


# -- no second copy --------------------------------------------------------------------

SOURCES = sorted(p for p in (SRC / "dlcli").rglob("*.py") if p.name not in ("settings.py", "names.py"))
# Options named like a setting but declared by hand, each for its reason.
OWN_OPTIONS = {
    ("cli/compare.py", "--seed"): "a comparison's first seed (its runs get SEED, SEED+1, ...)",
    ("cli/compare.py", "--points"): "compare's learning-curve points, 10 per run unless asked",
    ("cli/runs.py", "--epochs"): "resume's new target (the table's type and range, no default)",
}  # fmt: skip


def _code_tokens(path: Path):
    """(token, line) of the code: comments and strings left out."""
    with tokenize.open(path) as f:
        for tok in tokenize.generate_tokens(f.readline):
            if tok.type in (tokenize.NUMBER, tokenize.NAME, tokenize.OP):
                yield tok.string, tok.start[0]


def _pinned_lines(text: str, opening: str) -> range:
    """The line numbers of the dict literal that starts with `opening` (to its closing '}')."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith(opening))
    last = next(i for i, line in enumerate(lines, 1) if i > first and line.startswith("}"))
    return range(first, last + 1)


def test_no_second_copy_of_an_option_a_default_or_a_range():
    found = []
    for path in SOURCES:
        where = str(path.relative_to(SRC / "dlcli"))
        text = path.read_text(encoding="utf-8")
        # An option of the table declared by hand: click.option("--layers", ...), with
        # its own type, range, default and help.
        for s in TABLE:
            declared = re.search(rf"""click\.option\(\s*["']{re.escape(s.option)}["'/]""", text)
            if declared and (where, s.option) not in OWN_OPTIONS:
                found.append(f"{where}: declares {s.option}")
        # A range of its own: the number settings' Click types are made from the table only.
        for pattern in (r"FloatRange\(", r"Choice\(\s*DATASETS"):
            for match in re.finditer(pattern, text):
                if (where, "--dataset") not in OWN_OPTIONS or "DATASETS" not in pattern:
                    found.append(f"{where}: {match.group(0)}")
        # A default spelled out next to its setting's name (default=, lr=, batch_size=):
        # the table's distinctive values (not 0, 1 or 3, which mean many things).
        tokens = list(_code_tokens(path))
        for s in TABLE:
            values = {repr(v) for v in s.defaults.values()
                      if isinstance(v, (int, float)) and not isinstance(v, bool) and v not in (0, 1, 3)}  # fmt: skip
            for i, (token, line) in enumerate(tokens):
                if token in values and i >= 2 and tokens[i - 1][0] == "=" and tokens[i - 2][0] in (s.field, s.param):
                    found.append(f"{where}:{line}: {tokens[i - 2][0]}={token}")
        # And the two defaults no other code has a reason to write at all (but for the
        # ledger's KEY_BASELINE: 0.3.1's defaults pinned on purpose, so that a default
        # changed later never changes what an old ledger key means).
        pinned = _pinned_lines(text, "KEY_BASELINE = {") if where == "comparison/ledger.py" else range(0)
        for token, line in tokens:
            if token in ("20000", "0.001") and line not in pinned:
                found.append(f"{where}:{line}: {token}")
    assert not found, "a second copy of the settings table:\n" + "\n".join(found)


def test_the_copy_finder_finds_copies(tmp_path, monkeypatch):
    """The scan above can fail: each kind of copy it looks for, planted in a scratch file."""
    planted = [
        'click.option("--units", type=click.IntRange(min=1), default=256)',
        'click.option("--batchnorm/--no-batchnorm", default=False)',
        "x = click.FloatRange(0, 1, max_open=True)",
        "x = TrainSpec(optimizer='sgd', batch_size=128)",
        "x = dict(log_every=1000)",
        "EPOCHS = 20000",
    ]
    scratch = tmp_path / "dlcli" / "scratch.py"
    scratch.parent.mkdir()
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", [scratch])
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    for line in planted:
        scratch.write_text(f"import click\n{line}\n")
        with pytest.raises(AssertionError, match="second copy"):
            test_no_second_copy_of_an_option_a_default_or_a_range()
    scratch.write_text("import click\nPORT = click.IntRange(0, 65535)\nx = dict(units=8, lr=0.5)  # lr=0.001\n")
    test_no_second_copy_of_an_option_a_default_or_a_range()  # and only copies


# -- no import cycle -------------------------------------------------------------------


def test_config_never_imports_the_core():
    assert_python_runs(
        "import sys\n"
        "from dlcli.config import RunConfig, task_config\n"
        "RunConfig(task='mnist', name='r').validate()\n"
        "task_config('xor', {'activation': 'tanh', 'init': 'he', 'optimizer': 'adam'}, name='x').validate()\n"
        "RunConfig.from_dict(task_config('mnist', name='m').to_dict()).validate()\n"
        "leaked = sorted(m for m in sys.modules if m.startswith('dlcli.core') or m == 'tensorflow')\n"
        "assert not leaked, leaked\n"
    )


def _imports(path: Path, module: str) -> set[str]:
    """The dlcli modules `path` imports, at module level or in a function; imports under
    `if TYPE_CHECKING:` (annotations only) are not imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}  # fmt: skip
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dlcli")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.startswith("dlcli"):
                for a in node.names:  # `from dlcli.core import models` imports the module dlcli.core.models
                    sub = f"{base}.{a.name}"
                    found.add(sub if _module_path(sub) else base)
    return found


def _module_path(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_no_import_cycle_through_config_the_settings_or_the_core():
    modules = {}
    for path in (SRC / "dlcli").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    assert graph["dlcli.config"] & {m for m in modules if m.startswith("dlcli.core")} == set()
    assert graph["dlcli.core.models"] & {"dlcli.config", "dlcli.settings"} == set()
    for module in ("dlcli.config", "dlcli.settings", "dlcli.names", "dlcli.core.models", "dlcli.errors"):
        assert not reaches(module, module), f"{module} imports itself through a cycle"


# -- run names ----------------------------------------------------------------------------

GOOD_NAMES = ["실험-1", "ünï", "эксперимент_2", "実験.3", "प्रयोग", "ok-run", "run.2", "lr=0.01,units=8-s0", "٣"]
BAD_NAMES = ["", ".", "..", "-x", ".hidden", "a/b", "a\\b", "../x", "a\tb", "a\nb", "a\x00b", "a\x7fb", "a b",
             "a\u200bb", "x/../y"]  # fmt: skip


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_run_names_take_any_scripts_letters_and_digits(name):
    assert validate_run_name(name) == name
    assert validate_run_name(f"compare/{name}/lr=0.1-s0", nested=True)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_run_names_refuse_separators_dots_controls_and_leading_dash(runner, workdir, name):
    with pytest.raises(ConfigError, match="invalid run name"):
        validate_run_name(name)
    if "/" not in name:  # (a '/' is what nested names allow)
        with pytest.raises(ConfigError, match="invalid run name"):
            validate_run_name(f"compare/{name}/he-s0", nested=True)
    if "\x00" not in name:  # a NUL cannot be an argv element
        assert_usage_refused(runner, workdir, ["xor", "--name", name], "invalid run name")


def test_nested_names_only_where_nested(runner, workdir):
    assert validate_run_name("compare/init/he-s0", nested=True)
    with pytest.raises(ConfigError):
        validate_run_name("compare/init/he-s0")
    for bad in ("/abs", "a//b", "a/", "a/-x", "a/.x"):
        with pytest.raises(ConfigError):
            validate_run_name(bad, nested=True)


def test_a_real_xor_run_named_in_korean(runner, workdir):
    out = invoke_json(runner, "xor", "--epochs", "6", "--log-every", "2", "--name", "실험-1", "--quiet")
    assert out["run"] == "실험-1"
    folder = workdir / "checkpoints" / "실험-1"
    record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert record["run"] == record["config"]["name"] == "실험-1"
    assert list(folder.glob("ckpt-*.index")), "no checkpoint written"
    events = list((workdir / "logs" / "실험-1").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    again = invoke_json(runner, "resume", str(folder), "--epochs", "8")
    assert (again["run"], again["steps"]) == ("실험-1", 8)
