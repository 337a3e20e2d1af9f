"""Regularized (aging) evolution, Real et al. 2019, with NATS-Bench's settings.

Population 10, tournament of 3 drawn with replacement, the child changes one decision of
the tournament winner (a uniformly chosen valid neighbour), and the oldest member dies.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, SearchTrace, Stepper, uniform_rows
from catchjax.errors import CatchjaxError
from catchjax.stepping import run_on_table, take_planned


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
    budget: int = 50
    population: int = 10
    sample_size: int = 3

    def validate(self, task) -> None:
        if self.population < 1 or self.sample_size < 1:
            raise CatchjaxError(
                f"evolution needs population >= 1 and sample_size >= 1, got "
                f"{self.population} and {self.sample_size}"
            )


@struct.dataclass
class EvolutionState:
    ledger: Ledger
    init_rows: jnp.ndarray  # i32 [n_init], the random initial population, drawn up front
    loop_key: jnp.ndarray
    pop_rows: jnp.ndarray  # i32 [population], a ring buffer, oldest first
    pop_rewards: jnp.ndarray  # f32 [population]


def n_initial(config: EvolutionConfig) -> int:
    return min(config.population, config.budget)


def start(config: EvolutionConfig, key, task: TaskArrays, agent=None) -> EvolutionState:
    init_key, loop_key = jax.random.split(key)
    init_rows = uniform_rows(init_key, task.valid_rows, (n_initial(config),))
    return EvolutionState(Ledger.empty(config.budget), init_rows, loop_key,
                          jnp.zeros((config.population,), jnp.int32),
                          jnp.zeros((config.population,)))


def mutate(config: EvolutionConfig, state: EvolutionState, task: TaskArrays, i):
    """Child ``i`` (0-based after the initial population): a tournament of
    ``sample_size`` members drawn with replacement, the winner changed in one decision."""
    k_tour, k_mut = jax.random.split(jax.random.fold_in(state.loop_key, i))
    contenders = jax.random.randint(k_tour, (config.sample_size,), 0, config.population)
    parent = state.pop_rows[contenders[jnp.argmax(state.pop_rewards[contenders])]]
    return one_edit(k_mut, task, parent)


def one_edit(key, task: TaskArrays, parent):
    """``parent`` changed in one decision: a uniformly chosen valid neighbour (the parent
    itself when it has none)."""
    nbrs = task.neighbors[parent]
    ok = nbrs >= 0
    slot = jax.random.categorical(key, jnp.where(ok, 0.0, -jnp.inf))
    return jnp.where(ok.any(), nbrs[slot], parent)


def ask(config, state: EvolutionState, task, k: int, seeding: bool):
    if seeding:
        return *take_planned(state, state.init_rows, k), {}
    # k children of the current population (k > 1: asynchronous workers)
    first = state.ledger.n_asked - n_initial(config)
    rows = jax.lax.map(lambda j: mutate(config, state, task, first + j), jnp.arange(k))
    return rows, state.replace(ledger=state.ledger.asked(rows)), {}


def tell(config, state: EvolutionState, task, ids, rewards, seeding: bool):
    def one(state, item):
        i, reward = item
        oldest = state.ledger.n_told % config.population  # each result replaces the oldest
        return state.replace(
            pop_rows=state.pop_rows.at[oldest].set(state.ledger.rows[i]),
            pop_rewards=state.pop_rewards.at[oldest].set(reward),
            ledger=state.ledger.told(i[None], reward[None]),
        ), None

    state, _ = jax.lax.scan(one, state, (ids, rewards))
    return state, {}


def ready(config, state: EvolutionState) -> int:
    asked, told, n0 = int(state.ledger.n_asked), int(state.ledger.n_told), n_initial(config)
    if asked < n0:
        return n0 - asked
    return 0 if told < n0 else config.budget - asked  # mutation needs the whole population


STEPPER = Stepper(start=start, ask=ask, tell=tell, first=n_initial, ready=ready)


def regularized_evolution(
    config: EvolutionConfig, key, task: TaskArrays, agent=None
) -> SearchTrace:
    return run_on_table(STEPPER, config, key, task)[0]
