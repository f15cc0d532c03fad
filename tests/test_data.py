"""MNIST loaders on generated files: .npz and IDX (gz and raw), good and corrupt."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from conftest import assert_clean_refusal, synthetic_digits, tree

from dlcli.cli import cli
from dlcli.core import data
from dlcli.errors import DataError


def write_idx_folder(folder, arrays, *, gz):
    folder.mkdir(exist_ok=True)
    for (key, stem), array in zip(data.IDX_FILES.items(), arrays):
        data.write_idx(folder / (stem + (".gz" if gz else "")), array)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_round_trip(tmp_path, gz):
    arrays = synthetic_digits(n_train=30, n_test=10)
    loaded = data.load(path=str(write_idx_folder(tmp_path / "idx", arrays, gz=gz)))
    assert loaded.x_train.shape == (30, 28, 28) and loaded.x_test.shape == (10, 28, 28)
    assert loaded.x_train.dtype == np.float32 and 0.0 <= loaded.x_train.min() and loaded.x_train.max() == 1.0
    np.testing.assert_array_equal(loaded.y_train, arrays[1])
    np.testing.assert_allclose(loaded.x_test * 255, arrays[2], atol=1e-4)
    assert loaded.source.startswith("idx:")


def test_npz_and_limit(tmp_path, digits_npz):
    loaded = data.load(path=str(digits_npz), limit=100)
    assert len(loaded.x_train) == 100 and len(loaded.x_test) == 128
    assert loaded.source.startswith("npz:")


def test_keras_cache_is_used_when_present(tmp_path, monkeypatch, digits_npz):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    (tmp_path / "kh" / "datasets").mkdir(parents=True)
    (tmp_path / "kh" / "datasets" / "mnist.npz").write_bytes(digits_npz.read_bytes())
    loaded = data.load("mnist")
    assert loaded.source.startswith("keras-cache:") and len(loaded.x_train) == 512


def test_fashion_cache_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    folder = tmp_path / "kh" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    write_idx_folder(folder, synthetic_digits(n_train=20, n_test=5), gz=True)
    assert len(data.load("fashion_mnist").x_test) == 5


def test_shared_real_test_set_reads(real_digits):
    loaded = data.load(path=str(real_digits))
    assert loaded.y_train[0] == 7  # the first MNIST test image is a 7
    assert np.bincount(np.concatenate([loaded.y_train, loaded.y_test])).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009
    ]  # fmt: skip


def test_wrong_magic_names_the_file(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic_digits(20, 5), gz=False)
    bad = folder / "train-labels-idx1-ubyte"
    raw = bytearray(bad.read_bytes())
    raw[3] = 0x03  # 2051, an image magic, in a label file
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: IDX magic number 2051, expected 2049"):
        data.load(path=str(folder))


def test_truncated_gz_names_the_file(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic_digits(20, 5), gz=True)
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-40])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load(path=str(folder))


def test_truncated_raw_payload(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic_digits(20, 5), gz=False)
    bad = folder / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load(path=str(folder))


def test_counts_that_disagree(tmp_path):
    x_train, y_train, x_test, y_test = synthetic_digits(20, 5)
    folder = write_idx_folder(tmp_path / "idx", (x_train, y_train[:-1], x_test, y_test), gz=True)
    with pytest.raises(DataError, match="y_train has 19 labels but x_train has 20 images"):
        data.load(path=str(folder))


def test_missing_idx_file(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic_digits(20, 5), gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte"):
        data.load(path=str(folder))


def test_npz_missing_arrays_and_garbage(tmp_path):
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="missing arrays y_train, x_test, y_test"):
        data.load(path=str(tmp_path / "partial.npz"))
    (tmp_path / "junk.npz").write_bytes(gzip.compress(b"junk"))
    with pytest.raises(DataError, match="junk.npz: not a readable .npz"):
        data.load(path=str(tmp_path / "junk.npz"))


def test_cli_offline_without_cache_explains_where_it_looked(runner, workdir, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(workdir / "empty-keras"))
    before = tree(workdir)
    result = runner.invoke(cli, ["mnist", "--limit", "256"])
    assert_clean_refusal(result, "Keras cache", str(workdir / "empty-keras" / "datasets" / "mnist.npz"), "--data", exit_code=1)
    assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").iterdir())
    assert {p for p in tree(workdir) if not p.startswith("empty-keras")} <= before | {"checkpoints", "logs"}


def test_cli_corrupt_data_is_one_line(runner, workdir, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    result = runner.invoke(cli, ["mnist", "--data", str(tmp_path / "bad.npz")])
    assert_clean_refusal(result, "bad.npz")
    assert result.exit_code == 1


def _good_arrays():
    x_train, y_train, x_test, y_test = synthetic_digits(n_train=40, n_test=10)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _nan_pixels(a):
    a["x_train"] = a["x_train"].astype(np.float32) / 255
    a["x_train"][3, 4, 5] = np.nan


def _float_above_one(a):
    a["x_train"] = a["x_train"].astype(np.float32)  # 0-255 left unscaled in a float array


# Each malformed .npz: (how to break it, the array the error must name, words it must say).
MALFORMED = {
    "images-as-text": (lambda a: a.update(x_test=a["x_test"].astype(str)), "x_test", "dtype"),
    "images-complex": (lambda a: a.update(x_train=a["x_train"].astype(np.complex64)), "x_train", "dtype"),
    "labels-as-floats": (lambda a: a.update(y_train=a["y_train"].astype(np.float32)), "y_train", "integer class"),
    "labels-as-bools": (lambda a: a.update(y_test=a["y_test"] > 4), "y_test", "dtype"),
    "flat-images": (lambda a: a.update(x_train=a["x_train"].reshape(40, 784)), "x_train", "shape (N, rows, cols)"),
    "labels-one-hot-column": (lambda a: a.update(y_test=a["y_test"][:, None]), "y_test", "shape (N,)"),
    "counts-disagree": (lambda a: a.update(y_train=a["y_train"][:-3]), "y_train", "the counts must agree"),
    "image-sizes-disagree": (lambda a: a.update(x_test=a["x_test"][:, :14, :14]), "x_test", "one image size"),
    "empty-split": (lambda a: a.update(x_test=a["x_test"][:0], y_test=a["y_test"][:0]), "x_test", "empty"),
    "nan-pixels": (_nan_pixels, "x_train", "NaN"),
    "float-pixels-unscaled": (_float_above_one, "x_train", "[0.0, 1.0]"),
    "int-pixels-over-255": (lambda a: a.update(x_test=a["x_test"].astype(np.int16) * 2), "x_test", "[0, 255]"),
    "label-ten": (lambda a: a["y_test"].__setitem__(0, 10), "y_test", "digits 0-9"),
    "negative-label": (lambda a: a.update(y_train=a["y_train"].astype(np.int8) - 1), "y_train", "digits 0-9"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_npz_arrays_are_named_before_training(runner, workdir, case):
    breaks, array, words = MALFORMED[case]
    arrays = _good_arrays()
    breaks(arrays)
    path = workdir / f"{case}.npz"
    np.savez(path, **arrays)
    before = tree(workdir)
    result = runner.invoke(cli, ["mnist", "--data", str(path), "--batch-size", "8"])
    assert_clean_refusal(result, f"{case}.npz", f"[{array}]", array, words, exit_code=1)
    assert "--lr" not in result.stderr  # never blamed on training
    assert tree(workdir) == before  # refused before any folder was made


def test_float_images_in_unit_range_are_used_as_they_are(tmp_path):
    arrays = _good_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float32) / 255
    np.savez(tmp_path / "floats.npz", **arrays)
    loaded = data.load(path=str(tmp_path / "floats.npz"))
    np.testing.assert_array_equal(loaded.x_train, arrays["x_train"])  # not divided by 255 again
    assert loaded.x_test.max() == 1.0


def test_idx_files_whose_counts_disagree_name_the_label_file(runner, workdir):
    x_train, y_train, x_test, y_test = synthetic_digits(n_train=30, n_test=10)
    folder = write_idx_folder(workdir / "idx", (x_train, y_train[:25], x_test, y_test), gz=True)
    result = runner.invoke(cli, ["mnist", "--data", str(folder), "--batch-size", "8"])
    assert_clean_refusal(result, "train-labels-idx1-ubyte.gz", "y_train", "25 labels", "30 images", exit_code=1)
