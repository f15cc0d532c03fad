"""Rows are the true digit, columns the prediction: in the counts, in TensorBoard's
picture and text table, and in the --plot figure. Every 3 predicted as a 5 tells the
two apart; a transposed matrix anywhere puts the count at (5, 3) instead."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dlcli.core import pictures

COUNT = 7
LABELS = np.full(COUNT, 3)
PREDICTED = np.full(COUNT, 5)


@pytest.fixture(scope="module")
def matrix():
    return pictures.confusion_matrix(LABELS, PREDICTED, 10)


def test_the_counts_are_true_by_predicted(matrix):
    assert matrix[3, 5] == COUNT and matrix.sum() == COUNT


def cell(image: np.ndarray, row: int, column: int) -> np.ndarray:
    """The colour of a cell's corner (clear of the count written in its middle)."""
    size = pictures.CONFUSION_CELL
    top, left = _offsets(image)
    return image[top + row * size + 2, left + column * size + 2]


def _offsets(image: np.ndarray) -> tuple[int, int]:
    """The margins above and left of the cells."""
    return image.shape[0] - 10 * pictures.CONFUSION_CELL, image.shape[1] - 10 * pictures.CONFUSION_CELL


def test_tensorboards_picture_has_the_mistakes_in_row_3_column_5_and_names_its_axes(matrix):
    image = pictures.confusion_image(matrix)
    assert tuple(cell(image, 3, 5)) == tuple(pictures.ORANGE)  # every 3 went to 5: the whole row's share
    assert tuple(cell(image, 5, 3)) == tuple(pictures.WHITE)
    assert tuple(cell(image, 3, 3)) == tuple(pictures.WHITE)
    rows, columns = pictures.CONFUSION_AXES
    assert (rows, columns) == ("TRUE", "PREDICTED")
    top, left = _offsets(image)
    above, left_of = image[: top - 14, left:], image[top:, : left - 14]
    assert contains(above, word(columns)), "PREDICTED is not written above the columns"
    assert not contains(left_of, word(columns).T)
    assert contains(left_of, word(rows)), "TRUE is not written across, left of the rows"


def word(text: str) -> np.ndarray:
    """The ink of `text` as confusion_image writes it (scale 2), cropped."""
    canvas = np.full((12, 8 * len(text) + 4, 3), 255, np.uint8)
    pictures._text(canvas, text, 1, 1, (0, 0, 0), scale=2)
    ink = (canvas != 255).any(axis=2)
    ys, xs = np.nonzero(ink)
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def contains(image: np.ndarray, pattern: np.ndarray) -> bool:
    ink = (image != 255).any(axis=2)
    h, w = pattern.shape
    if ink.shape[0] < h or ink.shape[1] < w:
        return False
    windows = np.lib.stride_tricks.sliding_window_view(ink, (h, w))
    return bool((windows == pattern).all(axis=(2, 3)).any())


def test_tensorboards_text_table_has_the_count_in_row_3_column_5():
    from dlcli.core import session

    data = SimpleNamespace(y_test=LABELS, x_test=np.zeros((COUNT, 28, 28), np.float32), num_classes=10)
    drawn = session.mistake_pictures(data, PREDICTED, np.full(COUNT, 0.9))
    lines = drawn.markdown.splitlines()
    assert lines[0].startswith("| true \\ predicted |")
    cells = lines[2 + 3].strip("|").split("|")  # header, rule, rows 0, 1, 2, then 3
    assert cells[0].strip() == "**3**" and cells[1 + 5].strip() == str(COUNT)
    assert "rows are the true digit, columns the prediction" in drawn.description
    assert "3>5" in drawn.description  # the mistakes' captions: true>predicted


def test_the_plot_has_the_count_in_row_3_column_5_and_labels_its_axes(matrix):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from dlcli import report

    fig = report.confusion_figure(matrix)
    try:
        ax = fig.axes[0]
        assert ax.get_ylabel() == "true\ndigit" and ax.get_xlabel() == "predicted digit"
        shading = np.asarray(ax.images[0].get_array())  # imshow: first index is the y axis, the rows
        assert shading[3, 5] == 1 and shading[5, 3] == 0
        counts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
        assert counts[(3, 5)] == str(COUNT) and counts[(5, 3)] == "0"  # text at (x=column, y=row)
        assert ax.yaxis_inverted()  # row 0 at the top, as in the table
    finally:
        plt.close(fig)
