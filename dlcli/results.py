"""What the Python API returns (dlcli.api): a run, a comparison, a run's per-layer
diagnostics, as objects with fields, not text.

Each shows itself in Jupyter: a cell that ends with one displays `_repr_html_`, its
table and its pictures inline as PNG data URIs (drawn with dlcli.html_report's helpers
and dlcli.core.pictures, the same pictures TensorBoard and `--report` show), while
`repr` stays one line. Tables are the command line's (dlcli.report); pandas and
matplotlib are optional: `.to_pandas()` and `.plot()` say which pip install they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlcli import html_report
from dlcli.errors import ConfigError
from dlcli.wording import counted

PANDAS_HINT = "to_pandas() needs pandas: pip install pandas"
PLOT_HINT = "plot() needs matplotlib: pip install 'dlcli[plot]' (or pip install matplotlib)"

# The pictures a run result holds and what each shows (captions in the notebook).
CAPTIONS = {
    "boundary": "decision boundary: the output over the input square (orange 0, white 0.5, blue 1), the 0.5 "
    "contour in black, rings on the four XOR points in their target's colour",
    "hidden1_units": "what each unit of the first hidden layer sees (each scaled to its own range)",
    "confusion_matrix": "confusion matrix on the test set: rows are the true digit, columns the prediction",
    "mistakes": "the wrong predictions the model was surest of, captioned true>predicted",
}
XOR_POINTS = ((0, 0), (0, 1), (1, 0), (1, 1))  # the order core.pictures rings them in


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError(PANDAS_HINT) from None
    return pandas


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(PLOT_HINT) from None
    return plt


def _png_figure(title: str, caption: str, image) -> str:
    from dlcli.core.pictures import png

    return html_report._figure(html_report.Picture(title, caption, png(image)))


# -- one run -------------------------------------------------------------------------------


@dataclass(repr=False)
class RunResult:
    """A finished xor or mnist run (dlcli.xor, dlcli.mnist, dlcli.resume).

    `accuracy`/`loss`: the final evaluation (the 4 XOR points, or the test set).
    `checkpoint_dir`/`logdir`: the run's folders (`dlcli.resume(result)` continues it).
    `truth_table` (xor): rows {x1, x2, target, hypothesis, prediction}.
    `confusion_matrix` (mnist): counts[true digit, predicted digit].
    `pictures`: {name: RGB uint8 array}, the pictures TensorBoard shows: xor "boundary"
    (and "hidden1_units"), mnist "confusion_matrix" and "mistakes".
    """

    run: str
    task: str
    accuracy: float
    loss: float
    epochs: int
    steps: int
    seconds: float  # training time of this call (0 steps: already finished)
    trained_steps: int
    params: int
    grad_ratio: float  # |dL/dW1| / |dL/dWN| at the end (vanishing gradients: small)
    checkpoint_dir: Path
    logdir: Path
    truth_table: list = field(default_factory=list)
    confusion_matrix: object = None
    pictures: dict = field(default_factory=dict)
    diagnostics: dict | None = None  # per-layer diagnostics at the first and last logged step
    summary_record: dict = field(default_factory=dict)  # what `--json` prints

    @classmethod
    def of(cls, result) -> RunResult:
        """From dlcli.core.session.Result."""
        from dlcli.core import pictures

        images, matrix = {}, None
        if result.boundary is not None:
            targets = {(r["x1"], r["x2"]): r["target"] for r in result.truth_table}
            import numpy as np

            images["boundary"] = pictures.boundary_image(result.boundary, np.array([targets[p] for p in XOR_POINTS]))
            units = pictures.units_image(result.boundary)
            if units is not None:
                images["hidden1_units"] = units
        if result.mistakes is not None:
            matrix = result.mistakes.matrix
            images.update(result.mistakes.images)
        return cls(
            run=result.run, task=result.task, accuracy=float(result.accuracy), loss=float(result.loss),
            epochs=result.epochs, steps=result.steps, seconds=result.train_seconds,
            trained_steps=result.trained_steps, params=result.params, grad_ratio=float(result.grad_ratio),
            checkpoint_dir=Path(result.checkpoint_dir).resolve(), logdir=Path(result.logdir).resolve(),
            truth_table=list(result.truth_table), confusion_matrix=matrix, pictures=images,
            diagnostics=result.diagnostics, summary_record=result.summary(),
        )  # fmt: skip

    @property
    def evaluated_on(self) -> str:
        return "the 4 XOR points" if self.task == "xor" else "the test set"

    def summary(self) -> dict:
        """The object `dlcli xor/mnist/resume --json` prints."""
        return dict(self.summary_record)

    def __repr__(self) -> str:
        return (f"<dlcli {self.task} run {self.run}: accuracy {self.accuracy:.4f}, loss {self.loss:.4f}, "
                f"epoch {self.epochs}, step {self.steps}>")  # fmt: skip

    def _repr_html_(self) -> str:
        e = html_report._e
        trained = (f"trained {self.trained_steps} steps in {self.seconds:.2f} s" if self.trained_steps
                   else "already finished: nothing trained")  # fmt: skip
        headline = (f"<p><strong>{e(self.task)} run {e(self.run)}</strong>: accuracy {self.accuracy:.4f} on "
                    f"{e(self.evaluated_on)}, loss {self.loss:.4f} (epoch {self.epochs}, step {self.steps}; "
                    f"{e(trained)})</p>")  # fmt: skip
        parts = [headline]
        if self.truth_table:
            headers = list(self.truth_table[0])
            body = [[f"{row[h]:.4f}" if isinstance(row[h], float) else row[h] for h in headers]
                    for row in self.truth_table]  # fmt: skip
            parts.append(html_report._table(headers, body))
        parts.append('<div style="display:flex;flex-wrap:wrap;gap:1em">')
        parts += [_png_figure(name, CAPTIONS.get(name, ""), image) for name, image in self.pictures.items()]
        parts.append("</div>")
        parts.append(f"<p>checkpoints: <code>{e(self.checkpoint_dir)}</code>; "
                     f"TensorBoard: <code>{e(self.logdir)}</code></p>")  # fmt: skip
        return "\n".join(parts)


# -- a comparison ----------------------------------------------------------------------------


class ComparisonResult:
    """A comparison (dlcli.compare): `rows`, one dict per variant as `dlcli compare
    --format json` prints them (accuracy, accuracy_std, ci_low/ci_high, diff_to_best
    and its paired interval, loss, seconds, params, grad_ratio, seeds, best, one key per
    varied setting; xor: solved; `diagnosis`, the variant's problems in a few words);
    `diagnoses`, {variant: its runs' dlcli.diagnosis.Diagnosis, with their findings};
    `table(fmt)`, `to_pandas()`, `plot()`. A dry run has no rows: `planned` lists its
    runs and what running it would do."""

    def __init__(self, comparison, sort: str = "order"):
        from dlcli.comparison import sort_rows

        self.comparison = comparison
        self.plan = comparison.plan
        self.rows = None if comparison.rows is None else [dict(r) for r in sort_rows(comparison.rows, sort)]
        self.diagnoses = comparison.diagnoses
        self.planned = [{"variant": run.variant.name, "seed": run.seed, "would": how.value, "run": run.config.name}
                        for run, how in comparison.statuses]  # fmt: skip

    @property
    def task(self) -> str:
        return self.plan.task

    @property
    def folder(self) -> Path:
        """Where its runs' logs are: <logdir>/compare/<comparison>/."""
        return (Path(self.plan.base.logdir) / self.plan.folder).resolve()

    @property
    def columns(self) -> tuple[str, ...]:
        """The settings its variants differ in."""
        return self.plan.columns

    @property
    def best(self) -> dict | None:
        return next((r for r in self.rows or () if r["best"]), None)

    @property
    def verdict(self) -> str | None:
        """The lines the command prints under its table: what the verdicts were adjusted
        for (or, with one seed, that there are none), and why --seeds auto stopped."""
        from dlcli import report

        if self.rows is None:
            return None
        shared = report.shared_line(self.rows, self.columns)
        lines = ([shared] if shared else []) + report.verdict_lines(self.comparison.decision, stop=self.comparison.stop)
        return "\n".join(lines) or None

    def table(self, fmt: str = "github", *, width: int | None = None) -> str:
        """The command's table: any tabulate format, json or csv; every column, or the
        table fitted to `width` characters as a terminal of that width gets it."""
        from dlcli import report

        if fmt not in report.table_formats():
            raise ConfigError(f"unknown format {fmt!r}; choose one of: {', '.join(report.table_formats())}")
        if self.rows is None:
            return report.plan_table([(run, how.value) for run, how in self.comparison.statuses], fmt)
        return report.compare_table(self.rows, fmt, self.columns, width=width)

    def to_pandas(self):
        """The rows as a pandas DataFrame, one row per variant (needs pandas)."""
        pandas = _pandas()
        return pandas.DataFrame(self.rows if self.rows is not None else self.planned)

    def plot(self):
        """Final accuracy with intervals and the learning curves (the command's --plot)
        as a matplotlib Figure (needs matplotlib)."""
        _pyplot()
        if self.rows is None:
            raise ConfigError("a dry run has no results to plot; run the comparison without dry_run")
        from dlcli import report
        from dlcli.comparison import learning_curves

        from dlcli.paper_plots import plan_colors

        fig, _ = report.comparison_figure(self.rows, learning_curves(self.plan), task=self.task,
                                          colors=plan_colors(self.plan))  # fmt: skip
        _pyplot().close(fig)  # shown once, as the cell's value, not again by pyplot
        return fig

    def __repr__(self) -> str:
        size = f"{counted(len(self.plan.variants), 'variant')} x {counted(len(self.plan.seeds), 'seed')}"
        if self.rows is None:
            return f"<dlcli comparison {self.plan.folder}: {size}, planned (dry run)>"
        best = self.best
        return f"<dlcli comparison {self.plan.folder}: {size}, best {best['variant']} {best['accuracy']:.4f}>"

    def _repr_html_(self) -> str:
        import importlib.util

        from dlcli import report

        e = html_report._e
        size = f"{counted(len(self.plan.variants), 'variant')} x {counted(len(self.plan.seeds), 'seed')}"
        parts = [f"<p><strong>dlcli {e(self.plan.folder)}</strong>: {e(self.task)}, {e(size)}</p>"]
        if self.rows is None:
            headers = ["variant", "seed", "would", "run"]
            parts.append(html_report._table(headers, [[p[h] for h in headers] for p in self.planned]))
            return "\n".join(parts)
        headers, body = report.compare_cells(self.rows, self.columns)
        parts.append(html_report._table(headers, body))
        if self.verdict:
            parts.append(f"<p><em>note: {e(self.verdict)}</em></p>")
        if self.diagnoses:
            from dlcli import diagnosis

            sections = diagnosis.sections(self.diagnoses)
            parts.append("<p><strong>diagnosis</strong></p>" + html_report.diagnosis_html(sections))
        if importlib.util.find_spec("matplotlib") is not None:
            png = report.figure_png(self.plot())
            caption = html_report.plot_caption(self.task, len(self.plan.seeds))
            parts.append(html_report._figure(html_report.Picture("accuracy and learning curves", caption, png),
                                             wide=True))  # fmt: skip
        pictures = html_report._tensorboard_pictures(self.plan)
        if pictures:
            parts.append(f"<p>The last step's {e(html_report.PICTURES[self.task][2])}; one seed per variant.</p>")
            parts.append('<div style="display:flex;flex-wrap:wrap;gap:1em">' +
                         "".join(html_report._figure(p) for p in pictures) + "</div>")  # fmt: skip
        return "\n".join(parts)


# -- a run's per-layer diagnostics ------------------------------------------------------------------


class InspectionResult:
    """`dlcli inspect RUN` as an object: `rows`, one dict per (step, layer) with the
    per-layer quantities (None where one does not apply); `table(fmt)`, `to_pandas()`."""

    def __init__(self, inspection, rows: list[dict]):
        self.run = inspection.run
        self.logdir = Path(inspection.logdir)
        self.steps = sorted({r["step"] for r in rows})
        self.rows = rows

    def table(self, fmt: str = "github") -> str:
        from dlcli import report

        if fmt not in report.table_formats():
            raise ConfigError(f"unknown format {fmt!r}; choose one of: {', '.join(report.table_formats())}")
        return report.layers_table(self.rows, fmt)

    def to_pandas(self):
        return _pandas().DataFrame(self.rows)

    def __repr__(self) -> str:
        layers = len({r["layer"] for r in self.rows})
        steps = " and ".join(map(str, self.steps))
        return f"<dlcli inspection of {self.run}: {counted(layers, 'layer')} at step {steps}>"

    def _repr_html_(self) -> str:
        from dlcli import report

        headers, body = report.layer_cells(self.rows)
        return (f"<p><strong>per-layer diagnostics of {html_report._e(self.run)}</strong></p>"
                + html_report._table(headers, body))  # fmt: skip


# -- a run's diagnosis ------------------------------------------------------------------------------


class DiagnosisResult:
    """`dlcli diagnose RUN` as an object: `diagnoses`, one dlcli.diagnosis.Diagnosis per
    run (its `findings`, each with problem, layers, steps, evidence, fix and command);
    `healthy`; `to_dict()` is `--json`'s output; `str()` the command's text."""

    def __init__(self, diagnoses: list, *, comparison: bool = False):
        self.diagnoses = diagnoses
        self.comparison = comparison

    @property
    def healthy(self) -> bool:
        return all(d.healthy for d in self.diagnoses)

    @property
    def findings(self) -> list:
        return [f for d in self.diagnoses for f in d.findings]

    def to_dict(self):
        from dlcli import diagnosis

        return diagnosis.to_json(self.diagnoses, comparison=self.comparison)

    def __str__(self) -> str:
        from dlcli import diagnosis

        return diagnosis.text(self.diagnoses, comparison=self.comparison)

    def __repr__(self) -> str:
        problems = sorted({f.problem for f in self.findings})
        what = ", ".join(problems) if problems else "healthy"
        if not self.comparison:
            return f"<dlcli diagnosis of {self.diagnoses[0].run}: {what}>"
        return f"<dlcli diagnosis of {counted(len(self.diagnoses), 'run')}: {what}>"

    def _repr_html_(self) -> str:
        headers = ["run", "problem", "layers", "steps", "evidence", "fix"]
        body = []
        for d in self.diagnoses:
            if d.healthy:
                body.append([d.run, "healthy", "", "", "", ""])
            for f in d.findings:
                steps = f"{f.steps[0]}-{f.steps[-1]}" if len(f.steps) > 1 else "".join(map(str, f.steps))
                body.append([d.run, f.problem, ", ".join(f.layers), steps, f.evidence, f"{f.fix}: {f.command}"])
        return "<p><strong>diagnosis</strong></p>" + html_report._table(headers, body)
