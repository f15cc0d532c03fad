"""Pictures: XOR's decision boundary and MNIST's mistakes, in TensorBoard and in files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_refusal, invoke, invoke_json

from dlcli.cli import cli
from dlcli.core import pictures, summaries


def decode(png: bytes) -> np.ndarray:
    import tensorflow as tf

    return tf.image.decode_png(png).numpy()


def corners_predicted(image: np.ndarray) -> dict:
    return {(x1, x2): pictures.predicted_class(pictures.corner_pixel(image, x1, x2)) for x1 in (0, 1) for x2 in (0, 1)}


XOR_TARGETS = {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0}


@pytest.fixture(scope="module")
def deep_xor(tmp_path_factory):
    """`dlcli xor --plot deep.png` with the defaults (4 layers, 20000 epochs, log every
    1000), trained once for the file: (its folder, its --json result). Tests that
    resume it work on a copy."""
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("deep-xor")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DLCLI_LOGDIR", "DLCLI_CHECKPOINT_DIR"):
            patch.delenv(name, raising=False)
        patch.chdir(folder)
        out = invoke_json(CliRunner(), "xor", "--name", "deep", "--plot", "deep.png", "--quiet")
    return folder, out


def test_a_solved_xor_boundary_forms_in_tensorboard_and_separates_the_points(deep_xor):
    folder, out = deep_xor
    assert out["accuracy"] == 1.0
    images = summaries.read_images(folder / out["logdir"], "train")
    assert set(images) == {"boundary", "boundary/hidden1_units"}
    assert [step for step, _ in images["boundary"]] == list(range(1000, 20001, 1000))  # every logging step
    final = decode(images["boundary"][-1][1])
    size = pictures.GRID_POINTS * pictures.SCALE
    assert final.shape == (size, size, 3) and final.std() > 20  # not blank
    assert corners_predicted(final) == XOR_TARGETS  # the 0.5 contour separates the four points
    units = decode(images["boundary/hidden1_units"][-1][1])
    assert units.shape == (2 * 61 + 3, 5 * 61 + 4 * 3, 3)  # 10 units of 61 x 61, 5 to a row
    # The first picture, 1000 epochs in, is still wrong somewhere: it is learning.
    assert corners_predicted(decode(images["boundary"][0][1])) != XOR_TARGETS


def test_one_logistic_unit_draws_a_line_that_misclassifies_a_corner(runner, workdir):
    out = invoke_json(runner, "xor", "--layers", "1", "--epochs", "3000", "--name", "line")
    images = summaries.read_images(workdir / out["logdir"], "train")
    assert set(images) == {"boundary"}  # no hidden layer, no unit maps
    final = decode(images["boundary"][-1][1])
    assert corners_predicted(final) != XOR_TARGETS


def test_images_can_be_switched_off_for_measuring(workdir):
    from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec
    from dlcli.core import session

    config = RunConfig(task="xor", name="plain", model=ModelSpec(layers=2, units=2, activation="sigmoid", init="normal"),
                       train=TrainSpec(optimizer="sgd", lr=0.1, epochs=50, batch_size=0, log_every=10),
                       data=DataSpec(dataset="xor"))  # fmt: skip
    result = session.train(config, images=False)
    assert summaries.read_images(workdir / result.logdir, "train") == {}


def test_mnist_confusion_matrix_adds_up_and_its_diagonal_is_the_accuracy(runner, workdir, digits_npz):
    out = invoke_json(runner, "mnist", "--data", digits_npz, "--units", "32", "--batch-size", "64", "--epochs", "2",
                      "--name", "m")  # fmt: skip
    logdir = workdir / out["logdir"]
    images = summaries.read_images(logdir, "test")
    assert set(images) == {"confusion_matrix", "mistakes"}
    assert [step for step, _ in images["confusion_matrix"]] == [8, 16]  # each epoch end
    matrix = read_confusion_table(logdir)
    assert matrix.shape == (10, 10) and matrix.sum() == 128  # the synthetic test set
    assert matrix.trace() / matrix.sum() == pytest.approx(out["accuracy"])
    picture = decode(images["confusion_matrix"][-1][1])
    cells = 10 * pictures.CONFUSION_CELL  # margins: axis names, digits
    assert picture.shape[0] > cells and picture.shape[1] > cells and picture.std() > 20
    assert decode(images["mistakes"][-1][1]).shape[2] == 3


def read_confusion_table(logdir) -> np.ndarray:
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(logdir / "test"), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    text = tf.make_ndarray(acc.Tensors("confusion_matrix_counts")[-1].tensor_proto).item().decode()
    rows = [line.split("|")[2:-1] for line in text.splitlines()[2:]]
    return np.array([[int(c) for c in row] for row in rows])


def test_picture_pieces():
    labels = np.array([0, 1, 2, 2, 1, 0])
    predicted = np.array([0, 2, 2, 1, 1, 0])
    confidence = np.array([0.9, 0.8, 0.7, 0.95, 0.6, 0.5])
    matrix = pictures.confusion_matrix(labels, predicted, 3)
    assert matrix.tolist() == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert pictures.most_confident_mistakes(labels, predicted, confidence).tolist() == [3, 1]
    image = (np.arange(5 * 7 * 3) % 256).astype(np.uint8).reshape(5, 7, 3)
    assert np.array_equal(decode(pictures.png(image)), image)
    assert pictures.predicted_class(pictures.colorize(np.array(0.9))) == 1
    assert pictures.predicted_class(pictures.colorize(np.array(0.1))) == 0


@pytest.mark.slow
def test_plot_files_for_xor_layers_manual_mnist_and_resume(runner, workdir, digits_npz, deep_xor):
    import shutil

    import matplotlib.image

    def looks_drawn(path):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(str(path))
        assert pixels.shape[0] > 300 and pixels.std() > 0.05, path

    # `xor --plot deep.png --name deep` (the defaults) was run in deep_xor's folder.
    folder, _ = deep_xor
    looks_drawn(folder / "deep.png")
    for part in ("logs/deep", "checkpoints/deep"):
        shutil.copytree(folder / part, workdir / part)
    # The copy's record points at the copy's logs, as if trained here (resume writes there).
    record_path = workdir / "checkpoints/deep/run.json"
    record = json.loads(record_path.read_text())
    assert Path(record["logdir"]) == (folder / "logs/deep").resolve()
    record["logdir"] = str((workdir / "logs/deep").resolve())
    record_path.write_text(json.dumps(record))
    invoke(runner, "xor", "--layers", "1", "--epochs", "500", "--plot", "line.png", "--quiet")
    looks_drawn(workdir / "line.png")
    invoke(runner, "xor", "--manual", "--plot", "gates.png")
    looks_drawn(workdir / "gates.png")
    invoke(runner, "mnist", "--data", digits_npz, "--units", "16", "--plot", "digits", "--name", "m", "--quiet")
    looks_drawn(workdir / "digits-confusion.png")
    looks_drawn(workdir / "digits-mistakes.png")
    invoke(runner, "resume", "checkpoints/deep", "--plot", "again.png")
    looks_drawn(workdir / "again.png")
    invoke(runner, "resume", "checkpoints/m", "--plot", "resumed")
    looks_drawn(workdir / "resumed-mistakes.png")


@pytest.mark.parametrize("command", [["xor"], ["mnist"], ["resume", "checkpoints/x"]])
def test_plot_without_matplotlib_is_refused_before_training(runner, workdir, monkeypatch, command):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    result = runner.invoke(cli, [*command, "--plot", "out"])
    assert_clean_refusal(result, "pip install 'dlcli[plot]'", exit_code=2)
    assert not (workdir / "logs").exists() and not (workdir / "checkpoints").exists()


@pytest.mark.slow
def test_board_list_says_which_runs_have_images(runner, workdir, digits_npz):
    invoke_json(runner, "xor", "--epochs", "200", "--log-every", "100", "--name", "x")
    invoke_json(runner, "mnist", "--data", digits_npz, "--units", "8", "--batch-size", "64", "--name", "m")
    out = invoke(runner, "board", "--list").stdout
    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in out.splitlines()[2:]}
    assert rows == {"m": "confusion_matrix, mistakes", "x": "boundary, boundary/hidden1_units"}
    assert out.splitlines()[0].split("|")[-2].strip() == "images"
