"""`dlcli diagnose` against known answers, beside AUTOTRAINER's rules on the same runs.

Trains (once; kept in --out) 44 short runs on real digits, the 10k MNIST test set
split 8000/2000 like the tests' `real_digits`: faulty ones built to show one problem
(or the problems that one cause brings along, e.g. an all-zero ReLU net is dead *and*
stuck at chance) and healthy ones, several seeds each. Each run's labels were fixed by
its construction. Then both rule sets read every run's records:

  dlcli       dlcli.diagnosis, as `dlcli diagnose` runs it
  AUTOTRAINER the rules and default thresholds of AutoTrainer/utils/monitor.py (Zhang
              et al., ICSE 2021), on the quantities dlcli records:
                vanish   ||dL/dW1|| / ||dL/dWN|| < 1e-3 and ||dL/dW1|| < 1e-4   (beta_1, beta_2)
                explode  ||dL/dW1|| / ||dL/dWN|| > 70  (beta_3)
                nan      a NaN loss or gradient, or a test loss >= 1e5: AUTOTRAINER's
                         "explode" too; counted here as divergence
                relu     share of zero gradients >= 0.7 (gamma); dlcli records dead units,
                         so the share is estimated as the kernel and bias entries a dead
                         unit's zero output makes zero (its fan-in, its bias, its fan-out)
                unstable ol_judge on the accuracy history (zeta 0.03, eta 0.2)
                slow     max accuracy < 0.7 (Theta) or accuracy gains < 0.01 (delta)
              with its gating: relu/explode/vanish/slow are named only for a run that
              does not converge, the first that applies; unstable only otherwise. Its
              "history" is the logging windows (these runs are 2 epochs long), its
              gradients those of every logged step (any step counts, threshold 1).
              AUTOTRAINER has no rule for saturation, chance level or over-fitting (-).

Writes --out/results.json (per run: labels, both rule sets' findings, the diagnosis
time) and prints the table docs/diagnosis.md shows; benchmarks/diagnosis-results.json
is the copy behind the docs (`--table` prints its table again).

Usage: python benchmarks/diagnosis.py [--out /tmp/dlcli-diagnosis-bench] [--only-score]
       python benchmarks/diagnosis.py --table benchmarks/diagnosis-results.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST = ROOT.parent / "shared" / "data" / "mnist"

BASE = {"epochs": 2, "log_every": 10}
# name: (settings, seeds, labels)
CASES = {
    "healthy-relu-xavier": ({}, 3, []),
    "healthy-relu-he": ({"init": "he"}, 2, []),
    "healthy-dropout": ({"dropout": 0.5}, 3, []),
    "healthy-sigmoid-bn": ({"activation": "sigmoid", "batchnorm": True}, 2, []),
    "healthy-he-30": ({"layers": 30, "units": 64, "init": "he"}, 3, []),
    "vanish-xavier-30": ({"layers": 30, "units": 64, "init": "xavier"}, 3, ["vanishing gradient"]),
    "vanish-sigmoid-10": ({"activation": "sigmoid", "layers": 10, "units": 64}, 3,
                          ["vanishing gradient", "stuck at chance"]),
    "vanish-tanh-12-normal": ({"activation": "tanh", "layers": 12, "units": 64, "init": "normal"}, 2,
                              ["vanishing gradient"]),
    # weights of 1 (x ~250 Xavier's pre-activations): every unit flat, so no gradient gets
    # through (vanishing) and nothing is learnt (chance)
    "saturated-sigmoid-ones": ({"activation": "sigmoid", "init": "ones"}, 2,
                               ["saturated units", "vanishing gradient", "stuck at chance"]),
    "saturated-tanh-ones": ({"activation": "tanh", "init": "ones", "layers": 2}, 2,
                            ["saturated units", "vanishing gradient", "stuck at chance"]),
    "dead-relu-zeros": ({"init": "zeros"}, 2, ["dead units", "stuck at chance"]),
    "dead-adam-lr003": ({"lr": 0.03}, 3, ["dead units"]),  # too large a step kills ReLUs
    "diverged-adam-lr10": ({"lr": 10.0}, 2, ["diverged", "exploding gradient", "dead units"]),
    # NaN within the first logging window: the records hold no gradient but step 0's
    "diverged-sgd-lr3": ({"optimizer": "sgd", "lr": 3.0, "init": "he_normal", "layers": 6, "units": 64}, 2,
                         ["diverged"]),
    "oscillating-sgd-lr1": ({"optimizer": "sgd", "lr": 1.0}, 2, ["oscillating loss"]),
    "oscillating-adam-lr001-b32": ({"lr": 0.01, "batch_size": 32, "epochs": 1}, 2, ["oscillating loss"]),
    "slow-sgd-lr001": ({"optimizer": "sgd", "lr": 0.01}, 3, ["slow convergence"]),
    "overfit-limit300": ({"limit": 300, "epochs": 30, "log_every": 20}, 3, ["over-fitting"]),
}
PROBLEMS = ("diverged", "exploding gradient", "vanishing gradient", "dead units", "saturated units",
            "stuck at chance", "slow convergence", "oscillating loss", "over-fitting")  # fmt: skip
BASELINE_COVERS = {"diverged", "exploding gradient", "vanishing gradient", "dead units", "slow convergence",
                   "oscillating loss"}  # fmt: skip


def digits(out: Path) -> Path:
    import numpy as np

    from dlcli.core import data

    path = out / "digits.npz"
    if not path.exists():
        x = data.read_idx(MNIST / "t10k-images-idx3-ubyte.gz", images=True)
        y = data.read_idx(MNIST / "t10k-labels-idx1-ubyte.gz", images=False)
        np.savez(path, x_train=x[:8000], y_train=y[:8000], x_test=x[8000:], y_test=y[8000:])
    return path


def train_all(out: Path) -> list[tuple[str, int, list[str], Path]]:
    import dlcli
    from dlcli.errors import DivergedError

    data = digits(out)
    lab = dlcli.Lab(logdir=out / "logs", checkpoint_dir=out / "checkpoints", quiet=True)
    runs = []
    for case, (given, seeds, labels) in CASES.items():
        for seed in range(seeds):
            name = f"{case}-s{seed}"
            folder = out / "checkpoints" / name
            runs.append((case, seed, labels, folder))
            if (folder / "run.json").exists():
                continue
            started = time.perf_counter()
            try:
                lab.mnist(data=data, seed=seed, name=name, **{**BASE, **given})
            except DivergedError:
                pass  # the run's records end at the NaN: that is what is diagnosed
            print(f"trained {name} in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return runs


# -- AUTOTRAINER's rules (AutoTrainer/utils/monitor.py, default params) ------------------
BETA_1, BETA_2, BETA_3, GAMMA, ZETA, ETA, DELTA, THETA = 1e-3, 1e-4, 70.0, 0.7, 0.03, 0.2, 0.01, 0.7


def _ol_judge(acc: list[float], threshold: float, rate: float) -> bool:
    maximum, minimum = [], []
    for i in range(1, len(acc) - 1):
        if acc[i] - acc[i - 1] >= 0 and acc[i] - acc[i + 1] >= 0:
            maximum.append(acc[i])
        if acc[i] - acc[i - 1] <= 0 and acc[i] - acc[i + 1] <= 0:
            minimum.append(acc[i])
    count = sum(1 for i in range(min(len(maximum), len(minimum))) if maximum[i] - minimum[i] >= threshold)
    return count >= rate * len(acc)


def _max_delta(acc: list[float]) -> float:
    return max([0.0] + [b - a for a, b in zip(acc, acc[1:])])


def autotrainer(records) -> set[str]:
    """AUTOTRAINER's issue list for one run, in dlcli's problem names."""
    train_loss = [v for _, v in records.series("loss")]
    train_acc = [v for _, v in records.series("accuracy")]
    test_loss = [v for _, v in records.series("loss", "test")]
    test_acc = [v for _, v in records.series("accuracy", "test")]
    status = records.record.get("status")
    nan = status == "diverged" or any(not math.isfinite(v) for v in train_loss + test_loss)
    nan = nan or bool(test_loss and test_loss[-1] >= 1e5)
    layers = records.layers
    config = records.config["model"]
    units, hidden = config["units"], [layer for layer in layers if layer != "output"]
    fans = [784] + [units] * len(hidden)
    total = sum((fans[i] + 1) * units for i in range(len(hidden))) + (units + 1) * 10
    vanish = explode = relu = 0
    first = dict(records.layer_series(layers[0], "weight_grad_norm"))
    last = dict(records.layer_series(layers[-1], "weight_grad_norm"))
    for step in sorted(set(first) & set(last)):
        if not (math.isfinite(first[step]) and math.isfinite(last[step])):
            nan = True
            continue
        rate = first[step] / last[step] if last[step] > 0 else math.inf
        vanish += rate < BETA_1 and first[step] < BETA_2
        explode += rate > BETA_3
        zero = 0.0
        for i, layer in enumerate(hidden):
            dead = dict(records.layer_series(layer, "dead")).get(step, 0.0)
            fan_out = units if i + 1 < len(hidden) else 10
            zero += dead * units * (fans[i] + 1 + fan_out)
        relu += zero / total >= GAMMA
    if nan:  # AUTOTRAINER files a NaN under "explode" and stops judging (loss_issue returns
        return {"diverged"}  # early); here it is divergence, told apart from the gradient rule
    issues = set()
    not_converge = bool(train_acc) and (max(test_acc or [0]) < THETA or max(train_acc) < THETA)
    sc = bool(train_acc) and _max_delta(test_acc) < DELTA and _max_delta(train_acc) < DELTA
    if not_converge or sc:
        if relu >= 1:
            issues.add("relu")
        elif explode >= 1:
            issues.add("explode")
        elif vanish >= 1:
            issues.add("vanish")
        elif sc:
            issues.add("not_converge")
    elif train_acc and _ol_judge(train_acc, ZETA, ETA):
        issues.add("unstable")
    names = {"explode": {"exploding gradient"}, "vanish": {"vanishing gradient"}, "relu": {"dead units"},
             "not_converge": {"slow convergence"}, "unstable": {"oscillating loss"}}  # fmt: skip
    return set().union(*(names[i] for i in issues)) if issues else set()


def score(results: list[dict], key: str, covered: set[str]) -> list[dict]:
    rows = []
    for problem in PROBLEMS:
        if problem not in covered:
            rows.append({"problem": problem, "runs": sum(problem in r["labels"] for r in results)})
            continue
        tp = sum(problem in r["labels"] and problem in r[key] for r in results)
        fp = sum(problem not in r["labels"] and problem in r[key] for r in results)
        fn = sum(problem in r["labels"] and problem not in r[key] for r in results)
        rows.append({"problem": problem, "runs": tp + fn, "found": tp, "false": fp,
                     "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/dlcli-diagnosis-bench")
    parser.add_argument("--only-score", action="store_true", help="diagnose the runs already in --out")
    parser.add_argument("--table", metavar="RESULTS_JSON", help="print the table of a results.json (no runs needed)")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())["summary"]))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only_score:
        runs = [(case, seed, labels, out / "checkpoints" / f"{case}-s{seed}")
                for case, (_, seeds, labels) in CASES.items() for seed in range(seeds)]  # fmt: skip
    else:
        started = time.perf_counter()
        runs = train_all(out)
        (out / "train_seconds.txt").write_text(f"{time.perf_counter() - started:.1f}\n")
    from dlcli import diagnosis

    results = []
    for case, seed, labels, folder in runs:
        started = time.perf_counter()
        found = diagnosis.diagnose(folder)
        seconds = time.perf_counter() - started
        records = diagnosis.load(folder)
        results.append({"case": case, "seed": seed, "labels": labels, "seconds": seconds,
                        "dlcli": sorted(f.problem for f in found.findings),
                        "autotrainer": sorted(autotrainer(records)),
                        "accuracy": (records.record.get("result") or {}).get("accuracy")})  # fmt: skip
    healthy = [r for r in results if not r["labels"]]
    summary = {
        "runs": len(results),
        "healthy_runs": len(healthy),
        "dlcli": score(results, "dlcli", set(PROBLEMS)),
        "autotrainer": score(results, "autotrainer", BASELINE_COVERS),
        "healthy_with_findings": {k: sum(bool(r[k]) for r in healthy) for k in ("dlcli", "autotrainer")},
        "diagnose_seconds": sorted(r["seconds"] for r in results),
        "date": time.strftime("%Y-%m-%d"),
        "train_seconds": (out / "train_seconds.txt").read_text().strip() if (out / "train_seconds.txt").exists()
        else None,
    }
    (out / "results.json").write_text(json.dumps({"summary": summary, "runs": results}, indent=1))
    print(table(summary))
    for r in results:
        if set(r["dlcli"]) != set(r["labels"]):
            print(f"  dlcli differs on {r['case']}-s{r['seed']}: labels {r['labels']}, found {r['dlcli']}")


def table(summary: dict) -> str:
    def cell(row, key):
        if "found" not in row:
            return "-"  # no such rule
        value = row.get(key)
        return "no finding" if value is None else f"{value:.2f}"

    lines = ["| problem | runs with it | dlcli precision | dlcli recall | AUTOTRAINER precision | AUTOTRAINER recall |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for ours, theirs in zip(summary["dlcli"], summary["autotrainer"]):
        lines.append(f"| {ours['problem']} | {ours['runs']} | {cell(ours, 'precision')} | {cell(ours, 'recall')} | "
                     f"{cell(theirs, 'precision')} | {cell(theirs, 'recall')} |")  # fmt: skip
    h = summary["healthy_with_findings"]
    lines.append("\n-: no rule for the problem. Precision: findings that are right; recall: runs with the "
                 "problem that get the finding.")
    lines.append(f"\nhealthy runs with a finding: dlcli {h['dlcli']} of {summary['healthy_runs']}, "
                 f"AUTOTRAINER {h['autotrainer']} of {summary['healthy_runs']}")  # fmt: skip
    s = summary["diagnose_seconds"]
    lines.append(f"diagnosing one run: median {s[len(s) // 2] * 1000:.0f} ms, max {s[-1] * 1000:.0f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
