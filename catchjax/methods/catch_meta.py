"""CATCH's meta-training (paper Algorithm 1, lines 1-13): searches on tasks drawn from a
pool of other tasks' rewards, one after another, each continuing the agent (networks and
Adam state) the last one left; with ``meta_batch`` > 1, several searches in lockstep on
one shared agent (PEARL's meta-batch). The search itself is :mod:`catchjax.methods.catch`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from catchjax import ppo, replay
from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import run_on_table
from catchjax.methods.catch import (
    STEPPER,
    AgentState,
    CatchConfig,
    adam_step,
    ask,
    catch_loss,
    catch_search,
    entropy_coef_at,
    init_agent,
    make_networks,
    n_seeds,
    record,
    start_search,
    tell,
    update_inputs,
)


def search_and_learn(config: CatchConfig, key, task: TaskArrays, agent=None):
    """Algorithm 1 lines 3-12 on one task: returns (SearchTrace, the updated AgentState)."""
    stepper = dataclasses.replace(STEPPER, start=start_search)  # no optimizer reset
    trace, state = run_on_table(stepper, config, key, task, agent)
    return trace, AgentState(state.params, state.opt_state)



def lockstep_search_and_learn(config: CatchConfig, keys, task: TaskArrays, rewards, agent):
    """Algorithm 1 lines 3-12 on B tasks at once with one shared agent (PEARL's
    meta-batch, ``meta_batch`` > 1): every search epoch each search proposes from the
    shared agent and records its result; each of the ``updates_per_epoch`` Adam steps is on
    the mean over the B searches of Eq. 2, so the encoder is trained to tell tasks of the
    same step apart. ``keys`` [B], ``rewards`` [B, n_archs]. Returns (rows [B, budget],
    the updated AgentState)."""
    nets = make_networks(config, *task.prefix_mask.shape[::2])
    n0 = n_seeds(config)

    def on(r):
        return task.replace(reward=r)

    def seeded(key, r):
        state = start_search(config, key, on(r), agent)
        rows, state, _ = ask(config, state, on(r), n0, True)
        return tell(config, state, on(r), jnp.arange(n0), r[rows], True)[0]

    states = jax.vmap(seeded)(keys, rewards)

    def epoch(carry, i):
        states, params, opt_state = carry

        def propose_and_record(state, r):
            rows, state, _ = ask(config, state.replace(params=params), on(r), 1, False)
            state = record(config, state, on(r), i, r[rows[0]], False)
            return state, update_inputs(config, state)

        states, (k_upd, beta) = jax.vmap(propose_and_record)(states, rewards)
        coef = entropy_coef_at(config, i - n0, config.budget - n0)  # same epoch in every search

        def update(c, u):
            params, opt_state, memories = c

            def grad_one(history, memory, k, b, r):
                return jax.grad(catch_loss, argnums=2, has_aux=True)(
                    config, nets, params, history, memory, jax.random.fold_in(k, u), b, n0,
                    task.prefix_mask, r, coef)

            grads, (idx, delta, _) = jax.vmap(grad_one)(states.history, memories, k_upd, beta,
                                                        rewards)
            grads = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
            params, opt_state = adam_step(config, params, opt_state, grads)
            return (params, opt_state,
                    jax.vmap(replay.update_priorities)(memories, idx, delta)), None

        (params, opt_state, memories), _ = jax.lax.scan(
            update, (params, opt_state, states.memory), jnp.arange(config.updates_per_epoch))
        return (states.replace(memory=memories), params, opt_state), None

    (states, params, opt_state), _ = jax.lax.scan(
        epoch, (states, agent.params, agent.opt_state), jnp.arange(n0, config.budget))
    return states.ledger.rows, AgentState(params, opt_state)


def standardize_pool(pool_rewards):
    """Each pool column standardized over the architectures it can reach (finite
    rewards); unreachable ones stay -inf. [P, n_archs]."""
    finite = jnp.isfinite(pool_rewards)
    mean, inv_std = jax.vmap(ppo.masked_mean_inv_std)(jnp.where(finite, pool_rewards, 0.0),
                                                      finite)
    z = (pool_rewards - mean[:, None]) * inv_std[:, None]
    return jnp.where(finite, z, -jnp.inf)


def meta_task_rewards(config: CatchConfig, key, pool_rewards):
    """The rewards [n_archs] of one meta-training task made from the pool [P, n_archs]
    (``meta_tasks="mixtures"``): tasks that share the pool's structure the way class
    subsets of one dataset do (the paper's meta-training tasks, §4.2), a new one per key.

    1. a mixture of the standardized pool columns, weights ~ Dirichlet(1, ..., 1);
    2. rank noise: + sigma * N(0, 1) per architecture, sigma ~ U(0, task_noise) (a
       different subset of classes reorders networks of similar accuracy);
    3. a random monotone transform (exp(k x) - 1) / k, k ~ U(-1, 1) (it keeps the ranks
       and changes how rewards are spread, which the normalized advantages see).
    Only the pool's columns enter, so a pool that leaves the target out stays so.
    Architectures no pool column can reach stay -inf."""
    return _task_from_standardized(config, key, standardize_pool(pool_rewards))


def _task_from_standardized(config: CatchConfig, key, pool):
    """:func:`meta_task_rewards` from the already standardized pool (meta-training
    standardizes it once, not every meta-epoch)."""
    k_w, k_sigma, k_noise, k_k = jax.random.split(key, 4)
    finite = jnp.all(jnp.isfinite(pool), axis=0)
    w = jax.random.dirichlet(k_w, jnp.ones(pool.shape[0]))
    x = jnp.sum(w[:, None] * jnp.where(finite, pool, 0.0), axis=0)
    x = (x - jnp.mean(x, where=finite)) / jnp.maximum(jnp.std(x, where=finite), 1e-6)
    sigma = jax.random.uniform(k_sigma, (), maxval=config.task_noise)
    x = x + sigma * jax.random.normal(k_noise, x.shape)
    k = jax.random.uniform(k_k, (), minval=-1.0, maxval=1.0)
    k = jnp.where(jnp.abs(k) < 1e-3, 1e-3, k)  # k -> 0 is the identity
    r = jnp.expm1(k * jnp.clip(x, -6.0, 6.0)) / k
    return jnp.where(finite, r, -jnp.inf)


def train(config: CatchConfig, key, task: TaskArrays, pool_rewards, agent=None):
    """Meta-training, Algorithm 1 lines 1-13: ``meta_epochs`` fresh searches of
    ``meta_budget`` networks, each on a task drawn uniformly from the pool, carrying the
    agent from one to the next. With ``meta_batch`` B > 1 each meta-epoch is B searches in
    lockstep on B pool tasks (distinct while B <= pool size), one gradient step on the mean
    of their losses (:func:`lockstep_search_and_learn`).

    ``pool_rewards`` [P, n_archs]: the reward of every architecture on each pool task (same
    table and masks as ``task``); ``agent``: continue from this agent's state (None: a
    fresh one). Returns (AgentState, {"rows": [meta_epochs, meta_budget] ([meta_epochs, B,
    meta_budget] with a meta-batch), "pool_task": pool task index per meta-epoch ([.., B];
    -1 with ``meta_tasks="mixtures"``, where each search's task is
    :func:`meta_task_rewards` of the pool)}).
    """
    L, _, K = task.prefix_mask.shape
    search_config = dataclasses.replace(config, budget=config.meta_budget)
    k_init, k_loop = jax.random.split(key)
    if agent is None:
        agent = init_agent(config, k_init, L, K)
    P, B = pool_rewards.shape[0], config.meta_batch
    if config.meta_tasks == "mixtures":  # loop-invariant: once, outside the meta-epochs
        pool_std = standardize_pool(pool_rewards)

    def meta_epoch(agent, m):
        k_task, k_search = jax.random.split(jax.random.fold_in(k_loop, m))
        if config.meta_tasks == "mixtures":  # a new task per search, made from the pool
            made = jax.vmap(lambda k: _task_from_standardized(config, k, pool_std))(
                jax.random.split(k_task, B))
            if B == 1:
                trace, agent = search_and_learn(search_config, k_search,
                                                task.replace(reward=made[0]), agent)
                return agent, (trace.rows, jnp.int32(-1))
            rows, agent = lockstep_search_and_learn(
                search_config, jax.random.split(k_search, B), task, made, agent)
            return agent, (rows, jnp.full((B,), -1, jnp.int32))
        if B == 1:  # the paper's Algorithm 1
            p = jax.random.randint(k_task, (), 0, P)
            trace, agent = search_and_learn(search_config, k_search,
                                            task.replace(reward=pool_rewards[p]), agent)
            return agent, (trace.rows, p)
        picks = (jax.random.permutation(k_task, P)[:B] if B <= P
                 else jax.random.randint(k_task, (B,), 0, P))
        rows, agent = lockstep_search_and_learn(search_config, jax.random.split(k_search, B),
                                                task, pool_rewards[picks], agent)
        return agent, (rows, picks)

    agent, (rows, picks) = jax.lax.scan(meta_epoch, agent, jnp.arange(config.meta_epochs))
    return agent, {"rows": rows, "pool_task": picks}


def fresh_agent(config: CatchConfig, key, task: TaskArrays):
    """The agent :func:`train_curve` starts from when given none (its ``key``)."""
    L, _, K = task.prefix_mask.shape
    return init_agent(config, jax.random.split(key, 3)[0], L, K)


def train_curve(config: CatchConfig, key, task: TaskArrays, rewards, agent, steps: int,
                points: int, episodes: int):
    """:attr:`catchjax.core.Learner.curve` of CATCH: meta-training (:func:`train`) on
    ``rewards`` [P, n_archs] in ``points`` segments, each of ceil(steps / (points *
    queries)) meta-epochs of ``queries`` = meta_budget * meta_batch table queries; after
    each segment (and before the first) ``episodes`` adaptation searches
    (:func:`catch_search`, ``budget`` networks each, from the current agent) on ``task``,
    each scored by the first report metric (test) of its best-by-reward network."""
    queries = config.meta_budget * config.meta_batch  # table queries per meta-epoch
    per_segment = max(1, -(-steps // (points * queries)))
    seg_config = dataclasses.replace(config, meta_epochs=per_segment)
    search_config = dataclasses.replace(config, meta_trained=True)
    _, k_train, k_eval = jax.random.split(key, 3)
    if agent is None:
        agent = fresh_agent(config, key, task)

    def evaluate(agent, p):
        keys = jax.random.split(jax.random.fold_in(k_eval, p), episodes)
        traces = jax.vmap(lambda k: catch_search(search_config, k, task, agent))(keys)
        best = jnp.argmax(traces.rewards, axis=1)
        rows = jnp.take_along_axis(traces.rows, best[:, None], axis=1)[:, 0]
        return task.report[rows, 0]

    def segment(carry, p):
        agent, seen = carry
        agent, info = train(seg_config, jax.random.fold_in(k_train, p), task, rewards, agent)
        seen = seen.at[info["rows"].reshape(-1)].set(True)
        return (agent, seen), evaluate(agent, p + 1)

    test0 = evaluate(agent, 0)
    seen = jnp.zeros(task.reward.shape, bool)
    (agent, seen), tests = jax.lax.scan(segment, (agent, seen), jnp.arange(points))
    info = {"steps": jnp.arange(points + 1) * per_segment * queries,
            "test_episodes": jnp.concatenate([test0[None], tests]),
            "distinct": jnp.sum(seen)}
    return agent, info
