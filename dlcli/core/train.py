"""The one training loop: a custom `tf.GradientTape` step, compiled, many steps a call.

Every command trains through `TrainingLoop.run`. The data set lives in memory as
tensors; each call of the XLA-compiled `_train_chunk` runs a `tf.while_loop` of
optimizer steps up to the next boundary (a logging step, a checkpoint step or the end
of an epoch), so Python, progress bars and summaries touch the host once per call,
not once per step. Steps are the same computation wherever a call begins and ends,
so a run that is interrupted and resumed (even at a step that was no boundary before)
ends with bit-for-bit the weights of a run never interrupted.

What decides the data order is the seed and the epoch number (a fresh permutation per
epoch from `numpy.random.default_rng([seed, epoch])`), so a resumed run re-derives the
order of the epoch it stopped in and continues at the same position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlcli.core.data import Dataset
from dlcli.core.diagnostics import LayerDiagnostics
from dlcli.core.progress import Progress
from dlcli.core.tf_setup import held_interrupt, tensorflow
from dlcli.errors import DivergedError

tf = tensorflow()

EVAL_BATCH = 10_000  # examples per compiled evaluation call


@dataclass(frozen=True)
class Window:
    """Training metrics over the steps since the last report."""

    step: int  # the step counter at the end of the window
    steps: int
    loss: float
    accuracy: float
    activations: dict  # {layer name: activations on the probe inputs at `step`}
    weights: dict  # {dense layer name: (kernel, bias)} at `step`, read by the same call
    layers: object = None  # diagnostics.Measurement: the per-layer diagnostics at `step`


@dataclass
class Hooks:
    """What the loop calls at its boundaries; each receives the step counter."""

    on_log: Callable[[Window], None] = lambda window: None
    on_save: Callable[[int], None] = lambda step: None
    # (epoch, step); None lets one compiled call run across epochs when the data
    # order does not change (XOR's full batch: 20000 epochs of one step each).
    on_epoch_end: Callable[[int, int], None] | None = None
    on_evaluate: Callable[[int], None] = lambda step: None  # learning-curve points


@dataclass(frozen=True)
class Schedule:
    """Where compiled calls end and which hooks fire there, from the step counter alone.

    Periodic boundaries: logging every `log_every` steps, saving every `save_every`
    (0: never), epoch ends every `steps_per_epoch`, plus the target. A compiled call
    runs up to the next boundary; an epoch end is a boundary only where it matters
    (the data order changes there, or an epoch hook must run), so XOR's one-step
    epochs run 1000 steps a call. A resumed run makes exactly the calls an
    uninterrupted one makes from the same step.
    """

    target: int
    steps_per_epoch: int
    log_every: int
    save_every: int = 0
    epoch_boundaries: bool = True  # stop at epoch ends (shuffled data or epoch hooks)
    evaluate_every: int = 0  # test-subset evaluations (learning-curve points); 0: none

    def next_stop(self, step: int) -> int:
        """The step at which the call that starts at `step` ends."""
        periods = [
            self.log_every, self.save_every, self.evaluate_every,
            self.steps_per_epoch if self.epoch_boundaries else 0,
        ]  # fmt: skip
        return min([self.target] + [_next_multiple(step, every) for every in periods if every])

    def events(self, step: int) -> "Events":
        """What happens at `step`, a boundary `next_stop` returned."""
        end = step == self.target
        return Events(
            log=step % self.log_every == 0 or end,
            epoch_end=step % self.steps_per_epoch == 0,
            save=bool(self.save_every) and step % self.save_every == 0 and not end,
            evaluate=bool(self.evaluate_every) and (step % self.evaluate_every == 0 or end),
        )


@dataclass(frozen=True)
class Events:
    log: bool  # training window to TensorBoard, probe, gradient norms
    epoch_end: bool  # test evaluation (epoch hooks)
    save: bool  # a checkpoint (the final one is the caller's)
    evaluate: bool = False  # a learning-curve point on the test subset


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order `n` shuffled examples are seen in during `epoch` of a run with `seed`:
    a function of the two alone, so a resumed run re-derives it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class TrainingLoop:
    """A model, its optimizer and the training state, trained on one Dataset.

    `objective` is "binary" (one sigmoid output, XOR) or "categorical" (softmax over
    `num_classes` logits, MNIST). `batch_size` 0 means the whole training set.
    """

    def __init__(
        self,
        model,
        optimizer,
        data: Dataset,
        *,
        objective: str,
        batch_size: int,
        seed: int,
        probe_examples: int = 0,
        strategy=None,
        tensors: tuple | None = None,
        layer_diagnostics: bool = True,
    ):
        """`probe_examples`: the first that many training examples are the probe, on
        which the per-layer diagnostics (core.diagnostics: activations for histograms,
        gradient norms, saturation...) are measured at every logging step.

        `strategy`: a tf.distribute strategy whose scope created the model and optimizer
        (and this object); None trains on one device through XLA. `batch_size` is the
        batch over all replicas either way.

        `tensors`: `tensors_of(data)` made earlier (a copy of MNIST's 188 MB costs
        ~0.1 s; compare builds a loop per architecture on the same data).

        `layer_diagnostics`: False measures only what the probe measured before the
        per-layer diagnostics existed (activations, W1/WN gradient norms), to
        benchmark their cost.
        """
        self.model = model
        self.strategy = strategy
        self.optimizer = optimizer
        self.data = data
        self.objective = objective
        self.seed = seed
        n = len(data.x_train)
        self.batch_size = n if batch_size == 0 else min(batch_size, n)
        # Like the lab's `drop_remainder=True`: every step sees a full batch, so the
        # compiled step has one static shape.
        self.steps_per_epoch = n // self.batch_size
        self.shuffle = self.steps_per_epoch > 1 or self.batch_size < n

        self.x_train, self.y_train = tensors if tensors is not None else self.tensors_of(data)
        self.probe = self.x_train[:probe_examples]
        self.probe_labels = self.y_train[:probe_examples]
        self.optimizer.build(model.trainable_variables)

        # Everything a checkpoint must hold besides weights and optimizer slots.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.data_seed = tf.Variable(seed, dtype=tf.int64, trainable=False, name="data_seed")
        # Sums of the first and last weight matrices' gradient norms on the probe, taken
        # at every logging step: the vanishing-gradient diagnostic (ratio of the means).
        # Measured at logging steps, outside the step itself, it costs nothing per step
        # (per-step norms cost 13% of an MNIST epoch) and does not depend on where
        # compiled calls begin and end, so it survives a resume exactly.
        self.grad_norm_sums = tf.Variable([0.0, 0.0], dtype=tf.float64, trainable=False)
        # The training window's loss and correct-count sums since the last logging step,
        # summed step after step inside the compiled calls: the logged window is then the
        # same float32 sum however calls, resumes and higher targets split it.
        self.window_sums = tf.Variable([0.0, 0.0], dtype=tf.float32, trainable=False)
        # A target between two logging steps is measured for the result only (`_end`),
        # never into the sums above nor the update ratio's W_p: a run continued past it
        # then measures what the run trained straight through measures.
        self._end: tuple[int, np.ndarray] | None = None  # (step, W1/WN gradient norms there)
        self._log_every = 0

        # The per-layer diagnostics, W1/WN's gradient norms among them; its variables
        # (the kernels at the previous logging step) are made here, in the strategy's scope.
        self.diagnostics = LayerDiagnostics(model, self._per_example_loss, self._hypothesis, full=layer_diagnostics)
        self._order_cache: tuple[int, object] | None = None
        self._iterator_state: tuple[int, int, object] | None = None  # (epoch, position, iterator)

        # autograph=False: the loop is an explicit tf.while_loop, and converting Keras'
        # Python code costs a quarter of a second of tracing for nothing. Under a
        # distribution strategy the same steps run through strategy.run, without XLA
        # (cross-device all-reduces are not compiled by it).
        if strategy is None:
            self._train_chunk = tf.function(self._train_chunk_fn, jit_compile=True, autograph=False)
        else:
            self._train_chunk = tf.function(self._distributed_chunk_fn, autograph=False)
        # Evaluation and the probe are a few forward passes at logging steps and epoch
        # ends: TensorFlow's own (oneDNN) kernels run them about as fast as XLA, and
        # keeping them out of the XLA graph saves 0.2-0.4 s of compile per model.
        self._eval_batch = tf.function(self._eval_batch_fn, autograph=False)

    @staticmethod
    def tensors_of(data: Dataset) -> tuple:
        """The training set as the tensors the compiled calls read."""
        return tf.constant(data.x_train), tf.constant(data.y_train)

    # -- state ------------------------------------------------------------------

    def restart(self, initial_model, optimizer, seed: int) -> None:
        """Start over as a new run: the weights (and every other model variable) of
        `initial_model`, a fresh `optimizer`, step 0 and `seed`, keeping the compiled
        functions.

        `initial_model` must have this model's architecture (only its initial values
        differ: another initializer or seed). Compiling a training step costs ~1 s, as
        much as an epoch of a small MNIST net; `dlcli compare` restarts one loop for
        every variant and seed that shares an architecture. The state afterwards is the
        state a new TrainingLoop would have, so the run's numbers are the same.
        """
        _assign_all(self.model.variables, initial_model.variables)
        optimizer.build(initial_model.trainable_variables)
        _assign_all(self.optimizer.variables, optimizer.variables)
        self.seed = seed
        self.step.assign(0)
        self.epoch.assign(0)
        self.data_seed.assign(seed)
        self.grad_norm_sums.assign([0.0, 0.0])
        self.window_sums.assign([0.0, 0.0])
        self._end = None
        self.diagnostics.restart()
        self._order_cache = None
        self._iterator_state = None

    def checkpointables(self) -> dict:
        """The objects a tf.train.Checkpoint must track to continue exactly.

        Keras 3 does not track a Dropout layer's seed generator for tf.train
        checkpoints, so every model variable (seed states included) is listed too.
        """
        return {
            "model": self.model,
            "model_variables": list(self.model.variables),
            "optimizer": self.optimizer,
            "step": self.step,
            "epoch": self.epoch,
            "data_seed": self.data_seed,
            "grad_norm_sums": self.grad_norm_sums,
            "diagnostics": self.diagnostics.checkpointables(),
            "window": self.window_sums,
        }

    @property
    def global_step(self) -> int:
        return int(self.step.numpy())

    @property
    def grad_ratio(self) -> float:
        """Mean gradient norm of W1 over that of WN during training (vanishing: << 1),
        over the logging steps and the step the run stands at (its target)."""
        first, last = (float(v) for v in self.grad_norm_sums.numpy())
        step = self.global_step
        if self._log_every and step % self._log_every:
            if self._end is None or self._end[0] != step:  # resumed at its target: nothing trained
                self._end = (step, self.diagnostics.peek(self.probe, self.probe_labels)["first_last"].numpy())
            first, last = first + float(self._end[1][0]), last + float(self._end[1][1])
        return first / last if last > 0 else float("nan")

    # -- compiled pieces ----------------------------------------------------------

    def _per_example_loss(self, labels, logits):
        if self.objective == "binary":
            return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    def _correct(self, labels, logits):
        if self.objective == "binary":
            predicted = tf.cast(logits > 0.0, tf.float32)  # sigmoid(logits) > 0.5
            return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))
        predicted = tf.argmax(logits, axis=-1, output_type=labels.dtype)
        return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))

    def _train_step(self, features, labels):
        """One optimizer step on this replica's part of the whole batch; returns (its
        share of the mean loss, its correct predictions). On one device: the mean loss."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(features, training=True)
            # Averaged over the whole batch (all replicas), so that summing over replicas (which the
            # optimizer does with the gradients) gives the mean over the whole batch.
            loss = tf.nn.compute_average_loss(
                self._per_example_loss(labels, logits), global_batch_size=self.batch_size
            )
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return loss, self._correct(labels, logits)

    def _hypothesis(self, logits):
        """What the output layer's logits mean: sigmoid (XOR) or softmax (MNIST)."""
        return tf.sigmoid(logits) if self.objective == "binary" else tf.nn.softmax(logits)

    def _train_chunk_fn(self, x, y, order, first, count):
        """Run `count` steps from position `first` of the epoch whose order is given."""
        batch = self.batch_size
        steps_per_epoch = self.steps_per_epoch

        def step(i):
            # The modulo only matters when a call spans epochs of an unshuffled order.
            # A gather, not tf.slice: XLA treats a slice's begin as a compile-time
            # constant and would recompile for every starting position.
            idx = tf.gather(order, ((first + i) % steps_per_epoch) * batch + tf.range(batch))
            return self._train_step(tf.gather(x, idx), tf.gather(y, idx))

        return self._run_steps(step, count)

    def _distributed_chunk_fn(self, iterator, count):
        """The same steps, each one through strategy.run on the replicas' batches."""
        total = tf.distribute.ReduceOp.SUM

        def step(i):
            features, labels = iterator.get_next()
            loss, correct = self.strategy.run(self._train_step, args=(features, labels))
            return self.strategy.reduce(total, loss, axis=None), self.strategy.reduce(total, correct, axis=None)

        return self._run_steps(step, count)

    def _run_steps(self, step, count):
        """`count` calls of `step(i)` in a tf.while_loop.

        Stops early at the first non-finite loss and reports its index (-1: none).
        """

        def body(i, loss_sum, correct_sum, bad):
            loss, correct = step(i)
            bad = tf.where(tf.math.is_finite(loss), bad, i)
            return i + 1, loss_sum + loss, correct_sum + correct, bad

        def not_done(i, loss_sum, correct_sum, bad):
            return tf.logical_and(i < count, bad < 0)

        start = (tf.constant(0), self.window_sums[0], self.window_sums[1], tf.constant(-1))
        done, loss_sum, correct_sum, bad = tf.while_loop(not_done, body, start)
        self.step.assign_add(tf.cast(done, tf.int64))
        self.window_sums.assign(tf.stack([loss_sum, correct_sum]))
        # One pass over the weights per call: a non-finite weight with a finite loss
        # (saturated units) must not reach a checkpoint either.
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in self.model.trainable_variables])
        return done, loss_sum, correct_sum, bad, finite

    def _eval_batch_fn(self, x, y):
        """Loss sum, correct count, and each example's predicted class and its probability."""
        logits = self.model(x, training=False)
        if self.objective == "binary":
            p = tf.sigmoid(logits[:, 0])
            predicted, confidence = tf.cast(p > 0.5, tf.int32), tf.maximum(p, 1.0 - p)
        else:
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            confidence = tf.reduce_max(tf.nn.softmax(logits), axis=-1)
        return tf.reduce_sum(self._per_example_loss(y, logits)), self._correct(y, logits), predicted, confidence

    # -- the loop -------------------------------------------------------------------

    def order(self, epoch: int):
        """The example order of `epoch` (int32 indices), derived from seed and epoch."""
        if self._order_cache is None or self._order_cache[0] != epoch:
            n = len(self.data.x_train)
            perm = epoch_order(self.seed, epoch, n) if self.shuffle else np.arange(n)
            self._order_cache = (epoch, tf.constant(perm.astype(np.int32)))
        return self._order_cache[1]

    def run(
        self,
        target_epochs: int,
        *,
        log_every: int,
        save_every: int = 0,
        evaluate_every: int = 0,
        hooks: Hooks | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Train from the current step to the end of epoch `target_epochs`."""
        hooks = hooks or Hooks()
        progress = progress or Progress(enabled=False)
        self._log_every = log_every
        schedule = Schedule(
            target=target_epochs * self.steps_per_epoch,
            steps_per_epoch=self.steps_per_epoch,
            log_every=log_every,
            save_every=save_every,
            epoch_boundaries=self.shuffle or hooks.on_epoch_end is not None,
            evaluate_every=evaluate_every,
        )
        # A first Ctrl-C is held until the current compiled call and its bookkeeping are
        # done (`_run` checks `interrupted()` between calls); a second one stops at once.
        with held_interrupt() as interrupted:
            self._run(schedule, target_epochs, hooks, progress, interrupted)

    def _run(self, schedule: Schedule, target_epochs, hooks, progress, interrupted):
        spe = self.steps_per_epoch
        per_epoch_bars = spe > 1
        if not per_epoch_bars:
            progress.start(schedule.target, initial=self.global_step, desc="training")
        step = self.global_step
        # The window's sums so far (restored with the checkpoint): what each call adds is
        # the progress bar's.
        shown_loss, shown_correct = (float(v) for v in self.window_sums.numpy())
        log_every = schedule.log_every
        try:
            while step < schedule.target:
                epoch, position = divmod(step, spe)
                if per_epoch_bars and (position == 0 or not progress.active):
                    progress.start(spe, initial=position, desc=f"epoch {epoch + 1}/{target_epochs}")
                stop = schedule.next_stop(step)
                done, loss_sum, correct_sum, bad, finite = self._call_chunk(epoch, position, stop - step)
                done, loss_sum, correct_sum, bad = (t.numpy() for t in (done, loss_sum, correct_sum, bad))
                if bad >= 0 or not math.isfinite(float(loss_sum)):
                    raise DivergedError(
                        f"training diverged: the loss became non-finite at step {step + int(bad) + 1}; "
                        "lower --lr (nothing from that step on was saved)"
                    )
                if not finite:
                    raise DivergedError(
                        f"training diverged: a weight became non-finite between steps {step + 1} and "
                        f"{step + int(done)}; lower --lr (nothing from that step on was saved)"
                    )
                step += int(done)
                window_loss, window_correct = float(loss_sum), float(correct_sum)
                progress.update(
                    int(done),
                    loss=(window_loss - shown_loss) / int(done),
                    acc=(window_correct - shown_correct) / (int(done) * self.batch_size),
                )
                shown_loss, shown_correct = window_loss, window_correct
                events = schedule.events(step)
                if events.log:
                    # A logging step, or a target between two (`_end`: for the result
                    # and its TensorBoard point, never for what follows).
                    regular = step % log_every == 0
                    probe = self.diagnostics.measure if regular else self.diagnostics.peek
                    measured = probe(self.probe, self.probe_labels)
                    if regular:
                        self.grad_norm_sums.assign_add(tf.cast(measured["first_last"], tf.float64))
                    else:
                        self._end = (step, measured["first_last"].numpy())
                    layers = self.diagnostics.to_host(measured, step) if self.diagnostics.full else None
                    window_steps = step - (step - 1) // log_every * log_every  # since the last logging step
                    hooks.on_log(
                        Window(
                            step=step,
                            steps=window_steps,
                            loss=window_loss / window_steps,
                            accuracy=window_correct / (window_steps * self.batch_size),
                            activations=measured["activations"],
                            weights=measured["weights"],
                            layers=layers,
                        )
                    )
                    if regular:
                        self.window_sums.assign([0.0, 0.0])
                        shown_loss, shown_correct = 0.0, 0.0
                if events.evaluate:
                    hooks.on_evaluate(step)
                if events.epoch_end and hooks.on_epoch_end is not None:
                    hooks.on_epoch_end(step // spe, step)
                if events.save:
                    hooks.on_save(step)
                if interrupted():
                    # Ctrl-C arrived during this call: the state is whole again here.
                    raise KeyboardInterrupt
        finally:
            progress.close()

    def _call_chunk(self, epoch: int, position: int, count: int):
        if self.strategy is None:
            return self._train_chunk(
                self.x_train,
                self.y_train,
                self.order(epoch),
                tf.constant(position, tf.int32),
                tf.constant(count, tf.int32),
            )
        iterator = self._distributed_iterator(epoch, position)
        out = self._train_chunk(iterator, tf.constant(count, tf.int32))
        self._iterator_state = (epoch, position + count, iterator)
        return out

    def _distributed_iterator(self, epoch: int, position: int):
        """An iterator over the epoch's whole batches from `position`, split over the
        replicas (and, with several workers, each worker's share of every batch)."""
        if self._iterator_state is not None and self._iterator_state[:2] == (epoch, position):
            return self._iterator_state[2]
        x, y = self.x_train, self.y_train
        batches = (
            tf.data.Dataset.from_tensor_slices(self.order(epoch))
            .batch(self.batch_size, drop_remainder=True)
            .skip(position)
            .map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)))
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return iter(self.strategy.experimental_distribute_dataset(batches.with_options(options)))

    def measure_layers(self):
        """The per-layer diagnostics now (a Measurement), outside any logging step:
        at step 0, before training. Like a logging step's, it starts a new update
        window; the W1/WN gradient-norm sums (training only) are left alone."""
        return self.diagnostics.to_host(self.diagnostics.measure(self.probe, self.probe_labels), self.global_step)

    def sync_epoch(self) -> None:
        """Set the epoch variable from the step (before a checkpoint is written)."""
        self.epoch.assign(self.global_step // self.steps_per_epoch)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy over (x, y), in compiled batches."""
        return self.evaluate_with_predictions(x, y)[:2]

    def evaluate_with_predictions(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Mean loss, accuracy, and every example's predicted class and its probability
        (what the confusion matrix and the most confident mistakes are made of)."""
        loss_sum = correct = 0.0
        predicted, confidence = [], []
        for start in range(0, len(x), EVAL_BATCH):
            loss, right, guess, sure = self._eval_batch(
                tf.constant(x[start : start + EVAL_BATCH]), tf.constant(y[start : start + EVAL_BATCH])
            )
            loss_sum += float(loss)
            correct += float(right)
            predicted.append(guess.numpy())
            confidence.append(sure.numpy())
        return loss_sum / len(x), correct / len(x), np.concatenate(predicted), np.concatenate(confidence)

    def predict_probabilities(self, x: np.ndarray) -> np.ndarray:
        return self._hypothesis(self.model(tf.constant(x), training=False)).numpy()


def _assign_all(targets, sources) -> None:
    targets, sources = list(targets), list(sources)
    if [(v.shape, v.dtype) for v in targets] != [(v.shape, v.dtype) for v in sources]:
        raise ValueError("restart needs a model and optimizer of the same architecture")
    for target, source in zip(targets, sources):
        target.assign(source)


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every
