"""Agents trained across tasks: the leave-target-out pool and the generic training driver.

Any method with a :class:`~catchjax.core.Learner` (today ``catch-meta``) is trained here
by one compiled call of its pure ``train``; :mod:`catchjax.store.checkpoints` saves and restores
the result. ``meta_train`` is the CATCH name for :func:`train`.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from catchjax import methods
from catchjax.benchmarks import tables
from catchjax.benchmarks.tasks import Task, target_columns
from catchjax.core import TrainedAgent
from catchjax.errors import CatchjaxError
from catchjax.runs import compile_cache, numerics, status
from catchjax.runs.sweeps import check_seed
from catchjax.store.checkpoints import load_agent, load_agents, save_agent, save_agents

__all__ = ["TrainedAgent", "for_search", "leave_out_pool", "load_agent", "load_agents",
           "meta_train", "pool_rewards", "save_agent", "save_agents", "train", "train_many"]


def leave_out_pool(task: Task, pool: str | None = None) -> list[str]:
    """Reward columns an agent trained across tasks (``trains_on="pool"``, e.g. CATCH's
    meta-training) is trained on for ``task``: other tasks', leaving the target out
    (SPEC §2).

    Default: what each other named task of the benchmark lends (``TaskDefaults.pool``):
    NB201 target dataset D: the other two datasets' 12-epoch validation accuracy (the
    paper meta-trains on 12-epoch rewards); TransNAS: the other six tasks' reward metric.
    ``pool`` names another of the benchmark's pools (NB201: "12", "12,200", "12,test12")
    or lists columns, comma-separated.
    """
    return tables.training_pool(task.spec.benchmark, task.spec.task, pool)


# the names under which CATCH's agents and pool were first known; both still work
MetaTrainedAgent = TrainedAgent
meta_pool = leave_out_pool


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


def check_pool(task: Task, pool: list[str], leave_target_out: bool = True) -> None:
    """Refuse an empty pool, unknown columns, repeats and (``leave_target_out``) the
    target's own columns."""
    if not pool:
        raise CatchjaxError("the training pool is empty: name at least one reward column")
    for name in pool:
        task.table.column(name)  # a clear error naming the available columns
    if len(set(pool)) != len(pool):
        raise CatchjaxError(f"the training pool names a column twice: {', '.join(pool)}")
    leaked = [c for c in pool if c in target_columns(task)] if leave_target_out else []
    if leaked:
        raise CatchjaxError(
            f"the training pool holds the target's own columns ({', '.join(leaked)}): an agent "
            f"trained on them has seen {task.name}; leave the target out (SPEC §2)"
        )


def _prepare(method: str, task: Task, config, seeds, pool):
    """The checks and inputs shared by :func:`train` and :func:`train_many`, all before
    anything compiles: (method, config, pool columns, pool rewards on device)."""
    m = methods.get(method)
    if m.learner is None:
        raise CatchjaxError(f"method {m.name!r} has no agent to train")
    config = config if config is not None else methods.build(m.name)
    if not m.matches(config):
        raise CatchjaxError(
            f"a {type(config).__name__} with {dict(m.preset)} is needed to train {m.name}"
        )
    if not seeds:
        raise CatchjaxError("training needs at least one seed")
    for seed in seeds:
        check_seed(seed)
    config.validate(task)
    if m.learner.trains_on == "task":
        if pool is None:  # the task's own (shaped) reward
            return m, config, [task.spec.reward_metric], task.arrays.reward[None]
        pool = [c.strip() for c in pool.split(",") if c.strip()] if isinstance(pool, str) \
            else list(pool)
        check_pool(task, pool, leave_target_out=False)
        return m, config, pool, jax.numpy.asarray(pool_rewards(task, pool))
    pool = leave_out_pool(task, pool) if pool is None or isinstance(pool, str) else list(pool)
    check_pool(task, pool)
    return m, config, pool, jax.numpy.asarray(pool_rewards(task, pool))


def training_columns(method: str, task: Task, pool: list[str] | str | None = None) -> list[str]:
    """What ``train(method, task, pool=pool)`` trains on, by column name (for messages)."""
    m = methods.get(method)
    if m.learner is not None and m.learner.trains_on == "task":
        if pool is None:
            return [task.spec.reward_metric]
        return [c.strip() for c in pool.split(",")] if isinstance(pool, str) else list(pool)
    return leave_out_pool(task, pool) if pool is None or isinstance(pool, str) else list(pool)


def _trained(m, config, task: Task, pool, seed, state, seconds, compile_seconds,
             compile_source):
    L, _, K = task.arrays.prefix_mask.shape
    protocol = tables.benchmark_info(task.spec.benchmark).protocol_name(task.spec.protocol)
    return TrainedAgent(state, config, task.spec.benchmark, task.spec.task, list(pool), seed,
                        L, K, seconds=seconds, compile_seconds=compile_seconds,
                        compile_source=compile_source, method=m.name,
                        space=task.space.name, protocol=protocol)


def train(method: str, task: Task, config=None, seed: int = 0,
          pool: list[str] | str | None = None, progress: bool = False) -> TrainedAgent:
    """Train the agent of ``method`` for ``task`` (one compiled call).

    ``config``: the method's config (default: its defaults); ``pool``: reward columns to
    train on, or a pool name. Default: for methods trained across tasks (CATCH) the
    leave-``task``-out pool (:func:`leave_out_pool`); for methods trained on the task (the
    DQN) the task's own shaped reward. ``progress``: status lines with elapsed seconds
    while compiling and training (:mod:`catchjax.runs.status`).
    """
    from catchjax.runs import batched

    m, config, pool, rewards = _prepare(method, task, config, [seed], pool)
    fn = numerics.jit(lambda key, t, r: m.learner.train(config, key, t, r))
    compile_cache.use_default()
    key = jax.random.key(seed)
    t0 = time.perf_counter()
    with status.working(f"compiling {m.name}'s training", enabled=progress):
        compiled, loaded = batched.compile_lowered(fn.lower(key, task.arrays, rewards))
    t1 = time.perf_counter()
    with status.working(f"training the {m.name} agent (seed {seed})", enabled=progress):
        agent, _ = compiled(key, task.arrays, rewards)
        agent = jax.block_until_ready(agent)
    return _trained(m, config, task, pool, seed, agent, time.perf_counter() - t1, t1 - t0,
                    "loaded" if loaded else "compiled")


def train_many(method: str, task: Task, config=None, seeds=(0, 1, 2, 3, 4),
               pool: list[str] | str | None = None, devices=None) -> list[TrainedAgent]:
    """Train one agent per seed in one compiled, vmapped call (agent ``a`` = seed
    ``seeds[a]``), the seeds sharded over ``devices`` (default: all devices, of every
    process after :func:`catchjax.runs.distributed.initialize`; see
    :mod:`catchjax.runs.batched`): a result that rests on trained agents should show their
    spread."""
    from catchjax.runs import batched

    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise CatchjaxError(f"seeds must be a list of integers, got {seeds!r}")
    seeds = list(seeds)
    for s in seeds:
        check_seed(s)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise CatchjaxError("seeds is empty: give at least one seed")
    if len(set(seeds)) != len(seeds):
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        raise CatchjaxError(f"seeds {twice} appear more than once: those agents would be "
                            f"identical copies, not a spread. Give distinct seeds")
    m, config, pool, rewards = _prepare(method, task, config, seeds, pool)
    keys = jax.vmap(jax.random.key)(jax.numpy.asarray(seeds, jax.numpy.int32))
    fn = jax.vmap(lambda key, tr: m.learner.train(config, key, *tr)[0], in_axes=(0, None))
    batch, compile_seconds = batched.compiled(("train_many", m.name, config), lambda: fn, keys,
                                              (task.arrays, rewards), devices)
    source = batched.compile_source(batch, compile_seconds)
    t1 = time.perf_counter()
    states = jax.block_until_ready(batch(keys, (task.arrays, rewards)))
    seconds = (time.perf_counter() - t1) / len(seeds)
    return [_trained(m, config, task, pool, seed, jax.tree.map(lambda x, a=a: x[a], states),
                     seconds, compile_seconds, source)
            for a, seed in enumerate(seeds)]


def for_search(method: str, task: Task, *, init=None, budget=None, seed: int = 0,
               pool=None, log=print, agents: int | None = None, **settings):
    """What a search of ``method`` on ``task`` starts from: ``(config, trained, info)``.

    ``init``: a checkpoint, or a folder of several
    (:func:`~catchjax.store.checkpoints.save_agents`), loaded for ``task`` with ``budget``
    and ``settings`` over its config. Without it, a method that needs an agent trains
    ``agents`` of them now (default: the method's ``Learner.agents``, CATCH 20, seeds
    ``seed``..``seed+agents-1``, one vmapped call), on the pool that leaves the target out
    (the DQN: on the task; ``pool`` chooses), so one command reproduces a CATCH-meta result
    and one training seed does not decide it. ``trained`` is a list of TrainedAgents (a
    sweep shares its trials among them), or None
    for methods without an agent (the config is then built, not validated: the sweep does
    that). ``info``: where the agents came from, for the run's summary."""
    m = methods.get(method)
    methods.check_objectives(m.name, task)  # before an agent is trained for nothing
    if pool and (init or m.learner is None):
        raise CatchjaxError("--pool chooses what an agent is trained on: it goes with a method "
                            "that trains one, without --init")
    if init and m.learner is None:
        trainers = [x.name for x in methods.REGISTRY.values() if x.learner is not None]
        raise CatchjaxError(f"--init goes with a method that adapts an agent: "
                            f"{', '.join(trainers)}")
    if agents is not None and (isinstance(agents, bool) or not isinstance(agents, int)
                               or agents < 1):
        raise CatchjaxError(f"agents must be a positive integer, got {agents!r}")
    if agents is not None and m.learner is None:
        raise CatchjaxError(f"--agents goes with a method that adapts a trained agent; "
                            f"{m.name} has none")
    if m.learner is None or not (init or m.learner.requires_agent):
        return methods.build(m.name, budget, **settings), None, {}
    info = {}
    if init:
        trained = load_agents(init, task, method=m.name, budget=budget, **settings)
        if agents is not None and agents != len(trained):
            raise CatchjaxError(f"--agents {agents}, but {init} holds {len(trained)} agent(s); "
                                f"leave --agents out to use them all")
        if len({repr(t.config) for t in trained}) > 1:
            raise CatchjaxError(f"the agents in {init} were trained with different settings; "
                                f"a sweep adapts agents of one config")
        info["init"] = str(Path(init).absolute())
    else:
        count = m.learner.agents if agents is None else agents
        check_seed(seed + count - 1)
        config = methods.build(m.name, budget, **settings)
        where = (f"on {task.spec.task}" if m.learner.trains_on == "task"
                 else f"on the pool without {task.spec.task}")
        if log is not None:
            log(f"training {count} {m.name} agent{'s' if count > 1 else ''} {where} (seeds "
                f"{seed}..{seed + count - 1}): {', '.join(training_columns(m.name, task, pool))}")
        if count == 1:
            trained = [train(m.name, task, config, seed=seed, pool=pool,  # validates first
                             progress=log is not None)]
        else:
            with status.working(f"compiling and training {count} {m.name} agents in one "
                                f"vmapped call", enabled=log is not None):
                trained = train_many(m.name, task, config, list(range(seed, seed + count)),
                                     pool=pool)
        info["meta_train_seconds"] = sum(t.seconds for t in trained)
    first = trained[0]
    info.update(meta_pool=first.pool, meta_seed=first.seed)
    if len(trained) > 1:
        info["meta_seeds"] = [t.seed for t in trained]
    if first.target_task != task.spec.task or first.benchmark != task.spec.benchmark:
        info["meta_trained_for"] = f"{first.benchmark}/{first.target_task}"
    return first.config, trained, info


def meta_train(task: Task, config=None, seed: int = 0,
               pool: list[str] | None = None) -> TrainedAgent:
    """Meta-train one CATCH agent on the leave-``task``-out pool (one compiled call); its
    context (learned, zero, random) picks the method: catch-meta, catch-zero, catch-random."""
    import dataclasses

    config = config or methods.build("catch-meta")
    if not config.meta_trained:
        config = dataclasses.replace(config, meta_trained=True)
    return train(methods.method_name(config), task, config, seed, pool)
