"""Keras model factories in the lectures' style (Labs 09 and 10).

`dense`, `flatten`, `activation`, `dropout` and `batch_norm` are the small helpers the
lab code defines; `mlp` stacks hidden blocks as dense -> (batch norm) -> activation ->
(dropout) and ends in a dense output layer that returns logits (the loss applies the
sigmoid/softmax, `from_logits` style).

Layer names are stable (`hidden1`, `hidden1_act`, ..., `output`) because TensorBoard
tags and checkpoints are keyed by them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dlcli.core.tf_setup import tensorflow
from dlcli.names import INIT_ALIASES

if TYPE_CHECKING:  # at run time this module needs no config: dlcli.settings asks it about names
    from dlcli.config import ModelSpec

tf = tensorflow()
keras = tf.keras


def initializer(name: str, *, normal_stddev: float = 0.05, seed: int | None = None):
    """A Keras initializer by lecture name (normal, xavier, he) or Keras name.

    `normal` is RandomNormal(0, normal_stddev): 1.0 for XOR (Lab 09's tf.random.normal),
    Keras' default 0.05 for MNIST (Lab 10's RandomNormal()).

    `standard` is Glorot & Bengio's U[-1/sqrt(n), 1/sqrt(n)], n the layer's fan-in: a
    RandomUniform whose limit depends on the layer. VarianceScaling(1/3, fan_in, uniform)
    is that RandomUniform with the limit sqrt(3 * (1/3) / n) read from each kernel's
    shape when it is drawn, so one initializer object serves any layer and no caller
    has to pass the fan-in (and cannot pass a wrong one).
    """
    keras_name = INIT_ALIASES.get(name, name)
    if keras_name == "random_normal":
        return keras.initializers.RandomNormal(stddev=normal_stddev, seed=seed)
    if name == "standard":
        return keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform", seed=seed)
    config = {"seed": seed} if seed is not None else {}
    try:
        return keras.initializers.get({"class_name": keras_name, "config": config})
    except (ValueError, TypeError):  # initializers without a seed (zeros, ones, ...)
        return keras.initializers.get(keras_name)


# The random streams a model draws from, each layer's own (see layer_seed).
WEIGHTS, DROPOUT = 0, 1


def layer_seed(seed: int, stream: int, layer: int) -> int:
    """The seed of one layer's initializer or dropout masks, derived from the run's seed.

    Every random layer gets its own seed, so that (1) the layers' initial weights are
    independent draws (a Keras 3 initializer given one integer seed returns the same
    numbers at every call, so one shared initializer would give every layer a scaled
    copy of the first layer's weights), and (2) they depend on the run's seed alone:
    an unseeded Keras initializer takes its seed from Python's process-wide `random`,
    which any other thread (a Dask worker's event loop, say) may draw from between
    `set_random_seed` and the model's construction, silently changing the run.
    """
    return int(np.random.SeedSequence([seed, stream, layer]).generate_state(1)[0] >> 1)


def dense(units: int, init, name: str | None = None):
    return keras.layers.Dense(units, kernel_initializer=init, name=name)


def flatten(name: str | None = None):
    return keras.layers.Flatten(name=name)


def activation(name: str, layer_name: str | None = None):
    return keras.layers.Activation(name, name=layer_name)


def dropout(rate: float, name: str | None = None, *, xla: bool = False, seed: int | None = None):
    """Keras' Dropout; `xla=True` for a model trained in an XLA-compiled step."""
    return (XlaDropout if xla else keras.layers.Dropout)(rate, name=name, seed=seed)


class XlaDropout(keras.layers.Dropout):
    """keras.layers.Dropout whose masks come from the ThreeFry generator.

    Keras draws dropout masks with TensorFlow's default generator, Philox, whose XLA
    code on this CPU costs ~9 ns a number: 1.1 s of every epoch of the deep net with
    dropout. XLA's ThreeFry costs ~2.5 ns (0.3 s). The layer is otherwise Keras'
    (the same keep probability and 1/(1 - rate) scaling, the same seed generator,
    whose state checkpoints hold); only the random stream differs. TensorFlow's own
    CPU kernels have no ThreeFry, so models trained outside XLA keep Keras' layer.
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.noise_shape is not None:  # masks shared along axes: Keras' own path
            return super().call(inputs, training=training)
        seed = self.seed_generator.next()
        # As Keras' TensorFlow backend does: the generator's int64 state to an int32 seed.
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed, rng_alg="threefry")


def batch_norm(name: str | None = None, synchronized: bool = False):
    """Lab 10-4's batch norm; `synchronized` pools the batch statistics of all replicas."""
    return keras.layers.BatchNormalization(name=name, synchronized=synchronized)


def mlp(
    spec: ModelSpec, input_shape: tuple, outputs: int, *, seed: int, normal_stddev: float = 0.05, xla: bool = False
):  # fmt: skip
    """A fresh multilayer perceptron: `spec.layers` dense layers, the output included.

    Each hidden block is dense -> (batch norm) -> activation -> (dropout), as in
    Labs 10-1 ... 10-4; the output layer has no activation (logits). Its initial
    weights and dropout masks follow from `seed` alone (layer_seed). `xla`: the model
    will train in an XLA-compiled step (see XlaDropout).
    """

    def init(layer: int):
        return initializer(spec.init, normal_stddev=normal_stddev, seed=layer_seed(seed, WEIGHTS, layer))

    layers = [keras.Input(shape=input_shape, name="features")]
    if len(input_shape) > 1:
        layers.append(flatten("flatten"))
    for i in range(1, spec.layers):
        layers.append(dense(spec.units, init(i), name=f"hidden{i}"))
        if spec.batchnorm:
            layers.append(batch_norm(f"hidden{i}_bn", synchronized=spec.sync_batchnorm))
        layers.append(activation(spec.activation, f"hidden{i}_act"))
        if spec.dropout:
            layers.append(dropout(spec.dropout, f"hidden{i}_dropout", xla=xla, seed=layer_seed(seed, DROPOUT, i)))
    layers.append(dense(outputs, init(spec.layers), name="output"))
    # All at once: Keras 3's Sequential.add builds the whole model again after every
    # layer (quadratic: 1.9 s for the 30-layer nets of He et al.'s preset, ~0.1 s so).
    return keras.Sequential(layers, name="mlp")


def dense_layers(model) -> list:
    """The model's dense layers in order: W1 ... WN."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def optimizer(name: str, lr: float):
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": lr}})


def parameter_count(model) -> int:
    return int(sum(int(tf.size(v)) for v in model.trainable_variables))


def activation_exists(name: str) -> bool:
    try:
        keras.activations.get(name)
        return True
    except (ValueError, TypeError):
        return False


def initializer_exists(name: str) -> bool:
    try:
        initializer(name)
        return True
    except (ValueError, TypeError):
        return False


def optimizer_exists(name: str) -> bool:
    try:
        optimizer(name, 0.01)
        return True
    except (ValueError, TypeError):
        return False
