"""Pictures and tables that cannot mislead (issue 26): every figure dlcli draws is read
back from its matplotlib objects (bars start at 0, every axis is labelled, no text under
9 pt, legends off the data, one colour per variant, a run's curve ends on its table
number), and every compare table shows what differs and says what it aggregates."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke
from test_tables import LECTURE, comparison

from dlcli import figures, html_report, report
from dlcli import comparison as experiments
from dlcli.comparison.curves import Curves

pytest.importorskip("matplotlib")
report.offscreen_pyplot()


# -- reading a figure back --------------------------------------------------------------


def _data_axes(fig):
    """The panels that show data: not a colour bar, not a thumbnail without ticks, not hidden."""
    for ax in fig.axes:
        if not ax.axison or ax.get_label() == "<colorbar>":
            continue
        if not ax.get_xticks().size and not ax.get_yticks().size:
            continue
        yield ax


def figure_problems(fig) -> list[str]:
    """What in `fig` breaks the figure style (dlcli.figures), one line each."""
    from matplotlib.container import BarContainer
    from matplotlib.text import Text

    if not hasattr(fig.canvas, "get_renderer"):  # closed by pyplot after saving: draw it off-screen again
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()  # tick labels exist only once drawn
    problems = []
    axes = list(_data_axes(fig))
    for i, ax in enumerate(axes):
        name = f"panel {i + 1} ({ax.get_title()!r})"
        if not ax.get_xlabel().strip():
            problems.append(f"{name}: no x label")
        if not ax.get_ylabel().strip():
            problems.append(f"{name}: no y label")
        for bars in (c for c in ax.containers if isinstance(c, BarContainer)):
            low = ax.get_xlim()[0] if bars.orientation == "horizontal" else ax.get_ylim()[0]
            if low > 0:
                problems.append(f"{name}: bars start at {low:.3g}, not 0")
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < figures.SMALLEST:
            problems.append(f"{text.get_text()[:30]!r} at {text.get_fontsize():.1f} pt")
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in axes:
            if box.overlaps(ax.get_window_extent(renderer)):
                problems.append(f"a legend lies on the data of {ax.get_title()!r}")
    return problems


def colours_by_label(fig) -> dict[str, set]:
    """{label: {colour, ...}} of every labelled line and collection in `fig`."""
    from matplotlib.colors import to_hex

    found: dict[str, set] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                found.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
    return found


# -- compare's figure -------------------------------------------------------------------


def curves_for(rows: list[dict], *, offset: float) -> tuple[Curves, Curves]:
    """Learning curves that end `offset` away from each row's table numbers, as the
    first 1000 MNIST test digits (easier than the rest) end above the whole set's."""
    accuracy, loss = Curves("accuracy"), Curves("loss")
    for r in rows:
        for seed in range(r["seeds"]):
            steps = range(0, 500, 50)
            accuracy.by_variant.setdefault(r["variant"], {})[seed] = [
                (s, min(1.0, r["accuracy"] * s / 450 + offset)) for s in steps]  # fmt: skip
            loss.by_variant.setdefault(r["variant"], {})[seed] = [(s, r["loss"] + 2 / (1 + s) - offset) for s in steps]
    return accuracy, loss


@pytest.fixture(scope="module")
def lecture_rows():
    rows, columns = comparison(what=("all",), numbers=LECTURE)
    return rows, columns


@pytest.mark.parametrize("seeds", [1, 2])
def test_compare_figure_keeps_the_style(seeds):
    rows, _ = comparison(what=("all",), numbers=LECTURE, seeds=seeds)
    fig, _ = report.comparison_figure(rows, curves_for(rows, offset=0.03), task="mnist")
    assert figure_problems(fig) == []


def test_compare_figure_of_xor_keeps_the_style():
    rows, _ = comparison(task="xor", seeds=2, numbers={"layers=1": ([0.75, 0.5], 0.69, 3, None),
                                                       "layers=2": ([1.0, 1.0], 0.1, 9, 3.0),
                                                       "layers=4": ([1.0, 0.75], 0.2, 251, 9.0)})  # fmt: skip
    fig, _ = report.comparison_figure(rows, curves_for(rows, offset=0.0), task="xor")
    assert figure_problems(fig) == []


def test_intervals_are_drawn_only_where_the_table_has_them(lecture_rows):
    """One seed: the table has no interval, so the figure draws none (and says so)."""
    rows, _ = comparison(what=("all",), numbers=LECTURE, seeds=1)
    fig, _ = report.comparison_figure(rows, curves_for(rows, offset=0.0), task="mnist")
    first = fig.axes[0]
    assert not first.containers and "no interval" in first.get_title() and "CI" not in first.get_title()
    rows, _ = lecture_rows
    fig, _ = report.comparison_figure(rows, curves_for(rows, offset=0.0), task="mnist")
    first = fig.axes[0]
    assert len(first.containers) == len(rows) and "95% CI" in first.get_title()
    for r, bars in zip(rows, first.containers):  # each interval is the table's
        (segments,) = bars.lines[2]
        (low, _), (high, _) = segments.get_segments()[0]
        assert (low, high) == pytest.approx((r["ci_low"], r["ci_high"]))


@pytest.mark.parametrize("metric", ["accuracy", "loss"])
def test_each_curve_ends_on_its_runs_table_number(lecture_rows, metric):
    """The curves are measured on the first 1000 test examples and end 0.03 off the
    table; the figure draws the table's number where they end, in the variant's colour."""
    from matplotlib.colors import to_hex

    rows, _ = lecture_rows
    colours = figures.variant_colors(r["variant"] for r in rows)
    fig, _ = report.comparison_figure(rows, curves_for(rows, offset=0.03), task="mnist", colors=colours)
    ax = fig.axes[1 if metric == "accuracy" else 2]
    last = max(line.get_xdata()[-1] for line in ax.get_lines())
    ends = {(to_hex(line.get_color()), round(float(line.get_ydata()[-1]), 9)) for line in ax.get_lines()
            if line.get_xdata()[-1] == last}  # fmt: skip
    for r in rows:
        assert (colours[r["variant"]], round(r[metric], 9)) in ends, r["variant"]
    assert "test" in " ".join(t.get_text() for t in fig.legends[0].get_texts())  # it says which point is which


def test_one_colour_per_variant_whatever_the_sort(lecture_rows):
    rows, _ = lecture_rows
    colours = figures.variant_colors(r["variant"] for r in rows)
    by_accuracy = experiments.sort_rows(rows, "accuracy")
    fig, _ = report.comparison_figure(by_accuracy, curves_for(rows, offset=0.0), task="mnist", colors=colours)
    found = colours_by_label(fig)
    assert {name: found[name] for name in colours} == {name: {c} for name, c in colours.items()}


# -- inspect's depth profile, the confusion matrix --------------------------------------


def inspect_rows(activation_dead: bool = True) -> list[dict]:
    rows = []
    for step in (0, 500):
        for i, layer in enumerate(["hidden1", "hidden2", "hidden3", "output"]):
            hidden = layer != "output"
            rows.append({"step": step, "layer": layer, "weight_grad_norm": 10.0 ** (-3 + i),
                         "act_std": 0.5 + 0.1 * i if hidden else None,
                         "saturated": None, "dead": 0.1 * i if hidden and activation_dead else None})  # fmt: skip
    return rows


def test_the_depth_profile_keeps_the_style_and_names_only_the_layers_with_a_point():
    fig = report.depth_profile_figure(inspect_rows(), title="run: depth profile at step 0 and 500")
    assert figure_problems(fig) == []
    names = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes[:3]]
    assert "output" in names[0] and "output" not in names[1] and "output" not in names[2]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "step 0" in legend and "step 500" in legend and any("dead" in t for t in legend)


def test_the_confusion_matrix_is_legible_with_horizontal_axis_names():
    matrix = np.diag(np.full(10, 90)) + 1
    fig = report.confusion_figure(matrix)
    assert figure_problems(fig) == []
    (ax,) = fig.axes
    assert ax.yaxis.label.get_rotation() == 0 and ax.xaxis.label.get_rotation() == 0


# -- tables -----------------------------------------------------------------------------

TABLES = {
    "lectures": lambda: comparison(what=("all",), numbers=LECTURE),
    "init": lambda: comparison(what=("init",)),
    "grid": lambda: comparison(vary=("activation=sigmoid,relu", "units=8,16")),
    "xor": lambda: comparison(task="xor"),
    "one seed": lambda: comparison(what=("activation",), seeds=1),
}


def _columns(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("|") and not set(line) <= set("|-: ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return cells[0], [list(column) for column in zip(*cells[1:])]


@pytest.mark.parametrize("width", [None, 80, 120])
@pytest.mark.parametrize("case", list(TABLES))
def test_no_table_has_an_empty_or_unnamed_column(case, width):
    rows, columns = TABLES[case]()
    text = report.compare_table(rows, "github", columns, width=width)
    headers, body = _columns(text)
    assert all(headers) and "" not in headers, text
    for header, column in zip(headers, body):
        assert any(column) or header, text
    headers, body = report.compare_cells(rows, columns)  # the HTML report's and the notebook's cells
    assert all(h.strip() for h in headers) and all(any(str(c).strip() for c in col) for col in zip(*body))


@pytest.mark.parametrize("width", [None, 200])
def test_settings_every_variant_shares_are_one_line_not_a_column(width):
    rows, columns = comparison(what=("init",))
    assert {"activation", "init"} <= set(columns)  # the preset names them; only init differs
    text = report.compare_table(rows, "github", columns, width=width)
    headers = text.splitlines()[0]
    assert "init" in headers and not re.search(r"\b(activation|layers|units|dropout|batchnorm)\b", headers), text
    line = report.shared_line(rows, columns)
    assert line.startswith("every variant: ") and "activation=relu" in line and "init" not in line


def test_every_column_says_what_it_aggregates(lecture_rows):
    rows, columns = lecture_rows
    headers, _ = report.compare_cells(rows, columns)
    assert "accuracy (mean ± std, 2 seeds)" in headers and "seconds (sum over seeds)" in headers
    assert {"test loss (mean)", "params (per run)", "grad ratio W1/WN (mean)", "95% CI of the mean"} <= set(headers)
    xor, _ = comparison(task="xor")
    assert "loss on the 4 points (mean)" in report.compare_cells(xor)[0]


def test_the_report_shares_what_the_variants_share_and_explains_only_what_it_shows():
    from dlcli.config import DataSpec

    base = experiments.base_config("mnist", data=DataSpec(), logdir="logs", checkpoint_dir="ck")
    the_plan = experiments.plan("mnist", ("init",), (), base, seeds=2)
    rows, _ = comparison(what=("init",))
    shared = dict(html_report._shared_settings(the_plan, rows))
    assert shared["model.init"] == "per variant (above)"
    assert shared["model.activation"] == "relu" and shared["model.layers"] != "per variant (above)"
    from test_html_report import made_up_report

    page = html_report.render(made_up_report(best=[False, False]))
    assert "clearly best" not in page and "marked *" not in page  # no highlighted row, no cut interval
    assert '<a href="#reading">' in page and 'id="reading"' in page  # a link that works offline
    page = html_report.render(made_up_report(body=[["a", "[0.5, 1.0000*]"], ["b", "0.2"]]))
    assert "highlighted row is <em>clearly best</em>" in page and "marked * was cut" in page


# -- words: help, typos, which loss ------------------------------------------------------


def test_help_summaries_are_whole_sentences(runner):
    out = invoke(runner, "--help").stdout
    listing = out.split("Commands:")[1]
    summaries = re.findall(r"^  (\w+)\s+(.*?)(?=^  \w|\Z)", listing, flags=re.M | re.S)
    assert len(summaries) >= 6
    for name, text in summaries:
        text = " ".join(text.split())
        assert text.endswith(".") and not text.endswith("..."), (name, text)


@pytest.mark.parametrize("args, meant", [
    (["compare", "--what", "inits"], "'init'"),
    (["compare", "--sort", "acuracy"], "'accuracy'"),
    (["compare", "--format", "jsn"], "'json'"),
    (["mnist", "--activation", "rleu"], "'relu'"),
])  # fmt: skip
def test_a_mistyped_choice_gets_did_you_mean(runner, args, meant):
    from dlcli.cli import cli

    result = runner.invoke(cli, args)
    assert result.exit_code != 0 and f"Did you mean {meant}?" in result.output, result.output


def test_board_list_says_which_loss_each_column_is():
    from dlcli import board

    runs = [board.RunSummary("x", 300, {"train/loss": 0.2213, "train/accuracy": 1.0})]
    header = board.runs_table(runs).splitlines()[0]
    assert "train/loss (window mean)" in header and "test/loss (test set)" in header
    assert "printed result" in board.LEGEND and "window" in board.LEGEND


# -- every figure of a real comparison, through the command ----------------------------


@pytest.mark.slow
def test_every_figure_of_an_xor_comparison_keeps_the_style_and_every_file_is_named(runner, workdir, saved_figures):
    out = invoke(runner, "compare", "--task", "xor", "--epochs", "300", "--sort", "accuracy",
                 "--plot", "x.png", "--report", "x.html", "-q")  # fmt: skip
    assert "plots: x.png, x-depth.png" in out.output and "report: x.html" in out.output  # every file named
    assert (workdir / "x.html").is_file()
    # The plot and the report's copy of it go through PNG bytes, the depth profile to its file.
    assert "x-depth.png" in {Path(name).name for name in saved_figures} and len(saved_figures) == 3
    run = next((workdir / "checkpoints" / "compare").glob("*/layers=2-s0"))
    inspected = invoke(runner, "inspect", str(run), "--plot", "i.png")
    assert "plot: i.png" in inspected.output
    invoke(runner, "xor", "--epochs", "200", "--log-every", "100", "--plot", "b.png", "--name", "b")
    colours: dict[str, set] = {}
    for name, fig in saved_figures.items():
        assert figure_problems(fig) == [], name
        for label, found in colours_by_label(fig).items():
            if label.startswith("layers="):
                colours.setdefault(label, set()).update(found)
    assert len(colours) == 3 and all(len(found) == 1 for found in colours.values()), colours  # one colour each
