"""Regularized (aging) evolution, Real et al. 2019, with NATS-Bench's settings.

Population 10, tournament of 3 drawn with replacement, the child changes one decision of
the tournament winner (a uniformly chosen valid neighbour), and the oldest member dies.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import SearchTrace, uniform_rows
from catchjax.errors import CatchjaxError


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


def regularized_evolution(
    config: EvolutionConfig, key, task: TaskArrays, agent=None
) -> SearchTrace:
    n_init = min(config.population, config.budget)
    init_key, loop_key = jax.random.split(key)
    init_rows = uniform_rows(init_key, task.valid_rows, (n_init,))
    init_rewards = task.reward[init_rows]
    n_steps = config.budget - n_init
    if n_steps == 0:
        return SearchTrace(rows=init_rows, rewards=init_rewards)

    def step(carry, i):
        pop_rows, pop_rewards = carry
        k_tour, k_mut = jax.random.split(jax.random.fold_in(loop_key, i))
        contenders = jax.random.randint(k_tour, (config.sample_size,), 0, config.population)
        parent = pop_rows[contenders[jnp.argmax(pop_rewards[contenders])]]
        nbrs = task.neighbors[parent]
        ok = nbrs >= 0
        slot = jax.random.categorical(k_mut, jnp.where(ok, 0.0, -jnp.inf))
        child = jnp.where(ok.any(), nbrs[slot], parent)
        reward = task.reward[child]
        oldest = i % config.population  # the population is a ring buffer, oldest first
        carry = (pop_rows.at[oldest].set(child), pop_rewards.at[oldest].set(reward))
        return carry, (child, reward)

    _, (rows, rewards) = jax.lax.scan(step, (init_rows, init_rewards), jnp.arange(n_steps))
    return SearchTrace(
        rows=jnp.concatenate([init_rows, rows]), rewards=jnp.concatenate([init_rewards, rewards])
    )
