"""Pictures computed from a model: XOR's decision boundary and MNIST's mistakes.

Everything here is NumPy (plus one forward pass through the model): grids of the
network's output, colour maps, a 3x5 bitmap font for digits, and the RGB images that
TensorBoard's Images tab shows. No matplotlib: TensorBoard images need no optional
dependency and cost a few milliseconds per logging step. `dlcli.report` draws the
same data with matplotlib for `--plot` files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The input square XOR's boundary is drawn over: a little beyond [0, 1]^2, on a grid
# whose points include 0 and 1 exactly (indices CORNER_LOW and CORNER_HIGH).
# 61 points (every 0.025) keep a TensorBoard image at every logging step cheap.
GRID_LOW, GRID_HIGH, GRID_POINTS = -0.25, 1.25, 61
CORNER_LOW, CORNER_HIGH = 10, 50
SCALE = 4  # image pixels per grid point (hidden-unit maps: one)
UNITS_PER_ROW = 5

# TensorFlow Playground's colours: orange for 0, white at 0.5, blue for 1.
ORANGE = np.array([245, 147, 34], np.float32)
WHITE = np.array([255, 255, 255], np.float32)
BLUE = np.array([8, 119, 189], np.float32)


@dataclass(frozen=True)
class Boundary:
    """The network over the input square: rows run from x2 = GRID_HIGH (top) down."""

    axis: np.ndarray  # the GRID_POINTS coordinates along x1 (and, reversed, x2)
    output: np.ndarray  # (GRID_POINTS, GRID_POINTS) probability of class 1
    hidden: np.ndarray  # (units, GRID_POINTS, GRID_POINTS) first hidden layer's activations; 0 units without one


def grid_inputs() -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(GRID_LOW, GRID_HIGH, GRID_POINTS, dtype=np.float32)
    x1, x2 = np.meshgrid(axis, axis[::-1])  # row 0 is the top of the picture: x2 high
    return axis, np.stack([x1.ravel(), x2.ravel()], axis=1)


class BoundaryPainter:
    """Draws XOR boundaries again and again (every logging step of a run): the grid
    tensor and the point markers are made once."""

    def __init__(self, targets: np.ndarray | None = None):
        """`targets`: the four points' labels, for the rings of `images` (not needed
        for `boundary` alone)."""
        self.axis, self._inputs = grid_inputs()
        self._rings = None if targets is None else _rings(targets)

    def boundary(self, model) -> Boundary:
        """One forward pass over the grid: the output probability and every unit of the
        first hidden layer (after its activation), as the Playground shows them."""
        from dlcli.core.tf_setup import tensorflow

        tf = tensorflow()
        x, hidden = self._inputs, None
        for layer in model.layers:
            # Dense layers and the usual activations in NumPy: an eager TensorFlow op
            # costs more than the arithmetic on 14641 points, and this runs at every
            # logging step. Anything else goes through the layer itself.
            numpy_activation = _NUMPY_ACTIVATIONS.get(getattr(getattr(layer, "activation", None), "__name__", ""))
            if isinstance(layer, tf.keras.layers.Dense):
                x = np.asarray(x) @ layer.kernel.numpy() + layer.bias.numpy()
            elif isinstance(layer, tf.keras.layers.Activation) and numpy_activation is not None:
                x = numpy_activation(np.asarray(x))
            else:
                x = layer(tf.constant(np.asarray(x)), training=False).numpy()
            if hidden is None and layer.name.endswith("_act"):
                hidden = x
        shape = (GRID_POINTS, GRID_POINTS)
        output = _sigmoid(np.asarray(x, np.float32)).reshape(shape)
        units = np.zeros((0, *shape), np.float32) if hidden is None else np.asarray(hidden).T.reshape(-1, *shape)
        return Boundary(axis=self.axis, output=output, hidden=units)

    def images(self, model) -> dict[str, np.ndarray]:
        """{"boundary": the output map, "boundary/hidden1_units": the unit maps (if any)}."""
        b = self.boundary(model)
        images = {"boundary": boundary_image(b, rings=self._rings)}
        units = units_image(b)
        if units is not None:
            images["boundary/hidden1_units"] = units
        return images


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


_NUMPY_ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
}


def boundary(model) -> Boundary:
    """The network over the input square, once (see BoundaryPainter)."""
    return BoundaryPainter().boundary(model)


def _rings(targets: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pixel mask, colour) of a ring around each XOR point, in its target's colour."""
    size = GRID_POINTS * SCALE
    yy, xx = np.mgrid[0:size, 0:size]
    rings = []
    for (x1, x2), target in zip(((0, 0), (0, 1), (1, 0), (1, 1)), targets):
        col = (CORNER_LOW if x1 == 0 else CORNER_HIGH) * SCALE + (SCALE - 1) / 2
        row = (CORNER_HIGH if x2 == 0 else CORNER_LOW) * SCALE + (SCALE - 1) / 2
        distance = np.hypot(yy - row, xx - col)
        rings.append(((distance >= 4.5) & (distance <= 7.0), (BLUE * 0.55 if target else ORANGE * 0.7).astype(np.uint8)))
    return rings


def _colour_table() -> np.ndarray:
    v = (np.arange(256, dtype=np.float32) / 255)[:, None]
    low = ORANGE + (WHITE - ORANGE) * (v / 0.5)
    high = WHITE + (BLUE - WHITE) * ((v - 0.5) / 0.5)
    table = np.where(v < 0.5, low, high).round().astype(np.uint8)
    table.setflags(write=False)
    return table


_COLOURS = _colour_table()  # 256 steps from orange through white to blue, read-only


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to RGB: orange (0) -> white (0.5) -> blue (1), by table lookup."""
    return _COLOURS[(np.clip(values, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)]


def predicted_class(pixel: np.ndarray) -> int:
    """The class a boundary-image pixel shows: blue for 1, orange for 0."""
    return int(int(pixel[2]) > int(pixel[0]))


def boundary_image(b: Boundary, targets: np.ndarray | None = None, *, rings=None) -> np.ndarray:
    """The output map, SCALE pixels per grid point, with the 0.5 contour in black and
    rings around the four XOR points in their target's colour (centres left as drawn,
    so a corner pixel still shows what the network predicts there)."""
    image = colorize(b.output)
    above = b.output > 0.5
    edge = np.zeros_like(above)
    edge[:, :-1] |= above[:, :-1] != above[:, 1:]
    edge[:-1, :] |= above[:-1, :] != above[1:, :]
    image[edge] = 0
    image = image.repeat(SCALE, axis=0).repeat(SCALE, axis=1)
    if rings is None and targets is not None:
        rings = _rings(targets)
    for mask, colour in rings or ():
        image[mask] = colour
    return image


def corner_pixel(image: np.ndarray, x1: int, x2: int) -> np.ndarray:
    """The pixel of `boundary_image` at input (x1, x2), each 0 or 1."""
    col = (CORNER_LOW if x1 == 0 else CORNER_HIGH) * SCALE
    row = (CORNER_HIGH if x2 == 0 else CORNER_LOW) * SCALE
    return image[row, col]


def units_image(b: Boundary) -> np.ndarray | None:
    """One small map per first-hidden-layer unit, UNITS_PER_ROW to a row, each scaled to
    its own range (what the unit "sees"); None for a net without a hidden layer."""
    if len(b.hidden) == 0:
        return None
    units = b.hidden
    low = units.min(axis=(1, 2), keepdims=True)
    span = units.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (units - low) / np.where(span > 0, span, 1.0), 0.5)
    return _tile(list(colorize(scaled)), UNITS_PER_ROW, gap=3)


# -- MNIST -------------------------------------------------------------------------------


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(labels.astype(np.int64) * classes + predicted.astype(np.int64),
                       minlength=classes * classes).reshape(classes, classes)  # fmt: skip


CONFUSION_AXES = ("TRUE", "PREDICTED")  # written on the picture: rows, columns


CONFUSION_CELL = 36  # pixels: a count of 4 digits at twice the font's size fits in a cell


def confusion_image(matrix: np.ndarray, cell: int = CONFUSION_CELL) -> np.ndarray:
    """Rows: true digit, columns: predicted (the picture says so: TRUE across, left of
    the rows, PREDICTED along the top); each cell shaded by its share of the row (blue:
    right, orange: wrong) with its count written in; digits on the margins. Every text
    at twice the pixel font's size, so the counts read at 100% zoom."""
    classes = len(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    rows, columns = CONFUSION_AXES
    band_top, band_left, margin = 14, (4 * len(rows) - 1) * 2 + 8, 16  # the axis names, then the digits
    top, left = band_top + margin, band_left + margin
    image = np.full((top + classes * cell, left + classes * cell, 3), 255, np.uint8)
    for t in range(classes):
        for p in range(classes):
            strength = share[t, p]
            colour = WHITE + ((BLUE if t == p else ORANGE) - WHITE) * min(1.0, strength * (1 if t == p else 4))
            y, x = top + t * cell, left + p * cell
            image[y : y + cell - 1, x : x + cell - 1] = colour.round().astype(np.uint8)
            ink = (255, 255, 255) if strength > 0.6 else (0, 0, 0)
            _text(image, str(matrix[t, p]), y + cell // 2 - 5, x + cell // 2, ink, scale=2, centre=True)
        _text(image, str(t), top + t * cell + cell // 2 - 5, band_left + 2, (0, 0, 0), scale=2)
        _text(image, str(t), band_top + 1, left + t * cell + cell // 2 - 3, (0, 0, 0), scale=2)
    _text(image, columns, 2, left + classes * cell // 2, (90, 90, 90), scale=2, centre=True)
    _text(image, rows, top + (classes * cell) // 2 - 5, 3, (90, 90, 90), scale=2)  # across, not stacked
    return image


def most_confident_mistakes(labels, predicted, confidence, count: int = 16) -> np.ndarray:
    """Indices of the wrong predictions the model was surest of, surest first."""
    wrong = np.flatnonzero(predicted != labels)
    return wrong[np.argsort(-confidence[wrong], kind="stable")][:count]


def mistakes_image(images: np.ndarray, labels, predicted, per_row: int = 4) -> np.ndarray:
    """The digits, twice their size, each above a 'true>predicted' caption."""
    tiles = []
    for image, label, guess in zip(images, labels, predicted):
        digit = (255 - np.clip(image * 255, 0, 255)).astype(np.uint8).repeat(2, 0).repeat(2, 1)
        tile = np.full((digit.shape[0] + 14, digit.shape[1], 3), 255, np.uint8)
        tile[: digit.shape[0]] = digit[..., None]
        _text(tile, f"{label}>{guess}", digit.shape[0] + 2, digit.shape[1] // 2, (200, 40, 0), scale=2, centre=True)
        tiles.append(tile)
    if not tiles:  # a perfect model
        return np.full((56, 56, 3), 255, np.uint8)
    return _tile(tiles, per_row, gap=4)


# -- drawing -----------------------------------------------------------------------------

# A 3x5 bitmap font: digits and '>' (rows top to bottom, '#' is ink).
_GLYPHS = {
    "0": "### #.# #.# #.# ###", "1": ".#. ##. .#. .#. ###", "2": "### ..# ### #.. ###",
    "3": "### ..# ### ..# ###", "4": "#.# #.# ### ..# ..#", "5": "### #.. ### ..# ###",
    "6": "### #.. ### #.# ###", "7": "### ..# .#. .#. .#.", "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ###", ">": "#.. .#. ..# .#. #..",
    # the letters of the confusion matrix's axis names
    "T": "### .#. .#. .#. .#.", "R": "##. #.# ##. #.# #.#", "U": "#.# #.# #.# #.# ###",
    "E": "### #.. ##. #.. ###", "P": "##. #.# ##. #.. #..", "D": "##. #.# #.# #.# ##.",
    "I": "### .#. .#. .#. ###", "C": "### #.. #.. #.. ###",
}  # fmt: skip
_FONT = {c: np.array([[ch == "#" for ch in row] for row in g.split()]) for c, g in _GLYPHS.items()}


def _text(image, text: str, top: int, left: int, colour, *, scale: int, centre: bool = False) -> None:
    width = (4 * len(text) - 1) * scale
    if centre:
        left -= width // 2
    for i, char in enumerate(text):
        glyph = _FONT[char].repeat(scale, 0).repeat(scale, 1)
        x = left + 4 * i * scale
        region = image[top : top + glyph.shape[0], x : x + glyph.shape[1]]
        mask = glyph[: region.shape[0], : region.shape[1]]
        region[mask] = colour


def _tile(tiles: list[np.ndarray], per_row: int, gap: int) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // per_row)
    columns = min(per_row, len(tiles))
    canvas = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, per_row)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return canvas


def png(image: np.ndarray) -> bytes:
    """An RGB uint8 image as PNG bytes, with the standard library's zlib: a fraction of
    a millisecond for a boundary image, where an eager tf.image.encode_png costs more."""
    import struct
    import zlib

    height, width = image.shape[:2]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), np.ascontiguousarray(image).reshape(height, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + \
        chunk(b"IEND", b"")  # fmt: skip
