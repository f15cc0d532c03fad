"""Bad input, tried systematically (hypothesis): every invalid case is one line and a
non-zero exit with no traceback; every valid case runs."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from conftest import assert_clean_refusal, assert_ran
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dlcli.cli import cli
from dlcli.config import ACTIVATIONS, INITIALIZERS, OPTIMIZERS

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

VALID_NAMES = ["ok-run", "run.2", "ünï", "실험-1"]
names = st.sampled_from([*VALID_NAMES, "../escape", "a/b", "a\\b", "", ".", "..", "-x", ".x", "spaces here", "a\tb"])
numbers = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(["0", "-1", "1e3", "abc", "", "2.5"]))
rates = st.one_of(
    st.floats(-1, 1, allow_nan=False).map(repr), st.sampled_from(["nan", "inf", "-inf", "0", "1e-3", "x"])
)
keras_names = lambda valid: st.one_of(st.sampled_from(valid), st.sampled_from(["", "Relu", "nope", "sigmoid "]))


def valid_int(text: str, minimum: int) -> bool:
    if text.strip() != text or text.startswith("+"):
        return False
    try:
        return int(text) >= minimum
    except ValueError:
        return False


def valid_rate(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


def check(result, valid: bool) -> None:
    if valid:
        assert_ran(result)
    else:
        assert_clean_refusal(result)


XOR_VALID = {
    "layers": st.integers(1, 4).map(str), "units": st.integers(1, 12).map(str), "epochs": st.integers(1, 40).map(str),
    "lr": st.floats(1e-4, 1.0).map(repr), "name": st.sampled_from([None, *VALID_NAMES]),
    "activation": st.sampled_from(ACTIVATIONS), "init": st.sampled_from(INITIALIZERS),
    "optimizer": st.sampled_from(OPTIMIZERS),
}  # fmt: skip
XOR_INVALID = {
    "layers": st.sampled_from(["0", "-1", "abc", "", "2.5"]), "units": st.sampled_from(["0", "-3", "x"]),
    "epochs": st.sampled_from(["0", "-5", "1e3", ""]), "lr": st.sampled_from(["0", "-0.1", "nan", "inf", "x"]),
    "name": names.filter(lambda n: n not in VALID_NAMES),
    "activation": st.sampled_from(["", "Relu", "nope", "sigmoid "]),
    "init": st.sampled_from(["", "Xavier", "glorot", "he "]), "optimizer": st.sampled_from(["", "Adam ", "sgdm"]),
}  # fmt: skip


@st.composite
def xor_cases(draw):
    """All fields valid, or exactly one broken: each invalid value is tried on its own."""
    broken = draw(st.sampled_from([None, *XOR_VALID]))
    values = {k: draw(XOR_INVALID[k] if k == broken else XOR_VALID[k]) for k in XOR_VALID}
    return values, broken is None


@pytest.mark.slow  # trains a run per example
@SETTINGS
@given(case=xor_cases())
@example(case=({"layers": "2", "units": "3", "epochs": "7", "lr": "0.1", "name": "ok-run", "activation": "tanh",
                "init": "he", "optimizer": "adam"}, True))  # fmt: skip
def test_xor_options(runner, workdir, case):
    values, valid = case
    name = values.pop("name")
    if name is not None:
        shutil.rmtree(workdir / "checkpoints" / name, ignore_errors=True)
        shutil.rmtree(workdir / "logs" / name, ignore_errors=True)
    args = ["xor", "--log-every", "5", "--json"]
    for key, value in values.items():
        args += [f"--{key}", value]
    if name is not None:
        args += ["--name", name]
    result = runner.invoke(cli, args)
    check(result, valid)
    if valid:
        assert json.loads(result.stdout)["steps"] == int(values["epochs"])


@pytest.mark.slow  # trains a run per example
@SETTINGS
@given(
    dropout=st.sampled_from(["0", "0.5", "1", "-0.1", "nan", "x"]), batch=numbers, limit=numbers,
    dataset=st.sampled_from(["mnist", "fashion_mnist", "cifar10"]),
)  # fmt: skip
@example(dropout="0.5", batch="64", limit="200", dataset="mnist")
def test_mnist_options(runner, digits_npz, dropout, batch, limit, dataset):
    args = ["mnist", "--data", str(digits_npz), "--units", "8", "--dropout", dropout, "--batch-size", batch,
            "--limit", limit, "--dataset", dataset, "--json"]  # fmt: skip
    try:
        dropout_ok = 0 <= float(dropout) < 1
    except ValueError:
        dropout_ok = False
    valid = (
        dropout_ok and valid_int(batch, 1) and valid_int(limit, 1) and dataset != "cifar10"
        and int(batch) <= min(int(limit), 512)
    )  # fmt: skip
    check(runner.invoke(cli, args), valid)


@SETTINGS
@given(payload=st.binary(max_size=300), kind=st.sampled_from(["npz", "idx-gz", "idx-raw"]))
def test_malformed_data_files(runner, workdir, payload, kind):
    if kind == "npz":
        path = workdir / "data.npz"
        path.write_bytes(payload)
    else:
        path = workdir / f"idx-{kind}"
        path.mkdir(exist_ok=True)
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"):  # fmt: skip
            suffix = ".gz" if kind == "idx-gz" else ""
            (path / (stem + suffix)).write_bytes(payload)
    result = runner.invoke(cli, ["mnist", "--data", str(path)])
    assert_clean_refusal(result, str(path.name), exit_code=1)


@st.composite
def record_edits(draw):
    """A hand edit of run.json: drop a key, or set one (at any depth) to an odd value."""
    path = draw(st.sampled_from([
        ("format",), ("config",), ("target_epochs",), ("logdir",), ("config", "model"), ("config", "task"),
        ("config", "model", "layers"), ("config", "model", "activation"), ("config", "train", "lr"),
        ("config", "train", "epochs"), ("config", "data"), ("config", "name"), ("config", "model", "extra"),
    ]))  # fmt: skip
    value = draw(st.one_of(st.just("<delete>"), st.none(), st.integers(-2, 3), st.text(max_size=5),
                           st.lists(st.integers(), max_size=2), st.just(float("nan"))))  # fmt: skip
    return path, value


@pytest.mark.slow  # trains a run per example
@SETTINGS
@given(edit=record_edits())
def test_run_json_edited_by_hand(runner, workdir, edit, xor_run):
    folder = workdir / "edited"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(xor_run, folder)
    record = json.loads((folder / "run.json").read_text())
    path, value = edit
    node = record
    for key in path[:-1]:
        node = node[key]
    if value == "<delete>":
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    (folder / "run.json").write_text(json.dumps(record))
    result = runner.invoke(cli, ["resume", str(folder), "--json"])
    if result.exit_code != 0:
        assert_clean_refusal(result)
    else:
        assert_ran(result)


@pytest.mark.slow  # trains two runs
def test_checkpoint_folder_of_another_run(runner, workdir, xor_run):
    from conftest import invoke

    invoke(runner, "xor", "--layers", "2", "--units", "3", "--epochs", "10", "--name", "other", "--json")
    mixed = workdir / "mixed"
    shutil.copytree(xor_run, mixed)
    for f in mixed.glob("ckpt-*"):
        f.unlink()
    for f in (workdir / "checkpoints/other").glob("ckpt-*"):
        shutil.copy(f, mixed / f.name)
    shutil.copy(workdir / "checkpoints/other/checkpoint", mixed / "checkpoint")
    result = runner.invoke(cli, ["resume", str(mixed), "--epochs", "20"])
    assert_clean_refusal(result, "cannot restore", exit_code=1)



@pytest.fixture
def xor_run(runner, workdir):
    from conftest import invoke

    invoke(runner, "xor", "--epochs", "10", "--log-every", "5", "--name", "base", "--json")
    return workdir / "checkpoints/base"
