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
from flax import struct

from catchjax import optimizers, sampling
from catchjax.benchmarks.tasks import TaskArrays
from catchjax.core import Ledger, SearchTrace, Stepper
from catchjax.errors import CatchjaxError
from catchjax.stepping import run_on_table


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


@struct.dataclass
class ReinforceState:
    ledger: Ledger
    key: jnp.ndarray
    logits: jnp.ndarray  # f32 [L, K]
    opt_state: object
    num: jnp.ndarray  # bias-corrected EMA baseline = num / den
    den: jnp.ndarray
    actions: jnp.ndarray  # i32 [budget, L], the sampled sequence of each proposal


def start(config: ReinforceConfig, key, task: TaskArrays, agent=None) -> ReinforceState:
    L, _, K = task.prefix_mask.shape
    logits = jnp.zeros((L, K))
    return ReinforceState(Ledger.empty(config.budget), key, logits,
                          optimizers.adam(config.learning_rate).init(logits), jnp.zeros(()),
                          jnp.zeros(()), jnp.zeros((config.budget, L), jnp.int32))


def ask(config, state: ReinforceState, task, k: int, seeding: bool):
    K = task.prefix_mask.shape[2]

    def sample(j):
        actions, _ = sampling.sample_sequence(
            jax.random.fold_in(state.key, state.ledger.n_asked + j),
            lambda t, _: state.logits[t], task.prefix_mask)
        return actions, task.code_to_row[sampling.sequence_code(actions, K)]

    actions, rows = jax.lax.map(sample, jnp.arange(k))
    state = state.replace(
        actions=jax.lax.dynamic_update_slice(state.actions, actions, (state.ledger.n_asked, 0)),
        ledger=state.ledger.asked(rows))
    return rows, state, {}


def tell(config, state: ReinforceState, task, ids, rewards, seeding: bool):
    optimizer = optimizers.adam(config.learning_rate)
    m = config.baseline_momentum

    def neg_log_prob(logits, actions):
        masks = sampling.step_masks(actions, task.prefix_mask)
        log_probs = sampling.masked_log_probs(logits, masks)
        return -jnp.sum(jnp.take_along_axis(log_probs, actions[:, None], axis=1))

    def one(state, item):
        i, reward = item
        actions = state.actions[i]
        num, den = m * state.num + (1 - m) * reward, m * state.den + (1 - m)
        advantage = reward - num / den
        grads = jax.grad(neg_log_prob)(state.logits, actions) * advantage
        updates, opt_state = optimizer.update(grads, state.opt_state)
        return state.replace(logits=optax.apply_updates(state.logits, updates),
                             opt_state=opt_state, num=num, den=den,
                             ledger=state.ledger.told(i[None], reward[None])), None

    state, _ = jax.lax.scan(one, state, (ids, rewards))
    return state, {}


STEPPER = Stepper(start=start, ask=ask, tell=tell, first=lambda config: 0,
                  ready=lambda config, state: config.budget - int(state.ledger.n_asked))


def reinforce(config: ReinforceConfig, key, task: TaskArrays, agent=None) -> SearchTrace:
    return run_on_table(STEPPER, config, key, task)[0]
