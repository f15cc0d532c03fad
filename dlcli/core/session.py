"""Start and resume runs: data + model + loop + checkpoints + TensorBoard, wired once.

`train(config)` and `resume(folder)` are the two entry points every command uses
(`xor`, `mnist`, `compare` through `train`; `resume` through `resume`). Both end in
`_fit`, so a resumed run goes through exactly the code an uninterrupted one does.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dlcli.config import TEST_SUBSET, RunConfig
from dlcli.core import data as datasets
from dlcli.core import models, pictures, summaries
from dlcli.core.distribute import DistributeSpec, is_chief_task, make_strategy
from dlcli.core.progress import Progress
from dlcli.core.reuse import Reuse
from dlcli.core.runs import RunFolder, checkpoint_paths  # noqa: F401  (checkpoint_paths: session's name too)
from dlcli.core.tf_setup import tensorflow
from dlcli.core.train import Hooks, TrainingLoop, Window
from dlcli.errors import CheckpointError, DivergedError, RunError, TrainingInterrupted

tf = tensorflow()

log = logging.getLogger("dlcli")
PROBE_EXAMPLES = 256  # training examples the histograms and per-layer diagnostics are measured on


@dataclass
class Result:
    """What a finished run reports (the `--json` object is `summary()`)."""

    run: str
    accuracy: float
    loss: float
    epochs: int
    steps: int
    train_seconds: float
    checkpoint_dir: str
    logdir: str
    params: int = 0
    grad_ratio: float = float("nan")
    seconds_per_epoch: float = float("nan")
    trained_steps: int = 0  # steps this process ran (0: the run was already finished)
    steps_per_epoch: int = 1
    task: str = "mnist"
    truth_table: list = field(default_factory=list)  # XOR only
    boundary: object = None  # XOR: pictures.Boundary of the final network (for --plot)
    mistakes: object = None  # MNIST: MistakePictures of the final test pass (for --plot)
    # Per-layer diagnostics (core.diagnostics) at the run's first and last logged steps:
    # {"first": {"step", "layers": {layer: {quantity: value}}} or None, "last": ...}.
    diagnostics: dict | None = None

    def summary(self) -> dict:
        keys = ("run", "accuracy", "loss", "epochs", "steps", "train_seconds", "checkpoint_dir", "logdir")
        return {k: getattr(self, k) for k in keys}


def load_data(config: RunConfig, reuse: Reuse) -> datasets.Dataset:
    """The run's data set; read and scaled once per `reuse` (compare's many runs)."""
    d = config.data
    if config.task == "xor":
        return reuse.dataset(d, datasets.xor)
    return reuse.dataset(d, lambda: datasets.load(d.dataset, d.path, d.limit))


def train(
    config: RunConfig,
    *,
    auto_name: bool = False,
    progress: Progress | None = None,
    hparams: dict | None = None,
    distribute: DistributeSpec | None = None,
    reuse: Reuse | None = None,
    images: bool = True,
    scope: str = "",
    layers: bool = True,
    epochs: int | None = None,
) -> Result:
    """Train a new run from step 0 (after validating everything it can beforehand).

    `epochs`: stop there instead of at `config`'s epochs (compare --prune's first
    rung); `resume(folder, epochs=...)` continues it, exactly as if it had trained
    straight through. Its learning-curve points are those of the whole run.

    `hparams`: values to show in TensorBoard's HParams dashboard (compare's variants).
    `scope`: a prefix of every scalar tag (compare's runs: their comparison's charts).
    `distribute`: devices and strategy (one device by default).
    `reuse`: data and compiled loop shared with the caller's other runs (see Reuse).
    `images`: TensorBoard images (XOR's boundary, MNIST's mistakes); off only to
    measure what they cost. `layers`: the per-layer diagnostics (core.diagnostics);
    off only to measure what they cost (the probe then measures what it did before
    them: histograms and the W1/WN gradient norms).
    """
    config.validate()
    if epochs is not None and epochs < 1:
        raise RunError(f"a run trains at least 1 epoch, got {epochs}")
    distribute = _check_distribute(distribute, config)
    reuse = reuse or Reuse()
    if not _writes_the_run(distribute):
        return _as_helper_worker(lambda tmp: _train(
            replace(config, checkpoint_dir=f"{tmp}/checkpoints", logdir=f"{tmp}/logs"),
            auto_name=auto_name, progress=progress, hparams=hparams, distribute=distribute, reuse=reuse, images=images,
            scope=scope, layers=layers, epochs=epochs,
        ))  # fmt: skip
    return _train(config, auto_name=auto_name, progress=progress, hparams=hparams, distribute=distribute, reuse=reuse,
                  images=images, scope=scope, layers=layers, epochs=epochs)  # fmt: skip


def _train(config, *, auto_name, progress, hparams, distribute, reuse, images, scope, layers=True,
           epochs=None) -> Result:  # fmt: skip
    data = load_data(config, reuse)
    _check_batch(config, data)
    run = RunFolder.create(config, auto_name=auto_name, scope=scope, target_epochs=epochs)
    try:
        config = run.config  # the name may have gained a suffix
        session = _Session(run, config, data, distribute, reuse, images, layers)
        session.begin(hparams)
    except BaseException:  # Ctrl-C included: the command says to run it again
        run.unlock()
        _remove_run(run)  # nothing half-made stays behind
        raise
    return session.fit(epochs or config.train.epochs, progress)


def resume(
    path: Path,
    *,
    epochs: int | None = None,
    progress: Progress | None = None,
    distribute: DistributeSpec | None = None,
    reuse: Reuse | None = None,
) -> Result:
    """Continue the run in `path` to its target (or to `epochs`, raising the target),
    on the devices `distribute` names (whatever the run was trained on before)."""
    run = RunFolder.open(Path(path))
    distribute = _check_distribute(distribute, run.config)
    reuse = reuse or Reuse()
    if not _writes_the_run(distribute):
        def helper(tmp):
            copy = run.copy_to(Path(tmp) / "run", logdir=Path(tmp) / "logs")
            return _resume(copy, epochs=epochs, progress=progress, distribute=distribute, reuse=reuse)

        return _as_helper_worker(helper)
    return _resume(run, epochs=epochs, progress=progress, distribute=distribute, reuse=reuse)


def _resume(run: RunFolder, *, epochs, progress, distribute, reuse) -> Result:
    run, target = RunFolder.for_resume(run.path, epochs)
    config = run.config
    run.lock()
    try:
        data = load_data(config, reuse)
        if run.starts_over:
            # Killed before its first checkpoint: whatever it logged goes, and the run
            # starts at step 0 from its record, as it would have (hparams are compare's,
            # whose run folders are never resumed this way).
            shutil.rmtree(run.logdir, ignore_errors=True)
            run.logdir.mkdir(parents=True, exist_ok=True)
            session = _Session(run, config, data, distribute, reuse)
            session.begin()
        else:
            session = _Session(run, config, data, distribute, reuse)
            session.restore(target)
        run.update(target_epochs=target, distribute=session.distribute_record, status="running")
    except BaseException:
        run.unlock()
        raise
    return session.fit(target, progress)


def _training_loop(
    config: RunConfig, data: datasets.Dataset, strategy, reuse: Reuse, layers: bool = True
) -> TrainingLoop:
    """The model, optimizer and loop of a new run (before any checkpoint is restored).

    When `reuse` holds the loop of an earlier single-device run whose configuration
    differs only in what the compiled functions do not depend on (compare's variants
    that differ in their initializer, every seed of a variant), that loop is restarted
    from this run's initial weights instead: the same state a new loop would have,
    without tracing and compiling the training step again (~1 s per run).
    """
    train = config.train
    objective = "binary" if config.task == "xor" else "categorical"
    outputs = 1 if objective == "binary" else data.num_classes
    loop = reuse.reusable_loop(config) if strategy is None else None
    if loop is not None and loop.diagnostics.full != layers:
        loop = None
    # Under a strategy, variables must be made inside its scope (mirrored copies).
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        # The model's weights and dropout masks follow from the seed explicitly; the
        # process-wide seeds are set for anything else random Keras might do.
        tf.keras.utils.set_random_seed(train.seed)
        model = models.mlp(
            config.model, data.input_shape, outputs, seed=train.seed, normal_stddev=config.normal_stddev,
            xla=strategy is None,
        )  # fmt: skip
        optimizer = models.optimizer(train.optimizer, train.lr)
        if loop is not None:
            loop.restart(model, optimizer, train.seed)
            reuse.keep_loop(config, loop)  # the most recently used now
            return loop
        loop = TrainingLoop(
            model,
            optimizer,
            data,
            objective=objective,
            batch_size=train.batch_size,
            seed=train.seed,
            probe_examples=PROBE_EXAMPLES,
            strategy=strategy,
            tensors=reuse.training_tensors(config.data, lambda: TrainingLoop.tensors_of(data)),
            layer_diagnostics=layers,
        )
    if strategy is None:
        reuse.keep_loop(config, loop)
    return loop


class _Session:
    def __init__(
        self, run: RunFolder, config: RunConfig, data: datasets.Dataset, distribute: DistributeSpec, reuse: Reuse,
        images: bool = True, layers: bool = True,
    ):  # fmt: skip
        self.run, self.config, self.data = run, config, data
        strategy = make_strategy(distribute)
        self.loop = _training_loop(config, data, strategy, reuse, layers)
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        # For run.json once the session is known to start (a failed resume writes nothing).
        self.distribute_record = {"strategy": distribute.strategy, "replicas": replicas}
        self.checkpoint = tf.train.Checkpoint(**self.loop.checkpointables())
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(run.path), max_to_keep=config.train.keep, checkpoint_name="ckpt"
        )
        self.summaries = summaries.Summaries(run.logdir, self.loop.model, scope=run.scope)
        self.images = images
        self._painter = pictures.BoundaryPainter(data.y_test[:, 0]) if images and config.task == "xor" else None
        self._last_eval: tuple | None = None  # (step, loss, accuracy, predicted, confidence, mistakes)
        self._last_layers = None  # the latest logging step's diagnostics.Measurement

    def restore(self, target_epochs: int | None = None) -> None:
        """Restore the newest readable checkpoint; older ones stand in for a torn one.
        `target_epochs`: where the run goes from here (a target raised past a step
        between two logging steps drops the point logged there: see truncate_after).

        A checkpoint that cannot be read (truncated, corrupted) is reported and left
        where it is: nothing is deleted to "repair" the folder.
        """
        candidates = checkpoint_paths(self.run.path)
        if not candidates:
            raise CheckpointError(f"{self.run.path} holds no checkpoint to resume from")
        problems = []
        for path in candidates:
            try:
                missing = [key for key in OPTIONAL_PARTS if not _holds(path, key)]
                checkpoint = self._checkpoint_without(missing) if missing else self.checkpoint
                status = checkpoint.restore(path)
                status.assert_existing_objects_matched()
            except Exception as exc:  # OpError, AssertionError, IndexError on torn files...
                reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                problems.append(f"{Path(path).name}: {reason}")
                continue
            finally:
                # The restore status keeps a deleter that fails noisily at interpreter exit.
                status = None
                gc.collect()
            for problem in problems:
                log.warning("checkpoint %s is unreadable; falling back to %s", problem, Path(path).name)
            if "diagnostics" in missing:
                # An older dlcli's checkpoint, without the kernels at the last logging
                # step: the next update ratio is measured from here.
                self.loop.diagnostics.restart()
            # Whatever the interrupted process logged after this checkpoint is logged again.
            step = self.loop.global_step
            continues = target_epochs is not None and target_epochs * self.loop.steps_per_epoch > step
            summaries.truncate_after(self.run.logdir, step, and_at=self._logged_for_the_end(step) if continues else None)
            return
        raise CheckpointError(
            f"cannot restore any checkpoint in {self.run.path} ({'; '.join(problems)})"
        )

    def _logged_for_the_end(self, step: int) -> dict:
        """{split: tag predicate} of what a run that ended at `step` logged there only
        because it ended there: a training window between two logging steps (train)
        and a learning-curve point between two (the test subset)."""
        out = {}
        if step % self.config.train.log_every:
            out["train"] = lambda tag: True
        every = self._evaluate_every()
        if every and step % every:
            out["test"] = lambda tag: tag.endswith(("subset/loss", "subset/accuracy"))
        return out

    def _checkpoint_without(self, missing: list[str]):
        """A checkpoint of an older dlcli lacks parts added since (OPTIONAL_PARTS)."""
        parts = {k: v for k, v in self.loop.checkpointables().items() if k not in missing}
        return tf.train.Checkpoint(**parts)

    def begin(self, hparams: dict | None = None) -> None:
        """Step 0 of a new run: its diagnostics before any training, its record, and
        checkpoint 0 (every run is resumable from its start)."""
        at_start = self.log_layers_at_start()
        self.run.update(data_source=self.data.source, status="running", distribute=self.distribute_record,
                        layers_at_start=at_start)  # fmt: skip
        if hparams:
            self.summaries.hparams(hparams)
        self.summaries.flush()  # the step-0 diagnostics belong to checkpoint 0
        self.manager.save(checkpoint_number=0)

    def log_layers_at_start(self) -> dict | None:
        """The per-layer diagnostics at step 0, before any training (to TensorBoard);
        returns them for run.json."""
        if not self.loop.diagnostics.full:
            return None
        measurement = self.loop.measure_layers()
        self.summaries.layers(measurement)
        return _finite_record(measurement.record())

    def fit(self, target_epochs: int, progress: Progress | None) -> Result:
        loop, run, train_cfg = self.loop, self.run, self.config.train
        start_step = loop.global_step
        earlier = run.record.get("result") or {}  # a finished run's, when it is resumed
        # XOR's test set is its training set: the train series says it all.
        on_epoch_end = None if self.config.task == "xor" else self._on_epoch_end
        hooks = Hooks(
            on_log=self._on_log, on_epoch_end=on_epoch_end, on_save=self._save, on_evaluate=self._on_evaluate
        )
        started = time.perf_counter()
        try:
            loop.run(
                target_epochs,
                log_every=train_cfg.log_every,
                save_every=train_cfg.save_every,
                evaluate_every=self._evaluate_every(),
                hooks=hooks,
                progress=progress,
            )
            trained = loop.global_step - start_step
            if trained:
                self._save(loop.global_step)
            seconds = time.perf_counter() - started
            if not trained and earlier.get("steps") == loop.global_step and _is_number(earlier.get("train_seconds")):
                # Nothing trained now (a finished run resumed, or read back by compare
                # after a kill before its ledger line): its time is the one it took.
                seconds = float(earlier["train_seconds"])
        except DivergedError:
            run.update(status="diverged")
            raise
        except KeyboardInterrupt:
            # The variables hold the state after the last completed compiled call (the
            # step counter lives beside the weights), so it can be saved as it is. A
            # second Ctrl-C during the save stops at once; the previous checkpoint stays.
            step = loop.global_step
            if step not in self._saved_steps():
                self._save(step)
            run.update(status="interrupted")
            what = f"interrupted at step {step} of run {run.name}; checkpoint saved"
            raise TrainingInterrupted(f"{what}, continue with `dlcli resume {display_path(run.path)}`",
                                      what=what) from None  # fmt: skip
        finally:
            self.summaries.close()
            run.unlock()
        try:
            return self._result(target_epochs, trained, seconds)
        except KeyboardInterrupt:
            what = f"interrupted after run {run.name} finished training (step {loop.global_step}, checkpoint saved)"
            raise TrainingInterrupted(f"{what}; `dlcli resume {display_path(run.path)}` evaluates it and records "
                                      "its result", what=what) from None  # fmt: skip

    def _result(self, target_epochs: int, trained: int, seconds: float) -> Result:
        """The finished run's evaluation, pictures and record."""
        loop, run = self.loop, self.run
        if self._last_eval is not None and self._last_eval[0] == loop.global_step:
            # The last epoch's test pass: the same weights.
            loss, accuracy, predicted, confidence, mistakes = self._last_eval[1:]
        else:
            loss, accuracy, predicted, confidence = loop.evaluate_with_predictions(self.data.x_test, self.data.y_test)
            mistakes = None
        epochs_run = trained / loop.steps_per_epoch
        result = Result(
            run=run.name,
            accuracy=accuracy,
            loss=loss,
            epochs=target_epochs,
            steps=loop.global_step,
            train_seconds=round(seconds, 3),
            checkpoint_dir=display_path(run.path),
            logdir=display_path(run.logdir),
            params=models.parameter_count(loop.model),
            grad_ratio=loop.grad_ratio,
            seconds_per_epoch=seconds / epochs_run if trained else float("nan"),
            trained_steps=trained,
            steps_per_epoch=loop.steps_per_epoch,
            task=self.config.task,
            diagnostics=self._diagnostics(),
        )
        if self.config.task == "xor":
            result.truth_table = truth_table(self.data, loop.predict_probabilities(self.data.x_test))
            result.boundary = (self._painter or pictures.BoundaryPainter()).boundary(loop.model)
        else:
            result.mistakes = mistakes or mistake_pictures(self.data, predicted, confidence)
        if trained or run.record.get("status") != "finished":
            record = {k: v for k, v in result.summary().items() if k not in ("checkpoint_dir", "logdir")}
            record.update(params=result.params, grad_ratio=_finite_or_none(result.grad_ratio),
                          diagnostics=result.diagnostics)  # fmt: skip
            run.update(status="finished", result=record)
        return result

    # -- hooks ------------------------------------------------------------------------

    def _diagnostics(self) -> dict | None:
        """{"first", "last"} per-layer diagnostics for the result: the first from
        run.json (written at step 0), the last from this process's last logging step
        or, when this process trained nothing, from the run's earlier result."""
        if self._last_layers is None:
            return (self.run.record.get("result") or {}).get("diagnostics")
        return {"first": self.run.record.get("layers_at_start"), "last": _finite_record(self._last_layers.record())}

    def _on_log(self, window: Window) -> None:
        self.summaries.scalars("train", window.step, loss=window.loss, accuracy=window.accuracy)
        self.summaries.histograms(window.step, window.activations, window.weights)
        if window.layers is not None:
            self.summaries.layers(window.layers)
            self._last_layers = window.layers
        if self._painter is not None:  # XOR's boundary forming, in the Images tab
            self.summaries.images("train", window.step, self._painter.images(self.loop.model),
                                  description=BOUNDARY_DESCRIPTION)  # fmt: skip

    def _evaluate_every(self) -> int:
        """Steps between learning-curve points: `eval_points` spread over the run's
        configured epochs (fixed, so a resumed or extended run keeps the same points,
        and a run stopped at a `compare --prune` rung has the whole run's first ones)."""
        points = self.config.train.eval_points
        if not points or self.config.task == "xor":  # XOR's train series is its test curve
            return 0
        return max(1, self.config.train.epochs * self.loop.steps_per_epoch // points)

    def _on_evaluate(self, step: int) -> None:
        """Loss and accuracy on a fixed test subset: cheap enough for many points a run."""
        n = TEST_SUBSET
        loss, accuracy = self.loop.evaluate(self.data.x_test[:n], self.data.y_test[:n])
        description = f"on the first {min(n, len(self.data.x_test))} test examples"
        self.summaries.scalars("test", step, description=description, **{"subset/loss": loss, "subset/accuracy": accuracy})

    def _on_epoch_end(self, epoch: int, step: int) -> None:
        loss, accuracy, predicted, confidence = self.loop.evaluate_with_predictions(self.data.x_test, self.data.y_test)
        self.summaries.scalars("test", step, loss=loss, accuracy=accuracy)
        # What the model gets wrong: the confusion matrix and its surest mistakes (kept
        # with the evaluation: the run's final result reuses them).
        mistakes = mistake_pictures(self.data, predicted, confidence) if self.images else None
        self._last_eval = (step, loss, accuracy, predicted, confidence, mistakes)
        if mistakes is not None:
            self.summaries.images("test", step, mistakes.images, description=mistakes.description)
            self.summaries.text("test", step, "confusion_matrix_counts", mistakes.markdown)

    def _saved_steps(self) -> set[int]:
        return {int(path.rsplit("-", 1)[1]) for path in self.manager.checkpoints}

    def _save(self, step: int) -> None:
        # Flush first: the event files then hold everything up to the checkpoint.
        try:
            self.summaries.flush()
            self.loop.sync_epoch()
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as exc:
            raise RunError(
                f"cannot write the checkpoint at step {step} in {display_path(self.run.path)}: "
                f"{_os_reason(exc)}; earlier checkpoints are intact: free space or make the folder "
                "writable (or copy it elsewhere), then `dlcli resume` it"
            ) from None


def _check_distribute(distribute: DistributeSpec | None, config: RunConfig) -> DistributeSpec:
    distribute = (distribute or DistributeSpec()).validate()
    if distribute.distributed and config.task != "mnist":
        raise RunError(f"--strategy {distribute.strategy} is for mnist runs; {config.task} trains on one device")
    return distribute


def _writes_the_run(distribute: DistributeSpec) -> bool:
    """Only one process writes a run: the chief of a multi-worker cluster."""
    return distribute.strategy != "multi-worker" or is_chief_task()


def _as_helper_worker(work):
    """Run `work(tmp)` as a non-chief worker: the same training, collective for
    collective, but its checkpoints and logs go to a temporary folder it removes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dlcli-worker-") as tmp:
        return work(tmp)


BOUNDARY_DESCRIPTION = (
    "The network's output over the input square (orange 0, white 0.5, blue 1), the 0.5 contour in black, "
    "rings on the four XOR points in their target's colour; `boundary/hidden1_units`: what each unit of the "
    "first hidden layer sees."
)


@dataclass
class MistakePictures:
    """What a test pass got wrong: as TensorBoard images and as data for --plot."""

    matrix: np.ndarray  # counts[true, predicted]
    images: dict  # {"confusion_matrix": RGB, "mistakes": RGB}
    description: str
    markdown: str  # the matrix as a table (TensorBoard's Text tab)
    digits: np.ndarray  # the most confidently misclassified test images, surest first
    true: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray


def mistake_pictures(data: datasets.Dataset, predicted: np.ndarray, confidence: np.ndarray) -> MistakePictures:
    """The confusion matrix (image and table) and the most confidently misclassified digits."""
    matrix = pictures.confusion_matrix(data.y_test, predicted, data.num_classes)
    worst = pictures.most_confident_mistakes(data.y_test, predicted, confidence)
    images = {
        "confusion_matrix": pictures.confusion_image(matrix),
        "mistakes": pictures.mistakes_image(data.x_test[worst], data.y_test[worst], predicted[worst]),
    }
    header = "| true \\ predicted | " + " | ".join(map(str, range(len(matrix)))) + " |"
    rule = "|---" * (len(matrix) + 1) + "|"
    rows = [f"| **{t}** | " + " | ".join(str(c) for c in row) + " |" for t, row in enumerate(matrix)]
    description = (
        f"confusion_matrix: rows are the true digit, columns the prediction, over the {len(data.y_test)} test "
        f"examples. mistakes: the {len(worst)} wrong predictions the model was surest of, captioned true>predicted "
        f"({', '.join(f'{t}>{p} ({c:.0%})' for t, p, c in zip(data.y_test[worst], predicted[worst], confidence[worst]))})."
    )
    return MistakePictures(matrix, images, description, "\n".join([header, rule, *rows]), data.x_test[worst],
                           data.y_test[worst], predicted[worst], confidence[worst])  # fmt: skip


def truth_table(data: datasets.Dataset, probabilities: np.ndarray) -> list[dict]:
    rows = []
    for (x1, x2), (target,), (p,) in zip(data.x_test, data.y_test, probabilities):
        rows.append(
            {"x1": int(x1), "x2": int(x2), "target": int(target), "hypothesis": float(p), "prediction": int(p > 0.5)}
        )
    return rows


def _check_batch(config: RunConfig, data: datasets.Dataset) -> None:
    n = len(data.x_train)
    if config.train.batch_size > n:
        raise RunError(
            f"--batch-size {config.train.batch_size} is larger than the {n} training examples; lower it"
        )


def _remove_run(run: RunFolder) -> None:
    shutil.rmtree(run.path, ignore_errors=True)
    logdir = run.logdir
    if logdir.is_dir() and not any(logdir.rglob("events.out.tfevents.*")):
        shutil.rmtree(logdir, ignore_errors=True)


def display_path(path: Path) -> str:
    """`path` relative to the working folder when it lies inside it, else absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def _os_reason(exc: Exception) -> str:
    """The operating system's words from a TensorFlow or OS error ("No space left on device")."""
    text = getattr(exc, "strerror", None) or getattr(exc, "message", None) or str(exc)
    for reason in ("No space left on device", "Read-only file system", "Permission denied", "Disk quota exceeded"):
        if reason in text:
            return reason
    return text.strip().splitlines()[0][-160:] if text.strip() else type(exc).__name__


# Checkpoint parts a run of an older dlcli lacks: "diagnostics" (the update ratio's W_p,
# 0.3.0) and "window" (the logging window's sums, 0.3.2): restored without them, the
# run measures its next window from where it resumes.
OPTIONAL_PARTS = ("diagnostics", "window")


def _holds(checkpoint: str, key: str) -> bool:
    """Whether the checkpoint at prefix `checkpoint` has objects under `key`."""
    return any(name.startswith(f"{key}/") for name, _ in tf.train.list_variables(checkpoint))


def _finite_record(record: dict) -> dict:
    """A diagnostics record as plain JSON numbers (Measurement keeps finite values only)."""
    layers = {layer: {q: float(v) for q, v in values.items()} for layer, values in record["layers"].items()}
    return {"step": int(record["step"]), "layers": layers}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _finite_or_none(value: float):
    return value if np.isfinite(value) else None
