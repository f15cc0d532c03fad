"""`dlcli mnist`: real training, the lecture's ordering, checkpoints and TensorBoard."""

from __future__ import annotations

import json

import pytest
from conftest import assert_clean_refusal, assert_usage_refused, invoke, invoke_json

from dlcli.cli import cli
from dlcli.core import summaries


def test_synthetic_run_writes_checkpoints_run_record_and_scalars(runner, workdir, digits_npz):
    out = invoke_json(
        runner, "mnist", "--data", digits_npz, "--epochs", "2", "--batch-size", "64",
        "--save-every", "3", "--log-every", "2", "--keep", "10", "--name", "syn",
    )  # fmt: skip
    assert out["steps"] == 16 and out["epochs"] == 2  # 512 // 64 = 8 steps an epoch
    assert out["accuracy"] > 0.5  # the bar's row gives the class away
    folder = workdir / out["checkpoint_dir"]
    steps = sorted(int(p.name[5:-6]) for p in folder.glob("ckpt-*.index"))
    assert steps == [0, 3, 6, 9, 12, 15, 16]
    record = json.loads((folder / "run.json").read_text())
    assert record["data_source"] == f"npz:{digits_npz}"
    assert record["target_epochs"] == 2 and record["status"] == "finished"
    assert record["config"]["train"]["batch_size"] == 64
    assert set(record["versions"]) == {"dlcli", "tensorflow", "keras", "python"}
    train = summaries.read_scalars(out["logdir"], "train")
    test = summaries.read_scalars(out["logdir"], "test")
    assert [s for s, _ in train["loss"]] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert [s for s, _ in test["accuracy"]] == [8, 16]  # each epoch, on the global step axis
    assert test["accuracy"][-1][1] == pytest.approx(out["accuracy"], abs=1e-6)


def test_text_output_names_accuracy_speed_and_folders(runner, digits_npz):
    result = invoke(runner, "mnist", "--data", digits_npz, "--batch-size", "64", "--name", "txt")
    assert "test accuracy" in result.stdout
    assert "s per epoch" in result.stdout
    assert "dlcli resume checkpoints/txt" in result.stdout


@pytest.mark.slow
def test_dropout_and_batchnorm_train(runner, digits_npz):
    out = invoke_json(
        runner, "mnist", "--data", digits_npz, "--layers", "5", "--units", "64",
        "--dropout", "0.5", "--batchnorm", "--batch-size", "64", "--epochs", "2",
    )  # fmt: skip
    assert out["accuracy"] > 0.2


def test_xla_dropout_is_keras_dropout_with_another_generator():
    import numpy as np
    import tensorflow as tf

    from dlcli.core import models

    tf.keras.utils.set_random_seed(3)
    layer = models.dropout(0.3, xla=True)
    reference = models.dropout(0.3)  # Keras' own layer, for its scaling
    ones = tf.ones([200, 500])
    draw = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    first, second = draw(ones).numpy(), draw(ones).numpy()
    kept = first != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01  # drops at its rate
    keras_out = reference(ones, training=True).numpy()
    assert np.allclose(first[kept], keras_out[keras_out != 0][0])  # survivors scaled by 1/(1 - rate)
    assert not np.array_equal(first, second)  # the seed generator advances (its state is checkpointed)
    assert np.array_equal(layer(ones, training=False).numpy(), ones.numpy())
    shared = models.XlaDropout(0.3, noise_shape=(1, 500))  # one mask for every row: Keras' own path
    rows = tf.function(lambda x: shared(x, training=True), jit_compile=True)(ones).numpy()
    assert (rows == rows[0]).all() and 0 < (rows[0] == 0).mean() < 1


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--dropout", "1.0"], "--dropout"),
        (["--batch-size", "0"], "--batch-size"),
        (["--dataset", "cifar"], "--dataset"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_bad_mnist_options(runner, workdir, args, needle):
    assert_usage_refused(runner, workdir, ["mnist", *args], needle)


def test_batch_larger_than_limit(runner, digits_npz):
    result = runner.invoke(
        cli, ["mnist", "--data", str(digits_npz), "--limit", "100"]
    )
    assert_clean_refusal(result, "--batch-size 128 is larger than --limit 100", exit_code=1)


@pytest.mark.slow
def test_real_digits_beat_chance_and_relu_beats_sigmoid(runner, real_digits):
    """Lab 10-1 on real digits (8000 train / 2000 test): relu > sigmoid with normal init."""
    common = ["mnist", "--data", real_digits, "--init", "normal", "--epochs", "3", "--quiet"]
    relu = invoke_json(runner, *common, "--activation", "relu")
    sigmoid = invoke_json(runner, *common, "--activation", "sigmoid")
    default = invoke_json(runner, "mnist", "--data", real_digits, "--epochs", "3")
    assert default["accuracy"] > 0.9, default
    assert relu["accuracy"] > 0.9
    assert relu["accuracy"] > sigmoid["accuracy"] + 0.01, (relu, sigmoid)
