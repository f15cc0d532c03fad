"""Lecture 9's hand-set XOR network: forward propagation with no training.

Two sigmoid gates see (x1, x2): W1=[5,5], b1=-8 (an AND gate) and W2=[-7,-7], b2=3
(a NOR gate); a third, W3=[-11,-11], b3=6, combines them (a NOR of the two), which is
XOR. Built from the same dense/activation factories as the trained nets.
"""

from __future__ import annotations

import numpy as np

from dlcli.config import ModelSpec
from dlcli.core import data as datasets
from dlcli.core import models

GATES = {
    "W1": [5.0, 5.0], "b1": -8.0,
    "W2": [-7.0, -7.0], "b2": 3.0,
    "W3": [-11.0, -11.0], "b3": 6.0,
}  # fmt: skip


def manual_network():
    """A 2-layer sigmoid MLP whose weights are the lecture's gates."""
    model = models.mlp(
        ModelSpec(layers=2, units=2, activation="sigmoid", init="zeros"), (2,), 1, seed=0
    )
    hidden, output = models.dense_layers(model)
    hidden.set_weights(
        [np.array([GATES["W1"], GATES["W2"]], np.float32).T, np.array([GATES["b1"], GATES["b2"]], np.float32)]
    )
    output.set_weights([np.array([GATES["W3"]], np.float32).T, np.array([GATES["b3"]], np.float32)])
    return model


def truth_table() -> list[dict]:
    """One row per input: the two gate outputs, the hypothesis and the prediction."""
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    xor = datasets.xor()
    model = manual_network()
    gates = model.get_layer("hidden1_act")(model.get_layer("hidden1")(xor.x_test)).numpy()
    hypothesis = tf.sigmoid(model(xor.x_test)).numpy()
    rows = []
    for (x1, x2), (target,), (k1, k2), (p,) in zip(xor.x_test, xor.y_test, gates, hypothesis):
        rows.append(
            {
                "x1": int(x1), "x2": int(x2),
                "gate1": float(k1), "gate2": float(k2),
                "target": int(target), "hypothesis": float(p), "prediction": int(p > 0.5),
            }
        )  # fmt: skip
    return rows
