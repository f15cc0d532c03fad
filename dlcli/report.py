"""Turning results into text: truth tables, run summaries (stdout is for results)."""

from __future__ import annotations

import json
import math
import shutil
import sys

from tabulate import tabulate

from dlcli.wording import counted


def truth_table(rows: list[dict], *, tablefmt: str = "github") -> str:
    headers = list(rows[0])
    body = [[_cell(row[h]) for h in headers] for row in rows]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def run_summary(result) -> str:
    """The lines printed after training: result, speed, and where everything went."""
    evaluated, lost = ("accuracy on the 4 XOR points", "loss on them") if result.task == "xor" else \
        ("test accuracy", "test loss")
    lines = [
        f"{evaluated} {result.accuracy:.4f}   {lost} {result.loss:.4f}   "
        f"(epoch {result.epochs}, step {result.steps})"
    ]
    if result.trained_steps:
        speed = f"trained {result.trained_steps} steps in {result.train_seconds:.2f} s"
        if result.steps_per_epoch > 1 and math.isfinite(result.seconds_per_epoch):
            speed += f" ({result.seconds_per_epoch:.2f} s per epoch)"
        lines.append(speed)
    lines.append(f"checkpoints: {result.checkpoint_dir}   (continue: dlcli resume {result.checkpoint_dir})")
    lines.append(f"tensorboard: {result.logdir}   (view: dlcli board)")
    return "\n".join(lines)


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, allow_nan=False, default=_jsonable)


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


MACHINE_FORMATS = ("json", "csv")


def table_formats() -> list[str]:
    from tabulate import tabulate_formats

    return list(tabulate_formats) + list(MACHINE_FORMATS)


def terminal_width(wide: bool = False, stream=None) -> int | None:
    """How wide a table may be: the terminal's width (COLUMNS when set), or None for
    the full table, with every column: with --wide, or when `stream` (stdout) is not
    a terminal (a pipe, a file: whatever reads it gets everything)."""
    if wide or not _isatty(stream if stream is not None else sys.stdout):
        return None
    return shutil.get_terminal_size().columns


def wrap_line(line: str, width: int | None) -> str:
    """A line of prose under a table, wrapped at spaces to a terminal `width` (None: as it
    is), its continuation lines indented."""
    if width is None or len(line) <= width:
        return line
    import textwrap

    return textwrap.fill(line, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def compare_table(rows: list[dict], fmt: str = "github", columns: tuple[str, ...] = (), *,
                  width: int | None = None) -> str:  # fmt: skip
    """compare's results: a tabulate table, or JSON / CSV with every column.

    `columns`: the settings the variants differ in, one column each. Every row but the
    best (highest mean) shows its difference to the best with its paired interval at the
    verdicts' adjusted level, every row its verdict (`dlcli.verdicts`) and, from a
    comparison that ran, its diagnosis (`dlcli.diagnosis.label`); only a
    "clearly best" row is starred. Intervals cut at the bounds of what they can be are
    marked (`1.0000*`). `width` (a terminal's): the table that fits it (see
    `fitted_compare_table`); None: every column.
    """
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    if width is not None and fmt in _multiline_formats():
        return fitted_compare_table(rows, fmt, columns, width)
    headers, body = compare_cells(rows, columns)
    from tabulate import tabulate

    return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)


VERSUS = "vs best (adjusted CI)"
DIAGNOSIS = "diagnosis"  # the rows' key and the column: each variant's problems (dlcli.diagnosis.label)


def split_columns(rows: list[dict], columns: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """`columns` (the settings a plan names) split into those whose values differ
    between the rows (a table column each) and [(setting, value)] of those every row
    shares (one line beside the table: a column of one repeated value says nothing)."""
    from dlcli.comparison import format_value

    varying, shared = [], []
    for c in columns:
        values = list(dict.fromkeys(format_value(r[c]) for r in rows))
        if len(values) > 1:
            varying.append(c)
        else:
            shared.append((c, values[0]))
    return tuple(varying), shared


def unstated_columns(rows: list[dict], columns: tuple[str, ...]) -> list[str]:
    """The setting columns worth a column: those whose values differ between the rows,
    less those every variant's name already states (`layers=2` needs no `layers` column)."""
    from dlcli.comparison import format_value

    varying, _ = split_columns(rows, columns)
    return [c for c in varying if not all(f"{c}={format_value(r[c])}" in r["variant"].split(",") for r in rows)]


def shared_line(rows: list[dict], columns: tuple[str, ...]) -> str | None:
    """'every variant: activation=relu, layers=2' (the settings no row differs in), or None."""
    _, shared = split_columns(rows, columns)
    return "every variant: " + ", ".join(f"{name}={value}" for name, value in shared) if shared else None


def accuracy_header(rows: list[dict]) -> str:
    """What the accuracy column aggregates: 'accuracy (1 seed)', 'accuracy (mean ± std,
    3 seeds)', or over a varying number of seeds 'accuracy (mean ± std over seeds)'."""
    seeds = {r["seeds"] for r in rows}
    if len(seeds) > 1:
        return "accuracy (mean ± std over seeds)"
    n = seeds.pop()
    return f"accuracy ({counted(n, 'seed')})" if n == 1 else f"accuracy (mean ± std, {counted(n, 'seed')})"


def loss_header(rows: list[dict]) -> str:
    """Which loss the loss column is: the final evaluation's, on the test set or (xor) the 4 points."""
    return ("loss on the 4 points" if "solved" in rows[0] else "test loss") + " (mean)"


# What the other columns aggregate over a variant's seeds (json/csv keep the bare keys).
CI_HEADER = "95% CI of the mean"
SECONDS_HEADER, PARAMS_HEADER, RATIO_HEADER = "seconds (sum over seeds)", "params (per run)", "grad ratio W1/WN (mean)"
SOLVED_HEADER = "solved (seeds)"


def compare_cells(rows: list[dict], columns: tuple[str, ...] = ()) -> tuple[list[str], list[list]]:
    """compare's table as headers and rows of cell texts (the tabulate table and the
    HTML report show the same cells): every column but the settings every row shares
    (`shared_line` says those once). A "clearly best" row says so in its verdict."""
    from dlcli.comparison import format_value

    columns = unstated_columns(rows, columns)
    xor, paper = "solved" in rows[0], PAPER_KEY in rows[0]
    seeds = len({r["seeds"] for r in rows}) > 1  # else the accuracy header says how many
    diagnosed = DIAGNOSIS in rows[0]
    headers = ["variant", *columns, accuracy_header(rows), CI_HEADER, VERSUS, "verdict"]
    headers += [DIAGNOSIS] if diagnosed else []
    headers += [SOLVED_HEADER] if xor else []
    headers += list(PAPER_HEADERS) if paper else []
    headers += [loss_header(rows), SECONDS_HEADER, PARAMS_HEADER, RATIO_HEADER] + (["seeds"] if seeds else [])
    body = []
    for r in rows:
        line = [r["variant"], *(format_value(r[c]) for c in columns), _accuracy(r), _interval(r), _versus(r, " "),
                r["verdict"]]  # fmt: skip
        line += [r[DIAGNOSIS]] if diagnosed else []
        line += [_solved(r)] if xor else []
        line += _paper_cells(r) if paper else []
        line += [f"{r['loss']:.4f}", f"{r['seconds']:.1f}", f"{r['params']:,}", _ratio(r)]
        line += [r["seeds"]] if seeds else []
        body.append(line)
    if all(r["ci_low"] is None for r in rows):  # one seed: a column of "-" says nothing (a line under it says why)
        at = headers.index(CI_HEADER)
        headers, body = headers[:at] + headers[at + 1 :], [line[:at] + line[at + 1 :] for line in body]
    return headers, body


def verdict_lines(decision, *, stop: str | None = None) -> list[str]:
    """The lines under compare's table: what the verdicts were adjusted for (or, with one
    seed, the one line saying there are none and which option would test them), and with
    --seeds auto why the rounds stopped."""
    lines = []
    if decision is not None:
        if decision.note:
            lines.append(f"note: {decision.note}")
        if any(v.p_behind is not None for v in decision.verdicts.values()):
            line = decision.family
            levels = {v.diff_to_best.level for v in decision.verdicts.values()
                      if v.diff_to_best is not None and v.diff_to_best.low is not None}  # fmt: skip
            if levels:
                line += f"; vs best: simultaneous {_percent(levels.pop())} intervals"
            lines.append(line)
    if stop:
        lines.append(f"seeds auto: {stop}")
    return lines


def _percent(level: float) -> str:
    """0.99762 -> '99.76%': enough digits to tell it from 95%."""
    return f"{level * 100:.4g}%"


def fitted_compare_table(rows: list[dict], fmt: str, columns: tuple[str, ...], width: int) -> str:
    """compare's table for a terminal `width` columns wide.

    Nothing is said twice: setting columns go when every variant's name states its
    settings (grids: `activation=relu,init=he`), the seed count goes to the header
    when all rows share it, intervals and verdicts go when one seed gives none (a line
    under the table says so), and only a "clearly best" row is marked, in its verdict
    (no star column). Seconds, params and the gradient ratio are left to --wide (and
    json/csv). Then, while the table is too wide: loss goes, the difference and its
    interval take two lines, so do the verdicts, the diagnosis takes a line per
    problem, the setting columns go, grid names are shown as their values under one
    header ("sigmoid,he" under "activation,init"), the accuracy interval goes, the
    diagnosis goes (to --wide, json and csv), and long names are wrapped at their commas.
    """
    from dlcli.comparison import format_value

    # Headers in lines as narrow as the numbers under them: a terminal is narrow.
    accuracy = accuracy_header(rows).replace(" (", "\n(").replace(", ", ",\n")
    seed_column = ["seeds"] if len({r["seeds"] for r in rows}) > 1 else []
    ci_header, loss = CI_HEADER.replace(" of", "\nof"), loss_header(rows).replace(" (", "\n(")
    settings = unstated_columns(rows, columns)  # what every row shares is said under the table
    versus = VERSUS
    cells = {  # no star column: "clearly best" in the verdict column says it
        "variant": [r["variant"] for r in rows],
        **{c: [format_value(r[c]) for r in rows] for c in settings},
        accuracy: [_accuracy(r) for r in rows],
        ci_header: [_interval(r) for r in rows],
        versus: [_versus(r, " ") for r in rows],
        "verdict": [r["verdict"] for r in rows],
        DIAGNOSIS: [r[DIAGNOSIS] for r in rows] if DIAGNOSIS in rows[0] else None,
        SOLVED_HEADER.replace(" (", "\n("): [_solved(r) for r in rows] if "solved" in rows[0] else None,
        **({h: [_paper_cells(r)[i] for r in rows] for i, h in enumerate(PAPER_HEADERS)} if PAPER_KEY in rows[0] else {}),
        loss: [f"{r['loss']:.4f}" for r in rows],
        "seeds": [str(r["seeds"]) for r in rows] if seed_column else None,
    }
    cells = {header: column for header, column in cells.items() if column is not None}
    if all(c == "-" for c in cells[ci_header]):
        del cells[ci_header]  # one seed: no intervals to show
    if all(r["diff_ci_low"] is None for r in rows):
        cells["vs best"] = cells.pop(versus)
        versus = "vs best"
    if all(r["p_behind"] is None for r in rows):
        del cells["verdict"]  # no verdicts at all (one seed): the line under the table says why

    def narrower():
        yield cells
        cells.pop(loss)
        yield cells
        # The difference over its interval, and its header in two lines as well.
        cells[versus] = [_versus(r, "\n") for r in rows]
        _rename(cells, {versus: versus.replace(" (", "\n(")})
        yield cells
        if "verdict" in cells:
            cells["verdict"] = [_two_lines(r["verdict"]) for r in rows]
            yield cells
        if DIAGNOSIS in cells:  # one problem a line
            cells[DIAGNOSIS] = [r[DIAGNOSIS].replace(", ", ",\n") for r in rows]
            yield cells
        if settings:
            for c in settings:
                cells.pop(c)
            yield cells
        keys = _grid_keys([r["variant"] for r in rows])
        if keys:  # grid names as their values under one header: "sigmoid,he" under "activation,init"
            values = [",".join(part.split("=", 1)[1] for part in r["variant"].split(",")) for r in rows]
            yield {",".join(keys): values, **{k: v for k, v in cells.items() if k != "variant"}}
            cells.pop("variant")
            cells.update({",".join(keys): values})
            cells.update({k: cells.pop(k) for k in list(cells)[:-1]})  # the names first again
        if cells.pop(ci_header, None) is not None:
            yield cells
        if cells.pop(DIAGNOSIS, None) is not None:  # still too wide
            yield cells

    return fit(narrower(), fmt, width)


def _rename(cells: dict, names: dict) -> None:
    """Rename some of `cells`' headers in place, keeping their order."""
    for key in list(cells):
        cells[names.get(key, key)] = cells.pop(key)


def _two_lines(text: str) -> str:
    """A verdict in two lines, broken at the space nearest its middle
    ("within 0.01\nof the best", "clearly\nbehind")."""
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return text
    middle = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:middle] + "\n" + text[middle + 1 :]


def _grid_keys(names: list[str]) -> list[str] | None:
    """The setting names when every name is `a=1,b=2` with the same settings in the
    same order (a --vary grid), else None."""
    keys = [tuple(part.split("=", 1)[0] for part in name.split(",")) for name in names]
    if not all(all("=" in part for part in name.split(",")) for name in names) or len(set(keys)) != 1:
        return None
    return list(keys[0])


def fit(candidates, fmt: str, width: int) -> str:
    """The first of `candidates` ({header: cells}, each narrower than the one
    before) whose table is at most `width` wide; failing that, the last with its
    first column (the names) broken into lines, after commas and slashes where it
    can be, until it fits or its lines are as short as they get."""
    from tabulate import tabulate

    def render(table):
        return tabulate(list(zip(*table.values())), headers=list(table), tablefmt=fmt, disable_numparse=True)

    for table in candidates:
        text = render(table)
        if _text_width(text) <= width:
            return text
    header, *others = table
    original = [header, *table[header]]
    for limit in range(max(len(c) for c in original) - 1, 7, -1):
        wrapped = [_wrap(c, limit) for c in original]
        text = render({wrapped[0]: wrapped[1:], **{k: table[k] for k in others}})
        if _text_width(text) <= width:
            break
    return text


def _wrap(text: str, limit: int) -> str:
    """`text` in lines of at most `limit` characters, broken after a comma or a slash
    where it can be (a grid variant keeps each `name=value` whole), anywhere where not."""
    import re

    parts = [p for p in re.split(r"(?<=[,/])", text) if p]
    lines = [""]
    for part in parts:
        while len(part) > limit:  # one setting longer than a line
            if lines[-1]:
                lines.append("")
            lines[-1], part = part[:limit], part[limit:]
            lines.append("")
        if lines[-1] and len(lines[-1]) + len(part) > limit:
            lines.append("")
        lines[-1] += part
    return "\n".join(line for line in lines if line)


def _text_width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def _multiline_formats() -> set[str]:
    """Formats whose cells may hold several lines (and fit a terminal at all)."""
    import tabulate

    return set(tabulate.multiline_formats)


def _accuracy(r: dict) -> str:
    text = f"{r['accuracy']:.4f}"
    return text + f" ± {r['accuracy_std']:.4f}" if r["seeds"] > 1 else text


def _interval(r: dict) -> str:
    if r["ci_low"] is None:
        return "-"
    return _bounded(r["ci_low"], r["ci_high"], r["ci_clipped"], (0.0, 1.0), "{:.4f}".format)


def _bounded(low: float, high: float, clipped: bool, bounds: tuple[float, float], show) -> str:
    """An interval, each end that was cut at a bound marked with `*` ("[0.9871, 1.0000*]"):
    the statistics cut it there (the rest held impossible values), so too few seeds made
    the symmetric interval crude."""
    low_text = show(low) + ("*" if clipped and low == bounds[0] else "")
    high_text = show(high) + ("*" if clipped and high == bounds[1] else "")
    return f"[{low_text}, {high_text}]"


def _versus(r: dict, gap: str) -> str:
    """The difference to the best row with its paired interval at the verdicts' level;
    `gap` between the two. The best row itself is "highest mean": only its verdict
    says whether it is clearly the best."""
    if r["best"]:
        return "highest mean"
    if r.get("pruned_at"):  # compare --prune: its numbers are its last rung's
        from dlcli.comparison.prune import pruned_note

        return pruned_note(r)
    if r["diff_to_best"] is None:
        return "-"
    if r["diff_ci_low"] is None:
        return _signed(r["diff_to_best"])
    interval = _bounded(r["diff_ci_low"], r["diff_ci_high"], r["diff_ci_clipped"], (-1.0, 1.0), _signed)
    return f"{_signed(r['diff_to_best'])}{gap}{interval}"


def _signed(value: float) -> str:
    """+0.0123 / -0.0123, and +0.0000 for a difference that rounds to nothing (never
    "-0.0000": a float subtraction of equal accuracies can leave -1e-17)."""
    return f"{round(value, 4) + 0.0:+.4f}"


# A paper's preset: its own test error per variant (comparison.presets.Paper) beside
# dlcli's, which is 1 - accuracy; the key in json/csv rows, the two table columns.
PAPER_KEY = "paper_test_error"
PAPER_HEADERS = ("test error", "paper's test error (full training)")


def _paper_cells(r: dict) -> list[str]:
    paper = r[PAPER_KEY]
    return [f"{1 - r['accuracy']:.2%}", "-" if paper is None else f"{paper:.2%}"]


def _solved(r: dict) -> str:
    return f"{round(r['solved'] * r['seeds'])}/{r['seeds']}"


def _ratio(r: dict) -> str:
    return "-" if r["grad_ratio"] is None else f"{r['grad_ratio']:.3g}"


def plan_table(statuses, fmt: str = "github") -> str:
    """`compare --dry-run`: every planned run and what running the comparison would do."""
    from tabulate import tabulate

    body = [[run.variant.name, run.seed, how, run.config.name] for run, how in statuses]
    return tabulate(body, headers=["variant", "seed", "would", "run"], tablefmt=fmt, disable_numparse=True)


def comparison_plot(rows: list[dict], curves: tuple, path: str, *, task: str, colors: dict | None = None,
                    ) -> dict[str, int]:  # fmt: skip
    """`compare --plot`: the comparison_png picture written to `path`."""
    png, drawn = comparison_png(rows, curves, task=task, colors=colors)
    with open(path, "wb") as f:
        f.write(png)
    return drawn


def offscreen_pyplot():
    """matplotlib.pyplot drawing off-screen (Agg): the pictures go to files, no window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def comparison_png(rows: list[dict], curves: tuple, *, task: str, colors: dict | None = None,
                   ) -> tuple[bytes, dict[str, int]]:  # fmt: skip
    """comparison_figure as PNG bytes, drawn off-screen (Agg), and {panel: curves drawn}."""
    import matplotlib

    matplotlib.use("Agg")
    fig, drawn = comparison_figure(rows, curves, task=task, colors=colors)
    return figure_png(fig), drawn


def figure_png(fig, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed (pyplot forgets it)."""
    import io

    import matplotlib.pyplot as plt

    from dlcli import figures

    figures.finish(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


# What the curves of a comparison are measured on, and what its table's numbers are.
CURVE_DATA = {"xor": "4 points, logging-window mean", "mnist": "first 1000 test examples"}
FINAL_DATA = {"xor": "the 4 points", "mnist": "whole test set"}


def comparison_figure(rows: list[dict], curves: tuple, *, task: str, colors: dict | None = None):
    """Three panels in the figure style (dlcli.figures): each variant's final accuracy
    as a dot with its 95% interval where the table has one (a forest plot: the
    differences are small, and a dot's position, unlike a bar's length, need not start
    at 0), and the accuracy and loss curves of every variant (the mean over seeds as a
    line, the seeds' range as a band), each ending in a diamond at the table's own
    number (the final evaluation on the whole test set; the curves are on a subset).
    `colors`: {variant: colour} shared by the comparison's figures (default: in the
    rows' order). Returns the figure and {panel: curves drawn}. The backend is left as
    it is (a notebook's inline one stays: the Python API's .plot())."""
    import numpy as np

    from dlcli import figures

    colors = colors or figures.variant_colors(r["variant"] for r in rows)
    fig, axes = figures.new_figure(1, 3, figsize=(15, max(4.4, 1.5 + 0.35 * len(rows))))
    ax = axes[0]
    evaluated = "accuracy on the 4 XOR points" if task == "xor" else "test accuracy"
    seeds = {r["seeds"] for r in rows}
    with_ci = [r for r in rows if r["ci_low"] is not None]
    for y, r in enumerate(rows):
        color = colors[r["variant"]]
        if r["ci_low"] is not None:
            ax.errorbar([r["accuracy"]], [y], xerr=[[r["accuracy"] - r["ci_low"]], [r["ci_high"] - r["accuracy"]]],
                        fmt="o", color=color, capsize=4, markersize=7)  # fmt: skip
        else:
            ax.plot([r["accuracy"]], [y], "o", color=color, markersize=7)
    ax.set_yticks(range(len(rows)), [r["variant"] for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the table's order, top down
    ax.set_ylabel("variant")
    n = seeds.pop() if len(seeds) == 1 else None
    aggregate = "" if n == 1 else " (mean over seeds)"
    ax.set_xlabel(f"final {evaluated}{aggregate}")
    interval = "95% CI of the mean" if with_ci else "no interval"
    told = counted(n, "seed") if n else "seeds differ"
    ax.set_title(f"final accuracy: {told}, {interval}")
    ends = [r["ci_low"] for r in with_ci] + [r["ci_high"] for r in with_ci] + [r["accuracy"] for r in rows]
    low, high = min(ends), max(ends)
    pad = max(0.01, 0.1 * (high - low))
    low, high = max(0.0, low - pad), min(1.0, high + pad)
    ax.set_xlim(low - 0.03 * (high - low), high + 0.03 * (high - low))  # room for a dot at 0 or 1
    ax.grid(axis="x", alpha=0.3)
    drawn = {"final": len(rows)}
    where = CURVE_DATA[task]
    names = {"accuracy": "accuracy, fraction correct", "loss": "cross-entropy loss"}
    final = {"accuracy": "accuracy", "loss": "loss"}
    for ax, metric in zip(axes[1:], curves):
        count, last = 0, 0
        ends = []
        for r in rows:
            by_seed = metric.by_variant.get(r["variant"], {})
            series = [s for s in by_seed.values() if s]
            if not series:
                continue
            length = min(len(s) for s in series)
            steps = np.array([step for step, _ in series[0][:length]])
            values = np.array([[v for _, v in s[:length]] for s in series])
            color = colors[r["variant"]]
            # Markers where a short run logged only a few points (one point draws no line).
            ax.plot(steps, values.mean(axis=0), color=color, label=r["variant"], linewidth=1.6,
                    marker="o" if length < 10 else None, markersize=4)  # fmt: skip
            if len(series) > 1:
                ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2, linewidth=0)
            last = max(last, int(steps[-1]))
            ends.append((r, color))
            count += 1
        for r, color in ends:  # the table's number, where every curve ends
            figures.final_marker(ax, last, r[final[metric.metric]], color)
        ax.set_xlabel(figures.STEP)
        ax.set_ylabel(f"{names.get(metric.metric, metric.metric)}\n({where})")
        ax.set_title(f"{metric.metric} while training")
        ax.grid(alpha=0.3)
        drawn[metric.metric] = count
    handles = [*axes[1].get_legend_handles_labels()[0],
               figures.final_handle(f"final, {FINAL_DATA[task]}: the table's number")]  # fmt: skip
    labels = [h.get_label() for h in handles]
    figures.legend_outside(fig, handles, labels, title="variant (mean over seeds; band: their range)"
                           if max(r["seeds"] for r in rows) > 1 else "variant")  # fmt: skip
    return fig, drawn


def boundary_plot(boundary, targets, path: str, *, title: str) -> None:
    """XOR's decision boundary, Playground style: the network's output over the input
    square with the 0.5 contour and the four points, and one small map per unit of
    the first hidden layer (what each unit "sees")."""
    plt = offscreen_pyplot()
    from matplotlib.colors import LinearSegmentedColormap

    from dlcli import figures
    from dlcli.core import pictures

    cmap = LinearSegmentedColormap.from_list(
        "playground", [pictures.ORANGE / 255, pictures.WHITE / 255, pictures.BLUE / 255]
    )
    units = len(boundary.hidden)
    columns = 2 if units > 4 else (1 if units else 0)
    rows_of_units = -(-units // columns) if units else 0
    fig = plt.figure(figsize=(5.2 + 1.7 * columns, max(4.6, 1.25 * rows_of_units)))
    grid = fig.add_gridspec(max(rows_of_units, 1), 1 + columns, width_ratios=[3.2] + [1] * columns)
    ax = fig.add_subplot(grid[:, 0])
    extent = (boundary.axis[0], boundary.axis[-1], boundary.axis[0], boundary.axis[-1])
    image = ax.imshow(boundary.output, extent=extent, cmap=cmap, vmin=0, vmax=1, interpolation="bilinear")
    ax.contour(boundary.axis, boundary.axis[::-1], boundary.output, levels=[0.5], colors="black", linewidths=1.5)
    for (x1, x2), target in zip(((0, 0), (0, 1), (1, 0), (1, 1)), targets):
        colour = pictures.BLUE / 255 if target else pictures.ORANGE / 255
        ax.scatter([x1], [x2], s=160, c=[colour], edgecolors="black", linewidths=1.5, zorder=3)
        ax.annotate(f"y={int(target)}", (x1, x2), textcoords="offset points", xytext=(0, 11), ha="center", fontsize=9)
    ax.set_xlabel("input x1")
    ax.set_ylabel("input x2")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="hypothesis (probability of 1)")
    for i, unit in enumerate(boundary.hidden):
        sub = fig.add_subplot(grid[i // columns, 1 + i % columns])
        sub.imshow(unit, extent=extent, cmap=cmap, interpolation="bilinear")
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_title(f"hidden1 unit {i + 1}", fontsize=9)
    fig.tight_layout()
    figures.save(fig, path)


def mistakes_plots(mistakes, prefix: str) -> list[str]:
    """PREFIX-confusion.png (counts, rows true, columns predicted) and PREFIX-mistakes.png
    (the most confidently misclassified test digits); returns the two paths."""
    from dlcli import figures

    plt = offscreen_pyplot()
    confusion = f"{prefix}-confusion.png"
    figures.save(confusion_figure(mistakes.matrix), confusion)

    count = len(mistakes.digits)
    columns = min(8, max(count, 1))
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns, 1.75 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, digit, true, guess, sure in zip(axes.ravel(), mistakes.digits, mistakes.true, mistakes.predicted,
                                            mistakes.confidence):  # fmt: skip
        ax.imshow(digit, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"true {true}, said {guess}\n{sure:.0%} sure", fontsize=9)
    fig.suptitle("the most confident mistakes" if count else "no mistakes", fontsize=11)
    fig.tight_layout()
    path = f"{prefix}-mistakes.png"
    figures.save(fig, path)
    return [confusion, path]


def confusion_figure(matrix):
    """counts[true, predicted] as a matplotlib figure: rows the true digit (y axis,
    "true"), columns the prediction (x axis, "predicted"), each count written in its cell."""
    plt = offscreen_pyplot()

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    share = matrix / max(1, matrix.sum(axis=1).max())
    ax.imshow(matrix / matrix.sum(axis=1, keepdims=True).clip(min=1), cmap="Blues", vmin=0, vmax=1)
    for t in range(len(matrix)):
        for p in range(len(matrix)):
            ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=9,
                    color="white" if t == p and share[t, p] > 0.05 else "black")  # fmt: skip
    ax.set_xticks(range(len(matrix)))
    ax.set_yticks(range(len(matrix)))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true\ndigit", rotation=0, ha="right", va="center")
    total, right = int(matrix.sum()), int(matrix.trace())
    ax.set_title(f"confusion matrix: {right} of {total} right ({right / total:.2%})", fontsize=10)
    fig.tight_layout()
    return fig


# -- per-layer diagnostics (dlcli inspect) -------------------------------------------

LAYER_COLUMNS = {  # row key: table header
    "step": "step", "layer": "layer",
    "weight_grad_norm": "grad norm", "weight_norm": "weight norm", "update_ratio": "update ratio",
    "preact_p15": "preact p15", "preact_p50": "preact p50", "preact_p85": "preact p85",
    "act_mean": "act mean", "act_std": "act std", "backprop_std": "backprop std",
    "saturated": "saturated", "dead": "dead",
    "unit_p15": "unit p15", "unit_p50": "unit p50", "unit_p85": "unit p85",
}  # fmt: skip


def layers_table(rows: list[dict], fmt: str = "github", width: int | None = None) -> str:
    """`dlcli inspect`: one row per (step, layer); a tabulate table, or JSON / CSV
    with the raw numbers ("-" and null/empty where a quantity does not apply). With a
    `width` (a terminal's), the table is fitted to it: first the columns that are "-"
    in every row go, then the secondary ones, then the headers take two lines."""
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(LAYER_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")

    headers, body = layer_cells(rows)
    if width is None or fmt not in _multiline_formats():
        return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)
    return fit(_fitted_layer_tables(dict(zip(headers, map(list, zip(*body))))), fmt, width)


# What `dlcli inspect` leaves out of a narrow terminal first (--wide, json and csv keep them).
SECONDARY_LAYER_COLUMNS = (("unit p15", "unit p50", "unit p85"), ("weight norm", "update ratio"),
                           ("preact p15", "preact p85"), ("act mean",))  # fmt: skip


def _fitted_layer_tables(cells: dict):
    """Ever narrower versions of the inspect table ({header: cells}) for `fit`."""
    cells = {h: c for h, c in cells.items() if any(v != "-" for v in c)}
    yield dict(cells)
    for group in SECONDARY_LAYER_COLUMNS:
        for header in group:
            cells.pop(header, None)
        yield dict(cells)
    yield {h.replace(" ", "\n", 1): c for h, c in cells.items()}


def layer_cells(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """`dlcli inspect`'s table as headers and cell texts (the notebook's HTML shows the same)."""

    def cell(key, value):
        if value is None:
            return "-"
        if key in ("saturated", "dead"):
            return f"{value:.1%}"
        return str(value) if key in ("step", "layer") else f"{value:.3g}"

    return list(LAYER_COLUMNS.values()), [[cell(k, row.get(k)) for k in LAYER_COLUMNS] for row in rows]


def depth_profile_plot(rows: list[dict], path: str, *, title: str) -> None:
    """`dlcli inspect --plot`: depth_profile_figure written to `path`."""
    from dlcli import figures

    offscreen_pyplot()
    figures.save(depth_profile_figure(rows, title=title), path)


def depth_profile_figure(rows: list[dict], *, title: str):
    """The depth profile: for each layer (input side left), the weight-gradient norm
    (log scale), the activation std, and the saturated / dead fraction, one colour per
    step in `rows` (the first and the last logged step); each panel's axis names only
    the layers that have its quantity (the output layer has no activation std)."""
    from matplotlib.lines import Line2D

    from dlcli import figures

    steps = sorted({r["step"] for r in rows})
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = figures.new_figure(1, 3, figsize=(max(13, 4 + 1.1 * len(layers)), 4.4))
    colours = figures.variant_colors(f"step {step}" for step in steps)
    styles = {"saturated": ("-", "o"), "dead": (":", "x")}
    panels = [
        (axes[0], ("weight_grad_norm",), "weight-gradient norm", "||dL/dW|| (log scale)", True),
        (axes[1], ("act_std",), "activation std", "std of the layer's activations", False),
        (axes[2], ("saturated", "dead"), "saturated / dead units", "fraction of the layer's units", False),
    ]
    drawn_keys = set()
    for ax, keys, title_, label, log in panels:
        shown = [layer for layer in layers if any(r["layer"] == layer and r.get(k) is not None
                                                  for r in rows for k in keys)]  # fmt: skip
        for step in steps:
            at = {r["layer"]: r for r in rows if r["step"] == step}
            for key in keys:
                values = [at[layer][key] if layer in at and at[layer].get(key) is not None else float("nan")
                          for layer in shown]  # fmt: skip
                if all(v != v for v in values):  # all NaN: the quantity does not apply
                    continue
                drawn_keys.add(key)
                line, marker = styles.get(key, ("-", "o"))
                ax.plot(range(len(shown)), values, linestyle=line, marker=marker, color=colours[f"step {step}"],
                        label=f"step {step}", alpha=0.9)  # fmt: skip
        ax.set_xticks(range(len(shown)), shown, rotation=30, ha="right")
        ax.set_xlabel(figures.LAYER)
        ax.set_ylabel(label)
        ax.set_title(title_)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if not ax.lines:
            ax.text(0.5, 0.5, "does not apply to this activation", ha="center", va="center", transform=ax.transAxes)
    axes[2].set_ylim(-0.02, 1.03)  # a fraction; 0 stays visible above the axis
    handles = [Line2D([], [], color=colours[f"step {step}"], marker="o", label=f"step {step}") for step in steps]
    handles += [Line2D([], [], color="black", linestyle=line, marker=marker, label=f"{key} (right)")
                for key, (line, marker) in styles.items() if key in drawn_keys]  # fmt: skip
    figures.legend_outside(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(title)
    return fig
