"""A search on a table = its ask/tell steps with the table answering every ask.

:func:`run_on_table` is how every method's pure ``search`` is written: the seeds in one
ask, their rewards in one tell, then one proposal at a time in a ``lax.scan``. The
ask/tell front end (:mod:`catchjax.ask_tell`) calls the same ``ask`` and ``tell``, so a
search driven by a trainer's rewards and the table sweep are one implementation: with the
same key and the table's rewards they make the same proposals.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import SearchTrace, Stepper


def take_planned(state, plan, k: int):
    """The next ``k`` rows of a plan drawn at ``start`` (random search's order, a greedy
    episode, seeds, an initial population), recorded in the state's ledger."""
    rows = jax.lax.dynamic_slice(plan, (state.ledger.n_asked,), (k,))
    return rows, state.replace(ledger=state.ledger.asked(rows))


def record_only(config, state, task, ids, rewards, seeding: bool):
    """``tell`` of a method whose proposals do not depend on rewards: record them."""
    return state.replace(ledger=state.ledger.told(ids, rewards)), {}


def run_on_table(stepper: Stepper, config, key, task: TaskArrays, agent=None, per_step: int = 1):
    """All ``config.budget`` proposals of a search, each answered by ``task.reward``.

    After the seeds, ``per_step`` proposals are asked and told together (a method that
    plans a batch per round, such as BANANAS; the last round may be smaller).
    Returns ``(SearchTrace, final state)``; the trace's ``metrics`` are the per-proposal
    ``info`` of the proposals after the seeds (``[budget - first]`` each).
    """
    state = stepper.start(config, key, task, agent)
    n0 = stepper.first(config)
    rows0 = jnp.zeros((0,), jnp.int32)
    if n0 > 0:
        rows0, state, _ = stepper.ask(config, state, task, n0, True)
        state, _ = stepper.tell(config, state, task, jnp.arange(n0), task.reward[rows0], True)
    n_rest = config.budget - n0
    if n_rest == 0:
        return SearchTrace(rows=rows0, rewards=task.reward[rows0]), state

    def step(state, first_id, k):
        rows, state, ask_info = stepper.ask(config, state, task, k, False)
        reward = task.reward[rows]
        state, tell_info = stepper.tell(config, state, task, first_id + jnp.arange(k), reward,
                                        False)
        return state, (rows, reward, {**ask_info, **tell_info})

    rounds, rest = divmod(n_rest, per_step)
    state, (rows, rewards, metrics) = jax.lax.scan(
        lambda state, i: step(state, i, per_step), state, n0 + per_step * jnp.arange(rounds))
    rows, rewards = rows.reshape(-1), rewards.reshape(-1)
    metrics = {k: v.reshape(-1, *v.shape[2:]) for k, v in metrics.items()}  # rounds x k
    if rest:  # a last, smaller round
        state, (r, w, m) = step(state, n0 + rounds * per_step, rest)
        rows, rewards = jnp.concatenate([rows, r]), jnp.concatenate([rewards, w])
        metrics = {k: jnp.concatenate([metrics[k], m[k]]) for k in metrics}
    trace = SearchTrace(rows=jnp.concatenate([rows0, rows]),
                        rewards=jnp.concatenate([task.reward[rows0], rewards]), metrics=metrics)
    return trace, state
