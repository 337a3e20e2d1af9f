"""Agents trained across tasks: the leave-target-out pool and the generic training driver.

Any method with a :class:`~catchjax.core.Learner` (today ``catch-meta``) is trained here
by one compiled call of its pure ``train``; :mod:`catchjax.checkpoints` saves and restores
the result. ``meta_train`` is the CATCH name for :func:`train`.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from catchjax import methods
from catchjax.benchmarks import tables
from catchjax.benchmarks.tasks import Task
from catchjax.checkpoints import load_agent, save_agent
from catchjax.core import TrainedAgent
from catchjax.errors import CatchjaxError
from catchjax.sweeps import check_seed

MetaTrainedAgent = TrainedAgent  # the name under which CATCH agents were first known

__all__ = ["MetaTrainedAgent", "TrainedAgent", "load_agent", "meta_pool", "meta_train",
           "pool_rewards", "save_agent", "train"]


def meta_pool(task: Task) -> list[str]:
    """Reward columns of the meta-training pool, leaving the target out (SPEC §2).

    What each other named task of the benchmark lends (``tables.TaskDefaults.pool``):
    NB201 target dataset D: the other two datasets' validation accuracy at 12 and 200
    epochs. TransNAS: the other six tasks' reward metric in the same space.
    """
    return tables.training_pool(task.spec.benchmark, task.spec.task)


def pool_rewards(task: Task, columns: list[str]) -> np.ndarray:
    """[P, n_archs] float32; architectures the target cannot search get -inf."""
    out = []
    for name in columns:
        col = task.table.column(name).astype(np.float64)
        bad = np.isnan(col) & task.searchable
        if bad.any():
            raise CatchjaxError(
                f"pool metric {name!r} is NaN for {int(bad.sum())} searchable architectures"
            )
        out.append(np.where(task.searchable, col, -np.inf))
    return np.asarray(out, np.float32)


def target_columns(task: Task) -> set[str]:
    """Columns that belong to the target task itself: its reward, its report metrics and
    what it would lend to other pools. Training on any of them is not transfer."""
    own = {task.spec.reward_metric, *task.spec.report_metrics}
    info = tables.BENCHMARKS[task.spec.benchmark]
    if task.spec.task in info.tasks:
        own.update(info.tasks[task.spec.task].pool_columns)
    return own


def check_pool(task: Task, pool: list[str]) -> None:
    """Refuse an empty pool, unknown columns, repeats and the target's own columns."""
    if not pool:
        raise CatchjaxError("the training pool is empty: name at least one reward column")
    for name in pool:
        task.table.column(name)  # a clear error naming the available columns
    if len(set(pool)) != len(pool):
        raise CatchjaxError(f"the training pool names a column twice: {', '.join(pool)}")
    leaked = [c for c in pool if c in target_columns(task)]
    if leaked:
        raise CatchjaxError(
            f"the training pool holds the target's own columns ({', '.join(leaked)}): an agent "
            f"trained on them has seen {task.name}; leave the target out (SPEC §2)"
        )


def train(method: str, task: Task, config=None, seed: int = 0,
          pool: list[str] | None = None) -> TrainedAgent:
    """Train the agent of ``method`` on the pool for target ``task`` (one compiled call).

    ``config``: the method's config (default: its defaults); ``pool``: reward columns to
    train on (default: the leave-``task``-out pool, :func:`meta_pool`).
    """
    m = methods.get(method)
    if m.learner is None:
        raise CatchjaxError(f"method {m.name!r} has no agent to train")
    config = config if config is not None else methods.make_config(m.name)
    if not m.matches(config):
        raise CatchjaxError(
            f"a {type(config).__name__} with {dict(m.preset)} is needed to train {m.name}"
        )
    check_seed(seed)
    config.validate(task)
    pool = list(pool) if pool is not None else meta_pool(task)
    check_pool(task, pool)
    rewards = jax.numpy.asarray(pool_rewards(task, pool))
    fn = jax.jit(lambda key, t, r: m.learner.train(config, key, t, r))
    key = jax.random.key(seed)
    t0 = time.perf_counter()
    compiled = fn.lower(key, task.arrays, rewards).compile()
    t1 = time.perf_counter()
    agent, _ = compiled(key, task.arrays, rewards)
    agent = jax.block_until_ready(agent)
    L, _, K = task.arrays.prefix_mask.shape
    return TrainedAgent(
        agent, config, task.spec.benchmark, task.spec.task, list(pool), seed, L, K,
        seconds=time.perf_counter() - t1, compile_seconds=t1 - t0, method=m.name,
        space=task.space.name,
    )


def meta_train(task: Task, config=None, seed: int = 0,
               pool: list[str] | None = None) -> TrainedAgent:
    """Meta-train one CATCH agent on the leave-``task``-out pool (one compiled call)."""
    from catchjax import catch

    config = config or catch.CatchConfig(meta_trained=True)
    if config.context != "learned":
        raise CatchjaxError("meta-training uses the learned context (context='learned')")
    if not config.meta_trained:
        import dataclasses

        config = dataclasses.replace(config, meta_trained=True)
    return train("catch-meta", task, config, seed, pool)
