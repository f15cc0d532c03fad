"""The loop's boundaries (one Schedule) and what a process may reuse (one Reuse)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from dlcli.config import DataSpec, ModelSpec, RunConfig, TrainSpec
from dlcli.core.reuse import Reuse, loop_key
from dlcli.core.train import Schedule


def calls(schedule: Schedule, start: int = 0) -> list[tuple[int, str]]:
    """Every compiled call from `start` as (stop, the events there)."""
    out, step = [], start
    while step < schedule.target:
        step = schedule.next_stop(step)
        e = schedule.events(step)
        out.append((step, "".join(c for c, on in zip("les", (e.log, e.epoch_end, e.save)) if on)))
    return out


def test_mnist_calls_end_at_logs_saves_and_epoch_ends():
    schedule = Schedule(target=16, steps_per_epoch=8, log_every=3, save_every=5)
    assert calls(schedule) == [
        (3, "l"), (5, "s"), (6, "l"), (8, "e"), (9, "l"), (10, "s"), (12, "l"), (15, "ls"), (16, "le")
    ]  # fmt: skip
    # The last step saves nothing itself (the caller writes the final checkpoint).
    assert Schedule(target=10, steps_per_epoch=5, log_every=100, save_every=5).events(10).save is False


def test_a_resumed_run_makes_the_calls_an_uninterrupted_one_makes():
    schedule = Schedule(target=40, steps_per_epoch=8, log_every=3, save_every=7)
    whole = calls(schedule)
    for start in range(1, 40):
        assert calls(schedule, start) == [c for c in whole if c[0] > start], start


def test_xor_runs_many_one_step_epochs_per_call():
    schedule = Schedule(target=20000, steps_per_epoch=1, log_every=1000, epoch_boundaries=False)
    assert [stop for stop, _ in calls(schedule)] == list(range(1000, 20001, 1000))


def base_config(**train) -> RunConfig:
    return RunConfig(task="mnist", name="a", model=ModelSpec(units=32), train=TrainSpec(**train),
                     data=DataSpec(path="/data/digits.npz"))  # fmt: skip


def test_loop_key_ignores_only_what_compiled_functions_do_not_depend_on():
    config = base_config()
    same = [
        replace(config, name="b", logdir="l2", checkpoint_dir="c2"),
        replace(config, model=replace(config.model, init="he")),
        replace(config, train=replace(config.train, seed=5, epochs=9, log_every=7, save_every=3, keep=1)),
        replace(config, train=replace(config.train, lr=0.01)),  # a variable of the optimizer, set by the restart
    ]
    for other in same:
        assert loop_key(other) == loop_key(config)
    different = [
        replace(config, model=replace(config.model, units=64)),
        replace(config, model=replace(config.model, activation="tanh")),
        replace(config, model=replace(config.model, dropout=0.5)),
        replace(config, model=replace(config.model, batchnorm=True)),
        replace(config, train=replace(config.train, optimizer="sgd")),
        replace(config, train=replace(config.train, batch_size=64)),
        replace(config, data=replace(config.data, limit=100)),
        replace(config, data=replace(config.data, path="/data/other.npz")),
        replace(config, task="xor"),
    ]
    for other in different:
        assert loop_key(other) != loop_key(config), other


def test_a_field_added_to_the_config_later_keeps_loops_apart():
    # The key blanks named fields and keeps everything else: a new field is in the key
    # by default. Every field of every spec is either blanked or compared.
    config = base_config()
    key = loop_key(config)
    blanked = {"name", "logdir", "checkpoint_dir", "init", "seed", "lr", "epochs", "log_every", "save_every", "keep"}
    for part in (config.model, config.train, config.data):
        for f in fields(part):
            if f.name not in blanked:
                assert getattr(getattr(key, _part_name(part)), f.name) == getattr(part, f.name)


def _part_name(part) -> str:
    return {ModelSpec: "model", TrainSpec: "train", DataSpec: "data"}[type(part)]


def test_reuse_loads_each_data_set_once_and_keeps_the_recently_used_loops():
    from dlcli.core import reuse as reuse_module

    reuse = Reuse()
    loads = []
    spec = DataSpec(path="/x.npz")
    for _ in range(3):
        reuse.dataset(spec, lambda: loads.append(1) or "data")
    assert loads == [1]
    assert reuse.reusable_loop(base_config()) is None and reuse.loop is None
    reuse.keep_loop(base_config(), "loop")
    assert reuse.reusable_loop(base_config(seed=3)) == "loop"
    assert reuse.reusable_loop(base_config(batch_size=64)) is None
    # One loop per architecture, up to MAX_LOOPS; the least recently used goes first.
    sizes = [base_config(batch_size=b) for b in range(1, reuse_module.MAX_LOOPS + 1)]
    for config in sizes:
        reuse.keep_loop(config, config.train.batch_size)
    assert reuse.reusable_loop(base_config()) is None  # the oldest, gone
    reuse.keep_loop(sizes[0], "used again")  # now the most recent
    reuse.keep_loop(base_config(batch_size=999), "new")
    assert reuse.reusable_loop(sizes[0]) == "used again" and reuse.reusable_loop(sizes[1]) is None
    assert len(reuse.loops) == reuse_module.MAX_LOOPS and reuse.loop[1] == "new"


@pytest.mark.parametrize("module", ["dlcli.core.session", "dlcli.core.train", "dlcli.core.data", "dlcli.comparison.plan", "dlcli.comparison.ledger", "dlcli.comparison.runners", "dlcli.api", "dlcli.results"])
def test_no_module_keeps_runs_or_data_in_globals(module):
    import importlib
    import types

    mod = importlib.import_module(module)
    for name, value in vars(mod).items():
        if name.startswith("__") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        assert not isinstance(value, (list, dict, set)) or name.isupper(), f"{module}.{name} is mutable module state"
        assert not hasattr(value, "cache_info"), f"{module}.{name} is an lru_cache"
