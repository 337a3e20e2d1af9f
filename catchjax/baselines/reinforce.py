"""REINFORCE (Williams 1992) as in NATS-Bench: a factorized categorical policy over the
decisions, Adam with lr 0.01, and an exponential-moving-average reward baseline.

Each step samples one architecture, queries its reward, updates the (bias-corrected)
moving average with it, and takes one gradient step on -log pi(a) * (R - baseline).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from catchjax import sampling
from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import SearchTrace
from catchjax.errors import CatchjaxError


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    budget: int = 50
    learning_rate: float = 0.01
    baseline_momentum: float = 0.9

    def validate(self, task) -> None:
        if not 0 < self.learning_rate < float("inf") or not 0 <= self.baseline_momentum < 1:
            raise CatchjaxError(
                f"REINFORCE needs a finite learning_rate > 0 and 0 <= baseline_momentum < 1, "
                f"got {self.learning_rate} and {self.baseline_momentum}"
            )


def reinforce(config: ReinforceConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    L, _, K = task.prefix_mask.shape
    optimizer = optax.adam(config.learning_rate)
    logits = jnp.zeros((L, K))
    m = config.baseline_momentum

    def neg_log_prob(logits, actions):
        masks = sampling.step_masks(actions, task.prefix_mask)
        log_probs = sampling.masked_log_probs(logits, masks)
        return -jnp.sum(jnp.take_along_axis(log_probs, actions[:, None], axis=1))

    def step(carry, i):
        logits, opt_state, num, den = carry
        actions, _ = sampling.sample_sequence(
            jax.random.fold_in(key, i), lambda t, _: logits[t], task.prefix_mask
        )
        row = task.code_to_row[sampling.sequence_code(actions, K)]
        reward = task.reward[row]
        num, den = m * num + (1 - m) * reward, m * den + (1 - m)
        advantage = reward - num / den
        grads = jax.grad(neg_log_prob)(logits, actions) * advantage
        updates, opt_state = optimizer.update(grads, opt_state)
        return (optax.apply_updates(logits, updates), opt_state, num, den), (row, reward)

    init = (logits, optimizer.init(logits), jnp.zeros(()), jnp.zeros(()))
    _, (rows, rewards) = jax.lax.scan(step, init, jnp.arange(config.budget))
    return SearchTrace(rows=rows, rewards=rewards)
