"""Prioritized experience replay (Schaul et al. 2016, proportional variant) in fixed arrays.

The buffer is a pytree of arrays of a static capacity, so it lives inside jit, vmap and
``lax.scan``. Item ``i`` is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha,
where p_i = |delta_i| + eps is its last absolute TD error (new items get the largest
priority seen so far, so each is replayed at least once with high probability). The
importance weights w_i = (N * P(i))^-beta are divided by the largest weight in the buffer,
as in the paper, so that they only ever scale updates down.

Priorities are stored densely (O(1) writes); sampling is by inverse CDF, a cumulative
sum over p^alpha and a binary search per draw. A sum-tree (built from the same dense
priorities and descended per draw) was 12-32% slower on CPU at both sizes we use
(CATCH's memory of ~50, the DQN's 25,000): ``benchmarks/replay_samplers.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class ReplayBuffer:
    items: object  # pytree, every leaf [capacity, ...]
    priorities: jnp.ndarray  # f32 [capacity], 0 where empty
    size: jnp.ndarray  # i32, number of filled slots
    position: jnp.ndarray  # i32, next slot to write (oldest is overwritten when full)
    max_priority: jnp.ndarray  # f32

    @property
    def capacity(self) -> int:
        return self.priorities.shape[0]


def init(example_item, capacity: int) -> ReplayBuffer:
    """An empty buffer whose items have the structure and shapes of ``example_item``."""
    items = jax.tree.map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example_item
    )
    return ReplayBuffer(
        items=items,
        priorities=jnp.zeros(capacity, jnp.float32),
        size=jnp.zeros((), jnp.int32),
        position=jnp.zeros((), jnp.int32),
        max_priority=jnp.ones((), jnp.float32),
    )


def add(buffer: ReplayBuffer, item, priority=None) -> ReplayBuffer:
    """Store one item (at the largest priority so far unless ``priority`` is given)."""
    p = buffer.max_priority if priority is None else jnp.asarray(priority, jnp.float32)
    i = buffer.position
    items = jax.tree.map(lambda store, x: store.at[i].set(x), buffer.items, item)
    return buffer.replace(
        items=items,
        priorities=buffer.priorities.at[i].set(p),
        size=jnp.minimum(buffer.size + 1, buffer.capacity),
        position=(i + 1) % buffer.capacity,
        max_priority=jnp.maximum(buffer.max_priority, p),
    )


def add_batch(buffer: ReplayBuffer, items, valid) -> ReplayBuffer:
    """Store the items of a batch (every leaf ``[B, ...]``) whose ``valid`` is True, in
    order, at the largest priority so far; invalid ones take no slot. Equal to calling
    :func:`add` for each valid item in turn (``B`` at most the capacity)."""
    valid = jnp.asarray(valid, bool)
    offset = jnp.cumsum(valid) - 1
    slots = jnp.where(valid, (buffer.position + offset) % buffer.capacity, buffer.capacity)
    n_new = jnp.sum(valid).astype(jnp.int32)
    stored = jax.tree.map(lambda store, x: store.at[slots].set(x, mode="drop"),
                          buffer.items, items)
    return buffer.replace(
        items=stored,
        priorities=buffer.priorities.at[slots].set(buffer.max_priority, mode="drop"),
        size=jnp.minimum(buffer.size + n_new, buffer.capacity),
        position=(buffer.position + n_new) % buffer.capacity,
    )


def probabilities(buffer: ReplayBuffer, alpha: float) -> jnp.ndarray:
    """P(i) for every slot (0 for empty slots)."""
    filled = jnp.arange(buffer.capacity) < buffer.size
    scaled = jnp.where(filled, buffer.priorities, 0.0) ** alpha
    scaled = jnp.where(filled, scaled, 0.0)  # 0**0 = 1 must not count for empty slots
    return scaled / jnp.sum(scaled)


def sample(buffer: ReplayBuffer, key, batch_size: int, alpha: float, beta):
    """Draw ``batch_size`` indices i.i.d. with P(i); returns (indices, items, weights)."""
    probs = probabilities(buffer, alpha)
    cdf = jnp.cumsum(probs)
    u = jax.random.uniform(key, (batch_size,)) * cdf[-1]
    idx = jnp.searchsorted(cdf, u, side="right")
    idx = jnp.clip(idx, 0, jnp.maximum(buffer.size - 1, 0)).astype(jnp.int32)
    n = buffer.size.astype(jnp.float32)
    filled = jnp.arange(buffer.capacity) < buffer.size
    min_prob = jnp.min(jnp.where(filled, probs, jnp.inf))
    weights = (n * probs[idx]) ** (-beta) / (n * min_prob) ** (-beta)
    items = jax.tree.map(lambda store: store[idx], buffer.items)
    return idx, items, weights


def update_priorities(buffer: ReplayBuffer, indices, td_errors, eps: float = 1e-6):
    """Set p_i = |delta_i| + eps for the sampled items."""
    p = jnp.abs(td_errors).astype(jnp.float32) + eps
    return buffer.replace(
        priorities=buffer.priorities.at[indices].set(p),
        max_priority=jnp.maximum(buffer.max_priority, jnp.max(p)),
    )


def beta_schedule(beta0: float, step, total_steps: int):
    """Linear annealing of beta from ``beta0`` at step 0 to 1 at step ``total_steps`` (and
    after), Schaul et al. 2016 §3.4. A run of ``n`` steps numbered 0..n-1 that should end
    at 1 passes ``total_steps = n - 1``."""
    return optax.linear_schedule(beta0, 1.0, max(total_steps, 1))(step)
