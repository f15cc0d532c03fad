"""The data sets: XOR's four points and MNIST / Fashion-MNIST.

MNIST is found the way Keras users already have it (the Keras cache,
`~/.keras/datasets/`, downloaded once when online), or read from a path: a
Keras-layout `.npz` or a folder of the four IDX files of the official downloads
(gzip-compressed or not). NumPy only, except for the Keras download itself.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcli.errors import DataError

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# What keras.datasets.<name>.load_data() leaves in the cache.
KERAS_CACHE_NAMES = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist"}


@dataclass(frozen=True)
class Dataset:
    """Training and test arrays: features float32, labels int32 (or float32 for XOR)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it came from, recorded in run.json
    num_classes: int  # 2 with a single sigmoid output for XOR

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


def xor() -> Dataset:
    """The four XOR points of Lab 09-1; they are the training and the test set."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    return Dataset(x, y, x, y, source="xor truth table", num_classes=2)


def keras_cache_dir() -> Path:
    """Where keras.datasets keeps downloads: $KERAS_HOME/datasets or ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def load(dataset: str = "mnist", path: str | None = None, limit: int | None = None) -> Dataset:
    """Load MNIST or Fashion-MNIST with pixels scaled to [0, 1].

    `path` is an .npz or an IDX folder; without it the Keras cache is used (and
    filled by a Keras download when it is empty and the network allows).
    """
    if path is not None:
        arrays, source = read_path(Path(path))
    else:
        arrays, source = _from_keras(dataset)
    x_train, y_train, x_test, y_test = arrays
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    return Dataset(
        x_train=_scale(x_train),
        y_train=y_train.astype(np.int32),
        x_test=_scale(x_test),
        y_test=y_test.astype(np.int32),
        source=source,
        num_classes=10,
    )


def read_path(path: Path) -> tuple[tuple, str]:
    if path.is_dir():
        return read_idx_folder(path), f"idx:{path.resolve()}"
    check_path(path)
    return read_npz(path), f"npz:{path.resolve()}"


def check_path(path) -> None:
    """--data names a file or a folder (what it holds is read and checked when loaded)."""
    if not (Path(path).is_dir() or Path(path).is_file()):
        raise DataError(f"--data {path}: no such file or folder; give an .npz or a folder of IDX files")


def read_npz(path: Path) -> tuple:
    """A Keras-layout archive with x_train, y_train, x_test and y_test."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in IDX_FILES if k not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {', '.join(missing)}; an MNIST .npz holds "
                    "x_train, y_train, x_test and y_test"
                )
            arrays = tuple(archive[k] for k in IDX_FILES)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zlib.error, KeyError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({_reason(exc)})") from None
    check_arrays({name: f"{path} [{name}]" for name in IDX_FILES}, *arrays)
    return arrays


def read_idx_folder(folder: Path) -> tuple:
    """The four files of the official MNIST layout, each `.gz` or uncompressed."""
    arrays, where = [], {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / (stem + ".gz"), folder / stem]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DataError(
                f"{folder}: no {stem}[.gz]; an IDX folder needs "
                + ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())
            )
        arrays.append(read_idx(found, images=key.startswith("x")))
        where[key] = str(found)
    check_arrays(where, *arrays)
    return tuple(arrays)


def read_idx(path: Path, *, images: bool) -> np.ndarray:
    """One IDX file: images (N, rows, cols) or labels (N,), as uint8."""
    try:
        raw = _read_bytes(path)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({_reason(exc)})") from None
    magic, dims = (IDX_IMAGES_MAGIC, 3) if images else (IDX_LABELS_MAGIC, 1)
    header = 4 + 4 * dims
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    (found_magic,) = struct.unpack(">i", raw[:4])
    if found_magic != magic:
        kind = "image" if images else "label"
        raise DataError(
            f"{path}: IDX magic number {found_magic}, expected {magic} for an {kind} file"
        )
    shape = struct.unpack(">" + "i" * dims, raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: {len(raw) - header} data bytes, expected {expected} for shape "
            f"{'x'.join(map(str, shape))} (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write uint8 images (N, rows, cols) or labels (N,) as IDX; `.gz` compresses."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC
    payload = struct.pack(">" + "i" * (1 + array.ndim), magic, *array.shape) + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        return f.read()


def check_arrays(where: dict[str, str], x_train, y_train, x_test, y_test) -> None:
    """Every array fit for training, before anything trains: dtype, shape, agreeing
    counts and image sizes, finite values and pixel and label ranges. A failure is a
    DataError naming the file and the array (`where[name]`), so a broken file is never
    mistaken for a training problem (NaN pixels would otherwise show up as a diverged
    loss, "lower --lr").
    """
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for name, array in arrays.items():
        images = name.startswith("x")
        kinds = "uif" if images else "ui"
        if not isinstance(array, np.ndarray) or array.dtype.kind not in kinds:
            what = "images must be integers 0-255 or floats in [0, 1]" if images else "labels must be integer class indices"
            raise DataError(f"{where[name]}: {name} has dtype {getattr(array, 'dtype', type(array).__name__)}; {what}")
        if array.ndim != (3 if images else 1):
            shape = "(N, rows, cols)" if images else "(N,)"
            raise DataError(f"{where[name]}: {name} must have shape {shape}, got {array.shape}")
        if len(array) == 0:
            raise DataError(f"{where[name]}: {name} is empty")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            raise DataError(
                f"{where[f'y_{split}']}: y_{split} has {len(y)} labels but x_{split} has {len(x)} images; "
                "the counts must agree"
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{where['x_test']}: x_test images are {'x'.join(map(str, x_test.shape[1:]))} but x_train images are "
            f"{'x'.join(map(str, x_train.shape[1:]))}; both splits need one image size"
        )
    for name in ("x_train", "x_test"):
        array = arrays[name]
        if array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise DataError(f"{where[name]}: {name} holds NaN or infinite pixels")
            low, high = 0.0, 1.0
        else:
            low, high = 0, 255
        if array.min() < low or array.max() > high:
            raise DataError(
                f"{where[name]}: {name} pixels range over [{array.min()}, {array.max()}]; "
                f"{array.dtype} images must lie in [{low}, {high}]"
            )
    for name in ("y_train", "y_test"):
        array = arrays[name]
        if array.min() < 0 or array.max() > 9:
            raise DataError(f"{where[name]}: {name} has labels from {array.min()} to {array.max()}; expected digits 0-9")


def _from_keras(dataset: str) -> tuple[tuple, str]:
    cache = keras_cache_dir() / KERAS_CACHE_NAMES[dataset]
    if cache.is_file():
        return read_npz(cache), f"keras-cache:{cache}"
    if cache.is_dir() and all((cache / (s + ".gz")).is_file() for s in IDX_FILES.values()):
        return read_idx_folder(cache), f"keras-cache:{cache}"
    return _download(dataset, cache), f"keras:{dataset}"


def _download(dataset: str, cache: Path) -> tuple:
    import contextlib
    import sys

    from dlcli.core.tf_setup import tensorflow

    keras = tensorflow().keras
    try:
        # Keras announces the download on stdout, which belongs to results (--json).
        with contextlib.redirect_stdout(sys.stderr):
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, dataset).load_data()
    except Exception as exc:  # any network or HTTP failure inside Keras
        raise DataError(
            f"{dataset} is not in the Keras cache ({cache}) and downloading it failed "
            f"({_reason(exc)}); copy it there or pass --data PATH to an .npz or IDX folder"
        ) from None
    arrays = (x_train, y_train, x_test, y_test)
    check_arrays({name: f"{dataset} from Keras [{name}]" for name in IDX_FILES}, *arrays)
    return arrays


def _scale(images: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integer images are 0-255, float ones already scaled."""
    if images.dtype.kind == "f":
        return images.astype(np.float32)
    return images.astype(np.float32) / np.float32(255.0)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
