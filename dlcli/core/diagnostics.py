"""Per-layer diagnostics: why a net trains or not, measured layer by layer.

At every logging step (and once at step 0, before training) one compiled call runs
the probe batch (the first `PROBE_EXAMPLES` training examples) through the model in
inference mode: no dropout mask is drawn, no batch-norm statistic moves, no optimizer
state is touched, so measuring never changes the training. It runs outside the
compiled training step, between two compiled calls; the percentiles are then taken
on the host, from the pre-activations the histograms need there anyway.
Cost: see benchmarks/diagnostics.py.

Definitions (L is the mean cross-entropy over the probe examples, without weight
penalties; "std" is the population standard deviation over every entry):

For every dense layer (`hidden1` ... `output`, the weight matrices W1 ... WN):
  weight_grad_norm  ||dL/dW||, the Frobenius norm of the kernel's gradient
  weight_norm       ||W||
  update_ratio      ||W_t - W_p|| / ||W_p||, where t is this logging step and p the
                    previous one (the run's start for the first): how far the
                    optimizer moved the kernel over the logging window, relative to
                    its size. W_p is kept in variables that checkpoints hold, so a
                    resumed run measures the same window. Not defined at step 0.

For every hidden layer (dense -> [batch norm] -> activation -> [dropout]), with z its
pre-activations (the activation's input: after batch norm when there is one) and a
its activations (the activation's output, before dropout):
  preact_p15, preact_p50, preact_p85
                    percentiles of z over every (example, unit) entry, interpolated
                    linearly between the closest ranks (numpy.percentile's default,
                    bit for bit)
  unit_p15, unit_p50, unit_p85
                    the same percentiles of one unit's z (the layer's first unit, a
                    typical one: the units are alike but for their random weights)
                    over the probe examples: the input of one sigmoid that Ioffe &
                    Szegedy's Fig. 1 follows over training
  act_mean, act_std mean and std of a
  backprop_std      std of dL/da, the gradient back-propagated to the activations
                    (L is a mean over the examples, so it scales with 1/examples)
  saturated         (saturating activations only) the fraction of entries where the
                    activation's derivative f'(z) is below 10% of its maximum
  dead              (activations with a flat zero region only) the fraction of units
                    whose output is exactly 0 on every probe example

Which activations are which is decided numerically, for any Keras activation, on a
grid of inputs over [-30, 30] (see `activation_family`): *saturating* when the
derivative at both ends of the grid is below 10% of its maximum on the grid (sigmoid,
tanh, softsign, hard_sigmoid, relu6, ...); *zero region* when the output is exactly 0
at every negative grid point and not everywhere (relu, relu6, ...). Leaky ReLU, ELU,
SELU, GELU, softplus, swish and linear are neither, and report neither fraction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from dlcli.core import models
from dlcli.core.tf_setup import tensorflow

tf = tensorflow()

SATURATION = 0.1  # saturated: the derivative below this share of its maximum
PERCENTILES = (15, 50, 85)
DENSE_QUANTITIES = ("weight_grad_norm", "weight_norm", "update_ratio")
HIDDEN_QUANTITIES = ("preact_p15", "preact_p50", "preact_p85", "act_mean", "act_std", "backprop_std", "saturated",
                     "dead", "unit_p15", "unit_p50", "unit_p85")  # fmt: skip
QUANTITIES = DENSE_QUANTITIES + HIDDEN_QUANTITIES
TAG_PREFIX = "layers/"  # TensorBoard scalars: layers/<layer>/<quantity>
_IN_GRAPH = ("act_mean", "act_std", "backprop_std", "saturated", "dead")  # the compiled call's per hidden layer

_GRID_LIMIT, _GRID_POINTS = 30.0, 6001


@dataclass(frozen=True)
class Family:
    """What an activation function can suffer from (see the module docstring)."""

    saturating: bool
    zero_region: bool
    max_derivative: float


@functools.lru_cache(maxsize=None)
def activation_family(fn) -> Family:
    """Classify an elementwise activation function by evaluating it on a grid (once per
    function and process: ~18 ms of eager work each time)."""
    grid = tf.concat([tf.linspace(-_GRID_LIMIT, _GRID_LIMIT, _GRID_POINTS), [0.0]], axis=0)
    with tf.GradientTape() as tape:
        tape.watch(grid)
        out = fn(grid)
    slope = np.abs(tape.gradient(out, grid).numpy())
    out, x = out.numpy(), grid.numpy()
    top = float(slope.max())
    saturating = top > 0 and slope[0] < SATURATION * top and slope[_GRID_POINTS - 1] < SATURATION * top
    zero_region = bool(np.all(out[x < 0] == 0) and np.any(out != 0))
    return Family(bool(saturating), zero_region, top)


@dataclass
class Measurement:
    """One logging step's diagnostics, on the host."""

    step: int
    values: dict  # {layer: {quantity: float}}, the quantities that apply to the layer
    # The distributions behind the histograms: every entry, flattened and sorted.
    preactivations: dict = field(default_factory=dict)  # {hidden layer: z's entries}
    backprop: dict = field(default_factory=dict)  # {hidden layer: dL/da's entries}
    activations: dict = field(default_factory=dict)  # {hidden layer: a, "output": hypothesis}

    def scalars(self) -> dict[str, float]:
        """{"layers/<layer>/<quantity>": value} for TensorBoard."""
        return {f"{TAG_PREFIX}{layer}/{q}": v for layer, values in self.values.items() for q, v in values.items()}

    def record(self) -> dict:
        """What run.json and the compare ledger keep: {"step", "layers": {layer: {quantity: value}}}."""
        return {"step": self.step, "layers": self.values}


class LayerDiagnostics:
    """The diagnostics of one model; `measure` is the compiled call.

    `loss(labels, outputs)` gives per-example losses of the model's outputs (logits),
    `hypothesis(outputs)` what they mean (sigmoid or softmax), as the training loop
    defines them.
    """

    def __init__(self, model, loss, hypothesis, *, full: bool = True):
        self.model = model
        self.full = full  # False: the activations and the W1/WN gradient norms alone (benchmarks)
        self._loss, self._hypothesis = loss, hypothesis
        self.dense = models.dense_layers(model)
        self.hidden = [layer.name[: -len("_act")] for layer in model.layers if layer.name.endswith("_act")]
        self.families = {
            layer.name[: -len("_act")]: activation_family(layer.activation)
            for layer in model.layers
            if layer.name.endswith("_act")
        }
        # The kernels at the previous logging step (the update ratio's W_p).
        self.previous_kernels = [
            tf.Variable(tf.convert_to_tensor(layer.kernel), trainable=False, name=f"{layer.name}_previous_kernel")
            for layer in self.dense
        ]
        self.measure = tf.function(self._measure, autograph=False)
        # The same measurement without W_p := W: a run's target between two logging
        # steps, measured for its result only (the next window still starts at the last
        # logging step, as in the run trained straight through).
        self.peek = tf.function(functools.partial(self._measure, commit=False), autograph=False)

    def checkpointables(self) -> dict:
        return {"previous_kernels": self.previous_kernels}

    def restart(self) -> None:
        """The window starts now (a new run, or an old checkpoint without W_p)."""
        for previous, layer in zip(self.previous_kernels, self.dense):
            previous.assign(tf.convert_to_tensor(layer.kernel))

    def _measure(self, features, labels, commit: bool = True):
        """Everything at once, then W_p := W (unless not `commit`). Returns a dict of tensors: "dense"
        [layers, 4] (gradient norm, norm, ||W - W_p||, ||W_p||), "hidden" [hidden, 5]
        (_IN_GRAPH), "first_last" (the W1 and WN gradient norms), and the tensors
        behind the histograms ("weights": {dense layer: (kernel, bias)}). The
        percentiles and histograms are left to the host (`to_host`, summaries): NumPy
        sorts 256 x 256 values in ~0.15 ms where a sort in the graph costs ~5 ms."""
        kernels = [layer.kernel for layer in self.dense]
        # The histograms' weights, read here: one call, where an eager read per
        # variable costs ~0.3 ms.
        weights = {layer.name: (tf.identity(layer.kernel), tf.identity(layer.bias)) for layer in self.dense}
        pre, act, x = [], [], features
        with tf.GradientTape() as tape:
            for layer in self.model.layers:
                if layer.name.endswith("_act"):
                    pre.append(x)
                x = layer(x, training=False)
                if layer.name.endswith("_act"):
                    act.append(x)
            loss = tf.reduce_mean(self._loss(labels, x))
        if not self.full:
            first_last = [tf.norm(g) for g in tape.gradient(loss, [kernels[0], kernels[-1]])]
            activations = {n: a for n, a in zip(self.hidden, act)}
            activations["output"] = self._hypothesis(x)
            return {"first_last": tf.stack(first_last), "activations": activations, "weights": weights}
        grads = tape.gradient(loss, kernels + act)
        kernel_grads, backprop = grads[: len(kernels)], grads[len(kernels) :]

        dense = []
        for kernel, grad, previous in zip(kernels, kernel_grads, self.previous_kernels):
            value = tf.convert_to_tensor(kernel)
            dense.append(tf.stack([tf.norm(grad), tf.norm(value), tf.norm(value - previous), tf.norm(previous)]))
        with tf.control_dependencies(dense):
            updates = [previous.assign(tf.convert_to_tensor(k)) for previous, k in zip(self.previous_kernels, kernels)
                       if commit]  # fmt: skip

        hidden = []
        for name, z, a, g in zip(self.hidden, pre, act, backprop):
            family = self.families[name]
            activation = self.model.get_layer(f"{name}_act").activation
            with tf.GradientTape() as slope_tape:
                slope_tape.watch(z)
                again = activation(z)
            slope = tf.abs(slope_tape.gradient(again, z))
            saturated = tf.reduce_mean(tf.cast(slope < SATURATION * family.max_derivative, tf.float32))
            dead = tf.reduce_mean(tf.cast(tf.reduce_all(tf.equal(a, 0.0), axis=0), tf.float32))
            hidden.append(tf.stack([tf.reduce_mean(a), tf.math.reduce_std(a), tf.math.reduce_std(g), saturated, dead]))
        with tf.control_dependencies(updates):
            out = {
                "dense": tf.stack(dense),
                "hidden": tf.stack(hidden) if hidden else tf.zeros([0, len(_IN_GRAPH)]),
                "first_last": tf.stack([dense[0][0], dense[-1][0]]),
                "preactivations": {n: tf.identity(z) for n, z in zip(self.hidden, pre)},
                "backprop": {n: tf.identity(g) for n, g in zip(self.hidden, backprop)},
                "activations": {n: tf.identity(a) for n, a in zip(self.hidden, act)},
                "weights": weights,
            }
            out["activations"]["output"] = tf.identity(self._hypothesis(x))
        return out

    def to_host(self, measured: dict, step: int) -> Measurement:
        """The compiled call's tensors as a Measurement; the quantities that do not
        apply (a fraction of the wrong family, the update ratio at step 0 or of a
        zero kernel) are left out."""
        values = {}
        for layer, (grad, norm, moved, before) in zip(self.dense, measured["dense"].numpy().astype(float)):
            entry = {"weight_grad_norm": grad, "weight_norm": norm}
            if step > 0 and before > 0:
                entry["update_ratio"] = moved / before
            values[layer.name] = entry
        # Sorted once: the percentiles are then two look-ups and the histograms a
        # binary search per edge (numpy's vectorised sort of 256 x 256 values takes
        # ~0.15 ms, numpy.percentile's partitioning ~1 ms).
        preactivations = {}
        for name, row in zip(self.hidden, measured["hidden"].numpy().astype(float)):
            z = measured["preactivations"][name].numpy()
            preactivations[name] = np.sort(z, axis=None)
            layer, unit = (sorted_percentiles(s, PERCENTILES) for s in (preactivations[name], np.sort(z[:, 0])))
            entry = {f"preact_p{q}": p for q, p in zip(PERCENTILES, layer)}
            entry.update(zip(_IN_GRAPH, row))
            entry.update({f"unit_p{q}": p for q, p in zip(PERCENTILES, unit)})
            if not self.families[name].saturating:
                del entry["saturated"]
            if not self.families[name].zero_region:
                del entry["dead"]
            values[name].update(entry)
        values = {layer: {q: float(v) for q, v in entry.items() if math.isfinite(v)} for layer, entry in values.items()}
        backprop = {n: np.sort(t.numpy(), axis=None) for n, t in measured["backprop"].items()}
        return Measurement(step, values, preactivations, backprop, measured["activations"])


def sorted_percentiles(ordered: np.ndarray, percentiles) -> np.ndarray:
    """numpy.percentile(values, percentiles) from `ordered`, values sorted into a 1-D
    array, bit for bit: numpy's default method ("linear": between the closest ranks,
    with numpy's two-sided interpolation formula), without its partitioning."""
    n = ordered.size
    if np.isnan(ordered[-1]):  # NaN sorts last; numpy.percentile gives NaN throughout
        return np.full(len(percentiles), np.nan)
    position = np.asarray(percentiles, dtype=np.float64) / 100 * (n - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    gamma = position - below
    low, high = ordered[below], ordered[above]
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as numpy.percentile gives (and warns)
        difference = high - low
        return np.where(gamma >= 0.5, high - difference * (1 - gamma), low + difference * gamma)
