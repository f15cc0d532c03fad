"""The model factory: initial weights and dropout masks follow from the run's seed alone."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dlcli.config import ModelSpec
from dlcli.core import models
from dlcli.core.tf_setup import tensorflow

tf = tensorflow()


def weights(seed: int, spec=ModelSpec(layers=4, units=16, init="xavier")) -> list[np.ndarray]:
    return [v.numpy() for v in models.mlp(spec, (28, 28), 10, seed=seed).weights]


@pytest.mark.parametrize("init", ["normal", "xavier", "he"])
def test_initial_weights_depend_on_the_seed_alone(init):
    # Another thread (a Dask worker's event loop, say) may draw from Python's global
    # random state between a run's set_random_seed and its model's construction; the
    # weights must not change with it.
    spec = ModelSpec(layers=4, units=16, init=init)
    random.seed(1)
    first = weights(7, spec)
    random.seed(2)
    random.random()
    again = weights(7, spec)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = weights(8, spec)
    assert not any(np.array_equal(a, b) for a, b in zip(first[::2], other[::2]))  # every kernel differs


def test_every_layer_draws_its_own_initial_weights():
    # One initializer with one integer seed returns the same numbers at every call in
    # Keras 3: the layers' kernels would be scaled copies of each other's first entries.
    kernels = weights(0)[::2]
    for a, b in zip(kernels, kernels[1:]):
        n = min(a.size, b.size)
        correlation = np.corrcoef(a.ravel()[:n], b.ravel()[:n])[0, 1]
        assert abs(correlation) < 0.3, correlation


@pytest.mark.parametrize("xla", [False, True])
def test_dropout_masks_depend_on_the_seed_alone(xla):
    spec = ModelSpec(layers=3, units=64, dropout=0.5)
    ones = tf.ones((4, 28, 28))
    outputs = []
    for python_seed in (1, 2):
        random.seed(python_seed)
        model = models.mlp(spec, (28, 28), 10, seed=3, xla=xla)
        # XlaDropout's ThreeFry masks exist only in XLA-compiled code.
        step = tf.function(lambda x: model(x, training=True), jit_compile=True) if xla else \
            (lambda x: model(x, training=True))  # fmt: skip
        outputs.append([step(ones).numpy() for _ in range(2)])
    assert np.array_equal(outputs[0][0], outputs[1][0]) and np.array_equal(outputs[0][1], outputs[1][1])
    assert not np.array_equal(outputs[0][0], outputs[0][1])  # a new mask every step


def test_layer_seeds_are_distinct_across_runs_streams_and_layers():
    seeds = {models.layer_seed(seed, stream, layer) for seed in range(20) for stream in (0, 1) for layer in range(10)}
    assert len(seeds) == 400 and all(0 <= s < 2**31 for s in seeds)
