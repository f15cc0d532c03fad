"""Turning results into text: truth tables, run summaries (stdout is for results)."""

from __future__ import annotations

import json
import math

from tabulate import tabulate


def truth_table(rows: list[dict], *, tablefmt: str = "github") -> str:
    headers = list(rows[0])
    body = [[_cell(row[h]) for h in headers] for row in rows]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def run_summary(result) -> str:
    """The lines printed after training: result, speed, and where everything went."""
    evaluated = "accuracy on the 4 XOR points" if result.task == "xor" else "test accuracy"
    lines = [
        f"{evaluated} {result.accuracy:.4f}   loss {result.loss:.4f}   "
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


def compare_table(rows: list[dict], fmt: str = "github", best: int | None = None) -> str:
    """compare's results: a tabulate table, or JSON / CSV with every column."""
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
    headers = ["", "variant", "activation", "init", "hidden", "dropout", "batchnorm",
               "accuracy", "95% CI", "loss", "seconds", "params", "grad ratio W1/WN", "seeds"]  # fmt: skip
    body = []
    for i, r in enumerate(rows):
        accuracy = f"{r['accuracy']:.4f}"
        if r["seeds"] > 1:
            accuracy += f" ± {r['accuracy_std']:.4f}"
        interval = "-" if r["ci_low"] is None else f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
        ratio = "-" if r["grad_ratio"] is None else f"{r['grad_ratio']:.3g}"
        body.append(
            ["*" if i == best else "", r["variant"], r["activation"], r["init"], r["hidden"],
             f"{r['dropout']:g}", "yes" if r["batchnorm"] else "no", accuracy, interval,
             f"{r['loss']:.4f}", f"{r['seconds']:.1f}", f"{r['params']:,}", ratio, r["seeds"]]
        )  # fmt: skip
    from tabulate import tabulate

    return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)


def accuracy_plot(rows: list[dict], path: str) -> None:
    """Mean test accuracy per variant with 95% interval (or std) error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["variant"] for r in rows]
    means = [r["accuracy"] for r in rows]
    errors = [(r["ci_high"] - r["accuracy"]) if r["ci_high"] is not None else r["accuracy_std"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(rows)), 4))
    ax.bar(names, means, yerr=errors, capsize=4, color="#4c72b0")
    low = min(m - e for m, e in zip(means, errors))
    ax.set_ylim(max(0.0, low - 0.02), min(1.0, max(m + e for m, e in zip(means, errors)) + 0.01))
    ax.set_ylabel("test accuracy")
    ax.set_title(f"dlcli compare ({rows[0]['seeds']} seed{'s' if rows[0]['seeds'] > 1 else ''} each)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
