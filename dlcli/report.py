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
