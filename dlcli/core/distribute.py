"""Training on more than one device with TensorFlow's own engine (tf.distribute).

`default` trains on one device through the XLA-compiled loop. `mirrored` copies the
model onto every local GPU (or the devices named, or N logical CPU devices with
`--cpu-replicas N` to try it on a laptop) and averages gradients over the global
batch. `multi-worker` does the same across machines, from the standard `TF_CONFIG`.
The training loop is the same code in every case (`dlcli.core.train`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from dlcli.errors import ConfigError

STRATEGIES = ("default", "mirrored", "multi-worker")


@dataclass(frozen=True)
class DistributeSpec:
    """How a run is spread over devices; may change between a run and its resume."""

    strategy: str = "default"
    devices: tuple = ()  # mirrored: e.g. ("/gpu:0", "/gpu:1"); empty = all local GPUs (or CPUs)
    cpu_replicas: int = 0  # split the CPU into N logical devices (mirrored, for trying it out)

    def validate(self) -> "DistributeSpec":
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown --strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.cpu_replicas < 0:
            raise ConfigError(f"--cpu-replicas must be >= 0, got {self.cpu_replicas}")
        if self.strategy == "default" and (self.devices or self.cpu_replicas > 1):
            raise ConfigError("--devices and --cpu-replicas need --strategy mirrored (or multi-worker)")
        if self.strategy == "multi-worker":
            cluster_config()
        return self

    @property
    def distributed(self) -> bool:
        return self.strategy != "default"


def cluster_config() -> dict:
    """TF_CONFIG, checked: {"cluster": {"worker": [...], ...}, "task": {"type", "index"}}."""
    raw = os.environ.get("TF_CONFIG")
    how = "set TF_CONFIG on every worker (see docs/guide.md, 'Training on several devices')"
    if not raw:
        raise ConfigError(f"--strategy multi-worker needs the TF_CONFIG environment variable; {how}")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); {how}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
        isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v) for v in cluster.values()
    ):
        raise ConfigError(f'TF_CONFIG needs "cluster": {{"worker": ["host:port", ...]}}; {how}')
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise ConfigError(f'TF_CONFIG needs "task": {{"type": "worker", "index": N}} naming a cluster member; {how}')
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ConfigError(f"TF_CONFIG task index {task['index']} is outside its {task['type']} list; {how}")
    return config


def is_chief_task() -> bool:
    """The chief writes the run; in a cluster without one, worker 0 is the chief."""
    config = cluster_config()
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def make_strategy(spec: DistributeSpec):
    """The tf.distribute strategy for `spec` (None: the single-device XLA path)."""
    from dlcli.core.tf_setup import tensorflow

    tf = tensorflow()
    if spec.strategy == "default":
        return None
    if spec.strategy == "multi-worker":
        from dlcli.core import tf_setup

        if tf_setup.RUNTIME.multi_worker_strategy is None:
            raise RuntimeError("multi-worker strategy requested after TensorFlow started")
        return tf_setup.RUNTIME.multi_worker_strategy
    devices = list(spec.devices)
    if not devices:
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    try:
        return tf.distribute.MirroredStrategy(devices)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot mirror over {', '.join(devices)}: {str(exc).splitlines()[0]}") from None
