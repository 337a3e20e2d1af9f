"""Random search: ``budget`` architectures drawn uniformly, the best by reward is chosen."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, SearchTrace, Stepper, uniform_rows
from catchjax.errors import CatchjaxError
from catchjax.stepping import record_only, run_on_table, take_planned


@dataclasses.dataclass(frozen=True)
class RandomSearchConfig:
    budget: int = 50
    # Without replacement (default) no architecture is evaluated twice, so the budget
    # may not exceed the number of searchable architectures.
    replace: bool = False

    def validate(self, task) -> None:
        if not self.replace and self.budget > task.n_searchable:
            raise CatchjaxError(
                f"random search without replacement cannot evaluate {self.budget} distinct "
                f"architectures: {task.name} has only {task.n_searchable}; lower the budget "
                f"or sample with replacement (replace=True)"
            )


def distinct_indices(key, n: int, k: int) -> jnp.ndarray:
    """k distinct indices from range(n), uniformly, in random order.

    Floyd's algorithm (Bentley & Floyd 1987) draws a uniform k-subset in k steps with an
    O(k) membership test each, far cheaper than permuting all n when k << n; a random
    permutation of the k picks then makes the order uniform too.
    """
    k_set, k_order = jax.random.split(key)
    draws = jax.random.randint(k_set, (k,), 0, jnp.arange(n - k, n) + 1)

    def step(chosen, j):
        t = draws[j]
        candidate = n - k + j
        pick = jnp.where(jnp.any(chosen == t), candidate, t)
        return chosen.at[j].set(pick), None

    chosen, _ = jax.lax.scan(step, jnp.full((k,), -1, jnp.int32), jnp.arange(k))
    return jax.random.permutation(k_order, chosen)


@struct.dataclass
class RandomSearchState:
    ledger: Ledger
    order: jnp.ndarray  # i32 [budget], every row the search will propose, drawn up front


def start(config: RandomSearchConfig, key, task: TaskArrays, agent=None) -> RandomSearchState:
    if config.replace:
        order = uniform_rows(key, task.valid_rows, (config.budget,))
    else:
        order = task.valid_rows[distinct_indices(key, task.valid_rows.shape[0], config.budget)]
    return RandomSearchState(Ledger.empty(config.budget), order)


def ask(config, state: RandomSearchState, task, k: int, seeding: bool):
    return *take_planned(state, state.order, k), {}


STEPPER = Stepper(start=start, ask=ask, tell=record_only, first=lambda config: config.budget,
                  ready=lambda config, state: config.budget - int(state.ledger.n_asked))


def random_search(config: RandomSearchConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    return run_on_table(STEPPER, config, key, task)[0]
