"""The Python API (dlcli.api, dlcli.results): its keyword arguments accept and refuse
what the command line does, with the same message; its results carry the run's real
numbers, folders, tables and pictures, and show themselves in Jupyter; a Lab reuses its
compiled loop, the module's functions share nothing; `import dlcli` stays light."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_python_runs, invoke, tree
from test_settings import CASES, COMPANIONS, expected_refusal

import dlcli
from dlcli import api, settings
from dlcli.cli import cli
from dlcli.cli import runs as cli_runs
from dlcli.errors import CheckpointError, ConfigError, DlcliError, RunError
from dlcli.settings import FLAG

FAST_XOR = {"layers": 2, "epochs": 300, "lr": 1.0}  # solves XOR in a second


def data_uris(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def command_params(task: str, args: list) -> dict:
    """What `dlcli TASK ARGS` parses to (nothing runs). Under the group's context, as the
    command line has it: a command's context made without it makes Click cache a help
    option without `-h` on the command, which docs/cli.md would then show."""
    with cli.make_context("dlcli", [task]) as parent:
        return cli.commands[task].make_context(task, list(args), parent=parent).params


def assert_one_line_error(refused, message: str) -> None:
    """A DlcliError with exactly the message, without chained exceptions (no traceback noise)."""
    error = refused.value
    assert isinstance(error, DlcliError)
    assert str(error) == message
    assert "\n" not in str(error)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert error._render_traceback_() == [f"{type(error).__name__}: {message}"]  # what Jupyter shows


# -- import dlcli ------------------------------------------------------------------------------


def test_import_dlcli_imports_no_tensorflow_click_or_tabulate():
    assert_python_runs(
        "import sys, dlcli\n"
        "assert 'dlcli.api' not in sys.modules, 'the API is looked up lazily'\n"
        "names = [dlcli.xor, dlcli.mnist, dlcli.compare, dlcli.resume, dlcli.inspect, dlcli.Lab]\n"
        "assert all(callable(n) for n in names)\n"
        "lab = dlcli.Lab()\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'click', 'tabulate', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "try:\n"
        "    dlcli.xor(layers=0)\n"
        "except dlcli.errors.ConfigError as exc:\n"
        "    assert str(exc) == '--layers must be an integer >= 1, got 0'\n"
        "assert 'tensorflow' not in sys.modules, 'a refused value imports no TensorFlow'\n"
        "assert dlcli.inspect is dlcli.api.inspect and callable(dlcli.inspect)\n"
        "import dlcli.inspection, dlcli.comparison\n"
        "assert dlcli.inspect is dlcli.api.inspect and dlcli.compare is dlcli.api.compare, 'modules shadow the API'\n"
    )


def test_unknown_names_and_dir():
    with pytest.raises(AttributeError, match="no attribute 'train'"):
        dlcli.train  # noqa: B018
    assert {"xor", "mnist", "compare", "resume", "inspect", "Lab"} <= set(dir(dlcli))


def test_signatures_and_help_come_from_the_settings_table():
    import inspect

    for task in ("xor", "mnist"):
        params = inspect.signature(getattr(dlcli, task)).parameters
        for s in settings.for_command(task):
            assert params[s.param].default == s.default(task), (task, s.name)
            assert s.param in getattr(dlcli, task).__doc__
    compare = inspect.signature(dlcli.compare).parameters
    assert {s.param for s in settings.VARIED.values()} <= set(compare)
    for option in api.COMPARE_OPTIONS:  # every keyword dlcli.compare takes is in its signature and help
        assert option in compare and f"{option}:" in dlcli.compare.__doc__, option
    assert "batch_size" in inspect.signature(dlcli.Lab().compare).parameters


# -- keyword arguments: the command line's values and messages ------------------------------------


def _keyword_value(value, text):
    return text if value is None else value


@pytest.mark.parametrize("setting,task,text,value,ok", CASES)
def test_run_keywords_accept_and_refuse_what_the_command_does(runner, workdir, setting, task, text, value, ok):
    """dlcli.TASK(NAME=value) and dlcli.TASK(NAME="text") against `dlcli TASK --NAME text`:
    an accepted value makes the config the command makes; a refused one the command's message."""
    call = getattr(dlcli, task)
    if task not in setting.on_commands:
        with pytest.raises(api.UnknownArgument, match=f"unexpected keyword argument '{setting.param}'") as refused:
            call(**{setting.param: _keyword_value(value, text)})
        assert isinstance(refused.value, TypeError) and isinstance(refused.value, ConfigError)
        return
    if setting.kind is FLAG:
        # A flag without --no-NAME says False by its absence.
        args = [setting.option if value else f"--no-{setting.name}"] if setting.negatable else [setting.option] * bool(value)
    else:
        args = [setting.option, text]
    if ok:
        companions = COMPANIONS.get(setting.name, {})  # a limit of 1 example needs batches of 1
        args += [word for name, v in companions.items() for word in (f"--{name}", str(v))]
        cli_config, _ = cli_runs._run_config(task, {**command_params(task, args),
                                                    "name": "same"})  # fmt: skip
        for given in {repr(value): value, repr(text): text}.values():
            keywords = {settings.BY_NAME[n].param: v for n, v in companions.items()}
            config, auto = api.run_config(task, {**keywords, setting.param: given, "name": "same"})
            assert config == cli_config and not auto
        return
    before = tree(workdir)
    for given in (value, text):
        if given is None:
            continue
        with pytest.raises(ConfigError) as refused:
            call(**{setting.param: given})
        assert_one_line_error(refused, expected_refusal(setting, task, text))
    assert tree(workdir) == before


@pytest.mark.parametrize("setting,task,text,value,ok", [c for c in CASES if c.values[0].vary])
def test_compare_keywords_accept_and_refuse_what_the_command_does(runner, workdir, setting, task, text, value, ok):
    """dlcli.compare(task=..., NAME=value) against `dlcli compare --task TASK --NAME text`,
    both dry runs: the same planned runs (so the same folders and ledger keys), or the
    command's message."""
    if setting.kind is FLAG and value is None:
        return
    other = {"units": [8, 16]} if setting.name != "units" else {"lr": [0.1, 0.01]}
    other_text = "units=8,16" if setting.name != "units" else "lr=0.1,0.01"
    args = [setting.option if value else f"--no-{setting.name}"] if setting.kind is FLAG else [setting.option, text]
    command = ["compare", "--task", task, *args, "--vary", other_text, "--dry-run"]
    given = _keyword_value(value, text)
    if task in setting.tasks and ok:
        result = dlcli.compare(task=task, vary=other, dry_run=True, **{setting.param: given})
        out = invoke(runner, *command).stdout
        assert result.rows is None and len(result.planned) == 2
        for planned in result.planned:
            assert planned["run"] in out
        assert getattr(getattr(result.plan.base, setting.part), setting.field) == value
        return
    cli_result = runner.invoke(cli, command)
    assert cli_result.exit_code == 2
    cli_message = [line for line in cli_result.output.splitlines() if line.startswith("Error:")][0][len("Error: "):]
    with pytest.raises(ConfigError) as refused:
        dlcli.compare(task=task, vary=other, dry_run=True, **{setting.param: given})
    assert_one_line_error(refused, cli_message)


def test_a_number_given_as_an_int_makes_the_command_lines_float(runner):
    """lr=1 is --lr 1: the same config, so the same run.json, folder hash and ledger key."""
    config, _ = api.run_config("xor", {"lr": 1, "name": "same"})
    cli_config, _ = cli_runs._run_config("xor", {**command_params("xor", ["--lr", "1"]),
                                                 "name": "same"})  # fmt: skip
    assert config == cli_config and isinstance(config.train.lr, float)
    assert api.run_config("mnist", {"dropout": np.float64(0.25), "name": "n"})[0].model.dropout == 0.25
    with pytest.raises(ConfigError) as refused:
        dlcli.mnist(dropout=1)
    assert_one_line_error(refused, expected_refusal(settings.BY_NAME["dropout"], "mnist", "1"))  # got 1.0
    base = dlcli.compare(vary={"lr": [1, np.float32(0.5)]}, dry_run=True).plan.runs
    assert [r.config.train.lr for r in base] == [1.0, 0.5]


def test_vary_as_a_dict_plans_what_the_command_line_plans(runner):
    result = dlcli.compare(vary={"activation": ["sigmoid", "relu"], "batch_size": [32, 64]}, seeds=2, dry_run=True)
    out = invoke(runner, "compare", "--vary", "activation=sigmoid,relu", "--vary", "batch-size=32,64", "--seeds", "2",
                 "--dry-run").stdout  # fmt: skip
    names = [p["run"] for p in result.planned]
    assert len(names) == 8 and all(name in out for name in names)
    assert dlcli.compare(vary="activation=sigmoid,relu", dry_run=True).planned[0]["run"] == \
        dlcli.compare(vary={"activation": ("sigmoid", "relu")}, dry_run=True).planned[0]["run"]  # fmt: skip


@pytest.mark.parametrize("keywords,args", [
    ({"vary": {"lr": [0.1, -1]}}, ["--vary", "lr=0.1,-1"]),
    ({"vary": {"dropout": [0.1]}, "task": "xor"}, ["--vary", "dropout=0.1", "--task", "xor"]),
    ({"vary": {"units": [8, 8]}}, ["--vary", "units=8,8"]),
    ({"vary": {"colour": ["red"]}}, ["--vary", "colour=red"]),
    ({"what": "depth"}, ["--what", "depth"]),
    ({"what": "init", "init": "he"}, ["--what", "init", "--init", "he"]),
    ({"vary": {"layers": [2, 3]}, "layers": 2}, ["--vary", "layers=2,3", "--layers", "2"]),
    ({"task": "xor", "data": "x.npz"}, ["--task", "xor", "--data", "x.npz"]),
    ({"task": "xor", "limit": 10}, ["--task", "xor", "--limit", "10"]),
    ({"task": "xor", "dropout": 0.5}, ["--task", "xor", "--dropout", "0.5"]),
    ({"seeds": 0}, ["--seeds", "0"]),
    ({"seeds": "auto", "max_seeds": 2}, ["--seeds", "auto", "--max-seeds", "2"]),
    ({"seeds": 3, "max_seeds": 5}, ["--seeds", "3", "--max-seeds", "5"]),
])  # fmt: skip
def test_compare_refuses_with_the_command_lines_message(runner, workdir, keywords, args):
    cli_result = runner.invoke(cli, ["compare", *args, "--dry-run"])
    assert cli_result.exit_code == 2, cli_result.output
    line = [x for x in cli_result.output.splitlines() if x.startswith("Error:")][0]
    before = tree(workdir)
    with pytest.raises(ConfigError) as refused:
        dlcli.compare(dry_run=False, **keywords)
    if keywords.get("seeds") == 0:  # Click's own range message on the command line
        assert str(refused.value) == "--seeds must be at least 1, got 0" and "--seeds" in line
    else:
        assert_one_line_error(refused, line[len("Error: "):])
    assert tree(workdir) == before


def test_unknown_keywords_are_named():
    with pytest.raises(api.UnknownArgument, match=r"'layer'; did you mean 'layers'\?"):
        dlcli.xor(layer=2)
    with pytest.raises(api.UnknownArgument, match=r"'dropout' \(xor runs have no dropout\)"):
        dlcli.xor(dropout=0.5)
    with pytest.raises(api.UnknownArgument, match="'log_every'"):
        dlcli.compare(log_every=5)
    with pytest.raises(TypeError):
        dlcli.mnist(colour="red")
    with pytest.raises(ConfigError, match="unknown task 'cifar'"):
        dlcli.compare(task="cifar")
    with pytest.raises(ConfigError, match="invalid run name '../x'"):
        dlcli.xor(name="../x")
    # A value of the wrong shape is a refusal naming it, not a TypeError from inside.
    with pytest.raises(ConfigError, match="what takes a name or a list of names, got 5"):
        dlcli.compare(what=5)
    with pytest.raises(ConfigError, match="what takes names, got 5"):
        dlcli.compare(what=["init", 5])


def test_folders_default_as_the_commands_do(monkeypatch, workdir):
    assert (dlcli.Lab().logdir, dlcli.Lab().checkpoint_dir) == ("logs", "checkpoints")
    monkeypatch.setenv("DLCLI_LOGDIR", str(workdir / "elsewhere"))
    assert dlcli.Lab().logdir == str(workdir / "elsewhere")
    assert dlcli.compare(dry_run=True, what="activation").plan.base.logdir == str(workdir / "elsewhere")
    assert dlcli.Lab(logdir=Path("mine")).logdir == "mine"


# -- results -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_xor_run_result_has_real_fields_and_shows_itself(runner, workdir):
    from dlcli.core import pictures

    result = dlcli.xor(**FAST_XOR, name="api", quiet=True)
    rows = result.truth_table
    assert [(r["x1"], r["x2"], r["target"]) for r in rows] == [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0)]
    assert result.accuracy == sum(r["prediction"] == r["target"] for r in rows) / 4
    assert result.steps == 300 and result.epochs == 300 and result.trained_steps == 300 and result.seconds > 0
    record = json.loads((result.checkpoint_dir / "run.json").read_text())
    assert record["result"]["accuracy"] == result.accuracy and record["config"]["model"]["layers"] == 2
    assert list(result.logdir.rglob("events.out.tfevents.*"))
    # The picture is the final network's: each corner's colour says the truth table's prediction.
    boundary = result.pictures["boundary"]
    assert boundary.shape == (244, 244, 3) and boundary.dtype == np.uint8
    for r in rows:
        assert pictures.predicted_class(pictures.corner_pixel(boundary, r["x1"], r["x2"])) == r["prediction"]
    assert result.pictures["hidden1_units"].ndim == 3
    # The command line with the same settings trains the same run.
    cli_json = json.loads(invoke(runner, "xor", "--layers", "2", "--epochs", "300", "--lr", "1", "--name", "cli",
                                 "--json").stdout)  # fmt: skip
    assert (cli_json["accuracy"], cli_json["loss"]) == (result.accuracy, result.loss)
    assert set(result.summary()) == set(cli_json)
    cli_record = json.loads((workdir / "checkpoints" / "cli" / "run.json").read_text())
    assert {**cli_record["config"], "name": "api"} == record["config"]
    # repr: one line; the notebook's display: the truth table and the pictures, decodable.
    assert "\n" not in repr(result) and "accuracy 1.0000" in repr(result)
    html = result._repr_html_()
    assert html.count("<tr>") == 5 and "hypothesis" in html
    images = [decode_png(png) for png in data_uris(html)]
    assert len(images) == 2 and np.array_equal(images[0], boundary)


@pytest.mark.slow
def test_an_mnist_run_result_has_the_confusion_matrix(digits_npz):
    result = dlcli.mnist(data=digits_npz, limit=256, batch_size=64, units=32, quiet=True)
    matrix = result.confusion_matrix
    assert matrix.shape == (10, 10) and matrix.sum() == 128  # the synthetic test set
    assert result.accuracy == pytest.approx(np.trace(matrix) / matrix.sum())
    assert set(result.pictures) == {"confusion_matrix", "mistakes"}
    assert len(data_uris(result._repr_html_())) == 2 and "test set" in result._repr_html_()
    assert result.truth_table == []


@pytest.mark.slow
def test_resume_continues_a_result_and_refuses_as_the_command_does(runner, workdir):
    first = dlcli.xor(**FAST_XOR, name="r", quiet=True)
    again = dlcli.resume(first, epochs=400, quiet=True)
    assert (again.steps, again.trained_steps, again.run) == (400, 100, "r")
    done = dlcli.resume(str(first.checkpoint_dir), quiet=True)
    assert done.trained_steps == 0 and "already finished" in done._repr_html_()
    cli_line = [x for x in runner.invoke(cli, ["resume", str(first.checkpoint_dir), "--layers", "3"]).output
                .splitlines() if x.startswith("Error:")][0]  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        dlcli.resume(first, layers=3)
    assert_one_line_error(refused, cli_line[len("Error: "):])
    cli_line = [x for x in runner.invoke(cli, ["resume", "nowhere"]).output.splitlines() if x.startswith("Error:")][0]
    with pytest.raises(RunError) as refused:
        dlcli.resume("nowhere")
    assert_one_line_error(refused, cli_line[len("Error: "):])
    with pytest.raises(RunError, match="below the run's target"):
        dlcli.resume(first, epochs=10)
    assert not issubclass(CheckpointError, ConfigError)


@pytest.mark.slow
def test_a_comparison_result_is_the_commands_comparison(runner, workdir, monkeypatch):
    result = dlcli.compare(task="xor", what="depth", epochs=200, lr=1.0, quiet=True)
    assert [r["variant"] for r in result.rows] == ["layers=1", "layers=2", "layers=4"]
    assert result.rows[0]["solved"] == 0.0 and result.best["variant"] != "layers=1"
    assert json.loads(result.table("json")) == result.rows
    assert result.table("csv").splitlines()[0].startswith("variant,")
    assert result.folder.is_dir() and result.columns == ("layers",)
    # The command line finds every run in the ledger: the same runs, keys and folders.
    cli_result = runner.invoke(cli, ["compare", "--task", "xor", "--what", "depth", "--epochs", "200", "--lr", "1",
                                     "--format", "json"])  # fmt: skip
    assert "3 in the ledger, 0 to resume, 0 to train" in cli_result.stderr
    assert json.loads(cli_result.stdout) == result.rows
    # Its display: the table, the plot and each variant's boundary from TensorBoard.
    assert "\n" not in repr(result) and "best layers=" in repr(result)
    html = result._repr_html_()
    assert all(f"<td>layers={n}</td>" in html for n in (1, 2, 4))
    images = [decode_png(png) for png in data_uris(html)]
    assert len(images) == 1 + 3 and all(image.size > 0 for image in images)
    figure = result.plot()
    assert len(figure.axes) == 3 and len(figure.axes[0].lines) == 3  # a dot per variant (no bars)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "pandas", None)  # as if not installed
        with pytest.raises(ConfigError) as refused:
            result.to_pandas()
    assert_one_line_error(refused, "to_pandas() needs pandas: pip install pandas")
    # The same comparison again trains nothing; a new process would find the same.
    assert dlcli.compare(task="xor", what="depth", epochs=200, lr=1.0, quiet=True).rows == result.rows


def test_to_pandas_with_pandas(workdir):
    pandas = pytest.importorskip("pandas")
    frame = dlcli.compare(what="init", dry_run=True).to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame["variant"]) == ["relu-normal", "relu-xavier", "relu-he"]


def test_a_dry_run_result_lists_its_runs():
    result = dlcli.compare(what="activation", dry_run=True)
    assert result.rows is None and [p["would"] for p in result.planned] == ["train", "train"]
    assert "planned (dry run)" in repr(result) and "<td>sigmoid-normal</td>" in result._repr_html_()
    assert "sigmoid-normal" in result.table() and not list(Path().rglob("*"))
    with pytest.raises(ConfigError, match="unknown format 'nope'"):
        result.table("nope")


@pytest.mark.slow
def test_inspect_returns_the_commands_rows(runner):
    result = dlcli.xor(**FAST_XOR, name="i", quiet=True)
    found = dlcli.inspect(result)
    cli_rows = json.loads(invoke(runner, "inspect", str(result.checkpoint_dir), "--format", "json").stdout)
    assert found.rows == cli_rows and found.steps == [0, 300]
    assert "\n" not in repr(found) and found._repr_html_().count("<tr") == 1 + len(cli_rows)
    assert dlcli.inspect(result.checkpoint_dir, step=290).steps == [300]
    with pytest.raises(ConfigError, match="--step must be an integer >= 0"):
        dlcli.inspect(result, step=-1)


# -- what several calls share -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_lab_reuses_its_compiled_loop_and_the_functions_share_nothing(monkeypatch):
    from dlcli.core import reuse as reuse_module

    made = []

    class CountedReuse(reuse_module.Reuse):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(reuse_module, "Reuse", CountedReuse)
    lab = dlcli.Lab()
    first = lab.xor(**FAST_XOR, seed=0, quiet=True)
    loop = lab.reuse.loop[1]
    second = lab.xor(**FAST_XOR, seed=1, quiet=True)
    assert lab.reuse.loop[1] is loop, "the second run of the same architecture compiled a new loop"
    assert len(lab.reuse.datasets) == 1 and "1 compiled loop)" in repr(lab)
    assert len(made) == 1
    # Reusing the loop changes no number: the module's function, with a fresh Lab, agrees.
    alone = dlcli.xor(**FAST_XOR, seed=1, quiet=True)
    assert (alone.accuracy, alone.loss) == (second.accuracy, second.loss)
    assert first.run != second.run != alone.run
    dlcli.xor(**FAST_XOR, seed=2, quiet=True)
    # Each call trained with a Reuse of its own, and compiled its own loop.
    assert len(made) == 3 and made[1].loop is not None and made[2].loop is not None
    assert made[2].loop[1] is not made[1].loop[1] and made[1].loop[1] is not loop


def test_the_api_keeps_no_state_in_module_globals():
    import types

    for module in (api, sys.modules["dlcli.results"] if "dlcli.results" in sys.modules else __import__(
            "dlcli.results", fromlist=["x"]), dlcli):  # fmt: skip
        for name, value in vars(module).items():
            if name.startswith("__") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
                continue
            assert not isinstance(value, (list, dict, set)) or name.lstrip("_").isupper(), f"{module}.{name}"
            assert not isinstance(value, api.Lab), f"{module.__name__}.{name} is a shared Lab"


def test_the_api_page_calls_only_what_exists():
    """docs/api.md's Python: every dlcli.X(...) and lab.X(...) names a function and its keywords."""
    import ast
    import inspect

    from conftest import SRC

    page = (SRC / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    calls = 0
    for block in blocks:
        code = "\n".join(line for line in block.splitlines() if not line.startswith("%"))
        for node in ast.walk(ast.parse(code)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("dlcli", "lab")):  # fmt: skip
                continue
            line = code.splitlines()[node.lineno - 1]
            said = re.search(r"# (\w+): (.*)$", line)
            if said:  # a refusal the page shows: made, with the message it shows
                with pytest.raises(DlcliError) as refused:
                    eval(ast.unparse(node), {"dlcli": dlcli})  # the page's own line
                assert (type(refused.value).__name__, str(refused.value)) == said.groups(), line
                calls += 1
                continue
            owner = dlcli if node.func.value.id == "dlcli" else dlcli.Lab()
            function = getattr(owner, node.func.attr)
            params = inspect.signature(function).parameters
            assert {k.arg for k in node.keywords} <= set(params), ast.unparse(node)
            calls += 1
    assert calls >= 10
