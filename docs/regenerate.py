"""Regenerate the numbers and pictures of the docs from dlcli's own output.

    python docs/regenerate.py                  # everything: the papers' pages and the README pictures
    python docs/regenerate.py he readme        # some of it (he, glorot, batchnorm, readme)

Every number between a page's `<!-- regenerate: NAME -->` and `<!-- /regenerate -->`
markers, and every picture this writes, is what a dlcli command printed or drew: the
page says which command. Nothing is typed by hand, so a slip such as two seeds'
accuracies swapped cannot recur. The runs go to a work folder (--work, default
build/regenerate) whose ledger is kept: run again, only what changed trains.

Time: each paper's preset takes about two minutes on a 2-core CPU (scaled down); the
README pictures about one. The data is the papers' split of the MNIST test set (see
docs/papers/README.md), made from --mnist DIR (t10k-*-idx?-ubyte.gz).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PAPERS = {  # the command each page shows (digits.npz: the split below), its seeds
    "he": ["--what", "he", "--seeds", "2"],
    "glorot": ["--what", "glorot"],
    "batchnorm": ["--what", "batchnorm", "--seeds", "2"],
}


def dlcli(args: list[str], cwd: Path) -> tuple[str, float]:
    """Run `dlcli ARGS` in `cwd` with this checkout's dlcli; (stdout, seconds)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="300")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dlcli", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"dlcli {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout, time.monotonic() - start


def digits(work: Path, mnist: Path) -> Path:
    """The papers' data: the MNIST test set split 8,000 / 2,000 (docs/papers/README.md)."""
    path = work / "digits.npz"
    if not path.exists():
        import numpy as np

        sys.path.insert(0, str(ROOT))
        from dlcli.core import data

        x = data.read_idx(mnist / "t10k-images-idx3-ubyte.gz", images=True)
        y = data.read_idx(mnist / "t10k-labels-idx1-ubyte.gz", images=False)
        np.savez(path, x_train=x[:8000], y_train=y[:8000], x_test=x[8000:], y_test=y[8000:])
    return path


def small(path: Path, colours: int = 64) -> None:
    """A docs picture in few colours (what matplotlib's antialiasing adds beyond them
    does not show), so the repository stays small."""
    from PIL import Image

    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colors=colours)
    reduced.save(path, optimize=True)


def replace_block(page: Path, name: str, text: str) -> None:
    """The text between `<!-- regenerate: NAME -->` and the next `<!-- /regenerate -->`."""
    source = page.read_text()
    pattern = re.compile(rf"(<!-- regenerate: {re.escape(name)} -->\n).*?(<!-- /regenerate -->)", re.S)
    if not pattern.search(source):
        sys.exit(f"{page}: no <!-- regenerate: {name} --> block")
    page.write_text(pattern.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), source))


def ledger(work: Path) -> list[dict]:
    path = work / "logs" / "compare" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def per_seed(entries: list[dict], variants: list[str]) -> str:
    """'he-he_normal: 0.9020 (seed 0), 0.8010 (seed 1)', a line per variant."""
    lines = []
    for variant in variants:
        runs = sorted((e for e in entries if e.get("variant") == variant), key=lambda e: e["seed"])
        seeds = ", ".join(f"{e['accuracy']:.4f} (seed {e['seed']})" for e in runs)
        lines.append(f"- `{variant}`: test accuracy {seeds}")
    return "\n".join(lines)


def step0_table(entries: list[dict], variants: list[str], layers: list[str], quantities: dict[str, str]) -> str:
    """A markdown table of per-layer diagnostics at step 0 (the ledger's, seed 0)."""
    header = "| at step 0, seed 0 | " + " | ".join(f"`{v}`" for v in variants) + " |"
    lines = [header, "| --- |" + " --- |" * len(variants)]
    for key, label in quantities.items():
        cells = []
        for variant in variants:
            entry = next(e for e in entries if e.get("variant") == variant and e["seed"] == 0)
            found = entry["diagnostics"]["first"]["layers"]
            cells.append(" → ".join(f"{found[layer][key]:.2g}" for layer in layers if key in found.get(layer, {})))
        lines.append(f"| {label}, {' → '.join(layers)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper(name: str, work: Path, data: Path) -> None:
    page = DOCS / "papers" / f"{name}.md"
    args = ["compare", *PAPERS[name], "--data", str(data), "--plot", f"{name}.png", "--quiet", "--wide"]
    out, seconds = dlcli(args, work)
    shown = " ".join(["dlcli", "compare", *PAPERS[name], "--data", "digits.npz", "--plot", f"{name}.png"])
    replace_block(page, "output", f"`{shown}` printed ({time.strftime('%Y-%m-%d')}; the seconds column is the "
                                  "runs' training time):\n"
                                  f"```\n{out.strip()}\n```")  # fmt: skip
    shutil.copy(work / f"{name}-paper.png", DOCS / "papers" / f"{name}-figure.png")
    small(DOCS / "papers" / f"{name}-figure.png")
    if name == "glorot":
        shutil.copy(work / f"{name}-depth.png", DOCS / "papers" / f"{name}-depth.png")
        small(DOCS / "papers" / f"{name}-depth.png")
    rows = json.loads(dlcli(["compare", *PAPERS[name], "--data", str(data), "--format", "json", "--quiet"], work)[0])
    variants = [r["variant"] for r in rows]
    latest = {(e["variant"], e["seed"]): e for e in ledger(work) if e.get("variant") in variants}  # the last of each
    entries = list(latest.values())
    replace_block(page, "seeds", "Per seed, from the comparison's ledger:\n" + per_seed(entries, variants))
    if name == "he":
        layers = ["hidden1", "hidden10", "hidden20", "hidden29"]
        replace_block(page, "step0", step0_table(entries, variants, layers, {
            "act_std": "activation std", "weight_grad_norm": "weight-gradient norm"}))  # fmt: skip
    print(f"{page.relative_to(ROOT)}: {name} in {seconds:.0f} s")


def readme(work: Path) -> None:
    """The README's pictures: XOR's boundaries, and (with Chromium) the report and the
    notebook display of a two-seed XOR comparison."""
    for name in ("xor", "xor-1-layer"):  # trained afresh: a finished run draws nothing new
        for folder in ("checkpoints", "logs"):
            shutil.rmtree(work / folder / name, ignore_errors=True)
    dlcli(["xor", "--plot", str(DOCS / "xor-boundary.png"), "--name", "xor"], work)
    dlcli(["xor", "--layers", "1", "--plot", str(DOCS / "xor-boundary-1-layer.png"), "--name", "xor-1-layer"], work)
    small(DOCS / "xor-boundary.png")
    small(DOCS / "xor-boundary-1-layer.png")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium on PATH: docs/report-screenshot.png and docs/api-display.png left as they are")
        return
    dlcli(["compare", "--task", "xor", "--seeds", "2", "--report", "report.html", "--quiet"], work)
    code = ("import dlcli, pathlib; r = dlcli.compare(task='xor', seeds=2); "
            "pathlib.Path('display.html').write_text('<meta charset=utf-8><style>img {max-width: 100%}</style>' "
            "'<body style=\"font: 14px sans-serif\">' "
            "+ r._repr_html_())")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], cwd=work, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True,
                   capture_output=True)  # fmt: skip
    for page, picture, size in (("report.html", "report-screenshot.png", "1400,2600"),
                                ("display.html", "api-display.png", "1300,1000")):  # fmt: skip
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={size}", f"--screenshot={DOCS / picture}", (work / page).as_uri()],
                       check=True, capture_output=True)  # fmt: skip
    for picture in ("report-screenshot.png", "api-display.png"):
        small(DOCS / picture, 256)  # a screenshot holds every figure's colours
    print("README pictures: docs/xor-boundary*.png, docs/report-screenshot.png, docs/api-display.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="*", default=[*PAPERS, "readme"], choices=[*PAPERS, "readme"])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "regenerate")
    parser.add_argument("--mnist", type=Path, default=Path(os.environ.get("DLCLI_MNIST", "/work/shared/data/mnist")))
    options = parser.parse_args()
    options.work.mkdir(parents=True, exist_ok=True)
    for name in options.what:
        if name == "readme":
            readme(options.work)
        else:
            paper(name, options.work, digits(options.work, options.mnist))


if __name__ == "__main__":
    main()
