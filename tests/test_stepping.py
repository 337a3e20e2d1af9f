"""A table search is its ask/tell steps with the table answering (core.run_on_table and
the step helpers of catchjax.stepping), tested on a toy stepper."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from catchjax import stepping
from catchjax.core import Ledger, Method, Stepper


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    budget: int = 7
    seeds: int = 2


@struct.dataclass
class ToyState:
    ledger: Ledger
    plan: jnp.ndarray  # the rows the toy proposes, in order
    told_sum: jnp.ndarray  # what tell saw, to check the order of tells


@struct.dataclass
class Table:
    reward: jnp.ndarray


def start(config, key, task, agent=None):
    plan = jax.random.permutation(key, task.reward.shape[0])[: config.budget]
    return ToyState(Ledger.empty(config.budget), plan.astype(jnp.int32), jnp.zeros(()))


def ask(config, state, task, k, seeding):
    rows, state = stepping.take_planned(state, state.plan, k)
    return rows, state, {"k": jnp.full((k,), k), "seeding": jnp.full((k,), seeding)}


def tell(config, state, task, ids, rewards, seeding):
    state, _ = stepping.record_only(config, state, task, ids, rewards, seeding)
    # a running sum that depends on the order: sum * 2 + reward, one at a time
    total = jax.lax.fori_loop(0, rewards.shape[0], lambda i, s: s * 2 + rewards[i],
                              state.told_sum)
    return state.replace(told_sum=total), {"told": rewards}


TOY = Stepper(start=start, ask=ask, tell=tell, first=lambda c: c.seeds,
              ready=lambda c, s: c.budget - int(s.ledger.n_asked))
TABLE = Table(reward=jnp.arange(20, dtype=jnp.float32) / 10)


def test_a_table_search_asks_the_seeds_at_once_then_one_round_at_a_time():
    config, key = ToyConfig(), jax.random.key(3)
    trace, state = stepping.run_on_table(TOY, config, key, TABLE, per_step=2)
    plan = np.asarray(start(config, key, TABLE).plan)
    np.testing.assert_array_equal(trace.rows, plan)  # every planned row, in order
    np.testing.assert_array_equal(trace.rewards, np.asarray(TABLE.reward)[plan])
    # after the 2 seeds: rounds of 2, 2 and a last, smaller round of 1
    np.testing.assert_array_equal(trace.metrics["k"], [2, 2, 2, 2, 1])
    assert not np.asarray(trace.metrics["seeding"]).any()
    np.testing.assert_array_equal(trace.metrics["told"], trace.rewards[2:])
    # the ledger holds what was asked and told; tell saw the rewards in the order asked
    np.testing.assert_array_equal(state.ledger.rows, plan)
    np.testing.assert_array_equal(state.ledger.rewards, trace.rewards)
    assert int(state.ledger.n_asked) == int(state.ledger.n_told) == config.budget
    expect = 0.0
    for r in np.asarray(trace.rewards, np.float64):
        expect = expect * 2 + r
    np.testing.assert_allclose(float(state.told_sum), expect, rtol=1e-6)


def test_one_proposal_per_step_and_no_seeds_and_a_budget_of_seeds_only():
    key = jax.random.key(0)
    one, _ = stepping.run_on_table(TOY, ToyConfig(budget=5, seeds=0), key, TABLE)
    np.testing.assert_array_equal(one.metrics["k"], [1] * 5)
    seeds_only, state = stepping.run_on_table(TOY, ToyConfig(budget=3, seeds=3), key, TABLE)
    assert seeds_only.rows.shape == (3,) and int(state.ledger.n_told) == 3


def test_a_method_without_its_own_search_is_its_steps_on_the_table():
    m = Method("toy-steps", ToyConfig, stepper=TOY)
    config, key = ToyConfig(budget=6, seeds=1), jax.random.key(9)
    via_method = jax.jit(m.search, static_argnums=0)(config, key, TABLE)
    direct, _ = stepping.run_on_table(TOY, config, key, TABLE)
    np.testing.assert_array_equal(via_method.rows, direct.rows)
    np.testing.assert_array_equal(via_method.rewards, direct.rewards)
