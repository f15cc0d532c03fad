"""`dlcli diagnose RUN`: name a run's training problem, show its evidence, give the fix.

A diagnosis reads a run's records only: its run.json (config, status, final result)
and the scalar series its event files hold (the train loss and accuracy of every
logging window, the test evaluations, and the per-layer diagnostics of
core.diagnostics at step 0 and every logging step). The event files are read here
with TensorBoard's protobuf classes and a few lines of TFRecord framing, so diagnosing
never imports TensorFlow and never trains. The same records give the same diagnosis,
whenever it is asked and however often the run was resumed (a resumed run records the
same numbers as one trained straight).

Each rule is a threshold on recorded quantities; `RULES` lists them with the reason
for each value (docs/diagnosis.md, and benchmarks/diagnosis.py measures them against
known answers). Standard library and NumPy only.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

from dlcli import settings
from dlcli.errors import RunError
from dlcli.wording import counted

CLASSES = {"xor": 2, "mnist": 10}  # xor: one logistic output, whose chance loss is ln 2 too

# -- the thresholds, each with its reason (docs/diagnosis.md has the measurements) -------
DIVERGED_LOSS = 2.0  # x ln k: an untrained net with a small init starts at ~ln k (uniform
#   guesses); a loss twice that at the end means training made the predictions
#   confidently wrong
DIVERGED_PEAK = 10.0  # x ln k: any window's loss above this (23 for MNIST) is a blow-up,
#   even if the loss comes back down (Adam at lr 10 peaks at ~1e7, then recovers to
#   chance with dead units; Adam at lr 0.03 peaks at 5.6 in its first window and trains)
EXPLODE_RATIO = 70.0  # the vanishing ratio below (dL/da's std, first / last hidden layer)
#   above this after the start: gradients grow toward the input (AUTOTRAINER's beta_3,
#   Zhang et al. 2021, on its W1/WN ratio; healthy nets: 0.2-7)
EXPLODE_GRAD = 1e3  # any layer's ||dL/dW|| above this at a logged step after the start: the
#   loss surface is so steep one step of any usual learning rate jumps far (healthy
#   MNIST runs stay below ~10, see the benchmark)
VANISH_RATIO = 0.01  # std of dL/da at the first hidden layer / at the last (Glorot &
#   Bengio's back-propagated gradients; W1/WN's gradient norms with one hidden layer)
#   below this: under 1% of the gradient reaches the first layer (healthy nets: 0.2-7;
#   10 sigmoid layers: ~1e-5; He et al.'s 30-layer Xavier ReLU net at its init: ~3e-5)
VANISH_SHARE = 0.5  # ...at step 0 (the init's doing), or at this share of the logged steps
DEAD_SHARE = 0.75  # a zero-region (ReLU) layer whose share of dead units (0 on every probe
#   example) is at least this at the last logged step: three quarters of its units no
#   longer learn (healthy ReLU nets: under 10% at 2 layers, at most 36% in a layer of a
#   30-layer He net; 30-layer Xavier nets up to 53%; Adam at lr 0.03: 88-91%)
SATURATED_SHARE = 0.5  # a saturating (sigmoid-like) layer whose share of entries with a
#   slope under 10% of the maximum is at least this at the last logged step: most of
#   its gradient is cut (healthy sigmoid nets with Xavier init: under 10%)
CHANCE_LOSS = 0.05  # |L - ln k| <= this x ln k, and...
CHANCE_ACCURACY = 1.5  # ...accuracy below this / k: the net predicts the class prior
#   (MNIST's commonest class is 11.35% of the digits; 1.5/k = 15%)
SLOW_LOSS = 0.5  # x ln k: the last train loss still above half of chance's, so less than
#   half of what a guess loses was learnt (the default MNIST run is at ~0.15 ln k after
#   one epoch)
OSCILLATE_RISE = 0.1  # a window whose mean loss is 10% above the previous window's...
OSCILLATE_SHARE = 0.2  # ...for at least this share of the windows (at least 4): the loss
#   keeps jumping back up (healthy runs: at most 1 window in 12 rises by 10%; SGD at
#   lr 1: 3 in 12, Adam at lr 0.01 with batches of 32: 5 in 24)
OVERFIT_GAP = (0.1, 0.1)  # train accuracy minus test accuracy at least this (train <= 0.9,
#   train > 0.9). AUTOTRAINER's `test_not_well` takes (0.1, 0.07); 0.07 found a healthy
#   batch-norm net over-fitted (train windows 0.918 vs a test evaluation 0.848 that
#   lags, as BN's moving averages do); 300 training examples give gaps of 0.16-0.17


@dataclass
class Finding:
    """One problem: what, where, when, the numbers that show it and the fix."""

    problem: str  # one of PROBLEMS
    layers: list[str]
    steps: list[int]
    evidence: str  # one sentence with the run's own numbers
    fix: str  # the lecture's fix in words
    command: str  # the fix as a runnable command
    fatal: bool = False  # the run cannot recover: compare --prune may stop it
    fixes: dict = field(default_factory=dict)  # {fix name: {setting: value}} for --try-fixes

    def to_dict(self) -> dict:
        return {"problem": self.problem, "layers": self.layers, "steps": self.steps, "evidence": self.evidence,
                "fix": self.fix, "command": self.command, "fatal": self.fatal, "fixes": self.fixes}  # fmt: skip


PROBLEMS = ("diverged", "exploding gradient", "vanishing gradient", "dead units", "saturated units",
            "stuck at chance", "slow convergence", "oscillating loss", "over-fitting")  # fmt: skip


@dataclass
class Diagnosis:
    run: str
    folder: str
    task: str
    findings: list[Finding]
    steps: int  # the last logged step

    @property
    def healthy(self) -> bool:
        return not self.findings

    @property
    def fatal(self) -> bool:
        return any(f.fatal for f in self.findings)

    def to_dict(self) -> dict:
        return {"run": self.run, "folder": self.folder, "task": self.task, "healthy": self.healthy,
                "steps": self.steps, "findings": [f.to_dict() for f in self.findings]}  # fmt: skip

    def text(self) -> str:
        if self.healthy:
            return f"{self.run}: healthy (no problem found in {self.steps} steps of records)"
        lines = [f"{self.run}: {counted(len(self.findings), 'problem')}"]
        for f in self.findings:
            where = f" in {', '.join(f.layers)}" if f.layers else ""
            when = f" at step {_span(f.steps)}" if f.steps else ""
            lines.append(f"- {f.problem}{where}{when}: {f.evidence}")
            lines.append(f"  fix: {f.fix}: {f.command}")
        return "\n".join(lines)


def _span(steps: list[int]) -> str:
    return str(steps[0]) if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"


# -- reading the records ------------------------------------------------------------------


def read_events(folder: Path) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of the scalar events in `folder`'s event files, oldest file
    first, so a step written again after a resume keeps its latest value. A torn last
    record (a run killed while writing) ends its file's reading."""
    from tensorboard.compat.proto import event_pb2

    series: dict[str, dict[int, float]] = {}
    if not folder.is_dir():
        return series
    for path in sorted(p for p in folder.iterdir() if ".tfevents." in p.name and p.is_file()):
        data = path.read_bytes()
        at = 0
        while at + 12 <= len(data):
            (length,) = struct.unpack_from("<Q", data, at)
            end = at + 12 + length + 4
            if end > len(data):
                break
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at = end
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor") and not value.tensor.tensor_shape.dim:
                    number = _scalar(value.tensor)
                    if number is None:
                        continue
                else:
                    continue
                series.setdefault(value.tag, {})[event.step] = number
    return series


_SCALAR_TYPES = {1: ("float_val", "<f"), 2: ("double_val", "<d"), 3: ("int_val", "<i"), 9: ("int64_val", "<q")}


def _scalar(tensor) -> float | None:
    """A scalar TensorProto's number (DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64), as
    tensor_util.make_ndarray reads it, without importing its TensorFlow stub (~0.3 s)."""
    kind = _SCALAR_TYPES.get(tensor.dtype)
    if kind is None:
        return None
    field_name, layout = kind
    if tensor.tensor_content:
        return float(struct.unpack(layout, tensor.tensor_content[: struct.calcsize(layout)])[0])
    values = getattr(tensor, field_name)
    return float(values[0]) if values else 0.0


@dataclass
class Records:
    """What a diagnosis reads: run.json's record and the train/test scalar series."""

    name: str
    folder: Path
    record: dict
    train: dict  # {tag without scope: {step: value}}
    test: dict

    @property
    def config(self) -> dict:
        return self.record["config"]

    @property
    def task(self) -> str:
        return self.record.get("task") or self.config.get("task", "mnist")

    def series(self, tag: str, split: str = "train") -> list[tuple[int, float]]:
        return sorted((self.train if split == "train" else self.test).get(tag, {}).items())

    def layer_series(self, layer: str, quantity: str) -> list[tuple[int, float]]:
        return self.series(f"layers/{layer}/{quantity}")

    @property
    def layers(self) -> list[str]:
        from dlcli.inspection import layer_order

        found = {tag.split("/")[1] for tag in self.train if tag.startswith("layers/") and tag.count("/") == 2}
        return sorted(found, key=layer_order)


def load(path) -> Records:
    from dlcli.core.runs import RunFolder

    run = RunFolder.open(Path(path))
    scope = run.scope

    def unscoped(series: dict) -> dict:
        return {t[len(scope):] if scope and t.startswith(scope) else t: v for t, v in series.items()}  # fmt: skip

    logdir = run.logdir
    if not logdir.is_dir():
        raise RunError(f"run {run.name} has no logs: its log folder {logdir} is missing (moved or deleted?)")
    train = unscoped(read_events(logdir / "train"))
    if not train:
        raise RunError(f"run {run.name} has no logs in {logdir / 'train'} yet (nothing was logged before it "
                       f"stopped); resume it with `dlcli resume {path}`")  # fmt: skip
    return Records(run.name, Path(path), run.record, train, unscoped(read_events(logdir / "test")))


# -- the fixes as commands ----------------------------------------------------------------

_NOT_IN_COMMAND = {"name", "eval_points", "sync_batchnorm"}


def fix_command(records: Records, changes: dict, label: str) -> str:
    """`dlcli TASK ...` that trains the run again with `changes` ({setting name: value}):
    the options where the run differs from the command's defaults, then the changes."""
    task, config = records.task, records.config
    words = [f"dlcli {task}"]
    for s in settings.for_command(task):
        if s.field in _NOT_IN_COMMAND:
            continue
        value = changes.get(s.name, config.get(s.part, {}).get(s.field))
        if value == s.default(task) and s.name not in changes:
            continue
        if value is None:
            continue
        if s.kind is settings.FLAG:
            if value != s.default(task):
                words.append(s.option if value else f"--no-{s.name}")
            continue
        text = settings.format_value(value)
        words.append(f"{s.option} {_quote(text)}")
    words.append(f"--name {_quote(records.name.rsplit('/', 1)[-1] + '-' + label)}")  # a comparison's run: its own part
    return " ".join(words)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# -- the rules ----------------------------------------------------------------------------


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def _model(records: Records) -> dict:
    return records.config.get("model", {})


def _lower_lr(records: Records) -> dict:
    """A tenth of the run's learning rate, or the command's default where that is lower
    (a rate 10,000x the default diverges at a tenth of it too)."""
    default = settings.BY_NAME["lr"].default(records.task)
    lr = records.config.get("train", {}).get("lr", default)
    return {"lr": float(f"{min(lr / 10, default) if lr / 10 > default else lr / 10:.3g}")}


def _rule_diverged(r: Records, k: int) -> Finding | None:
    loss = r.series("loss")
    chance = math.log(k)
    bad = [(s, v) for s, v in loss if not math.isfinite(v)]
    status = r.record.get("status")
    final = (r.record.get("result") or {}).get("loss")
    changes = _lower_lr(r)
    fatal = True
    if status == "diverged" or bad:
        steps = [bad[0][0]] if bad else ([loss[-1][0]] if loss else [])
        evidence = "the training loss became NaN or infinite; training stopped there"
    elif loss and loss[-1][1] > DIVERGED_LOSS * chance:
        peak = max(loss, key=lambda p: p[1])
        steps = [peak[0], loss[-1][0]] if peak[0] != loss[-1][0] else [peak[0]]
        evidence = (f"training loss {loss[-1][1]:.4g} at the last window (peak {peak[1]:.4g} at step {peak[0]}), "
                    f"above {DIVERGED_LOSS:g} x ln {k} = {DIVERGED_LOSS * chance:.3g}, worse than guessing")  # fmt: skip
    elif loss and max(v for _, v in loss) > DIVERGED_PEAK * chance:
        peak = max(loss, key=lambda p: p[1])
        steps = [peak[0]]
        evidence = (f"training loss peaked at {peak[1]:.4g} at step {peak[0]}, above {DIVERGED_PEAK:g} x ln {k} = "
                    f"{DIVERGED_PEAK * chance:.3g} (it ended at {loss[-1][1]:.4g})")  # fmt: skip
        # Fatal only where it came back no further than chance: a run that learns again
        # after a blow-up is not one that compare --prune should stop.
        accuracy = _final_accuracy(r)
        fatal = accuracy is None or accuracy < CHANCE_ACCURACY / k
    elif final is not None and math.isfinite(final) and final > DIVERGED_LOSS * chance and loss:
        steps = [loss[-1][0]]
        evidence = f"final test loss {final:.4g}, above {DIVERGED_LOSS:g} x ln {k} = {DIVERGED_LOSS * chance:.3g}"
    else:
        return None
    return Finding("diverged", [], steps, evidence, f"a smaller learning rate (--lr {changes['lr']:g})",
                   fix_command(r, changes, "lr"), fatal=fatal, fixes={"lower-lr": changes})  # fmt: skip


def _grad_ratio(r: Records) -> list[tuple[int, float, float, float]]:
    """(step, ratio W1/WN, ||dL/dW1||, ||dL/dWN||) at every logged step with both."""
    layers = r.layers
    return _ratio_series(r, layers[0], layers[-1], "weight_grad_norm") if len(layers) >= 2 else []


def _ratio_series(r: Records, first_layer: str, last_layer: str, quantity: str) -> list[tuple[int, float, float, float]]:
    """(step, first / last, first, last) of `quantity` at every logged step with both
    (finite, and a last above 0)."""
    first = dict(r.layer_series(first_layer, quantity))
    last = dict(r.layer_series(last_layer, quantity))
    out = []
    for step in sorted(set(first) & set(last)):
        a, b = first[step], last[step]
        if b > 0 and math.isfinite(a) and math.isfinite(b):
            out.append((step, a / b, a, b))
    return out


def _depth_fixes(r: Records) -> dict:
    """The lecture's fixes for a gradient that does not get through: ReLU (with He
    init, its own), Xavier init for the other activations, batch norm."""
    model = _model(r)
    fixes = {}
    if model.get("activation") != "relu":
        fixes["relu"] = {"activation": "relu"}
        if model.get("init") not in ("he", "he_uniform", "he_normal"):
            fixes["relu-he"] = {"activation": "relu", "init": "he"}
    elif model.get("init") not in ("he", "he_uniform", "he_normal"):
        fixes["he-init"] = {"init": "he"}
    if model.get("init") not in ("xavier", "glorot_uniform", "glorot_normal") and model.get("activation") != "relu":
        fixes["xavier-init"] = {"init": "xavier"}
    if r.task == "mnist" and not model.get("batchnorm"):
        fixes["batchnorm"] = {"batchnorm": True}
    return fixes


def _rule_exploding(r: Records, k: int) -> Finding | None:
    ratios = [p for p in _backprop_ratio(r) if p[0] > 0]
    high = [p for p in ratios if p[1] > EXPLODE_RATIO]
    steep = []
    for layer in r.layers:
        for step, g in r.layer_series(layer, "weight_grad_norm"):
            if step > 0 and g > EXPLODE_GRAD:
                steep.append((step, layer, g))
    if not high and not steep:
        return None
    if steep:
        step, layer, g = max(steep, key=lambda p: p[2])
        evidence = f"||dL/dW|| of {layer} reached {g:.3g} at step {step} (threshold {EXPLODE_GRAD:g})"
        layers, steps = sorted({p[1] for p in steep}, key=r.layers.index), sorted({p[0] for p in steep})
    else:
        step, ratio, a, b = max(high, key=lambda p: p[1])
        evidence = (f"{_ratio_name(r)} = {ratio:.3g} at step {step} ({a:.3g} / {b:.3g}; threshold "
                    f"{EXPLODE_RATIO:g}) at {len(high)} of {len(ratios)} logged steps")  # fmt: skip
        layers, steps = [r.layers[0]], [p[0] for p in high]
    changes = _lower_lr(r)
    fixes = {"lower-lr": changes}
    if r.task == "mnist" and not _model(r).get("batchnorm"):
        fixes["batchnorm"] = {"batchnorm": True}
    return Finding("exploding gradient", layers, [steps[0], steps[-1]] if len(steps) > 1 else steps, evidence,
                   f"a smaller learning rate (--lr {changes['lr']:g}) or batch norm", fix_command(r, changes, "lr"),
                   fixes=fixes)  # fmt: skip


def _backprop_ratio(r: Records) -> list[tuple[int, float, float, float]]:
    """(step, ratio, std of dL/da at the first hidden layer, at the last) at every
    logged step: how much of the gradient that reaches the last hidden layer is left
    at the first. With one hidden layer, the W1/WN gradient-norm ratio instead."""
    hidden = [layer for layer in r.layers if layer != "output"]
    if len(hidden) < 2:
        return _grad_ratio(r)
    return _ratio_series(r, hidden[0], hidden[-1], "backprop_std")


def _ratio_name(r: Records) -> str:
    hidden = [layer for layer in r.layers if layer != "output"]
    return "std of dL/da, first / last hidden layer" if len(hidden) >= 2 else "||dL/dW1|| / ||dL/dWN||"


def _rule_vanishing(r: Records, k: int) -> Finding | None:
    ratios = _backprop_ratio(r)
    if not ratios:
        return None
    low = [p for p in ratios if p[1] < VANISH_RATIO]
    at_start = ratios[0][0] == 0 and ratios[0][1] < VANISH_RATIO
    if not at_start and len(low) < VANISH_SHARE * len(ratios):
        return None
    median = sorted(p[1] for p in ratios)[len(ratios) // 2]
    step, ratio, a, b = low[0]
    hidden = [layer for layer in r.layers if layer != "output"]
    # Where the gradient fades: the hidden layers that get under VANISH_RATIO of what
    # reaches the last hidden layer, at the first low step.
    faint = [layer for layer in hidden[:-1]
             if dict(r.layer_series(layer, "backprop_std")).get(step, 1e300) < VANISH_RATIO * b]  # fmt: skip
    evidence = (f"{_ratio_name(r)} = {ratio:.3g} at step {step} ({a:.3g} / {b:.3g}), below {VANISH_RATIO:g} at "
                f"{len(low)} of {len(ratios)} logged steps (median {median:.3g})"
                + (f"; {counted(len(faint), 'layer')} {'gets' if len(faint) == 1 else 'get'} under {VANISH_RATIO:g} of it"
                   if faint else ""))  # fmt: skip
    fixes = _depth_fixes(r)
    model = _model(r)
    changes = {"activation": "relu", "init": "he"} if model.get("activation") != "relu" else {"init": "he"}
    if model.get("activation") == "relu" and model.get("init") in ("he", "he_uniform", "he_normal"):
        changes = {"batchnorm": True}
    what = " ".join(f"--{n} {settings.format_value(v)}" if not isinstance(v, bool) else f"--{n}"
                    for n, v in changes.items())  # fmt: skip
    return Finding("vanishing gradient", _layer_span(faint or hidden[:1]),
                   [low[0][0], low[-1][0]] if len(low) > 1 else [step], evidence,
                   f"ReLU with He init, Xavier init, or batch norm ({what})", fix_command(r, changes, "fix"),
                   fixes=fixes)  # fmt: skip


def _layer_span(layers: list[str]) -> list[str]:
    return layers if len(layers) <= 3 else [f"{layers[0]}-{layers[-1]}"]


def _last(r: Records, layer: str, quantity: str):
    series = r.layer_series(layer, quantity)
    return series[-1] if series else None


def _rule_dead(r: Records, k: int) -> Finding | None:
    hit = []
    for layer in r.layers:
        last = _last(r, layer, "dead")
        if last is not None and last[1] >= DEAD_SHARE:
            since = next(s for s, v in r.layer_series(layer, "dead") if v >= DEAD_SHARE)
            hit.append((layer, last[0], last[1], since))
    if not hit:
        return None
    worst = max(hit, key=lambda h: h[2])
    evidence = "; ".join(f"{h[0]} {h[2]:.0%} dead at step {h[1]} (since step {h[3]})" for h in hit[:3])
    if len(hit) > 3:
        evidence += f"; {len(hit) - 3} more layers"
    model = _model(r)
    changes = {"init": "he"} if model.get("init") not in ("he", "he_uniform", "he_normal") else _lower_lr(r)
    fixes = {"he-init": {"init": "he"}, "lower-lr": _lower_lr(r), "leaky-relu": {"activation": "leaky_relu"}}
    if model.get("init") in ("he", "he_uniform", "he_normal"):
        del fixes["he-init"]
    return Finding("dead units", _layer_span([h[0] for h in hit]), sorted({min(h[3] for h in hit), worst[1]}),
                   evidence, "He init, a smaller learning rate, or leaky ReLU", fix_command(r, changes, "fix"),
                   fatal=worst[2] >= 1.0, fixes=fixes)  # fmt: skip


def _rule_saturated(r: Records, k: int) -> Finding | None:
    hit = []
    for layer in r.layers:
        last = _last(r, layer, "saturated")
        if last is not None and last[1] >= SATURATED_SHARE:
            hit.append((layer, last[0], last[1]))
    if not hit:
        return None
    parts = []
    for layer, step, share in hit[:3]:
        p15, p85 = _last(r, layer, "preact_p15"), _last(r, layer, "preact_p85")
        span = f", pre-activations p15..p85 {p15[1]:.3g}..{p85[1]:.3g}" if p15 and p85 else ""
        parts.append(f"{layer} {share:.0%} of entries saturated at step {step}{span}")
    evidence = "; ".join(parts) + (f"; {len(hit) - 3} more layers" if len(hit) > 3 else "")
    fixes = {"relu": {"activation": "relu"}, "xavier-init": {"init": "xavier"}}
    if r.task == "mnist":
        fixes["batchnorm"] = {"batchnorm": True}
    if _model(r).get("init") in ("xavier", "glorot_uniform"):
        del fixes["xavier-init"]
    changes = {"activation": "relu"}
    if _model(r).get("init") not in ("xavier", "glorot_uniform", "he", "he_uniform"):
        changes["init"] = "xavier"
    return Finding("saturated units", _layer_span([h[0] for h in hit]), [hit[0][1]], evidence,
                   "ReLU, batch norm, or a smaller init (Xavier)", fix_command(r, changes, "relu"), fixes=fixes)  # fmt: skip


def _final_accuracy(r: Records) -> float | None:
    result = r.record.get("result") or {}
    if result.get("accuracy") is not None:
        return result["accuracy"]
    acc = r.series("accuracy", "test") or r.series("accuracy")
    return acc[-1][1] if acc else None


def _rule_chance(r: Records, k: int) -> Finding | None:
    loss = r.series("loss")
    accuracy = _final_accuracy(r)
    if not loss or accuracy is None or not math.isfinite(loss[-1][1]):
        return None
    chance = math.log(k)
    if abs(loss[-1][1] - chance) > CHANCE_LOSS * chance or accuracy >= CHANCE_ACCURACY / k:
        return None
    evidence = (f"training loss {loss[-1][1]:.4f} at step {loss[-1][0]} vs ln {k} = {chance:.4f} (a uniform guess); "
                f"accuracy {accuracy:.4f}, under {CHANCE_ACCURACY:g}/{k}")  # fmt: skip
    if not [layer for layer in r.layers if layer != "output"]:
        # No hidden layer: one logistic unit draws one line, which cannot separate XOR
        # (lecture 9); the fix is depth, not the gradient's.
        changes = {"layers": 4 if r.task == "xor" else 3}
        return Finding("stuck at chance", [], [loss[-1][0]], evidence,
                       "hidden layers: one layer draws a single line", fix_command(r, changes, "deeper"), fatal=True,
                       fixes={"deeper": changes})  # fmt: skip
    fixes = _depth_fixes(r)
    changes = {"activation": "relu", "init": "he"} if fixes else {"batchnorm": True}
    how = "ReLU with He init or batch norm (a finding above may name the blocked layer)"
    return Finding("stuck at chance", [], [loss[-1][0]], evidence, how, fix_command(r, changes, "fix"), fatal=True,
                   fixes=fixes)  # fmt: skip


def _rule_slow(r: Records, k: int) -> Finding | None:
    loss = r.series("loss")
    if not loss or not math.isfinite(loss[-1][1]):
        return None
    chance = math.log(k)
    if loss[-1][1] <= SLOW_LOSS * chance:
        return None
    evidence = (f"training loss {loss[0][1]:.3f} at step {loss[0][0]} -> {loss[-1][1]:.3f} at step {loss[-1][0]}, "
                f"still above {SLOW_LOSS:g} x ln {k} = {SLOW_LOSS * chance:.3f}")  # fmt: skip
    train = r.config.get("train", {})
    fixes = _depth_fixes(r)
    # Adam at the rate `dlcli mnist` gives it (its default optimizer), from the settings table
    adam = {"optimizer": "adam", "lr": settings.BY_NAME["lr"].default("mnist")}
    if train.get("optimizer") != "adam":
        fixes["adam"] = adam
    changes = adam if train.get("optimizer") != "adam" else {"batchnorm": True}
    if r.task != "mnist" and "batchnorm" in changes:
        changes = {"epochs": int(train.get("epochs", 1)) * 2}
    return Finding("slow convergence", [], [loss[0][0], loss[-1][0]], evidence,
                   "Adam, ReLU with He init or batch norm (or more epochs)", fix_command(r, changes, "fast"),
                   fixes=fixes)  # fmt: skip


def _rule_oscillating(r: Records, k: int) -> Finding | None:
    loss = [p for p in r.series("loss") if math.isfinite(p[1])]
    if len(loss) < 4:
        return None
    rises = [(b[0], a[1], b[1]) for a, b in zip(loss, loss[1:]) if b[1] > (1 + OSCILLATE_RISE) * a[1]]
    if not rises or len(rises) < OSCILLATE_SHARE * (len(loss) - 1):
        return None
    step, before, after = max(rises, key=lambda p: p[2] / p[1])
    evidence = (f"the window loss rose by more than {OSCILLATE_RISE:.0%} in {len(rises)} of {len(loss) - 1} "
                f"windows (largest: {before:.3g} -> {after:.3g} at step {step})")  # fmt: skip
    changes = _lower_lr(r)
    return Finding("oscillating loss", [], [rises[0][0], rises[-1][0]], evidence,
                   f"a smaller learning rate (--lr {changes['lr']:g})", fix_command(r, changes, "lr"),
                   fixes={"lower-lr": changes})  # fmt: skip


def _rule_overfit(r: Records, k: int) -> Finding | None:
    if r.task != "mnist":
        return None
    train = r.series("accuracy")
    test = _final_accuracy(r)
    if not train or test is None:
        return None
    last = train[-1][1]
    gap = last - test
    threshold = OVERFIT_GAP[0] if last <= 0.9 else OVERFIT_GAP[1]
    if gap < threshold:
        return None
    evidence = (f"train accuracy {last:.4f} (last window, step {train[-1][0]}) vs test {test:.4f}: "
                f"a gap of {gap:.4f}, at least {threshold:g}")  # fmt: skip
    model = _model(r)
    changes = {"dropout": 0.5} if not model.get("dropout") else {"limit": None}
    fixes = {"dropout": {"dropout": 0.5}} if not model.get("dropout") else {}
    how = "dropout (--dropout 0.5)" if not model.get("dropout") else "more training data"
    label = "dropout" if not model.get("dropout") else "more-data"
    return Finding("over-fitting", [], [train[-1][0]], evidence, how, fix_command(r, changes, label),
                   fixes=fixes)  # fmt: skip


RULES = (_rule_diverged, _rule_exploding, _rule_vanishing, _rule_dead, _rule_saturated, _rule_chance, _rule_slow,
         _rule_oscillating, _rule_overfit)  # fmt: skip


def diagnose_records(records: Records) -> Diagnosis:
    k = CLASSES.get(records.task, 10)
    findings = [f for rule in RULES if (f := rule(records, k)) is not None]
    problems = {f.problem for f in findings}
    # One cause, one name: a diverged run's other symptoms are divergence's; a run
    # stuck at chance, or with a named cause of slowness, is not also "slow".
    if "diverged" in problems:
        findings = [f for f in findings if f.problem in ("diverged", "exploding gradient", "dead units")]
    if problems & {"stuck at chance", "vanishing gradient", "exploding gradient", "dead units", "saturated units"}:
        # slowness is then that cause's symptom, named already
        findings = [f for f in findings if f.problem != "slow convergence"]
    loss = records.series("loss")
    return Diagnosis(records.name, str(records.folder), records.task, findings, loss[-1][0] if loss else 0)


def diagnose(path) -> Diagnosis:
    """The diagnosis of the run in checkpoint folder `path` (files only: no TensorFlow)."""
    return diagnose_records(load(path))


def run_folders(path) -> list[Path]:
    """`path` itself when it is a run folder, else the run folders below it (a
    comparison's checkpoint folder), in name order; a RunError when there are none."""
    path = Path(path)
    if (path / "run.json").is_file() or not path.is_dir():
        return [path]
    found = sorted({p.parent for p in path.rglob("run.json")}, key=lambda p: str(p))
    if not found:
        raise RunError(f"{path} holds no run (no run.json in it or below); give a run's checkpoint folder "
                       "such as checkpoints/<run>, or a comparison's")  # fmt: skip
    return found


def diagnose_all(path) -> list[Diagnosis]:
    return [diagnose(folder) for folder in run_folders(path)]


def variant_of(diagnosis: Diagnosis) -> str:
    """A comparison run's variant: its folder's name without the seed
    (checkpoints/compare/<set>/<variant>-s<seed>, see comparison.plan)."""
    import re

    return re.sub(r"-s\d+$", "", Path(diagnosis.folder).name)



def by_variant(diagnoses: list[Diagnosis]) -> dict[str, list[Diagnosis]]:
    """{variant: its runs' diagnoses}, in the order the runs came."""
    groups: dict[str, list[Diagnosis]] = {}
    for d in diagnoses:
        groups.setdefault(variant_of(d), []).append(d)
    return groups


def text(diagnoses: list[Diagnosis], *, comparison: bool) -> str:
    """One run's diagnosis; or, for a comparison's runs, per variant: how many of its
    runs show each problem, then each run's findings."""
    if not comparison:
        return "\n".join(d.text() for d in diagnoses)
    blocks = []
    for variant, runs in by_variant(diagnoses).items():
        counts: dict[str, int] = {}
        for d in runs:
            for problem in dict.fromkeys(f.problem for f in d.findings):
                counts[problem] = counts.get(problem, 0) + 1
        summary = ", ".join(f"{p} in {n} of {len(runs)}" for p, n in counts.items()) or "healthy"
        blocks.append(f"{variant} ({counted(len(runs), 'run')}): {summary}")
        blocks.extend("  " + line for d in runs if not d.healthy for line in d.text().splitlines())
    return "\n".join(blocks)


def to_json(diagnoses: list[Diagnosis], *, comparison: bool):
    """One run: its diagnosis as an object; a comparison: a list, each with its variant."""
    if not comparison:
        return diagnoses[0].to_dict()
    return [{"variant": variant_of(d), **d.to_dict()} for d in diagnoses]


# -- --try-fixes: the run against the fixes its findings name, over paired seeds ------------

AS_RUN = "as-run"  # the variant that is the diagnosed run's own config
_FIXED_BY_COMPARE = {"name", "seed", "eval_points", "save_every", "keep", "sync_batchnorm"}


def fixes_of(diagnosis: Diagnosis) -> dict[str, dict]:
    """{fix name: {setting: value}} that the findings name, first named first."""
    fixes: dict[str, dict] = {}
    for f in diagnosis.findings:
        for name, changes in f.fixes.items():
            fixes.setdefault(name, changes)
    return fixes


def fixes_request(path, *, seeds=3, auto=None, alpha=None, first_seed: int = 0, logdir="logs",
                  checkpoint_dir="checkpoints"):  # fmt: skip
    """The run in `path` diagnosed, and the comparison (a comparison.Request) of its
    config ("as-run") against each fix its findings name, every variant with the same
    seeds: compare's plan, ledger, runners and verdicts, in
    <logdir>/compare/fixes-<run>-<hash>/. Returns (diagnosis, request); the request is
    None when nothing was found (nothing to fix)."""
    import dlcli.comparison as comparisons

    found = diagnose(path)
    fixes = fixes_of(found)
    if not fixes:
        return found, None
    records = load(path)
    task, config = records.task, records.config
    given = {}
    for s in settings.TABLE:
        if task in s.tasks and s.field not in _FIXED_BY_COMPARE:
            value = config.get(s.part, {}).get(s.field)
            if value is not None:
                given[s.name] = value
    base = comparisons.base_config(task, given, logdir=str(logdir), checkpoint_dir=str(checkpoint_dir))
    named = ((AS_RUN, {}), *fixes.items())
    request = comparisons.Request(
        task, base, named=named, label=f"fixes-{records.name.replace('/', '-')}", seeds=1 if auto else seeds,
        auto=auto, first_seed=first_seed, alpha=comparisons.DEFAULT_ALPHA if alpha is None else alpha,
    )  # fmt: skip
    return found, request


def fixes_verdict(comparison) -> list[str]:
    """Per fix, whether it is clearly better than the run as it was, paired over the
    seeds they share, with the claim's adjusted p (the comparison's Holm family over
    every ordered pair: the same family as its verdicts, so these claims hold together
    with the table's at its alpha)."""
    import dlcli.comparison as comparisons
    from dlcli import verdicts

    decision = comparison.decision
    ledger = comparisons.Ledger.read(comparison.plan.ledger_path)
    accuracies: dict[str, dict[int, float]] = {}
    for planned in comparison.plan.runs:
        entry = ledger.get(planned.config)
        if entry is not None:
            accuracies.setdefault(planned.variant.name, {})[planned.seed] = entry["accuracy"]
    run = accuracies.get(AS_RUN, {})
    better, other = [], []
    for variant in comparison.plan.variants:
        name = variant.name
        if name == AS_RUN or name not in accuracies:
            continue
        difference = verdicts.paired(accuracies[name], run)
        if difference is None:
            continue
        gain = f"{difference.mean:+.4f} accuracy over {counted(difference.n, 'paired seed')}"
        if difference.n < 2 or decision is None or not decision.behind:
            other.append(f"{name}: {gain}; one seed, no verdict (use --seeds 3 or --seeds auto)")
            continue
        up, down = decision.behind.get((AS_RUN, name), 1.0), decision.behind.get((name, AS_RUN), 1.0)
        if up <= decision.alpha:
            better.append(f"{name}: clearly better than the run, {gain} (adjusted p = {up:.2g})")
        elif down <= decision.alpha:
            other.append(f"{name}: clearly worse than the run, {gain} (adjusted p = {down:.2g})")
        else:
            other.append(f"{name}: not shown better, {gain} (adjusted p = {up:.2g})")
    lines = [f"fixes clearly better than the run (alpha {decision.alpha:g}, Holm over every pair): "
             f"{', '.join(line.split(':')[0] for line in better) or 'none'}"]  # fmt: skip
    return lines + better + other


# -- in a comparison: each variant's problems, from its runs' records -------------------------

SHORT = {"diverged": "diverged", "exploding gradient": "exploding", "vanishing gradient": "vanishing",
         "dead units": "dead", "saturated units": "saturated", "stuck at chance": "at chance",
         "slow convergence": "slow", "oscillating loss": "oscillating", "over-fitting": "over-fitting"}  # fmt: skip
NO_RECORDS = "no records"  # a run in the ledger whose folder or logs are gone


def short(finding: Finding) -> str:
    """A finding in a word or two, for a table cell: "vanishing", "dead 100%"."""
    word = SHORT.get(finding.problem, finding.problem)
    return f"{word} 100%" if finding.problem == "dead units" and finding.fatal else word


def diagnose_entry(folder, entry: dict) -> Diagnosis:
    """A comparison run's diagnosis as its ledger entry saw it (see `at_entry`)."""
    return diagnose_records(at_entry(load(folder), entry))


def at_entry(records: Records, entry: dict) -> Records:
    """A comparison run's records as its ledger entry saw them: up to the entry's
    epochs, with the entry's test accuracy and loss as the final result. A `--prune`
    run's folder goes on past a rung, so this is what makes a rung's diagnosis the same
    whenever it is asked (a rerun replays the same decisions)."""
    result = records.record.get("result") or {}
    record = dict(records.record, status="finished",
                  result={**result, "accuracy": entry["accuracy"], "loss": entry["loss"]})  # fmt: skip
    train, test = records.train, records.test
    if result.get("steps") and result.get("epochs"):
        last = result["steps"] // result["epochs"] * entry["epochs"]
        train = {t: {s: v for s, v in by.items() if s <= last} for t, by in train.items()}
        test = {t: {s: v for s, v in by.items() if s <= last} for t, by in test.items()}
    return Records(records.name, records.folder, record, train, test)


def of_runs(runs, entry_of) -> dict[str, list[Diagnosis | None]]:
    """{variant: the diagnoses of its finished runs} for planned runs `runs` (a
    comparison plan's), variants in plan order; `entry_of(config)`: a run's ledger
    entry, None when it has none (not diagnosed). None for a run whose records cannot
    be read. Files only: no TensorFlow."""
    from google.protobuf.message import DecodeError

    from dlcli.errors import DlcliError

    found: dict[str, list[Diagnosis | None]] = {}
    for planned in runs:
        entry = entry_of(planned.config)
        if entry is None:
            continue
        try:
            diagnosis = diagnose_entry(Path(planned.config.checkpoint_dir) / planned.config.name, entry)
        except (DlcliError, OSError, ValueError, KeyError, DecodeError):  # a folder gone, or a corrupt event file
            diagnosis = None
        found.setdefault(planned.variant.name, []).append(diagnosis)
    return found


def of_plan(the_plan) -> dict[str, list[Diagnosis | None]]:
    """of_runs over every run of a comparison's plan, its ledger read now."""
    from dlcli.comparison.ledger import Ledger

    return of_runs(the_plan.runs, Ledger.read(the_plan.ledger_path).get)


def fatal_variants(runs, entries: dict[str, list[dict]]) -> dict[str, str]:
    """{variant: its label} for the variants of a --prune rung (`runs`, and `entries`,
    the rung's ledger entries by variant, as the driver returns them) whose every run
    shows a fatal problem at the rung (comparison.prune stops them)."""
    by_run = {e["run"]: e for variant in entries.values() for e in variant}
    found = of_runs(runs, lambda config: by_run.get(config.name))
    return {variant: label(runs) for variant, runs in found.items()
            if runs and all(d is not None and d.fatal for d in runs)}  # fmt: skip


def labels(diagnoses: list[Diagnosis | None]) -> dict[str, int]:
    """{short label: how many of the runs show it}, most serious first (PROBLEMS' order)."""
    counts: dict[str, int] = {}
    for d in diagnoses:
        for word in dict.fromkeys([NO_RECORDS] if d is None else [short(f) for f in d.findings]):
            counts[word] = counts.get(word, 0) + 1
    order = [*SHORT.values(), NO_RECORDS]
    return dict(sorted(counts.items(), key=lambda item: order.index(item[0].removesuffix(" 100%"))))


def label(diagnoses: list[Diagnosis | None]) -> str:
    """A variant's problems in a few words, over its runs: "vanishing (3/3), at chance
    (2/3)", "dead 100%" with one run, "healthy" when no run shows one."""
    if not diagnoses:
        return "-"
    counts = labels(diagnoses)
    if not counts:
        return "healthy"
    n = len(diagnoses)
    return ", ".join(word if n == 1 else f"{word} ({k}/{n})" for word, k in counts.items())


def label_rows(rows: list[dict], diagnoses: dict[str, list[Diagnosis | None]]) -> None:
    """Each comparison row gets its variant's `diagnosis` label."""
    for row in rows:
        row["diagnosis"] = label(diagnoses.get(row["variant"], []))


def sections(diagnoses: dict[str, list[Diagnosis | None]]) -> list[tuple[str, str, list[list[str]]]]:
    """What the HTML report and the notebook show per variant: (variant, its label, one
    row per finding: run, problem, layers, steps, evidence, the fix and its command)."""
    out = []
    for variant, runs in diagnoses.items():
        body = []
        for d in runs:
            for f in d.findings if d is not None else ():
                problem = f.problem + (" (fatal)" if f.fatal else "")
                body.append([d.run.rsplit("/", 1)[-1], problem, ", ".join(f.layers), _span(f.steps) if f.steps else "",
                             f.evidence, f"{f.fix}: {f.command}"])  # fmt: skip
        out.append((variant, label(runs), body))
    return out


SECTION_HEADERS = ["run", "problem", "layers", "steps", "evidence", "fix"]
