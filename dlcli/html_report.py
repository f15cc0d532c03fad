"""A comparison as one self-contained HTML file (`dlcli compare ... --report FILE.html`).

Everything is inside the file: the table with intervals and verdicts, the plots and
the TensorBoard pictures as PNG data URIs, every run's settings, the versions, the
machine, and the command that reproduces it. No scripts, no links, nothing to fetch:
a Content-Security-Policy makes a browser refuse to load anything but the embedded
images, so the file reads the same offline, mailed, or years later.

`render` is pure (standard library only); `collect` gathers the parts from a finished
comparison (its ledger, run folders and TensorBoard event files, which needs
TensorFlow; the plots need matplotlib, optional: without it the report says what to
install and keeps everything else).
"""

from __future__ import annotations

import base64
import html
import json
import os
import platform
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dlcli.wording import counted

PLOT_HINT = "The plots need matplotlib: pip install 'dlcli[plot]'"

# The picture TensorBoard already has for each task: (split, tag, what it shows).
PICTURES = {
    "xor": ("train", "boundary", (
        "decision boundary: the output over the input square (orange 0, white 0.5, blue 1), rings on the four "
        "points in their target's colour")),
    "mnist": ("test", "confusion_matrix", (
        "confusion matrix on the test set: rows are the true digit, columns the prediction")),
}  # fmt: skip

# Only embedded images and the inline style; anything else a browser must not fetch.
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1.5em; color: #1d1d1f; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #d6d6d6; padding: 0.25em 0.6em; text-align: left; vertical-align: top;
         font-variant-numeric: tabular-nums; }
th { background: #f3f4f6; }
tr.best td { font-weight: 600; background: #eef6ee; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; margin: 0.6em 0; }
img { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
.results table { font-size: 0.8em; }
.results td { white-space: nowrap; }
.side { display: flex; flex-wrap: wrap; gap: 0 1.5em; align-items: flex-start; }
.pictures { display: flex; flex-wrap: wrap; gap: 1.2em; }
figure { margin: 0; max-width: 320px; }
figure.wide { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f8fa; padding: 0.6em 0.8em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
"""


@dataclass(frozen=True)
class Picture:
    title: str
    caption: str
    png: bytes


@dataclass
class Report:
    """Everything the HTML file shows, gathered from a finished comparison."""

    title: str
    summary: str
    headers: list[str]  # the results table: report.compare_cells
    body: list[list]
    best: list[bool]  # per body row
    verdict: list[str]  # the lines under the table: report.verdict_lines
    plots: list[Picture]
    plot_note: str | None  # why there are no plots
    pictures: list[Picture]
    picture_about: str  # what every picture shows
    picture_note: str | None
    variants: list[tuple[str, list[tuple[str, str]]]]  # (name, [(setting, value), ...])
    seeds: list[int]
    base: list[tuple[str, str]]  # what every run shares, flattened: ("model.units", "10")
    runs: list[list[str]]  # variant, seed, accuracy, loss, seconds, run folder
    trained_with: list[tuple[str, int]]  # ("dlcli 0.2.0, tensorflow 2.21.0, ...", runs)
    machine: list[tuple[str, str]]
    command: str
    folder: str  # where to run it
    made: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    diagnosis: list = field(default_factory=list)  # dlcli.diagnosis.sections: per variant, its findings


def command_line(argv: list[str]) -> str:
    """The command as given, shell-quoted, with the program called `dlcli` (as the
    console script, `python -m dlcli` and the test runner all name it differently)."""
    return shlex.join(["dlcli", *argv[1:]])


def write(path, the_plan, rows: list[dict], *, command: str, lines: list[str] = ()) -> None:
    """Write the comparison's report to `path` atomically (a crash leaves no half file)."""
    from dlcli.core.runs import atomic_write_text

    atomic_write_text(Path(path), render(collect(the_plan, rows, command=command, lines=lines)))


def collect(the_plan, rows: list[dict], *, command: str, lines: list[str] = ()) -> Report:
    """The report's parts from a finished comparison: `rows` as compare.run returned
    them (in display order), `lines` the text under the table (report.verdict_lines),
    the rest from the ledger, run folders and event files."""
    import importlib.util

    from dlcli import comparison as comparisons
    from dlcli import diagnosis
    from dlcli import report as tables

    headers, body = tables.compare_cells(rows, the_plan.columns)
    plots, plot_note = [], None
    if importlib.util.find_spec("matplotlib") is None:
        plot_note = PLOT_HINT + " (the table and TensorBoard's pictures below need nothing)."
    else:
        from dlcli.paper_plots import plan_colors

        png, _ = tables.comparison_png(rows, comparisons.learning_curves(the_plan), task=the_plan.task,
                                       colors=plan_colors(the_plan))  # fmt: skip
        plots.append(Picture("final accuracy and learning curves", _plot_caption(the_plan), png))
    pictures = _tensorboard_pictures(the_plan)
    picture_note = None if pictures else "The runs' TensorBoard event files hold no pictures."
    missing = [p.config.name for p in the_plan.runs if not (Path(p.config.logdir) / p.config.name).is_dir()]
    if missing:
        named = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        gone = f"The logs of {counted(len(missing), 'run')} ({named}) are gone: "
        plot_note = " ".join(filter(None, [plot_note, gone + "the curves and pictures leave them out."]))
    runs, trained_with = _runs(the_plan)
    seeds = len(the_plan.seeds)
    return Report(
        title=f"dlcli {the_plan.folder}",
        summary=f"{the_plan.task}: {counted(len(the_plan.variants), 'variant')} x {counted(seeds, 'seed')} = "
        f"{len(the_plan.variants) * seeds} runs",
        headers=headers,
        body=body,
        best=[comparisons.starred(r) for r in rows],
        verdict=list(lines),
        plots=plots,
        plot_note=plot_note,
        pictures=pictures,
        picture_about=PICTURES[the_plan.task][2],
        picture_note=picture_note,
        variants=[(v.name, [(n, comparisons.format_value(x)) for n, x in v.settings]) for v in the_plan.variants],
        seeds=list(the_plan.seeds),
        base=_shared_settings(the_plan, rows),
        runs=runs,
        trained_with=trained_with,
        machine=_machine(),
        command=command,
        folder=os.getcwd(),
        diagnosis=diagnosis.sections(diagnosis.of_plan(the_plan)),
    )


def _plot_caption(the_plan) -> str:
    return plot_caption(the_plan.task, len(the_plan.seeds))


def plot_caption(task: str, seeds: int) -> str:
    """What compare's figure shows, for the report and the notebook display."""
    where = ("the 4 XOR points (its training set), each point the mean over a logging window" if task == "xor"
             else "the first 1000 test examples")  # fmt: skip
    final = "the 4 points" if task == "xor" else "the whole test set"
    interval = " with its 95% interval (as in the table)" if seeds > 1 else " (one seed: no interval)"
    return (
        f"Left: each variant's final accuracy{interval}. Middle and right: accuracy and loss while training, "
        f"on {where}; the line is the mean over the seeds, the band their range. Each curve ends in a diamond "
        f"at the table's number: the final evaluation on {final}."
    )


def _tensorboard_pictures(the_plan) -> list[Picture]:
    """The last step's picture (XOR boundary, MNIST confusion matrix) of one seed per
    variant: the first seed whose event files have it."""
    from dlcli.core.summaries import read_images

    split, tag, _ = PICTURES[the_plan.task]
    found: dict[str, Picture] = {}
    for planned in the_plan.runs:
        name = planned.variant.name
        folder = Path(planned.config.logdir) / planned.config.name
        if name in found:
            continue
        series = read_images(folder, split).get(tag)
        if series:
            step, png = series[-1]
            found[name] = Picture(name, f"seed {planned.seed}, step {step}", png)
    return list(found.values())


def _runs(the_plan) -> tuple[list[list[str]], list[tuple[str, int]]]:
    """Every run's result (from the ledger, as the table used it) and, from its
    run.json, the versions that trained it."""
    from dlcli import comparison as comparisons

    ledger, _ = comparisons.ledger_contents(the_plan.ledger_path, warn=False)  # warned when compare read it
    runs, versions = [], Counter()
    for planned in the_plan.runs:
        entry = ledger.get(comparisons.ledger_key(planned.config), {})
        record_path = Path(planned.config.checkpoint_dir) / planned.config.name / "run.json"
        try:
            trained = json.loads(record_path.read_text()).get("versions") or {}
        except (OSError, ValueError):
            trained = {}
        versions[", ".join(f"{k} {v}" for k, v in trained.items()) or "not recorded (no run.json)"] += 1
        runs.append([planned.variant.name, str(planned.seed), _number(entry, "accuracy", ".4f"),
                     _number(entry, "loss", ".4f"), _number(entry, "seconds", ".1f"), planned.config.name])  # fmt: skip
    return runs, versions.most_common()


def _number(entry: dict, key: str, spec: str) -> str:
    return "-" if entry.get(key) is None else format(entry[key], spec)


def _machine() -> list[tuple[str, str]]:
    """Where this report was made (and, unless the runs went to --jobs workers on other
    devices or a cluster, trained)."""
    from dlcli.core.runs import versions
    from dlcli.core.tf_setup import tensorflow

    gpus = [d.name for d in tensorflow().config.list_physical_devices("GPU")]
    made_with = versions()
    return [
        *((name, str(value)) for name, value in made_with.items()),
        ("platform", platform.platform()),
        ("machine", platform.machine() or "unknown"),
        ("CPUs", str(os.cpu_count() or "unknown")),
        ("GPUs", ", ".join(gpus) or "none"),
    ]


def _shared_settings(the_plan, rows: list[dict]) -> list[tuple[str, str]]:
    """Every run's configuration without what differs between runs (the settings
    whose values differ between the variants, the seed, the folder name): the first
    run's, so per-task details the plan fills in (learning-curve points) are shown as
    the runs had them. A setting the plan names but every variant has at one value is
    shared, and shown with it."""
    from dlcli import report
    from dlcli.comparison import SETTINGS

    differ, _ = report.split_columns(rows, the_plan.columns)
    varied = {f"{SETTINGS[name].part}.{SETTINGS[name].field}" for name in differ}
    config = the_plan.runs[0].config.to_dict()
    del config["name"]
    shared = []
    for key, value in _flatten(config):
        if key in varied:
            value = "per variant (above)"
        elif key == "train.seed":
            value = "per run (the seeds above)"
        shared.append((key, value))
    return shared


def _flatten(value, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), "-" if value is None else json.dumps(value) if isinstance(value, bool) else str(value))]


# -- rendering (pure: strings in, one HTML string out) --------------------------------


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(headers: list[str], body: list[list], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    lines = []
    for i, row in enumerate(body):
        cls = f' class="{_e(classes[i])}"' if classes and classes[i] else ""
        cells = "".join(f"<td>{_e(c)}</td>" for c in row)
        lines.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def _figure(picture: Picture, wide: bool = False) -> str:
    return (
        f'<figure{" class=wide" if wide else ""}><img src="{_data_uri(picture.png)}" alt="{_e(picture.title)}">'
        f"<figcaption><strong>{_e(picture.title)}</strong> {_e(picture.caption)}</figcaption></figure>"
    )


def _side_by_side(settings: list[tuple[str, str]]) -> str:
    """model.*, train.*, data.* and the rest as small tables next to each other."""
    groups: dict[str, list[list[str]]] = {}
    for key, value in settings:
        part, dot, name = key.partition(".")
        groups.setdefault(part if dot else "", []).append([name if dot else key, value])
    tables = [_table([part or "run", ""], rows) for part, rows in groups.items()]
    return '<div class="side">' + "".join(tables) + "</div>"


def _settings(settings: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name}={value}" for name, value in settings) or "(the shared run)"


READING = "reading"  # the id of the section that says how to read the table


def legend(report: "Report") -> str:
    """What the marks of this table mean, only those it has: the highlighted row when
    one is clearly best, an interval end cut at its bound when one is; and a link to
    the section on reading the table."""
    parts = []
    if any(report.best):
        parts.append("The highlighted row is <em>clearly best</em>: every other variant is clearly behind it.")
    if any("*" in str(cell) for row in report.body for cell in row):
        parts.append("An interval end marked * was cut at the bound of what it can be.")
    parts.append(f'<a href="#{READING}">How to read the table</a>.')
    return "<p>" + " ".join(parts) + "</p>"


READING_TEXT = (
    "<p>Every variant ran with the same seeds. <strong>accuracy</strong>: the mean over its seeds ± their standard "
    "deviation, measured at the end of training on the whole test set (xor: the 4 points), the number the learning "
    "curves end on. <strong>95% CI of the mean</strong>: the Student-t interval of that mean, cut at 0 and 1. "
    "<strong>vs best</strong>: every row but the one with the highest mean shows its difference to that one, "
    "paired over the seeds they share, with an interval at the verdicts' adjusted level. <strong>verdict</strong>: "
    "whether the difference is clear (Holm-adjusted over every pair; the line under the table says at which "
    "level). The other columns say what they aggregate over a variant's seeds. The whole story is in "
    "docs/statistics.md of dlcli's source.</p>"
)
RERUN = (
    "<p>Run again where its logs are, the same command trains nothing: every finished run comes from the "
    "comparison's ledger (results.jsonl under the logdir) and its event files, and the report is written anew. "
    "Elsewhere it trains every run again, with the same seeds and settings.</p>"
)


DIAGNOSIS_LEAD = (
    "<p>Each variant's training problems, read from its runs' records (the per-layer diagnostics and the "
    "losses they logged): the layers and steps where each shows, the run's own numbers, and the lecture's fix "
    "as a command. Thresholds and their reasons: docs/diagnosis.md.</p>"
)


def diagnosis_html(sections: list) -> str:
    """Per variant: its problems in a few words, then each run's findings with their
    evidence and fix (dlcli.diagnosis.sections); the report's and the notebook's."""
    from dlcli.diagnosis import SECTION_HEADERS

    parts = [DIAGNOSIS_LEAD]
    for variant, label, body in sections:
        parts.append(f"<p><strong>{_e(variant)}</strong>: {_e(label)}</p>")
        if body:
            parts.append(_table(SECTION_HEADERS, body))
    return "\n".join(parts)


def render(report: Report) -> str:
    """The whole HTML document; every string from the comparison is escaped."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(POLICY)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f'<p class="lead">{_e(report.summary)}; report made {_e(report.made)}</p>',
        "<h2>Results</h2>",
        '<div class="results">',
        _table(report.headers, report.body, ["best" if b else "" for b in report.best]),
        "</div>",
        legend(report),
    ]
    parts += [f'<p class="note">{_e(line)}</p>' for line in report.verdict]
    if report.diagnosis:
        parts += ["<h2>Diagnosis</h2>", diagnosis_html(report.diagnosis)]
    parts.append("<h2>Plots</h2>")
    parts += [_figure(p, wide=True) for p in report.plots]
    if report.plot_note:
        parts.append(f'<p class="note">{_e(report.plot_note)}</p>')
    parts.append("<h2>Pictures from TensorBoard</h2>")
    if report.pictures:
        parts.append(f"<p>The last step's {_e(report.picture_about)}; one seed per variant.</p>")
        parts.append('<div class="pictures">' + "".join(_figure(p) for p in report.pictures) + "</div>")
    if report.picture_note:
        parts.append(f'<p class="note">{_e(report.picture_note)}</p>')
    parts += [
        "<h2>Reproduce</h2>",
        f"<p>In <code>{_e(report.folder)}</code>:</p>",
        f"<pre><code>{_e(report.command)}</code></pre>",
        RERUN,
        f'<h2 id="{READING}">Reading the table</h2>',
        READING_TEXT,
        "<h2>Settings</h2>",
        f"<p>Seeds: {_e(', '.join(map(str, report.seeds)))}. Each variant's settings replace the shared run's.</p>",
        _table(["variant", "settings"], [[n, _settings(s)] for n, s in report.variants]),
        "<p>What every run shares:</p>",
        _side_by_side(report.base),
        "<h2>Runs</h2>",
        _table(["variant", "seed", "accuracy", "loss", "seconds", "run"], report.runs),
        "<h2>Versions and machine</h2>",
        "<p>The runs were trained with:</p>",
        _table(["versions", "runs"], [[v, str(n)] for v, n in report.trained_with]),
        "<p>This report was made with and on:</p>",
        _table(["", "value"], [list(item) for item in report.machine]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
