"""Building an MLP: one Keras 3 Sequential from the list of layers (dlcli 0.3.5) against
`Sequential.add` layer by layer (dlcli 0.3.4), side by side in this one process.

Keras 3's `Sequential.add` rebuilds the whole model after every layer it adds once the
model has an input, so building a net of L layers costs O(L^2). Every run builds its
model (a restarted compiled loop too: core.session), so this is paid per run.

Usage: python benchmarks/model_build.py [--reps 5]
Prints, for 2 to 30 layers: the median seconds of each way and that both give the same
initial weights for the same seed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np


def layer_by_layer(spec, input_shape, outputs, seed):
    """dlcli 0.3.4's models.mlp, verbatim but for the name."""
    from dlcli.core import models
    from dlcli.core.models import DROPOUT, WEIGHTS, layer_seed

    keras = models.keras

    def init(layer):
        return models.initializer(spec.init, normal_stddev=0.05, seed=layer_seed(seed, WEIGHTS, layer))

    model = keras.Sequential(name="mlp")
    model.add(keras.Input(shape=input_shape, name="features"))
    model.add(models.flatten("flatten"))
    for i in range(1, spec.layers):
        model.add(models.dense(spec.units, init(i), name=f"hidden{i}"))
        if spec.batchnorm:
            model.add(models.batch_norm(f"hidden{i}_bn", synchronized=spec.sync_batchnorm))
        model.add(models.activation(spec.activation, f"hidden{i}_act"))
        if spec.dropout:
            model.add(models.dropout(spec.dropout, f"hidden{i}_dropout", xla=True, seed=layer_seed(seed, DROPOUT, i)))
    model.add(models.dense(outputs, init(spec.layers), name="output"))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    from dlcli.config import ModelSpec
    from dlcli.core import models

    print(f"# {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}, median of {args.reps}")
    print("| layers | add() layer by layer (0.3.4) | Sequential(layers) (0.3.5) | same weights |")
    print("| --- | --- | --- | --- |")
    models.mlp(ModelSpec(layers=2, units=8), (28, 28), 10, seed=0)  # Keras' first-use costs, paid once
    for layers in (2, 4, 10, 30):
        spec = ModelSpec(layers=layers, units=64, activation="relu", init="he", batchnorm=layers == 4, dropout=0.2)
        times = {"old": [], "new": []}
        for rep in range(args.reps):
            for name, build in (("old", lambda: layer_by_layer(spec, (28, 28), 10, rep)),
                                ("new", lambda: models.mlp(spec, (28, 28), 10, seed=rep, xla=True))):  # fmt: skip
                start = time.perf_counter()
                model = build()
                times[name].append(time.perf_counter() - start)
                weights = [v.numpy() for v in model.variables]
                if name == "old":
                    old = weights
        same = len(old) == len(weights) and all(np.array_equal(a, b) for a, b in zip(old, weights))
        old_s, new_s = statistics.median(times["old"]), statistics.median(times["new"])
        print(f"| {layers} | {old_s:.3f} s | {new_s:.3f} s | {same} |")


if __name__ == "__main__":
    main()
