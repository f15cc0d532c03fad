"""docs/lab.ipynb, lectures 9-10 through the Python API, executed in a real Jupyter
kernel (nbclient + ipykernel, the test extra) and its displayed outputs checked; the
committed notebook carries no outputs."""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import signal
import sys

import numpy as np
import pytest
from conftest import SHARED_MNIST, SRC, synthetic_digits

NOTEBOOK = SRC / "docs" / "lab.ipynb"


def _cell(nb, starts: str):
    found = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(starts)]
    assert len(found) == 1, f"no single code cell starting {starts!r}"
    return found[0]


def _html(cell) -> str:
    shown = [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]
    assert shown, f"{cell.source!r} displayed no HTML: {cell.outputs}"
    return shown[0]


def _pngs(html: str) -> list[bytes]:
    import io

    from PIL import Image

    pngs = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]

    for png in pngs:
        Image.open(io.BytesIO(png)).load()  # decodes, or raises
    return pngs


def _row(html: str, variant: str) -> list[str]:
    for row in re.findall(r"<tr>(.*?)</tr>", html):
        cells = re.findall(r"<td>(.*?)</td>", row)
        if variant in cells:
            return cells
    raise AssertionError(f"no row for {variant} in the displayed table")


def _digits(folder) -> str:
    """The shared MNIST test set split 8000/2000 where it exists, else synthetic digits:
    the notebook never needs the network."""
    path = folder / "digits.npz"
    if (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        from dlcli.core import data

        x = data.read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz", images=True)
        y = data.read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz", images=False)
        np.savez(path, x_train=x[:8000], y_train=y[:8000], x_test=x[8000:], y_test=y[8000:])
    else:
        x_train, y_train, x_test, y_test = synthetic_digits(n_train=2500, n_test=500)
        np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return str(path)


def _kernel(folder, monkeypatch) -> str:
    """A kernel spec running this interpreter with this checkout's dlcli (the installed
    `python3` spec may name another Python)."""
    spec = folder / "jupyter" / "kernels" / "dlcli-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "dlcli test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(folder / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return "dlcli-test"


def _stop_tensorboards(logdir) -> None:
    """The TensorBoard the notebook started for `logdir` (only that one), if it outlived the kernel."""
    from tensorboard import manager

    for info in manager.get_all():
        if os.path.abspath(info.logdir) == os.path.abspath(logdir):
            try:
                os.kill(info.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_the_committed_notebook_has_no_outputs_and_finds_data_without_the_network():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    source = "\n".join("".join(c["source"]) for c in code)
    assert 'os.environ.get("DLCLI_LAB_DATA")' in source and "data=DATA" in source
    assert "%load_ext tensorboard" in source and "%tensorboard --logdir" in source


@pytest.mark.slow
def test_the_lab_notebook_runs_and_shows_its_results(workdir, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the test extra: pip install 'dlcli[test]'")
    nbclient = pytest.importorskip("nbclient", reason="the test extra: pip install 'dlcli[test]'")
    pytest.importorskip("ipykernel", reason="the test extra: pip install 'dlcli[test]'")
    logdir = workdir / "logs"
    monkeypatch.setenv("DLCLI_LAB_DATA", _digits(workdir))
    monkeypatch.setenv("DLCLI_LAB_LOGDIR", str(logdir))
    monkeypatch.setenv("DLCLI_LAB_LIMIT", "500")  # what is checked below does not depend on the size
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name=_kernel(workdir, monkeypatch),
                                     resources={"metadata": {"path": str(workdir)}})  # fmt: skip
    try:
        client.execute()  # a cell that raises fails here, with its traceback
    finally:
        _stop_tensorboards(logdir)

    # Lecture 9: one logistic unit cannot learn XOR; the deeper nets can.
    depth = _html(_cell(nb, "depth = lab.compare"))
    assert "accuracy (1 seed)" in depth and "0/1" in _row(depth, "layers=1")  # one seed, said in the header
    assert len(_pngs(depth)) == 1 + 3  # the plot and each variant's boundary
    solved = ast.literal_eval(_cell(nb, '{row["variant"]').outputs[0]["data"]["text/plain"])
    assert solved["layers=1"] == 0.0 and max(solved["layers=2"], solved["layers=4"]) == 1.0
    run = _html(_cell(nb, "run = lab.xor"))
    assert run.count("<tr>") == 5 and len(_pngs(run)) == 2
    # Lecture 10: sigmoid vs ReLU, and the initialisers, each with its table and pictures.
    activation = _html(_cell(nb, "activation = lab.compare"))
    assert _row(activation, "sigmoid-normal") and _row(activation, "relu-normal")
    assert len(_pngs(activation)) == 1 + 2  # the plot and each variant's confusion matrix
    init = _html(_cell(nb, "init = lab.compare"))
    assert all(_row(init, v) for v in ("relu-normal", "relu-xavier", "relu-he"))
    # relu-normal's run is the activation comparison's (from the ledger): its pictures and
    # curves are in that comparison's folder, which the display does not look in (yet).
    assert len(_pngs(init)) == 1 + 2
    assert "relu-he" in "".join(_cell(nb, "print(init.table").outputs[0]["text"])
    # TensorBoard: the magic started a server for the notebook's logs and embedded it.
    board = _cell(nb, "if TENSORBOARD")
    assert any("tensorboard-frame" in o.get("data", {}).get("text/html", "") for o in board.outputs), board.outputs
    assert list(logdir.rglob("events.out.tfevents.*"))
