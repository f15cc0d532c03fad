"""A seed fixes the initial weights AND the data order; the statistics rest on both.

The README promises it and compare's paired statistics need it: the seed-to-seed spread
must come from the order the examples are seen in, not only from the initial weights.
To see the order alone, these runs start from weights that do not depend on the seed
(`--init ones`, no dropout): whatever then differs between two seeds' runs came from
the data order.
"""

from __future__ import annotations

import pytest
from conftest import invoke_json
from test_resume import assert_same_state, checkpoint_values

# 512 examples / batch 64 = 8 shuffled steps an epoch; tanh so that `ones` still learns.
SEED_FREE_INIT = ["--init", "ones", "--activation", "tanh", "--layers", "3", "--units", "16", "--batch-size", "64"]


def run(runner, data, name, seed, *extra):
    return invoke_json(runner, "mnist", "--data", data, *SEED_FREE_INIT, "--seed", str(seed), "--name", name, *extra)


def weights_at_start(folder) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(folder / "ckpt-0"))
    names = [n for n, _ in tf.train.list_variables(str(folder / "ckpt-0")) if n.startswith("model_variables/")]
    return {n: reader.get_tensor(n) for n in names}


def test_the_data_order_is_the_seeds(workdir):
    """The order comes from (seed, epoch): equal for one seed, different for two,
    different from one epoch to the next."""
    import numpy as np

    from dlcli.core.train import epoch_order

    n = 512
    assert np.array_equal(epoch_order(3, 0, n), epoch_order(3, 0, n))
    assert not np.array_equal(epoch_order(3, 0, n), epoch_order(4, 0, n))
    assert not np.array_equal(epoch_order(3, 0, n), epoch_order(3, 1, n))
    assert sorted(epoch_order(3, 0, n).tolist()) == list(range(n))


@pytest.mark.slow
@pytest.mark.fresh_loops  # built here, not restarted: tests/conftest.py
def test_two_seeds_see_the_digits_in_other_orders(runner, workdir, digits_npz):
    a = run(runner, digits_npz, "a", 1)
    again = run(runner, digits_npz, "again", 1)
    b = run(runner, digits_npz, "b", 2)
    # The initial weights are the same for both seeds: any difference is the order's.
    start_a, start_b = weights_at_start(workdir / "checkpoints/a"), weights_at_start(workdir / "checkpoints/b")
    assert start_a and start_a.keys() == start_b.keys() and all((start_a[k] == start_b[k]).all() for k in start_a)
    assert_same_state(workdir / "checkpoints/a", workdir / "checkpoints/again")
    assert (a["loss"], a["accuracy"]) == (again["loss"], again["accuracy"])
    trained_a, trained_b = checkpoint_values(workdir / "checkpoints/a"), checkpoint_values(workdir / "checkpoints/b")
    weights = [k for k in trained_a if k.startswith("model_variables/")]
    assert weights and any((trained_a[k] != trained_b[k]).any() for k in weights), "seed 2 trained like seed 1"
    assert a["loss"] != b["loss"]


@pytest.mark.slow
def test_a_resumed_run_keeps_its_seeds_order(runner, workdir, digits_npz):
    """Epoch 2 of a resumed seed-7 run is seed 7's epoch 2, not seed 0's (the default)
    nor epoch 1's order again."""
    whole = run(runner, digits_npz, "whole", 7, "--epochs", "2")
    run(runner, digits_npz, "part", 7, "--epochs", "1")
    resumed = invoke_json(runner, "resume", "checkpoints/part", "--epochs", "2")
    assert (resumed["loss"], resumed["accuracy"]) == (whole["loss"], whole["accuracy"])
    assert_same_state(workdir / "checkpoints/whole", workdir / "checkpoints/part")
    other = run(runner, digits_npz, "other", 0, "--epochs", "2")
    assert other["loss"] != whole["loss"]
